//! Where a request body keeps its prompt, for `cache_bust: prefix`: the string the nonce goes in
//! front of, found by the body's shape so it works for every protocol (and `auto`) alike.
//!
//! | body | prompt string |
//! |---|---|
//! | `messages` (OpenAI chat, Anthropic, Ollama chat) | the first user message's `content`, or its first text part |
//! | `contents` (Gemini) | the first user content's first `parts[].text` |
//! | `input` (OpenAI Responses) | `input` itself, or the first user message's content as above |
//! | `prompt` (completions, Ollama generate, llama.cpp) | `prompt`, or its first entry |
//! | `inputs` (TGI), `query` (Dify) | the string itself |
//!
//! Paths are spelled as `compile.rs` spells them (`body.messages[0].content`), so the compiler
//! can recognise the string when it reaches it. Does not: compile anything.

use crate::config::raw::{Mapping, Value};

/// The prompt fields this module knows, for messages.
pub(super) const PROMPT_FIELDS: &str = "messages, contents, input, prompt, inputs or query";

/// The path of the prompt string in `body` (whose own path is `path`), or `None`.
pub(super) fn prompt_path(body: &Value, path: &str) -> Option<String> {
    let map = body.as_mapping()?;
    if let Some(messages) = get(map, "messages") {
        return first_user_text(messages, &format!("{path}.messages"), "content");
    }
    if let Some(contents) = get(map, "contents") {
        return first_user_text(contents, &format!("{path}.contents"), "parts");
    }
    if let Some(input) = get(map, "input") {
        let at = format!("{path}.input");
        return match input {
            Value::String(_) => Some(at),
            _ => first_user_text(input, &at, "content"),
        };
    }
    if let Some(prompt) = get(map, "prompt") {
        let at = format!("{path}.prompt");
        return match prompt {
            Value::String(_) => Some(at),
            Value::Sequence(items) if matches!(items.first(), Some(Value::String(_))) => {
                Some(format!("{at}[0]"))
            }
            _ => None,
        };
    }
    for field in ["inputs", "query"] {
        if let Some(Value::String(_)) = get(map, field) {
            return Some(format!("{path}.{field}"));
        }
    }
    None
}

fn get<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    map.get(Value::String(key.to_owned()))
}

/// In a list of messages, the first one whose `role` is `user` (or that has no role, as Gemini
/// allows): its `field` when that is a string, else the first `text` string among its parts.
fn first_user_text(list: &Value, at: &str, field: &str) -> Option<String> {
    let Value::Sequence(items) = list else {
        return None;
    };
    let (i, message) = items.iter().enumerate().find(|(_, m)| {
        m.as_mapping().is_some_and(|m| match get(m, "role") {
            Some(Value::String(role)) => role == "user",
            None => true,
            Some(_) => false,
        })
    })?;
    let message = message.as_mapping()?;
    let at = format!("{at}[{i}].{field}");
    match get(message, field)? {
        Value::String(_) => Some(at),
        Value::Sequence(parts) => parts.iter().enumerate().find_map(|(j, part)| {
            let part = part.as_mapping()?;
            matches!(get(part, "text"), Some(Value::String(_))).then(|| format!("{at}[{j}].text"))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(yaml: &str) -> Option<String> {
        let value: Value = serde_yaml::from_str(yaml).unwrap();
        prompt_path(&value, "body")
    }

    #[test]
    fn every_protocols_prompt_field() {
        let cases = [
            // OpenAI chat: the first user message, after a system message.
            (
                "{model: m, messages: [{role: system, content: be brief}, {role: user, content: hi}]}",
                "body.messages[1].content",
            ),
            // Anthropic content blocks.
            (
                "{messages: [{role: user, content: [{type: image, source: {}}, {type: text, text: hi}]}]}",
                "body.messages[0].content[1].text",
            ),
            ("{prompt: hi, max_tokens: 5}", "body.prompt"),
            ("{prompt: [hi, there]}", "body.prompt[0]"),
            ("{model: m, input: hi}", "body.input"),
            (
                "{input: [{role: user, content: [{type: input_text, text: hi}]}]}",
                "body.input[0].content[0].text",
            ),
            (
                "{contents: [{role: user, parts: [{text: hi}]}]}",
                "body.contents[0].parts[0].text",
            ),
            (
                "{contents: [{parts: [{text: hi}]}]}",
                "body.contents[0].parts[0].text",
            ),
            ("{inputs: hi, parameters: {}}", "body.inputs"),
            ("{query: hi, inputs: {}}", "body.query"),
        ];
        for (yaml, want) in cases {
            assert_eq!(path_of(yaml).as_deref(), Some(want), "{yaml}");
        }
    }

    #[test]
    fn bodies_without_a_prompt() {
        for yaml in [
            "{model: m}",
            "{messages: [{role: assistant, content: hi}]}",
            "{messages: [{role: user, content: [{type: image}]}]}",
            "{prompt: 5}",
            "just text",
        ] {
            assert_eq!(path_of(yaml), None, "{yaml}");
        }
    }
}
