//! The final text report of one burst: a pure function of a `BurstSummary` and a little context,
//! in fixed-width English. Keeps the old script's sections (overall, TTFT, total time,
//! generation rate) and adds time to headers, ITL, TPOT, output tokens, the response models the
//! server named, where the time went (phases, connections), the provider's rate limits and
//! failures by outcome, each with its sample count and the percentile method, and the prober's
//! own scheduling lag and CPU time. Warns when TPOT rests on a server count that disagrees with
//! the streamed events, and when the client's own queueing is large enough to be part of the
//! numbers.
//!
//! Does not: print (the caller decides where the text goes), or compute statistics.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use super::short_duration;
use crate::config::{Protocol, format_rate};
use crate::probe::{Connection, Outcome};
use crate::stats::{BurstSummary, Diagnostics, Summary};
use crate::stream::LooksLike;

/// What the report says about the burst besides its numbers.
#[derive(Debug, Clone, Copy)]
pub struct ReportContext<'a> {
    pub target: &'a str,
    /// Redacted, as in the result file.
    pub url: &'a str,
    pub concurrency: u32,
    pub total_requests: u32,
    /// Open-loop arrivals per second; `None` for a closed loop.
    pub rate: Option<f64>,
    /// The protocol the decoder used.
    pub protocol: Protocol,
    /// A generic stream's first event looked like a known dialect (a warning line).
    pub looks_like: Option<&'a LooksLike>,
    /// The result file, when one was written.
    pub output_path: Option<&'a Path>,
    /// The burst was cancelled by shutdown before every request finished.
    pub interrupted: bool,
}

/// Response model lines shown; a server that names a new model per request would flood the
/// report otherwise.
const MAX_MODELS: usize = 8;

const RULE: &str = "======================================================================";
/// Width of the label column.
const LABEL: usize = 22;

/// How a statistics block prints its values.
#[derive(Clone, Copy)]
enum Unit {
    /// Seconds with millisecond resolution, as the old script.
    Seconds,
    /// Milliseconds with 0.1 ms resolution, for per-token gaps.
    Millis,
    /// Tokens per second.
    Rate,
}

impl Unit {
    fn format(self, v: f64) -> String {
        match self {
            Unit::Seconds => format!("{v:.3} s"),
            Unit::Millis => format!("{:.1} ms", v * 1000.0),
            Unit::Rate => format!("{v:.2} tok/s"),
        }
    }
}

/// Renders the report. Ends with a newline.
pub fn render(summary: &BurstSummary, ctx: &ReportContext<'_>) -> String {
    let mut out = String::new();
    let o = &mut out;
    // Writing into a String cannot fail; `let _` keeps the fmt::Result out of the way.
    let _ = writeln!(o, "{RULE}");
    let _ = writeln!(o, "streamprobe report: {}", ctx.target);
    let _ = writeln!(o, "{RULE}");
    field(o, "URL", ctx.url);
    field(o, "Protocol", ctx.protocol.as_str());
    match ctx.rate {
        // A closed loop keeps `concurrency` in flight; an open loop's load is its arrival rate.
        None => field(o, "Concurrency", &ctx.concurrency.to_string()),
        Some(rate) => field(
            o,
            "Load",
            &format!(
                "open loop, Poisson arrivals at {}, up to {} in flight",
                format_rate(rate),
                ctx.concurrency
            ),
        ),
    }
    field(o, "Requests", &ctx.total_requests.to_string());
    if ctx.interrupted {
        field(
            o,
            "Interrupted",
            "yes (Ctrl-C or shutdown); requests cut short are counted as interrupted, not as failed",
        );
    }
    if let Some(looks_like) = ctx.looks_like {
        field(o, "Warning", &looks_like.advice(ctx.protocol));
    }
    if let Some(warning) = client_warning(summary) {
        field(o, "Warning", &warning);
    }

    section(o, "Overall");
    let total = summary.total;
    field(o, "Total requests", &total.to_string());
    field(
        o,
        "Succeeded",
        &format!(
            "{} ({})",
            summary.success_count,
            percent(summary.success_count, total)
        ),
    );
    field(
        o,
        "Failed",
        &format!(
            "{} ({})",
            summary.failed_count,
            percent(summary.failed_count, total)
        ),
    );
    if summary.interrupted_count > 0 {
        field(
            o,
            "Interrupted",
            &format!(
                "{} ({})",
                summary.interrupted_count,
                percent(summary.interrupted_count, total)
            ),
        );
    }
    field(
        o,
        "Total time",
        &format!("{:.2} s", summary.total_time.as_secs_f64()),
    );
    field(
        o,
        "Throughput",
        &format!(
            "{:.2} req/s ({:.2} req/s successful)",
            summary.throughput_rps, summary.goodput_rps
        ),
    );

    let n_ok = summary.success_count;
    stats(
        o,
        "Time to headers",
        summary.time_to_headers,
        Unit::Seconds,
        n_ok,
    );
    stats(
        o,
        "Time to first token (TTFT)",
        summary.ttft,
        Unit::Seconds,
        n_ok,
    );
    stats(
        o,
        "Total time per request",
        summary.duration,
        Unit::Seconds,
        n_ok,
    );
    stats(
        o,
        "Inter-token latency (ITL, all gaps)",
        summary.itl,
        Unit::Millis,
        n_ok,
    );
    stats(
        o,
        "Time per output token (TPOT)",
        summary.tpot,
        Unit::Millis,
        n_ok,
    );
    stats(
        o,
        "Generation rate (output tokens / total time)",
        summary.tokens_per_second,
        Unit::Rate,
        n_ok,
    );
    stats(
        o,
        "Decode rate (1 / TPOT)",
        summary.decode_rate,
        Unit::Rate,
        n_ok,
    );

    section(o, "Output tokens (successful requests)");
    field(o, "Total", &summary.output_tokens.to_string());
    if n_ok > 0 {
        field(
            o,
            "Per request",
            &format!("{:.1} mean", summary.output_tokens as f64 / n_ok as f64),
        );
    }
    let sources: Vec<String> = summary
        .token_source
        .iter()
        .map(|(source, n)| format!("{source} ({n} request{})", if *n == 1 { "" } else { "s" }))
        .collect();
    if !sources.is_empty() {
        field(o, "Counted from", &sources.join(", "));
    }
    // The old script's "tokens" were body chunks; they are shown beside N_out so its numbers
    // can still be compared.
    if n_ok > 0 {
        field(
            o,
            "Body chunks",
            &format!(
                "{} ({:.1} per request; the old script counted these as tokens)",
                summary.chunks,
                summary.chunks as f64 / n_ok as f64
            ),
        );
    }
    if summary.usage_mismatch > 0 {
        let n = summary.usage_mismatch;
        let _ = writeln!(
            o,
            "  Warning: TPOT rests on the server's count: {n} {} usage that differs from the streamed events by more than 2×",
            if n == 1 {
                "request reports"
            } else {
                "requests report"
            }
        );
    }

    if !summary.response_models.is_empty() {
        section(o, "Response models (as the server named them)");
        for ((model, fingerprint), n) in summary.response_models.iter().take(MAX_MODELS) {
            let model = if model.is_empty() {
                "(unnamed)".to_owned()
            } else {
                printable(model)
            };
            let fingerprint = fingerprint
                .as_deref()
                .map(|f| format!(", fingerprint {}", printable(f)))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {model}{fingerprint}: {n} request{}",
                if *n == 1 { "" } else { "s" }
            );
        }
        let more = summary.response_models.len().saturating_sub(MAX_MODELS);
        if more > 0 {
            let _ = writeln!(o, "  … and {more} more");
        }
    }

    phases(o, &summary.diagnostics);
    rate_limits(o, &summary.diagnostics);

    client(o, summary);

    if summary.failed_count > 0 {
        section(o, "Failures by outcome");
        // Closed-set order (connect, tls, http_4xx, ...), not alphabetical: it follows the
        // request's life.
        for outcome in Outcome::ALL.into_iter().filter(|o| !o.is_success()) {
            let n = summary.outcome_count(outcome);
            if n > 0 {
                field(o, outcome.as_str(), &format!("{n} ({})", percent(n, total)));
            }
        }
    }

    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Percentiles are exact over this burst's samples, linear interpolation between closest"
    );
    let _ = writeln!(
        o,
        "ranks (numpy's default); n = samples. Failed requests give no latency samples."
    );
    if let Some(path) = ctx.output_path {
        let _ = writeln!(o, "Results written to {}", path.display());
    }
    let _ = writeln!(o, "{RULE}");
    out
}

/// The warning for a burst whose client queued its own work long enough to show in the
/// measurements (`BurstSummary::client_queueing`); the report and `summary.client.warning`.
pub fn client_warning(summary: &BurstSummary) -> Option<String> {
    summary.client_queueing().map(|lag| {
        format!(
            "measurements include up to {:.1} ms of client queueing: lower -p, use more cores, or split the load",
            lag.as_secs_f64() * 1000.0
        )
    })
}

/// How loaded the prober itself was: its scheduling lag and CPU time.
fn client(o: &mut String, summary: &BurstSummary) {
    let c = &summary.client;
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    if c.lag_p99.is_none() && c.cpu.is_none() {
        return;
    }
    section(o, "Client (this prober)");
    if let (Some(p99), Some(max)) = (c.lag_p99, c.lag_max) {
        field(
            o,
            "Scheduling lag",
            &format!("p99 {}, max {} (n = {})", ms(p99), ms(max), c.lag_samples),
        );
    }
    if let Some(cpu) = c.cpu {
        field(o, "CPU time", &format!("{:.2} s", cpu.as_secs_f64()));
    }
}

/// A server-named string without control characters, so it cannot break the layout.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn section(o: &mut String, title: &str) {
    let _ = writeln!(o);
    let _ = writeln!(o, "{title}");
}

fn field(o: &mut String, label: &str, value: &str) {
    let _ = writeln!(o, "  {:<LABEL$}{value}", format!("{label}:"));
}

/// One statistics block: the summary statistics on the left, the percentiles and their sample
/// count on the right, aligned for a fixed-width terminal.
fn stats(o: &mut String, title: &str, s: Option<Summary>, unit: Unit, n_ok: u64) {
    section(o, title);
    let Some(s) = s else {
        let _ = writeln!(
            o,
            "  no samples ({n_ok} successful request{})",
            if n_ok == 1 { "" } else { "s" }
        );
        return;
    };
    let left = [
        ("min", s.min),
        ("mean", s.mean),
        ("median", s.median),
        ("stdev", s.stdev),
        ("max", s.max),
    ];
    let right = [
        ("p50", unit.format(s.p50)),
        ("p90", unit.format(s.p90)),
        ("p95", unit.format(s.p95)),
        ("p99", unit.format(s.p99)),
        ("n", s.count.to_string()),
    ];
    for ((l_name, l_value), (r_name, r_value)) in left.into_iter().zip(right) {
        let _ = writeln!(
            o,
            "  {:<8}{:>14}      {:<5}{:>14}",
            l_name,
            unit.format(l_value),
            r_name,
            r_value
        );
    }
}

/// Phase p50/p95 and the connections: which part of TTFT and duration grew, at a glance.
fn phases(o: &mut String, d: &Diagnostics) {
    if d.phases.is_empty() && d.connections.is_empty() {
        return;
    }
    section(o, "Where the time went (successful requests)");
    if !d.phases.is_empty() {
        let _ = writeln!(o, "  {:<20}{:>12}{:>12}{:>8}", "phase", "p50", "p95", "n");
        for (phase, s) in &d.phases {
            let _ = writeln!(
                o,
                "  {:<20}{:>12}{:>12}{:>8}",
                phase.as_str(),
                short_duration(s.p50),
                short_duration(s.p95),
                s.count
            );
        }
    }
    let count = |c| d.connections.get(&c).copied().unwrap_or(0);
    let mut connections = format!(
        "{} new, {} reused (all requests)",
        count(Connection::New),
        count(Connection::Reused)
    );
    if d.retried > 0 {
        let _ = write!(connections, "; {} retried on a new connection", d.retried);
    }
    field(o, "Connections", &connections);
}

/// What the provider's rate-limit headers said over the burst.
fn rate_limits(o: &mut String, d: &Diagnostics) {
    if d.ratelimit.is_empty() && d.retry_after.is_none() {
        return;
    }
    section(o, "Rate limits (as the provider stated them)");
    for (resource, seen) in &d.ratelimit {
        let mut parts = Vec::new();
        if let Some(limit) = seen.limit {
            parts.push(format!("limit {limit}"));
        }
        if let Some(low) = seen.lowest_remaining {
            parts.push(format!("lowest remaining {low}"));
        }
        let n = seen.responses;
        let text = format!(
            "{} ({n} response{})",
            parts.join(", "),
            if n == 1 { "" } else { "s" }
        );
        field(o, resource.as_str(), &text);
    }
    if let Some((longest, n)) = d.retry_after {
        field(
            o,
            "retry-after",
            &format!(
                "up to {} ({n} response{})",
                short_duration(longest.as_secs_f64()),
                if n == 1 { "" } else { "s" }
            ),
        );
    }
}

fn percent(n: u64, total: u64) -> String {
    if total == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ClientSummary;
    use crate::stats::summarize;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn ctx(output_path: Option<&Path>) -> ReportContext<'_> {
        ReportContext {
            target: "openai-gpt-4o-mini",
            url: "https://api.openai.com/v1/chat/completions?key=<redacted>",
            concurrency: 10,
            total_requests: 100,
            rate: None,
            protocol: Protocol::OpenAi,
            looks_like: None,
            output_path,
            interrupted: false,
        }
    }

    /// 98 successes, 2 idle timeouts, hand-picked samples.
    fn summary() -> BurstSummary {
        let s = |xs: &[f64]| summarize(xs);
        BurstSummary {
            total: 100,
            success_count: 98,
            failed_count: 2,
            interrupted_count: 0,
            total_time: Duration::from_millis(25_670),
            throughput_rps: 100.0 / 25.67,
            goodput_rps: 98.0 / 25.67,
            outcomes: BTreeMap::from([("success", 98), ("timeout_idle", 1), ("http_429", 1)]),
            ttft: s(&[0.2, 0.234, 0.25, 0.31, 1.2]),
            time_to_headers: s(&[0.1, 0.101, 0.12]),
            duration: s(&[2.4, 2.456, 3.1]),
            itl: s(&[0.04, 0.05, 0.051, 0.31]),
            tpot: s(&[0.0506, 0.049]),
            decode_rate: s(&[1.0 / 0.0506, 1.0 / 0.049]),
            tokens_per_second: s(&[18.32, 19.0, 17.5]),
            first_visible_token: s(&[0.234]),
            output_tokens: 4890,
            chunks: 5086,
            token_source: BTreeMap::from([("usage", 97), ("events", 1)]),
            diagnostics: Diagnostics::default(),
            response_models: BTreeMap::new(),
            usage_mismatch: 0,
            client: ClientSummary {
                lag_samples: 25_000,
                lag_p99: Some(Duration::from_micros(420)),
                lag_max: Some(Duration::from_micros(2_150)),
                cpu: Some(Duration::from_millis(350)),
            },
        }
    }

    #[test]
    fn report_of_a_mixed_burst() {
        let path = Path::new("results/openai-gpt-4o-mini/20261127T101500Z-b1.json");
        insta::assert_snapshot!(render(&summary(), &ctx(Some(path))));
    }

    #[test]
    fn report_with_phases_connections_and_rate_limits() {
        use crate::probe::{Phase, Resource};
        use crate::stats::LimitSeen;
        let s = |xs: &[f64]| summarize(xs).unwrap();
        let mut summary = summary();
        summary.diagnostics = Diagnostics {
            phases: BTreeMap::from([
                (Phase::Resolve, s(&[0.0012, 0.0031])),
                (Phase::Connect, s(&[0.0009, 0.0011])),
                (Phase::Tls, s(&[0.021, 0.034])),
                (Phase::Headers, s(&[0.08, 0.1, 0.12, 0.4])),
                (Phase::FirstToken, s(&[0.11, 0.13, 0.15, 0.9])),
                (Phase::Generation, s(&[2.1, 2.2, 2.3, 2.9])),
            ]),
            connections: BTreeMap::from([(Connection::New, 2), (Connection::Reused, 98)]),
            retried: 1,
            ratelimit: BTreeMap::from([
                (
                    Resource::Requests,
                    LimitSeen {
                        limit: Some(500),
                        lowest_remaining: Some(401),
                        responses: 100,
                    },
                ),
                (
                    Resource::Tokens,
                    LimitSeen {
                        limit: None,
                        lowest_remaining: Some(0),
                        responses: 1,
                    },
                ),
            ]),
            retry_after: Some((Duration::from_secs(7), 1)),
        };
        insta::assert_snapshot!(render(&summary, &ctx(None)));
    }

    #[test]
    fn report_with_zero_successes() {
        let none = BurstSummary {
            total: 3,
            success_count: 0,
            failed_count: 3,
            interrupted_count: 0,
            total_time: Duration::from_millis(30_001),
            throughput_rps: 3.0 / 30.001,
            goodput_rps: 0.0,
            outcomes: BTreeMap::from([("connect", 1), ("timeout_first_token", 2)]),
            ttft: None,
            time_to_headers: None,
            duration: None,
            itl: None,
            tpot: None,
            decode_rate: None,
            tokens_per_second: None,
            first_visible_token: None,
            output_tokens: 0,
            chunks: 0,
            token_source: BTreeMap::new(),
            diagnostics: Diagnostics::default(),
            response_models: BTreeMap::new(),
            usage_mismatch: 0,
            client: ClientSummary::default(),
        };
        let ctx = ReportContext {
            interrupted: true,
            total_requests: 3,
            ..ctx(None)
        };
        insta::assert_snapshot!(render(&none, &ctx));
    }

    /// An open-loop run says so, with its rate, instead of only "Concurrency" (issue 10,
    /// item 14); a generic stream that looked like a dialect gets a warning line (item 12).
    #[test]
    fn open_loop_load_and_generic_stream_warning() {
        let looks_like = LooksLike {
            protocol: Protocol::OpenAi,
            extract: None,
        };
        let open = ReportContext {
            rate: Some(2.0),
            protocol: Protocol::Sse,
            looks_like: Some(&looks_like),
            ..ctx(None)
        };
        let text = render(&summary(), &open);
        assert!(
            text.contains(
                "  Load:                 open loop, Poisson arrivals at 2/s, up to 10 in flight\n"
            ),
            "{text}"
        );
        assert!(!text.contains("Concurrency:"), "{text}");
        assert!(
            text.contains(
                "  Warning:              protocol sse without extract counted every event as one output token and stored its raw data as text, but the first event looks like openai JSON; set protocol: openai (or auto)\n"
            ),
            "{text}"
        );
        let closed = render(&summary(), &ctx(None));
        assert!(closed.contains("  Concurrency:          10\n"), "{closed}");
        assert!(!closed.contains("Warning:"), "{closed}");
    }

    #[test]
    fn report_names_response_models_and_warns_on_usage_mismatch() {
        let models = BurstSummary {
            response_models: BTreeMap::from([
                (
                    (
                        "gpt-4o-2024-08-06".to_owned(),
                        Some("fp_5050236cbd".to_owned()),
                    ),
                    97,
                ),
                (
                    ("gpt-4o-2024-11-20\n".to_owned(), Some("fp_b".to_owned())),
                    1,
                ),
                ((String::new(), Some("fp_only".to_owned())), 1),
            ]),
            usage_mismatch: 3,
            ..summary()
        };
        let text = render(&models, &ctx(None));
        assert!(text.contains(
            "  Warning: TPOT rests on the server's count: 3 requests report usage that differs from the streamed events by more than 2×\n"
        ));
        insta::assert_snapshot!(text);
        let one = BurstSummary {
            usage_mismatch: 1,
            ..summary()
        };
        assert!(render(&one, &ctx(None)).contains(": 1 request reports usage"));
        assert!(!render(&summary(), &ctx(None)).contains("Response models"));
    }

    #[test]
    fn report_counts_interrupted_requests_apart_and_shows_chunks() {
        let cut = BurstSummary {
            total: 100,
            success_count: 90,
            failed_count: 2,
            interrupted_count: 8,
            ..summary()
        };
        let ctx = ReportContext {
            interrupted: true,
            ..ctx(None)
        };
        let text = render(&cut, &ctx);
        assert!(
            text.contains("  Failed:               2 (2.0%)\n"),
            "{text}"
        );
        assert!(
            text.contains("  Interrupted:          8 (8.0%)\n"),
            "{text}"
        );
        assert!(
            text.contains("  Interrupted:          yes (Ctrl-C or shutdown)"),
            "{text}"
        );
        // Chunks over the successful requests, beside N_out.
        assert!(
            text.contains("  Body chunks:          5086 (56.5 per request; the old script counted these as tokens)\n"),
            "{text}"
        );
        assert!(!render(&summary(), &ctx).contains("Interrupted:          8"));
    }

    /// A client that queued its own work warns at the top, with the lag p99 in the text
    /// (issue 13, item 4); a healthy one shows its lag and CPU without a warning.
    #[test]
    fn report_warns_when_the_client_queues() {
        let healthy = render(&summary(), &ctx(None));
        assert!(
            healthy.contains("  Scheduling lag:       p99 0.42 ms, max 2.15 ms (n = 25000)\n"),
            "{healthy}"
        );
        assert!(
            healthy.contains("  CPU time:             0.35 s\n"),
            "{healthy}"
        );
        assert!(!healthy.contains("client queueing"), "{healthy}");
        assert_eq!(client_warning(&summary()), None);

        let mut starved = summary();
        starved.client.lag_p99 = Some(Duration::from_micros(23_460));
        starved.client.lag_max = Some(Duration::from_millis(41));
        let text = render(&starved, &ctx(None));
        let warning = "measurements include up to 23.5 ms of client queueing: lower -p, use more cores, or split the load";
        assert_eq!(client_warning(&starved).as_deref(), Some(warning));
        assert!(
            text.contains(&format!("  Warning:              {warning}\n")),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }
}
