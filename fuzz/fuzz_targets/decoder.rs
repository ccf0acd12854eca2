//! The stream decoder, every protocol: header bytes pick the protocol, hints, limit and a
//! chunking; the rest is the body. See `checks::check_decoder` for the properties.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamprobe_fuzz::checks::check_decoder;

fuzz_target!(|data: &[u8]| {
    check_decoder(data);
});
