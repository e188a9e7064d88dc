//! Differential tests against pyhf 0.7.6 on 40 seeded random workspaces (1–3 channels of 1–10
//! bins, every modifier type; tests/support/workspaces.rs) and one with two minima, with
//! pyhf's numbers from tight SciPy fits kept in tests/data/pyhf/random_workspaces.json (made
//! by make_reference.py beside it).
//!
//! Our best fits must be at least as good as pyhf's (2·NLL no higher), and where both reach the
//! same minimum (2·NLL within 1e-6 for the free and the μ = 1 fit), CLs, its expected band and
//! p₀ with its band must agree to 1e-6, and the 95% CL upper limits of `neos upper-limit` to
//! 1e-4 (pyhf's come from its numpy backend). Where our minimum is lower, pyhf stopped in a
//! local minimum (a bimodal histosys or normsys); the test says so.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

#[path = "support/workspaces.rs"]
mod workspaces;

use neos::ir::histfactory::{HistoSysCode, NormSysCode, Workspace};
use neos::ir::inference::{Inference, TestStat};
use neos::ir::{eval, Bindings, Builder, DType};
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pyhf/random_workspaces.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Our numbers for one workspace: 2·NLL of the free and μ = 1 fits, of the free and fixed-μ
/// fits to the two Asimov datasets (background-only for CLs, with μ = 1 for p₀), CLs (q̃,
/// μ = 1) observed and expected, p₀ observed and expected.
struct Ours {
    par_names: Vec<String>,
    twice_nll_free: f64,
    twice_nll_mu1: f64,
    /// [free, μ = 1] on the background-only Asimov data, [free, μ = 0] on the μ = 1 ones.
    asimov: [f64; 4],
    cls: Vec<f64>,
    p0: Vec<f64>,
}

fn ours(spec: &Value, normsys: NormSysCode, histosys: HistoSysCode) -> Ours {
    let ws = Workspace::from_json(&spec.to_string()).unwrap();
    let b = Builder::new();
    let model = ws.model(&b, ws.measurement(None).unwrap(), normsys, histosys).unwrap();
    let par_names = model.par_names();
    let mut data = ws.observed_main(&model.channels()).unwrap();
    let aux = model.auxdata().unwrap().id();
    let n = model.n_main() + model.n_aux();
    let inference = Inference::new(model).unwrap();
    let d = b.input("data", DType::F64, [n]);
    let free = inference.fit(d, None).unwrap();
    let mu1 = inference.fit(d, Some(b.scalar(1.0, DType::F64))).unwrap();
    let twice = |theta, data| inference.nll(theta, data).unwrap() * 2.0;
    let (twice_free, twice_mu1) = (twice(free, d), twice(mu1, d));
    let mut asimov = Vec::new();
    for (mu, other) in [(0.0, 1.0), (1.0, 0.0)] {
        let a = inference.asimov(d, mu).unwrap();
        asimov.push(twice(inference.fit(a, None).unwrap(), a));
        asimov.push(twice(inference.fit(a, Some(b.scalar(other, DType::F64))).unwrap(), a));
    }
    let h = inference.hypotest(b.scalar(1.0, DType::F64), d, TestStat::QTilde).unwrap();
    let s = inference.significance(d).unwrap();
    let mut ids = vec![twice_free.id(), twice_mu1.id()];
    ids.extend(asimov.iter().map(|t| t.id()));
    ids.push(h.cls_obs.id());
    ids.extend(h.cls_exp.iter().map(|t| t.id()));
    ids.push(s.p0_obs.id());
    ids.extend(s.p0_exp.iter().map(|t| t.id()));
    drop(inference);
    let g = b.finish().unwrap();
    data.extend(eval(&g, &Bindings::new(), &[aux]).unwrap()[0].iter());
    let v: Vec<f64> = eval(&g, &Bindings::new().with("data", ndarray::Array1::from(data).into_dyn()), &ids)
        .unwrap_or_else(|e| panic!("evaluating the inference: {e}"))
        .iter()
        .map(|a| a.iter().next().copied().unwrap())
        .collect();
    Ours {
        par_names,
        twice_nll_free: v[0],
        twice_nll_mu1: v[1],
        asimov: [v[2], v[3], v[4], v[5]],
        cls: v[6..12].to_vec(),
        p0: v[12..18].to_vec(),
    }
}

/// `neos upper-limit` on a workspace: the observed limit, then the expected ones.
fn upper_limit(spec: &Value, seed: &str) -> Result<Vec<f64>, String> {
    let dir = std::env::temp_dir().join(format!("neos-differential-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{seed}.json"));
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neos")).arg("upper-limit").arg(&path).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(std::iter::once(v["obs"].as_f64().unwrap()).chain(floats(&v["exp"])).collect())
}

/// Compares our results with pyhf's under one choice of interpolation codes; returns how many
/// workspaces reached pyhf's minima and a line for each where ours is lower.
fn compare(key: &str, normsys: NormSysCode, histosys: HistoSysCode) -> (usize, Vec<String>) {
    let r = reference();
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 41);
    let mut same = 0;
    let mut limits = 0;
    let mut limits_apart = Vec::new();
    let mut lower = Vec::new();
    for case in cases {
        let seed = case["name"].as_str().unwrap();
        // The generator still makes the workspaces pyhf was run on.
        let generated = match seed.strip_prefix("random_") {
            Some(n) => workspaces::random_workspace(n.parse().unwrap()),
            None => workspaces::bimodal_workspace(),
        };
        assert_eq!(generated, case["workspace"], "{seed}: the generator changed");
        let p = &case[key];
        // The limits were computed with pyhf's default codes.
        let p_limit = if key == "pyhf" { case["pyhf"].get("upper_limit") } else { None };
        let o = ours(&case["workspace"], normsys, histosys);
        let names: Vec<&str> = p["par_names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(o.par_names, names, "{seed}: parameter names");
        let (pyhf_free, pyhf_mu1) =
            (p["free_fit"]["twice_nll"].as_f64().unwrap(), p["fixed_fit_mu1"]["twice_nll"].as_f64().unwrap());
        // pyhf's SLSQP stops within ~1e-9 of its minimum; ours may not be higher than that.
        for (what, found, theirs) in [("free", o.twice_nll_free, pyhf_free), ("μ = 1", o.twice_nll_mu1, pyhf_mu1)] {
            assert!(found <= theirs + 1e-6, "{key}, {seed}, {what} fit: 2·NLL {found} above pyhf's {theirs}");
        }
        let pyhf_asimov = [
            p["asimov_mu0"]["free_twice_nll"].as_f64().unwrap(),
            p["asimov_mu0"]["mu1_twice_nll"].as_f64().unwrap(),
            p["asimov_mu1"]["free_twice_nll"].as_f64().unwrap(),
            p["asimov_mu1"]["mu0_twice_nll"].as_f64().unwrap(),
        ];
        let agree = |a: f64, b: f64| (a - b).abs() <= 1e-6;
        if !(agree(o.twice_nll_free, pyhf_free) && agree(o.twice_nll_mu1, pyhf_mu1)) {
            lower.push(format!(
                "{seed}: 2·NLL free {:.6} (pyhf {pyhf_free:.6}), μ = 1 {:.6} (pyhf {pyhf_mu1:.6})",
                o.twice_nll_free, o.twice_nll_mu1
            ));
            continue;
        }
        // The Asimov datasets come from fits to the data that agree, so they agree too; on them
        // our fits must again be at least as good, and a different minimum there changes CLs.
        for (k, (found, theirs)) in o.asimov.iter().zip(pyhf_asimov).enumerate() {
            assert!(*found <= theirs + 1e-6, "{key}, {seed}, Asimov fit {k}: 2·NLL {found} above pyhf's {theirs}");
        }
        if let Some(k) = (0..4).find(|&k| !agree(o.asimov[k], pyhf_asimov[k])) {
            lower.push(format!("{seed}: Asimov fit {k}: 2·NLL {:.6} (pyhf {:.6})", o.asimov[k], pyhf_asimov[k]));
            continue;
        }
        same += 1;
        let h = &p["hypotest_mu1_qtilde"];
        let theirs: Vec<f64> = std::iter::once(h["CLs_obs"].as_f64().unwrap()).chain(floats(&h["CLs_exp"])).collect();
        let q0 = &p["hypotest_mu0_q0"];
        let theirs_p0: Vec<f64> =
            std::iter::once(q0["p0_obs"].as_f64().unwrap()).chain(floats(&q0["p0_exp"])).collect();
        for (what, found, expected) in [("CLs", &o.cls, &theirs), ("p0", &o.p0, &theirs_p0)] {
            for (i, (f, e)) in found.iter().zip(expected).enumerate() {
                assert!(
                    (f - e).abs() <= 1e-6 * e.abs().max(1e-12),
                    "{key}, {seed}: {what}[{i}] {f:e}, pyhf {e:e} ({what} = observed, then −2σ … +2σ)"
                );
            }
        }
        // Upper limits (pyhf's default codes only): `neos upper-limit` against pyhf's root
        // finding on its numpy backend, whose finite-difference gradients allow ~1e-4.
        if let Some(theirs) = p_limit {
            let ours = upper_limit(&case["workspace"], seed);
            match (theirs.get("error"), ours) {
                (Some(why), Ok(ours)) => panic!("{seed}: pyhf finds no limit ({why}), neos {ours:?}"),
                (None, Err(e)) => panic!("{seed}: pyhf finds limits, neos: {e}"),
                (None, Ok(ours)) => {
                    let theirs: Vec<f64> =
                        std::iter::once(theirs["obs"].as_f64().unwrap()).chain(floats(&theirs["exp"])).collect();
                    match ours.iter().zip(&theirs).position(|(f, e)| (f - e).abs() > 1e-4 * e.abs()) {
                        None => limits += 1,
                        Some(i) => limits_apart.push(format!(
                            "{seed}: limit[{i}] {}, pyhf {} (observed, then −2σ … +2σ)",
                            ours[i], theirs[i]
                        )),
                    }
                }
                (Some(_), Err(_)) => limits += 1,
            }
        }
    }
    if key == "pyhf" {
        // The limits' fits at other μ can have minima on both sides of a nuisance parameter
        // that no start of ours reaches (random_35: at μ = 3.04 the fixed-μ fit stops at
        // jes = +0.29, 2·NLL 113.368, where pyhf reaches jes = −0.38, 113.328). Those are
        // listed; the rest must agree.
        println!("upper limits: {limits} agree with pyhf's (or both find none), {} apart", limits_apart.len());
        for line in &limits_apart {
            println!("upper limit apart from pyhf's: {line}");
        }
        assert!(
            limits >= 38 && limits_apart.len() <= 1,
            "expected upper limits to agree on at least 38 workspaces, found {limits}: {limits_apart:#?}"
        );
    }
    // Where we differ, it is because pyhf stopped above our minimum; list those cases.
    for line in &lower {
        println!("{key}: lower minimum than pyhf's: {line}");
    }
    (same, lower)
}

#[test]
fn random_workspaces_agree_with_pyhf() {
    let (same, lower) = compare("pyhf", NormSysCode::Code4, HistoSysCode::Code4p);
    assert!(same >= 35, "only {same} of 41 workspaces reach pyhf's minima: {lower:#?}");
    // The bimodal workspace is one of them: pyhf's μ = 1 fit stays on the side of α it starts
    // on, while the restarts find the lower minimum on the other.
    assert!(lower.iter().any(|l| l.starts_with("bimodal:")), "{lower:#?}");
}

/// With pyhf's piecewise codes (normsys code 1, histosys code 0) the likelihood has kinks at
/// α = 0, on which minima often sit: the fits must find them from either side. SLSQP, which
/// assumes a smooth objective, stops above the minimum in about a third of these workspaces
/// (by up to 0.3 in 2·NLL, in the free, μ = 1 or Asimov fits); ours are never higher.
#[test]
fn random_workspaces_with_kinked_interpolations_agree_with_pyhf() {
    let (same, lower) = compare("pyhf_code1_code0", NormSysCode::Code1, HistoSysCode::Code0);
    assert!(same >= 25, "only {same} of 41 workspaces reach pyhf's minima: {lower:#?}");
}
