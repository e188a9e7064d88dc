#![allow(clippy::unwrap_used)]
//! The elementwise functions against their libm twins over dense grids of the whole range
//! (±0, subnormals, huge values, ±∞, NaN, and Φ's tails down to −38 in `f64` and −13 in `f32`),
//! with the error measured in units in the last place of the twin's value; and the slice
//! kernels against the scalar functions at awkward lengths on every instruction-set path.
//!
//! The `f64` twins are libm's `f64` functions (or the interpreter's formulas on top of them),
//! themselves within about an ulp, so a bound here is the function's error plus the twin's.
//! The `f32` functions are measured against the same `f64` twins, which is how the interpreter
//! computes `f32` nodes; a correctly rounded `f32` result is within ½ ulp of them.

use neos_runtime::math::{self, slice, Isa};

/// How far apart `got` and the reference are, in ulps of the reference: `spacing(reference)`
/// is the distance between neighbouring values of the function's type there.
fn ulps(got: f64, reference: f64, spacing: f64) -> f64 {
    if got.is_nan() || reference.is_nan() {
        return if got.is_nan() && reference.is_nan() { 0.0 } else { f64::INFINITY };
    }
    if got == reference {
        return 0.0;
    }
    if got.is_infinite() || reference.is_infinite() {
        return f64::INFINITY;
    }
    (got - reference).abs() / spacing
}

/// The spacing of `f64` values at |x| (the smallest subnormal below the normal range).
fn spacing_f64(x: f64) -> f64 {
    let exponent = (x.abs().to_bits() >> 52) & 0x7ff;
    // 2^(exponent − 1075) is a normal number from exponent 53 on, and the subnormal 2^−1074
    // below that (exponent 0 and 1 both have that spacing).
    if exponent > 53 {
        f64::from_bits((exponent - 52) << 52)
    } else {
        f64::from_bits(1 << exponent.max(1).saturating_sub(1))
    }
}

/// The spacing of `f32` values at |x|, for an `f64` x.
fn spacing_f32(x: f64) -> f64 {
    let e = (x.abs() as f32).to_bits() >> 23 & 0xff;
    2f64.powi((e as i32).max(1) - 127 - 23)
}

/// Φ(x) = ½ erfc(−x/√2) from libm's erfc, with the rounding of x/√2 corrected: erfc's slope
/// −(2/√π)e^(−y²) times the part of −x/√2 that the rounded product drops. Without it the twin
/// itself would be off by up to x²·2⁻⁵³ relative (1.6e-13 at x = −38).
fn norm_cdf_twin(x: f64) -> f64 {
    let c_hi = std::f64::consts::FRAC_1_SQRT_2;
    // 1/√2 − c_hi, from c_hi² − ½ = 2·c_hi·(c_hi − 1/√2) to first order.
    let c_lo = -c_hi.mul_add(c_hi, -0.5) / (2.0 * c_hi);
    let y_hi = -x * c_hi;
    let y_lo = (-x).mul_add(c_hi, -y_hi) + -x * c_lo;
    if !y_lo.is_finite() {
        return 0.5 * libm::erfc(y_hi);
    }
    let slope = 2.0 / std::f64::consts::PI.sqrt() * libm::exp(-y_hi * y_hi);
    0.5 * (libm::erfc(y_hi) - slope * y_lo)
}

/// φ(x) from libm's exp with the rounding of x² corrected to first order.
fn norm_pdf_twin(x: f64) -> f64 {
    let x2 = x * x;
    let x2_lo = if x2.is_finite() { x.mul_add(x, -x2) } else { 0.0 };
    libm::exp(-0.5 * x2) * (1.0 - 0.5 * x2_lo) * 0.398_942_280_401_432_7
}

/// The interpreter's σ (neos_ir::special::sigmoid) on libm's exp.
fn sigmoid_twin(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + libm::exp(-x))
    } else {
        let e = libm::exp(x);
        e / (1.0 + e)
    }
}

/// The interpreter's softplus (neos_ir::special::softplus) on libm.
fn softplus_twin(x: f64) -> f64 {
    let m = if x > 0.0 { x } else { 0.0 };
    m + libm::log1p(libm::exp(-x.abs()))
}

/// The interpreter's relu.
fn relu_twin(x: f64) -> f64 {
    if x > 0.0 || x.is_nan() {
        x
    } else {
        0.0
    }
}

/// One function in both types, its twin, the interval of its dense linear grid, and the bounds
/// in ulps asserted for `f64` and `f32`.
struct Case {
    name: &'static str,
    f64: fn(f64) -> f64,
    f32: fn(f32) -> f32,
    twin: fn(f64) -> f64,
    range_f64: (f64, f64),
    range_f32: (f64, f64),
    bound_f64: f64,
    bound_f32: f64,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "exp",
            f64: math::exp_f64,
            f32: math::exp_f32,
            twin: libm::exp,
            range_f64: (-746.0, 710.0),
            range_f32: (-104.0, 89.0),
            bound_f64: 2.0,
            bound_f32: 2.0,
        },
        Case {
            name: "log",
            f64: math::log_f64,
            f32: math::log_f32,
            twin: libm::log,
            range_f64: (0.0, 4.0),
            range_f32: (0.0, 4.0),
            bound_f64: 2.0,
            bound_f32: 2.0,
        },
        Case {
            name: "norm_cdf",
            f64: math::norm_cdf_f64,
            f32: math::norm_cdf_f32,
            twin: norm_cdf_twin,
            range_f64: (-39.0, 9.0),
            range_f32: (-14.5, 6.0),
            bound_f64: 8.0,
            bound_f32: 6.0,
        },
        Case {
            name: "norm_pdf",
            f64: math::norm_pdf_f64,
            f32: math::norm_pdf_f32,
            twin: norm_pdf_twin,
            range_f64: (-39.0, 39.0),
            range_f32: (-14.5, 14.5),
            bound_f64: 4.0,
            bound_f32: 3.0,
        },
        Case {
            name: "sigmoid",
            f64: math::sigmoid_f64,
            f32: math::sigmoid_f32,
            twin: sigmoid_twin,
            range_f64: (-746.0, 40.0),
            range_f32: (-104.0, 18.0),
            bound_f64: 3.0,
            bound_f32: 3.0,
        },
        Case {
            name: "tanh",
            f64: math::tanh_f64,
            f32: math::tanh_f32,
            twin: libm::tanh,
            range_f64: (-21.0, 21.0),
            range_f32: (-10.0, 10.0),
            bound_f64: 4.0,
            bound_f32: 3.0,
        },
        Case {
            name: "softplus",
            f64: math::softplus_f64,
            f32: math::softplus_f32,
            twin: softplus_twin,
            range_f64: (-746.0, 40.0),
            range_f32: (-104.0, 18.0),
            bound_f64: 3.0,
            bound_f32: 2.0,
        },
        Case {
            name: "relu",
            f64: math::relu_f64,
            f32: math::relu_f32,
            twin: relu_twin,
            range_f64: (-10.0, 10.0),
            range_f32: (-10.0, 10.0),
            bound_f64: 0.0,
            bound_f32: 0.0,
        },
    ]
}

/// A dense linear grid over `range`, both signs of 2ᵉ·(1 + j/16) for every binary exponent of
/// the type (subnormals included), and the special values.
fn grid_f64(range: (f64, f64)) -> Vec<f64> {
    let n = 200_000;
    let mut xs: Vec<f64> = (0..=n).map(|i| range.0 + (range.1 - range.0) * i as f64 / n as f64).collect();
    for e in -1074..1024 {
        for j in 0..16 {
            let x = 2f64.powi(e) * (1.0 + j as f64 / 16.0);
            if x.is_finite() {
                xs.extend([x, -x]);
            }
        }
    }
    xs.extend([0.0, -0.0, 5e-324, -5e-324, f64::MIN_POSITIVE, f64::MAX, f64::MIN, f64::INFINITY, f64::NEG_INFINITY]);
    xs.push(f64::NAN);
    xs
}

fn grid_f32(range: (f64, f64)) -> Vec<f32> {
    let n = 200_000;
    let mut xs: Vec<f32> = (0..=n).map(|i| (range.0 + (range.1 - range.0) * i as f64 / n as f64) as f32).collect();
    for e in -149..128 {
        for j in 0..16 {
            let x = (2f64.powi(e) * (1.0 + j as f64 / 16.0)) as f32;
            if x.is_finite() {
                xs.extend([x, -x]);
            }
        }
    }
    xs.extend([0.0, -0.0, 1e-45, -1e-45, f32::MIN_POSITIVE, f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY]);
    xs.push(f32::NAN);
    xs
}

/// The worst error of `f` against `twin` on `xs`, and where it occurs.
fn worst(xs: impl Iterator<Item = (f64, f64, f64, f64)>) -> (f64, f64, f64, f64) {
    xs.fold((0.0, f64::NAN, f64::NAN, f64::NAN), |acc, (x, got, reference, spacing)| {
        let e = ulps(got, reference, spacing);
        if e > acc.0 || (e.is_nan() && !acc.0.is_nan()) {
            (e, x, got, reference)
        } else {
            acc
        }
    })
}

#[test]
fn f64_functions_match_libm_within_their_bounds() {
    for case in cases() {
        let xs = grid_f64(case.range_f64);
        let (e, x, got, reference) =
            worst(xs.iter().map(|&x| (x, (case.f64)(x), (case.twin)(x), spacing_f64((case.twin)(x)))));
        eprintln!("{}_f64: worst {e:.3} ulp at {x:e}", case.name);
        assert!(
            e <= case.bound_f64,
            "{}_f64({x:e}) = {got:e}, twin {reference:e}: {e} ulp > {}",
            case.name,
            case.bound_f64
        );
    }
}

#[test]
fn f32_functions_match_libm_within_their_bounds() {
    for case in cases() {
        let xs = grid_f32(case.range_f32);
        let (e, x, got, reference) = worst(xs.iter().map(|&x| {
            let reference = (case.twin)(x as f64);
            let got = (case.f32)(x);
            // Past the f32 range the twin rounds to ±∞, which the function must return.
            let reference = if (reference as f32).is_infinite() { reference as f32 as f64 } else { reference };
            (x as f64, got as f64, reference, spacing_f32(reference))
        }));
        eprintln!("{}_f32: worst {e:.3} ulp at {x:e}", case.name);
        assert!(
            e <= case.bound_f32,
            "{}_f32({x:e}) = {got:e}, twin {reference:e}: {e} ulp > {}",
            case.name,
            case.bound_f32
        );
    }
}

/// Spot values from mpmath at 30 digits, independent of the twins above.
#[test]
fn the_normal_tails_keep_their_digits() {
    let close = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs();
    assert!(close(math::norm_cdf_f64(-8.0), 6.220_960_574_271_784e-16, 1e-15));
    assert!(close(math::norm_cdf_f64(-37.0), 5.725_571_222_524_577e-300, 1e-14));
    assert!(math::norm_cdf_f64(-38.0) > 0.0 && math::norm_cdf_f64(-38.0) < 1e-315);
    assert_eq!(math::norm_cdf_f64(-40.0), 0.0);
    assert!(close(math::norm_cdf_f64(1.0), 0.841_344_746_068_543, 1e-15));
    assert_eq!(math::norm_cdf_f64(40.0), 1.0);
    assert!(close(math::norm_cdf_f32(-13.0) as f64, 6.117_164_399_549_88e-39, 1e-6));
    assert!(close(math::norm_cdf_f32(-5.0) as f64, 2.866_515_718_791_939e-7, 3e-7));
    assert!(close(math::norm_pdf_f64(-37.0), 2.120_006_551_524_605_6e-298, 1e-14));
}

#[test]
fn special_values_follow_the_interpreter() {
    for case in cases() {
        for x in [f64::NAN, -f64::NAN] {
            assert!((case.f64)(x).is_nan(), "{}_f64(NaN) should be NaN", case.name);
            assert!((case.f32)(x as f32).is_nan(), "{}_f32(NaN) should be NaN", case.name);
        }
    }
    assert_eq!(math::relu_f64(-0.0).to_bits(), 0.0f64.to_bits());
    assert_eq!(math::relu_f32(-3.0).to_bits(), 0.0f32.to_bits());
    assert_eq!(math::sigmoid_f64(-1000.0), 0.0);
    assert_eq!(math::sigmoid_f64(1000.0), 1.0);
    assert_eq!(math::softplus_f64(1000.0), 1000.0);
    assert_eq!(math::softplus_f64(f64::INFINITY), f64::INFINITY);
    assert_eq!(math::exp_f64(f64::NEG_INFINITY), 0.0);
    assert_eq!(math::exp_f64(f64::INFINITY), f64::INFINITY);
    assert_eq!(math::log_f64(0.0), f64::NEG_INFINITY);
    assert_eq!(math::log_f64(-0.0), f64::NEG_INFINITY);
    assert!(math::log_f64(-1.0).is_nan());
    assert!(math::log_f32(-1e-30).is_nan());
    assert_eq!(math::tanh_f64(f64::NEG_INFINITY), -1.0);
    assert_eq!(math::tanh_f64(-0.0).to_bits(), (-0.0f64).to_bits());
    // Exact values that users compare against.
    assert_eq!((math::norm_cdf_f64(0.0), math::norm_cdf_f32(0.0)), (0.5, 0.5));
    assert_eq!((math::sigmoid_f64(0.0), math::sigmoid_f32(0.0)), (0.5, 0.5));
    assert_eq!((math::exp_f64(0.0), math::exp_f32(0.0), math::log_f64(1.0), math::log_f32(1.0)), (1.0, 1.0, 0.0, 0.0));
}

/// Inputs for the slice tests: a mix of ordinary values and every special one.
fn slice_inputs(n: usize) -> Vec<f64> {
    let special = [0.0, -0.0, 5e-324, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e300, -1e300, -38.0, 700.0];
    (0..n)
        .map(
            |i| {
                if i % 11 == 5 {
                    special[(i / 11) % special.len()]
                } else {
                    ((i * 7919 % 2000) as f64 - 1000.0) / 37.0
                }
            },
        )
        .collect()
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// A slice kernel on a given path, with its name and scalar function.
type Kernel64 = (&'static str, fn(Isa, &[f64], &mut [f64]) -> Result<(), neos_runtime::RunError>, fn(f64) -> f64);
type Kernel32 = (&'static str, fn(Isa, &[f32], &mut [f32]) -> Result<(), neos_runtime::RunError>, fn(f32) -> f32);

fn kernels_f64() -> Vec<Kernel64> {
    vec![
        ("exp", slice::exp_f64_on, math::exp_f64),
        ("log", slice::log_f64_on, math::log_f64),
        ("norm_cdf", slice::norm_cdf_f64_on, math::norm_cdf_f64),
        ("norm_pdf", slice::norm_pdf_f64_on, math::norm_pdf_f64),
        ("sigmoid", slice::sigmoid_f64_on, math::sigmoid_f64),
        ("tanh", slice::tanh_f64_on, math::tanh_f64),
        ("softplus", slice::softplus_f64_on, math::softplus_f64),
        ("relu", slice::relu_f64_on, math::relu_f64),
    ]
}

fn kernels_f32() -> Vec<Kernel32> {
    vec![
        ("exp", slice::exp_f32_on, math::exp_f32),
        ("log", slice::log_f32_on, math::log_f32),
        ("norm_cdf", slice::norm_cdf_f32_on, math::norm_cdf_f32),
        ("norm_pdf", slice::norm_pdf_f32_on, math::norm_pdf_f32),
        ("sigmoid", slice::sigmoid_f32_on, math::sigmoid_f32),
        ("tanh", slice::tanh_f32_on, math::tanh_f32),
        ("softplus", slice::softplus_f32_on, math::softplus_f32),
        ("relu", slice::relu_f32_on, math::relu_f32),
    ]
}

#[test]
fn slice_kernels_equal_the_scalar_functions_on_every_path() {
    let isas = Isa::available();
    assert!(isas.contains(&Isa::Portable) && isas.contains(&Isa::detected()));
    for n in [0, 1, 7, 63, 65, 1023] {
        let src = slice_inputs(n);
        let src32: Vec<f32> = src.iter().map(|&x| x as f32).collect();
        for &isa in &isas {
            for (name, kernel, scalar) in kernels_f64() {
                let mut dst = vec![0.0; n];
                kernel(isa, &src, &mut dst).unwrap();
                for (i, (&x, &y)) in src.iter().zip(&dst).enumerate() {
                    assert!(
                        same_f64(y, scalar(x)),
                        "{name}_f64 on {isa:?}, n = {n}, element {i}: {y:e} vs {:e}",
                        scalar(x)
                    );
                }
            }
            for (name, kernel, scalar) in kernels_f32() {
                let mut dst = vec![0.0; n];
                kernel(isa, &src32, &mut dst).unwrap();
                for (i, (&x, &y)) in src32.iter().zip(&dst).enumerate() {
                    assert!(
                        same_f32(y, scalar(x)),
                        "{name}_f32 on {isa:?}, n = {n}, element {i}: {y:e} vs {:e}",
                        scalar(x)
                    );
                }
            }
        }
    }
    // The dispatched entry points use the detected path.
    let src = slice_inputs(65);
    let mut dst = vec![0.0; 65];
    slice::norm_cdf_f64(&src, &mut dst).unwrap();
    assert!(src.iter().zip(&dst).all(|(&x, &y)| same_f64(y, math::norm_cdf_f64(x))));
}

#[test]
fn slices_of_different_lengths_are_an_error() {
    let mut dst = vec![0.0; 3];
    let err = slice::exp_f64(&[1.0, 2.0], &mut dst).unwrap_err();
    assert_eq!(err.message, "expected an output of 2 elements like the input, found 3");
    let mut dst32 = vec![0.0f32; 1];
    assert!(slice::tanh_f32_on(Isa::Portable, &[1.0, 2.0], &mut dst32).is_err());
    if !Isa::Avx2Fma.is_available() {
        assert!(slice::exp_f64_on(Isa::Avx2Fma, &[1.0], &mut [0.0]).is_err());
    }
}
