//! `server.web_config`: TLS, basic auth and response headers for the daemon's web endpoints, in
//! the Prometheus exporter-toolkit format
//! (<https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md>), so
//! a `web.yml` written for node_exporter or blackbox_exporter works here unchanged.
//!
//! `load` reads the file once, at start-up: it checks every key, reads and parses the PEM files
//! (paths relative to the web config file), and checks each password is a well-formed bcrypt
//! hash. After it returns, the types guarantee validity. The file is not re-read on reload;
//! changing it needs a restart.
//!
//! Does not: build TLS server state, open sockets, verify passwords, or ever put a password or
//! a key in a message (`server/` turns a `WebConfig` into a rustls acceptor and an auth layer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::error::ConfigError;
use super::raw::{ParseError, Value};
use crate::dataset::io_message;

/// A validated web config file.
pub struct WebConfig {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Serve HTTPS when set, plain HTTP otherwise.
    pub tls: Option<Tls>,
    /// Require `Authorization: Basic` on every endpoint when set (never empty).
    pub users: Option<BasicAuthUsers>,
    /// Added to every response (canonical names, sorted).
    pub headers: Vec<(String, String)>,
    /// Offer HTTP/2 (ALPN `h2` over TLS, prior knowledge over plain HTTP). Default true.
    pub http2: bool,
}

/// Certificates and keys in DER form, ready for a TLS library.
pub struct Tls {
    /// The server's certificate chain, leaf first.
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub client_auth: ClientAuth,
    /// Roots that client certificates must chain to; non-empty for the verifying modes.
    pub client_cas: Vec<CertificateDer<'static>>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

/// exporter-toolkit's `client_auth_type` (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// Ask for a certificate; accept the connection without one; do not verify one.
    RequestClientCert,
    /// Require a certificate; do not verify it.
    RequireAnyClientCert,
    /// Verify a certificate when the client sends one.
    VerifyClientCertIfGiven,
    /// Require a certificate that chains to `client_ca_file`.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    const ALL: [ClientAuth; 5] = [
        ClientAuth::NoClientCert,
        ClientAuth::RequestClientCert,
        ClientAuth::RequireAnyClientCert,
        ClientAuth::VerifyClientCertIfGiven,
        ClientAuth::RequireAndVerifyClientCert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::NoClientCert => "NoClientCert",
            ClientAuth::RequestClientCert => "RequestClientCert",
            ClientAuth::RequireAnyClientCert => "RequireAnyClientCert",
            ClientAuth::VerifyClientCertIfGiven => "VerifyClientCertIfGiven",
            ClientAuth::RequireAndVerifyClientCert => "RequireAndVerifyClientCert",
        }
    }

    /// Whether client certificates are checked against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

/// Users and their bcrypt hashes, each well-formed with a cost bcrypt accepts.
pub struct BasicAuthUsers {
    users: BTreeMap<String, String>,
    /// The highest cost among the hashes.
    max_cost: u32,
}

impl BasicAuthUsers {
    /// `user`'s bcrypt hash; `None` for an unknown user.
    pub fn hash(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }

    /// The highest bcrypt cost among the hashes: checking a password against a decoy hash of
    /// this cost takes as long as checking a real one.
    pub fn max_cost(&self) -> u32 {
        self.max_cost
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Headers exporter-toolkit lets a web config set; others could break the protocol
/// (`Content-Length`, `Connection`) or the endpoints (`Content-Type`).
const SETTABLE_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    // Known exporter-toolkit keys that streamprobe does not implement: refused with a reason
    // rather than as unknown keys.
    cipher_suites: Option<Value>,
    curve_preferences: Option<Value>,
    prefer_server_cipher_suites: Option<Value>,
    client_allowed_sans: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// Where `server.web_config` points: relative paths are relative to the config file's
/// directory, like every other path in it.
pub fn resolve(config_file: &Path, web_config: &Path) -> PathBuf {
    match config_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(web_config),
        _ => web_config.to_path_buf(),
    }
}

/// Reads and validates a web config file.
pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "{file}: cannot read the web config file: {}; server.web_config is relative to the config file",
            io_message(&e)
        ))
    })?;
    load_str(&text, path)
}

/// As `load`, from text; `path` names the file in messages and anchors relative paths.
pub fn load_str(text: &str, path: &Path) -> Result<WebConfig, ConfigError> {
    let file = path.display().to_string();
    let fail = |field: &str, message: String| {
        if field.is_empty() {
            ConfigError(format!("{file}: {message}"))
        } else {
            ConfigError(format!("{file}: {field}: {message}"))
        }
    };
    let raw: RawWebConfig = if text.trim().is_empty() {
        // exporter-toolkit accepts an empty file: plain HTTP, no auth.
        RawWebConfig::default()
    } else {
        let value = super::raw::parse_yaml_value(text).map_err(|e| match e {
            ParseError::Syntax {
                line,
                column,
                message,
            } if line > 0 => fail(
                "",
                format!("invalid YAML at line {line}, column {column}: {message}"),
            ),
            ParseError::Syntax { message, .. } => fail("", format!("invalid YAML: {message}")),
            other => fail("", format!("invalid YAML: {other:?}")),
        })?;
        if value.is_null() {
            RawWebConfig::default()
        } else {
            super::raw::deserialize(value)
                .map_err(|(path, message)| field_error(&file, &path, &message))?
        }
    };

    let base = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tls = raw
        .tls_server_config
        .map(|t| tls(t, &base))
        .transpose()
        .map_err(|(field, message)| fail(&field, message))?;

    let users = match raw.basic_auth_users {
        None => None,
        Some(users) if users.is_empty() => None,
        Some(users) => Some(basic_auth_users(users).map_err(|(f, m)| fail(&f, m))?),
    };

    let http = raw.http_server_config.unwrap_or_default();
    let mut headers = Vec::new();
    for (name, value) in http.headers.unwrap_or_default() {
        let field = format!("http_server_config.headers.{name}");
        let Some(canonical) = SETTABLE_HEADERS
            .iter()
            .find(|h| h.eq_ignore_ascii_case(&name))
        else {
            return Err(fail(
                &field,
                format!(
                    "this header cannot be set; the headers a web config can set are {}",
                    SETTABLE_HEADERS.join(", ")
                ),
            ));
        };
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(fail(
                &field,
                format!("not a valid header value, got {value:?}; use printable ASCII"),
            ));
        }
        headers.push(((*canonical).to_owned(), value));
    }

    Ok(WebConfig {
        path: path.to_path_buf(),
        tls,
        users,
        headers,
        http2: http.http2.unwrap_or(true),
    })
}

/// serde's message for a field, in the config's style.
fn field_error(file: &str, path: &str, message: &str) -> ConfigError {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, rest) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let parent = path
            .strip_suffix(key)
            .map(|p| p.trim_end_matches('.'))
            .unwrap_or("");
        let at = if parent.is_empty() || parent == "." {
            key.to_owned()
        } else {
            format!("{parent}.{key}")
        };
        let near = expected
            .iter()
            .map(|c| (strsim::jaro_winkler(key, c), *c))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        return ConfigError(match near {
            Some((_, near)) => format!("{file}: {at}: unknown key; did you mean {near}?"),
            None => format!(
                "{file}: {at}: unknown key; valid keys here are {}",
                expected.join(", ")
            ),
        });
    }
    let message = message
        .replace("invalid type: ", "")
        .replace("unit value", "null");
    if path.is_empty() || path == "." {
        ConfigError(format!("{file}: {message}"))
    } else {
        ConfigError(format!("{file}: {path}: {message}"))
    }
}

type Problem = (String, String);

fn tls(raw: RawTls, base: &Path) -> Result<Tls, Problem> {
    let at = |field: &str| format!("tls_server_config.{field}");
    for (key, set) in [
        ("cipher_suites", raw.cipher_suites.is_some()),
        ("curve_preferences", raw.curve_preferences.is_some()),
        (
            "prefer_server_cipher_suites",
            raw.prefer_server_cipher_suites.is_some(),
        ),
    ] {
        if set {
            return Err((
                at(key),
                "is not supported by streamprobe, which uses rustls's modern defaults; remove it"
                    .into(),
            ));
        }
    }
    if raw.client_allowed_sans.is_some() {
        return Err((
            at("client_allowed_sans"),
            "is not supported by streamprobe; remove it and issue client certificates from a dedicated client_ca_file".into(),
        ));
    }
    let (Some(cert_file), Some(key_file)) = (&raw.cert_file, &raw.key_file) else {
        let missing = if raw.cert_file.is_none() {
            "cert_file"
        } else {
            "key_file"
        };
        return Err((
            at(missing),
            "is required when tls_server_config is set; give both cert_file and key_file (PEM)"
                .into(),
        ));
    };

    let cert_path = base.join(cert_file);
    let bytes = read_file(&cert_path).map_err(|m| (at("cert_file"), m))?;
    let cert_chain = certificates(&bytes, &cert_path).map_err(|m| (at("cert_file"), m))?;

    let key_path = base.join(key_file);
    let bytes = read_file(&key_path).map_err(|m| (at("key_file"), m))?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        (
            at("key_file"),
            format!(
                "{}: no private key in the file ({}); give a PEM file with a PKCS#8, PKCS#1 or SEC1 key",
                key_path.display(),
                pem_message(&e)
            ),
        )
    })?;

    let client_cas = match &raw.client_ca_file {
        Some(ca_file) => {
            let ca_path = base.join(ca_file);
            let bytes = read_file(&ca_path).map_err(|m| (at("client_ca_file"), m))?;
            certificates(&bytes, &ca_path).map_err(|m| (at("client_ca_file"), m))?
        }
        None => Vec::new(),
    };

    // As exporter-toolkit: a client CA without a type means RequireAndVerifyClientCert.
    let client_auth = match raw.client_auth_type.as_deref() {
        None | Some("") if raw.client_ca_file.is_some() => ClientAuth::RequireAndVerifyClientCert,
        None | Some("") => ClientAuth::NoClientCert,
        Some(text) => ClientAuth::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| {
                (
                    at("client_auth_type"),
                    format!(
                        "unknown client auth type, got {text:?}; use one of {}",
                        ClientAuth::ALL.map(ClientAuth::as_str).join(", ")
                    ),
                )
            })?,
    };
    if client_auth.verifies() && raw.client_ca_file.is_none() {
        return Err((
            at("client_ca_file"),
            format!(
                "is required with client_auth_type {}; give the PEM file of the CA that issues client certificates",
                client_auth.as_str()
            ),
        ));
    }
    if !client_auth.verifies() && raw.client_ca_file.is_some() {
        return Err((
            at("client_ca_file"),
            format!(
                "is set but client_auth_type {} does not verify client certificates; use VerifyClientCertIfGiven or RequireAndVerifyClientCert, or remove client_ca_file",
                client_auth.as_str()
            ),
        ));
    }

    let min_version = version(raw.min_version.as_deref(), TlsVersion::Tls12)
        .map_err(|m| (at("min_version"), m))?;
    let max_version = version(raw.max_version.as_deref(), TlsVersion::Tls13)
        .map_err(|m| (at("max_version"), m))?;
    if min_version > max_version {
        return Err((
            at("min_version"),
            format!(
                "must not be above max_version ({}), got {}; lower it or raise max_version",
                max_version.as_str(),
                min_version.as_str()
            ),
        ));
    }

    Ok(Tls {
        cert_chain,
        key,
        client_auth,
        client_cas,
        min_version,
        max_version,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "cannot read {}: {}; the path is relative to the web config file",
            path.display(),
            io_message(&e)
        )
    })
}

fn certificates(bytes: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "{}: not a valid PEM file ({}); give PEM certificates (-----BEGIN CERTIFICATE-----)",
                path.display(),
                pem_message(&e)
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in the file; give PEM certificates (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// A PEM error without the byte dumps some variants carry (a key file's line must never be
/// echoed).
fn pem_message(err: &rustls_pki_types::pem::Error) -> &'static str {
    use rustls_pki_types::pem::Error;
    match err {
        Error::NoItemsFound => "nothing found",
        Error::MissingSectionEnd { .. } => "a section has no END line",
        Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        Error::Base64Decode(_) => "bad base64",
        _ => "unreadable",
    }
}

fn version(text: Option<&str>, default: TlsVersion) -> Result<TlsVersion, String> {
    match text {
        None | Some("") => Ok(default),
        Some("TLS12") => Ok(TlsVersion::Tls12),
        Some("TLS13") => Ok(TlsVersion::Tls13),
        Some(old @ ("TLS10" | "TLS11")) => Err(format!(
            "{old} is not supported (it is deprecated, RFC 8996); use TLS12 or TLS13"
        )),
        Some(other) => Err(format!(
            "unknown TLS version, got {other:?}; use TLS12 or TLS13"
        )),
    }
}

fn basic_auth_users(users: BTreeMap<String, String>) -> Result<BasicAuthUsers, Problem> {
    let mut max_cost = 0;
    for (user, hash) in &users {
        let field = format!("basic_auth_users.{user}");
        if user.is_empty() || user.contains(':') {
            return Err((
                field,
                "user names must be non-empty and must not contain ':'; rename the user".into(),
            ));
        }
        // Never echo the value: a plain-text password put here by mistake must not reach a log.
        let parts: bcrypt::HashParts = hash.parse().map_err(|_| {
            (
                field.clone(),
                "not a bcrypt hash; store a hash, not the password: htpasswd -nBC 10 \"\" | tr -d ':\\n'"
                    .to_owned(),
            )
        })?;
        if !(4..=31).contains(&parts.get_cost()) {
            return Err((
                field,
                format!(
                    "bcrypt cost must be between 4 and 31, got {}; hash again with htpasswd -nBC 10",
                    parts.get_cost()
                ),
            ));
        }
        max_cost = max_cost.max(parts.get_cost());
    }
    Ok(BasicAuthUsers { users, max_cost })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_plain_http_without_auth() {
        let web = load_str("", Path::new("web.yml")).unwrap();
        assert!(web.tls.is_none() && web.users.is_none() && web.http2);
    }

    #[test]
    fn relative_web_config_follows_the_config_file() {
        assert_eq!(
            resolve(Path::new("/etc/sp/sp.yaml"), Path::new("web.yml")),
            PathBuf::from("/etc/sp/web.yml")
        );
        assert_eq!(
            resolve(Path::new("sp.yaml"), Path::new("/x/web.yml")),
            PathBuf::from("/x/web.yml")
        );
    }

    #[test]
    fn users_keep_their_hashes_and_the_highest_cost() {
        let (four, five) = (bcrypt::hash("a", 4).unwrap(), bcrypt::hash("b", 5).unwrap());
        let text = format!("basic_auth_users:\n  alice: '{four}'\n  bob: '{five}'\n");
        let users = load_str(&text, Path::new("web.yml"))
            .unwrap()
            .users
            .unwrap();
        assert_eq!(users.hash("alice"), Some(four.as_str()));
        assert_eq!(users.hash("carol"), None);
        assert_eq!(users.max_cost(), 5);
    }
}
