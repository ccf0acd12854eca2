//! The async runtime a command runs on, and running the command as one of its tasks.
//!
//! Does not: choose what the command does (`main`'s dispatch) or how a burst schedules its
//! requests (`probe::burst`).

use std::future::Future;

use super::{AppError, Exit};

/// How many threads a command's runtime runs its tasks on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// One per CPU the process may use: `run`, whose one burst can fill the cores.
    PerCpu,
    /// At most this many: `serve`, whose bursts are small and spread over time (README "What
    /// it costs": more workers bought nothing measurable; a second one keeps probing while the
    /// other serves a scrape or a page).
    AtMost(usize),
}

/// Tokio's own variable for its worker count, honoured for every command: an operator's way
/// to give the daemon more threads (or `run` fewer) without a new flag.
pub const WORKERS_ENV: &str = "TOKIO_WORKER_THREADS";

/// The worker count: `env` (the value of [`WORKERS_ENV`]) when set, else `threads` applied
/// to the `cpus` the process may use (at least one either way).
pub fn workers(threads: Threads, cpus: usize, env: Option<&str>) -> Result<usize, String> {
    if let Some(value) = env {
        return match value.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{WORKERS_ENV}={value:?}: expected a positive number of threads"
            )),
        };
    }
    let cpus = cpus.max(1);
    Ok(match threads {
        Threads::PerCpu => cpus,
        Threads::AtMost(n) => cpus.min(n.max(1)),
    })
}

/// The runtime for a command: single-threaded when it gets one worker (e.g. `run` pinned with
/// `taskset`, or the daemon on one CPU: one thread then avoids cross-thread wake-ups on every
/// chunk), multi-threaded with that many workers otherwise.
pub fn for_command(threads: Threads) -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let env = std::env::var(WORKERS_ENV).ok();
    let n = workers(threads, cpus, env.as_deref()).map_err(std::io::Error::other)?;
    if n == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()
    }
}

/// Runs `command` to completion on `runtime`, as a task of its own rather than as the
/// `block_on` future: on a multi-threaded runtime that future is polled by the calling thread,
/// outside the workers, so a burst's launcher there hands every request to the workers through
/// the shared queue and its thread competes with them for the CPU. Measured (README "What it
/// costs"): 1,000 cold streams, client on two cores, overhead p99 76–85 ms that way, 1.9–7.2
/// ms as a task. A panic in the command is resumed here, as if it had happened on this thread.
pub fn execute<F>(runtime: &tokio::runtime::Runtime, command: F) -> Result<Exit, AppError>
where
    F: Future<Output = Result<Exit, AppError>> + Send + 'static,
{
    runtime.block_on(async move {
        match tokio::spawn(command).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(AppError::runtime("the command's task was cancelled", e)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_count_follows_the_policy_the_cpus_and_the_environment() {
        assert_eq!(workers(Threads::PerCpu, 8, None), Ok(8));
        assert_eq!(workers(Threads::PerCpu, 1, None), Ok(1));
        assert_eq!(workers(Threads::AtMost(2), 8, None), Ok(2));
        assert_eq!(workers(Threads::AtMost(2), 1, None), Ok(1));
        // No CPU count (available_parallelism failed) still gives a runtime.
        assert_eq!(workers(Threads::PerCpu, 0, None), Ok(1));
        // The operator's setting wins, in both directions.
        assert_eq!(workers(Threads::AtMost(2), 8, Some("6")), Ok(6));
        assert_eq!(workers(Threads::PerCpu, 8, Some(" 1 ")), Ok(1));
        for bad in ["0", "-1", "two", ""] {
            let e = workers(Threads::PerCpu, 8, Some(bad)).unwrap_err();
            assert!(e.starts_with("TOKIO_WORKER_THREADS="), "{e}");
            assert!(e.contains("positive number of threads"), "{e}");
        }
    }

    fn two_workers() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("runtime-worker")
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn the_command_runs_on_a_worker_not_on_the_calling_thread() {
        let rt = two_workers();
        let caller = std::thread::current().id();
        let ran_on = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = ran_on.clone();
        let result = execute(&rt, async move {
            let me = std::thread::current();
            *seen.lock().unwrap() = Some((me.id(), me.name().map(str::to_owned)));
            Ok(Exit::Pass)
        });
        assert!(matches!(result, Ok(Exit::Pass)));
        let (id, name) = ran_on.lock().unwrap().take().unwrap();
        assert_ne!(
            id, caller,
            "the command ran in block_on, on the calling thread"
        );
        assert_eq!(name.as_deref(), Some("runtime-worker"));
    }

    #[test]
    fn the_commands_result_and_errors_come_back() {
        let rt = two_workers();
        let result = execute(&rt, async { Ok(Exit::Interrupted) });
        assert!(matches!(result, Ok(Exit::Interrupted)));
        let result = execute(&rt, async {
            Err(AppError::runtime(
                "cannot write x",
                std::io::Error::other("disk full"),
            ))
        });
        let message = format!("{:#}", anyhow::Error::from(result.unwrap_err()));
        assert_eq!(message, "cannot write x: disk full");
    }

    #[test]
    fn a_panic_in_the_command_is_resumed_on_the_caller() {
        let rt = two_workers();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            execute(&rt, async { panic!("boom in the command") })
        }));
        let payload = caught.expect_err("the panic was swallowed");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in the command"));
    }
}
