//! Placeholder while the simplifier is written.
