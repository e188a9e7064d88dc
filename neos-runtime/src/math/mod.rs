//! Elementwise special functions for generated loops, in `f64` and `f32`, and slice kernels
//! that apply them with run-time CPU dispatch ([`mod@slice`]).
//!
//! Generated code calls the scalar functions inside its fused loops
//! (`::neos::__private::runtime::math::exp_f64(x)`). Each is branch-free straight-line code —
//! range reduction through the bits of the argument, a polynomial, selects for the special
//! cases — so that a loop calling them vectorises once they are inlined. They use no fused
//! multiply-adds, so they give the same bits on every machine and in every kernel path.
//!
//! Semantics are the interpreter's (`neos_ir::eval`): σ(x) = 1/(1 + e⁻ˣ) and
//! softplus(x) = ln(1 + eˣ) computed without overflow, relu(x) = max(x, 0) with +0 for x ≤ 0,
//! Φ(x) = ½ erfc(−x/√2), φ(x) = e^(−x²/2)/√(2π); NaN in gives NaN out.
//!
//! Accuracy, measured by `tests/math.rs` against libm over dense grids of the whole range, in
//! units in the last place of the twin's value (the worst seen, and the bound the test asserts;
//! the `f64` twins are themselves within about an ulp, the `f32` ones are libm's `f64`
//! functions, so ½ ulp is correct rounding there):
//!
//! | function | `f64` seen / asserted | `f32` seen / asserted |
//! | --- | --- | --- |
//! | exp | 1 / 2 | 0.96 / 2 |
//! | log | 1 / 2 | 0.76 / 2 |
//! | Φ (relative, tails included) | 6 / 8 | 5.4 / 6 |
//! | φ | 3 / 4 | 2.0 / 3 |
//! | sigmoid | 2 / 3 | 2.3 / 3 |
//! | tanh | 3 / 4 | 2.1 / 3 |
//! | softplus | 2 / 3 | 1.4 / 2 |
//! | relu | exact | exact |
//!
//! Against mpmath, Φ's worst cases seen are 3 ulp near −31 (where the twin is 1.5 ulp off on
//! the other side) and 4.6 ulp just below ½, where the spacing of the numbers halves (5e-16
//! relative). In the subnormal range the error is one subnormal step at most: Φ(−38) ≈
//! 2.9e-316 in `f64` and Φ(−13) ≈ 6.1e-39 in `f32` are subnormal and nonzero.
//!
//! The coefficients come from `coefficients.py` beside this file.

mod double;
mod single;
pub mod slice;

pub use double::{exp_f64, log_f64, norm_cdf_f64, norm_pdf_f64, relu_f64, sigmoid_f64, softplus_f64, tanh_f64};
pub(crate) use double::{norm_cdf_f64_block, norm_pdf_f64_block, norm_tail_f64_block, softplus_f64_block};
pub use single::{exp_f32, log_f32, norm_cdf_f32, norm_pdf_f32, relu_f32, sigmoid_f32, softplus_f32, tanh_f32};
pub(crate) use single::{norm_cdf_f32_block, softplus_f32_block};
pub use slice::Isa;
