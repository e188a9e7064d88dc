//! Type inference: the dtype and shape of each operation's result, or a message saying which
//! operand was wrong and how. `verify` re-runs it on every node after every pass.

use crate::op::Op;
use crate::types::{Dim, Shape, TensorType};

/// Infers the type of `op` applied to operands of the given types. Leaves declare their type,
/// so asking to infer one is an error.
pub fn infer(op: &Op, inputs: &[&TensorType]) -> Result<TensorType, String> {
    match op {
        Op::Input { .. } | Op::Param { .. } | Op::Knob { .. } | Op::Const { .. } => {
            Err("a leaf declares its type and takes no operands".into())
        }
        Op::Unary(_) | Op::Cast { .. } if inputs.len() != 1 => {
            Err(format!("expected 1 operand, found {}", inputs.len()))
        }
        Op::Unary(_) => Ok(inputs[0].clone()),
        Op::Cast { to } => Ok(TensorType { dtype: *to, shape: inputs[0].shape.clone() }),
        Op::Binary(_) | Op::Compare(_) => {
            arity(inputs, 2)?;
            same_types(inputs)?;
            Ok(inputs[0].clone())
        }
        Op::Select => {
            arity(inputs, 3)?;
            same_types(inputs)?;
            Ok(inputs[0].clone())
        }
        Op::MatMul => {
            arity(inputs, 2)?;
            same_dtype(inputs)?;
            let (a, b) = (&inputs[0].shape, &inputs[1].shape);
            if a.rank() != 2 || b.rank() != 2 {
                return Err(format!("expected two matrices, found shapes {a} and {b}"));
            }
            if a.0[1] != b.0[0] {
                return Err(format!("inner dimensions differ: expected {a}·[{}, n], found {a}·{b}", a.0[1]));
            }
            Ok(TensorType::new(inputs[0].dtype, Shape(vec![a.0[0], b.0[1]])))
        }
        Op::Transpose { perm } => {
            arity(inputs, 1)?;
            let s = &inputs[0].shape;
            let mut seen = vec![false; s.rank()];
            if perm.len() != s.rank() || perm.iter().any(|&p| p >= s.rank() || std::mem::replace(&mut seen[p], true)) {
                return Err(format!("expected a permutation of 0..{}, found {perm:?}", s.rank()));
            }
            Ok(TensorType::new(inputs[0].dtype, Shape(perm.iter().map(|&p| s.0[p]).collect())))
        }
        Op::Broadcast { shape } => {
            arity(inputs, 1)?;
            check_valid_shape(shape)?;
            if !inputs[0].shape.broadcasts_to(shape) {
                return Err(format!("expected a shape that broadcasts to {shape}, found {}", inputs[0].shape));
            }
            Ok(TensorType::new(inputs[0].dtype, shape.clone()))
        }
        Op::Reshape { shape } => {
            arity(inputs, 1)?;
            check_valid_shape(shape)?;
            let s = &inputs[0].shape;
            if s.events_group() != shape.events_group()
                || s.events_dims() != shape.events_dims()
                || s.fixed_numel() != shape.fixed_numel()
            {
                return Err(format!("expected a shape with as many elements as {s}, found {shape}"));
            }
            Ok(TensorType::new(inputs[0].dtype, shape.clone()))
        }
        Op::Slice { axis, start, end } => {
            arity(inputs, 1)?;
            let s = &inputs[0].shape;
            let n = fixed_axis(s, *axis)?;
            if start > end || *end > n {
                return Err(format!("expected a range within 0..{n} on axis {axis}, found {start}..{end}"));
            }
            let mut out = s.clone();
            out.0[*axis] = Dim::Fixed(end - start);
            Ok(TensorType::new(inputs[0].dtype, out))
        }
        Op::Pad { axis, before, after } => {
            arity(inputs, 1)?;
            let s = &inputs[0].shape;
            let n = fixed_axis(s, *axis)?;
            let padded = n.checked_add(*before).and_then(|m| m.checked_add(*after));
            let padded = padded.ok_or_else(|| {
                format!("expected a padded length that fits in usize, found {n} + {before} + {after}")
            })?;
            let mut out = s.clone();
            out.0[*axis] = Dim::Fixed(padded);
            Ok(TensorType::new(inputs[0].dtype, out))
        }
        Op::Concat { axis } => {
            if inputs.is_empty() {
                return Err("expected at least one operand, found none".into());
            }
            same_dtype(inputs)?;
            let first = &inputs[0].shape;
            let mut total = 0;
            for t in inputs {
                let s = &t.shape;
                total += fixed_axis(s, *axis)?;
                let same_elsewhere =
                    s.rank() == first.rank() && (0..s.rank()).all(|i| i == *axis || s.0[i] == first.0[i]);
                if !same_elsewhere {
                    return Err(format!("expected operands that agree off axis {axis}, found {first} and {s}"));
                }
            }
            let mut out = first.clone();
            out.0[*axis] = Dim::Fixed(total);
            Ok(TensorType::new(inputs[0].dtype, out))
        }
        Op::Sum { axes } | Op::ReduceMax { axes } => {
            arity(inputs, 1)?;
            let s = &inputs[0].shape;
            if axes.windows(2).any(|w| w[0] >= w[1]) || axes.iter().any(|&a| a >= s.rank()) {
                return Err(format!("expected sorted distinct axes below {}, found {axes:?}", s.rank()));
            }
            let out = s.0.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| *d);
            Ok(TensorType::new(inputs[0].dtype, Shape::new(out)))
        }
        Op::Hist { .. } => crate::hist::infer(inputs),
        Op::Custom(c) => c.0.infer(inputs),
    }
}

fn arity(inputs: &[&TensorType], n: usize) -> Result<(), String> {
    if inputs.len() == n {
        Ok(())
    } else {
        Err(format!("expected {n} operands, found {}", inputs.len()))
    }
}

fn same_dtype(inputs: &[&TensorType]) -> Result<(), String> {
    match inputs.iter().find(|t| t.dtype != inputs[0].dtype) {
        Some(t) => {
            Err(format!("expected operands of one dtype, found {} and {} (insert a cast)", inputs[0].dtype, t.dtype))
        }
        None => Ok(()),
    }
}

fn same_types(inputs: &[&TensorType]) -> Result<(), String> {
    same_dtype(inputs)?;
    match inputs.iter().find(|t| t.shape != inputs[0].shape) {
        Some(t) => Err(format!(
            "expected operands of one shape, found {} and {} (broadcast explicitly)",
            inputs[0].shape, t.shape
        )),
        None => Ok(()),
    }
}

fn fixed_axis(s: &Shape, axis: usize) -> Result<usize, String> {
    match s.0.get(axis) {
        Some(Dim::Fixed(n)) => Ok(*n),
        Some(Dim::Events(_)) => Err(format!("expected a fixed-size axis, found the events axis {axis} of {s}")),
        None => Err(format!("expected an axis below {}, found {axis}", s.rank())),
    }
}

/// A shape may hold the events dimension at most once.
pub(crate) fn check_valid_shape(shape: &Shape) -> Result<(), String> {
    if shape.events_dims() > 1 {
        return Err(format!("expected at most one events dimension, found {shape}"));
    }
    Ok(())
}
