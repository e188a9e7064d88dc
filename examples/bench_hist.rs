//! Throughput of the runtime's kernel density histogram (forward, and the fused backward pass
//! giving the derivatives in values, edges and bandwidth), in event·edge pairs per second.
//! Medians over repeated runs; run with `--release`.
//!
//! ```text
//! cargo run --release --example bench_hist -- [--events N] [--bins B] [--runs R]
//! ```

use std::time::Instant;

use neos_runtime::hist::{backward, forward};

fn arg(name: &str, default: usize) -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => {
            args.get(i + 1).ok_or(format!("{name} expects a number"))?.parse().map_err(|e| format!("{name}: {e}"))
        }
        None => Ok(default),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), String> {
    let (events, bins, runs) = (arg("--events", 1_000_000)?, arg("--bins", 4)?, arg("--runs", 21)?);
    let values: Vec<f64> = (0..events).map(|i| ((i * 7919 % 100_000) as f64) / 100_000.0).collect();
    let edges: Vec<f64> = (0..=bins).map(|k| k as f64 / bins as f64).collect();
    let adjoint: Vec<f64> = (0..bins).map(|j| 1.0 + j as f64).collect();
    let time = |f: &dyn Fn()| {
        median(
            (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
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
