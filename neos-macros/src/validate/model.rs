//! Validation of the HistFactory model block: channels, samples, modifiers in pyhf's
//! vocabulary, the POI and parameter settings. A second `impl` of the validator, split out of
//! `validate.rs` because the model is a concept of its own.

use super::*;
use neos_ir::histfactory::{FieldShape, Workspace};

/// Where a `model from "…"` path points: relative paths are relative to the crate being
/// compiled (its `Cargo.toml`'s folder), as `include_str!` is for most users' files.
pub(crate) fn resolve_model_path(path: &syn::LitStr) -> std::path::PathBuf {
    let p = std::path::PathBuf::from(path.value());
    if p.is_absolute() {
        return p;
    }
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => std::path::PathBuf::from(dir).join(p),
        None => p,
    }
}

impl Ctx {
    pub(super) fn model(&mut self, m: &ModelAst) -> Model {
        let mut model = Model { at: self.spans.loc(&m.kw), ..Model::default() };
        let mut channels: BTreeSet<String> = BTreeSet::new();
        let mut modifier_names: BTreeSet<String> = BTreeSet::new();
        let mut configs: Vec<(&syn::Ident, &Vec<Setting>)> = Vec::new();
        let mut poi_kw = None;
        let mut measurement: Option<&syn::LitStr> = None;
        for item in &m.items {
            match item {
                ModelItem::Channel(c) => {
                    if !channels.insert(c.name.to_string()) {
                        self.err(&c.name, format!("expected a new channel name, found `{}` twice", c.name));
                        continue;
                    }
                    if c.samples.is_empty() {
                        self.err(&c.name, format!("channel `{}`: expected at least one sample, found none", c.name));
                    }
                    let mut samples = Vec::new();
                    let mut sample_names = BTreeSet::new();
                    for s in &c.samples {
                        if !sample_names.insert(s.name.to_string()) {
                            self.err(
                                &s.name,
                                format!("channel `{}`: expected a new sample name, found `{}` twice", c.name, s.name),
                            );
                            continue;
                        }
                        let nominal = self.expr(&s.nominal);
                        let mut modifiers = Vec::new();
                        let mut names_here = BTreeSet::new();
                        for md in &s.modifiers {
                            if !names_here.insert(md.name.to_string()) {
                                self.err(
                                    &md.name,
                                    format!(
                                        "sample `{}`: expected one modifier named `{}`, found a second",
                                        s.name, md.name
                                    ),
                                );
                                continue;
                            }
                            modifier_names.insert(md.name.to_string());
                            if let Some(modifier) = self.modifier(md) {
                                modifiers.push(modifier);
                            }
                        }
                        if let Some(nominal) = nominal {
                            let at = self.spans.loc(&s.tokens);
                            samples.push(Sample { name: s.name.to_string(), nominal, modifiers, at });
                        }
                    }
                    let at = self.spans.loc(&c.name);
                    model.channels.push(Channel { name: c.name.to_string(), samples, at });
                }
                ModelItem::Poi { kw, name } => {
                    if poi_kw.replace(kw).is_some() {
                        self.err(kw, "expected one `poi` in the model, found a second".into());
                        continue;
                    }
                    let at = self.spans.loc(name);
                    model.poi = Some((name.to_string(), at));
                }
                ModelItem::Parameter { name, settings } => configs.push((name, settings)),
                ModelItem::Interpolation { settings } => {
                    for s in settings {
                        let value = ident_of(&s.value).unwrap_or_default();
                        let listed =
                            |names: Vec<&str>| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" or ");
                        match s.key.to_string().as_str() {
                            "normsys" => match NormSysCode::ALL.into_iter().find(|c| c.name() == value) {
                                Some(code) => model.normsys_code = code,
                                None => self.err(
                                    &s.value,
                                    format!(
                                        "expected {}, found `{}`",
                                        listed(NormSysCode::ALL.map(NormSysCode::name).to_vec()),
                                        tokens(&s.value)
                                    ),
                                ),
                            },
                            "histosys" => match HistoSysCode::ALL.into_iter().find(|c| c.name() == value) {
                                Some(code) => model.histosys_code = code,
                                None => self.err(
                                    &s.value,
                                    format!(
                                        "expected {}, found `{}`",
                                        listed(HistoSysCode::ALL.map(HistoSysCode::name).to_vec()),
                                        tokens(&s.value)
                                    ),
                                ),
                            },
                            key => self.err(&s.key, format!("expected `normsys` or `histosys`, found `{key}`")),
                        }
                    }
                }
                ModelItem::Measurement { kw, name } => {
                    if m.from.is_none() {
                        self.err(kw, "expected `measurement` only in a `model from \"workspace.json\"`, found it in a model of its own".into());
                    } else if measurement.replace(name).is_some() {
                        self.err(kw, "expected one `measurement` in the model, found a second".into());
                    }
                }
                ModelItem::Unknown { kw } => self.err(
                    kw,
                    format!(
                        "expected `channel`, `poi`, `parameter`, `interpolation` or `measurement` in the model, found `{kw}`"
                    ),
                ),
            }
        }
        // A model from a workspace keeps every channel, sample, modifier and setting of it that
        // the block does not replace.
        if let Some(path) = &m.from {
            match self.base_model(path, measurement) {
                Some(base) => {
                    for c in &base.channels {
                        for s in &c.samples {
                            modifier_names.extend(s.modifiers.iter().map(|m| m.name.clone()));
                        }
                    }
                    model = base.spliced(model);
                }
                None => return model,
            }
        } else if m.items.iter().all(|i| !matches!(i, ModelItem::Channel(_))) {
            self.err(&m.kw, "expected at least one channel in the model, found none".into());
        }
        match &model.poi {
            None => self.err(&m.kw, "expected a `poi name;` in the model, found none".into()),
            Some((poi, at)) if !modifier_names.contains(poi) => {
                let known: Vec<&str> = modifier_names.iter().map(String::as_str).collect();
                let e = self.spans.error(
                    *at,
                    &format!("expected the poi to be a modifier of the model ({}), found `{poi}`", known.join(", ")),
                );
                self.errors.push(e);
            }
            Some(_) => {}
        }
        for (name, settings) in configs {
            if !modifier_names.contains(&name.to_string()) {
                let known: Vec<&str> = modifier_names.iter().map(String::as_str).collect();
                self.err(name, format!("expected a parameter of the model ({}), found `{name}`", known.join(", ")));
                continue;
            }
            if let Some(c) = self.parameter_config(name, settings) {
                // The block's setting of a parameter replaces the workspace's.
                model.parameters.retain(|p| p.name != c.name);
                model.parameters.push(c);
            }
        }
        model
    }

    /// The model of a pyhf workspace file (a measurement of it, by default its first), its
    /// histograms as constant arrays, each element located at the path literal; `None` after
    /// reporting why it cannot be read.
    fn base_model(&mut self, path: &syn::LitStr, measurement: Option<&syn::LitStr>) -> Option<Model> {
        let file = resolve_model_path(path);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                let shown = path.value();
                self.err(path, format!("expected a readable pyhf workspace at {shown:?} (relative to the crate's Cargo.toml), found {e}"));
                return None;
            }
        };
        let ws = match Workspace::from_json(&text) {
            Ok(ws) => ws,
            Err(e) => {
                self.err(path, format!("expected a pyhf workspace in {:?}, found an error: {e}", path.value()));
                return None;
            }
        };
        let meas = match ws.measurement(measurement.map(|m| m.value()).as_deref()) {
            Ok(m) => m,
            Err(e) => {
                self.err(
                    measurement.map_or(path as &dyn ToTokens, |m| m as &dyn ToTokens),
                    format!("{:?}: {e}", path.value()),
                );
                return None;
            }
        };
        let at = self.spans.loc(path);
        let spec = ws.spec(meas, NormSysCode::default(), HistoSysCode::default());
        let array = |v: &Vec<f64>| Expr { kind: ExprKind::Array(v.clone()), at };
        let channels = spec
            .channels
            .iter()
            .map(|c| Channel {
                name: c.name.clone(),
                samples: c
                    .samples
                    .iter()
                    .map(|s| Sample {
                        name: s.name.clone(),
                        nominal: array(&s.nominal),
                        modifiers: s
                            .modifiers
                            .iter()
                            .map(|md| Modifier {
                                name: md.name.clone(),
                                ty: md.ty,
                                // Each piece of data in the language's shape: a number for a
                                // normsys factor, an array of the bins otherwise.
                                data: md
                                    .data
                                    .iter()
                                    .zip(md.ty.fields())
                                    .map(|(d, f)| match f.shape {
                                        FieldShape::Scalar => {
                                            Expr { kind: ExprKind::Num(d.first().copied().unwrap_or(f64::NAN)), at }
                                        }
                                        FieldShape::Bins => array(d),
                                    })
                                    .collect(),
                                at,
                            })
                            .collect(),
                        at,
                    })
                    .collect(),
                at,
            })
            .collect();
        let poi = spec.poi.map(|(name, _)| (name, at));
        let parameters = spec.parameters.into_iter().map(|p| ParameterConfig { at, ..p }).collect();
        Some(Model { channels, poi, parameters, at, ..Model::default() })
    }

    /// A modifier, its arguments read by the facts of its type: none, one positional (the
    /// data itself), or named ones (`lo = …, hi = …`).
    fn modifier(&mut self, m: &ModifierAst) -> Option<Modifier> {
        let kind_name = m.kind.to_string();
        let Some(ty) = ModifierType::from_name(&kind_name) else {
            self.err(&m.kind, format!("expected a modifier type ({}), found `{kind_name}`", ModifierType::names()));
            return None;
        };
        let what = format!("{ty} `{}`", m.name);
        let args = m.args.as_deref().unwrap_or(&[]);
        let fields = ty.fields();
        let data = match fields {
            [] => {
                if m.args.is_some() {
                    self.err(&m.tokens, format!("{what}: expected no arguments, found {}", args.len()));
                    return None;
                }
                Vec::new()
            }
            [_] => {
                if args.len() != 1 {
                    let data = ty.describe_data();
                    self.err(&m.tokens, format!("{what}: expected 1 argument ({data}), found {}", args.len()));
                    return None;
                }
                vec![self.expr(&args[0])?]
            }
            _ => {
                let mut given: Vec<Option<&syn::Expr>> = vec![None; fields.len()];
                let mut ok = true;
                let keys: Vec<String> = fields.iter().map(|f| format!("`{} = …`", f.lang)).collect();
                for a in args {
                    let named = match a {
                        syn::Expr::Assign(assign) => ident_of(&assign.left).map(|k| (k, &*assign.right)),
                        _ => None,
                    };
                    match named.and_then(|(k, v)| fields.iter().position(|f| f.lang == k).map(|i| (i, v))) {
                        Some((i, v)) => given[i] = Some(v),
                        None => {
                            self.err(a, format!("{what}: expected {}, found `{}`", keys.join(" or "), tokens(a)));
                            ok = false;
                        }
                    }
                }
                let missing: Vec<&str> =
                    fields.iter().zip(&given).filter(|(_, g)| g.is_none()).map(|(f, _)| f.lang).collect();
                if !missing.is_empty() {
                    self.err(
                        &m.tokens,
                        format!(
                            "{what}: expected {} ({}), found no `{}`",
                            keys.join(" and "),
                            ty.describe_data(),
                            missing.join("` and no `")
                        ),
                    );
                    return None;
                }
                let data: Vec<Option<Expr>> = given.into_iter().flatten().map(|e| self.expr(e)).collect();
                let data: Vec<Expr> = data.into_iter().collect::<Option<_>>()?;
                if !ok {
                    return None;
                }
                data
            }
        };
        let at = self.spans.loc(&m.tokens);
        Some(Modifier { name: m.name.to_string(), ty, data, at })
    }

    fn parameter_config(&mut self, name: &syn::Ident, settings: &[Setting]) -> Option<ParameterConfig> {
        let mut c = ParameterConfig { name: name.to_string(), at: self.spans.loc(name), ..ParameterConfig::default() };
        let mut ok = true;
        for s in settings {
            let key = s.key.to_string();
            match key.as_str() {
                "init" | "auxdata" | "sigmas" => {
                    let values = self.numbers(&s.value);
                    ok &= values.is_some();
                    match key.as_str() {
                        "init" => c.inits = values,
                        "auxdata" => c.auxdata = values,
                        _ => c.sigmas = values,
                    }
                }
                "bounds" => {
                    let pairs = match &s.value {
                        syn::Expr::Array(a) => a.elems.iter().map(|p| self.pair(p)).collect::<Vec<_>>(),
                        other => vec![self.pair(other)],
                    };
                    let pairs: Option<Vec<(f64, f64)>> = pairs.into_iter().collect();
                    ok &= pairs.is_some();
                    c.bounds = pairs;
                }
                "fixed" => match &s.value {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(b), .. }) => c.fixed = Some(b.value),
                    other => {
                        self.err(other, format!("expected `true` or `false`, found `{}`", tokens(other)));
                        ok = false;
                    }
                },
                _ => {
                    self.err(
                        &s.key,
                        format!("expected `init`, `bounds`, `fixed`, `auxdata` or `sigmas`, found `{key}`"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(c)
    }

    /// `(lo, hi)` of number literals.
    fn pair(&mut self, e: &syn::Expr) -> Option<(f64, f64)> {
        match e {
            syn::Expr::Tuple(t) if t.elems.len() == 2 => {
                let lo = self.number(&t.elems[0], "a number literal as the lower bound");
                let hi = self.number(&t.elems[1], "a number literal as the upper bound");
                Some((lo?, hi?))
            }
            other => {
                self.err(other, format!("expected bounds `(low, high)` of number literals, found `{}`", tokens(other)));
                None
            }
        }
    }

    /// A number literal or a list of them.
    fn numbers(&mut self, e: &syn::Expr) -> Option<Vec<f64>> {
        match e {
            syn::Expr::Array(a) => {
                let v: Vec<Option<f64>> = a.elems.iter().map(|x| self.number(x, "a number literal")).collect();
                v.into_iter().collect()
            }
            other => Some(vec![self.number(other, "a number literal or a list of them")?]),
        }
    }
}
