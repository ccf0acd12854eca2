//! Transport at the engine's boundary, against servers this file starts on 127.0.0.1 with
//! certificates generated at test time (rcgen): a private CA trusted or not, expired and
//! wrong-name certificates, `insecure_skip_verify`, mutual TLS, `server_name`, HTTP/2 by ALPN,
//! client reuse across bursts; over plain TCP a per-target proxy, a cross-host redirect, a
//! gzip-encoded stream and a refused connection. Plus what `check` and Debug show of them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

use streamprobe::config::{self, Env, Target};
use streamprobe::probe::{
    BurstOptions, BurstPlan, BurstResult, Client, Connection, Outcome, Phase, TokenSource,
    run_burst,
};

mod common;
use common::free_port;

/// What every test server streams: five OpenAI chat deltas, then `[DONE]`.
const TOKENS: [&str; 5] = ["Hello", ",", " TLS", " world", "!"];

fn sse_events() -> Vec<String> {
    let mut events: Vec<String> = TOKENS
        .iter()
        .map(|t| {
            let delta = serde_json::json!({"choices": [{"index": 0, "delta": {"content": t}}]});
            format!("data: {delta}\n\n")
        })
        .collect();
    events.push("data: [DONE]\n\n".to_owned());
    events
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// A private CA in a temporary directory, which also holds the config files' PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "streamprobe test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            ca,
        };
        pki.write("ca.pem", &pki.ca.pem());
        pki
    }

    /// A server certificate for `names` (host names or IP addresses), signed by the CA.
    fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth, false)
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose, expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("streamprobe client", String::as_str),
        );
        params.extended_key_usages = vec![usage];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    /// One target from YAML in the PKI's directory (so `ca.pem` resolves); `extra` adds target
    /// fields, indented 4.
    fn target(&self, url: &str, extra: &str) -> Target {
        load_target(&self.dir.path().join("streamprobe.yaml"), url, extra)
    }
}

fn load_target(config_path: &Path, url: &str, extra: &str) -> Target {
    let yaml = target_yaml(url, extra);
    let mut config = config::load_str(&yaml, config_path).expect("test config loads");
    config.targets.remove(0)
}

fn target_yaml(url: &str, extra: &str) -> String {
    format!(
        "targets:\n  - name: t\n    url: \"{url}\"\n    protocol: openai\n    concurrency: 1\n    total_requests: 2\n    timeout: 10s\n    headers: {{Authorization: Bearer sk-test-tls}}\n    body: {{model: m, messages: [{{role: user, content: hi}}], stream: true}}\n{extra}"
    )
}

// ---------------------------------------------------------------------------------------------
// Servers

/// What a TLS test server saw.
#[derive(Default)]
struct Log {
    /// TCP connections accepted (handshakes that fail included).
    connections: AtomicUsize,
    requests: Mutex<Vec<Seen>>,
}

struct Seen {
    version: Version,
    /// `Host` (HTTP/1.1) or `:authority` (HTTP/2).
    authority: Option<String>,
    /// The SNI the client sent.
    sni: Option<String>,
}

struct TlsServer {
    addr: SocketAddr,
    log: Arc<Log>,
}

impl TlsServer {
    fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/v1/chat/completions", self.addr.port())
    }

    fn versions(&self) -> Vec<Version> {
        let seen = self.log.requests.lock().unwrap();
        seen.iter().map(|s| s.version).collect()
    }
}

/// Options of a TLS test server beyond its certificate.
#[derive(Default)]
struct Serve<'a> {
    /// Require a client certificate signed by this CA (PEM).
    client_ca: Option<&'a str>,
    /// Offer HTTP/2 by ALPN (and HTTP/1.1); otherwise only HTTP/1.1.
    h2: bool,
}

/// tokio-rustls in front of a hyper server (HTTP/1.1 and HTTP/2) streaming `sse_events`.
async fn tls_server(leaf: &Leaf, serve: Serve<'_>) -> TlsServer {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match serve.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
                .unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let certs = CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
    let mut config = builder.with_single_cert(certs, key).unwrap();
    config.alpn_protocols = if serve.h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Log::default());
    let server_log = log.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            server_log.connections.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let log = server_log.clone();
            tokio::spawn(async move {
                // A failed handshake is for the client to report; the server only drops it.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(str::to_owned);
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let authority = req
                        .headers()
                        .get(hyper::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned)
                        .or_else(|| req.uri().authority().map(|a| a.to_string()));
                    log.requests.lock().unwrap().push(Seen {
                        version: req.version(),
                        authority,
                        sni: sni.clone(),
                    });
                    async {
                        let response = Response::builder()
                            .header("content-type", "text/event-stream")
                            .body(Full::new(Bytes::from(sse_events().concat())))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TlsServer { addr, log }
}

/// One HTTP/1.1 request as a raw server read it.
#[derive(Debug, Clone)]
struct RawRequest {
    method: String,
    /// The request target as sent: a path, or an absolute URL through a proxy.
    target: String,
    /// Names in lower case.
    headers: Vec<(String, String)>,
}

impl RawRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (head, and a `Content-Length` body, discarded); `None` at end of input.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<RawRequest> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body_len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + 4 + body_len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + 4 + body_len);
    Some(RawRequest {
        method,
        target,
        headers,
    })
}

/// Answers a request with byte strings written in order, a short pause between them.
type Respond = dyn Fn(&RawRequest, u16) -> Vec<Vec<u8>> + Send + Sync;

/// A plain HTTP/1.1 server with keep-alive; returns its address and every request it read.
async fn raw_server(respond: Arc<Respond>) -> (SocketAddr, Arc<Mutex<Vec<RawRequest>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server_seen = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let respond = respond.clone();
            let seen = server_seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(request) = read_request(&mut stream, &mut buf).await {
                    let parts = respond(&request, addr.port());
                    seen.lock().unwrap().push(request);
                    for (i, part) in parts.iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        if stream.write_all(part).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A complete `200 text/event-stream` response with `sse_events`.
fn sse_response() -> Vec<Vec<u8>> {
    let body = sse_events().concat();
    vec![
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    ]
}

// ---------------------------------------------------------------------------------------------
// The engine

async fn burst(client: &Client, target: Target) -> BurstResult {
    let plan = BurstPlan::for_target(&target);
    let options = BurstOptions {
        burst_id: "b".into(),
        keep_text: true,
        limiter: None,
        cancel: None,
        lag: None,
    };
    run_burst(client, Arc::new(target), &plan, options, ()).await
}

async fn burst_new_client(target: Target) -> BurstResult {
    burst(&Client::new().unwrap(), target).await
}

/// Every request failed with `outcome`, and its message mentions `mention` (case-insensitive).
fn assert_failed(result: &BurstResult, outcome: Outcome, mention: &str) {
    assert!(!result.records.is_empty());
    for r in &result.records {
        assert_eq!(r.outcome, outcome, "{r:?}");
        assert!(r.ttft.is_none());
        let error = r.error.as_deref().unwrap_or("").to_ascii_lowercase();
        assert!(
            error.contains(&mention.to_ascii_lowercase()),
            "{mention:?} not in {error:?}"
        );
    }
}

/// Every request succeeded and decoded the whole stream.
fn assert_streamed(result: &BurstResult) {
    assert!(!result.records.is_empty());
    for r in &result.records {
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        assert_eq!(r.status, Some(200));
        let ttft = r.ttft.expect("a successful request has a TTFT");
        assert!(r.time_to_headers.unwrap() <= ttft);
        assert!(ttft <= r.duration);
        assert_eq!(r.output_tokens, TOKENS.len() as u64);
        assert_eq!(r.token_source, TokenSource::Events);
        assert_eq!(r.text.as_deref(), Some(TOKENS.concat().as_str()));
    }
}

// ---------------------------------------------------------------------------------------------
// Server certificates

#[tokio::test]
async fn a_private_ca_is_untrusted_by_default_and_trusted_with_ca_file() {
    let pki = Pki::new();
    let server = tls_server(&pki.server(&["127.0.0.1"]), Serve::default()).await;
    let url = server.url("127.0.0.1");

    let untrusted = burst_new_client(pki.target(&url, "")).await;
    assert_failed(&untrusted, Outcome::Tls, "certificate");

    let trusted = burst_new_client(pki.target(&url, "    tls: {ca_file: ca.pem}\n")).await;
    assert_streamed(&trusted);
}

#[tokio::test]
async fn a_self_signed_certificate_can_be_its_own_ca_file() {
    let pki = Pki::new();
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    pki.write("self-signed.pem", &cert.pem());
    let leaf = Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
    };
    let server = tls_server(&leaf, Serve::default()).await;
    let url = server.url("127.0.0.1");

    assert_failed(
        &burst_new_client(pki.target(&url, "")).await,
        Outcome::Tls,
        "certificate",
    );
    let trusted = pki.target(&url, "    tls: {ca_file: self-signed.pem}\n");
    assert_streamed(&burst_new_client(trusted).await);
}

#[tokio::test]
async fn an_expired_certificate_fails_as_tls_unless_verification_is_skipped() {
    let pki = Pki::new();
    let expired = pki.leaf(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, true);
    let server = tls_server(&expired, Serve::default()).await;
    let url = server.url("127.0.0.1");

    let verified = burst_new_client(pki.target(&url, "    tls: {ca_file: ca.pem}\n")).await;
    assert_failed(&verified, Outcome::Tls, "expired");

    let skipped = pki.target(&url, "    tls: {insecure_skip_verify: true}\n");
    assert_streamed(&burst_new_client(skipped).await);
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_as_tls_unless_verification_is_skipped() {
    let pki = Pki::new();
    let server = tls_server(&pki.server(&["localhost"]), Serve::default()).await;

    // Trusted CA, but the certificate names localhost, not 127.0.0.1.
    let by_ip = pki.target(&server.url("127.0.0.1"), "    tls: {ca_file: ca.pem}\n");
    assert_failed(&burst_new_client(by_ip).await, Outcome::Tls, "certificate");

    let by_name = pki.target(&server.url("localhost"), "    tls: {ca_file: ca.pem}\n");
    assert_streamed(&burst_new_client(by_name).await);

    let skipped = pki.target(
        &server.url("127.0.0.1"),
        "    tls: {insecure_skip_verify: true}\n",
    );
    assert_streamed(&burst_new_client(skipped).await);
}

// ---------------------------------------------------------------------------------------------
// Client certificates

#[tokio::test]
async fn a_server_requiring_a_client_certificate_gets_cert_file_and_key_file() {
    let pki = Pki::new();
    let ca_pem = pki.ca.pem();
    let server = tls_server(
        &pki.server(&["127.0.0.1"]),
        Serve {
            client_ca: Some(&ca_pem),
            ..Serve::default()
        },
    )
    .await;
    let client = pki.leaf(
        &["probe.client"],
        ExtendedKeyUsagePurpose::ClientAuth,
        false,
    );
    pki.write("client.pem", &client.cert);
    pki.write("client-key.pem", &client.key);
    let url = server.url("127.0.0.1");

    let with_cert = pki.target(
        &url,
        "    tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem}\n",
    );
    assert_streamed(&burst_new_client(with_cert).await);

    // TLS 1.3 servers reject a missing client certificate after the client finished its part
    // of the handshake: the alert arrives while the client waits for the response.
    let without = pki.target(&url, "    tls: {ca_file: ca.pem}\n");
    assert_failed(
        &burst_new_client(without).await,
        Outcome::Tls,
        "certificate",
    );
}

#[tokio::test]
async fn client_key_files_are_checked_at_load() {
    let pki = Pki::new();
    let client = pki.leaf(
        &["probe.client"],
        ExtendedKeyUsagePurpose::ClientAuth,
        false,
    );
    pki.write("client.pem", &client.cert);
    pki.write("client-key.pem", &client.key);
    pki.write(
        "encrypted-key.pem",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let config_path = pki.dir.path().join("streamprobe.yaml");
    let load = |tls: &str| {
        config::load_str(
            &target_yaml("https://127.0.0.1:8443/v1/chat/completions", tls),
            &config_path,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let dir = pki.dir.path().display();
    let prefix = format!("{dir}/streamprobe.yaml: targets[0].tls");

    assert_eq!(
        load("    tls: {cert_file: client.pem, key_file: client.pem}\n"),
        Err(format!(
            "{prefix}.key_file: {dir}/client.pem holds 1 certificate(s) and 0 private key(s); expected one unencrypted -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) block; decrypt an encrypted key with openssl pkey"
        ))
    );
    assert_eq!(
        load("    tls: {cert_file: client-key.pem, key_file: client-key.pem}\n"),
        Err(format!(
            "{prefix}.cert_file: {dir}/client-key.pem holds 0 certificate(s) and 1 private key(s); expected one or more -----BEGIN CERTIFICATE----- blocks (the key goes in key_file)"
        ))
    );
    let encrypted =
        load("    tls: {cert_file: client.pem, key_file: encrypted-key.pem}\n").unwrap_err();
    assert!(
        encrypted.contains("encrypted-key.pem holds no PEM certificate or key"),
        "{encrypted}"
    );
    assert_eq!(
        load("    tls: {key_file: client-key.pem}\n"),
        Err(format!(
            "{prefix}.cert_file: is required with key_file; give the client certificate (PEM)"
        ))
    );
    // The key's contents never appear in a message or in Debug output.
    let key_body = client.key.lines().nth(1).unwrap();
    assert!(!encrypted.contains(key_body));
    let ok = config::load_str(
        &target_yaml(
            "https://127.0.0.1:8443/v1/chat/completions",
            "    tls: {cert_file: client.pem, key_file: client-key.pem}\n",
        ),
        &config_path,
    )
    .unwrap();
    assert!(!format!("{ok:?}").contains(key_body));
}

// ---------------------------------------------------------------------------------------------
// server_name

#[tokio::test]
async fn server_name_verifies_and_names_a_server_reached_by_address() {
    let pki = Pki::new();
    let server = tls_server(&pki.server(&["api.internal"]), Serve::default()).await;
    let port = server.addr.port();

    let plain = pki.target(&server.url("127.0.0.1"), "    tls: {ca_file: ca.pem}\n");
    assert_failed(&burst_new_client(plain).await, Outcome::Tls, "certificate");

    let named = pki.target(
        &server.url("127.0.0.1"),
        "    tls: {ca_file: ca.pem, server_name: api.internal}\n",
    );
    assert_streamed(&burst_new_client(named).await);
    {
        let seen = server.log.requests.lock().unwrap();
        assert!(!seen.is_empty());
        for s in seen.iter() {
            assert_eq!(s.sni.as_deref(), Some("api.internal"));
            assert_eq!(
                s.authority.as_deref(),
                Some(&*format!("api.internal:{port}"))
            );
        }
    }

    // Through an alias: `localhost` is resolved, `api.internal` is verified.
    let alias = pki.target(
        &server.url("localhost"),
        "    tls: {ca_file: ca.pem, server_name: API.internal}\n",
    );
    assert_streamed(&burst_new_client(alias).await);
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 and client reuse

/// `fresh_connections: true` over TLS to a host name: every request opens its own connection
/// and goes through every phase (DNS, TCP, TLS, headers, first token, generation), and the
/// phases add up to the request's duration.
#[tokio::test]
async fn fresh_tls_connections_show_every_phase() {
    let pki = Pki::new();
    let server = tls_server(&pki.server(&["localhost"]), Serve::default()).await;
    let target = pki.target(
        &server.url("localhost"),
        "    fresh_connections: true\n    tls: {ca_file: ca.pem}\n",
    );
    let result = burst_new_client(target).await;
    assert_streamed(&result);
    assert_eq!(server.log.connections.load(Ordering::SeqCst), 2);
    for r in &result.records {
        assert_eq!(r.connection, Some(Connection::New), "{r:?}");
        for phase in Phase::ALL {
            assert!(
                r.phases.get(phase).is_some(),
                "no {phase:?} in {:?}",
                r.phases
            );
        }
        let sum: Duration = r.phases.iter().map(|(_, d)| d).sum();
        assert!(
            sum.abs_diff(r.duration) <= Duration::from_millis(1),
            "{sum:?} vs {:?}",
            r.duration
        );
        // The handshake is real work: a TLS phase of zero would mean the stamp is misplaced.
        assert!(r.phases.tls.unwrap() > Duration::ZERO);
    }
}

/// With the pool, the first request opens the connection and the second reuses it: no
/// connect phases, its `headers` phase starts at `t0`.
#[tokio::test]
async fn a_pooled_tls_connection_is_new_once_then_reused() {
    let pki = Pki::new();
    let server = tls_server(&pki.server(&["localhost"]), Serve::default()).await;
    let target = pki.target(&server.url("localhost"), "    tls: {ca_file: ca.pem}\n");
    let result = burst_new_client(target).await;
    assert_streamed(&result);
    assert_eq!(server.log.connections.load(Ordering::SeqCst), 1);
    let (first, second) = (&result.records[0], &result.records[1]);
    assert_eq!(first.connection, Some(Connection::New));
    assert!(first.phases.tls.is_some() && first.phases.resolve.is_some());
    assert_eq!(second.connection, Some(Connection::Reused));
    assert_eq!(
        (
            second.phases.resolve,
            second.phases.connect,
            second.phases.tls
        ),
        (None, None, None)
    );
    assert_eq!(second.phases.headers, second.time_to_headers);
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let pki = Pki::new();
    let leaf = pki.server(&["127.0.0.1"]);
    let h2 = tls_server(
        &leaf,
        Serve {
            h2: true,
            ..Serve::default()
        },
    )
    .await;
    let h1 = tls_server(&leaf, Serve::default()).await;
    let tls = "    tls: {ca_file: ca.pem}\n";

    assert_streamed(&burst_new_client(pki.target(&h2.url("127.0.0.1"), tls)).await);
    assert_eq!(h2.versions(), [Version::HTTP_2, Version::HTTP_2]);

    assert_streamed(&burst_new_client(pki.target(&h1.url("127.0.0.1"), tls)).await);
    assert_eq!(h1.versions(), [Version::HTTP_11, Version::HTTP_11]);
}

#[tokio::test]
async fn a_target_with_its_own_tls_keeps_its_connections_across_bursts() {
    let pki = Pki::new();
    let server = tls_server(&pki.server(&["127.0.0.1"]), Serve::default()).await;
    let client = Client::new().unwrap();
    let tls = "    tls: {ca_file: ca.pem}\n";
    for _ in 0..3 {
        assert_streamed(&burst(&client, pki.target(&server.url("127.0.0.1"), tls)).await);
    }
    // Six sequential requests over one connection: the client was built once, not per burst.
    assert_eq!(server.log.requests.lock().unwrap().len(), 6);
    assert_eq!(server.log.connections.load(Ordering::SeqCst), 1);

    // Changed settings under the same name (a reload) get a new client: only one that skips
    // verification accepts this expired certificate.
    let expired = pki.leaf(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, true);
    let other = tls_server(&expired, Serve::default()).await;
    let url = other.url("127.0.0.1");
    assert_failed(
        &burst(&client, pki.target(&url, tls)).await,
        Outcome::Tls,
        "expired",
    );
    let skip = "    tls: {insecure_skip_verify: true}\n";
    assert_streamed(&burst(&client, pki.target(&url, skip)).await);

    // fresh_connections still means one connection per request.
    let fresh = "    tls: {ca_file: ca.pem}\n    fresh_connections: true\n";
    let before = server.log.connections.load(Ordering::SeqCst);
    assert_streamed(&burst(&client, pki.target(&server.url("127.0.0.1"), fresh)).await);
    assert_eq!(server.log.connections.load(Ordering::SeqCst), before + 2);
}

// ---------------------------------------------------------------------------------------------
// Proxy

const PROXY_PASSWORD: &str = "pr0xy-s3cret";

fn proxy_env() -> Env {
    Env::vars([("STREAMPROBE_TEST_PROXY_PASSWORD", PROXY_PASSWORD)])
}

fn proxied_target(proxy_port: u16) -> Target {
    let yaml = target_yaml(
        "http://upstream.invalid/v1/chat/completions",
        &format!(
            "    proxy: \"http://probe:${{STREAMPROBE_TEST_PROXY_PASSWORD}}@127.0.0.1:{proxy_port}\"\n"
        ),
    );
    let mut config =
        config::load_str_with_env(&yaml, Path::new("streamprobe.yaml"), &proxy_env()).unwrap();
    config.targets.remove(0)
}

#[tokio::test]
async fn a_target_proxy_carries_its_requests_and_credentials() {
    // The proxy answers itself: an HTTP proxy gets the absolute URL in the request line.
    let (addr, seen) = raw_server(Arc::new(|_: &RawRequest, _| sse_response())).await;
    let result = burst_new_client(proxied_target(addr.port())).await;
    assert_streamed(&result);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for request in seen.iter() {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.target,
            "http://upstream.invalid/v1/chat/completions"
        );
        // base64("probe:pr0xy-s3cret")
        assert_eq!(
            request.header("proxy-authorization"),
            Some("Basic cHJvYmU6cHIweHktczNjcmV0")
        );
    }
}

#[tokio::test]
async fn an_unreachable_proxy_is_a_connect_failure_that_shows_no_credentials() {
    let port = free_port();
    let target = proxied_target(port);
    let shown = target.proxy.as_ref().unwrap().to_string();
    assert_eq!(shown, format!("http://<redacted>@127.0.0.1:{port}"));
    assert!(!format!("{target:?}").contains(PROXY_PASSWORD));

    let result = burst_new_client(target).await;
    assert_failed(&result, Outcome::Connect, "");
    for r in &result.records {
        assert!(!r.error.as_deref().unwrap().contains(PROXY_PASSWORD));
    }
}

#[test]
fn check_shows_proxy_redacted_and_skipped_verification_loudly() {
    let yaml = "targets:
  - name: via-proxy
    url: https://api.example.com/v1/chat/completions
    proxy: \"http://probe:literal-pass@proxy.internal:3128\"
  - name: lab
    url: https://10.0.0.7/v1/chat/completions
    tls: {insecure_skip_verify: true, server_name: lab.internal}
";
    let config = config::load_str_with_env(yaml, Path::new("s.yaml"), &proxy_env()).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    let report = config::check_report(&config, now);
    assert!(
        report.contains("  proxy     http://<redacted>@proxy.internal:3128\n"),
        "{report}"
    );
    assert!(!report.contains("literal-pass"));
    assert!(!format!("{config:?}").contains("literal-pass"));
    assert!(
        report.contains(
            "  tls       INSECURE: server certificate not verified (insecure_skip_verify), server name lab.internal (connecting to 10.0.0.7)\n"
        ),
        "{report}"
    );
}

#[test]
fn defaults_tls_applies_to_https_targets_only() {
    let yaml = "defaults:
  tls: {server_name: api.internal}
targets:
  - name: secure
    url: https://10.0.0.7/v1/chat/completions
  - name: plain
    url: http://127.0.0.1:8000/v1/chat/completions
";
    let config = config::load_str(yaml, Path::new("s.yaml")).unwrap();
    let name = config.targets[0].tls.as_ref().unwrap().server_name.as_ref();
    assert_eq!(name.unwrap().connect_host, "10.0.0.7");
    // No TLS on http://, so nothing to apply (and no error, unlike tls set on the target).
    assert!(config.targets[1].tls.is_none());
}

// ---------------------------------------------------------------------------------------------
// Plain-TCP faults

#[tokio::test]
async fn a_cross_host_redirect_drops_the_authorization_header() {
    let respond = |request: &RawRequest, port: u16| -> Vec<Vec<u8>> {
        let redirect = |location: String| {
            vec![
                format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n")
                    .into_bytes(),
            ]
        };
        match request.target.as_str() {
            "/other-host" => redirect(format!("http://localhost:{port}/final")),
            "/same-host" => redirect("/final".to_owned()),
            _ => sse_response(),
        }
    };
    let (addr, seen) = raw_server(Arc::new(respond)).await;
    let client = Client::new().unwrap();
    for start in ["/same-host", "/other-host"] {
        let url = format!("http://127.0.0.1:{}{start}", addr.port());
        let target = load_target(Path::new("s.yaml"), &url, "");
        assert_streamed(&burst(&client, target).await);
    }
    let seen = seen.lock().unwrap();
    let hops: Vec<(&str, Option<&str>, Option<&str>)> = seen
        .iter()
        .map(|r| {
            (
                r.target.as_str(),
                r.header("host"),
                r.header("authorization"),
            )
        })
        .collect();
    let port = addr.port();
    let (ip, name) = (format!("127.0.0.1:{port}"), format!("localhost:{port}"));
    let auth = Some("Bearer sk-test-tls");
    // Same host: the credential follows the redirect (the contrast that shows the header is
    // really sent). Another host: reqwest strips it. Two requests per burst.
    let same = [
        ("/same-host", Some(ip.as_str()), auth),
        ("/final", Some(ip.as_str()), auth),
    ];
    let other = [
        ("/other-host", Some(ip.as_str()), auth),
        ("/final", Some(name.as_str()), None),
    ];
    assert_eq!(hops, [same, same, other, other].concat());
}

#[tokio::test]
async fn a_gzip_encoded_stream_is_decoded_as_it_arrives() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write as _;

    fn chunk(data: &[u8]) -> Vec<u8> {
        let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
        framed.extend_from_slice(data);
        framed.extend_from_slice(b"\r\n");
        framed
    }
    let respond = |_: &RawRequest, _| -> Vec<Vec<u8>> {
        let mut parts = vec![
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
                .to_vec(),
        ];
        // One sync-flushed gzip member: each event is decodable the moment its bytes arrive.
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        for event in sse_events() {
            gzip.write_all(event.as_bytes()).unwrap();
            gzip.flush().unwrap();
            parts.push(chunk(&std::mem::take(gzip.get_mut())));
        }
        let mut last = chunk(&gzip.finish().unwrap());
        last.extend_from_slice(b"0\r\n\r\n");
        parts.push(last);
        parts
    };
    let (addr, seen) = raw_server(Arc::new(respond)).await;
    let url = format!("http://127.0.0.1:{}/v1/chat/completions", addr.port());
    let result = burst_new_client(load_target(Path::new("s.yaml"), &url, "")).await;
    assert_streamed(&result);
    for r in &result.records {
        // Six events 20 ms apart: the first token came well before the end.
        assert!(
            r.duration - r.ttft.unwrap() >= Duration::from_millis(60),
            "{r:?}"
        );
        assert_eq!(r.itl.len(), TOKENS.len() - 1);
        assert!(r.chunks >= TOKENS.len() as u64, "{r:?}");
    }
    for request in seen.lock().unwrap().iter() {
        assert!(
            request
                .header("accept-encoding")
                .is_some_and(|e| e.contains("gzip")),
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_connection_is_connect() {
    let port = free_port();
    for scheme in ["http", "https"] {
        let url = format!("{scheme}://127.0.0.1:{port}/v1/chat/completions");
        let target = load_target(Path::new("s.yaml"), &url, "");
        assert_failed(&burst_new_client(target).await, Outcome::Connect, "refused");
    }
}

#[tokio::test]
async fn plain_http_answering_an_https_url_is_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let url = format!("https://127.0.0.1:{port}/v1/chat/completions");
    let target = load_target(Path::new("s.yaml"), &url, "");
    assert_failed(
        &burst_new_client(target).await,
        Outcome::Tls,
        "corrupt message",
    );
}

/// The environment's proxy variables are the process's, so this runs the binary with its own
/// environment rather than mutating the test process's.
#[tokio::test]
async fn environment_proxies_apply_unless_a_target_has_its_own() {
    let answer: Arc<Respond> = Arc::new(|_: &RawRequest, _| sse_response());
    let (env_proxy, env_seen) = raw_server(answer.clone()).await;
    let (own_proxy, own_seen) = raw_server(answer.clone()).await;
    let (direct, direct_seen) = raw_server(answer).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "defaults:
  protocol: openai
  body: {{model: m, messages: [{{role: user, content: hi}}], stream: true}}
targets:
  - name: env
    url: http://upstream.invalid/v1/chat/completions
  - name: own
    url: http://upstream.invalid/v1/chat/completions
    proxy: http://127.0.0.1:{}
  - name: bypass
    url: http://127.0.0.1:{}/v1/chat/completions
",
        own_proxy.port(),
        direct.port()
    );
    std::fs::write(dir.path().join("proxies.yaml"), config).unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamprobe"));
    command
        .args([
            "run",
            "-c",
            "proxies.yaml",
            "-n",
            "1",
            "-p",
            "1",
            "--no-progress",
        ])
        .current_dir(dir.path())
        .env_remove("STREAMPROBE_LOG");
    for name in [
        "http_proxy",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
    ] {
        command.env_remove(name);
    }
    command
        .env(
            "HTTP_PROXY",
            format!("http://127.0.0.1:{}", env_proxy.port()),
        )
        .env("NO_PROXY", "127.0.0.1");
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("streamprobe finished in time")
        .expect("streamprobe ran");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let targets = |seen: &Mutex<Vec<RawRequest>>| -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|r| r.target.clone())
            .collect()
    };
    let upstream = "http://upstream.invalid/v1/chat/completions";
    assert_eq!(targets(&env_seen), [upstream]);
    assert_eq!(targets(&own_seen), [upstream]);
    assert_eq!(targets(&direct_seen), ["/v1/chat/completions"]);
}
