//! Fits as graph nodes: best fits and likelihood values against pyhf on the reference
//! workspaces, and the implicit gradient of fitted parameters against finite differences of
//! re-solved fits, on models with several kinds of nuisance parameters and with a parameter
//! held at its bound.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{arr, floats, lumi_config, reference, template_bindings, TEMPLATES};
use neos_ir::histfactory::{Channel, HistoSysCode, Model, Modifier, NormSysCode, Sample, Spec, Workspace};
use neos_ir::{eval, fit, gradcheck, Bindings, Builder, DType, FitConfig, GradCheck, Tensor};

#[test]
fn best_fits_and_likelihoods_match_pyhf() {
    let r = reference("pyhf_workspaces.json");
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let ws = Workspace::from_json(&case["workspace"].to_string()).unwrap();
        let m = ws.measurement(None).unwrap();
        let b = Builder::new();
        let model = ws.model(&b, m, NormSysCode::Code4, HistoSysCode::Code4p).unwrap();
        let poi = model.poi_index.unwrap();
        let mut data = ws.observed_main(&model.channels()).unwrap();
        let aux_id = model.auxdata().unwrap().id();
        let aux = eval(&b.graph(), &Bindings::new(), &[aux_id]).unwrap().remove(0);
        data.extend(aux.iter());
        let data_t = b.input("data", DType::F64, [data.len()]);
        let init = b.input("init", DType::F64, [model.len()]);
        let mut config = FitConfig::new(model.suggested_bounds());
        config.fixed = model.suggested_fixed();
        let free = model.fit(init, data_t, &config).unwrap();
        let mut fixed_config = config;
        fixed_config.fixed[poi] = true;
        let fixed = model.fit(init, data_t, &fixed_config).unwrap();
        let twice_nll_free = -(model.logpdf(free, data_t).unwrap() * 2.0);
        let twice_nll_fixed = -(model.logpdf(fixed, data_t).unwrap() * 2.0);
        let ids = [free.id(), fixed.id(), twice_nll_free.id(), twice_nll_fixed.id()];
        let mut init_values = model.suggested_init();
        drop(model);
        let g = b.finish().unwrap();
        init_values[poi] = 1.0;
        let bindings = Bindings::new().with("data", arr(&data)).with("init", arr(&init_values));
        let v = eval(&g, &bindings, &ids).unwrap();
        for (k, (label, fit_name)) in [("free", "free_fit"), ("μ = 1", "fixed_poi_fit_mu1")].iter().enumerate() {
            let expected = floats(&case[fit_name]["bestfit"]);
            for (i, (f, e)) in v[k].iter().zip(&expected).enumerate() {
                assert!((f - e).abs() <= 1e-5, "{name}, {label} fit, parameter {i}: found {f}, expected {e}");
            }
            // Our fits converge at least as far as pyhf's, so the likelihood is as good or better.
            let twice_nll = v[2 + k][[]];
            let expected = case[fit_name]["twice_nll"].as_f64().unwrap();
            assert!(
                twice_nll <= expected + 1e-9 && expected - twice_nll < 1e-6,
                "{name}, {label}: 2nll {twice_nll} vs pyhf {expected}"
            );
        }
    }
}

/// A one-channel model with normfactor, lumi, normsys, histosys, staterror, shapesys and a
/// bounded signal strength, built from the given templates.
fn templated_spec<'b>(t: &[Tensor<'b>]) -> Spec<Tensor<'b>> {
    Spec {
        channels: vec![Channel::new(
            "SR",
            vec![
                Sample::new(
                    "signal",
                    t[0],
                    vec![Modifier::normfactor("mu"), Modifier::lumi("lumi"), Modifier::staterror("stat", t[1])],
                ),
                Sample::new(
                    "bkg",
                    t[2],
                    vec![
                        Modifier::histosys("jes", t[3], t[4]),
                        Modifier::normsys("xsec", t[5], t[6]),
                        Modifier::shapesys("shape", t[7]),
                        Modifier::staterror("stat", t[8]),
                    ],
                ),
            ],
        )],
        poi: Some(("mu".into(), Default::default())),
        parameters: vec![lumi_config()],
        normsys_code: NormSysCode::Code4,
        histosys_code: HistoSysCode::Code4p,
        ..Spec::default()
    }
}

/// The gradient of Σ cᵢ θ̂ᵢ + the NLL at θ̂ with respect to every template and the data, by
/// the implicit rule, against finite differences of re-solved fits.
fn check_implicit_gradient(main_data: &[f64], mu_fixed: Option<f64>, expect_mu_at_bound: bool) {
    let b = Builder::new();
    let templates: Vec<Tensor<'_>> = TEMPLATES
        .iter()
        .map(|(n, v)| {
            if v.len() == 1 {
                b.input(n, DType::F64, neos_ir::Shape::scalar())
            } else {
                b.input(n, DType::F64, [v.len()])
            }
        })
        .collect();
    let model = Model::new(templated_spec(&templates)).unwrap();
    let p = model.len();
    let poi = model.poi_index.unwrap();
    let main = b.input("main", DType::F64, [main_data.len()]);
    let data = b.concat(&[main, model.auxdata().unwrap()], 0);
    let mut config = FitConfig::new(model.suggested_bounds());
    config.tolerance = 1e-11;
    let mut init = model.suggested_init();
    if let Some(mu) = mu_fixed {
        config.fixed[poi] = true;
        init[poi] = mu;
    }
    let init_t = b.constant(arr(&init), DType::F64);
    let theta_hat = model.fit(init_t, data, &config).unwrap();
    let weights = b.constant(arr(&(0..p).map(|i| 0.5 + 0.3 * i as f64).collect::<Vec<_>>()), DType::F64);
    let nll = -model.logpdf(theta_hat, data).unwrap();
    b.output("loss", (theta_hat * weights).sum_all() + nll);
    b.output("theta_hat", theta_hat);
    drop(model);
    let g = b.finish().unwrap();
    let bindings = template_bindings().with("main", arr(main_data));
    let fitted = eval(&g, &bindings, &[g.output("theta_hat").unwrap()]).unwrap().remove(0);
    let mu_hat = fitted[[poi]];
    assert_eq!(mu_hat == 0.0, expect_mu_at_bound, "μ̂ = {mu_hat} ({fitted})");
    let names: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).chain(["main"]).collect();
    let opts = GradCheck { eps: 1e-5, rtol: 2e-5, atol: 1e-7 };
    let report = gradcheck(&g, g.output("loss").unwrap(), &names, &bindings, opts).unwrap();
    assert!(report.passed(), "data {main_data:?}, μ fixed {mu_fixed:?}: {report}");
}

#[test]
fn implicit_gradient_matches_re_solved_fits() {
    // An excess: every parameter inside its bounds.
    check_implicit_gradient(&[17.0, 31.0, 36.0], None, false);
}

#[test]
fn implicit_gradient_with_the_signal_strength_at_its_bound() {
    // A deficit pushes μ̂ to its lower bound 0, where it has no sensitivity.
    check_implicit_gradient(&[9.0, 15.0, 18.0], None, true);
}

#[test]
fn implicit_gradient_with_a_fixed_signal_strength() {
    check_implicit_gradient(&[17.0, 31.0, 36.0], Some(1.0), false);
}

#[test]
fn a_fit_that_cannot_converge_is_reported() {
    let b = Builder::new();
    let init = b.constant(arr(&[0.5]), DType::F64);
    let x = b.input("x", DType::F64, [1]);
    let mut config = FitConfig::new(vec![(-10.0, 10.0)]);
    config.max_iterations = 1;
    // A steep quartic that one Newton step cannot finish.
    let t = fit(&b, init, &[x], config, |_, theta, xs| Ok(((theta - xs[0]).powf(4.0) + (theta * 3.0).exp()).sum_all()))
        .unwrap();
    b.output("t", t);
    let g = b.finish().unwrap();
    let err = eval(&g, &Bindings::new().with("x", arr(&[3.0])), &[g.output("t").unwrap()]).unwrap_err().to_string();
    assert!(err.contains("the fit did not converge") && err.contains("iteration limit"), "{err}");
}

/// A histosys whose up and down variations both raise the yield (code 0, so α = 0 is a cusp)
/// makes the likelihood bimodal for an excess: the fit must find the lower minimum.
#[test]
fn restarts_find_the_global_minimum_of_a_bimodal_likelihood() {
    let fitted = |restarts: bool| {
        let b = Builder::new();
        let c = |v: f64| b.constant(arr(&[v]), DType::F64);
        let model = Model::new(Spec {
            channels: vec![Channel::new(
                "sr",
                vec![Sample::new("bkg", c(50.0), vec![Modifier::histosys("a", c(53.0), c(57.0))])],
            )],
            histosys_code: HistoSysCode::Code0,
            ..Spec::default()
        })
        .unwrap();
        let mut config = FitConfig::new(model.suggested_bounds());
        config.restarts = restarts;
        let data = b.constant(arr(&[58.0, 0.0]), DType::F64);
        let alpha = model.fit(c(0.5), data, &config).unwrap();
        b.output("alpha", alpha);
        drop(model);
        let g = b.finish().unwrap();
        eval(&g, &Bindings::new(), &[g.output("alpha").unwrap()]).unwrap()[0][[0]]
    };
    let (local, global) = (fitted(false), fitted(true));
    assert!(local > 0.2, "one start from α = 0.5 stays on the shallow side: {local}");
    assert!(global < -0.3, "restarts reach the steep side's lower minimum: {global}");
}
