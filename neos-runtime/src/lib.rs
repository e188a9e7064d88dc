//! The runtime that neos-generated code and the interpreter call: GEMM, the vectorisable special
//! functions and their slice kernels, the KDE histogram kernel, the HistFactory likelihood from
//! a model's structure with its derivatives and fits (`histfactory`), small dense linear
//! algebra, the bounded Newton fit solver, the entry checks of generated code (`exec`),
//! parameter initialisers, Adam and the trainer, and the figures.
//!
//! It depends on no other neos crate, so generated code and the compiler stay separate.

#[cfg(feature = "files")]
pub mod data;
pub mod error;
pub mod exec;
pub mod fit;
pub mod gemm;
pub mod hist;
pub mod histfactory;
#[cfg(feature = "train")]
pub mod init;
pub mod linalg;
pub mod math;
#[cfg(feature = "plot")]
pub mod plot;
pub mod special;
#[cfg(feature = "train")]
pub mod train;

pub use error::RunError;
pub use fit::{
    minimize, minimize_planned, projected_gradient_norm, FitOptions, FitPlan, FitResult, Objective, StopReason,
};
pub use linalg::{cholesky, cholesky_solve, inverse, solve, LinalgError, Lu};
