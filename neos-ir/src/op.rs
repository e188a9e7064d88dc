//! The closed set of operations. Every pass (`infer`, `eval`, `autodiff`, `simplify`, `print`)
//! matches [`Op`] exhaustively, so adding an operation does not compile until every pass knows
//! what to do with it.

use std::fmt;
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD};

use crate::builder::{Builder, Tensor};
use crate::error::Result;
use crate::types::{DType, Shape, TensorType};

/// Elementwise functions of one operand. Their derivatives are in `autodiff.rs`, one line each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnaryOp {
    Neg,
    Abs,
    /// −1, 0 or 1 (NaN stays NaN); the derivative of `abs`.
    Sign,
    Exp,
    Log,
    Sqrt,
    Recip,
    Relu,
    Sigmoid,
    Tanh,
    /// ln(1 + eˣ), computed without overflow.
    Softplus,
    /// Φ, the standard normal cumulative distribution function.
    NormCdf,
    /// φ, the standard normal density.
    NormPdf,
    /// ln Γ(x), the log-gamma function (x > 0).
    Lgamma,
    /// ψ⁽ⁿ⁾(x), the polygamma function of order n (n = 0 is the digamma function; x > 0). It
    /// exists so that lnΓ can be differentiated any number of times.
    Polygamma(u32),
}

/// Elementwise functions of two operands of identical dtype and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
}

/// Elementwise comparisons. They yield 1.0 where true and 0.0 where false, in the operands'
/// dtype, so masks multiply and `select` reads them without a boolean type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// An operation with a rule of its own: its type, its value and its vector-Jacobian product.
/// Composite nodes such as the profile-likelihood fit implement it (their derivative is the
/// implicit function theorem, not the chain rule through their iterations).
pub trait CustomRule: fmt::Debug + Send + Sync {
    /// A short lowercase name, printed in graphs.
    fn name(&self) -> &str;

    /// The output type for the given operand types, or a message saying what was expected.
    fn infer(&self, inputs: &[&TensorType]) -> std::result::Result<TensorType, String>;

    /// The output value (in `f64`; the interpreter rounds `f32` outputs).
    fn eval(&self, inputs: &[ArrayViewD<'_, f64>], output: &TensorType) -> std::result::Result<ArrayD<f64>, String>;

    /// Adds nodes computing the adjoint of each operand given the output's adjoint. `None`
    /// means a zero adjoint; operands whose `needs` flag is false may be skipped.
    fn vjp<'b>(
        &self,
        b: &'b Builder,
        inputs: &[Tensor<'b>],
        output: Tensor<'b>,
        adjoint: Tensor<'b>,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor<'b>>>>;

    /// Statements computing the node in generated code: they read the operands and write the
    /// result through the expressions of `call`, may add items and program state through the
    /// emitter, and may return early with a `RunError` (`?`). The default says the rule has
    /// no code generator.
    fn emit(
        &self,
        emitter: &mut crate::codegen::Emitter,
        call: &crate::codegen::CustomCall,
    ) -> std::result::Result<proc_macro2::TokenStream, String> {
        let _ = (emitter, call);
        Err(format!("expected a code generator for `{}`, found none (it runs only in the interpreter)", self.name()))
    }
}

/// A shared handle on a [`CustomRule`].
#[derive(Clone, Debug)]
pub struct CustomOp(pub Arc<dyn CustomRule>);

/// One operation of the graph.
#[derive(Clone, Debug)]
pub enum Op {
    /// Event data bound at run time (its shape usually has the events dimension).
    Input {
        name: String,
    },
    /// A trainable parameter.
    Param {
        name: String,
    },
    /// A run-time scalar with a default (bandwidth, luminosity, …).
    Knob {
        name: String,
        default: f64,
    },
    /// A constant tensor, stored in `f64` whatever the node's dtype.
    Const {
        value: Arc<ArrayD<f64>>,
    },
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare(CmpOp),
    /// `select(cond, a, b)`: `a` where `cond` is non-zero, else `b`.
    Select,
    /// `[m, k] · [k, n] → [m, n]`; `k` may be the events dimension (a weight gradient).
    MatMul,
    /// Permutes the axes: output axis `i` is input axis `perm[i]`.
    Transpose {
        perm: Vec<usize>,
    },
    /// NumPy broadcasting to an explicit shape. Elementwise ops require equal shapes, so
    /// every broadcast is a node of its own, and autodiff reduces it back to its source shape.
    Broadcast {
        shape: Shape,
    },
    /// Same elements, new shape (row-major).
    Reshape {
        shape: Shape,
    },
    /// Elements `start..end` along `axis`.
    Slice {
        axis: usize,
        start: usize,
        end: usize,
    },
    /// Zeros added before and after along `axis` (the adjoint of a slice).
    Pad {
        axis: usize,
        before: usize,
        after: usize,
    },
    /// Operands joined along `axis`.
    Concat {
        axis: usize,
    },
    /// Sum over the listed axes (sorted, distinct), which are removed.
    Sum {
        axes: Vec<usize>,
    },
    /// Maximum over the listed axes, which are removed.
    ReduceMax {
        axes: Vec<usize>,
    },
    Cast {
        to: DType,
    },
    /// The binned kernel density estimate `relaxed.hist(values, edges, bandwidth)`; see
    /// `hist.rs`. With `reflect`, kernel mass outside the edges goes to the end bins.
    Hist {
        reflect: bool,
    },
    Custom(CustomOp),
}

impl Op {
    /// The operation's name as printed in graphs and error messages.
    pub fn name(&self) -> &str {
        match self {
            Op::Input { .. } => "input",
            Op::Param { .. } => "param",
            Op::Knob { .. } => "knob",
            Op::Const { .. } => "const",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Compare(c) => c.name(),
            Op::Select => "select",
            Op::MatMul => "matmul",
            Op::Transpose { .. } => "transpose",
            Op::Broadcast { .. } => "broadcast",
            Op::Reshape { .. } => "reshape",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Concat { .. } => "concat",
            Op::Sum { .. } => "sum",
            Op::ReduceMax { .. } => "reduce_max",
            Op::Cast { .. } => "cast",
            Op::Hist { .. } => "hist",
            Op::Custom(c) => c.0.name(),
        }
    }

    /// Whether the op is a leaf (it has no operands and its type is declared, not inferred).
    pub fn is_leaf(&self) -> bool {
        matches!(self, Op::Input { .. } | Op::Param { .. } | Op::Knob { .. } | Op::Const { .. })
    }
}

impl UnaryOp {
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Recip => "recip",
            UnaryOp::Relu => "relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Softplus => "softplus",
            UnaryOp::NormCdf => "normcdf",
            UnaryOp::NormPdf => "normpdf",
            UnaryOp::Lgamma => "lgamma",
            UnaryOp::Polygamma(0) => "digamma",
            UnaryOp::Polygamma(_) => "polygamma",
        }
    }

    /// Every unary op, with the polygamma family represented by its first two orders; used by
    /// exhaustive tests.
    pub const ALL: [UnaryOp; 16] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Recip,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Softplus,
        UnaryOp::NormCdf,
        UnaryOp::NormPdf,
        UnaryOp::Lgamma,
        UnaryOp::Polygamma(0),
        UnaryOp::Polygamma(1),
    ];
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
        }
    }

    pub const ALL: [BinaryOp; 7] =
        [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Max, BinaryOp::Min];
}

impl CmpOp {
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
        }
    }

    pub const ALL: [CmpOp; 6] = [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge, CmpOp::Eq, CmpOp::Ne];
}
