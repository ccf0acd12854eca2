//! The daemon's status board: what the status page and `/api/v1` show about each target (its
//! schedule, next run, recent bursts, verdict). Plain data behind a lock, written by the daemon
//! and read by the HTTP server, so the server never needs the engine.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::probe::{BurstEvent, BurstResult, BurstSink};
use crate::stats::BurstSummary;
use crate::verdict::Metric;
use crate::verdict::window::{self, Report};

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

impl BurstBrief {
    /// A finished burst; `file` is its result file's name, when it was written.
    pub fn new(burst: &BurstResult, summary: &BurstSummary, file: Option<String>) -> Self {
        BurstBrief {
            burst_id: burst.burst_id.clone(),
            started_at: DateTime::<Utc>::from(burst.started_at),
            duration_seconds: burst.total_time.as_secs_f64(),
            total: summary.total,
            success_count: summary.success_count,
            failed_count: summary.failed_count,
            success_ratio: summary.success_ratio(),
            ttft_p50: summary.ttft.as_ref().map(|s| s.p50),
            ttft_p95: summary.ttft.as_ref().map(|s| s.p95),
            interrupted: burst.interrupted,
            file,
        }
    }
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
    /// Requests of the running burst that started and have not ended yet.
    pub in_flight: u64,
    pub recent: VecDeque<BurstBrief>,
    /// The daemon's TTFT verdict (DESIGN §10), once its windows were built.
    pub verdict: Option<TargetVerdict>,
}

/// A target's TTFT verdict: the recent window against the baseline, with what a chart of the
/// target needs (the baseline band). Plain data; seconds unless named otherwise.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetVerdict {
    /// `ttft`.
    pub metric: String,
    /// `regressed`, `improved`, `no_change`, `inconclusive` or `insufficient_data`.
    pub verdict: String,
    /// The statistic judged (`p90`) and its value over each window.
    pub statistic: String,
    pub baseline: Option<f64>,
    pub recent: Option<f64>,
    /// recent ÷ baseline − 1, and its interval at `confidence`.
    pub change: Option<f64>,
    pub ci: Option<[f64; 2]>,
    pub confidence: f64,
    pub p_value: Option<f64>,
    /// Samples judged per window.
    pub n_baseline: u64,
    pub n_recent: u64,
    /// The baseline band: TTFT p50 and p95 over the baseline window.
    pub baseline_p50: Option<f64>,
    pub baseline_p95: Option<f64>,
    /// Window lengths (seconds) and the rule's threshold (0.05 = 5%).
    pub baseline_window_seconds: f64,
    pub recent_window_seconds: f64,
    pub min_change: f64,
    /// When it was judged.
    pub at: DateTime<Utc>,
}

impl TargetVerdict {
    /// The TTFT part of a window report.
    pub fn from_report(report: &Report) -> Option<TargetVerdict> {
        let m = report.metric(Metric::Ttft)?;
        let row = &m.row;
        Some(TargetVerdict {
            metric: m.metric.as_str().to_owned(),
            verdict: row.verdict.as_str().to_owned(),
            statistic: window::statistic(report.settings.statistic)
                .as_str()
                .to_owned(),
            baseline: row.baseline,
            recent: row.candidate,
            change: row.change,
            ci: row.interval.map(|(lo, hi)| [lo, hi]),
            confidence: row.confidence,
            p_value: row.p_value,
            n_baseline: row.n_baseline,
            n_recent: row.n_candidate,
            baseline_p50: m.baseline_p50,
            baseline_p95: m.baseline_p95,
            baseline_window_seconds: report.settings.baseline.as_secs_f64(),
            recent_window_seconds: report.settings.recent.as_secs_f64(),
            min_change: report.settings.min_change,
            at: DateTime::<Utc>::from(report.at),
        })
    }
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

    /// Adds or updates a target's description, keeping what its scheduler and bursts
    /// publish: recent bursts, whether one is running, and the next run (on reload the new
    /// scheduler takes the old one's over and publishes it a moment later; until then the
    /// old value is the right one, not none).
    pub fn upsert(&self, mut status: TargetStatus) {
        self.with(|m| {
            if let Some(old) = m.remove(&status.name) {
                status.recent = old.recent;
                status.running = old.running;
                status.in_flight = old.in_flight;
                status.next_run = old.next_run;
                status.verdict = status.verdict.or(old.verdict);
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

    pub fn set_verdict(&self, name: &str, verdict: Option<TargetVerdict>) {
        self.with(|m| {
            if let Some(t) = m.get_mut(name) {
                t.verdict = verdict;
            }
        });
    }

    /// Subscribes the board to one burst of `target`: the status page shows its requests in
    /// flight while it runs.
    pub fn sink(self: &Arc<Self>, target: &str) -> BoardSink {
        BoardSink {
            board: self.clone(),
            target: target.to_owned(),
        }
    }

    fn adjust_in_flight(&self, name: &str, started: bool) {
        self.with(|m| {
            if let Some(t) = m.get_mut(name) {
                t.in_flight = if started {
                    t.in_flight + 1
                } else {
                    t.in_flight.saturating_sub(1)
                };
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

    /// Forgets the bursts whose result files are gone (retention deleted them), so that the
    /// status page and `/api/v1/targets/{name}/bursts` list only what can be opened. A burst
    /// that never had a file (its write failed) stays, shown without a link.
    pub fn forget_files(&self, name: &str, files: &[String]) {
        if files.is_empty() {
            return;
        }
        self.with(|m| {
            if let Some(t) = m.get_mut(name) {
                t.recent
                    .retain(|b| b.file.as_ref().is_none_or(|f| !files.contains(f)));
            }
        });
    }

    pub fn targets(&self) -> Vec<TargetStatus> {
        self.with(|m| m.values().cloned().collect())
    }

    pub fn target(&self, name: &str) -> Option<TargetStatus> {
        self.with(|m| m.get(name).cloned())
    }

    /// Whether `name` is a configured target (without copying its status).
    pub fn has(&self, name: &str) -> bool {
        self.with(|m| m.contains_key(name))
    }
}

/// The board's subscription to one burst (see `StatusBoard::sink`).
pub struct BoardSink {
    board: Arc<StatusBoard>,
    target: String,
}

impl BurstSink for BoardSink {
    fn observe(&mut self, event: &BurstEvent) {
        match event {
            BurstEvent::RequestStarted { .. } => self.board.adjust_in_flight(&self.target, true),
            BurstEvent::RequestDone(_) => self.board.adjust_in_flight(&self.target, false),
        }
    }

    /// Every started request ended or was cancelled by now; a request cancelled before it
    /// reported its end must not stay "in flight" on the page.
    fn finish(&mut self) {
        self.board.with(|m| {
            if let Some(t) = m.get_mut(&self.target) {
                t.in_flight = 0;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn status(name: &str, schedule: &str) -> TargetStatus {
        TargetStatus {
            name: name.into(),
            protocol: "openai".into(),
            endpoint: "http://h/p".into(),
            model: None,
            schedule: schedule.into(),
            next_run: None,
            running: false,
            in_flight: 0,
            recent: VecDeque::new(),
            verdict: None,
        }
    }

    fn brief(id: &str) -> BurstBrief {
        BurstBrief {
            burst_id: id.into(),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            duration_seconds: 1.0,
            total: 1,
            success_count: 1,
            failed_count: 0,
            success_ratio: 1.0,
            ttft_p50: Some(0.1),
            ttft_p95: Some(0.1),
            interrupted: false,
            file: None,
        }
    }

    #[test]
    fn the_board_counts_a_bursts_requests_in_flight_and_clears_them_at_its_end() {
        let board = Arc::new(StatusBoard::new());
        board.upsert(status("a", "every 1m"));
        let mut sink = board.sink("a");
        sink.observe(&BurstEvent::RequestStarted { index: 0 });
        sink.observe(&BurstEvent::RequestStarted { index: 1 });
        assert_eq!(board.target("a").unwrap().in_flight, 2);
        // A reload's upsert keeps the live count.
        board.upsert(status("a", "every 5m"));
        assert_eq!(board.target("a").unwrap().in_flight, 2);
        let record = crate::probe::RequestRecord {
            index: 0,
            outcome: crate::probe::Outcome::Success,
            status: Some(200),
            error: None,
            start_offset: Duration::ZERO,
            client_wait: Duration::ZERO,
            time_to_headers: None,
            ttft: None,
            first_visible_token: None,
            duration: Duration::ZERO,
            output_tokens: 0,
            token_source: crate::probe::TokenSource::Events,
            token_events: 0,
            chunks: 0,
            bytes: 0,
            itl: Vec::new(),
            tpot: None,
            text: None,
            connection: None,
            phases: Default::default(),
            retried: false,
            ratelimit: Default::default(),
            provider_request_id: None,
            captured_headers: Vec::new(),
            response_model: None,
            system_fingerprint: None,
            input_tokens: None,
            cached_input_tokens: None,
            reasoning_tokens: None,
            usage_mismatch: false,
        };
        sink.observe(&BurstEvent::RequestDone(Arc::new(record)));
        assert_eq!(board.target("a").unwrap().in_flight, 1);
        sink.finish();
        assert_eq!(board.target("a").unwrap().in_flight, 0);
    }

    #[test]
    fn upsert_keeps_what_scheduler_and_bursts_published() {
        let board = StatusBoard::new();
        board.upsert(status("a", "every 1m"));
        let next = "2026-11-27T10:00:00Z".parse().unwrap();
        board.set_next_run("a", Some(next));
        board.set_running("a", true);
        board.push_burst("a", brief("b1"));
        board.upsert(status("a", "every 5m"));
        let a = board.target("a").unwrap();
        assert_eq!(a.schedule, "every 5m");
        assert_eq!(a.next_run, Some(next));
        assert!(a.running);
        assert_eq!(a.recent.len(), 1);
    }

    #[test]
    fn bursts_whose_files_are_gone_are_forgotten_and_fileless_ones_stay() {
        let board = StatusBoard::new();
        board.upsert(status("a", "every 1m"));
        let with_file = |id: &str| BurstBrief {
            file: Some(format!("{id}.json")),
            ..brief(id)
        };
        board.push_burst("a", with_file("b1"));
        board.push_burst("a", brief("unwritten"));
        board.push_burst("a", with_file("b2"));
        board.push_burst("a", with_file("b3"));
        board.forget_files("a", &["b1.json".to_owned(), "b2.json".to_owned()]);
        board.forget_files("gone", &["b3.json".to_owned()]);
        let ids: Vec<String> = board
            .target("a")
            .unwrap()
            .recent
            .into_iter()
            .map(|b| b.burst_id)
            .collect();
        assert_eq!(ids, ["unwritten", "b3"]);
    }

    #[test]
    fn recent_bursts_are_bounded_and_removed_targets_ignore_updates() {
        let board = StatusBoard::new();
        board.upsert(status("a", "every 1m"));
        board.upsert(status("b", "every 1m"));
        for i in 0..RECENT_BURSTS + 5 {
            board.push_burst("a", brief(&i.to_string()));
        }
        let a = board.target("a").unwrap();
        assert_eq!(a.recent.len(), RECENT_BURSTS);
        assert_eq!(a.recent.front().unwrap().burst_id, "5");
        board.retain(&["b"]);
        board.push_burst("a", brief("late"));
        board.set_running("a", true);
        assert!(board.target("a").is_none());
        let names: Vec<String> = board.targets().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["b"]);
    }
}
