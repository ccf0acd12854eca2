//! The client's own scheduling lag and CPU time during a burst: is the prober itself part of
//! what it measures? A ready task that waits for the runtime to poll it adds that wait to every
//! timestamp it takes (a first token read late is a TTFT too high).
//!
//! How: a dedicated OS thread wakes every [`TICK`], notes the `Instant`, and writes one byte to a
//! socket pair whose other end a task on the runtime reads; when the runtime polls that task, it
//! records `now − sent`. The tick takes the path a first token takes: the runtime learns of it
//! from its I/O driver and queues the woken task behind the other ready ones, so the number is
//! how long a request's task waits after its socket became readable. (A task spawned from
//! another thread would go to the runtime's global queue, which is polled every few dozen local
//! tasks and so jumps the very queue this is meant to see.) The thread is not a tokio timer, so
//! the timer wheel's 1 ms granularity does not enter the number, and its clock runs on while the
//! runtime is starved. Only one tick is outstanding at a time: a starved runtime is not buried
//! under ticks, and a tick still waiting when a burst ends counts with its lag so far.
//!
//! One probe serves every burst of a runtime (the daemon's concurrent bursts share it); each
//! burst takes the samples sent during its own interval. The thread sleeps while no burst runs.
//! CPU time is the whole process's (`CLOCK_PROCESS_CPUTIME_ID`), so bursts that overlap share it.
//!
//! Does not: decide what is too much lag (`stats`), print, or touch Prometheus.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::ClientLoad;

/// How often the thread sends a tick while a burst runs. Each tick wakes the runtime when it is
/// idle, which cost 30–65 µs of CPU on a loaded core (two context switches, a socket write and
/// read, the runtime's wake-up): at 1 ms the probe took 3% of a core, a third more CPU for a
/// 1,000-request run. At 10 ms it is about 0.65% while a burst runs, and a 10-second burst still
/// gets 1,000 samples: the interval sets how many samples there are, not how precise each is.
pub const TICK: Duration = Duration::from_millis(10);

/// Samples kept at most (about 44 minutes of ticks, 8 MiB); a longer burst keeps its last
/// ones.
const MAX_SAMPLES: usize = 1 << 18;

/// The scheduling-lag probe of one runtime. Cheap to clone; the thread stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct LagProbe {
    owner: Arc<Owner>,
}

/// Stops the thread when dropped.
struct Owner {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a burst starts or the probe is dropped.
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// The thread and its reading task run (on the first burst's runtime).
    thread_started: bool,
    stop: bool,
    /// Start of every burst being measured, by watch id.
    watching: Vec<(u64, Instant)>,
    next_id: u64,
    /// When the tick not yet polled was sent.
    outstanding: Option<Instant>,
    /// `(sent, lag)` of every polled tick, oldest first, sent while some burst ran.
    samples: VecDeque<(Instant, Duration)>,
}

impl Default for LagProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl LagProbe {
    /// A probe whose thread starts with the first burst it measures, on that burst's runtime.
    pub fn new() -> LagProbe {
        LagProbe {
            owner: Arc::new(Owner {
                shared: Arc::new(Shared {
                    state: Mutex::default(),
                    wake: Condvar::new(),
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
        if !state.thread_started {
            // Without the thread the burst reports no lag samples (`null`), which is the truth.
            state.thread_started = start_ticking(shared).is_some();
        }
        drop(state);
        shared.wake.notify_all();
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
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the reading task on the current runtime and the ticking thread; `None` outside a
/// runtime or when the socket pair or the thread cannot be had.
fn start_ticking(shared: &Arc<Shared>) -> Option<()> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let (writer, reader) = UnixStream::pair().ok()?;
    reader.set_nonblocking(true).ok()?;
    let reader = {
        let _runtime = handle.enter();
        tokio::net::UnixStream::from_std(reader).ok()?
    };
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name("streamprobe-lag".into())
        .spawn(move || ticker(&thread_shared, writer))
        .ok()?;
    // Ends when the thread does (its end of the pair closes).
    drop(handle.spawn(read_ticks(reader, shared.clone())));
    Some(())
}

/// The runtime's side: every byte is a tick; its lag is taken when this task runs.
async fn read_ticks(reader: tokio::net::UnixStream, shared: Arc<Shared>) {
    let mut buf = [0u8; 64];
    loop {
        if reader.readable().await.is_err() {
            return;
        }
        match reader.try_read(&mut buf) {
            Ok(0) => return,
            Ok(_) => shared.polled(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// The thread: while some burst is watched, send a tick every [`TICK`] unless one is still
/// waiting to be polled.
fn ticker(shared: &Arc<Shared>, mut writer: UnixStream) {
    loop {
        let mut state = shared.lock();
        while !state.stop && state.watching.is_empty() {
            state = shared
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.stop {
            return;
        }
        if state.outstanding.is_none() {
            state.outstanding = Some(Instant::now());
            drop(state);
            // Fails only once the reading task is gone (its runtime shut down): nothing left
            // to measure.
            if writer.write_all(&[1]).is_err() {
                return;
            }
        } else {
            drop(state);
        }
        std::thread::sleep(TICK);
    }
}

impl Shared {
    /// The reading task ran: the outstanding tick's lag is now.
    fn polled(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(sent) = state.outstanding.take() else {
            return;
        };
        let lag = now.saturating_duration_since(sent);
        if state.watching.is_empty() {
            return;
        }
        if state.samples.len() >= MAX_SAMPLES {
            state.samples.pop_front();
        }
        state.samples.push_back((sent, lag));
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
    /// The lag of every tick sent since the watch started (a tick still waiting counts with its
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
        if let Some(sent) = state.outstanding.filter(|sent| *sent >= self.start) {
            lags.push(end.saturating_duration_since(sent));
        }
        drop(state);
        ClientLoad::from_lags(lags, cpu)
    }
}

/// A burst that ends without `finish` (its task was dropped) stops being watched too, so the
/// thread does not tick for it forever.
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
            None => state.samples.clear(),
        }
    }
}

impl ClientLoad {
    fn from_lags(mut lags: Vec<Duration>, cpu: Option<Duration>) -> ClientLoad {
        lags.sort_unstable();
        let n = lags.len();
        // Nearest rank: the smallest sample at or above 99% of them.
        let p99 = (n > 0).then(|| lags[(n * 99).div_ceil(100).max(1) - 1]);
        ClientLoad {
            lag_samples: n as u64,
            lag_p99: p99,
            lag_max: lags.last().copied(),
            cpu,
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

    #[test]
    fn cpu_time_counts_this_process_s_work() {
        let before = process_cpu().unwrap();
        let until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        let spent = process_cpu().unwrap() - before;
        // At least the part of 50 ms of spinning the scheduler gave this thread.
        assert!(spent >= Duration::from_millis(5), "{spent:?}");
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        let ms = Duration::from_millis;
        let lags: Vec<Duration> = (1..=200).map(ms).collect();
        let load = ClientLoad::from_lags(lags, None);
        assert_eq!(load.lag_samples, 200);
        assert_eq!(load.lag_p99, Some(ms(198)));
        assert_eq!(load.lag_max, Some(ms(200)));
        let one = ClientLoad::from_lags(vec![ms(3)], Some(ms(10)));
        assert_eq!((one.lag_p99, one.lag_max), (Some(ms(3)), Some(ms(3))));
        let none = ClientLoad::from_lags(Vec::new(), None);
        assert_eq!((none.lag_samples, none.lag_p99), (0, None));
    }

    /// A runtime whose only thread is busy in 20 ms blocking stretches: ticks wait for them.
    #[test]
    fn a_starved_runtime_shows_its_lag() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let probe = LagProbe::new();
        let load = rt.block_on(async {
            let watch = probe.watch();
            let until = Instant::now() + Duration::from_millis(600);
            while Instant::now() < until {
                let busy = Instant::now() + Duration::from_millis(20);
                while Instant::now() < busy {
                    std::hint::spin_loop();
                }
                tokio::task::yield_now().await;
            }
            watch.finish()
        });
        assert!(load.lag_samples >= 5, "{load:?}");
        let p99 = load.lag_p99.unwrap();
        assert!(p99 >= Duration::from_millis(10), "{load:?}");
        assert!(load.lag_max.unwrap() >= p99);
        // 600 ms of spinning (a busy machine may take some of it away).
        assert!(load.cpu.unwrap() >= Duration::from_millis(150), "{load:?}");
    }

    /// Many short ready tasks, as a runtime full of streams has: each is quick, but a task that
    /// becomes ready waits for a whole round of them. The tick must wait for that round too,
    /// not jump it (a task spawned from outside would, through the global queue).
    #[test]
    fn a_tick_waits_behind_the_ready_tasks_like_a_socket_read() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let probe = LagProbe::new();
        let load = rt.block_on(async {
            let watch = probe.watch();
            let until = Instant::now() + Duration::from_millis(500);
            let tasks: Vec<_> = (0..400)
                .map(|_| {
                    tokio::spawn(async move {
                        while Instant::now() < until {
                            let busy = Instant::now() + Duration::from_micros(100);
                            while Instant::now() < busy {
                                std::hint::spin_loop();
                            }
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
            load.lag_p99.unwrap() >= Duration::from_millis(20),
            "{load:?}"
        );
    }

    /// An idle runtime polls a tick at once; the starved case above is the contrast (the
    /// bound is loose: the test machine may be busy).
    #[test]
    fn an_idle_runtime_has_little_lag() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let probe = LagProbe::new();
        let load = rt.block_on(async {
            let watch = probe.watch();
            tokio::time::sleep(Duration::from_millis(300)).await;
            watch.finish()
        });
        assert!(load.lag_samples >= 10, "{load:?}");
        assert!(load.lag_p99.unwrap() < Duration::from_millis(5), "{load:?}");
    }

    #[test]
    fn concurrent_watches_take_their_own_interval_and_the_thread_rests_between() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let probe = LagProbe::new();
        rt.block_on(async {
            let long = probe.watch();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let short = probe.watch();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let short = short.finish();
            let long = long.finish();
            assert!(short.lag_samples > 0, "{short:?}");
            assert!(long.lag_samples > short.lag_samples, "{long:?} {short:?}");
            assert!(probe.owner.shared.lock().samples.is_empty());
            // No burst: no ticks are sent.
            tokio::time::sleep(Duration::from_millis(50)).await;
            {
                let state = probe.owner.shared.lock();
                assert!(state.samples.is_empty() && state.outstanding.is_none());
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
