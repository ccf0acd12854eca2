//! The message of a non-2xx response body, for the failure's `error` text.
//!
//! Does not: classify the failure (the status code does that) or read streams.

use serde_json::Value;

use super::json::message_of;

/// A human-readable message from a JSON error body, at most 256 characters: OpenAI/vLLM
/// `{"error": {"message": ..}}`, Anthropic `{"type": "error", "error": {..}}`, Gemini (also
/// wrapped in a JSON array), Ollama/TGI `{"error": ".."}`, FastAPI `{"detail": ..}`, vLLM
/// `{"object": "error", "message": ..}`. `None` when the body is not JSON or says nothing.
pub fn error_message(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let value: Value = serde_json::from_slice(body).ok()?;
    message_of(&value)
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
}
