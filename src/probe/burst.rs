//! One burst: a plan (how many requests, how many in flight, closed or open loop, warm-up)
//! executed by one engine. Modes are data: `Pacing` decides only when the next request may be
//! created; everything else is shared.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rand::RngExt;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::{Proxy, Target, Tls};

use super::request::{Measured, RequestSpec, error_chain, measure, unsent};
use super::{BurstEvent, BurstResult, ConnectionMode, Outcome, RequestRecord};

/// When a new request may start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Closed loop: a new request starts the moment one ends, so exactly `concurrency` are in
    /// flight until the tail.
    Closed,
    /// Open loop: Poisson arrivals at this mean rate, capped by `concurrency`. A request held
    /// back by the cap records the wait as `client_wait`.
    Poisson { per_second: f64 },
}

/// What one burst does.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstPlan {
    pub total_requests: u64,
    pub concurrency: u32,
    pub pacing: Pacing,
    /// Sent first, not recorded.
    pub warmup_requests: u32,
}

impl BurstPlan {
    pub fn for_target(target: &Target) -> Self {
        BurstPlan {
            total_requests: u64::from(target.total_requests.get()),
            concurrency: target.concurrency.get(),
            pacing: match target.rate {
                Some(per_second) => Pacing::Poisson { per_second },
                None => Pacing::Closed,
            },
            warmup_requests: target.warmup_requests,
        }
    }
}

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
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

impl Client {
    pub fn new() -> Result<Self, ClientError> {
        let pooled = builder(ConnectionMode::Reused)
            .build()
            .map_err(|e| ClientError(e.to_string()))?;
        let fresh = builder(ConnectionMode::Fresh)
            .build()
            .map_err(|e| ClientError(e.to_string()))?;
        Ok(Client {
            pooled,
            fresh,
            own: Arc::default(),
        })
    }

    /// The client for `target`'s requests, or why it cannot be built (its TLS material was
    /// rejected: every request of the burst then fails as `tls`).
    fn for_target(&self, target: &Target) -> (Result<reqwest::Client, Arc<str>>, ConnectionMode) {
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

/// Everything about a burst that is not the plan.
pub struct BurstOptions {
    pub burst_id: String,
    /// Keep each request's streamed text.
    pub keep_text: bool,
    /// Cap on requests in flight across all targets (`server.max_in_flight`).
    pub limiter: Option<Arc<Semaphore>>,
    /// Live consumers (progress, metrics). Sending never blocks the engine.
    pub events: Option<mpsc::UnboundedSender<BurstEvent>>,
    /// Becomes `true` to stop: nothing new starts, requests in flight are abandoned, and the
    /// result is marked interrupted.
    pub cancel: Option<watch::Receiver<bool>>,
}

/// A fresh random burst id (12 hex digits).
pub fn new_burst_id() -> String {
    format!("{:012x}", rand::rng().random::<u64>() & 0xffff_ffff_ffff)
}

/// Runs one burst to completion (or cancellation) and returns every recorded request.
pub async fn run_burst(
    client: &Client,
    target: Arc<Target>,
    plan: &BurstPlan,
    opts: BurstOptions,
) -> BurstResult {
    let started_at = SystemTime::now();
    let (http, connection_mode) = client.for_target(&target);
    let mut cancel = opts.cancel.clone();
    let mut engine = Engine {
        http,
        target: target.clone(),
        plan,
        opts: &opts,
        local: Arc::new(Semaphore::new(plan.concurrency.max(1) as usize)),
        protocol: None,
    };

    let mut interrupted = false;
    if plan.warmup_requests > 0 {
        let warm = engine
            .phase(0, u64::from(plan.warmup_requests), false, &mut cancel)
            .await;
        interrupted = warm.interrupted;
    }
    let start = Instant::now();
    let mut records = Vec::new();
    if !interrupted {
        let main = engine
            .phase(
                u64::from(plan.warmup_requests),
                plan.total_requests,
                true,
                &mut cancel,
            )
            .await;
        interrupted = main.interrupted;
        records = main.records;
    }
    records.sort_by_key(|r| r.index);
    BurstResult {
        burst_id: opts.burst_id.clone(),
        target: target.name.clone(),
        started_at,
        total_time: start.elapsed(),
        records,
        connection_mode,
        protocol: engine.protocol.unwrap_or(target.protocol),
        interrupted,
    }
}

struct Engine<'a> {
    /// Or why the target's client could not be built.
    http: Result<reqwest::Client, Arc<str>>,
    target: Arc<Target>,
    plan: &'a BurstPlan,
    opts: &'a BurstOptions,
    local: Arc<Semaphore>,
    protocol: Option<crate::config::Protocol>,
}

struct Phase {
    records: Vec<RequestRecord>,
    interrupted: bool,
}

impl Engine<'_> {
    /// Runs `count` requests whose sequence numbers start at `first_sequence`.
    async fn phase(
        &mut self,
        first_sequence: u64,
        count: u64,
        record: bool,
        cancel: &mut Option<watch::Receiver<bool>>,
    ) -> Phase {
        let phase_start = Instant::now();
        let mut tasks: JoinSet<Measured> = JoinSet::new();
        let mut records = Vec::with_capacity(if record { count as usize } else { 0 });
        let mut next_arrival = phase_start;
        let mut interrupted = false;

        for n in 0..count {
            // Closed loop: the request is "created" when a slot frees, so the local permit wait is
            // not client wait. Open loop: it is created at its arrival time, so it is.
            let acquire = async {
                let scheduled = match self.plan.pacing {
                    Pacing::Closed => {
                        let permit = self.local.clone().acquire_owned().await;
                        (Instant::now(), permit)
                    }
                    Pacing::Poisson { per_second } => {
                        next_arrival += exponential_gap(per_second);
                        tokio::time::sleep_until(next_arrival).await;
                        let permit = self.local.clone().acquire_owned().await;
                        (next_arrival, permit)
                    }
                };
                let global = match &self.opts.limiter {
                    Some(l) => Some(l.clone().acquire_owned().await),
                    None => None,
                };
                (scheduled, global)
            };
            let ((scheduled, local), global) = tokio::select! {
                biased;
                _ = cancelled(cancel) => { interrupted = true; tasks.abort_all(); break; }
                got = acquire => got,
            };
            let (Ok(local), global) = (local, global.transpose().ok().flatten()) else {
                break; // semaphores are never closed; defensive
            };
            let client_wait = scheduled.elapsed();

            let index = if record { n + 1 } else { 0 };
            if record && let Some(tx) = &self.opts.events {
                let _ = tx.send(BurstEvent::RequestStarted { index });
            }
            let http = self.http.clone();
            let target = self.target.clone();
            let burst_id = self.opts.burst_id.clone();
            let keep_text = self.opts.keep_text;
            let events = if record {
                self.opts.events.clone()
            } else {
                None
            };
            tasks.spawn(async move {
                let spec = RequestSpec {
                    target: &target,
                    sequence: first_sequence + n,
                    index,
                    burst_id: &burst_id,
                    keep_text,
                    phase_start,
                };
                let mut measured = match &http {
                    Ok(http) => measure(http, &spec).await,
                    Err(why) => unsent(&spec, Outcome::Tls, why),
                };
                measured.record.client_wait = client_wait;
                drop((local, global));
                if let Some(tx) = events {
                    let _ = tx.send(BurstEvent::RequestDone(Arc::new(measured.record.clone())));
                }
                measured
            });
            while let Some(done) = tasks.try_join_next() {
                self.collect(done, record, &mut records);
            }
        }

        loop {
            let next = tokio::select! {
                biased;
                _ = cancelled(cancel), if !interrupted => { interrupted = true; tasks.abort_all(); continue; }
                n = tasks.join_next() => n,
            };
            match next {
                Some(done) => self.collect(done, record, &mut records),
                None => break,
            }
        }
        Phase {
            records,
            interrupted,
        }
    }

    fn collect(
        &mut self,
        done: Result<Measured, tokio::task::JoinError>,
        record: bool,
        records: &mut Vec<RequestRecord>,
    ) {
        // An aborted task (cancellation) simply measured nothing.
        let Ok(measured) = done else { return };
        if self.protocol.is_none() {
            self.protocol = measured.protocol;
        }
        if record {
            records.push(measured.record);
        }
    }
}

/// Resolves when the cancel flag becomes true; never, when there is no flag.
async fn cancelled(cancel: &mut Option<watch::Receiver<bool>>) {
    match cancel {
        Some(rx) => {
            if rx.wait_for(|c| *c).await.is_err() {
                // Sender gone without cancelling: nobody can cancel any more.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// An exponentially distributed gap with mean `1 / per_second` (Poisson arrivals).
fn exponential_gap(per_second: f64) -> Duration {
    let u: f64 = rand::rng().random::<f64>();
    // 1 - u is in (0, 1], so the log is finite.
    Duration::from_secs_f64(-(1.0 - u).ln() / per_second)
}
