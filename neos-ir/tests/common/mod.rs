//! Loading ../shared/reference/ and small conversions, shared by the test files.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

/// A reference file from ../shared/reference/ (beside the repository).
pub fn reference(file: &str) -> Value {
    let path = format!("{}/../../shared/reference/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of numbers.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("expected an array, found {v}")).iter().map(|x| x.as_f64().unwrap()).collect()
}

/// A vector as a one-dimensional array.
pub fn arr(values: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).unwrap()
}
