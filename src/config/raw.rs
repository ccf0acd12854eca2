//! Raw serde mirror of the config file, `deny_unknown_fields` everywhere; the only serde_yaml and
//! serde_path_to_error user (the web config parses through it too). Scalar syntax (durations,
//! sizes, rates, spelled as `units.rs` says) is parsed here so that serde_path_to_error can name
//! the field; everything about meaning (ranges, cross-field rules, defaults, files, secrets) is
//! `validate/`'s job.
//!
//! Does not: apply defaults, read files or the environment, or decide what a value means.

use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::units::{DURATION_HINT, parse_duration, parse_percentage, parse_rate, parse_size};

pub use serde_yaml::{Mapping, Number, Value};

/// A whole config file in the current (YAML) format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: Option<RawServer>,
    #[serde(default)]
    pub results: Option<RawResults>,
    #[serde(default)]
    pub defaults: Option<RawDefaults>,
    #[serde(default)]
    pub targets: Option<Vec<RawTarget>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub web_config: Option<String>,
    pub enable_admin_api: Option<bool>,
    pub max_in_flight: Option<u32>,
    pub shutdown_grace: Option<DurationValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResults {
    pub dir: Option<String>,
    pub keep_per_target: Option<u32>,
    pub max_age: Option<DurationValue>,
    pub include_text: Option<bool>,
}

/// Histogram boundaries in seconds. `latency`: TTFT, time to headers, duration and phases, a
/// list or a preset name (`otel`, `reasoning`; `validate/` tells them apart); `per_token`:
/// inter-token latency and time per output token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuckets {
    pub latency: Option<Value>,
    pub per_token: Option<Vec<f64>>,
}

/// `{type: csv, file, column, encoding}`, as in the old script.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataSource {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub file: Option<String>,
    pub column: Option<String>,
    pub encoding: Option<String>,
}

/// `{every, jitter}` or `{cron, timezone}`; which combination is valid is checked later.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub every: Option<DurationValue>,
    pub jitter: Option<DurationValue>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtract {
    pub text: Option<String>,
    pub reasoning: Option<String>,
    pub output_tokens: Option<String>,
    pub done: Option<String>,
    pub error: Option<String>,
    pub model: Option<String>,
    pub input_tokens: Option<String>,
    pub cached_input_tokens: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    pub ttft: Option<DurationValue>,
    pub tpot: Option<DurationValue>,
    pub duration: Option<DurationValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub contains: Option<String>,
    pub min_output_tokens: Option<u64>,
}

/// `verdict:` per target (or in `defaults:`), merged field by field: a target's own field wins,
/// then the default's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerdict {
    pub baseline: Option<DurationValue>,
    pub recent: Option<DurationValue>,
    pub min_change: Option<PercentageValue>,
    pub min_samples: Option<u32>,
    pub statistic: Option<String>,
}

/// `tls:` per target (or in `defaults:`): files relative to the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: Option<bool>,
}

/// Declares the target fields once and derives from that list: `RawTarget` (plus `name`),
/// `RawDefaults` (plus `buckets`), and `TargetFields`, the merge of both where each value
/// remembers the field path it came from (so errors point at `defaults.x` or `targets[i].x`).
/// Blocks listed after `;` merge field by field in `validate/` and so stay out of
/// `TargetFields`.
macro_rules! target_fields {
    ($($field:ident: $ty:ty,)* ; $($block:ident: $block_ty:ty,)*) => {
        #[derive(Debug, Default, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawTarget {
            pub name: Option<String>,
            $(pub $field: Option<$ty>,)*
            $(pub $block: Option<$block_ty>,)*
        }

        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawDefaults {
            pub buckets: Option<RawBuckets>,
            $(pub $field: Option<$ty>,)*
            $(pub $block: Option<$block_ty>,)*
        }

        /// One target's fields after `defaults:` were applied; `None` = set in neither.
        #[derive(Debug)]
        pub struct TargetFields {
            $(pub $field: Option<Sourced<$ty>>,)*
        }

        impl RawTarget {
            /// Takes each field from the target, else from `defaults`. `at` is the target's
            /// path (`targets[2]`).
            pub fn merge(&self, defaults: &RawDefaults, at: &str) -> TargetFields {
                TargetFields {
                    $($field: match (&self.$field, &defaults.$field) {
                        (Some(v), _) => Some(Sourced {
                            value: v.clone(),
                            path: join(at, stringify!($field)),
                        }),
                        (None, Some(v)) => Some(Sourced {
                            value: v.clone(),
                            path: format!("defaults.{}", stringify!($field)),
                        }),
                        (None, None) => None,
                    },)*
                }
            }
        }
    };
}

target_fields! {
    url: String,
    method: String,
    headers: Mapping,
    body: Value,
    data_source: RawDataSource,
    protocol: String,
    extract: RawExtract,
    schedule: RawSchedule,
    overlap: String,
    run_on_start: bool,
    concurrency: u32,
    total_requests: u32,
    rate: RateValue,
    warmup_requests: u32,
    timeout: DurationValue,
    first_token_timeout: DurationValue,
    idle_timeout: DurationValue,
    max_response_bytes: SizeValue,
    model: String,
    request_id_header: String,
    fresh_connections: bool,
    cache_bust: String,
    capture_headers: Vec<String>,
    tls: RawTls,
    proxy: String,
    slo: RawSlo,
    expect: RawExpect,
    ;
    verdict: RawVerdict,
}

/// `targets[2]` + `url` → `targets[2].url`; an empty `at` (the old single-target format) → `url`.
pub fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_owned()
    } else {
        format!("{at}.{field}")
    }
}

/// A value plus the field path it was read from.
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    pub value: T,
    pub path: String,
}

/// The old script's JSON file: one target, detected by a top-level `url`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLegacy {
    pub url: String,
    pub method: Option<String>,
    pub headers: Option<Mapping>,
    pub body: Option<Value>,
    pub timeout: Option<DurationValue>,
    pub concurrency: Option<u32>,
    pub total_requests: Option<u32>,
    pub data_source: Option<RawDataSource>,
}

/// The two file formats. Lives for one load, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RawFile {
    Current(RawConfig),
    Legacy(RawLegacy),
}

/// Why the text did not parse into a `RawFile`.
#[derive(Debug)]
pub enum ParseError {
    Empty,
    /// YAML syntax; line and column are 1-based.
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    NotAMapping,
    /// A field-level problem, with its path (`targets[0].timeout`).
    Field {
        path: String,
        message: String,
    },
    /// A key that is not part of the format: the path to it, the key and the valid keys.
    UnknownKey {
        path: String,
        key: String,
        expected: Vec<String>,
    },
}

/// Parses one YAML/JSON value (a `-d` body); `None` when it is not YAML.
pub fn parse_value(text: &str) -> Option<Value> {
    serde_yaml::from_str(text).ok()
}

/// Parses YAML (or JSON) text into the raw mirror.
pub fn parse(text: &str) -> Result<RawFile, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let value: Value = serde_yaml::from_str(text).map_err(syntax_error)?;
    let legacy = match &value {
        Value::Null => return Err(ParseError::Empty),
        Value::Mapping(m) => m.contains_key("url"),
        _ => return Err(ParseError::NotAMapping),
    };
    if legacy {
        from_value(value).map(RawFile::Legacy)
    } else {
        from_value(value).map(RawFile::Current)
    }
}

/// Parses one YAML document into a value, with syntax errors located (for files other than the
/// main config, e.g. the web config).
pub fn parse_yaml_value(text: &str) -> Result<Value, ParseError> {
    serde_yaml::from_str(text).map_err(syntax_error)
}

fn syntax_error(err: serde_yaml::Error) -> ParseError {
    let mut message = err.to_string();
    let (line, column) = match err.location() {
        Some(loc) => {
            // serde_yaml appends " at line L column C"; the location is reported separately.
            if let Some(i) = message.find(" at line ") {
                message.truncate(i);
            }
            (loc.line(), loc.column())
        }
        None => (0, 0),
    };
    ParseError::Syntax {
        line,
        column,
        message,
    }
}

/// Deserializes a parsed value into `T`, failing with the path of the field and serde's own
/// message (for files other than the main config, which word their messages themselves).
pub fn deserialize<T: de::DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value)
        .map_err(|err| (err.path().to_string(), err.inner().to_string()))
}

fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, ParseError> {
    deserialize(value).map_err(|(path, message)| {
        match parse_unknown_field(&message) {
            Some((key, expected)) => ParseError::UnknownKey {
                // The path ends with the unknown key itself; report the mapping that holds it.
                path: parent_path(&path, &key),
                key,
                expected,
            },
            None => ParseError::Field {
                path,
                message: friendlier(&message),
            },
        }
    })
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" message.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((key.to_owned(), expected))
}

fn parent_path(path: &str, key: &str) -> String {
    let parent = path
        .strip_suffix(key)
        .map(|p| p.strip_suffix('.').unwrap_or(p))
        .unwrap_or(path);
    if parent.is_empty() || parent == "." {
        String::new()
    } else {
        parent.to_owned()
    }
}

/// Rewrites serde's "invalid type: X, expected Y" into the config style "expected Y, got X",
/// in words an operator uses.
fn friendlier(message: &str) -> String {
    let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    else {
        return message.to_owned();
    };
    let Some((got, expected)) = rest.split_once(", expected ") else {
        return message.to_owned();
    };
    let got = match got {
        "unit value" => "null".to_owned(),
        "map" => "a mapping".to_owned(),
        "sequence" => "a list".to_owned(),
        _ => match got.split_once(' ') {
            // `string "ten"`, integer `5`, floating point `1.5`, boolean `true`
            Some((_, value)) => value.trim_matches('`').to_owned(),
            None => got.to_owned(),
        },
    };
    let expected = match expected {
        "u32" | "u64" => "a whole number",
        "f64" => "a number",
        "a boolean" => "true or false",
        "a string" => "text",
        "a sequence" => "a list",
        "a YAML mapping" => "a mapping of key: value",
        e if e.starts_with("struct ") => "a mapping of key: value",
        e => e,
    };
    format!("expected {expected}, got {got}")
}

/// A duration: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"30d"`, combinations like `"1m30s"`, or a
/// bare number of seconds (int or float, as the old JSON files' `"timeout": 300`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationValue(pub Duration);

/// Bytes: `"16MiB"`, `"1KB"`, `"512"`, or a bare number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeValue(pub u64);

/// Requests per second: `"2/s"`, `"120/m"`, `"30/h"`, or a bare number per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateValue(pub f64);

/// A relative change: `"5%"` or a fraction such as `0.05` (a bare number above 1 is ambiguous).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentageValue(pub f64);

/// Shared visitor body: a scalar given as a string or a number, parsed by `parse`.
struct ScalarVisitor<T> {
    what: &'static str,
    hint: &'static str,
    parse: fn(&str) -> Option<T>,
}

impl<T> ScalarVisitor<T> {
    fn bad<E: de::Error>(&self, got: &str) -> E {
        E::custom(format!("invalid {}, got {got}; {}", self.what, self.hint))
    }
}

impl<T> Visitor<'_> for ScalarVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a {}", self.what)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).ok_or_else(|| self.bad(&format!("{v:?}")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.parse)(&v.to_string()).ok_or_else(|| self.bad(&v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        (self.parse)(&v.to_string()).ok_or_else(|| self.bad(&v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        (self.parse)(&v.to_string()).ok_or_else(|| self.bad(&v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        Err(self.bad(&v.to_string()))
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor {
            what: "duration",
            hint: DURATION_HINT,
            parse: parse_duration,
        })
        .map(DurationValue)
    }
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor {
            what: "size",
            hint: "use a whole number of bytes or a unit: 512KiB, 16MiB, 1GB",
            parse: parse_size,
        })
        .map(SizeValue)
    }
}

impl<'de> Deserialize<'de> for PercentageValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor {
            what: "percentage",
            hint: "use a percentage such as 5% or a fraction between 0 and 1 such as 0.05",
            parse: |text| parse_percentage(text).ok(),
        })
        .map(PercentageValue)
    }
}

impl<'de> Deserialize<'de> for RateValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor {
            what: "rate",
            hint: "use requests per second, minute or hour above 0: \"2/s\", \"120/m\", \"30/h\" or a bare number per second",
            parse: parse_rate,
        })
        .map(RateValue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_read_like_config_errors() {
        assert_eq!(
            friendlier("invalid type: string \"ten\", expected u32"),
            "expected a whole number, got \"ten\""
        );
        assert_eq!(
            friendlier("invalid value: integer `-1`, expected u32"),
            "expected a whole number, got -1"
        );
        assert_eq!(
            friendlier("invalid type: string \"5m\", expected struct RawSchedule"),
            "expected a mapping of key: value, got \"5m\""
        );
        assert_eq!(
            friendlier("invalid type: unit value, expected a string"),
            "expected text, got null"
        );
        assert_eq!(friendlier("something else"), "something else");
    }

    #[test]
    fn bare_numbers_are_seconds() {
        let v: DurationValue = serde_yaml::from_str("300").unwrap();
        assert_eq!(v.0, Duration::from_secs(300));
        let v: DurationValue = serde_yaml::from_str("0.5").unwrap();
        assert_eq!(v.0, Duration::from_millis(500));
    }
}
