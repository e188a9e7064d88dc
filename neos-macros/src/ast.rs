//! The syntax tree of a `neos!` invocation. It keeps the user's tokens (identifiers, syn
//! expressions), so that every diagnostic can point at them. It is deliberately loose: the
//! parser accepts any well-formed sequence of sections and entries, and `validate` decides
//! what they mean, so that one run reports every mistake rather than the first.

use proc_macro2::TokenStream;
use syn::{Attribute, Expr, Ident, Visibility};

/// `#[doc] pub analysis Name { items }`.
pub struct AnalysisAst {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub items: Vec<Item>,
}

/// A section of the analysis, in the order written.
pub enum Item {
    Inputs {
        kw: Ident,
        inputs: Vec<InputAst>,
    },
    Knobs {
        kw: Ident,
        knobs: Vec<KnobAst>,
    },
    Params {
        kw: Ident,
        params: Vec<ParamAst>,
    },
    Let(LetAst),
    Model(ModelAst),
    /// `loss entry, entry, …;` — objectives, each a statistic or `name = weighted sum`.
    Loss {
        kw: Ident,
        entries: Vec<Expr>,
    },
    /// `metrics entry, …;`
    Metrics {
        kw: Ident,
        entries: Vec<Expr>,
    },
    /// `simplify { iterations = 8, nodes = 20000, seconds = 20 }`
    Simplify {
        kw: Ident,
        settings: Vec<Setting>,
    },
    /// A section keyword the language does not know (reported by validation).
    Unknown {
        kw: Ident,
    },
}

/// `name: kind[features]`, e.g. `sig: events[2]`.
pub struct InputAst {
    pub name: Ident,
    /// Written `weighted events[n]`.
    pub weighted: bool,
    pub kind: Ident,
    pub features: Expr,
    pub tokens: TokenStream,
}

/// `name = default`.
pub struct KnobAst {
    pub name: Ident,
    pub value: Expr,
}

/// `name = function(arguments);`
pub struct ParamAst {
    pub name: Ident,
    pub function: Ident,
    pub args: ParamArgs,
    pub tokens: TokenStream,
}

pub enum ParamArgs {
    /// `mlp(2 => 64 => 1, relu, sigmoid)`: the sizes, then the other arguments.
    Mlp { sizes: Vec<Expr>, rest: Vec<Expr> },
    /// Any other function: comma-separated expressions (`0.0..1.0`, `bins = 4`, `trainable`).
    Exprs(Vec<Expr>),
}

/// `let name = value;`
pub struct LetAst {
    pub name: Ident,
    pub value: Expr,
    pub tokens: TokenStream,
}

/// `model [from "workspace.json"] { channel … poi … parameter … interpolation … measurement … }`
pub struct ModelAst {
    pub kw: Ident,
    /// A pyhf workspace the model starts from (its channels spliced with the block's).
    pub from: Option<syn::LitStr>,
    pub items: Vec<ModelItem>,
}

pub enum ModelItem {
    Channel(ChannelAst),
    /// `poi name;`
    Poi {
        kw: Ident,
        name: Ident,
    },
    /// `parameter name { init = 1.0, bounds = (0.0, 10.0), fixed = false, auxdata = [..], sigmas = [..] }`
    Parameter {
        name: Ident,
        settings: Vec<Setting>,
    },
    /// `interpolation { normsys = code4, histosys = code4p }`
    Interpolation {
        settings: Vec<Setting>,
    },
    /// `measurement "name";`: which measurement of the `from` workspace (default: its first).
    Measurement {
        kw: Ident,
        name: syn::LitStr,
    },
    Unknown {
        kw: Ident,
    },
}

/// `channel name { sample … }`
pub struct ChannelAst {
    pub name: Ident,
    pub samples: Vec<SampleAst>,
}

/// `sample name = nominal { modifier, … }`
pub struct SampleAst {
    pub name: Ident,
    pub nominal: Expr,
    pub modifiers: Vec<ModifierAst>,
    pub tokens: TokenStream,
}

/// `kind name` or `kind name(arguments)`, e.g. `histosys jes(lo = b_dn, hi = b_up)`.
pub struct ModifierAst {
    pub kind: Ident,
    pub name: Ident,
    pub args: Option<Vec<Expr>>,
    pub tokens: TokenStream,
}

/// `key = value` inside a settings block.
pub struct Setting {
    pub key: Ident,
    pub value: Expr,
}
