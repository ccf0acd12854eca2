//! The classical tests beside the bootstrap: Mann–Whitney U for two latency distributions,
//! and for error ratios a two-proportion z test (Fisher's exact test when counts are small)
//! with Newcombe's score interval for the difference. Plus the standard normal distribution
//! they need (std has no `erf`). Pure functions of counts and sorted samples.
//!
//! Does not: decide verdicts (see `mod.rs`), or resample.

/// P(Z > z) · 2 for a standard normal Z: the two-sided p-value of |z|.
pub fn two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// The standard normal quantile Φ⁻¹(p), 0 < p < 1 (Acklam's rational approximation, relative
/// error below 1.2·10⁻⁹; plenty for interval widths).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p <= 0.0 {
        f64::NEG_INFINITY
    } else if p >= 1.0 {
        f64::INFINITY
    } else if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - P_LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The complementary error function (Numerical Recipes' Chebyshev fit `erfcc`, fractional
/// error below 1.2·10⁻⁷ everywhere: p-values are shown to two significant digits).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Two-sided Mann–Whitney U test of two **ascending** samples: the normal approximation with
/// the tie correction of the variance and a continuity correction of 0.5 (as SciPy's
/// `mannwhitneyu(method="asymptotic")`). 1 when either side is empty or every value ties.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    // Merge the two sorted samples, giving each run of equal values its mid-rank.
    let (mut i, mut j) = (0, 0);
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0; // Σ (t³ − t) over tie groups
    let mut next_rank = 1.0;
    while i < n1 || j < n2 {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!("loop condition"),
        };
        let from_a = a[i..].iter().take_while(|&&x| x == v).count();
        let from_b = b[j..].iter().take_while(|&&y| y == v).count();
        let t = (from_a + from_b) as f64;
        let mid_rank = next_rank + (t - 1.0) / 2.0;
        rank_sum_a += mid_rank * from_a as f64;
        tie_term += t * t * t - t;
        next_rank += t;
        i += from_a;
        j += from_b;
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let n = n1 + n2;
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / variance.sqrt();
    two_sided_p(z)
}

/// Failures out of requests, one side of an error-ratio comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proportion {
    pub failed: u64,
    pub requests: u64,
}

impl Proportion {
    pub fn ratio(self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failed as f64 / self.requests as f64
        }
    }
}

/// Which test `two_proportion_p` used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProportionTest {
    /// Pooled two-proportion z test (every expected cell count ≥ 5).
    ZTest,
    /// Fisher's exact test, two-sided (some expected cell count < 5).
    Fisher,
}

impl ProportionTest {
    pub fn as_str(self) -> &'static str {
        match self {
            ProportionTest::ZTest => "two_proportion_z",
            ProportionTest::Fisher => "fisher_exact",
        }
    }
}

/// Two-sided p-value for "the two failure ratios differ": the pooled z test when every
/// expected cell of the 2×2 table is at least 5 (the textbook condition for the normal
/// approximation), Fisher's exact test otherwise.
pub fn two_proportion_p(a: Proportion, b: Proportion) -> (f64, ProportionTest) {
    let n = a.requests + b.requests;
    let failed = a.failed + b.failed;
    if a.requests == 0 || b.requests == 0 {
        return (1.0, ProportionTest::Fisher);
    }
    let (nf, pf) = (n as f64, failed as f64);
    let min_expected = [a.requests as f64, b.requests as f64]
        .into_iter()
        .flat_map(|rows| [rows * pf / nf, rows * (nf - pf) / nf])
        .fold(f64::INFINITY, f64::min);
    if min_expected < 5.0 {
        return (fisher_exact(a, b), ProportionTest::Fisher);
    }
    let pooled = pf / nf;
    let se = (pooled * (1.0 - pooled) * (1.0 / a.requests as f64 + 1.0 / b.requests as f64)).sqrt();
    let z = (b.ratio() - a.ratio()) / se;
    (two_sided_p(z), ProportionTest::ZTest)
}

/// Fisher's exact test, two-sided: the probability, under fixed margins, of every table at
/// most as likely as the observed one (R's `fisher.test` convention, with its 10⁻⁷ relative
/// tolerance for ties). Hypergeometric weights come from their successive ratios, so no
/// log-gamma function is needed and nothing overflows.
fn fisher_exact(a: Proportion, b: Proportion) -> f64 {
    let rows = a.requests; // first row total
    let failed = a.failed + b.failed; // first column total
    let n = a.requests + b.requests;
    let lo = failed.saturating_sub(b.requests);
    let hi = failed.min(rows);
    // weight(x+1) / weight(x) for x failures in row a.
    let ratio = |x: u64| -> f64 {
        ((failed - x) as f64 * (rows - x) as f64)
            / ((x + 1) as f64 * (n - failed - rows + x + 1) as f64)
    };
    // Unnormalized weights relative to the support's first point can overflow; start from the
    // mode instead (weight 1) and walk outwards, where weights only shrink.
    let mode =
        (((rows + 1) as f64 * (failed + 1) as f64 / (n + 2) as f64).floor() as u64).clamp(lo, hi);
    let size = (hi - lo + 1) as usize;
    let mut w = vec![0.0; size];
    w[(mode - lo) as usize] = 1.0;
    for x in mode..hi {
        w[(x + 1 - lo) as usize] = w[(x - lo) as usize] * ratio(x);
    }
    for x in (lo..mode).rev() {
        w[(x - lo) as usize] = w[(x + 1 - lo) as usize] / ratio(x);
    }
    let total: f64 = w.iter().sum();
    let observed = w[(a.failed - lo) as usize];
    let p: f64 = w
        .iter()
        .filter(|&&wx| wx <= observed * (1.0 + 1e-7))
        .sum::<f64>()
        / total;
    p.min(1.0)
}

/// Newcombe's hybrid score interval (his method 10) for `b.ratio() − a.ratio()` at the two-sided
/// `confidence`: built from each side's Wilson interval, so it behaves at 0 failures and small
/// counts where the Wald interval collapses to a point.
pub fn difference_interval(a: Proportion, b: Proportion, confidence: f64) -> (f64, f64) {
    let z = normal_quantile(0.5 + confidence / 2.0);
    let (pa, pb) = (a.ratio(), b.ratio());
    let (la, ua) = wilson(a, z);
    let (lb, ub) = wilson(b, z);
    let d = pb - pa;
    let lower = d - ((pb - lb).powi(2) + (ua - pa).powi(2)).sqrt();
    let upper = d + ((ub - pb).powi(2) + (pa - la).powi(2)).sqrt();
    (lower, upper)
}

/// The Wilson score interval of one proportion at normal quantile `z`.
fn wilson(p: Proportion, z: f64) -> (f64, f64) {
    if p.requests == 0 {
        return (0.0, 1.0);
    }
    let n = p.requests as f64;
    let r = p.ratio();
    let z2 = z * z;
    let center = (r + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (r * (1.0 - r) / n + z2 / (4.0 * n * n)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn erfc_matches_known_values() {
        // Reference values: scipy.special.erfc.
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028513),
            (2.0, 0.004677734981047266),
            (4.0, 1.541725790028002e-08),
            (-1.0, 1.8427007929497148),
        ] {
            assert!(close(erfc(x), want, 2e-7), "erfc({x}) = {}", erfc(x));
        }
    }

    #[test]
    fn normal_quantile_matches_known_values() {
        // scipy.stats.norm.ppf
        for (p, want) in [
            (0.975, 1.959963984540054),
            (0.995, 2.5758293035489004),
            (1.0 - 0.05 / 6.0, 2.3939797998185104),
            (0.5, 0.0),
            (0.01, -2.3263478740408408),
            (1e-6, -4.753424308822899),
        ] {
            let got = normal_quantile(p);
            assert!((got - want).abs() < 1e-8, "ppf({p}) = {got}");
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        // scipy.stats.mannwhitneyu([1,2,3,4,5], [6,7,8,9,10], method="asymptotic").pvalue
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [6.0, 7.0, 8.0, 9.0, 10.0];
        assert!(
            close(mann_whitney(&a, &b), 0.012185780355344813, 1e-6),
            "{}",
            mann_whitney(&a, &b)
        );
        // Symmetric in the sides.
        assert_eq!(mann_whitney(&a, &b), mann_whitney(&b, &a));
        // With ties: mannwhitneyu([1,2,2,3,3,3], [2,3,3,4,4,5], method="asymptotic")
        // → U = 7.0, pvalue 0.07840293453326791 (tie-corrected, continuity-corrected).
        let a = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0];
        let b = [2.0, 3.0, 3.0, 4.0, 4.0, 5.0];
        assert!(
            close(mann_whitney(&a, &b), 0.07840293453326791, 1e-6),
            "{}",
            mann_whitney(&a, &b)
        );
        // Identical samples and all-equal values are no evidence at all.
        assert_eq!(mann_whitney(&a, &a), 1.0);
        assert_eq!(mann_whitney(&[2.0; 5], &[2.0; 7]), 1.0);
        assert_eq!(mann_whitney(&[], &b), 1.0);
    }

    #[test]
    fn fisher_exact_matches_scipy() {
        // scipy.stats.fisher_exact([[3, 47], [10, 40]]) → 0.07130815271626866
        let a = Proportion {
            failed: 3,
            requests: 50,
        };
        let b = Proportion {
            failed: 10,
            requests: 50,
        };
        let p = fisher_exact(a, b);
        assert!(close(p, 0.07130815271626866, 1e-9), "{p}");
        // Expected failures 3 per side (< 5): the exact test.
        // scipy.stats.fisher_exact([[0, 100], [6, 94]]) → 0.028930282023157568
        let (p, test) = two_proportion_p(
            Proportion {
                failed: 0,
                requests: 100,
            },
            Proportion {
                failed: 6,
                requests: 100,
            },
        );
        assert_eq!(test, ProportionTest::Fisher);
        assert!(close(p, 0.028930282023157568, 1e-9), "{p}");
        // No failures anywhere: nothing to see.
        let none = Proportion {
            failed: 0,
            requests: 80,
        };
        assert_eq!(two_proportion_p(none, none).0, 1.0);
    }

    #[test]
    fn z_test_for_large_counts() {
        // Pooled z = 2.7211, 2·norm.sf(z) = 0.00650659748363783 (scipy).
        let (p, test) = two_proportion_p(
            Proportion {
                failed: 50,
                requests: 1000,
            },
            Proportion {
                failed: 80,
                requests: 1000,
            },
        );
        assert_eq!(test, ProportionTest::ZTest);
        assert!(close(p, 0.00650659748363783, 1e-6), "{p}");
    }

    #[test]
    fn newcombe_interval_matches_the_paper() {
        // Newcombe (1998), table II, example (a): 56/70 − 48/80, method 10 → 0.0524, 0.3339.
        let a = Proportion {
            failed: 48,
            requests: 80,
        };
        let b = Proportion {
            failed: 56,
            requests: 70,
        };
        let (lo, hi) = difference_interval(a, b, 0.95);
        assert!(
            (lo - 0.0524).abs() < 5e-4 && (hi - 0.3339).abs() < 5e-4,
            "{lo} {hi}"
        );
        // Zero failures on both sides: symmetric, non-degenerate.
        let zero = Proportion {
            failed: 0,
            requests: 100,
        };
        let (lo, hi) = difference_interval(zero, zero, 0.95);
        assert!(lo < 0.0 && hi > 0.0 && (lo + hi).abs() < 1e-12);
    }
}
