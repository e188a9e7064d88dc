//! The `f32` functions: the same algorithms as the `f64` ones in `double.rs` with shorter
//! polynomials, computed in `f32` throughout so that AVX2 works on eight lanes at once.

/// 1.5·2²³: adding it rounds a value of magnitude below 2²² to an integer k and leaves
/// 2²² + k in the low mantissa bits.
const SHIFT: f32 = 12_582_912.0;
/// ln 2 in two parts; the high part has 16 significant bits, so k·LN2_HI is exact for |k| < 2⁸.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
const MANTISSA: u32 = (1 << 23) - 1;
/// The bits of √½ rounded to `f32`.
const SQRT_HALF_BITS: u32 = 0x3f35_04f3;

// The coefficients come from `coefficients.py` beside this file.

/// (expm1(r) − r)/r² on |r| ≤ ln2/2; relative error 6.5e-10 of expm1.
const EXPM1: [f32; 6] = [0.5, 0.16666666, 0.04166651, 0.008333598, 0.0013930502, 0.0001971345];

/// (2 atanh(s)/s − 2)/s² in z = s² ∈ [0, 0.0401]; relative error 2.2e-10 of the log.
const LOG: [f32; 4] = [0.6666667, 0.39999837, 0.285564, 0.23410745];

/// H(t) with Φ(−a) = exp(−a²/2)·H(t)·K/(a + K), t = (a − K)/(a + K), K = 4, for a ∈ [0, 14.5];
/// relative error 1.8e-8.
const PHI_TAIL: [f32; 11] = [
    0.18882129,
    -0.15197416,
    0.09678422,
    -0.046630546,
    0.01510056,
    -0.0018842164,
    -0.0008761372,
    0.00040333017,
    4.506233e-05,
    -4.7458903e-05,
    -8.037697e-06,
];
const PHI_K: f32 = 4.0;
/// Φ(−14.5) is below half the smallest `f32` subnormal.
const PHI_LIMIT: f32 = 14.5;
const INV_SQRT_2PI: f32 = 0.398_942_3;

// Polynomials c₀ + c₁x + … by Estrin's scheme: pairs c₂ᵢ + c₂ᵢ₊₁x, then pairs of those with
// x², x⁴, … The dependency chain is about log₂N multiply-adds deep instead of N for Horner's
// rule, so the core can overlap the work of neighbouring vectors (with Horner's rule the 24
// terms of Φ alone are a ~140-cycle chain and the throughput halves). One function per length
// used, written out so that nothing depends on the optimiser unrolling a loop.

#[inline(always)]
fn poly6(x: f32, c: &[f32; 6]) -> f32 {
    let (x2, x4) = (x * x, x * x * (x * x));
    let p = |i: usize| c[i] + c[i + 1] * x;
    (p(0) + p(2) * x2) + p(4) * x4
}

#[inline(always)]
fn poly4(x: f32, c: &[f32; 4]) -> f32 {
    let x2 = x * x;
    let p = |i: usize| c[i] + c[i + 1] * x;
    p(0) + p(2) * x2
}

#[inline(always)]
fn poly11(x: f32, c: &[f32; 11]) -> f32 {
    let x2 = x * x;
    let x4 = x2 * x2;
    let x8 = x4 * x4;
    let p = |i: usize| c[i] + c[i + 1] * x;
    let q = |i: usize| p(i) + p(i + 2) * x2;
    (q(0) + q(4) * x4) + (p(8) + c[10] * x2) * x8
}

/// 2ᵏ from t = SHIFT + k, for −126 ≤ k ≤ 127.
#[inline(always)]
fn pow2(t: f32) -> f32 {
    f32::from_bits(t.to_bits().wrapping_add(127) << 23)
}

/// x with values above `hi` replaced by `hi`; NaN stays NaN.
#[inline(always)]
fn cap(x: f32, hi: f32) -> f32 {
    if x > hi {
        hi
    } else {
        x
    }
}

/// exp(x − lo) as (m, t₁, t₂) with the value m·2^k₁·2^k₂ (see `double.rs`).
#[inline(always)]
fn exp_parts(x: f32, lo: f32) -> (f32, f32, f32) {
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    let r = ((x - k * LN2_HI) - k * LN2_LO) - lo;
    let m = 1.0 + (r + r * r * poly6(r, &EXPM1));
    let t1 = k * 0.5 + SHIFT;
    let t2 = (k - (t1 - SHIFT)) + SHIFT;
    (m, t1, t2)
}

/// eˣ to 1 ulp (measured against the `f64` libm function). Below −103.98 it is 0, above
/// 88.73 it is +∞.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = cap(x, 89.0);
    let x = if x < -104.0 { -104.0 } else { x };
    let (m, t1, t2) = exp_parts(x, 0.0);
    m * pow2(t1) * pow2(t2)
}

/// eʸ − 1 for 0 ≤ y ≤ 20.
#[inline(always)]
fn expm1_nonneg(y: f32) -> f32 {
    let t = y * std::f32::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let p = r + r * r * poly6(r, &EXPM1);
    let s = pow2(t);
    s * p + (s - 1.0)
}

/// e·ln 2 + log(1 + f) for f ∈ [−0.3, 0.5] (see `double.rs`).
#[inline(always)]
fn log_reduced(e: f32, f: f32) -> f32 {
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * poly4(z, &LOG);
    let hfsq = 0.5 * f * f;
    e * LN2_HI + (f - (hfsq - (s * (hfsq + r) + e * LN2_LO)))
}

/// ln x to 1 ulp: −∞ at ±0, NaN below 0, +∞ at +∞.
#[inline(always)]
pub fn log_f32(x: f32) -> f32 {
    // Subnormals are scaled into the normal range first (by 2²⁵).
    let tiny = x < f32::MIN_POSITIVE;
    let y = if tiny { x * 33_554_432.0 } else { x };
    let w = y.to_bits().wrapping_sub(SQRT_HALF_BITS & MANTISSA);
    let m = f32::from_bits((w & MANTISSA) + SQRT_HALF_BITS);
    let e = f32::from_bits((w >> 23) + SHIFT.to_bits()) - (SHIFT + 126.0);
    let e = if tiny { e - 25.0 } else { e };
    let l = log_reduced(e, m - 1.0);
    let l = if x == 0.0 { f32::NEG_INFINITY } else { l };
    let l = if x == f32::INFINITY { x } else { l };
    if x >= 0.0 {
        l
    } else {
        f32::NAN
    }
}

/// ln(1 + u) for u ∈ [0, 1].
#[inline(always)]
fn log1p_unit(u: f32) -> f32 {
    let above = u > 0.5;
    let f = if above { (u - 1.0) * 0.5 } else { u };
    log_reduced(if above { 1.0 } else { 0.0 }, f)
}

/// (hi, lo) with hi + lo = x²/2 exactly, by Dekker's splitting, for |x| ≤ 2¹⁶.
#[inline(always)]
fn half_square(x: f32) -> (f32, f32) {
    let c = 4097.0 * x; // (2¹² + 1)·x
    let x_hi = c - (c - x);
    let x_lo = x - x_hi;
    let hi = x * x;
    let lo = ((x_hi * x_hi - hi) + 2.0 * x_hi * x_lo) + x_lo * x_lo;
    (0.5 * hi, 0.5 * lo)
}

/// Φ(x) to a few ulps relative over the whole range (Φ(−13) = 6.1e-39 is subnormal and keeps
/// the digits a subnormal can hold; 0 below −14.2); 1 − Φ(−x) for x > 0.
#[inline(always)]
pub fn norm_cdf_f32(x: f32) -> f32 {
    let q = norm_tail_f32(x);
    if x < 0.0 {
        q
    } else {
        1.0 - q
    }
}

/// Φ(−|x|) with relative precision.
#[inline(always)]
fn norm_tail_f32(x: f32) -> f32 {
    let a = cap(x.abs(), PHI_LIMIT);
    let r = 1.0 / (a + PHI_K);
    let t = (a - PHI_K) * r;
    let h = poly11(t, &PHI_TAIL);
    let (hi, lo) = half_square(a);
    let (m, t1, t2) = exp_parts(-hi, lo);
    m * (h * (PHI_K * r)) * pow2(t1) * pow2(t2)
}

/// φ(x) = exp(−x²/2)/√(2π) with x²/2 carried exactly; 0 beyond |x| ≈ 14.4.
#[inline(always)]
pub fn norm_pdf_f32(x: f32) -> f32 {
    let a = cap(x.abs(), 15.0);
    let (hi, lo) = half_square(a);
    let (m, t1, t2) = exp_parts(-hi, lo);
    m * INV_SQRT_2PI * pow2(t1) * pow2(t2)
}

/// σ(x) = 1/(1 + e⁻ˣ) without overflow.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    let e = exp_f32(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 {
        s
    } else {
        e * s
    }
}

/// tanh x through expm1; ±1 beyond |x| = 10, where tanh rounds to ±1 in `f32`.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = cap(x.abs(), 10.0);
    let e = expm1_nonneg(2.0 * a);
    (e / (e + 2.0)).copysign(x)
}

/// softplus(x) = max(x, 0) + ln(1 + e^−|x|).
#[inline(always)]
pub fn softplus_f32(x: f32) -> f32 {
    let l = log1p_unit(exp_f32(-x.abs()));
    let m = if x > 0.0 { x } else { 0.0 };
    m + l
}

/// max(x, 0): +0 for every x ≤ 0, NaN for NaN.
#[inline(always)]
pub fn relu_f32(x: f32) -> f32 {
    if x <= 0.0 {
        0.0
    } else {
        x
    }
}

/// [`norm_cdf_f32`] of a block in stages (the reciprocal, the polynomial, the exponential), each
/// a short loop that LLVM vectorises and interleaves; the same bits.
#[inline(always)]
pub(crate) fn norm_cdf_f32_block<const L: usize>(x: &[f32; L]) -> [f32; L] {
    let mut a = [0.0; L];
    let mut r = [0.0; L];
    let mut h = [0.0; L];
    for i in 0..L {
        a[i] = cap(x[i].abs(), PHI_LIMIT);
        r[i] = 1.0 / (a[i] + PHI_K);
    }
    for i in 0..L {
        h[i] = poly11((a[i] - PHI_K) * r[i], &PHI_TAIL) * (PHI_K * r[i]);
    }
    let mut y = [0.0; L];
    for i in 0..L {
        let (hi, lo) = half_square(a[i]);
        let (m, t1, t2) = exp_parts(-hi, lo);
        let q = m * h[i] * pow2(t1) * pow2(t2);
        y[i] = if x[i] < 0.0 { q } else { 1.0 - q };
    }
    y
}

/// [`softplus_f32`] of a block, the exponential and the logarithm in separate loops; the same
/// bits.
#[inline(always)]
pub(crate) fn softplus_f32_block<const L: usize>(x: &[f32; L]) -> [f32; L] {
    let mut e = [0.0; L];
    for i in 0..L {
        e[i] = exp_f32(-x[i].abs());
    }
    let mut y = [0.0; L];
    for i in 0..L {
        let m = if x[i] > 0.0 { x[i] } else { 0.0 };
        y[i] = m + log1p_unit(e[i]);
    }
    y
}
