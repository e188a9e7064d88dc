//! End to end: a small network trained through the blobs analysis compiled by `neos!`. At the
//! start the gradient of the cls loss (through the fits) matches central finite differences of
//! the generated loss, and a few Adam steps lower the loss.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use ndarray::Array2;
use neos::__private::runtime::train::{self, Analysis, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

neos::neos! {
    /// The four blobs with a 2 → 8 → 1 network.
    pub analysis SmallBlobs {
        inputs { sig: events[2], bkg_nominal: events[2], bkg_up: events[2], bkg_down: events[2] }
        knobs { bandwidth = 0.09, lumi = 10.0 }
        params {
            nn = mlp(2 => 8 => 1, relu, sigmoid);
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
        loss cls(mu = 1.0), poi_uncert;
        metrics cls, discovery, poi_uncert;
    }
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
    let mut a = SmallBlobs::new();
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
    let mut a = SmallBlobs::new();
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
