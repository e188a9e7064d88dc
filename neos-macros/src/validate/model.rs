//! Validation of the HistFactory model block: channels, samples, modifiers in pyhf's
//! vocabulary, the POI and parameter settings. A second `impl` of the validator, split out of
//! `validate.rs` because the model is a concept of its own.

use super::*;

impl Ctx {
    pub(super) fn model(&mut self, m: &ModelAst) -> Model {
        let mut model = Model { at: self.spans.loc(&m.kw), ..Model::default() };
        let mut channels: BTreeSet<String> = BTreeSet::new();
        let mut modifier_names: BTreeSet<String> = BTreeSet::new();
        let mut configs: Vec<(&syn::Ident, &Vec<Setting>)> = Vec::new();
        let mut poi_kw = None;
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
                        match (s.key.to_string().as_str(), value.as_str()) {
                            ("normsys", "code1") => model.normsys_code = NormSysCode::Code1,
                            ("normsys", "code4") => model.normsys_code = NormSysCode::Code4,
                            ("histosys", "code0") => model.histosys_code = HistoSysCode::Code0,
                            ("histosys", "code2") => model.histosys_code = HistoSysCode::Code2,
                            ("histosys", "code4p") => model.histosys_code = HistoSysCode::Code4p,
                            ("normsys", _) => {
                                self.err(&s.value, format!("expected `code1` or `code4`, found `{}`", tokens(&s.value)))
                            }
                            ("histosys", _) => self.err(
                                &s.value,
                                format!("expected `code0`, `code2` or `code4p`, found `{}`", tokens(&s.value)),
                            ),
                            (key, _) => self.err(&s.key, format!("expected `normsys` or `histosys`, found `{key}`")),
                        }
                    }
                }
                ModelItem::Unknown { kw } => self.err(
                    kw,
                    format!("expected `channel`, `poi`, `parameter` or `interpolation` in the model, found `{kw}`"),
                ),
            }
        }
        if m.items.iter().all(|i| !matches!(i, ModelItem::Channel(_))) {
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
                model.parameters.push(c);
            }
        }
        model
    }

    fn modifier(&mut self, m: &ModifierAst) -> Option<Modifier> {
        let kind_name = m.kind.to_string();
        let what = format!("{kind_name} `{}`", m.name);
        let args = m.args.as_deref().unwrap_or(&[]);
        let kind = match kind_name.as_str() {
            "normfactor" | "shapefactor" | "lumi" => {
                if m.args.is_some() {
                    self.err(&m.tokens, format!("{what}: expected no arguments, found {}", args.len()));
                    return None;
                }
                match kind_name.as_str() {
                    "normfactor" => ModifierKind::NormFactor,
                    "shapefactor" => ModifierKind::ShapeFactor,
                    _ => ModifierKind::Lumi,
                }
            }
            "normsys" | "histosys" => {
                let mut lo = None;
                let mut hi = None;
                let mut ok = true;
                for a in args {
                    let named = match a {
                        syn::Expr::Assign(assign) => ident_of(&assign.left).map(|k| (k, &*assign.right)),
                        _ => None,
                    };
                    match named {
                        Some((k, v)) if k == "lo" => lo = Some(v),
                        Some((k, v)) if k == "hi" => hi = Some(v),
                        _ => {
                            self.err(a, format!("{what}: expected `lo = …` or `hi = …`, found `{}`", tokens(a)));
                            ok = false;
                        }
                    }
                }
                let missing: Vec<&str> =
                    [("lo", lo.is_none()), ("hi", hi.is_none())].iter().filter(|(_, m)| *m).map(|(n, _)| *n).collect();
                if !missing.is_empty() {
                    let data = if kind_name == "histosys" { "templates" } else { "factors" };
                    self.err(
                        &m.tokens,
                        format!(
                            "{what}: expected `lo = …` and `hi = …` ({data} at α = ∓1), found no `{}`",
                            missing.join("` and no `")
                        ),
                    );
                    return None;
                }
                let (lo, hi) = (lo.and_then(|e| self.expr(e)), hi.and_then(|e| self.expr(e)));
                let (lo, hi) = (lo?, hi?);
                if !ok {
                    return None;
                }
                if kind_name == "normsys" {
                    ModifierKind::NormSys { lo, hi }
                } else {
                    ModifierKind::HistoSys { lo, hi }
                }
            }
            "staterror" | "shapesys" => {
                if args.len() != 1 {
                    self.err(
                        &m.tokens,
                        format!(
                            "{what}: expected 1 argument (the absolute per-bin uncertainties), found {}",
                            args.len()
                        ),
                    );
                    return None;
                }
                let u = self.expr(&args[0])?;
                if kind_name == "staterror" {
                    ModifierKind::StatError(u)
                } else {
                    ModifierKind::ShapeSys(u)
                }
            }
            other => {
                self.err(&m.kind, format!("expected a modifier type ({MODIFIERS}), found `{other}`"));
                return None;
            }
        };
        let at = self.spans.loc(&m.tokens);
        Some(Modifier { name: m.name.to_string(), kind, at })
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
