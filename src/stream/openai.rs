//! OpenAI Chat Completions and legacy Completions streams (`openai`, `openai-completions`), and
//! the many servers that copy them (vLLM, DeepSeek, llama.cpp, TGI, Ollama `/v1`, LiteLLM, ...).
//!
//! Does not: frame bytes (SSE does) or decide the protocol (auto detection does).
//!
//! Quirks handled, each seen in recordings:
//! * the first chunk is role-only with `content: ""` — not a token;
//! * `reasoning_content` (DeepSeek, vLLM) and `reasoning` (OpenRouter, Ollama) deltas are the
//!   reasoning channel; `tool_calls[].function.arguments` deltas the tool channel; `refusal`
//!   deltas are text the user sees;
//! * usage comes in a chunk with `choices: []` (OpenAI `include_usage`), on the finish chunk
//!   (DeepSeek), or on every chunk as a running count (vLLM continuous usage) — every value is
//!   reported and the caller keeps the last;
//! * errors inside a 200 stream: `{"error": ..}` (vLLM, OpenAI) or `{"object": "error", ..}`
//!   (older vLLM);
//! * `model` and `system_fingerprint` repeat on every chunk (OpenAI, vLLM, DeepSeek; some
//!   servers send `system_fingerprint: null`): reported once, then on change;
//! * usage details: `prompt_tokens` (input), `prompt_tokens_details.cached_tokens` (OpenAI,
//!   vLLM with prefix caching) or DeepSeek's `prompt_cache_hit_tokens` (cached input),
//!   `completion_tokens_details.reasoning_tokens` (OpenAI o-series, DeepSeek reasoner).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::identity::Identity;
use super::json::{Count, Details, Few, Str, bounded, message_of};
use super::{Channel, DecodeError, Event, Frame, Protocol, Usage, malformed};

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Few<Choice<'a>>,
    // Rare fields boxed: a chunk is moved several times while it is parsed, and most chunks
    // carry none of them (issue 13: fewer bytes copied per event).
    #[serde(default)]
    usage: Option<Box<WireUsage>>,
    #[serde(borrow, default)]
    model: Str<'a>,
    #[serde(borrow, default)]
    system_fingerprint: Str<'a>,
    #[serde(borrow, default)]
    object: Str<'a>,
    #[serde(default)]
    error: Option<Box<Value>>,
    #[serde(borrow, default)]
    message: Str<'a>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    /// Legacy completions put the token here instead of in a delta.
    #[serde(borrow, default)]
    text: Str<'a>,
    #[serde(borrow, default)]
    finish_reason: Str<'a>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Str<'a>,
    #[serde(borrow, default)]
    reasoning_content: Str<'a>,
    #[serde(borrow, default)]
    reasoning: Str<'a>,
    #[serde(borrow, default)]
    refusal: Str<'a>,
    #[serde(borrow, default)]
    tool_calls: Option<Box<Few<ToolCall<'a>>>>,
    /// Pre-`tools` function calling, still emitted by some compatible servers.
    #[serde(borrow, default)]
    function_call: Option<Box<Function<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    arguments: Str<'a>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens: Count,
    #[serde(default)]
    prompt_tokens_details: Details,
    #[serde(default)]
    completion_tokens_details: Details,
    /// DeepSeek's context-cache hits (before it also sent `prompt_tokens_details`).
    #[serde(default)]
    prompt_cache_hit_tokens: Count,
}

impl WireUsage {
    fn usage(&self) -> Usage {
        Usage {
            output_tokens: self.completion_tokens,
            input_tokens: self.prompt_tokens.0,
            cached_input_tokens: self
                .prompt_tokens_details
                .cached_tokens
                .0
                .or(self.prompt_cache_hit_tokens.0),
            reasoning_tokens: self.completion_tokens_details.reasoning_tokens.0,
        }
    }
}

#[derive(Debug)]
pub(crate) struct OpenAi {
    protocol: Protocol,
    /// The last non-empty `finish_reason`, reported with `Done`.
    finish_reason: Option<String>,
    done: bool,
    identity: Identity,
}

impl OpenAi {
    /// `protocol` is `OpenAi` or `OpenAiCompletions`; both shapes are read either way, it only
    /// names the protocol in errors.
    pub(crate) fn new(protocol: Protocol) -> Self {
        OpenAi {
            protocol,
            finish_reason: None,
            done: false,
            identity: Identity::default(),
        }
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub(crate) fn frame(
        &mut self,
        f: Frame<'_>,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let data = f.data.trim_ascii();
        if data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            self.done = true;
            sink(Event::Done {
                finish_reason: self.finish_reason.as_deref().map(Cow::Borrowed),
            });
            return Ok(());
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| malformed(self.protocol, &e))?;
        if let Some(err) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            let message = message_of(err).unwrap_or_else(|| "error".to_owned());
            sink(Event::Error {
                message: Cow::Owned(message),
            });
            return Ok(());
        }
        if chunk.object.is("error") {
            let message = chunk
                .message
                .as_str()
                .map_or_else(|| "error".to_owned(), bounded);
            sink(Event::Error {
                message: Cow::Owned(message),
            });
            return Ok(());
        }
        self.identity.observe(
            chunk.model.as_str(),
            chunk.system_fingerprint.as_str(),
            sink,
        );
        for choice in chunk.choices {
            if let Some(d) = choice.delta {
                d.reasoning_content.emit(Channel::Reasoning, sink);
                d.reasoning.emit(Channel::Reasoning, sink);
                d.content.emit(Channel::Text, sink);
                d.refusal.emit(Channel::Text, sink);
                for call in d.tool_calls.into_iter().flat_map(|calls| *calls) {
                    if let Some(function) = call.function {
                        function.arguments.emit(Channel::Tool, sink);
                    }
                }
                if let Some(function) = d.function_call {
                    function.arguments.emit(Channel::Tool, sink);
                }
            }
            choice.text.emit(Channel::Text, sink);
            if let Some(reason) = choice.finish_reason.non_empty() {
                self.finish_reason = Some(reason.to_string());
            }
        }
        if let Some(usage) = chunk.usage.map(|u| u.usage()).filter(|u| !u.is_empty()) {
            sink(Event::Usage(usage));
        }
        Ok(())
    }

    /// `[DONE]` is the terminator, but some compatible servers close the stream right after
    /// the finish chunk without it; a stream that reported a `finish_reason` ended normally.
    pub(crate) fn finish(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        if !self.done
            && let Some(reason) = &self.finish_reason
        {
            self.done = true;
            sink(Event::Done {
                finish_reason: Some(Cow::Borrowed(reason)),
            });
        }
    }
}
