//! A unique secret planted through an environment variable, a file and a systemd credential
//! reaches the server, and appears nowhere a user can see it: `check`, `run` (report, progress,
//! result file), `serve` (logs, `/metrics`, status page, API, result files, reload errors),
//! including on failure paths (HTTP 500, connection refused, a bad reload).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;
use common::daemon::Daemon;
use common::wait::wait_for;
use common::{free_port, mock, timing};

const ENV_SECRET: &str = "sk-env-5a1f0c3e9d7b-do-not-leak";
const FILE_SECRET: &str = "sk-file-77d2e41b08aa-do-not-leak";
const CRED_SECRET: &str = "sk-cred-c0ffee12ab34-do-not-leak";
const SECRETS: [&str; 3] = [ENV_SECRET, FILE_SECRET, CRED_SECRET];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret {s} leaked into {what}:\n{text}");
    }
    // Also no fragment long enough to identify it.
    for s in SECRETS {
        assert!(!text.contains(&s[..14]), "part of {s} leaked into {what}");
    }
}

fn write_config(dir: &Path, mock_port: u16, listen: u16, dead_port: u16) -> std::path::PathBuf {
    std::fs::write(dir.join("key.txt"), format!("{FILE_SECRET}\n")).unwrap();
    std::fs::create_dir_all(dir.join("creds")).unwrap();
    std::fs::write(dir.join("creds/api_key"), CRED_SECRET).unwrap();
    let config = format!(
        r#"server: {{listen: "127.0.0.1:{listen}", enable_admin_api: true, shutdown_grace: 1s}}
results: {{dir: results}}
defaults:
  total_requests: 2
  concurrency: 1
  schedule: {{every: 1s}}
  run_on_start: true
  timeout: 5s
  body: {{model: m, messages: [{{role: user, content: hi}}], stream: true, api_key: "${{SP_SECRET_TEST_KEY}}"}}
targets:
  - name: env-header
    url: "http://127.0.0.1:{mock_port}/v1/chat/completions?key=${{SP_SECRET_TEST_KEY}}"
    headers: {{Authorization: "Bearer ${{SP_SECRET_TEST_KEY}}"}}
  - name: file-header-failing
    url: "http://127.0.0.1:{mock_port}/v1/chat/completions?fault=500"
    headers: {{X-Api-Key: "${{file:key.txt}}"}}
  - name: credential-refused
    url: "http://127.0.0.1:{dead_port}/v1/chat/completions?token=${{credential:api_key}}"
    headers: {{Authorization: "Bearer ${{credential:api_key}}"}}
"#
    );
    let path = dir.join("secrets.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(common::BIN);
    cmd.current_dir(dir)
        .env("SP_SECRET_TEST_KEY", ENV_SECRET)
        .env("CREDENTIALS_DIRECTORY", dir.join("creds"))
        .env("STREAMPROBE_LOG", "debug");
    cmd
}

fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_leave_the_wire() {
    let server = mock(timing(10, 1, 3)).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let listen = free_port();
    let config = write_config(dir, server.local_addr().port(), listen, free_port());
    // `check` and `run` are awaited, not waited for: the mock serves them on this runtime.
    let output = async |command: Command| {
        tokio::process::Command::from(command)
            .output()
            .await
            .unwrap()
    };

    let mut outputs = Vec::new();
    // check
    let mut check = command(dir);
    check.args(["check", "-c"]).arg(&config);
    let out = output(check).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    outputs.push((
        "check stdout",
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ));
    outputs.push((
        "check stderr",
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ));
    // run: one target succeeds, one gets HTTP 500, one is refused.
    let mut run = command(dir);
    run.args(["run", "-c"])
        .arg(&config)
        .args(["-v", "--save-text", "-o", "run.json"]);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(1), "some requests fail by design");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        report.contains("http_5xx") && report.contains("connect"),
        "{report}"
    );
    outputs.push(("run stdout", report));
    outputs.push((
        "run stderr",
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ));

    // serve, with debug logs.
    let mut serve = command(dir);
    serve.args(["serve", "-c"]).arg(&config);
    let mut d = Daemon::start(serve, listen).await;
    // Let every target finish at least one burst.
    wait_for(
        "a burst of every target",
        Duration::from_secs(15),
        // Written files only, not the writer's `.<name>.<random>.tmp` before its rename.
        async || {
            std::fs::read_dir(dir.join("results/credential-refused")).map_or(0, |d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
        },
        |files| *files > 0,
    )
    .await;
    for path in [
        "/metrics",
        "/",
        "/api/v1/targets",
        "/api/v1/targets/env-header/bursts",
        "/api/v1/targets/credential-refused/bursts",
    ] {
        let (status, body) = d.get(path).await;
        assert_eq!(status, 200, "{path}");
        outputs.push(("an endpoint", body));
    }
    // A bad reload: the new file references a variable that is not set.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replace("SP_SECRET_TEST_KEY}", "SP_SECRET_UNSET_KEY}"),
    )
    .unwrap();
    let (status, body) = d.post("/-/reload").await;
    assert_eq!(status, 500);
    assert!(body.contains("SP_SECRET_UNSET_KEY"), "{body}");
    outputs.push(("reload error", body));
    std::fs::write(&config, &good).unwrap();
    let (status, body) = d.post("/-/reload").await;
    assert_eq!(status, 200, "{body}");
    d.signal("TERM");
    let status = d
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("exits within 30 s of SIGTERM");
    assert!(status.success(), "SIGTERM: exit 0");
    outputs.push(("serve stdout", d.stdout_text()));
    let logs = d.log_text();
    assert!(logs.contains("burst finished"), "{logs}");
    outputs.push(("serve logs", logs));

    for (what, text) in &outputs {
        assert_clean(what, text);
    }
    let mut files = Vec::new();
    all_files(dir, &mut files);
    let mut result_files = 0;
    for f in files {
        let name = f.display().to_string();
        if name.ends_with("key.txt") || name.ends_with("api_key") || name.ends_with("secrets.yaml")
        {
            continue;
        }
        result_files += usize::from(name.ends_with(".json"));
        assert_clean(&name, &std::fs::read_to_string(&f).unwrap_or_default());
    }
    assert!(
        result_files >= 4,
        "run files and daemon result files were checked"
    );

    // The secrets did reach the server, where they belong.
    let truths = server.truths();
    let header = |name: &str| {
        truths
            .iter()
            .flat_map(|t| t.headers.iter())
            .any(|(k, v)| k == name && SECRETS.iter().any(|s| v.contains(s)))
    };
    assert!(
        header("authorization"),
        "Authorization with the env secret was sent"
    );
    assert!(
        header("x-api-key"),
        "X-Api-Key with the file secret was sent"
    );
    assert!(
        truths.iter().any(|t| t.target.contains(ENV_SECRET)),
        "query secret sent"
    );
    assert!(
        truths
            .iter()
            .any(|t| String::from_utf8_lossy(&t.request_body).contains(ENV_SECRET)),
        "body secret sent"
    );
}
