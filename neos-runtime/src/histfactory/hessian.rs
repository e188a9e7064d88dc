//! The Hessian of −ln L with respect to θ, from the model's structure: its cost is the number
//! of (parameter pair, bin) entries that are nonzero, never a pass per parameter.

use super::interp::{histosys_coefficients, normsys};
use super::likelihood::Scratch;
use super::modifier::{Constraint, ModifierType, HI, LO};
use super::scalar::{second_order, Dual, Scalar};
use super::structure::{Likelihood, SampleIndex};

impl Likelihood {
    /// The Hessian of −ln L with respect to θ at z = [θ | operands | data], row-major into `h`
    /// (P·P values). A forward pass with derivatives must have run on the same z and scratch
    /// (`forward(z, s, true, _)`, as [`Self::nll`] with a gradient does).
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
        sample: &SampleIndex,
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
            for (b, &fb) in f.iter().enumerate() {
                let e = self.others(z, &s.kappa, &mult, i, b, fb);
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
                    for (b, e) in ek.iter().enumerate() {
                        add_pair(h, p, q, param(j, b), work.r[b] * dk * e * work.delta[b]);
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
