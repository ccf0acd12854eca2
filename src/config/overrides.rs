//! TEMP
use std::path::Path;
use super::{Config, ConfigError};
pub struct RunOverrides { pub url: Option<String>, pub headers: Vec<String>, pub body: Option<String>, pub protocol: Option<String>, pub total_requests: Option<u32>, pub concurrency: Option<u32>, pub rate: Option<String> }
pub fn load_for_run(_p: Option<&Path>, _o: &RunOverrides) -> Result<Config, ConfigError> { todo!() }
pub fn check_report(_c: &Config, _n: chrono::DateTime<chrono::Utc>) -> String { todo!() }
