//! The blobs analysis through `neos!` and generated code: on the reference tiny network
//! (2 → 8 → 1) and blobs of tests/data/reference/pipeline_small.json the generated loss,
//! gradients, metrics and yields equal the converged reference (1e-8), the parameter layout
//! is the description's, initialisation is deterministic, and bad batches are errors. End to
//! end, the gradient at a random start matches finite differences of the generated loss, and a
//! few Adam steps of the trainer lower the loss.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use ndarray::Array2;
use neos::train::{self, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// The four-blob problem of the neos paper with the given network and losses.
macro_rules! blobs_analysis {
    ($(#[$doc:meta])* $name:ident, [$($net:tt)*], [$($loss:tt)*]) => {
        neos::neos! {
            $(#[$doc])*
            pub analysis $name {
                inputs { sig: events[2], bkg_nominal: events[2], bkg_up: events[2], bkg_down: events[2] }
                knobs { bandwidth = 0.09, lumi = 10.0 }
                params {
                    nn = mlp($($net)*);
                    edges = bin_edges(0.0..1.0, bins = 4, trainable);
                }
                let s = hist(nn(sig), edges, bandwidth, scale = 2.0 * lumi);
                let b = hist(nn(bkg_nominal), edges, bandwidth, scale = 10.0 * lumi);
                let bup = hist(nn(bkg_up), edges, bandwidth, scale = 10.0 * lumi);
                let bdn = hist(nn(bkg_down), edges, bandwidth, scale = 10.0 * lumi);
                model {
                    channel singlechannel {
                        sample signal = s { normfactor mu }
                        sample background = b { histosys correlated_bkg_uncertainty(lo = bdn, hi = bup) }
                    }
                    poi mu;
                }
                loss $($loss)*;
                metrics cls, discovery, poi_uncert;
            }
        }
    };
}

blobs_analysis!(
    /// The reference's tiny network.
    Blobs,
    [2 => 8 => 1, relu, sigmoid],
    [cls(mu = 1.0), discovery, poi_uncert, bce(nn(sig), nn(bkg_nominal), nn(bkg_up), nn(bkg_down))]
);

const BLOBS: [&str; 4] = ["sig", "bkg_nominal", "bkg_up", "bkg_down"];

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reference/pipeline_small.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("expected numbers, found {other}"),
    }
}

/// The reference's parameters in the analysis's flat layout (nn_w0, nn_b0, nn_w1, nn_b1, edges).
fn reference_params(r: &Value) -> Vec<f64> {
    let pars = &r["inputs"]["nn_pars"];
    [&pars[0][0], &pars[0][1], &pars[2][0], &pars[2][1], &r["inputs"]["inner_bin_edges"]]
        .iter()
        .flat_map(|v| flat(v))
        .collect()
}

fn reference_batch(r: &Value) -> Vec<Array2<f64>> {
    BLOBS
        .iter()
        .map(|b| {
            let data = flat(&r["inputs"]["data"][b]);
            Array2::from_shape_vec((data.len() / 2, 2), data).unwrap()
        })
        .collect()
}

fn close(label: &str, found: f64, expected: f64, scale: f64, rtol: f64) {
    assert!(
        (found - expected).abs() <= rtol * scale.max(expected.abs()),
        "{label}: found {found:e}, expected {expected:e}"
    );
}

#[test]
fn generated_code_reproduces_the_reference_pipeline() {
    let r = reference();
    let mut blobs = Blobs::new();
    let params = reference_params(&r);
    assert_eq!(blobs.param_count(), params.len());
    let data = reference_batch(&r);
    let batch: Vec<_> = data.iter().map(|a| a.view()).collect();
    for name in ["cls", "discovery", "poi_uncert"] {
        let exact = &r["exact"][name];
        let (value, grad) = blobs.value_and_grad(name, &params, &batch, &[]).unwrap();
        close(name, value, exact["value"].as_f64().unwrap(), 0.0, 1e-8);
        let loss = blobs.loss(name, &params, &batch, &[]).unwrap();
        assert_eq!(loss.to_bits(), value.to_bits(), "{name}: loss and value_and_grad differ");
        let nn = &exact["grad"]["nn_pars"];
        let expected: Vec<f64> =
            [&nn[0][0], &nn[0][1], &nn[2][0], &nn[2][1], &exact["grad"]["bins"]].iter().flat_map(|v| flat(v)).collect();
        let scale = expected.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
        for (i, (g, e)) in grad.iter().zip(&expected).enumerate() {
            close(&format!("d{name}[{i}]"), *g, *e, scale, 1e-8);
        }
    }
    let bce = &r["neos_relaxed"]["bce"];
    close("bce", blobs.loss("bce", &params, &batch, &[]).unwrap(), bce["value"].as_f64().unwrap(), 0.0, 2e-6);
    let metrics = blobs.metrics(&params, &batch, &[]).unwrap();
    let names: Vec<&str> = metrics.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["cls", "discovery", "poi_uncert"]);
    for (name, value) in metrics {
        close(name, value, r["exact"][name]["value"].as_f64().unwrap(), 0.0, 1e-8);
    }
    let values = blobs.values(&params, &batch, &[]).unwrap();
    for ((name, yields), blob) in values.iter().zip(BLOBS) {
        let expected = flat(&r["intermediate"]["yields"][blob]);
        for (y, e) in yields.iter().zip(&expected) {
            close(&format!("yields {name}"), *y, *e, 0.0, 1e-10);
        }
    }
    let outputs = blobs.network("nn", &params, batch[0]).unwrap();
    for (o, e) in outputs.iter().zip(flat(&r["intermediate"]["nn_output"]["sig"])) {
        close("network output", *o, e, 0.0, 1e-12);
    }
    let edges = blobs.edges(&params).unwrap();
    assert_eq!(edges, [("edges", vec![0.0, 0.25, 0.5, 0.75, 1.0])]);
    // Inner edges out of order are repaired as training sees them (the graph's rule): an edge
    // not above its predecessor moves 1e-4 above it.
    let mut crossed = params.clone();
    let n = crossed.len();
    crossed[n - 3..].copy_from_slice(&[0.5, 0.4, 0.75]);
    let edges = blobs.edges(&crossed).unwrap();
    assert_eq!(edges[0].1, [0.0, 0.5, 0.5 + 1e-4, 0.75, 1.0]);
}

#[test]
fn knobs_change_the_result_and_unknown_ones_are_errors() {
    let r = reference();
    let mut blobs = Blobs::new();
    let params = reference_params(&r);
    let data = reference_batch(&r);
    let batch: Vec<_> = data.iter().map(|a| a.view()).collect();
    let at_default = blobs.loss("cls", &params, &batch, &[]).unwrap();
    let explicit = blobs.loss("cls", &params, &batch, &[("bandwidth", 0.09), ("lumi", 10.0)]).unwrap();
    assert_eq!(at_default.to_bits(), explicit.to_bits());
    let sharper = blobs.loss("cls", &params, &batch, &[("bandwidth", 1e-8)]).unwrap();
    assert_ne!(sharper, at_default);
    let e = blobs.loss("cls", &params, &batch, &[("bandwith", 0.1)]).unwrap_err();
    assert!(e.message.contains("expected one of the knobs (bandwidth, lumi), found `bandwith`"), "{e}");
    let e = blobs.loss("clss", &params, &batch, &[]).unwrap_err();
    assert!(e.message.contains("found `clss`"), "{e}");
    let e = blobs.loss("cls", &params[1..], &batch, &[]).unwrap_err();
    assert!(e.message.contains("expected 36 parameters, found 35"), "{e}");
    let e = blobs.loss("cls", &params, &batch[..3], &[]).unwrap_err();
    assert!(e.message.contains("expected one array per sample (4), found 3"), "{e}");
    // Samples have sizes of their own. Every event of the nominal background twice is the
    // same density, so the same yields (count · scale / N) and the same loss.
    let twice = ndarray::concatenate(ndarray::Axis(0), &[batch[1], batch[1]]).unwrap();
    let uneven = [batch[0], twice.view(), batch[2], batch[3]];
    let doubled = blobs.loss("cls", &params, &uneven, &[]).unwrap();
    assert!((doubled - at_default).abs() <= 1e-12 * at_default.abs(), "{doubled} vs {at_default}");
    let short = data[1].slice(ndarray::s![..10, ..]).to_owned();
    let uneven = [batch[0], short.view(), batch[2], batch[3]];
    let fewer = blobs.loss("cls", &params, &uneven, &[]).unwrap();
    assert!(fewer.is_finite() && fewer != at_default, "{fewer} vs {at_default}");
    let none = data[1].slice(ndarray::s![..0, ..]).to_owned();
    let empty = [batch[0], none.view(), batch[2], batch[3]];
    let e = blobs.loss("cls", &params, &empty, &[]).unwrap_err();
    assert!(e.message.contains("sample `bkg_nominal`: expected at least one event, found none"), "{e}");
}

#[test]
fn init_is_deterministic_and_laid_out_like_stax() {
    let mut blobs = Blobs::new();
    let a = blobs.init(3);
    let b = blobs.init(3);
    assert_eq!(a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), b.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    assert_ne!(a, blobs.init(4));
    let shapes: Vec<(&str, &[usize])> = Blobs::PARAMS.to_vec();
    assert_eq!(
        shapes,
        [("nn_w0", &[2, 8][..]), ("nn_b0", &[8][..]), ("nn_w1", &[8, 1][..]), ("nn_b1", &[1][..]), ("edges", &[3][..])]
    );
    // Glorot weights are bounded by the truncation at two standard deviations; biases are small;
    // the inner edges start where they were declared.
    let bound = 2.0 * (2.0 / 10.0_f64).sqrt() / 0.879_625_661_034_239_8;
    assert!(a[..16].iter().all(|w| w.abs() <= bound));
    assert!(a[16..24].iter().all(|b| b.abs() < 0.1));
    assert_eq!(a[33..], [0.25, 0.5, 0.75]);
    // The trainer's trait sees the same analysis.
    assert_eq!(blobs.samples(), [("sig", 2), ("bkg_nominal", 2), ("bkg_up", 2), ("bkg_down", 2)]);
    let as_trait: &mut dyn neos::train::Analysis = &mut blobs;
    assert_eq!(as_trait.objectives(), ["cls", "discovery", "poi_uncert", "bce"]);
    assert_eq!(as_trait.report(&a).unwrap(), [("edges".to_string(), vec![0.0, 0.25, 0.5, 0.75, 1.0])]);
}

/// The paper's blobs: signal, nominal background, up and down variations.
fn blobs(n: usize, seed: u64) -> Vec<Array2<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres = [[-1.0, 1.0], [1.0, -1.0], [2.5, 2.0], [-2.5, -1.5]];
    centres
        .iter()
        .map(|c| {
            Array2::from_shape_fn((n, 2), |(_, d)| {
                let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
                c[d] + (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
            })
        })
        .collect()
}

#[test]
fn gradient_at_the_start_matches_finite_differences() {
    let mut a = Blobs::new();
    let params = a.init(1);
    let data = blobs(400, 2);
    let batch: Vec<_> = data.iter().map(|x| x.view()).collect();
    for objective in ["cls", "poi_uncert"] {
        let (value, grad) = a.value_and_grad(objective, &params, &batch, &[]).unwrap();
        assert!(value.is_finite() && grad.iter().all(|g| g.is_finite()));
        let scale = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        assert!(scale > 0.0, "{objective}: the gradient vanishes");
        // Every weight of the output layer, some of the first layer, and the inner edges.
        let n = params.len();
        let coords: Vec<usize> = (0..n).filter(|i| i % 3 == 0 || *i >= n - 12).collect();
        for i in coords {
            let h = 1e-6 * (1.0 + params[i].abs());
            let mut p = params.clone();
            p[i] = params[i] + h;
            let up = a.loss(objective, &p, &batch, &[]).unwrap();
            p[i] = params[i] - h;
            let down = a.loss(objective, &p, &batch, &[]).unwrap();
            let fd = (up - down) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() <= 1e-5 * scale,
                "{objective}: d/dθ[{i}] generated {:e}, finite differences {fd:e} (scale {scale:e})",
                grad[i]
            );
        }
    }
}

#[test]
fn training_lowers_the_loss() {
    let mut a = Blobs::new();
    let data = blobs(2000, 3);
    let mut config = TrainConfig::new("cls", "cls");
    config.steps = 12;
    config.batch_size = 500;
    config.learning_rate = 1e-2;
    config.seed = 4;
    config.test_knobs = vec![("bandwidth".to_string(), 1e-8)];
    let log = train::train(&mut a, &data, &config).unwrap();
    assert_eq!(log.records.len(), 12);
    // The loss on one fixed batch, before and after, so that batch noise cannot fake a decrease.
    let fixed = blobs(500, 5);
    let batch: Vec<_> = fixed.iter().map(|x| x.view()).collect();
    let before = a.loss("cls", &a.init(4), &batch, &[]).unwrap();
    let after = a.loss("cls", &log.params, &batch, &[]).unwrap();
    assert!(after < 0.8 * before, "cls on a fixed batch: {before:e} before, {after:e} after 12 steps");
    // Every step reported its test metrics and the bin edges.
    for r in &log.records {
        assert!(r.value("cls").is_some_and(f64::is_finite));
        assert!(r.report.iter().any(|(n, e)| n == "edges" && e.len() == 5));
    }
}

blobs_analysis!(
    /// Two hidden layers in f32; the statistics in f64.
    BlobsF32,
    [2 => 16 => 16 => 1, relu, sigmoid, precision = f32],
    [cls(mu = 1.0)]
);
blobs_analysis!(
    /// The same network in f64.
    BlobsF64,
    [2 => 16 => 16 => 1, relu, sigmoid, precision = f64],
    [cls(mu = 1.0)]
);

/// A network in f32 computes what the f64 one does to f32's precision: the same parameters
/// give the same loss and gradients to 1e-4 of the gradient's scale, and the same trained
/// analysis (20 Adam steps, the same batches) ends at the same test CLs to within the
/// step-to-step noise of the f64 run.
#[test]
fn a_network_in_f32_trains_like_one_in_f64() {
    let (mut single, mut double) = (BlobsF32::new(), BlobsF64::new());
    assert_eq!(single.param_count(), double.param_count());
    let params = double.init(6);
    let data = blobs(2000, 7);
    let batch: Vec<_> = data.iter().map(|x| x.view()).collect();
    let (v64, g64) = double.value_and_grad("cls", &params, &batch, &[]).unwrap();
    let (v32, g32) = single.value_and_grad("cls", &params, &batch, &[]).unwrap();
    let scale = g64.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(scale > 0.0 && (v32 - v64).abs() <= 1e-5 * v64, "cls in f32 {v32:e}, in f64 {v64:e}");
    // f32 must differ at all, or this test would not be testing a network in f32.
    assert!(g32 != g64, "the f32 network gave the f64 gradient bit for bit");
    for (i, (a, b)) in g32.iter().zip(&g64).enumerate() {
        assert!((a - b).abs() <= 1e-4 * scale, "d/dθ[{i}]: f32 {a:e}, f64 {b:e} (scale {scale:e})");
    }

    let mut config = TrainConfig::new("cls", "cls");
    config.steps = 20;
    config.batch_size = 500;
    config.learning_rate = 1e-2;
    config.seed = 6;
    config.test_knobs = vec![("bandwidth".to_string(), 1e-8)];
    let cls = |log: &train::RunLog| -> Vec<f64> { log.records.iter().map(|r| r.value("cls").unwrap()).collect() };
    let c64 = cls(&train::train(&mut double, &data, &config).unwrap());
    let c32 = cls(&train::train(&mut single, &data, &config).unwrap());
    let last = c64.len() - 1;
    let noise = c64[last - 5..].windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0f64, f64::max);
    assert!(c64[last] < 0.5 * c64[0], "the f64 run did not train: cls {} → {}", c64[0], c64[last]);
    assert!(
        (c32[last] - c64[last]).abs() <= noise.max(1e-3 * c64[last]),
        "test cls after 20 steps: f32 {:e}, f64 {:e}, step-to-step noise {noise:e}",
        c32[last],
        c64[last]
    );
}
