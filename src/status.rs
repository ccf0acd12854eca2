//! The daemon's status board: what the status page and `/api/v1` show about each target (its
//! schedule, next run, recent bursts). Plain data behind a lock, written by the daemon and read
//! by the HTTP server, so the server never needs the engine.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many recent bursts each target keeps in memory.
pub const RECENT_BURSTS: usize = 50;

/// One finished burst, as the status page and API show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BurstBrief {
    pub burst_id: String,
    pub started_at: DateTime<Utc>,
    pub duration_seconds: f64,
    pub total: u64,
    pub success_count: u64,
    pub failed_count: u64,
    pub success_ratio: f64,
    pub ttft_p50: Option<f64>,
    pub ttft_p95: Option<f64>,
    pub interrupted: bool,
    /// The result file's name under `<results.dir>/<target>/`, when it was written.
    pub file: Option<String>,
}

/// One configured target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetStatus {
    pub name: String,
    pub protocol: String,
    /// scheme://host/path, never a query or a secret.
    pub endpoint: String,
    pub model: Option<String>,
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    pub running: bool,
    pub recent: VecDeque<BurstBrief>,
}

/// All targets, by name.
#[derive(Debug, Default)]
pub struct StatusBoard {
    targets: Mutex<BTreeMap<String, TargetStatus>>,
}

impl StatusBoard {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, TargetStatus>) -> R) -> R {
        // A panic while holding the lock cannot leave the map inconsistent (every update is a
        // single field store), so a poisoned lock is still usable.
        let mut guard = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Adds or updates a target's description, keeping its recent bursts.
    pub fn upsert(&self, mut status: TargetStatus) {
        self.with(|m| {
            if let Some(old) = m.remove(&status.name) {
                status.recent = old.recent;
                status.running = old.running;
            }
            m.insert(status.name.clone(), status);
        });
    }

    /// Keeps only the named targets.
    pub fn retain(&self, names: &[&str]) {
        self.with(|m| m.retain(|k, _| names.contains(&k.as_str())));
    }

    pub fn set_next_run(&self, name: &str, next: Option<DateTime<Utc>>) {
        self.with(|m| {
            if let Some(t) = m.get_mut(name) {
                t.next_run = next;
            }
        });
    }

    pub fn set_running(&self, name: &str, running: bool) {
        self.with(|m| {
            if let Some(t) = m.get_mut(name) {
                t.running = running;
            }
        });
    }

    pub fn push_burst(&self, name: &str, brief: BurstBrief) {
        self.with(|m| {
            if let Some(t) = m.get_mut(name) {
                if t.recent.len() == RECENT_BURSTS {
                    t.recent.pop_front();
                }
                t.recent.push_back(brief);
            }
        });
    }

    pub fn targets(&self) -> Vec<TargetStatus> {
        self.with(|m| m.values().cloned().collect())
    }

    pub fn target(&self, name: &str) -> Option<TargetStatus> {
        self.with(|m| m.get(name).cloned())
    }
}
