//! A network's region spliced into an existing analysis: `model from "…json"` keeps every
//! channel, sample, modifier and setting of a pyhf workspace (21 parameters here) and adds a
//! region binned in the network's output whose modifiers share the workspace's parameters, so
//! that the loss is the whole analysis's CLs. The export keeps the workspace's numbers, `neos
//! cls` on it gives the analysis's cls, and the gradients agree with central differences.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

#[path = "support/gradcheck.rs"]
mod gradcheck;

use ndarray::{Array2, ArrayView2};
use neos::ir::histfactory::Workspace;

neos::neos! {
    analysis Spliced {
        inputs { sig: events[2], bkg: weighted events[2] }
        knobs { bandwidth = 0.1 }
        params {
            nn = mlp(2 => 8 => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 3, trainable);
        }
        let s = hist(nn(sig), edges, bandwidth, scale = 8.0);
        let b = hist(nn(bkg), edges, bandwidth, weights = weights(bkg), scale = 1.0);
        model from "examples/data/existing_analysis.json" {
            channel nn_region {
                sample signal = s { normfactor mu, normsys jet_energy_scale(lo = 0.95, hi = 1.05) }
                sample background = b {
                    normfactor background_norm,
                    normsys jet_energy_scale(lo = 0.9, hi = 1.1),
                    staterror stat_nn(mcstat(b))
                }
            }
        }
        loss cls;
        metrics cls, poi_uncert;
    }
}

/// Signal near (1, 1), background near (−1, −1) with weights summing to 200.
fn data() -> [Array2<f64>; 2] {
    let wave = |i: usize, k: usize| (((i * 7919 + k * 104_729) % 1000) as f64 / 1000.0 - 0.5) * 2.0;
    let sig = Array2::from_shape_fn((150, 2), |(i, j)| 1.0 + wave(i, j));
    let n = 400;
    let bkg =
        Array2::from_shape_fn((n, 3), |(i, j)| if j < 2 { -0.6 + 1.5 * wave(i, j + 2) } else { 200.0 / n as f64 });
    [sig, bkg]
}

fn views(data: &[Array2<f64>]) -> Vec<ArrayView2<'_, f64>> {
    data.iter().map(|x| x.view()).collect()
}

#[test]
fn the_workspace_is_kept_and_the_network_region_added() {
    let mut analysis = Spliced::new();
    let data = data();
    let params = analysis.init(3);
    let hard = [("bandwidth", 1e-9)];
    let exported = Workspace::from_json(&analysis.workspace(&params, &views(&data), &hard).unwrap()).unwrap();
    let base = Workspace::from_json(&std::fs::read_to_string("examples/data/existing_analysis.json").unwrap()).unwrap();
    let names = |ws: &Workspace| ws.channels.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&exported), ["background_control", "sideband", "validation_region", "nn_region"]);
    // Every channel of the workspace keeps its samples, numbers and modifiers.
    for (kept, original) in exported.channels.iter().zip(&base.channels) {
        assert_eq!(kept.samples.len(), original.samples.len());
        for (k, o) in kept.samples.iter().zip(&original.samples) {
            assert_eq!((&k.name, &k.nominal), (&o.name, &o.nominal));
            let data = |s: &neos::ir::histfactory::Sample<Vec<f64>>| {
                s.modifiers.iter().map(|m| (m.name.clone(), m.ty, m.data.clone())).collect::<Vec<_>>()
            };
            assert_eq!(data(k), data(o), "{}/{}", kept.name, k.name);
        }
    }
    // The measurement's settings are the workspace's.
    let configs = |ws: &Workspace| {
        ws.measurements[0].parameters.iter().map(|p| (p.name.clone(), p.bounds.clone())).collect::<Vec<_>>()
    };
    assert_eq!(configs(&exported), configs(&base));
    assert_eq!(exported.measurements[0].poi.0, "mu");
}

#[test]
fn neos_cls_on_the_export_is_the_analysis_cls() {
    let mut analysis = Spliced::new();
    let data = data();
    let params = analysis.init(5);
    let hard = [("bandwidth", 1e-9)];
    let text = analysis.workspace(&params, &views(&data), &hard).unwrap();
    let cls = analysis.metrics(&params, &views(&data), &hard).unwrap()[0].1;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("neos-splice");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spliced.json");
    std::fs::write(&path, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neos")).arg("cls").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let observed = result["CLs_obs"].as_f64().unwrap();
    assert!((observed - cls).abs() <= 1e-9 * cls, "neos cls {observed}, the analysis {cls}");
}

#[test]
fn gradients_through_the_whole_analysis_match_central_differences() {
    let mut analysis = Spliced::new();
    let data = data();
    let batch = views(&data);
    let params = analysis.init(7);
    let (loss, grad) = analysis.value_and_grad("cls", &params, &batch, &[]).unwrap();
    assert!(loss.is_finite(), "{loss}");
    gradcheck::assert_central_differences("cls", &params, &grad, 1e-5, 1e-5, |p| {
        analysis.loss("cls", p, &batch, &[]).unwrap()
    });
}
