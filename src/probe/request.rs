//! One request: build it from the target, send it, time every stage, decode the stream,
//! enforce the timeouts and the size cap, and classify the outcome.
//!
//! `t0` on a reused connection is when hyper writes the request (a body wrapper stamps it), so
//! a queue of other sends on a busy core is client wait, not time to headers. The response head
//! and each chunk are dated when hyper hands them to the request (`arrival.rs`), before this
//! task decodes anything; every event decoded from a chunk is attributed to that chunk's
//! arrival. A request watches the burst's cancel flag itself, so that a cancelled request still
//! returns what it measured (outcome `interrupted`).
//! The one retry: a request whose reused keep-alive connection failed before any response byte
//! is sent again on a new connection (the server closed the idle connection as the request went
//! out, which HTTP/1.1 allows), as browsers do. A request with a body answered 307/308 is sent
//! once more with a plain body, which reqwest can clone to follow the redirect. Does not: print,
//! log above debug, or retry anything else.

use std::borrow::Cow;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::config::{Body, CacheBust, Protocol, Target, redact};
use crate::stream::{self, Channel, DecodeError, Decoder, DecoderOptions, Event, LooksLike, Usage};

use super::arrival::{self, Arrival};
use super::connection::{self, ConnectLog, Milestones, Settled, Used};
use super::{
    Connection, MAX_IDENTITY_BYTES, Outcome, RequestRecord, TokenSource, headers, usage_disagrees,
};

/// How long a non-2xx body may take to read for its error message, and how much of it.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// How long the end of the body is awaited after the terminal event.
const DONE_LINGER: Duration = Duration::from_secs(1);
/// How much of a body's start is kept to explain a failure: enough for a first event (which
/// protocol the stream looks like), and for a whole non-streaming JSON answer when the
/// `Content-Type` says `application/json`.
const HEAD_BYTES: usize = 4 * 1024;
const JSON_HEAD_BYTES: usize = 64 * 1024;

/// What the burst engine tells one request about itself.
pub(crate) struct RequestSpec<'a> {
    pub target: &'a Target,
    /// 0-based position among all requests of the burst, warm-up included (selects the CSV row).
    pub sequence: u64,
    /// 1-based position among recorded requests (`request_id`); 0 for warm-up requests.
    pub index: u64,
    pub burst_id: &'a str,
    pub keep_text: bool,
    /// When this request's phase (warm-up or recorded) began, for `start_offset`.
    pub phase_start: Instant,
    /// The burst's cancel flag: once `true`, the request stops and records what it measured.
    pub cancel: Option<watch::Receiver<bool>>,
}

/// A request's record plus what only the engine needs.
pub(crate) struct Measured {
    pub record: RequestRecord,
    /// The protocol the decoder used, once headers arrived.
    pub protocol: Option<Protocol>,
    /// A generic stream's first event looked like a known dialect.
    pub looks_like: Option<LooksLike>,
}

/// Token bookkeeping fed by the decoder's events.
struct Tokens {
    first_any: Option<Instant>,
    first_text: Option<Instant>,
    last: Option<Instant>,
    events: u64,
    itl: Vec<Duration>,
    /// Every count the server reported, the last value of each.
    usage: Usage,
    model: Option<String>,
    fingerprint: Option<String>,
    done: bool,
    /// When the terminal event arrived.
    done_at: Option<Instant>,
    error: Option<String>,
    text: Option<String>,
}

impl Tokens {
    fn new(keep_text: bool) -> Self {
        Tokens {
            first_any: None,
            first_text: None,
            last: None,
            events: 0,
            itl: Vec::new(),
            usage: Usage::default(),
            model: None,
            fingerprint: None,
            done: false,
            done_at: None,
            error: None,
            text: keep_text.then(String::new),
        }
    }

    /// Applies one decoded event that arrived at `at`.
    fn on_event(&mut self, at: Instant, event: Event<'_>) {
        match event {
            Event::Token { channel, text } => {
                if let Some(last) = self.last {
                    self.itl.push(at - last);
                }
                self.first_any.get_or_insert(at);
                if channel == Channel::Text {
                    self.first_text.get_or_insert(at);
                    if let Some(buf) = &mut self.text {
                        buf.push_str(&text);
                    }
                }
                self.last = Some(at);
                self.events += 1;
            }
            Event::Usage(usage) => self.usage.update(usage),
            // Rare (once per stream, or on a change): owning the strings here is off the
            // token path.
            Event::Identity { model, fingerprint } => {
                if let Some(m) = model {
                    self.model = Some(truncate(&m, MAX_IDENTITY_BYTES));
                }
                if let Some(f) = fingerprint {
                    self.fingerprint = Some(truncate(&f, MAX_IDENTITY_BYTES));
                }
            }
            Event::Done { .. } => {
                self.done = true;
                self.done_at.get_or_insert(at);
            }
            Event::Error { message } => {
                if self.error.is_none() {
                    self.error = Some(truncate(&message, 300));
                }
            }
        }
    }

    fn output_tokens(&self) -> (u64, TokenSource) {
        match self.usage.output_tokens {
            Some(n) => (n, TokenSource::Usage),
            None => (self.events, TokenSource::Events),
        }
    }
}

/// Why a request failed: its outcome and a human-readable reason (never a secret).
struct Failure(Outcome, String);

/// Sends one request with `client` and measures it; `fresh` (a client that always opens a new
/// connection) sends the one retry. Never panics on what the server does.
pub(crate) async fn measure(
    client: &reqwest::Client,
    fresh: &reqwest::Client,
    spec: &RequestSpec<'_>,
) -> Measured {
    let (mut http, mut retry, mut body) = (client, Retry::Allowed, SendBody::Stamped);
    let mut retried = false;
    // At most three attempts: each kind of `Again` is asked for once.
    loop {
        match attempt(http, spec, retry, body).await {
            Ok(mut m) => {
                m.record.retried = retried;
                return m;
            }
            Err(Again::NewConnection) => {
                (http, retry, retried) = (fresh, Retry::Spent, true);
            }
            Err(Again::Reusable) => body = SendBody::Reusable,
        }
    }
}

/// Whether a send failure on a reused connection may still be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Allowed,
    Spent,
}

/// How the request body is handed to reqwest: wrapped, to stamp the moment it is written
/// (`t0`), or as plain bytes, which reqwest can clone to follow a 307/308 redirect (it cannot
/// clone a wrapped body, and hands such a redirect back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendBody {
    Stamped,
    Reusable,
}

/// The attempt is not the measurement: send the request again.
enum Again {
    /// It failed on a reused connection before any response byte: on a new connection.
    NewConnection,
    /// It was redirected with 307/308, which reqwest follows only with a reusable body.
    Reusable,
}

/// How the wait for the response head ended.
enum Sent {
    /// With when it came: hyper's hand-over of the response head (see `arrival.rs`).
    Answer(Result<reqwest::Response, reqwest::Error>, Instant),
    TimedOut,
    Cancelled,
}

/// One attempt at the request, timed from its own `t0`.
async fn attempt(
    client: &reqwest::Client,
    spec: &RequestSpec<'_>,
    retry: Retry,
    body: SendBody,
) -> Result<Measured, Again> {
    let target = spec.target;
    let row = target.data.as_ref().map(|d| d.row(spec.sequence));
    let url = target.url.render_to_string(row);
    let written = Arc::new(OnceLock::new());
    let built = build(client, spec, &url, row, body, &written);

    // When the request is handed to the HTTP client: the deadlines count from here, and so
    // does `t0` unless the request waited in the client before its bytes went out (see
    // `send_start`).
    let handed = Instant::now();
    // `expect.contains` needs the text even when the result file does not keep it.
    let mut tokens = Tokens::new(spec.keep_text || target.expect.contains.is_some());
    let mut record = blank_record(spec, handed);
    let request = match built {
        Ok(r) => r,
        Err(message) => {
            record.outcome = Outcome::Connect;
            record.error = Some(message);
            return Ok(Measured {
                record,
                protocol: None,
                looks_like: None,
            });
        }
    };

    let total_deadline = handed + target.timeout;
    let first_token_deadline = handed + target.first_token_timeout.min(target.timeout);
    let mut protocol = None;
    let mut cancel = spec.cancel.clone();
    let mut looks_like = None;
    let mut headers_at = None;

    // Headers: bounded by the first-token deadline (headers come before any token). The send
    // runs in a connection-log scope, so a connect it starts is filed with this request.
    let log = Arc::new(ConnectLog::default());
    let answer = Arrival::default();
    let send = connection::track(log.clone(), client.execute(request));
    let sent = tokio::select! {
        biased;
        (r, at) = arrival::next(&answer, send) => Sent::Answer(r, at),
        _ = sleep_until(first_token_deadline) => Sent::TimedOut,
        () = cancelled(&mut cancel) => Sent::Cancelled,
    };
    let settled: Settled;
    let response = match sent {
        Sent::Answer(Ok(response), at) => {
            let status = response.status();
            if body == SendBody::Stamped
                && target.body.is_some()
                && (status == StatusCode::TEMPORARY_REDIRECT
                    || status == StatusCode::PERMANENT_REDIRECT)
            {
                return Err(Again::Reusable);
            }
            settled = log.settle(connection::response_local_addr(&response));
            Ok((response, at))
        }
        Sent::Answer(Err(e), _) => {
            settled = log.settle(connection::failed_on(&e));
            if retry == Retry::Allowed && settled.connection == Some(Connection::Reused) {
                return Err(Again::NewConnection);
            }
            Err(classify_send_error(&e))
        }
        Sent::TimedOut => {
            // Cut off: a connect of its own still under way makes the connection new.
            settled = log.settle(Used::NotConnected);
            let outcome = if first_token_deadline >= total_deadline {
                Outcome::TimeoutTotal
            } else {
                Outcome::TimeoutHeaders
            };
            Err(Failure(
                outcome,
                "no response headers before the deadline".into(),
            ))
        }
        Sent::Cancelled => {
            settled = log.settle(Used::NotConnected);
            Err(Failure(
                Outcome::Interrupted,
                "cancelled before the stream ended".into(),
            ))
        }
    };
    let t0 = send_start(handed, written.get().copied(), &settled);
    record.client_wait = t0 - handed;

    let work = async {
        let (response, at) = response?;
        headers_at = Some(at);
        record.time_to_headers = Some(at - t0);
        let status = response.status().as_u16();
        record.status = Some(status);
        let provider = headers::read(
            response.headers(),
            &target.capture_headers,
            SystemTime::now(),
        );
        if !provider.malformed.is_empty() {
            tracing::debug!(
                target = %target.name,
                headers = ?provider.malformed,
                "ignored malformed provider response header values"
            );
        }
        record.ratelimit = provider.ratelimit;
        record.provider_request_id = provider.request_id;
        record.captured_headers = provider.captured;
        if !response.status().is_success() {
            let detail = error_body(response).await;
            let reason = match detail {
                Some(msg) => format!("HTTP {status}: {msg}"),
                None => format!("HTTP {status}"),
            };
            return Err(Failure(Outcome::from_status(status), reason));
        }

        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let json_reply = content_type.as_deref().is_some_and(is_plain_json);
        let mut head = Head::new(if json_reply {
            JSON_HEAD_BYTES
        } else {
            HEAD_BYTES
        });
        let mut decoder = Decoder::new(DecoderOptions {
            protocol: target.protocol,
            extract: target.extract.clone(),
            max_event_bytes: target.max_response_bytes.min(usize::MAX as u64) as usize,
            content_type,
            url_path: response.url().path().to_owned(),
        });
        let result = read_body(
            response,
            &mut decoder,
            &mut tokens,
            &mut record,
            &mut head,
            Deadlines {
                total: total_deadline,
                first_token: first_token_deadline,
                idle: target.idle_timeout,
            },
            target.max_response_bytes,
        )
        .await;
        protocol = Some(decoder.protocol());
        looks_like = decoder.looks_like().cloned();
        result
            .and_then(|()| stream_verdict(&decoder, &tokens))
            .map_err(|failure| {
                let seen = Seen {
                    head: &head.bytes,
                    json_reply,
                    configured: target.protocol,
                    decoded: decoder.protocol(),
                    token_or_error: tokens.first_any.is_some() || tokens.error.is_some(),
                };
                seen.explain(failure, || asks_to_stream(target, row))
            })
    };
    let outcome = tokio::select! {
        biased;
        done = work => done,
        () = cancelled(&mut cancel) => Err(Failure(
            Outcome::Interrupted,
            "cancelled before the stream ended".into(),
        )),
    };
    // Cancelled while only the end of the body was awaited: the generation had finished.
    let outcome = match outcome {
        Err(Failure(Outcome::Interrupted, _))
            if tokens.done && tokens.error.is_none() && tokens.first_any.is_some() =>
        {
            Ok(())
        }
        other => other,
    };

    // The stream ends at its terminal event when there is one, even if the connection lingers.
    let end = tokens.done_at.unwrap_or_else(Instant::now);
    record.duration = end - t0;
    record.connection = settled.connection;
    record.phases = connection::phases(&Milestones {
        t0,
        opened: settled.opened,
        headers: headers_at,
        first_token: tokens.first_any,
        end,
    });
    let (n_out, source) = tokens.output_tokens();
    record.output_tokens = n_out;
    record.token_source = source;
    record.token_events = tokens.events;
    record.text = tokens.text.take();
    record.input_tokens = tokens.usage.input_tokens;
    record.cached_input_tokens = tokens.usage.cached_input_tokens;
    record.reasoning_tokens = tokens.usage.reasoning_tokens;
    record.usage_mismatch = source == TokenSource::Usage && usage_disagrees(n_out, tokens.events);
    record.response_model = tokens.model.take();
    record.system_fingerprint = tokens.fingerprint.take();

    let outcome = outcome.and_then(|()| check_expectations(target, n_out, record.text.as_deref()));
    match outcome {
        Ok(()) => {
            record.outcome = Outcome::Success;
            record.ttft = tokens.first_any.map(|t| t - t0);
            record.first_visible_token = tokens.first_text.map(|t| t - t0);
            if let (Some(first), Some(last)) = (tokens.first_any, tokens.last)
                && n_out >= 2
            {
                record.tpot = Some((last - first) / (n_out - 1).min(u32::MAX as u64) as u32);
            }
            record.itl = std::mem::take(&mut tokens.itl);
            // Kept until the burst ends, with every other record: no doubling slack.
            record.itl.shrink_to_fit();
        }
        Err(Failure(Outcome::Interrupted, message)) => {
            // What it measured until the cancel, for the result file. Never a sample: only
            // successful requests feed statistics and metrics.
            record.outcome = Outcome::Interrupted;
            record.error = Some(message);
            record.ttft = tokens.first_any.map(|t| t - t0);
            record.first_visible_token = tokens.first_text.map(|t| t - t0);
            record.itl = std::mem::take(&mut tokens.itl);
        }
        Err(Failure(outcome, message)) => {
            record.outcome = outcome;
            record.error = Some(message);
        }
    }
    if !spec.keep_text {
        record.text = None;
    }
    scrub_secrets(target, &mut record);
    Ok(Measured {
        record,
        protocol,
        looks_like,
    })
}

/// A server may echo a secret back (a request repeated in the output, the key a 401 names):
/// the record leaves the engine with every secret value of the target replaced, so no result
/// file, log line or status page can show it.
fn scrub_secrets(target: &Target, record: &mut RequestRecord) {
    let secrets = target.secret_values();
    if secrets.is_empty() {
        return;
    }
    for field in [&mut record.text, &mut record.error].into_iter().flatten() {
        if let Cow::Owned(clean) = redact::scrub(field, &secrets) {
            *field = clean;
        }
    }
}

/// Whether the stream that was read ended as its protocol says a stream ends.
fn stream_verdict(decoder: &Decoder, tokens: &Tokens) -> Result<(), Failure> {
    if let Some(message) = tokens.error.clone() {
        return Err(Failure(Outcome::StreamError, message));
    }
    if decoder.has_terminator() && !tokens.done {
        return Err(Failure(
            Outcome::Truncated,
            "stream ended before its terminal event".into(),
        ));
    }
    if tokens.first_any.is_none() {
        return Err(Failure(
            Outcome::NoTokens,
            "stream ended without any token".into(),
        ));
    }
    Ok(())
}

/// The start of a body, kept to explain a failure.
struct Head {
    bytes: Vec<u8>,
    limit: usize,
}

impl Head {
    fn new(limit: usize) -> Head {
        Head {
            bytes: Vec::new(),
            limit,
        }
    }

    fn keep(&mut self, chunk: &[u8]) {
        let room = self.limit.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
    }

    /// Keeps nothing more and frees what was kept: once a token arrived the stream was
    /// understood, and the head would only hold memory (4 KiB per stream in flight).
    fn forget(&mut self) {
        if self.limit > 0 {
            self.limit = 0;
            self.bytes = Vec::new();
        }
    }
}

/// What a failed 2xx body showed, to say what went wrong instead of only how the stream ended.
struct Seen<'a> {
    head: &'a [u8],
    /// The `Content-Type` was plain `application/json`, not a stream type.
    json_reply: bool,
    configured: Protocol,
    /// What the decoder used (`auto` resolved).
    decoded: Protocol,
    /// A token or an in-band error arrived: the stream was understood, the failure is real.
    token_or_error: bool,
}

impl Seen<'_> {
    /// Rewrites a `truncated`, `no_tokens` or undecodable-stream failure whose body was not the
    /// stream it should be: a whole JSON document (the server did not stream: a completion or
    /// an error object), or a stream of another protocol than the configured one.
    fn explain(&self, failure: Failure, asks_to_stream: impl FnOnce() -> bool) -> Failure {
        let Failure(outcome, message) = failure;
        let explained = matches!(
            outcome,
            Outcome::Truncated | Outcome::NoTokens | Outcome::StreamError
        );
        if !explained || self.token_or_error {
            return Failure(outcome, message);
        }
        if self.json_reply {
            match stream::json_reply(self.head) {
                Some(stream::JsonReply::Error(error)) => {
                    return Failure(
                        Outcome::StreamError,
                        format!(
                            "the server answered with a JSON error instead of a stream: {error}"
                        ),
                    );
                }
                Some(stream::JsonReply::Document) => {
                    let what = "the server answered with a non-streaming JSON body \
                                (Content-Type: application/json)";
                    let message = if asks_to_stream() {
                        format!("{what} although the request body has \"stream\": true")
                    } else {
                        format!("{what}; the request body does not set \"stream\": true")
                    };
                    return Failure(Outcome::StreamError, message);
                }
                None => {}
            }
        }
        if self.configured != Protocol::Auto
            && let Some(looks) = stream::detect_dialect(self.head)
            && looks != self.decoded
        {
            return Failure(
                outcome,
                format!(
                    "{message}; the stream looks like {looks}, not {}: set the protocol to \
                     {looks} or auto",
                    self.decoded
                ),
            );
        }
        Failure(outcome, message)
    }
}

/// `application/json` exactly (any parameters): one document, not a stream type such as
/// `application/x-ndjson` or `text/event-stream`.
fn is_plain_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether the body sent for this request has `"stream": true`.
fn asks_to_stream(target: &Target, row: Option<&[String]>) -> bool {
    let Some(Body::Json(body)) = &target.body else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&body.render_to_string(row))
        .is_ok_and(|v| v.get("stream") == Some(&serde_json::Value::Bool(true)))
}

/// Resolves when the cancel flag becomes true; never, when there is no flag (or nobody can set
/// it any more).
pub(super) async fn cancelled(cancel: &mut Option<watch::Receiver<bool>>) {
    match cancel {
        Some(rx) => {
            if rx.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// A request that failed before anything was sent: the target's HTTP client could not be
/// built (its TLS material was rejected by the TLS library).
pub(crate) fn unsent(spec: &RequestSpec<'_>, outcome: Outcome, message: &str) -> Measured {
    let mut record = blank_record(spec, Instant::now());
    record.outcome = outcome;
    record.error = Some(truncate(message, 300));
    Measured {
        record,
        protocol: None,
        looks_like: None,
    }
}

/// A record at `t0` with nothing measured yet.
fn blank_record(spec: &RequestSpec<'_>, t0: Instant) -> RequestRecord {
    RequestRecord {
        index: spec.index,
        outcome: Outcome::Success,
        status: None,
        error: None,
        start_offset: t0.saturating_duration_since(spec.phase_start),
        client_wait: Duration::ZERO,
        time_to_headers: None,
        ttft: None,
        first_visible_token: None,
        duration: Duration::ZERO,
        output_tokens: 0,
        token_source: TokenSource::Events,
        token_events: 0,
        chunks: 0,
        bytes: 0,
        itl: Vec::new(),
        tpot: None,
        text: None,
        response_model: None,
        system_fingerprint: None,
        input_tokens: None,
        cached_input_tokens: None,
        reasoning_tokens: None,
        usage_mismatch: false,
        connection: None,
        phases: Default::default(),
        retried: false,
        ratelimit: Default::default(),
        provider_request_id: None,
        captured_headers: Vec::new(),
    }
}

struct Deadlines {
    total: Instant,
    first_token: Instant,
    idle: Duration,
}

/// Reads the body chunk by chunk under the three timeouts and the size cap.
async fn read_body(
    mut response: reqwest::Response,
    decoder: &mut Decoder,
    tokens: &mut Tokens,
    record: &mut RequestRecord,
    head: &mut Head,
    deadlines: Deadlines,
    max_bytes: u64,
) -> Result<(), Failure> {
    let mut last_chunk = Instant::now();
    // The timer is re-armed lazily: most chunks only push the idle deadline later, and moving
    // a timer on every chunk costs more than waking once at the old deadline and re-checking.
    let mut armed = deadlines.first_token.min(deadlines.total);
    let sleep = tokio::time::sleep_until(armed);
    tokio::pin!(sleep);
    // Chunks are dated when hyper hands them over, not when this task gets to them.
    let arrival = Arrival::default();
    loop {
        // The nearest deadline decides both when to wake and which timeout it was.
        let (mut deadline, kind) =
            next_deadline(&deadlines, tokens.first_any.is_some(), last_chunk);
        if let Some(done) = tokens.done_at {
            // After the terminal event only the end of the body is awaited, briefly: reading it
            // lets the connection go back to the pool, but a server that keeps the body open
            // must not turn a finished generation into a timeout.
            deadline = deadline.min(done + DONE_LINGER);
        }
        if deadline < armed {
            armed = deadline;
            sleep.as_mut().reset(armed);
        }
        let (chunk, at) = tokio::select! {
            biased;
            c = arrival::next(&arrival, response.chunk()) => c,
            _ = &mut sleep => {
                if Instant::now() >= deadline {
                    if tokens.done {
                        return Ok(());
                    }
                    return Err(Failure(kind, timeout_message(kind)));
                }
                armed = deadline;
                sleep.as_mut().reset(armed);
                continue;
            }
        };
        match chunk {
            Ok(Some(bytes)) => {
                last_chunk = at;
                record.chunks += 1;
                record.bytes += bytes.len() as u64;
                head.keep(&bytes);
                if record.bytes > max_bytes {
                    return Err(Failure(
                        Outcome::TooLarge,
                        format!("response exceeded max_response_bytes ({max_bytes} bytes)"),
                    ));
                }
                decoder
                    .feed(&bytes, &mut |ev| tokens.on_event(at, ev))
                    .map_err(decode_failure)?;
                if tokens.first_any.is_some() {
                    // Understood: the head can no longer explain a failure (`Seen::explain`).
                    head.forget();
                }
                if tokens.error.is_some() {
                    // An in-band error ends the measurement; the rest of the body is noise.
                    return Ok(());
                }
            }
            Ok(None) => {
                decoder
                    .finish(&mut |ev| tokens.on_event(at, ev))
                    .map_err(decode_failure)?;
                return Ok(());
            }
            Err(e) => {
                return Err(Failure(
                    Outcome::Truncated,
                    format!("stream broke: {}", error_chain(&e)),
                ));
            }
        }
    }
}

/// Before the first token only `first_token_timeout` (and `timeout`) apply: a model may think
/// in silence for longer than `idle_timeout`, which is about gaps inside a running stream.
fn next_deadline(d: &Deadlines, have_token: bool, last_chunk: Instant) -> (Instant, Outcome) {
    let (deadline, kind) = if have_token {
        (last_chunk + d.idle, Outcome::TimeoutIdle)
    } else {
        (d.first_token, Outcome::TimeoutFirstToken)
    };
    if deadline < d.total {
        (deadline, kind)
    } else {
        (d.total, Outcome::TimeoutTotal)
    }
}

fn timeout_message(kind: Outcome) -> String {
    match kind {
        Outcome::TimeoutFirstToken => "no token before first_token_timeout".into(),
        Outcome::TimeoutIdle => "stream silent for longer than idle_timeout".into(),
        _ => "request exceeded timeout".into(),
    }
}

fn decode_failure(e: DecodeError) -> Failure {
    Failure(Outcome::StreamError, e.to_string())
}

fn check_expectations(target: &Target, n_out: u64, text: Option<&str>) -> Result<(), Failure> {
    if let Some(min) = target.expect.min_output_tokens
        && n_out < min
    {
        return Err(Failure(
            Outcome::Assertion,
            format!("expected at least {min} output tokens, got {n_out}"),
        ));
    }
    if let Some(needle) = &target.expect.contains
        && !text.unwrap_or("").contains(needle.as_str())
    {
        return Err(Failure(
            Outcome::Assertion,
            "streamed text does not contain the expected string".into(),
        ));
    }
    Ok(())
}

/// Builds the HTTP request. Errors here are configuration-level (an unparsable rendered URL)
/// and are reported without the URL, which may hold a secret.
fn build(
    client: &reqwest::Client,
    spec: &RequestSpec<'_>,
    url: &str,
    row: Option<&[String]>,
    send: SendBody,
    written: &Arc<OnceLock<Instant>>,
) -> Result<reqwest::Request, String> {
    let target = spec.target;
    let method = reqwest::Method::from_bytes(target.method.as_bytes())
        .map_err(|_| format!("invalid method {}", target.method))?;
    let mut url = reqwest::Url::parse(url).map_err(|e| format!("rendered URL is invalid: {e}"))?;
    // `tls.server_name`: the request names the server (so SNI, certificate verification and
    // Host use it); the target's client resolves that name to the URL's own host.
    if let Some(name) = target.tls.as_ref().and_then(|t| t.server_name.as_ref())
        && name.redirects()
    {
        url.set_host(Some(&name.name))
            .map_err(|e| format!("server_name {}: {e}", name.name))?;
    }
    let mut headers = HeaderMap::with_capacity(target.headers.len() + 1);
    for h in &target.headers {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("invalid header name {}", h.name))?;
        let mut value = HeaderValue::from_str(&h.value.render_to_string(row))
            .map_err(|_| format!("header {} renders to an invalid value", h.name))?;
        value.set_sensitive(h.value.has_secret());
        headers.append(name, value);
    }
    if let Some(name) = &target.request_id_header {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid request_id_header {name}"))?;
        let id = format!("{}-{}", spec.burst_id, spec.sequence + 1);
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert(name, value);
        }
    }
    let mut builder = client.request(method, url).headers(headers);
    if let Some(body) = &target.body {
        // `cache_bust: prefix`: the same id as `request_id_header`, so server logs join too.
        let nonce = (target.cache_bust == CacheBust::Prefix)
            .then(|| format!("{}-{}", spec.burst_id, spec.sequence + 1));
        let mut text = String::new();
        body.template()
            .render_with_nonce(row, nonce.as_deref(), &mut text);
        builder = match send {
            SendBody::Stamped => builder.body(reqwest::Body::wrap(Stamped::new(text, written))),
            SendBody::Reusable => builder.body(text),
        };
    } else if send == SendBody::Stamped {
        builder = builder.body(reqwest::Body::wrap(Stamped::new(String::new(), written)));
    }
    builder.build().map_err(|e| error_chain(&e))
}

/// `t0` (DESIGN §4, see the README's "Measurement semantics"): on a reused connection, the
/// moment hyper took the request to write it on the connection (`written`), so that a queue of
/// other sends and wake-ups on this core between hand-off and write is client wait, not time to
/// headers; on a connection the request opened itself, or when nothing was written, the
/// hand-off (the connect is part of the request, and its phases start there).
fn send_start(handed: Instant, written: Option<Instant>, settled: &Settled) -> Instant {
    match (settled.connection, written) {
        (Some(Connection::Reused), Some(at)) => at.max(handed),
        _ => handed,
    }
}

/// The request body, stamping the moment hyper takes the request to write it: hyper's
/// connection task asks the body whether it is empty (`is_end_stream`) right before it encodes
/// the head, and writes head and body to the socket in the same poll. Only the first stamp
/// counts. `size_hint` does not stamp: the redirect layer asks it before the request is sent.
/// Never fails; a body without bytes is empty to hyper (no `Content-Length`, as with no body).
struct Stamped {
    bytes: Option<Bytes>,
    written: Arc<OnceLock<Instant>>,
}

impl Stamped {
    fn new(text: String, written: &Arc<OnceLock<Instant>>) -> Stamped {
        Stamped {
            bytes: (!text.is_empty()).then(|| Bytes::from(text)),
            written: written.clone(),
        }
    }

    fn stamp(&self) {
        self.written.get_or_init(Instant::now);
    }
}

impl hyper::body::Body for Stamped {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.stamp();
        Poll::Ready(self.get_mut().bytes.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.stamp();
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// Maps a failure before headers to its outcome.
fn classify_send_error(e: &reqwest::Error) -> Failure {
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    // rustls and hyper-rustls errors surface through the source chain as text; there is no
    // stable typed accessor in reqwest for "this was TLS". The phrases are rustls' own
    // (`rustls::Error`'s Display): certificate problems, alerts from the server (a missing
    // client certificate arrives as `received fatal alert: CertificateRequired`), no common
    // protocol version or cipher, and plain HTTP answering on a TLS port (`corrupt message`).
    const TLS_PHRASES: [&str; 9] = [
        "certificate",
        "tls",
        "handshake",
        "invalid dns name",
        "fatal alert",
        "peer is incompatible",
        "peer misbehaved",
        "corrupt message",
        "decrypt peer",
    ];
    let outcome = if TLS_PHRASES.iter().any(|p| lower.contains(p)) {
        Outcome::Tls
    } else if e.is_timeout() {
        Outcome::TimeoutHeaders
    } else {
        Outcome::Connect
    };
    Failure(outcome, chain)
}

/// `e` and its sources, joined with ": ", without the URL (it may hold a secret).
pub(super) fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = message_without_url(e);
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    truncate(&s, 300)
}

/// Reads up to `ERROR_BODY_LIMIT` of a non-2xx body and extracts its message.
async fn error_body(mut response: reqwest::Response) -> Option<String> {
    let mut buf = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            buf.extend_from_slice(&chunk);
            if buf.len() >= ERROR_BODY_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(ERROR_BODY_TIMEOUT, read).await;
    stream::error_message(&buf)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `e`'s own message without the URL (it may hold a secret). reqwest's `without_url`
/// would need the error by value.
fn message_without_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text
            .replace(&format!(" for url ({url})"), "")
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "<url>"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use hyper::body::Body as _;

    use super::*;

    #[test]
    fn the_body_stamps_when_hyper_takes_it_to_write_not_when_it_is_sized() {
        let written = Arc::new(OnceLock::new());
        let body = Stamped::new("{\"stream\":true}".into(), &written);
        // The redirect layer sizes the body before the request is sent.
        assert_eq!(body.size_hint().exact(), Some(15));
        assert!(written.get().is_none());
        // hyper's connection task asks whether there is a body before writing the head.
        assert!(!body.is_end_stream());
        let first = *written.get().expect("stamped");
        let mut body = std::pin::pin!(body);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                assert_eq!(frame.into_data().unwrap(), &b"{\"stream\":true}"[..]);
            }
            _ => panic!("one data frame"),
        }
        assert!(matches!(
            body.as_mut().poll_frame(&mut cx),
            Poll::Ready(None)
        ));
        assert!(body.is_end_stream());
        // Only the first stamp counts.
        assert_eq!(written.get(), Some(&first));
    }

    #[test]
    fn an_empty_body_is_empty_to_hyper_and_still_stamps() {
        let written = Arc::new(OnceLock::new());
        let body = Stamped::new(String::new(), &written);
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(body.is_end_stream());
        assert!(written.get().is_some());
    }

    #[test]
    fn the_head_is_kept_up_to_its_limit_until_forgotten_then_not_at_all() {
        let mut head = Head::new(8);
        head.keep(b"abcdef");
        head.keep(b"ghij");
        assert_eq!(head.bytes, b"abcdefgh");
        head.forget();
        head.keep(b"xyz");
        assert!(head.bytes.is_empty());
        assert_eq!(head.bytes.capacity(), 0, "the memory is given back");
    }

    #[test]
    fn t0_is_the_write_on_a_reused_connection_and_the_hand_off_otherwise() {
        let handed = Instant::now();
        let written = handed + Duration::from_millis(7);
        let reused = Settled {
            connection: Some(Connection::Reused),
            opened: None,
        };
        assert_eq!(send_start(handed, Some(written), &reused), written);
        // Never before the hand-off (stamps of another task's clock read).
        assert_eq!(
            send_start(handed, Some(handed - Duration::from_millis(1)), &reused),
            handed
        );
        // Nothing written (failed or cut off before the write): the hand-off.
        assert_eq!(send_start(handed, None, &reused), handed);
        // The request opened its connection: the connect is part of it.
        let new = Settled {
            connection: Some(Connection::New),
            opened: None,
        };
        assert_eq!(send_start(handed, Some(written), &new), handed);
        assert_eq!(
            send_start(handed, Some(written), &Settled::default()),
            handed
        );
    }
}
