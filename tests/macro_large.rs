//! An analysis at the scale of real ones through `neos!`: 20 channels of 5 bins from one
//! network's histograms, each background with a staterror of its own and two of four shared
//! normsys — 105 model parameters. The model is a few likelihood nodes whatever its size, so
//! this compiles like the small analyses; the generated gradients of `cls`, `discovery` and
//! `poi_uncert` through the fits agree with central differences of the generated loss.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use ndarray::Array2;

neos::neos! {
    analysis Large {
        inputs { sig: events[1], bkg: events[1] }
        knobs { bandwidth = 0.1, lumi = 10.0 }
        params {
            nn = mlp(1 => 3 => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 5, trainable);
        }
        let s = hist(nn(sig), edges, bandwidth, scale = 2.0 * lumi);
        let b = hist(nn(bkg), edges, bandwidth, scale = 20.0 * lumi);
        model {
            channel c00 {
                sample signal = 1.00 * s { normfactor mu }
                sample background = 1.0 * b { staterror stat00(0.05 * b), normsys sys0(lo = 0.92, hi = 1.08), normsys sys1(lo = 0.95, hi = 1.04) }
            }
            channel c01 {
                sample signal = 1.05 * s { normfactor mu }
                sample background = 1.1 * b { staterror stat01(0.05 * b), normsys sys1(lo = 0.92, hi = 1.08), normsys sys2(lo = 0.95, hi = 1.04) }
            }
            channel c02 {
                sample signal = 1.10 * s { normfactor mu }
                sample background = 1.2 * b { staterror stat02(0.05 * b), normsys sys2(lo = 0.92, hi = 1.08), normsys sys3(lo = 0.95, hi = 1.04) }
            }
            channel c03 {
                sample signal = 1.15 * s { normfactor mu }
                sample background = 1.3 * b { staterror stat03(0.05 * b), normsys sys3(lo = 0.92, hi = 1.08), normsys sys0(lo = 0.95, hi = 1.04) }
            }
            channel c04 {
                sample signal = 1.20 * s { normfactor mu }
                sample background = 1.4 * b { staterror stat04(0.05 * b), normsys sys0(lo = 0.92, hi = 1.08), normsys sys1(lo = 0.95, hi = 1.04) }
            }
            channel c05 {
                sample signal = 1.25 * s { normfactor mu }
                sample background = 1.5 * b { staterror stat05(0.05 * b), normsys sys1(lo = 0.92, hi = 1.08), normsys sys2(lo = 0.95, hi = 1.04) }
            }
            channel c06 {
                sample signal = 1.30 * s { normfactor mu }
                sample background = 1.6 * b { staterror stat06(0.05 * b), normsys sys2(lo = 0.92, hi = 1.08), normsys sys3(lo = 0.95, hi = 1.04) }
            }
            channel c07 {
                sample signal = 1.35 * s { normfactor mu }
                sample background = 1.0 * b { staterror stat07(0.05 * b), normsys sys3(lo = 0.92, hi = 1.08), normsys sys0(lo = 0.95, hi = 1.04) }
            }
            channel c08 {
                sample signal = 1.40 * s { normfactor mu }
                sample background = 1.1 * b { staterror stat08(0.05 * b), normsys sys0(lo = 0.92, hi = 1.08), normsys sys1(lo = 0.95, hi = 1.04) }
            }
            channel c09 {
                sample signal = 1.45 * s { normfactor mu }
                sample background = 1.2 * b { staterror stat09(0.05 * b), normsys sys1(lo = 0.92, hi = 1.08), normsys sys2(lo = 0.95, hi = 1.04) }
            }
            channel c10 {
                sample signal = 1.50 * s { normfactor mu }
                sample background = 1.3 * b { staterror stat10(0.05 * b), normsys sys2(lo = 0.92, hi = 1.08), normsys sys3(lo = 0.95, hi = 1.04) }
            }
            channel c11 {
                sample signal = 1.55 * s { normfactor mu }
                sample background = 1.4 * b { staterror stat11(0.05 * b), normsys sys3(lo = 0.92, hi = 1.08), normsys sys0(lo = 0.95, hi = 1.04) }
            }
            channel c12 {
                sample signal = 1.60 * s { normfactor mu }
                sample background = 1.5 * b { staterror stat12(0.05 * b), normsys sys0(lo = 0.92, hi = 1.08), normsys sys1(lo = 0.95, hi = 1.04) }
            }
            channel c13 {
                sample signal = 1.65 * s { normfactor mu }
                sample background = 1.6 * b { staterror stat13(0.05 * b), normsys sys1(lo = 0.92, hi = 1.08), normsys sys2(lo = 0.95, hi = 1.04) }
            }
            channel c14 {
                sample signal = 1.70 * s { normfactor mu }
                sample background = 1.0 * b { staterror stat14(0.05 * b), normsys sys2(lo = 0.92, hi = 1.08), normsys sys3(lo = 0.95, hi = 1.04) }
            }
            channel c15 {
                sample signal = 1.75 * s { normfactor mu }
                sample background = 1.1 * b { staterror stat15(0.05 * b), normsys sys3(lo = 0.92, hi = 1.08), normsys sys0(lo = 0.95, hi = 1.04) }
            }
            channel c16 {
                sample signal = 1.80 * s { normfactor mu }
                sample background = 1.2 * b { staterror stat16(0.05 * b), normsys sys0(lo = 0.92, hi = 1.08), normsys sys1(lo = 0.95, hi = 1.04) }
            }
            channel c17 {
                sample signal = 1.85 * s { normfactor mu }
                sample background = 1.3 * b { staterror stat17(0.05 * b), normsys sys1(lo = 0.92, hi = 1.08), normsys sys2(lo = 0.95, hi = 1.04) }
            }
            channel c18 {
                sample signal = 1.90 * s { normfactor mu }
                sample background = 1.4 * b { staterror stat18(0.05 * b), normsys sys2(lo = 0.92, hi = 1.08), normsys sys3(lo = 0.95, hi = 1.04) }
            }
            channel c19 {
                sample signal = 1.95 * s { normfactor mu }
                sample background = 1.5 * b { staterror stat19(0.05 * b), normsys sys3(lo = 0.92, hi = 1.08), normsys sys0(lo = 0.95, hi = 1.04) }
            }
            poi mu;
        }
        loss cls(mu = 1.0), discovery, poi_uncert;
        metrics cls, discovery, poi_uncert;
    }
}

/// Signal events towards 1, background events spread below, one feature each.
fn events() -> [Array2<f64>; 2] {
    let n = 60;
    let sig = Array2::from_shape_fn((n, 1), |(i, _)| 0.5 + 0.5 * (i as f64 / n as f64));
    let bkg = Array2::from_shape_fn((n, 1), |(i, _)| 0.9 * ((i * 7 % n) as f64 / n as f64));
    [sig, bkg]
}

#[test]
fn gradients_through_a_hundred_parameter_model_match_central_differences() {
    let mut analysis = Large::new();
    let data = events();
    let batch = [data[0].view(), data[1].view()];
    let params = analysis.init(3);
    for objective in ["cls", "discovery", "poi_uncert"] {
        let (value, grad) = analysis.value_and_grad(objective, &params, &batch, &[]).unwrap();
        assert!(value.is_finite() && value > 0.0, "{objective}: {value}");
        let scale = grad.iter().map(|g| g.abs()).fold(0.0, f64::max);
        assert!(scale > 0.0, "{objective}: a zero gradient");
        for (k, g) in grad.iter().enumerate() {
            let eps = 1e-5;
            let mut up = params.clone();
            up[k] += eps;
            let mut down = params.clone();
            down[k] -= eps;
            let numeric = (analysis.loss(objective, &up, &batch, &[]).unwrap()
                - analysis.loss(objective, &down, &batch, &[]).unwrap())
                / (2.0 * eps);
            assert!(
                (g - numeric).abs() <= 1e-5 * scale,
                "{objective}, parameter {k}: symbolic {g:e}, finite difference {numeric:e} (scale {scale:e})"
            );
        }
    }
}
