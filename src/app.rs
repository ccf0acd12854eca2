//! Composition roots: `run_once`, `check`, `mock`; `serve` and `demo` in their own files. The
//! only place where config, engine and adapters (progress, report, result file) meet.
//!
//! Does not: parse the command line (`cli`) or choose exit codes (`main`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

pub mod compare;
mod demo;
pub mod runtime;
mod serve;
pub mod verdicts;

pub use demo::demo;
pub use serve::{ServeOptions, serve};

use crate::cli::{CheckArgs, MockArgs, RunArgs};
use crate::config::{self, ConfigError, Target};
use crate::metrics::MetricsError;
use crate::mock::{self, FaultSpec, MockOptions, MockServer};
use crate::output::html::{self, burst::BurstView};
use crate::output::progress::{Progress, ProgressMode};
use crate::output::report::{self, ReportContext};
use crate::output::result::ResultDocument;
use crate::output::write;
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

/// What a completed command found: `main` exits 0, 1 or 130.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every request succeeded and every configured SLO/assertion held.
    Pass,
    /// Some request failed or an SLO/assertion broke.
    Fail,
    /// Ctrl-C stopped it; what was measured was reported and written.
    Interrupted,
}

/// The exit code of a run stopped by Ctrl-C: 128 + SIGINT, as shells report it.
pub const INTERRUPTED_EXIT_CODE: u8 = 130;

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
    let several = targets.len() > 1;
    let to_stdout = Output::of(&args.output) == Output::Stdout;
    let html_to_stdout = args
        .html
        .as_deref()
        .is_some_and(|p| Output::of(p) == Output::Stdout);
    for (flag, path, stdout) in [
        ("-o", Some(&args.output), to_stdout),
        ("--html", args.html.as_ref(), html_to_stdout),
    ] {
        if let (Some(path), true, true) = (path, several, stdout) {
            return Err(AppError::usage(format!(
                "{flag} {}: {} targets would write {} documents to standard output; select \
                 one with -t NAME or give a file name",
                path.display(),
                targets.len(),
                targets.len()
            )));
        }
    }
    if to_stdout && html_to_stdout {
        return Err(AppError::usage(
            "-o and --html both name standard output; give one of them a file name",
        ));
    }
    let client = Client::new()?;
    let mode = ProgressMode::detect(args.verbose, args.no_progress);
    let (cancel, interrupts) = watch_interrupts()?;

    let mut exit = Exit::Pass;
    for target in targets {
        if *cancel.borrow() {
            break; // Ctrl-C between targets: the rest do not start
        }
        let output = if several {
            per_target_path(&args.output, &target.name, "json")
        } else {
            args.output.clone()
        };
        let burst = run_target(&client, target.clone(), mode, args.save_text, &cancel).await;
        let summary = BurstSummary::from_burst(&burst);
        let document = Arc::new(ResultDocument::new(
            &target,
            &burst,
            &summary,
            args.save_text,
        ));
        let written = write_output(&output, {
            let document = document.clone();
            move |out| document.write_json(out)
        })
        .await?;
        let html = match &args.html {
            Some(path) => {
                let path = if several {
                    per_target_path(path, &target.name, "html")
                } else {
                    path.clone()
                };
                let page = html_report(&document, &burst)?;
                Some((
                    write_output(&path, move |out| out.write_all(page.as_bytes())).await?,
                    path,
                ))
            }
            None => None,
        };
        let url = target.display_url();
        let context = ReportContext {
            target: &target.name,
            url: &url,
            protocol: burst.protocol,
            looks_like: burst.looks_like.as_ref(),
            concurrency: target.concurrency.get(),
            total_requests: target.total_requests.get(),
            rate: target.rate,
            output_path: written.path(&output),
            interrupted: burst.interrupted,
        };
        let mut text = report::render(&summary, &context);
        if let Some((Output::File, path)) = &html {
            text.push_str(&format!("HTML report: {}\n", path.display()));
        }
        // The document (or the HTML page) owns stdout when it goes there, so stdout stays one
        // valid document.
        if written == Output::Stdout || html.as_ref().is_some_and(|(o, _)| *o == Output::Stdout) {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
        if burst.interrupted {
            exit = Exit::Interrupted;
            break;
        }
        if summary.failed_count > 0 || !slo_held(&target, &burst) {
            exit = Exit::Fail;
        }
    }
    interrupts.abort();
    Ok(exit)
}

/// Where `-o` sends the result document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// `-o -`, or a path that is this process's standard output (`/dev/stdout`, `/proc/self/fd/1`).
    Stdout,
    /// A file (through a symlink to its target; FIFOs and devices written in place).
    File,
}

impl Output {
    fn of(path: &Path) -> Output {
        if path == Path::new("-") || write::is_stdout(path) {
            Output::Stdout
        } else {
            Output::File
        }
    }

    /// The path the report names: none for `-`.
    fn path(self, path: &Path) -> Option<&Path> {
        (path != Path::new("-")).then_some(path)
    }
}

/// The `--html` page of one burst: drawn from the document as its file will be read, plus
/// every inter-token gap of the successful requests (the file keeps only their means).
fn html_report(document: &ResultDocument, burst: &probe::BurstResult) -> Result<String, AppError> {
    // Cannot fail for a document this program wrote; if it ever does, the JSON result file is
    // already written and the error says which page is missing.
    let mut view = BurstView::from_document(document)
        .map_err(|e| AppError::runtime("cannot draw the --html report", e))?;
    view.itl_gaps = Some(
        burst
            .records
            .iter()
            .filter(|r| r.outcome.is_success())
            .flat_map(|r| r.itl.iter().map(|d| d.as_secs_f64()))
            .collect(),
    );
    Ok(html::burst::render_page(&view, &[]))
}

/// Writes a document (`-o`'s JSON, `--html`'s page) where `path` points, off the async
/// threads: opening a FIFO waits for its reader.
async fn write_output(
    path: &Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send + 'static,
) -> Result<Output, AppError> {
    let output = Output::of(path);
    let target = path.to_owned();
    let written = tokio::task::spawn_blocking(move || match output {
        Output::Stdout => {
            let mut stdout = std::io::stdout().lock();
            fill(&mut stdout).and_then(|()| stdout.flush())
        }
        Output::File => write::write_output_with(&target, fill),
    })
    .await
    .map_err(|e| AppError::runtime("the result writer failed", e))?;
    written.map_err(|e| AppError::runtime(format!("cannot write {}", path.display()), e))?;
    Ok(output)
}

/// The first Ctrl-C sets the returned flag: no request starts any more, running ones stop and
/// are recorded as interrupted, and the report and result file are written. A second Ctrl-C
/// exits at once. The handler is installed before this returns, so no Ctrl-C is missed.
fn watch_interrupts() -> Result<(watch::Receiver<bool>, tokio::task::JoinHandle<()>), AppError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt())
        .map_err(|e| AppError::runtime("cannot install the Ctrl-C handler", e))?;
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        if sigint.recv().await.is_none() {
            return;
        }
        eprintln!(
            "streamprobe: interrupted; reporting what was measured (Ctrl-C again to quit at once)"
        );
        let _ = tx.send(true);
        if sigint.recv().await.is_some() {
            std::process::exit(i32::from(INTERRUPTED_EXIT_CODE));
        }
    });
    Ok((rx, task))
}

async fn run_target(
    client: &Client,
    target: Arc<Target>,
    mode: ProgressMode,
    keep_text: bool,
    cancel: &watch::Receiver<bool>,
) -> probe::BurstResult {
    let plan = BurstPlan::for_target(&target);
    let progress = Progress::new(mode, &target.name, plan.total_requests);
    let options = BurstOptions {
        burst_id: probe::new_burst_id(),
        keep_text,
        limiter: None,
        cancel: Some(cancel.clone()),
        // One burst at a time: each starts its own probe.
        lag: None,
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

/// `test_results.json` + `gpt` → `test_results.gpt.json`; `default_ext` when the name has
/// no extension.
fn per_target_path(output: &Path, target: &str, default_ext: &str) -> PathBuf {
    let stem = output.file_stem().map_or_else(
        || "test_results".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    let ext = output
        .extension()
        .map_or_else(|| default_ext.into(), |s| s.to_string_lossy().into_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_error_keeps_its_cause_chain_for_main_to_print() {
        let denied = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = AppError::runtime("cannot write out.json", denied);
        assert_eq!(e.exit_code(), 1);
        // What `main` prints after `error: `.
        assert_eq!(
            format!("{:#}", anyhow::Error::from(e)),
            "cannot write out.json: permission denied"
        );
        let e = AppError::usage_because("--rate", "not a rate: \"fast\"");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            format!("{:#}", anyhow::Error::from(e)),
            "--rate: not a rate: \"fast\""
        );
    }
}
