//! `stream::error_message` on arbitrary non-2xx bodies: never panics, bounded message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    streamprobe_fuzz::checks::check_error_body(data);
});
