//! Training a compiled analysis: the [`Analysis`] trait that `neos!` implements for each
//! analysis type, Adam, seeded batches, the training loop with test-set metrics, best-model
//! selection, checkpoints that resume exactly, the run log, and the trained parameters saved
//! with their names and shapes.

mod adam;
mod checkpoint;
mod data;
mod journal;
mod log;
mod params;
mod trainer;

pub use adam::{Adam, AdamState};
pub use checkpoint::{Checkpoint, RecordsDigest};
pub use data::{train_test_split, validate_data, Batcher, DataFingerprint, Split};
pub use journal::{CHECKPOINT_FILE, RUN_FILE, STEPS_FILE};
pub use log::{Best, RunLog, RunSettings, RunStatus, SampleInfo, StepRecord, RESERVED_FIELDS};
pub use params::{load_params, save_params, PARAMETERS_FORMAT};
pub use trainer::{resume, resume_with, train, train_with, StepObserver, TrainConfig, TrainError};

use ndarray::ArrayView2;

use crate::error::RunError;

/// What the trainer needs from a compiled analysis.
pub trait Analysis {
    /// The event samples (the analysis inputs) as (name, feature count), in declaration order.
    fn samples(&self) -> Vec<(String, usize)>;
    /// Total number of trainable scalars (all parameters flattened in declaration order).
    fn param_count(&self) -> usize;
    /// Per sample, the knob that takes the number of events of the whole sample, for analyses
    /// whose results scale with it (weighted yields and Monte Carlo uncertainties estimate the
    /// whole sample's sums from a batch); the trainer sets it. Analyses without any keep the
    /// default (none).
    fn sample_size_knobs(&self) -> Vec<Option<String>> {
        Vec::new()
    }
    /// Initial parameters from a seed (Glorot-normal weights like jax's stax, zero biases, ...).
    fn init(&self, seed: u64) -> Vec<f64>;
    /// The objectives it can be trained on, e.g. ["cls", "discovery", "poi_uncert", "bce"].
    fn objectives(&self) -> Vec<String>;
    /// Loss and gradient of `objective` at `params` on one batch: one row-major [events, features]
    /// view per sample (each with its own number of events), with run-time knobs by name (knobs not
    /// given take their defaults).
    fn value_and_grad(
        &mut self,
        objective: &str,
        params: &[f64],
        batch: &[ArrayView2<'_, f64>],
        knobs: &[(String, f64)],
    ) -> Result<(f64, Vec<f64>), RunError>;
    /// Names of the reported metrics, e.g. ["cls", "discovery", "poi_uncert"].
    fn metric_names(&self) -> Vec<String>;
    fn metrics(
        &mut self,
        params: &[f64],
        batch: &[ArrayView2<'_, f64>],
        knobs: &[(String, f64)],
    ) -> Result<Vec<f64>, RunError>;
    /// Named vectors derived from the parameters worth logging each step (e.g. ("edges", bin edges)).
    fn report(&mut self, params: &[f64]) -> Result<Vec<(String, Vec<f64>)>, RunError>;

    /// Mutable state carried between calls that changes results, such as the fits' warm starts.
    /// Checkpoints save it and [`resume`] restores it, so that a resumed run is bit-identical to
    /// an uninterrupted one; the trainer reads it after every step, so keep it small. Analyses
    /// without such state keep the default (none).
    fn state(&self) -> Vec<f64> {
        Vec::new()
    }

    /// Restores what [`Analysis::state`] returned.
    fn set_state(&mut self, state: &[f64]) -> Result<(), RunError> {
        if state.is_empty() {
            Ok(())
        } else {
            Err(RunError::new(
                "set_state",
                format!("expected no state for an analysis without any, found {} values", state.len()),
            ))
        }
    }
}
