//! `streamprobe compare BASELINE CANDIDATE`: flags → verdict settings, both sides read from
//! result files, the verdict engine, one report on stdout (and with `--html` a page beside it). Exit 0 when no gated row
//! regressed, 1 when one did (a CI gate), 2 on usage errors and unreadable files.
//!
//! Does not: parse the command line (`cli`), read files itself (`output::read`), judge
//! (`verdict`) or format (`output::compare`).

use crate::cli::{CompareArgs, CompareFormat};
use crate::output::compare::{self, CompareReport};
use crate::output::{html, read, write};
use crate::verdict::{self, Metric, RowKey, Settings};

use super::{AppError, Exit};

/// Runs the comparison and prints the report.
pub fn run(args: &CompareArgs) -> Result<Exit, AppError> {
    let settings = settings(args)?;
    let target = args.target.as_deref();
    // The message already carries its cause (`path: not a result file: …`): flat, not chained.
    let usage = |e: read::ReadError| AppError::usage(e.to_string());
    let baseline = read::read_side(&args.baseline, target).map_err(usage)?;
    let candidate = read::read_side(&args.candidate, target).map_err(usage)?;
    let comparison = verdict::compare(&baseline.samples, &candidate.samples, &settings);
    let report = CompareReport {
        baseline,
        candidate,
        comparison,
    };
    let text = match args.format {
        CompareFormat::Text => compare::render_text(&report),
        CompareFormat::Markdown => compare::render_markdown(&report),
        CompareFormat::Json => compare::render_json(&report),
    };
    if let Some(path) = &args.html {
        if path == std::path::Path::new("-") {
            return Err(AppError::usage(
                "--html -: the report goes to standard output; give the HTML page a file name",
            ));
        }
        let page = html::compare::render_page(&report);
        write::write_output(path, page.as_bytes())
            .map_err(|e| AppError::runtime(format!("cannot write {}", path.display()), e))?;
    }
    print!("{text}");
    Ok(if report.comparison.gate.passed() {
        Exit::Pass
    } else {
        Exit::Fail
    })
}

/// The flags, validated; each bad flag names itself, its value and the fix.
fn settings(args: &CompareArgs) -> Result<Settings, AppError> {
    let usage = AppError::usage;
    let mut metrics = Vec::new();
    let mut errors = false;
    for name in &args.metrics {
        let name = name.trim();
        match (name, Metric::parse(name)) {
            ("errors", _) => errors = true,
            (_, Some(m)) if !metrics.contains(&m) => metrics.push(m),
            (_, Some(_)) => {}
            _ => {
                return Err(usage(format!(
                    "--metric: unknown metric {name:?}; use ttft, tpot, itl, duration or errors"
                )));
            }
        }
    }
    let compared = |key: &RowKey| match key {
        RowKey::Latency(m, _) => metrics.contains(m),
        RowKey::Errors => errors,
    };
    let gate = match args.gate.as_deref().map(str::trim) {
        // The default gate covers what is compared: `--metric tpot` alone has no gate.
        None => RowKey::default_gate()
            .into_iter()
            .filter(compared)
            .collect(),
        Some("none" | "") => Vec::new(),
        Some(list) => {
            let mut gate = Vec::new();
            for part in list.split(',') {
                let key = RowKey::parse(part).map_err(|e| usage(format!("--gate: {e}")))?;
                if !compared(&key) {
                    return Err(usage(format!(
                        "--gate: {key} is not compared; add its metric to --metric or drop it \
                         from --gate"
                    )));
                }
                if !gate.contains(&key) {
                    gate.push(key);
                }
            }
            gate
        }
    };
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return Err(usage(format!(
            "--alpha: must be between 0 and 1 (0.05 gives 95% intervals), got {}",
            args.alpha
        )));
    }
    Ok(Settings {
        alpha: args.alpha,
        min_change: parse_change(&args.min_change)
            .map_err(|e| usage(format!("--min-change: {e}")))?,
        min_samples: args.min_samples as usize,
        metrics,
        errors,
        gate,
        ..Settings::default()
    })
}

/// `5%` or `0.05` → 0.05; the config's `verdict.min_change` reads the same way.
fn parse_change(s: &str) -> Result<f64, String> {
    crate::config::parse_percentage(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings_of(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["streamprobe", "compare", "a.json", "b.json"];
        argv.extend(args);
        let cli = crate::cli::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match cli.command {
            crate::cli::Command::Compare(args) => settings(&args).map_err(|e| e.to_string()),
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_designs() {
        let s = settings_of(&[]).unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn flags_set_the_settings() {
        let s = settings_of(&[
            "--metric",
            "ttft,errors",
            "--alpha",
            "0.1",
            "--min-change",
            "10%",
            "--min-samples",
            "50",
            "--gate",
            "ttft:p99,errors",
        ])
        .unwrap();
        assert_eq!(s.metrics, [Metric::Ttft]);
        assert!(s.errors);
        assert_eq!((s.alpha, s.min_change, s.min_samples), (0.1, 0.1, 50));
        assert_eq!(s.gate.len(), 2);
        assert_eq!(s.gate[0].to_string(), "ttft:p99");
        // The default gate shrinks to what is compared.
        let s = settings_of(&["--metric", "tpot"]).unwrap();
        assert!(s.gate.is_empty() && !s.errors);
        let s = settings_of(&["--gate", "none"]).unwrap();
        assert!(s.gate.is_empty());
    }

    #[test]
    fn bad_flags_name_themselves() {
        for (args, message) in [
            (
                &["--metric", "ttft,latency"][..],
                "--metric: unknown metric \"latency\"; use ttft, tpot, itl, duration or errors",
            ),
            (
                &["--gate", "ttft:p95"],
                "--gate: unknown statistic \"p95\" in \"ttft:p95\"; use p50, p90, p99 or mean",
            ),
            (
                &["--metric", "tpot", "--gate", "ttft:p50"],
                "--gate: ttft:p50 is not compared; add its metric to --metric or drop it from --gate",
            ),
            (
                &["--alpha", "1.5"],
                "--alpha: must be between 0 and 1 (0.05 gives 95% intervals), got 1.5",
            ),
            (
                &["--min-change", "5"],
                "--min-change: 5 is ambiguous; write 5% for a percentage or a fraction like 0.05",
            ),
            (
                &["--min-change", "five"],
                "--min-change: cannot read \"five\"; write a percentage like 5% or a fraction like 0.05",
            ),
        ] {
            assert_eq!(settings_of(args).unwrap_err(), message, "{args:?}");
        }
    }

    #[test]
    fn changes_parse_as_percentages_or_fractions() {
        assert_eq!(parse_change("5%"), Ok(0.05));
        assert_eq!(parse_change(" 2.5 % "), Ok(0.025));
        assert_eq!(parse_change("0.05"), Ok(0.05));
        assert_eq!(parse_change("0"), Ok(0.0));
        assert!(parse_change("-5%").is_err());
    }
}
