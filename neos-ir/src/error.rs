//! The error type shared by every stage of the IR.

use std::fmt;

/// An error from building, checking, evaluating, differentiating or simplifying a graph.
///
/// Messages follow the project's convention: lowercase, no trailing period, and they say what
/// was expected and what was found.
#[derive(Clone, Debug, PartialEq)]
pub enum IrError {
    /// An operation was applied to operands of the wrong number, dtype or shape.
    Type { op: String, message: String },
    /// A node handle does not belong to the graph.
    UnknownNode { index: usize, len: usize },
    /// A named leaf (input, param, knob) or output was declared twice or not found.
    Name { message: String },
    /// Values bound for evaluation do not match the graph.
    Binding { name: String, message: String },
    /// Evaluation failed (for example a custom operation reported an error).
    Eval { op: String, message: String },
    /// Differentiation failed.
    Autodiff { message: String },
    /// Code generation could not translate the graph.
    Codegen { message: String },
    /// The simplifier could not translate the graph or extracted an ill-typed result.
    Simplify { message: String },
    /// The graph broke one or more of its invariants.
    Verify { problems: Vec<String> },
    /// A HistFactory model is inconsistent; `at` locates the element it is about.
    Model { at: crate::loc::Loc, message: String },
    /// Several errors, in the order they were found (from [`crate::Builder::finish`]).
    Many(Vec<IrError>),
}

impl fmt::Display for IrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IrError::Type { op, message } => write!(f, "`{op}`: {message}"),
            IrError::UnknownNode { index, len } => {
                write!(f, "node %{index} is not in this graph, which has {len} nodes")
            }
            IrError::Name { message } => f.write_str(message),
            IrError::Binding { name, message } => write!(f, "binding `{name}`: {message}"),
            IrError::Eval { op, message } => write!(f, "evaluating `{op}`: {message}"),
            IrError::Autodiff { message } => write!(f, "autodiff: {message}"),
            IrError::Codegen { message } => write!(f, "codegen: {message}"),
            IrError::Simplify { message } => write!(f, "simplify: {message}"),
            IrError::Model { message, .. } => f.write_str(message),
            IrError::Verify { problems } => {
                write!(f, "graph invariants broken: {}", problems.join("; "))
            }
            IrError::Many(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for IrError {}

/// Shorthand used across the crate.
pub type Result<T, E = IrError> = std::result::Result<T, E>;
