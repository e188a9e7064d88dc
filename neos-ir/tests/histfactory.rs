//! HistFactory models against pyhf: parameter layout, auxiliary data, expected data and
//! log-likelihood on the workspaces of tests/data/reference/pyhf_workspaces.json and the neos
//! model's interpolation points in neos_metrics.json; the interpolation codes; gradients with
//! respect to every template; and workspace errors that name their place in the JSON.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{arr, floats, lumi_config, reference, template_bindings};
use neos_ir::histfactory::{Channel, HistoSysCode, Model, Modifier, NormSysCode, Sample, Spec, Workspace};
use neos_ir::{eval, gradcheck, Bindings, Builder, DType, GradCheck};
use neos_runtime::histfactory::{histosys_coefficients, normsys, Dual};
use serde_json::Value;

fn check(label: &str, found: &[f64], expected: &[f64], rtol: f64) {
    assert_eq!(found.len(), expected.len(), "{label}: lengths differ: {found:?} vs {expected:?}");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!((f - e).abs() <= rtol * e.abs().max(1e-12), "{label}[{i}]: found {f}, expected {e}");
    }
}

#[test]
fn pyhf_workspaces_layout_data_and_likelihood() {
    let r = reference("pyhf_workspaces.json");
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let ws = Workspace::from_json(&case["workspace"].to_string()).unwrap();
        let b = Builder::new();
        let m = ws.measurement(None).unwrap();
        let model = ws.model(&b, m, NormSysCode::Code4, HistoSysCode::Code4p).unwrap();
        let par_order: Vec<&str> = case["par_order"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(model.par_order(), par_order, "{name}");
        let par_names: Vec<&str> = case["par_names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(model.par_names(), par_names, "{name}");
        check(&format!("{name} init"), &model.suggested_init(), &floats(&case["suggested_init"]), 0.0);
        let bounds: Vec<f64> = model.suggested_bounds().iter().flat_map(|(a, b)| [*a, *b]).collect();
        let expected: Vec<f64> = case["suggested_bounds"].as_array().unwrap().iter().flat_map(floats).collect();
        check(&format!("{name} bounds"), &bounds, &expected, 0.0);
        let fixed: Vec<bool> =
            case["suggested_fixed"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
        assert_eq!(model.suggested_fixed(), fixed, "{name}");

        let theta = b.param("theta", DType::F64, [model.len()]);
        let aux = model.auxdata().unwrap();
        let expected_data = model.expected_data(theta).unwrap();
        let mut data = ws.observed_main(&model.channels()).unwrap();
        let data_tensor = b.concat(&[b.constant(arr(&data), DType::F64), aux], 0);
        let logpdf = model.logpdf(theta, data_tensor).unwrap();
        let outputs = [("aux", aux), ("expected", expected_data), ("logpdf", logpdf)];
        let init = model.suggested_init();
        let bestfit = floats(&case["free_fit"]["bestfit"]);
        let fixed_fit = floats(&case["fixed_poi_fit_mu1"]["bestfit"]);
        let ids: Vec<_> = outputs.iter().map(|(_, t)| t.id()).collect();
        let g = b.finish().unwrap();
        let at = |t: &[f64]| -> Vec<Vec<f64>> {
            eval(&g, &Bindings::new().with("theta", arr(t)), &ids)
                .unwrap()
                .iter()
                .map(|v| v.iter().copied().collect())
                .collect()
        };
        let v = at(&init);
        check(&format!("{name} auxdata"), &v[0], &floats(&case["auxdata"]), 1e-14);
        data.extend(&v[0]);
        check(&format!("{name} data vector"), &data, &floats(&case["data_vector"]), 1e-14);
        check(&format!("{name} expected data at init"), &v[1], &floats(&case["expected_data_at_init"]), 1e-12);
        check(&format!("{name} logpdf at init"), &v[2], &[case["logpdf_at_init"].as_f64().unwrap()], 1e-12);
        // The likelihood at pyhf's best fits, where every modifier is away from its nominal.
        let twice_nll = -2.0 * at(&bestfit)[2][0];
        check(
            &format!("{name} twice nll at the free fit"),
            &[twice_nll],
            &[case["free_fit"]["twice_nll"].as_f64().unwrap()],
            1e-12,
        );
        let twice_nll = -2.0 * at(&fixed_fit)[2][0];
        let expected = case["fixed_poi_fit_mu1"]["twice_nll"].as_f64().unwrap();
        check(&format!("{name} twice nll at the μ = 1 fit"), &[twice_nll], &[expected], 1e-12);
    }
}

/// The neos model with its yields as graph params, so that gradients with respect to them can
/// be taken.
fn neos_model<'b>(b: &'b Builder, bins: usize) -> Model<'b> {
    let yields: Vec<_> =
        ["sig", "bkg_nominal", "bkg_up", "bkg_down"].iter().map(|n| b.param(n, DType::F64, [bins])).collect();
    neos_ir::histfactory::neos_model(&yields).unwrap()
}

fn neos_bindings(inputs: &Value) -> Bindings {
    let mut bindings = Bindings::new();
    for key in ["sig", "bkg_nominal", "bkg_up", "bkg_down"] {
        bindings.set(key, arr(&floats(&inputs[key])));
    }
    bindings
}

#[test]
fn neos_model_interpolation_points() {
    let r = reference("neos_metrics.json");
    for (case_name, case) in r["cases"].as_object().unwrap() {
        let inputs = &case["inputs"];
        let bins = floats(&inputs["sig"]).len();
        let b = Builder::new();
        let model = neos_model(&b, bins);
        assert_eq!(model.par_order(), ["correlated_bkg_uncertainty", "mu"]);
        assert_eq!(model.poi_index, Some(1));
        let theta = b.param("theta", DType::F64, [2]);
        // A0: the background-only Asimov data, nominal background and aux 0.
        let a0 = b.concat(&[b.leaf("bkg_nominal").unwrap(), b.scalar(0.0, DType::F64).reshape([1])], 0);
        let main = model.expected_actualdata(theta).unwrap();
        let aux = model.expected_auxdata(theta).unwrap();
        let logpdf = model.logpdf(theta, a0).unwrap();
        let ids = [main.id(), aux.id(), logpdf.id()];
        let g = b.finish().unwrap();
        for point in case["interpolation_points"].as_array().unwrap() {
            let (alpha, mu) = (point["alpha"].as_f64().unwrap(), point["mu"].as_f64().unwrap());
            let label = format!("{case_name} at α = {alpha}, μ = {mu}");
            let v = eval(&g, &neos_bindings(inputs).with("theta", arr(&[alpha, mu])), &ids).unwrap();
            let v: Vec<Vec<f64>> = v.iter().map(|a| a.iter().copied().collect()).collect();
            check(&format!("{label}: main"), &v[0], &floats(&point["expected_main_data"]), 1e-13);
            check(&format!("{label}: aux"), &v[1], &floats(&point["expected_aux_data"]), 1e-13);
            check(&format!("{label}: logpdf"), &v[2], &[point["logpdf_of_A0_data"].as_f64().unwrap()], 1e-12);
        }
    }
}

#[test]
fn likelihood_gradients_with_respect_to_parameters_and_every_template() {
    let r = reference("neos_metrics.json");
    let inputs = &r["cases"]["4bin"]["inputs"];
    for alpha in [-1.7, -0.4, 0.3, 1.2] {
        let b = Builder::new();
        let model = neos_model(&b, 4);
        let theta = b.param("theta", DType::F64, [2]);
        let data = b.param("data", DType::F64, [5]);
        b.output("logpdf", model.logpdf(theta, data).unwrap());
        let g = b.finish().unwrap();
        let bindings =
            neos_bindings(inputs).with("theta", arr(&[alpha, 0.8])).with("data", arr(&[51.0, 29.0, 22.0, 12.0, 0.1]));
        let wrt = ["theta", "sig", "bkg_nominal", "bkg_up", "bkg_down", "data"];
        let report = gradcheck(&g, g.output("logpdf").unwrap(), &wrt, &bindings, GradCheck::default()).unwrap();
        assert!(report.passed(), "α = {alpha}: {report}");
    }
}

/// Builds every modifier type on constants and checks the gradient of ln L with respect to θ
/// and to every template, on the two-channel workspace.
#[test]
fn every_modifier_is_differentiable() {
    let r = reference("pyhf_workspaces.json");
    let case = &r["cases"][0];
    let ws = Workspace::from_json(&case["workspace"].to_string()).unwrap();
    let b = Builder::new();
    let model = ws.model(&b, ws.measurement(None).unwrap(), NormSysCode::Code4, HistoSysCode::Code4p).unwrap();
    let theta = b.param("theta", DType::F64, [model.len()]);
    let n = model.n_main() + model.n_aux();
    let data = b.param("data", DType::F64, [n]);
    b.output("logpdf", model.logpdf(theta, data).unwrap());
    let g = b.finish().unwrap();
    let bestfit = floats(&case["fixed_poi_fit_mu1"]["bestfit"]);
    let moved: Vec<f64> = bestfit.iter().enumerate().map(|(i, v)| v + 0.01 * ((i % 3) as f64 - 1.0)).collect();
    let bindings = Bindings::new().with("theta", arr(&moved)).with("data", arr(&floats(&case["data_vector"])));
    // The terms lnΓ(n + 1) of the data sum to thousands, so the steps are wider than the
    // default to keep rounding (about 1e−13/ε) out of the finite differences; the lumi
    // constraint (σ = 0.017) has large third derivatives, so θ's step stays moderate.
    for (leaf, eps) in [("theta", 1e-5), ("data", 1e-4)] {
        let opts = GradCheck { eps, rtol: 1e-6, atol: 1e-7 };
        let report = gradcheck(&g, g.output("logpdf").unwrap(), &[leaf], &bindings, opts).unwrap();
        assert!(report.passed(), "{leaf}: {report}");
    }
}

const NOM: [f64; 2] = [10.0, 20.0];
const HI: [f64; 2] = [12.0, 21.0];
const LO: [f64; 2] = [9.0, 17.0];
const UP: [f64; 2] = [2.0, 1.0]; // HI − NOM
const DOWN: [f64; 2] = [1.0, 3.0]; // NOM − LO
const KAPPA_HI: f64 = 1.1;
const KAPPA_LO: f64 = 0.8;

#[derive(Clone, Copy, Debug)]
enum Interp {
    Histo(HistoSysCode),
    Norm(NormSysCode),
}

/// The interpolation at α on the templates above, and its derivative in α (dual numbers).
fn interpolate(which: Interp, alpha: f64) -> (Vec<f64>, Vec<f64>) {
    let a = Dual::var(alpha);
    let lift = |v: f64| Dual::lift(v);
    let y: Vec<Dual<f64>> = match which {
        Interp::Histo(code) => {
            let [c_hi, c_lo, c_nom] = histosys_coefficients(code, a);
            (0..2).map(|i| c_hi * lift(HI[i]) + c_lo * lift(LO[i]) + c_nom * lift(NOM[i])).collect()
        }
        Interp::Norm(code) => vec![normsys(code, a, lift(KAPPA_HI), lift(KAPPA_LO))],
    };
    let total: f64 = y.iter().map(|d| d.b).sum();
    (y.iter().map(|d| d.a).collect(), vec![total])
}

#[test]
fn interpolation_codes_at_half_one_and_two_sigma() {
    let value = |which, alpha| interpolate(which, alpha).0;
    let code0 = Interp::Histo(HistoSysCode::Code0);
    for alpha in [-2.0, -1.0, -0.5, 0.5, 1.0, 2.0] {
        let expected: Vec<f64> = (0..2).map(|i| alpha * if alpha > 0.0 { UP[i] } else { DOWN[i] }).collect();
        check(&format!("code0 at {alpha}"), &value(code0, alpha), &expected, 1e-15);
    }
    // code2: a·α² + b·α inside with a = ½(hi + lo) − nom, b = ½(hi − lo); (b ± 2a)(α ∓ 1) outside.
    let a: Vec<f64> = (0..2).map(|i| 0.5 * (HI[i] + LO[i]) - NOM[i]).collect();
    let s: Vec<f64> = (0..2).map(|i| 0.5 * (HI[i] - LO[i])).collect();
    for alpha in [-2.0, -1.0, -0.5, 0.5, 1.0, 2.0] {
        let expected: Vec<f64> = (0..2)
            .map(|i| match alpha {
                x if x > 1.0 => (s[i] + 2.0 * a[i]) * (x - 1.0),
                x if x < -1.0 => (s[i] - 2.0 * a[i]) * (x + 1.0),
                x => a[i] * x * x + s[i] * x,
            })
            .collect();
        check(&format!("code2 at {alpha}"), &value(Interp::Histo(HistoSysCode::Code2), alpha), &expected, 1e-15);
    }
    // code4p: linear outside and at ±1, the polynomial inside.
    let code4p = Interp::Histo(HistoSysCode::Code4p);
    for alpha in [-2.0, -1.0, 1.0, 2.0] {
        let expected: Vec<f64> = (0..2).map(|i| alpha * if alpha > 0.0 { UP[i] } else { DOWN[i] }).collect();
        check(&format!("code4p at {alpha}"), &value(code4p, alpha), &expected, 1e-14);
    }
    let poly = |i: usize, x: f64| {
        let (sum, diff) = (0.5 * (UP[i] + DOWN[i]), 0.0625 * (UP[i] - DOWN[i]));
        x * (sum + x * diff * (15.0 + x * x * (3.0 * x * x - 10.0)))
    };
    for alpha in [-0.5, 0.5] {
        check(&format!("code4p at {alpha}"), &value(code4p, alpha), &[poly(0, alpha), poly(1, alpha)], 1e-14);
    }
    for code in [NormSysCode::Code1, NormSysCode::Code4] {
        for (alpha, expected) in [(-2.0, KAPPA_LO.powi(2)), (-1.0, KAPPA_LO), (1.0, KAPPA_HI), (2.0, KAPPA_HI.powi(2))]
        {
            check(&format!("{code:?} at {alpha}"), &value(Interp::Norm(code), alpha), &[expected], 1e-14);
        }
    }
    let code1 = Interp::Norm(NormSysCode::Code1);
    check("code1 at 0.5", &value(code1, 0.5), &[KAPPA_HI.sqrt()], 1e-14);
    check("code1 at -0.5", &value(code1, -0.5), &[KAPPA_LO.sqrt()], 1e-14);
    // code4 inside: the polynomial through the boundary conditions, exactly 1 at 0. The values
    // at ±0.5 were computed separately in Python from pyhf's `_slow_code4` formula (A⁻¹·b).
    let code4 = Interp::Norm(NormSysCode::Code4);
    check("code4 at 0", &value(code4, 0.0), &[1.0], 1e-15);
    check("code4 at 0.5", &value(code4, 0.5), &[1.0551362585743587], 1e-14);
    check("code4 at -0.5", &value(code4, -0.5), &[0.9013092309663662], 1e-14);
}

#[test]
fn continuity_at_one_sigma_where_it_holds() {
    let eps = 1e-9;
    for edge in [-1.0, 1.0] {
        // Values continuous for all but code2; slopes too for code4p and code4.
        for (which, smooth) in [
            (Interp::Histo(HistoSysCode::Code0), false),
            (Interp::Histo(HistoSysCode::Code4p), true),
            (Interp::Norm(NormSysCode::Code1), false),
            (Interp::Norm(NormSysCode::Code4), true),
        ] {
            let (below, above) = (interpolate(which, edge - eps), interpolate(which, edge + eps));
            for i in 0..below.0.len() {
                assert!((below.0[i] - above.0[i]).abs() < 1e-7, "{which:?} jumps at {edge}: {below:?} vs {above:?}");
            }
            if smooth {
                assert!(
                    (below.1[0] - above.1[0]).abs() < 1e-6,
                    "{which:?}'s slope jumps at {edge}: {below:?} vs {above:?}"
                );
            }
        }
        // pyhf's code2 extrapolates from 0 rather than from its value at ±1, so it jumps.
        let code2 = Interp::Histo(HistoSysCode::Code2);
        let (below, above) = (interpolate(code2, edge - eps).0, interpolate(code2, edge + eps).0);
        assert!((below[0] - above[0]).abs() > 0.5, "code2 as pyhf defines it is discontinuous at {edge}");
    }
}

#[test]
fn workspace_errors_name_their_place() {
    let r = reference("pyhf_workspaces.json");
    let good = r["cases"][0]["workspace"].clone();
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut ws = good.clone();
        f(&mut ws);
        Workspace::from_json(&ws.to_string()).map(|_| ()).unwrap_err().to_string()
    };
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|w| w["channels"][0]["samples"][1]["modifiers"][1]["type"] = "gaussian".into()),
            "channels[0].samples[1].modifiers[1].type: expected one of histosys, lumi, normfactor",
        ),
        (
            Box::new(|w| {
                w["channels"][0]["samples"][1]["modifiers"][1]["data"]["hi_data"] = serde_json::json!([1.0, 2.0])
            }),
            "channels[0].samples[1].modifiers[1].data.hi_data: expected 4 values (one per bin), found 2",
        ),
        (
            Box::new(|w| w["observations"] = serde_json::json!([{"name": "other", "data": [1.0]}])),
            "expected an observation for channel `SR`",
        ),
        (
            Box::new(|w| w["observations"] = serde_json::json!([])),
            "observations: expected at least one entry, found an empty array",
        ),
        (
            Box::new(|w| w["measurements"][0]["config"]["parameters"][0]["bounds"] = serde_json::json!([[2.0, 1.0]])),
            "measurements[0].config.parameters[0].bounds[0]: expected low ≤ high, found [2, 1]",
        ),
        (
            Box::new(|w| w["channels"][1]["samples"][0]["data"] = serde_json::json!([1.0, "x"])),
            "channels[1].samples[0].data[1]: expected a number, found the string \"x\"",
        ),
    ];
    for (f, message) in cases {
        let err = mutate(&*f);
        assert!(err.contains(message), "expected `{message}`, found `{err}`");
    }
    // Model-level problems: a lumi without its constraint, located in the JSON; a measurement
    // parameter the model does not have is ignored, as pyhf ignores it, and reported.
    let mut ws = Workspace::from_json(&good.to_string()).unwrap();
    ws.measurements[0].parameters.retain(|p| p.name != "lumi");
    let b = Builder::new();
    let err = ws.model(&b, &ws.measurements[0], NormSysCode::Code4, HistoSysCode::Code4p).unwrap_err().to_string();
    assert!(err.contains("lumi parameter `lumi`: expected `auxdata` and `sigmas`"), "{err}");
    assert!(err.starts_with("channels["), "the error names its place in the JSON: {err}");
    let mut ws = Workspace::from_json(&good.to_string()).unwrap();
    ws.measurements[0].parameters[1].name = "nonexistent".into();
    let model = ws.model(&b, &ws.measurements[0], NormSysCode::Code4, HistoSysCode::Code4p).unwrap();
    let ignored: Vec<String> = model.ignored_configs().iter().map(|(at, m)| format!("{}: {m}", ws.path(*at))).collect();
    assert_eq!(
        ignored,
        ["measurements[0].config.parameters[1]: measurement parameter `nonexistent`: the model has no parameter of that name, so its settings are ignored"]
    );
}

#[test]
fn workspaces_round_trip_through_json() {
    let r = reference("pyhf_workspaces.json");
    for case in r["cases"].as_array().unwrap() {
        let ws = Workspace::from_json(&case["workspace"].to_string()).unwrap();
        let again = Workspace::from_json(&ws.to_json()).unwrap();
        assert_eq!(ws, again);
    }
}

/// Every modifier type fed by graph parameters (as a network would feed them): the gradient of
/// ln L with respect to each template, uncertainty and factor.
#[test]
fn every_modifier_is_differentiable_in_its_templates() {
    let b = Builder::new();
    let n_params = {
        let p = |n: &str, len: usize| b.param(n, DType::F64, [len]);
        let s = |n: &str| b.param(n, DType::F64, neos_ir::Shape::scalar());
        let spec = Spec {
            channels: vec![Channel::new(
                "SR",
                vec![
                    Sample::new(
                        "signal",
                        p("sig", 3),
                        vec![
                            Modifier::normfactor("mu"),
                            Modifier::lumi("lumi"),
                            Modifier::normsys("theory", s("k_hi"), s("k_lo")),
                            Modifier::staterror("stat", p("sig_stat", 3)),
                        ],
                    ),
                    Sample::new(
                        "bkg",
                        p("bkg", 3),
                        vec![
                            Modifier::histosys("jes", p("bkg_hi", 3), p("bkg_lo", 3)),
                            Modifier::shapesys("shape", p("bkg_unc", 3)),
                            Modifier::shapefactor("free"),
                            Modifier::staterror("stat", p("bkg_stat", 3)),
                        ],
                    ),
                ],
            )],
            poi: Some(("mu".into(), Default::default())),
            parameters: vec![lumi_config()],
            normsys_code: NormSysCode::Code4,
            histosys_code: HistoSysCode::Code4p,
            ..Spec::default()
        };
        let model = Model::new(spec).unwrap();
        assert_eq!(model.par_order(), ["jes", "lumi", "mu", "theory", "free", "shape", "stat"]);
        let theta = b.param("theta", DType::F64, [model.len()]);
        let main = b.constant(arr(&[14.0, 25.0, 31.0]), DType::F64);
        let data = b.concat(&[main, model.auxdata().unwrap()], 0);
        b.output("logpdf", model.logpdf(theta, data).unwrap());
        model.len()
    };
    let g = b.finish().unwrap();
    let theta0 = [0.3, 1.01, 1.2, -0.4, 0.9, 1.1, 1.05, 0.97, 1.02, 0.95, 1.03, 1.01, 0.98];
    assert_eq!(theta0.len(), n_params);
    let bindings = template_bindings().with("theta", arr(&theta0));
    let wrt = ["theta", "sig", "k_hi", "k_lo", "sig_stat", "bkg", "bkg_hi", "bkg_lo", "bkg_unc", "bkg_stat"];
    let opts = GradCheck { eps: 1e-6, rtol: 1e-6, atol: 1e-7 };
    let report = gradcheck(&g, g.output("logpdf").unwrap(), &wrt, &bindings, opts).unwrap();
    assert!(report.passed(), "{report}");
}
