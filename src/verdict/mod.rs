//! The verdict engine (DESIGN §10): did a metric really change between a baseline and a
//! candidate sample, and how sure are we? One implementation for `compare` and the daemon.
//!
//! Per metric (TTFT, TPOT, ITL, duration: successful requests' samples) and statistic (p50,
//! p90, p99, mean): the relative change candidate ÷ baseline − 1 with a percentile-bootstrap
//! confidence interval (seeded: identical input gives identical output) and a Mann–Whitney U
//! p-value for the two distributions. Error ratio: the difference in percentage points with
//! Newcombe's score interval and a two-proportion z test (Fisher's exact test for small
//! counts). Each row gets one of five verdicts; the gate (`Settings::gate`) widens its rows'
//! intervals to 1 − α/k (Bonferroni over its k rows) so that many rows cannot turn noise into a
//! failed gate.
//!
//! Sits at the `stats` level of the architecture: it may use `stats` and `probe` values;
//! adapters and `app` use it; nothing below imports it.
//! Does not: read files, print, read the clock, or touch Prometheus; samples are plain seconds.

mod bootstrap;
mod reservoir;
mod rng;
mod significance;
pub mod simulate;
pub mod window;

use std::fmt;

use crate::probe::RequestRecord;
use crate::stats::percentile;

pub use reservoir::Reservoir;
pub use rng::SplitMix64;
pub use significance::{Proportion, ProportionTest};

/// A latency metric, compared over successful requests' samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Ttft,
    Tpot,
    /// Per-request **mean** inter-token latency: result files keep each request's `itl_mean`
    /// (and `itl_max`), not every gap, so this is what both sides can provide.
    Itl,
    /// `t0` → end of stream (the result file's per-request `total_time`).
    Duration,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Ttft, Metric::Tpot, Metric::Itl, Metric::Duration];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Ttft => "ttft",
            Metric::Tpot => "tpot",
            Metric::Itl => "itl",
            Metric::Duration => "duration",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// What one sample of this metric is, for reports.
    pub fn sample_meaning(self) -> &'static str {
        match self {
            Metric::Ttft => "time to first token per request",
            Metric::Tpot => "time per output token per request",
            Metric::Itl => "mean inter-token latency per request (not every gap)",
            Metric::Duration => "request duration, t0 to end of stream",
        }
    }

    fn index(self) -> u64 {
        match self {
            Metric::Ttft => 0,
            Metric::Tpot => 1,
            Metric::Itl => 2,
            Metric::Duration => 3,
        }
    }
}

/// A statistic of one metric's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Statistic {
    P50,
    P90,
    P99,
    Mean,
}

impl Statistic {
    pub const ALL: [Statistic; 4] = [
        Statistic::P50,
        Statistic::P90,
        Statistic::P99,
        Statistic::Mean,
    ];
    /// The quantiles among `ALL`, in the same order.
    const QUANTILES: [(Statistic, f64); 3] = [
        (Statistic::P50, 0.5),
        (Statistic::P90, 0.9),
        (Statistic::P99, 0.99),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Statistic::P50 => "p50",
            Statistic::P90 => "p90",
            Statistic::P99 => "p99",
            Statistic::Mean => "mean",
        }
    }

    pub fn parse(s: &str) -> Option<Statistic> {
        Statistic::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The quantile level, `None` for the mean.
    pub fn quantile(self) -> Option<f64> {
        Statistic::QUANTILES
            .into_iter()
            .find(|(s, _)| *s == self)
            .map(|(_, q)| q)
    }

    /// Position in `ALL`.
    fn index(self) -> usize {
        match self {
            Statistic::P50 => 0,
            Statistic::P90 => 1,
            Statistic::P99 => 2,
            Statistic::Mean => 3,
        }
    }

    /// The statistic of ascending `sorted` (non-empty).
    fn of_sorted(self, sorted: &[f64]) -> f64 {
        match self.quantile() {
            Some(q) => percentile(sorted, q),
            None => sorted.iter().sum::<f64>() / sorted.len() as f64,
        }
    }
}

/// One row of a comparison: `ttft:p50`, … or `errors`. Also the syntax of `--gate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowKey {
    Latency(Metric, Statistic),
    /// Failed requests ÷ requests.
    Errors,
}

impl RowKey {
    /// `ttft:p50`, `errors`. The message names the bad part and the accepted values.
    pub fn parse(s: &str) -> Result<RowKey, String> {
        let s = s.trim();
        if s == "errors" {
            return Ok(RowKey::Errors);
        }
        let (metric, statistic) = s.split_once(':').ok_or_else(|| {
            format!("{s:?} is not a row; write METRIC:STATISTIC (e.g. ttft:p90) or errors")
        })?;
        let metric = Metric::parse(metric).ok_or_else(|| {
            format!("unknown metric {metric:?} in {s:?}; use ttft, tpot, itl or duration")
        })?;
        let statistic = Statistic::parse(statistic).ok_or_else(|| {
            format!("unknown statistic {statistic:?} in {s:?}; use p50, p90, p99 or mean")
        })?;
        Ok(RowKey::Latency(metric, statistic))
    }

    /// The default gate: `ttft:p50,ttft:p90,errors`.
    pub fn default_gate() -> Vec<RowKey> {
        vec![
            RowKey::Latency(Metric::Ttft, Statistic::P50),
            RowKey::Latency(Metric::Ttft, Statistic::P90),
            RowKey::Errors,
        ]
    }
}

impl fmt::Display for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowKey::Latency(m, s) => write!(f, "{}:{}", m.as_str(), s.as_str()),
            RowKey::Errors => f.write_str("errors"),
        }
    }
}

/// What a row concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Latency: the whole interval lies above 0 and the change exceeds `min_change`.
    /// Errors: the failure ratio rose, significant at the row's α.
    Regressed,
    /// The mirror of `Regressed`.
    Improved,
    /// The whole interval lies within ±`min_change` (percentage points for errors).
    NoChange,
    /// None of the above: more data would tell.
    Inconclusive,
    /// Fewer than `min_samples` samples (requests, for errors) on a side.
    InsufficientData,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Regressed,
        Verdict::Improved,
        Verdict::NoChange,
        Verdict::Inconclusive,
        Verdict::InsufficientData,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::NoChange => "no_change",
            Verdict::Inconclusive => "inconclusive",
            Verdict::InsufficientData => "insufficient_data",
        }
    }
}

/// The test behind a row's p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Two-sided Mann–Whitney U, normal approximation, tie- and continuity-corrected.
    MannWhitney,
    Proportions(ProportionTest),
}

impl Test {
    pub fn as_str(self) -> &'static str {
        match self {
            Test::MannWhitney => "mann_whitney_u",
            Test::Proportions(t) => t.as_str(),
        }
    }
}

/// One side's observations: successful requests' samples per metric (seconds, any order) and
/// the request counts behind the error ratio.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    pub ttft: Vec<f64>,
    pub tpot: Vec<f64>,
    /// Per-request mean inter-token latency (see `Metric::Itl`).
    pub itl: Vec<f64>,
    pub duration: Vec<f64>,
    pub requests: u64,
    pub failed: u64,
}

/// One request as the verdict sees it, whether it comes from a result file or from memory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestSample {
    pub success: bool,
    pub ttft: Option<f64>,
    pub tpot: Option<f64>,
    pub itl_mean: Option<f64>,
    pub duration: Option<f64>,
}

impl RequestSample {
    /// The in-memory record, reduced as a result file reduces it (ITL to its mean).
    pub fn from_record(r: &RequestRecord) -> RequestSample {
        let itl_mean = (!r.itl.is_empty()).then(|| {
            r.itl
                .iter()
                .map(std::time::Duration::as_secs_f64)
                .sum::<f64>()
                / r.itl.len() as f64
        });
        RequestSample {
            success: r.outcome.is_success(),
            ttft: r.ttft.map(|d| d.as_secs_f64()),
            tpot: r.tpot.map(|d| d.as_secs_f64()),
            itl_mean,
            duration: Some(r.duration.as_secs_f64()),
        }
    }
}

impl Samples {
    pub fn of(&self, metric: Metric) -> &[f64] {
        match metric {
            Metric::Ttft => &self.ttft,
            Metric::Tpot => &self.tpot,
            Metric::Itl => &self.itl,
            Metric::Duration => &self.duration,
        }
    }

    /// Counts the request; a successful one gives each metric it measured a sample. Values that
    /// are not finite and ≥ 0 are not durations and are left out.
    pub fn push(&mut self, r: RequestSample) {
        self.requests += 1;
        if !r.success {
            self.failed += 1;
            return;
        }
        let valid = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
        self.ttft.extend(valid(r.ttft));
        self.tpot.extend(valid(r.tpot));
        self.itl.extend(valid(r.itl_mean));
        self.duration.extend(valid(r.duration));
    }

    /// Pools `other` into `self` (bursts of one side).
    pub fn append(&mut self, other: Samples) {
        self.ttft.extend(other.ttft);
        self.tpot.extend(other.tpot);
        self.itl.extend(other.itl);
        self.duration.extend(other.duration);
        self.requests += other.requests;
        self.failed += other.failed;
    }

    fn errors(&self) -> Proportion {
        Proportion {
            failed: self.failed,
            requests: self.requests,
        }
    }
}

/// The seed used unless a caller picks another: any fixed value makes verdicts reproducible
/// (this one is below 2⁵³, so JSON readers in any language keep it exact).
pub const DEFAULT_SEED: u64 = 0x5EED_2026;

/// How to judge. `Settings::default()` is DESIGN §10's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Two-sided error rate of each ungated row's interval (0 < α < 1); 0.05 gives 95%.
    pub alpha: f64,
    /// Smallest relative change that counts as a regression or improvement (0.05 = 5%); for
    /// the errors row, percentage points of failure ratio (see `Verdict::NoChange`).
    pub min_change: f64,
    /// Fewer samples than this on a side: `insufficient_data`.
    pub min_samples: usize,
    /// Bootstrap resamples per side (≥ 2,000 keeps the 99% tails of a gated interval stable).
    pub resamples: usize,
    pub seed: u64,
    /// Latency metrics to compare, in output order.
    pub metrics: Vec<Metric>,
    /// Include the errors row.
    pub errors: bool,
    /// Rows whose regression fails the gate. Rows not among the compared ones are ignored.
    pub gate: Vec<RowKey>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            alpha: 0.05,
            min_change: 0.05,
            min_samples: 30,
            resamples: 2_000,
            seed: DEFAULT_SEED,
            metrics: Metric::ALL.to_vec(),
            errors: true,
            gate: RowKey::default_gate(),
        }
    }
}

/// One compared row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: RowKey,
    /// Part of the gate: its interval is the Bonferroni-widened one.
    pub gated: bool,
    /// The statistic (seconds) or the failure ratio; `None` without samples.
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// Samples (latency) or requests (errors) per side.
    pub n_baseline: u64,
    pub n_candidate: u64,
    /// Latency: candidate ÷ baseline − 1. Errors: candidate − baseline failure ratio.
    pub change: Option<f64>,
    /// The interval of `change` at `confidence`; `None` with insufficient data.
    pub interval: Option<(f64, f64)>,
    /// Two-sided confidence level of `interval` (and 1 − the significance level of `p_value`).
    pub confidence: f64,
    pub p_value: Option<f64>,
    pub test: Test,
    pub verdict: Verdict,
}

/// The gate's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// Gated rows present in the comparison, in row order.
    pub rows: Vec<RowKey>,
    /// Their intervals' confidence, 1 − α/k.
    pub confidence: f64,
    /// Gated rows that regressed: the gate fails when this is not empty.
    pub regressed: Vec<RowKey>,
    /// Gated rows without enough data to judge (they cannot fail the gate).
    pub insufficient: Vec<RowKey>,
}

impl Gate {
    pub fn passed(&self) -> bool {
        self.regressed.is_empty()
    }
}

/// A whole comparison: what `compare` prints and the daemon would store. Plain data for any
/// renderer (text, markdown, JSON, HTML).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub rows: Vec<Row>,
    pub gate: Gate,
    pub settings: Settings,
}

/// Compares `candidate` with `baseline` row by row (the selected metrics × p50, p90, p99,
/// mean, then errors) and evaluates the gate.
pub fn compare(baseline: &Samples, candidate: &Samples, settings: &Settings) -> Comparison {
    let mut present: Vec<RowKey> = settings
        .metrics
        .iter()
        .flat_map(|&m| Statistic::ALL.map(|s| RowKey::Latency(m, s)))
        .collect();
    if settings.errors {
        present.push(RowKey::Errors);
    }
    let gated: Vec<RowKey> = present
        .iter()
        .copied()
        .filter(|k| settings.gate.contains(k))
        .collect();
    // Bonferroni: k gated rows each at α/k keep the chance that any of them fails on noise at
    // or below α.
    let gated_confidence = 1.0 - settings.alpha / gated.len().max(1) as f64;
    let level = |key: RowKey| {
        if gated.contains(&key) {
            (true, gated_confidence)
        } else {
            (false, 1.0 - settings.alpha)
        }
    };

    let mut rows = Vec::with_capacity(present.len());
    for &metric in &settings.metrics {
        rows.extend(latency_rows(
            metric,
            baseline.of(metric),
            candidate.of(metric),
            settings,
            &Statistic::ALL,
            level,
        ));
    }
    if settings.errors {
        let (gated, confidence) = level(RowKey::Errors);
        rows.push(errors_row(
            baseline.errors(),
            candidate.errors(),
            settings,
            gated,
            confidence,
        ));
    }
    let pick = |v: Verdict| {
        rows.iter()
            .filter(|r| r.gated && r.verdict == v)
            .map(|r| r.key)
            .collect::<Vec<_>>()
    };
    let gate = Gate {
        regressed: pick(Verdict::Regressed),
        insufficient: pick(Verdict::InsufficientData),
        rows: gated,
        confidence: gated_confidence,
    };
    Comparison {
        rows,
        gate,
        settings: settings.clone(),
    }
}

/// One latency row at `1 − alpha`, no gate correction: the daemon's per-target verdict, which
/// is a single row and so needs none (DESIGN §10). Samples in any order.
pub fn judge(
    metric: Metric,
    statistic: Statistic,
    baseline: &[f64],
    candidate: &[f64],
    settings: &Settings,
) -> Row {
    let confidence = 1.0 - settings.alpha;
    latency_rows(metric, baseline, candidate, settings, &[statistic], |_| {
        (false, confidence)
    })
    .pop()
    .expect("one statistic gives one row")
}

/// The rows of one metric. Both sides are sorted once and resampled once; every statistic's
/// interval comes from the same replicates.
fn latency_rows(
    metric: Metric,
    baseline: &[f64],
    candidate: &[f64],
    settings: &Settings,
    statistics: &[Statistic],
    level: impl Fn(RowKey) -> (bool, f64),
) -> Vec<Row> {
    let sorted = |xs: &[f64]| {
        let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_unstable_by(f64::total_cmp);
        v
    };
    let (b, c) = (sorted(baseline), sorted(candidate));
    let enough = b.len() >= settings.min_samples.max(1) && c.len() >= settings.min_samples.max(1);
    let judged = enough.then(|| {
        // Independent streams per metric and side, all derived from the one seed.
        let stream = |side: u64| {
            SplitMix64::new(rng::mix(
                settings.seed ^ rng::mix(1 + 2 * metric.index() + side),
            ))
        };
        let resamples = settings.resamples.max(1);
        (
            bootstrap::resample(&b, resamples, &mut stream(0)),
            bootstrap::resample(&c, resamples, &mut stream(1)),
            significance::mann_whitney(&b, &c),
        )
    });
    let mut scratch = Vec::new();
    statistics
        .iter()
        .map(|&statistic| {
            let key = RowKey::Latency(metric, statistic);
            let (gated, confidence) = level(key);
            let base = (!b.is_empty()).then(|| statistic.of_sorted(&b));
            let cand = (!c.is_empty()).then(|| statistic.of_sorted(&c));
            let change = base
                .zip(cand)
                .map(|(x, y)| bootstrap::relative_change(x, y));
            let (interval, p_value, verdict) = match (&judged, change) {
                (Some((rb, rc, p)), Some(change)) => {
                    let interval = bootstrap::relative_change_interval(
                        rb.of(statistic),
                        rc.of(statistic),
                        confidence,
                        &mut scratch,
                    );
                    let verdict = decide(change, interval, settings.min_change);
                    (Some(interval), Some(*p), verdict)
                }
                _ => (None, None, Verdict::InsufficientData),
            };
            Row {
                key,
                gated,
                baseline: base,
                candidate: cand,
                n_baseline: b.len() as u64,
                n_candidate: c.len() as u64,
                change,
                interval,
                confidence,
                p_value,
                test: Test::MannWhitney,
                verdict,
            }
        })
        .collect()
}

/// DESIGN §10's rule for an interval of relative change.
fn decide(change: f64, (lo, hi): (f64, f64), min_change: f64) -> Verdict {
    if lo > 0.0 && change > min_change {
        Verdict::Regressed
    } else if hi < 0.0 && change < -min_change {
        Verdict::Improved
    } else if lo >= -min_change && hi <= min_change {
        Verdict::NoChange
    } else {
        Verdict::Inconclusive
    }
}

/// The errors row. Any significant rise in the failure ratio is a regression, whatever its
/// size: failures are what users notice first, and a relative threshold means nothing against
/// a baseline of zero. `min_change`, read as percentage points, only bounds `no_change`.
fn errors_row(
    baseline: Proportion,
    candidate: Proportion,
    settings: &Settings,
    gated: bool,
    confidence: f64,
) -> Row {
    let enough = baseline.requests >= settings.min_samples.max(1) as u64
        && candidate.requests >= settings.min_samples.max(1) as u64;
    let ratio = |p: Proportion| (p.requests > 0).then(|| p.ratio());
    let (base, cand) = (ratio(baseline), ratio(candidate));
    let change = base.zip(cand).map(|(b, c)| c - b);
    let (p, test) = significance::two_proportion_p(baseline, candidate);
    let (interval, p_value, verdict) = match change {
        Some(change) if enough => {
            let interval = significance::difference_interval(baseline, candidate, confidence);
            let significant = p < 1.0 - confidence;
            let verdict = if significant && change > 0.0 {
                Verdict::Regressed
            } else if significant && change < 0.0 {
                Verdict::Improved
            } else if interval.0 >= -settings.min_change && interval.1 <= settings.min_change {
                Verdict::NoChange
            } else {
                Verdict::Inconclusive
            };
            (Some(interval), Some(p), verdict)
        }
        _ => (None, None, Verdict::InsufficientData),
    };
    Row {
        key: RowKey::Errors,
        gated,
        baseline: base,
        candidate: cand,
        n_baseline: baseline.requests,
        n_candidate: candidate.requests,
        change,
        interval,
        confidence,
        p_value,
        test: Test::Proportions(test),
        verdict,
    }
}

#[cfg(test)]
mod tests;
