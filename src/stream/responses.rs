//! OpenAI Responses API streams (`openai-responses`, `POST /v1/responses`): typed events whose
//! JSON `type` repeats the SSE event name.
//!
//! Does not: reassemble output items. Only deltas matter for timing: `output_text` and
//! `refusal` deltas are text, `reasoning_summary_text`/`reasoning_text` deltas reasoning, and
//! function/custom-tool/MCP argument deltas the tool channel. `response.completed` is the
//! terminator and carries `response.usage.output_tokens`; `response.incomplete` (hit
//! `max_output_tokens`) also ends the stream normally. `error` and `response.failed` are
//! in-band errors — a quota failure arrives as HTTP 200 followed by both.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::json::{Str, bounded, message_of};
use super::{Channel, DecodeError, Event, Frame, Protocol, malformed};

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

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    status: Str<'a>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    output_tokens: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Responses;

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
                let response = ev.response.unwrap_or(Response {
                    status: Str::default(),
                    usage: None,
                    error: None,
                });
                if let Some(output_tokens) = response.usage.and_then(|u| u.output_tokens) {
                    sink(Event::Usage { output_tokens });
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
