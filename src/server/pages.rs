//! The daemon's HTML pages as pure rendering: each page is a function from plain data (what
//! the status board holds, what a result file says) to a `String`, snapshot-tested with
//! hand-built input. The status page is drawn here; the target and burst pages hand their data
//! to the pictures' renderers (`output::html`), whose page shell and [`Escaped`] every page
//! shares, so no value reaches a page unescaped. Server-rendered HTML, no scripts.
//!
//! Does not: read the status board, the clock or files, or know about HTTP; the handlers in
//! `mod.rs` gather the data and wrap the string in a response.

use std::fmt::Write as _;

use crate::output::html::burst::{self, BurstView};
use crate::output::html::target::{self, TargetPage, TrendPoint, VerdictView};
use crate::output::html::{self, Escaped};
use crate::status::{TargetStatus, TargetVerdict};

/// The status page (`GET /`): one row per target with its schedule, last burst, the TTFT
/// trend of its recent bursts, its TTFT verdict, and links to their result files.
pub fn status_page(targets: &[TargetStatus]) -> String {
    let mut body = String::with_capacity(8 * 1024);
    if targets.is_empty() {
        body.push_str("<p>No targets configured.</p>\n");
    } else {
        body.push_str(concat!(
            "<table><tr><th>target</th><th>protocol</th><th>endpoint</th><th>schedule</th>",
            "<th>next run</th><th>last burst</th><th>success</th><th>TTFT p50</th>",
            "<th>TTFT p95</th><th>TTFT p50, recent bursts</th><th>TTFT verdict</th>",
            "<th>results</th></tr>\n"
        ));
    }
    for t in targets {
        target_row(&mut body, t);
    }
    if !targets.is_empty() {
        body.push_str("</table>\n");
    }
    document("streamprobe", Some(15), &body)
}

fn target_row(html: &mut String, t: &TargetStatus) {
    let last = t.recent.back();
    let _ = write!(
        html,
        "<tr><td><b><a href=\"/targets/{name}\">{name}</a></b>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>",
        if t.running {
            format!(" <small>(running, {} in flight)</small>", t.in_flight)
        } else {
            String::new()
        },
        Escaped(&t.protocol),
        Escaped(&t.endpoint),
        Escaped(&t.schedule),
        t.next_run
            .map_or_else(|| "—".into(), |n| n.format("%H:%M:%S UTC").to_string()),
        last.map_or_else(
            || "—".into(),
            |b| b.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        ),
        name = Escaped(&t.name),
    );
    match last {
        Some(b) => {
            let class = if b.failed_count == 0 { "ok" } else { "bad" };
            let _ = write!(
                html,
                "<td class=\"{class}\">{:.0}% ({}/{})</td><td>{}</td><td>{}</td>",
                b.success_ratio * 100.0,
                b.success_count,
                b.total,
                seconds(b.ttft_p50),
                seconds(b.ttft_p95),
            );
        }
        None => html.push_str("<td>—</td><td>—</td><td>—</td>"),
    }
    let points: Vec<f64> = t.recent.iter().filter_map(|b| b.ttft_p50).collect();
    let _ = write!(
        html,
        "<td>{}</td>{}<td class=\"nw\">",
        sparkline(&points),
        verdict_cell(t.verdict.as_ref())
    );
    for b in t.recent.iter().rev().take(5) {
        if let Some(file) = &b.file {
            let _ = write!(
                html,
                "<a href=\"/targets/{name}/bursts/{id}\">{id}</a> \
                 <small>(<a href=\"/api/v1/results/{name}/{}\">json</a>)</small><br>",
                Escaped(file),
                name = Escaped(&t.name),
                id = Escaped(&b.burst_id)
            );
        }
    }
    html.push_str("</td></tr>\n");
}

/// The TTFT verdict: the verdict, then the statistic's change with its interval and the
/// samples behind each window, e.g. `regressed` / `p90 +48.2% [+41.0%, +55.9%], n 1024/600`.
fn verdict_cell(v: Option<&TargetVerdict>) -> String {
    let Some(v) = v else {
        return "<td>—</td>".into();
    };
    let class = match v.verdict.as_str() {
        "regressed" => " class=\"bad\"",
        "improved" | "no_change" => " class=\"ok\"",
        _ => "",
    };
    let pct = |x: f64| format!("{:+.1}%", x * 100.0);
    let change = match (v.change, v.ci) {
        (Some(c), Some([lo, hi])) => format!("{} [{}, {}]", pct(c), pct(lo), pct(hi)),
        (Some(c), None) => pct(c),
        _ => "—".into(),
    };
    format!(
        "<td{class}>{}<br><small>{} {change}, n {}/{}</small></td>",
        Escaped(&v.verdict.replace('_', " ")),
        Escaped(&v.statistic),
        v.n_baseline,
        v.n_recent
    )
}

/// The frame every page of the daemon shares: the pictures' page shell, with links to the
/// machine-readable endpoints.
fn document(title: &str, refresh_seconds: Option<u32>, body: &str) -> String {
    html::page(
        title,
        &[
            ("/", "status"),
            ("/metrics", "metrics"),
            ("/api/v1/targets", "api/v1/targets"),
        ],
        refresh_seconds,
        body,
    )
}

/// `GET /targets/{name}`: the target's settings, verdict and TTFT trend over `bursts` (its
/// retained result files, oldest first).
pub fn target_page(t: &TargetStatus, bursts: Vec<TrendPoint>) -> String {
    let page = TargetPage {
        name: t.name.clone(),
        protocol: t.protocol.clone(),
        endpoint: t.endpoint.clone(),
        model: t.model.clone(),
        schedule: t.schedule.clone(),
        next_run: t.next_run,
        running: t.running,
        bursts,
        verdict: t.verdict.as_ref().map(verdict_view),
    };
    target::render_page(&page, &[("/", "status"), ("/metrics", "metrics")])
}

/// The board's verdict as the target page draws it (the band is its baseline p50 to p95).
fn verdict_view(v: &TargetVerdict) -> VerdictView {
    VerdictView {
        verdict: v.verdict.clone(),
        statistic: v.statistic.clone(),
        baseline: v.baseline,
        recent: v.recent,
        change: v.change,
        interval: v.ci.map(|[lo, hi]| (lo, hi)),
        confidence: v.confidence,
        n_baseline: v.n_baseline,
        n_recent: v.n_recent,
        baseline_p50: v.baseline_p50,
        baseline_p95: v.baseline_p95,
    }
}

/// `GET /targets/{name}/bursts/{id}`: the burst's plots from its result file `file`.
pub fn burst_page(target: &str, file: &str, view: &BurstView) -> String {
    let target_href = format!("/targets/{target}");
    let json_href = format!("/api/v1/results/{target}/{file}");
    burst::render_page(
        view,
        &[
            ("/", "status"),
            (&target_href, target),
            (&json_href, "result file (JSON)"),
        ],
    )
}

/// A 404 page: `message` (escaped) and the way back.
pub fn not_found(message: &str) -> String {
    document("not found", None, &format!("<p>{}</p>\n", Escaped(message)))
}

/// Seconds with millisecond precision, `—` when there is no value.
fn seconds(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |s| format!("{:.3}s", s))
}

/// An inline SVG polyline of `points` (oldest first), scaled to its own range.
pub fn sparkline(points: &[f64]) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    if points.is_empty() {
        return "—".into();
    }
    let max = points.iter().copied().fold(f64::MIN, f64::max);
    let min = points.iter().copied().fold(f64::MAX, f64::min);
    let span = if max > min { max - min } else { 1.0 };
    let step = if points.len() > 1 {
        W / (points.len() - 1) as f64
    } else {
        0.0
    };
    let mut path = String::new();
    for (i, p) in points.iter().enumerate() {
        let x = i as f64 * step;
        let y = H - 2.0 - (p - min) / span * (H - 4.0);
        let _ = write!(path, "{}{:.1},{:.1}", if i == 0 { "" } else { " " }, x, y);
    }
    format!(
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"TTFT p50 of recent bursts, {min:.3}s to {max:.3}s\">\
         <polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"1.5\" points=\"{path}\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{BurstBrief, TargetVerdict};
    use chrono::{DateTime, Duration, Utc};

    fn target(name: &str) -> TargetStatus {
        TargetStatus {
            name: name.into(),
            protocol: "openai".into(),
            endpoint: "http://h/p".into(),
            model: None,
            schedule: "every 5m".into(),
            next_run: None,
            running: false,
            in_flight: 0,
            recent: Default::default(),
            verdict: None,
        }
    }

    /// A burst started `minutes` after 10:00; `file` says whether its result file was written.
    fn burst(
        id: &str,
        minutes: i64,
        ok: u64,
        failed: u64,
        p50: Option<f64>,
        file: bool,
    ) -> BurstBrief {
        let t0: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
        BurstBrief {
            burst_id: id.into(),
            started_at: t0 + Duration::minutes(minutes),
            duration_seconds: 3.2,
            total: ok + failed,
            success_count: ok,
            failed_count: failed,
            success_ratio: ok as f64 / (ok + failed) as f64,
            ttft_p50: p50,
            ttft_p95: p50.map(|p| p * 2.0),
            interrupted: false,
            file: file.then(|| format!("20261127T10{minutes:02}00Z-0123456789ab.json")),
        }
    }

    #[test]
    fn status_page_of_a_running_and_an_idle_target() {
        let t0: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
        let busy = TargetStatus {
            name: "gpt-4o-mini".into(),
            endpoint: "https://api.openai.com/v1/chat/completions".into(),
            model: Some("gpt-4o-mini".into()),
            schedule: "every 5m + up to 20s jitter".into(),
            next_run: Some(t0 + Duration::minutes(45)),
            running: true,
            in_flight: 3,
            recent: [
                burst("b1", 15, 10, 0, Some(0.25), true),
                burst("b2", 20, 10, 0, Some(0.5), false),
                burst("b3", 25, 0, 10, None, true),
                burst("b4", 30, 9, 1, Some(0.3), true),
            ]
            .into(),
            verdict: Some(TargetVerdict {
                metric: "ttft".into(),
                verdict: "regressed".into(),
                statistic: "p90".into(),
                baseline: Some(0.4),
                recent: Some(0.6),
                change: Some(0.5),
                ci: Some([0.41, 0.6]),
                confidence: 0.95,
                p_value: Some(0.0001),
                n_baseline: 1024,
                n_recent: 40,
                baseline_p50: Some(0.3),
                baseline_p95: Some(0.45),
                baseline_window_seconds: 604_800.0,
                recent_window_seconds: 3600.0,
                min_change: 0.05,
                at: t0 + Duration::minutes(30),
            }),
            ..target("")
        };
        let idle = TargetStatus {
            name: "ollama".into(),
            protocol: "ollama".into(),
            endpoint: "http://127.0.0.1:11434/api/chat".into(),
            schedule: "manual (trigger only)".into(),
            ..target("")
        };
        insta::assert_snapshot!(status_page(&[busy, idle]));
    }

    #[test]
    fn status_page_without_targets() {
        insta::assert_snapshot!(status_page(&[]));
    }

    #[test]
    fn status_page_escapes_names() {
        let page = status_page(&[target("a<b")]);
        assert!(page.contains("a&lt;b"));
        assert!(!page.contains("a<b"));
    }

    #[test]
    fn escaped_covers_markup_and_both_quotes() {
        assert_eq!(
            Escaped(r#"<a href="x" title='y'>&amp;</a>"#).to_string(),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(Escaped("plain — text").to_string(), "plain — text");
    }

    #[test]
    fn sparkline_scales_to_its_range() {
        let svg = sparkline(&[1.0, 2.0, 3.0]);
        assert!(
            svg.contains("points=\"0.0,22.0 60.0,12.0 120.0,2.0\""),
            "{svg}"
        );
        assert_eq!(sparkline(&[]), "—");
    }
}
