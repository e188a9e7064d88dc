//! pyhf's interpolation codes, written in IR operations so that they are differentiable in
//! α and in the templates (which in neos come from the network).
//!
//! Additive codes (histosys) give Δ(α) to add to the nominal; multiplicative codes (normsys)
//! give the factor κ(α), with `hi` and `lo` the factors at α = ±1. Each follows
//! `pyhf.interpolators.codeN` exactly, including its branch boundaries.

use crate::builder::Tensor;

/// Which histosys interpolation to use (`pyhf`'s `code0`, `code2`, `code4p`; default 4p).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoSysCode {
    Code0,
    Code2,
    #[default]
    Code4p,
}

/// Which normsys interpolation to use (`pyhf`'s `code1`, `code4`; default 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormSysCode {
    Code1,
    #[default]
    Code4,
}

/// Δ(α) for templates `nom`, `hi`, `lo` (bins) and a scalar α.
pub fn histosys<'b>(
    code: HistoSysCode,
    alpha: Tensor<'b>,
    nom: Tensor<'b>,
    hi: Tensor<'b>,
    lo: Tensor<'b>,
) -> Tensor<'b> {
    let b = alpha.builder();
    let up = hi - nom;
    let down = nom - lo;
    match code {
        // Piecewise linear: α·(hi − nom) above 0, α·(nom − lo) below.
        HistoSysCode::Code0 => b.select(alpha.gt(alpha.lit(0.0)), up * alpha, down * alpha),
        // Quadratic inside [−1, 1], a·α² + b·α with a = ½(hi + lo) − nom and b = ½(hi − lo);
        // linear outside, (b ± 2a)(α ∓ 1), as pyhf has it (not continuous at |α| = 1).
        HistoSysCode::Code2 => {
            let a = (hi + lo) * 0.5 - nom;
            let slope = (hi - lo) * 0.5;
            let inside = a * alpha * alpha + slope * alpha;
            let above = (slope + a * 2.0) * (alpha - 1.0);
            let below = (slope - a * 2.0) * (alpha + 1.0);
            b.select(alpha.gt(alpha.lit(1.0)), above, b.select(alpha.ge(alpha.lit(-1.0)), inside, below))
        }
        // A sixth-order polynomial inside [−1, 1] matching value, slope and curvature of the
        // linear extrapolations α·(hi − nom) and α·(nom − lo) at the boundaries:
        // α·(S + α·A·(15 + α²(3α² − 10))) with S = ½(Δ⁺ + Δ⁻), A = (Δ⁺ − Δ⁻)/16.
        HistoSysCode::Code4p => {
            let s = (up + down) * 0.5;
            let a = (up - down) * 0.0625;
            let a2 = alpha * alpha;
            let inside = alpha * (s + alpha * a * (15.0 + a2 * (a2 * 3.0 - 10.0)));
            b.select(alpha.gt(alpha.lit(1.0)), up * alpha, b.select(alpha.lt(alpha.lit(-1.0)), down * alpha, inside))
        }
    }
}

/// The inverse of the 6×6 boundary-condition matrix of code 4 at α₀ = 1 (pyhf's `A_inverse`).
const CODE4_A_INVERSE: [[f64; 6]; 6] = [
    [15.0 / 16.0, -15.0 / 16.0, -7.0 / 16.0, -7.0 / 16.0, 1.0 / 16.0, -1.0 / 16.0],
    [3.0 / 2.0, 3.0 / 2.0, -9.0 / 16.0, 9.0 / 16.0, 1.0 / 16.0, 1.0 / 16.0],
    [-5.0 / 8.0, 5.0 / 8.0, 5.0 / 8.0, 5.0 / 8.0, -1.0 / 8.0, 1.0 / 8.0],
    [-3.0 / 2.0, -3.0 / 2.0, 7.0 / 8.0, -7.0 / 8.0, -1.0 / 8.0, -1.0 / 8.0],
    [3.0 / 16.0, -3.0 / 16.0, -3.0 / 16.0, -3.0 / 16.0, 1.0 / 16.0, -1.0 / 16.0],
    [1.0 / 2.0, 1.0 / 2.0, -5.0 / 16.0, 5.0 / 16.0, 1.0 / 16.0, 1.0 / 16.0],
];

/// κ(α) for factors `hi` and `lo` at α = ±1 and a scalar α.
pub fn normsys<'b>(code: NormSysCode, alpha: Tensor<'b>, hi: Tensor<'b>, lo: Tensor<'b>) -> Tensor<'b> {
    let b = alpha.builder();
    // Exponential: hi^α for α ≥ 0, lo^(−α) below.
    let exponential = |at_or_above: f64| b.select(alpha.ge(alpha.lit(at_or_above)), hi.pow(alpha), lo.pow(-alpha));
    match code {
        NormSysCode::Code1 => exponential(0.0),
        // Exponential for |α| ≥ 1; inside, 1 + Σᵢ aᵢ αⁱ with a = A⁻¹ b and
        // b = (hi − 1, lo − 1, hi ln hi, −lo ln lo, hi ln² hi, lo ln² lo), which matches value,
        // slope and curvature at ±1.
        NormSysCode::Code4 => {
            let (lh, ll) = (hi.log(), lo.log());
            let rhs = [hi - 1.0, lo - 1.0, hi * lh, -(lo * ll), hi * lh * lh, lo * ll * ll];
            let mut poly = alpha.lit(1.0);
            let mut power = alpha;
            for row in CODE4_A_INVERSE {
                let coefficient = (1..6).fold(rhs[0] * row[0], |acc, k| acc + rhs[k] * row[k]);
                poly = poly + coefficient * power;
                power = power * alpha;
            }
            // At exactly α = −1 pyhf takes lo¹, which the polynomial also equals.
            b.select(alpha.abs().ge(alpha.lit(1.0)), exponential(0.0), poly)
        }
    }
}
