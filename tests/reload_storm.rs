//! 100 reloads in about 10 s while bursts run, some of them invalid: the daemon never panics,
//! keeps serving, leaks neither file descriptors nor threads, and the last valid config wins.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use streamprobe::mock::{MockOptions, MockServer};

mod common;
use common::{BIN, Guard, free_port, http};

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
    let server = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())
        .await
        .unwrap();
    let mock = server.local_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let dir = dir_path.as_path();
        let listen = free_port();
        let path = dir.join("storm.yaml");
        let a = config(listen, mock, 1..=5);
        let b = config(listen, mock, 3..=8);
        std::fs::write(&path, &a).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "-c"])
            .arg(&path)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let _daemon = Guard(Some(child));
        let started = Instant::now();
        while http(listen, "GET", "/-/ready").0 != 200 {
            assert!(started.elapsed() < Duration::from_secs(10), "not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(700));
        let (fds_before, threads_before) = (proc_count(pid, "fd"), proc_count(pid, "threads"));

        for i in 0..100 {
            let text = match i % 10 {
                9 => "targets: [{name: broken, url: ftp://nope}]\n".to_owned(),
                n if n % 2 == 0 => a.clone(),
                _ => b.clone(),
            };
            std::fs::write(&path, text).unwrap();
            let (status, _) = http(listen, "POST", "/-/reload");
            assert_eq!(status, if i % 10 == 9 { 500 } else { 200 }, "reload {i}");
            std::thread::sleep(Duration::from_millis(90));
        }
        // The last reload (i = 99) was invalid; the one before it (i = 98, config a) wins.
        let (_, metrics) = http(listen, "GET", "/metrics");
        assert!(metrics.contains("streamprobe_config_last_reload_successful 0"));
        let (_, targets) = http(listen, "GET", "/api/v1/targets");
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
        assert_eq!(http(listen, "POST", "/-/reload").0, 200);
        std::thread::sleep(Duration::from_millis(1500));
        let (_, metrics) = http(listen, "GET", "/metrics");
        assert!(metrics.contains("streamprobe_config_last_reload_successful 1"));
        assert!(
            !metrics.contains("target=\"t1\""),
            "removed target's series deleted"
        );
        assert!(!metrics.contains("target=\"broken\""));
        assert!(metrics.contains("streamprobe_requests_total{outcome=\"success\",target=\"t8\"}"));
        // Bursts kept running through the storm.
        let successes: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("streamprobe_requests_total{outcome=\"success\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(
            successes > 50.0,
            "{successes} successful requests during the storm"
        );
        // No leak: descriptors and threads are back near where they were.
        let (fds_after, threads_after) = (proc_count(pid, "fd"), proc_count(pid, "threads"));
        assert!(
            fds_after <= fds_before + 20,
            "fds {fds_before} -> {fds_after}"
        );
        assert!(
            threads_after <= threads_before + 8,
            "threads {threads_before} -> {threads_after}"
        );
        assert_eq!(http(listen, "GET", "/-/healthy").0, 200);
    })
    .await
    .unwrap();
}
