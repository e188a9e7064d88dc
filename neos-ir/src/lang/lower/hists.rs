//! The lowering of a sample's histograms: `hist` (the KDE), `count` (the whole sample in one
//! bin) and `counts` (a softmax network's shares of the bins), with per-event weights, the
//! sample's whole size, and `mcstat`, their Monte Carlo statistical uncertainty. A second
//! `impl` of the lowering, split out of `lower.rs` because a sample's histogram is a concept of
//! its own.

use super::*;

/// How the events of a `hist`, `count` or `counts` fall into its bins.
#[derive(Clone, Copy)]
pub(super) enum Binning<'b> {
    /// A `hist`: the kernel density estimate over edges, with a bandwidth and reflection.
    Kde(Tensor<'b>, Tensor<'b>, bool),
    /// A `count`: every event in one bin.
    Whole,
    /// `counts`: the values are each event's share of every bin (a softmax network's outputs).
    Columns,
}

/// The ingredients of a `hist`, `count` or `counts`.
#[derive(Clone, Copy)]
pub(super) struct HistParts<'b> {
    pub(super) values: Tensor<'b>,
    pub(super) binning: Binning<'b>,
    pub(super) weights: Option<Tensor<'b>>,
    pub(super) group: u16,
    pub(super) scale: Option<Tensor<'b>>,
}

/// The input leaf holding the weights of weighted input `input`.
pub fn weights_input(input: &str) -> String {
    format!("{input}_weights")
}

/// The knob holding the number of events of input `input`'s whole sample, which the trainer
/// sets when it passes a batch or a test set (not positive: the events given are the sample).
pub fn sample_events_knob(input: &str) -> String {
    format!("{input}_events")
}

impl<'a, 'b> Lowering<'a, 'b> {
    /// `mcstat(x)`: the uncertainty of the `hist`, `count` or `counts` that `x` is.
    pub(super) fn mcstat(&mut self, x: &Expr) -> Option<Tensor<'b>> {
        let t = self.expr(x)?;
        match self.hists.get(&t.id()).copied() {
            Some(parts) => Some(self.sample_hist(parts).uncertainty(parts.scale)),
            None => {
                self.error(
                    x.at,
                    "mcstat: expected the result of a `hist`, `count` or `counts` (a `let` bound to one), found another \
                     expression"
                        .into(),
                );
                None
            }
        }
    }

    /// `hist(values, edges, bandwidth[, weights][, scale][, reflect])`.
    pub(super) fn hist(
        &mut self,
        values: &Expr,
        edges: &Expr,
        bandwidth: &Expr,
        weights: Option<&Expr>,
        scale: Option<&Expr>,
        reflect: bool,
    ) -> Option<Tensor<'b>> {
        let b = self.b;
        let w = weights.map(|w| self.expr(w));
        let parts = [
            self.expr(values),
            self.expr(edges),
            self.expr(bandwidth),
            scale.as_ref().map_or(Some(b.scalar(1.0, DType::F64)), |s| self.expr(s)),
        ];
        let [Some(v), Some(edges_t), Some(h), Some(s)] = parts else { return None };
        let w = match w {
            Some(w) => Some(w?),
            None => None,
        };
        let mut ok = true;
        if v.shape().rank() != 1 {
            self.error(
                values.at,
                format!(
                    "hist: expected values of shape [events] (one per event), found {}{}",
                    self.shown(&v.shape()),
                    if v.shape().rank() == 2 { " (pick a column with `x[i]`)" } else { "" }
                ),
            );
            ok = false;
        }
        if !matches!(edges_t.shape().dims(), [Dim::Fixed(n)] if *n >= 2) {
            self.error(
                edges.at,
                format!("hist: expected bin edges [bins + 1], found {}", self.shown(&edges_t.shape())),
            );
            ok = false;
        }
        if !h.shape().is_scalar() {
            self.error(bandwidth.at, format!("hist: expected a scalar bandwidth, found {}", self.shown(&h.shape())));
            ok = false;
        }
        if let Some(scale_expr) = scale {
            if !s.shape().is_scalar() {
                self.error(scale_expr.at, format!("hist: expected a scalar scale, found {}", self.shown(&s.shape())));
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let group = v.shape().events_group().unwrap_or(0);
        let parts = HistParts {
            values: v,
            binning: Binning::Kde(edges_t, h, reflect),
            weights: w,
            group,
            scale: scale.is_some().then_some(s),
        };
        if w.is_some() {
            return self.weighted(parts, weights, "hist");
        }
        // Unweighted: the histogram node (its own kernel), remembered for `mcstat`.
        let counts = v.hist(edges_t, h, reflect);
        let out = if scale.is_some() { counts.neos_yields(v, s) } else { counts };
        self.hists.insert(out.id(), parts);
        Some(out)
    }

    /// A `count` (every event in one bin) or `counts` (each event's softmax outputs over the
    /// bins) of a whole sample: the yields with a scale, else the sums.
    pub(super) fn whole_sample_hist(
        &mut self,
        values: &Expr,
        weights: Option<&Expr>,
        scale: Option<&Expr>,
        binning: Binning<'b>,
        at: Loc,
        f: &str,
    ) -> Option<Tensor<'b>> {
        let v = self.expr(values);
        let w = weights.map(|w| self.expr(w));
        let s = scale.map(|s| self.expr(s));
        let v = v?;
        let w = match w {
            Some(w) => Some(w?),
            None => None,
        };
        let s = match s {
            Some(s) => Some(s?),
            None => None,
        };
        let group = match (binning, v.shape().dims()) {
            (Binning::Columns, [d, Dim::Fixed(_)]) => d.events_group(),
            (Binning::Columns, _) => None,
            (_, dims) => dims.first().and_then(|d| d.events_group()),
        };
        let Some(group) = group else {
            let expected = match binning {
                Binning::Columns => "a network's outputs for the events of a sample, [events, bins]",
                _ => "the events of a sample",
            };
            self.error(values.at, format!("{f}: expected {expected}, found {}", self.shown(&v.shape())));
            return None;
        };
        if let Some(s) = s.filter(|s| !s.shape().is_scalar()) {
            let found = self.shown(&s.shape());
            self.error(scale.map_or(at, |e| e.at), format!("{f}: expected a scalar scale, found {found}"));
            return None;
        }
        let parts = HistParts { values: v, binning, weights: w, group, scale: s };
        self.weighted(parts, weights, f)
    }

    /// The knob holding the whole size of the sample of events group `g`.
    pub(super) fn sample_size(&mut self, g: u16) -> Tensor<'b> {
        let b = self.b;
        let name = sample_events_knob(self.sample(g));
        *self.sample_events.entry(g).or_insert_with(|| b.knob(&name, DType::F64, 0.0))
    }

    /// The per-event masses of a `hist` or `count` with its weights and its sample's size.
    pub(super) fn sample_hist(&mut self, parts: HistParts<'b>) -> SampleHist<'b> {
        let masses = self.masses(parts);
        SampleHist { masses, weights: parts.weights, sample_events: self.sample_size(parts.group) }
    }

    /// Each event's share of each bin, `[events, bins]`.
    pub(super) fn masses(&self, parts: HistParts<'b>) -> Tensor<'b> {
        match parts.binning {
            Binning::Kde(edges, h, reflect) => self.b.kernel_masses(parts.values, edges, h, reflect),
            Binning::Whole => self.b.whole_sample(parts.values),
            Binning::Columns => parts.values,
        }
    }

    /// The counts or yields of a weighted `hist` or of a `count`, remembered for `mcstat`.
    pub(super) fn weighted(
        &mut self,
        parts: HistParts<'b>,
        weights_expr: Option<&Expr>,
        f: &str,
    ) -> Option<Tensor<'b>> {
        let (weights, group) = (parts.weights, parts.group);
        if let (Some(w), Some(e)) = (weights, weights_expr) {
            if w.shape() != Shape::new([Dim::Events(group)]) {
                let found = if w.shape().events_group().is_some_and(|g| g != group) {
                    format!("the events of `{}`", self.sample(w.shape().events_group().unwrap_or(0)))
                } else {
                    self.shown(&w.shape())
                };
                self.error(
                    e.at,
                    format!("{f}: expected one weight per event of `{}` ([events]), found {found}", self.sample(group)),
                );
                return None;
            }
        }
        let out = match parts.scale {
            Some(s) => self.sample_hist(parts).yields(s),
            None => {
                let masses = self.masses(parts);
                SampleHist { masses, weights, sample_events: masses.lit(0.0) }.counts()
            }
        };
        self.hists.insert(out.id(), parts);
        Some(out)
    }
}
