//! Networks whose outputs are the bins: a softmax output, soft-count histograms (`counts`),
//! and the mean and standard deviation of several samples' histograms (`mean`, `std`), as the
//! original neos example (neos 0.0.1, three blobs) builds its analysis: the background the mean
//! of two samples' histograms, its shapesys uncertainty their standard deviation. The yields
//! are checked against sums written out here, the gradients through the fits against central
//! differences.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

#[path = "support/gradcheck.rs"]
mod gradcheck;

use ndarray::{Array2, ArrayView2};

neos::neos! {
    /// neos 0.0.1's three blobs with a small network.
    analysis ThreeBlobs {
        inputs { sig: events[2], bkg1: events[2], bkg2: events[2] }
        params { nn = mlp(2 => 6 => 6 => 3, relu, softmax); }
        let s = counts(nn(sig), scale = 20.0);
        let b1 = counts(nn(bkg1), scale = 100.0);
        let b2 = counts(nn(bkg2), scale = 100.0);
        let b = mean(b1, b2);
        let b_unc = std(b1, b2);
        model {
            channel singlechannel {
                sample signal = s { normfactor mu }
                sample background = b { shapesys uncorr_bkguncrt(b_unc) }
            }
            poi mu;
        }
        loss cls(mu = 1.0), poi_uncert;
        metrics cls, poi_uncert;
    }
}

neos::neos! {
    /// A softmax with a temperature over a linear network, as INFERNO bins: soft while
    /// training, hard (each event in the bin of its largest output) as the temperature goes to 0.
    analysis Tempered {
        inputs { sig: events[2], bkg: events[2] }
        knobs { temperature = 0.1 }
        params { nn = mlp(2 => 6 => 3, relu, identity); }
        let s = counts(softmax(nn(sig) / temperature), scale = 20.0);
        let b = counts(softmax(nn(bkg) / temperature), scale = 100.0);
        model {
            channel sr {
                sample signal = s { normfactor mu }
                sample background = b { normsys bkg_norm(lo = 0.9, hi = 1.1) }
            }
            poi mu;
        }
        loss poi_uncert;
        metrics poi_uncert;
    }
}

/// Three blobs of different sizes around (−1, 1), (2, 2) and (−1, −1).
fn data() -> [Array2<f64>; 3] {
    let blob = |n: usize, centre: (f64, f64), salt: usize| {
        Array2::from_shape_fn((n, 2), |(i, j)| {
            let u = (((i + salt) * 7919 + j * 104_729) % 1000) as f64 / 1000.0 - 0.5;
            2.0 * u + if j == 0 { centre.0 } else { centre.1 }
        })
    };
    [blob(50, (-1.0, 1.0), 0), blob(70, (2.0, 2.0), 13), blob(60, (-1.0, -1.0), 29)]
}

fn views(data: &[Array2<f64>]) -> Vec<ArrayView2<'_, f64>> {
    data.iter().map(|x| x.view()).collect()
}

fn value<'a>(values: &'a [(&str, Vec<f64>)], name: &str) -> &'a [f64] {
    &values.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn soft_counts_are_scaled_sums_of_the_softmax_outputs() {
    let mut analysis = ThreeBlobs::new();
    let data = data();
    let params = analysis.init(1);
    let values = analysis.values(&params, &views(&data), &[]).unwrap();
    let mut hists = Vec::new();
    for (x, (name, scale)) in data.iter().zip([("s", 20.0), ("b1", 100.0), ("b2", 100.0)]) {
        let p = analysis.network("nn", &params, x.view()).unwrap();
        assert_eq!(p.len(), 3 * x.nrows());
        // Each event's outputs are shares of one: they sum to 1.
        for row in p.chunks(3) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12 && row.iter().all(|v| *v > 0.0), "{row:?}");
        }
        let n = x.nrows() as f64;
        let expected: Vec<f64> = (0..3).map(|k| scale * p.iter().skip(k).step_by(3).sum::<f64>() / n + 1e-3).collect();
        let found = value(&values, name);
        for (e, f) in expected.iter().zip(found) {
            assert!((e - f).abs() <= 1e-12 * e, "{name}: {expected:?} vs {found:?}");
        }
        hists.push(expected);
    }
    // NumPy's mean and standard deviation (ddof 0) of the two backgrounds, bin by bin.
    let (b, b_unc) = (value(&values, "b"), value(&values, "b_unc"));
    for (k, (b1, b2)) in hists[1].iter().zip(&hists[2]).enumerate() {
        let mean = (b1 + b2) / 2.0;
        let std = (((b1 - mean).powi(2) + (b2 - mean).powi(2)) / 2.0).sqrt();
        assert!((b[k] - mean).abs() <= 1e-12 * mean, "bin {k}: mean {} vs {mean}", b[k]);
        assert!((b_unc[k] - std).abs() <= 1e-12 * mean, "bin {k}: std {} vs {std}", b_unc[k]);
    }
}

#[test]
fn gradients_through_the_fits_match_central_differences() {
    let mut analysis = ThreeBlobs::new();
    let data = data();
    let batch = views(&data);
    let params = analysis.init(3);
    for objective in ["cls", "poi_uncert"] {
        let (loss, grad) = analysis.value_and_grad(objective, &params, &batch, &[]).unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{objective}: {loss}");
        gradcheck::assert_central_differences(objective, &params, &grad, 1e-5, 1e-5, |p| {
            analysis.loss(objective, p, &batch, &[]).unwrap()
        });
    }
}

#[test]
fn large_outputs_do_not_overflow_the_softmax() {
    let mut analysis = ThreeBlobs::new();
    let params = analysis.init(5);
    // Points far out drive the last layer's inputs, and so its outputs, to large values.
    let far = Array2::from_shape_fn((4, 2), |(i, j)| (1e6 + 1e5 * i as f64) * if j == 0 { 1.0 } else { -1.0 });
    let p = analysis.network("nn", &params, far.view()).unwrap();
    assert!(p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{p:?}");
    for row in p.chunks(3) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{row:?}");
        // The outputs are saturated (one share is 1 to the last digit): the network is not dead
        // out here, and its logits grow with the inputs (relu layers), to ~1e5 at these points,
        // far beyond what exp takes unshifted (≈ 709).
        assert!(row.contains(&1.0), "{row:?}");
    }
}

#[test]
fn a_cold_softmax_counts_each_event_in_the_bin_of_its_largest_output() {
    let mut analysis = Tempered::new();
    let data = data();
    let batch = [data[0].view(), data[1].view()];
    let params = analysis.init(2);
    let values = analysis.values(&params, &batch, &[("temperature", 1e-9)]).unwrap();
    for (x, (name, scale)) in data.iter().zip([("s", 20.0), ("b", 100.0)]) {
        let outputs = analysis.network("nn", &params, x.view()).unwrap();
        let mut hard = [0.0; 3];
        for row in outputs.chunks(3) {
            let largest = (0..3).fold(0, |m, k| if row[k] > row[m] { k } else { m });
            hard[largest] += 1.0;
        }
        let expected: Vec<f64> = hard.iter().map(|c| scale * c / x.nrows() as f64 + 1e-3).collect();
        let found = value(&values, name);
        assert!(
            found.iter().zip(&expected).all(|(f, e)| (f - e).abs() <= 1e-12 * e),
            "{name}: {found:?} vs {expected:?}"
        );
    }
    let (loss, grad) = analysis.value_and_grad("poi_uncert", &params, &batch, &[]).unwrap();
    assert!(loss.is_finite(), "{loss}");
    gradcheck::assert_central_differences("poi_uncert", &params, &grad, 1e-5, 1e-5, |p| {
        analysis.loss("poi_uncert", p, &batch, &[]).unwrap()
    });
}
