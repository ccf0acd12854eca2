//! The daemon's HTTP face (axum; the only axum user): `/metrics`, health and readiness, the
//! status page, the read-only `/api/v1`, and the admin API (reload, trigger) when enabled.
//!
//! Does not: call into the engine. A scrape never starts a request; admin actions are sent
//! to the daemon as `AdminCommand`s and answered through a oneshot channel.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::status::{StatusBoard, TargetStatus};

/// What the admin API asks of the daemon.
#[derive(Debug)]
pub enum AdminCommand {
    Reload(oneshot::Sender<Result<(), String>>),
    Trigger(String, oneshot::Sender<Result<(), TriggerError>>),
}

/// Why a manual trigger was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerError {
    UnknownTarget,
    ShuttingDown,
}

/// Everything the handlers read.
#[derive(Clone)]
pub struct ServerState {
    pub metrics: Arc<Metrics>,
    pub board: Arc<StatusBoard>,
    pub results_dir: PathBuf,
    pub admin: Option<mpsc::Sender<AdminCommand>>,
    /// Config loaded and scheduler running.
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/targets/{name}/bursts", get(bursts))
        .route("/api/v1/targets/{name}/trigger", post(trigger))
        .route("/api/v1/results/{target}/{file}", get(result_file))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(s): State<ServerState>) -> Response {
    let body = s.metrics.encode();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

async fn ready(State(s): State<ServerState>) -> Response {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "Ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Not ready\n").into_response()
    }
}

fn admin_disabled() -> Response {
    (
        StatusCode::FORBIDDEN,
        "admin API is disabled; set server.enable_admin_api: true to use it\n",
    )
        .into_response()
}

async fn reload(State(s): State<ServerState>) -> Response {
    let Some(admin) = &s.admin else {
        return admin_disabled();
    };
    let (tx, rx) = oneshot::channel();
    if admin.send(AdminCommand::Reload(tx)).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Ok(Err(message)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn trigger(State(s): State<ServerState>, Path(name): Path<String>) -> Response {
    let Some(admin) = &s.admin else {
        return admin_disabled();
    };
    let (tx, rx) = oneshot::channel();
    if admin
        .send(AdminCommand::Trigger(name.clone(), tx))
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => (StatusCode::ACCEPTED, "burst triggered\n").into_response(),
        Ok(Err(TriggerError::UnknownTarget)) => not_found(&name),
        Ok(Err(TriggerError::ShuttingDown)) | Err(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
        }
    }
}

fn not_found(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("no target named {}\n", name.escape_debug()),
    )
        .into_response()
}

async fn targets(State(s): State<ServerState>) -> Response {
    axum::Json(s.board.targets()).into_response()
}

async fn bursts(State(s): State<ServerState>, Path(name): Path<String>) -> Response {
    match s.board.target(&name) {
        Some(t) => axum::Json(t.recent).into_response(),
        None => not_found(&name),
    }
}

/// A result file of a configured target. Names are checked against a strict pattern before
/// any path is built, so `..`, separators and absolute paths never reach the filesystem.
async fn result_file(
    State(s): State<ServerState>,
    Path((target, file)): Path<(String, String)>,
) -> Response {
    if s.board.target(&target).is_none() || !is_result_file_name(&file) {
        return (StatusCode::NOT_FOUND, "no such result file\n").into_response();
    }
    let path = s.results_dir.join(&target).join(&file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such result file\n").into_response(),
    }
}

/// `20261127T101500Z-0123456789ab.json`: digits, `T`, `Z`, `-`, hex, `.json`.
pub fn is_result_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".json") else {
        return false;
    };
    !stem.is_empty()
        && stem.len() <= 64
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn status_page(State(s): State<ServerState>) -> Html<String> {
    Html(render_status_page(&s.board.targets()))
}

/// The status page: server-rendered HTML, no scripts, no build step.
pub fn render_status_page(targets: &[TargetStatus]) -> String {
    let mut html = String::with_capacity(8 * 1024);
    html.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>streamprobe</title>",
        "<meta http-equiv=\"refresh\" content=\"15\">",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}",
        "table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;",
        "text-align:left;vertical-align:middle}th{background:#f4f4f4}.bad{color:#b00}",
        ".ok{color:#070}code{font-size:12px}</style></head><body>\n",
        "<h1>streamprobe</h1>\n<p><a href=\"/metrics\">metrics</a> · ",
        "<a href=\"/api/v1/targets\">api/v1/targets</a></p>\n",
    ));
    if targets.is_empty() {
        html.push_str("<p>No targets configured.</p>\n");
    } else {
        html.push_str(concat!(
            "<table><tr><th>target</th><th>protocol</th><th>endpoint</th><th>schedule</th>",
            "<th>next run</th><th>last burst</th><th>success</th><th>TTFT p50</th>",
            "<th>TTFT p95</th><th>TTFT p50, recent bursts</th><th>results</th></tr>\n"
        ));
    }
    for t in targets {
        let last = t.recent.back();
        let _ = write!(
            html,
            "<tr><td><b>{}</b>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&t.name),
            if t.running {
                " <small>(running)</small>"
            } else {
                ""
            },
            esc(&t.protocol),
            esc(&t.endpoint),
            esc(&t.schedule),
            t.next_run
                .map_or_else(|| "—".into(), |n| n.format("%H:%M:%S UTC").to_string()),
            last.map_or_else(
                || "—".into(),
                |b| b.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            ),
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
        let _ = write!(html, "<td>{}</td><td>", sparkline(&points));
        for b in t.recent.iter().rev().take(5) {
            if let Some(file) = &b.file {
                let _ = write!(
                    html,
                    "<a href=\"/api/v1/results/{}/{}\">{}</a><br>",
                    esc(&t.name),
                    esc(file),
                    esc(&b.burst_id)
                );
            }
        }
        html.push_str("</td></tr>\n");
    }
    if !targets.is_empty() {
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    html
}

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

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_file_names_reject_traversal() {
        assert!(is_result_file_name("20261127T101500Z-0123456789ab.json"));
        for bad in [
            "../x.json",
            "a/b.json",
            "..json",
            ".json",
            "x.json.tmp",
            "%2e%2e.json",
            "x",
        ] {
            assert!(!is_result_file_name(bad), "{bad}");
        }
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

    #[test]
    fn status_page_escapes_names() {
        let t = TargetStatus {
            name: "a<b".into(),
            protocol: "openai".into(),
            endpoint: "http://h/p".into(),
            model: None,
            schedule: "every 5m".into(),
            next_run: None,
            running: false,
            recent: Default::default(),
        };
        let page = render_status_page(&[t]);
        assert!(page.contains("a&lt;b"));
        assert!(!page.contains("a<b"));
    }
}
