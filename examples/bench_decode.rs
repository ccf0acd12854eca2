//! Decode-throughput micro-benchmark for `stream::Decoder`: the OpenAI, vLLM and Anthropic
//! corpus recordings repeated in memory to ~64 MiB, fed in realistic read sizes, decoded on
//! one core. Prints MB/s and events/s; the `sse-frame` row decodes the OpenAI body as generic
//! SSE, i.e. the framing cost without JSON parsing.
//!
//! Run: `cargo run --release --example bench_decode` (needs `../shared/corpus` beside the repo).
//! Does not: touch the network or compare against a baseline; it only reports.

use std::hint::black_box;
use std::time::Instant;

use streamprobe::stream::{Decoder, DecoderOptions, Event, Protocol};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");
const TARGET_BYTES: usize = 64 << 20;

fn main() {
    let cases = [
        ("openai", "openai_chat_stream_usage.sse", Protocol::OpenAi),
        (
            "vllm",
            "vllm_chat_stream_continuous_usage.sse",
            Protocol::OpenAi,
        ),
        (
            "anthropic",
            "anthropic_messages_stream.sse",
            Protocol::Anthropic,
        ),
        // Generic SSE on the OpenAI body: the framing cost alone, no JSON parsing.
        ("sse-frame", "openai_chat_stream_usage.sse", Protocol::Sse),
    ];
    println!(
        "{:<10} {:>7} {:>10} {:>12} {:>14}",
        "stream", "chunk", "MB/s", "events/s", "tokens"
    );
    for (name, file, protocol) in cases {
        let path = format!("{CORPUS}/{file}");
        let body = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {path}: {e}");
                std::process::exit(2);
            }
        };
        let repeated = body.repeat(TARGET_BYTES / body.len() + 1);
        // 1448: one TCP segment's payload; 16 KiB: a busy connection's socket read.
        for chunk in [1448, 16 << 10] {
            let (secs, events, tokens) = best_of(3, || decode(&repeated, chunk, protocol));
            let mb = repeated.len() as f64 / 1e6;
            println!(
                "{name:<10} {chunk:>7} {:>10.0} {:>12.0} {tokens:>14}",
                mb / secs,
                events as f64 / secs
            );
        }
    }
}

/// Decodes `body` in `chunk`-byte reads; returns (events, text tokens).
fn decode(body: &[u8], chunk: usize, protocol: Protocol) -> (u64, u64) {
    let mut decoder = Decoder::new(DecoderOptions::new(protocol));
    let (mut events, mut tokens) = (0u64, 0u64);
    let mut sink = |e: Event<'_>| {
        events += 1;
        if let Event::Token { text, .. } = &e {
            tokens += 1;
            black_box(text);
        }
    };
    for piece in body.chunks(chunk) {
        if let Err(e) = decoder.feed(piece, &mut sink) {
            eprintln!("error: decode failed: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = decoder.finish(&mut sink) {
        eprintln!("error: decode failed: {e}");
        std::process::exit(1);
    }
    (events, tokens)
}

/// The fastest of `n` runs: (seconds, events, tokens).
fn best_of(n: usize, mut run: impl FnMut() -> (u64, u64)) -> (f64, u64, u64) {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            let (events, tokens) = run();
            (start.elapsed().as_secs_f64(), events, tokens)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((f64::NAN, 0, 0))
}
