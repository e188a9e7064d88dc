//! The structured HistFactory likelihood against finite differences: the reverse-mode gradient
//! with respect to the parameters, every histogram and the data; the structured Hessian; the
//! jets (directional derivatives of the gradient) to third order; the expected data's adjoint
//! and the Hessian's; for every interpolation code, on a two-channel model with every modifier
//! type. Also the encoding generated code rebuilds models from, and the block solve.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use neos_runtime::histfactory::{
    evaluate, hessian_vjp, jet, ChannelDesc, ConstraintDesc, FitBuffers, Func, HessianWork, HistoSysCode, Instance,
    Jets, Likelihood, ModifierType as T, Node, NormSysCode, SampleDesc, Scratch, Source, Structure,
};
use neos_runtime::{minimize, FitOptions, Objective};

/// Operand lengths: nominal and variations of three samples over channels of 3 and 2 bins.
const OPERANDS: [&[f64]; 15] = [
    &[12.0, 20.0, 22.0], // 0 bkg nominal (sr)
    &[13.0, 21.5, 22.5], // 1 bkg hi
    &[11.5, 18.0, 23.0], // 2 bkg lo (bin 2 on the same side as hi: non-monotonic)
    &[2.0, 5.0, 9.0],    // 3 signal nominal (sr)
    &[0.4, 0.6, 0.9],    // 4 signal stat
    &[1.0, 1.2, 1.5],    // 5 bkg stat
    &[1.08],             // 6 normsys hi
    &[0.94],             // 7 normsys lo
    &[2.0, 3.0, 2.5],    // 8 bkg shapesys uncertainties
    &[30.0, 25.0],       // 9 control-region background
    &[31.0, 26.5],       // 10 its hi
    &[29.0, 24.0],       // 11 its lo
    &[1.2],              // 12 a second normsys hi (both above 1: non-monotonic)
    &[1.1],              // 13 its lo
    &[1.5, 1.3],         // 14 control-region stat (the same staterror, bins 3–4 of its set)
];

/// Parameters: 0 jes (histosys), 1 lumi, 2 mu, 3 xsec (normsys), 4 theory (normsys),
/// 5–6 free (shapefactor, cr), 7–9 shape (shapesys), 10–14 stat (staterror: 10–12 in the
/// signal region, 13–14 in the control region, concatenated as pyhf does for one name).
fn structure(normsys_code: NormSysCode, histosys_code: HistoSysCode) -> Structure {
    let inst = |ty, param, data: &[usize]| Instance { ty, param, data: data.to_vec() };
    Structure {
        params: 15,
        operands: OPERANDS.iter().map(|o| o.len()).collect(),
        channels: vec![
            ChannelDesc {
                bins: 2,
                samples: vec![SampleDesc {
                    nominal: 9,
                    modifiers: vec![
                        inst(T::HistoSys, 0, &[10, 11]),
                        inst(T::ShapeFactor, 5, &[]),
                        inst(T::Lumi, 1, &[]),
                        inst(T::NormSys, 4, &[12, 13]),
                        inst(T::StatError, 13, &[14]),
                    ],
                }],
            },
            ChannelDesc {
                bins: 3,
                samples: vec![
                    SampleDesc {
                        nominal: 0,
                        modifiers: vec![
                            inst(T::HistoSys, 0, &[1, 2]),
                            inst(T::NormSys, 3, &[6, 7]),
                            inst(T::ShapeSys, 7, &[8]),
                            inst(T::StatError, 10, &[5]),
                            inst(T::Lumi, 1, &[]),
                        ],
                    },
                    SampleDesc {
                        nominal: 3,
                        modifiers: vec![
                            inst(T::NormFactor, 2, &[]),
                            inst(T::Lumi, 1, &[]),
                            inst(T::StatError, 10, &[4]),
                            inst(T::NormSys, 4, &[12, 13]),
                        ],
                    },
                ],
            },
        ],
        constraints: vec![
            ConstraintDesc { ty: T::HistoSys, params: 0..1, widths: None, sources: vec![] },
            ConstraintDesc { ty: T::Lumi, params: 1..2, widths: Some(vec![0.05]), sources: vec![] },
            ConstraintDesc { ty: T::NormSys, params: 3..4, widths: None, sources: vec![] },
            ConstraintDesc { ty: T::NormSys, params: 4..5, widths: None, sources: vec![] },
            ConstraintDesc { ty: T::ShapeSys, params: 7..10, widths: None, sources: vec![src(0, 8, 0)] },
            ConstraintDesc {
                ty: T::StatError,
                params: 10..15,
                widths: None,
                sources: vec![src(9, 14, 3), src(0, 5, 0), src(3, 4, 0)],
            },
        ],
        normsys_code,
        histosys_code,
    }
}

const THETA: [f64; 15] = [0.3, 1.02, 1.2, -0.4, 0.7, 0.9, 1.1, 1.05, 0.97, 1.02, 0.95, 1.03, 1.01, 0.98, 1.04];
/// Main data (2 + 3 bins), then aux: jes 0, lumi 1, xsec 0, theory 0, shapesys τ (3), stat 1 (5).
const DATA: [f64; 17] = [33.0, 27.0, 17.0, 31.0, 36.0, 0.0, 1.0, 0.0, 0.0, 36.0, 44.4, 77.4, 1.0, 1.0, 1.0, 1.0, 1.0];

fn z() -> Vec<f64> {
    let mut z = THETA.to_vec();
    for o in OPERANDS {
        z.extend_from_slice(o);
    }
    z.extend_from_slice(&DATA);
    z
}

fn src(nominal: usize, uncertainty: usize, offset: usize) -> Source {
    Source { nominal, uncertainty, offset }
}

fn codes() -> Vec<(NormSysCode, HistoSysCode)> {
    let mut out = Vec::new();
    for n in NormSysCode::ALL {
        for h in HistoSysCode::ALL {
            out.push((n, h));
        }
    }
    out
}

fn nll(lik: &Likelihood, z: &[f64]) -> f64 {
    lik.nll(z, &mut Scratch::new(lik), None, None)
}

/// Central difference of `f` along `t`, with a step that keeps away from interpolation kinks.
fn directional(f: impl Fn(&[f64]) -> Vec<f64>, z: &[f64], t: &[f64], eps: f64) -> Vec<f64> {
    let shifted = |s: f64| -> Vec<f64> { z.iter().zip(t).map(|(a, b)| a + s * b).collect() };
    let (up, down) = (f(&shifted(eps)), f(&shifted(-eps)));
    up.iter().zip(&down).map(|(u, d)| (u - d) / (2.0 * eps)).collect()
}

/// Agreement to `tol` of the largest expected value, or of 0.1 when all are small (a central
/// difference of a likelihood of size ~100 has rounding errors of 1e−14/ε).
fn close(label: &str, found: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(found.len(), expected.len(), "{label}: lengths");
    let scale = expected.iter().map(|v| v.abs()).fold(0.1, f64::max);
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!((f - e).abs() <= tol * scale, "{label}[{i}]: found {f}, expected {e} (scale {scale})");
    }
}

fn unit(n: usize, i: usize) -> Vec<f64> {
    let mut e = vec![0.0; n];
    e[i] = 1.0;
    e
}

/// A direction touching every part of z, deterministic.
fn direction(n: usize, seed: usize) -> Vec<f64> {
    (0..n).map(|i| (((i + 1) * (seed + 3) * 7919) % 1000) as f64 / 1000.0 - 0.5).collect()
}

#[test]
fn gradient_matches_finite_differences_for_every_code() {
    for (n, h) in codes() {
        let lik = Likelihood::new(structure(n, h)).unwrap();
        let z = z();
        let mut g = vec![0.0; z.len()];
        lik.nll(&z, &mut Scratch::new(&lik), None, Some((&mut g, true)));
        for (i, gi) in g.iter().enumerate() {
            let e = unit(z.len(), i);
            let fd = directional(|x| vec![nll(&lik, x)], &z, &e, 1e-5)[0];
            close(&format!("{n:?}/{h:?} ∂f/∂z[{i}]"), &[*gi], &[fd], 1e-6);
        }
    }
}

#[test]
fn hessian_matches_finite_differences_of_the_gradient() {
    for (n, h) in codes() {
        let lik = Likelihood::new(structure(n, h)).unwrap();
        let z = z();
        let p = lik.params();
        let grad_theta = |x: &[f64]| {
            let mut g = vec![0.0; x.len()];
            lik.nll(x, &mut Scratch::new(&lik), None, Some((&mut g, false)));
            g[..p].to_vec()
        };
        let mut s = Scratch::new(&lik);
        let mut g = vec![0.0; z.len()];
        lik.nll(&z, &mut s, None, Some((&mut g, false)));
        let mut hess = vec![0.0; p * p];
        lik.hessian(&z, &s, &mut hess, &mut HessianWork::new(&lik));
        for i in 0..p {
            let fd = directional(grad_theta, &z, &unit(z.len(), i), 1e-6);
            close(&format!("{n:?}/{h:?} H row {i}"), &hess[i * p..(i + 1) * p], &fd, 1e-6);
        }
    }
}

#[test]
fn jets_are_directional_derivatives_of_lower_jets() {
    for func in [Func::Nll, Func::Expected] {
        let lik = Likelihood::new(structure(NormSysCode::Code4, HistoSysCode::Code4p)).unwrap();
        let z = z();
        let ts: Vec<Vec<f64>> = (0..3).map(|k| direction(z.len(), k)).collect();
        for order in 1..=3 {
            let lower = |x: &[f64]| {
                let refs: Vec<&[f64]> = ts[..order - 1].iter().map(|t| t.as_slice()).collect();
                let mut out = vec![0.0; x.len()];
                jet(&lik, func, x, &refs, &mut out).unwrap();
                out
            };
            let refs: Vec<&[f64]> = ts[..order].iter().map(|t| t.as_slice()).collect();
            let mut found = vec![0.0; z.len()];
            jet(&lik, func, &z, &refs, &mut found).unwrap();
            let fd = directional(lower, &z, &ts[order - 1], 1e-5);
            close(&format!("{func:?} jet{order}"), &found, &fd, 1e-5);
        }
        let refs: Vec<&[f64]> = vec![&ts[0]; 4];
        let err = jet(&lik, func, &z, &refs, &mut vec![0.0; z.len()]).unwrap_err();
        assert!(err.contains("up to order 4, found a request for order 5"), "{err}");
    }
}

#[test]
fn expected_data_and_its_adjoint() {
    let lik = Likelihood::new(structure(NormSysCode::Code4, HistoSysCode::Code4p)).unwrap();
    let z = z();
    let n = DATA.len();
    let theta_x = &z[..z.len() - n];
    let mut e = vec![0.0; n];
    lik.expected(theta_x, &mut Scratch::new(&lik), &mut e);
    // The auxiliary expectations: θ for Normal constraints, γτ for Poisson ones.
    assert_eq!(e[5..9], [THETA[0], THETA[1], THETA[3], THETA[4]]);
    assert!((e[9] - THETA[7] * 36.0).abs() < 1e-12 && (e[12] - THETA[10]).abs() < 1e-15, "{e:?}");
    // Its adjoint: the gradient of w·E over [θ | operands | w] is [Jᵀw | … | E].
    let w = direction(n, 5);
    let mut zw = theta_x.to_vec();
    zw.extend_from_slice(&w);
    let mut g = vec![0.0; zw.len()];
    lik.gradient(Func::Expected, &zw, &mut Scratch::new(&lik), &mut g);
    close("w̄ = E", &g[zw.len() - n..], &e, 1e-15);
    let weighted = |x: &[f64]| {
        let mut e = vec![0.0; n];
        lik.expected(&x[..x.len() - n], &mut Scratch::new(&lik), &mut e);
        vec![e.iter().zip(&x[x.len() - n..]).map(|(a, b)| a * b).sum()]
    };
    for (i, gi) in g[..zw.len() - n].iter().enumerate() {
        let fd = directional(weighted, &zw, &unit(zw.len(), i), 1e-6)[0];
        close(&format!("∂(w·E)/∂z[{i}]"), &[*gi], &[fd], 1e-6);
    }
}

#[test]
fn hessian_adjoint_of_rank_one_and_full_adjoints() {
    let lik = Likelihood::new(structure(NormSysCode::Code4, HistoSysCode::Code4p)).unwrap();
    let z = z();
    let p = lik.params();
    let hess_at = |x: &[f64]| {
        let mut out = vec![0.0; p * p];
        let mut s = Scratch::new(&lik);
        let mut g = vec![0.0; x.len()];
        lik.nll(x, &mut s, None, Some((&mut g, false)));
        lik.hessian(x, &s, &mut out, &mut HessianWork::new(&lik));
        out
    };
    let v = direction(p, 1);
    let rank_one: Vec<f64> = (0..p * p).map(|k| v[k / p] * v[k % p]).collect();
    let general: Vec<f64> = direction(p * p, 2);
    for (label, h_bar) in [("rank one", rank_one), ("general", general)] {
        let mut found = vec![0.0; z.len()];
        hessian_vjp(&lik, &mut Jets::default(), &z, &h_bar, &mut found).unwrap();
        let contracted = |x: &[f64]| vec![hess_at(x).iter().zip(&h_bar).map(|(a, b)| a * b).sum()];
        for (i, f) in found.iter().enumerate() {
            let fd = directional(contracted, &z, &unit(z.len(), i), 1e-5)[0];
            close(&format!("{label} H̄:H, ∂/∂z[{i}]"), &[*f], &[fd], 2e-5);
        }
    }
}

#[test]
fn encoding_round_trips_and_bad_structures_are_refused() {
    let lik = Likelihood::new(structure(NormSysCode::Code1, HistoSysCode::Code2)).unwrap();
    let (ints, floats) = lik.encode();
    let again = Likelihood::decode(&ints, &floats).unwrap();
    assert_eq!(again.structure(), lik.structure());
    assert!(Likelihood::decode(&ints[..ints.len() - 1], &floats).is_err());
    let mut bad = structure(NormSysCode::Code4, HistoSysCode::Code4p);
    bad.channels[1].samples[0].modifiers[0].data = vec![1, 6];
    let err = Likelihood::new(bad).unwrap_err();
    assert!(err.contains("lo: expected operand 6 of length 3, found 1"), "{err}");
    // Constraint templates: inside the set's parameters, uncertainties as long as the nominal.
    let mut bad = structure(NormSysCode::Code4, HistoSysCode::Code4p);
    bad.constraints[5].sources[0].offset = 4;
    let err = Likelihood::new(bad).unwrap_err();
    assert!(err.contains("expected templates within the set's 5 parameters, found bins 4..6"), "{err}");
    let mut bad = structure(NormSysCode::Code4, HistoSysCode::Code4p);
    bad.constraints[5].sources[1].uncertainty = 14;
    let err = Likelihood::new(bad).unwrap_err();
    assert!(err.contains("uncertainties: expected operand 14 of length 3, found 2"), "{err}");
}

#[test]
fn evaluate_checks_lengths_and_reports_nan() {
    let lik = std::sync::Arc::new(Likelihood::new(structure(NormSysCode::Code4, HistoSysCode::Code4p)).unwrap());
    let mut inputs: Vec<&[f64]> = vec![&THETA];
    inputs.extend(OPERANDS);
    inputs.push(&DATA);
    let mut out = [0.0];
    evaluate(&lik, &Node::Nll, &inputs, &mut out).unwrap();
    assert!((out[0] - nll(&lik, &z())).abs() < 1e-12);
    let short = &DATA[..3];
    inputs.pop();
    inputs.push(short);
    let err = evaluate(&lik, &Node::Nll, &inputs, &mut out).unwrap_err();
    assert!(err.contains("input 16: expected 17 values, found 3"), "{err}");
    // A negative rate has no Poisson likelihood.
    let negative = [-50.0, 20.0, 22.0];
    inputs.pop();
    inputs.push(&DATA);
    inputs[1] = &negative;
    let err = evaluate(&lik, &Node::Nll, &inputs, &mut out).unwrap_err();
    assert!(err.contains("expected finite results, found NaN"), "{err}");
}

/// −ln L of the model as a fit objective, with or without its per-bin blocks.
struct Blocky<'a> {
    inner: neos_runtime::histfactory::NllObjective<'a>,
    blocks: bool,
}

impl Objective for Blocky<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn evaluate(&mut self, x: &[f64], g: &mut [f64], h: &mut [f64]) -> Result<f64, String> {
        self.inner.evaluate(x, g, h)
    }
    fn blocks(&self) -> &[Vec<usize>] {
        if self.blocks {
            self.inner.blocks()
        } else {
            &[]
        }
    }
}

#[test]
fn block_elimination_reaches_the_dense_minimum() {
    let lik = Likelihood::new(structure(NormSysCode::Code4, HistoSysCode::Code4p)).unwrap();
    // The per-bin γ's of the control region and of the signal region, by bin.
    assert_eq!(lik.blocks(), [vec![5, 13], vec![6, 14], vec![7, 10], vec![8, 11], vec![9, 12]]);
    let mut options = FitOptions::new(lik.params());
    options.bounds = vec![(-5.0, 5.0), (0.0, 10.0), (0.0, 10.0), (-5.0, 5.0), (-5.0, 5.0)];
    options.bounds.extend([(1e-10, 10.0); 10]);
    let start = [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    let fit = |blocks: bool| {
        let mut buffers = FitBuffers::new(&lik);
        let inner = neos_runtime::histfactory::NllObjective::new(&lik, &mut buffers, &OPERANDS, &DATA).unwrap();
        // Bound to a name so that the objective, which borrows `buffers`, is dropped first.
        #[allow(clippy::let_and_return)]
        let result = minimize(&mut Blocky { inner, blocks }, &start, &options);
        result
    };
    let (dense, blocked) = (fit(false), fit(true));
    assert!(dense.converged() && blocked.converged(), "{:?} / {:?}", dense.stop, blocked.stop);
    close("θ̂ by blocks vs dense", &blocked.x, &dense.x, 1e-7);
    assert!((dense.value - blocked.value).abs() < 1e-10);
}

#[test]
fn multimodal_parameters_are_those_with_turning_points() {
    let lik = Likelihood::new(structure(NormSysCode::Code4, HistoSysCode::Code4p)).unwrap();
    // jes: its down variation lies above the nominal in the last signal-region bin; theory:
    // both factors above 1. The others move every bin one way.
    assert_eq!(lik.multimodal(&z()), [0, 4]);
}
