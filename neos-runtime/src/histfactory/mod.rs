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
//! [`evaluate`] is the single entry point of the IR's HistFactory nodes ([`Node`]).

mod interp;
mod jet;
mod likelihood;
mod modifier;
mod objective;
mod scalar;
mod structure;

pub use interp::{histosys_coefficients, normsys};
pub use jet::{hessian_vjp, jet, MAX_ORDER};
pub use likelihood::{Func, HessianWork, Scratch};
pub use modifier::{Constraint, Effect, Field, FieldShape, HistoSysCode, ModifierType, NormSysCode, HI, LO};
pub use objective::{fit, NllObjective};
pub use scalar::{second_order, Dual, Scalar};
pub use structure::{ChannelDesc, ConstraintDesc, Instance, Likelihood, SampleDesc, Structure};

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
        }
    }

    /// The lengths of the node's inputs and of its output.
    pub fn shapes(&self, lik: &Likelihood) -> (Vec<usize>, usize) {
        let p = lik.params();
        let mut inputs = vec![p];
        inputs.extend_from_slice(lik.operands());
        let data = lik.n_main() + lik.n_aux();
        match self {
            Node::Nll => {
                inputs.push(data);
                (inputs, 1)
            }
            Node::Expected => (inputs, data),
            Node::Jet { order, .. } => {
                inputs.push(data);
                let z = lik.z_len(data);
                inputs.extend(std::iter::repeat_n(z, *order));
                (inputs, z)
            }
            Node::Hessian => {
                inputs.push(data);
                (inputs, p * p)
            }
            Node::HessianVjp => {
                inputs.push(data);
                inputs.push(p * p);
                (inputs, lik.z_len(data))
            }
            Node::Fit(_) => {
                inputs.push(data);
                (inputs, p)
            }
        }
    }
}

/// Computes `node` of `lik` from its inputs into `out`, checking every length.
pub fn evaluate(lik: &Likelihood, node: &Node, inputs: &[&[f64]], out: &mut [f64]) -> Result<(), String> {
    let (lens, out_len) = node.shapes(lik);
    if inputs.len() != lens.len() {
        return Err(format!("{}: expected {} inputs, found {}", node.name(), lens.len(), inputs.len()));
    }
    for (k, (x, n)) in inputs.iter().zip(&lens).enumerate() {
        if x.len() != *n {
            return Err(format!("{}: input {k}: expected {n} values, found {}", node.name(), x.len()));
        }
    }
    if out.len() != out_len {
        return Err(format!("{}: expected an output of {out_len} values, found {}", node.name(), out.len()));
    }
    let m = lik.operands().len();
    let z = |parts: &[&[f64]]| -> Vec<f64> { parts.iter().flat_map(|x| x.iter().copied()).collect() };
    match node {
        Node::Nll => {
            let z = z(&inputs[..m + 2]);
            out[0] = lik.nll(&z, &mut Scratch::new(lik), None, None);
        }
        Node::Expected => lik.expected(&z(inputs), &mut Scratch::new(lik), out),
        Node::Jet { func, .. } => jet(lik, *func, &z(&inputs[..m + 2]), &inputs[m + 2..], out)?,
        Node::Hessian => {
            let z = z(inputs);
            let mut scratch = Scratch::new(lik);
            let mut grad = vec![0.0; z.len()];
            lik.nll(&z, &mut scratch, None, Some((&mut grad, false)));
            lik.hessian(&z, &scratch, out, &mut HessianWork::new(lik));
        }
        Node::HessianVjp => hessian_vjp(lik, &z(&inputs[..m + 2]), inputs[m + 2], out)?,
        Node::Fit(plan) => {
            let r = fit(lik, inputs[0], &inputs[1..m + 1], inputs[m + 1], plan)?;
            out.copy_from_slice(&r.x);
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
