//! Validation: the syntax tree becomes the span-free description of `neos_ir::lang`, and
//! every mistake found on the way becomes a `syn::Error` at the user's tokens. Nothing stops
//! at the first mistake: each section, entry and expression is checked, an entry that failed
//! is left out, and names it would have defined are still declared so that their uses do not
//! report again.
//!
//! Each element of the description gets a [`Loc`]: an index into [`Spans`], the tokens it came
//! from, so that errors found later (while lowering, say a shape mismatch) point at the user's
//! tokens too.

// The paths are spelled out so that the test and example that include this file by path find
// them too.
#[path = "validate/model.rs"]
mod model;
pub(crate) use model::resolve_model_path;
#[path = "validate/params.rs"]
mod params;
#[path = "validate/stats.rs"]
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use neos_ir::histfactory::{HistoSysCode, NormSysCode};
use neos_ir::lang::{
    Across, Activation, Analysis, BinOp, Channel, Expr, ExprKind, Init, Input, Knob, Let, Loc, Metric, Mlp, Model,
    Modifier, ModifierType, Objective, Param, ParamKind, ParameterConfig, Sample, Stat, UnaryFn,
};
use neos_ir::{DType, SimplifyLimits};
use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::ast::{
    AnalysisAst, InputAst, Item, KnobAst, ModelAst, ModelItem, ModifierAst, ParamArgs, ParamAst, Setting,
};

/// The tokens each [`Loc`] stands for.
#[derive(Default)]
pub struct Spans(Vec<TokenStream>);

impl Spans {
    pub fn loc(&mut self, tokens: &dyn ToTokens) -> Loc {
        self.0.push(tokens.to_token_stream());
        Loc(self.0.len() - 1)
    }

    /// An error at the tokens of `loc`.
    pub fn error(&self, loc: Loc, message: &str) -> syn::Error {
        match self.0.get(loc.0) {
            Some(tokens) => syn::Error::new_spanned(tokens, message),
            None => syn::Error::new(proc_macro2::Span::call_site(), message),
        }
    }
}

/// A validated analysis: its description, where each element came from, and the settings of
/// the later stages.
pub struct Validated {
    pub analysis: Analysis,
    pub spans: Spans,
    pub limits: SimplifyLimits,
}

/// What a name stands for, for checking uses.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Input {
        features: usize,
        weighted: bool,
    },
    Knob,
    Network {
        inputs: usize,
        /// Its outputs go through softmax: they are the bins of `counts`.
        softmax: bool,
    },
    Value,
    /// Declared, but its declaration had an error: uses are not reported again.
    Broken,
}

struct Ctx {
    spans: Spans,
    errors: Vec<syn::Error>,
    scope: BTreeMap<String, Kind>,
    /// An unknown section may have been meant to declare names; its uses are then not reported
    /// as undefined, so that one misspelt keyword gives one error.
    unknown_section: bool,
}

const SECTIONS: &str = "`inputs`, `knobs`, `params`, `let`, `model`, `loss`, `metrics` or `simplify`";
const FUNCTIONS: &str =
    "abs, exp, log, sqrt, relu, sigmoid, tanh, softplus, softmax, sum, mean, std, hist, count, counts, weights or mcstat";
const STATS: &str = "cls, discovery, poi_uncert or bce";

/// Checks the analysis and builds its description, or returns every error found.
pub fn validate(ast: &AnalysisAst) -> Result<Validated, Vec<syn::Error>> {
    let unknown_section = ast.items.iter().any(|i| matches!(i, Item::Unknown { .. }));
    let mut cx = Ctx { spans: Spans::default(), errors: Vec::new(), scope: BTreeMap::new(), unknown_section };
    let at = cx.spans.loc(&ast.name);
    let mut analysis = Analysis { name: ast.name.to_string(), at, ..Analysis::default() };
    let mut limits = SimplifyLimits::default();

    // Each section at most once (lets are many).
    let mut seen: BTreeMap<&str, &syn::Ident> = BTreeMap::new();
    for item in &ast.items {
        let kw = match item {
            Item::Inputs { kw, .. }
            | Item::Knobs { kw, .. }
            | Item::Params { kw, .. }
            | Item::Loss { kw, .. }
            | Item::Metrics { kw, .. }
            | Item::Simplify { kw, .. } => kw,
            Item::Model(m) => &m.kw,
            Item::Let(_) => continue,
            Item::Unknown { kw } => {
                cx.err(kw, format!("expected a section ({SECTIONS}), found `{kw}`"));
                continue;
            }
        };
        let name = section_name(item);
        if seen.insert(name, kw).is_some() {
            cx.err(kw, format!("expected one `{name}` section, found a second"));
        }
    }

    // Declarations first, so that their order does not matter; then the lets in order.
    for item in &ast.items {
        match item {
            Item::Inputs { inputs, .. } => {
                for i in inputs {
                    if let Some(input) = cx.input(i) {
                        analysis.inputs.push(input);
                    }
                }
            }
            Item::Knobs { knobs, .. } => {
                for k in knobs {
                    if let Some(knob) = cx.knob(k) {
                        analysis.knobs.push(knob);
                    }
                }
            }
            Item::Params { params, .. } => {
                for p in params {
                    if let Some(param) = cx.param(p) {
                        analysis.params.push(param);
                    }
                }
            }
            Item::Simplify { settings, .. } => cx.limits(settings, &mut limits),
            Item::Let(_) | Item::Model(_) | Item::Loss { .. } | Item::Metrics { .. } | Item::Unknown { .. } => {}
        }
    }
    for item in &ast.items {
        if let Item::Let(l) = item {
            let value = cx.expr(&l.value);
            let ok = value.is_some();
            if let Some(value) = value {
                let at = cx.spans.loc(&l.tokens);
                analysis.lets.push(Let { name: l.name.to_string(), value, at });
            }
            cx.declare(&l.name, if ok { Kind::Value } else { Kind::Broken });
        }
    }

    let models: Vec<&ModelAst> =
        ast.items.iter().filter_map(|i| if let Item::Model(m) = i { Some(m) } else { None }).collect();
    let poi = match models.first() {
        Some(m) => {
            analysis.model = cx.model(m);
            analysis.model.poi.as_ref().map(|(p, _)| p.clone())
        }
        None => {
            cx.err(&ast.name, "expected a `model { … }` section in the analysis, found none".into());
            None
        }
    };
    let losses: Vec<&Vec<syn::Expr>> = ast
        .items
        .iter()
        .filter_map(|i| if let Item::Loss { entries, .. } = i { Some(entries) } else { None })
        .collect();
    match losses.first() {
        Some(entries) => analysis.objectives = cx.objectives(entries, poi.as_deref()),
        None => cx.err(&ast.name, "expected a `loss …;` section in the analysis, found none".into()),
    }
    for item in &ast.items {
        if let Item::Metrics { entries, .. } = item {
            analysis.metrics = cx.metrics(entries, poi.as_deref());
            break;
        }
    }
    if cx.errors.is_empty() {
        Ok(Validated { analysis, spans: cx.spans, limits })
    } else {
        Err(cx.errors)
    }
}

fn section_name(item: &Item) -> &'static str {
    match item {
        Item::Inputs { .. } => "inputs",
        Item::Knobs { .. } => "knobs",
        Item::Params { .. } => "params",
        Item::Let(_) => "let",
        Item::Model(_) => "model",
        Item::Loss { .. } => "loss",
        Item::Metrics { .. } => "metrics",
        Item::Simplify { .. } => "simplify",
        Item::Unknown { .. } => "unknown",
    }
}

impl Ctx {
    fn err(&mut self, tokens: &dyn ToTokens, message: String) {
        self.errors.push(syn::Error::new_spanned(tokens.to_token_stream(), message));
    }

    /// Declares a name; a second declaration is an error.
    fn declare(&mut self, name: &syn::Ident, kind: Kind) -> bool {
        let key = name.to_string();
        if self.scope.contains_key(&key) {
            self.err(name, format!("expected a new name, found `{key}` declared twice"));
            return false;
        }
        self.scope.insert(key, kind);
        true
    }

    fn input(&mut self, i: &InputAst) -> Option<Input> {
        let features = self.usize_literal(&i.features, "the number of features");
        if i.kind != "events" {
            self.err(&i.kind, format!("expected `events[features]`, found `{}[…]`", i.kind));
        }
        let ok = features.is_some() && i.kind == "events";
        let features = features.unwrap_or(1);
        let kind = if ok { Kind::Input { features, weighted: i.weighted } } else { Kind::Broken };
        if !self.declare(&i.name, kind) || !ok {
            return None;
        }
        Some(Input { name: i.name.to_string(), features, weighted: i.weighted, at: self.spans.loc(&i.tokens) })
    }

    fn knob(&mut self, k: &KnobAst) -> Option<Knob> {
        let default = self.number(&k.value, &format!("a number literal as the default of knob `{}`", k.name));
        if !self.declare(&k.name, if default.is_some() { Kind::Knob } else { Kind::Broken }) {
            return None;
        }
        let at = self.spans.loc(&k.name);
        Some(Knob { name: k.name.to_string(), default: default?, at })
    }

    fn limits(&mut self, settings: &[Setting], limits: &mut SimplifyLimits) {
        for s in settings {
            match s.key.to_string().as_str() {
                "iterations" => {
                    if let Some(n) = self.usize_literal(&s.value, "an iteration limit (an integer literal)") {
                        limits.iterations = n;
                    }
                }
                "nodes" => {
                    if let Some(n) = self.usize_literal(&s.value, "an e-node limit (an integer literal)") {
                        limits.nodes = n;
                    }
                }
                "seconds" => {
                    if let Some(t) = self.number(&s.value, "a time limit in seconds (a number literal)") {
                        if t > 0.0 && t.is_finite() {
                            limits.time = Duration::from_secs_f64(t);
                        } else {
                            self.err(&s.value, format!("expected a positive time limit, found {t}"));
                        }
                    }
                }
                other => self.err(&s.key, format!("expected `iterations`, `nodes` or `seconds`, found `{other}`")),
            }
        }
    }

    /// An expression of the language.
    fn expr(&mut self, e: &syn::Expr) -> Option<Expr> {
        let kind = match e {
            syn::Expr::Lit(_) => ExprKind::Num(self.number(e, "a number")?),
            syn::Expr::Paren(p) => return self.expr(&p.expr),
            syn::Expr::Group(g) => return self.expr(&g.expr),
            syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => match literal(&u.expr) {
                Some(v) => ExprKind::Num(-v),
                None => ExprKind::Unary(UnaryFn::Neg, Box::new(self.expr(&u.expr)?)),
            },
            syn::Expr::Binary(b) => {
                let op = match b.op {
                    syn::BinOp::Add(_) => Some(BinOp::Add),
                    syn::BinOp::Sub(_) => Some(BinOp::Sub),
                    syn::BinOp::Mul(_) => Some(BinOp::Mul),
                    syn::BinOp::Div(_) => Some(BinOp::Div),
                    _ => None,
                };
                let (l, r) = (self.expr(&b.left), self.expr(&b.right));
                let Some(op) = op else {
                    self.err(&b.op, format!("expected `+`, `-`, `*` or `/`, found `{}`", tokens(&b.op)));
                    return None;
                };
                ExprKind::Binary(op, Box::new(l?), Box::new(r?))
            }
            syn::Expr::Path(_) => {
                let Some(name) = ident_of(e) else {
                    self.err(e, format!("expected a name, found the path `{}`", tokens(e)));
                    return None;
                };
                match self.scope.get(&name) {
                    Some(Kind::Broken) => return None,
                    Some(Kind::Network { .. }) => {
                        self.err(e, format!("expected a value, found the network `{name}` (apply it: `{name}(x)`)"));
                        return None;
                    }
                    Some(_) => ExprKind::Var(name),
                    None if self.unknown_section => return None,
                    None => {
                        self.err(e, format!("expected an input, knob, parameter or earlier `let`, found the undefined name `{name}`"));
                        return None;
                    }
                }
            }
            syn::Expr::Index(i) => {
                let base = self.expr(&i.expr);
                let index = self.usize_literal_or_zero(&i.index, "a feature index (an integer literal)");
                ExprKind::Index(Box::new(base?), index?)
            }
            syn::Expr::Array(a) => {
                let v: Vec<Option<f64>> =
                    a.elems.iter().map(|x| self.number(x, "a number literal in an array")).collect();
                ExprKind::Array(v.into_iter().collect::<Option<_>>()?)
            }
            syn::Expr::Call(c) => return self.call(e, c),
            other => {
                self.err(other, "expected numbers, names, `+ - * /`, calls or `x[i]` in an expression".into());
                return None;
            }
        };
        Some(Expr { kind, at: self.spans.loc(e) })
    }

    fn call(&mut self, whole: &syn::Expr, c: &syn::ExprCall) -> Option<Expr> {
        let Some(f) = ident_of(&c.func) else {
            self.err(&c.func, format!("expected a function or network name, found `{}`", tokens(&c.func)));
            return None;
        };
        let args: Vec<&syn::Expr> = c.args.iter().collect();
        let positional: Vec<&syn::Expr> = args.iter().copied().filter(|a| !matches!(a, syn::Expr::Assign(_))).collect();
        let named: Vec<&syn::ExprAssign> =
            args.iter().filter_map(|a| if let syn::Expr::Assign(n) = a { Some(n) } else { None }).collect();
        let arity = |cx: &mut Ctx, n: usize, what: &str| -> bool {
            if positional.len() != n || (!named.is_empty() && !matches!(f.as_str(), "hist" | "count" | "counts")) {
                cx.err(whole, format!("`{f}`: expected {n} argument(s) ({what}), found {}", args.len()));
                false
            } else {
                true
            }
        };
        let unary = UnaryFn::CALLABLE.iter().find(|u| u.name() == f).copied();
        let kind = match (self.scope.get(&f).copied(), f.as_str()) {
            (Some(Kind::Network { inputs, .. }), _) => {
                if !arity(self, 1, "the events to evaluate it on") {
                    return None;
                }
                if let Some(Kind::Input { features, .. }) =
                    ident_of(positional[0]).and_then(|n| self.scope.get(&n).copied())
                {
                    if features != inputs {
                        self.err(
                            positional[0],
                            format!(
                                "network `{f}`: expected an input of {inputs} features, found `{}` with {features}",
                                tokens(positional[0])
                            ),
                        );
                        return None;
                    }
                }
                ExprKind::Apply { net: f.clone(), arg: Box::new(self.expr(positional[0])?) }
            }
            (Some(Kind::Broken), _) => return None,
            (Some(_), _) => {
                self.err(&c.func, format!("expected a network or function to call, found the value `{f}`"));
                return None;
            }
            (None, "mean" | "std") if positional.len() >= 2 || f == "std" => {
                if positional.len() < 2 || !named.is_empty() {
                    let e = format!("`{f}`: expected 2 or more values of one shape (histograms of several samples), found {} argument(s)", args.len());
                    self.err(whole, e);
                    return None;
                }
                let xs: Vec<Option<Expr>> = positional.iter().map(|x| self.expr(x)).collect();
                let what = if f == "std" { Across::Std } else { Across::Mean };
                ExprKind::Across(what, xs.into_iter().collect::<Option<_>>()?)
            }
            (None, "sum" | "mean") => {
                if !arity(self, 1, "the values") {
                    return None;
                }
                let x = Box::new(self.expr(positional[0])?);
                if f == "sum" {
                    ExprKind::Sum(x)
                } else {
                    ExprKind::Mean(x)
                }
            }
            (None, "hist") => return self.hist(whole, &positional, &named),
            (None, "count") => {
                if !arity(self, 1, "the events of a sample") {
                    return None;
                }
                let values = self.expr(positional[0]);
                let (weights, scale, _) = self.hist_options("count", &named, false)?;
                ExprKind::Count { values: Box::new(values?), weights, scale }
            }
            (None, "softmax") => {
                if !arity(self, 1, "a network's outputs, `[events, k]`") {
                    return None;
                }
                ExprKind::Softmax(Box::new(self.expr(positional[0])?))
            }
            (None, "counts") => {
                if !arity(self, 1, "a softmax network's outputs, `net(x)`") {
                    return None;
                }
                let values = self.softmax_outputs(positional[0]);
                let (weights, scale, _) = self.hist_options("counts", &named, false)?;
                ExprKind::Counts { values: Box::new(values?), weights, scale }
            }
            (None, "weights") => {
                if !arity(self, 1, "a weighted input") {
                    return None;
                }
                let name = ident_of(positional[0]);
                match name.as_deref().map(|n| (n, self.scope.get(n).copied())) {
                    Some((n, Some(Kind::Input { weighted: true, .. }))) => ExprKind::Weights(n.to_string()),
                    Some((_, Some(Kind::Broken))) => return None,
                    Some((n, Some(Kind::Input { weighted: false, .. }))) => {
                        self.err(
                            positional[0],
                            format!("`weights`: expected a weighted input, found `{n}` without weights (declare it `{n}: weighted events[…]`)"),
                        );
                        return None;
                    }
                    _ => {
                        self.err(
                            positional[0],
                            format!(
                                "`weights`: expected the name of a weighted input, found `{}`",
                                tokens(positional[0])
                            ),
                        );
                        return None;
                    }
                }
            }
            (None, "mcstat") => {
                if !arity(self, 1, "the yields of a `hist`, `count` or `counts`") {
                    return None;
                }
                ExprKind::McStat(Box::new(self.expr(positional[0])?))
            }
            (None, _) if unary.is_some() => {
                if !arity(self, 1, "the values") {
                    return None;
                }
                ExprKind::Unary(unary?, Box::new(self.expr(positional[0])?))
            }
            (None, _) => {
                self.err(&c.func, format!("expected a network or a function ({FUNCTIONS}), found `{f}`"));
                return None;
            }
        };
        Some(Expr { kind, at: self.spans.loc(whole) })
    }

    /// The argument of `counts`: a network ending in softmax applied to a sample's events, or
    /// `softmax(…)` of a network's outputs.
    fn softmax_outputs(&mut self, e: &syn::Expr) -> Option<Expr> {
        let applied = match e {
            syn::Expr::Call(c) => ident_of(&c.func).map(|n| (n.clone(), self.scope.get(&n).copied())),
            _ => None,
        };
        match applied {
            Some((_, Some(Kind::Network { softmax: true, .. }))) => self.expr(e),
            Some((f, None)) if f == "softmax" => self.expr(e),
            Some((_, Some(Kind::Broken))) => None,
            Some((net, Some(Kind::Network { softmax: false, .. }))) => {
                self.err(
                    e,
                    format!(
                        "`counts`: expected a network whose output activation is `softmax` (its outputs are the bins), found `{net}` without it (or write `softmax({net}(…))`)"
                    ),
                );
                None
            }
            _ => {
                self.err(
                    e,
                    format!(
                        "`counts`: expected a softmax network applied to a sample, like `nn(x)`, or `softmax(…)`, found `{}`",
                        tokens(e)
                    ),
                );
                None
            }
        }
    }

    /// The named arguments of `hist` and `count`: `weights = w`, `scale = s` and (for `hist`)
    /// `reflect = true|false`.
    #[allow(clippy::type_complexity)]
    fn hist_options(
        &mut self,
        f: &str,
        named: &[&syn::ExprAssign],
        reflectable: bool,
    ) -> Option<(Option<Box<Expr>>, Option<Box<Expr>>, bool)> {
        let (mut weights, mut scale, mut reflect) = (None, None, false);
        let mut ok = true;
        for n in named {
            match ident_of(&n.left).as_deref() {
                Some("scale") => match self.expr(&n.right) {
                    Some(s) => scale = Some(Box::new(s)),
                    None => ok = false,
                },
                Some("weights") => match self.expr(&n.right) {
                    Some(w) => weights = Some(Box::new(w)),
                    None => ok = false,
                },
                Some("reflect") if reflectable => match &*n.right {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(b), .. }) => reflect = b.value,
                    other => {
                        self.err(other, format!("expected `true` or `false`, found `{}`", tokens(other)));
                        ok = false;
                    }
                },
                _ => {
                    let allowed = if reflectable {
                        "`weights = …`, `scale = …` or `reflect = …`"
                    } else {
                        "`weights = …` or `scale = …`"
                    };
                    self.err(&n.left, format!("`{f}`: expected {allowed}, found `{}`", tokens(&n.left)));
                    ok = false;
                }
            }
        }
        ok.then_some((weights, scale, reflect))
    }

    /// `hist(values, edges, bandwidth[, weights = w][, scale = s][, reflect = true])`.
    fn hist(&mut self, whole: &syn::Expr, positional: &[&syn::Expr], named: &[&syn::ExprAssign]) -> Option<Expr> {
        if positional.len() != 3 {
            self.err(
                whole,
                format!(
                    "`hist`: expected 3 positional arguments (values, edges, bandwidth), found {}",
                    positional.len()
                ),
            );
            return None;
        }
        let (values, edges, bandwidth) = (self.expr(positional[0]), self.expr(positional[1]), self.expr(positional[2]));
        let options = self.hist_options("hist", named, true);
        let ((values, edges, bandwidth), (weights, scale, reflect)) = ((values?, edges?, bandwidth?), options?);
        let kind = ExprKind::Hist {
            values: Box::new(values),
            edges: Box::new(edges),
            bandwidth: Box::new(bandwidth),
            weights,
            scale,
            reflect,
        };
        Some(Expr { kind, at: self.spans.loc(whole) })
    }

    /// A number literal (integer or float, optionally negated).
    fn number(&mut self, e: &syn::Expr, expected: &str) -> Option<f64> {
        match literal(e) {
            Some(v) if v.is_finite() => Some(v),
            Some(v) => {
                self.err(e, format!("expected {expected}, found the non-finite {v}"));
                None
            }
            None => {
                self.err(e, format!("expected {expected}, found `{}`", tokens(e)));
                None
            }
        }
    }

    /// A positive integer literal.
    fn usize_literal(&mut self, e: &syn::Expr, expected: &str) -> Option<usize> {
        match self.usize_literal_or_zero(e, expected)? {
            0 => {
                self.err(e, format!("expected {expected}, found 0"));
                None
            }
            n => Some(n),
        }
    }

    fn usize_literal_or_zero(&mut self, e: &syn::Expr, expected: &str) -> Option<usize> {
        match e {
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => match i.base10_parse::<usize>() {
                Ok(n) => Some(n),
                Err(err) => {
                    self.err(e, format!("expected {expected}, found `{}` ({err})", tokens(e)));
                    None
                }
            },
            // A literal passed through a `macro_rules!` metavariable arrives in an invisible group.
            syn::Expr::Group(g) => self.usize_literal_or_zero(&g.expr, expected),
            other => {
                self.err(other, format!("expected {expected}, found `{}`", tokens(other)));
                None
            }
        }
    }
}

/// The value of a number literal, possibly negated.
fn literal(e: &syn::Expr) -> Option<f64> {
    match e {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Float(f), .. }) => f.base10_parse().ok(),
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<i64>().ok().map(|v| v as f64),
        syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => literal(&u.expr).map(|v| -v),
        syn::Expr::Paren(p) => literal(&p.expr),
        syn::Expr::Group(g) => literal(&g.expr),
        _ => None,
    }
}

/// The name of a single-identifier path.
fn ident_of(e: &syn::Expr) -> Option<String> {
    match e {
        syn::Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| i.to_string()),
        _ => None,
    }
}

/// The statistic an objective or metric entry names, used as its default name.
fn stat_name(e: &syn::Expr) -> Option<String> {
    match e {
        syn::Expr::Call(c) => ident_of(&c.func),
        other => ident_of(other),
    }
}

/// The tokens as the user wrote them, for messages.
fn tokens(t: &dyn ToTokens) -> String {
    let text = t.to_token_stream().to_string();
    if text.len() > 60 {
        format!("{}…", &text[..text.char_indices().nth(57).map_or(text.len(), |(i, _)| i)])
    } else {
        text
    }
}
