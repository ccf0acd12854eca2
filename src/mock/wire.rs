//! Wire formats of the services the mock imitates: which route speaks which dialect, and the exact
//! bytes of each event (preamble, token, terminator, in-band error, error bodies).
//!
//! The shapes follow the recordings in `shared/corpus/`: OpenAI's role-only first chunk and
//! empty-`choices` usage chunk, Anthropic's `{"type": "ping"}` with its odd space, Gemini's CRLF
//! framing and `": "` key style with `candidatesTokenCount` only on the last chunk, Dify's Python
//! `json.dumps` separators, TGI's `data:` without a space (axum's SSE encoder).
//!
//! Does not: keep time, count in-flight requests or touch sockets; everything here is pure.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::Protocol;

/// One concrete dialect (a `Protocol` may have several, e.g. Ollama chat and generate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    OpenAiChat,
    OpenAiCompletions,
    OpenAiResponses,
    Anthropic,
    Gemini,
    OllamaChat,
    OllamaGenerate,
    Dify,
    Tgi,
    /// llama.cpp's native `/completion`: the generic `sse` protocol with extract pointers.
    LlamaCpp,
    Raw,
}

impl Dialect {
    /// The dialect a path asks for. Suffix matches, so a base URL with a prefix
    /// (`/openai/v1/chat/completions`) still finds its dialect.
    pub(crate) fn route(path: &str) -> Option<(Dialect, Protocol)> {
        let d = if path.ends_with("/chat/completions") {
            Dialect::OpenAiChat
        } else if path.ends_with("/completions") {
            Dialect::OpenAiCompletions
        } else if path.ends_with("/responses") {
            Dialect::OpenAiResponses
        } else if path.ends_with("/v1/messages") {
            Dialect::Anthropic
        } else if path.ends_with(":streamGenerateContent") && path.contains("/models/") {
            Dialect::Gemini
        } else if path.ends_with("/api/chat") {
            Dialect::OllamaChat
        } else if path.ends_with("/api/generate") {
            Dialect::OllamaGenerate
        } else if path.ends_with("/chat-messages") {
            Dialect::Dify
        } else if path.ends_with("/generate_stream") {
            Dialect::Tgi
        } else if path.ends_with("/completion") {
            Dialect::LlamaCpp
        } else if path == "/raw" {
            Dialect::Raw
        } else {
            return None;
        };
        Some((d, d.protocol()))
    }

    /// What a path that matches no route speaks, from the server's `--protocol`.
    pub(crate) fn for_protocol(protocol: Protocol) -> Dialect {
        match protocol {
            Protocol::Auto | Protocol::OpenAi => Dialect::OpenAiChat,
            Protocol::OpenAiCompletions => Dialect::OpenAiCompletions,
            Protocol::OpenAiResponses => Dialect::OpenAiResponses,
            Protocol::Anthropic => Dialect::Anthropic,
            Protocol::Gemini => Dialect::Gemini,
            Protocol::Ollama => Dialect::OllamaChat,
            Protocol::Ndjson => Dialect::OllamaGenerate,
            Protocol::Dify => Dialect::Dify,
            Protocol::Tgi => Dialect::Tgi,
            Protocol::Sse => Dialect::LlamaCpp,
            Protocol::Raw => Dialect::Raw,
        }
    }

    pub(crate) fn protocol(self) -> Protocol {
        match self {
            Dialect::OpenAiChat => Protocol::OpenAi,
            Dialect::OpenAiCompletions => Protocol::OpenAiCompletions,
            Dialect::OpenAiResponses => Protocol::OpenAiResponses,
            Dialect::Anthropic => Protocol::Anthropic,
            Dialect::Gemini => Protocol::Gemini,
            Dialect::OllamaChat | Dialect::OllamaGenerate => Protocol::Ollama,
            Dialect::Dify => Protocol::Dify,
            Dialect::Tgi => Protocol::Tgi,
            Dialect::LlamaCpp => Protocol::Sse,
            Dialect::Raw => Protocol::Raw,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Dialect::OpenAiChat
            | Dialect::OpenAiCompletions
            | Dialect::OpenAiResponses
            | Dialect::Anthropic
            | Dialect::Dify => "text/event-stream; charset=utf-8",
            Dialect::Gemini | Dialect::Tgi | Dialect::LlamaCpp => "text/event-stream",
            Dialect::OllamaChat | Dialect::OllamaGenerate => "application/x-ndjson",
            Dialect::Raw => "text/plain; charset=utf-8",
        }
    }

    /// Bytes that end one event; a malformed event is cut short and closed with these.
    fn terminator(self) -> &'static [u8] {
        match self {
            Dialect::Gemini => b"\r\n\r\n",
            Dialect::OllamaChat | Dialect::OllamaGenerate => b"\n",
            Dialect::Raw => b"",
            _ => b"\n\n",
        }
    }
}

/// The generated text: one vocabulary entry per token, JSON-safe by construction (no quotes,
/// backslashes or control characters), with multi-byte UTF-8 so clients meet split code points.
const VOCAB: [&str; 32] = [
    "Hello",
    ",",
    " this",
    " is",
    " a",
    " simulated",
    " stream",
    " from",
    " the",
    " streamprobe",
    " mock",
    " server",
    ".",
    " Every",
    " token",
    " arrives",
    " on",
    " schedule",
    ";",
    " café",
    " naïve",
    " 東京",
    " 🙂",
    " latency",
    " is",
    " measured",
    " against",
    " ground",
    " truth",
    "!",
    " And",
    " so",
];

/// Text of token `i` (0-based).
pub fn token_text(i: u64) -> &'static str {
    VOCAB[(i % VOCAB.len() as u64) as usize]
}

/// The concatenated text of the first `n` tokens.
pub fn expected_text(n: u64) -> String {
    (0..n).map(token_text).collect()
}

/// Size of the `oversized` fault's single line.
pub(crate) const OVERSIZED_LEN: usize = 20 << 20;

fn oversized_text() -> &'static [u8] {
    static TEXT: OnceLock<Vec<u8>> = OnceLock::new();
    TEXT.get_or_init(|| vec![b'x'; OVERSIZED_LEN])
}

const INVALID_UTF8: &[u8] = b" \xff\xfe\xc3(";

const SERVER_ERROR: &str =
    "The server had an error while processing your request. Sorry about that!";

/// What an extra (uncounted) event inserted by a fault carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extra {
    Malformed,
    InvalidUtf8,
    Oversized,
}

/// Timing facts some terminators report (Ollama's durations, Dify's latency).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending {
    pub tokens: u64,
    pub since_received: Duration,
    pub since_first_token: Duration,
}

/// What a stream reports about itself besides its tokens: the responding model and the usage
/// details (DESIGN §11).
#[derive(Debug, Clone)]
pub(crate) struct Reported {
    pub model: String,
    pub fingerprint: String,
    pub prompt_tokens: u64,
    /// At most `prompt_tokens`.
    pub cached_tokens: u64,
    /// Hidden: counted where the protocol counts them, never streamed.
    pub reasoning_tokens: u64,
}

/// Per-request renderer: constant parts of every event are rendered once, at request start.
pub(crate) struct Wire {
    dialect: Dialect,
    usage: bool,
    id: u64,
    /// JSON string literals, quotes included.
    model: String,
    fingerprint: String,
    created: u64,
    prompt_tokens: u64,
    cached_tokens: u64,
    reasoning_tokens: u64,
    /// Token event up to its text, and after it, for dialects whose token events do not vary.
    head: Bytes,
    tail: Bytes,
}

impl Wire {
    /// `usage`: report token usage the way the service does; `false` makes clients count events.
    pub(crate) fn new(dialect: Dialect, usage: bool, id: u64, reported: &Reported) -> Wire {
        let literal = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"mock\"".into());
        let (model, fp) = (literal(&reported.model), literal(&reported.fingerprint));
        let (prompt_tokens, cached, reasoning) = (
            reported.prompt_tokens,
            reported.cached_tokens,
            reported.reasoning_tokens,
        );
        let now = SystemTime::now();
        let created = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let created_at = rfc3339(now);
        let (head, tail) = match dialect {
            Dialect::OpenAiChat => (
                format!(
                    "data: {{\"id\":\"chatcmpl-mock{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model},\"system_fingerprint\":{fp},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\""
                ),
                "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n".to_owned(),
            ),
            Dialect::OpenAiCompletions => (
                format!(
                    "data: {{\"id\":\"cmpl-mock{id}\",\"object\":\"text_completion\",\"created\":{created},\"choices\":[{{\"text\":\""
                ),
                format!(
                    "\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}}],\"model\":{model},\"system_fingerprint\":{fp}}}\n\n"
                ),
            ),
            Dialect::Anthropic => (
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"".to_owned(),
                "\"}}\n\n".to_owned(),
            ),
            Dialect::Gemini => (
                "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"".to_owned(),
                format!(
                    "\"}}],\"role\": \"model\"}}}}]{},\"modelVersion\": {model}}}\r\n\r\n",
                    gemini_usage(usage, prompt_tokens, None, cached, reasoning)
                ),
            ),
            Dialect::OllamaChat => (
                format!(
                    "{{\"model\":{model},\"created_at\":\"{created_at}\",\"message\":{{\"role\":\"assistant\",\"content\":\""
                ),
                "\"},\"done\":false}\n".to_owned(),
            ),
            Dialect::OllamaGenerate => (
                format!("{{\"model\":{model},\"created_at\":\"{created_at}\",\"response\":\""),
                "\",\"done\":false}\n".to_owned(),
            ),
            Dialect::Dify => (
                format!(
                    "data: {{\"event\": \"message\", \"conversation_id\": \"{}\", \"message_id\": \"{}\", \"created_at\": {created}, \"task_id\": \"{}\", \"id\": \"{}\", \"answer\": \"",
                    uuid(1, id),
                    uuid(2, id),
                    uuid(3, id),
                    uuid(2, id)
                ),
                "\"}\n\n".to_owned(),
            ),
            // Token events of these carry counters; rendered in `token`.
            Dialect::OpenAiResponses | Dialect::Tgi | Dialect::LlamaCpp | Dialect::Raw => {
                (String::new(), String::new())
            }
        };
        Wire {
            dialect,
            usage,
            id,
            model,
            fingerprint: fp,
            created,
            prompt_tokens,
            cached_tokens: cached,
            reasoning_tokens: reasoning,
            head: Bytes::from(head),
            tail: Bytes::from(tail),
        }
    }

    pub(crate) fn content_type(&self) -> &'static str {
        self.dialect.content_type()
    }

    /// Events sent with the response head, before any token: role chunk, `message_start`,
    /// `response.created`, Dify's keep-alive ping. None of them carries a token.
    pub(crate) fn preamble(&self, seq: &mut u64) -> Bytes {
        let (id, model, created, fp) = (self.id, &self.model, self.created, &self.fingerprint);
        let s = match self.dialect {
            Dialect::OpenAiChat => format!(
                "data: {{\"id\":\"chatcmpl-mock{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model},\"system_fingerprint\":{fp},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
            ),
            Dialect::OpenAiResponses => {
                let response = self.response_object("in_progress", "[]", "null", "null");
                let s0 = next(seq);
                let s1 = next(seq);
                let s2 = next(seq);
                let s3 = next(seq);
                format!(
                    "event: response.created\ndata: {{\"type\":\"response.created\",\"sequence_number\":{s0},\"response\":{response}}}\n\n\
                     event: response.in_progress\ndata: {{\"type\":\"response.in_progress\",\"sequence_number\":{s1},\"response\":{response}}}\n\n\
                     event: response.output_item.added\ndata: {{\"type\":\"response.output_item.added\",\"sequence_number\":{s2},\"output_index\":0,\"item\":{{\"id\":\"msg_mock{id}\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}}}}\n\n\
                     event: response.content_part.added\ndata: {{\"type\":\"response.content_part.added\",\"sequence_number\":{s3},\"item_id\":\"msg_mock{id}\",\"output_index\":0,\"content_index\":0,\"part\":{{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"\"}}}}\n\n"
                )
            }
            Dialect::Anthropic => {
                // Anthropic's input_tokens excludes the cache reads.
                let usage = if self.usage {
                    format!(
                        ",\"usage\":{{\"input_tokens\":{},\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":{},\"output_tokens\":1}}",
                        self.prompt_tokens - self.cached_tokens,
                        self.cached_tokens
                    )
                } else {
                    String::new()
                };
                format!(
                    "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_mock{id}\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":{model},\"stop_reason\":null,\"stop_sequence\":null{usage}}}}}\n\n\
                     event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n\
                     event: ping\ndata: {{\"type\": \"ping\"}}\n\n"
                )
            }
            Dialect::Dify => "event: ping\n\n".to_owned(),
            _ => return Bytes::new(),
        };
        Bytes::from(s)
    }

    /// Token event `i` (0-based) carrying `text`; `last` marks the final token, which Gemini, TGI
    /// fold their terminator into.
    pub(crate) fn token(&self, i: u64, last: bool, seq: &mut u64) -> Bytes {
        let text = token_text(i).as_bytes();
        let mut b = BytesMut::with_capacity(self.head.len() + text.len() + self.tail.len() + 96);
        self.event(&mut b, i, text, last, seq, false);
        b.freeze()
    }

    /// An extra, uncounted event inserted by a fault before token `i`; `None` where the dialect
    /// has no way to express it (a raw stream cannot be malformed).
    pub(crate) fn extra(&self, kind: Extra, i: u64, seq: &mut u64) -> Option<Bytes> {
        let (text, cut): (&[u8], bool) = match kind {
            Extra::Malformed if self.dialect == Dialect::Raw => return None,
            Extra::Malformed => (b"oops", true),
            Extra::InvalidUtf8 => (INVALID_UTF8, false),
            Extra::Oversized => (oversized_text(), false),
        };
        let mut b = BytesMut::with_capacity(self.head.len() + text.len() + self.tail.len() + 96);
        self.event(&mut b, i, text, false, seq, cut);
        Some(b.freeze())
    }

    fn event(&self, b: &mut BytesMut, i: u64, text: &[u8], last: bool, seq: &mut u64, cut: bool) {
        let term = self.dialect.terminator();
        match self.dialect {
            Dialect::Raw => b.put_slice(text),
            Dialect::OpenAiResponses => {
                let _ = write!(
                    Writer(b),
                    "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"sequence_number\":{},\"item_id\":\"msg_mock{}\",\"output_index\":0,\"content_index\":0,\"delta\":\"",
                    next(seq),
                    self.id
                );
                b.put_slice(text);
                if cut {
                    b.put_slice(term);
                } else {
                    b.put_slice(b"\",\"logprobs\":[]}\n\n");
                }
            }
            Dialect::Tgi => {
                let _ = write!(
                    Writer(b),
                    "data:{{\"index\":{},\"token\":{{\"id\":{},\"text\":\"",
                    i + 1,
                    1000 + i % 30000
                );
                b.put_slice(text);
                if cut {
                    b.put_slice(term);
                } else if last {
                    let details = if self.usage {
                        format!(
                            "{{\"finish_reason\":\"length\",\"generated_tokens\":{},\"seed\":null,\"input_length\":{}}}",
                            i + 1,
                            self.prompt_tokens
                        )
                    } else {
                        "null".to_owned()
                    };
                    let _ = write!(
                        Writer(b),
                        "\",\"logprob\":-0.1,\"special\":false}},\"generated_text\":\"{}\",\"details\":{details}}}\n\n",
                        expected_text(i + 1)
                    );
                } else {
                    b.put_slice(b"\",\"logprob\":-0.1,\"special\":false},\"generated_text\":null,\"details\":null}\n\n");
                }
            }
            Dialect::LlamaCpp => {
                b.put_slice(b"data: {\"index\":0,\"content\":\"");
                b.put_slice(text);
                if cut {
                    b.put_slice(term);
                } else {
                    let _ = write!(
                        Writer(b),
                        "\",\"tokens\":[{}],\"stop\":false,\"id_slot\":-1",
                        1000 + i % 30000
                    );
                    if self.usage {
                        let _ = write!(
                            Writer(b),
                            ",\"tokens_predicted\":{},\"tokens_evaluated\":{}",
                            i + 1,
                            self.prompt_tokens
                        );
                    }
                    b.put_slice(b"}\n\n");
                }
            }
            Dialect::Gemini if last && !cut => {
                b.put_slice(&self.head);
                b.put_slice(text);
                let _ = write!(
                    Writer(b),
                    "\"}}],\"role\": \"model\"}},\"finishReason\": \"STOP\"}}]{},\"modelVersion\": {}}}\r\n\r\n",
                    gemini_usage(
                        self.usage,
                        self.prompt_tokens,
                        Some(i + 1),
                        self.cached_tokens,
                        self.reasoning_tokens
                    ),
                    self.model
                );
            }
            _ => {
                b.put_slice(&self.head);
                b.put_slice(text);
                b.put_slice(if cut { term } else { &self.tail });
            }
        }
    }

    /// Whether the last token event is also the end of the stream (no separate terminator).
    pub(crate) fn last_token_ends(&self) -> bool {
        matches!(self.dialect, Dialect::Gemini | Dialect::Tgi | Dialect::Raw)
    }

    /// The normal end of the stream after `ending.tokens` tokens: finish chunk, usage, `[DONE]`,
    /// `message_stop`, `done:true`… Empty where the last token already ended it.
    /// `include_usage`: OpenAI's `stream_options.include_usage` (already combined with `usage`).
    pub(crate) fn trailer(&self, ending: Ending, include_usage: bool, seq: &mut u64) -> Bytes {
        let n = ending.tokens;
        if n > 0 && self.last_token_ends() {
            return Bytes::new();
        }
        let (id, model, created, p) = (self.id, &self.model, self.created, self.prompt_tokens);
        let (fp, c, r) = (&self.fingerprint, self.cached_tokens, self.reasoning_tokens);
        let s = match self.dialect {
            Dialect::OpenAiChat => {
                let mut s = format!(
                    "data: {{\"id\":\"chatcmpl-mock{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model},\"system_fingerprint\":{fp},\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"length\"}}]}}\n\n"
                );
                if include_usage {
                    let _ = write!(
                        s,
                        "data: {{\"id\":\"chatcmpl-mock{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model},\"system_fingerprint\":{fp},\"choices\":[],\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{},\"total_tokens\":{},\"prompt_tokens_details\":{{\"cached_tokens\":{c},\"audio_tokens\":0}},\"completion_tokens_details\":{{\"reasoning_tokens\":{r},\"audio_tokens\":0}}}}}}\n\n",
                        n + r,
                        p + n + r
                    );
                }
                s.push_str("data: [DONE]\n\n");
                s
            }
            Dialect::OpenAiCompletions => {
                let mut s = format!(
                    "data: {{\"id\":\"cmpl-mock{id}\",\"object\":\"text_completion\",\"created\":{created},\"choices\":[{{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"length\"}}],\"model\":{model},\"system_fingerprint\":{fp}}}\n\n"
                );
                if include_usage {
                    let _ = write!(
                        s,
                        "data: {{\"id\":\"cmpl-mock{id}\",\"object\":\"text_completion\",\"created\":{created},\"choices\":[],\"model\":{model},\"system_fingerprint\":{fp},\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{n},\"total_tokens\":{}}}}}\n\n",
                        p + n
                    );
                }
                s.push_str("data: [DONE]\n\n");
                s
            }
            Dialect::OpenAiResponses => {
                let text = expected_text(n);
                let part = format!(
                    "{{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"{text}\"}}"
                );
                let item = format!(
                    "{{\"id\":\"msg_mock{id}\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{part}],\"role\":\"assistant\"}}"
                );
                let usage = if self.usage {
                    format!(
                        "{{\"input_tokens\":{p},\"input_tokens_details\":{{\"cached_tokens\":{c}}},\"output_tokens\":{},\"output_tokens_details\":{{\"reasoning_tokens\":{r}}},\"total_tokens\":{}}}",
                        n + r,
                        p + n + r
                    )
                } else {
                    "null".to_owned()
                };
                let response =
                    self.response_object("completed", &format!("[{item}]"), "null", &usage);
                let (s0, s1, s2, s3) = (next(seq), next(seq), next(seq), next(seq));
                format!(
                    "event: response.output_text.done\ndata: {{\"type\":\"response.output_text.done\",\"sequence_number\":{s0},\"item_id\":\"msg_mock{id}\",\"output_index\":0,\"content_index\":0,\"text\":\"{text}\",\"logprobs\":[]}}\n\n\
                     event: response.content_part.done\ndata: {{\"type\":\"response.content_part.done\",\"sequence_number\":{s1},\"item_id\":\"msg_mock{id}\",\"output_index\":0,\"content_index\":0,\"part\":{part}}}\n\n\
                     event: response.output_item.done\ndata: {{\"type\":\"response.output_item.done\",\"sequence_number\":{s2},\"output_index\":0,\"item\":{item}}}\n\n\
                     event: response.completed\ndata: {{\"type\":\"response.completed\",\"sequence_number\":{s3},\"response\":{response}}}\n\n"
                )
            }
            Dialect::Anthropic => {
                // Thinking tokens are part of Anthropic's output count.
                let usage = if self.usage {
                    format!(",\"usage\":{{\"output_tokens\":{}}}", n + r)
                } else {
                    String::new()
                };
                format!(
                    "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":0}}\n\n\
                     event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null}}{usage}}}\n\n\
                     event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n"
                )
            }
            // Only reached with zero tokens: the finish chunk has no text.
            Dialect::Gemini => format!(
                "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \"\"}}],\"role\": \"model\"}},\"finishReason\": \"STOP\"}}]{},\"modelVersion\": {model}}}\r\n\r\n",
                gemini_usage(self.usage, p, Some(0), c, r)
            ),
            Dialect::OllamaChat | Dialect::OllamaGenerate => {
                let total = ending.since_received.as_nanos();
                let eval = ending.since_first_token.as_nanos();
                let counts = |name: &str, value: u64| {
                    if self.usage {
                        format!(",\"{name}\":{value}")
                    } else {
                        String::new()
                    }
                };
                let (pc, ec) = (counts("prompt_eval_count", p), counts("eval_count", n));
                let body = if self.dialect == Dialect::OllamaChat {
                    "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"length\",\"done\":true"
                } else {
                    "\"response\":\"\",\"done\":true,\"done_reason\":\"length\",\"context\":[1,2,3]"
                };
                format!(
                    "{{\"model\":{model},\"created_at\":\"{}\",{body},\"total_duration\":{total},\"load_duration\":0{pc},\"prompt_eval_duration\":0{ec},\"eval_duration\":{eval}}}\n",
                    rfc3339(SystemTime::now())
                )
            }
            Dialect::Dify => {
                let usage = if self.usage {
                    format!(
                        "{{\"usage\": {{\"prompt_tokens\": {p}, \"completion_tokens\": {n}, \"total_tokens\": {}, \"currency\": \"USD\", \"latency\": {}}}}}",
                        p + n,
                        ending.since_received.as_secs_f64()
                    )
                } else {
                    "{}".to_owned()
                };
                format!(
                    "data: {{\"event\": \"message_end\", \"conversation_id\": \"{}\", \"message_id\": \"{}\", \"created_at\": {created}, \"task_id\": \"{}\", \"id\": \"{}\", \"metadata\": {usage}}}\n\n",
                    uuid(1, id),
                    uuid(2, id),
                    uuid(3, id),
                    uuid(2, id)
                )
            }
            // Only reached with zero tokens: TGI ends with its EOS token.
            Dialect::Tgi => {
                let details = if self.usage {
                    format!(
                        "{{\"finish_reason\":\"eos_token\",\"generated_tokens\":0,\"seed\":null,\"input_length\":{p}}}"
                    )
                } else {
                    "null".to_owned()
                };
                format!(
                    "data:{{\"index\":1,\"token\":{{\"id\":2,\"text\":\"</s>\",\"logprob\":-0.1,\"special\":true}},\"generated_text\":\"\",\"details\":{details}}}\n\n"
                )
            }
            Dialect::LlamaCpp => {
                let predicted = if self.usage {
                    format!(
                        ",\"tokens_predicted\":{n},\"tokens_evaluated\":{p},\"timings\":{{\"cache_n\":{c},\"prompt_n\":{},\"predicted_n\":{n}}}",
                        p - c
                    )
                } else {
                    String::new()
                };
                format!(
                    "data: {{\"index\":0,\"content\":\"\",\"tokens\":[],\"id_slot\":0,\"stop\":true,\"model\":{model}{predicted},\"stop_type\":\"limit\"}}\n\n"
                )
            }
            Dialect::Raw => String::new(),
        };
        Bytes::from(s)
    }

    /// The protocol's own in-band error, sent with status 200 in place of the terminator.
    pub(crate) fn error_event(&self, seq: &mut u64) -> Bytes {
        let id = self.id;
        let s = match self.dialect {
            Dialect::OpenAiChat | Dialect::OpenAiCompletions => format!(
                "data: {{\"error\":{{\"message\":\"{SERVER_ERROR}\",\"type\":\"server_error\",\"param\":null,\"code\":null}}}}\n\n"
            ),
            Dialect::OpenAiResponses => {
                let error =
                    format!("{{\"code\":\"server_error\",\"message\":\"{SERVER_ERROR}\"}}");
                let response = self.response_object("failed", "[]", &error, "null");
                let (s0, s1) = (next(seq), next(seq));
                format!(
                    "event: error\ndata: {{\"type\":\"error\",\"sequence_number\":{s0},\"error\":{{\"type\":\"server_error\",\"code\":\"server_error\",\"message\":\"{SERVER_ERROR}\",\"param\":null}}}}\n\n\
                     event: response.failed\ndata: {{\"type\":\"response.failed\",\"sequence_number\":{s1},\"response\":{response}}}\n\n"
                )
            }
            Dialect::Anthropic => "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".to_owned(),
            Dialect::Gemini => "data: {\"error\": {\"code\": 500,\"message\": \"An internal error has occurred.\",\"status\": \"INTERNAL\"}}\r\n\r\n".to_owned(),
            Dialect::OllamaChat | Dialect::OllamaGenerate => {
                "{\"error\":\"an error was encountered while running the model\"}\n".to_owned()
            }
            Dialect::Dify => format!(
                "data: {{\"event\": \"error\", \"task_id\": \"{}\", \"message_id\": \"{}\", \"status\": 500, \"code\": \"internal_server_error\", \"message\": \"{SERVER_ERROR}\"}}\n\n",
                uuid(3, id),
                uuid(2, id)
            ),
            Dialect::Tgi => "data:{\"error\":\"Request failed during generation: Server error: CUDA out of memory\",\"error_type\":\"generation\"}\n\n".to_owned(),
            Dialect::LlamaCpp => format!(
                "data: {{\"error\":{{\"code\":500,\"message\":\"{SERVER_ERROR}\",\"type\":\"server_error\"}}}}\n\n"
            ),
            // A raw stream has no error syntax: the text says it, a client cannot tell.
            Dialect::Raw => "\n[mock error: the server failed mid-stream]\n".to_owned(),
        };
        Bytes::from(s)
    }

    fn response_object(&self, status: &str, output: &str, error: &str, usage: &str) -> String {
        format!(
            "{{\"id\":\"resp_mock{}\",\"object\":\"response\",\"created_at\":{},\"status\":\"{status}\",\"error\":{error},\"incomplete_details\":null,\"model\":{},\"output\":{output},\"usage\":{usage}}}",
            self.id, self.created, self.model
        )
    }
}

/// The JSON body of a 429/500/503 (or 400) in the dialect's own error shape.
pub(crate) fn error_body(dialect: Dialect, status: u16, message: Option<&str>) -> String {
    let default = match status {
        400 => "Invalid request.",
        429 => "Rate limit reached for requests. Please try again in 1s.",
        503 => "The engine is currently overloaded, please try again later.",
        _ => SERVER_ERROR,
    };
    let message = serde_json::to_string(message.unwrap_or(default)).unwrap_or_default();
    match dialect {
        Dialect::Anthropic => {
            let kind = match status {
                400 => "invalid_request_error",
                429 => "rate_limit_error",
                503 => "overloaded_error",
                _ => "api_error",
            };
            format!(
                "{{\"type\":\"error\",\"error\":{{\"type\":\"{kind}\",\"message\":{message}}}}}"
            )
        }
        Dialect::Gemini => {
            let kind = match status {
                400 => "INVALID_ARGUMENT",
                429 => "RESOURCE_EXHAUSTED",
                503 => "UNAVAILABLE",
                _ => "INTERNAL",
            };
            format!(
                "{{\n  \"error\": {{\n    \"code\": {status},\n    \"message\": {message},\n    \"status\": \"{kind}\"\n  }}\n}}\n"
            )
        }
        Dialect::OllamaChat | Dialect::OllamaGenerate => format!("{{\"error\":{message}}}"),
        Dialect::Dify => {
            let code = match status {
                400 => "invalid_param",
                429 => "too_many_requests",
                503 => "service_unavailable",
                _ => "internal_server_error",
            };
            format!("{{\"code\": \"{code}\", \"message\": {message}, \"status\": {status}}}")
        }
        Dialect::Tgi => {
            let kind = match status {
                400 => "validation",
                429 | 503 => "overloaded",
                _ => "generation",
            };
            format!("{{\"error\":{message},\"error_type\":\"{kind}\"}}")
        }
        Dialect::LlamaCpp => {
            let kind = match status {
                400 => "invalid_request_error",
                503 => "unavailable_error",
                _ => "server_error",
            };
            format!("{{\"error\":{{\"code\":{status},\"message\":{message},\"type\":\"{kind}\"}}}}")
        }
        // OpenAI pretty-prints its error bodies (corpus: http429_openai_insufficient_quota.json).
        _ => {
            let (kind, code) = match status {
                400 => ("invalid_request_error", "null"),
                429 => ("requests", "\"rate_limit_exceeded\""),
                _ => ("server_error", "null"),
            };
            format!(
                "{{\n    \"error\": {{\n        \"message\": {message},\n        \"type\": \"{kind}\",\n        \"param\": null,\n        \"code\": {code}\n    }}\n}}\n"
            )
        }
    }
}

/// Gemini's `usageMetadata`: `cachedContentTokenCount` and `thoughtsTokenCount` only when not
/// zero (as Gemini omits them), thoughts on every chunk (they were spent before the first
/// text), `candidatesTokenCount` on the last chunk only.
fn gemini_usage(
    usage: bool,
    prompt: u64,
    candidates: Option<u64>,
    cached: u64,
    thoughts: u64,
) -> String {
    if !usage {
        return String::new();
    }
    let mut s = format!(",\"usageMetadata\": {{\"promptTokenCount\": {prompt}");
    if let Some(n) = candidates {
        let _ = write!(s, ",\"candidatesTokenCount\": {n}");
    }
    if cached > 0 {
        let _ = write!(s, ",\"cachedContentTokenCount\": {cached}");
    }
    if thoughts > 0 {
        let _ = write!(s, ",\"thoughtsTokenCount\": {thoughts}");
    }
    let _ = write!(
        s,
        ",\"totalTokenCount\": {}}}",
        prompt + candidates.unwrap_or(0) + thoughts
    );
    s
}

fn next(seq: &mut u64) -> u64 {
    let s = *seq;
    *seq += 1;
    s
}

/// A UUID-shaped id, distinct per request and per role (conversation, message, task).
fn uuid(role: u8, id: u64) -> String {
    format!("00000000-0000-4000-800{role}-{id:012x}")
}

/// `2026-11-27T10:15:00.123456Z`, as Ollama writes `created_at` (UTC, microseconds).
fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `fmt::Write` into a `BytesMut` without an intermediate `String`.
struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_is_json_safe() {
        for w in VOCAB {
            assert_eq!(serde_json::to_string(w).unwrap(), format!("\"{w}\""));
        }
    }

    #[test]
    fn rfc3339_known_instant() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_774_500_123_456);
        assert_eq!(rfc3339(t), "2026-11-27T10:15:00.123456Z");
    }

    #[test]
    fn routes() {
        let r = |p| Dialect::route(p).map(|(d, _)| d);
        assert_eq!(r("/v1/chat/completions"), Some(Dialect::OpenAiChat));
        assert_eq!(r("/v1/completions"), Some(Dialect::OpenAiCompletions));
        assert_eq!(
            r("/v1beta/models/gemini-2.0-flash:streamGenerateContent"),
            Some(Dialect::Gemini)
        );
        assert_eq!(r("/completion"), Some(Dialect::LlamaCpp));
        assert_eq!(r("/"), None);
    }
}
