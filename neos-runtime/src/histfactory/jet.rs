//! Derivatives of the likelihood's gradient in given directions, for the vector-Jacobian
//! products of the IR's HistFactory nodes.
//!
//! jet_k(z; t₁, …, t_k) = ∇_z ∂_{t₁}⋯∂_{t_k} f(z): the reverse pass of `likelihood.rs` run in
//! k-fold nested dual numbers seeded with z + ε₁t₁ + … + ε_k t_k, reading the coefficient of
//! ε₁⋯ε_k. jet₀ is the gradient, jet₁(z; v) the Hessian–vector product H·v over all of z (so
//! the fit's implicit rule gets ∂/∂x (w·∇_θ f) from jet₁ with v = [w | 0]), and so on up to
//! [`MAX_ORDER`]. Each costs a few reverse passes, never a graph per parameter.

use super::likelihood::{Func, Scratch};
use super::scalar::{Dual, Scalar};
use super::structure::Likelihood;

/// The highest k of jet_k available: third derivatives of the gradient (fourth of f).
pub const MAX_ORDER: usize = 3;

/// The buffers of jets in one number type, kept by an [`super::Engine`] from call to call.
#[derive(Clone, Debug)]
pub struct JetBuffers<T> {
    scratch: Scratch<T>,
    z: Vec<T>,
    g: Vec<T>,
}

impl<T: Scalar> JetBuffers<T> {
    pub fn new(lik: &Likelihood) -> Self {
        JetBuffers { scratch: Scratch::new(lik), z: Vec::new(), g: Vec::new() }
    }

    /// jet_k of `func` at z with k = `T::ORDER` directions, into `out`.
    fn run(&mut self, lik: &Likelihood, func: Func, z: &[f64], tangents: &[&[f64]], out: &mut [f64]) {
        let mut ts = [0.0; MAX_ORDER];
        self.z.clear();
        self.z.extend(z.iter().enumerate().map(|(i, &x)| {
            for (slot, t) in ts.iter_mut().zip(tangents) {
                *slot = t[i];
            }
            T::seed(x, &ts[..tangents.len()])
        }));
        self.g.clear();
        self.g.resize(z.len(), T::zero());
        lik.gradient(func, &self.z, &mut self.scratch, &mut self.g);
        for (o, v) in out.iter_mut().zip(&self.g) {
            *o = v.top();
        }
    }
}

/// Buffers for jets of every order, each created on first use.
#[derive(Clone, Debug, Default)]
pub struct Jets {
    order0: Option<JetBuffers<f64>>,
    order1: Option<JetBuffers<Dual<f64>>>,
    order2: Option<JetBuffers<Dual<Dual<f64>>>>,
    order3: Option<JetBuffers<Dual<Dual<Dual<f64>>>>>,
    /// The directions and the per-row term of [`hessian_vjp`], as long as z.
    directions: [Vec<f64>; 2],
    term: Vec<f64>,
}

impl Jets {
    /// jet_k of `func` at z in the directions `tangents` (each as long as z), into `out`.
    pub fn jet(
        &mut self,
        lik: &Likelihood,
        func: Func,
        z: &[f64],
        tangents: &[&[f64]],
        out: &mut [f64],
    ) -> Result<(), String> {
        if let Some(t) = tangents.iter().find(|t| t.len() != z.len()) {
            return Err(format!("expected directions of length {}, found {}", z.len(), t.len()));
        }
        if out.len() != z.len() {
            return Err(format!("expected an output of length {}, found {}", z.len(), out.len()));
        }
        match tangents.len() {
            0 => self.order0.get_or_insert_with(|| JetBuffers::new(lik)).run(lik, func, z, tangents, out),
            1 => self.order1.get_or_insert_with(|| JetBuffers::new(lik)).run(lik, func, z, tangents, out),
            2 => self.order2.get_or_insert_with(|| JetBuffers::new(lik)).run(lik, func, z, tangents, out),
            3 => self.order3.get_or_insert_with(|| JetBuffers::new(lik)).run(lik, func, z, tangents, out),
            k => {
                return Err(format!(
                    "expected derivatives of the HistFactory likelihood up to order {}, found a request for order {}",
                    MAX_ORDER + 1,
                    k + 1
                ))
            }
        }
        Ok(())
    }
}

/// jet_k of `func` at z in the directions `tangents` (each as long as z), into `out`.
pub fn jet(lik: &Likelihood, func: Func, z: &[f64], tangents: &[&[f64]], out: &mut [f64]) -> Result<(), String> {
    Jets::default().jet(lik, func, z, tangents, out)
}

/// The adjoint of the Hessian node: ∇_z Σᵢⱼ H̄ᵢⱼ ∂²f/∂θᵢ∂θⱼ for an adjoint H̄ of the P×P
/// Hessian of −ln L with respect to θ. Only H̄'s symmetric part matters. When it has rank one
/// (as the adjoint of σ_μ = √(H⁻¹)_μμ has) one second-order jet suffices; otherwise there is
/// one per nonzero row.
pub fn hessian_vjp(lik: &Likelihood, jets: &mut Jets, z: &[f64], h_bar: &[f64], out: &mut [f64]) -> Result<(), String> {
    let p = lik.params();
    if h_bar.len() != p * p {
        return Err(format!("expected a {p}×{p} adjoint, found {} values", h_bar.len()));
    }
    let sym = |i: usize, j: usize| 0.5 * (h_bar[i * p + j] + h_bar[j * p + i]);
    out.iter_mut().for_each(|v| *v = 0.0);
    let scale = (0..p * p).map(|k| h_bar[k].abs()).fold(0.0, f64::max);
    if scale == 0.0 {
        return Ok(());
    }
    // The directions and the term live in `jets` so that no call allocates; they are taken
    // out while `jets.jet` borrows the rest, and put back whatever the outcome.
    let [mut first, mut second] = std::mem::take(&mut jets.directions);
    let mut term = std::mem::take(&mut jets.term);
    term.resize(z.len(), 0.0);
    let mut run = || -> Result<(), String> {
        // S = v vᵀ / S_rr with v the row of the largest diagonal entry, when that reproduces S.
        let r = (0..p).max_by(|&a, &b| sym(a, a).abs().total_cmp(&sym(b, b).abs())).unwrap_or(0);
        let pivot = sym(r, r);
        let rank_one = pivot != 0.0
            && (0..p).all(|i| (0..p).all(|j| (sym(i, j) - sym(i, r) * sym(r, j) / pivot).abs() <= 1e-12 * scale));
        if rank_one {
            embed(&mut first, z.len(), p, |j| sym(r, j));
            jets.jet(lik, Func::Nll, z, &[&first, &first], &mut term)?;
            for (o, t) in out.iter_mut().zip(&term) {
                *o = t / pivot;
            }
            return Ok(());
        }
        for i in 0..p {
            if (0..p).all(|j| sym(i, j) == 0.0) {
                continue;
            }
            embed(&mut first, z.len(), p, |j| if j == i { 1.0 } else { 0.0 });
            embed(&mut second, z.len(), p, |j| sym(i, j));
            jets.jet(lik, Func::Nll, z, &[&first, &second], &mut term)?;
            for (o, t) in out.iter_mut().zip(&term) {
                *o += t;
            }
        }
        Ok(())
    };
    let result = run();
    jets.directions = [first, second];
    jets.term = term;
    result
}

/// Fills `t` with zeros as long as z and `row(j)` in its first p entries.
fn embed(t: &mut Vec<f64>, len: usize, p: usize, row: impl Fn(usize) -> f64) {
    t.clear();
    t.resize(len, 0.0);
    for (j, v) in t[..p].iter_mut().enumerate() {
        *v = row(j);
    }
}
