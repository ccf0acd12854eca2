//! Monte Carlo checks of the verdict engine itself: how often does the gate fail on lognormal
//! TTFTs with a known shift? At shift 0 that is the false-positive rate, otherwise the power.
//! Shared by the proof test (`tests/verdict_proof.rs`) and `examples/verdict_power.rs`, so the
//! README's table and the test measure the same thing.
//!
//! Does not: touch anything outside memory; every trial is seeded.

use super::rng::{SplitMix64, mix};
use super::{Samples, Settings, compare};

/// One simulated setting: baseline TTFTs lognormal with median `median` and log-sd `sigma`;
/// candidate TTFTs the same scaled by `1 + shift` (every quantile moves by `shift`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    pub n_baseline: usize,
    pub n_candidate: usize,
    pub shift: f64,
    pub sigma: f64,
    /// Seconds.
    pub median: f64,
    pub trials: usize,
    /// Seeds the data; the engine's own seed comes from the settings.
    pub seed: u64,
}

impl Scenario {
    /// DESIGN §10's proof setting: σ = 0.3, median 200 ms, 500 trials.
    pub fn lognormal(n_baseline: usize, n_candidate: usize, shift: f64) -> Scenario {
        Scenario {
            n_baseline,
            n_candidate,
            shift,
            sigma: 0.3,
            median: 0.2,
            trials: 500,
            seed: 2026,
        }
    }
}

/// The fraction of trials in which `settings`' gate fails (some gated row regressed). Only
/// TTFT samples and request counts are simulated (no failures): the other metrics' rows have
/// no data and cannot fail the gate, exactly as the design's A/A and power claims assume.
pub fn gate_failure_rate(scenario: &Scenario, settings: &Settings) -> f64 {
    let mut failed = 0usize;
    for trial in 0..scenario.trials {
        let mut rng = SplitMix64::new(mix(scenario.seed ^ mix(trial as u64)));
        let baseline = side(&mut rng, scenario, scenario.n_baseline, 1.0);
        let candidate = side(
            &mut rng,
            scenario,
            scenario.n_candidate,
            1.0 + scenario.shift,
        );
        if !compare(&baseline, &candidate, settings).gate.passed() {
            failed += 1;
        }
    }
    failed as f64 / scenario.trials.max(1) as f64
}

fn side(rng: &mut SplitMix64, s: &Scenario, n: usize, scale: f64) -> Samples {
    let ln_median = s.median.ln();
    Samples {
        ttft: (0..n)
            .map(|_| (ln_median + s.sigma * rng.standard_normal()).exp() * scale)
            .collect(),
        requests: n as u64,
        ..Samples::default()
    }
}
