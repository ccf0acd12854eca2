//! Provider response headers, parsed: rate limits (OpenAI `x-ratelimit-*`, Anthropic
//! `anthropic-ratelimit-*`, the IETF `RateLimit`/`RateLimit-Policy` structured fields),
//! `retry-after`, the provider's request id and a target's `capture_headers`. Pure: headers
//! and the wall-clock time of their arrival in, values out.
//!
//! Servers send anything: a malformed value is skipped and its header named in
//! `ProviderHeaders::malformed` (the caller logs it at debug), never an error or a panic.
//! Does not: log, or decide what the values mean for metrics.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};

/// Headers that carry a provider's id for the request, most specific first: OpenAI and most
/// gateways, Anthropic, AWS (Bedrock), Azure API Management, Azure, Cloudflare.
pub const REQUEST_ID_HEADERS: [&str; 6] = [
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "apim-request-id",
    "x-ms-request-id",
    "cf-ray",
];

/// Longest request id accepted, in bytes (longer ones are malformed).
const MAX_REQUEST_ID_BYTES: usize = 128;
/// Longest captured header value kept, in bytes.
const MAX_CAPTURED_BYTES: usize = 256;

/// What a rate limit counts: the `resource` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Requests,
    Tokens,
    InputTokens,
    OutputTokens,
}

impl Resource {
    pub const ALL: [Resource; 4] = [
        Resource::Requests,
        Resource::Tokens,
        Resource::InputTokens,
        Resource::OutputTokens,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Requests => "requests",
            Resource::Tokens => "tokens",
            Resource::InputTokens => "input_tokens",
            Resource::OutputTokens => "output_tokens",
        }
    }
}

/// One resource's limit as a response stated it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Time until the limit resets, from when the response arrived.
    pub reset: Option<Duration>,
}

impl Limit {
    pub fn is_empty(&self) -> bool {
        self.limit.is_none() && self.remaining.is_none() && self.reset.is_none()
    }
}

/// The rate limits one response stated, by resource, and its `retry-after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits {
    limits: [Limit; 4],
    /// The delay `retry-after` asked for, from when the response arrived.
    pub retry_after: Option<Duration>,
}

impl RateLimits {
    pub fn get(&self, resource: Resource) -> &Limit {
        &self.limits[resource as usize]
    }

    pub fn set(&mut self, resource: Resource, limit: Limit) {
        self.limits[resource as usize] = limit;
    }

    fn get_mut(&mut self, resource: Resource) -> &mut Limit {
        &mut self.limits[resource as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.retry_after.is_none() && self.limits.iter().all(Limit::is_empty)
    }
}

/// Everything of interest in one response's headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderHeaders {
    pub ratelimit: RateLimits,
    /// The provider's id for the request (the first of [`REQUEST_ID_HEADERS`] present).
    pub request_id: Option<String>,
    /// `capture_headers` that were present: lower-case name and value, in the configured order.
    pub captured: Vec<(String, String)>,
    /// Headers whose value could not be read and was ignored.
    pub malformed: Vec<String>,
}

/// Reads `headers`, which arrived at `now` (wall clock: Anthropic and `retry-after` dates are
/// absolute). `capture` holds lower-case header names.
pub fn read(headers: &HeaderMap, capture: &[String], now: SystemTime) -> ProviderHeaders {
    let mut out = ProviderHeaders::default();
    let mut request_id_rank = usize::MAX;
    let mut ietf: Option<(&HeaderValue, Vec<&HeaderValue>)> = None;
    let mut policies: Vec<Item> = Vec::new();
    let mut ietf_limits = RateLimits::default();
    for (name, value) in headers {
        let name = name.as_str();
        let ok = if let Some(rest) = name.strip_prefix("x-ratelimit-") {
            openai(&mut out.ratelimit, rest, value)
        } else if let Some(rest) = name.strip_prefix("anthropic-ratelimit-") {
            anthropic(&mut out.ratelimit, rest, value, now)
        } else if name == "ratelimit" {
            match &mut ietf {
                Some((_, more)) => more.push(value),
                None => ietf = Some((value, Vec::new())),
            }
            true
        } else if name == "ratelimit-policy" {
            // A malformed policy only loses the quotas; the live counts still stand.
            match value.to_str().ok().and_then(sf_list) {
                Some(items) => {
                    policies.extend(items);
                    true
                }
                None => false,
            }
        } else if name == "retry-after" {
            match retry_after(value, now) {
                Some(d) => {
                    out.ratelimit.retry_after = Some(d);
                    true
                }
                None => false,
            }
        } else if let Some(rank) = REQUEST_ID_HEADERS.iter().position(|h| *h == name) {
            // An id cut short finds nothing in the provider's logs: too long is malformed.
            let id = visible(value, usize::MAX).filter(|id| id.len() <= MAX_REQUEST_ID_BYTES);
            match id {
                Some(id) if rank < request_id_rank => {
                    request_id_rank = rank;
                    out.request_id = Some(id);
                    true
                }
                Some(_) => true,
                None => false,
            }
        } else {
            true
        };
        if !ok {
            out.malformed.push(name.to_owned());
        }
        if capture.iter().any(|c| c == name) {
            match visible(value, MAX_CAPTURED_BYTES) {
                Some(v) => out.captured.push((name.to_owned(), v)),
                None => out.malformed.push(name.to_owned()),
            }
        }
    }
    if let Some((first, more)) = ietf {
        let fields = std::iter::once(first).chain(more);
        match ietf_ratelimit(fields, &policies) {
            Some(limits) => ietf_limits = limits,
            None => out.malformed.push("ratelimit".to_owned()),
        }
    }
    // The providers' own families are more specific: the IETF fields only fill gaps.
    for resource in Resource::ALL {
        let own = out.ratelimit.get_mut(resource);
        let ietf = ietf_limits.get(resource);
        own.limit = own.limit.or(ietf.limit);
        own.remaining = own.remaining.or(ietf.remaining);
        own.reset = own.reset.or(ietf.reset);
    }
    // `capture_headers` order, whatever the response's order.
    out.captured
        .sort_by_key(|(name, _)| capture.iter().position(|c| c == name));
    out
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; resets are Go durations (`6m0s`,
/// `1s`, `120ms`). Other `x-ratelimit-*` names (other vendors' resources) are not ours.
fn openai(limits: &mut RateLimits, rest: &str, value: &HeaderValue) -> bool {
    let Some((field, resource)) = rest.split_once('-') else {
        return true;
    };
    let resource = match resource {
        "requests" => Resource::Requests,
        "tokens" => Resource::Tokens,
        _ => return true,
    };
    let text = value.to_str().unwrap_or("").trim();
    let slot = limits.get_mut(resource);
    match field {
        "limit" => store(&mut slot.limit, count(text)),
        "remaining" => store(&mut slot.remaining, count(text)),
        "reset" => store(&mut slot.reset, go_duration(text)),
        _ => true,
    }
}

/// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`;
/// resets are RFC 3339 instants.
fn anthropic(limits: &mut RateLimits, rest: &str, value: &HeaderValue, now: SystemTime) -> bool {
    let Some((resource, field)) = rest.rsplit_once('-') else {
        return true;
    };
    let resource = match resource {
        "requests" => Resource::Requests,
        "tokens" => Resource::Tokens,
        "input-tokens" => Resource::InputTokens,
        "output-tokens" => Resource::OutputTokens,
        _ => return true,
    };
    let text = value.to_str().unwrap_or("").trim();
    let slot = limits.get_mut(resource);
    match field {
        "limit" => store(&mut slot.limit, count(text)),
        "remaining" => store(&mut slot.remaining, count(text)),
        "reset" => store(&mut slot.reset, rfc3339_until(text, now)),
        _ => true,
    }
}

fn store<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
    match value {
        Some(v) => {
            *slot = Some(v);
            true
        }
        None => false,
    }
}

fn count(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A Go `time.Duration` string (`6m0s`, `1h2m3.5s`, `120ms`, `0s`), or bare seconds, which
/// some compatible servers send. Negative values are malformed: a reset lies ahead.
fn go_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds >= 0.0)
            .then(|| Duration::try_from_secs_f64(seconds).ok())
            .flatten();
    }
    let mut rest = text;
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Time from `now` until an RFC 3339 instant; zero when it already passed.
fn rfc3339_until(text: &str, now: SystemTime) -> Option<Duration> {
    let at: SystemTime = chrono::DateTime::parse_from_rfc3339(text).ok()?.into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `retry-after`: delay-seconds or an HTTP-date (IMF-fixdate); zero for a date in the past.
fn retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Some(seconds) = count(text) {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) is a subset of RFC 2822's format.
    let at: SystemTime = chrono::DateTime::parse_from_rfc2822(text).ok()?.into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A value of visible ASCII (what header values should be), cut at `max` bytes; empty is
/// malformed.
fn visible(value: &HeaderValue, max: usize) -> Option<String> {
    let text = value.to_str().ok()?.trim();
    if text.is_empty() {
        return None;
    }
    Some(text[..text.len().min(max)].to_owned())
}

/// The IETF fields (draft-ietf-httpapi-ratelimit-headers-11): `RateLimit-Policy` is a list of
/// policies `"name";q=<quota>;qu="<unit>";w=<window>`, `RateLimit` a list of service limits
/// `"name";r=<remaining>;t=<seconds to reset>`. Each limit joins its policy by name for the
/// quota and its unit (default `requests`); a unit of `tokens` (used by some gateways, not
/// registered by the draft) maps to the tokens resource, others are not ours. When several
/// policies count one resource, the one with the least remaining quota speaks for it, as the
/// draft asks servers to do. `None`: a field is malformed (the draft says to ignore it).
fn ietf_ratelimit<'a>(
    fields: impl Iterator<Item = &'a HeaderValue>,
    policies: &[Item],
) -> Option<RateLimits> {
    let mut out = RateLimits::default();
    for field in fields {
        for item in sf_list(field.to_str().ok()?)? {
            let remaining = item.integer("r")?;
            let reset = match item.param("t") {
                Some(_) => Some(Duration::from_secs(item.integer("t")?)),
                None => None,
            };
            let policy = policies.iter().find(|p| p.id == item.id);
            let unit = policy
                .and_then(|p| p.param("qu"))
                .and_then(Bare::text)
                .unwrap_or("requests");
            let resource = match unit {
                "requests" => Resource::Requests,
                "tokens" => Resource::Tokens,
                _ => continue,
            };
            let slot = out.get_mut(resource);
            if slot.remaining.is_some_and(|r| r <= remaining) {
                continue;
            }
            *slot = Limit {
                limit: policy.and_then(|p| p.integer("q")),
                remaining: Some(remaining),
                reset,
            };
        }
    }
    Some(out)
}

/// A structured-field bare item (RFC 8941 §3.3), as far as these fields use them.
#[derive(Debug, Clone, PartialEq)]
enum Bare {
    Integer(i64),
    Decimal,
    Text(String),
    Bytes,
    Boolean,
}

impl Bare {
    fn text(&self) -> Option<&str> {
        match self {
            Bare::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A list member: its value (a string or token naming the policy) and its parameters.
#[derive(Debug, Clone, PartialEq)]
struct Item {
    id: String,
    params: Vec<(String, Bare)>,
}

impl Item {
    fn param(&self, key: &str) -> Option<&Bare> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A non-negative integer parameter; `None` when absent or of another type.
    fn integer(&self, key: &str) -> Option<u64> {
        match self.param(key)? {
            Bare::Integer(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    }
}

/// Parses an sf-list of items (RFC 8941 §4.2.1), `None` when malformed. Inner lists are not
/// used by these fields and count as malformed.
fn sf_list(text: &str) -> Option<Vec<Item>> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.skip(b' ');
    let mut items = Vec::new();
    if p.done() {
        return Some(items);
    }
    loop {
        let id = match p.bare()? {
            Bare::Text(s) => s,
            _ => return None,
        };
        let mut params = Vec::new();
        while p.peek() == Some(b';') {
            p.i += 1;
            p.skip(b' ');
            let key = p.key()?;
            let value = if p.peek() == Some(b'=') {
                p.i += 1;
                p.bare()?
            } else {
                Bare::Boolean
            };
            params.push((key, value));
        }
        items.push(Item { id, params });
        p.skip_ows();
        if p.done() {
            return Some(items);
        }
        if p.peek() != Some(b',') {
            return None;
        }
        p.i += 1;
        p.skip_ows();
        if p.done() {
            return None;
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn skip(&mut self, c: u8) {
        while self.peek() == Some(c) {
            self.i += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`
    fn key(&mut self) -> Option<String> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_lowercase() || c == b'*' => self.i += 1,
            _ => return None,
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn bare(&mut self) -> Option<Bare> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b':' => {
                self.i += 1;
                while let Some(c) = self.peek() {
                    self.i += 1;
                    if c == b':' {
                        return Some(Bare::Bytes);
                    }
                    if !(c.is_ascii_alphanumeric() || b"+/=".contains(&c)) {
                        return None;
                    }
                }
                None
            }
            b'?' => {
                self.i += 1;
                match self.peek() {
                    Some(b'0' | b'1') => {
                        self.i += 1;
                        Some(Bare::Boolean)
                    }
                    _ => None,
                }
            }
            c if c.is_ascii_alphabetic() || c == b'*' => {
                let start = self.i;
                self.i += 1;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c) {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                Some(Bare::Text(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            _ => None,
        }
    }

    /// sf-integer (at most 15 digits) or sf-decimal.
    fn number(&mut self) -> Option<Bare> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == digits {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            let frac = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            return (self.i > frac && self.i - frac <= 3).then_some(Bare::Decimal);
        }
        if self.i - digits > 15 {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
            .map(Bare::Integer)
    }

    fn string(&mut self) -> Option<Bare> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Some(Bare::Text(out)),
                b'\\' => {
                    let e = self.peek()?;
                    if e != b'"' && e != b'\\' {
                        return None;
                    }
                    self.i += 1;
                    out.push(e as char);
                }
                0x20..=0x7e => out.push(c as char),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn at(text: &str) -> SystemTime {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    const NOW: &str = "2026-11-27T10:15:00Z";

    fn secs(s: f64) -> Option<Duration> {
        Some(Duration::from_secs_f64(s))
    }

    #[test]
    fn openai_family() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "500"),
            ("x-ratelimit-remaining-requests", "499"),
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-limit-tokens", "30000"),
            ("x-ratelimit-remaining-tokens", "29500"),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("x-request-id", "req_abc123"),
        ]);
        let p = read(&h, &[], at(NOW));
        let r = p.ratelimit.get(Resource::Requests);
        assert_eq!(
            (r.limit, r.remaining, r.reset),
            (Some(500), Some(499), secs(0.12))
        );
        let t = p.ratelimit.get(Resource::Tokens);
        assert_eq!(
            (t.limit, t.remaining, t.reset),
            (Some(30000), Some(29500), secs(360.0))
        );
        assert_eq!(p.request_id.as_deref(), Some("req_abc123"));
        assert!(p.malformed.is_empty());
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1s"), secs(1.0));
        assert_eq!(go_duration("6m0s"), secs(360.0));
        assert_eq!(go_duration("1h2m3.5s"), secs(3723.5));
        assert_eq!(go_duration("120ms"), secs(0.12));
        assert_eq!(go_duration("250us"), secs(0.00025));
        assert_eq!(go_duration("0s"), secs(0.0));
        assert_eq!(go_duration("2.5"), secs(2.5));
        for bad in ["", "6x", "-1s", "s", "1.2.3s", "m5", "-3"] {
            assert_eq!(go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn anthropic_family() {
        let h = headers(&[
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "49"),
            ("anthropic-ratelimit-requests-reset", "2026-11-27T10:15:07Z"),
            ("anthropic-ratelimit-tokens-limit", "90000"),
            ("anthropic-ratelimit-tokens-remaining", "80000"),
            (
                "anthropic-ratelimit-tokens-reset",
                "2026-11-27T10:16:00+00:00",
            ),
            ("anthropic-ratelimit-input-tokens-limit", "80000"),
            ("anthropic-ratelimit-input-tokens-remaining", "79000"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2026-11-27T10:15:01.5Z",
            ),
            ("anthropic-ratelimit-output-tokens-limit", "10000"),
            ("anthropic-ratelimit-output-tokens-remaining", "9000"),
            // Already passed: resets now.
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2026-11-27T10:14:00Z",
            ),
            ("request-id", "req_018EeWyXxfu5pfWkrYcMdjWG"),
        ]);
        let p = read(&h, &[], at(NOW));
        let r = p.ratelimit.get(Resource::Requests);
        assert_eq!(
            (r.limit, r.remaining, r.reset),
            (Some(50), Some(49), secs(7.0))
        );
        assert_eq!(p.ratelimit.get(Resource::Tokens).reset, secs(60.0));
        let i = p.ratelimit.get(Resource::InputTokens);
        assert_eq!(
            (i.limit, i.remaining, i.reset),
            (Some(80000), Some(79000), secs(1.5))
        );
        let o = p.ratelimit.get(Resource::OutputTokens);
        assert_eq!(
            (o.limit, o.remaining, o.reset),
            (Some(10000), Some(9000), secs(0.0))
        );
        assert_eq!(
            p.request_id.as_deref(),
            Some("req_018EeWyXxfu5pfWkrYcMdjWG")
        );
        assert!(p.malformed.is_empty());
    }

    #[test]
    fn ietf_fields() {
        let h = headers(&[
            (
                "ratelimit-policy",
                r#""burst";q=100;w=60, "daily";q=1000;w=86400, "tok";q=50000;qu="tokens";w=60"#,
            ),
            ("ratelimit", r#""burst";r=40;t=30, "daily";r=900;t=3600"#),
            ("ratelimit", r#""tok";r=42000;t=12"#),
        ]);
        let p = read(&h, &[], at(NOW));
        // Two request policies: the one with the least remaining speaks.
        let r = p.ratelimit.get(Resource::Requests);
        assert_eq!(
            (r.limit, r.remaining, r.reset),
            (Some(100), Some(40), secs(30.0))
        );
        let t = p.ratelimit.get(Resource::Tokens);
        assert_eq!(
            (t.limit, t.remaining, t.reset),
            (Some(50000), Some(42000), secs(12.0))
        );
        assert!(p.malformed.is_empty());
    }

    #[test]
    fn ietf_tokens_without_a_policy_count_requests() {
        let h = headers(&[("ratelimit", "default;r=7")]);
        let p = read(&h, &[], at(NOW));
        let r = p.ratelimit.get(Resource::Requests);
        assert_eq!((r.limit, r.remaining, r.reset), (None, Some(7), None));
    }

    #[test]
    fn provider_families_win_over_ietf() {
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "3"),
            ("ratelimit", r#""p";r=99;t=5"#),
        ]);
        let p = read(&h, &[], at(NOW));
        let r = p.ratelimit.get(Resource::Requests);
        assert_eq!((r.remaining, r.reset), (Some(3), secs(5.0)));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let p = read(&headers(&[("retry-after", "7")]), &[], at(NOW));
        assert_eq!(p.ratelimit.retry_after, secs(7.0));
        let p = read(
            &headers(&[("retry-after", "Fri, 27 Nov 2026 10:15:20 GMT")]),
            &[],
            at(NOW),
        );
        assert_eq!(p.ratelimit.retry_after, secs(20.0));
        let p = read(
            &headers(&[("retry-after", "Fri, 27 Nov 2026 10:00:00 GMT")]),
            &[],
            at(NOW),
        );
        assert_eq!(p.ratelimit.retry_after, secs(0.0));
    }

    #[test]
    fn malformed_values_are_ignored_and_named() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "lots"),
            ("x-ratelimit-remaining-requests", "-1"),
            ("x-ratelimit-reset-requests", "soon"),
            ("x-ratelimit-limit-tokens", ""),
            ("x-ratelimit-remaining-tokens", "12"),
            ("anthropic-ratelimit-tokens-reset", "tomorrow"),
            ("anthropic-ratelimit-requests-limit", "1e3"),
            ("ratelimit", r#""burst";r=;t"#),
            ("ratelimit-policy", "\"unterminated;q=1"),
            ("retry-after", "-3"),
            ("x-request-id", " "),
        ]);
        let p = read(&h, &[], at(NOW));
        // The one good value survives.
        assert_eq!(p.ratelimit.get(Resource::Tokens).remaining, Some(12));
        assert_eq!(p.ratelimit.get(Resource::Requests), &Limit::default());
        assert_eq!(p.ratelimit.retry_after, None);
        assert_eq!(p.request_id, None);
        let mut malformed = p.malformed.clone();
        malformed.sort();
        assert_eq!(
            malformed,
            [
                "anthropic-ratelimit-requests-limit",
                "anthropic-ratelimit-tokens-reset",
                "ratelimit",
                "ratelimit-policy",
                "retry-after",
                "x-ratelimit-limit-requests",
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
                "x-request-id",
            ]
        );
    }

    #[test]
    fn non_ascii_values_are_malformed_not_a_panic() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        h.insert("x-request-id", HeaderValue::from_bytes(b"id-\xe9").unwrap());
        h.insert(
            "ratelimit",
            HeaderValue::from_bytes(b"\"\xc3\xa9\";r=1").unwrap(),
        );
        let p = read(&h, &[], at(NOW));
        assert!(p.ratelimit.is_empty());
        assert_eq!(p.malformed.len(), 3);
    }

    #[test]
    fn structured_field_edge_cases() {
        assert_eq!(sf_list(""), Some(vec![]));
        assert!(sf_list("a;r=1,").is_none(), "trailing comma");
        assert!(sf_list("(a b);r=1").is_none(), "inner list");
        assert!(
            sf_list("a;r=1234567890123456").is_none(),
            "integer too long"
        );
        assert!(sf_list("\"a\";r=1;pk=:cHsdsRa894==:;x;y=?1;z=1.25").is_some());
        let items = sf_list(r#""a\"b";R=1"#);
        assert!(items.is_none(), "upper-case key");
        let items = sf_list(r#""a\"b";r=1"#).unwrap();
        assert_eq!(items[0].id, "a\"b");
        // A decimal where an integer belongs makes the limit malformed.
        let h = headers(&[("ratelimit", "a;r=1.5")]);
        assert_eq!(read(&h, &[], at(NOW)).malformed, ["ratelimit"]);
    }

    #[test]
    fn request_ids_by_rank_and_captured_headers_in_config_order() {
        let h = headers(&[
            ("cf-ray", "8f1a2b3c4d5e6f70-FRA"),
            ("request-id", "req_anthropic"),
            ("x-served-by", "cache-fra"),
            ("x-model-region", "eu-west"),
            ("x-big", &"v".repeat(1000)),
        ]);
        let capture = [
            "x-model-region".to_owned(),
            "x-served-by".to_owned(),
            "x-big".to_owned(),
        ];
        let p = read(&h, &capture, at(NOW));
        assert_eq!(p.request_id.as_deref(), Some("req_anthropic"));
        assert_eq!(p.captured[0], ("x-model-region".into(), "eu-west".into()));
        assert_eq!(p.captured[1], ("x-served-by".into(), "cache-fra".into()));
        assert_eq!(p.captured[2].1.len(), MAX_CAPTURED_BYTES);
        let p = read(&headers(&[("cf-ray", "abc")]), &[], at(NOW));
        assert_eq!(p.request_id.as_deref(), Some("abc"));
        // Too long to be an id: ignored, and the next header in rank speaks.
        let long = "r".repeat(MAX_REQUEST_ID_BYTES + 1);
        let p = read(
            &headers(&[("x-request-id", &long), ("cf-ray", "abc")]),
            &[],
            at(NOW),
        );
        assert_eq!(p.request_id.as_deref(), Some("abc"));
        assert_eq!(p.malformed, ["x-request-id"]);
    }
}
