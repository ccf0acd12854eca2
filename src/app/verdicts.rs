//! The daemon's verdicts (DESIGN §10): each target's windows (`verdict::window`), rebuilt from
//! its retained result files when the target appears (start-up, reload) or its `verdict:`
//! settings change, fed each finished burst, and judged after each. Every method here is
//! blocking (file reads, bootstrap): `serve` calls them off the async threads.
//!
//! Does not: publish (it returns reports; `serve` hands them to metrics, board and file), or
//! write files.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::config::{Target, VerdictSettings};
use crate::output::read::read_file;
use crate::verdict::window::{BurstSamples, Report, Windows};

/// One target's windows and what they were built from.
struct Kept {
    settings: VerdictSettings,
    dir: PathBuf,
    windows: Mutex<Windows>,
}

/// Every target's windows, by name. One lock per target, so judging one target never waits
/// for another's.
#[derive(Default)]
pub struct Verdicts {
    targets: Mutex<HashMap<String, Arc<Kept>>>,
}

/// What a rebuild read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub files: usize,
    /// Files that could not be read or carry no start time (skipped).
    pub skipped: usize,
}

impl Verdicts {
    fn kept(&self, name: &str) -> Option<Arc<Kept>> {
        self.targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether `target`'s windows must be (re)built from its files under `results_dir`: it has
    /// none, or they were built for other settings or another directory.
    pub fn needs_rebuild(&self, target: &Target, results_dir: &Path) -> bool {
        self.kept(&target.name)
            .is_none_or(|k| k.settings != target.verdict || k.dir != results_dir)
    }

    /// Builds `target`'s windows from its result files under `results_dir` (oldest first, by
    /// name) and judges them at `now`. A missing directory is an empty history.
    pub fn rebuild(
        &self,
        target: &Target,
        results_dir: &Path,
        now: SystemTime,
    ) -> (Report, Rebuilt) {
        let (mut windows, rebuilt) =
            windows_from_files(target.verdict, &results_dir.join(&target.name), now);
        let report = windows.judge(now);
        let kept = Arc::new(Kept {
            settings: target.verdict,
            dir: results_dir.to_owned(),
            windows: Mutex::new(windows),
        });
        self.targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.name.clone(), kept);
        (report, rebuilt)
    }

    /// Adds a finished burst to its target's windows and judges them at `now`. `None` when the
    /// target has no windows for its current settings (it left the configuration, or a reload
    /// changed them while the burst ran: the rebuild reads its file instead).
    pub fn record(
        &self,
        target: &Target,
        started_at: SystemTime,
        burst: &BurstSamples,
        now: SystemTime,
    ) -> Option<Report> {
        let kept = self.kept(&target.name)?;
        if kept.settings != target.verdict {
            return None;
        }
        let mut windows = kept.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.record(started_at, burst);
        Some(windows.judge(now))
    }

    /// Forgets the targets not named.
    pub fn retain(&self, names: &[&str]) {
        self.targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| names.contains(&k.as_str()));
    }
}

/// Windows built from the `*.json` result files in `dir` (one target's), read in name order,
/// which is start-time order, so memory stays bounded while reading.
pub fn windows_from_files(
    settings: VerdictSettings,
    dir: &Path,
    now: SystemTime,
) -> (Windows, Rebuilt) {
    let mut windows = Windows::new(settings);
    let mut rebuilt = Rebuilt::default();
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect(),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list result files for the verdict baseline");
            }
            Vec::new()
        }
    };
    files.sort();
    let oldest = now.checked_sub(settings.baseline);
    for path in files {
        match read_file(&path) {
            Ok(file) => match file.started_at {
                Some(t) => {
                    let t = SystemTime::from(t);
                    if oldest.is_some_and(|o| t < o) {
                        continue;
                    }
                    windows.record(
                        t,
                        &BurstSamples {
                            ttft: file.samples.ttft,
                            tpot: file.samples.tpot,
                        },
                    );
                    rebuilt.files += 1;
                }
                None => rebuilt.skipped += 1,
            },
            Err(e) => {
                rebuilt.skipped += 1;
                tracing::warn!(error = %e, "result file skipped for the verdict baseline");
            }
        }
    }
    windows.advance(now);
    (windows, rebuilt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{VerdictStatistic, load_str};
    use crate::verdict::{Metric, Verdict};
    use std::time::Duration;

    fn target(verdict: &str) -> Target {
        let yaml = format!(
            "targets:\n  - {{name: t, url: \"http://127.0.0.1:1/v1/chat/completions\", verdict: {verdict}}}\n"
        );
        load_str(&yaml, Path::new("test.yaml"))
            .unwrap()
            .targets
            .remove(0)
    }

    /// A result file of 40 successful requests around `ttft` seconds, started at `at`.
    fn write_burst(dir: &Path, at: SystemTime, ttft: f64) {
        let stamp = chrono::DateTime::<chrono::Utc>::from(at);
        let metrics: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    r#"{{"ttft": {}, "tpot": 0.02, "total_time": 1.0, "outcome": "success"}}"#,
                    ttft + i as f64 * 0.0005
                )
            })
            .collect();
        let doc = format!(
            r#"{{"schema_version": 2, "target": "t", "config": {{"timestamp": "{}"}}, "metrics": [{}]}}"#,
            stamp.to_rfc3339(),
            metrics.join(",")
        );
        let name = format!("{}-x.json", stamp.format("%Y%m%dT%H%M%SZ"));
        fs::write(dir.join(name), doc).unwrap();
    }

    #[test]
    fn rebuild_reads_the_targets_files_and_bursts_continue_the_same_windows() {
        let results = tempfile::tempdir().unwrap();
        let dir = results.path().join("t");
        fs::create_dir_all(&dir).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let minute = Duration::from_secs(60);
        // 50 minutes of 200 ms bursts, then 5 of 300 ms; one file older than the baseline,
        // one without a start time, one that is not JSON.
        for m in 1..=55u32 {
            write_burst(
                &dir,
                now - minute * (56 - m),
                if m > 50 { 0.3 } else { 0.2 },
            );
        }
        write_burst(&dir, now - minute * 120, 9.0);
        fs::write(dir.join("20200101T000000Z-none.json"), r#"{"metrics": []}"#).unwrap();
        fs::write(dir.join("20200101T000000Z-bad.json"), "{").unwrap();

        let t = target("{baseline: 1h, recent: 10m, min_samples: 30}");
        assert_eq!(t.verdict.statistic, VerdictStatistic::P90);
        let verdicts = Verdicts::default();
        assert!(verdicts.needs_rebuild(&t, results.path()));
        let (report, read) = verdicts.rebuild(&t, results.path(), now);
        assert_eq!(
            read,
            Rebuilt {
                files: 55,
                skipped: 2
            }
        );
        assert_eq!(
            report.metric(Metric::Ttft).unwrap().verdict(),
            Verdict::Regressed
        );
        assert_eq!(
            report.metric(Metric::Tpot).unwrap().verdict(),
            Verdict::NoChange
        );
        assert!(!verdicts.needs_rebuild(&t, results.path()));

        // A burst lands in the same windows.
        let burst = BurstSamples {
            ttft: vec![0.3; 40],
            tpot: vec![0.02; 40],
        };
        let after = verdicts
            .record(&t, now + minute, &burst, now + minute)
            .unwrap();
        let n = |r: &Report| r.metric(Metric::Ttft).unwrap().row.n_candidate;
        assert_eq!(n(&after), n(&report) + 40);

        // Other settings need a rebuild, and a burst judged under the old ones is not recorded.
        let changed = target("{baseline: 2h, recent: 10m, min_samples: 30}");
        assert!(verdicts.needs_rebuild(&changed, results.path()));
        assert!(verdicts.record(&changed, now, &burst, now).is_none());
        verdicts.retain(&[]);
        assert!(verdicts.needs_rebuild(&t, results.path()));
        assert!(verdicts.record(&t, now, &burst, now).is_none());

        // No directory yet: an empty history, judged insufficient.
        let empty = tempfile::tempdir().unwrap();
        let (report, read) = verdicts.rebuild(&t, empty.path(), now);
        assert_eq!(read, Rebuilt::default());
        assert_eq!(
            report.metric(Metric::Ttft).unwrap().verdict(),
            Verdict::InsufficientData
        );
    }
}
