//! Profile-likelihood fits of a HistFactory model: −ln L as the solver's objective, with its
//! structured gradient and Hessian, the per-bin blocks for block elimination, and the
//! parameters along which the likelihood may have two minima.

use super::interp::{histosys_coefficients, normsys};
use super::likelihood::{HessianWork, Scratch};
use super::modifier::{ModifierType, HI, LO};
use super::scalar::Dual;
use super::structure::Likelihood;
use crate::fit::{minimize_planned, FitPlan, FitResult, Objective};

/// −ln L(θ | operands, data) as a function of θ alone.
#[derive(Debug)]
pub struct NllObjective<'a> {
    lik: &'a Likelihood,
    /// [θ | operands | data]; θ is overwritten at each evaluation.
    z: Vec<f64>,
    constant: f64,
    scratch: Scratch<f64>,
    work: HessianWork,
    grad: Vec<f64>,
}

impl<'a> NllObjective<'a> {
    /// The objective for the given operands and data (main bins then auxiliary).
    pub fn new(lik: &'a Likelihood, operands: &[&[f64]], data: &[f64]) -> Result<Self, String> {
        let mut z = vec![0.0; lik.params()];
        lik.check_operands(operands)?;
        for x in operands {
            z.extend_from_slice(x);
        }
        let n = lik.n_main() + lik.n_aux();
        if data.len() != n {
            return Err(format!(
                "expected {} main and {} auxiliary data, {n} values, found {}",
                lik.n_main(),
                lik.n_aux(),
                data.len()
            ));
        }
        z.extend_from_slice(data);
        let constant = lik.data_constant(data);
        Ok(NllObjective {
            lik,
            grad: vec![0.0; z.len()],
            z,
            constant,
            scratch: Scratch::new(lik),
            work: HessianWork::new(lik),
        })
    }
}

impl Objective for NllObjective<'_> {
    fn dim(&self) -> usize {
        self.lik.params()
    }

    fn evaluate(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64]) -> Result<f64, String> {
        let p = self.lik.params();
        self.z[..p].copy_from_slice(x);
        let v = self.lik.nll(&self.z, &mut self.scratch, Some(self.constant), Some((&mut self.grad, false)));
        grad.copy_from_slice(&self.grad[..p]);
        self.lik.hessian(&self.z, &self.scratch, hess, &mut self.work);
        Ok(v)
    }

    fn value(&mut self, x: &[f64]) -> Result<f64, String> {
        let p = self.lik.params();
        self.z[..p].copy_from_slice(x);
        Ok(self.lik.nll(&self.z, &mut self.scratch, Some(self.constant), None))
    }

    fn blocks(&self) -> &[Vec<usize>] {
        self.lik.blocks()
    }

    fn multimodal(&mut self) -> Option<Vec<usize>> {
        Some(self.lik.multimodal(&self.z))
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
        // Per (parameter, main bin): ∂ν_b/∂α at each grid point, and the size of the terms.
        let mut slopes: std::collections::BTreeMap<(usize, usize), ([f64; SLOPE_GRID.len()], f64)> = Default::default();
        for sample in &self.samples {
            let nominal = &z[self.offsets[sample.nominal]..];
            for i in sample.multiplicative.clone().chain(sample.additive.clone()) {
                let inst = &self.instances[i];
                let per_grid: [f64; SLOPE_GRID.len()] = match inst.ty {
                    ModifierType::NormSys => {
                        let (hi, lo) = (z[self.offsets[inst.data[HI]]], z[self.offsets[inst.data[LO]]]);
                        SLOPE_GRID.map(|alpha| normsys(code.0, Dual::var(alpha), Dual::lift(hi), Dual::lift(lo)).b)
                    }
                    ModifierType::HistoSys => [0.0; SLOPE_GRID.len()],
                    ModifierType::NormFactor
                    | ModifierType::Lumi
                    | ModifierType::ShapeFactor
                    | ModifierType::ShapeSys
                    | ModifierType::StatError => continue,
                };
                for b in 0..sample.bins {
                    let entry = slopes.entry((inst.param, sample.main + b)).or_insert(([0.0; SLOPE_GRID.len()], 0.0));
                    if inst.ty == ModifierType::HistoSys {
                        let (hi, lo) = (z[self.offsets[inst.data[HI]] + b], z[self.offsets[inst.data[LO]] + b]);
                        for (k, alpha) in SLOPE_GRID.iter().enumerate() {
                            let [dh, dl, dn] = histosys_coefficients(code.1, Dual::var(*alpha)).map(|d| d.b);
                            entry.0[k] += dh * hi + dl * lo + dn * nominal[b];
                        }
                        entry.1 += hi.abs() + lo.abs() + nominal[b].abs();
                    } else {
                        for (k, slope) in per_grid.iter().enumerate() {
                            entry.0[k] += slope * nominal[b];
                        }
                        entry.1 += nominal[b].abs();
                    }
                }
            }
        }
        let mut out: Vec<usize> = slopes
            .into_iter()
            .filter(|(_, (s, scale))| {
                let tiny = 1e-12 * scale;
                s.iter().any(|v| *v > tiny) && s.iter().any(|v| *v < -tiny)
            })
            .map(|((q, _), _)| q)
            .collect();
        out.dedup();
        out
    }
}

/// Minimises −ln L over θ from `init` with the plan's bounds, fixed parameters and restarts.
pub fn fit(
    lik: &Likelihood,
    init: &[f64],
    operands: &[&[f64]],
    data: &[f64],
    plan: &FitPlan,
) -> Result<FitResult, String> {
    let mut objective = NllObjective::new(lik, operands, data)?;
    minimize_planned(&mut objective, init, plan)
}
