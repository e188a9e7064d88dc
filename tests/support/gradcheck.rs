//! Central differences against a symbolic gradient, for the end-to-end tests of analyses.

/// Checks every component of `grad` (the gradient of `loss` at `params`) against central
/// differences with step `eps`, to `tolerance` times the gradient's largest component, which
/// must be positive (a gradient of zeros checks nothing). `what` names the case in failures.
pub fn assert_central_differences(
    what: &str,
    params: &[f64],
    grad: &[f64],
    eps: f64,
    tolerance: f64,
    mut loss: impl FnMut(&[f64]) -> f64,
) {
    assert_eq!(grad.len(), params.len(), "{what}: one derivative per parameter");
    let scale = grad.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
    assert!(scale > 0.0 && scale.is_finite(), "{what}: the gradient's scale is {scale}");
    let mut p = params.to_vec();
    for (k, g) in grad.iter().enumerate() {
        p[k] = params[k] + eps;
        let up = loss(&p);
        p[k] = params[k] - eps;
        let down = loss(&p);
        p[k] = params[k];
        let numeric = (up - down) / (2.0 * eps);
        assert!((g - numeric).abs() <= tolerance * scale, "{what}, parameter {k}: symbolic {g:e}, numeric {numeric:e}");
    }
}
