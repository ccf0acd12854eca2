//! Dify app streams (`dify`): `/chat-messages`, `/completion-messages`, `/workflows/run`.
//!
//! Does not: follow workflow node events. Dify names the event inside the JSON (`"event":
//! "message"`), usually with no SSE `event:` line, so the JSON field decides and the SSE name is
//! only a fallback. `message`/`agent_message` carry `answer` text; workflow `text_chunk`
//! carries `data.text`; `agent_thought` reports a finished thought (not a streamed token).
//! `message_end` is the terminator and carries `metadata.usage` (`completion_tokens`,
//! `prompt_tokens`); Dify's stream does not name the model that answered. A workflow
//! run ends with `workflow_finished` (a failed one is an error); chat-flow apps send it before
//! `message_end`, so it only counts as the end when the stream closes without `message_end`.
//! `error` events are in-band errors; `ping` keeps the connection alive.

use std::borrow::Cow;

use serde::Deserialize;

use super::json::{Count, Str, bounded};
use super::{Channel, DecodeError, Event, Frame, Protocol, Usage, json_frame};

#[derive(Deserialize)]
struct DifyEvent<'a> {
    #[serde(borrow, default)]
    event: Str<'a>,
    #[serde(borrow, default)]
    answer: Str<'a>,
    #[serde(borrow, default)]
    data: Option<WorkflowData<'a>>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(borrow, default)]
    message: Str<'a>,
    #[serde(borrow, default)]
    code: Str<'a>,
}

#[derive(Deserialize)]
struct WorkflowData<'a> {
    #[serde(borrow, default)]
    text: Str<'a>,
    #[serde(borrow, default)]
    status: Str<'a>,
    #[serde(borrow, default)]
    error: Str<'a>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens: Count,
}

#[derive(Debug, Default)]
pub(crate) struct Dify {
    workflow_finished: bool,
    done: bool,
}

impl Dify {
    pub(crate) fn frame(
        &mut self,
        f: Frame<'_>,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let Some(ev) = json_frame::<DifyEvent>(&f, Protocol::Dify)? else {
            return Ok(());
        };
        match ev.event.as_str().unwrap_or(f.event) {
            "message" | "agent_message" => ev.answer.emit(Channel::Text, sink),
            "text_chunk" => {
                if let Some(d) = ev.data {
                    d.text.emit(Channel::Text, sink);
                }
            }
            "message_end" => {
                let usage = ev.metadata.and_then(|m| m.usage).map(|u| Usage {
                    output_tokens: u.completion_tokens,
                    input_tokens: u.prompt_tokens.0,
                    ..Usage::default()
                });
                if let Some(usage) = usage.filter(|u| !u.is_empty()) {
                    sink(Event::Usage(usage));
                }
                self.done = true;
                sink(Event::Done {
                    finish_reason: None,
                });
            }
            "workflow_finished" => match ev.data {
                Some(d) if d.status.is("failed") => {
                    let message = d
                        .error
                        .as_str()
                        .map_or_else(|| "workflow failed".to_owned(), bounded);
                    sink(Event::Error {
                        message: Cow::Owned(message),
                    });
                }
                _ => self.workflow_finished = true,
            },
            "error" => {
                let message = ev
                    .message
                    .as_str()
                    .or(ev.code.as_str())
                    .map_or_else(|| "error".to_owned(), bounded);
                sink(Event::Error {
                    message: Cow::Owned(message),
                });
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        if self.workflow_finished && !self.done {
            self.done = true;
            sink(Event::Done {
                finish_reason: Some(Cow::Borrowed("workflow_finished")),
            });
        }
    }
}
