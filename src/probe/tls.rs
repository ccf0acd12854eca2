//! The probe's TLS client configuration (rustls), built here rather than by reqwest so that its
//! session store can stamp the start of each handshake: rustls asks the store for a key-share
//! hint and a resumable session while it builds the ClientHello, which is the moment the TCP
//! connect ended. That stamp is what separates `connect` from `tls` (DESIGN §11).
//!
//! It mirrors what reqwest would build: the public web roots (webpki-roots) or exactly a
//! target's `ca_file`, its client certificate, `insecure_skip_verify`, TLS 1.2 and 1.3, ALPN
//! `h2` then `http/1.1`, and in-memory session resumption. The only rustls user.
//!
//! Does not: read files (the PEM was read and checked at load), or build HTTP clients.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Resumption, Tls12ClientSessionValue,
    Tls13ClientSessionValue,
};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, NamedGroup, RootCertStore, SignatureScheme};

use crate::config::Tls;

use super::connection;

/// The config type, named for `client.rs` (which must not use rustls itself).
pub(super) type TlsConfig = ClientConfig;

/// TLS sessions remembered per client for resumption (rustls' own default size).
const SESSION_CACHE_SIZE: usize = 256;

/// The rustls config for a client: `tls` is a target's own settings, `None` the defaults
/// (public roots, full verification). Messages name files, never contents.
pub(super) fn client_config(tls: Option<&Tls>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let builder = if tls.is_some_and(|t| t.insecure_skip_verify) {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                provider.signature_verification_algorithms,
            )))
    } else {
        builder.with_root_certificates(roots(tls)?)
    };
    let mut config = match tls.and_then(|t| t.client_cert.as_ref()) {
        Some(client) => {
            let named = |e: &dyn std::fmt::Display| {
                format!(
                    "tls.cert_file {} with key_file {}: {e}",
                    client.cert.path.display(),
                    client.key.path.display()
                )
            };
            let chain = CertificateDer::pem_slice_iter(&client.cert.pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| named(&e))?;
            let key = PrivateKeyDer::from_pem_slice(&client.key.pem).map_err(|e| named(&e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| named(&e))?
        }
        None => builder.with_no_client_auth(),
    };
    // As reqwest with its `http2` feature: HTTP/2 when the server offers it.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.resumption = Resumption::store(Arc::new(StampingSessions(
        ClientSessionMemoryCache::new(SESSION_CACHE_SIZE),
    )));
    Ok(config)
}

/// A target's `ca_file` replaces the built-in roots, as curl's `--cacert` does: a private CA is
/// what the target is meant to be verified against.
fn roots(tls: Option<&Tls>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match tls.and_then(|t| t.ca.as_ref()) {
        Some(ca) => {
            let named =
                |e: &dyn std::fmt::Display| format!("tls.ca_file {}: {e}", ca.path.display());
            for cert in CertificateDer::pem_slice_iter(&ca.pem) {
                roots
                    .add(cert.map_err(|e| named(&e))?)
                    .map_err(|e| named(&e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

/// rustls' in-memory session cache, plus the handshake-start stamp: the first lookup of a
/// handshake happens while rustls builds the ClientHello.
#[derive(Debug)]
struct StampingSessions(ClientSessionMemoryCache);

impl ClientSessionStore for StampingSessions {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.0.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        connection::tls_started();
        self.0.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.0.set_tls12_session(server_name, value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        connection::tls_started();
        self.0.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.0.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        connection::tls_started();
        self.0.take_tls13_ticket(server_name)
    }
}

/// `insecure_skip_verify`: any certificate for any name is accepted, but the handshake
/// signatures are still checked (they prove the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
