//! Outputs: the result file document and its atomic writer, the text report, the progress
//! display. Pure serializers of probe/stats values, plus the edges that write them.
// TEMP-STUB
pub mod progress {
    #[derive(Clone, Copy)] pub enum ProgressMode { Bar }
    impl ProgressMode { pub fn detect(_v: bool, _n: bool) -> Self { todo!() } }
    pub struct Progress;
    impl Progress {
        pub fn new(_m: ProgressMode, _t: &str, _n: u64) -> Self { todo!() }
        pub fn observe(&mut self, _e: &crate::probe::BurstEvent) {}
        pub fn finish(&mut self) {}
    }
}
pub mod report {
    pub struct ReportContext { pub target: String, pub url: String, pub protocol: String, pub concurrency: u32, pub total_requests: u64, pub output: String }
    pub fn render(_s: &crate::stats::BurstSummary, _c: &ReportContext) -> String { todo!() }
}
pub mod result {
    #[derive(serde::Serialize)]
    pub struct ResultDocument;
    impl ResultDocument { pub fn new(_t: &crate::config::Target, _b: &crate::probe::BurstResult, _s: &crate::stats::BurstSummary, _i: bool) -> Self { todo!() } }
}
pub mod write {
    pub fn result_path(_d: &std::path::Path, _t: &str, _s: std::time::SystemTime, _b: &str) -> std::path::PathBuf { todo!() }
    pub fn prune(_d: &std::path::Path, _k: u32, _m: std::time::Duration, _n: std::time::SystemTime) -> std::io::Result<usize> { todo!() }
    pub fn write_atomic(_p: &std::path::Path, _b: &[u8]) -> std::io::Result<()> { todo!() }
}
