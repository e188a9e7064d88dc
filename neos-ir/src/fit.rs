//! The profile-likelihood fit as a graph node, and a linear solve.
//!
//! `fit` minimises a scalar objective f(θ; x) over θ within bounds, with some parameters
//! optionally fixed, given operands x (yields, data). Its forward pass is the runtime's
//! projected Newton solver, run on the objective's own gradient and Hessian graphs. Its
//! derivative is the implicit function theorem: at the optimum ∇_θ f(θ̂, x) = 0 on the free
//! coordinates that are not at a bound, so for an adjoint v̄ of θ̂,
//! solve H w = v̄ on that block (w = 0 elsewhere) and x̄ = −∂/∂x [w · ∇_θ f(θ̂, x)].
//! Fixed coordinates and coordinates at an active bound get zero sensitivity.
//!
//! The rule is built from graph nodes — the objective's Hessian and mixed derivatives are
//! inlined at θ̂ — so it can be differentiated again and simplified like anything else.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ndarray::{Array1, ArrayD, ArrayViewD, IxDyn};
use neos_runtime::{minimize_planned, FitOptions, FitPlan, FitResult, Objective};

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::autodiff::{grad_in, hessian};
use crate::builder::{Builder, Tensor};
use crate::codegen::{self, CustomCall, Emitter, Entry};
use crate::error::{IrError, Result};
use crate::eval::{eval, Bindings};
use crate::graph::{Graph, NodeId};
use crate::op::{CustomOp, CustomRule, Op};
use crate::types::{DType, Shape, TensorType};

/// Bounds, fixed parameters and budgets of a fit.
#[derive(Clone, Debug, PartialEq)]
pub struct FitConfig {
    pub bounds: Vec<(f64, f64)>,
    pub fixed: Vec<bool>,
    /// Convergence: every component of the projected gradient of the objective at most this.
    pub tolerance: f64,
    pub max_iterations: usize,
    /// Also start from the initial values moved by ±1 in each free parameter (clipped to the
    /// bounds) and keep the lowest minimum. Likelihoods with a histosys whose variations lie on
    /// the same side of the nominal have a cusp at α = 0 and can have two minima; one start
    /// can stop in the wrong one. It costs 2 fits per free parameter, so it is off by default
    /// and the inference functions turn it on for small models.
    pub restarts: bool,
    /// Whether a fit that does not converge is an error (the default). When false, the lowest
    /// point reached is returned, and the caller checks convergence itself.
    pub require_convergence: bool,
    /// A second start beside the given one (its free parameters; the fixed ones keep the given
    /// start's values), for warm-started fits: the lower minimum of both is kept.
    pub also_from: Option<Vec<f64>>,
}

impl FitConfig {
    pub fn new(bounds: Vec<(f64, f64)>) -> Self {
        let n = bounds.len();
        FitConfig {
            bounds,
            fixed: vec![false; n],
            tolerance: 1e-9,
            max_iterations: 200,
            restarts: false,
            require_convergence: true,
            also_from: None,
        }
    }
}

impl FitConfig {
    /// Checks that the configuration is for `p` parameters with ordered bounds, saying what
    /// was expected and what was found.
    pub(crate) fn check(&self, p: usize) -> std::result::Result<(), String> {
        if self.bounds.len() != p || self.fixed.len() != p {
            return Err(format!(
                "fit: expected {p} bounds and fixed flags, found {} and {}",
                self.bounds.len(),
                self.fixed.len()
            ));
        }
        if let Some(start) = self.also_from.as_ref().filter(|s| s.len() != p) {
            return Err(format!("fit: expected a second start of {p} values, found {}", start.len()));
        }
        if let Some((lo, hi)) = self.bounds.iter().find(|(lo, hi)| !(lo <= hi)) {
            return Err(format!("fit: expected bounds with low ≤ high, found [{lo}, {hi}]"));
        }
        Ok(())
    }

    /// The runtime's description of this fit: its options, restarts and convergence policy.
    pub(crate) fn plan(&self) -> FitPlan {
        FitPlan {
            options: FitOptions {
                bounds: self.bounds.clone(),
                fixed: self.fixed.clone(),
                tolerance: self.tolerance,
                max_iterations: self.max_iterations,
            },
            restarts: self.restarts,
            require_convergence: self.require_convergence,
            also_from: self.also_from.clone(),
        }
    }
}

/// A fit node's rule: the objective graph with its derivatives, and the configuration.
struct Fit {
    /// Leaves: param `theta` [P], inputs `x0`, `x1`, … (the operands after the initial
    /// values) and input `w` [P]; outputs `value`, `grad`, `hess` and `cross0`, `cross1`, …
    /// (∂/∂xⱼ of w·∇_θ f).
    graph: Graph,
    /// The value, gradient and Hessian nodes of `graph`.
    ids: [NodeId; 3],
    operands: Vec<TensorType>,
    config: FitConfig,
}

impl fmt::Debug for Fit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fit({} parameters, {} operands)", self.config.bounds.len(), self.operands.len())
    }
}

fn fit_error(message: String) -> IrError {
    IrError::Autodiff { message }
}

/// Adds a fit of `objective` to `b`: the minimiser θ̂ (shape \[P\]), starting from `init` \[P\]
/// (which also holds the values of fixed parameters). `objective` builds the scalar f(θ; x)
/// on a separate builder from θ and tensors standing for `operands`.
pub fn fit<'b>(
    b: &'b Builder,
    init: Tensor<'b>,
    operands: &[Tensor<'b>],
    config: FitConfig,
    objective: impl for<'s> FnOnce(&'s Builder, Tensor<'s>, &[Tensor<'s>]) -> Result<Tensor<'s>>,
) -> Result<Tensor<'b>> {
    let p = config.bounds.len();
    if init.shape() != Shape::fixed(&[p]) {
        return Err(fit_error(format!(
            "fit: expected initial values of shape [{p}] like the bounds, found {}",
            init.shape()
        )));
    }
    config.check(p).map_err(fit_error)?;
    let sub = Builder::new();
    let theta = sub.param("theta", DType::F64, [p]);
    let xs: Vec<Tensor<'_>> =
        operands.iter().enumerate().map(|(j, x)| sub.input(&format!("x{j}"), x.dtype(), x.shape())).collect();
    let value = objective(&sub, theta, &xs)?;
    if value.shape() != Shape::scalar() {
        return Err(fit_error(format!("fit: expected a scalar objective, found {}", value.ty())));
    }
    let g = grad_in(&sub, value, &[theta])?[0];
    let w = sub.input("w", DType::F64, [p]);
    let crosses = grad_in(&sub, (w * g).sum_all(), &xs)?;
    sub.output("value", value);
    sub.output("grad", g);
    for (j, c) in crosses.iter().enumerate() {
        sub.output(&format!("cross{j}"), *c);
    }
    let (value_id, theta_id, grad_id) = (value.id(), theta.id(), g.id());
    let mut graph = sub.finish()?;
    let hess_id = hessian(&mut graph, value_id, theta_id)?;
    graph.set_output("hess", hess_id)?;
    let rule =
        Fit { graph, ids: [value_id, grad_id, hess_id], operands: operands.iter().map(|x| x.ty()).collect(), config };
    let mut all = vec![init];
    all.extend_from_slice(operands);
    Ok(b.custom(CustomOp(Arc::new(rule)), &all))
}

/// The objective, its gradient and Hessian, evaluated by the interpreter.
struct Interpreted<'a> {
    fit: &'a Fit,
    bindings: Bindings,
}

impl Objective for Interpreted<'_> {
    fn dim(&self) -> usize {
        self.fit.config.bounds.len()
    }

    fn evaluate(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64]) -> std::result::Result<f64, String> {
        self.bindings.set("theta", Array1::from(x.to_vec()).into_dyn());
        let v = eval(&self.fit.graph, &self.bindings, &self.fit.ids).map_err(|e| e.to_string())?;
        for (dst, src) in grad.iter_mut().zip(v[1].iter()) {
            *dst = *src;
        }
        for (dst, src) in hess.iter_mut().zip(v[2].iter()) {
            *dst = *src;
        }
        Ok(v[0].iter().next().copied().unwrap_or(f64::NAN))
    }

    fn value(&mut self, x: &[f64]) -> std::result::Result<f64, String> {
        self.bindings.set("theta", Array1::from(x.to_vec()).into_dyn());
        let v = eval(&self.fit.graph, &self.bindings, &self.fit.ids[..1]).map_err(|e| e.to_string())?;
        Ok(v[0].iter().next().copied().unwrap_or(f64::NAN))
    }
}

impl Fit {
    fn solve(&self, init: &[f64], operands: &[ArrayViewD<'_, f64>]) -> std::result::Result<FitResult, String> {
        let mut bindings = Bindings::new();
        for (j, x) in operands.iter().enumerate() {
            bindings.set(&format!("x{j}"), x.to_owned());
        }
        let mut objective = Interpreted { fit: self, bindings };
        minimize_planned(&mut objective, init, &self.plan())
    }

    fn plan(&self) -> FitPlan {
        self.config.plan()
    }
}

impl CustomRule for Fit {
    fn name(&self) -> &str {
        "fit"
    }

    fn infer(&self, inputs: &[&TensorType]) -> std::result::Result<TensorType, String> {
        let p = self.config.bounds.len();
        let expected: Vec<TensorType> =
            std::iter::once(TensorType::new(DType::F64, [p])).chain(self.operands.iter().cloned()).collect();
        if inputs.len() != expected.len() || inputs.iter().zip(&expected).any(|(a, b)| *a != b) {
            let found: Vec<String> = inputs.iter().map(|t| t.to_string()).collect();
            let wanted: Vec<String> = expected.iter().map(|t| t.to_string()).collect();
            return Err(format!("expected operands {}, found {}", wanted.join(", "), found.join(", ")));
        }
        Ok(TensorType::new(DType::F64, [p]))
    }

    fn eval(&self, inputs: &[ArrayViewD<'_, f64>], _: &TensorType) -> std::result::Result<ArrayD<f64>, String> {
        let init: Vec<f64> = inputs[0].iter().copied().collect();
        let r = self.solve(&init, &inputs[1..])?;
        Ok(Array1::from(r.x).into_dyn())
    }

    fn vjp<'b>(
        &self,
        b: &'b Builder,
        inputs: &[Tensor<'b>],
        output: Tensor<'b>,
        adjoint: Tensor<'b>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<'b>>>> {
        let mut leaves: HashMap<String, Tensor<'b>> = HashMap::new();
        leaves.insert("theta".into(), output);
        for (j, x) in inputs[1..].iter().enumerate() {
            leaves.insert(format!("x{j}"), *x);
        }
        let h = inline(b, &self.graph, "hess", &leaves)?;
        let w = implicit_adjoint(b, output, adjoint, h, &self.config.bounds, &self.config.fixed, None);
        leaves.insert("w".into(), w);
        let mut out = vec![None];
        for (j, need) in needs.iter().enumerate().skip(1) {
            out.push(if *need { Some(-inline(b, &self.graph, &format!("cross{}", j - 1), &leaves)?) } else { None });
        }
        Ok(out)
    }

    /// The fit's objective becomes a nested program with two entry points (the value alone
    /// for line searches; value, gradient and Hessian for Newton steps), specialised to the
    /// parameter count, and the runtime's solver runs on it with this fit's bounds, fixed
    /// parameters, restarts and convergence policy.
    fn emit(&self, em: &mut Emitter, call: &CustomCall) -> std::result::Result<TokenStream, String> {
        let rt = codegen::runtime();
        let entries = [Entry::new("value", &["value"]), Entry::new("vgh", &["value", "grad", "hess"])];
        let inner = codegen::emit(&self.graph, &entries).map_err(|e| e.to_string())?;
        let m = em.fresh("fit");
        let p = self.config.bounds.len();
        em.item(quote! {
            /// A profile-likelihood fit's objective, with its gradient and Hessian.
            #[allow(dead_code)]
            mod #m {
                #inner

                /// The objective as the runtime's solver calls it.
                pub struct Objective<'p, 'a> {
                    pub program: &'p mut Program,
                    pub params: &'p mut Params,
                    pub inputs: Inputs<'a>,
                }

                impl #rt::Objective for Objective<'_, '_> {
                    fn dim(&self) -> usize {
                        #p
                    }

                    fn evaluate(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64])
                        -> ::std::result::Result<f64, ::std::string::String>
                    {
                        self.params.theta.copy_from_slice(x);
                        let out = self.program.vgh(self.params, &self.inputs, &Knobs::default()).map_err(|e| e.to_string())?;
                        grad.copy_from_slice(&out.grad);
                        hess.copy_from_slice(&out.hess);
                        ::std::result::Result::Ok(out.value[0])
                    }

                    fn value(&mut self, x: &[f64]) -> ::std::result::Result<f64, ::std::string::String> {
                        self.params.theta.copy_from_slice(x);
                        let out = self.program.value(self.params, &self.inputs, &Knobs::default()).map_err(|e| e.to_string())?;
                        ::std::result::Result::Ok(out.value[0])
                    }
                }
            }
        });
        let plan_init = plan_tokens(&self.config.plan());
        let program = em.field("fit_program", quote!(#m::Program), quote!(#m::Program::new()));
        let params = em.field("fit_params", quote!(#m::Params), quote!(#m::Params::zeros()));
        let plan = em.field("fit_plan", quote!(#rt::FitPlan), plan_init);
        let init = &call.args[0];
        let operands: Vec<TokenStream> = call.args[1..]
            .iter()
            .enumerate()
            .map(|(j, a)| {
                let x = format_ident!("x{}", j);
                quote!(#x: #a)
            })
            .collect();
        let out = &call.out;
        Ok(quote! {
            let inputs = #m::Inputs { #(#operands,)* w: &[] };
            let mut objective = #m::Objective { program: &mut self.#program, params: &mut self.#params, inputs };
            let fitted = #rt::minimize_planned(&mut objective, #init, &self.#plan)
                .map_err(|e| #rt::RunError::new("fit", e))?;
            #out.copy_from_slice(&fitted.x);
        })
    }
}

/// The adjoint w of the objective's gradient at a fit's optimum θ̂, given the adjoint of θ̂:
/// H w = v̄ on the free coordinates strictly inside their bounds, w = 0 on the others (fixed,
/// or held at a bound, or 0 in `free`, a run-time mask of parameters the fit held), which get
/// no sensitivity. The adjoint of an operand x is then
/// −∂/∂x [w · ∇_θ f(θ̂, x)].
pub(crate) fn implicit_adjoint<'b>(
    b: &'b Builder,
    theta_hat: Tensor<'b>,
    adjoint: Tensor<'b>,
    h: Tensor<'b>,
    bounds: &[(f64, f64)],
    fixed: &[bool],
    free: Option<Tensor<'b>>,
) -> Tensor<'b> {
    let p = bounds.len();
    let vector = |v: Vec<f64>| b.constant(Array1::from(v).into_dyn(), DType::F64);
    let lo = vector(bounds.iter().map(|b| b.0).collect());
    let hi = vector(bounds.iter().map(|b| b.1).collect());
    let free_flags = vector(fixed.iter().map(|&f| if f { 0.0 } else { 1.0 }).collect());
    let mut mask = free_flags * theta_hat.gt(lo) * theta_hat.lt(hi);
    if let Some(free) = free {
        mask = mask * free;
    }
    // Ĥ = M H M + (I − M): the Hessian on the free interior block, identity elsewhere.
    let identity =
        b.constant(ArrayD::from_shape_fn(IxDyn(&[p, p]), |i| if i[0] == i[1] { 1.0 } else { 0.0 }), DType::F64);
    let (col, row) = (mask.reshape([p, 1]), mask.reshape([1, p]));
    let h_block = h * (col * row) + identity * (1.0 - row);
    solve(b, h_block, mask * adjoint)
}

/// A fit plan as generated code that builds it.
pub(crate) fn plan_tokens(plan: &FitPlan) -> TokenStream {
    let rt = codegen::runtime();
    let o = &plan.options;
    let bounds: Vec<TokenStream> = o
        .bounds
        .iter()
        .map(|(lo, hi)| {
            let (lo, hi) = (codegen::lit(*lo, DType::F64), codegen::lit(*hi, DType::F64));
            quote!((#lo, #hi))
        })
        .collect();
    let fixed = &o.fixed;
    let (tolerance, max_iterations) = (codegen::lit(o.tolerance, DType::F64), o.max_iterations);
    let (restarts, require) = (plan.restarts, plan.require_convergence);
    let also_from = match &plan.also_from {
        Some(start) => {
            let values = start.iter().map(|v| codegen::lit(*v, DType::F64));
            quote!(::std::option::Option::Some(::std::vec![#(#values),*]))
        }
        None => quote!(::std::option::Option::None),
    };
    quote! {
        #rt::FitPlan {
            options: #rt::FitOptions {
                bounds: ::std::vec![#(#bounds),*],
                fixed: ::std::vec![#(#fixed),*],
                tolerance: #tolerance,
                max_iterations: #max_iterations,
            },
            restarts: #restarts,
            require_convergence: #require,
            also_from: #also_from,
        }
    }
}

/// Copies the nodes that output `name` of `sub` depends on into `b`, with its leaves replaced
/// by the given tensors (knobs not given take their defaults).
pub fn inline<'b>(b: &'b Builder, sub: &Graph, name: &str, leaves: &HashMap<String, Tensor<'b>>) -> Result<Tensor<'b>> {
    let root = sub.output(name).ok_or_else(|| fit_error(format!("inline: expected an output `{name}`, found none")))?;
    let mut map: HashMap<NodeId, Tensor<'b>> = HashMap::new();
    for id in sub.topo_order(&[root]) {
        let node = sub.node(id);
        let t = match &node.op {
            Op::Input { name } | Op::Param { name } => *leaves
                .get(name)
                .ok_or_else(|| fit_error(format!("inline: expected a tensor for leaf `{name}`, found none")))?,
            Op::Knob { name, default } => {
                leaves.get(name).copied().unwrap_or_else(|| b.scalar(*default, node.ty.dtype))
            }
            Op::Const { value } => b.constant((**value).clone(), node.ty.dtype),
            op => {
                let xs: Vec<Tensor<'b>> = node.inputs.iter().map(|i| map[i]).collect();
                b.apply(op.clone(), &xs)
            }
        };
        map.insert(id, t);
    }
    Ok(map[&root])
}

/// x = A⁻¹ b for a square A [n, n] and b [n].
#[derive(Debug)]
struct Solve;

impl CustomRule for Solve {
    fn name(&self) -> &str {
        "solve"
    }

    fn infer(&self, inputs: &[&TensorType]) -> std::result::Result<TensorType, String> {
        match inputs {
            [a, v]
                if a.dtype == v.dtype
                    && a.shape.rank() == 2
                    && a.shape.0[0] == a.shape.0[1]
                    && v.shape.0 == vec![a.shape.0[0]]
                    && a.shape.0[0].fixed().is_some() =>
            {
                Ok((*v).clone())
            }
            _ => {
                let found: Vec<String> = inputs.iter().map(|t| t.to_string()).collect();
                Err(format!(
                    "expected a square matrix [n, n] and a vector [n] of one dtype, found {}",
                    found.join(" and ")
                ))
            }
        }
    }

    fn eval(&self, inputs: &[ArrayViewD<'_, f64>], _: &TensorType) -> std::result::Result<ArrayD<f64>, String> {
        let n = inputs[1].len();
        let a: Vec<f64> = inputs[0].iter().copied().collect();
        let v: Vec<f64> = inputs[1].iter().copied().collect();
        let x = neos_runtime::solve(&a, n, &v).map_err(|e| e.to_string())?;
        Ok(Array1::from(x).into_dyn())
    }

    /// x = A⁻¹v: v̄ = A⁻ᵀ x̄ and Ā = −v̄ xᵀ.
    fn vjp<'b>(
        &self,
        b: &'b Builder,
        inputs: &[Tensor<'b>],
        output: Tensor<'b>,
        adjoint: Tensor<'b>,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor<'b>>>> {
        let n = output.shape().0[0];
        let v_bar = solve(b, inputs[0].t(), adjoint);
        let a_bar = -(v_bar.reshape(Shape::new([n, crate::types::Dim::Fixed(1)]))
            * output.reshape(Shape::new([crate::types::Dim::Fixed(1), n])));
        Ok(vec![Some(a_bar), Some(v_bar)])
    }

    fn emit(&self, _: &mut Emitter, call: &CustomCall) -> std::result::Result<TokenStream, String> {
        let rt = codegen::runtime();
        let f = match call.out_type.dtype {
            DType::F64 => quote!(solve_f64),
            DType::F32 => quote!(solve_f32),
        };
        let (a, v, out) = (&call.args[0], &call.args[1], &call.out);
        Ok(quote!(#rt::exec::#f(#a, #v, #out)?;))
    }
}

/// x = A⁻¹ v as a graph node (Cholesky when A is symmetric positive definite, else LU).
pub fn solve<'b>(b: &'b Builder, a: Tensor<'b>, v: Tensor<'b>) -> Tensor<'b> {
    b.custom(CustomOp(Arc::new(Solve)), &[a, v])
}
