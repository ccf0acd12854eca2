//! The burst engine against the in-process mock: timings against the mock's ground truth,
//! constant concurrency, open-loop rate, every fault mapped to its outcome, CSV data.
//! Assertions are relations (TTFT ≥ the mock's schedule, within a few ms of what the mock
//! actually did), never exact timings.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use streamprobe::config::{self, Target};
use streamprobe::mock::MockOptions;
use streamprobe::probe::{
    BurstEvent, BurstOptions, BurstPlan, BurstResult, BurstSink, Client, Outcome, Pacing,
    TokenSource, run_burst,
};

mod common;
use common::{mock, timing};

/// One target from YAML whose `url` is `url`; `extra` adds target fields (indented 4).
fn target(url: &str, extra: &str) -> Target {
    let yaml = format!(
        "targets:\n  - name: t\n    url: \"{url}\"\n    request_id_header: X-Request-Id\n    body: {{model: m, messages: [{{role: user, content: hi}}], stream: true, stream_options: {{include_usage: true}}}}\n{extra}"
    );
    let mut config = config::load_str(&yaml, Path::new("test.yaml")).expect("test config loads");
    config.targets.remove(0)
}

async fn burst(target: Target) -> BurstResult {
    let plan = BurstPlan::for_target(&target);
    burst_with(target, plan).await
}

async fn burst_with(target: Target, plan: BurstPlan) -> BurstResult {
    let client = Client::new().unwrap();
    let options = BurstOptions {
        burst_id: "b".into(),
        keep_text: true,
        limiter: None,
        cancel: None,
        lag: None,
    };
    run_burst(&client, Arc::new(target), &plan, options, ()).await
}

#[tokio::test]
async fn timings_match_the_mock_ground_truth() {
    let server = mock(timing(150, 15, 20)).await;
    let t = target(
        &server.url("/v1/chat/completions"),
        "    concurrency: 4\n    total_requests: 12\n    protocol: openai\n",
    );
    let result = burst(t).await;
    assert_eq!(result.records.len(), 12);
    assert_eq!(result.protocol, config::Protocol::OpenAi);
    for r in &result.records {
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        let ttft = r.ttft.unwrap();
        let truth = server
            .truth(&format!("b-{}", r.index))
            .expect("mock saw the request");
        let truth_ttft = truth.first_token_after.unwrap();
        assert!(
            ttft >= Duration::from_millis(150),
            "ttft {ttft:?} below the mock's schedule"
        );
        assert!(
            ttft >= truth_ttft,
            "measured {ttft:?} < truth {truth_ttft:?}"
        );
        assert!(
            ttft - truth_ttft < Duration::from_millis(25),
            "measured {ttft:?} vs truth {truth_ttft:?}"
        );
        assert!(r.time_to_headers.unwrap() <= ttft);
        assert!(ttft < r.duration);
        assert_eq!(r.output_tokens, 20);
        assert_eq!(r.token_source, TokenSource::Usage);
        assert_eq!(r.token_events, 20);
        assert_eq!(r.itl.len(), 19);
        let mean_itl = r.itl.iter().sum::<Duration>() / r.itl.len() as u32;
        assert!(
            mean_itl >= Duration::from_millis(12) && mean_itl < Duration::from_millis(30),
            "mean ITL {mean_itl:?}"
        );
        let tpot = r.tpot.unwrap();
        assert!(tpot >= Duration::from_millis(12) && tpot < Duration::from_millis(30));
        assert_eq!(r.first_visible_token, r.ttft);
        assert_eq!(
            r.text.as_deref(),
            Some(streamprobe::mock::expected_text(20).as_str())
        );
    }
}

#[tokio::test]
async fn without_usage_tokens_are_counted_from_events() {
    let server = mock(MockOptions {
        usage: false,
        ..timing(20, 2, 7)
    })
    .await;
    let t = target(
        &server.url("/v1/chat/completions"),
        "    concurrency: 2\n    total_requests: 4\n",
    );
    let result = burst(t).await;
    for r in &result.records {
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
        assert_eq!(r.output_tokens, 7);
        assert_eq!(r.token_source, TokenSource::Events);
    }
}

#[tokio::test]
async fn closed_loop_concurrency_is_constant() {
    // Streams of ~100 ms: long enough that the first ten arrivals cannot overlap a stream's end
    // even when a loaded CI machine delays connection set-up by tens of milliseconds.
    let server = mock(MockOptions {
        jitter: 0.5,
        ..timing(80, 4, 5)
    })
    .await;
    let t = target(
        &server.url("/v1/chat/completions"),
        "    concurrency: 10\n    total_requests: 100\n",
    );
    let result = burst(t).await;
    assert!(result.records.iter().all(|r| r.outcome == Outcome::Success));
    let stats = server.stats();
    assert_eq!(stats.requests, 100);
    assert_eq!(stats.max_in_flight, 10, "never more than C in flight");
    // Arrivals ramp 1..10; after that each arrival replaces a stream that just ended, so it
    // finds 10 in flight unless other streams ended in the same instant and their replacements
    // are still on the wire. The mean shows there are no gaps between requests.
    let at_arrival: Vec<u64> = stats.arrivals.iter().map(|a| a.in_flight).collect();
    assert_eq!(&at_arrival[..10], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let steady = &at_arrival[10..];
    let mean = steady.iter().sum::<u64>() as f64 / steady.len() as f64;
    // A loop that waited for stragglers would average about C/2; a closed loop stays near C
    // (8 leaves room for a heavily loaded CI machine).
    assert!(
        mean >= 8.0,
        "concurrency sagged (mean {mean}): {at_arrival:?}"
    );
    assert!(
        steady.iter().all(|&n| n >= 5),
        "concurrency fell far below C: {at_arrival:?}"
    );
}

#[tokio::test]
async fn open_loop_rate_has_the_requested_mean_gap() {
    let server = mock(timing(5, 1, 3)).await;
    let t = target(
        &server.url("/v1/chat/completions"),
        "    concurrency: 50\n    total_requests: 300\n    rate: 100/s\n",
    );
    assert_eq!(
        BurstPlan::for_target(&t).pacing,
        Pacing::Poisson { per_second: 100.0 }
    );
    let result = burst(t).await;
    assert_eq!(result.records.len(), 300);
    let mut starts: Vec<Duration> = result.records.iter().map(|r| r.start_offset).collect();
    starts.sort();
    let span = *starts.last().unwrap() - starts[0];
    let mean_gap = span.as_secs_f64() / (starts.len() - 1) as f64;
    // Mean 10 ms; the standard error over 300 exponential gaps is ~0.6 ms.
    assert!(
        (0.0075..0.0125).contains(&mean_gap),
        "mean inter-arrival {mean_gap}s"
    );
    // Gaps are exponential, not constant: some are far shorter than the mean.
    let short = starts
        .windows(2)
        .filter(|w| (w[1] - w[0]) < Duration::from_millis(3))
        .count();
    assert!(short > 30, "only {short} short gaps: not Poisson");
}

#[tokio::test]
async fn warmup_requests_are_sent_but_not_recorded() {
    let server = mock(timing(5, 1, 3)).await;
    let t = target(
        &server.url("/v1/chat/completions"),
        "    concurrency: 2\n    total_requests: 5\n    warmup_requests: 3\n",
    );
    let result = burst(t).await;
    assert_eq!(result.records.len(), 5);
    assert_eq!(
        result.records.iter().map(|r| r.index).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(server.stats().requests, 8);
}

/// A sink that logs what it saw (`start 3`, `done 3`, `finish`), optionally slowly.
struct Recorder {
    log: Arc<std::sync::Mutex<Vec<String>>>,
    delay: Duration,
}

impl BurstSink for Recorder {
    fn observe(&mut self, event: &BurstEvent) {
        // Blocking on purpose: a consumer that is slow for real, not one that yields.
        std::thread::sleep(self.delay);
        let line = match event {
            BurstEvent::RequestStarted { index } => format!("start {index}"),
            BurstEvent::RequestDone(record) => format!("done {}", record.index),
        };
        self.log.lock().unwrap().push(line);
    }

    fn finish(&mut self) {
        self.log.lock().unwrap().push("finish".into());
    }
}

async fn burst_into(target: Target, sink: Recorder) -> BurstResult {
    let plan = BurstPlan::for_target(&target);
    let options = BurstOptions {
        burst_id: "b".into(),
        keep_text: false,
        limiter: None,
        cancel: None,
        lag: None,
    };
    run_burst(
        &Client::new().unwrap(),
        Arc::new(target),
        &plan,
        options,
        sink,
    )
    .await
}

#[tokio::test]
async fn the_sink_sees_each_recorded_request_start_then_end_and_finishes_last() {
    let server = mock(timing(5, 1, 3)).await;
    let t = target(
        &server.url("/v1/chat/completions"),
        "    concurrency: 2\n    total_requests: 4\n    warmup_requests: 2\n",
    );
    let log = Arc::default();
    let sink = Recorder {
        log: Arc::clone(&log),
        delay: Duration::ZERO,
    };
    let result = burst_into(t, sink).await;
    assert_eq!(result.records.len(), 4);
    // Complete when `run_burst` returns: it waits for the sink.
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 9, "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("finish"));
    for index in 1..=4 {
        let at = |what: &str| log.iter().position(|l| *l == format!("{what} {index}"));
        // Warm-up requests (index 0) are never reported.
        let (start, done) = (at("start").expect("started"), at("done").expect("done"));
        assert!(start < done, "{log:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_does_not_slow_the_engine() {
    let server = mock(timing(5, 1, 3)).await;
    let t = target(
        &server.url("/v1/chat/completions"),
        "    concurrency: 20\n    total_requests: 20\n",
    );
    let delay = Duration::from_millis(20);
    let sink = Recorder {
        log: Arc::default(),
        delay,
    };
    let begin = std::time::Instant::now();
    let result = burst_into(t, sink).await;
    // 40 events at 20 ms each: the sink needs 800 ms; the engine must not wait for it.
    let sink_time = delay * 40;
    assert!(result.records.iter().all(|r| r.outcome == Outcome::Success));
    assert!(
        result.total_time < sink_time / 2,
        "burst took {:?}",
        result.total_time
    );
    assert!(
        begin.elapsed() >= sink_time,
        "returned before the sink finished"
    );
}

#[tokio::test]
async fn every_fault_maps_to_its_outcome_in_bounded_time() {
    let server = mock(timing(30, 5, 10)).await;
    let cases = [
        ("refuse", Outcome::Connect),
        ("delay-headers&ttft=3s", Outcome::TimeoutHeaders),
        ("hang", Outcome::TimeoutFirstToken),
        ("stall", Outcome::TimeoutIdle),
        ("reset", Outcome::Truncated),
        ("429", Outcome::Http429),
        ("500", Outcome::Http5xx),
        ("503", Outcome::Http5xx),
        ("error-event", Outcome::StreamError),
        ("malformed", Outcome::StreamError),
        ("invalid-utf8", Outcome::StreamError),
        ("endless", Outcome::TimeoutTotal),
        ("oversized", Outcome::TooLarge),
        ("trickle", Outcome::Success),
    ];
    let mut handles = Vec::new();
    for (fault, expected) in cases {
        let url = server.url(&format!("/v1/chat/completions?fault={fault}"));
        let t = target(
            &url,
            "    concurrency: 1\n    total_requests: 1\n    timeout: 4s\n    first_token_timeout: 1s\n    idle_timeout: 500ms\n    max_response_bytes: 1MiB\n",
        );
        handles.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result = burst(t).await;
            (fault, expected, result, started.elapsed())
        }));
    }
    // A healthy burst beside the faulty ones is unaffected.
    let healthy = target(
        &server.url("/v1/chat/completions"),
        "    concurrency: 3\n    total_requests: 6\n",
    );
    let healthy = burst(healthy).await;
    assert!(
        healthy
            .records
            .iter()
            .all(|r| r.outcome == Outcome::Success)
    );

    let mut wrong = Vec::new();
    for h in handles {
        let (fault, expected, result, elapsed) = h.await.unwrap();
        let r = &result.records[0];
        if r.outcome != expected {
            wrong.push(format!(
                "{fault}: expected {expected}, got {} ({:?})",
                r.outcome, r.error
            ));
        }
        assert!(elapsed < Duration::from_secs(6), "{fault} took {elapsed:?}");
        if expected != Outcome::Success {
            assert!(r.ttft.is_none(), "{fault}: failed requests give no TTFT");
            assert!(r.error.is_some(), "{fault}: failure has a reason");
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn csv_rows_reach_the_request_bodies() {
    let server = mock(timing(5, 1, 2)).await;
    let dir = tempfile::tempdir().unwrap();
    // GBK-encoded rows, including characters that need JSON escaping.
    let (gbk, _, _) =
        encoding_rs::GBK.encode("content\n你好，世界\n\"\"\"引号\"\" 和 \\ 反斜杠\"\n第三行\n");
    std::fs::write(dir.path().join("prompts.csv"), &gbk).unwrap();
    let yaml = format!(
        r#"{{"url": "{}", "method": "POST", "headers": {{"Content-Type": "application/json", "X-Request-Id": "r"}},
  "body": {{"model": "m", "messages": [{{"role": "user", "content": "{{{{content}}}}"}}], "stream": true}},
  "timeout": 30, "concurrency": 1, "total_requests": 5,
  "data_source": {{"type": "csv", "file": "prompts.csv", "column": "content", "encoding": "gbk"}}}}"#,
        server.url("/v1/chat/completions")
    );
    let path = dir.path().join("old.json");
    std::fs::write(&path, yaml).unwrap();
    let mut config = config::load(&path).expect("old-format config loads");
    let mut t = config.targets.remove(0);
    t.request_id_header = Some("X-Request-Id".into());
    let result = burst(t).await;
    assert!(result.records.iter().all(|r| r.outcome == Outcome::Success));
    let by_id: HashMap<String, String> = server
        .truths()
        .into_iter()
        .map(|t| (t.id, String::from_utf8_lossy(&t.request_body).into_owned()))
        .collect();
    let expected = [
        "你好，世界",
        "\"引号\" 和 \\ 反斜杠",
        "第三行",
        "你好，世界",
        "\"引号\" 和 \\ 反斜杠",
    ];
    for (n, want) in expected.iter().enumerate() {
        let body = &by_id[&format!("b-{}", n + 1)];
        let json: serde_json::Value = serde_json::from_str(body).expect("body is JSON");
        assert_eq!(json["messages"][0]["content"], *want, "request {}", n + 1);
    }
}

/// A raw HTTP/1.1 server on 127.0.0.1 that answers every request with `response`, then keeps
/// the connection open for `linger`.
async fn raw_server(response: String, linger: Duration) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                tokio::time::sleep(linger).await;
            });
        }
    });
    addr
}

/// A server that sends `[DONE]` but keeps the chunked body open: the request ends at the
/// terminal event (a success), not at the idle timeout.
#[tokio::test]
async fn a_body_left_open_after_the_terminal_event_is_a_success() {
    let events = [
        r#"data: {"choices":[{"delta":{"content":"Hi"}}]}"#,
        r#"data: {"choices":[{"delta":{"content":" there"},"finish_reason":"stop"}]}"#,
        "data: [DONE]",
    ];
    let mut response = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    for e in events {
        let chunk = format!("{e}\n\n");
        response.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    // Never the terminating zero-length chunk.
    let addr = raw_server(response, Duration::from_secs(20)).await;
    let t = target(
        &format!("http://{addr}/v1/chat/completions"),
        "    concurrency: 1\n    total_requests: 1\n    idle_timeout: 10s\n",
    );
    let started = std::time::Instant::now();
    let result = burst(t).await;
    let r = &result.records[0];
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(r.token_events, 2);
    assert!(r.duration < Duration::from_millis(500), "{:?}", r.duration);
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Error statuses with and without a body: the status decides the outcome; a JSON body's
/// message is kept as the reason.
#[tokio::test]
async fn error_statuses_with_and_without_bodies() {
    let body = r#"{"error":{"message":"model overloaded","type":"server_error"}}"#;
    let cases = [
        ("404 Not Found", "", Outcome::Http4xx, None),
        (
            "401 Unauthorized",
            body,
            Outcome::Http4xx,
            Some("model overloaded"),
        ),
        ("429 Too Many Requests", "", Outcome::Http429, None),
        (
            "429 Too Many Requests",
            body,
            Outcome::Http429,
            Some("model overloaded"),
        ),
        ("503 Service Unavailable", "", Outcome::Http5xx, None),
        (
            "500 Internal Server Error",
            body,
            Outcome::Http5xx,
            Some("model overloaded"),
        ),
    ];
    for (status, body, outcome, message) in cases {
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let addr = raw_server(response, Duration::ZERO).await;
        let t = target(
            &format!("http://{addr}/v1/chat/completions"),
            "    concurrency: 1\n    total_requests: 1\n",
        );
        let result = burst(t).await;
        let r = &result.records[0];
        assert_eq!(r.outcome, outcome, "{status} {body:?}: {r:?}");
        let code: u16 = status[..3].parse().unwrap();
        assert_eq!(r.status, Some(code));
        let error = r.error.as_deref().unwrap();
        assert!(error.contains(&status[..3]), "{error}");
        if let Some(m) = message {
            assert!(error.contains(m), "{error}");
        }
    }
}

/// HTTP 200 followed by the protocol's own in-band error event is a `stream_error` for every
/// protocol the mock speaks (detected by `auto` from the route), never a successful generation.
#[tokio::test]
async fn an_in_band_error_is_a_stream_error_in_every_protocol() {
    let server = mock(timing(10, 2, 6)).await;
    let routes = [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/responses",
        "/v1/messages",
        "/v1beta/models/m:streamGenerateContent?alt=sse",
        "/api/chat",
        "/api/generate",
        "/v1/chat-messages",
        "/generate_stream",
    ];
    for route in routes {
        let sep = if route.contains('?') { '&' } else { '?' };
        let t = target(
            &server.url(&format!("{route}{sep}fault=error-event")),
            "    concurrency: 1\n    total_requests: 1\n",
        );
        let result = burst(t).await;
        let r = &result.records[0];
        assert_eq!(r.status, Some(200), "{route}");
        assert_eq!(r.outcome, Outcome::StreamError, "{route}: {r:?}");
        assert!(r.ttft.is_none(), "{route}");
        // The same route without the fault succeeds, so the error event made the difference.
        let ok = burst(target(
            &server.url(route),
            "    concurrency: 1\n    total_requests: 1\n",
        ))
        .await;
        assert_eq!(
            ok.records[0].outcome,
            Outcome::Success,
            "{route}: {:?}",
            ok.records[0]
        );
    }
}

/// Issue 10, item 4: `run -u URL` alone, for every API route the mock speaks, POSTs that API's
/// default streaming body (OpenAI Responses included: it used to be a GET without a body) and
/// the stream it gets back is measured as a success.
#[tokio::test]
async fn a_url_alone_posts_its_apis_default_body_and_is_measured() {
    let server = mock(timing(20, 2, 5)).await;
    let paths = [
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
    for path in paths {
        let overrides = config::RunOverrides {
            url: Some(server.url(path)),
            total_requests: Some(1),
            concurrency: Some(1),
            ..config::RunOverrides::default()
        };
        let mut config = config::load_for_run(None, &overrides).unwrap();
        let result = burst(config.targets.remove(0)).await;
        let r = &result.records[0];
        assert_eq!(r.outcome, Outcome::Success, "{path}: {r:?}");
        let truth = server.truths().into_iter().max_by_key(|t| t.seq).unwrap();
        assert_eq!(truth.method, "POST", "{path}");
        let body: serde_json::Value = serde_json::from_slice(&truth.request_body).unwrap();
        assert!(body.is_object(), "{path}: {body}");
    }
}

/// Issue 10, item 6: `-u` pointing a `protocol: openai` file at an Anthropic route reads the
/// stream as Anthropic (it used to fail as "malformed openai event").
#[tokio::test]
async fn u_over_a_files_url_reads_the_new_routes_protocol() {
    let server = mock(timing(20, 2, 5)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        "targets:\n  - name: t\n    url: http://127.0.0.1:9/v1/chat/completions\n    protocol: openai\n    body: {model: m, max_tokens: 16, stream: true, messages: [{role: user, content: hi}]}\n    total_requests: 2\n    concurrency: 1\n",
    )
    .unwrap();
    let overrides = config::RunOverrides {
        url: Some(server.url("/v1/messages")),
        ..config::RunOverrides::default()
    };
    let mut config = config::load_for_run(Some(&file), &overrides).unwrap();
    let result = burst(config.targets.remove(0)).await;
    assert_eq!(result.protocol, config::Protocol::Anthropic);
    for r in &result.records {
        assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    }
}

/// Issue 10, item 8: a server that echoes the key back (in the stream, or in the error that
/// rejects it) never gets it into the record, hence never into a result file or log.
#[tokio::test]
async fn secrets_echoed_by_the_server_are_scrubbed_from_text_and_errors() {
    let secret = "sk-echo-5f4e3d2c1b0a";
    let sse = |text: &str| {
        let events = [
            format!(r#"data: {{"choices":[{{"delta":{{"content":"{text}"}}}}]}}"#),
            r#"data: {"choices":[{"delta":{},"finish_reason":"stop"}]}"#.to_owned(),
            "data: [DONE]".to_owned(),
        ];
        let body: String = events.iter().map(|e| format!("{e}\n\n")).collect();
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let rejected = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {secret}. You can find your API key at ..."}}}}"#
    );
    let responses = [
        sse(&format!("you sent {secret} and {secret}")),
        format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{rejected}",
            rejected.len()
        ),
    ];
    for response in responses {
        let addr = raw_server(response, Duration::ZERO).await;
        let yaml = format!(
            "targets:\n  - name: t\n    url: \"http://{addr}/v1/chat/completions\"\n    headers: {{Authorization: \"Bearer ${{SP_ECHO_KEY}}\"}}\n    total_requests: 1\n    concurrency: 1\n"
        );
        let env = config::Env::vars([("SP_ECHO_KEY", secret)]);
        let mut config = config::load_str_with_env(&yaml, Path::new("echo.yaml"), &env).unwrap();
        let target = config.targets.remove(0);
        let result = burst(target.clone()).await;
        let r = &result.records[0];
        let shown = format!("{:?} {:?}", r.text, r.error);
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let summary = streamprobe::stats::BurstSummary::from_burst(&result);
        let document =
            streamprobe::output::result::ResultDocument::new(&target, &result, &summary, true);
        let json = String::from_utf8(document.to_json()).unwrap();
        assert!(!json.contains(secret), "{json}");
    }
}

/// Issue 10, item 12: a generic stream read without `extract` whose first event looks like a
/// known dialect says which (for the report line and the daemon's log); with `extract`, or
/// when the events are not any dialect's JSON, it says nothing.
#[tokio::test]
async fn a_generic_stream_that_looks_like_a_dialect_says_which() {
    let stream = |events: &[&str]| {
        let body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let openai = stream(&[
        r#"{"choices":[{"delta":{"content":"Hi"}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        "[DONE]",
    ]);
    let llama = stream(&[
        r#"{"content":"","stop":false,"tokens_predicted":0}"#,
        r#"{"content":"Hi","stop":false,"tokens_predicted":1}"#,
        r#"{"content":"","stop":true,"tokens_predicted":1}"#,
    ]);
    let words = stream(&["hello", "world"]);
    let cases = [
        (
            openai.clone(),
            "    protocol: sse\n",
            Some((config::Protocol::OpenAi, false)),
        ),
        (
            llama,
            "    protocol: sse\n",
            Some((config::Protocol::Sse, true)),
        ),
        (words, "    protocol: sse\n", None),
        (
            openai,
            "    protocol: sse\n    extract: {text: /choices/0/delta/content}\n",
            None,
        ),
    ];
    for (response, extra, expected) in cases {
        let addr = raw_server(response, Duration::ZERO).await;
        let t = target(
            &format!("http://{addr}/stream"),
            &format!("    concurrency: 1\n    total_requests: 1\n{extra}"),
        );
        let result = burst(t).await;
        let got = result
            .looks_like
            .as_ref()
            .map(|l| (l.protocol, l.extract.is_some()));
        assert_eq!(got, expected, "{extra}");
        if let Some(looks_like) = &result.looks_like {
            let advice = looks_like.advice(result.protocol);
            assert!(
                advice.starts_with("protocol sse without extract counted every event"),
                "{advice}"
            );
        }
    }
}

#[tokio::test]
async fn every_protocol_records_response_identity_and_token_details() {
    let server = mock(timing(5, 1, 5)).await;
    let q = "cached_tokens=3&reasoning_tokens=4";
    // (path, (model, fingerprint), (cached, reasoning)) as each protocol reports them.
    type Identity<'a> = (Option<&'a str>, Option<&'a str>);
    type Details = (Option<u64>, Option<u64>);
    let cases: [(&str, Identity, Details); 9] = [
        (
            "/v1/chat/completions",
            (Some("m"), Some("fp_mock")),
            (Some(3), Some(4)),
        ),
        (
            "/v1/completions",
            (Some("m"), Some("fp_mock")),
            (None, None),
        ),
        ("/v1/responses", (Some("m"), None), (Some(3), Some(4))),
        ("/v1/messages", (Some("m"), None), (Some(3), None)),
        (
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            (Some("gemini-2.0-flash"), None),
            (Some(3), Some(4)),
        ),
        ("/api/chat", (Some("m"), None), (None, None)),
        ("/v1/chat-messages", (None, None), (None, None)),
        ("/generate_stream", (None, None), (None, None)),
        ("/completion", (Some("m"), None), (Some(3), None)),
    ];
    for (path, (model, fingerprint), (cached, reasoning)) in cases {
        let t = target(
            &server.url(&format!("{path}?{q}")),
            "    total_requests: 1\n",
        );
        let result = burst(t).await;
        let r = &result.records[0];
        assert_eq!(r.outcome, Outcome::Success, "{path}: {r:?}");
        let truth = server.truth(&format!("b-{}", r.index)).unwrap();
        let prompt = truth.request_body.len() as u64 / 4;
        assert_eq!(r.response_model.as_deref(), model, "{path}: model");
        assert_eq!(
            r.system_fingerprint.as_deref(),
            fingerprint,
            "{path}: fingerprint"
        );
        assert_eq!(r.input_tokens, Some(prompt), "{path}: input tokens");
        assert_eq!(r.cached_input_tokens, cached, "{path}: cached input tokens");
        assert_eq!(r.reasoning_tokens, reasoning, "{path}: reasoning tokens");
        assert!(!r.usage_mismatch, "{path}: usage within 2x of the events");
        server.reset();
    }
}

#[tokio::test]
async fn usage_far_from_the_event_count_is_flagged_and_a_model_swap_is_seen() {
    let server = mock(timing(5, 1, 5)).await;
    // 100 hidden reasoning tokens: usage 105 against 5 streamed events.
    let t = target(
        &server.url("/v1/chat/completions?reasoning_tokens=100"),
        "    total_requests: 2\n    concurrency: 1\n",
    );
    let result = burst(t).await;
    for r in &result.records {
        assert_eq!((r.output_tokens, r.token_events), (105, 5));
        assert!(r.usage_mismatch, "{r:?}");
        assert_eq!(r.reasoning_tokens, Some(100));
    }
    let summary = streamprobe::stats::BurstSummary::from_burst(&result);
    assert_eq!(summary.usage_mismatch, 2);
    // Counted from events, there is nothing to disagree with.
    let t = target(
        &server.url("/v1/chat/completions?reasoning_tokens=100&usage=false"),
        "    total_requests: 1\n",
    );
    assert!(!burst(t).await.records[0].usage_mismatch);

    // The mock swaps its model after the first 2 of these 4 sequential requests.
    let server = mock(timing(5, 1, 3)).await;
    let t = target(
        &server.url("/v1/chat/completions?model_switch_after=2"),
        "    total_requests: 4\n    concurrency: 1\n",
    );
    let result = burst(t).await;
    let seen: Vec<(Option<&str>, Option<&str>)> = result
        .records
        .iter()
        .map(|r| (r.response_model.as_deref(), r.system_fingerprint.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("m"), Some("fp_mock")),
            (Some("m"), Some("fp_mock")),
            (Some("m-next"), Some("fp_mock_next")),
            (Some("m-next"), Some("fp_mock_next")),
        ]
    );
    let summary = streamprobe::stats::BurstSummary::from_burst(&result);
    assert_eq!(summary.response_models.len(), 2);
}

/// The one record of a single request to a raw server answering `response` (the whole HTTP
/// response) at `path`; `extra` adds target fields.
async fn one_raw(response: String, path: &str, extra: &str) -> streamprobe::probe::RequestRecord {
    let addr = raw_server(response, Duration::ZERO).await;
    let t = target(
        &format!("http://{addr}{path}"),
        &format!("    concurrency: 1\n    total_requests: 1\n{extra}"),
    );
    burst(t).await.records.remove(0)
}

fn http_response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Error bodies framed like the stream they replace (SSE `data:` lines, NDJSON lines) are read
/// for their message, not reported as a bare status.
#[tokio::test]
async fn error_bodies_sent_as_sse_or_ndjson_keep_their_message() {
    let sse =
        "data: {\"error\":{\"message\":\"CUDA out of memory\",\"type\":\"server_error\"}}\n\n";
    let r = one_raw(
        http_response("500 Internal Server Error", "text/event-stream", sse),
        "/v1/chat/completions",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::Http5xx);
    assert_eq!(r.error.as_deref(), Some("HTTP 500: CUDA out of memory"));

    let ndjson = "{\"error\":\"model \\\"llama9\\\" not found\"}\n";
    let r = one_raw(
        http_response("404 Not Found", "application/x-ndjson", ndjson),
        "/api/chat",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::Http4xx);
    assert_eq!(
        r.error.as_deref(),
        Some("HTTP 404: model \"llama9\" not found")
    );
}

/// A plain JSON answer to a streaming request says so, and whether the request asked to
/// stream; an error object in it is read for its message.
#[tokio::test]
async fn a_non_streaming_json_answer_is_named_as_such() {
    let completion = r#"{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
    let r = one_raw(
        http_response("200 OK", "application/json", completion),
        "/v1/chat/completions",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::StreamError, "{r:?}");
    assert_eq!(
        r.error.as_deref(),
        Some(
            "the server answered with a non-streaming JSON body (Content-Type: application/json) \
             although the request body has \"stream\": true"
        )
    );

    let addr = raw_server(
        http_response("200 OK", "application/json; charset=utf-8", completion),
        Duration::ZERO,
    )
    .await;
    let yaml = format!(
        "targets:\n  - name: t\n    url: \"http://{addr}/v1/chat/completions\"\n    \
         total_requests: 1\n    body: {{model: m, messages: [{{role: user, content: hi}}]}}\n"
    );
    let t = config::load_str(&yaml, Path::new("test.yaml"))
        .unwrap()
        .targets
        .remove(0);
    let r = burst(t).await.records.remove(0);
    assert_eq!(
        r.error.as_deref(),
        Some(
            "the server answered with a non-streaming JSON body (Content-Type: application/json); \
             the request body does not set \"stream\": true"
        )
    );

    let error = r#"{"error": {"message": "streaming is not enabled for this deployment"}}"#;
    let r = one_raw(
        http_response("200 OK", "application/json", error),
        "/v1/chat/completions",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::StreamError);
    assert_eq!(
        r.error.as_deref(),
        Some(
            "the server answered with a JSON error instead of a stream: streaming is not \
             enabled for this deployment"
        )
    );
}

/// A stream of another protocol than the configured one says which protocol it looks like.
#[tokio::test]
async fn a_protocol_mismatch_names_the_protocol_the_stream_looks_like() {
    let openai = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let r = one_raw(
        http_response("200 OK", "text/event-stream", openai),
        "/v1/chat/completions",
        "    protocol: anthropic\n",
    )
    .await;
    assert_ne!(r.outcome, Outcome::Success, "{r:?}");
    let error = r.error.as_deref().unwrap();
    assert!(
        error.ends_with(
            "; the stream looks like openai, not anthropic: set the protocol to openai or auto"
        ),
        "{error}"
    );

    let anthropic = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let r = one_raw(
        http_response("200 OK", "text/event-stream", anthropic),
        "/v1/messages",
        "    protocol: openai\n",
    )
    .await;
    let error = r.error.as_deref().unwrap();
    assert!(
        error.ends_with(
            "the stream looks like anthropic, not openai: set the protocol to anthropic or auto"
        ),
        "{r:?}"
    );
}

/// The client measures its own scheduling lag (issue 13, item 4). The same small burst runs
/// twice on this test's single-threaded runtime: once alone, once beside a task that keeps the
/// thread busy in 20 ms stretches, as a client with too much work per core would. The starved
/// burst must report lag in the tens of ms and warn; the healthy one a small fraction of it
/// (loosely: the test machine may be busy).
#[tokio::test]
async fn a_starved_client_reports_its_own_queueing() {
    let server = mock(timing(100, 10, 10)).await;
    let t = || {
        target(
            &server.url("/v1/chat/completions"),
            "    concurrency: 4\n    total_requests: 8\n    warmup_requests: 4\n    protocol: openai\n",
        )
    };

    let healthy = burst(t()).await;
    let starve = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let hog = tokio::spawn({
        let starve = starve.clone();
        async move {
            while starve.load(std::sync::atomic::Ordering::Relaxed) {
                let busy = std::time::Instant::now() + Duration::from_millis(20);
                while std::time::Instant::now() < busy {
                    std::hint::spin_loop();
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let starved = burst(t()).await;
    starve.store(false, std::sync::atomic::Ordering::Relaxed);
    hog.await.unwrap();

    let client = |b: &BurstResult| streamprobe::stats::BurstSummary::from_burst(b).client;
    for b in [&healthy, &starved] {
        assert!(
            b.records.iter().all(|r| r.outcome == Outcome::Success),
            "{:?}",
            b.records
        );
        assert!(
            !b.client.lags.is_empty() && b.client.cpu.is_some(),
            "{:?}",
            b.client
        );
        // One tick per LAG_TICK at most, over the recorded requests only: the warm-up (as
        // long again) is not in the window.
        let most = b.total_time.as_secs_f64() / streamprobe::probe::LAG_TICK.as_secs_f64() + 2.0;
        assert!(
            b.client.lags.len() as f64 <= most,
            "{} samples in {:?}",
            b.client.lags.len(),
            b.total_time
        );
    }
    let (healthy, starved_client) = (client(&healthy), client(&starved));
    let starved_p99 = starved_client.lag_p99.unwrap();
    assert!(
        starved_p99 >= Duration::from_millis(10),
        "{starved_client:?}"
    );
    assert!(starved_client.lag_max.unwrap() >= starved_p99);
    let healthy_p99 = healthy.lag_p99.unwrap();
    assert!(
        healthy_p99 < starved_p99 / 4,
        "healthy {healthy:?} vs starved {starved_client:?}"
    );

    // The warning names the lag, in the report and in the result file.
    let summary = streamprobe::stats::BurstSummary::from_burst(&starved);
    let warning = streamprobe::output::report::client_warning(&summary).expect("a warning");
    let expected = format!(
        "measurements include up to {:.1} ms of client queueing",
        starved_p99.as_secs_f64() * 1000.0
    );
    assert!(warning.starts_with(&expected), "{warning}");
    assert!(
        warning.ends_with(": lower -p, use more cores, or split the load"),
        "{warning}"
    );
    let doc = streamprobe::output::result::ResultDocument::new(&t(), &starved, &summary, false);
    assert_eq!(
        doc.summary.client.warning.as_deref(),
        Some(warning.as_str())
    );
    assert_eq!(
        doc.summary.client.lag_p99,
        Some((starved_p99.as_secs_f64() * 1e6).round() / 1e6)
    );
}

/// A wave of starts on one core: each request's connect and write must not queue behind the
/// start of every other request of the wave. The client runs on a one-thread runtime (as when
/// pinned to a core), the mock on a runtime of its own that answers at once. Before the
/// launcher let started requests run between starts, the first request's headers came back
/// only after the whole wave had been started (its bytes left after every other connect);
/// now they come back within a few starts of its own.
#[test]
fn a_wave_of_starts_does_not_queue_each_request_behind_the_whole_wave() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt.block_on(mock(timing(20, 1, 2)));
    let t = target(
        &server.url("/v1/chat/completions"),
        "    concurrency: 300\n    total_requests: 300\n    fresh_connections: true\n",
    );
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = client_rt.block_on(burst(t));
    assert!(
        result.records.iter().all(|r| r.outcome == Outcome::Success),
        "{:?}",
        result
            .records
            .iter()
            .find(|r| r.outcome != Outcome::Success)
    );
    let mut by_start: Vec<&streamprobe::probe::RequestRecord> = result.records.iter().collect();
    by_start.sort_by_key(|r| r.start_offset);
    let span = by_start.last().unwrap().start_offset;
    let mut first: Vec<Duration> = by_start[..10]
        .iter()
        .map(|r| r.time_to_headers.unwrap())
        .collect();
    first.sort();
    let median = first[5];
    assert!(
        median < span / 2,
        "the first requests' headers took {median:?} (median of 10), the wave's starts spanned \
         {span:?}: the first requests waited for the wave"
    );
    drop(server_rt);
}
