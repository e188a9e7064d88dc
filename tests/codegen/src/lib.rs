//! Test graphs compiled by neos-ir's code generator at build time (see `build.rs`), and the
//! same graphs for the interpreter, so that tests can run both on the same data.
//!
//! Warnings are errors here: generated code must compile cleanly. Clippy's style lints are
//! allowed, since the emitted loops favour regularity over idiom.

#![deny(warnings)]
#![allow(clippy::all)]

pub mod cases;

/// The generated programs, one module per case.
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/generated.rs"));
}
