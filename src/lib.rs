//! streamprobe: measures HTTP streaming APIs (LLM SSE, Ollama NDJSON, any chunked stream) the
//! way their users feel them. See README.md "Architecture" for the code map and invariants.
//!
//! Dependencies point one way: `app` → adapters (`metrics`, `server`, `schedule`, `output`) →
//! `stats` (with `verdict` beside it) → `probe` → `stream` → `config`. Nothing imports `app`
//! or `cli`.

pub mod app;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod metrics;
pub mod mock;
pub mod output;
pub mod probe;
pub mod schedule;
pub mod server;
pub mod stats;
pub mod status;
pub mod stream;
pub mod verdict;
