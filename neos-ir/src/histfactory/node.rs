//! The HistFactory likelihood as a family of IR nodes with their own derivative rules, so that
//! a model of any size is a handful of nodes rather than a graph per parameter.
//!
//! With z = [θ | histograms | last] the flat input and f = −ln L (last = data) or w·E (last =
//! the weights of the expected data), each node's vector–Jacobian product is another node of
//! the family (`neos_runtime::histfactory::Node`):
//!
//! | node | value | adjoint of the inputs, for an output adjoint ū |
//! | --- | --- | --- |
//! | `hf_nll` | −ln L | ū · jet₀ |
//! | `hf_expected` | E(θ) | jet₀ of ū·E |
//! | `hf_*_jet`k (z; t₁…t_k) | ∇_z ∂_{t₁}⋯∂_{t_k} f | z̄ = jet_{k+1}(z; t…, ū); t̄ᵢ = jet_k(z; t₋ᵢ, ū) |
//! | `hf_hessian` | ∇²_θ(−ln L) | `hf_hessian_vjp`(z, H̄) = Σ H̄ᵢⱼ ∇_z ∂²f/∂θᵢ∂θⱼ |
//! | `hf_fit` | argmin_θ −ln L | the implicit function theorem: w = H⁻¹(masked θ̂ adjoint), x̄ = −jet₁(z; [w, 0])ₓ |
//! | `hf_free` | 1 per parameter the templates leave free, 0 per bin without width | none (piecewise constant) |
//!
//! Generated code keeps one `neos_runtime::histfactory::Engine` per model (decoded once, with
//! buffers reused from call to call) and calls its `evaluate`.

use std::borrow::Cow;
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use neos_runtime::histfactory::{Func, Likelihood, Node, MAX_ORDER};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::builder::{Builder, Tensor};
use crate::codegen::{self, CustomCall, Emitter};
use crate::error::{IrError, Result};
use crate::fit::{implicit_adjoint, plan_tokens};
use crate::op::{CustomOp, CustomRule};
use crate::types::{DType, TensorType};

/// One node of the family: the model, the types of its histogram operands and what it computes.
#[derive(Debug)]
pub(crate) struct HfNode {
    lik: Arc<Likelihood>,
    operand_types: Arc<[TensorType]>,
    node: Node,
    name: String,
}

impl HfNode {
    /// Adds `node` of the model to `b`.
    pub(crate) fn apply<'b>(
        b: &'b Builder,
        lik: &Arc<Likelihood>,
        operand_types: &Arc<[TensorType]>,
        node: Node,
        inputs: &[Tensor<'b>],
    ) -> Tensor<'b> {
        let rule = HfNode { lik: lik.clone(), operand_types: operand_types.clone(), name: node.name(), node };
        b.custom(CustomOp(Arc::new(rule)), inputs)
    }

    fn derived<'b>(&self, b: &'b Builder, node: Node, inputs: &[Tensor<'b>]) -> Tensor<'b> {
        Self::apply(b, &self.lik, &self.operand_types, node, inputs)
    }

    fn data_len(&self) -> usize {
        self.lik.n_main() + self.lik.n_aux()
    }

    /// The input types this node takes and the type it returns. The runtime owns the layout
    /// (each input's length, [`Node::shapes`]); the graph adds the shapes: the operands' own,
    /// the Hessian as [P, P] and the likelihood's value as a scalar.
    fn signature(&self) -> (Vec<TensorType>, TensorType) {
        let p = self.lik.params();
        let square = TensorType::new(DType::F64, [p, p]);
        let vector = |n: usize| TensorType::new(DType::F64, [n]);
        let (lengths, output) = self.node.shapes(&self.lik);
        let m = self.operand_types.len();
        let inputs = lengths
            .iter()
            .enumerate()
            .map(|(k, &n)| match k {
                k if (1..=m).contains(&k) => self.operand_types[k - 1].clone(),
                k if k == m + 2 && self.node == Node::HessianVjp => square.clone(),
                _ => vector(n),
            })
            .collect();
        let output = match &self.node {
            Node::Nll => TensorType::scalar(DType::F64),
            Node::Hessian => square,
            Node::Expected | Node::Jet { .. } | Node::HessianVjp | Node::Fit(_) | Node::Free => vector(output),
        };
        (inputs, output)
    }

    /// Splits a flat adjoint over z = [θ | operands | last] into one adjoint per input of
    /// `parts`, reshaped like it; `take` says which to compute (the others are `None`).
    fn split<'b>(&self, g: Tensor<'b>, parts: &[Tensor<'b>], take: &[bool]) -> Vec<Option<Tensor<'b>>> {
        let mut offset = 0;
        parts
            .iter()
            .zip(take.iter().copied().chain(std::iter::repeat(false)))
            .map(|(part, take)| {
                let n = part.shape().fixed_numel();
                let piece = take.then(|| g.slice(0, offset..offset + n).reshape(part.shape()));
                offset += n;
                piece
            })
            .collect()
    }
}

fn hf_error(message: String) -> IrError {
    IrError::Autodiff { message }
}

impl CustomRule for HfNode {
    fn name(&self) -> &str {
        &self.name
    }

    fn infer(&self, inputs: &[&TensorType]) -> std::result::Result<TensorType, String> {
        let (expected, output) = self.signature();
        if inputs.len() != expected.len() || inputs.iter().zip(&expected).any(|(a, b)| *a != b) {
            let found: Vec<String> = inputs.iter().map(|t| t.to_string()).collect();
            let wanted: Vec<String> = expected.iter().map(|t| t.to_string()).collect();
            return Err(format!("expected operands {}, found {}", wanted.join(", "), found.join(", ")));
        }
        Ok(output)
    }

    fn eval(&self, inputs: &[ArrayViewD<'_, f64>], output: &TensorType) -> std::result::Result<ArrayD<f64>, String> {
        let slices: Vec<Cow<'_, [f64]>> = inputs
            .iter()
            .map(|v| match v.as_slice() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(v.iter().copied().collect()),
            })
            .collect();
        let refs: Vec<&[f64]> = slices.iter().map(|s| s.as_ref()).collect();
        let dims: Vec<usize> = output.shape.dims().iter().map(|d| d.fixed().unwrap_or(0)).collect();
        let mut out = vec![0.0; dims.iter().product()];
        neos_runtime::histfactory::evaluate(&self.lik, &self.node, &refs, &mut out)?;
        ArrayD::from_shape_vec(IxDyn(&dims), out).map_err(|e| e.to_string())
    }

    fn vjp<'b>(
        &self,
        b: &'b Builder,
        inputs: &[Tensor<'b>],
        output: Tensor<'b>,
        adjoint: Tensor<'b>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<'b>>>> {
        let m = self.operand_types.len();
        // The parts of z: θ, the operands and the data (the expected data's node has no data).
        let z = &inputs[..(m + 2).min(inputs.len())];
        let with = |extra: &[Tensor<'b>]| -> Vec<Tensor<'b>> { inputs.iter().chain(extra).copied().collect() };
        match &self.node {
            Node::Nll => {
                let g = self.derived(b, Node::Jet { func: Func::Nll, order: 0 }, z);
                Ok(self.split(g * adjoint, z, needs))
            }
            Node::Expected => {
                let g = self.derived(b, Node::Jet { func: Func::Expected, order: 0 }, &with(&[adjoint]));
                Ok(self.split(g, inputs, needs))
            }
            Node::Jet { func, order } => {
                let (func, order) = (*func, *order);
                let mut out = vec![None; inputs.len()];
                if needs[..m + 2].iter().any(|n| *n) {
                    if order + 1 > MAX_ORDER {
                        return Err(hf_error(format!(
                            "expected derivatives of the HistFactory likelihood up to order {}, found a request for order {}",
                            MAX_ORDER + 1,
                            order + 2
                        )));
                    }
                    let g = self.derived(b, Node::Jet { func, order: order + 1 }, &with(&[adjoint]));
                    for (slot, piece) in out.iter_mut().zip(self.split(g, z, needs)) {
                        *slot = piece;
                    }
                }
                // The directions enter multilinearly: t̄ᵢ = jet_k with tᵢ replaced by ū.
                for i in 0..order {
                    if needs[m + 2 + i] {
                        let mut args = z.to_vec();
                        args.extend(inputs[m + 2..].iter().enumerate().filter(|(j, _)| *j != i).map(|(_, t)| *t));
                        args.push(adjoint);
                        out[m + 2 + i] = Some(self.derived(b, Node::Jet { func, order }, &args));
                    }
                }
                Ok(out)
            }
            Node::Hessian => {
                let g = self.derived(b, Node::HessianVjp, &with(&[adjoint]));
                Ok(self.split(g, z, needs))
            }
            Node::HessianVjp => Err(hf_error(
                "expected derivatives of the HistFactory likelihood's Hessian to first order, found a request for its second (the fourth derivative of the likelihood)".into(),
            )),
            Node::Fit(plan) => {
                let p = self.lik.params();
                let mut parts = vec![output];
                parts.extend_from_slice(&inputs[1..]);
                let h = self.derived(b, Node::Hessian, &parts);
                // Bins without width, held fixed by the fit, get no sensitivity either (only
                // models whose widths come from templates can have such bins).
                let free = self.lik.has_template_widths().then(|| self.derived(b, Node::Free, &parts));
                let w = implicit_adjoint(b, output, adjoint, h, &plan.options.bounds, &plan.options.fixed, free);
                let rest = self.lik.z_len(self.data_len()) - p;
                let zeros = b.constant(ArrayD::zeros(IxDyn(&[rest])), DType::F64);
                let t = b.concat(&[w, zeros], 0);
                parts.push(t);
                let cross = self.derived(b, Node::Jet { func: Func::Nll, order: 1 }, &parts);
                let mut out = self.split(-cross, &parts[..m + 2], needs);
                out[0] = None;
                Ok(out)
            }
            Node::Free => Ok(vec![None; inputs.len()]),
        }
    }

    fn emit(&self, em: &mut Emitter, call: &CustomCall) -> std::result::Result<TokenStream, String> {
        let rt = codegen::runtime();
        let (ints, floats) = self.lik.encode();
        let ints = ints.into_iter().map(Literal::usize_unsuffixed);
        let floats = floats.into_iter().map(|v| codegen::lit(v, DType::F64));
        let engine = em.shared_field(
            &format!("hf_model_{:p}", Arc::as_ptr(&self.lik)),
            "hf_model",
            quote!(::std::result::Result<#rt::histfactory::Engine, ::std::string::String>),
            quote!(#rt::histfactory::Engine::decode(&[#(#ints),*], &[#(#floats),*])),
        );
        let node = match &self.node {
            Node::Nll => quote!(#rt::histfactory::Node::Nll),
            Node::Expected => quote!(#rt::histfactory::Node::Expected),
            Node::Jet { func, order } => {
                let func = match func {
                    Func::Nll => quote!(#rt::histfactory::Func::Nll),
                    Func::Expected => quote!(#rt::histfactory::Func::Expected),
                };
                quote!(#rt::histfactory::Node::Jet { func: #func, order: #order })
            }
            Node::Hessian => quote!(#rt::histfactory::Node::Hessian),
            Node::HessianVjp => quote!(#rt::histfactory::Node::HessianVjp),
            Node::Free => quote!(#rt::histfactory::Node::Free),
            Node::Fit(plan) => {
                let plan = plan_tokens(plan);
                let field = em.shared_field(
                    &format!("hf_fit_{:p}", self as *const Self),
                    "hf_fit",
                    quote!(#rt::histfactory::Node),
                    quote!(#rt::histfactory::Node::Fit(#plan)),
                );
                quote!(self.#field)
            }
        };
        let (args, out) = (&call.args, &call.out);
        Ok(quote! {
            self.#engine
                .as_mut()
                .map_err(|e| #rt::RunError::new("histfactory", e.clone()))?
                .evaluate(&#node, &[#(#args),*], #out)
                .map_err(|e| #rt::RunError::new("histfactory", e))?;
        })
    }
}
