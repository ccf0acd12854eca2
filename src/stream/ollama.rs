//! Ollama native NDJSON streams (`ollama`): `/api/chat` (`message.content`,
//! `message.thinking`, `message.tool_calls`) and `/api/generate` (`response`, `thinking`).
//!
//! Does not: read Ollama's OpenAI-compatible `/v1` endpoints (that is `openai`). Every line
//! names the `model`. The line with `done: true` is the terminator and carries `eval_count`
//! (output tokens), `prompt_eval_count` (input tokens; Ollama counts only the prompt tokens it
//! evaluated, so a prompt served from its cache counts less) and `done_reason`.
//! Tool calls arrive whole in one line; each counts as one tool token (the function name). A
//! line `{"error": ".."}` — e.g. the model crashed mid-generation after HTTP 200 — is an
//! in-band error.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::identity::Identity;
use super::json::{Count, Few, Str, message_of};
use super::{Channel, DecodeError, Event, Frame, Protocol, Usage, json_frame};

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    response: Str<'a>,
    #[serde(borrow, default)]
    thinking: Str<'a>,
    #[serde(default)]
    done: bool,
    #[serde(borrow, default)]
    done_reason: Str<'a>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    prompt_eval_count: Count,
    #[serde(borrow, default)]
    model: Str<'a>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Str<'a>,
    #[serde(borrow, default)]
    thinking: Str<'a>,
    #[serde(borrow, default)]
    tool_calls: Few<ToolCall<'a>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Str<'a>,
}

#[derive(Debug, Default)]
pub(crate) struct Ollama {
    identity: Identity,
}

impl Ollama {
    pub(crate) fn frame(
        &mut self,
        f: Frame<'_>,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let Some(line) = json_frame::<Line>(&f, Protocol::Ollama)? else {
            return Ok(());
        };
        if let Some(err) = line.error.as_ref().filter(|e| !e.is_null()) {
            let message = message_of(err).unwrap_or_else(|| "error".to_owned());
            sink(Event::Error {
                message: Cow::Owned(message),
            });
            return Ok(());
        }
        self.identity.observe(line.model.as_str(), None, sink);
        if let Some(m) = line.message {
            m.thinking.emit(Channel::Reasoning, sink);
            m.content.emit(Channel::Text, sink);
            for call in m.tool_calls {
                if let Some(function) = call.function {
                    function.name.emit(Channel::Tool, sink);
                }
            }
        }
        line.thinking.emit(Channel::Reasoning, sink);
        line.response.emit(Channel::Text, sink);
        if line.done {
            let usage = Usage {
                output_tokens: line.eval_count,
                input_tokens: line.prompt_eval_count.0,
                ..Usage::default()
            };
            if !usage.is_empty() {
                sink(Event::Usage(usage));
            }
            sink(Event::Done {
                finish_reason: line.done_reason.0,
            });
        }
        Ok(())
    }
}
