//! The description of an analysis: plain, span-free data that the `neos!` macro produces from
//! its syntax tree and that [`super::lower`] turns into a graph. Every element that an error
//! can be about carries a [`Loc`], an index the producer of the description maps back to its
//! own source positions (the macro keeps a table of spans), so that errors found while
//! lowering still point at the user's tokens.

pub use crate::loc::Loc;
use crate::types::DType;

/// One analysis: event inputs, run-time knobs, trainable parameters, `let` bindings, the
/// HistFactory model, the objectives that can be trained and the metrics that are reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Analysis {
    pub name: String,
    /// The analysis as a whole (errors that belong to no single element point here).
    pub at: Loc,
    pub inputs: Vec<Input>,
    pub knobs: Vec<Knob>,
    pub params: Vec<Param>,
    pub lets: Vec<Let>,
    pub model: Model,
    /// The objectives that can be selected at run time; the first is the default.
    pub objectives: Vec<Objective>,
    pub metrics: Vec<Metric>,
}

/// A sample of events, `[events, features]`, with a size of its own; a `weighted` sample also
/// has one weight per event (Monte Carlo weights, already normalised so that the whole
/// sample's weights sum to its expected yield).
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub name: String,
    pub features: usize,
    pub weighted: bool,
    pub at: Loc,
}

/// A run-time scalar with a default (bandwidth, luminosity).
#[derive(Clone, Debug, PartialEq)]
pub struct Knob {
    pub name: String,
    pub default: f64,
    pub at: Loc,
}

/// A trainable (or fixed) parameter declaration.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub at: Loc,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ParamKind {
    /// A multilayer perceptron, stax-style: `Dense(n₁), act, …, Dense(n_L), final act`.
    Mlp(Mlp),
    /// A free tensor (a scalar when the shape is empty).
    Array { shape: Vec<usize>, init: Init },
    /// Bin edges; when trainable only the inner edges are parameters (the outer edges stay
    /// fixed, as neos has it), repaired by [`crate::Builder::neos_edges`].
    BinEdges { edges: Vec<f64>, trainable: bool },
}

/// The layer sizes (input first), activations and element type of a network.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub sizes: Vec<usize>,
    pub hidden: Activation,
    pub output: Activation,
    /// The element type of the layers (products, activations and their derivatives): the
    /// network's inputs and weights are cast to it, its outputs back to f64, so that the
    /// histograms and statistics after it are always f64.
    pub precision: DType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Tanh,
    Sigmoid,
    Softplus,
    /// No activation (a linear output).
    Identity,
    /// exp(zₖ) / Σⱼ exp(zⱼ) over a layer's outputs (an output activation only): a network whose
    /// outputs are the bins of a soft-count histogram.
    Softmax,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus => "softplus",
            Activation::Identity => "identity",
            Activation::Softmax => "softmax",
        }
    }

    /// Every activation, for error messages that list them.
    pub const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softplus,
        Activation::Identity,
        Activation::Softmax,
    ];
}

/// How a parameter leaf starts. The runtime (`neos_runtime::init`) draws the random ones.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// Every element the same value.
    Constant(f64),
    /// These values, row-major.
    Values(Vec<f64>),
    /// Normal with mean zero.
    Normal { std: f64 },
    /// jax's `glorot_normal` (stax's default weight init): a normal truncated at ±2 standard
    /// deviations, with variance 2 / (fan_in + fan_out) after the truncation.
    GlorotNormal { fan_in: usize, fan_out: usize },
}

/// A `let` binding.
#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    pub name: String,
    pub value: Expr,
    pub at: Loc,
}

/// An expression with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub at: Loc,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Num(f64),
    /// A constant vector.
    Array(Vec<f64>),
    /// An input, knob, array or edges parameter, or an earlier `let`.
    Var(String),
    /// A network applied to `[n, inputs]`; a one-output network gives `[n]`.
    Apply {
        net: String,
        arg: Box<Expr>,
    },
    Unary(UnaryFn, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// Element `index` of the last axis (a feature of an events input), removing that axis.
    Index(Box<Expr>, usize),
    /// The sum or mean of all elements.
    Sum(Box<Expr>),
    Mean(Box<Expr>),
    /// `relaxed.hist(values, edges, bandwidth)`; with `scale`, neos's yields
    /// count · scale / N + 10⁻³ (`neos.hists_from_nn`). With `weights`, the weighted histogram
    /// Σᵢ wᵢ Kᵢⱼ, and with a scale the yields scale · (N_sample / n) · Σᵢ wᵢ Kᵢⱼ + 10⁻³.
    Hist {
        values: Box<Expr>,
        edges: Box<Expr>,
        bandwidth: Box<Expr>,
        weights: Option<Box<Expr>>,
        scale: Option<Box<Expr>>,
        reflect: bool,
    },
    /// The one-bin yield of a whole sample, `[1]`: like `hist` with every event in the bin.
    Count {
        values: Box<Expr>,
        weights: Option<Box<Expr>>,
        scale: Option<Box<Expr>>,
    },
    /// The soft-count histogram of a softmax network's outputs `[events, bins]`: each bin's
    /// yield is the sum over events of that output, with `weights` and `scale` as in `Count`
    /// (neos 0.0.1's `sum · scale / N`).
    Counts {
        values: Box<Expr>,
        weights: Option<Box<Expr>>,
        scale: Option<Box<Expr>>,
    },
    /// The softmax over the last axis of `[events, k]` values (each event's shares of k bins).
    Softmax(Box<Expr>),
    /// The elementwise mean or standard deviation (NumPy's, ddof 0) of several values of one
    /// shape, such as histograms of several samples.
    Across(Across, Vec<Expr>),
    /// The weights of a weighted input, `[events]`.
    Weights(String),
    /// The Monte Carlo statistical uncertainty of a `hist` or `count`, per bin.
    McStat(Box<Expr>),
}

/// What [`ExprKind::Across`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Across {
    Mean,
    Std,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryFn {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Relu,
    Sigmoid,
    Tanh,
    Softplus,
}

impl UnaryFn {
    pub fn name(self) -> &'static str {
        match self {
            UnaryFn::Neg => "neg",
            UnaryFn::Abs => "abs",
            UnaryFn::Exp => "exp",
            UnaryFn::Log => "log",
            UnaryFn::Sqrt => "sqrt",
            UnaryFn::Relu => "relu",
            UnaryFn::Sigmoid => "sigmoid",
            UnaryFn::Tanh => "tanh",
            UnaryFn::Softplus => "softplus",
        }
    }

    /// The functions callable by name in expressions (negation is written `-x`).
    pub const CALLABLE: [UnaryFn; 8] = [
        UnaryFn::Abs,
        UnaryFn::Exp,
        UnaryFn::Log,
        UnaryFn::Sqrt,
        UnaryFn::Relu,
        UnaryFn::Sigmoid,
        UnaryFn::Tanh,
        UnaryFn::Softplus,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// The HistFactory model in pyhf's vocabulary, its data written as expressions.
pub type Model = crate::histfactory::Spec<Expr>;
pub type Channel = crate::histfactory::Channel<Expr>;
pub type Sample = crate::histfactory::Sample<Expr>;
pub type Modifier = crate::histfactory::Modifier<Expr>;
pub use crate::histfactory::{ModifierType, ParameterConfig};

/// A named objective: a weighted sum of statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    pub name: String,
    pub terms: Vec<(f64, Stat)>,
    pub at: Loc,
}

/// A reported metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub stat: Stat,
    pub at: Loc,
}

/// The statistics neos trains on and reports (`neos.losses`).
#[derive(Clone, Debug, PartialEq)]
pub enum Stat {
    /// The median expected CLs at the POI value `mu_test` on background-only Asimov data.
    Cls { mu_test: f64, at: Loc },
    /// The expected discovery p-value p₀.
    Discovery { at: Loc },
    /// σ_μ from the Fisher information on signal-plus-background Asimov data.
    PoiUncert { at: Loc },
    /// Binary cross-entropy of network outputs, signal against backgrounds.
    Bce { signal: Expr, backgrounds: Vec<Expr>, at: Loc },
}

impl Stat {
    pub fn name(&self) -> &'static str {
        match self {
            Stat::Cls { .. } => "cls",
            Stat::Discovery { .. } => "discovery",
            Stat::PoiUncert { .. } => "poi_uncert",
            Stat::Bce { .. } => "bce",
        }
    }

    pub fn at(&self) -> Loc {
        match self {
            Stat::Cls { at, .. } | Stat::Discovery { at } | Stat::PoiUncert { at } | Stat::Bce { at, .. } => *at,
        }
    }

    /// The names of every statistic.
    pub const NAMES: [&'static str; 4] = ["cls", "discovery", "poi_uncert", "bce"];
}
