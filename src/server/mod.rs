//! The daemon's HTTP face (axum; the only axum user): `/metrics`, health and readiness, the
//! status page, the read-only `/api/v1`, and the admin API (reload, trigger) when enabled.
//! `serve` owns the connections: plain HTTP or TLS (`tls.rs`: rustls, with client certificates
//! per `server.web_config`, and the connection limits), basic auth (`auth.rs`), extra response
//! headers, and the request limits that keep a slow or hostile client from holding the daemon.
//! Handlers gather data and hand it to the pure renderers in `pages.rs` and `output::html`:
//! the status page, a target's page (`/targets/{name}`: its TTFT trend over the retained
//! result files) and a burst's page (`/targets/{name}/bursts/{id}`: its plots). Every HTML
//! response carries a Content-Security-Policy that lets it load nothing from anywhere.
//!
//! Does not: call into the engine. A scrape never starts a request; admin actions are sent
//! to the daemon as `AdminCommand`s and answered through a oneshot channel.

mod auth;
mod pages;
mod tls;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

use crate::config::ConfigError;
use crate::config::web::WebConfig;

use crate::metrics::{CONTENT_TYPE, Gzip, Metrics};
use crate::output::html::CONTENT_SECURITY_POLICY;
use crate::output::html::burst::BurstView;
use crate::output::retained::{self, Retained};
use crate::status::StatusBoard;

use auth::BasicAuth;

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
    /// Where result files live; the daemon updates it when a reload changes `results.dir`.
    pub results_dir: Arc<RwLock<PathBuf>>,
    pub admin: Option<mpsc::Sender<AdminCommand>>,
    /// Config loaded and scheduler running.
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: ServerState) -> Router {
    // The pictures read retained result files; their summaries are cached for the router's
    // life (files never change once written).
    let pictures = PictureState {
        server: state.clone(),
        retained: Arc::new(Retained::new()),
    };
    let pictures = Router::new()
        .route("/targets/{name}", get(target_page))
        .route("/targets/{name}/bursts/{id}", get(burst_page))
        .with_state(pictures);
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
        .merge(pictures)
}

/// What the picture pages read: the server's state and the cache of result-file summaries.
#[derive(Clone)]
struct PictureState {
    server: ServerState,
    retained: Arc<Retained>,
}

/// Serves `router` on `listener` until `shutdown` resolves, over TLS and behind basic auth when
/// `web` says so, always with the connection limits of `tls.rs` and the request limits of the
/// guard. After `shutdown`, it stops accepting and waits for open connections to finish their
/// requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    web: WebSecurity,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(
        tls = web.tls.is_some(),
        basic_auth = web.guard.auth.is_some(),
        "web endpoints"
    );
    let router = router.layer(middleware::from_fn_with_state(
        web.guard.clone(),
        guard_requests,
    ));
    tls::serve_connections(listener, router, web.tls, web.http2, shutdown).await
}

/// No endpoint takes a request body; this is room for a client that sends an empty JSON
/// object with a POST.
pub const MAX_REQUEST_BODY_BYTES: u64 = 4 * 1024;
/// Request received → response headers ready. Handlers answer from memory (a reload reads
/// the config file); anything slower is stuck.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(60);

/// TLS, basic auth and response headers for the endpoints (`server.web_config`); the default
/// is plain HTTP, no auth, no extra headers.
pub struct WebSecurity {
    tls: Option<TlsAcceptor>,
    guard: Arc<Guard>,
    http2: bool,
}

impl Default for WebSecurity {
    fn default() -> Self {
        WebSecurity {
            tls: None,
            guard: Arc::new(Guard {
                auth: None,
                headers: HeaderMap::new(),
            }),
            http2: true,
        }
    }
}

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("basic_auth", &self.guard.auth.is_some())
            .field("http2", &self.http2)
            .finish()
    }
}

impl WebSecurity {
    /// Builds the TLS acceptor and the auth layer. Errors (a key that does not match its
    /// certificate, a CA that is not one) name the web config file and the field.
    pub fn new(web: WebConfig) -> Result<Self, ConfigError> {
        let file = web.path.display().to_string();
        let tls = match &web.tls {
            None => None,
            Some(tls) => Some(
                tls::acceptor(tls, web.http2).map_err(|m| ConfigError(format!("{file}: {m}")))?,
            ),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &web.headers {
            // Both were checked at load (a fixed set of names, printable ASCII values).
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError(format!(
                    "{file}: http_server_config.headers.{name}: not a valid header name"
                ))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                ConfigError(format!(
                    "{file}: http_server_config.headers.{name}: not a valid header value"
                ))
            })?;
            headers.insert(name, value);
        }
        let auth = web
            .users
            .map(BasicAuth::new)
            .transpose()
            .map_err(|m| ConfigError(format!("{file}: {m}")))?;
        Ok(WebSecurity {
            tls,
            guard: Arc::new(Guard { auth, headers }),
            http2: web.http2,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// What every request passes through: body limit, basic auth, handler timeout, extra headers.
struct Guard {
    auth: Option<BasicAuth>,
    headers: HeaderMap,
}

async fn guard_requests(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let mut response = guarded(&guard, request, next).await;
    // Every HTML page loads nothing from anywhere (DESIGN §12); a policy the web config sets
    // replaces this one below.
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    for (name, value) in &guard.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

async fn guarded(guard: &Guard, request: Request, next: Next) -> Response {
    if let Some(auth) = &guard.auth
        && !auth.admits(request.headers()).await
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"streamprobe\""),
            )],
            "unauthorized\n",
        )
            .into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY_BYTES) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    }
    // A chunked body without a length is cut off at the limit as it is read.
    let request = request.map(|body| {
        axum::body::Body::new(http_body_util::Limited::new(
            body,
            MAX_REQUEST_BODY_BYTES as usize,
        ))
    });
    match tokio::time::timeout(HANDLER_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "request timed out\n").into_response(),
    }
}

/// Encoded off the runtime's workers (see [`Metrics::encode_elsewhere`]): a large exposition
/// would otherwise hold up the streams of the worker serving the scrape. Gzipped when the
/// scraper accepts it (Prometheus sends `Accept-Encoding: gzip`), as client_golang's promhttp
/// does.
async fn metrics(State(s): State<ServerState>, headers: HeaderMap) -> Response {
    let gzip = if accepts_gzip(&headers) {
        Gzip::Yes
    } else {
        Gzip::No
    };
    let body = s.metrics.encode_elsewhere(gzip).await;
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ],
        body,
    )
        .into_response();
    if gzip == Gzip::Yes {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether `Accept-Encoding` gives gzip a non-zero quality (RFC 9110 §12.5.3): its own entry
/// when it has one (`gzip;q=0` refuses it even beside `*`), else the `*` entry's.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let quality = parts
            .filter_map(|p| p.trim().split_once('='))
            .find(|(name, _)| name.eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, q)| q.trim().parse::<f32>().unwrap_or(0.0));
        if coding.eq_ignore_ascii_case("gzip") {
            gzip = Some(quality);
        } else if coding == "*" {
            any = Some(quality);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
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
    let path = s.results_dir().join(&target).join(&file);
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
    Html(pages::status_page(&s.board.targets()))
}

/// A page that is not there, as a page (404).
fn page_not_found(message: &str) -> Response {
    (StatusCode::NOT_FOUND, Html(pages::not_found(message))).into_response()
}

/// `GET /targets/{name}`: the target's TTFT trend over its retained result files.
async fn target_page(State(p): State<PictureState>, Path(name): Path<String>) -> Response {
    let Some(status) = p.server.board.target(&name) else {
        return page_not_found(&format!("No target named {name:?}."));
    };
    let dir = p.server.results_dir().join(&name);
    let retained = p.retained.clone();
    let read = tokio::task::spawn_blocking(move || retained.points(&dir)).await;
    match read {
        Ok(Ok(points)) => Html(pages::target_page(&status, points)).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(target_name = %name, error = %e, "cannot list result files");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot list the result files of {name}: {e}\n"),
            )
                .into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "page reader failed\n").into_response(),
    }
}

/// `GET /targets/{name}/bursts/{id}`: one burst's plots, drawn from its result file. The id is
/// checked to be a plain name before any path is built.
async fn burst_page(
    State(p): State<PictureState>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    if p.server.board.target(&name).is_none() {
        return page_not_found(&format!("No target named {name:?}."));
    }
    if !is_burst_id(&id) {
        return page_not_found(&format!("No burst {id:?} of {name}."));
    }
    let dir = p.server.results_dir().join(&name);
    let (target, burst) = (name.clone(), id.clone());
    let rendered = tokio::task::spawn_blocking(move || {
        let Some(path) = retained::find_burst_file(&dir, &burst)? else {
            return Ok(None);
        };
        let bytes = std::fs::read(&path)?;
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let view = BurstView::from_json(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok::<_, std::io::Error>(Some(pages::burst_page(&target, &file, &view)))
    })
    .await;
    match rendered {
        Ok(Ok(Some(html))) => Html(html).into_response(),
        // Retention may delete a file between the listing and the read: gone all the same.
        Ok(Ok(None)) => page_not_found(&format!("No burst {id:?} of {name}.")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            page_not_found(&format!("No burst {id:?} of {name}."))
        }
        Ok(Err(e)) => {
            tracing::warn!(target_name = %name, burst_id = %id, error = %e, "cannot show a burst");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read burst {id} of {name}: {e}\n"),
            )
                .into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "page reader failed\n").into_response(),
    }
}

/// A burst id as the engine makes them (hex), or any plain name of letters, digits, `_` and
/// `-`: never a separator or a dot, so it cannot leave the target's directory.
fn is_burst_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ServerState {
    /// The results directory now (a reload may move it).
    fn results_dir(&self) -> PathBuf {
        self.results_dir
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_ids_reject_traversal() {
        assert!(is_burst_id("0123456789ab"));
        for bad in ["", "..", "a/b", "a.json", "%2e%2e", &"a".repeat(65)] {
            assert!(!is_burst_id(bad), "{bad}");
        }
    }

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
}
