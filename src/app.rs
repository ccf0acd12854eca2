//! Composition roots: `run_once`, `check`, `mock`. The only place where config, engine and
//! adapters (progress, report, result file) meet.
//!
//! Does not: parse the command line (`cli`) or choose exit codes (`main`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub mod compare;
mod serve;

pub use serve::{ServeOptions, Shard, endpoint, serve};

use crate::cli::{CheckArgs, DemoArgs, MockArgs, RunArgs};
use crate::config::{self, ConfigError, Target};
use crate::mock::{self, Fault, FaultSpec, MockOptions, MockServer};
use crate::output::progress::{Progress, ProgressMode};
use crate::output::report::{self, ReportContext};
use crate::output::result::ResultDocument;
use crate::output::write::write_atomic;
use crate::probe::{self, BurstOptions, BurstPlan, Client};
use crate::stats::BurstSummary;

/// Why a command could not do its job. `main` maps each to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad configuration or flags: exit 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad command-line usage: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The command ran but could not finish its work (I/O, client setup): exit 1.
    #[error("{0}")]
    Runtime(String),
}

impl AppError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) | AppError::Usage(_) => 2,
            AppError::Runtime(_) => 1,
        }
    }
}

/// What a completed command found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every request succeeded and every configured SLO/assertion held.
    Pass,
    /// Some request failed or an SLO/assertion broke.
    Fail,
}

/// `streamprobe check`: validate and describe. Config errors propagate (exit 2).
pub fn check(args: &CheckArgs) -> Result<Verdict, AppError> {
    let config = config::load(&args.config)?;
    serve::web_security(&config)?;
    print!("{}", config::check_report(&config, chrono::Utc::now()));
    Ok(Verdict::Pass)
}

/// `streamprobe run`: one burst per selected target, a report on stdout, a result file each.
pub async fn run_once(args: &RunArgs) -> Result<Verdict, AppError> {
    let overrides = config::RunOverrides {
        url: args.url.clone(),
        headers: args.headers.clone(),
        body: read_body_flag(args.data.as_deref())?,
        protocol: args.protocol.clone(),
        total_requests: args.requests,
        concurrency: args.concurrency,
        rate: args.rate.clone(),
    };
    let config = match (&args.config, &args.url) {
        (Some(path), _) => config::load_for_run(Some(path), &overrides)?,
        (None, Some(_)) => config::load_for_run(None, &overrides)?,
        (None, None) => {
            return Err(AppError::Usage(
                "nothing to probe: give a config file with -c FILE or a URL with -u URL".into(),
            ));
        }
    };
    let targets = select_targets(&config.targets, &args.targets)?;
    let client = Client::new().map_err(|e| AppError::Runtime(e.to_string()))?;
    let mode = ProgressMode::detect(args.verbose, args.no_progress);

    let mut verdict = Verdict::Pass;
    let several = targets.len() > 1;
    for target in targets {
        let output = if several {
            per_target_path(&args.output, &target.name)
        } else {
            args.output.clone()
        };
        let burst = run_target(&client, target.clone(), mode, args.save_text).await;
        let summary = BurstSummary::from_burst(&burst);
        let document = ResultDocument::new(&target, &burst, &summary, args.save_text);
        write_atomic(&output, &document.to_json())
            .map_err(|e| AppError::Runtime(format!("cannot write {}: {e}", output.display())))?;
        let url = target.display_url();
        let context = ReportContext {
            target: &target.name,
            url: &url,
            protocol: burst.protocol,
            concurrency: target.concurrency.get(),
            total_requests: target.total_requests.get(),
            output_path: Some(&output),
            interrupted: burst.interrupted,
        };
        print!("{}", report::render(&summary, &context));
        if summary.failed_count > 0 || !slo_held(&target, &burst) {
            verdict = Verdict::Fail;
        }
    }
    Ok(verdict)
}

async fn run_target(
    client: &Client,
    target: Arc<Target>,
    mode: ProgressMode,
    keep_text: bool,
) -> probe::BurstResult {
    let plan = BurstPlan::for_target(&target);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut progress = Progress::new(mode, &target.name, plan.total_requests);
    let consumer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            progress.observe(&event);
        }
        progress.finish();
    });
    let options = BurstOptions {
        burst_id: probe::new_burst_id(),
        keep_text,
        limiter: None,
        events: Some(tx),
        cancel: None,
    };
    let burst = probe::run_burst(client, target, &plan, options).await;
    // The sender went with `options`; the consumer drains and finishes.
    let _ = consumer.await;
    burst
}

fn slo_held(target: &Target, burst: &probe::BurstResult) -> bool {
    burst.records.iter().all(|r| {
        crate::stats::slo_good(r, &target.slo)
            .iter()
            .all(|(_, good)| *good)
    })
}

fn select_targets(all: &[Target], names: &[String]) -> Result<Vec<Arc<Target>>, AppError> {
    if names.is_empty() {
        return Ok(all.iter().cloned().map(Arc::new).collect());
    }
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|t| &t.name == name)
                .cloned()
                .map(Arc::new)
                .ok_or_else(|| {
                    let known: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
                    AppError::Usage(format!(
                        "-t {name}: no such target; the file has: {}",
                        known.join(", ")
                    ))
                })
        })
        .collect()
}

/// `test_results.json` + `gpt` → `test_results.gpt.json`.
fn per_target_path(output: &Path, target: &str) -> PathBuf {
    let stem = output.file_stem().map_or_else(
        || "test_results".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    let ext = output
        .extension()
        .map_or_else(|| "json".into(), |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}.{target}.{ext}"))
}

/// `-d BODY` or `-d @file`.
fn read_body_flag(data: Option<&str>) -> Result<Option<String>, AppError> {
    match data {
        None => Ok(None),
        Some(d) => match d.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| AppError::Usage(format!("-d @{path}: cannot read the file: {e}"))),
            None => Ok(Some(d.to_owned())),
        },
    }
}

/// `streamprobe mock`: serve until Ctrl-C.
pub async fn mock(args: &MockArgs) -> Result<Verdict, AppError> {
    let options = mock_options(args)?;
    let server = MockServer::start(args.listen, options)
        .await
        .map_err(|e| AppError::Runtime(format!("cannot listen on {}: {e}", args.listen)))?;
    eprintln!(
        "streamprobe mock listening on http://{} (Ctrl-C to stop)",
        server.local_addr()
    );
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Ok(Verdict::Pass)
}

/// `mock` flags → options; each bad flag names itself.
fn mock_options(args: &MockArgs) -> Result<MockOptions, AppError> {
    let usage = |flag: &str, e: &dyn std::fmt::Display| AppError::Usage(format!("{flag}: {e}"));
    let protocol = config::Protocol::parse(&args.protocol)
        .filter(|p| *p != config::Protocol::Auto)
        .ok_or_else(|| {
            AppError::Usage(format!(
                "--protocol: unknown protocol {:?}; use one of openai, openai-completions, \
                 openai-responses, anthropic, gemini, ollama, dify, tgi, raw",
                args.protocol
            ))
        })?;
    let faults = args
        .faults
        .iter()
        .map(|f| f.parse::<FaultSpec>().map_err(|e| usage("--fault", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !(0.0..=1.0).contains(&args.jitter) {
        return Err(AppError::Usage(format!(
            "--jitter: must be a fraction between 0 and 1, got {}",
            args.jitter
        )));
    }
    Ok(MockOptions {
        protocol,
        ttft: mock::parse_duration(&args.ttft).map_err(|e| usage("--ttft", &e))?,
        itl: mock::parse_duration(&args.itl).map_err(|e| usage("--itl", &e))?,
        tokens: u64::from(args.tokens),
        jitter: args.jitter,
        usage: !args.no_usage,
        faults,
        ..MockOptions::default()
    })
}

/// Where the demo's mock listens (config/demo.yaml points its targets here).
const DEMO_MOCK_PORT: u16 = 18080;

/// `streamprobe demo`: the mock (OpenAI protocol, realistic jitter, the occasional 429 and
/// stall) and the daemon on the demo config, until Ctrl-C.
pub async fn demo(args: &DemoArgs) -> Result<Verdict, AppError> {
    let options = MockOptions {
        ttft: Duration::from_millis(200),
        itl: Duration::from_millis(20),
        tokens: 60,
        jitter: 0.25,
        faults: [(Fault::TooManyRequests, 0.03), (Fault::Stall, 0.02)]
            .into_iter()
            .filter_map(|(f, p)| FaultSpec::new(f, p))
            .collect(),
        ..MockOptions::default()
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], DEMO_MOCK_PORT));
    let mock = MockServer::start(addr, options)
        .await
        .map_err(|e| AppError::Runtime(format!("cannot start the demo mock on {addr}: {e}")))?;
    let config = config::load(&args.config)?;
    let listen = config.server.listen;
    println!("streamprobe demo");
    println!(
        "  mock API:     http://{}/v1/chat/completions",
        mock.local_addr()
    );
    println!("  status page:  http://{listen}/");
    println!("  metrics:      http://{listen}/metrics");
    println!("  result files: {}", config.results.dir.display());
    println!("  bursts every 15 s; Ctrl-C to stop");
    let verdict = serve(ServeOptions {
        config: args.config.clone(),
        shard: None,
    })
    .await;
    mock.shutdown().await;
    verdict
}
