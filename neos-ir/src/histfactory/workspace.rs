//! pyhf JSON workspaces (schema 1.0.0): reading with errors that name the offending place in
//! the JSON (`channels[0].samples[2].modifiers[1].data.hi_data`), writing back out, and turning
//! a workspace and one of its measurements into a [`Spec`].

use ndarray::ArrayD;
use serde_json::{json, Map, Value};

use super::interp::{HistoSysCode, NormSysCode};
use super::spec::{Channel, Modifier, ModifierKind, ParameterConfig, Sample, Spec};
use crate::builder::Builder;
use crate::error::{IrError, Result};
use crate::types::DType;

/// A modifier as the workspace stores it.
#[derive(Clone, Debug, PartialEq)]
pub enum WsModifier {
    NormFactor,
    ShapeFactor,
    Lumi,
    NormSys { hi: f64, lo: f64 },
    HistoSys { hi_data: Vec<f64>, lo_data: Vec<f64> },
    StatError(Vec<f64>),
    ShapeSys(Vec<f64>),
}

/// A sample as the workspace stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct WsSample {
    pub name: String,
    pub data: Vec<f64>,
    pub modifiers: Vec<(String, WsModifier)>,
}

/// A measurement: its name, POI and parameter configs.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub name: String,
    pub poi: String,
    pub parameters: Vec<ParameterConfig>,
}

/// A pyhf workspace.
#[derive(Clone, Debug, PartialEq)]
pub struct Workspace {
    pub channels: Vec<(String, Vec<WsSample>)>,
    pub observations: Vec<(String, Vec<f64>)>,
    pub measurements: Vec<Measurement>,
    pub version: String,
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

fn field<'v>(obj: &'v Value, key: &str, path: &str) -> Result<&'v Value> {
    match obj {
        Value::Object(map) => map.get(key).ok_or_else(|| error(path, format!("expected a `{key}` field, found none"))),
        other => Err(error(path, format!("expected an object, found {}", describe(other)))),
    }
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

fn counts(v: &Value, n: usize, path: &str) -> Result<Vec<f64>> {
    let values = numbers(v, path)?;
    if values.len() != n {
        return Err(error(path, format!("expected {n} values (one per bin), found {}", values.len())));
    }
    Ok(values)
}

impl Workspace {
    /// Parses a workspace, checking its structure and the consistency of bin counts.
    pub fn from_json(text: &str) -> Result<Self> {
        let root: Value = serde_json::from_str(text).map_err(|e| error("workspace", format!("expected JSON, {e}")))?;
        let mut channels = Vec::new();
        for (c, ch) in array(field(&root, "channels", "workspace")?, "channels")?.iter().enumerate() {
            let cpath = format!("channels[{c}]");
            let name = string(field(ch, "name", &cpath)?, &format!("{cpath}.name"))?;
            let mut samples = Vec::new();
            let mut bins = None;
            for (s, sa) in array(field(ch, "samples", &cpath)?, &format!("{cpath}.samples"))?.iter().enumerate() {
                let spath = format!("{cpath}.samples[{s}]");
                let sname = string(field(sa, "name", &spath)?, &format!("{spath}.name"))?;
                let data = numbers(field(sa, "data", &spath)?, &format!("{spath}.data"))?;
                let n = *bins.get_or_insert(data.len());
                if data.len() != n || n == 0 {
                    return Err(error(
                        &format!("{spath}.data"),
                        format!("expected {} bins like the channel's first sample, found {}", n.max(1), data.len()),
                    ));
                }
                let mut modifiers = Vec::new();
                for (m, mo) in array(field(sa, "modifiers", &spath)?, &format!("{spath}.modifiers"))?.iter().enumerate()
                {
                    let mpath = format!("{spath}.modifiers[{m}]");
                    let mname = string(field(mo, "name", &mpath)?, &format!("{mpath}.name"))?;
                    let kind = string(field(mo, "type", &mpath)?, &format!("{mpath}.type"))?;
                    let dpath = format!("{mpath}.data");
                    let data = mo.get("data").unwrap_or(&Value::Null);
                    let modifier = match kind.as_str() {
                        "normfactor" => WsModifier::NormFactor,
                        "shapefactor" => WsModifier::ShapeFactor,
                        "lumi" => WsModifier::Lumi,
                        "normsys" => WsModifier::NormSys {
                            hi: number(field(data, "hi", &dpath)?, &format!("{dpath}.hi"))?,
                            lo: number(field(data, "lo", &dpath)?, &format!("{dpath}.lo"))?,
                        },
                        "histosys" => WsModifier::HistoSys {
                            hi_data: counts(field(data, "hi_data", &dpath)?, n, &format!("{dpath}.hi_data"))?,
                            lo_data: counts(field(data, "lo_data", &dpath)?, n, &format!("{dpath}.lo_data"))?,
                        },
                        "staterror" => WsModifier::StatError(counts(data, n, &dpath)?),
                        "shapesys" => WsModifier::ShapeSys(counts(data, n, &dpath)?),
                        other => {
                            return Err(error(
                                &format!("{mpath}.type"),
                                format!(
                                    "expected one of normfactor, shapefactor, lumi, normsys, histosys, staterror, shapesys, found `{other}`"
                                ),
                            ))
                        }
                    };
                    modifiers.push((mname, modifier));
                }
                samples.push(WsSample { name: sname, data, modifiers });
            }
            channels.push((name, samples));
        }
        let mut observations = Vec::new();
        for (o, ob) in array(field(&root, "observations", "workspace")?, "observations")?.iter().enumerate() {
            let opath = format!("observations[{o}]");
            let name = string(field(ob, "name", &opath)?, &format!("{opath}.name"))?;
            let data = numbers(field(ob, "data", &opath)?, &format!("{opath}.data"))?;
            observations.push((name, data));
        }
        for (name, samples) in &channels {
            let n = samples.first().map_or(0, |s| s.data.len());
            match observations.iter().find(|(o, _)| o == name) {
                None => {
                    return Err(error(
                        "observations",
                        format!("expected an observation for channel `{name}`, found none"),
                    ))
                }
                Some((_, d)) if d.len() != n => {
                    return Err(error(
                        "observations",
                        format!("channel `{name}`: expected {n} observed counts, found {}", d.len()),
                    ))
                }
                Some(_) => {}
            }
        }
        let mut measurements = Vec::new();
        for (m, me) in array(field(&root, "measurements", "workspace")?, "measurements")?.iter().enumerate() {
            let mpath = format!("measurements[{m}]");
            let name = string(field(me, "name", &mpath)?, &format!("{mpath}.name"))?;
            let config = field(me, "config", &mpath)?;
            let cpath = format!("{mpath}.config");
            let poi = string(field(config, "poi", &cpath)?, &format!("{cpath}.poi"))?;
            let mut parameters = Vec::new();
            let empty = Vec::new();
            let list = match config.get("parameters") {
                Some(v) => array(v, &format!("{cpath}.parameters"))?,
                None => &empty,
            };
            for (p, pa) in list.iter().enumerate() {
                let ppath = format!("{cpath}.parameters[{p}]");
                let list_of = |key: &str| -> Result<Option<Vec<f64>>> {
                    pa.get(key).map(|v| numbers(v, &format!("{ppath}.{key}"))).transpose()
                };
                let bounds = match pa.get("bounds") {
                    None => None,
                    Some(v) => Some(
                        array(v, &format!("{ppath}.bounds"))?
                            .iter()
                            .enumerate()
                            .map(|(i, pair)| {
                                let bpath = format!("{ppath}.bounds[{i}]");
                                match numbers(pair, &bpath)?.as_slice() {
                                    [lo, hi] if lo <= hi => Ok((*lo, *hi)),
                                    [lo, hi] => Err(error(&bpath, format!("expected low ≤ high, found [{lo}, {hi}]"))),
                                    other => Err(error(
                                        &bpath,
                                        format!("expected [low, high], found {} numbers", other.len()),
                                    )),
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
                parameters.push(ParameterConfig {
                    name: string(field(pa, "name", &ppath)?, &format!("{ppath}.name"))?,
                    inits: list_of("inits")?,
                    bounds,
                    fixed,
                    auxdata: list_of("auxdata")?,
                    sigmas: list_of("sigmas")?,
                });
            }
            measurements.push(Measurement { name, poi, parameters });
        }
        if measurements.is_empty() {
            return Err(error("measurements", "expected at least one measurement, found none".into()));
        }
        let version = root.get("version").and_then(Value::as_str).unwrap_or("1.0.0").to_string();
        Ok(Workspace { channels, observations, measurements, version })
    }

    /// The workspace as pyhf JSON.
    pub fn to_json(&self) -> String {
        let channels: Vec<Value> = self
            .channels
            .iter()
            .map(|(name, samples)| {
                let samples: Vec<Value> = samples
                    .iter()
                    .map(|s| {
                        let modifiers: Vec<Value> = s
                            .modifiers
                            .iter()
                            .map(|(n, m)| {
                                let (kind, data) = match m {
                                    WsModifier::NormFactor => ("normfactor", Value::Null),
                                    WsModifier::ShapeFactor => ("shapefactor", Value::Null),
                                    WsModifier::Lumi => ("lumi", Value::Null),
                                    WsModifier::NormSys { hi, lo } => ("normsys", json!({"hi": hi, "lo": lo})),
                                    WsModifier::HistoSys { hi_data, lo_data } => {
                                        ("histosys", json!({"hi_data": hi_data, "lo_data": lo_data}))
                                    }
                                    WsModifier::StatError(d) => ("staterror", json!(d)),
                                    WsModifier::ShapeSys(d) => ("shapesys", json!(d)),
                                };
                                json!({"name": n, "type": kind, "data": data})
                            })
                            .collect();
                        json!({"name": s.name, "data": s.data, "modifiers": modifiers})
                    })
                    .collect();
                json!({"name": name, "samples": samples})
            })
            .collect();
        let observations: Vec<Value> = self.observations.iter().map(|(n, d)| json!({"name": n, "data": d})).collect();
        let measurements: Vec<Value> = self
            .measurements
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
                        Value::Object(obj)
                    })
                    .collect();
                json!({"name": m.name, "config": {"poi": m.poi, "parameters": parameters}})
            })
            .collect();
        let root = json!({
            "channels": channels,
            "observations": observations,
            "measurements": measurements,
            "version": self.version,
        });
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
                let names: Vec<&str> = self.measurements.iter().map(|m| m.name.as_str()).collect();
                error("measurements", format!("expected a measurement named `{n}`, found only {}", names.join(", ")))
            }),
        }
    }

    /// The model of one measurement, with the histograms as constants of `b`.
    pub fn spec<'b>(
        &self,
        b: &'b Builder,
        measurement: &Measurement,
        normsys_code: NormSysCode,
        histosys_code: HistoSysCode,
    ) -> Spec<'b> {
        let vector =
            |v: &[f64]| b.constant(ArrayD::from_shape_vec(vec![v.len()], v.to_vec()).unwrap_or_default(), DType::F64);
        let scalar = |v: f64| b.scalar(v, DType::F64);
        let channels = self
            .channels
            .iter()
            .map(|(name, samples)| Channel {
                name: name.clone(),
                samples: samples
                    .iter()
                    .map(|s| Sample {
                        name: s.name.clone(),
                        nominal: vector(&s.data),
                        modifiers: s
                            .modifiers
                            .iter()
                            .map(|(n, m)| Modifier {
                                name: n.clone(),
                                kind: match m {
                                    WsModifier::NormFactor => ModifierKind::NormFactor,
                                    WsModifier::ShapeFactor => ModifierKind::ShapeFactor,
                                    WsModifier::Lumi => ModifierKind::Lumi,
                                    WsModifier::NormSys { hi, lo } => {
                                        ModifierKind::NormSys { hi: scalar(*hi), lo: scalar(*lo) }
                                    }
                                    WsModifier::HistoSys { hi_data, lo_data } => {
                                        ModifierKind::HistoSys { hi: vector(hi_data), lo: vector(lo_data) }
                                    }
                                    WsModifier::StatError(d) => ModifierKind::StatError { uncertainties: vector(d) },
                                    WsModifier::ShapeSys(d) => ModifierKind::ShapeSys { uncertainties: vector(d) },
                                },
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Spec {
            channels,
            poi: Some(measurement.poi.clone()),
            parameters: measurement.parameters.clone(),
            normsys_code,
            histosys_code,
        }
    }

    /// The observed main data in the order of `channels` (as [`super::Model::channels`] gives it).
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
