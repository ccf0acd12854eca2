//! Hugging Face Text Generation Inference native streams (`tgi`, `POST /generate_stream`).
//!
//! Does not: read TGI's OpenAI-compatible `/v1/chat/completions` (that is `openai`). Each event
//! carries one `token`; `special: true` tokens (EOS and friends) are not generated text. The
//! last event has a non-null `generated_text` and `details.generated_tokens`: the terminator
//! and the usage (`details.input_length`, TGI ≥ 2, is the input). The native stream does not
//! name the model. `{"error": "..", "error_type": ..}` is an in-band error.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::json::{Count, Str, message_of};
use super::{Channel, DecodeError, Event, Frame, Protocol, Usage, json_frame};

#[derive(Deserialize)]
struct StreamResponse<'a> {
    #[serde(borrow, default)]
    token: Option<Token<'a>>,
    #[serde(borrow, default)]
    generated_text: Str<'a>,
    #[serde(borrow, default)]
    details: Option<Details<'a>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Token<'a> {
    #[serde(borrow, default)]
    text: Str<'a>,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct Details<'a> {
    #[serde(borrow, default)]
    finish_reason: Str<'a>,
    #[serde(default)]
    generated_tokens: Option<u64>,
    #[serde(default)]
    input_length: Count,
}

#[derive(Debug, Default)]
pub(crate) struct Tgi;

impl Tgi {
    pub(crate) fn frame(
        &mut self,
        f: Frame<'_>,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let Some(ev) = json_frame::<StreamResponse>(&f, Protocol::Tgi)? else {
            return Ok(());
        };
        if let Some(err) = ev.error.as_ref().filter(|e| !e.is_null()) {
            let message = message_of(err).unwrap_or_else(|| "error".to_owned());
            sink(Event::Error {
                message: Cow::Owned(message),
            });
            return Ok(());
        }
        if let Some(token) = ev.token
            && !token.special
        {
            token.text.emit(Channel::Text, sink);
        }
        if ev.generated_text.0.is_some() {
            let (finish_reason, usage) = match ev.details {
                Some(d) => (
                    d.finish_reason.0,
                    Usage {
                        output_tokens: d.generated_tokens,
                        input_tokens: d.input_length.0,
                        ..Usage::default()
                    },
                ),
                None => (None, Usage::default()),
            };
            if !usage.is_empty() {
                sink(Event::Usage(usage));
            }
            sink(Event::Done { finish_reason });
        }
        Ok(())
    }
}
