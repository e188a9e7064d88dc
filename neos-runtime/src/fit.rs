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

    /// Disjoint sets of parameters that the Hessian couples only within each set and with the
    /// parameters in no set (HistFactory's per-bin γ's, each touching one bin). Newton solves
    /// eliminate these blocks first and factorise only the rest, the Schur complement; an
    /// empty list (the default) means a dense factorisation.
    fn blocks(&self) -> &[Vec<usize>] {
        &[]
    }

    /// The parameters along which the objective may have more than one minimum, for
    /// [`FitPlan::restarts`] to try the other side of; `None` (the default) when the objective
    /// cannot tell, and every parameter is tried.
    fn multimodal(&mut self) -> Option<Vec<usize>> {
        None
    }

    /// Where the objective is continuous but not differentiable: (parameter, value) pairs, such
    /// as HistFactory's piecewise-linear interpolation at α = 0. Newton steps cannot settle on
    /// such a kink, so fits treat each as a bound: they minimise on one side, then on the other,
    /// and keep the lower minimum. None by default.
    fn kinks(&mut self) -> Vec<(usize, f64)> {
        Vec::new()
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
    let blocks: Vec<Vec<usize>> = f.blocks().to_vec();
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
        let has_newton = newton.solve(&h, &g, &free, n, &blocks);
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
                for i in 0..n {
                    if held(i, &x, &g, o) {
                        trial[i] = x[i];
                    }
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
    blocks: BlockWork,
    /// The damping that last made the system positive definite: the next damped attempts start
    /// near it rather than climbing from 1e−8 again (the Hessian changes little from one
    /// iteration to the next, and each attempt costs a factorisation).
    hint: f64,
}

impl Newton {
    fn new(n: usize) -> Self {
        Newton {
            sub: Vec::new(),
            damped: Vec::new(),
            factor: Vec::new(),
            step: vec![0.0; n],
            blocks: BlockWork::default(),
            hint: 0.0,
        }
    }

    /// Computes the step into `self.step[..free.len()]`; false if no damping helps.
    fn solve(&mut self, h: &[f64], g: &[f64], free: &[usize], n: usize, blocks: &[Vec<usize>]) -> bool {
        if !blocks.is_empty() {
            return self.solve_blocks(h, g, free, n, blocks);
        }
        let m = free.len();
        // The dense buffers grow to the free block's size on first use and are kept.
        for buffer in [&mut self.sub, &mut self.damped, &mut self.factor] {
            if buffer.len() < m * m {
                buffer.resize(m * m, 0.0);
            }
        }
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
                self.settle(damping);
                return true;
            }
            damping = next_damping(self.hint, damping, scale);
        }
        false
    }

    /// Remembers what worked; an undamped success lets the hint decay.
    fn settle(&mut self, damping: f64) {
        self.hint = if damping > 0.0 { damping } else { self.hint * 0.01 };
    }

    /// The same step by block elimination: with the free parameters split into the blocks' L
    /// and the rest G, H = [A B; Bᵀ D] with D block-diagonal, so
    /// (A − B D⁻¹ Bᵀ) x_G = b_G − B D⁻¹ b_L and x_L = D⁻¹ (b_L − Bᵀ x_G), for b = −g. Only the
    /// rows of B that are nonzero for a block enter its update, so the cost is that of the
    /// Schur complement's factorisation plus the couplings, not of the whole Hessian's.
    fn solve_blocks(&mut self, h: &[f64], g: &[f64], free: &[usize], n: usize, blocks: &[Vec<usize>]) -> bool {
        let hint = self.hint;
        let w = &mut self.blocks;
        w.is_free.clear();
        w.is_free.resize(n, false);
        for &i in free {
            w.is_free[i] = true;
        }
        w.in_block.clear();
        w.in_block.resize(n, false);
        for &i in blocks.iter().flatten() {
            if w.is_free[i] {
                w.in_block[i] = true;
            }
        }
        w.globals.clear();
        w.globals.extend(free.iter().copied().filter(|&i| !w.in_block[i]));
        let gn = w.globals.len();
        let scale = free.iter().map(|&i| h[i * n + i].abs()).fold(1e-12, f64::max);
        let mut damping = 0.0;
        'damping: for _ in 0..30 {
            w.schur.clear();
            for &i in &w.globals {
                w.schur.extend(w.globals.iter().map(|&j| h[i * n + j]));
            }
            for r in 0..gn {
                w.schur[r * gn + r] += damping;
            }
            w.rhs.clear();
            w.rhs.extend(w.globals.iter().map(|&i| -g[i]));
            // Per block, kept for the back-substitution: its free members, the factor of D,
            // y = D⁻¹ b_L, and for each coupled global row r, B_r and u_r = D⁻¹ B_rᵀ.
            w.members.clear();
            w.factors.clear();
            w.ys.clear();
            w.rows.clear();
            w.couplings.clear();
            w.records.clear();
            for block in blocks {
                let start_members = w.members.len();
                w.members.extend(block.iter().copied().filter(|&i| w.is_free[i]));
                let m = w.members.len() - start_members;
                if m == 0 {
                    continue;
                }
                let members = start_members..start_members + m;
                w.d.clear();
                for &i in &w.members[members.clone()] {
                    w.d.extend(w.members[members.clone()].iter().map(|&j| h[i * n + j]));
                }
                for a in 0..m {
                    w.d[a * m + a] += damping;
                }
                let factor_at = w.factors.len();
                w.factors.resize(factor_at + m * m, 0.0);
                if cholesky_into(&w.d, m, &mut w.factors[factor_at..]).is_err() {
                    damping = next_damping(hint, damping, scale);
                    continue 'damping;
                }
                let factor = factor_at..factor_at + m * m;
                let y_at = w.ys.len();
                w.ys.extend(w.members[members.clone()].iter().map(|&i| -g[i]));
                cholesky_solve_in_place(&w.factors[factor.clone()], m, &mut w.ys[y_at..]);
                let rows_at = w.rows.len();
                for (r, &gi) in w.globals.iter().enumerate() {
                    if w.members[members.clone()].iter().any(|&l| h[gi * n + l] != 0.0) {
                        w.rows.push(r);
                        let at = w.couplings.len();
                        // B_r, then u_r = D⁻¹ B_rᵀ.
                        w.couplings.extend(w.members[members.clone()].iter().map(|&l| h[gi * n + l]));
                        w.couplings.extend_from_within(at..at + m);
                        cholesky_solve_in_place(&w.factors[factor.clone()], m, &mut w.couplings[at + m..at + 2 * m]);
                    }
                }
                let (rows, first) = (rows_at..w.rows.len(), w.couplings.len() - (w.rows.len() - rows_at) * 2 * m);
                for (a, &r) in w.rows[rows.clone()].iter().enumerate() {
                    let b_r = &w.couplings[first + a * 2 * m..first + a * 2 * m + m];
                    w.rhs[r] -= dot(b_r, &w.ys[y_at..y_at + m]);
                    for (c, &r2) in w.rows[rows.clone()].iter().enumerate() {
                        let u_r2 = &w.couplings[first + c * 2 * m + m..first + (c + 1) * 2 * m];
                        w.schur[r * gn + r2] -= dot(b_r, u_r2);
                    }
                }
                w.records.push(BlockRecord { members, y_at, rows, first });
            }
            if gn > 0 {
                w.factor.clear();
                w.factor.resize(gn * gn, 0.0);
                if cholesky_into(&w.schur, gn, &mut w.factor).is_err() {
                    damping = next_damping(hint, damping, scale);
                    continue;
                }
                cholesky_solve_in_place(&w.factor, gn, &mut w.rhs);
            }
            // x_G is in rhs; x_L = y − Σ_r u_r x_G[r].
            w.x.clear();
            w.x.resize(n, 0.0);
            for (r, &i) in w.globals.iter().enumerate() {
                w.x[i] = w.rhs[r];
            }
            for rec in &w.records {
                let m = rec.members.len();
                for (a, &i) in w.members[rec.members.clone()].iter().enumerate() {
                    let mut v = w.ys[rec.y_at + a];
                    for (c, &r) in w.rows[rec.rows.clone()].iter().enumerate() {
                        v -= w.couplings[rec.first + c * 2 * m + m + a] * w.rhs[r];
                    }
                    w.x[i] = v;
                }
            }
            for (s, &i) in self.step.iter_mut().zip(free) {
                *s = w.x[i];
            }
            self.settle(damping);
            return true;
        }
        false
    }
}

/// The damping to try after `damping` failed: from a hundredth of the last that worked (or
/// 1e−8 of the Hessian's scale), ten times more each time — the smallest that works within a
/// factor of ten, without climbing all the way from 1e−8 at every iteration.
fn next_damping(hint: f64, damping: f64, scale: f64) -> f64 {
    if damping == 0.0 {
        (hint * 0.01).max(1e-8 * scale)
    } else {
        damping * 10.0
    }
}

/// Where one eliminated block's quantities sit in [`BlockWork`]'s flat buffers.
#[derive(Clone, Debug)]
struct BlockRecord {
    members: std::ops::Range<usize>,
    y_at: usize,
    rows: std::ops::Range<usize>,
    /// The start of its couplings: per coupled row, B_r then u_r.
    first: usize,
}

/// Buffers of the block-elimination solve, reused from iteration to iteration.
#[derive(Clone, Debug, Default)]
struct BlockWork {
    is_free: Vec<bool>,
    in_block: Vec<bool>,
    globals: Vec<usize>,
    schur: Vec<f64>,
    factor: Vec<f64>,
    rhs: Vec<f64>,
    d: Vec<f64>,
    members: Vec<usize>,
    factors: Vec<f64>,
    ys: Vec<f64>,
    rows: Vec<usize>,
    couplings: Vec<f64>,
    records: Vec<BlockRecord>,
    x: Vec<f64>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// How a fit is started and judged: the options of each Newton run, whether to restart from
/// moved initial values, and whether failing to converge is an error.
#[derive(Clone, Debug, PartialEq)]
pub struct FitPlan {
    pub options: FitOptions,
    /// Also search for a lower minimum and keep the lowest: from the other side of each
    /// parameter the objective names as possibly multimodal ([`Objective::multimodal`]), or,
    /// when it names none, from the initial values moved by ±1 in each free parameter. A
    /// histosys whose up and down variations lie on the same side of the nominal has a cusp
    /// at α = 0 and can give two minima, and one start can stop in the wrong one.
    pub restarts: bool,
    /// Whether a fit that does not converge is an error. When false, the lowest point reached is
    /// returned and the caller checks convergence itself.
    pub require_convergence: bool,
    /// A second start, for fits started from a neighbouring problem's minimum (a fixed-μ fit
    /// warm-started from the free fit): these values for the free parameters, the given
    /// start's for the fixed ones. A warm start can sit in the basin of a local minimum that
    /// pyhf's start from the suggested values avoids; the lower of both is kept.
    pub also_from: Option<Vec<f64>>,
}

/// The smallest step past a kink at `k`: the right side's bound, so that the objective is
/// evaluated on that side's branch (at exactly k a piecewise function takes one branch only).
fn past(k: f64) -> f64 {
    k + 1e-12 * (1.0 + k.abs())
}

/// Whether x lies on the right of the kink at k (at k itself a piecewise function takes its
/// left branch, α ≤ 0 in pyhf's interpolations).
fn right_of(x: f64, k: f64) -> bool {
    x > k
}

/// [`minimize`] with the objective's kinks as bounds: each kinked parameter is held to the side
/// of the kink its start is on (the left side when it starts on the kink). Where the fit stops
/// on a kink the other side is minimised too, so a minimum on a kink is one from both sides;
/// with `explore` (restarts), every kinked parameter's other side is, over a few passes, and
/// the lowest minimum kept.
fn minimize_across_kinks(
    f: &mut dyn Objective,
    start: &[f64],
    o: &FitOptions,
    kinks: &[(usize, f64)],
    explore: bool,
) -> FitResult {
    let kinks: Vec<(usize, f64)> =
        kinks.iter().copied().filter(|&(i, k)| !o.fixed[i] && o.bounds[i].0 < k && k < o.bounds[i].1).collect();
    if kinks.is_empty() {
        return minimize(f, start, o);
    }
    let restricted = |x: &[f64], flip: Option<usize>| {
        let mut r = o.clone();
        for &(i, k) in &kinks {
            let right = right_of(x[i], k) != (flip == Some(i));
            if right {
                r.bounds[i].0 = past(k);
            } else {
                r.bounds[i].1 = k;
            }
        }
        r
    };
    let mut best = minimize(f, start, &restricted(start, None));
    // A fit that stops on a kink has a one-sided minimum there; the other side must be tried
    // before it is one. And since a kink is where a piecewise interpolation changes slope, each
    // side can hold a minimum of its own: with `explore`, every kinked parameter's other side is
    // tried from the best point so far, from the kink and from the parameter's reflection, one
    // parameter at a time, until a pass finds nothing lower (at most three passes).
    for _ in 0..3 {
        let mut improved = false;
        for &(i, k) in &kinks {
            let here = best.x[i];
            let on_kink = (here - k).abs() <= 2e-12 * (1.0 + k.abs());
            if !explore && !on_kink {
                continue;
            }
            let options = restricted(&best.x, Some(i));
            let mirror = k - (here - k);
            let targets = [if right_of(here, k) { k } else { past(k) }, mirror];
            for (t, &target) in targets.iter().enumerate() {
                let (lo, hi) = options.bounds[i];
                if t == 1 && !(explore && lo < target && target < hi) {
                    continue;
                }
                let mut from = best.x.clone();
                from[i] = target.clamp(lo, hi);
                let r = minimize(f, &from, &options);
                if r.converged() && r.value < best.value - 1e-12 * (1.0 + best.value.abs()) {
                    best = r;
                    improved = true;
                    break;
                }
            }
        }
        if !improved {
            break;
        }
    }
    best
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
    let kinks = f.kinks();
    let mut run = |start: &[f64], f: &mut dyn Objective, best: &mut Option<FitResult>| {
        let r = minimize_across_kinks(f, start, o, &kinks, plan.restarts);
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
        } else if best.as_ref().is_none_or(|b| r.value < b.value) {
            *best = Some(r);
        }
    };
    run(init, f, &mut best);
    if let Some(cold) = plan.also_from.as_ref().filter(|c| c.len() == init.len()) {
        let start: Vec<f64> = (0..init.len()).map(|i| if o.fixed[i] { init[i] } else { cold[i] }).collect();
        if start != init {
            run(&start, f, &mut best);
        }
    }
    let movable = |i: usize, v: f64, from: f64| !o.fixed[i] && v.clamp(o.bounds[i].0, o.bounds[i].1) != from;
    match plan.restarts.then(|| f.multimodal()) {
        None => {}
        // Each parameter that may have two minima is tried on the other side of its turning
        // point (α = 0), starting from the best minimum so far: reflected, or at ±1 when it
        // sits at the turning point. One parameter at a time, so k such parameters cost at
        // most 2k more fits, each warm-started.
        Some(Some(params)) => {
            for i in params {
                let base = best.as_ref().map_or_else(|| init.to_vec(), |b| b.x.clone());
                let here = base[i];
                let targets: &[f64] = if here.abs() > 0.1 { &[-here] } else { &[1.0, -1.0] };
                for &v in targets {
                    if movable(i, v, here) {
                        let mut start = base.clone();
                        start[i] = v.clamp(o.bounds[i].0, o.bounds[i].1);
                        run(&start, f, &mut best);
                    }
                }
            }
        }
        // Nothing known about the objective: move every free parameter by ±1 from `init`.
        Some(None) => {
            for i in 0..init.len() {
                for delta in [-1.0, 1.0] {
                    if movable(i, init[i] + delta, init[i]) {
                        let mut start = init.to_vec();
                        start[i] = (init[i] + delta).clamp(o.bounds[i].0, o.bounds[i].1);
                        run(&start, f, &mut best);
                    }
                }
            }
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
