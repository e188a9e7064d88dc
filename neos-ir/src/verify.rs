//! Graph invariants, checked after every pass in tests: operands exist and come before their
//! users, every node's stored type is what inference gives for its operands, leaves have no
//! operands and declare valid shapes, leaf names are unique, and outputs exist.

use std::collections::BTreeSet;

use crate::error::{IrError, Result};
use crate::graph::{leaf_name, Graph};
use crate::infer::{check_valid_shape, infer};
use crate::op::Op;
use crate::types::{Dim, TensorType};

/// Checks every invariant and reports all the broken ones at once.
pub fn verify(graph: &Graph) -> Result<()> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for id in graph.node_ids() {
        let node = graph.node(id);
        let here = format!("%{} ({})", id.index(), node.op.name());
        if let Some(i) = node.inputs.iter().find(|i| i.index() >= id.index()) {
            problems.push(format!("{here}: expected operands defined before the node, found %{}", i.index()));
            continue;
        }
        if let Err(m) = check_valid_shape(&node.ty.shape) {
            problems.push(format!("{here}: {m}"));
        }
        match &node.op {
            Op::Input { .. } | Op::Param { .. } | Op::Knob { .. } => {
                let name = leaf_name(&node.op).unwrap_or_default();
                if !names.insert(name.to_string()) {
                    problems.push(format!("{here}: expected a unique name, found `{name}` again"));
                }
                if !node.inputs.is_empty() {
                    problems.push(format!("{here}: expected no operands, found {}", node.inputs.len()));
                }
                if matches!(node.op, Op::Knob { .. }) && !node.ty.shape.is_scalar() {
                    problems.push(format!("{here}: expected a scalar knob, found {}", node.ty));
                }
                if matches!(node.op, Op::Param { .. }) && node.ty.shape.has_events() {
                    problems.push(format!("{here}: expected a fixed-shape param, found {}", node.ty));
                }
            }
            Op::Const { value } => {
                let expected: Vec<Dim> = value.shape().iter().map(|&n| Dim::Fixed(n)).collect();
                if node.ty.shape.0 != expected || !node.inputs.is_empty() {
                    problems.push(format!(
                        "{here}: expected a constant of shape {:?} with no operands, found type {}",
                        value.shape(),
                        node.ty
                    ));
                }
            }
            Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::MatMul
            | Op::Transpose { .. }
            | Op::Broadcast { .. }
            | Op::Reshape { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Concat { .. }
            | Op::Sum { .. }
            | Op::ReduceMax { .. }
            | Op::Cast { .. }
            | Op::Hist { .. }
            | Op::Custom(_) => {
                let types: Vec<&TensorType> = node.inputs.iter().map(|&i| graph.ty(i)).collect();
                match infer(&node.op, &types) {
                    Ok(ty) if ty == node.ty => {}
                    Ok(ty) => problems.push(format!("{here}: expected type {ty}, found {}", node.ty)),
                    Err(m) => problems.push(format!("{here}: {m}")),
                }
            }
        }
    }
    for (name, id) in graph.outputs() {
        if id.index() >= graph.len() {
            problems.push(format!("output `{name}`: expected a node below %{}, found %{}", graph.len(), id.index()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(IrError::Verify { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{BinaryOp, UnaryOp};
    use crate::types::{DType, Shape};

    #[test]
    fn broken_invariants_are_all_reported() {
        let mut g = Graph::new();
        let x = g.param("x", DType::F64, [3]).unwrap();
        assert!(verify(&g).is_ok());
        // Nodes pushed without inference, as a faulty pass might.
        g.push(Op::Unary(UnaryOp::Exp), vec![x], TensorType::new(DType::F64, [4]));
        g.push(Op::Binary(BinaryOp::Add), vec![x], TensorType::new(DType::F64, [3]));
        g.push(Op::Param { name: "x".into() }, Vec::new(), TensorType::new(DType::F64, Shape::new([crate::EVENTS])));
        let Err(IrError::Verify { problems }) = verify(&g) else { panic!("expected invariant violations") };
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("expected type f64[3], found f64[4]"), "{}", problems[0]);
        assert!(problems[1].contains("expected 2 operands, found 1"), "{}", problems[1]);
        assert!(problems[2].contains("expected a unique name, found `x` again"), "{}", problems[2]);
        assert!(problems[3].contains("expected a fixed-shape param"), "{}", problems[3]);
    }
}
