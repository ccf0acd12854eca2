//! Config errors and the helpers that word them: `ConfigError` (what every `load` returns: one
//! line naming the file, the field path, the bad value and the fix), `ConfigWarning` (the same
//! shape, for what does not stop a load: `check` prints them), `Problem` (a problem at a
//! field path, found while validating; the file name is added once, at the top), the messages
//! for YAML that does not parse, and did-you-mean suggestions.
//!
//! Does not: decide what is valid (`validate/`), or put a secret value in any message.

use std::path::Path;

use super::raw::ParseError;

/// A config problem: names the file, the field path, the bad value and the fix.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(pub String);

/// One line, always: a key, header name or path from the file may hold a line break or other
/// control characters, which are shown escaped (`\n`) instead of splitting the message.
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        one_line(&self.0, f)
    }
}

/// A problem that does not stop a load, worded like a `ConfigError`: a secret `check` cannot
/// resolve from where it runs, a setting that is valid but measures something else than its
/// author likely meant. `check` prints each; `check --strict` fails on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning(pub String);

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        one_line(&self.0, f)
    }
}

fn one_line(text: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            f.write_fmt(format_args!("{c}"))?;
        }
    }
    Ok(())
}

/// A problem at a field path; the file name is added once, at the top.
#[derive(Debug)]
pub(super) struct Problem {
    pub(super) path: String,
    pub(super) message: String,
}

pub(super) fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

impl Problem {
    /// The message for the user: `FILE: PATH: MESSAGE`, or `FILE: MESSAGE` without a path.
    pub(super) fn in_file(self, path: &Path) -> ConfigError {
        ConfigError(self.located(path))
    }

    /// As `in_file`, for a problem that does not stop the load.
    pub(super) fn warning_in_file(self, path: &Path) -> ConfigWarning {
        ConfigWarning(self.located(path))
    }

    fn located(self, path: &Path) -> String {
        let file = path.display();
        if self.path.is_empty() {
            format!("{file}: {}", self.message)
        } else {
            format!("{file}: {}: {}", self.path, self.message)
        }
    }
}

/// Problems found during one load that do not stop it, in the order found.
#[derive(Debug, Default)]
pub(super) struct Warnings {
    list: std::cell::RefCell<Vec<Problem>>,
}

impl Warnings {
    pub(super) fn push(&self, problem: Problem) {
        self.list.borrow_mut().push(problem);
    }

    pub(super) fn into_file(self, path: &Path) -> Vec<ConfigWarning> {
        self.list
            .into_inner()
            .into_iter()
            .map(|p| p.warning_in_file(path))
            .collect()
    }
}

/// Why a config file did not parse, as a message naming the file.
pub(super) fn parse_error(path: &Path, err: ParseError) -> ConfigError {
    ConfigError(parse_message(&path.display().to_string(), err))
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
pub(super) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
