//! `protocol: auto`: choosing the framing and dialect from what is known before the body (URL
//! path, `Content-Type`) and, when that is not enough, from the first event's shape.
//!
//! Does not: parse beyond the first event, or ever change its mind once decided.

use serde_json::Value;

use super::{Extract, Frame, Protocol};
use crate::config::Endpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Sse,
    Ndjson,
    Raw,
}

impl Framing {
    pub(crate) fn of(protocol: Protocol) -> Framing {
        match protocol {
            Protocol::Ollama | Protocol::Ndjson => Framing::Ndjson,
            Protocol::Raw => Framing::Raw,
            _ => Framing::Sse,
        }
    }
}

pub use crate::config::llama_cpp_extract;

/// The dialect an endpoint path implies: the well-known route of each API (the table lives in
/// `config::Endpoint`, which also gives each route its default request body).
pub(crate) fn from_url_path(path: &str) -> Option<(Protocol, Option<Extract>)> {
    Endpoint::from_url_path(path).map(|e| (e.protocol(), e.extract()))
}

/// The framing a `Content-Type` implies, if it says anything.
pub(crate) fn from_content_type(content_type: &str) -> Option<Framing> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "text/event-stream" => Some(Framing::Sse),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines"
        | "application/stream+json"
        | "application/json" => Some(Framing::Ndjson),
        "" => None,
        m if m.starts_with("text/") || m == "application/octet-stream" => Some(Framing::Raw),
        _ => None,
    }
}

/// Framing from the first bytes when neither URL nor `Content-Type` told: SSE field names,
/// a JSON object, or anything else (raw).
pub(crate) fn sniff(prefix: &[u8]) -> Framing {
    let p = prefix
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(prefix)
        .trim_ascii_start();
    let sse = [&b"data:"[..], b"event:", b"id:", b"retry:", b":"];
    if sse.iter().any(|f| p.starts_with(f)) {
        Framing::Sse
    } else if p.starts_with(b"{") {
        Framing::Ndjson
    } else {
        Framing::Raw
    }
}

/// The dialect the first event's shape implies.
pub(crate) fn from_first_frame(f: &Frame<'_>, framing: Framing) -> (Protocol, Option<Extract>) {
    let generic = if framing == Framing::Ndjson {
        Protocol::Ndjson
    } else {
        Protocol::Sse
    };
    if f.event.starts_with("response.") {
        return (Protocol::OpenAiResponses, None);
    }
    let data = f.data.trim_ascii();
    if data == "[DONE]" {
        return (Protocol::OpenAi, None);
    }
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(data) else {
        return (generic, None);
    };
    let str_field = |k: &str| obj.get(k).and_then(Value::as_str);
    let has = |k: &str| obj.contains_key(k);
    let protocol = match str_field("type") {
        Some(t) if t.starts_with("response.") => Protocol::OpenAiResponses,
        Some(
            "message_start"
            | "content_block_start"
            | "content_block_delta"
            | "content_block_stop"
            | "message_delta"
            | "message_stop"
            | "ping",
        ) => Protocol::Anthropic,
        _ if str_field("event").is_some() => Protocol::Dify,
        _ if has("candidates") || has("usageMetadata") || has("promptFeedback") => Protocol::Gemini,
        _ if has("choices") => {
            let first = obj.get("choices").and_then(|c| c.get(0));
            let legacy = str_field("object") == Some("text_completion")
                || first.is_some_and(|c| c.get("text").is_some() && c.get("delta").is_none());
            if legacy {
                Protocol::OpenAiCompletions
            } else {
                Protocol::OpenAi
            }
        }
        _ if str_field("object").is_some_and(|o| o.starts_with("chat.completion")) => {
            Protocol::OpenAi
        }
        _ if has("token") => Protocol::Tgi,
        _ if has("done") && (has("message") || has("response") || has("model")) => Protocol::Ollama,
        _ if has("content") && has("stop") => return (generic, Some(llama_cpp_extract())),
        // An error as the very first event: any dialect reports it; pick the family's usual one.
        _ if has("error") || str_field("object") == Some("error") => {
            if framing == Framing::Ndjson {
                Protocol::Ollama
            } else {
                Protocol::OpenAi
            }
        }
        Some("error") => Protocol::Anthropic,
        _ => generic,
    };
    (protocol, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths() {
        let p = |s| from_url_path(s).map(|(p, _)| p);
        assert_eq!(p("/v1/chat/completions"), Some(Protocol::OpenAi));
        assert_eq!(p("/v1/completions"), Some(Protocol::OpenAiCompletions));
        assert_eq!(p("/v1/responses/"), Some(Protocol::OpenAiResponses));
        assert_eq!(p("/v1/messages"), Some(Protocol::Anthropic));
        assert_eq!(p("/v1/chat-messages"), Some(Protocol::Dify));
        assert_eq!(
            p("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"),
            Some(Protocol::Gemini)
        );
        assert_eq!(p("/api/generate"), Some(Protocol::Ollama));
        assert_eq!(p("/generate_stream"), Some(Protocol::Tgi));
        assert_eq!(
            from_url_path("/completion"),
            Some((Protocol::Sse, Some(llama_cpp_extract())))
        );
        assert_eq!(p("/stream"), None);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            from_content_type("text/event-stream; charset=utf-8"),
            Some(Framing::Sse)
        );
        assert_eq!(
            from_content_type("application/x-ndjson"),
            Some(Framing::Ndjson)
        );
        assert_eq!(from_content_type("text/plain"), Some(Framing::Raw));
        assert_eq!(from_content_type("application/grpc"), None);
    }

    #[test]
    fn first_frame_shapes() {
        let sse = |event: &str, data: &str| from_first_frame(&Frame { event, data }, Framing::Sse);
        let ndjson = |data: &str| from_first_frame(&Frame { event: "", data }, Framing::Ndjson);
        assert_eq!(sse("response.created", "{}").0, Protocol::OpenAiResponses);
        assert_eq!(
            sse("", r#"{"type":"message_start"}"#).0,
            Protocol::Anthropic
        );
        assert_eq!(
            sse("", r#"{"event": "workflow_started"}"#).0,
            Protocol::Dify
        );
        assert_eq!(sse("", r#"{"candidates": []}"#).0, Protocol::Gemini);
        assert_eq!(sse("", r#"{"choices":[{"delta":{}}]}"#).0, Protocol::OpenAi);
        assert_eq!(
            sse("", r#"{"choices":[{"text":"a"}]}"#).0,
            Protocol::OpenAiCompletions
        );
        assert_eq!(sse("", r#"{"token":{"text":"a"}}"#).0, Protocol::Tgi);
        assert_eq!(sse("", r#"{"error":{"message":"x"}}"#).0, Protocol::OpenAi);
        assert_eq!(
            sse("", r#"{"content":"a","stop":false}"#),
            (Protocol::Sse, Some(llama_cpp_extract()))
        );
        assert_eq!(sse("", "plain words"), (Protocol::Sse, None));
        assert_eq!(
            ndjson(r#"{"model":"m","response":"a","done":false}"#).0,
            Protocol::Ollama
        );
        assert_eq!(ndjson(r#"{"error":"boom"}"#).0, Protocol::Ollama);
        assert_eq!(ndjson(r#"{"x":1}"#), (Protocol::Ndjson, None));
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\xEF\xBB\xBF: hi\n"), Framing::Sse);
        assert_eq!(sniff(b"event: x\n"), Framing::Sse);
        assert_eq!(sniff(b"  {\"a\":1}\n"), Framing::Ndjson);
        assert_eq!(sniff(b"hello"), Framing::Raw);
    }
}
