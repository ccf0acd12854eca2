//! Per-target transport settings: `tls:` (trusted CAs, client certificate, server name,
//! verification) and `proxy:`. Certificate and key files are read and their PEM checked here,
//! at load, so a target that loads carries usable material; building a TLS client from it is
//! `probe`'s job.
//!
//! Does not: use reqwest or rustls (only rustls' PEM reader, `rustls-pki-types`), or show a
//! proxy URL's credentials or a key's contents: `Proxy` and `PemFile` print redacted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::{self, PemObject, SectionKind};

use super::Secret;
use super::raw::{RawTls, Sourced, join};
use super::redact::redact_userinfo;
use super::validate::{Problem, problem};
use crate::dataset::{Template, io_message};

type Result<T> = std::result::Result<T, Problem>;

/// A target's own TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    /// Trust exactly these CAs (`ca_file`) instead of the built-in roots, as curl's `--cacert`
    /// and Prometheus' `tls_config.ca_file` do.
    pub ca: Option<PemFile>,
    /// A client certificate for servers that require one (mutual TLS).
    pub client_cert: Option<ClientCert>,
    pub server_name: Option<ServerName>,
    /// Accept any server certificate: expired, self-signed, issued for another name. `check`
    /// says so loudly.
    pub insecure_skip_verify: bool,
}

/// A PEM file as read at load.
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    /// Resolved against the config file's directory.
    pub path: PathBuf,
    /// The file's bytes, checked to hold the sections the field needs.
    pub pem: Arc<[u8]>,
}

/// Path and size only: a key file's contents never print.
impl std::fmt::Debug for PemFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemFile")
            .field("path", &self.path)
            .field("bytes", &self.pem.len())
            .finish()
    }
}

/// `cert_file` (one or more certificates, leaf first) with `key_file` (its private key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert: PemFile,
    pub key: PemFile,
}

impl ClientCert {
    /// Certificates then key in one PEM buffer, the shape TLS client libraries take.
    pub fn identity_pem(&self) -> Vec<u8> {
        let mut pem = Vec::with_capacity(self.cert.pem.len() + self.key.pem.len() + 1);
        pem.extend_from_slice(&self.cert.pem);
        pem.push(b'\n');
        pem.extend_from_slice(&self.key.pem);
        pem
    }
}

/// `server_name`: the name the server certificate is verified against, sent as SNI and in the
/// `Host` header, while connections go to the URL's host (an IP address or an alias).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName {
    /// A DNS name, lower case.
    pub name: String,
    /// The URL's host, where connections actually go (IPv6 without brackets).
    pub connect_host: String,
}

impl ServerName {
    /// False when the URL already names the server (nothing to redirect).
    pub fn redirects(&self) -> bool {
        !self.name.eq_ignore_ascii_case(&self.connect_host)
    }
}

/// A target's own proxy. Its URL may carry credentials (literal or `${VAR}`), so Debug and
/// Display print the redacted form (`http://<redacted>@proxy:3128`); only `expose_url` gives
/// the real one, for the client.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    url: Secret,
    shown: String,
}

impl Proxy {
    /// The real URL, credentials included. Never log or store what this returns.
    pub fn expose_url(&self) -> &str {
        self.url.expose()
    }
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({})", self.shown)
    }
}

/// What `tls` needs to know about the target's URL.
pub(super) struct UrlFacts {
    pub scheme: String,
    /// The host, when every request goes to the same one (no placeholder reaches it).
    pub fixed_host: Option<String>,
    /// The URL as shown in messages (redacted).
    pub shown: String,
}

/// Validates `tls:` and reads its files. `None` for a `defaults.tls` that reaches an
/// `http://` target: there is no TLS to configure there.
pub(super) fn tls(raw: &Sourced<RawTls>, url: &UrlFacts, base_dir: &Path) -> Result<Option<Tls>> {
    let at = &raw.path;
    if url.scheme != "https" {
        if at.starts_with("defaults.") {
            return Ok(None);
        }
        return Err(problem(
            at,
            format!(
                "only applies to https:// URLs, got {:?}; use https or remove tls",
                url.shown
            ),
        ));
    }
    let r = &raw.value;
    let insecure_skip_verify = r.insecure_skip_verify.unwrap_or(false);
    let ca = match &r.ca_file {
        None => None,
        Some(_) if insecure_skip_verify => {
            return Err(problem(
                join(at, "ca_file"),
                "is ignored with insecure_skip_verify: true, which accepts any certificate; remove one of them",
            ));
        }
        Some(file) => Some(read_pem(
            &join(at, "ca_file"),
            file,
            base_dir,
            Want::Certificates,
        )?),
    };
    let client_cert = match (&r.cert_file, &r.key_file) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(problem(
                join(at, "key_file"),
                "is required with cert_file; give the client certificate's private key (PEM)",
            ));
        }
        (None, Some(_)) => {
            return Err(problem(
                join(at, "cert_file"),
                "is required with key_file; give the client certificate (PEM)",
            ));
        }
        (Some(cert), Some(key)) => Some(ClientCert {
            cert: read_pem(&join(at, "cert_file"), cert, base_dir, Want::Certificates)?,
            key: read_pem(&join(at, "key_file"), key, base_dir, Want::Key)?,
        }),
    };
    let server_name = r
        .server_name
        .as_deref()
        .map(|name| server_name(&join(at, "server_name"), name, url))
        .transpose()?;
    Ok(Some(Tls {
        ca,
        client_cert,
        server_name,
        insecure_skip_verify,
    }))
}

fn server_name(path: &str, name: &str, url: &UrlFacts) -> Result<ServerName> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(problem(
            path,
            "is empty; give the host name the server certificate is issued for, or remove it",
        ));
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(problem(
            path,
            format!(
                "must be a host name, got the IP address {name:?}; put the address in url and the certificate's host name here"
            ),
        ));
    }
    if rustls_pki_types::DnsName::try_from(name.as_str()).is_err() {
        return Err(problem(
            path,
            format!("not a valid host name, got {name:?}; use e.g. api.internal"),
        ));
    }
    let Some(host) = url.fixed_host.as_deref() else {
        return Err(problem(
            path,
            format!(
                "needs a fixed host in url, got {:?}; server_name pins one host, so the host cannot hold a {{{{placeholder}}}}",
                url.shown
            ),
        ));
    };
    Ok(ServerName {
        name,
        connect_host: host.trim_matches(['[', ']']).to_owned(),
    })
}

/// What a PEM file must hold.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    /// One or more certificates, nothing else.
    Certificates,
    /// Exactly one unencrypted private key, nothing else.
    Key,
}

fn read_pem(path: &str, file: &str, base_dir: &Path, want: Want) -> Result<PemFile> {
    if file.trim().is_empty() {
        return Err(problem(
            path,
            "is empty; name a PEM file (relative to the config file)",
        ));
    }
    let full = base_dir.join(file);
    let shown = full.display();
    let bytes = std::fs::read(&full).map_err(|e| {
        problem(
            path,
            format!(
                "cannot read {shown}: {}; the path is relative to the config file",
                io_message(&e)
            ),
        )
    })?;
    let (mut certificates, mut keys) = (0, 0);
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
        // The reader's own message may quote a line of the file; a key file's lines are secret.
        let (kind, _der) = section.map_err(|e| {
            problem(
                path,
                format!(
                    "{shown} is not valid PEM ({}); {}",
                    pem_problem(&e),
                    want.fix()
                ),
            )
        })?;
        match kind {
            SectionKind::Certificate => certificates += 1,
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
                keys += 1;
            }
            other => {
                return Err(problem(
                    path,
                    format!(
                        "{shown} holds a {} section; {}",
                        section_name(other),
                        want.fix()
                    ),
                ));
            }
        }
    }
    let fits = match want {
        Want::Certificates => certificates >= 1 && keys == 0,
        Want::Key => keys == 1 && certificates == 0,
    };
    if !fits {
        let found = match (certificates, keys) {
            (0, 0) => "no PEM certificate or key".to_owned(),
            (c, k) => format!("{c} certificate(s) and {k} private key(s)"),
        };
        return Err(problem(
            path,
            format!("{shown} holds {found}; {}", want.fix()),
        ));
    }
    Ok(PemFile {
        path: full,
        pem: bytes.into(),
    })
}

impl Want {
    fn fix(self) -> &'static str {
        match self {
            Want::Certificates => {
                "expected one or more -----BEGIN CERTIFICATE----- blocks (the key goes in key_file)"
            }
            Want::Key => {
                "expected one unencrypted -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) block; decrypt an encrypted key with openssl pkey"
            }
        }
    }
}

fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a block has no END line",
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line",
        pem::Error::Base64Decode(_) => "bad base64 inside a block",
        pem::Error::SectionTooLarge => "a block is too large",
        _ => "unreadable",
    }
}

fn section_name(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::PublicKey => "PUBLIC KEY",
        SectionKind::Crl => "X509 CRL",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        SectionKind::EchConfigList => "ECHCONFIG",
        _ => "unexpected",
    }
}

/// Validates `proxy:` (already compiled, secrets resolved, no placeholders).
pub(super) fn proxy(template: &Template, path: &str) -> Result<Proxy> {
    let url = template.render_to_string(None);
    let shown = redact_userinfo(&template.redacted(&[]));
    let fix = "use e.g. http://proxy.internal:3128 (credentials as http://user:${PROXY_PASSWORD}@host:port)";
    if url.trim().is_empty() {
        return Err(problem(
            path,
            "is empty; remove it to use HTTPS_PROXY/HTTP_PROXY from the environment, or give a proxy URL",
        ));
    }
    let parsed = url::Url::parse(url.trim())
        .map_err(|e| problem(path, format!("not a valid URL ({e}), got {shown:?}; {fix}")))?;
    match parsed.scheme() {
        "http" | "https" => {}
        "socks4" | "socks4a" | "socks5" | "socks5h" => {
            return Err(problem(
                path,
                format!(
                    "SOCKS proxies are not supported (streamprobe is built without reqwest's socks feature), got {shown:?}; use an http:// or https:// proxy"
                ),
            ));
        }
        _ => {
            return Err(problem(
                path,
                format!("scheme must be http or https, got {shown:?}; {fix}"),
            ));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(problem(path, format!("has no host, got {shown:?}; {fix}")));
    }
    Ok(Proxy {
        url: Secret::new(url.trim().to_owned()),
        shown,
    })
}
