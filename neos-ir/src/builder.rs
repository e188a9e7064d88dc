//! A builder that makes graphs pleasant to write by hand: tensors are `Copy` handles with
//! arithmetic operators and methods, operands are broadcast like NumPy, and scalars mix with
//! tensors (`1.0 - s`). Errors are collected rather than returned from every call, and
//! [`Builder::finish`] reports all of them.
//!
//! ```
//! use neos_ir::{Builder, DType, EVENTS};
//! let b = Builder::new();
//! let x = b.input("x", DType::F64, [EVENTS, neos_ir::Dim::Fixed(2)]);
//! let w = b.param("w", DType::F64, [2, 8]);
//! let c = b.param("c", DType::F64, [8]);
//! let hidden = (x.matmul(w) + c).relu();
//! let loss = hidden.sum_all();
//! b.output("loss", loss);
//! let graph = b.finish().unwrap();
//! assert_eq!(graph.ty(graph.output("loss").unwrap()).shape.rank(), 0);
//! ```

use std::cell::{Ref, RefCell};
use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::sync::Arc;

use ndarray::ArrayD;

use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, CmpOp, CustomOp, Op, UnaryOp};
use crate::types::{DType, Dim, Shape, TensorType};

/// Builds a [`Graph`], or extends an existing one (autodiff writes its rules with it).
#[derive(Debug, Default)]
pub struct Builder {
    graph: RefCell<Graph>,
    errors: RefCell<Vec<IrError>>,
}

/// A handle on a node being built. Operations on tensors add nodes to their builder.
#[derive(Clone, Copy)]
pub struct Tensor<'b> {
    b: &'b Builder,
    id: NodeId,
}

impl fmt::Debug for Tensor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor(%{}: {})", self.id.index(), self.ty())
    }
}

impl Builder {
    pub fn new() -> Self {
        Builder::default()
    }

    /// Continues building on an existing graph.
    pub fn from_graph(graph: Graph) -> Self {
        Builder { graph: RefCell::new(graph), errors: RefCell::new(Vec::new()) }
    }

    /// The graph, or every error met while building it.
    pub fn finish(self) -> Result<Graph> {
        let mut errors = self.errors.into_inner();
        match errors.len() {
            0 => Ok(self.graph.into_inner()),
            1 => Err(errors.remove(0)),
            _ => Err(IrError::Many(errors)),
        }
    }

    /// Whether any operation so far has failed.
    pub fn has_errors(&self) -> bool {
        !self.errors.borrow().is_empty()
    }

    /// The first error met so far, if any.
    pub fn first_error(&self) -> Option<IrError> {
        self.errors.borrow().first().cloned()
    }

    /// Read access to the graph built so far.
    pub fn graph(&self) -> Ref<'_, Graph> {
        self.graph.borrow()
    }

    /// The input, param or knob of this name.
    pub fn leaf(&self, name: &str) -> Option<Tensor<'_>> {
        let id = self.graph.borrow().find_leaf(name)?;
        Some(Tensor { b: self, id })
    }

    /// A tensor handle for a node of the graph.
    pub fn tensor(&self, id: NodeId) -> Tensor<'_> {
        if let Err(e) = self.graph.borrow().check(id) {
            self.errors.borrow_mut().push(e);
        }
        Tensor { b: self, id }
    }

    fn record(&self, result: Result<NodeId>, fallback: NodeId) -> Tensor<'_> {
        match result {
            Ok(id) => Tensor { b: self, id },
            Err(e) => {
                self.errors.borrow_mut().push(e);
                Tensor { b: self, id: fallback }
            }
        }
    }

    fn declared(&self, result: Result<NodeId>, dtype: DType) -> Tensor<'_> {
        match result {
            Ok(id) => Tensor { b: self, id },
            Err(e) => {
                self.errors.borrow_mut().push(e);
                self.scalar(0.0, dtype)
            }
        }
    }

    pub fn input(&self, name: &str, dtype: DType, shape: impl Into<Shape>) -> Tensor<'_> {
        let r = self.graph.borrow_mut().input(name, dtype, shape);
        self.declared(r, dtype)
    }

    pub fn param(&self, name: &str, dtype: DType, shape: impl Into<Shape>) -> Tensor<'_> {
        let r = self.graph.borrow_mut().param(name, dtype, shape);
        self.declared(r, dtype)
    }

    pub fn knob(&self, name: &str, dtype: DType, default: f64) -> Tensor<'_> {
        let r = self.graph.borrow_mut().knob(name, dtype, default);
        self.declared(r, dtype)
    }

    pub fn constant(&self, value: ArrayD<f64>, dtype: DType) -> Tensor<'_> {
        let id = self.graph.borrow_mut().constant(value, dtype);
        Tensor { b: self, id }
    }

    pub fn scalar(&self, value: f64, dtype: DType) -> Tensor<'_> {
        let id = self.graph.borrow_mut().scalar(value, dtype);
        Tensor { b: self, id }
    }

    /// A tensor of the given type filled with `value` (a scalar constant, broadcast).
    pub fn full(&self, value: f64, ty: &TensorType) -> Tensor<'_> {
        self.scalar(value, ty.dtype).broadcast_to(ty.shape.clone())
    }

    /// Applies any operation to the given operands.
    pub fn apply<'b>(&'b self, op: Op, inputs: &[Tensor<'b>]) -> Tensor<'b> {
        if let Some(stranger) = inputs.iter().find(|t| !std::ptr::eq(t.b, self)) {
            let message =
                format!("expected operands from this builder, found %{} from another one", stranger.id.index());
            let fallback = self.scalar(0.0, DType::F64).id;
            return self.record(Err(IrError::Type { op: op.name().into(), message }), fallback);
        }
        let ids: Vec<NodeId> = inputs.iter().map(|t| t.id).collect();
        let fallback = ids.first().copied().unwrap_or(NodeId(0.into()));
        let r = self.graph.borrow_mut().apply(op, &ids);
        if ids.is_empty() && r.is_err() {
            // With no operand to stand in for the failed node, a scalar keeps handles valid.
            let fallback = self.scalar(0.0, DType::F64).id;
            return self.record(r, fallback);
        }
        self.record(r, fallback)
    }

    /// Applies a custom operation.
    pub fn custom<'b>(&'b self, op: CustomOp, inputs: &[Tensor<'b>]) -> Tensor<'b> {
        self.apply(Op::Custom(op), inputs)
    }

    /// `cond ? a : b`, elementwise, broadcasting all three.
    pub fn select<'b>(&'b self, cond: Tensor<'b>, a: Tensor<'b>, b: Tensor<'b>) -> Tensor<'b> {
        let shape = cond.shape().broadcast_with(&a.shape()).and_then(|s| s.broadcast_with(&b.shape()));
        match shape {
            Ok(s) => {
                self.apply(Op::Select, &[cond.broadcast_to(s.clone()), a.broadcast_to(s.clone()), b.broadcast_to(s)])
            }
            Err(message) => self.record(Err(IrError::Type { op: "select".into(), message }), a.id),
        }
    }

    /// Joins tensors along `axis`.
    pub fn concat<'b>(&'b self, parts: &[Tensor<'b>], axis: usize) -> Tensor<'b> {
        self.apply(Op::Concat { axis }, parts)
    }

    /// Stacks tensors of one shape along a new axis.
    pub fn stack<'b>(&'b self, parts: &[Tensor<'b>], axis: usize) -> Tensor<'b> {
        let expanded: Vec<Tensor<'b>> = parts
            .iter()
            .map(|t| {
                let mut dims = t.shape().0;
                dims.insert(axis.min(dims.len()), Dim::Fixed(1));
                t.reshape(Shape(dims))
            })
            .collect();
        self.concat(&expanded, axis)
    }

    /// Names an output of the graph.
    pub fn output(&self, name: &str, t: Tensor<'_>) {
        if let Err(e) = self.graph.borrow_mut().set_output(name, t.id) {
            self.errors.borrow_mut().push(e);
        }
    }
}

impl<'b> Tensor<'b> {
    pub fn id(self) -> NodeId {
        self.id
    }

    pub fn builder(self) -> &'b Builder {
        self.b
    }

    pub fn ty(self) -> TensorType {
        self.b.graph.borrow().ty(self.id).clone()
    }

    pub fn shape(self) -> Shape {
        self.ty().shape
    }

    pub fn dtype(self) -> DType {
        self.ty().dtype
    }

    /// The value of a constant (a workspace's histogram), or `None` for anything computed.
    pub fn constant_value(self) -> Option<Arc<ArrayD<f64>>> {
        match &self.b.graph.borrow().node(self.id).op {
            Op::Const { value } => Some(Arc::clone(value)),
            _ => None,
        }
    }

    fn unary(self, op: UnaryOp) -> Tensor<'b> {
        self.b.apply(Op::Unary(op), &[self])
    }

    pub fn abs(self) -> Self {
        self.unary(UnaryOp::Abs)
    }
    pub fn sign(self) -> Self {
        self.unary(UnaryOp::Sign)
    }
    pub fn exp(self) -> Self {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(self) -> Self {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(self) -> Self {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn recip(self) -> Self {
        self.unary(UnaryOp::Recip)
    }
    pub fn relu(self) -> Self {
        self.unary(UnaryOp::Relu)
    }
    pub fn sigmoid(self) -> Self {
        self.unary(UnaryOp::Sigmoid)
    }
    pub fn tanh(self) -> Self {
        self.unary(UnaryOp::Tanh)
    }
    pub fn softplus(self) -> Self {
        self.unary(UnaryOp::Softplus)
    }
    /// Φ, the standard normal CDF.
    pub fn norm_cdf(self) -> Self {
        self.unary(UnaryOp::NormCdf)
    }
    /// φ, the standard normal density.
    pub fn norm_pdf(self) -> Self {
        self.unary(UnaryOp::NormPdf)
    }
    pub fn lgamma(self) -> Self {
        self.unary(UnaryOp::Lgamma)
    }
    pub fn digamma(self) -> Self {
        self.unary(UnaryOp::Polygamma(0))
    }
    pub fn polygamma(self, n: u32) -> Self {
        self.unary(UnaryOp::Polygamma(n))
    }
    pub fn square(self) -> Self {
        self * self
    }

    /// Applies a binary operation after broadcasting both operands to their common shape.
    pub fn binary(self, op: BinaryOp, rhs: Tensor<'b>) -> Tensor<'b> {
        let (a, b) = self.broadcast_pair(rhs, op.name());
        self.b.apply(Op::Binary(op), &[a, b])
    }

    fn compare(self, op: CmpOp, rhs: Tensor<'b>) -> Tensor<'b> {
        let (a, b) = self.broadcast_pair(rhs, op.name());
        self.b.apply(Op::Compare(op), &[a, b])
    }

    fn broadcast_pair(self, rhs: Tensor<'b>, op: &str) -> (Tensor<'b>, Tensor<'b>) {
        match self.shape().broadcast_with(&rhs.shape()) {
            Ok(s) => (self.broadcast_to(s.clone()), rhs.broadcast_to(s)),
            Err(message) => {
                self.b.errors.borrow_mut().push(IrError::Type { op: op.into(), message });
                (self, self)
            }
        }
    }

    /// A scalar constant of this tensor's dtype.
    pub fn lit(self, v: f64) -> Tensor<'b> {
        self.b.scalar(v, self.dtype())
    }

    pub fn pow(self, rhs: Tensor<'b>) -> Self {
        self.binary(BinaryOp::Pow, rhs)
    }
    pub fn powf(self, p: f64) -> Self {
        self.pow(self.lit(p))
    }
    pub fn maximum(self, rhs: Tensor<'b>) -> Self {
        self.binary(BinaryOp::Max, rhs)
    }
    pub fn minimum(self, rhs: Tensor<'b>) -> Self {
        self.binary(BinaryOp::Min, rhs)
    }
    pub fn lt(self, rhs: Tensor<'b>) -> Self {
        self.compare(CmpOp::Lt, rhs)
    }
    pub fn le(self, rhs: Tensor<'b>) -> Self {
        self.compare(CmpOp::Le, rhs)
    }
    pub fn gt(self, rhs: Tensor<'b>) -> Self {
        self.compare(CmpOp::Gt, rhs)
    }
    pub fn ge(self, rhs: Tensor<'b>) -> Self {
        self.compare(CmpOp::Ge, rhs)
    }
    pub fn eq(self, rhs: Tensor<'b>) -> Self {
        self.compare(CmpOp::Eq, rhs)
    }
    pub fn ne(self, rhs: Tensor<'b>) -> Self {
        self.compare(CmpOp::Ne, rhs)
    }

    pub fn matmul(self, rhs: Tensor<'b>) -> Self {
        self.b.apply(Op::MatMul, &[self, rhs])
    }

    /// The transpose of a matrix.
    pub fn t(self) -> Self {
        self.transpose(vec![1, 0])
    }

    pub fn transpose(self, perm: Vec<usize>) -> Self {
        self.b.apply(Op::Transpose { perm }, &[self])
    }

    /// Broadcasts to `shape`; a no-op when the shape is already `shape`.
    pub fn broadcast_to(self, shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        if self.shape() == shape {
            return self;
        }
        self.b.apply(Op::Broadcast { shape }, &[self])
    }

    /// Reshapes; a no-op when the shape is already `shape`.
    pub fn reshape(self, shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        if self.shape() == shape {
            return self;
        }
        self.b.apply(Op::Reshape { shape }, &[self])
    }

    pub fn slice(self, axis: usize, range: std::ops::Range<usize>) -> Self {
        self.b.apply(Op::Slice { axis, start: range.start, end: range.end }, &[self])
    }

    /// Element `index` along `axis`, removing that axis.
    pub fn index(self, axis: usize, index: usize) -> Self {
        let sliced = self.slice(axis, index..index.saturating_add(1));
        let mut dims = sliced.shape().0;
        if axis < dims.len() {
            dims.remove(axis);
        }
        sliced.reshape(Shape(dims))
    }

    pub fn pad(self, axis: usize, before: usize, after: usize) -> Self {
        self.b.apply(Op::Pad { axis, before, after }, &[self])
    }

    /// Sum over `axes` (any order; duplicates are an error).
    pub fn sum(self, axes: &[usize]) -> Self {
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        self.b.apply(Op::Sum { axes }, &[self])
    }

    /// Sum of all elements.
    pub fn sum_all(self) -> Self {
        let axes: Vec<usize> = (0..self.shape().rank()).collect();
        if axes.is_empty() {
            return self;
        }
        self.sum(&axes)
    }

    /// Mean over `axes` (the events dimension counts its run-time size).
    pub fn mean(self, axes: &[usize]) -> Self {
        let shape = self.shape();
        let fixed: usize = axes.iter().filter_map(|&a| shape.0.get(a).and_then(|d| d.fixed())).product();
        let total = self.sum(axes) / fixed as f64;
        let Some(events) = axes.iter().filter_map(|&a| shape.0.get(a)).find(|d| d.events_group().is_some()) else {
            return total;
        };
        // The number of events is the sum of a ones-vector over the events axis.
        let count = self.lit(1.0).broadcast_to(Shape::new([*events])).sum(&[0]);
        total / count
    }

    pub fn max(self, axes: &[usize]) -> Self {
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        self.b.apply(Op::ReduceMax { axes }, &[self])
    }

    /// The binned kernel density estimate of these values (`relaxed.hist`): counts in the bins
    /// between `edges`, with a normal kernel of width `bandwidth`; see `hist.rs`.
    pub fn hist(self, edges: Tensor<'b>, bandwidth: Tensor<'b>, reflect: bool) -> Self {
        self.b.apply(Op::Hist { reflect }, &[self, edges, bandwidth])
    }

    pub fn cast(self, to: DType) -> Self {
        if self.dtype() == to {
            return self;
        }
        self.b.apply(Op::Cast { to }, &[self])
    }
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $op:expr) => {
        impl<'b> $trait for Tensor<'b> {
            type Output = Tensor<'b>;
            fn $method(self, rhs: Tensor<'b>) -> Tensor<'b> {
                self.binary($op, rhs)
            }
        }
        impl<'b> $trait<f64> for Tensor<'b> {
            type Output = Tensor<'b>;
            fn $method(self, rhs: f64) -> Tensor<'b> {
                self.binary($op, self.lit(rhs))
            }
        }
        impl<'b> $trait<Tensor<'b>> for f64 {
            type Output = Tensor<'b>;
            fn $method(self, rhs: Tensor<'b>) -> Tensor<'b> {
                rhs.lit(self).binary($op, rhs)
            }
        }
    };
}

binary_operator!(Add, add, BinaryOp::Add);
binary_operator!(Sub, sub, BinaryOp::Sub);
binary_operator!(Mul, mul, BinaryOp::Mul);
binary_operator!(Div, div, BinaryOp::Div);

impl<'b> Neg for Tensor<'b> {
    type Output = Tensor<'b>;
    fn neg(self) -> Tensor<'b> {
        self.unary(UnaryOp::Neg)
    }
}
