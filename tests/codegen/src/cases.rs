//! The test graphs: every op, the MLP forward and backward pass, the histogram with its
//! derivatives, and inference through fits. The build script compiles them; the tests build
//! them again for the interpreter.

use neos_ir::codegen::Entry;
use neos_ir::histfactory::neos_model;
use neos_ir::histfactory::{Channel, Model, Modifier, Sample, Spec};
use neos_ir::inference::Inference;
use neos_ir::{grad_in, Builder, DType, Dim, Graph, Result, Shape, Tensor, UnaryOp, EVENTS};

/// One test graph with its entry points, and the range its random leaf values come from.
#[derive(Debug)]
pub struct Case {
    pub name: &'static str,
    pub graph: Graph,
    pub entries: Vec<Entry>,
    pub domain: (f64, f64),
}

fn case(name: &'static str, b: Builder, entries: &[(&str, &[&str])], domain: (f64, f64)) -> Case {
    let graph = match b.finish() {
        Ok(g) => g,
        Err(e) => panic!("case `{name}`: {e}"),
    };
    Case { name, graph, entries: entries.iter().map(|(n, o)| Entry::new(n, o)).collect(), domain }
}

fn events(features: usize) -> Shape {
    Shape::new([EVENTS, Dim::Fixed(features)])
}

/// Every unary op on positive values (the domain of log, lgamma and the polygammas).
fn unary(name: &'static str, dtype: DType) -> Case {
    let b = Builder::new();
    let x = b.input("x", dtype, Shape::new([EVENTS]));
    let mut outs = Vec::new();
    for u in UnaryOp::ALL {
        let o = format!("{}_{}", u.name(), outs.len());
        b.output(&o, b.apply(neos_ir::Op::Unary(u), &[x]));
        outs.push(o);
    }
    let names: Vec<&str> = outs.iter().map(String::as_str).collect();
    case(name, b, &[("all", &names)], (0.3, 4.0))
}

/// The ops defined on the whole real line, over negative and positive values.
fn unary_wide() -> Case {
    let b = Builder::new();
    let x = b.input("x", DType::F64, Shape::new([EVENTS]));
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Exp,
        UnaryOp::Recip,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Softplus,
        UnaryOp::NormCdf,
        UnaryOp::NormPdf,
    ];
    for u in ops {
        b.output(u.name(), b.apply(neos_ir::Op::Unary(u), &[x]));
    }
    let names: Vec<&str> = ops.iter().map(|u| u.name()).collect();
    case("unary_wide", b, &[("all", &names)], (-9.0, 9.0))
}

/// Binary ops and comparisons with NumPy broadcasting against a vector and a knob.
fn binary() -> Case {
    let b = Builder::new();
    let a = b.input("a", DType::F64, events(3));
    let v = b.param("v", DType::F64, [3]);
    let k = b.knob("k", DType::F64, 1.5);
    b.output("add", a + v);
    b.output("sub", a - k);
    b.output("mul", a * v * k);
    b.output("div", a / v);
    b.output("pow", a.pow(v));
    b.output("max", a.maximum(v));
    b.output("min", a.minimum(k));
    b.output("lt", a.lt(v));
    b.output("le", a.le(k));
    b.output("gt", a.gt(v));
    b.output("ge", a.ge(v));
    b.output("eq", a.eq(a));
    b.output("ne", a.ne(v));
    b.output("select", b.select(a.gt(v), a * 2.0, v - a));
    let outs = ["add", "sub", "mul", "div", "pow", "max", "min", "lt", "le", "gt", "ge", "eq", "ne", "select"];
    case("binary", b, &[("all", &outs), ("some", &["mul", "select"])], (0.5, 2.5))
}

/// The indexing ops, reductions and casts on a rank-3 array with the events dimension.
fn indexing() -> Case {
    let b = Builder::new();
    let x = b.input("x", DType::F64, Shape::new([EVENTS, Dim::Fixed(3), Dim::Fixed(4)]));
    let w = b.param("w", DType::F64, [4]);
    b.output("transpose", x.transpose(vec![2, 0, 1]).exp());
    b.output("slice", x.slice(2, 1..3) * 3.0);
    b.output("pad", x.pad(1, 1, 2) + 1.0);
    b.output("concat", b.concat(&[x, x * 2.0, x.slice(2, 0..1)], 2));
    b.output("reshape", x.reshape(Shape::new([EVENTS, Dim::Fixed(12)])));
    b.output("reshape_sum", (x.reshape(Shape::new([EVENTS, Dim::Fixed(12)])) * 2.0).sum(&[1]));
    b.output("broadcast", w.broadcast_to(Shape::new([EVENTS, Dim::Fixed(3), Dim::Fixed(4)])) * x);
    b.output("sum_events", (x * w).sum(&[0]));
    b.output("sum_inner", x.square().sum(&[1, 2]));
    b.output("sum_all", (x - 1.0).sum_all());
    b.output("max_last", x.max(&[2]));
    b.output("max_all", x.max(&[0, 1, 2]));
    b.output("cast", (x.cast(DType::F32) * 3.0).cast(DType::F64));
    b.output("mean", x.mean(&[0]));
    let outs = [
        "transpose",
        "slice",
        "pad",
        "concat",
        "reshape",
        "reshape_sum",
        "broadcast",
        "sum_events",
        "sum_inner",
        "sum_all",
        "max_last",
        "max_all",
        "cast",
        "mean",
    ];
    case("indexing", b, &[("all", &outs)], (-2.0, 2.0))
}

/// A 2 → 8 → 8 → 1 network with a sigmoid output and a binary cross-entropy loss against a
/// label input: its value, and its gradient with respect to every weight and the inputs.
fn mlp(name: &'static str, dtype: DType) -> Case {
    let b = Builder::new();
    let x = b.input("x", dtype, events(2));
    let y = b.input("y", dtype, events(1));
    let (w1, b1) = (b.param("w1", dtype, [2, 8]), b.param("b1", dtype, [8]));
    let (w2, b2) = (b.param("w2", dtype, [8, 8]), b.param("b2", dtype, [8]));
    let (w3, b3) = (b.param("w3", dtype, [8, 1]), b.param("b3", dtype, [1]));
    let h = (x.matmul(w1) + b1).relu();
    let h = (h.matmul(w2) + b2).tanh();
    let p = (h.matmul(w3) + b3).sigmoid();
    let loss = -(y * p.log() + (1.0 - y) * (1.0 - p).log()).mean(&[0, 1]);
    b.output("loss", loss);
    b.output("p", p);
    let grads = grad_in(&b, loss, &[w1, b1, w2, b2, w3, b3, x]).unwrap_or_default();
    let names = ["g_w1", "g_b1", "g_w2", "g_b2", "g_w3", "g_b3", "g_x"];
    for (n, g) in names.iter().zip(&grads) {
        b.output(n, *g);
    }
    let mut vg = vec!["loss"];
    vg.extend(names);
    case(name, b, &[("forward", &["loss", "p"]), ("value_and_grad", &vg)], (0.05, 0.95))
}

/// The network of the neos paper, 2 → 1024 → 1024 → 1 with relu and a sigmoid output, under a
/// binary cross-entropy: compiled for the benchmark of one forward and backward pass.
fn paper_mlp(name: &'static str, dtype: DType) -> Case {
    let b = Builder::new();
    let x = b.input("x", dtype, events(2));
    let y = b.input("y", dtype, events(1));
    let (w1, b1) = (b.param("w1", dtype, [2, 1024]), b.param("b1", dtype, [1024]));
    let (w2, b2) = (b.param("w2", dtype, [1024, 1024]), b.param("b2", dtype, [1024]));
    let (w3, b3) = (b.param("w3", dtype, [1024, 1]), b.param("b3", dtype, [1]));
    let h = (x.matmul(w1) + b1).relu();
    let h = (h.matmul(w2) + b2).relu();
    let p = (h.matmul(w3) + b3).sigmoid();
    let loss = -(y * p.log() + (1.0 - y) * (1.0 - p).log()).mean(&[0, 1]);
    b.output("loss", loss);
    let grads = grad_in(&b, loss, &[w1, b1, w2, b2, w3, b3]).unwrap_or_default();
    let names = ["g_w1", "g_b1", "g_w2", "g_b2", "g_w3", "g_b3"];
    for (n, g) in names.iter().zip(&grads) {
        b.output(n, *g);
    }
    let mut vg = vec!["loss"];
    vg.extend(names);
    case(name, b, &[("forward", &["loss"]), ("value_and_grad", &vg)], (-1.0, 1.0))
}

/// The kernel density histogram, with and without reflection, and its derivatives with
/// respect to the values, the edges and the bandwidth.
fn hist() -> Case {
    let b = Builder::new();
    let t = b.input("t", DType::F64, Shape::new([EVENTS]));
    let inner = b.param("inner", DType::F64, [3]);
    let h = b.param("h", DType::F64, Shape::scalar());
    let edges = b.neos_edges(inner, 0.0, 1.0);
    let weights = b.constant(ndarray::arr1(&[1.0, -2.0, 3.0, 0.5]).into_dyn(), DType::F64);
    let counts = t.hist(edges, h, false);
    let reflected = t.hist(edges, h, true);
    let loss = (counts * weights).sum_all() + (reflected * reflected).sum_all();
    b.output("counts", counts);
    b.output("reflected", reflected);
    b.output("loss", loss);
    let grads = grad_in(&b, loss, &[t, inner, h]).unwrap_or_default();
    for (n, g) in ["g_t", "g_inner", "g_h"].iter().zip(&grads) {
        b.output(n, *g);
    }
    case("hist", b, &[("all", &["counts", "reflected", "loss", "g_t", "g_inner", "g_h"])], (0.1, 0.9))
}

#[derive(Clone, Copy)]
enum Metric {
    Cls,
    Discovery,
    PoiUncert,
}

fn yields_case(name: &'static str, bins: usize, metric: Metric, restarts: bool) -> Case {
    let b = Builder::new();
    let names = ["sig", "bkg", "bkg_up", "bkg_down"];
    let yields: Vec<Tensor<'_>> = names.iter().map(|n| b.param(n, DType::F64, [bins])).collect();
    let value = {
        let mut inference = match neos_model(&yields).and_then(Inference::new) {
            Ok(i) => i,
            Err(e) => panic!("case `{name}`: {e}"),
        };
        inference.restarts = restarts;
        let value = match metric {
            Metric::Cls => inference.neos_cls(1.0),
            Metric::Discovery => inference.neos_discovery(),
            Metric::PoiUncert => inference.poi_uncert(),
        };
        match value {
            Ok(v) => v,
            Err(e) => panic!("case `{name}`: {e}"),
        }
    };
    b.output("value", value);
    let grads = grad_in(&b, value, &yields).unwrap_or_default();
    let gnames = ["g_sig", "g_bkg", "g_bkg_up", "g_bkg_down"];
    for (n, g) in gnames.iter().zip(&grads) {
        b.output(n, *g);
    }
    let mut vg = vec!["value"];
    vg.extend(gnames);
    case(name, b, &[("forward", &["value"]), ("value_and_grad", &vg)], (1.0, 2.0))
}

/// The neos `cls` metric of the 4-bin model of the paper, through its fits, and its gradient
/// with respect to every yield.
pub fn cls_4bin() -> Case {
    yields_case("cls_4bin", 4, Metric::Cls, true)
}

/// The same with one start per fit, as pyhf and neos fit.
pub fn cls_4bin_single() -> Case {
    yields_case("cls_4bin_single", 4, Metric::Cls, false)
}

/// The discovery significance and the POI uncertainty of the same model.
fn discovery_4bin() -> Case {
    yields_case("discovery_4bin", 4, Metric::Discovery, true)
}

fn poi_uncert_4bin() -> Case {
    yields_case("poi_uncert_4bin", 4, Metric::PoiUncert, true)
}

/// The counting experiment's model: signal × μ and a background with a ±10% normsys.
fn counting_model<'s>(b: &'s Builder, t: &[Tensor<'s>]) -> Result<Model<'s>> {
    let (hi, lo) = (b.scalar(1.1, DType::F64), b.scalar(0.9, DType::F64));
    Model::new(Spec {
        channels: vec![Channel::new(
            "counting",
            vec![
                Sample::new("signal", t[0], vec![Modifier::normfactor("mu")]),
                Sample::new("background", t[1], vec![Modifier::normsys("bkg_norm", hi, lo)]),
            ],
        )],
        poi: Some(("mu".into(), Default::default())),
        ..Spec::default()
    })
}

/// A one-bin counting experiment, signal × μ over a background with a 10% normsys, and its
/// CLs: small enough to read its generated code.
pub fn counting_cls() -> Case {
    let b = Builder::new();
    let s = b.param("s", DType::F64, [1]);
    let bkg = b.param("b", DType::F64, [1]);
    let value = {
        let inference = match counting_model(&b, &[s, bkg]).and_then(Inference::new) {
            Ok(i) => i,
            Err(e) => panic!("case `counting_cls`: {e}"),
        };
        match inference.neos_cls(1.0) {
            Ok(v) => v,
            Err(e) => panic!("case `counting_cls`: {e}"),
        }
    };
    b.output("cls", value);
    let grads = grad_in(&b, value, &[s, bkg]).unwrap_or_default();
    b.output("g_s", grads[0]);
    b.output("g_b", grads[1]);
    case("counting_cls", b, &[("forward", &["cls"]), ("value_and_grad", &["cls", "g_s", "g_b"])], (0.0, 0.0))
}

/// The whole pipeline on a small network: events → network → histograms → yields → fits →
/// cls, with the gradient with respect to the weights and the inner bin edges.
fn pipeline() -> Case {
    let b = Builder::new();
    let (w1, b1) = (b.param("w1", DType::F64, [2, 6]), b.param("b1", DType::F64, [6]));
    let (w2, b2) = (b.param("w2", DType::F64, [6, 1]), b.param("b2", DType::F64, [1]));
    let inner = b.param("inner", DType::F64, [3]);
    let bandwidth = b.knob("bandwidth", DType::F64, 0.2);
    let edges = b.neos_edges(inner, 0.0, 1.0);
    let mut yields = Vec::new();
    // Each sample is an events group of its own, so the checks run it on samples of unequal sizes.
    let samples = [("sig", 20.0), ("bkg", 100.0), ("bkg_up", 100.0), ("bkg_down", 100.0)];
    for (group, (blob, scale)) in (0u16..).zip(samples) {
        let x = b.input(blob, DType::F64, Shape::new([Dim::Events(group), Dim::Fixed(2)]));
        let out = ((x.matmul(w1) + b1).relu().matmul(w2) + b2).sigmoid().reshape(Shape::new([Dim::Events(group)]));
        yields.push(out.hist(edges, bandwidth, false).neos_yields(out, b.scalar(scale, DType::F64)));
    }
    let value = {
        let inference = match neos_model(&yields).and_then(Inference::new) {
            Ok(i) => i,
            Err(e) => panic!("case `pipeline`: {e}"),
        };
        match inference.neos_cls(1.0) {
            Ok(v) => v,
            Err(e) => panic!("case `pipeline`: {e}"),
        }
    };
    b.output("cls", value);
    let grads = grad_in(&b, value, &[w1, b1, w2, b2, inner]).unwrap_or_default();
    let names = ["g_w1", "g_b1", "g_w2", "g_b2", "g_inner"];
    for (n, g) in names.iter().zip(&grads) {
        b.output(n, *g);
    }
    let mut vg = vec!["cls"];
    vg.extend(names);
    case("pipeline", b, &[("value_and_grad", &vg)], (-1.5, 1.5))
}

/// Every case, in a fixed order.
pub fn all() -> Vec<Case> {
    vec![
        unary("unary_f64", DType::F64),
        unary("unary_f32", DType::F32),
        unary_wide(),
        binary(),
        indexing(),
        mlp("mlp_f64", DType::F64),
        mlp("mlp_f32", DType::F32),
        hist(),
        cls_4bin(),
        cls_4bin_single(),
        discovery_4bin(),
        poi_uncert_4bin(),
        counting_cls(),
        pipeline(),
        paper_mlp("paper_mlp_f32", DType::F32),
        paper_mlp("paper_mlp_f64", DType::F64),
    ]
}
