//! A HistFactory model in pyhf's vocabulary: channels of samples, each sample a nominal
//! histogram with modifiers. This is the one specification type of the project, generic over
//! what it holds: expressions in the `neos!` language (`Spec<lang::Expr>`), numbers read from
//! a pyhf workspace (`Spec<Vec<f64>>`), graph tensors once lowered (`Spec<Tensor>`). Every
//! element carries a [`Loc`], so errors found when the model is built point back at the
//! user's tokens or at the place in the JSON.
//!
//! What a modifier *type* means (its parameters, constraint, data) is in [`ModifierType`].

use crate::loc::Loc;

pub use neos_runtime::histfactory::{HistoSysCode, ModifierType, NormSysCode, HI, LO};

/// A whole model: channels, the parameter of interest, the measurement's parameter settings
/// and the interpolation codes.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec<D> {
    pub channels: Vec<Channel<D>>,
    pub poi: Option<(String, Loc)>,
    pub parameters: Vec<ParameterConfig>,
    pub normsys_code: NormSysCode,
    pub histosys_code: HistoSysCode,
    /// The model as a whole (errors that belong to no single element point here).
    pub at: Loc,
}

/// One channel (a region): its name and samples. All samples have the channel's bin count.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel<D> {
    pub name: String,
    pub samples: Vec<Sample<D>>,
    pub at: Loc,
}

/// One sample: its nominal yields (one per bin of the channel) and modifiers.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<D> {
    pub name: String,
    pub nominal: D,
    pub modifiers: Vec<Modifier<D>>,
    pub at: Loc,
}

/// A modifier: the parameter set it is driven by (shared by every modifier of that name), its
/// type, and its data in the order of [`ModifierType::fields`] (normsys: `hi`, `lo` factors;
/// histosys: `hi`, `lo` templates; staterror and shapesys: the uncertainties; others none).
#[derive(Clone, Debug, PartialEq)]
pub struct Modifier<D> {
    pub name: String,
    pub ty: ModifierType,
    pub data: Vec<D>,
    pub at: Loc,
}

/// A measurement's settings for one parameter set (pyhf's
/// `measurements[].config.parameters[]`); what is given replaces the type's default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParameterConfig {
    pub name: String,
    pub inits: Option<Vec<f64>>,
    pub bounds: Option<Vec<(f64, f64)>>,
    pub fixed: Option<bool>,
    pub auxdata: Option<Vec<f64>>,
    pub sigmas: Option<Vec<f64>>,
    /// A shapesys's Poisson τ per bin, in place of (nominal/uncertainty)².
    pub factors: Option<Vec<f64>>,
    pub at: Loc,
}

impl<D> Default for Spec<D> {
    fn default() -> Self {
        Spec {
            channels: Vec::new(),
            poi: None,
            parameters: Vec::new(),
            normsys_code: NormSysCode::default(),
            histosys_code: HistoSysCode::default(),
            at: Loc::default(),
        }
    }
}

impl<D> Modifier<D> {
    /// A modifier at no particular place, for models written by hand.
    pub fn new(name: &str, ty: ModifierType, data: Vec<D>) -> Self {
        Modifier { name: name.into(), ty, data, at: Loc::default() }
    }

    pub fn normfactor(name: &str) -> Self {
        Self::new(name, ModifierType::NormFactor, Vec::new())
    }

    pub fn shapefactor(name: &str) -> Self {
        Self::new(name, ModifierType::ShapeFactor, Vec::new())
    }

    pub fn lumi(name: &str) -> Self {
        Self::new(name, ModifierType::Lumi, Vec::new())
    }

    /// Factors `hi` and `lo` at α = ±1.
    pub fn normsys(name: &str, hi: D, lo: D) -> Self {
        Self::new(name, ModifierType::NormSys, vec![hi, lo])
    }

    /// Templates `hi` and `lo` at α = ±1.
    pub fn histosys(name: &str, hi: D, lo: D) -> Self {
        Self::new(name, ModifierType::HistoSys, vec![hi, lo])
    }

    /// Absolute per-bin Monte Carlo uncertainties.
    pub fn staterror(name: &str, uncertainties: D) -> Self {
        Self::new(name, ModifierType::StatError, vec![uncertainties])
    }

    /// Absolute per-bin uncertainties with a Poisson constraint.
    pub fn shapesys(name: &str, uncertainties: D) -> Self {
        Self::new(name, ModifierType::ShapeSys, vec![uncertainties])
    }
}

impl<D> Sample<D> {
    pub fn new(name: &str, nominal: D, modifiers: Vec<Modifier<D>>) -> Self {
        Sample { name: name.into(), nominal, modifiers, at: Loc::default() }
    }
}

impl<D> Channel<D> {
    pub fn new(name: &str, samples: Vec<Sample<D>>) -> Self {
        Channel { name: name.into(), samples, at: Loc::default() }
    }
}

impl<D> Spec<D> {
    /// The same model with every piece of data mapped by `f`, in order (channels, samples,
    /// each sample's nominal then its modifiers' data). `f` returns `None` for data that could
    /// not be mapped (it reports why itself); every piece is still visited, so that all
    /// problems are found at once, and the result is `None` if any failed.
    pub fn try_map<E>(&self, mut f: impl FnMut(&D) -> Option<E>) -> Option<Spec<E>> {
        let mut ok = true;
        let mut channels = Vec::with_capacity(self.channels.len());
        for c in &self.channels {
            let mut samples = Vec::with_capacity(c.samples.len());
            for s in &c.samples {
                let nominal = f(&s.nominal);
                let mut modifiers = Vec::with_capacity(s.modifiers.len());
                for m in &s.modifiers {
                    let data: Vec<Option<E>> = m.data.iter().map(&mut f).collect();
                    match data.into_iter().collect::<Option<Vec<E>>>() {
                        Some(data) => modifiers.push(Modifier { name: m.name.clone(), ty: m.ty, data, at: m.at }),
                        None => ok = false,
                    }
                }
                match nominal {
                    Some(nominal) => samples.push(Sample { name: s.name.clone(), nominal, modifiers, at: s.at }),
                    None => ok = false,
                }
            }
            channels.push(Channel { name: c.name.clone(), samples, at: c.at });
        }
        ok.then(|| Spec {
            channels,
            poi: self.poi.clone(),
            parameters: self.parameters.clone(),
            normsys_code: self.normsys_code,
            histosys_code: self.histosys_code,
            at: self.at,
        })
    }

    /// The same model with every piece of data mapped by `f`.
    pub fn map<E>(&self, mut f: impl FnMut(&D) -> E) -> Spec<E> {
        self.try_map(|d| Some(f(d))).unwrap_or_default()
    }
}

impl<D> Spec<D> {
    /// This model (an existing analysis, e.g. read from a pyhf workspace) with `overlay`'s
    /// channels and samples spliced in: an overlay channel of a new name is added; one of an
    /// existing name keeps the base's samples, each overlay sample replacing the base's sample
    /// of its name or joining them. Every other channel, sample, modifier and parameter setting
    /// of the base stays. The overlay's POI (if any) and parameter settings take precedence over
    /// the base's (settings by name), and its interpolation codes are the model's.
    pub fn spliced(mut self, overlay: Spec<D>) -> Spec<D> {
        for channel in overlay.channels {
            match self.channels.iter_mut().find(|c| c.name == channel.name) {
                None => self.channels.push(channel),
                Some(base) => {
                    for sample in channel.samples {
                        match base.samples.iter_mut().find(|s| s.name == sample.name) {
                            Some(old) => *old = sample,
                            None => base.samples.push(sample),
                        }
                    }
                }
            }
        }
        if overlay.poi.is_some() {
            self.poi = overlay.poi;
        }
        for config in overlay.parameters {
            self.parameters.retain(|p| p.name != config.name);
            self.parameters.push(config);
        }
        self.normsys_code = overlay.normsys_code;
        self.histosys_code = overlay.histosys_code;
        self.at = overlay.at;
        self
    }
}
