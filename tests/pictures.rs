//! Pictures (DESIGN §12) as users get them: `run --html` and `compare --html` files written by
//! the binary against the in-process mock, and the daemon's pages (status, target, burst)
//! crawled from `/` over real HTTP: every link resolves, every HTML page carries the
//! Content-Security-Policy and refers to nothing outside the daemon, unknown names and ids get
//! 404 pages. Browser rendering is checked by the headless-Chromium script in CI.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use streamprobe::mock::{MockOptions, MockServer};

mod common;
use common::daemon::Daemon;
use common::{BIN, free_port};

async fn mock() -> MockServer {
    common::mock(MockOptions::default()).await
}

async fn streamprobe(args: &[&str], dir: &Path) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).current_dir(dir);
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("streamprobe finished in time")
        .expect("streamprobe ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value of `data-NAME` on the plot `kind`.
fn plot_attr(html: &str, kind: &str, name: &str) -> Option<u64> {
    let at = html.find(&format!("data-plot=\"{kind}\""))?;
    let rest = &html[at..html[at..].find('>')? + at];
    let key = format!("data-{name}=\"");
    let i = rest.find(&key)? + key.len();
    rest[i..i + rest[i..].find('"')?].parse().ok()
}

/// Nothing on the page loads from anywhere: no script, style sheet, image or frame, and every
/// link is site-relative or in-page.
fn assert_self_contained(html: &str, what: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in ["<script", "<link", "<img", "<iframe", "@import", " src="] {
        assert!(!lower.contains(bad), "{what}: {bad}");
    }
    for href in hrefs(html) {
        assert!(
            (href.starts_with('/') && !href.starts_with("//")) || href.starts_with('#'),
            "{what}: link outside itself: {href}"
        );
    }
    for (i, _) in lower.match_indices("url(") {
        assert!(lower[i..].starts_with("url(#"), "{what}: url( at {i}");
    }
}

fn hrefs(html: &str) -> Vec<String> {
    html.match_indices("href=\"")
        .filter_map(|(i, _)| {
            let rest = &html[i + 6..];
            Some(rest[..rest.find('"')?].replace("&amp;", "&"))
        })
        .collect()
}

#[tokio::test]
async fn run_html_draws_every_plot_of_the_burst() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/v1/chat/completions?ttft=30ms&itl=2ms&tokens=8");
    let out = streamprobe(
        &[
            "run",
            "-u",
            &url,
            "-n",
            "24",
            "-p",
            "4",
            "--no-progress",
            "--html",
            "report.html",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("HTML report: report.html"));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_self_contained(&html, "run --html");
    for kind in ["waterfall", "ttft-cdf", "itl-hist", "tokens-per-second"] {
        assert_eq!(
            html.matches(&format!("<svg class=\"plot\" data-plot=\"{kind}\""))
                .count(),
            1,
            "{kind}"
        );
    }
    assert_eq!(plot_attr(&html, "waterfall", "requests"), Some(24));
    assert_eq!(plot_attr(&html, "waterfall", "rows"), Some(24));
    assert_eq!(html.matches("<g class=\"wf-row\">").count(), 24);
    assert_eq!(plot_attr(&html, "ttft-cdf", "samples"), Some(24));
    // `run` has every gap: 7 per request of 8 tokens.
    assert_eq!(plot_attr(&html, "itl-hist", "samples"), Some(24 * 7));
    assert_eq!(plot_attr(&html, "tokens-per-second", "points"), Some(24));
    // The result file is written as before, beside the page.
    assert!(dir.path().join("test_results.json").is_file());
}

#[tokio::test]
async fn run_html_of_a_thousand_requests_thins_the_waterfall_and_stays_under_2_mb() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/v1/chat/completions?ttft=2ms&itl=1ms&tokens=5");
    let out = streamprobe(
        &[
            "run",
            "-u",
            &url,
            "-n",
            "1000",
            "-p",
            "50",
            "--no-progress",
            "--html",
            "big.html",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(dir.path().join("big.html")).unwrap();
    eprintln!("run --html of 1,000 requests: {} bytes", html.len());
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
    assert_eq!(plot_attr(&html, "waterfall", "requests"), Some(1000));
    assert_eq!(plot_attr(&html, "waterfall", "rows"), Some(200));
    assert_eq!(html.matches("<g class=\"wf-row\">").count(), 200);
    assert!(html.contains("each row is a group of 5 consecutive requests"));
}

#[tokio::test]
async fn run_html_with_several_targets_writes_one_page_each_and_refuses_two_stdouts() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "targets:\n  - name: a\n    url: {u}\n  - name: b\n    url: {u}\n",
        u = server.url("/v1/chat/completions?ttft=5ms&itl=1ms&tokens=3")
    );
    std::fs::write(dir.path().join("t.yaml"), config).unwrap();
    let out = streamprobe(
        &[
            "run",
            "-c",
            "t.yaml",
            "-n",
            "3",
            "--no-progress",
            "--html",
            "r.html",
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for t in ["a", "b"] {
        let html = std::fs::read_to_string(dir.path().join(format!("r.{t}.html"))).unwrap();
        assert!(html.contains(&format!("<h1>{t} — burst ")), "{t}");
    }
    let out = streamprobe(
        &["run", "-c", "t.yaml", "-t", "a", "-o", "-", "--html", "-"],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: -o and --html both name standard output; give one of them a file name"
    );
}

#[tokio::test]
async fn compare_html_draws_both_cdfs_per_metric() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, ttft) in [("before.json", "20ms"), ("after.json", "60ms")] {
        let url = server.url(&format!(
            "/v1/chat/completions?ttft={ttft}&itl=1ms&tokens=4&jitter=0.1"
        ));
        let out = streamprobe(
            &[
                "run",
                "-u",
                &url,
                "-n",
                "40",
                "-p",
                "8",
                "--no-progress",
                "-o",
                name,
            ],
            dir.path(),
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let out = streamprobe(
        &[
            "compare",
            "before.json",
            "after.json",
            "--metric",
            "ttft,duration,errors",
            "--html",
            "compare.html",
        ],
        dir.path(),
    )
    .await;
    // TTFT tripled: the gate fails, and the text report still goes to stdout.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ttft:p50*"));
    let html = std::fs::read_to_string(dir.path().join("compare.html")).unwrap();
    assert_self_contained(&html, "compare --html");
    assert_eq!(html.matches("data-plot=\"compare-cdf\"").count(), 2);
    assert_eq!(plot_attr(&html, "compare-cdf", "baseline"), Some(40));
    assert!(html.contains("data-metric=\"ttft\""));
    assert!(html.contains("data-metric=\"duration\""));
    assert!(html.contains("▲ regressed"));
}

const CONFIG: &str = r#"
server:
  listen: "@LISTEN@"
results:
  dir: "@RESULTS@"
defaults:
  method: POST
  protocol: openai
  schedule: {every: 1h}
  run_on_start: true
  concurrency: 3
  total_requests: 6
  body: {model: m, messages: [{role: user, content: hi}], stream: true, stream_options: {include_usage: true}}
targets:
  - name: fast
    url: "@URL@?ttft=20ms&itl=2ms&tokens=5"
  - name: failing
    url: "@URL@?ttft=20ms&itl=2ms&tokens=5&fault=500"
"#;

#[tokio::test]
async fn the_daemon_pages_link_only_to_pages_that_exist() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let yaml = CONFIG
        .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
        .replace(
            "@RESULTS@",
            &dir.path().join("results").display().to_string(),
        )
        .replace("@URL@", &server.url("/v1/chat/completions"));
    let config = dir.path().join("streamprobe.yaml");
    std::fs::write(&config, yaml).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg("-c")
        .arg(&config)
        .env_remove("NOTIFY_SOCKET");
    let daemon = Daemon::start(cmd, port).await;
    daemon
        .wait_bursts(&["fast", "failing"], 1, Duration::from_secs(30))
        .await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let get = async |path: &str| {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    };

    // Crawl: every link of every HTML page, breadth first from the status page.
    let mut seen = BTreeSet::from(["/".to_owned()]);
    let mut queue = VecDeque::from(["/".to_owned()]);
    let mut pages = Vec::new();
    while let Some(path) = queue.pop_front() {
        let (status, headers, body) = get(&path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        let html = headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html");
        if !html {
            continue;
        }
        assert_eq!(
            headers["content-security-policy"],
            streamprobe::output::html::CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_self_contained(&body, &path);
        for href in hrefs(&body) {
            if seen.insert(href.clone()) {
                queue.push_back(href);
            }
        }
        pages.push((path, body));
    }
    let find = |prefix: &str| {
        pages
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(p, b)| (p.as_str(), b.as_str()))
            .collect::<Vec<_>>()
    };
    // Reached from `/`: both target pages, a burst page of each, and their JSON files.
    let fast = find("/targets/fast");
    assert!(fast.iter().any(|(p, _)| *p == "/targets/fast"), "{seen:?}");
    let (_, target) = fast.iter().find(|(p, _)| *p == "/targets/fast").unwrap();
    assert_eq!(plot_attr(target, "trend", "points"), Some(1));
    let (_, burst) = fast
        .iter()
        .find(|(p, _)| p.starts_with("/targets/fast/bursts/"))
        .expect("a burst page of fast");
    assert_eq!(plot_attr(burst, "waterfall", "requests"), Some(6));
    assert_eq!(burst.matches("<g class=\"wf-row\">").count(), 6);
    let (_, failing) = find("/targets/failing/bursts/")
        .into_iter()
        .next()
        .expect("a burst page of failing");
    // Each failed request's row says its outcome on hover.
    assert_eq!(failing.matches("http_5xx (HTTP 500)").count(), 6);
    assert!(seen.iter().any(|p| p.starts_with("/api/v1/results/fast/")));

    // Unknown names and ids are 404 pages; nothing outside the results is reachable.
    for path in [
        "/targets/nope",
        "/targets/nope/bursts/0123456789ab",
        "/targets/fast/bursts/0123456789ab",
        "/targets/fast/bursts/..%2F..%2Fstreamprobe.yaml",
        "/targets/fast/bursts/20261127T101500Z-x.json",
        "/targets/..%2Fresults/bursts/x",
    ] {
        let (status, headers, body) = get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        if status == 404 && body.starts_with("<!doctype html>") {
            assert!(headers.contains_key("content-security-policy"), "{path}");
            assert!(body.contains("<a href=\"/\">status</a>"), "{path}");
        }
    }
    let (_, _, body) = get("/targets/nope").await;
    assert!(body.contains("No target named &quot;nope&quot;."), "{body}");
    drop(server);
}
