//! Generic `sse` and `ndjson` streams: any server whose events we do not know by name.
//!
//! Does not: guess field names. Without `extract`, every non-empty SSE data / NDJSON line is
//! one text token (and `[DONE]` ends an SSE stream). With `extract`, each event is parsed as
//! JSON and RFC 6901 pointers pick the text, reasoning, output-token count, done flag, error,
//! and (v2) the model name, input and cached input tokens — e.g. llama.cpp's native
//! `/completion`: `{text: /content, done: /stop, output_tokens: /tokens_predicted, model:
//! /model, input_tokens: /tokens_evaluated}`. When `extract` names neither `text` nor `reasoning`, every non-empty
//! event still counts as a token. This is the slow path (a `serde_json::Value` per event);
//! known dialects have typed parsers. Without `extract`, the first event is also shown to
//! `detect`: when it looks like a known dialect's JSON, `looks_like` says which, so the caller
//! can warn that framing was counted where tokens were meant.

use std::borrow::Cow;

use serde_json::Value;

use super::detect::{self, Framing};
use super::identity::Identity;
use super::json::{bounded, message_of, truthy};
use super::{Channel, DecodeError, Event, Extract, Frame, LooksLike, Protocol, Usage, malformed};

#[derive(Debug)]
pub(crate) struct Generic {
    /// `Sse` or `Ndjson`: SSE streams may end with `[DONE]`.
    protocol: Protocol,
    extract: Option<Extract>,
    identity: Identity,
    /// Without `extract`: whether the first non-blank event was looked at yet.
    looked: bool,
    /// Boxed: set at most once per stream, and the decoder's variants stay small.
    looks_like: Option<Box<LooksLike>>,
}

impl Generic {
    pub(crate) fn new(protocol: Protocol, extract: Option<Extract>) -> Self {
        Generic {
            protocol,
            // With pointers given, the author already said how to read the events.
            looked: extract.is_some(),
            extract,
            identity: Identity::default(),
            looks_like: None,
        }
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The known dialect the first event looked like, when read without `extract`.
    pub(crate) fn looks_like(&self) -> Option<&LooksLike> {
        self.looks_like.as_deref()
    }

    /// Shows the first non-blank event to `detect`. An error payload says nothing about the
    /// dialect (every API sends `{"error": ...}`), so it gives no hint.
    fn look(&mut self, f: &Frame<'_>) {
        if f.data.trim_ascii().is_empty() || f.data.trim_ascii() == "[DONE]" {
            return;
        }
        self.looked = true;
        let framing = Framing::of(self.protocol);
        let (protocol, extract) = detect::from_first_frame(f, framing);
        let generic = protocol == self.protocol && extract.is_none();
        let error = serde_json::from_str::<Value>(f.data)
            .ok()
            .is_some_and(|v| v.get("error").is_some() || v.get("object") == Some(&"error".into()));
        if !generic && !error {
            self.looks_like = Some(Box::new(LooksLike { protocol, extract }));
        }
    }

    pub(crate) fn has_terminator(&self) -> bool {
        self.extract.as_ref().is_some_and(|x| x.done.is_some())
    }

    pub(crate) fn frame(
        &mut self,
        f: Frame<'_>,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        if !self.looked {
            self.look(&f);
        }
        if self.protocol == Protocol::Sse && f.data.trim_ascii() == "[DONE]" {
            sink(Event::Done {
                finish_reason: None,
            });
            return Ok(());
        }
        let Some(x) = &self.extract else {
            if !f.data.is_empty() {
                sink(Event::Token {
                    channel: Channel::Text,
                    text: Cow::Borrowed(f.data),
                });
            }
            return Ok(());
        };
        if f.data.trim_ascii().is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(f.data).map_err(|e| malformed(self.protocol, &e))?;
        let at = |pointer: &Option<String>| pointer.as_deref().and_then(|p| v.pointer(p));
        if let Some(err) = at(&x.error).filter(|e| truthy(e)) {
            let message = message_of(err).unwrap_or_else(|| bounded(&err.to_string()));
            sink(Event::Error {
                message: Cow::Owned(message),
            });
            return Ok(());
        }
        for (pointer, channel) in [(&x.reasoning, Channel::Reasoning), (&x.text, Channel::Text)] {
            if let Some(text) = at(pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                sink(Event::Token {
                    channel,
                    text: Cow::Borrowed(text),
                });
            }
        }
        if x.text.is_none() && x.reasoning.is_none() {
            sink(Event::Token {
                channel: Channel::Text,
                text: Cow::Borrowed(f.data),
            });
        }
        let model = at(&x.model).and_then(Value::as_str);
        self.identity.observe(model, None, sink);
        let usage = Usage {
            output_tokens: at(&x.output_tokens).and_then(Value::as_u64),
            input_tokens: at(&x.input_tokens).and_then(Value::as_u64),
            cached_input_tokens: at(&x.cached_input_tokens).and_then(Value::as_u64),
            reasoning_tokens: None,
        };
        if !usage.is_empty() {
            sink(Event::Usage(usage));
        }
        if let Some(done) = at(&x.done).filter(|d| truthy(d)) {
            // A string done value (e.g. `/choices/0/finish_reason`) is the finish reason.
            sink(Event::Done {
                finish_reason: done.as_str().map(Cow::Borrowed),
            });
        }
        Ok(())
    }
}
