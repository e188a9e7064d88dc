//! Numerical checks of symbolic derivatives: central finite differences through the
//! interpreter, element by element.

use std::fmt;

use crate::autodiff::grad;
use crate::error::{IrError, Result};
use crate::eval::{eval, Bindings};
use crate::graph::{Graph, NodeId};
use crate::op::Op;

/// Step and tolerances of a gradient check. An entry passes when
/// |symbolic − numeric| ≤ atol + rtol·max(|symbolic|, |numeric|).
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    pub eps: f64,
    pub rtol: f64,
    pub atol: f64,
}

impl Default for GradCheck {
    /// Central differences in `f64` with a step of 1e−6 have a truncation error of order
    /// eps² · f‴ and a rounding error of order 1e−16/eps ≈ 1e−10, hence these tolerances.
    fn default() -> Self {
        GradCheck { eps: 1e-6, rtol: 1e-6, atol: 1e-8 }
    }
}

/// One gradient entry that disagreed with its finite difference.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub leaf: String,
    pub index: usize,
    pub symbolic: f64,
    pub numeric: f64,
}

/// What a gradient check compared and what disagreed.
#[derive(Clone, Debug, Default)]
pub struct GradReport {
    pub checked: usize,
    pub mismatches: Vec<Mismatch>,
}

impl GradReport {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

impl fmt::Display for GradReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} entries checked, {} mismatched", self.checked, self.mismatches.len())?;
        for m in self.mismatches.iter().take(10) {
            write!(f, "\n  d/d{}[{}]: symbolic {:e}, finite difference {:e}", m.leaf, m.index, m.symbolic, m.numeric)?;
        }
        Ok(())
    }
}

/// Compares the symbolic gradient of the scalar `output` with respect to the named leaves
/// (inputs, params or knobs) with central finite differences at the bound values.
pub fn gradcheck(
    graph: &Graph,
    output: NodeId,
    wrt: &[&str],
    bindings: &Bindings,
    opts: GradCheck,
) -> Result<GradReport> {
    let mut g = graph.clone();
    let leaves: Vec<NodeId> = wrt
        .iter()
        .map(|name| {
            g.find_leaf(name)
                .ok_or_else(|| IrError::Name { message: format!("expected a leaf named `{name}`, found none") })
        })
        .collect::<Result<_>>()?;
    let grads = grad(&mut g, output, &leaves)?;
    let symbolic = eval(&g, bindings, &grads)?;
    let mut bindings = bindings.clone();
    let mut report = GradReport::default();
    for ((name, &leaf), sym) in wrt.iter().zip(&leaves).zip(&symbolic) {
        if bindings.get(name).is_none() {
            // A knob that is not bound takes its default; bind it so it can be perturbed.
            if let Op::Knob { default, .. } = graph.node(leaf).op {
                bindings.set(name, ndarray::arr0(default).into_dyn());
            }
        }
        let n = bindings.get(name).map(|v| v.len()).unwrap_or(0);
        let dtype = graph.ty(leaf).dtype;
        for k in 0..n {
            let original = flat(&mut bindings, name, k, None);
            // An f32 leaf rounds the perturbed values, so divide by the step actually taken.
            let (hi, lo) = (dtype.round(original + opts.eps), dtype.round(original - opts.eps));
            flat(&mut bindings, name, k, Some(hi));
            let up = eval(graph, &bindings, &[output])?[0].sum();
            flat(&mut bindings, name, k, Some(lo));
            let down = eval(graph, &bindings, &[output])?[0].sum();
            flat(&mut bindings, name, k, Some(original));
            let numeric = (up - down) / (hi - lo);
            let symbolic = sym.iter().nth(k).copied().unwrap_or(f64::NAN);
            report.checked += 1;
            let ok = (symbolic - numeric).abs() <= opts.atol + opts.rtol * symbolic.abs().max(numeric.abs());
            if !ok {
                report.mismatches.push(Mismatch { leaf: name.to_string(), index: k, symbolic, numeric });
            }
        }
    }
    Ok(report)
}

/// Reads element `k` (row-major) of a bound value, and writes `new` there if given.
fn flat(bindings: &mut Bindings, name: &str, k: usize, new: Option<f64>) -> f64 {
    let Some(value) = bindings.get_mut(name) else { return f64::NAN };
    let Some(slot) = value.iter_mut().nth(k) else { return f64::NAN };
    let old = *slot;
    if let Some(v) = new {
        *slot = v;
    }
    old
}
