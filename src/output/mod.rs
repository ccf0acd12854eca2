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

/// Seconds at the edge, rounded to microseconds: finer digits are clock noise and only bloat
/// result files. Every duration and rate in a result document goes through this.
pub(crate) fn round6(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1e6).round() / 1e6
    } else {
        x
    }
}
