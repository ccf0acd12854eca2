//! Configuration: the validated types every other module works with, and `load`, the one path
//! from a YAML/JSON file (or the old script's JSON format) to them.
//!
//! Files here import downwards only; this file sits on top. `raw.rs` mirrors the file with serde
//! (the only serde_yaml user); `validate/` converts raw → the types of `model.rs`, `tls.rs` and
//! `schedule.rs` once, applying defaults and cross-field checks, so that after `load` returns the
//! types guarantee validity. `error.rs` words every problem; `template.rs` holds compiled
//! `{{column}}`/secret templates; secrets (`secret.rs`) are resolved here and stay redacted in
//! every Debug/Display/Serialize; `redact.rs` decides what of a target may be shown and scrubs
//! secret values out of server text; `endpoint.rs` knows the well-known API routes (for
//! `auto` and default bodies); `describe.rs` renders the `check` report; `overrides.rs` holds
//! `run`'s flags; `web.rs` loads the daemon's web config. `load` is strict about secrets;
//! `load_for_check` turns one it cannot resolve into a warning.
//!
//! All relative paths in a file (`data_source.file`, `tls.*_file`, `results.dir`,
//! `${file:...}`) are relative to the file's directory.
//!
//! Does not: open sockets, start timers, or print.

use std::path::Path;

pub mod describe;
mod endpoint;
mod error;
mod model;
mod overrides;
mod raw;
pub mod redact;
mod schedule;
pub mod secret;
pub mod template;
mod tls;
mod units;
mod validate;
pub mod web;

pub use describe::check_report;
pub use endpoint::{Endpoint, llama_cpp_extract};
pub use error::{ConfigError, ConfigWarning};
pub use model::{
    Body, Buckets, CacheBust, Config, Expect, Extract, Header, LatencyPreset, Protocol, Results,
    Server, Slo, Target, VerdictSettings, VerdictStatistic,
};
pub use overrides::RunOverrides;
pub use schedule::{Overlap, Schedule};
pub use secret::{Env, Secret};
pub use template::Template;
pub use tls::{ClientCert, PemFile, Proxy, ServerName, Tls};
pub use units::{
    format_duration, format_percentage, format_rate, format_size, parse_duration, parse_percentage,
};

use crate::dataset::io_message;
use raw::RawFile;
use validate::Mode;

/// Loads and validates a config file (YAML, JSON, or the old script's JSON format), reading
/// `${VAR}` references from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, &Env::Process)
}

/// As `load`, from text; `path` names the file in messages and anchors relative paths.
pub fn load_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    load_str_with_env(text, path, &Env::Process)
}

/// As `load`, with `${VAR}` references read from `env`.
pub fn load_with_env(path: &Path, env: &Env) -> Result<Config, ConfigError> {
    let text = read_text(path)?;
    load_str_with_env(&text, path, env)
}

/// As `load_str`, with `${VAR}` references read from `env`.
pub fn load_str_with_env(text: &str, path: &Path, env: &Env) -> Result<Config, ConfigError> {
    let mode = Mode {
        env,
        overrides: None,
        from_flags: false,
        defer_secrets: false,
    };
    Ok(validate::from_raw(parse(text, path)?, path, &mode)?.config)
}

/// What `check` found: the validated config and the warnings to print beside it.
#[derive(Debug)]
pub struct Checked {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
}

/// Loads `path` as `check` does: exactly `load`'s validation, except that a secret that cannot
/// be resolved where `check` runs (a shell without the daemon's environment or
/// `$CREDENTIALS_DIRECTORY`) is a warning saying how to provide it, with a stand-in value so
/// everything else is still checked. `serve` and `run` keep refusing such a file.
pub fn load_for_check(path: &Path, env: &Env) -> Result<Checked, ConfigError> {
    load_str_for_check(&read_text(path)?, path, env)
}

/// As `load_for_check`, from text; `path` names the file in messages and anchors relative
/// paths.
pub fn load_str_for_check(text: &str, path: &Path, env: &Env) -> Result<Checked, ConfigError> {
    let mode = Mode {
        env,
        overrides: None,
        from_flags: false,
        defer_secrets: true,
    };
    let loaded = validate::from_raw(parse(text, path)?, path, &mode)?;
    Ok(Checked {
        config: loaded.config,
        warnings: loaded.warnings,
    })
}

/// Loads `path` for `run`, or, without a file, builds the one target `-u URL` names (as an
/// old-format file with only `url` would), then applies the overrides to every target.
pub fn load_for_run(path: Option<&Path>, overrides: &RunOverrides) -> Result<Config, ConfigError> {
    let (raw, path, from_flags) = match path {
        Some(path) => (parse(&read_text(path)?, path)?, path, false),
        None => (
            RawFile::Legacy(overrides.command_line_target()?),
            Path::new("<command line>"),
            true,
        ),
    };
    let mode = Mode {
        env: &Env::Process,
        overrides: Some(overrides),
        from_flags,
        defer_secrets: false,
    };
    Ok(validate::from_raw(raw, path, &mode)?.config)
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
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

fn parse(text: &str, path: &Path) -> Result<RawFile, ConfigError> {
    raw::parse(text).map_err(|err| error::parse_error(path, err))
}
