//! The measurement engine: one burst (closed-loop concurrency or open-loop rate) of requests
//! against one target, each timed from `t0` to end of stream. The only reqwest user.
//!
//! Results leave as values (`RequestRecord`, `BurstResult`) and as `BurstEvent`s pushed to the
//! `BurstSink` the caller subscribes with. Does not: print, log above debug, touch the
//! filesystem or Prometheus.

use std::time::{Duration, SystemTime};

mod arrival;
mod burst;
mod client;
mod connection;
pub mod headers;
mod lag;
mod outcome;
mod request;
mod tls;

pub use burst::{BurstOptions, BurstPlan, Pacing, new_burst_id, run_burst};
pub use client::{Client, ClientError};
pub use headers::{Limit, RateLimits, Resource};
pub use lag::{LagProbe, TICK as LAG_TICK};
pub use outcome::Outcome;

/// Where an output-token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenSource {
    /// Reported by the server (OpenAI `usage.completion_tokens`, Ollama `eval_count`, ...).
    Usage,
    /// Counted token-bearing events (the server reported nothing).
    Events,
}

impl TokenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Usage => "usage",
            TokenSource::Events => "events",
        }
    }
}

/// Everything measured about one request. Durations are relative to the request's `t0`
/// unless their name says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// 1-based position in the burst (the old script's `request_id`).
    pub index: u64,
    pub outcome: Outcome,
    /// HTTP status, when headers arrived.
    pub status: Option<u16>,
    /// Human-readable failure detail; never contains a secret.
    pub error: Option<String>,
    /// Burst start → this request's `t0`.
    pub start_offset: Duration,
    /// Time spent waiting for a concurrency permit before `t0`.
    pub client_wait: Duration,
    pub time_to_headers: Option<Duration>,
    /// First token on any channel. `None` for failed requests (they never give TTFT samples).
    pub ttft: Option<Duration>,
    /// First token on the text channel.
    pub first_visible_token: Option<Duration>,
    /// `t0` → end of stream (terminal event, EOF, or the failure).
    pub duration: Duration,
    pub output_tokens: u64,
    pub token_source: TokenSource,
    /// Token-bearing events seen (any channel).
    pub token_events: u64,
    /// Body chunks read from the socket.
    pub chunks: u64,
    /// Body bytes read.
    pub bytes: u64,
    /// Gaps between consecutive token-bearing events, in arrival order.
    pub itl: Vec<Duration>,
    /// `(t_last_token − t_first_token) / (N_out − 1)` when `N_out ≥ 2`.
    pub tpot: Option<Duration>,
    /// The streamed text (text channel), when asked for.
    pub text: Option<String>,
    /// Whether the request paid for opening its connection; `None` when it never got one to
    /// (it failed before sending, or was cut off with no connect of its own under way).
    pub connection: Option<Connection>,
    /// Where the time from `t0` to the end went; they add up to `duration`.
    pub phases: Phases,
    /// Sent a second time, on a new connection, after its reused keep-alive connection failed
    /// before any response byte. Every timing belongs to the second attempt.
    pub retried: bool,
    /// The rate limits and `retry-after` the response stated.
    pub ratelimit: RateLimits,
    /// The provider's id for the request (`x-request-id`, `request-id`, `cf-ray`, ...).
    pub provider_request_id: Option<String>,
    /// The target's `capture_headers` that the response carried, lower-case names.
    pub captured_headers: Vec<(String, String)>,
    /// The model the server said answered (the last one it named), at most
    /// [`MAX_IDENTITY_BYTES`] bytes.
    pub response_model: Option<String>,
    /// The server's `system_fingerprint` (OpenAI and its copies), bounded like the model.
    pub system_fingerprint: Option<String>,
    /// Server-reported input tokens: the whole prompt, its cached part included.
    pub input_tokens: Option<u64>,
    /// Server-reported input tokens served from the provider's prompt cache.
    pub cached_input_tokens: Option<u64>,
    /// Server-reported reasoning tokens (OpenAI counts them in `output_tokens`, Gemini not).
    pub reasoning_tokens: Option<u64>,
    /// The server's output-token count and the token-bearing events differ by more than 2×
    /// (either way): TPOT rests on the server's count. Only when both exist.
    pub usage_mismatch: bool,
}

/// Longest response model or fingerprint a record keeps: they come from the server, which may
/// send anything.
pub const MAX_IDENTITY_BYTES: usize = 256;

/// Whether a server-reported output-token count and the number of token-bearing events
/// disagree by more than a factor of 2 in either direction (e.g. usage 50 with 2 tool-argument
/// deltas, or usage 5 with 121 deltas). Needs both: a stream without events has no rate to
/// compare.
pub fn usage_disagrees(usage: u64, events: u64) -> bool {
    events > 0 && (usage > events.saturating_mul(2) || events > usage.saturating_mul(2))
}

impl RequestRecord {
    /// `N_out / duration`, the old script's tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            self.output_tokens as f64 / secs
        } else {
            0.0
        }
    }
}

/// How a request got its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Connection {
    /// Opened for this request: DNS, TCP and TLS are part of its duration.
    New,
    /// Already open (a pooled keep-alive connection, or a shared HTTP/2 connection).
    Reused,
}

impl Connection {
    pub const ALL: [Connection; 2] = [Connection::New, Connection::Reused];

    /// The `kind` label and the result file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::New => "new",
            Connection::Reused => "reused",
        }
    }
}

/// One stretch of a request's life (DESIGN §11), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// `t0` → the DNS answer (new connections to a host name).
    Resolve,
    /// → the TCP connection (new connections; with a proxy, its tunnel too).
    Connect,
    /// → the TLS handshake done (new HTTPS connections).
    Tls,
    /// Request sent → response headers: the server's queue and prefill.
    Headers,
    /// Headers → the first token.
    FirstToken,
    /// First token → end of stream.
    Generation,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::Headers,
        Phase::FirstToken,
        Phase::Generation,
    ];

    /// The `phase` label and the result file's key.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Headers => "headers",
            Phase::FirstToken => "first_token",
            Phase::Generation => "generation",
        }
    }
}

/// A request's phases; `None` where the request did not go through one (a reused connection
/// has no `connect`; a request that failed stops at the phase it failed in). Consecutive:
/// they add up to the request's duration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    pub resolve: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    pub headers: Option<Duration>,
    pub first_token: Option<Duration>,
    pub generation: Option<Duration>,
}

impl Phases {
    pub fn get(&self, phase: Phase) -> Option<Duration> {
        match phase {
            Phase::Resolve => self.resolve,
            Phase::Connect => self.connect,
            Phase::Tls => self.tls,
            Phase::Headers => self.headers,
            Phase::FirstToken => self.first_token,
            Phase::Generation => self.generation,
        }
    }

    /// The phases the request went through, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        Phase::ALL
            .into_iter()
            .filter_map(|p| self.get(p).map(|d| (p, d)))
    }
}

/// Whether requests of a burst shared connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionMode {
    Reused,
    Fresh,
}

impl ConnectionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionMode::Reused => "reused",
            ConnectionMode::Fresh => "fresh",
        }
    }
}

/// One burst's outcome: every recorded request (warm-up excluded), in index order.
#[derive(Debug, Clone)]
pub struct BurstResult {
    pub burst_id: String,
    pub target: String,
    /// Wall-clock start, for file names and timestamps only (never for durations).
    pub started_at: SystemTime,
    /// First `t0` → last request's end.
    pub total_time: Duration,
    pub records: Vec<RequestRecord>,
    pub connection_mode: ConnectionMode,
    /// The protocol the decoder used (what `auto` resolved to, when it did).
    pub protocol: crate::config::Protocol,
    /// A generic stream read without `extract` whose first event looked like a known dialect:
    /// every event was counted as a token, which the report and the daemon's log warn about.
    pub looks_like: Option<crate::stream::LooksLike>,
    /// Cancelled by shutdown before every request finished.
    pub interrupted: bool,
    /// The client's own scheduling lag and CPU time while the recorded requests ran (warm-up
    /// excluded).
    pub client: ClientLoad,
}

/// How loaded the client itself was during a burst (`lag.rs`): how long a ready task waited
/// for the runtime to poll it, once per tick of the probe, and the CPU time the process used
/// (`None` when not measured). `stats::ClientSummary` makes numbers of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLoad {
    /// One scheduling-lag sample per tick of the probe, in the order they were taken.
    pub lags: Vec<Duration>,
    /// User plus system CPU time of the whole process over the burst (bursts that overlap
    /// share it).
    pub cpu: Option<Duration>,
}

/// What the engine tells live consumers (progress display, metrics) while a burst runs.
#[derive(Debug, Clone)]
pub enum BurstEvent {
    /// A recorded request reached `t0`.
    RequestStarted { index: u64 },
    /// A recorded request ended, successfully or not.
    RequestDone(std::sync::Arc<RequestRecord>),
}

/// A live consumer of one burst's events: progress display, metrics. `run_burst` feeds it on a
/// task of its own, in the order the engine emitted them, and never waits for it.
pub trait BurstSink: Send + 'static {
    fn observe(&mut self, event: &BurstEvent);

    /// Called once, after the burst ended and every event was observed.
    fn finish(&mut self) {}
}

/// Nobody watching: the caller wants only the `BurstResult` (tests, tools).
impl BurstSink for () {
    fn observe(&mut self, _: &BurstEvent) {}
}

/// Two subscribers of one burst (the daemon's metrics and status board): each sees every
/// event, in order, the first before the second.
impl<A: BurstSink, B: BurstSink> BurstSink for (A, B) {
    fn observe(&mut self, event: &BurstEvent) {
        self.0.observe(event);
        self.1.observe(event);
    }

    fn finish(&mut self) {
        self.0.finish();
        self.1.finish();
    }
}
