//! The training loop: batches → loss and gradient → Adam → test-set metrics → log, with
//! best-model selection, checkpoints, and exact resumption.
//!
//! Determinism. Nothing in a step depends on anything but the seed, the step number and the
//! state a checkpoint holds (parameters, Adam's moments, the best step, the analysis's own
//! state), so the same configuration gives bit-identical runs, and a run resumed from a
//! checkpoint continues bit for bit as if it had never stopped. Only the wall times differ.
//!
//! Failure. A step that fails (the analysis returns an error, or the loss, the gradient or a
//! metric is not finite) is not applied: the run stops with an error naming the step, and the
//! state after the last good step is written as a checkpoint first (when there is an output
//! folder) and handed back in the error in any case, with the log, so a run is never lost.
//!
//! Output. With an output folder, a run first checks that it can create and write it (and
//! fails before any step if not), then appends each step's record to `steps.jsonl` and
//! rewrites `checkpoint.json` and `run.json` at checkpoints; see [`super::journal`] for how
//! this survives a kill at any moment. What a run writes grows linearly with its steps, and
//! what it keeps in memory grows only by each step's record.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::adam::{Adam, AdamState};
use super::checkpoint::{Checkpoint, RecordsDigest};
use super::data::{train_test_split, validate_data, Batcher, DataFingerprint, Split};
use super::journal::{self, Journal, CHECKPOINT_FILE};
use super::log::{Best, RunLog, RunSettings, RunStatus, SampleInfo, StepRecord, RESERVED_FIELDS};
use super::Analysis;

/// What a training run does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Steps (updates) in all; a resumed run goes on up to this many.
    pub steps: usize,
    /// Events per sample in each batch.
    pub batch_size: usize,
    /// Adam's learning rate (its other settings are optax's defaults).
    pub learning_rate: f64,
    /// Seeds the initial parameters, the train/test split and the batches.
    pub seed: u64,
    /// Fraction of each sample's events used for training; the rest is the test set.
    pub train_fraction: f64,
    /// The objective to minimise, one of [`Analysis::objectives`].
    pub objective: String,
    /// Knobs for the loss and gradient on the training batches.
    pub train_knobs: Vec<(String, f64)>,
    /// Knobs for the metrics on the test set.
    pub test_knobs: Vec<(String, f64)>,
    /// The metric whose smallest value on the test set selects the best parameters.
    pub select_metric: String,
    /// Write a checkpoint every this many steps (0: only at the end and on failure; a run
    /// also writes one before its first step, so that it can be resumed however early it
    /// stops); only with an output folder.
    pub checkpoint_every: usize,
    /// Where `checkpoint.json`, `run.json` and `steps.jsonl` go; nothing is written without
    /// it.
    pub out_dir: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl TrainConfig {
    /// Training on `objective`, selecting by `select_metric`, with the other settings at their
    /// defaults: 100 steps, batches of 500 events, learning rate 1e−3, seed 0, a 0.75 train
    /// fraction, no knobs, checkpoints every 50 steps, no output folder, no progress bar.
    pub fn new(objective: &str, select_metric: &str) -> Self {
        TrainConfig {
            steps: 100,
            batch_size: 500,
            learning_rate: 1e-3,
            seed: 0,
            train_fraction: 0.75,
            objective: objective.to_string(),
            train_knobs: Vec::new(),
            test_knobs: Vec::new(),
            select_metric: select_metric.to_string(),
            checkpoint_every: 50,
            out_dir: None,
            progress: false,
        }
    }

    /// The settings that change what a run computes, by name, for comparing a resumed run's
    /// configuration with its checkpoint's (steps, checkpoints, output and progress may change).
    fn determining(&self) -> [(&'static str, String); 8] {
        let knobs = |k: &[(String, f64)]| k.iter().map(|(n, v)| format!("{n}={v:?}")).collect::<Vec<_>>().join(", ");
        [
            ("batch_size", self.batch_size.to_string()),
            ("learning_rate", format!("{:?}", self.learning_rate)),
            ("seed", self.seed.to_string()),
            ("train_fraction", format!("{:?}", self.train_fraction)),
            ("objective", self.objective.clone()),
            ("train_knobs", format!("[{}]", knobs(&self.train_knobs))),
            ("test_knobs", format!("[{}]", knobs(&self.test_knobs))),
            ("select_metric", self.select_metric.clone()),
        ]
    }
}

/// Why a run could not start or did not finish.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainError {
    /// The configuration does not fit the analysis or is unusable.
    Config(String),
    /// The data do not fit the analysis or the configuration.
    Data(String),
    /// A checkpoint or the step records it covers cannot be read, were changed or damaged, or
    /// belong to another run.
    Checkpoint(String),
    /// Creating the output folder or writing a file in it failed.
    Io { path: PathBuf, message: String },
    /// Step `step` (counting from 1) failed. `last_good` is the state after the step before it,
    /// `log` the run up to it, `saved` where the state was written (when there is an output
    /// folder and writing worked).
    Step { step: usize, message: String, last_good: Box<Checkpoint>, log: Box<RunLog>, saved: Option<PathBuf> },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::Config(m) => write!(f, "training configuration: {m}"),
            TrainError::Data(m) => write!(f, "training data: {m}"),
            TrainError::Checkpoint(m) => write!(f, "checkpoint: {m}"),
            TrainError::Io { path, message } => write!(f, "cannot write {}: {message}", path.display()),
            TrainError::Step { step, message, last_good, log: _, saved } => {
                write!(f, "step {step}: {message}; ")?;
                match saved {
                    Some(path) => write!(f, "the state after step {} is saved in {}", last_good.step, path.display()),
                    None => write!(f, "the state after step {} is returned with this error", last_good.step),
                }
            }
        }
    }
}

impl std::error::Error for TrainError {}

/// Trains `analysis` on `data` (one array of events per sample, in the analysis's order) from
/// the parameters `init(config.seed)`.
pub fn train<A: Analysis>(analysis: &mut A, data: &[Array2<f64>], config: &TrainConfig) -> Result<RunLog, TrainError> {
    train_with(analysis, data, config, &mut |_, _| None)
}

/// Watches a run: called with each step's record and the parameters after the step, once the
/// step is committed; a returned line is printed (above the progress bar when there is one), so
/// that examples can report every step and draw the network as it trains.
pub type StepObserver<'a> = dyn FnMut(&StepRecord, &[f64]) -> Option<String> + 'a;

/// [`train`], calling `observer` after every step.
pub fn train_with<A: Analysis>(
    analysis: &mut A,
    data: &[Array2<f64>],
    config: &TrainConfig,
    observer: &mut StepObserver<'_>,
) -> Result<RunLog, TrainError> {
    let setup = Setup::new(analysis, data, config)?;
    let params = analysis.init(config.seed);
    if params.len() != setup.settings.param_count {
        return Err(TrainError::Config(format!(
            "expected init to give the analysis's {} parameters, found {}",
            setup.settings.param_count,
            params.len()
        )));
    }
    if let Some(i) = params.iter().position(|p| !p.is_finite()) {
        return Err(TrainError::Config(format!("expected finite initial parameters, found {} at {i}", params[i])));
    }
    let checkpoint = Checkpoint {
        step: 0,
        adam: AdamState::new(params.len()),
        best_params: params.clone(),
        params,
        best: None,
        analysis_state: analysis.state(),
        data: setup.fingerprint.clone(),
        settings: setup.settings.clone(),
        status: RunStatus::Running,
        records: RecordsDigest::empty(),
    };
    let journal = match &config.out_dir {
        Some(dir) => journal::start(dir, &checkpoint)?,
        None => journal::in_memory(None),
    };
    run(analysis, setup, State { checkpoint, journal }, config, observer)
}

/// Continues the run saved in `checkpoint` up to `config.steps` steps. The data, the analysis's
/// samples, parameter count and metrics, and the settings that determine the run (all but
/// steps, checkpoint interval, output folder and progress bar) must be those of the checkpoint.
///
/// The checkpoint must match its checksum, and the `steps.jsonl` beside it must begin with
/// the step records it covers, unchanged; records after those (of steps after the checkpoint)
/// are cut away from it when the run goes on in the same folder, and computed again.
pub fn resume<A: Analysis>(
    analysis: &mut A,
    data: &[Array2<f64>],
    config: &TrainConfig,
    checkpoint: &Path,
) -> Result<RunLog, TrainError> {
    resume_with(analysis, data, config, checkpoint, &mut |_, _| None)
}

/// [`resume`], calling `observer` after every step.
pub fn resume_with<A: Analysis>(
    analysis: &mut A,
    data: &[Array2<f64>],
    config: &TrainConfig,
    checkpoint: &Path,
    observer: &mut StepObserver<'_>,
) -> Result<RunLog, TrainError> {
    let saved = Checkpoint::load(checkpoint)?;
    let setup = Setup::new(analysis, data, config)?;
    let names: Vec<String> = setup.settings.samples.iter().map(|s| s.name.clone()).collect();
    let refuse = |m: String| Err(TrainError::Checkpoint(format!("cannot resume from {}: {m}", checkpoint.display())));
    if let Some(why) = setup.fingerprint.mismatch(&saved.data, &names) {
        return refuse(why);
    }
    let then = &saved.settings;
    if then.param_count != setup.settings.param_count {
        return refuse(format!(
            "expected an analysis with the checkpoint's {} parameters, found {}",
            then.param_count, setup.settings.param_count
        ));
    }
    let sample_list = |s: &[SampleInfo]| s.iter().map(|s| format!("{}[{}]", s.name, s.features)).collect::<Vec<_>>();
    if sample_list(&then.samples) != sample_list(&setup.settings.samples) {
        return refuse(format!(
            "expected the checkpoint's samples {:?}, found {:?}",
            sample_list(&then.samples),
            sample_list(&setup.settings.samples)
        ));
    }
    if then.metric_names != setup.settings.metric_names {
        return refuse(format!(
            "expected the checkpoint's metrics {:?}, found {:?}",
            then.metric_names, setup.settings.metric_names
        ));
    }
    for ((name, was), (_, now)) in then.config.determining().into_iter().zip(config.determining()) {
        if was != now {
            return refuse(format!(
                "expected {name} = {was} as in the checkpoint, found {now}; other settings would not continue the same run"
            ));
        }
    }
    if saved.step > config.steps {
        return refuse(format!("expected at most {} steps done, found {}", config.steps, saved.step));
    }
    let covered = journal::read_covered(checkpoint, &saved)?;
    analysis
        .set_state(&saved.analysis_state)
        .map_err(|e| TrainError::Checkpoint(format!("cannot restore the analysis's state: {e}")))?;
    let mut state = saved;
    state.settings = setup.settings.clone();
    state.status = RunStatus::Running;
    let journal = match &config.out_dir {
        Some(dir) => journal::resume(dir, checkpoint, &state, covered)?,
        None => journal::in_memory(Some(covered)),
    };
    run(analysis, setup, State { checkpoint: state, journal }, config, observer)
}

/// What a run needs besides its evolving state: the batches, the test set and the settings.
struct Setup {
    batcher: Batcher,
    test: Vec<Array2<f64>>,
    fingerprint: DataFingerprint,
    settings: RunSettings,
    /// The knobs of the training steps and of the test metrics: the configuration's, and the
    /// size of each whole sample where the analysis asks for it.
    train_knobs: Vec<(String, f64)>,
    test_knobs: Vec<(String, f64)>,
}

impl Setup {
    fn new<A: Analysis>(analysis: &mut A, data: &[Array2<f64>], config: &TrainConfig) -> Result<Setup, TrainError> {
        let samples = analysis.samples();
        let names: Vec<String> = samples.iter().map(|(n, _)| n.clone()).collect();
        check_config(analysis, config)?;
        let views: Vec<ArrayView2<'_, f64>> = data.iter().map(|x| x.view()).collect();
        validate_data(&views, &samples).map_err(TrainError::Data)?;
        let fingerprint = DataFingerprint::of(&views);
        let Split { train, test } =
            train_test_split(&views, &names, config.train_fraction, config.seed).map_err(TrainError::Data)?;
        let train_events: Vec<usize> = train.iter().map(Array2::nrows).collect();
        let batcher = Batcher::new(train, &names, config.batch_size, config.seed).map_err(TrainError::Data)?;
        let settings = RunSettings {
            config: config.clone(),
            param_count: analysis.param_count(),
            samples: samples
                .iter()
                .zip(&train_events)
                .zip(&test)
                .map(|(((name, features), &train_events), t)| SampleInfo {
                    name: name.clone(),
                    features: *features,
                    train_events,
                    test_events: t.nrows(),
                })
                .collect(),
            metric_names: analysis.metric_names(),
            batches_per_epoch: batcher.batches_per_epoch(),
        };
        // Batches and test sets are parts of the samples; analyses that estimate whole-sample
        // sums from them are told each sample's size (unless the configuration sets it).
        let sizes: Vec<(String, f64)> = analysis
            .sample_size_knobs()
            .into_iter()
            .zip(data)
            .filter_map(|(knob, x)| Some((knob?, x.nrows() as f64)))
            .collect();
        let with_sizes = |knobs: &[(String, f64)]| {
            let mut all = knobs.to_vec();
            all.extend(sizes.iter().filter(|(k, _)| !knobs.iter().any(|(given, _)| given == k)).cloned());
            all
        };
        let (train_knobs, test_knobs) = (with_sizes(&config.train_knobs), with_sizes(&config.test_knobs));
        Ok(Setup { batcher, test, fingerprint, settings, train_knobs, test_knobs })
    }
}

/// Checks the configuration against itself and against what the analysis offers.
fn check_config<A: Analysis>(analysis: &mut A, config: &TrainConfig) -> Result<(), TrainError> {
    let err = |m: String| Err(TrainError::Config(m));
    if config.steps == 0 {
        return err("expected at least one step, found 0".into());
    }
    Adam::new(config.learning_rate).validate().map_err(|e| TrainError::Config(e.message))?;
    let objectives = analysis.objectives();
    if !objectives.contains(&config.objective) {
        return err(format!("expected an objective among {objectives:?}, found {:?}", config.objective));
    }
    let metrics = analysis.metric_names();
    if !metrics.contains(&config.select_metric) {
        return err(format!("expected a selection metric among {metrics:?}, found {:?}", config.select_metric));
    }
    let zeros = vec![0.0; analysis.param_count()];
    let reports: Vec<String> = match analysis.report(&zeros) {
        Ok(r) => r.into_iter().map(|(n, _)| n).collect(),
        Err(e) => return err(format!("the analysis's report at zero parameters: {e}")),
    };
    let mut seen: Vec<&str> = RESERVED_FIELDS.to_vec();
    for name in metrics.iter().chain(&reports) {
        if seen.contains(&name.as_str()) {
            return err(format!(
                "expected metric and report names distinct from each other and from {RESERVED_FIELDS:?}, found {name:?} twice"
            ));
        }
        seen.push(name);
    }
    for (which, knobs) in [("train_knobs", &config.train_knobs), ("test_knobs", &config.test_knobs)] {
        for (i, (name, value)) in knobs.iter().enumerate() {
            if !value.is_finite() {
                return err(format!("{which}: expected a finite value for knob {name:?}, found {value}"));
            }
            if knobs[..i].iter().any(|(n, _)| n == name) {
                return err(format!("{which}: expected each knob once, found {name:?} twice"));
            }
        }
    }
    Ok(())
}

/// What changes from step to step: the state a checkpoint holds, and the records.
struct State {
    checkpoint: Checkpoint,
    /// The records of steps 1..=`checkpoint.step`.
    journal: Journal,
}

impl State {
    /// Writes `checkpoint.json` and `run.json` into `dir` once the records are on the disk;
    /// returns the checkpoint's path.
    fn save(&mut self, dir: &Path) -> Result<PathBuf, TrainError> {
        self.journal.sync()?;
        self.checkpoint.records = self.journal.digest();
        let path = dir.join(CHECKPOINT_FILE);
        self.checkpoint.save(&path)?;
        journal::write_run_file(dir, &self.checkpoint)?;
        Ok(path)
    }

    /// The run's log with the given records, taking the parameters.
    fn into_log(self, records: Vec<StepRecord>) -> RunLog {
        let c = self.checkpoint;
        RunLog {
            settings: c.settings,
            status: c.status,
            best: c.best,
            records,
            params: c.params,
            best_params: c.best_params,
        }
    }
}

/// One step's outcome before it is committed to the state.
struct StepOutcome {
    params: Vec<f64>,
    adam: AdamState,
    record: StepRecord,
}

fn run<A: Analysis>(
    analysis: &mut A,
    mut setup: Setup,
    mut state: State,
    config: &TrainConfig,
    observer: &mut StepObserver<'_>,
) -> Result<RunLog, TrainError> {
    let adam = Adam::new(config.learning_rate);
    let test_views: Vec<ArrayView2<'_, f64>> = setup.test.iter().map(|x| x.view()).collect();
    let bar = progress_bar(config, state.checkpoint.step);
    while state.checkpoint.step < config.steps {
        let step = state.checkpoint.step + 1;
        let knobs = (&setup.train_knobs[..], &setup.test_knobs[..]);
        let outcome = match one_step(analysis, &adam, &mut setup.batcher, &test_views, &state.checkpoint, config, knobs)
        {
            Ok(outcome) => outcome,
            Err(message) => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                return Err(fail(state, config, step, message));
            }
        };
        let selected = outcome.record.value(&config.select_metric);
        if let Some(bar) = &bar {
            bar.set_message(format!(
                "loss {:.4}  {} {:.4}",
                outcome.record.loss,
                config.select_metric,
                selected.unwrap_or(f64::NAN)
            ));
            bar.set_position(step as u64);
        }
        let c = &mut state.checkpoint;
        c.step = step;
        c.params = outcome.params;
        c.adam = outcome.adam;
        c.analysis_state = analysis.state();
        if let Some(value) = selected {
            if c.best.as_ref().is_none_or(|b| value < b.value) {
                c.best = Some(Best { step, metric: config.select_metric.clone(), value });
                c.best_params.clone_from(&c.params);
            }
        }
        if let Some(line) = observer(&outcome.record, &state.checkpoint.params) {
            match &bar {
                Some(bar) => bar.println(line),
                None => println!("{line}"),
            }
        }
        state.journal.append(&outcome.record)?;
        if let Some(dir) = &config.out_dir {
            if config.checkpoint_every > 0 && step % config.checkpoint_every == 0 && step < config.steps {
                state.save(dir)?;
            }
        }
    }
    if let Some(bar) = &bar {
        bar.finish();
    }
    state.checkpoint.status = RunStatus::Completed;
    if let Some(dir) = &config.out_dir {
        state.save(dir)?;
    }
    let records = state.journal.records()?;
    Ok(state.into_log(records))
}

/// Knob values by name, as the generated entry points take them.
type Knobs = [(String, f64)];

/// Runs step `state.step + 1` without touching the state; an error message says what failed.
fn one_step<A: Analysis>(
    analysis: &mut A,
    adam: &Adam,
    batcher: &mut Batcher,
    test: &[ArrayView2<'_, f64>],
    state: &Checkpoint,
    config: &TrainConfig,
    (train_knobs, test_knobs): (&Knobs, &Knobs),
) -> Result<StepOutcome, String> {
    let start = Instant::now();
    let batch: Vec<ArrayView2<'_, f64>> = batcher.batch(state.step).iter().map(|x| x.view()).collect();
    let (loss, grad) = analysis
        .value_and_grad(&config.objective, &state.params, &batch, train_knobs)
        .map_err(|e| format!("the loss and gradient failed: {e}"))?;
    if !loss.is_finite() {
        return Err(format!("expected a finite loss, found {loss}"));
    }
    if grad.len() != state.params.len() {
        return Err(format!("expected a gradient of {} entries, found {}", state.params.len(), grad.len()));
    }
    if let Some(i) = grad.iter().position(|g| !g.is_finite()) {
        return Err(format!("expected a finite gradient, found {} for parameter {i}", grad[i]));
    }
    let mut params = state.params.clone();
    let mut moments = state.adam.clone();
    adam.update(&mut moments, &mut params, &grad).map_err(|e| e.to_string())?;
    if let Some(i) = params.iter().position(|p| !p.is_finite()) {
        return Err(format!("expected finite parameters after the update, found {} for parameter {i}", params[i]));
    }
    let seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let values = analysis.metrics(&params, test, test_knobs).map_err(|e| format!("the metrics failed: {e}"))?;
    let eval_seconds = start.elapsed().as_secs_f64();
    let names = &state.settings.metric_names;
    if values.len() != names.len() {
        return Err(format!("expected {} metrics ({}), found {}", names.len(), names.join(", "), values.len()));
    }
    if let Some((name, v)) = names.iter().zip(&values).find(|(_, v)| !v.is_finite()) {
        return Err(format!("expected a finite value of metric {name}, found {v}"));
    }
    let report = analysis.report(&params).map_err(|e| e.to_string())?;
    // JSON has no NaN or infinity (serde_json writes null), so a record with one could not be
    // read back from steps.jsonl.
    for (name, values) in &report {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!("expected finite values of report {name}, found {} at {i}", values[i]));
        }
    }
    let record = StepRecord {
        step: state.step + 1,
        loss,
        metrics: names.iter().cloned().zip(values).collect(),
        report,
        seconds,
        eval_seconds,
    };
    Ok(StepOutcome { params, adam: moments, record })
}

/// Records the failure, writes the last good state when there is an output folder, and builds
/// the error that hands that state and the log back.
fn fail(mut state: State, config: &TrainConfig, step: usize, message: String) -> TrainError {
    state.checkpoint.status = RunStatus::Failed(format!("step {step}: {message}"));
    state.checkpoint.records = state.journal.digest();
    let mut message = message;
    let saved = match &config.out_dir {
        Some(dir) => match state.save(dir) {
            Ok(path) => Some(path),
            Err(e) => {
                message.push_str(&format!(" (and the checkpoint could not be written: {e})"));
                None
            }
        },
        None => None,
    };
    let records = state.journal.records().unwrap_or_else(|e| {
        message.push_str(&format!(" (and the records could not be read back: {e})"));
        Vec::new()
    });
    let last_good = Box::new(state.checkpoint.clone());
    TrainError::Step { step, message, last_good, log: Box::new(state.into_log(records)), saved }
}

fn progress_bar(config: &TrainConfig, done: usize) -> Option<ProgressBar> {
    // Without a terminal (a batch job, `| tee`) indicatif hides the bar and every line printed
    // through it, so the per-step lines go straight to stdout instead.
    if !config.progress || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(config.steps as u64), ProgressDrawTarget::stderr());
    // The template is a constant, so parsing it cannot fail at run time; fall back to the
    // default style rather than unwrap all the same. It stays within 80 columns.
    if let Ok(style) = ProgressStyle::with_template("{bar:24} {pos}/{len} [{elapsed}<{eta}] {msg}") {
        bar.set_style(style);
    }
    bar.set_position(done as u64);
    Some(bar)
}
