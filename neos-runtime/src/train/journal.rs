//! A run's output folder: `steps.jsonl`, one step record per line, only ever appended to;
//! `run.json`, the settings, status and best step, rewritten at every checkpoint; and
//! `checkpoint.json` (see [`super::checkpoint`]).
//!
//! Appending keeps what a run writes proportional to its length: a record is written once,
//! and a checkpoint holds the state and a digest of the records rather than the records.
//!
//! Crashes. A step's line is appended with one write once the step is committed, and a
//! checkpoint is only written after `steps.jsonl` is synced to the disk, covering exactly the
//! bytes appended so far. So the file always begins with the bytes the last checkpoint
//! covers, and whatever follows them (the lines of steps after that checkpoint, and a last
//! line cut short by a kill in the middle of its write) is what the run did after it. Resuming
//! checks the covered bytes against the checkpoint's digest and cuts the rest away; the steps
//! after the checkpoint are computed again, to the same bits. A kill while the checkpoint
//! itself is written leaves the previous one in place (see [`super::checkpoint`]), whose
//! covered bytes are still the file's first. `run.json` is informative only: it may lag
//! behind `steps.jsonl` by the steps since the last checkpoint.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::checkpoint::{hex, sync_folder_of, write_atomically, Checkpoint, RecordsDigest};
use super::log::{Best, RunSettings, RunStatus, StepRecord};
use super::trainer::TrainError;

/// The step records, one JSON object per line.
pub const STEPS_FILE: &str = "steps.jsonl";
/// The settings, status and best step, as of the last checkpoint.
pub const RUN_FILE: &str = "run.json";
/// The state to resume from.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

/// The step records as they are written: appended to `steps.jsonl` when there is an output
/// folder, and hashed as they go, so that a checkpoint can give the digest of the records
/// before it without reading them again.
///
/// The records are kept as their lines, all in one buffer, and parsed only when the run's
/// log is handed back. Kept as [`StepRecord`]s they would be seven small allocations a step
/// (the record's vectors and names), and small blocks that live on, allocated between the
/// large blocks each step of an analysis allocates and frees, fragment the allocator's heap:
/// glibc's resident memory then grew by 8 to 20 KB a step in runs of the blobs example whose
/// live heap grew by the records' 211 bytes a step. One buffer that doubles when it fills
/// does not.
pub(crate) struct Journal {
    /// The open `steps.jsonl` (in append mode) and its path; none without an output folder.
    file: Option<(File, PathBuf)>,
    hasher: Sha256,
    count: usize,
    /// The lines of records 1..=`count`, as in `steps.jsonl`.
    lines: Vec<u8>,
}

impl Journal {
    /// The digest of the records appended so far (and, on resumption, of those before them).
    pub fn digest(&self) -> RecordsDigest {
        RecordsDigest { count: self.count, bytes: self.lines.len() as u64, sha256: hex(self.hasher.clone()) }
    }

    /// Appends `record` as one line with one write.
    pub fn append(&mut self, record: &StepRecord) -> Result<(), TrainError> {
        let start = self.lines.len();
        if let Err(e) = serde_json::to_writer(&mut self.lines, record) {
            self.lines.truncate(start);
            return Err(TrainError::Io { path: self.path(), message: format!("cannot serialise step record: {e}") });
        }
        self.lines.push(b'\n');
        let line = &self.lines[start..];
        if let Some((file, path)) = &mut self.file {
            if let Err(e) = file.write_all(line) {
                let message = e.to_string();
                self.lines.truncate(start);
                return Err(TrainError::Io { path: path.clone(), message });
            }
        }
        self.hasher.update(line);
        self.count += 1;
        Ok(())
    }

    /// Puts the records appended so far on the disk, before a checkpoint covers them.
    pub fn sync(&self) -> Result<(), TrainError> {
        match &self.file {
            Some((file, path)) => {
                file.sync_data().map_err(|e| TrainError::Io { path: path.clone(), message: e.to_string() })
            }
            None => Ok(()),
        }
    }

    /// The records, parsed from their lines.
    pub fn records(&self) -> Result<Vec<StepRecord>, TrainError> {
        let mut records = Vec::with_capacity(self.count);
        for (i, line) in self.lines.split(|&b| b == b'\n').take(self.count).enumerate() {
            let record = serde_json::from_slice(line).map_err(|e| TrainError::Io {
                path: self.path(),
                message: format!("cannot read back step record {} from its line: {e}", i + 1),
            })?;
            records.push(record);
        }
        Ok(records)
    }

    fn path(&self) -> PathBuf {
        self.file.as_ref().map_or_else(|| PathBuf::from(STEPS_FILE), |(_, p)| p.clone())
    }
}

/// The records a checkpoint covers, as their lines, with their count and the hasher over
/// them, to go on from.
pub(crate) struct Covered {
    count: usize,
    lines: Vec<u8>,
    hasher: Sha256,
}

/// Reads the step records that `checkpoint` (read from `checkpoint_path`) covers from the
/// `steps.jsonl` beside it: the first `bytes` bytes must be there and have the checkpoint's
/// digest, and be `count` whole lines numbered 1..=count. What follows them is not read.
pub(crate) fn read_covered(checkpoint_path: &Path, checkpoint: &Checkpoint) -> Result<Covered, TrainError> {
    let path = steps_file_beside(checkpoint_path);
    let expected = &checkpoint.records;
    let refuse = |m: String| TrainError::Checkpoint(format!("{}: {m}", path.display()));
    let file = File::open(&path).map_err(|e| {
        refuse(format!(
            "cannot read the {} step records that checkpoint {} covers: {e}",
            expected.count,
            checkpoint_path.display()
        ))
    })?;
    let len = file.metadata().map_err(|e| refuse(format!("cannot read the step records: {e}")))?.len();
    if len < expected.bytes {
        return Err(refuse(format!(
            "expected at least the {} bytes of the {} step records that checkpoint {} covers, found {len} bytes",
            expected.bytes,
            expected.count,
            checkpoint_path.display()
        )));
    }
    let mut lines = Vec::with_capacity(usize::try_from(expected.bytes).unwrap_or(0));
    file.take(expected.bytes)
        .read_to_end(&mut lines)
        .map_err(|e| refuse(format!("cannot read the step records: {e}")))?;
    let mut hasher = Sha256::new();
    hasher.update(&lines);
    // The first line that is not the record it should be; reported only if the digest
    // matches, since a digest that does not match says more. The best step is found as the
    // trainer finds it, to compare with the checkpoint's.
    let mut problem: Option<String> = None;
    let mut best: Option<Best> = None;
    let metric = &checkpoint.settings.config.select_metric;
    let mut count = 0usize;
    for line in lines.split_inclusive(|&b| b == b'\n') {
        count += 1;
        if problem.is_some() {
            continue;
        }
        let Some(text) = line.strip_suffix(b"\n") else {
            problem = Some(format!("expected line {count} to end with a newline, found it cut short"));
            continue;
        };
        match serde_json::from_slice::<StepRecord>(text) {
            Ok(record) if record.step == count => {
                if let Some(value) = record.value(metric) {
                    if best.as_ref().is_none_or(|b| value < b.value) {
                        best = Some(Best { step: record.step, metric: metric.clone(), value });
                    }
                }
            }
            Ok(record) => {
                problem = Some(format!(
                    "expected step records numbered 1..={}, found step {} on line {count}",
                    expected.count, record.step
                ));
            }
            Err(e) => problem = Some(format!("expected a step record on line {count}, found invalid JSON: {e}")),
        }
    }
    let found = hex(hasher.clone());
    if found != expected.sha256 {
        return Err(refuse(format!(
            "the checksum of the first {} bytes ({} step records) does not match checkpoint {}, so the records were \
             changed or damaged after it was written: expected sha256 {} (recorded in the checkpoint), found {found} \
             (computed from the records)",
            expected.bytes,
            expected.count,
            checkpoint_path.display(),
            expected.sha256
        )));
    }
    if let Some(problem) = problem {
        return Err(refuse(problem));
    }
    if count != expected.count {
        return Err(refuse(format!(
            "expected {} step records in the first {} bytes, as checkpoint {} says, found {count}",
            expected.count,
            expected.bytes,
            checkpoint_path.display()
        )));
    }
    if best != checkpoint.best {
        return Err(refuse(format!(
            "expected the best step {} that the records give, found {} in checkpoint {}",
            describe(best.as_ref()),
            describe(checkpoint.best.as_ref()),
            checkpoint_path.display()
        )));
    }
    Ok(Covered { count, lines, hasher })
}

fn describe(best: Option<&Best>) -> String {
    match best {
        Some(b) => format!("(step {} with {} {:?})", b.step, b.metric, b.value),
        None => "(none)".into(),
    }
}

/// The `steps.jsonl` that a checkpoint at `checkpoint_path` covers.
pub(crate) fn steps_file_beside(checkpoint_path: &Path) -> PathBuf {
    checkpoint_path.parent().unwrap_or_else(|| Path::new("")).join(STEPS_FILE)
}

/// A journal that keeps the records in memory only, for runs without an output folder.
pub(crate) fn in_memory(covered: Option<Covered>) -> Journal {
    let (hasher, count, lines) = match covered {
        Some(c) => (c.hasher, c.count, c.lines),
        None => (Sha256::new(), 0, Vec::new()),
    };
    Journal { file: None, hasher, count, lines }
}

/// Prepares `dir` for a new run before its first step: creates it, writes the step-0
/// checkpoint first (so that a checkpoint left there by an earlier run no longer points into
/// the records about to be cleared), then an empty `steps.jsonl` and `run.json`. A folder that
/// cannot be created or written fails here, before any work is done.
pub(crate) fn start(dir: &Path, checkpoint: &Checkpoint) -> Result<Journal, TrainError> {
    create_folder(dir)?;
    checkpoint.save(&dir.join(CHECKPOINT_FILE))?;
    let path = dir.join(STEPS_FILE);
    let io = |e: io::Error| TrainError::Io { path: path.clone(), message: e.to_string() };
    let file = OpenOptions::new().create(true).write(true).truncate(true).open(&path).map_err(io)?;
    drop(file);
    sync_folder_of(&path).map_err(io)?;
    write_run_file(dir, checkpoint)?;
    open_for_append(path, Covered { count: 0, lines: Vec::new(), hasher: Sha256::new() })
}

/// Prepares `dir` to go on from `checkpoint` (read from `checkpoint_path`), whose records
/// `covered` are: the records after them in `dir`'s `steps.jsonl` are cut away when it is the
/// file they were read from, and otherwise the covered bytes are copied there along with the
/// checkpoint.
pub(crate) fn resume(
    dir: &Path,
    checkpoint_path: &Path,
    checkpoint: &Checkpoint,
    covered: Covered,
) -> Result<Journal, TrainError> {
    create_folder(dir)?;
    let source = steps_file_beside(checkpoint_path);
    let path = dir.join(STEPS_FILE);
    let io = |e: io::Error| TrainError::Io { path: path.clone(), message: e.to_string() };
    if same_file(&source, &path) {
        let file = OpenOptions::new().write(true).open(&path).map_err(io)?;
        file.set_len(covered.lines.len() as u64).map_err(io)?;
        file.sync_all().map_err(io)?;
    } else {
        // The records first: until the checkpoint is copied too, a checkpoint already in `dir`
        // is refused for records that do not match it rather than resumed wrongly.
        write_atomically(&path, |out| out.write_all(&covered.lines))?;
    }
    let target = dir.join(CHECKPOINT_FILE);
    if !same_file(checkpoint_path, &target) {
        checkpoint.save(&target)?;
    }
    write_run_file(dir, checkpoint)?;
    open_for_append(path, covered)
}

fn create_folder(dir: &Path) -> Result<(), TrainError> {
    fs::create_dir_all(dir).map_err(|e| TrainError::Io {
        path: dir.to_path_buf(),
        message: format!("expected an output folder that can be created, found it cannot: {e}"),
    })
}

fn open_for_append(path: PathBuf, covered: Covered) -> Result<Journal, TrainError> {
    let file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| TrainError::Io { path: path.clone(), message: e.to_string() })?;
    Ok(Journal { file: Some((file, path)), hasher: covered.hasher, count: covered.count, lines: covered.lines })
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(a), Ok(b)) = (fs::canonicalize(a), fs::canonicalize(b)) {
        a == b
    } else {
        false
    }
}

/// What `run.json` holds.
#[derive(Serialize)]
struct RunFile<'a> {
    settings: &'a RunSettings,
    status: &'a RunStatus,
    best: &'a Option<Best>,
    /// The steps done when it was written.
    step: usize,
    /// Where the step records are.
    records: &'a str,
}

/// Rewrites `run.json` in `dir` from `checkpoint`.
pub(crate) fn write_run_file(dir: &Path, checkpoint: &Checkpoint) -> Result<(), TrainError> {
    let run = RunFile {
        settings: &checkpoint.settings,
        status: &checkpoint.status,
        best: &checkpoint.best,
        step: checkpoint.step,
        records: STEPS_FILE,
    };
    write_atomically(&dir.join(RUN_FILE), |out| serde_json::to_writer_pretty(out, &run).map_err(io::Error::from))
}
