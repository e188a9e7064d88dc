//! The kernel density histogram against `relaxed.hist` and `neos.hists_from_nn`
//! (tests/data/reference/kde_hist.json): yields and Jacobians with respect to the values, the
//! edges and the inner edges, to a relative 1e-10 (1e-12 absolute for values that are ~0).

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use ndarray::{ArrayD, IxDyn};
use neos_ir::{eval, grad_in, gradcheck, Bindings, Builder, DType, GradCheck, Graph, Shape, Tensor, EVENTS};
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/reference/kde_hist.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    // Some long arrays are stored as JSON text inside a string.
    match v {
        Value::String(s) => floats(&serde_json::from_str(s).unwrap()),
        Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap()).collect(),
        other => panic!("expected numbers, found {other}"),
    }
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    match v {
        Value::String(s) => matrix(&serde_json::from_str(s).unwrap()),
        Value::Array(rows) => rows.iter().map(floats).collect(),
        other => panic!("expected rows, found {other}"),
    }
}

fn arr(values: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).unwrap()
}

fn close(label: &str, found: f64, expected: f64) {
    let ok = (found - expected).abs() <= 1e-12 || (found - expected).abs() <= 1e-10 * expected.abs();
    assert!(ok, "{label}: found {found:e}, expected {expected:e}");
}

/// Checks a graph with output `yields` (of B bins) against reference yields and the
/// Jacobians of every bin with respect to the named leaves.
fn check(label: &str, graph: &Graph, bindings: &Bindings, yields: &[f64], jacobians: &[(&str, Vec<Vec<f64>>)]) {
    let out = graph.output("yields").unwrap();
    let found = eval(graph, bindings, &[out]).unwrap().remove(0);
    for (j, (&f, &e)) in found.iter().zip(yields).enumerate() {
        close(&format!("{label}: yield {j}"), f, e);
    }
    // Row j of each Jacobian is the gradient of yield j.
    for j in 0..yields.len() {
        let b = Builder::from_graph(graph.clone());
        let yj = b.tensor(out).index(0, j);
        let leaves: Vec<Tensor<'_>> = jacobians.iter().map(|(n, _)| b.leaf(n).unwrap()).collect();
        let grads = grad_in(&b, yj, &leaves).unwrap();
        let ids: Vec<_> = grads.iter().map(|g| g.id()).collect();
        let g = b.finish().unwrap();
        let values = eval(&g, bindings, &ids).unwrap();
        for ((name, jac), v) in jacobians.iter().zip(values) {
            for (k, (&f, &e)) in v.iter().zip(&jac[j]).enumerate() {
                close(&format!("{label}: d yield {j} / d {name}[{k}]"), f, e);
            }
        }
    }
}

#[test]
fn relaxed_hist_yields_and_jacobians() {
    let r = reference();
    let data = floats(&r["data"]);
    for case in r["relaxed_hist_cases"].as_array().unwrap() {
        let edges = floats(&case["edges"]);
        let h = case["bandwidth"].as_f64().unwrap();
        let b = Builder::new();
        let x = b.input("x", DType::F64, Shape::new([EVENTS]));
        let e = b.param("edges", DType::F64, [edges.len()]);
        let bw = b.knob("bandwidth", DType::F64, h);
        b.output("yields", x.hist(e, bw, false));
        let graph = b.finish().unwrap();
        let bindings = Bindings::new().with("x", arr(&data)).with("edges", arr(&edges));
        let label = format!("edges {edges:?}, bandwidth {h}");
        let jacobians = [
            ("x", matrix(&case["jacobian_wrt_data[bin][point]"])),
            ("edges", matrix(&case["jacobian_wrt_edges[bin][edge]"])),
        ];
        check(&label, &graph, &bindings, &floats(&case["yields"]), &jacobians);
    }
}

#[test]
fn neos_yields_with_edge_repair() {
    let r = reference();
    let data = floats(&r["data"]);
    for case in r["neos_hists_from_nn_cases"].as_array().unwrap() {
        let inner = floats(&case["inner_edges"]);
        let h = case["bandwidth"].as_f64().unwrap();
        let scale = case["scale_factor"].as_f64().unwrap() * case["overall_scale"].as_f64().unwrap();
        let b = Builder::new();
        let x = b.input("x", DType::F64, Shape::new([EVENTS]));
        let e = b.param("inner", DType::F64, [inner.len()]);
        let bw = b.knob("bandwidth", DType::F64, h);
        let edges = b.neos_edges(e, 0.0, 1.0);
        b.output("yields", x.hist(edges, bw, false).neos_yields(x, b.scalar(scale, DType::F64)));
        let graph = b.finish().unwrap();
        let bindings = Bindings::new().with("x", arr(&data)).with("inner", arr(&inner));
        let label = format!("inner edges {inner:?}, bandwidth {h}");
        let jacobians = [
            ("x", matrix(&case["jacobian_wrt_data[bin][point]"])),
            ("inner", matrix(&case["jacobian_wrt_inner_edges[bin][edge]"])),
        ];
        check(&label, &graph, &bindings, &floats(&case["yields"]), &jacobians);
    }
}

fn hist_graph(reflect: bool) -> Graph {
    let b = Builder::new();
    let x = b.input("x", DType::F64, Shape::new([EVENTS]));
    let e = b.param("edges", DType::F64, [4]);
    let bw = b.knob("bandwidth", DType::F64, 0.3);
    let w = b.constant(arr(&[0.7, -1.3, 2.1]), DType::F64);
    let counts = x.hist(e, bw, reflect);
    b.output("loss", (counts * w).sum_all() + (counts * counts).sum_all() * 0.1);
    b.output("counts", counts);
    b.finish().unwrap()
}

#[test]
fn derivatives_in_values_edges_and_bandwidth_to_second_order() {
    let bindings = Bindings::new()
        .with("x", arr(&[-0.4, 0.1, 0.35, 0.5, 0.9, 1.6]))
        .with("edges", arr(&[0.0, 0.3, 0.6, 1.0]))
        .with("bandwidth", ndarray::arr0(0.3).into_dyn());
    for reflect in [false, true] {
        let g = hist_graph(reflect);
        let loss = g.output("loss").unwrap();
        let report = gradcheck(&g, loss, &["x", "edges", "bandwidth"], &bindings, GradCheck::default()).unwrap();
        assert!(report.passed(), "reflect {reflect}: {report}");
        // Second order: the derivative of ⟨∇loss, 1⟩.
        let b = Builder::from_graph(g.clone());
        let leaves: Vec<_> = ["x", "edges", "bandwidth"].iter().map(|n| b.leaf(n).unwrap()).collect();
        let grads = grad_in(&b, b.tensor(loss), &leaves).unwrap();
        let dot = grads.iter().map(|t| t.sum_all()).reduce(|a, c| a + c).unwrap();
        b.output("dot", dot);
        let g2 = b.finish().unwrap();
        let report =
            gradcheck(&g2, g2.output("dot").unwrap(), &["x", "edges", "bandwidth"], &bindings, GradCheck::default())
                .unwrap();
        assert!(report.passed(), "second order, reflect {reflect}: {report}");
    }
}

#[test]
fn reflection_keeps_every_event_and_bad_edges_are_rejected() {
    let g = hist_graph(true);
    let counts = g.output("counts").unwrap();
    let good =
        Bindings::new().with("x", arr(&[-0.4, 0.1, 0.35, 0.5, 0.9, 1.6])).with("edges", arr(&[0.0, 0.3, 0.6, 1.0]));
    let total = eval(&g, &good, &[counts]).unwrap()[0].sum();
    assert!((total - 6.0).abs() < 1e-12, "{total}");
    let bad = good.clone().with("edges", arr(&[0.0, 0.6, 0.3, 1.0]));
    let err = eval(&g, &bad, &[counts]).unwrap_err().to_string();
    assert!(err.contains("expected increasing bin edges, found edge 2 = 0.3 after edge 1 = 0.6"), "{err}");
    let zero_width = good.with("bandwidth", ndarray::arr0(0.0).into_dyn());
    let err = eval(&g, &zero_width, &[counts]).unwrap_err().to_string();
    assert!(err.contains("expected a positive bandwidth, found 0"), "{err}");
}

#[test]
fn the_simplifier_keeps_the_histogram_and_its_gradient() {
    let mut g = hist_graph(false);
    let loss = g.output("loss").unwrap();
    let leaves: Vec<_> = ["x", "edges", "bandwidth"].iter().map(|n| g.find_leaf(n).unwrap()).collect();
    for (name, d) in ["d_x", "d_edges", "d_bandwidth"].iter().zip(neos_ir::grad(&mut g, loss, &leaves).unwrap()) {
        g.set_output(name, d).unwrap();
    }
    let (s, report) = neos_ir::simplify(&g, &neos_ir::SimplifyLimits::default()).unwrap();
    assert!(report.nodes_after <= report.nodes_before, "{report}");
    let bindings =
        Bindings::new().with("x", arr(&[-0.4, 0.1, 0.35, 0.5, 0.9, 1.6])).with("edges", arr(&[0.0, 0.3, 0.6, 1.0]));
    let before = neos_ir::eval_outputs(&g, &bindings).unwrap();
    let after = neos_ir::eval_outputs(&s, &bindings).unwrap();
    for (name, v) in &before {
        for (p, q) in v.iter().zip(after[name].iter()) {
            assert!((p - q).abs() <= 1e-12 * (1.0 + p.abs()), "{name}: {p} vs {q}");
        }
    }
}
