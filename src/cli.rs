//! Command-line definitions (clap). Flags keep the old script's meaning (`-c`, `-u`, `-n`, `-p`).
//!
//! Does not: load files or validate values beyond their syntax; `app` does that.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "streamprobe",
    version,
    about = "Measure HTTP streaming APIs (LLM SSE, NDJSON, chunked) the way users feel them: \
             TTFT, inter-token latency, duration, tokens/s, errors"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The process's arguments, parsed; on `--help`, `--version` or a usage error clap prints
    /// and exits (code 2 for errors), as `main` wants.
    pub fn from_env() -> Self {
        Cli::parse()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One-shot benchmark: N requests at concurrency C, a report and a JSON result file.
    Run(RunArgs),
    /// Validate a config file, print its targets and their next fire times.
    Check(CheckArgs),
    /// Run the prober daemon: scheduled bursts, Prometheus metrics, result files.
    Serve(ServeArgs),
    /// Serve a simulated streaming API (for the demo, tests and benchmarks).
    Mock(MockArgs),
    /// Start the mock and the daemon on the built-in demo config and print the URLs.
    Demo(DemoArgs),
    /// Did it really change? Compare two result files or directories of them (exit 1 when a
    /// gated row regressed).
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file: YAML targets or the old script's JSON format.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Target URL (overrides the file's, and its protocol unless --protocol is given; alone,
    /// probes this URL, with the default body of the API its path names).
    #[arg(short = 'u', long = "url", value_name = "URL")]
    pub url: Option<String>,
    /// HTTP method, e.g. -X GET to send no body [default: the file's, else POST].
    #[arg(short = 'X', long = "method", value_name = "METHOD")]
    pub method: Option<String>,
    /// Total requests per target [default: 100, or the file's].
    #[arg(short = 'n', long = "requests", value_name = "N")]
    pub requests: Option<u32>,
    /// Requests in flight at once [default: 10, or the file's].
    #[arg(short = 'p', long = "concurrency", value_name = "C")]
    pub concurrency: Option<u32>,
    /// Open-loop Poisson arrivals instead of a closed loop, e.g. "2/s" or "120/m".
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Only these targets of a multi-target file (repeatable).
    #[arg(short = 't', long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Request header 'Name: value' (repeatable; added to the file's).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Request body, or @FILE to read it from a file.
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    pub data: Option<String>,
    /// Stream protocol: auto, openai, openai-completions, openai-responses, anthropic, gemini,
    /// ollama, dify, tgi, sse, ndjson or raw [default: auto, or the file's].
    #[arg(long, value_name = "P")]
    pub protocol: Option<String>,
    /// JSON result file.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "test_results.json"
    )]
    pub output: PathBuf,
    /// Also write a self-contained HTML report with plots (summary, waterfall, TTFT CDF, ITL
    /// histogram, tokens/s); with several targets each gets FILE's name with `.<target>`.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Store each request's streamed text in the result file.
    #[arg(long)]
    pub save_text: bool,
    /// No progress bar and no per-request lines.
    #[arg(long)]
    pub no_progress: bool,
    /// One line per finished request instead of a progress bar.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Config file to validate.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
    /// Treat warnings (e.g. a secret that cannot be resolved here) as errors: exit 2.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
    /// Run only the targets whose name hashes to i modulo n (several instances split a config).
    #[arg(long, value_name = "i/n")]
    pub shard: Option<crate::schedule::Shard>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Another demo config (its targets point at the mock on 127.0.0.1:18080) [default: the
    /// built-in config/demo.yaml, results in ./streamprobe-results].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Protocol served on paths that name none (e.g. `/`).
    #[arg(long, default_value = "openai", value_name = "P")]
    pub protocol: String,
    /// Delay before the first token, e.g. 200ms.
    #[arg(long, default_value = "200ms", value_name = "D")]
    pub ttft: String,
    /// Delay between tokens, e.g. 20ms.
    #[arg(long, default_value = "20ms", value_name = "D")]
    pub itl: String,
    /// Tokens per response.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub tokens: u32,
    /// Random ± fraction applied to each delay, e.g. 0.2.
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    pub jitter: f64,
    /// Do not report usage (clients must count events).
    #[arg(long)]
    pub no_usage: bool,
    /// Injected fault with a probability, e.g. `stall:0.1` (repeatable).
    #[arg(long = "fault", value_name = "F")]
    pub faults: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline: a result file, or a directory of them (all bursts pooled).
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// Candidate: a result file, or a directory of them (all bursts pooled).
    #[arg(value_name = "CANDIDATE")]
    pub candidate: PathBuf,
    /// The target to compare when a directory holds several.
    #[arg(short = 't', long = "target", value_name = "TARGET")]
    pub target: Option<String>,
    /// Metrics to compare: ttft, tpot, itl, duration, errors.
    #[arg(
        long = "metric",
        value_name = "M,...",
        value_delimiter = ',',
        default_value = "ttft,tpot,itl,duration,errors"
    )]
    pub metrics: Vec<String>,
    /// Two-sided error rate of each confidence interval (0.05: 95%).
    #[arg(long, default_value_t = 0.05, value_name = "ALPHA")]
    pub alpha: f64,
    /// Smallest change that counts as a regression, e.g. 5% (percentage points for errors).
    #[arg(long, default_value = "5%", value_name = "P")]
    pub min_change: String,
    /// Fewer samples than this on a side: insufficient_data.
    #[arg(long, default_value_t = 30, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub min_samples: u32,
    /// Rows whose regression fails the command [default: ttft:p50,ttft:p90,errors; `none`].
    #[arg(long, value_name = "ROWS")]
    pub gate: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    pub format: CompareFormat,
    /// Also write a self-contained HTML report: both sides' CDFs per metric and the change
    /// table with verdicts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// How `compare` prints its report.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum CompareFormat {
    #[default]
    Text,
    Json,
    Markdown,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
