//! Anthropic Messages streams (`anthropic`, `POST /v1/messages`; also Bedrock and Vertex
//! relays of the same events).
//!
//! Does not: reassemble content blocks. `content_block_delta` carries the tokens: `text_delta`
//! (text), `thinking_delta` (reasoning), `input_json_delta` (tool arguments); signature and
//! citation deltas are not generated text. `message_start` carries `message.model` and the
//! input usage, with a *provisional* output count (typically 1) that is deliberately not
//! reported: only `message_delta.usage.output_tokens` (cumulative, the last one final) is.
//! Anthropic's `input_tokens` excludes the prompt-cache reads and writes
//! (`cache_read_input_tokens`, `cache_creation_input_tokens`); the whole prompt, the sum of
//! the three, is reported as input, cache reads as cached input. `message_delta` may repeat
//! them (cumulative) and then updates them. `message_stop` is the terminator;
//! `event: error` (e.g. `overloaded_error` after HTTP 200) an in-band error; `ping` nothing.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::identity::Identity;
use super::json::{Count, Str, message_of};
use super::{Channel, DecodeError, Event, Frame, Protocol, Usage, json_frame};

#[derive(Deserialize)]
struct MessageEvent<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Str<'a>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    /// `message_start` only.
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    model: Str<'a>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Str<'a>,
    #[serde(borrow, default)]
    text: Str<'a>,
    #[serde(borrow, default)]
    thinking: Str<'a>,
    #[serde(borrow, default)]
    partial_json: Str<'a>,
    #[serde(borrow, default)]
    stop_reason: Str<'a>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens: Count,
    #[serde(default)]
    cache_read_input_tokens: Count,
    #[serde(default)]
    cache_creation_input_tokens: Count,
}

#[derive(Debug, Default)]
pub(crate) struct Anthropic {
    /// From `message_delta`, reported with `Done` at `message_stop`.
    stop_reason: Option<String>,
    identity: Identity,
    /// The input counts seen so far (uncached, cache reads, cache writes): a later event may
    /// repeat only some of them.
    input: [Option<u64>; 3],
}

impl Anthropic {
    /// The usage an event reports; `with_output` is false for `message_start`'s provisional
    /// output count.
    fn usage(&mut self, wire: &WireUsage, with_output: bool) -> Usage {
        let parts = [
            wire.input_tokens.0,
            wire.cache_read_input_tokens.0,
            wire.cache_creation_input_tokens.0,
        ];
        for (kept, new) in self.input.iter_mut().zip(parts) {
            *kept = new.or(*kept);
        }
        let said_input = parts.iter().any(Option::is_some);
        let [uncached, read, written] = self.input;
        Usage {
            output_tokens: wire.output_tokens.filter(|_| with_output),
            input_tokens: uncached
                .filter(|_| said_input)
                .map(|n| n + read.unwrap_or(0) + written.unwrap_or(0)),
            cached_input_tokens: read.filter(|_| said_input),
            reasoning_tokens: None,
        }
    }
}

impl Anthropic {
    pub(crate) fn frame(
        &mut self,
        f: Frame<'_>,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let Some(ev) = json_frame::<MessageEvent>(&f, Protocol::Anthropic)? else {
            return Ok(());
        };
        match ev.kind.as_str().unwrap_or(f.event) {
            "message_start" => {
                if let Some(message) = ev.message {
                    self.identity.observe(message.model.as_str(), None, sink);
                    if let Some(wire) = &message.usage {
                        let usage = self.usage(wire, false);
                        if !usage.is_empty() {
                            sink(Event::Usage(usage));
                        }
                    }
                }
            }
            "content_block_delta" => {
                if let Some(d) = ev.delta {
                    match d.kind.as_str() {
                        Some("text_delta") => d.text.emit(Channel::Text, sink),
                        Some("thinking_delta") => d.thinking.emit(Channel::Reasoning, sink),
                        Some("input_json_delta") => d.partial_json.emit(Channel::Tool, sink),
                        _ => {}
                    }
                }
            }
            "message_delta" => {
                if let Some(reason) = ev.delta.as_ref().and_then(|d| d.stop_reason.non_empty()) {
                    self.stop_reason = Some(reason.to_string());
                }
                if let Some(wire) = &ev.usage {
                    let usage = self.usage(wire, true);
                    if !usage.is_empty() {
                        sink(Event::Usage(usage));
                    }
                }
            }
            "message_stop" => sink(Event::Done {
                finish_reason: self.stop_reason.as_deref().map(Cow::Borrowed),
            }),
            "error" => {
                let message = ev
                    .error
                    .as_ref()
                    .and_then(message_of)
                    .unwrap_or_else(|| "error".to_owned());
                sink(Event::Error {
                    message: Cow::Owned(message),
                });
            }
            _ => {}
        }
        Ok(())
    }
}
