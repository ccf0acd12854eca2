//! The HTTP clients every burst shares: one pooled, one with fresh connections, and one per
//! target with its own `tls` or `proxy` settings (built on first use, kept until those change).
//! Every client carries the connection-timing hooks (`connection.rs`) and the probe's own TLS
//! config (`tls.rs`), and sends a pinned `tls.server_name` to the URL's host.
//!
//! Does not: send requests (`request.rs`) or decide when they start (`burst.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::config::{Proxy, Target, Tls};

use super::ConnectionMode;
use super::connection::{TimedResolver, TimingLayer};
use super::request::error_chain;
use super::tls;

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

/// What a target's requests are sent with: its client, and one that always opens a new
/// connection, for the one retry of a request whose reused keep-alive connection failed before
/// any response byte (the same client when the target uses fresh connections anyway).
#[derive(Clone)]
pub(crate) struct TargetClient {
    pub(crate) http: reqwest::Client,
    pub(crate) fresh: reqwest::Client,
}

struct OwnClient {
    transport: Transport,
    /// A build failure is kept too: the same settings fail the same way every time.
    http: Result<TargetClient, Arc<str>>,
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
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

impl Client {
    pub fn new() -> Result<Self, ClientError> {
        let build = |mode| {
            let tls = tls::client_config(None).map_err(ClientError)?;
            builder(mode, tls)
                .build()
                .map_err(|e| ClientError(error_chain(&e)))
        };
        Ok(Client {
            pooled: build(ConnectionMode::Reused)?,
            fresh: build(ConnectionMode::Fresh)?,
            own: Arc::default(),
        })
    }

    /// The client for `target`'s requests, or why it cannot be built (its TLS material was
    /// rejected: every request of the burst then fails as `tls`).
    pub(super) fn for_target(
        &self,
        target: &Target,
    ) -> (Result<TargetClient, Arc<str>>, ConnectionMode) {
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
            let client = TargetClient {
                http: shared.clone(),
                fresh: self.fresh.clone(),
            };
            return (Ok(client), mode);
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
        let http = build_target(&transport).map_err(Arc::from);
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

/// What every client shares: user agent, no Nagle delay, pool policy per connection mode, the
/// connection-timing layer and resolver, and the probe's TLS config.
fn builder(mode: ConnectionMode, tls: tls::TlsConfig) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("streamprobe/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .connector_layer(TimingLayer)
        .dns_resolver(Arc::new(TimedResolver::default()))
        .use_preconfigured_tls(tls);
    match mode {
        ConnectionMode::Reused => builder.pool_max_idle_per_host(usize::MAX),
        ConnectionMode::Fresh => builder.pool_max_idle_per_host(0),
    }
}

/// A target's own clients (its pool and its fresh-connection retry client), which share one
/// TLS config and session cache.
fn build_target(transport: &Transport) -> Result<TargetClient, String> {
    let tls = tls::client_config(transport.tls.as_ref())?;
    let http = build_own(transport, transport.mode, tls.clone())?;
    let fresh = match transport.mode {
        ConnectionMode::Fresh => http.clone(),
        ConnectionMode::Reused => build_own(transport, ConnectionMode::Fresh, tls)?,
    };
    Ok(TargetClient { http, fresh })
}

/// A client with a target's own TLS and proxy settings. Messages name files, never contents,
/// and show the proxy redacted.
fn build_own(
    transport: &Transport,
    mode: ConnectionMode,
    tls: tls::TlsConfig,
) -> Result<reqwest::Client, String> {
    let mut builder = builder(mode, tls);
    if let Some(name) = transport
        .tls
        .as_ref()
        .and_then(|t| t.server_name.as_ref())
        .filter(|n| n.redirects())
    {
        // Requests name `server_name` (see `request::build`); this resolver sends that name to
        // the URL's host. Proxies from the environment would resolve the name themselves, so
        // they are off for such a target (a `proxy:` is a config error).
        builder = builder
            .dns_resolver(Arc::new(TimedResolver::pinned(
                name.name.clone(),
                name.connect_host.clone(),
            )))
            .no_proxy();
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
