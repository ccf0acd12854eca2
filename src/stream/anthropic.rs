//! Anthropic Messages streams (`anthropic`, `POST /v1/messages`; also Bedrock and Vertex
//! relays of the same events).
//!
//! Does not: reassemble content blocks. `content_block_delta` carries the tokens: `text_delta`
//! (text), `thinking_delta` (reasoning), `input_json_delta` (tool arguments); signature and
//! citation deltas are not generated text. `message_start` carries a *provisional* output
//! count (typically 1) that is deliberately not reported: only `message_delta.usage.
//! output_tokens` (cumulative, the last one final) is. `message_stop` is the terminator;
//! `event: error` (e.g. `overloaded_error` after HTTP 200) an in-band error; `ping` nothing.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::json::{Str, message_of};
use super::{Channel, DecodeError, Event, Frame, Protocol, json_frame};

#[derive(Deserialize)]
struct MessageEvent<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Str<'a>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
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
struct Usage {
    #[serde(default)]
    output_tokens: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Anthropic {
    /// From `message_delta`, reported with `Done` at `message_stop`.
    stop_reason: Option<String>,
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
                if let Some(output_tokens) = ev.usage.and_then(|u| u.output_tokens) {
                    sink(Event::Usage { output_tokens });
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
