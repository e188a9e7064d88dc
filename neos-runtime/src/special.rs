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
/// The recurrence ψ⁽ⁿ⁾(x) = ψ⁽ⁿ⁾(x+1) − (−1)ⁿ n!/xⁿ⁺¹ moves x above 10 + 2n, where the
/// asymptotic series in Bernoulli numbers converges to full double precision for the orders
/// autodiff reaches (a Hessian of lnΓ needs n = 1, a third derivative n = 2).
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
    // Above this the series below is exact to double precision (its last term, B₂₀ over
    // x²⁰⁺ⁿ times a ratio of factorials that grows with n, is below 10⁻¹⁶ of the sum); the
    // recurrence's divisions cost more than the series, so it stops as early as that allows.
    let threshold = 10.0 + 2.0 * nf;
    while x < threshold {
        // ψ⁽ⁿ⁾(x) = ψ⁽ⁿ⁾(x+1) + (−1)^(n+1) n!/x^(n+1)
        shift += sign * n_fact / x.powi(n as i32 + 1);
        x += 1.0;
    }
    // The series' powers of 1/x by running products rather than `powf` (ten of which would
    // cost more than the rest of a likelihood evaluation).
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let asymptotic = if n == 0 {
        // ψ(x) ~ ln x − 1/(2x) − Σ B₂ₖ/(2k x²ᵏ)
        let mut s = x.ln() - 0.5 * inv;
        let mut power = inv2;
        for (k, b) in BERNOULLI_EVEN.iter().enumerate() {
            let k2 = 2.0 * (k as f64 + 1.0);
            s -= b / k2 * power;
            power *= inv2;
        }
        s
    } else {
        // ψ⁽ⁿ⁾(x) ~ (−1)^(n+1) [(n−1)!/xⁿ + n!/(2xⁿ⁺¹) + Σ B₂ₖ (2k+n−1)!/((2k)! x^(2k+n))]
        let n_minus_1_fact = n_fact / nf;
        let inv_n = inv.powi(n as i32);
        let mut s = n_minus_1_fact * inv_n + n_fact * 0.5 * inv_n * inv;
        let mut power = inv_n * inv2;
        for (k, b) in BERNOULLI_EVEN.iter().enumerate() {
            let k2 = 2 * (k as u32 + 1);
            // (2k+n−1)!/(2k)! = Π_{j=2k+1}^{2k+n−1} j
            let ratio: f64 = (k2 + 1..k2 + n).map(|j| j as f64).product();
            s += b * ratio * power;
            power *= inv2;
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

    /// ψ⁽ⁿ⁾ at points on both sides of the recurrence's threshold and far out, from mpmath
    /// (30 digits).
    const MPMATH: [(u32, f64, f64); 72] = [
        (0, 0.05, -20.497844991299868),
        (0, 0.3, -3.502524222200133),
        (0, 1.0, -0.5772156649015329),
        (0, 1.5, 0.03648997397857652),
        (0, 2.0, 0.42278433509846713),
        (0, 3.7, 1.1671535393615113),
        (0, 5.0, 1.5061176684318005),
        (0, 7.5, 1.9467574842460869),
        (0, 9.99, 2.250700372831201),
        (0, 10.0, 2.251752589066721),
        (0, 12.3, 2.468398400301138),
        (0, 19.9, 2.9653837242676784),
        (0, 20.0, 2.970523992242149),
        (0, 25.0, 3.198742512851974),
        (0, 50.0, 3.901989673427892),
        (0, 123.4, 4.8113737751162775),
        (0, 1000.0, 6.907255195648812),
        (0, 100000.0, 11.512920464961896),
        (1, 0.05, 401.53235734211506),
        (1, 0.3, 12.245364546107732),
        (1, 1.0, 1.6449340668482264),
        (1, 1.5, 0.9348022005446793),
        (1, 2.0, 0.6449340668482264),
        (1, 3.7, 0.3100378576700383),
        (1, 5.0, 0.22132295573711533),
        (1, 7.5, 0.1426158966967038),
        (1, 9.99, 0.10527695014824179),
        (1, 10.0, 0.10516633568168575),
        (1, 12.3, 0.0846951702459164),
        (1, 19.9, 0.05153498898307066),
        (1, 20.0, 0.05127082293520312),
        (1, 25.0, 0.04081066325722558),
        (1, 50.0, 0.020201333226697125),
        (1, 123.4, 0.008136651610865263),
        (1, 1000.0, 0.0010005001666666333),
        (1, 100000.0, 1.0000050000166667e-05),
        (2, 0.05, -16002.108158021943),
        (2, 0.3, -75.27253658872604),
        (2, 1.0, -2.4041138063191885),
        (2, 1.5, -0.82879664423432),
        (2, 2.0, -0.4041138063191886),
        (2, 3.7, -0.09539530872855403),
        (2, 5.0, -0.048789732245114494),
        (2, 7.5, -0.020305252536644666),
        (2, 9.99, -0.011073070531461051),
        (2, 10.0, -0.011049834970802067),
        (2, 12.3, -0.0071690031730383234),
        (2, 19.9, -0.002655268277490106),
        (2, 20.0, -0.0026281224023146548),
        (2, 25.0, -0.001665279318422468),
        (2, 50.0, -0.0004080799893375969),
        (2, 123.4, -6.620473419231093e-05),
        (2, 1000.0, -1.0010004999998333e-06),
        (2, 100000.0, -1.00001000005e-10),
        (3, 0.05, 960005.388322313),
        (3, 0.3, 743.1417646550498),
        (3, 1.0, 6.493939402266829),
        (3, 1.5, 1.4090910340024372),
        (3, 2.0, 0.49393940226682914),
        (3, 3.7, 0.058279217956563614),
        (3, 5.0, 0.021427828192755075),
        (3, 7.5, 0.005772436656578694),
        (3, 9.99, 0.0023272159399640798),
        (3, 10.0, 0.0023199013042898686),
        (3, 12.3, 0.0012129178351298368),
        (3, 19.9, 0.00027355760534575216),
        (3, 20.0, 0.0002693742213396389),
        (3, 25.0, 0.0001358846365082737),
        (3, 50.0, 1.6486398720682052e-05),
        (3, 123.4, 1.077357827078302e-06),
        (3, 1000.0, 2.003001999999e-09),
        (3, 100000.0, 2.0000300002e-15),
    ];

    #[test]
    fn polygamma_agrees_with_mpmath_to_the_last_digits() {
        for (n, x, expected) in MPMATH {
            let found = polygamma(n, x);
            // ψ crosses zero near 1.46, where its terms cancel: compare it on the scale of 1.
            let scale = if n == 0 { expected.abs().max(1.0) } else { expected.abs() };
            assert!((found - expected).abs() <= 4e-15 * scale, "ψ⁽{n}⁾({x}) = {found:e}, expected {expected:e}");
        }
    }

    #[test]
    fn softplus_and_sigmoid_are_stable_in_the_tails() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(close(softplus(-40.0), (-40.0f64).exp(), 1e-12));
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }
}
