//! Unit tests of the verdict rules on hand-built samples. The statistical calibration (A/A
//! false positives, power) is proven in `tests/verdict_proof.rs`.

use std::time::Duration;

use super::*;
use crate::probe::{Outcome, TokenSource};

/// `n` lognormal-ish values around `median` (deterministic), scaled by `scale`.
fn ttfts(n: usize, median: f64, scale: f64, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| (median.ln() + 0.3 * rng.standard_normal()).exp() * scale)
        .collect()
}

fn side(ttft: Vec<f64>, failed: u64) -> Samples {
    let requests = ttft.len() as u64 + failed;
    Samples {
        ttft,
        requests,
        failed,
        ..Samples::default()
    }
}

fn row(c: &Comparison, key: &str) -> Row {
    let key = RowKey::parse(key).unwrap();
    c.rows.iter().find(|r| r.key == key).cloned().unwrap()
}

#[test]
fn identical_input_gives_identical_output_in_any_order() {
    let base = side(ttfts(300, 0.2, 1.0, 1), 2);
    let cand = side(ttfts(300, 0.2, 1.1, 2), 0);
    let first = compare(&base, &cand, &Settings::default());
    assert_eq!(first, compare(&base, &cand, &Settings::default()));
    let mut shuffled = cand.clone();
    shuffled.ttft.reverse();
    assert_eq!(first, compare(&base, &shuffled, &Settings::default()));
    // Another seed moves the interval a little, not the point estimate.
    let other = compare(
        &base,
        &cand,
        &Settings {
            seed: 99,
            ..Settings::default()
        },
    );
    let (a, b) = (row(&first, "ttft:p50"), row(&other, "ttft:p50"));
    assert_eq!(a.change, b.change);
    assert_ne!(a.interval, b.interval);
}

#[test]
fn a_clear_shift_regresses_and_fails_the_gate() {
    let base = side(ttfts(200, 0.2, 1.0, 1), 0);
    let cand = side(ttfts(200, 0.2, 1.3, 2), 0);
    let c = compare(&base, &cand, &Settings::default());
    let p50 = row(&c, "ttft:p50");
    assert_eq!(p50.verdict, Verdict::Regressed, "{p50:?}");
    assert!(p50.gated);
    let (lo, hi) = p50.interval.unwrap();
    assert!(lo > 0.0 && lo < p50.change.unwrap() && p50.change.unwrap() < hi);
    assert!(p50.p_value.unwrap() < 1e-6);
    assert_eq!(p50.n_baseline, 200);
    assert_eq!(row(&c, "ttft:mean").verdict, Verdict::Regressed);
    assert!(!c.gate.passed());
    assert!(
        c.gate
            .regressed
            .contains(&RowKey::parse("ttft:p50").unwrap())
    );
    // The other metrics have no samples here.
    assert_eq!(row(&c, "tpot:p50").verdict, Verdict::InsufficientData);
    assert_eq!(row(&c, "tpot:p50").baseline, None);
    // No failures on either side: not a regression of errors.
    assert_ne!(row(&c, "errors").verdict, Verdict::Regressed);

    // The mirror image is an improvement, which passes the gate.
    let c = compare(&cand, &base, &Settings::default());
    assert_eq!(row(&c, "ttft:p50").verdict, Verdict::Improved);
    assert!(c.gate.passed());
}

#[test]
fn the_same_distribution_is_no_change_with_enough_samples() {
    let base = side(ttfts(2_000, 0.2, 1.0, 1), 0);
    let cand = side(ttfts(2_000, 0.2, 1.0, 2), 0);
    let c = compare(&base, &cand, &Settings::default());
    for key in ["ttft:p50", "ttft:p90", "ttft:mean"] {
        assert_eq!(row(&c, key).verdict, Verdict::NoChange, "{key}");
    }
    assert!(c.gate.passed());
    // Errors: 0 of 2,000 on both sides bounds any change well within 5 points.
    assert_eq!(row(&c, "errors").verdict, Verdict::NoChange);
}

#[test]
fn a_small_real_shift_below_min_change_is_not_a_regression() {
    // +3% on 20,000 samples: significant, but smaller than min_change.
    let base = side(ttfts(20_000, 0.2, 1.0, 1), 0);
    let cand = side(ttfts(20_000, 0.2, 1.03, 2), 0);
    let settings = Settings {
        metrics: vec![Metric::Ttft],
        resamples: 2_000,
        ..Settings::default()
    };
    let p50 = row(&compare(&base, &cand, &settings), "ttft:p50");
    assert!(p50.interval.unwrap().0 > 0.0, "{p50:?}");
    assert_ne!(p50.verdict, Verdict::Regressed);
}

#[test]
fn too_few_samples_are_insufficient_and_cannot_fail_the_gate() {
    let base = side(ttfts(29, 0.2, 1.0, 1), 0);
    let cand = side(ttfts(100, 0.2, 3.0, 2), 0);
    let c = compare(&base, &cand, &Settings::default());
    let p50 = row(&c, "ttft:p50");
    assert_eq!(p50.verdict, Verdict::InsufficientData);
    assert!(
        p50.change.unwrap() > 1.0,
        "the point estimate is still shown"
    );
    assert_eq!((p50.interval, p50.p_value), (None, None));
    assert_eq!(row(&c, "errors").verdict, Verdict::InsufficientData);
    assert!(c.gate.passed());
    assert_eq!(c.gate.insufficient.len(), 3);
    // min_samples is a setting.
    let c = compare(
        &base,
        &cand,
        &Settings {
            min_samples: 20,
            ..Settings::default()
        },
    );
    assert_eq!(row(&c, "ttft:p50").verdict, Verdict::Regressed);
}

#[test]
fn the_rule_of_the_five_verdicts() {
    let m = 0.05;
    assert_eq!(decide(0.10, (0.02, 0.18), m), Verdict::Regressed);
    // Whole interval above 0 but the change is within min_change: not a regression, and not
    // "no change" either, since the interval reaches past +5%.
    assert_eq!(decide(0.04, (0.01, 0.07), m), Verdict::Inconclusive);
    assert_eq!(decide(0.04, (0.01, 0.05), m), Verdict::NoChange);
    assert_eq!(decide(-0.10, (-0.18, -0.02), m), Verdict::Improved);
    assert_eq!(decide(0.0, (-0.03, 0.04), m), Verdict::NoChange);
    assert_eq!(decide(0.08, (-0.01, 0.17), m), Verdict::Inconclusive);
}

#[test]
fn gated_rows_get_the_bonferroni_interval() {
    let base = side(ttfts(150, 0.2, 1.0, 1), 0);
    let cand = side(ttfts(150, 0.2, 1.1, 2), 0);
    let gated = compare(&base, &cand, &Settings::default());
    let ungated = compare(
        &base,
        &cand,
        &Settings {
            gate: vec![],
            ..Settings::default()
        },
    );
    let (g, u) = (row(&gated, "ttft:p50"), row(&ungated, "ttft:p50"));
    assert!(g.gated && !u.gated);
    assert!((g.confidence - (1.0 - 0.05 / 3.0)).abs() < 1e-12);
    assert!((u.confidence - 0.95).abs() < 1e-12);
    // Same replicates, wider level: the gated interval contains the ungated one.
    let ((glo, ghi), (ulo, uhi)) = (g.interval.unwrap(), u.interval.unwrap());
    assert!(glo < ulo && uhi < ghi, "{g:?} {u:?}");
    assert_eq!(gated.gate.rows.len(), 3);
    assert!(ungated.gate.rows.is_empty() && ungated.gate.passed());
    // An ungated row keeps 95% even when the gate exists.
    assert!((row(&gated, "ttft:p99").confidence - 0.95).abs() < 1e-12);
}

#[test]
fn gate_rows_outside_the_comparison_do_not_count() {
    let base = side(ttfts(100, 0.2, 1.0, 1), 0);
    let settings = Settings {
        metrics: vec![Metric::Tpot],
        errors: false,
        ..Settings::default()
    };
    let c = compare(&base, &base, &settings);
    assert!(c.gate.rows.is_empty());
    assert_eq!(c.rows.len(), 4);
    assert!(c.rows.iter().all(|r| !r.gated));
}

#[test]
fn more_failures_regress_the_errors_row() {
    let base = side(ttfts(100, 0.2, 1.0, 1), 0);
    let cand = side(ttfts(92, 0.2, 1.0, 2), 8);
    let c = compare(&base, &cand, &Settings::default());
    let errors = row(&c, "errors");
    assert_eq!(errors.test, Test::Proportions(ProportionTest::Fisher));
    assert_eq!(errors.verdict, Verdict::Regressed, "{errors:?}");
    assert_eq!(errors.baseline, Some(0.0));
    assert_eq!(errors.candidate, Some(0.08));
    assert!((errors.change.unwrap() - 0.08).abs() < 1e-12);
    assert_eq!((errors.n_baseline, errors.n_candidate), (100, 100));
    assert!(!c.gate.passed());
    assert_eq!(c.gate.regressed, [RowKey::Errors]);
    // One more failure is noise.
    let cand = side(ttfts(99, 0.2, 1.0, 2), 1);
    let errors = row(&compare(&base, &cand, &Settings::default()), "errors");
    assert_ne!(errors.verdict, Verdict::Regressed);
}

#[test]
fn judge_is_one_uncorrected_row() {
    let base = ttfts(2_000, 0.2, 1.0, 1);
    let recent = ttfts(200, 0.2, 1.5, 2);
    let r = judge(
        Metric::Ttft,
        Statistic::P90,
        &base,
        &recent,
        &Settings::default(),
    );
    assert_eq!(r.key, RowKey::Latency(Metric::Ttft, Statistic::P90));
    assert!(!r.gated);
    assert!((r.confidence - 0.95).abs() < 1e-12);
    assert_eq!(r.verdict, Verdict::Regressed);
    // The same row as `compare` computes without a gate.
    let c = compare(
        &side(base, 0),
        &side(recent, 0),
        &Settings {
            gate: vec![],
            ..Settings::default()
        },
    );
    assert_eq!(r, row(&c, "ttft:p90"));
}

#[test]
fn row_keys_parse_and_print() {
    for s in ["ttft:p50", "tpot:p99", "itl:mean", "duration:p90", "errors"] {
        assert_eq!(RowKey::parse(s).unwrap().to_string(), s);
    }
    assert_eq!(
        RowKey::parse("ttft").unwrap_err(),
        r#""ttft" is not a row; write METRIC:STATISTIC (e.g. ttft:p90) or errors"#
    );
    assert_eq!(
        RowKey::parse("latency:p50").unwrap_err(),
        r#"unknown metric "latency" in "latency:p50"; use ttft, tpot, itl or duration"#
    );
    assert_eq!(
        RowKey::parse("ttft:p95").unwrap_err(),
        r#"unknown statistic "p95" in "ttft:p95"; use p50, p90, p99 or mean"#
    );
}

#[test]
fn samples_count_failures_and_keep_only_valid_values() {
    let mut s = Samples::default();
    s.push(RequestSample {
        success: true,
        ttft: Some(0.2),
        tpot: None,
        itl_mean: Some(0.01),
        duration: Some(1.0),
    });
    s.push(RequestSample {
        success: false,
        ttft: Some(0.3),
        duration: Some(2.0),
        ..RequestSample::default()
    });
    s.push(RequestSample {
        success: true,
        ttft: Some(f64::NAN),
        duration: Some(-1.0),
        ..RequestSample::default()
    });
    assert_eq!((s.requests, s.failed), (3, 1));
    assert_eq!(s.ttft, [0.2]);
    assert_eq!(s.itl, [0.01]);
    assert_eq!(s.duration, [1.0]);
    assert!(s.tpot.is_empty());
    let mut pooled = s.clone();
    pooled.append(s);
    assert_eq!(
        (pooled.requests, pooled.failed, pooled.ttft.len()),
        (6, 2, 2)
    );
}

#[test]
fn a_record_reduces_itl_to_its_mean_as_a_result_file_does() {
    let ms = Duration::from_millis;
    let record = RequestRecord {
        index: 1,
        outcome: Outcome::Success,
        status: Some(200),
        error: None,
        start_offset: Duration::ZERO,
        client_wait: Duration::ZERO,
        time_to_headers: Some(ms(100)),
        ttft: Some(ms(200)),
        first_visible_token: Some(ms(200)),
        duration: ms(1000),
        output_tokens: 4,
        token_source: TokenSource::Usage,
        token_events: 4,
        chunks: 5,
        bytes: 100,
        itl: vec![ms(10), ms(20), ms(60)],
        tpot: Some(ms(30)),
        text: None,
        response_model: None,
        system_fingerprint: None,
        input_tokens: None,
        cached_input_tokens: None,
        reasoning_tokens: None,
        usage_mismatch: false,
    };
    let s = RequestSample::from_record(&record);
    assert!(s.success);
    assert!((s.itl_mean.unwrap() - 0.03).abs() < 1e-12);
    assert_eq!(
        (s.ttft, s.tpot, s.duration),
        (Some(0.2), Some(0.03), Some(1.0))
    );
    let failed = RequestSample::from_record(&RequestRecord {
        outcome: Outcome::Http5xx,
        ..record
    });
    assert!(!failed.success);
}

#[test]
fn statistic_order_is_one_convention() {
    // The bootstrap fills replicates in `ALL` order with the quantiles first.
    for (i, s) in Statistic::ALL.into_iter().enumerate() {
        assert_eq!(s.index(), i);
        assert_eq!(
            s.quantile(),
            Statistic::QUANTILES.get(i).map(|&(q_stat, q)| {
                assert_eq!(q_stat, s);
                q
            })
        );
    }
}
