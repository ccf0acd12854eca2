//! Where a request's connection came from and what opening it cost: the hooks that stamp DNS,
//! TCP and TLS inside reqwest's connector, and the rule that splits a request's duration into
//! phases (DESIGN §11).
//!
//! reqwest keeps its connection type sealed, so the connect cannot be wrapped from outside; what
//! it does allow is a tower layer around the whole connect (`connector_layer`), a DNS resolver
//! of our own (`dns_resolver`) and a TLS config of our own (`tls.rs`, whose session store is
//! asked for a key-share hint the moment rustls builds the ClientHello, i.e. right after the TCP
//! connect). Each connect runs inside an [`Attempt`] scope that those hooks stamp. A request runs
//! inside a [`ConnectLog`] scope, so the layer knows which request started a connect (hyper may
//! finish it in a background task after a pooled connection won the race). A response carries
//! the local address of its connection (`HttpInfo`); when it equals the address of the connect
//! the request itself started, the request paid for that connect (`new`), else it got an open
//! one (`reused`).
//!
//! Task-locals are scoped to one future (set while it is polled), not global state: they are the
//! only channel from a request through reqwest's sealed connector to our hooks.
//!
//! Does not: send requests (`request.rs`), build clients (`client.rs`) or TLS configs (`tls.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection as _, HttpInfo};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::time::Instant;

use super::{Connection, Phases};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

tokio::task_local! {
    /// The request being sent, set around `Client::execute`.
    static REQUEST: Arc<ConnectLog>;
    /// The connect in progress, set by [`TimingLayer`] around reqwest's connector.
    static ATTEMPT: Arc<Attempt>;
}

/// What one connect went through. Each stamp is set once, by the first hook that sees it.
#[derive(Debug)]
pub(super) struct Attempt {
    started: Instant,
    resolved: OnceLock<Instant>,
    tls_started: OnceLock<Instant>,
    /// When the connector returned, and the connection's local address (`None` when it failed,
    /// or when the connection did not say).
    finished: OnceLock<(Instant, Option<SocketAddr>, bool)>,
}

impl Attempt {
    fn new(started: Instant) -> Self {
        Attempt {
            started,
            resolved: OnceLock::new(),
            tls_started: OnceLock::new(),
            finished: OnceLock::new(),
        }
    }
}

/// The connects one request started, the last one kept (hyper starts a second only when the
/// first one's pool checkout was closed under it).
#[derive(Debug, Default)]
pub(crate) struct ConnectLog {
    attempt: Mutex<Option<Arc<Attempt>>>,
}

impl ConnectLog {
    fn started(&self, attempt: Arc<Attempt>) {
        *self.attempt.lock().unwrap_or_else(PoisonError::into_inner) = Some(attempt);
    }

    fn last(&self) -> Option<Arc<Attempt>> {
        self.attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Decides the request's connection once it has an answer or a failure: `used` says which
    /// connection the request was sent on, or that none was handed to it (it failed while
    /// connecting, or was cut off before one was ready). Without an answer, a connect the
    /// request started itself makes the connection new.
    pub(crate) fn settle(&self, used: Used) -> Settled {
        let attempt = self.last();
        let opened = attempt.as_ref().map(|a| Opened::of(a));
        let mine = match (used, &opened) {
            // The response's connection is the one this request opened.
            (Used::On(addr), Some(o)) => o.local_addr == Some(addr),
            (Used::On(_), None) => false,
            // A connection was used but it did not say which one: the request's own connect,
            // when it finished, is the likeliest.
            (Used::Unknown, Some(o)) => o.ok,
            (Used::Unknown, None) => false,
            // No connection was handed over: the request was connecting (or failed to).
            (Used::NotConnected, Some(_)) => true,
            (Used::NotConnected, None) => return Settled::default(),
        };
        if mine {
            Settled {
                connection: Some(Connection::New),
                opened,
            }
        } else {
            Settled {
                connection: Some(Connection::Reused),
                opened: None,
            }
        }
    }
}

/// Which connection a request's answer (or failure) came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Used {
    /// The connection with this local address.
    On(SocketAddr),
    /// A connection that did not report its address.
    Unknown,
    /// None: the request failed or was cut off before a connection was handed to it.
    NotConnected,
}

/// A request's connection and, when it opened it, what the opening cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Settled {
    pub connection: Option<Connection>,
    pub opened: Option<Opened>,
}

/// The stamps of one connect, copied out of its [`Attempt`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Opened {
    pub started: Instant,
    pub resolved: Option<Instant>,
    pub tls_started: Option<Instant>,
    /// `None` while the connect is still running (the request was cut off during it).
    pub finished: Option<Instant>,
    pub local_addr: Option<SocketAddr>,
    pub ok: bool,
}

impl Opened {
    fn of(a: &Attempt) -> Opened {
        let finished = a.finished.get().copied();
        Opened {
            started: a.started,
            resolved: a.resolved.get().copied(),
            tls_started: a.tls_started.get().copied(),
            finished: finished.map(|f| f.0),
            local_addr: finished.and_then(|f| f.1),
            ok: finished.is_some_and(|f| f.2),
        }
    }
}

/// Runs `send` (a request's `execute`) so that a connect it starts reports to `log`.
pub(crate) async fn track<F: Future>(log: Arc<ConnectLog>, send: F) -> F::Output {
    REQUEST.scope(log, send).await
}

/// The local address of the connection a response (or a failure) came on, from what hyper-util
/// copies into the response's extensions.
pub(crate) fn response_local_addr(response: &reqwest::Response) -> Used {
    match response.extensions().get::<HttpInfo>() {
        Some(info) => Used::On(info.local_addr()),
        None => Used::Unknown,
    }
}

/// The connection a failed send was on, from hyper-util's error in `e`'s source chain: `None`
/// when the failure came before a connection was handed to the request (connecting failed).
pub(crate) fn failed_on(e: &reqwest::Error) -> Used {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(client) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
            return match client.connect_info() {
                Some(connected) => match local_addr(connected) {
                    Some(addr) => Used::On(addr),
                    None => Used::Unknown,
                },
                None => Used::NotConnected,
            };
        }
        source = err.source();
    }
    Used::NotConnected
}

fn local_addr(connected: &Connected) -> Option<SocketAddr> {
    // `http::Extensions`, named by inference: the http crate is no direct dependency.
    let mut extras = Default::default();
    connected.get_extras(&mut extras);
    extras.get::<HttpInfo>().map(HttpInfo::local_addr)
}

/// Marks the start of the TLS handshake of the connect in progress (called by `tls.rs`'s
/// session store when rustls builds the ClientHello). Outside a connect: nothing.
pub(super) fn tls_started() {
    let now = Instant::now();
    let _ = ATTEMPT.try_with(|a| a.tls_started.set(now));
}

/// A tower layer around reqwest's whole connect (DNS + TCP + TLS + proxy tunnel): scopes an
/// [`Attempt`] for the hooks inside and files it with the request that started it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TimingLayer;

impl<S> tower_layer::Layer<S> for TimingLayer {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed { inner }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Timed<S> {
    inner: S,
}

impl<S, R> tower_service::Service<R> for Timed<S>
where
    S: tower_service::Service<R, Error = BoxError>,
    S::Response: hyper_util::client::legacy::connect::Connection + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: R) -> Self::Future {
        let attempt = Arc::new(Attempt::new(Instant::now()));
        // Read now: hyper polls this first inside the request's `execute`, but may finish it
        // on a task of its own, where the request's scope is gone.
        let _ = REQUEST.try_with(|log| log.started(attempt.clone()));
        let connecting = ATTEMPT.sync_scope(attempt.clone(), || self.inner.call(dst));
        let connecting = ATTEMPT.scope(attempt.clone(), connecting);
        Box::pin(async move {
            let result = connecting.await;
            let local = result
                .as_ref()
                .ok()
                .and_then(|conn| local_addr(&conn.connected()));
            let _ = attempt
                .finished
                .set((Instant::now(), local, result.is_ok()));
            result
        })
    }
}

/// The resolver of every client: getaddrinfo on the blocking pool (as reqwest's default), a
/// target's `tls.server_name` sent to the URL's host, and the end of the lookup stamped on the
/// connect in progress. IP-literal hosts never reach a resolver: they have no `resolve` phase.
#[derive(Debug, Default)]
pub(super) struct TimedResolver {
    /// `(server_name, connect_host)`: lookups of the first resolve the second.
    pinned: Option<(String, String)>,
}

impl TimedResolver {
    pub(super) fn pinned(name: String, connect_host: String) -> Self {
        TimedResolver {
            pinned: Some((name, connect_host)),
        }
    }
}

impl Resolve for TimedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = match &self.pinned {
            Some((pinned, to)) if name.as_str().eq_ignore_ascii_case(pinned) => to.clone(),
            _ => name.as_str().to_owned(),
        };
        let attempt = ATTEMPT.try_with(Arc::clone).ok();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on every address.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(a) = attempt {
                let _ = a.resolved.set(Instant::now());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The instants a request passed, from its `t0` to its `end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Milestones {
    pub t0: Instant,
    /// The connect this request paid for, when it opened a new connection.
    pub opened: Option<Opened>,
    pub headers: Option<Instant>,
    pub first_token: Option<Instant>,
    pub end: Instant,
}

/// Splits `t0 → end` into consecutive phases, so that they add up to the duration exactly:
/// each phase runs from the previous milestone reached to its own, and the phase in progress
/// when the request ended (a failure, or `generation` for a success) runs to `end`.
///
/// `resolve` starts at `t0` (it includes the client's few microseconds before the connect
/// begins) and exists only when a lookup ran (not for IP literals); `connect` runs to the start
/// of the TLS handshake, or to the end of the connect for plain HTTP (and includes a proxy's
/// CONNECT exchange); `tls` to the end of the connect. A reused connection has none of the
/// three and its `headers` phase starts at `t0`.
pub(crate) fn phases(m: &Milestones) -> Phases {
    let mut p = Phases::default();
    let mut last = m.t0;
    // Ends the phase in progress at `at` (clamped: stamps come from different tasks, and
    // a stamp past the end — a connect finishing after the request was cut off — is not part
    // of this request).
    let mut close = |slot: &mut Option<Duration>, at: Instant| {
        let at = at.clamp(last, m.end);
        *slot = Some(at - last);
        last = at;
    };
    if let Some(o) = m.opened {
        if let Some(at) = o.resolved {
            close(&mut p.resolve, at);
        }
        let connected = o.finished.filter(|_| o.ok);
        match (o.tls_started, connected) {
            (Some(tls), Some(done)) => {
                close(&mut p.connect, tls);
                close(&mut p.tls, done);
            }
            (None, Some(done)) => close(&mut p.connect, done),
            // The connect failed or was cut off: its last phase runs to the end.
            (Some(tls), None) => {
                close(&mut p.connect, tls);
                close(&mut p.tls, m.end);
                return p;
            }
            (None, None) => {
                close(&mut p.connect, m.end);
                return p;
            }
        }
    }
    match m.headers {
        Some(at) => close(&mut p.headers, at),
        None => {
            close(&mut p.headers, m.end);
            return p;
        }
    }
    match m.first_token {
        Some(at) => close(&mut p.first_token, at),
        None => {
            close(&mut p.first_token, m.end);
            return p;
        }
    }
    close(&mut p.generation, m.end);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn opened(t0: Instant, resolved: Option<u64>, tls: Option<u64>, done: Option<u64>) -> Opened {
        Opened {
            started: t0,
            resolved: resolved.map(|n| t0 + ms(n)),
            tls_started: tls.map(|n| t0 + ms(n)),
            finished: done.map(|n| t0 + ms(n)),
            local_addr: None,
            ok: done.is_some(),
        }
    }

    fn total(p: &Phases) -> Duration {
        [
            p.resolve,
            p.connect,
            p.tls,
            p.headers,
            p.first_token,
            p.generation,
        ]
        .into_iter()
        .flatten()
        .sum()
    }

    #[test]
    fn a_new_tls_connection_has_every_phase_and_they_add_up() {
        let t0 = Instant::now();
        let m = Milestones {
            t0,
            opened: Some(opened(t0, Some(3), Some(10), Some(25))),
            headers: Some(t0 + ms(100)),
            first_token: Some(t0 + ms(300)),
            end: t0 + ms(1000),
        };
        let p = phases(&m);
        assert_eq!(p.resolve, Some(ms(3)));
        assert_eq!(p.connect, Some(ms(7)));
        assert_eq!(p.tls, Some(ms(15)));
        assert_eq!(p.headers, Some(ms(75)));
        assert_eq!(p.first_token, Some(ms(200)));
        assert_eq!(p.generation, Some(ms(700)));
        assert_eq!(total(&p), ms(1000));
    }

    #[test]
    fn plain_http_to_an_address_has_no_resolve_and_no_tls() {
        let t0 = Instant::now();
        let m = Milestones {
            t0,
            opened: Some(opened(t0, None, None, Some(2))),
            headers: Some(t0 + ms(50)),
            first_token: Some(t0 + ms(60)),
            end: t0 + ms(90),
        };
        let p = phases(&m);
        assert_eq!((p.resolve, p.tls), (None, None));
        assert_eq!(p.connect, Some(ms(2)));
        assert_eq!(p.headers, Some(ms(48)));
        assert_eq!(total(&p), ms(90));
    }

    #[test]
    fn a_reused_connection_starts_with_headers() {
        let t0 = Instant::now();
        let m = Milestones {
            t0,
            opened: None,
            headers: Some(t0 + ms(40)),
            first_token: Some(t0 + ms(45)),
            end: t0 + ms(80),
        };
        let p = phases(&m);
        assert_eq!((p.resolve, p.connect, p.tls), (None, None, None));
        assert_eq!(p.headers, Some(ms(40)));
        assert_eq!(total(&p), ms(80));
    }

    #[test]
    fn a_failure_ends_the_phase_in_progress() {
        let t0 = Instant::now();
        // TLS handshake rejected at 30 ms.
        let tls_failed = Milestones {
            t0,
            opened: Some(opened(t0, Some(1), Some(5), None)),
            headers: None,
            first_token: None,
            end: t0 + ms(30),
        };
        let p = phases(&tls_failed);
        assert_eq!(p.tls, Some(ms(25)));
        assert_eq!((p.headers, p.first_token), (None, None));
        assert_eq!(total(&p), ms(30));
        // No first token before the timeout.
        let silent = Milestones {
            t0,
            opened: None,
            headers: Some(t0 + ms(10)),
            first_token: None,
            end: t0 + ms(500),
        };
        let p = phases(&silent);
        assert_eq!(p.first_token, Some(ms(490)));
        assert_eq!(p.generation, None);
        assert_eq!(total(&p), ms(500));
    }

    #[test]
    fn stamps_outside_the_request_are_clamped() {
        let t0 = Instant::now();
        // The connect finished (in the background) after the request was cut off at 20 ms.
        let m = Milestones {
            t0,
            opened: Some(opened(t0, Some(5), None, Some(50))),
            headers: None,
            first_token: None,
            end: t0 + ms(20),
        };
        let p = phases(&m);
        assert_eq!(total(&p), ms(20));
    }

    #[test]
    fn settle_tells_the_requests_own_connect_from_a_pooled_connection() {
        let log = ConnectLog::default();
        assert_eq!(log.settle(Used::NotConnected), Settled::default());
        let here: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let there: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        assert_eq!(
            log.settle(Used::On(there)).connection,
            Some(Connection::Reused)
        );
        let attempt = Arc::new(Attempt::new(Instant::now()));
        attempt
            .finished
            .set((Instant::now(), Some(here), true))
            .unwrap();
        log.started(attempt);
        let mine = log.settle(Used::On(here));
        assert_eq!(mine.connection, Some(Connection::New));
        assert!(mine.opened.is_some());
        // Its own connect lost the race to a pooled connection.
        let other = log.settle(Used::On(there));
        assert_eq!(other.connection, Some(Connection::Reused));
        assert_eq!(other.opened, None);
    }
}
