//! Raw → validated conversion, run once per load (`check`, `run`, `serve` and reload alike):
//! defaults, range and cross-field checks, secrets, data sources and template compilation.
//! Every message names the file, the field path, the bad value and the fix, in lowercase
//! without a trailing period.
//!
//! This file checks the file-level sections (`server`, `results`, `defaults.buckets`) and builds
//! each target from its concerns, checked in this order: `request.rs` reads the data source
//! (placeholders everywhere refer to it), `transport.rs` (url, tls, proxy), `response.rs`
//! (protocol: the default body may depend on it), `request.rs` (headers, method, body, or the
//! endpoint's default body), `response.rs` again (extract, slo, expect), `limits.rs` (schedule,
//! concurrency, timeouts, sizes), `verdict.rs` (the daemon's verdict windows). `compile.rs` turns strings into templates for them. Problems
//! that do not stop a load (a secret `check` cannot resolve, a generic protocol without
//! `extract`) are collected as warnings.
//!
//! Does not: parse YAML syntax (`raw.rs`), or put a secret value in any message.

mod compile;
mod limits;
mod prompt;
mod request;
mod response;
mod transport;
mod verdict;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use self::compile::{Compiler, Secrets};
use self::limits::nonzero;
use self::request::{Asker, DataSources, Route};
use crate::config::endpoint::Endpoint;
use crate::config::error::{ConfigError, ConfigWarning, Problem, Warnings, problem};
use crate::config::model::{Buckets, Config, LatencyPreset, Results, Server, Target};
use crate::config::overrides::RunOverrides;
use crate::config::raw::{
    DurationValue, RawBuckets, RawConfig, RawDefaults, RawFile, RawLegacy, RawResults, RawServer,
    RawTarget, TargetFields, Value, join,
};
use crate::config::secret::Env;
use crate::config::units::DURATION_HINT;

type Result<T> = std::result::Result<T, Problem>;

/// `server.listen` when not set: loopback only; listening on all interfaces (`0.0.0.0`) must be
/// chosen explicitly.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 10061));
/// `server.max_in_flight` when not set: requests in flight across all targets.
const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;
/// `server.shutdown_grace` when not set: running bursts get this long to finish on SIGTERM.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// `server.enable_admin_api` when not set: `POST /-/reload` and the trigger endpoint are off.
const DEFAULT_ENABLE_ADMIN_API: bool = false;
/// `results.dir` when not set: inside the unit's `StateDirectory=streamprobe`.
const DEFAULT_RESULTS_DIR: &str = "/var/lib/streamprobe/results";
/// `results.keep_per_target` when not set: result files kept per target.
const DEFAULT_KEEP_PER_TARGET: u32 = 500;
/// `results.max_age` when not set: 30 days.
const DEFAULT_RESULTS_MAX_AGE: Duration = Duration::from_secs(30 * 86400);
/// `results.include_text` when not set: result files leave out each request's streamed text.
const DEFAULT_INCLUDE_TEXT: bool = false;
/// `fresh_connections` when not set: requests reuse pooled connections (`true`: a new TCP/TLS
/// connection per request).
const DEFAULT_FRESH_CONNECTIONS: bool = false;
/// The target name of an old-format file whose URL has no usable host.
const LEGACY_FALLBACK_NAME: &str = "target";
const NAME_CHARS: &str = "letters, digits, '_', '.' and '-'";

/// How one load runs: where secrets come from and what an unresolvable one means, and `run`'s
/// flags.
pub(super) struct Mode<'a> {
    pub(super) env: &'a Env,
    /// `run`'s flags, applied to every target before validation.
    pub(super) overrides: Option<&'a RunOverrides>,
    /// The file is `run -u URL`'s one target, built from the flags alone.
    pub(super) from_flags: bool,
    /// `true` for `check`: an unresolvable secret is a warning, not an error.
    pub(super) defer_secrets: bool,
}

/// A validated config and what its load warned about.
pub(super) struct Loaded {
    pub(super) config: Config,
    pub(super) warnings: Vec<ConfigWarning>,
}

/// Validates a parsed file. `path` names the file in messages and anchors relative paths.
pub(super) fn from_raw(
    raw: RawFile,
    path: &Path,
    mode: &Mode<'_>,
) -> std::result::Result<Loaded, ConfigError> {
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let warnings = Warnings::default();
    let mut loader = Loader {
        path: path.to_path_buf(),
        base_dir,
        mode,
        data_sources: DataSources::default(),
        warnings: &warnings,
    };
    let result = match raw {
        RawFile::Current(raw) => loader.config(raw),
        RawFile::Legacy(raw) => loader.legacy(raw),
    };
    let config = result.map_err(|p| p.in_file(path))?;
    Ok(Loaded {
        config,
        warnings: warnings.into_file(path),
    })
}

struct Loader<'a> {
    path: PathBuf,
    mode: &'a Mode<'a>,
    data_sources: DataSources,
    /// The config file's directory: relative paths inside the file are relative to it.
    base_dir: PathBuf,
    warnings: &'a Warnings,
}

impl Loader<'_> {
    fn config(&mut self, raw: RawConfig) -> Result<Config> {
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
    fn legacy(&mut self, raw: RawLegacy) -> Result<Config> {
        let name = url::Url::parse(&raw.url)
            .ok()
            .and_then(|u| u.host_str().map(sanitize_name))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| LEGACY_FALLBACK_NAME.to_owned());
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
            None => PathBuf::from(DEFAULT_RESULTS_DIR),
        };
        let keep_per_target = raw.keep_per_target.unwrap_or(DEFAULT_KEEP_PER_TARGET);
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
            None => DEFAULT_RESULTS_MAX_AGE,
        };
        Ok(Results {
            dir,
            keep_per_target,
            max_age,
            include_text: raw.include_text.unwrap_or(DEFAULT_INCLUDE_TEXT),
        })
    }

    /// One target: `run`'s flags applied, then `defaults:` merged in, then each concern checked
    /// in the order the file-level doc lists.
    fn target(
        &mut self,
        name: String,
        raw: &RawTarget,
        defaults: &RawDefaults,
        at: &str,
    ) -> Result<Target> {
        let overrides = self.mode.overrides;
        let raw = match overrides {
            Some(o) => Cow::Owned(o.patch(raw).map_err(|e| problem("", e.0))?),
            None => Cow::Borrowed(raw),
        };
        let mut f: TargetFields = raw.merge(defaults, at);
        if let Some(o) = overrides {
            o.redetect(&mut f);
        }
        // The data source comes first: placeholders in url, headers and body refer to it.
        let dataset = match &f.data_source {
            Some(source) => Some(self.data_sources.read(source, &self.base_dir)?),
            None => None,
        };
        let data = dataset.as_deref();
        let secrets = if self.mode.defer_secrets {
            Secrets::Deferred {
                config_file: &self.path,
                warnings: self.warnings,
            }
        } else {
            Secrets::Required
        };
        let compiler = Compiler {
            base_dir: &self.base_dir,
            env: self.mode.env,
            secrets,
            nonce_at: None,
        };

        let transport = transport::transport(&f, at, data, compiler)?;
        let protocol = response::protocol(&f)?;
        let route = Route {
            at,
            endpoint: Endpoint::from_url_path(&transport.path)
                .or_else(|| Endpoint::for_protocol(protocol)),
            url_path: &transport.shown_path,
            asker: match (self.mode.from_flags, overrides) {
                (true, _) => Asker::Flags,
                (false, Some(_)) => Asker::FileAndFlags,
                (false, None) => Asker::File,
            },
        };
        let request = request::request(&raw, defaults, &f, data, compiler, &route)?;
        let extract = response::extract(&f, protocol)?;
        if let Some(warning) = response::generic_without_extract(&f, protocol, extract.as_ref()) {
            self.warnings.push(warning);
        }
        let limits = limits::limits(&f)?;
        let model = request::model(&f)?;
        let request_id_header = request::request_id_header(&f)?;
        let capture_headers = request::capture_headers(&f)?;
        let slo = response::slo(&f)?;
        let expect = response::expect(&f)?;
        let verdict = verdict::verdict(raw.verdict.as_ref(), defaults.verdict.as_ref(), at)?;
        Ok(Target {
            name,
            url: transport.url,
            method: request.method,
            headers: request.headers,
            body: request.body,
            data: dataset,
            protocol,
            extract,
            schedule: limits.schedule,
            overlap: limits.overlap,
            run_on_start: limits.run_on_start,
            concurrency: limits.concurrency,
            total_requests: limits.total_requests,
            rate: limits.rate,
            warmup_requests: limits.warmup_requests,
            timeout: limits.timeout,
            first_token_timeout: limits.first_token_timeout,
            idle_timeout: limits.idle_timeout,
            max_response_bytes: limits.max_response_bytes,
            model,
            request_id_header,
            fresh_connections: f
                .fresh_connections
                .as_ref()
                .map_or(DEFAULT_FRESH_CONNECTIONS, |s| s.value),
            cache_bust: request.cache_bust,
            capture_headers,
            tls: transport.tls,
            proxy: transport.proxy,
            slo,
            expect,
            verdict,
        })
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
    if name == "." || name == ".." {
        return Err(problem(
            path,
            format!(
                "cannot be {name:?}: it names the target's results directory and page URL; use a word"
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
        None => DEFAULT_LISTEN,
    };
    let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    if max_in_flight == 0 {
        return Err(problem(
            "server.max_in_flight",
            "must be at least 1, got 0; it caps requests in flight across all targets",
        ));
    }
    Ok(Server {
        listen,
        web_config: raw.web_config.map(PathBuf::from),
        enable_admin_api: raw.enable_admin_api.unwrap_or(DEFAULT_ENABLE_ADMIN_API),
        max_in_flight: nonzero(max_in_flight),
        shutdown_grace: raw.shutdown_grace.map_or(DEFAULT_SHUTDOWN_GRACE, |d| d.0),
    })
}

fn buckets(raw: Option<&RawBuckets>) -> Result<Buckets> {
    let mut buckets = Buckets::default();
    let Some(raw) = raw else {
        return Ok(buckets);
    };
    let latency = match &raw.latency {
        Some(value) => Some(latency_buckets(value)?),
        None => None,
    };
    for (list, field, target) in [
        (&latency, "latency", &mut buckets.latency),
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

/// `defaults.buckets.latency`: a preset name or a list of boundaries (checked by the caller).
fn latency_buckets(value: &Value) -> Result<Vec<f64>> {
    const PATH: &str = "defaults.buckets.latency";
    let presets = || {
        LatencyPreset::ALL
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match value {
        Value::String(name) => LatencyPreset::ALL
            .into_iter()
            .find(|p| p.as_str() == name.trim())
            .map(LatencyPreset::boundaries)
            .ok_or_else(|| {
                problem(
                    PATH,
                    format!(
                        "unknown preset {name:?}; use {} (up to 655 s, for reasoning models) or a list of boundaries in seconds",
                        presets()
                    ),
                )
            }),
        Value::Sequence(items) => items
            .iter()
            .map(|item| match item {
                Value::Number(n) => n.as_f64().ok_or(()),
                _ => Err(()),
            })
            .collect::<std::result::Result<Vec<f64>, ()>>()
            .map_err(|()| {
                problem(
                    PATH,
                    "boundaries must be numbers of seconds, e.g. [0.1, 0.5, 1, 5]",
                )
            }),
        other => Err(problem(
            PATH,
            format!(
                "must be {} or a list of boundaries in seconds, got {}",
                presets(),
                compile::scalar_text(other)
            ),
        )),
    }
}
