//! A HistFactory model in pyhf's vocabulary: channels of samples, each sample a nominal
//! histogram with modifiers. Histograms are graph tensors, so a model can be fed by constants
//! (a pyhf workspace) or by a network's yields (neos).

use crate::builder::Tensor;

use super::interp::{HistoSysCode, NormSysCode};

/// One channel (a region): its name and samples. All samples have the channel's bin count.
#[derive(Clone, Debug)]
pub struct Channel<'b> {
    pub name: String,
    pub samples: Vec<Sample<'b>>,
}

/// One sample: its nominal yields (a vector over the channel's bins) and modifiers.
#[derive(Clone, Debug)]
pub struct Sample<'b> {
    pub name: String,
    pub nominal: Tensor<'b>,
    pub modifiers: Vec<Modifier<'b>>,
}

/// A modifier: the parameter it is driven by (shared by every modifier of that name) and
/// what it does.
#[derive(Clone, Debug)]
pub struct Modifier<'b> {
    pub name: String,
    pub kind: ModifierKind<'b>,
}

/// The seven pyhf modifier types.
#[derive(Clone, Debug)]
pub enum ModifierKind<'b> {
    /// A free scale factor μ (the usual POI).
    NormFactor,
    /// A free factor per bin.
    ShapeFactor,
    /// The luminosity, constrained by the measurement's `auxdata` and `sigmas`.
    Lumi,
    /// A normalisation uncertainty: scalar factors `hi` and `lo` at α = ±1.
    NormSys { hi: Tensor<'b>, lo: Tensor<'b> },
    /// A shape uncertainty: the whole templates at α = ±1.
    HistoSys { hi: Tensor<'b>, lo: Tensor<'b> },
    /// Monte Carlo statistical uncertainty, absolute per bin; one γ per bin shared by the
    /// channel's samples that carry it (Barlow–Beeston lite).
    StatError { uncertainties: Tensor<'b> },
    /// An uncorrelated shape uncertainty, absolute per bin, with a Poisson constraint.
    ShapeSys { uncertainties: Tensor<'b> },
}

impl ModifierKind<'_> {
    /// pyhf's name for the modifier type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ModifierKind::NormFactor => "normfactor",
            ModifierKind::ShapeFactor => "shapefactor",
            ModifierKind::Lumi => "lumi",
            ModifierKind::NormSys { .. } => "normsys",
            ModifierKind::HistoSys { .. } => "histosys",
            ModifierKind::StatError { .. } => "staterror",
            ModifierKind::ShapeSys { .. } => "shapesys",
        }
    }
}

/// A measurement's settings for one parameter (pyhf's `measurements[].config.parameters[]`);
/// what is given replaces the modifier type's default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParameterConfig {
    pub name: String,
    pub inits: Option<Vec<f64>>,
    pub bounds: Option<Vec<(f64, f64)>>,
    pub fixed: Option<bool>,
    pub auxdata: Option<Vec<f64>>,
    pub sigmas: Option<Vec<f64>>,
}

/// A whole model: channels, the parameter of interest, parameter settings and interpolation
/// codes.
#[derive(Clone, Debug)]
pub struct Spec<'b> {
    pub channels: Vec<Channel<'b>>,
    pub poi: Option<String>,
    pub parameters: Vec<ParameterConfig>,
    pub normsys_code: NormSysCode,
    pub histosys_code: HistoSysCode,
}
