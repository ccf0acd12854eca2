//! The validated configuration: the types every other module works with. `validate/` builds
//! them once per load, applying defaults and checks, so a value of these types is valid.
//!
//! Does not: parse, validate or apply defaults (`raw.rs`, `validate/`), or print a secret
//! (templates and proxies hold theirs redacted).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::schedule::{Overlap, Schedule};
use super::template::Template;
use super::tls::{Proxy, Tls};
use crate::dataset::Dataset;

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
    /// TTFT, time to headers, request duration and request phases.
    pub latency: Vec<f64>,
    /// Inter-token latency and time per output token.
    pub token: Vec<f64>,
}

/// OpenTelemetry GenAI client boundaries (DESIGN §5): `buckets.latency: otel`, the default.
const OTEL_LATENCY: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// `buckets.latency: reasoning`: the OpenTelemetry boundaries doubled on up to 655.36 s, for
/// reasoning models that think for minutes before their first token (DESIGN §11: ≥ 600 s).
const REASONING_LATENCY: [f64; 17] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84,
    327.68, 655.36,
];

/// A named set of latency boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyPreset {
    Otel,
    Reasoning,
}

impl LatencyPreset {
    pub const ALL: [LatencyPreset; 2] = [LatencyPreset::Otel, LatencyPreset::Reasoning];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LatencyPreset::Otel => "otel",
            LatencyPreset::Reasoning => "reasoning",
        }
    }

    pub fn boundaries(self) -> Vec<f64> {
        match self {
            LatencyPreset::Otel => OTEL_LATENCY.to_vec(),
            LatencyPreset::Reasoning => REASONING_LATENCY.to_vec(),
        }
    }
}

impl Default for Buckets {
    fn default() -> Self {
        Self {
            latency: LatencyPreset::Otel.boundaries(),
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
    /// `prefix`: every request's prompt starts with a unique nonce, so that no provider's
    /// prefix cache can serve it (the body template holds the nonce's place).
    pub cache_bust: CacheBust,
    /// Response headers copied into each request's result record (lower case).
    pub capture_headers: Vec<String>,
    /// Own TLS settings (`tls:`); `None` = verify against the built-in roots, as browsers do.
    pub tls: Option<Tls>,
    /// Own proxy (`proxy:`); `None` = the standard environment variables (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), as curl reads them.
    pub proxy: Option<Proxy>,
    pub slo: Slo,
    pub expect: Expect,
    /// How `serve` decides whether this target regressed (DESIGN §10).
    pub verdict: VerdictSettings,
}

/// `verdict:`: the daemon's windows and rule. The baseline window is the bursts that started in
/// [now − `baseline`, now − `recent`), the recent window those in [now − `recent`, now].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerdictSettings {
    /// How far back the baseline window reaches; longer than `recent`.
    pub baseline: Duration,
    /// The recent window, compared with the baseline after each burst.
    pub recent: Duration,
    /// Smallest relative change that counts (0.05 = 5%), below 1.
    pub min_change: f64,
    /// Fewer samples than this on a side: `insufficient_data`.
    pub min_samples: u32,
    /// The statistic judged (TTFT and TPOT alike).
    pub statistic: VerdictStatistic,
}

/// The statistic a daemon verdict judges (the verdict engine's own names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictStatistic {
    P50,
    P90,
    P99,
    Mean,
}

impl VerdictStatistic {
    pub const ALL: [VerdictStatistic; 4] = [
        VerdictStatistic::P50,
        VerdictStatistic::P90,
        VerdictStatistic::P99,
        VerdictStatistic::Mean,
    ];

    /// The config spelling, also the verdict engine's.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictStatistic::P50 => "p50",
            VerdictStatistic::P90 => "p90",
            VerdictStatistic::P99 => "p99",
            VerdictStatistic::Mean => "mean",
        }
    }
}

/// Whether requests defeat provider prefix caches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheBust {
    #[default]
    Off,
    /// A unique nonce (`<burst id>-<n>`) at the start of each request's prompt.
    Prefix,
}

impl CacheBust {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheBust::Off => "off",
            CacheBust::Prefix => "prefix",
        }
    }
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

/// As the config spells it: `{text: /content, done: /stop}`, only the pointers that are set.
impl std::fmt::Display for Extract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields = [
            ("text", &self.text),
            ("reasoning", &self.reasoning),
            ("output_tokens", &self.output_tokens),
            ("done", &self.done),
            ("error", &self.error),
            ("model", &self.model),
            ("input_tokens", &self.input_tokens),
            ("cached_input_tokens", &self.cached_input_tokens),
        ];
        let set: Vec<String> = fields
            .iter()
            .filter_map(|(name, pointer)| pointer.as_ref().map(|p| format!("{name}: {p}")))
            .collect();
        write!(f, "{{{}}}", set.join(", "))
    }
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
