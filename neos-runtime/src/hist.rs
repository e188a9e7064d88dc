//! The binned kernel density estimate (`relaxed.hist`) as a kernel: counts, and in one pass
//! over events and edges the derivatives with respect to the values, the edges and the
//! bandwidth. Events are split into chunks processed in parallel; per-chunk partial sums of
//! the edge and bandwidth derivatives are added in chunk order, so results do not depend on
//! the number of threads.
//!
//! count_j = Σᵢ [Φ(z_{i,j+1}) − Φ(z_{i,j})] with z_{i,k} = (e_k − tᵢ)/h; with `reflect`, the
//! mass below e₀ and above e_B joins the end bins. Given the counts' adjoint ḡ, with
//! a_k = ḡ_{k−1} − ḡ_k (zero at both ends when reflecting):
//! ∂/∂tᵢ = −Σ_k a_k φ(z_{ik})/h, ∂/∂e_k = Σᵢ a_k φ(z_{ik})/h, ∂/∂h = −Σ_{ik} a_k φ(z_{ik}) z_{ik}/h.

use rayon::prelude::*;

/// Events per parallel task: large enough that scheduling costs little next to
/// 2·(B + 1) special-function evaluations per event.
const CHUNK: usize = 1024;

/// Φ(x) = ½ erfc(−x/√2).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// φ(x) = exp(−x²/2)/√(2π).
pub fn norm_pdf(x: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// The counts for `values` in the bins between `edges` (B + 1 increasing edges).
pub fn forward(values: &[f64], edges: &[f64], bandwidth: f64, reflect: bool) -> Vec<f64> {
    let bins = edges.len().saturating_sub(1);
    let partials: Vec<Vec<f64>> = values
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut counts = vec![0.0; bins];
            let mut cdf = vec![0.0; edges.len()];
            for &t in chunk {
                for (c, &e) in cdf.iter_mut().zip(edges) {
                    *c = norm_cdf((e - t) / bandwidth);
                }
                for j in 0..bins {
                    counts[j] += cdf[j + 1] - cdf[j];
                }
                if reflect && bins > 0 {
                    counts[0] += cdf[0];
                    counts[bins - 1] += norm_cdf((t - edges[bins]) / bandwidth);
                }
            }
            counts
        })
        .collect();
    sum_in_order(partials, bins)
}

/// The derivatives of Σ_j ḡ_j count_j.
#[derive(Clone, Debug, PartialEq)]
pub struct HistGradients {
    pub values: Vec<f64>,
    pub edges: Vec<f64>,
    pub bandwidth: f64,
}

/// One fused pass computing all three derivatives for the counts' adjoint `adjoint` (B values).
pub fn backward(values: &[f64], edges: &[f64], bandwidth: f64, reflect: bool, adjoint: &[f64]) -> HistGradients {
    let a = edge_weights(adjoint, reflect);
    let n_edges = edges.len();
    let inv_h = 1.0 / bandwidth;
    let mut d_values = vec![0.0; values.len()];
    let partials: Vec<Vec<f64>> = values
        .par_chunks(CHUNK)
        .zip(d_values.par_chunks_mut(CHUNK))
        .map(|(chunk, d_chunk)| {
            // Edge derivatives, then the bandwidth derivative in the last slot.
            let mut acc = vec![0.0; n_edges + 1];
            for (&t, d) in chunk.iter().zip(d_chunk.iter_mut()) {
                let mut dt = 0.0;
                for k in 0..n_edges {
                    let z = (edges[k] - t) * inv_h;
                    let w = a[k] * norm_pdf(z) * inv_h;
                    dt -= w;
                    acc[k] += w;
                    acc[n_edges] -= w * z;
                }
                *d = dt;
            }
            acc
        })
        .collect();
    let mut sums = sum_in_order(partials, n_edges + 1);
    let d_bandwidth = sums.pop().unwrap_or(0.0);
    HistGradients { values: d_values, edges: sums, bandwidth: d_bandwidth }
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
