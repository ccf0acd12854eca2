//! The retained result files of one target, read back for the daemon's pages: one
//! [`TrendPoint`] per file (start, TTFT p50/p95, counts) for the target page, and a burst's
//! file found by its id for the burst page. Result files never change once written, so each
//! file's point is read once and cached by path; the cache forgets files retention deleted and
//! the directories a reload moved away from, so it stays as small as the results directory. Blocking: callers run it off the async threads.
//!
//! Does not: render (see `html/`), or decide which targets exist (the caller checks the name).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::output::html::target::TrendPoint;
use crate::output::write::result_file_stamp;

/// The per-file summaries read so far, by path.
#[derive(Debug, Default)]
pub struct Retained {
    points: Mutex<HashMap<PathBuf, TrendPoint>>,
}

/// The keys of a result document a trend point needs; the rest (`metrics`) is skipped.
#[derive(Deserialize)]
struct DocumentBrief {
    #[serde(default)]
    burst_id: Option<String>,
    #[serde(default)]
    interrupted: bool,
    #[serde(default)]
    config: ConfigBrief,
    #[serde(default)]
    summary: SummaryBrief,
    /// The daemon's verdict after the burst (DESIGN §10), when it judged one.
    #[serde(default)]
    verdict: Option<VerdictBrief>,
}

#[derive(Deserialize)]
struct VerdictBrief {
    #[serde(default)]
    ttft: Option<MetricVerdictBrief>,
}

#[derive(Deserialize)]
struct MetricVerdictBrief {
    verdict: String,
}

#[derive(Deserialize, Default)]
struct ConfigBrief {
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize, Default)]
struct SummaryBrief {
    #[serde(default)]
    success_count: u64,
    #[serde(default)]
    failed_count: u64,
    #[serde(default)]
    outcomes: HashMap<String, u64>,
    #[serde(default)]
    ttft: Option<QuantilesBrief>,
}

#[derive(Deserialize, Default)]
struct QuantilesBrief {
    #[serde(default)]
    p50: Option<f64>,
    #[serde(default)]
    p95: Option<f64>,
}

impl Retained {
    pub fn new() -> Retained {
        Retained::default()
    }

    /// One point per result file in `dir` (a target's directory), oldest first. A missing
    /// directory has none; a file that cannot be read or parsed is left out (logged).
    pub fn points(&self, dir: &Path) -> io::Result<Vec<TrendPoint>> {
        let files = result_files(dir)?;
        let mut cache = self.points.lock().unwrap_or_else(|e| e.into_inner());
        let present: HashSet<&PathBuf> = files.iter().map(|(_, p)| p).collect();
        // Forget what retention (or anyone) deleted from this directory, and everything of a
        // results directory a reload left behind.
        let results = dir.parent();
        cache.retain(|path, _| match path.parent() {
            Some(parent) if parent == dir => present.contains(path),
            parent => parent.and_then(Path::parent) == results,
        });
        let mut points = Vec::with_capacity(files.len());
        for (name, path) in &files {
            if let Some(p) = cache.get(path) {
                points.push(p.clone());
                continue;
            }
            match read_point(name, path) {
                Ok(p) => {
                    cache.insert(path.clone(), p.clone());
                    points.push(p);
                }
                Err(e) => {
                    tracing::debug!(file = %path.display(), error = %e, "result file skipped")
                }
            }
        }
        points.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.file.cmp(&b.file)));
        Ok(points)
    }
}

/// The result file of burst `id` in `dir` (`<stamp>-<id>.json`), if it is there. `id` must
/// already be checked to be a plain name (no separator, no dot).
pub fn find_burst_file(dir: &Path, id: &str) -> io::Result<Option<PathBuf>> {
    let suffix = format!("-{id}.json");
    Ok(result_files(dir)?
        .into_iter()
        .find(|(name, _)| name.ends_with(&suffix) && name.len() == suffix.len() + 16)
        .map(|(_, path)| path))
}

/// `(name, path)` of every file in `dir` named like a result file.
fn result_files(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if result_file_stamp(&name).is_some() && entry.file_type()?.is_file() {
            files.push((name, entry.path()));
        }
    }
    Ok(files)
}

fn read_point(name: &str, path: &Path) -> Result<TrendPoint, Box<dyn std::error::Error>> {
    let bytes = fs::read(path)?;
    let doc: DocumentBrief = serde_json::from_slice(&bytes)?;
    let stamp = result_file_stamp(name).ok_or("not a result file name")?;
    let started_at = doc
        .config
        .timestamp
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(|| stamp.and_utc(), |t| t.with_timezone(&Utc));
    // `<stamp>-<id>.json`: the id the file was named with is the one its page is found by.
    let id = name[17..name.len() - 5].to_owned();
    let s = &doc.summary;
    let requests = if s.outcomes.is_empty() {
        s.success_count + s.failed_count
    } else {
        s.outcomes.values().sum()
    };
    Ok(TrendPoint {
        burst_id: doc.burst_id.filter(|b| *b == id).unwrap_or(id),
        started_at,
        ttft_p50: s.ttft.as_ref().and_then(|t| t.p50),
        ttft_p95: s.ttft.as_ref().and_then(|t| t.p95),
        requests,
        failed: s.failed_count,
        interrupted: doc.interrupted,
        verdict: doc.verdict.and_then(|v| v.ttft).map(|t| t.verdict),
        file: name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, p50: f64) -> String {
        format!(
            r#"{{"schema_version": 2, "burst_id": "{id}", "target": "t",
                "config": {{"timestamp": "2026-11-27T10:15:00.250Z"}},
                "summary": {{"success_count": 9, "failed_count": 1,
                             "outcomes": {{"success": 9, "http_429": 1}},
                             "ttft": {{"count": 9, "p50": {p50}, "p95": 0.5}}}},
                "verdict": {{"statistic": "p90", "ttft": {{"verdict": "no_change"}}}},
                "metrics": [{{"request_id": 1}}]}}"#
        )
    }

    #[test]
    fn points_are_read_once_and_forgotten_with_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("20261127T101500Z-aaaaaaaaaaaa.json");
        let b = dir.path().join("20261127T100000Z-bbbbbbbbbbbb.json");
        fs::write(&a, doc("aaaaaaaaaaaa", 0.2)).unwrap();
        fs::write(&b, doc("bbbbbbbbbbbb", 0.3)).unwrap();
        // Not ours: temporary files, other names, broken files.
        fs::write(dir.path().join(".20261127T101500Z-c.json.1.tmp"), "{").unwrap();
        fs::write(dir.path().join("notes.json"), "{}").unwrap();
        fs::write(dir.path().join("20261127T103000Z-broken.json"), "{").unwrap();

        let retained = Retained::new();
        let points = retained.points(dir.path()).unwrap();
        assert_eq!(points.len(), 2);
        // Ordered by start: b's config says 10:15 too, but the file order breaks the tie.
        assert_eq!(points[0].file, "20261127T100000Z-bbbbbbbbbbbb.json");
        assert_eq!(points[1].burst_id, "aaaaaaaaaaaa");
        assert_eq!(points[1].ttft_p50, Some(0.2));
        assert_eq!((points[1].requests, points[1].failed), (10, 1));
        assert_eq!(points[1].verdict.as_deref(), Some("no_change"));

        // Cached: a rewritten file (which never happens to result files) is not re-read...
        fs::write(&a, doc("aaaaaaaaaaaa", 0.9)).unwrap();
        assert_eq!(retained.points(dir.path()).unwrap()[1].ttft_p50, Some(0.2));
        // ...and a deleted one is forgotten.
        fs::remove_file(&a).unwrap();
        assert_eq!(retained.points(dir.path()).unwrap().len(), 1);
        assert_eq!(retained.points.lock().unwrap().len(), 1);

        // Another results directory (a reload moved it): the old one's entries go.
        let moved = tempfile::tempdir().unwrap();
        assert!(retained.points(&moved.path().join("t")).unwrap().is_empty());
        assert!(retained.points.lock().unwrap().is_empty());
        assert!(
            retained
                .points(&dir.path().join("none"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            find_burst_file(dir.path(), "bbbbbbbbbbbb").unwrap(),
            Some(b.clone())
        );
        assert_eq!(find_burst_file(dir.path(), "bbbb").unwrap(), None);
        assert_eq!(find_burst_file(dir.path(), "aaaaaaaaaaaa").unwrap(), None);
    }
}
