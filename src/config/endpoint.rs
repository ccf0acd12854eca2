//! Well-known streaming endpoints: which API a URL path names, the dialect `protocol: auto`
//! reads its stream with, and the small streaming request a target without `body` sends to it.
//! One table, so detection and default bodies cannot disagree about a path.
//!
//! Does not: decode streams (`stream`), or decide when a default body applies
//! (`validate/request.rs`).

use super::model::{Extract, Protocol};

/// The prompt every default body asks.
const PROMPT: &str = "Write a haiku about latency.";
/// The output cap every default body sets, so a probe stays cheap.
const MAX_TOKENS: u32 = 128;

/// An API whose route is recognised by its URL path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// OpenAI (and compatible) `POST /v1/chat/completions`.
    OpenAiChat,
    /// OpenAI legacy `POST /v1/completions`.
    OpenAiCompletions,
    /// OpenAI Responses `POST /v1/responses`.
    OpenAiResponses,
    /// Anthropic Messages `POST /v1/messages`.
    Anthropic,
    /// Gemini `POST /v1beta/models/{model}:streamGenerateContent` (`?alt=sse` for SSE).
    Gemini,
    /// Ollama `POST /api/chat`.
    OllamaChat,
    /// Ollama `POST /api/generate`.
    OllamaGenerate,
    /// Text Generation Inference `POST /generate_stream`.
    Tgi,
    /// Dify chat and agent apps `POST /v1/chat-messages`.
    DifyChat,
    /// Dify text generator apps `POST /v1/completion-messages`.
    DifyCompletion,
    /// Dify workflow apps `POST /v1/workflows/run`.
    DifyWorkflow,
    /// llama.cpp server's native `POST /completion`.
    LlamaCpp,
}

/// llama.cpp server's native `/completion` stream: `content` per event, `stop: true` on the
/// last, `tokens_predicted` running count, `{"error": {..}}` on failure.
pub fn llama_cpp_extract() -> Extract {
    Extract {
        text: Some("/content".to_owned()),
        reasoning: None,
        output_tokens: Some("/tokens_predicted".to_owned()),
        done: Some("/stop".to_owned()),
        error: Some("/error".to_owned()),
        // On every event, with `tokens_evaluated` (the whole prompt); the final event adds
        // `model` and `timings.cache_n` (prompt tokens reused from the KV cache).
        model: Some("/model".to_owned()),
        input_tokens: Some("/tokens_evaluated".to_owned()),
        cached_input_tokens: Some("/timings/cache_n".to_owned()),
    }
}

impl Endpoint {
    /// The API a URL path names (query and fragment ignored, a trailing `/` too).
    pub fn from_url_path(path: &str) -> Option<Endpoint> {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let path = path.trim_end_matches('/');
        let ends = |suffix: &str| path.ends_with(suffix);
        Some(if ends("/chat/completions") {
            Endpoint::OpenAiChat
        } else if ends("/completions") {
            Endpoint::OpenAiCompletions
        } else if ends("/responses") {
            Endpoint::OpenAiResponses
        } else if ends("/chat-messages") {
            // Dify's routes are checked before Anthropic's `/messages`.
            Endpoint::DifyChat
        } else if ends("/completion-messages") {
            Endpoint::DifyCompletion
        } else if ends("/workflows/run") {
            Endpoint::DifyWorkflow
        } else if ends("/messages") {
            Endpoint::Anthropic
        } else if path.contains(":streamGenerateContent") {
            Endpoint::Gemini
        } else if ends("/api/chat") {
            Endpoint::OllamaChat
        } else if ends("/api/generate") {
            Endpoint::OllamaGenerate
        } else if ends("/generate_stream") {
            Endpoint::Tgi
        } else if ends("/completion") {
            Endpoint::LlamaCpp
        } else {
            return None;
        })
    }

    /// The usual endpoint of a dialect, for a URL whose path names none (a gateway's own
    /// route) but whose `protocol` is set. Generic protocols have none.
    pub fn for_protocol(protocol: Protocol) -> Option<Endpoint> {
        Some(match protocol {
            Protocol::OpenAi => Endpoint::OpenAiChat,
            Protocol::OpenAiCompletions => Endpoint::OpenAiCompletions,
            Protocol::OpenAiResponses => Endpoint::OpenAiResponses,
            Protocol::Anthropic => Endpoint::Anthropic,
            Protocol::Gemini => Endpoint::Gemini,
            Protocol::Ollama => Endpoint::OllamaChat,
            Protocol::Dify => Endpoint::DifyChat,
            Protocol::Tgi => Endpoint::Tgi,
            Protocol::Auto | Protocol::Sse | Protocol::Ndjson | Protocol::Raw => return None,
        })
    }

    /// The dialect `protocol: auto` reads this endpoint's stream with.
    pub fn protocol(self) -> Protocol {
        match self {
            Endpoint::OpenAiChat => Protocol::OpenAi,
            Endpoint::OpenAiCompletions => Protocol::OpenAiCompletions,
            Endpoint::OpenAiResponses => Protocol::OpenAiResponses,
            Endpoint::Anthropic => Protocol::Anthropic,
            Endpoint::Gemini => Protocol::Gemini,
            Endpoint::OllamaChat | Endpoint::OllamaGenerate => Protocol::Ollama,
            Endpoint::Tgi => Protocol::Tgi,
            Endpoint::DifyChat | Endpoint::DifyCompletion | Endpoint::DifyWorkflow => {
                Protocol::Dify
            }
            Endpoint::LlamaCpp => Protocol::Sse,
        }
    }

    /// JSON pointers for an endpoint read as generic SSE (llama.cpp), else `None`.
    pub fn extract(self) -> Option<Extract> {
        (self == Endpoint::LlamaCpp).then(llama_cpp_extract)
    }

    /// A small streaming request in the API's documented wire format, as JSON text. Streaming
    /// is switched on in the body where the API has such a switch (Gemini and TGI stream by
    /// route instead); usage is asked for where the API needs asking, so `N_out` comes from
    /// the server.
    pub fn default_body(self) -> String {
        let p = PROMPT;
        let n = MAX_TOKENS;
        match self {
            Endpoint::OpenAiChat => format!(
                r#"{{"model": "default", "messages": [{{"role": "user", "content": "{p}"}}], "stream": true, "stream_options": {{"include_usage": true}}, "max_tokens": {n}}}"#
            ),
            Endpoint::OpenAiCompletions => format!(
                r#"{{"model": "default", "prompt": "{p}", "stream": true, "stream_options": {{"include_usage": true}}, "max_tokens": {n}}}"#
            ),
            Endpoint::OpenAiResponses => format!(
                r#"{{"model": "default", "input": "{p}", "stream": true, "max_output_tokens": {n}}}"#
            ),
            Endpoint::Anthropic => format!(
                r#"{{"model": "claude-3-5-haiku-latest", "max_tokens": {n}, "stream": true, "messages": [{{"role": "user", "content": "{p}"}}]}}"#
            ),
            Endpoint::Gemini => format!(
                r#"{{"contents": [{{"role": "user", "parts": [{{"text": "{p}"}}]}}], "generationConfig": {{"maxOutputTokens": {n}}}}}"#
            ),
            Endpoint::OllamaChat => format!(
                r#"{{"model": "llama3.2", "messages": [{{"role": "user", "content": "{p}"}}], "stream": true, "options": {{"num_predict": {n}}}}}"#
            ),
            Endpoint::OllamaGenerate => format!(
                r#"{{"model": "llama3.2", "prompt": "{p}", "stream": true, "options": {{"num_predict": {n}}}}}"#
            ),
            Endpoint::Tgi => format!(
                r#"{{"inputs": "{p}", "parameters": {{"max_new_tokens": {n}, "details": true}}}}"#
            ),
            Endpoint::DifyChat => format!(
                r#"{{"inputs": {{}}, "query": "{p}", "response_mode": "streaming", "user": "streamprobe"}}"#
            ),
            Endpoint::DifyCompletion => format!(
                r#"{{"inputs": {{"query": "{p}"}}, "response_mode": "streaming", "user": "streamprobe"}}"#
            ),
            Endpoint::DifyWorkflow => {
                r#"{"inputs": {}, "response_mode": "streaming", "user": "streamprobe"}"#.to_owned()
            }
            Endpoint::LlamaCpp => {
                format!(r#"{{"prompt": "{p}", "n_predict": {n}, "stream": true}}"#)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Endpoint; 12] = [
        Endpoint::OpenAiChat,
        Endpoint::OpenAiCompletions,
        Endpoint::OpenAiResponses,
        Endpoint::Anthropic,
        Endpoint::Gemini,
        Endpoint::OllamaChat,
        Endpoint::OllamaGenerate,
        Endpoint::Tgi,
        Endpoint::DifyChat,
        Endpoint::DifyCompletion,
        Endpoint::DifyWorkflow,
        Endpoint::LlamaCpp,
    ];

    #[test]
    fn paths_name_endpoints() {
        let e = Endpoint::from_url_path;
        assert_eq!(e("/v1/chat/completions"), Some(Endpoint::OpenAiChat));
        assert_eq!(e("/v1/completions"), Some(Endpoint::OpenAiCompletions));
        assert_eq!(e("/v1/responses/"), Some(Endpoint::OpenAiResponses));
        assert_eq!(e("/v1/messages"), Some(Endpoint::Anthropic));
        assert_eq!(e("/v1/chat-messages"), Some(Endpoint::DifyChat));
        assert_eq!(e("/v1/completion-messages"), Some(Endpoint::DifyCompletion));
        assert_eq!(e("/v1/workflows/run"), Some(Endpoint::DifyWorkflow));
        assert_eq!(
            e("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"),
            Some(Endpoint::Gemini)
        );
        assert_eq!(e("/api/chat"), Some(Endpoint::OllamaChat));
        assert_eq!(e("/api/generate"), Some(Endpoint::OllamaGenerate));
        assert_eq!(e("/generate_stream"), Some(Endpoint::Tgi));
        assert_eq!(e("/completion"), Some(Endpoint::LlamaCpp));
        assert_eq!(e("/stream"), None);
        assert_eq!(e("/"), None);
    }

    /// Every default body is JSON in its API's shape, asks for a stream where the API has
    /// the switch, and caps the output.
    #[test]
    fn default_bodies_are_streaming_json() {
        for endpoint in ALL {
            let body: serde_json::Value = serde_json::from_str(&endpoint.default_body())
                .unwrap_or_else(|e| panic!("{endpoint:?}: {e}"));
            let streams = match endpoint {
                Endpoint::Gemini | Endpoint::Tgi => true,
                Endpoint::DifyChat | Endpoint::DifyCompletion | Endpoint::DifyWorkflow => {
                    body["response_mode"] == "streaming"
                }
                _ => body["stream"] == true,
            };
            assert!(streams, "{endpoint:?}: {body}");
            let text = body.to_string();
            let capped = [
                "max_tokens",
                "max_output_tokens",
                "maxOutputTokens",
                "num_predict",
                "max_new_tokens",
                "n_predict",
            ]
            .iter()
            .any(|k| text.contains(k));
            // Dify apps cap their output in the app's own settings.
            assert!(
                capped || endpoint.protocol() == Protocol::Dify,
                "{endpoint:?}"
            );
        }
        let shape =
            |e: Endpoint| -> serde_json::Value { serde_json::from_str(&e.default_body()).unwrap() };
        assert!(shape(Endpoint::OpenAiResponses)["input"].is_string());
        assert!(shape(Endpoint::Anthropic)["messages"].is_array());
        assert!(shape(Endpoint::Gemini)["contents"][0]["parts"][0]["text"].is_string());
        assert!(shape(Endpoint::Tgi)["inputs"].is_string());
        assert!(shape(Endpoint::DifyChat)["query"].is_string());
        assert!(shape(Endpoint::LlamaCpp)["prompt"].is_string());
    }

    #[test]
    fn protocols_map_back_to_their_endpoint() {
        for endpoint in ALL {
            if let Some(back) = Endpoint::for_protocol(endpoint.protocol()) {
                assert_eq!(back.protocol(), endpoint.protocol());
            }
        }
        assert_eq!(Endpoint::for_protocol(Protocol::Sse), None);
        assert_eq!(Endpoint::LlamaCpp.extract(), Some(llama_cpp_extract()));
        assert_eq!(Endpoint::OpenAiChat.extract(), None);
    }
}
