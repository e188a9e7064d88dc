//! The neos compiler core.
//!
//! An analysis is a [`Graph`] of tensor operations ([`Op`], a closed set). This crate builds
//! graphs ([`Builder`]), checks them ([`verify()`]), evaluates them ([`eval()`], the reference
//! interpreter), differentiates them symbolically ([`grad()`], [`hvp()`], [`hessian()`]) and
//! simplifies them by equality saturation ([`simplify()`]).

mod autodiff;
mod builder;
mod check;
pub mod codegen;
mod error;
mod eval;
mod fit;
mod graph;
mod hist;
mod infer;
pub mod inference;
pub mod lang;
mod loc;
mod op;
mod print;
pub mod simplify;
pub mod special;
mod types;
mod verify;

pub use autodiff::{grad, grad_in, hessian, hessian_in, hvp};
pub use builder::{Builder, Tensor};
pub use check::{gradcheck, GradCheck, GradReport, Mismatch};
pub use error::{IrError, Result};
pub use eval::{eval, eval_outputs, Bindings};
pub use fit::{fit, inline, solve, FitConfig};
pub use graph::{Graph, Node, NodeId};
pub use infer::infer;
pub use loc::Loc;
pub use op::{BinaryOp, CmpOp, CustomOp, CustomRule, Op, UnaryOp};
pub use print::{print, to_dot};
pub use simplify::{simplify, SimplifyLimits, SimplifyReport};

pub use types::{DType, Dim, EventCounts, Shape, TensorType, EVENTS};
pub use verify::verify;
pub mod histfactory;
