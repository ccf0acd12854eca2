//! Transport checks for a target: `url` (shape, scheme, host), `tls:` (files read and their
//! PEM checked here, at load), `proxy:`, and the rules between them (a pinned `server_name`
//! needs a fixed host and no proxy).
//!
//! Does not: use reqwest or rustls (only rustls' PEM reader, `rustls-pki-types`), or show a URL's
//! credentials or a key's contents in a message.

use std::path::Path;

use rustls_pki_types::pem::{self, PemObject, SectionKind};

use super::compile::Compiler;
use crate::config::error::{Problem, problem};
use crate::config::raw::{RawTls, Sourced, TargetFields, join};
use crate::config::redact::{redact_url, redact_userinfo};
use crate::config::secret::Secret;
use crate::config::template::{Piece, Template, scan};
use crate::config::tls::{ClientCert, PemFile, Proxy, ServerName, Tls};
use crate::dataset::{Dataset, io_message};

type Result<T> = std::result::Result<T, Problem>;

/// `tls.insecure_skip_verify` when not set: server certificates are verified.
const DEFAULT_INSECURE_SKIP_VERIFY: bool = false;

/// Where a target's requests go and how they get there.
pub(super) struct Transport {
    /// May hold `{{column}}` placeholders and secrets.
    pub(super) url: Template,
    /// The URL's path (placeholders filled with a stand-in): names a well-known endpoint.
    /// May hold a secret: never show it.
    pub(super) path: String,
    /// The same path as humans see it (secrets `<redacted>`, placeholders `{{column}}`).
    pub(super) shown_path: String,
    pub(super) tls: Option<Tls>,
    pub(super) proxy: Option<Proxy>,
}

/// Checks `url`, `tls:` and `proxy:` in that order; `at` is the target's path (`targets[i]`, or
/// empty for an old-format file).
pub(super) fn transport(
    f: &TargetFields,
    at: &str,
    data: Option<&Dataset>,
    compiler: Compiler,
) -> Result<Transport> {
    let (url, url_facts) = url(f.url.as_ref(), at, data, compiler)?;
    let tls = match &f.tls {
        Some(raw) => tls(raw, &url_facts, compiler.base_dir)?,
        None => None,
    };
    let proxy = f.proxy.as_ref().map(|p| proxy(p, compiler)).transpose()?;
    if let (Some(proxy), Some(name)) = (&f.proxy, tls.as_ref().and_then(|t| t.server_name.as_ref()))
    {
        return Err(problem(
            &proxy.path,
            format!(
                "cannot be combined with tls.server_name ({:?}): through a proxy, the proxy resolves the host name; remove one of them",
                name.name
            ),
        ));
    }
    Ok(Transport {
        url,
        shown_path: path_of(&url_facts.shown).to_owned(),
        path: url_facts.path,
        tls,
        proxy,
    })
}

fn url(
    raw: Option<&Sourced<String>>,
    at: &str,
    data: Option<&Dataset>,
    compiler: Compiler,
) -> Result<(Template, UrlFacts)> {
    let Some(raw) = raw else {
        return Err(problem(
            join(at, "url"),
            "is required; give the endpoint, e.g. url: https://api.openai.com/v1/chat/completions",
        ));
    };
    let template = compiler.string_template(&raw.value, &raw.path, data, false)?;
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
        path: parsed.path().to_owned(),
        fixed_host,
        shown: redact_url(&redact_userinfo(&shown)),
    };
    Ok((template, facts))
}

/// The path of a URL written as text: after the authority, before the query or fragment.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &rest[rest.find('/').unwrap_or(rest.len())..];
    &path[..path.find(['?', '#']).unwrap_or(path.len())]
}

/// A target's own proxy: one per target, so no placeholders; secrets are fine.
fn proxy(raw: &Sourced<String>, compiler: Compiler) -> Result<Proxy> {
    if scan(&raw.value)
        .iter()
        .any(|p| matches!(p, Piece::Placeholder(_)))
    {
        return Err(problem(
            &raw.path,
            "cannot hold {{placeholders}}, one proxy serves the whole target; use a fixed URL (secrets as ${VAR} are fine)",
        ));
    }
    let template = compiler.string_template(&raw.value, &raw.path, None, false)?;
    proxy_url(&template, &raw.path)
}

/// What `tls` needs to know about the target's URL.
struct UrlFacts {
    scheme: String,
    path: String,
    /// The host, when every request goes to the same one (no placeholder reaches it).
    fixed_host: Option<String>,
    /// The URL as shown in messages (redacted).
    shown: String,
}

/// Validates `tls:` and reads its files. `None` for a `defaults.tls` that reaches an
/// `http://` target: there is no TLS to configure there.
fn tls(raw: &Sourced<RawTls>, url: &UrlFacts, base_dir: &Path) -> Result<Option<Tls>> {
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
    let insecure_skip_verify = r
        .insecure_skip_verify
        .unwrap_or(DEFAULT_INSECURE_SKIP_VERIFY);
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
fn proxy_url(template: &Template, path: &str) -> Result<Proxy> {
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
    Ok(Proxy::new(Secret::new(url.trim().to_owned()), shown))
}
