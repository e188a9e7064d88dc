//! Every differentiable operation's symbolic derivative against central finite differences,
//! at grids of points that include zero, negative, small and large values, in f64. Each
//! unary operation is also checked to second order, which exercises differentiating the
//! gradient graph itself.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use ndarray::{ArrayD, IxDyn};
use neos_ir::{
    eval, grad, gradcheck, hessian, hvp, BinaryOp, Bindings, Builder, DType, Dim, GradCheck, Graph, Op, Shape, Tensor,
    UnaryOp, EVENTS,
};

fn arr(shape: &[usize], values: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap()
}

/// Deterministic, distinct weights so that each output element contributes differently.
fn weights(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.3 + 0.17 * i as f64 - 0.05 * (i * i % 7) as f64).collect()
}

/// Builds `loss = Σ w ⊙ f(leaves…)` and checks its gradient w.r.t. `wrt`; returns the graph.
fn check(
    label: &str,
    leaves: &[(&str, &[usize], &[f64])],
    wrt: &[&str],
    opts: GradCheck,
    f: impl for<'b> Fn(&'b Builder, &[Tensor<'b>]) -> Tensor<'b>,
) -> Graph {
    let b = Builder::new();
    let mut bindings = Bindings::new();
    let ts: Vec<Tensor<'_>> = leaves
        .iter()
        .map(|(name, shape, values)| {
            bindings.set(name, arr(shape, values));
            b.param(name, DType::F64, Shape::fixed(shape))
        })
        .collect();
    let y = f(&b, &ts);
    let n = y.shape().fixed_numel();
    let w = b.constant(arr(&y.shape().resolve(0), &weights(n)), DType::F64);
    let loss = (y * w).sum_all();
    b.output("loss", loss);
    let graph = b.finish().unwrap_or_else(|e| panic!("{label}: {e}"));
    neos_ir::verify(&graph).unwrap();
    let report = gradcheck(&graph, graph.output("loss").unwrap(), wrt, &bindings, opts).unwrap();
    assert!(report.passed(), "{label}: {report}");
    assert!(report.checked > 0, "{label}: nothing was checked");
    graph
}

/// The points each unary op is checked at: its domain, with its edges but not its kinks.
fn unary_grid(op: UnaryOp) -> Vec<f64> {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Lgamma | UnaryOp::Polygamma(_) => {
            vec![1e-3, 0.05, 0.5, 1.0, 2.5, 7.0, 30.0, 1e3]
        }
        UnaryOp::Recip => vec![-50.0, -2.0, -0.3, 0.01, 0.2, 1.0, 4.0, 1e3],
        UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Sign => vec![-1e3, -5.0, -0.5, -1e-3, 1e-3, 0.5, 5.0, 1e3],
        UnaryOp::Exp => vec![-30.0, -3.0, -0.5, 0.0, 0.5, 2.0, 5.0, 12.0],
        UnaryOp::Neg | UnaryOp::Sigmoid | UnaryOp::Tanh | UnaryOp::Softplus | UnaryOp::NormCdf | UnaryOp::NormPdf => {
            vec![-40.0, -8.0, -1.5, -0.25, 0.0, 0.7, 3.0, 40.0]
        }
    }
}

#[test]
fn unary_ops_first_and_second_derivatives() {
    // Each point is checked on its own so that a large value elsewhere on the grid cannot
    // swamp its finite difference. Near the smallest arguments of lgamma and digamma the
    // function is steep, which the absolute tolerance allows for.
    let opts = GradCheck { eps: 1e-7, rtol: 1e-5, atol: 1e-6 };
    for op in UnaryOp::ALL {
        for x0 in unary_grid(op) {
            let label = format!("{} at {x0}", op.name());
            let mut graph =
                check(&label, &[("x", &[1], &[x0])], &["x"], opts, move |b, t| b.apply(Op::Unary(op), &[t[0]]));

            // Second order: the derivative of the gradient graph itself.
            let x = graph.find_leaf("x").unwrap();
            let loss = graph.output("loss").unwrap();
            let g = grad(&mut graph, loss, &[x]).unwrap()[0];
            let b = Builder::from_graph(graph);
            let dot = b.tensor(g).sum_all();
            b.output("dot", dot);
            let graph = b.finish().unwrap();
            neos_ir::verify(&graph).unwrap();
            let bindings = Bindings::new().with("x", arr(&[1], &[x0]));
            let report = gradcheck(&graph, graph.output("dot").unwrap(), &["x"], &bindings, opts).unwrap();
            assert!(report.passed(), "second derivative of {label}: {report}");
        }
    }
}

#[test]
fn binary_ops() {
    let u = [-3.0, -0.5, 0.0, 0.25, 1.5, 4.0, 100.0];
    let v = [2.0, -1.5, 0.75, -2.0, 0.5, 3.0, -7.0];
    let positive = [0.01, 0.5, 1.0, 1.5, 3.0, 10.0, 100.0];
    let exponents = [-2.0, 0.5, 0.0, 1.0, 2.5, -0.3, 1.1];
    let opts = GradCheck::default();
    for op in BinaryOp::ALL {
        let (a, c): (&[f64], &[f64]) = match op {
            BinaryOp::Pow => (&positive, &exponents),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Max | BinaryOp::Min => (&u, &v),
        };
        check(op.name(), &[("u", &[7], a), ("v", &[7], c)], &["u", "v"], opts, move |_, t| t[0].binary(op, t[1]));
    }
}

#[test]
fn compare_and_select() {
    let u = [-2.0, -0.5, 0.3, 1.0, 4.0];
    let v = [1.0, -1.0, 0.2, 3.0, -4.0];
    check("select", &[("u", &[5], &u), ("v", &[5], &v)], &["u", "v"], GradCheck::default(), |b, t| {
        b.select(t[0].gt(t[1]), t[0] * t[0], t[1] * 3.0) + t[0].le(t[1]) + t[0].ne(t[1]) * 0.5
    });
}

#[test]
fn matmul_transpose_and_broadcast() {
    let a: Vec<f64> = (0..6).map(|i| 0.1 * i as f64 - 0.2).collect();
    let m: Vec<f64> = (0..12).map(|i| (i as f64 * 0.37).sin()).collect();
    let bias = [0.5, -1.0, 2.0, 0.0];
    let opts = GradCheck::default();
    check("matmul", &[("a", &[2, 3], &a), ("m", &[3, 4], &m), ("c", &[4], &bias)], &["a", "m", "c"], opts, |_, t| {
        t[0].matmul(t[1]) + t[2]
    });
    check("transpose", &[("m", &[3, 4], &m)], &["m"], opts, |_, t| t[0].t().matmul(t[0]));
    check("transpose3", &[("m", &[2, 3, 2], &m)], &["m"], opts, |_, t| t[0].transpose(vec![2, 0, 1]).exp());
    check("broadcast", &[("c", &[4], &bias), ("s", &[3, 1], &a[..3])], &["c", "s"], opts, |_, t| {
        (t[0] * t[1]).broadcast_to([2, 3, 4])
    });
}

#[test]
fn reshape_slice_pad_concat_stack() {
    let m: Vec<f64> = (0..12).map(|i| (i as f64 * 0.71).cos()).collect();
    let opts = GradCheck::default();
    check("reshape", &[("m", &[3, 4], &m)], &["m"], opts, |_, t| t[0].reshape([2, 6]).sigmoid());
    check("slice", &[("m", &[3, 4], &m)], &["m"], opts, |_, t| t[0].slice(1, 1..3).square());
    check("index", &[("m", &[3, 4], &m)], &["m"], opts, |_, t| t[0].index(0, 2).exp());
    check("pad", &[("m", &[3, 4], &m)], &["m"], opts, |_, t| t[0].pad(0, 2, 1).tanh());
    check("concat", &[("m", &[3, 4], &m), ("n", &[3, 2], &m[..6])], &["m", "n"], opts, |b, t| {
        b.concat(&[t[1], t[0], t[1]], 1).square()
    });
    check("stack", &[("m", &[3, 4], &m)], &["m"], opts, |b, t| b.stack(&[t[0], t[0].exp()], 1).square());
}

#[test]
fn reductions_and_casts() {
    let m: Vec<f64> = (0..24).map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.3).collect();
    let opts = GradCheck::default();
    check("sum", &[("m", &[2, 3, 4], &m)], &["m"], opts, |_, t| t[0].square().sum(&[0, 2]));
    check("sum-all", &[("m", &[2, 3, 4], &m)], &["m"], opts, |_, t| t[0].exp().sum_all());
    check("mean", &[("m", &[2, 3, 4], &m)], &["m"], opts, |_, t| t[0].square().mean(&[1]));
    check("reduce-max", &[("m", &[2, 3, 4], &m)], &["m"], opts, |_, t| t[0].max(&[1]));
    check("reduce-max-all", &[("m", &[2, 3, 4], &m)], &["m"], opts, |_, t| t[0].max(&[0, 1, 2]));
    // Ties share the adjoint; a finite difference cannot see a tie, so only check the split.
    let mut g = {
        let b = Builder::new();
        let x = b.param("x", DType::F64, [3]);
        b.output("m", x.max(&[0]));
        b.finish().unwrap()
    };
    let x = g.find_leaf("x").unwrap();
    let max_out = g.output("m").unwrap();
    let dx = grad(&mut g, max_out, &[x]).unwrap()[0];
    let tied = eval(&g, &Bindings::new().with("x", arr(&[3], &[2.0, 2.0, 1.0])), &[dx]).unwrap();
    assert_eq!(tied[0].as_slice().unwrap(), &[0.5, 0.5, 0.0]);
    // f32 has a 6e-8 relative rounding, so a wide step and a loose tolerance.
    let loose = GradCheck { eps: 1e-2, rtol: 1e-4, atol: 1e-4 };
    check("cast", &[("m", &[2, 3, 4], &m)], &["m"], loose, |_, t| (t[0].cast(DType::F32) * 3.0).cast(DType::F64));
}

/// A two-layer network with an events dimension, a binary cross-entropy loss, and both the
/// data and the weights as differentiation targets.
fn mlp_loss(b: &Builder) -> Tensor<'_> {
    let x = b.input("x", DType::F64, Shape::new([EVENTS, Dim::Fixed(2)]));
    let y = b.input("y", DType::F64, Shape::new([EVENTS, Dim::Fixed(1)]));
    let w1 = b.param("w1", DType::F64, [2, 5]);
    let b1 = b.param("b1", DType::F64, [5]);
    let w2 = b.param("w2", DType::F64, [5, 1]);
    let b2 = b.param("b2", DType::F64, [1]);
    let p = ((x.matmul(w1) + b1).relu().matmul(w2) + b2).sigmoid();
    let bce = -(y * p.log() + (1.0 - y) * (1.0 - p).log());
    bce.mean(&[0, 1])
}

fn mlp_bindings(events: usize) -> Bindings {
    let x: Vec<f64> = (0..2 * events).map(|i| ((i * 37 % 17) as f64 - 8.0) / 5.0).collect();
    let y: Vec<f64> = (0..events).map(|i| (i % 2) as f64).collect();
    Bindings::new()
        .with("x", arr(&[events, 2], &x))
        .with("y", arr(&[events, 1], &y))
        .with("w1", arr(&[2, 5], &[0.3, -0.7, 0.5, 0.2, -0.1, 0.9, 0.4, -0.6, 0.25, -0.35]))
        .with("b1", arr(&[5], &[0.1, -0.2, 0.05, 0.3, -0.1]))
        .with("w2", arr(&[5, 1], &[0.8, -0.5, 0.6, -0.9, 0.4]))
        .with("b2", arr(&[1], &[0.05]))
}

#[test]
fn mlp_gradient_through_the_events_dimension() {
    let b = Builder::new();
    let loss = mlp_loss(&b);
    b.output("loss", loss);
    let graph = b.finish().unwrap();
    for events in [1, 7] {
        let report = gradcheck(
            &graph,
            graph.output("loss").unwrap(),
            &["w1", "b1", "w2", "b2", "x"],
            &mlp_bindings(events),
            GradCheck::default(),
        )
        .unwrap();
        assert!(report.passed(), "{events} events: {report}");
    }
}

#[test]
fn hessian_vector_product_matches_differences_of_gradients() {
    let b = Builder::new();
    let loss = mlp_loss(&b);
    b.output("loss", loss);
    let mut graph = b.finish().unwrap();
    let names = ["w1", "b1", "w2", "b2"];
    let wrt: Vec<_> = names.iter().map(|n| graph.find_leaf(n).unwrap()).collect();
    let shapes: Vec<Vec<usize>> = wrt.iter().map(|&w| graph.ty(w).shape.resolve(0)).collect();
    let dirs: Vec<_> = names
        .iter()
        .zip(&shapes)
        .map(|(n, s)| {
            let len: usize = s.iter().product();
            let v: Vec<f64> = (0..len).map(|i| ((i * 13 % 5) as f64 - 2.0) * 0.4).collect();
            (format!("v_{n}"), arr(s, &v))
        })
        .collect();
    let v_ids: Vec<_> =
        dirs.iter().zip(&shapes).map(|((n, _), s)| graph.input(n, DType::F64, Shape::fixed(s)).unwrap()).collect();
    let loss = graph.output("loss").unwrap();
    let hv = hvp(&mut graph, loss, &wrt, &v_ids).unwrap();
    let g = grad(&mut graph, loss, &wrt).unwrap();
    neos_ir::verify(&graph).unwrap();

    let mut bindings = mlp_bindings(6);
    for (n, v) in &dirs {
        bindings.set(n, v.clone());
    }
    let symbolic = eval(&graph, &bindings, &hv).unwrap();
    // (∇f(θ + εv) − ∇f(θ − εv)) / 2ε
    let eps = 1e-5;
    let shifted = |sign: f64| {
        let mut b = bindings.clone();
        for (name, (_, v)) in names.iter().zip(&dirs) {
            let moved = b.get(name).unwrap() + &(v * (sign * eps));
            b.set(name, moved);
        }
        eval(&graph, &b, &g).unwrap()
    };
    let (up, down) = (shifted(1.0), shifted(-1.0));
    for k in 0..names.len() {
        for ((s, u), d) in symbolic[k].iter().zip(up[k].iter()).zip(down[k].iter()) {
            let numeric = (u - d) / (2.0 * eps);
            assert!((s - numeric).abs() <= 1e-7 + 1e-5 * numeric.abs(), "{}: {s} vs {numeric}", names[k]);
        }
    }
}

#[test]
fn hessian_of_a_likelihood_like_function() {
    // f(θ) = Σ (n ln ν − ν) with ν = exp(A θ): smooth, with a dense Hessian.
    let b = Builder::new();
    let theta = b.param("theta", DType::F64, [3]);
    let a = b.constant(arr(&[4, 3], &[1.0, 0.2, -0.3, 0.5, 1.0, 0.1, -0.2, 0.3, 1.0, 0.4, 0.4, 0.4]), DType::F64);
    let n = b.constant(arr(&[4], &[3.0, 5.0, 1.0, 8.0]), DType::F64);
    let nu = a.matmul(theta.reshape([3, 1])).reshape([4]).exp();
    let f = (n * nu.log() - nu).sum_all() + (n + 1.0).lgamma().sum_all();
    b.output("f", f);
    let mut graph = b.finish().unwrap();
    let (fid, tid) = (graph.output("f").unwrap(), graph.find_leaf("theta").unwrap());
    let h = hessian(&mut graph, fid, tid).unwrap();
    let g = grad(&mut graph, fid, &[tid]).unwrap()[0];
    neos_ir::verify(&graph).unwrap();
    let theta0 = [0.3, -0.2, 0.5];
    let at = |t: &[f64]| Bindings::new().with("theta", arr(&[3], t));
    let hv = eval(&graph, &at(&theta0), &[h]).unwrap().remove(0);
    assert_eq!(hv.shape(), &[3, 3]);
    let eps = 1e-6;
    for j in 0..3 {
        let mut up = theta0;
        let mut down = theta0;
        up[j] += eps;
        down[j] -= eps;
        let gu = eval(&graph, &at(&up), &[g]).unwrap().remove(0);
        let gd = eval(&graph, &at(&down), &[g]).unwrap().remove(0);
        for i in 0..3 {
            let numeric = (gu[[i]] - gd[[i]]) / (2.0 * eps);
            assert!(
                (hv[[i, j]] - numeric).abs() < 1e-6 * (1.0 + numeric.abs()),
                "H[{i},{j}] {} vs {numeric}",
                hv[[i, j]]
            );
            assert!((hv[[i, j]] - hv[[j, i]]).abs() < 1e-12, "the Hessian is symmetric");
        }
    }
}

#[test]
fn gradient_of_an_unrelated_leaf_is_zero_and_non_scalars_are_rejected() {
    let b = Builder::new();
    let x = b.param("x", DType::F64, [3]);
    let z = b.param("z", DType::F64, [2]);
    b.output("y", x.exp().sum_all());
    b.output("v", x.exp());
    let _ = z;
    let mut graph = b.finish().unwrap();
    let z = graph.find_leaf("z").unwrap();
    let (y, v) = (graph.output("y").unwrap(), graph.output("v").unwrap());
    let dz = grad(&mut graph, y, &[z]).unwrap()[0];
    let bindings = Bindings::new().with("x", arr(&[3], &[1.0, 2.0, 3.0])).with("z", arr(&[2], &[1.0, 1.0]));
    assert_eq!(eval(&graph, &bindings, &[dz]).unwrap()[0].as_slice().unwrap(), &[0.0, 0.0]);
    let err = grad(&mut graph, v, &[z]).unwrap_err();
    assert!(err.to_string().contains("expected a scalar output"), "{err}");
}
