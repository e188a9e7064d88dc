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
//! - the Hessian with respect to θ in `f64` (`hessian.rs`), as
//!   Σ_b [(n_b/ν_b²) ∇ν_b ∇ν_bᵀ + (1 − n_b/ν_b) ∇²ν_b] plus the constraints' diagonal, where ∇ν_b
//!   and ∇²ν_b involve only the parameters that touch bin b — its cost is the Hessian's nonzeros.
//!
//! The second function of the same structure is the expected data E(θ) = [ν | aux
//! expectations: θ (Normal), γτ (Poisson)] (pyhf's `expected_data`); its adjoint is the
//! gradient of w·E over z = [θ | operands | w].

use super::interp::{histosys_coefficients, normsys};
use super::modifier::{Constraint, ModifierType, HI, LO};
use super::scalar::{Dual, Scalar};
use super::structure::{Likelihood, Source};

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
    pub(crate) kappa: Vec<T>,
    pub(crate) dkappa: Vec<T>,
    /// Per normsys instance: ∂κ/∂hi and ∂κ/∂lo.
    pub(crate) dhi: Vec<T>,
    pub(crate) dlo: Vec<T>,
    /// Per histosys instance: the coefficients of (hi, lo, nominal) and their α-derivatives.
    pub(crate) coef: Vec<[T; 3]>,
    pub(crate) dcoef: Vec<[T; 3]>,
    /// Per sample·bin slot: F and A.
    pub(crate) f: Vec<T>,
    pub(crate) a: Vec<T>,
    pub(crate) nu: Vec<T>,
    pub(crate) nu_bar: Vec<T>,
    /// Per bin of the sample at hand: the adjoints of F and A.
    pub(crate) f_bar: Vec<T>,
    pub(crate) a_bar: Vec<T>,
    /// Per auxiliary measurement: the constraint's σ (Normal) or τ (Poisson), and ln σ.
    pub(crate) width: Vec<T>,
    pub(crate) log_width: Vec<T>,
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

/// A staterror bin's constraint width from its templates, pyhf's σ = √(Σδ²)/Σ nominal over
/// the samples that carry it; none when either sum is not positive, where pyhf gives the bin
/// width 1 and holds its γ fixed.
pub fn staterror_width<T: Scalar>(sum_sq_delta: T, sum_nominal: T) -> Option<T> {
    (sum_sq_delta.re() > 0.0 && sum_nominal.re() > 0.0).then(|| sum_sq_delta.sqrt() / sum_nominal)
}

/// A shapesys bin's Poisson τ = (nominal/δ)² (pyhf's factor); none when either is not
/// positive, where pyhf gives the bin τ = 1 and holds its γ fixed.
pub fn shapesys_tau<T: Scalar>(nominal: T, delta: T) -> Option<T> {
    (nominal.re() > 0.0 && delta.re() > 0.0).then(|| {
        let r = nominal / delta;
        r * r
    })
}

/// ½ ln 2π, the Normal constraint's normalisation (the value `0.5 * (2π).ln()` rounds to).
pub(crate) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

impl Likelihood {
    fn operand<'z, T>(&self, z: &'z [T], k: usize) -> &'z [T] {
        &z[self.offsets[k]..self.offsets[k] + self.structure.operands[k]]
    }

    fn operand_len(&self, k: usize) -> usize {
        self.structure.operands[k]
    }

    /// The value of a multiplicative instance at bin b.
    #[inline]
    pub(crate) fn kappa_at<T: Scalar>(&self, z: &[T], kappa: &[T], i: usize, b: usize) -> T {
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
    pub(crate) fn others<T: Scalar>(
        &self,
        z: &[T],
        kappa: &[T],
        mult: &std::ops::Range<usize>,
        i: usize,
        b: usize,
        f: T,
    ) -> T {
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

    /// The forward pass: [`Self::prepare`] (with `derivs` and `templates` as there), then the
    /// rates and the constraints' widths. What [`Self::hessian`] reads after `derivs`.
    pub(crate) fn forward<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>, derivs: bool, templates: bool) {
        self.prepare(z, s, derivs, templates);
        self.rates(z, s);
        self.widths(z, s);
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
            for ((v, f), a) in nu.iter_mut().zip(&s.f[slot..slot + bins]).zip(&s.a[slot..slot + bins]) {
                *v += *f * *a;
            }
        }
    }

    /// Which parameters the fits may move given the templates in z: 1 for each, except 0 for
    /// the γ of a staterror or shapesys bin whose templates give no width (zero uncertainties,
    /// or no positive nominal), which pyhf holds fixed at 1. The model's layout fixes such bins
    /// when their templates are constants; templates computed at run time (the Monte Carlo
    /// uncertainty of a trained histogram, zero in an empty bin) are only known here.
    pub fn free(&self, z: &[f64], out: &mut [f64]) {
        out.iter_mut().for_each(|f| *f = 1.0);
        for c in self.structure.constraints.iter().filter(|c| c.widths.is_none() && !c.sources.is_empty()) {
            for (j, param) in c.params.clone().enumerate() {
                if self.template_width(z, c.ty.constraint(), &c.sources, j).is_none() {
                    out[param] = 0.0;
                }
            }
        }
    }

    /// Whether some constraint takes its widths from templates (so that [`Self::free`] can
    /// hold a parameter fixed).
    pub fn has_template_widths(&self) -> bool {
        self.structure.constraints.iter().any(|c| c.widths.is_none() && !c.sources.is_empty())
    }

    /// The width of bin j of a constraint from its templates (τ = (nominal/δ)² for shapesys,
    /// σ = √(Σδ²)/Σnominal over the staterror instances covering the bin); none where pyhf
    /// gives the bin no width.
    fn template_width(&self, z: &[f64], kind: Constraint, sources: &[Source], j: usize) -> Option<f64> {
        let covering = |src: &&Source| j >= src.offset && j < src.offset + self.operand_len(src.nominal);
        match kind {
            Constraint::Poisson => {
                let src = sources.first()?;
                shapesys_tau(z[self.offsets[src.nominal] + j], z[self.offsets[src.uncertainty] + j])
            }
            Constraint::Normal | Constraint::None => {
                let (mut sq, mut sum) = (0.0, 0.0);
                for src in sources.iter().filter(covering) {
                    let d = z[self.offsets[src.uncertainty] + j - src.offset];
                    sq += d * d;
                    sum += z[self.offsets[src.nominal] + j - src.offset];
                }
                staterror_width(sq, sum)
            }
        }
    }

    /// The constraints' widths: σ for Normal constraints (with ln σ), τ for Poisson ones;
    /// nothing when they are known to be current.
    ///
    /// From templates, pyhf's: σ_j = √(Σ δ²)/Σ nominal over the staterror instances covering
    /// bin j, τ_j = (nominal/δ)² for a shapesys. A bin whose templates give no positive width
    /// (zero uncertainties, or no positive nominal) gets width 1, as pyhf gives it, rather than
    /// a NaN; the model holds such a bin's parameter fixed when it can see the data.
    pub(crate) fn widths<T: Scalar>(&self, z: &[T], s: &mut Scratch<T>) {
        if s.widths_fixed {
            return;
        }
        let mut k0 = 0;
        for c in &self.structure.constraints {
            let n = c.params.len();
            let (width, log_width) = (&mut s.width[k0..k0 + n], &mut s.log_width[k0..k0 + n]);
            match (c.ty.constraint(), &c.widths) {
                (_, Some(fixed)) => width.iter_mut().zip(fixed).for_each(|(w, f)| *w = T::cst(*f)),
                (_, None) if c.sources.is_empty() => width.iter_mut().for_each(|w| *w = T::cst(1.0)),
                (Constraint::Poisson, None) => {
                    let src = c.sources[0];
                    let (nominal, delta) = (self.operand(z, src.nominal), self.operand(z, src.uncertainty));
                    for (j, w) in width.iter_mut().enumerate() {
                        *w = shapesys_tau(nominal[j], delta[j]).unwrap_or(T::cst(1.0));
                    }
                }
                (Constraint::Normal | Constraint::None, None) => {
                    // Σ δ² in `width` and Σ nominal in `log_width` first, then σ.
                    width.iter_mut().chain(log_width.iter_mut()).for_each(|v| *v = T::zero());
                    for src in &c.sources {
                        let (nominal, delta) = (self.operand(z, src.nominal), self.operand(z, src.uncertainty));
                        for (b, (nom, d)) in nominal.iter().zip(delta).enumerate() {
                            width[src.offset + b] += *d * *d;
                            log_width[src.offset + b] += *nom;
                        }
                    }
                    for (w, sum) in width.iter_mut().zip(log_width.iter()) {
                        *w = staterror_width(*w, *sum).unwrap_or(T::cst(1.0));
                    }
                }
            }
            if c.ty.constraint() == Constraint::Normal {
                for (lw, w) in log_width.iter_mut().zip(width.iter()) {
                    *lw = w.ln();
                }
            }
            k0 += n;
        }
    }

    /// The part of −ln L that depends on the data alone (`count_constant` of every main
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
        self.forward(z, s, grad.is_some(), all);
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
            for ((bar, n), nu) in s.nu_bar.iter_mut().zip(data).zip(&s.nu) {
                *bar = poisson_rate_adjoint(*n, *nu);
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
        self.forward(z, s, false, false);
        self.expected_from_scratch(z, s, out);
    }

    /// The expected data from a forward pass already in the scratch.
    fn expected_from_scratch<T: Scalar>(&self, z: &[T], s: &Scratch<T>, out: &mut [T]) {
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
        self.forward(z, s, true, true);
        self.expected_from_scratch(z, s, &mut g[last..]);
        let w = &z[last..];
        let mut total = T::zero();
        for (wk, ek) in w.iter().zip(&g[last..]) {
            total += *wk * *ek;
        }
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
                if all && c.widths.is_none() && !c.sources.is_empty() {
                    self.width_adjoint(z, c.ty.constraint(), &c.sources, j, w, width_bar, g);
                }
                k += 1;
            }
        }
    }

    /// Passes the adjoint of a width computed from templates on to them: τ = (nominal/δ)² for
    /// shapesys, σ = √(Σδ²)/Σnominal for staterror. A width that fell back to 1 depends on
    /// nothing.
    #[allow(clippy::too_many_arguments)]
    fn width_adjoint<T: Scalar>(
        &self,
        z: &[T],
        kind: Constraint,
        sources: &[Source],
        j: usize,
        width: T,
        width_bar: T,
        g: &mut [T],
    ) {
        let covering = |src: &&Source| j >= src.offset && j < src.offset + self.operand_len(src.nominal);
        match kind {
            Constraint::Poisson => {
                let Some(src) = sources.first() else { return };
                let (n_off, d_off) = (self.offsets[src.nominal] + j, self.offsets[src.uncertainty] + j);
                let (n, d) = (z[n_off], z[d_off]);
                if shapesys_tau(n, d).is_none() {
                    return;
                }
                // τ = n²/δ²: ∂τ/∂n = 2n/δ², ∂τ/∂δ = −2n²/δ³.
                g[n_off] += width_bar * n * 2.0 / (d * d);
                g[d_off] -= width_bar * n * n * 2.0 / (d * d * d);
            }
            Constraint::Normal | Constraint::None => {
                let (mut sq, mut sum) = (T::zero(), T::zero());
                for src in sources.iter().filter(covering) {
                    let d = z[self.offsets[src.uncertainty] + j - src.offset];
                    sq += d * d;
                    sum += z[self.offsets[src.nominal] + j - src.offset];
                }
                if staterror_width(sq, sum).is_none() {
                    return;
                }
                let root = sq.sqrt();
                // σ = R/N: ∂σ/∂δ = δ/(R·N), ∂σ/∂nominal = −σ/N.
                for src in sources.iter().filter(covering) {
                    let d_off = self.offsets[src.uncertainty] + j - src.offset;
                    g[d_off] += width_bar * z[d_off] / (root * sum);
                    g[self.offsets[src.nominal] + j - src.offset] -= width_bar * width / sum;
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
}
