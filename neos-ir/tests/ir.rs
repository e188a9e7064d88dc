//! The graph, builder, interpreter, printer and custom-rule hook.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use neos_ir::{
    eval, gradcheck, print, simplify, to_dot, verify, Bindings, Builder, CustomOp, CustomRule, DType, Dim, GradCheck,
    Graph, IrError, Shape, SimplifyLimits, Tensor, TensorType, EVENTS,
};

fn arr(shape: &[usize], values: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap()
}

/// Builds `f` of one param `x` (bound to `x`) and checks the interpreter's value.
fn check(label: &str, x: ArrayD<f64>, f: impl for<'b> Fn(Tensor<'b>) -> Tensor<'b>, expected: ArrayD<f64>) {
    let b = Builder::new();
    let t = b.param("x", DType::F64, Shape::fixed(x.shape()));
    b.output("y", f(t));
    let g = b.finish().unwrap_or_else(|e| panic!("{label}: {e}"));
    verify(&g).unwrap();
    let y = eval(&g, &Bindings::new().with("x", x), &[g.output("y").unwrap()]).unwrap().remove(0);
    assert_eq!(y, expected, "{label}");
}

#[test]
fn interpreter_semantics_of_structural_ops() {
    let m = arr(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    check("transpose", m.clone(), |x| x.t(), arr(&[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
    check("matmul", m.clone(), |x| x.matmul(x.t()), arr(&[2, 2], &[14.0, 32.0, 32.0, 77.0]));
    check("sum rows", m.clone(), |x| x.sum(&[1]), arr(&[2], &[6.0, 15.0]));
    check("sum cols", m.clone(), |x| x.sum(&[0]), arr(&[3], &[5.0, 7.0, 9.0]));
    check("reduce max", m.clone(), |x| x.max(&[1]), arr(&[2], &[3.0, 6.0]));
    check("reshape", m.clone(), |x| x.reshape([3, 2]), arr(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    check("slice", m.clone(), |x| x.slice(1, 1..3), arr(&[2, 2], &[2.0, 3.0, 5.0, 6.0]));
    check("index", m.clone(), |x| x.index(0, 1), arr(&[3], &[4.0, 5.0, 6.0]));
    check("pad", m.clone(), |x| x.pad(0, 1, 0), arr(&[3, 3], &[0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    check(
        "concat",
        m.clone(),
        |x| x.builder().concat(&[x, x.slice(1, 0..1)], 1),
        arr(&[2, 4], &[1.0, 2.0, 3.0, 1.0, 4.0, 5.0, 6.0, 4.0]),
    );
    check(
        "stack",
        arr(&[2], &[1.0, 2.0]),
        |x| x.builder().stack(&[x, x * 2.0], 0),
        arr(&[2, 2], &[1.0, 2.0, 2.0, 4.0]),
    );
    check(
        "broadcast",
        arr(&[3], &[1.0, 2.0, 3.0]),
        |x| x.broadcast_to([2, 3]),
        arr(&[2, 3], &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]),
    );
    check(
        "select",
        arr(&[3], &[-1.0, 0.0, 2.0]),
        |x| x.builder().select(x.ge(x.lit(0.0)), x, -x * 10.0),
        arr(&[3], &[10.0, 0.0, 2.0]),
    );
    check(
        "compare",
        arr(&[3], &[-1.0, 0.0, 2.0]),
        |x| x.lt(x.lit(0.0)) + x.eq(x.lit(2.0)),
        arr(&[3], &[1.0, 0.0, 1.0]),
    );
    check("cast rounds", arr(&[1], &[0.1]), |x| x.cast(DType::F32).cast(DType::F64), arr(&[1], &[0.1f32 as f64]));
}

#[test]
fn the_events_dimension_takes_its_size_from_the_data() {
    let b = Builder::new();
    let x = b.input("x", DType::F64, Shape::new([EVENTS, Dim::Fixed(2)]));
    let w = b.input("w", DType::F64, Shape::new([EVENTS]));
    let mean = x.mean(&[0]);
    b.output("mean", mean);
    b.output("weighted", (x * w.reshape(Shape::new([EVENTS, Dim::Fixed(1)]))).sum(&[0]));
    let g = b.finish().unwrap();
    let bindings =
        Bindings::new().with("x", arr(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 9.0])).with("w", arr(&[3], &[1.0, 0.0, 2.0]));
    let out = neos_ir::eval_outputs(&g, &bindings).unwrap();
    assert_eq!(out["mean"], arr(&[2], &[3.0, 5.0]));
    assert_eq!(out["weighted"], arr(&[2], &[11.0, 20.0]));
}

#[test]
fn builder_reports_every_error_with_what_was_expected() {
    let b = Builder::new();
    let x = b.param("x", DType::F64, [3]);
    let y = b.param("y", DType::F64, [4]);
    let z = b.param("z", DType::F32, [3]);
    let _ = x + y;
    let _ = x * z;
    let _ = x.matmul(x);
    let _ = b.param("x", DType::F64, [1]);
    match b.finish() {
        Err(IrError::Many(errors)) => {
            let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            assert_eq!(errors.len(), 4, "{text:#?}");
            assert!(text[0].contains("[3] and [4] do not broadcast"), "{}", text[0]);
            assert!(text[1].contains("expected operands of one dtype, found f64 and f32"), "{}", text[1]);
            assert!(text[2].contains("expected two matrices, found shapes [3] and [3]"), "{}", text[2]);
            assert!(text[3].contains("`x` declared twice"), "{}", text[3]);
        }
        other => panic!("expected four errors, found {other:?}"),
    }
}

#[test]
fn bad_bindings_are_reported_not_evaluated() {
    let b = Builder::new();
    let x = b.input("x", DType::F64, Shape::new([EVENTS, Dim::Fixed(2)]));
    let y = b.input("y", DType::F64, Shape::new([EVENTS]));
    let p = b.param("p", DType::F64, [2]);
    b.output("s", (x * p).sum_all() + y.sum_all());
    let g = b.finish().unwrap();
    let out = g.output("s").unwrap();
    let good = Bindings::new()
        .with("x", arr(&[2, 2], &[1.0; 4]))
        .with("y", arr(&[2], &[1.0; 2]))
        .with("p", arr(&[2], &[1.0; 2]));
    assert_eq!(eval(&g, &good, &[out]).unwrap()[0].sum(), 6.0);
    let cases = [
        (good.clone().with("p", arr(&[3], &[1.0; 3])), "binding `p`: expected shape [2], found [3]"),
        (good.clone().with("y", arr(&[3], &[1.0; 3])), "expected 2 events like `x`, found 3"),
        (
            good.clone().with("x", arr(&[2, 2], &[1.0, f64::NAN, 0.0, 0.0])),
            "expected numbers, found NaN at flat index 1",
        ),
        (
            Bindings::new().with("x", arr(&[2, 2], &[1.0; 4])).with("y", arr(&[2], &[1.0; 2])),
            "binding `p`: expected a value",
        ),
    ];
    for (bindings, message) in cases {
        let err = eval(&g, &bindings, &[out]).unwrap_err().to_string();
        assert!(err.contains(message), "expected `{message}`, found `{err}`");
    }
}

#[test]
fn f32_nodes_hold_f32_values() {
    let b = Builder::new();
    let x = b.param("x", DType::F32, [1]);
    b.output("y", x / 3.0);
    let g = b.finish().unwrap();
    let y = eval(&g, &Bindings::new().with("x", arr(&[1], &[1.0])), &[g.output("y").unwrap()]).unwrap()[0][[0]];
    assert_eq!(y, (1.0f32 / 3.0f32) as f64);
}

#[test]
fn identical_computations_are_shared() {
    let b = Builder::new();
    let x = b.param("x", DType::F64, [3]);
    let a = (x * 2.0).exp();
    let c = (x * 2.0).exp();
    assert_eq!(a.id(), c.id());
    b.output("y", a + c);
    let g = b.finish().unwrap();
    assert_eq!(g.live_len(), 6, "{}", print(&g));
}

fn printed_example() -> Graph {
    let b = Builder::new();
    let x = b.input("x", DType::F32, Shape::new([EVENTS, Dim::Fixed(2)]));
    let w = b.param("w", DType::F32, [2, 1]);
    let h = b.knob("bandwidth", DType::F32, 0.09);
    let t = x.matmul(w).sigmoid();
    b.output("soft", (t / h).norm_cdf().sum(&[0]));
    b.finish().unwrap()
}

#[test]
fn printed_graphs_are_stable() {
    let g = printed_example();
    insta::assert_snapshot!("printed_graph", print(&g));
    insta::assert_snapshot!("dot_graph", to_dot(&g));
}

/// x³ as a custom operation, with its own derivative 3x²·ḡ.
#[derive(Debug)]
struct Cube;

impl CustomRule for Cube {
    fn name(&self) -> &str {
        "cube"
    }
    fn infer(&self, inputs: &[&TensorType]) -> Result<TensorType, String> {
        match inputs {
            [t] => Ok((*t).clone()),
            _ => Err(format!("expected 1 operand, found {}", inputs.len())),
        }
    }
    fn eval(&self, inputs: &[ArrayViewD<'_, f64>], _: &TensorType) -> Result<ArrayD<f64>, String> {
        Ok(inputs[0].mapv(|v| v * v * v))
    }
    fn vjp<'b>(
        &self,
        _: &'b Builder,
        inputs: &[Tensor<'b>],
        _: Tensor<'b>,
        adjoint: Tensor<'b>,
        _: &[bool],
    ) -> neos_ir::Result<Vec<Option<Tensor<'b>>>> {
        Ok(vec![Some(adjoint * inputs[0].square() * 3.0)])
    }
}

#[test]
fn custom_rules_evaluate_differentiate_and_survive_simplification() {
    let b = Builder::new();
    let x = b.param("x", DType::F64, [3]);
    let cube = CustomOp(Arc::new(Cube));
    let y = b.custom(cube.clone(), &[x * 1.0]);
    let z = b.custom(cube, &[y.tanh()]);
    b.output("loss", (z.sum_all() + y.sum_all()) * 1.0);
    let g = b.finish().unwrap();
    let bindings = Bindings::new().with("x", arr(&[3], &[0.5, -1.0, 1.2]));
    let report = gradcheck(&g, g.output("loss").unwrap(), &["x"], &bindings, GradCheck::default()).unwrap();
    assert!(report.passed(), "{report}");
    let (s, _) = simplify(&g, &SimplifyLimits::default()).unwrap();
    let text = print(&s);
    assert_eq!(text.matches("= cube").count(), 2, "{text}");
    let before = eval(&g, &bindings, &[g.output("loss").unwrap()]).unwrap();
    let after = eval(&s, &bindings, &[s.output("loss").unwrap()]).unwrap();
    assert_eq!(before, after);
}
