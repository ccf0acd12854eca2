//! The daemon's HTTP face (axum; the only axum user): `/metrics`, health and readiness, the
//! status page, the read-only `/api/v1`, and the admin API (reload, trigger) when enabled.
//! `serve` owns the connections: plain HTTP or TLS (rustls, with client certificates per
//! `server.web_config`), basic auth, extra response headers, and the timeouts and size limits
//! that keep a slow or hostile client from holding the daemon.
//!
//! Does not: call into the engine. A scrape never starts a request; admin actions are sent
//! to the daemon as `AdminCommand`s and answered through a oneshot channel.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use crate::config::ConfigError;
use crate::config::web::{BasicAuthUsers, ClientAuth, Tls, TlsVersion, WebConfig};

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
    /// Where result files live; the daemon updates it when a reload changes `results.dir`.
    pub results_dir: Arc<RwLock<PathBuf>>,
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

/// Serves `router` on `listener` until `shutdown` resolves, over TLS and behind basic auth when
/// `web` says so, always with the connection limits of [`Limits`]. After `shutdown`, it stops
/// accepting and waits for open connections to finish their requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    web: WebSecurity,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Limits::default();
    tracing::info!(
        tls = web.tls.is_some(),
        basic_auth = web.guard.users.is_some(),
        "web endpoints"
    );
    let router = router.layer(middleware::from_fn_with_state(
        web.guard.clone(),
        guard_requests,
    ));
    let service = TowerToHyperService::new(router);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(32)
        .keep_alive_interval(limits.keep_alive)
        .keep_alive_timeout(limits.handshake);
    if !web.http2 {
        builder = builder.http1_only();
    }
    let builder = Arc::new(builder);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
        };
        let (tcp, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let builder = builder.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        let tls = web.tls.clone();
        let handshake = limits.handshake;
        tokio::spawn(async move {
            let _permit = permit;
            let served = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        // Failed handshakes are the client's business (wrong CA, no client
                        // certificate, a port scan); debug level keeps the log quiet.
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Bounds on what one client can hold: a slow or hostile client cannot keep the daemon's
/// connections, memory or handlers. Generous for Prometheus and browsers.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// TCP accept → TLS handshake done; also the HTTP/2 ping answer deadline.
    handshake: Duration,
    /// Longest wait for a request's headers (HTTP/1). hyper runs it while a connection is idle
    /// too, so it is above Prometheus's usual 15 s interval: scrapes keep their connection.
    header_read: Duration,
    /// HTTP/2 keep-alive pings, to notice dead peers.
    keep_alive: Duration,
    max_header_bytes: usize,
    max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(30),
            keep_alive: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_connections: 512,
        }
    }
}

/// No endpoint takes a request body; this is room for a client that sends an empty JSON
/// object with a POST.
pub const MAX_REQUEST_BODY_BYTES: u64 = 4 * 1024;
/// Request received → response headers ready. Handlers answer from memory (a reload reads
/// the config file); anything slower is stuck.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(60);
/// Successful credential checks remembered, so a 1 s scrape does not pay bcrypt's cost.
const MAX_CACHED_CREDENTIALS: usize = 256;
/// bcrypt checks running at once: wrong passwords cannot take more than this many cores.
const MAX_PASSWORD_CHECKS: usize = 2;

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
            guard: Arc::new(Guard::new(None, HeaderMap::new())),
            http2: true,
        }
    }
}

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("basic_auth", &self.guard.users.is_some())
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
            Some(tls) => Some(TlsAcceptor::from(Arc::new(
                tls_config(tls, web.http2).map_err(|m| ConfigError(format!("{file}: {m}")))?,
            ))),
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
        Ok(WebSecurity {
            tls,
            guard: Arc::new(Guard::new(web.users, headers)),
            http2: web.http2,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

fn tls_config(tls: &Tls, http2: bool) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (tls.min_version..=tls.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config.min_version: {e}"))?;
    let verifier: Arc<dyn ClientCertVerifier> = match tls.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: tls.client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in &tls.client_cas {
                roots.add(ca.clone()).map_err(|e| {
                    format!("tls_server_config.client_ca_file: not a usable CA certificate ({e}); give the PEM certificate of the CA that issues client certificates")
                })?;
            }
            let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let builder = if tls.client_auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(|e| {
                format!("tls_server_config.client_ca_file: cannot verify clients with it ({e}); give the PEM certificate of the CA that issues client certificates")
            })?
        }
    };
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(tls.cert_chain.clone(), tls.key.clone_key())
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "tls_server_config.key_file: is not the private key of cert_file's certificate; \
                 give the key the certificate was issued for"
                    .to_owned()
            }
            e => format!(
                "tls_server_config.key_file: cannot be used with cert_file ({e}); key_file must \
                 hold the private key of cert_file's first certificate"
            ),
        })?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// `RequestClientCert` and `RequireAnyClientCert`: a client certificate is asked for (and for
/// the latter required) but not checked against any CA, as in Go's `crypto/tls`. The handshake
/// signature is still verified, so the client holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What every request passes through: body limit, basic auth, handler timeout, extra headers.
struct Guard {
    users: Option<Arc<BasicAuthUsers>>,
    headers: HeaderMap,
    /// SHA-256 of `user:password` of credentials that verified. Digests, never the
    /// credentials themselves. The users cannot change while the process runs (the web config
    /// is read once), so an entry never goes stale.
    verified: Mutex<HashSet<[u8; 32]>>,
    password_checks: Semaphore,
}

impl Guard {
    fn new(users: Option<BasicAuthUsers>, headers: HeaderMap) -> Self {
        Guard {
            users: users.map(Arc::new),
            headers,
            verified: Mutex::default(),
            password_checks: Semaphore::new(MAX_PASSWORD_CHECKS),
        }
    }

    /// Whether the request's `Authorization` header names a user and their password.
    async fn authorized(
        &self,
        users: &Arc<BasicAuthUsers>,
        credentials: Option<(String, Vec<u8>)>,
    ) -> bool {
        let Some((user, password)) = credentials else {
            return false;
        };
        let key: [u8; 32] = {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(user.as_bytes());
            ctx.update(b":");
            ctx.update(&password);
            ctx.finish()
                .as_ref()
                .try_into()
                .expect("SHA-256 is 32 bytes")
        };
        if self.lock().contains(&key) {
            return true;
        }
        let Ok(_slot) = self.password_checks.acquire().await else {
            return false;
        };
        let users = users.clone();
        let ok = tokio::task::spawn_blocking(move || users.verify(&user, &password))
            .await
            .unwrap_or(false);
        if ok {
            let mut verified = self.lock();
            if verified.len() >= MAX_CACHED_CREDENTIALS {
                verified.clear();
            }
            verified.insert(key);
        }
        ok
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        // A panic while holding the lock cannot leave the set inconsistent.
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `Authorization: Basic base64(user:password)`, decoded.
fn basic_credentials(request: &Request) -> Option<(String, Vec<u8>)> {
    use base64::Engine as _;
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

async fn guard_requests(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let mut response = guarded(&guard, request, next).await;
    for (name, value) in &guard.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

async fn guarded(guard: &Guard, request: Request, next: Next) -> Response {
    if let Some(users) = &guard.users
        && !guard.authorized(users, basic_credentials(&request)).await
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
    let dir = s
        .results_dir
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let path = dir.join(&target).join(&file);
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
