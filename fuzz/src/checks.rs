//! The properties the fuzz targets check, shared by the libFuzzer targets (`fuzz_targets/`) and
//! the stable replay test (`tests/fuzz_regressions.rs` includes this file by path), so a saved
//! input is judged the same way on nightly and in CI.
//!
//! Each check panics on a violation (libFuzzer records a panic as a crash) with a message that
//! says which property broke.
//!
//! Does not: touch the network or write files. The config check reads only what the config
//! names relative to an empty scratch directory (and absolute paths it spells out).

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use streamprobe::config::{Env, check_report, load_str_with_env};
use streamprobe::stream::{
    Channel, DecodeError, Decoder, DecoderOptions, Event, Protocol, error_message,
    llama_cpp_extract,
};

/// Bytes before the body in a decoder input: protocol and chunking, hints, chunk seed.
pub const DECODER_HEADER_LEN: usize = 3;

/// `max_event_bytes` choices: the production-like 64 KiB, and small limits so that the
/// over-long-line paths are reachable with short inputs.
const MAX_EVENT_BYTES: [usize; 4] = [64 * 1024, 16, 128, 1024];

const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("text/event-stream; charset=utf-8"),
    Some("application/x-ndjson"),
    Some("text/plain"),
];

/// `url_path` choices: none (sniffing / first-event detection) and one path per dialect family.
const URL_PATHS: [&str; 8] = [
    "",
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/messages",
    "/completion",
    "/api/chat",
    "/v1beta/models/m:streamGenerateContent",
    "/generate_stream",
];

/// How the body is cut into `feed` calls.
#[derive(Debug, Clone, Copy)]
pub enum Chunking {
    /// One byte per `feed`.
    Bytes,
    /// Pseudo-random lengths in `0..=max` (empty chunks included), from `seed`.
    Random { seed: u8, max: usize },
}

impl Chunking {
    fn cut(self, body: &[u8]) -> Vec<&[u8]> {
        match self {
            Chunking::Bytes => body.chunks(1).collect(),
            Chunking::Random { seed, max } => {
                let mut state = u64::from(seed) ^ 0x9E37_79B9_7F4A_7C15;
                let mut chunks = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    // xorshift64: deterministic, so a saved input replays the same chunking.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let len = (state % (max as u64 + 1)) as usize;
                    let (chunk, tail) = rest.split_at(len.min(rest.len()));
                    chunks.push(chunk);
                    rest = tail;
                }
                chunks
            }
        }
    }
}

/// A decoder input: `data[0]` low nibble = protocol (`Protocol::ALL`, modulo), bits 4-5 =
/// chunking, bits 6-7 = `max_event_bytes`; `data[1]` bits 0-1 = content type, bits 2-4 = URL
/// path, bit 5 = llama.cpp extract; `data[2]` = chunk seed; the rest is the body.
#[derive(Debug)]
pub struct DecoderCase<'a> {
    pub opts: DecoderOptions,
    pub chunking: Chunking,
    pub body: &'a [u8],
}

impl<'a> DecoderCase<'a> {
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (&[select, hints, seed], body) = data.split_first_chunk::<DECODER_HEADER_LEN>()?;
        let protocol = Protocol::ALL[usize::from(select & 0x0f) % Protocol::ALL.len()];
        let chunking = match (select >> 4) & 3 {
            0 => Chunking::Bytes,
            1 => Chunking::Random { seed, max: 7 },
            2 => Chunking::Random { seed, max: 64 },
            _ => Chunking::Random { seed, max: 1024 },
        };
        let opts = DecoderOptions {
            protocol,
            extract: (hints & 0x20 != 0).then(llama_cpp_extract),
            max_event_bytes: MAX_EVENT_BYTES[usize::from(select >> 6)],
            content_type: CONTENT_TYPES[usize::from(hints & 3)].map(str::to_owned),
            url_path: URL_PATHS[usize::from((hints >> 2) & 7)].to_owned(),
        };
        Some(DecoderCase {
            opts,
            chunking,
            body,
        })
    }
}

/// Everything one decoding produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event<'static>>,
    /// The first error of any `feed` or of `finish`.
    result: Result<(), DecodeError>,
    /// What the decoder ended up as (`auto` resolves while decoding).
    protocol: Protocol,
}

fn decode(opts: &DecoderOptions, chunks: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new(opts.clone());
    let mut events = Vec::new();
    let result = {
        let mut sink = |ev: Event<'_>| events.push(ev.into_owned());
        let mut result = chunks
            .iter()
            .try_for_each(|chunk| decoder.feed(chunk, &mut sink));
        if result.is_ok() {
            result = decoder.finish(&mut sink);
        }
        if let Err(e) = &result {
            let again = decoder.feed(b"data: {}\n\n", &mut sink);
            assert_eq!(
                again.as_ref(),
                Err(e),
                "a failed decoder must repeat its error"
            );
        }
        result
    };
    Outcome {
        events,
        result,
        protocol: decoder.protocol(),
    }
}

/// Raw streams are one token per non-empty chunk by design (TTFT is the first chunk), so only
/// their concatenated text is chunking-independent.
fn merge_raw_tokens(outcome: &mut Outcome) {
    let mut text = String::new();
    for ev in outcome.events.drain(..) {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            other => panic!("raw stream produced a non-token event {other:?}"),
        }
    }
    if !text.is_empty() {
        outcome.events.push(Event::Token {
            channel: Channel::Text,
            text: text.into(),
        });
    }
}

/// Whether a line longer than `max` exists under both SSE (CR, LF) and NDJSON (LF) framing.
fn has_line_longer_than(body: &[u8], max: usize) -> bool {
    body.split(|&b| b == b'\n' || b == b'\r')
        .any(|line| line.len() > max)
}

/// The decoder contract: no panic; the same events and the same result whole and chunked; no
/// empty token; in-band error messages are short; a line over `max_event_bytes` is an error.
pub fn check_decoder(data: &[u8]) {
    let Some(case) = DecoderCase::parse(data) else {
        return;
    };
    let mut whole = decode(&case.opts, &[case.body]);
    let mut chunked = decode(&case.opts, &case.chunking.cut(case.body));

    for ev in whole.events.iter().chain(&chunked.events) {
        match ev {
            Event::Token { text, .. } => assert!(!text.is_empty(), "empty token: {ev:?}"),
            Event::Error { message } => assert!(
                message.chars().count() <= 257,
                "in-band error message over 256 characters: {message:?}"
            ),
            _ => {}
        }
    }

    let framed = whole.protocol != Protocol::Raw;
    if framed && has_line_longer_than(case.body, case.opts.max_event_bytes) {
        assert!(
            whole.result.is_err() && chunked.result.is_err(),
            "a line over max_event_bytes ({}) must fail: whole {:?}, chunked {:?}",
            case.opts.max_event_bytes,
            whole.result,
            chunked.result
        );
    }

    if whole.protocol == Protocol::Raw && chunked.protocol == Protocol::Raw {
        if whole.result.is_err() {
            // A chunk with an invalid byte fails before emitting its valid prefix, so the text
            // before a UTF-8 error depends on the cuts; the error itself must not.
            assert_eq!(whole.result, chunked.result, "raw: results differ");
            return;
        }
        merge_raw_tokens(&mut whole);
        merge_raw_tokens(&mut chunked);
    }
    assert_eq!(
        whole, chunked,
        "whole vs chunked ({:?}) differ for {:?}",
        case.chunking, case.opts
    );
}

/// `error_message`: no panic, and at most 256 characters plus an ellipsis.
pub fn check_error_body(data: &[u8]) {
    if let Some(message) = error_message(data) {
        let n = message.chars().count();
        assert!(
            n <= 256 || (n == 257 && message.ends_with('…')),
            "error_message returned {n} characters: {message:?}"
        );
    }
}

/// The only variable a fuzzed config can resolve; its value must never show in a message.
pub const SECRET_VAR: &str = "FUZZ_API_KEY";
pub const SECRET_VALUE: &str = "sk-fuzz-7Qv2Xw9Lm4";

/// The loader: no panic; an error message is non-empty, names the file and is one line; a
/// loaded config gives a `check` report; neither leaks the secret. `dir` must be an empty
/// scratch directory: relative `data_source.file` and `${file:...}` resolve against it.
/// `multiline_ok` excuses a message from the one-line rule: the fuzz target uses it to step over
/// a known bug that is not fixed yet; the replay test excuses nothing.
pub fn check_config(data: &[u8], dir: &Path, multiline_ok: fn(&str) -> bool) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // An absolute path to a device or a kernel file can block or never end (`/dev/zero`); the
    // loader reads what the file names, as intended, so keep such inputs out.
    if ["/dev", "/proc", "/sys", "/run"]
        .iter()
        .any(|p| text.contains(p))
    {
        return;
    }
    let path = dir.join("streamprobe.yaml");
    let env = Env::vars([(SECRET_VAR, SECRET_VALUE)]);
    let leaks = |s: &str| !text.contains(SECRET_VALUE) && s.contains(SECRET_VALUE);
    match load_str_with_env(text, &path, &env) {
        Ok(config) => {
            let report = check_report(&config, report_now());
            assert!(!leaks(&report), "check report shows the secret:\n{report}");
            let debug = format!("{config:?}");
            assert!(!leaks(&debug), "config Debug shows the secret: {debug}");
        }
        Err(err) => {
            let message = err.to_string();
            assert!(!message.trim().is_empty(), "empty config error message");
            assert!(
                message.starts_with(&path.display().to_string()),
                "config error does not name the file: {message:?}"
            );
            assert!(
                !message.contains(['\n', '\r']) || multiline_ok(&message),
                "config error spans several lines: {message:?}"
            );
            assert!(!leaks(&message), "config error shows the secret: {message}");
        }
    }
}

/// A fixed `now` for the `check` report, on a DST change in Europe (schedules with a
/// timezone must cope with the missing hour).
fn report_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0)
        .single()
        .expect("a valid instant")
}
