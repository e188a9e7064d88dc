//! The binned kernel density estimate, `relaxed.hist`: a histogram that is differentiable in
//! the events, the bin edges and the bandwidth.
//!
//! For values tᵢ, edges e₀ < … < e_B and bandwidth h, bin j holds
//! count_j = Σᵢ [Φ((e_{j+1} − tᵢ)/h) − Φ((e_j − tᵢ)/h)],
//! the mass of a normal kernel of width h around each value that falls inside the bin. The
//! mass below e₀ and above e_B is dropped, as relaxed does by default; with `reflect` it is
//! added to the first and last bins instead (so the total is the number of events). As h → 0
//! it becomes an ordinary histogram.
//!
//! The forward pass is one node (the runtime has a fused kernel for it); the derivative is
//! written in primitive operations, so it can itself be differentiated. With
//! zᵢₖ = (e_k − tᵢ)/h and per-edge weights a_k = ḡ_{k−1} − ḡ_k (ḡ₋₁ = ḡ_B = 0; with
//! reflection a₀ = a_B = 0, since the end edges no longer move mass out of the histogram):
//! ∂L/∂tᵢ = −Σ_k a_k φ(zᵢₖ)/h, ∂L/∂e_k = Σᵢ a_k φ(zᵢₖ)/h, ∂L/∂h = −Σᵢₖ a_k φ(zᵢₖ) zᵢₖ/h.

use ndarray::{Array1, ArrayD, ArrayViewD};

use crate::builder::{Builder, Tensor};
use crate::special::norm_cdf;
use crate::types::DType;
use crate::types::{Dim, Shape, TensorType};

/// The type of `hist(values, edges, bandwidth)`: values of shape `[n]` (usually the events),
/// edges `[B + 1]` with B ≥ 1, a scalar bandwidth; the result has shape `[B]`.
pub(crate) fn infer(inputs: &[&TensorType]) -> Result<TensorType, String> {
    let [values, edges, bandwidth] = inputs else {
        return Err(format!("expected 3 operands (values, edges, bandwidth), found {}", inputs.len()));
    };
    if values.dtype != edges.dtype || values.dtype != bandwidth.dtype {
        return Err(format!(
            "expected operands of one dtype, found {}, {} and {}",
            values.dtype, edges.dtype, bandwidth.dtype
        ));
    }
    if values.shape.rank() != 1 {
        return Err(format!("expected a vector of values such as [events], found {}", values.shape));
    }
    let bins = match edges.shape.dims() {
        [Dim::Fixed(n)] if *n >= 2 => n - 1,
        _ => return Err(format!("expected at least two bin edges of fixed number, found {}", edges.shape)),
    };
    if !bandwidth.shape.is_scalar() {
        return Err(format!("expected a scalar bandwidth, found {}", bandwidth.shape));
    }
    Ok(TensorType::new(values.dtype, Shape::fixed(&[bins])))
}

/// The histogram's value; edges must increase strictly and the bandwidth be positive, so that
/// no bin can be negative.
pub(crate) fn eval(args: &[ArrayViewD<'_, f64>], reflect: bool) -> Result<ArrayD<f64>, String> {
    let (values, edges) = (&args[0], &args[1]);
    let h = args[2].iter().next().copied().unwrap_or(f64::NAN);
    if !(h > 0.0 && h.is_finite()) {
        return Err(format!("expected a positive bandwidth, found {h}"));
    }
    let e: Vec<f64> = edges.iter().copied().collect();
    // `partial_cmp` also rejects NaN edges, which compare as neither greater nor smaller.
    if let Some(k) = (1..e.len()).find(|&k| e[k].partial_cmp(&e[k - 1]) != Some(std::cmp::Ordering::Greater)) {
        return Err(format!(
            "expected increasing bin edges, found edge {k} = {} after edge {} = {}",
            e[k],
            k - 1,
            e[k - 1]
        ));
    }
    let bins = e.len() - 1;
    let mut counts = Array1::<f64>::zeros(bins);
    let mut cdf = vec![0.0; e.len()];
    for &t in values.iter() {
        for (c, &edge) in cdf.iter_mut().zip(&e) {
            *c = norm_cdf((edge - t) / h);
        }
        for j in 0..bins {
            counts[j] += cdf[j + 1] - cdf[j];
        }
        if reflect {
            counts[0] += cdf[0];
            // 1 − Φ(z) = Φ(−z), written so the upper tail keeps its precision.
            counts[bins - 1] += norm_cdf((t - e[bins]) / h);
        }
    }
    Ok(counts.into_dyn())
}

/// The adjoints of values, edges and bandwidth, given the adjoint `g` of the counts.
pub(crate) fn vjp<'b>(x: &[Tensor<'b>], g: Tensor<'b>, reflect: bool, needs: &[bool]) -> Vec<Option<Tensor<'b>>> {
    let (values, edges, h) = (x[0], x[1], x[2]);
    let n = values.shape().0[0];
    let bins = g.shape().0[0].fixed().unwrap_or(0);
    // a_k = ḡ_{k−1} − ḡ_k over the B + 1 edges.
    let mut a = g.pad(0, 1, 0) - g.pad(0, 0, 1);
    if reflect {
        a = a.slice(0, 1..bins).pad(0, 1, 1);
    }
    let column = Shape::new([n, Dim::Fixed(1)]);
    let z = (edges - values.reshape(column)) / h; // [n, B + 1]
    let weighted = z.norm_pdf() * a; // a_k φ(zᵢₖ)
    vec![
        needs[0].then(|| -(weighted.sum(&[1]) / h)),
        needs[1].then(|| weighted.sum(&[0]) / h),
        needs[2].then(|| -((weighted * z).sum_all() / h)),
    ]
}

impl Builder {
    /// The bin edges neos trains: fixed outer edges `lo` and `hi` around trainable `inner`
    /// edges, repaired as `neos.hists_from_nn` does: an edge that is not above its
    /// predecessor moves to 10⁻⁴ above it. (Edges still not increasing after that are rejected
    /// when the histogram is evaluated.)
    pub fn neos_edges<'b>(&'b self, inner: Tensor<'b>, lo: f64, hi: f64) -> Tensor<'b> {
        let dtype = inner.dtype();
        let ends = |v: f64| self.scalar(v, dtype).reshape([1]);
        let bins = self.concat(&[ends(lo), inner, ends(hi)], 0);
        let n = bins.shape().0[0].fixed().unwrap_or(0);
        let (next, prev) = (bins.slice(0, 1..n), bins.slice(0, 0..n.saturating_sub(1)));
        let repaired = self.select(next.gt(prev), next, prev + 1e-4);
        self.concat(&[bins.slice(0, 0..1), repaired], 0)
    }

    /// The number of entries along the first axis of `values` (the events), as a scalar.
    pub fn count<'b>(&'b self, values: Tensor<'b>, dtype: DType) -> Tensor<'b> {
        let n = values.shape().0.first().copied().unwrap_or(Dim::Fixed(1));
        self.scalar(1.0, dtype).broadcast_to(Shape::new([n])).sum(&[0])
    }
}

impl<'b> Tensor<'b> {
    /// neos's yields from histogram counts: count · scale / N + 10⁻³, where N is the number of
    /// values histogrammed and `scale` the sample's scale factor times the overall scale (the
    /// luminosity). The 10⁻³ keeps every bin positive for the Poisson likelihood.
    pub fn neos_yields(self, values: Tensor<'b>, scale: Tensor<'b>) -> Tensor<'b> {
        let n = self.builder().count(values, self.dtype());
        self * scale / n + 1e-3
    }
}

/// A sample's histogram for the Monte Carlo weighted case and its statistical uncertainty,
/// written in primitive operations (so their derivatives come from autodiff and codegen fuses
/// them): the histogram node above stays the fast path for unweighted events.
///
/// With Kᵢⱼ the kernel mass of event i in bin j (the summand of `relaxed.hist`), the weighted
/// histogram is Σᵢ wᵢ Kᵢⱼ. When the n events given are a part of a sample of N (a training
/// batch, a test set), the whole sample's sums are estimated as N/n times the part's:
///
/// - weighted yields: y_j = scale · (N/n) · Σᵢ wᵢ Kᵢⱼ + 10⁻³ (the weights are normalised so
///   that the whole sample's weights sum to its expected yield; `scale` is a further factor
///   such as a luminosity ratio);
/// - their Monte Carlo statistical uncertainty: σ_j = scale · √((N/n) · Σᵢ wᵢ² Kᵢⱼ²), which is
///   √(Σw²) per bin for a hard histogram, pyhf's staterror input;
/// - unweighted yields are the weighted ones with wᵢ = 1/N and scale the sample's yield: neos's
///   y_j = scale · Σᵢ Kᵢⱼ / n, and σ_j = scale · √(Σᵢ Kᵢⱼ² / (n · N)).
///
/// N is a run-time scalar (the trainer passes each sample's size); when it is not positive, the
/// events given are the whole sample (N = n).
#[derive(Clone, Copy, Debug)]
pub struct SampleHist<'b> {
    /// Per-event, per-bin kernel masses Kᵢⱼ, `[events, bins]` (all ones for a one-bin count).
    pub masses: Tensor<'b>,
    /// Per-event weights, `[events]`, or none for unit weights.
    pub weights: Option<Tensor<'b>>,
    /// The number of events of the whole sample (not positive: the events given).
    pub sample_events: Tensor<'b>,
}

impl<'b> SampleHist<'b> {
    /// The histogram's events axis as a `[events, 1]` column of weights.
    fn weight_column(&self) -> Option<Tensor<'b>> {
        let n = self.masses.shape().0[0];
        self.weights.map(|w| w.reshape(Shape::new([n, Dim::Fixed(1)])))
    }

    /// The number of events given, n, and of the whole sample, N.
    fn sizes(&self) -> (Tensor<'b>, Tensor<'b>) {
        let b = self.masses.builder();
        let n = b.count(self.masses, self.masses.dtype());
        let given = self.sample_events;
        (n, b.select(given.gt(given.lit(0.0)), given, n))
    }

    /// Σᵢ wᵢ Kᵢⱼ (Σᵢ Kᵢⱼ without weights), `[bins]`.
    pub fn counts(&self) -> Tensor<'b> {
        match self.weight_column() {
            Some(w) => (self.masses * w).sum(&[0]),
            None => self.masses.sum(&[0]),
        }
    }

    /// The yields; see the type's docs.
    pub fn yields(&self, scale: Tensor<'b>) -> Tensor<'b> {
        let (n, big_n) = self.sizes();
        match self.weights {
            Some(_) => self.counts() * scale * (big_n / n) + 1e-3,
            None => self.counts() * scale / n + 1e-3,
        }
    }

    /// The Monte Carlo statistical uncertainty of the yields; see the type's docs. Without a
    /// scale, that of the counts of the events given: √(Σᵢ wᵢ² Kᵢⱼ²).
    pub fn uncertainty(&self, scale: Option<Tensor<'b>>) -> Tensor<'b> {
        let per_event = match self.weight_column() {
            Some(w) => self.masses * w,
            None => self.masses,
        };
        let squares = per_event.square().sum(&[0]);
        let Some(scale) = scale else { return squares.sqrt() };
        let (n, big_n) = self.sizes();
        match self.weights {
            Some(_) => (squares * (big_n / n)).sqrt() * scale,
            None => (squares / (n * big_n)).sqrt() * scale,
        }
    }
}

impl Builder {
    /// Each event's kernel mass in each bin, Kᵢⱼ = Φ((e_{j+1} − tᵢ)/h) − Φ((e_j − tᵢ)/h),
    /// `[events, bins]`; with `reflect`, the mass below the first edge is added to the first
    /// bin and the mass above the last edge to the last, as in [`Tensor::hist`].
    pub fn kernel_masses<'b>(
        &'b self,
        values: Tensor<'b>,
        edges: Tensor<'b>,
        bandwidth: Tensor<'b>,
        reflect: bool,
    ) -> Tensor<'b> {
        let n = values.shape().0[0];
        let count = edges.shape().0[0].fixed().unwrap_or(0);
        let bins = count.saturating_sub(1);
        let z = (edges - values.reshape(Shape::new([n, Dim::Fixed(1)]))) / bandwidth; // [n, B + 1]
        let cdf = z.norm_cdf();
        let masses = cdf.slice(1, 1..count) - cdf.slice(1, 0..bins);
        if !reflect || bins == 0 {
            return masses;
        }
        // 1 − Φ(z) = Φ(−z), written so the upper tail keeps its precision.
        let below = cdf.slice(1, 0..1).pad(1, 0, bins - 1);
        let above = (-z.slice(1, bins..count)).norm_cdf().pad(1, bins - 1, 0);
        masses + below + above
    }

    /// A one-bin "histogram" holding every event: masses of one, `[events, 1]`.
    pub fn whole_sample<'b>(&'b self, values: Tensor<'b>) -> Tensor<'b> {
        let n = values.shape().0.first().copied().unwrap_or(Dim::Fixed(1));
        self.scalar(1.0, values.dtype()).broadcast_to(Shape::new([n, Dim::Fixed(1)]))
    }
}
