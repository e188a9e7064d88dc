//! Symbolic reverse-mode differentiation. Gradients are *new nodes of the same graph*, so the
//! result can be differentiated again (Hessians, Hessian-vector products) and simplified and
//! compiled like any other graph.
//!
//! The rules are one exhaustive match over [`Op`], without a wildcard arm: an operation added
//! to the IR does not compile until its derivative is written here. Each rule's maths is in the
//! comment beside it; `g` is the adjoint of the output `y`, and the rule returns the adjoint of
//! each operand.

use std::collections::HashMap;

use crate::builder::{Builder, Tensor};
use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, Op, UnaryOp};
use crate::types::{Dim, Shape};

/// Adds to `graph` the gradient of the scalar `output` with respect to each of `wrt` (leaves or
/// intermediate nodes), and returns the gradient nodes. Only nodes on a path from `wrt` to
/// `output` are differentiated; a `wrt` that `output` does not depend on gets zeros.
pub fn grad(graph: &mut Graph, output: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>> {
    check_ids(graph, &[output], wrt)?;
    let b = Builder::from_graph(graph.clone());
    let out = b.tensor(output);
    let wrt_t: Vec<Tensor<'_>> = wrt.iter().map(|&w| b.tensor(w)).collect();
    let grads = grad_in(&b, out, &wrt_t)?;
    let ids = grads.iter().map(|t| t.id()).collect();
    *graph = b.finish()?;
    Ok(ids)
}

/// [`grad`] inside a [`Builder`], for rules and custom operations that need derivatives.
///
/// Every path from `wrt` to `output` is differentiated. Identical computations, constants
/// included, are one node, so a value that other operands were also computed from (an Asimov
/// dataset made at the same parameter point, say) is differentiated through them too; to take
/// derivatives of an objective alone at such a point, build the objective on a builder of its
/// own, as [`crate::fit`] does.
pub fn grad_in<'b>(b: &'b Builder, output: Tensor<'b>, wrt: &[Tensor<'b>]) -> Result<Vec<Tensor<'b>>> {
    if let Some(e) = b.first_error() {
        return Err(IrError::Autodiff {
            message: format!("expected a graph without errors to differentiate, found: {e}"),
        });
    }
    if !output.shape().is_scalar() {
        return Err(IrError::Autodiff {
            message: format!("expected a scalar output to differentiate, found {}", output.ty()),
        });
    }
    let wrt_ids: Vec<NodeId> = wrt.iter().map(|t| t.id()).collect();
    let (order, relevant) = {
        let g = b.graph();
        let ancestors = g.ancestors(&[output.id()]);
        let descendants = g.descendants(&wrt_ids);
        let relevant: Vec<bool> = ancestors.iter().zip(&descendants).map(|(a, d)| *a && *d).collect();
        let order: Vec<NodeId> = g.topo_order(&[output.id()]).into_iter().filter(|id| relevant[id.index()]).collect();
        (order, relevant)
    };
    let mut adjoints: HashMap<NodeId, Tensor<'b>> = HashMap::new();
    if relevant[output.id().index()] {
        adjoints.insert(output.id(), output.lit(1.0));
    }
    for &id in order.iter().rev() {
        let Some(&g) = adjoints.get(&id) else { continue };
        let (op, inputs) = {
            let graph = b.graph();
            let node = graph.node(id);
            (node.op.clone(), node.inputs.clone())
        };
        let needs: Vec<bool> = inputs.iter().map(|i| relevant[i.index()]).collect();
        if !needs.iter().any(|&n| n) {
            continue;
        }
        let xs: Vec<Tensor<'b>> = inputs.iter().map(|&i| b.tensor(i)).collect();
        let contributions = vjp(b, &op, &xs, b.tensor(id), g, &needs)?;
        if contributions.len() != xs.len() {
            return Err(IrError::Autodiff {
                message: format!(
                    "the rule of `{}` gave {} adjoints for {} operands",
                    op.name(),
                    contributions.len(),
                    xs.len()
                ),
            });
        }
        for ((x, need), c) in xs.iter().zip(&needs).zip(contributions) {
            let (true, Some(c)) = (*need, c) else { continue };
            if c.ty() != x.ty() {
                return Err(IrError::Autodiff {
                    message: format!(
                        "the rule of `{}` gave an adjoint of type {} for an operand of type {}",
                        op.name(),
                        c.ty(),
                        x.ty()
                    ),
                });
            }
            let sum = match adjoints.get(&x.id()) {
                Some(&acc) => acc + c,
                None => c,
            };
            adjoints.insert(x.id(), sum);
        }
        if b.has_errors() {
            return Err(IrError::Autodiff { message: format!("the rule of `{}` built an ill-typed node", op.name()) });
        }
    }
    Ok(wrt
        .iter()
        .map(|w| match adjoints.get(&w.id()) {
            Some(&a) => a,
            None => b.full(0.0, &w.ty()),
        })
        .collect())
}

/// The Hessian-vector product ∇²f · v: the gradient of ⟨∇f, v⟩, one node per `wrt`.
pub fn hvp(graph: &mut Graph, output: NodeId, wrt: &[NodeId], v: &[NodeId]) -> Result<Vec<NodeId>> {
    if wrt.len() != v.len() {
        return Err(IrError::Autodiff {
            message: format!("expected one direction per variable ({}), found {}", wrt.len(), v.len()),
        });
    }
    check_ids(graph, &[output], wrt)?;
    check_ids(graph, &[], v)?;
    let b = Builder::from_graph(graph.clone());
    let wrt_t: Vec<Tensor<'_>> = wrt.iter().map(|&w| b.tensor(w)).collect();
    let grads = grad_in(&b, b.tensor(output), &wrt_t)?;
    let mut dot: Option<Tensor<'_>> = None;
    for (g, &vi) in grads.iter().zip(v) {
        let term = (*g * b.tensor(vi)).sum_all();
        dot = Some(match dot {
            Some(d) => d + term,
            None => term,
        });
    }
    let Some(dot) = dot else { return Ok(Vec::new()) };
    let ids = grad_in(&b, dot, &wrt_t)?.iter().map(|t| t.id()).collect();
    *graph = b.finish()?;
    Ok(ids)
}

/// The Hessian of a scalar with respect to a vector `wrt` of fixed length P, as a `[P, P]`
/// node: row i is the gradient of the i-th gradient component.
pub fn hessian(graph: &mut Graph, output: NodeId, wrt: NodeId) -> Result<NodeId> {
    check_ids(graph, &[output], &[wrt])?;
    let b = Builder::from_graph(graph.clone());
    let h = hessian_in(&b, b.tensor(output), b.tensor(wrt))?;
    let id = h.id();
    *graph = b.finish()?;
    Ok(id)
}

/// [`hessian`] inside a [`Builder`].
pub fn hessian_in<'b>(b: &'b Builder, output: Tensor<'b>, wrt: Tensor<'b>) -> Result<Tensor<'b>> {
    let p = match wrt.shape().dims() {
        [Dim::Fixed(p)] => *p,
        _ => {
            return Err(IrError::Autodiff {
                message: format!("expected a vector of fixed length to take a Hessian over, found {}", wrt.ty()),
            })
        }
    };
    let g = grad_in(b, output, &[wrt])?[0];
    let mut rows = Vec::with_capacity(p);
    for i in 0..p {
        rows.push(grad_in(b, g.index(0, i), &[wrt])?[0]);
    }
    Ok(b.stack(&rows, 0))
}

/// The vector-Jacobian product of one operation: the adjoint of each operand, given the
/// operands `x`, the output `y` and its adjoint `g`. `None` is a zero adjoint.
fn vjp<'b>(
    b: &'b Builder,
    op: &Op,
    x: &[Tensor<'b>],
    y: Tensor<'b>,
    g: Tensor<'b>,
    needs: &[bool],
) -> Result<Vec<Option<Tensor<'b>>>> {
    let zero = g.lit(0.0);
    Ok(match op {
        // Leaves have no operands.
        Op::Input { .. } | Op::Param { .. } | Op::Knob { .. } | Op::Const { .. } => Vec::new(),
        Op::Unary(u) => {
            let x = x[0];
            vec![match u {
                UnaryOp::Neg => Some(-g),                              // d(−x) = −1
                UnaryOp::Abs => Some(g * x.sign()),                    // d|x| = sign x
                UnaryOp::Sign => None,                                 // d sign x = 0 almost everywhere
                UnaryOp::Exp => Some(g * y),                           // d eˣ = eˣ
                UnaryOp::Log => Some(g / x),                           // d ln x = 1/x
                UnaryOp::Sqrt => Some(g * 0.5 / y),                    // d √x = 1/(2√x)
                UnaryOp::Recip => Some(-(g * y * y)),                  // d (1/x) = −1/x²
                UnaryOp::Relu => Some(b.select(x.gt(zero), g, zero)),  // d relu = [x > 0]
                UnaryOp::Sigmoid => Some(g * y * (1.0 - y)),           // d σ = σ(1 − σ)
                UnaryOp::Tanh => Some(g * (1.0 - y * y)),              // d tanh = 1 − tanh²
                UnaryOp::Softplus => Some(g * x.sigmoid()),            // d ln(1 + eˣ) = σ(x)
                UnaryOp::NormCdf => Some(g * x.norm_pdf()),            // d Φ = φ
                UnaryOp::NormPdf => Some(-(g * x * y)),                // d φ = −x φ
                UnaryOp::Lgamma => Some(g * x.digamma()),              // d ln Γ = ψ
                UnaryOp::Polygamma(n) => Some(g * x.polygamma(n + 1)), // d ψ⁽ⁿ⁾ = ψ⁽ⁿ⁺¹⁾
            }]
        }
        Op::Binary(op) => {
            let (u, v) = (x[0], x[1]);
            let (du, dv) = match op {
                BinaryOp::Add => (Some(g), Some(g)),               // ∂(u+v) = (1, 1)
                BinaryOp::Sub => (Some(g), lazy(needs[1], || -g)), // ∂(u−v) = (1, −1)
                BinaryOp::Mul => (lazy(needs[0], || g * v), lazy(needs[1], || g * u)), // (v, u)
                BinaryOp::Div => (lazy(needs[0], || g / v), lazy(needs[1], || -(g * y / v))), // (1/v, −u/v²)
                BinaryOp::Pow => (
                    lazy(needs[0], || g * v * u.pow(v - 1.0)), // ∂uᵛ/∂u = v uᵛ⁻¹
                    lazy(needs[1], || g * y * u.log()),        // ∂uᵛ/∂v = uᵛ ln u
                ),
                // Ties send the whole adjoint to the first operand.
                BinaryOp::Max => {
                    let first = u.ge(v);
                    (lazy(needs[0], || b.select(first, g, zero)), lazy(needs[1], || b.select(first, zero, g)))
                }
                BinaryOp::Min => {
                    let first = u.le(v);
                    (lazy(needs[0], || b.select(first, g, zero)), lazy(needs[1], || b.select(first, zero, g)))
                }
            };
            vec![du, dv]
        }
        Op::Compare(_) => vec![None, None], // piecewise constant
        // select(c, u, v): the adjoint flows to the chosen branch.
        Op::Select => {
            vec![None, lazy(needs[1], || b.select(x[0], g, zero)), lazy(needs[2], || b.select(x[0], zero, g))]
        }
        // Y = A·B: Ā = Ȳ·Bᵀ, B̄ = Aᵀ·Ȳ.
        Op::MatMul => vec![lazy(needs[0], || g.matmul(x[1].t())), lazy(needs[1], || x[0].t().matmul(g))],
        // The adjoint of a permutation is the inverse permutation.
        Op::Transpose { perm } => {
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            vec![Some(g.transpose(inverse))]
        }
        // Broadcasting copies; its adjoint sums the copies back into the source shape.
        Op::Broadcast { shape } => vec![Some(unbroadcast(g, &x[0].shape(), shape))],
        Op::Reshape { .. } => vec![Some(g.reshape(x[0].shape()))],
        // A slice's adjoint is zero outside the slice.
        Op::Slice { axis, start, end } => {
            let n = x[0].shape().0[*axis].fixed().unwrap_or(0);
            vec![Some(g.pad(*axis, *start, n - end))]
        }
        Op::Pad { axis, before, .. } => {
            let n = x[0].shape().0[*axis].fixed().unwrap_or(0);
            vec![Some(g.slice(*axis, *before..before + n))]
        }
        // Each operand of a concatenation gets its own slice of the adjoint.
        Op::Concat { axis } => {
            let mut offset = 0;
            x.iter()
                .map(|xi| {
                    let n = xi.shape().0[*axis].fixed().unwrap_or(0);
                    offset += n;
                    Some(g.slice(*axis, offset - n..offset))
                })
                .collect()
        }
        // ∂(Σ x)/∂x = 1: the adjoint is spread back over the summed axes.
        Op::Sum { axes } => {
            let src = x[0].shape();
            vec![Some(g.reshape(keep_dims(&src, axes)).broadcast_to(src))]
        }
        // ∂ max/∂x = [x = max] / #ties: the adjoint is shared by the maximal elements.
        Op::ReduceMax { axes } => {
            let src = x[0].shape();
            let kept = keep_dims(&src, axes);
            let spread = |t: Tensor<'b>| t.reshape(kept.clone()).broadcast_to(src.clone());
            let mask = x[0].eq(spread(y));
            let ties = spread(mask.sum(axes));
            vec![Some(spread(g) * mask / ties)]
        }
        // A cast's adjoint is cast back.
        Op::Cast { .. } => vec![Some(g.cast(x[0].dtype()))],
        // The kernel density estimate's rule is in hist.rs, beside its forward pass.
        Op::Hist { reflect } => crate::hist::vjp(x, g, *reflect, needs),
        Op::Custom(c) => c.0.vjp(b, x, y, g, needs)?,
    })
}

/// Builds an operand's adjoint only when the operand needs one.
fn lazy<'b>(needed: bool, f: impl FnOnce() -> Tensor<'b>) -> Option<Tensor<'b>> {
    needed.then(f)
}

/// Checks that node handles belong to `graph` before any rule runs.
fn check_ids(graph: &Graph, a: &[NodeId], b: &[NodeId]) -> Result<()> {
    a.iter().chain(b).try_for_each(|&id| graph.check(id))
}

/// The shape with the reduced `axes` kept as size one.
fn keep_dims(src: &Shape, axes: &[usize]) -> Shape {
    Shape(src.0.iter().enumerate().map(|(i, d)| if axes.contains(&i) { Dim::Fixed(1) } else { *d }).collect())
}

/// Sums `g` (of shape `target`) back to the shape `src` that was broadcast to `target`.
fn unbroadcast<'b>(g: Tensor<'b>, src: &Shape, target: &Shape) -> Tensor<'b> {
    let lead = target.rank() - src.rank();
    let axes: Vec<usize> = (0..target.rank())
        .filter(|&i| i < lead || (src.0[i - lead] == Dim::Fixed(1) && target.0[i] != Dim::Fixed(1)))
        .collect();
    let summed = if axes.is_empty() { g } else { g.sum(&axes) };
    summed.reshape(src.clone())
}
