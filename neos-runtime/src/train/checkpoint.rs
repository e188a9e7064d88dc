//! Checkpoints: everything needed to continue a run exactly, as one JSON file.
//!
//! serde_json writes every f64 in its shortest round-trip form, and with its
//! `float_roundtrip` feature (which this crate enables) reads it back to the same bits; its
//! default parser can miss by an ulp, which would make a resumed run drift from an
//! uninterrupted one. The tests check the round trip on random bit patterns.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::adam::AdamState;
use super::data::DataFingerprint;
use super::log::RunLog;
use super::trainer::TrainError;

/// The format version written into every checkpoint; loading another version is refused.
pub const FORMAT: u32 = 1;

/// The state of a run after `step` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: u32,
    pub step: usize,
    pub params: Vec<f64>,
    pub adam: AdamState,
    /// The parameters of the best step so far (the initial ones before any step).
    pub best_params: Vec<f64>,
    /// What [`super::Analysis::state`] returned after the step.
    pub analysis_state: Vec<f64>,
    /// The data the run was made with.
    pub data: DataFingerprint,
    /// The log so far, with the settings (the configuration among them) and the best step.
    pub log: RunLog,
}

impl Checkpoint {
    /// Writes the checkpoint to `path` through a temporary file and a rename, so that a crash
    /// while writing never leaves a truncated checkpoint in place of the previous one. The JSON
    /// is compact: a network's parameters and moments are millions of numbers, and indenting
    /// each would add a third to the file.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        write_json_atomically(path, self, false)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Checkpoint, TrainError> {
        let text = fs::read_to_string(path)
            .map_err(|e| TrainError::Checkpoint(format!("cannot read checkpoint {}: {e}", path.display())))?;
        let mut checkpoint: Checkpoint = serde_json::from_str(&text).map_err(|e| {
            TrainError::Checkpoint(format!("expected a neos checkpoint in {}, found invalid JSON: {e}", path.display()))
        })?;
        if checkpoint.format != FORMAT {
            return Err(TrainError::Checkpoint(format!(
                "expected checkpoint format {FORMAT} in {}, found {}",
                path.display(),
                checkpoint.format
            )));
        }
        if checkpoint.log.records.len() != checkpoint.step {
            return Err(TrainError::Checkpoint(format!(
                "expected {} step records in checkpoint {} at step {}, found {}",
                checkpoint.step,
                path.display(),
                checkpoint.step,
                checkpoint.log.records.len()
            )));
        }
        // The log leaves the parameters out of its JSON; the checkpoint holds them.
        checkpoint.log.params = checkpoint.params.clone();
        checkpoint.log.best_params = checkpoint.best_params.clone();
        Ok(checkpoint)
    }
}

/// Serialises `value` as JSON (indented when `pretty`) into `path` via `path.tmp` and a rename.
pub(crate) fn write_json_atomically<T: Serialize>(path: &Path, value: &T, pretty: bool) -> Result<(), TrainError> {
    let io = |e: std::io::Error| TrainError::Io { path: path.to_path_buf(), message: e.to_string() };
    let text = if pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) }
        .map_err(|e| TrainError::Io { path: path.to_path_buf(), message: format!("cannot serialise: {e}") })?;
    let mut tmp: PathBuf = path.to_path_buf();
    tmp.as_mut_os_string().push(".tmp");
    fs::write(&tmp, text).map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}
