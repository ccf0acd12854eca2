//! Exact summary statistics over one burst's samples: min, max, mean, median, stdev and
//! percentiles by linear interpolation between closest ranks (numpy's default), and the
//! per-burst aggregate (`BurstSummary`) that reports, result files and metrics read. Pure.
//!
//! Does not: print, format, or know about files; sample values are seconds (or the sample's own
//! unit, e.g. tokens/s) as plain `f64`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Slo;
use crate::probe::{BurstResult, ClientLoad, Connection, Outcome, Phase, RequestRecord, Resource};

/// Statistics of one sample set, in seconds (or the sample's unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (n − 1); 0 for one sample.
    pub stdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

/// Summarizes `samples` (any order). `None` when there are none. NaN samples are ignored, so a
/// bad value cannot poison the ordering.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let stdev = if n > 1 {
        let ss: f64 = sorted.iter().map(|x| (x - mean) * (x - mean)).sum();
        (ss / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let median = percentile(&sorted, 0.5);
    Some(Summary {
        count: n,
        min: sorted[0],
        max: sorted[n - 1],
        // Summation order can put the mean a rounding error outside [min, max] for equal samples.
        mean: mean.clamp(sorted[0], sorted[n - 1]),
        median,
        stdev,
        p50: median,
        p90: percentile(&sorted, 0.90),
        p95: percentile(&sorted, 0.95),
        p99: percentile(&sorted, 0.99),
    })
}

/// The `q`-quantile (0 ≤ q ≤ 1) of ascending `sorted`: rank `q·(n−1)`, linearly interpolated
/// between the two closest ranks (numpy's default "linear" method). NaN for an empty slice;
/// `q` outside [0, 1] is clamped.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    if lo == hi {
        sorted[lo]
    } else {
        // a + (b − a)·t stays within [a, b] for t in [0, 1] when a ≤ b.
        sorted[lo] + (sorted[hi] - sorted[lo]) * frac
    }
}

/// One burst, aggregated. Latency summaries are in seconds and cover **successful** requests
/// only; failures are counted in `failed_count` and `outcomes`, never as samples. Requests cut
/// short by cancellation are neither: they are counted in `interrupted_count` (and `outcomes`).
#[derive(Debug, Clone, PartialEq)]
pub struct BurstSummary {
    /// Recorded requests (warm-up excluded).
    pub total: u64,
    pub success_count: u64,
    /// Requests that ended on their own without success.
    pub failed_count: u64,
    /// Requests cancelled (Ctrl-C, shutdown) before they ended.
    pub interrupted_count: u64,
    /// First `t0` → last request's end.
    pub total_time: Duration,
    /// Finished requests (successful or failed, not interrupted) per second of `total_time`, as
    /// the old script's
    /// "吞吐量" (`total_requests / total_elapsed`).
    pub throughput_rps: f64,
    /// Successful requests per second of `total_time`.
    pub goodput_rps: f64,
    /// Requests per outcome label (`success` included); only outcomes that occurred.
    pub outcomes: BTreeMap<&'static str, u64>,
    pub ttft: Option<Summary>,
    pub time_to_headers: Option<Summary>,
    /// Per-request duration (`t0` → end of stream).
    pub duration: Option<Summary>,
    /// Every ITL gap of every successful request, pooled.
    pub itl: Option<Summary>,
    pub tpot: Option<Summary>,
    /// Decode rate `1 / TPOT`, tokens per second.
    pub decode_rate: Option<Summary>,
    /// `N_out / duration` per request, tokens per second.
    pub tokens_per_second: Option<Summary>,
    pub first_visible_token: Option<Summary>,
    /// Sum of `N_out` over successful requests.
    pub output_tokens: u64,
    /// Body chunks read by successful requests (what the old script counted as tokens).
    pub chunks: u64,
    /// Successful requests per token-count source label (`usage`, `events`).
    pub token_source: BTreeMap<&'static str, u64>,
    /// Requests (any outcome) per response model and `system_fingerprint` the server named;
    /// a request that named neither is not counted. The model is `""` when only a
    /// fingerprint was named.
    pub response_models: BTreeMap<(String, Option<String>), u64>,
    /// Successful requests whose usage and event count differ by more than 2×: their TPOT
    /// rests on the server's count.
    pub usage_mismatch: u64,
    /// Where the time went and what the provider said (DESIGN §11).
    pub diagnostics: Diagnostics,
    /// The client's own scheduling lag and CPU time during the burst.
    pub client: ClientSummary,
}

/// The client's own load over a burst (`probe::ClientLoad`) in numbers: the scheduling lag's
/// p99 (the same [`percentile`] as every other statistic) and maximum, and the CPU time.
/// `None` where nothing was measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClientSummary {
    /// Lag samples taken (one per tick of the probe).
    pub lag_samples: u64,
    pub lag_p99: Option<Duration>,
    pub lag_max: Option<Duration>,
    /// User plus system CPU time of the whole process over the burst.
    pub cpu: Option<Duration>,
}

impl ClientSummary {
    pub fn of(load: &ClientLoad) -> ClientSummary {
        let mut lags: Vec<f64> = load.lags.iter().map(Duration::as_secs_f64).collect();
        lags.sort_unstable_by(f64::total_cmp);
        ClientSummary {
            lag_samples: lags.len() as u64,
            lag_p99: (!lags.is_empty()).then(|| Duration::from_secs_f64(percentile(&lags, 0.99))),
            lag_max: load.lags.iter().max().copied(),
            cpu: load.cpu,
        }
    }
}

/// Scheduling lag above which the client's own queueing is reported as part of the
/// measurements, whatever the TTFT.
pub const LAG_WARN_ABSOLUTE: Duration = Duration::from_millis(1);
/// ... or above this fraction of the TTFT median.
pub const LAG_WARN_TTFT_FRACTION: f64 = 0.05;

/// A burst's phases, connections and provider rate limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnostics {
    /// Per phase, over the successful requests that went through it (seconds).
    pub phases: BTreeMap<Phase, Summary>,
    /// Requests (any outcome) per connection kind.
    pub connections: BTreeMap<Connection, u64>,
    /// Requests sent a second time on a new connection.
    pub retried: u64,
    /// Per resource, what the responses (any status) stated.
    pub ratelimit: BTreeMap<Resource, LimitSeen>,
    /// The longest `retry-after` any response asked for, and how many responses carried one.
    pub retry_after: Option<(Duration, u64)>,
}

/// One rate-limited resource over a burst.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitSeen {
    /// The limit the last response that stated one gave.
    pub limit: Option<u64>,
    /// The least remaining quota any response stated.
    pub lowest_remaining: Option<u64>,
    /// Responses that stated anything about this resource.
    pub responses: u64,
}

impl Diagnostics {
    fn from_records(records: &[RequestRecord]) -> Diagnostics {
        let mut d = Diagnostics::default();
        let mut phases: BTreeMap<Phase, Vec<f64>> = BTreeMap::new();
        for r in records {
            if let Some(c) = r.connection {
                *d.connections.entry(c).or_insert(0) += 1;
            }
            d.retried += u64::from(r.retried);
            for resource in Resource::ALL {
                let stated = r.ratelimit.get(resource);
                if stated.is_empty() {
                    continue;
                }
                let seen = d.ratelimit.entry(resource).or_default();
                seen.responses += 1;
                seen.limit = stated.limit.or(seen.limit);
                if let Some(remaining) = stated.remaining {
                    seen.lowest_remaining = Some(
                        seen.lowest_remaining
                            .map_or(remaining, |l| l.min(remaining)),
                    );
                }
            }
            if let Some(wait) = r.ratelimit.retry_after {
                let (longest, n) = d.retry_after.get_or_insert((wait, 0));
                *longest = (*longest).max(wait);
                *n += 1;
            }
            if r.outcome.is_success() {
                for (phase, took) in r.phases.iter() {
                    phases.entry(phase).or_default().push(secs(took));
                }
            }
        }
        d.phases = phases
            .into_iter()
            .filter_map(|(phase, samples)| summarize(&samples).map(|s| (phase, s)))
            .collect();
        d
    }
}

impl BurstSummary {
    pub fn from_burst(burst: &BurstResult) -> BurstSummary {
        let mut outcomes = BTreeMap::new();
        let mut token_source = BTreeMap::new();
        let mut ttft = Vec::new();
        let mut headers = Vec::new();
        let mut duration = Vec::new();
        let mut itl = Vec::new();
        let mut tpot = Vec::new();
        let mut decode_rate = Vec::new();
        let mut tps = Vec::new();
        let mut visible = Vec::new();
        let mut output_tokens = 0u64;
        let mut success_count = 0u64;
        let mut interrupted_count = 0u64;
        let mut chunks = 0u64;
        let mut response_models = BTreeMap::new();
        let mut usage_mismatch = 0u64;

        for r in &burst.records {
            *outcomes.entry(r.outcome.as_str()).or_insert(0) += 1;
            if r.response_model.is_some() || r.system_fingerprint.is_some() {
                let key = (
                    r.response_model.clone().unwrap_or_default(),
                    r.system_fingerprint.clone(),
                );
                *response_models.entry(key).or_insert(0) += 1;
            }
            if r.outcome == Outcome::Interrupted {
                interrupted_count += 1;
            }
            if !r.outcome.is_success() {
                continue;
            }
            success_count += 1;
            chunks += r.chunks;
            usage_mismatch += u64::from(r.usage_mismatch);
            *token_source.entry(r.token_source.as_str()).or_insert(0) += 1;
            output_tokens += r.output_tokens;
            ttft.extend(r.ttft.map(secs));
            headers.extend(r.time_to_headers.map(secs));
            visible.extend(r.first_visible_token.map(secs));
            duration.push(secs(r.duration));
            itl.extend(r.itl.iter().copied().map(secs));
            if let Some(t) = r.tpot {
                tpot.push(secs(t));
                if !t.is_zero() {
                    decode_rate.push(1.0 / secs(t));
                }
            }
            tps.push(r.tokens_per_second());
        }

        let total = burst.records.len() as u64;
        let finished = total - interrupted_count;
        let elapsed = burst.total_time.as_secs_f64();
        let per_sec = |n: u64| {
            if elapsed > 0.0 {
                n as f64 / elapsed
            } else {
                0.0
            }
        };
        BurstSummary {
            total,
            success_count,
            failed_count: finished - success_count,
            interrupted_count,
            total_time: burst.total_time,
            throughput_rps: per_sec(finished),
            goodput_rps: per_sec(success_count),
            outcomes,
            ttft: summarize(&ttft),
            time_to_headers: summarize(&headers),
            duration: summarize(&duration),
            itl: summarize(&itl),
            tpot: summarize(&tpot),
            decode_rate: summarize(&decode_rate),
            tokens_per_second: summarize(&tps),
            first_visible_token: summarize(&visible),
            output_tokens,
            chunks,
            token_source,
            diagnostics: Diagnostics::from_records(&burst.records),
            response_models,
            usage_mismatch,
            client: ClientSummary::of(&burst.client),
        }
    }

    /// The client's lag p99 when it is large enough to matter: above
    /// [`LAG_WARN_ABSOLUTE`] or [`LAG_WARN_TTFT_FRACTION`] of the TTFT median. Every timestamp
    /// of the burst may then be late by up to that much.
    pub fn client_queueing(&self) -> Option<Duration> {
        let p99 = self.client.lag_p99?;
        let of_ttft = self
            .ttft
            .map(|t| Duration::from_secs_f64(t.p50 * LAG_WARN_TTFT_FRACTION));
        (p99 > LAG_WARN_ABSOLUTE || of_ttft.is_some_and(|limit| p99 > limit)).then_some(p99)
    }

    /// Successful / finished requests (recorded, not interrupted); 0 for a burst that finished
    /// none. A cancelled request says nothing about the target, so it does not lower the ratio.
    pub fn success_ratio(&self) -> f64 {
        let finished = self.success_count + self.failed_count;
        if finished > 0 {
            self.success_count as f64 / finished as f64
        } else {
            0.0
        }
    }

    /// Count for one outcome (0 when it did not occur).
    pub fn outcome_count(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(outcome.as_str()).copied().unwrap_or(0)
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The per-request SLOs a target can set (`slo.ttft`, `slo.tpot`, `slo.duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SloKind {
    Ttft,
    Tpot,
    Duration,
}

impl SloKind {
    pub const ALL: [SloKind; 3] = [SloKind::Ttft, SloKind::Tpot, SloKind::Duration];

    /// The config key and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SloKind::Ttft => "ttft",
            SloKind::Tpot => "tpot",
            SloKind::Duration => "duration",
        }
    }

    /// The configured limit, when this SLO is set.
    pub fn limit(self, slo: &Slo) -> Option<Duration> {
        match self {
            SloKind::Ttft => slo.ttft,
            SloKind::Tpot => slo.tpot,
            SloKind::Duration => slo.duration,
        }
    }

    /// What a request measured for this SLO.
    fn value(self, record: &RequestRecord) -> Option<Duration> {
        match self {
            SloKind::Ttft => record.ttft,
            SloKind::Tpot => record.tpot,
            SloKind::Duration => Some(record.duration),
        }
    }
}

/// Good/bad per configured SLO for one request, in `SloKind::ALL` order; SLOs that are not
/// configured are absent. A failed request is bad for every configured SLO (it spent error
/// budget). A successful request without a measurement for an SLO (TPOT needs ≥ 2 tokens) is
/// left out of that SLO rather than guessed. The limit itself counts as good (`≤`).
pub fn slo_good(record: &RequestRecord, slo: &Slo) -> Vec<(SloKind, bool)> {
    let ok = record.outcome.is_success();
    SloKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let good = match (kind.limit(slo), ok, kind.value(record)) {
                (None, _, _) => None,
                (Some(_), false, _) => Some(false),
                (Some(l), true, Some(v)) => Some(v <= l),
                (Some(_), true, None) => None,
            };
            good.map(|g| (kind, g))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;
    use crate::probe::{ConnectionMode, TokenSource};
    use proptest::prelude::*;
    use std::time::SystemTime;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn zero_samples_have_no_summary() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[f64::NAN]), None);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn one_sample_is_every_statistic() {
        let s = summarize(&[0.25]).unwrap();
        assert_eq!(s.count, 1);
        for v in [s.min, s.max, s.mean, s.median, s.p50, s.p90, s.p95, s.p99] {
            assert_eq!(v, 0.25);
        }
        assert_eq!(s.stdev, 0.0);
    }

    #[test]
    fn two_samples_interpolate() {
        // numpy.percentile([1, 3], [50, 90, 95, 99]) = [2.0, 2.8, 2.9, 2.98]
        let s = summarize(&[3.0, 1.0]).unwrap();
        assert_eq!((s.min, s.max, s.mean, s.median), (1.0, 3.0, 2.0, 2.0));
        assert!(close(s.p90, 2.8), "{}", s.p90);
        assert!(close(s.p95, 2.9), "{}", s.p95);
        assert!(close(s.p99, 2.98), "{}", s.p99);
        // sqrt(((1-2)^2 + (3-2)^2) / 1)
        assert!(close(s.stdev, std::f64::consts::SQRT_2));
    }

    #[test]
    fn ten_samples_match_numpy() {
        // numpy.percentile(range(1, 11), [50, 90, 95, 99]) = [5.5, 9.1, 9.55, 9.91]
        let xs: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let s = summarize(&xs).unwrap();
        assert!(close(s.median, 5.5));
        assert!(close(s.p90, 9.1));
        assert!(close(s.p95, 9.55));
        assert!(close(s.p99, 9.91));
        assert!(close(s.mean, 5.5));
        // statistics.stdev(range(1, 11)) = 3.0276503540974917
        assert!(close(s.stdev, 3.0276503540974917));
    }

    #[test]
    fn percentile_at_the_ends_and_between() {
        let sorted = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 1.0), 8.0);
        // rank 0.5 * 3 = 1.5 → halfway between 2 and 4
        assert_eq!(percentile(&sorted, 0.5), 3.0);
        // rank 0.9 * 3 = 2.7 → 4 + 0.7 * 4
        assert!(close(percentile(&sorted, 0.9), 6.8));
        assert_eq!(percentile(&sorted, 1.5), 8.0);
    }

    proptest! {
        #[test]
        fn summary_is_ordered(xs in proptest::collection::vec(-1e6f64..1e6, 1..200)) {
            let s = summarize(&xs).unwrap();
            prop_assert_eq!(s.count, xs.len());
            prop_assert!(s.min <= s.p50);
            prop_assert!(s.p50 <= s.p90);
            prop_assert!(s.p90 <= s.p95);
            prop_assert!(s.p95 <= s.p99);
            prop_assert!(s.p99 <= s.max);
            prop_assert!(s.min <= s.mean && s.mean <= s.max);
            prop_assert!(s.stdev >= 0.0);
            prop_assert_eq!(s.median, s.p50);
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn record(index: u64, outcome: Outcome) -> RequestRecord {
        let ok = outcome.is_success();
        RequestRecord {
            index,
            outcome,
            status: Some(if ok { 200 } else { 500 }),
            error: (!ok).then(|| "boom".to_string()),
            start_offset: Duration::ZERO,
            client_wait: Duration::ZERO,
            time_to_headers: Some(ms(100)),
            ttft: ok.then(|| ms(200)),
            first_visible_token: ok.then(|| ms(300)),
            duration: ms(1000),
            output_tokens: if ok { 11 } else { 0 },
            token_source: TokenSource::Usage,
            token_events: 11,
            chunks: 12,
            bytes: 1000,
            itl: if ok { vec![ms(50), ms(150)] } else { vec![] },
            tpot: ok.then(|| ms(80)),
            text: None,
            connection: None,
            phases: Default::default(),
            retried: false,
            ratelimit: Default::default(),
            provider_request_id: None,
            captured_headers: Vec::new(),
            response_model: None,
            system_fingerprint: None,
            input_tokens: None,
            cached_input_tokens: None,
            reasoning_tokens: None,
            usage_mismatch: false,
        }
    }

    fn burst(records: Vec<RequestRecord>) -> BurstResult {
        BurstResult {
            burst_id: "b1".into(),
            target: "t".into(),
            started_at: SystemTime::UNIX_EPOCH,
            total_time: Duration::from_secs(4),
            records,
            connection_mode: ConnectionMode::Reused,
            protocol: Protocol::OpenAi,
            looks_like: None,
            interrupted: false,
            client: Default::default(),
        }
    }

    #[test]
    fn burst_summary_counts_failures_beside_success_samples() {
        let mut fast = record(1, Outcome::Success);
        fast.ttft = Some(ms(100));
        fast.token_source = TokenSource::Events;
        fast.output_tokens = 9;
        let records = vec![
            fast,
            record(2, Outcome::Success),
            record(3, Outcome::TimeoutIdle),
            record(4, Outcome::Http5xx),
            record(5, Outcome::TimeoutIdle),
        ];
        let s = BurstSummary::from_burst(&burst(records));
        assert_eq!((s.total, s.success_count, s.failed_count), (5, 2, 3));
        // Old script: all finished requests over the whole test time.
        assert!(close(s.throughput_rps, 5.0 / 4.0));
        assert!(close(s.goodput_rps, 2.0 / 4.0));
        let outcomes: Vec<_> = s.outcomes.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(
            outcomes,
            [("http_5xx", 1), ("success", 2), ("timeout_idle", 2)]
        );
        assert_eq!(s.outcome_count(Outcome::TimeoutIdle), 2);
        assert_eq!(s.outcome_count(Outcome::Tls), 0);

        let ttft = s.ttft.unwrap();
        assert_eq!(ttft.count, 2);
        assert!(close(ttft.min, 0.1) && close(ttft.max, 0.2));
        assert_eq!(s.time_to_headers.unwrap().count, 2);
        assert_eq!(s.duration.unwrap().count, 2);
        assert_eq!(s.itl.unwrap().count, 4);
        assert!(close(s.itl.unwrap().mean, 0.1));
        assert!(close(s.tpot.unwrap().mean, 0.08));
        assert!(close(s.decode_rate.unwrap().mean, 12.5));
        assert!(close(s.tokens_per_second.unwrap().max, 11.0));
        assert_eq!(s.first_visible_token.unwrap().count, 2);
        assert_eq!(s.output_tokens, 20);
        let sources: Vec<_> = s.token_source.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(sources, [("events", 1), ("usage", 1)]);
    }

    #[test]
    fn burst_without_successes_has_no_samples() {
        let s = BurstSummary::from_burst(&burst(vec![record(1, Outcome::Connect)]));
        assert_eq!((s.total, s.success_count, s.failed_count), (1, 0, 1));
        assert_eq!(s.ttft, None);
        assert_eq!(s.itl, None);
        assert_eq!(s.output_tokens, 0);
        assert!(s.token_source.is_empty());

        let empty = BurstSummary::from_burst(&BurstResult {
            total_time: Duration::ZERO,
            ..burst(vec![])
        });
        assert_eq!(empty.total, 0);
        assert_eq!(empty.throughput_rps, 0.0);
    }

    #[test]
    fn interrupted_requests_are_neither_samples_nor_failures() {
        // A cancelled request keeps its partial timings in its record.
        let mut cut = record(3, Outcome::Interrupted);
        cut.ttft = Some(ms(900));
        cut.itl = vec![ms(400)];
        let records = vec![
            record(1, Outcome::Success),
            record(2, Outcome::Http5xx),
            cut,
        ];
        let s = BurstSummary::from_burst(&burst(records));
        assert_eq!(
            (
                s.total,
                s.success_count,
                s.failed_count,
                s.interrupted_count
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(s.outcome_count(Outcome::Interrupted), 1);
        assert_eq!(s.ttft.unwrap().count, 1);
        assert_eq!(s.itl.unwrap().count, 2);
        assert_eq!(s.chunks, 12);
        // Over the two requests that ended: the cancelled one says nothing about the target.
        assert!(close(s.success_ratio(), 0.5));
        assert!(close(s.throughput_rps, 2.0 / 4.0));
    }

    #[test]
    fn success_ratio_is_successes_over_recorded_and_zero_without_requests() {
        let records = vec![
            record(1, Outcome::Success),
            record(2, Outcome::Http5xx),
            record(3, Outcome::Success),
            record(4, Outcome::Success),
        ];
        assert!(close(
            BurstSummary::from_burst(&burst(records)).success_ratio(),
            0.75
        ));
        assert_eq!(
            BurstSummary::from_burst(&burst(vec![])).success_ratio(),
            0.0
        );
    }

    #[test]
    fn slo_kinds_name_their_config_keys() {
        let names: Vec<&str> = SloKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["ttft", "tpot", "duration"]);
        let slo = Slo {
            tpot: Some(ms(50)),
            ..Slo::default()
        };
        let set: Vec<SloKind> = SloKind::ALL
            .into_iter()
            .filter(|k| k.limit(&slo).is_some())
            .collect();
        assert_eq!(set, [SloKind::Tpot]);
    }

    #[test]
    fn slo_judges_success_by_limit_and_failure_as_bad() {
        let slo = Slo {
            ttft: Some(ms(200)),
            tpot: Some(ms(50)),
            duration: None,
        };
        // The label each judgement is exported under, so the expected values stay readable.
        let slo_good = |r: &RequestRecord, slo: &Slo| -> Vec<(&'static str, bool)> {
            slo_good(r, slo)
                .into_iter()
                .map(|(kind, good)| (kind.as_str(), good))
                .collect()
        };
        let ok = record(1, Outcome::Success);
        assert_eq!(slo_good(&ok, &slo), [("ttft", true), ("tpot", false)]);

        let mut one_token = record(2, Outcome::Success);
        one_token.tpot = None;
        assert_eq!(slo_good(&one_token, &slo), [("ttft", true)]);

        let failed = record(3, Outcome::TimeoutTotal);
        assert_eq!(slo_good(&failed, &slo), [("ttft", false), ("tpot", false)]);

        assert!(slo_good(&ok, &Slo::default()).is_empty());
        let slow = Slo {
            duration: Some(ms(999)),
            ..Slo::default()
        };
        assert_eq!(slo_good(&ok, &slow), [("duration", false)]);
    }

    #[test]
    fn diagnostics_pool_phases_of_successes_and_count_connections_and_limits() {
        use crate::probe::{Limit, Phases, RateLimits};
        let mut new = record(1, Outcome::Success);
        new.connection = Some(Connection::New);
        new.phases = Phases {
            connect: Some(ms(10)),
            headers: Some(ms(90)),
            first_token: Some(ms(100)),
            generation: Some(ms(800)),
            ..Phases::default()
        };
        let mut reused = record(2, Outcome::Success);
        reused.connection = Some(Connection::Reused);
        reused.retried = true;
        reused.phases = Phases {
            headers: Some(ms(50)),
            first_token: Some(ms(150)),
            generation: Some(ms(800)),
            ..Phases::default()
        };
        let mut limits = RateLimits::default();
        limits.retry_after = Some(Duration::from_secs(7));
        limits.set(
            Resource::Requests,
            Limit {
                limit: Some(500),
                remaining: Some(0),
                reset: None,
            },
        );
        let mut limited = record(3, Outcome::Http429);
        limited.connection = Some(Connection::Reused);
        limited.phases.headers = Some(ms(5000));
        limited.ratelimit = limits;
        let summary = BurstSummary::from_burst(&burst(vec![new, reused, limited]));
        let d = &summary.diagnostics;
        assert_eq!(d.connections[&Connection::New], 1);
        assert_eq!(d.connections[&Connection::Reused], 2);
        assert_eq!(d.retried, 1);
        // The failed request's 5 s `headers` phase is not a sample.
        assert_eq!(d.phases[&Phase::Headers].count, 2);
        assert_eq!(d.phases[&Phase::Headers].max, 0.09);
        assert_eq!(d.phases[&Phase::Connect].count, 1);
        assert!(!d.phases.contains_key(&Phase::Tls));
        assert_eq!(d.retry_after, Some((Duration::from_secs(7), 1)));
        let requests = d.ratelimit[&Resource::Requests];
        assert_eq!(
            (
                requests.limit,
                requests.lowest_remaining,
                requests.responses
            ),
            (Some(500), Some(0), 1)
        );
        assert!(!d.ratelimit.contains_key(&Resource::Tokens));
    }

    #[test]
    fn client_lag_p99_is_the_interpolated_percentile_and_max_the_largest() {
        let load = ClientLoad {
            lags: (1..=200).rev().map(ms).collect(),
            cpu: Some(ms(10)),
        };
        let c = ClientSummary::of(&load);
        assert_eq!(c.lag_samples, 200);
        // Rank 0.99 × 199 = 197.01: 198 ms + 0.01 × 1 ms.
        let p99 = c.lag_p99.unwrap().as_secs_f64();
        assert!((p99 - 0.19801).abs() < 1e-9, "{p99}");
        assert_eq!((c.lag_max, c.cpu), (Some(ms(200)), Some(ms(10))));
        let one = ClientSummary::of(&ClientLoad {
            lags: vec![ms(3)],
            cpu: None,
        });
        assert_eq!((one.lag_p99, one.lag_max), (Some(ms(3)), Some(ms(3))));
        let none = ClientSummary::of(&ClientLoad::default());
        assert_eq!(
            (none.lag_samples, none.lag_p99, none.lag_max),
            (0, None, None)
        );
    }

    #[test]
    fn client_queueing_is_reported_above_1ms_or_5_percent_of_ttft() {
        let us = Duration::from_micros;
        let with_lag = |ttft_ms: u64, p99: Option<Duration>| {
            let mut r = record(1, Outcome::Success);
            r.ttft = Some(ms(ttft_ms));
            let mut b = burst(vec![r]);
            b.client.lags = p99.into_iter().collect();
            BurstSummary::from_burst(&b).client_queueing()
        };
        assert_eq!(with_lag(200, None), None);
        assert_eq!(with_lag(200, Some(us(900))), None);
        assert_eq!(with_lag(200, Some(us(1001))), Some(us(1001)));
        // 5% of a 10 ms TTFT is 0.5 ms.
        assert_eq!(with_lag(10, Some(us(600))), Some(us(600)));
        assert_eq!(with_lag(10, Some(us(400))), None);
        // No TTFT (nothing succeeded): only the absolute limit.
        let mut b = burst(vec![record(1, Outcome::Connect)]);
        b.client.lags = vec![us(900)];
        assert_eq!(BurstSummary::from_burst(&b).client_queueing(), None);
    }
}
