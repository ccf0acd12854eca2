//! The daemon's per-target windows (DESIGN §10): a **baseline** of the bursts that started in
//! [now − `baseline`, now − `recent`) and a **recent** window of those in [now − `recent`, now],
//! kept current as bursts land and judged after each one. Pure: bursts and times come in as
//! values, so a start-up rebuild from result files and live updates give the same state.
//!
//! **Structure.** Time is cut into slots on two grids aligned to the Unix epoch: the recent
//! window is [`RECENT_SLOTS`] slots of `recent / RECENT_SLOTS`, the baseline [`BASELINE_SLOTS`]
//! slots of `(baseline − recent) / BASELINE_SLOTS`. Each slot holds one [`Reservoir`] of at most
//! [`SLOT_CAPACITY`] samples per tracked metric (TTFT, TPOT). A recent slot that ages out is
//! merged into the baseline slot where it started; a baseline slot that ages out is dropped.
//! Judging merges each window's slots into one reservoir (a uniform sample of the window,
//! each slot weighted by its stream's size) and runs `judge` on the two.
//!
//! **Memory** per target: at most `RECENT_SLOTS` recent slots and `BASELINE_SLOTS + 1` baseline
//! slots (integer slot widths may leave one more), so under `RECENT_SLOTS + BASELINE_SLOTS + 2`
//! = 32 slots × `SLOT_CAPACITY` × 8 bytes × 2 metrics = 512 KiB, whatever the window lengths and
//! burst sizes, plus the two merged reservoirs while judging.
//!
//! **Error.** (1) Edges: a window's edges move in steps of one slot, so the recent window holds
//! between `recent − recent/RECENT_SLOTS` and `recent` of bursts, and the baseline's far edge is
//! off by less than one baseline slot (5 h 15 m of a 7-day baseline). (2) Sampling: each merged
//! window is a uniform sample of at most 1,024 of its samples, so its quantiles are within
//! ε = √(ln(2/δ) / 2,048) in rank of the window's (ε = 0.051 for δ = 1%; p90's rank has a
//! standard deviation of 0.009). The verdict bootstraps that sample as it is, so this error is
//! inside its confidence interval: it costs power, never calibration (see `reservoir.rs`).
//!
//! Does not: read files or the clock, or know about Prometheus or the status page.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    Metric, RequestSample, Reservoir, Row, Samples, Settings, Statistic, Verdict, judge, rng,
};
use crate::config::{VerdictSettings, VerdictStatistic};
use crate::probe::{Outcome, RequestRecord};
use crate::stats::percentile;

/// Slots of the recent window.
pub const RECENT_SLOTS: i64 = 6;
/// Slots of the baseline window.
pub const BASELINE_SLOTS: i64 = 24;
/// Samples kept per slot and metric (and so per merged window).
pub const SLOT_CAPACITY: usize = 1024;
/// The metrics a target's windows keep and judge, in report order.
pub const TRACKED: [Metric; 2] = [Metric::Ttft, Metric::Tpot];
/// The quantiles exported as `streamprobe_baseline_seconds` and `streamprobe_change_ratio`.
pub const GAUGE_QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// One burst as the windows see it: its successful requests' samples per tracked metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BurstSamples {
    pub ttft: Vec<f64>,
    pub tpot: Vec<f64>,
}

impl BurstSamples {
    /// A finished burst's successful requests (interrupted ones say nothing about the target).
    pub fn from_records(records: &[RequestRecord]) -> BurstSamples {
        let mut samples = Samples::default();
        for r in records.iter().filter(|r| r.outcome != Outcome::Interrupted) {
            samples.push(RequestSample::from_record(r));
        }
        BurstSamples {
            ttft: samples.ttft,
            tpot: samples.tpot,
        }
    }

    fn of(&self, metric: Metric) -> &[f64] {
        match metric {
            Metric::Tpot => &self.tpot,
            _ => &self.ttft,
        }
    }
}

/// One slot: a reservoir per tracked metric.
#[derive(Debug, Clone)]
struct Slot {
    reservoirs: [Reservoir; TRACKED.len()],
}

impl Slot {
    /// An empty slot whose reservoirs are seeded by its grid and index, so that the same
    /// bursts give the same samples however they arrive.
    fn new(grid: u64, index: i64) -> Slot {
        Slot {
            reservoirs: std::array::from_fn(|m| {
                let seed = rng::mix(grid ^ rng::mix(index as u64 ^ rng::mix(m as u64 + 1)));
                Reservoir::new(SLOT_CAPACITY, seed)
            }),
        }
    }

    fn add(&mut self, burst: &BurstSamples) {
        for (reservoir, metric) in self.reservoirs.iter_mut().zip(TRACKED) {
            reservoir.extend(
                burst
                    .of(metric)
                    .iter()
                    .copied()
                    .filter(|x| x.is_finite() && *x >= 0.0),
            );
        }
    }

    fn merge(&mut self, other: &Slot) {
        for (mine, theirs) in self.reservoirs.iter_mut().zip(&other.reservoirs) {
            mine.merge(theirs);
        }
    }
}

/// Grid tags that keep the two grids' slot seeds apart.
const RECENT_GRID: u64 = 1;
const BASELINE_GRID: u64 = 2;

/// One target's baseline and recent windows.
#[derive(Debug, Clone)]
pub struct Windows {
    settings: VerdictSettings,
    /// Slot widths in milliseconds (≥ 1).
    recent_width: i64,
    baseline_width: i64,
    /// By slot index on each grid (index = milliseconds since the epoch ÷ width).
    recent: BTreeMap<i64, Slot>,
    baseline: BTreeMap<i64, Slot>,
    /// The latest time seen (a burst's start or `advance`'s `now`), in epoch milliseconds.
    now: Option<i64>,
}

/// One metric's judgement and the values behind the gauges and the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricReport {
    pub metric: Metric,
    /// The judged row: `settings.statistic` of recent vs baseline, at 95%, uncorrected.
    pub row: Row,
    /// Baseline quantiles at `GAUGE_QUANTILES` (seconds), `None` without baseline samples.
    pub baseline_quantiles: [Option<f64>; GAUGE_QUANTILES.len()],
    /// Recent ÷ baseline at `GAUGE_QUANTILES`, `None` when a side is empty or the baseline 0.
    pub change_ratios: [Option<f64>; GAUGE_QUANTILES.len()],
    /// The baseline band a chart draws: p50 and p95 (seconds).
    pub baseline_p50: Option<f64>,
    pub baseline_p95: Option<f64>,
}

/// What the windows conclude at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub settings: VerdictSettings,
    /// The moment judged.
    pub at: SystemTime,
    /// Per tracked metric, in `TRACKED` order.
    pub metrics: Vec<MetricReport>,
}

impl Report {
    pub fn metric(&self, metric: Metric) -> Option<&MetricReport> {
        self.metrics.iter().find(|m| m.metric == metric)
    }
}

/// The engine's statistic for a config one.
pub fn statistic(s: VerdictStatistic) -> Statistic {
    match s {
        VerdictStatistic::P50 => Statistic::P50,
        VerdictStatistic::P90 => Statistic::P90,
        VerdictStatistic::P99 => Statistic::P99,
        VerdictStatistic::Mean => Statistic::Mean,
    }
}

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn width(span: Duration, slots: i64) -> i64 {
    (i64::try_from(span.as_millis()).unwrap_or(i64::MAX) / slots).max(1)
}

impl Windows {
    /// Empty windows. `settings.recent` < `settings.baseline` (the config guarantees it).
    pub fn new(settings: VerdictSettings) -> Windows {
        Windows {
            settings,
            recent_width: width(settings.recent, RECENT_SLOTS),
            baseline_width: width(
                settings.baseline.saturating_sub(settings.recent),
                BASELINE_SLOTS,
            ),
            recent: BTreeMap::new(),
            baseline: BTreeMap::new(),
            now: None,
        }
    }

    pub fn settings(&self) -> &VerdictSettings {
        &self.settings
    }

    /// Slots held now (for the memory bound).
    pub fn slots(&self) -> usize {
        self.recent.len() + self.baseline.len()
    }

    /// Values held now, over all slots and metrics.
    pub fn values(&self) -> usize {
        self.recent
            .values()
            .chain(self.baseline.values())
            .flat_map(|s| s.reservoirs.iter())
            .map(|r| r.values().len())
            .sum()
    }

    /// The first recent slot index at `now`: recent slots below it belong to the baseline.
    fn recent_start(&self, now: i64) -> i64 {
        now.div_euclid(self.recent_width) - (RECENT_SLOTS - 1)
    }

    /// The first baseline slot index at `now`: older ones are dropped.
    fn baseline_start(&self, now: i64) -> i64 {
        let edge = now.saturating_sub(width(self.settings.baseline, 1));
        edge.div_euclid(self.baseline_width) + 1
    }

    /// Moves the windows to `now` (never back): recent slots that aged out join the baseline,
    /// baseline slots that aged out are dropped.
    pub fn advance(&mut self, now: SystemTime) {
        let now = millis(now).max(self.now.unwrap_or(i64::MIN));
        self.now = Some(now);
        let recent_start = self.recent_start(now);
        let kept = self.recent.split_off(&recent_start);
        let aged = std::mem::replace(&mut self.recent, kept);
        for (index, slot) in aged {
            self.add_to_baseline(index * self.recent_width, &slot);
        }
        let baseline_start = self.baseline_start(now);
        let kept = self.baseline.split_off(&baseline_start);
        self.baseline = kept;
    }

    /// Merges `slot`, which starts at `at`, into its baseline slot, unless it is older than the
    /// baseline.
    fn add_to_baseline(&mut self, at: i64, slot: &Slot) {
        let index = at.div_euclid(self.baseline_width);
        if self.now.is_some_and(|now| index < self.baseline_start(now)) {
            return;
        }
        self.baseline
            .entry(index)
            .or_insert_with(|| Slot::new(BASELINE_GRID, index))
            .merge(slot);
    }

    /// Records a burst that started at `started_at`, first moving the windows to it when it is
    /// the latest time seen. Bursts may come in any order (a rebuild reads files by name, which
    /// is by start time, so memory stays bounded throughout); one older than the baseline is
    /// ignored.
    pub fn record(&mut self, started_at: SystemTime, burst: &BurstSamples) {
        self.advance(started_at);
        let at = millis(started_at);
        let now = self.now.unwrap_or(at);
        let index = at.div_euclid(self.recent_width);
        if index >= self.recent_start(now) {
            self.recent
                .entry(index)
                .or_insert_with(|| Slot::new(RECENT_GRID, index))
                .add(burst);
        } else {
            let mut slot = Slot::new(RECENT_GRID, index);
            slot.add(burst);
            self.add_to_baseline(at, &slot);
        }
    }

    /// Moves to `now` and judges the recent window against the baseline.
    pub fn judge(&mut self, now: SystemTime) -> Report {
        self.advance(now);
        let statistic = statistic(self.settings.statistic);
        let engine = Settings {
            min_change: self.settings.min_change,
            min_samples: self.settings.min_samples as usize,
            ..Settings::default()
        };
        let metrics = TRACKED
            .iter()
            .enumerate()
            .map(|(m, &metric)| {
                let baseline = merged(self.baseline.values(), m);
                let recent = merged(self.recent.values(), m);
                let row = judge(metric, statistic, &baseline, &recent, &engine);
                let q = |xs: &[f64], q: f64| (!xs.is_empty()).then(|| percentile(xs, q));
                let baseline_quantiles = GAUGE_QUANTILES.map(|level| q(&baseline, level));
                let change_ratios = GAUGE_QUANTILES.map(|level| {
                    let (b, r) = (q(&baseline, level)?, q(&recent, level)?);
                    (b > 0.0).then(|| r / b)
                });
                MetricReport {
                    metric,
                    row,
                    baseline_quantiles,
                    change_ratios,
                    baseline_p50: q(&baseline, 0.5),
                    baseline_p95: q(&baseline, 0.95),
                }
            })
            .collect();
        Report {
            settings: self.settings,
            at: now,
            metrics,
        }
    }
}

/// The `m`-th metric's samples of `slots` merged into one uniform sample, sorted.
fn merged<'a>(slots: impl Iterator<Item = &'a Slot>, m: usize) -> Vec<f64> {
    let mut all: Option<Reservoir> = None;
    for slot in slots {
        match &mut all {
            None => all = Some(slot.reservoirs[m].clone()),
            Some(r) => r.merge(&slot.reservoirs[m]),
        }
    }
    let mut values = all.map(|r| r.values().to_vec()).unwrap_or_default();
    values.sort_unstable_by(f64::total_cmp);
    values
}

impl MetricReport {
    pub fn verdict(&self) -> Verdict {
        self.row.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::SplitMix64;

    const MINUTE: u64 = 60;

    fn settings(baseline_min: u64, recent_min: u64) -> VerdictSettings {
        VerdictSettings {
            baseline: Duration::from_secs(baseline_min * MINUTE),
            recent: Duration::from_secs(recent_min * MINUTE),
            min_change: 0.05,
            min_samples: 30,
            statistic: VerdictStatistic::P90,
        }
    }

    fn at(minutes: f64) -> SystemTime {
        // A whole hour (1.8·10⁹ s is a multiple of 3,600), so slot edges fall on whole minutes.
        UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_secs_f64(minutes * 60.0)
    }

    /// `n` lognormal TTFTs around `median` seconds (σ = 0.3), TPOT a tenth of it.
    fn burst(rng: &mut SplitMix64, n: usize, median: f64) -> BurstSamples {
        let ttft: Vec<f64> = (0..n)
            .map(|_| {
                // Box–Muller.
                let (u, v) = (rng.next_f64().max(1e-12), rng.next_f64());
                let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                median * (0.3 * z).exp()
            })
            .collect();
        let tpot = ttft.iter().map(|t| t / 10.0).collect();
        BurstSamples { ttft, tpot }
    }

    fn verdict(report: &Report, metric: Metric) -> Verdict {
        report.metric(metric).unwrap().verdict()
    }

    #[test]
    fn a_shift_in_the_recent_window_regresses_and_a_steady_target_does_not() {
        let mut rng = SplitMix64::new(3);
        let mut steady = Windows::new(settings(120, 10));
        let mut shifted = Windows::new(settings(120, 10));
        // A burst of 50 every minute for 100 minutes; the last 10 minutes are 50% slower.
        for minute in 0..100 {
            let t = at(minute as f64);
            steady.record(t, &burst(&mut rng, 50, 0.2));
            let median = if minute >= 90 { 0.3 } else { 0.2 };
            shifted.record(t, &burst(&mut rng, 50, median));
        }
        let now = at(99.5);
        let steady = steady.judge(now);
        let shifted = shifted.judge(now);
        assert_eq!(verdict(&shifted, Metric::Ttft), Verdict::Regressed);
        assert_eq!(verdict(&shifted, Metric::Tpot), Verdict::Regressed);
        assert_ne!(verdict(&steady, Metric::Ttft), Verdict::Regressed);
        let ttft = shifted.metric(Metric::Ttft).unwrap();
        let change = ttft.row.change.unwrap();
        assert!((0.35..0.65).contains(&change), "{change}");
        // The baseline band and gauges describe the unshifted bursts.
        let p50 = ttft.baseline_p50.unwrap();
        assert!((0.18..0.22).contains(&p50), "{p50}");
        assert!(ttft.baseline_p95.unwrap() > p50);
        let ratio = ttft.change_ratios[0].unwrap();
        assert!((1.35..1.65).contains(&ratio), "{ratio}");
        assert_eq!(ttft.row.n_baseline, SLOT_CAPACITY as u64);
    }

    #[test]
    fn windows_follow_the_clock_and_forget_what_is_older_than_the_baseline() {
        let mut w = Windows::new(settings(60, 6));
        let mut rng = SplitMix64::new(1);
        w.record(at(0.0), &burst(&mut rng, 40, 0.2));
        // Recent only: no baseline yet.
        let r = w.judge(at(1.0));
        assert_eq!(verdict(&r, Metric::Ttft), Verdict::InsufficientData);
        assert_eq!(r.metric(Metric::Ttft).unwrap().row.n_candidate, 40);
        assert_eq!(r.metric(Metric::Ttft).unwrap().row.n_baseline, 0);
        // Ten minutes on, the burst is baseline; nothing is recent.
        let r = w.judge(at(10.0));
        assert_eq!(r.metric(Metric::Ttft).unwrap().row.n_baseline, 40);
        assert_eq!(r.metric(Metric::Ttft).unwrap().row.n_candidate, 0);
        // Past the baseline's reach it is gone.
        let r = w.judge(at(70.0));
        assert_eq!(r.metric(Metric::Ttft).unwrap().row.n_baseline, 0);
        assert_eq!(w.slots(), 0);
        // A burst older than the baseline is ignored.
        w.record(at(1.0), &burst(&mut rng, 40, 0.2));
        assert_eq!(w.slots(), 0);
    }

    #[test]
    fn memory_stays_bounded_however_long_the_baseline_and_many_the_bursts() {
        // A week of bursts of 100, one every 5 minutes, against a 7-day baseline.
        let mut w = Windows::new(settings(7 * 24 * 60, 60));
        let mut rng = SplitMix64::new(5);
        for i in 0..(2 * 7 * 24 * 12) {
            w.record(at(i as f64 * 5.0), &burst(&mut rng, 100, 0.2));
            assert!(w.slots() as i64 <= RECENT_SLOTS + BASELINE_SLOTS + 2);
        }
        assert!(w.values() <= w.slots() * SLOT_CAPACITY * TRACKED.len());
    }

    #[test]
    fn a_rebuild_in_any_order_gives_the_live_state() {
        let mut rng = SplitMix64::new(9);
        let bursts: Vec<(SystemTime, BurstSamples)> = (0..60)
            .map(|m| (at(m as f64), burst(&mut rng, 30, 0.2 + m as f64 * 0.001)))
            .collect();
        let mut live = Windows::new(settings(90, 10));
        for (t, b) in &bursts {
            live.record(*t, b);
        }
        let mut rebuilt = Windows::new(settings(90, 10));
        rebuilt.advance(at(59.0));
        for (t, b) in bursts.iter().rev() {
            rebuilt.record(*t, b);
        }
        let (a, b) = (live.judge(at(60.0)), rebuilt.judge(at(60.0)));
        for m in TRACKED {
            let (ra, rb) = (&a.metric(m).unwrap().row, &b.metric(m).unwrap().row);
            assert_eq!(
                (ra.n_baseline, ra.n_candidate),
                (rb.n_baseline, rb.n_candidate)
            );
        }
        // In order, the same bursts give the very same verdict.
        let mut again = Windows::new(settings(90, 10));
        for (t, b) in &bursts {
            again.record(*t, b);
        }
        assert_eq!(again.judge(at(60.0)), a);
    }
}
