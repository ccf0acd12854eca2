//! The one test harness the integration tests share: free ports, the in-process mock, bounded
//! waits, a minimal HTTP client, a Prometheus exposition parser, and the daemon as a child
//! process. Each test binary includes it with `mod common;` and uses its own subset.
//!
//! Does not: know any single test's config or expected values; those stay in the test files.
#![allow(dead_code)] // each test binary uses its own subset

pub mod daemon;
pub mod exposition;
pub mod http;
pub mod wait;

use std::net::TcpListener;
use std::time::Duration;

use streamprobe::mock::{MockOptions, MockServer};

/// The binary under test, built by cargo for the integration tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_streamprobe");

/// A port that was free a moment ago (bound, read, released): nobody listens on it, and a
/// daemon told to listen there almost certainly can.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The in-process mock on a fresh loopback port.
pub async fn mock(options: MockOptions) -> MockServer {
    MockServer::start("127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("mock starts")
}

/// Mock timings: TTFT and ITL in milliseconds, tokens per response; the rest default.
pub fn timing(ttft_ms: u64, itl_ms: u64, tokens: u64) -> MockOptions {
    MockOptions {
        ttft: Duration::from_millis(ttft_ms),
        itl: Duration::from_millis(itl_ms),
        tokens,
        ..MockOptions::default()
    }
}
