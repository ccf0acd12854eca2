//! `streamprobe run` flags that override the file (`-u`, `-X`, `-H`, `-d`, `--protocol`, `-n`,
//! `-p`, `--rate`), applied to each raw target before validation, so an overridden value goes
//! through exactly the checks a value from the file would. Without `-d` and a body in the
//! file, the endpoint's default body applies, as for a file (`validate/request.rs`).
//!
//! Does not: parse the command line (`cli`) or read the body file (`app`).

use super::error::ConfigError;
use super::model::Protocol;
use super::raw::{self, RateValue, RawLegacy, RawTarget, TargetFields, Value};
use super::units::parse_rate;

/// Flag values; `None`/empty means "keep the file's".
#[derive(Debug, Clone, Default)]
pub struct RunOverrides {
    pub url: Option<String>,
    /// The HTTP method (`-X`).
    pub method: Option<String>,
    /// `Name: value` strings, added to (or replacing same-named) headers.
    pub headers: Vec<String>,
    /// A JSON/YAML document (sent as JSON) or any other text (sent as is).
    pub body: Option<String>,
    pub protocol: Option<String>,
    pub total_requests: Option<u32>,
    pub concurrency: Option<u32>,
    /// `2/s`, `120/m` or a bare number per second.
    pub rate: Option<String>,
}

impl RunOverrides {
    /// The one target `-u URL` names when there is no file, as an old-format file with only
    /// `url` would give it; `patch` then applies the other flags.
    pub(super) fn command_line_target(&self) -> Result<RawLegacy, ConfigError> {
        let url = self
            .url
            .clone()
            .ok_or_else(|| ConfigError("nothing to probe: give -c FILE or -u URL".to_owned()))?;
        Ok(RawLegacy {
            url,
            method: None,
            headers: None,
            body: None,
            timeout: None,
            concurrency: None,
            total_requests: None,
            data_source: None,
        })
    }

    /// The target as the flags say it should be.
    pub(super) fn patch(&self, target: &RawTarget) -> Result<RawTarget, ConfigError> {
        let mut t = target.clone();
        if let Some(url) = &self.url {
            t.url = Some(url.clone());
        }
        if let Some(method) = &self.method {
            t.method = Some(method.clone());
        }
        if !self.headers.is_empty() {
            let mut headers = t.headers.take().unwrap_or_default();
            for h in &self.headers {
                let (name, value) = h.split_once(':').ok_or_else(|| {
                    ConfigError(format!(
                        "-H {h:?}: expected 'Name: value', e.g. -H 'Authorization: Bearer ${{API_KEY}}'"
                    ))
                })?;
                let name = name.trim();
                let keys: Vec<Value> = headers
                    .keys()
                    .filter(|k| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
                    .cloned()
                    .collect();
                for k in keys {
                    headers.remove(&k);
                }
                headers.insert(
                    Value::String(name.to_owned()),
                    Value::String(value.trim().to_owned()),
                );
            }
            t.headers = Some(headers);
        }
        if let Some(body) = &self.body {
            t.body = Some(parse_body(body));
        }
        if let Some(p) = &self.protocol {
            t.protocol = Some(p.clone());
        }
        if let Some(n) = self.total_requests {
            t.total_requests = Some(n);
        }
        if let Some(c) = self.concurrency {
            t.concurrency = Some(c);
        }
        if let Some(rate) = &self.rate {
            let per_second = parse_rate(rate).ok_or_else(|| {
                ConfigError(format!(
                    "--rate: expected requests per second or minute like 2/s or 120/m, got {rate:?}"
                ))
            })?;
            t.rate = Some(RateValue(per_second));
        }
        Ok(t)
    }

    /// `-u` names another endpoint than the file's: unless `--protocol` says how to read it,
    /// the file's `protocol` no longer applies and `auto` detects the new URL's dialect. The
    /// file's `extract` belongs to the file's protocol and goes with it (it stays only under an
    /// explicit generic `--protocol sse`/`ndjson`). Applied after `defaults:` were merged in, so
    /// a default protocol does not come back.
    pub(super) fn redetect(&self, fields: &mut TargetFields) {
        let generic = |p: &str| {
            matches!(
                Protocol::parse(p.trim()),
                Some(Protocol::Sse | Protocol::Ndjson)
            )
        };
        match &self.protocol {
            None if self.url.is_some() => {
                fields.protocol = None;
                fields.extract = None;
            }
            Some(p) if !generic(p) => fields.extract = None,
            _ => {}
        }
    }
}

/// `-d` text: a JSON object or array is sent as JSON (so `{{column}}` lands escaped); anything
/// else is sent as text.
fn parse_body(text: &str) -> Value {
    match raw::parse_value(text) {
        Some(v @ (Value::Mapping(_) | Value::Sequence(_))) => v,
        _ => Value::String(text.to_owned()),
    }
}
