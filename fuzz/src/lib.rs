//! Shared code of the fuzz targets: the property checks (also replayed on stable by
//! `tests/fuzz_regressions.rs`).

pub mod checks;
