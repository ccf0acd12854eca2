//! The daemon's verdicts end to end (DESIGN §10): `serve` runs as a child process against the
//! in-process mock with two targets and short windows. Once a baseline has formed, a reload
//! slows one target's TTFT by 50%; within two of its slower bursts its verdict is `regressed`
//! (metric and result file) while the other stays `no_change`; after a restart the verdicts
//! come back from the result files before any new burst, and a reload that changes the
//! `verdict:` settings (a `min_change` above the shift) judges again from the same files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use streamprobe::mock::MockOptions;

mod common;
use common::daemon::Daemon;
use common::{BIN, free_port};

/// Two targets, 20 requests a second each; `@STEADY@`/`@SHIFTED@` are their mock TTFTs. The
/// recent window is about eight bursts, the baseline ten minutes; `min_change` is wide enough
/// that a loaded test machine's scheduling noise on a steady target stays inside it.
const CONFIG: &str = r#"
server: {listen: "@LISTEN@", enable_admin_api: true}
results: {dir: "@RESULTS@"}
defaults:
  concurrency: 10
  total_requests: 20
  schedule: {every: @EVERY@}
  run_on_start: @RUN_ON_START@
  timeout: 10s
  body: {model: m, messages: [{role: user, content: hi}], stream: true}
  verdict: {baseline: 10m, recent: 8s, min_change: @MIN_CHANGE@, min_samples: 20, statistic: p90}
targets:
  - {name: steady, url: "@CHAT@?ttft=200ms&itl=2ms&tokens=3"}
  - {name: shifted, url: "@CHAT@?ttft=@SHIFTED@&itl=2ms&tokens=3"}
"#;

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    chat: String,
}

impl Setup {
    fn config_path(&self) -> PathBuf {
        self.dir.path().join("streamprobe.yaml")
    }

    fn results(&self, target: &str) -> PathBuf {
        self.dir.path().join("results").join(target)
    }

    fn write(&self, shifted: &str, every: &str, run_on_start: bool) {
        self.write_with_min_change(shifted, every, run_on_start, "25%");
    }

    /// As [`Setup::write`], with the verdict's `min_change`.
    fn write_with_min_change(&self, shifted: &str, every: &str, run_on_start: bool, min: &str) {
        let yaml = CONFIG
            .replace("@LISTEN@", &format!("127.0.0.1:{}", self.port))
            .replace(
                "@RESULTS@",
                &self.dir.path().join("results").display().to_string(),
            )
            .replace("@CHAT@", &self.chat)
            .replace("@SHIFTED@", shifted)
            .replace("@EVERY@", every)
            .replace("@RUN_ON_START@", &run_on_start.to_string())
            .replace("@MIN_CHANGE@", min);
        fs::write(self.config_path(), yaml).unwrap();
    }

    async fn start(&self) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("-c")
            .arg(self.config_path())
            .env_remove("NOTIFY_SOCKET")
            .env("STREAMPROBE_LOG", "info");
        Daemon::start(cmd, self.port).await
    }
}

/// The target's TTFT verdict as the state set says, `None` unless exactly one state is 1.
async fn verdict(d: &Daemon, target: &str) -> Option<String> {
    let m = d.metrics().await;
    let ones: Vec<&str> = [
        "regressed",
        "improved",
        "no_change",
        "inconclusive",
        "insufficient_data",
    ]
    .into_iter()
    .filter(|v| {
        m.get(
            "streamprobe_verdict",
            &[("target", target), ("metric", "ttft"), ("verdict", v)],
        ) == Some(1.0)
    })
    .collect();
    (ones.len() == 1).then(|| ones[0].to_owned())
}

async fn wait_verdicts(d: &Daemon, want: &[(&str, &str)], within: Duration) {
    common::wait::wait_for(
        &format!("verdicts {want:?}"),
        within,
        async || {
            let mut seen = Vec::new();
            for (t, _) in want {
                seen.push(verdict(d, t).await);
            }
            seen
        },
        |seen| {
            seen.iter()
                .zip(want)
                .all(|(s, (_, v))| s.as_deref() == Some(*v))
        },
    )
    .await;
}

/// A target's result documents, oldest first.
fn documents(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_slice(&fs::read(f).unwrap()).unwrap())
        .collect()
}

/// The smallest TTFT of a document's requests.
fn min_ttft(doc: &Value) -> f64 {
    doc["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["ttft"].as_f64())
        .fold(f64::INFINITY, f64::min)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_target_regresses_the_other_does_not_and_a_restart_keeps_both() {
    let mock = common::mock(MockOptions::default()).await;
    let s = Setup {
        dir: tempfile::tempdir().unwrap(),
        port: free_port(),
        chat: mock.url("/v1/chat/completions"),
    };
    s.write("200ms", "1s", true);
    let mut d = s.start().await;

    // A baseline forms: both targets judged `no_change` against it.
    wait_verdicts(
        &d,
        &[("steady", "no_change"), ("shifted", "no_change")],
        Duration::from_secs(25),
    )
    .await;
    let api = d.json("/api/v1/targets").await;
    let steady = api
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "steady")
        .unwrap();
    let v = &steady["verdict"];
    assert_eq!(v["verdict"], "no_change", "{v}");
    assert_eq!(v["statistic"], "p90");
    let band = (
        v["baseline_p50"].as_f64().unwrap(),
        v["baseline_p95"].as_f64().unwrap(),
    );
    assert!(band.0 >= 0.2 && band.1 >= band.0, "{band:?}");
    assert!(v["n_baseline"].as_u64().unwrap() >= 20, "{v}");

    // One target's TTFT rises by 50%.
    s.write("300ms", "1s", true);
    let (status, body) = d.post("/-/reload").await;
    assert_eq!(status, 200, "{body}");
    wait_verdicts(
        &d,
        &[("steady", "no_change"), ("shifted", "regressed")],
        Duration::from_secs(10),
    )
    .await;
    let m = d.metrics().await;
    let ratio = m
        .get(
            "streamprobe_change_ratio",
            &[
                ("target", "shifted"),
                ("metric", "ttft"),
                ("quantile", "0.9"),
            ],
        )
        .unwrap();
    assert!(ratio > 1.25, "{ratio}");
    assert!(
        m.get(
            "streamprobe_baseline_seconds",
            &[
                ("target", "shifted"),
                ("metric", "ttft"),
                ("quantile", "0.5")
            ],
        )
        .unwrap()
            >= 0.2
    );

    // Within two slower bursts, a result file says `regressed`.
    let docs = documents(&s.results("shifted"));
    let slower: Vec<&Value> = docs.iter().filter(|d| min_ttft(d) >= 0.29).collect();
    assert!(!slower.is_empty());
    let first_regressed = slower
        .iter()
        .position(|d| d["verdict"]["ttft"]["verdict"] == "regressed")
        .expect("a slower burst's file says regressed");
    assert!(
        first_regressed < 2,
        "regressed only at slower burst {}",
        first_regressed + 1
    );
    // The steady target's files never said regressed, and once judged they say no_change.
    let steady: Vec<String> = documents(&s.results("steady"))
        .iter()
        .map(|d| d["verdict"]["ttft"]["verdict"].as_str().unwrap().to_owned())
        .collect();
    assert!(!steady.iter().any(|v| v == "regressed"), "{steady:?}");
    assert_eq!(
        steady.last().map(String::as_str),
        Some("no_change"),
        "{steady:?}"
    );

    // One more slower burst, then a restart with no burst due for an hour: the verdicts come
    // back from the files.
    let bursts_now = slower.len();
    common::wait::wait_for(
        "another slower burst",
        Duration::from_secs(5),
        async || {
            documents(&s.results("shifted"))
                .iter()
                .filter(|d| min_ttft(d) >= 0.29)
                .count()
        },
        |n| *n > bursts_now,
    )
    .await;
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(10)).await.is_some());
    drop(d);
    s.write("300ms", "1h", false);
    let d = s.start().await;
    wait_verdicts(
        &d,
        &[("steady", "no_change"), ("shifted", "regressed")],
        Duration::from_secs(5),
    )
    .await;
    let m = d.metrics().await;
    assert_eq!(m.sum("streamprobe_bursts_total", &[]), 0.0, "no new burst");

    // A reload that asks for a larger change than the +50% measured: both targets' windows are
    // rebuilt from the same files under the new settings (still no new burst), and the slower
    // target is no longer a regression.
    s.write_with_min_change("300ms", "1h", false, "90%");
    let (status, body) = d.post("/-/reload").await;
    assert_eq!(status, 200, "{body}");
    common::wait::wait_for(
        "verdicts judged with min_change 90%",
        Duration::from_secs(5),
        async || d.json("/api/v1/targets").await,
        |api| {
            api.as_array().is_some_and(|targets| {
                targets.len() == 2 && targets.iter().all(|t| t["verdict"]["min_change"] == 0.9)
            })
        },
    )
    .await;
    wait_verdicts(
        &d,
        &[("steady", "no_change"), ("shifted", "no_change")],
        Duration::from_secs(5),
    )
    .await;
    let m = d.metrics().await;
    let p90_ratio = [
        ("target", "shifted"),
        ("metric", "ttft"),
        ("quantile", "0.9"),
    ];
    let ratio = m.get("streamprobe_change_ratio", &p90_ratio);
    assert!(
        ratio.is_some_and(|r| r > 1.25),
        "the change is still measured: {ratio:?}"
    );
    assert_eq!(m.sum("streamprobe_bursts_total", &[]), 0.0, "no new burst");
}
