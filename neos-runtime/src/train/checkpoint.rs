//! Checkpoints: the state needed to continue a run exactly, as one sealed JSON file.
//!
//! The file is `{"format":2,"checkpoint":{…},"sha256":"…"}`. The checkpoint holds the
//! state after `step` steps and, instead of the step records themselves (which the run appends
//! to `steps.jsonl`, see [`super::journal`]), how many records it follows from, how many bytes
//! of `steps.jsonl` they take and their SHA-256. `sha256` is the SHA-256 of the checkpoint's
//! canonical serialisation: its compact JSON as this crate writes it (fields in declaration
//! order, every f64 in its shortest round-trip form). Loading parses the file and recomputes
//! the digest from the values it read, so any change to a value (a weight nudged in its last
//! digit, a moment, the step) is refused, while the digest of the records ties the checkpoint
//! to the exact bytes of the records before it.
//!
//! serde_json writes every f64 in its shortest round-trip form, and with its
//! `float_roundtrip` feature (which this crate enables) reads it back to the same bits; its
//! default parser can miss by an ulp, which would make a resumed run drift from an
//! uninterrupted one (and would make the recomputed digest differ). The tests check the round
//! trip on random bit patterns.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::adam::AdamState;
use super::data::DataFingerprint;
use super::log::{Best, RunSettings, RunStatus};
use super::trainer::TrainError;

/// The format version written into every checkpoint; loading another version is refused.
///
/// Format 1 embedded the whole run log and had no checksum; format 2 is sealed by a SHA-256
/// and points into the append-only `steps.jsonl`.
const FORMAT: u32 = 2;

/// The step records a checkpoint follows from: the first `count` lines of `steps.jsonl`,
/// which take its first `bytes` bytes and have the SHA-256 `sha256` (lowercase hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsDigest {
    pub count: usize,
    pub bytes: u64,
    pub sha256: String,
}

impl RecordsDigest {
    /// The digest of no records at all.
    pub fn empty() -> RecordsDigest {
        RecordsDigest { count: 0, bytes: 0, sha256: hex(Sha256::new()) }
    }
}

/// The state of a run after `step` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub step: usize,
    pub params: Vec<f64>,
    pub adam: AdamState,
    /// The parameters of the best step so far (the initial ones before any step).
    pub best_params: Vec<f64>,
    /// The best step so far (none before any step).
    pub best: Option<Best>,
    /// What [`super::Analysis::state`] returned after the step.
    pub analysis_state: Vec<f64>,
    /// The data the run was made with.
    pub data: DataFingerprint,
    /// The settings (the configuration among them) and what the run ran on.
    pub settings: RunSettings,
    /// How the run stood when the checkpoint was written.
    pub status: RunStatus,
    /// The step records 1..=`step` in `steps.jsonl`.
    pub records: RecordsDigest,
}

/// The file as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    /// Checked through [`Header`] before the rest is read.
    #[serde(rename = "format")]
    _format: u32,
    sha256: String,
    checkpoint: Checkpoint,
}

/// Just the format, read before the rest so that another format gets its own message rather
/// than a complaint about the fields it lacks.
#[derive(Deserialize)]
struct Header {
    format: Option<u32>,
}

impl Checkpoint {
    /// The SHA-256 of the canonical serialisation (see the module's docs), in lowercase hex.
    fn digest(&self) -> Result<String, serde_json::Error> {
        let mut hasher = Sha256::new();
        serde_json::to_writer(&mut hasher, self)?;
        Ok(hex(hasher))
    }

    /// Writes the checkpoint, sealed with its digest, to `path` through a temporary file, an
    /// fsync and a rename, so that a crash while writing never leaves a truncated checkpoint
    /// in place of the previous one, and a checkpoint that is in place is on the disk. The
    /// JSON is compact and streamed to the file, through the hasher on its way, in one pass:
    /// a network's parameters and moments are millions of numbers, and neither a copy of them
    /// nor of their text is made.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        write_atomically(path, |out| {
            write!(out, "{{\"format\":{FORMAT},\"checkpoint\":")?;
            let mut tee = Tee { out: &mut *out, hasher: Sha256::new() };
            serde_json::to_writer(&mut tee, self)?;
            let sha256 = hex(tee.hasher);
            write!(out, ",\"sha256\":\"{sha256}\"}}")
        })
    }

    /// Reads a checkpoint written by [`Checkpoint::save`], refusing another format, a digest
    /// that does not match the contents, and contents that contradict each other. The step
    /// records it covers are checked when a run resumes from it.
    pub fn load(path: &Path) -> Result<Checkpoint, TrainError> {
        let refuse = |m: String| Err(TrainError::Checkpoint(format!("{}: {m}", path.display())));
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => return refuse(format!("cannot read the checkpoint: {e}")),
        };
        let wrong_format = match serde_json::from_str::<Header>(&text) {
            Ok(Header { format: Some(FORMAT) }) => None,
            Ok(Header { format: Some(1) }) => Some(format!(
                "expected checkpoint format {FORMAT}, found format 1, written by an earlier neos before checkpoints \
                 were sealed with a checksum; it cannot be resumed, start the run again"
            )),
            Ok(Header { format: Some(other) }) => {
                Some(format!("expected checkpoint format {FORMAT}, found format {other}"))
            }
            Ok(Header { format: None }) => Some("expected a neos checkpoint, found JSON without a format field".into()),
            Err(e) => Some(format!("expected a neos checkpoint, found invalid JSON: {e}")),
        };
        if let Some(why) = wrong_format {
            return refuse(why);
        }
        let sealed: Sealed = match serde_json::from_str(&text) {
            Ok(sealed) => sealed,
            Err(e) => return refuse(format!("expected a neos checkpoint of format {FORMAT}, found invalid JSON: {e}")),
        };
        drop(text);
        let found = match sealed.checkpoint.digest() {
            Ok(found) => found,
            Err(e) => return refuse(format!("cannot serialise the checkpoint to check its checksum: {e}")),
        };
        if found != sealed.sha256 {
            return refuse(format!(
                "the checksum does not match the contents, so the checkpoint was changed or damaged after it was \
                 written: expected sha256 {} (recorded in the file), found {found} (computed from its contents)",
                sealed.sha256
            ));
        }
        let checkpoint = sealed.checkpoint;
        if let Some(why) = checkpoint.inconsistency() {
            return refuse(why);
        }
        Ok(checkpoint)
    }

    /// What in the checkpoint contradicts the rest, if anything. A checkpoint that
    /// [`Checkpoint::save`] wrote from a run never does; one edited and sealed again might.
    fn inconsistency(&self) -> Option<String> {
        let step = self.step;
        let n = self.settings.param_count;
        if self.records.count != step {
            return Some(format!(
                "expected the checkpoint at step {step} to cover step records 1..={step}, found it covers {} records",
                self.records.count
            ));
        }
        if self.records.count == 0 && self.records.bytes != 0 {
            return Some(format!("expected no bytes of step records at step 0, found {}", self.records.bytes));
        }
        if self.records.count > 0 && self.records.bytes == 0 {
            return Some(format!("expected the {} step records to take some bytes, found none", self.records.count));
        }
        if self.records.sha256.len() != 64 || !self.records.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(format!(
                "expected the step records' sha256 as 64 hex digits, found {:?}",
                self.records.sha256
            ));
        }
        if self.adam.count != step as u64 {
            return Some(format!("expected Adam's update count to equal the step {step}, found {}", self.adam.count));
        }
        for (what, len) in [
            ("parameters", self.params.len()),
            ("best parameters", self.best_params.len()),
            ("Adam's first moments", self.adam.m.len()),
            ("Adam's second moments", self.adam.v.len()),
        ] {
            if len != n {
                return Some(format!("expected {n} {what} (the run's parameter count), found {len}"));
            }
        }
        if step > self.settings.config.steps {
            return Some(format!(
                "expected at most the configured {} steps done, found step {step}",
                self.settings.config.steps
            ));
        }
        match &self.best {
            None if step > 0 => Some(format!("expected a best step after {step} steps, found none")),
            None => None,
            Some(best) if step == 0 => Some(format!("expected no best step before any step, found step {}", best.step)),
            Some(best) if best.step == 0 || best.step > step => {
                Some(format!("expected the best step within 1..={step}, found {}", best.step))
            }
            Some(best) if best.metric != self.settings.config.select_metric => Some(format!(
                "expected the best step selected by {}, found {}",
                self.settings.config.select_metric, best.metric
            )),
            Some(_) => None,
        }
    }
}

/// A writer that hashes what it passes on.
struct Tee<'a, W: Write> {
    out: &'a mut W,
    hasher: Sha256,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Lowercase hex of a finished SHA-256.
pub(crate) fn hex(hasher: Sha256) -> String {
    format!("{:x}", hasher.finalize())
}

/// Writes a file through `path.tmp`, an fsync and a rename (then an fsync of the folder, where
/// the platform allows one), so that `path` always holds either the old or the whole new
/// contents, also after a crash of the machine.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), TrainError> {
    let io = |e: io::Error| TrainError::Io { path: path.to_path_buf(), message: e.to_string() };
    let mut tmp: PathBuf = path.to_path_buf();
    tmp.as_mut_os_string().push(".tmp");
    let mut out = BufWriter::new(File::create(&tmp).map_err(io)?);
    write(&mut out).map_err(io)?;
    out.flush().map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)?;
    sync_folder_of(path).map_err(io)
}

/// Makes a rename or a new file in `path`'s folder durable. Only Unix can open a folder to
/// sync it; elsewhere the rename is left to the file system.
pub(crate) fn sync_folder_of(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            Some(_) | None => Path::new("."),
        };
        File::open(folder)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
