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

/// Every message must be one line (the replay test holds the same rule).
fn multiline_allowed(_message: &str) -> bool {
    false
}

fuzz_target!(|data: &[u8]| {
    streamprobe_fuzz::checks::check_config(data, scratch_dir(), multiline_allowed);
});
