//! pyhf's interpolation codes (`pyhf.interpolators.code0`, `code1`, `code2`, `code4`,
//! `code4p`), written once over [`Scalar`] so that their derivatives in α and in the templates
//! come from dual numbers. Branches are chosen by the real part of α, at pyhf's boundaries.
//!
//! histosys: Δ(α) is linear in the templates for every code, Δ = c_hi(α)·hi + c_lo(α)·lo +
//! c_nom(α)·nom, so [`histosys_coefficients`] returns the three coefficients, which depend on α
//! alone and are computed once per parameter value rather than once per bin.

use super::modifier::{HistoSysCode, NormSysCode};
use super::scalar::Scalar;

/// The coefficients (c_hi, c_lo, c_nom) of Δ(α) for the histosys code.
pub fn histosys_coefficients<T: Scalar>(code: HistoSysCode, alpha: T) -> [T; 3] {
    let a = alpha.re();
    let zero = T::zero();
    match code {
        // Piecewise linear: α·(hi − nom) above 0, α·(nom − lo) below.
        HistoSysCode::Code0 => {
            if a > 0.0 {
                [alpha, zero, -alpha]
            } else {
                [zero, -alpha, alpha]
            }
        }
        // Quadratic inside [−1, 1], a·α² + b·α with a = ½(hi + lo) − nom and b = ½(hi − lo);
        // linear outside, (b ± 2a)(α ∓ 1), as pyhf has it (not continuous at |α| = 1).
        HistoSysCode::Code2 => {
            if a > 1.0 {
                let t = alpha - 1.0;
                [t * 1.5, t * 0.5, t * -2.0]
            } else if a >= -1.0 {
                let (sq, half) = (alpha * alpha * 0.5, alpha * 0.5);
                [sq + half, sq - half, alpha * alpha * -1.0]
            } else {
                let t = alpha + 1.0;
                [t * -0.5, t * -1.5, t * 2.0]
            }
        }
        // Linear outside [−1, 1]; inside a sixth-order polynomial matching value, slope and
        // curvature of the linear pieces at ±1: α·(S + α·A·(15 + α²(3α² − 10))) with
        // S = ½(hi − lo) and A = (hi + lo − 2·nom)/16.
        HistoSysCode::Code4p => {
            if a > 1.0 {
                [alpha, zero, -alpha]
            } else if a < -1.0 {
                [zero, -alpha, alpha]
            } else {
                let a2 = alpha * alpha;
                let even = a2 * ((a2 * (a2 * 3.0 - 10.0)) + 15.0) / 16.0;
                let half = alpha * 0.5;
                [half + even, even - half, even * -2.0]
            }
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

/// κ(α) for the factors `hi` and `lo` at α = ±1.
pub fn normsys<T: Scalar>(code: NormSysCode, alpha: T, hi: T, lo: T) -> T {
    let a = alpha.re();
    // Exponential: hi^α for α ≥ 0, lo^(−α) below (at exactly α = −1 pyhf takes lo¹, which the
    // code 4 polynomial also equals).
    let exponential = || if a >= 0.0 { hi.powf(alpha) } else { lo.powf(-alpha) };
    match code {
        NormSysCode::Code1 => exponential(),
        // Exponential for |α| ≥ 1; inside, 1 + Σᵢ aᵢ αⁱ with a = A⁻¹ b and
        // b = (hi − 1, lo − 1, hi ln hi, −lo ln lo, hi ln² hi, lo ln² lo), which matches value,
        // slope and curvature at ±1.
        NormSysCode::Code4 => {
            if a.abs() >= 1.0 {
                return exponential();
            }
            let (lh, ll) = (hi.ln(), lo.ln());
            let rhs = [hi - 1.0, lo - 1.0, hi * lh, -(lo * ll), hi * lh * lh, lo * ll * ll];
            let mut poly = T::cst(1.0);
            let mut power = alpha;
            for row in CODE4_A_INVERSE {
                let mut coefficient = rhs[0] * row[0];
                for k in 1..6 {
                    coefficient += rhs[k] * row[k];
                }
                poly += coefficient * power;
                power *= alpha;
            }
            poly
        }
    }
}
