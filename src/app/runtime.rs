//! The async runtime a command runs on, and running the command as one of its tasks.
//!
//! Does not: choose what the command does (`main`'s dispatch) or how a burst schedules its
//! requests (`probe::burst`).

use std::future::Future;

use super::{AppError, Exit};

/// A multi-threaded runtime, or a single-threaded one when the process may only use one CPU
/// (e.g. pinned with `taskset`): one thread then avoids cross-thread wake-ups on every chunk.
pub fn for_this_machine() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

/// Runs `command` to completion on `runtime`, as a task of its own rather than as the
/// `block_on` future: on a multi-threaded runtime that future is polled by the calling thread,
/// outside the workers, so a burst's launcher there hands every request to the workers through
/// the shared queue and its thread competes with them for the CPU. Measured (README "What it
/// costs"): 1,000 cold streams, client on two cores, overhead p99 76–85 ms that way, 2–2.5 ms
/// as a task. A panic in the command is resumed here, as if it had happened on this thread.
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
