//! Walking a JSON value by paths: every place in a workspace, for tests that mutate each.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{json, Value};

/// Every path into `v` (the keys and indices leading there), the root's empty path first.
pub fn paths(v: &Value) -> Vec<Vec<Value>> {
    fn walk(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        out.push(at.clone());
        match v {
            Value::Object(map) => map.iter().for_each(|(k, c)| {
                at.push(json!(k));
                walk(c, at, out);
                at.pop();
            }),
            Value::Array(items) => items.iter().enumerate().for_each(|(i, c)| {
                at.push(json!(i));
                walk(c, at, out);
                at.pop();
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The value at `path`.
pub fn at_mut<'v>(v: &'v mut Value, path: &[Value]) -> &'v mut Value {
    path.iter().fold(v, |v, k| match k {
        Value::String(s) => &mut v[s.as_str()],
        _ => &mut v[k.as_u64().unwrap() as usize],
    })
}
