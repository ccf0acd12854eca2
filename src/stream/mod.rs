//! Stream decoding: bytes in any chunking → frames (SSE, NDJSON, raw) → protocol events
//! (a token on a channel, usage, the responding model, terminal, in-band error).
//!
//! Pure and incremental: no I/O, no async, no clock. The caller timestamps each chunk when it
//! arrives and attributes every event produced by `feed` to that instant.
//!
//! Layout: `sse`, `ndjson` and `raw` turn bytes into frames; one module per dialect
//! (`openai`, `responses`, `anthropic`, `gemini`, `ollama`, `dify`, `tgi`, `generic`) turns
//! frames into [`Event`]s; `detect` implements `protocol: auto`; `error_body` reads non-2xx
//! bodies; `identity` reports the responding model once per change. Memory is bounded by `max_event_bytes` (one partial line plus one event's data).
//! Complete lines are scanned in place in the chunk (memchr); an event's data is assembled in
//! a reused buffer and deserialized into small typed structs whose strings borrow from it, so
//! the common case allocates nothing per event.
//!
//! Does not: touch the network, time anything, or decide whether a request failed — it
//! reports what the stream says; `probe` judges.

use std::borrow::Cow;

pub use crate::config::{Extract, Protocol};

mod anthropic;
mod detect;
mod dify;
mod error_body;
mod gemini;
mod generic;
mod identity;
mod json;
mod ndjson;
mod ollama;
mod openai;
mod raw;
mod responses;
mod sse;
mod tgi;

pub use detect::llama_cpp_extract;
pub use error_body::{JsonReply, error_message, json_reply};

use detect::Framing;

/// Which kind of generated output a token carries. TTFT counts any channel; "first visible
/// token" counts `Text` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Text,
    Reasoning,
    Tool,
}

/// Server-reported token counts carried by one event; `None` where the event does not say.
/// Every count is cumulative, so for each field the last value seen wins ([`Usage::update`]).
///
/// `input_tokens` is the whole prompt, cached part included (Anthropic reports the uncached
/// part only; its dialect adds the cache reads and writes back), so `cached_input_tokens ≤
/// input_tokens` across protocols. `reasoning_tokens` is part of `output_tokens` where the
/// protocol counts it there (OpenAI) and separate where it does not (Gemini's
/// `thoughtsTokenCount`): it is reported as the server says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub output_tokens: Option<u64>,
    pub input_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Whether the event says nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }

    /// Overlays the counts `newer` knows; the others keep their last value.
    pub fn update(&mut self, newer: Usage) {
        let Usage {
            output_tokens,
            input_tokens,
            cached_input_tokens,
            reasoning_tokens,
        } = newer;
        self.output_tokens = output_tokens.or(self.output_tokens);
        self.input_tokens = input_tokens.or(self.input_tokens);
        self.cached_input_tokens = cached_input_tokens.or(self.cached_input_tokens);
        self.reasoning_tokens = reasoning_tokens.or(self.reasoning_tokens);
    }
}

/// What one frame of the stream means. One frame may produce several events (e.g. the last
/// DeepSeek chunk carries a token, usage and the finish reason).
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// ≥ 1 generated token. `text` is non-empty.
    Token {
        channel: Channel,
        text: Cow<'a, str>,
    },
    /// Server-reported token counts (at least one field is known).
    Usage(Usage),
    /// The model the server says answered, and its `system_fingerprint` (OpenAI and its
    /// copies). Reported when first seen and again only when it changes, so the token path
    /// does not pay for a model name repeated on every chunk. A field the stream stopped
    /// repeating keeps its last value; both are non-empty when present. Strings are as the
    /// server sent them (any length): consumers bound them.
    Identity {
        model: Option<Cow<'a, str>>,
        fingerprint: Option<Cow<'a, str>>,
    },
    /// The protocol's normal terminator.
    Done { finish_reason: Option<Cow<'a, str>> },
    /// An in-band error (HTTP 200 stream carrying an error payload). The message is at most
    /// 256 characters.
    Error { message: Cow<'a, str> },
}

impl Event<'_> {
    /// The same event owning its strings, to keep beyond the `sink` call.
    pub fn into_owned(self) -> Event<'static> {
        let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        match self {
            Event::Token { channel, text } => Event::Token {
                channel,
                text: own(text),
            },
            Event::Usage(usage) => Event::Usage(usage),
            Event::Identity { model, fingerprint } => Event::Identity {
                model: model.map(own),
                fingerprint: fingerprint.map(own),
            },
            Event::Done { finish_reason } => Event::Done {
                finish_reason: finish_reason.map(own),
            },
            Event::Error { message } => Event::Error {
                message: own(message),
            },
        }
    }
}

/// What a generic (`sse`/`ndjson`, no `extract`) stream's first event looked like: a known
/// dialect (or, with `extract`, llama.cpp's `/completion` JSON). Generic framing then counted
/// every event as a token, which is rarely what the author meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LooksLike {
    /// The dialect `auto` would have chosen for that event.
    pub protocol: Protocol,
    /// Pointers that read it, when `protocol` is itself generic.
    pub extract: Option<Extract>,
}

impl LooksLike {
    /// One line for a report or log: what was counted, what the stream looks like, the fix.
    pub fn advice(&self, configured: Protocol) -> String {
        let counted = format!(
            "protocol {configured} without extract counted every event as one output token and stored its raw data as text"
        );
        match &self.extract {
            Some(x) if *x == llama_cpp_extract() => format!(
                "{counted}, but the first event looks like llama.cpp /completion JSON; set extract: {x}, or protocol: auto"
            ),
            Some(x) => format!(
                "{counted}, but the first event is JSON these pointers read; set extract: {x}"
            ),
            None => format!(
                "{counted}, but the first event looks like {p} JSON; set protocol: {p} (or auto)",
                p = self.protocol
            ),
        }
    }
}

/// Why the byte stream cannot be decoded. Each maps to the `stream_error` outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a stream line or event exceeds {limit} bytes")]
    TooLong { limit: usize },
    #[error("invalid UTF-8 in the stream at byte {offset}")]
    InvalidUtf8 { offset: u64 },
    #[error("malformed {protocol} event: {detail}")]
    Malformed {
        protocol: &'static str,
        detail: String,
    },
}

/// A sensible `max_event_bytes`: far above any token event, yet enough for the OpenAI
/// Responses `response.completed` event, which repeats the whole generated output.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 8 << 20;

/// What the decoder is told about the response before the first byte.
#[derive(Debug, Clone)]
pub struct DecoderOptions {
    pub protocol: Protocol,
    pub extract: Option<Extract>,
    /// Longest line / event accepted; beyond it `feed` fails instead of buffering more.
    pub max_event_bytes: usize,
    /// The response's `Content-Type`, for `auto`.
    pub content_type: Option<String>,
    /// The request URL's path, for `auto`.
    pub url_path: String,
}

impl DecoderOptions {
    /// Options for `protocol` with no extract, no hints and [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new(protocol: Protocol) -> Self {
        DecoderOptions {
            protocol,
            extract: None,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            content_type: None,
            url_path: String::new(),
        }
    }
}

/// One dispatched SSE event or one NDJSON line, borrowed from the chunk or the framer's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    /// SSE event type (`""` when absent, and always for NDJSON).
    pub(crate) event: &'a str,
    pub(crate) data: &'a str,
}

/// A frame's data as one JSON event of `protocol`; `None` for a blank frame (keep-alives).
pub(crate) fn json_frame<'a, T: serde::Deserialize<'a>>(
    f: &Frame<'a>,
    protocol: Protocol,
) -> Result<Option<T>, DecodeError> {
    let data = f.data.trim_ascii();
    if data.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(data)
        .map(Some)
        .map_err(|e| malformed(protocol, &e))
}

pub(crate) fn malformed(protocol: Protocol, err: &serde_json::Error) -> DecodeError {
    DecodeError::Malformed {
        protocol: protocol.as_str(),
        detail: err.to_string(),
    }
}

/// How many bytes `auto` may hold back, when neither URL nor `Content-Type` told it the
/// framing, before deciding from what it has (it decides earlier at the first line end).
const SNIFF_BYTES: usize = 512;

/// Whether the held prefix decides the framing the same way for every chunking: its first
/// non-blank line is complete, or `SNIFF_BYTES` arrived. (Deciding at the first line end of
/// any kind made a body that opens with blank lines depend on where the first read ended.)
fn sniff_ready(held: &[u8]) -> bool {
    if held.len() >= SNIFF_BYTES {
        return true;
    }
    let body = held.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(held);
    body.iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| memchr::memchr2(b'\n', b'\r', &body[i..]).is_some())
}

/// Incremental decoder for one response body. `Send`, so a probe task can own it.
#[derive(Debug)]
pub struct Decoder {
    framer: Framer,
    dialect: Dialect,
    /// Bytes fed so far: the stream offset of the next chunk's first byte.
    offset: u64,
    /// Once decoding failed, every later call reports the same error.
    failed: Option<DecodeError>,
    max: usize,
}

#[derive(Debug)]
enum Framer {
    /// `auto` with no hint: the first bytes (from offset 0), held until the framing is known.
    Sniff(Vec<u8>),
    Sse(sse::SseFramer),
    Ndjson(ndjson::LineFramer),
    Raw(raw::RawDecoder),
}

impl Framer {
    fn new(framing: Framing, max: usize) -> Framer {
        match framing {
            Framing::Sse => Framer::Sse(sse::SseFramer::new(max)),
            Framing::Ndjson => Framer::Ndjson(ndjson::LineFramer::new(max)),
            Framing::Raw => Framer::Raw(raw::RawDecoder::default()),
        }
    }
}

#[derive(Debug)]
enum Dialect {
    /// `auto`, framing known: the first frame decides.
    Pending(Framing),
    /// `auto`, framing not known yet (sniffing).
    Unknown,
    OpenAi(openai::OpenAi),
    Responses(responses::Responses),
    Anthropic(anthropic::Anthropic),
    Gemini(gemini::Gemini),
    Ollama(ollama::Ollama),
    Dify(dify::Dify),
    Tgi(tgi::Tgi),
    Generic(generic::Generic),
    Raw,
}

impl Dialect {
    fn of(protocol: Protocol, extract: Option<Extract>) -> Dialect {
        match protocol {
            Protocol::Auto => Dialect::Unknown,
            Protocol::OpenAi | Protocol::OpenAiCompletions => {
                Dialect::OpenAi(openai::OpenAi::new(protocol))
            }
            Protocol::OpenAiResponses => Dialect::Responses(responses::Responses::default()),
            Protocol::Anthropic => Dialect::Anthropic(anthropic::Anthropic::default()),
            Protocol::Gemini => Dialect::Gemini(gemini::Gemini::default()),
            Protocol::Ollama => Dialect::Ollama(ollama::Ollama::default()),
            Protocol::Dify => Dialect::Dify(dify::Dify::default()),
            Protocol::Tgi => Dialect::Tgi(tgi::Tgi),
            Protocol::Sse | Protocol::Ndjson => {
                Dialect::Generic(generic::Generic::new(protocol, extract))
            }
            Protocol::Raw => Dialect::Raw,
        }
    }

    fn protocol(&self) -> Protocol {
        match self {
            Dialect::Pending(_) | Dialect::Unknown => Protocol::Auto,
            Dialect::OpenAi(d) => d.protocol(),
            Dialect::Responses(_) => Protocol::OpenAiResponses,
            Dialect::Anthropic(_) => Protocol::Anthropic,
            Dialect::Gemini(_) => Protocol::Gemini,
            Dialect::Ollama(_) => Protocol::Ollama,
            Dialect::Dify(_) => Protocol::Dify,
            Dialect::Tgi(_) => Protocol::Tgi,
            Dialect::Generic(d) => d.protocol(),
            Dialect::Raw => Protocol::Raw,
        }
    }

    fn has_terminator(&self) -> bool {
        match self {
            Dialect::Pending(_) | Dialect::Unknown | Dialect::Raw => false,
            Dialect::Generic(d) => d.has_terminator(),
            _ => true,
        }
    }

    fn frame(&mut self, f: Frame<'_>, sink: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        match self {
            Dialect::Pending(framing) => {
                let (protocol, extract) = detect::from_first_frame(&f, *framing);
                *self = Dialect::of(protocol, extract);
                self.frame(f, sink)
            }
            // Frames only exist once the framing, hence `Pending`, is known.
            Dialect::Unknown | Dialect::Raw => Ok(()),
            Dialect::OpenAi(d) => d.frame(f, sink),
            Dialect::Responses(d) => d.frame(f, sink),
            Dialect::Anthropic(d) => d.frame(f, sink),
            Dialect::Gemini(d) => d.frame(f, sink),
            Dialect::Ollama(d) => d.frame(f, sink),
            Dialect::Dify(d) => d.frame(f, sink),
            Dialect::Tgi(d) => d.frame(f, sink),
            Dialect::Generic(d) => d.frame(f, sink),
        }
    }

    /// End of stream: dialects whose terminator is "a finish reason, then EOF" report `Done`.
    fn finish(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        match self {
            Dialect::OpenAi(d) => d.finish(sink),
            Dialect::Gemini(d) => d.finish(sink),
            Dialect::Dify(d) => d.finish(sink),
            _ => {}
        }
    }
}

impl Decoder {
    pub fn new(opts: DecoderOptions) -> Self {
        let max = opts.max_event_bytes;
        let (framing, dialect) = match opts.protocol {
            Protocol::Auto => auto(&opts),
            p => (Some(Framing::of(p)), Dialect::of(p, opts.extract)),
        };
        let framer = match framing {
            Some(f) => Framer::new(f, max),
            None => Framer::Sniff(Vec::new()),
        };
        Decoder {
            framer,
            dialect,
            offset: 0,
            failed: None,
            max,
        }
    }

    /// Feeds the next chunk of body bytes; calls `sink` for each event completed by it.
    ///
    /// After an error the decoder is spent: every later `feed`/`finish` returns that error.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let base = self.offset;
        self.offset += chunk.len() as u64;
        let result = if let Framer::Sniff(held) = &mut self.framer {
            held.extend_from_slice(chunk);
            if sniff_ready(held) {
                self.end_sniff(sink)
            } else {
                Ok(())
            }
        } else {
            self.feed_framed(chunk, base, sink)
        };
        self.remember(result)
    }

    /// End of body: flushes a final unterminated frame (NDJSON line without `\n`, ...).
    pub fn finish(&mut self, sink: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.finish_inner(sink);
        self.remember(result)
    }

    /// The protocol in use (what `auto` chose, once it has decided).
    pub fn protocol(&self) -> Protocol {
        self.dialect.protocol()
    }

    /// For a generic stream read without `extract`: the known dialect its first event looked
    /// like, if any (see [`LooksLike`]).
    pub fn looks_like(&self) -> Option<&LooksLike> {
        match &self.dialect {
            Dialect::Generic(d) => d.looks_like(),
            _ => None,
        }
    }

    /// Whether this protocol has a terminal event, so EOF without it means `truncated`.
    pub fn has_terminator(&self) -> bool {
        self.dialect.has_terminator()
    }

    fn finish_inner(&mut self, sink: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        if matches!(&self.framer, Framer::Sniff(held) if !held.is_empty()) {
            self.end_sniff(sink)?;
        }
        let Decoder {
            framer, dialect, ..
        } = self;
        match framer {
            Framer::Sse(f) => f.finish(&mut |fr| dialect.frame(fr, sink))?,
            Framer::Ndjson(f) => f.finish(&mut |fr| dialect.frame(fr, sink))?,
            Framer::Raw(r) => r.finish(self.offset)?,
            Framer::Sniff(_) => {}
        }
        dialect.finish(sink);
        Ok(())
    }

    /// Decides the framing from the held bytes and decodes them.
    fn end_sniff(&mut self, sink: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        let Framer::Sniff(held) = &mut self.framer else {
            return Ok(());
        };
        let held = std::mem::take(held);
        // Only the first SNIFF_BYTES count, however they were chunked.
        let framing = detect::sniff(&held[..held.len().min(SNIFF_BYTES)]);
        self.framer = Framer::new(framing, self.max);
        self.dialect = match framing {
            Framing::Raw => Dialect::Raw,
            f => Dialect::Pending(f),
        };
        self.feed_framed(&held, 0, sink)
    }

    fn feed_framed(
        &mut self,
        chunk: &[u8],
        base: u64,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let Decoder {
            framer, dialect, ..
        } = self;
        match framer {
            Framer::Sse(f) => f.feed(chunk, base, &mut |fr| dialect.frame(fr, sink)),
            Framer::Ndjson(f) => f.feed(chunk, base, &mut |fr| dialect.frame(fr, sink)),
            Framer::Raw(r) => r.feed(chunk, base, sink),
            Framer::Sniff(_) => Ok(()),
        }
    }

    fn remember(&mut self, result: Result<(), DecodeError>) -> Result<(), DecodeError> {
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }
}

/// The dialect the first bytes of a body look like, by the same detection `protocol: auto`
/// uses with no URL or `Content-Type` hint (framing sniffed, then the first event's shape);
/// `None` when they show no known dialect (generic SSE or NDJSON, raw text, too few bytes).
/// For error messages: a stream that failed under a configured protocol may be another's.
pub fn detect_dialect(head: &[u8]) -> Option<Protocol> {
    let mut decoder = Decoder::new(DecoderOptions::new(Protocol::Auto));
    // Decode errors after the decision do not change it; the events are not needed.
    let _ = decoder.feed(head, &mut |_| {});
    if decoder.protocol() == Protocol::Auto {
        let _ = decoder.finish(&mut |_| {});
    }
    match decoder.protocol() {
        Protocol::Auto | Protocol::Sse | Protocol::Ndjson | Protocol::Raw => None,
        dialect => Some(dialect),
    }
}

/// `protocol: auto` before the body: the framing (if known) and the dialect (or `Pending`).
fn auto(opts: &DecoderOptions) -> (Option<Framing>, Dialect) {
    let by_type = opts
        .content_type
        .as_deref()
        .and_then(detect::from_content_type);
    if let Some(extract) = &opts.extract {
        // Pointers only make sense for the generic dialects.
        let p = if by_type == Some(Framing::Ndjson) {
            Protocol::Ndjson
        } else {
            Protocol::Sse
        };
        return (Some(Framing::of(p)), Dialect::of(p, Some(extract.clone())));
    }
    if let Some((p, extract)) = detect::from_url_path(&opts.url_path) {
        return (Some(Framing::of(p)), Dialect::of(p, extract));
    }
    match by_type {
        Some(Framing::Raw) => (Some(Framing::Raw), Dialect::Raw),
        Some(f) => (Some(f), Dialect::Pending(f)),
        None => (None, Dialect::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_dialect_names_the_dialect_of_the_first_event() {
        let openai = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n";
        assert_eq!(detect_dialect(openai), Some(Protocol::OpenAi));
        let anthropic =
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n";
        assert_eq!(detect_dialect(anthropic), Some(Protocol::Anthropic));
        let ollama = b"{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":false}\n";
        assert_eq!(detect_dialect(ollama), Some(Protocol::Ollama));
        // A cut first event still decides once its line is complete; plain text never does.
        assert_eq!(detect_dialect(b"data: {\"choices\":[{\"delta\""), None);
        assert_eq!(detect_dialect(b"hello world\n"), None);
        assert_eq!(detect_dialect(b"data: {\"x\": 1}\n\n"), None);
        assert_eq!(detect_dialect(b""), None);
    }
}
