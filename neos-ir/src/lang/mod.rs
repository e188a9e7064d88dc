//! The `neos!` language without its syntax: a span-free description of an analysis
//! ([`Analysis`]), its lowering to one IR graph ([`lower`]) and the later stages
//! ([`compile`]: autodiff and simplification, with every stage printable).
//!
//! The lowered graph's named outputs are, per objective `o`, `loss_<o>` and `grad_<o>_<leaf>`
//! for every parameter leaf; `metric_<m>` per metric; `value_<name>` per `let`; and
//! `edges_<param>` per bin-edges parameter. [`Lowered::entries`] groups them into the entry
//! points generated code offers.

mod desc;
mod lower;
mod stages;

pub use desc::{
    Across, Activation, Analysis, BinOp, Channel, Expr, ExprKind, Init, Input, Knob, Let, Loc, Metric, Mlp, Model,
    Modifier, ModifierType, Objective, Param, ParamKind, ParameterConfig, Sample, Stat, UnaryFn,
};
pub use lower::{
    edges_output, grad_output, loss_output, lower, metric_output, sample_events_knob, value_output, weights_input,
    Diagnostic, EdgesInfo, LangError, Lowered, Network, ParamLeaf,
};
pub use stages::{compile, Compiled};
