//! OpenAI Responses API streams (`openai-responses`, `POST /v1/responses`): typed events whose
//! JSON `type` repeats the SSE event name.
//!
//! Does not: reassemble output items. Only deltas matter for timing: `output_text` and
//! `refusal` deltas are text, `reasoning_summary_text`/`reasoning_text` deltas reasoning, and
//! function/custom-tool/MCP argument deltas the tool channel. `response.completed` is the
//! terminator and carries `response.usage` (`output_tokens`, `input_tokens`,
//! `input_tokens_details.cached_tokens`, `output_tokens_details.reasoning_tokens`);
//! `response.incomplete` (hit `max_output_tokens`) also ends the stream normally. Every
//! lifecycle event (`response.created`, `.in_progress`, `.completed`) carries
//! `response.model`; the Responses API has no `system_fingerprint`. `error` and `response.failed` are
//! in-band errors — a quota failure arrives as HTTP 200 followed by both.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::identity::Identity;
use super::json::{Count, Details, Str, bounded, message_of};
use super::{Channel, DecodeError, Event, Frame, Protocol, Usage, malformed};

#[derive(Deserialize)]
struct ResponseEvent<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Str<'a>,
    #[serde(borrow, default)]
    delta: Str<'a>,
    #[serde(borrow, default)]
    response: Option<Response<'a>>,
    /// `error` events: the documented shape has a top-level `message`; recordings also show a
    /// nested `error` object.
    #[serde(default)]
    error: Option<Value>,
    #[serde(borrow, default)]
    message: Str<'a>,
}

#[derive(Deserialize, Default)]
struct Response<'a> {
    #[serde(borrow, default)]
    status: Str<'a>,
    #[serde(borrow, default)]
    model: Str<'a>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens: Count,
    #[serde(default)]
    input_tokens_details: Details,
    #[serde(default)]
    output_tokens_details: Details,
}

impl WireUsage {
    fn usage(&self) -> Usage {
        Usage {
            output_tokens: self.output_tokens,
            input_tokens: self.input_tokens.0,
            cached_input_tokens: self.input_tokens_details.cached_tokens.0,
            reasoning_tokens: self.output_tokens_details.reasoning_tokens.0,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Responses {
    identity: Identity,
}

impl Responses {
    pub(crate) fn frame(
        &mut self,
        f: Frame<'_>,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let data = f.data.trim_ascii();
        if data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let ev: ResponseEvent =
            serde_json::from_str(data).map_err(|e| malformed(Protocol::OpenAiResponses, &e))?;
        let kind = ev.kind.as_str().unwrap_or(f.event);
        if let Some(response) = &ev.response {
            self.identity.observe(response.model.as_str(), None, sink);
        }
        match kind {
            "response.output_text.delta" | "response.refusal.delta" => {
                ev.delta.emit(Channel::Text, sink)
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                ev.delta.emit(Channel::Reasoning, sink)
            }
            "response.function_call_arguments.delta"
            | "response.custom_tool_call_input.delta"
            | "response.mcp_call_arguments.delta" => ev.delta.emit(Channel::Tool, sink),
            "response.completed" | "response.incomplete" => {
                let response = ev.response.unwrap_or_default();
                if let Some(usage) = response.usage.map(|u| u.usage()).filter(|u| !u.is_empty()) {
                    sink(Event::Usage(usage));
                }
                let status =
                    response
                        .status
                        .0
                        .unwrap_or(Cow::Borrowed(if kind == "response.completed" {
                            "completed"
                        } else {
                            "incomplete"
                        }));
                sink(Event::Done {
                    finish_reason: Some(status),
                });
            }
            "response.failed" => {
                let message = ev
                    .response
                    .and_then(|r| r.error)
                    .and_then(|e| message_of(&e))
                    .unwrap_or_else(|| "response failed".to_owned());
                sink(Event::Error {
                    message: Cow::Owned(message),
                });
            }
            "error" => {
                let message = ev
                    .message
                    .as_str()
                    .map(bounded)
                    .or_else(|| ev.error.as_ref().and_then(message_of))
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
