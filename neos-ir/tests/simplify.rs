//! The simplifier: targeted rules, and a property test that random expression graphs keep
//! their values.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use ndarray::{ArrayD, IxDyn};
use neos_ir::{
    eval, eval_outputs, print, simplify, verify, Bindings, Builder, DType, Dim, Graph, Shape, SimplifyLimits,
    SimplifyReport, Tensor, EVENTS,
};
use proptest::prelude::*;

fn arr(shape: &[usize], values: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap()
}

/// Simplifies with the default limits, checks invariants, and returns the printed result.
fn check(graph: &Graph) -> (Graph, SimplifyReport, String) {
    verify(graph).unwrap();
    let (simplified, report) = simplify(graph, &SimplifyLimits::default()).unwrap();
    verify(&simplified).unwrap();
    let text = print(&simplified);
    (simplified, report, text)
}

fn one_output(f: impl for<'b> Fn(&'b Builder) -> Tensor<'b>) -> Graph {
    let b = Builder::new();
    let y = f(&b);
    b.output("y", y);
    b.finish().unwrap()
}

#[test]
fn identities_disappear() {
    let g = one_output(|b| {
        let x = b.param("x", DType::F64, [3]);
        -(-(x * 1.0 + 0.0)) / 1.0
    });
    let (_, report, text) = check(&g);
    assert_eq!(report.nodes_after, 1, "{text}");
    assert!(text.contains("param \"x\""), "{text}");
}

#[test]
fn constants_fold_through_broadcasts_and_functions() {
    let g = one_output(|b| {
        let x = b.param("x", DType::F64, [2]);
        let c = (b.scalar(2.0, DType::F64).exp().log() * 3.0).broadcast_to([2]);
        x * c
    });
    let (s, report, text) = check(&g);
    // What is left is x · broadcast(6): the IR needs the explicit broadcast.
    assert_eq!(report.nodes_after, 4, "{text}");
    assert!(text.contains("const 6.0"), "{text}");
    let out = eval(&s, &Bindings::new().with("x", arr(&[2], &[1.0, -2.0])), &[s.output("y").unwrap()]).unwrap();
    assert_eq!(out[0].as_slice().unwrap(), &[6.0, -12.0]);
}

#[test]
fn multiplying_by_zero_keeps_nan_semantics() {
    // x may be infinite, so x·0 must stay; sigmoid(c)·0 with a finite c is 0.
    let g = one_output(|b| {
        let x = b.param("x", DType::F64, [2]);
        x * 0.0 + b.scalar(0.3, DType::F64).sigmoid() * 0.0
    });
    let (s, _, text) = check(&g);
    assert!(text.contains("mul"), "x·0 was folded: {text}");
    let out =
        eval(&s, &Bindings::new().with("x", arr(&[2], &[f64::INFINITY, 1.0])), &[s.output("y").unwrap()]).unwrap();
    assert!(out[0][[0]].is_nan(), "∞·0 must stay NaN");
    assert_eq!(out[0][[1]], 0.0);
}

#[test]
fn one_minus_normal_cdf_becomes_the_accurate_tail() {
    let g = one_output(|b| {
        let x = b.param("x", DType::F64, Shape::scalar());
        1.0 - x.norm_cdf()
    });
    let (s, _, text) = check(&g);
    let at8 = Bindings::new().with("x", arr(&[], &[8.0]));
    let before = eval(&g, &at8, &[g.output("y").unwrap()]).unwrap()[0].sum();
    let after = eval(&s, &at8, &[s.output("y").unwrap()]).unwrap()[0].sum();
    let exact = 6.220960574271819e-16;
    assert!((before - exact).abs() > 0.05 * exact, "1 − Φ(8) cancels in f64, found {before}");
    assert!((after - exact).abs() < 1e-15 * exact, "{after}: {text}");
}

#[test]
fn broadcasts_move_below_elementwise_functions() {
    let g = one_output(|b| {
        let x = b.param("x", DType::F64, [4]);
        x.broadcast_to(Shape::new([EVENTS, Dim::Fixed(4)])).exp().sum(&[0])
    });
    let (_, report, text) = check(&g);
    assert!(report.cost_after < report.cost_before, "{report}\n{text}");
    let exp_line = text.lines().find(|l| l.contains("= exp")).unwrap();
    assert!(exp_line.ends_with("f64[4]"), "exp should run on the 4 source values: {text}");
}

#[test]
fn simplification_is_deterministic() {
    let g = mlp_gradient_graph().0;
    let a = print(&check(&g).0);
    let b = print(&check(&g).0);
    assert_eq!(a, b);
}

/// The gradient of a small MLP's binary cross-entropy loss w.r.t. all its weights.
fn mlp_gradient_graph() -> (Graph, Vec<&'static str>) {
    let b = Builder::new();
    let x = b.input("x", DType::F64, Shape::new([EVENTS, Dim::Fixed(2)]));
    let y = b.input("y", DType::F64, Shape::new([EVENTS, Dim::Fixed(1)]));
    let w1 = b.param("w1", DType::F64, [2, 8]);
    let b1 = b.param("b1", DType::F64, [8]);
    let w2 = b.param("w2", DType::F64, [8, 8]);
    let b2 = b.param("b2", DType::F64, [8]);
    let w3 = b.param("w3", DType::F64, [8, 1]);
    let b3 = b.param("b3", DType::F64, [1]);
    let h = (x.matmul(w1) + b1).relu();
    let h = (h.matmul(w2) + b2).relu();
    let p = (h.matmul(w3) + b3).sigmoid();
    let loss = (-(y * p.log() + (1.0 - y) * (1.0 - p).log())).mean(&[0, 1]);
    let names = vec!["w1", "b1", "w2", "b2", "w3", "b3"];
    let wrt: Vec<Tensor<'_>> = names.iter().map(|n| b.leaf(n).unwrap()).collect();
    let grads = neos_ir::grad_in(&b, loss, &wrt).unwrap();
    b.output("loss", loss);
    for (n, g) in names.iter().zip(grads) {
        b.output(&format!("d_{n}"), g);
    }
    (b.finish().unwrap(), names)
}

fn mlp_bindings(events: usize) -> Bindings {
    let mut bindings = Bindings::new();
    let fill = |shape: &[usize], seed: usize| {
        let n: usize = shape.iter().product();
        arr(shape, &(0..n).map(|i| (((i + seed) * 7919 % 200) as f64 - 100.0) / 150.0).collect::<Vec<_>>())
    };
    bindings.set("x", fill(&[events, 2], 1));
    bindings.set("y", arr(&[events, 1], &(0..events).map(|i| (i % 2) as f64).collect::<Vec<_>>()));
    for (name, shape, seed) in [
        ("w1", vec![2, 8], 2),
        ("b1", vec![8], 3),
        ("w2", vec![8, 8], 4),
        ("b2", vec![8], 5),
        ("w3", vec![8, 1], 6),
        ("b3", vec![1], 7),
    ] {
        bindings.set(name, fill(&shape, seed));
    }
    bindings
}

fn assert_same_outputs(a: &Graph, b: &Graph, bindings: &Bindings, rtol: f64) {
    let va = eval_outputs(a, bindings).unwrap();
    let vb = eval_outputs(b, bindings).unwrap();
    assert_eq!(va.keys().collect::<Vec<_>>(), vb.keys().collect::<Vec<_>>());
    for (name, x) in &va {
        let y = &vb[name];
        assert_eq!(x.shape(), y.shape(), "{name}");
        for (p, q) in x.iter().zip(y.iter()) {
            let same = (p.is_nan() && q.is_nan()) || p == q || (p - q).abs() <= rtol * p.abs().max(q.abs()).max(1e-300);
            assert!(same, "{name}: {p} vs {q}");
        }
    }
}

/// The snapshot text: the node counts and cost before and after, and the simplified graph.
fn summary(report: &SimplifyReport, text: &str) -> String {
    format!(
        "raw: {} live nodes, cost {:.4e}\nsimplified: {} live nodes, cost {:.4e}\nstop: {}\n\n{}",
        report.nodes_before, report.cost_before, report.nodes_after, report.cost_after, report.stop_reason, text
    )
}

#[test]
fn mlp_gradient_simplifies_and_keeps_its_values() {
    let (g, _) = mlp_gradient_graph();
    let (s, report, text) = check(&g);
    // Here the cheapest terms do not add up to a cheaper graph (shared subterms count once per
    // use in extraction), so the input is kept: never a dearer graph.
    assert!(report.cost_after <= report.cost_before, "{report}");
    assert!(!report.fired.is_empty(), "{report}");
    assert_same_outputs(&g, &s, &mlp_bindings(5), 1e-12);
    insta::assert_snapshot!("mlp_loss_gradient", summary(&report, &text));
}

#[test]
fn mlp_hessian_vector_product_simplifies_and_keeps_its_values() {
    let (mut g, names) = mlp_gradient_graph();
    let wrt: Vec<_> = names.iter().map(|n| g.find_leaf(n).unwrap()).collect();
    let mut bindings = mlp_bindings(5);
    let dirs: Vec<_> = wrt
        .iter()
        .zip(&names)
        .map(|(&w, n)| {
            let shape = g.ty(w).shape.clone();
            let dims = shape.resolve(0);
            let len: usize = dims.iter().product();
            bindings.set(
                &format!("v_{n}"),
                arr(&dims, &(0..len).map(|i| ((i * 5 % 7) as f64 - 3.0) / 4.0).collect::<Vec<_>>()),
            );
            g.input(&format!("v_{n}"), DType::F64, shape).unwrap()
        })
        .collect();
    let loss = g.output("loss").unwrap();
    let hv = neos_ir::hvp(&mut g, loss, &wrt, &dirs).unwrap();
    let mut hvp_graph = g.clone();
    for (n, h) in names.iter().zip(hv) {
        hvp_graph.set_output(&format!("hv_{n}"), h).unwrap();
    }
    let (s, report, text) = check(&hvp_graph);
    assert!(report.nodes_after < report.nodes_before, "{report}");
    assert_same_outputs(&hvp_graph, &s, &bindings, 1e-10);
    insta::assert_snapshot!("mlp_loss_hvp", summary(&report, &text));
}

/// A random expression over three leaves of shapes [events, 3], [3] and [] (so broadcasts
/// and reductions appear), kept in domains where every op is finite.
#[derive(Clone, Debug)]
enum E {
    Leaf(usize),
    Const(f64),
    Unary(usize, Box<E>),
    Binary(usize, Box<E>, Box<E>),
    Select(Box<E>, Box<E>, Box<E>),
    SumRows(Box<E>),
}

fn expr() -> impl Strategy<Value = E> {
    let leaf = prop_oneof![
        (0usize..3).prop_map(E::Leaf),
        prop_oneof![Just(0.0), Just(1.0), Just(-1.0), Just(2.0), Just(0.5), -3.0..3.0f64].prop_map(E::Const),
    ];
    leaf.prop_recursive(5, 40, 3, |inner| {
        prop_oneof![
            (0usize..10, inner.clone()).prop_map(|(k, a)| E::Unary(k, Box::new(a))),
            (0usize..7, inner.clone(), inner.clone()).prop_map(|(k, a, b)| E::Binary(k, Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, a, b)| E::Select(
                Box::new(c),
                Box::new(a),
                Box::new(b)
            )),
            inner.prop_map(|a| E::SumRows(Box::new(a))),
        ]
    })
}

fn lower<'b>(b: &'b Builder, leaves: &[Tensor<'b>], e: &E) -> Tensor<'b> {
    match e {
        E::Leaf(i) => leaves[*i],
        E::Const(c) => b.scalar(*c, DType::F64),
        E::Unary(k, a) => {
            // Squash into a safe range first so exp, log and friends stay finite.
            let a = lower(b, leaves, a).tanh() * 2.0;
            match k {
                0 => -a,
                1 => a.exp(),
                2 => (a * a + 1.0).log(),
                3 => a.sigmoid(),
                4 => a.norm_cdf(),
                5 => a.norm_pdf(),
                6 => a.abs(),
                7 => (a * a + 0.5).sqrt(),
                8 => a.relu(),
                _ => 1.0 - a.norm_cdf(),
            }
        }
        E::Binary(k, x, y) => {
            let (x, y) = (lower(b, leaves, x), lower(b, leaves, y));
            match k {
                0 => x + y,
                1 => x - y,
                2 => x * y,
                3 => x / (y.tanh().abs() + 1.0),
                4 => x.maximum(y),
                5 => x.minimum(y),
                _ => x * 0.0 + y * 1.0,
            }
        }
        E::Select(c, x, y) => {
            let (c, x, y) = (lower(b, leaves, c), lower(b, leaves, x), lower(b, leaves, y));
            b.select(c.gt(b.scalar(0.0, DType::F64)), x, y)
        }
        E::SumRows(a) => {
            let a = lower(b, leaves, a);
            if a.shape().rank() > 0 {
                a.sum(&[0])
            } else {
                a
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Tolerance: rewriting reassociates floating-point sums and products, so values agree to
    /// a relative 1e-9 (or 1e-12 absolute for results near zero).
    #[test]
    fn random_graphs_keep_their_values(e in expr(), seed in 0u64..1000) {
        let b = Builder::new();
        let leaves = [
            b.input("a", DType::F64, Shape::new([EVENTS, Dim::Fixed(3)])),
            b.param("p", DType::F64, [3]),
            b.knob("k", DType::F64, 0.7),
        ];
        let y = lower(&b, &leaves, &e);
        b.output("y", y.sum_all());
        b.output("v", y);
        let g = b.finish().unwrap();
        let limits = SimplifyLimits { iterations: 6, nodes: 5_000, ..SimplifyLimits::default() };
        let (s, report) = simplify(&g, &limits).unwrap();
        verify(&s).unwrap();
        // Simplification never makes a graph dearer by its own cost model.
        prop_assert!(report.cost_after <= report.cost_before, "{}", report);
        let v = |i: u64| ((i.wrapping_mul(2654435761).wrapping_add(seed * 97)) % 1000) as f64 / 250.0 - 2.0;
        let bindings = Bindings::new()
            .with("a", arr(&[4, 3], &(0..12).map(v).collect::<Vec<_>>()))
            .with("p", arr(&[3], &(20..23).map(v).collect::<Vec<_>>()));
        let before = eval_outputs(&g, &bindings).unwrap();
        let after = eval_outputs(&s, &bindings).unwrap();
        for (name, x) in &before {
            let y = &after[name];
            prop_assert_eq!(x.shape(), y.shape());
            for (p, q) in x.iter().zip(y.iter()) {
                let ok = (p.is_nan() && q.is_nan()) || (p - q).abs() <= 1e-12 + 1e-9 * p.abs().max(q.abs());
                prop_assert!(ok, "{}: {} vs {}\n{}", name, p, q, print(&s));
            }
        }
    }
}

/// Graphs whose value the simplifier once changed or on which it never returned; each must
/// evaluate the same before and after (NaN matching NaN).
#[test]
fn edge_values_keep_their_semantics() {
    type Case = (&'static str, fn(&Builder) -> Tensor<'_>, f64);
    // Products that overflow are outside the contract (reassociation alone changes them), so
    // the cases are NaN constants, signed zeros, narrowing casts and empty axes.
    let cases: [Case; 5] = [
        ("nan constant", |b| b.param("x", DType::F64, [1]) + b.scalar(f64::NAN, DType::F64) * 1.0, 1.0),
        ("relu of a negative, inverted", |b| b.param("x", DType::F64, [1]).relu().recip().log().exp(), -1.0),
        (
            "narrowing overflow times zero",
            |b| b.param("x", DType::F64, [1]) + b.scalar(1e300, DType::F64).cast(DType::F32).cast(DType::F64) * 0.0,
            1.0,
        ),
        (
            "maximum over an empty axis",
            |b| b.param("x", DType::F64, [1]) + b.scalar(5.0, DType::F64).broadcast_to([0]).max(&[0]),
            1.0,
        ),
        ("square root of −∞ by pow", |b| b.param("x", DType::F64, [1]).powf(0.5), f64::NEG_INFINITY),
    ];
    for (label, f, x) in cases {
        let b = Builder::new();
        let y = f(&b);
        b.output("y", y);
        let g = b.finish().unwrap();
        let (s, _) = simplify(&g, &SimplifyLimits::default()).unwrap();
        let bindings = Bindings::new().with("x", arr(&[1], &[x]));
        let before = eval(&g, &bindings, &[g.output("y").unwrap()]).unwrap()[0].clone();
        let after = eval(&s, &bindings, &[s.output("y").unwrap()]).unwrap()[0].clone();
        for (p, q) in before.iter().zip(after.iter()) {
            assert!(
                p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()) || p == q,
                "{label}: {p} before, {q} after"
            );
        }
    }
}

#[test]
fn foreign_handles_are_errors_not_panics() {
    let mut g = one_output(|b| b.param("x", DType::F64, [1]).exp().sum_all());
    let other = one_output(|b| {
        let a = b.param("a", DType::F64, [1]);
        (a * 2.0 + 1.0).exp().sum_all()
    });
    let foreign = other.output("y").unwrap();
    let y = g.output("y").unwrap();
    assert!(matches!(neos_ir::grad(&mut g, y, &[foreign]), Err(neos_ir::IrError::UnknownNode { .. })));
    let (b1, b2) = (Builder::new(), Builder::new());
    let (p, q) = (b1.param("p", DType::F64, [1]), b2.param("q", DType::F64, [1]));
    let _ = p + q;
    let err = b1.finish().unwrap_err().to_string();
    assert!(err.contains("expected operands from this builder"), "{err}");
    assert!("(add 1€1 2)".parse::<egg::RecExpr<neos_ir::simplify::Expr>>().is_err());
}
