//! The binned kernel density estimate (`relaxed.hist`) as a kernel: counts, and in one pass
//! over events and edges the derivatives with respect to the values, the edges and the
//! bandwidth. Events are split into chunks processed in parallel; per-chunk partial sums of
//! the edge and bandwidth derivatives are added in chunk order, so results do not depend on
//! the number of threads.
//!
//! Within a chunk, blocks of 16 events go through each edge together: Φ or φ of the whole block
//! is computed by the branch-free functions of [`crate::math`] in short staged loops that LLVM
//! vectorises, with AVX2 when the CPU has it (chosen once at run time; both paths give the same
//! bits), and the sums stay in per-lane accumulators that are added in a fixed order. The
//! kernels take z = (e − t)·(1/h), one rounding away from the reference's (e − t)/h. Against
//! the `reference` twins (libm's erfc and exp) the counts agree to 2e-14 relative on bins that
//! hold events and the value derivatives to 1e-15 (measured over sizes 1 to 20000, bandwidths
//! 1e-3 to 3, with and without reflection); the tests assert 1e-13.
//!
//! count_j = Σᵢ [Φ(z_{i,j+1}) − Φ(z_{i,j})] with z_{i,k} = (e_k − tᵢ)/h; with `reflect`, the
//! mass below e₀ and above e_B joins the end bins. Given the counts' adjoint ḡ, with
//! a_k = ḡ_{k−1} − ḡ_k (zero at both ends when reflecting):
//! ∂/∂tᵢ = −Σ_k a_k φ(z_{ik})/h, ∂/∂e_k = Σᵢ a_k φ(z_{ik})/h, ∂/∂h = −Σ_{ik} a_k φ(z_{ik}) z_{ik}/h.

use rayon::prelude::*;

use crate::error::RunError;
use crate::math::{norm_pdf_f64_block, norm_tail_f64_block, Isa};

/// Events per parallel task: large enough that scheduling costs little next to
/// (B + 1) special-function evaluations per event.
const CHUNK: usize = 1024;

/// Below this many events (up to one chunk) a histogram is taken on the calling thread, without
/// handing work to rayon's pool and waiting for it. From two chunks up, splitting pays even on
/// a batch of 2000 events (forward 0.08 → 0.04 ms, backward 0.08 → 0.05 ms with 4 bins on this
/// 2-core machine; `RAYON_NUM_THREADS=1|2 cargo run --release --example bench_hist -- --events
/// 2000`). The chunks, and so the results, are the same either way.
pub const PARALLEL_MIN_EVENTS: usize = CHUNK + 1;

/// Events per block within a chunk. Each edge's Φ or φ is computed for a whole block in one
/// loop, which LLVM vectorises and interleaves (four AVX2 vectors of independent polynomial
/// chains); per-lane accumulators keep the sums vectorised too and in a fixed order.
const LANES: usize = 16;

/// Φ(x) = ½ erfc(−x/√2), through libm as the interpreter computes it (the reference twins
/// use it; the kernels use the vectorisable [`crate::math::norm_cdf_f64`] family).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// φ(x) = exp(−x²/2)/√(2π).
pub fn norm_pdf(x: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// The counts for `values` in the bins between `edges` (B + 1 increasing edges).
///
/// Each event's share of a bin is a difference of Φ at the two edges, taken as a difference
/// of upper tails when the event lies below both edges (Φ(b) − Φ(a) = Φ(−a) − Φ(−b)), so far
/// bins keep relative precision that differences of values near 1 would lose.
pub fn forward(values: &[f64], edges: &[f64], bandwidth: f64, reflect: bool) -> Vec<f64> {
    forward_with(Isa::detected(), values, edges, bandwidth, reflect)
}

/// [`forward`] on a given instruction-set path (for tests and benchmarks); an error if this CPU
/// lacks it.
pub fn forward_on(
    isa: Isa,
    values: &[f64],
    edges: &[f64],
    bandwidth: f64,
    reflect: bool,
) -> Result<Vec<f64>, RunError> {
    check_isa("hist::forward", isa)?;
    Ok(forward_with(isa, values, edges, bandwidth, reflect))
}

fn check_isa(op: &str, isa: Isa) -> Result<(), RunError> {
    if isa.is_available() {
        Ok(())
    } else {
        Err(RunError::new(op, format!("expected an instruction set this cpu supports, found {isa:?}")))
    }
}

fn forward_with(isa: Isa, values: &[f64], edges: &[f64], bandwidth: f64, reflect: bool) -> Vec<f64> {
    let bins = edges.len().saturating_sub(1);
    if bins == 0 {
        return Vec::new();
    }
    let chunk = |chunk: &[f64]| forward_chunk(isa, chunk, edges, bandwidth, reflect);
    let partials: Vec<Vec<f64>> = if values.len() < PARALLEL_MIN_EVENTS {
        values.chunks(CHUNK).map(chunk).collect()
    } else {
        values.par_chunks(CHUNK).map(chunk).collect()
    };
    sum_in_order(partials, bins)
}

fn forward_chunk(isa: Isa, chunk: &[f64], edges: &[f64], h: f64, reflect: bool) -> Vec<f64> {
    match isa {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        // SAFETY: `Isa::Avx2Fma` reaches here only from `Isa::detected` or after `check_isa`.
        Isa::Avx2Fma => unsafe { forward_chunk_avx2(chunk, edges, h, reflect) },
        _ => forward_chunk_body(chunk, edges, h, reflect),
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_chunk_avx2(chunk: &[f64], edges: &[f64], h: f64, reflect: bool) -> Vec<f64> {
    forward_chunk_body(chunk, edges, h, reflect)
}

/// One chunk's counts: full blocks of `LANES` events into per-lane accumulators, the rest
/// event by event into lane 0, then the lanes summed in order.
#[inline(always)]
fn forward_chunk_body(chunk: &[f64], edges: &[f64], h: f64, reflect: bool) -> Vec<f64> {
    let bins = edges.len() - 1;
    let inv_h = 1.0 / h;
    let mut acc = vec![[0.0; LANES]; bins];
    let mut blocks = chunk.chunks_exact(LANES);
    for block in &mut blocks {
        if let Ok(t) = <&[f64; LANES]>::try_from(block) {
            forward_block(t, edges, inv_h, reflect, &mut acc);
        }
    }
    // The last events, one at a time: the padding lanes repeat the event and are dropped.
    let mut lane = vec![[0.0; LANES]; bins];
    for &t in blocks.remainder() {
        lane.iter_mut().for_each(|l| *l = [0.0; LANES]);
        forward_block(&[t; LANES], edges, inv_h, reflect, &mut lane);
        for (a, l) in acc.iter_mut().zip(&lane) {
            a[0] += l[0];
        }
    }
    acc.iter().map(|lanes| lanes.iter().sum()).collect()
}

/// Adds the shares of `LANES` events to the per-lane accumulators of every bin.
#[inline(always)]
fn forward_block(t: &[f64; LANES], edges: &[f64], inv_h: f64, reflect: bool, acc: &mut [[f64; LANES]]) {
    let bins = edges.len() - 1;
    // z, Φ(−|z|) and Φ(z) at the previous edge.
    let mut z_prev = [0.0; LANES];
    let mut q_prev = [0.0; LANES];
    let mut p_prev = [0.0; LANES];
    for (k, &e) in edges.iter().enumerate() {
        let mut z = [0.0; LANES];
        for i in 0..LANES {
            z[i] = (e - t[i]) * inv_h;
        }
        let q = norm_tail_f64_block(&z);
        let mut p = [0.0; LANES];
        for i in 0..LANES {
            p[i] = if z[i] < 0.0 { q[i] } else { 1.0 - q[i] };
        }
        if k > 0 {
            let a = &mut acc[k - 1];
            for i in 0..LANES {
                // Below both edges the upper tails keep the precision of a far bin.
                a[i] += if z_prev[i] >= 0.0 { q_prev[i] - q[i] } else { p[i] - p_prev[i] };
            }
        }
        if reflect && k == 0 {
            // The mass below e₀, Φ(z₀), joins the first bin.
            for i in 0..LANES {
                acc[0][i] += p[i];
            }
        }
        if reflect && k == bins {
            // The mass above e_B, Φ(−z_B), joins the last bin.
            for i in 0..LANES {
                acc[bins - 1][i] += if z[i] > 0.0 { q[i] } else { 1.0 - q[i] };
            }
        }
        z_prev = z;
        q_prev = q;
        p_prev = p;
    }
}

/// The derivatives of Σ_j ḡ_j count_j.
#[derive(Clone, Debug, PartialEq)]
pub struct HistGradients {
    pub values: Vec<f64>,
    pub edges: Vec<f64>,
    pub bandwidth: f64,
}

/// One fused pass computing all three derivatives for the counts' adjoint `adjoint` (B values,
/// one per bin; anything else is an error).
pub fn backward(
    values: &[f64],
    edges: &[f64],
    bandwidth: f64,
    reflect: bool,
    adjoint: &[f64],
) -> Result<HistGradients, RunError> {
    check_adjoint(edges, adjoint)?;
    Ok(backward_with(Isa::detected(), values, edges, bandwidth, reflect, adjoint))
}

fn check_adjoint(edges: &[f64], adjoint: &[f64]) -> Result<(), RunError> {
    if edges.len() < 2 || adjoint.len() != edges.len() - 1 {
        return Err(RunError::new(
            "hist::backward",
            format!(
                "expected at least 2 edges and one adjoint value per bin, found {} edges and {} adjoint values",
                edges.len(),
                adjoint.len()
            ),
        ));
    }
    Ok(())
}

/// [`backward`] on a given instruction-set path (for tests and benchmarks); an error if this
/// CPU lacks it.
pub fn backward_on(
    isa: Isa,
    values: &[f64],
    edges: &[f64],
    bandwidth: f64,
    reflect: bool,
    adjoint: &[f64],
) -> Result<HistGradients, RunError> {
    check_isa("hist::backward", isa)?;
    check_adjoint(edges, adjoint)?;
    Ok(backward_with(isa, values, edges, bandwidth, reflect, adjoint))
}

fn backward_with(
    isa: Isa,
    values: &[f64],
    edges: &[f64],
    bandwidth: f64,
    reflect: bool,
    adjoint: &[f64],
) -> HistGradients {
    let a = edge_weights(adjoint, reflect);
    let n_edges = edges.len();
    let mut d_values = vec![0.0; values.len()];
    let chunk = |(chunk, d_chunk): (&[f64], &mut [f64])| backward_chunk(isa, chunk, d_chunk, edges, bandwidth, &a);
    let partials: Vec<Vec<f64>> = if values.len() < PARALLEL_MIN_EVENTS {
        values.chunks(CHUNK).zip(d_values.chunks_mut(CHUNK)).map(chunk).collect()
    } else {
        values.par_chunks(CHUNK).zip(d_values.par_chunks_mut(CHUNK)).map(chunk).collect()
    };
    let mut sums = sum_in_order(partials, n_edges + 1);
    let d_bandwidth = sums.pop().unwrap_or(0.0);
    HistGradients { values: d_values, edges: sums, bandwidth: d_bandwidth }
}

fn backward_chunk(isa: Isa, chunk: &[f64], d: &mut [f64], edges: &[f64], h: f64, a: &[f64]) -> Vec<f64> {
    match isa {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        // SAFETY: `Isa::Avx2Fma` reaches here only from `Isa::detected` or after `check_isa`.
        Isa::Avx2Fma => unsafe { backward_chunk_avx2(chunk, d, edges, h, a) },
        _ => backward_chunk_body(chunk, d, edges, h, a),
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_chunk_avx2(chunk: &[f64], d: &mut [f64], edges: &[f64], h: f64, a: &[f64]) -> Vec<f64> {
    backward_chunk_body(chunk, d, edges, h, a)
}

/// One chunk's value derivatives (written to `d`) and its partial sums of the edge
/// derivatives, with the bandwidth derivative in the last slot.
#[inline(always)]
fn backward_chunk_body(chunk: &[f64], d: &mut [f64], edges: &[f64], h: f64, a: &[f64]) -> Vec<f64> {
    let n_edges = edges.len();
    let inv_h = 1.0 / h;
    // Per-lane partial sums: the edges, then the bandwidth.
    let mut acc = vec![[0.0; LANES]; n_edges + 1];
    let mut blocks = chunk.chunks_exact(LANES);
    let mut d_blocks = d.chunks_exact_mut(LANES);
    for (block, d_block) in (&mut blocks).zip(&mut d_blocks) {
        if let (Ok(t), Ok(dt)) = (<&[f64; LANES]>::try_from(block), <&mut [f64; LANES]>::try_from(d_block)) {
            *dt = backward_block(t, edges, inv_h, a, &mut acc);
        }
    }
    // The last events, one at a time: the padding lanes repeat the event and are dropped.
    let mut lane = vec![[0.0; LANES]; n_edges + 1];
    for (&t, dt) in blocks.remainder().iter().zip(d_blocks.into_remainder()) {
        lane.iter_mut().for_each(|l| *l = [0.0; LANES]);
        *dt = backward_block(&[t; LANES], edges, inv_h, a, &mut lane)[0];
        for (acc, l) in acc.iter_mut().zip(&lane) {
            acc[0] += l[0];
        }
    }
    acc.iter().map(|lanes| lanes.iter().sum()).collect()
}

/// The value derivatives of `LANES` events; adds their edge and bandwidth terms to `acc`.
#[inline(always)]
fn backward_block(t: &[f64; LANES], edges: &[f64], inv_h: f64, a: &[f64], acc: &mut [[f64; LANES]]) -> [f64; LANES] {
    let n_edges = edges.len();
    let mut dt = [0.0; LANES];
    let mut dh = [0.0; LANES];
    for k in 0..n_edges {
        let (e, ak) = (edges[k], a[k] * inv_h);
        let mut z = [0.0; LANES];
        for i in 0..LANES {
            z[i] = (e - t[i]) * inv_h;
        }
        let density = norm_pdf_f64_block(&z);
        let acc_k = &mut acc[k];
        for i in 0..LANES {
            let w = ak * density[i];
            dt[i] -= w;
            acc_k[i] += w;
            dh[i] -= w * z[i];
        }
    }
    let acc_h = &mut acc[n_edges];
    for i in 0..LANES {
        acc_h[i] += dh[i];
    }
    dt
}

/// a_k = ḡ_{k−1} − ḡ_k over the B + 1 edges (ḡ₋₁ = ḡ_B = 0); reflection zeroes the ends.
fn edge_weights(adjoint: &[f64], reflect: bool) -> Vec<f64> {
    let bins = adjoint.len();
    let mut a: Vec<f64> = (0..=bins)
        .map(|k| {
            let before = if k > 0 { adjoint[k - 1] } else { 0.0 };
            let after = if k < bins { adjoint[k] } else { 0.0 };
            before - after
        })
        .collect();
    if reflect {
        a[0] = 0.0;
        a[bins] = 0.0;
    }
    a
}

fn sum_in_order(partials: Vec<Vec<f64>>, n: usize) -> Vec<f64> {
    partials.into_iter().fold(vec![0.0; n], |mut total, p| {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
        total
    })
}

/// Scalar reference twins: each quantity computed on its own, event by event, without
/// chunks, fusion or threads. Tests compare the kernels with them.
pub mod reference {
    use super::{norm_cdf, norm_pdf};

    pub fn forward(values: &[f64], edges: &[f64], h: f64, reflect: bool) -> Vec<f64> {
        let bins = edges.len().saturating_sub(1);
        (0..bins)
            .map(|j| {
                values
                    .iter()
                    .map(|&t| {
                        let mut c = norm_cdf((edges[j + 1] - t) / h) - norm_cdf((edges[j] - t) / h);
                        if reflect && j == 0 {
                            c += norm_cdf((edges[0] - t) / h);
                        }
                        if reflect && j == bins - 1 {
                            c += 1.0 - norm_cdf((edges[bins] - t) / h);
                        }
                        c
                    })
                    .sum()
            })
            .collect()
    }

    /// ∂/∂tᵢ of Σ_j ḡ_j count_j, bin by bin.
    pub fn d_values(values: &[f64], edges: &[f64], h: f64, reflect: bool, g: &[f64]) -> Vec<f64> {
        let bins = g.len();
        values
            .iter()
            .map(|&t| {
                let mut d = 0.0;
                for j in 0..bins {
                    // d/dt [Φ((e_{j+1} − t)/h) − Φ((e_j − t)/h)]
                    let mut dj = (-norm_pdf((edges[j + 1] - t) / h) + norm_pdf((edges[j] - t) / h)) / h;
                    if reflect && j == 0 {
                        dj -= norm_pdf((edges[0] - t) / h) / h;
                    }
                    if reflect && j == bins - 1 {
                        dj += norm_pdf((edges[bins] - t) / h) / h;
                    }
                    d += g[j] * dj;
                }
                d
            })
            .collect()
    }
}
