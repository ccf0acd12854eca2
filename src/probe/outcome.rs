//! How a request ended: the closed set of outcomes of DESIGN §4 (`as_str` is the metric label),
//! plus `Interrupted` for a request that cancellation cut short.
//!
//! `Interrupted` is deliberately not in [`Outcome::ALL`]: a cancelled request neither succeeded
//! nor failed, it says nothing about the target, and it only happens while the process stops.
//! It appears in result files and reports, never as a metric label.

/// How one request ended. Every failure has exactly one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Success,
    Connect,
    Tls,
    Http4xx,
    Http429,
    Http5xx,
    TimeoutHeaders,
    TimeoutFirstToken,
    TimeoutIdle,
    TimeoutTotal,
    StreamError,
    Truncated,
    NoTokens,
    TooLarge,
    Assertion,
    /// Cut short by Ctrl-C or shutdown; the record holds what was measured until then.
    Interrupted,
}

impl Outcome {
    /// Every outcome of a request that ended on its own: the closed set metrics label
    /// (`Interrupted` is not among them).
    pub const ALL: [Outcome; 15] = [
        Outcome::Success,
        Outcome::Connect,
        Outcome::Tls,
        Outcome::Http4xx,
        Outcome::Http429,
        Outcome::Http5xx,
        Outcome::TimeoutHeaders,
        Outcome::TimeoutFirstToken,
        Outcome::TimeoutIdle,
        Outcome::TimeoutTotal,
        Outcome::StreamError,
        Outcome::Truncated,
        Outcome::NoTokens,
        Outcome::TooLarge,
        Outcome::Assertion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Connect => "connect",
            Outcome::Tls => "tls",
            Outcome::Http4xx => "http_4xx",
            Outcome::Http429 => "http_429",
            Outcome::Http5xx => "http_5xx",
            Outcome::TimeoutHeaders => "timeout_headers",
            Outcome::TimeoutFirstToken => "timeout_first_token",
            Outcome::TimeoutIdle => "timeout_idle",
            Outcome::TimeoutTotal => "timeout_total",
            Outcome::StreamError => "stream_error",
            Outcome::Truncated => "truncated",
            Outcome::NoTokens => "no_tokens",
            Outcome::TooLarge => "too_large",
            Outcome::Assertion => "assertion",
            Outcome::Interrupted => "interrupted",
        }
    }

    pub fn is_success(self) -> bool {
        self == Outcome::Success
    }

    /// A request that ended on its own without success. `Interrupted` is not a failure.
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Success | Outcome::Interrupted)
    }

    /// The outcome of a non-2xx status.
    pub fn from_status(status: u16) -> Outcome {
        match status {
            429 => Outcome::Http429,
            500..=599 => Outcome::Http5xx,
            _ => Outcome::Http4xx,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
