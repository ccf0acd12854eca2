//! The JSON result document of one burst (DESIGN §6): serializable DTOs built from a target,
//! a `BurstResult` and its `BurstSummary`. The old script's keys (`config.url`,
//! `config.concurrency`, `config.total_requests`, `config.timestamp`, `summary.success_count`,
//! `summary.failed_count`, and per request `request_id`, `ttft`, `total_time`, `total_tokens`,
//! `total_bytes`, `tokens_per_second`, `error`) stay where they were.
//!
//! Schema version 2 (DESIGN §6 v2) adds keys that are present only when known: per request
//! `response_model`, `system_fingerprint`, `input_tokens`, `cached_input_tokens`,
//! `reasoning_tokens`, `usage_mismatch: true` and the diagnostics (DESIGN §11) `connection`,
//! `phases`, `retried: true`, `ratelimit`, `provider_request_id` and `captured_headers`; per
//! burst `summary.phases`, `summary.connections`, `summary.retried`, `summary.ratelimit` and
//! `summary.client` (the prober's own scheduling lag, CPU time and queueing warning), and, in
//! the daemon, `verdict` (DESIGN §10).
//! Every version-1 key keeps its place and meaning, so readers accept 1 and 2 alike.
//!
//! Durations are `f64` seconds rounded to microseconds; statistics with no samples are `null`.
//! Secrets never reach this document: URLs and headers are rendered redacted.
//! Does not: compute statistics, or write files (see `write.rs`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::config::Target;
use crate::output::report::client_warning;
use crate::output::round6;
use crate::probe::{BurstResult, Phase, Phases, RateLimits, RequestRecord, Resource};
use crate::stats::{BurstSummary, Diagnostics, Summary};
use crate::verdict::window::{self, Report};
use crate::verdict::{Metric, Row, Verdict};

/// Bumped when a key changes meaning or disappears, and for the v2 diagnostics (DESIGN §6).
/// Readers accept 1 and 2: version 2 only adds keys.
pub const SCHEMA_VERSION: u32 = 2;

/// What replaces a secret.

#[derive(Debug, Clone, Serialize)]
pub struct ResultDocument {
    pub schema_version: u32,
    pub tool: Tool,
    pub burst_id: String,
    pub target: String,
    /// Cancelled by shutdown: `metrics` holds what was measured before.
    pub interrupted: bool,
    pub config: ConfigDto,
    pub summary: SummaryDto,
    /// The daemon's verdict after this burst (DESIGN §10); absent from `run`'s files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictDto>,
    pub metrics: Vec<RequestDto>,
}

/// `verdict`: the recent window (this burst included) against the baseline, per metric.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictDto {
    /// The statistic judged (`p90`).
    pub statistic: &'static str,
    /// Window lengths in seconds: baseline = bursts in [t − baseline, t − recent), recent =
    /// bursts in [t − recent, t].
    pub baseline_window: f64,
    pub recent_window: f64,
    pub min_change: f64,
    pub min_samples: u32,
    /// When it was judged, RFC 3339 UTC.
    pub at: String,
    pub ttft: MetricVerdictDto,
    pub tpot: MetricVerdictDto,
}

/// One metric's row.
#[derive(Debug, Clone, Serialize)]
pub struct MetricVerdictDto {
    /// `regressed`, `improved`, `no_change`, `inconclusive` or `insufficient_data`.
    pub verdict: &'static str,
    /// The statistic over each window (seconds).
    pub baseline: Option<f64>,
    pub recent: Option<f64>,
    /// recent ÷ baseline − 1, and its 95% bootstrap interval.
    pub change: Option<f64>,
    pub ci: Option<[f64; 2]>,
    /// Mann–Whitney U.
    pub p_value: Option<f64>,
    /// Samples judged per window (each at most the reservoir's capacity).
    pub n_baseline: u64,
    pub n_recent: u64,
}

impl VerdictDto {
    pub fn new(report: &Report) -> VerdictDto {
        let metric = |m: Metric| {
            report
                .metric(m)
                .map_or_else(MetricVerdictDto::empty, |r| MetricVerdictDto::new(&r.row))
        };
        VerdictDto {
            statistic: window::statistic(report.settings.statistic).as_str(),
            baseline_window: report.settings.baseline.as_secs_f64(),
            recent_window: report.settings.recent.as_secs_f64(),
            min_change: report.settings.min_change,
            min_samples: report.settings.min_samples,
            at: rfc3339(report.at),
            ttft: metric(Metric::Ttft),
            tpot: metric(Metric::Tpot),
        }
    }
}

impl MetricVerdictDto {
    fn new(row: &Row) -> MetricVerdictDto {
        let r = |x: Option<f64>| x.and_then(finite).map(round6);
        MetricVerdictDto {
            verdict: row.verdict.as_str(),
            baseline: r(row.baseline),
            recent: r(row.candidate),
            change: r(row.change),
            ci: row
                .interval
                .filter(|(lo, hi)| lo.is_finite() && hi.is_finite())
                .map(|(lo, hi)| [round6(lo), round6(hi)]),
            p_value: row.p_value.and_then(finite),
            n_baseline: row.n_baseline,
            n_recent: row.n_candidate,
        }
    }

    fn empty() -> MetricVerdictDto {
        MetricVerdictDto {
            verdict: Verdict::InsufficientData.as_str(),
            baseline: None,
            recent: None,
            change: None,
            ci: None,
            p_value: None,
            n_baseline: 0,
            n_recent: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigDto {
    /// Redacted: secrets and secret-bearing query values read `<redacted>`.
    pub url: String,
    pub method: String,
    /// What the decoder used (`auto` resolved).
    pub protocol: &'static str,
    pub concurrency: u32,
    pub total_requests: u32,
    /// Open-loop arrivals per second; `null` for closed loop.
    pub rate: Option<f64>,
    /// Burst start, RFC 3339 UTC.
    pub timestamp: String,
    pub headers: BTreeMap<String, String>,
    pub connection_mode: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SummaryDto {
    pub success_count: u64,
    pub failed_count: u64,
    /// Seconds, first `t0` → last request's end.
    pub total_time: f64,
    /// Finished requests per second (the old script's throughput).
    pub throughput_rps: f64,
    pub outcomes: BTreeMap<&'static str, u64>,
    pub ttft: StatsDto,
    pub time_to_headers: StatsDto,
    /// Per-request durations (the old script's `total_time`).
    pub total_time_stats: StatsDto,
    pub itl: StatsDto,
    pub tpot: StatsDto,
    pub tokens_per_second: StatsDto,
    pub first_visible_token: StatsDto,
    pub output_tokens: u64,
    pub token_source: BTreeMap<&'static str, u64>,
    /// Per phase (`resolve` … `generation`), over the successful requests that went through it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<&'static str, StatsDto>,
    /// Requests per connection kind (`new`, `reused`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub connections: BTreeMap<&'static str, u64>,
    /// Requests retried once on a new connection after a reused one failed; absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub retried: u64,
    /// Per resource, what the provider's rate-limit headers stated over the burst.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ratelimit: BTreeMap<&'static str, LimitSeenDto>,
    /// The prober's own load during the burst.
    pub client: ClientDto,
}

/// How loaded the prober itself was (seconds; `null` when not measured).
#[derive(Debug, Clone, Serialize)]
pub struct ClientDto {
    /// Scheduling lag: how long a ready task waited for the runtime to poll it.
    pub lag_p99: Option<f64>,
    pub lag_max: Option<f64>,
    /// User plus system CPU time of the process over the burst.
    pub cpu_seconds: Option<f64>,
    /// The report's warning when the lag is large enough to be part of the measurements.
    pub warning: Option<String>,
}

/// One rate-limited resource over a burst.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LimitSeenDto {
    /// The limit the last response that stated one gave.
    pub limit: Option<u64>,
    /// The least remaining quota any response stated.
    pub lowest_remaining: Option<u64>,
    /// Responses that stated anything about the resource.
    pub responses: u64,
}

/// One statistics block; every number is `null` when `count` is 0.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StatsDto {
    pub count: usize,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub stdev: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl From<Option<Summary>> for StatsDto {
    fn from(s: Option<Summary>) -> StatsDto {
        let f = |pick: fn(&Summary) -> f64| s.as_ref().map(|s| round6(pick(s)));
        StatsDto {
            count: s.map_or(0, |s| s.count),
            min: f(|s| s.min),
            max: f(|s| s.max),
            mean: f(|s| s.mean),
            median: f(|s| s.median),
            stdev: f(|s| s.stdev),
            p50: f(|s| s.p50),
            p90: f(|s| s.p90),
            p95: f(|s| s.p95),
            p99: f(|s| s.p99),
        }
    }
}

/// One request. Field order: the old script's keys first.
#[derive(Debug, Clone, Serialize)]
pub struct RequestDto {
    pub request_id: u64,
    pub ttft: Option<f64>,
    /// Seconds, `t0` → end of stream (the duration).
    pub total_time: f64,
    /// `N_out` (the old script counted body chunks here).
    pub total_tokens: u64,
    /// Body bytes (old key; same value as `bytes`).
    pub total_bytes: u64,
    pub tokens_per_second: f64,
    pub error: Option<String>,
    pub outcome: &'static str,
    pub status: Option<u16>,
    pub time_to_headers: Option<f64>,
    pub first_visible_token: Option<f64>,
    pub output_tokens: u64,
    pub token_source: &'static str,
    pub chunks: u64,
    pub bytes: u64,
    pub itl_mean: Option<f64>,
    pub itl_max: Option<f64>,
    pub tpot: Option<f64>,
    pub client_wait: f64,
    pub start_offset: f64,
    /// `new` (opened for this request) or `reused`; absent when the request never got one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<&'static str>,
    /// Seconds per phase the request went through; they add up to `total_time`.
    #[serde(skip_serializing_if = "PhasesDto::is_empty")]
    pub phases: PhasesDto,
    /// Present (true) when the request was sent again on a new connection.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retried: bool,
    /// What the provider's rate-limit headers stated (present keys only).
    #[serde(skip_serializing_if = "RateLimitDto::is_empty")]
    pub ratelimit: RateLimitDto,
    /// The provider's id for the request (`x-request-id`, `request-id`, `cf-ray`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_request_id: Option<String>,
    /// The target's `capture_headers` the response carried.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub captured_headers: BTreeMap<String, String>,
    /// The model the server said answered (v2; present only when it named one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// Server-reported input tokens, cached part included (v2; only when reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// `true` when usage and the streamed events differ by more than 2× (TPOT rests on the
    /// server's count); absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub usage_mismatch: bool,
    /// Present only when text saving is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_text: Option<String>,
}

/// A request's phases in seconds, absent where it did not go through one.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PhasesDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<f64>,
}

impl PhasesDto {
    fn new(p: &Phases) -> PhasesDto {
        let s = |phase| p.get(phase).map(secs);
        PhasesDto {
            resolve: s(Phase::Resolve),
            connect: s(Phase::Connect),
            tls: s(Phase::Tls),
            headers: s(Phase::Headers),
            first_token: s(Phase::FirstToken),
            generation: s(Phase::Generation),
        }
    }

    fn is_empty(&self) -> bool {
        [
            self.resolve,
            self.connect,
            self.tls,
            self.headers,
            self.first_token,
            self.generation,
        ]
        .iter()
        .all(Option::is_none)
    }
}

/// `ratelimit` (DESIGN §6): `limit_<resource>`, `remaining_<resource>`, `reset_<resource>`
/// (seconds from the response) for requests, tokens, input_tokens and output_tokens, and
/// `retry_after` (seconds); present keys only.
#[derive(Debug, Clone, Default)]
pub struct RateLimitDto(RateLimits);

impl RateLimitDto {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for RateLimitDto {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for resource in Resource::ALL {
            let stated = self.0.get(resource);
            let name = resource.as_str();
            if let Some(n) = stated.limit {
                map.serialize_entry(&format!("limit_{name}"), &n)?;
            }
            if let Some(n) = stated.remaining {
                map.serialize_entry(&format!("remaining_{name}"), &n)?;
            }
            if let Some(d) = stated.reset {
                map.serialize_entry(&format!("reset_{name}"), &secs(d))?;
            }
        }
        if let Some(d) = self.0.retry_after {
            map.serialize_entry("retry_after", &secs(d))?;
        }
        map.end()
    }
}

impl ResultDocument {
    pub fn new(
        target: &Target,
        burst: &BurstResult,
        summary: &BurstSummary,
        include_text: bool,
    ) -> ResultDocument {
        ResultDocument {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "streamprobe",
                version: env!("CARGO_PKG_VERSION"),
            },
            burst_id: burst.burst_id.clone(),
            target: burst.target.clone(),
            interrupted: burst.interrupted,
            config: ConfigDto::new(target, burst),
            summary: SummaryDto::new(summary),
            verdict: None,
            metrics: burst
                .records
                .iter()
                .map(|r| RequestDto::new(r, include_text))
                .collect(),
        }
    }

    /// The document with the daemon's verdict after this burst.
    pub fn with_verdict(mut self, report: &Report) -> ResultDocument {
        self.verdict = Some(VerdictDto::new(report));
        self
    }

    /// Pretty-printed JSON with a trailing newline, as written to disk.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        // Cannot fail: writing to a Vec does not fail, every map key is a string and no field
        // has a fallible serializer (serde_json writes non-finite floats as null).
        self.write_json(&mut bytes)
            .expect("result DTOs always serialize");
        bytes
    }

    /// The same bytes as [`ResultDocument::to_json`], streamed into `out` through a small
    /// buffer: a 4,000-request document is 3.5 MB that then never sits in memory whole.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut buffered = std::io::BufWriter::new(out);
        // serde_json's error converts back to the writer's own I/O error (a full disk stays ENOSPC).
        serde_json::to_writer_pretty(&mut buffered, self).map_err(std::io::Error::from)?;
        buffered.write_all(b"\n")?;
        buffered.flush()
    }
}

impl ConfigDto {
    fn new(target: &Target, burst: &BurstResult) -> ConfigDto {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for h in &target.headers {
            let value = target.display_header_value(h);
            headers
                .entry(h.name.clone())
                .and_modify(|v| {
                    // Repeated header: HTTP's list form.
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        ConfigDto {
            url: target.display_url(),
            method: target.method.clone(),
            protocol: burst.protocol.as_str(),
            concurrency: target.concurrency.get(),
            total_requests: target.total_requests.get(),
            rate: target.rate.and_then(finite),
            timestamp: rfc3339(burst.started_at),
            headers,
            connection_mode: burst.connection_mode.as_str(),
        }
    }
}

impl SummaryDto {
    fn new(s: &BurstSummary) -> SummaryDto {
        SummaryDto {
            success_count: s.success_count,
            failed_count: s.failed_count,
            total_time: secs(s.total_time),
            throughput_rps: round6(s.throughput_rps),
            outcomes: s.outcomes.clone(),
            ttft: s.ttft.into(),
            time_to_headers: s.time_to_headers.into(),
            total_time_stats: s.duration.into(),
            itl: s.itl.into(),
            tpot: s.tpot.into(),
            tokens_per_second: s.tokens_per_second.into(),
            first_visible_token: s.first_visible_token.into(),
            output_tokens: s.output_tokens,
            token_source: s.token_source.clone(),
            phases: phase_stats(&s.diagnostics),
            connections: s
                .diagnostics
                .connections
                .iter()
                .map(|(kind, n)| (kind.as_str(), *n))
                .collect(),
            retried: s.diagnostics.retried,
            ratelimit: s
                .diagnostics
                .ratelimit
                .iter()
                .map(|(resource, seen)| {
                    let dto = LimitSeenDto {
                        limit: seen.limit,
                        lowest_remaining: seen.lowest_remaining,
                        responses: seen.responses,
                    };
                    (resource.as_str(), dto)
                })
                .collect(),
            client: ClientDto {
                lag_p99: s.client.lag_p99.map(secs),
                lag_max: s.client.lag_max.map(secs),
                cpu_seconds: s.client.cpu.map(secs),
                warning: client_warning(s),
            },
        }
    }
}

fn phase_stats(d: &Diagnostics) -> BTreeMap<&'static str, StatsDto> {
    d.phases
        .iter()
        .map(|(phase, s)| (phase.as_str(), Some(*s).into()))
        .collect()
}

impl RequestDto {
    fn new(r: &RequestRecord, include_text: bool) -> RequestDto {
        let itl_mean = (!r.itl.is_empty())
            .then(|| r.itl.iter().map(Duration::as_secs_f64).sum::<f64>() / r.itl.len() as f64);
        RequestDto {
            request_id: r.index,
            ttft: r.ttft.map(secs),
            total_time: secs(r.duration),
            total_tokens: r.output_tokens,
            total_bytes: r.bytes,
            tokens_per_second: round6(r.tokens_per_second()),
            error: r.error.clone(),
            outcome: r.outcome.as_str(),
            status: r.status,
            time_to_headers: r.time_to_headers.map(secs),
            first_visible_token: r.first_visible_token.map(secs),
            output_tokens: r.output_tokens,
            token_source: r.token_source.as_str(),
            chunks: r.chunks,
            bytes: r.bytes,
            itl_mean: itl_mean.map(round6),
            itl_max: r.itl.iter().max().copied().map(secs),
            tpot: r.tpot.map(secs),
            client_wait: secs(r.client_wait),
            start_offset: secs(r.start_offset),
            connection: r.connection.map(|c| c.as_str()),
            phases: PhasesDto::new(&r.phases),
            retried: r.retried,
            ratelimit: RateLimitDto(r.ratelimit.clone()),
            provider_request_id: r.provider_request_id.clone(),
            captured_headers: r.captured_headers.iter().cloned().collect(),
            response_model: r.response_model.clone(),
            system_fingerprint: r.system_fingerprint.clone(),
            input_tokens: r.input_tokens,
            cached_input_tokens: r.cached_input_tokens,
            reasoning_tokens: r.reasoning_tokens,
            usage_mismatch: r.usage_mismatch,
            output_text: include_text.then(|| r.text.clone().unwrap_or_default()),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn secs(d: Duration) -> f64 {
    round6(d.as_secs_f64())
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// `2026-11-27T10:15:00Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_is_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_774_500);
        assert_eq!(rfc3339(t), "2026-11-27T10:15:00Z");
    }
}
