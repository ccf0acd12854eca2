//! The `streamprobe` binary as users run it: `run` against the in-process mock (report,
//! result file valid against the shipped schema, exit codes, secrets never shown), `check`.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use streamprobe::mock::MockServer;

mod common;
use common::{BIN, timing};

async fn mock() -> MockServer {
    common::mock(timing(30, 2, 8)).await
}

async fn streamprobe(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("STREAMPROBE_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("streamprobe finished in time")
        .expect("streamprobe ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn validate_against_schema(document: &serde_json::Value) {
    let schema_path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/result.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_a_url_prints_the_report_and_writes_a_valid_result_file() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/v1/chat/completions");
    let out = streamprobe(&["run", "-u", &url, "-n", "20", "-p", "5"], dir.path(), &[]).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for section in [
        "Overall",
        "Time to first token",
        "Total time",
        "Generation rate",
    ] {
        assert!(
            stdout.contains(section),
            "report lacks {section}:\n{stdout}"
        );
    }
    // Not a terminal: one line per request on stderr, in the old script's shape.
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with('[')).count(),
        20,
        "{stderr}"
    );
    assert!(stderr.contains("] ttft "), "{stderr}");

    let file = std::fs::read_to_string(dir.path().join("test_results.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&file).unwrap();
    validate_against_schema(&doc);
    assert_eq!(doc["summary"]["success_count"], 20);
    assert_eq!(doc["summary"]["ttft"]["count"], 20);
    assert_eq!(doc["metrics"].as_array().unwrap().len(), 20);
    assert_eq!(doc["config"]["protocol"], "openai");
    assert!(doc["summary"]["ttft"]["p50"].as_f64().unwrap() >= 0.030);
    // `-u` alone against an OpenAI path sends a default streaming chat body.
    let truth = server.truths();
    let body: serde_json::Value = serde_json::from_slice(&truth[0].request_body).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["messages"][0]["role"], "user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_the_server_but_never_the_output() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "sk-cli-9f8e7d6c5b4a-never-print";
    let config = format!(
        r#"targets:
  - name: secretive
    url: "{}"
    headers: {{Authorization: "Bearer ${{SP_CLI_TEST_KEY}}"}}
    body: {{model: m, messages: [{{role: user, content: hi}}], stream: true}}
    total_requests: 3
    concurrency: 1
"#,
        server.url("/v1/chat/completions")
    );
    std::fs::write(dir.path().join("c.yaml"), config).unwrap();
    let out = streamprobe(
        &["run", "-c", "c.yaml", "--save-text", "-v"],
        dir.path(),
        &[("SP_CLI_TEST_KEY", secret)],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let file = std::fs::read_to_string(dir.path().join("test_results.json")).unwrap();
    for (what, haystack) in [
        ("stdout", text(&out.stdout)),
        ("stderr", text(&out.stderr)),
        ("result file", file.clone()),
    ] {
        assert!(!haystack.contains(secret), "secret leaked into {what}");
    }
    let doc: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(doc["config"]["headers"]["Authorization"], "<redacted>");
    assert!(doc["metrics"][0]["output_text"].as_str().unwrap().len() > 1);
    let sent = server.truths()[0]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(sent.as_deref(), Some(format!("Bearer {secret}").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_requests_exit_1_and_config_errors_exit_2() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/v1/chat/completions?fault=500");
    let out = streamprobe(
        &["run", "-u", &url, "-n", "3", "-p", "1", "--no-progress"],
        dir.path(),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("http_5xx"),
        "failures by outcome in the report:\n{stdout}"
    );
    assert!(
        text(&out.stderr).trim().is_empty(),
        "--no-progress is silent"
    );

    std::fs::write(
        dir.path().join("bad.yaml"),
        "targets:\n  - name: x\n    url: http://127.0.0.1:9/\n    method: GET\n    concurrency: 0\n",
    )
    .unwrap();
    let out = streamprobe(&["run", "-c", "bad.yaml"], dir.path(), &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: bad.yaml: targets[0].concurrency: must be between 1 and 10000, got 0"
        ),
        "{stderr}"
    );
    let out = streamprobe(&["check", "-c", "bad.yaml"], dir.path(), &[]).await;
    assert_eq!(out.status.code(), Some(2));

    let out = streamprobe(&["run"], dir.path(), &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("-c FILE"));
    let out = streamprobe(&["run", "-u", &url, "-p", "0"], dir.path(), &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `TOKIO_WORKER_THREADS` (tokio's own variable) sets the worker count of any command; a value
/// that is not a positive count is a clear error before anything runs, not a panic in tokio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_count_comes_from_tokios_variable_and_a_bad_one_is_a_clear_error() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/v1/chat/completions");
    let args = ["run", "-u", &url, "-n", "2", "-p", "2", "--no-progress"];
    for good in ["1", "3"] {
        let out = streamprobe(&args, dir.path(), &[("TOKIO_WORKER_THREADS", good)]).await;
        assert_eq!(out.status.code(), Some(0), "{good}: {}", text(&out.stderr));
    }
    let out = streamprobe(&args, dir.path(), &[("TOKIO_WORKER_THREADS", "two")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: cannot start the async runtime: TOKIO_WORKER_THREADS=\"two\": expected a \
         positive number of threads"
    );
    assert!(text(&out.stdout).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_script_config_runs_with_flag_overrides() {
    let server = mock().await;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let legacy = repo.join("config/legacy-example.json");
    let url = server.url("/v1/chat/completions");
    let out = streamprobe(
        &[
            "run",
            "-c",
            legacy.to_str().unwrap(),
            "-u",
            &url,
            "-n",
            "6",
            "-p",
            "2",
            "-o",
            "old.json",
        ],
        dir.path(),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("old.json")).unwrap())
            .unwrap();
    assert_eq!(doc["config"]["concurrency"], 2);
    assert_eq!(doc["config"]["total_requests"], 6);
    // The old keys stay where they were.
    for key in [
        "request_id",
        "ttft",
        "total_time",
        "total_tokens",
        "tokens_per_second",
        "error",
    ] {
        assert!(doc["metrics"][0].get(key).is_some(), "metrics[0].{key}");
    }
    // Each request carries its CSV row, in order, cycling.
    let mut reader = csv::Reader::from_path(repo.join("config/prompts.csv")).unwrap();
    let rows: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
    // Two in flight may arrive in either order, so compare the multisets.
    let mut sent: Vec<String> = server
        .truths()
        .iter()
        .map(|t| {
            let body: serde_json::Value = serde_json::from_slice(&t.request_body).unwrap();
            body["messages"][0]["content"].as_str().unwrap().to_owned()
        })
        .collect();
    let mut expected: Vec<String> = (0..6).map(|n| rows[n % rows.len()].clone()).collect();
    sent.sort();
    expected.sort();
    assert_eq!(sent, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_targets_and_next_fires() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = streamprobe(&["check", "-c", "config/demo.yaml"], repo, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for name in ["mock-fast", "mock-medium", "mock-slow"] {
        assert!(stdout.contains(name), "{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_the_web_config_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        "server: {web_config: web.yml}\ntargets:\n  - {name: x, url: \"http://127.0.0.1:9/\", method: GET}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        "basic_auth_users: {prometheus: not-a-bcrypt-hash}\n",
    )
    .unwrap();
    let out = streamprobe(&["check", "-c", "c.yaml"], dir.path(), &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("web.yml") && stderr.contains("basic_auth_users"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-a-bcrypt-hash"),
        "the value is never echoed"
    );
}

/// Issue 10, items 4, 7 and 14: `-u` alone on the Responses route POSTs its default body;
/// a data query parameter (`tokens=3`) is shown as written, in the report and the result file;
/// an open-loop run reports its rate. A URL with no default body is a usage error naming -d.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_u_on_responses_with_a_rate_reports_what_it_did() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/v1/responses?tokens=3");
    let out = streamprobe(
        &[
            "run",
            "-u",
            &url,
            "-n",
            "3",
            "-p",
            "2",
            "--rate",
            "50/s",
            "--no-progress",
        ],
        dir.path(),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("/v1/responses?tokens=3\n"), "{stdout}");
    assert!(
        stdout.contains(
            "Load:                 open loop, Poisson arrivals at 50/s, up to 2 in flight"
        ),
        "{stdout}"
    );
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("test_results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(doc["config"]["method"], "POST");
    assert!(
        doc["config"]["url"]
            .as_str()
            .unwrap()
            .ends_with("?tokens=3")
    );
    assert!(server.truths().iter().all(|t| t.method == "POST"));

    let out = streamprobe(
        &["run", "-u", &server.url("/events"), "-n", "1"],
        dir.path(),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("-d BODY") && stderr.contains("-X GET"),
        "{stderr}"
    );
}

/// Issue 10, item 14: `run --help` names every protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_help_lists_every_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let out = streamprobe(&["run", "--help"], dir.path(), &[]).await;
    let help = text(&out.stdout);
    let section = help
        .split("--protocol <P>")
        .nth(1)
        .and_then(|s| s.split("\n  -").next())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for p in streamprobe::config::Protocol::ALL {
        let name = p.as_str();
        assert!(
            section.contains(&format!(" {name},")) || section.contains(&format!(" {name} ")),
            "{name} missing from: {section}"
        );
    }
    assert!(!section.contains("..."), "{section}");
}

/// The environment for `check` as an operator's shell has it: none of the shipped configs'
/// secrets, no `$CREDENTIALS_DIRECTORY`.
async fn check_without_secrets(args: &[&str]) -> Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .current_dir(repo)
        .env_remove("STREAMPROBE_LOG");
    for var in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "DIFY_API_KEY",
        "PROXY_PASSWORD",
        "CREDENTIALS_DIRECTORY",
    ] {
        cmd.env_remove(var);
    }
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("streamprobe finished in time")
        .expect("streamprobe ran")
}

/// Issue 10, item 9: every shipped config passes `check` from a shell without its secrets:
/// exit 0, each missing secret a marked warning saying how to provide it; `--strict` turns
/// them into exit 2; `run` and `serve` still refuse to start without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_shipped_configs_without_secrets_and_strict_fails() {
    let files = [
        "systemd/streamprobe.yaml",
        "config/streamprobe.yaml",
        "config/demo.yaml",
        "config/legacy-example.json",
        "config/examples/anthropic.yaml",
        "config/examples/dify.yaml",
        "config/examples/gemini.yaml",
        "config/examples/llamacpp.yaml",
        "config/examples/ollama.yaml",
        "config/examples/openai.yaml",
        "config/examples/private-tls.yaml",
        "config/examples/tgi.yaml",
    ];
    for file in files {
        let out = check_without_secrets(&["check", "-c", file]).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{file}: {stderr}");
        assert!(text(&out.stdout).contains(": ok, "), "{file}");
        for line in stderr.lines() {
            assert!(line.starts_with("warning: "), "{file}: {line}");
        }
    }
    let out = check_without_secrets(&["check", "-c", "systemd/streamprobe.yaml"]).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "CREDENTIALS_DIRECTORY=/etc/streamprobe/credentials streamprobe check -c systemd/streamprobe.yaml"
        ),
        "{stderr}"
    );
    let out =
        check_without_secrets(&["check", "--strict", "-c", "config/examples/openai.yaml"]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning: config/examples/openai.yaml: targets[0].headers.Authorization: ${OPENAI_API_KEY} is not set"), "{stderr}");
    assert!(
        stderr
            .contains("error: config/examples/openai.yaml: 1 warning (listed above) with --strict"),
        "{stderr}"
    );

    for command in ["run", "serve"] {
        let out = check_without_secrets(&[command, "-c", "config/examples/openai.yaml"]).await;
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(
            text(&out.stderr).contains("${OPENAI_API_KEY} is not set"),
            "{command}: {}",
            text(&out.stderr)
        );
    }
}

/// Issue 10, item 12: reading llama.cpp's `/completion` as plain `sse` counts every event as a
/// token; the report says so and names the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_warns_when_a_generic_stream_looks_like_a_dialect() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/completion");
    let out = streamprobe(
        &[
            "run",
            "-u",
            &url,
            "--protocol",
            "sse",
            "-n",
            "2",
            "-p",
            "1",
            "--no-progress",
        ],
        dir.path(),
        &[],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("  Warning:              protocol sse without extract counted every event as one output token and stored its raw data as text, but the first event looks like llama.cpp /completion JSON; set extract: {text: /content, output_tokens: /tokens_predicted, done: /stop, error: /error, model: /model, input_tokens: /tokens_evaluated, cached_input_tokens: /timings/cache_n}, or protocol: auto\n"),
        "{stdout}"
    );
}

/// Starts `streamprobe ARGS` in `dir` with stdout and stderr captured; the caller signals it.
fn spawn(args: &[&str], dir: &Path) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("STREAMPROBE_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("streamprobe starts")
}

fn interrupt(child: &tokio::process::Child) {
    let pid = child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT {pid}");
}

/// Waits for `child` to exit (10 s at most) and collects what it wrote.
async fn finish(child: tokio::process::Child) -> Output {
    tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("exited within 10 s of the interrupt")
        .expect("wait for streamprobe")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_run_reports_and_writes_what_was_measured_and_exits_130() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    // Each request streams for about 3.3 s: all four in flight are cut short.
    let url = server.url("/v1/chat/completions?ttft=300ms&itl=100ms&tokens=30");
    let child = spawn(
        &["run", "-u", &url, "-n", "40", "-p", "4", "-o", "x.json"],
        dir.path(),
    );
    // All four in flight and a few tokens into their streams, as the mock sees it.
    common::wait::wait_for(
        "four streams with at least 6 tokens sent",
        Duration::from_secs(20),
        async || {
            server
                .truths()
                .iter()
                .map(|t| t.tokens_sent)
                .collect::<Vec<_>>()
        },
        |sent| sent.len() == 4 && sent.iter().all(|n| *n >= 6),
    )
    .await;
    let sent = std::time::Instant::now();
    interrupt(&child);
    let out = finish(child).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "cut short at once, not after the streams: {:?}",
        sent.elapsed()
    );
    assert!(stdout.contains("streamprobe report"), "{stdout}");
    // Read first, so that a report that disagrees shows what was measured beside it.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("x.json")).unwrap()).unwrap();
    assert!(
        stdout.contains("Interrupted:          4 (100.0%)"),
        "{stdout}\n{stderr}\nresult file summary: {}\noutcomes: {:?}",
        doc["summary"],
        doc["metrics"]
            .as_array()
            .map(|m| m.iter().map(|r| r["outcome"].clone()).collect::<Vec<_>>())
    );
    assert!(stderr.contains("] INTERRUPTED ttft "), "{stderr}");

    validate_against_schema(&doc);
    assert_eq!(doc["interrupted"], true);
    assert_eq!(doc["summary"]["outcomes"]["interrupted"], 4);
    assert_eq!(doc["summary"]["failed_count"], 0);
    let requests = doc["metrics"].as_array().unwrap();
    // Only the four in flight: nothing started after the interrupt.
    assert_eq!(requests.len(), 4, "{requests:#?}");
    for r in requests {
        assert_eq!(r["outcome"], "interrupted");
        let headers = r["time_to_headers"].as_f64().unwrap();
        let ttft = r["ttft"].as_f64().unwrap();
        let so_far = r["total_time"].as_f64().unwrap();
        assert!(headers <= ttft && ttft >= 0.3 && ttft < so_far, "{r}");
        assert!((0.8..3.3).contains(&so_far), "{r}");
        assert!(r["total_tokens"].as_u64().unwrap() >= 3, "{r}");
        assert!(r["chunks"].as_u64().unwrap() >= 3, "{r}");
        assert!(r["bytes"].as_u64().unwrap() > 0, "{r}");
    }
    assert_eq!(server.truths().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_exits_at_once() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    // A FIFO nobody reads: writing the result after the first Ctrl-C waits for a reader.
    let fifo = dir.path().join("out.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let url = server.url("/v1/chat/completions?ttft=2s");
    let child = spawn(
        &["run", "-u", &url, "-n", "2", "-p", "2", "-o", "out.fifo"],
        dir.path(),
    );
    // Both requests reached the mock: the handler is installed (before any request starts).
    common::wait::wait_for(
        "both requests at the mock",
        Duration::from_secs(20),
        async || server.stats().requests,
        |n| *n == 2,
    )
    .await;
    interrupt(&child);
    // The cancelled requests hung up; the run now waits for the FIFO's reader, which never
    // comes.
    common::wait::wait_for(
        "the cancelled streams to end",
        Duration::from_secs(5),
        async || server.stats().in_flight,
        |n| *n == 0,
    )
    .await;
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting for the FIFO's reader"
    );
    let sent = std::time::Instant::now();
    interrupt(&child);
    let out = finish(child).await;
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_o_dash_writes_the_document_to_stdout_and_the_report_to_stderr() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/v1/chat/completions");
    for output in ["-", "/dev/stdout"] {
        let out = streamprobe(
            &["run", "-u", &url, "-n", "3", "-p", "1", "-o", output],
            dir.path(),
            &[],
        )
        .await;
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("-o {output}: stdout is not one JSON document: {e}\n{stdout}")
        });
        validate_against_schema(&doc);
        assert_eq!(doc["summary"]["success_count"], 3);
        assert!(stderr.contains("streamprobe report"), "{stderr}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file written"
    );

    // Several targets cannot share stdout.
    std::fs::write(
        dir.path().join("two.yaml"),
        format!("targets:\n  - {{name: a, url: \"{url}\"}}\n  - {{name: b, url: \"{url}\"}}\n"),
    )
    .unwrap();
    let out = streamprobe(&["run", "-c", "two.yaml", "-o", "-"], dir.path(), &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error: -o -: 2 targets would write 2 documents to standard output; select one with -t NAME or give a file name"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_o_writes_through_a_symlink_and_into_a_fifo() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/v1/chat/completions");
    std::fs::create_dir(dir.path().join("keep")).unwrap();
    std::fs::write(dir.path().join("keep/r.json"), "old").unwrap();
    std::os::unix::fs::symlink("keep/r.json", dir.path().join("link.json")).unwrap();
    let out = streamprobe(
        &["run", "-u", &url, "-n", "2", "-o", "link.json"],
        dir.path(),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let link = std::fs::symlink_metadata(dir.path().join("link.json")).unwrap();
    assert!(link.file_type().is_symlink(), "the link stays a link");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("keep/r.json")).unwrap())
            .unwrap();
    assert_eq!(doc["summary"]["success_count"], 2);

    let fifo = dir.path().join("out.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo).unwrap());
    let out = streamprobe(
        &["run", "-u", &url, "-n", "2", "-o", "out.fifo"],
        dir.path(),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&reader.await.unwrap()).unwrap();
    assert_eq!(doc["summary"]["success_count"], 2);
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::symlink_metadata(dir.path().join("out.fifo")).unwrap();
    assert!(meta.file_type().is_fifo(), "the FIFO stays a FIFO");
}

/// `demo` after `cargo install`: no checkout, started in an empty directory. It runs on its
/// built-in config, says where results go (there, absolute) and how often bursts fire, and
/// writes them there. It binds the demo's fixed ports, 18080 and 10061.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_from_any_directory_on_its_built_in_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("demo")
        .current_dir(dir.path())
        .env_remove("STREAMPROBE_LOG");
    let mut demo = common::daemon::Daemon::start(cmd, 10061).await;
    let results = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("streamprobe-results");
    let banner = demo.stdout_text();
    assert!(
        banner.contains(&format!("  result files: {}\n", results.display())),
        "{banner}"
    );
    assert!(
        banner.contains("  bursts every 15s, jitter 2s; Ctrl-C to stop\n"),
        "{banner}"
    );
    // `run_on_start`: the first bursts start at once and land in the working directory.
    common::wait::wait_for(
        "a result file of mock-fast in the working directory",
        Duration::from_secs(30),
        async || {
            // Not the writer's `.<name>.<random>.tmp`, which is there before the rename.
            std::fs::read_dir(results.join("mock-fast"))
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                        .count()
                })
                .unwrap_or(0)
        },
        |n| *n >= 1,
    )
    .await;
    // The banner's first URL is a target page that shows the burst just written.
    let url = banner
        .lines()
        .find_map(|l| l.strip_prefix("  look first:   "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no target page in the banner: {banner}"));
    let path = url.strip_prefix("http://127.0.0.1:10061").expect(url);
    assert_eq!(path, "/targets/mock-fast");
    // The status board takes the burst once its file is written, a moment after the rename.
    let (status, page) = common::wait::wait_for(
        "the target page to show the burst",
        Duration::from_secs(5),
        async || demo.get(path).await,
        |(status, page)| *status != 200 || !page.contains("data-points=\"0\""),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-plot=\"trend\""), "{page}");
    demo.signal("TERM");
    let status = demo
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("demo exits after SIGTERM");
    assert!(status.success(), "{status}\n{}", demo.log_text());
}

/// The mock's own flag checks speak like every other command: `error: <flag>: …`, exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_usage_errors_start_like_every_other_error() {
    let dir = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (&["mock", "--ttft", "soon"][..], "--ttft"),
        (&["mock", "--itl", "-"][..], "--itl"),
        (&["mock", "--fault", "gremlins"][..], "--fault"),
        (&["mock", "--fault", "stall:2"][..], "--fault"),
        (&["mock", "--jitter", "3"][..], "--jitter"),
        (&["mock", "--protocol", "smoke-signals"][..], "--protocol"),
        (&["mock", "--listen", "nowhere"][..], "--listen"),
    ] {
        let out = streamprobe(args, dir.path(), &[]).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(flag),
            "{args:?}: {stderr}"
        );
    }
}
