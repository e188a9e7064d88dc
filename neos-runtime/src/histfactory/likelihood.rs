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
use super::structure::{FlatInstance, Likelihood};

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
    prefix: Vec<T>,
    suffix: Vec<T>,
    /// Per auxiliary measurement: the constraint's σ (Normal) or τ (Poisson).
    width: Vec<T>,
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
            prefix: zeros(lik.max_multiplicative + 1),
            suffix: zeros(lik.max_multiplicative + 1),
            width: zeros(lik.n_aux),
        }
    }
}

/// x ln y with 0 ln y = 0 (scipy's `xlogy`), keeping x's derivative ln y where y > 0.
fn xlogy<T: Scalar>(x: T, y: T) -> T {
    if y.re() > 0.0 || x.re() != 0.0 {
        x * y.ln()
    } else {
        T::zero()
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
    fn kappa_at<T: Scalar>(&self, z: &[T], s: &Scratch<T>, i: usize, inst: &FlatInstance, b: usize) -> T {
        if inst.ty.per_bin() {
            z[inst.param + b]
        } else {
            s.kappa[i]
        }
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

    /// F, A and ν from θ and the operands (after [`Self::prepare`]).
    fn rates<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>) {
        s.nu.iter_mut().for_each(|v| *v = T::zero());
        for sample in &self.samples {
            let nominal = self.operand(z, sample.nominal);
            for b in 0..sample.bins {
                let mut f = T::cst(1.0);
                for i in sample.multiplicative.clone() {
                    f *= self.kappa_at(z, s, i, &self.instances[i], b);
                }
                let mut a = nominal[b];
                for i in sample.additive.clone() {
                    let inst = &self.instances[i];
                    let [c_hi, c_lo, c_nom] = s.coef[i];
                    let (hi, lo) = (self.operand(z, inst.data[HI])[b], self.operand(z, inst.data[LO])[b]);
                    a += c_hi * hi + c_lo * lo + c_nom * nominal[b];
                }
                s.f[sample.slot + b] = f;
                s.a[sample.slot + b] = a;
                s.nu[sample.main + b] += f * a;
            }
        }
    }

    /// The constraints' widths: σ for Normal constraints, τ for Poisson ones.
    fn widths<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>) {
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
                k += 1;
            }
        }
    }

    /// Σ ln Γ(n + 1) over the main data and the Poisson auxiliary data: the part of −ln L that
    /// depends on the data alone, which a fit computes once.
    pub fn data_constant<T: Scalar>(&self, data: &[T]) -> T {
        let mut total = T::zero();
        for n in &data[..self.n_main] {
            total += (*n + 1.0).lgamma();
        }
        self.for_each_aux(|_, j, aux, constraint| {
            if constraint == Constraint::Poisson {
                total += (data[self.n_main + aux] + 1.0).lgamma();
            }
            let _ = j;
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
        let mut total = constant.unwrap_or_else(|| self.data_constant(data));
        for (nu, n) in s.nu.iter().zip(data) {
            total += *nu - xlogy(*n, *nu);
        }
        self.for_each_aux(|c, j, k, kind| {
            let theta = z[self.structure.constraints[c].params.start + j];
            let a = data[self.n_main + k];
            let w = s.width[k];
            total += match kind {
                Constraint::Poisson => {
                    let lambda = theta * w;
                    lambda - xlogy(a, lambda)
                }
                Constraint::Normal | Constraint::None => {
                    let u = (a - theta) / w;
                    u * u * 0.5 + w.ln() + HALF_LN_2PI
                }
            };
        });
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
            let _ = last;
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
        let n = self.n_main + self.n_aux;
        let last = self.last_offset();
        let mut e = vec![T::zero(); n];
        self.expected(&z[..last], s, &mut e);
        self.prepare(z, s, true, true);
        let w = &z[last..];
        g.iter_mut().for_each(|v| *v = T::zero());
        s.nu_bar.copy_from_slice(&w[..self.n_main]);
        self.rates_adjoint(z, s, g, true);
        self.constraints_adjoint(z, s, g, true, Func::Expected);
        let mut total = T::zero();
        for k in 0..n {
            total += w[k] * e[k];
            g[last + k] = e[k];
        }
        total
    }

    /// Propagates ν̄ (in the scratch) to θ and, when `all`, to the operands.
    fn rates_adjoint<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>, g: &mut [T], all: bool) {
        for sample in &self.samples {
            let mult = sample.multiplicative.clone();
            let m = mult.len();
            let nominal_off = self.offsets[sample.nominal];
            for b in 0..sample.bins {
                let slot = sample.slot + b;
                let nu_bar = s.nu_bar[sample.main + b];
                let (f, a) = (s.f[slot], s.a[slot]);
                let a_bar = nu_bar * f;
                let f_bar = nu_bar * a;
                // ∂F/∂κ_m = Π_{m' ≠ m} κ_m', from prefix and suffix products (no division, so
                // a factor at 0 — μ = 0 — is fine).
                s.prefix[0] = T::cst(1.0);
                for (k, i) in mult.clone().enumerate() {
                    s.prefix[k + 1] = s.prefix[k] * self.kappa_at(z, s, i, &self.instances[i], b);
                }
                s.suffix[m] = T::cst(1.0);
                for (k, i) in mult.clone().enumerate().rev() {
                    s.suffix[k] = s.suffix[k + 1] * self.kappa_at(z, s, i, &self.instances[i], b);
                }
                for (k, i) in mult.clone().enumerate() {
                    let inst = &self.instances[i];
                    let kappa_bar = f_bar * s.prefix[k] * s.suffix[k + 1];
                    match inst.ty {
                        ModifierType::ShapeFactor | ModifierType::ShapeSys | ModifierType::StatError => {
                            g[inst.param + b] += kappa_bar;
                        }
                        ModifierType::NormFactor | ModifierType::Lumi => g[inst.param] += kappa_bar,
                        ModifierType::NormSys => {
                            g[inst.param] += kappa_bar * s.dkappa[i];
                            if all {
                                g[self.offsets[inst.data[HI]]] += kappa_bar * s.dhi[i];
                                g[self.offsets[inst.data[LO]]] += kappa_bar * s.dlo[i];
                            }
                        }
                        ModifierType::HistoSys => {}
                    }
                }
                let mut nominal_coef = T::cst(1.0);
                for i in sample.additive.clone() {
                    let inst = &self.instances[i];
                    let (hi_off, lo_off) = (self.offsets[inst.data[HI]] + b, self.offsets[inst.data[LO]] + b);
                    let [dh, dl, dn] = s.dcoef[i];
                    g[inst.param] += a_bar * (dh * z[hi_off] + dl * z[lo_off] + dn * z[nominal_off + b]);
                    if all {
                        let [c_hi, c_lo, c_nom] = s.coef[i];
                        g[hi_off] += a_bar * c_hi;
                        g[lo_off] += a_bar * c_lo;
                        nominal_coef += c_nom;
                    }
                }
                if all {
                    g[nominal_off + b] += a_bar * nominal_coef;
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

    /// The value of `func` and its gradient with respect to all of z.
    pub fn gradient<T: Scalar>(&self, func: Func, z: &[T], s: &mut Scratch<T>, g: &mut [T]) -> T {
        match func {
            Func::Nll => self.nll(z, s, None, Some((g, true))),
            Func::Expected => self.expected_weighted(z, s, g),
        }
    }

    /// The Hessian of −ln L with respect to θ at z = [θ | operands | data], row-major into `h`
    /// (P·P values). [`Self::nll`] with a gradient must have run on the same z and scratch.
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
                    let c = |k: usize| second_order(z[inst.param], |x| histosys_coefficients(code.1, x)[k])[2];
                    [c(0), c(1), c(2)]
                }
                ModifierType::NormFactor
                | ModifierType::Lumi
                | ModifierType::ShapeFactor
                | ModifierType::ShapeSys
                | ModifierType::StatError => [0.0; 3],
            };
        }
        let channels = &self.structure.channels;
        let mut first_sample = 0;
        for channel in channels {
            let samples = &self.samples[first_sample..first_sample + channel.samples.len()];
            first_sample += channel.samples.len();
            let Some(main) = samples.first().map(|s| s.main) else { continue };
            for b in 0..channel.bins {
                let (nu, n) = (s.nu[main + b], data[main + b]);
                let r = if nu > 0.0 { 1.0 - n / nu } else { 1.0 };
                let w = if nu > 0.0 { n / (nu * nu) } else { 0.0 };
                work.touched.clear();
                for sample in samples {
                    self.sample_bin_derivatives(z, s, sample, b, r, h, work);
                }
                // (n/ν²) ∇ν ∇νᵀ over the parameters that touch this bin.
                if w != 0.0 {
                    for &i in &work.touched {
                        let gi = work.grad[i] * w;
                        for &j in &work.touched {
                            h[i * p + j] += gi * work.grad[j];
                        }
                    }
                }
                for &i in &work.touched {
                    work.grad[i] = 0.0;
                    work.seen[i] = false;
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

    /// One sample's contribution to bin b: its first derivatives go into the bin's gradient
    /// accumulator, its second derivatives times r = 1 − n/ν straight into the Hessian.
    #[allow(clippy::too_many_arguments)]
    fn sample_bin_derivatives(
        &self,
        z: &[f64],
        s: &Scratch<f64>,
        sample: &super::structure::SampleIndex,
        b: usize,
        r: f64,
        h: &mut [f64],
        work: &mut HessianWork,
    ) {
        let p = self.params();
        let slot = sample.slot + b;
        let (f, a) = (s.f[slot], s.a[slot]);
        let nominal = z[self.offsets[sample.nominal] + b];
        // Local derivatives: (parameter, ∂ν/∂θ, ∂²ν/∂θ² of this instance alone, other factors).
        work.local.clear();
        let mult = sample.multiplicative.clone();
        let m = mult.len();
        work.kappa.clear();
        for i in mult.clone() {
            let inst = &self.instances[i];
            let (q, kappa, d1) = if inst.ty.per_bin() {
                (inst.param + b, z[inst.param + b], 1.0)
            } else {
                (inst.param, s.kappa[i], s.dkappa[i])
            };
            work.kappa.push(kappa);
            work.local.push(Local { param: q, d1, d2: work.second[i][0] });
        }
        // Products of all factors but one (prefix·suffix), and but two (a running middle).
        work.prefix.clear();
        work.prefix.push(1.0);
        for k in 0..m {
            let v = work.prefix[k] * work.kappa[k];
            work.prefix.push(v);
        }
        work.suffix.clear();
        work.suffix.resize(m + 1, 1.0);
        for k in (0..m).rev() {
            work.suffix[k] = work.suffix[k + 1] * work.kappa[k];
        }
        let add = |q: usize, v: f64, work: &mut HessianWork| {
            if !work.seen[q] {
                work.seen[q] = true;
                work.touched.push(q);
            }
            work.grad[q] += v;
        };
        for k in 0..m {
            let others = work.prefix[k] * work.suffix[k + 1];
            let Local { param: q, d1, d2 } = work.local[k];
            add(q, a * d1 * others, work);
            // ∂²ν/∂θ_m² = A κ_m'' Π_{others}
            if d2 != 0.0 {
                h[q * p + q] += r * a * d2 * others;
            }
            let mut middle = 1.0;
            for l in k + 1..m {
                // ∂²ν/∂θ_m∂θ_l = A κ_m' κ_l' Π_{all but m, l}
                let v = r * a * d1 * work.local[l].d1 * work.prefix[k] * middle * work.suffix[l + 1];
                let ql = work.local[l].param;
                h[q * p + ql] += v;
                h[ql * p + q] += v;
                middle *= work.kappa[l];
            }
        }
        for i in sample.additive.clone() {
            let inst = &self.instances[i];
            let (hi, lo) = (z[self.offsets[inst.data[HI]] + b], z[self.offsets[inst.data[LO]] + b]);
            let [dh, dl, dn] = s.dcoef[i];
            let [sh, sl, sn] = work.second[i];
            let d1 = dh * hi + dl * lo + dn * nominal;
            let d2 = sh * hi + sl * lo + sn * nominal;
            let q = inst.param;
            add(q, f * d1, work);
            // ∂²ν/∂α² = F Δ''; ∂²ν/∂α∂θ_m = κ_m' Π_{others} Δ'.
            h[q * p + q] += r * f * d2;
            for k in 0..m {
                let v = r * work.local[k].d1 * work.prefix[k] * work.suffix[k + 1] * d1;
                let qm = work.local[k].param;
                h[q * p + qm] += v;
                h[qm * p + q] += v;
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Local {
    param: usize,
    d1: f64,
    d2: f64,
}

/// Buffers of the Hessian pass.
#[derive(Clone, Debug)]
pub struct HessianWork {
    second: Vec<[f64; 3]>,
    grad: Vec<f64>,
    seen: Vec<bool>,
    touched: Vec<usize>,
    local: Vec<Local>,
    kappa: Vec<f64>,
    prefix: Vec<f64>,
    suffix: Vec<f64>,
}

impl HessianWork {
    pub fn new(lik: &Likelihood) -> Self {
        HessianWork {
            second: vec![[0.0; 3]; lik.instances.len()],
            grad: vec![0.0; lik.params()],
            seen: vec![false; lik.params()],
            touched: Vec::new(),
            local: Vec::new(),
            kappa: Vec::new(),
            prefix: Vec::new(),
            suffix: Vec::new(),
        }
    }
}
