//! Fault kinds the mock can inject, their command-line syntax (`KIND[:PROBABILITY]`) and the
//! small value parsers shared by options, query parameters and `X-Mock-*` headers.
//!
//! Does not: decide which fault a request gets (`handler.rs`) or carry one out (`body.rs`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Why a mock option, query parameter or header value was rejected. Messages name the bad value
/// and the accepted spelling, so they can be shown to a CLI user or returned in a 400 body as-is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MockError {
    #[error(
        "invalid duration {value:?}: expected a number with unit ms, s or m, at most 1 day, e.g. 350ms, 2s, 1.5s"
    )]
    Duration { value: String },
    #[error("invalid token count {value:?}: expected a whole number up to 1000000000, e.g. 50")]
    Tokens { value: String },
    #[error("invalid jitter {value:?}: expected a fraction between 0 and 1, e.g. 0.2")]
    Jitter { value: String },
    #[error("invalid usage switch {value:?}: expected true or false")]
    Usage { value: String },
    #[error("unknown fault {value:?}: expected one of {}", Fault::ALL.map(Fault::as_str).join(", "))]
    Fault { value: String },
    #[error(
        "invalid fault probability {value:?}: expected KIND[:PROBABILITY] with a probability between 0 and 1, e.g. stall:0.1"
    )]
    Probability { value: String },
    /// The family names are spelled out (`headers.rs` depends on this file, not the other way;
    /// its tests keep the list complete).
    #[error(
        "unknown provider header family {value:?}: expected a comma-separated list of openai, anthropic, ietf, retry-after, retry-after-date, request-id, each optionally with -malformed, or none"
    )]
    Headers { value: String },
    #[error("invalid {what} {value:?}: expected 1 to 256 characters, e.g. gpt-4o-2024-08-06")]
    Name { what: &'static str, value: String },
    #[error("invalid request count {value:?}: expected a whole number, e.g. 10")]
    Requests { value: String },
}

/// One misbehaviour of the mock server. Streaming faults keep the protocol's framing so that a
/// client sees exactly the failure a real service produces, not a different one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Close the connection without writing a response.
    Refuse,
    /// Withhold the response head until the first token is due; head and first token then go
    /// out together (time to headers ≈ TTFT).
    DelayHeaders,
    /// Send the response head, then nothing, ever (not even the preamble events).
    Hang,
    /// Send half the tokens, then fall silent with the connection open.
    Stall,
    /// Send half the tokens, then abort the connection (TCP RST on HTTP/1, RST_STREAM on h2);
    /// the chunked body never gets its terminating chunk.
    Reset,
    /// 429 with `retry-after` and the protocol's JSON error body.
    TooManyRequests,
    /// 500 with the protocol's JSON error body.
    InternalError,
    /// 503 with the protocol's JSON error body.
    Unavailable,
    /// 200, half the tokens, then the protocol's own in-band error event; no normal terminator.
    ErrorEvent,
    /// An extra event whose JSON is cut short, halfway through an otherwise normal stream.
    Malformed,
    /// An extra event whose text holds invalid UTF-8 bytes, halfway through a normal stream.
    InvalidUtf8,
    /// Tokens forever: never a terminator, never usage.
    Endless,
    /// An extra event holding one 20 MiB line, halfway through a normal stream.
    Oversized,
    /// The whole body one byte per write, at most one byte per millisecond.
    Trickle,
}

impl Fault {
    pub const ALL: [Fault; 14] = [
        Fault::Refuse,
        Fault::DelayHeaders,
        Fault::Hang,
        Fault::Stall,
        Fault::Reset,
        Fault::TooManyRequests,
        Fault::InternalError,
        Fault::Unavailable,
        Fault::ErrorEvent,
        Fault::Malformed,
        Fault::InvalidUtf8,
        Fault::Endless,
        Fault::Oversized,
        Fault::Trickle,
    ];

    /// The spelling accepted by `--fault`, `?fault=` and `X-Mock-Fault`, and shown in truth.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Refuse => "refuse",
            Fault::DelayHeaders => "delay-headers",
            Fault::Hang => "hang",
            Fault::Stall => "stall",
            Fault::Reset => "reset",
            Fault::TooManyRequests => "429",
            Fault::InternalError => "500",
            Fault::Unavailable => "503",
            Fault::ErrorEvent => "error-event",
            Fault::Malformed => "malformed",
            Fault::InvalidUtf8 => "invalid-utf8",
            Fault::Endless => "endless",
            Fault::Oversized => "oversized",
            Fault::Trickle => "trickle",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Fault {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Fault::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| MockError::Fault {
                value: s.to_owned(),
            })
    }
}

/// A server-wide fault and the probability (0..=1) that a request gets it.
///
/// Syntax `KIND[:PROBABILITY]`: `429` (every request), `stall:0.1` (10 % of requests),
/// `reset:0.05`. With several specs, each request tries them in order and gets the first that
/// fires, so at most one fault applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultSpec {
    pub fault: Fault,
    probability: f64,
}

impl FaultSpec {
    /// `None` when `probability` is not within 0..=1 (or is NaN).
    pub fn new(fault: Fault, probability: f64) -> Option<FaultSpec> {
        (0.0..=1.0)
            .contains(&probability)
            .then_some(FaultSpec { fault, probability })
    }

    pub fn probability(&self) -> f64 {
        self.probability
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.probability >= 1.0 {
            write!(f, "{}", self.fault)
        } else {
            write!(f, "{}:{}", self.fault, self.probability)
        }
    }
}

impl FromStr for FaultSpec {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, probability) = match s.split_once(':') {
            Some((kind, p)) => {
                let bad = || MockError::Probability {
                    value: s.to_owned(),
                };
                (kind, p.trim().parse::<f64>().map_err(|_| bad())?)
            }
            None if s.contains('=') => {
                return Err(MockError::Probability {
                    value: s.to_owned(),
                });
            }
            None => (s, 1.0),
        };
        let fault = kind.parse()?;
        FaultSpec::new(fault, probability).ok_or_else(|| MockError::Probability {
            value: s.to_owned(),
        })
    }
}

/// Parses a delay the way config files do (`350ms`, `2s`, `1.5s`, `1m`, bare seconds), capped
/// at `MAX_DURATION`.
pub fn parse_duration(s: &str) -> Result<Duration, MockError> {
    crate::config::parse_duration(s)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| MockError::Duration {
            value: s.to_owned(),
        })
}

/// Longest accepted delay: far beyond any useful mock timing, and far from `Instant` overflow.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Most tokens per request: keeps usage arithmetic far from overflow.
const MAX_TOKENS: u64 = 1_000_000_000;

pub(crate) fn parse_tokens(s: &str) -> Result<u64, MockError> {
    s.trim()
        .parse()
        .ok()
        .filter(|n| *n <= MAX_TOKENS)
        .ok_or_else(|| MockError::Tokens {
            value: s.to_owned(),
        })
}

/// A model or fingerprint the mock reports instead of its own: 1 to 256 characters.
pub(crate) fn parse_name(what: &'static str, s: &str) -> Result<String, MockError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 256 {
        return Err(MockError::Name {
            what,
            value: s.to_owned(),
        });
    }
    Ok(s.to_owned())
}

pub(crate) fn parse_requests(s: &str) -> Result<u64, MockError> {
    s.trim().parse().map_err(|_| MockError::Requests {
        value: s.to_owned(),
    })
}

pub(crate) fn parse_jitter(s: &str) -> Result<f64, MockError> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|j| (0.0..=1.0).contains(j))
        .ok_or_else(|| MockError::Jitter {
            value: s.to_owned(),
        })
}

pub(crate) fn parse_bool(s: &str) -> Result<bool, MockError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(MockError::Usage {
            value: s.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("350ms"), Ok(Duration::from_millis(350)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(3 * 3600)));
        assert!(parse_duration("2d").is_err(), "beyond MAX_DURATION");
        assert!(parse_duration("2000m").is_err());
        assert!(parse_tokens("10000000000").is_err());
    }

    #[test]
    fn fault_specs() {
        let s: FaultSpec = "429".parse().unwrap();
        assert_eq!((s.fault, s.probability()), (Fault::TooManyRequests, 1.0));
        let s: FaultSpec = "stall:0.1".parse().unwrap();
        assert_eq!((s.fault, s.probability()), (Fault::Stall, 0.1));
        assert!("reset=0.05".parse::<FaultSpec>().is_err());
        assert!("stall:1.5".parse::<FaultSpec>().is_err());
        assert!("melt".parse::<FaultSpec>().is_err());
        for f in Fault::ALL {
            assert_eq!(f.as_str().parse::<Fault>(), Ok(f));
            let spec = FaultSpec::new(f, 0.25).unwrap();
            assert_eq!(spec.to_string().parse::<FaultSpec>(), Ok(spec));
        }
    }
}
