//! pyhf's parameter layout: the parameter sets a model's modifiers make (which names share
//! parameters, how many each has, in which order they are laid out), the measurement's
//! settings applied to them, and the bins pyhf holds fixed. [`super::Model::new`] computes
//! the layout with these pieces, and nothing else does.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;

use neos_runtime::histfactory::{shapesys_tau, staterror_width, ConfigKey, Constraint, Sharing, Source};

use super::spec::{ModifierType, ParameterConfig};
use crate::builder::Tensor;
use crate::loc::Loc;

/// One named parameter set (a modifier's parameters) and where it lives in θ.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSet {
    pub name: String,
    pub ty: ModifierType,
    pub range: Range<usize>,
    pub inits: Vec<f64>,
    pub bounds: Vec<(f64, f64)>,
    /// Whether each parameter is held at its initial value in fits: by the measurement
    /// config, or (as pyhf does) because its constraint has no width in that bin.
    pub fixed: Vec<bool>,
    /// Whether the measurement config said `fixed`, which then holds for every bin.
    pub(super) fixed_by_config: bool,
    /// The auxiliary measurements from the measurement config, if given.
    pub(super) auxdata: Option<Vec<f64>>,
    /// The constraint widths σ from the measurement config, if given (lumi, staterror).
    pub(super) sigmas: Option<Vec<f64>>,
    /// The Poisson constraint's τ from the measurement config, if given (shapesys).
    pub(super) factors: Option<Vec<f64>>,
    /// Where the set first appears.
    pub at: Loc,
}

impl ParamSet {
    /// Whether pyhf names its parameters without an index (one parameter by nature).
    pub fn is_scalar(&self) -> bool {
        !self.ty.per_bin()
    }

    pub fn constraint(&self) -> Constraint {
        self.ty.constraint()
    }

    pub fn len(&self) -> usize {
        self.range.len()
    }

    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

/// Applies a measurement's parameter config, checking that the type takes each setting (as
/// pyhf does), and lengths and bounds.
pub(super) fn apply_config(set: &mut ParamSet, config: &ParameterConfig) -> std::result::Result<(), String> {
    let n = set.len();
    let at = format!("measurement parameter `{}`", set.name);
    let given = [
        (ConfigKey::Inits, config.inits.is_some()),
        (ConfigKey::Bounds, config.bounds.is_some()),
        (ConfigKey::Fixed, config.fixed.is_some()),
        (ConfigKey::Auxdata, config.auxdata.is_some()),
        (ConfigKey::Sigmas, config.sigmas.is_some()),
        (ConfigKey::Factors, config.factors.is_some()),
    ];
    if let Some((key, _)) = given.iter().find(|(key, given)| *given && !set.ty.takes(*key)) {
        let takes: Vec<&str> = ConfigKey::ALL.iter().filter(|k| set.ty.takes(**k)).map(|k| k.name()).collect();
        return Err(format!(
            "{at}: expected only the settings a {} takes ({}), found `{}`",
            set.ty,
            takes.join(", "),
            key.name()
        ));
    }
    let check_len = |what: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(format!("{at}: expected {n} {what} (one per parameter), found {len}"))
        }
    };
    let positive =
        |what: &str, values: &[f64]| match values.iter().find(|v| v.partial_cmp(&&0.0) != Some(Ordering::Greater)) {
            Some(v) => Err(format!("{at}: expected positive {what}, found {v}")),
            None => Ok(()),
        };
    if let Some(bounds) = &config.bounds {
        check_len("bounds", bounds.len())?;
        if let Some((lo, hi)) =
            bounds.iter().find(|(lo, hi)| !matches!(lo.partial_cmp(hi), Some(Ordering::Less | Ordering::Equal)))
        {
            return Err(format!("{at}: expected bounds with low ≤ high, found [{lo}, {hi}]"));
        }
        set.bounds = bounds.clone();
    }
    if let Some(aux) = &config.auxdata {
        check_len("auxdata values", aux.len())?;
        set.auxdata = Some(aux.clone());
        if set.ty.needs_measurement_config() && config.inits.is_none() {
            set.inits = aux.clone();
        }
    }
    if let Some(sigmas) = &config.sigmas {
        check_len("sigmas", sigmas.len())?;
        positive("sigmas", sigmas)?;
        set.sigmas = Some(sigmas.clone());
    }
    if let Some(factors) = &config.factors {
        check_len("factors", factors.len())?;
        positive("factors", factors)?;
        set.factors = Some(factors.clone());
    }
    if let Some(inits) = &config.inits {
        check_len("inits", inits.len())?;
        set.inits = inits.clone();
    }
    if let Some(fixed) = config.fixed {
        set.fixed = vec![fixed; n];
        set.fixed_by_config = true;
    }
    if let Some((i, v)) =
        set.inits.iter().enumerate().find(|(i, v)| !(set.bounds[*i].0 <= **v && **v <= set.bounds[*i].1))
    {
        return Err(format!(
            "{at}: expected initial values within the bounds, found {v} outside [{}, {}] at index {i}",
            set.bounds[i].0, set.bounds[i].1
        ));
    }
    Ok(())
}

/// One parameter set while the layout is computed: its type (the first in layout order when
/// a normsys and a histosys share it), its parameter count, where each channel's parameters
/// start (staterror), and the walk positions that order it.
pub(super) struct SetLayout<'s> {
    pub(super) ty: ModifierType,
    pub(super) len: usize,
    pub(super) at: Loc,
    /// The channel whose bins came first, or each channel's start (staterror).
    channels: Vec<(&'s str, usize)>,
    /// The first walk position of the name as each of its types.
    first: Vec<(ModifierType, usize)>,
}

impl<'s> SetLayout<'s> {
    pub(super) fn new(ty: ModifierType, channel: &'s str, bins: usize, at: Loc, walk: usize) -> Self {
        SetLayout { ty, len: ty.parameters(bins), at, channels: vec![(channel, 0)], first: vec![(ty, walk)] }
    }

    /// Adds another modifier of the set's name, or says why it cannot share the set.
    pub(super) fn add(
        &mut self,
        ty: ModifierType,
        channel: &'s str,
        bins: usize,
        walk: usize,
    ) -> std::result::Result<(), String> {
        if !self.ty.shares_parameters_with(ty) {
            return Err(format!(
                "expected a {} as where the name first appears, found a {ty}; only modifiers whose parameters \
                 have the same facts (a normsys and a histosys) can share a name",
                self.ty
            ));
        }
        match ty.sharing() {
            Sharing::Once => {
                return Err(format!(
                    "expected one {ty} of this name in the model, found a second; each {ty} has parameters of its own, \
                     so give it a name of its own"
                ))
            }
            Sharing::PerChannel => {
                if !self.channels.iter().any(|(c, _)| *c == channel) {
                    self.channels.push((channel, self.len));
                    self.len += ty.parameters(bins);
                }
            }
            Sharing::Shared => {
                if ty.parameters(bins) != self.len {
                    return Err(format!(
                        "expected a {ty} of {} parameter(s) as where the name first appears, found {} (channel `{channel}` \
                         has {bins} bins)",
                        self.len,
                        ty.parameters(bins)
                    ));
                }
            }
        }
        if !self.first.iter().any(|(t, _)| *t == ty) {
            self.first.push((ty, walk));
        }
        self.ty = self.ty.min(ty);
        Ok(())
    }

    /// Where `channel`'s parameters start within the set.
    pub(super) fn offset_in(&self, channel: &str) -> usize {
        self.channels.iter().find(|(c, _)| *c == channel).map_or(0, |(_, start)| *start)
    }

    /// pyhf's order: by type, then by first appearance as that type.
    pub(super) fn order_key(&self) -> (ModifierType, usize) {
        let walk = self.first.iter().find(|(t, _)| *t == self.ty).map_or(0, |(_, w)| *w);
        (self.ty, walk)
    }
}

/// Refuses two parameters of one name (a normfactor `stat[0]` beside the staterror `stat`),
/// which pyhf accepts and then confuses: a fit's results are reported by name.
pub(super) fn check_unique_names(params: &[ParamSet]) -> Option<(Loc, String)> {
    let mut owner: BTreeMap<String, &ParamSet> = BTreeMap::new();
    for set in params {
        for i in 0..set.len() {
            let name = if set.is_scalar() { set.name.clone() } else { format!("{}[{i}]", set.name) };
            if let Some(first) = owner.get(&name) {
                return Some((
                    set.at,
                    format!(
                        "parameter `{name}`: expected unique parameter names, found it for the {} `{}` and the {} `{}`",
                        first.ty, first.name, set.ty, set.name
                    ),
                ));
            }
            owner.insert(name, set);
        }
    }
    None
}

/// A shapesys's τ = (nominal/δ)² per bin from its constant templates, `None` in the bins
/// where either is not positive; `None` as a whole when the templates are not constants.
fn shapesys_taus(sources: &[Source], operands: &[Tensor<'_>]) -> Option<Vec<Option<f64>>> {
    let src = sources.first()?;
    let nominal = operands.get(src.nominal)?.constant_value()?;
    let delta = operands.get(src.uncertainty)?.constant_value()?;
    Some(nominal.iter().zip(delta.iter()).map(|(n, d)| shapesys_tau(*n, *d)).collect())
}

/// A shapesys's auxiliary counts as pyhf computes their default: τ, and 1 where there is
/// none.
pub(super) fn template_tau(sources: &[Source], operands: &[Tensor<'_>]) -> Option<Vec<f64>> {
    Some(shapesys_taus(sources, operands)?.into_iter().map(|t| t.unwrap_or(1.0)).collect())
}

/// The bins of a constrained set whose templates give no width (pyhf fixes their parameters):
/// a staterror bin whose uncertainties are all zero or whose nominal sum is not positive, a
/// shapesys bin with a non-positive nominal or uncertainty. `None` when the set is not built
/// from templates, or when they are not constants (a network's histograms change with
/// training; the runtime then gives such a bin width 1).
pub(super) fn widthless_bins(set: &ParamSet, sources: &[Source], operands: &[Tensor<'_>]) -> Option<Vec<bool>> {
    let widths_given = match set.constraint() {
        Constraint::Normal => set.sigmas.is_some(),
        Constraint::Poisson => set.factors.is_some(),
        Constraint::None => true,
    };
    if widths_given || sources.is_empty() {
        return None;
    }
    if set.constraint() == Constraint::Poisson {
        return Some(shapesys_taus(sources, operands)?.iter().map(Option::is_none).collect());
    }
    let mut sq = vec![0.0; set.len()];
    let mut sum = vec![0.0; set.len()];
    for src in sources {
        let nominal = operands.get(src.nominal)?.constant_value()?;
        let delta = operands.get(src.uncertainty)?.constant_value()?;
        for (b, (n, d)) in nominal.iter().zip(delta.iter()).enumerate() {
            sq[src.offset + b] += d * d;
            sum[src.offset + b] += n;
        }
    }
    Some(sq.iter().zip(&sum).map(|(q, s)| staterror_width(*q, *s).is_none()).collect())
}
