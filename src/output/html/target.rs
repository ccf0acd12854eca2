//! A target over time (the daemon's `/targets/{name}` page): TTFT p50 and p95 of every retained
//! burst against its start time, the baseline band (the baseline window's TTFT p50 to p95) and
//! the daemon's current verdict when it has one, then the bursts, newest first, each linked to
//! its burst page and its result file.
//!
//! Does not: read result files or the status board; the handler gathers a [`TargetPage`].

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::svg::{self, Frame, Scale, TimeUnit, duration, num};
use super::{Escaped, Nav, page, palette, verdict_badge};

/// Everything the page shows about one target.
#[derive(Debug, Clone, Default)]
pub struct TargetPage {
    pub name: String,
    pub protocol: String,
    /// scheme://host/path, never a query or a secret.
    pub endpoint: String,
    pub model: Option<String>,
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    pub running: bool,
    /// Retained bursts, oldest first.
    pub bursts: Vec<TrendPoint>,
    pub verdict: Option<VerdictView>,
}

/// One retained burst.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    pub burst_id: String,
    pub started_at: DateTime<Utc>,
    pub ttft_p50: Option<f64>,
    pub ttft_p95: Option<f64>,
    pub requests: u64,
    pub failed: u64,
    pub interrupted: bool,
    /// The daemon's TTFT verdict after this burst, as its file recorded it.
    pub verdict: Option<String>,
    /// The result file's name under the target's directory.
    pub file: String,
}

/// The daemon's verdict for the target's TTFT (DESIGN §10).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerdictView {
    /// `regressed`, `improved`, `no_change`, `inconclusive`, `insufficient_data`.
    pub verdict: String,
    /// The statistic judged, e.g. `p90`.
    pub statistic: String,
    pub baseline: Option<f64>,
    pub recent: Option<f64>,
    /// recent ÷ baseline − 1 and its interval at `confidence`.
    pub change: Option<f64>,
    pub interval: Option<(f64, f64)>,
    pub confidence: f64,
    pub n_baseline: u64,
    pub n_recent: u64,
    /// The band drawn behind the trend: the baseline window's TTFT p50 and p95.
    pub baseline_p50: Option<f64>,
    pub baseline_p95: Option<f64>,
}

/// The page; `nav` links back to the status page.
pub fn render_page(t: &TargetPage, nav: Nav<'_>) -> String {
    page(&t.name, nav, Some(30), &render_body(t))
}

fn render_body(t: &TargetPage) -> String {
    let mut out = String::with_capacity(16 * 1024 + 300 * t.bursts.len());
    let _ = write!(
        out,
        "<table class=\"summary\"><tr><th>protocol</th><td>{}</td></tr>\
         <tr><th>endpoint</th><td><code>{}</code></td></tr>",
        Escaped(&t.protocol),
        Escaped(&t.endpoint)
    );
    if let Some(m) = &t.model {
        let _ = write!(out, "<tr><th>model</th><td>{}</td></tr>", Escaped(m));
    }
    let _ = write!(
        out,
        "<tr><th>schedule</th><td>{}{}</td></tr><tr><th>next run</th><td>{}</td></tr>",
        Escaped(&t.schedule),
        if t.running { " (running now)" } else { "" },
        t.next_run.map_or_else(
            || "—".into(),
            |n| n.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        )
    );
    out.push_str("<tr><th>verdict (TTFT)</th><td>");
    match &t.verdict {
        None => out.push_str("none yet: the daemon has not judged this target"),
        Some(v) => verdict_line(&mut out, v),
    }
    out.push_str("</td></tr></table>\n");

    out.push_str("<h2>TTFT per burst</h2>\n");
    trend(&mut out, t);

    out.push_str("<h2>Bursts</h2>\n");
    if t.bursts.is_empty() {
        out.push_str("<p>No retained bursts yet.</p>\n");
        return out;
    }
    out.push_str(
        "<table class=\"bursts\"><tr><th>started</th><th>burst</th><th class=\"n\">requests</th>\
         <th class=\"n\">failed</th><th class=\"n\">TTFT p50</th><th class=\"n\">TTFT p95</th>\
         <th>verdict after it</th><th>result file</th></tr>",
    );
    for b in t.bursts.iter().rev() {
        let cell = |v: Option<f64>| v.map_or_else(|| "—".into(), duration);
        let _ = write!(
            out,
            "<tr><td>{}</td><td><a href=\"/targets/{}/bursts/{}\">{}</a>{}</td>\
             <td class=\"n\">{}</td><td class=\"n{}\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td><a href=\"/api/v1/results/{}/{}\">JSON</a></td></tr>",
            b.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            Escaped(&t.name),
            Escaped(&b.burst_id),
            Escaped(&b.burst_id),
            if b.interrupted { " (interrupted)" } else { "" },
            b.requests,
            if b.failed > 0 { " bad" } else { "" },
            b.failed,
            cell(b.ttft_p50),
            cell(b.ttft_p95),
            b.verdict
                .as_deref()
                .map_or_else(|| "—".into(), verdict_badge),
            Escaped(&t.name),
            Escaped(&b.file)
        );
    }
    out.push_str("</table>\n");
    out
}

fn verdict_line(out: &mut String, v: &VerdictView) {
    out.push_str(&verdict_badge(&v.verdict));
    let value = |x: Option<f64>| x.map_or_else(|| "—".into(), duration);
    let _ = write!(
        out,
        " TTFT {}: recent {} (n = {}) against baseline {} (n = {})",
        Escaped(&v.statistic),
        value(v.recent),
        v.n_recent,
        value(v.baseline),
        v.n_baseline
    );
    if let Some(c) = v.change.filter(|c| c.is_finite()) {
        let _ = write!(out, ", change {:+.1}%", c * 100.0);
        if let Some((lo, hi)) = v.interval {
            let _ = write!(
                out,
                " ({:.0}% CI [{:+.1}%, {:+.1}%])",
                v.confidence * 100.0,
                lo * 100.0,
                hi * 100.0
            );
        }
    }
}

/// Tick steps for a time axis, in seconds: the first that gives at most 7 ticks wins.
const TIME_STEPS: [i64; 20] = [
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
    2 * 86_400,
    7 * 86_400,
    30 * 86_400,
];

fn trend(out: &mut String, t: &TargetPage) {
    let points = &t.bursts;
    let mut frame = Frame::new(1000.0, 320.0);
    frame.right = 40.0;
    frame.open(
        out,
        "trend",
        &format!(" data-points=\"{}\"", points.len()),
        &format!("TTFT p50 and p95 of {} bursts over time", points.len()),
    );
    let band = t
        .verdict
        .as_ref()
        .and_then(|v| Some((v.baseline_p50?, v.baseline_p95?)));
    let max_y = points
        .iter()
        .filter_map(|p| p.ttft_p95.or(p.ttft_p50))
        .chain(band.map(|b| b.1))
        .fold(0.0, f64::max);
    let ((y0, y1), yt) = svg::nice_domain(0.0, if max_y > 0.0 { max_y } else { 1.0 }, 5);
    let y = Scale::new((y0, y1), frame.y_range());
    let unit = TimeUnit::for_max(y1);
    let ystep = yt.get(1).copied().unwrap_or(1.0) - yt[0];
    let secs = |p: &TrendPoint| p.started_at.timestamp() as f64;
    let (t0, t1) = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (secs(a), secs(b)),
        _ => (0.0, 0.0),
    };
    // One burst alone sits in the middle of a minute.
    let (t0, t1) = if t1 > t0 {
        (t0, t1)
    } else {
        (t0 - 30.0, t0 + 30.0)
    };
    let x = Scale::new((t0, t1), frame.x_range());
    let step = TIME_STEPS
        .into_iter()
        .find(|s| (t1 - t0) / *s as f64 <= 7.0)
        .unwrap_or(30 * 86_400) as f64;
    let ticks: Vec<f64> = if points.is_empty() {
        Vec::new()
    } else {
        let first = (t0 / step).ceil() * step;
        (0..)
            .map(|i| first + i as f64 * step)
            .take_while(|v| *v <= t1)
            .collect()
    };
    let long = t1 - t0 > 86_400.0;
    svg::x_axis(
        out,
        &frame,
        &x,
        &ticks,
        |v| {
            DateTime::<Utc>::from_timestamp(v as i64, 0).map_or_else(String::new, |d| {
                d.format(if long { "%m-%d %H:%M" } else { "%H:%M:%S" })
                    .to_string()
            })
        },
        "burst start (UTC)",
    );
    svg::y_axis(
        out,
        &frame,
        &y,
        &yt,
        |v| unit.label(v, ystep),
        &format!("TTFT ({})", unit.name()),
    );
    if let Some((p50, p95)) = band {
        let (x0, x1) = frame.x_range();
        let (top, bottom) = (y.map(p95), y.map(p50));
        let _ = write!(
            out,
            "<rect class=\"baseline-band\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" \
             fill=\"{}\" fill-opacity=\"0.25\"><title>baseline: TTFT p50 {} to p95 {}</title>\
             </rect><text x=\"{}\" y=\"{}\" dy=\"-3\" text-anchor=\"end\">baseline p50–p95</text>",
            num(x0),
            num(top),
            num(x1 - x0),
            num((bottom - top).max(1.0)),
            palette::SKY_BLUE,
            duration(p50),
            duration(p95),
            num(x1 - 4.0),
            num(top)
        );
    }
    if points.is_empty() {
        svg::empty_note(out, &frame, "no retained bursts yet");
    }
    // p95 dashed orange with triangles, p50 solid blue with circles: shape and dash tell them
    // apart without colour.
    for (pick, colour, dash, name) in [
        (
            (|p: &TrendPoint| p.ttft_p95) as fn(&TrendPoint) -> Option<f64>,
            palette::ORANGE,
            " stroke-dasharray=\"6 3\"",
            "p95",
        ),
        (|p: &TrendPoint| p.ttft_p50, palette::BLUE, "", "p50"),
    ] {
        let mut d = String::new();
        for p in points {
            if let Some(v) = pick(p) {
                let _ = write!(
                    d,
                    "{}{} {}",
                    if d.is_empty() { "M" } else { "L" },
                    num(x.map(secs(p))),
                    num(y.map(v))
                );
            }
        }
        if !d.is_empty() {
            let _ = write!(
                out,
                "<path class=\"{name}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" \
                 stroke-width=\"1.5\"{dash}/>"
            );
        }
        for p in points {
            let Some(v) = pick(p) else { continue };
            let (cx, cy) = (x.map(secs(p)), y.map(v));
            let title = format!(
                "{} burst {}: TTFT {name} {}, {} requests, {} failed",
                p.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                p.burst_id,
                duration(v),
                p.requests,
                p.failed
            );
            let shape = if name == "p95" {
                format!(
                    "<path d=\"M{} {}l3.5 6h-7z\" fill=\"{colour}\"/>",
                    num(cx),
                    num(cy - 3.5)
                )
            } else {
                format!(
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{colour}\"/>",
                    num(cx),
                    num(cy)
                )
            };
            let _ = write!(
                out,
                "<g class=\"point\"><title>{}</title>{shape}</g>",
                Escaped(&title)
            );
        }
    }
    // Bursts without a TTFT (every request failed): a cross on the axis.
    for p in points.iter().filter(|p| p.ttft_p50.is_none()) {
        let (cx, cy) = (x.map(secs(p)), y.map(0.0) - 5.0);
        let _ = write!(
            out,
            "<g class=\"point\"><title>{} burst {}: no successful request ({} failed)</title>\
             <path d=\"M{} {}l8 8m0 -8l-8 8\" stroke=\"{}\" stroke-width=\"2\"/></g>",
            p.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            Escaped(&p.burst_id),
            p.failed,
            num(cx - 4.0),
            num(cy - 4.0),
            palette::VERMILLION
        );
    }
    out.push_str("</svg>\n");
    svg::legend(
        out,
        &[
            (
                &format!("background:{}", palette::BLUE),
                "TTFT p50 (●, solid)",
            ),
            (
                &format!("background:{}", palette::ORANGE),
                "TTFT p95 (▲, dashed)",
            ),
            (
                &format!("background:{};opacity:.4", palette::SKY_BLUE),
                "baseline band: the baseline window's TTFT p50 to p95",
            ),
            (
                &format!("background:{}", palette::VERMILLION),
                "✕ burst without a successful request",
            ),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::html::assert_no_external_reference;

    fn point(minutes: i64, p50: Option<f64>, failed: u64) -> TrendPoint {
        let t0: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
        TrendPoint {
            burst_id: format!("b{minutes:02}"),
            started_at: t0 + chrono::Duration::minutes(minutes),
            ttft_p50: p50,
            ttft_p95: p50.map(|p| p * 1.6),
            requests: 10,
            failed,
            interrupted: false,
            verdict: (minutes >= 20).then(|| "regressed".to_owned()),
            file: format!("20261127T10{minutes:02}00Z-b{minutes:02}.json"),
        }
    }

    fn page_data() -> TargetPage {
        TargetPage {
            name: "gpt-4o-mini".into(),
            protocol: "openai".into(),
            endpoint: "https://api.openai.com/v1/chat/completions".into(),
            model: Some("gpt-4o-mini".into()),
            schedule: "every 5m".into(),
            next_run: Some("2026-11-27T10:35:00Z".parse().unwrap()),
            running: false,
            bursts: vec![
                point(0, Some(0.21), 0),
                point(5, Some(0.24), 0),
                point(10, None, 10),
                point(15, Some(0.2), 1),
                point(20, Some(0.34), 0),
                point(25, Some(0.36), 0),
            ],
            verdict: Some(VerdictView {
                verdict: "regressed".into(),
                statistic: "p90".into(),
                baseline: Some(0.3),
                recent: Some(0.52),
                change: Some(0.7333),
                interval: Some((0.41, 1.02)),
                confidence: 0.95,
                n_baseline: 1200,
                n_recent: 60,
                baseline_p50: Some(0.21),
                baseline_p95: Some(0.33),
            }),
        }
    }

    #[test]
    fn target_page_with_a_verdict() {
        let html = render_page(&page_data(), &[("/", "status")]);
        assert_no_external_reference(&html);
        insta::assert_snapshot!(html);
    }

    #[test]
    fn trend_counts_its_bursts_and_links_each() {
        let html = render_page(&page_data(), &[]);
        assert!(html.contains("data-plot=\"trend\" data-points=\"6\""));
        assert_eq!(
            html.matches("href=\"/targets/gpt-4o-mini/bursts/").count(),
            6
        );
        assert!(html.contains("class=\"baseline-band\""));
        assert!(html.contains("<span class=\"v v-regressed\">▲ regressed</span>"));
        let bare = TargetPage {
            verdict: None,
            bursts: vec![],
            ..page_data()
        };
        let html = render_page(&bare, &[]);
        assert!(html.contains("data-plot=\"trend\" data-points=\"0\""));
        assert!(html.contains("none yet"));
        assert!(!html.contains("baseline-band"));
    }
}
