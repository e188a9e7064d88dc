//! pyhf JSON workspaces (schema 1.0.0): reading with errors that name the offending place in
//! the JSON (`channels[0].samples[2].modifiers[1].data.hi_data`), writing back out, and the
//! model of one measurement. Modifier data is read and written by the facts of its type
//! ([`ModifierType::fields`]), so a new type needs nothing here.

use ndarray::Array1;
use serde_json::{json, Map, Value};

use super::model::Model;
use super::spec::{Channel, HistoSysCode, Modifier, ModifierType, NormSysCode, ParameterConfig, Sample, Spec};
use crate::builder::{Builder, Tensor};
use crate::error::{IrError, Result};
use crate::loc::Loc;
use crate::types::DType;

use neos_runtime::histfactory::FieldShape;

/// A measurement: its name, POI and parameter configs.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub name: String,
    pub poi: (String, Loc),
    pub parameters: Vec<ParameterConfig>,
}

/// A pyhf workspace. Its channels are a [`Spec`]'s channels holding numbers (each piece of
/// modifier data a list, a normsys factor a list of one).
#[derive(Clone, Debug, PartialEq)]
pub struct Workspace {
    pub channels: Vec<Channel<Vec<f64>>>,
    pub observations: Vec<(String, Vec<f64>)>,
    pub measurements: Vec<Measurement>,
    pub version: String,
    /// The JSON path of each [`Loc`] handed out (`Loc(0)` is the workspace itself).
    paths: Vec<String>,
}

fn error(path: &str, message: String) -> IrError {
    IrError::Name { message: format!("{path}: {message}") }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// Checks that `v` is an object with every `required` field and no field outside `allowed`
/// (pyhf's schema sets `additionalProperties: false` on every object of a workspace).
fn object<'v>(v: &'v Value, path: &str, allowed: &[&str], required: &[&str]) -> Result<&'v Map<String, Value>> {
    let map = v.as_object().ok_or_else(|| error(path, format!("expected an object, found {}", describe(v))))?;
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(error(path, format!("expected only the fields {}, found `{key}`", allowed.join(", "))));
    }
    if let Some(key) = required.iter().find(|k| !map.contains_key(**k)) {
        return Err(error(path, format!("expected a `{key}` field, found none")));
    }
    Ok(map)
}

/// A non-empty array (pyhf's schema: `minItems: 1`).
fn items<'v>(v: &'v Value, path: &str) -> Result<&'v Vec<Value>> {
    let list = array(v, path)?;
    if list.is_empty() {
        return Err(error(path, "expected at least one entry, found an empty array".into()));
    }
    Ok(list)
}

fn string(v: &Value, path: &str) -> Result<String> {
    v.as_str().map(str::to_string).ok_or_else(|| error(path, format!("expected a string, found {}", describe(v))))
}

fn array<'v>(v: &'v Value, path: &str) -> Result<&'v Vec<Value>> {
    v.as_array().ok_or_else(|| error(path, format!("expected an array, found {}", describe(v))))
}

fn number(v: &Value, path: &str) -> Result<f64> {
    let x = v.as_f64().ok_or_else(|| error(path, format!("expected a number, found {}", describe(v))))?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(error(path, format!("expected a finite number, found {x}")))
    }
}

fn numbers(v: &Value, path: &str) -> Result<Vec<f64>> {
    array(v, path)?.iter().enumerate().map(|(i, x)| number(x, &format!("{path}[{i}]"))).collect()
}

/// A non-empty array of numbers.
fn filled_numbers(v: &Value, path: &str) -> Result<Vec<f64>> {
    items(v, path)?;
    numbers(v, path)
}

fn counts(v: &Value, n: usize, path: &str) -> Result<Vec<f64>> {
    let values = numbers(v, path)?;
    if values.len() != n {
        return Err(error(path, format!("expected {n} values (one per bin), found {}", values.len())));
    }
    Ok(values)
}

/// One piece of modifier data of the given shape, for a channel of `n` bins.
fn modifier_field(v: &Value, shape: FieldShape, n: usize, path: &str) -> Result<Vec<f64>> {
    match shape {
        FieldShape::Scalar => Ok(vec![number(v, path)?]),
        FieldShape::Bins => counts(v, n, path),
    }
}

impl Workspace {
    fn loc(&mut self, path: String) -> Loc {
        self.paths.push(path);
        Loc(self.paths.len() - 1)
    }

    /// The place in the JSON a [`Loc`] of this workspace's specs stands for.
    pub fn path(&self, at: Loc) -> &str {
        self.paths.get(at.0).map_or("workspace", String::as_str)
    }

    /// Prefixes the messages of model errors with the place in the JSON they are about.
    pub fn locate(&self, e: IrError) -> IrError {
        match e {
            IrError::Model { at, message } => IrError::Model { at, message: format!("{}: {message}", self.path(at)) },
            IrError::Many(errors) => IrError::Many(errors.into_iter().map(|e| self.locate(e)).collect()),
            other => other,
        }
    }

    /// Parses a workspace, checking it against pyhf's schema (1.0.0: required and allowed
    /// fields, types, non-empty arrays) and the consistency of names and bin counts.
    pub fn from_json(text: &str) -> Result<Self> {
        let root: Value = serde_json::from_str(text).map_err(|e| error("workspace", format!("expected JSON, {e}")))?;
        let top = ["channels", "measurements", "observations", "version"];
        object(&root, "workspace", &top, &top)?;
        let version = match &root["version"] {
            Value::String(v) if v == "1.0.0" => v.clone(),
            other => return Err(error("version", format!("expected \"1.0.0\", found {}", describe(other)))),
        };
        let mut ws = Workspace {
            channels: Vec::new(),
            observations: Vec::new(),
            measurements: Vec::new(),
            version,
            paths: vec!["workspace".into()],
        };
        for (c, ch) in items(&root["channels"], "channels")?.iter().enumerate() {
            let cpath = format!("channels[{c}]");
            object(ch, &cpath, &["name", "samples"], &["name", "samples"])?;
            let name = string(&ch["name"], &format!("{cpath}.name"))?;
            let mut samples = Vec::new();
            let mut bins = None;
            for (s, sa) in items(&ch["samples"], &format!("{cpath}.samples"))?.iter().enumerate() {
                let spath = format!("{cpath}.samples[{s}]");
                let fields = ["name", "data", "modifiers"];
                object(sa, &spath, &fields, &fields)?;
                let sname = string(&sa["name"], &format!("{spath}.name"))?;
                let data = filled_numbers(&sa["data"], &format!("{spath}.data"))?;
                let n = *bins.get_or_insert(data.len());
                if data.len() != n {
                    return Err(error(
                        &format!("{spath}.data"),
                        format!("expected {n} bins like the channel's first sample, found {}", data.len()),
                    ));
                }
                let mut modifiers = Vec::new();
                for (m, mo) in array(&sa["modifiers"], &format!("{spath}.modifiers"))?.iter().enumerate() {
                    let mpath = format!("{spath}.modifiers[{m}]");
                    modifiers.push(ws.read_modifier(mo, n, &mpath)?);
                }
                let at = ws.loc(spath);
                samples.push(Sample { name: sname, nominal: data, modifiers, at });
            }
            let at = ws.loc(cpath);
            ws.channels.push(Channel { name, samples, at });
        }
        for (o, ob) in items(&root["observations"], "observations")?.iter().enumerate() {
            let opath = format!("observations[{o}]");
            object(ob, &opath, &["name", "data"], &["name", "data"])?;
            let name = string(&ob["name"], &format!("{opath}.name"))?;
            let data = filled_numbers(&ob["data"], &format!("{opath}.data"))?;
            if ws.observations.iter().any(|(n, _)| *n == name) {
                return Err(error(
                    &opath,
                    format!("expected one observation per channel, found a second for `{name}`"),
                ));
            }
            if let Some((i, x)) = data.iter().enumerate().find(|(_, x)| **x < 0.0) {
                return Err(error(
                    &format!("{opath}.data[{i}]"),
                    format!("expected a count of events (≥ 0), found {x}"),
                ));
            }
            ws.observations.push((name, data));
        }
        for channel in &ws.channels {
            let n = channel.samples.first().map_or(0, |s| s.nominal.len());
            match ws.observations.iter().find(|(o, _)| *o == channel.name) {
                None => {
                    return Err(error(
                        "observations",
                        format!("expected an observation for channel `{}`, found none", channel.name),
                    ))
                }
                Some((_, d)) if d.len() != n => {
                    return Err(error(
                        "observations",
                        format!("channel `{}`: expected {n} observed counts, found {}", channel.name, d.len()),
                    ))
                }
                Some(_) => {}
            }
        }
        for (m, me) in items(&root["measurements"], "measurements")?.iter().enumerate() {
            let mpath = format!("measurements[{m}]");
            let measurement = ws.read_measurement(me, &mpath)?;
            if ws.measurements.iter().any(|other| other.name == measurement.name) {
                return Err(error(
                    &mpath,
                    format!("expected unique measurement names, found `{}` a second time", measurement.name),
                ));
            }
            ws.measurements.push(measurement);
        }
        Ok(ws)
    }

    /// One modifier of a sample of `n` bins: its data read by the facts of its type.
    fn read_modifier(&mut self, mo: &Value, n: usize, mpath: &str) -> Result<Modifier<Vec<f64>>> {
        let fields = ["name", "type", "data"];
        object(mo, mpath, &fields, &fields)?;
        let name = string(&mo["name"], &format!("{mpath}.name"))?;
        let kind = string(&mo["type"], &format!("{mpath}.type"))?;
        let ty = ModifierType::from_name(&kind).ok_or_else(|| {
            error(&format!("{mpath}.type"), format!("expected one of {}, found `{kind}`", ModifierType::names()))
        })?;
        if ty.needs_measurement_config() && name != ty.name() {
            // pyhf's schema names the luminosity modifier `lumi`, always.
            return Err(error(&format!("{mpath}.name"), format!("expected a {ty} named `{ty}`, found `{name}`")));
        }
        let dpath = format!("{mpath}.data");
        let value = &mo["data"];
        let specs = ty.fields();
        let keys: Vec<&str> = specs.iter().filter_map(|f| f.json).collect();
        let data = match specs {
            [] if value.is_null() => Vec::new(),
            [] => return Err(error(&dpath, format!("expected null (a {ty} has no data), found {}", describe(value)))),
            [f] if f.json.is_none() => vec![modifier_field(value, f.shape, n, &dpath)?],
            _ => {
                object(value, &dpath, &keys, &keys)?;
                specs
                    .iter()
                    .map(|f| {
                        let key = f.json.unwrap_or_default();
                        modifier_field(&value[key], f.shape, n, &format!("{dpath}.{key}"))
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        };
        let at = self.loc(mpath.to_string());
        Ok(Modifier { name, ty, data, at })
    }

    fn read_measurement(&mut self, me: &Value, mpath: &str) -> Result<Measurement> {
        object(me, mpath, &["name", "config"], &["name", "config"])?;
        let name = string(&me["name"], &format!("{mpath}.name"))?;
        let config = &me["config"];
        let cpath = format!("{mpath}.config");
        object(config, &cpath, &["poi", "parameters"], &["poi", "parameters"])?;
        let poi = string(&config["poi"], &format!("{cpath}.poi"))?;
        let poi_at = self.loc(format!("{cpath}.poi"));
        let mut parameters: Vec<ParameterConfig> = Vec::new();
        for (p, pa) in array(&config["parameters"], &format!("{cpath}.parameters"))?.iter().enumerate() {
            let ppath = format!("{cpath}.parameters[{p}]");
            let keys = ["name", "inits", "bounds", "auxdata", "factors", "sigmas", "fixed"];
            object(pa, &ppath, &keys, &["name"])?;
            let list_of = |key: &str| -> Result<Option<Vec<f64>>> {
                let path = format!("{ppath}.{key}");
                pa.get(key).map(|v| filled_numbers(v, &path)).transpose()
            };
            let bounds = match pa.get("bounds") {
                None => None,
                Some(v) => Some(
                    items(v, &format!("{ppath}.bounds"))?
                        .iter()
                        .enumerate()
                        .map(|(i, pair)| {
                            let bpath = format!("{ppath}.bounds[{i}]");
                            match numbers(pair, &bpath)?.as_slice() {
                                [lo, hi] if lo <= hi => Ok((*lo, *hi)),
                                [lo, hi] => Err(error(&bpath, format!("expected low ≤ high, found [{lo}, {hi}]"))),
                                other => {
                                    Err(error(&bpath, format!("expected [low, high], found {} numbers", other.len())))
                                }
                            }
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
            };
            let fixed = match pa.get("fixed") {
                None => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(other) => {
                    return Err(error(
                        &format!("{ppath}.fixed"),
                        format!("expected true or false, found {}", describe(other)),
                    ))
                }
            };
            let name = string(&pa["name"], &format!("{ppath}.name"))?;
            if parameters.iter().any(|q| q.name == name) {
                return Err(error(&ppath, format!("expected one config per parameter, found a second for `{name}`")));
            }
            let (inits, auxdata, sigmas, factors) =
                (list_of("inits")?, list_of("auxdata")?, list_of("sigmas")?, list_of("factors")?);
            let at = self.loc(ppath);
            parameters.push(ParameterConfig { name, inits, bounds, fixed, auxdata, sigmas, factors, at });
        }
        Ok(Measurement { name, poi: (poi, poi_at), parameters })
    }

    /// The workspace as pyhf JSON.
    pub fn to_json(&self) -> String {
        let datum = |d: &Vec<f64>, shape: FieldShape| match shape {
            FieldShape::Scalar => json!(d.first().copied().unwrap_or(f64::NAN)),
            FieldShape::Bins => json!(d),
        };
        let root = document(&self.channels, &self.observations, &self.measurements, &self.version, &datum);
        serde_json::to_string_pretty(&root).unwrap_or_default()
    }

    /// The named measurement, or the first one when no name is given.
    pub fn measurement(&self, name: Option<&str>) -> Result<&Measurement> {
        match name {
            None => self
                .measurements
                .first()
                .ok_or_else(|| error("measurements", "expected a measurement, found none".into())),
            Some(n) => self.measurements.iter().find(|m| m.name == n).ok_or_else(|| {
                let names: Vec<String> = self.measurements.iter().map(|m| format!("`{}`", m.name)).collect();
                error("measurements", format!("expected a measurement named `{n}`, found only {}", names.join(", ")))
            }),
        }
    }

    /// The model specification of one measurement, with the workspace's numbers.
    pub fn spec(
        &self,
        measurement: &Measurement,
        normsys_code: NormSysCode,
        histosys_code: HistoSysCode,
    ) -> Spec<Vec<f64>> {
        Spec {
            channels: self.channels.clone(),
            poi: Some(measurement.poi.clone()),
            parameters: measurement.parameters.clone(),
            normsys_code,
            histosys_code,
            at: Loc(0),
        }
    }

    /// The model of one measurement, with the histograms as constants of `b`; errors name
    /// their place in the JSON.
    pub fn model<'b>(
        &self,
        b: &'b Builder,
        measurement: &Measurement,
        normsys_code: NormSysCode,
        histosys_code: HistoSysCode,
    ) -> Result<Model<'b>> {
        let spec = self.spec(measurement, normsys_code, histosys_code);
        let spec: Spec<Tensor<'b>> = spec.map(|v| b.constant(Array1::from(v.clone()).into_dyn(), DType::F64));
        Model::new(spec).map_err(|e| self.locate(e))
    }

    /// The observed main data in the order of `channels` (as [`Model::channels`] gives it).
    pub fn observed_main(&self, channels: &[(&str, usize)]) -> Result<Vec<f64>> {
        let mut out = Vec::new();
        for (name, _) in channels {
            let (_, data) = self.observations.iter().find(|(o, _)| o == name).ok_or_else(|| {
                error("observations", format!("expected an observation for channel `{name}`, found none"))
            })?;
            out.extend(data);
        }
        Ok(out)
    }
}

/// A workspace document in pyhf's layout, each piece of data written by `datum` (numbers, or
/// the placeholders of an export template) given its shape.
pub(crate) fn document<D>(
    channels: &[Channel<D>],
    observations: &[(String, D)],
    measurements: &[Measurement],
    version: &str,
    datum: &dyn Fn(&D, FieldShape) -> Value,
) -> Value {
    let channels: Vec<Value> = channels
        .iter()
        .map(|channel| {
            let samples: Vec<Value> = channel
                .samples
                .iter()
                .map(|s| {
                    let modifiers: Vec<Value> = s
                        .modifiers
                        .iter()
                        .map(|m| json!({"name": m.name, "type": m.ty.name(), "data": modifier_json(m, datum)}))
                        .collect();
                    json!({"name": s.name, "data": datum(&s.nominal, FieldShape::Bins), "modifiers": modifiers})
                })
                .collect();
            json!({"name": channel.name, "samples": samples})
        })
        .collect();
    let observations: Vec<Value> =
        observations.iter().map(|(n, d)| json!({"name": n, "data": datum(d, FieldShape::Bins)})).collect();
    let measurements: Vec<Value> = measurements
        .iter()
        .map(|m| {
            let parameters: Vec<Value> = m
                .parameters
                .iter()
                .map(|p| {
                    let mut obj = Map::new();
                    obj.insert("name".into(), json!(p.name));
                    if let Some(v) = &p.inits {
                        obj.insert("inits".into(), json!(v));
                    }
                    if let Some(v) = &p.bounds {
                        obj.insert("bounds".into(), json!(v.iter().map(|(a, b)| [*a, *b]).collect::<Vec<_>>()));
                    }
                    if let Some(v) = p.fixed {
                        obj.insert("fixed".into(), json!(v));
                    }
                    if let Some(v) = &p.auxdata {
                        obj.insert("auxdata".into(), json!(v));
                    }
                    if let Some(v) = &p.sigmas {
                        obj.insert("sigmas".into(), json!(v));
                    }
                    if let Some(v) = &p.factors {
                        obj.insert("factors".into(), json!(v));
                    }
                    Value::Object(obj)
                })
                .collect();
            json!({"name": m.name, "config": {"poi": m.poi.0, "parameters": parameters}})
        })
        .collect();
    json!({
        "channels": channels,
        "observations": observations,
        "measurements": measurements,
        "version": version,
    })
}

/// A modifier's data as pyhf writes it: null, the one list, or an object of its fields.
fn modifier_json<D>(m: &Modifier<D>, datum: &dyn Fn(&D, FieldShape) -> Value) -> Value {
    let fields = m.ty.fields();
    match fields {
        [] => Value::Null,
        [f] if f.json.is_none() => m.data.first().map_or(Value::Null, |d| datum(d, f.shape)),
        _ => Value::Object(
            fields
                .iter()
                .zip(&m.data)
                .map(|(f, d)| (f.json.unwrap_or("data").to_string(), datum(d, f.shape)))
                .collect(),
        ),
    }
}
