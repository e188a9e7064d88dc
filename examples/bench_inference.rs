//! Benchmarks of the interpreted inference on the 4-bin neos model (one channel, signal × μ,
//! background with one histosys): the neos `cls` metric with and without its gradient with
//! respect to the yields, pyhf's full `hypotest`, and the fit iterations of the projected
//! Newton solver. Medians over repeated runs; run with `--release`.
//!
//! ```text
//! cargo run --release --example bench_inference -- [--runs N]
//! ```

use ndarray::{Array1, ArrayD};
use neos::ir::histfactory::neos_model;
use neos::ir::inference::{Inference, TestStat};
use neos::ir::{eval, grad_in, hessian_in, Bindings, Builder, DType, Graph, NodeId, Tensor};
use neos_runtime::{minimize, FitOptions, Objective};

#[path = "support/mod.rs"]
mod support;
use support::{arg, median_seconds};

const YIELDS: [(&str, [f64; 4]); 4] = [
    ("sig", [2.0, 4.0, 6.0, 3.0]),
    ("bkg_nominal", [50.0, 30.0, 20.0, 10.0]),
    ("bkg_up", [55.0, 33.0, 21.0, 9.0]),
    ("bkg_down", [45.0, 28.0, 19.0, 11.0]),
];

fn bindings() -> Bindings {
    let mut b = Bindings::new();
    for (n, v) in YIELDS {
        b.set(n, Array1::from(v.to_vec()).into_dyn());
    }
    b
}

/// −ln L of the 4-bin model on fixed data, with gradient and Hessian, for the solver directly.
struct Nll {
    graph: Graph,
    ids: [NodeId; 3],
    bindings: Bindings,
}

impl Objective for Nll {
    fn dim(&self) -> usize {
        2
    }
    fn evaluate(&mut self, x: &[f64], g: &mut [f64], h: &mut [f64]) -> Result<f64, String> {
        self.bindings.set("theta", Array1::from(x.to_vec()).into_dyn());
        let v = eval(&self.graph, &self.bindings, &self.ids).map_err(|e| e.to_string())?;
        g.iter_mut().zip(v[1].iter()).for_each(|(d, s)| *d = *s);
        h.iter_mut().zip(v[2].iter()).for_each(|(d, s)| *d = *s);
        Ok(v[0].iter().next().copied().unwrap_or(f64::NAN))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = arg("--runs", 200)?;
    let median_us = |runs: usize, f: &mut dyn FnMut()| median_seconds(runs, f) * 1e6;
    // The metric graphs.
    let b = Builder::new();
    let templates: Vec<Tensor<'_>> = YIELDS.iter().map(|(n, _)| b.param(n, DType::F64, [4])).collect();
    let (cls_id, grad_ids, hypotest_ids, single_start_ids) = {
        let mut single = Inference::new(&b, &neos_model, templates.clone())?;
        single.restarts = false;
        let single_cls = single.neos_cls(1.0)?;
        let single_a0 = single.asimov_nominal(0.0)?;
        let single_h = single.hypotest(b.scalar(1.0, DType::F64), single_a0, TestStat::QTilde)?;
        let single_ids = [single_cls.id(), single_h.cls_obs.id()];
        let inference = Inference::new(&b, &neos_model, templates.clone())?;
        let cls = inference.neos_cls(1.0)?;
        let grads: Vec<NodeId> = grad_in(&b, cls, &templates)?.iter().map(|g| g.id()).collect();
        let a0 = inference.asimov_nominal(0.0)?;
        let h = inference.hypotest(b.scalar(1.0, DType::F64), a0, TestStat::QTilde)?;
        let ids: Vec<NodeId> = std::iter::once(h.cls_obs.id()).chain(h.cls_exp.iter().map(|t| t.id())).collect();
        (cls.id(), grads, ids, single_ids)
    };
    let graph = b.finish()?;
    let data = bindings();
    let cls = eval(&graph, &data, &[cls_id])?[0].iter().next().copied().unwrap_or(f64::NAN);
    let mut value_and_grad = vec![cls_id];
    value_and_grad.extend(&grad_ids);

    let t_cls = median_us(runs, &mut || {
        let _ = eval(&graph, &data, &[cls_id]);
    });
    let t_grad = median_us(runs, &mut || {
        let _ = eval(&graph, &data, &value_and_grad);
    });
    let t_hypotest = median_us(runs, &mut || {
        let _ = eval(&graph, &data, &hypotest_ids);
    });
    let t_cls_single = median_us(runs, &mut || {
        let _ = eval(&graph, &data, &single_start_ids[..1]);
    });
    let t_hypotest_single = median_us(runs, &mut || {
        let _ = eval(&graph, &data, &single_start_ids[1..]);
    });

    // Solver iterations: the μ = 1 fit and the free fit on the background-only Asimov data.
    let s = Builder::new();
    let nll_ids = {
        let t: Vec<Tensor<'_>> = YIELDS.iter().map(|(n, _)| s.param(n, DType::F64, [4])).collect();
        let model = neos_model(&s, &t)?;
        let theta = s.param("theta", DType::F64, [2]);
        let asimov = model.expected_data(s.constant(ArrayD::from_shape_vec(vec![2], vec![0.0, 0.0])?, DType::F64))?;
        let nll = -model.logpdf(theta, asimov)?;
        [nll.id(), grad_in(&s, nll, &[theta])?[0].id(), hessian_in(&s, nll, theta)?.id()]
    };
    let mut objective = Nll { graph: s.finish()?, ids: nll_ids, bindings: bindings() };
    let mut fixed = FitOptions::new(2);
    fixed.bounds = vec![(-5.0, 5.0), (0.0, 10.0)];
    fixed.fixed = vec![false, true];
    let conditional = minimize(&mut objective, &[0.0, 1.0], &fixed);
    let mut free = fixed.clone();
    free.fixed = vec![false, false];
    let unconditional = minimize(&mut objective, &[0.0, 1.0], &free);

    println!("4-bin neos model, interpreter, median of {runs} runs (fits restarted from α = ±1):");
    println!("  cls value                      {t_cls:>10.1} µs   (cls = {cls:.10})");
    println!("  cls value + gradient (yields)  {t_grad:>10.1} µs");
    println!("  pyhf hypotest (q̃, 5 fits)      {t_hypotest:>10.1} µs");
    println!("the same with one start per fit:");
    println!("  cls value                      {t_cls_single:>10.1} µs");
    println!("  pyhf hypotest (q̃, 5 fits)      {t_hypotest_single:>10.1} µs");
    println!(
        "  fit iterations: μ = 1 fit {} ({}), free fit {} ({})",
        conditional.iterations, conditional.stop, unconditional.iterations, unconditional.stop
    );
    Ok(())
}
