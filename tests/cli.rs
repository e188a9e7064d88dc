//! The `neos` command-line tool on the reference workspaces (tests/data/reference/
//! pyhf_workspaces.json): JSON on stdout that agrees with pyhf, and one clear line on stderr
//! with a non-zero exit on bad input.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reference/pyhf_workspaces.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let all: Value = serde_json::from_str(&text).unwrap();
    all["cases"].as_array().unwrap().clone()
}

/// Writes a case's workspace to a file of its own and returns the path.
fn workspace_file(case: &Value, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("neos-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{tag}.json", case["name"].as_str().unwrap()));
    std::fs::write(&path, case["workspace"].to_string()).unwrap();
    path
}

/// Runs `neos` and returns (exit success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_neos")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn json(args: &[&str]) -> Value {
    let (ok, stdout, stderr) = run(args);
    assert!(ok, "neos {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("neos {args:?} printed no JSON ({e}): {stdout}"))
}

fn close(label: &str, found: &Value, expected: &Value, rtol: f64) {
    let (f, e) = (found.as_f64().unwrap(), expected.as_f64().unwrap());
    assert!((f - e).abs() <= rtol * e.abs(), "{label}: found {f}, expected {e}");
}

#[test]
fn cls_and_significance_agree_with_pyhf() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let ws = workspace_file(&case, "cls");
        let ws = ws.to_str().unwrap();
        for (stat, key) in [("qtilde", "hypotest_mu1_qtilde"), ("q", "hypotest_mu1_q")] {
            let v = json(&["cls", ws, "--test-stat", stat]);
            close(&format!("{name} {stat} CLs_obs"), &v["CLs_obs"], &case[key]["CLs_obs"], 1e-6);
            for i in 0..5 {
                close(&format!("{name} {stat} CLs_exp[{i}]"), &v["CLs_exp"][i], &case[key]["CLs_exp"][i], 1e-6);
            }
        }
        let v = json(&["significance", ws]);
        close(&format!("{name} p0_obs"), &v["p0_obs"], &case["hypotest_mu0_q0"]["p0_obs"], 1e-6);
        for i in 0..5 {
            close(&format!("{name} p0_exp[{i}]"), &v["p0_exp"][i], &case["hypotest_mu0_q0"]["p0_exp"][i], 1e-6);
        }
    }
}

#[test]
fn fits_report_pyhf_names_values_and_convergence() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let ws = workspace_file(&case, "fit");
        let ws = ws.to_str().unwrap();
        let names: Vec<&str> = case["par_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        for (args, key) in [(vec!["fit", ws], "free_fit"), (vec!["fit", ws, "--fix", "mu=1"], "fixed_poi_fit_mu1")] {
            let v = json(&args);
            assert_eq!(v["converged"], Value::Bool(true), "{name} {key}");
            for (i, n) in names.iter().enumerate() {
                let (f, e) = (v["bestfit"][n].as_f64().unwrap(), case[key]["bestfit"][i].as_f64().unwrap());
                assert!((f - e).abs() <= 1e-5, "{name} {key} {n}: found {f}, expected {e}");
                assert!(v["uncertainties"][n].as_f64().unwrap() >= 0.0, "{name} {key} {n}");
            }
            let twice_nll = v["twice_nll"].as_f64().unwrap();
            let expected = case[key]["twice_nll"].as_f64().unwrap();
            assert!(
                twice_nll <= expected + 1e-9 && expected - twice_nll < 1e-6,
                "{name} {key}: {twice_nll} vs {expected}"
            );
        }
        let v = json(&["fit", ws, "--fix", "mu=1"]);
        assert_eq!(v["uncertainties"]["mu"].as_f64(), Some(0.0), "a fixed parameter has no uncertainty");
    }
}

#[test]
fn bad_input_gives_one_line_and_a_failing_exit() {
    let case = &cases()[0];
    let mut broken = case.clone();
    broken["workspace"]["channels"][0]["samples"][1]["modifiers"][1]["type"] = "gaussian".into();
    let bad_type = workspace_file(&broken, "bad-type");
    let good = workspace_file(case, "good");
    let checks: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["cls", bad_type.to_str().unwrap()],
            "channels[0].samples[1].modifiers[1].type: expected one of histosys, lumi, normfactor",
        ),
        (vec!["cls", "/nonexistent/ws.json"], "reading /nonexistent/ws.json"),
        (vec!["fit", good.to_str().unwrap(), "--fix", "nope=1"], "--fix: expected one of the model's parameters"),
        (vec!["fit", good.to_str().unwrap(), "--fix", "mu=20"], "--fix mu: expected a value within [0, 10], found 20"),
        (
            vec!["upper-limit", good.to_str().unwrap(), "--cl", "1.5"],
            "--cl: expected a confidence level between 0 and 1, found 1.5",
        ),
        (
            vec!["cls", good.to_str().unwrap(), "--measurement", "other"],
            "expected a measurement named `other`, found only `meas`",
        ),
    ];
    for (args, message) in checks {
        let (ok, stdout, stderr) = run(&args);
        assert!(!ok, "neos {args:?} should fail");
        assert!(stdout.is_empty(), "neos {args:?} printed {stdout}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "neos {args:?}: {stderr}");
        assert!(stderr.contains(message), "neos {args:?}: expected `{message}`, found `{stderr}`");
    }
}

/// A measurement config for a parameter the model lacks (ROOT exports always configure `lumi`)
/// is ignored, as pyhf ignores it, with one warning line; the results are those without it.
#[test]
fn configs_of_parameters_the_model_lacks_are_ignored_with_a_warning() {
    let case = &cases()[0];
    let mut extra = case.clone();
    let parameters = extra["workspace"]["measurements"][0]["config"]["parameters"].as_array_mut().unwrap();
    parameters.push(serde_json::json!({"name": "alpha_missing", "bounds": [[-3.0, 3.0]]}));
    let file = workspace_file(&extra, "extra-config");
    let (ok, stdout, stderr) = run(&["cls", file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: {}: measurements[0].config.parameters[2]: measurement parameter `alpha_missing`: the model has no parameter of that name, so its settings are ignored",
            file.display()
        )
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    close("CLs_obs", &v["CLs_obs"], &case["hypotest_mu1_qtilde"]["CLs_obs"], 1e-6);
}
