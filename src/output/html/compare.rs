//! A comparison in pictures (`compare --html`): both sides' CDFs on one axis for each compared
//! latency metric, and the change table with its confidence intervals and verdicts (coloured
//! badges that also say the verdict in words).
//!
//! Does not: judge (the `Comparison` comes in judged) or read files.

use std::fmt::Write as _;

use super::svg::{self, Frame, Scale, TimeUnit, num};
use super::{Escaped, page, palette, verdict_badge};
use crate::output::compare::{self, CompareReport};
use crate::output::read::{Side, UNNAMED_TARGET};
use crate::verdict::{Metric, RowKey};

/// The whole page.
pub fn render_page(report: &CompareReport) -> String {
    let target = report
        .candidate
        .target
        .as_deref()
        .or(report.baseline.target.as_deref())
        .unwrap_or(UNNAMED_TARGET);
    page(
        &format!("streamprobe compare — {target}"),
        &[],
        None,
        &render_body(report),
    )
}

fn render_body(report: &CompareReport) -> String {
    let c = &report.comparison;
    let mut out = String::with_capacity(32 * 1024);
    out.push_str(
        "<table><tr><th></th><th>source</th><th>target</th><th class=\"n\">files</th>\
         <th class=\"n\">requests</th><th class=\"n\">failed</th></tr>",
    );
    for (name, side, colour) in [
        ("baseline", &report.baseline, palette::BLUE),
        ("candidate", &report.candidate, palette::ORANGE),
    ] {
        let _ = write!(
            out,
            "<tr><th><i style=\"display:inline-block;width:18px;height:3px;\
             background:{colour};vertical-align:middle;margin-right:.4em\"></i>{name}</th>\
             <td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            Escaped(&side.source.display().to_string()),
            Escaped(side.target.as_deref().unwrap_or(UNNAMED_TARGET)),
            side.files,
            side.samples.requests,
            side.samples.failed
        );
    }
    out.push_str("</table>\n");
    let gate = if c.gate.rows.is_empty() {
        "gate: none".to_owned()
    } else if c.gate.passed() {
        format!("gate passed ({} gated rows)", c.gate.rows.len())
    } else {
        let names: Vec<String> = c.gate.regressed.iter().map(RowKey::to_string).collect();
        format!("gate FAILED: regressed {}", names.join(", "))
    };
    let _ = writeln!(
        out,
        "<p>{}<b>{}</b></p>",
        if c.gate.passed() {
            ""
        } else {
            "<span class=\"v v-regressed\">▲</span> "
        },
        Escaped(&gate)
    );

    out.push_str("<h2>Changes</h2>\n");
    out.push_str(
        "<table class=\"changes\"><tr><th>row</th><th class=\"n\">baseline</th>\
         <th class=\"n\">candidate</th><th class=\"n\">change</th><th>CI</th>\
         <th class=\"n\">p</th><th>verdict</th></tr>",
    );
    for row in &c.rows {
        // The text report's cells; the page marks a missing value with a dash of its own.
        let cell = |text: String| {
            if text == "-" {
                "—".to_owned()
            } else {
                Escaped(&text).to_string()
            }
        };
        let (change, ci, p) = (
            cell(compare::change(row)),
            cell(compare::interval(row)),
            cell(compare::p_value(row.p_value)),
        );
        let _ = write!(
            out,
            "<tr><td><code>{}</code>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{change}</td><td>{ci} <small>{:.1}%</small></td>\
             <td class=\"n\">{p}</td><td>{}</td></tr>",
            row.key,
            if row.gated { " *" } else { "" },
            cell(compare::value(row.key, row.baseline)),
            cell(compare::value(row.key, row.candidate)),
            row.confidence * 100.0,
            verdict_badge(row.verdict.as_str())
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">change: candidate ÷ baseline − 1 (errors: difference in percentage \
         points); CI: percentile-bootstrap interval at the level shown ({} resamples, seed {}); \
         * gated rows (Bonferroni-widened); p: Mann–Whitney U (errors: two-proportion z test or Fisher's exact test); min_change {:.0}%, \
         min_samples {}.</p>",
        c.settings.resamples,
        c.settings.seed,
        c.settings.min_change * 100.0,
        c.settings.min_samples
    );

    for metric in &c.settings.metrics {
        let _ = writeln!(out, "<h2>{}</h2>", Escaped(metric.sample_meaning()));
        cdf(&mut out, *metric, &report.baseline, &report.candidate);
    }
    out
}

/// Both sides' CDFs of `metric` on one axis.
fn cdf(out: &mut String, metric: Metric, baseline: &Side, candidate: &Side) {
    let sorted = |side: &Side| {
        let mut v: Vec<f64> = side.samples.of(metric).to_vec();
        v.sort_unstable_by(f64::total_cmp);
        v
    };
    let (b, k) = (sorted(baseline), sorted(candidate));
    let frame = Frame::new(720.0, 300.0);
    frame.open(
        out,
        "compare-cdf",
        &format!(
            " data-metric=\"{}\" data-baseline=\"{}\" data-candidate=\"{}\"",
            metric.as_str(),
            b.len(),
            k.len()
        ),
        &format!("cumulative distributions of {}", metric.as_str()),
    );
    let max = b
        .last()
        .copied()
        .unwrap_or(0.0)
        .max(k.last().copied().unwrap_or(0.0));
    let ((d0, d1), xt) = svg::nice_domain(0.0, if max > 0.0 { max } else { 1.0 }, 8);
    let x = Scale::new((d0, d1), frame.x_range());
    let y = Scale::new((0.0, 1.0), frame.y_range());
    let unit = TimeUnit::for_max(d1);
    let step = xt.get(1).copied().unwrap_or(1.0) - xt[0];
    svg::x_axis(
        out,
        &frame,
        &x,
        &xt,
        |t| unit.label(t, step),
        &format!("{} ({})", metric.as_str(), unit.name()),
    );
    svg::y_axis(
        out,
        &frame,
        &y,
        &[0.0, 0.25, 0.5, 0.75, 1.0],
        |t| format!("{:.0}%", t * 100.0),
        "samples at or below",
    );
    if b.is_empty() && k.is_empty() {
        svg::empty_note(out, &frame, "no samples on either side");
    }
    // Baseline solid blue, candidate dashed orange: the dash tells them apart without colour.
    for (values, colour, dash, name) in [
        (&b, palette::BLUE, "", "baseline"),
        (
            &k,
            palette::ORANGE,
            " stroke-dasharray=\"6 3\"",
            "candidate",
        ),
    ] {
        if values.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<path class=\"{name}\" d=\"{}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"2\"{dash}><title>{name}: {} samples</title></path>",
            svg::cdf_path(values, &x, &y),
            values.len()
        );
    }
    // A small key inside the frame.
    let (x0, _) = frame.x_range();
    let (_, top) = frame.y_range();
    let _ = write!(
        out,
        "<g class=\"key\"><line x1=\"{a}\" x2=\"{b}\" y1=\"{y1}\" y2=\"{y1}\" stroke=\"{}\" \
         stroke-width=\"2\"/><text x=\"{t}\" y=\"{y1}\" dy=\"4\">baseline</text>\
         <line x1=\"{a}\" x2=\"{b}\" y1=\"{y2}\" y2=\"{y2}\" stroke=\"{}\" stroke-width=\"2\" \
         stroke-dasharray=\"6 3\"/><text x=\"{t}\" y=\"{y2}\" dy=\"4\">candidate</text></g>",
        palette::BLUE,
        palette::ORANGE,
        a = num(x0 + 10.0),
        b = num(x0 + 34.0),
        t = num(x0 + 40.0),
        y1 = num(top + 12.0),
        y2 = num(top + 28.0),
    );
    out.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::output::html::assert_no_external_reference;
    use crate::verdict::{self, Samples, Settings};

    fn side(source: &str, scale: f64, n: usize, failed: u64) -> Side {
        let mut samples = Samples::default();
        for i in 0..n {
            let f = 1.0 + (i % 10) as f64 * 0.05;
            samples.push(verdict::RequestSample {
                success: true,
                ttft: Some(0.2 * f * scale),
                tpot: Some(0.02 * f),
                itl_mean: Some(0.021 * f),
                duration: Some(2.0 * f * scale),
            });
        }
        samples.requests += failed;
        samples.failed += failed;
        Side {
            source: PathBuf::from(source),
            target: Some("gpt-4o-mini".into()),
            files: 2,
            samples,
        }
    }

    fn report() -> CompareReport {
        let baseline = side("runs/before", 1.0, 40, 0);
        let candidate = side("runs/after.json", 1.3, 40, 1);
        let settings = Settings {
            metrics: vec![Metric::Ttft, Metric::Duration],
            resamples: 200,
            ..Settings::default()
        };
        let comparison = verdict::compare(&baseline.samples, &candidate.samples, &settings);
        CompareReport {
            baseline,
            candidate,
            comparison,
        }
    }

    #[test]
    fn compare_page() {
        let html = render_page(&report());
        assert_no_external_reference(&html);
        insta::assert_snapshot!(html);
    }

    #[test]
    fn one_cdf_per_compared_metric_with_both_sides() {
        let html = render_page(&report());
        assert_eq!(html.matches("data-plot=\"compare-cdf\"").count(), 2);
        assert!(html.contains("data-metric=\"ttft\" data-baseline=\"40\" data-candidate=\"40\""));
        assert!(html.contains("data-metric=\"duration\""));
        assert_eq!(html.matches("<path class=\"baseline\"").count(), 2);
        assert_eq!(html.matches("<path class=\"candidate\"").count(), 2);
        // A 30% TTFT shift regresses and fails the gate; the badge says so in words.
        assert!(html.contains("<span class=\"v v-regressed\">▲ regressed</span>"));
        assert!(html.contains("gate FAILED: regressed ttft:p50"));
    }
}
