//! How long the daemon's start-up rebuild of one target's verdict windows takes, and how much
//! memory the windows hold (DESIGN §10, issue: under 1 s for 500 files × 100 requests).
//!
//!     cargo run --release --example verdict_rebuild [FILES] [REQUESTS]
//!
//! Writes FILES (default 500) result files of REQUESTS (default 100) requests each into a
//! temporary directory, one burst every 5 minutes up to now, with every per-request key a
//! schema-2 daemon file has; then reads them back the way `serve` does at start-up
//! (`app::verdicts::windows_from_files`: read, parse, record in start-time order), judges the
//! windows once (TTFT and TPOT, 2,000 bootstrap resamples each), and prints the times and the
//! windows' memory. Exits 1 when the rebuild and first verdict together take 1 s or more.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::json;
use streamprobe::app::verdicts::windows_from_files;
use streamprobe::config::VerdictSettings;
use streamprobe::verdict::SplitMix64;
use streamprobe::verdict::window::{BASELINE_SLOTS, RECENT_SLOTS, SLOT_CAPACITY, TRACKED};

const TARGET: &str = "bench";
const EVERY: Duration = Duration::from_secs(300);

fn main() {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().map_or(500, |a| a.parse().expect("FILES"));
    let requests: usize = args.next().map_or(100, |a| a.parse().expect("REQUESTS"));
    let dir = tempfile::tempdir().expect("temp dir");
    let target_dir = dir.path().join(TARGET);
    std::fs::create_dir_all(&target_dir).unwrap();
    let now = SystemTime::now();
    let mut rng = SplitMix64::new(2026);
    let mut bytes = 0usize;
    for i in 0..files {
        let started = now - EVERY * (files - i) as u32;
        let stamp = DateTime::<Utc>::from(started);
        let doc = document(&mut rng, i, stamp, requests);
        let text = serde_json::to_vec_pretty(&doc).unwrap();
        bytes += text.len();
        let name = format!("{}-{:012x}.json", stamp.format("%Y%m%dT%H%M%SZ"), i);
        std::fs::write(target_dir.join(name), text).unwrap();
    }
    println!(
        "{files} result files × {requests} requests: {:.1} MiB",
        bytes as f64 / (1 << 20) as f64
    );

    let settings = VerdictSettings::default();
    let started = Instant::now();
    let (mut windows, read) = windows_from_files(settings, &target_dir, now);
    let rebuilt = started.elapsed();
    let judged_at = Instant::now();
    let report = windows.judge(now);
    let judged = judged_at.elapsed();
    let total = started.elapsed();
    assert_eq!(read.files, files, "every file is inside the 7-day baseline");

    let values = windows.values();
    let slots = windows.slots();
    // Each slot: one reservoir per tracked metric, capacity SLOT_CAPACITY f64s allocated once
    // full (a Vec grows to its capacity), plus small fixed parts.
    let held = values * std::mem::size_of::<f64>();
    let bound = (RECENT_SLOTS + 1 + BASELINE_SLOTS + 1) as usize
        * TRACKED.len()
        * SLOT_CAPACITY
        * std::mem::size_of::<f64>();
    println!(
        "rebuild (read + parse + record): {:.0} ms; first verdict (TTFT and TPOT): {:.0} ms; total {:.0} ms",
        rebuilt.as_secs_f64() * 1e3,
        judged.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3
    );
    println!(
        "windows: {slots} slots, {values} samples kept = {:.0} KiB (bound {:.0} KiB per target, whatever the history)",
        held as f64 / 1024.0,
        bound as f64 / 1024.0
    );
    for m in &report.metrics {
        println!(
            "{}: {} (baseline n {}, recent n {})",
            m.metric.as_str(),
            m.verdict().as_str(),
            m.row.n_baseline,
            m.row.n_candidate
        );
    }
    if total >= Duration::from_secs(1) {
        eprintln!("too slow: {total:?} (budget 1 s per target; run with --release)");
        std::process::exit(1);
    }
}

/// A schema-2 daemon result document with `requests` successful requests around 200 ms TTFT.
fn document(
    rng: &mut SplitMix64,
    index: usize,
    started: DateTime<Utc>,
    requests: usize,
) -> serde_json::Value {
    let metrics: Vec<serde_json::Value> = (0..requests)
        .map(|r| {
            let ttft = 0.2 * (1.0 + 0.3 * (rng.next_f64() - 0.5));
            let tpot = 0.02 * (1.0 + 0.2 * (rng.next_f64() - 0.5));
            let duration = ttft + 49.0 * tpot;
            json!({
                "request_id": r + 1, "ttft": ttft, "total_time": duration, "total_tokens": 50,
                "total_bytes": 12634, "tokens_per_second": 50.0 / duration, "error": null,
                "outcome": "success", "status": 200, "time_to_headers": 0.05,
                "first_visible_token": ttft, "output_tokens": 50, "token_source": "usage",
                "chunks": 52, "bytes": 12634, "itl_mean": tpot, "itl_max": tpot * 3.0,
                "tpot": tpot, "client_wait": 0.0, "start_offset": r as f64 * 0.01,
                "connection": "reused",
                "phases": {"headers": 0.05, "first_token": ttft - 0.05, "generation": duration - ttft},
                "response_model": "mock-model", "system_fingerprint": "fp_mock",
                "input_tokens": 12
            })
        })
        .collect();
    json!({
        "schema_version": 2,
        "tool": {"name": "streamprobe", "version": "bench"},
        "burst_id": format!("{index:012x}"),
        "target": TARGET,
        "interrupted": false,
        "config": {"url": "http://127.0.0.1/v1/chat/completions", "method": "POST",
                   "protocol": "openai", "concurrency": 10, "total_requests": requests,
                   "rate": null, "timestamp": started.to_rfc3339(), "headers": {},
                   "connection_mode": "pooled"},
        "summary": {"success_count": requests, "failed_count": 0},
        "metrics": metrics
    })
}
