//! The stream decoder against recorded response bodies (`../shared/corpus`, see its
//! README): every entry decoded with its protocol, with `auto` from URL path + content type,
//! and with `auto` from content type alone (first-event detection) — fed whole, one byte at a
//! time and cut at the recorded TCP read boundaries — must extract the manifest's expected
//! values, and every chunking must yield identical events. `auto` is also run with no hints
//! at all (framing sniffed from the first bytes). The response model, fingerprint and token
//! details, which the shared manifest predates, are checked against this repo's own
//! `tests/data/corpus_expected.json`, keyed by corpus file name.
//!
//! Does not: test framing edge cases or dialects the corpus lacks (`stream_dialects.rs` does).

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;
use streamprobe::stream::{
    Channel, DecodeError, Decoder, DecoderOptions, Event, Protocol, Usage, error_message,
    llama_cpp_extract,
};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");
const EXPECTED_EXTRA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/corpus_expected.json"
);

/// `tests/data/corpus_expected.json`: identity and token details per corpus file.
fn expected_details() -> &'static Value {
    static CELL: OnceLock<Value> = OnceLock::new();
    CELL.get_or_init(|| {
        let text =
            std::fs::read(EXPECTED_EXTRA).unwrap_or_else(|e| panic!("{EXPECTED_EXTRA}: {e}"));
        serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{EXPECTED_EXTRA}: {e}"))
    })
}

struct Entry {
    file: String,
    manifest: Value,
    body: Vec<u8>,
}

impl Entry {
    fn expected(&self, key: &str) -> &Value {
        &self.manifest["expected"][key]
    }

    fn content_type(&self) -> String {
        self.manifest["content_type"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The protocol to decode with, from the manifest's protocol name; `None` for entries that
    /// are not streams (a JSON error body).
    fn options(&self) -> Option<DecoderOptions> {
        let name = self.manifest["protocol"].as_str().unwrap_or_default();
        let (protocol, extract) = if self.manifest["framing"] == "json" {
            return None;
        } else if name.starts_with("openai.chat.completions") || name.starts_with("vllm.") {
            (Protocol::OpenAi, None)
        } else if name.starts_with("openai.responses") {
            (Protocol::OpenAiResponses, None)
        } else if name.starts_with("anthropic") {
            (Protocol::Anthropic, None)
        } else if name.starts_with("google.gemini") || name.starts_with("google.vertexai") {
            (Protocol::Gemini, None)
        } else if name.starts_with("ollama") {
            (Protocol::Ollama, None)
        } else if name.starts_with("dify") {
            (Protocol::Dify, None)
        } else if name.starts_with("llama.cpp") {
            (Protocol::Sse, Some(llama_cpp_extract()))
        } else {
            panic!("{}: no protocol mapping for {name:?}", self.file);
        };
        let mut opts = DecoderOptions::new(protocol);
        opts.extract = extract;
        Some(opts)
    }

    /// The path of the manifest's endpoint (`POST https://host/v1/x?q (..)` → `/v1/x`).
    fn url_path(&self) -> String {
        let endpoint = self.manifest["endpoint"].as_str().unwrap_or_default();
        let url = endpoint.split_whitespace().nth(1).unwrap_or_default();
        let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
        let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
        path.split('?').next().unwrap_or(path).to_owned()
    }

    fn tcp_cuts(&self) -> Option<Vec<usize>> {
        let cuts = self.manifest.get("tcp_chunk_boundaries")?.as_array()?;
        Some(cuts.iter().map(|c| c.as_u64().unwrap() as usize).collect())
    }
}

fn corpus() -> &'static [Entry] {
    static CELL: OnceLock<Vec<Entry>> = OnceLock::new();
    CELL.get_or_init(|| {
        let manifest = std::fs::read(format!("{CORPUS}/manifest.json")).unwrap_or_else(|e| {
            panic!("{CORPUS}/manifest.json: {e} (clone the shared corpus beside the repo)")
        });
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        let entries = manifest["entries"].as_array().unwrap();
        assert!(
            entries.len() >= 14,
            "corpus shrank to {} entries",
            entries.len()
        );
        entries
            .iter()
            .map(|m| {
                let file = m["file"].as_str().unwrap().to_owned();
                let body = std::fs::read(format!("{CORPUS}/{file}")).unwrap();
                assert_eq!(
                    body.len() as u64,
                    m["bytes"].as_u64().unwrap(),
                    "{file}: size"
                );
                Entry {
                    file,
                    manifest: m.clone(),
                    body,
                }
            })
            .collect()
    })
}

/// What one decode produced: every event (owned), the byte offset (exclusive) of the chunk
/// that produced the first text / first any-channel token, the result, and the protocol.
#[derive(Debug)]
struct Decoded {
    events: Vec<Event<'static>>,
    first_text_end: Option<usize>,
    first_any_end: Option<usize>,
    result: Result<(), DecodeError>,
    protocol: Protocol,
    has_terminator: bool,
}

fn decode(opts: &DecoderOptions, body: &[u8], cuts: &[usize]) -> Decoded {
    let mut decoder = Decoder::new(opts.clone());
    let mut events = Vec::new();
    let (mut first_text_end, mut first_any_end) = (None, None);
    let mut start = 0;
    let mut result = Ok(());
    for end in cuts.iter().copied().chain([body.len()]) {
        let mut sink = |e: Event<'_>| {
            if let Event::Token { channel, .. } = &e {
                first_any_end.get_or_insert(end);
                if *channel == Channel::Text {
                    first_text_end.get_or_insert(end);
                }
            }
            events.push(e.into_owned());
        };
        result = decoder.feed(&body[start..end], &mut sink);
        start = end;
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = decoder.finish(&mut |e| events.push(e.into_owned()));
    }
    Decoded {
        events,
        first_text_end,
        first_any_end,
        result,
        protocol: decoder.protocol(),
        has_terminator: decoder.has_terminator(),
    }
}

fn tokens(d: &Decoded, channel: Channel) -> Vec<&str> {
    d.events
        .iter()
        .filter_map(|e| match e {
            Event::Token { channel: c, text } if *c == channel => Some(text.as_ref()),
            _ => None,
        })
        .collect()
}

fn check(entry: &Entry, how: &str, d: &Decoded, byte_by_byte: bool) {
    let ctx = format!("{} ({how})", entry.file);
    assert_eq!(d.result, Ok(()), "{ctx}: decode failed");
    let text = tokens(d, Channel::Text);
    assert_eq!(
        text.len() as u64,
        entry.expected("content_event_count").as_u64().unwrap(),
        "{ctx}: content event count"
    );
    assert_eq!(
        text.concat(),
        entry.expected("output_text").as_str().unwrap(),
        "{ctx}: output text"
    );
    assert_eq!(
        text.first().copied(),
        entry.expected("first_content_text").as_str(),
        "{ctx}: first content text"
    );
    let usage = d.events.iter().rev().find_map(|e| match e {
        Event::Usage(u) => u.output_tokens,
        _ => None,
    });
    assert_eq!(
        usage,
        entry.expected("usage_output_tokens").as_u64(),
        "{ctx}: usage"
    );
    let done = d.events.iter().find_map(|e| match e {
        Event::Done { finish_reason } => Some(finish_reason.clone()),
        _ => None,
    });
    let error = d.events.iter().find_map(|e| match e {
        Event::Error { message } => Some(message.clone()),
        _ => None,
    });
    assert_eq!(
        done.is_some() && error.is_none(),
        entry.expected("ends_cleanly").as_bool().unwrap(),
        "{ctx}: ends cleanly (done {done:?}, error {error:?})"
    );
    assert_eq!(
        error.is_some(),
        entry.expected("is_error").as_bool().unwrap(),
        "{ctx}: is error"
    );
    if let Some(message) = entry
        .expected("error")
        .get("message")
        .and_then(Value::as_str)
    {
        assert_eq!(error.as_deref(), Some(message), "{ctx}: error message");
    }
    // The generic dialect's done pointer (`/stop`) is a bool: it has no finish reason.
    if let Some(Some(reason)) = &done {
        assert_eq!(
            Some(reason.as_ref()),
            entry.expected("finish_reason").as_str(),
            "{ctx}: finish reason"
        );
    } else if done.is_some() && entry.options().is_some_and(|o| o.protocol != Protocol::Sse) {
        assert!(
            entry.expected("finish_reason").is_null(),
            "{ctx}: finish reason missing"
        );
    }
    assert!(
        d.has_terminator,
        "{ctx}: every corpus protocol has a terminator"
    );
    if byte_by_byte {
        assert_eq!(
            d.first_text_end.map(|o| o as u64),
            entry.expected("first_content_event_end_offset").as_u64(),
            "{ctx}: first content event end offset"
        );
    }
    check_details(entry, &ctx, d);
    let extra = &entry.manifest["expected_extra"];
    if let Some(n) = extra.get("thought_event_count").and_then(Value::as_u64) {
        let thoughts = tokens(d, Channel::Reasoning);
        assert_eq!(thoughts.len() as u64, n, "{ctx}: thought events");
        assert_eq!(
            thoughts.concat(),
            extra["thought_text"].as_str().unwrap(),
            "{ctx}: thought text"
        );
        if byte_by_byte && let Some(end) = extra.get("first_any_text_event_end_offset") {
            assert_eq!(
                d.first_any_end.map(|o| o as u64),
                end.as_u64(),
                "{ctx}: first any-channel token"
            );
        }
    }
}

/// The response model and fingerprint (the last identity reported) and the token details (each
/// count's last value) against `corpus_expected.json`: a value the recording has must be
/// found, and one it lacks must not be invented.
fn check_details(entry: &Entry, ctx: &str, d: &Decoded) {
    let want = &expected_details()[entry.file.as_str()];
    assert!(
        want.is_object(),
        "{ctx}: no entry in {EXPECTED_EXTRA}; read the recording and add one"
    );
    let (mut model, mut fingerprint) = (None, None);
    let mut usage = Usage::default();
    for e in &d.events {
        match e {
            Event::Identity {
                model: m,
                fingerprint: f,
            } => {
                model = m.as_deref();
                fingerprint = f.as_deref();
            }
            Event::Usage(u) => usage.update(*u),
            _ => {}
        }
    }
    assert_eq!(
        model,
        want["response_model"].as_str(),
        "{ctx}: response model"
    );
    assert_eq!(
        fingerprint,
        want["system_fingerprint"].as_str(),
        "{ctx}: system fingerprint"
    );
    for (name, got) in [
        ("input_tokens", usage.input_tokens),
        ("cached_input_tokens", usage.cached_input_tokens),
        ("reasoning_tokens", usage.reasoning_tokens),
    ] {
        assert_eq!(got, want[name].as_u64(), "{ctx}: {name}");
    }
}

#[test]
fn expected_details_cover_exactly_the_corpus_streams() {
    let streams: std::collections::BTreeSet<&str> = corpus()
        .iter()
        .filter(|e| e.options().is_some())
        .map(|e| e.file.as_str())
        .collect();
    let keyed: std::collections::BTreeSet<&str> = expected_details()
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with('_'))
        .collect();
    assert_eq!(keyed, streams);
    // The recordings hold every kind of detail somewhere, so none is checked only as absent.
    for key in [
        "response_model",
        "system_fingerprint",
        "input_tokens",
        "cached_input_tokens",
        "reasoning_tokens",
    ] {
        assert!(
            keyed.iter().any(|f| !expected_details()[*f][key].is_null()),
            "{key} is null everywhere"
        );
    }
}

/// Decoding option sets per entry: the explicit protocol, `auto` with URL + content type,
/// `auto` with content type only (detection from the first event), and `auto` with neither
/// (framing sniffed from the first bytes, then detection from the first event).
fn variants(entry: &Entry) -> Vec<(&'static str, DecoderOptions)> {
    let Some(explicit) = entry.options() else {
        return Vec::new();
    };
    let mut by_url = DecoderOptions::new(Protocol::Auto);
    by_url.content_type = Some(entry.content_type());
    by_url.url_path = entry.url_path();
    let mut by_shape = DecoderOptions::new(Protocol::Auto);
    by_shape.content_type = Some(entry.content_type());
    by_shape.url_path = "/stream".to_owned();
    let mut by_sniffing = DecoderOptions::new(Protocol::Auto);
    by_sniffing.url_path = "/stream".to_owned();
    vec![
        ("explicit", explicit),
        ("auto by url", by_url),
        ("auto by shape", by_shape),
        ("auto by sniffing", by_sniffing),
    ]
}

#[test]
fn corpus_entries_decode_to_expected_values_in_every_chunking() {
    let mut streams = 0;
    for entry in corpus() {
        let variants = variants(entry);
        if variants.is_empty() {
            continue;
        }
        streams += 1;
        let mut reference: Option<Vec<Event<'static>>> = None;
        for (name, opts) in &variants {
            let whole = decode(opts, &entry.body, &[]);
            check(entry, &format!("{name}, whole"), &whole, false);
            let bytewise: Vec<usize> = (1..entry.body.len()).collect();
            let bytes = decode(opts, &entry.body, &bytewise);
            check(entry, &format!("{name}, byte by byte"), &bytes, true);
            assert_eq!(
                bytes.events, whole.events,
                "{}: {name}: byte-by-byte events differ",
                entry.file
            );
            if let Some(cuts) = entry.tcp_cuts() {
                let tcp = decode(opts, &entry.body, &cuts);
                check(entry, &format!("{name}, tcp reads"), &tcp, false);
                assert_eq!(
                    tcp.events, whole.events,
                    "{}: {name}: tcp-read events differ",
                    entry.file
                );
            }
            if *name != "explicit" {
                assert_eq!(
                    whole.protocol, variants[0].1.protocol,
                    "{}: {name} chose the wrong protocol",
                    entry.file
                );
            }
            // All three ways of choosing the protocol see the same events.
            match &reference {
                None => reference = Some(whole.events),
                Some(r) => assert_eq!(
                    &whole.events, r,
                    "{}: {name} differs from explicit",
                    entry.file
                ),
            }
        }
    }
    assert!(streams >= 13, "only {streams} stream entries");
}

#[test]
fn tcp_boundaries_attribute_the_first_token_to_its_read() {
    // Dify: read #1 is only `event: ping` (no data: not an event, not a token); the first
    // token is completed by read #3, which ends at byte 707.
    let entry = corpus()
        .iter()
        .find(|e| e.file.starts_with("dify_"))
        .expect("dify entry");
    let d = decode(
        &entry.options().unwrap(),
        &entry.body,
        &entry.tcp_cuts().unwrap(),
    );
    assert_eq!(d.first_text_end, Some(707));
}

#[test]
fn error_bodies_yield_their_message() {
    let mut bodies = 0;
    for entry in corpus().iter().filter(|e| e.manifest["framing"] == "json") {
        bodies += 1;
        let expected = entry.expected("error")["message"].as_str().unwrap();
        assert_eq!(
            error_message(&entry.body).as_deref(),
            Some(expected),
            "{}",
            entry.file
        );
    }
    assert!(bodies >= 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any chunking of any corpus stream yields exactly the events of feeding it whole.
    #[test]
    fn any_chunking_yields_identical_events(
        pick in any::<prop::sample::Index>(),
        variant in 0..4usize,
        raw_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let streams: Vec<&Entry> = corpus().iter().filter(|e| e.options().is_some()).collect();
        let entry = streams[pick.index(streams.len())];
        let variants = variants(entry);
        let opts = &variants[variant].1;
        let mut cuts: Vec<usize> = raw_cuts.iter().map(|c| c.index(entry.body.len())).filter(|&c| c > 0).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let whole = decode(opts, &entry.body, &[]);
        let cut = decode(opts, &entry.body, &cuts);
        prop_assert_eq!(&cut.result, &whole.result);
        prop_assert_eq!(&cut.events, &whole.events, "{} cut at {:?}", entry.file, cuts);
    }
}
