//! Prometheus metrics: an owned `Registry` with every `streamprobe_*` family registered in one
//! constructor, plus the process collector. The only prometheus user.
//!
//! Labels come only from config names and closed enums (`Outcome`, `TokenSource`, `SloKind`,
//! `Skip`, `Phase`, `Connection`, `Resource`, `Metric`, `Verdict`); never a URL, prompt, request id or error text.
//! One exception, by design (DESIGN §5):
//! `streamprobe_response_model_info` carries the model and `system_fingerprint` the server
//! named. Those come from the server, so each is cut to [`MAX_LABEL_CHARS`] characters and only
//! the latest combination per target is kept: a target contributes one series however often
//! its server changes model. A burst's requests arrive live
//! through `BurstRecorder`, the engine's sink. Does not: start requests or serve HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::config::{Buckets, Target};
use crate::probe::{
    BurstEvent, BurstResult, BurstSink, Connection, Outcome, Phase, RequestRecord, Resource,
    TokenSource,
};
use crate::schedule::Skip;
use crate::stats::{BurstSummary, SloKind, slo_good};
use crate::verdict::Verdict;
use crate::verdict::window::{GAUGE_QUANTILES, Report, TRACKED};

/// The exposition content type (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const BURST_RESULTS: [&str; 3] = ["success", "partial", "failed"];
/// Longest server-named label value (response model, fingerprint), in characters; longer ones
/// are cut and end in `…`.
pub const MAX_LABEL_CHARS: usize = 128;
const QUANTILES: [&str; 4] = ["0.5", "0.9", "0.95", "0.99"];
/// Phase boundaries below the latency buckets: DNS, TCP and TLS take milliseconds.
const FAST_PHASE_BUCKETS: [f64; 3] = [0.001, 0.0025, 0.005];

/// Every family streamprobe exports.
pub struct Metrics {
    registry: Registry,
    ttft: HistogramVec,
    time_to_headers: HistogramVec,
    itl: HistogramVec,
    tpot: HistogramVec,
    first_visible_token: HistogramVec,
    duration: HistogramVec,
    requests: IntCounterVec,
    output_tokens: IntCounterVec,
    phase: HistogramVec,
    connections: IntCounterVec,
    connection_retries: IntCounterVec,
    ratelimit_remaining: GaugeVec,
    ratelimit_limit: GaugeVec,
    retry_after: GaugeVec,
    input_tokens: IntCounterVec,
    cached_input_tokens: IntCounterVec,
    reasoning_tokens: IntCounterVec,
    response_model_info: IntGaugeVec,
    response_model_changes: IntCounterVec,
    slo: IntCounterVec,
    bursts: IntCounterVec,
    bursts_skipped: IntCounterVec,
    last_burst_timestamp: GaugeVec,
    last_burst_success_ratio: GaugeVec,
    last_burst_ttft: GaugeVec,
    burst_duration: GaugeVec,
    client_lag: GaugeVec,
    in_flight: IntGaugeVec,
    target_info: IntGaugeVec,
    schedule_period: GaugeVec,
    schedule_lag: GaugeVec,
    result_write_failures: IntCounterVec,
    baseline: GaugeVec,
    change_ratio: GaugeVec,
    verdict: IntGaugeVec,
    reload_successful: IntGauge,
    reload_timestamp: Gauge,
    runtime_tasks: IntGauge,
    /// Label values of each target's `target_info` series, to delete it on reload.
    info_labels: Mutex<HashMap<String, [String; 3]>>,
    /// Each target's latest response model and fingerprint (bounded label values), to spot a
    /// change and delete the old `response_model_info` series.
    identities: Mutex<HashMap<String, Identity>>,
    /// The encoding thread's queue, started by the first [`Metrics::encode_elsewhere`].
    encoder: Mutex<Option<std::sync::mpsc::Sender<EncodeJob>>>,
    /// Length of the last exposition, to size the next one's buffer.
    last_encoded: std::sync::atomic::AtomicUsize,
}

/// A scrape waiting for the encoding thread: the registry, whether to gzip the text, and where
/// to send it.
type EncodeJob = (Arc<Metrics>, Gzip, tokio::sync::oneshot::Sender<Vec<u8>>);

/// Whether [`Metrics::encode_elsewhere`] compresses the exposition (the scraper accepts gzip, as
/// Prometheus does by default: at 200 targets 3.5 MB becomes a few hundred KB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gzip {
    Yes,
    No,
}

/// A target's response identity as label values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    model: String,
    fingerprint: String,
}

/// A family could not be registered (a programming error: names are constants).
#[derive(Debug, thiserror::Error)]
#[error("cannot register metrics")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    pub fn new(buckets: &Buckets) -> Result<Self, MetricsError> {
        // No registry prefix: it would also rename the standard `process_*` families.
        let registry = Registry::new();
        let histogram = |name: &str, help: &str, b: &[f64], labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(prefixed(name), help).buckets(b.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(prefixed(name), help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(prefixed(name), help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let lat = &buckets.latency;
        let tok = &buckets.token;
        let phase_buckets: Vec<f64> = FAST_PHASE_BUCKETS
            .iter()
            .copied()
            .filter(|b| lat.first().is_none_or(|first| b < first))
            .chain(lat.iter().copied())
            .collect();
        let metrics = Metrics {
            ttft: histogram(
                "time_to_first_token_seconds",
                "Request start to the first complete token-bearing stream event (successful requests).",
                lat,
                &["target"],
            )?,
            time_to_headers: histogram(
                "time_to_headers_seconds",
                "Request start to response status line and headers (successful requests).",
                lat,
                &["target"],
            )?,
            itl: histogram(
                "inter_token_latency_seconds",
                "Gap between consecutive token-bearing events (successful requests).",
                tok,
                &["target"],
            )?,
            tpot: histogram(
                "time_per_output_token_seconds",
                "(last token - first token) / (output tokens - 1) per successful request.",
                tok,
                &["target"],
            )?,
            first_visible_token: histogram(
                "time_to_first_visible_token_seconds",
                "Request start to the first token on the text channel (successful requests); later than TTFT for reasoning models.",
                lat,
                &["target"],
            )?,
            duration: histogram(
                "request_duration_seconds",
                "Request start to end of stream or failure.",
                lat,
                &["target", "outcome"],
            )?,
            requests: counter(
                "requests_total",
                "Finished requests by outcome.",
                &["target", "outcome"],
            )?,
            output_tokens: counter(
                "output_tokens_total",
                "Output tokens of successful requests, by where the count came from.",
                &["target", "source"],
            )?,
            phase: histogram(
                "phase_seconds",
                "Where a successful request's time went: resolve, connect, tls (new connections), headers, first_token, generation; they add up to its duration.",
                &phase_buckets,
                &["target", "phase"],
            )?,
            connections: counter(
                "connections_total",
                "Requests by connection: new (opened for the request, DNS/TCP/TLS in its duration) or reused.",
                &["target", "kind"],
            )?,
            connection_retries: counter(
                "connection_retries_total",
                "Requests sent again on a new connection after their reused keep-alive connection failed before any response byte.",
                &["target"],
            )?,
            ratelimit_remaining: gauge(
                "ratelimit_remaining",
                "Remaining quota the provider stated in its last response that carried it.",
                &["target", "resource"],
            )?,
            ratelimit_limit: gauge(
                "ratelimit_limit",
                "Quota limit the provider stated in its last response that carried it.",
                &["target", "resource"],
            )?,
            retry_after: gauge(
                "retry_after_seconds",
                "The retry-after delay of the last 429 or 503 response that carried one.",
                &["target"],
            )?,
            input_tokens: counter(
                "input_tokens_total",
                "Server-reported input tokens of successful requests, cached part included.",
                &["target"],
            )?,
            cached_input_tokens: counter(
                "cached_input_tokens_total",
                "Server-reported input tokens of successful requests served from a prompt cache.",
                &["target"],
            )?,
            reasoning_tokens: counter(
                "reasoning_tokens_total",
                "Server-reported reasoning tokens of successful requests.",
                &["target"],
            )?,
            response_model_info: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        prefixed("response_model_info"),
                        "The latest model and system fingerprint the target's server named (always 1; values cut at 128 characters).",
                    ),
                    &["target", "model", "fingerprint"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            response_model_changes: counter(
                "response_model_changes_total",
                "Times the server-named model or fingerprint of a target changed (the first sighting is not a change).",
                &["target"],
            )?,
            slo: counter(
                "slo_requests_total",
                "Requests judged against each configured SLO.",
                &["target", "slo", "result"],
            )?,
            bursts: counter(
                "bursts_total",
                "Finished bursts: success (all requests succeeded), partial, failed (none did).",
                &["target", "result"],
            )?,
            bursts_skipped: counter(
                "bursts_skipped_total",
                "Scheduled bursts that did not run.",
                &["target", "reason"],
            )?,
            last_burst_timestamp: gauge(
                "last_burst_timestamp_seconds",
                "Unix time at which the last burst finished.",
                &["target"],
            )?,
            last_burst_success_ratio: gauge(
                "last_burst_success_ratio",
                "Successful / recorded requests of the last burst.",
                &["target"],
            )?,
            last_burst_ttft: gauge(
                "last_burst_ttft_seconds",
                "Exact TTFT quantiles of the last burst's successful requests.",
                &["target", "quantile"],
            )?,
            burst_duration: gauge(
                "burst_duration_seconds",
                "Wall time of the last burst.",
                &["target"],
            )?,
            client_lag: gauge(
                "client_lag_seconds",
                "The prober's own scheduling lag during the last burst, p99: how long a ready task waited to be polled.",
                &["target"],
            )?,
            in_flight: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        prefixed("in_flight_requests"),
                        "Requests currently in flight.",
                    ),
                    &["target"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            target_info: {
                let g = IntGaugeVec::new(
                    Opts::new(prefixed("target_info"), "Configured targets (always 1)."),
                    &["target", "protocol", "model", "endpoint"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            schedule_period: gauge(
                "schedule_period_seconds",
                "Nominal time between a target's bursts (for staleness alerts).",
                &["target"],
            )?,
            schedule_lag: gauge(
                "schedule_lag_seconds",
                "How late the daemon acted on the target's last scheduled tick (started, queued or skipped its burst), by the wall clock.",
                &["target"],
            )?,
            result_write_failures: counter(
                "result_write_failures_total",
                "Result files that could not be written.",
                &["target"],
            )?,
            baseline: gauge(
                "baseline_seconds",
                "Quantiles of the target's baseline window (the bursts of verdict.baseline before the recent window).",
                &["target", "metric", "quantile"],
            )?,
            change_ratio: gauge(
                "change_ratio",
                "Recent window quantile / baseline window quantile.",
                &["target", "metric", "quantile"],
            )?,
            verdict: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        prefixed("verdict"),
                        "The daemon's verdict on the recent window against the baseline (state set: the current verdict is 1, the others 0).",
                    ),
                    &["target", "metric", "verdict"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            reload_successful: {
                let g = IntGauge::new(
                    prefixed("config_last_reload_successful"),
                    "Whether the last configuration load succeeded.",
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            reload_timestamp: {
                let g = Gauge::new(
                    prefixed("config_last_reload_success_timestamp_seconds"),
                    "Unix time of the last successful configuration load.",
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            runtime_tasks: {
                let g = IntGauge::new(
                    prefixed("runtime_alive_tasks"),
                    "Tasks alive in the daemon's async runtime (flat when nothing leaks).",
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            info_labels: Mutex::new(HashMap::new()),
            identities: Mutex::new(HashMap::new()),
            encoder: Mutex::new(None),
            last_encoded: Default::default(),
            registry,
        };
        let build = IntGaugeVec::new(
            Opts::new(
                prefixed("build_info"),
                "Version and git revision (always 1).",
            ),
            &["version", "revision"],
        )?;
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                // build.rs: the git commit, or "unknown" outside a checkout.
                env!("STREAMPROBE_REVISION"),
            ])
            .set(1);
        metrics.registry.register(Box::new(build))?;
        // process_* metrics, unprefixed as every exporter exposes them.
        metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(metrics)
    }

    /// Text exposition of every family. Called from within the runtime it also samples the
    /// runtime's alive-task count.
    pub fn encode(&self) -> Vec<u8> {
        self.sample_runtime();
        self.encode_families()
    }

    /// [`Metrics::encode`], on the registry's own encoding thread rather than the caller's:
    /// at 200 targets the exposition is ~3.5 MB and ~20 ms of CPU, which on a runtime worker
    /// would hold up every stream that worker serves (inside their TTFT and the client-lag
    /// metric). One long-lived thread, not the blocking pool: each pool thread would keep
    /// its own malloc arena with a few MB of exposition in it. Scrapes queue there one at a
    /// time, and are compressed there too when `gzip` says so. Falls back to encoding here if
    /// that thread cannot be started.
    pub async fn encode_elsewhere(self: &Arc<Self>, gzip: Gzip) -> Vec<u8> {
        self.sample_runtime();
        let (tx, rx) = tokio::sync::oneshot::channel();
        match self
            .encoder()
            .map(|jobs| jobs.send((self.clone(), gzip, tx)))
        {
            Some(Ok(())) => {}
            _ => return self.encode_families_as(gzip),
        }
        match rx.await {
            Ok(body) => body,
            // The thread is gone (it only ends when the registry is dropped): encode here.
            Err(_) => self.encode_families_as(gzip),
        }
    }

    fn encode_families_as(&self, gzip: Gzip) -> Vec<u8> {
        let text = self.encode_families();
        match gzip {
            Gzip::No => text,
            Gzip::Yes => {
                // Fastest level: the text is repetitive (label sets, bucket bounds), so level 1
                // already shrinks it ~10x, at a fraction of the CPU of the default level.
                let mut out = flate2::write::GzEncoder::new(
                    Vec::with_capacity(text.len() / 8),
                    flate2::Compression::fast(),
                );
                // Writing into a Vec cannot fail.
                let _ = std::io::Write::write_all(&mut out, &text);
                out.finish().unwrap_or_default()
            }
        }
    }

    fn encoder(&self) -> Option<std::sync::mpsc::Sender<EncodeJob>> {
        let mut slot = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            let (tx, rx) = std::sync::mpsc::channel::<EncodeJob>();
            let started = std::thread::Builder::new()
                .name("metrics-encoder".into())
                .spawn(move || {
                    // Ends when the registry (which holds the sender) is dropped.
                    while let Ok((metrics, gzip, reply)) = rx.recv() {
                        let _ = reply.send(metrics.encode_families_as(gzip));
                    }
                });
            match started {
                Ok(_) => *slot = Some(tx),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the metrics encoding thread; encoding on the runtime");
                    return None;
                }
            }
        }
        slot.clone()
    }

    fn sample_runtime(&self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            self.runtime_tasks.set(
                handle
                    .metrics()
                    .num_alive_tasks()
                    .try_into()
                    .unwrap_or(i64::MAX),
            );
        }
    }

    fn encode_families(&self) -> Vec<u8> {
        // Sized like the last exposition, so a large one is not grown by doubling each time.
        let last = self.last_encoded.load(std::sync::atomic::Ordering::Relaxed);
        let mut buf = Vec::with_capacity((last + last / 16).max(16 * 1024));
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        self.last_encoded
            .store(buf.len(), std::sync::atomic::Ordering::Relaxed);
        buf
    }

    /// Declares a target: its info series, its period, and zeroed request counters so that
    /// rates and ratios exist before the first failure.
    pub fn declare_target(&self, target: &Target, endpoint: &str, period: Option<Duration>) {
        let labels = [
            target.protocol.as_str().to_owned(),
            target.model.clone().unwrap_or_default(),
            endpoint.to_owned(),
        ];
        let mut info = self.info_labels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = info.insert(target.name.clone(), labels.clone())
            && old != labels
        {
            let _ =
                self.target_info
                    .remove_label_values(&[&target.name, &old[0], &old[1], &old[2]]);
        }
        self.target_info
            .with_label_values(&[&target.name, &labels[0], &labels[1], &labels[2]])
            .set(1);
        // A target that became manual (no schedule) must not look stale.
        match period {
            Some(p) => self
                .schedule_period
                .with_label_values(&[&target.name])
                .set(p.as_secs_f64()),
            None => {
                let _ = self.schedule_period.remove_label_values(&[&target.name]);
                let _ = self.schedule_lag.remove_label_values(&[&target.name]);
            }
        }
        // Every outcome exists from the start at 0, so `rate()` sees a target's first failure
        // of a kind instead of a series appearing mid-window.
        for outcome in Outcome::ALL {
            self.requests
                .with_label_values(&[target.name.as_str(), outcome.as_str()]);
        }
        for result in BURST_RESULTS {
            self.bursts
                .with_label_values(&[target.name.as_str(), result]);
        }
        for reason in Skip::ALL {
            self.bursts_skipped
                .with_label_values(&[target.name.as_str(), reason.as_str()]);
        }
        self.result_write_failures
            .with_label_values(&[target.name.as_str()]);
        for kind in Connection::ALL {
            self.connections
                .with_label_values(&[target.name.as_str(), kind.as_str()]);
        }
        self.connection_retries
            .with_label_values(&[target.name.as_str()]);
        self.in_flight.with_label_values(&[target.name.as_str()]);
        // At 0 from the start, so that `increase()` sees the first change (a series born at 1
        // has no increase) and token rates exist before the first report.
        for c in self.per_target_counters() {
            c.with_label_values(&[target.name.as_str()]);
        }
        for slo in SloKind::ALL {
            if slo.limit(&target.slo).is_some() {
                for result in ["good", "bad"] {
                    self.slo
                        .with_label_values(&[target.name.as_str(), slo.as_str(), result]);
                }
            }
        }
    }

    /// Deletes every series of a target that left the configuration.
    pub fn remove_target(&self, name: &str) {
        for h in [
            &self.ttft,
            &self.time_to_headers,
            &self.itl,
            &self.tpot,
            &self.first_visible_token,
        ] {
            let _ = h.remove_label_values(&[name]);
        }
        for c in self.per_target_counters() {
            let _ = c.remove_label_values(&[name]);
        }
        let mut identities = self.identities.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = identities.remove(name) {
            let _ =
                self.response_model_info
                    .remove_label_values(&[name, &old.model, &old.fingerprint]);
        }
        drop(identities);
        for outcome in Outcome::ALL {
            let _ = self.duration.remove_label_values(&[name, outcome.as_str()]);
            let _ = self.requests.remove_label_values(&[name, outcome.as_str()]);
        }
        for source in [TokenSource::Usage, TokenSource::Events] {
            let _ = self
                .output_tokens
                .remove_label_values(&[name, source.as_str()]);
        }
        for slo in SloKind::ALL {
            for result in ["good", "bad"] {
                let _ = self.slo.remove_label_values(&[name, slo.as_str(), result]);
            }
        }
        for result in BURST_RESULTS {
            let _ = self.bursts.remove_label_values(&[name, result]);
        }
        for reason in Skip::ALL {
            let _ = self
                .bursts_skipped
                .remove_label_values(&[name, reason.as_str()]);
        }
        for q in QUANTILES {
            let _ = self.last_burst_ttft.remove_label_values(&[name, q]);
        }
        for g in [
            &self.last_burst_timestamp,
            &self.last_burst_success_ratio,
            &self.burst_duration,
            &self.client_lag,
            &self.schedule_period,
            &self.schedule_lag,
        ] {
            let _ = g.remove_label_values(&[name]);
        }
        let _ = self.in_flight.remove_label_values(&[name]);
        let _ = self.result_write_failures.remove_label_values(&[name]);
        for phase in Phase::ALL {
            let _ = self.phase.remove_label_values(&[name, phase.as_str()]);
        }
        for kind in Connection::ALL {
            let _ = self.connections.remove_label_values(&[name, kind.as_str()]);
        }
        let _ = self.connection_retries.remove_label_values(&[name]);
        for resource in Resource::ALL {
            let _ = self
                .ratelimit_remaining
                .remove_label_values(&[name, resource.as_str()]);
            let _ = self
                .ratelimit_limit
                .remove_label_values(&[name, resource.as_str()]);
        }
        let _ = self.retry_after.remove_label_values(&[name]);
        self.remove_verdict(name);
        let mut info = self.info_labels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = info.remove(name) {
            let _ = self
                .target_info
                .remove_label_values(&[name, &old[0], &old[1], &old[2]]);
        }
    }

    /// Publishes a target's verdict: baseline quantiles, change ratios (a series disappears
    /// while its value is unknown) and the verdict state set, exactly one 1 per metric.
    pub fn set_verdict(&self, target: &str, report: &Report) {
        for m in &report.metrics {
            let metric = m.metric.as_str();
            for (i, q) in GAUGE_QUANTILES.iter().enumerate() {
                let q = q.to_string();
                for (family, value) in [
                    (&self.baseline, m.baseline_quantiles[i]),
                    (&self.change_ratio, m.change_ratios[i]),
                ] {
                    match value {
                        Some(v) => family.with_label_values(&[target, metric, &q]).set(v),
                        None => {
                            let _ = family.remove_label_values(&[target, metric, &q]);
                        }
                    }
                }
            }
            for v in Verdict::ALL {
                self.verdict
                    .with_label_values(&[target, metric, v.as_str()])
                    .set(i64::from(v == m.verdict()));
            }
        }
    }

    fn remove_verdict(&self, target: &str) {
        for metric in TRACKED.map(|m| m.as_str()) {
            for q in GAUGE_QUANTILES {
                let q = q.to_string();
                let _ = self.baseline.remove_label_values(&[target, metric, &q]);
                let _ = self.change_ratio.remove_label_values(&[target, metric, &q]);
            }
            for v in Verdict::ALL {
                let _ = self
                    .verdict
                    .remove_label_values(&[target, metric, v.as_str()]);
            }
        }
    }

    /// The counters labelled only by target that `declare_target` creates at 0.
    fn per_target_counters(&self) -> [&IntCounterVec; 4] {
        [
            &self.input_tokens,
            &self.cached_input_tokens,
            &self.reasoning_tokens,
            &self.response_model_changes,
        ]
    }

    /// Keeps the latest model/fingerprint a target's server named: the first sighting (also
    /// the first after a restart) sets the info series; a different combination replaces it
    /// and counts a change. A request without a fingerprint keeps the known one for the same
    /// model (servers omit it on some chunks and requests), so a missing value is no change.
    fn response_identity(&self, target: &str, record: &RequestRecord) {
        let Some(model) = record.response_model.as_deref() else {
            return;
        };
        let model = bounded_label(model);
        let mut identities = self.identities.lock().unwrap_or_else(|e| e.into_inner());
        let old = identities.get(target);
        let fingerprint = match (&record.system_fingerprint, old) {
            (Some(f), _) => bounded_label(f),
            (None, Some(old)) if old.model == model => old.fingerprint.clone(),
            (None, _) => String::new(),
        };
        let new = Identity { model, fingerprint };
        if old == Some(&new) {
            return;
        }
        if let Some(old) = identities.insert(target.to_owned(), new.clone()) {
            let _ = self.response_model_info.remove_label_values(&[
                target,
                &old.model,
                &old.fingerprint,
            ]);
            self.response_model_changes
                .with_label_values(&[target])
                .inc();
        }
        self.response_model_info
            .with_label_values(&[target, &new.model, &new.fingerprint])
            .set(1);
    }

    pub fn request_started(&self, target: &str) {
        self.in_flight.with_label_values(&[target]).inc();
    }

    /// Records one finished request, the moment it finishes (not at burst end).
    pub fn request_finished(&self, target: &Target, record: &RequestRecord) {
        let name = target.name.as_str();
        self.in_flight.with_label_values(&[name]).dec();
        if record.outcome == Outcome::Interrupted {
            // Cut short by shutdown: it says nothing about the target, and `outcome` labels
            // are the closed set of DESIGN §5. The result file records it.
            return;
        }
        let outcome = record.outcome.as_str();
        self.requests.with_label_values(&[name, outcome]).inc();
        self.duration
            .with_label_values(&[name, outcome])
            .observe(record.duration.as_secs_f64());
        if let Some(kind) = record.connection {
            self.connections
                .with_label_values(&[name, kind.as_str()])
                .inc();
        }
        if record.retried {
            self.connection_retries.with_label_values(&[name]).inc();
        }
        // Any response may state limits; a 429 is exactly when they matter.
        for resource in Resource::ALL {
            let stated = record.ratelimit.get(resource);
            if let Some(n) = stated.remaining {
                self.ratelimit_remaining
                    .with_label_values(&[name, resource.as_str()])
                    .set(n as f64);
            }
            if let Some(n) = stated.limit {
                self.ratelimit_limit
                    .with_label_values(&[name, resource.as_str()])
                    .set(n as f64);
            }
        }
        if let (Some(429 | 503), Some(wait)) = (record.status, record.ratelimit.retry_after) {
            self.retry_after
                .with_label_values(&[name])
                .set(wait.as_secs_f64());
        }
        // A failed stream still says which model answered it.
        self.response_identity(name, record);
        // A failed request is bad for every configured SLO.
        for (slo, good) in slo_good(record, &target.slo) {
            let result = if good { "good" } else { "bad" };
            self.slo
                .with_label_values(&[name, slo.as_str(), result])
                .inc();
        }
        if !record.outcome.is_success() {
            return;
        }
        if let Some(t) = record.ttft {
            self.ttft
                .with_label_values(&[name])
                .observe(t.as_secs_f64());
        }
        if let Some(t) = record.time_to_headers {
            self.time_to_headers
                .with_label_values(&[name])
                .observe(t.as_secs_f64());
        }
        let itl = self.itl.with_label_values(&[name]);
        for gap in &record.itl {
            itl.observe(gap.as_secs_f64());
        }
        if let Some(t) = record.tpot {
            self.tpot
                .with_label_values(&[name])
                .observe(t.as_secs_f64());
        }
        for (phase, took) in record.phases.iter() {
            self.phase
                .with_label_values(&[name, phase.as_str()])
                .observe(took.as_secs_f64());
        }
        if let Some(t) = record.first_visible_token {
            self.first_visible_token
                .with_label_values(&[name])
                .observe(t.as_secs_f64());
        }
        self.output_tokens
            .with_label_values(&[name, record.token_source.as_str()])
            .inc_by(record.output_tokens);
        for (counter, n) in [
            (&self.input_tokens, record.input_tokens),
            (&self.cached_input_tokens, record.cached_input_tokens),
            (&self.reasoning_tokens, record.reasoning_tokens),
        ] {
            if let Some(n) = n {
                counter.with_label_values(&[name]).inc_by(n);
            }
        }
    }

    /// Records a finished burst from its exact summary.
    pub fn burst_finished(&self, burst: &BurstResult, summary: &BurstSummary) {
        let name = burst.target.as_str();
        if summary.success_count + summary.failed_count == 0 && burst.interrupted {
            // Cancelled before any request ended: nothing about the target to report.
            return;
        }
        let result = if summary.success_count > 0 && summary.failed_count == 0 {
            "success"
        } else if summary.success_count > 0 {
            "partial"
        } else {
            "failed"
        };
        self.bursts.with_label_values(&[name, result]).inc();
        self.last_burst_timestamp
            .with_label_values(&[name])
            .set(unix_seconds(SystemTime::now()));
        self.last_burst_success_ratio
            .with_label_values(&[name])
            .set(summary.success_ratio());
        self.burst_duration
            .with_label_values(&[name])
            .set(burst.total_time.as_secs_f64());
        match summary.client.lag_p99 {
            Some(lag) => self
                .client_lag
                .with_label_values(&[name])
                .set(lag.as_secs_f64()),
            // Nothing measured: a stale value would claim a lag this burst did not have.
            None => {
                let _ = self.client_lag.remove_label_values(&[name]);
            }
        }
        match &summary.ttft {
            Some(t) => {
                for (q, v) in QUANTILES.iter().zip([t.p50, t.p90, t.p95, t.p99]) {
                    self.last_burst_ttft.with_label_values(&[name, q]).set(v);
                }
            }
            // No successful request: an exact quantile does not exist; drop stale values.
            None => {
                for q in QUANTILES {
                    let _ = self.last_burst_ttft.remove_label_values(&[name, q]);
                }
            }
        }
    }

    /// After a burst: nothing of this target is in flight (a request whose task panicked never
    /// reported its end, and bursts of one target never overlap).
    pub fn reset_in_flight(&self, target: &str) {
        self.in_flight.with_label_values(&[target]).set(0);
    }

    /// How late the scheduler acted on `target`'s last tick (`schedule::Hooks::tick_lag`).
    pub fn schedule_lag(&self, target: &str, lag: Duration) {
        self.schedule_lag
            .with_label_values(&[target])
            .set(lag.as_secs_f64());
    }

    pub fn burst_skipped(&self, target: &str, reason: Skip) {
        self.bursts_skipped
            .with_label_values(&[target, reason.as_str()])
            .inc();
    }

    pub fn result_write_failed(&self, target: &str) {
        self.result_write_failures
            .with_label_values(&[target])
            .inc();
    }

    pub fn config_loaded(&self, ok: bool) {
        self.reload_successful.set(i64::from(ok));
        if ok {
            self.reload_timestamp.set(unix_seconds(SystemTime::now()));
        }
    }
}

/// One burst's live subscriber (a `BurstSink`): a request is in flight from its start and is
/// recorded the moment it ends, not at burst end, so histograms and counters move while a long
/// burst runs.
pub struct BurstRecorder {
    metrics: Arc<Metrics>,
    target: Arc<Target>,
}

impl BurstRecorder {
    pub fn new(metrics: Arc<Metrics>, target: Arc<Target>) -> Self {
        BurstRecorder { metrics, target }
    }
}

impl BurstSink for BurstRecorder {
    fn observe(&mut self, event: &BurstEvent) {
        match event {
            BurstEvent::RequestStarted { .. } => self.metrics.request_started(&self.target.name),
            BurstEvent::RequestDone(record) => self.metrics.request_finished(&self.target, record),
        }
    }

    /// A request whose task panicked never reported its end (cancelled ones do).
    fn finish(&mut self) {
        self.metrics.reset_in_flight(&self.target.name);
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A server-named label value cut to [`MAX_LABEL_CHARS`] characters (the last one `…` when
/// cut), so a server cannot blow up series size.
fn bounded_label(s: &str) -> String {
    match s.char_indices().nth(MAX_LABEL_CHARS - 1) {
        Some((cut, _)) if s[cut..].chars().nth(1).is_some() => format!("{}…", &s[..cut]),
        _ => s.to_owned(),
    }
}

fn prefixed(name: &str) -> String {
    format!("streamprobe_{name}")
}
