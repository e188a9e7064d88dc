//! The HistFactory likelihood from its structure, with pyhf's semantics:
//!
//! ν_cb(θ) = Σ_s F_sb · A_sb, F_sb = Π_m κ_m (normfactor, lumi, shapefactor, staterror,
//! shapesys γ's and normsys κ(α)), A_sb = nominal_sb + Σ_h Δ_h(α_h) (histosys);
//! −ln L = Σ_cb [ν − n ln ν + ln Γ(n + 1)] + Σ constraint terms, with Normal constraints
//! ½((a − θ)/σ)² + ln σ + ½ ln 2π (σ = √Σδ²/Σnominal for staterror) and Poisson ones
//! γτ − a ln(γτ) + ln Γ(a + 1), τ = (nominal/δ)² (shapesys).
//!
//! The input is one flat vector z = [θ | operands | n]: the parameters, the histograms the
//! structure points at, and the data (main bins then auxiliary). Every pass touches each
//! (bin, modifier) entry a fixed number of times:
//!
//! - the value, and its gradient with respect to all of z by a hand-written reverse pass over
//!   [`Scalar`], so that the same code yields directional derivatives of the gradient in dual
//!   numbers (`jet.rs`);
//! - the Hessian with respect to θ in `f64`, as Σ_b [(n_b/ν_b²) ∇ν_b ∇ν_bᵀ + (1 − n_b/ν_b) ∇²ν_b]
//!   plus the constraints' diagonal, where ∇ν_b and ∇²ν_b involve only the parameters that
//!   touch bin b — its cost is the Hessian's nonzeros.
//!
//! The second function of the same structure is the expected data E(θ) = [ν | aux
//! expectations: θ (Normal), γτ (Poisson)] (pyhf's `expected_data`); its adjoint is the
//! gradient of w·E over z = [θ | operands | w].

use super::interp::{histosys_coefficients, normsys};
use super::modifier::{Constraint, ModifierType, HI, LO};
use super::scalar::{second_order, Dual, Scalar};
use super::structure::Likelihood;

/// Which scalar function of the structure: the negative log-likelihood of z = [θ | operands |
/// data], or the weighted expected data w·E(θ) of z = [θ | operands | w].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    Nll,
    Expected,
}

/// Buffers one evaluation needs, sized once for a structure.
#[derive(Clone, Debug)]
pub struct Scratch<T> {
    /// Per instance: κ of one-parameter multiplicative modifiers, and its derivative in θ.
    kappa: Vec<T>,
    dkappa: Vec<T>,
    /// Per normsys instance: ∂κ/∂hi and ∂κ/∂lo.
    dhi: Vec<T>,
    dlo: Vec<T>,
    /// Per histosys instance: the coefficients of (hi, lo, nominal) and their α-derivatives.
    coef: Vec<[T; 3]>,
    dcoef: Vec<[T; 3]>,
    /// Per sample·bin slot: F and A.
    f: Vec<T>,
    a: Vec<T>,
    nu: Vec<T>,
    nu_bar: Vec<T>,
    /// Per bin of the sample at hand: the adjoints of F and A.
    f_bar: Vec<T>,
    a_bar: Vec<T>,
    /// Per auxiliary measurement: the constraint's σ (Normal) or τ (Poisson), and ln σ.
    width: Vec<T>,
    log_width: Vec<T>,
    /// Whether `width` already holds the widths of the current histograms: a fit, whose
    /// histograms do not change, computes them (and their logarithms) once.
    pub(crate) widths_fixed: bool,
}

impl<T: Scalar> Scratch<T> {
    pub fn new(lik: &Likelihood) -> Self {
        let zeros = |n: usize| vec![T::zero(); n];
        let n = lik.instances.len();
        Scratch {
            kappa: zeros(n),
            dkappa: zeros(n),
            dhi: zeros(n),
            dlo: zeros(n),
            coef: vec![[T::zero(); 3]; n],
            dcoef: vec![[T::zero(); 3]; n],
            f: zeros(lik.slots),
            a: zeros(lik.slots),
            nu: zeros(lik.n_main),
            nu_bar: zeros(lik.n_main),
            f_bar: zeros(lik.max_bins),
            a_bar: zeros(lik.max_bins),
            width: zeros(lik.n_aux),
            log_width: zeros(lik.n_aux),
            widths_fixed: false,
        }
    }
}

/// −ln Poisson(n | ν) less its part that depends on n alone ([`count_constant`]):
/// ν − n − n ln(ν/n), written with ln_1p so that near the minimum (ν ≈ n), where it is about
/// (ν − n)²/2n, it keeps its relative precision instead of being the difference of terms of
/// size n ln n. Summed over many bins, the naive ν − n ln ν + ln Γ(n + 1) has rounding errors
/// of 1e−11 and more, above the decreases a Newton step promises near a minimum.
fn poisson_core<T: Scalar>(n: T, nu: T) -> T {
    if n.re() > 0.0 {
        let excess = nu - n;
        excess - n * (excess / n).ln_1p()
    } else {
        // n = 0: ν − 0·ln ν (scipy's xlogy).
        nu
    }
}

/// The part of −ln Poisson(n | ν) that depends on n alone: ln Γ(n + 1) − n ln n + n (0 at
/// n = 0), so that ν − n ln ν + ln Γ(n + 1) = [`poisson_core`] + this.
fn count_constant<T: Scalar>(n: T) -> T {
    if n.re() > 0.0 {
        (n + 1.0).lgamma() - n * n.ln() + n
    } else {
        (n + 1.0).lgamma()
    }
}

/// ∂/∂y of y − x ln y: 1 − x/y (1 where y = 0 = x).
fn poisson_rate_adjoint<T: Scalar>(x: T, y: T) -> T {
    if y.re() > 0.0 || x.re() != 0.0 {
        T::cst(1.0) - x / y
    } else {
        T::cst(1.0)
    }
}

/// ∂/∂x of y − x ln y + ln Γ(x + 1): ψ(x + 1) − ln y.
fn poisson_count_adjoint<T: Scalar>(x: T, y: T) -> T {
    (x + 1.0).polygamma(0) - if y.re() > 0.0 { y.ln() } else { T::zero() }
}

/// ½ ln 2π, the Normal constraint's normalisation (the value `0.5 * (2π).ln()` rounds to).
pub(crate) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

impl Likelihood {
    fn operand<'z, T>(&self, z: &'z [T], k: usize) -> &'z [T] {
        &z[self.offsets[k]..self.offsets[k] + self.structure.operands[k]]
    }

    /// The value of a multiplicative instance at bin b.
    #[inline]
    fn kappa_at<T: Scalar>(&self, z: &[T], kappa: &[T], i: usize, b: usize) -> T {
        let inst = &self.instances[i];
        if inst.per_bin {
            z[inst.param + b]
        } else {
            kappa[i]
        }
    }

    /// Π_{j ≠ i} κ_j at bin b over a sample's multiplicative instances: ∂F/∂κ_i. It is F/κ_i
    /// unless κ_i is 0 (μ = 0 is common), when the product is taken explicitly.
    #[inline]
    fn others<T: Scalar>(&self, z: &[T], kappa: &[T], mult: &std::ops::Range<usize>, i: usize, b: usize, f: T) -> T {
        let k = self.kappa_at(z, kappa, i, b);
        if k.re() != 0.0 {
            return f / k;
        }
        let mut product = T::cst(1.0);
        for j in mult.clone().filter(|&j| j != i) {
            product *= self.kappa_at(z, kappa, j, b);
        }
        product
    }

    /// Per-instance quantities that depend on θ but not on the bin; with `derivs`, their
    /// derivatives in α, and with `templates` those of normsys in its factors too.
    fn prepare<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>, derivs: bool, templates: bool) {
        let code = (self.structure.normsys_code, self.structure.histosys_code);
        for (i, inst) in self.instances.iter().enumerate() {
            match inst.ty {
                ModifierType::NormFactor | ModifierType::Lumi => {
                    s.kappa[i] = z[inst.param];
                    s.dkappa[i] = T::cst(1.0);
                }
                ModifierType::NormSys => {
                    let alpha = z[inst.param];
                    let (hi, lo) = (z[self.offsets[inst.data[HI]]], z[self.offsets[inst.data[LO]]]);
                    if derivs {
                        let d = normsys(code.0, Dual::var(alpha), Dual::lift(hi), Dual::lift(lo));
                        (s.kappa[i], s.dkappa[i]) = (d.a, d.b);
                    } else {
                        s.kappa[i] = normsys(code.0, alpha, hi, lo);
                    }
                    if templates {
                        s.dhi[i] = normsys(code.0, Dual::lift(alpha), Dual::var(hi), Dual::lift(lo)).b;
                        s.dlo[i] = normsys(code.0, Dual::lift(alpha), Dual::lift(hi), Dual::var(lo)).b;
                    }
                }
                ModifierType::HistoSys => {
                    let alpha = z[inst.param];
                    if derivs {
                        let c = histosys_coefficients(code.1, Dual::var(alpha));
                        s.coef[i] = c.map(|d| d.a);
                        s.dcoef[i] = c.map(|d| d.b);
                    } else {
                        s.coef[i] = histosys_coefficients(code.1, alpha);
                    }
                }
                ModifierType::ShapeFactor | ModifierType::ShapeSys | ModifierType::StatError => {}
            }
        }
    }

    /// F, A and ν from θ and the operands (after [`Self::prepare`]), instance by instance
    /// over each sample's bins.
    fn rates<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>) {
        s.nu.iter_mut().for_each(|v| *v = T::zero());
        for sample in &self.samples {
            let (bins, slot) = (sample.bins, sample.slot);
            let nominal = self.operand(z, sample.nominal);
            let f = &mut s.f[slot..slot + bins];
            f.iter_mut().for_each(|v| *v = T::cst(1.0));
            for i in sample.multiplicative.clone() {
                let inst = &self.instances[i];
                if inst.per_bin {
                    f.iter_mut().zip(&z[inst.param..inst.param + bins]).for_each(|(v, g)| *v *= *g);
                } else {
                    let k = s.kappa[i];
                    f.iter_mut().for_each(|v| *v *= k);
                }
            }
            let a = &mut s.a[slot..slot + bins];
            a.copy_from_slice(nominal);
            for i in sample.additive.clone() {
                let inst = &self.instances[i];
                let [c_hi, c_lo, c_nom] = s.coef[i];
                let (hi, lo) = (self.operand(z, inst.data[HI]), self.operand(z, inst.data[LO]));
                for b in 0..bins {
                    a[b] += c_hi * hi[b] + c_lo * lo[b] + c_nom * nominal[b];
                }
            }
            let nu = &mut s.nu[sample.main..sample.main + bins];
            for b in 0..bins {
                nu[b] += s.f[slot + b] * s.a[slot + b];
            }
        }
    }

    /// The constraints' widths: σ for Normal constraints (with ln σ), τ for Poisson ones;
    /// nothing when they are known to be current.
    pub(crate) fn widths<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>) {
        if s.widths_fixed {
            return;
        }
        let mut k = 0;
        for c in &self.structure.constraints {
            for j in 0..c.params.len() {
                s.width[k] = match (c.ty.constraint(), &c.sigmas) {
                    (Constraint::Poisson, _) => {
                        let &(nominal, delta) = c.sources.last().unwrap_or(&(0, 0));
                        let r = self.operand(z, nominal)[j] / self.operand(z, delta)[j];
                        r * r
                    }
                    (_, Some(sigmas)) => T::cst(sigmas[j]),
                    (_, None) if c.sources.is_empty() => T::cst(1.0),
                    (_, None) => {
                        let (mut sq, mut sum) = (T::zero(), T::zero());
                        for &(nominal, delta) in &c.sources {
                            let d = self.operand(z, delta)[j];
                            sq += d * d;
                            sum += self.operand(z, nominal)[j];
                        }
                        sq.sqrt() / sum
                    }
                };
                if c.ty.constraint() == Constraint::Normal {
                    s.log_width[k] = s.width[k].ln();
                }
                k += 1;
            }
        }
    }

    /// The part of −ln L that depends on the data alone ([`count_constant`] of every main
    /// count and Poisson auxiliary count), which a fit computes once.
    pub fn data_constant<T: Scalar>(&self, data: &[T]) -> T {
        let mut total = T::zero();
        for n in &data[..self.n_main] {
            total += count_constant(*n);
        }
        self.for_each_aux(|_, _, aux, constraint| {
            if constraint == Constraint::Poisson {
                total += count_constant(data[self.n_main + aux]);
            }
        });
        total
    }

    /// Calls `f(constraint index, index within it, aux index, constraint kind)` in aux order.
    fn for_each_aux(&self, mut f: impl FnMut(usize, usize, usize, Constraint)) {
        let mut k = 0;
        for (c, desc) in self.structure.constraints.iter().enumerate() {
            for j in 0..desc.params.len() {
                f(c, j, k, desc.ty.constraint());
                k += 1;
            }
        }
    }

    /// −ln L at z = [θ | operands | data]. `constant` is [`Self::data_constant`] if known.
    /// With `grad`, also writes ∂/∂z: all of it when `all`, else only the θ part (the rest is
    /// left as it was).
    pub fn nll<T: Scalar>(
        &self,
        z: &[T],
        s: &mut Scratch<T>,
        constant: Option<T>,
        grad: Option<(&mut [T], bool)>,
    ) -> T {
        let all = grad.as_ref().is_some_and(|g| g.1);
        self.prepare(z, s, grad.is_some(), all);
        self.rates(z, s);
        self.widths(z, s);
        let data = &z[self.last_offset()..];
        // Small terms first, the data's constant last, for the sum's precision.
        let mut total = T::zero();
        for (nu, n) in s.nu.iter().zip(data) {
            total += poisson_core(*n, *nu);
        }
        self.for_each_aux(|c, j, k, kind| {
            let theta = z[self.structure.constraints[c].params.start + j];
            let a = data[self.n_main + k];
            let w = s.width[k];
            total += match kind {
                Constraint::Poisson => poisson_core(a, theta * w),
                Constraint::Normal | Constraint::None => {
                    let u = (a - theta) / w;
                    u * u * 0.5 + s.log_width[k] + HALF_LN_2PI
                }
            };
        });
        total += constant.unwrap_or_else(|| self.data_constant(data));
        if let Some((g, all)) = grad {
            if all {
                g.iter_mut().for_each(|v| *v = T::zero());
            } else {
                g[..self.params()].iter_mut().for_each(|v| *v = T::zero());
            }
            for i in 0..self.n_main {
                s.nu_bar[i] = poisson_rate_adjoint(data[i], s.nu[i]);
            }
            self.rates_adjoint(z, s, g, all);
            let last = self.last_offset();
            if all {
                for i in 0..self.n_main {
                    g[last + i] = poisson_count_adjoint(data[i], s.nu[i]);
                }
            }
            self.constraints_adjoint(z, s, g, all, Func::Nll);
        }
        total
    }

    /// The expected data E(θ) = [ν | aux expectations] at z = [θ | operands] into `out`.
    pub fn expected<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>, out: &mut [T]) {
        self.prepare(z, s, false, false);
        self.rates(z, s);
        self.widths(z, s);
        out[..self.n_main].copy_from_slice(&s.nu);
        self.for_each_aux(|c, j, k, kind| {
            let theta = z[self.structure.constraints[c].params.start + j];
            out[self.n_main + k] = match kind {
                Constraint::Poisson => theta * s.width[k],
                Constraint::Normal | Constraint::None => theta,
            };
        });
    }

    /// w·E(θ) at z = [θ | operands | w] and its gradient with respect to all of z.
    pub fn expected_weighted<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>, g: &mut [T]) -> T {
        let last = self.last_offset();
        g.iter_mut().for_each(|v| *v = T::zero());
        // ∂(w·E)/∂w = E, written straight into its place in the gradient.
        self.expected(&z[..last], s, &mut g[last..]);
        let w = &z[last..];
        let mut total = T::zero();
        for (wk, ek) in w.iter().zip(&g[last..]) {
            total += *wk * *ek;
        }
        self.prepare(z, s, true, true);
        s.nu_bar.copy_from_slice(&w[..self.n_main]);
        self.rates_adjoint(z, s, g, true);
        self.constraints_adjoint(z, s, g, true, Func::Expected);
        total
    }

    /// Propagates ν̄ (in the scratch) to θ and, when `all`, to the operands.
    fn rates_adjoint<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>, g: &mut [T], all: bool) {
        for sample in &self.samples {
            let (bins, slot) = (sample.bins, sample.slot);
            let mult = sample.multiplicative.clone();
            for b in 0..bins {
                let nu_bar = s.nu_bar[sample.main + b];
                s.f_bar[b] = nu_bar * s.a[slot + b];
                s.a_bar[b] = nu_bar * s.f[slot + b];
            }
            for i in mult.clone() {
                let inst = &self.instances[i];
                if inst.per_bin {
                    for b in 0..bins {
                        let others = self.others(z, &s.kappa, &mult, i, b, s.f[slot + b]);
                        g[inst.param + b] += s.f_bar[b] * others;
                    }
                    continue;
                }
                // One parameter for all bins: its adjoint sums over them.
                let mut kappa_bar = T::zero();
                for b in 0..bins {
                    kappa_bar += s.f_bar[b] * self.others(z, &s.kappa, &mult, i, b, s.f[slot + b]);
                }
                match inst.ty {
                    ModifierType::NormSys => {
                        g[inst.param] += kappa_bar * s.dkappa[i];
                        if all {
                            g[self.offsets[inst.data[HI]]] += kappa_bar * s.dhi[i];
                            g[self.offsets[inst.data[LO]]] += kappa_bar * s.dlo[i];
                        }
                    }
                    ModifierType::NormFactor
                    | ModifierType::Lumi
                    | ModifierType::ShapeFactor
                    | ModifierType::ShapeSys
                    | ModifierType::StatError
                    | ModifierType::HistoSys => g[inst.param] += kappa_bar,
                }
            }
            let nominal_off = self.offsets[sample.nominal];
            let mut nominal_coef = T::cst(1.0);
            for i in sample.additive.clone() {
                let inst = &self.instances[i];
                let (hi_off, lo_off) = (self.offsets[inst.data[HI]], self.offsets[inst.data[LO]]);
                let [dh, dl, dn] = s.dcoef[i];
                let mut alpha_bar = T::zero();
                for b in 0..bins {
                    alpha_bar += s.a_bar[b] * (dh * z[hi_off + b] + dl * z[lo_off + b] + dn * z[nominal_off + b]);
                }
                g[inst.param] += alpha_bar;
                if all {
                    let [c_hi, c_lo, c_nom] = s.coef[i];
                    for b in 0..bins {
                        g[hi_off + b] += s.a_bar[b] * c_hi;
                        g[lo_off + b] += s.a_bar[b] * c_lo;
                    }
                    nominal_coef += c_nom;
                }
            }
            if all {
                for b in 0..bins {
                    g[nominal_off + b] += s.a_bar[b] * nominal_coef;
                }
            }
        }
    }

    /// The constraints' part of the gradient: of their −ln p terms for the NLL, of the
    /// weighted aux expectations for the expected data.
    fn constraints_adjoint<T: Scalar>(&self, z: &[T], s: &Scratch<T>, g: &mut [T], all: bool, func: Func) {
        let last = self.last_offset();
        let mut k = 0;
        for c in &self.structure.constraints {
            for j in 0..c.params.len() {
                let q = c.params.start + j;
                let (theta, a, w) = (z[q], z[last + self.n_main + k], s.width[k]);
                // The adjoint of the width (σ or τ), to pass on to the templates.
                let width_bar = match (func, c.ty.constraint()) {
                    (Func::Nll, Constraint::Poisson) => {
                        let lambda = theta * w;
                        let lambda_bar = poisson_rate_adjoint(a, lambda);
                        g[q] += lambda_bar * w;
                        if all {
                            g[last + self.n_main + k] = poisson_count_adjoint(a, lambda);
                        }
                        lambda_bar * theta
                    }
                    (Func::Nll, Constraint::Normal | Constraint::None) => {
                        // ½u² + ln σ with u = (a − θ)/σ.
                        let u = (a - theta) / w;
                        g[q] -= u / w;
                        if all {
                            g[last + self.n_main + k] = u / w;
                        }
                        (T::cst(1.0) - u * u) / w
                    }
                    // w_k·γτ for Poisson, w_k·θ for Normal.
                    (Func::Expected, Constraint::Poisson) => {
                        g[q] += a * w;
                        a * theta
                    }
                    (Func::Expected, Constraint::Normal | Constraint::None) => {
                        g[q] += a;
                        T::zero()
                    }
                };
                if all && c.sigmas.is_none() && !c.sources.is_empty() {
                    self.width_adjoint(z, c.ty.constraint(), &c.sources, j, w, width_bar, g);
                }
                k += 1;
            }
        }
    }

    /// Passes the adjoint of a width computed from templates on to them: τ = (nominal/δ)² for
    /// shapesys, σ = √(Σδ²)/Σnominal for staterror.
    #[allow(clippy::too_many_arguments)]
    fn width_adjoint<T: Scalar>(
        &self,
        z: &[T],
        kind: Constraint,
        sources: &[(usize, usize)],
        j: usize,
        width: T,
        width_bar: T,
        g: &mut [T],
    ) {
        match kind {
            Constraint::Poisson => {
                let &(nominal, delta) = sources.last().unwrap_or(&(0, 0));
                let (n_off, d_off) = (self.offsets[nominal] + j, self.offsets[delta] + j);
                let (n, d) = (z[n_off], z[d_off]);
                // τ = n²/δ²: ∂τ/∂n = 2n/δ², ∂τ/∂δ = −2n²/δ³.
                g[n_off] += width_bar * n * 2.0 / (d * d);
                g[d_off] -= width_bar * n * n * 2.0 / (d * d * d);
            }
            Constraint::Normal | Constraint::None => {
                let (mut sq, mut sum) = (T::zero(), T::zero());
                for &(nominal, delta) in sources {
                    let d = z[self.offsets[delta] + j];
                    sq += d * d;
                    sum += z[self.offsets[nominal] + j];
                }
                let root = sq.sqrt();
                // σ = R/N: ∂σ/∂δ = δ/(R·N), ∂σ/∂nominal = −σ/N.
                for &(nominal, delta) in sources {
                    let d_off = self.offsets[delta] + j;
                    g[d_off] += width_bar * z[d_off] / (root * sum);
                    g[self.offsets[nominal] + j] -= width_bar * width / sum;
                }
            }
        }
    }

    /// The gradient of `func` with respect to all of z. Its value is not needed by the jets
    /// this serves, so the likelihood's data-only term Σ ln Γ(n + 1) is left out of the
    /// returned value (its derivative in n is part of the gradient).
    pub fn gradient<T: Scalar>(&self, func: Func, z: &[T], s: &mut Scratch<T>, g: &mut [T]) -> T {
        match func {
            Func::Nll => self.nll(z, s, Some(T::zero()), Some((g, true))),
            Func::Expected => self.expected_weighted(z, s, g),
        }
    }

    /// The Hessian of −ln L with respect to θ at z = [θ | operands | data], row-major into `h`
    /// (P·P values). [`Self::nll`] with a gradient must have run on the same z and scratch.
    ///
    /// Channel by channel, with r_b = 1 − n_b/ν_b and w_b = n_b/ν_b²:
    /// H = Σ_b [w_b ∇ν_b ∇ν_bᵀ + r_b ∇²ν_b] + the constraints' diagonal. Each sample's
    /// derivatives are computed instance by instance over its bins; the first derivatives of
    /// the channel's samples are merged by parameter before the outer product, so its cost is
    /// the number of (parameter pair, bin) entries that are nonzero.
    pub fn hessian(&self, z: &[f64], s: &Scratch<f64>, h: &mut [f64], work: &mut HessianWork) {
        let p = self.params();
        h.iter_mut().for_each(|v| *v = 0.0);
        let data = &z[self.last_offset()..];
        let code = (self.structure.normsys_code, self.structure.histosys_code);
        // Second α-derivatives of normsys κ and of the histosys coefficients.
        for (i, inst) in self.instances.iter().enumerate() {
            work.second[i] = match inst.ty {
                ModifierType::NormSys => {
                    let (hi, lo) = (z[self.offsets[inst.data[HI]]], z[self.offsets[inst.data[LO]]]);
                    [second_order(z[inst.param], |x| normsys(code.0, x, Dual::cst(hi), Dual::cst(lo)))[2], 0.0, 0.0]
                }
                ModifierType::HistoSys => {
                    let alpha = Dual::<Dual<f64>>::seed(z[inst.param], &[1.0, 1.0]);
                    histosys_coefficients(code.1, alpha).map(|c| c.b.b)
                }
                ModifierType::NormFactor
                | ModifierType::Lumi
                | ModifierType::ShapeFactor
                | ModifierType::ShapeSys
                | ModifierType::StatError => [0.0; 3],
            };
        }
        let mut first_sample = 0;
        for channel in &self.structure.channels {
            let bins = channel.bins;
            let samples = &self.samples[first_sample..first_sample + channel.samples.len()];
            first_sample += channel.samples.len();
            let Some(main) = samples.first().map(|s| s.main) else { continue };
            for b in 0..bins {
                let (nu, n) = (s.nu[main + b], data[main + b]);
                work.r[b] = if nu > 0.0 { 1.0 - n / nu } else { 1.0 };
                work.w[b] = if nu > 0.0 { n / (nu * nu) } else { 0.0 };
            }
            work.merged.clear();
            for sample in samples {
                self.sample_derivatives(z, s, sample, h, work);
            }
            // Σ_b w_b ∇ν_b ∇ν_bᵀ over the merged first derivatives.
            let merged = &work.merged;
            let n = merged.entries.len();
            for e in 0..n {
                let (pe, per_bin_e) = merged.entries[e];
                let de = &merged.values[e * bins..(e + 1) * bins];
                for f in e..n {
                    let (pf, per_bin_f) = merged.entries[f];
                    let df = &merged.values[f * bins..(f + 1) * bins];
                    let at = |q: usize, per_bin: bool, b: usize| q + if per_bin { b } else { 0 };
                    if !per_bin_e && !per_bin_f {
                        let v: f64 = (0..bins).map(|b| work.w[b] * de[b] * df[b]).sum();
                        if e == f {
                            h[pe * p + pe] += v;
                        } else {
                            add_pair(h, p, pe, pf, v);
                        }
                    } else {
                        for b in 0..bins {
                            let (qe, qf) = (at(pe, per_bin_e, b), at(pf, per_bin_f, b));
                            let v = work.w[b] * de[b] * df[b];
                            if e == f {
                                h[qe * p + qe] += v;
                            } else {
                                add_pair(h, p, qe, qf, v);
                            }
                        }
                    }
                }
            }
        }
        let mut k = 0;
        for c in &self.structure.constraints {
            for j in 0..c.params.len() {
                let q = c.params.start + j;
                let w = s.width[k];
                h[q * p + q] += match c.ty.constraint() {
                    // ∂²/∂γ² of γτ − a ln(γτ) = a/γ².
                    Constraint::Poisson => {
                        let a = data[self.n_main + k];
                        if z[q] != 0.0 {
                            a / (z[q] * z[q])
                        } else {
                            0.0
                        }
                    }
                    Constraint::Normal | Constraint::None => 1.0 / (w * w),
                };
                k += 1;
            }
        }
    }

    /// One sample's part of the Hessian: its second derivatives times r straight into `h`, its
    /// first derivatives into the channel's merged entries.
    fn sample_derivatives(
        &self,
        z: &[f64],
        s: &Scratch<f64>,
        sample: &super::structure::SampleIndex,
        h: &mut [f64],
        work: &mut HessianWork,
    ) {
        let p = self.params();
        let (bins, slot) = (sample.bins, sample.slot);
        let (f, a) = (&s.f[slot..slot + bins], &s.a[slot..slot + bins]);
        let mult = sample.multiplicative.clone();
        // E_k[b] = ∂F/∂κ_k at bin b, for the sample's multiplicative instances.
        work.others.clear();
        for i in mult.clone() {
            for b in 0..bins {
                let e = self.others(z, &s.kappa, &mult, i, b, f[b]);
                work.others.push(e);
            }
        }
        // The parameter of instance i at bin b, and its first and second derivative factors.
        let param = |i: usize, b: usize| {
            let inst = &self.instances[i];
            inst.param + if inst.per_bin { b } else { 0 }
        };
        let d1 = |i: usize| if self.instances[i].per_bin { 1.0 } else { s.dkappa[i] };
        for (k, i) in mult.clone().enumerate() {
            let ek = &work.others[k * bins..(k + 1) * bins];
            let (dk, d2k) = (d1(i), work.second[i][0]);
            // ∂ν/∂θ_k = A κ_k' E_k; ∂²ν/∂θ_k² = A κ_k'' E_k.
            for b in 0..bins {
                work.derivative[b] = a[b] * dk * ek[b];
            }
            work.merged.add(self.instances[i].param, self.instances[i].per_bin, &work.derivative[..bins]);
            if d2k != 0.0 {
                for b in 0..bins {
                    let q = param(i, b);
                    h[q * p + q] += work.r[b] * a[b] * d2k * ek[b];
                }
            }
            // ∂²ν/∂θ_k∂θ_l = A κ_k' κ_l' Π_{all but k, l}.
            for j in mult.clone().skip(k + 1) {
                let dl = d1(j);
                for b in 0..bins {
                    let kl = self.kappa_at(z, &s.kappa, j, b);
                    let both = if kl != 0.0 {
                        ek[b] / kl
                    } else {
                        mult.clone().filter(|&x| x != i && x != j).map(|x| self.kappa_at(z, &s.kappa, x, b)).product()
                    };
                    add_pair(h, p, param(i, b), param(j, b), work.r[b] * a[b] * dk * dl * both);
                }
            }
        }
        let nominal = &z[self.offsets[sample.nominal]..];
        for i in sample.additive.clone() {
            let inst = &self.instances[i];
            let (hi, lo) = (&z[self.offsets[inst.data[HI]]..], &z[self.offsets[inst.data[LO]]..]);
            let [dh, dl, dn] = s.dcoef[i];
            let [sh, sl, sn] = work.second[i];
            let q = inst.param;
            let mut curvature = 0.0;
            for b in 0..bins {
                let delta1 = dh * hi[b] + dl * lo[b] + dn * nominal[b];
                curvature += work.r[b] * f[b] * (sh * hi[b] + sl * lo[b] + sn * nominal[b]);
                work.derivative[b] = f[b] * delta1;
                work.delta[b] = delta1;
            }
            // ∂²ν/∂α² = F Δ''; ∂²ν/∂α∂θ_k = κ_k' E_k Δ'.
            h[q * p + q] += curvature;
            for (k, j) in mult.clone().enumerate() {
                let ek = &work.others[k * bins..(k + 1) * bins];
                let dk = d1(j);
                if self.instances[j].per_bin {
                    for b in 0..bins {
                        add_pair(h, p, q, param(j, b), work.r[b] * dk * ek[b] * work.delta[b]);
                    }
                } else {
                    let v: f64 = (0..bins).map(|b| work.r[b] * dk * ek[b] * work.delta[b]).sum();
                    add_pair(h, p, q, self.instances[j].param, v);
                }
            }
            work.merged.add(q, false, &work.derivative[..bins]);
        }
    }
}

/// Adds v at (i, j) and at (j, i) of the P×P matrix `h`: the mixed derivative of two
/// different modifier instances, which lands twice on the diagonal when both are driven by the
/// same parameter (∂²f(θ, θ)/∂θ² has 2 f₁₂).
#[inline]
fn add_pair(h: &mut [f64], p: usize, i: usize, j: usize, v: f64) {
    h[i * p + j] += v;
    h[j * p + i] += v;
}

/// The first derivatives ∂ν_b/∂θ of a channel, one entry per first parameter (flagged when the
/// parameter is per-bin), each with a value per bin.
#[derive(Clone, Debug)]
struct Merged {
    entries: Vec<(usize, bool)>,
    values: Vec<f64>,
    /// The entry of a parameter, or `usize::MAX`.
    entry_of: Vec<usize>,
}

impl Merged {
    /// Adds `derivative` (one value per bin) to the entry of `param`, creating it on first use.
    fn add(&mut self, param: usize, per_bin: bool, derivative: &[f64]) {
        let bins = derivative.len();
        match self.entry_of[param] {
            usize::MAX => {
                self.entry_of[param] = self.entries.len();
                self.entries.push((param, per_bin));
                self.values.extend_from_slice(derivative);
            }
            e => self.values[e * bins..(e + 1) * bins].iter_mut().zip(derivative).for_each(|(v, d)| *v += d),
        }
    }

    fn clear(&mut self) {
        for &(q, _) in &self.entries {
            self.entry_of[q] = usize::MAX;
        }
        self.entries.clear();
        self.values.clear();
    }
}

/// Buffers of the Hessian pass.
#[derive(Clone, Debug)]
pub struct HessianWork {
    second: Vec<[f64; 3]>,
    /// Per bin of the channel at hand: r = 1 − n/ν and w = n/ν².
    r: Vec<f64>,
    w: Vec<f64>,
    merged: Merged,
    /// Per multiplicative instance of the sample at hand and bin: Π of the other factors.
    others: Vec<f64>,
    derivative: Vec<f64>,
    delta: Vec<f64>,
}

impl HessianWork {
    pub fn new(lik: &Likelihood) -> Self {
        let bins = lik.max_bins;
        HessianWork {
            second: vec![[0.0; 3]; lik.instances.len()],
            r: vec![0.0; bins],
            w: vec![0.0; bins],
            merged: Merged { entries: Vec::new(), values: Vec::new(), entry_of: vec![usize::MAX; lik.params()] },
            others: Vec::new(),
            derivative: vec![0.0; bins],
            delta: vec![0.0; bins],
        }
    }
}
