//! The stream decoder, every protocol: header bytes pick the protocol, hints, limit and a
//! chunking; the rest is the body. See `checks::check_decoder` for the properties.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamprobe::stream::Protocol;
use streamprobe_fuzz::checks::{DecoderCase, check_decoder};

/// Known bug, not fixed yet (`tests/data/fuzz/pending/decoder-auto-sniff-*`): `auto` with no
/// hints decides the framing as soon as the held bytes contain a line end or reach 512 bytes,
/// but `sniff` skips leading whitespace, so a body opening with blank lines or many spaces is
/// framed differently depending on where the first chunk ends. Skipped here so the fuzzer looks
/// for other bugs; delete this filter once the fix lands.
fn known_sniff_bug(case: &DecoderCase<'_>) -> bool {
    let o = &case.opts;
    if o.protocol != Protocol::Auto
        || o.extract.is_some()
        || o.content_type.is_some()
        || !o.url_path.is_empty()
    {
        return false;
    }
    let body = case.body;
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let blank = body.len() - body.trim_ascii_start().len();
    blank > 0 && (body[..blank].contains(&b'\n') || body[..blank].contains(&b'\r') || blank >= 500)
}

fuzz_target!(|data: &[u8]| {
    if DecoderCase::parse(data).is_some_and(|case| known_sniff_bug(&case)) {
        return;
    }
    check_decoder(data);
});
