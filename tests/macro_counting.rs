//! A one-bin counting analysis through `neos!`: a trainable cut on one feature, a normsys and
//! a staterror on the background. The generated gradient of each objective with respect to
//! the cut agrees with central differences of the generated loss.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use ndarray::Array2;

neos::neos! {
    analysis Counting {
        inputs { sig: events[1], bkg: events[1] }
        knobs { bandwidth = 0.1, lumi = 10.0 }
        params {
            cut = scalar(0.5);
            bin = bin_edges(0.0..1.0, bins = 1);
        }
        let s = hist(sigmoid((sig[0] - cut) * 10.0), bin, bandwidth, scale = 5.0 * lumi);
        let b = hist(sigmoid((bkg[0] - cut) * 10.0), bin, bandwidth, scale = 50.0 * lumi);
        model {
            channel sr {
                sample signal = s { normfactor mu }
                sample background = b { normsys bkg_norm(lo = 0.9, hi = 1.1), staterror stat(0.1 * b) }
            }
            poi mu;
            parameter mu { bounds = (0.0, 20.0) }
        }
        loss discovery, poi_uncert, cls;
        metrics discovery, poi_uncert;
    }
}

/// Signal events near 1 and background events spread below, one feature each.
fn events() -> [Array2<f64>; 2] {
    let n = 40;
    let sig = Array2::from_shape_fn((n, 1), |(i, _)| 0.55 + 0.4 * (i as f64 / n as f64));
    let bkg = Array2::from_shape_fn((n, 1), |(i, _)| 0.05 + 0.7 * ((i * 7 % n) as f64 / n as f64));
    [sig, bkg]
}

#[test]
fn cut_gradients_match_central_differences() {
    let mut analysis = Counting::new();
    let data = events();
    let batch = [data[0].view(), data[1].view()];
    let params = analysis.init(1);
    assert_eq!(params, [0.5]);
    for objective in ["discovery", "poi_uncert", "cls"] {
        let (value, grad) = analysis.value_and_grad(objective, &params, &batch, &[]).unwrap();
        assert!(value.is_finite() && grad[0].is_finite(), "{objective}: {value}, {grad:?}");
        let eps = 1e-5;
        let up = analysis.loss(objective, &[params[0] + eps], &batch, &[]).unwrap();
        let down = analysis.loss(objective, &[params[0] - eps], &batch, &[]).unwrap();
        let numeric = (up - down) / (2.0 * eps);
        assert!(
            (grad[0] - numeric).abs() <= 1e-6 * grad[0].abs().max(numeric.abs()) + 1e-9,
            "{objective}: symbolic {:e}, finite difference {numeric:e}",
            grad[0]
        );
    }
    let values = analysis.values(&params, &batch, &[]).unwrap();
    let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["s", "b", "bin"]);
    assert_eq!(values[2].1, [0.0, 1.0]);
    assert!(values[0].1[0] > 0.0 && values[1].1[0] > values[0].1[0]);
}
