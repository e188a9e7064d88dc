//! The language's lowering, run by the interpreter: the blobs analysis written as a description
//! gives neos's losses and gradients on the reference tiny network, the gradients agree with
//! finite differences, a model with every modifier type gives what the hand-built inference
//! gives, and bad descriptions give every diagnostic at once, at the element it is about.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use ndarray::{ArrayD, IxDyn};
use neos_ir::histfactory::{self, Spec};
use neos_ir::inference::Inference;
use neos_ir::lang::{
    compile, grad_output, loss_output, lower, metric_output, value_output, Activation, Analysis, BinOp, Channel, Expr,
    ExprKind, Init, Input, Knob, Let, Loc, Metric, Mlp, Model, Modifier, Objective, Param, ParamKind, ParameterConfig,
    Sample, Stat,
};
use neos_ir::{eval, eval_outputs, gradcheck, Bindings, Builder, DType, GradCheck, SimplifyLimits};
use serde_json::Value;

fn at(e: ExprKind, loc: usize) -> Expr {
    Expr { kind: e, at: Loc(loc) }
}
fn var(name: &str) -> Expr {
    at(ExprKind::Var(name.into()), 0)
}
fn num(v: f64) -> Expr {
    at(ExprKind::Num(v), 0)
}
fn array(v: &[f64]) -> Expr {
    at(ExprKind::Array(v.to_vec()), 0)
}
fn apply(net: &str, x: Expr) -> Expr {
    at(ExprKind::Apply { net: net.into(), arg: Box::new(x) }, 0)
}
fn mul(a: Expr, b: Expr) -> Expr {
    at(ExprKind::Binary(BinOp::Mul, Box::new(a), Box::new(b)), 0)
}
fn hist(values: Expr, scale: f64) -> Expr {
    at(
        ExprKind::Hist {
            values: Box::new(values),
            edges: Box::new(var("edges")),
            bandwidth: Box::new(var("bandwidth")),
            weights: None,
            scale: Some(Box::new(mul(num(scale), var("lumi")))),
            reflect: false,
        },
        0,
    )
}
fn binding(name: &str, value: Expr) -> Let {
    Let { name: name.into(), value, at: Loc(0) }
}
fn sample(name: &str, nominal: Expr, modifiers: Vec<Modifier>) -> Sample {
    Sample { name: name.into(), nominal, modifiers, at: Loc(0) }
}
fn objective(name: &str, stat: Stat) -> Objective {
    Objective { name: name.into(), terms: vec![(1.0, stat)], at: Loc(0) }
}

const BLOBS: [&str; 4] = ["sig", "bkg_nominal", "bkg_up", "bkg_down"];

fn bce() -> Stat {
    Stat::Bce {
        signal: apply("nn", var("sig")),
        backgrounds: BLOBS[1..].iter().map(|b| apply("nn", var(b))).collect(),
        at: Loc(0),
    }
}

/// The neos paper's analysis: four blobs, a 2 → hidden → 1 network (relu, sigmoid), four bins
/// with trainable inner edges, the signal scaled by 2 and the backgrounds by 10 times the
/// luminosity, a histosys between the background variations and μ a normfactor.
fn blobs(hidden: &[usize], bandwidth: f64) -> Analysis {
    let mut sizes = vec![2];
    sizes.extend_from_slice(hidden);
    sizes.push(1);
    let stats =
        [Stat::Cls { mu_test: 1.0, at: Loc(0) }, Stat::Discovery { at: Loc(0) }, Stat::PoiUncert { at: Loc(0) }, bce()];
    Analysis {
        name: "Blobs".into(),
        at: Loc(0),
        inputs: BLOBS.iter().map(|b| Input { name: b.to_string(), features: 2, weighted: false, at: Loc(0) }).collect(),
        knobs: vec![
            Knob { name: "bandwidth".into(), default: bandwidth, at: Loc(0) },
            Knob { name: "lumi".into(), default: 10.0, at: Loc(0) },
        ],
        params: vec![
            Param {
                name: "nn".into(),
                kind: ParamKind::Mlp(Mlp {
                    sizes,
                    hidden: Activation::Relu,
                    output: Activation::Sigmoid,
                    precision: DType::F64,
                }),
                at: Loc(0),
            },
            Param {
                name: "edges".into(),
                kind: ParamKind::BinEdges { edges: vec![0.0, 0.25, 0.5, 0.75, 1.0], trainable: true },
                at: Loc(0),
            },
        ],
        lets: vec![
            binding("s", hist(apply("nn", var("sig")), 2.0)),
            binding("b", hist(apply("nn", var("bkg_nominal")), 10.0)),
            binding("bup", hist(apply("nn", var("bkg_up")), 10.0)),
            binding("bdn", hist(apply("nn", var("bkg_down")), 10.0)),
        ],
        model: Model {
            channels: vec![Channel {
                name: "singlechannel".into(),
                samples: vec![
                    sample("signal", var("s"), vec![Modifier::normfactor("mu")]),
                    sample(
                        "background",
                        var("b"),
                        vec![Modifier::histosys("correlated_bkg_uncertainty", var("bup"), var("bdn"))],
                    ),
                ],
                at: Loc(0),
            }],
            poi: Some(("mu".into(), Loc(0))),
            ..Model::default()
        },
        objectives: stats.iter().map(|s| objective(s.name(), s.clone())).collect(),
        metrics: stats.iter().map(|s| Metric { name: s.name().into(), stat: s.clone(), at: Loc(0) }).collect(),
    }
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("expected numbers, found {other}"),
    }
}

fn tensor(shape: &[usize], values: Vec<f64>) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
}

/// The reference network's weights and the four blobs, bound by the description's names.
fn reference_bindings(r: &Value) -> Bindings {
    let inputs = &r["inputs"];
    let pars = &inputs["nn_pars"];
    let mut bindings = Bindings::new()
        .with("nn_w0", tensor(&[2, 8], flat(&pars[0][0])))
        .with("nn_b0", tensor(&[8], flat(&pars[0][1])))
        .with("nn_w1", tensor(&[8, 1], flat(&pars[2][0])))
        .with("nn_b1", tensor(&[1], flat(&pars[2][1])))
        .with("edges", tensor(&[3], flat(&inputs["inner_bin_edges"])));
    for blob in BLOBS {
        let data = flat(&inputs["data"][blob]);
        bindings.set(blob, tensor(&[data.len() / 2, 2], data));
    }
    bindings
}

fn close(label: &str, found: &[f64], expected: &[f64], scale: f64, rtol: f64) {
    assert_eq!(found.len(), expected.len(), "{label}");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!((f - e).abs() <= rtol * scale.max(e.abs()), "{label}[{i}]: found {f:e}, expected {e:e}");
    }
}

#[test]
fn blobs_description_reproduces_neos_losses_and_gradients() {
    let r = common::reference("pipeline_small.json");
    let lowered = lower(&blobs(&[8], r["inputs"]["bandwidth"].as_f64().unwrap())).unwrap();
    let leaves: Vec<&str> = lowered.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(leaves, ["nn_w0", "nn_b0", "nn_w1", "nn_b1", "edges"]);
    assert_eq!(lowered.param_count(), 16 + 8 + 8 + 1 + 3);
    assert_eq!(lowered.objectives, ["cls", "discovery", "poi_uncert", "bce"]);
    let out = eval_outputs(&lowered.graph, &reference_bindings(&r)).unwrap();
    let values = |name: &str| out[name].iter().copied().collect::<Vec<f64>>();
    for (blob, name) in BLOBS.iter().zip(["s", "b", "bup", "bdn"]) {
        let expected = flat(&r["intermediate"]["yields"][blob]);
        close(&format!("yields {blob}"), &values(&value_output(name)), &expected, 0.0, 1e-10);
    }
    // The reference lists gradients as [[dW1, db1], [], [dW2, db2], []] and the inner edges.
    let against = |source: &Value| -> Vec<Vec<f64>> {
        let nn = &source["grad"]["nn_pars"];
        vec![flat(&nn[0][0]), flat(&nn[0][1]), flat(&nn[2][0]), flat(&nn[2][1]), flat(&source["grad"]["bins"])]
    };
    for name in ["cls", "discovery", "poi_uncert", "bce"] {
        let mut sources = vec![("neos", &r["neos_relaxed"][name], 2e-6)];
        if r["exact"].get(name).is_some() {
            sources.push(("exact", &r["exact"][name], 1e-8));
        }
        for (label, source, rtol) in sources {
            let expected = source["value"].as_f64().unwrap();
            close(&format!("{name} vs {label}"), &values(&loss_output(name)), &[expected], 0.0, rtol);
            close(&format!("metric {name} vs {label}"), &values(&metric_output(name)), &[expected], 0.0, rtol);
            let expected_grads = against(source);
            let scale = expected_grads.iter().flatten().fold(0.0_f64, |m, x| m.max(x.abs()));
            for (leaf, expected) in leaves.iter().zip(&expected_grads) {
                let found = values(&grad_output(name, leaf));
                close(&format!("d{name}/d{leaf} vs {label}"), &found, expected, scale, rtol);
            }
        }
    }
}

#[test]
fn blobs_gradients_match_finite_differences() {
    let r = common::reference("pipeline_small.json");
    let lowered = lower(&blobs(&[8], 0.09)).unwrap();
    let bindings = reference_bindings(&r);
    let wrt = ["nn_w0", "nn_b0", "nn_w1", "nn_b1", "edges"];
    // The fits converge to 1e-9 in the gradient, so differences of losses carry an error of
    // order 1e-9·Δθ/eps; a step of 1e-5 and these tolerances leave room for it.
    let opts = GradCheck { eps: 1e-5, rtol: 1e-5, atol: 1e-8 };
    for name in ["cls", "poi_uncert"] {
        let output = lowered.lowered.output(&loss_output(name)).unwrap();
        let report = gradcheck(&lowered.lowered, output, &wrt, &bindings, opts).unwrap();
        assert!(report.passed(), "{name}: {report}");
        assert_eq!(report.checked, lowered.param_count());
    }
}

#[test]
fn simplified_graph_computes_what_the_lowered_one_does() {
    let r = common::reference("pipeline_small.json");
    let limits = SimplifyLimits { iterations: 4, ..SimplifyLimits::default() };
    let compiled = compile(&blobs(&[8], 0.09), &limits).unwrap();
    let bindings = reference_bindings(&r);
    let before = eval_outputs(&compiled.lowered.graph, &bindings).unwrap();
    let after = eval_outputs(&compiled.simplified, &bindings).unwrap();
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    for (name, v) in &before {
        let scale = v.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
        let found: Vec<f64> = after[name].iter().copied().collect();
        close(name, &found, &v.iter().copied().collect::<Vec<_>>(), scale, 1e-9);
    }
    let stages: Vec<String> = compiled.printed().into_iter().map(|(s, _)| s).collect();
    assert_eq!(stages, ["lowered", "differentiated", "simplified", "network_nn"]);
    // The network on its own takes the same parameters and gives the network outputs.
    let net = &compiled.networks[0].graph;
    let x = bindings.get("sig").unwrap().clone();
    let y = eval_outputs(net, &reference_bindings(&r).with("x", x)).unwrap();
    let expected = flat(&r["intermediate"]["nn_output"]["sig"]);
    close("network on sig", &y["y"].iter().copied().collect::<Vec<_>>(), &expected, 0.0, 1e-12);
}

#[test]
fn entries_group_losses_gradients_metrics_and_values() {
    let lowered = lower(&blobs(&[4, 4], 0.09)).unwrap();
    let entries = lowered.entries();
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "loss_cls",
            "value_and_grad_cls",
            "loss_discovery",
            "value_and_grad_discovery",
            "loss_poi_uncert",
            "value_and_grad_poi_uncert",
            "loss_bce",
            "value_and_grad_bce",
            "metrics",
            "values",
            "edges"
        ]
    );
    assert_eq!(entries[1].1.len(), 1 + 7);
    assert_eq!(entries[1].1[1], "grad_cls_nn_w0");
    for (_, outputs) in &entries {
        for o in outputs {
            assert!(lowered.graph.output(o).is_some(), "{o}");
        }
    }
    let inits: Vec<&Init> = lowered.params.iter().map(|p| &p.init).collect();
    assert_eq!(inits[0], &Init::GlorotNormal { fan_in: 2, fan_out: 4 });
    assert_eq!(inits[1], &Init::Normal { std: 1e-2 });
    assert_eq!(inits[6], &Init::Values(vec![0.25, 0.5, 0.75]));
}

/// The control region's background: its normalisation is measured bin by bin (a
/// shapefactor), which the signal region alone could not do beside μ.
const CONTROL: [f64; 2] = [30.0, 25.0];

/// A counting model with every modifier type, from constant templates: a three-bin signal
/// region and a two-bin control region.
fn every_modifier() -> Analysis {
    let t = |name: &str| common::TEMPLATES.iter().find(|(n, _)| *n == name).unwrap().1;
    let stats =
        [Stat::Cls { mu_test: 1.0, at: Loc(0) }, Stat::Discovery { at: Loc(0) }, Stat::PoiUncert { at: Loc(0) }];
    Analysis {
        name: "Counting".into(),
        lets: vec![binding("sig", array(t("sig"))), binding("bkg", array(t("bkg")))],
        model: Model {
            channels: vec![
                Channel {
                    name: "sr".into(),
                    samples: vec![
                        sample(
                            "signal",
                            var("sig"),
                            vec![
                                Modifier::normfactor("mu"),
                                Modifier::lumi("lumi"),
                                Modifier::staterror("stat", array(t("sig_stat"))),
                            ],
                        ),
                        sample(
                            "background",
                            var("bkg"),
                            vec![
                                Modifier::histosys("bkg_shape", array(t("bkg_hi")), array(t("bkg_lo"))),
                                Modifier::normsys("bkg_norm", num(t("k_hi")[0]), num(t("k_lo")[0])),
                                Modifier::shapesys("bkg_unc", array(t("bkg_unc"))),
                                Modifier::staterror("stat", array(t("bkg_stat"))),
                            ],
                        ),
                    ],
                    at: Loc(0),
                },
                Channel {
                    name: "cr".into(),
                    samples: vec![sample(
                        "bkg",
                        array(&CONTROL),
                        vec![Modifier::shapefactor("free"), Modifier::lumi("lumi")],
                    )],
                    at: Loc(0),
                },
            ],
            poi: Some(("mu".into(), Loc(0))),
            parameters: vec![ParameterConfig {
                name: "lumi".into(),
                auxdata: Some(vec![1.0]),
                sigmas: Some(vec![0.05]),
                ..ParameterConfig::default()
            }],
            ..Model::default()
        },
        objectives: vec![objective("cls", stats[0].clone())],
        metrics: stats.iter().map(|s| Metric { name: s.name().into(), stat: s.clone(), at: Loc(0) }).collect(),
        ..Analysis::default()
    }
}

/// The model of [`every_modifier`] built through the library from templates
/// `[sig, sig_stat, bkg, bkg_hi, bkg_lo, k_hi, k_lo, bkg_unc, bkg_stat, control]`.
fn hand_built_model<'s>(x: &[neos_ir::Tensor<'s>]) -> neos_ir::Result<histfactory::Model<'s>> {
    use histfactory::{Channel, Modifier, Sample};
    histfactory::Model::new(Spec {
        channels: vec![
            Channel::new(
                "sr",
                vec![
                    Sample::new(
                        "signal",
                        x[0],
                        vec![Modifier::normfactor("mu"), Modifier::lumi("lumi"), Modifier::staterror("stat", x[1])],
                    ),
                    Sample::new(
                        "background",
                        x[2],
                        vec![
                            Modifier::histosys("bkg_shape", x[3], x[4]),
                            Modifier::normsys("bkg_norm", x[5], x[6]),
                            Modifier::shapesys("bkg_unc", x[7]),
                            Modifier::staterror("stat", x[8]),
                        ],
                    ),
                ],
            ),
            Channel::new(
                "cr",
                vec![Sample::new("bkg", x[9], vec![Modifier::shapefactor("free"), Modifier::lumi("lumi")])],
            ),
        ],
        poi: Some(("mu".into(), Default::default())),
        parameters: vec![common::lumi_config()],
        ..Spec::default()
    })
}

#[test]
fn every_modifier_type_lowers_to_the_library_model() {
    let lowered = lower(&every_modifier()).unwrap();
    assert!(lowered.params.is_empty());
    let out = eval_outputs(&lowered.graph, &Bindings::new()).unwrap();
    // The same model built by hand through the library.
    let b = Builder::new();
    let names = ["sig", "sig_stat", "bkg", "bkg_hi", "bkg_lo", "k_hi", "k_lo", "bkg_unc", "bkg_stat"];
    let templates: Vec<_> = names
        .iter()
        .map(|n| {
            let v = common::TEMPLATES.iter().find(|(m, _)| m == n).unwrap().1;
            if v.len() == 1 {
                b.scalar(v[0], DType::F64)
            } else {
                b.constant(common::arr(v), DType::F64)
            }
        })
        .chain([b.constant(common::arr(&CONTROL), DType::F64)])
        .collect();
    let inference = Inference::new(hand_built_model(&templates).unwrap()).unwrap();
    let ids = [
        inference.neos_cls(1.0).unwrap().id(),
        inference.neos_discovery().unwrap().id(),
        inference.poi_uncert().unwrap().id(),
    ];
    drop(inference);
    let g = b.finish().unwrap();
    let expected = eval(&g, &Bindings::new(), &ids).unwrap();
    for (name, e) in ["cls", "discovery", "poi_uncert"].iter().zip(&expected) {
        let found = out[&metric_output(name)].iter().next().copied().unwrap();
        let e = e.iter().next().copied().unwrap();
        assert!((found - e).abs() <= 1e-12 * e.abs(), "{name}: found {found}, expected {e}");
    }
}

/// Runs `edit` on the blobs description and returns the diagnostics as (location, message).
fn check(edit: impl FnOnce(&mut Analysis)) -> Vec<(usize, String)> {
    let mut a = blobs(&[4], 0.09);
    edit(&mut a);
    lower(&a).unwrap_err().diagnostics.into_iter().map(|d| (d.at.0, d.message)).collect()
}

#[test]
fn every_problem_is_reported_at_its_element() {
    let errors = check(|a| {
        // A network applied to the wrong number of features.
        a.inputs[1].features = 3;
        a.lets[1].value = hist(at(ExprKind::Apply { net: "nn".into(), arg: Box::new(var("bkg_nominal")) }, 11), 10.0);
        // An undefined name.
        a.lets[2].value = hist(at(ExprKind::Var("nope".into()), 12), 10.0);
        // Values of the wrong shape for a histogram.
        a.lets[3].value = hist(at(ExprKind::Var("bkg_down".into()), 13), 10.0);
    });
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[0].0, 11);
    assert!(errors[0].1.contains("expected an input of shape [n, 2], found [events, 3]"), "{}", errors[0].1);
    assert_eq!(errors[1], (12, "expected a defined name, found `nope`".to_string()));
    assert_eq!(errors[2].0, 13);
    assert!(errors[2].1.contains("pick a column"), "{}", errors[2].1);

    let errors = check(|a| a.model.poi = None);
    assert_eq!(errors, [(0, "expected a `poi` in the model, found none".to_string())]);

    let errors = check(|a| {
        a.model.channels[0].samples[1].nominal = at(ExprKind::Array(vec![1.0, 2.0]), 7);
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 7);
    assert!(errors[0].1.contains("expected 4 bins"), "{}", errors[0].1);

    let errors = check(|a| {
        a.params.push(Param {
            name: "nn_w0".into(),
            kind: ParamKind::Array { shape: vec![], init: Init::Constant(0.0) },
            at: Loc(5),
        });
    });
    assert_eq!(errors, [(5, "expected a new name, found `nn_w0` declared twice".to_string())]);
}

#[test]
fn poisoned_bindings_do_not_cascade() {
    let errors = check(|a| {
        a.lets[0].value = at(ExprKind::Var("missing".into()), 3);
    });
    // `s` failed; the model's use of it is not a second error.
    assert_eq!(errors, [(3, "expected a defined name, found `missing`".to_string())]);
}
