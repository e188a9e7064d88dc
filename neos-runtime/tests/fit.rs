//! The fit solver and the dense linear algebra on problems with known answers.

use neos_runtime::{cholesky, inverse, minimize, solve, FitOptions, LinalgError, Lu, Objective, StopReason};

/// f(x) = Σ wᵢ (xᵢ − cᵢ)² + s·(x₀ x₁)², a coupled quadratic-plus-quartic bowl.
struct Bowl {
    centre: Vec<f64>,
    coupling: f64,
}

impl Objective for Bowl {
    fn dim(&self) -> usize {
        self.centre.len()
    }
    fn evaluate(&mut self, x: &[f64], g: &mut [f64], h: &mut [f64]) -> Result<f64, String> {
        let n = x.len();
        h.iter_mut().for_each(|v| *v = 0.0);
        let mut f = 0.0;
        for i in 0..n {
            let w = 1.0 + i as f64;
            f += w * (x[i] - self.centre[i]).powi(2);
            g[i] = 2.0 * w * (x[i] - self.centre[i]);
            h[i * n + i] = 2.0 * w;
        }
        let (a, b, s) = (x[0], x[1], self.coupling);
        f += s * (a * b).powi(2);
        g[0] += 2.0 * s * a * b * b;
        g[1] += 2.0 * s * a * a * b;
        h[0] += 2.0 * s * b * b;
        h[n + 1] += 2.0 * s * a * a;
        h[1] += 4.0 * s * a * b;
        h[n] += 4.0 * s * a * b;
        Ok(f)
    }
}

/// The Rosenbrock valley, whose Hessian is indefinite away from the minimum.
struct Rosenbrock;

impl Objective for Rosenbrock {
    fn dim(&self) -> usize {
        2
    }
    fn evaluate(&mut self, x: &[f64], g: &mut [f64], h: &mut [f64]) -> Result<f64, String> {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        h[0] = 2.0 - 400.0 * (b - a * a) + 800.0 * a * a;
        h[1] = -400.0 * a;
        h[2] = -400.0 * a;
        h[3] = 200.0;
        Ok((1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2))
    }
}

#[test]
fn unconstrained_minimum_of_a_coupled_bowl() {
    let mut f = Bowl { centre: vec![1.0, -2.0, 0.5], coupling: 0.3 };
    let r = minimize(&mut f, &[0.0, 0.0, 0.0], &FitOptions::new(3));
    assert!(r.converged(), "{}", r.stop);
    assert!(r.gradient.iter().all(|g| g.abs() <= 1e-9), "{:?}", r.gradient);
    assert!(r.iterations < 30, "{} iterations", r.iterations);
}

#[test]
fn rosenbrock_from_the_classic_start() {
    let r = minimize(&mut Rosenbrock, &[-1.2, 1.0], &FitOptions::new(2));
    assert!(r.converged(), "{}", r.stop);
    assert!((r.x[0] - 1.0).abs() < 1e-8 && (r.x[1] - 1.0).abs() < 1e-8, "{:?}", r.x);
}

#[test]
fn bounds_hold_the_minimum_and_fixed_parameters_stay() {
    let mut f = Bowl { centre: vec![1.0, -2.0, 0.5], coupling: 0.0 };
    let mut o = FitOptions::new(3);
    o.bounds = vec![(-5.0, 0.25), (-1.0, 5.0), (-5.0, 5.0)];
    o.fixed = vec![false, false, true];
    let r = minimize(&mut f, &[0.0, 0.0, 3.0], &o);
    assert!(r.converged(), "{}", r.stop);
    assert_eq!(r.x, vec![0.25, -1.0, 3.0], "upper bound, lower bound, fixed");
    // The gradient points out of the box at the bounds.
    assert!(r.gradient[0] < 0.0 && r.gradient[1] > 0.0, "{:?}", r.gradient);
}

#[test]
fn non_convergence_is_reported() {
    let mut o = FitOptions::new(2);
    o.max_iterations = 3;
    let r = minimize(&mut Rosenbrock, &[-1.2, 1.0], &o);
    assert_eq!(r.stop, StopReason::MaxIterations);
    assert!(!r.converged());
    struct Nan;
    impl Objective for Nan {
        fn dim(&self) -> usize {
            1
        }
        fn evaluate(&mut self, _: &[f64], _: &mut [f64], _: &mut [f64]) -> Result<f64, String> {
            Ok(f64::NAN)
        }
    }
    let r = minimize(&mut Nan, &[0.0], &FitOptions::new(1));
    assert!(matches!(r.stop, StopReason::Objective(ref m) if m.contains("finite objective")), "{}", r.stop);
}

#[test]
fn linear_algebra() {
    let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
    let b = [1.0, -2.0, 0.5];
    let x = solve(&a, 3, &b).unwrap();
    for i in 0..3 {
        let ax: f64 = (0..3).map(|j| a[i * 3 + j] * x[j]).sum();
        assert!((ax - b[i]).abs() < 1e-14);
    }
    let ns = [0.0, 2.0, 1.0, 3.0, -1.0, 4.0, 2.0, 0.5, -2.0];
    let lu = Lu::new(&ns, 3).unwrap();
    let (x, xt) = (lu.solve(&b), lu.solve_transposed(&b));
    for i in 0..3 {
        let ax: f64 = (0..3).map(|j| ns[i * 3 + j] * x[j]).sum();
        let atx: f64 = (0..3).map(|j| ns[j * 3 + i] * xt[j]).sum();
        assert!((ax - b[i]).abs() < 1e-14 && (atx - b[i]).abs() < 1e-14);
    }
    let inv = inverse(&a, 3).unwrap();
    for i in 0..3 {
        for j in 0..3 {
            let e: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
            assert!((e - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14);
        }
    }
    let indefinite = [1.0, 2.0, 2.0, 1.0];
    assert!(matches!(cholesky(&indefinite, 2), Err(LinalgError::NotPositiveDefinite { index: 1, .. })));
    let singular = [1.0, 2.0, 2.0, 4.0];
    let err = Lu::new(&singular, 2).unwrap_err();
    assert_eq!(err, LinalgError::Singular { index: 1 });
    assert!(err.to_string().contains("expected an invertible matrix"));
}
