//! The `f64` functions. Every one is straight-line arithmetic on `f64` and `u64` lanes — range
//! reduction through the bits, a polynomial, and selects instead of branches — so that a loop
//! calling them vectorises once they are inlined. None uses fused multiply-adds: the same
//! expression gives the same bits on every machine, with or without FMA, and in the slice
//! kernels' AVX2 path as in their portable one.

/// 1.5·2⁵²: adding it to a value of magnitude below 2⁵¹ rounds that value to an integer k and
/// leaves 2⁵¹ + k in the low mantissa bits, which is how these functions convert between
/// floats and integers without the conversion instructions AVX2 lacks for 64-bit lanes.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// ln 2 in two parts: the high part has 42 significant bits, so k·LN2_HI is exact for |k| < 2¹¹.
const LN2_HI: f64 = 0.693_147_180_559_890_3;
const LN2_LO: f64 = 5.497_923_018_708_371e-14;
const MANTISSA: u64 = (1 << 52) - 1;
/// The bits of √½; log reduces its argument to a mantissa in [√½, √2).
const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;

// The coefficients come from `coefficients.py` beside this file, which prints each one's
// worst relative error on its interval.

/// (expm1(r) − r)/r² on |r| ≤ ln2/2; relative error 4.6e-19 of expm1.
const EXPM1: [f64; 11] = [
    0.5,
    0.1666666666666667,
    0.04166666666666664,
    0.008333333333325902,
    0.0013888888888910229,
    0.00019841269875389388,
    2.4801587259431607e-05,
    2.7557254849751965e-06,
    2.7557338868151205e-07,
    2.510540160666389e-08,
    2.089247555775794e-09,
];

/// (2 atanh(s)/s − 2)/s² in z = s² ∈ [0, 0.0401] (s = f/(2 + f) for log(1 + f)); relative
/// error 7.4e-19 of the log.
const LOG: [f64; 8] = [
    0.6666666666666666,
    0.4000000000000906,
    0.2857142856697585,
    0.22222223083821704,
    0.18181735472396654,
    0.15388937894181992,
    0.13208546219574008,
    0.13616739424011584,
];

/// H(t) with Φ(−a) = exp(−a²/2)·H(t)·K/(a + K), t = (a − K)/(a + K), K = 5, for a ∈ [0, 38.6]:
/// the transformation makes the scaled tail smooth and nearly constant over the whole range,
/// so one polynomial keeps the relative precision from the centre to the underflow.
/// Relative error 5.4e-17.
const PHI_TAIL: [f64; 24] = [
    0.15383860995001258,
    -0.13307650057801135,
    0.09906112319399622,
    -0.06270663133425956,
    0.033004073234044924,
    -0.013823727741315997,
    0.004159013360468112,
    -0.0005986753531731339,
    -0.00015957388371804832,
    0.0001089798043972943,
    -1.1875126834083433e-05,
    -9.95251613742374e-06,
    3.3361939196253792e-06,
    7.960225436527857e-07,
    -5.537978670979638e-07,
    -6.699150434489908e-08,
    8.666499243026355e-08,
    8.040689434941429e-09,
    -1.3379517983162274e-08,
    -1.5956079845471482e-09,
    1.7496015650885233e-09,
    3.054900202462277e-10,
    -1.1836198760104844e-10,
    -2.2374342491596067e-11,
];
const PHI_K: f64 = 5.0;
/// Φ(−38.6) is below half the smallest subnormal, so larger |x| need not be evaluated.
const PHI_LIMIT: f64 = 38.6;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

// Polynomials c₀ + c₁x + … by Estrin's scheme: pairs c₂ᵢ + c₂ᵢ₊₁x, then pairs of those with
// x², x⁴, … The dependency chain is about log₂N multiply-adds deep instead of N for Horner's
// rule, so the core can overlap the work of neighbouring vectors (with Horner's rule the 24
// terms of Φ alone are a ~140-cycle chain and the throughput halves). One function per length
// used, written out so that nothing depends on the optimiser unrolling a loop.

#[inline(always)]
fn poly11(x: f64, c: &[f64; 11]) -> f64 {
    let x2 = x * x;
    let x4 = x2 * x2;
    let x8 = x4 * x4;
    let p = |i: usize| c[i] + c[i + 1] * x;
    let q = |i: usize| p(i) + p(i + 2) * x2;
    (q(0) + q(4) * x4) + (p(8) + c[10] * x2) * x8
}

#[inline(always)]
fn poly8(x: f64, c: &[f64; 8]) -> f64 {
    let x2 = x * x;
    let x4 = x2 * x2;
    let p = |i: usize| c[i] + c[i + 1] * x;
    let q = |i: usize| p(i) + p(i + 2) * x2;
    q(0) + q(4) * x4
}

#[inline(always)]
fn poly24(x: f64, c: &[f64; 24]) -> f64 {
    let x2 = x * x;
    let x4 = x2 * x2;
    let x8 = x4 * x4;
    let x16 = x8 * x8;
    let p = |i: usize| c[i] + c[i + 1] * x;
    let q = |i: usize| p(i) + p(i + 2) * x2;
    let r = |i: usize| q(i) + q(i + 4) * x4;
    (r(0) + r(8) * x8) + r(16) * x16
}

/// 2ᵏ from t = SHIFT + k, for −1022 ≤ k ≤ 1023: k + 1023 is moved into the exponent field.
#[inline(always)]
fn pow2(t: f64) -> f64 {
    f64::from_bits(t.to_bits().wrapping_add(1023) << 52)
}

/// x with values above `hi` replaced by `hi`; NaN stays NaN (unlike `f64::min`).
#[inline(always)]
fn cap(x: f64, hi: f64) -> f64 {
    if x > hi {
        hi
    } else {
        x
    }
}

/// exp(x − lo) as (m, t₁, t₂) with the value m·2^k₁·2^k₂, where tᵢ = SHIFT + kᵢ, for
/// −746 ≤ x ≤ 710. The caller multiplies m by its other factors before the two powers of two,
/// so a subnormal result is rounded once. `lo` is a correction below the rounding of x.
#[inline(always)]
fn exp_parts(x: f64, lo: f64) -> (f64, f64, f64) {
    let t = x * std::f64::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    // x − k·LN2_HI is exact: k·LN2_HI is, and it lies within a factor 2 of x.
    let r = ((x - k * LN2_HI) - k * LN2_LO) - lo;
    let m = 1.0 + (r + r * r * poly11(r, &EXPM1));
    // Two halves of k, so that both powers are normal numbers for every k this range reaches.
    let t1 = k * 0.5 + SHIFT;
    let t2 = (k - (t1 - SHIFT)) + SHIFT;
    (m, t1, t2)
}

/// eˣ to 1 ulp (measured against libm). Below −745.2 it is 0, above 709.8 it is +∞.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    // Past these bounds the result is 0 or ∞ already; capping keeps k small.
    let x = cap(x, 710.0);
    let x = if x < -746.0 { -746.0 } else { x };
    let (m, t1, t2) = exp_parts(x, 0.0);
    m * pow2(t1) * pow2(t2)
}

/// eʸ − 1 for 0 ≤ y ≤ 40, with the relative precision of y for small y.
#[inline(always)]
fn expm1_nonneg(y: f64) -> f64 {
    let t = y * std::f64::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let p = r + r * r * poly11(r, &EXPM1);
    // 2ᵏ(1 + p) − 1 = 2ᵏp + (2ᵏ − 1); both terms are exact for k ≤ 53.
    let s = pow2(t);
    s * p + (s - 1.0)
}

/// e·ln 2 + log(1 + f) for f ∈ [−0.3, 0.5], with log(1 + f) = 2 atanh(s), s = f/(2 + f), written
/// as f − (f²/2 − s(f²/2 + R)) so that f itself is never rounded.
#[inline(always)]
fn log_reduced(e: f64, f: f64) -> f64 {
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * poly8(z, &LOG);
    let hfsq = 0.5 * f * f;
    e * LN2_HI + (f - (hfsq - (s * (hfsq + r) + e * LN2_LO)))
}

/// ln x to 1 ulp (measured against libm): −∞ at ±0, NaN below 0, +∞ at +∞.
#[inline(always)]
pub fn log_f64(x: f64) -> f64 {
    // Subnormals are scaled into the normal range first (by 2⁵⁴).
    let tiny = x < f64::MIN_POSITIVE;
    let y = if tiny { x * 18_014_398_509_481_984.0 } else { x };
    // Subtracting the mantissa of √½ moves the exponent boundary from 1 to √½: the exponent
    // field of w is then e + 1022 for y = 2ᵉ·m with m ∈ [√½, √2), and adding the bits of √½
    // back to the remaining mantissa gives m.
    let w = y.to_bits().wrapping_sub(SQRT_HALF_BITS & MANTISSA);
    let m = f64::from_bits((w & MANTISSA) + SQRT_HALF_BITS);
    let e = f64::from_bits((w >> 52) + SHIFT.to_bits()) - (SHIFT + 1022.0);
    let e = if tiny { e - 54.0 } else { e };
    let l = log_reduced(e, m - 1.0);
    let l = if x == 0.0 { f64::NEG_INFINITY } else { l };
    let l = if x == f64::INFINITY { x } else { l };
    if x >= 0.0 {
        l
    } else {
        f64::NAN
    }
}

/// ln(1 + u) for u ∈ [0, 1]: above ½ the argument is 2·(1 + (u − 1)/2), where u − 1 is exact.
#[inline(always)]
fn log1p_unit(u: f64) -> f64 {
    let above = u > 0.5;
    let f = if above { (u - 1.0) * 0.5 } else { u };
    log_reduced(if above { 1.0 } else { 0.0 }, f)
}

/// (hi, lo) with hi + lo = x²/2 exactly, by Dekker's splitting (no FMA needed), for |x| ≤ 2⁴⁰.
#[inline(always)]
fn half_square(x: f64) -> (f64, f64) {
    let c = 134_217_729.0 * x; // (2²⁷ + 1)·x
    let x_hi = c - (c - x);
    let x_lo = x - x_hi;
    let hi = x * x;
    let lo = ((x_hi * x_hi - hi) + 2.0 * x_hi * x_lo) + x_lo * x_lo;
    (0.5 * hi, 0.5 * lo)
}

/// Φ(x), the standard normal distribution function, to a few ulps *relative* over the whole
/// range: Φ(−8) = 6.22e-16 and Φ(−37) = 5.7e-300 keep their digits, Φ(−38) is subnormal and
/// Φ(x) = 0 below −38.5. For x > 0 it is 1 − Φ(−x), which is ≥ ½, so the subtraction loses
/// nothing. The exponent x²/2 is carried exactly (the interpreter's erfc(−x/√2) rounds x/√2,
/// which costs up to x²·2⁻⁵³ relative, 1.6e-13 at x = −38).
#[inline(always)]
pub fn norm_cdf_f64(x: f64) -> f64 {
    let q = norm_tail_f64(x);
    if x < 0.0 {
        q
    } else {
        1.0 - q
    }
}

/// Φ(−|x|), the smaller of the two tails at x, with relative precision (see [`norm_cdf_f64`]).
/// The histogram kernel takes differences of tails from it, which keep their precision where
/// differences of Φ values near 1 would not.
#[inline(always)]
fn norm_tail_f64(x: f64) -> f64 {
    let a = cap(x.abs(), PHI_LIMIT);
    let r = 1.0 / (a + PHI_K);
    let t = (a - PHI_K) * r;
    let h = poly24(t, &PHI_TAIL);
    let (hi, lo) = half_square(a);
    let (m, t1, t2) = exp_parts(-hi, lo);
    m * (h * (PHI_K * r)) * pow2(t1) * pow2(t2)
}

/// [`norm_tail_f64`] of a block of values, in stages (the reciprocal, the polynomial, the
/// exponential), each a short loop over the block. Short loops are what LLVM vectorises *and*
/// interleaves, so several vectors' chains are in flight at once; the bits are those of
/// `norm_tail_f64`, which does the same operations.
#[inline(always)]
pub(crate) fn norm_tail_f64_block<const L: usize>(x: &[f64; L]) -> [f64; L] {
    let mut a = [0.0; L];
    let mut r = [0.0; L];
    let mut h = [0.0; L];
    for i in 0..L {
        a[i] = cap(x[i].abs(), PHI_LIMIT);
        r[i] = 1.0 / (a[i] + PHI_K);
    }
    for i in 0..L {
        h[i] = poly24((a[i] - PHI_K) * r[i], &PHI_TAIL) * (PHI_K * r[i]);
    }
    let mut q = [0.0; L];
    for i in 0..L {
        let (hi, lo) = half_square(a[i]);
        let (m, t1, t2) = exp_parts(-hi, lo);
        q[i] = m * h[i] * pow2(t1) * pow2(t2);
    }
    q
}

/// φ(x) = exp(−x²/2)/√(2π) to a few ulps relative, with x²/2 carried exactly; 0 beyond |x| ≈ 38.6.
#[inline(always)]
pub fn norm_pdf_f64(x: f64) -> f64 {
    // φ(40) is 0 already; the cap keeps Dekker's splitting away from overflow.
    let a = cap(x.abs(), 40.0);
    let (hi, lo) = half_square(a);
    let (m, t1, t2) = exp_parts(-hi, lo);
    m * INV_SQRT_2PI * pow2(t1) * pow2(t2)
}

/// [`norm_pdf_f64`] of a block of values in two short loops (see [`norm_tail_f64_block`]);
/// the same bits.
#[inline(always)]
pub(crate) fn norm_pdf_f64_block<const L: usize>(x: &[f64; L]) -> [f64; L] {
    let mut hi = [0.0; L];
    let mut lo = [0.0; L];
    for i in 0..L {
        (hi[i], lo[i]) = half_square(cap(x[i].abs(), 40.0));
    }
    let mut y = [0.0; L];
    for i in 0..L {
        let (m, t1, t2) = exp_parts(-hi[i], lo[i]);
        y[i] = m * INV_SQRT_2PI * pow2(t1) * pow2(t2);
    }
    y
}

/// σ(x) = 1/(1 + e⁻ˣ), as e/(1 + e) with e = e^−|x| for x < 0 so nothing overflows.
#[inline(always)]
pub fn sigmoid_f64(x: f64) -> f64 {
    let e = exp_f64(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 {
        s
    } else {
        e * s
    }
}

/// tanh x = (e^2|x| − 1)/(e^2|x| + 1) with the sign of x, through expm1 so that small |x| keep
/// their relative precision; ±1 beyond |x| = 20, where tanh rounds to ±1.
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    let a = cap(x.abs(), 20.0);
    let e = expm1_nonneg(2.0 * a);
    (e / (e + 2.0)).copysign(x)
}

/// softplus(x) = ln(1 + eˣ) = max(x, 0) + ln(1 + e^−|x|), which neither overflows nor loses
/// small values.
#[inline(always)]
pub fn softplus_f64(x: f64) -> f64 {
    let l = log1p_unit(exp_f64(-x.abs()));
    let m = if x > 0.0 { x } else { 0.0 };
    m + l
}

/// max(x, 0): +0 for every x ≤ 0 (never −0), NaN for NaN, as the interpreter's relu.
#[inline(always)]
pub fn relu_f64(x: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else {
        x
    }
}

/// [`norm_cdf_f64`] of a block, through [`norm_tail_f64_block`]; the same bits.
#[inline(always)]
pub(crate) fn norm_cdf_f64_block<const L: usize>(x: &[f64; L]) -> [f64; L] {
    let mut y = norm_tail_f64_block(x);
    for i in 0..L {
        y[i] = if x[i] < 0.0 { y[i] } else { 1.0 - y[i] };
    }
    y
}

/// [`softplus_f64`] of a block, the exponential and the logarithm in separate loops; the same
/// bits.
#[inline(always)]
pub(crate) fn softplus_f64_block<const L: usize>(x: &[f64; L]) -> [f64; L] {
    let mut e = [0.0; L];
    for i in 0..L {
        e[i] = exp_f64(-x[i].abs());
    }
    let mut y = [0.0; L];
    for i in 0..L {
        let m = if x[i] > 0.0 { x[i] } else { 0.0 };
        y[i] = m + log1p_unit(e[i]);
    }
    y
}
