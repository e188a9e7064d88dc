//! The interpreter: evaluates a graph over ndarray in `f64`, rounding the result of every
//! `f32` node to `f32`. It is slow and simple on purpose, because it is the oracle that every
//! later stage (simplification, generated code) is tested against.

use std::collections::BTreeMap;

use ndarray::{concatenate, ArrayD, ArrayView1, ArrayViewD, Axis, Ix2, IxDyn, Zip};

use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, CmpOp, Op, UnaryOp};
use crate::special;
use crate::types::{Dim, Shape};

/// Values for the named leaves of a graph: inputs and params must be bound, knobs fall back to
/// their defaults.
#[derive(Clone, Debug, Default)]
pub struct Bindings {
    values: BTreeMap<String, ArrayD<f64>>,
}

impl Bindings {
    pub fn new() -> Self {
        Bindings::default()
    }

    pub fn set(&mut self, name: &str, value: ArrayD<f64>) -> &mut Self {
        self.values.insert(name.to_string(), value);
        self
    }

    pub fn with(mut self, name: &str, value: ArrayD<f64>) -> Self {
        self.set(name, value);
        self
    }

    pub fn get(&self, name: &str) -> Option<&ArrayD<f64>> {
        self.values.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut ArrayD<f64>> {
        self.values.get_mut(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

/// Evaluates the given nodes.
pub fn eval(graph: &Graph, bindings: &Bindings, roots: &[NodeId]) -> Result<Vec<ArrayD<f64>>> {
    for &r in roots {
        graph.check(r)?;
    }
    let order = graph.topo_order(roots);
    let events = bind_events(graph, bindings, &order)?;
    let mut values: Vec<Option<ArrayD<f64>>> = vec![None; graph.len()];
    for id in order {
        let node = graph.node(id);
        let args: Vec<ArrayViewD<'_, f64>> = node
            .inputs
            .iter()
            .map(|i| {
                values[i.index()].as_ref().map(|v| v.view()).ok_or_else(|| IrError::Eval {
                    op: node.op.name().into(),
                    message: format!("operand %{} was not evaluated before its use", i.index()),
                })
            })
            .collect::<Result<_>>()?;
        let value = eval_op(&node.op, &args, &node.ty.shape, &events, bindings)
            .map_err(|message| IrError::Eval { op: node.op.name().into(), message })?;
        let expected = node.ty.shape.resolve(events.as_slice());
        if value.shape() != expected.as_slice() {
            return Err(IrError::Eval {
                op: node.op.name().into(),
                message: format!("expected a result of shape {expected:?}, found {:?}", value.shape()),
            });
        }
        let dtype = node.ty.dtype;
        values[id.index()] = Some(value.mapv_into(|v| dtype.round(v)));
    }
    Ok(roots.iter().map(|r| values[r.index()].clone().unwrap_or_default()).collect())
}

/// Evaluates every named output, by name.
pub fn eval_outputs(graph: &Graph, bindings: &Bindings) -> Result<BTreeMap<String, ArrayD<f64>>> {
    let roots: Vec<NodeId> = graph.outputs().iter().map(|(_, id)| *id).collect();
    let values = eval(graph, bindings, &roots)?;
    Ok(graph.outputs().iter().map(|(n, _)| n.clone()).zip(values).collect())
}

/// Checks the bound leaves against their declared shapes and finds the number of events of
/// each events group, which every dimension of that group must agree on. Leaves that the
/// evaluated nodes (`needed`) use must be bound; the others may be, and then count for the
/// number of events too (a graph can broadcast to an events dimension without reading any
/// event data). A group no bound leaf sizes has no events.
fn bind_events(graph: &Graph, bindings: &Bindings, needed: &[NodeId]) -> Result<Vec<usize>> {
    let mut events: Vec<Option<(usize, String)>> = Vec::new();
    let mut used = vec![false; graph.len()];
    for id in needed {
        used[id.index()] = true;
    }
    for (name, id) in graph.leaves() {
        let node = graph.node(id);
        let Some(value) = bindings.get(&name) else {
            match node.op {
                Op::Knob { .. } => continue,
                _ if !used[id.index()] => continue,
                _ => {
                    return Err(IrError::Binding {
                        name,
                        message: format!("expected a value of shape {}, found none", node.ty.shape),
                    })
                }
            }
        };
        let dims = node.ty.shape.dims();
        if value.ndim() != dims.len() {
            return Err(IrError::Binding {
                name,
                message: format!("expected shape {}, found {:?}", node.ty.shape, value.shape()),
            });
        }
        for (d, &n) in dims.iter().zip(value.shape()) {
            let group = d.events_group().map(usize::from);
            if let Some(g) = group.filter(|&g| g >= events.len()) {
                events.resize(g + 1, None);
            }
            let known = group.and_then(|g| events[g].as_ref());
            match (d, known) {
                (Dim::Fixed(k), _) if *k != n => {
                    return Err(IrError::Binding {
                        name,
                        message: format!("expected shape {}, found {:?}", node.ty.shape, value.shape()),
                    })
                }
                (Dim::Fixed(_), _) => {}
                (Dim::Events(_), Some((e, other))) if *e != n => {
                    return Err(IrError::Binding {
                        name,
                        message: format!("expected {e} events like `{other}`, found {n}"),
                    })
                }
                (Dim::Events(_), Some(_)) => {}
                (Dim::Events(g), None) => events[usize::from(*g)] = Some((n, name.clone())),
            }
        }
        if let Some(i) = value.iter().position(|v| v.is_nan()) {
            return Err(IrError::Binding { name, message: format!("expected numbers, found NaN at flat index {i}") });
        }
    }
    Ok(events.into_iter().map(|e| e.map_or(0, |(n, _)| n)).collect())
}

/// One operation on evaluated operands.
fn eval_op(
    op: &Op,
    args: &[ArrayViewD<'_, f64>],
    out: &Shape,
    events: &[usize],
    bindings: &Bindings,
) -> std::result::Result<ArrayD<f64>, String> {
    Ok(match op {
        Op::Input { name } | Op::Param { name } => {
            bindings.get(name).cloned().ok_or_else(|| format!("no value bound for `{name}`"))?
        }
        Op::Knob { name, default } => match bindings.get(name) {
            Some(v) => v.clone(),
            None => ndarray::arr0(*default).into_dyn(),
        },
        Op::Const { value } => (**value).clone(),
        Op::Unary(u) => args[0].mapv(|x| unary(*u, x)),
        Op::Binary(b) => Zip::from(&args[0]).and(&args[1]).map_collect(|&x, &y| binary(*b, x, y)),
        Op::Compare(c) => Zip::from(&args[0]).and(&args[1]).map_collect(|&x, &y| compare(*c, x, y)),
        Op::Select => {
            Zip::from(&args[0]).and(&args[1]).and(&args[2]).map_collect(|&c, &a, &b| if c != 0.0 { a } else { b })
        }
        Op::MatMul => {
            let a = args[0].view().into_dimensionality::<Ix2>().map_err(|e| e.to_string())?;
            let b = args[1].view().into_dimensionality::<Ix2>().map_err(|e| e.to_string())?;
            a.dot(&b).into_dyn()
        }
        Op::Transpose { perm } => args[0].view().permuted_axes(IxDyn(perm)).to_owned(),
        Op::Broadcast { .. } => args[0]
            .broadcast(IxDyn(&out.resolve(events)))
            .ok_or_else(|| format!("cannot broadcast {:?} to {:?}", args[0].shape(), out.resolve(events)))?
            .to_owned(),
        Op::Reshape { .. } => {
            let standard = args[0].as_standard_layout().into_owned();
            standard.into_shape_with_order(IxDyn(&out.resolve(events))).map_err(|e| e.to_string())?
        }
        Op::Slice { axis, start, end } => {
            args[0].slice_axis(Axis(*axis), ndarray::Slice::from(*start..*end)).to_owned()
        }
        Op::Pad { axis, before, .. } => {
            let mut padded = ArrayD::zeros(IxDyn(&out.resolve(events)));
            let n = args[0].shape()[*axis];
            padded.slice_axis_mut(Axis(*axis), ndarray::Slice::from(*before..before + n)).assign(&args[0]);
            padded
        }
        Op::Concat { axis } => concatenate(Axis(*axis), args).map_err(|e| e.to_string())?,
        Op::Sum { axes } => reduce(&args[0], axes, |lane| lane.sum()),
        Op::ReduceMax { axes } => reduce(&args[0], axes, |lane| lane.iter().copied().fold(f64::NEG_INFINITY, nan_max)),
        Op::Cast { .. } => args[0].to_owned(),
        Op::Hist { reflect } => crate::hist::eval(args, *reflect)?,
        Op::Custom(c) => {
            let ty = crate::types::TensorType::new(crate::types::DType::F64, out.clone());
            c.0.eval(args, &ty)?
        }
    })
}

/// Reduces `axes` one at a time, highest first so that lower axis numbers stay valid.
fn reduce(x: &ArrayViewD<'_, f64>, axes: &[usize], lane: impl Fn(ArrayView1<'_, f64>) -> f64) -> ArrayD<f64> {
    let mut value = x.to_owned();
    for &axis in axes.iter().rev() {
        value = value.map_axis(Axis(axis), &lane);
    }
    value
}

/// A maximum that propagates NaN, so that a NaN never hides behind a larger number.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Scalar semantics of the unary ops.
pub fn unary(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x * 0.0
            }
        }
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Recip => 1.0 / x,
        // +0 for every non-positive input (never −0), NaN for NaN.
        UnaryOp::Relu => {
            if x > 0.0 || x.is_nan() {
                x
            } else {
                0.0
            }
        }
        UnaryOp::Sigmoid => special::sigmoid(x),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Softplus => special::softplus(x),
        UnaryOp::NormCdf => special::norm_cdf(x),
        UnaryOp::NormPdf => special::norm_pdf(x),
        UnaryOp::Lgamma => special::lgamma(x),
        UnaryOp::Polygamma(n) => special::polygamma(n, x),
    }
}

/// Scalar semantics of the binary ops.
pub fn binary(op: BinaryOp, x: f64, y: f64) -> f64 {
    match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Pow => x.powf(y),
        BinaryOp::Max => {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else {
                x.max(y)
            }
        }
        BinaryOp::Min => {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else {
                x.min(y)
            }
        }
    }
}

/// Scalar semantics of the comparisons: 1.0 for true, 0.0 for false.
pub fn compare(op: CmpOp, x: f64, y: f64) -> f64 {
    let truth = match op {
        CmpOp::Lt => x < y,
        CmpOp::Le => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::Ge => x >= y,
        CmpOp::Eq => x == y,
        CmpOp::Ne => x != y,
    };
    if truth {
        1.0
    } else {
        0.0
    }
}
