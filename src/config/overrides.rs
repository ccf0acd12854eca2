//! TEMP
use std::path::Path;
use super::{Config, ConfigError};
pub struct RunOverrides { pub url: Option<String>, pub headers: Vec<String>, pub body: Option<String>, pub protocol: Option<String>, pub total_requests: Option<u32>, pub concurrency: Option<u32>, pub rate: Option<String> }
pub fn load_for_run(_p: Option<&Path>, _o: &RunOverrides) -> Result<Config, ConfigError> { todo!() }
pub fn check_report(_c: &Config, _n: chrono::DateTime<chrono::Utc>) -> String { todo!() }
// TEMP-STUB
impl super::Schedule {
    pub fn period(&self) -> std::time::Duration { todo!() }
    pub fn next_fires(&self, _a: chrono::DateTime<chrono::Utc>, _n: usize) -> Vec<chrono::DateTime<chrono::Utc>> { todo!() }
}
