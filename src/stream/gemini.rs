//! Google Gemini / Vertex AI `streamGenerateContent?alt=sse` streams (`gemini`).
//!
//! Does not: handle the default (non-`alt=sse`) response, which is one JSON array, not a stream
//! of events. Parts with `thought: true` are reasoning (thought summaries); other text parts
//! are text; a `functionCall` part arrives whole and counts as one tool token (its name).
//! `usageMetadata` repeats on every chunk, but `candidatesTokenCount` appears only once known
//! — the last value is the count; `promptTokenCount` (input, cached part included),
//! `cachedContentTokenCount` (cached input) and `thoughtsTokenCount` (reasoning, not part of
//! `candidatesTokenCount`) are reported as they come. `modelVersion` names the responding
//! model (Vertex AI streams may omit it). Gemini has no terminal event: a chunk with a `finishReason`
//! followed by EOF is a clean end (Vertex repeats `finishReason: STOP` on every chunk, so only
//! EOF can tell), and `Done` is reported by `finish`. A blocked prompt (`promptFeedback.
//! blockReason`, no candidates) and `{"error": ..}` are in-band errors.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::identity::Identity;
use super::json::{Count, Few, Str, message_of};
use super::{Channel, DecodeError, Event, Frame, Protocol, Usage, json_frame};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse<'a> {
    #[serde(borrow, default)]
    candidates: Few<Candidate<'a>>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(borrow, default)]
    model_version: Str<'a>,
    #[serde(borrow, default)]
    prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    finish_reason: Str<'a>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    parts: Few<Part<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Str<'a>,
    #[serde(default)]
    thought: bool,
    #[serde(borrow, default)]
    function_call: Option<FunctionCall<'a>>,
}

#[derive(Deserialize)]
struct FunctionCall<'a> {
    #[serde(borrow, default)]
    name: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    prompt_token_count: Count,
    #[serde(default)]
    cached_content_token_count: Count,
    #[serde(default)]
    thoughts_token_count: Count,
}

impl UsageMetadata {
    fn usage(&self) -> Usage {
        Usage {
            output_tokens: self.candidates_token_count,
            input_tokens: self.prompt_token_count.0,
            cached_input_tokens: self.cached_content_token_count.0,
            reasoning_tokens: self.thoughts_token_count.0,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback<'a> {
    #[serde(borrow, default)]
    block_reason: Str<'a>,
}

#[derive(Debug, Default)]
pub(crate) struct Gemini {
    finish_reason: Option<String>,
    done: bool,
    identity: Identity,
}

impl Gemini {
    pub(crate) fn frame(
        &mut self,
        f: Frame<'_>,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let Some(resp) = json_frame::<GenerateResponse>(&f, Protocol::Gemini)? else {
            return Ok(());
        };
        if let Some(err) = resp.error.as_ref().filter(|e| !e.is_null()) {
            let message = message_of(err).unwrap_or_else(|| "error".to_owned());
            sink(Event::Error {
                message: Cow::Owned(message),
            });
            return Ok(());
        }
        if let Some(reason) = resp.prompt_feedback.and_then(|p| p.block_reason.0)
            && resp.candidates.is_empty()
        {
            sink(Event::Error {
                message: Cow::Owned(format!("prompt blocked: {reason}")),
            });
            return Ok(());
        }
        self.identity
            .observe(resp.model_version.as_str(), None, sink);
        for candidate in resp.candidates {
            if let Some(content) = candidate.content {
                for part in content.parts {
                    let channel = if part.thought {
                        Channel::Reasoning
                    } else {
                        Channel::Text
                    };
                    part.text.emit(channel, sink);
                    if let Some(call) = part.function_call {
                        call.name.emit(Channel::Tool, sink);
                    }
                }
            }
            if let Some(reason) = candidate.finish_reason.non_empty() {
                self.finish_reason = Some(reason.to_string());
            }
        }
        if let Some(usage) = resp
            .usage_metadata
            .map(|u| u.usage())
            .filter(|u| !u.is_empty())
        {
            sink(Event::Usage(usage));
        }
        Ok(())
    }

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
