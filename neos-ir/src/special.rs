//! Scalar special functions, in `f64`, shared by the interpreter, constant folding and generated
//! code. They live in the runtime so that compiled analyses compute exactly what the interpreter
//! computes.

pub use neos_runtime::special::*;
