//! Benchmarks of generated code: one forward and backward pass of the paper's network
//! (2 → 1024 → 1024 → 1, 8000 events) beside the time of its matrix products alone, and the
//! neos `cls` metric of the 4-bin model with its gradient with respect to every yield.
//! Medians over repeated runs; run with `--release`:
//!
//! ```text
//! cargo run --release -p neos-codegen-tests --example bench_codegen -- [--runs N] [--events E]
//! ```

use ndarray::{Array2, ArrayView2};
use neos::__private::runtime::gemm::{dgemm, sgemm, Op};
use neos_codegen_tests::generated::{cls_4bin, cls_4bin_single, paper_mlp_f32, paper_mlp_f64};

#[path = "../../../examples/support/mod.rs"]
mod support;
use support::{arg, median_seconds};

/// A deterministic spread of values in [-1, 1) (no random-number crate needed for timing).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

macro_rules! network {
    ($module:ident, $t:ty, $gemm:ident, $runs:expr, $events:expr) => {{
        let (runs, e) = ($runs, $events);
        let scale = |v: Vec<f64>, s: f64| v.into_iter().map(|x| (x * s) as $t).collect::<Vec<$t>>();
        let params = $module::Params {
            w1: scale(values(2 * 1024, 1), 1.0),
            b1: vec![0.0; 1024],
            w2: scale(values(1024 * 1024, 2), (2.0f64 / 2048.0).sqrt()),
            b2: vec![0.0; 1024],
            w3: scale(values(1024, 3), (2.0f64 / 1025.0).sqrt()),
            b3: vec![0.0; 1],
        };
        let x = scale(values(e * 2, 4), 2.0);
        let y: Vec<$t> = (0..e).map(|i| (i % 2) as $t).collect();
        let inputs = $module::Inputs { x: &x, y: &y };
        let knobs = $module::Knobs::default();
        let mut program = $module::Program::new();
        let mut loss = 0.0;
        let t_step = median_seconds(runs, || {
            let out = program.value_and_grad(&params, &inputs, &knobs).expect("the network runs");
            loss = f64::from(out.loss[0]);
        });
        let t_forward = median_seconds(runs, || {
            program.forward(&params, &inputs, &knobs).expect("the network runs");
        });

        // The same products alone: three forward, and for the backward pass the weight
        // gradients (Aᵀ·G) of all layers and the input gradients (G·Wᵀ) of the upper two.
        let m =
            |r: usize, c: usize, s: u64| Array2::from_shape_vec((r, c), scale(values(r * c, s), 0.1)).expect("shape");
        let (xa, w1, w2, w3) = (m(e, 2, 5), m(2, 1024, 6), m(1024, 1024, 7), m(1024, 1, 8));
        let (mut h1, mut h2, mut o) = (m(e, 1024, 9), m(e, 1024, 10), m(e, 1, 11));
        let (mut g1, mut g2, mut g3) = (m(2, 1024, 12), m(1024, 1024, 13), m(1024, 1, 14));
        let (mut dh2, mut dh1) = (m(e, 1024, 15), m(e, 1024, 16));
        fn v<T>(a: &Array2<T>) -> ArrayView2<'_, T> {
            a.view()
        }
        let t_gemm = median_seconds(runs, || {
            $gemm(1.0, v(&xa), Op::N, v(&w1), Op::N, 0.0, h1.view_mut()).expect("shapes");
            $gemm(1.0, v(&h1), Op::N, v(&w2), Op::N, 0.0, h2.view_mut()).expect("shapes");
            $gemm(1.0, v(&h2), Op::N, v(&w3), Op::N, 0.0, o.view_mut()).expect("shapes");
            $gemm(1.0, v(&h2), Op::T, v(&o), Op::N, 0.0, g3.view_mut()).expect("shapes");
            $gemm(1.0, v(&o), Op::N, v(&w3), Op::T, 0.0, dh2.view_mut()).expect("shapes");
            $gemm(1.0, v(&h1), Op::T, v(&dh2), Op::N, 0.0, g2.view_mut()).expect("shapes");
            $gemm(1.0, v(&dh2), Op::N, v(&w2), Op::T, 0.0, dh1.view_mut()).expect("shapes");
            $gemm(1.0, v(&xa), Op::T, v(&dh1), Op::N, 0.0, g1.view_mut()).expect("shapes");
        });
        (t_step, t_forward, t_gemm, loss)
    }};
}

macro_rules! cls_bench {
    ($module:ident, $runs:expr, $label:expr) => {{
        let params = $module::Params {
            sig: vec![2.0, 4.0, 6.0, 3.0],
            bkg: vec![50.0, 30.0, 20.0, 10.0],
            bkg_up: vec![55.0, 33.0, 21.0, 9.0],
            bkg_down: vec![45.0, 28.0, 19.0, 11.0],
        };
        let inputs = $module::Inputs { _none: std::marker::PhantomData };
        let knobs = $module::Knobs::default();
        let mut program = $module::Program::new();
        let mut cls = 0.0;
        let (calls, runs) = (200, $runs.max(5));
        let t_value = median_seconds(runs, || {
            for _ in 0..calls {
                cls = program.forward(&params, &inputs, &knobs).expect("the fits converge").value[0];
            }
        }) / calls as f64;
        let t_grad = median_seconds(runs, || {
            for _ in 0..calls {
                program.value_and_grad(&params, &inputs, &knobs).expect("the fits converge");
            }
        }) / calls as f64;
        println!("4-bin neos model, generated code ({}), median of {runs} × {calls} calls:", $label);
        println!("  cls value                      {:>8.2} µs   (cls = {cls:.10})", t_value * 1e6);
        println!("  cls value + gradient (yields)  {:>8.2} µs", t_grad * 1e6);
    }};
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = arg("--runs", 15)?;
    let events = arg("--events", 8000)?;
    // `--network 0` runs the statistics benchmarks alone.
    let network = arg("--network", 1)?;
    if network != 0 {
        paper_network(runs, events);
    }
    cls_bench!(cls_4bin, runs, "fits restarted where the likelihood may be bimodal");
    cls_bench!(cls_4bin_single, runs, "one start per fit");
    Ok(())
}

fn paper_network(runs: usize, events: usize) {
    println!("paper network 2 → 1024 → 1024 → 1, {events} events, median of {runs} runs:");
    for (name, (step, forward, gemm, loss)) in [
        ("f32", network!(paper_mlp_f32, f32, sgemm, runs, events)),
        ("f64", network!(paper_mlp_f64, f64, dgemm, runs, events)),
    ] {
        println!(
            "  {name}: forward + backward {:>8.2} ms, forward {:>8.2} ms, its matrix products alone {:>8.2} ms, ratio {:.2} (loss {loss:.6})",
            step * 1e3,
            forward * 1e3,
            gemm * 1e3,
            step / gemm
        );
    }
}
