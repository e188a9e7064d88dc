//! The workspace reader and the model it builds on arbitrary input: random JSON values and
//! randomly mutated valid workspaces must give a value or a clear error, never a panic, and
//! never a NaN: a workspace that reads and builds gives finite CLs values, or its inference
//! fails with an error that says why.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../tests/support/json_paths.rs"]
mod json_paths;
use json_paths::{at_mut, paths};

use neos_ir::histfactory::{HistoSysCode, NormSysCode, Workspace};
use neos_ir::inference::{Inference, TestStat};
use neos_ir::{eval, Bindings, Builder, DType};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Runs the whole path a command takes: read, build the model of the first measurement,
/// compute CLs on the observed data. Returns the error text or the values.
fn read_and_test(text: &str) -> Result<Vec<f64>, String> {
    let ws = Workspace::from_json(text).map_err(|e| e.to_string())?;
    let measurement = ws.measurement(None).map_err(|e| e.to_string())?;
    let b = Builder::new();
    let model = ws.model(&b, measurement, NormSysCode::Code4, HistoSysCode::Code4p).map_err(|e| e.to_string())?;
    let mut data = ws.observed_main(&model.channels()).map_err(|e| e.to_string())?;
    let aux = model.auxdata().map_err(|e| e.to_string())?.id();
    let n = model.n_main() + model.n_aux();
    let inference = Inference::new(model).map_err(|e| e.to_string())?;
    let d = b.input("data", DType::F64, [n]);
    let h = inference.hypotest(b.scalar(1.0, DType::F64), d, TestStat::QTilde).map_err(|e| e.to_string())?;
    let ids: Vec<_> = std::iter::once(h.cls_obs.id()).chain(h.cls_exp.iter().map(|t| t.id())).collect();
    let g = b.finish().map_err(|e| e.to_string())?;
    data.extend(eval(&g, &Bindings::new(), &[aux]).map_err(|e| e.to_string())?[0].iter());
    let bindings = Bindings::new().with("data", common::arr(&data));
    let values = eval(&g, &bindings, &ids).map_err(|e| e.to_string())?;
    Ok(values.iter().map(|v| v.iter().next().copied().unwrap_or(f64::NAN)).collect())
}

/// The contract: a finite value, or an error message of one line that is not empty.
fn holds(text: &str) -> Result<(), TestCaseError> {
    match read_and_test(text) {
        Ok(values) => {
            prop_assert!(values.iter().all(|v| v.is_finite()), "non-finite CLs {:?} from {}", values, text);
        }
        Err(message) => {
            prop_assert!(!message.trim().is_empty(), "an empty error from {}", text);
        }
    }
    Ok(())
}

fn base() -> Value {
    common::reference("pyhf_workspaces.json")["cases"][0]["workspace"].clone()
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_filter("JSON numbers are finite", |x| x.is_finite()).prop_map(|x| json!(x)),
        (-3i64..100).prop_map(|x| json!(x)),
        "[a-z_\\[\\]0-9]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_string()),
                    Just("data".to_string()),
                    Just("type".to_string()),
                    Just("channels".to_string()),
                    Just("samples".to_string()),
                    Just("modifiers".to_string()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_json_gives_a_value_or_an_error(v in any_json()) {
        holds(&v.to_string())?;
    }

    /// Up to three places of a valid workspace replaced by random values (of any type, or
    /// numbers near the physical range, which keep the workspace readable more often).
    #[test]
    fn mutated_workspaces_give_a_value_or_an_error(
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            any_json(),
            (-10.0f64..400.0).prop_map(|x| json!(x)),
            Just(json!(0.0)),
        ]), 1..4)
    ) {
        let mut ws = base();
        for (place, value) in edits {
            let all = paths(&ws);
            let path = place.get(&all[1..]).clone();
            *at_mut(&mut ws, &path) = value;
        }
        holds(&ws.to_string())?;
    }
}
