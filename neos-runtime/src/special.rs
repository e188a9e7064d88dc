//! Scalar special functions in `f64`, shared by the interpreter (through neos-ir), constant
//! folding and generated code, so that all three compute the same values.

use std::f64::consts::PI;

/// Φ(x) = ½ erfc(−x/√2). Written with erfc so that the lower tail keeps its relative precision
/// (Φ(−8) ≈ 6.2e−16 rather than 0), which p-values need. `libm`'s erfc is the C library's
/// algorithm, accurate to an ulp across the range, and agrees with the Python stack's digits.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// φ(x) = exp(−x²/2)/√(2π).
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// σ(x) = 1/(1 + e^−x), evaluated on the side that cannot overflow.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + eˣ) = max(x, 0) + ln(1 + e^−|x|), which neither overflows nor loses small values.
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// ln Γ(x) for x > 0 (NaN below, where the HistFactory likelihood never evaluates it).
pub fn lgamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    libm::lgamma(x)
}

/// Bernoulli numbers B₂, B₄, …, B₂₀ for the asymptotic series of the polygamma functions.
const BERNOULLI_EVEN: [f64; 10] = [
    1.0 / 6.0,
    -1.0 / 30.0,
    1.0 / 42.0,
    -1.0 / 30.0,
    5.0 / 66.0,
    -691.0 / 2730.0,
    7.0 / 6.0,
    -3617.0 / 510.0,
    43867.0 / 798.0,
    -174611.0 / 330.0,
];

/// ψ⁽ⁿ⁾(x), the n-th derivative of the digamma function, for x > 0.
///
/// The recurrence ψ⁽ⁿ⁾(x) = ψ⁽ⁿ⁾(x+1) − (−1)ⁿ n!/xⁿ⁺¹ moves x above 20, where the asymptotic
/// series in Bernoulli numbers converges to full double precision for the orders autodiff
/// reaches (a Hessian of lnΓ needs n = 1, a third derivative n = 2).
pub fn polygamma(n: u32, x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return if n == 0 { f64::INFINITY } else { 0.0 };
    }
    let nf = n as f64;
    let n_fact: f64 = (1..=n).map(|k| k as f64).product();
    let sign = if n % 2 == 0 { -1.0 } else { 1.0 }; // (−1)^(n+1)
    let mut x = x;
    let mut shift = 0.0;
    while x < 20.0 {
        // ψ⁽ⁿ⁾(x) = ψ⁽ⁿ⁾(x+1) + (−1)^(n+1) n!/x^(n+1)
        shift += sign * n_fact / x.powi(n as i32 + 1);
        x += 1.0;
    }
    let asymptotic = if n == 0 {
        // ψ(x) ~ ln x − 1/(2x) − Σ B₂ₖ/(2k x²ᵏ)
        let mut s = x.ln() - 0.5 / x;
        for (k, b) in BERNOULLI_EVEN.iter().enumerate() {
            let k2 = 2.0 * (k as f64 + 1.0);
            s -= b / (k2 * x.powf(k2));
        }
        s
    } else {
        // ψ⁽ⁿ⁾(x) ~ (−1)^(n+1) [(n−1)!/xⁿ + n!/(2xⁿ⁺¹) + Σ B₂ₖ (2k+n−1)!/((2k)! x^(2k+n))]
        let n_minus_1_fact = n_fact / nf;
        let mut s = n_minus_1_fact / x.powf(nf) + n_fact / (2.0 * x.powf(nf + 1.0));
        for (k, b) in BERNOULLI_EVEN.iter().enumerate() {
            let k2 = 2 * (k as u32 + 1);
            // (2k+n−1)!/(2k)! = Π_{j=2k+1}^{2k+n−1} j
            let ratio: f64 = (k2 + 1..k2 + n).map(|j| j as f64).product();
            s += b * ratio / x.powf(k2 as f64 + nf);
        }
        sign * s
    };
    asymptotic + shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn normal_cdf_keeps_its_lower_tail() {
        // Reference values from Python's math.erfc.
        assert!(close(norm_cdf(-8.0), 6.220960574271819e-16, 1e-15));
        assert!(close(norm_cdf(-37.0), 5.725571222525139e-300, 1e-14));
        assert!(close(norm_cdf(1.0), 0.8413447460685429, 1e-14));
        assert_eq!(norm_cdf(0.0), 0.5);
    }

    #[test]
    fn polygamma_matches_known_values() {
        // ψ(1) = −γ, ψ'(1) = π²/6, ψ''(1) = −2ζ(3), ψ'(0.5) = π²/2.
        let euler_gamma = 0.5772156649015329;
        assert!(close(polygamma(0, 1.0), -euler_gamma, 1e-14));
        assert!(close(polygamma(1, 1.0), PI * PI / 6.0, 1e-14));
        assert!(close(polygamma(2, 1.0), -2.0 * 1.2020569031595942, 1e-13));
        assert!(close(polygamma(1, 0.5), PI * PI / 2.0, 1e-14));
        // ψ(10⁻³) = −1000.5755719318103 (mpmath).
        assert!(close(polygamma(0, 1e-3), -1000.5755719318103, 1e-13));
        assert!(polygamma(0, -1.0).is_nan());
    }

    #[test]
    fn softplus_and_sigmoid_are_stable_in_the_tails() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(close(softplus(-40.0), (-40.0f64).exp(), 1e-12));
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }
}
