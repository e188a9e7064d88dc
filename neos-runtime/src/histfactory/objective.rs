//! Profile-likelihood fits of a HistFactory model: −ln L as the solver's objective, with its
//! structured gradient and Hessian, the per-bin blocks for block elimination, and the
//! parameters along which the likelihood may have two minima.

use super::hessian::HessianWork;
use super::interp::{histosys_coefficients, normsys};
use super::likelihood::Scratch;
use super::modifier::{HistoSysCode, ModifierType, NormSysCode, HI, LO};
use super::scalar::Dual;
use super::structure::Likelihood;
use crate::fit::{minimize_planned, FitPlan, FitResult, Objective};

/// The buffers of likelihood evaluations in `f64`: the flat input, the gradient, the
/// scratch of the passes. Kept from call to call by an [`super::Engine`], so that fits
/// allocate nothing per evaluation.
#[derive(Clone, Debug)]
pub struct FitBuffers {
    /// [θ | operands | data]; θ is overwritten at each evaluation.
    pub(crate) z: Vec<f64>,
    pub(crate) grad: Vec<f64>,
    pub(crate) scratch: Scratch<f64>,
    pub(crate) work: HessianWork,
}

impl FitBuffers {
    pub fn new(lik: &Likelihood) -> Self {
        let n = lik.z_len(lik.n_main() + lik.n_aux());
        FitBuffers { z: vec![0.0; n], grad: vec![0.0; n], scratch: Scratch::new(lik), work: HessianWork::new(lik) }
    }

    /// Copies `parts` into z from index `at` on; returns where they end.
    pub(crate) fn load_at(&mut self, mut at: usize, parts: &[&[f64]]) -> usize {
        for part in parts {
            self.z[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        at
    }

    /// Writes the operands and the data into z after θ (which each evaluation overwrites),
    /// checking their lengths.
    fn load_fixed(&mut self, lik: &Likelihood, operands: &[&[f64]], data: &[f64]) -> Result<(), String> {
        lik.check_operands(operands)?;
        let n = lik.n_main() + lik.n_aux();
        if data.len() != n {
            return Err(format!(
                "expected {} main and {} auxiliary data, {n} values, found {}",
                lik.n_main(),
                lik.n_aux(),
                data.len()
            ));
        }
        let at = self.load_at(lik.params(), operands);
        self.load_at(at, &[data]);
        Ok(())
    }
}

/// −ln L(θ | operands, data) as a function of θ alone.
#[derive(Debug)]
pub struct NllObjective<'a> {
    lik: &'a Likelihood,
    buffers: &'a mut FitBuffers,
    constant: f64,
}

impl<'a> NllObjective<'a> {
    /// The objective for the given operands and data (main bins then auxiliary), evaluated in
    /// `buffers`.
    pub fn new(
        lik: &'a Likelihood,
        buffers: &'a mut FitBuffers,
        operands: &[&[f64]],
        data: &[f64],
    ) -> Result<Self, String> {
        buffers.load_fixed(lik, operands, data)?;
        let constant = lik.data_constant(data);
        // The histograms stay as they are during the fit, and so do the constraints' widths.
        buffers.scratch.widths_fixed = false;
        lik.widths(&buffers.z, &mut buffers.scratch);
        buffers.scratch.widths_fixed = true;
        Ok(NllObjective { lik, buffers, constant })
    }
}

impl Drop for NllObjective<'_> {
    /// The buffers go back to serving any histograms.
    fn drop(&mut self) {
        self.buffers.scratch.widths_fixed = false;
    }
}

impl Objective for NllObjective<'_> {
    fn dim(&self) -> usize {
        self.lik.params()
    }

    fn evaluate(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64]) -> Result<f64, String> {
        let p = self.lik.params();
        let b = &mut *self.buffers;
        b.z[..p].copy_from_slice(x);
        let v = self.lik.nll(&b.z, &mut b.scratch, Some(self.constant), Some((&mut b.grad, false)));
        grad.copy_from_slice(&b.grad[..p]);
        self.lik.hessian(&b.z, &b.scratch, hess, &mut b.work);
        Ok(v)
    }

    fn value(&mut self, x: &[f64]) -> Result<f64, String> {
        let p = self.lik.params();
        let b = &mut *self.buffers;
        b.z[..p].copy_from_slice(x);
        Ok(self.lik.nll(&b.z, &mut b.scratch, Some(self.constant), None))
    }

    fn blocks(&self) -> &[Vec<usize>] {
        self.lik.blocks()
    }

    fn multimodal(&mut self) -> Option<Vec<usize>> {
        Some(self.lik.multimodal(&self.buffers.z))
    }

    fn kinks(&mut self) -> Vec<(usize, f64)> {
        self.lik.kinks(&self.buffers.z)
    }
}

/// The values of α at which the slopes of interpolations are compared.
const SLOPE_GRID: [f64; 14] = [-3.0, -2.0, -1.5, -1.0, -0.75, -0.5, -0.2, 0.2, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0];

impl Likelihood {
    /// The operands' count and lengths, checked.
    pub fn check_operands(&self, operands: &[&[f64]]) -> Result<(), String> {
        let lens = self.operands();
        if operands.len() != lens.len() {
            return Err(format!("expected {} histogram operands, found {}", lens.len(), operands.len()));
        }
        for (k, (x, n)) in operands.iter().zip(lens).enumerate() {
            if x.len() != *n {
                return Err(format!("operand {k}: expected {n} values, found {}", x.len()));
            }
        }
        Ok(())
    }

    /// The parameters whose effect on some bin is not monotonic in the parameter, so that the
    /// likelihood may have a minimum on each side of a turning point: a histosys or normsys
    /// parameter for which ∂ν_b/∂α, summed over the samples of bin b with every other
    /// parameter at its nominal value, changes sign on a grid of α in [−3, 3] (up and down
    /// variations on the same side of the nominal, samples pushed in opposite directions, a
    /// strongly asymmetric polynomial). Every other parameter enters ν monotonically. `z` holds
    /// the operands.
    pub fn multimodal(&self, z: &[f64]) -> Vec<usize> {
        let code = (self.structure.normsys_code, self.structure.histosys_code);
        // Per (parameter, main bin) and instance: ∂ν_b/∂α at each grid point, and the size of
        // the terms; summed over the instances of one (parameter, bin) below.
        let mut slopes: Vec<((usize, usize), [f64; SLOPE_GRID.len()], f64)> = Vec::new();
        for sample in &self.samples {
            let nominal = &z[self.offsets[sample.nominal]..];
            for i in sample.multiplicative.clone().chain(sample.additive.clone()) {
                let inst = &self.instances[i];
                match inst.ty {
                    ModifierType::NormSys => {
                        let (hi, lo) = (z[self.offsets[inst.data[HI]]], z[self.offsets[inst.data[LO]]]);
                        let per_grid =
                            SLOPE_GRID.map(|alpha| normsys(code.0, Dual::var(alpha), Dual::lift(hi), Dual::lift(lo)).b);
                        for (b, &n) in nominal[..sample.bins].iter().enumerate() {
                            slopes.push(((inst.param, sample.main + b), per_grid.map(|s| s * n), n.abs()));
                        }
                    }
                    ModifierType::HistoSys => {
                        let per_grid =
                            SLOPE_GRID.map(|alpha| histosys_coefficients(code.1, Dual::var(alpha)).map(|d| d.b));
                        let (hi, lo) = (&z[self.offsets[inst.data[HI]]..], &z[self.offsets[inst.data[LO]]..]);
                        for b in 0..sample.bins {
                            let slope = per_grid.map(|[dh, dl, dn]| dh * hi[b] + dl * lo[b] + dn * nominal[b]);
                            slopes.push((
                                (inst.param, sample.main + b),
                                slope,
                                hi[b].abs() + lo[b].abs() + nominal[b].abs(),
                            ));
                        }
                    }
                    ModifierType::NormFactor
                    | ModifierType::Lumi
                    | ModifierType::ShapeFactor
                    | ModifierType::ShapeSys
                    | ModifierType::StatError => {}
                }
            }
        }
        slopes.sort_by_key(|(key, _, _)| *key);
        let mut merged: Vec<((usize, usize), [f64; SLOPE_GRID.len()], f64)> = Vec::with_capacity(slopes.len());
        for (key, s, scale) in slopes {
            match merged.last_mut() {
                Some((k, acc, total)) if *k == key => {
                    acc.iter_mut().zip(s).for_each(|(a, v)| *a += v);
                    *total += scale;
                }
                _ => merged.push((key, s, scale)),
            }
        }
        let mut out: Vec<usize> = merged
            .into_iter()
            .filter(|(_, s, scale)| {
                let tiny = 1e-12 * scale;
                s.iter().any(|v| *v > tiny) && s.iter().any(|v| *v < -tiny)
            })
            .map(|((q, _), _, _)| q)
            .collect();
        out.dedup();
        out
    }
}

impl Likelihood {
    /// The parameters at whose α = 0 the likelihood has a kink: histosys parameters under
    /// code 0 whose up and down slopes differ in some bin (α·(hi − nom) above 0, α·(nom − lo)
    /// below), and normsys parameters under code 1 whose factors are not reciprocal
    /// (hi^α above 0, lo^−α below, slopes ln hi and −ln lo). The other codes have none: 4p and
    /// 4 are smooth, and code 2 keeps its slope at ±1, where only its curvature jumps.
    pub fn kinks(&self, z: &[f64]) -> Vec<(usize, f64)> {
        let code = (self.structure.normsys_code, self.structure.histosys_code);
        let mut out: Vec<(usize, f64)> = Vec::new();
        for sample in &self.samples {
            let nominal = &z[self.offsets[sample.nominal]..self.offsets[sample.nominal] + sample.bins];
            for i in sample.multiplicative.clone().chain(sample.additive.clone()) {
                let inst = &self.instances[i];
                let kinked = match (inst.ty, code) {
                    (ModifierType::HistoSys, (_, HistoSysCode::Code0)) => {
                        let (hi, lo) = (&z[self.offsets[inst.data[HI]]..], &z[self.offsets[inst.data[LO]]..]);
                        nominal.iter().enumerate().any(|(b, n)| {
                            let (up, down) = (hi[b] - n, n - lo[b]);
                            (up - down).abs() > 1e-12 * (up.abs() + down.abs())
                        })
                    }
                    (ModifierType::NormSys, (NormSysCode::Code1, _)) => {
                        let (hi, lo) = (z[self.offsets[inst.data[HI]]], z[self.offsets[inst.data[LO]]]);
                        (hi.ln() + lo.ln()).abs() > 1e-12
                    }
                    (
                        ModifierType::HistoSys
                        | ModifierType::NormSys
                        | ModifierType::NormFactor
                        | ModifierType::Lumi
                        | ModifierType::ShapeFactor
                        | ModifierType::ShapeSys
                        | ModifierType::StatError,
                        _,
                    ) => false,
                };
                if kinked && !out.iter().any(|(q, _)| *q == inst.param) {
                    out.push((inst.param, 0.0));
                }
            }
        }
        out
    }
}

/// Minimises −ln L over θ from `init` with the plan's bounds, fixed parameters and restarts,
/// evaluating in `buffers`.
pub fn fit(
    lik: &Likelihood,
    buffers: &mut FitBuffers,
    init: &[f64],
    operands: &[&[f64]],
    data: &[f64],
    plan: &FitPlan,
) -> Result<FitResult, String> {
    // Bins whose templates give no width are held at 1, as pyhf holds them; templates known
    // only at run time are checked here.
    lik.check_operands(operands)?;
    if init.len() != lik.params() || plan.options.fixed.len() != lik.params() {
        return Err(format!(
            "expected {} initial values and fixed flags, found {} and {}",
            lik.params(),
            init.len(),
            plan.options.fixed.len()
        ));
    }
    let mut free = vec![1.0; lik.params()];
    if lik.has_template_widths() {
        let z: Vec<f64> = init.iter().chain(operands.iter().flat_map(|o| o.iter())).copied().collect();
        lik.free(&z, &mut free);
    }
    let widthless: Vec<usize> = (0..free.len()).filter(|&k| free[k] == 0.0 && !plan.options.fixed[k]).collect();
    let mut objective = NllObjective::new(lik, buffers, operands, data)?;
    if widthless.is_empty() {
        return minimize_planned(&mut objective, init, plan);
    }
    let mut plan = plan.clone();
    let mut start = init.to_vec();
    for k in widthless {
        plan.options.fixed[k] = true;
        start[k] = 1.0;
        if let Some(v) = plan.also_from.as_mut().and_then(|also| also.get_mut(k)) {
            *v = 1.0;
        }
    }
    minimize_planned(&mut objective, &start, &plan)
}
