//! The `neos!` procedural macro: it parses an analysis written in the neos language, lowers it
//! to the `neos-ir` graph, differentiates, simplifies and emits specialised Rust.
//!
//! The macro itself arrives with the language work; until then the crate exports nothing.
