//! The error that generated code and the runtime's entry points report.

use std::fmt;

/// A failure while running compiled code: which operation or entry point failed, and a message
/// saying what was expected and what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunError {
    pub op: String,
    pub message: String,
}

impl RunError {
    pub fn new(op: impl Into<String>, message: impl Into<String>) -> Self {
        RunError { op: op.into(), message: message.into() }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.message)
    }
}

impl std::error::Error for RunError {}
