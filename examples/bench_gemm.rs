//! GEMM throughput for the shapes of the neos network (2 → W → W → 1 on N events): the
//! forward products and the backward ones (Aᵀ·B for weights, A·Bᵀ for inputs), in GFLOP/s, f64
//! and f32. Each f64 product is timed with matrixmultiply's kernel on the calling thread and
//! split over all of rayon's threads, and as `dgemm` chooses (`auto`: split by
//! `gemm::tasks_for`, or on one thread by the small-product kernel without packing where it
//! applies); this is how the split threshold `gemm::PARALLEL_MIN_WORK` was set. Medians over repeated runs; run with `--release`.
//!
//! ```text
//! cargo run --release --example bench_gemm -- [--events N] [--width W] [--runs R]
//! ```

use ndarray::Array2;
use neos_runtime::gemm::{dgemm, dgemm_tasks, sgemm, tasks_for, Op};

#[path = "support/mod.rs"]
mod support;
use support::{arg, median_seconds};

fn main() -> Result<(), String> {
    let (events, width, runs) = (arg("--events", 8000)?, arg("--width", 1024)?, arg("--runs", 11)?);
    // (label, m, k, n, op_a, op_b): C [m, n] = op(A) · op(B).
    let shapes = [
        ("x·W1        (events×2 → W)", events, 2, width, Op::N, Op::N),
        ("h·W2        (W → W)", events, width, width, Op::N, Op::N),
        ("h·W3        (W → 1)", events, width, 1, Op::N, Op::N),
        ("hᵀ·δ        (dW2)", width, events, width, Op::T, Op::N),
        ("δ·W2ᵀ       (dh)", events, width, width, Op::N, Op::T),
    ];
    println!("{events} events, width {width}, {} threads, median of {runs}:", rayon::current_num_threads());
    for (label, m, k, n, op_a, op_b) in shapes {
        let dims = |op: Op, r: usize, c: usize| if op == Op::N { (r, c) } else { (c, r) };
        let a = Array2::<f64>::from_shape_fn(dims(op_a, m, k), |(i, j)| ((i + 2 * j) % 7) as f64 * 0.1);
        let b = Array2::<f64>::from_shape_fn(dims(op_b, k, n), |(i, j)| ((3 * i + j) % 5) as f64 * 0.1);
        let mut c = Array2::<f64>::zeros((m, n));
        let t64 = median_seconds(runs, || {
            let _ = dgemm(1.0, a.view(), op_a, b.view(), op_b, 0.0, c.view_mut());
        });
        let mut split = |tasks: usize| {
            median_seconds(runs, || {
                let _ = dgemm_tasks(tasks, 1.0, a.view(), op_a, b.view(), op_b, 0.0, c.view_mut());
            })
        };
        let (one, all) = (split(1), split(rayon::current_num_threads()));
        let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
        let mut c32 = Array2::<f32>::zeros((m, n));
        let t32 = median_seconds(runs, || {
            let _ = sgemm(1.0, a32.view(), op_a, b32.view(), op_b, 0.0, c32.view_mut());
        });
        let flops = 2.0 * (m * k * n) as f64;
        println!(
            "  {label:<28} f64: 1 task {:>8.3} ms, {} tasks {:>8.3} ms, auto ({} tasks) {:>8.3} ms {:>6.1} GFLOP/s   f32 {:>8.3} ms {:>6.1} GFLOP/s",
            one * 1e3,
            rayon::current_num_threads(),
            all * 1e3,
            tasks_for(m, k, n),
            t64 * 1e3,
            flops / t64 / 1e9,
            t32 * 1e3,
            flops / t32 / 1e9
        );
    }
    Ok(())
}
