//! A fixed-size uniform random sample of an unbounded stream of values (reservoir sampling,
//! Vitter's Algorithm R), mergeable: the daemon's baseline per target and metric keeps at most
//! `capacity` values however long its window, and per-period reservoirs merge into one
//! baseline as periods enter and leave the window.
//!
//! **Error.** The reservoir is an exact uniform sample without replacement of everything
//! inserted (or merged), so its quantiles carry only sampling error: by the
//! Dvoretzky–Kiefer–Wolfowitz inequality (which holds for sampling without replacement too), with
//! probability ≥ 1 − δ every quantile of the reservoir lies within ε = √(ln(2/δ) / 2K) in rank
//! of the stream's — for K = 4,096 and δ = 1%, ε = 0.025 (the reservoir's p90 is somewhere
//! between the stream's p87.5 and p92.5); one quantile's rank error has standard deviation
//! √(q(1−q)/K), 0.005 for p90. The verdict bootstraps the reservoir as a sample of K, so this
//! error is already inside its confidence interval: a reservoir costs power, never calibration.
//! Memory: K values (8 bytes each) plus a count, whatever the stream length.
//!
//! Does not: expire values (windows are built by merging per-period reservoirs), or know time.

use super::rng::SplitMix64;

/// A uniform random sample of at most `capacity` of the values seen.
#[derive(Debug, Clone)]
pub struct Reservoir {
    capacity: usize,
    /// Values inserted or merged in, ever.
    seen: u64,
    values: Vec<f64>,
    rng: SplitMix64,
}

impl Reservoir {
    /// An empty reservoir. `seed` makes its choices reproducible; `capacity` ≥ 1.
    pub fn new(capacity: usize, seed: u64) -> Reservoir {
        let capacity = capacity.max(1);
        Reservoir {
            capacity,
            seen: 0,
            values: Vec::with_capacity(capacity.min(1 << 16)),
            rng: SplitMix64::new(seed),
        }
    }

    /// The values kept, in no particular order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Values inserted (and merged in), ever.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Algorithm R: the i-th value replaces a random slot with probability capacity / i.
    pub fn insert(&mut self, value: f64) {
        self.seen += 1;
        if self.values.len() < self.capacity {
            self.values.push(value);
            return;
        }
        let slot = self.rng.below(self.seen);
        if slot < self.capacity as u64 {
            self.values[slot as usize] = value;
        }
    }

    pub fn extend(&mut self, values: impl IntoIterator<Item = f64>) {
        for v in values {
            self.insert(v);
        }
    }

    /// Makes `self` a uniform sample of both streams together, as if every value of `other`'s
    /// stream had been inserted here: the number taken from each side follows the
    /// hypergeometric law of the streams' sizes, and each side contributes a uniform subset of
    /// its own sample. The capacity becomes the smaller of the two (a sample of K values cannot
    /// stand for more than K of its stream's).
    pub fn merge(&mut self, other: &Reservoir) {
        self.capacity = self.capacity.min(other.capacity);
        let total = self.seen + other.seen;
        let keep = (self.capacity as u64).min(total);
        // Draw `keep` of `total` stream positions without replacement, counting how many fall
        // on each side.
        let (mut left_self, mut left_other) = (self.seen, other.seen);
        let mut from_self = 0usize;
        for _ in 0..keep {
            if self.rng.below(left_self + left_other) < left_self {
                left_self -= 1;
                from_self += 1;
            } else {
                left_other -= 1;
            }
        }
        let from_other = keep as usize - from_self;
        let mut merged = self.take_uniform(from_self);
        let mut theirs = other.values.clone();
        merged.extend(partial_shuffle(&mut theirs, from_other, &mut self.rng));
        self.values = merged;
        self.seen = total;
    }

    /// A uniform subset of `k` of this reservoir's values (k ≤ len).
    fn take_uniform(&mut self, k: usize) -> Vec<f64> {
        let mut mine = std::mem::take(&mut self.values);
        partial_shuffle(&mut mine, k, &mut self.rng).to_vec()
    }
}

/// The first `k` positions of a Fisher–Yates shuffle of `values`: a uniform `k`-subset.
/// `k` is clamped to the length (a side's sample holds every value of its stream up to its
/// capacity, so the hypergeometric count never exceeds it when capacities agree).
fn partial_shuffle<'a>(values: &'a mut [f64], k: usize, rng: &mut SplitMix64) -> &'a [f64] {
    let k = k.min(values.len());
    for i in 0..k {
        let j = i + rng.below((values.len() - i) as u64) as usize;
        values.swap(i, j);
    }
    &values[..k]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::percentile;

    fn sorted(r: &Reservoir) -> Vec<f64> {
        let mut v = r.values().to_vec();
        v.sort_unstable_by(f64::total_cmp);
        v
    }

    #[test]
    fn keeps_everything_until_full() {
        let mut r = Reservoir::new(100, 1);
        r.extend((0..60).map(f64::from));
        assert_eq!(r.values().len(), 60);
        assert_eq!(r.seen(), 60);
        assert_eq!(sorted(&r), (0..60).map(f64::from).collect::<Vec<_>>());
    }

    #[test]
    fn stays_bounded_and_uniform_over_a_long_stream() {
        let k = 2_000;
        let mut r = Reservoir::new(k, 7);
        r.extend((0..200_000).map(f64::from));
        assert_eq!(r.values().len(), k);
        assert_eq!(r.seen(), 200_000);
        // DKW with δ = 10⁻⁴: every quantile within ε = √(ln(2·10⁴)/(2·2000)) = 0.0497 in rank.
        let s = sorted(&r);
        for q in [0.1, 0.5, 0.9, 0.99] {
            let rank = percentile(&s, q) / 200_000.0;
            assert!((rank - q).abs() < 0.05, "q={q}: rank {rank}");
        }
        // Early and late values are equally likely to be kept.
        let early = s.iter().filter(|&&x| x < 100_000.0).count();
        assert!((900..1100).contains(&early), "{early}");
    }

    #[test]
    fn merge_weighs_each_side_by_its_stream() {
        // 90,000 values of 1 and 10,000 values of 2 in separate reservoirs.
        let mut a = Reservoir::new(2_000, 1);
        a.extend(std::iter::repeat_n(1.0, 90_000));
        let mut b = Reservoir::new(2_000, 2);
        b.extend(std::iter::repeat_n(2.0, 10_000));
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged.seen(), 100_000);
        assert_eq!(merged.values().len(), 2_000);
        let twos = merged.values().iter().filter(|&&x| x == 2.0).count();
        // Hypergeometric: mean 200, standard deviation ≈ 13.4.
        assert!((150..250).contains(&twos), "{twos}");
        // The other way round gives the same proportions.
        let mut other_way = b.clone();
        other_way.merge(&a);
        let twos = other_way.values().iter().filter(|&&x| x == 2.0).count();
        assert!((150..250).contains(&twos), "{twos}");
    }

    #[test]
    fn merge_of_small_streams_is_their_union() {
        let mut a = Reservoir::new(100, 1);
        a.extend([1.0, 2.0, 3.0]);
        let mut b = Reservoir::new(100, 2);
        b.extend([4.0, 5.0]);
        a.merge(&b);
        assert_eq!(sorted(&a), [1.0, 2.0, 3.0, 4.0, 5.0]);
        // Inserting after a merge continues the same sample.
        a.insert(6.0);
        assert_eq!(a.seen(), 6);
        assert_eq!(a.values().len(), 6);
    }

    #[test]
    fn merge_takes_the_smaller_capacity() {
        let mut a = Reservoir::new(1_000, 1);
        a.extend((0..5_000).map(f64::from));
        let mut b = Reservoir::new(100, 2);
        b.extend((0..5_000).map(f64::from));
        a.merge(&b);
        assert_eq!(a.capacity(), 100);
        assert_eq!(a.values().len(), 100);
    }

    #[test]
    fn same_seed_same_sample() {
        let fill = || {
            let mut r = Reservoir::new(50, 9);
            r.extend((0..10_000).map(f64::from));
            r.values().to_vec()
        };
        assert_eq!(fill(), fill());
    }
}
