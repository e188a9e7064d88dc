#![allow(clippy::unwrap_used)]
//! The trainer: Adam against hand-derived steps and on Rosenbrock's function, the data split
//! and batches, and whole runs of a small logistic regression written here (two Gaussian
//! samples, analytic gradient): the loss falls, runs repeat bit for bit, a resumed run equals
//! an uninterrupted one (also after a crash, and after real kills of a training process),
//! checkpoints refuse other data or analyses and any damage to themselves or to the step
//! records they cover, a failing step keeps the last good state, an output folder that cannot
//! be written fails before the first step, and what a run writes and allocates grows linearly.
//!
//! Some tests run their work in a process of their own: this test binary again, running just
//! that test with `NEOS_TRAIN_TEST_CHILD` set (see [`child`]), to kill it or to count what it
//! writes and allocates without the other tests' threads in the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};
use neos_runtime::train::{
    resume, train, train_test_split, train_with, validate_data, Adam, AdamState, Analysis, Batcher, Checkpoint, RunLog,
    RunStatus, Split, StepRecord, TrainConfig, TrainError, CHECKPOINT_FILE, RUN_FILE, STEPS_FILE,
};
use neos_runtime::RunError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Adam

/// Three Adam steps on f(x) = ½ Σ aᵢ xᵢ², the expected values written out from optax's
/// formulas in the test (the first step by hand: the bias-corrected moments are g and g², so
/// the step is η·g/(|g| + eps)).
#[test]
fn adam_matches_hand_derived_steps() {
    let a = [1.0, 10.0];
    let lr = 0.1;
    let eps = 1e-8;
    let mut x = vec![1.0, -2.0];
    let mut state = AdamState::new(2);
    let adam = Adam::new(lr);
    let grad = |x: &[f64]| vec![a[0] * x[0], a[1] * x[1]];

    let g = grad(&x);
    adam.update(&mut state, &mut x, &g).unwrap();
    // g = (1, −20): x₁ = x₀ − 0.1·g/(|g| + 1e−8).
    let x1 = [1.0 - 0.1 * 1.0 / (1.0 + eps), -2.0 + 0.1 * 20.0 / (20.0 + eps)];
    close(&x, &x1, "step 1");
    assert_eq!(state.count, 1);
    close(&state.m, &[0.1, -2.0], "m after step 1");
    close(&state.v, &[0.001, 0.4], "v after step 1");

    // Steps 2 and 3 from the recursions, spelled out.
    let (mut m, mut v) = ([0.1, -2.0], [0.001, 0.4]);
    let mut expected = x1;
    for t in [2, 3] {
        let g = grad(&x);
        adam.update(&mut state, &mut x, &g).unwrap();
        for i in 0..2 {
            let g = a[i] * expected[i];
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            let m_hat = m[i] / (1.0 - 0.9f64.powi(t));
            let v_hat = v[i] / (1.0 - 0.999f64.powi(t));
            expected[i] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
        close(&x, &expected, &format!("step {t}"));
    }
    assert_eq!(state.count, 3);

    // eps_root goes under the square root: the first step is η·g/(√(g² + eps_root) + eps).
    let adam = Adam { eps_root: 1e-2, ..Adam::new(lr) };
    let mut x = vec![0.05];
    adam.update(&mut AdamState::new(1), &mut x, &[0.05]).unwrap();
    // (Compared as the step: 1 − b2 is not exactly 0.001 in binary, which moves the last few
    // bits of the step, and the subtraction from x would magnify them.)
    close(&[0.05 - x[0]], &[0.1 * 0.05 / ((0.0025f64 + 1e-2).sqrt() + eps)], "eps_root");
}

fn close(found: &[f64], expected: &[f64], what: &str) {
    assert_eq!(found.len(), expected.len());
    for (f, e) in found.iter().zip(expected) {
        assert!((f - e).abs() <= 8.0 * f64::EPSILON * e.abs(), "{what}: {found:?} vs {expected:?}");
    }
}

/// Adam walks Rosenbrock's banana valley from the classic start (−1.2, 1) to the minimum (1, 1).
#[test]
fn adam_minimises_rosenbrock() {
    let f = |p: &[f64]| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2);
    let grad = |p: &[f64]| {
        let (x, y) = (p[0], p[1]);
        vec![-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)]
    };
    let adam = Adam::new(0.01);
    let mut state = AdamState::new(2);
    let mut p = vec![-1.2, 1.0];
    let start = f(&p);
    for _ in 0..20_000 {
        let g = grad(&p);
        adam.update(&mut state, &mut p, &g).unwrap();
    }
    assert!(f(&p) < 1e-8 * start, "f = {} at {p:?}", f(&p));
    assert!((p[0] - 1.0).abs() < 1e-3 && (p[1] - 1.0).abs() < 2e-3, "{p:?}");
}

#[test]
fn adam_rejects_bad_input_without_changing_anything() {
    let adam = Adam::new(0.1);
    let mut state = AdamState::new(2);
    let mut p = vec![1.0, 2.0];
    let e = adam.update(&mut state, &mut p, &[1.0]).unwrap_err();
    assert!(e.message.contains("expected the gradient and both moments to have the 2 entries"), "{e}");
    let e = adam.update(&mut state, &mut p, &[1.0, f64::NAN]).unwrap_err();
    assert!(e.message.contains("expected a finite gradient, found NaN at entry 1"), "{e}");
    assert_eq!((p, state), (vec![1.0, 2.0], AdamState::new(2)));
    for bad in
        [Adam::new(0.0), Adam::new(f64::NAN), Adam { b1: 1.0, ..Adam::new(0.1) }, Adam { eps: -1.0, ..Adam::new(0.1) }]
    {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Data

/// Events whose first feature is the event's own index, so tests can tell which rows went where.
fn numbered(n: usize, offset: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { (i + offset) as f64 } else { 0.5 })
}

#[test]
fn split_is_seeded_disjoint_and_independent_per_sample() {
    let data = [numbered(100, 0), numbered(100, 0), numbered(41, 1000)];
    let views: Vec<ArrayView2<'_, f64>> = data.iter().map(|x| x.view()).collect();
    let names = ["a".to_string(), "b".to_string(), "c".to_string()];
    let Split { train, test } = train_test_split(&views, &names, 0.75, 9).unwrap();
    assert_eq!(train.iter().map(Array2::nrows).collect::<Vec<_>>(), [75, 75, 30]);
    assert_eq!(test.iter().map(Array2::nrows).collect::<Vec<_>>(), [25, 25, 11]);
    for (s, x) in data.iter().enumerate() {
        let mut ids: Vec<f64> = train[s].column(0).iter().chain(test[s].column(0).iter()).copied().collect();
        ids.sort_by(f64::total_cmp);
        assert_eq!(ids, x.column(0).to_vec(), "sample {s}: every event exactly once");
    }
    // Samples with equal data are shuffled by their own streams.
    assert_ne!(train[0], train[1]);
    let again = train_test_split(&views, &names, 0.75, 9).unwrap();
    assert_eq!(again.train, train);
    let other = train_test_split(&views, &names, 0.75, 10).unwrap();
    assert_ne!(other.train[0], train[0]);
}

#[test]
fn batches_cover_an_epoch_without_repeats_and_rebuild_from_the_step() {
    let names = ["a".to_string(), "b".to_string()];
    // 23 and 50 events in batches of 5: 4 batches per epoch, set by the smaller sample.
    let train = vec![numbered(23, 0), numbered(50, 100)];
    let mut batcher = Batcher::new(train.clone(), &names, 5, 3).unwrap();
    assert_eq!(batcher.batches_per_epoch(), 4);
    let ids = |b: &[Array2<f64>], s: usize| b[s].column(0).to_vec();
    let mut epoch0: Vec<Vec<f64>> = vec![Vec::new(), Vec::new()];
    for step in 0..4 {
        let batch = batcher.batch(step);
        assert!(batch.iter().all(|x| x.dim() == (5, 2)));
        for (s, seen) in epoch0.iter_mut().enumerate() {
            seen.extend(ids(batch, s));
        }
    }
    for (s, seen) in epoch0.iter().enumerate() {
        let mut sorted = seen.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        assert_eq!(sorted.len(), 20, "sample {s}: 20 distinct events in one epoch");
    }
    // The next epoch reshuffles; a fresh batcher rebuilds any step's batch from the seed.
    let step5 = batcher.batch(5).to_vec();
    assert_ne!(ids(&step5, 0), epoch0[0][5..10].to_vec());
    let mut fresh = Batcher::new(train, &names, 5, 3).unwrap();
    assert_eq!(fresh.batch(5), step5.as_slice());
    assert_eq!(ids(fresh.batch(1), 1), epoch0[1][5..10].to_vec());
}

#[test]
fn bad_data_is_refused_with_the_place() {
    let samples = vec![("sig".to_string(), 2), ("bkg".to_string(), 2)];
    let check = |data: &[Array2<f64>], expected: &str| {
        let views: Vec<ArrayView2<'_, f64>> = data.iter().map(|x| x.view()).collect();
        let e = validate_data(&views, &samples).unwrap_err();
        assert!(e.contains(expected), "{e:?} lacks {expected:?}");
    };
    let mut nan = numbered(10, 0);
    nan[[7, 1]] = f64::NAN;
    check(&[numbered(10, 0), nan], "sample 1 (bkg): expected finite values, found NaN at row 7, column 1");
    check(&[numbered(10, 0), Array2::zeros((10, 3))], "sample 1 (bkg): expected 2 features per event, found 3");
    check(&[numbered(10, 0)], "expected one dataset per sample (2: sig, bkg), found 1");
    check(&[Array2::zeros((0, 2)), numbered(10, 0)], "sample 0 (sig): expected at least one event, found none");

    let names = ["sig".to_string()];
    let e = Batcher::new(vec![numbered(10, 0)], &names, 11, 0).unwrap_err();
    assert!(e.contains("sample 0 (sig): expected at least the batch size of 11 training events, found 10"), "{e}");
    let one = [numbered(3, 0)];
    let views: Vec<ArrayView2<'_, f64>> = one.iter().map(|x| x.view()).collect();
    let e = train_test_split(&views, &names, 0.2, 0).unwrap_err();
    assert!(e.contains("found 0 for training and 3 for testing"), "{e}");
    assert!(train_test_split(&views, &names, 1.0, 0).unwrap_err().contains("strictly between 0 and 1"));
}

// ---------------------------------------------------------------------------------------------
// The analysis under training: logistic regression of sig against bkg.

/// p(sig | x) = σ(w·x + b), trained on the mean binary cross-entropy of the two samples.
///
/// Metrics: the cross-entropy, the error rate of the cut z > 0, and `threshold`, the t with
/// mean σ(z − t) = ½ over the background, found by Newton's method warm-started from the last
/// call's t (like a fit warm-started from the last step's optimum) and stopped at a loose
/// tolerance, so its last digits depend on that start: a resumed run only matches if the
/// state is restored.
#[derive(Clone, Debug)]
struct LogReg {
    features: usize,
    /// Unused parameters appended to (w, b), to make an analysis of another size.
    extra: usize,
    /// value_and_grad returns a NaN loss once it has been called this many times.
    nan_after: Option<usize>,
    /// value_and_grad panics once it has been called this many times, like a crash.
    panic_after: Option<usize>,
    /// value_and_grad sleeps this long, so that a run lasts long enough to be killed mid-way.
    pause: Duration,
    calls: usize,
    threshold: f64,
}

impl LogReg {
    fn new() -> Self {
        LogReg {
            features: 2,
            extra: 0,
            nan_after: None,
            panic_after: None,
            pause: Duration::ZERO,
            calls: 0,
            threshold: 0.0,
        }
    }

    fn z(&self, params: &[f64], x: ArrayView2<'_, f64>) -> Vec<f64> {
        let (w, b) = (&params[..self.features], params[self.features]);
        x.rows().into_iter().map(|r| r.iter().zip(w).map(|(xi, wi)| xi * wi).sum::<f64>() + b).collect()
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// ln(1 + eᶻ) without overflow.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

fn knob(knobs: &[(String, f64)], name: &str, default: f64) -> f64 {
    knobs.iter().find(|(n, _)| n == name).map_or(default, |(_, v)| *v)
}

impl Analysis for LogReg {
    fn samples(&self) -> Vec<(String, usize)> {
        vec![("sig".into(), self.features), ("bkg".into(), self.features)]
    }
    fn param_count(&self) -> usize {
        self.features + 1 + self.extra
    }
    fn init(&self, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..self.param_count()).map(|_| rng.random_range(-0.5..0.5)).collect()
    }
    fn objectives(&self) -> Vec<String> {
        vec!["bce".into()]
    }
    fn value_and_grad(
        &mut self,
        objective: &str,
        params: &[f64],
        batch: &[ArrayView2<'_, f64>],
        knobs: &[(String, f64)],
    ) -> Result<(f64, Vec<f64>), RunError> {
        if objective != "bce" {
            return Err(RunError::new("value_and_grad", format!("expected objective bce, found {objective}")));
        }
        self.calls += 1;
        assert!(self.panic_after.is_none_or(|n| self.calls <= n), "a crash in step {}", self.calls);
        std::thread::sleep(self.pause);
        let l2 = knob(knobs, "l2", 0.0);
        let mut loss = 0.0;
        let mut grad = vec![0.0; self.param_count()];
        // −ln σ(z) = softplus(−z) with d/dz = σ(z) − 1; −ln(1 − σ(z)) = softplus(z) with d/dz = σ(z).
        for (x, label) in batch.iter().zip([1.0, 0.0]) {
            let n = x.nrows() as f64;
            for (z, row) in self.z(params, *x).into_iter().zip(x.rows()) {
                loss += if label == 1.0 { softplus(-z) } else { softplus(z) } / (2.0 * n);
                let dz = (sigmoid(z) - label) / (2.0 * n);
                for (g, xi) in grad.iter_mut().zip(row.iter()) {
                    *g += dz * xi;
                }
                grad[self.features] += dz;
            }
        }
        for i in 0..self.features {
            loss += 0.5 * l2 * params[i] * params[i];
            grad[i] += l2 * params[i];
        }
        if self.nan_after.is_some_and(|n| self.calls > n) {
            loss = f64::NAN;
        }
        Ok((loss, grad))
    }
    fn metric_names(&self) -> Vec<String> {
        vec!["bce".into(), "error".into(), "threshold".into()]
    }
    fn metrics(
        &mut self,
        params: &[f64],
        batch: &[ArrayView2<'_, f64>],
        _knobs: &[(String, f64)],
    ) -> Result<Vec<f64>, RunError> {
        let (zs, zb) = (self.z(params, batch[0]), self.z(params, batch[1]));
        let n = (zs.len() + zb.len()) as f64;
        let bce = (zs.iter().map(|&z| softplus(-z)).sum::<f64>() + zb.iter().map(|&z| softplus(z)).sum::<f64>()) / n;
        let wrong = zs.iter().filter(|&&z| z <= 0.0).count() + zb.iter().filter(|&&z| z > 0.0).count();
        let mut t = self.threshold;
        for _ in 0..100 {
            let g = zb.iter().map(|&z| sigmoid(z - t)).sum::<f64>() / zb.len() as f64 - 0.5;
            if g.abs() < 1e-6 {
                break;
            }
            let slope = zb.iter().map(|&z| sigmoid(z - t) * (1.0 - sigmoid(z - t))).sum::<f64>() / zb.len() as f64;
            t += g / slope;
        }
        self.threshold = t;
        Ok(vec![bce, wrong as f64 / n, t])
    }
    fn report(&mut self, params: &[f64]) -> Result<Vec<(String, Vec<f64>)>, RunError> {
        Ok(vec![("w".into(), params[..self.features].to_vec())])
    }
    fn state(&self) -> Vec<f64> {
        vec![self.threshold]
    }
    fn set_state(&mut self, state: &[f64]) -> Result<(), RunError> {
        match state {
            [t] => {
                self.threshold = *t;
                Ok(())
            }
            _ => Err(RunError::new("set_state", format!("expected 1 value, found {}", state.len()))),
        }
    }
}

/// Two Gaussian blobs of unit width at (+1, +1) (sig) and (−1, −1) (bkg), by Box–Muller.
fn blobs(n_sig: usize, n_bkg: usize, seed: u64) -> Vec<Array2<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut gauss = move || {
        let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    [(n_sig, 1.0), (n_bkg, -1.0)].iter().map(|&(n, mean)| Array2::from_shape_fn((n, 2), |_| mean + gauss())).collect()
}

fn config(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 32,
        learning_rate: 0.05,
        seed: 4,
        train_knobs: vec![("l2".into(), 1e-3)],
        ..TrainConfig::new("bce", "bce")
    }
}

/// A fresh, empty folder under the test target's scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("neos-train").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The log with its wall times zeroed: the part of a run that must repeat exactly.
fn timeless(log: &RunLog) -> RunLog {
    let mut log = log.clone();
    for r in &mut log.records {
        r.seconds = 0.0;
        r.eval_seconds = 0.0;
    }
    log.settings.config.out_dir = None;
    log
}

fn bits(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn logistic_regression_learns() {
    let data = blobs(600, 500, 1);
    let log = train(&mut LogReg::new(), &data, &TrainConfig { steps: 150, ..config(0) }).unwrap();
    assert_eq!(log.status, RunStatus::Completed);
    assert_eq!(log.records.len(), 150);
    let losses: Vec<f64> = log.records.iter().map(|r| r.loss).collect();
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    assert!(mean(&losses[130..]) < 0.6 * mean(&losses[..5]), "{losses:?}");
    let first = &log.records[0];
    let last = log.records.last().unwrap();
    assert!(last.value("bce").unwrap() < first.value("bce").unwrap());
    // Two unit Gaussians √8 apart: the best cut errs on Φ(−√2) ≈ 7.9% of the events.
    assert!(last.value("error").unwrap() < 0.12, "{last:?}");
    // The weights point along (1, 1).
    let w = &last.report[0].1;
    assert!(w[0] > 0.5 && w[1] > 0.5 && (w[0] / w[1] - 1.0).abs() < 0.5, "{w:?}");
    // The best step has the smallest test-set cross-entropy, and its parameters are kept.
    let best = log.best.as_ref().unwrap();
    let min = log.records.iter().map(|r| r.value("bce").unwrap()).fold(f64::INFINITY, f64::min);
    assert_eq!(best.value, min);
    assert_eq!(log.records[best.step - 1].value("bce"), Some(min));
    assert_eq!(log.params.len(), 3);
    let until_best = train(&mut LogReg::new(), &data, &TrainConfig { steps: best.step, ..config(0) }).unwrap();
    assert_eq!(bits(&until_best.params), bits(&log.best_params));
    assert_eq!(log.settings.samples[0].train_events, 450);
    // Samples of unequal sizes are each tested on their whole test part.
    assert_eq!(log.settings.samples[0].test_events, 150);
    assert_eq!(log.settings.samples[1].test_events, 125);
}

#[test]
fn the_same_seed_repeats_bit_for_bit() {
    let data = blobs(200, 200, 2);
    let a = train(&mut LogReg::new(), &data, &config(20)).unwrap();
    let b = train(&mut LogReg::new(), &data, &config(20)).unwrap();
    assert_eq!(timeless(&a), timeless(&b));
    assert_eq!(bits(&a.params), bits(&b.params));
    let c = train(&mut LogReg::new(), &data, &TrainConfig { seed: 5, ..config(20) }).unwrap();
    assert_ne!(bits(&a.params), bits(&c.params));
}

#[test]
fn resuming_continues_exactly() {
    let data = blobs(150, 170, 3);
    // 4 batches per epoch, so the resumed half crosses into a new epoch.
    let cfg =
        |steps, dir: &Path| TrainConfig { steps, checkpoint_every: 2, out_dir: Some(dir.to_path_buf()), ..config(0) };
    let straight_dir = scratch("straight");
    let straight = train(&mut LogReg::new(), &data, &cfg(6, &straight_dir)).unwrap();

    let split_dir = scratch("split");
    let first = train(&mut LogReg::new(), &data, &cfg(3, &split_dir)).unwrap();
    assert_eq!(first.records.len(), 3);
    // A fresh analysis: its warm start must come from the checkpoint.
    let resumed = resume(&mut LogReg::new(), &data, &cfg(6, &split_dir), &split_dir.join("checkpoint.json")).unwrap();

    assert_eq!(timeless(&resumed), timeless(&straight));
    assert_eq!(bits(&resumed.params), bits(&straight.params));
    assert_eq!(bits(&resumed.best_params), bits(&straight.best_params));
    let a = Checkpoint::load(&straight_dir.join("checkpoint.json")).unwrap();
    let b = Checkpoint::load(&split_dir.join("checkpoint.json")).unwrap();
    assert_eq!(a.step, 6);
    assert_eq!((bits(&a.adam.m), bits(&a.adam.v), a.adam.count), (bits(&b.adam.m), bits(&b.adam.v), b.adam.count));
    assert_eq!(bits(&a.analysis_state), bits(&b.analysis_state));
    assert_eq!(bits(&a.params), bits(&straight.params));
}

#[test]
fn checkpoints_keep_every_bit_of_every_f64() {
    let data = blobs(100, 100, 4);
    let dir = scratch("bits");
    train(&mut LogReg::new(), &data, &TrainConfig { steps: 1, out_dir: Some(dir.clone()), ..config(0) }).unwrap();
    let path = dir.join("checkpoint.json");
    let mut checkpoint = Checkpoint::load(&path).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut values: Vec<f64> = (0..20_000).map(|_| f64::from_bits(rng.random())).filter(|v| v.is_finite()).collect();
    values.extend([
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        f64::MAX,
        f64::MIN,
        0.1,
        1.0 / 3.0,
        f64::from_bits(0x000f_ffff_ffff_ffff),
    ]);
    // A checkpoint's vectors all have the run's parameter count.
    checkpoint.settings.param_count = values.len();
    checkpoint.params = values.clone();
    checkpoint.best_params = values.iter().map(|v| -v).collect();
    checkpoint.adam.m = values.iter().rev().copied().collect();
    checkpoint.adam.v = values.iter().map(|v| v.abs()).collect();
    checkpoint.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(bits(&back.params), bits(&values));
    assert_eq!(bits(&back.best_params), bits(&checkpoint.best_params));
    assert_eq!(bits(&back.adam.m), bits(&checkpoint.adam.m));
    assert_eq!(bits(&back.adam.v), bits(&checkpoint.adam.v));
}

#[test]
fn steps_jsonl_has_a_flat_record_per_line_and_run_json_the_rest() {
    let data = blobs(100, 100, 5);
    let dir = scratch("runjson");
    let log =
        train(&mut LogReg::new(), &data, &TrainConfig { steps: 3, out_dir: Some(dir.clone()), ..config(0) }).unwrap();
    let text = std::fs::read_to_string(dir.join(STEPS_FILE)).unwrap();
    let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 3);
    let keys: Vec<&str> = records[2].as_object().unwrap().keys().map(String::as_str).collect();
    for key in ["step", "loss", "bce", "error", "threshold", "w", "seconds", "eval_seconds"] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert_eq!(records[2]["step"], 3);
    assert_eq!(records[2]["w"].as_array().unwrap().len(), 2);
    assert_eq!(read_records(&dir), log.records);
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(RUN_FILE)).unwrap()).unwrap();
    assert_eq!(run["status"], "completed");
    assert_eq!(run["settings"]["config"]["batch_size"], 32);
    assert_eq!(run["best"]["metric"], "bce");
    assert_eq!(run["step"], 3);
    assert_eq!(run["records"], STEPS_FILE);
}

/// The step records in `dir`'s `steps.jsonl`.
fn read_records(dir: &Path) -> Vec<StepRecord> {
    let text = std::fs::read_to_string(dir.join(STEPS_FILE)).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn resuming_refuses_other_data_analyses_and_settings() {
    let data = blobs(100, 100, 6);
    let dir = scratch("refuse");
    train(&mut LogReg::new(), &data, &TrainConfig { steps: 2, out_dir: Some(dir.clone()), ..config(0) }).unwrap();
    let path = dir.join("checkpoint.json");
    let refused = |analysis: &mut LogReg, data: &[Array2<f64>], cfg: TrainConfig, expected: &str| match resume(
        analysis, data, &cfg, &path,
    ) {
        Err(TrainError::Checkpoint(m)) => assert!(m.contains(expected), "{m:?} lacks {expected:?}"),
        other => panic!("expected a refusal containing {expected:?}, found {other:?}"),
    };
    let mut changed = data.clone();
    changed[1][[17, 0]] += 1e-12;
    refused(&mut LogReg::new(), &changed, config(4), "expected the data the checkpoint was made with");
    let fewer = vec![data[0].clone(), data[1].slice(ndarray::s![..99, ..]).to_owned()];
    refused(
        &mut LogReg::new(),
        &fewer,
        config(4),
        "sample 1 (bkg): expected 100 events of 2 features as in the checkpoint, found 99 of 2",
    );
    refused(
        &mut LogReg { extra: 1, ..LogReg::new() },
        &data,
        config(4),
        "expected an analysis with the checkpoint's 3 parameters, found 4",
    );
    refused(
        &mut LogReg::new(),
        &data,
        TrainConfig { batch_size: 16, ..config(4) },
        "expected batch_size = 32 as in the checkpoint, found 16",
    );
    refused(&mut LogReg::new(), &data, TrainConfig { learning_rate: 0.1, ..config(4) }, "learning_rate = 0.05");
    refused(&mut LogReg::new(), &data, config(1), "expected at most 1 steps done, found 2");
    for garbage in ["{\"step\": 2}", "[1, 2", "checkpoint"] {
        std::fs::write(dir.join("garbage.json"), garbage).unwrap();
        match resume(&mut LogReg::new(), &data, &config(4), &dir.join("garbage.json")) {
            Err(TrainError::Checkpoint(m)) => assert!(m.contains("expected a neos checkpoint"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_failing_step_keeps_the_last_good_state() {
    let data = blobs(150, 150, 7);
    let dir = scratch("failing");
    let cfg = TrainConfig { steps: 8, checkpoint_every: 100, out_dir: Some(dir.clone()), ..config(0) };
    let error = train(&mut LogReg { nan_after: Some(4), ..LogReg::new() }, &data, &cfg).unwrap_err();
    let TrainError::Step { step, message, last_good, log, saved } = &error else { panic!("{error:?}") };
    assert_eq!(*step, 5);
    assert!(message.contains("expected a finite loss, found NaN"), "{message}");
    assert!(error.to_string().starts_with("step 5: expected a finite loss"), "{error}");
    assert_eq!(last_good.step, 4);
    assert_eq!(log.records.len(), 4);
    assert_eq!(bits(&log.params), bits(&last_good.params));
    assert!(matches!(&log.status, RunStatus::Failed(m) if m.starts_with("step 5")));
    assert_eq!(saved.as_deref(), Some(dir.join("checkpoint.json").as_path()));
    let on_disk = Checkpoint::load(&dir.join("checkpoint.json")).unwrap();
    assert_eq!(on_disk.step, 4);
    assert!(matches!(&on_disk.status, RunStatus::Failed(m) if m.starts_with("step 5")));
    // The failed run, resumed with a healthy analysis, ends where an unbroken run ends.
    let resumed = resume(&mut LogReg::new(), &data, &cfg, &dir.join("checkpoint.json")).unwrap();
    let straight = train(&mut LogReg::new(), &data, &TrainConfig { out_dir: None, ..cfg.clone() }).unwrap();
    assert_eq!(timeless(&resumed), timeless(&straight));
}

#[test]
fn bad_configurations_are_refused_before_training() {
    let data = blobs(100, 100, 8);
    let check = |cfg: TrainConfig, data: &[Array2<f64>], expected: &str| {
        let e = train(&mut LogReg::new(), data, &cfg).unwrap_err();
        assert!(e.to_string().contains(expected), "{e} lacks {expected:?}");
    };
    check(
        TrainConfig { objective: "cls".into(), ..config(3) },
        &data,
        "expected an objective among [\"bce\"], found \"cls\"",
    );
    check(TrainConfig { select_metric: "auc".into(), ..config(3) }, &data, "expected a selection metric among");
    check(config(0), &data, "expected at least one step, found 0");
    check(
        TrainConfig { learning_rate: -1.0, ..config(3) },
        &data,
        "expected a positive finite learning rate, found -1",
    );
    check(
        TrainConfig { batch_size: 76, ..config(3) },
        &data,
        "expected at least the batch size of 76 training events, found 75",
    );
    check(
        TrainConfig { train_knobs: vec![("l2".into(), f64::NAN)], ..config(3) },
        &data,
        "expected a finite value for knob \"l2\"",
    );
    check(config(3), &data[..1], "expected one dataset per sample (2: sig, bkg), found 1");
}

// ---------------------------------------------------------------------------------------------
// Saved runs: damage, crashes, kills, the output folder, and what a run writes and allocates.

/// A saved run whose checkpoint holds 4 steps (all of them, so that every record is covered),
/// and the configuration to resume it with.
fn saved_run(name: &str) -> (Vec<Array2<f64>>, PathBuf, TrainConfig) {
    let data = blobs(150, 170, 9);
    let dir = scratch(name);
    let cfg = |steps| TrainConfig { steps, checkpoint_every: 2, out_dir: Some(dir.clone()), ..config(0) };
    train(&mut LogReg::new(), &data, &cfg(4)).unwrap();
    (data, dir.clone(), cfg(6))
}

/// The SHA-256 of `bytes` in lowercase hex.
fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Edits the checkpoint in `dir` as JSON, leaving its checksum as it was.
fn edit_checkpoint(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(CHECKPOINT_FILE);
    let mut file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut file);
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
}

/// Changes the checkpoint in `dir` and seals it again with a checksum that matches: what
/// only the consistency checks can catch.
fn reseal_checkpoint(dir: &Path, edit: impl FnOnce(&mut Checkpoint)) {
    let path = dir.join(CHECKPOINT_FILE);
    let mut checkpoint = Checkpoint::load(&path).unwrap();
    edit(&mut checkpoint);
    checkpoint.save(&path).unwrap();
}

/// Edits the lines of `steps.jsonl` in `dir` as JSON.
fn edit_records(dir: &Path, edit: impl FnOnce(&mut Vec<serde_json::Value>)) {
    let path = dir.join(STEPS_FILE);
    let mut lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    edit(&mut lines);
    let text: String = lines.iter().map(|l| format!("{}\n", serde_json::to_string(l).unwrap())).collect();
    std::fs::write(&path, text).unwrap();
}

/// Flips the lowest bit of the `n`th digit after `marker` in `file`: a digit stays a digit,
/// so the JSON stays valid and only a value changes.
fn flip_digit(path: &Path, marker: &str, n: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let start = String::from_utf8_lossy(&bytes).find(marker).unwrap() + marker.len();
    let at = (start..bytes.len()).filter(|&i| bytes[i].is_ascii_digit()).nth(n).unwrap();
    bytes[at] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, keep: f64) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
}

/// Every kind of damage to a saved run is refused, naming the damaged file and saying what
/// was expected and what was found; a rewrite that keeps every value (keys reordered) is not
/// damage.
#[test]
fn damaged_checkpoints_and_records_are_refused() {
    type Damage = fn(&Path);
    let checksum = "the checksum does not match the contents";
    let records_checksum = "the checksum of the first";
    let table: Vec<(&str, &str, Damage, &str)> = vec![
        (
            "a weight changed by 1e-4 relative",
            CHECKPOINT_FILE,
            |d| {
                edit_checkpoint(d, |c| {
                    let w = c["checkpoint"]["params"][0].as_f64().unwrap();
                    c["checkpoint"]["params"][0] = (w * (1.0 + 1e-4)).into();
                })
            },
            checksum,
        ),
        (
            "a weight set to 1e300",
            CHECKPOINT_FILE,
            |d| edit_checkpoint(d, |c| c["checkpoint"]["params"][1] = 1e300.into()),
            checksum,
        ),
        (
            "an Adam moment changed",
            CHECKPOINT_FILE,
            |d| {
                edit_checkpoint(d, |c| {
                    let v = c["checkpoint"]["adam"]["v"][2].as_f64().unwrap();
                    c["checkpoint"]["adam"]["v"][2] = (v * 2.0).into();
                })
            },
            checksum,
        ),
        (
            "Adam's count changed",
            CHECKPOINT_FILE,
            |d| edit_checkpoint(d, |c| c["checkpoint"]["adam"]["count"] = 3.into()),
            checksum,
        ),
        (
            "the best parameters changed",
            CHECKPOINT_FILE,
            |d| {
                edit_checkpoint(d, |c| {
                    let p = c["checkpoint"]["best_params"][0].as_f64().unwrap();
                    c["checkpoint"]["best_params"][0] = (p + 1e-9).into();
                })
            },
            checksum,
        ),
        (
            "the analysis's state changed",
            CHECKPOINT_FILE,
            |d| edit_checkpoint(d, |c| c["checkpoint"]["analysis_state"][0] = 0.0.into()),
            checksum,
        ),
        ("the step rewound", CHECKPOINT_FILE, |d| edit_checkpoint(d, |c| c["checkpoint"]["step"] = 2.into()), checksum),
        (
            "the checksum replaced",
            CHECKPOINT_FILE,
            |d| edit_checkpoint(d, |c| c["sha256"] = "0".repeat(64).into()),
            "expected sha256 0000000000000000000000000000000000000000000000000000000000000000 (recorded in the file)",
        ),
        (
            "a digit flipped in the checkpoint",
            CHECKPOINT_FILE,
            |d| flip_digit(&d.join(CHECKPOINT_FILE), "\"params\":[", 5),
            checksum,
        ),
        (
            "the checkpoint truncated",
            CHECKPOINT_FILE,
            |d| truncate(&d.join(CHECKPOINT_FILE), 0.6),
            "found invalid JSON",
        ),
        ("the checkpoint emptied", CHECKPOINT_FILE, |d| truncate(&d.join(CHECKPOINT_FILE), 0.0), "found invalid JSON"),
        (
            "a checkpoint of format 1",
            CHECKPOINT_FILE,
            |d| edit_checkpoint(d, |c| c["format"] = 1.into()),
            "expected checkpoint format 2, found format 1",
        ),
        (
            "a record's loss changed",
            STEPS_FILE,
            |d| {
                edit_records(d, |r| {
                    let loss = r[1]["loss"].as_f64().unwrap();
                    r[1]["loss"] = (loss * (1.0 + 1e-12)).into();
                })
            },
            records_checksum,
        ),
        (
            "records renumbered",
            STEPS_FILE,
            |d| {
                edit_records(d, |r| {
                    r[1]["step"] = 3.into();
                    r[2]["step"] = 2.into();
                })
            },
            records_checksum,
        ),
        ("a record repeated", STEPS_FILE, |d| edit_records(d, |r| r.insert(2, r[1].clone())), records_checksum),
        (
            "a digit flipped in the records",
            STEPS_FILE,
            |d| flip_digit(&d.join(STEPS_FILE), "\"loss\":", 3),
            records_checksum,
        ),
        ("the records truncated", STEPS_FILE, |d| truncate(&d.join(STEPS_FILE), 0.7), "expected at least the"),
        (
            "the records deleted",
            STEPS_FILE,
            |d| std::fs::remove_file(d.join(STEPS_FILE)).unwrap(),
            "cannot read the 4 step records that checkpoint",
        ),
        // Sealed again with a matching checksum: the consistency checks must catch these.
        (
            "the step rewound and sealed again",
            CHECKPOINT_FILE,
            |d| {
                reseal_checkpoint(d, |c| {
                    c.step = 2;
                    c.adam.count = 2;
                })
            },
            "expected the checkpoint at step 2 to cover step records 1..=2, found it covers 4 records",
        ),
        (
            "Adam's moments cut short and sealed again",
            CHECKPOINT_FILE,
            |d| {
                reseal_checkpoint(d, |c| {
                    c.adam.m.pop();
                })
            },
            "expected 3 Adam's first moments (the run's parameter count), found 2",
        ),
        (
            "another best step sealed again",
            STEPS_FILE,
            |d| {
                reseal_checkpoint(d, |c| {
                    if let Some(b) = &mut c.best {
                        b.step = if b.step == 1 { 2 } else { 1 };
                    }
                })
            },
            "that the records give, found",
        ),
        (
            "records renumbered with a matching digest",
            STEPS_FILE,
            |d| {
                edit_records(d, |r| r[2]["step"] = 2.into());
                let digest = sha256(&std::fs::read(d.join(STEPS_FILE)).unwrap());
                reseal_checkpoint(d, |c| {
                    c.records.sha256 = digest;
                    c.records.bytes = std::fs::metadata(d.join(STEPS_FILE)).unwrap().len();
                });
            },
            "expected step records numbered 1..=4, found step 2 on line 3",
        ),
        (
            "a record duplicated over the next with a matching digest",
            STEPS_FILE,
            |d| {
                edit_records(d, |r| r[3] = r[2].clone());
                let digest = sha256(&std::fs::read(d.join(STEPS_FILE)).unwrap());
                reseal_checkpoint(d, |c| {
                    c.records.sha256 = digest;
                    c.records.bytes = std::fs::metadata(d.join(STEPS_FILE)).unwrap().len();
                });
            },
            "expected step records numbered 1..=4, found step 3 on line 4",
        ),
    ];
    let (data, pristine, cfg) = saved_run("damage-pristine");
    for (i, (what, file, damage, expected)) in table.into_iter().enumerate() {
        let dir = scratch(&format!("damage-{i}"));
        for f in [CHECKPOINT_FILE, STEPS_FILE, RUN_FILE] {
            std::fs::copy(pristine.join(f), dir.join(f)).unwrap();
        }
        damage(&dir);
        let cfg = TrainConfig { out_dir: Some(dir.clone()), ..cfg.clone() };
        let mut analysis = LogReg::new();
        match resume(&mut analysis, &data, &cfg, &dir.join(CHECKPOINT_FILE)) {
            Err(TrainError::Checkpoint(m)) => {
                assert!(m.contains(expected), "{what}: {m:?} lacks {expected:?}");
                let named = dir.join(file).display().to_string();
                assert!(m.contains(&named), "{what}: {m:?} does not name {named}");
            }
            other => panic!("{what}: expected a refusal containing {expected:?}, found {other:?}"),
        }
        assert_eq!(analysis.calls, 0, "{what}: no step may run");
    }

    // Rewritten with the keys reordered and every value kept, the checkpoint still resumes.
    let dir = scratch("damage-none");
    for f in [CHECKPOINT_FILE, STEPS_FILE, RUN_FILE] {
        std::fs::copy(pristine.join(f), dir.join(f)).unwrap();
    }
    edit_checkpoint(&dir, |_| {});
    let cfg = TrainConfig { out_dir: Some(dir.clone()), ..cfg };
    let resumed = resume(&mut LogReg::new(), &data, &cfg, &dir.join(CHECKPOINT_FILE)).unwrap();
    let straight = train(&mut LogReg::new(), &data, &TrainConfig { out_dir: None, ..cfg }).unwrap();
    assert_eq!(timeless(&resumed), timeless(&straight));
}

/// A crash after the last checkpoint leaves the records of later steps in `steps.jsonl`, the
/// last one cut short; resuming cuts them away and computes those steps again, to the bits of
/// an uninterrupted run, in memory and on disk.
#[test]
fn a_crash_after_a_checkpoint_resumes_exactly() {
    let data = blobs(150, 170, 10);
    let dir = scratch("crash");
    let cfg = TrainConfig { steps: 10, checkpoint_every: 4, out_dir: Some(dir.clone()), ..config(0) };
    let crashing = std::panic::catch_unwind(|| {
        let _ = train(&mut LogReg { panic_after: Some(6), ..LogReg::new() }, &data, &cfg);
    });
    assert!(crashing.is_err());
    assert_eq!(Checkpoint::load(&dir.join(CHECKPOINT_FILE)).unwrap().step, 4);
    assert_eq!(read_records(&dir).len(), 6);
    // A seventh line, cut off in the middle of its write.
    let mut torn = std::fs::read(dir.join(STEPS_FILE)).unwrap();
    torn.extend_from_slice(b"{\"step\":7,\"loss\":0.69");
    std::fs::write(dir.join(STEPS_FILE), torn).unwrap();

    let resumed = resume(&mut LogReg::new(), &data, &cfg, &dir.join(CHECKPOINT_FILE)).unwrap();
    let straight = train(&mut LogReg::new(), &data, &TrainConfig { out_dir: None, ..cfg.clone() }).unwrap();
    assert_eq!(timeless(&resumed), timeless(&straight));
    assert_eq!(bits(&resumed.params), bits(&straight.params));
    assert_eq!(bits(&resumed.best_params), bits(&straight.best_params));
    assert_eq!(read_records(&dir), resumed.records);
}

/// The environment variable that puts a test's work in a child process (see [`child`]).
const CHILD: &str = "NEOS_TRAIN_TEST_CHILD";

/// This test binary again, running only `test`, with `role` in [`CHILD`]: the test, started
/// there, does the work `role` names instead of its own.
fn child(test: &str, role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]).env(CHILD, role);
    command
}

/// The role this process was started for by [`child`], if any.
fn child_role() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// Kills a training process at random moments, ten times, each time resuming in a new one
/// from whatever it left; then finishes the run here and finds every record and parameter of
/// an uninterrupted run, bit for bit.
#[cfg(unix)]
#[test]
fn killed_runs_resume_exactly() {
    use std::os::unix::process::ExitStatusExt;
    const STEPS: usize = 300;
    let data = blobs(150, 170, 11);
    let cfg =
        |dir: &Path| TrainConfig { steps: STEPS, checkpoint_every: 1, out_dir: Some(dir.to_path_buf()), ..config(0) };
    if let Some(dir) = child_role() {
        // The process to be killed: on with the run in `dir`, or from its start; its steps are
        // slowed so that a run outlasts the kills.
        let dir = PathBuf::from(dir);
        let mut analysis = LogReg { pause: Duration::from_millis(3), ..LogReg::new() };
        let path = dir.join(CHECKPOINT_FILE);
        if path.exists() {
            resume(&mut analysis, &data, &cfg(&dir), &path).unwrap();
        } else {
            train(&mut analysis, &data, &cfg(&dir)).unwrap();
        }
        return;
    }
    let started = Instant::now();
    let dir = scratch("killed");
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut steps_at_kills = Vec::new();
    for cycle in 0..10 {
        let log = dir.with_extension(format!("child-{cycle}.log"));
        let mut process = child("killed_runs_resume_exactly", dir.to_str().unwrap())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(30..250)));
        process.kill().unwrap();
        let status = process.wait().unwrap();
        let stderr = std::fs::read_to_string(&log).unwrap();
        assert!(status.signal() == Some(9) || status.success(), "cycle {cycle}: {status}\n{stderr}");
        let path = dir.join(CHECKPOINT_FILE);
        steps_at_kills.push(if path.exists() { Checkpoint::load(&path).unwrap().step } else { 0 });
    }
    eprintln!("checkpoints after each kill: {steps_at_kills:?}");
    assert!(steps_at_kills.iter().any(|&s| s > 0 && s < STEPS), "no kill landed mid-run: {steps_at_kills:?}");

    let resumed = resume(&mut LogReg::new(), &data, &cfg(&dir), &dir.join(CHECKPOINT_FILE)).unwrap();
    let straight = train(&mut LogReg::new(), &data, &TrainConfig { out_dir: None, ..cfg(&dir) }).unwrap();
    assert_eq!(timeless(&resumed), timeless(&straight));
    assert_eq!(bits(&resumed.params), bits(&straight.params));
    assert_eq!(bits(&resumed.best_params), bits(&straight.best_params));
    assert_eq!(read_records(&dir), resumed.records);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

/// An output folder that cannot be created fails before the first step, naming the folder,
/// for a new run and for a resumed one.
#[test]
fn an_unwritable_output_folder_fails_before_the_first_step() {
    let data = blobs(150, 170, 12);
    let dir = scratch("unwritable");
    std::fs::write(dir.join("a-file"), "not a folder").unwrap();
    let out = dir.join("a-file").join("run");
    let cfg = TrainConfig { steps: 20, checkpoint_every: 10, out_dir: Some(out.clone()), ..config(0) };
    let check = |result: Result<RunLog, TrainError>, analysis: &LogReg| {
        match result {
            Err(TrainError::Io { path, message }) => {
                assert_eq!(path, out);
                assert!(message.starts_with("expected an output folder that can be created, found"), "{message}");
            }
            other => panic!("expected an error naming {}, found {other:?}", out.display()),
        }
        assert_eq!(analysis.calls, 0, "no step may run");
    };
    let mut analysis = LogReg::new();
    check(train(&mut analysis, &data, &cfg), &analysis);
    let (data, saved, resumed_cfg) = saved_run("unwritable-saved");
    let mut analysis = LogReg::new();
    let result = resume(
        &mut analysis,
        &data,
        &TrainConfig { out_dir: Some(out.clone()), ..resumed_cfg },
        &saved.join(CHECKPOINT_FILE),
    );
    check(result, &analysis);
}

/// What a child measured of its run: bytes handed to `write` (Linux's `wchar`), heap blocks
/// in use after the last step above those after the first, the heap's peak up to the last
/// step above where the run started, and the size of `steps.jsonl`.
#[derive(Debug)]
struct Measured {
    written: u64,
    blocks_kept: i64,
    peak_heap: i64,
    records_bytes: i64,
}

/// Runs `steps` steps with a checkpoint after each, into a fresh folder, in a child process
/// started from `test`, and returns what it measured.
fn measure(test: &str, steps: usize) -> Measured {
    let dir = scratch(&format!("{test}-{steps}"));
    let output = child(test, &format!("{steps} {}", dir.display())).stderr(Stdio::inherit()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let stdout = String::from_utf8(output.stdout).unwrap();
    // The harness prints the test's name on the line where the test's own output begins.
    let line =
        stdout.lines().find_map(|l| l.split_once("measured ").map(|(_, m)| m)).unwrap_or_else(|| panic!("{stdout}"));
    let n: Vec<i64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
    Measured { written: n[0] as u64, blocks_kept: n[1], peak_heap: n[2], records_bytes: n[3] }
}

/// The child's side of [`measure`]: `role` is "STEPS DIR".
fn measured_run(role: &str) {
    let (steps, dir) = role.split_once(' ').unwrap();
    let steps: usize = steps.parse().unwrap();
    let cfg = TrainConfig { steps, checkpoint_every: 1, out_dir: Some(PathBuf::from(dir)), ..config(0) };
    let data = blobs(150, 170, 13);
    let mut analysis = LogReg::new();
    let written = written_bytes();
    let base = HEAP.live.load(Ordering::SeqCst) as i64;
    HEAP.peak.store(base as usize, Ordering::SeqCst);
    let (mut first_blocks, mut last_blocks, mut peak) = (0, 0, 0);
    // Read when the observer sees the first and the last step, before the log is handed back.
    train_with(&mut analysis, &data, &cfg, &mut |r, _| {
        let blocks = HEAP.blocks.load(Ordering::SeqCst) as i64;
        if r.step == 1 {
            first_blocks = blocks;
        }
        if r.step == steps {
            last_blocks = blocks;
            peak = HEAP.peak.load(Ordering::SeqCst) as i64 - base;
        }
        None
    })
    .unwrap();
    let written = written_bytes() - written;
    let records = std::fs::metadata(Path::new(dir).join(STEPS_FILE)).unwrap().len();
    println!("measured {written} {} {peak} {records}", last_blocks - first_blocks);
}

/// The bytes this process has handed to `write` and its kin so far.
fn written_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("wchar: ")).map_or(0, |n| n.parse().unwrap())
}

/// With a checkpoint after every step, a run of 200 steps writes about four times what one of
/// 50 writes, not sixteen: records are appended, not rewritten.
#[cfg(target_os = "linux")]
#[test]
fn bytes_written_grow_linearly_with_the_steps() {
    if let Some(role) = child_role() {
        return measured_run(&role);
    }
    let short = measure("bytes_written_grow_linearly_with_the_steps", 50);
    let long = measure("bytes_written_grow_linearly_with_the_steps", 200);
    eprintln!("bytes written: {} for 50 steps, {} for 200", short.written, long.written);
    // Linear growth with a fixed start: each of the 150 more steps costs no more than the
    // average step of the short run, whose average includes the start.
    let per_step_long = (long.written - short.written) as f64 / 150.0;
    let per_step_short = short.written as f64 / 50.0;
    assert!(
        per_step_long <= 1.05 * per_step_short,
        "{per_step_long:.0} bytes per step beyond step 50, {per_step_short:.0} per step up to it"
    );
}

/// A run keeps no heap block per step, and its heap grows by the bytes of its records and
/// no more: nothing proportional to the run is copied or serialised at a checkpoint.
/// (Small blocks kept per step are what made the blobs example's resident memory grow by
/// 8–20 KB a step: they fragment the heap among the analysis's large temporaries.)
#[test]
fn memory_grows_only_by_the_records() {
    if let Some(role) = child_role() {
        return measured_run(&role);
    }
    let short = measure("memory_grows_only_by_the_records", 50);
    let long = measure("memory_grows_only_by_the_records", 200);
    eprintln!("heap: {short:?} for 50 steps, {long:?} for 200");
    for m in [&short, &long] {
        assert!(m.blocks_kept <= 2, "{} heap blocks kept over the run: {m:?}", m.blocks_kept);
    }
    // The records' buffer may have twice their bytes when it has just doubled.
    let grown = long.peak_heap - short.peak_heap;
    let records = long.records_bytes - short.records_bytes;
    assert!(grown <= 2 * records + 8192, "the peak heap grew by {grown} bytes for {records} bytes of records");
}

/// The heap in use, its peak and its blocks, counted by [`Counting`].
struct Heap {
    live: AtomicUsize,
    peak: AtomicUsize,
    blocks: AtomicUsize,
}

static HEAP: Heap = Heap { live: AtomicUsize::new(0), peak: AtomicUsize::new(0), blocks: AtomicUsize::new(0) };

/// The system allocator, counting the bytes in use, for [`memory_grows_only_by_the_records`].
struct Counting;

impl Counting {
    fn grew(&self, size: usize) {
        let now = HEAP.live.fetch_add(size, Ordering::SeqCst) + size;
        HEAP.peak.fetch_max(now, Ordering::SeqCst);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            self.grew(layout.size());
            HEAP.blocks.fetch_add(1, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        HEAP.live.fetch_sub(layout.size(), Ordering::SeqCst);
        HEAP.blocks.fetch_sub(1, Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HEAP.live.fetch_sub(layout.size(), Ordering::SeqCst);
            self.grew(new_size);
        }
        p
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;
