//! The percentile bootstrap of one side's statistics, and the interval of the relative change
//! between two sides' bootstrap replicates.
//!
//! Speed matters: the daemon re-judges after every burst against a baseline of thousands of
//! samples. Each replicate draws `n` indices into the **sorted** sample and counts how often each
//! is drawn; one pass over the counts then yields every needed order statistic (for p50, p90,
//! p99 with numpy's linear interpolation) and the mean at once. That is O(n) per replicate with
//! no comparisons, and replicates do not depend on the order in which samples arrived. The
//! interval's two tail quantiles come from `select_nth_unstable`, not a sort.
//!
//! Does not: decide verdicts, or know what the samples measure.

use super::Statistic;
use super::rng::SplitMix64;

/// Every statistic's `B` bootstrap replicates for one side, indexed like `Statistic::ALL`.
#[derive(Debug, Clone)]
pub struct Replicates {
    per_statistic: [Vec<f64>; 4],
}

impl Replicates {
    pub fn of(&self, statistic: Statistic) -> &[f64] {
        &self.per_statistic[statistic.index()]
    }
}

/// The ranks a replicate must find, for numpy's linear percentile at `q·(n−1)`.
struct RankPlan {
    /// Distinct 0-based ranks, ascending.
    ranks: Vec<u64>,
    /// Per quantile of `Statistic::QUANTILES`: positions in `ranks` of the lower and upper
    /// neighbour, and the interpolation weight of the upper one.
    quantiles: Vec<(usize, usize, f64)>,
}

impl RankPlan {
    fn new(n: usize) -> RankPlan {
        let mut wanted = Vec::new();
        let mut raw = Vec::new();
        for q in Statistic::QUANTILES.map(|(_, q)| q) {
            // As `stats::percentile`.
            let rank = q * (n - 1) as f64;
            let lo = rank.floor() as u64;
            let hi = rank.ceil() as u64;
            wanted.extend([lo, hi]);
            raw.push((lo, hi, rank - lo as f64));
        }
        wanted.sort_unstable();
        wanted.dedup();
        let at = |r: u64| wanted.binary_search(&r).expect("rank was added above");
        let quantiles = raw
            .into_iter()
            .map(|(lo, hi, frac)| (at(lo), at(hi), frac))
            .collect();
        RankPlan {
            ranks: wanted,
            quantiles,
        }
    }
}

/// `resamples` bootstrap replicates of every statistic of ascending `sorted` (non-empty, fewer
/// than 2³² values), drawn from `rng`.
pub fn resample(sorted: &[f64], resamples: usize, rng: &mut SplitMix64) -> Replicates {
    let n = sorted.len();
    assert!(
        n > 0 && u32::try_from(n).is_ok(),
        "bootstrap of {n} samples"
    );
    let n32 = n as u32;
    let plan = RankPlan::new(n);
    let mut counts = vec![0u32; n];
    let mut found = vec![0.0; plan.ranks.len()];
    let mut out: [Vec<f64>; 4] = std::array::from_fn(|_| Vec::with_capacity(resamples));
    // The hot loops index slices with plain `while` loops and `as` casts: the same machine code
    // as iterators when optimized, but far faster in unoptimized test builds, where iterator
    // adaptors and trait conversions stay function calls.
    let counts: &mut [u32] = &mut counts;
    let pairs = n / 2;
    for _ in 0..resamples {
        // `counts` is all zeros here: the scan below resets what it reads.
        let mut i = 0;
        while i < pairs {
            let (a, b) = rng.two_below(n32);
            counts[a as usize] += 1;
            counts[b as usize] += 1;
            i += 1;
        }
        if n % 2 == 1 {
            counts[rng.two_below(n32).0 as usize] += 1;
        }
        let values = take_statistics(sorted, counts, &plan, &mut found);
        for (slot, v) in out.iter_mut().zip(values) {
            slot.push(v);
        }
    }
    Replicates { per_statistic: out }
}

/// The statistics (in `Statistic::ALL` order) of the multiset holding `counts[j]` copies of
/// `sorted[j]`, leaving `counts` all zeros for the next replicate. With every count 1 this is
/// the sample's own statistics.
fn take_statistics(
    sorted: &[f64],
    counts: &mut [u32],
    plan: &RankPlan,
    found: &mut [f64],
) -> [f64; 4] {
    let ranks: &[u64] = &plan.ranks;
    let mut seen: u64 = 0;
    let mut sum = 0.0;
    let mut next = 0;
    let mut j = 0;
    // No branch on `c == 0`: about a third of the counts are zero at random, and a
    // mispredicted branch costs more than the arithmetic it would skip.
    while j < sorted.len() {
        let c = counts[j];
        counts[j] = 0;
        let x = sorted[j];
        seen += c as u64;
        sum += c as f64 * x;
        // Ranks seen-c ..seen (0-based) of the resample hold x (none when c is 0).
        while next < ranks.len() && ranks[next] < seen {
            found[next] = x;
            next += 1;
        }
        j += 1;
    }
    let quantile = |i: usize| {
        let (lo, hi, frac) = plan.quantiles[i];
        interpolate(found[lo], found[hi], frac)
    };
    // `Statistic::ALL` order: the three quantiles of `Statistic::QUANTILES`, then the mean.
    [quantile(0), quantile(1), quantile(2), sum / seen as f64]
}

/// `a + (b − a)·t`, as `stats::percentile` interpolates.
fn interpolate(a: f64, b: f64, t: f64) -> f64 {
    if a == b { a } else { a + (b - a) * t }
}

/// The two-sided percentile-bootstrap interval of `candidate ÷ baseline − 1` at `confidence`,
/// pairing the sides' independent replicates index by index. `scratch` is reused storage.
pub fn relative_change_interval(
    baseline: &[f64],
    candidate: &[f64],
    confidence: f64,
    scratch: &mut Vec<f64>,
) -> (f64, f64) {
    scratch.clear();
    scratch.extend(
        baseline
            .iter()
            .zip(candidate)
            .map(|(&b, &c)| relative_change(b, c)),
    );
    let tail = (1.0 - confidence) / 2.0;
    (
        quantile_unsorted(scratch, tail),
        quantile_unsorted(scratch, 1.0 - tail),
    )
}

/// `candidate ÷ baseline − 1`; a zero baseline (only possible with degenerate input) gives
/// ±∞ or 0 instead of NaN, so ordering stays total.
pub fn relative_change(baseline: f64, candidate: f64) -> f64 {
    if baseline > 0.0 {
        candidate / baseline - 1.0
    } else if candidate > baseline {
        f64::INFINITY
    } else if candidate < baseline {
        f64::NEG_INFINITY
    } else {
        0.0
    }
}

/// numpy's linear `q`-quantile of `values` in any order, by selection (O(n)); reorders them.
fn quantile_unsorted(values: &mut [f64], q: f64) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let frac = rank - lo as f64;
    let (_, &mut v_lo, right) = values.select_nth_unstable_by(lo, f64::total_cmp);
    if frac == 0.0 || right.is_empty() {
        return v_lo;
    }
    let v_hi = right.iter().copied().fold(f64::INFINITY, f64::min);
    interpolate(v_lo, v_hi, frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::percentile;

    #[test]
    fn counts_of_one_give_the_sample_statistics() {
        for n in [1, 2, 3, 10, 57, 100] {
            let sorted: Vec<f64> = (0..n).map(|i| f64::from(i).powf(1.3) + 0.5).collect();
            let plan = RankPlan::new(sorted.len());
            let mut found = vec![0.0; plan.ranks.len()];
            let mut counts = vec![1; sorted.len()];
            let got = take_statistics(&sorted, &mut counts, &plan, &mut found);
            assert!(counts.iter().all(|&c| c == 0));
            let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
            let want = [
                percentile(&sorted, 0.5),
                percentile(&sorted, 0.9),
                percentile(&sorted, 0.99),
                mean,
            ];
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "n={n}: {got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn counts_are_a_multiset() {
        // {1, 1, 5}: p50 at rank 1 → 1; p99 at rank 1.98 → 1 + (5 − 1)·0.98; mean 7/3.
        let sorted = [1.0, 3.0, 5.0];
        let plan = RankPlan::new(3);
        let mut found = vec![0.0; plan.ranks.len()];
        let got = take_statistics(&sorted, &mut [2, 0, 1], &plan, &mut found);
        assert_eq!(got[Statistic::P50.index()], 1.0);
        assert!((got[Statistic::P99.index()] - 4.92).abs() < 1e-12);
        assert!((got[Statistic::Mean.index()] - 7.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn selection_quantile_equals_the_sorted_one() {
        let mut rng = SplitMix64::new(3);
        let values: Vec<f64> = (0..2001).map(|_| rng.next_f64()).collect();
        let mut sorted = values.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        for q in [0.0, 0.004, 0.025, 0.5, 0.975, 0.9958, 1.0] {
            let mut v = values.clone();
            assert_eq!(
                quantile_unsorted(&mut v, q),
                percentile(&sorted, q),
                "q={q}"
            );
        }
    }

    #[test]
    fn replicates_are_reproducible_and_centred() {
        let sorted: Vec<f64> = (1..=200).map(f64::from).collect();
        let a = resample(&sorted, 2000, &mut SplitMix64::new(11));
        let b = resample(&sorted, 2000, &mut SplitMix64::new(11));
        assert_eq!(a.of(Statistic::P90), b.of(Statistic::P90));
        let mean_of_means = a.of(Statistic::Mean).iter().sum::<f64>() / 2000.0;
        assert!((mean_of_means - 100.5).abs() < 0.5, "{mean_of_means}");
        // The bootstrap standard error of the mean is about σ/√n = 57.7/√200 = 4.1.
        let se = (a
            .of(Statistic::Mean)
            .iter()
            .map(|m| (m - mean_of_means).powi(2))
            .sum::<f64>()
            / 1999.0)
            .sqrt();
        assert!((3.6..4.6).contains(&se), "{se}");
    }

    #[test]
    fn relative_change_never_yields_nan() {
        assert_eq!(relative_change(2.0, 3.0), 0.5);
        assert_eq!(relative_change(0.0, 0.0), 0.0);
        assert_eq!(relative_change(0.0, 1.0), f64::INFINITY);
    }
}
