//! Result files on disk: where a burst's file goes, writing it atomically (temp file in the same
//! directory, fsync, rename: a reader sees the old file or the whole new one, never half), and
//! retention per target directory; `write_burst_file` does all three for one burst.
//! `write_output` writes `run -o` wherever the user pointed it: through a symlink to its
//! target, and into a FIFO or device in place (renaming over those would replace them).
//!
//! Does not: build documents (see `result.rs`), or delete anything but files named like ours.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::config::Results;

/// `20261127T101500Z`: sorts lexically in time order and is safe in every file system.
const STAMP_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// Length of a formatted `STAMP_FORMAT`.
const STAMP_LEN: usize = 16;

/// `<dir>/<target>/<UTC start like 20261127T101500Z>-<burst id>.json`.
pub fn result_path(dir: &Path, target: &str, started_at: SystemTime, burst_id: &str) -> PathBuf {
    let stamp = DateTime::<Utc>::from(started_at).format(STAMP_FORMAT);
    dir.join(target).join(format!("{stamp}-{burst_id}.json"))
}

/// What writing one burst's file did to the target's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstFile {
    /// The new file's name.
    pub name: String,
    /// Names of the files retention deleted after it (possibly the new one, when it is already
    /// older than `max_age`), so that nothing keeps linking to them.
    pub pruned: Vec<String>,
}

/// Writes one burst's result document to its `result_path` under `results.dir` (creating the
/// target's directory), then applies `results`' retention to that directory. Blocking: the
/// daemon calls it off the async threads. Retention failing is logged, not returned: the
/// burst's file is written.
pub fn write_burst_file(
    results: &Results,
    target: &str,
    started_at: SystemTime,
    burst_id: &str,
    json: &[u8],
) -> io::Result<BurstFile> {
    let path = result_path(&results.dir, target, started_at, burst_id);
    let dir = path.parent().unwrap_or(&results.dir);
    fs::create_dir_all(dir)?;
    write_atomic(&path, json)?;
    let mut pruned = Vec::new();
    if let Err(e) = prune_into(
        dir,
        results.keep_per_target,
        results.max_age,
        SystemTime::now(),
        &mut pruned,
    ) {
        tracing::warn!(dir = %dir.display(), error = %e, "result retention failed");
    }
    Ok(BurstFile {
        name: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        pruned,
    })
}

/// Writes `bytes` to `path` so that a reader never sees a partial file: a temporary file in the
/// same directory is written, fsynced and renamed over `path`. On failure the temporary file is
/// removed and an existing `path` is left untouched. The parent directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Writes `bytes` to `run -o`'s `path` without replacing what the user pointed at: a symlink
/// is followed and its target written atomically (the temporary file in the target's
/// directory, so the rename stays on one file system); an existing FIFO, character device or
/// other non-regular file (`/dev/stdout`, `/dev/null`) is opened and written in place, as a
/// shell redirection would; anything else is written atomically at `path`.
pub fn write_output(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_output_with(path, |out| out.write_all(bytes))
}

/// [`write_output`] with the content written by `fill` (a document streamed as it is
/// serialized, never whole in memory).
pub fn write_output_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let target = resolve_symlinks(path)?;
    match fs::metadata(&target) {
        Ok(m) if !m.is_file() && !m.is_dir() => {
            // No create, no truncate: it exists and is not ours to replace.
            let mut file = OpenOptions::new().write(true).open(&target)?;
            fill(&mut file)?;
            file.flush()
        }
        _ => write_atomic_with(&target, |file| fill(file)),
    }
}

/// Whether `path` names the file this process's standard output is (the same device and
/// inode): `/dev/stdout`, `/proc/self/fd/1`, or the file stdout was redirected to.
pub fn is_stdout(path: &Path) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = fs::metadata(path) else {
        return false;
    };
    let stdout = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|f| f.metadata());
    stdout.is_ok_and(|s| s.dev() == target.dev() && s.ino() == target.ino())
}

/// `path` with every symlink of its last component followed, also to a target that does not
/// exist yet (it is created there). A magic link (`/dev/stdout` → `/proc/self/fd/1` →
/// `pipe:[…]`) is left where its target exists, since its text is not a path; only a link
/// whose target is missing is rewritten, as a relative target is relative to the link's own
/// directory. Gives up after 40 links (a loop), as the kernel does.
fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_owned();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {}
            _ => return Ok(current),
        }
        if fs::metadata(&current).is_ok() {
            // An existing target: the canonical path names it (magic links resolve too).
            return fs::canonicalize(&current).or(Ok(current));
        }
        let link = fs::read_link(&current)?;
        current = match current.parent() {
            Some(dir) => dir.join(link),
            None => link,
        };
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: too many levels of symbolic links", path.display()),
    ))
}

/// `write_atomic` with the content written by `fill`, so tests can fail mid-write.
fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let (tmp, mut file) = create_temp(dir, &name.to_string_lossy())?;
    let result = fill(&mut file)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, path)
        });
    match result {
        Ok(()) => {
            // Make the rename itself durable. Best effort: not every platform can open a
            // directory for syncing, and the data is already in place.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A new, exclusively created `.<name>.<random>.tmp` beside the target. The leading dot and the
/// suffix keep it out of `prune` and of readers listing `*.json`.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut attempts = 0;
    loop {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Retention for one target's directory: deletes result files beyond the newest `keep` and
/// those whose start (from the file name) is older than `max_age` before `now`. `keep == 0` or
/// `max_age == 0` disables that rule. Only files named like `result_path` makes them
/// (`<stamp>-<id>.json`) are considered; anything else is left alone. Returns how many are gone
/// (deleted here, or by someone else in a race); a missing directory is 0.
pub fn prune(dir: &Path, keep: u32, max_age: Duration, now: SystemTime) -> io::Result<usize> {
    let mut deleted = Vec::new();
    prune_into(dir, keep, max_age, now, &mut deleted)?;
    Ok(deleted.len())
}

/// `prune`, pushing the name of each file it deleted onto `deleted` (also those deleted before
/// an error stopped it).
fn prune_into(
    dir: &Path,
    keep: u32,
    max_age: Duration,
    now: SystemTime,
    deleted: &mut Vec<String>,
) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut ours: Vec<(NaiveDateTime, SystemTime, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Some(stamp) = entry.file_name().to_str().and_then(result_file_stamp) {
            // Names have one-second resolution; the write time orders bursts that started in
            // the same second (a random id would not).
            let written = entry
                .metadata()?
                .modified()
                .unwrap_or(SystemTime::UNIX_EPOCH);
            ours.push((stamp, written, entry.path()));
        }
    }
    // Newest first.
    ours.sort_by(|a, b| b.cmp(a));

    let cutoff = (!max_age.is_zero())
        .then(|| now.checked_sub(max_age))
        .flatten()
        .map(|t| DateTime::<Utc>::from(t).naive_utc());
    for (i, (stamp, _, path)) in ours.iter().enumerate() {
        let beyond_keep = keep > 0 && i >= keep as usize;
        let too_old = cutoff.is_some_and(|c| *stamp < c);
        if beyond_keep || too_old {
            let name = || {
                path.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            match fs::remove_file(path) {
                Ok(()) => deleted.push(name()),
                // Someone else (another instance, an operator) removed it first: gone all the
                // same.
                Err(e) if e.kind() == io::ErrorKind::NotFound => deleted.push(name()),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The start time of a file named `<stamp>-<id>.json`, or `None` when it is not one of ours.
pub(crate) fn result_file_stamp(name: &str) -> Option<NaiveDateTime> {
    let stem = name.strip_suffix(".json")?;
    let (stamp, id) = (stem.get(..STAMP_LEN)?, stem.get(STAMP_LEN..)?);
    let id = id.strip_prefix('-')?;
    if id.is_empty() {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, STAMP_FORMAT).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn failure_mid_write_keeps_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        fs::write(&path, b"old").unwrap();
        let err = write_atomic_with(&path, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(files(dir.path()), ["r.json"]);
    }

    #[test]
    fn output_through_a_symlink_replaces_the_target_and_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("x.json"), b"old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real/x.json", &link).unwrap();
        write_output(&link, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(real.join("x.json")).unwrap(), b"new");
        // The temporary file went to the target's directory and is gone.
        assert_eq!(files(&real), ["x.json"]);
        assert_eq!(files(dir.path()), ["link.json", "real"]);

        // A link whose target does not exist yet creates it, relative to the link.
        let dangling = dir.path().join("later.json");
        std::os::unix::fs::symlink("real/later.json", &dangling).unwrap();
        write_output(&dangling, b"{}").unwrap();
        assert_eq!(fs::read(real.join("later.json")).unwrap(), b"{}");
        assert!(
            fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );

        let looped = dir.path().join("loop.json");
        std::os::unix::fs::symlink("loop.json", &looped).unwrap();
        let err = write_output(&looped, b"x").unwrap_err();
        assert!(
            err.to_string()
                .contains("too many levels of symbolic links"),
            "{err}"
        );
    }

    #[test]
    fn output_into_a_fifo_or_device_writes_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        write_output(&fifo, b"{\"a\": 1}\n").unwrap();
        assert_eq!(reader.join().unwrap(), b"{\"a\": 1}\n");
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(files(dir.path()), ["out.fifo"]);

        write_output(Path::new("/dev/null"), b"discarded").unwrap();
        assert!(
            fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }

    #[test]
    fn burst_files_create_their_directory_and_keep_only_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let results = Results {
            dir: dir.path().join("results"),
            keep_per_target: 2,
            max_age: Duration::ZERO,
            include_text: false,
        };
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let mut names = Vec::new();
        let mut pruned = Vec::new();
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            let at = start + Duration::from_secs(i as u64);
            let written = write_burst_file(&results, "t", at, id, b"{}").unwrap();
            pruned.push(written.pruned);
            names.push(written.name);
        }
        assert_eq!(
            names,
            [
                "20261118T110640Z-a.json",
                "20261118T110641Z-b.json",
                "20261118T110642Z-c.json"
            ]
        );
        assert_eq!(files(&results.dir.join("t")), names[1..]);
        // Each write says what retention deleted, so nothing links to it any more.
        assert_eq!(
            pruned,
            [vec![], vec![], vec!["20261118T110640Z-a.json".to_owned()]]
        );
    }

    #[test]
    fn stamps_parse_only_our_names() {
        assert!(result_file_stamp("20261127T101500Z-abc.json").is_some());
        for name in [
            "20261127T101500Z.json",
            "20261127T101500Z-.json",
            "20261127T101500Z-abc.json.tmp",
            "notes.json",
            "2026112XT101500Z-abc.json",
            ".20261127T101500Z-abc.json.0123.tmp",
        ] {
            assert_eq!(result_file_stamp(name), None, "{name}");
        }
    }
}
