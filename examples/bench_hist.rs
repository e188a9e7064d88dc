//! Throughput of the runtime's kernel density histogram (forward, and the fused backward pass
//! giving the derivatives in values, edges and bandwidth), in event·edge pairs per second.
//! Medians over repeated runs; run with `--release`.
//!
//! ```text
//! cargo run --release --example bench_hist -- [--events N] [--bins B] [--runs R]
//! ```

use neos_runtime::hist::{backward, forward};

#[path = "support/mod.rs"]
mod support;
use support::{arg, median_seconds};

fn main() -> Result<(), String> {
    let (events, bins, runs) = (arg("--events", 1_000_000)?, arg("--bins", 4)?, arg("--runs", 21)?);
    let values: Vec<f64> = (0..events).map(|i| ((i * 7919 % 100_000) as f64) / 100_000.0).collect();
    let edges: Vec<f64> = (0..=bins).map(|k| k as f64 / bins as f64).collect();
    let adjoint: Vec<f64> = (0..bins).map(|j| 1.0 + j as f64).collect();
    let time = |f: &dyn Fn()| median_seconds(runs, f);
    let t_forward = time(&|| {
        std::hint::black_box(forward(&values, &edges, 0.09, false));
    });
    let t_backward = time(&|| {
        std::hint::black_box(backward(&values, &edges, 0.09, false, &adjoint));
    });
    let pairs = (events * (bins + 1)) as f64;
    println!("{events} events, {bins} bins, {} threads, median of {runs}:", rayon::current_num_threads());
    println!("  forward   {:>8.2} ms  {:>7.1} M event·edge pairs/s", t_forward * 1e3, pairs / t_forward / 1e6);
    println!("  backward  {:>8.2} ms  {:>7.1} M event·edge pairs/s", t_backward * 1e3, pairs / t_backward / 1e6);
    Ok(())
}
