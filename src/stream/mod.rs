//! Stream decoding: bytes in any chunking → frames (SSE, NDJSON, raw) → protocol events
//! (a token on a channel, usage, terminal, in-band error).
//!
//! Pure and incremental: no I/O, no async, no clock. The caller timestamps each chunk when it
//! arrives and attributes every event produced by `feed` to that instant.

use std::borrow::Cow;

pub use crate::config::{Extract, Protocol};

/// Which kind of generated output a token carries. TTFT counts any channel; "first visible
/// token" counts `Text` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Text,
    Reasoning,
    Tool,
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
    /// Server-reported output-token count; the last value seen wins (counts are cumulative).
    Usage { output_tokens: u64 },
    /// The protocol's normal terminator.
    Done { finish_reason: Option<Cow<'a, str>> },
    /// An in-band error (HTTP 200 stream carrying an error payload).
    Error { message: Cow<'a, str> },
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

/// Incremental decoder for one response body.
pub struct Decoder {
    _opts: DecoderOptions,
}

impl Decoder {
    pub fn new(opts: DecoderOptions) -> Self {
        Decoder { _opts: opts }
    }

    /// Feeds the next chunk of body bytes; calls `sink` for each event completed by it.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let _ = (chunk, sink);
        todo!()
    }

    /// End of body: flushes a final unterminated frame (NDJSON line without `\n`, ...).
    pub fn finish(&mut self, sink: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        let _ = sink;
        todo!()
    }

    /// The protocol in use (what `auto` chose, once it has decided).
    pub fn protocol(&self) -> Protocol {
        todo!()
    }

    /// Whether this protocol has a terminal event, so EOF without it means `truncated`.
    pub fn has_terminator(&self) -> bool {
        todo!()
    }
}

/// Temporary: replaced by the stream module's implementation.
pub fn error_message(body: &[u8]) -> Option<String> {
    let _ = body;
    None
}
