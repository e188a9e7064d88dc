//! Bounded minimisation by projected Newton steps, for profile-likelihood fits.
//!
//! Each iteration splits the free parameters into those held at a bound by the gradient
//! (the active set) and the rest, solves the Newton system on the rest (Cholesky; with
//! Levenberg damping when the Hessian is not positive definite there), and backtracks along
//! the projected path until the objective decreases enough (Armijo). It stops when the
//! projected gradient is below the tolerance in every component, and always says why it
//! stopped: a fit that did not converge is reported, never passed off as a minimum.

use std::fmt;

use crate::linalg::{cholesky_into, cholesky_solve_in_place};

/// The objective: its value, gradient and Hessian (row-major) at a point.
pub trait Objective {
    fn dim(&self) -> usize;
    /// Writes ∇f and ∇²f at `x` and returns f(x); an `Err` (for example a NaN) stops the fit.
    fn evaluate(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64]) -> Result<f64, String>;

    /// f(x) alone, for line-search trials; override it when the value is much cheaper than the
    /// derivatives.
    fn value(&mut self, x: &[f64]) -> Result<f64, String> {
        let n = self.dim();
        self.evaluate(x, &mut vec![0.0; n], &mut vec![0.0; n * n])
    }
}

/// What a fit may do.
#[derive(Clone, Debug, PartialEq)]
pub struct FitOptions {
    /// Lower and upper bound of each parameter.
    pub bounds: Vec<(f64, f64)>,
    /// Parameters held at their starting values.
    pub fixed: Vec<bool>,
    /// Convergence: every component of the projected gradient at most this.
    pub tolerance: f64,
    pub max_iterations: usize,
}

impl FitOptions {
    /// Unbounded, nothing fixed, tolerance 1e−9, at most 200 iterations.
    pub fn new(dim: usize) -> Self {
        FitOptions {
            bounds: vec![(f64::NEG_INFINITY, f64::INFINITY); dim],
            fixed: vec![false; dim],
            tolerance: 1e-9,
            max_iterations: 200,
        }
    }
}

/// Why a fit stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum StopReason {
    /// The projected gradient fell below the tolerance.
    Converged,
    /// Newton steps no longer move θ and promise no decrease f can resolve, with `gradient`
    /// the projected gradient left at that floor of rounding (θ is as good as the arithmetic
    /// allows, though the gradient tolerance was set below what it can reach).
    Stationary { gradient: f64 },
    /// The iteration limit was reached first.
    MaxIterations,
    /// No step along the Newton or gradient direction decreased the objective; `gradient` is
    /// the largest projected-gradient component left (the objective is flat to rounding).
    LineSearchFailed { gradient: f64 },
    /// The objective could not be evaluated.
    Objective(String),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Converged => f.write_str("converged"),
            StopReason::Stationary { gradient } => {
                write!(f, "stationary to working precision with projected gradient {gradient:e}")
            }
            StopReason::MaxIterations => f.write_str("iteration limit reached"),
            StopReason::LineSearchFailed { gradient } => {
                write!(f, "no descent step found with projected gradient {gradient:e} left")
            }
            StopReason::Objective(e) => write!(f, "objective failed: {e}"),
        }
    }
}

/// The result of a fit.
#[derive(Clone, Debug, PartialEq)]
pub struct FitResult {
    pub x: Vec<f64>,
    pub value: f64,
    pub gradient: Vec<f64>,
    /// The Hessian at `x`, row-major.
    pub hessian: Vec<f64>,
    pub iterations: usize,
    pub stop: StopReason,
}

impl FitResult {
    /// Converged to the tolerance, or stationary to working precision.
    pub fn converged(&self) -> bool {
        matches!(self.stop, StopReason::Converged | StopReason::Stationary { .. })
    }
}

/// Whether parameter i is held at a bound by the gradient (or fixed).
fn held(i: usize, x: &[f64], g: &[f64], o: &FitOptions) -> bool {
    let (lo, hi) = o.bounds[i];
    o.fixed[i] || (x[i] <= lo && g[i] > 0.0) || (x[i] >= hi && g[i] < 0.0)
}

/// The largest component of the projected gradient.
pub fn projected_gradient_norm(x: &[f64], g: &[f64], o: &FitOptions) -> f64 {
    (0..x.len()).filter(|&i| !held(i, x, g, o)).map(|i| g[i].abs()).fold(0.0, f64::max)
}

/// Minimises `f` from `x0` (clipped into the bounds) within the bounds, holding the fixed
/// parameters at their starting values.
///
/// All scratch space is allocated once per call: profile-likelihood fits are small and run
/// thousands of times per training step, so allocation would otherwise cost as much as the
/// arithmetic. The first trial along the Newton direction, which is usually accepted, is
/// evaluated with its derivatives at once; backtracking trials evaluate the value alone.
pub fn minimize(f: &mut dyn Objective, x0: &[f64], o: &FitOptions) -> FitResult {
    let n = f.dim();
    let mut x: Vec<f64> = x0.iter().zip(&o.bounds).map(|(v, (lo, hi))| v.clamp(*lo, *hi)).collect();
    let mut g = vec![0.0; n];
    let mut h = vec![0.0; n * n];
    let fail = |x: Vec<f64>, e: String, it: usize| FitResult {
        x,
        value: f64::NAN,
        gradient: vec![f64::NAN; n],
        hessian: vec![f64::NAN; n * n],
        iterations: it,
        stop: StopReason::Objective(e),
    };
    let mut value = match f.evaluate(&x, &mut g, &mut h) {
        Ok(v) if v.is_finite() => v,
        Ok(v) => return fail(x, format!("expected a finite objective at the start, found {v}"), 0),
        Err(e) => return fail(x, e, 0),
    };
    let (mut g_new, mut h_new) = (vec![0.0; n], vec![0.0; n * n]);
    let mut trial = vec![0.0; n];
    let mut free: Vec<usize> = Vec::with_capacity(n);
    let mut newton = Newton::new(n);
    let mut gradient_step = vec![0.0; n];
    let done =
        |x: Vec<f64>, value, g, h, iterations, stop| FitResult { x, value, gradient: g, hessian: h, iterations, stop };
    for iteration in 0..o.max_iterations {
        let pg = projected_gradient_norm(&x, &g, o);
        if pg <= o.tolerance {
            return done(x, value, g, h, iteration, StopReason::Converged);
        }
        free.clear();
        free.extend((0..n).filter(|&i| !held(i, &x, &g, o)));
        let has_newton = newton.solve(&h, &g, &free, n);
        // Near the minimum the decrease a Newton step promises, ½·gᵀH⁻¹g, falls below what f
        // can resolve in floating point, while the gradient (computed analytically) still
        // points the way. Take such steps without a line search, and stop once they no longer
        // move θ: it is then stationary to working precision.
        if has_newton {
            let d = &newton.step;
            let promised: f64 = -free.iter().zip(d).map(|(&i, di)| g[i] * di).sum::<f64>();
            if promised >= 0.0 && promised <= 1e-13 * (1.0 + value.abs()) {
                trial.copy_from_slice(&x);
                for (k, &i) in free.iter().enumerate() {
                    trial[i] = (x[i] + d[k]).clamp(o.bounds[i].0, o.bounds[i].1);
                }
                let moved = free.iter().any(|&i| (trial[i] - x[i]).abs() > 1e-14 * (1.0 + x[i].abs()));
                match f.evaluate(&trial, &mut g_new, &mut h_new) {
                    Ok(v) if v.is_finite() && moved => {
                        std::mem::swap(&mut x, &mut trial);
                        value = v;
                        std::mem::swap(&mut g, &mut g_new);
                        std::mem::swap(&mut h, &mut h_new);
                        continue;
                    }
                    _ => return done(x, value, g, h, iteration, StopReason::Stationary { gradient: pg }),
                }
            }
        }
        gradient_step.clear();
        gradient_step.extend(free.iter().map(|&i| -g[i]));
        let mut accepted = false;
        let directions: [Option<&[f64]>; 2] =
            [has_newton.then_some(&newton.step[..free.len()]), Some(&gradient_step[..])];
        for direction in directions.into_iter().flatten() {
            let mut t = 1.0;
            for attempt in 0..60 {
                for (k, &i) in free.iter().enumerate() {
                    let (lo, hi) = o.bounds[i];
                    trial[i] = (x[i] + t * direction[k]).clamp(lo, hi);
                }
                for i in (0..n).filter(|i| !free.contains(i)) {
                    trial[i] = x[i];
                }
                // Armijo on the projected path: f(x_t) ≤ f(x) + c·∇f·(x_t − x).
                let decrease: f64 = free.iter().map(|&i| g[i] * (trial[i] - x[i])).sum();
                let sufficient = |v: f64| v.is_finite() && v <= value + 1e-4 * decrease && decrease < 0.0;
                if attempt == 0 {
                    // The full step: its derivatives are needed anyway if it is accepted.
                    if let Ok(v) = f.evaluate(&trial, &mut g_new, &mut h_new) {
                        if sufficient(v) {
                            std::mem::swap(&mut x, &mut trial);
                            value = v;
                            std::mem::swap(&mut g, &mut g_new);
                            std::mem::swap(&mut h, &mut h_new);
                            accepted = true;
                            break;
                        }
                    }
                } else if matches!(f.value(&trial), Ok(v) if sufficient(v)) {
                    if let Ok(v) = f.evaluate(&trial, &mut g_new, &mut h_new) {
                        std::mem::swap(&mut x, &mut trial);
                        value = v;
                        std::mem::swap(&mut g, &mut g_new);
                        std::mem::swap(&mut h, &mut h_new);
                        accepted = true;
                        break;
                    }
                }
                t *= 0.5;
            }
            if accepted {
                break;
            }
        }
        if !accepted {
            // Trials wrote only the scratch buffers, so g and h still belong to x.
            return done(x, value, g, h, iteration, StopReason::LineSearchFailed { gradient: pg });
        }
    }
    let stop = if projected_gradient_norm(&x, &g, o) <= o.tolerance {
        StopReason::Converged
    } else {
        StopReason::MaxIterations
    };
    done(x, value, g, h, o.max_iterations, stop)
}

/// The Newton step on the free coordinates, −H_FF⁻¹ g_F, damped (H + λI) until the system is
/// positive definite, with its scratch space.
struct Newton {
    sub: Vec<f64>,
    damped: Vec<f64>,
    factor: Vec<f64>,
    step: Vec<f64>,
}

impl Newton {
    fn new(n: usize) -> Self {
        Newton { sub: vec![0.0; n * n], damped: vec![0.0; n * n], factor: vec![0.0; n * n], step: vec![0.0; n] }
    }

    /// Computes the step into `self.step[..free.len()]`; false if no damping helps.
    fn solve(&mut self, h: &[f64], g: &[f64], free: &[usize], n: usize) -> bool {
        let m = free.len();
        let sub = &mut self.sub[..m * m];
        for (a, &i) in free.iter().enumerate() {
            for (b, &j) in free.iter().enumerate() {
                sub[a * m + b] = h[i * n + j];
            }
        }
        let scale = (0..m).map(|a| sub[a * m + a].abs()).fold(1e-12, f64::max);
        let mut damping = 0.0;
        for _ in 0..30 {
            let damped = &mut self.damped[..m * m];
            damped.copy_from_slice(sub);
            for a in 0..m {
                damped[a * m + a] += damping;
            }
            if cholesky_into(damped, m, &mut self.factor[..m * m]).is_ok() {
                let step = &mut self.step[..m];
                for (s, &i) in step.iter_mut().zip(free) {
                    *s = -g[i];
                }
                cholesky_solve_in_place(&self.factor[..m * m], m, step);
                return true;
            }
            damping = if damping == 0.0 { 1e-8 * scale } else { damping * 10.0 };
        }
        false
    }
}

/// How a fit is started and judged: the options of each Newton run, whether to restart from
/// moved initial values, and whether failing to converge is an error.
#[derive(Clone, Debug, PartialEq)]
pub struct FitPlan {
    pub options: FitOptions,
    /// Also start from the initial values moved by ±1 in each free parameter (clipped to the
    /// bounds) and keep the lowest minimum. Likelihoods with a histosys whose variations lie on
    /// the same side of the nominal have a cusp at α = 0 and can have two minima, and one start
    /// can stop in the wrong one.
    pub restarts: bool,
    /// Whether a fit that does not converge is an error. When false, the lowest point reached is
    /// returned and the caller checks convergence itself.
    pub require_convergence: bool,
}

/// Minimises `f` from `init` and, with restarts, from the moved starts, returning the lowest
/// acceptable minimum or a message saying why no start converged.
pub fn minimize_planned(f: &mut dyn Objective, init: &[f64], plan: &FitPlan) -> Result<FitResult, String> {
    let o = &plan.options;
    if init.len() != o.bounds.len() || o.fixed.len() != o.bounds.len() || f.dim() != o.bounds.len() {
        return Err(format!(
            "expected {} initial values, bounds and fixed flags for a {}-parameter objective, found {}, {} and {}",
            f.dim(),
            f.dim(),
            init.len(),
            o.bounds.len(),
            o.fixed.len()
        ));
    }
    let mut best: Option<FitResult> = None;
    let mut lowest: Option<FitResult> = None;
    let mut failures = Vec::new();
    let mut start = init.to_vec();
    let moves = if plan.restarts { 2 * init.len() } else { 0 };
    for m in 0..=moves {
        // Start 0 is `init`; start 2i + 1 and 2i + 2 move parameter i down and up by one.
        if m > 0 {
            let i = (m - 1) / 2;
            let delta = if m % 2 == 1 { -1.0 } else { 1.0 };
            start.copy_from_slice(init);
            start[i] = (start[i] + delta).clamp(o.bounds[i].0, o.bounds[i].1);
            if o.fixed[i] || start[i] == init[i] {
                continue;
            }
        }
        let r = minimize(f, &start, o);
        let acceptable = match &r.stop {
            StopReason::Converged | StopReason::Stationary { .. } => true,
            // Flat to rounding: the gradient left is far below anything that moves the minimum.
            StopReason::LineSearchFailed { gradient } => *gradient <= 100.0 * o.tolerance,
            StopReason::MaxIterations | StopReason::Objective(_) => false,
        };
        if !acceptable {
            failures.push(format!("{} after {} iterations from {start:?}", r.stop, r.iterations));
            if r.value.is_finite() && lowest.as_ref().is_none_or(|l| r.value < l.value) {
                lowest = Some(r);
            }
            continue;
        }
        if best.as_ref().is_none_or(|b| r.value < b.value) {
            best = Some(r);
        }
    }
    if !plan.require_convergence {
        if let Some(l) = lowest.filter(|l| best.as_ref().is_none_or(|b| l.value < b.value)) {
            return Ok(l);
        }
    }
    best.ok_or_else(|| {
        let more = if failures.len() > 1 {
            format!(" (and {} other starts failed too)", failures.len() - 1)
        } else {
            String::new()
        };
        format!("the fit did not converge: {}{more}", failures.first().map_or("", String::as_str))
    })
}
