//! Exact summary statistics over one burst's samples: min, max, mean, median, stdev and
//! percentiles by linear interpolation between closest ranks (numpy's default). Pure.

/// Statistics of one sample set, in seconds (or the sample's unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (n − 1); 0 for one sample.
    pub stdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

// TEMP-STUB (replaced by the stats implementation on merge)
#[derive(Debug, Clone)]
pub struct BurstSummary {
    pub total: u64,
    pub success_count: u64,
    pub failed_count: u64,
    pub ttft: Option<Summary>,
}
impl BurstSummary {
    pub fn from_burst(_b: &crate::probe::BurstResult) -> Self {
        todo!()
    }
}
pub fn slo_good(
    _r: &crate::probe::RequestRecord,
    _s: &crate::config::Slo,
) -> Vec<(&'static str, bool)> {
    todo!()
}
