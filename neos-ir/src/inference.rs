//! Asymptotic inference as graph nodes, so that every result is differentiable with respect to
//! the templates it comes from: profile-likelihood test statistics (q_μ, q̃_μ, q₀), pyhf's
//! `AsymptoticCalculator` (observed CLs, CLs+b, CLb and the expected band, after Cowan,
//! Cranmer, Gross and Vitells, Eur. Phys. J. C 71 (2011) 1554), discovery p-values, and the
//! neos training metrics (`cls`, `discovery`, `poi_uncert`).

use ndarray::Array1;

use crate::builder::{Builder, Tensor};
use crate::error::{IrError, Result};
use crate::fit::{solve, FitConfig};
use crate::histfactory::Model;
use crate::types::DType;

/// Which test statistic a hypothesis test uses (pyhf's `test_stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TestStat {
    /// q̃_μ, for a POI bounded below at 0 (pyhf's default).
    #[default]
    QTilde,
    /// q_μ.
    Q,
}

/// The results of one hypothesis test, as graph nodes.
#[derive(Clone, Debug)]
pub struct Hypotest<'b> {
    pub cls_obs: Tensor<'b>,
    pub clsb_obs: Tensor<'b>,
    pub clb_obs: Tensor<'b>,
    /// Expected CLs at −2σ, −1σ, median, +1σ, +2σ (pyhf's order).
    pub cls_exp: [Tensor<'b>; 5],
    /// The observed test statistic.
    pub q_obs: Tensor<'b>,
    /// The test statistic on the background-only Asimov data: (μ/σ_μ)² asymptotically.
    pub q_asimov: Tensor<'b>,
}

/// The fits of a hypothesis test that do not depend on the tested μ (see
/// [`Inference::unconditional`]).
#[derive(Clone, Copy, Debug)]
pub struct Unconditional<'b> {
    /// The free fit to the data.
    pub free: Tensor<'b>,
    /// The background-only Asimov data: the expected data at the μ = 0 fit to the data.
    pub asimov: Tensor<'b>,
    /// The free fit to the Asimov data.
    pub asimov_free: Tensor<'b>,
}

/// The results of a discovery test.
#[derive(Clone, Debug)]
pub struct Significance<'b> {
    pub p0_obs: Tensor<'b>,
    pub p0_exp: [Tensor<'b>; 5],
    pub z_obs: Tensor<'b>,
    pub q0_obs: Tensor<'b>,
}

/// A model and the settings of its fits.
#[derive(Debug)]
pub struct Inference<'b> {
    b: &'b Builder,
    model: Model<'b>,
    poi: usize,
    /// Look for a lower minimum in every fit on the other side of each parameter that can make
    /// the likelihood bimodal (see [`FitConfig::restarts`]); on by default.
    pub restarts: bool,
    /// The fits' projected-gradient tolerance.
    pub tolerance: f64,
}

/// The expected-band positions of pyhf, from −2σ to +2σ.
const BAND: [f64; 5] = [2.0, 1.0, 0.0, -1.0, -2.0];

impl<'b> Inference<'b> {
    pub fn new(model: Model<'b>) -> Result<Self> {
        let poi = model
            .poi_index
            .ok_or_else(|| IrError::Name { message: "inference: expected a model with a poi, found none".into() })?;
        // pyhf refuses a fixed POI: the profile likelihood ratio compares fits with it free
        // and fixed, and a POI that cannot move makes every test statistic zero.
        let name = &model.par_names()[poi];
        let (lo, hi) = model.suggested_bounds()[poi];
        if model.suggested_fixed()[poi] {
            return Err(IrError::Name {
                message: format!("inference: expected a free poi, found `{name}` fixed by the measurement config"),
            });
        }
        if !(lo < hi) {
            return Err(IrError::Name {
                message: format!(
                    "inference: expected poi bounds of positive width, found `{name}` within [{lo}, {hi}]"
                ),
            });
        }
        // The background-only hypothesis (μ = 0) makes the Asimov data of CLs and is the
        // hypothesis of p₀; pyhf refuses to fit it outside the bounds.
        if !(lo <= 0.0 && 0.0 <= hi) {
            return Err(IrError::Name {
                message: format!(
                    "inference: expected poi bounds that contain 0 (the background-only hypothesis), found `{name}` within [{lo}, {hi}]"
                ),
            });
        }
        Ok(Inference { b: model.builder(), model, poi, restarts: true, tolerance: 1e-9 })
    }

    pub fn model(&self) -> &Model<'b> {
        &self.model
    }

    /// The builder the inference adds its nodes to.
    pub fn builder(&self) -> &'b Builder {
        self.b
    }

    /// The initial values, with the POI replaced by `poi` if given.
    fn init(&self, poi: Option<Tensor<'b>>) -> Tensor<'b> {
        let init = self.b.constant(Array1::from(self.model.suggested_init()).into_dyn(), DType::F64);
        match poi {
            None => init,
            Some(mu) => {
                let p = self.model.len();
                let parts = [init.slice(0, 0..self.poi), mu.reshape([1]), init.slice(0, self.poi + 1..p)];
                self.b.concat(&parts, 0)
            }
        }
    }

    /// The maximum-likelihood parameters for `data` (main then auxiliary), with the POI fixed
    /// at `poi` if given.
    pub fn fit(&self, data: Tensor<'b>, poi: Option<Tensor<'b>>) -> Result<Tensor<'b>> {
        let mut config = FitConfig::new(self.model.suggested_bounds());
        config.fixed = self.model.suggested_fixed();
        config.restarts = self.restarts;
        config.tolerance = self.tolerance;
        if poi.is_some() {
            config.fixed[self.poi] = true;
        }
        self.model.fit(self.init(poi), data, &config)
    }

    /// −ln L(θ | data).
    pub fn nll(&self, theta: Tensor<'b>, data: Tensor<'b>) -> Result<Tensor<'b>> {
        self.model.nll(theta, data)
    }

    /// Main and auxiliary expected data at θ.
    pub fn expected_data(&self, theta: Tensor<'b>) -> Result<Tensor<'b>> {
        self.model.expected_data(theta)
    }
    /// pyhf's Asimov data: the expected data at the fit to `data` with the POI fixed at `mu`.
    pub fn asimov(&self, data: Tensor<'b>, mu: f64) -> Result<Tensor<'b>> {
        let theta = self.fit(data, Some(self.b.scalar(mu, DType::F64)))?;
        self.expected_data(theta)
    }

    /// neos's Asimov data: the expected data at the nominal nuisance values and POI `mu`; that
    /// point is also the unconditional optimum on these data.
    pub fn asimov_nominal(&self, mu: f64) -> Result<Tensor<'b>> {
        self.expected_data(self.init(Some(self.b.scalar(mu, DType::F64))))
    }

    /// The fit with the POI fixed at `mu`, started from `free` (the free fit to the same data)
    /// with its POI replaced: the minimum is usually a few Newton steps away from there.
    fn fit_from(&self, data: Tensor<'b>, mu: Tensor<'b>, free: Tensor<'b>) -> Result<Tensor<'b>> {
        let mut config = FitConfig::new(self.model.suggested_bounds());
        config.fixed = self.model.suggested_fixed();
        config.fixed[self.poi] = true;
        config.restarts = self.restarts;
        config.tolerance = self.tolerance;
        // Also from pyhf's start (the suggested values): the free fit's minimum can lie in the
        // basin of a local minimum of the fixed-μ problem (a histosys whose sign flips between
        // μ̂ and the tested μ).
        config.also_from = self.restarts.then(|| self.model.suggested_init());
        let p = self.model.len();
        let start = self.b.concat(&[free.slice(0, 0..self.poi), mu.reshape([1]), free.slice(0, self.poi + 1..p)], 0);
        self.model.fit(start, data, &config)
    }

    /// The one-sided q_μ = 2[−ln L(μ, θ̂̂) + ln L(μ̂, θ̂)], zero where μ̂ > μ (pyhf's `qmu`;
    /// with the POI bounded at zero it equals `qmu_tilde`).
    pub fn q_mu(&self, mu: Tensor<'b>, data: Tensor<'b>) -> Result<Tensor<'b>> {
        let free = self.fit(data, None)?;
        self.q_mu_given(mu, data, free)
    }

    /// q_μ given the free fit `free` to `data`.
    fn q_mu_given(&self, mu: Tensor<'b>, data: Tensor<'b>, free: Tensor<'b>) -> Result<Tensor<'b>> {
        let fixed = self.fit_from(data, mu, free)?;
        let q = ((self.nll(fixed, data)? - self.nll(free, data)?) * 2.0).maximum(mu.lit(0.0));
        let mu_hat = free.index(0, self.poi);
        Ok(self.b.select(mu_hat.gt(mu), mu.lit(0.0), q))
    }

    /// q₀ = 2[−ln L(0, θ̂̂) + ln L(μ̂, θ̂)], zero where μ̂ < 0 (pyhf's `q0`).
    pub fn q0(&self, data: Tensor<'b>) -> Result<Tensor<'b>> {
        self.q0_given(data, self.fit(data, None)?)
    }

    /// q₀ given the free fit `free` to `data`.
    fn q0_given(&self, data: Tensor<'b>, free: Tensor<'b>) -> Result<Tensor<'b>> {
        let zero = self.b.scalar(0.0, DType::F64);
        let fixed = self.fit_from(data, zero, free)?;
        let q = ((self.nll(fixed, data)? - self.nll(free, data)?) * 2.0).maximum(zero);
        Ok(self.b.select(free.index(0, self.poi).lt(zero), zero, q))
    }

    /// The fits of a hypothesis test that do not depend on the tested μ, to compute once when
    /// testing many (an upper limit's scan): the free fit to `data`, pyhf's background-only
    /// Asimov data and the free fit to them.
    pub fn unconditional(&self, data: Tensor<'b>) -> Result<Unconditional<'b>> {
        let free = self.fit(data, None)?;
        let asimov = self.expected_data(self.fit_from(data, self.b.scalar(0.0, DType::F64), free)?)?;
        let asimov_free = self.fit(asimov, None)?;
        Ok(Unconditional { free, asimov, asimov_free })
    }

    /// pyhf's `hypotest(mu, data, model, test_stat=…)` with the asymptotic calculator.
    pub fn hypotest(&self, mu: Tensor<'b>, data: Tensor<'b>, stat: TestStat) -> Result<Hypotest<'b>> {
        self.hypotest_given(mu, data, &self.unconditional(data)?, stat)
    }

    /// [`Inference::hypotest`] given the μ-independent fits (which may be inputs bound to
    /// values computed before).
    pub fn hypotest_given(
        &self,
        mu: Tensor<'b>,
        data: Tensor<'b>,
        u: &Unconditional<'b>,
        stat: TestStat,
    ) -> Result<Hypotest<'b>> {
        let q = self.q_mu_given(mu, data, u.free)?;
        let q_a = self.q_mu_given(mu, u.asimov, u.asimov_free)?;
        let (sq, sq_a) = (safe_sqrt(q), safe_sqrt(q_a));
        // The test statistic in pyhf's shifted space: the s+b distribution is N(−√q_A, 1) and
        // the b-only one N(0, 1).
        let t = match stat {
            TestStat::Q => sq - sq_a,
            // `≤` as pyhf has it: with no sensitivity (q = q_A = 0) the other branch is 0/0.
            TestStat::QTilde => self.b.select(sq.le(sq_a), sq - sq_a, (q - q_a) / (sq_a * 2.0)),
        };
        let clsb = (-(t + sq_a)).norm_cdf();
        let clb = (-t).norm_cdf();
        // Far in the tail both p-values underflow; their ratio tends to 0 there.
        let zero = mu.lit(0.0);
        let cls_obs = self.b.select(clb.gt(zero), clsb / self.b.select(clb.gt(zero), clb, mu.lit(1.0)), zero);
        let cls_exp = BAND.map(|n| (-(sq_a + n)).norm_cdf() / mu.lit(-n).norm_cdf());
        Ok(Hypotest { cls_obs, clsb_obs: clsb, clb_obs: clb, cls_exp, q_obs: q, q_asimov: q_a })
    }

    /// Discovery: pyhf's `hypotest(0, data, model, test_stat="q0")`, p₀ and Z = Φ⁻¹(1 − p₀) = √q₀.
    pub fn significance(&self, data: Tensor<'b>) -> Result<Significance<'b>> {
        let free = self.fit(data, None)?;
        let q0 = self.q0_given(data, free)?;
        let asimov = self.expected_data(self.fit_from(data, self.b.scalar(1.0, DType::F64), free)?)?;
        let q0_a = self.q0(asimov)?;
        let (sq, sq_a) = (safe_sqrt(q0), safe_sqrt(q0_a));
        let p0_exp = BAND.map(|n| (-(sq_a + n)).norm_cdf());
        Ok(Significance { p0_obs: (-sq).norm_cdf(), p0_exp, z_obs: sq, q0_obs: q0 })
    }

    /// neos's `cls` metric: on the background-only Asimov data at nominal nuisances, q_μ at
    /// `mu_test` with that generating point as the unconditional optimum, and
    /// CLs = 2(1 − Φ(√q_μ)) — the median expected CLs.
    pub fn neos_cls(&self, mu_test: f64) -> Result<Tensor<'b>> {
        let data = self.asimov_nominal(0.0)?;
        let truth = self.init(Some(self.b.scalar(0.0, DType::F64)));
        let fixed = self.fit(data, Some(self.b.scalar(mu_test, DType::F64)))?;
        let q = ((self.nll(fixed, data)? - self.nll(truth, data)?) * 2.0).maximum(data.lit(0.0));
        Ok((-safe_sqrt(q)).norm_cdf() * 2.0)
    }

    /// neos's `discovery` metric: p₀ = 1 − Φ(√q₀) on the signal-plus-background Asimov data at
    /// nominal nuisances, with that generating point as the unconditional optimum.
    pub fn neos_discovery(&self) -> Result<Tensor<'b>> {
        let data = self.asimov_nominal(1.0)?;
        let truth = self.init(Some(self.b.scalar(1.0, DType::F64)));
        let fixed = self.fit(data, Some(self.b.scalar(0.0, DType::F64)))?;
        let q0 = ((self.nll(fixed, data)? - self.nll(truth, data)?) * 2.0).maximum(data.lit(0.0));
        Ok((-safe_sqrt(q0)).norm_cdf())
    }

    /// neos's `poi_uncert` metric: σ_μ = √[(H⁻¹)_μμ] with H the Hessian of −ln L on the
    /// signal-plus-background Asimov data at its generating point (no fit).
    pub fn poi_uncert(&self) -> Result<Tensor<'b>> {
        let data = self.asimov_nominal(1.0)?;
        let truth = self.init(Some(self.b.scalar(1.0, DType::F64)));
        let h = self.model.hessian(truth, data)?;
        let p = self.model.len();
        let e =
            self.b.constant(Array1::from_shape_fn(p, |i| if i == self.poi { 1.0 } else { 0.0 }).into_dyn(), DType::F64);
        Ok(solve(self.b, h, e).index(0, self.poi).sqrt())
    }
}

/// neos's `bce` baseline (`neos.losses.bce`): the binary cross-entropy of the network outputs
/// `z` taken as logits, signal labelled 1 and every background 0, averaged over all events:
/// softplus(−z) for signal events and softplus(z) for background ones.
pub fn bce<'b>(signal: Tensor<'b>, backgrounds: &[Tensor<'b>]) -> Tensor<'b> {
    let b = signal.builder();
    let mut total = (-signal).softplus().sum_all();
    let mut count = b.count(signal, signal.dtype());
    for z in backgrounds {
        total = total + z.softplus().sum_all();
        count = count + b.count(*z, z.dtype());
    }
    total / count
}

/// √q for q ≥ 0, written so that neither the value nor the gradient is NaN at q = 0.
fn safe_sqrt(q: Tensor<'_>) -> Tensor<'_> {
    let b = q.builder();
    let positive = q.gt(q.lit(0.0));
    b.select(positive, b.select(positive, q, q.lit(1.0)).sqrt(), q.lit(0.0))
}

/// Upper limits on the POI: where the observed CLs and each expected CLs cross 1 − cl.
#[derive(Clone, Debug, PartialEq)]
pub struct UpperLimit {
    pub obs: f64,
    /// Expected limits at −2σ, −1σ, median, +1σ, +2σ.
    pub exp: [f64; 5],
    /// Hypothesis tests evaluated to find them.
    pub evaluations: usize,
}

/// Φ⁻¹(p) for 0 < p < 1, by bisection on Φ to the last bits (it is needed a few times per
/// limit, not in any inner loop).
fn norm_ppf(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if crate::special::norm_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-15 * mid.abs().max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The upper limits of the asymptotic formulae (Cowan et al. 2011) for a POI estimate μ̂ with
/// uncertainty σ (from the Asimov test statistic at any μ: σ = μ/√q_A): the expected limit at
/// band position n solves Φ(−μ/σ − n) = α Φ(−n), so μ = σ(−n − Φ⁻¹(α Φ(−n))); the observed one
/// solves Φ(−(μ − μ̂)/σ) = α Φ(μ̂/σ) (q_μ = ((μ − μ̂)/σ)²). These start the root finding of
/// [`upper_limit`]; they are exact when μ̂ is Gaussian with a σ that does not depend on μ.
pub fn asymptotic_limits(mu_hat: f64, sigma: f64, cl: f64) -> [f64; 6] {
    let alpha = 1.0 - cl;
    let expected = BAND.map(|n| sigma * (-n - norm_ppf(alpha * crate::special::norm_cdf(-n))));
    let observed = mu_hat.max(0.0) + sigma * -norm_ppf(alpha * crate::special::norm_cdf(mu_hat.max(0.0) / sigma));
    [observed, expected[0], expected[1], expected[2], expected[3], expected[4]]
}

/// Finds the upper limits (pyhf's `upper_limit`) by root finding rather than interpolating a
/// scan. From a first guess of each limit (`start`, for example [`asymptotic_limits`];
/// without one, a tenth of `max_mu`), steps of ×1.3 bracket each crossing of CLs = 1 − `cl`
/// within (0, `max_mu`], and the Illinois variant of regula falsi refines it to a relative 1e−7
/// in μ. Every hypothesis test gives all six CLs values, and all of them serve every limit's
/// bracket. `cls_at(μ)` returns the observed CLs followed by the five expected ones.
pub fn upper_limit(
    mut cls_at: impl FnMut(f64) -> Result<[f64; 6]>,
    cl: f64,
    max_mu: f64,
    start: Option<[f64; 6]>,
) -> Result<UpperLimit> {
    if !(cl > 0.0 && cl < 1.0 && max_mu > 0.0) {
        return Err(IrError::Name {
            message: format!(
                "upper limit: expected 0 < cl < 1 and a positive largest μ, found cl = {cl}, μ ≤ {max_mu}"
            ),
        });
    }
    let alpha = 1.0 - cl;
    let floor = max_mu * 1e-6;
    let mut points: Vec<(f64, [f64; 6])> = Vec::new();
    let mut eval = |mu: f64, points: &mut Vec<(f64, [f64; 6])>| -> Result<[f64; 6]> {
        if let Some((_, v)) = points.iter().find(|(m, _)| *m == mu) {
            return Ok(*v);
        }
        let v = cls_at(mu)?;
        if let Some(k) = v.iter().position(|x| !x.is_finite()) {
            return Err(IrError::Name {
                message: format!("upper limit: expected a CLs value at μ = {mu}, found {} ({})", v[k], band_name(k)),
            });
        }
        points.push((mu, v));
        Ok(v)
    };
    let guesses = start.unwrap_or([max_mu / 10.0; 6]);
    let mut limits = [f64::NAN; 6];
    for (k, limit) in limits.iter_mut().enumerate() {
        let guess =
            if guesses[k].is_finite() && guesses[k] > 0.0 { guesses[k].clamp(floor, max_mu) } else { max_mu / 10.0 };
        let below = |points: &Vec<(f64, [f64; 6])>| {
            points.iter().filter(|(_, v)| v[k] >= alpha).map(|(m, v)| (*m, v[k])).max_by(|a, b| a.0.total_cmp(&b.0))
        };
        let above = |points: &Vec<(f64, [f64; 6])>| {
            points.iter().filter(|(_, v)| v[k] < alpha).map(|(m, v)| (*m, v[k])).min_by(|a, b| a.0.total_cmp(&b.0))
        };
        if below(&points).is_none() && above(&points).is_none() {
            eval(guess, &mut points)?;
        }
        // Bracket: CLs ≥ α at the lower end, below it at the upper end.
        let mut steps = 0;
        let (a, b) = loop {
            match (below(&points), above(&points)) {
                (Some(a), Some(b)) if a.0 < b.0 => break (a, b),
                (Some(a), _) => {
                    let mu = (a.0 * 1.3).min(max_mu);
                    if a.0 >= max_mu {
                        return Err(IrError::Name {
                            message: format!(
                                "upper limit: expected CLs to fall below 1 − cl = {} for μ up to {max_mu}, found CLs = {} at μ = {max_mu} ({})",
                                round12(alpha),
                                a.1,
                                band_name(k)
                            ),
                        });
                    }
                    eval(mu, &mut points)?;
                }
                (None, Some(b)) => {
                    if b.0 <= floor {
                        return Err(IrError::Name {
                            message: format!(
                                "upper limit: expected CLs above 1 − cl = {} near μ = 0, found CLs = {} at μ = {floor} ({})",
                                round12(alpha),
                                b.1,
                                band_name(k)
                            ),
                        });
                    }
                    eval((b.0 / 1.3).max(floor), &mut points)?;
                }
                (None, None) => unreachable_bracket()?,
            }
            steps += 1;
            if steps > 200 {
                return Err(IrError::Name {
                    message: format!("upper limit: expected a bracket of the {} limit, found none", band_name(k)),
                });
            }
        };
        // Illinois: regula falsi that halves the weight of an end kept twice, on
        // f(μ) = CLs(μ) − α, until μ moves by less than a relative 1e-7.
        let (mut a, mut fa) = (a.0, a.1 - alpha);
        let (mut b, mut fb) = (b.0, b.1 - alpha);
        let mut previous = f64::NAN;
        let mut root = 0.5 * (a + b);
        for _ in 0..100 {
            root = (a * fb - b * fa) / (fb - fa);
            if (root - previous).abs() <= 1e-7 * root.abs() {
                break;
            }
            previous = root;
            let fc = eval(root, &mut points)?[k] - alpha;
            if fc == 0.0 {
                break;
            }
            if fc * fb < 0.0 {
                (a, fa) = (b, fb);
            } else {
                fa *= 0.5;
            }
            (b, fb) = (root, fc);
        }
        *limit = root;
    }
    Ok(UpperLimit {
        obs: limits[0],
        exp: [limits[1], limits[2], limits[3], limits[4], limits[5]],
        evaluations: points.len(),
    })
}

/// Which of the six limits index k is, for messages.
/// `1 − cl` as the user wrote `cl`: 0.05, not 0.050000000000000044.
fn round12(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

fn band_name(k: usize) -> String {
    if k == 0 {
        "observed".to_string()
    } else {
        format!("expected band {}", k - 1)
    }
}

/// The bracket search always has a point to start from (the guess is evaluated first).
fn unreachable_bracket() -> Result<()> {
    Err(IrError::Name { message: "upper limit: expected a first point to bracket from, found none".into() })
}
