//! DESIGN §11 through the engine, against servers on 127.0.0.1 that these tests start: request
//! phases and new/reused connections (plain HTTP; TLS is in `tls.rs`), the one retry after a
//! reused keep-alive connection failed before any response byte (issue 10 item 17), provider
//! headers carried into the record (every family the mock sends, well-formed and malformed),
//! and `cache_bust: prefix` for every protocol's prompt field (proved on what the mock
//! received).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use streamprobe::config::{self, Target};
use streamprobe::mock::{
    ANTHROPIC, ANTHROPIC_RESET, HeaderFamily, IETF_POLICY, IETF_RATELIMIT, OPENAI, RETRY_AFTER_SECS,
};
use streamprobe::probe::{
    BurstOptions, BurstPlan, BurstResult, Client, Connection, Outcome, Phase, RequestRecord,
    Resource, run_burst,
};

mod common;
use common::{mock, timing};

/// One target from YAML; `extra` adds target fields (indented 4).
fn target(url: &str, extra: &str) -> Target {
    let yaml = format!(
        "targets:\n  - name: t\n    url: \"{url}\"\n    request_id_header: X-Request-Id\n    timeout: 10s\n{extra}"
    );
    let mut config = config::load_str(&yaml, Path::new("test.yaml")).expect("test config loads");
    config.targets.remove(0)
}

const CHAT_BODY: &str =
    "    body: {model: m, messages: [{role: user, content: hi}], stream: true}\n";

async fn burst(target: Target) -> BurstResult {
    burst_on(&Client::new().unwrap(), target).await
}

async fn burst_on(client: &Client, target: Target) -> BurstResult {
    let plan = BurstPlan::for_target(&target);
    let options = BurstOptions {
        burst_id: "b".into(),
        keep_text: false,
        limiter: None,
        cancel: None,
    };
    run_burst(client, Arc::new(target), &plan, options, ()).await
}

/// The phases of `r` add up to its duration within 1 ms.
fn assert_phases_add_up(r: &RequestRecord) {
    let sum: Duration = r.phases.iter().map(|(_, d)| d).sum();
    assert!(
        sum.abs_diff(r.duration) <= Duration::from_millis(1),
        "phases {:?} sum to {sum:?}, duration {:?}",
        r.phases,
        r.duration
    );
}

// ---------------------------------------------------------------------------------------------
// Phases and connections

#[tokio::test]
async fn fresh_http_connections_show_every_phase_and_they_add_up() {
    let server = mock(timing(60, 5, 8)).await;
    // A host name, so that a DNS lookup happens (an IP literal needs none).
    let url = server
        .url("/v1/chat/completions")
        .replace("127.0.0.1", "localhost");
    let t = target(
        &url,
        &format!(
            "{CHAT_BODY}    fresh_connections: true\n    concurrency: 2\n    total_requests: 6\n"
        ),
    );
    let result = burst(t).await;
    assert_eq!(result.records.len(), 6);
    for r in &result.records {
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        assert_eq!(r.connection, Some(Connection::New));
        for phase in Phase::ALL.into_iter().filter(|p| *p != Phase::Tls) {
            assert!(
                r.phases.get(phase).is_some(),
                "no {phase:?}: {:?}",
                r.phases
            );
        }
        assert_eq!(r.phases.tls, None, "plain HTTP has no handshake");
        assert_phases_add_up(r);
        // The server's TTFT is in `headers` + `first_token`, never in the connect phases.
        let waited = r.phases.headers.unwrap() + r.phases.first_token.unwrap();
        assert!(waited >= Duration::from_millis(60), "{:?}", r.phases);
        assert_eq!(
            r.time_to_headers.unwrap(),
            r.phases.resolve.unwrap() + r.phases.connect.unwrap() + r.phases.headers.unwrap()
        );
    }
}

#[tokio::test]
async fn pooled_connections_are_new_once_then_reused_and_every_request_adds_up() {
    let server = mock(timing(30, 2, 5)).await;
    let t = target(
        &server.url("/v1/chat/completions"),
        &format!("{CHAT_BODY}    concurrency: 1\n    total_requests: 5\n"),
    );
    let result = burst(t).await;
    for r in &result.records {
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        assert_phases_add_up(r);
        assert!(!r.retried);
    }
    let first = &result.records[0];
    assert_eq!(first.connection, Some(Connection::New));
    // 127.0.0.1: no lookup, so no resolve phase; the connect is there.
    assert_eq!(first.phases.resolve, None);
    assert!(first.phases.connect.is_some());
    for r in &result.records[1..] {
        assert_eq!(r.connection, Some(Connection::Reused), "{r:?}");
        assert_eq!((r.phases.resolve, r.phases.connect), (None, None));
        assert_eq!(r.phases.headers, r.time_to_headers);
    }
}

#[tokio::test]
async fn failed_requests_stop_at_the_phase_they_failed_in() {
    // Headers arrive, then the stream stalls until the first-token timeout.
    let server = mock(timing(5_000, 5, 5)).await;
    let t = target(
        &server.url("/v1/chat/completions"),
        &format!(
            "{CHAT_BODY}    total_requests: 1\n    concurrency: 1\n    first_token_timeout: 300ms\n"
        ),
    );
    let result = burst(t).await;
    let r = &result.records[0];
    assert_eq!(r.outcome, Outcome::TimeoutFirstToken);
    assert!(r.phases.first_token.unwrap() >= Duration::from_millis(250));
    assert_eq!(r.phases.generation, None);
    assert_phases_add_up(r);

    // Nobody listens: the connect phase runs to the failure.
    let port = common::free_port();
    let t = target(
        &format!("http://127.0.0.1:{port}/v1/chat/completions"),
        &format!("{CHAT_BODY}    total_requests: 1\n    concurrency: 1\n"),
    );
    let result = burst(t).await;
    let r = &result.records[0];
    assert_eq!(r.outcome, Outcome::Connect);
    assert_eq!(r.connection, Some(Connection::New));
    assert!(r.phases.connect.is_some());
    assert_eq!(r.phases.headers, None);
    assert!(!r.retried, "a failure on a new connection is never retried");
    assert_phases_add_up(r);
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 server whose connections misbehave on purpose

const SSE_BODY: &str =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n";

/// What the raw server does with the `n`-th request (0-based) of a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A complete SSE response, keep-alive, with these extra header lines.
    Stream(&'static str),
    /// Reset the connection (RST) without a response byte.
    Reset,
    /// `307 Temporary Redirect` to this location, keep-alive.
    Redirect(&'static str),
}

struct RawServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

/// Reads one request head (and its `Content-Length` body) and returns the request target;
/// `None` at end of input.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
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
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
    let body_len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + 4 + body_len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + 4 + body_len);
    Some(path)
}

/// `answer(n, path)` answers the `n`th request on a connection, for the request target `path`.
async fn raw_server(answer: fn(usize, &str) -> Answer) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut n = 0;
                while let Some(path) = read_request(&mut stream, &mut buf).await {
                    r.fetch_add(1, Ordering::SeqCst);
                    match answer(n, &path) {
                        Answer::Stream(extra) => {
                            let response = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n{extra}content-length: {}\r\n\r\n{SSE_BODY}",
                                SSE_BODY.len()
                            );
                            if stream.write_all(response.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Answer::Redirect(location) => {
                            let response = format!(
                                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
                            );
                            if stream.write_all(response.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Answer::Reset => {
                            // Linger 0: close sends RST, as a server dropping an idle
                            // keep-alive connection under the request does.
                            #[allow(deprecated)] // blocking only for a non-zero linger
                            let _ = stream.set_linger(Some(Duration::ZERO));
                            return;
                        }
                    }
                    n += 1;
                }
            });
        }
    });
    RawServer {
        addr,
        connections,
        requests,
    }
}

#[tokio::test]
async fn a_reused_connection_that_fails_before_any_byte_is_retried_once_on_a_new_one() {
    // Every connection serves one request; the second on it is reset unanswered.
    let server = raw_server(|n, _| {
        if n == 0 {
            Answer::Stream("")
        } else {
            Answer::Reset
        }
    })
    .await;
    let t = target(
        &format!("http://{}/v1/chat/completions", server.addr),
        &format!("{CHAT_BODY}    protocol: openai\n    concurrency: 1\n    total_requests: 4\n"),
    );
    let result = burst(t).await;
    for r in &result.records {
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        assert_phases_add_up(r);
        // A retried request's timings are the retry's: on its new connection.
        assert_eq!(r.connection, Some(Connection::New), "{r:?}");
    }
    // 1 opens a connection; 2 is sent on it, reset, retried on a new one (not pooled);
    // 3 finds the pool empty and opens one; 4 is reset on it and retried.
    let retried: Vec<bool> = result.records.iter().map(|r| r.retried).collect();
    assert_eq!(retried, [false, true, false, true]);
    assert_eq!(server.connections.load(Ordering::SeqCst), 4);
    assert_eq!(server.requests.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn a_failure_on_a_new_connection_is_never_retried() {
    let server = raw_server(|_, _| Answer::Reset).await;
    let t = target(
        &format!("http://{}/v1/chat/completions", server.addr),
        &format!("{CHAT_BODY}    protocol: openai\n    concurrency: 1\n    total_requests: 2\n"),
    );
    let result = burst(t).await;
    for r in &result.records {
        assert_eq!(r.outcome, Outcome::Connect, "{r:?}");
        assert!(!r.retried);
        assert_eq!(r.connection, Some(Connection::New));
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_307_redirect_of_a_request_with_a_body_is_still_followed() {
    // The body is sent wrapped (to stamp t0 when it is written), which reqwest cannot clone to
    // follow a 307: the request is sent again with plain bytes, and reqwest follows it.
    let server = raw_server(|_, path| {
        if path == "/final" {
            Answer::Stream("")
        } else {
            Answer::Redirect("/final")
        }
    })
    .await;
    let t = target(
        &format!("http://{}/v1/chat/completions", server.addr),
        &format!("{CHAT_BODY}    protocol: openai\n    concurrency: 1\n    total_requests: 1\n"),
    );
    let result = burst(t).await;
    let r = &result.records[0];
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_phases_add_up(r);
    // Stamped send → 307; plain send → 307, followed → /final.
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
}

// ---------------------------------------------------------------------------------------------
// t0: when the request is written, not when it was queued (issue 13)

/// The mock on a runtime of its own, so that a busy test runtime cannot delay the server's
/// clock (its truth is the reference).
fn mock_on_own_thread(
    options: streamprobe::mock::MockOptions,
) -> (
    Arc<streamprobe::mock::MockServer>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Arc::new(
                streamprobe::mock::MockServer::start("127.0.0.1:0".parse().unwrap(), options)
                    .await
                    .unwrap(),
            );
            tx.send(server.clone()).unwrap();
            let _ = stopped.await;
        });
    });
    (rx.recv().unwrap(), stop)
}

#[tokio::test(flavor = "current_thread")]
async fn a_send_queued_behind_a_busy_core_is_client_wait_not_time_to_headers() {
    let (server, _stop) = mock_on_own_thread(timing(300, 5, 5));
    let client = Client::new().unwrap();
    let url = server.url("/v1/chat/completions");
    let one = || target(&url, &format!("{CHAT_BODY}    total_requests: 1\n"));
    // Opens the pooled connection the measured request reuses.
    let warm = burst_on(&client, one()).await;
    assert_eq!(warm.records[0].outcome, Outcome::Success);

    // A task that holds the (only) thread for 50 ms every time it runs, for about a second,
    // and goes straight back to the end of the run queue (`yield_now` would wait for the next
    // I/O poll): every hop between tasks — the request handing itself to the connection's
    // task, that task writing it — waits behind one such block.
    let hog = tokio::spawn(async {
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(50));
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if yielded {
                    return std::task::Poll::Ready(());
                }
                yielded = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            })
            .await;
        }
    });
    let result = burst_on(&client, one()).await;
    hog.await.unwrap();
    let r = &result.records[0];
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(r.connection, Some(Connection::Reused), "{r:?}");
    // The block between hand-off and write is the client's wait, outside the request's phases.
    assert!(
        r.client_wait >= Duration::from_millis(40),
        "client_wait {:?}",
        r.client_wait
    );
    assert_phases_add_up(r);
    // t0 is never after the request left: the client's TTFT is at least the server's.
    let truth = server.truth("b-1").expect("the mock saw the request");
    let served = truth.first_token_after.expect("a first token was sent");
    let ttft = r.ttft.expect("a TTFT");
    assert!(ttft >= served, "ttft {ttft:?} < the server's {served:?}");
}

// ---------------------------------------------------------------------------------------------
// Provider headers

#[tokio::test]
async fn provider_headers_land_in_the_record() {
    const HEADERS: &str = "x-ratelimit-limit-requests: 500\r\nx-ratelimit-remaining-requests: 499\r\nx-ratelimit-reset-requests: 120ms\r\nx-ratelimit-remaining-tokens: 29500\r\nx-ratelimit-reset-tokens: 6m0s\r\nanthropic-ratelimit-output-tokens-remaining: 900\r\nratelimit-policy: \"day\";q=1000;w=86400\r\nratelimit: \"day\";r=10;t=60, \"broken\r\nx-request-id: req_7f3a\r\ncf-ray: 8f1a-FRA\r\nx-served-by: cache-fra-1\r\n";
    let server = raw_server(|_, _| Answer::Stream(HEADERS)).await;
    let t = target(
        &format!("http://{}/v1/chat/completions", server.addr),
        &format!(
            "{CHAT_BODY}    protocol: openai\n    total_requests: 1\n    capture_headers: [X-Served-By, x-absent]\n"
        ),
    );
    let result = burst(t).await;
    let r = &result.records[0];
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let requests = r.ratelimit.get(Resource::Requests);
    assert_eq!(requests.limit, Some(500));
    assert_eq!(requests.remaining, Some(499));
    assert_eq!(requests.reset, Some(Duration::from_millis(120)));
    let tokens = r.ratelimit.get(Resource::Tokens);
    assert_eq!(
        (tokens.remaining, tokens.reset),
        (Some(29500), Some(Duration::from_secs(360)))
    );
    assert_eq!(r.ratelimit.get(Resource::OutputTokens).remaining, Some(900));
    assert_eq!(r.provider_request_id.as_deref(), Some("req_7f3a"));
    assert_eq!(
        r.captured_headers,
        [("x-served-by".to_owned(), "cache-fra-1".to_owned())]
    );
}

/// One request to the mock asking for `query` (`provider_headers=…`, maybe a fault).
async fn one_request(server: &streamprobe::mock::MockServer, query: &str) -> RequestRecord {
    let t = target(
        &server.url(&format!("/v1/chat/completions?{query}")),
        &format!("{CHAT_BODY}    total_requests: 1\n"),
    );
    burst(t).await.records.remove(0)
}

#[tokio::test]
async fn every_mock_header_family_is_read() {
    let server = mock(timing(1, 1, 2)).await;
    let close = |got: Option<Duration>, want: Duration| {
        got.is_some_and(|d| d.abs_diff(want) <= Duration::from_secs(2))
    };

    let r = one_request(&server, "provider_headers=openai").await;
    assert_eq!(r.outcome, Outcome::Success);
    let (req, tok) = (
        r.ratelimit.get(Resource::Requests),
        r.ratelimit.get(Resource::Tokens),
    );
    let num = |i: usize| OPENAI[i].1.parse::<u64>().ok();
    assert_eq!((req.limit, req.remaining), (num(0), num(1)));
    assert_eq!(req.reset, Some(Duration::from_millis(120)));
    assert_eq!((tok.limit, tok.remaining), (num(3), num(4)));
    assert_eq!(tok.reset, Some(Duration::from_secs(360)));

    let r = one_request(&server, "provider_headers=anthropic").await;
    let resources = [
        Resource::Requests,
        Resource::Tokens,
        Resource::InputTokens,
        Resource::OutputTokens,
    ];
    for (resource, (name, limit, remaining)) in resources.into_iter().zip(ANTHROPIC) {
        let got = r.ratelimit.get(resource);
        assert_eq!(
            (got.limit, got.remaining),
            (Some(limit), Some(remaining)),
            "{name}"
        );
        assert!(close(got.reset, ANTHROPIC_RESET), "{name}: {:?}", got.reset);
    }

    let r = one_request(&server, "provider_headers=ietf").await;
    let req = r.ratelimit.get(Resource::Requests);
    assert_eq!(
        (req.limit, req.remaining, req.reset),
        (Some(100), Some(99), Some(Duration::from_secs(30)))
    );
    assert!(IETF_POLICY.contains("q=100") && IETF_RATELIMIT.contains("r=99"));

    let r = one_request(&server, "provider_headers=request-id").await;
    let id = r.provider_request_id.expect("an id");
    assert!(id.starts_with("req_mock"), "{id}");

    for (family, fault, outcome) in [
        ("retry-after", "429", Outcome::Http429),
        ("retry-after-date", "503", Outcome::Http5xx),
    ] {
        let r = one_request(&server, &format!("provider_headers={family}&fault={fault}")).await;
        assert_eq!(r.outcome, outcome);
        let want = Duration::from_secs(RETRY_AFTER_SECS);
        assert!(
            close(r.ratelimit.retry_after, want),
            "{family}: {:?}",
            r.ratelimit.retry_after
        );
    }
}

#[tokio::test]
async fn malformed_header_families_are_ignored_and_the_request_is_measured() {
    let server = mock(timing(1, 1, 2)).await;
    for family in HeaderFamily::ALL {
        let (fault, outcome) = match family {
            HeaderFamily::RetryAfter | HeaderFamily::RetryAfterDate => ("429", Outcome::Http429),
            _ => ("none", Outcome::Success),
        };
        let query = format!(
            "provider_headers={}-malformed&fault={fault}",
            family.as_str()
        );
        let r = one_request(&server, &query).await;
        assert_eq!(r.outcome, outcome, "{query}");
        assert!(r.ratelimit.is_empty(), "{query}: {:?}", r.ratelimit);
        assert_eq!(r.provider_request_id, None, "{query}");
    }
}

// ---------------------------------------------------------------------------------------------
// Cache busting

/// What the mock received as each request's prompt, by request id, read at `pointer`.
fn prompts(server: &streamprobe::mock::MockServer, pointer: &str) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = server
        .truths()
        .into_iter()
        .map(|t| {
            let body: serde_json::Value = serde_json::from_slice(&t.request_body).unwrap();
            let prompt = body
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("no {pointer} in {body}"))
                .to_owned();
            (t.id, prompt)
        })
        .collect();
    seen.sort();
    seen
}

#[tokio::test]
async fn cache_bust_prefix_makes_every_prompt_unique_for_every_protocol() {
    // (path, body, JSON pointer of the prompt the nonce must start)
    let cases = [
        (
            "/v1/chat/completions",
            "{model: m, messages: [{role: system, content: be brief}, {role: user, content: hi}], stream: true}",
            "/messages/1/content",
        ),
        (
            "/v1/completions",
            "{model: m, prompt: hi, stream: true}",
            "/prompt",
        ),
        (
            "/v1/responses",
            "{model: m, input: hi, stream: true}",
            "/input",
        ),
        (
            "/v1/responses",
            "{model: m, input: [{role: user, content: [{type: input_text, text: hi}]}], stream: true}",
            "/input/0/content/0/text",
        ),
        (
            "/v1/messages",
            "{model: m, max_tokens: 10, messages: [{role: user, content: [{type: text, text: hi}]}], stream: true}",
            "/messages/0/content/0/text",
        ),
        (
            "/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
            "{contents: [{role: user, parts: [{text: hi}]}]}",
            "/contents/0/parts/0/text",
        ),
        ("/api/generate", "{model: m, prompt: hi}", "/prompt"),
        (
            "/api/chat",
            "{model: m, messages: [{role: user, content: hi}]}",
            "/messages/0/content",
        ),
    ];
    for (path, body, pointer) in cases {
        let server = mock(timing(1, 1, 2)).await;
        let t = target(
            &server.url(path),
            &format!(
                "    body: {body}\n    cache_bust: prefix\n    concurrency: 2\n    total_requests: 3\n"
            ),
        );
        let result = burst(t).await;
        for r in &result.records {
            assert_eq!(r.outcome, Outcome::Success, "{path}: {r:?}");
        }
        let seen = prompts(&server, pointer);
        assert_eq!(seen.len(), 3, "{path}");
        for (id, prompt) in &seen {
            // The request id is `<burst id>-<n>`, like the nonce.
            assert_eq!(prompt, &format!("{id} hi"), "{path} {pointer}");
        }
    }
}

#[tokio::test]
async fn without_cache_bust_the_prompt_is_sent_as_written() {
    let server = mock(timing(1, 1, 2)).await;
    let t = target(
        &server.url("/v1/chat/completions"),
        &format!("{CHAT_BODY}    total_requests: 2\n"),
    );
    burst(t).await;
    for (_, prompt) in prompts(&server, "/messages/0/content") {
        assert_eq!(prompt, "hi");
    }
}
