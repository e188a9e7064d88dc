//! Throughput of the runtime's elementwise slice kernels (`neos_runtime::math::slice`), in
//! millions of elements per second on one core: the detected instruction-set path, the portable
//! path, and a plain loop over the libm twin — the interpreter's formula on the C library's
//! libm through `std` (`f32` functions for `f32`), and on the libm crate's erfc for Φ, as
//! `neos_runtime::hist::norm_cdf` computes it (in `f64`, rounded, for `f32`). Medians over
//! repeated runs by the wall clock, or with `--cpu 1` the mean per CPU-second of this process
//! (what a kernel does with a core to itself on a busy machine). Run with `--release`.
//!
//! ```text
//! cargo run --release --example bench_elementwise -- [--elements N] [--runs R] [--cpu 1]
//! ```

use neos_runtime::hist::norm_cdf;
use neos_runtime::math::{slice, Isa};
use neos_runtime::RunError;

#[path = "support/mod.rs"]
mod support;
use support::arg;
#[path = "support/cpu.rs"]
mod cpu;

type Kernel<T> = fn(Isa, &[T], &mut [T]) -> Result<(), RunError>;

/// One function: its name, the interval its inputs are drawn from, both slice kernels and both
/// libm twins.
struct Bench {
    name: &'static str,
    range: (f64, f64),
    f64: Kernel<f64>,
    f32: Kernel<f32>,
    libm_f64: fn(f64) -> f64,
    libm_f32: fn(f32) -> f32,
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn sigmoidf(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn relu<T: PartialOrd + Default + Copy>(x: T) -> T {
    if x <= T::default() {
        T::default()
    } else {
        x
    }
}

fn benches() -> Vec<Bench> {
    vec![
        Bench {
            name: "exp",
            range: (-20.0, 20.0),
            f64: slice::exp_f64_on,
            f32: slice::exp_f32_on,
            libm_f64: f64::exp,
            libm_f32: f32::exp,
        },
        Bench {
            name: "log",
            range: (1e-3, 100.0),
            f64: slice::log_f64_on,
            f32: slice::log_f32_on,
            libm_f64: f64::ln,
            libm_f32: f32::ln,
        },
        Bench {
            name: "norm_cdf",
            range: (-6.0, 6.0),
            f64: slice::norm_cdf_f64_on,
            f32: slice::norm_cdf_f32_on,
            libm_f64: norm_cdf,
            libm_f32: |x| norm_cdf(x as f64) as f32,
        },
        Bench {
            name: "norm_pdf",
            range: (-6.0, 6.0),
            f64: slice::norm_pdf_f64_on,
            f32: slice::norm_pdf_f32_on,
            libm_f64: |x| (-0.5 * x * x).exp() * 0.398_942_280_401_432_7,
            libm_f32: |x| (-0.5 * x * x).exp() * 0.398_942_3,
        },
        Bench {
            name: "sigmoid",
            range: (-10.0, 10.0),
            f64: slice::sigmoid_f64_on,
            f32: slice::sigmoid_f32_on,
            libm_f64: sigmoid,
            libm_f32: sigmoidf,
        },
        Bench {
            name: "tanh",
            range: (-5.0, 5.0),
            f64: slice::tanh_f64_on,
            f32: slice::tanh_f32_on,
            libm_f64: f64::tanh,
            libm_f32: f32::tanh,
        },
        Bench {
            name: "softplus",
            range: (-10.0, 10.0),
            f64: slice::softplus_f64_on,
            f32: slice::softplus_f32_on,
            libm_f64: |x| x.max(0.0) + (-x.abs()).exp().ln_1p(),
            libm_f32: |x| x.max(0.0) + (-x.abs()).exp().ln_1p(),
        },
        Bench {
            name: "relu",
            range: (-1.0, 1.0),
            f64: slice::relu_f64_on,
            f32: slice::relu_f32_on,
            libm_f64: relu,
            libm_f32: relu,
        },
    ]
}

/// Millions of elements per second of `f` on `n` elements: by the wall clock (median), or per
/// CPU-second when `per_cpu` is set and the platform reports CPU time.
fn rate(n: usize, runs: usize, per_cpu: bool, f: impl FnMut()) -> f64 {
    let (wall, cpu) = cpu::timed(runs, f);
    let seconds = if per_cpu { cpu.unwrap_or(wall) } else { wall };
    n as f64 / seconds / 1e6
}

/// The rate of a slice kernel on a path; a first call checks that it runs at all.
fn kernel_rate<T>(
    kernel: Kernel<T>,
    isa: Isa,
    src: &[T],
    dst: &mut [T],
    runs: usize,
    cpu: bool,
) -> Result<f64, String> {
    kernel(isa, src, dst).map_err(|e| e.to_string())?;
    Ok(rate(src.len(), runs, cpu, || {
        // The first call has shown that this one cannot fail.
        let _ = std::hint::black_box(kernel(isa, src, dst));
    }))
}

/// The rate of a plain loop over a libm twin.
fn libm_rate<T: Copy>(twin: fn(T) -> T, src: &[T], dst: &mut [T], runs: usize, cpu: bool) -> f64 {
    rate(src.len(), runs, cpu, || {
        dst.iter_mut().zip(src).for_each(|(d, &x)| *d = twin(x));
        std::hint::black_box(&dst);
    })
}

fn main() -> Result<(), String> {
    let (n, runs, cpu) = (arg("--elements", 1_000_000)?, arg("--runs", 21)?, arg("--cpu", 0)? != 0);
    let detected = Isa::detected();
    let how =
        if cpu { format!("mean of {runs} per CPU-second") } else { format!("median of {runs} by the wall clock") };
    println!("{n} elements, {how}, one thread; detected path {detected:?}; M elements/s:");
    println!("{:<10} {:>5} {:>10} {:>10} {:>10}", "function", "type", "detected", "portable", "libm");
    for b in benches() {
        let src: Vec<f64> =
            (0..n).map(|i| b.range.0 + (b.range.1 - b.range.0) * ((i * 7919 % n.max(1)) as f64) / n as f64).collect();
        let mut dst = vec![0.0; n];
        let fast = kernel_rate(b.f64, detected, &src, &mut dst, runs, cpu)?;
        let portable = kernel_rate(b.f64, Isa::Portable, &src, &mut dst, runs, cpu)?;
        let twin = libm_rate(b.libm_f64, &src, &mut dst, runs, cpu);
        println!("{:<10} {:>5} {fast:>10.1} {portable:>10.1} {twin:>10.1}", b.name, "f64");

        let src: Vec<f32> = src.iter().map(|&x| x as f32).collect();
        let mut dst = vec![0.0f32; n];
        let fast = kernel_rate(b.f32, detected, &src, &mut dst, runs, cpu)?;
        let portable = kernel_rate(b.f32, Isa::Portable, &src, &mut dst, runs, cpu)?;
        let twin = libm_rate(b.libm_f32, &src, &mut dst, runs, cpu);
        println!("{:<10} {:>5} {fast:>10.1} {portable:>10.1} {twin:>10.1}", b.name, "f32");
    }
    Ok(())
}
