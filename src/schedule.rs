//! Scheduling: turns a target's `schedule` into fire times and applies the overlap policy.
//! Every tick is accounted for: it fires, or it is skipped and counted (`overlap`, `late`).
//! Also which targets an instance runs at all (`--shard`), by the same stable name hash that
//! spreads first fires.
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
    /// The process was too busy or asleep: the tick's time had already passed when the
    /// tick before it was handled (see `advance`).
    Late,
}

impl Skip {
    pub const ALL: [Skip; 2] = [Skip::Overlap, Skip::Late];

    /// The metric label.
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
                let nominal = later(now, every.mul_f64(spread_fraction(name)));
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
                let nominal = later(base, *every);
                self.last_nominal = Some(nominal);
                let jitter = if jitter.is_zero() {
                    Duration::ZERO
                } else {
                    jitter.mul_f64(rand::rng().random::<f64>())
                };
                later(nominal, jitter)
            }
            Schedule::Cron { .. } => {
                let after = self.last_nominal.unwrap_or(now);
                let next = self
                    .schedule
                    .next_fires(after, 1)
                    .into_iter()
                    .next()
                    // A valid cron expression always has a next match; fall back to a day.
                    .unwrap_or(later(after, Duration::from_secs(86_400)));
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

/// Which slice of a large config this instance runs (`--shard i/n`): several instances split
/// one config's targets between them by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Whether this shard runs `name`: FNV-1a of the name, modulo the shard count.
    pub fn owns(&self, name: &str) -> bool {
        fnv1a(name.as_bytes()) % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard must look like i/n with 0 <= i < n, got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
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

/// `t + d`, saturating: `every` has no upper bound in the config, and chrono's `+` panics on
/// overflow, which would silently kill the target's scheduler task.
fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
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
    /// A tick was acted on (its burst started, queued or skipped) `lag` after it was due: the
    /// scheduler's own lateness, whatever the overlap policy then did.
    fn tick_lag(&self, lag: Duration);
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
                    hooks.tick_lag(lag);
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339 time")
    }

    fn secs(s: f64) -> chrono::Duration {
        chrono::Duration::from_std(Duration::from_secs_f64(s)).unwrap()
    }

    fn every(every: Duration, jitter: Duration) -> Schedule {
        Schedule::Every { every, jitter }
    }

    /// A validated cron schedule, built the way the config builds it.
    fn cron(expr: &str, timezone: &str) -> Schedule {
        let yaml = format!(
            "targets:\n  - name: t\n    url: http://127.0.0.1:9/\n    method: GET\n    \
             schedule: {{cron: \"{expr}\", timezone: {timezone}}}\n"
        );
        let config = crate::config::load_str(&yaml, Path::new("test.yaml")).expect("valid");
        config.targets[0].schedule.clone().expect("scheduled")
    }

    #[test]
    fn every_first_fire_is_spread_within_the_period_and_stable_per_name() {
        let period = Duration::from_secs(60);
        let now = utc("2026-11-27T10:00:00Z");
        let mut offsets = BTreeSet::new();
        for name in ["a", "b", "openai-gpt-4o-mini", "local-qwen"] {
            let first = Ticker::new(every(period, Duration::ZERO)).first(now, name, false);
            let offset = (first - now).to_std().expect("not before now");
            assert!(offset < period, "{name}: {offset:?}");
            // The same name gets the same offset, whenever it starts.
            let later = now + secs(3600.5);
            let again = Ticker::new(every(period, Duration::ZERO)).first(later, name, false);
            assert_eq!(again - later, first - now, "{name}");
            offsets.insert(offset);
        }
        assert_eq!(offsets.len(), 4, "names spread: {offsets:?}");
        // Pinned: changing the hash would move every deployed schedule.
        assert_eq!(spread_fraction("a"), 0.1996);
        assert_eq!(spread_fraction("openai-gpt-4o-mini"), 0.7233);
    }

    #[test]
    fn run_on_start_fires_now_then_follows_the_schedule() {
        let now = utc("2026-11-27T10:00:07.250Z");
        let mut t = Ticker::new(every(Duration::from_secs(30), Duration::ZERO));
        assert_eq!(t.first(now, "a", true), now);
        assert_eq!(t.next(now), now + secs(30.0));

        let mut c = Ticker::new(cron("0 */5 * * * *", "UTC"));
        assert_eq!(c.first(now, "a", true), now);
        assert_eq!(c.next(now), utc("2026-11-27T10:05:00Z"));
    }

    #[test]
    fn every_fires_exactly_one_period_apart_however_late_the_driver_is() {
        let t0 = utc("2026-11-27T10:00:00Z");
        let mut t = Ticker::new(every(Duration::from_millis(1500), Duration::ZERO));
        assert_eq!(t.first(t0, "a", true), t0);
        let mut due = t0;
        for k in 1..=1000 {
            // Handled anywhere within the period after it was due: no drift, nothing late.
            let now = due + secs(0.001 * f64::from(k % 1400));
            let (next, late) = advance(&mut t, now);
            assert_eq!(late, 0);
            assert_eq!(next, t0 + secs(1.5 * f64::from(k)), "fire {k}");
            due = next;
        }
    }

    #[test]
    fn jitter_stays_within_bounds_and_does_not_move_the_schedule() {
        let t0 = utc("2026-11-27T10:00:00Z");
        let mut t = Ticker::new(every(Duration::from_secs(10), Duration::from_secs(2)));
        t.first(t0, "a", true);
        let mut jittered = 0;
        for k in 1..=500 {
            let fire = t.next(t0);
            let nominal = t0 + secs(10.0 * f64::from(k));
            assert!(
                nominal <= fire && fire < nominal + secs(2.0),
                "fire {k}: {fire} vs {nominal}"
            );
            jittered += usize::from(fire != nominal);
        }
        assert!(jittered > 400, "jitter applied to only {jittered} of 500");
    }

    #[test]
    fn five_field_cron_fires_at_second_zero() {
        let mut t = Ticker::new(cron("*/15 * * * *", "UTC"));
        assert_eq!(
            t.first(utc("2026-11-27T10:07:31Z"), "a", false),
            utc("2026-11-27T10:15:00Z")
        );
        assert_eq!(t.next(Utc::now()), utc("2026-11-27T10:30:00Z"));
        let mut s = Ticker::new(cron("*/20 * * * * *", "UTC"));
        assert_eq!(
            s.first(utc("2026-11-27T10:00:05Z"), "a", false),
            utc("2026-11-27T10:00:20Z")
        );
    }

    #[test]
    fn daily_cron_keeps_its_local_time_across_the_spring_dst_change() {
        // Berlin: CET (UTC+1) until 2026-03-29 02:00, then CEST (UTC+2).
        let mut t = Ticker::new(cron("0 0 12 * * *", "Europe/Berlin"));
        let fires = [
            t.first(utc("2026-03-27T13:00:00Z"), "a", false),
            t.next(Utc::now()),
            t.next(Utc::now()),
        ];
        assert_eq!(
            fires,
            [
                utc("2026-03-28T11:00:00Z"),
                utc("2026-03-29T10:00:00Z"),
                utc("2026-03-30T10:00:00Z"),
            ]
        );
        // 02:30 does not exist on the day of the change: that day fires once, at the end of
        // the gap (03:00 CEST), not never.
        let mut t = Ticker::new(cron("0 30 2 * * *", "Europe/Berlin"));
        let fires = [
            t.first(utc("2026-03-27T12:00:00Z"), "a", false),
            t.next(Utc::now()),
            t.next(Utc::now()),
        ];
        assert_eq!(
            fires,
            [
                utc("2026-03-28T01:30:00Z"),
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-30T00:30:00Z"),
            ]
        );
    }

    #[test]
    fn daily_cron_keeps_its_local_time_across_the_autumn_dst_change() {
        // Berlin: CEST until 2026-10-25 03:00, then CET.
        let mut t = Ticker::new(cron("0 0 12 * * *", "Europe/Berlin"));
        let fires = [
            t.first(utc("2026-10-23T13:00:00Z"), "a", false),
            t.next(Utc::now()),
            t.next(Utc::now()),
        ];
        assert_eq!(
            fires,
            [
                utc("2026-10-24T10:00:00Z"),
                utc("2026-10-25T11:00:00Z"),
                utc("2026-10-26T11:00:00Z"),
            ]
        );
        // 02:30 happens twice on the day of the change: it fires once, at the first.
        let mut t = Ticker::new(cron("0 30 2 * * *", "Europe/Berlin"));
        let fires = [
            t.first(utc("2026-10-23T12:00:00Z"), "a", false),
            t.next(Utc::now()),
            t.next(Utc::now()),
        ];
        assert_eq!(
            fires,
            [
                utc("2026-10-24T00:30:00Z"),
                utc("2026-10-25T00:30:00Z"),
                utc("2026-10-26T01:30:00Z"),
            ]
        );
    }

    #[test]
    fn fires_that_passed_while_stalled_are_counted_late() {
        let t0 = utc("2026-11-27T10:00:00Z");
        let mut t = Ticker::new(every(Duration::from_secs(1), Duration::ZERO));
        assert_eq!(t.first(t0, "a", true), t0);
        // The fire due at t0 is handled 3.5 s late: t0+1, +2 and +3 passed meanwhile.
        assert_eq!(advance(&mut t, t0 + secs(3.5)), (t0 + secs(4.0), 3));
        assert_eq!(advance(&mut t, t0 + secs(4.01)), (t0 + secs(5.0), 0));
        // A fire due exactly now has passed too: it cannot be slept for any more.
        assert_eq!(advance(&mut t, t0 + secs(6.0)), (t0 + secs(7.0), 1));

        let mut c = Ticker::new(cron("0 * * * * *", "UTC"));
        assert_eq!(
            c.first(utc("2026-11-27T10:00:30Z"), "a", false),
            utc("2026-11-27T10:01:00Z")
        );
        // Handled at 10:05:10: 10:02 … 10:05 were missed.
        assert_eq!(
            advance(&mut c, utc("2026-11-27T10:05:10Z")),
            (utc("2026-11-27T10:06:00Z"), 4)
        );
    }

    #[test]
    fn absurdly_long_periods_saturate_instead_of_panicking() {
        let now = utc("2026-11-27T10:00:00Z");
        let huge = Duration::from_secs(1_000_000_000_000_000);
        let mut t = Ticker::new(every(huge, Duration::ZERO));
        assert_eq!(t.first(now, "a", false), DateTime::<Utc>::MAX_UTC);
        assert_eq!(advance(&mut t, now), (DateTime::<Utc>::MAX_UTC, 0));
        let mut t = Ticker::new(every(huge, Duration::ZERO));
        assert_eq!(t.first(now, "a", true), now);
        assert_eq!(t.next(now), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shards_partition_names_stably() {
        let shard = |s: &str| s.parse::<Shard>();
        assert_eq!(shard("1/3"), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/3", "0/0", "x/2", "1", "-1/2", ""] {
            assert!(shard(bad).is_err(), "{bad:?}");
        }
        // Pinned: instances of different versions must agree on who runs what.
        let owner = |name: &str| {
            (0..3)
                .filter(|i| shard(&format!("{i}/3")).unwrap().owns(name))
                .collect::<Vec<_>>()
        };
        assert_eq!(owner("openai-gpt-4o-mini"), [0]);
        assert_eq!(owner("local-qwen"), [1]);
        assert_eq!(owner(""), [2]);
        for i in 0..100 {
            assert_eq!(owner(&format!("target-{i}")).len(), 1);
        }
    }

    /// Records what the driver reports.
    #[derive(Default)]
    struct Recorder {
        skipped: Mutex<Vec<(Skip, u64)>>,
        next_runs: Mutex<Vec<Option<DateTime<Utc>>>>,
        tick_lags: Mutex<Vec<Duration>>,
    }

    impl Recorder {
        fn skipped(&self, reason: Skip) -> u64 {
            let skipped = self.skipped.lock().unwrap();
            skipped.iter().filter(|s| s.0 == reason).map(|s| s.1).sum()
        }
    }

    impl Hooks for Recorder {
        fn skipped(&self, reason: Skip, count: u64) {
            self.skipped.lock().unwrap().push((reason, count));
        }
        fn next_run(&self, at: Option<DateTime<Utc>>) {
            self.next_runs.lock().unwrap().push(at);
        }
        fn tick_lag(&self, lag: Duration) {
            self.tick_lags.lock().unwrap().push(lag);
        }
    }

    /// Fake bursts that take `length`, counting how many ran and how many ran at once.
    #[derive(Clone, Default)]
    struct Bursts {
        started: Arc<AtomicUsize>,
        running: Arc<AtomicUsize>,
        max_running: Arc<AtomicUsize>,
    }

    impl Bursts {
        fn fire(&self, length: Duration) -> impl FnMut(Duration) -> JoinHandle<()> + use<> {
            let b = self.clone();
            move |_lag| {
                b.started.fetch_add(1, Ordering::SeqCst);
                let now = b.running.fetch_add(1, Ordering::SeqCst) + 1;
                b.max_running.fetch_max(now, Ordering::SeqCst);
                let running = b.running.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(length).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            }
        }

        fn started(&self) -> usize {
            self.started.load(Ordering::SeqCst)
        }
    }

    /// Runs `drive` for `run_for`, then stops it; returns what it handed back.
    async fn drive_for(
        start: Handover,
        overlap: Overlap,
        hooks: &Recorder,
        fire: impl FnMut(Duration) -> JoinHandle<()>,
        triggers: &[Duration],
        run_for: Duration,
    ) -> Handover {
        let (trigger_tx, trigger_rx) = mpsc::channel(1);
        let (stop_tx, stop_rx) = watch::channel(false);
        let control = async {
            let begin = tokio::time::Instant::now();
            for at in triggers {
                tokio::time::sleep_until(begin + *at).await;
                trigger_tx.send(()).await.unwrap();
            }
            tokio::time::sleep_until(begin + run_for).await;
            stop_tx.send(true).unwrap();
        };
        let (handover, ()) = tokio::join!(
            drive(start, overlap, hooks, fire, trigger_rx, stop_rx),
            control
        );
        handover
    }

    fn ticking(schedule: Schedule, run_on_start: bool) -> Handover {
        let mut ticker = Ticker::new(schedule);
        let first = ticker.first(Utc::now(), "a", run_on_start);
        Handover {
            ticking: Some((ticker, first)),
            ..Handover::default()
        }
    }

    #[tokio::test]
    async fn overlapping_ticks_are_skipped_and_counted() {
        let hooks = Recorder::default();
        let bursts = Bursts::default();
        let start = ticking(every(Duration::from_millis(50), Duration::ZERO), true);
        drive_for(
            start,
            Overlap::Skip,
            &hooks,
            bursts.fire(Duration::from_millis(180)),
            &[],
            Duration::from_millis(520),
        )
        .await;
        assert_eq!(bursts.max_running.load(Ordering::SeqCst), 1);
        assert!(bursts.started() >= 2, "{}", bursts.started());
        let skipped = hooks.skipped(Skip::Overlap) + hooks.skipped(Skip::Late);
        // Every tick is accounted for: it fired or it was counted.
        assert!(
            bursts.started() as u64 + skipped >= 9,
            "{} fired, {skipped} skipped",
            bursts.started()
        );
        assert!(hooks.skipped(Skip::Overlap) >= 4);
        // Each tick the driver woke for reports its lateness once, whether it fired or not.
        let lags = hooks.tick_lags.lock().unwrap();
        assert_eq!(
            lags.len() as u64,
            bursts.started() as u64 + hooks.skipped(Skip::Overlap),
            "{lags:?}"
        );
        assert!(
            lags.iter().all(|l| *l < Duration::from_millis(520)),
            "{lags:?}"
        );
    }

    #[tokio::test]
    async fn queue_runs_one_pending_burst_right_after_the_running_one() {
        let hooks = Recorder::default();
        let bursts = Bursts::default();
        let start = ticking(every(Duration::from_millis(100), Duration::ZERO), true);
        drive_for(
            start,
            Overlap::Queue,
            &hooks,
            bursts.fire(Duration::from_millis(150)),
            &[],
            Duration::from_millis(480),
        )
        .await;
        // Back to back at 0, 150, 300 and 450 ms; the tick at 200 found one already queued.
        assert_eq!(bursts.max_running.load(Ordering::SeqCst), 1);
        assert!(bursts.started() >= 3, "{}", bursts.started());
        assert!(hooks.skipped(Skip::Overlap) >= 1);
    }

    #[tokio::test]
    async fn triggers_fire_a_manual_target_and_obey_the_overlap_policy() {
        let hooks = Recorder::default();
        let bursts = Bursts::default();
        let ms = Duration::from_millis;
        let handover = drive_for(
            Handover::default(),
            Overlap::Skip,
            &hooks,
            bursts.fire(ms(100)),
            &[ms(0), ms(40), ms(200)],
            ms(250),
        )
        .await;
        assert_eq!(bursts.started(), 2);
        assert_eq!(hooks.skipped(Skip::Overlap), 1);
        assert_eq!(*hooks.next_runs.lock().unwrap(), [None]);
        assert!(
            hooks.tick_lags.lock().unwrap().is_empty(),
            "triggers are not ticks"
        );
        assert!(handover.ticking.is_none());
    }

    #[tokio::test]
    async fn a_stopped_driver_hands_its_schedule_and_running_burst_to_its_successor() {
        let ms = Duration::from_millis;
        let hooks = Recorder::default();
        let bursts = Bursts::default();
        let start = ticking(every(Duration::from_secs(3600), Duration::ZERO), false);
        let first = start.ticking.as_ref().unwrap().1;
        let handover = drive_for(
            start,
            Overlap::Skip,
            &hooks,
            bursts.fire(ms(300)),
            &[ms(0)],
            ms(50),
        )
        .await;
        assert_eq!(handover.ticking.as_ref().map(|t| t.1), Some(first));
        assert!(handover.running.as_ref().is_some_and(|h| !h.is_finished()));
        // Stopping does not unpublish the next run: the successor publishes its own.
        assert_eq!(*hooks.next_runs.lock().unwrap(), [Some(first)]);

        // The successor: a trigger while the inherited burst runs is an overlap.
        let successor = Recorder::default();
        let handover = drive_for(
            handover,
            Overlap::Skip,
            &successor,
            bursts.fire(ms(10)),
            &[ms(0)],
            ms(50),
        )
        .await;
        assert_eq!(bursts.started(), 1);
        assert_eq!(successor.skipped(Skip::Overlap), 1);
        assert_eq!(*successor.next_runs.lock().unwrap(), [Some(first)]);
        assert!(handover.running.is_some());
    }
}
