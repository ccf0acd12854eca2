//! One HTTP request: the control routes (`/mock/truth`, `/mock/stats`, `/mock/reset`) and the
//! streaming routes — pick the dialect by path, read the body, apply per-request overrides, pick
//! a fault, record ground truth, and answer (error status, refusal, or a streaming body).
//!
//! Does not: time tokens (`body.rs`) or render events (`wire.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use serde::Deserialize;

use super::MockOptions;
use super::body::{ConnState, MockBody, Plan, StreamBody, jittered};
use super::fault::{
    Fault, MockError, parse_bool, parse_duration, parse_jitter, parse_name, parse_requests,
    parse_tokens,
};
use super::headers::{self, ProviderHeaders};
use super::truth::{self, End, Ledger, RecordInit};
use super::wire::{Dialect, Reported, Wire, error_body};

/// How much of a request body the truth keeps.
const TRUTH_BODY_LIMIT: usize = 64 << 10;
/// How much of a request body is parsed for hints (`model`, `stream_options`).
const PARSE_LIMIT: usize = 1 << 20;

/// Everything a connection's requests share.
pub(crate) struct Shared {
    pub(crate) options: MockOptions,
    pub(crate) ledger: Arc<Ledger>,
}

/// Returned to hyper for the `refuse` fault: hyper then closes the connection without writing
/// a response.
#[derive(Debug, thiserror::Error)]
#[error("mock fault: connection refused")]
pub(crate) struct Refused;

pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Refused> {
    match req.uri().path() {
        "/mock/truth" => return Ok(truth_route(&shared, &req)),
        "/mock/stats" => {
            let stats = shared.ledger.stats();
            return Ok(json(StatusCode::OK, truth::stats_json(&stats)));
        }
        "/mock/reset" if req.method() == Method::POST => {
            shared.ledger.reset();
            return Ok(json(StatusCode::OK, b"{\"reset\":true}".to_vec()));
        }
        "/mock/reset" => {
            let mut r = json(
                StatusCode::METHOD_NOT_ALLOWED,
                b"{\"error\":\"use POST /mock/reset\"}".to_vec(),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return Ok(r);
        }
        _ => {}
    }
    stream_route(shared, conn, req).await
}

async fn stream_route(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Refused> {
    let (seq, in_flight_at_arrival, mut in_flight) = shared.ledger.arrive();
    let path = req.uri().path();
    let (dialect, protocol) = Dialect::route(path).unwrap_or_else(|| {
        let p = shared.options.protocol;
        (Dialect::for_protocol(p), p)
    });
    let gemini_model = (dialect == Dialect::Gemini).then(|| gemini_model(path).to_owned());
    let method = req.method().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.to_owned(), |pq| pq.as_str().to_owned());
    let query = req.uri().query().unwrap_or("").to_owned();
    let abort_connection = req.version() <= Version::HTTP_11;
    let headers = interesting_headers(req.headers());
    let overrides = Overrides::parse(&shared.options, &query, req.headers());
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| seq.to_string(), str::to_owned);

    // A client that goes away mid-body gets no answer; the guard counts it out.
    let (body, body_len) = read_body(req.into_body()).await.map_err(|_| Refused)?;
    let received_at = Instant::now();

    let mut init = RecordInit {
        id,
        seq,
        protocol,
        method,
        target,
        fault: None,
        status: 200,
        received_at,
        scheduled_ttft: Duration::ZERO,
        tokens_planned: None,
        in_flight_at_arrival,
        // A copy, so that the truth store never pins the larger parse buffer.
        request_body: Bytes::copy_from_slice(&body[..body.len().min(TRUTH_BODY_LIMIT)]),
        request_body_truncated: body_len > TRUTH_BODY_LIMIT,
        headers,
    };

    let o = match overrides {
        Ok(o) => o,
        Err(e) => {
            init.status = 400;
            let record = shared.ledger.insert(init);
            record.end(End::Finished);
            in_flight.release();
            let body = error_body(dialect, 400, Some(&e.to_string()));
            return Ok(json(StatusCode::BAD_REQUEST, body.into_bytes()));
        }
    };

    let fault = o.fault.unwrap_or_else(|| pick_fault(&shared.options));
    let scheduled_ttft = jittered(o.ttft, o.jitter);
    let status = match fault {
        Some(Fault::TooManyRequests) => 429,
        Some(Fault::InternalError) => 500,
        Some(Fault::Unavailable) => 503,
        Some(Fault::Refuse) => 0,
        _ => 200,
    };
    init.fault = fault;
    init.status = status;
    init.scheduled_ttft = scheduled_ttft;
    init.tokens_planned = (fault != Some(Fault::Endless)).then_some(o.tokens);
    let key = init.id.clone();
    let record = shared.ledger.insert(init);

    if status != 200 {
        // Counted out before hyper can write a single byte of the answer.
        record.end(End::Finished);
        in_flight.release();
        if status == 0 {
            return Err(Refused);
        }
        let body = error_body(dialect, status, None);
        let mut r = json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body.into_bytes(),
        );
        if status == 429 {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        // Asked-for families replace the default retry-after.
        headers::apply(r.headers_mut(), &o.provider_headers, status, seq);
        return Ok(r);
    }

    let hints = RequestHints::parse(&body);
    let mut model = o
        .model
        .clone()
        .or(gemini_model)
        .or(hints.model)
        .unwrap_or_else(|| "mock-model".to_owned());
    let mut fingerprint = o.fingerprint.clone();
    // A silent model swap: every request after the first N names another model.
    if o.model_switch_after.is_some_and(|n| seq > n) {
        model.push_str("-next");
        fingerprint.push_str("_next");
    }
    let include_usage = match dialect {
        Dialect::OpenAiChat | Dialect::OpenAiCompletions => o.usage && hints.include_usage,
        _ => o.usage,
    };
    let prompt_tokens = (body_len as u64 / 4).max(1);
    let reported = Reported {
        model,
        fingerprint,
        prompt_tokens,
        cached_tokens: o.cached_tokens.min(prompt_tokens),
        reasoning_tokens: o.reasoning_tokens,
    };
    let wire = Wire::new(dialect, o.usage, seq, &reported);
    let content_type = wire.content_type();
    // Options set in code are not range-checked like parsed ones; never panic on overflow.
    let first_token_due = received_at
        .checked_add(scheduled_ttft)
        .unwrap_or(received_at + Duration::from_secs(24 * 3600));
    let plan = Plan {
        first_token_due,
        itl: o.itl,
        jitter: o.jitter,
        tokens: (fault != Some(Fault::Endless)).then_some(o.tokens),
        fault,
        include_usage,
        abort_connection,
    };
    // Built before any delay so that a client leaving during `delay-headers` marks it dropped.
    let body = StreamBody::new(wire, plan, record, in_flight, conn);
    if fault == Some(Fault::DelayHeaders) {
        tokio::time::sleep_until(first_token_due.into()).await;
    }
    let mut r = Response::new(MockBody::Stream(Box::new(body)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert("x-mock-id", v);
    }
    headers::apply(h, &o.provider_headers, 200, seq);
    Ok(r)
}

fn truth_route(shared: &Shared, req: &Request<Incoming>) -> Response<MockBody> {
    let id = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.into_owned())
    });
    let epoch = shared.ledger.epoch();
    match id {
        None => json(
            StatusCode::OK,
            truth::truths_json(&shared.ledger.truths(), epoch),
        ),
        Some(id) => match shared.ledger.truth(&id) {
            Some(t) => json(StatusCode::OK, truth::truth_json(&t, epoch)),
            None => {
                let msg = serde_json::json!({ "error": format!("no truth for id {id:?}") });
                json(StatusCode::NOT_FOUND, msg.to_string().into_bytes())
            }
        },
    }
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<MockBody> {
    let mut r = Response::new(MockBody::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The request's timing and fault after per-request overrides.
struct Overrides {
    ttft: Duration,
    itl: Duration,
    tokens: u64,
    jitter: f64,
    usage: bool,
    /// `Some(None)`: `fault=none` switches server-wide faults off for this request.
    fault: Option<Option<Fault>>,
    model: Option<String>,
    fingerprint: String,
    model_switch_after: Option<u64>,
    cached_tokens: u64,
    reasoning_tokens: u64,
    provider_headers: Vec<ProviderHeaders>,
}

/// Overridable settings: query parameter name and `X-Mock-*` header.
const OVERRIDES: [(&str, &str); 12] = [
    ("ttft", "x-mock-ttft"),
    ("itl", "x-mock-itl"),
    ("tokens", "x-mock-tokens"),
    ("jitter", "x-mock-jitter"),
    ("usage", "x-mock-usage"),
    ("fault", "x-mock-fault"),
    ("model", "x-mock-model"),
    ("fingerprint", "x-mock-fingerprint"),
    ("model_switch_after", "x-mock-model-switch-after"),
    ("cached_tokens", "x-mock-cached-tokens"),
    ("reasoning_tokens", "x-mock-reasoning-tokens"),
    ("provider_headers", "x-mock-provider-headers"),
];

impl Overrides {
    /// Headers `X-Mock-*` override the server's options; query parameters override both.
    fn parse(options: &MockOptions, query: &str, headers: &HeaderMap) -> Result<Overrides, String> {
        let mut o = Overrides {
            ttft: options.ttft,
            itl: options.itl,
            tokens: options.tokens,
            jitter: options.jitter,
            usage: options.usage,
            fault: None,
            model: options.model.clone(),
            fingerprint: options.fingerprint.clone(),
            model_switch_after: options.model_switch_after,
            cached_tokens: options.cached_tokens,
            reasoning_tokens: options.reasoning_tokens,
            provider_headers: options.provider_headers.clone(),
        };
        for (name, header) in OVERRIDES {
            if let Some(v) = headers.get(header) {
                let v = v
                    .to_str()
                    .map_err(|_| format!("{header}: not visible ASCII"))?;
                o.apply(name, v).map_err(|e| format!("{header}: {e}"))?;
            }
        }
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if OVERRIDES.iter().any(|(name, _)| *name == k) {
                o.apply(&k, &v)
                    .map_err(|e| format!("query parameter {k}: {e}"))?;
            }
        }
        Ok(o)
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<(), MockError> {
        match name {
            "ttft" => self.ttft = parse_duration(value)?,
            "itl" => self.itl = parse_duration(value)?,
            "tokens" => self.tokens = parse_tokens(value)?,
            "jitter" => self.jitter = parse_jitter(value)?,
            "usage" => self.usage = parse_bool(value)?,
            "model" => self.model = Some(parse_name("model", value)?),
            "fingerprint" => self.fingerprint = parse_name("fingerprint", value)?,
            "model_switch_after" => self.model_switch_after = Some(parse_requests(value)?),
            "cached_tokens" => self.cached_tokens = parse_tokens(value)?,
            "reasoning_tokens" => self.reasoning_tokens = parse_tokens(value)?,
            "provider_headers" => self.provider_headers = headers::parse_list(value)?,
            _ if value.eq_ignore_ascii_case("none") => self.fault = Some(None),
            _ => self.fault = Some(Some(value.parse()?)),
        }
        Ok(())
    }
}

/// Server-wide faults in order; the first whose coin comes up wins.
fn pick_fault(options: &MockOptions) -> Option<Fault> {
    options
        .faults
        .iter()
        .find(|spec| spec.probability() >= 1.0 || rand::random_bool(spec.probability()))
        .map(|spec| spec.fault)
}

/// The parts of a request body that change the answer.
struct RequestHints {
    model: Option<String>,
    include_usage: bool,
}

impl RequestHints {
    fn parse(body: &[u8]) -> RequestHints {
        #[derive(Deserialize)]
        struct Raw {
            model: Option<String>,
            stream_options: Option<StreamOptions>,
        }
        #[derive(Deserialize)]
        struct StreamOptions {
            include_usage: Option<bool>,
        }
        let raw: Option<Raw> = serde_json::from_slice(body).ok();
        RequestHints {
            include_usage: raw
                .as_ref()
                .and_then(|r| r.stream_options.as_ref())
                .and_then(|s| s.include_usage)
                .unwrap_or(false),
            model: raw.and_then(|r| r.model),
        }
    }
}

/// `/v1beta/models/gemini-2.0-flash:streamGenerateContent` → `gemini-2.0-flash`.
fn gemini_model(path: &str) -> &str {
    let after = path.rsplit_once("/models/").map_or(path, |(_, m)| m);
    after.split_once(':').map_or(after, |(m, _)| m)
}

const INTERESTING: [&str; 10] = [
    "x-request-id",
    "content-type",
    "accept",
    "user-agent",
    "authorization",
    "x-api-key",
    "api-key",
    "anthropic-version",
    "x-goog-api-key",
    "traceparent",
];

fn interesting_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            INTERESTING.contains(&name.as_str()) || name.as_str().starts_with("x-mock-")
        })
        .map(|(name, v)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Reads the whole body; keeps the first `PARSE_LIMIT` bytes and returns the total length.
async fn read_body(mut body: Incoming) -> Result<(Bytes, usize), hyper::Error> {
    let mut kept = BytesMut::new();
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            total += data.len();
            let room = PARSE_LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok((kept.freeze(), total))
}
