//! Outputs at their boundaries: the result document against `schema/result.schema.json` and the
//! old script's keys, the atomic writer and retention on a real (temporary) file system.
//!
//! Does not: run a burst; records are built by hand.

use std::fs;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use streamprobe::config::Template;
use streamprobe::config::{
    CacheBust, Expect, Header, Overlap, Protocol, Slo, Target, VerdictSettings, VerdictStatistic,
};
use streamprobe::output::result::ResultDocument;
use streamprobe::output::write::{prune, result_path, write_atomic};
use streamprobe::probe::{
    BurstResult, ClientLoad, Connection, ConnectionMode, Limit, Outcome, Phases, RateLimits,
    RequestRecord, Resource, TokenSource,
};
use streamprobe::stats::BurstSummary;
use streamprobe::verdict::window::{BurstSamples, Windows};

/// 2026-11-27T10:15:00Z
fn started_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_774_500)
}

fn target() -> Target {
    Target {
        name: "openai-gpt-4o-mini".into(),
        url: Template::literal("https://api.example.com/v1/chat/completions?api_key=sk-live&x=1"),
        method: "POST".into(),
        headers: vec![
            Header {
                name: "Authorization".into(),
                value: Template::literal("Bearer sk-literal"),
            },
            Header {
                name: "Content-Type".into(),
                value: Template::literal("application/json"),
            },
            Header {
                name: "X-Session-Token".into(),
                value: Template::literal("abc"),
            },
        ],
        body: None,
        data: None,
        protocol: Protocol::Auto,
        extract: None,
        schedule: None,
        overlap: Overlap::Skip,
        run_on_start: false,
        concurrency: NonZeroU32::new(10).unwrap(),
        total_requests: NonZeroU32::new(3).unwrap(),
        rate: None,
        warmup_requests: 0,
        timeout: Duration::from_secs(300),
        first_token_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(30),
        max_response_bytes: 16 << 20,
        model: Some("gpt-4o-mini".into()),
        request_id_header: None,
        fresh_connections: false,
        cache_bust: CacheBust::Off,
        capture_headers: Vec::new(),
        tls: None,
        proxy: None,
        slo: Slo::default(),
        expect: Expect::default(),
        verdict: Default::default(),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn success(index: u64) -> RequestRecord {
    RequestRecord {
        index,
        outcome: Outcome::Success,
        status: Some(200),
        error: None,
        start_offset: ms(10 * index),
        client_wait: Duration::ZERO,
        time_to_headers: Some(ms(101)),
        ttft: Some(ms(234)),
        first_visible_token: Some(ms(234)),
        duration: ms(2456),
        output_tokens: 45,
        token_source: TokenSource::Usage,
        token_events: 44,
        chunks: 47,
        bytes: 12_634,
        itl: vec![ms(40), ms(60), ms(310)],
        tpot: Some(Duration::from_micros(50_600)),
        text: Some("Hello".into()),
        connection: None,
        phases: Default::default(),
        retried: false,
        ratelimit: Default::default(),
        provider_request_id: None,
        captured_headers: Vec::new(),
        response_model: None,
        system_fingerprint: None,
        input_tokens: None,
        cached_input_tokens: None,
        reasoning_tokens: None,
        usage_mismatch: false,
    }
}

fn burst() -> BurstResult {
    BurstResult {
        burst_id: "01JDX7Q8".into(),
        target: "openai-gpt-4o-mini".into(),
        started_at: started_at(),
        total_time: Duration::from_millis(25_670),
        records: vec![
            success(1),
            RequestRecord {
                index: 2,
                outcome: Outcome::TimeoutIdle,
                error: Some("no data for 30s".into()),
                ttft: None,
                first_visible_token: None,
                duration: ms(30_001),
                output_tokens: 3,
                token_source: TokenSource::Events,
                itl: vec![],
                tpot: None,
                text: None,
                ..success(2)
            },
            success(3),
        ],
        connection_mode: ConnectionMode::Reused,
        protocol: Protocol::OpenAi,
        looks_like: None,
        interrupted: false,
        // 25,000 ticks: p99 0.42 ms, max 2.15 ms.
        client: ClientLoad {
            lags: std::iter::repeat_n(Duration::from_micros(420), 24_999)
                .chain([Duration::from_micros(2_150)])
                .collect(),
            cpu: Some(Duration::from_millis(350)),
        },
    }
}

fn document(include_text: bool) -> Value {
    let burst = burst();
    let summary = BurstSummary::from_burst(&burst);
    let doc = ResultDocument::new(&target(), &burst, &summary, include_text);
    serde_json::from_slice(&doc.to_json()).unwrap()
}

fn validate(instance: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/result.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn document_validates_against_the_schema() {
    for include_text in [false, true] {
        let doc = document(include_text);
        assert_eq!(validate(&doc), Vec::<String>::new());
    }
}

/// The daemon's documents carry a `verdict` block: judged (both windows full) and before any
/// baseline (insufficient data, nulls), both valid.
#[test]
fn document_with_a_verdict_validates_and_says_what_was_judged() {
    let burst = burst();
    let summary = BurstSummary::from_burst(&burst);
    let settings = VerdictSettings {
        baseline: Duration::from_secs(3600),
        recent: Duration::from_secs(600),
        min_change: 0.05,
        min_samples: 30,
        statistic: VerdictStatistic::P90,
    };
    let mut windows = Windows::new(settings);
    let empty = windows.judge(started_at());
    for minute in 0..60u64 {
        // TTFT 200 ms for 50 minutes, then 300 ms: the recent window regressed.
        let ttft = if minute < 50 { 0.2 } else { 0.3 };
        let at = started_at() - Duration::from_secs(60 * (60 - minute));
        let samples = BurstSamples {
            ttft: (0..40).map(|i| ttft + i as f64 * 0.001).collect(),
            tpot: vec![0.02; 40],
        };
        windows.record(at, &samples);
    }
    let judged = windows.judge(started_at());
    for (report, verdict) in [(&empty, "insufficient_data"), (&judged, "regressed")] {
        let doc = ResultDocument::new(&target(), &burst, &summary, false).with_verdict(report);
        let doc: Value = serde_json::from_slice(&doc.to_json()).unwrap();
        assert_eq!(validate(&doc), Vec::<String>::new());
        assert_eq!(doc["verdict"]["ttft"]["verdict"], verdict);
        assert_eq!(doc["verdict"]["statistic"], "p90");
        assert_eq!(doc["verdict"]["recent_window"], 600.0);
    }
    let doc = ResultDocument::new(&target(), &burst, &summary, false).with_verdict(&judged);
    let doc: Value = serde_json::from_slice(&doc.to_json()).unwrap();
    let ttft = &doc["verdict"]["ttft"];
    let change = ttft["change"].as_f64().unwrap();
    assert!((0.4..0.6).contains(&change), "{change}");
    assert!(ttft["ci"][0].as_f64().unwrap() > 0.0);
    assert_eq!(doc["verdict"]["tpot"]["verdict"], "no_change");
    // `run`'s documents have none.
    assert!(document(false).get("verdict").is_none());
}

/// A request with every diagnostic (DESIGN §11): new connection, phases, retry, rate limits,
/// provider request id and captured headers.
fn diagnosed(index: u64) -> RequestRecord {
    let mut ratelimit = RateLimits::default();
    ratelimit.set(
        Resource::Requests,
        Limit {
            limit: Some(500),
            remaining: Some(499),
            reset: Some(ms(120)),
        },
    );
    ratelimit.set(
        Resource::OutputTokens,
        Limit {
            limit: None,
            remaining: Some(900),
            reset: None,
        },
    );
    ratelimit.retry_after = Some(Duration::from_secs(7));
    RequestRecord {
        connection: Some(Connection::New),
        phases: Phases {
            resolve: Some(ms(2)),
            connect: Some(ms(3)),
            tls: Some(ms(10)),
            headers: Some(ms(86)),
            first_token: Some(ms(133)),
            generation: Some(ms(2222)),
        },
        retried: true,
        ratelimit,
        provider_request_id: Some("req_7f3a".into()),
        captured_headers: vec![("x-served-by".into(), "cache-fra-1".into())],
        ..success(index)
    }
}

#[test]
fn diagnostics_keys_validate_and_read_as_the_design_says() {
    let mut burst = burst();
    burst.records.push(diagnosed(4));
    let summary = BurstSummary::from_burst(&burst);
    let doc = ResultDocument::new(&target(), &burst, &summary, false);
    let doc: Value = serde_json::from_slice(&doc.to_json()).unwrap();
    assert_eq!(validate(&doc), Vec::<String>::new());

    let r = &doc["metrics"][3];
    assert_eq!(r["connection"], "new");
    assert_eq!(r["retried"], true);
    assert_eq!(
        r["phases"],
        json!({"resolve": 0.002, "connect": 0.003, "tls": 0.01, "headers": 0.086,
               "first_token": 0.133, "generation": 2.222})
    );
    assert_eq!(
        r["ratelimit"],
        json!({"limit_requests": 500, "remaining_requests": 499, "reset_requests": 0.12,
               "remaining_output_tokens": 900, "retry_after": 7.0})
    );
    assert_eq!(r["provider_request_id"], "req_7f3a");
    assert_eq!(r["captured_headers"], json!({"x-served-by": "cache-fra-1"}));
    // A request without diagnostics has none of the keys.
    let plain = doc["metrics"][0].as_object().unwrap();
    for key in [
        "connection",
        "phases",
        "retried",
        "ratelimit",
        "provider_request_id",
        "captured_headers",
    ] {
        assert!(!plain.contains_key(key), "{key}");
    }

    let s = &doc["summary"];
    assert_eq!(s["connections"], json!({"new": 1}));
    assert_eq!(s["retried"], 1);
    assert_eq!(s["phases"]["tls"]["count"], 1);
    assert_eq!(s["phases"]["generation"]["p50"], 2.222);
    assert_eq!(
        s["ratelimit"],
        json!({"requests": {"limit": 500, "lowest_remaining": 499, "responses": 1},
               "output_tokens": {"limit": null, "lowest_remaining": 900, "responses": 1}})
    );

    // The schema holds the closed sets.
    let mut bad = doc.clone();
    bad["metrics"][3]["phases"]["queue"] = json!(0.1);
    bad["metrics"][3]["ratelimit"]["remaining_cats"] = json!(1);
    bad["metrics"][3]["connection"] = json!("borrowed");
    assert_eq!(validate(&bad).len(), 3, "{:#?}", validate(&bad));
}

#[test]
fn schema_rejects_unknown_keys_and_missing_numbers() {
    let mut doc = document(false);
    doc["summary"]["surprise"] = json!(1);
    doc["metrics"][0]["ttft"] = json!("fast");
    doc["summary"]["ttft"]["p50"] = Value::Null;
    let errors = validate(&doc);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn document_keeps_the_old_keys_and_redacts() {
    let doc = document(false);
    assert_eq!(doc["schema_version"], 2, "v2 diagnostics (DESIGN §6)");
    assert_eq!(doc["tool"]["name"], "streamprobe");
    assert_eq!(doc["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["burst_id"], "01JDX7Q8");
    assert_eq!(doc["interrupted"], false);

    let config = &doc["config"];
    assert_eq!(
        config["url"],
        "https://api.example.com/v1/chat/completions?api_key=<redacted>&x=1"
    );
    assert_eq!(
        config["protocol"], "openai",
        "the resolved protocol, not auto"
    );
    assert_eq!(config["concurrency"], 10);
    assert_eq!(config["total_requests"], 3);
    assert_eq!(config["rate"], Value::Null);
    assert_eq!(config["timestamp"], "2026-11-27T10:15:00Z");
    assert_eq!(config["connection_mode"], "reused");
    assert_eq!(
        config["headers"],
        json!({
            "Authorization": "<redacted>",
            "Content-Type": "application/json",
            "X-Session-Token": "<redacted>",
        })
    );
    assert!(
        !doc.to_string().contains("sk-"),
        "a credential leaked: {doc}"
    );

    let summary = &doc["summary"];
    assert_eq!(summary["success_count"], 2);
    assert_eq!(summary["failed_count"], 1);
    assert_eq!(summary["total_time"], 25.67);
    // Old script: all finished requests over the total time.
    assert_eq!(summary["throughput_rps"], 0.116868);
    assert_eq!(
        summary["outcomes"],
        json!({"success": 2, "timeout_idle": 1})
    );
    assert_eq!(summary["output_tokens"], 90);
    assert_eq!(summary["token_source"], json!({"usage": 2}));
    assert_eq!(summary["ttft"]["count"], 2, "failures give no TTFT samples");
    assert_eq!(summary["ttft"]["p99"], 0.234);
    assert_eq!(summary["total_time_stats"]["max"], 2.456);
    assert_eq!(summary["itl"]["count"], 6);
    assert_eq!(summary["tpot"]["mean"], 0.0506);

    let mut keys: Vec<&str> = doc["metrics"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "request_id",
        "ttft",
        "total_time",
        "total_tokens",
        "total_bytes",
        "tokens_per_second",
        "error",
        "outcome",
        "status",
        "time_to_headers",
        "first_visible_token",
        "output_tokens",
        "token_source",
        "chunks",
        "bytes",
        "itl_mean",
        "itl_max",
        "tpot",
        "client_wait",
        "start_offset",
    ];
    // serde_json::Value maps are ordered by key; compare as sets, the order is checked below.
    expected.sort_unstable();
    keys.sort_unstable();
    assert_eq!(keys, expected);

    let first = &doc["metrics"][0];
    assert_eq!(first["request_id"], 1);
    assert_eq!(first["ttft"], 0.234);
    assert_eq!(first["total_time"], 2.456);
    assert_eq!(first["total_tokens"], 45);
    assert_eq!(first["total_bytes"], 12_634);
    assert_eq!(first["tokens_per_second"], 18.322476);
    assert_eq!(first["error"], Value::Null);
    assert_eq!(first["itl_mean"], 0.136667);
    assert_eq!(first["itl_max"], 0.31);
    assert_eq!(first["tpot"], 0.0506);
    assert_eq!(first["start_offset"], 0.01);

    let failed = &doc["metrics"][1];
    assert_eq!(failed["outcome"], "timeout_idle");
    assert_eq!(failed["error"], "no data for 30s");
    assert_eq!(failed["ttft"], Value::Null);
    assert_eq!(failed["itl_mean"], Value::Null);
}

#[test]
fn v2_identity_and_token_keys_appear_only_when_known() {
    let mut burst = burst();
    burst.records[0] = RequestRecord {
        response_model: Some("gpt-4o-2024-08-06".into()),
        system_fingerprint: Some("fp_5050236cbd".into()),
        input_tokens: Some(114),
        cached_input_tokens: Some(64),
        reasoning_tokens: Some(0),
        usage_mismatch: true,
        ..success(1)
    };
    let summary = BurstSummary::from_burst(&burst);
    let doc: Value =
        serde_json::from_slice(&ResultDocument::new(&target(), &burst, &summary, false).to_json())
            .unwrap();
    assert_eq!(validate(&doc), Vec::<String>::new());
    let first = &doc["metrics"][0];
    assert_eq!(first["response_model"], "gpt-4o-2024-08-06");
    assert_eq!(first["system_fingerprint"], "fp_5050236cbd");
    assert_eq!(first["input_tokens"], 114);
    assert_eq!(first["cached_input_tokens"], 64);
    assert_eq!(first["reasoning_tokens"], 0, "a reported zero is known");
    assert_eq!(first["usage_mismatch"], true);
    let third = doc["metrics"][2].as_object().unwrap();
    for key in [
        "response_model",
        "system_fingerprint",
        "input_tokens",
        "cached_input_tokens",
        "reasoning_tokens",
        "usage_mismatch",
    ] {
        assert!(!third.contains_key(key), "{key} present though unknown");
    }
    assert_eq!(summary.usage_mismatch, 1);
    assert_eq!(summary.response_models.len(), 1);

    // Readers accept version 1 files (v2 only adds keys); the schema rejects other versions
    // and a usage_mismatch of false (it is absent instead).
    let mut v1 = document(false);
    v1["schema_version"] = json!(1);
    assert_eq!(validate(&v1), Vec::<String>::new());
    let mut bad = doc.clone();
    bad["schema_version"] = json!(3);
    bad["metrics"][0]["usage_mismatch"] = json!(false);
    bad["metrics"][0]["input_tokens"] = json!(-1);
    assert_eq!(validate(&bad).len(), 3, "{:#?}", validate(&bad));
}

#[test]
fn old_keys_come_first_in_the_file() {
    let burst = burst();
    let summary = BurstSummary::from_burst(&burst);
    let text = String::from_utf8(ResultDocument::new(&target(), &burst, &summary, false).to_json())
        .unwrap();
    let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
    let order = [
        "request_id",
        "ttft",
        "total_time",
        "total_tokens",
        "total_bytes",
        "tokens_per_second",
        "error",
        "outcome",
        "start_offset",
    ];
    let metrics = text.find("\"metrics\"").unwrap();
    let positions: Vec<usize> = order
        .iter()
        .map(|k| metrics + text[metrics..].find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(at("schema_version") < at("config"));
    assert!(text.ends_with("}\n"));
}

#[test]
fn output_text_only_when_asked() {
    let without = document(false);
    assert!(without["metrics"][0].get("output_text").is_none());
    let with = document(true);
    assert_eq!(with["metrics"][0]["output_text"], "Hello");
    assert_eq!(with["metrics"][1]["output_text"], "");
}

#[test]
fn zero_sample_statistics_are_null() {
    let mut burst = burst();
    burst.records.retain(|r| !r.outcome.is_success());
    burst.interrupted = true;
    let summary = BurstSummary::from_burst(&burst);
    let doc: Value =
        serde_json::from_slice(&ResultDocument::new(&target(), &burst, &summary, false).to_json())
            .unwrap();
    assert_eq!(doc["interrupted"], true);
    assert_eq!(
        doc["summary"]["ttft"],
        json!({"count": 0, "min": null, "max": null, "mean": null, "median": null,
               "stdev": null, "p50": null, "p90": null, "p95": null, "p99": null})
    );
    assert_eq!(validate(&doc), Vec::<String>::new());
}

#[test]
fn result_path_is_target_dir_utc_stamp_and_burst_id() {
    assert_eq!(
        result_path(Path::new("/var/lib/sp"), "t-1", started_at(), "b7"),
        Path::new("/var/lib/sp/t-1/20261127T101500Z-b7.json")
    );
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn write_atomic_replaces_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    write_atomic(&path, b"{\"a\": 1}\n").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"{\"a\": 1}\n");
    write_atomic(&path, b"{}\n").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"{}\n");
    assert_eq!(names(dir.path()), ["r.json"], "no temp file is left");
}

#[test]
fn failed_write_leaves_no_temp_and_the_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // A rename cannot replace a non-empty directory: the write fails after the temp exists.
    let blocked = dir.path().join("blocked.json");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("inside"), b"keep").unwrap();
    assert!(write_atomic(&blocked, b"new").is_err());
    assert_eq!(names(dir.path()), ["blocked.json"]);
    assert_eq!(fs::read(blocked.join("inside")).unwrap(), b"keep");

    // A missing directory fails before anything is created.
    let missing = dir.path().join("nope").join("r.json");
    assert!(write_atomic(&missing, b"x").is_err());
    assert_eq!(names(dir.path()), ["blocked.json"]);
}

#[test]
fn prune_keeps_the_newest_and_drops_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let day = Duration::from_secs(86_400);
    let now = started_at();
    // Five results, one per day, newest = now.
    for n in 0..5u32 {
        let path = result_path(
            d.parent().unwrap(),
            &d.file_name().unwrap().to_string_lossy(),
            now - day * n,
            &format!("b{n}"),
        );
        fs::write(path, b"{}").unwrap();
    }
    // Not ours: never touched.
    for other in [
        "notes.json",
        "README",
        ".20201127T101500Z-x.json.0a.tmp",
        "20201127T101500Z-x.txt",
    ] {
        fs::write(d.join(other), b"").unwrap();
    }
    fs::create_dir(d.join("20201127T101500Z-dir.json")).unwrap();

    // Count rule: keep 3 of 5.
    assert_eq!(prune(d, 3, Duration::ZERO, now).unwrap(), 2);
    let ours: Vec<String> = names(d)
        .into_iter()
        .filter(|n| n.starts_with("2026"))
        .collect();
    assert_eq!(
        ours,
        [
            "20261125T101500Z-b2.json",
            "20261126T101500Z-b1.json",
            "20261127T101500Z-b0.json"
        ]
    );
    // Age rule: older than 1.5 days goes even though keep allows more.
    assert_eq!(prune(d, 100, day + day / 2, now).unwrap(), 1);
    assert_eq!(prune(d, 100, day + day / 2, now).unwrap(), 0);
    let mut left = names(d);
    left.retain(|n| !n.starts_with("2026"));
    assert_eq!(
        left,
        [
            ".20201127T101500Z-x.json.0a.tmp",
            "20201127T101500Z-dir.json",
            "20201127T101500Z-x.txt",
            "README",
            "notes.json"
        ]
    );
    assert_eq!(names(d).len(), 7);
    // A target that never wrote anything.
    assert_eq!(prune(&d.join("absent"), 1, day, now).unwrap(), 0);
}

#[test]
fn document_snapshot() {
    let burst = burst();
    let summary = BurstSummary::from_burst(&burst);
    let json = ResultDocument::new(&target(), &burst, &summary, true).to_json();
    // Snapshots live beside the code that produces them.
    insta::with_settings!({snapshot_path => "../src/output/snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("result_document", String::from_utf8(json).unwrap());
    });
}

/// A writer that takes `room` bytes, then fails as a full disk does.
struct Full {
    room: usize,
}

impl std::io::Write for Full {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_streamed_document_is_the_same_bytes_and_a_full_disk_is_an_error() {
    let mut burst = burst();
    // Larger than the write buffer, so the disk fills while the document is still serialized.
    burst.records = (1..=200).map(success).collect();
    let summary = BurstSummary::from_burst(&burst);
    let doc = ResultDocument::new(&target(), &burst, &summary, true);
    let mut streamed = Vec::new();
    doc.write_json(&mut streamed).unwrap();
    assert_eq!(streamed, doc.to_json());
    assert!(streamed.ends_with(b"}\n"));
    assert!(streamed.len() > 64 * 1024, "{} bytes", streamed.len());
    for room in [0, 100, 20_000, streamed.len() - 1] {
        let err = doc.write_json(&mut Full { room }).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{room} bytes of room: {err}");
    }
}
