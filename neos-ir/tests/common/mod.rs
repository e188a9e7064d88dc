//! Loading tests/data/reference/ and small conversions, shared by the test files.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use ndarray::{ArrayD, IxDyn};
use neos_ir::histfactory::ParameterConfig;
use neos_ir::Bindings;
use serde_json::Value;

/// A reference file from tests/data/reference/ (the Python packages' numbers, kept in the repository).
pub fn reference(file: &str) -> Value {
    let path = format!("{}/../tests/data/reference/{file}", env!("CARGO_MANIFEST_DIR"));
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

/// Templates of a three-bin model with every kind of uncertainty: signal and its MC
/// uncertainty, background with up/down templates, normsys factors (scalars), a shapesys
/// uncertainty and the background's MC uncertainty.
pub const TEMPLATES: [(&str, &[f64]); 9] = [
    ("sig", &[2.0, 5.0, 9.0]),
    ("sig_stat", &[0.4, 0.6, 0.9]),
    ("bkg", &[12.0, 20.0, 22.0]),
    ("bkg_hi", &[13.0, 21.5, 22.5]),
    ("bkg_lo", &[11.5, 18.0, 21.0]),
    ("k_hi", &[1.08]),
    ("k_lo", &[0.94]),
    ("bkg_unc", &[2.0, 3.0, 2.5]),
    ("bkg_stat", &[1.0, 1.2, 1.5]),
];

/// [`TEMPLATES`] bound by name, one-value templates as scalars.
pub fn template_bindings() -> Bindings {
    let mut bindings = Bindings::new();
    for (n, v) in TEMPLATES {
        bindings.set(n, if v.len() == 1 { ndarray::arr0(v[0]).into_dyn() } else { arr(v) });
    }
    bindings
}

/// The measurement config of a luminosity known to 5%.
pub fn lumi_config() -> ParameterConfig {
    ParameterConfig { name: "lumi".into(), auxdata: Some(vec![1.0]), sigmas: Some(vec![0.05]), ..Default::default() }
}
