//! The `neos` command on the edge cases of the workspace format, against pyhf 0.7.6
//! (tests/data/pyhf/edge_workspaces.json, made by make_edge_reference.py beside it): names
//! shared between modifier types and channels, zero and negative uncertainties, settings
//! from the measurement, degenerate models, and the workspaces pyhf's schema and model
//! building refuse.
//!
//! Where pyhf reads a workspace, every subcommand must give its numbers; where pyhf refuses
//! one, or where neos refuses one on purpose (the case says why), every subcommand must fail
//! with one line on stderr and nothing on stdout.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pyhf/edge_workspaces.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let all: Value = serde_json::from_str(&text).unwrap();
    all["cases"].as_array().unwrap().clone()
}

fn workspace_file(case: &Value) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("neos-edge-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.json", case["name"].as_str().unwrap()));
    std::fs::write(&path, case["workspace"].to_string()).unwrap();
    path
}

/// Runs `neos`: its JSON output, or its one-line error.
fn run(args: &[&str]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_neos")).args(args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    if out.status.success() {
        return Ok(
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("neos {args:?} printed no JSON ({e}): {stdout}"))
        );
    }
    assert_eq!(out.status.code(), Some(1), "neos {args:?} ended by a signal or a usage error: {stderr}");
    assert!(stdout.is_empty(), "neos {args:?} failed but printed {stdout}");
    let errors: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("warning: ")).collect();
    assert_eq!(errors.len(), 1, "neos {args:?}: expected one error line, found {stderr}");
    assert!(errors[0].starts_with("error: "), "neos {args:?}: {stderr}");
    Err(errors[0].to_string())
}

fn close(label: &str, found: &Value, expected: &Value, atol: f64, rtol: f64) {
    let f = found.as_f64().unwrap_or_else(|| panic!("{label}: expected a number, found {found}"));
    let e = expected.as_f64().unwrap();
    assert!((f - e).abs() <= atol + rtol * e.abs(), "{label}: found {f}, expected {e} (pyhf)");
}

fn check(case: &Value) {
    let name = case["name"].as_str().unwrap();
    let file = workspace_file(case);
    let ws = file.to_str().unwrap();
    let extra: Vec<&str> =
        case.get("args").map_or(Vec::new(), |a| a.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect());
    let subcommands = ["fit", "cls", "significance", "upper-limit"].map(|c| {
        let mut args = vec![c, ws];
        args.extend(&extra);
        args
    });
    if case.get("pyhf_error").is_some() || case.get("neos_refuses").is_some() {
        // pyhf refuses it, or reads it with a meaning it picks silently: a clear refusal.
        let why = case.get("pyhf_error").or(case.get("neos_refuses")).unwrap();
        let cls = run(&subcommands[1]);
        assert!(cls.is_err(), "{name}: expected a refusal like pyhf's ({why}), found {cls:?}");
        return;
    }
    let pyhf = &case["pyhf"];
    let fit = run(&subcommands[0]).unwrap_or_else(|e| panic!("{name} fit: {e}"));
    let names: Vec<&str> = pyhf["par_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    let ours: Vec<&String> = fit["bestfit"].as_object().unwrap().keys().collect();
    assert_eq!(ours.len(), names.len(), "{name}: parameters {ours:?}, pyhf's {names:?}");
    // Where the likelihood is flat along a direction, any point of the valley is a best fit.
    if case.get("flat").is_none() {
        for (i, n) in names.iter().enumerate() {
            close(&format!("{name} fit {n}"), &fit["bestfit"][n], &pyhf["free_fit"]["bestfit"][i], 2e-5, 0.0);
        }
    }
    close(&format!("{name} 2·NLL"), &fit["twice_nll"], &pyhf["free_fit"]["twice_nll"], 1e-7, 1e-9);
    let cls = run(&subcommands[1]).unwrap_or_else(|e| panic!("{name} cls: {e}"));
    close(&format!("{name} CLs_obs"), &cls["CLs_obs"], &pyhf["hypotest_mu1_qtilde"]["CLs_obs"], 1e-7, 1e-6);
    for i in 0..5 {
        let expected = &pyhf["hypotest_mu1_qtilde"]["CLs_exp"][i];
        close(&format!("{name} CLs_exp[{i}]"), &cls["CLs_exp"][i], expected, 1e-7, 1e-6);
    }
    let sig = run(&subcommands[2]).unwrap_or_else(|e| panic!("{name} significance: {e}"));
    close(&format!("{name} p0_obs"), &sig["p0_obs"], &pyhf["hypotest_mu0_q0"]["p0_obs"], 1e-7, 1e-6);
    for i in 0..5 {
        let expected = &pyhf["hypotest_mu0_q0"]["p0_exp"][i];
        close(&format!("{name} p0_exp[{i}]"), &sig["p0_exp"][i], expected, 1e-7, 1e-6);
    }
    let limit = run(&subcommands[3]);
    match (&pyhf["upper_limit"].get("error"), limit) {
        (Some(why), limit) => assert!(limit.is_err(), "{name}: pyhf finds no limit ({why}), neos found {limit:?}"),
        (None, Err(e)) => panic!("{name} upper-limit: {e}"),
        (None, Ok(v)) => {
            // pyhf's limits come from its numpy backend (finite-difference gradients).
            close(&format!("{name} limit obs"), &v["obs"], &pyhf["upper_limit"]["obs"], 0.0, 1e-4);
            for i in 0..5 {
                let expected = &pyhf["upper_limit"]["exp"][i];
                close(&format!("{name} limit exp[{i}]"), &v["exp"][i], expected, 0.0, 1e-4);
            }
        }
    }
}

#[test]
fn edge_cases_agree_with_pyhf_or_are_refused_like_it() {
    let cases = cases();
    assert!(cases.len() >= 40, "expected the whole edge-case table, found {} cases", cases.len());
    for case in &cases {
        check(case);
    }
}
