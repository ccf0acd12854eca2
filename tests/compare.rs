//! `streamprobe compare` as users run it: two `test_results.json` files written by `run`
//! against the in-process mock compare as `regressed` (exit 1) when TTFT rose from 200 to
//! 260 ms, and without a regressed row (exit 0) when nothing changed; the JSON report follows
//! `schema/compare.schema.json`; usage errors exit 2 naming the file or flag.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use streamprobe::mock::{MockOptions, MockServer};
use streamprobe::output::compare::{CompareReport, render_json};
use streamprobe::output::read::Side;
use streamprobe::verdict::{Samples, Settings, SplitMix64, compare};

const BIN: &str = env!("CARGO_BIN_EXE_streamprobe");

async fn streamprobe(args: &[&str], dir: &Path) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("STREAMPROBE_LOG");
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("streamprobe finished in time")
        .expect("streamprobe ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn schema_errors(document: &Value) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/compare.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    validator
        .iter_errors(document)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

async fn mock() -> MockServer {
    MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())
        .await
        .unwrap()
}

/// `streamprobe run` with the default output name (`test_results.json`, as the old script)
/// in a directory of its own; 100 requests, 10 at a time, every delay with ±10% uniform jitter.
/// With ±10%, the sampling error of a side's median TTFT is about 1% (uniform: range / 2√n),
/// so an A/A pair only "regresses" past the 5% `min_change` on a systematic 10 ms shift; at
/// ±20% it is 2%, and a 1-in-40 A/A run crossed 5% by chance plus the load-correlated noise of
/// requests that run in waves (seen in repeated runs on a loaded 2-core machine).
async fn run(server: &MockServer, ttft: &str, dir: &Path) -> PathBuf {
    let url = server.url(&format!(
        "/v1/chat/completions?ttft={ttft}&itl=50ms&tokens=4&jitter=0.1"
    ));
    let out = streamprobe(
        &["run", "-u", &url, "-n", "100", "-p", "10", "--no-progress"],
        dir,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    dir.join("test_results.json")
}

/// Two runs at the same time (so machine load hits both alike), in two directories.
async fn two_runs(ttft_a: &str, ttft_b: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let (da, db) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let (a, b) = tokio::join!(run(&server, ttft_a, &da), run(&server, ttft_b, &db));
    (dir, a, b)
}

fn rows(doc: &Value) -> &Vec<Value> {
    doc["rows"].as_array().unwrap()
}

fn row<'a>(doc: &'a Value, key: &str) -> &'a Value {
    rows(doc).iter().find(|r| r["row"] == key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_first_token_regresses_and_fails_the_gate() {
    let (dir, before, after) = two_runs("200ms", "260ms").await;
    let (b, a) = (before.to_str().unwrap(), after.to_str().unwrap());

    let out = streamprobe(&["compare", b, a], dir.path()).await;
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}{}", text(&out.stderr));
    let p50_line = report
        .lines()
        .find(|l| l.starts_with("ttft:p50*"))
        .unwrap_or_else(|| panic!("no ttft:p50 row:\n{report}"));
    assert!(p50_line.ends_with("regressed"), "{report}");
    assert!(report.contains("FAILED, regressed: ttft:p50"), "{report}");

    let out = streamprobe(&["compare", b, a, "--format", "json"], dir.path()).await;
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
    let p50 = row(&doc, "ttft:p50");
    assert_eq!(p50["verdict"], "regressed");
    assert_eq!(p50["n_baseline"], 100);
    // The mock's medians are 200 and 260 ms: +30% (a little less as measured, since the
    // client's own overhead adds to both). Whether the interval covers exactly +30% is a
    // 98.3% event, not an invariant, so only its side of zero is asserted.
    let change = p50["change"].as_f64().unwrap();
    assert!((0.2..0.4).contains(&change), "{change}");
    let (lo, hi) = (
        p50["ci_low"].as_f64().unwrap(),
        p50["ci_high"].as_f64().unwrap(),
    );
    assert!(
        0.05 < lo && lo < change && change < hi,
        "{lo} {change} {hi}"
    );
    assert_eq!(doc["gate"]["passed"], false);
    assert_eq!(
        doc["baseline"]["target"], "127.0.0.1",
        "named after the host"
    );

    // Reversed, the same data is an improvement: the gate passes.
    let out = streamprobe(&["compare", a, b, "--format", "markdown"], dir.path()).await;
    let md = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{md}");
    assert!(
        md.contains("| `ttft:p50` | ✓ |") && md.contains("**improved**"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_settings_compare_without_a_regressed_row() {
    let (dir, first, second) = two_runs("200ms", "200ms").await;
    let (f, s) = (first.to_str().unwrap(), second.to_str().unwrap());
    let out = streamprobe(&["compare", f, s, "--format", "json"], dir.path()).await;
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
    let regressed: Vec<&Value> = rows(&doc)
        .iter()
        .filter(|r| r["verdict"] == "regressed")
        .collect();
    assert!(regressed.is_empty(), "{regressed:#?}");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(doc["gate"]["passed"], true);
    // Every metric had its 100 samples.
    for key in ["ttft:p50", "tpot:p50", "itl:p50", "duration:p50"] {
        assert_eq!(row(&doc, key)["n_candidate"], 100, "{key}");
        assert_ne!(row(&doc, key)["verdict"], "insufficient_data", "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_name_the_file_or_flag() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"metrics": [{"request_id": 1, "ttft": 0.2, "total_time": 1.0, "error": null}]}"#,
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let (g, b) = (good.to_str().unwrap(), bad.to_str().unwrap());

    let out = streamprobe(&["compare", g, b], dir.path()).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("error: {b}: not a streamprobe result file: ")),
        "{stderr}"
    );

    let out = streamprobe(&["compare", g, g, "--gate", "ttft:p95"], dir.path()).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: --gate: unknown statistic \"p95\" in \"ttft:p95\"; use p50, p90, p99 or mean\n"
    );

    // One request a side: nothing can be judged, so nothing fails.
    let out = streamprobe(&["compare", g, g], dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("insufficient_data"));
}

#[test]
fn an_engine_report_validates_against_the_schema() {
    // Failures on one side, every metric present, no gate: every kind of row and field.
    let mut rng = SplitMix64::new(5);
    let mut side = |n: usize, failed: u64, scale: f64| {
        let mut draw = |median: f64| -> Vec<f64> {
            (0..n)
                .map(|_| (median.ln() + 0.3 * rng.standard_normal()).exp() * scale)
                .collect()
        };
        Samples {
            ttft: draw(0.2),
            tpot: draw(0.02),
            itl: draw(0.021),
            duration: draw(1.5),
            requests: n as u64 + failed,
            failed,
        }
    };
    let (base, cand) = (side(120, 0, 1.0), side(80, 9, 1.2));
    let read_side = |source: &str, samples: Samples| Side {
        source: PathBuf::from(source),
        target: None,
        files: 3,
        samples,
    };
    for settings in [
        Settings::default(),
        Settings {
            gate: vec![],
            ..Settings::default()
        },
    ] {
        let report = CompareReport {
            comparison: compare(&base, &cand, &settings),
            baseline: read_side("before/", base.clone()),
            candidate: read_side("after/", cand.clone()),
        };
        let doc: Value = serde_json::from_str(&render_json(&report)).unwrap();
        assert_eq!(schema_errors(&doc), Vec::<String>::new());
        assert_eq!(rows(&doc).len(), 17);
        assert_eq!(doc["baseline"]["target"], Value::Null);
    }
}

#[test]
fn the_schema_rejects_what_the_engine_never_writes() {
    let report = CompareReport {
        comparison: compare(
            &Samples::default(),
            &Samples::default(),
            &Settings::default(),
        ),
        baseline: Side {
            source: PathBuf::from("a.json"),
            target: Some("t".into()),
            files: 1,
            samples: Samples::default(),
        },
        candidate: Side {
            source: PathBuf::from("b.json"),
            target: Some("t".into()),
            files: 1,
            samples: Samples::default(),
        },
    };
    let doc: Value = serde_json::from_str(&render_json(&report)).unwrap();
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
    let mut bad = doc.clone();
    bad["rows"][0]["verdict"] = "worse".into();
    assert!(!schema_errors(&bad).is_empty());
    let mut bad = doc.clone();
    bad["rows"][0]["surprise"] = 1.into();
    assert!(!schema_errors(&bad).is_empty());
    let mut bad = doc;
    bad["rows"][16]["statistic"] = "p50".into();
    assert!(
        !schema_errors(&bad).is_empty(),
        "errors row must be a ratio"
    );
}
