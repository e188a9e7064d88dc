//! Weighted Monte Carlo of unequal sizes through `neos!`: weighted histograms, their Monte
//! Carlo statistical uncertainty feeding a staterror, a one-bin control region from `count`,
//! and the whole-sample size knobs the trainer sets. The yields are checked against sums
//! written out here, the size scaling exactly, the gradients against central differences.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

#[path = "support/gradcheck.rs"]
mod gradcheck;

use ndarray::{Array2, ArrayView2};
use neos::train::{train, train_test_split, TrainConfig};

neos::neos! {
    /// A staterror whose first bin has no uncertainty at run time: pyhf holds its γ at 1.
    analysis Widthless {
        inputs { sig: events[2], bkg: weighted events[2] }
        knobs { bandwidth = 0.1 }
        params {
            nn = mlp(2 => 4 => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 3, trainable);
        }
        let s = hist(nn(sig), edges, bandwidth, scale = 10.0);
        let b = hist(nn(bkg), edges, bandwidth, weights = weights(bkg), scale = 1.0);
        let b_stat = mcstat(b) * [0.0, 1.0, 1.0];
        model {
            channel sr {
                sample signal = s { normfactor mu }
                sample background = b { staterror stat(b_stat), normsys norm(lo = 0.9, hi = 1.1) }
            }
            poi mu;
        }
        loss cls;
        metrics cls;
    }
}

neos::neos! {
    analysis Weighted {
        inputs { sig: weighted events[2], bkg: weighted events[2], bkg_up: events[2], bkg_down: events[2] }
        knobs { bandwidth = 0.1 }
        params {
            nn = mlp(2 => 4 => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 3, trainable);
        }
        let s = hist(nn(sig), edges, bandwidth, weights = weights(sig), scale = 1.0);
        let b = hist(nn(bkg), edges, bandwidth, weights = weights(bkg), scale = 1.0);
        let b_stat = mcstat(b);
        let bup = hist(nn(bkg_up), edges, bandwidth, scale = 60.0);
        let bdn = hist(nn(bkg_down), edges, bandwidth, scale = 40.0);
        let cr = count(bkg, weights = weights(bkg), scale = 2.0);
        let cr_stat = mcstat(cr);
        model {
            channel sr {
                sample signal = s { normfactor mu }
                sample background = b { normfactor bkg_norm, histosys shape(lo = bdn, hi = bup), staterror stat(b_stat) }
            }
            channel cr {
                sample background = cr { normfactor bkg_norm, staterror stat_cr(cr_stat) }
            }
            poi mu;
        }
        loss cls, poi_uncert;
        metrics cls, poi_uncert;
    }
}

/// A deterministic sample of `n` events around `centre`, with weights between 0.5 and 1.5
/// times `weight` in the last column when `weighted`.
fn sample(n: usize, centre: (f64, f64), weight: Option<f64>) -> Array2<f64> {
    let columns = 2 + usize::from(weight.is_some());
    Array2::from_shape_fn((n, columns), |(i, j)| {
        let u = ((i * 7919 + j * 104_729) % 1000) as f64 / 1000.0;
        match j {
            0 => centre.0 + 2.0 * (u - 0.5),
            1 => centre.1 + 2.0 * (((i * 31 + 17) % 97) as f64 / 97.0 - 0.5),
            _ => weight.unwrap_or(1.0) * (0.5 + u),
        }
    })
}

/// Signal, background (both weighted) and the two unweighted variations, of four sizes.
fn data() -> [Array2<f64>; 4] {
    [
        sample(120, (-1.0, 1.0), Some(0.1)),
        sample(300, (1.0, -1.0), Some(0.2)),
        sample(90, (1.5, -0.5), None),
        sample(150, (0.5, -1.5), None),
    ]
}

fn views(data: &[Array2<f64>]) -> Vec<ArrayView2<'_, f64>> {
    data.iter().map(|x| x.view()).collect()
}

fn value<'a>(values: &'a [(&str, Vec<f64>)], name: &str) -> &'a [f64] {
    &values.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn samples_declare_their_weight_column() {
    let analysis = Weighted::new();
    assert_eq!(analysis.samples(), [("sig", 3), ("bkg", 3), ("bkg_up", 2), ("bkg_down", 2)]);
    // Only the weighted yields and the uncertainties need the whole samples' sizes.
    assert_eq!(analysis.sample_size_knobs(), [Some("sig_events"), Some("bkg_events"), None, None]);
}

/// With hard histograms the yields are the sums of weights per bin and the uncertainties the
/// square roots of the sums of squared weights, as pyhf's staterror expects them.
#[test]
fn hard_weighted_histograms_are_sums_of_weights() {
    let mut analysis = Weighted::new();
    let data = data();
    let params = analysis.init(3);
    let hard = [("bandwidth", 1e-9)];
    let values = analysis.values(&params, &views(&data), &hard).unwrap();
    let edges = value(&values, "edges").to_vec();
    let outputs = analysis.network("nn", &params, data[1].slice(ndarray::s![.., ..2])).unwrap();
    let (mut sums, mut squares) = (vec![0.0; 3], vec![0.0; 3]);
    for (t, row) in outputs.iter().zip(data[1].rows()) {
        let w = row[2];
        if let Some(j) = (0..3).find(|&j| edges[j] < *t && *t < edges[j + 1]) {
            sums[j] += w;
            squares[j] += w * w;
        }
    }
    assert!(sums.iter().sum::<f64>() > 0.0, "{outputs:?}");
    for j in 0..3 {
        let (b, stat) = (value(&values, "b")[j], value(&values, "b_stat")[j]);
        assert!((b - (sums[j] + 1e-3)).abs() < 1e-9, "bin {j}: {b} vs {}", sums[j] + 1e-3);
        assert!((stat - squares[j].sqrt()).abs() < 1e-9, "bin {j}: {stat} vs {}", squares[j].sqrt());
    }
    // The control region holds the whole sample: twice its weights, and √(4 Σw²).
    let total: f64 = data[1].column(2).sum();
    let total_sq: f64 = data[1].column(2).iter().map(|w| w * w).sum();
    assert!((value(&values, "cr")[0] - (2.0 * total + 1e-3)).abs() < 1e-9);
    assert!((value(&values, "cr_stat")[0] - 2.0 * total_sq.sqrt()).abs() < 1e-9);
}

/// Events given as a part of a larger sample estimate the whole sample's sums: the sample
/// twice over, said to be a part of a sample of its own size, gives the same yields and
/// uncertainties; without the size, the yields double and the uncertainties grow by √2.
#[test]
fn parts_of_a_sample_estimate_the_whole() {
    let mut analysis = Weighted::new();
    let data = data();
    let params = analysis.init(5);
    let once = analysis.values(&params, &views(&data), &[]).unwrap();
    let doubled = ndarray::concatenate(ndarray::Axis(0), &[data[1].view(), data[1].view()]).unwrap();
    let mut twice = data.clone();
    twice[1] = doubled;
    let as_part = analysis.values(&params, &views(&twice), &[("bkg_events", 300.0)]).unwrap();
    let as_whole = analysis.values(&params, &views(&twice), &[]).unwrap();
    for name in ["b", "b_stat", "cr", "cr_stat"] {
        for (j, (a, p)) in value(&once, name).iter().zip(value(&as_part, name)).enumerate() {
            assert!((a - p).abs() <= 1e-12 * a.abs().max(1.0), "{name}[{j}]: {a} vs {p}");
        }
    }
    for j in 0..3 {
        let (a, w) = (value(&once, "b")[j] - 1e-3, value(&as_whole, "b")[j] - 1e-3);
        assert!((2.0 * a - w).abs() <= 1e-9 * w.abs().max(1.0), "b[{j}]: {a} vs {w}");
        let (a, w) = (value(&once, "b_stat")[j], value(&as_whole, "b_stat")[j]);
        assert!((2f64.sqrt() * a - w).abs() <= 1e-9 * w.abs().max(1.0), "b_stat[{j}]: {a} vs {w}");
    }
}

/// The gradients through the weighted histograms, the uncertainties that depend on the
/// network, and the fits agree with central differences of the loss.
#[test]
fn weighted_gradients_match_central_differences() {
    let mut analysis = Weighted::new();
    let data = data();
    let batch = views(&data);
    let params = analysis.init(7);
    for objective in ["cls", "poi_uncert"] {
        let (loss, grad) = analysis.value_and_grad(objective, &params, &batch, &[]).unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{objective}: {loss}");
        gradcheck::assert_central_differences(objective, &params, &grad, 1e-5, 1e-5, |p| {
            analysis.loss(objective, p, &batch, &[]).unwrap()
        });
    }
}

/// The trainer runs weighted samples of unequal sizes, tests on every test event, and tells
/// the analysis each sample's whole size: its test metrics are those of the analysis on the
/// test sets with the sizes given.
#[test]
fn the_trainer_trains_weighted_samples_of_unequal_sizes() {
    let mut analysis = Weighted::new();
    let data = data();
    let config =
        TrainConfig { steps: 1, batch_size: 40, learning_rate: 1e-2, seed: 2, ..TrainConfig::new("cls", "cls") };
    let log = train(&mut analysis, &data, &config).unwrap();
    let events: Vec<usize> = log.settings.samples.iter().map(|s| s.test_events).collect();
    assert_eq!(events, [30, 75, 23, 38]);
    let recorded = log.records[0].value("poi_uncert").unwrap();
    // The same metric, computed here on the run's test sets with the whole samples' sizes.
    let names: Vec<String> = analysis.samples().iter().map(|(n, _)| n.to_string()).collect();
    let split = train_test_split(&views(&data), &names, config.train_fraction, config.seed).unwrap();
    let metric = |analysis: &mut Weighted, knobs: &[(&str, f64)]| {
        let m = analysis.metrics(&log.params, &views(&split.test), knobs).unwrap();
        m.iter().find(|(n, _)| *n == "poi_uncert").unwrap().1
    };
    let sized = metric(&mut analysis, &[("sig_events", 120.0), ("bkg_events", 300.0)]);
    let without = metric(&mut analysis, &[]);
    assert!((sized - recorded).abs() <= 1e-9 * recorded, "{sized} vs {recorded}");
    assert!((without - recorded).abs() > 1e-3 * recorded, "{without} vs {recorded}");
    // The trained analysis exported on the same test sets: `neos cls` on it is the run's last
    // test cls.
    let knobs = [("sig_events", 120.0), ("bkg_events", 300.0)];
    let exported = analysis.workspace(&log.params, &views(&split.test), &knobs).unwrap();
    let last = log.records.last().unwrap().value("cls").unwrap();
    let observed = neos_cls(&exported, "trained.json");
    assert!(
        (observed - last).abs() <= 1e-9 * last,
        "neos cls on the export: {observed}, the run's last test cls: {last}"
    );
}

/// The trained analysis written as a pyhf workspace is read back by the strict reader, keeps
/// the model's layout, and `neos cls` on it gives the analysis's own `cls` metric (its
/// observations are the background-only Asimov data the metric is computed on).
#[test]
fn the_exported_workspace_gives_the_analysis_cls() {
    let mut analysis = Weighted::new();
    let data = data();
    let params = analysis.init(11);
    let hard = [("bandwidth", 1e-9)];
    let text = analysis.workspace(&params, &views(&data), &hard).unwrap();
    let ws = neos::ir::histfactory::Workspace::from_json(&text).unwrap();
    // Each channel's name with its samples' names and their modifiers' names.
    type Layout = Vec<(String, Vec<(String, Vec<String>)>)>;
    let layout: Layout = ws
        .channels
        .iter()
        .map(|c| {
            let samples =
                c.samples.iter().map(|s| (s.name.clone(), s.modifiers.iter().map(|m| m.name.clone()).collect()));
            (c.name.clone(), samples.collect())
        })
        .collect();
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        layout,
        [
            (
                "sr".to_string(),
                vec![
                    ("signal".to_string(), names(&["mu"])),
                    ("background".to_string(), names(&["bkg_norm", "shape", "stat"]))
                ]
            ),
            ("cr".to_string(), vec![("background".to_string(), names(&["bkg_norm", "stat_cr"]))]),
        ]
    );
    assert_eq!(ws.measurements[0].name, "Weighted");
    // The numbers are the analysis's values on the same events.
    let values = analysis.values(&params, &views(&data), &hard).unwrap();
    assert_eq!(ws.channels[0].samples[1].nominal, value(&values, "b"));
    assert_eq!(ws.channels[1].samples[0].modifiers[1].data[0], value(&values, "cr_stat"));

    let metrics = analysis.metrics(&params, &views(&data), &hard).unwrap();
    let cls = metrics.iter().find(|(n, _)| *n == "cls").unwrap().1;
    let observed = neos_cls(&text, "weighted.json");
    assert!((observed - cls).abs() <= 1e-9 * cls, "neos cls on the export: {observed}, the analysis: {cls}");
}

/// `CLs_obs` of the `neos cls` command on a workspace (written under the test's folder as
/// `file`).
fn neos_cls(workspace: &str, file: &str) -> f64 {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("neos-export");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, workspace).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neos")).arg("cls").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    result["CLs_obs"].as_f64().unwrap()
}

/// A bin whose uncertainty is zero at run time is held fixed by the fits, as pyhf holds it,
/// and gets no sensitivity through them: the gradient agrees with central differences of
/// re-solved fits, and `neos cls` on the export (where the reader fixes the bin) agrees.
#[test]
fn bins_without_width_at_run_time_are_held_fixed() {
    let mut analysis = Widthless::new();
    let data = data();
    let batch = [data[0].slice(ndarray::s![.., ..2]), data[1].view()];
    let params = analysis.init(13);
    let (loss, grad) = analysis.value_and_grad("cls", &params, &batch, &[]).unwrap();
    assert!(loss.is_finite(), "{loss}");
    gradcheck::assert_central_differences("cls", &params, &grad, 1e-5, 1e-5, |p| {
        analysis.loss("cls", p, &batch, &[]).unwrap()
    });
    let text = analysis.workspace(&params, &batch, &[]).unwrap();
    let metrics = analysis.metrics(&params, &batch, &[]).unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("neos-export");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("widthless.json");
    std::fs::write(&path, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neos")).arg("cls").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let observed = result["CLs_obs"].as_f64().unwrap();
    assert!((observed - metrics[0].1).abs() <= 1e-6 * observed, "neos cls {observed}, the analysis {}", metrics[0].1);
}

/// Parameters saved with their names and shapes load back bit for bit, and a file of another
/// analysis or layout is refused with the difference named.
#[test]
fn parameters_round_trip_with_names_and_shapes() {
    let mut analysis = Weighted::new();
    let params = analysis.init(17);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("neos-params");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("weighted.json");
    analysis.save_params(&params, &path).unwrap();
    let back = analysis.load_params(&path).unwrap();
    assert_eq!(
        back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        params.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // The loaded network gives the saved one's outputs, bit for bit.
    let events = data();
    let outputs = |analysis: &mut Weighted, p: &[f64]| {
        let out = analysis.network("nn", p, events[0].slice(ndarray::s![.., ..2])).unwrap();
        out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(outputs(&mut analysis, &back), outputs(&mut analysis, &params));
    let text: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(text["parameters"][0]["name"], "nn_w0");
    assert_eq!(text["parameters"][0]["shape"], serde_json::json!([2, 4]));
    let e = Widthless::new().load_params(&path).unwrap_err();
    assert!(e.to_string().contains("expected parameters of analysis Widthless, found Weighted"), "{e}");
    let edited = std::fs::read_to_string(&path).unwrap().replacen("\"nn_b0\"", "\"nn_bias\"", 1);
    std::fs::write(&path, edited).unwrap();
    let e = analysis.load_params(&path).unwrap_err();
    assert!(e.to_string().contains("expected parameter nn_b0 of shape [4], found nn_bias of shape [4]"), "{e}");
}
