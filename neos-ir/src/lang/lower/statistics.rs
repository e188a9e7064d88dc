//! The lowering of the statistics: each objective and metric of the analysis built from the
//! model's inference (CLs, p₀, σ_μ, cross-entropy). A second `impl` of the lowering, split out
//! of `lower.rs` because the statistics are a concept of their own.

use super::*;

impl<'a, 'b> Lowering<'a, 'b> {
    /// The objectives and metrics, each named, built from the model's inference.
    #[allow(clippy::type_complexity)]
    pub(super) fn statistics(&mut self) -> Option<(Vec<(String, Tensor<'b>)>, Vec<(String, Tensor<'b>)>)> {
        let analysis = self.analysis;
        let model = self.model()?;
        let inference = match Inference::new(model) {
            Ok(i) => i,
            Err(e) => {
                self.error(analysis.model.at, format!("model: {e}"));
                return None;
            }
        };
        // The exported workspace's observations: the data `cls` is computed on.
        if let Ok(asimov) = inference.asimov_nominal(0.0) {
            let mut offset = 0;
            for (name, bins) in inference.model().channels() {
                self.observed.push((name.to_string(), asimov.slice(0, offset..offset + bins)));
                offset += bins;
            }
        }
        let mut cache: HashMap<String, Tensor<'b>> = HashMap::new();
        let mut stat = |l: &mut Self, s: &Stat| -> Option<Tensor<'b>> {
            let (key, value) = match s {
                Stat::Cls { mu_test, at } => {
                    if !mu_test.is_finite() {
                        l.error(*at, format!("cls: expected a finite test value of the poi, found {mu_test}"));
                        return None;
                    }
                    let key = format!("cls {:x}", mu_test.to_bits());
                    if let Some(t) = cache.get(&key) {
                        return Some(*t);
                    }
                    (key, inference.neos_cls(*mu_test))
                }
                Stat::Discovery { .. } => ("discovery".to_string(), inference.neos_discovery()),
                Stat::PoiUncert { .. } => ("poi_uncert".to_string(), inference.poi_uncert()),
                Stat::Bce { signal, backgrounds, at } => {
                    let sig = l.expr(signal);
                    let bkgs: Vec<Option<Tensor<'b>>> = backgrounds.iter().map(|e| l.expr(e)).collect();
                    let sig = sig?;
                    let bkgs: Vec<Tensor<'b>> = bkgs.into_iter().collect::<Option<_>>()?;
                    if backgrounds.is_empty() {
                        l.error(*at, "bce: expected a signal and at least one background, found no background".into());
                        return None;
                    }
                    for (e, t) in std::iter::once(signal).chain(backgrounds).zip(std::iter::once(&sig).chain(&bkgs)) {
                        if t.shape().rank() != 1 {
                            l.error(
                                e.at,
                                format!(
                                    "bce: expected network outputs of shape [events], found {}",
                                    l.shown(&t.shape())
                                ),
                            );
                            return None;
                        }
                    }
                    return Some(inference::bce(sig, &bkgs));
                }
            };
            if let Some(t) = cache.get(&key) {
                return Some(*t);
            }
            match value {
                Ok(t) => {
                    cache.insert(key, t);
                    Some(t)
                }
                Err(e) => {
                    l.error(s.at(), format!("{}: {e}", s.name()));
                    None
                }
            }
        };
        let mut objectives = Vec::new();
        let mut failed = false;
        for o in &analysis.objectives {
            let mut total: Option<Tensor<'b>> = None;
            for (w, s) in &o.terms {
                match stat(self, s) {
                    Some(t) => {
                        let term = if *w == 1.0 { t } else { t * *w };
                        total = Some(total.map_or(term, |acc| acc + term));
                    }
                    None => failed = true,
                }
            }
            match total {
                Some(t) => objectives.push((o.name.clone(), t)),
                None if o.terms.is_empty() => {
                    self.error(o.at, format!("objective `{}`: expected at least one term, found none", o.name));
                    failed = true;
                }
                None => {}
            }
        }
        if analysis.objectives.is_empty() {
            self.error(analysis.at, "expected at least one objective in `loss`, found none".into());
            failed = true;
        }
        let mut metrics = Vec::new();
        for m in &analysis.metrics {
            match stat(self, &m.stat) {
                Some(t) => metrics.push((m.name.clone(), t)),
                None => failed = true,
            }
        }
        (!failed).then_some((objectives, metrics))
    }
}
