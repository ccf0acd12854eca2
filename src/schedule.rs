//! Scheduling: turns a target's `schedule` into fire times and applies the overlap policy.
//! Every tick is accounted for: it fires, or it is skipped and counted (`overlap`, `late`).
//!
//! Plain tokio timers and croner (through `config::Schedule::next_fires`), not
//! tokio-cron-scheduler: its repeated jobs can stop firing under load (issue #113, fix
//! unmerged) and its timezone offset is frozen at job creation, which breaks across DST
//! (#87, #107). Here each fire time is computed fresh, in the target's timezone, from the wall
//! clock. Does not: run requests or touch metrics (the caller's callbacks do).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{Overlap, Schedule};

/// Why a tick did not start a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The previous burst was still running (`overlap: skip`, or the queue was full).
    Overlap,
    /// The process was too busy or asleep: the tick's time passed by more than a period.
    Late,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Overlap => "overlap",
            Skip::Late => "late",
        }
    }
}

/// Produces fire times for one target.
#[derive(Debug, Clone)]
pub struct Ticker {
    schedule: Schedule,
    /// The nominal time of the last fire (without jitter), so `every` does not drift.
    last_nominal: Option<DateTime<Utc>>,
}

impl Ticker {
    pub fn new(schedule: Schedule) -> Self {
        Ticker {
            schedule,
            last_nominal: None,
        }
    }

    /// The first fire. `every` schedules start at a stable offset within the first period
    /// (from the target name), so that many targets do not all fire at once; `run_on_start`
    /// fires now. Cron schedules fire at their next match.
    pub fn first(&mut self, now: DateTime<Utc>, name: &str, run_on_start: bool) -> DateTime<Utc> {
        if run_on_start {
            self.last_nominal = Some(now);
            return now;
        }
        match &self.schedule {
            Schedule::Every { every, .. } => {
                let offset = every.mul_f64(spread_fraction(name));
                let nominal = now + to_chrono(offset);
                self.last_nominal = Some(nominal);
                nominal
            }
            Schedule::Cron { .. } => self.next(now),
        }
    }

    /// The next fire after the last one (which may lie before `now` when the caller was late;
    /// the caller counts such ticks as skipped). `now` anchors the first call only.
    pub fn next(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        match &self.schedule {
            Schedule::Every { every, jitter } => {
                let base = self.last_nominal.unwrap_or(now);
                let nominal = base + to_chrono(*every);
                self.last_nominal = Some(nominal);
                let jitter = if jitter.is_zero() {
                    Duration::ZERO
                } else {
                    jitter.mul_f64(rand::rng().random::<f64>())
                };
                nominal + to_chrono(jitter)
            }
            Schedule::Cron { .. } => {
                let after = self.last_nominal.unwrap_or(now);
                let next = self
                    .schedule
                    .next_fires(after, 1)
                    .into_iter()
                    .next()
                    // A valid cron expression always has a next match; fall back to a day.
                    .unwrap_or(after + chrono::Duration::days(1));
                self.last_nominal = Some(next);
                next
            }
        }
    }

    pub fn period(&self) -> Duration {
        self.schedule.period()
    }
}

/// A stable fraction in [0, 1) from a name (FNV-1a), to spread first fires.
pub fn spread_fraction(name: &str) -> f64 {
    (fnv1a(name.as_bytes()) % 10_000) as f64 / 10_000.0
}

/// FNV-1a 64: stable across runs and versions (also used for `--shard`).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Moves `ticker` on after the fire due at or before `now`: returns the first fire after `now`
/// and how many fires in between already lie in the past. Those passed while the process was
/// stalled (or asleep); the driver counts them as `late` instead of losing them silently or
/// firing them in a rush.
pub fn advance(ticker: &mut Ticker, now: DateTime<Utc>) -> (DateTime<Utc>, u64) {
    let mut late = 0;
    let mut following = ticker.next(now);
    while following <= now {
        late += 1;
        following = ticker.next(now);
    }
    (following, late)
}

/// What the driver reports to its owner.
pub trait Hooks: Send + Sync {
    /// `count` ticks did not start a burst.
    fn skipped(&self, reason: Skip, count: u64);
    /// The next fire time changed.
    fn next_run(&self, at: Option<DateTime<Utc>>);
}

/// A driver's state: what it starts from, and what it hands back when stopped so that a
/// successor (after a reload) continues where it left off. Carrying the running burst over
/// keeps the overlap policy across reloads: two bursts of one target never run at once.
#[derive(Debug, Default)]
pub struct Handover {
    /// The ticker and its next fire; `None` for a target that only runs when triggered.
    pub ticking: Option<(Ticker, DateTime<Utc>)>,
    /// The burst still running, if any.
    pub running: Option<JoinHandle<()>>,
    /// A burst queued behind it (`overlap: queue`).
    pub pending: bool,
}

/// Drives one target until `stop` becomes true: sleeps until each fire, applies the overlap
/// policy, and calls `fire(lag)` to start a burst (which returns its task). Manual triggers
/// arrive on `trigger` and obey the same overlap policy. Running bursts are not awaited on
/// stop: they are handed back, with the schedule's state, in the returned `Handover`.
pub async fn drive<F>(
    start: Handover,
    overlap: Overlap,
    hooks: &dyn Hooks,
    mut fire: F,
    mut trigger: mpsc::Receiver<()>,
    mut stop: watch::Receiver<bool>,
) -> Handover
where
    F: FnMut(Duration) -> JoinHandle<()>,
{
    let Handover {
        ticking,
        mut running,
        mut pending,
    } = start;
    let (mut ticker, mut next) = match ticking {
        Some((t, first)) => (Some(t), Some(first)),
        None => (None, None),
    };
    hooks.next_run(next);
    loop {
        let tick = async {
            match next {
                Some(at) => {
                    let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(wait).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let finished = async {
            match &mut running {
                Some(handle) => {
                    let _ = handle.await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        enum Wake {
            Tick,
            Trigger,
            Finished,
            Stop,
        }
        let wake = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => Wake::Stop,
            () = finished => Wake::Finished,
            Some(()) = trigger.recv() => Wake::Trigger,
            () = tick => Wake::Tick,
        };
        match wake {
            Wake::Stop => {
                // The successor (if any) publishes its own next run; clearing it here would
                // race with it.
                return Handover {
                    ticking: ticker.zip(next),
                    running,
                    pending,
                };
            }
            Wake::Finished => {
                running = None;
                if pending {
                    pending = false;
                    running = Some(fire(Duration::ZERO));
                }
            }
            Wake::Trigger | Wake::Tick => {
                let now = Utc::now();
                let mut lag = Duration::ZERO;
                if let (Wake::Tick, Some(t), Some(due)) = (&wake, ticker.as_mut(), next) {
                    lag = (now - due).to_std().unwrap_or(Duration::ZERO);
                    let (following, late) = advance(t, now);
                    if late > 0 {
                        hooks.skipped(Skip::Late, late);
                    }
                    next = Some(following);
                    hooks.next_run(next);
                }
                let busy = running.as_ref().is_some_and(|h| !h.is_finished());
                if !busy {
                    running = Some(fire(lag));
                } else {
                    match overlap {
                        Overlap::Queue if !pending => pending = true,
                        _ => hooks.skipped(Skip::Overlap, 1),
                    }
                }
            }
        }
    }
}
