//! Throughput of the runtime's kernel density histogram (forward, and the fused backward pass
//! giving the derivatives in values, edges and bandwidth), in event·edge pairs per second:
//! the median over repeated runs by the wall clock, and per CPU-second of the benchmark's
//! threads times their number (what the kernel does with the cores to itself, which the wall
//! clock shows only on an idle machine). Run with `--release`.
//!
//! ```text
//! cargo run --release --example bench_hist -- [--events N] [--bins B] [--runs R]
//! ```

use neos_runtime::hist::{backward, forward};

#[path = "support/mod.rs"]
mod support;
use support::arg;
#[path = "support/cpu.rs"]
mod cpu;

fn main() -> Result<(), String> {
    let (events, bins, runs) = (arg("--events", 1_000_000)?, arg("--bins", 4)?, arg("--runs", 21)?);
    let values: Vec<f64> = (0..events).map(|i| ((i * 7919 % 100_000) as f64) / 100_000.0).collect();
    let edges: Vec<f64> = (0..=bins).map(|k| k as f64 / bins as f64).collect();
    let adjoint: Vec<f64> = (0..bins).map(|j| 1.0 + j as f64).collect();
    let threads = rayon::current_num_threads();
    let (t_forward, cpu_forward) = cpu::timed(runs, || {
        std::hint::black_box(forward(&values, &edges, 0.09, false));
    });
    let (t_backward, cpu_backward) = cpu::timed(runs, || {
        std::hint::black_box(backward(&values, &edges, 0.09, false, &adjoint).expect("one adjoint value per bin"));
    });
    let pairs = (events * (bins + 1)) as f64;
    println!("{events} events, {bins} bins, {threads} threads, median of {runs}; M event·edge pairs/s:");
    let line = |name: &str, wall: f64, cpu: Option<f64>| {
        let own = cpu.map_or("n/a".to_string(), |c| format!("{:.1}", pairs / (c / threads as f64) / 1e6));
        println!(
            "  {name:<9} {:>8.2} ms  {:>7.1} by the wall clock  {own:>7} per CPU-second × {threads}",
            wall * 1e3,
            pairs / wall / 1e6
        );
    };
    line("forward", t_forward, cpu_forward);
    line("backward", t_backward, cpu_backward);
    Ok(())
}
