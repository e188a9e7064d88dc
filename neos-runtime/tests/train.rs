#![allow(clippy::unwrap_used)]
//! The trainer: Adam against hand-derived steps and on Rosenbrock's function, the data split
//! and batches, and whole runs of a small logistic regression written here (two Gaussian
//! samples, analytic gradient): the loss falls, runs repeat bit for bit, a resumed run equals
//! an uninterrupted one, checkpoints refuse other data or analyses, and a failing step keeps
//! the last good state.

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use neos_runtime::train::{
    resume, train, train_test_split, validate_data, Adam, AdamState, Analysis, Batcher, Checkpoint, RunLog, RunStatus,
    Split, TrainConfig, TrainError,
};
use neos_runtime::RunError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
    calls: usize,
    threshold: f64,
}

impl LogReg {
    fn new() -> Self {
        LogReg { features: 2, extra: 0, nan_after: None, calls: 0, threshold: 0.0 }
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
    checkpoint.params = values.clone();
    checkpoint.adam.m = values.iter().rev().copied().collect();
    checkpoint.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(bits(&back.params), bits(&values));
    assert_eq!(bits(&back.adam.m), bits(&checkpoint.adam.m));
}

#[test]
fn run_json_has_a_flat_record_per_step() {
    let data = blobs(100, 100, 5);
    let dir = scratch("runjson");
    train(&mut LogReg::new(), &data, &TrainConfig { steps: 3, out_dir: Some(dir.clone()), ..config(0) }).unwrap();
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let records = run["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    let keys: Vec<&str> = records[2].as_object().unwrap().keys().map(String::as_str).collect();
    for key in ["step", "loss", "bce", "error", "threshold", "w", "seconds", "eval_seconds"] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert_eq!(records[2]["step"], 3);
    assert_eq!(records[2]["w"].as_array().unwrap().len(), 2);
    assert_eq!(run["status"], "completed");
    assert_eq!(run["settings"]["config"]["batch_size"], 32);
    assert_eq!(run["best"]["metric"], "bce");
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
    std::fs::write(dir.join("garbage.json"), "{\"format\": 1}").unwrap();
    match resume(&mut LogReg::new(), &data, &config(4), &dir.join("garbage.json")) {
        Err(TrainError::Checkpoint(m)) => assert!(m.contains("expected a neos checkpoint"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failing_step_keeps_the_last_good_state() {
    let data = blobs(150, 150, 7);
    let dir = scratch("failing");
    let cfg = TrainConfig { steps: 8, checkpoint_every: 100, out_dir: Some(dir.clone()), ..config(0) };
    let error = train(&mut LogReg { nan_after: Some(4), ..LogReg::new() }, &data, &cfg).unwrap_err();
    let TrainError::Step { step, message, last_good, saved } = &error else { panic!("{error:?}") };
    assert_eq!(*step, 5);
    assert!(message.contains("expected a finite loss, found NaN"), "{message}");
    assert!(error.to_string().starts_with("step 5: expected a finite loss"), "{error}");
    assert_eq!(last_good.step, 4);
    assert_eq!(saved.as_deref(), Some(dir.join("checkpoint.json").as_path()));
    let on_disk = Checkpoint::load(&dir.join("checkpoint.json")).unwrap();
    assert_eq!(on_disk.step, 4);
    assert!(matches!(&on_disk.log.status, RunStatus::Failed(m) if m.starts_with("step 5")));
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
