//! Translation between the IR graph and the e-graph, both ways.

use std::collections::HashMap;

use egg::{Extractor, Id, Language};

use super::analysis::{structural_op, Kind, LeafEntry, TypeAnalysis, EG};
use super::cost::CostModel;
use super::lang::{Attr, Expr, Leaf, Num};
use crate::builder::{Builder, Tensor};
use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, CmpOp, Op, UnaryOp};
use crate::types::{DType, TensorType};

/// Adds the live part of `graph` to a new e-graph; returns it with the e-class of each output.
pub fn to_egraph(graph: &Graph) -> Result<(EG, Vec<Id>)> {
    let mut eg = EG::new(TypeAnalysis::default());
    let mut ids: HashMap<NodeId, Id> = HashMap::new();
    for node_id in graph.live_nodes() {
        let node = graph.node(node_id);
        let x: Vec<Id> = node.inputs.iter().map(|i| ids[i]).collect();
        let attr = |eg: &mut EG, a: Attr| eg.add(Expr::Attr(a));
        let with_attr = |eg: &mut EG, a: Attr| -> Vec<Id> {
            let mut v = vec![eg.add(Expr::Attr(a))];
            v.extend(&x);
            v
        };
        let pair = |eg: &mut EG, a: Attr| {
            let v = with_attr(eg, a);
            [v[0], v[1]]
        };
        let enode = match &node.op {
            Op::Input { .. } | Op::Param { .. } | Op::Knob { .. } => leaf(&mut eg, &node.op, Some(node.ty.clone())),
            Op::Const { value } => {
                let first = value.iter().next().copied();
                let uniform = first.filter(|f| value.iter().all(|v| v.to_bits() == f.to_bits()));
                match uniform {
                    Some(c) if node.ty.shape.is_scalar() => Expr::Num(Num::new(c, Some(node.ty.dtype))),
                    Some(c) => {
                        let num = eg.add(Expr::Num(Num::new(c, Some(node.ty.dtype))));
                        Expr::Broadcast([attr(&mut eg, Attr::Shape(node.ty.shape.clone())), num])
                    }
                    None => leaf(&mut eg, &node.op, Some(node.ty.clone())),
                }
            }
            Op::Unary(u) => match u {
                UnaryOp::Neg => Expr::Neg(x[0]),
                UnaryOp::Abs => Expr::Abs(x[0]),
                UnaryOp::Sign => Expr::Sign(x[0]),
                UnaryOp::Exp => Expr::Exp(x[0]),
                UnaryOp::Log => Expr::Log(x[0]),
                UnaryOp::Sqrt => Expr::Sqrt(x[0]),
                UnaryOp::Recip => Expr::Recip(x[0]),
                UnaryOp::Relu => Expr::Relu(x[0]),
                UnaryOp::Sigmoid => Expr::Sigmoid(x[0]),
                UnaryOp::Tanh => Expr::Tanh(x[0]),
                UnaryOp::Softplus => Expr::Softplus(x[0]),
                UnaryOp::NormCdf => Expr::NormCdf(x[0]),
                UnaryOp::NormPdf => Expr::NormPdf(x[0]),
                UnaryOp::Lgamma => Expr::Lgamma(x[0]),
                UnaryOp::Polygamma(n) => Expr::Polygamma(pair(&mut eg, Attr::Order(*n))),
            },
            Op::Binary(b) => {
                let p = [x[0], x[1]];
                match b {
                    BinaryOp::Add => Expr::Add(p),
                    BinaryOp::Sub => Expr::Sub(p),
                    BinaryOp::Mul => Expr::Mul(p),
                    BinaryOp::Div => Expr::Div(p),
                    BinaryOp::Pow => Expr::Pow(p),
                    BinaryOp::Max => Expr::Max(p),
                    BinaryOp::Min => Expr::Min(p),
                }
            }
            Op::Compare(c) => {
                let p = [x[0], x[1]];
                match c {
                    CmpOp::Lt => Expr::Lt(p),
                    CmpOp::Le => Expr::Le(p),
                    CmpOp::Gt => Expr::Gt(p),
                    CmpOp::Ge => Expr::Ge(p),
                    CmpOp::Eq => Expr::Eq(p),
                    CmpOp::Ne => Expr::Ne(p),
                }
            }
            Op::Select => Expr::Select([x[0], x[1], x[2]]),
            Op::MatMul => Expr::MatMul([x[0], x[1]]),
            Op::Transpose { perm } => Expr::Transpose(pair(&mut eg, Attr::Axes(perm.clone()))),
            Op::Broadcast { shape } => Expr::Broadcast(pair(&mut eg, Attr::Shape(shape.clone()))),
            Op::Reshape { shape } => Expr::Reshape(pair(&mut eg, Attr::Shape(shape.clone()))),
            Op::Slice { axis, start, end } => Expr::Slice(pair(&mut eg, Attr::Range(*axis, *start, *end))),
            Op::Pad { axis, before, after } => Expr::Pad(pair(&mut eg, Attr::Pad(*axis, *before, *after))),
            Op::Concat { axis } => Expr::Concat(with_attr(&mut eg, Attr::Axis(*axis)).into()),
            Op::Sum { axes } => Expr::Sum(pair(&mut eg, Attr::Axes(axes.clone()))),
            Op::ReduceMax { axes } => Expr::ReduceMax(pair(&mut eg, Attr::Axes(axes.clone()))),
            Op::Cast { to } => Expr::Cast(pair(&mut eg, Attr::DType(*to))),
            Op::Hist { reflect } => {
                let v = with_attr(&mut eg, Attr::Reflect(*reflect));
                Expr::Hist([v[0], v[1], v[2], v[3]])
            }
            Op::Custom(_) => {
                let head_leaf = leaf(&mut eg, &node.op, None);
                let head = eg.add(head_leaf);
                let mut children = vec![head];
                children.extend(&x);
                Expr::Call(children.into())
            }
        };
        ids.insert(node_id, eg.add(enode));
    }
    eg.rebuild();
    let roots = graph.outputs().iter().map(|(_, id)| eg.find(ids[id])).collect();
    Ok((eg, roots))
}

fn leaf(eg: &mut EG, op: &Op, ty: Option<TensorType>) -> Expr {
    let leaves = &mut eg.analysis.leaves;
    leaves.push(LeafEntry { op: op.clone(), ty });
    Expr::Leaf(Leaf(leaves.len() - 1))
}

/// Builds a graph from the cheapest member of each e-class reachable from the outputs. The
/// original graph's leaves are declared first, in their order, so that the simplified graph
/// takes the same bindings even where a leaf no longer matters.
pub fn from_egraph(eg: &EG, original: &Graph, roots: &[Id]) -> Result<Graph> {
    let extractor = Extractor::new(eg, CostModel { egraph: eg });
    let b = Builder::new();
    let mut declared: HashMap<String, Tensor<'_>> = HashMap::new();
    for id in original.node_ids() {
        let node = original.node(id);
        let t = match &node.op {
            Op::Input { name } => b.input(name, node.ty.dtype, node.ty.shape.clone()),
            Op::Param { name } => b.param(name, node.ty.dtype, node.ty.shape.clone()),
            Op::Knob { name, default } => b.knob(name, node.ty.dtype, *default),
            _ => continue,
        };
        declared.insert(crate::graph::leaf_name(&node.op).unwrap_or_default().to_string(), t);
    }
    let mut memo: HashMap<(Id, DType), Tensor<'_>> = HashMap::new();
    for ((name, orig), &root) in original.outputs().iter().zip(roots) {
        let t = build(eg, &extractor, &b, &declared, &mut memo, root, original.ty(*orig).dtype)?;
        b.output(name, t);
    }
    b.finish().map_err(|e| IrError::Simplify { message: format!("rebuilding the graph failed: {e}") })
}

/// Builds the chosen member of `root` and everything below it, without recursion (gradient
/// graphs can be deep). `hint` is the dtype for weakly typed classes: their user's dtype.
fn build<'b>(
    eg: &EG,
    extractor: &Extractor<'_, CostModel<'_>, Expr, TypeAnalysis>,
    b: &'b Builder,
    declared: &HashMap<String, Tensor<'b>>,
    memo: &mut HashMap<(Id, DType), Tensor<'b>>,
    root: Id,
    hint: DType,
) -> Result<Tensor<'b>> {
    let dtype_of = |id: Id, hint: DType| match &eg[id].data.kind {
        Kind::Tensor { dtype, .. } => dtype.unwrap_or(hint),
        Kind::Attr(_) | Kind::Op => hint,
    };
    let mut stack = vec![(eg.find(root), dtype_of(root, hint), false)];
    while let Some((id, dtype, ready)) = stack.pop() {
        if memo.contains_key(&(id, dtype)) {
            continue;
        }
        let enode = extractor.find_best_node(id);
        let operands = tensor_children(eg, enode);
        if !ready {
            stack.push((id, dtype, true));
            for &c in operands.iter().rev() {
                stack.push((eg.find(c), dtype_of(c, dtype), false));
            }
            continue;
        }
        let xs: Vec<Tensor<'b>> = operands.iter().map(|&c| memo[&(eg.find(c), dtype_of(c, dtype))]).collect();
        let t = build_node(eg, b, declared, enode, &xs, dtype)?;
        let (_, shape) = eg[id].data.tensor().ok_or_else(|| simplify_error("extracted an attribute as a tensor"))?;
        let expected = TensorType::new(dtype, shape.clone());
        if t.ty() != expected {
            return Err(simplify_error(&format!("rebuilt `{enode}` with type {}, expected {expected}", t.ty())));
        }
        memo.insert((id, dtype), t);
    }
    Ok(memo[&(eg.find(root), dtype_of(root, hint))])
}

/// The children of an e-node that are tensors (not its attribute or custom operation).
fn tensor_children(eg: &EG, enode: &Expr) -> Vec<Id> {
    enode.children().iter().copied().filter(|&c| matches!(eg[c].data.kind, Kind::Tensor { .. })).collect()
}

fn simplify_error(message: &str) -> IrError {
    IrError::Simplify { message: message.to_string() }
}

fn build_node<'b>(
    eg: &EG,
    b: &'b Builder,
    declared: &HashMap<String, Tensor<'b>>,
    enode: &Expr,
    x: &[Tensor<'b>],
    dtype: DType,
) -> Result<Tensor<'b>> {
    let head = enode.children().first().map(|&c| &eg[c].data);
    let unary = |u: UnaryOp| b.apply(Op::Unary(u), &[x[0]]);
    Ok(match enode {
        Expr::Num(n) => b.scalar(n.value(), n.dtype.unwrap_or(dtype)),
        Expr::Attr(_) => return Err(simplify_error("extracted an attribute as a tensor")),
        Expr::Leaf(l) => {
            let entry = eg.analysis.leaves.get(l.0).ok_or_else(|| simplify_error("leaf outside the table"))?;
            match &entry.op {
                Op::Input { name } | Op::Param { name } | Op::Knob { name, .. } => {
                    *declared.get(name).ok_or_else(|| simplify_error(&format!("leaf `{name}` was not declared")))?
                }
                Op::Const { value } => b.constant((**value).clone(), entry.ty.as_ref().map_or(dtype, |t| t.dtype)),
                other => return Err(simplify_error(&format!("expected a leaf, found `{}`", other.name()))),
            }
        }
        Expr::Neg(_) => -x[0],
        Expr::Abs(_) => unary(UnaryOp::Abs),
        Expr::Sign(_) => unary(UnaryOp::Sign),
        Expr::Exp(_) => unary(UnaryOp::Exp),
        Expr::Log(_) => unary(UnaryOp::Log),
        Expr::Sqrt(_) => unary(UnaryOp::Sqrt),
        Expr::Recip(_) => unary(UnaryOp::Recip),
        Expr::Relu(_) => unary(UnaryOp::Relu),
        Expr::Sigmoid(_) => unary(UnaryOp::Sigmoid),
        Expr::Tanh(_) => unary(UnaryOp::Tanh),
        Expr::Softplus(_) => unary(UnaryOp::Softplus),
        Expr::NormCdf(_) => unary(UnaryOp::NormCdf),
        Expr::NormPdf(_) => unary(UnaryOp::NormPdf),
        Expr::Lgamma(_) => unary(UnaryOp::Lgamma),
        Expr::Add(_) => x[0].binary(BinaryOp::Add, x[1]),
        Expr::Sub(_) => x[0].binary(BinaryOp::Sub, x[1]),
        Expr::Mul(_) => x[0].binary(BinaryOp::Mul, x[1]),
        Expr::Div(_) => x[0].binary(BinaryOp::Div, x[1]),
        Expr::Pow(_) => x[0].binary(BinaryOp::Pow, x[1]),
        Expr::Max(_) => x[0].binary(BinaryOp::Max, x[1]),
        Expr::Min(_) => x[0].binary(BinaryOp::Min, x[1]),
        Expr::Lt(_) => x[0].lt(x[1]),
        Expr::Le(_) => x[0].le(x[1]),
        Expr::Gt(_) => x[0].gt(x[1]),
        Expr::Ge(_) => x[0].ge(x[1]),
        Expr::Eq(_) => x[0].eq(x[1]),
        Expr::Ne(_) => x[0].ne(x[1]),
        Expr::Select(_) => b.select(x[0], x[1], x[2]),
        Expr::MatMul(_) => x[0].matmul(x[1]),
        Expr::Polygamma(_)
        | Expr::Transpose(_)
        | Expr::Broadcast(_)
        | Expr::Reshape(_)
        | Expr::Slice(_)
        | Expr::Pad(_)
        | Expr::Concat(_)
        | Expr::Sum(_)
        | Expr::ReduceMax(_)
        | Expr::Cast(_)
        | Expr::Hist(_) => {
            let op = head
                .and_then(|d| d.attr())
                .and_then(|a| structural_op(enode, a))
                .ok_or_else(|| simplify_error(&format!("`{enode}` lacks its attribute")))?;
            b.apply(op, x)
        }
        Expr::Call(_) => {
            let head = enode.children().first().ok_or_else(|| simplify_error("a call without its operation"))?;
            let op = eg[*head]
                .nodes
                .iter()
                .find_map(|n| match n {
                    Expr::Leaf(l) => eg.analysis.leaves.get(l.0).map(|e| e.op.clone()),
                    _ => None,
                })
                .ok_or_else(|| simplify_error("a call without its operation"))?;
            b.apply(op, x)
        }
    })
}
