//! The model: pyhf's parameter layout (order, names, inits, bounds, auxiliary data), computed
//! here with the pieces of `layout.rs`, and nowhere else, from a [`Spec`]; the runtime
//! [`Likelihood`] structure it compiles to; and the graph nodes of its likelihood, expected
//! data, Hessian and fits.
//!
//! ν_cb(θ) = Σ_s [Π κ_s(θ)]_b · [nominal_sb + Σ Δ_sb(θ)] and
//! ln L(θ | n, a) = Σ_cb [n ln ν − ν − ln Γ(n + 1)] + Σ_constraints ln p(a | θ),
//! with Normal constraints for normsys, histosys, lumi and staterror and Poisson constraints
//! for shapesys, as `pyhf.pdf.Model` has them. The arithmetic is the runtime's
//! (`neos_runtime::histfactory`); here each quantity is one node of the graph, whatever the
//! number of parameters.

use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::Array1;
use neos_runtime::histfactory::{
    ChannelDesc, Constraint, ConstraintDesc, FieldShape, Instance, Likelihood, Node, SampleDesc, Source, Structure,
};

pub use super::layout::ParamSet;
use super::layout::{apply_config, check_unique_names, template_tau, widthless_bins, SetLayout};
use super::node::HfNode;
use super::spec::Spec;
use crate::builder::{Builder, Tensor};
use crate::error::{IrError, Result};
use crate::fit::FitConfig;
use crate::graph::NodeId;
use crate::loc::Loc;
use crate::types::{DType, Shape, TensorType};

/// A piece of model data once lowered: a tensor, and where it was written if known (so that a
/// shape error points at the expression rather than at the whole modifier).
pub trait ModelData<'b> {
    fn tensor(&self) -> Tensor<'b>;
    fn at(&self) -> Option<Loc> {
        None
    }
}

impl<'b> ModelData<'b> for Tensor<'b> {
    fn tensor(&self) -> Tensor<'b> {
        *self
    }
}

impl<'b> ModelData<'b> for (Tensor<'b>, Loc) {
    fn tensor(&self) -> Tensor<'b> {
        self.0
    }

    fn at(&self) -> Option<Loc> {
        Some(self.1)
    }
}

/// A HistFactory model whose histograms are tensors of one graph.
#[derive(Clone, Debug)]
pub struct Model<'b> {
    pub params: Vec<ParamSet>,
    pub poi_index: Option<usize>,
    /// Channel names and bin counts, sorted by name as pyhf orders them.
    channels: Vec<(String, usize)>,
    likelihood: Arc<Likelihood>,
    /// The distinct histograms the structure's operands refer to, and their types.
    operands: Vec<Tensor<'b>>,
    operand_types: Arc<[TensorType]>,
    /// Measurement configs of parameters the model does not have: pyhf ignores them.
    ignored: Vec<(Loc, String)>,
    b: &'b Builder,
}

fn model_error(at: Loc, message: String) -> IrError {
    IrError::Model { at, message }
}

/// Checks one piece of data against the shape its field needs: one number, or one per bin of
/// the channel, whose bin count its first sample (`first`) sets.
fn check_shape(
    t: Tensor<'_>,
    shape: FieldShape,
    (bins, first): (usize, &str),
    what: &str,
) -> std::result::Result<(), String> {
    let fits = match shape {
        FieldShape::Scalar => t.shape().is_scalar() || t.shape() == Shape::fixed(&[1]),
        FieldShape::Bins => t.shape() == Shape::fixed(&[bins]) || (bins == 1 && t.shape().is_scalar()),
    };
    if fits {
        return Ok(());
    }
    let expected = match shape {
        FieldShape::Scalar => "a scalar".to_string(),
        FieldShape::Bins => format!("{bins} bins like the channel's first sample `{first}`"),
    };
    Err(match (shape, t.shape().dims()) {
        (FieldShape::Bins, [crate::types::Dim::Fixed(found)]) => format!("{what}: expected {expected}, found {found}"),
        _ => format!("{what}: expected {expected}, found shape {}", t.shape()),
    })
}

impl<'b> Model<'b> {
    /// Checks the spec, computes the parameter layout and compiles the likelihood's structure.
    /// Every problem is reported, each at the element it is about.
    pub fn new<D: ModelData<'b>>(spec: Spec<D>) -> Result<Self> {
        let mut errors = Vec::new();
        // Shapes, in declaration order (so "the channel's first sample" is the user's first).
        let mut bins_of: BTreeMap<&str, usize> = BTreeMap::new();
        let mut builder = None;
        if spec.channels.is_empty() {
            push_error(&mut errors, spec.at, "expected at least one channel in the model, found none".into());
        }
        for channel in &spec.channels {
            if bins_of.contains_key(channel.name.as_str()) {
                push_error(
                    &mut errors,
                    channel.at,
                    format!("expected unique channel names, found `{}` twice", channel.name),
                );
                continue;
            }
            let Some(first) = channel.samples.first() else {
                push_error(
                    &mut errors,
                    channel.at,
                    format!("channel `{}`: expected at least one sample, found none", channel.name),
                );
                continue;
            };
            let t = first.nominal.tensor();
            builder.get_or_insert(t.builder());
            let bins = match t.shape().dims() {
                [] => 1,
                [crate::types::Dim::Fixed(n)] if *n > 0 => *n,
                _ => {
                    let at = first.nominal.at().unwrap_or(first.at);
                    push_error(
                        &mut errors,
                        at,
                        format!("sample `{}`: expected a histogram of shape [bins], found {}", first.name, t.shape()),
                    );
                    continue;
                }
            };
            bins_of.insert(&channel.name, bins);
            let mut names = BTreeMap::new();
            for sample in &channel.samples {
                if names.insert(sample.name.as_str(), ()).is_some() {
                    push_error(
                        &mut errors,
                        sample.at,
                        format!(
                            "channel `{}`: expected unique sample names, found `{}` twice",
                            channel.name, sample.name
                        ),
                    );
                }
                let what = format!("channel `{}`, sample `{}`", channel.name, sample.name);
                let like = (bins, first.name.as_str());
                if let Err(e) = check_shape(sample.nominal.tensor(), FieldShape::Bins, like, &what) {
                    // Its modifiers' data have the sample's bins: one error says it.
                    push_error(&mut errors, sample.nominal.at().unwrap_or(sample.at), e);
                    continue;
                }
                let mut modifier_names = BTreeMap::new();
                for m in &sample.modifiers {
                    if modifier_names.insert((m.name.as_str(), m.ty), ()).is_some() {
                        push_error(
                            &mut errors,
                            m.at,
                            format!("{what}: expected one {} named `{}`, found a second", m.ty, m.name),
                        );
                    }
                    let fields = m.ty.fields();
                    if m.data.len() != fields.len() {
                        push_error(
                            &mut errors,
                            m.at,
                            format!(
                                "{} `{}`: expected {} data ({}), found {}",
                                m.ty,
                                m.name,
                                fields.len(),
                                m.ty.describe_data(),
                                m.data.len()
                            ),
                        );
                        continue;
                    }
                    for (field, d) in fields.iter().zip(&m.data) {
                        let what = format!("{} `{}`: {}", m.ty, m.name, field.lang);
                        if let Err(e) = check_shape(d.tensor(), field.shape, like, &what) {
                            push_error(&mut errors, d.at().unwrap_or(m.at), e);
                        }
                    }
                }
            }
        }
        let Some(b) = builder else { return Err(many(errors)) };
        if !errors.is_empty() {
            return Err(many(errors));
        }
        // pyhf's order: channels by name, samples by name within them.
        let mut channels: Vec<_> = spec.channels.iter().collect();
        channels.sort_by(|a, b| a.name.cmp(&b.name));
        let sorted: Vec<(&super::spec::Channel<D>, Vec<&super::spec::Sample<D>>)> = channels
            .iter()
            .map(|c| {
                let mut samples: Vec<_> = c.samples.iter().collect();
                samples.sort_by(|a, b| a.name.cmp(&b.name));
                (*c, samples)
            })
            .collect();
        // Parameter sets by name, in the order of the walk (pyhf's: sorted channels, sorted
        // samples, then each sample's modifiers).
        let mut sets: BTreeMap<&str, SetLayout<'_>> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        let mut walk = 0;
        for (channel, samples) in &sorted {
            let bins = bins_of[channel.name.as_str()];
            for sample in samples {
                for m in &sample.modifiers {
                    walk += 1;
                    let Some(set) = sets.get_mut(m.name.as_str()) else {
                        sets.insert(&m.name, SetLayout::new(m.ty, &channel.name, bins, m.at, walk));
                        order.push(&m.name);
                        continue;
                    };
                    if let Err(e) = set.add(m.ty, &channel.name, bins, walk) {
                        push_error(&mut errors, m.at, format!("modifier `{}`: {e}", m.name));
                    }
                }
            }
        }
        // pyhf orders parameter sets by modifier type (alphabetically; a set of two types by
        // the first), then by first appearance as that type.
        order.sort_by_key(|name| sets[name].order_key());
        let mut params = Vec::with_capacity(order.len());
        let mut offset = 0;
        for name in order {
            let set = &sets[name];
            let (ty, len) = (set.ty, set.len);
            let (lo, hi) = ty.default_bounds();
            params.push(ParamSet {
                name: name.to_string(),
                ty,
                range: offset..offset + len,
                inits: vec![ty.default_init(); len],
                bounds: vec![(lo, hi); len],
                fixed: vec![false; len],
                fixed_by_config: false,
                auxdata: None,
                sigmas: None,
                factors: None,
                at: set.at,
            });
            offset += len;
        }
        if let Some((at, message)) = check_unique_names(&params) {
            push_error(&mut errors, at, message);
        }
        let mut ignored = Vec::new();
        for config in &spec.parameters {
            match params.iter_mut().find(|p| p.name == config.name) {
                Some(set) => {
                    if let Err(e) = apply_config(set, config) {
                        push_error(&mut errors, config.at, e);
                    }
                }
                None => ignored.push((
                    config.at,
                    format!(
                        "measurement parameter `{}`: the model has no parameter of that name, so its settings are ignored",
                        config.name
                    ),
                )),
            }
        }
        for set in params.iter().filter(|s| s.ty.needs_measurement_config()) {
            if set.auxdata.is_none() || set.sigmas.is_none() {
                push_error(&mut errors, set.at,
                    format!(
                        "{} parameter `{}`: expected `auxdata` and `sigmas` in the measurement's parameter config, found {}",
                        set.ty,
                        set.name,
                        if set.auxdata.is_none() { "no auxdata" } else { "no sigmas" }
                    ),
                );
            }
        }
        let poi_index = match &spec.poi {
            None => None,
            Some((poi, at)) => match params.iter().find(|p| &p.name == poi) {
                Some(p) if p.len() == 1 => Some(p.range.start),
                Some(p) => {
                    push_error(
                        &mut errors,
                        *at,
                        format!("poi `{poi}`: expected a single parameter, found {} of them", p.len()),
                    );
                    None
                }
                None => {
                    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
                    push_error(
                        &mut errors,
                        *at,
                        format!(
                            "poi `{poi}`: expected a parameter of the model ({}), found none of that name",
                            names.join(", ")
                        ),
                    );
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(many(errors));
        }
        // The structure: distinct histograms become operands.
        let mut operands: Vec<Tensor<'b>> = Vec::new();
        let mut index: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut operand = |t: Tensor<'b>| -> usize {
            *index.entry(t.id()).or_insert_with(|| {
                operands.push(t);
                operands.len() - 1
            })
        };
        let set_of = |name: &str| params.iter().find(|p| p.name == name);
        let mut sources: BTreeMap<&str, Vec<Source>> = BTreeMap::new();
        let mut channel_descs = Vec::with_capacity(sorted.len());
        for (channel, samples) in &sorted {
            let mut sample_descs = Vec::with_capacity(samples.len());
            for sample in samples {
                let nominal = operand(sample.nominal.tensor());
                let mut modifiers = Vec::with_capacity(sample.modifiers.len());
                for m in &sample.modifiers {
                    let data: Vec<usize> = m.data.iter().map(|d| operand(d.tensor())).collect();
                    // Where this channel's parameters start within the set.
                    let within = sets.get(m.name.as_str()).map_or(0, |set| set.offset_in(&channel.name));
                    if let (Constraint::Normal | Constraint::Poisson, [uncertainty]) = (m.ty.constraint(), &data[..]) {
                        let source = Source { nominal, uncertainty: *uncertainty, offset: within };
                        sources.entry(&m.name).or_default().push(source);
                    }
                    let param = set_of(&m.name).map_or(0, |p| p.range.start) + within;
                    modifiers.push(Instance { ty: m.ty, param, data });
                }
                sample_descs.push(SampleDesc { nominal, modifiers });
            }
            channel_descs.push(ChannelDesc { bins: bins_of[channel.name.as_str()], samples: sample_descs });
        }
        // Bins whose templates give the constraint no width hold their parameter at its
        // initial value, as pyhf fixes them (only where the templates are known constants).
        for set in params.iter_mut().filter(|s| !s.fixed_by_config) {
            let all = sources.get(set.name.as_str()).map_or(&[][..], Vec::as_slice);
            if let Some(widthless) = widthless_bins(set, all, &operands) {
                set.fixed.iter_mut().zip(widthless).for_each(|(f, w)| *f |= w);
            }
        }
        // A shapesys's `factors` replace τ in the constraint, not the auxiliary count, which
        // stays (nominal/δ)² of its templates (pyhf's default auxdata) unless given too.
        for set in params.iter_mut().filter(|s| s.factors.is_some() && s.auxdata.is_none()) {
            let all = sources.get(set.name.as_str()).map_or(&[][..], Vec::as_slice);
            match template_tau(all, &operands) {
                Some(tau) => set.auxdata = Some(tau),
                None => push_error(
                    &mut errors,
                    set.at,
                    format!(
                        "shapesys `{}`: expected `auxdata` beside `factors` when its uncertainties are not constants",
                        set.name
                    ),
                ),
            }
        }
        if !errors.is_empty() {
            return Err(many(errors));
        }
        let constraints = params
            .iter()
            .filter(|set| set.constraint() != Constraint::None)
            .map(|set| ConstraintDesc {
                ty: set.ty,
                params: set.range.clone(),
                // The measurement's σ (lumi, or a staterror's given widths) or τ (a shapesys's
                // `factors`); otherwise the runtime computes them from the templates.
                widths: match set.ty.constraint() {
                    Constraint::Normal => set.sigmas.clone(),
                    Constraint::Poisson => set.factors.clone(),
                    Constraint::None => None,
                },
                sources: sources.get(set.name.as_str()).cloned().unwrap_or_default(),
            })
            .collect();
        let structure = Structure {
            params: offset,
            operands: operands.iter().map(|t| t.shape().fixed_numel()).collect(),
            channels: channel_descs,
            constraints,
            normsys_code: spec.normsys_code,
            histosys_code: spec.histosys_code,
        };
        let likelihood = Likelihood::new(structure).map_err(|e| model_error(spec.at, format!("model: {e}")))?;
        let channels = sorted.iter().map(|(c, _)| (c.name.clone(), bins_of[c.name.as_str()])).collect();
        let operand_types = operands.iter().map(|t| t.ty()).collect();
        Ok(Model { params, poi_index, channels, likelihood: Arc::new(likelihood), operands, operand_types, ignored, b })
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.params.last().map_or(0, |p| p.range.end)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The builder the model's nodes are added to.
    pub fn builder(&self) -> &'b Builder {
        self.b
    }

    /// The runtime structure of the likelihood.
    pub fn likelihood(&self) -> &Arc<Likelihood> {
        &self.likelihood
    }

    /// The distinct histograms of the model, in the order of the structure's operands (the
    /// order the runtime's likelihood takes them in).
    pub fn operands(&self) -> &[Tensor<'b>] {
        &self.operands
    }

    /// Measurement configs for parameters the model does not have, which pyhf (and this model)
    /// ignore, each with where it was given and a one-line message.
    pub fn ignored_configs(&self) -> &[(Loc, String)] {
        &self.ignored
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
        self.params.iter().flat_map(|p| p.fixed.iter().copied()).collect()
    }

    /// Channel names and bin counts, in the order of the main data.
    pub fn channels(&self) -> Vec<(&str, usize)> {
        self.channels.iter().map(|(c, n)| (c.as_str(), *n)).collect()
    }

    /// The number of main-measurement bins.
    pub fn n_main(&self) -> usize {
        self.likelihood.n_main()
    }

    /// The number of auxiliary measurements.
    pub fn n_aux(&self) -> usize {
        self.likelihood.n_aux()
    }

    /// A node of this model's likelihood.
    pub(crate) fn node(&self, node: Node, inputs: &[Tensor<'b>]) -> Tensor<'b> {
        HfNode::apply(self.b, &self.likelihood, &self.operand_types, node, inputs)
    }

    /// `θ`, the operands, then `last`.
    fn inputs(&self, theta: Tensor<'b>, last: Option<Tensor<'b>>) -> Vec<Tensor<'b>> {
        let mut v = Vec::with_capacity(self.operands.len() + 2);
        v.push(theta);
        v.extend_from_slice(&self.operands);
        v.extend(last);
        v
    }

    fn check_theta(&self, theta: Tensor<'b>) -> Result<()> {
        if theta.shape() != Shape::fixed(&[self.len()]) {
            return Err(IrError::Name {
                message: format!(
                    "parameters: expected a vector of the model's {} parameters, found shape {}",
                    self.len(),
                    theta.shape()
                ),
            });
        }
        Ok(())
    }

    fn check_data(&self, data: Tensor<'b>) -> Result<()> {
        let (n_main, n_aux) = (self.n_main(), self.n_aux());
        if data.shape() != Shape::fixed(&[n_main + n_aux]) {
            return Err(IrError::Name {
                message: format!(
                    "data: expected {n_main} main and {n_aux} auxiliary values, shape [{}], found {}",
                    n_main + n_aux,
                    data.shape()
                ),
            });
        }
        Ok(())
    }

    /// Main and auxiliary expected data at θ (pyhf's `expected_data`).
    pub fn expected_data(&self, theta: Tensor<'b>) -> Result<Tensor<'b>> {
        self.check_theta(theta)?;
        Ok(self.node(Node::Expected, &self.inputs(theta, None)))
    }

    /// ν(θ): the expected main data, channel after channel (pyhf's `expected_actualdata`).
    pub fn expected_actualdata(&self, theta: Tensor<'b>) -> Result<Tensor<'b>> {
        Ok(self.expected_data(theta)?.slice(0, 0..self.n_main()))
    }

    /// The expected auxiliary data at θ: θ itself for Normal constraints, γ·τ for Poisson ones.
    pub fn expected_auxdata(&self, theta: Tensor<'b>) -> Result<Tensor<'b>> {
        let n = self.n_main();
        Ok(self.expected_data(theta)?.slice(0, n..n + self.n_aux()))
    }

    /// The auxiliary data (pyhf's `config.auxdata`): the centre of each constraint, in
    /// parameter order — the measurement's `auxdata` or the type's default for Normal
    /// constraints, τ = (nominal/δ)² for Poisson ones (the expected aux data at γ = 1).
    pub fn auxdata(&self) -> Result<Tensor<'b>> {
        let mut centres = Vec::with_capacity(self.n_aux());
        let mut poisson = Vec::with_capacity(self.n_aux());
        for set in self.params.iter().filter(|s| s.constraint() != Constraint::None) {
            for j in 0..set.len() {
                let is_poisson = set.constraint() == Constraint::Poisson;
                poisson.push(if is_poisson && set.auxdata.is_none() { 1.0 } else { 0.0 });
                centres.push(match (is_poisson, &set.auxdata) {
                    // The measurement's auxiliary count replaces τ (pyhf reads it so).
                    (true, Some(a)) => a[j],
                    (true, None) => 0.0,
                    (false, Some(a)) => a[j],
                    // A Normal constraint is centred on the parameter's nominal value, which
                    // is its default initial value (0 for α's, 1 for lumi and γ's).
                    (false, None) => set.ty.default_init(),
                });
            }
        }
        let b = self.b;
        let constant = |v: Vec<f64>| b.constant(Array1::from(v).into_dyn(), DType::F64);
        if !poisson.contains(&1.0) {
            return Ok(constant(centres));
        }
        // Any θ with the Poisson-constrained γ's at 1 gives their τ's.
        let mut at_one = self.suggested_init();
        for set in self.params.iter().filter(|s| s.constraint() == Constraint::Poisson) {
            at_one[set.range.clone()].iter_mut().for_each(|v| *v = 1.0);
        }
        let tau = self.expected_auxdata(constant(at_one))?;
        Ok(tau * constant(poisson) + constant(centres))
    }

    /// ln L(θ | data) for data laid out as main bins then auxiliary data (pyhf's `logpdf`).
    pub fn logpdf(&self, theta: Tensor<'b>, data: Tensor<'b>) -> Result<Tensor<'b>> {
        Ok(-self.nll(theta, data)?)
    }

    /// −ln L(θ | data).
    pub fn nll(&self, theta: Tensor<'b>, data: Tensor<'b>) -> Result<Tensor<'b>> {
        self.check_theta(theta)?;
        self.check_data(data)?;
        Ok(self.node(Node::Nll, &self.inputs(theta, Some(data))))
    }

    /// ∇²_θ(−ln L) at θ for `data`, [P, P].
    pub fn hessian(&self, theta: Tensor<'b>, data: Tensor<'b>) -> Result<Tensor<'b>> {
        self.check_theta(theta)?;
        self.check_data(data)?;
        Ok(self.node(Node::Hessian, &self.inputs(theta, Some(data))).reshape([self.len(), self.len()]))
    }

    /// The maximum-likelihood parameters for `data`, starting from `init` (which also holds
    /// the values of fixed parameters), with the bounds, fixed parameters, tolerance and
    /// restarts of `config`. Differentiable by the implicit function theorem.
    pub fn fit(&self, init: Tensor<'b>, data: Tensor<'b>, config: &FitConfig) -> Result<Tensor<'b>> {
        self.check_theta(init)?;
        self.check_data(data)?;
        config.check(self.len()).map_err(|message| IrError::Name { message })?;
        Ok(self.node(Node::Fit(config.plan()), &self.inputs(init, Some(data))))
    }
}

fn push_error(errors: &mut Vec<IrError>, at: Loc, message: String) {
    errors.push(model_error(at, message));
}

fn many(mut errors: Vec<IrError>) -> IrError {
    if errors.len() == 1 {
        errors.remove(0)
    } else {
        IrError::Many(errors)
    }
}
