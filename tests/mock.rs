//! Boundary tests of the mock server (`streamprobe::mock`): every dialect's body decodes,
//! overrides and faults have their observable effect, ground truth and in-flight stats are right.
//!
//! Talks only to mocks started on 127.0.0.1:0, with a minimal raw HTTP/1.1 client (below) so that
//! broken bodies, resets and chunk boundaries are seen exactly as they come off the socket.
//! Does not: test the probe's decoders (those have their own tests).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use streamprobe::config::Protocol;
use streamprobe::mock::{
    ANTHROPIC, End, Fault, FaultSpec, HeaderFamily, IETF_POLICY, IETF_RATELIMIT, MockOptions,
    OPENAI, ProviderHeaders, RETRY_AFTER_SECS, expected_text, token_text,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::mock;

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client.

#[derive(Debug, Default)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    /// Decoded body (chunked or content-length).
    body: Vec<u8>,
    /// Size of each chunk of a chunked body.
    chunk_sizes: Vec<usize>,
    /// The body's end was seen (terminating chunk or full content-length).
    complete: bool,
    /// The connection ended (EOF or error) before the body's end.
    broken: bool,
    /// The read failed with an error (e.g. connection reset) rather than EOF.
    read_error: Option<std::io::ErrorKind>,
    /// The idle limit expired with the body still open.
    idle_timeout: bool,
    /// Request sent → response head complete.
    time_to_headers: Option<Duration>,
    /// Request sent → body end (or whatever ended the read).
    duration: Duration,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }
}

struct Request<'a> {
    method: &'a str,
    target: String,
    headers: Vec<(&'a str, String)>,
    body: String,
    /// Give up when no byte arrives for this long (for hang/stall tests).
    idle: Duration,
}

impl<'a> Request<'a> {
    fn post(target: impl Into<String>, body: &str) -> Request<'a> {
        Request {
            method: "POST",
            target: target.into(),
            headers: Vec::new(),
            body: body.to_owned(),
            idle: Duration::from_secs(10),
        }
    }

    fn get(target: impl Into<String>) -> Request<'a> {
        Request {
            method: "GET",
            ..Request::post(target, "")
        }
    }

    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    async fn send(&self, addr: SocketAddr) -> Reply {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        self.send_on(&mut stream).await
    }

    async fn send_on(&self, stream: &mut TcpStream) -> Reply {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            self.method,
            self.target,
            self.body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&self.body);
        let t0 = Instant::now();
        stream.write_all(head.as_bytes()).await.expect("write");
        read_reply(stream, t0, self.idle).await
    }
}

async fn read_reply(stream: &mut TcpStream, t0: Instant, idle: Duration) -> Reply {
    let mut reply = Reply::default();
    let mut raw = Vec::new();
    let mut head_len = None;
    let mut content_length = None;
    let mut chunked = false;
    let mut pos = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match tokio::time::timeout(idle, stream.read(&mut buf)).await {
            Err(_) => {
                reply.idle_timeout = true;
                break;
            }
            Ok(Err(e)) => {
                reply.read_error = Some(e.kind());
                reply.broken = true;
                break;
            }
            Ok(Ok(0)) => {
                reply.broken = true;
                break;
            }
            Ok(Ok(n)) => n,
        };
        raw.extend_from_slice(&buf[..n]);
        if head_len.is_none() {
            let Some(end) = find(&raw, b"\r\n\r\n") else {
                continue;
            };
            reply.time_to_headers = Some(t0.elapsed());
            // Lossy: the malformed provider headers carry non-UTF-8 bytes (obs-text).
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap();
            reply.status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
            for line in lines {
                let (k, v) = line.split_once(':').unwrap();
                reply
                    .headers
                    .push((k.to_ascii_lowercase(), v.trim().to_owned()));
            }
            chunked = reply.header("transfer-encoding") == Some("chunked");
            content_length = reply
                .header("content-length")
                .map(|v| v.parse::<usize>().unwrap());
            head_len = Some(end + 4);
            pos = end + 4;
        }
        if chunked {
            // Decode as many whole chunks as have arrived.
            loop {
                let rest = &raw[pos..];
                let Some(eol) = find(rest, b"\r\n") else {
                    break;
                };
                let size_text = std::str::from_utf8(&rest[..eol]).unwrap();
                let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
                if size == 0 {
                    if rest.len() >= eol + 4 {
                        reply.complete = true;
                    }
                    break;
                }
                if rest.len() < eol + 2 + size + 2 {
                    break;
                }
                reply.body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
                reply.chunk_sizes.push(size);
                pos += eol + 2 + size + 2;
            }
        } else if let (Some(h), Some(cl)) = (head_len, content_length) {
            if raw.len() >= h + cl {
                reply.body = raw[h..h + cl].to_vec();
                reply.complete = true;
            }
        }
        if reply.complete {
            break;
        }
    }
    if reply.complete {
        reply.broken = false;
    }
    reply.duration = t0.elapsed();
    reply
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Decoding the dialects just enough to check the mock's output.

#[derive(Debug, Default)]
struct Decoded {
    /// Every SSE `data` payload / NDJSON line parsed as JSON (fails the test when one is not).
    events: Vec<(Option<String>, Value)>,
    texts: Vec<String>,
    usage: Option<u64>,
    terminal: bool,
    error: bool,
    done_marker: bool,
}

/// Splits SSE into (event name, data) pairs; CRLF or LF line endings.
fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    let body = body.replace("\r\n", "\n");
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                }
            }
            (!data.is_empty()).then(|| (name, data.join("\n")))
        })
        .collect()
}

fn decode(path: &str, body: &str) -> Decoded {
    let mut d = Decoded::default();
    let ndjson = path.starts_with("/api/");
    let items: Vec<(Option<String>, String)> = if ndjson {
        body.lines().map(|l| (None, l.to_owned())).collect()
    } else {
        sse_events(body)
    };
    for (name, data) in items {
        if data == "[DONE]" {
            d.done_marker = true;
            d.terminal = true;
            continue;
        }
        let v: Value = serde_json::from_str(&data)
            .unwrap_or_else(|e| panic!("{path}: invalid JSON {data:?}: {e}"));
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let n = |p: &str| v.pointer(p).and_then(Value::as_u64);
        let text = match path {
            "/v1/chat/completions" => s("/choices/0/delta/content"),
            "/v1/completions" => s("/choices/0/text"),
            "/v1/responses" => (s("/type").as_deref() == Some("response.output_text.delta"))
                .then(|| s("/delta"))
                .flatten(),
            "/v1/messages" => s("/delta/text"),
            "/api/chat" => s("/message/content"),
            "/api/generate" => s("/response"),
            "/v1/chat-messages" => s("/answer"),
            "/generate_stream" => (v.pointer("/token/special") == Some(&Value::Bool(false)))
                .then(|| s("/token/text"))
                .flatten(),
            "/completion" => s("/content"),
            _ => s("/candidates/0/content/parts/0/text"),
        };
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            d.texts.push(t);
        }
        let usage = match path {
            "/v1/chat/completions" | "/v1/completions" => n("/usage/completion_tokens"),
            "/v1/responses" => n("/response/usage/output_tokens"),
            "/v1/messages" => (s("/type").as_deref() == Some("message_delta"))
                .then(|| n("/usage/output_tokens"))
                .flatten(),
            "/api/chat" | "/api/generate" => n("/eval_count"),
            "/v1/chat-messages" => n("/metadata/usage/completion_tokens"),
            "/generate_stream" => n("/details/generated_tokens"),
            "/completion" => (v["stop"] == Value::Bool(true))
                .then(|| n("/tokens_predicted"))
                .flatten(),
            _ => n("/usageMetadata/candidatesTokenCount"),
        };
        if usage.is_some() {
            d.usage = usage;
        }
        d.terminal |= match path {
            "/v1/responses" => s("/type").as_deref() == Some("response.completed"),
            "/v1/messages" => s("/type").as_deref() == Some("message_stop"),
            "/api/chat" | "/api/generate" => v["done"] == Value::Bool(true),
            "/v1/chat-messages" => s("/event").as_deref() == Some("message_end"),
            "/generate_stream" => v["generated_text"].is_string(),
            "/completion" => v["stop"] == Value::Bool(true),
            "/v1/chat/completions" | "/v1/completions" => false,
            _ => v.pointer("/candidates/0/finishReason").is_some(),
        };
        d.error |= v.get("error").is_some()
            || name.as_deref() == Some("error")
            || s("/event").as_deref() == Some("error");
        d.events.push((name, v));
    }
    d
}

const SSE_PATHS: [&str; 10] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/messages",
    "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
    "/api/chat",
    "/api/generate",
    "/v1/chat-messages",
    "/generate_stream",
    "/completion",
];

const OPENAI_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;

fn fast() -> MockOptions {
    MockOptions {
        ttft: Duration::from_millis(5),
        itl: Duration::from_millis(1),
        tokens: 5,
        ..MockOptions::default()
    }
}

fn path_only(target: &str) -> &str {
    target.split('?').next().unwrap()
}

fn join(target: &str, query: &str) -> String {
    let sep = if target.contains('?') { '&' } else { '?' };
    format!("{target}{sep}{query}")
}

// ---------------------------------------------------------------------------------------------
// Wire formats.

#[tokio::test]
async fn every_dialect_streams_its_tokens_usage_and_terminator() {
    let server = mock(fast()).await;
    for target in SSE_PATHS {
        let reply = Request::post(target, OPENAI_BODY)
            .send(server.local_addr())
            .await;
        assert_eq!(reply.status, 200, "{target}");
        assert!(reply.complete, "{target}: body ends cleanly");
        let d = decode(path_only(target), reply.text());
        assert_eq!(d.texts.concat(), expected_text(5), "{target}: text");
        assert_eq!(d.texts.len(), 5, "{target}: one event per token");
        assert_eq!(d.usage, Some(5), "{target}: usage");
        assert!(d.terminal, "{target}: terminator");
        assert!(!d.error, "{target}: no error");
    }
    let raw = Request::get("/raw").send(server.local_addr()).await;
    assert_eq!(raw.text(), expected_text(5));
    assert_eq!(raw.chunk_sizes.len(), 5, "one chunk per token");
}

#[tokio::test]
async fn zero_tokens_still_end_cleanly() {
    let server = mock(fast()).await;
    for target in SSE_PATHS {
        let r = Request::post(join(target, "tokens=0"), OPENAI_BODY)
            .send(server.local_addr())
            .await;
        let d = decode(path_only(target), r.text());
        assert!(d.texts.is_empty(), "{target}: {:?}", d.texts);
        assert!(d.terminal, "{target}");
        assert_eq!(d.usage, Some(0), "{target}");
    }
    let r = Request::get("/raw?tokens=0")
        .send(server.local_addr())
        .await;
    assert!(r.complete && r.body.is_empty());
}

#[tokio::test]
async fn trickle_keeps_every_dialect_intact() {
    let server = mock(MockOptions {
        tokens: 2,
        ttft: Duration::ZERO,
        ..fast()
    })
    .await;
    let r = Request::post("/v1/messages?fault=trickle", "{}")
        .send(server.local_addr())
        .await;
    assert!(r.complete);
    assert!(r.chunk_sizes.iter().all(|s| *s == 1));
    let d = decode("/v1/messages", r.text());
    assert_eq!((d.texts.len(), d.usage, d.terminal), (2, Some(2), true));
}

#[tokio::test]
async fn usage_can_be_switched_off_per_request_and_server_wide() {
    let server = mock(fast()).await;
    for target in SSE_PATHS {
        let reply = Request::post(join(target, "usage=false"), OPENAI_BODY)
            .send(server.local_addr())
            .await;
        let d = decode(path_only(target), reply.text());
        assert_eq!(d.usage, None, "{target}: no usage");
        assert_eq!(d.texts.len(), 5, "{target}");
        assert!(d.terminal, "{target}");
    }
    let server = mock(MockOptions {
        usage: false,
        ..fast()
    })
    .await;
    let reply = Request::post("/v1/messages", "{}")
        .send(server.local_addr())
        .await;
    assert_eq!(decode("/v1/messages", reply.text()).usage, None);
    let reply = Request::post("/v1/messages", "{}")
        .header("X-Mock-Usage", "true")
        .send(server.local_addr())
        .await;
    assert_eq!(decode("/v1/messages", reply.text()).usage, Some(5));
}

#[tokio::test]
async fn openai_chat_matches_the_recorded_shape() {
    let server = mock(fast()).await;
    let reply = Request::post("/v1/chat/completions", OPENAI_BODY)
        .send(server.local_addr())
        .await;
    assert_eq!(
        reply.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let d = decode("/v1/chat/completions", reply.text());
    let events: Vec<&Value> = d.events.iter().map(|(_, v)| v).collect();
    // Role-only first chunk with content "" (not a token).
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(events[0]["choices"][0]["delta"]["content"], "");
    assert_eq!(events[0]["model"], "gpt-4o-mini");
    // Finish chunk, then the usage chunk with empty choices, then [DONE].
    let finish = events[events.len() - 2];
    assert_eq!(finish["choices"][0]["delta"], serde_json::json!({}));
    assert!(finish["choices"][0]["finish_reason"].is_string());
    let usage = events[events.len() - 1];
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    assert!(d.done_marker);
    assert!(reply.text().ends_with("data: [DONE]\n\n"));

    // Without stream_options.include_usage there is no usage chunk at all.
    let reply = Request::post("/v1/chat/completions", r#"{"model":"m","stream":true}"#)
        .send(server.local_addr())
        .await;
    let d = decode("/v1/chat/completions", reply.text());
    assert_eq!(d.usage, None);
    assert!(
        d.events
            .iter()
            .all(|(_, v)| v["choices"] != serde_json::json!([]))
    );
    assert!(d.done_marker);
}

#[tokio::test]
async fn anthropic_gemini_and_ollama_framing_details() {
    let server = mock(fast()).await;
    let a = Request::post("/v1/messages", "{}")
        .send(server.local_addr())
        .await;
    let names: Vec<String> = sse_events(a.text())
        .into_iter()
        .filter_map(|(n, _)| n)
        .collect();
    assert_eq!(
        &names[..3],
        ["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(a.text().contains("data: {\"type\": \"ping\"}\n"));

    let g = Request::post(SSE_PATHS[4], "{}")
        .send(server.local_addr())
        .await;
    assert_eq!(g.header("content-type"), Some("text/event-stream"));
    assert!(g.text().ends_with("\r\n\r\n"));
    assert_eq!(
        g.text().matches("\r\n\r\n").count(),
        5,
        "one event per token"
    );
    assert_eq!(
        g.text().matches("candidatesTokenCount").count(),
        1,
        "last chunk only"
    );
    assert!(g.text().contains("\"modelVersion\": \"gemini-2.0-flash\""));

    let o = Request::post("/api/chat", "{}")
        .send(server.local_addr())
        .await;
    assert_eq!(o.header("content-type"), Some("application/x-ndjson"));
    let last: Value = serde_json::from_str(o.text().lines().last().unwrap()).unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["eval_count"], 5);
}

#[tokio::test]
async fn unknown_paths_speak_the_default_protocol() {
    let server = mock(MockOptions {
        protocol: Protocol::Anthropic,
        ..fast()
    })
    .await;
    let reply = Request::post("/", "{}").send(server.local_addr()).await;
    let d = decode("/v1/messages", reply.text());
    assert_eq!(d.texts.len(), 5);
    assert!(d.terminal);
    assert_eq!(server.truths()[0].protocol, Protocol::Anthropic);
}

// ---------------------------------------------------------------------------------------------
// Overrides.

#[tokio::test]
async fn query_overrides_header_overrides_server() {
    let server = mock(fast()).await;
    let addr = server.local_addr();
    let count = |r: &Reply| decode("/v1/chat/completions", r.text()).texts.len();

    let r = Request::post("/v1/chat/completions", "{}").send(addr).await;
    assert_eq!(count(&r), 5);
    let r = Request::post("/v1/chat/completions", "{}")
        .header("X-Mock-Tokens", "4")
        .send(addr)
        .await;
    assert_eq!(count(&r), 4);
    let r = Request::post("/v1/chat/completions?tokens=3", "{}")
        .header("X-Mock-Tokens", "4")
        .send(addr)
        .await;
    assert_eq!(count(&r), 3);

    let r = Request::post("/v1/chat/completions?ttft=120ms&itl=0ms&tokens=2", "{}")
        .header("X-Request-Id", "slow")
        .send(addr)
        .await;
    assert!(r.duration >= Duration::from_millis(120));
    let t = server.truth("slow").unwrap();
    assert_eq!(t.scheduled_ttft, Duration::from_millis(120));
    assert!(t.first_token_after.unwrap() >= Duration::from_millis(120));

    let r = Request::post("/v1/chat/completions", "{}")
        .header("X-Mock-TTFT", "1.5x")
        .send(addr)
        .await;
    assert_eq!(r.status, 400);
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-mock-ttft: invalid duration \"1.5x\""),
        "{body}"
    );
    assert_eq!(server.stats().in_flight, 0);
}

#[tokio::test]
async fn jitter_spreads_ttft_within_bounds() {
    let server = mock(MockOptions {
        ttft: Duration::from_millis(40),
        tokens: 1,
        ..fast()
    })
    .await;
    for i in 0..10 {
        Request::post("/raw?jitter=0.5", "")
            .header("X-Request-Id", format!("j{i}"))
            .send(server.local_addr())
            .await;
    }
    let ttfts: Vec<Duration> = server.truths().iter().map(|t| t.scheduled_ttft).collect();
    assert!(
        ttfts.iter().all(|d| (20..=60).contains(&d.as_millis())),
        "{ttfts:?}"
    );
    assert!(
        ttfts.iter().any(|d| *d != ttfts[0]),
        "jitter varies: {ttfts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Response identity, token details and provider headers (DESIGN §11).

/// The value at `pointer` in the first event that has one.
fn first_at<'a>(d: &'a Decoded, pointer: &str) -> Option<&'a Value> {
    d.events.iter().find_map(|(_, v)| v.pointer(pointer))
}

#[tokio::test]
async fn usage_details_use_each_protocols_wire_format() {
    let server = mock(fast()).await;
    // OPENAI_BODY is 121 bytes: the mock reports 121 / 4 = 30 prompt tokens.
    let p = OPENAI_BODY.len() as u64 / 4;
    assert_eq!(p, 30);
    let q = "cached_tokens=12&reasoning_tokens=4";
    let addr = server.local_addr();
    let get = |target: &str| {
        let target = join(target, q);
        async move {
            let r = Request::post(&target, OPENAI_BODY).send(addr).await;
            assert_eq!(r.status, 200, "{target}");
            decode(path_only(&target), r.text())
        }
    };
    let n = |d: &Decoded, pointer: &str| first_at(d, pointer).and_then(Value::as_u64);

    let d = get("/v1/chat/completions").await;
    assert_eq!(n(&d, "/usage/prompt_tokens"), Some(p));
    assert_eq!(
        n(&d, "/usage/prompt_tokens_details/cached_tokens"),
        Some(12)
    );
    assert_eq!(
        n(&d, "/usage/completion_tokens_details/reasoning_tokens"),
        Some(4)
    );
    // OpenAI counts reasoning in the completion tokens; none of it is streamed.
    assert_eq!((d.usage, d.texts.len()), (Some(9), 5));

    let d = get("/v1/responses").await;
    let usage = "/response/usage";
    assert_eq!(n(&d, &format!("{usage}/input_tokens")), Some(p));
    assert_eq!(
        n(&d, &format!("{usage}/input_tokens_details/cached_tokens")),
        Some(12)
    );
    assert_eq!(
        n(
            &d,
            &format!("{usage}/output_tokens_details/reasoning_tokens")
        ),
        Some(4)
    );
    assert_eq!(d.usage, Some(9));

    // Anthropic: input_tokens excludes the cache reads; thinking is in the output count.
    let d = get("/v1/messages").await;
    assert_eq!(n(&d, "/message/usage/input_tokens"), Some(p - 12));
    assert_eq!(n(&d, "/message/usage/cache_read_input_tokens"), Some(12));
    assert_eq!(n(&d, "/message/usage/cache_creation_input_tokens"), Some(0));
    assert_eq!(d.usage, Some(9));

    // Gemini: thoughts apart from the candidates.
    let d = get(SSE_PATHS[4]).await;
    let last = &d.events.last().unwrap().1["usageMetadata"];
    assert_eq!(last["promptTokenCount"], p);
    assert_eq!(last["cachedContentTokenCount"], 12);
    assert_eq!(last["thoughtsTokenCount"], 4);
    assert_eq!(last["candidatesTokenCount"], 5);
    assert_eq!(last["totalTokenCount"], p + 5 + 4);

    for (path, pointer) in [
        ("/api/chat", "/prompt_eval_count"),
        ("/api/generate", "/prompt_eval_count"),
        ("/v1/chat-messages", "/metadata/usage/prompt_tokens"),
        ("/generate_stream", "/details/input_length"),
        ("/completion", "/tokens_evaluated"),
    ] {
        let d = get(path).await;
        assert_eq!(n(&d, pointer), Some(p), "{path}");
        assert_eq!(d.usage, Some(5), "{path}: reasoning is not counted here");
    }
    let d = get("/completion").await;
    assert_eq!(n(&d, "/timings/cache_n"), Some(12));

    // The cached count never exceeds the prompt.
    let r = Request::post("/v1/messages?cached_tokens=1000", OPENAI_BODY)
        .send(server.local_addr())
        .await;
    let d = decode("/v1/messages", r.text());
    assert_eq!(n(&d, "/message/usage/input_tokens"), Some(0));
    assert_eq!(n(&d, "/message/usage/cache_read_input_tokens"), Some(p));
}

#[tokio::test]
async fn model_and_fingerprint_can_be_set_per_request_and_switch_mid_run() {
    let server = mock(fast()).await;
    let addr = server.local_addr();
    let s = |d: &Decoded, pointer: &str| {
        first_at(d, pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    // Defaults: the request's model, fp_mock.
    let r = Request::post("/v1/chat/completions", OPENAI_BODY)
        .send(addr)
        .await;
    let d = decode("/v1/chat/completions", r.text());
    assert_eq!(s(&d, "/model").as_deref(), Some("gpt-4o-mini"));
    assert_eq!(s(&d, "/system_fingerprint").as_deref(), Some("fp_mock"));
    assert!(
        d.events
            .iter()
            .all(|(_, v)| v["model"] == "gpt-4o-mini" && v["system_fingerprint"] == "fp_mock"),
        "every chunk names them"
    );
    // Query over header over the request.
    let r = Request::post(
        "/v1/chat/completions?model=gpt-4o-2024-11-20&fingerprint=fp_q",
        OPENAI_BODY,
    )
    .header("X-Mock-Model", "from-header")
    .send(addr)
    .await;
    let d = decode("/v1/chat/completions", r.text());
    assert_eq!(s(&d, "/model").as_deref(), Some("gpt-4o-2024-11-20"));
    assert_eq!(s(&d, "/system_fingerprint").as_deref(), Some("fp_q"));
    for (path, pointer) in [
        ("/v1/responses", "/response/model"),
        ("/v1/messages", "/message/model"),
        (SSE_PATHS[4], "/modelVersion"),
        ("/api/chat", "/model"),
        ("/api/generate", "/model"),
        ("/completion", "/model"),
    ] {
        let r = Request::post(join(path, "model=m-x"), "{}")
            .send(addr)
            .await;
        let d = decode(path_only(path), r.text());
        assert_eq!(s(&d, pointer).as_deref(), Some("m-x"), "{path}");
    }

    // A swap after the first N requests this mock served (all routes count).
    let server = mock(MockOptions {
        model_switch_after: Some(2),
        ..fast()
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = Request::post("/v1/chat/completions", OPENAI_BODY)
            .send(server.local_addr())
            .await;
        let d = decode("/v1/chat/completions", r.text());
        seen.push((
            s(&d, "/model").unwrap(),
            s(&d, "/system_fingerprint").unwrap(),
        ));
    }
    let pair = |m: &str, f: &str| (m.to_owned(), f.to_owned());
    assert_eq!(
        seen,
        [
            pair("gpt-4o-mini", "fp_mock"),
            pair("gpt-4o-mini", "fp_mock"),
            pair("gpt-4o-mini-next", "fp_mock_next"),
            pair("gpt-4o-mini-next", "fp_mock_next"),
        ]
    );
    // Per request too, and a bad value is a 400 that names it.
    let r = Request::post("/v1/messages?model_switch_after=0", "{}")
        .send(server.local_addr())
        .await;
    let d = decode("/v1/messages", r.text());
    assert_eq!(s(&d, "/message/model").as_deref(), Some("mock-model-next"));
    for (query, message) in [
        (
            "model_switch_after=soon",
            "query parameter model_switch_after: invalid request count \"soon\"",
        ),
        ("model=", "query parameter model: invalid model \"\""),
        (
            "cached_tokens=-1",
            "query parameter cached_tokens: invalid token count \"-1\"",
        ),
        (
            "provider_headers=github",
            "query parameter provider_headers: unknown provider header family \"github\"",
        ),
    ] {
        let r = Request::post(join("/v1/chat/completions", query), "{}")
            .send(server.local_addr())
            .await;
        assert_eq!(r.status, 400, "{query}");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let text = body["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{query}: {text}");
    }
}

#[tokio::test]
async fn provider_header_families_are_sent_on_demand() {
    let server = mock(fast()).await;
    let addr = server.local_addr();
    let send = |query: &str| {
        let target = format!("/v1/chat/completions?{query}");
        async move { Request::post(target, OPENAI_BODY).send(addr).await }
    };
    let plain = send("").await;
    for name in [
        "x-ratelimit-limit-requests",
        "ratelimit",
        "request-id",
        "retry-after",
    ] {
        assert_eq!(plain.header(name), None, "{name} only on demand");
    }

    let r = send("provider_headers=openai").await;
    assert_eq!(r.status, 200);
    for (name, value) in OPENAI {
        assert_eq!(r.header(name), Some(value), "{name}");
    }
    assert_eq!(r.header("x-ratelimit-reset-tokens"), Some("6m0s"));
    assert!(r.complete, "the stream is unaffected");

    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let r = send("provider_headers=anthropic").await;
    for (resource, limit, remaining) in ANTHROPIC {
        let h = |part: &str| r.header(&format!("anthropic-ratelimit-{resource}-{part}"));
        assert_eq!(h("limit"), Some(limit.to_string().as_str()), "{resource}");
        assert_eq!(h("remaining"), Some(remaining.to_string().as_str()));
        let reset = chrono::DateTime::parse_from_rfc3339(h("reset").unwrap())
            .unwrap_or_else(|e| panic!("{resource} reset is RFC 3339: {e}"));
        assert!(reset > before && reset < before + chrono::Duration::seconds(60));
    }

    let r = send("provider_headers=ietf").await;
    assert_eq!(r.header("ratelimit-policy"), Some(IETF_POLICY));
    assert_eq!(r.header("ratelimit"), Some(IETF_RATELIMIT));
    assert_eq!(
        IETF_RATELIMIT, "\"burst\";r=99;t=30",
        "structured-field form"
    );

    let r = send("provider_headers=request-id").await;
    let id = r.header("x-request-id").unwrap().to_owned();
    assert!(id.starts_with("req_mock"), "{id}");
    assert_eq!(r.header("request-id"), Some(id.as_str()));
    let ray = r.header("cf-ray").unwrap();
    assert!(ray.len() == 20 && ray.ends_with("-MCK"), "{ray}");
    let again = send("provider_headers=request-id").await;
    assert_ne!(
        again.header("x-request-id"),
        Some(id.as_str()),
        "unique per request"
    );

    // retry-after goes with 429 and 503 only, as seconds or an HTTP date.
    let r = send("provider_headers=retry-after").await;
    assert_eq!((r.status, r.header("retry-after")), (200, None));
    let r = send("provider_headers=retry-after&fault=429").await;
    assert_eq!(
        r.header("retry-after"),
        Some(RETRY_AFTER_SECS.to_string().as_str())
    );
    let r = send("provider_headers=retry-after-date,openai&fault=503").await;
    assert_eq!(r.status, 503);
    let date = r.header("retry-after").unwrap();
    let at = chrono::DateTime::parse_from_rfc2822(date)
        .unwrap_or_else(|e| panic!("{date:?} is an HTTP date: {e}"));
    assert!(date.ends_with(" GMT"));
    assert!(at > before && at < before + chrono::Duration::seconds(60));
    assert_eq!(
        r.header("x-ratelimit-limit-requests"),
        Some("500"),
        "error answers too"
    );

    // Several at once, from a header or the server's options.
    let r = Request::post("/v1/messages", "{}")
        .header("X-Mock-Provider-Headers", "anthropic,request-id")
        .send(addr)
        .await;
    assert!(r.header("anthropic-ratelimit-tokens-limit").is_some());
    assert!(r.header("request-id").is_some());
    let wide = mock(MockOptions {
        provider_headers: vec![ProviderHeaders {
            family: HeaderFamily::Ietf,
            malformed: false,
        }],
        ..fast()
    })
    .await;
    let r = Request::post("/v1/chat/completions", "{}")
        .send(wide.local_addr())
        .await;
    assert_eq!(r.header("ratelimit"), Some(IETF_RATELIMIT));
    let r = Request::post("/v1/chat/completions?provider_headers=none", "{}")
        .send(wide.local_addr())
        .await;
    assert_eq!(r.header("ratelimit"), None);
}

#[tokio::test]
async fn malformed_provider_headers_are_sent_and_the_stream_is_unaffected() {
    let server = mock(fast()).await;
    let all = "openai-malformed,anthropic-malformed,ietf-malformed,retry-after-malformed,request-id-malformed";
    let r = Request::post(
        format!("/v1/chat/completions?provider_headers={all}"),
        OPENAI_BODY,
    )
    .send(server.local_addr())
    .await;
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(decode("/v1/chat/completions", r.text()).texts.len(), 5);
    assert_eq!(r.header("x-ratelimit-limit-requests"), Some("lots"));
    assert_eq!(r.header("x-ratelimit-reset-requests"), Some("6x"));
    assert_eq!(r.header("x-ratelimit-limit-tokens"), Some(""));
    assert_eq!(r.header("anthropic-ratelimit-requests-limit"), Some("many"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(r.header("anthropic-ratelimit-tokens-reset").unwrap())
            .is_err()
    );
    assert_eq!(r.header("ratelimit"), Some("\"burst;r=;t"));
    assert_eq!(r.header("ratelimit-policy"), Some("burst;q=-1;w=x"));
    assert_eq!(
        r.header("retry-after"),
        None,
        "a 200 carries no retry-after"
    );
    assert_eq!(r.header("x-request-id"), Some(""));
    assert_eq!(r.header("request-id").map(str::len), Some(4096));
    assert_eq!(
        r.header("cf-ray"),
        Some("\u{fffd}\u{fffd}-MCK"),
        "not UTF-8 on the wire"
    );

    for (family, fault, want) in [
        ("retry-after-malformed", "429", "-3"),
        (
            "retry-after-date-malformed",
            "503",
            "Tuesday, half past nine",
        ),
    ] {
        let r = Request::post(
            format!("/v1/chat/completions?provider_headers={family}&fault={fault}"),
            "{}",
        )
        .send(server.local_addr())
        .await;
        assert_eq!(r.header("retry-after"), Some(want), "{family}");
    }
}

// ---------------------------------------------------------------------------------------------
// Faults.

fn faulted(fault: &str) -> String {
    format!("/v1/chat/completions?fault={fault}")
}

#[tokio::test]
async fn refuse_closes_without_a_response() {
    let server = mock(fast()).await;
    let r = Request::post(faulted("refuse"), "{}")
        .send(server.local_addr())
        .await;
    assert_eq!(r.status, 0);
    assert!(r.broken && r.time_to_headers.is_none());
    let t = &server.truths()[0];
    assert_eq!((t.fault, t.end), (Some(Fault::Refuse), End::Finished));
}

#[tokio::test]
async fn status_faults_answer_with_json_errors() {
    let server = mock(fast()).await;
    let addr = server.local_addr();
    let r = Request::post(faulted("429"), "{}").send(addr).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    for code in [500, 503] {
        let r = Request::post(faulted(&code.to_string()), "{}")
            .send(addr)
            .await;
        assert_eq!(r.status, code);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["error"]["message"].is_string());
    }
    let r = Request::post("/v1/chat/completions", "{}")
        .header("X-Mock-Fault", "503")
        .send(addr)
        .await;
    assert_eq!(r.status, 503);
    let r = Request::post("/v1/messages?fault=429", "{}")
        .send(addr)
        .await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(server.stats().in_flight, 0);
}

#[tokio::test]
async fn delay_headers_holds_the_head_until_the_first_token() {
    let server = mock(fast()).await;
    let r = Request::post(faulted("delay-headers&ttft=150ms"), OPENAI_BODY)
        .send(server.local_addr())
        .await;
    assert!(r.time_to_headers.unwrap() >= Duration::from_millis(150));
    assert!(r.complete);
    assert_eq!(decode("/v1/chat/completions", r.text()).texts.len(), 5);
}

#[tokio::test]
async fn hang_sends_headers_then_nothing() {
    let server = mock(MockOptions {
        ttft: Duration::ZERO,
        itl: Duration::ZERO,
        ..fast()
    })
    .await;
    let r = Request::post(faulted("hang"), "{}")
        .idle(Duration::from_millis(300))
        .send(server.local_addr())
        .await;
    assert_eq!(r.status, 200);
    assert!(r.idle_timeout && !r.complete);
    assert!(r.body.is_empty(), "nothing after the head: {:?}", r.text());
    // The client hung up (its socket dropped above): the stream is counted out.
    server.idle().await;
    let t = &server.truths()[0];
    assert_eq!((t.tokens_sent, t.end), (0, End::Dropped));
    assert!(t.first_token_at.is_none());
}

#[tokio::test]
async fn stall_sends_half_the_tokens_then_nothing() {
    let server = mock(MockOptions {
        ttft: Duration::ZERO,
        itl: Duration::ZERO,
        tokens: 6,
        ..fast()
    })
    .await;
    let r = Request::post(faulted("stall"), OPENAI_BODY)
        .idle(Duration::from_millis(300))
        .send(server.local_addr())
        .await;
    assert!(r.idle_timeout && !r.complete);
    let d = decode("/v1/chat/completions", r.text());
    assert_eq!(d.texts.len(), 3);
    assert!(!d.terminal);
    server.idle().await;
    assert_eq!(server.truths()[0].tokens_sent, 3);
}

#[tokio::test]
async fn reset_breaks_the_body() {
    let server = mock(MockOptions {
        tokens: 6,
        ..fast()
    })
    .await;
    let r = Request::post(faulted("reset"), OPENAI_BODY)
        .send(server.local_addr())
        .await;
    assert_eq!(r.status, 200);
    assert!(r.broken && !r.complete, "{r:?}");
    assert_eq!(r.read_error, Some(std::io::ErrorKind::ConnectionReset));
    let d = decode("/v1/chat/completions", r.text());
    assert_eq!(d.texts.len(), 3);
    assert!(!d.terminal);
    let t = &server.truths()[0];
    assert_eq!((t.tokens_sent, t.end), (3, End::Finished));
    assert_eq!(server.stats().in_flight, 0);
}

#[tokio::test]
async fn error_event_uses_each_protocols_error_format() {
    let server = mock(MockOptions {
        tokens: 4,
        ..fast()
    })
    .await;
    for target in SSE_PATHS {
        let r = Request::post(join(target, "fault=error-event"), OPENAI_BODY)
            .send(server.local_addr())
            .await;
        assert_eq!(r.status, 200, "{target}");
        assert!(r.complete, "{target}: HTTP body ends cleanly");
        let d = decode(path_only(target), r.text());
        assert!(d.error, "{target}: error event");
        assert!(!d.terminal, "{target}: no normal terminator");
        assert_eq!(d.texts.len(), 2, "{target}: half the tokens first");
    }
}

#[tokio::test]
async fn malformed_inserts_one_invalid_json_event() {
    let server = mock(fast()).await;
    let r = Request::post(faulted("malformed"), OPENAI_BODY)
        .send(server.local_addr())
        .await;
    assert!(r.complete);
    let events = sse_events(r.text());
    let invalid: Vec<&String> = events
        .iter()
        .map(|(_, d)| d)
        .filter(|d| *d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
        .collect();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    // All real tokens still arrive.
    assert_eq!(server.truths()[0].tokens_sent, 5);
}

#[tokio::test]
async fn invalid_utf8_puts_bad_bytes_in_the_stream() {
    let server = mock(fast()).await;
    let r = Request::post(faulted("invalid-utf8"), OPENAI_BODY)
        .send(server.local_addr())
        .await;
    assert!(r.complete);
    assert!(std::str::from_utf8(&r.body).is_err());
    assert!(r.body.ends_with(b"data: [DONE]\n\n"));
}

#[tokio::test]
async fn endless_never_stops() {
    let server = mock(MockOptions {
        itl: Duration::ZERO,
        tokens: 2,
        ..fast()
    })
    .await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let head = "GET /raw?fault=endless HTTP/1.1\r\nhost: mock\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    // Far more than `tokens` worth of text arrives, and the stream is still open.
    while got.len() < 100_000 {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "stream ended");
        got.extend_from_slice(&buf[..n]);
    }
    drop(stream);
    server.idle().await;
    let t = &server.truths()[0];
    assert!(t.tokens_sent > 1000 && t.tokens_planned.is_none());
}

#[tokio::test]
async fn oversized_sends_one_huge_line() {
    let server = mock(fast()).await;
    let r = Request::post(faulted("oversized"), OPENAI_BODY)
        .send(server.local_addr())
        .await;
    assert!(r.complete);
    let longest = r
        .body
        .split(|b| *b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap();
    assert!(longest >= 20 << 20, "{longest}");
}

#[tokio::test]
async fn trickle_writes_one_byte_per_chunk() {
    let server = mock(MockOptions {
        tokens: 3,
        ..fast()
    })
    .await;
    let r = Request::get("/raw?fault=trickle")
        .send(server.local_addr())
        .await;
    assert!(r.complete);
    assert_eq!(r.text(), expected_text(3));
    assert!(r.chunk_sizes.iter().all(|s| *s == 1), "{:?}", r.chunk_sizes);
}

#[tokio::test]
async fn server_wide_faults_apply_by_probability_and_can_be_opted_out() {
    let server = mock(MockOptions {
        faults: vec!["503".parse().unwrap(), "stall:0".parse().unwrap()],
        ..fast()
    })
    .await;
    let addr = server.local_addr();
    assert_eq!(Request::post("/raw", "").send(addr).await.status, 503);
    let r = Request::post("/raw?fault=none", "").send(addr).await;
    assert_eq!((r.status, r.text()), (200, expected_text(5).as_str()));
    let never = mock(MockOptions {
        faults: vec![FaultSpec::new(Fault::Refuse, 0.0).unwrap()],
        ..fast()
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            Request::post("/raw", "")
                .send(never.local_addr())
                .await
                .status,
            200
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Ground truth and stats.

#[tokio::test]
async fn truth_records_schedule_lateness_body_and_headers() {
    let server = mock(MockOptions {
        ttft: Duration::from_millis(50),
        ..fast()
    })
    .await;
    let r = Request::post("/v1/chat/completions", OPENAI_BODY)
        .header("X-Request-Id", "burst-1")
        .header("Authorization", "Bearer sk-test")
        .send(server.local_addr())
        .await;
    assert!(r.complete);
    assert_eq!(r.header("x-mock-id"), Some("burst-1"));
    let t = server.truth("burst-1").expect("truth by request id");
    assert_eq!(t.protocol, Protocol::OpenAi);
    assert_eq!(t.scheduled_ttft, Duration::from_millis(50));
    let after = t.first_token_after.unwrap();
    assert!(after >= t.scheduled_ttft, "{after:?}");
    assert!(
        t.ttft_lateness.unwrap() < Duration::from_millis(50),
        "{t:?}"
    );
    assert_eq!((t.tokens_sent, t.tokens_planned), (5, Some(5)));
    assert_eq!(t.end, End::Finished);
    assert_eq!(t.in_flight_at_arrival, 1);
    assert_eq!(&t.request_body[..], OPENAI_BODY.as_bytes());
    let auth = t.headers.iter().find(|(k, _)| k == "authorization");
    assert_eq!(auth.map(|(_, v)| v.as_str()), Some("Bearer sk-test"));
    assert!(t.ended_at.unwrap() >= t.first_token_at.unwrap());

    // Without an id header the key is the sequence number.
    Request::post("/raw", "").send(server.local_addr()).await;
    assert!(server.truth("2").is_some());

    // The same over HTTP.
    let r = Request::get("/mock/truth?id=burst-1")
        .send(server.local_addr())
        .await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["id"], "burst-1");
    assert_eq!(v["tokens_sent"], 5);
    assert!(v["ttft_lateness_seconds"].as_f64().unwrap() >= 0.0);
    assert!(v["first_token_after_seconds"].as_f64().unwrap() >= 0.05);
    assert_eq!(v["request_body"], OPENAI_BODY);
    let r = Request::get("/mock/truth").send(server.local_addr()).await;
    let all: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(all.len(), 2);
    let r = Request::get("/mock/truth?id=nope")
        .send(server.local_addr())
        .await;
    assert_eq!(r.status, 404);

    // Reset clears truth and stats, over HTTP too.
    let r = Request::post("/mock/reset", "")
        .send(server.local_addr())
        .await;
    assert_eq!(r.status, 200);
    assert!(server.truths().is_empty());
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test]
async fn truth_store_is_bounded() {
    let server = mock(MockOptions {
        truth_capacity: 3,
        ttft: Duration::ZERO,
        ..fast()
    })
    .await;
    for _ in 0..5 {
        Request::post("/raw", "").send(server.local_addr()).await;
    }
    let seqs: Vec<u64> = server.truths().iter().map(|t| t.seq).collect();
    assert_eq!(seqs, [3, 4, 5]);
}

#[tokio::test]
async fn concurrent_streams_are_all_counted_in_flight() {
    let server = mock(MockOptions {
        ttft: Duration::from_millis(200),
        ..fast()
    })
    .await;
    let addr = server.local_addr();
    let clients: Vec<_> = (0..10)
        .map(|_| tokio::spawn(async move { Request::post("/raw", "").send(addr).await }))
        .collect();
    for c in clients {
        assert!(c.await.unwrap().complete);
    }
    let stats = server.stats();
    assert_eq!(stats.max_in_flight, 10);
    assert_eq!(stats.requests, 10);
    assert_eq!(stats.arrivals.len(), 10);
    assert_eq!(
        stats.in_flight, 0,
        "counted out before the clients saw the end"
    );
    let mut at_arrival: Vec<u64> = stats.arrivals.iter().map(|a| a.in_flight).collect();
    at_arrival.sort();
    assert_eq!(at_arrival, (1..=10).collect::<Vec<_>>());

    let r = Request::get("/mock/stats").send(addr).await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["max_in_flight"], 10);
    assert_eq!(v["arrivals"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn closed_loop_client_never_sees_more_than_its_concurrency() {
    let server = mock(MockOptions {
        ttft: Duration::from_millis(2),
        itl: Duration::ZERO,
        tokens: 3,
        ..fast()
    })
    .await;
    let addr = server.local_addr();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                // Keep-alive: each next request goes out the instant the previous one ends.
                let mut stream = TcpStream::connect(addr).await.unwrap();
                for _ in 0..25 {
                    let r = Request::post("/v1/chat/completions", OPENAI_BODY)
                        .send_on(&mut stream)
                        .await;
                    assert!(r.complete);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let stats = server.stats();
    assert_eq!(stats.requests, 100);
    assert!(stats.max_in_flight <= 4, "{stats:?}");
    assert!(stats.arrivals.iter().all(|a| a.in_flight <= 4));
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test]
async fn shutdown_cuts_off_hung_streams_after_the_grace() {
    let server = mock(MockOptions {
        shutdown_grace: Duration::from_millis(50),
        ..fast()
    })
    .await;
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = "GET /raw?fault=hang HTTP/1.1\r\nhost: mock\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    // The response head arrives: the request is being served (and hangs).
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while find(&got, b"\r\n\r\n").is_none() {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(server.stats().in_flight, 1);
    server.shutdown().await;
    // Cut off: the connection ends without the terminating chunk.
    let rest = stream.read_to_end(&mut got).await;
    assert!(rest.is_err() || !got.ends_with(b"0\r\n\r\n"));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[test]
fn fault_syntax() {
    let s: FaultSpec = "stall:0.1".parse().unwrap();
    assert_eq!((s.fault, s.probability()), (Fault::Stall, 0.1));
    let err = "reset=0.05".parse::<FaultSpec>().unwrap_err().to_string();
    assert!(err.contains("KIND[:PROBABILITY]"), "{err}");
    assert_eq!(token_text(0), "Hello");
}
