//! The metrics registry and the HTTP router, without a socket: families and labels as
//! DESIGN §5 names them, series deletion on target removal, and every endpoint's contract.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use streamprobe::config::{self, Target, VerdictSettings};
use streamprobe::metrics::{CONTENT_TYPE, Gzip, Metrics};
use streamprobe::probe::{
    BurstResult, ClientLoad, Connection, ConnectionMode, Limit, Outcome, Phases, RateLimits,
    RequestRecord, Resource, TokenSource,
};
use streamprobe::schedule::Skip;
use streamprobe::server::{AdminCommand, ServerState, router};
use streamprobe::stats::BurstSummary;
use streamprobe::status::{BurstBrief, StatusBoard, TargetStatus};
use streamprobe::verdict::window::{BurstSamples, Windows};
use tokio::sync::mpsc;
use tower::ServiceExt;

mod common;
use common::exposition::Exposition;

const CONFIG: &str = r#"
targets:
  - name: alpha
    url: http://127.0.0.1:9/v1/chat/completions?key=abc
    model: m1
    slo: {ttft: 500ms}
  - name: beta
    url: http://127.0.0.1:9/v1/messages
"#;

fn targets() -> Vec<Target> {
    config::load_str(CONFIG, Path::new("test.yaml"))
        .expect("test config loads")
        .targets
}

fn record(index: u64, outcome: Outcome, ttft_ms: u64) -> RequestRecord {
    let ok = outcome == Outcome::Success;
    RequestRecord {
        index,
        outcome,
        status: Some(200),
        error: None,
        start_offset: Duration::ZERO,
        client_wait: Duration::ZERO,
        time_to_headers: Some(Duration::from_millis(ttft_ms / 2)),
        ttft: ok.then(|| Duration::from_millis(ttft_ms)),
        first_visible_token: ok.then(|| Duration::from_millis(ttft_ms)),
        duration: Duration::from_millis(ttft_ms + 500),
        output_tokens: 10,
        token_source: TokenSource::Usage,
        token_events: 10,
        chunks: 12,
        bytes: 1000,
        itl: if ok {
            vec![Duration::from_millis(20); 9]
        } else {
            vec![]
        },
        tpot: ok.then(|| Duration::from_millis(20)),
        text: None,
        response_model: None,
        system_fingerprint: None,
        input_tokens: None,
        cached_input_tokens: None,
        reasoning_tokens: None,
        usage_mismatch: false,
        connection: None,
        phases: Default::default(),
        retried: false,
        ratelimit: Default::default(),
        provider_request_id: None,
        captured_headers: Vec::new(),
    }
}

fn text(metrics: &Metrics) -> String {
    String::from_utf8(metrics.encode()).expect("exposition is UTF-8")
}

/// The value of the series written exactly as `series` (name and full label set).
fn series_value(exposition: &str, series: &str) -> Option<f64> {
    Exposition::parse(exposition).exact(series)
}

#[test]
fn requests_are_recorded_with_bounded_labels() {
    let targets = targets();
    let alpha = &targets[0];
    let metrics = Metrics::new(&Default::default()).unwrap();
    metrics.declare_target(
        alpha,
        "http://127.0.0.1:9/v1/chat/completions",
        Some(Duration::from_secs(60)),
    );
    metrics.request_started("alpha");
    metrics.request_finished(alpha, &record(1, Outcome::Success, 300));
    metrics.request_started("alpha");
    metrics.request_finished(alpha, &record(2, Outcome::Success, 700));
    metrics.request_started("alpha");
    metrics.request_finished(alpha, &record(3, Outcome::Http5xx, 100));

    let t = text(&metrics);
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_requests_total{outcome="success",target="alpha"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_requests_total{outcome="http_5xx",target="alpha"}"#
        ),
        Some(1.0)
    );
    // Failed requests never give TTFT samples.
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_time_to_first_token_seconds_count{target="alpha"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_time_to_first_token_seconds_bucket{target="alpha",le="0.32"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_inter_token_latency_seconds_count{target="alpha"}"#
        ),
        Some(18.0)
    );
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_output_tokens_total{source="usage",target="alpha"}"#
        ),
        Some(20.0)
    );
    // SLO ttft 500ms: 300ms good, 700ms bad, the failure bad.
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_slo_requests_total{result="good",slo="ttft",target="alpha"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_slo_requests_total{result="bad",slo="ttft",target="alpha"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        series_value(&t, r#"streamprobe_in_flight_requests{target="alpha"}"#),
        Some(0.0)
    );
    assert_eq!(
        series_value(&t, r#"streamprobe_schedule_period_seconds{target="alpha"}"#),
        Some(60.0)
    );
    assert!(t.contains(r#"streamprobe_target_info{endpoint="http://127.0.0.1:9/v1/chat/completions",model="m1",protocol="auto",target="alpha"} 1"#), "{t}");
    assert!(t.contains("streamprobe_build_info{"));
    assert!(
        t.contains("process_"),
        "process metrics are exported unprefixed"
    );
    // Duration buckets are the OpenTelemetry GenAI boundaries.
    assert!(t.contains(r#"streamprobe_request_duration_seconds_bucket{outcome="success",target="alpha",le="81.92"}"#));
    // No URL query, prompt or error text in any label.
    assert!(!t.contains("key=abc"));
}

#[test]
fn last_burst_gauges_come_from_the_exact_summary() {
    let targets = targets();
    let alpha = &targets[0];
    let metrics = Metrics::new(&Default::default()).unwrap();
    metrics.declare_target(alpha, "e", None);
    let burst = BurstResult {
        burst_id: "b1".into(),
        target: "alpha".into(),
        started_at: SystemTime::now(),
        total_time: Duration::from_secs(3),
        records: vec![
            record(1, Outcome::Success, 100),
            record(2, Outcome::Success, 200),
            record(3, Outcome::Success, 300),
            record(4, Outcome::TimeoutIdle, 50),
        ],
        connection_mode: ConnectionMode::Reused,
        protocol: config::Protocol::OpenAi,
        looks_like: None,
        interrupted: false,
        // 3,000 ticks: p99 2.5 ms, max 9 ms.
        client: ClientLoad {
            lags: std::iter::repeat_n(Duration::from_micros(2500), 2999)
                .chain([Duration::from_millis(9)])
                .collect(),
            cpu: Some(Duration::from_millis(400)),
        },
    };
    let summary = BurstSummary::from_burst(&burst);
    metrics.burst_finished(&burst, &summary);
    let t = text(&metrics);
    let p50 = series_value(
        &t,
        r#"streamprobe_last_burst_ttft_seconds{quantile="0.5",target="alpha"}"#,
    )
    .unwrap();
    assert!((p50 - 0.2).abs() < 1e-9, "{p50}");
    let p90 = series_value(
        &t,
        r#"streamprobe_last_burst_ttft_seconds{quantile="0.9",target="alpha"}"#,
    )
    .unwrap();
    assert!((p90 - 0.28).abs() < 1e-9, "{p90}");
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_last_burst_success_ratio{target="alpha"}"#
        ),
        Some(0.75)
    );
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_bursts_total{result="partial",target="alpha"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_bursts_total{result="success",target="alpha"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        series_value(&t, r#"streamprobe_burst_duration_seconds{target="alpha"}"#),
        Some(3.0)
    );
    // The client's own lag p99 (issue 13, item 4); gone with a burst that measured none, and
    // with the target.
    assert_eq!(
        series_value(&t, r#"streamprobe_client_lag_seconds{target="alpha"}"#),
        Some(0.0025)
    );
    let unmeasured = BurstResult {
        client: ClientLoad::default(),
        ..burst.clone()
    };
    metrics.burst_finished(&unmeasured, &BurstSummary::from_burst(&unmeasured));
    assert!(!text(&metrics).contains("streamprobe_client_lag_seconds{"));
    metrics.burst_finished(&burst, &summary);
    assert!(text(&metrics).contains("streamprobe_client_lag_seconds{"));
    metrics.remove_target("alpha");
    assert!(!text(&metrics).contains("streamprobe_client_lag_seconds{"));
}

#[test]
fn removing_a_target_deletes_its_series_and_keeps_the_others() {
    let targets = targets();
    let metrics = Metrics::new(&Default::default()).unwrap();
    for t in &targets {
        metrics.declare_target(t, "e", Some(Duration::from_secs(10)));
        metrics.request_started(&t.name);
        metrics.request_finished(t, &record(1, Outcome::Success, 100));
        metrics.burst_skipped(&t.name, Skip::Overlap);
    }
    metrics.remove_target("alpha");
    let t = text(&metrics);
    assert!(!t.contains(r#"target="alpha""#), "{t}");
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_time_to_first_token_seconds_count{target="beta"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        series_value(
            &t,
            r#"streamprobe_bursts_skipped_total{reason="overlap",target="beta"}"#
        ),
        Some(1.0)
    );
}

/// The verdict families: baseline quantiles and change ratios per metric, and a state set with
/// exactly one 1 per target and metric that follows the verdict and leaves with the target.
#[test]
fn verdict_gauges_are_a_state_set_and_leave_with_their_target() {
    let metrics = Metrics::new(&Default::default()).unwrap();
    let settings = VerdictSettings {
        baseline: Duration::from_secs(3600),
        recent: Duration::from_secs(600),
        min_samples: 30,
        ..VerdictSettings::default()
    };
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut windows = Windows::new(settings);
    let burst = |ttft: f64| BurstSamples {
        ttft: (0..40).map(|i| ttft + i as f64 * 0.001).collect(),
        tpot: (0..40).map(|i| 0.02 + i as f64 * 0.0001).collect(),
    };
    let state = |t: &str, metric: &str| -> Vec<(String, f64)> {
        [
            "regressed",
            "improved",
            "no_change",
            "inconclusive",
            "insufficient_data",
        ]
        .iter()
        .filter_map(|v| {
            let series =
                format!(r#"streamprobe_verdict{{metric="{metric}",target="{t}",verdict="{v}"}}"#);
            series_value(&text(&metrics), &series).map(|x| (v.to_string(), x))
        })
        .collect()
    };
    metrics.set_verdict("alpha", &windows.judge(t0));
    metrics.set_verdict("beta", &windows.judge(t0));
    let ones = |t: &str, m: &str| {
        let s = state(t, m);
        assert_eq!(s.len(), 5, "{s:?}");
        s.into_iter()
            .filter(|(_, x)| *x == 1.0)
            .map(|(v, _)| v)
            .collect::<Vec<_>>()
    };
    assert_eq!(ones("alpha", "ttft"), ["insufficient_data"]);
    assert_eq!(ones("alpha", "tpot"), ["insufficient_data"]);
    // No baseline yet: no quantile series.
    assert!(!text(&metrics).contains("streamprobe_baseline_seconds{"));
    for minute in 0..60u64 {
        let ttft = if minute < 50 { 0.2 } else { 0.3 };
        windows.record(t0 + Duration::from_secs(60 * minute), &burst(ttft));
    }
    metrics.set_verdict("alpha", &windows.judge(t0 + Duration::from_secs(3599)));
    assert_eq!(ones("alpha", "ttft"), ["regressed"]);
    let t = text(&metrics);
    let baseline = series_value(
        &t,
        r#"streamprobe_baseline_seconds{metric="ttft",quantile="0.5",target="alpha"}"#,
    )
    .unwrap();
    assert!((0.2..0.25).contains(&baseline), "{baseline}");
    let ratio = series_value(
        &t,
        r#"streamprobe_change_ratio{metric="ttft",quantile="0.9",target="alpha"}"#,
    )
    .unwrap();
    assert!((1.3..1.6).contains(&ratio), "{ratio}");
    metrics.remove_target("alpha");
    let t = text(&metrics);
    assert!(!t.contains(r#"target="alpha""#), "{t}");
    assert_eq!(ones("beta", "ttft"), ["insufficient_data"]);
}

/// A successful request whose server named `model` (and `fingerprint`) and reported token
/// details.
fn identified(model: &str, fingerprint: Option<&str>) -> RequestRecord {
    RequestRecord {
        response_model: Some(model.to_owned()),
        system_fingerprint: fingerprint.map(str::to_owned),
        input_tokens: Some(100),
        cached_input_tokens: Some(64),
        reasoning_tokens: Some(7),
        ..record(1, Outcome::Success, 300)
    }
}

#[test]
fn token_details_and_first_visible_token_are_recorded() {
    let targets = targets();
    let (alpha, beta) = (&targets[0], &targets[1]);
    let metrics = Metrics::new(&Default::default()).unwrap();
    metrics.declare_target(alpha, "e", None);
    metrics.declare_target(beta, "e", None);
    let e = Exposition::parse(&text(&metrics));
    for name in [
        "streamprobe_input_tokens_total",
        "streamprobe_cached_input_tokens_total",
        "streamprobe_reasoning_tokens_total",
        "streamprobe_response_model_changes_total",
    ] {
        assert_eq!(
            e.get(name, &[("target", "alpha")]),
            Some(0.0),
            "{name} exists at 0"
        );
    }
    for r in [
        identified("m", None),
        identified("m", None),
        // Failed: its tokens are not counted (like output tokens).
        RequestRecord {
            outcome: Outcome::Http5xx,
            ..identified("m", None)
        },
        // The server reported no details.
        record(4, Outcome::Success, 500),
    ] {
        metrics.request_started("alpha");
        metrics.request_finished(alpha, &r);
    }
    let e = Exposition::parse(&text(&metrics));
    let alpha_only = [("target", "alpha")];
    assert_eq!(
        e.get("streamprobe_input_tokens_total", &alpha_only),
        Some(200.0)
    );
    assert_eq!(
        e.get("streamprobe_cached_input_tokens_total", &alpha_only),
        Some(128.0)
    );
    assert_eq!(
        e.get("streamprobe_reasoning_tokens_total", &alpha_only),
        Some(14.0)
    );
    assert_eq!(
        e.get("streamprobe_input_tokens_total", &[("target", "beta")]),
        Some(0.0)
    );
    // Three successful requests, first visible token at 300, 300 and 500 ms.
    assert_eq!(
        e.get(
            "streamprobe_time_to_first_visible_token_seconds_count",
            &alpha_only
        ),
        Some(3.0)
    );
    assert_eq!(
        e.get(
            "streamprobe_time_to_first_visible_token_seconds_bucket",
            &[("target", "alpha"), ("le", "0.32")]
        ),
        Some(2.0),
        "latency buckets"
    );
}

#[test]
fn response_model_info_keeps_the_latest_combination_and_counts_changes() {
    let targets = targets();
    let (alpha, beta) = (&targets[0], &targets[1]);
    let metrics = Metrics::new(&Default::default()).unwrap();
    metrics.declare_target(alpha, "e", None);
    metrics.declare_target(beta, "e", None);
    let finish = |t: &Target, r: RequestRecord| {
        metrics.request_started(&t.name);
        metrics.request_finished(t, &r);
    };
    let info = |m: &Metrics| -> Vec<(String, String, String, f64)> {
        Exposition::parse(&text(m))
            .series
            .into_iter()
            .filter(|(n, _, _)| n == "streamprobe_response_model_info")
            .map(|(_, l, v)| {
                (
                    l["target"].clone(),
                    l["model"].clone(),
                    l["fingerprint"].clone(),
                    v,
                )
            })
            .collect()
    };
    let changes = |m: &Metrics, target: &str| {
        Exposition::parse(&text(m)).get(
            "streamprobe_response_model_changes_total",
            &[("target", target)],
        )
    };
    let row = |t: &str, m: &str, f: &str| (t.to_owned(), m.to_owned(), f.to_owned(), 1.0);

    // The first sighting is not a change.
    finish(alpha, identified("gpt-4o-2024-08-06", Some("fp_a")));
    assert_eq!(info(&metrics), [row("alpha", "gpt-4o-2024-08-06", "fp_a")]);
    assert_eq!(changes(&metrics, "alpha"), Some(0.0));
    // Repeats, a request that named no fingerprint, and one that named no model: no change.
    finish(alpha, identified("gpt-4o-2024-08-06", Some("fp_a")));
    finish(alpha, identified("gpt-4o-2024-08-06", None));
    finish(alpha, record(5, Outcome::Success, 300));
    assert_eq!(info(&metrics), [row("alpha", "gpt-4o-2024-08-06", "fp_a")]);
    assert_eq!(changes(&metrics, "alpha"), Some(0.0));
    // A new fingerprint, then a new model: each replaces the series and counts once; a
    // failed stream that named its model counts too.
    finish(alpha, identified("gpt-4o-2024-08-06", Some("fp_b")));
    finish(
        alpha,
        RequestRecord {
            outcome: Outcome::Truncated,
            ..identified("gpt-4o-2024-11-20", None)
        },
    );
    assert_eq!(info(&metrics), [row("alpha", "gpt-4o-2024-11-20", "")]);
    assert_eq!(changes(&metrics, "alpha"), Some(2.0));
    // Targets are independent.
    finish(beta, identified("claude-sonnet-4-5", None));
    assert_eq!(changes(&metrics, "beta"), Some(0.0));
    assert_eq!(info(&metrics).len(), 2);

    // Server-named values are bounded.
    let long = "m".repeat(1000);
    finish(beta, identified(&long, Some(&"f".repeat(129))));
    let beta_info: Vec<_> = info(&metrics)
        .into_iter()
        .filter(|r| r.0 == "beta")
        .collect();
    assert_eq!(beta_info.len(), 1);
    assert_eq!(beta_info[0].1.chars().count(), 128);
    assert!(beta_info[0].1.ends_with('…'));
    assert_eq!(beta_info[0].2.chars().count(), 128);
    assert_eq!(changes(&metrics, "beta"), Some(1.0));

    // Removing a target removes its info series and counter.
    metrics.remove_target("alpha");
    let e = Exposition::parse(&text(&metrics));
    assert!(!e.mentions_target("alpha"), "{e:?}");
    assert_eq!(info(&metrics).len(), 1);

    // A restart (a fresh registry) sees its first model without counting a change.
    let restarted = Metrics::new(&Default::default()).unwrap();
    restarted.declare_target(alpha, "e", None);
    restarted.request_started("alpha");
    restarted.request_finished(alpha, &identified("gpt-4o-2024-11-20", None));
    assert_eq!(changes(&restarted, "alpha"), Some(0.0));
    assert_eq!(info(&restarted), [row("alpha", "gpt-4o-2024-11-20", "")]);
}

/// A request with DESIGN §11's diagnostics: a new connection, its phases, a retry and rate
/// limits (`status` decides whether `retry-after` counts).
fn diagnosed(outcome: Outcome, status: u16, remaining: u64) -> RequestRecord {
    let mut ratelimit = RateLimits::default();
    ratelimit.set(
        Resource::Tokens,
        Limit {
            limit: Some(30_000),
            remaining: Some(remaining),
            reset: Some(Duration::from_secs(60)),
        },
    );
    ratelimit.retry_after = Some(Duration::from_secs(7));
    RequestRecord {
        status: Some(status),
        connection: Some(Connection::New),
        phases: Phases {
            resolve: Some(Duration::from_micros(1_500)),
            connect: Some(Duration::from_millis(4)),
            tls: Some(Duration::from_millis(30)),
            headers: Some(Duration::from_millis(200)),
            first_token: Some(Duration::from_millis(65)),
            generation: Some(Duration::from_millis(700)),
        },
        retried: true,
        ratelimit,
        ..record(1, outcome, 300)
    }
}

#[test]
fn phases_connections_retries_and_rate_limits() {
    let targets = targets();
    let (alpha, beta) = (&targets[0], &targets[1]);
    let metrics = Metrics::new(&Default::default()).unwrap();
    metrics.declare_target(alpha, "e", None);
    metrics.declare_target(beta, "e", None);
    let e = Exposition::parse(&text(&metrics));
    for kind in ["new", "reused"] {
        assert_eq!(
            e.get(
                "streamprobe_connections_total",
                &[("target", "alpha"), ("kind", kind)]
            ),
            Some(0.0),
            "{kind} exists at 0"
        );
    }
    assert_eq!(
        e.get(
            "streamprobe_connection_retries_total",
            &[("target", "alpha")]
        ),
        Some(0.0)
    );
    // No provider has spoken yet: no rate-limit series.
    assert_eq!(
        e.get(
            "streamprobe_ratelimit_remaining",
            &[("target", "alpha"), ("resource", "tokens")]
        ),
        None
    );

    for t in [alpha, beta] {
        metrics.request_started(&t.name);
        metrics.request_finished(t, &diagnosed(Outcome::Success, 200, 29_000));
    }
    // A 429 states the lowest remaining and a retry-after; its phases give no samples.
    metrics.request_started("alpha");
    metrics.request_finished(alpha, &diagnosed(Outcome::Http429, 429, 0));
    let mut reused = record(3, Outcome::Success, 100);
    reused.connection = Some(Connection::Reused);
    metrics.request_started("alpha");
    metrics.request_finished(alpha, &reused);

    let e = Exposition::parse(&text(&metrics));
    let alpha_l = [("target", "alpha")];
    assert_eq!(
        e.get(
            "streamprobe_connections_total",
            &[("target", "alpha"), ("kind", "new")]
        ),
        Some(2.0)
    );
    assert_eq!(
        e.get(
            "streamprobe_connections_total",
            &[("target", "alpha"), ("kind", "reused")]
        ),
        Some(1.0)
    );
    assert_eq!(
        e.get("streamprobe_connection_retries_total", &alpha_l),
        Some(2.0)
    );
    for phase in [
        "resolve",
        "connect",
        "tls",
        "headers",
        "first_token",
        "generation",
    ] {
        assert_eq!(
            e.get(
                "streamprobe_phase_seconds_count",
                &[("target", "alpha"), ("phase", phase)]
            ),
            Some(1.0),
            "{phase}: one successful request"
        );
    }
    // Phases below the latency buckets land in their own (1.5 ms ≤ 2.5 ms).
    assert_eq!(
        e.get(
            "streamprobe_phase_seconds_bucket",
            &[("target", "alpha"), ("phase", "resolve"), ("le", "0.0025")]
        ),
        Some(1.0)
    );
    assert_eq!(
        e.get(
            "streamprobe_ratelimit_remaining",
            &[("target", "alpha"), ("resource", "tokens")]
        ),
        Some(0.0)
    );
    assert_eq!(
        e.get(
            "streamprobe_ratelimit_limit",
            &[("target", "alpha"), ("resource", "tokens")]
        ),
        Some(30_000.0)
    );
    assert_eq!(
        e.get(
            "streamprobe_ratelimit_remaining",
            &[("target", "beta"), ("resource", "tokens")]
        ),
        Some(29_000.0)
    );
    assert_eq!(
        e.get(
            "streamprobe_ratelimit_remaining",
            &[("target", "alpha"), ("resource", "requests")]
        ),
        None
    );
    // Only a 429/503 sets retry-after: beta's 200 carried one, it does not count.
    assert_eq!(
        e.get("streamprobe_retry_after_seconds", &alpha_l),
        Some(7.0)
    );
    assert_eq!(
        e.get("streamprobe_retry_after_seconds", &[("target", "beta")]),
        None
    );

    metrics.remove_target("alpha");
    let e = Exposition::parse(&text(&metrics));
    assert!(!e.mentions_target("alpha"));
    assert!(e.mentions_target("beta"));
}

#[test]
fn reload_status_gauges() {
    let metrics = Metrics::new(&Default::default()).unwrap();
    metrics.config_loaded(true);
    let t = text(&metrics);
    assert_eq!(
        series_value(&t, "streamprobe_config_last_reload_successful"),
        Some(1.0)
    );
    let ts = series_value(
        &t,
        "streamprobe_config_last_reload_success_timestamp_seconds",
    )
    .unwrap();
    assert!(ts > 1.7e9);
    metrics.config_loaded(false);
    let t = text(&metrics);
    assert_eq!(
        series_value(&t, "streamprobe_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(
        series_value(
            &t,
            "streamprobe_config_last_reload_success_timestamp_seconds"
        ),
        Some(ts)
    );
}

struct Harness {
    state: ServerState,
    ready: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

fn harness(admin: Option<mpsc::Sender<AdminCommand>>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let board = Arc::new(StatusBoard::new());
    board.upsert(TargetStatus {
        name: "alpha".into(),
        protocol: "openai".into(),
        endpoint: "http://h/v1/chat/completions".into(),
        model: None,
        schedule: "every 5m".into(),
        next_run: None,
        running: false,
        in_flight: 0,
        recent: Default::default(),
        verdict: None,
    });
    board.push_burst(
        "alpha",
        BurstBrief {
            burst_id: "0123456789ab".into(),
            started_at: chrono::Utc::now(),
            duration_seconds: 1.0,
            total: 4,
            success_count: 4,
            failed_count: 0,
            success_ratio: 1.0,
            ttft_p50: Some(0.2),
            ttft_p95: Some(0.3),
            interrupted: false,
            file: Some("20261127T101500Z-0123456789ab.json".into()),
        },
    );
    std::fs::create_dir_all(dir.path().join("alpha")).unwrap();
    std::fs::write(
        dir.path().join("alpha/20261127T101500Z-0123456789ab.json"),
        br#"{"schema_version": 1}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("secret.json"), b"{}").unwrap();
    let ready = Arc::new(AtomicBool::new(false));
    Harness {
        state: ServerState {
            metrics: Arc::new(Metrics::new(&Default::default()).unwrap()),
            board,
            results_dir: Arc::new(std::sync::RwLock::new(dir.path().to_path_buf())),
            admin,
            ready: ready.clone(),
        },
        ready,
        _dir: dir,
    }
}

async fn call(state: &ServerState, method: &str, uri: &str) -> (StatusCode, String, String) {
    let response = router(state.clone())
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let h = harness(None);
    // One task kept alive, so the sampled count has something to see.
    let parked = tokio::spawn(std::future::pending::<()>());
    let (status, content_type, body) = call(&h.state, "GET", "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, CONTENT_TYPE);
    assert!(body.contains("streamprobe_build_info"));
    // Scraped inside the runtime: its alive-task count is sampled.
    let tasks = series_value(&body, "streamprobe_runtime_alive_tasks").unwrap();
    assert!(tasks >= 1.0, "{tasks}");
    parked.abort();
    assert_eq!(call(&h.state, "GET", "/-/healthy").await.0, StatusCode::OK);
    assert_eq!(
        call(&h.state, "GET", "/-/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    h.ready.store(true, Ordering::Release);
    assert_eq!(call(&h.state, "GET", "/-/ready").await.0, StatusCode::OK);
}

#[tokio::test]
async fn admin_api_is_off_unless_enabled() {
    let h = harness(None);
    assert_eq!(
        call(&h.state, "POST", "/-/reload").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&h.state, "POST", "/api/v1/targets/alpha/trigger")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&h.state, "GET", "/-/reload").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn admin_commands_reach_the_daemon() {
    let (tx, mut rx) = mpsc::channel(4);
    let h = harness(Some(tx));
    tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                AdminCommand::Reload(reply) => {
                    let _ = reply.send(Err("test.yaml: targets[0].concurrency: bad".into()));
                }
                AdminCommand::Trigger(name, reply) => {
                    let _ = reply.send(if name == "alpha" {
                        Ok(())
                    } else {
                        Err(streamprobe::server::TriggerError::UnknownTarget)
                    });
                }
            }
        }
    });
    let (status, _, body) = call(&h.state, "POST", "/-/reload").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("targets[0].concurrency"));
    assert_eq!(
        call(&h.state, "POST", "/api/v1/targets/alpha/trigger")
            .await
            .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&h.state, "POST", "/api/v1/targets/nope/trigger")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn api_and_status_page() {
    let h = harness(None);
    let (status, content_type, body) = call(&h.state, "GET", "/api/v1/targets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/json"));
    let targets: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(targets[0]["name"], "alpha");
    assert_eq!(targets[0]["recent"][0]["ttft_p50"], 0.2);

    let (status, _, body) = call(&h.state, "GET", "/api/v1/targets/alpha/bursts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("0123456789ab"));
    assert_eq!(
        call(&h.state, "GET", "/api/v1/targets/nope/bursts").await.0,
        StatusCode::NOT_FOUND
    );

    let (status, _, body) = call(&h.state, "GET", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<svg"), "sparkline");
    assert!(body.contains("/api/v1/results/alpha/20261127T101500Z-0123456789ab.json"));
}

#[tokio::test]
async fn result_files_are_served_without_path_traversal() {
    let h = harness(None);
    let (status, _, body) = call(
        &h.state,
        "GET",
        "/api/v1/results/alpha/20261127T101500Z-0123456789ab.json",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("schema_version"));
    for uri in [
        "/api/v1/results/alpha/..%2Fsecret.json",
        "/api/v1/results/..%2F/secret.json",
        "/api/v1/results/alpha/%2e%2e%2fsecret.json",
        "/api/v1/results/nope/20261127T101500Z-0123456789ab.json",
        "/api/v1/results/alpha/missing.json",
    ] {
        assert_eq!(
            call(&h.state, "GET", uri).await.0,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
}

/// `streamprobe_build_info{revision}` is the commit this test binary was built from (build.rs
/// runs git), so a build from a checkout never says "unknown".
#[test]
fn build_info_names_the_git_commit_of_a_checkout() {
    let root = env!("CARGO_MANIFEST_DIR");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success() && Path::new(root).join(".git").exists())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    let expected = std::env::var("STREAMPROBE_REVISION")
        .ok()
        .or(head)
        .unwrap_or_else(|| "unknown".to_owned());
    let metrics = Metrics::new(&Default::default()).unwrap();
    let text = String::from_utf8(metrics.encode()).unwrap();
    let line = format!(
        "streamprobe_build_info{{revision=\"{expected}\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&line), "want {line}");
    if expected != "unknown" {
        assert_eq!(expected.len(), 12, "{expected}");
    }
}

/// A scrape of a large registry must not hold up the runtime it is served on: the daemon's
/// streams share that runtime, and a worker busy encoding is late for every chunk it owes them
/// (inside their TTFT). On a one-thread runtime, a ticker that wants to run every millisecond
/// must not wait for the encoding while a scrape is served.
#[tokio::test(flavor = "current_thread")]
async fn a_large_scrape_does_not_stall_the_runtime() {
    let h = harness(None);
    let template = targets()[0].clone();
    for i in 0..300 {
        let mut t = template.clone();
        t.name = format!("t{i}");
        h.state
            .metrics
            .declare_target(&t, "e", Some(Duration::from_secs(10)));
        let records: Vec<RequestRecord> = (0..4)
            .map(|k| record(k, Outcome::Success, 100 + 50 * k))
            .collect();
        for r in &records {
            h.state.metrics.request_started(&t.name);
            h.state.metrics.request_finished(&t, r);
        }
        let burst = BurstResult {
            burst_id: format!("b{i}"),
            target: t.name.clone(),
            started_at: SystemTime::now(),
            total_time: Duration::from_secs(1),
            records,
            connection_mode: ConnectionMode::Reused,
            protocol: config::Protocol::OpenAi,
            looks_like: None,
            interrupted: false,
            client: ClientLoad::default(),
        };
        h.state
            .metrics
            .burst_finished(&burst, &BurstSummary::from_burst(&burst));
    }
    // What the encoding costs when it runs on this thread.
    let started = std::time::Instant::now();
    let inline = h.state.metrics.encode().len();
    let encoding = started.elapsed();
    assert!(
        inline > 1_000_000,
        "the registry is too small to tell: {inline} bytes"
    );

    let scrape = tokio::spawn({
        let state = h.state.clone();
        async move { call(&state, "GET", "/metrics").await }
    });
    let mut worst = Duration::ZERO;
    while !scrape.is_finished() {
        let before = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(1)).await;
        worst = worst.max(before.elapsed());
    }
    let (status, _, body) = scrape.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.len() >= inline, "{} < {inline}", body.len());
    assert!(
        worst < encoding / 2,
        "a 1 ms sleep took {worst:?} while a scrape was served; encoding takes {encoding:?} \
         on this thread: the scrape was encoded on the runtime"
    );
}

/// The exposition encoded on the registry's own thread is the exposition, every time (the
/// thread is started once and reused), and sampled the runtime it was asked from (asked first,
/// before anything else could set the task gauge).
#[tokio::test(flavor = "current_thread")]
async fn the_exposition_encoded_elsewhere_is_the_exposition() {
    let targets = targets();
    let metrics = Arc::new(Metrics::new(&Default::default()).unwrap());
    metrics.declare_target(&targets[0], "e", Some(Duration::from_secs(10)));
    metrics.request_started("alpha");
    metrics.request_finished(&targets[0], &record(1, Outcome::Success, 300));
    let parked = tokio::spawn(std::future::pending::<()>());
    let first = String::from_utf8(metrics.encode_elsewhere(Gzip::No).await).unwrap();
    assert_eq!(
        series_value(&first, "streamprobe_runtime_alive_tasks"),
        Some(1.0)
    );
    // The process_* series (CPU seconds, memory) move between any two scrapes.
    let ours = |text: Vec<u8>| -> String {
        String::from_utf8(text)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("process_"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let here = ours(metrics.encode());
    assert!(here.contains("streamprobe_requests_total"), "{here}");
    for _ in 0..3 {
        assert_eq!(ours(metrics.encode_elsewhere(Gzip::No).await), here);
    }
    let zipped = metrics.encode_elsewhere(Gzip::Yes).await;
    assert!(
        zipped.len() < here.len() / 2,
        "{} of {}",
        zipped.len(),
        here.len()
    );
    assert_eq!(ours(gunzip(&zipped)), here);
    parked.abort();
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out)
        .expect("a gzip stream");
    out
}

/// `/metrics` is gzipped when the scraper accepts it (Prometheus sends `Accept-Encoding: gzip`)
/// and plain otherwise, and says which with `Content-Encoding` and `Vary`.
#[tokio::test]
async fn metrics_are_gzipped_when_the_scraper_accepts_it() {
    let h = harness(None);
    let cases: [(Option<&str>, bool); 9] = [
        (None, false),
        (Some("gzip"), true),
        (Some("deflate, gzip;q=1.0, *;q=0.5"), true),
        (Some("br, GZIP;q=0.5"), true),
        (Some("*"), true),
        (Some("gzip;q=0"), false),
        // gzip's own entry wins over `*`, either way round.
        (Some("gzip;q=0, *"), false),
        (Some("*;q=0, gzip"), true),
        (Some("identity, br"), false),
    ];
    for (accept, gzipped) in cases {
        let mut request = Request::builder().uri("/metrics");
        if let Some(a) = accept {
            request = request.header("accept-encoding", a);
        }
        let response = router(h.state.clone())
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], CONTENT_TYPE);
        assert_eq!(headers["vary"], "accept-encoding");
        let encoding = headers.get("content-encoding").map(|v| v.to_str().unwrap());
        assert_eq!(encoding, gzipped.then_some("gzip"), "{accept:?}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = if gzipped {
            gunzip(&body)
        } else {
            body.to_vec()
        };
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("streamprobe_build_info"),
            "{accept:?}: {text}"
        );
    }
}
