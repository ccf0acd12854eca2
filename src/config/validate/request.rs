//! Request checks for a target: the data source (read here, once per file), method, headers
//! (target headers replace same-named default headers), body (text, or YAML sent as JSON) and
//! its `cache_bust`, `model`, `request_id_header` and `capture_headers`.
//!
//! Does not: compile strings into templates (`compile.rs`), or check the URL (`transport.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::compile::{Compiler, scalar_text};
use super::prompt::{PROMPT_FIELDS, prompt_path};
use crate::config::endpoint::Endpoint;
use crate::config::error::{Problem, problem};
use crate::config::model::{Body, CacheBust, Header};
use crate::config::raw::{
    Mapping, RawDataSource, RawDefaults, RawTarget, Sourced, TargetFields, Value, join, parse_value,
};
use crate::config::template::{Template, TemplateBuilder};
use crate::dataset::{Dataset, DatasetError};

type Result<T> = std::result::Result<T, Problem>;

/// `data_source.encoding` when not set.
const DEFAULT_ENCODING: &str = "utf-8";
/// The method of a request with a body (given or default) when `method` is not set.
const DEFAULT_METHOD_WITH_BODY: &str = "POST";
/// Added for a YAML/JSON body unless the headers set a `Content-Type` of their own.
const JSON_CONTENT_TYPE: &str = "application/json";

/// What a target sends.
pub(super) struct Request {
    pub(super) method: String,
    pub(super) headers: Vec<Header>,
    pub(super) body: Option<Body>,
    pub(super) cache_bust: CacheBust,
}

/// Where the request goes, for choosing a default body.
pub(super) struct Route<'a> {
    /// The target's path (`targets[2]`, empty for an old-format file).
    pub(super) at: &'a str,
    /// The well-known API the URL path names, else the one `protocol` implies.
    pub(super) endpoint: Option<Endpoint>,
    /// The URL's path as humans see it (secrets redacted), for the message when there is no
    /// default.
    pub(super) url_path: &'a str,
    /// Who is asked to supply a missing body.
    pub(super) asker: Asker,
}

/// Who supplies the request: a config file, or `run`'s flags (which also name `-d` and `-X`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Asker {
    File,
    /// `run -c FILE` with flags: the file's `body:` or `-d`.
    FileAndFlags,
    /// `run -u URL` without a file: only the flags.
    Flags,
}

/// Checks headers, body and method, in that order. `raw` is the target as written (after
/// `run`'s flags), `f` its fields with `defaults:` applied.
///
/// Without a body, the method decides: unset or `POST` sends the endpoint's default body
/// (`config::Endpoint`), and with neither a body nor a known endpoint an unset method is an
/// error (a silent GET to an API that wants a POST only measures its 405); any other explicit
/// method (`GET`, ...) is sent as written, without a body.
pub(super) fn request(
    raw: &RawTarget,
    defaults: &RawDefaults,
    f: &TargetFields,
    data: Option<&Dataset>,
    compiler: Compiler,
    route: &Route<'_>,
) -> Result<Request> {
    // Target headers replace same-named default headers; the others are inherited.
    let mut headers = Vec::new();
    if let (Some(_), Some(default_headers)) = (&raw.headers, &defaults.headers) {
        headers = self::headers(default_headers, "defaults.headers", data, compiler)?;
    }
    if let Some(own) = &f.headers {
        let own = self::headers(&own.value, &own.path, data, compiler)?;
        headers.retain(|h: &Header| !own.iter().any(|o| o.name.eq_ignore_ascii_case(&h.name)));
        headers.extend(own);
    }

    let cache_bust = cache_bust(f)?;
    let method = match &f.method {
        Some(m) => {
            let upper = m.value.trim().to_ascii_uppercase();
            if upper.is_empty() || !upper.bytes().all(is_token_byte) {
                return Err(problem(
                    &m.path,
                    format!("not an HTTP method, got {:?}; use GET, POST, ...", m.value),
                ));
            }
            Some(upper)
        }
        None => None,
    };
    let body = match body(f.body.as_ref(), data, compiler, cache_bust, f)? {
        Some(body) => Some(body),
        None if method
            .as_deref()
            .is_none_or(|m| m == DEFAULT_METHOD_WITH_BODY) =>
        {
            match route.endpoint {
                Some(endpoint) => Some(default_body(endpoint, compiler, cache_bust, f)?),
                None if method.is_some() => None,
                None => return Err(no_default_body(route)),
            }
        }
        None => None,
    };
    if cache_bust == CacheBust::Prefix && body.is_none() {
        return Err(no_prompt(f, None));
    }
    if matches!(body, Some(Body::Json(_)))
        && !headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-type"))
    {
        headers.push(Header {
            name: "Content-Type".to_owned(),
            value: Template::literal(JSON_CONTENT_TYPE),
        });
    }
    Ok(Request {
        // Without a body only an explicit method gets here.
        method: method.unwrap_or_else(|| DEFAULT_METHOD_WITH_BODY.to_owned()),
        headers,
        body,
        cache_bust,
    })
}

fn cache_bust(f: &TargetFields) -> Result<CacheBust> {
    let Some(c) = &f.cache_bust else {
        return Ok(CacheBust::Off);
    };
    match c.value.trim() {
        "prefix" => Ok(CacheBust::Prefix),
        "off" => Ok(CacheBust::Off),
        other => Err(problem(
            &c.path,
            format!(
                "must be prefix or off, got {other:?}; prefix starts every prompt with a unique nonce so prefix caches cannot serve it"
            ),
        )),
    }
}

/// The endpoint's default streaming body, compiled like a body from the file (with the place
/// of the cache-bust nonce when `cache_bust` is `prefix`: every default body has a prompt).
fn default_body(
    endpoint: Endpoint,
    compiler: Compiler,
    cache_bust: CacheBust,
    f: &TargetFields,
) -> Result<Body> {
    let path = "body (default)";
    let value = parse_value(&endpoint.default_body())
        .ok_or_else(|| problem(path, "the built-in default body does not parse"))?;
    let nonce_at = match cache_bust {
        CacheBust::Off => None,
        CacheBust::Prefix => {
            Some(prompt_path(&value, path).ok_or_else(|| no_prompt(f, Some(path)))?)
        }
    };
    let compiler = Compiler {
        nonce_at: nonce_at.as_deref(),
        ..compiler
    };
    let mut builder = TemplateBuilder::new();
    compiler.json(&value, path, None, &mut builder)?;
    Ok(Body::Json(builder.build()))
}

/// No body, no method, and no endpoint whose default body could stand in.
fn no_default_body(route: &Route<'_>) -> Problem {
    let path = route.url_path;
    let body_at = join(route.at, "body");
    match route.asker {
        Asker::File => problem(
            body_at,
            format!(
                "is required: the URL path {path:?} names no API with a default request body; give body: {{...}} (sent with POST), or set method: GET to send none"
            ),
        ),
        Asker::FileAndFlags => problem(
            body_at,
            format!(
                "is required: the URL path {path:?} names no API with a default request body; give body: {{...}} in the file or -d BODY, or send none with -X GET"
            ),
        ),
        Asker::Flags => problem(
            "-u",
            format!(
                "the URL path {path:?} names no API with a default request body; give one with -d BODY or -d @FILE, or send none with -X GET"
            ),
        ),
    }
}

fn headers(
    map: &Mapping,
    at: &str,
    data: Option<&Dataset>,
    compiler: Compiler,
) -> Result<Vec<Header>> {
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
                compiler.string_template(s, &path, data, false)?
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

/// A text body is sent as is; any other YAML value is compiled into JSON text, with the place
/// of the cache-bust nonce at the start of its prompt when `cache_bust` is `prefix`.
fn body(
    raw: Option<&Sourced<Value>>,
    data: Option<&Dataset>,
    compiler: Compiler,
    cache_bust: CacheBust,
    f: &TargetFields,
) -> Result<Option<Body>> {
    let nonce_at = match (cache_bust, raw) {
        (CacheBust::Off, _) => None,
        (CacheBust::Prefix, Some(Sourced { value, path })) => {
            Some(prompt_path(value, path).ok_or_else(|| no_prompt(f, Some(path)))?)
        }
        // No body here: the endpoint's default may stand in (the caller checks one exists).
        (CacheBust::Prefix, None) => None,
    };
    let compiler = Compiler {
        nonce_at: nonce_at.as_deref(),
        ..compiler
    };
    Ok(match raw {
        None => None,
        Some(Sourced {
            value: Value::Null, ..
        }) => None,
        Some(Sourced {
            value: Value::String(text),
            path,
        }) => Some(Body::Text(
            compiler.string_template(text, path, data, false)?,
        )),
        Some(Sourced { value, path }) => {
            let mut builder = TemplateBuilder::new();
            compiler.json(value, path, data, &mut builder)?;
            Some(Body::Json(builder.build()))
        }
    })
}

/// `cache_bust: prefix` without a prompt to put the nonce in front of.
fn no_prompt(f: &TargetFields, body_path: Option<&str>) -> Problem {
    let path = f
        .cache_bust
        .as_ref()
        .map_or("cache_bust", |c| c.path.as_str());
    let found = match body_path {
        Some(body) => format!("{body} has none"),
        None => "the target has no body".to_owned(),
    };
    problem(
        path,
        format!(
            "prefix needs a YAML/JSON body with a prompt ({PROMPT_FIELDS}) to put the nonce in front of, but {found}; set cache_bust: off or add the prompt"
        ),
    )
}

/// `capture_headers`: response header names copied into result files, lower case.
pub(super) fn capture_headers(f: &TargetFields) -> Result<Vec<String>> {
    /// Headers that carry credentials: a result file never holds them.
    const CREDENTIALS: [&str; 4] = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ];
    let Some(list) = &f.capture_headers else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = Vec::with_capacity(list.value.len());
    for (i, name) in list.value.iter().enumerate() {
        let path = format!("{}[{i}]", list.path);
        let lower = name.trim().to_ascii_lowercase();
        if lower.is_empty() || !lower.bytes().all(is_token_byte) {
            return Err(problem(
                &path,
                format!("not a valid header name, got {name:?}; use e.g. x-served-by"),
            ));
        }
        if CREDENTIALS.contains(&lower.as_str()) {
            return Err(problem(
                &path,
                format!(
                    "{lower} carries credentials and is never stored in result files; remove it"
                ),
            ));
        }
        if !names.contains(&lower) {
            names.push(lower);
        }
    }
    Ok(names)
}

/// `model`, else the body's `model` when it is plain text (for `target_info`).
pub(super) fn model(f: &TargetFields) -> Result<Option<String>> {
    Ok(match &f.model {
        Some(m) if m.value.trim().is_empty() => {
            return Err(problem(&m.path, "is empty; remove it or name the model"));
        }
        Some(m) => Some(m.value.clone()),
        None => f.body.as_ref().and_then(|b| body_model(&b.value)),
    })
}

pub(super) fn request_id_header(f: &TargetFields) -> Result<Option<String>> {
    Ok(match &f.request_id_header {
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
    })
}

/// The body's `model` when it is plain text (no placeholder or secret), for `target_info`.
fn body_model(body: &Value) -> Option<String> {
    let Value::String(model) = body.as_mapping()?.get("model")? else {
        return None;
    };
    (!model.is_empty() && !model.contains("{{") && !model.contains("${")).then(|| model.clone())
}

/// RFC 9110 token characters (method and header names).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

type DatasetKey = (PathBuf, &'static str, Option<String>);

/// Data sources read so far, by (file, encoding, column): targets sharing one (e.g. from
/// `defaults:`) share the rows.
#[derive(Default)]
pub(super) struct DataSources {
    read: HashMap<DatasetKey, Arc<Dataset>>,
}

impl DataSources {
    /// Reads a data source (relative to `base_dir`, the config file's directory), or returns the
    /// rows read for an earlier target.
    pub(super) fn read(
        &mut self,
        source: &Sourced<RawDataSource>,
        base_dir: &Path,
    ) -> Result<Arc<Dataset>> {
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
        let label = raw.encoding.as_deref().unwrap_or(DEFAULT_ENCODING);
        let Some(encoding) = Dataset::encoding_for_label(label) else {
            return Err(problem(
                join(at, "encoding"),
                format!(
                    "unknown encoding, got {label:?}; use a WHATWG label such as utf-8, gbk, gb18030, big5 or shift_jis"
                ),
            ));
        };
        let column = raw.column.as_deref().map(str::trim);
        let csv_path = base_dir.join(file);
        let key = (csv_path.clone(), encoding.name(), column.map(str::to_owned));
        if let Some(data) = self.read.get(&key) {
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
        self.read.insert(key, Arc::clone(&data));
        Ok(data)
    }
}
