//! What a response body that is not the expected stream says: the message of a non-2xx body
//! (plain JSON, or JSON in SSE `data:` lines or NDJSON lines, as some servers frame their
//! errors like their streams), and whether a 2xx body is one whole JSON document instead of a
//! stream (the server ignored `"stream": true`, or answered with an error object).
//!
//! Does not: classify the failure (the status code and the caller do that) or read streams.

use serde_json::Value;

use super::json::message_of;

/// A human-readable message from a JSON error body, at most 256 characters: OpenAI/vLLM
/// `{"error": {"message": ..}}`, Anthropic `{"type": "error", "error": {..}}`, Gemini (also
/// wrapped in a JSON array), Ollama/TGI `{"error": ".."}`, FastAPI `{"detail": ..}`, vLLM
/// `{"object": "error", "message": ..}`; also when sent as a stream, as SSE (`data: {"error":
/// ..}`) or NDJSON lines: the first line that says something. `None` when the body is not JSON
/// or says nothing.
pub fn error_message(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return message_of(&value);
    }
    body.split(|b| *b == b'\n').find_map(|line| {
        let line = line.trim_ascii();
        let json = line.strip_prefix(b"data:").unwrap_or(line).trim_ascii();
        if !json.starts_with(b"{") && !json.starts_with(b"[") {
            return None;
        }
        let value: Value = serde_json::from_slice(json).ok()?;
        error_shaped(&value).then(|| message_of(&value)).flatten()
    })
}

/// A 2xx body that is one whole JSON document where a stream was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonReply {
    /// An error object (`{"error": ..}` and its kin); its message.
    Error(String),
    /// Anything else, typically a non-streaming completion.
    Document,
}

/// Whether `body` is exactly one JSON object or array (nothing before or after it but
/// whitespace), and if so, whether it is an error. `None` for anything else, NDJSON included.
pub fn json_reply(body: &[u8]) -> Option<JsonReply> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let value: Value = serde_json::from_slice(body).ok()?;
    if !value.is_object() && !value.is_array() {
        return None;
    }
    Some(
        match error_shaped(&value).then(|| message_of(&value)).flatten() {
            Some(message) => JsonReply::Error(message),
            None => JsonReply::Document,
        },
    )
}

/// Whether a JSON value is an error object of a known shape (Gemini's are wrapped in an
/// array), so that a normal event or completion is never mistaken for one.
fn error_shaped(value: &Value) -> bool {
    let value = match value {
        Value::Array(items) => items.first().unwrap_or(value),
        v => v,
    };
    let Value::Object(obj) = value else {
        return false;
    };
    let str_field = |k: &str| obj.get(k).and_then(Value::as_str);
    obj.contains_key("error")
        || obj.contains_key("detail")
        || str_field("type") == Some("error")
        || str_field("object") == Some("error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let m = |s: &str| error_message(s.as_bytes());
        assert_eq!(
            m(r#"{"error":{"message":"bad key","type":"x"}}"#).as_deref(),
            Some("bad key")
        );
        assert_eq!(
            m(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
                .as_deref(),
            Some("Overloaded")
        );
        assert_eq!(
            m(r#"[{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}]"#).as_deref(),
            Some("Resource exhausted")
        );
        assert_eq!(
            m(r#"{"error":"model 'x' not found"}"#).as_deref(),
            Some("model 'x' not found")
        );
        assert_eq!(
            m(r#"{"detail":[{"loc":["body"],"msg":"field required"}]}"#).as_deref(),
            Some("field required")
        );
        assert_eq!(
            m(r#"{"object":"error","message":"too long","code":400}"#).as_deref(),
            Some("too long")
        );
        assert_eq!(m("<html>502 Bad Gateway</html>"), None);
        assert_eq!(m("{}"), None);
    }

    #[test]
    fn errors_framed_as_a_stream() {
        let m = |s: &str| error_message(s.as_bytes());
        // SSE, as vLLM and LiteLLM send a failure on a streaming request.
        assert_eq!(
            m("data: {\"error\":{\"message\":\"model overloaded\",\"code\":500}}\n\n").as_deref(),
            Some("model overloaded")
        );
        // Anthropic's error event, after a ping.
        assert_eq!(
            m(concat!(
                "event: ping\ndata: {\"type\": \"ping\"}\n\n",
                "event: error\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\r\n\r\n"
            ))
            .as_deref(),
            Some("Overloaded")
        );
        // NDJSON, as Ollama streams.
        assert_eq!(
            m("{\"model\":\"m\",\"done\":false}\n{\"error\":\"out of memory\"}\n").as_deref(),
            Some("out of memory")
        );
        assert_eq!(m("data: [DONE]\n\n"), None);
        assert_eq!(
            m("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"),
            None
        );
    }

    #[test]
    fn whole_json_documents() {
        let r = |s: &str| json_reply(s.as_bytes());
        assert_eq!(
            r(
                r#"{"id":"c1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#
            ),
            Some(JsonReply::Document)
        );
        // Anthropic's non-streaming message has a `type` that is not "error".
        assert_eq!(
            r(r#"{"type":"message","content":[{"type":"text","text":"hi"}]}"#),
            Some(JsonReply::Document)
        );
        assert_eq!(
            r("{\n  \"error\": {\"message\": \"stream not supported\"}\n}\n"),
            Some(JsonReply::Error("stream not supported".into()))
        );
        assert_eq!(r("{\"a\":1}\n{\"a\":2}\n"), None, "NDJSON is a stream");
        assert_eq!(r("data: {}\n\n"), None);
        assert_eq!(r("42"), None);
    }
}
