//! Raw → validated conversion, run once per load (`check`, `run`, `serve` and reload alike):
//! defaults, range and cross-field checks, secrets, data sources and template compilation.
//! Every message names the file, the field path, the bad value and the fix, in lowercase
//! without a trailing period.
//!
//! Does not: parse YAML syntax (`raw.rs`), or put a secret value in any message.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::describe::format_duration;
use super::overrides::RunOverrides;
use super::raw::{
    self, DURATION_HINT, DurationValue, Mapping, ParseError, RawBuckets, RawConfig, RawDataSource,
    RawDefaults, RawExpect, RawExtract, RawFile, RawLegacy, RawResults, RawSchedule, RawServer,
    RawSlo, RawTarget, Sourced, TargetFields, Value, join,
};
use super::redact::{redact_url, redact_userinfo};
use super::schedule::parse_cron;
use super::secret::{self, Env};
use super::tls::{self, UrlFacts};
use super::{
    Body, Buckets, Config, Expect, Extract, Header, Overlap, Protocol, Proxy, Results, Schedule,
    Server, Slo, Target,
};
use crate::dataset::{Dataset, DatasetError, Piece, Template, TemplateBuilder, io_message, scan};

/// A config problem: names the file, the field path, the bad value and the fix.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(pub String);

/// One line, always: a key, header name or path from the file may hold a line break or other
/// control characters, which are shown escaped (`\n`) instead of splitting the message.
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_fmt(format_args!("{c}"))?;
            }
        }
        Ok(())
    }
}

/// Loads and validates a config file (YAML, JSON, or the old script's JSON format), reading
/// `${VAR}` references from the process environment.
pub fn load(path: &Path) -> std::result::Result<Config, ConfigError> {
    load_with_env(path, &Env::Process)
}

/// As `load`, from text; `path` names the file in messages and anchors relative paths.
pub fn load_str(text: &str, path: &Path) -> std::result::Result<Config, ConfigError> {
    load_str_with_env(text, path, &Env::Process)
}

/// As `load`, with `${VAR}` references read from `env`.
pub fn load_with_env(path: &Path, env: &Env) -> std::result::Result<Config, ConfigError> {
    let text = read_text(path)?;
    load_str_with_env(&text, path, env)
}

fn read_text(path: &Path) -> std::result::Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError(format!(
            "{}: cannot read the config file: {}",
            path.display(),
            io_message(&e)
        ))
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError(format!(
            "{}: is not valid UTF-8; save the config file as UTF-8",
            path.display()
        ))
    })?;
    Ok(text)
}

/// As `load_str`, with `${VAR}` references read from `env`.
pub fn load_str_with_env(
    text: &str,
    path: &Path,
    env: &Env,
) -> std::result::Result<Config, ConfigError> {
    let file = path.display();
    let raw = raw::parse(text).map_err(|err| ConfigError(parse_message(&file.to_string(), err)))?;
    load_raw(raw, path, env, None)
}

/// `load` with `run`'s flag overrides applied to each target.
pub(super) fn load_with_overrides(
    path: &Path,
    overrides: &RunOverrides,
) -> std::result::Result<Config, ConfigError> {
    let text = read_text(path)?;
    let file = path.display();
    let raw =
        raw::parse(&text).map_err(|err| ConfigError(parse_message(&file.to_string(), err)))?;
    load_raw(raw, path, &Env::Process, Some(overrides))
}

/// An old-format target built from flags (`run -u URL` without a file).
pub(super) fn load_legacy_with_overrides(
    raw: RawLegacy,
    path: &Path,
    overrides: &RunOverrides,
) -> std::result::Result<Config, ConfigError> {
    load_raw(RawFile::Legacy(raw), path, &Env::Process, Some(overrides))
}

fn load_raw(
    raw: RawFile,
    path: &Path,
    env: &Env,
    overrides: Option<&RunOverrides>,
) -> std::result::Result<Config, ConfigError> {
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let loader = Loader {
        path: path.to_path_buf(),
        base_dir,
        env,
        overrides,
        datasets: RefCell::default(),
    };
    let file = path.display();
    let result = match raw {
        RawFile::Current(raw) => loader.config(raw),
        RawFile::Legacy(raw) => loader.legacy(raw),
    };
    result.map_err(|p| {
        ConfigError(if p.path.is_empty() {
            format!("{file}: {}", p.message)
        } else {
            format!("{file}: {}: {}", p.path, p.message)
        })
    })
}

fn parse_message(file: &str, err: ParseError) -> String {
    match err {
        ParseError::Empty => {
            format!("{file}: the file is empty; add a targets: list (see config/streamprobe.yaml)")
        }
        ParseError::Syntax {
            line,
            column,
            message,
        } => format!("{file}: invalid YAML at line {line}, column {column}: {message}"),
        ParseError::NotAMapping => format!(
            "{file}: the top level must be a mapping (server:, results:, defaults:, targets:); \
             see config/streamprobe.yaml"
        ),
        ParseError::Field { path, message } if path.is_empty() || path == "." => {
            format!("{file}: {message}")
        }
        ParseError::Field { path, message } => format!("{file}: {path}: {message}"),
        ParseError::UnknownKey {
            path,
            key,
            expected,
        } => {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key == "buckets" && path.starts_with("targets") {
                return format!(
                    "{file}: {at}: unknown key; buckets are per metric family, set them under defaults.buckets"
                );
            }
            if key == "name" && path == "defaults" {
                return format!(
                    "{file}: {at}: unknown key; every target needs its own name, set it under targets"
                );
            }
            match suggest(&key, expected.iter().map(String::as_str)) {
                Some(near) => format!("{file}: {at}: unknown key; did you mean {near}?"),
                None => format!(
                    "{file}: {at}: unknown key; valid keys here are {}",
                    expected.join(", ")
                ),
            }
        }
    }
}

/// The closest candidate, when it is close enough to be a likely typo.
fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A problem at a field path; the file name is added once, at the top.
#[derive(Debug)]
pub(super) struct Problem {
    path: String,
    message: String,
}

type Result<T> = std::result::Result<T, Problem>;

pub(super) fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

type DatasetKey = (PathBuf, &'static str, Option<String>);

const MAX_CONCURRENCY: u32 = 10_000;
const NAME_CHARS: &str = "letters, digits, '_', '.' and '-'";

struct Loader<'a> {
    path: PathBuf,
    env: &'a Env,
    /// `run` flags applied to every target before validation.
    overrides: Option<&'a RunOverrides>,
    /// Data sources read so far, by (file, encoding, column).
    datasets: RefCell<HashMap<DatasetKey, Arc<Dataset>>>,
    /// The config file's directory: relative paths inside the file are relative to it.
    base_dir: PathBuf,
}

impl Loader<'_> {
    fn config(&self, raw: RawConfig) -> Result<Config> {
        let server = server(raw.server)?;
        let results = self.results(raw.results)?;
        let defaults = raw.defaults.unwrap_or_default();
        let buckets = buckets(defaults.buckets.as_ref())?;
        let raw_targets = raw.targets.unwrap_or_default();
        if raw_targets.is_empty() {
            return Err(problem(
                "targets",
                "no targets; add at least one target with a name and a url",
            ));
        }
        let mut targets = Vec::with_capacity(raw_targets.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, raw_target) in raw_targets.iter().enumerate() {
            let at = format!("targets[{i}]");
            let name = target_name(raw_target, &at)?;
            if let Some(first) = seen.insert(name.clone(), i) {
                return Err(problem(
                    join(&at, "name"),
                    format!(
                        "duplicate target name, got {name:?}; targets[{first}] has it already, names must be unique"
                    ),
                ));
            }
            let target = self
                .target(name, raw_target, &defaults, &at)
                .map_err(|mut p| {
                    // A default is checked where it is used; say which target used it.
                    if p.path.starts_with("defaults.") {
                        p.path = format!("{} (applied to {at})", p.path);
                    }
                    p
                })?;
            targets.push(target);
        }
        Ok(Config {
            path: self.path.clone(),
            server,
            results,
            buckets,
            targets,
        })
    }

    /// The old script's format: one target, named after the URL's host. It only had a
    /// whole-request timeout, so the first-token and idle timeouts follow it to keep old files
    /// behaving as before.
    fn legacy(&self, raw: RawLegacy) -> Result<Config> {
        let name = url::Url::parse(&raw.url)
            .ok()
            .and_then(|u| u.host_str().map(sanitize_name))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "target".to_owned());
        let target = RawTarget {
            name: Some(name.clone()),
            url: Some(raw.url),
            method: raw.method,
            headers: raw.headers,
            body: raw.body,
            data_source: raw.data_source,
            concurrency: raw.concurrency,
            total_requests: raw.total_requests,
            timeout: raw.timeout,
            ..RawTarget::default()
        };
        let mut target = self.target(name, &target, &RawDefaults::default(), "")?;
        target.first_token_timeout = target.timeout;
        target.idle_timeout = target.timeout;
        Ok(Config {
            path: self.path.clone(),
            server: server(None)?,
            results: self.results(None)?,
            buckets: Buckets::default(),
            targets: vec![target],
        })
    }

    fn results(&self, raw: Option<RawResults>) -> Result<Results> {
        let raw = raw.unwrap_or_default();
        let dir = match raw.dir {
            Some(dir) if dir.trim().is_empty() => {
                return Err(problem(
                    "results.dir",
                    "is empty; name a directory for result files",
                ));
            }
            Some(dir) => self.base_dir.join(dir),
            None => PathBuf::from("/var/lib/streamprobe/results"),
        };
        let keep_per_target = raw.keep_per_target.unwrap_or(500);
        if keep_per_target == 0 {
            return Err(problem(
                "results.keep_per_target",
                "must be at least 1, got 0; it is how many result files to keep per target",
            ));
        }
        let max_age = match raw.max_age {
            Some(DurationValue(d)) if d.is_zero() => {
                return Err(problem(
                    "results.max_age",
                    format!("must be above 0, got 0s; {DURATION_HINT}"),
                ));
            }
            Some(DurationValue(d)) => d,
            None => Duration::from_secs(30 * 86400),
        };
        Ok(Results {
            dir,
            keep_per_target,
            max_age,
            include_text: raw.include_text.unwrap_or(false),
        })
    }

    fn target(
        &self,
        name: String,
        raw: &RawTarget,
        defaults: &RawDefaults,
        at: &str,
    ) -> Result<Target> {
        let patched;
        let raw = match self.overrides {
            Some(o) => {
                patched = o.patch(raw).map_err(|e| problem("", e.0))?;
                &patched
            }
            None => raw,
        };
        let f: TargetFields = raw.merge(defaults, at);
        // The data source comes first: placeholders in url, headers and body refer to it.
        let dataset = f
            .data_source
            .as_ref()
            .map(|s| self.dataset(s))
            .transpose()?;
        let data = dataset.as_deref();

        let (url, url_facts) = self.url(f.url.as_ref(), at, data)?;
        let tls = match &f.tls {
            Some(raw) => tls::tls(raw, &url_facts, &self.base_dir)?,
            None => None,
        };
        let proxy = f.proxy.as_ref().map(|p| self.proxy(p)).transpose()?;
        if let (Some(proxy), Some(name)) =
            (&f.proxy, tls.as_ref().and_then(|t| t.server_name.as_ref()))
        {
            return Err(problem(
                &proxy.path,
                format!(
                    "cannot be combined with tls.server_name ({:?}): through a proxy, the proxy resolves the host name; remove one of them",
                    name.name
                ),
            ));
        }

        // Target headers replace same-named default headers; the others are inherited.
        let mut headers = Vec::new();
        if let (Some(_), Some(default_headers)) = (&raw.headers, &defaults.headers) {
            headers = self.headers(default_headers, "defaults.headers", data)?;
        }
        if let Some(own) = &f.headers {
            let own = self.headers(&own.value, &own.path, data)?;
            headers.retain(|h: &Header| !own.iter().any(|o| o.name.eq_ignore_ascii_case(&h.name)));
            headers.extend(own);
        }

        let body = match &f.body {
            None => None,
            Some(Sourced {
                value: Value::Null, ..
            }) => None,
            Some(Sourced {
                value: Value::String(text),
                path,
            }) => Some(Body::Text(self.string_template(text, path, data, false)?)),
            Some(Sourced { value, path }) => {
                let mut builder = TemplateBuilder::new();
                self.json(value, path, data, &mut builder)?;
                Some(Body::Json(builder.build()))
            }
        };
        if matches!(body, Some(Body::Json(_)))
            && !headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("content-type"))
        {
            headers.push(Header {
                name: "Content-Type".to_owned(),
                value: Template::literal("application/json"),
            });
        }

        let method = match &f.method {
            Some(m) => {
                let upper = m.value.trim().to_ascii_uppercase();
                if upper.is_empty() || !upper.bytes().all(is_token_byte) {
                    return Err(problem(
                        &m.path,
                        format!("not an HTTP method, got {:?}; use GET, POST, ...", m.value),
                    ));
                }
                upper
            }
            None if body.is_some() => "POST".to_owned(),
            None => "GET".to_owned(),
        };

        let protocol = match &f.protocol {
            Some(p) => parse_protocol(p)?,
            None => Protocol::Auto,
        };
        let extract = match &f.extract {
            Some(e) => Some(extract(e, protocol, f.protocol.as_ref())?),
            None => None,
        };
        let schedule = f.schedule.as_ref().map(schedule).transpose()?;
        let overlap = match &f.overlap {
            None => Overlap::Skip,
            Some(o) => match o.value.as_str() {
                "skip" => Overlap::Skip,
                "queue" => Overlap::Queue,
                other => {
                    return Err(problem(
                        &o.path,
                        format!("unknown overlap policy, got {other:?}; use skip or queue"),
                    ));
                }
            },
        };

        let concurrency = match &f.concurrency {
            Some(c) if !(1..=MAX_CONCURRENCY).contains(&c.value) => {
                return Err(problem(
                    &c.path,
                    format!("must be between 1 and {MAX_CONCURRENCY}, got {}", c.value),
                ));
            }
            Some(c) => c.value,
            None => 10,
        };
        let total_requests = match &f.total_requests {
            Some(n) if n.value == 0 => {
                return Err(problem(
                    &n.path,
                    "must be at least 1, got 0; it is the number of requests per burst",
                ));
            }
            Some(n) => n.value,
            None => 100,
        };

        let timeout = positive_duration(f.timeout.as_ref())?.unwrap_or(Duration::from_secs(300));
        let first_token_timeout = bounded_timeout(
            f.first_token_timeout.as_ref(),
            Duration::from_secs(60),
            timeout,
            f.timeout.as_ref(),
        )?;
        let idle_timeout = bounded_timeout(
            f.idle_timeout.as_ref(),
            Duration::from_secs(30),
            timeout,
            f.timeout.as_ref(),
        )?;

        let max_response_bytes = match &f.max_response_bytes {
            Some(s) if s.value.0 == 0 => {
                return Err(problem(
                    &s.path,
                    "must be above 0, got 0; use a size such as 16MiB",
                ));
            }
            Some(s) => s.value.0,
            None => 16 << 20,
        };

        let model = match &f.model {
            Some(m) if m.value.trim().is_empty() => {
                return Err(problem(&m.path, "is empty; remove it or name the model"));
            }
            Some(m) => Some(m.value.clone()),
            None => f.body.as_ref().and_then(|b| body_model(&b.value)),
        };

        let request_id_header = match &f.request_id_header {
            Some(h) if h.value.is_empty() || !h.value.bytes().all(is_token_byte) => {
                return Err(problem(
                    &h.path,
                    format!(
                        "not a valid header name, got {:?}; use e.g. X-Request-Id",
                        h.value
                    ),
                ));
            }
            Some(h) => Some(h.value.clone()),
            None => None,
        };

        Ok(Target {
            name,
            url,
            method,
            headers,
            body,
            data: dataset.clone(),
            protocol,
            extract,
            schedule,
            overlap,
            run_on_start: f.run_on_start.is_some_and(|s| s.value),
            concurrency: nonzero(concurrency),
            total_requests: nonzero(total_requests),
            rate: f.rate.map(|r| r.value.0),
            warmup_requests: f.warmup_requests.map_or(0, |w| w.value),
            timeout,
            first_token_timeout,
            idle_timeout,
            max_response_bytes,
            model,
            request_id_header,
            fresh_connections: f.fresh_connections.is_some_and(|s| s.value),
            tls,
            proxy,
            slo: f.slo.as_ref().map(slo).transpose()?.unwrap_or_default(),
            expect: f
                .expect
                .as_ref()
                .map(expect)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// Reads a data source; targets sharing one (e.g. from `defaults:`) share the rows.
    fn dataset(&self, source: &Sourced<RawDataSource>) -> Result<Arc<Dataset>> {
        let at = &source.path;
        let raw = &source.value;
        if let Some(kind) = &raw.kind
            && kind != "csv"
        {
            return Err(problem(
                join(at, "type"),
                format!("unsupported data source type, got {kind:?}; use csv"),
            ));
        }
        let Some(file) = raw.file.as_deref().filter(|f| !f.trim().is_empty()) else {
            return Err(problem(
                join(at, "file"),
                "is required; name the CSV file (relative to the config file)",
            ));
        };
        let label = raw.encoding.as_deref().unwrap_or("utf-8");
        let Some(encoding) = Dataset::encoding_for_label(label) else {
            return Err(problem(
                join(at, "encoding"),
                format!(
                    "unknown encoding, got {label:?}; use a WHATWG label such as utf-8, gbk, gb18030, big5 or shift_jis"
                ),
            ));
        };
        let column = raw.column.as_deref().map(str::trim);
        let csv_path = self.base_dir.join(file);
        let key = (csv_path.clone(), encoding.name(), column.map(str::to_owned));
        if let Some(data) = self.datasets.borrow().get(&key) {
            return Ok(Arc::clone(data));
        }
        let data =
            Dataset::from_csv_file(&csv_path, encoding, column).map_err(|err| match err {
                DatasetError::NoColumn { column, available } => problem(
                    join(at, "column"),
                    format!(
                        "no such column in {}, got {column:?}; the columns are: {available}",
                        csv_path.display()
                    ),
                ),
                DatasetError::Read(why) => problem(
                    join(at, "file"),
                    format!(
                        "cannot read {}: {why}; the path is relative to the config file",
                        csv_path.display()
                    ),
                ),
                err => problem(join(at, "file"), format!("{file}: {err}")),
            })?;
        let data = Arc::new(data);
        self.datasets.borrow_mut().insert(key, Arc::clone(&data));
        Ok(data)
    }

    fn url(
        &self,
        raw: Option<&Sourced<String>>,
        at: &str,
        data: Option<&Dataset>,
    ) -> Result<(Template, UrlFacts)> {
        let Some(raw) = raw else {
            return Err(problem(
                join(at, "url"),
                "is required; give the endpoint, e.g. url: https://api.openai.com/v1/chat/completions",
            ));
        };
        let template = self.string_template(&raw.value, &raw.path, data, false)?;
        // Check the shape with placeholders filled in by a stand-in value; the message shows
        // the redacted form so a secret in a query string never leaks.
        let columns = data.map_or(0, |d| d.columns().len());
        let sample = vec!["x".to_owned(); columns];
        let shown = template.redacted(data.map_or(&[], |d| d.columns()));
        let fix = "use an absolute http:// or https:// URL";
        let parsed = url::Url::parse(&template.render_to_string(Some(&sample))).map_err(|e| {
            problem(
                &raw.path,
                format!("not a valid URL ({e}), got {shown:?}; {fix}"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(problem(
                &raw.path,
                format!("scheme must be http or https, got {shown:?}; {fix}"),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(problem(
                &raw.path,
                format!("has no host, got {shown:?}; {fix}"),
            ));
        }
        // The host is fixed when a second stand-in value leaves it unchanged.
        let other = vec!["y".to_owned(); columns];
        let other_host = url::Url::parse(&template.render_to_string(Some(&other)))
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        let fixed_host = parsed
            .host_str()
            .filter(|h| other_host.as_deref() == Some(*h))
            .map(str::to_owned);
        let facts = UrlFacts {
            scheme: parsed.scheme().to_owned(),
            fixed_host,
            shown: redact_url(&redact_userinfo(&shown)),
        };
        Ok((template, facts))
    }

    /// A target's own proxy: one per target, so no placeholders; secrets are fine.
    fn proxy(&self, raw: &Sourced<String>) -> Result<Proxy> {
        if scan(&raw.value)
            .iter()
            .any(|p| matches!(p, Piece::Placeholder(_)))
        {
            return Err(problem(
                &raw.path,
                "cannot hold {{placeholders}}, one proxy serves the whole target; use a fixed URL (secrets as ${VAR} are fine)",
            ));
        }
        let template = self.string_template(&raw.value, &raw.path, None, false)?;
        tls::proxy(&template, &raw.path)
    }

    fn headers(&self, map: &Mapping, at: &str, data: Option<&Dataset>) -> Result<Vec<Header>> {
        let mut headers = Vec::with_capacity(map.len());
        for (key, value) in map {
            let Value::String(name) = key else {
                return Err(problem(
                    at,
                    format!("header names must be text, got {}", scalar_text(key)),
                ));
            };
            let path = format!("{at}.{name}");
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(problem(
                    &path,
                    format!("not a valid header name, got {name:?}; use letters, digits and '-'"),
                ));
            }
            let value = match value {
                Value::String(s) => {
                    if s.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
                        return Err(problem(
                            &path,
                            "header values cannot contain line breaks; put the value on one line",
                        ));
                    }
                    self.string_template(s, &path, data, false)?
                }
                Value::Number(_) | Value::Bool(_) => Template::literal(scalar_text(value)),
                _ => {
                    return Err(problem(
                        &path,
                        "header values must be text; quote the value",
                    ));
                }
            };
            headers.push(Header {
                name: name.clone(),
                value,
            });
        }
        Ok(headers)
    }

    fn string_template(
        &self,
        text: &str,
        path: &str,
        data: Option<&Dataset>,
        json: bool,
    ) -> Result<Template> {
        let mut builder = TemplateBuilder::new();
        self.string_parts(text, path, data, json, &mut builder)?;
        Ok(builder.build())
    }

    /// Compiles one config string: text as is (JSON-escaped when `json`), `{{column}}` to a
    /// column part, `${...}` to a resolved secret.
    fn string_parts(
        &self,
        text: &str,
        path: &str,
        data: Option<&Dataset>,
        json: bool,
        builder: &mut TemplateBuilder,
    ) -> Result<()> {
        for piece in scan(text) {
            match piece {
                Piece::Text(t) if json => builder.literal(&json_string_inside(t)),
                Piece::Text(t) => builder.literal(t),
                Piece::Placeholder(name) => builder.column(column_index(name, path, data)?, json),
                Piece::Reference(reference) => {
                    let secret = secret::resolve(reference, &self.base_dir, self.env)
                        .map_err(|e| problem(path, e.to_string()))?;
                    builder.secret(secret, json);
                }
            }
        }
        Ok(())
    }

    /// Compiles a YAML body into JSON text; string values may hold placeholders and secrets.
    fn json(
        &self,
        value: &Value,
        path: &str,
        data: Option<&Dataset>,
        out: &mut TemplateBuilder,
    ) -> Result<()> {
        match value {
            Value::Null => out.literal("null"),
            Value::Bool(b) => out.literal(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                let json = if let Some(i) = n.as_i64() {
                    serde_json::Number::from(i)
                } else if let Some(u) = n.as_u64() {
                    serde_json::Number::from(u)
                } else {
                    n.as_f64()
                        .and_then(serde_json::Number::from_f64)
                        .ok_or_else(|| {
                            problem(
                                path,
                                format!("JSON has no such number, got {n}; use a finite number"),
                            )
                        })?
                };
                out.literal(&json.to_string());
            }
            Value::String(s) => {
                out.literal("\"");
                self.string_parts(s, path, data, true, out)?;
                out.literal("\"");
            }
            Value::Sequence(items) => {
                out.literal("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.literal(",");
                    }
                    self.json(item, &format!("{path}[{i}]"), data, out)?;
                }
                out.literal("]");
            }
            Value::Mapping(map) => {
                out.literal("{");
                for (i, (key, item)) in map.iter().enumerate() {
                    let key = match key {
                        Value::String(s) => s.clone(),
                        Value::Number(_) | Value::Bool(_) => scalar_text(key),
                        _ => {
                            return Err(problem(
                                path,
                                "JSON object keys must be text; quote the key",
                            ));
                        }
                    };
                    if i > 0 {
                        out.literal(",");
                    }
                    out.literal(&serde_json::Value::String(key.clone()).to_string());
                    out.literal(":");
                    self.json(item, &format!("{path}.{key}"), data, out)?;
                }
                out.literal("}");
            }
            Value::Tagged(tagged) => {
                return Err(problem(
                    path,
                    format!(
                        "YAML tags are not supported in a body, got {}; remove the tag",
                        tagged.tag
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn target_name(raw: &RawTarget, at: &str) -> Result<String> {
    let path = join(at, "name");
    let Some(name) = &raw.name else {
        return Err(problem(
            path,
            format!("is required; give each target a unique name of {NAME_CHARS}"),
        ));
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(problem(
            path,
            format!(
                "must match [A-Za-z0-9_.-]+, got {name:?}; use only {NAME_CHARS} (it becomes the target label)"
            ),
        ));
    }
    Ok(name.clone())
}

/// A host name as a target name: characters outside `[A-Za-z0-9_.-]` become `_`.
fn sanitize_name(host: &str) -> String {
    host.trim_matches(['[', ']'])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn server(raw: Option<RawServer>) -> Result<Server> {
    let raw = raw.unwrap_or_default();
    let listen = match raw.listen {
        Some(text) => text.trim().parse::<SocketAddr>().map_err(|_| {
            problem(
                "server.listen",
                format!(
                    "not an address and port, got {text:?}; use e.g. 127.0.0.1:10061 or 0.0.0.0:10061"
                ),
            )
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], 10061)),
    };
    let max_in_flight = raw.max_in_flight.unwrap_or(1000);
    if max_in_flight == 0 {
        return Err(problem(
            "server.max_in_flight",
            "must be at least 1, got 0; it caps requests in flight across all targets",
        ));
    }
    Ok(Server {
        listen,
        web_config: raw.web_config.map(PathBuf::from),
        enable_admin_api: raw.enable_admin_api.unwrap_or(false),
        max_in_flight: nonzero(max_in_flight),
        shutdown_grace: raw.shutdown_grace.map_or(Duration::from_secs(30), |d| d.0),
    })
}

fn buckets(raw: Option<&RawBuckets>) -> Result<Buckets> {
    let mut buckets = Buckets::default();
    let Some(raw) = raw else {
        return Ok(buckets);
    };
    for (list, field, target) in [
        (&raw.latency, "latency", &mut buckets.latency),
        (&raw.per_token, "per_token", &mut buckets.token),
    ] {
        let Some(list) = list else { continue };
        let path = format!("defaults.buckets.{field}");
        if list.is_empty() {
            return Err(problem(path, "is empty; list bucket boundaries in seconds"));
        }
        if let Some(bad) = list.iter().find(|b| !b.is_finite() || **b <= 0.0) {
            return Err(problem(
                path,
                format!("boundaries must be positive seconds, got {bad}"),
            ));
        }
        if let Some(w) = list.windows(2).find(|w| w[0] >= w[1]) {
            return Err(problem(
                path,
                format!(
                    "must be strictly increasing, got {} after {}; sort the boundaries and drop duplicates",
                    w[1], w[0]
                ),
            ));
        }
        *target = list.clone();
    }
    Ok(buckets)
}

fn parse_protocol(raw: &Sourced<String>) -> Result<Protocol> {
    Protocol::parse(raw.value.trim()).ok_or_else(|| {
        let names: Vec<&str> = Protocol::ALL.iter().map(|p| p.as_str()).collect();
        let hint = match suggest(&raw.value, names.iter().copied()) {
            Some(near) => format!("did you mean {near}? "),
            None => String::new(),
        };
        problem(
            &raw.path,
            format!(
                "unknown protocol, got {:?}; {hint}use one of {}",
                raw.value,
                names.join(", ")
            ),
        )
    })
}

fn extract(
    raw: &Sourced<RawExtract>,
    protocol: Protocol,
    protocol_field: Option<&Sourced<String>>,
) -> Result<Extract> {
    if !matches!(protocol, Protocol::Sse | Protocol::Ndjson) {
        let at = protocol_field.map_or("protocol", |p| p.path.as_str());
        return Err(problem(
            &raw.path,
            format!(
                "only applies to protocol sse or ndjson, got protocol {protocol} ({at}); set protocol: sse or ndjson, or remove extract"
            ),
        ));
    }
    let e = &raw.value;
    for (field, pointer) in [
        ("text", &e.text),
        ("reasoning", &e.reasoning),
        ("output_tokens", &e.output_tokens),
        ("done", &e.done),
        ("error", &e.error),
        ("model", &e.model),
        ("input_tokens", &e.input_tokens),
        ("cached_input_tokens", &e.cached_input_tokens),
    ] {
        if let Some(p) = pointer
            && !p.is_empty()
            && !p.starts_with('/')
        {
            return Err(problem(
                join(&raw.path, field),
                format!("not a JSON pointer, got {p:?}; pointers start with '/', e.g. /content"),
            ));
        }
    }
    Ok(Extract {
        text: e.text.clone(),
        reasoning: e.reasoning.clone(),
        output_tokens: e.output_tokens.clone(),
        done: e.done.clone(),
        error: e.error.clone(),
        model: e.model.clone(),
        input_tokens: e.input_tokens.clone(),
        cached_input_tokens: e.cached_input_tokens.clone(),
    })
}

fn schedule(raw: &Sourced<RawSchedule>) -> Result<Schedule> {
    let at = &raw.path;
    let s = &raw.value;
    match (&s.every, &s.cron) {
        (Some(_), Some(_)) => Err(problem(at, "both every and cron are set; use one of them")),
        (None, None) => Err(problem(
            at,
            "needs every or cron, e.g. {every: 5m} or {cron: \"0 */10 * * * *\"}",
        )),
        (Some(DurationValue(every)), None) => {
            if let Some(tz) = &s.timezone {
                return Err(problem(
                    join(at, "timezone"),
                    format!("only applies to cron, got {tz:?}; remove it"),
                ));
            }
            if every.is_zero() {
                return Err(problem(
                    join(at, "every"),
                    format!("must be above 0, got 0s; {DURATION_HINT}"),
                ));
            }
            let jitter = s.jitter.map_or(Duration::ZERO, |j| j.0);
            if jitter >= *every {
                return Err(problem(
                    join(at, "jitter"),
                    format!(
                        "must be less than every ({}), got {}; lower it",
                        format_duration(*every),
                        format_duration(jitter)
                    ),
                ));
            }
            Ok(Schedule::Every {
                every: *every,
                jitter,
            })
        }
        (None, Some(expr)) => {
            if s.jitter.is_some() {
                return Err(problem(
                    join(at, "jitter"),
                    "only applies to every; remove it or use every",
                ));
            }
            let cron = parse_cron(expr).map_err(|why| {
                problem(
                    join(at, "cron"),
                    format!(
                        "invalid cron expression ({why}), got {expr:?}; use 6 fields with seconds (\"0 */10 * * * *\") or 5 without"
                    ),
                )
            })?;
            let timezone = match &s.timezone {
                None => chrono_tz::Tz::UTC,
                Some(tz) => tz.trim().parse().map_err(|_| {
                    problem(
                        join(at, "timezone"),
                        format!("unknown time zone, got {tz:?}; use an IANA name such as UTC or Europe/Berlin"),
                    )
                })?,
            };
            Ok(Schedule::Cron {
                expr: expr.clone(),
                cron,
                timezone,
            })
        }
    }
}

fn positive_duration(raw: Option<&Sourced<DurationValue>>) -> Result<Option<Duration>> {
    match raw {
        Some(d) if d.value.0.is_zero() => Err(problem(
            &d.path,
            format!("must be above 0, got 0s; {DURATION_HINT}"),
        )),
        Some(d) => Ok(Some(d.value.0)),
        None => Ok(None),
    }
}

/// A timeout that must fit inside `timeout`: an explicit value above it is an error, the
/// default is clamped to it.
fn bounded_timeout(
    raw: Option<&Sourced<DurationValue>>,
    default: Duration,
    timeout: Duration,
    timeout_field: Option<&Sourced<DurationValue>>,
) -> Result<Duration> {
    match (positive_duration(raw)?, raw) {
        (Some(d), Some(field)) if d > timeout => {
            let at = timeout_field.map_or("timeout", |t| t.path.as_str());
            Err(problem(
                &field.path,
                format!(
                    "must not exceed the whole-request timeout ({} at {at}), got {}; lower it or raise timeout",
                    format_duration(timeout),
                    format_duration(d)
                ),
            ))
        }
        (Some(d), _) => Ok(d),
        (None, _) => Ok(default.min(timeout)),
    }
}

fn slo(raw: &Sourced<RawSlo>) -> Result<Slo> {
    let field = |name: &str, v: Option<DurationValue>| {
        positive_duration(
            v.map(|value| Sourced {
                value,
                path: join(&raw.path, name),
            })
            .as_ref(),
        )
    };
    Ok(Slo {
        ttft: field("ttft", raw.value.ttft)?,
        tpot: field("tpot", raw.value.tpot)?,
        duration: field("duration", raw.value.duration)?,
    })
}

fn expect(raw: &Sourced<RawExpect>) -> Result<Expect> {
    if raw.value.contains.as_deref() == Some("") {
        return Err(problem(
            join(&raw.path, "contains"),
            "is empty; give the text the stream must contain, or remove it",
        ));
    }
    Ok(Expect {
        contains: raw.value.contains.clone(),
        min_output_tokens: raw.value.min_output_tokens,
    })
}

fn column_index(name: &str, path: &str, data: Option<&Dataset>) -> Result<usize> {
    let Some(data) = data else {
        return Err(problem(
            path,
            format!(
                "placeholder {{{{{name}}}}} needs a data source; add data_source: {{type: csv, file: prompts.csv}} with a column named {name:?}"
            ),
        ));
    };
    data.column_index(name).ok_or_else(|| {
        let columns = data.columns();
        let hint = match suggest(name, columns.iter().map(String::as_str)) {
            Some(near) => format!("did you mean {{{{{near}}}}}? "),
            None => String::new(),
        };
        problem(
            path,
            format!(
                "unknown placeholder {{{{{name}}}}}; {hint}the data source has columns: {}",
                columns.join(", ")
            ),
        )
    })
}

/// The body's `model` when it is plain text (no placeholder or secret), for `target_info`.
fn body_model(body: &Value) -> Option<String> {
    let Value::String(model) = body.as_mapping()?.get("model")? else {
        return None;
    };
    (!model.is_empty() && !model.contains("{{") && !model.contains("${")).then(|| model.clone())
}

/// `text` escaped as the inside of a JSON string literal.
fn json_string_inside(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(_) => "a tagged value".to_owned(),
    }
}

/// RFC 9110 token characters (method and header names).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn nonzero(n: u32) -> NonZeroU32 {
    // Callers check the range first; 1 is a safe floor should that ever change.
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}
