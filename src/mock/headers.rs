//! Provider response headers the mock sends on demand (`?provider_headers=openai,ietf`,
//! `X-Mock-Provider-Headers`, or `MockOptions::provider_headers`): each provider's rate-limit
//! family, `retry-after`, the provider request ids, and a `-malformed` variant of each that a
//! client must ignore without failing.
//!
//! The well-formed values follow the providers' documentation: OpenAI `x-ratelimit-*` resets
//! are Go-style durations (`6m0s`, `1s`, `120ms`); Anthropic `anthropic-ratelimit-*-reset` are
//! RFC 3339 instants; the IETF fields (draft-ietf-httpapi-ratelimit-headers) are structured-field
//! lists, `RateLimit-Policy: "burst";q=100;w=60` and `RateLimit: "burst";r=99;t=30`;
//! `retry-after` is delay-seconds or an HTTP-date and goes out only with 429 and 503 answers.
//! The numbers are constants ([`OPENAI`], [`ANTHROPIC`], …) so tests can assert them.
//!
//! Does not: decide the status or the body (`handler.rs`), or parse any of this (the probe does).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use super::fault::MockError;

/// One header family, well-formed or malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProviderHeaders {
    pub family: HeaderFamily,
    pub malformed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderFamily {
    /// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
    OpenAi,
    /// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`.
    Anthropic,
    /// `RateLimit-Policy` and `RateLimit`.
    Ietf,
    /// `retry-after: 7` (429 and 503 only).
    RetryAfter,
    /// `retry-after: <HTTP-date 7 s from now>` (429 and 503 only).
    RetryAfterDate,
    /// `x-request-id`, `request-id` (Anthropic) and `cf-ray` (Cloudflare).
    RequestId,
}

impl HeaderFamily {
    pub const ALL: [HeaderFamily; 6] = [
        HeaderFamily::OpenAi,
        HeaderFamily::Anthropic,
        HeaderFamily::Ietf,
        HeaderFamily::RetryAfter,
        HeaderFamily::RetryAfterDate,
        HeaderFamily::RequestId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HeaderFamily::OpenAi => "openai",
            HeaderFamily::Anthropic => "anthropic",
            HeaderFamily::Ietf => "ietf",
            HeaderFamily::RetryAfter => "retry-after",
            HeaderFamily::RetryAfterDate => "retry-after-date",
            HeaderFamily::RequestId => "request-id",
        }
    }
}

impl fmt::Display for ProviderHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.family.as_str())?;
        if self.malformed {
            f.write_str("-malformed")?;
        }
        Ok(())
    }
}

impl FromStr for ProviderHeaders {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, malformed) = match s.strip_suffix("-malformed") {
            Some(name) => (name, true),
            None => (s, false),
        };
        HeaderFamily::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(name))
            .map(|family| ProviderHeaders { family, malformed })
            .ok_or_else(|| MockError::Headers {
                value: s.to_owned(),
            })
    }
}

/// A comma-separated list (`openai,retry-after-malformed`); empty entries are skipped and
/// `none` means no family.
pub(crate) fn parse_list(s: &str) -> Result<Vec<ProviderHeaders>, MockError> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    s.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// OpenAI's values: limit, remaining and reset of requests, then of tokens.
pub const OPENAI: [(&str, &str); 6] = [
    ("x-ratelimit-limit-requests", "500"),
    ("x-ratelimit-remaining-requests", "499"),
    ("x-ratelimit-reset-requests", "120ms"),
    ("x-ratelimit-limit-tokens", "30000"),
    ("x-ratelimit-remaining-tokens", "29500"),
    ("x-ratelimit-reset-tokens", "6m0s"),
];

/// Anthropic's limits and remainders per resource; each `-reset` is now + [`ANTHROPIC_RESET`].
pub const ANTHROPIC: [(&str, u64, u64); 4] = [
    ("requests", 1000, 999),
    ("tokens", 96000, 95000),
    ("input-tokens", 80000, 79000),
    ("output-tokens", 16000, 15900),
];
pub const ANTHROPIC_RESET: Duration = Duration::from_secs(30);

pub const IETF_POLICY: &str = "\"burst\";q=100;w=60, \"daily\";q=10000;w=86400";
pub const IETF_RATELIMIT: &str = "\"burst\";r=99;t=30";

/// The delay `retry-after` asks for, in seconds (as a number, or as a date that far ahead).
pub const RETRY_AFTER_SECS: u64 = 7;

/// Adds the requested families to a response with `status`; `seq` makes request ids unique.
pub(crate) fn apply(headers: &mut HeaderMap, families: &[ProviderHeaders], status: u16, seq: u64) {
    let now = SystemTime::now();
    for h in families {
        let pairs: Vec<(HeaderName, HeaderValue)> = match (h.family, h.malformed) {
            (HeaderFamily::OpenAi, false) => OPENAI
                .iter()
                .map(|(k, v)| (n(k), HeaderValue::from_static(v)))
                .collect(),
            // Not numbers, a negative count, a duration with an unknown unit, an empty value.
            (HeaderFamily::OpenAi, true) => vec![
                (
                    n("x-ratelimit-limit-requests"),
                    HeaderValue::from_static("lots"),
                ),
                (
                    n("x-ratelimit-remaining-requests"),
                    HeaderValue::from_static("-5"),
                ),
                (
                    n("x-ratelimit-reset-requests"),
                    HeaderValue::from_static("6x"),
                ),
                (n("x-ratelimit-limit-tokens"), HeaderValue::from_static("")),
                (
                    n("x-ratelimit-remaining-tokens"),
                    HeaderValue::from_static("1e999"),
                ),
                (
                    n("x-ratelimit-reset-tokens"),
                    HeaderValue::from_static("soon"),
                ),
            ],
            (HeaderFamily::Anthropic, malformed) => anthropic(now, malformed),
            (HeaderFamily::Ietf, false) => vec![
                (n("ratelimit-policy"), HeaderValue::from_static(IETF_POLICY)),
                (n("ratelimit"), HeaderValue::from_static(IETF_RATELIMIT)),
            ],
            // Unquoted keys with bad parameters, an unterminated string.
            (HeaderFamily::Ietf, true) => vec![
                (
                    n("ratelimit-policy"),
                    HeaderValue::from_static("burst;q=-1;w=x"),
                ),
                (n("ratelimit"), HeaderValue::from_static("\"burst;r=;t")),
            ],
            (HeaderFamily::RetryAfter | HeaderFamily::RetryAfterDate, _)
                if !matches!(status, 429 | 503) =>
            {
                Vec::new()
            }
            (HeaderFamily::RetryAfter, false) => {
                vec![(n("retry-after"), HeaderValue::from(RETRY_AFTER_SECS))]
            }
            (HeaderFamily::RetryAfterDate, false) => vec![(
                n("retry-after"),
                value(http_date(now + Duration::from_secs(RETRY_AFTER_SECS))),
            )],
            // A negative delay; a date in no HTTP format.
            (HeaderFamily::RetryAfter, true) => {
                vec![(n("retry-after"), HeaderValue::from_static("-3"))]
            }
            (HeaderFamily::RetryAfterDate, true) => vec![(
                n("retry-after"),
                HeaderValue::from_static("Tuesday, half past nine"),
            )],
            (HeaderFamily::RequestId, false) => vec![
                (n("x-request-id"), value(format!("req_mock{seq:08x}"))),
                (n("request-id"), value(format!("req_mock{seq:08x}"))),
                (n("cf-ray"), value(format!("{seq:016x}-MCK"))),
            ],
            // Empty, 4 KiB long, and bytes that are not UTF-8 (obs-text, legal on the wire).
            (HeaderFamily::RequestId, true) => vec![
                (n("x-request-id"), HeaderValue::from_static("")),
                (n("request-id"), value("r".repeat(4096))),
                (
                    n("cf-ray"),
                    HeaderValue::from_bytes(b"\xff\xfe-MCK").expect("obs-text is a valid value"),
                ),
            ],
        };
        for (name, v) in pairs {
            headers.insert(name, v);
        }
    }
}

fn anthropic(now: SystemTime, malformed: bool) -> Vec<(HeaderName, HeaderValue)> {
    let reset = rfc3339(now + ANTHROPIC_RESET);
    let mut out = Vec::new();
    for (resource, limit, remaining) in ANTHROPIC {
        let (limit, remaining, reset) = if malformed {
            // A word, a fraction, a date in the wrong format.
            (
                value("many".to_owned()),
                value("12.5".to_owned()),
                value("27/11/2026 10:15".to_owned()),
            )
        } else {
            (
                HeaderValue::from(limit),
                HeaderValue::from(remaining),
                value(reset.clone()),
            )
        };
        for (part, v) in [("limit", limit), ("remaining", remaining), ("reset", reset)] {
            let name = format!("anthropic-ratelimit-{resource}-{part}");
            out.push((HeaderName::try_from(name).expect("lowercase token"), v));
        }
    }
    out
}

fn n(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

/// A header value from text the mock built itself (visible ASCII).
fn value(s: String) -> HeaderValue {
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// `2026-11-27T10:15:30Z`, as Anthropic writes its resets.
fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `Fri, 27 Nov 2026 10:15:07 GMT` (RFC 9110 IMF-fixdate).
fn http_date(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_parse_and_print() {
        for family in HeaderFamily::ALL {
            for malformed in [false, true] {
                let h = ProviderHeaders { family, malformed };
                assert_eq!(h.to_string().parse::<ProviderHeaders>(), Ok(h));
            }
        }
        assert_eq!(parse_list("openai, ietf-malformed,").unwrap().len(), 2);
        assert_eq!(parse_list("none").unwrap(), []);
        let message = parse_list("openai,github").unwrap_err().to_string();
        assert!(message.contains("\"github\""), "{message}");
        for family in HeaderFamily::ALL {
            assert!(
                message.contains(family.as_str()),
                "{message} lacks {family:?}"
            );
        }
    }

    #[test]
    fn dates_have_their_formats() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_774_507);
        assert_eq!(http_date(t), "Fri, 27 Nov 2026 10:15:07 GMT");
        assert_eq!(rfc3339(t), "2026-11-27T10:15:07Z");
    }
}
