//! The config loader on arbitrary YAML/JSON text, anchored in an empty scratch directory, then
//! the `check` report of whatever loads. See `checks::check_config` for the properties.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One empty directory per process, created on first use and never written to afterwards.
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("streamprobe-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        dir
    })
}

/// Known bug, not fixed yet (`tests/data/fuzz/pending/config-duration-sum-overflow.yaml`): a
/// duration of several parts (`..s..s`) whose sum exceeds `Duration::MAX` panics in
/// `parse_duration` (`total +=`). Reaching that sum needs long digit runs, so inputs with one
/// are skipped here to let the fuzzer look for other bugs; huge single durations stay reachable
/// through exponents (`1e18`). Delete this filter once the fix lands.
fn known_duration_overflow(data: &[u8]) -> bool {
    data.split(|b| !(b.is_ascii_digit() || *b == b'.'))
        .any(|run| run.len() >= 12)
}

/// Known bug, not fixed yet (`tests/data/fuzz/pending/config-*-with-newline.yaml`): messages
/// print user strings unescaped (an unknown key, a header name in the field path, a data file's
/// path), so one holding a line break splits the message. The sources are many, so the fuzz
/// target excuses every multi-line message (the replay test excuses none); make this `false`
/// once the fix lands.
fn known_multiline_message(_message: &str) -> bool {
    true
}

fuzz_target!(|data: &[u8]| {
    if known_duration_overflow(data) {
        return;
    }
    streamprobe_fuzz::checks::check_config(data, scratch_dir(), known_multiline_message);
});
