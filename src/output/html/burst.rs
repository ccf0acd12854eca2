//! One burst in pictures (`run --html`, the daemon's burst page): the summary table, the
//! waterfall, the TTFT CDF, the ITL histogram and tokens/s per request.
//!
//! The input is a [`BurstView`]: the keys of a result document (DESIGN §6) the pictures need,
//! read with serde from a result file or from the `ResultDocument` `run` just built, so `run
//! --html` and the burst page draw exactly what the file says. Files of every version are read:
//! without `phases` (version 1) a request's bar is split at its time to headers and TTFT;
//! without `outcome` (the old script's) a non-null `error` is a failure.
//!
//! **The waterfall** has one row per request on a shared axis from burst start: the wait for a
//! concurrency permit, connect/TLS (DNS, TCP and TLS of a new connection), waiting for the
//! response headers, waiting for the first token, generation. Up to [`WATERFALL_MAX_ROWS`]
//! requests each get their row. Above, requests (in start order) are grouped k at a time, k the
//! smallest that fits: a group's row draws the **medians** of its members' start and of each
//! phase, a thin line on to the **latest end** in the group (so a slow tail stays visible), and
//! the **worst outcome** (any failure marks the row; hover lists the group's outcomes).
//!
//! Does not: read files or compute the summary statistics (they come with the document).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use super::svg::{self, Frame, Scale, TimeUnit, duration, num};
use super::{Escaped, Nav, page, palette};
use crate::output::result::ResultDocument;
use crate::stats::percentile;

/// Waterfall rows drawn at most; a bigger burst is drawn in groups (see the module doc).
pub const WATERFALL_MAX_ROWS: usize = 200;

/// Longest error text kept in a row's hover text; provider error bodies can be long.
const MAX_ERROR_CHARS: usize = 300;

/// What the pictures need of a result document; every key is optional but `metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BurstView {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub burst_id: Option<String>,
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default)]
    pub config: ConfigView,
    #[serde(default)]
    pub summary: SummaryView,
    pub metrics: Vec<RequestView>,
    /// The daemon's verdict after this burst (DESIGN §10); absent from `run`'s files.
    #[serde(default)]
    pub verdict: Option<FileVerdict>,
    /// Every inter-token gap of the successful requests (seconds), when the caller has them
    /// (`run` does); a result file keeps only each request's mean, which the histogram then
    /// shows instead.
    #[serde(skip)]
    pub itl_gaps: Option<Vec<f64>>,
}

/// A result file's `verdict`: the recent window against the baseline, per metric.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FileVerdict {
    /// The statistic judged (`p90`).
    #[serde(default)]
    pub statistic: Option<String>,
    #[serde(default)]
    pub ttft: Option<MetricVerdictView>,
    #[serde(default)]
    pub tpot: Option<MetricVerdictView>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MetricVerdictView {
    #[serde(default)]
    pub verdict: String,
    #[serde(default)]
    pub baseline: Option<f64>,
    #[serde(default)]
    pub recent: Option<f64>,
    #[serde(default)]
    pub change: Option<f64>,
    #[serde(default)]
    pub ci: Option<[f64; 2]>,
    #[serde(default)]
    pub n_baseline: u64,
    #[serde(default)]
    pub n_recent: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigView {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub concurrency: Option<u64>,
    #[serde(default)]
    pub total_requests: Option<u64>,
    #[serde(default)]
    pub rate: Option<f64>,
    /// Burst start, RFC 3339.
    #[serde(default)]
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SummaryView {
    #[serde(default)]
    pub success_count: Option<u64>,
    #[serde(default)]
    pub failed_count: Option<u64>,
    #[serde(default)]
    pub total_time: Option<f64>,
    #[serde(default)]
    pub throughput_rps: Option<f64>,
    #[serde(default)]
    pub outcomes: BTreeMap<String, u64>,
    #[serde(default)]
    pub ttft: Option<StatsView>,
    #[serde(default)]
    pub time_to_headers: Option<StatsView>,
    #[serde(default)]
    pub total_time_stats: Option<StatsView>,
    #[serde(default)]
    pub itl: Option<StatsView>,
    #[serde(default)]
    pub tpot: Option<StatsView>,
    #[serde(default)]
    pub tokens_per_second: Option<StatsView>,
}

/// One statistics block of the document.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct StatsView {
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub p50: Option<f64>,
    #[serde(default)]
    pub p90: Option<f64>,
    #[serde(default)]
    pub p95: Option<f64>,
    #[serde(default)]
    pub p99: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

/// One request of the document (seconds).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestView {
    #[serde(default)]
    pub request_id: u64,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    /// A string in every known writer; anything else is shown as JSON.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    #[serde(default)]
    pub start_offset: f64,
    #[serde(default)]
    pub client_wait: f64,
    #[serde(default)]
    pub time_to_headers: Option<f64>,
    #[serde(default)]
    pub ttft: Option<f64>,
    #[serde(default)]
    pub total_time: f64,
    #[serde(default)]
    pub tokens_per_second: Option<f64>,
    #[serde(default)]
    pub itl_mean: Option<f64>,
    #[serde(default)]
    pub connection: Option<String>,
    #[serde(default)]
    pub phases: Option<PhasesView>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PhasesView {
    #[serde(default)]
    pub resolve: Option<f64>,
    #[serde(default)]
    pub connect: Option<f64>,
    #[serde(default)]
    pub tls: Option<f64>,
    #[serde(default)]
    pub headers: Option<f64>,
    #[serde(default)]
    pub first_token: Option<f64>,
    #[serde(default)]
    pub generation: Option<f64>,
}

impl BurstView {
    /// A result file's bytes; the error says what is wrong with them.
    pub fn from_json(bytes: &[u8]) -> Result<BurstView, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The document `run` is about to write, read the way the file will be read, so the HTML
    /// next to it shows the same numbers as the daemon's burst page would.
    pub fn from_document(doc: &ResultDocument) -> Result<BurstView, serde_json::Error> {
        serde_json::to_value(doc).and_then(serde_json::from_value)
    }

    fn started(&self) -> &str {
        self.config.timestamp.as_deref().unwrap_or("")
    }
}

impl RequestView {
    /// `outcome`, or for the old script's files `success` / `error`.
    pub fn outcome(&self) -> &str {
        match &self.outcome {
            Some(o) => o,
            None if self.error.as_ref().is_some_and(|e| !e.is_null()) => "error",
            None => "success",
        }
    }

    fn is_success(&self) -> bool {
        self.outcome() == "success"
    }

    fn error_text(&self) -> Option<String> {
        let text = match self.error.as_ref()? {
            serde_json::Value::Null => return None,
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some(truncate(&text, MAX_ERROR_CHARS))
    }

    /// Where this request's time went, from the permit wait on: `[wait, connect/TLS, headers,
    /// first token, generation]`, zero where it did not go through a stage. Without phases
    /// (version 1 files) the bar is split at time to headers and TTFT.
    fn stages(&self) -> [f64; 5] {
        let wait = self.client_wait.max(0.0);
        let v = |x: Option<f64>| x.filter(|x| x.is_finite() && *x > 0.0).unwrap_or(0.0);
        match &self.phases {
            Some(p) => [
                wait,
                v(p.resolve) + v(p.connect) + v(p.tls),
                v(p.headers),
                v(p.first_token),
                v(p.generation),
            ],
            None => {
                let total = v(Some(self.total_time));
                let headers = v(self.time_to_headers).min(total);
                let first = v(self.ttft).min(total).max(headers);
                if headers == 0.0 && first == 0.0 {
                    // Nothing says where the time went: all of it waited for an answer.
                    [wait, 0.0, total, 0.0, 0.0]
                } else {
                    [
                        wait,
                        0.0,
                        headers,
                        first - headers,
                        total - first.max(headers),
                    ]
                }
            }
        }
    }

    /// Burst start → the start of its permit wait.
    fn wait_start(&self) -> f64 {
        (self.start_offset - self.client_wait).max(0.0)
    }

    /// Burst start → this request's end.
    fn end(&self) -> f64 {
        self.start_offset.max(0.0) + self.total_time.max(0.0)
    }
}

/// The stages of a waterfall bar, in order, with their colour and legend text.
const STAGES: [(&str, &str); 5] = [
    (palette::LIGHT_GREY, "waiting for a concurrency slot"),
    (palette::ORANGE, "connect/TLS (new connection)"),
    (palette::SKY_BLUE, "waiting for response headers"),
    (palette::BLUE, "waiting for the first token"),
    (palette::GREEN, "generation"),
];

/// How a failed row is marked besides its hatching: a colour and a shape per kind of outcome,
/// so that neither alone carries the meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Connect,
    RateLimited,
    Http,
    Timeout,
    Stream,
    Interrupted,
}

impl Mark {
    const ALL: [Mark; 6] = [
        Mark::Connect,
        Mark::RateLimited,
        Mark::Http,
        Mark::Timeout,
        Mark::Stream,
        Mark::Interrupted,
    ];

    fn of(outcome: &str) -> Option<Mark> {
        Some(match outcome {
            "success" => return None,
            "connect" | "tls" => Mark::Connect,
            "http_429" => Mark::RateLimited,
            "http_4xx" | "http_5xx" => Mark::Http,
            "interrupted" => Mark::Interrupted,
            o if o.starts_with("timeout") => Mark::Timeout,
            _ => Mark::Stream,
        })
    }

    fn colour(self) -> &'static str {
        match self {
            Mark::Connect => palette::BLACK,
            Mark::RateLimited => palette::YELLOW,
            Mark::Http => palette::VERMILLION,
            Mark::Timeout => palette::PURPLE,
            Mark::Stream => palette::ORANGE,
            Mark::Interrupted => "#FFFFFF",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Mark::Connect => "■ connect/TLS failed",
            Mark::RateLimited => "◆ rate limited (429)",
            Mark::Http => "✕ HTTP error (4xx/5xx)",
            Mark::Timeout => "▲ timeout",
            Mark::Stream => {
                "● stream failed (error event, truncated, no tokens, too large, assertion)"
            }
            Mark::Interrupted => "○ interrupted (Ctrl-C or shutdown)",
        }
    }

    /// The marker centred at (x, y) with half-size `r`.
    fn shape(self, x: f64, y: f64, r: f64) -> String {
        let (c, s) = (self.colour(), "stroke=\"#000\" stroke-width=\"0.8\"");
        match self {
            Mark::Connect => format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{d}\" height=\"{d}\" fill=\"{c}\" {s}/>",
                num(x - r),
                num(y - r),
                d = num(2.0 * r)
            ),
            Mark::RateLimited => format!(
                "<path d=\"M{} {}l{r} {r}l-{r} {r}l-{r} -{r}z\" fill=\"{c}\" {s}/>",
                num(x),
                num(y - r),
                r = num(r)
            ),
            Mark::Http => format!(
                "<path d=\"M{} {}l{d} {d}m0 -{d}l-{d} {d}\" stroke=\"{c}\" stroke-width=\"2\"/>",
                num(x - r),
                num(y - r),
                d = num(2.0 * r)
            ),
            Mark::Timeout => format!(
                "<path d=\"M{} {}l{r} {d}h-{d}z\" fill=\"{c}\" {s}/>",
                num(x),
                num(y - r),
                r = num(r),
                d = num(2.0 * r)
            ),
            Mark::Stream | Mark::Interrupted => format!(
                "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{c}\" {s}/>",
                num(x),
                num(y),
                num(r)
            ),
        }
    }
}

/// The whole page: `title` names the burst; `nav` links back to where it came from.
pub fn render_page(view: &BurstView, nav: Nav<'_>) -> String {
    let title = format!(
        "{} — burst {}",
        view.target.as_deref().unwrap_or("streamprobe"),
        view.started()
    );
    page(title.trim_end(), nav, None, &render_body(view))
}

/// The page's content: summary, waterfall, TTFT CDF, ITL histogram, tokens/s.
pub fn render_body(view: &BurstView) -> String {
    let mut out = String::with_capacity(64 * 1024 + 200 * view.metrics.len());
    summary(&mut out, view);
    out.push_str("<h2>Waterfall</h2>\n");
    waterfall(&mut out, view);
    out.push_str("<h2>Time to first token</h2>\n");
    ttft_cdf(&mut out, view);
    out.push_str("<h2>Inter-token latency</h2>\n");
    itl_histogram(&mut out, view);
    out.push_str("<h2>Tokens per second</h2>\n");
    tokens_per_second(&mut out, view);
    out
}

fn summary(out: &mut String, view: &BurstView) {
    let c = &view.config;
    let s = &view.summary;
    let n = view.metrics.len() as u64;
    let failed = view
        .metrics
        .iter()
        .filter(|r| !r.is_success() && r.outcome() != "interrupted")
        .count() as u64;
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Some(t) = &view.target {
        rows.push(("target", t.clone()));
    }
    if let Some(u) = &c.url {
        rows.push(("URL", u.clone()));
    }
    if let Some(p) = &c.protocol {
        rows.push(("protocol", p.clone()));
    }
    if let Some(t) = &c.timestamp {
        rows.push(("started", t.clone()));
    }
    if let Some(id) = &view.burst_id {
        rows.push(("burst id", id.clone()));
    }
    match (c.rate, c.concurrency) {
        (Some(rate), Some(cc)) => rows.push((
            "load",
            format!("open loop, {rate} req/s, at most {cc} in flight"),
        )),
        (None, Some(cc)) => rows.push(("concurrency", cc.to_string())),
        _ => {}
    }
    rows.push((
        "requests",
        format!(
            "{n}: {} succeeded, {failed} failed{}",
            s.success_count
                .unwrap_or(n - failed)
                .min(n.saturating_sub(failed)),
            if view.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        ),
    ));
    let outcomes: Vec<String> = if s.outcomes.is_empty() {
        let mut counted: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &view.metrics {
            *counted.entry(r.outcome()).or_default() += 1;
        }
        counted.iter().map(|(k, v)| format!("{k} {v}")).collect()
    } else {
        s.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect()
    };
    rows.push(("outcomes", outcomes.join(", ")));
    if let Some(t) = s.total_time {
        rows.push(("total time", duration(t)));
    }
    if let Some(r) = s.throughput_rps {
        rows.push(("throughput", format!("{r:.2} req/s")));
    }
    out.push_str("<table class=\"summary\">");
    for (k, v) in rows {
        let class = if k == "requests" && failed > 0 {
            " class=\"bad\""
        } else {
            ""
        };
        let _ = write!(out, "<tr><th>{k}</th><td{class}>{}</td></tr>", Escaped(&v));
    }
    if let Some(v) = &view.verdict {
        verdict_rows(out, v);
    }
    out.push_str("</table>\n");

    out.push_str(
        "<table class=\"stats\"><tr><th>successful requests</th><th class=\"n\">n</th>\
         <th class=\"n\">p50</th><th class=\"n\">p90</th><th class=\"n\">p95</th>\
         <th class=\"n\">p99</th><th class=\"n\">max</th></tr>",
    );
    let blocks: [(&str, Option<StatsView>, bool); 6] = [
        ("TTFT", s.ttft, true),
        ("time to headers", s.time_to_headers, true),
        ("duration", s.total_time_stats, true),
        ("ITL (every gap)", s.itl, true),
        ("TPOT", s.tpot, true),
        ("tokens/s", s.tokens_per_second, false),
    ];
    for (name, block, time) in blocks {
        let Some(b) = block else { continue };
        let cell = |v: Option<f64>| match v {
            None => "—".to_owned(),
            Some(v) if time => duration(v),
            Some(v) => format!("{v:.1}"),
        };
        let _ = write!(
            out,
            "<tr><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            b.count,
            cell(b.p50),
            cell(b.p90),
            cell(b.p95),
            cell(b.p99),
            cell(b.max)
        );
    }
    out.push_str("</table>\n");
}

/// The daemon's verdict after the burst, one row per metric, in words and as a badge.
fn verdict_rows(out: &mut String, v: &FileVerdict) {
    let statistic = v.statistic.as_deref().unwrap_or("");
    for (name, m) in [("TTFT", &v.ttft), ("TPOT", &v.tpot)] {
        let Some(m) = m else { continue };
        let value = |x: Option<f64>| x.map_or_else(|| "—".into(), duration);
        let _ = write!(
            out,
            "<tr><th>verdict, {name} {}</th><td>{} recent {} (n = {}) against baseline {} \
             (n = {})",
            Escaped(statistic),
            super::verdict_badge(&m.verdict),
            value(m.recent),
            m.n_recent,
            value(m.baseline),
            m.n_baseline
        );
        if let Some(c) = m.change.filter(|c| c.is_finite()) {
            let _ = write!(out, ", change {:+.1}%", c * 100.0);
            if let Some([lo, hi]) = m.ci {
                let _ = write!(out, " (CI [{:+.1}%, {:+.1}%])", lo * 100.0, hi * 100.0);
            }
        }
        out.push_str("</td></tr>");
    }
}

/// One waterfall row: a request, or the group of requests it stands for.
struct Row {
    /// The first and last request id it covers, and how many.
    first: u64,
    last: u64,
    members: usize,
    start: f64,
    stages: [f64; 5],
    /// The latest end in the group, when it lies beyond the drawn bar (groups only).
    tail_end: Option<f64>,
    mark: Option<Mark>,
    title: String,
}

fn waterfall(out: &mut String, view: &BurstView) {
    let mut requests: Vec<&RequestView> = view.metrics.iter().collect();
    requests.sort_by(|a, b| {
        a.wait_start()
            .total_cmp(&b.wait_start())
            .then(a.request_id.cmp(&b.request_id))
    });
    let n = requests.len();
    let k = n.div_ceil(WATERFALL_MAX_ROWS).max(1);
    let rows: Vec<Row> = requests
        .chunks(k)
        .map(|group| {
            if group.len() == 1 {
                single_row(group[0])
            } else {
                group_row(group)
            }
        })
        .collect();

    let row_height = if rows.len() <= 40 {
        16.0
    } else {
        (640.0 / rows.len() as f64).max(3.0)
    };
    let mut frame = Frame::new(1000.0, 0.0);
    frame.left = 72.0;
    frame.height = frame.top + frame.bottom + row_height * rows.len().max(1) as f64;
    let max_end = requests.iter().map(|r| r.end()).fold(0.0, f64::max);
    let ((d0, d1), ticks) = svg::nice_domain(0.0, max_end, 8);
    let x = Scale::new((d0, d1), frame.x_range());
    let unit = TimeUnit::for_max(d1);
    let step = ticks.get(1).copied().unwrap_or(1.0) - ticks[0];

    if k > 1 {
        let _ = writeln!(
            out,
            "<p class=\"note\">{n} requests: each row is a group of {k} consecutive requests \
             (by start): the bar shows the group's median start and median time per stage, \
             the thin line runs on to the group's latest end, and a marker shows its worst \
             outcome. Hover a row for its requests.</p>"
        );
    }
    let attrs = format!(" data-requests=\"{n}\" data-rows=\"{}\"", rows.len());
    frame.open(
        out,
        "waterfall",
        &attrs,
        &format!("waterfall of {n} requests from burst start"),
    );
    // Failed rows are hatched as well as marked: a pattern, not a colour, says "failed".
    out.push_str(
        "<defs><pattern id=\"wf-hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" \
         stroke=\"#000\" stroke-width=\"2\" stroke-opacity=\"0.45\"/></pattern></defs>",
    );
    svg::x_axis(
        out,
        &frame,
        &x,
        &ticks,
        |t| unit.label(t, step),
        &format!("time from burst start ({})", unit.name()),
    );
    if rows.is_empty() {
        svg::empty_note(out, &frame, "no requests");
    }
    // Row labels: about one per 16 units of height.
    let label_every = ((16.0 / row_height).ceil() as usize).max(1);
    let bar = (row_height * 0.78).max(2.0);
    for (i, row) in rows.iter().enumerate() {
        let top = frame.top + i as f64 * row_height;
        let y = top + (row_height - bar) / 2.0;
        let _ = write!(
            out,
            "<g class=\"wf-row\"><title>{}</title>",
            Escaped(&row.title)
        );
        if i % label_every == 0 {
            let label = if row.members == 1 {
                format!("#{}", row.first)
            } else {
                format!("#{}–{}", row.first, row.last)
            };
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" dy=\"4\" text-anchor=\"end\">{label}</text>",
                num(frame.left - 6.0),
                num(top + row_height / 2.0)
            );
        }
        let mut t = row.start;
        for (stage, (colour, _)) in row.stages.iter().zip(STAGES) {
            if *stage > 0.0 {
                let (x0, x1) = (x.map(t), x.map(t + stage));
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"/>",
                    num(x0),
                    num(y),
                    num((x1 - x0).max(0.6)),
                    num(bar)
                );
            }
            t += stage;
        }
        if let Some(end) = row.tail_end {
            let _ = write!(
                out,
                "<line x1=\"{}\" x2=\"{}\" y1=\"{yc}\" y2=\"{yc}\" stroke=\"#444\"/>",
                num(x.map(t)),
                num(x.map(end)),
                yc = num(top + row_height / 2.0)
            );
        }
        if let Some(mark) = row.mark {
            let x0 = x.map(row.start);
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"url(#wf-hatch)\"/>",
                num(x0),
                num(y),
                num((x.map(t) - x0).max(0.6)),
                num(bar)
            );
            let r = (bar / 2.0).clamp(2.0, 5.0);
            out.push_str(&mark.shape(
                x.map(row.tail_end.unwrap_or(t)) + r + 1.0,
                top + row_height / 2.0,
                r,
            ));
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>\n");
    let mut items: Vec<(String, &str)> = STAGES
        .iter()
        .map(|(c, text)| (format!("background:{c}"), *text))
        .collect();
    items.push((
        "background:repeating-linear-gradient(45deg,#999 0 2px,#fff 2px 5px)".into(),
        "hatched: failed or interrupted",
    ));
    for m in Mark::ALL {
        items.push((format!("background:{}", m.colour()), m.text()));
    }
    let items: Vec<(&str, &str)> = items.iter().map(|(s, t)| (s.as_str(), *t)).collect();
    svg::legend(out, &items);
}

fn single_row(r: &RequestView) -> Row {
    let stages = r.stages();
    let outcome = r.outcome();
    let mut title = format!("#{} {outcome}", r.request_id);
    if let Some(status) = r.status {
        let _ = write!(title, " (HTTP {status})");
    }
    if let Some(conn) = &r.connection {
        let _ = write!(title, ", {conn} connection");
    }
    let _ = write!(
        title,
        ": starts {} after burst start; wait {}, connect/TLS {}, headers {}, first token {}, \
         generation {}",
        duration(r.start_offset),
        duration(stages[0]),
        duration(stages[1]),
        duration(stages[2]),
        duration(stages[3]),
        duration(stages[4])
    );
    if let Some(ttft) = r.ttft {
        let _ = write!(title, "; TTFT {}", duration(ttft));
    }
    let _ = write!(title, "; duration {}", duration(r.total_time));
    if let Some(e) = r.error_text() {
        let _ = write!(title, "\nerror: {e}");
    }
    Row {
        first: r.request_id,
        last: r.request_id,
        members: 1,
        start: r.wait_start(),
        stages,
        tail_end: None,
        mark: Mark::of(outcome),
        title,
    }
}

fn group_row(group: &[&RequestView]) -> Row {
    let median = |values: Vec<f64>| {
        let mut v = values;
        v.sort_unstable_by(f64::total_cmp);
        percentile(&v, 0.5)
    };
    let start = median(group.iter().map(|r| r.wait_start()).collect());
    let all: Vec<[f64; 5]> = group.iter().map(|r| r.stages()).collect();
    let mut stages = [0.0; 5];
    for (i, s) in stages.iter_mut().enumerate() {
        *s = median(all.iter().map(|a| a[i]).collect());
    }
    let drawn_end = start + stages.iter().sum::<f64>();
    let latest = group.iter().map(|r| r.end()).fold(0.0, f64::max);
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for r in group {
        *outcomes.entry(r.outcome()).or_default() += 1;
    }
    // Worst outcome: the most frequent failure, else interrupted, else none.
    let failure = outcomes
        .iter()
        .filter(|(o, _)| **o != "success" && **o != "interrupted")
        .max_by_key(|(_, n)| **n)
        .map(|(o, _)| *o);
    let worst = failure.or_else(|| {
        outcomes
            .contains_key("interrupted")
            .then_some("interrupted")
    });
    let ids: Vec<u64> = group.iter().map(|r| r.request_id).collect();
    let (first, last) = (
        ids.iter().copied().min().unwrap_or(0),
        ids.iter().copied().max().unwrap_or(0),
    );
    let listed: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} ×{n}")).collect();
    let mut title = format!(
        "{} requests (#{first}–#{last}): {}; median start {}, wait {}, connect/TLS {}, \
         headers {}, first token {}, generation {}; latest end {}",
        group.len(),
        listed.join(", "),
        duration(start),
        duration(stages[0]),
        duration(stages[1]),
        duration(stages[2]),
        duration(stages[3]),
        duration(stages[4]),
        duration(latest)
    );
    if let Some(e) = group
        .iter()
        .find(|r| Some(r.outcome()) == worst)
        .and_then(|r| r.error_text())
    {
        let _ = write!(title, "\nerror (one of them): {e}");
    }
    Row {
        first,
        last,
        members: group.len(),
        start,
        stages,
        tail_end: (latest > drawn_end).then_some(latest),
        mark: worst.and_then(Mark::of),
        title,
    }
}

fn ttft_cdf(out: &mut String, view: &BurstView) {
    let mut ttft: Vec<f64> = view
        .metrics
        .iter()
        .filter(|r| r.is_success())
        .filter_map(|r| r.ttft)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .collect();
    ttft.sort_unstable_by(f64::total_cmp);
    let frame = Frame::new(720.0, 300.0);
    frame.open(
        out,
        "ttft-cdf",
        &format!(" data-samples=\"{}\"", ttft.len()),
        "cumulative distribution of time to first token",
    );
    let max = ttft.last().copied().unwrap_or(1.0);
    let ((d0, d1), xt) = svg::nice_domain(0.0, max, 8);
    let x = Scale::new((d0, d1), frame.x_range());
    let y = Scale::new((0.0, 1.0), frame.y_range());
    let unit = TimeUnit::for_max(d1);
    let step = xt.get(1).copied().unwrap_or(1.0) - xt[0];
    svg::x_axis(
        out,
        &frame,
        &x,
        &xt,
        |t| unit.label(t, step),
        &format!("TTFT ({})", unit.name()),
    );
    let yt = [0.0, 0.25, 0.5, 0.75, 1.0];
    svg::y_axis(
        out,
        &frame,
        &y,
        &yt,
        |t| format!("{:.0}%", t * 100.0),
        "requests at or below",
    );
    if ttft.is_empty() {
        svg::empty_note(out, &frame, "no successful requests");
    } else {
        let _ = write!(
            out,
            "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            svg::cdf_path(&ttft, &x, &y),
            palette::BLUE
        );
        for (q, name) in [(0.5, "p50"), (0.95, "p95")] {
            let v = percentile(&ttft, q);
            let px = num(x.map(v));
            // A label near the right edge goes left of its line, so the frame never clips it.
            let right = x.map(v) > x.map(x.d0 + 0.75 * (x.d1 - x.d0));
            let anchor = if right {
                "dx=\"-3\" text-anchor=\"end\""
            } else {
                "dx=\"3\""
            };
            let _ = write!(
                out,
                "<line x1=\"{px}\" x2=\"{px}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" \
                 stroke-dasharray=\"4 3\"><title>{name} {}</title></line>\
                 <text x=\"{px}\" y=\"{}\" {anchor}>{name} {}</text>",
                num(y.map(0.0)),
                num(y.map(1.0)),
                palette::VERMILLION,
                duration(v),
                num(y.map(q) + 12.0),
                duration(v)
            );
        }
    }
    out.push_str("</svg>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">{} successful requests; failed requests give no TTFT.</p>",
        ttft.len()
    );
}

fn itl_histogram(out: &mut String, view: &BurstView) {
    let (mut values, what): (Vec<f64>, &str) = match &view.itl_gaps {
        Some(gaps) => (gaps.clone(), "every gap between consecutive tokens"),
        None => (
            view.metrics
                .iter()
                .filter(|r| r.is_success())
                .filter_map(|r| r.itl_mean)
                .collect(),
            "each request's mean gap (result files keep the mean per request, not every gap)",
        ),
    };
    values.retain(|v| v.is_finite() && *v >= 0.0);
    values.sort_unstable_by(f64::total_cmp);
    let frame = Frame::new(720.0, 260.0);
    frame.open(
        out,
        "itl-hist",
        &format!(" data-samples=\"{}\"", values.len()),
        "histogram of inter-token latency",
    );
    if values.is_empty() {
        let x = Scale::new((0.0, 1.0), frame.x_range());
        svg::x_axis(out, &frame, &x, &[], |_| String::new(), "ITL");
        svg::empty_note(out, &frame, "no inter-token gaps");
        out.push_str("</svg>\n");
        return;
    }
    // A stall far beyond the rest would squeeze every other bar into one: above 3× the
    // 99.5th percentile, values go to an overflow bar at the right end.
    let max = *values.last().unwrap_or(&0.0);
    let p995 = percentile(&values, 0.995);
    let cap = if max > 3.0 * p995 && p995 > 0.0 {
        p995
    } else {
        max
    };
    let ((d0, d1), xt) = svg::nice_domain(0.0, cap, 8);
    let width = svg::nice_step(d1 - d0, 30);
    let bins = (((d1 - d0) / width).round() as usize).max(1);
    let mut counts = vec![0u64; bins];
    let mut overflow = 0u64;
    for v in &values {
        if *v > d1 {
            overflow += 1;
        } else {
            let i = (((v - d0) / width) as usize).min(bins - 1);
            counts[i] += 1;
        }
    }
    let highest = counts.iter().copied().max().unwrap_or(0).max(overflow);
    let ((_, c1), yt) = svg::nice_domain(0.0, highest as f64, 5);
    let yt: Vec<f64> = yt.into_iter().filter(|t| t.fract() == 0.0).collect();
    let mut x_frame = frame;
    if overflow > 0 {
        x_frame.right += 40.0;
    }
    let x = Scale::new((d0, d1), x_frame.x_range());
    let y = Scale::new((0.0, c1), frame.y_range());
    let unit = TimeUnit::for_max(d1);
    let step = xt.get(1).copied().unwrap_or(1.0) - xt[0];
    svg::x_axis(
        out,
        &x_frame,
        &x,
        &xt,
        |t| unit.label(t, step),
        &format!("inter-token latency ({})", unit.name()),
    );
    svg::y_axis(out, &frame, &y, &yt, |t| format!("{t:.0}"), "count");
    for (i, n) in counts.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let lo = d0 + i as f64 * width;
        let (x0, x1) = (x.map(lo), x.map(lo + width));
        let top = y.map(*n as f64);
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">\
             <title>{}–{}: {n}</title></rect>",
            num(x0 + 0.5),
            num(top),
            num((x1 - x0 - 1.0).max(0.6)),
            num(y.map(0.0) - top),
            palette::BLUE,
            duration(lo),
            duration(lo + width)
        );
    }
    if overflow > 0 {
        let (x0, _) = (frame.width - frame.right - 34.0, 0.0);
        let top = y.map(overflow as f64);
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"28\" height=\"{}\" fill=\"{}\">\
             <title>above {}: {overflow}</title></rect>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">&gt;{}</text>",
            num(x0),
            num(top),
            num(y.map(0.0) - top),
            palette::VERMILLION,
            duration(d1),
            num(x0 + 14.0),
            num(y.map(0.0) + 14.0),
            unit.label(d1, step)
        );
    }
    out.push_str("</svg>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">{} samples: {what}.{}</p>",
        values.len(),
        if overflow > 0 {
            format!(
                " {overflow} above {} are counted in the bar at the right.",
                duration(d1)
            )
        } else {
            String::new()
        }
    );
}

fn tokens_per_second(out: &mut String, view: &BurstView) {
    let points: Vec<(f64, f64)> = view
        .metrics
        .iter()
        .filter(|r| r.is_success())
        .filter_map(|r| Some((r.start_offset, r.tokens_per_second?)))
        .filter(|(t, v)| t.is_finite() && v.is_finite() && *v >= 0.0)
        .collect();
    let frame = Frame::new(720.0, 260.0);
    frame.open(
        out,
        "tokens-per-second",
        &format!(" data-points=\"{}\"", points.len()),
        "tokens per second of each successful request by its start",
    );
    let max_t = points.iter().map(|p| p.0).fold(0.0, f64::max);
    let max_v = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let ((x0, x1), xt) = svg::nice_domain(0.0, max_t, 8);
    let ((y0, y1), yt) = svg::nice_domain(0.0, max_v, 5);
    let x = Scale::new((x0, x1), frame.x_range());
    let y = Scale::new((y0, y1), frame.y_range());
    let unit = TimeUnit::for_max(x1);
    let step = xt.get(1).copied().unwrap_or(1.0) - xt[0];
    let ystep = yt.get(1).copied().unwrap_or(1.0) - yt[0];
    svg::x_axis(
        out,
        &frame,
        &x,
        &xt,
        |t| unit.label(t, step),
        &format!("request start from burst start ({})", unit.name()),
    );
    svg::y_axis(out, &frame, &y, &yt, |t| svg::plain(t, ystep), "tokens/s");
    if points.is_empty() {
        svg::empty_note(out, &frame, "no successful requests");
    }
    // One dot per drawn position: on a huge burst, dots that would cover each other exactly
    // are drawn once, so the file stays small (only the shade of a crowded spot changes).
    let mut drawn = std::collections::HashSet::new();
    for (t, v) in &points {
        let (cx, cy) = (num(x.map(*t)), num(y.map(*v)));
        if drawn.insert((cx.clone(), cy.clone())) {
            let _ = write!(
                out,
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2.5\" fill=\"{}\" fill-opacity=\"0.7\"/>",
                palette::BLUE
            );
        }
    }
    out.push_str("</svg>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">Output tokens ÷ duration, one dot per successful request{}.</p>",
        if drawn.len() < points.len() {
            " (requests at the same spot share a dot)"
        } else {
            ""
        }
    );
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::html::assert_no_external_reference;

    /// A request of a hand-built burst: `(id, start, outcome, ttft, duration)`, reused
    /// connections, phases that add up.
    fn request(id: u64, start: f64, outcome: &str, ttft: Option<f64>, total: f64) -> RequestView {
        let headers = ttft.map_or(total, |t| t * 0.6);
        RequestView {
            request_id: id,
            outcome: Some(outcome.into()),
            status: Some(if outcome == "http_429" { 429 } else { 200 }),
            error: (outcome != "success")
                .then(|| serde_json::Value::String(format!("{outcome}: <upstream> said no"))),
            start_offset: start,
            client_wait: if id > 2 { 0.05 } else { 0.0 },
            time_to_headers: Some(headers),
            ttft,
            total_time: total,
            tokens_per_second: ttft.map(|_| 40.0 / total),
            itl_mean: ttft.map(|_| 0.02 + id as f64 * 0.001),
            connection: Some(if id == 1 { "new" } else { "reused" }.into()),
            phases: Some(PhasesView {
                connect: (id == 1).then_some(0.004),
                tls: (id == 1).then_some(0.011),
                headers: Some(headers),
                first_token: ttft.map(|t| t - headers),
                generation: ttft.map(|t| total - t),
                ..PhasesView::default()
            }),
        }
    }

    fn view(metrics: Vec<RequestView>) -> BurstView {
        BurstView {
            target: Some("gpt-4o-mini".into()),
            burst_id: Some("0123456789ab".into()),
            interrupted: false,
            config: ConfigView {
                url: Some("https://api.example.com/v1/chat/completions".into()),
                protocol: Some("openai".into()),
                concurrency: Some(2),
                total_requests: Some(metrics.len() as u64),
                rate: None,
                timestamp: Some("2026-11-27T10:15:00Z".into()),
            },
            summary: SummaryView {
                success_count: Some(3),
                failed_count: Some(2),
                total_time: Some(2.5),
                throughput_rps: Some(2.0),
                outcomes: [("success".into(), 3), ("http_429".into(), 1)]
                    .into_iter()
                    .chain([("timeout_first_token".into(), 1)])
                    .collect(),
                ttft: Some(StatsView {
                    count: 3,
                    p50: Some(0.25),
                    p90: Some(0.4),
                    p95: Some(0.42),
                    p99: Some(0.44),
                    max: Some(0.45),
                }),
                tokens_per_second: Some(StatsView {
                    count: 3,
                    p50: Some(31.2),
                    ..StatsView::default()
                }),
                ..SummaryView::default()
            },
            metrics,
            verdict: None,
            itl_gaps: None,
        }
    }

    fn mixed() -> BurstView {
        view(vec![
            request(1, 0.0, "success", Some(0.25), 1.2),
            request(2, 0.0, "success", Some(0.45), 1.4),
            request(3, 1.2, "http_429", None, 0.08),
            request(4, 1.28, "timeout_first_token", None, 1.0),
            request(5, 1.4, "success", Some(0.2), 1.1),
        ])
    }

    #[test]
    fn page_of_a_mixed_burst() {
        let html = render_page(&mixed(), &[("/", "status")]);
        assert_no_external_reference(&html);
        insta::assert_snapshot!(html);
    }

    fn count(html: &str, needle: &str) -> usize {
        html.matches(needle).count()
    }

    fn attr(html: &str, plot: &str, name: &str) -> usize {
        let at = html
            .find(&format!("data-plot=\"{plot}\""))
            .unwrap_or_else(|| panic!("no {plot}"));
        let rest = &html[at..];
        let key = format!("{name}=\"");
        let i = rest.find(&key).unwrap() + key.len();
        rest[i..i + rest[i..].find('"').unwrap()].parse().unwrap()
    }

    #[test]
    fn every_plot_is_there_with_the_dom_contract() {
        let html = render_body(&mixed());
        for kind in ["waterfall", "ttft-cdf", "itl-hist", "tokens-per-second"] {
            assert_eq!(
                count(&html, &format!("<svg class=\"plot\" data-plot=\"{kind}\"")),
                1,
                "{kind}"
            );
        }
        assert_eq!(attr(&html, "waterfall", "data-requests"), 5);
        assert_eq!(attr(&html, "waterfall", "data-rows"), 5);
        assert_eq!(count(&html, "<g class=\"wf-row\">"), 5);
        // Failures: hatched, marked, and their outcome and error in the hover text.
        assert_eq!(count(&html, "fill=\"url(#wf-hatch)\""), 2);
        assert!(html.contains("#3 http_429 (HTTP 429)"));
        assert!(html.contains("error: http_429: &lt;upstream&gt; said no"));
        assert_eq!(attr(&html, "tokens-per-second", "data-points"), 3);
    }

    #[test]
    fn a_thousand_requests_thin_out_and_stay_small() {
        let metrics: Vec<RequestView> = (1..=1000u64)
            .map(|i| {
                let start = (i / 10) as f64 * 0.9;
                let outcome = match i % 97 {
                    0 => "http_429",
                    13 => "timeout_idle",
                    _ => "success",
                };
                let ttft = (outcome == "success").then_some(0.2 + (i % 37) as f64 * 0.01);
                let mut r = request(i, start, outcome, ttft, 0.9 + (i % 11) as f64 * 0.05);
                // Long provider error texts are cut in the hover text.
                if outcome != "success" {
                    r.error = Some(serde_json::Value::String("x".repeat(5000)));
                }
                r
            })
            .collect();
        let mut v = view(metrics);
        v.itl_gaps = Some(
            (0..50_000)
                .map(|i| 0.015 + (i % 100) as f64 * 1e-4)
                .collect(),
        );
        let html = render_page(&v, &[]);
        assert!(html.len() < 2_000_000, "{} bytes", html.len());
        assert_eq!(attr(&html, "waterfall", "data-requests"), 1000);
        let rows = attr(&html, "waterfall", "data-rows");
        assert_eq!(rows, 200);
        assert_eq!(count(&html, "<g class=\"wf-row\">"), rows);
        assert!(html.contains("each row is a group of 5 consecutive requests"));
        // Every group holding a failure shows it: 21 failures, at least 13 requests apart.
        assert_eq!(count(&html, "fill=\"url(#wf-hatch)\""), 21);
        assert!(html.contains("5 requests (#"));
        assert!(!html.contains(&"x".repeat(MAX_ERROR_CHARS + 1)));
        assert_no_external_reference(&html);
    }

    #[test]
    fn stages_fall_back_to_headers_and_ttft_without_phases() {
        let r = RequestView {
            time_to_headers: Some(0.1),
            ttft: Some(0.3),
            total_time: 1.0,
            client_wait: 0.2,
            ..RequestView::default()
        };
        let s = r.stages();
        assert_eq!(s[0], 0.2);
        assert_eq!(s[1], 0.0);
        assert!((s[2] - 0.1).abs() < 1e-12 && (s[3] - 0.2).abs() < 1e-12);
        assert!((s[4] - 0.7).abs() < 1e-12);
        let nothing = RequestView {
            total_time: 2.0,
            ..RequestView::default()
        };
        assert_eq!(nothing.stages(), [0.0, 0.0, 2.0, 0.0, 0.0]);
    }

    #[test]
    fn old_script_files_render() {
        let old = br#"{"config": {"url": "http://127.0.0.1:8000/v1/chat/completions"},
            "summary": {"success_count": 1, "failed_count": 1},
            "metrics": [
              {"request_id": 1, "ttft": 0.21, "total_time": 2.5, "total_tokens": 40,
               "tokens_per_second": 16.0, "error": null},
              {"request_id": 2, "ttft": null, "total_time": 30.0, "error": "TimeoutError"}]}"#;
        let v = BurstView::from_json(old).unwrap();
        assert_eq!(v.metrics[1].outcome(), "error");
        let html = render_body(&v);
        assert_eq!(count(&html, "<g class=\"wf-row\">"), 2);
        assert!(html.contains("#2 error"));
        assert!(html.contains("error: TimeoutError"));
    }

    #[test]
    fn a_daemon_files_verdict_is_shown_in_words() {
        let file = br#"{"schema_version": 2, "target": "t", "metrics": [],
            "verdict": {"statistic": "p90", "at": "2026-11-27T10:15:00Z",
                        "ttft": {"verdict": "regressed", "baseline": 0.3, "recent": 0.45,
                                 "change": 0.5, "ci": [0.3, 0.7], "p_value": 0.001,
                                 "n_baseline": 900, "n_recent": 60},
                        "tpot": {"verdict": "no_change", "n_baseline": 900, "n_recent": 60}}}"#;
        let html = render_body(&BurstView::from_json(file).unwrap());
        let ttft = "<tr><th>verdict, TTFT p90</th><td><span class=\"v v-regressed\">▲ regressed\
                    </span> recent 450.0 ms (n = 60) against baseline 300.0 ms (n = 900), change \
                    +50.0% (CI [+30.0%, +70.0%])</td></tr>";
        assert!(html.contains(ttft), "{html}");
        assert!(html.contains("<th>verdict, TPOT p90</th><td><span class=\"v v-no_change\">"));
    }

    #[test]
    fn empty_bursts_still_draw_every_plot() {
        let html = render_body(&view(vec![]));
        for kind in ["waterfall", "ttft-cdf", "itl-hist", "tokens-per-second"] {
            assert!(html.contains(&format!("data-plot=\"{kind}\"")), "{kind}");
        }
        assert_eq!(attr(&html, "waterfall", "data-rows"), 0);
    }
}
