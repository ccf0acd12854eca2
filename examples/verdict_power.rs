//! The verdict engine's false-positive rate and power (DESIGN §10): how often the default gate
//! (`ttft:p50,ttft:p90,errors`, Bonferroni over 3 rows, min_change 5%, min_samples 30) fails
//! when lognormal TTFTs (median 200 ms, σ = 0.3) shift by 0 (A/A: false positives), 5, 10, 20
//! and 50%, for n requests per side. Then the cost of one daemon-style verdict: `judge` on a
//! baseline of 2,000 samples against 200 recent ones.
//!
//! Run: `cargo run --release --example verdict_power [TRIALS]` (default 1,000 trials per cell;
//! fixed seeds, so the table is the same on every run). Prints a Markdown table.
//! Does not: touch files or the network.

use std::hint::black_box;
use std::time::Instant;

use streamprobe::verdict::simulate::{Scenario, gate_failure_rate};
use streamprobe::verdict::{Metric, Settings, SplitMix64, Statistic, judge};

fn main() {
    let trials: usize = match std::env::args().nth(1) {
        None => 1_000,
        Some(arg) => arg.parse().unwrap_or_else(|_| {
            eprintln!("error: TRIALS must be a positive integer, got {arg:?}");
            std::process::exit(2)
        }),
    };
    let shifts = [0.0, 0.05, 0.10, 0.20, 0.50];
    let settings = Settings::default();

    println!(
        "Gate failures in {trials} trials per cell (lognormal TTFT, σ = 0.3; default gate):\n"
    );
    println!("| n per side | A/A (0%) | +5% | +10% | +20% | +50% |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let started = Instant::now();
    for n in [20, 50, 200] {
        let cells: Vec<String> = shifts
            .iter()
            .map(|&shift| {
                let scenario = Scenario {
                    trials,
                    ..Scenario::lognormal(n, n, shift)
                };
                format!("{:.1}%", 100.0 * gate_failure_rate(&scenario, &settings))
            })
            .collect();
        println!("| {n} | {} |", cells.join(" | "));
    }
    eprintln!("(table: {:.1} s)", started.elapsed().as_secs_f64());

    // One verdict as the daemon would compute it after a burst.
    let mut rng = SplitMix64::new(1);
    let mut lognormal = |n: usize, scale: f64| -> Vec<f64> {
        (0..n)
            .map(|_| (0.2f64.ln() + 0.3 * rng.standard_normal()).exp() * scale)
            .collect()
    };
    let baseline = lognormal(2_000, 1.0);
    let recent = lognormal(200, 1.1);
    let runs = 20;
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(judge(
                Metric::Ttft,
                Statistic::P90,
                black_box(&baseline),
                black_box(&recent),
                &settings,
            ));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "\njudge(ttft p90, 2,000 baseline vs 200 recent samples, {} resamples): \
         median {:.2} ms, min {:.2} ms over {runs} runs",
        settings.resamples,
        times[runs / 2],
        times[0]
    );
}
