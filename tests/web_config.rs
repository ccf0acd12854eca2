//! `server.web_config` at its boundary: every `tests/data/web/invalid-*.yml` against its exact
//! message, and the real router served over real TLS on loopback to a real TLS client
//! (reqwest/rustls) with certificates made at test time: server authentication, client
//! certificates per `client_auth_type`, basic auth, extra headers, HTTP/2 negotiation and the
//! request body limit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use reqwest::StatusCode;
use streamprobe::config::web;
use streamprobe::metrics::Metrics;
use streamprobe::server::{self, ServerState, WebSecurity};
use streamprobe::status::StatusBoard;
use tokio::sync::oneshot;

/// Each invalid file and the exact message for it (after `<path>: `).
const INVALID: &[(&str, &str)] = &[
    (
        "invalid-cert-missing.yml",
        "tls_server_config.cert_file: cannot read tests/data/web/does-not-exist.pem: no such file; the path is relative to the web config file",
    ),
    (
        "invalid-cert-not-pem.yml",
        "tls_server_config.cert_file: tests/data/web/not-pem.txt: no certificate in the file; give PEM certificates (-----BEGIN CERTIFICATE-----)",
    ),
    (
        "invalid-cipher-suites.yml",
        "tls_server_config.cipher_suites: is not supported by streamprobe, which uses rustls's modern defaults; remove it",
    ),
    (
        "invalid-client-auth-type.yml",
        "tls_server_config.client_auth_type: unknown client auth type, got \"RequireClientCert\"; use one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert",
    ),
    (
        "invalid-client-ca-required.yml",
        "tls_server_config.client_ca_file: is required with client_auth_type RequireAndVerifyClientCert; give the PEM file of the CA that issues client certificates",
    ),
    (
        "invalid-client-ca-unused.yml",
        "tls_server_config.client_ca_file: is set but client_auth_type NoClientCert does not verify client certificates; use VerifyClientCertIfGiven or RequireAndVerifyClientCert, or remove client_ca_file",
    ),
    (
        "invalid-hash.yml",
        "basic_auth_users.alice: not a bcrypt hash; store a hash, not the password: htpasswd -nBC 10 \"\" | tr -d ':\\n'",
    ),
    (
        "invalid-header.yml",
        "http_server_config.headers.X-Powered-By: this header cannot be set; the headers a web config can set are Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection",
    ),
    (
        "invalid-http2-type.yml",
        "http_server_config.http2: string \"sometimes\", expected a boolean",
    ),
    (
        "invalid-key-mismatch.yml",
        "tls_server_config.key_file: is not the private key of cert_file's certificate; give the key the certificate was issued for",
    ),
    (
        "invalid-key-not-pem.yml",
        "tls_server_config.key_file: tests/data/web/server.pem: no private key in the file (nothing found); give a PEM file with a PKCS#8, PKCS#1 or SEC1 key",
    ),
    (
        "invalid-key-required.yml",
        "tls_server_config.key_file: is required when tls_server_config is set; give both cert_file and key_file (PEM)",
    ),
    (
        "invalid-min-version.yml",
        "tls_server_config.min_version: TLS10 is not supported (it is deprecated, RFC 8996); use TLS12 or TLS13",
    ),
    (
        "invalid-unknown-key.yml",
        "tls_server_config.cert_fle: unknown key; did you mean cert_file?",
    ),
    (
        "invalid-unknown-top-key.yml",
        "basic_auth_user: unknown key; did you mean basic_auth_users?",
    ),
    (
        "invalid-versions.yml",
        "tls_server_config.min_version: must not be above max_version (TLS12), got TLS13; lower it or raise max_version",
    ),
    (
        "invalid-yaml-syntax.yml",
        "invalid YAML at line 3, column 1: did not find expected ',' or ']'",
    ),
];

fn data_dir() -> PathBuf {
    PathBuf::from("tests/data/web")
}

/// Load and build, as `serve` does at start-up.
fn load(path: &Path) -> Result<WebSecurity, String> {
    web::load(path)
        .and_then(WebSecurity::new)
        .map_err(|e| e.to_string())
}

#[test]
fn invalid_web_configs_fail_with_exact_messages() {
    let mut failures = Vec::new();
    for (file, expected) in INVALID {
        let path = data_dir().join(file);
        let expected = format!("{}: {expected}", path.display());
        match load(&path) {
            Ok(_) => failures.push(format!("{file}: loaded, expected an error")),
            Err(err) if err != expected => failures.push(format!(
                "{file}:\n  expected: {expected}\n  actual:   {err}"
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_file_is_in_the_table() {
    let mut on_disk: Vec<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("invalid-"))
        .collect();
    on_disk.sort();
    let listed: Vec<String> = INVALID.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn a_missing_web_config_file_names_itself() {
    let err = load(Path::new("tests/data/web/nope.yml")).unwrap_err();
    assert_eq!(
        err,
        "tests/data/web/nope.yml: cannot read the web config file: no such file; server.web_config is relative to the config file"
    );
}

#[test]
fn a_plain_text_password_never_appears_in_the_message() {
    let err = load(&data_dir().join("invalid-hash.yml")).unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn the_complete_example_loads() {
    let web = web::load(&data_dir().join("valid.yml")).unwrap();
    let tls = web.tls.as_ref().unwrap();
    assert_eq!(tls.client_auth, web::ClientAuth::VerifyClientCertIfGiven);
    assert_eq!(web.users.as_ref().map(|u| u.len()), Some(2));
    assert!(!web.http2);
    assert_eq!(
        web.headers,
        [
            (
                "Strict-Transport-Security".to_owned(),
                "max-age=31536000".to_owned()
            ),
            ("X-Frame-Options".to_owned(), "deny".to_owned()),
        ]
    );
    assert!(WebSecurity::new(web).unwrap().is_tls());
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate it issued, plus
/// a client certificate from an unrelated CA; PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    /// Client certificate + key, one PEM (what `reqwest::Identity::from_pem` takes).
    client: String,
    rogue_client: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf certificate signed by `issuer`: (certificate PEM, key PEM).
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "streamprobe test");
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("streamprobe test CA");
    let rogue = ca_rogue();
    let (server_cert, server_key) = leaf(
        &ca,
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(&ca, &[], ExtendedKeyUsagePurpose::ClientAuth);
    let (rogue_cert, rogue_key) = leaf(&rogue, &[], ExtendedKeyUsagePurpose::ClientAuth);
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("server.pem"), server_cert).unwrap();
    std::fs::write(dir.path().join("server-key.pem"), server_key).unwrap();
    Pki {
        dir,
        ca: ca.pem(),
        client: format!("{client_cert}{client_key}"),
        rogue_client: format!("{rogue_cert}{rogue_key}"),
    }
}

fn ca_rogue() -> CertifiedIssuer<'static, KeyPair> {
    ca("someone else's CA")
}

const TLS: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n";

/// The real router, served by `server::serve` on a loopback port.
struct Daemon {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _results: tempfile::TempDir,
}

impl Daemon {
    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://localhost:{}{path}", self.addr.port())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let served = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns after shutdown");
        served.unwrap().unwrap();
    }
}

async fn start(security: WebSecurity) -> Daemon {
    serve_board(
        security,
        Arc::new(StatusBoard::new()),
        tempfile::tempdir().unwrap(),
    )
    .await
}

/// Serves the router over `board` and the result files in `results`.
async fn serve_board(
    security: WebSecurity,
    board: Arc<StatusBoard>,
    results: tempfile::TempDir,
) -> Daemon {
    let state = ServerState {
        metrics: Arc::new(Metrics::new(&Default::default()).unwrap()),
        board,
        results_dir: Arc::new(std::sync::RwLock::new(results.path().to_path_buf())),
        admin: None,
        ready: Arc::new(AtomicBool::new(true)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(
        listener,
        server::router(state),
        security,
        async move {
            let _ = stopped.await;
        },
    ));
    Daemon {
        addr,
        stop: Some(stop),
        task,
        _results: results,
    }
}

/// Serves with `web_yml` (written next to the PKI's PEM files).
async fn start_with(pki: &Pki, web_yml: &str) -> Daemon {
    let path = pki.dir.path().join("web.yml");
    std::fs::write(&path, web_yml).unwrap();
    start(load(&path).unwrap()).await
}

fn client(ca: Option<&str>, identity: Option<&str>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
        .timeout(Duration::from_secs(10));
    if let Some(ca) = ca {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    }
    if let Some(identity) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn status(client: &reqwest::Client, url: &str) -> Result<StatusCode, reqwest::Error> {
    Ok(client.get(url).send().await?.status())
}

#[tokio::test]
async fn https_is_served_to_clients_that_trust_the_ca() {
    let pki = pki();
    let daemon = start_with(&pki, TLS).await;
    let url = daemon.url("https", "/-/healthy");

    let trusting = client(Some(&pki.ca), None);
    let response = trusting.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // HTTP/2 is negotiated by ALPN unless http2: false.
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.text().await.unwrap(), "Healthy\n");
    let metrics = trusting
        .get(daemon.url("https", "/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("streamprobe_build_info")
    );

    let err = status(&client(None, None), &url).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // Plain HTTP to the TLS port gets no answer.
    assert!(
        status(&trusting, &daemon.url("http", "/-/healthy"))
            .await
            .is_err()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn basic_auth_admits_only_the_right_password() {
    let pki = pki();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let yml = format!(
        "{TLS}basic_auth_users:\n  alice: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n"
    );
    let daemon = start_with(&pki, &yml).await;
    let client = client(Some(&pki.ca), None);
    let url = daemon.url("https", "/metrics");

    for (user, password, expected) in [
        (Some("alice"), "s3cret", StatusCode::OK),
        // Again: answered from the cache of verified credentials.
        (Some("alice"), "s3cret", StatusCode::OK),
        (Some("alice"), "wrong", StatusCode::UNAUTHORIZED),
        (Some("bob"), "s3cret", StatusCode::UNAUTHORIZED),
        (Some("alice"), "", StatusCode::UNAUTHORIZED),
        (None, "", StatusCode::UNAUTHORIZED),
    ] {
        let request = client.get(&url);
        let request = match user {
            Some(user) => request.basic_auth(user, Some(password)),
            None => request,
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{user:?}/{password}");
        // The configured headers are on every response, refusals included.
        assert_eq!(response.headers()["x-frame-options"], "deny");
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000"
        );
        if expected == StatusCode::UNAUTHORIZED {
            assert_eq!(
                response.headers()["www-authenticate"],
                "Basic realm=\"streamprobe\""
            );
        }
    }
    // Every endpoint is behind auth, not only /metrics.
    for path in [
        "/",
        "/-/healthy",
        "/-/ready",
        "/api/v1/targets",
        "/no-such-page",
    ] {
        let status = status(&client, &daemon.url("https", path)).await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    daemon.stop().await;
}

#[tokio::test]
async fn required_client_certificates_must_come_from_the_client_ca() {
    let pki = pki();
    let yml =
        format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n");
    let daemon = start_with(&pki, &yml).await;
    let url = daemon.url("https", "/-/healthy");

    assert_eq!(
        status(&client(Some(&pki.ca), Some(&pki.client)), &url)
            .await
            .unwrap(),
        StatusCode::OK
    );
    assert!(status(&client(Some(&pki.ca), None), &url).await.is_err());
    assert!(
        status(&client(Some(&pki.ca), Some(&pki.rogue_client)), &url)
            .await
            .is_err()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn optional_client_certificates_are_verified_when_given() {
    let pki = pki();
    let yml =
        format!("{TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n");
    let daemon = start_with(&pki, &yml).await;
    let url = daemon.url("https", "/-/healthy");

    for identity in [None, Some(pki.client.as_str())] {
        let status = status(&client(Some(&pki.ca), identity), &url).await;
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    assert!(
        status(&client(Some(&pki.ca), Some(&pki.rogue_client)), &url)
            .await
            .is_err()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn require_any_client_cert_wants_a_certificate_but_not_a_known_one() {
    let pki = pki();
    let yml = format!("{TLS}  client_auth_type: RequireAnyClientCert\n");
    let daemon = start_with(&pki, &yml).await;
    let url = daemon.url("https", "/-/healthy");

    assert_eq!(
        status(&client(Some(&pki.ca), Some(&pki.rogue_client)), &url)
            .await
            .unwrap(),
        StatusCode::OK
    );
    assert!(status(&client(Some(&pki.ca), None), &url).await.is_err());
    daemon.stop().await;
}

#[tokio::test]
async fn request_client_cert_accepts_any_certificate_or_none() {
    let pki = pki();
    let yml = format!("{TLS}  client_auth_type: RequestClientCert\n");
    let daemon = start_with(&pki, &yml).await;
    let url = daemon.url("https", "/-/healthy");
    for identity in [None, Some(pki.rogue_client.as_str())] {
        let status = status(&client(Some(&pki.ca), identity), &url).await;
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    daemon.stop().await;
}

#[tokio::test]
async fn http2_false_keeps_clients_on_http_1_1() {
    let pki = pki();
    let yml = format!("{TLS}http_server_config:\n  http2: false\n");
    let daemon = start_with(&pki, &yml).await;
    let response = client(Some(&pki.ca), None)
        .get(daemon.url("https", "/-/healthy"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    daemon.stop().await;
}

#[tokio::test]
async fn plain_http_refuses_request_bodies_beyond_the_limit() {
    let daemon = start(WebSecurity::default()).await;
    let client = client(None, None);
    assert_eq!(
        status(&client, &daemon.url("http", "/-/healthy"))
            .await
            .unwrap(),
        StatusCode::OK
    );
    let big = vec![b'x'; server::MAX_REQUEST_BODY_BYTES as usize + 1];
    let response = client
        .post(daemon.url("http", "/-/reload"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Without a body the same request reaches its handler (the admin API is off here).
    let response = client
        .post(daemon.url("http", "/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    daemon.stop().await;
}

/// A daemon config next to the PKI's files whose `server.web_config` is relative to it.
fn daemon_config(pki: &Pki, web_yml: &str) -> PathBuf {
    std::fs::write(pki.dir.path().join("web.yml"), web_yml).unwrap();
    let config = pki.dir.path().join("streamprobe.yaml");
    std::fs::write(
        &config,
        "server:\n  listen: 127.0.0.1:0\n  web_config: web.yml\nresults:\n  dir: results\n\
         targets:\n  - name: manual\n    url: http://127.0.0.1:9/v1/chat/completions\n",
    )
    .unwrap();
    config
}

#[tokio::test]
async fn serve_reads_the_web_config_next_to_its_config_file() {
    use tokio::io::AsyncBufReadExt;
    let pki = pki();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let config = daemon_config(
        &pki,
        &format!("{TLS}basic_auth_users:\n  alice: '{hash}'\n"),
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamprobe"))
        .args(["serve", "-c"])
        .arg(&config)
        // Elsewhere, so that only resolving against the config file finds web.yml.
        .current_dir(std::env::temp_dir())
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("streamprobe serving") {
                let at = line
                    .find("listen=127.0.0.1:")
                    .expect("the log names the address");
                let digits: String = line[at + 17..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                return digits.parse::<u16>().unwrap();
            }
        }
        panic!("serve exited before serving");
    })
    .await
    .expect("serve starts within 30 s");

    let client = client(Some(&pki.ca), None);
    let url = format!("https://localhost:{port}/-/ready");
    let authorized = client.get(&url).basic_auth("alice", Some("s3cret"));
    assert_eq!(authorized.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        status(&client, &url).await.unwrap(),
        StatusCode::UNAUTHORIZED
    );
    child.kill().await.unwrap();
}

#[test]
fn serve_refuses_to_start_with_an_invalid_web_config() {
    let pki = pki();
    let config = daemon_config(&pki, "basic_auth_users:\n  alice: hunter2\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_streamprobe"))
        .args(["serve", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}: basic_auth_users.alice: not a bcrypt hash",
        pki.dir.path().join("web.yml").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// The picture pages behind TLS and basic auth: served to the right user with their
/// Content-Security-Policy, refused (401) to anyone else like every endpoint.
#[tokio::test]
async fn picture_pages_work_behind_tls_and_basic_auth() {
    use streamprobe::status::{BurstBrief, TargetStatus};
    let pki = pki();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let path = pki.dir.path().join("web.yml");
    std::fs::write(
        &path,
        format!("{TLS}basic_auth_users:\n  alice: '{hash}'\n"),
    )
    .unwrap();

    let results = tempfile::tempdir().unwrap();
    let file = "20261127T101500Z-0123456789ab.json";
    std::fs::create_dir(results.path().join("t")).unwrap();
    std::fs::write(
        results.path().join("t").join(file),
        r#"{"schema_version": 2, "burst_id": "0123456789ab", "target": "t",
            "config": {"timestamp": "2026-11-27T10:15:00Z"},
            "summary": {"success_count": 1, "failed_count": 0, "ttft": {"p50": 0.2, "p95": 0.2}},
            "metrics": [{"request_id": 1, "outcome": "success", "ttft": 0.2, "total_time": 1.0,
                         "start_offset": 0.0, "client_wait": 0.0, "tokens_per_second": 10.0,
                         "phases": {"headers": 0.1, "first_token": 0.1, "generation": 0.8}}]}"#,
    )
    .unwrap();
    let board = Arc::new(StatusBoard::new());
    board.upsert(TargetStatus {
        name: "t".into(),
        protocol: "openai".into(),
        endpoint: "http://h/v1/chat/completions".into(),
        model: None,
        schedule: "every 5m".into(),
        next_run: None,
        running: false,
        in_flight: 0,
        recent: Default::default(),
        // The daemon's verdict reaches the target page through the board, with its band.
        verdict: Some(streamprobe::status::TargetVerdict {
            metric: "ttft".into(),
            verdict: "regressed".into(),
            statistic: "p90".into(),
            baseline: Some(0.15),
            recent: Some(0.2),
            change: Some(0.3333),
            ci: Some([0.2, 0.45]),
            confidence: 0.95,
            p_value: Some(0.001),
            n_baseline: 400,
            n_recent: 30,
            baseline_p50: Some(0.12),
            baseline_p95: Some(0.16),
            baseline_window_seconds: 7.0 * 86400.0,
            recent_window_seconds: 3600.0,
            min_change: 0.05,
            at: "2026-11-27T10:15:00Z".parse().unwrap(),
        }),
    });
    board.push_burst(
        "t",
        BurstBrief {
            burst_id: "0123456789ab".into(),
            started_at: "2026-11-27T10:15:00Z".parse().unwrap(),
            duration_seconds: 1.0,
            total: 1,
            success_count: 1,
            failed_count: 0,
            success_ratio: 1.0,
            ttft_p50: Some(0.2),
            ttft_p95: Some(0.2),
            interrupted: false,
            file: Some(file.into()),
        },
    );
    let daemon = serve_board(load(&path).unwrap(), board, results).await;
    let client = client(Some(&pki.ca), None);
    for (path, plot) in [
        ("/", "href=\"/targets/t/bursts/0123456789ab\""),
        ("/targets/t", "data-plot=\"trend\" data-points=\"1\""),
        ("/targets/t", "class=\"baseline-band\""),
        (
            "/targets/t",
            "▲ regressed</span> TTFT p90: recent 200.0 ms (n = 30)",
        ),
        (
            "/targets/t/bursts/0123456789ab",
            "data-plot=\"waterfall\" data-requests=\"1\" data-rows=\"1\"",
        ),
    ] {
        let url = daemon.url("https", path);
        let response = client
            .get(&url)
            .basic_auth("alice", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()["content-security-policy"],
            streamprobe::output::html::CONTENT_SECURITY_POLICY,
            "{path}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(plot), "{path}: {body}");
        let refused = client.get(&url).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            !refused.headers().contains_key("content-security-policy"),
            "{path}: the refusal is not a page"
        );
    }
    daemon.stop().await;
}

/// A policy the web config sets replaces the pages' own (the operator's choice wins).
#[tokio::test]
async fn a_configured_content_security_policy_replaces_the_built_in_one() {
    let pki = pki();
    let daemon = start_with(
        &pki,
        &format!(
            "{TLS}http_server_config:\n  headers:\n    Content-Security-Policy: \"default-src 'self'\"\n"
        ),
    )
    .await;
    let response = client(Some(&pki.ca), None)
        .get(daemon.url("https", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let policies: Vec<_> = response
        .headers()
        .get_all("content-security-policy")
        .iter()
        .collect();
    assert_eq!(policies, ["default-src 'self'"]);
    daemon.stop().await;
}
