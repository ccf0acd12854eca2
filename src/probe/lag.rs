//! The client's own scheduling lag and CPU time during a burst: is the prober itself part of
//! what it measures? A ready task that waits for the runtime to poll it adds that wait to every
//! timestamp it takes (a first token read late is a TTFT too high).
//!
//! How: a kernel timer (`timerfd`, `CLOCK_MONOTONIC`) expires every [`TICK`] while a burst
//! runs, and a task on the runtime waits for it through the runtime's I/O driver, exactly as a
//! request's task waits for its socket; when the runtime polls that task it records `now − the
//! oldest expiry it had not read yet`. So the number is how long a task waits after its file
//! descriptor became ready: the tick queues behind the other ready tasks as a first token does.
//! The kernel keeps time, not a tokio timer, so the timer wheel's 1 ms granularity does not
//! enter the number, and expiries go on counting while the runtime is starved (one sample per
//! read: the oldest unread expiry's wait; a tick still unread when a burst ends counts with its
//! wait so far). No thread: an earlier version woke a thread of its own to send ticks, and that
//! one extra thread made the pinned client's cold first wave slower (p99 at 1,000 streams
//! 55 → 85–100 ms, `scripts/bench-overhead.sh 1000`), most likely because a multi-threaded
//! process loses the C library's single-thread fast paths.
//!
//! One probe serves every burst of a runtime (the daemon's concurrent bursts share it); each
//! burst takes the samples of expiries during its own interval. The timer is disarmed while no
//! burst runs.
//! CPU time is the whole process's (`CLOCK_PROCESS_CPUTIME_ID`), so bursts that overlap share it.
//!
//! Does not: decide what is too much lag (`stats`), print, or touch Prometheus.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use super::ClientLoad;

/// How often the timer expires while a burst runs. Each expiry wakes the runtime when it is
/// idle (a read and the runtime's wake-up): at 1 ms a probe of this kind took 3% of a core, a
/// third more CPU for a 1,000-request run; at 10 ms a 10-second burst still gets 1,000 samples:
/// the interval sets how many samples there are, not how precise each is.
pub const TICK: Duration = Duration::from_millis(10);

/// Samples kept at most (about 44 minutes of ticks, 8 MiB); a longer burst keeps its last
/// ones.
const MAX_SAMPLES: usize = 1 << 18;

/// The scheduling-lag probe of one runtime. Cheap to clone; its task ends when the last clone
/// is dropped.
#[derive(Clone)]
pub struct LagProbe {
    owner: Arc<Owner>,
}

/// Ends the reading task when dropped.
struct Owner {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Told when the probe is dropped: the reading task ends.
    stopped: Notify,
}

#[derive(Default)]
struct State {
    /// The timer and its reading task exist (made on the first burst's runtime).
    timer: Option<Arc<AsyncFd<OwnedFd>>>,
    /// Start of every burst being measured, by watch id.
    watching: Vec<(u64, Instant)>,
    next_id: u64,
    /// While armed: the expiry the reading task has not read yet (the timer's next or oldest
    /// pending one).
    next_expiry: Option<Instant>,
    /// `(expired, lag)` of every read expiry, oldest first, while some burst ran.
    samples: VecDeque<(Instant, Duration)>,
}

impl Default for LagProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl LagProbe {
    /// A probe whose timer starts with the first burst it measures, on that burst's runtime.
    pub fn new() -> LagProbe {
        LagProbe {
            owner: Arc::new(Owner {
                shared: Arc::new(Shared {
                    state: Mutex::default(),
                    stopped: Notify::new(),
                }),
            }),
        }
    }

    /// Starts measuring a burst; must be called on the runtime the burst runs on.
    pub fn watch(&self) -> LagWatch {
        let shared = &self.owner.shared;
        let mut state = shared.lock();
        let start = Instant::now();
        let id = state.next_id;
        state.next_id += 1;
        state.watching.push((id, start));
        if state.timer.is_none() {
            // Without a timer the burst reports no lag samples (`null`), which is the truth.
            state.timer = start_timer(shared);
        }
        if state.next_expiry.is_none() {
            state.next_expiry = state.timer.as_ref().and_then(|t| arm(t, Some(TICK)));
        }
        drop(state);
        LagWatch {
            shared: shared.clone(),
            id,
            start,
            cpu_start: process_cpu(),
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(timer) = self.shared.lock().timer.take() {
            arm(&timer, None);
        }
        self.shared.stopped.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Arms the timer to expire every `every` from now (returns the first expiry), or disarms it.
fn arm(timer: &AsyncFd<OwnedFd>, every: Option<Duration>) -> Option<Instant> {
    let spec = |d: Duration| Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    };
    let period = every.unwrap_or(Duration::ZERO);
    let first = Instant::now() + period;
    let new = Itimerspec {
        it_interval: spec(period),
        it_value: spec(period),
    };
    timerfd_settime(timer.get_ref(), TimerfdTimerFlags::empty(), &new).ok()?;
    every.map(|_| first)
}

/// Makes the timer and starts its reading task on the current runtime; `None` outside a
/// runtime or when the kernel gives no timer.
fn start_timer(shared: &Arc<Shared>) -> Option<Arc<AsyncFd<OwnedFd>>> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let fd = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )
    .ok()?;
    let timer = {
        let _runtime = handle.enter();
        // `new` is deprecated for an `AsyncFd` that does not own its descriptor (it could be
        // closed and reused under the registration); this one owns it (`OwnedFd`), which is the
        // sound case, and `register` would need `unsafe`, which the crate forbids.
        #[allow(deprecated)]
        let registered = AsyncFd::new(fd);
        Arc::new(registered.ok()?)
    };
    drop(handle.spawn(read_expiries(timer.clone(), shared.clone())));
    Some(timer)
}

/// The runtime's side: each read of the timer is one sample, the wait of the oldest expiry it
/// had not read.
async fn read_expiries(timer: Arc<AsyncFd<OwnedFd>>, shared: Arc<Shared>) {
    let mut buf = [0u8; 8];
    loop {
        let mut ready = tokio::select! {
            _ = shared.stopped.notified() => return,
            ready = timer.readable() => match ready {
                Ok(ready) => ready,
                Err(_) => return,
            },
        };
        match rustix::io::read(timer.get_ref(), &mut buf) {
            Ok(8) => shared.polled(u64::from_ne_bytes(buf)),
            Ok(_) => return,
            Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
            Err(_) => return,
        }
    }
}

impl Shared {
    /// The reading task ran and read `expiries`: the oldest unread one waited until now.
    fn polled(&self, expiries: u64) {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(expired) = state.next_expiry else {
            return; // disarmed meanwhile
        };
        let n = u32::try_from(expiries).unwrap_or(u32::MAX);
        state.next_expiry = Some(expired + TICK * n);
        if state.watching.is_empty() {
            return;
        }
        if state.samples.len() >= MAX_SAMPLES {
            state.samples.pop_front();
        }
        state
            .samples
            .push_back((expired, now.saturating_duration_since(expired)));
    }
}

/// One burst's measurement; [`LagWatch::finish`] gives its numbers.
pub struct LagWatch {
    shared: Arc<Shared>,
    id: u64,
    start: Instant,
    cpu_start: Option<Duration>,
}

impl LagWatch {
    /// The lag of every expiry since the watch started (an expiry still unread counts with its
    /// wait so far) and the process's CPU time over the same interval.
    pub fn finish(self) -> ClientLoad {
        let end = Instant::now();
        let cpu = match (self.cpu_start, process_cpu()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let state = self.shared.lock();
        let mut lags: Vec<Duration> = state
            .samples
            .iter()
            .filter(|(sent, _)| *sent >= self.start)
            .map(|(_, lag)| *lag)
            .collect();
        // An expiry not read yet waited until now (one that is still to come did not).
        if let Some(expired) = state.next_expiry.filter(|e| *e >= self.start && *e < end) {
            lags.push(end.saturating_duration_since(expired));
        }
        drop(state);
        ClientLoad { lags, cpu }
    }
}

/// A burst that ends without `finish` (its task was dropped) stops being watched too, so the
/// timer does not tick for it forever.
impl Drop for LagWatch {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.watching.retain(|(id, _)| *id != self.id);
        // Samples older than every remaining burst are nobody's any more.
        match state.watching.iter().map(|(_, start)| *start).min() {
            Some(oldest) => {
                while state
                    .samples
                    .front()
                    .is_some_and(|(sent, _)| *sent < oldest)
                {
                    state.samples.pop_front();
                }
            }
            None => {
                state.samples.clear();
                if let Some(timer) = &state.timer {
                    arm(timer, None);
                }
                state.next_expiry = None;
            }
        }
    }
}

/// User plus system CPU time of the whole process so far, every thread (exited ones too),
/// in nanoseconds (`CLOCK_PROCESS_CPUTIME_ID`).
fn process_cpu() -> Option<Duration> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Some(Duration::new(
        u64::try_from(t.tv_sec).ok()?,
        u32::try_from(t.tv_nsec).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The share of `load`'s lag samples at or above `at` (the probe keeps samples; `stats`
    /// summarizes them, and this module may not use it: "p99 ≥ x" is "at least 1% ≥ x").
    fn share_at_least(load: &ClientLoad, at: Duration) -> f64 {
        let n = load.lags.iter().filter(|&&lag| lag >= at).count();
        n as f64 / load.lags.len().max(1) as f64
    }

    /// Spins this thread for `d`: busy, not asleep.
    fn spin(d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    /// A runtime of one thread, as `run` pinned to one core has.
    fn one_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn cpu_time_counts_this_process_s_work() {
        let before = process_cpu().unwrap();
        spin(Duration::from_millis(50));
        let spent = process_cpu().unwrap() - before;
        // At least the part of 50 ms of spinning the scheduler gave this thread.
        assert!(spent >= Duration::from_millis(5), "{spent:?}");
    }

    /// A runtime whose only thread is busy in 20 ms blocking stretches: ticks wait for them.
    #[test]
    fn a_starved_runtime_shows_its_lag() {
        let rt = one_thread();
        let probe = LagProbe::new();
        let load = rt.block_on(async {
            let watch = probe.watch();
            let until = Instant::now() + Duration::from_millis(600);
            while Instant::now() < until {
                spin(Duration::from_millis(20));
                tokio::task::yield_now().await;
            }
            watch.finish()
        });
        assert!(load.lags.len() >= 5, "{load:?}");
        assert!(
            share_at_least(&load, Duration::from_millis(10)) >= 0.01,
            "{load:?}"
        );
        // 600 ms of spinning (a busy machine may take some of it away).
        assert!(load.cpu.unwrap() >= Duration::from_millis(150), "{load:?}");
    }

    /// Many short ready tasks, as a runtime full of streams has: each is quick, but a task that
    /// becomes ready waits for a whole round of them. The tick must wait for that round too,
    /// not jump it (a task spawned from outside would, through the global queue).
    #[test]
    fn a_tick_waits_behind_the_ready_tasks_like_a_socket_read() {
        let rt = one_thread();
        let probe = LagProbe::new();
        let load = rt.block_on(async {
            let watch = probe.watch();
            let until = Instant::now() + Duration::from_millis(500);
            let tasks: Vec<_> = (0..400)
                .map(|_| {
                    tokio::spawn(async move {
                        while Instant::now() < until {
                            spin(Duration::from_micros(100));
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            watch.finish()
        });
        // A round is 400 × 100 µs = 40 ms.
        assert!(
            share_at_least(&load, Duration::from_millis(20)) >= 0.01,
            "{load:?}"
        );
    }

    /// An idle runtime polls a tick at once; the starved case above is the contrast (the
    /// bound is loose: the test machine may be busy).
    #[test]
    fn an_idle_runtime_has_little_lag() {
        let rt = one_thread();
        let probe = LagProbe::new();
        let load = rt.block_on(async {
            let watch = probe.watch();
            tokio::time::sleep(Duration::from_millis(300)).await;
            watch.finish()
        });
        assert!(load.lags.len() >= 10, "{load:?}");
        assert!(
            share_at_least(&load, Duration::from_millis(5)) < 0.01,
            "{load:?}"
        );
    }

    #[test]
    fn concurrent_watches_take_their_own_interval_and_the_timer_rests_between() {
        let rt = one_thread();
        let probe = LagProbe::new();
        rt.block_on(async {
            let long = probe.watch();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let short = probe.watch();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let short = short.finish();
            let long = long.finish();
            assert!(!short.lags.is_empty(), "{short:?}");
            assert!(long.lags.len() > short.lags.len(), "{long:?} {short:?}");
            assert!(probe.owner.shared.lock().samples.is_empty());
            // No burst: the timer is disarmed.
            tokio::time::sleep(Duration::from_millis(50)).await;
            {
                let state = probe.owner.shared.lock();
                assert!(state.samples.is_empty() && state.next_expiry.is_none());
            }
            // A burst dropped before it finished is no longer watched either.
            let abandoned = probe.watch();
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(abandoned);
            let state = probe.owner.shared.lock();
            assert!(state.watching.is_empty() && state.samples.is_empty());
        });
    }
}
