//! Renderers of a comparison (`streamprobe compare`): a fixed-width text table, a Markdown
//! table (for pull requests and CI summaries), and a JSON document that follows
//! `schema/compare.schema.json`. All are pure functions of a `CompareReport`, the plain data
//! type any further renderer (the HTML report) takes too.
//!
//! Does not: read files, compute verdicts, print, or choose the exit code.

use std::fmt::Write;

use serde::Serialize;

use crate::output::read::{Side, UNNAMED_TARGET};
use crate::verdict::{Comparison, Metric, ProportionTest, Row, RowKey, Test, Verdict};

/// Bumped when a key of the compare document changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a comparison report shows: both sides as read, and the engine's result.
#[derive(Debug, Clone)]
pub struct CompareReport {
    pub baseline: Side,
    pub candidate: Side,
    pub comparison: Comparison,
}

/// Why ITL rows are not "every gap": said in every format, since it changes what p99 means.
const ITL_NOTE: &str = "itl compares each request's mean inter-token latency: result files keep \
                        itl_mean per request, not every gap";

// ---------------------------------------------------------------------------------------------
// Text

/// The text report. Ends with a newline.
pub fn render_text(report: &CompareReport) -> String {
    let c = &report.comparison;
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(o, "streamprobe compare");
    let _ = writeln!(o, "  baseline:  {}", side_line(&report.baseline));
    let _ = writeln!(o, "  candidate: {}", side_line(&report.candidate));
    let _ = writeln!(o);

    let header = [
        "row",
        "baseline",
        "candidate",
        "change",
        "CI",
        "p",
        "verdict",
    ];
    let mut table: Vec<[String; 7]> = vec![header.map(String::from)];
    for row in &c.rows {
        let key = if row.gated {
            format!("{}*", row.key)
        } else {
            row.key.to_string()
        };
        table.push([
            key,
            value(row.key, row.baseline),
            value(row.key, row.candidate),
            change(row),
            interval(row),
            p_value(row.p_value),
            row.verdict.as_str().to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in &table {
        // Text columns left-aligned, numbers right-aligned.
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            let left = matches!(i, 0 | 4 | 6);
            if i > 0 {
                line.push_str("  ");
            }
            if left {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    let _ = writeln!(o);
    for note in notes(c) {
        let _ = writeln!(o, "{note}");
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "{}", gate_line(c, |k| k.to_string()));
    out
}

fn side_line(side: &Side) -> String {
    let files = if side.files == 1 { "file" } else { "files" };
    format!(
        "{} (target {}, {} {files}, {} requests, {} failed)",
        side.source.display(),
        side.target.as_deref().unwrap_or(UNNAMED_TARGET),
        side.files,
        side.samples.requests,
        side.samples.failed
    )
}

/// A statistic (seconds) or an error ratio; "-" when there are no samples.
/// One cell of the change table (text, markdown and the HTML page): `-` when missing.
pub(crate) fn value(key: RowKey, v: Option<f64>) -> String {
    match (key, v) {
        (_, None) => "-".into(),
        (RowKey::Errors, Some(r)) => format!("{:.1}%", r * 100.0),
        (RowKey::Latency(..), Some(s)) => super::short_duration(s),
    }
}

/// One cell of the change table (text, markdown and the HTML page): `-` when missing.
pub(crate) fn change(row: &Row) -> String {
    match (row.key, row.change) {
        (_, None) => "-".into(),
        (RowKey::Errors, Some(d)) => format!("{:+.1} pp", d * 100.0),
        (RowKey::Latency(..), Some(r)) => percent(r),
    }
}

fn percent(r: f64) -> String {
    if r.is_finite() {
        format!("{:+.1}%", r * 100.0)
    } else {
        "n/a".into()
    }
}

/// One cell of the change table (text, markdown and the HTML page): `-` when missing.
pub(crate) fn interval(row: &Row) -> String {
    match (row.key, row.interval) {
        (_, None) => "-".into(),
        (RowKey::Errors, Some((lo, hi))) => {
            format!("[{:+.1}, {:+.1}] pp", lo * 100.0, hi * 100.0)
        }
        (RowKey::Latency(..), Some((lo, hi))) => format!("[{}, {}]", percent(lo), percent(hi)),
    }
}

/// One cell of the change table (text, markdown and the HTML page): `-` when missing.
pub(crate) fn p_value(p: Option<f64>) -> String {
    match p {
        None => "-".into(),
        Some(p) if p < 0.001 => "<0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

/// The lines under the table: how to read it.
fn notes(c: &Comparison) -> Vec<String> {
    let s = &c.settings;
    let mut notes = vec![format!(
        "CI: {} two-sided percentile-bootstrap interval of the change ({} resamples, seed {})",
        level(1.0 - s.alpha),
        s.resamples,
        s.seed
    )];
    if !c.gate.rows.is_empty() {
        notes.push(format!(
            "  * gated rows: {} (Bonferroni over {} gated rows)",
            level(c.gate.confidence),
            c.gate.rows.len()
        ));
    }
    notes.push(
        "p: Mann-Whitney U, two-sided (normal approximation, tie- and continuity-corrected)".into(),
    );
    if let Some(errors) = c.rows.iter().find(|r| r.key == RowKey::Errors) {
        let test = match errors.test {
            Test::Proportions(ProportionTest::Fisher) => "Fisher's exact test",
            _ => "pooled two-proportion z test",
        };
        notes.push(format!(
            "errors: failure ratio; change and CI in percentage points (Newcombe), p from {test}"
        ));
    }
    notes.push(format!(
        "verdicts: min_change {} (points for errors), min_samples {} per side",
        percent_plain(s.min_change),
        s.min_samples
    ));
    if s.metrics.contains(&Metric::Itl) {
        notes.push(ITL_NOTE.into());
    }
    notes
}

fn level(confidence: f64) -> String {
    let pct = confidence * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{pct:.0}%")
    } else {
        format!("{pct:.1}%")
    }
}

fn percent_plain(x: f64) -> String {
    let pct = x * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{pct:.0}%")
    } else {
        format!("{pct}%")
    }
}

/// `gate (ttft:p50, ttft:p90, errors): failed, regressed: ttft:p50`.
fn gate_line(c: &Comparison, name: impl Fn(&RowKey) -> String) -> String {
    let g = &c.gate;
    if g.rows.is_empty() {
        return "gate: none (no gated row among the compared ones)".into();
    }
    let list = |keys: &[RowKey]| keys.iter().map(&name).collect::<Vec<_>>().join(", ");
    let mut line = format!("gate ({}): ", list(&g.rows));
    if g.passed() {
        line.push_str("passed");
    } else {
        let _ = write!(line, "FAILED, regressed: {}", list(&g.regressed));
    }
    if !g.insufficient.is_empty() {
        let _ = write!(
            line,
            " (not judged, insufficient data: {})",
            list(&g.insufficient)
        );
    }
    line
}

// ---------------------------------------------------------------------------------------------
// Markdown

/// The Markdown report (GitHub-flavoured tables). Ends with a newline.
pub fn render_markdown(report: &CompareReport) -> String {
    let c = &report.comparison;
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(o, "### streamprobe compare\n");
    let _ = writeln!(o, "| | baseline | candidate |");
    let _ = writeln!(o, "|---|---|---|");
    let (b, k) = (&report.baseline, &report.candidate);
    let _ = writeln!(
        o,
        "| source | `{}` | `{}` |",
        b.source.display(),
        k.source.display()
    );
    let target = |s: &Side| s.target.clone().unwrap_or_else(|| UNNAMED_TARGET.into());
    let _ = writeln!(o, "| target | {} | {} |", target(b), target(k));
    let _ = writeln!(o, "| files | {} | {} |", b.files, k.files);
    let _ = writeln!(
        o,
        "| requests (failed) | {} ({}) | {} ({}) |",
        b.samples.requests, b.samples.failed, k.samples.requests, k.samples.failed
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "| row | gated | baseline | candidate | change | CI | p | verdict |"
    );
    let _ = writeln!(o, "|---|:-:|---:|---:|---:|---|---:|---|");
    for row in &c.rows {
        let verdict = match row.verdict {
            Verdict::Regressed | Verdict::Improved => format!("**{}**", row.verdict.as_str()),
            v => v.as_str().to_owned(),
        };
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            row.key,
            if row.gated { "✓" } else { "" },
            value(row.key, row.baseline),
            value(row.key, row.candidate),
            change(row),
            interval(row),
            p_value(row.p_value),
            verdict
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "{}\n", gate_line(c, |k| format!("`{k}`")));
    for note in notes(c) {
        let note = note.trim_start().trim_start_matches("* ");
        let _ = writeln!(o, "- {note}");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// JSON

#[derive(Serialize)]
struct CompareDocument<'a> {
    schema_version: u32,
    tool: Tool,
    baseline: SideDto<'a>,
    candidate: SideDto<'a>,
    settings: SettingsDto,
    rows: Vec<RowDto>,
    gate: GateDto,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct SideDto<'a> {
    source: String,
    /// `null` for the old script's files, which name no target.
    target: Option<&'a str>,
    files: usize,
    requests: u64,
    failed: u64,
}

#[derive(Serialize)]
struct SettingsDto {
    alpha: f64,
    min_change: f64,
    min_samples: usize,
    resamples: usize,
    seed: u64,
    metrics: Vec<&'static str>,
    gate: Vec<String>,
}

#[derive(Serialize)]
struct RowDto {
    row: String,
    metric: &'static str,
    /// `p50`, `p90`, `p99`, `mean`; `ratio` for errors.
    statistic: &'static str,
    gated: bool,
    /// Seconds, or the failure ratio for errors.
    baseline: Option<f64>,
    candidate: Option<f64>,
    n_baseline: u64,
    n_candidate: u64,
    /// `relative` (candidate ÷ baseline − 1) or `difference` (candidate − baseline, errors).
    change_kind: &'static str,
    change: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    confidence: f64,
    p_value: Option<f64>,
    test: &'static str,
    verdict: &'static str,
}

#[derive(Serialize)]
struct GateDto {
    rows: Vec<String>,
    confidence: f64,
    regressed: Vec<String>,
    insufficient_data: Vec<String>,
    passed: bool,
}

/// The JSON document, pretty-printed, with a trailing newline.
pub fn render_json(report: &CompareReport) -> String {
    let c = &report.comparison;
    let s = &c.settings;
    let names = |keys: &[RowKey]| keys.iter().map(RowKey::to_string).collect::<Vec<_>>();
    // Infinite changes (a zero baseline) have no JSON number; they become null.
    let finite = |x: f64| x.is_finite().then_some(x);
    let doc = CompareDocument {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "streamprobe",
            version: env!("CARGO_PKG_VERSION"),
        },
        baseline: side_dto(&report.baseline),
        candidate: side_dto(&report.candidate),
        settings: SettingsDto {
            alpha: s.alpha,
            min_change: s.min_change,
            min_samples: s.min_samples,
            resamples: s.resamples,
            seed: s.seed,
            metrics: s
                .metrics
                .iter()
                .map(|m| m.as_str())
                .chain(s.errors.then_some("errors"))
                .collect(),
            gate: names(&s.gate),
        },
        rows: c
            .rows
            .iter()
            .map(|r| {
                let (metric, statistic, change_kind) = match r.key {
                    RowKey::Latency(m, st) => (m.as_str(), st.as_str(), "relative"),
                    RowKey::Errors => ("errors", "ratio", "difference"),
                };
                RowDto {
                    row: r.key.to_string(),
                    metric,
                    statistic,
                    gated: r.gated,
                    baseline: r.baseline,
                    candidate: r.candidate,
                    n_baseline: r.n_baseline,
                    n_candidate: r.n_candidate,
                    change_kind,
                    change: r.change.and_then(finite),
                    ci_low: r.interval.and_then(|i| finite(i.0)),
                    ci_high: r.interval.and_then(|i| finite(i.1)),
                    confidence: r.confidence,
                    p_value: r.p_value,
                    test: r.test.as_str(),
                    verdict: r.verdict.as_str(),
                }
            })
            .collect(),
        gate: GateDto {
            rows: names(&c.gate.rows),
            confidence: c.gate.confidence,
            regressed: names(&c.gate.regressed),
            insufficient_data: names(&c.gate.insufficient),
            passed: c.gate.passed(),
        },
        notes: s
            .metrics
            .contains(&Metric::Itl)
            .then(|| ITL_NOTE.to_owned())
            .into_iter()
            .collect(),
    };
    // Cannot fail: string keys only, no fallible serializer.
    let mut json = serde_json::to_string_pretty(&doc).expect("compare DTOs always serialize");
    json.push('\n');
    json
}

fn side_dto(side: &Side) -> SideDto<'_> {
    SideDto {
        source: side.source.display().to_string(),
        target: side.target.as_deref(),
        files: side.files,
        requests: side.samples.requests,
        failed: side.samples.failed,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::verdict::{Samples, Settings, Statistic};

    fn side(source: &str, target: Option<&str>, requests: u64, failed: u64) -> Side {
        Side {
            source: PathBuf::from(source),
            target: target.map(String::from),
            files: 2,
            samples: Samples {
                requests,
                failed,
                ..Samples::default()
            },
        }
    }

    fn latency(
        metric: Metric,
        statistic: Statistic,
        gated: bool,
        values: (f64, f64),
        interval: (f64, f64),
        p: f64,
        verdict: Verdict,
    ) -> Row {
        Row {
            key: RowKey::Latency(metric, statistic),
            gated,
            baseline: Some(values.0),
            candidate: Some(values.1),
            n_baseline: 200,
            n_candidate: 100,
            change: Some(values.1 / values.0 - 1.0),
            interval: Some(interval),
            confidence: if gated { 1.0 - 0.05 / 3.0 } else { 0.95 },
            p_value: Some(p),
            test: Test::MannWhitney,
            verdict,
        }
    }

    /// A hand-built comparison: TTFT regressed, TPOT improved, ITL without samples, duration
    /// inconclusive, errors unchanged.
    fn report() -> CompareReport {
        let settings = Settings::default();
        let k = RowKey::Latency;
        let rows = vec![
            latency(
                Metric::Ttft,
                Statistic::P50,
                true,
                (0.2001, 0.2604),
                (0.261, 0.345),
                1.2e-12,
                Verdict::Regressed,
            ),
            latency(
                Metric::Ttft,
                Statistic::P90,
                true,
                (0.2412, 0.3105),
                (0.19, 0.37),
                1.2e-12,
                Verdict::Regressed,
            ),
            latency(
                Metric::Tpot,
                Statistic::Mean,
                false,
                (0.0212, 0.0180),
                (-0.19, -0.11),
                0.0004,
                Verdict::Improved,
            ),
            Row {
                key: k(Metric::Itl, Statistic::P99),
                gated: false,
                baseline: None,
                candidate: None,
                n_baseline: 0,
                n_candidate: 0,
                change: None,
                interval: None,
                confidence: 0.95,
                p_value: None,
                test: Test::MannWhitney,
                verdict: Verdict::InsufficientData,
            },
            latency(
                Metric::Duration,
                Statistic::P99,
                false,
                (2.4561, 2.5893),
                (-0.02, 0.14),
                0.2346,
                Verdict::Inconclusive,
            ),
            Row {
                key: RowKey::Errors,
                gated: true,
                baseline: Some(0.01),
                candidate: Some(0.0),
                n_baseline: 200,
                n_candidate: 100,
                change: Some(-0.01),
                interval: Some((-0.0412, 0.0298)),
                confidence: 1.0 - 0.05 / 3.0,
                p_value: Some(0.5533),
                test: Test::Proportions(ProportionTest::Fisher),
                verdict: Verdict::NoChange,
            },
        ];
        let gate_rows = RowKey::default_gate();
        CompareReport {
            baseline: side("runs/before", Some("gpt-4o-mini"), 200, 2),
            candidate: side("runs/after.json", Some("gpt-4o-mini"), 100, 0),
            comparison: Comparison {
                rows,
                gate: crate::verdict::Gate {
                    rows: gate_rows.clone(),
                    confidence: 1.0 - 0.05 / 3.0,
                    regressed: gate_rows[..2].to_vec(),
                    insufficient: vec![],
                },
                settings,
            },
        }
    }

    #[test]
    fn text_report() {
        insta::assert_snapshot!(render_text(&report()));
    }

    #[test]
    fn markdown_report() {
        insta::assert_snapshot!(render_markdown(&report()));
    }

    #[test]
    fn text_report_of_a_passing_gate_with_unjudged_rows() {
        let mut r = report();
        r.comparison.rows.truncate(1);
        r.comparison.rows[0].verdict = Verdict::InsufficientData;
        r.comparison.rows[0].interval = None;
        r.comparison.rows[0].p_value = None;
        r.comparison.gate.rows.truncate(1);
        r.comparison.gate.regressed.clear();
        r.comparison.gate.insufficient = r.comparison.gate.rows.clone();
        r.comparison.settings.metrics = vec![Metric::Ttft];
        r.comparison.settings.errors = false;
        r.baseline.target = None;
        r.baseline.files = 1;
        let text = render_text(&r);
        assert!(
            text.ends_with("gate (ttft:p50): passed (not judged, insufficient data: ttft:p50)\n"),
            "{text}"
        );
        assert!(text.contains("(target (unnamed), 1 file, 200 requests, 2 failed)"));
        assert!(!text.contains("itl compares"), "no ITL row, no ITL note");
    }

    #[test]
    fn json_keeps_full_precision_and_nulls_infinite_changes() {
        let mut r = report();
        r.comparison.rows[2].change = Some(f64::INFINITY);
        let doc: serde_json::Value = serde_json::from_str(&render_json(&r)).unwrap();
        assert_eq!(doc["rows"][0]["row"], "ttft:p50");
        assert_eq!(doc["rows"][0]["baseline"], 0.2001);
        assert_eq!(doc["rows"][0]["p_value"], 1.2e-12);
        assert_eq!(doc["rows"][2]["change"], serde_json::Value::Null);
        assert_eq!(doc["rows"][5]["statistic"], "ratio");
        assert_eq!(doc["rows"][5]["change_kind"], "difference");
        assert_eq!(doc["rows"][5]["test"], "fisher_exact");
        assert_eq!(doc["gate"]["passed"], false);
        assert_eq!(doc["gate"]["regressed"][1], "ttft:p90");
        assert_eq!(doc["baseline"]["failed"], 2);
    }
}
