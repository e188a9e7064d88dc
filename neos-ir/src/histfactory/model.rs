//! The model: pyhf's parameter layout (order, names, inits, bounds, auxiliary data) computed
//! from a [`Spec`], and the expected data and log-likelihood lowered into the IR.
//!
//! ν_cb(θ) = Σ_s [Π κ_s(θ)]_b · [nominal_sb + Σ Δ_sb(θ)] and
//! ln L(θ | n, a) = Σ_cb [n ln ν − ν − ln Γ(n + 1)] + Σ_constraints ln p(a | θ),
//! with Normal constraints for normsys, histosys, lumi and staterror and Poisson constraints
//! for shapesys, as `pyhf.pdf.Model` has them.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;

use ndarray::ArrayD;

use super::interp::{histosys, normsys};
use super::spec::{Channel, ModifierKind, ParameterConfig, Spec};
use crate::builder::Tensor;
use crate::error::{IrError, Result};
use crate::types::{DType, Dim, Shape};

/// How a parameter set is constrained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constraint {
    None,
    /// Normal(a | θ, σ).
    Normal,
    /// Poisson(a | γ·τ) with τ = (nominal/σ)².
    Poisson,
}

/// One named parameter set (a modifier's parameters) and where it lives in θ.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSet {
    pub name: String,
    /// The modifier type (`normfactor`, `histosys`, …).
    pub kind: &'static str,
    pub range: Range<usize>,
    pub inits: Vec<f64>,
    pub bounds: Vec<(f64, f64)>,
    pub fixed: bool,
    pub constraint: Constraint,
    /// Auxiliary data from the measurement config (Normal constraints), if given.
    auxdata: Option<Vec<f64>>,
    /// Widths from the measurement config (lumi), if given.
    sigmas: Option<Vec<f64>>,
}

impl ParamSet {
    /// Whether pyhf names its parameters without an index (one parameter by nature).
    pub fn is_scalar(&self) -> bool {
        matches!(self.kind, "normfactor" | "lumi" | "normsys" | "histosys")
    }

    pub fn len(&self) -> usize {
        self.range.len()
    }

    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

/// A HistFactory model ready to be lowered.
#[derive(Clone, Debug)]
pub struct Model<'b> {
    /// Channels sorted by name, samples within them sorted by name, as pyhf orders them.
    channels: Vec<Channel<'b>>,
    bins: Vec<usize>,
    pub params: Vec<ParamSet>,
    pub poi_index: Option<usize>,
    spec: Spec<'b>,
}

fn model_error(message: String) -> IrError {
    IrError::Name { message }
}

/// The number of bins of a histogram-shaped tensor, or what was wrong with it.
fn bins_of(t: Tensor<'_>, what: &str) -> Result<usize> {
    match t.shape().dims() {
        [Dim::Fixed(n)] => Ok(*n),
        _ => Err(model_error(format!("{what}: expected a histogram of fixed bins, found shape {}", t.shape()))),
    }
}

impl<'b> Model<'b> {
    /// Checks the spec and computes the parameter layout.
    pub fn new(spec: Spec<'b>) -> Result<Self> {
        let mut channels = spec.channels.clone();
        channels.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = channels.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(model_error(format!("expected unique channel names, found `{}` twice", w[0].name)));
        }
        let mut bins = Vec::with_capacity(channels.len());
        // (type, name) → (first-appearance order, number of parameters, where first seen).
        let mut seen: BTreeMap<String, (&'static str, usize, String)> = BTreeMap::new();
        let mut appearance: Vec<String> = Vec::new();
        for channel in &mut channels {
            channel.samples.sort_by(|a, b| a.name.cmp(&b.name));
            if let Some(w) = channel.samples.windows(2).find(|w| w[0].name == w[1].name) {
                return Err(model_error(format!(
                    "channel `{}`: expected unique sample names, found `{}` twice",
                    channel.name, w[0].name
                )));
            }
            let Some(first) = channel.samples.first() else {
                return Err(model_error(format!(
                    "channel `{}`: expected at least one sample, found none",
                    channel.name
                )));
            };
            let n = bins_of(first.nominal, &format!("channel `{}`, sample `{}`", channel.name, first.name))?;
            bins.push(n);
            for sample in &channel.samples {
                let here = format!("channel `{}`, sample `{}`", channel.name, sample.name);
                let m = bins_of(sample.nominal, &here)?;
                if m != n {
                    return Err(model_error(format!(
                        "{here}: expected {n} bins like the channel's other samples, found {m}"
                    )));
                }
                for modifier in &sample.modifiers {
                    let at = format!("{here}, modifier `{}`", modifier.name);
                    check_modifier_data(&modifier.kind, n, &at)?;
                    let kind = modifier.kind.type_name();
                    let len = match modifier.kind {
                        ModifierKind::ShapeFactor | ModifierKind::StatError { .. } | ModifierKind::ShapeSys { .. } => n,
                        ModifierKind::NormFactor
                        | ModifierKind::Lumi
                        | ModifierKind::NormSys { .. }
                        | ModifierKind::HistoSys { .. } => 1,
                    };
                    match seen.get(&modifier.name) {
                        Some((k, l, first_at)) if *k != kind || *l != len => {
                            return Err(model_error(format!(
                                "{at}: expected a {k} with {l} parameter(s) as at {first_at}, found a {kind} with {len}"
                            )))
                        }
                        Some(_) => {}
                        None => {
                            seen.insert(modifier.name.clone(), (kind, len, at.clone()));
                            appearance.push(modifier.name.clone());
                        }
                    }
                }
            }
        }
        // pyhf orders parameter sets by modifier type (alphabetically), then by first appearance.
        let mut order = appearance.clone();
        order.sort_by_key(|name| (seen[name].0, appearance.iter().position(|n| n == name)));
        let mut params = Vec::with_capacity(order.len());
        let mut offset = 0;
        for name in order {
            let (kind, len, _) = seen[&name].clone();
            params.push(default_paramset(&name, kind, offset..offset + len));
            offset += len;
        }
        for config in &spec.parameters {
            let Some(set) = params.iter_mut().find(|p| p.name == config.name) else {
                let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
                return Err(model_error(format!(
                    "measurement parameter `{}`: expected one of the model's parameters ({}), found none of that name",
                    config.name,
                    names.join(", ")
                )));
            };
            apply_config(set, config)?;
        }
        for set in &params {
            if set.kind == "lumi" && (set.auxdata.is_none() || set.sigmas.is_none()) {
                return Err(model_error(format!(
                    "lumi parameter `{}`: expected `auxdata` and `sigmas` in the measurement's parameter config, found {}",
                    set.name,
                    if set.auxdata.is_none() { "no auxdata" } else { "no sigmas" }
                )));
            }
        }
        let poi_index = match &spec.poi {
            None => None,
            Some(poi) => match params.iter().find(|p| &p.name == poi) {
                Some(p) if p.len() == 1 => Some(p.range.start),
                Some(p) => {
                    return Err(model_error(format!(
                        "poi `{poi}`: expected a single parameter, found {} of them",
                        p.len()
                    )))
                }
                None => return Err(model_error(format!("poi `{poi}`: expected a parameter of the model, found none"))),
            },
        };
        Ok(Model { channels, bins, params, poi_index, spec })
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.params.last().map_or(0, |p| p.range.end)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parameter-set names in order (pyhf's `config.par_order`).
    pub fn par_order(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.name.as_str()).collect()
    }

    /// One name per parameter (pyhf's `config.par_names`): `name`, or `name[i]` for per-bin sets.
    pub fn par_names(&self) -> Vec<String> {
        self.params
            .iter()
            .flat_map(|p| {
                (0..p.len()).map(move |i| if p.is_scalar() { p.name.clone() } else { format!("{}[{i}]", p.name) })
            })
            .collect()
    }

    pub fn suggested_init(&self) -> Vec<f64> {
        self.params.iter().flat_map(|p| p.inits.iter().copied()).collect()
    }

    pub fn suggested_bounds(&self) -> Vec<(f64, f64)> {
        self.params.iter().flat_map(|p| p.bounds.iter().copied()).collect()
    }

    pub fn suggested_fixed(&self) -> Vec<bool> {
        self.params.iter().flat_map(|p| std::iter::repeat_n(p.fixed, p.len())).collect()
    }

    /// Channel names and bin counts, in the order of the main data.
    pub fn channels(&self) -> Vec<(&str, usize)> {
        self.channels.iter().zip(&self.bins).map(|(c, &n)| (c.name.as_str(), n)).collect()
    }

    /// The number of main-measurement bins.
    pub fn n_main(&self) -> usize {
        self.bins.iter().sum()
    }

    /// The number of auxiliary measurements.
    pub fn n_aux(&self) -> usize {
        self.params.iter().filter(|p| p.constraint != Constraint::None).map(ParamSet::len).sum()
    }

    pub fn spec(&self) -> &Spec<'b> {
        &self.spec
    }

    /// The parameters of `set` within θ: a scalar for a scalar set, else a vector.
    fn par(&self, theta: Tensor<'b>, set: &ParamSet) -> Tensor<'b> {
        if set.is_scalar() {
            theta.index(0, set.range.start)
        } else {
            theta.slice(0, set.range.clone())
        }
    }

    fn set(&self, name: &str) -> Result<&ParamSet> {
        self.params.iter().find(|p| p.name == name).ok_or_else(|| model_error(format!("no parameter set `{name}`")))
    }

    /// ν(θ): the expected main data, channel after channel (pyhf's `expected_actualdata`).
    pub fn expected_actualdata(&self, theta: Tensor<'b>) -> Result<Tensor<'b>> {
        self.check_theta(theta)?;
        let b = theta.builder();
        let mut rates = Vec::with_capacity(self.channels.len());
        for channel in &self.channels {
            let mut total: Option<Tensor<'b>> = None;
            for sample in &channel.samples {
                let mut factor: Option<Tensor<'b>> = None;
                let mut shape = sample.nominal;
                for m in &sample.modifiers {
                    let p = self.par(theta, self.set(&m.name)?);
                    let term = match &m.kind {
                        ModifierKind::NormFactor | ModifierKind::ShapeFactor | ModifierKind::Lumi => p,
                        ModifierKind::StatError { .. } | ModifierKind::ShapeSys { .. } => p,
                        ModifierKind::NormSys { hi, lo } => normsys(self.spec.normsys_code, p, *hi, *lo),
                        ModifierKind::HistoSys { hi, lo } => {
                            shape = shape + histosys(self.spec.histosys_code, p, sample.nominal, *hi, *lo);
                            continue;
                        }
                    };
                    factor = Some(factor.map_or(term, |f| f * term));
                }
                let rate = factor.map_or(shape, |f| shape * f);
                total = Some(total.map_or(rate, |t| t + rate));
            }
            rates.push(total.unwrap_or_else(|| b.scalar(0.0, theta.dtype())));
        }
        Ok(b.concat(&rates, 0))
    }

    /// The constraint widths σ of every Normal-constrained set and the scale τ of every
    /// Poisson-constrained one, in parameter order, each as a tensor of the set's length.
    fn constraint_scales(&self, dtype: DType, b: &'b crate::Builder) -> Result<Vec<(usize, Tensor<'b>)>> {
        // staterror: σ_b = √(Σ_s δ²_sb) / Σ_s nominal_sb over the samples that carry it;
        // shapesys: τ_b = (nominal_b / δ_b)².
        let mut stat: BTreeMap<&str, (Tensor<'b>, Tensor<'b>)> = BTreeMap::new();
        let mut shapesys: BTreeMap<&str, Tensor<'b>> = BTreeMap::new();
        for channel in &self.channels {
            for sample in &channel.samples {
                for m in &sample.modifiers {
                    match &m.kind {
                        ModifierKind::StatError { uncertainties } => {
                            let sq = *uncertainties * *uncertainties;
                            let sums = match stat.get(m.name.as_str()) {
                                Some(&(s, nominal)) => (s + sq, nominal + sample.nominal),
                                None => (sq, sample.nominal),
                            };
                            stat.insert(&m.name, sums);
                        }
                        ModifierKind::ShapeSys { uncertainties } => {
                            let ratio = sample.nominal / *uncertainties;
                            shapesys.insert(&m.name, ratio * ratio);
                        }
                        ModifierKind::NormFactor
                        | ModifierKind::ShapeFactor
                        | ModifierKind::Lumi
                        | ModifierKind::NormSys { .. }
                        | ModifierKind::HistoSys { .. } => {}
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (i, set) in self.params.iter().enumerate() {
            let n = set.len();
            let scale = match set.constraint {
                Constraint::None => continue,
                Constraint::Poisson => shapesys[set.name.as_str()],
                Constraint::Normal => match (set.kind, &set.sigmas) {
                    ("staterror", _) => {
                        let (sq, nominal) = stat[set.name.as_str()];
                        sq.sqrt() / nominal
                    }
                    (_, Some(s)) => b.constant(ArrayD::from_shape_vec(vec![n], s.clone()).map_err(shape_error)?, dtype),
                    (_, None) => b.full(1.0, &crate::TensorType::new(dtype, [n])),
                },
            };
            out.push((i, scale.reshape(Shape::fixed(&[n]))));
        }
        Ok(out)
    }

    /// The auxiliary data (pyhf's `config.auxdata`): the centre of each constraint, in
    /// parameter order.
    pub fn auxdata(&self, dtype: DType, b: &'b crate::Builder) -> Result<Tensor<'b>> {
        let mut parts = Vec::new();
        for (i, scale) in self.constraint_scales(dtype, b)? {
            let set = &self.params[i];
            let n = set.len();
            parts.push(match (set.constraint, &set.auxdata) {
                (Constraint::Poisson, _) => scale,
                (_, Some(a)) => b.constant(ArrayD::from_shape_vec(vec![n], a.clone()).map_err(shape_error)?, dtype),
                (_, None) => {
                    b.full(if set.kind == "staterror" { 1.0 } else { 0.0 }, &crate::TensorType::new(dtype, [n]))
                }
            });
        }
        Ok(concat_or_empty(b, &parts, dtype))
    }

    /// The expected auxiliary data at θ: θ itself for Normal constraints, γ·τ for Poisson ones.
    pub fn expected_auxdata(&self, theta: Tensor<'b>) -> Result<Tensor<'b>> {
        self.check_theta(theta)?;
        let b = theta.builder();
        let mut parts = Vec::new();
        for (i, scale) in self.constraint_scales(theta.dtype(), b)? {
            let set = &self.params[i];
            let p = theta.slice(0, set.range.clone());
            parts.push(if set.constraint == Constraint::Poisson { p * scale } else { p });
        }
        Ok(concat_or_empty(b, &parts, theta.dtype()))
    }

    /// Main and auxiliary expected data, concatenated (pyhf's `expected_data`).
    pub fn expected_data(&self, theta: Tensor<'b>) -> Result<Tensor<'b>> {
        let main = self.expected_actualdata(theta)?;
        let aux = self.expected_auxdata(theta)?;
        Ok(theta.builder().concat(&[main, aux], 0))
    }

    /// ln L(θ | data) for data laid out as main bins then auxiliary data (pyhf's `logpdf`).
    pub fn logpdf(&self, theta: Tensor<'b>, data: Tensor<'b>) -> Result<Tensor<'b>> {
        let (n_main, n_aux) = (self.n_main(), self.n_aux());
        if data.shape() != Shape::fixed(&[n_main + n_aux]) {
            return Err(model_error(format!(
                "data: expected {} main and {} auxiliary values, shape [{}], found {}",
                n_main,
                n_aux,
                n_main + n_aux,
                data.shape()
            )));
        }
        let b = theta.builder();
        let nu = self.expected_actualdata(theta)?;
        let n = data.slice(0, 0..n_main);
        let mut total = poisson_logpdf(n, nu).sum_all();
        let mut offset = n_main;
        for (i, scale) in self.constraint_scales(theta.dtype(), b)? {
            let set = &self.params[i];
            let len = set.len();
            let a = data.slice(0, offset..offset + len);
            let p = theta.slice(0, set.range.clone());
            offset += len;
            let term = match set.constraint {
                Constraint::Poisson => poisson_logpdf(a, p * scale),
                // ln N(a | θ, σ) = −½((a − θ)/σ)² − ln σ − ½ ln 2π
                Constraint::Normal | Constraint::None => {
                    let z = (a - p) / scale;
                    -(z * z * 0.5) - scale.log() - 0.5 * (2.0 * std::f64::consts::PI).ln()
                }
            };
            total = total + term.sum_all();
        }
        Ok(total)
    }

    fn check_theta(&self, theta: Tensor<'b>) -> Result<()> {
        if theta.shape() != Shape::fixed(&[self.len()]) {
            return Err(model_error(format!(
                "parameters: expected a vector of the model's {} parameters, found shape {}",
                self.len(),
                theta.shape()
            )));
        }
        Ok(())
    }
}

/// ln Poisson(n | λ) = n ln λ − λ − ln Γ(n + 1), with n ln λ = 0 where n = 0 (scipy's `xlogy`),
/// written so that neither the value nor the gradient is NaN there even when λ = 0.
pub fn poisson_logpdf<'b>(n: Tensor<'b>, lambda: Tensor<'b>) -> Tensor<'b> {
    let b = n.builder();
    let safe = b.select(n.eq(n.lit(0.0)), n.lit(1.0), lambda);
    n * safe.log() - lambda - (n + 1.0).lgamma()
}

fn concat_or_empty<'b>(b: &'b crate::Builder, parts: &[Tensor<'b>], dtype: DType) -> Tensor<'b> {
    if parts.is_empty() {
        b.constant(ArrayD::zeros(vec![0]), dtype)
    } else {
        b.concat(parts, 0)
    }
}

fn shape_error(e: ndarray::ShapeError) -> IrError {
    model_error(format!("measurement config: {e}"))
}

/// pyhf's defaults for a modifier type.
fn default_paramset(name: &str, kind: &'static str, range: Range<usize>) -> ParamSet {
    let n = range.len();
    let (init, bounds, constraint) = match kind {
        "normfactor" | "shapefactor" => (1.0, (0.0, 10.0), Constraint::None),
        "lumi" => (1.0, (0.0, 10.0), Constraint::Normal),
        "normsys" | "histosys" => (0.0, (-5.0, 5.0), Constraint::Normal),
        "staterror" => (1.0, (1e-10, 10.0), Constraint::Normal),
        _ => (1.0, (1e-10, 10.0), Constraint::Poisson),
    };
    ParamSet {
        name: name.to_string(),
        kind,
        range,
        inits: vec![init; n],
        bounds: vec![bounds; n],
        fixed: false,
        constraint,
        auxdata: None,
        sigmas: None,
    }
}

/// Applies a measurement's parameter config, checking lengths and bounds.
fn apply_config(set: &mut ParamSet, config: &ParameterConfig) -> Result<()> {
    let n = set.len();
    let at = format!("measurement parameter `{}`", set.name);
    let check_len = |what: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(model_error(format!("{at}: expected {n} {what} (one per parameter), found {len}")))
        }
    };
    if let Some(bounds) = &config.bounds {
        check_len("bounds", bounds.len())?;
        if let Some((lo, hi)) =
            bounds.iter().find(|(lo, hi)| !matches!(lo.partial_cmp(hi), Some(Ordering::Less | Ordering::Equal)))
        {
            return Err(model_error(format!("{at}: expected bounds with low ≤ high, found [{lo}, {hi}]")));
        }
        set.bounds = bounds.clone();
    }
    if let Some(aux) = &config.auxdata {
        check_len("auxdata values", aux.len())?;
        set.auxdata = Some(aux.clone());
        if set.kind == "lumi" && config.inits.is_none() {
            set.inits = aux.clone();
        }
    }
    if let Some(sigmas) = &config.sigmas {
        check_len("sigmas", sigmas.len())?;
        if let Some(s) = sigmas.iter().find(|s| s.partial_cmp(&&0.0) != Some(Ordering::Greater)) {
            return Err(model_error(format!("{at}: expected positive sigmas, found {s}")));
        }
        set.sigmas = Some(sigmas.clone());
    }
    if let Some(inits) = &config.inits {
        check_len("inits", inits.len())?;
        set.inits = inits.clone();
    }
    if let Some(fixed) = config.fixed {
        set.fixed = fixed;
    }
    if let Some((i, v)) =
        set.inits.iter().enumerate().find(|(i, v)| !(set.bounds[*i].0 <= **v && **v <= set.bounds[*i].1))
    {
        return Err(model_error(format!(
            "{at}: expected initial values within the bounds, found {v} outside [{}, {}] at index {i}",
            set.bounds[i].0, set.bounds[i].1
        )));
    }
    Ok(())
}

/// Checks the shapes of a modifier's data.
fn check_modifier_data(kind: &ModifierKind<'_>, n: usize, at: &str) -> Result<()> {
    let expect = |t: Tensor<'_>, shape: Shape, what: &str| {
        if t.shape() == shape {
            Ok(())
        } else {
            Err(model_error(format!("{at}: expected {what} of shape {shape}, found {}", t.shape())))
        }
    };
    match kind {
        ModifierKind::NormFactor | ModifierKind::ShapeFactor | ModifierKind::Lumi => Ok(()),
        ModifierKind::NormSys { hi, lo } => {
            expect(*hi, Shape::scalar(), "a scalar `hi` factor")?;
            expect(*lo, Shape::scalar(), "a scalar `lo` factor")
        }
        ModifierKind::HistoSys { hi, lo } => {
            expect(*hi, Shape::fixed(&[n]), "`hi_data`")?;
            expect(*lo, Shape::fixed(&[n]), "`lo_data`")
        }
        ModifierKind::StatError { uncertainties } | ModifierKind::ShapeSys { uncertainties } => {
            expect(*uncertainties, Shape::fixed(&[n]), "per-bin uncertainties")
        }
    }
}
