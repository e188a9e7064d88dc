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
use neos::ir::{eval, grad_in, Bindings, Builder, DType, NodeId, Tensor};
use neos_runtime::histfactory::{FitBuffers, NllObjective};
use neos_runtime::{minimize, FitOptions};

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = arg("--runs", 200)?;
    let median_us = |runs: usize, f: &mut dyn FnMut()| median_seconds(runs, f) * 1e6;
    // The metric graphs.
    let b = Builder::new();
    let templates: Vec<Tensor<'_>> = YIELDS.iter().map(|(n, _)| b.param(n, DType::F64, [4])).collect();
    let (cls_id, grad_ids, hypotest_ids, single_start_ids) = {
        let mut single = Inference::new(neos_model(&templates)?)?;
        single.restarts = false;
        let single_cls = single.neos_cls(1.0)?;
        let single_a0 = single.asimov_nominal(0.0)?;
        let single_h = single.hypotest(b.scalar(1.0, DType::F64), single_a0, TestStat::QTilde)?;
        let single_ids = [single_cls.id(), single_h.cls_obs.id()];
        let inference = Inference::new(neos_model(&templates)?)?;
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

    // Solver iterations: the μ = 1 fit and the free fit on the background-only Asimov data,
    // on the runtime's structured likelihood.
    let s = Builder::new();
    let t: Vec<Tensor<'_>> = YIELDS.iter().map(|(n, _)| s.param(n, DType::F64, [4])).collect();
    let model = neos_model(&t)?;
    let lik = model.likelihood().clone();
    let asimov = model.expected_data(s.constant(ArrayD::from_shape_vec(vec![2], vec![0.0, 0.0])?, DType::F64))?;
    let mut ids: Vec<NodeId> = model.operands().iter().map(|t| t.id()).collect();
    ids.push(asimov.id());
    drop(model);
    let values = eval(&s.finish()?, &bindings(), &ids)?;
    let values: Vec<Vec<f64>> = values.iter().map(|v| v.iter().copied().collect()).collect();
    let (data, operands) = values.split_last().ok_or("expected the Asimov data")?;
    let operands: Vec<&[f64]> = operands.iter().map(Vec::as_slice).collect();
    let mut buffers = FitBuffers::new(&lik);
    let mut objective = NllObjective::new(&lik, &mut buffers, &operands, data)?;
    let mut fixed = FitOptions::new(2);
    fixed.bounds = vec![(-5.0, 5.0), (0.0, 10.0)];
    fixed.fixed = vec![false, true];
    let conditional = minimize(&mut objective, &[0.0, 1.0], &fixed);
    let mut free = fixed.clone();
    free.fixed = vec![false, false];
    let unconditional = minimize(&mut objective, &[0.0, 1.0], &free);

    println!(
        "4-bin neos model, interpreter, median of {runs} runs (fits restarted where the likelihood may be bimodal):"
    );
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
