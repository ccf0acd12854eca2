//! Configuration: the validated types every other module works with, and `load`, the one path
//! from a YAML/JSON file (or the old script's JSON format) to them.
//!
//! `raw.rs` mirrors the file with serde (the only serde_yaml user); `validate.rs` converts raw →
//! these types once, applying defaults and cross-field checks, so that after `load` returns the
//! types guarantee validity. Secrets (`secret.rs`) are resolved here and stay redacted in every
//! Debug/Display/Serialize.
//!
//! All relative paths in a file (`data_source.file`, `tls.*_file`, `results.dir`,
//! `${file:...}`) are relative to the file's directory. `tls.rs` checks per-target TLS and proxy
//! settings; `describe.rs` renders the `check` report; `schedule.rs` computes fire times.
//!
//! Does not: open sockets, start timers, or print.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::dataset::{Dataset, Template};

pub mod describe;
mod overrides;
mod raw;
pub mod redact;
mod schedule;
pub mod secret;
mod tls;
mod validate;
pub mod web;

pub use describe::{check_report, format_duration, format_rate};
pub use overrides::{RunOverrides, load_for_run};
pub use raw::parse_duration;
pub use secret::{Env, Secret};
pub use tls::{ClientCert, PemFile, Proxy, ServerName, Tls};
pub use validate::{ConfigError, load, load_str, load_str_with_env, load_with_env};

/// A whole, validated configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from (relative paths inside it are resolved against its directory).
    pub path: PathBuf,
    pub server: Server,
    pub results: Results,
    pub buckets: Buckets,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub web_config: Option<PathBuf>,
    pub enable_admin_api: bool,
    pub max_in_flight: NonZeroU32,
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct Results {
    pub dir: PathBuf,
    pub keep_per_target: u32,
    pub max_age: Duration,
    pub include_text: bool,
}

/// Histogram bucket boundaries (seconds), per metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// TTFT, time to headers and request duration.
    pub latency: Vec<f64>,
    /// Inter-token latency and time per output token.
    pub token: Vec<f64>,
}

impl Default for Buckets {
    fn default() -> Self {
        // OpenTelemetry GenAI client boundaries (DESIGN §5).
        Self {
            latency: vec![
                0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
                81.92,
            ],
            token: vec![
                0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1,
                0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5,
            ],
        }
    }
}

/// One probed endpoint: how to build its requests, how to read its stream, when to fire.
#[derive(Debug, Clone)]
pub struct Target {
    /// `[A-Za-z0-9_.-]+`, unique within the file; the `target` label.
    pub name: String,
    /// May hold `{{column}}` placeholders and secrets.
    pub url: Template,
    /// Upper-case HTTP method token (`GET`, `POST`, ...).
    pub method: String,
    pub headers: Vec<Header>,
    pub body: Option<Body>,
    pub data: Option<Arc<Dataset>>,
    pub protocol: Protocol,
    pub extract: Option<Extract>,
    pub schedule: Option<Schedule>,
    pub overlap: Overlap,
    pub run_on_start: bool,
    pub concurrency: NonZeroU32,
    pub total_requests: NonZeroU32,
    /// Open-loop arrivals per second (Poisson), capped by `concurrency`.
    pub rate: Option<f64>,
    pub warmup_requests: u32,
    /// Whole request, t0 → end of stream.
    pub timeout: Duration,
    /// t0 → first token. Never above `timeout`.
    pub first_token_timeout: Duration,
    /// Longest silence between two body chunks.
    pub idle_timeout: Duration,
    pub max_response_bytes: u64,
    pub model: Option<String>,
    pub request_id_header: Option<String>,
    pub fresh_connections: bool,
    /// Own TLS settings (`tls:`); `None` = verify against the built-in roots, as browsers do.
    pub tls: Option<Tls>,
    /// Own proxy (`proxy:`); `None` = the standard environment variables (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), as curl reads them.
    pub proxy: Option<Proxy>,
    pub slo: Slo,
    pub expect: Expect,
}

#[derive(Debug, Clone)]
pub struct Header {
    pub name: String,
    pub value: Template,
}

/// A request body. JSON bodies are compiled so that placeholders and secrets land JSON-escaped.
#[derive(Debug, Clone)]
pub enum Body {
    Json(Template),
    Text(Template),
}

impl Body {
    pub fn template(&self) -> &Template {
        match self {
            Body::Json(t) | Body::Text(t) => t,
        }
    }
}

/// How to read the response stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Auto,
    OpenAi,
    OpenAiCompletions,
    OpenAiResponses,
    Anthropic,
    Gemini,
    Ollama,
    Dify,
    Tgi,
    Sse,
    Ndjson,
    Raw,
}

impl Protocol {
    pub const ALL: [Protocol; 12] = [
        Protocol::Auto,
        Protocol::OpenAi,
        Protocol::OpenAiCompletions,
        Protocol::OpenAiResponses,
        Protocol::Anthropic,
        Protocol::Gemini,
        Protocol::Ollama,
        Protocol::Dify,
        Protocol::Tgi,
        Protocol::Sse,
        Protocol::Ndjson,
        Protocol::Raw,
    ];

    /// The config spelling, also the `protocol` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::OpenAi => "openai",
            Protocol::OpenAiCompletions => "openai-completions",
            Protocol::OpenAiResponses => "openai-responses",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
            Protocol::Ollama => "ollama",
            Protocol::Dify => "dify",
            Protocol::Tgi => "tgi",
            Protocol::Sse => "sse",
            Protocol::Ndjson => "ndjson",
            Protocol::Raw => "raw",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// JSON pointers (RFC 6901) into each event of a generic `sse`/`ndjson` stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extract {
    pub text: Option<String>,
    pub reasoning: Option<String>,
    pub output_tokens: Option<String>,
    pub done: Option<String>,
    pub error: Option<String>,
    /// The responding model's name (v2 response identity).
    pub model: Option<String>,
    /// Input tokens, and those of them served from a prompt cache (v2 token details).
    pub input_tokens: Option<String>,
    pub cached_input_tokens: Option<String>,
}

/// When a target fires. `Cron` is much larger than `Every`; there is one per target, built once
/// at load, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Schedule {
    Every {
        every: Duration,
        jitter: Duration,
    },
    Cron {
        /// The expression as written (5-field expressions get seconds `0` when parsed).
        expr: String,
        cron: croner::Cron,
        timezone: chrono_tz::Tz,
    },
}

/// By hand: croner's own Debug dumps every bit of its fields, which would drown any `{:?}` of a
/// `Config` in a log line.
impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every { every, jitter } => f
                .debug_struct("Every")
                .field("every", every)
                .field("jitter", jitter)
                .finish(),
            Schedule::Cron { expr, timezone, .. } => f
                .debug_struct("Cron")
                .field("expr", expr)
                .field("timezone", timezone)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// A tick that finds the previous burst still running is skipped and counted.
    #[default]
    Skip,
    /// At most one pending burst waits for the running one.
    Queue,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slo {
    pub ttft: Option<Duration>,
    pub tpot: Option<Duration>,
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    pub contains: Option<String>,
    pub min_output_tokens: Option<u64>,
}
