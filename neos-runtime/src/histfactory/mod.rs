//! HistFactory likelihoods from their structure (pyhf's semantics), for the interpreter and
//! for generated code alike.
//!
//! A model is a [`Likelihood`]: which samples a channel has, which modifiers act on them,
//! which parameters and data they use, and the constraints ([`Structure`], checked). The
//! histograms are operands passed at each call. From it, in time proportional to the number of
//! (bin, modifier) entries: the negative log-likelihood and its gradient with respect to the
//! parameters, the histograms and the data; the Hessian with respect to the parameters (cost:
//! its nonzeros); directional derivatives of the gradient of any order up to three ([`jet`]);
//! the expected data; and the profile-likelihood fit ([`fit`]), whose Newton steps eliminate
//! the per-bin γ blocks first and whose restarts visit the other side of every parameter that
//! can make the likelihood bimodal.
//!
//! [`Engine::evaluate`] is the single entry point of the IR's HistFactory nodes ([`Node`]);
//! an engine keeps its buffers from call to call, so that generated code allocates nothing
//! per evaluation.

mod hessian;
mod interp;
mod jet;
mod likelihood;
mod modifier;
mod objective;
mod scalar;
mod structure;

pub use hessian::HessianWork;
pub use interp::{histosys_coefficients, normsys};
pub use jet::{hessian_vjp, jet, JetBuffers, Jets, MAX_ORDER};
pub use likelihood::{shapesys_tau, staterror_width, Func, Scratch};
pub use modifier::{
    ConfigKey, Constraint, Effect, Field, FieldShape, HistoSysCode, ModifierType, NormSysCode, Sharing, HI, LO,
};
pub use objective::{fit, FitBuffers, NllObjective};
pub use scalar::{second_order, Dual, Scalar};
pub use structure::{ChannelDesc, ConstraintDesc, Instance, Likelihood, SampleDesc, Source, Structure};

use std::sync::Arc;

use crate::fit::FitPlan;

/// What a HistFactory node of the IR computes, with m the number of histogram operands and
/// z = [θ | operands | last] the flat input (last: the data for the likelihood, the weights for
/// the expected data):
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// −ln L: inputs θ, the operands, the data (main then auxiliary); a scalar.
    Nll,
    /// The expected data E(θ) (pyhf's `expected_data`): inputs θ and the operands;
    /// main bins then auxiliary expectations.
    Expected,
    /// ∇_z ∂_{t₁}⋯∂_{t_k} f(z) for f = −ln L or w·E: inputs the parts of z then `order`
    /// directions t (each as long as z); a vector as long as z.
    Jet { func: Func, order: usize },
    /// ∇²_θ(−ln L): inputs as for `Nll`; P×P, row-major.
    Hessian,
    /// The adjoint of `Hessian`: inputs as for `Nll` then H̄ (P×P); a vector as long as z.
    HessianVjp,
    /// argmin_θ −ln L: inputs the initial values (holding the fixed parameters' values), the
    /// operands and the data; the P fitted parameters.
    Fit(FitPlan),
    /// Which parameters the templates leave free (1) or hold fixed (0, a staterror or shapesys
    /// bin without width; see [`Likelihood::free`]): inputs as for `Nll`; P values. Piecewise
    /// constant in its inputs, so its derivative is zero.
    Free,
}

impl Node {
    /// A short name, printed in graphs.
    pub fn name(&self) -> String {
        match self {
            Node::Nll => "hf_nll".into(),
            Node::Expected => "hf_expected".into(),
            Node::Jet { func: Func::Nll, order } => format!("hf_nll_jet{order}"),
            Node::Jet { func: Func::Expected, order } => format!("hf_expected_jet{order}"),
            Node::Hessian => "hf_hessian".into(),
            Node::HessianVjp => "hf_hessian_vjp".into(),
            Node::Fit(_) => "hf_fit".into(),
            Node::Free => "hf_free".into(),
        }
    }

    /// The length of input `k` of the node, for a model of `p` parameters, `data` data values
    /// and flat inputs z of length `z`; `None` past its last input.
    fn input_len(&self, lik: &Likelihood, k: usize) -> Option<usize> {
        let (p, ops) = (lik.params(), lik.operands());
        let data = lik.n_main() + lik.n_aux();
        let m = ops.len();
        let extra = match self {
            Node::Nll | Node::Hessian | Node::Fit(_) | Node::Free => 0,
            Node::Expected => return (k <= m).then(|| if k == 0 { p } else { ops[k - 1] }),
            Node::Jet { order, .. } => *order,
            Node::HessianVjp => 1,
        };
        match k {
            0 => Some(p),
            k if k <= m => Some(ops[k - 1]),
            k if k == m + 1 => Some(data),
            k if k < m + 2 + extra => Some(match self {
                Node::HessianVjp => p * p,
                Node::Nll | Node::Hessian | Node::Fit(_) | Node::Free | Node::Expected | Node::Jet { .. } => {
                    lik.z_len(data)
                }
            }),
            _ => None,
        }
    }

    /// The number of inputs and the length of the output.
    fn arity_and_output(&self, lik: &Likelihood) -> (usize, usize) {
        let (p, m) = (lik.params(), lik.operands().len());
        let data = lik.n_main() + lik.n_aux();
        match self {
            Node::Nll => (m + 2, 1),
            Node::Expected => (m + 1, data),
            Node::Jet { order, .. } => (m + 2 + order, lik.z_len(data)),
            Node::Hessian => (m + 2, p * p),
            Node::HessianVjp => (m + 3, lik.z_len(data)),
            Node::Fit(_) | Node::Free => (m + 2, p),
        }
    }

    /// The lengths of the node's inputs and of its output.
    pub fn shapes(&self, lik: &Likelihood) -> (Vec<usize>, usize) {
        let (n, out) = self.arity_and_output(lik);
        ((0..n).filter_map(|k| self.input_len(lik, k)).collect(), out)
    }
}

/// A likelihood with the buffers its evaluations reuse: generated code keeps one per model.
#[derive(Clone, Debug)]
pub struct Engine {
    lik: Arc<Likelihood>,
    fit: FitBuffers,
    jets: Jets,
}

impl Engine {
    pub fn new(lik: Arc<Likelihood>) -> Self {
        Engine { fit: FitBuffers::new(&lik), jets: Jets::default(), lik }
    }

    /// An engine for a model encoded by [`Likelihood::encode`].
    pub fn decode(ints: &[usize], floats: &[f64]) -> Result<Self, String> {
        Ok(Engine::new(Arc::new(Likelihood::decode(ints, floats)?)))
    }

    pub fn likelihood(&self) -> &Likelihood {
        &self.lik
    }

    /// Copies the inputs that make up z into the engine's buffer; returns its length.
    fn load(&mut self, parts: &[&[f64]]) -> usize {
        self.fit.load_at(0, parts)
    }

    /// Computes `node` from its inputs into `out`, checking every length; a NaN in the result
    /// is an error that says which node gave it.
    pub fn evaluate(&mut self, node: &Node, inputs: &[&[f64]], out: &mut [f64]) -> Result<(), String> {
        let lik = &*self.lik;
        let (arity, out_len) = node.arity_and_output(lik);
        if inputs.len() != arity {
            return Err(format!("{}: expected {arity} inputs, found {}", node.name(), inputs.len()));
        }
        for (k, x) in inputs.iter().enumerate() {
            let n = node.input_len(lik, k).unwrap_or(0);
            if x.len() != n {
                return Err(format!("{}: input {k}: expected {n} values, found {}", node.name(), x.len()));
            }
        }
        if out.len() != out_len {
            return Err(format!("{}: expected an output of {out_len} values, found {}", node.name(), out.len()));
        }
        let m = lik.operands().len();
        match node {
            Node::Nll => {
                let n = self.load(inputs);
                let f = &mut self.fit;
                out[0] = self.lik.nll(&f.z[..n], &mut f.scratch, None, None);
            }
            Node::Expected => {
                let n = self.load(inputs);
                self.lik.expected(&self.fit.z[..n], &mut self.fit.scratch, out);
            }
            Node::Jet { func, .. } => {
                let n = self.load(&inputs[..m + 2]);
                self.jets.jet(&self.lik, *func, &self.fit.z[..n], &inputs[m + 2..], out)?;
            }
            Node::Hessian => {
                let n = self.load(inputs);
                let f = &mut self.fit;
                self.lik.forward(&f.z[..n], &mut f.scratch, true, false);
                self.lik.hessian(&f.z[..n], &f.scratch, out, &mut f.work);
            }
            Node::HessianVjp => {
                let n = self.load(&inputs[..m + 2]);
                hessian_vjp(&self.lik, &mut self.jets, &self.fit.z[..n], inputs[m + 2], out)?;
            }
            Node::Fit(plan) => {
                let r = fit(&self.lik, &mut self.fit, inputs[0], &inputs[1..m + 1], inputs[m + 1], plan)?;
                out.copy_from_slice(&r.x);
            }
            Node::Free => {
                let n = self.load(inputs);
                self.lik.free(&self.fit.z[..n], out);
            }
        }
        if let Some(i) = out.iter().position(|v| v.is_nan()) {
            return Err(format!(
                "{}: expected finite results, found NaN at index {i} (the inputs give no valid likelihood there)",
                node.name()
            ));
        }
        Ok(())
    }
}

/// Computes `node` of `lik` from its inputs into `out` with buffers of its own (see
/// [`Engine::evaluate`]).
pub fn evaluate(lik: &Arc<Likelihood>, node: &Node, inputs: &[&[f64]], out: &mut [f64]) -> Result<(), String> {
    Engine::new(lik.clone()).evaluate(node, inputs, out)
}
