//! The daemon's connections: the accept loop (plain HTTP or TLS, HTTP/1 and HTTP/2) with the
//! limits that keep a slow or hostile client from holding connections, memory or handlers;
//! and TLS itself: the rustls server config from `tls_server_config`, with client
//! certificates per `client_auth_type` (exporter-toolkit's five modes).
//!
//! Does not: look at requests (auth, body limits and handler timeouts are the guard's, in
//! `mod.rs`), or read PEM files (`config/web.rs` hands over certificates and keys as DER).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
// rustls's own re-export: these types are part of its verifier trait.
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use crate::config::web::{ClientAuth, Tls, TlsVersion};

/// Bounds on what one client can hold: a slow or hostile client cannot keep the daemon's
/// connections, memory or handlers. Generous for Prometheus and browsers.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// TCP accept → TLS handshake done; also the HTTP/2 ping answer deadline.
    handshake: Duration,
    /// Longest wait for a request's headers (HTTP/1). hyper runs it while a connection is idle
    /// too, so it is above Prometheus's usual 15 s interval: scrapes keep their connection.
    header_read: Duration,
    /// HTTP/2 keep-alive pings, to notice dead peers.
    keep_alive: Duration,
    max_header_bytes: usize,
    max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(30),
            keep_alive: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_connections: 512,
        }
    }
}

/// Accepts connections on `listener` and serves `router` on each (over TLS when `tls` is
/// set, HTTP/2 as well as HTTP/1 when `http2`) until `shutdown` resolves; then stops accepting
/// and waits for open connections to finish their requests.
pub(super) async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    http2: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Limits::default();
    let service = TowerToHyperService::new(router);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(32)
        .keep_alive_interval(limits.keep_alive)
        .keep_alive_timeout(limits.handshake);
    if !http2 {
        builder = builder.http1_only();
    }
    let builder = Arc::new(builder);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
        };
        let (tcp, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let builder = builder.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake = limits.handshake;
        tokio::spawn(async move {
            let _permit = permit;
            let served = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        // Failed handshakes are the client's business (wrong CA, no client
                        // certificate, a port scan); debug level keeps the log quiet.
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The TLS acceptor for `tls_server_config`. Errors name the field (a key that does not match
/// its certificate, a CA that is not one); the caller adds the file.
pub(super) fn acceptor(tls: &Tls, http2: bool) -> Result<TlsAcceptor, String> {
    Ok(TlsAcceptor::from(Arc::new(server_config(tls, http2)?)))
}

fn server_config(tls: &Tls, http2: bool) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (tls.min_version..=tls.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config.min_version: {e}"))?;
    let verifier: Arc<dyn ClientCertVerifier> = match tls.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: tls.client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in &tls.client_cas {
                roots.add(ca.clone()).map_err(|e| {
                    format!("tls_server_config.client_ca_file: not a usable CA certificate ({e}); give the PEM certificate of the CA that issues client certificates")
                })?;
            }
            let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let builder = if tls.client_auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(|e| {
                format!("tls_server_config.client_ca_file: cannot verify clients with it ({e}); give the PEM certificate of the CA that issues client certificates")
            })?
        }
    };
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(tls.cert_chain.clone(), tls.key.clone_key())
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "tls_server_config.key_file: is not the private key of cert_file's certificate; \
                 give the key the certificate was issued for"
                    .to_owned()
            }
            e => format!(
                "tls_server_config.key_file: cannot be used with cert_file ({e}); key_file must \
                 hold the private key of cert_file's first certificate"
            ),
        })?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// `RequestClientCert` and `RequireAnyClientCert`: a client certificate is asked for (and for
/// the latter required) but not checked against any CA, as in Go's `crypto/tls`. The handshake
/// signature is still verified, so the client holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
