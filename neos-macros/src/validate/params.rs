//! Validation of the `params` section: networks, free arrays and scalars with their
//! initialisers, and bin edges. A second `impl` of the validator, split out of `validate.rs`
//! because parameters are a concept of their own.

use super::*;

impl Ctx {
    pub(super) fn param(&mut self, p: &ParamAst) -> Option<Param> {
        let kind = self.param_kind(p);
        let declared = match &kind {
            Some(ParamKind::Mlp(mlp)) => {
                Kind::Network { inputs: mlp.sizes[0], softmax: mlp.output == Activation::Softmax }
            }
            Some(_) => Kind::Value,
            None => Kind::Broken,
        };
        if !self.declare(&p.name, declared) {
            return None;
        }
        let at = self.spans.loc(&p.tokens);
        Some(Param { name: p.name.to_string(), kind: kind?, at })
    }

    fn param_kind(&mut self, p: &ParamAst) -> Option<ParamKind> {
        let name = &p.name;
        match (p.function.to_string().as_str(), &p.args) {
            ("mlp", ParamArgs::Mlp { sizes, rest }) => {
                let sizes: Vec<Option<usize>> =
                    sizes.iter().map(|s| self.usize_literal(s, "a layer size (a positive integer literal)")).collect();
                if sizes.len() < 2 {
                    self.err(
                        &p.tokens,
                        format!("network `{name}`: expected at least two layer sizes, `inputs => outputs`, found one"),
                    );
                }
                // `precision = f32|f64` may follow the activations.
                let (options, rest): (Vec<&syn::Expr>, Vec<&syn::Expr>) =
                    rest.iter().partition(|a| matches!(a, syn::Expr::Assign(_)));
                let mut precision = Some(DType::F64);
                for option in options {
                    precision = precision.and(self.network_option(&name.to_string(), option));
                }
                let activations: Vec<Option<Activation>> = rest.iter().map(|a| self.activation(a)).collect();
                if rest.is_empty() || rest.len() > 2 {
                    self.err(
                        &p.tokens,
                        format!(
                            "network `{name}`: expected `mlp(sizes, hidden activation[, output activation][, precision = f32])`, found {} activation(s)",
                            rest.len()
                        ),
                    );
                    return None;
                }
                let precision = precision?;
                let sizes: Vec<usize> = sizes.into_iter().collect::<Option<_>>()?;
                let activations: Vec<Activation> = activations.into_iter().collect::<Option<_>>()?;
                if sizes.len() < 2 {
                    return None;
                }
                if activations[0] == Activation::Softmax {
                    self.err(
                        &rest[0],
                        format!("network `{name}`: expected `softmax` only as the output activation, found it for the hidden layers"),
                    );
                    return None;
                }
                let outputs = sizes[sizes.len() - 1];
                if activations.get(1) == Some(&Activation::Softmax) && outputs < 2 {
                    self.err(
                        &rest[1],
                        format!("network `{name}`: expected 2 or more outputs for `softmax` (its outputs are the bins), found {outputs}"),
                    );
                    return None;
                }
                Some(ParamKind::Mlp(Mlp {
                    sizes,
                    hidden: activations[0],
                    output: activations.get(1).copied().unwrap_or(Activation::Identity),
                    precision,
                }))
            }
            ("bin_edges", ParamArgs::Exprs(args)) => self.bin_edges(p, args),
            ("scalar", ParamArgs::Exprs(args)) => {
                if args.len() != 1 {
                    self.err(&p.tokens, format!("`scalar(init)`: expected 1 argument, found {}", args.len()));
                    return None;
                }
                let init = self.number(&args[0], "a number literal as the initial value")?;
                Some(ParamKind::Array { shape: Vec::new(), init: Init::Constant(init) })
            }
            ("array", ParamArgs::Exprs(args)) => {
                if args.is_empty() || args.len() > 2 {
                    self.err(
                        &p.tokens,
                        format!("`array([dims], init)`: expected 1 or 2 arguments, found {}", args.len()),
                    );
                    return None;
                }
                let shape = match &args[0] {
                    syn::Expr::Array(a) => {
                        let dims: Vec<Option<usize>> =
                            a.elems.iter().map(|d| self.usize_literal(d, "a dimension (an integer literal)")).collect();
                        dims.into_iter().collect::<Option<Vec<usize>>>()?
                    }
                    other => {
                        self.err(other, "expected the shape as a list of integer literals like `[3, 2]`".into());
                        return None;
                    }
                };
                let init = match args.get(1) {
                    None => Init::Constant(0.0),
                    Some(e) => self.init(e, &shape)?,
                };
                Some(ParamKind::Array { shape, init })
            }
            (f, _) => {
                self.err(&p.function, format!("expected `mlp`, `bin_edges`, `scalar` or `array`, found `{f}`"));
                None
            }
        }
    }

    /// A network's `name = value` option: `precision = f32` or `precision = f64`, the element
    /// type of its layers (the statistics after it stay in f64).
    fn network_option(&mut self, network: &str, e: &syn::Expr) -> Option<DType> {
        let syn::Expr::Assign(assign) = e else { return None };
        if ident_of(&assign.left).as_deref() != Some("precision") {
            self.err(
                &assign.left,
                format!("network `{network}`: expected the option `precision`, found `{}`", tokens(&assign.left)),
            );
            return None;
        }
        match ident_of(&assign.right).as_deref() {
            Some("f32") => Some(DType::F32),
            Some("f64") => Some(DType::F64),
            _ => {
                self.err(
                    &assign.right,
                    format!(
                        "network `{network}`: expected `precision = f32` or `precision = f64`, found `{}`",
                        tokens(&assign.right)
                    ),
                );
                None
            }
        }
    }

    fn activation(&mut self, e: &syn::Expr) -> Option<Activation> {
        let name = ident_of(e);
        match Activation::ALL.iter().find(|a| Some(a.name()) == name.as_deref()) {
            Some(a) => Some(*a),
            None => {
                let all: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
                self.err(e, format!("expected an activation ({}), found `{}`", all.join(", "), tokens(e)));
                None
            }
        }
    }

    /// `bin_edges(lo..hi, bins = n[, trainable])` or `bin_edges([e0, e1, …][, trainable])`.
    fn bin_edges(&mut self, p: &ParamAst, args: &[syn::Expr]) -> Option<ParamKind> {
        let mut trainable = false;
        let mut bins = None;
        let mut bins_given = false;
        let mut positional = Vec::new();
        let mut ok = true;
        for a in args {
            match a {
                syn::Expr::Path(_) if ident_of(a).as_deref() == Some("trainable") => trainable = true,
                syn::Expr::Assign(assign) => match ident_of(&assign.left).as_deref() {
                    Some("bins") => {
                        bins_given = true;
                        bins = self.usize_literal(&assign.right, "the number of bins (an integer literal)");
                    }
                    _ => {
                        self.err(
                            &assign.left,
                            format!("expected `bins = n` or `trainable`, found `{}`", tokens(&assign.left)),
                        );
                        ok = false;
                    }
                },
                other => positional.push(other),
            }
        }
        let edges = match positional.as_slice() {
            [syn::Expr::Range(r)] => {
                let lo = r.start.as_deref().and_then(|e| self.number(e, "a number literal as the lowest edge"));
                let hi = r.end.as_deref().and_then(|e| self.number(e, "a number literal as the highest edge"));
                if r.start.is_none() || r.end.is_none() {
                    self.err(r, "expected a range with both ends, like `0.0..1.0`".into());
                }
                let Some(n) = bins else {
                    // A `bins` that was given but is not a literal has been reported already.
                    if bins_given {
                        return None;
                    }
                    self.err(
                        &p.tokens,
                        format!("bin edges `{}`: expected `bins = n` after the range, found none", p.name),
                    );
                    return None;
                };
                let (lo, hi) = (lo?, hi?);
                if n == 0 || !(hi > lo) {
                    self.err(&p.tokens, format!("bin edges `{}`: expected at least one bin between increasing ends, found {n} bins over {lo}..{hi}", p.name));
                    return None;
                }
                (0..=n).map(|k| lo + (hi - lo) * k as f64 / n as f64).collect::<Vec<f64>>()
            }
            [syn::Expr::Array(a)] => {
                if bins.is_some() {
                    self.err(&p.tokens, "expected either explicit edges or a range with `bins`, found both".into());
                }
                let edges: Vec<Option<f64>> =
                    a.elems.iter().map(|e| self.number(e, "a number literal as a bin edge")).collect();
                edges.into_iter().collect::<Option<Vec<f64>>>()?
            }
            _ => {
                self.err(
                    &p.tokens,
                    format!(
                        "bin edges `{}`: expected `bin_edges(lo..hi, bins = n[, trainable])` or `bin_edges([edges][, trainable])`",
                        p.name
                    ),
                );
                return None;
            }
        };
        if edges.len() < 2 || edges.windows(2).any(|w| !(w[1] > w[0])) {
            self.err(
                &p.tokens,
                format!("bin edges `{}`: expected at least two increasing edges, found {edges:?}", p.name),
            );
            return None;
        }
        if trainable && edges.len() < 3 {
            self.err(
                &p.tokens,
                format!("bin edges `{}`: expected at least 2 bins to train the inner edges, found 1", p.name),
            );
            return None;
        }
        ok.then_some(ParamKind::BinEdges { edges, trainable })
    }

    /// An initialiser: a number, `zeros`, `normal(std)`, `glorot` (2-D) or a list of values.
    fn init(&mut self, e: &syn::Expr, shape: &[usize]) -> Option<Init> {
        match e {
            syn::Expr::Path(_) if ident_of(e).as_deref() == Some("zeros") => Some(Init::Constant(0.0)),
            syn::Expr::Path(_) if ident_of(e).as_deref() == Some("glorot") => match shape {
                [fan_in, fan_out] => Some(Init::GlorotNormal { fan_in: *fan_in, fan_out: *fan_out }),
                _ => {
                    self.err(e, format!("expected a 2-D shape for `glorot`, found {shape:?}"));
                    None
                }
            },
            syn::Expr::Call(c) if ident_of(&c.func).as_deref() == Some("normal") && c.args.len() == 1 => {
                let std = self.number(&c.args[0], "a number literal as the standard deviation")?;
                Some(Init::Normal { std })
            }
            syn::Expr::Array(a) => {
                let v: Vec<Option<f64>> = a.elems.iter().map(|x| self.number(x, "a number literal")).collect();
                let v: Vec<f64> = v.into_iter().collect::<Option<_>>()?;
                let n: usize = shape.iter().product();
                if v.len() != n {
                    self.err(e, format!("expected {n} initial values for shape {shape:?}, found {}", v.len()));
                    return None;
                }
                Some(Init::Values(v))
            }
            _ => Some(Init::Constant(self.number(
                e,
                "an initialiser: a number literal, `zeros`, `normal(std)`, `glorot` or a list of numbers",
            )?)),
        }
    }
}
