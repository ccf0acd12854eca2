//! Outputs: the result file document and its atomic writer, the text report, the progress
//! display, reading result files back for verdicts, the comparison reports, and the HTML
//! pictures of bursts, comparisons and targets (`html/`). Pure
//! serializers of probe/stats/verdict values, plus the edges that write and read them.
//!
//! Does not: measure, compute statistics (that is `stats`) or verdicts (`verdict`), or decide
//! exit codes.

pub mod compare;
pub mod html;
pub mod progress;
pub mod read;
pub mod report;
pub mod result;
pub mod retained;
pub mod write;

/// A duration for people: milliseconds with one decimal below a second (phases span DNS lookups
/// to long generations), seconds with three above. The report, the comparison tables and the
/// HTML pages all print durations with it, so one value reads the same everywhere.
pub(crate) fn short_duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.3} s")
    }
}

/// Seconds at the edge, rounded to microseconds: finer digits are clock noise and only bloat
/// result files. Every duration and rate in a result document goes through this.
pub(crate) fn round6(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1e6).round() / 1e6
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations_are_milliseconds_below_a_second_and_seconds_above() {
        assert_eq!(short_duration(0.0), "0.0 ms");
        assert_eq!(short_duration(0.000_25), "0.2 ms");
        assert_eq!(short_duration(0.2125), "212.5 ms");
        assert_eq!(short_duration(0.999_9), "999.9 ms");
        assert_eq!(short_duration(1.0), "1.000 s");
        assert_eq!(short_duration(12.345_6), "12.346 s");
    }
}
