//! The structure of a HistFactory model as the runtime evaluates it: channels of samples, each
//! sample a nominal template with modifier instances that point at their parameters and at
//! their data, and the constraint terms. Histograms are not held here: they are *operands*,
//! numbered slices passed at every evaluation (constants from a workspace, or a network's
//! yields in neos), so one structure serves every training step.
//!
//! A [`Structure`] is built by the compiler (neos-ir's `histfactory::Model`, which computes
//! pyhf's parameter layout) and, in generated code, rebuilt from the integers and floats of
//! [`Structure::encode`], so that a model of any size is two literal arrays, not code.

use std::ops::Range;

use super::modifier::{Constraint, Effect, FieldShape, HistoSysCode, ModifierType, NormSysCode};

/// One modifier of one sample: its type, its first parameter and the operands of its data (in
/// the order of [`ModifierType::fields`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub ty: ModifierType,
    pub param: usize,
    pub data: Vec<usize>,
}

/// A sample: the operand of its nominal yields and its modifiers.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleDesc {
    pub nominal: usize,
    pub modifiers: Vec<Instance>,
}

/// A channel: its bin count and samples.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelDesc {
    pub bins: usize,
    pub samples: Vec<SampleDesc>,
}

/// The templates one modifier instance gives to its set's constraint widths: its sample's
/// nominal operand and its uncertainty operand, which cover the set's parameters from
/// `offset` on (a staterror named in several channels has one parameter per bin of each, in
/// channel order, as pyhf concatenates them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub nominal: usize,
    pub uncertainty: usize,
    pub offset: usize,
}

/// The constraint of one constrained parameter set: its type, its parameters (one auxiliary
/// measurement each, laid out in this order after the main data), and where its widths come
/// from: fixed `widths` (σ for Normal constraints, from the measurement's `sigmas`; τ for a
/// shapesys, from its `factors`), otherwise the modifier data of `sources` (every staterror
/// instance of the set; the one shapesys instance), otherwise 1.
///
/// Bins whose templates give no width (a zero or negative uncertainty or nominal sum) get
/// width 1, as pyhf gives them; the model fixes their parameters where it can see the data.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstraintDesc {
    pub ty: ModifierType,
    pub params: Range<usize>,
    pub widths: Option<Vec<f64>>,
    pub sources: Vec<Source>,
}

/// A whole model.
#[derive(Clone, Debug, PartialEq)]
pub struct Structure {
    /// The number of parameters.
    pub params: usize,
    /// The length of each operand.
    pub operands: Vec<usize>,
    /// Channels in the order of the main data.
    pub channels: Vec<ChannelDesc>,
    /// Constraint terms in the order of the auxiliary data.
    pub constraints: Vec<ConstraintDesc>,
    pub normsys_code: NormSysCode,
    pub histosys_code: HistoSysCode,
}

/// Where one sample's bins sit in the main data, and its modifiers split by effect.
#[derive(Clone, Debug)]
pub(crate) struct SampleIndex {
    /// The sample's first bin in the main data.
    pub main: usize,
    pub bins: usize,
    /// The sample's first bin among all samples' bins (`F` and `A` buffers).
    pub slot: usize,
    pub nominal: usize,
    /// Indices into `Likelihood::instances`.
    pub multiplicative: Range<usize>,
    pub additive: Range<usize>,
}

/// A modifier instance with its sample.
#[derive(Clone, Debug)]
pub(crate) struct FlatInstance {
    pub ty: ModifierType,
    pub param: usize,
    pub data: [usize; 2],
    /// One parameter per bin (θ[param + b] acts on bin b) rather than one for all bins.
    pub per_bin: bool,
}

/// The structure with the indices evaluation needs, checked.
#[derive(Clone, Debug)]
pub struct Likelihood {
    pub(crate) structure: Structure,
    pub(crate) samples: Vec<SampleIndex>,
    /// Multiplicative then additive instances of each sample, in sample order.
    pub(crate) instances: Vec<FlatInstance>,
    /// Offsets of the operands in the flat input z = [θ | operands | data].
    pub(crate) offsets: Vec<usize>,
    pub(crate) n_main: usize,
    pub(crate) n_aux: usize,
    /// The number of sample·bin slots.
    pub(crate) slots: usize,
    /// Sets of per-bin parameters that the Hessian couples only among themselves and with the
    /// remaining ("global") parameters: the blocks a Newton solve eliminates first.
    pub(crate) blocks: Vec<Vec<usize>>,
    /// The most bins any channel has.
    pub(crate) max_bins: usize,
}

impl Likelihood {
    /// Checks the structure (every index in range, operand lengths matching their use) and
    /// derives the indices evaluation uses.
    pub fn new(structure: Structure) -> Result<Self, String> {
        let p = structure.params;
        let n_ops = structure.operands.len();
        let operand = |k: usize, len: usize, what: &str| -> Result<(), String> {
            match structure.operands.get(k) {
                None => Err(format!("{what}: expected an operand below {n_ops}, found {k}")),
                Some(&n) if n != len => Err(format!("{what}: expected operand {k} of length {len}, found {n}")),
                Some(_) => Ok(()),
            }
        };
        let mut samples = Vec::new();
        let mut instances = Vec::new();
        let (mut main, mut slot) = (0, 0);
        for (c, channel) in structure.channels.iter().enumerate() {
            let bins = channel.bins;
            if bins == 0 {
                return Err(format!("channel {c}: expected at least one bin, found none"));
            }
            for (s, sample) in channel.samples.iter().enumerate() {
                let at = format!("channel {c}, sample {s}");
                operand(sample.nominal, bins, &format!("{at}: nominal"))?;
                let start = instances.len();
                let mut additive = Vec::new();
                for (m, inst) in sample.modifiers.iter().enumerate() {
                    let at = format!("{at}, modifier {m} ({})", inst.ty);
                    let n = inst.ty.parameters(bins);
                    if inst.param + n > p {
                        return Err(format!(
                            "{at}: expected parameters within the model's {p}, found {}..{}",
                            inst.param,
                            inst.param + n
                        ));
                    }
                    let fields = inst.ty.fields();
                    if inst.data.len() != fields.len() {
                        return Err(format!(
                            "{at}: expected {} data operands, found {}",
                            fields.len(),
                            inst.data.len()
                        ));
                    }
                    for (field, &k) in fields.iter().zip(&inst.data) {
                        let len = match field.shape {
                            FieldShape::Scalar => 1,
                            FieldShape::Bins => bins,
                        };
                        operand(k, len, &format!("{at}: {}", field.lang))?;
                    }
                    let mut data = [usize::MAX; 2];
                    data[..inst.data.len()].copy_from_slice(&inst.data);
                    let flat = FlatInstance { ty: inst.ty, param: inst.param, data, per_bin: inst.ty.per_bin() };
                    match inst.ty.effect() {
                        Effect::Multiplicative => instances.push(flat),
                        Effect::Additive => additive.push(flat),
                    }
                }
                let mid = instances.len();
                instances.extend(additive);
                samples.push(SampleIndex {
                    main,
                    bins,
                    slot,
                    nominal: sample.nominal,
                    multiplicative: start..mid,
                    additive: mid..instances.len(),
                });
                slot += bins;
            }
            main += bins;
        }
        let mut n_aux = 0;
        for (k, c) in structure.constraints.iter().enumerate() {
            let at = format!("constraint {k} ({})", c.ty);
            if c.params.end > p || c.params.is_empty() {
                return Err(format!("{at}: expected parameters within the model's {p}, found {:?}", c.params));
            }
            let n = c.params.len();
            match c.ty.constraint() {
                Constraint::None => {
                    return Err(format!(
                        "{at}: expected a constrained modifier type (histosys, normsys, lumi, staterror or shapesys), found {}",
                        c.ty
                    ))
                }
                Constraint::Normal | Constraint::Poisson => {}
            }
            if let Some(s) = &c.widths {
                if s.len() != n {
                    return Err(format!("{at}: expected {n} widths, found {}", s.len()));
                }
            }
            if c.ty.constraint() == Constraint::Poisson && c.widths.is_none() && c.sources.len() != 1 {
                return Err(format!("{at}: expected the templates of one shapesys, found {}", c.sources.len()));
            }
            for source in &c.sources {
                // The nominal's length is the bins it covers; the uncertainties must match it.
                let len = *structure.operands.get(source.nominal).ok_or_else(|| {
                    format!("{at}: nominal: expected an operand below {n_ops}, found {}", source.nominal)
                })?;
                if len == 0 || source.offset + len > n {
                    return Err(format!(
                        "{at}: expected templates within the set's {n} parameters, found bins {}..{}",
                        source.offset,
                        source.offset + len
                    ));
                }
                operand(source.uncertainty, len, &format!("{at}: uncertainties"))?;
            }
            n_aux += n;
        }
        let mut offsets = Vec::with_capacity(n_ops);
        let mut offset = p;
        for &len in &structure.operands {
            offsets.push(offset);
            offset += len;
        }
        let blocks = blocks(&structure, &samples, &instances);
        let max_bins = structure.channels.iter().map(|c| c.bins).max().unwrap_or(0);
        Ok(Likelihood { structure, samples, instances, offsets, n_main: main, n_aux, slots: slot, blocks, max_bins })
    }

    pub fn structure(&self) -> &Structure {
        &self.structure
    }

    /// An estimate (from above, within a small factor) of the bytes one fit of this model
    /// allocates: the dense P×P matrices of Newton's method (the Hessian, its trial copy, the
    /// result's, the factorisation and an inverse for uncertainties) and the per-bin buffers
    /// of the likelihood's evaluation. Tools check it against the memory they may use before
    /// they start, so that a model too large for the machine is refused with a message.
    pub fn fit_bytes(&self) -> u64 {
        let p = self.structure.params as u64;
        let operands: u64 = self.structure.operands.iter().map(|&n| n as u64).sum();
        let per_bin = (self.slots + self.n_main + self.n_aux) as u64;
        8 * (8 * p.saturating_mul(p) + 16 * per_bin + 4 * (p + operands))
    }

    /// The number of parameters.
    pub fn params(&self) -> usize {
        self.structure.params
    }

    /// The number of main bins.
    pub fn n_main(&self) -> usize {
        self.n_main
    }

    /// The number of auxiliary measurements.
    pub fn n_aux(&self) -> usize {
        self.n_aux
    }

    /// The length of each operand.
    pub fn operands(&self) -> &[usize] {
        &self.structure.operands
    }

    /// The length of the flat input [θ | operands | last] for a last part of `last` values.
    pub fn z_len(&self, last: usize) -> usize {
        self.params() + self.structure.operands.iter().sum::<usize>() + last
    }

    /// The offset of the last part (data, or weights) in the flat input.
    pub(crate) fn last_offset(&self) -> usize {
        self.z_len(0)
    }

    /// The parameter blocks a Newton solve eliminates first (see [`crate::Objective::blocks`]).
    pub fn blocks(&self) -> &[Vec<usize>] {
        &self.blocks
    }

    /// The structure as integers and floats, for generated code to rebuild it with
    /// [`Likelihood::decode`].
    pub fn encode(&self) -> (Vec<usize>, Vec<f64>) {
        let s = &self.structure;
        let mut ints = vec![s.params, s.operands.len()];
        ints.extend(&s.operands);
        ints.push(s.channels.len());
        for c in &s.channels {
            ints.extend([c.bins, c.samples.len()]);
            for sample in &c.samples {
                ints.extend([sample.nominal, sample.modifiers.len()]);
                for m in &sample.modifiers {
                    ints.extend([type_code(m.ty), m.param, m.data.len()]);
                    ints.extend(&m.data);
                }
            }
        }
        let mut floats = Vec::new();
        ints.push(s.constraints.len());
        for c in &s.constraints {
            ints.extend([type_code(c.ty), c.params.start, c.params.end, usize::from(c.widths.is_some())]);
            floats.extend(c.widths.iter().flatten());
            ints.push(c.sources.len());
            for source in &c.sources {
                ints.extend([source.nominal, source.uncertainty, source.offset]);
            }
        }
        let normsys = NormSysCode::ALL.iter().position(|c| *c == s.normsys_code).unwrap_or(0);
        let histosys = HistoSysCode::ALL.iter().position(|c| *c == s.histosys_code).unwrap_or(0);
        ints.extend([normsys, histosys]);
        (ints, floats)
    }

    /// Rebuilds a likelihood from [`Likelihood::encode`]'s output.
    pub fn decode(ints: &[usize], floats: &[f64]) -> Result<Self, String> {
        let mut r = Reader { ints, floats, i: 0, f: 0 };
        let params = r.int()?;
        let n_ops = r.int()?;
        let operands = (0..n_ops).map(|_| r.int()).collect::<Result<_, _>>()?;
        let mut channels = Vec::new();
        for _ in 0..r.int()? {
            let bins = r.int()?;
            let mut samples = Vec::new();
            for _ in 0..r.int()? {
                let nominal = r.int()?;
                let mut modifiers = Vec::new();
                for _ in 0..r.int()? {
                    let ty = r.ty()?;
                    let param = r.int()?;
                    let n = r.int()?;
                    let data = (0..n).map(|_| r.int()).collect::<Result<_, _>>()?;
                    modifiers.push(Instance { ty, param, data });
                }
                samples.push(SampleDesc { nominal, modifiers });
            }
            channels.push(ChannelDesc { bins, samples });
        }
        let mut constraints = Vec::new();
        for _ in 0..r.int()? {
            let ty = r.ty()?;
            let (start, end) = (r.int()?, r.int()?);
            let widths =
                if r.int()? == 1 { Some((start..end).map(|_| r.float()).collect::<Result<_, _>>()?) } else { None };
            let mut sources = Vec::new();
            for _ in 0..r.int()? {
                sources.push(Source { nominal: r.int()?, uncertainty: r.int()?, offset: r.int()? });
            }
            constraints.push(ConstraintDesc { ty, params: start..end, widths, sources });
        }
        let k = r.int()?;
        let normsys_code = *NormSysCode::ALL
            .get(k)
            .ok_or_else(|| format!("expected a normsys code below {}, found {k}", NormSysCode::ALL.len()))?;
        let k = r.int()?;
        let histosys_code = *HistoSysCode::ALL
            .get(k)
            .ok_or_else(|| format!("expected a histosys code below {}, found {k}", HistoSysCode::ALL.len()))?;
        if r.i != ints.len() || r.f != floats.len() {
            return Err(format!(
                "expected {} integers and {} floats, found {} and {}",
                r.i,
                r.f,
                ints.len(),
                floats.len()
            ));
        }
        Likelihood::new(Structure { params, operands, channels, constraints, normsys_code, histosys_code })
    }
}

fn type_code(ty: ModifierType) -> usize {
    ModifierType::ALL.iter().position(|t| *t == ty).unwrap_or(0)
}

struct Reader<'a> {
    ints: &'a [usize],
    floats: &'a [f64],
    i: usize,
    f: usize,
}

impl Reader<'_> {
    fn int(&mut self) -> Result<usize, String> {
        let v = *self.ints.get(self.i).ok_or("expected more integers in the encoded model")?;
        self.i += 1;
        Ok(v)
    }

    fn float(&mut self) -> Result<f64, String> {
        let v = *self.floats.get(self.f).ok_or("expected more floats in the encoded model")?;
        self.f += 1;
        Ok(v)
    }

    fn ty(&mut self) -> Result<ModifierType, String> {
        let k = self.int()?;
        ModifierType::ALL.get(k).copied().ok_or_else(|| format!("expected a modifier type code, found {k}"))
    }
}

/// The largest block worth eliminating on its own; larger connected sets of per-bin parameters
/// (a per-bin modifier shared by many channels) are left with the global parameters.
const MAX_BLOCK: usize = 16;

/// Groups the per-bin parameters into sets that touch disjoint bins: two per-bin parameters
/// share a block when they affect a common main bin (a staterror γ and a shapesys γ of one
/// bin). Parameters of one-parameter types affect whole channels and stay global.
fn blocks(structure: &Structure, samples: &[SampleIndex], instances: &[FlatInstance]) -> Vec<Vec<usize>> {
    let p = structure.params;
    // Union–find over parameters, joining the per-bin parameters of each main bin.
    let mut parent: Vec<usize> = (0..p).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut local = vec![false; p];
    let mut first_in_bin: Vec<Option<usize>> = vec![None; samples.iter().map(|s| s.main + s.bins).max().unwrap_or(0)];
    for s in samples {
        for inst in &instances[s.multiplicative.clone()] {
            if !inst.ty.per_bin() {
                continue;
            }
            for b in 0..s.bins {
                let q = inst.param + b;
                local[q] = true;
                match first_in_bin[s.main + b] {
                    None => first_in_bin[s.main + b] = Some(q),
                    Some(r) => {
                        let (a, c) = (root(&mut parent, q), root(&mut parent, r));
                        parent[a] = c;
                    }
                }
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for q in (0..p).filter(|&q| local[q]) {
        let r = root(&mut parent, q);
        groups.entry(r).or_default().push(q);
    }
    groups.into_values().filter(|g| g.len() <= MAX_BLOCK).collect()
}
