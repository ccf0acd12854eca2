//! 100 reloads in about 10 s while bursts run, some of them invalid: the daemon never panics,
//! keeps serving, leaks neither file descriptors nor threads, and the last valid config wins.

use std::process::Command;
use std::time::Duration;

use streamprobe::mock::MockOptions;

mod common;
use common::daemon::Daemon;
use common::exposition::Exposition;
use common::{BIN, free_port, mock};

fn config(listen: u16, mock: u16, names: std::ops::RangeInclusive<u32>) -> String {
    let mut c = format!(
        "server: {{listen: \"127.0.0.1:{listen}\", enable_admin_api: true, shutdown_grace: 1s}}\n\
         results: {{dir: results, keep_per_target: 5}}\n\
         defaults: {{schedule: {{every: 500ms}}, run_on_start: true, concurrency: 2, total_requests: 4, \
         body: {{model: m, messages: [{{role: user, content: hi}}], stream: true}}}}\n\
         targets:\n"
    );
    for i in names {
        c.push_str(&format!(
            "  - {{name: t{i}, url: \"http://127.0.0.1:{mock}/v1/chat/completions?ttft=20ms&itl=5ms&tokens=10\"}}\n"
        ));
    }
    c
}

fn proc_count(pid: u32, what: &str) -> usize {
    match what {
        "fd" => std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
        _ => std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_storm_keeps_the_last_valid_config() {
    let server = mock(MockOptions::default()).await;
    let mock = server.local_addr().port();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let listen = free_port();
    let path = dir.join("storm.yaml");
    let a = config(listen, mock, 1..=5);
    let b = config(listen, mock, 3..=8);
    std::fs::write(&path, &a).unwrap();
    let mut serve = Command::new(BIN);
    serve.args(["serve", "-c"]).arg(&path).current_dir(dir);
    let d = Daemon::start(serve, listen).await;
    let pid = d.pid();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The first scrape starts the exposition's encoder thread: part of the baseline, not a leak.
    assert_eq!(d.get("/metrics").await.0, 200);
    let (fds_before, threads_before) = (proc_count(pid, "fd"), proc_count(pid, "threads"));

    for i in 0..100 {
        let text = match i % 10 {
            9 => "targets: [{name: broken, url: ftp://nope}]\n".to_owned(),
            n if n % 2 == 0 => a.clone(),
            _ => b.clone(),
        };
        std::fs::write(&path, text).unwrap();
        let (status, _) = d.post("/-/reload").await;
        assert_eq!(status, if i % 10 == 9 { 500 } else { 200 }, "reload {i}");
        tokio::time::sleep(Duration::from_millis(90)).await;
    }
    // The last reload (i = 99) was invalid; the one before it (i = 98, config a) wins.
    let (_, metrics) = d.get("/metrics").await;
    assert!(metrics.contains("streamprobe_config_last_reload_successful 0"));
    let (_, targets) = d.get("/api/v1/targets").await;
    let targets: serde_json::Value = serde_json::from_str(&targets).unwrap();
    let names: Vec<&str> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["t1", "t2", "t3", "t4", "t5"]);
    // A final valid reload to config b: removed targets' series go, kept ones stay.
    std::fs::write(&path, &b).unwrap();
    assert_eq!(d.post("/-/reload").await.0, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, metrics) = d.get("/metrics").await;
    assert!(metrics.contains("streamprobe_config_last_reload_successful 1"));
    assert!(
        !metrics.contains("target=\"t1\""),
        "removed target's series deleted"
    );
    assert!(!metrics.contains("target=\"broken\""));
    assert!(metrics.contains("streamprobe_requests_total{outcome=\"success\",target=\"t8\"}"));
    // Bursts kept running through the storm.
    let successes: f64 =
        Exposition::parse(&metrics).sum("streamprobe_requests_total", &[("outcome", "success")]);
    assert!(
        successes > 50.0,
        "{successes} successful requests during the storm"
    );
    // No leak: descriptors and threads come back near where they were. Result writes and
    // verdict rebuilds run on tokio's blocking pool, whose idle threads linger for 10 s before
    // they exit: a leak is what is still there after that.
    common::wait::wait_for(
        &format!("fds and threads back near {fds_before} and {threads_before}"),
        Duration::from_secs(15),
        async || (proc_count(pid, "fd"), proc_count(pid, "threads")),
        |(fds, threads)| *fds <= fds_before + 20 && *threads <= threads_before + 8,
    )
    .await;
    assert_eq!(d.get("/-/healthy").await.0, 200);
}
