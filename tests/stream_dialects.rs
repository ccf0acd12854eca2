//! The stream decoder on cases the recorded corpus lacks, written from each API's
//! documentation: every dialect's tokens, usage, terminator and in-band errors, `auto`
//! detection, SSE framing edge cases, and the failure modes (too long, invalid UTF-8,
//! malformed JSON). Every stream case is decoded whole, one byte at a time and in 7-byte
//! pieces, and the three must agree.
//!
//! Does not: replay recorded streams (`stream_corpus.rs` does).

use streamprobe::stream::{
    Channel, DecodeError, Decoder, DecoderOptions, Event, Extract, Protocol, llama_cpp_extract,
};

fn data(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/stream/");
    std::fs::read(format!("{path}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn opts(protocol: Protocol) -> DecoderOptions {
    DecoderOptions::new(protocol)
}

fn auto(content_type: Option<&str>, url_path: &str) -> DecoderOptions {
    let mut o = DecoderOptions::new(Protocol::Auto);
    o.content_type = content_type.map(str::to_owned);
    o.url_path = url_path.to_owned();
    o
}

fn extract(pairs: &[(&str, &str)]) -> Extract {
    let mut x = Extract::default();
    for (k, v) in pairs {
        let slot = match *k {
            "text" => &mut x.text,
            "reasoning" => &mut x.reasoning,
            "output_tokens" => &mut x.output_tokens,
            "done" => &mut x.done,
            "error" => &mut x.error,
            "model" => &mut x.model,
            "input_tokens" => &mut x.input_tokens,
            "cached_input_tokens" => &mut x.cached_input_tokens,
            other => panic!("no extract field {other}"),
        };
        *slot = Some((*v).to_owned());
    }
    x
}

/// One event as a short string: `text:..`, `reasoning:..`, `tool:..`, `usage:N`, `done`,
/// `done:reason`, `error:..`; `None` for what the dialect tests below do not look at (the
/// response identity, and usage events without an output count): `details` renders those.
fn render(e: &Event<'_>) -> Option<String> {
    Some(match e {
        Event::Token { channel, text } => {
            let c = match channel {
                Channel::Text => "text",
                Channel::Reasoning => "reasoning",
                Channel::Tool => "tool",
            };
            format!("{c}:{text}")
        }
        Event::Usage(u) => format!("usage:{}", u.output_tokens?),
        Event::Identity { .. } => return None,
        Event::Done {
            finish_reason: None,
        } => "done".to_owned(),
        Event::Done {
            finish_reason: Some(r),
        } => format!("done:{r}"),
        Event::Error { message } => format!("error:{message}"),
    })
}

/// The identity and usage events only, in full: `model:M fp:F` and
/// `usage out=.. in=.. cached=.. reasoning=..` (`-` for an unknown count).
fn details(e: &Event<'_>) -> Option<String> {
    let n = |c: Option<u64>| c.map_or_else(|| "-".to_owned(), |c| c.to_string());
    match e {
        Event::Identity { model, fingerprint } => Some(format!(
            "model:{} fp:{}",
            model.as_deref().unwrap_or("-"),
            fingerprint.as_deref().unwrap_or("-")
        )),
        Event::Usage(u) => Some(format!(
            "usage out={} in={} cached={} reasoning={}",
            n(u.output_tokens),
            n(u.input_tokens),
            n(u.cached_input_tokens),
            n(u.reasoning_tokens)
        )),
        _ => None,
    }
}

/// What decoding produced: rendered events with the index of the `feed` call that produced
/// each (`usize::MAX` for `finish`), and the first error.
struct Run {
    events: Vec<(usize, String)>,
    /// Identity and usage events in full (see `details`).
    details: Vec<String>,
    result: Result<(), DecodeError>,
    protocol: Protocol,
    has_terminator: bool,
}

impl Run {
    fn events(&self) -> Vec<&str> {
        self.events.iter().map(|(_, e)| e.as_str()).collect()
    }
}

fn run_chunks(o: &DecoderOptions, chunks: &[&[u8]]) -> Run {
    let mut d = Decoder::new(o.clone());
    let mut events = Vec::new();
    let mut details_seen = Vec::new();
    let mut result = Ok(());
    for (i, chunk) in chunks.iter().enumerate() {
        result = d.feed(chunk, &mut |e| {
            events.extend(render(&e).map(|r| (i, r)));
            details_seen.extend(details(&e));
        });
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = d.finish(&mut |e| {
            events.extend(render(&e).map(|r| (usize::MAX, r)));
            details_seen.extend(details(&e));
        });
    }
    Run {
        events,
        details: details_seen,
        result,
        protocol: d.protocol(),
        has_terminator: d.has_terminator(),
    }
}

/// Decodes `body` whole, byte by byte and in 7-byte pieces; all must agree.
fn run(o: &DecoderOptions, body: &[u8]) -> Run {
    let whole = run_chunks(o, &[body]);
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    let sevens: Vec<&[u8]> = body.chunks(7).collect();
    for (name, other) in [
        ("byte by byte", run_chunks(o, &bytes)),
        ("7-byte pieces", run_chunks(o, &sevens)),
    ] {
        assert_eq!(other.events(), whole.events(), "{name}");
        assert_eq!(other.details, whole.details, "{name}");
        assert_eq!(other.result, whole.result, "{name}");
        assert_eq!(other.protocol, whole.protocol, "{name}");
    }
    whole
}

fn events(o: &DecoderOptions, body: &[u8]) -> Vec<String> {
    let r = run(o, body);
    assert_eq!(r.result, Ok(()));
    r.events.into_iter().map(|(_, e)| e).collect()
}

// ---- dialects ----------------------------------------------------------------------------

#[test]
fn openai_completions_text_usage_and_done() {
    let body = data("openai_completions.sse");
    let expected = ["text:Hello", "text: world", "usage:2", "done:length"];
    assert_eq!(events(&opts(Protocol::OpenAiCompletions), &body), expected);
    let r = run(&auto(Some("text/event-stream"), "/v1/completions"), &body);
    assert_eq!(
        (r.protocol, r.events()),
        (Protocol::OpenAiCompletions, expected.to_vec())
    );
    let r = run(&auto(Some("text/event-stream"), "/proxy"), &body);
    assert_eq!(
        r.protocol,
        Protocol::OpenAiCompletions,
        "detected from the first event"
    );
}

#[test]
fn openai_reasoning_and_tool_call_deltas_are_their_own_channels() {
    let body = data("openai_reasoning_tool_calls.sse");
    assert_eq!(
        events(&opts(Protocol::OpenAi), &body),
        [
            "reasoning:The user",
            "reasoning: wants weather.",
            "reasoning: (OpenRouter style)",
            "text:Let me check.",
            "tool:{\"location\"",
            "tool:: \"Paris\"}",
            "usage:40",
            "done:tool_calls",
        ]
    );
}

#[test]
fn vllm_error_payloads_in_a_200_stream_are_errors() {
    assert_eq!(
        events(&opts(Protocol::OpenAi), &data("vllm_error_payload.sse")),
        [
            "text:Par",
            "error:The decoder prompt (length 9000) is longer than the maximum model length of 8192.",
            "done",
        ]
    );
    let r = run(
        &auto(Some("text/event-stream"), "/v1/chat/completions"),
        &data("vllm_error_object.sse"),
    );
    assert_eq!(
        r.events(),
        ["error:CUDA out of memory. Tried to allocate 2.00 GiB"]
    );
    assert!(
        r.has_terminator,
        "no [DONE]: the caller sees a truncated, failed stream"
    );
}

#[test]
fn openai_stream_without_done_marker_ends_at_its_finish_reason() {
    let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    assert_eq!(
        events(&opts(Protocol::OpenAi), body),
        ["text:Hi", "done:stop"]
    );
    // Cut before the finish chunk: no terminator, so the caller reports `truncated`.
    let second = body.windows(6).rposition(|w| w == b"data: ").unwrap();
    assert_eq!(
        events(&opts(Protocol::OpenAi), &body[..second]),
        ["text:Hi"]
    );
}

#[test]
fn openai_responses_reasoning_tools_incomplete_and_errors() {
    let ev = |name: &str, json: &str| format!("event: {name}\ndata: {json}\n\n");
    let body = [
        ev("response.created", r#"{"type":"response.created","response":{"status":"in_progress","usage":null,"error":null}}"#),
        ev("response.reasoning_summary_text.delta", r#"{"type":"response.reasoning_summary_text.delta","delta":"Thinking"}"#),
        ev("response.reasoning_text.delta", r#"{"type":"response.reasoning_text.delta","delta":" hard"}"#),
        ev("response.output_text.delta", r#"{"type":"response.output_text.delta","delta":""}"#),
        ev("response.function_call_arguments.delta", r#"{"type":"response.function_call_arguments.delta","delta":"{\"a\":1}"}"#),
        ev("response.output_text.delta", r#"{"type":"response.output_text.delta","delta":"Hi"}"#),
        ev("response.incomplete", r#"{"type":"response.incomplete","response":{"status":"incomplete","usage":{"output_tokens":16}}}"#),
    ]
    .concat();
    assert_eq!(
        events(&opts(Protocol::OpenAiResponses), body.as_bytes()),
        [
            "reasoning:Thinking",
            "reasoning: hard",
            "tool:{\"a\":1}",
            "text:Hi",
            "usage:16",
            "done:incomplete"
        ]
    );
    let failed = [
        ev("error", r#"{"type":"error","code":"server_error","message":"The server had an error","param":null}"#),
        ev("response.failed", r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"boom"}}}"#),
    ]
    .concat();
    assert_eq!(
        events(&opts(Protocol::OpenAiResponses), failed.as_bytes()),
        ["error:The server had an error", "error:boom"]
    );
}

#[test]
fn anthropic_thinking_text_and_tool_use() {
    let body = data("anthropic_thinking_tool_use.sse");
    let expected = [
        "reasoning:The user wants the weather.",
        "text:Checking été.",
        "tool:{\"location\":",
        "tool: \"Paris\"}",
        "usage:89",
        "done:tool_use",
    ];
    assert_eq!(events(&opts(Protocol::Anthropic), &body), expected);
    let r = run(&auto(Some("text/event-stream"), "/"), &body);
    assert_eq!(
        (r.protocol, r.events()),
        (Protocol::Anthropic, expected.to_vec())
    );
}

#[test]
fn anthropic_error_event_is_an_error_and_provisional_usage_is_not_reported() {
    let r = run(
        &opts(Protocol::Anthropic),
        &data("anthropic_overloaded_error.sse"),
    );
    assert_eq!(r.events(), ["error:Overloaded"]);
    assert!(r.has_terminator);
}

#[test]
fn gemini_function_calls_errors_blocked_prompts_and_missing_finish() {
    let o = opts(Protocol::Gemini);
    let call = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\", \"args\": {\"city\": \"Paris\"}}}],\"role\": \"model\"},\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"candidatesTokenCount\": 7}}\r\n\r\n";
    assert_eq!(
        events(&o, call),
        ["tool:get_weather", "usage:7", "done:STOP"]
    );
    let error = b"data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\r\n\r\n";
    assert_eq!(events(&o, error), ["error:The model is overloaded."]);
    let blocked = b"data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"}}\n\n";
    assert_eq!(events(&o, blocked), ["error:prompt blocked: SAFETY"]);
    // No finishReason before EOF: no terminator, the caller reports `truncated`.
    let cut = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}]}\n\n";
    assert_eq!(events(&o, cut), ["text:Hi"]);
}

#[test]
fn ollama_chat_thinking_content_done_and_eval_count() {
    let body = data("ollama_chat_thinking.ndjson");
    let expected = [
        "reasoning:Two plus two",
        "reasoning: is four.",
        "text:It is",
        "text: 4.",
        "usage:12",
        "done:stop",
    ];
    assert_eq!(events(&opts(Protocol::Ollama), &body), expected);
    let r = run(&auto(Some("application/x-ndjson"), "/api/chat"), &body);
    assert_eq!(
        (r.protocol, r.events()),
        (Protocol::Ollama, expected.to_vec())
    );
    let r = run(&auto(Some("application/x-ndjson"), "/x"), &body);
    assert_eq!(r.protocol, Protocol::Ollama, "detected from the first line");
    assert_eq!(
        events(
            &opts(Protocol::Ollama),
            &data("ollama_chat_tool_call.ndjson")
        ),
        ["tool:get_weather", "usage:18", "done:stop"]
    );
}

#[test]
fn dify_agent_messages_thoughts_and_message_end() {
    let body = data("dify_agent_chat.sse");
    let expected = ["text:I", "text: will draw a cat.", "usage:7", "done"];
    assert_eq!(events(&opts(Protocol::Dify), &body), expected);
    let r = run(&auto(Some("text/event-stream"), "/v1/chat-messages"), &body);
    assert_eq!(
        (r.protocol, r.events()),
        (Protocol::Dify, expected.to_vec())
    );
}

#[test]
fn dify_error_event_and_workflow_runs() {
    assert_eq!(
        events(&opts(Protocol::Dify), &data("dify_error.sse")),
        [
            "text:Hi",
            "error:Your quota for Dify Hosted Model Provider has been exhausted."
        ]
    );
    let r = run(
        &auto(Some("text/event-stream"), "/v1/workflows/run"),
        &data("dify_workflow.sse"),
    );
    assert_eq!(
        (r.protocol, r.events()),
        (
            Protocol::Dify,
            vec!["text:Bonjour", "done:workflow_finished"]
        )
    );
    let failed = b"data: {\"event\": \"workflow_finished\", \"data\": {\"status\": \"failed\", \"error\": \"node llm failed\"}}\n\n";
    assert_eq!(
        events(&opts(Protocol::Dify), failed),
        ["error:node llm failed"]
    );
}

#[test]
fn tgi_special_tokens_are_not_tokens_and_generated_text_ends() {
    let body = data("tgi_generate_stream.sse");
    let expected = ["text:Hello", "text: world", "usage:3", "done:eos_token"];
    assert_eq!(events(&opts(Protocol::Tgi), &body), expected);
    let r = run(&auto(Some("text/event-stream"), "/generate_stream"), &body);
    assert_eq!((r.protocol, r.events()), (Protocol::Tgi, expected.to_vec()));
    let r = run(&auto(Some("text/event-stream"), "/"), &body);
    assert_eq!(r.protocol, Protocol::Tgi, "detected from the first event");
    assert_eq!(
        events(&opts(Protocol::Tgi), &data("tgi_error.sse")),
        [
            "text:Hello",
            "error:Request failed during generation: Server error: CUDA out of memory"
        ]
    );
}

// ---- response identity and token details ----------------------------------------------

fn details_of(o: &DecoderOptions, body: &[u8]) -> Vec<String> {
    let r = run(o, body);
    assert_eq!(r.result, Ok(()));
    r.details
}

#[test]
fn recorded_test_streams_report_model_and_input_tokens() {
    assert_eq!(
        details_of(
            &opts(Protocol::OpenAi),
            &data("openai_reasoning_tool_calls.sse")
        ),
        [
            "model:deepseek-reasoner fp:-",
            "usage out=40 in=10 cached=- reasoning=-"
        ]
    );
    assert_eq!(
        details_of(
            &opts(Protocol::OpenAiCompletions),
            &data("openai_completions.sse")
        ),
        [
            "model:gpt-3.5-turbo-instruct fp:-",
            "usage out=2 in=5 cached=- reasoning=-"
        ]
    );
    assert_eq!(
        details_of(
            &opts(Protocol::Anthropic),
            &data("anthropic_thinking_tool_use.sse")
        ),
        [
            "model:claude-sonnet-4-5 fp:-",
            // message_start: the input, without its provisional output count.
            "usage out=- in=472 cached=- reasoning=-",
            "usage out=89 in=- cached=- reasoning=-"
        ]
    );
    assert_eq!(
        details_of(
            &opts(Protocol::Ollama),
            &data("ollama_chat_thinking.ndjson")
        ),
        [
            "model:qwen3 fp:-",
            "usage out=12 in=26 cached=- reasoning=-"
        ]
    );
    assert_eq!(
        details_of(&opts(Protocol::Dify), &data("dify_agent_chat.sse")),
        ["usage out=7 in=1033 cached=- reasoning=-"]
    );
}

#[test]
fn openai_usage_details_cached_and_reasoning_tokens() {
    let chunk = |usage: &str| {
        format!(
            "data: {{\"model\":\"o3-2025-04-16\",\"system_fingerprint\":null,\"choices\":[],\"usage\":{usage}}}\n\n"
        )
    };
    let body = [
        chunk("null"),
        chunk(r#"{"prompt_tokens":2006,"completion_tokens":300,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":256,"accepted_prediction_tokens":0}}"#),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    assert_eq!(
        details_of(&opts(Protocol::OpenAi), body.as_bytes()),
        [
            "model:o3-2025-04-16 fp:-",
            "usage out=300 in=2006 cached=1920 reasoning=256"
        ]
    );
    // DeepSeek's own cache field; detail objects of unexpected shapes are ignored, not errors.
    let deepseek = chunk(
        r#"{"prompt_tokens":64,"completion_tokens":9,"prompt_cache_hit_tokens":60,"prompt_cache_miss_tokens":4,"completion_tokens_details":"n/a"}"#,
    );
    assert_eq!(
        details_of(&opts(Protocol::OpenAi), deepseek.as_bytes()),
        [
            "model:o3-2025-04-16 fp:-",
            "usage out=9 in=64 cached=60 reasoning=-"
        ]
    );
}

#[test]
fn identity_is_reported_once_and_again_on_change() {
    let chunk = |model: &str, fp: &str, text: &str| {
        format!(
            "data: {{\"model\":\"{model}\",\"system_fingerprint\":{fp},\"choices\":[{{\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
        )
    };
    let body = [
        chunk("gpt-4o", "\"fp_a\"", "a"),
        chunk("gpt-4o", "\"fp_a\"", "b"),
        // A chunk without a fingerprint keeps the last one.
        chunk("gpt-4o", "null", "c"),
        chunk("gpt-4o", "\"fp_b\"", "d"),
        chunk("gpt-4o-mini", "\"fp_b\"", "e"),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let r = run(&opts(Protocol::OpenAi), body.as_bytes());
    assert_eq!(
        r.details,
        [
            "model:gpt-4o fp:fp_a",
            "model:gpt-4o fp:fp_b",
            "model:gpt-4o-mini fp:fp_b"
        ]
    );
    assert_eq!(r.events().len(), 6, "5 tokens and done: {:?}", r.events());
}

#[test]
fn responses_model_and_usage_details() {
    let ev = |name: &str, json: &str| format!("event: {name}\ndata: {json}\n\n");
    let body = [
        ev("response.created", r#"{"type":"response.created","response":{"model":"gpt-5-mini-2025-08-07","status":"in_progress","usage":null}}"#),
        ev("response.output_text.delta", r#"{"type":"response.output_text.delta","delta":"Hi"}"#),
        ev("response.completed", r#"{"type":"response.completed","response":{"model":"gpt-5-mini-2025-08-07","status":"completed","usage":{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1024},"output_tokens":130,"output_tokens_details":{"reasoning_tokens":128},"total_tokens":1330}}}"#),
    ]
    .concat();
    assert_eq!(
        details_of(&opts(Protocol::OpenAiResponses), body.as_bytes()),
        [
            "model:gpt-5-mini-2025-08-07 fp:-",
            "usage out=130 in=1200 cached=1024 reasoning=128"
        ]
    );
}

#[test]
fn anthropic_input_adds_cache_reads_and_writes_and_message_delta_updates_them() {
    let ev = |name: &str, json: &str| format!("event: {name}\ndata: {json}\n\n");
    let body = [
        ev("message_start", r#"{"type":"message_start","message":{"model":"claude-opus-4-1-20250805","usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":10,"output_tokens":1}}}"#),
        ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#),
        // Newer API versions repeat cumulative input counts here, possibly only some of them.
        ev("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":100,"cache_read_input_tokens":30,"output_tokens":8}}"#),
        ev("message_stop", r#"{"type":"message_stop"}"#),
    ]
    .concat();
    assert_eq!(
        details_of(&opts(Protocol::Anthropic), body.as_bytes()),
        [
            "model:claude-opus-4-1-20250805 fp:-",
            "usage out=- in=130 cached=10 reasoning=-",
            "usage out=8 in=150 cached=30 reasoning=-"
        ]
    );
}

#[test]
fn gemini_tgi_and_generic_details() {
    let gemini = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]},\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 4096,\"cachedContentTokenCount\": 4000,\"candidatesTokenCount\": 1,\"thoughtsTokenCount\": 17},\"modelVersion\": \"gemini-2.5-pro\"}\r\n\r\n";
    assert_eq!(
        details_of(&opts(Protocol::Gemini), gemini),
        [
            "model:gemini-2.5-pro fp:-",
            "usage out=1 in=4096 cached=4000 reasoning=17"
        ]
    );
    let tgi = b"data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"Hi\",\"logprob\":-0.1,\"special\":false},\"generated_text\":\"Hi\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":1,\"seed\":null,\"input_length\":9}}\n\n";
    assert_eq!(
        details_of(&opts(Protocol::Tgi), tgi),
        ["usage out=1 in=9 cached=- reasoning=-"]
    );
    let mut o = opts(Protocol::Ndjson);
    o.extract = Some(extract(&[
        ("text", "/t"),
        ("model", "/meta/model"),
        ("input_tokens", "/meta/in"),
        ("cached_input_tokens", "/meta/hit"),
    ]));
    let body = b"{\"t\":\"a\",\"meta\":{\"model\":\"m-1\",\"in\":5}}\n{\"t\":\"b\",\"meta\":{\"model\":\"m-1\",\"in\":5,\"hit\":2}}\n";
    assert_eq!(
        details_of(&o, body),
        [
            "model:m-1 fp:-",
            "usage out=- in=5 cached=- reasoning=-",
            "usage out=- in=5 cached=2 reasoning=-"
        ]
    );
}

// ---- generic sse / ndjson / raw ------------------------------------------------------------

#[test]
fn generic_sse_without_extract_counts_every_data_event() {
    let body = b": keep-alive\n\ndata: hello\n\ndata: \n\nevent: x\n\ndata: wor\ndata: ld\n\ndata: [DONE]\n\n";
    let r = run(&opts(Protocol::Sse), body);
    assert_eq!(r.events(), ["text:hello", "text:wor\nld", "done"]);
    assert!(
        !r.has_terminator,
        "generic streams without a done pointer may simply end"
    );
}

#[test]
fn generic_sse_with_extract_reads_pointers() {
    let mut o = opts(Protocol::Sse);
    o.extract = Some(llama_cpp_extract());
    let body = b"data: {\"content\":\"\",\"stop\":false,\"tokens_predicted\":0}\n\n\
data: {\"content\":\"Hi\",\"stop\":false,\"tokens_predicted\":1}\n\n\
data: {\"error\":{\"code\":500,\"message\":\"context shift disabled\",\"type\":\"server_error\"}}\n\n";
    let r = run(&o, body);
    assert_eq!(
        r.events(),
        [
            "usage:0",
            "text:Hi",
            "usage:1",
            "error:context shift disabled"
        ]
    );
    assert!(r.has_terminator);
    // The same stream under `auto` at llama.cpp's native path.
    let r = run(&auto(Some("text/event-stream"), "/completion"), body);
    assert_eq!((r.protocol, r.events().len()), (Protocol::Sse, 4));
}

#[test]
fn generic_ndjson_with_and_without_extract() {
    let body = b"{\"r\":\"hmm\",\"t\":\"\"}\n\n{\"t\":\"A\",\"n\":1}\r\n{\"t\":\"B\",\"n\":2,\"finish\":\"stop\"}";
    let mut o = opts(Protocol::Ndjson);
    assert_eq!(
        events(&o, body),
        [
            "text:{\"r\":\"hmm\",\"t\":\"\"}",
            "text:{\"t\":\"A\",\"n\":1}",
            "text:{\"t\":\"B\",\"n\":2,\"finish\":\"stop\"}"
        ]
    );
    o.extract = Some(extract(&[
        ("text", "/t"),
        ("reasoning", "/r"),
        ("output_tokens", "/n"),
        ("done", "/finish"),
        ("error", "/err"),
    ]));
    let r = run(&o, body);
    assert_eq!(
        r.events(),
        [
            "reasoning:hmm",
            "text:A",
            "usage:1",
            "text:B",
            "usage:2",
            "done:stop"
        ]
    );
    assert!(r.has_terminator);
    // Only a done pointer: every event is still a token.
    o.extract = Some(extract(&[("done", "/finish")]));
    assert_eq!(events(&o, body).len(), 4);
    // Extract pointers demand JSON.
    o.extract = Some(extract(&[("text", "/t")]));
    let r = run(&o, b"not json\n");
    assert!(
        matches!(
            r.result,
            Err(DecodeError::Malformed {
                protocol: "ndjson",
                ..
            })
        ),
        "{:?}",
        r.result
    );
}

#[test]
fn raw_chunks_are_tokens_and_utf8_is_carried_across_chunks() {
    let o = opts(Protocol::Raw);
    let r = run_chunks(&o, &[b"Hel", b"", b"lo \xe4", b"\xbd", b"\xa0\xe5\xa5\xbd"]);
    assert_eq!(r.result, Ok(()));
    // The chunk holding only part of a character produces no token; the one completing it does.
    assert_eq!(
        r.events,
        [
            (0, "text:Hel".to_owned()),
            (2, "text:lo ".to_owned()),
            (4, "text:你好".to_owned())
        ]
    );
    assert!(!r.has_terminator);
    let bad = run_chunks(&o, &[b"ok", b"a\xffb"]);
    assert_eq!(bad.result, Err(DecodeError::InvalidUtf8 { offset: 3 }));
    let cut = run_chunks(&o, &[b"ok\xe4\xbd"]);
    assert_eq!(cut.result, Err(DecodeError::InvalidUtf8 { offset: 2 }));
    assert_eq!(cut.events(), ["text:ok"]);
}

// ---- SSE framing -----------------------------------------------------------------------------

#[test]
fn sse_cr_only_bom_comments_fields_and_multiline_data() {
    let body =
        b"\xEF\xBB\xBF: comment\r\rid: 7\rretry: 1000\revent: x\rdata:first\rdata:  second\r\r";
    assert_eq!(events(&opts(Protocol::Sse), body), ["text:first\n second"]);
}

#[test]
fn sse_data_less_and_empty_events_are_not_tokens() {
    let body = b"event: ping\n\nid: 3\n\ndata\n\ndata:\n\n:\n\n";
    assert_eq!(events(&opts(Protocol::Sse), body), Vec::<String>::new());
}

#[test]
fn sse_event_completes_with_its_blank_line_in_any_chunking() {
    let o = opts(Protocol::Sse);
    // CRLF split across chunks: the event is complete once the LF of the blank line arrives.
    let r = run_chunks(&o, &[b"data: a\r", b"\n", b"\r", b"\ndata: b\r\n\r\n"]);
    assert_eq!(
        r.events,
        [(3, "text:a".to_owned()), (3, "text:b".to_owned())]
    );
    let r = run_chunks(&o, &[b"data: a\n", b"\n", b"data: b\n"]);
    assert_eq!(
        r.events,
        [(1, "text:a".to_owned()), (usize::MAX, "text:b".to_owned())]
    );
    // A partial last line is discarded at EOF, as the spec says.
    let r = run_chunks(&o, &[b"data: a\n\ndata: trunc"]);
    assert_eq!(r.events(), ["text:a"]);
}

// ---- failures ------------------------------------------------------------------------------

#[test]
fn over_long_lines_and_events_fail_in_every_chunking() {
    let mut o = opts(Protocol::Sse);
    o.max_event_bytes = 64;
    let long_line = format!("data: ok\n\ndata: {}\n\n", "x".repeat(80));
    let r = run(&o, long_line.as_bytes());
    assert_eq!(
        (r.events(), r.result.clone()),
        (vec!["text:ok"], Err(DecodeError::TooLong { limit: 64 }))
    );
    let long_event = format!("data: {0}\ndata: {0}\ndata: {0}\n\n", "y".repeat(30));
    assert_eq!(
        run(&o, long_event.as_bytes()).result,
        Err(DecodeError::TooLong { limit: 64 })
    );
    let unterminated = "z".repeat(200);
    assert_eq!(
        run(&o, unterminated.as_bytes()).result,
        Err(DecodeError::TooLong { limit: 64 })
    );
    o.protocol = Protocol::Ollama;
    let long_ndjson = format!("{{\"response\":\"{}\"}}\n", "w".repeat(80));
    assert_eq!(
        run(&o, long_ndjson.as_bytes()).result,
        Err(DecodeError::TooLong { limit: 64 })
    );
}

#[test]
fn a_failed_decoder_keeps_failing() {
    let mut o = opts(Protocol::Sse);
    o.max_event_bytes = 8;
    let mut d = Decoder::new(o);
    let err = Err(DecodeError::TooLong { limit: 8 });
    assert_eq!(d.feed(b"data: 0123456789", &mut |_| {}), err);
    assert_eq!(
        d.feed(b"\n\n", &mut |_| panic!("no events after an error")),
        err
    );
    assert_eq!(d.finish(&mut |_| panic!("no events after an error")), err);
}

#[test]
fn invalid_utf8_reports_its_offset() {
    let r = run(&opts(Protocol::Sse), b"data: ok\n\ndata: a\xffb\n\n");
    assert_eq!(
        (r.events(), r.result.clone()),
        (
            vec!["text:ok"],
            Err(DecodeError::InvalidUtf8 { offset: 17 })
        )
    );
    let r = run(&opts(Protocol::Ollama), b"{\"response\":\"\xc3\"}\n");
    assert_eq!(r.result, Err(DecodeError::InvalidUtf8 { offset: 13 }));
}

#[test]
fn malformed_json_in_a_json_dialect_is_an_error() {
    for p in [
        Protocol::OpenAi,
        Protocol::OpenAiResponses,
        Protocol::Anthropic,
        Protocol::Gemini,
        Protocol::Dify,
        Protocol::Tgi,
    ] {
        let r = run(&opts(p), b"data: {\"choices\": [\n\n");
        assert!(
            matches!(&r.result, Err(DecodeError::Malformed { protocol, .. }) if *protocol == p.as_str()),
            "{p}: {:?}",
            r.result
        );
    }
    let r = run(&opts(Protocol::Ollama), b"{\"response\": tru}\n");
    assert!(matches!(
        r.result,
        Err(DecodeError::Malformed {
            protocol: "ollama",
            ..
        })
    ));
}

#[test]
fn decoder_can_move_into_a_task() {
    fn send<T: Send + 'static>(_: &T) {}
    send(&Decoder::new(opts(Protocol::Auto)));
}

// ---- auto ----------------------------------------------------------------------------------

#[test]
fn auto_without_hints_sniffs_the_framing() {
    let r = run(
        &auto(None, ""),
        b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n",
    );
    assert_eq!(
        (r.protocol, r.events()),
        (Protocol::OpenAi, vec!["text:Hi", "done"])
    );
    let r = run(
        &auto(None, ""),
        b"{\"model\":\"m\",\"response\":\"Hi\",\"done\":false}\n",
    );
    assert_eq!(
        (r.protocol, r.events()),
        (Protocol::Ollama, vec!["text:Hi"])
    );
    let r = run_chunks(&auto(None, ""), &[b"plain ", b"text\nmore"]);
    assert_eq!(
        (r.protocol, r.events()),
        (Protocol::Raw, vec!["text:plain text\nmore"])
    );
    let r = run_chunks(
        &auto(Some("text/plain; charset=utf-8"), "/stream"),
        &[b"plain ", b"text"],
    );
    assert_eq!(
        (r.protocol, r.events()),
        (Protocol::Raw, vec!["text:plain ", "text:text"])
    );
}

#[test]
fn auto_reports_auto_until_it_has_decided() {
    let mut d = Decoder::new(auto(Some("text/event-stream"), "/stream"));
    assert_eq!((d.protocol(), d.has_terminator()), (Protocol::Auto, false));
    d.feed(
        b": hi\n\nevent: message_start\ndata: {\"type\":\"message_start\"}\n\n",
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        (d.protocol(), d.has_terminator()),
        (Protocol::Anthropic, true)
    );
    let d = Decoder::new(auto(Some("text/event-stream"), "/v1/messages"));
    assert_eq!(
        d.protocol(),
        Protocol::Anthropic,
        "decided by the URL before any byte"
    );
}

#[test]
fn auto_with_extract_uses_the_generic_dialect() {
    let mut o = auto(Some("application/x-ndjson"), "/api/generate");
    o.extract = Some(extract(&[("text", "/t")]));
    let r = run(&o, b"{\"t\":\"A\"}\n");
    assert_eq!((r.protocol, r.events()), (Protocol::Ndjson, vec!["text:A"]));
}
