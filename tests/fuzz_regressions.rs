//! Replays the saved fuzz inputs in `tests/data/fuzz/{decoder,config,error_body}/` through the
//! very checks the fuzz targets run (`fuzz/src/checks.rs`, included by path), on stable and
//! without libFuzzer, so CI catches a regression of anything the fuzzers once found or covered.
//!
//! Does not: fuzz (see `fuzz/README.md`), or read `tests/data/fuzz/pending/`, which holds inputs
//! of bugs not fixed yet (move a file into its target's directory once its bug is fixed).

use std::path::{Path, PathBuf};

#[path = "../fuzz/src/checks.rs"]
mod checks;

/// Every file of `tests/data/fuzz/<target>/`, in name order.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no inputs", dir.display());
    files
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    for path in inputs(target) {
        // Printed before the check so that a failure's captured output names the input.
        eprintln!("replaying {}", path.display());
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check(&data);
    }
}

#[test]
fn decoder_inputs_keep_the_decoder_contract() {
    replay("decoder", checks::check_decoder);
}

#[test]
fn error_body_inputs_give_short_messages() {
    replay("error_body", checks::check_error_body);
}

#[test]
fn config_inputs_load_or_fail_with_a_one_line_message() {
    let dir = tempfile::tempdir().expect("scratch directory");
    replay("config", |data| {
        checks::check_config(data, dir.path(), |_| false)
    });
}
