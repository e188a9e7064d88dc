//! The runtime that neos-generated code calls: kernels (GEMM, SIMD elementwise functions, the
//! KDE histogram), the bounded Newton fit solver, optimisers and the trainer.
//!
//! It depends on no other neos crate, so generated code and the compiler stay separate. Its
//! contents arrive with the codegen and fitting work; until then the crate is empty.
