//! `streamprobe serve` as a child process, observed only the way an operator observes it:
//! its HTTP endpoints, its exit status, its signals, its log. Killed on drop, so a failed test
//! leaves no process behind; its log is printed when a test fails while it runs.
//!
//! Does not: write configs or choose flags (each test builds its own command), or start mocks.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::exposition::Exposition;
use super::http::http;
use super::wait::{poll_until, wait_for};

/// A running daemon; killed on drop.
pub struct Daemon {
    child: Child,
    pub port: u16,
    /// Holds `stdout` and `log` (stderr), apart from the test's own files.
    output: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", self.log_text());
        }
    }
}

impl Daemon {
    /// Spawns `command` (a `serve` listening on 127.0.0.1:`port`) with stdout and stderr going
    /// to files, and waits until `/-/ready` answers 200: 10 s at most, failing at once with the
    /// log when the process exits first.
    pub async fn start(mut command: Command, port: u16) -> Daemon {
        let output = tempfile::tempdir().expect("temp dir for the daemon's output");
        let file = |name: &str| fs::File::create(output.path().join(name)).expect(name);
        let child = command
            .stdin(Stdio::null())
            .stdout(file("stdout"))
            .stderr(file("log"))
            .spawn()
            .expect("spawn streamprobe serve");
        let mut daemon = Daemon {
            child,
            port,
            output,
        };
        wait_for(
            "the daemon to be ready",
            Duration::from_secs(10),
            async || {
                if let Some(status) = daemon.child.try_wait().expect("try_wait") {
                    panic!("daemon exited early ({status}):\n{}", daemon.log_text());
                }
                // The status, or none while nothing answers yet.
                http(port, "GET", "/-/ready")
                    .await
                    .ok()
                    .map(|(status, _)| status)
            },
            |status| *status == Some(200),
        )
        .await;
        daemon
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon wrote to stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.output.path().join("log")).unwrap_or_default()
    }

    /// What the daemon wrote to stdout so far.
    pub fn stdout_text(&self) -> String {
        fs::read_to_string(self.output.path().join("stdout")).unwrap_or_default()
    }

    /// Sends the signal `name` (`TERM`, `HUP`, `STOP`, …) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `timeout`; `None` when it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let exited = poll_until(
            timeout,
            async || self.child.try_wait().expect("try_wait"),
            Option::is_some,
        )
        .await;
        exited.ok().flatten()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log_text()))
    }

    pub async fn post(&self, path: &str) -> (u16, String) {
        http(self.port, "POST", path)
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log_text()))
    }

    pub async fn metrics(&self) -> Exposition {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        Exposition::parse(&body)
    }

    pub async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    pub async fn target_names(&self) -> BTreeSet<String> {
        let targets = self.json("/api/v1/targets").await;
        targets
            .as_array()
            .expect("targets array")
            .iter()
            .map(|t| t["name"].as_str().expect("name").to_owned())
            .collect()
    }

    pub async fn bursts(&self, target: &str) -> Vec<Value> {
        let v = self.json(&format!("/api/v1/targets/{target}/bursts")).await;
        v.as_array().expect("bursts array").clone()
    }

    /// Scrapes `/metrics` until `done` holds for the page, and returns that page.
    pub async fn wait_for_metrics(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Exposition) -> bool,
    ) -> Exposition {
        wait_for(what, timeout, async || self.metrics().await, done).await
    }

    /// Scrapes `/metrics` until `done` holds for the value of the one series `name` carrying
    /// `labels` (`None` while it is absent), and returns that page.
    pub async fn wait_for_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        timeout: Duration,
        done: impl Fn(Option<f64>) -> bool,
    ) -> Exposition {
        let what = format!("{name}{labels:?}");
        let seen = wait_for(
            &what,
            timeout,
            async || {
                let page = self.metrics().await;
                Sample {
                    value: page.get(name, labels),
                    page,
                }
            },
            |s| done(s.value),
        )
        .await;
        seen.page
    }

    /// Polls the API until every target in `targets` lists at least `n` bursts.
    pub async fn wait_bursts(&self, targets: &[&str], n: usize, within: Duration) {
        wait_for(
            &format!("{n} bursts on each of {targets:?}"),
            within,
            async || {
                let mut counts = Vec::new();
                for t in targets {
                    counts.push((*t, self.bursts(t).await.len()));
                }
                counts
            },
            |counts| counts.iter().all(|(_, c)| *c >= n),
        )
        .await;
    }
}

/// One series' value and the page it came from; a timed-out wait shows only the value.
struct Sample {
    value: Option<f64>,
    page: Exposition,
}

impl fmt::Debug for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.value)
    }
}
