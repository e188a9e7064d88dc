//! The seven pyhf modifier types and everything that is a fact about a type rather than about
//! one modifier: its name, how many parameters it has, how they start, their bounds and
//! constraint, what data it carries and how that data is written in a workspace and in the
//! `neos!` language. Every layer (the workspace reader, the language, the layout, this
//! runtime) reads these facts from here, so a new modifier type is added in this file, in the
//! likelihood's arithmetic (`likelihood.rs`) and in the tests.

use std::fmt;

/// A pyhf modifier type. The variants are in pyhf's alphabetical order of type names, which is
/// the order parameter sets are laid out in (`pyhf.pdf._ModelConfig.par_order`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModifierType {
    /// A shape uncertainty: whole templates at α = ±1, added to the nominal (pyhf `histosys`).
    HistoSys,
    /// The luminosity, a factor constrained by the measurement's `auxdata` and `sigmas`.
    Lumi,
    /// A free scale factor (the usual POI μ).
    NormFactor,
    /// A normalisation uncertainty: factors `hi` and `lo` at α = ±1.
    NormSys,
    /// A free factor per bin.
    ShapeFactor,
    /// An uncorrelated shape uncertainty, absolute per bin, with a Poisson constraint.
    ShapeSys,
    /// Monte Carlo statistical uncertainty, absolute per bin: one γ per bin shared by the
    /// channel's samples that carry it (Barlow–Beeston lite).
    StatError,
}

/// How a modifier's parameters are constrained by auxiliary measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Constraint {
    /// Free.
    None,
    /// Normal(a | θ, σ).
    Normal,
    /// Poisson(a | γ·τ) with τ = (nominal/σ)².
    Poisson,
}

/// Whether a modifier scales the sample or adds to its nominal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Multiplicative,
    Additive,
}

/// How the modifiers of one name combine into one parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Every modifier of the name acts on the same parameters (per-bin ones need the same
    /// bin count wherever they appear).
    Shared,
    /// Each channel's modifiers of the name get parameters of their own, one per bin,
    /// concatenated in channel order (pyhf's staterror): within a channel they are shared.
    PerChannel,
    /// The name may be given to one modifier only (pyhf refuses a second shapesys of a name).
    Once,
}

/// A setting of a measurement's parameter config (pyhf's `parameters` entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKey {
    Inits,
    Bounds,
    Fixed,
    Auxdata,
    Sigmas,
    Factors,
}

impl ConfigKey {
    pub const ALL: [ConfigKey; 6] = [
        ConfigKey::Inits,
        ConfigKey::Bounds,
        ConfigKey::Fixed,
        ConfigKey::Auxdata,
        ConfigKey::Sigmas,
        ConfigKey::Factors,
    ];

    /// The key as a workspace writes it.
    pub fn name(self) -> &'static str {
        match self {
            ConfigKey::Inits => "inits",
            ConfigKey::Bounds => "bounds",
            ConfigKey::Fixed => "fixed",
            ConfigKey::Auxdata => "auxdata",
            ConfigKey::Sigmas => "sigmas",
            ConfigKey::Factors => "factors",
        }
    }
}

/// The shape of one piece of a modifier's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldShape {
    /// One number (a normsys factor).
    Scalar,
    /// One number per bin of the channel.
    Bins,
}

/// One piece of a modifier's data: its key in a workspace's `data` object (`None` when the
/// data *is* this field, as for staterror's list), its name in the `neos!` language and its
/// shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub json: Option<&'static str>,
    pub lang: &'static str,
    pub shape: FieldShape,
}

const HI_LO_FACTORS: &[Field] = &[
    Field { json: Some("hi"), lang: "hi", shape: FieldShape::Scalar },
    Field { json: Some("lo"), lang: "lo", shape: FieldShape::Scalar },
];
const HI_LO_TEMPLATES: &[Field] = &[
    Field { json: Some("hi_data"), lang: "hi", shape: FieldShape::Bins },
    Field { json: Some("lo_data"), lang: "lo", shape: FieldShape::Bins },
];
const UNCERTAINTIES: &[Field] = &[Field { json: None, lang: "uncertainties", shape: FieldShape::Bins }];

/// The index of the `hi` field of normsys and histosys data.
pub const HI: usize = 0;
/// The index of the `lo` field of normsys and histosys data.
pub const LO: usize = 1;

impl ModifierType {
    /// Every type, in layout order.
    pub const ALL: [ModifierType; 7] = [
        ModifierType::HistoSys,
        ModifierType::Lumi,
        ModifierType::NormFactor,
        ModifierType::NormSys,
        ModifierType::ShapeFactor,
        ModifierType::ShapeSys,
        ModifierType::StatError,
    ];

    /// pyhf's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            ModifierType::HistoSys => "histosys",
            ModifierType::Lumi => "lumi",
            ModifierType::NormFactor => "normfactor",
            ModifierType::NormSys => "normsys",
            ModifierType::ShapeFactor => "shapefactor",
            ModifierType::ShapeSys => "shapesys",
            ModifierType::StatError => "staterror",
        }
    }

    /// The type of a pyhf name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Every type's name, for messages that list them: `histosys, lumi, … or staterror`.
    pub fn names() -> String {
        let names = Self::ALL.map(Self::name);
        let (last, rest) = names.split_last().unwrap_or((&"", &[]));
        format!("{} or {last}", rest.join(", "))
    }

    /// Whether the type has one parameter per bin (named `name[i]`) rather than one.
    pub fn per_bin(self) -> bool {
        match self {
            ModifierType::ShapeFactor | ModifierType::ShapeSys | ModifierType::StatError => true,
            ModifierType::HistoSys | ModifierType::Lumi | ModifierType::NormFactor | ModifierType::NormSys => false,
        }
    }

    /// The number of parameters for a channel of `bins` bins.
    pub fn parameters(self, bins: usize) -> usize {
        if self.per_bin() {
            bins
        } else {
            1
        }
    }

    pub fn constraint(self) -> Constraint {
        match self {
            ModifierType::NormFactor | ModifierType::ShapeFactor => Constraint::None,
            ModifierType::HistoSys | ModifierType::Lumi | ModifierType::NormSys | ModifierType::StatError => {
                Constraint::Normal
            }
            ModifierType::ShapeSys => Constraint::Poisson,
        }
    }

    pub fn effect(self) -> Effect {
        match self {
            ModifierType::HistoSys => Effect::Additive,
            ModifierType::Lumi
            | ModifierType::NormFactor
            | ModifierType::NormSys
            | ModifierType::ShapeFactor
            | ModifierType::ShapeSys
            | ModifierType::StatError => Effect::Multiplicative,
        }
    }

    /// pyhf's default initial value.
    pub fn default_init(self) -> f64 {
        match self {
            ModifierType::HistoSys | ModifierType::NormSys => 0.0,
            ModifierType::Lumi
            | ModifierType::NormFactor
            | ModifierType::ShapeFactor
            | ModifierType::ShapeSys
            | ModifierType::StatError => 1.0,
        }
    }

    /// pyhf's default bounds.
    pub fn default_bounds(self) -> (f64, f64) {
        match self {
            ModifierType::HistoSys | ModifierType::NormSys => (-5.0, 5.0),
            ModifierType::Lumi | ModifierType::NormFactor | ModifierType::ShapeFactor => (0.0, 10.0),
            ModifierType::ShapeSys | ModifierType::StatError => (1e-10, 10.0),
        }
    }

    /// How modifiers of one name and this type share parameters.
    pub fn sharing(self) -> Sharing {
        match self {
            ModifierType::StatError => Sharing::PerChannel,
            ModifierType::ShapeSys => Sharing::Once,
            ModifierType::HistoSys
            | ModifierType::Lumi
            | ModifierType::NormFactor
            | ModifierType::NormSys
            | ModifierType::ShapeFactor => Sharing::Shared,
        }
    }

    /// Whether a measurement's parameter config may set `key` for a parameter of this type
    /// (pyhf refuses settings a type does not use: `sigmas` of a normsys, `auxdata` of a
    /// free factor).
    pub fn takes(self, key: ConfigKey) -> bool {
        match key {
            ConfigKey::Inits | ConfigKey::Bounds | ConfigKey::Fixed => true,
            ConfigKey::Auxdata => self.constraint() != Constraint::None,
            ConfigKey::Sigmas => matches!(self, ModifierType::Lumi | ModifierType::StatError),
            ConfigKey::Factors => self == ModifierType::ShapeSys,
        }
    }

    /// Whether modifiers of this type and of `other` may be one parameter set under one name:
    /// pyhf merges sets whose facts agree (a normsys and a histosys of one name, the usual
    /// pattern of ROOT exports, share their α) and refuses the others.
    pub fn shares_parameters_with(self, other: ModifierType) -> bool {
        self == other
            || (self.constraint() == other.constraint()
                && self.per_bin() == other.per_bin()
                && self.default_init() == other.default_init()
                && self.default_bounds() == other.default_bounds()
                && self.sharing() == other.sharing()
                && self.needs_measurement_config() == other.needs_measurement_config()
                && ConfigKey::ALL.iter().all(|k| self.takes(*k) == other.takes(*k)))
    }

    /// Whether the measurement must configure the parameter's `auxdata` and `sigmas` (pyhf
    /// takes the luminosity's from there).
    pub fn needs_measurement_config(self) -> bool {
        self == ModifierType::Lumi
    }

    /// The data a modifier of this type carries, in the order `Modifier::data` holds it.
    pub fn fields(self) -> &'static [Field] {
        match self {
            ModifierType::NormSys => HI_LO_FACTORS,
            ModifierType::HistoSys => HI_LO_TEMPLATES,
            ModifierType::StatError | ModifierType::ShapeSys => UNCERTAINTIES,
            ModifierType::Lumi | ModifierType::NormFactor | ModifierType::ShapeFactor => &[],
        }
    }

    /// What the data means, for messages.
    pub fn describe_data(self) -> &'static str {
        match self {
            ModifierType::NormSys => "the factors at α = ±1",
            ModifierType::HistoSys => "the templates at α = ±1",
            ModifierType::StatError | ModifierType::ShapeSys => "the absolute per-bin uncertainties",
            ModifierType::Lumi | ModifierType::NormFactor | ModifierType::ShapeFactor => "no data",
        }
    }
}

impl fmt::Display for ModifierType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which histosys interpolation to use (pyhf's `code0`, `code2`, `code4p`; default 4p).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HistoSysCode {
    Code0,
    Code2,
    #[default]
    Code4p,
}

/// Which normsys interpolation to use (pyhf's `code1`, `code4`; default 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NormSysCode {
    Code1,
    #[default]
    Code4,
}

impl HistoSysCode {
    pub const ALL: [HistoSysCode; 3] = [HistoSysCode::Code0, HistoSysCode::Code2, HistoSysCode::Code4p];

    pub fn name(self) -> &'static str {
        match self {
            HistoSysCode::Code0 => "code0",
            HistoSysCode::Code2 => "code2",
            HistoSysCode::Code4p => "code4p",
        }
    }
}

impl NormSysCode {
    pub const ALL: [NormSysCode; 2] = [NormSysCode::Code1, NormSysCode::Code4];

    pub fn name(self) -> &'static str {
        match self {
            NormSysCode::Code1 => "code1",
            NormSysCode::Code4 => "code4",
        }
    }
}
