//! Lowering: an [`Analysis`] description becomes one graph built with the [`Builder`] and the
//! library's HEP functions — networks are matmuls and activations, `hist` is the KDE node
//! with neos's yield transform, the model is a [`Model`], and the statistics are
//! [`Inference::neos_cls`], [`Inference::neos_discovery`], [`Inference::poi_uncert`] and
//! [`inference::bce`]. Then every objective is differentiated with respect to every parameter.
//!
//! Shapes are checked here, before each builder call, so that every problem becomes a
//! [`Diagnostic`] at the element it is about; an element that failed is poisoned, and what
//! depends on it is skipped rather than reported again.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ndarray::Array1;

mod hists;
mod networks;
mod statistics;

pub use hists::{sample_events_knob, weights_input};
use hists::{Binning, HistParts};
use networks::{activate, apply_mlp};

use super::desc::{
    Across, Activation, Analysis, BinOp, Expr, ExprKind, Init, Loc, Mlp, Param, ParamKind, Stat, UnaryFn,
};
use crate::autodiff::grad_in;
use crate::builder::{Builder, Tensor};
use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId};
use crate::hist::SampleHist;
use crate::histfactory::{export_template, Model, Spec};
use crate::inference::{self, Inference};
use crate::types::{DType, Dim, Shape, EVENTS};

/// One problem with a description, at the element it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub at: Loc,
    pub message: String,
}

/// Every problem found while lowering, in the order found.
#[derive(Clone, Debug, PartialEq)]
pub struct LangError {
    pub diagnostics: Vec<Diagnostic>,
}

impl LangError {
    pub fn one(at: Loc, message: impl Into<String>) -> Self {
        LangError { diagnostics: vec![Diagnostic { at, message: message.into() }] }
    }
}

impl fmt::Display for LangError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for LangError {}

/// A parameter leaf of the lowered graph: its name (`nn_w0`), the declaration it belongs to,
/// its shape and how it starts. The flat parameter vector is these leaves in this order,
/// each row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamLeaf {
    pub name: String,
    pub param: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

impl ParamLeaf {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bin edges to report: fixed outer edges and, when trainable, the leaf holding the inner ones
/// (repaired as [`Builder::neos_edges`] does); `edges` are the declared (initial) edges.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgesInfo {
    pub name: String,
    pub edges: Vec<f64>,
    pub leaf: Option<String>,
}

/// A network on its own: a graph with the same parameter leaves (so it takes the same flat
/// parameter vector), one input `x` of shape `[events, inputs]` and one output `y`.
#[derive(Clone, Debug)]
pub struct Network {
    pub name: String,
    pub inputs: usize,
    pub outputs: usize,
    pub graph: Graph,
}

/// The lowered analysis.
#[derive(Clone, Debug)]
pub struct Lowered {
    pub name: String,
    /// Before autodiff: the values of the `let`s, the losses and the metrics.
    pub lowered: Graph,
    /// `lowered` plus the gradient of every loss with respect to every parameter leaf.
    pub graph: Graph,
    /// The event inputs as (name, features), in declaration order.
    pub inputs: Vec<(String, usize)>,
    /// Per input, the leaf holding its weights when it is weighted.
    pub weights: Vec<Option<String>>,
    /// Per input, the knob holding its whole sample's number of events when the analysis
    /// needs it (weighted yields, Monte Carlo uncertainties); see [`sample_events_knob`].
    pub sample_knobs: Vec<Option<String>>,
    /// The run-time scalars as (name, default), the sample-size knobs last.
    pub knobs: Vec<(String, f64)>,
    pub params: Vec<ParamLeaf>,
    pub objectives: Vec<String>,
    pub metrics: Vec<String>,
    /// The `let` bindings, each an output (see [`value_output`]).
    pub values: Vec<String>,
    pub edges: Vec<EdgesInfo>,
    pub networks: Vec<Network>,
    /// The analysis as a pyhf workspace, computed with the `values`.
    pub export: Export,
}

/// The output holding objective `o`.
pub fn loss_output(objective: &str) -> String {
    format!("loss_{objective}")
}

/// The output holding d(objective)/d(leaf).
pub fn grad_output(objective: &str, leaf: &str) -> String {
    format!("grad_{objective}_{leaf}")
}

pub fn metric_output(metric: &str) -> String {
    format!("metric_{metric}")
}

/// The output holding the value of a `let` binding.
pub fn value_output(binding: &str) -> String {
    format!("value_{binding}")
}

/// The output holding the (repaired) edges of a bin-edges parameter.
pub fn edges_output(param: &str) -> String {
    format!("edges_{param}")
}

impl Lowered {
    /// The number of parameters, flattened.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(ParamLeaf::len).sum()
    }

    /// The entry points a program of this graph needs, as (entry name, outputs):
    /// `loss_<o>` (the loss alone) and `value_and_grad_<o>` (the loss then one gradient per
    /// parameter leaf, in layout order) per objective, `metrics`, `values` (the `let`s and
    /// the bin edges) and `edges` (the bin edges alone, which need no events).
    pub fn entries(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for o in &self.objectives {
            out.push((format!("loss_{o}"), vec![loss_output(o)]));
            let mut outputs = vec![loss_output(o)];
            outputs.extend(self.params.iter().map(|p| grad_output(o, &p.name)));
            out.push((format!("value_and_grad_{o}"), outputs));
        }
        out.push(("metrics".into(), self.metrics.iter().map(|m| metric_output(m)).collect()));
        let edges: Vec<String> = self.edges.iter().map(|e| edges_output(&e.name)).collect();
        let mut values: Vec<String> = self.values.iter().map(|v| value_output(v)).collect();
        values.extend(edges.iter().cloned());
        values.extend(self.export.outputs.iter().cloned());
        out.push(("values".into(), values));
        out.push(("edges".into(), edges));
        out
    }
}

/// What a name in scope stands for.
#[derive(Clone, Copy)]
enum Binding<'b> {
    Tensor(Tensor<'b>),
    Network(usize),
    /// Its definition failed; uses are skipped silently (the failure was reported).
    Poisoned,
}

struct Lowering<'a, 'b> {
    b: &'b Builder,
    analysis: &'a Analysis,
    scope: HashMap<String, Binding<'b>>,
    networks: Vec<(&'a str, &'a Mlp, Vec<Tensor<'b>>)>,
    errors: Vec<Diagnostic>,
    /// The weights leaf of each weighted input, by input name.
    weights: HashMap<String, Tensor<'b>>,
    /// The knob holding each sample's whole size, by events group, made when first needed.
    sample_events: BTreeMap<u16, Tensor<'b>>,
    /// How each `hist` and `count` result was made (by node), so that `mcstat` can find its
    /// ingredients.
    hists: HashMap<NodeId, HistParts<'b>>,
    /// The model's data as lowered, and each channel's observed data for the exported
    /// workspace (background-only Asimov data at the nominal nuisance values).
    model_data: Option<Spec<Tensor<'b>>>,
    observed: Vec<(String, Tensor<'b>)>,
}

/// The trained analysis as a pyhf workspace: the template the compiler writes (or why the
/// model cannot be one), and the outputs, in the template's order, that fill it in.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    pub template: std::result::Result<String, String>,
    pub outputs: Vec<String>,
}

/// The output holding the k-th piece of data of the exported workspace.
pub fn export_output(k: usize) -> String {
    format!("export_{k}")
}

/// Lowers a description to its graphs; see the module docs.
pub fn lower(analysis: &Analysis) -> std::result::Result<Lowered, LangError> {
    let b = Builder::new();
    let mut l = Lowering {
        b: &b,
        analysis,
        scope: HashMap::new(),
        networks: Vec::new(),
        errors: Vec::new(),
        weights: HashMap::new(),
        sample_events: BTreeMap::new(),
        hists: HashMap::new(),
        model_data: None,
        observed: Vec::new(),
    };
    let mut names: BTreeMap<String, Loc> = BTreeMap::new();
    let mut declare = |l: &mut Lowering<'_, '_>, name: &str, at: Loc| {
        if names.insert(name.to_string(), at).is_some() {
            l.error(at, format!("expected a new name, found `{name}` declared twice"));
            false
        } else {
            true
        }
    };
    let mut inputs = Vec::new();
    // Every input is a sample of its own size: its events get a group of their own, so
    // that samples of different sizes run together and cannot be mixed event by event.
    for (group, input) in analysis.inputs.iter().enumerate() {
        if input.features == 0 {
            l.error(input.at, format!("input `{}`: expected at least one feature, found 0", input.name));
        }
        if declare(&mut l, &input.name, input.at) {
            let Ok(group) = u16::try_from(group) else {
                l.error(input.at, format!("input `{}`: expected at most {} inputs, found more", input.name, u16::MAX));
                continue;
            };
            let t =
                b.input(&input.name, DType::F64, Shape::new([Dim::Events(group), Dim::Fixed(input.features.max(1))]));
            l.scope.insert(input.name.clone(), Binding::Tensor(t));
            inputs.push((input.name.clone(), input.features));
            if input.weighted {
                let leaf = weights_input(&input.name);
                if declare(&mut l, &leaf, input.at) {
                    let w = b.input(&leaf, DType::F64, Shape::new([Dim::Events(group)]));
                    l.weights.insert(input.name.clone(), w);
                }
            }
        }
    }
    let mut knobs = Vec::new();
    for knob in &analysis.knobs {
        if !knob.default.is_finite() {
            l.error(knob.at, format!("knob `{}`: expected a finite default, found {}", knob.name, knob.default));
        }
        if declare(&mut l, &knob.name, knob.at) {
            let t = b.knob(&knob.name, DType::F64, knob.default);
            l.scope.insert(knob.name.clone(), Binding::Tensor(t));
            knobs.push((knob.name.clone(), knob.default));
        }
    }
    let mut leaves: Vec<ParamLeaf> = Vec::new();
    let mut leaf_tensors: Vec<Tensor<'_>> = Vec::new();
    let mut edges_info = Vec::new();
    let mut edge_tensors = Vec::new();
    for param in &analysis.params {
        if !declare(&mut l, &param.name, param.at) {
            continue;
        }
        let before = leaves.len();
        let binding = l.param(param, &mut leaves);
        // Network leaves (`nn_w0`, …) share the namespace of declared names.
        for leaf in &leaves[before..] {
            if leaf.name != param.name {
                declare(&mut l, &leaf.name, param.at);
            }
        }
        for leaf in &leaves[before..] {
            leaf_tensors.push(b.leaf(&leaf.name).unwrap_or_else(|| b.scalar(0.0, DType::F64)));
        }
        if let (ParamKind::BinEdges { edges, trainable }, Binding::Tensor(t)) = (&param.kind, binding) {
            edges_info.push(EdgesInfo {
                name: param.name.clone(),
                edges: edges.clone(),
                leaf: trainable.then(|| param.name.clone()),
            });
            edge_tensors.push(t);
        }
        l.scope.insert(param.name.clone(), binding);
    }
    let mut values = Vec::new();
    let mut value_tensors = Vec::new();
    for binding in &analysis.lets {
        let declared = declare(&mut l, &binding.name, binding.at);
        let t = l.expr(&binding.value);
        if declared {
            l.scope.insert(binding.name.clone(), t.map_or(Binding::Poisoned, Binding::Tensor));
            if let Some(t) = t {
                values.push(binding.name.clone());
                value_tensors.push(t);
            }
        }
    }
    let stats = l.statistics();
    let mut sample_knobs = vec![None; analysis.inputs.len()];
    let sized: Vec<u16> = l.sample_events.keys().copied().collect();
    for g in sized {
        let name = sample_events_knob(l.sample(g));
        if !declare(&mut l, &name, analysis.inputs[usize::from(g)].at) {
            continue;
        }
        knobs.push((name.clone(), 0.0));
        sample_knobs[usize::from(g)] = Some(name);
    }
    if !l.errors.is_empty() {
        return Err(LangError { diagnostics: l.errors });
    }
    if let Some(e) = b.first_error() {
        return Err(LangError::one(analysis.at, format!("building the graph: {e}")));
    }
    let Some((objectives, metrics)) = stats else {
        return Err(LangError::one(analysis.at, "expected a model, objectives and metrics that lower, found none"));
    };
    let ir = |e: IrError| LangError::one(analysis.at, format!("building the graph: {e}"));
    for (name, t) in values.iter().zip(&value_tensors) {
        b.output(&value_output(name), *t);
    }
    for (info, t) in edges_info.iter().zip(&edge_tensors) {
        b.output(&edges_output(&info.name), *t);
    }
    for (name, t) in &objectives {
        b.output(&loss_output(name), *t);
    }
    for (name, t) in &metrics {
        b.output(&metric_output(name), *t);
    }
    let export = l.export();
    let lowered = b.graph().clone();
    for (name, loss) in &objectives {
        if leaf_tensors.is_empty() {
            break;
        }
        let grads = grad_in(&b, *loss, &leaf_tensors).map_err(ir)?;
        for (leaf, g) in leaves.iter().zip(grads) {
            b.output(&grad_output(name, &leaf.name), g);
        }
    }
    let network_graphs = l.network_graphs(&leaves).map_err(ir)?;
    let objective_names: Vec<String> = objectives.iter().map(|(n, _)| n.clone()).collect();
    let metric_names: Vec<String> = metrics.iter().map(|(n, _)| n.clone()).collect();
    drop((l, objectives, metrics, leaf_tensors, value_tensors, edge_tensors));
    let graph = b.finish().map_err(ir)?;
    check_output_names(&graph, analysis.at)?;
    Ok(Lowered {
        name: analysis.name.clone(),
        lowered,
        graph,
        inputs,
        weights: analysis.inputs.iter().map(|i| i.weighted.then(|| weights_input(&i.name))).collect(),
        sample_knobs,
        knobs,
        params: leaves,
        objectives: objective_names,
        metrics: metric_names,
        values,
        edges: edges_info,
        networks: network_graphs,
        export,
    })
}

/// Output names become Rust identifiers of generated structs, so two outputs of one name (say
/// `grad_a_b_c` from objective `a_b` and leaf `c`, and from `a` and `b_c`) must not arise.
fn check_output_names(graph: &Graph, at: Loc) -> std::result::Result<(), LangError> {
    let mut seen = BTreeMap::new();
    for (name, _) in graph.outputs() {
        if seen.insert(name.clone(), ()).is_some() {
            return Err(LangError::one(
                at,
                format!("expected distinct output names, found `{name}` twice (rename an objective or parameter)"),
            ));
        }
    }
    Ok(())
}

impl<'a, 'b> Lowering<'a, 'b> {
    /// The input whose events form group `g` (inputs are numbered in declaration order).
    fn sample(&self, g: u16) -> &str {
        self.analysis.inputs.get(usize::from(g)).map_or("?", |i| i.name.as_str())
    }

    /// A shape as the language writes it: every sample's events axis is `events`.
    fn shown(&self, shape: &Shape) -> String {
        let dims: Vec<String> = shape
            .dims()
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => n.to_string(),
                Dim::Events(_) => "events".to_string(),
            })
            .collect();
        format!("[{}]", dims.join(", "))
    }

    fn error(&mut self, at: Loc, message: String) {
        self.errors.push(Diagnostic { at, message });
    }

    /// Declares a parameter's leaves and returns what its name stands for.
    fn param(&mut self, param: &'a Param, leaves: &mut Vec<ParamLeaf>) -> Binding<'b> {
        let b = self.b;
        let name = &param.name;
        let mut leaf = |leaf: String, shape: Vec<usize>, init: Init| {
            let t = b.param(&leaf, DType::F64, Shape::fixed(&shape));
            leaves.push(ParamLeaf { name: leaf, param: name.clone(), shape, init });
            t
        };
        match &param.kind {
            ParamKind::Mlp(mlp) => {
                if mlp.sizes.len() < 2 || mlp.sizes.contains(&0) {
                    self.error(
                        param.at,
                        format!(
                            "network `{name}`: expected at least an input and an output size, all positive, found {:?}",
                            mlp.sizes
                        ),
                    );
                    return Binding::Poisoned;
                }
                let mut layers = Vec::new();
                for (k, w) in mlp.sizes.windows(2).enumerate() {
                    let (fan_in, fan_out) = (w[0], w[1]);
                    layers.push(leaf(
                        format!("{name}_w{k}"),
                        vec![fan_in, fan_out],
                        Init::GlorotNormal { fan_in, fan_out },
                    ));
                    layers.push(leaf(format!("{name}_b{k}"), vec![fan_out], Init::Normal { std: 1e-2 }));
                }
                self.networks.push((name, mlp, layers));
                Binding::Network(self.networks.len() - 1)
            }
            ParamKind::Array { shape, init } => {
                if let Init::Values(v) = init {
                    let n: usize = shape.iter().product();
                    if v.len() != n {
                        self.error(
                            param.at,
                            format!(
                                "parameter `{name}`: expected {n} initial values for shape {shape:?}, found {}",
                                v.len()
                            ),
                        );
                        return Binding::Poisoned;
                    }
                }
                Binding::Tensor(leaf(name.clone(), shape.clone(), init.clone()))
            }
            ParamKind::BinEdges { edges, trainable } => {
                if edges.len() < 2 {
                    self.error(param.at, format!("bin edges `{name}`: expected at least one bin, found none"));
                    return Binding::Poisoned;
                }
                if let Some(k) = (1..edges.len()).find(|&k| !(edges[k] > edges[k - 1]) || !edges[k].is_finite()) {
                    self.error(
                        param.at,
                        format!(
                            "bin edges `{name}`: expected finite increasing edges, found {} after {}",
                            edges[k],
                            edges[k - 1]
                        ),
                    );
                    return Binding::Poisoned;
                }
                let (lo, hi) = (edges[0], edges[edges.len() - 1]);
                if *trainable {
                    if edges.len() < 3 {
                        self.error(
                            param.at,
                            format!("bin edges `{name}`: expected at least 2 bins to train the inner edges, found 1"),
                        );
                        return Binding::Poisoned;
                    }
                    let inner = edges[1..edges.len() - 1].to_vec();
                    let t = leaf(name.clone(), vec![inner.len()], Init::Values(inner));
                    Binding::Tensor(b.neos_edges(t, lo, hi))
                } else {
                    Binding::Tensor(b.constant(Array1::from(edges.clone()).into_dyn(), DType::F64))
                }
            }
        }
    }

    /// Lowers an expression; `None` when it (or something it uses) failed.
    fn expr(&mut self, e: &Expr) -> Option<Tensor<'b>> {
        let b = self.b;
        let at = e.at;
        match &e.kind {
            ExprKind::Num(v) => Some(b.scalar(*v, DType::F64)),
            ExprKind::Array(v) => {
                if v.is_empty() {
                    self.error(at, "expected an array of at least one number, found `[]`".into());
                    return None;
                }
                Some(b.constant(Array1::from(v.clone()).into_dyn(), DType::F64))
            }
            ExprKind::Var(name) => match self.scope.get(name) {
                Some(Binding::Tensor(t)) => Some(*t),
                Some(Binding::Poisoned) => None,
                Some(Binding::Network(_)) => {
                    self.error(at, format!("expected a value, found the network `{name}` (apply it: `{name}(x)`)"));
                    None
                }
                None => {
                    self.error(at, format!("expected a defined name, found `{name}`"));
                    None
                }
            },
            ExprKind::Apply { net, arg } => {
                let x = self.expr(arg);
                let index = match self.scope.get(net.as_str()) {
                    Some(Binding::Network(i)) => *i,
                    Some(Binding::Poisoned) => return None,
                    Some(Binding::Tensor(_)) => {
                        self.error(at, format!("expected a network to apply, found the value `{net}`"));
                        return None;
                    }
                    None => {
                        self.error(at, format!("expected a network, found the undefined name `{net}`"));
                        return None;
                    }
                };
                let x = x?;
                let (_, mlp, layers) = &self.networks[index];
                let width = mlp.sizes[0];
                match x.shape().dims() {
                    [_, Dim::Fixed(n)] if *n == width => {}
                    _ => {
                        let found = self.shown(&x.shape());
                        self.error(
                            at,
                            format!("network `{net}`: expected an input of shape [n, {width}], found {found}"),
                        );
                        return None;
                    }
                }
                Some(apply_mlp(mlp, layers, x))
            }
            ExprKind::Unary(f, x) => {
                let x = self.expr(x)?;
                Some(match f {
                    UnaryFn::Neg => -x,
                    UnaryFn::Abs => x.abs(),
                    UnaryFn::Exp => x.exp(),
                    UnaryFn::Log => x.log(),
                    UnaryFn::Sqrt => x.sqrt(),
                    UnaryFn::Relu => x.relu(),
                    UnaryFn::Sigmoid => x.sigmoid(),
                    UnaryFn::Tanh => x.tanh(),
                    UnaryFn::Softplus => x.softplus(),
                })
            }
            ExprKind::Binary(op, x, y) => {
                let (x, y) = (self.expr(x), self.expr(y));
                let (x, y) = (x?, y?);
                if let Err(message) = x.shape().broadcast_with(&y.shape()) {
                    let message = match (x.shape().events_group(), y.shape().events_group()) {
                        (Some(gx), Some(gy)) if gx != gy => format!(
                            "expected values of one sample to combine event by event, found events of `{}` and of \
                             `{}` (samples have sizes of their own; reduce one first, e.g. with `sum` or `hist`)",
                            self.sample(gx),
                            self.sample(gy)
                        ),
                        _ => message
                            .replace(&x.shape().to_string(), &self.shown(&x.shape()))
                            .replace(&y.shape().to_string(), &self.shown(&y.shape())),
                    };
                    self.error(at, message);
                    return None;
                }
                Some(match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    BinOp::Div => x / y,
                })
            }
            ExprKind::Index(x, i) => {
                let x = self.expr(x)?;
                let shape = x.shape();
                match shape.dims().last() {
                    Some(Dim::Fixed(n)) if i < n => Some(x.index(shape.rank() - 1, *i)),
                    Some(Dim::Fixed(n)) => {
                        let shape = self.shown(&shape);
                        self.error(at, format!("expected an index below {n} (the last axis of {shape}), found {i}"));
                        None
                    }
                    _ => {
                        let shape = self.shown(&shape);
                        self.error(at, format!("expected a value with a fixed last axis to index, found {shape}"));
                        None
                    }
                }
            }
            ExprKind::Sum(x) => Some(self.expr(x)?.sum_all()),
            ExprKind::Mean(x) => {
                let x = self.expr(x)?;
                let axes: Vec<usize> = (0..x.shape().rank()).collect();
                Some(if axes.is_empty() { x } else { x.mean(&axes) })
            }
            ExprKind::Weights(name) => match self.weights.get(name) {
                Some(w) => Some(*w),
                None => {
                    self.error(at, format!("weights: expected a weighted input, found `{name}`"));
                    None
                }
            },
            ExprKind::Count { values, weights, scale } => {
                self.whole_sample_hist(values, weights.as_deref(), scale.as_deref(), Binning::Whole, at, "count")
            }
            ExprKind::Counts { values, weights, scale } => {
                self.whole_sample_hist(values, weights.as_deref(), scale.as_deref(), Binning::Columns, at, "counts")
            }
            ExprKind::Softmax(x) => {
                let x = self.expr(x)?;
                match x.shape().dims() {
                    [d, Dim::Fixed(k)] if d.events_group().is_some() && *k >= 2 => {
                        Some(activate(Activation::Softmax, x))
                    }
                    _ => {
                        let found = self.shown(&x.shape());
                        self.error(
                            at,
                            format!(
                                "softmax: expected values [events, k] with k ≥ 2 (a network's outputs), found {found}"
                            ),
                        );
                        None
                    }
                }
            }
            ExprKind::Across(what, xs) => {
                let xs: Vec<Option<Tensor<'b>>> = xs.iter().map(|x| self.expr(x)).collect();
                let xs: Vec<Tensor<'b>> = xs.into_iter().collect::<Option<_>>()?;
                let first = xs.first().copied()?;
                if let Some(other) = xs.iter().find(|x| x.shape() != first.shape()) {
                    let (a, b) = (self.shown(&first.shape()), self.shown(&other.shape()));
                    self.error(at, format!("expected values of one shape, like the first's {a}, found {b}"));
                    return None;
                }
                let n = xs.len() as f64;
                let mean = xs[1..].iter().fold(first, |acc, x| acc + *x) / n;
                Some(match what {
                    Across::Mean => mean,
                    Across::Std => {
                        (xs[1..].iter().fold((first - mean).square(), |acc, x| acc + (*x - mean).square()) / n).sqrt()
                    }
                })
            }
            ExprKind::McStat(x) => self.mcstat(x),
            ExprKind::Hist { values, edges, bandwidth, weights, scale, reflect } => {
                self.hist(values, edges, bandwidth, weights.as_deref(), scale.as_deref(), *reflect)
            }
        }
    }

    /// The exported workspace's outputs (added to the graph) and template.
    fn export(&mut self) -> Export {
        let Some(data) = self.model_data.clone() else {
            return Export { template: Err("expected a model that lowers, found none".into()), outputs: Vec::new() };
        };
        let mut tensors = Vec::new();
        let mut index = |t: &Tensor<'b>| {
            tensors.push(*t);
            tensors.len() - 1
        };
        let spec = data.map(&mut index);
        let observations: Vec<(String, usize)> = self.observed.iter().map(|(n, t)| (n.clone(), index(t))).collect();
        let outputs: Vec<String> = (0..tensors.len()).map(export_output).collect();
        for (name, t) in outputs.iter().zip(&tensors) {
            self.b.output(name, *t);
        }
        Export { template: export_template(&spec, &observations, &self.analysis.name), outputs }
    }

    /// Lowers the model's data and builds the model; its problems are reported at the elements
    /// they are about (an expression, a modifier, a parameter config).
    fn model(&mut self) -> Option<Model<'b>> {
        let spec = &self.analysis.model;
        if spec.poi.is_none() {
            self.error(spec.at, "expected a `poi` in the model, found none".into());
        }
        let lowered = spec.try_map(|e| self.expr(e).map(|t| (t, e.at)))?;
        spec.poi.as_ref()?;
        self.model_data = Some(lowered.map(|(t, _)| *t));
        let model = match Model::new(lowered) {
            Ok(model) => model,
            Err(e) => {
                self.model_errors(e);
                return None;
            }
        };
        // pyhf ignores settings of parameters a model lacks; in an analysis they are mistakes.
        for (at, message) in model.ignored_configs() {
            self.error(*at, message.clone());
        }
        (model.ignored_configs().is_empty()).then_some(model)
    }

    fn model_errors(&mut self, e: IrError) {
        match e {
            IrError::Model { at, message } => self.error(at, message),
            IrError::Many(errors) => errors.into_iter().for_each(|e| self.model_errors(e)),
            other => self.error(self.analysis.model.at, format!("model: {other}")),
        }
    }
}
