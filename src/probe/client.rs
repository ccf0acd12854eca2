//! The HTTP clients every burst shares: one pooled, one with fresh connections, and one per
//! target with its own `tls` or `proxy` settings (built on first use, kept until those change),
//! plus the resolver that sends a pinned `tls.server_name` to the URL's host.
//!
//! Does not: send requests (`request.rs`) or decide when they start (`burst.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::{Proxy, Target, Tls};

use super::ConnectionMode;
use super::request::error_chain;

/// The HTTP clients, shared by every burst: one pooled (connections reused across requests,
/// with no cap on idle connections per host, so a pool as large as the concurrency forms), one
/// that opens a fresh connection per request, and one per target with its own `tls` or `proxy`
/// settings.
///
/// A target's own client is built on its first burst and kept, so its connections are reused
/// across bursts like everyone else's; it is rebuilt only when the target's settings change (a
/// reload). Targets without such settings share the two common clients, which read the proxy
/// environment variables (`HTTPS_PROXY`, `NO_PROXY`, ...) as reqwest does by default.
#[derive(Clone)]
pub struct Client {
    pooled: reqwest::Client,
    fresh: reqwest::Client,
    /// By target name.
    own: Arc<Mutex<HashMap<String, OwnClient>>>,
}

struct OwnClient {
    transport: Transport,
    /// A build failure is kept too: the same settings fail the same way every time.
    http: Result<reqwest::Client, Arc<str>>,
}

/// What a target's own client is built from; equal settings, same client.
#[derive(Clone, PartialEq)]
struct Transport {
    tls: Option<Tls>,
    proxy: Option<Proxy>,
    mode: ConnectionMode,
}

/// The HTTP client could not be built (TLS backend initialisation).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client")]
pub struct ClientError(#[source] reqwest::Error);

impl Client {
    pub fn new() -> Result<Self, ClientError> {
        let pooled = builder(ConnectionMode::Reused)
            .build()
            .map_err(ClientError)?;
        let fresh = builder(ConnectionMode::Fresh)
            .build()
            .map_err(ClientError)?;
        Ok(Client {
            pooled,
            fresh,
            own: Arc::default(),
        })
    }

    /// The client for `target`'s requests, or why it cannot be built (its TLS material was
    /// rejected: every request of the burst then fails as `tls`).
    pub(super) fn for_target(
        &self,
        target: &Target,
    ) -> (Result<reqwest::Client, Arc<str>>, ConnectionMode) {
        let mode = if target.fresh_connections {
            ConnectionMode::Fresh
        } else {
            ConnectionMode::Reused
        };
        if target.tls.is_none() && target.proxy.is_none() {
            let shared = match mode {
                ConnectionMode::Fresh => &self.fresh,
                ConnectionMode::Reused => &self.pooled,
            };
            return (Ok(shared.clone()), mode);
        }
        let transport = Transport {
            tls: target.tls.clone(),
            proxy: target.proxy.clone(),
            mode,
        };
        let mut own = self.own.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = own.get(&target.name)
            && existing.transport == transport
        {
            return (existing.http.clone(), mode);
        }
        let http = build_own(&transport).map_err(Arc::from);
        own.insert(
            target.name.clone(),
            OwnClient {
                transport,
                http: http.clone(),
            },
        );
        (http, mode)
    }
}

/// What every client shares: user agent, no Nagle delay, pool policy per connection mode.
fn builder(mode: ConnectionMode) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("streamprobe/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90));
    match mode {
        ConnectionMode::Reused => builder.pool_max_idle_per_host(usize::MAX),
        ConnectionMode::Fresh => builder.pool_max_idle_per_host(0),
    }
}

/// A client with a target's own TLS and proxy settings. Messages name files, never contents,
/// and show the proxy redacted.
fn build_own(transport: &Transport) -> Result<reqwest::Client, String> {
    let mut builder = builder(transport.mode);
    if let Some(tls) = &transport.tls {
        if let Some(ca) = &tls.ca {
            // `ca_file` replaces the built-in roots, as curl's --cacert does: a private CA is
            // what the target is meant to be verified against.
            builder = builder.tls_built_in_root_certs(false);
            let certs = reqwest::Certificate::from_pem_bundle(&ca.pem)
                .map_err(|e| format!("tls.ca_file {}: {}", ca.path.display(), error_chain(&e)))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(client) = &tls.client_cert {
            let identity = reqwest::Identity::from_pem(&client.identity_pem()).map_err(|e| {
                format!(
                    "tls.cert_file {} with key_file {}: {}",
                    client.cert.path.display(),
                    client.key.path.display(),
                    error_chain(&e)
                )
            })?;
            builder = builder.identity(identity);
        }
        if tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(name) = tls.server_name.as_ref().filter(|n| n.redirects()) {
            // Requests name `server_name` (see `request::build`); this resolver sends that
            // name to the URL's host. Proxies from the environment would resolve the name
            // themselves, so they are off for such a target (a `proxy:` is a config error).
            builder = builder
                .dns_resolver(Arc::new(PinnedName {
                    name: name.name.clone(),
                    connect_host: name.connect_host.clone(),
                }))
                .no_proxy();
        }
    }
    if let Some(proxy) = &transport.proxy {
        // A target's own proxy replaces the environment's, NO_PROXY included.
        let p = reqwest::Proxy::all(proxy.expose_url())
            .map_err(|_| format!("proxy {proxy}: not a usable proxy URL"))?;
        builder = builder.proxy(p);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))
}

/// Resolves `name` (a target's `tls.server_name`) to `connect_host`'s addresses, any other
/// name as usual (getaddrinfo on the blocking pool, like reqwest's default resolver).
struct PinnedName {
    name: String,
    connect_host: String,
}

impl Resolve for PinnedName {
    fn resolve(&self, name: Name) -> Resolving {
        let host = if name.as_str().eq_ignore_ascii_case(&self.name) {
            self.connect_host.clone()
        } else {
            name.as_str().to_owned()
        };
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on every address.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
