//! The whole neos pipeline on the tiny network of tests/data/reference/pipeline_small.json:
//! network → kernel density histograms → yields → HistFactory → fits → metrics, with the
//! gradients of cls, discovery, poi_uncert and bce with respect to every weight and the inner
//! bin edges (exact to 1e-8, neos's own to 2e-6 of each gradient's scale).

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use ndarray::{ArrayD, IxDyn};
use neos::ir::histfactory::neos_model;
use neos::ir::inference::Inference;
use neos::ir::{eval, grad_in, Bindings, Builder, DType, Dim, Shape, EVENTS};
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reference/pipeline_small.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Every number in a nested JSON array, in row-major order.
fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("expected numbers, found {other}"),
    }
}

fn array(shape: &[usize], values: Vec<f64>) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
}

const BLOBS: [&str; 4] = ["sig", "bkg_nominal", "bkg_up", "bkg_down"];
const PARAMS: [&str; 5] = ["w1", "b1", "w2", "b2", "inner_edges"];

#[test]
fn pipeline_values_and_gradients() {
    let r = reference();
    let inputs = &r["inputs"];
    let b = Builder::new();
    let (w1, b1) = (b.param("w1", DType::F64, [2, 8]), b.param("b1", DType::F64, [8]));
    let (w2, b2) = (b.param("w2", DType::F64, [8, 1]), b.param("b2", DType::F64, [1]));
    let inner = b.param("inner_edges", DType::F64, [3]);
    let bandwidth = b.knob("bandwidth", DType::F64, inputs["bandwidth"].as_f64().unwrap());
    let edges = b.neos_edges(inner, 0.0, 1.0);
    let lumi = inputs["overall_scale_lumi"].as_f64().unwrap();
    let mut outputs = Vec::new();
    let mut yields = Vec::new();
    for blob in BLOBS {
        let x = b.input(blob, DType::F64, Shape::new([EVENTS, Dim::Fixed(2)]));
        let out = ((x.matmul(w1) + b1).relu().matmul(w2) + b2).sigmoid().reshape(Shape::new([EVENTS]));
        let scale = b.scalar(inputs["scale_factors"][blob].as_f64().unwrap() * lumi, DType::F64);
        yields.push(out.hist(edges, bandwidth, false).neos_yields(out, scale));
        outputs.push(out);
    }
    let bce = neos::ir::inference::bce(outputs[0], &outputs[1..]);
    let inference = Inference::new(neos_model(&yields).unwrap()).unwrap();
    let metrics =
        [inference.neos_cls(1.0).unwrap(), inference.neos_discovery().unwrap(), inference.poi_uncert().unwrap(), bce];
    let wrt = [w1, b1, w2, b2, inner];
    let mut ids: Vec<_> = outputs.iter().chain(&yields).map(|t| t.id()).collect();
    for m in metrics {
        ids.push(m.id());
        ids.extend(grad_in(&b, m, &wrt).unwrap().iter().map(|g| g.id()));
    }
    drop(inference);
    let g = b.finish().unwrap();

    let pars = &inputs["nn_pars"];
    let mut bindings = Bindings::new()
        .with("w1", array(&[2, 8], flat(&pars[0][0])))
        .with("b1", array(&[8], flat(&pars[0][1])))
        .with("w2", array(&[8, 1], flat(&pars[2][0])))
        .with("b2", array(&[1], flat(&pars[2][1])))
        .with("inner_edges", array(&[3], flat(&inputs["inner_bin_edges"])));
    for blob in BLOBS {
        let data = flat(&inputs["data"][blob]);
        bindings.set(blob, array(&[data.len() / 2, 2], data));
    }
    let v = eval(&g, &bindings, &ids).unwrap();
    let close = |label: &str, found: &[f64], expected: &[f64], scale: f64, rtol: f64| {
        assert_eq!(found.len(), expected.len(), "{label}");
        for (i, (f, e)) in found.iter().zip(expected).enumerate() {
            assert!((f - e).abs() <= rtol * scale.max(e.abs()), "{label}[{i}]: found {f:e}, expected {e:e}");
        }
    };
    let values = |k: usize| v[k].iter().copied().collect::<Vec<f64>>();
    for (k, blob) in BLOBS.iter().enumerate() {
        close(&format!("network output {blob}"), &values(k), &flat(&r["intermediate"]["nn_output"][blob]), 0.0, 1e-12);
        close(&format!("yields {blob}"), &values(4 + k), &flat(&r["intermediate"]["yields"][blob]), 0.0, 1e-10);
    }
    for (m, name) in ["cls", "discovery", "poi_uncert", "bce"].iter().enumerate() {
        let base = 8 + m * 6;
        let grads: Vec<Vec<f64>> = (0..5).map(|p| values(base + 1 + p)).collect();
        // The reference lists gradients as [[dW1, db1], [], [dW2, db2], []] and bins.
        let against = |source: &Value| -> Vec<Vec<f64>> {
            let nn = &source["grad"]["nn_pars"];
            vec![flat(&nn[0][0]), flat(&nn[0][1]), flat(&nn[2][0]), flat(&nn[2][1]), flat(&source["grad"]["bins"])]
        };
        let mut sources = vec![("neos", &r["neos_relaxed"][name], 2e-6)];
        if r["exact"].get(*name).is_some() {
            sources.push(("exact", &r["exact"][name], 1e-8));
        }
        for (label, source, rtol) in sources {
            let expected = source["value"].as_f64().unwrap();
            close(&format!("{name} vs {label}"), &values(base), &[expected], 0.0, rtol);
            let expected_grads = against(source);
            let scale = expected_grads.iter().flatten().fold(0.0_f64, |m, x| m.max(x.abs()));
            for (p, param) in PARAMS.iter().enumerate() {
                close(&format!("d{name}/d{param} vs {label}"), &grads[p], &expected_grads[p], scale, rtol);
            }
        }
    }
}
