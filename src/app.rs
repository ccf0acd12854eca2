//! Composition roots: `run_once`, `check`, `mock`; `serve` and `demo` in their own files. The
//! only place where config, engine and adapters (progress, report, result file) meet.
//!
//! Does not: parse the command line (`cli`) or choose exit codes (`main`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod compare;
mod demo;
mod serve;

pub use demo::demo;
pub use serve::{ServeOptions, serve};

use crate::cli::{CheckArgs, MockArgs, RunArgs};
use crate::config::{self, ConfigError, Target};
use crate::metrics::MetricsError;
use crate::mock::{self, FaultSpec, MockOptions, MockServer};
use crate::output::progress::{Progress, ProgressMode};
use crate::output::report::{self, ReportContext};
use crate::output::result::ResultDocument;
use crate::output::write::write_atomic;
use crate::probe::{self, BurstOptions, BurstPlan, Client, ClientError};
use crate::stats::BurstSummary;

/// Why something failed, kept as an error so `{:#}` prints the whole chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a command could not do its job. `main` maps each to an exit code and prints it with
/// `{:#}`: the message, then each cause after a `: `.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad configuration or flags: exit 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad command-line usage: exit 2.
    #[error(transparent)]
    Usage(Cause),
    /// The command ran but could not finish its work (I/O, client setup): exit 1.
    #[error(transparent)]
    Runtime(Cause),
}

/// What failed (`context`) and why (`source`).
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
struct Failed {
    context: String,
    #[source]
    source: Cause,
}

impl AppError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) | AppError::Usage(_) => 2,
            AppError::Runtime(_) => 1,
        }
    }

    /// Bad usage, said in full.
    pub fn usage(message: impl Into<String>) -> Self {
        AppError::Usage(message.into().into())
    }

    /// Bad usage: `context` says which flag, `cause` why.
    pub fn usage_because(context: impl Into<String>, cause: impl Into<Cause>) -> Self {
        AppError::Usage(Box::new(Failed {
            context: context.into(),
            source: cause.into(),
        }))
    }

    /// A runtime failure: `context` says what failed, `cause` why.
    pub fn runtime(context: impl Into<String>, cause: impl Into<Cause>) -> Self {
        AppError::Runtime(Box::new(Failed {
            context: context.into(),
            source: cause.into(),
        }))
    }
}

impl From<ClientError> for AppError {
    fn from(e: ClientError) -> Self {
        AppError::Runtime(Box::new(e))
    }
}

impl From<MetricsError> for AppError {
    fn from(e: MetricsError) -> Self {
        AppError::Runtime(Box::new(e))
    }
}

/// What a completed command found: `main` exits 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every request succeeded and every configured SLO/assertion held.
    Pass,
    /// Some request failed or an SLO/assertion broke.
    Fail,
}

/// `streamprobe check`: validate and describe. Config errors propagate (exit 2); warnings go
/// to stderr before the report, and fail the check (exit 2) with `--strict`.
pub fn check(args: &CheckArgs) -> Result<Exit, AppError> {
    let checked = config::load_for_check(&args.config, &config::Env::Process)?;
    serve::web_security(&checked.config)?;
    for warning in &checked.warnings {
        eprintln!("warning: {warning}");
    }
    print!(
        "{}",
        config::check_report(&checked.config, chrono::Utc::now())
    );
    let n = checked.warnings.len();
    if args.strict && n > 0 {
        return Err(AppError::Config(ConfigError(format!(
            "{}: {n} warning{} (listed above) with --strict; fix them, or check without --strict",
            args.config.display(),
            if n == 1 { "" } else { "s" }
        ))));
    }
    Ok(Exit::Pass)
}

/// `streamprobe run`: one burst per selected target, a report on stdout, a result file each.
pub async fn run_once(args: &RunArgs) -> Result<Exit, AppError> {
    let overrides = config::RunOverrides {
        url: args.url.clone(),
        method: args.method.clone(),
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
            return Err(AppError::usage(
                "nothing to probe: give a config file with -c FILE or a URL with -u URL",
            ));
        }
    };
    let targets = select_targets(&config.targets, &args.targets)?;
    let client = Client::new()?;
    let mode = ProgressMode::detect(args.verbose, args.no_progress);

    let mut exit = Exit::Pass;
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
            .map_err(|e| AppError::runtime(format!("cannot write {}", output.display()), e))?;
        let url = target.display_url();
        let context = ReportContext {
            target: &target.name,
            url: &url,
            protocol: burst.protocol,
            looks_like: burst.looks_like.as_ref(),
            concurrency: target.concurrency.get(),
            total_requests: target.total_requests.get(),
            rate: target.rate,
            output_path: Some(&output),
            interrupted: burst.interrupted,
        };
        print!("{}", report::render(&summary, &context));
        if summary.failed_count > 0 || !slo_held(&target, &burst) {
            exit = Exit::Fail;
        }
    }
    Ok(exit)
}

async fn run_target(
    client: &Client,
    target: Arc<Target>,
    mode: ProgressMode,
    keep_text: bool,
) -> probe::BurstResult {
    let plan = BurstPlan::for_target(&target);
    let progress = Progress::new(mode, &target.name, plan.total_requests);
    let options = BurstOptions {
        burst_id: probe::new_burst_id(),
        keep_text,
        limiter: None,
        cancel: None,
    };
    probe::run_burst(client, target, &plan, options, progress).await
}

fn slo_held(target: &Target, burst: &probe::BurstResult) -> bool {
    burst.records.iter().all(|r| {
        crate::stats::slo_good(r, &target.slo)
            .into_iter()
            .all(|(_, good)| good)
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
                    AppError::usage(format!(
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
            Some(path) => std::fs::read_to_string(path).map(Some).map_err(|e| {
                AppError::usage_because(format!("-d @{path}: cannot read the file"), e)
            }),
            None => Ok(Some(d.to_owned())),
        },
    }
}

/// `streamprobe mock`: serve until Ctrl-C.
pub async fn mock(args: &MockArgs) -> Result<Exit, AppError> {
    let options = mock_options(args)?;
    let server = MockServer::start(args.listen, options)
        .await
        .map_err(|e| AppError::runtime(format!("cannot listen on {}", args.listen), e))?;
    eprintln!(
        "streamprobe mock listening on http://{} (Ctrl-C to stop)",
        server.local_addr()
    );
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Ok(Exit::Pass)
}

/// `mock` flags → options; each bad flag names itself.
fn mock_options(args: &MockArgs) -> Result<MockOptions, AppError> {
    let usage = |flag: &str, e: mock::MockError| AppError::usage_because(flag, e);
    let protocol = config::Protocol::parse(&args.protocol)
        .filter(|p| *p != config::Protocol::Auto)
        .ok_or_else(|| {
            AppError::usage(format!(
                "--protocol: unknown protocol {:?}; use one of openai, openai-completions, \
                 openai-responses, anthropic, gemini, ollama, dify, tgi, raw",
                args.protocol
            ))
        })?;
    let faults = args
        .faults
        .iter()
        .map(|f| f.parse::<FaultSpec>().map_err(|e| usage("--fault", e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !(0.0..=1.0).contains(&args.jitter) {
        return Err(AppError::usage(format!(
            "--jitter: must be a fraction between 0 and 1, got {}",
            args.jitter
        )));
    }
    Ok(MockOptions {
        protocol,
        ttft: mock::parse_duration(&args.ttft).map_err(|e| usage("--ttft", e))?,
        itl: mock::parse_duration(&args.itl).map_err(|e| usage("--itl", e))?,
        tokens: u64::from(args.tokens),
        jitter: args.jitter,
        usage: !args.no_usage,
        faults,
        ..MockOptions::default()
    })
}
