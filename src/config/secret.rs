//! A resolved secret value (`${VAR}`, `${file:/path}`, `${credential:NAME}`). Its Debug, Display
//! and Serialize print `<redacted>`; only `expose` gives the value, for the wire.
//!
//! Does not: decide where references may appear (that is `validate/`), or ever put a value in
//! an error message: errors name the reference.

use std::collections::HashMap;
use std::path::Path;

use crate::dataset::io_message;

/// Where `${VAR}` and `$CREDENTIALS_DIRECTORY` are read from. Passed explicitly so tests (and
/// any embedding program) need not mutate the process environment.
#[derive(Clone, Default)]
pub enum Env {
    /// The process environment.
    #[default]
    Process,
    /// Exactly these variables; nothing else is visible.
    Vars(HashMap<String, String>),
}

impl Env {
    /// A fixed set of variables.
    pub fn vars<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Env {
        Env::Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    fn var(&self, name: &str) -> Result<Option<String>, ()> {
        match self {
            Env::Process => match std::env::var(name) {
                Ok(value) => Ok(Some(value)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => Err(()),
            },
            Env::Vars(vars) => Ok(vars.get(name).cloned()),
        }
    }
}

/// Names only: the values may be secrets.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Env::Process => f.write_str("Env::Process"),
            Env::Vars(vars) => {
                let mut names: Vec<&str> = vars.keys().map(String::as_str).collect();
                names.sort_unstable();
                write!(f, "Env::Vars({names:?})")
            }
        }
    }
}

/// Why a `${...}` reference could not be resolved. Names the reference, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("${{{0}}} is not set; export {0}, or use ${{file:/path}} or ${{credential:NAME}}")]
    Unset(String),
    #[error("${{{0}}} is set but empty; give it a value")]
    Empty(String),
    #[error("${{{0}}} is not valid UTF-8")]
    NotUnicode(String),
    #[error("${{{reference}}} cannot be read: {problem}")]
    Unreadable { reference: String, problem: String },
    #[error(
        "${{{0}}} needs $CREDENTIALS_DIRECTORY, which is not set; run under systemd with LoadCredential= or use ${{file:/path}}"
    )]
    NoCredentialsDirectory(String),
    #[error(
        "${{{0}}} is not a valid reference; use ${{VAR}}, ${{file:/path}} or ${{credential:NAME}} (write $${{ for a literal ${{)"
    )]
    Invalid(String),
}

impl SecretError {
    /// For `check`, which may run where the daemon's secrets are not (a shell, CI): when the
    /// reference is well-formed but its value is not available here, the warning to print
    /// instead of failing, saying how to provide it. `None` for a malformed reference, which
    /// is an error everywhere. `config_file` is the file being checked, for the command line.
    pub fn unavailable_here(&self, config_file: &Path) -> Option<String> {
        const REFUSE: &str =
            "check went on with a stand-in; serve and run refuse to start without it";
        Some(match self {
            SecretError::Unset(var) => format!(
                "${{{var}}} is not set; {REFUSE}: export {var}=... in their environment (under systemd: Environment= or EnvironmentFile=, or use ${{credential:NAME}})"
            ),
            SecretError::Empty(var) => {
                format!("${{{var}}} is set but empty; {REFUSE}: give it a value")
            }
            SecretError::NotUnicode(var) => {
                format!("${{{var}}} is not valid UTF-8; {REFUSE}: give it a UTF-8 value")
            }
            SecretError::Unreadable { reference, problem } => format!(
                "${{{reference}}} cannot be read here: {problem}; {REFUSE}: make it readable to the user they run as"
            ),
            SecretError::NoCredentialsDirectory(reference) => format!(
                "${{{reference}}} needs $CREDENTIALS_DIRECTORY, which systemd sets for the service (LoadCredential=) but a shell does not; {REFUSE}. To check the credential too, point it at the files: CREDENTIALS_DIRECTORY=/etc/streamprobe/credentials streamprobe check -c {}",
                config_file.display()
            ),
            SecretError::Invalid(_) => return None,
        })
    }
}

/// Resolves the inside of a `${...}` reference: `VAR` (environment), `file:/path` (trimmed
/// contents; a relative path is relative to `base_dir`, the config file's directory) or
/// `credential:NAME` (`$CREDENTIALS_DIRECTORY/NAME`, systemd's `LoadCredential=`).
pub fn resolve(reference: &str, base_dir: &Path, env: &Env) -> Result<Secret, SecretError> {
    let unreadable = |err: std::io::Error| SecretError::Unreadable {
        reference: reference.to_owned(),
        problem: io_message(&err),
    };
    if let Some(file) = reference.strip_prefix("file:") {
        let file = file.trim();
        if file.is_empty() {
            return Err(SecretError::Invalid(reference.to_owned()));
        }
        let text = std::fs::read_to_string(base_dir.join(file)).map_err(unreadable)?;
        return non_empty(reference, text.trim());
    }
    if let Some(name) = reference.strip_prefix("credential:") {
        let name = name.trim();
        if name.is_empty() || name.contains(['/', '\\']) || name == ".." {
            return Err(SecretError::Invalid(reference.to_owned()));
        }
        let dir = env
            .var("CREDENTIALS_DIRECTORY")
            .ok()
            .flatten()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| SecretError::NoCredentialsDirectory(reference.to_owned()))?;
        let text = std::fs::read_to_string(Path::new(&dir).join(name)).map_err(unreadable)?;
        return non_empty(reference, text.trim());
    }
    let valid_name = reference
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(SecretError::Invalid(reference.to_owned()));
    }
    match env.var(reference) {
        Ok(Some(value)) => non_empty(reference, &value),
        Ok(None) => Err(SecretError::Unset(reference.to_owned())),
        Err(()) => Err(SecretError::NotUnicode(reference.to_owned())),
    }
}

fn non_empty(reference: &str, value: &str) -> Result<Secret, SecretError> {
    if value.is_empty() {
        Err(SecretError::Empty(reference.to_owned()))
    } else {
        Ok(Secret::new(value.to_owned()))
    }
}

/// A secret whose value never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The real value, for building a request. Never log or store what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}
