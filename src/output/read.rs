//! Reading result files back into samples for the verdict engine: one file, or every `*.json`
//! under a directory (all bursts pooled), narrowed to one target. Lenient on purpose, since
//! these files come from other versions and tools: `schema_version` 1 and 2 documents, and the
//! old Python script's `test_results.json` (no `schema_version`, `target` or `outcome`;
//! `metrics[].ttft`, `total_time`, `error`). Unknown keys are ignored; keys a version lacks
//! simply give no samples (the old script wrote no `tpot` or `itl_mean`).
//!
//! A request counts as failed when its `outcome` is present and not `success`, or, without
//! `outcome` (the old script), when its `error` is not null. A request cut short by Ctrl-C or
//! shutdown (`interrupted`) is left out: it neither succeeded nor failed.
//!
//! Does not: judge or compute statistics (`verdict`), or write anything.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::verdict::{RequestSample, Samples};

/// The result-document versions this reader understands (absent = the old script).
const READABLE_VERSIONS: [u64; 2] = [1, 2];

/// Why a side of a comparison could not be read. Each message names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a streamprobe result file: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{}: schema_version {version} is not one this streamprobe reads (1 or 2); \
         compare it with a newer streamprobe",
        path.display()
    )]
    Version { path: PathBuf, version: u64 },
    #[error("{}: no result files (*.json) in this directory", path.display())]
    Empty { path: PathBuf },
    #[error(
        "{}: holds result files of several targets ({}); pick one with -t TARGET",
        path.display(),
        targets.join(", ")
    )]
    SeveralTargets { path: PathBuf, targets: Vec<String> },
    #[error(
        "{}: no result file for target {target:?}; it holds: {}",
        path.display(),
        targets.join(", ")
    )]
    NoSuchTarget {
        path: PathBuf,
        target: String,
        targets: Vec<String>,
    },
}

/// How a file without a `target` (the old script's) is listed.
pub const UNNAMED_TARGET: &str = "(unnamed)";

/// One result file, reduced to what verdicts need.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultFile {
    pub path: PathBuf,
    /// `None` for the old script's files.
    pub target: Option<String>,
    /// `None` for the old script's files.
    pub schema_version: Option<u64>,
    /// The burst's start (`config.timestamp`), when it is RFC 3339 (the old script's lacks a
    /// zone and gives `None`).
    pub started_at: Option<DateTime<Utc>>,
    pub samples: Samples,
}

/// One side of a comparison: what was read, and the pooled samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// The path as given on the command line.
    pub source: PathBuf,
    /// The target whose files were pooled (`None`: the old script's, which name none).
    pub target: Option<String>,
    /// Result files pooled.
    pub files: usize,
    pub samples: Samples,
}

/// The document keys verdicts read; everything else is ignored.
#[derive(Deserialize)]
struct DocumentIn {
    #[serde(default)]
    schema_version: Option<u64>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    config: Option<ConfigIn>,
    metrics: Vec<RequestIn>,
}

#[derive(Deserialize)]
struct ConfigIn {
    #[serde(default)]
    timestamp: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RequestIn {
    #[serde(default)]
    ttft: Option<f64>,
    /// The request's duration (the old script's name).
    #[serde(default)]
    total_time: Option<f64>,
    #[serde(default)]
    tpot: Option<f64>,
    #[serde(default)]
    itl_mean: Option<f64>,
    #[serde(default)]
    outcome: Option<String>,
    /// Any non-null value marks a failure (a string in every known writer).
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl RequestIn {
    fn sample(&self) -> RequestSample {
        let success = match &self.outcome {
            Some(outcome) => outcome == "success",
            None => self.error.as_ref().is_none_or(serde_json::Value::is_null),
        };
        RequestSample {
            success,
            ttft: self.ttft,
            tpot: self.tpot,
            itl_mean: self.itl_mean,
            duration: self.total_time,
        }
    }
}

/// Reads one result file.
pub fn read_file(path: &Path) -> Result<ResultFile, ReadError> {
    let bytes = fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let doc: DocumentIn = serde_json::from_slice(&bytes).map_err(|source| ReadError::Json {
        path: path.to_owned(),
        source,
    })?;
    if let Some(version) = doc.schema_version
        && !READABLE_VERSIONS.contains(&version)
    {
        return Err(ReadError::Version {
            path: path.to_owned(),
            version,
        });
    }
    let mut samples = Samples::default();
    for request in &doc.metrics {
        if request.outcome.as_deref() != Some("interrupted") {
            samples.push(request.sample());
        }
    }
    Ok(ResultFile {
        path: path.to_owned(),
        target: doc.target,
        schema_version: doc.schema_version,
        started_at: doc
            .config
            .and_then(|c| c.timestamp)
            .and_then(|t| {
                t.as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            })
            .map(|t| t.with_timezone(&Utc)),
        samples,
    })
}

/// Reads a side: `path` is a result file or a directory searched recursively for `*.json`
/// (hidden names, such as the writer's temporary files, skipped). With `target`, only that
/// target's files count; without, they must all be of one target.
pub fn read_side(path: &Path, target: Option<&str>) -> Result<Side, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let files = if fs::metadata(path).map_err(io)?.is_dir() {
        let mut found = Vec::new();
        collect_json(path, &mut found)?;
        if found.is_empty() {
            return Err(ReadError::Empty {
                path: path.to_owned(),
            });
        }
        found.sort();
        found
    } else {
        vec![path.to_owned()]
    };
    let files = files
        .iter()
        .map(|f| read_file(f))
        .collect::<Result<Vec<_>, _>>()?;

    let name = |f: &ResultFile| f.target.clone().unwrap_or_else(|| UNNAMED_TARGET.into());
    let targets: BTreeSet<String> = files.iter().map(name).collect();
    let chosen: Vec<ResultFile> = match target {
        Some(t) => {
            let chosen: Vec<ResultFile> = files
                .into_iter()
                .filter(|f| f.target.as_deref() == Some(t))
                .collect();
            if chosen.is_empty() {
                return Err(ReadError::NoSuchTarget {
                    path: path.to_owned(),
                    target: t.to_owned(),
                    targets: targets.into_iter().collect(),
                });
            }
            chosen
        }
        None if targets.len() > 1 => {
            return Err(ReadError::SeveralTargets {
                path: path.to_owned(),
                targets: targets.into_iter().collect(),
            });
        }
        None => files,
    };
    let mut side = Side {
        source: path.to_owned(),
        target: chosen[0].target.clone(),
        files: chosen.len(),
        samples: Samples::default(),
    };
    for file in chosen {
        side.samples.append(file.samples);
    }
    Ok(side)
}

/// Every `*.json` file under `dir`, depth first. Symbolic links to directories are not
/// followed (a link back up would loop); links to files are read.
fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let io = |source| ReadError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The old script's `save_results`, verbatim in shape: no schema_version, target or
    /// outcome; a failure has `error` and a null `ttft`.
    const OLD_SCRIPT: &str = r#"{
  "config": {"url": "http://127.0.0.1:8000/v1/chat/completions", "concurrency": 2,
             "total_requests": 3, "timestamp": "2025-06-01T10:00:00.123456"},
  "summary": {"success_count": 2, "failed_count": 1},
  "metrics": [
    {"request_id": 1, "ttft": 0.21, "total_time": 2.5, "total_tokens": 40, "total_bytes": 900,
     "tokens_per_second": 16.0, "error": null},
    {"request_id": 2, "ttft": null, "total_time": 30.0, "total_tokens": 0, "total_bytes": 0,
     "tokens_per_second": 0.0, "error": "TimeoutError"},
    {"request_id": 3, "ttft": 0.25, "total_time": 2.7, "total_tokens": 41, "total_bytes": 910,
     "tokens_per_second": 15.2, "error": null}
  ]
}"#;

    fn write(dir: &Path, rel: &str, body: &str) -> PathBuf {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        path
    }

    fn doc(version: u64, target: &str, ttfts: &[f64]) -> String {
        let metrics: Vec<String> = ttfts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    r#"{{"request_id": {}, "ttft": {t}, "total_time": 1.0, "error": null,
                       "outcome": "success", "tpot": 0.02, "itl_mean": 0.021, "itl_max": 0.3,
                       "connection": "reused", "phases": {{"connect": 0.001}}}}"#,
                    i + 1
                )
            })
            .collect();
        format!(
            r#"{{"schema_version": {version}, "target": "{target}", "verdict": {{"ttft": "no_change"}},
                "summary": {{"client": {{"lag_p99": 0.001}}}}, "metrics": [{}]}}"#,
            metrics.join(",")
        )
    }

    #[test]
    fn reads_the_old_scripts_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "test_results.json", OLD_SCRIPT);
        let f = read_file(&path).unwrap();
        assert_eq!((f.target, f.schema_version), (None, None));
        assert_eq!((f.samples.requests, f.samples.failed), (3, 1));
        assert_eq!(f.samples.ttft, [0.21, 0.25]);
        assert_eq!(f.samples.duration, [2.5, 2.7]);
        assert!(f.samples.tpot.is_empty() && f.samples.itl.is_empty());
        let side = read_side(&path, None).unwrap();
        assert_eq!((side.files, side.target), (1, None));
    }

    #[test]
    fn reads_schema_2_and_ignores_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.json", &doc(2, "gpt", &[0.2, 0.3]));
        let f = read_file(&path).unwrap();
        assert_eq!(f.schema_version, Some(2));
        assert_eq!(f.samples.ttft, [0.2, 0.3]);
        assert_eq!(f.samples.tpot, [0.02, 0.02]);
        assert_eq!(f.samples.itl, [0.021, 0.021]);
    }

    #[test]
    fn outcome_decides_success_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let body = r#"{"schema_version": 1, "target": "t", "metrics": [
            {"ttft": null, "total_time": 30.0, "error": "no data for 30s", "outcome": "timeout_idle"},
            {"ttft": 0.2, "total_time": 1.0, "error": null, "outcome": "success"}]}"#;
        let f = read_file(&write(dir.path(), "x.json", body)).unwrap();
        assert_eq!((f.samples.requests, f.samples.failed), (2, 1));
        assert_eq!(f.samples.duration, [1.0]);
    }

    #[test]
    fn interrupted_requests_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let body = r#"{"schema_version": 2, "target": "t", "interrupted": true, "metrics": [
            {"ttft": 0.2, "total_time": 1.0, "error": null, "outcome": "success"},
            {"ttft": 0.9, "total_time": 1.5, "error": "cancelled", "outcome": "interrupted"}]}"#;
        let f = read_file(&write(dir.path(), "x.json", body)).unwrap();
        assert_eq!((f.samples.requests, f.samples.failed), (1, 0));
        assert_eq!(f.samples.ttft, [0.2]);
    }

    #[test]
    fn a_directory_pools_one_targets_bursts() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "gpt/20261127T101500Z-a.json",
            &doc(1, "gpt", &[0.1]),
        );
        write(
            dir.path(),
            "gpt/20261127T102000Z-b.json",
            &doc(2, "gpt", &[0.2, 0.3]),
        );
        write(
            dir.path(),
            "claude/20261127T101500Z-c.json",
            &doc(1, "claude", &[0.9]),
        );
        // The writer's temporary files and other names are not result files.
        write(dir.path(), "gpt/.20261127T103000Z-d.json.0123.tmp", "{");
        write(dir.path(), "gpt/notes.txt", "hello");

        let gpt = read_side(dir.path(), Some("gpt")).unwrap();
        assert_eq!(gpt.files, 2);
        assert_eq!(gpt.target.as_deref(), Some("gpt"));
        let mut ttft = gpt.samples.ttft.clone();
        ttft.sort_unstable_by(f64::total_cmp);
        assert_eq!(ttft, [0.1, 0.2, 0.3]);
        assert_eq!(gpt.samples.requests, 3);

        let one = read_side(&dir.path().join("claude"), None).unwrap();
        assert_eq!(one.samples.ttft, [0.9]);

        let err = read_side(dir.path(), None).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: holds result files of several targets (claude, gpt); pick one with -t TARGET",
                dir.path().display()
            )
        );
        let err = read_side(dir.path(), Some("llama"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}: no result file for target \"llama\"; it holds: claude, gpt",
                dir.path().display()
            )
        );
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.json", r#"{"metrics": [{"ttft": "fast"}]}"#);
        let err = read_side(&bad, None).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: not a streamprobe result file: ",
                bad.display()
            )),
            "{err}"
        );
        let no_metrics = write(dir.path(), "n.json", r#"{"schema_version": 1}"#);
        let err = read_file(&no_metrics).unwrap_err().to_string();
        assert!(err.contains("missing field `metrics`"), "{err}");
        let future = write(
            dir.path(),
            "f.json",
            r#"{"schema_version": 3, "metrics": []}"#,
        );
        assert_eq!(
            read_file(&future).unwrap_err().to_string(),
            format!(
                "{}: schema_version 3 is not one this streamprobe reads (1 or 2); \
                 compare it with a newer streamprobe",
                future.display()
            )
        );
        let missing = dir.path().join("missing.json");
        let err = read_side(&missing, None).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", missing.display())),
            "{err}"
        );
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert_eq!(
            read_side(&empty, None).unwrap_err().to_string(),
            format!(
                "{}: no result files (*.json) in this directory",
                empty.display()
            )
        );
    }
}
