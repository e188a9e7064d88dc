//! Trained parameters on disk, with their names and shapes, so that other tools (and a later
//! run of the same analysis) can read them without knowing the flat layout.
//!
//! The file is JSON, format `neos-parameters-1`:
//!
//! ```json
//! {
//!   "format": "neos-parameters-1",
//!   "analysis": "Blobs",
//!   "parameters": [
//!     {"name": "nn_w0", "shape": [2, 1024], "values": [ ... row-major ... ]},
//!     {"name": "nn_b0", "shape": [1024], "values": [ ... ]},
//!     {"name": "edges", "shape": [3], "values": [0.25, 0.5, 0.75]}
//!   ]
//! }
//! ```
//!
//! Parameters come in the analysis's order (`PARAMS` of the generated type); a network `nn`
//! has stax's `Dense` layers, weights `nn_w<k>` of shape [inputs, outputs] applied as x·W + b
//! with biases `nn_b<k>`; trainable bin edges hold the inner edges. Values are written with
//! every bit of their f64 (serde_json's shortest round-trip form), so loading gives back the
//! same parameters exactly.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::checkpoint::write_atomically;
use crate::error::RunError;

/// The format name written into every file.
pub const PARAMETERS_FORMAT: &str = "neos-parameters-1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    analysis: String,
    parameters: Vec<Parameter>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameter {
    name: String,
    shape: Vec<usize>,
    values: Vec<f64>,
}

/// Writes the flat parameters `params` of analysis `analysis`, laid out as `layout` (name and
/// shape of each parameter, in order), to `path`, atomically.
pub fn save_params(
    path: impl AsRef<Path>,
    analysis: &str,
    layout: &[(&str, &[usize])],
    params: &[f64],
) -> Result<(), RunError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let total: usize = layout.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    if params.len() != total {
        return Err(RunError::new(
            &name,
            format!("expected {total} parameter values for analysis {analysis}, found {}", params.len()),
        ));
    }
    if let Some(i) = params.iter().position(|v| !v.is_finite()) {
        return Err(RunError::new(&name, format!("expected finite parameters, found {} at index {i}", params[i])));
    }
    let mut offset = 0;
    let parameters = layout
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let values = params[offset..offset + n].to_vec();
            offset += n;
            Parameter { name: name.to_string(), shape: shape.to_vec(), values }
        })
        .collect();
    let file = File { format: PARAMETERS_FORMAT.into(), analysis: analysis.into(), parameters };
    write_atomically(path, |out| {
        serde_json::to_writer_pretty(&mut *out, &file).map_err(std::io::Error::other)?;
        out.write_all(b"\n")
    })
    .map_err(|e| RunError::new(&name, e.to_string()))
}

/// Reads parameters written by [`save_params`] for analysis `analysis` with layout `layout`,
/// as the flat vector the analysis takes; every name, shape and value is checked.
pub fn load_params(path: impl AsRef<Path>, analysis: &str, layout: &[(&str, &[usize])]) -> Result<Vec<f64>, RunError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bad = |message: String| RunError::new(&name, message);
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let file: File = serde_json::from_str(&text).map_err(|e| bad(format!("expected a parameter file, found {e}")))?;
    if file.format != PARAMETERS_FORMAT {
        return Err(bad(format!("expected format {PARAMETERS_FORMAT}, found {}", file.format)));
    }
    if file.analysis != analysis {
        return Err(bad(format!("expected parameters of analysis {analysis}, found {}", file.analysis)));
    }
    if file.parameters.len() != layout.len() {
        let names: Vec<&str> = layout.iter().map(|(n, _)| *n).collect();
        return Err(bad(format!(
            "expected {} parameters ({}), found {}",
            layout.len(),
            names.join(", "),
            file.parameters.len()
        )));
    }
    let mut out = Vec::new();
    for (p, (name, shape)) in file.parameters.iter().zip(layout) {
        if p.name != *name || p.shape != *shape {
            return Err(bad(format!(
                "expected parameter {name} of shape {shape:?}, found {} of shape {:?}",
                p.name, p.shape
            )));
        }
        let n: usize = shape.iter().product();
        if p.values.len() != n {
            return Err(bad(format!("parameter {name}: expected {n} values, found {}", p.values.len())));
        }
        if let Some(i) = p.values.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("parameter {name}: expected finite values, found {} at index {i}", p.values[i])));
        }
        out.extend_from_slice(&p.values);
    }
    Ok(out)
}
