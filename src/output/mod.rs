//! Outputs: the result file document and its atomic writer, the text report, the progress
//! display. Pure serializers of probe/stats values, plus the edges that write them.
//!
//! Does not: measure, compute statistics (that is `stats`), or decide exit codes.

pub mod progress;
pub mod report;
pub mod result;
pub mod write;

/// Seconds at the edge, rounded to microseconds: finer digits are clock noise and only bloat
/// result files. Every duration and rate in a result document goes through this.
pub(crate) fn round6(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1e6).round() / 1e6
    } else {
        x
    }
}
