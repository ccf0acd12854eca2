//! Config loading at its boundary: every `tests/data/config/invalid-*.yaml` against its exact
//! message, every shipped file under `config/` loads, defaults, the old script's format, secrets
//! that never print, schedules and the `check` report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use streamprobe::config::{
    Body, CacheBust, Config, Endpoint, Env, Overlap, Protocol, RunOverrides, Schedule, Secret,
    Target, check_report, load_for_check, load_for_run, load_str_for_check, load_str_with_env,
    load_with_env,
};

/// Each invalid file and the exact message `load` gives for it.
const INVALID: &[(&str, &str)] = &[
    (
        "invalid-body-missing.yaml",
        "targets[0].body: is required: the URL path \"/events\" names no API with a default request body; give body: {...} (sent with POST), or set method: GET to send none",
    ),
    (
        "invalid-buckets-preset.yaml",
        "defaults.buckets.latency: unknown preset \"fast\"; use otel or reasoning (up to 655 s, for reasoning models) or a list of boundaries in seconds",
    ),
    (
        "invalid-buckets.yaml",
        "defaults.buckets.latency: must be strictly increasing, got 0.25 after 0.5; sort the boundaries and drop duplicates",
    ),
    (
        "invalid-cache-bust-no-prompt.yaml",
        "targets[0].cache_bust: prefix needs a YAML/JSON body with a prompt (messages, contents, input, prompt, inputs or query) to put the nonce in front of, but targets[0].body has none; set cache_bust: off or add the prompt",
    ),
    (
        "invalid-cache-bust-value.yaml",
        "targets[0].cache_bust: must be prefix or off, got \"suffix\"; prefix starts every prompt with a unique nonce so prefix caches cannot serve it",
    ),
    (
        "invalid-capture-headers.yaml",
        "targets[0].capture_headers[1]: set-cookie carries credentials and is never stored in result files; remove it",
    ),
    (
        "invalid-concurrency-zero.yaml",
        "targets[2].concurrency: must be between 1 and 10000, got 0",
    ),
    (
        "invalid-credential-no-dir.yaml",
        "targets[0].headers.Authorization: ${credential:openai-key} needs $CREDENTIALS_DIRECTORY, which is not set; run under systemd with LoadCredential= or use ${file:/path}",
    ),
    (
        "invalid-cron-and-every.yaml",
        "targets[0].schedule: both every and cron are set; use one of them",
    ),
    (
        "invalid-cron-value.yaml",
        "targets[0].schedule.cron: invalid cron expression (component error: number out of bounds), got \"0 */10 25 * * *\"; use 6 fields with seconds (\"0 */10 * * * *\") or 5 without",
    ),
    (
        "invalid-cron.yaml",
        "targets[0].schedule.cron: invalid cron expression (has 4 fields), got \"0 */10 * *\"; use 6 fields with seconds (\"0 */10 * * * *\") or 5 without",
    ),
    (
        "invalid-csv-column.yaml",
        "targets[0].data_source.column: no such column in tests/data/config/../csv/prompts.csv, got \"question\"; the columns are: content, id",
    ),
    (
        "invalid-csv-encoding-mismatch.yaml",
        "targets[0].data_source.file: ../csv/gbk.csv: is not valid utf-8 text; set data_source.encoding to the file's encoding (e.g. gbk, big5, shift_jis)",
    ),
    (
        "invalid-csv-malformed.yaml",
        "targets[0].data_source.file: ../csv/malformed.csv: line 3: row has 3 fields but the header has 2; quote values that contain commas",
    ),
    (
        "invalid-csv-missing.yaml",
        "targets[0].data_source.file: cannot read tests/data/config/../csv/does-not-exist.csv: no such file; the path is relative to the config file",
    ),
    (
        "invalid-defaults-concurrency.yaml",
        "defaults.concurrency (applied to targets[0]): must be between 1 and 10000, got 20000",
    ),
    (
        "invalid-defaults-placeholder.yaml",
        "defaults.body.messages[0].content (applied to targets[1]): unknown placeholder {{content}}; the data source has columns: id",
    ),
    (
        "invalid-duplicate-name.yaml",
        "targets[2].name: duplicate target name, got \"api\"; targets[0] has it already, names must be unique",
    ),
    (
        "invalid-duration.yaml",
        "targets[0].timeout: invalid duration, got \"5 min\"; use a number with a unit (250ms, 30s, 5m, 1h, 30d) or a bare number of seconds",
    ),
    (
        "invalid-empty.yaml",
        "the file is empty; add a targets: list (see config/streamprobe.yaml)",
    ),
    (
        "invalid-encoding.yaml",
        "targets[0].data_source.encoding: unknown encoding, got \"utf-9\"; use a WHATWG label such as utf-8, gbk, gb18030, big5 or shift_jis",
    ),
    (
        "invalid-env-unset.yaml",
        "targets[0].headers.Authorization: ${STREAMPROBE_TEST_UNSET_KEY_5D1E} is not set; export STREAMPROBE_TEST_UNSET_KEY_5D1E, or use ${file:/path} or ${credential:NAME}",
    ),
    (
        "invalid-extract-pointer.yaml",
        "targets[0].extract.text: not a JSON pointer, got \"content\"; pointers start with '/', e.g. /content",
    ),
    (
        "invalid-extract-protocol.yaml",
        "targets[0].extract: only applies to protocol sse or ndjson, got protocol openai (targets[0].protocol); set protocol: sse or ndjson, or remove extract",
    ),
    (
        "invalid-first-token-timeout.yaml",
        "targets[0].first_token_timeout: must not exceed the whole-request timeout (30s at defaults.timeout), got 1m; lower it or raise timeout",
    ),
    (
        "invalid-jitter.yaml",
        "targets[0].schedule.jitter: must be less than every (30s), got 1m; lower it",
    ),
    (
        "invalid-legacy-concurrency.yaml",
        "concurrency: must be between 1 and 10000, got 0",
    ),
    (
        "invalid-legacy-unknown-key.yaml",
        "concurrenc: unknown key; did you mean concurrency?",
    ),
    (
        "invalid-listen.yaml",
        "server.listen: not an address and port, got \"localhost:10061\"; use e.g. 127.0.0.1:10061 or 0.0.0.0:10061",
    ),
    (
        "invalid-missing-name.yaml",
        "targets[0].name: is required; give each target a unique name of letters, digits, '_', '.' and '-'",
    ),
    (
        "invalid-missing-url.yaml",
        "targets[0].url: is required; give the endpoint, e.g. url: https://api.openai.com/v1/chat/completions",
    ),
    (
        "invalid-name-chars.yaml",
        "targets[0].name: must match [A-Za-z0-9_.-]+, got \"my target\"; use only letters, digits, '_', '.' and '-' (it becomes the target label)",
    ),
    (
        "invalid-name-dots.yaml",
        "targets[0].name: cannot be \"..\": it names the target's results directory and page URL; use a word",
    ),
    (
        "invalid-no-targets.yaml",
        "targets: no targets; add at least one target with a name and a url",
    ),
    (
        "invalid-overlap.yaml",
        "targets[0].overlap: unknown overlap policy, got \"parallel\"; use skip or queue",
    ),
    (
        "invalid-placeholder-no-data.yaml",
        "targets[0].headers.X-Prompt-Id: placeholder {{id}} needs a data source; add data_source: {type: csv, file: prompts.csv} with a column named \"id\"",
    ),
    (
        "invalid-placeholder.yaml",
        "targets[0].body.messages[0].content: unknown placeholder {{contnt}}; did you mean {{content}}? the data source has columns: content",
    ),
    (
        "invalid-protocol.yaml",
        "targets[0].protocol: unknown protocol, got \"opena\"; did you mean openai? use one of auto, openai, openai-completions, openai-responses, anthropic, gemini, ollama, dify, tgi, sse, ndjson, raw",
    ),
    (
        "invalid-proxy-secret-url.yaml",
        "targets[0].proxy: scheme must be http or https, got \"ftp://<redacted>@proxy.internal:3128\"; use e.g. http://proxy.internal:3128 (credentials as http://user:${PROXY_PASSWORD}@host:port)",
    ),
    (
        "invalid-proxy-server-name.yaml",
        "targets[0].proxy: cannot be combined with tls.server_name (\"vllm.internal\"): through a proxy, the proxy resolves the host name; remove one of them",
    ),
    (
        "invalid-proxy-socks.yaml",
        "targets[0].proxy: SOCKS proxies are not supported (streamprobe is built without reqwest's socks feature), got \"socks5://127.0.0.1:1080\"; use an http:// or https:// proxy",
    ),
    (
        "invalid-rate.yaml",
        "targets[0].rate: invalid rate, got \"2 per second\"; use requests per second, minute or hour above 0: \"2/s\", \"120/m\", \"30/h\" or a bare number per second",
    ),
    (
        "invalid-schedule-type.yaml",
        "targets[0].schedule: expected a mapping of key: value, got \"5m\"",
    ),
    (
        "invalid-size.yaml",
        "targets[0].max_response_bytes: invalid size, got \"16 megs\"; use a whole number of bytes or a unit: 512KiB, 16MiB, 1GB",
    ),
    (
        "invalid-timeout-zero.yaml",
        "targets[0].timeout: must be above 0, got 0s; use a number with a unit (250ms, 30s, 5m, 1h, 30d) or a bare number of seconds",
    ),
    (
        "invalid-timezone.yaml",
        "targets[0].schedule.timezone: unknown time zone, got \"Mars/Olympus_Mons\"; use an IANA name such as UTC or Europe/Berlin",
    ),
    (
        "invalid-tls-ca-missing.yaml",
        "targets[0].tls.ca_file: cannot read tests/data/config/./missing-ca.pem: no such file; the path is relative to the config file",
    ),
    (
        "invalid-tls-ca-not-pem.yaml",
        "targets[0].tls.ca_file: tests/data/config/../csv/prompts.csv holds no PEM certificate or key; expected one or more -----BEGIN CERTIFICATE----- blocks (the key goes in key_file)",
    ),
    (
        "invalid-tls-cert-without-key.yaml",
        "targets[0].tls.key_file: is required with cert_file; give the client certificate's private key (PEM)",
    ),
    (
        "invalid-tls-http-url.yaml",
        "targets[0].tls: only applies to https:// URLs, got \"http://127.0.0.1:8000/v1/chat/completions\"; use https or remove tls",
    ),
    (
        "invalid-tls-insecure-with-ca.yaml",
        "targets[0].tls.ca_file: is ignored with insecure_skip_verify: true, which accepts any certificate; remove one of them",
    ),
    (
        "invalid-tls-server-name-ip.yaml",
        "targets[0].tls.server_name: must be a host name, got the IP address \"10.0.0.5\"; put the address in url and the certificate's host name here",
    ),
    (
        "invalid-tls-unknown-key.yaml",
        "targets[0].tls.ca: unknown key; did you mean ca_file?",
    ),
    (
        "invalid-total-requests-zero.yaml",
        "targets[0].total_requests: must be at least 1, got 0; it is the number of requests per burst",
    ),
    (
        "invalid-type.yaml",
        "targets[0].concurrency: expected a whole number, got \"ten\"",
    ),
    (
        "invalid-unknown-key.yaml",
        "targets[0].concurency: unknown key; did you mean concurrency?",
    ),
    (
        "invalid-unknown-top-key.yaml",
        "taregts: unknown key; did you mean targets?",
    ),
    (
        "invalid-url-scheme.yaml",
        "targets[0].url: scheme must be http or https, got \"ftp://example.com/stream\"; use an absolute http:// or https:// URL",
    ),
    (
        "invalid-url-secret.yaml",
        "targets[0].url: not a valid URL (invalid international domain name), got \"http://exa mple.com/v1?key=<redacted>\"; use an absolute http:// or https:// URL",
    ),
    (
        "invalid-verdict-min-change.yaml",
        "targets[0].verdict.min_change: invalid percentage, got 5; use a percentage such as 5% or a fraction between 0 and 1 such as 0.05",
    ),
    (
        "invalid-verdict-min-samples.yaml",
        "targets[0].verdict.min_change: must be below 100%, got 150%; it is the smallest relative change that counts, e.g. 5%",
    ),
    (
        "invalid-verdict-recent.yaml",
        "targets[0].verdict.recent: recent must be shorter than baseline, got recent 2h and baseline 1h; the baseline window is the bursts of the last baseline before the recent ones",
    ),
    (
        "invalid-verdict-statistic.yaml",
        "defaults.verdict.statistic (applied to targets[0]): unknown statistic, got \"p95\"; use p50, p90, p99 or mean",
    ),
    (
        "invalid-yaml-syntax.yaml",
        "invalid YAML at line 4, column 4: did not find expected '-' indicator",
    ),
];

/// The secret `invalid-url-secret.yaml` refers to: it must not appear in the message.
const URL_SECRET: &str = "sk-url-secret-value-3141";

fn data_dir() -> PathBuf {
    PathBuf::from("tests/data/config")
}

#[test]
fn invalid_configs_fail_with_exact_messages() {
    let env = Env::vars([("STREAMPROBE_TEST_URL_SECRET_91C2", URL_SECRET)]);
    let mut failures = Vec::new();
    for (file, expected) in INVALID {
        let path = data_dir().join(file);
        let expected = format!("{}: {expected}", path.display());
        match load_with_env(&path, &env) {
            Ok(_) => failures.push(format!("{file}: loaded, expected an error")),
            Err(err) if err.to_string() != expected => failures.push(format!(
                "{file}:\n  expected: {expected}\n  actual:   {err}"
            )),
            Err(err) => assert!(!err.to_string().contains(URL_SECRET)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_file_is_in_the_table() {
    let mut on_disk: Vec<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("invalid-"))
        .collect();
    on_disk.sort();
    let listed: Vec<String> = INVALID.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(on_disk, listed, "keep INVALID sorted and complete");
    assert!(listed.len() >= 20);
}

/// Secrets the shipped examples refer to.
fn example_env() -> Env {
    Env::vars([
        ("OPENAI_API_KEY", "sk-test-openai-0001"),
        ("ANTHROPIC_API_KEY", "sk-ant-test-0002"),
        ("GEMINI_API_KEY", "gm-test-0003"),
        ("DIFY_API_KEY", "app-test-0004"),
        ("PROXY_PASSWORD", "proxy-test-0005"),
    ])
}

fn config_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Prometheus scrape/rule files live there; they are not streamprobe configs.
            if path.file_name().is_some_and(|n| n != "prometheus") {
                config_files(&path, out);
            }
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_shipped_config_loads() {
    let mut files = Vec::new();
    config_files(Path::new("config"), &mut files);
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let env = example_env();
    for file in &files {
        let config = load_with_env(file, &env).unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.targets.is_empty(), "{}", file.display());
        // Nothing secret leaks into the check report or Debug output.
        let report = check_report(&config, fixed_now());
        let debug = format!("{config:?}");
        for value in [
            "sk-test-openai-0001",
            "sk-ant-test-0002",
            "gm-test-0003",
            "app-test-0004",
            "proxy-test-0005",
        ] {
            assert!(!report.contains(value), "{}", file.display());
            assert!(!debug.contains(value), "{}", file.display());
        }
    }
}

#[test]
fn shipped_examples_have_the_documented_shape() {
    let env = example_env();
    let full = load_with_env(Path::new("config/streamprobe.yaml"), &env).unwrap();
    let names: Vec<&str> = full.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["openai-gpt-4o-mini", "anthropic-claude-haiku"]);
    assert_eq!(full.targets[0].protocol, Protocol::OpenAi);
    assert_eq!(full.targets[1].protocol, Protocol::Anthropic);
    assert_eq!(full.targets[1].rate, Some(1.0));
    // `verdict:` merges field by field: the target's min_change, the defaults' windows.
    let verdict = &full.targets[1].verdict;
    assert_eq!(verdict.min_change, 0.1);
    assert_eq!(verdict.recent, Duration::from_secs(3600));
    assert_eq!(verdict.baseline, Duration::from_secs(7 * 86400));
    assert_eq!(full.targets[0].verdict.min_change, 0.05);

    let demo = load_with_env(Path::new("config/demo.yaml"), &env).unwrap();
    assert_eq!(demo.targets.len(), 3);
    for (target, ttft) in demo.targets.iter().zip(["150ms", "400ms", "900ms"]) {
        assert_eq!(
            target.url.render_to_string(None),
            format!("http://127.0.0.1:18080/v1/chat/completions?ttft={ttft}")
        );
        assert_eq!(target.concurrency.get(), 4);
        assert_eq!(target.total_requests.get(), 12);
        assert!(matches!(
            target.schedule,
            Some(Schedule::Every { every, .. }) if every == Duration::from_secs(15)
        ));
    }
    // Self-contained (`demo` runs it from anywhere): results next to it, no CSV.
    assert_eq!(demo.results.dir, Path::new("config/streamprobe-results"));
    assert!(demo.targets.iter().all(|t| t.data.is_none()));
    // Targets that inherit one data source share its rows.
    let data = |i: usize| full.targets[i].data.clone().unwrap();
    assert!(std::sync::Arc::ptr_eq(&data(0), &data(1)));

    let llamacpp = load_with_env(Path::new("config/examples/llamacpp.yaml"), &env).unwrap();
    let extract = llamacpp.targets[0].extract.as_ref().unwrap();
    assert_eq!(extract.text.as_deref(), Some("/content"));
    assert_eq!(extract.output_tokens.as_deref(), Some("/tokens_predicted"));
    // The example spells out what `auto` uses for llama.cpp's /completion.
    assert_eq!(extract, &streamprobe::stream::llama_cpp_extract());
}

fn load_text(text: &str) -> Config {
    load_str_with_env(text, Path::new("inline.yaml"), &Env::vars::<&str, &str>([]))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let config = load_text("targets: [{name: a, url: 'http://127.0.0.1:9/v1/chat/completions'}]");
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:10061");
    assert_eq!(config.server.max_in_flight.get(), 1000);
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(30));
    assert!(!config.server.enable_admin_api);
    assert_eq!(
        config.results.dir,
        PathBuf::from("/var/lib/streamprobe/results")
    );
    assert_eq!(config.results.keep_per_target, 500);
    assert_eq!(config.results.max_age, Duration::from_secs(30 * 86400));
    assert_eq!(config.buckets, streamprobe::config::Buckets::default());
    let t = &config.targets[0];
    // No body: the endpoint's default streaming body, sent with POST (issue 10, item 5).
    assert_eq!(t.method, "POST");
    let Some(Body::Json(body)) = &t.body else {
        panic!("{:?}", t.body)
    };
    let body: serde_json::Value = serde_json::from_str(&body.render_to_string(None)).unwrap();
    assert_eq!(body["stream"], true);
    let names: Vec<&str> = t.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Content-Type"]);
    assert_eq!(t.protocol, Protocol::Auto);
    assert_eq!(t.overlap, Overlap::Skip);
    assert_eq!(t.concurrency.get(), 10);
    assert_eq!(t.total_requests.get(), 100);
    assert_eq!(t.rate, None);
    assert_eq!(t.warmup_requests, 0);
    assert_eq!(t.timeout, Duration::from_secs(300));
    assert_eq!(t.first_token_timeout, Duration::from_secs(60));
    assert_eq!(t.idle_timeout, Duration::from_secs(30));
    assert_eq!(t.max_response_bytes, 16 << 20);
    assert!(t.schedule.is_none());
    assert!(!t.run_on_start);
}

#[test]
fn targets_override_defaults_and_merge_headers() {
    let config = load_text(
        r#"
defaults:
  method: GET
  concurrency: 3
  timeout: 20s
  headers: {Authorization: "Bearer default", X-Team: probes}
  buckets: {latency: [0.1, 1, 10], per_token: [0.01, 0.1]}
targets:
  - name: a
    url: http://127.0.0.1:9/a
  - name: b
    url: http://127.0.0.1:9/b
    concurrency: 7
    timeout: 90
    headers: {authorization: "Bearer mine"}
"#,
    );
    let [a, b] = &config.targets[..] else {
        panic!()
    };
    assert_eq!(a.concurrency.get(), 3);
    assert_eq!(b.concurrency.get(), 7);
    // Unset first-token and idle timeouts are clamped to a short whole-request timeout.
    assert_eq!(a.timeout, Duration::from_secs(20));
    assert_eq!(a.first_token_timeout, Duration::from_secs(20));
    assert_eq!(a.idle_timeout, Duration::from_secs(20));
    assert_eq!(b.timeout, Duration::from_secs(90));
    assert_eq!(b.first_token_timeout, Duration::from_secs(60));
    let headers = |t: &streamprobe::config::Target| -> Vec<(String, String)> {
        t.headers
            .iter()
            .map(|h| (h.name.clone(), h.value.render_to_string(None)))
            .collect()
    };
    assert_eq!(
        headers(a),
        [
            ("Authorization".to_owned(), "Bearer default".to_owned()),
            ("X-Team".to_owned(), "probes".to_owned())
        ]
    );
    assert_eq!(
        headers(b),
        [
            ("X-Team".to_owned(), "probes".to_owned()),
            ("authorization".to_owned(), "Bearer mine".to_owned())
        ]
    );
    assert_eq!(config.buckets.latency, [0.1, 1.0, 10.0]);
    assert_eq!(config.buckets.token, [0.01, 0.1]);
}

#[test]
fn latency_bucket_presets() {
    let with = |latency: &str| {
        load_text(&format!(
            "defaults:\n  buckets: {{latency: {latency}}}\ntargets:\n  - name: a\n    url: http://127.0.0.1:9/a\n    method: GET\n"
        ))
        .buckets
        .latency
    };
    assert_eq!(
        with("otel"),
        streamprobe::config::Buckets::default().latency
    );
    let reasoning = with("reasoning");
    assert!(*reasoning.last().unwrap() >= 600.0, "{reasoning:?}");
    assert!(reasoning.starts_with(&with("otel")), "extends the default");
    assert_eq!(with("[1, 2.5, 700]"), [1.0, 2.5, 700.0]);
}

#[test]
fn cache_bust_puts_the_nonce_at_the_start_of_the_prompt_and_capture_headers_are_lower_case() {
    let config = load_text(
        r#"
defaults:
  cache_bust: prefix
targets:
  - name: chat
    url: http://127.0.0.1:9/v1/chat/completions
    body: {model: m, messages: [{role: system, content: "be \"brief\""}, {role: user, content: hi}]}
    capture_headers: [X-Served-By, x-served-by, CF-Cache-Status]
  - name: plain
    url: http://127.0.0.1:9/v1/completions
    body: {model: m, prompt: hi}
    cache_bust: "off"
  - name: defaulted
    url: http://127.0.0.1:9/v1/messages
"#,
    );
    let [chat, plain, defaulted] = &config.targets[..] else {
        panic!()
    };
    // The endpoint's default body gets the nonce too.
    let mut sent = String::new();
    defaulted
        .body
        .as_ref()
        .unwrap()
        .template()
        .render_with_nonce(None, Some("b1-2"), &mut sent);
    let sent: serde_json::Value = serde_json::from_str(&sent).unwrap();
    let prompt = sent["messages"][0]["content"].as_str().unwrap();
    assert!(prompt.starts_with("b1-2 "), "{prompt}");
    assert_eq!(chat.cache_bust, CacheBust::Prefix);
    assert_eq!(plain.cache_bust, CacheBust::Off);
    let body = chat.body.as_ref().unwrap().template();
    assert!(body.has_nonce());
    let mut sent = String::new();
    body.render_with_nonce(None, Some("b1-7"), &mut sent);
    let sent: serde_json::Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent["messages"][0]["content"], "be \"brief\"");
    assert_eq!(sent["messages"][1]["content"], "b1-7 hi");
    // Without a nonce (and for a target without cache busting) the body is as written.
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body.render_to_string(None)).unwrap()["messages"]
            [1]["content"],
        "hi"
    );
    assert!(!plain.body.as_ref().unwrap().template().has_nonce());
    assert_eq!(chat.capture_headers, ["x-served-by", "cf-cache-status"]);
}

#[test]
fn json_bodies_get_a_content_type_and_text_bodies_do_not() {
    let config = load_text(
        r#"
targets:
  - name: json
    url: http://127.0.0.1:9/a
    body: {model: m1, stream: true, temperature: 0.5, n: 1, stop: null}
  - name: json-own-type
    url: http://127.0.0.1:9/a
    headers: {content-type: application/json; charset=utf-8}
    body: {model: "{{content}}"}
    data_source: {file: tests/data/csv/prompts.csv, column: content}
  - name: text
    url: http://127.0.0.1:9/a
    body: "plain text"
"#,
    );
    let t = &config.targets;
    assert_eq!(t[0].method, "POST");
    let Some(Body::Json(body)) = &t[0].body else {
        panic!()
    };
    let json: serde_json::Value = serde_json::from_str(&body.render_to_string(None)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"model": "m1", "stream": true, "temperature": 0.5, "n": 1, "stop": null})
    );
    assert_eq!(t[0].headers.len(), 1);
    assert_eq!(t[0].headers[0].name, "Content-Type");
    assert_eq!(t[0].model.as_deref(), Some("m1"));
    assert_eq!(t[1].headers.len(), 1);
    assert_eq!(t[1].model, None);
    assert!(matches!(&t[2].body, Some(Body::Text(b)) if b.render_to_string(None) == "plain text"));
    assert!(t[2].headers.is_empty());
}

#[test]
fn the_old_script_format_loads_as_one_target() {
    let config = load_with_env(Path::new("config/legacy-example.json"), &Env::Process).unwrap();
    let [t] = &config.targets[..] else { panic!() };
    assert_eq!(t.name, "localhost");
    assert_eq!(
        t.url.render_to_string(None),
        "http://localhost:8000/v1/chat/completions"
    );
    assert_eq!(t.method, "POST");
    assert_eq!(t.concurrency.get(), 10);
    assert_eq!(t.total_requests.get(), 100);
    // The old script only had a whole-request timeout.
    assert_eq!(t.timeout, Duration::from_secs(300));
    assert_eq!(t.first_token_timeout, Duration::from_secs(300));
    assert_eq!(t.idle_timeout, Duration::from_secs(300));
    let names: Vec<&str> = t.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Content-Type", "Authorization"]);
    let data = t.data.as_ref().unwrap();
    assert_eq!(data.columns(), ["content"]);
    assert_eq!(data.len(), 5);
    let Some(Body::Json(body)) = &t.body else {
        panic!()
    };
    let rendered = body.render_to_string(Some(data.row(4)));
    let json: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(
        json["messages"][0]["content"],
        "Summarise: \"The quick brown fox jumps over the lazy dog.\""
    );
    assert_eq!(t.model.as_deref(), Some("qwen"));
}

#[test]
fn legacy_floats_and_bare_numbers_are_seconds() {
    let config = load_text(r#"{"url": "http://[::1]:8000/x", "method": "GET", "timeout": 2.5}"#);
    assert_eq!(config.targets[0].name, "__1");
    assert_eq!(config.targets[0].timeout, Duration::from_millis(2500));
    assert_eq!(config.targets[0].method, "GET");
}

#[test]
fn secrets_resolve_from_env_file_and_credentials_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.txt"), "  file-secret-xyz\n").unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("anthropic"), "cred-secret-abc\n").unwrap();
    let config_path = dir.path().join("secrets.yaml");
    std::fs::write(
        &config_path,
        r#"
targets:
  - name: a
    url: "https://api.example.com/v1/x?key=${STREAMPROBE_TEST_SECRET_URL_KEY}"
    headers:
      Authorization: "Bearer ${STREAMPROBE_TEST_SECRET_ENV}"
      X-File: "${file:key.txt}"
      X-Cred: "${credential:anthropic}"
      X-Literal: "costs $${HOME}"
    body: {messages: [{content: "key ${STREAMPROBE_TEST_SECRET_ENV} \"q\""}]}
"#,
    )
    .unwrap();
    let env = Env::vars([
        ("STREAMPROBE_TEST_SECRET_URL_KEY", "url-secret-123"),
        ("STREAMPROBE_TEST_SECRET_ENV", "env-secret-\"456"),
        ("CREDENTIALS_DIRECTORY", creds.to_str().unwrap()),
    ]);
    let config = load_with_env(&config_path, &env).unwrap();
    let t = &config.targets[0];
    let wire: Vec<String> = t
        .headers
        .iter()
        .map(|h| h.value.render_to_string(None))
        .collect();
    assert_eq!(
        wire,
        [
            "Bearer env-secret-\"456",
            "file-secret-xyz",
            "cred-secret-abc",
            "costs ${HOME}",
            "application/json"
        ]
    );
    assert_eq!(
        t.url.render_to_string(None),
        "https://api.example.com/v1/x?key=url-secret-123"
    );
    assert_eq!(
        t.url.redacted(&[]),
        "https://api.example.com/v1/x?key=<redacted>"
    );
    assert!(t.url.has_secret());
    // Secrets inside a JSON body are escaped like any other string.
    let body = t.body.as_ref().unwrap().template();
    let json: serde_json::Value = serde_json::from_str(&body.render_to_string(None)).unwrap();
    assert_eq!(json["messages"][0]["content"], "key env-secret-\"456 \"q\"");

    let secrets = [
        "url-secret-123",
        "env-secret",
        "file-secret-xyz",
        "cred-secret-abc",
    ];
    let views = [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{t:?}"),
        format!("{:?}", t.url),
        format!("{env:?}"),
        check_report(&config, fixed_now()),
        body.redacted(&[]),
    ];
    for view in &views {
        for secret in secrets {
            assert!(!view.contains(secret), "{secret} leaked into {view}");
        }
    }
    assert!(views[0].contains("<redacted>"));

    let secret = Secret::new("hunter2".to_owned());
    assert_eq!(format!("{secret}"), "<redacted>");
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
    assert_eq!(secret.expose(), "hunter2");
}

#[test]
fn a_missing_secret_file_names_the_reference_only() {
    let err = load_str_with_env(
        "targets: [{name: a, url: 'http://h/x', headers: {K: '${file:/nonexistent/streamprobe-key}'}}]",
        Path::new("s.yaml"),
        &Env::vars::<&str, &str>([]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "s.yaml: targets[0].headers.K: ${file:/nonexistent/streamprobe-key} cannot be read: no such file"
    );
}

#[test]
fn body_placeholders_render_hostile_csv_values_as_valid_json() {
    let config = load_str_with_env(
        r#"
targets:
  - name: a
    url: "http://127.0.0.1:9/x?id={{id}}"
    headers: {X-Id: "row-{{ id }}"}
    body:
      messages: [{role: user, content: "Q: {{content}}"}]
      "weird \"key\"": "{{content}}{{content}}"
    data_source: {file: ../csv/prompts.csv}
"#,
        Path::new("tests/data/config/inline.yaml"),
        &Env::vars::<&str, &str>([]),
    )
    .unwrap();
    let t = &config.targets[0];
    let data = t.data.as_ref().unwrap();
    assert_eq!(data.columns(), ["content", "id"]);
    let body = t.body.as_ref().unwrap().template();
    for n in 0..data.len() as u64 {
        let row = data.row(n);
        let json: serde_json::Value =
            serde_json::from_str(&body.render_to_string(Some(row))).unwrap();
        assert_eq!(json["messages"][0]["content"], format!("Q: {}", row[0]));
        assert_eq!(json["weird \"key\""], format!("{}{}", row[0], row[0]));
        assert_eq!(
            t.url.render_to_string(Some(row)),
            format!("http://127.0.0.1:9/x?id={}", row[1])
        );
        assert_eq!(
            t.headers[0].value.render_to_string(Some(row)),
            format!("row-{}", row[1])
        );
    }
    assert_eq!(
        data.row(1)[0],
        "Say \"hi\", then a backslash \\\\ and\na newline"
    );
    assert_eq!(data.row(2)[0], "你好，世界");
    assert_eq!(
        t.url.redacted(data.columns()),
        "http://127.0.0.1:9/x?id={{id}}"
    );
}

fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 10, 14, 7).unwrap()
}

#[test]
fn schedules_compute_next_fires() {
    let config = load_text(
        r#"
defaults: {method: GET}
targets:
  - {name: every, url: "http://h/x", schedule: {every: 5m, jitter: 20s}}
  - {name: cron6, url: "http://h/x", schedule: {cron: "0 */10 * * * *"}}
  - {name: cron5, url: "http://h/x", schedule: {cron: "30 9 * * *", timezone: Europe/Berlin}}
"#,
    );
    let fires = |i: usize| -> Vec<String> {
        config.targets[i]
            .schedule
            .as_ref()
            .unwrap()
            .next_fires(fixed_now(), 3)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect()
    };
    assert_eq!(
        fires(0),
        [
            "2026-11-27T10:19:07+00:00",
            "2026-11-27T10:24:07+00:00",
            "2026-11-27T10:29:07+00:00"
        ]
    );
    assert_eq!(
        fires(1),
        [
            "2026-11-27T10:20:00+00:00",
            "2026-11-27T10:30:00+00:00",
            "2026-11-27T10:40:00+00:00"
        ]
    );
    // 09:30 in Berlin (UTC+1 in November) is 08:30 UTC; five fields mean seconds 0.
    assert_eq!(
        fires(2),
        [
            "2026-11-28T08:30:00+00:00",
            "2026-11-29T08:30:00+00:00",
            "2026-11-30T08:30:00+00:00"
        ]
    );
    let period = |i: usize| config.targets[i].schedule.as_ref().unwrap().period();
    assert_eq!(period(0), Duration::from_secs(300));
    assert_eq!(period(1), Duration::from_secs(600));
    assert_eq!(period(2), Duration::from_secs(86400));
}

#[test]
fn check_report_lists_targets_plans_and_fire_times() {
    let env = Env::vars([("STREAMPROBE_TEST_CHECK_KEY", "sk-check-secret")]);
    let config = load_str_with_env(
        r#"
server: {web_config: web.yml}
results: {dir: results, keep_per_target: 20}
targets:
  - name: openai
    url: https://api.openai.com/v1/chat/completions
    headers: {Authorization: "Bearer ${STREAMPROBE_TEST_CHECK_KEY}"}
    body: {model: gpt-4o-mini, messages: [{role: user, content: "{{content}}"}], stream: true}
    data_source: {file: ../csv/prompts.csv, column: content}
    protocol: openai
    schedule: {every: 5m, jitter: 20s}
    slo: {ttft: 2s, tpot: 80ms}
    expect: {min_output_tokens: 1, contains: sea}
    cache_bust: prefix
    capture_headers: [openai-processing-ms, openai-version]
  - name: paced
    url: http://127.0.0.1:18080/v1/chat/completions?key=${STREAMPROBE_TEST_CHECK_KEY}&tokens=10
    protocol: ollama
    rate: 120/m
    warmup_requests: 2
    timeout: 45s
    max_response_bytes: 1MiB
    schedule: {cron: "0 0 9 * * Mon-Fri", timezone: Europe/Berlin}
    overlap: queue
    run_on_start: true
    verdict: {recent: 30m, min_change: 10%, statistic: p50}
  - name: manual
    url: http://127.0.0.1:18080/x
    method: GET
    protocol: sse
    extract: {text: /content, done: /stop}
    concurrency: 1
    total_requests: 3
"#,
        Path::new("tests/data/config/check.yaml"),
        &env,
    )
    .unwrap();
    insta::assert_snapshot!(check_report(&config, fixed_now()), @r#"
    tests/data/config/check.yaml: ok, 3 targets
    server    listen 127.0.0.1:10061, up to 1000 requests in flight, admin api off, web config web.yml
    results   tests/data/config/results (keep 20 per target, max age 30d)

    openai
      url       https://api.openai.com/v1/chat/completions
      method    POST
      header    Authorization: <redacted>
      header    Content-Type: application/json
      protocol  openai
      model     gpt-4o-mini
      plan      100 requests, 10 in flight
      timeouts  total 5m, first token 1m, idle 30s
      max size  16MiB per response
      data      3 rows, columns: content
      slo       ttft 2s, tpot 80ms
      expect    at least 1 output token, text contains "sea"
      diagnose  cache bust prefix; capture headers openai-processing-ms, openai-version
      verdict   ttft and tpot p90, last 1h vs the 7d before, min change 5%, min 30 samples (serve)
      schedule  every 5m, jitter 20s, overlap skip
      next      2026-11-27T10:19:07Z, 2026-11-27T10:24:07Z, 2026-11-27T10:29:07Z

    paced
      url       http://127.0.0.1:18080/v1/chat/completions?key=<redacted>&tokens=10
      method    POST
      header    Content-Type: application/json
      protocol  ollama
      plan      100 requests at 2/s, up to 10 in flight, after 2 warmup
      timeouts  total 45s, first token 45s, idle 30s
      max size  1MiB per response
      verdict   ttft and tpot p50, last 30m vs the 7d before, min change 10%, min 30 samples (serve)
      schedule  cron "0 0 9 * * Mon-Fri" (Europe/Berlin), and once at start, overlap queue
      next      2026-11-30T08:00:00Z, 2026-12-01T08:00:00Z, 2026-12-02T08:00:00Z

    manual
      url       http://127.0.0.1:18080/x
      method    GET
      protocol  sse
      extract   {text: /content, done: /stop}
      plan      3 requests, 1 in flight
      timeouts  total 5m, first token 1m, idle 30s
      max size  16MiB per response
      verdict   ttft and tpot p90, last 1h vs the 7d before, min change 5%, min 30 samples (serve)
      schedule  none (run only)
    "#);
}

/// Every URL path `protocol: auto` recognises, with the endpoint it names.
const RECOGNISED: [(&str, Endpoint); 12] = [
    ("/v1/chat/completions", Endpoint::OpenAiChat),
    ("/v1/completions", Endpoint::OpenAiCompletions),
    ("/v1/responses", Endpoint::OpenAiResponses),
    ("/v1/messages", Endpoint::Anthropic),
    (
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        Endpoint::Gemini,
    ),
    ("/api/chat", Endpoint::OllamaChat),
    ("/api/generate", Endpoint::OllamaGenerate),
    ("/generate_stream", Endpoint::Tgi),
    ("/v1/chat-messages", Endpoint::DifyChat),
    ("/v1/completion-messages", Endpoint::DifyCompletion),
    ("/v1/workflows/run", Endpoint::DifyWorkflow),
    ("/completion", Endpoint::LlamaCpp),
];

fn body_json(t: &Target) -> serde_json::Value {
    let Some(Body::Json(body)) = &t.body else {
        panic!("{}: no JSON body: {:?}", t.name, t.body)
    };
    serde_json::from_str(&body.render_to_string(None)).unwrap()
}

fn run_u(url: &str) -> RunOverrides {
    RunOverrides {
        url: Some(url.to_owned()),
        ..RunOverrides::default()
    }
}

/// Issue 10, item 4: `run -u URL` alone POSTs the matching default body for every URL `auto`
/// recognises (Responses included), and a URL with no default is a usage error naming -d.
#[test]
fn run_u_posts_a_default_body_for_every_recognised_url() {
    for (path, endpoint) in RECOGNISED {
        let url = format!("http://127.0.0.1:9{path}");
        let config = load_for_run(None, &run_u(&url)).unwrap_or_else(|e| panic!("{e}"));
        let t = &config.targets[0];
        assert_eq!(t.method, "POST", "{path}");
        let expected: serde_json::Value = serde_json::from_str(&endpoint.default_body()).unwrap();
        assert_eq!(body_json(t), expected, "{path}");
        assert!(
            t.headers.iter().any(|h| h.name == "Content-Type"
                && h.value.render_to_string(None) == "application/json"),
            "{path}"
        );
    }
    let err = load_for_run(None, &run_u("http://127.0.0.1:9/events")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "<command line>: -u: the URL path \"/events\" names no API with a default request body; give one with -d BODY or -d @FILE, or send none with -X GET"
    );
    // -X GET: no body, as asked; -d: that body.
    let get = RunOverrides {
        method: Some("get".to_owned()),
        ..run_u("http://127.0.0.1:9/events")
    };
    let t = &load_for_run(None, &get).unwrap().targets[0];
    assert_eq!((t.method.as_str(), t.body.is_none()), ("GET", true));
    let posted = RunOverrides {
        body: Some(r#"{"q": 1}"#.to_owned()),
        ..run_u("http://127.0.0.1:9/events")
    };
    let t = &load_for_run(None, &posted).unwrap().targets[0];
    assert_eq!(t.method, "POST");
    assert_eq!(body_json(t), serde_json::json!({"q": 1}));
}

/// Issue 10, item 5: a YAML target without a body follows the rule `run -u` follows; an
/// explicit method is respected (GET sends nothing; POST to an unknown path sends nothing);
/// with an unknown path, a set protocol names the default.
#[test]
fn yaml_targets_without_body_get_the_same_default_as_run_u() {
    let mut yaml = String::from("targets:\n");
    for (i, (path, _)) in RECOGNISED.iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{name: t{i}, url: \"http://127.0.0.1:9{path}\"}}\n"
        ));
    }
    yaml.push_str(
        r#"  - {name: get, url: "http://127.0.0.1:9/v1/chat/completions", method: GET}
  - {name: post-unknown, url: "http://127.0.0.1:9/events", method: post}
  - {name: gateway, url: "http://127.0.0.1:9/llm/stream", protocol: anthropic}
"#,
    );
    let config = load_text(&yaml);
    for (i, (path, _)) in RECOGNISED.iter().enumerate() {
        let from_flags = load_for_run(None, &run_u(&format!("http://127.0.0.1:9{path}"))).unwrap();
        let (file, flags) = (&config.targets[i], &from_flags.targets[0]);
        assert_eq!(file.method, flags.method, "{path}");
        assert_eq!(body_json(file), body_json(flags), "{path}");
    }
    let by_name = |name: &str| config.targets.iter().find(|t| t.name == name).unwrap();
    let get = by_name("get");
    assert_eq!((get.method.as_str(), get.body.is_none()), ("GET", true));
    assert!(get.headers.is_empty());
    let post = by_name("post-unknown");
    assert_eq!((post.method.as_str(), post.body.is_none()), ("POST", true));
    let gateway = by_name("gateway");
    assert_eq!(gateway.method, "POST");
    assert_eq!(
        body_json(gateway),
        serde_json::from_str::<serde_json::Value>(&Endpoint::Anthropic.default_body()).unwrap()
    );
}

/// Issue 10, item 6: `-u` replacing a file's URL drops the file's protocol (and the extract
/// that belongs to it), so `auto` detects the new URL; an explicit `--protocol` wins.
#[test]
fn u_replacing_a_files_url_detects_its_protocol_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        r#"
defaults: {protocol: openai}
targets:
  - name: chat
    url: http://127.0.0.1:9/v1/chat/completions
    body: {model: m, stream: true}
  - name: llama
    url: http://127.0.0.1:9/completion
    body: {prompt: hi, stream: true}
    protocol: sse
    extract: {text: /content}
"#,
    )
    .unwrap();
    let kept = load_for_run(Some(&file), &RunOverrides::default()).unwrap();
    assert_eq!(kept.targets[0].protocol, Protocol::OpenAi);
    assert_eq!(kept.targets[1].protocol, Protocol::Sse);

    let moved = load_for_run(Some(&file), &run_u("http://127.0.0.1:9/v1/messages")).unwrap();
    for t in &moved.targets {
        assert_eq!(t.protocol, Protocol::Auto, "{}", t.name);
        assert_eq!(t.extract, None, "{}", t.name);
        // The file's body stays: -u moves the target, -d replaces the body.
        assert_eq!(t.method, "POST");
    }
    let told = RunOverrides {
        protocol: Some("anthropic".to_owned()),
        ..run_u("http://127.0.0.1:9/v1/messages")
    };
    let t = &load_for_run(Some(&file), &told).unwrap().targets[0];
    assert_eq!(t.protocol, Protocol::Anthropic);
}

/// Issue 10, item 9: `check` reports a secret it cannot resolve where it runs as a warning
/// saying how to provide it, and validates everything else; `load` (serve, run) still fails.
#[test]
fn check_defers_unresolvable_secrets_with_how_to_provide_them() {
    let none = Env::vars::<&str, &str>([]);
    let env_file = data_dir().join("invalid-env-unset.yaml");
    let checked = load_for_check(&env_file, &none).unwrap();
    assert_eq!(
        checked
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [format!(
            "{}: targets[0].headers.Authorization: ${{STREAMPROBE_TEST_UNSET_KEY_5D1E}} is not set; check went on with a stand-in; serve and run refuse to start without it: export STREAMPROBE_TEST_UNSET_KEY_5D1E=... in their environment (under systemd: Environment= or EnvironmentFile=, or use ${{credential:NAME}})",
            env_file.display()
        )]
    );
    assert!(load_with_env(&env_file, &none).is_err());

    let cred_file = data_dir().join("invalid-credential-no-dir.yaml");
    let checked = load_for_check(&cred_file, &none).unwrap();
    assert_eq!(
        checked
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [format!(
            "{file}: targets[0].headers.Authorization: ${{credential:openai-key}} needs $CREDENTIALS_DIRECTORY, which systemd sets for the service (LoadCredential=) but a shell does not; check went on with a stand-in; serve and run refuse to start without it. To check the credential too, point it at the files: CREDENTIALS_DIRECTORY=/etc/streamprobe/credentials streamprobe check -c {file}",
            file = cred_file.display()
        )]
    );
    // The stand-in never reaches a view either.
    assert!(check_report(&checked.config, fixed_now()).contains("Authorization: <redacted>"));

    // Everything else is still validated, and a malformed reference is still an error.
    let bad = load_str_for_check(
        "targets: [{name: a, url: 'http://h/v1/chat/completions?k=${NOPE_1}', concurrency: 0}]",
        Path::new("c.yaml"),
        &none,
    )
    .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "c.yaml: targets[0].concurrency: must be between 1 and 10000, got 0"
    );
    let malformed = load_str_for_check(
        "targets: [{name: a, url: 'http://h/v1/chat/completions', headers: {K: '${not valid}'}}]",
        Path::new("c.yaml"),
        &none,
    )
    .unwrap_err();
    assert!(
        malformed.to_string().contains("is not a valid reference"),
        "{malformed}"
    );
    let file = load_str_for_check(
        "targets: [{name: a, url: 'http://h/v1/chat/completions', proxy: 'http://u:${file:/nonexistent/streamprobe-pw}@p:3128'}]",
        Path::new("c.yaml"),
        &none,
    )
    .unwrap();
    assert_eq!(file.warnings.len(), 1);
    assert!(
        file.warnings[0]
            .to_string()
            .starts_with("c.yaml: targets[0].proxy: ${file:/nonexistent/streamprobe-pw} cannot be read here: no such file;"),
        "{}",
        file.warnings[0]
    );
}

/// Issue 10, item 9: every shipped config passes `check` with none of its secrets available,
/// each missing one a warning that says how to provide it.
#[test]
fn every_shipped_config_passes_check_without_its_secrets() {
    let mut files = Vec::new();
    config_files(Path::new("config"), &mut files);
    files.push(PathBuf::from("systemd/streamprobe.yaml"));
    files.sort();
    let none = Env::vars::<&str, &str>([]);
    let mut warned = 0;
    for file in &files {
        let checked = load_for_check(file, &none).unwrap_or_else(|e| panic!("{e}"));
        for w in &checked.warnings {
            let w = w.to_string();
            assert!(
                w.contains("export ")
                    || w.contains("CREDENTIALS_DIRECTORY=/etc/streamprobe/credentials"),
                "{w}"
            );
            warned += 1;
        }
    }
    assert!(warned >= 8, "{warned} warnings");
}

/// Issue 11, item 5: the shipped examples bust the provider's prefix cache on every target, and
/// say why where they turn it on.
#[test]
fn every_example_target_busts_the_prefix_cache_with_a_comment_saying_why() {
    let mut files = Vec::new();
    config_files(Path::new("config/examples"), &mut files);
    assert!(files.len() >= 8, "{files:?}");
    let none = Env::vars::<&str, &str>([]);
    for file in &files {
        let checked = load_for_check(file, &none).unwrap_or_else(|e| panic!("{e}"));
        for t in &checked.config.targets {
            assert_eq!(
                t.cache_bust,
                CacheBust::Prefix,
                "{}: {}",
                file.display(),
                t.name
            );
        }
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("cache_bust:") {
                let before =
                    lines[..i].iter().rev().take(3).any(|l| {
                        l.trim_start().starts_with('#') && l.to_lowercase().contains("cache")
                    });
                assert!(
                    before,
                    "{}:{}: cache_bust without a comment on why",
                    file.display(),
                    i + 1
                );
            }
        }
    }
}

/// Issue 10, item 12: `check` warns when a generic protocol has no `extract`, saying what
/// generic framing counts.
#[test]
fn check_warns_about_generic_protocols_without_extract() {
    let checked = load_str_for_check(
        r#"
defaults: {method: GET}
targets:
  - {name: s, url: "http://h/a", protocol: sse}
  - {name: n, url: "http://h/b", protocol: ndjson}
  - {name: x, url: "http://h/c", protocol: sse, extract: {text: /content}}
  - {name: r, url: "http://h/d", protocol: raw}
"#,
        Path::new("g.yaml"),
        &Env::vars::<&str, &str>([]),
    )
    .unwrap();
    let warnings: Vec<String> = checked.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "g.yaml: targets[0].protocol: sse without extract counts every non-empty SSE event (its data: lines) as one output token and keeps its raw data as the text; for JSON events name the fields with extract: {text: /pointer, done: /pointer, ...}, or use the API's own protocol (auto detects it from the URL and the first event)",
            "g.yaml: targets[1].protocol: ndjson without extract counts every non-empty line as one output token and keeps its raw data as the text; for JSON events name the fields with extract: {text: /pointer, done: /pointer, ...}, or use the API's own protocol (auto detects it from the URL and the first event)",
        ]
    );
}

/// The missing-body message names the URL path as shown everywhere else: a secret in it stays
/// `<redacted>`.
#[test]
fn a_missing_body_message_never_shows_a_secret_in_the_path() {
    let err = load_str_with_env(
        "targets: [{name: a, url: 'http://h/hooks/${SP_PATH_SECRET}/events?x=1'}]",
        Path::new("p.yaml"),
        &Env::vars([("SP_PATH_SECRET", "s3cr3t-path-token")]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "p.yaml: targets[0].body: is required: the URL path \"/hooks/<redacted>/events\" names no API with a default request body; give body: {...} (sent with POST), or set method: GET to send none"
    );
}
