//! A trained analysis written out as a pyhf workspace.
//!
//! The layout of the workspace (channels, samples, modifiers, the measurement with its POI and
//! parameter settings) is known when the analysis is compiled; its numbers (the histograms,
//! the variations, the uncertainties, and the observed data) only when the trained network
//! runs. So the compiler writes a *template*, a workspace in pyhf's layout whose every piece
//! of data is a placeholder `{"$output": k, "$shape": "bins"|"scalar"}` naming the k-th of the
//! program's export outputs, and the program fills it in. Both go through the one writer of
//! the layout, [`super::workspace`]'s document, so the export is what [`Workspace::from_json`]
//! and pyhf read.
//!
//! The observations are the background-only Asimov data at the nominal nuisance values (the
//! data neos's `cls` is computed on), so that pyhf's observed CLs at μ = 1 on the exported
//! workspace is the trained analysis's `cls` metric.
//!
//! [`Workspace::from_json`]: super::Workspace::from_json

use serde_json::{json, Map, Value};

use super::spec::{HistoSysCode, NormSysCode, Spec};
use super::workspace::{document, Measurement};
use neos_runtime::histfactory::FieldShape;

/// The key of a placeholder's output index.
const OUTPUT: &str = "$output";
/// The key of a placeholder's shape: `bins` (an array) or `scalar` (a number).
const SHAPE: &str = "$shape";

/// The template of an analysis's workspace: `spec` holds, for every piece of model data, the
/// index of the output that computes it, and `observations` the output of each channel's
/// observed data. The measurement is named `measurement`.
///
/// pyhf's JSON carries no interpolation codes: a model with codes other than pyhf's defaults
/// (normsys code 4, histosys code 4p) cannot be written as a workspace that means the same,
/// and is refused.
pub fn export_template(
    spec: &Spec<usize>,
    observations: &[(String, usize)],
    measurement: &str,
) -> Result<String, String> {
    if spec.normsys_code != NormSysCode::default() || spec.histosys_code != HistoSysCode::default() {
        return Err(format!(
            "expected pyhf's default interpolation codes (normsys {}, histosys {}) for a workspace, found normsys {} \
             and histosys {}: pyhf workspaces do not carry interpolation codes",
            NormSysCode::default().name(),
            HistoSysCode::default().name(),
            spec.normsys_code.name(),
            spec.histosys_code.name()
        ));
    }
    let Some(poi) = spec.poi.clone() else {
        return Err("expected a model with a POI, found none".into());
    };
    let measurements = [Measurement { name: measurement.to_string(), poi, parameters: spec.parameters.clone() }];
    let placeholder = |k: &usize, shape: FieldShape| {
        let shape = match shape {
            FieldShape::Scalar => "scalar",
            FieldShape::Bins => "bins",
        };
        json!({OUTPUT: k, SHAPE: shape})
    };
    let doc = document(&spec.channels, observations, &measurements, "1.0.0", &placeholder);
    Ok(doc.to_string())
}

/// The workspace of `template` with each placeholder replaced by its output's values, as
/// pretty-printed pyhf JSON; an error names the JSON place of a value that is not finite or
/// does not have the expected shape.
pub fn fill_template(template: &str, outputs: &[&[f64]]) -> Result<String, String> {
    let mut doc: Value =
        serde_json::from_str(template).map_err(|e| format!("expected a workspace template, found {e}"))?;
    fill(&mut doc, outputs, "")?;
    serde_json::to_string_pretty(&doc).map_err(|e| format!("expected to write the workspace, found {e}"))
}

fn fill(v: &mut Value, outputs: &[&[f64]], path: &str) -> Result<(), String> {
    match v {
        Value::Object(map) if map.contains_key(OUTPUT) => *v = placeholder_value(map, outputs, path)?,
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                fill(value, outputs, &format!("{path}.{key}"))?;
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter_mut().enumerate() {
                fill(value, outputs, &format!("{path}[{i}]"))?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
    Ok(())
}

fn placeholder_value(map: &Map<String, Value>, outputs: &[&[f64]], path: &str) -> Result<Value, String> {
    let path = path.trim_start_matches('.');
    let index = map.get(OUTPUT).and_then(Value::as_u64).and_then(|k| usize::try_from(k).ok());
    let Some(values) = index.and_then(|k| outputs.get(k)) else {
        return Err(format!("{path}: expected one of {} outputs, found {:?}", outputs.len(), map.get(OUTPUT)));
    };
    if let Some(i) = values.iter().position(|x| !x.is_finite()) {
        return Err(format!("{path}: expected finite numbers, found {} at index {i}", values[i]));
    }
    match map.get(SHAPE).and_then(Value::as_str) {
        Some("scalar") => match values {
            [x] => Ok(json!(x)),
            _ => Err(format!("{path}: expected one number, found {} values", values.len())),
        },
        _ => Ok(json!(values)),
    }
}
