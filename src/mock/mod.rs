//! A simulated streaming server for the demo, tests and benchmarks: it speaks the wire formats
//! of the services streamprobe measures (OpenAI chat/completions/responses, Anthropic, Gemini,
//! Ollama, Dify, TGI, llama.cpp, raw chunked text), on a schedule it controls, with injectable
//! faults, and records ground truth to check measurements against.
//!
//! Routes (suffix match, any method; anything else speaks `MockOptions::protocol`):
//!
//! | path | dialect |
//! |---|---|
//! | `/v1/chat/completions` | OpenAI chat (usage chunk only with `stream_options.include_usage`) |
//! | `/v1/completions` | OpenAI legacy completions (same usage rule) |
//! | `/v1/responses` | OpenAI Responses |
//! | `/v1/messages` | Anthropic Messages |
//! | `/v1beta/models/{model}:streamGenerateContent` | Gemini (SSE, CRLF) |
//! | `/api/chat`, `/api/generate` | Ollama (NDJSON) |
//! | `/v1/chat-messages` | Dify |
//! | `/generate_stream` | TGI |
//! | `/completion` | llama.cpp native (`protocol: sse` with extract pointers) |
//! | `/raw` | chunked plain text, one token per chunk |
//! | `GET /mock/truth[?id=ID]`, `GET /mock/stats`, `POST /mock/reset` | ground truth (JSON) |
//!
//! Per request, query parameters (`?ttft=350ms&itl=10ms&tokens=50&jitter=0.2&usage=false&fault=stall`)
//! override `X-Mock-TTFT`, `X-Mock-ITL`, `X-Mock-Tokens`, `X-Mock-Jitter`, `X-Mock-Usage` and
//! `X-Mock-Fault` headers, which override the server's options. `fault=none` switches
//! server-wide faults off for one request. Server-wide faults use `KIND[:PROBABILITY]`
//! (see [`FaultSpec`]). The same three levels set, for the diagnostics of DESIGN §11:
//!
//! | query (header `X-Mock-…`) | effect |
//! |---|---|
//! | `model=NAME` (`Model`) | the model the stream names (default: the request body's `model`, Gemini's path model, else `mock-model`) |
//! | `fingerprint=FP` (`Fingerprint`) | OpenAI chat/completions `system_fingerprint` (default `fp_mock`) |
//! | `model_switch_after=N` (`Model-Switch-After`) | from the mock's request N+1 on (arrival order since start, all routes), the model gains the suffix `-next` and the fingerprint `_next`: a silent model swap mid-run |
//! | `cached_tokens=N` (`Cached-Tokens`) | prompt tokens reported as served from cache (at most the prompt): OpenAI `prompt_tokens_details.cached_tokens`, Responses `input_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens` (its `input_tokens` then excludes them), Gemini `cachedContentTokenCount`, llama.cpp `timings.cache_n` |
//! | `reasoning_tokens=N` (`Reasoning-Tokens`) | hidden reasoning tokens: OpenAI chat and Responses `…reasoning_tokens` (and in the output count, as OpenAI does), Anthropic's output count, Gemini `thoughtsTokenCount`; none is streamed, so usage and events disagree |
//! | `provider_headers=LIST` (`Provider-Headers`) | response headers: `openai`, `anthropic`, `ietf` rate limits, `retry-after` / `retry-after-date` (429 and 503 only), `request-id`; each also as `…-malformed` (see `headers.rs`) |
//!
//! Input tokens are the request body's length / 4 (at least 1), reported in each protocol's
//! own field (`prompt_tokens`, `input_tokens`, `promptTokenCount`, `prompt_eval_count`,
//! TGI `input_length`, llama.cpp `tokens_evaluated`, Dify `prompt_tokens`).
//!
//! Faults (`--fault KIND[:PROBABILITY]`, `?fault=KIND`, `X-Mock-Fault: KIND`): `refuse`,
//! `delay-headers`, `hang`, `stall`, `reset`, `429`, `500`, `503`, `error-event`, `malformed`,
//! `invalid-utf8`, `endless`, `oversized`, `trickle` — see [`Fault`] for what each does.
//!
//! Timing: the preamble (role chunk, `message_start`…) goes out with the response head; token
//! `k` is due at `received + ttft + k·itl` (each delay jittered), where `received` is when the
//! request body had been read. Deadlines are absolute, so lateness never accumulates.
//!
//! Serves HTTP/1.1 and cleartext HTTP/2 (prior knowledge). Streaming routes always stream,
//! whatever `stream`/`alt` the request says. Error statuses carry each service's own JSON error
//! shape (OpenAI's for OpenAI routes and `/raw`).
//!
//! Does not: measure anything, or use the probe's HTTP client; it is only ever a target.

mod body;
mod fault;
mod handler;
mod headers;
mod truth;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::Protocol;

use body::ConnState;
use handler::Shared;
use truth::Ledger;

pub use fault::{Fault, FaultSpec, MockError, parse_duration};
pub use headers::{
    ANTHROPIC, ANTHROPIC_RESET, HeaderFamily, IETF_POLICY, IETF_RATELIMIT, OPENAI, ProviderHeaders,
    RETRY_AFTER_SECS,
};
pub use truth::{Arrival, End, Stats, Truth};
pub use wire::{expected_text, token_text};

/// Listen backlog: bursts of thousands of connects must not overflow the accept queue (the
/// kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 8192;
/// Pause after an accept error such as EMFILE, so a full fd table does not spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Server-wide behaviour; every timing field can be overridden per request.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Spoken on paths that match no route (e.g. `/`).
    pub protocol: Protocol,
    /// Request body read → first token.
    pub ttft: Duration,
    /// Between consecutive tokens.
    pub itl: Duration,
    pub tokens: u64,
    /// Fraction in 0..=1: each delay is scaled by a uniform factor in `1 ± jitter`.
    pub jitter: f64,
    /// Report usage the way each service does; `false` makes clients count events.
    pub usage: bool,
    /// Tried in order per request; at most one applies.
    pub faults: Vec<FaultSpec>,
    /// The model every stream names instead of the request's own (`None`: the request's).
    pub model: Option<String>,
    /// OpenAI-style `system_fingerprint`.
    pub fingerprint: String,
    /// From request N+1 on, the model and fingerprint change (see the table above).
    pub model_switch_after: Option<u64>,
    /// Prompt tokens reported as cached (capped at the prompt).
    pub cached_tokens: u64,
    /// Hidden reasoning tokens reported where the protocol has a field for them.
    pub reasoning_tokens: u64,
    /// Provider header families sent with every answer.
    pub provider_headers: Vec<ProviderHeaders>,
    /// Requests whose truth is kept (oldest forgotten first).
    pub truth_capacity: usize,
    /// How long `shutdown` lets open responses finish before cutting them off.
    pub shutdown_grace: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            protocol: Protocol::OpenAi,
            ttft: Duration::from_millis(200),
            itl: Duration::from_millis(20),
            tokens: 50,
            jitter: 0.0,
            usage: true,
            faults: Vec::new(),
            model: None,
            fingerprint: "fp_mock".to_owned(),
            model_switch_after: None,
            cached_tokens: 0,
            reasoning_tokens: 0,
            provider_headers: Vec::new(),
            truth_capacity: 100_000,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// A running mock server. Dropping it stops accepting and winds connections down in the
/// background; `shutdown` does the same and waits.
pub struct MockServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving on the current Tokio runtime.
    pub async fn start(addr: SocketAddr, options: MockOptions) -> io::Result<MockServer> {
        if !(0.0..=1.0).contains(&options.jitter) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                MockError::Jitter {
                    value: options.jitter.to_string(),
                },
            ));
        }
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(BACKLOG)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            ledger: Arc::new(Ledger::new(options.truth_capacity)),
            options,
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, shared.clone(), stop_rx));
        tracing::info!(%local_addr, "mock server listening");
        Ok(MockServer {
            local_addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://ADDR{path}`; an unspecified bind address (0.0.0.0, ::) becomes loopback.
    pub fn url(&self, path: &str) -> String {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("http://{addr}{path}")
    }

    pub fn options(&self) -> &MockOptions {
        &self.shared.options
    }

    /// Truth of the request with this `X-Request-Id` (or sequence number).
    pub fn truth(&self, id: &str) -> Option<Truth> {
        self.shared.ledger.truth(id)
    }

    /// Truth of every request still held, in arrival order.
    pub fn truths(&self) -> Vec<Truth> {
        self.shared.ledger.truths()
    }

    pub fn stats(&self) -> Stats {
        self.shared.ledger.stats()
    }

    /// Resolves once no stream is in flight (e.g. after clients hung up on stalled streams).
    pub async fn idle(&self) {
        self.shared.ledger.idle().await;
    }

    /// Forgets all truth and restarts the counters (streams in flight stay counted).
    pub fn reset(&self) {
        self.shared.ledger.reset();
    }

    /// Stops accepting, lets open responses finish for up to `shutdown_grace`, then cuts the
    /// rest off (hung, stalled and endless streams never finish on their own).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No header read timeout: the mock must not close idle keep-alive connections on its own,
    // or a probe would see failures nobody asked for.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder.http2().max_concurrent_streams(10_000);
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = Arc::new(ConnState::default());
                    let io = TokioIo::new(MockIo { stream, conn: conn.clone() });
                    let shared = shared.clone();
                    let svc = service_fn(move |req| {
                        handler::handle(shared.clone(), conn.clone(), req)
                    });
                    let conn = graceful.watch(builder.serve_connection(io, svc).into_owned());
                    conns.spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "mock connection ended with an error");
                        }
                    });
                }
                Err(e) if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS: the pending connection stays queued; wait for
                    // descriptors to free up instead of spinning.
                    tracing::warn!(error = %e, "mock server cannot accept; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        _ = stop.changed() => break,
                    }
                }
            },
        }
    }
    drop(listener);
    let grace = shared.options.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("mock shutdown grace elapsed; cutting off open responses");
    }
    conns.shutdown().await;
}

/// The accepted socket, closed with a TCP RST instead of a FIN when a `reset` fault fired on it.
struct MockIo {
    stream: TcpStream,
    conn: Arc<ConnState>,
}

impl Drop for MockIo {
    fn drop(&mut self) {
        if self.conn.abort.load(Ordering::Acquire) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for MockIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for MockIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
