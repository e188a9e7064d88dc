//! Inference against the reference numbers: the neos metrics and their gradients with respect
//! to every yield array (neos_metrics.json: `exact` to 1e-8, neos's own to 2e-6), pyhf's
//! asymptotic hypothesis tests on the neos model's Asimov data, and on the workspaces of
//! pyhf_workspaces.json (CLs and p-values to 1e-6).

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{arr, floats, reference};
use neos_ir::histfactory::{neos_model, HistoSysCode, NormSysCode, Workspace};
use neos_ir::inference::{Inference, TestStat};
use neos_ir::{eval, grad_in, Bindings, Builder, DType, Tensor};

fn close(label: &str, found: f64, expected: f64, rtol: f64) {
    assert!(
        (found - expected).abs() <= rtol * expected.abs().max(1e-300),
        "{label}: found {found:e}, expected {expected:e}"
    );
}

const YIELDS: [&str; 4] = ["sig", "bkg_nominal", "bkg_up", "bkg_down"];

#[test]
fn neos_metrics_and_their_gradients() {
    let r = reference("neos_metrics.json");
    for (case_name, case) in r["cases"].as_object().unwrap() {
        let bins = floats(&case["inputs"]["sig"]).len();
        let b = Builder::new();
        let templates: Vec<Tensor<'_>> = YIELDS.iter().map(|n| b.param(n, DType::F64, [bins])).collect();
        let inference = Inference::new(neos_model(&templates).unwrap()).unwrap();
        let metrics = [
            ("cls", inference.neos_cls(1.0).unwrap()),
            ("discovery", inference.neos_discovery().unwrap()),
            ("poi_uncert", inference.poi_uncert().unwrap()),
        ];
        let mut ids = Vec::new();
        for (_, m) in &metrics {
            ids.push(m.id());
            ids.extend(grad_in(&b, *m, &templates).unwrap().iter().map(|g| g.id()));
        }
        drop(inference);
        let g = b.finish().unwrap();
        let mut bindings = Bindings::new();
        for n in YIELDS {
            bindings.set(n, arr(&floats(&case["inputs"][n])));
        }
        let values = eval(&g, &bindings, &ids).unwrap();
        for (k, name) in ["cls", "discovery", "poi_uncert"].iter().enumerate() {
            let value = values[k * 5][[]];
            close(
                &format!("{case_name} {name} vs exact"),
                value,
                case["exact"]["values"][name].as_f64().unwrap(),
                1e-8,
            );
            close(
                &format!("{case_name} {name} vs neos"),
                value,
                case["neos_relaxed"]["values"][name].as_f64().unwrap(),
                2e-6,
            );
            // Gradient entries are compared on the scale of the metric's whole gradient (all
            // four yield arrays): neos's own early-stopped fits move small entries by more than
            // 2e-6 of themselves, but not of that scale.
            let scale = YIELDS
                .iter()
                .flat_map(|n| floats(&case["exact"]["grads"][name][n]))
                .fold(0.0_f64, |m, v| m.max(v.abs()));
            for (t, n) in YIELDS.iter().enumerate() {
                let found = &values[k * 5 + 1 + t];
                let exact = floats(&case["exact"]["grads"][name][n]);
                let neos = floats(&case["neos_relaxed"]["grads_wrt_yields"][name][n]);
                for (i, f) in found.iter().enumerate() {
                    let label = format!("{case_name} d{name}/d{n}[{i}]");
                    assert!((f - exact[i]).abs() <= 1e-8 * scale, "{label}: found {f:e}, exact {:e}", exact[i]);
                    assert!((f - neos[i]).abs() <= 2e-6 * scale, "{label}: found {f:e}, neos {:e}", neos[i]);
                }
            }
        }
    }
}

#[test]
fn pyhf_hypotests_on_the_neos_asimov_data() {
    let r = reference("neos_metrics.json");
    for (case_name, case) in r["cases"].as_object().unwrap() {
        let bins = floats(&case["inputs"]["sig"]).len();
        let b = Builder::new();
        let templates: Vec<Tensor<'_>> = YIELDS.iter().map(|n| b.input(n, DType::F64, [bins])).collect();
        let inference = Inference::new(neos_model(&templates).unwrap()).unwrap();
        let a0 = inference.asimov_nominal(0.0).unwrap();
        let a1 = inference.asimov_nominal(1.0).unwrap();
        let mu = b.scalar(1.0, DType::F64);
        let qtilde = inference.hypotest(mu, a0, TestStat::QTilde).unwrap();
        let q = inference.hypotest(mu, a0, TestStat::Q).unwrap();
        let disc = inference.significance(a1).unwrap();
        let mut ids = Vec::new();
        for h in [&qtilde, &q] {
            ids.extend([h.cls_obs.id(), h.clsb_obs.id(), h.clb_obs.id()]);
            ids.extend(h.cls_exp.iter().map(|t| t.id()));
        }
        ids.push(disc.p0_obs.id());
        ids.extend(disc.p0_exp.iter().map(|t| t.id()));
        drop(inference);
        let g = b.finish().unwrap();
        let mut bindings = Bindings::new();
        for n in YIELDS {
            bindings.set(n, arr(&floats(&case["inputs"][n])));
        }
        let v: Vec<f64> = eval(&g, &bindings, &ids).unwrap().iter().map(|a| a[[]]).collect();
        for (backend, tol) in [("pyhf_numpy", 1e-6), ("pyhf_jax", 1e-6)] {
            let p = &case[backend];
            for (k, key) in ["hypotest_mu1_on_A0_qtilde", "hypotest_mu1_on_A0_q"].iter().enumerate() {
                let h = &p[*key];
                let o = k * 8;
                close(&format!("{case_name} {backend} {key} CLs"), v[o], h["CLs_obs"].as_f64().unwrap(), tol);
                close(&format!("{case_name} {backend} {key} CLsb"), v[o + 1], h["CLsb_obs"].as_f64().unwrap(), tol);
                close(&format!("{case_name} {backend} {key} CLb"), v[o + 2], h["CLb_obs"].as_f64().unwrap(), tol);
                for (i, e) in floats(&h["CLs_exp_set_-2..+2sigma"]).iter().enumerate() {
                    close(&format!("{case_name} {backend} {key} CLs_exp[{i}]"), v[o + 3 + i], *e, tol);
                }
            }
            let h = &p["hypotest_mu0_on_A1_q0"];
            close(&format!("{case_name} {backend} p0"), v[16], h["p0_obs"].as_f64().unwrap(), tol);
            for (i, e) in floats(&h["p0_exp_set_-2..+2sigma"]).iter().enumerate() {
                close(&format!("{case_name} {backend} p0_exp[{i}]"), v[17 + i], *e, tol);
            }
        }
    }
}

/// The inference on the workspace's model, on `b`.
fn workspace_inference<'b>(ws: &Workspace, b: &'b Builder) -> Inference<'b> {
    let model = ws.model(b, ws.measurement(None).unwrap(), NormSysCode::Code4, HistoSysCode::Code4p).unwrap();
    Inference::new(model).unwrap()
}

#[test]
fn pyhf_hypotests_on_workspaces() {
    let r = reference("pyhf_workspaces.json");
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let ws = Workspace::from_json(&case["workspace"].to_string()).unwrap();
        let b = Builder::new();
        let inference = workspace_inference(&ws, &b);
        let data = b.input("data", DType::F64, [inference.model().n_main() + inference.model().n_aux()]);
        let mu = b.scalar(1.0, DType::F64);
        let qtilde = inference.hypotest(mu, data, TestStat::QTilde).unwrap();
        let q = inference.hypotest(mu, data, TestStat::Q).unwrap();
        let disc = inference.significance(data).unwrap();
        let mut ids = Vec::new();
        for h in [&qtilde, &q] {
            ids.push(h.cls_obs.id());
            ids.extend(h.cls_exp.iter().map(|t| t.id()));
        }
        ids.push(disc.p0_obs.id());
        ids.extend(disc.p0_exp.iter().map(|t| t.id()));
        drop(inference);
        let g = b.finish().unwrap();
        let bindings = Bindings::new().with("data", arr(&floats(&case["data_vector"])));
        let v: Vec<f64> = eval(&g, &bindings, &ids).unwrap().iter().map(|a| a[[]]).collect();
        for (k, key) in ["hypotest_mu1_qtilde", "hypotest_mu1_q"].iter().enumerate() {
            let h = &case[*key];
            close(&format!("{name} {key} CLs_obs"), v[k * 6], h["CLs_obs"].as_f64().unwrap(), 1e-6);
            for (i, e) in floats(&h["CLs_exp"]).iter().enumerate() {
                close(&format!("{name} {key} CLs_exp[{i}]"), v[k * 6 + 1 + i], *e, 1e-6);
            }
        }
        let h = &case["hypotest_mu0_q0"];
        close(&format!("{name} p0_obs"), v[12], h["p0_obs"].as_f64().unwrap(), 1e-6);
        for (i, e) in floats(&h["p0_exp"]).iter().enumerate() {
            close(&format!("{name} p0_exp[{i}]"), v[13 + i], *e, 1e-6);
        }
    }
}

#[test]
fn upper_limits_match_pyhf() {
    let r = reference("pyhf_workspaces.json");
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let ws = Workspace::from_json(&case["workspace"].to_string()).unwrap();
        let b = Builder::new();
        let inference = workspace_inference(&ws, &b);
        let data = b.input("data", DType::F64, [inference.model().n_main() + inference.model().n_aux()]);
        let mu = b.knob("mu", DType::F64, 1.0);
        let h = inference.hypotest(mu, data, TestStat::QTilde).unwrap();
        let ids: Vec<_> = std::iter::once(h.cls_obs.id()).chain(h.cls_exp.iter().map(|t| t.id())).collect();
        drop(inference);
        let g = b.finish().unwrap();
        let data_values = arr(&floats(&case["data_vector"]));
        let cls_at = |m: f64| {
            let bindings = Bindings::new().with("data", data_values.clone()).with("mu", ndarray::arr0(m).into_dyn());
            let v = eval(&g, &bindings, &ids)?;
            Ok([v[0][[]], v[1][[]], v[2][[]], v[3][[]], v[4][[]], v[5][[]]])
        };
        let limit = neos_ir::inference::upper_limit(cls_at, 0.95, 10.0, None).unwrap();
        let expected = &case["upper_limit_scan_0.1_5_50pts"];
        let pyhf: Vec<f64> =
            std::iter::once(expected["obs"].as_f64().unwrap()).chain(floats(&expected["exp"])).collect();
        let ours: Vec<f64> = std::iter::once(limit.obs).chain(limit.exp).collect();
        // pyhf interpolates CLs linearly between the points of its scan (0.1 to 5, 50 points),
        // which biases limits on a convex CLs curve. Interpolating our CLs between the same
        // two scan points around each of our roots must give pyhf's numbers; the roots
        // themselves agree to 1e-2.
        let grid = |i: usize| 0.1 + 0.1 * i as f64;
        for (k, (&root, &theirs)) in ours.iter().zip(&pyhf).enumerate() {
            close(&format!("{name} limit {k} (root vs scan)"), root, theirs, 1e-2);
            let i = ((root - 0.1) / 0.1).floor() as usize;
            let (lo, hi) = (cls_at(grid(i)).unwrap()[k], cls_at(grid(i + 1)).unwrap()[k]);
            let interpolated = grid(i) + 0.1 * (lo - 0.05) / (lo - hi);
            close(&format!("{name} limit {k} interpolated like pyhf"), interpolated, theirs, 1e-5);
        }
        // At the limit, the observed CLs is 0.05 to the root finder's precision.
        let at = cls_at(limit.obs).unwrap()[0];
        assert!((at - 0.05).abs() < 1e-6, "{name}: CLs at the observed limit is {at}");
    }
}
