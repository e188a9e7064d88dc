//! The runtime that neos-generated code and the interpreter call: small dense linear algebra
//! and the bounded Newton fit solver (kernels, optimisers and the trainer arrive with the
//! codegen and training work).
//!
//! It depends on no other neos crate, so generated code and the compiler stay separate.

pub mod error;
pub mod exec;
pub mod fit;
pub mod gemm;
pub mod hist;
pub mod init;
pub mod linalg;
pub mod math;
pub mod plot;
pub mod train;
pub mod special;

pub use error::RunError;
pub use fit::{
    minimize, minimize_planned, projected_gradient_norm, FitOptions, FitPlan, FitResult, Objective, StopReason,
};
pub use linalg::{cholesky, cholesky_solve, inverse, solve, LinalgError, Lu};
