//! `streamprobe serve` end to end: the daemon runs as a child process against the in-process
//! mock and is observed only the way an operator observes it — `/metrics`, `/api/v1`, result
//! files, its exit status and its systemd notifications. Each test bounds every wait; a guard
//! kills the child on drop, so a failed test leaves no process behind (and prints its log).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use streamprobe::mock::{MockOptions, MockServer};

mod common;
use common::daemon::Daemon;
use common::exposition::Exposition;
use common::wait::wait_for;
use common::{BIN, free_port};

/// A small streamed chat request, as every test target sends it.
const BODY: &str = "{model: m, messages: [{role: user, content: hi}], stream: true, \
                    stream_options: {include_usage: true}}";

// ---------------------------------------------------------------------------------------------
// Harness

async fn mock() -> MockServer {
    common::mock(MockOptions::default()).await
}

/// A temporary directory holding one daemon's config and results.
struct Workdir {
    dir: tempfile::TempDir,
    port: u16,
    chat: String,
}

impl Workdir {
    fn new(mock: &MockServer) -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            chat: mock.url("/v1/chat/completions"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn results(&self) -> PathBuf {
        self.path("results")
    }

    fn config_path(&self) -> PathBuf {
        self.path("streamprobe.yaml")
    }

    /// Writes the config: `@LISTEN@`, `@RESULTS@`, `@CHAT@` (the mock's chat URL) and `@BODY@`
    /// are filled in.
    fn write_config(&self, template: &str) {
        let yaml = template
            .replace("@LISTEN@", &format!("127.0.0.1:{}", self.port))
            .replace("@RESULTS@", &self.results().display().to_string())
            .replace("@CHAT@", &self.chat)
            .replace("@BODY@", BODY);
        fs::write(self.config_path(), yaml).expect("write config");
    }

    async fn start(&self, template: &str) -> Daemon {
        self.write_config(template);
        self.spawn(&[], &[]).await
    }

    /// Starts `serve` on the written config and waits until `/-/ready` answers 200.
    async fn spawn(&self, args: &[&str], env: &[(&str, &OsStr)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .env("STREAMPROBE_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon::start(cmd, self.port).await
    }
}

/// Waits (5 s at most) until `target` has exactly `n` requests in flight.
async fn wait_in_flight(d: &Daemon, target: &str, n: f64) {
    d.wait_for_metric(
        "streamprobe_in_flight_requests",
        &[("target", target)],
        Duration::from_secs(5),
        |v| v == Some(n),
    )
    .await;
}

fn requests(m: &Exposition, target: &str) -> f64 {
    m.sum("streamprobe_requests_total", &[("target", target)])
}

fn bursts_total(m: &Exposition, target: &str) -> f64 {
    m.sum("streamprobe_bursts_total", &[("target", target)])
}

/// The result files of `target`, oldest first (the names sort by start time).
fn result_files(results: &Path, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(results.join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6
}

/// The harness's one polling loop fails the test saying what it waited for and what it saw.
#[tokio::test]
#[should_panic(expected = "waiting for the answer; last seen: 2")]
async fn a_timed_out_wait_names_what_it_awaited_and_the_last_value_seen() {
    // The first look comes well before the deadline, so there are at least two: the message
    // must carry the second, not the first.
    let mut looks = 0;
    wait_for(
        "the answer",
        Duration::from_millis(200),
        async || {
            looks += 1;
            looks.min(2)
        },
        |n| *n == 42,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_agree_with_result_files_and_injected_faults() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@"}
results: {dir: "@RESULTS@", keep_per_target: 100}
defaults: {concurrency: 2, total_requests: 4, schedule: {every: 1s}, run_on_start: true,
           timeout: 10s, body: @BODY@}
targets:
  - {name: ok, url: "@CHAT@?ttft=30ms&itl=5ms&tokens=5"}
  - {name: bad, url: "@CHAT@?fault=500"}
"#,
        )
        .await;

    // At least three bursts each, then a moment in which nothing changes between two scrapes
    // and the API has published every burst the metrics counted (the board is updated after
    // the file is written, the burst counters before).
    let (_, ok_bursts, bad_bursts, m) = wait_for(
        "three quiet bursts per target",
        Duration::from_secs(12),
        // Evaluated in order: metrics, the API, metrics again.
        async || {
            (
                d.metrics().await,
                d.bursts("ok").await,
                d.bursts("bad").await,
                d.metrics().await,
            )
        },
        |(before, ok_bursts, bad_bursts, after)| {
            let quiet = ["ok", "bad"].iter().all(|t| {
                requests(before, t) == requests(after, t)
                    && bursts_total(before, t) == bursts_total(after, t)
                    && after.get("streamprobe_in_flight_requests", &[("target", t)]) == Some(0.0)
            });
            quiet
                && bursts_total(after, "ok") >= 3.0
                && bursts_total(after, "bad") >= 3.0
                && bursts_total(after, "ok") == ok_bursts.len() as f64
                && bursts_total(after, "bad") == bad_bursts.len() as f64
        },
    )
    .await;
    let n_ok = ok_bursts.len() as f64;
    let n_bad = bad_bursts.len() as f64;

    // Counters: every request of every burst, with the outcome the mock injected.
    assert_eq!(requests(&m, "ok"), 4.0 * n_ok, "{}", m.text);
    let ok_success = m
        .get(
            "streamprobe_requests_total",
            &[("target", "ok"), ("outcome", "success")],
        )
        .unwrap();
    assert_eq!(ok_success, 4.0 * n_ok);
    assert_eq!(requests(&m, "bad"), 4.0 * n_bad);
    assert_eq!(
        m.get(
            "streamprobe_requests_total",
            &[("target", "bad"), ("outcome", "http_5xx")]
        ),
        Some(4.0 * n_bad)
    );
    assert_eq!(
        m.get(
            "streamprobe_requests_total",
            &[("target", "bad"), ("outcome", "success")]
        ),
        Some(0.0),
        "success is declared at zero before the first failure"
    );
    // Histograms: TTFT only from successes; duration from every request, by outcome.
    assert_eq!(
        m.get(
            "streamprobe_time_to_first_token_seconds_count",
            &[("target", "ok")]
        ),
        Some(ok_success)
    );
    assert_eq!(
        m.sum(
            "streamprobe_time_to_first_token_seconds_count",
            &[("target", "bad")]
        ),
        0.0
    );
    assert_eq!(
        m.get(
            "streamprobe_request_duration_seconds_count",
            &[("target", "bad"), ("outcome", "http_5xx")]
        ),
        Some(4.0 * n_bad)
    );
    let ttft_sum = m
        .get(
            "streamprobe_time_to_first_token_seconds_sum",
            &[("target", "ok")],
        )
        .unwrap();
    assert!(
        ttft_sum >= 0.030 * ok_success,
        "mean TTFT below the mock's 30ms: {ttft_sum}"
    );
    assert_eq!(
        m.get(
            "streamprobe_bursts_total",
            &[("target", "ok"), ("result", "success")]
        ),
        Some(n_ok)
    );
    assert_eq!(
        m.get(
            "streamprobe_bursts_total",
            &[("target", "bad"), ("result", "failed")]
        ),
        Some(n_bad)
    );
    // The mock saw exactly the requests the daemon counted.
    assert_eq!(mock.truths().len() as f64, 4.0 * (n_ok + n_bad));

    // Last-burst gauges equal the newest result file's exact summary.
    let last = ok_bursts.last().unwrap();
    let file = last["file"].as_str().expect("last burst's file is written");
    let id = last["burst_id"].as_str().unwrap();
    assert!(file.ends_with(&format!("-{id}.json")), "{file}");
    let on_disk = result_files(&w.results(), "ok");
    assert_eq!(on_disk.len() as f64, n_ok, "one file per burst");
    assert_eq!(on_disk.last().unwrap().file_name().unwrap(), file);
    let doc = read_json(on_disk.last().unwrap());
    assert_eq!(doc["burst_id"], id);
    assert_eq!(doc["interrupted"], false);
    let (status, served) = d.get(&format!("/api/v1/results/ok/{file}")).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&served).unwrap(), doc);
    for (q, key) in [
        ("0.5", "p50"),
        ("0.9", "p90"),
        ("0.95", "p95"),
        ("0.99", "p99"),
    ] {
        let gauge = m
            .get(
                "streamprobe_last_burst_ttft_seconds",
                &[("target", "ok"), ("quantile", q)],
            )
            .unwrap_or_else(|| panic!("quantile {q} missing"));
        let exact = doc["summary"]["ttft"][key].as_f64().unwrap();
        assert!(close(gauge, exact), "q{q}: gauge {gauge} vs file {exact}");
    }
    assert!(close(
        last["ttft_p50"].as_f64().unwrap(),
        doc["summary"]["ttft"]["p50"].as_f64().unwrap()
    ));
    let success = doc["summary"]["success_count"].as_f64().unwrap();
    let failed = doc["summary"]["failed_count"].as_f64().unwrap();
    let ratio = m
        .get("streamprobe_last_burst_success_ratio", &[("target", "ok")])
        .unwrap();
    assert!(close(ratio, success / (success + failed)) && close(ratio, 1.0));
    // The client's own scheduling lag (issue 13, item 4): the gauge is the newest file's p99.
    let client = &doc["summary"]["client"];
    let lag_p99 = client["lag_p99"]
        .as_f64()
        .expect("every burst measures its lag");
    let lag = m
        .get("streamprobe_client_lag_seconds", &[("target", "ok")])
        .expect("the lag gauge is exported");
    assert!(close(lag, lag_p99), "gauge {lag} vs file {lag_p99}");
    assert!(client["lag_max"].as_f64().unwrap() >= lag_p99, "{client}");
    // The scheduler's own lateness: every tick of `ok` (every 1 s) was acted on, well within a
    // period of its due time.
    let late = m
        .get("streamprobe_schedule_lag_seconds", &[("target", "ok")])
        .expect("a scheduled target exports its schedule lag");
    assert!((0.0..0.5).contains(&late), "{late}");
    assert!(client["cpu_seconds"].as_f64().is_some(), "{client}");
    assert_eq!(
        client["warning"].is_null(),
        lag_p99 <= 0.001,
        "a 30 ms TTFT warns only above 1 ms: {client}"
    );
    let (status, page) = d.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("/api/v1/results/ok/{file}")),
        "the status page links the newest result"
    );
    let stamp = m
        .get(
            "streamprobe_last_burst_timestamp_seconds",
            &[("target", "ok")],
        )
        .unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        (now - 15.0..=now + 1.0).contains(&stamp),
        "{stamp} vs {now}"
    );

    // The failing target: ratio 0, no TTFT quantiles (there is no exact value), outcomes in
    // the file.
    let bad_doc = read_json(result_files(&w.results(), "bad").last().unwrap());
    assert_eq!(bad_doc["burst_id"], bad_bursts.last().unwrap()["burst_id"]);
    assert_eq!(bad_doc["summary"]["outcomes"]["http_5xx"], 4);
    assert_eq!(
        m.get("streamprobe_last_burst_success_ratio", &[("target", "bad")]),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "streamprobe_last_burst_ttft_seconds",
            &[("target", "bad"), ("quantile", "0.5")]
        ),
        None
    );
    assert_eq!(
        m.get("streamprobe_config_last_reload_successful", &[]),
        Some(1.0)
    );
}

const RELOAD_V1: &str = r#"
server: {listen: "@LISTEN@", enable_admin_api: true}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 1, total_requests: 2, schedule: {every: 1s}, run_on_start: true,
           timeout: 10s, body: @BODY@}
targets:
  - {name: keep, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
  - {name: gone, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
  - {name: change, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
"#;

/// `RELOAD_V1` with `gone` removed, `change` changed (size and schedule) and `fresh` added.
const RELOAD_V2: &str = r#"
server: {listen: "@LISTEN@", enable_admin_api: true}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 1, total_requests: 2, schedule: {every: 1s}, run_on_start: true,
           timeout: 10s, body: @BODY@}
targets:
  - {name: keep, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
  - {name: change, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3", total_requests: 3,
     schedule: {every: 2s}}
  - {name: fresh, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
"#;

/// Every target has a next run in the future (a reload must not leave one unscheduled).
async fn assert_scheduled(d: &Daemon, names: &[&str]) {
    let targets = d.json("/api/v1/targets").await;
    for t in targets.as_array().unwrap() {
        if names.contains(&t["name"].as_str().unwrap()) {
            assert!(t["next_run"].is_string(), "not scheduled: {t}");
        }
    }
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_removes_and_changes_targets_and_survives_a_bad_file() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w.start(RELOAD_V1).await;
    d.wait_bursts(&["keep", "gone", "change"], 1, Duration::from_secs(8))
        .await;
    let before = d.metrics().await;
    assert!(before.mentions_target("gone"));
    let keep_before = requests(&before, "keep");
    let change_before = requests(&before, "change");
    assert!(keep_before >= 2.0 && change_before >= 2.0);
    let stamp_before = before
        .get(
            "streamprobe_config_last_reload_success_timestamp_seconds",
            &[],
        )
        .unwrap();

    // Through the admin API.
    w.write_config(RELOAD_V2);
    let (status, body) = d.post("/-/reload").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(d.target_names().await, names(&["keep", "change", "fresh"]));
    assert_scheduled(&d, &["keep", "change", "fresh"]).await;
    let targets = d.json("/api/v1/targets").await;
    let change = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "change")
        .unwrap();
    assert_eq!(change["schedule"], "every 2s");
    // The removed target's series go (a burst still running when the reload came finishes
    // first, so allow it a moment) and do not come back.
    d.wait_for_metrics("gone's series removed", Duration::from_secs(5), |m| {
        !m.mentions_target("gone")
    })
    .await;
    let m = d.metrics().await;
    assert!(requests(&m, "keep") >= keep_before, "keep's counters reset");
    assert!(
        requests(&m, "change") >= change_before,
        "change's counters reset"
    );
    assert!(
        m.get("streamprobe_target_info", &[("target", "fresh")]) == Some(1.0),
        "{}",
        m.text
    );
    assert_eq!(
        m.get("streamprobe_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let stamp_after = m
        .get(
            "streamprobe_config_last_reload_success_timestamp_seconds",
            &[],
        )
        .unwrap();
    assert!(stamp_after >= stamp_before);
    d.wait_bursts(&["fresh"], 1, Duration::from_secs(5)).await;
    let m = d.metrics().await;
    assert!(!m.mentions_target("gone"), "gone came back:\n{}", m.text);
    assert!(requests(&m, "fresh") >= 2.0);
    assert!(m.sum("streamprobe_in_flight_requests", &[("target", "keep")]) >= 0.0);

    // Through SIGHUP: fresh goes again, hup arrives.
    w.write_config(&RELOAD_V2.replace("name: fresh", "name: hup"));
    d.signal("HUP");
    wait_for(
        "SIGHUP reload",
        Duration::from_secs(5),
        async || d.target_names().await,
        |now| *now == names(&["keep", "change", "hup"]),
    )
    .await;
    assert_scheduled(&d, &["keep", "change", "hup"]).await;
    assert_eq!(
        d.metrics()
            .await
            .get("streamprobe_config_last_reload_successful", &[]),
        Some(1.0)
    );

    // A broken file: refused with the validation message, the running config keeps running.
    let broken = RELOAD_V2
        .replace("name: fresh", "name: hup")
        .replace("concurrency: 1,", "concurrency: 0,");
    w.write_config(&broken);
    let (status, body) = d.post("/-/reload").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("concurrency") && body.contains("got 0"),
        "message names the field and the value: {body}"
    );
    let m = d.metrics().await;
    assert_eq!(
        m.get("streamprobe_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(d.target_names().await, names(&["keep", "change", "hup"]));
    let keep_now = requests(&m, "keep");
    d.wait_for_metrics(
        "keep runs on after a bad reload",
        Duration::from_secs(5),
        |m| requests(m, "keep") > keep_now,
    )
    .await;
    // The same through SIGHUP: logged, counted, survived.
    d.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = d.get("/-/healthy").await;
    assert_eq!(status, 200);
    assert_eq!(
        d.metrics()
            .await
            .get("streamprobe_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(d.target_names().await, names(&["keep", "change", "hup"]));
    assert!(d.log_text().contains("reload failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_cancels_a_burst_after_the_grace_period_and_writes_it_interrupted() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let mut d = w
        .start(
            r#"
server: {listen: "@LISTEN@", shutdown_grace: 1s}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 2, total_requests: 4, schedule: {every: 1h}, run_on_start: true,
           timeout: 60s, body: @BODY@}
targets:
  - {name: slow, url: "@CHAT@?ttft=50ms&itl=500ms&tokens=40"}
"#,
        )
        .await;
    wait_in_flight(&d, "slow", 2.0).await;
    let sent = Instant::now();
    d.signal("TERM");
    let status = d.wait_exit(Duration::from_secs(8)).await;
    let took = sent.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running 8s after SIGTERM"));
    assert!(status.success(), "{status}\n{}", d.log_text());
    assert!(
        took >= Duration::from_secs(1),
        "exited before the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    let files = result_files(&w.results(), "slow");
    assert_eq!(files.len(), 1, "{files:?}");
    let doc = read_json(&files[0]);
    assert_eq!(doc["interrupted"], true);
    assert_eq!(doc["target"], "slow");
    assert_eq!(doc["summary"]["success_count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_are_written_with_their_partial_timings_and_the_exit_follows_the_grace()
{
    let mock = mock().await;
    let w = Workdir::new(&mock);
    // Streams of 20 s: both in flight are cut when the 2 s grace ends.
    let mut d = w
        .start(
            r#"
server: {listen: "@LISTEN@", shutdown_grace: 2s}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 2, total_requests: 2, schedule: {every: 1h}, run_on_start: true,
           timeout: 60s, body: @BODY@}
targets:
  - {name: cut, url: "@CHAT@?ttft=100ms&itl=500ms&tokens=40"}
"#,
        )
        .await;
    wait_in_flight(&d, "cut", 2.0).await;
    let sent = Instant::now();
    d.signal("TERM");
    let status = d
        .wait_exit(Duration::from_secs(8))
        .await
        .unwrap_or_else(|| panic!("still running 8s after SIGTERM"));
    let took = sent.elapsed();
    assert!(status.success(), "{status}\n{}", d.log_text());
    assert!(
        took >= Duration::from_secs(2),
        "before the grace ended: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "the exit did not follow the grace: {took:?}\n{}",
        d.log_text()
    );
    let files = result_files(&w.results(), "cut");
    assert_eq!(files.len(), 1, "{files:?}");
    let doc = read_json(&files[0]);
    assert_eq!(doc["interrupted"], true);
    assert_eq!(
        doc["summary"]["outcomes"],
        serde_json::json!({"interrupted": 2})
    );
    assert_eq!(doc["summary"]["failed_count"], 0);
    let requests = doc["metrics"].as_array().unwrap();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for r in requests {
        assert_eq!(r["outcome"], "interrupted", "{r}");
        let headers = r["time_to_headers"].as_f64().unwrap();
        let ttft = r["ttft"].as_f64().unwrap();
        let so_far = r["total_time"].as_f64().unwrap();
        assert!(headers <= ttft && ttft >= 0.1 && ttft < so_far, "{r}");
        assert!(so_far >= 2.0, "ran until the grace ended: {r}");
        assert!(r["total_tokens"].as_u64().unwrap() >= 3, "{r}");
        assert!(r["bytes"].as_u64().unwrap() > 0, "{r}");
    }
    let log = d.log_text();
    assert!(log.contains("requests=2"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_burst_finish_within_the_grace_period() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let mut d = w
        .start(
            r#"
server: {listen: "@LISTEN@", shutdown_grace: 8s, enable_admin_api: true}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 1, total_requests: 1, schedule: {every: 1h}, run_on_start: true,
           timeout: 60s, body: @BODY@}
targets:
  - {name: brief, url: "@CHAT@?ttft=50ms&itl=150ms&tokens=10"}
"#,
        )
        .await;
    wait_in_flight(&d, "brief", 1.0).await;
    let sent = Instant::now();
    d.signal("TERM");
    // While the burst finishes: not ready, and admin commands are refused at once instead of
    // hanging (and holding up the exit) until the daemon is gone.
    wait_for(
        "not ready after SIGTERM",
        Duration::from_secs(1),
        async || d.get("/-/ready").await.0,
        |status| *status == 503,
    )
    .await;
    let asked = Instant::now();
    let (status, body) = d.post("/-/reload").await;
    assert_eq!((status, body.as_str()), (503, "shutting down\n"));
    let (status, _) = d.post("/api/v1/targets/brief/trigger").await;
    assert_eq!(status, 503);
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );

    let status = d
        .wait_exit(Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("still running 5s after SIGTERM"));
    assert!(status.success(), "{status}\n{}", d.log_text());
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "waited for the whole grace period"
    );
    let files = result_files(&w.results(), "brief");
    assert_eq!(files.len(), 1, "{files:?}");
    let doc = read_json(&files[0]);
    assert_eq!(doc["interrupted"], false);
    assert_eq!(doc["summary"]["success_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_newest_files_per_target() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@"}
results: {dir: "@RESULTS@", keep_per_target: 3}
defaults: {concurrency: 1, total_requests: 1, schedule: {every: 1s}, run_on_start: true,
           timeout: 10s, body: @BODY@}
targets:
  - {name: kept, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
"#,
        )
        .await;
    // The API lists only bursts whose files exist, so count bursts on /metrics.
    wait_bursts_total(&d, "kept", 5.0, Duration::from_secs(10)).await;
    // Between two identical views of the API (no burst finished in between) the directory
    // holds exactly the newest three.
    let file_names = |files: &[PathBuf]| -> Vec<String> {
        files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let (first, files, _) = wait_for(
        "a quiet moment",
        Duration::from_secs(5),
        async || {
            (
                d.bursts("kept").await,
                result_files(&w.results(), "kept"),
                d.bursts("kept").await,
            )
        },
        |(first, files, second)| first == second && file_names(files).len() == 3,
    )
    .await;
    let newest: Vec<&str> = first[first.len() - 3..]
        .iter()
        .map(|b| b["file"].as_str().unwrap())
        .collect();
    let on_disk = file_names(&files);
    assert_eq!(on_disk, newest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_api_shows_a_running_bursts_requests_in_flight() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@", enable_admin_api: true}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 2, total_requests: 2, timeout: 10s, body: @BODY@}
targets:
  - {name: slow, url: "@CHAT@?ttft=1500ms&itl=2ms&tokens=3"}
"#,
        )
        .await;
    let (status, body) = d.post("/api/v1/targets/slow/trigger").await;
    assert_eq!(status, 202, "{body}");
    // The board subscribes to the burst: both requests wait for their first token together.
    wait_for(
        "both requests of the running burst in flight",
        Duration::from_secs(5),
        async || d.json("/api/v1/targets").await[0].clone(),
        |t| t["running"] == true && t["in_flight"] == 2,
    )
    .await;
    wait_bursts_total(&d, "slow", 1.0, Duration::from_secs(10)).await;
    wait_for(
        "the finished burst to leave nothing in flight",
        Duration::from_secs(5),
        async || d.json("/api/v1/targets").await[0].clone(),
        |t| t["running"] == false && t["in_flight"] == 0,
    )
    .await;
}

/// Waits until `target` finished at least `n` bursts, as `/metrics` counts them.
async fn wait_bursts_total(d: &Daemon, target: &str, n: f64, within: Duration) {
    d.wait_for_metrics(&format!("{n} bursts of {target}"), within, |m| {
        bursts_total(m, target) >= n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_and_api_list_only_bursts_whose_files_exist() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@", enable_admin_api: true}
results: {dir: "@RESULTS@", keep_per_target: 3}
defaults: {concurrency: 1, total_requests: 1, timeout: 10s, body: @BODY@}
targets:
  - {name: pruned, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
"#,
        )
        .await;
    // Triggered one by one (no schedule), so nothing changes while the lists are checked.
    for n in 1..=5 {
        let (status, body) = d.post("/api/v1/targets/pruned/trigger").await;
        assert_eq!(status, 202, "{body}");
        wait_bursts_total(&d, "pruned", f64::from(n), Duration::from_secs(5)).await;
        // Counted on /metrics before its file and the board are updated: wait for those too.
        wait_for(
            "the burst to leave the board's running state",
            Duration::from_secs(5),
            async || d.json("/api/v1/targets").await[0]["running"].clone(),
            |running| *running == false,
        )
        .await;
    }
    let bursts = d.bursts("pruned").await;
    assert_eq!(bursts.len(), 3, "retention kept 3 files: {bursts:#?}");
    assert_eq!(result_files(&w.results(), "pruned").len(), 3);
    for b in &bursts {
        let file = b["file"].as_str().expect("every burst here was written");
        let (status, _) = d.get(&format!("/api/v1/results/pruned/{file}")).await;
        assert_eq!(status, 200, "listed but gone: {file}");
    }
    let (_, page) = d.get("/").await;
    let links: Vec<&str> = page
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("/api/v1/results/"))
        .collect();
    assert_eq!(links.len(), 3, "{page}");
    for link in links {
        let (status, _) = d.get(link).await;
        assert_eq!(status, 200, "dead link on the status page: {link}");
    }
    // The target page plots and links only the retained bursts, each of which opens.
    let (status, page) = d.get("/targets/pruned").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("data-plot=\"trend\" data-points=\"3\""),
        "{page}"
    );
    let bursts: BTreeSet<&str> = page
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("/targets/pruned/bursts/"))
        .collect();
    assert_eq!(bursts.len(), 3, "{page}");
    for link in bursts {
        let (status, _) = d.get(link).await;
        assert_eq!(status, 200, "dead link on the target page: {link}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_ticks_are_skipped_and_counted_or_queued() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    // Each burst takes about 1.3 s; ticks come every second.
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@"}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 1, total_requests: 1, schedule: {every: 1s}, run_on_start: true,
           timeout: 10s, body: @BODY@}
targets:
  - {name: skipper, overlap: skip, url: "@CHAT@?ttft=50ms&itl=50ms&tokens=25"}
  - {name: queuer, overlap: queue, url: "@CHAT@?ttft=50ms&itl=50ms&tokens=25"}
"#,
        )
        .await;
    let skipped = |m: &Exposition, t: &str, reason: &str| {
        m.get(
            "streamprobe_bursts_skipped_total",
            &[("target", t), ("reason", reason)],
        )
        .unwrap()
    };
    let m = wait_for(
        "an overlap skip",
        Duration::from_secs(8),
        // Every scrape on the way must show at most one request in flight per target.
        async || {
            let m = d.metrics().await;
            for t in ["skipper", "queuer"] {
                let in_flight = m
                    .get("streamprobe_in_flight_requests", &[("target", t)])
                    .unwrap();
                assert!((0.0..=1.0).contains(&in_flight), "{t}: {in_flight}");
            }
            m
        },
        |m| skipped(m, "skipper", "overlap") >= 1.0 && bursts_total(m, "queuer") >= 2.0,
    )
    .await;
    // A queue of one absorbs a tick that finds the burst running: nothing is skipped, the
    // queued burst starts right after.
    assert_eq!(skipped(&m, "queuer", "overlap"), 0.0);
    assert_eq!(skipped(&m, "skipper", "late"), 0.0);
    assert_eq!(skipped(&m, "queuer", "late"), 0.0);
    // The board lists a burst after its file is written, a moment after the counters.
    d.wait_bursts(&["queuer"], 2, Duration::from_secs(2)).await;
    let queued = d.bursts("queuer").await;
    let (a, b) = (&queued[0], &queued[1]);
    let start = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["started_at"].as_str().unwrap()).unwrap()
    };
    let gap = (start(b) - start(a)).to_std().unwrap();
    let first_duration = Duration::from_secs_f64(a["duration_seconds"].as_f64().unwrap());
    // It started when the first ended, not at the next free tick (2 s after the first).
    assert!(
        first_duration > Duration::from_secs(1),
        "the 1 s tick must find the first burst running: {first_duration:?}"
    );
    assert!(
        gap >= first_duration && gap < Duration::from_millis(1900),
        "queued burst started {gap:?} after the first, which took {first_duration:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_schedule_runs_only_when_triggered() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@", enable_admin_api: true}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 2, total_requests: 3, timeout: 10s, body: @BODY@}
targets:
  - {name: manual, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
"#,
        )
        .await;
    let targets = d.json("/api/v1/targets").await;
    assert_eq!(targets[0]["schedule"], "manual (trigger only)");
    assert!(targets[0]["next_run"].is_null());
    // Absence can only be observed by waiting a while.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(requests(&d.metrics().await, "manual"), 0.0);
    assert!(d.bursts("manual").await.is_empty());

    for n in 1..=2 {
        let (status, body) = d.post("/api/v1/targets/manual/trigger").await;
        assert_eq!(status, 202, "{body}");
        d.wait_bursts(&["manual"], n, Duration::from_secs(5)).await;
        assert_eq!(requests(&d.metrics().await, "manual"), 3.0 * n as f64);
    }
    let (status, body) = d.post("/api/v1/targets/nope/trigger").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("nope"));
    assert_eq!(mock.truths().len(), 6);
    // Triggers are not ticks: a manual target has no schedule lag (nor a period).
    let m = d.metrics().await;
    assert_eq!(
        m.get("streamprobe_schedule_lag_seconds", &[("target", "manual")]),
        None
    );
    assert_eq!(
        m.get(
            "streamprobe_schedule_period_seconds",
            &[("target", "manual")]
        ),
        None
    );

    // SIGINT stops it like SIGTERM.
    let mut d = d;
    d.signal("INT");
    let status = d.wait_exit(Duration::from_secs(3)).await.expect("exits");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_is_notified_of_ready_reloading_and_stopping() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let socket_path = w.path("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).expect("bind notify socket");
    w.write_config(
        r#"
server: {listen: "@LISTEN@"}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 1, total_requests: 1, timeout: 10s, body: @BODY@}
targets:
  - {name: quiet, url: "@CHAT@", schedule: {every: 1h}}
"#,
    );
    // Watchdog every 300 ms: pinged every 150 ms.
    let env = [
        ("NOTIFY_SOCKET", socket_path.as_os_str()),
        ("WATCHDOG_USEC", OsStr::new("300000")),
    ];
    let mut d = w.spawn(&[], &env).await;
    let pings = std::cell::Cell::new(0);
    // The next notification that is not a watchdog ping (those are counted).
    let next = async |d: &Daemon| -> String {
        let mut buf = vec![0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await {
                Ok(Ok(n)) if &buf[..n] == b"WATCHDOG=1\n" => pings.set(pings.get() + 1),
                Ok(Ok(n)) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
                other => panic!("no notification: {other:?}\n{}", d.log_text()),
            }
        }
    };
    let lines = |m: &str| -> Vec<String> { m.lines().map(str::to_owned).collect() };

    let ready = next(&d).await;
    assert!(lines(&ready).contains(&"READY=1".to_owned()), "{ready:?}");
    let mut buf = vec![0u8; 4096];
    let watch_start = Instant::now();
    while pings.get() < 3 {
        assert!(
            watch_start.elapsed() < Duration::from_secs(2),
            "watchdog pings: {}",
            pings.get()
        );
        let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
            .await
            .expect("a watchdog ping")
            .unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1\n");
        pings.set(pings.get() + 1);
    }

    d.signal("HUP");
    let reloading = next(&d).await;
    assert!(
        lines(&reloading).contains(&"RELOADING=1".to_owned()),
        "{reloading:?}"
    );
    assert!(
        lines(&reloading).iter().any(|l| l
            .strip_prefix("MONOTONIC_USEC=")
            .is_some_and(|v| v.parse::<u64>().is_ok())),
        "{reloading:?}"
    );
    let ready = next(&d).await;
    assert!(lines(&ready).contains(&"READY=1".to_owned()), "{ready:?}");

    d.signal("TERM");
    let stopping = next(&d).await;
    assert!(
        lines(&stopping).contains(&"STOPPING=1".to_owned()),
        "{stopping:?}"
    );
    let status = d.wait_exit(Duration::from_secs(5)).await.expect("exits");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_results_dir_is_counted_and_the_daemon_carries_on() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    // A directory under a regular file cannot be created, not even by root.
    let blocker = w.path("blocker");
    fs::write(&blocker, "a file, not a directory").unwrap();
    let results = blocker.join("results");
    let d = w
        .start(
            &r#"
server: {listen: "@LISTEN@"}
results: {dir: "@BLOCKED@"}
defaults: {concurrency: 1, total_requests: 1, schedule: {every: 1s}, run_on_start: true,
           timeout: 10s, body: @BODY@}
targets:
  - {name: ok, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
"#
            .replace("@BLOCKED@", &results.display().to_string()),
        )
        .await;
    let m = d
        .wait_for_metric(
            "streamprobe_result_write_failures_total",
            &[("target", "ok")],
            Duration::from_secs(8),
            |failures| failures.unwrap() >= 3.0,
        )
        .await;
    assert!(bursts_total(&m, "ok") >= 3.0);
    assert_eq!(
        m.get(
            "streamprobe_requests_total",
            &[("target", "ok"), ("outcome", "success")]
        ),
        Some(bursts_total(&m, "ok")),
        "the measurements still count"
    );
    let bursts = d.bursts("ok").await;
    assert!(bursts.iter().all(|b| b["file"].is_null()), "{bursts:?}");
    assert_eq!(d.get("/-/healthy").await.0, 200);
    assert_eq!(d.get("/").await.0, 200);
    assert!(d.log_text().contains("cannot write result file"));

    // When the directory becomes writable again, writing resumes without a restart.
    fs::remove_file(&blocker).unwrap();
    wait_for(
        "a result file after recovery",
        Duration::from_secs(8),
        async || result_files(&results, "ok"),
        |files| !files.is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_the_targets_without_overlap() {
    let mock = mock().await;
    let all: Vec<String> = (0..10).map(|i| format!("target-{i}")).collect();
    let mut template = String::from(
        "server: {listen: \"@LISTEN@\"}\nresults: {dir: \"@RESULTS@\"}\n\
         defaults: {timeout: 10s, body: @BODY@}\ntargets:\n",
    );
    for name in &all {
        template.push_str(&format!("  - {{name: {name}, url: \"@CHAT@\"}}\n"));
    }
    let mut seen = BTreeSet::new();
    let mut daemons = Vec::new();
    for index in 0..2u64 {
        let w = Workdir::new(&mock);
        w.write_config(&template);
        let d = w.spawn(&["--shard", &format!("{index}/2")], &[]).await;
        let owned = d.target_names().await;
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|n| streamprobe::schedule::fnv1a(n.as_bytes()) % 2 == index)
            .cloned()
            .collect();
        assert_eq!(owned, expected, "shard {index}/2");
        assert!(!owned.is_empty(), "a degenerate split proves nothing");
        assert!(seen.is_disjoint(&owned), "{seen:?} and {owned:?} overlap");
        seen.extend(owned);
        let m = d.metrics().await;
        for name in &all {
            assert_eq!(
                m.mentions_target(name),
                seen.contains(name) && expected.contains(name),
                "{name} on shard {index}"
            );
        }
        daemons.push((d, w)); // the daemon dies before its directory goes
    }
    assert_eq!(seen, all.iter().cloned().collect::<BTreeSet<_>>());

    let out = Command::new(BIN)
        .args(["serve", "-c", "/nonexistent.yaml", "--shard", "2/2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard"));
}

/// Targets on an hourly schedule whose first fire (spread over the hour by name) lies well
/// outside the test, so they never send a request.
fn idle_targets(n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("idle-{i}")).collect();
    for name in &names {
        let offset = streamprobe::schedule::spread_fraction(name) * 3600.0;
        assert!(offset > 120.0, "{name} would fire after {offset}s");
    }
    names
}

fn next_runs(targets: &Value) -> BTreeMap<String, Value> {
    targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["next_run"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_next_runs_and_never_overlaps_a_targets_bursts() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let mut template = String::from(
        "server: {listen: \"@LISTEN@\", enable_admin_api: true}\nresults: {dir: \"@RESULTS@\"}\n\
         defaults: {concurrency: 1, total_requests: 1, timeout: 10s, body: @BODY@,\n\
         \x20          schedule: {every: 1h}}\ntargets:\n\
         \x20 - {name: busy, run_on_start: true, url: \"@CHAT@?ttft=50ms&itl=100ms&tokens=15\"}\n",
    );
    let idle = idle_targets(12);
    for name in &idle {
        template.push_str(&format!("  - {{name: {name}, url: \"@CHAT@\"}}\n"));
    }
    let d = w.start(&template).await;
    wait_in_flight(&d, "busy", 1.0).await;
    let planned = next_runs(&d.json("/api/v1/targets").await);
    assert!(planned.values().all(Value::is_string), "{planned:?}");

    // busy's schedule changes, so its new scheduler fires at once (run_on_start) — while the
    // burst of the old one is still running. The idle targets keep their schedule.
    w.write_config(&template.replace(
        "name: busy, run_on_start: true,",
        "name: busy, run_on_start: true, schedule: {every: 2h},",
    ));
    for _ in 0..3 {
        let (status, body) = d.post("/-/reload").await;
        assert_eq!(status, 200, "{body}");
        for _ in 0..5 {
            let now = next_runs(&d.json("/api/v1/targets").await);
            for name in &idle {
                assert_eq!(
                    now[name], planned[name],
                    "{name}'s next run moved on reload"
                );
            }
            assert!(now["busy"].is_string(), "busy unscheduled: {now:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    d.wait_bursts(&["busy"], 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = d.metrics().await;
    assert_eq!(
        mock.stats().max_in_flight,
        1,
        "two bursts of one target overlapped"
    );
    assert_eq!(
        m.get("streamprobe_in_flight_requests", &[("target", "busy")]),
        Some(0.0)
    );
    assert!(
        m.get(
            "streamprobe_bursts_skipped_total",
            &[("target", "busy"), ("reason", "overlap")]
        )
        .unwrap()
            >= 1.0,
        "the tick that found the burst running is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_targets_running_burst_does_not_bring_its_series_back() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let v1 = r#"
server: {listen: "@LISTEN@", enable_admin_api: true}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 1, total_requests: 1, timeout: 10s, body: @BODY@}
targets:
  - {name: stay, url: "@CHAT@"}
  - {name: doomed, url: "@CHAT@?ttft=50ms&itl=100ms&tokens=8", schedule: {every: 1h},
     run_on_start: true}
"#;
    let d = w.start(v1).await;
    wait_in_flight(&d, "doomed", 1.0).await;
    w.write_config(&v1[..v1.find("  - {name: doomed").unwrap()]);
    let (status, body) = d.post("/-/reload").await;
    assert_eq!(status, 200, "{body}");
    assert!(!d.metrics().await.mentions_target("doomed"));
    // The running burst finishes and is written, but its series stay deleted.
    wait_for(
        "doomed's result file",
        Duration::from_secs(5),
        async || result_files(&w.results(), "doomed"),
        |files| !files.is_empty(),
    )
    .await;
    // The file is written after the burst's gauges were set: from here on the series must
    // be (or very soon be) gone for good.
    d.wait_for_metrics(
        "doomed's series deleted again",
        Duration::from_secs(2),
        |m| !m.mentions_target("doomed"),
    )
    .await;
    assert!(d.metrics().await.mentions_target("stay"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_the_new_results_settings() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let v1 = r#"
server: {listen: "@LISTEN@", enable_admin_api: true}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 1, total_requests: 1, timeout: 10s, body: @BODY@}
targets:
  - {name: t, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
"#;
    let d = w.start(v1).await;
    let moved = w.path("moved");
    w.write_config(&v1.replace("@RESULTS@", &moved.display().to_string()));
    let (status, body) = d.post("/-/reload").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = d.post("/api/v1/targets/t/trigger").await;
    assert_eq!(status, 202);
    d.wait_bursts(&["t"], 1, Duration::from_secs(5)).await;
    let files = result_files(&moved, "t");
    assert_eq!(files.len(), 1, "written to the new dir");
    assert!(
        result_files(&w.results(), "t").is_empty(),
        "written to the old dir"
    );
    // The API serves the file from the new directory.
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    let (status, body) = d.get(&format!("/api/v1/results/t/{name}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("schema_version"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_missed_while_the_process_was_stopped_are_counted_late() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@"}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 1, total_requests: 1, schedule: {every: 1s}, run_on_start: true,
           timeout: 10s, body: @BODY@}
targets:
  - {name: sleeper, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3"}
"#,
        )
        .await;
    d.wait_bursts(&["sleeper"], 1, Duration::from_secs(5)).await;
    d.signal("STOP");
    tokio::time::sleep(Duration::from_millis(3300)).await;
    d.signal("CONT");
    let late = |m: &Exposition| {
        m.get(
            "streamprobe_bursts_skipped_total",
            &[("target", "sleeper"), ("reason", "late")],
        )
        .unwrap()
    };
    let m = d
        .wait_for_metrics("late ticks counted", Duration::from_secs(3), |m| {
            late(m) > 0.0
        })
        .await;
    // Stopped for 3.3 s: the tick due during the stop fires on waking, the two or three
    // after it that also passed are counted, not fired in a rush.
    assert!((2.0..=3.0).contains(&late(&m)), "{}", late(&m));
    let bursts = bursts_total(&m, "sleeper");
    d.wait_for_metrics("bursts go on", Duration::from_secs(3), |m| {
        bursts_total(m, "sleeper") > bursts
    })
    .await;
    assert!(d.log_text().contains("schedule_lag_seconds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_caps_requests_across_targets() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@", max_in_flight: 2}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 3, total_requests: 6, schedule: {every: 1h}, run_on_start: true,
           timeout: 10s, body: @BODY@}
targets:
  - {name: a, url: "@CHAT@?ttft=100ms&itl=10ms&tokens=5"}
  - {name: b, url: "@CHAT@?ttft=100ms&itl=10ms&tokens=5"}
"#,
        )
        .await;
    d.wait_bursts(&["a", "b"], 1, Duration::from_secs(8)).await;
    assert_eq!(mock.stats().max_in_flight, 2, "server.max_in_flight holds");
    let m = d.metrics().await;
    for t in ["a", "b"] {
        assert_eq!(
            m.get(
                "streamprobe_requests_total",
                &[("target", t), ("outcome", "success")]
            ),
            Some(6.0)
        );
    }
    // Time spent waiting for the shared cap is recorded apart from the measurement.
    let waited: f64 = ["a", "b"]
        .iter()
        .flat_map(|t| result_files(&w.results(), t))
        .flat_map(|f| read_json(&f)["metrics"].as_array().unwrap().clone())
        .map(|r| r["client_wait"].as_f64().unwrap())
        .sum();
    assert!(waited > 0.1, "client_wait total {waited}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_targets_fire_on_their_schedule() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@"}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 1, total_requests: 1, timeout: 10s, body: @BODY@}
targets:
  - {name: c, url: "@CHAT@?ttft=10ms&itl=2ms&tokens=3",
     schedule: {cron: "* * * * * *", timezone: Europe/Berlin}}
"#,
        )
        .await;
    let targets = d.json("/api/v1/targets").await;
    let next = targets[0]["next_run"]
        .as_str()
        .expect("scheduled")
        .to_owned();
    let next = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    assert_eq!(next.timestamp_subsec_nanos(), 0, "{next}");
    d.wait_bursts(&["c"], 2, Duration::from_secs(5)).await;
    for b in d.bursts("c").await {
        let started =
            chrono::DateTime::parse_from_rfc3339(b["started_at"].as_str().unwrap()).unwrap();
        // Fired at (just after) a whole second.
        assert!(
            started.timestamp_subsec_millis() < 500,
            "started at {started}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_outcomes_in_one_burst_are_labelled_per_request() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    // One fault per CSV row: each burst of four gets one of each.
    fs::write(w.path("faults.csv"), "fault\nnone\n429\nerror-event\n500\n").unwrap();
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@", enable_admin_api: true}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 2, total_requests: 4, timeout: 10s, body: @BODY@}
targets:
  - {name: mixed, url: "@CHAT@?fault={{fault}}&ttft=20ms&itl=2ms&tokens=3",
     data_source: {type: csv, file: faults.csv}}
"#,
        )
        .await;
    for n in 1..=2 {
        assert_eq!(d.post("/api/v1/targets/mixed/trigger").await.0, 202);
        d.wait_bursts(&["mixed"], n, Duration::from_secs(5)).await;
    }
    let m = d.metrics().await;
    for outcome in ["success", "http_429", "stream_error", "http_5xx"] {
        assert_eq!(
            m.get(
                "streamprobe_requests_total",
                &[("target", "mixed"), ("outcome", outcome)]
            ),
            Some(2.0),
            "{outcome}\n{}",
            m.text
        );
    }
    assert_eq!(requests(&m, "mixed"), 8.0);
    assert_eq!(
        m.get(
            "streamprobe_bursts_total",
            &[("target", "mixed"), ("result", "partial")]
        ),
        Some(2.0)
    );
    assert_eq!(
        m.get(
            "streamprobe_time_to_first_token_seconds_count",
            &[("target", "mixed")]
        ),
        Some(2.0)
    );
    assert_eq!(result_files(&w.results(), "mixed").len(), 2);
    // Both bursts may start in the same second, and file names have second resolution: the
    // newest is the one the API lists last.
    let newest = d.bursts("mixed").await.last().unwrap()["file"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc = read_json(&w.results().join("mixed").join(newest));
    assert_eq!(
        doc["summary"]["outcomes"],
        serde_json::json!({"success": 1, "http_429": 1, "stream_error": 1, "http_5xx": 1})
    );
    let ratio = m
        .get(
            "streamprobe_last_burst_success_ratio",
            &[("target", "mixed")],
        )
        .unwrap();
    assert!(close(ratio, 0.25), "{ratio}");
    let p50 = m
        .get(
            "streamprobe_last_burst_ttft_seconds",
            &[("target", "mixed"), ("quantile", "0.5")],
        )
        .unwrap();
    assert!(close(p50, doc["summary"]["ttft"]["p50"].as_f64().unwrap()));
    assert!(p50 >= 0.020, "{p50}");
}

/// Hostile servers (an endless stream, a 20 MiB line, a byte at a time, a stall, a reset, a
/// hang) neither slow `/metrics` down nor grow the daemon's memory without bound, and each
/// ends as its own outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_leave_the_daemon_responsive_and_bounded() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let d = w
        .start(
            r#"
server: {listen: "@LISTEN@"}
results: {dir: "@RESULTS@"}
defaults: {concurrency: 2, total_requests: 2, schedule: {every: 1s}, run_on_start: true,
           timeout: 3s, first_token_timeout: 2s, idle_timeout: 1s, max_response_bytes: 2MiB,
           body: @BODY@}
targets:
  - {name: endless, url: "@CHAT@?fault=endless&itl=1ms"}
  - {name: oversized, url: "@CHAT@?fault=oversized"}
  - {name: trickle, url: "@CHAT@?fault=trickle&tokens=3"}
  - {name: stall, url: "@CHAT@?fault=stall"}
  - {name: reset, url: "@CHAT@?fault=reset"}
  - {name: hang, url: "@CHAT@?fault=hang"}
"#,
        )
        .await;
    let pid = d.pid();
    let rss_kb = || {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut slowest = Duration::ZERO;
    let mut peak_rss = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(7) {
        let t = Instant::now();
        let (status, _) = d.get("/metrics").await;
        assert_eq!(status, 200);
        slowest = slowest.max(t.elapsed());
        peak_rss = peak_rss.max(rss_kb());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a scrape took {slowest:?}"
    );
    assert!(peak_rss < 150 * 1024, "peak RSS {peak_rss} kB");
    let m = d.metrics().await;
    for (target, outcome) in [
        ("endless", "timeout_total"),
        ("oversized", "too_large"),
        ("trickle", "success"),
        ("stall", "timeout_idle"),
        ("reset", "truncated"),
        ("hang", "timeout_first_token"),
    ] {
        let n = m
            .get(
                "streamprobe_requests_total",
                &[("target", target), ("outcome", outcome)],
            )
            .unwrap_or(0.0);
        assert!(n >= 2.0, "{target}: {n} requests ended as {outcome}");
    }
}

/// Issue 10, item 12: a `protocol: sse` target without `extract` whose stream looks like a known
/// dialect (llama.cpp's `/completion` here) is warned about once in the log, not once per burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_stream_that_looks_like_a_dialect_is_warned_about_once() {
    let mock = mock().await;
    let w = Workdir::new(&mock);
    let llama = mock.url("/completion?ttft=5ms&itl=1ms&tokens=3");
    let d = w
        .start(&format!(
            r#"
server: {{listen: "@LISTEN@"}}
results: {{dir: "@RESULTS@"}}
targets:
  - {{name: llama, url: "{llama}", protocol: sse, concurrency: 1, total_requests: 1,
     schedule: {{every: 1s}}, run_on_start: true, timeout: 10s}}
"#
        ))
        .await;
    d.wait_bursts(&["llama"], 3, Duration::from_secs(10)).await;
    let log = d.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains("the first event looks like llama.cpp /completion JSON"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}
