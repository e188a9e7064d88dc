//! Every generated program against the interpreter on the same random data, entry point by
//! entry point and output by output, at several numbers of events.
//!
//! Tolerances, relative to the larger of 1 and the output's largest magnitude: 1e-12 for `f64`
//! elementwise and indexing code (the same operations in the same order, up to summation order),
//! 1e-10 for networks and histograms (sums over events and matrix products are blocked
//! differently), 1e-8 where fits are involved (both solvers stop at a projected gradient of 1e-9,
//! from the same starts, with rounding differences in between), and 2e-6 for `f32` (the
//! interpreter computes in `f64` and rounds each node, generated code computes in `f32`).

#![allow(clippy::unwrap_used)]

use ndarray::{ArrayD, IxDyn};
use neos_codegen_tests::cases::{self, Case};
use neos_codegen_tests::generated;
use neos_ir::{eval, Bindings, Op};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

type Outputs = Vec<(&'static str, Vec<f64>)>;
type Runner<'a> = dyn FnMut(&str, &[f64], &[(&str, &[f64])], &[(&str, f64)]) -> Result<Outputs, String> + 'a;

/// Yields of the 4-bin model (signal, background, up, down), which random factors perturb.
const YIELDS: [[f64; 4]; 4] =
    [[2.0, 4.0, 6.0, 3.0], [50.0, 30.0, 20.0, 10.0], [55.0, 33.0, 21.0, 9.0], [45.0, 28.0, 19.0, 11.0]];

fn tolerance(case: &Case) -> f64 {
    match case.name {
        "unary_f32" | "mlp_f32" => 2e-6,
        "unary_f64" | "unary_wide" | "binary" | "indexing" => 1e-12,
        "mlp_f64" | "hist" => 1e-10,
        _ => 1e-8,
    }
}

/// Values by leaf name.
type Named = Vec<(String, Vec<f64>)>;

/// Random values for every param and input the case declares, in its domain (or near the
/// paper's yields, edges and weights where a fit needs them), with `events[g]` events in
/// events group `g`.
fn bindings(case: &Case, events: &[usize], rng: &mut SmallRng) -> (Named, Named) {
    let (lo, hi) = case.domain;
    let (mut params, mut inputs) = (Vec::new(), Vec::new());
    for id in case.graph.node_ids() {
        let node = case.graph.node(id);
        let n = node.ty.shape.numel(events);
        let mut draw = |n: usize| -> Vec<f64> {
            (0..n).map(|_| node.ty.dtype.round(lo + (hi - lo) * rng.random::<f64>())).collect()
        };
        match &node.op {
            Op::Param { name } => {
                let values = match (case.name, name.as_str()) {
                    // Yields near the paper's example, so that every fit is well posed.
                    (c, n) if c.contains("4bin") => {
                        let k = ["sig", "bkg", "bkg_up", "bkg_down"].iter().position(|s| *s == n).unwrap();
                        YIELDS[k].iter().map(|y| y * (0.9 + 0.2 * rng.random::<f64>())).collect()
                    }
                    ("counting_cls", "s") => vec![4.0 + rng.random::<f64>()],
                    ("counting_cls", "b") => vec![20.0 + 5.0 * rng.random::<f64>()],
                    // Inner edges strictly inside (0, 1) and increasing; a positive bandwidth.
                    (_, "inner") => vec![0.2 + 0.1 * rng.random::<f64>(), 0.45, 0.7 + 0.1 * rng.random::<f64>()],
                    ("hist", "h") => vec![0.05 + 0.1 * rng.random::<f64>()],
                    // Network weights around zero.
                    ("pipeline", _) | ("mlp_f64", _) | ("mlp_f32", _) => {
                        (0..n).map(|_| node.ty.dtype.round(rng.random::<f64>() - 0.5)).collect()
                    }
                    _ => draw(n),
                };
                params.push((name.clone(), values));
            }
            Op::Input { name } => {
                let values = match (case.name, name.as_str()) {
                    // Labels for the cross-entropy.
                    (_, "y") => (0..n).map(|i| (i % 2) as f64).collect(),
                    _ => draw(n),
                };
                inputs.push((name.clone(), values));
            }
            _ => {}
        }
    }
    (params, inputs)
}

fn check(case: &Case, run: &mut Runner<'_>) {
    let mut rng = SmallRng::seed_from_u64(7);
    let sizes: &[usize] = match case.name {
        "pipeline" => &[40],
        "hist" => &[1, 7, 65, 1023],
        _ => &[0, 1, 7, 65],
    };
    let tol = tolerance(case);
    for &events in sizes {
        // Every events group has a size of its own (cases with several samples put each in a
        // group), so that a mix-up of two groups' sizes in generated code shows.
        let counts: Vec<usize> = (0..8).map(|g| events + 3 * g).collect();
        let (params, inputs) = bindings(case, &counts, &mut rng);
        let mut b = Bindings::new();
        for (name, values) in params.iter().chain(&inputs) {
            let id = case.graph.find_leaf(name).unwrap();
            let shape = case.graph.ty(id).shape.resolve(counts.as_slice());
            b.set(name, ArrayD::from_shape_vec(IxDyn(&shape), values.clone()).unwrap());
        }
        let flat: Vec<f64> = params.iter().flat_map(|(_, v)| v.iter().copied()).collect();
        let named: Vec<(&str, &[f64])> = inputs.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        for entry in &case.entries {
            let got = run(&entry.name, &flat, &named, &[])
                .unwrap_or_else(|e| panic!("case `{}`, entry `{}`, {events} events: {e}", case.name, entry.name));
            let ids: Vec<_> = entry.outputs.iter().map(|o| case.graph.output(o).unwrap()).collect();
            let want = eval(&case.graph, &b, &ids).unwrap();
            assert_eq!(got.len(), want.len());
            for ((name, g), w) in got.iter().zip(&want) {
                assert_eq!(g.len(), w.len(), "case `{}`, output `{name}`: length", case.name);
                let scale = w.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                for (i, (a, e)) in g.iter().zip(w.iter()).enumerate() {
                    let same = (a.is_nan() && e.is_nan()) || a == e || (a - e).abs() <= tol * scale;
                    assert!(
                        same,
                        "case `{}`, entry `{}`, output `{name}`[{i}] with {events} events: generated {a:e}, interpreter {e:e} (tolerance {tol:e} × {scale:e})",
                        case.name, entry.name
                    );
                }
            }
        }
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let case = cases::all().into_iter().find(|c| c.name == stringify!($name)).unwrap();
                let mut program = generated::$name::Program::new();
                check(&case, &mut |entry, params, inputs, knobs| {
                    program.run_dynamic(entry, params, inputs, knobs).map_err(|e| e.to_string())
                });
            }
        )*
    };
}

cases!(
    unary_f64,
    unary_f32,
    unary_wide,
    binary,
    indexing,
    mlp_f64,
    mlp_f32,
    hist,
    cls_4bin,
    cls_4bin_single,
    discovery_4bin,
    poi_uncert_4bin,
    counting_cls,
    pipeline
);

/// Bad input is an error that says what was expected and what was found.
#[test]
fn bad_input_is_reported() {
    let mut p = generated::binary::Program::new();
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let v = [1.0, 2.0, 3.0];
    let err = |r: Result<Outputs, neos::RunError>| r.unwrap_err().to_string();
    // Event data not a whole number of rows.
    let e = err(p.run_dynamic("all", &v, &[("a", &a[..5])], &[]));
    assert_eq!(e, "a: expected a row-major array of events × 3 values, found 5 values");
    // NaN in the events.
    let mut nan = a;
    nan[4] = f64::NAN;
    let e = err(p.run_dynamic("all", &v, &[("a", &nan)], &[]));
    assert_eq!(e, "a: expected numbers, found NaN at flat index 4");
    // Wrong number of parameters, unknown knobs and entry points.
    let e = err(p.run_dynamic("all", &v[..2], &[("a", &a)], &[]));
    assert_eq!(e, "params: expected 3 values, found 2");
    let e = err(p.run_dynamic("all", &v, &[("a", &a)], &[("q", 1.0)]));
    assert_eq!(e, "q: expected the name of a knob, found an unknown name");
    let e = err(p.run_dynamic("nothing", &v, &[("a", &a)], &[]));
    assert_eq!(e, "nothing: expected the name of an entry point, found an unknown name");
    let e = err(p.run_dynamic("all", &v, &[("a", &a)], &[("k", f64::NAN)]));
    assert_eq!(e, "k: expected numbers, found NaN at flat index 0");

    // Events of one group that disagree between inputs (features and labels of one sample).
    let mut p = generated::mlp_f64::Program::new();
    let params = vec![0.1; generated::mlp_f64::Params::LEN];
    let (two, three) = ([0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 1.0]);
    let e = err(p.run_dynamic("value_and_grad", &params, &[("x", &two[..]), ("y", &three[..])], &[]));
    assert_eq!(e, "x: expected 3 events like `y`, found 2");

    // A bandwidth that is not positive reaches the histogram (the edges are repaired by
    // neos's edge transform, so they always increase here).
    let mut p = generated::hist::Program::new();
    let t = [0.3, 0.5];
    let e = err(p.run_dynamic("all", &[0.3, 0.5, 0.7, 0.0], &[("t", &t)], &[]));
    assert_eq!(e, "hist: expected a positive bandwidth, found 0");
}
