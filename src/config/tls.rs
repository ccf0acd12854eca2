//! Per-target transport settings as validated types: `tls:` (trusted CAs, client certificate,
//! server name, verification) and `proxy:`. `validate/transport.rs` reads the certificate and key
//! files and checks their PEM at load, so a target that loads carries usable material; building
//! a TLS client from it is `probe`'s job.
//!
//! Does not: read files, use reqwest or rustls, or show a proxy URL's credentials or a key's
//! contents: `Proxy` and `PemFile` print redacted.

use std::path::PathBuf;
use std::sync::Arc;

use super::secret::Secret;

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
    /// `url` is the real URL, `shown` its redacted form (what Debug and Display print).
    pub(super) fn new(url: Secret, shown: String) -> Proxy {
        Proxy { url, shown }
    }

    /// The real URL, credentials included. Never log or store what this returns.
    pub fn expose_url(&self) -> &str {
        self.url.expose()
    }

    /// The password of the URL's `user:password@`, as written, for scrubbing server text.
    /// Never log or store what this returns.
    pub fn password(&self) -> Option<&str> {
        let url = self.url.expose();
        let rest = &url[url.find("://")? + 3..];
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let userinfo = &authority[..authority.rfind('@')?];
        let (_, password) = userinfo.split_once(':')?;
        (!password.is_empty()).then_some(password)
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
