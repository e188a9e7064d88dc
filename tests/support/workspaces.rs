//! Seeded generators of valid pyhf workspaces, shared by the differential tests against pyhf
//! (small random models with every modifier type) and the scaling benchmark (models shaped
//! like a real analysis). The same seed gives the same workspace on every platform: ChaCha8
//! streams and numbers rounded to 6 significant digits, so that the JSON written for pyhf
//! reads back to the same values.

// The tests use one generator, the benchmark the other.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// x rounded to 6 significant digits.
fn round(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(5 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    round(lo + (hi - lo) * rng.random::<f64>())
}

/// A Poisson count of mean λ (inverse transform; the means here are below a few hundred).
fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> f64 {
    if lambda > 50.0 {
        // Normal approximation, rounded to a count, for large means.
        let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        return (lambda + z * lambda.sqrt()).round().max(0.0);
    }
    let (mut k, mut p, mut cdf) = (0.0, (-lambda).exp(), (-lambda).exp());
    let u: f64 = rng.random();
    while u > cdf && k < 1000.0 {
        k += 1.0;
        p *= lambda / k;
        cdf += p;
    }
    k
}

/// A histogram of `bins` bins with values between `lo` and `hi`.
fn histogram(rng: &mut ChaCha8Rng, bins: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..bins).map(|_| uniform(rng, lo, hi)).collect()
}

/// Variations of a histogram: each bin moved by a relative amount up to `size`, up and down
/// on opposite sides unless `same_side` (then both up: the interpolation is not monotonic).
fn variations(rng: &mut ChaCha8Rng, nominal: &[f64], size: f64, same_side: bool) -> (Vec<f64>, Vec<f64>) {
    let mut hi = Vec::with_capacity(nominal.len());
    let mut lo = Vec::with_capacity(nominal.len());
    for &n in nominal {
        let (u, d) = (uniform(rng, 0.2, 1.0) * size, uniform(rng, 0.2, 1.0) * size);
        hi.push(round(n * (1.0 + u)));
        lo.push(round(n * if same_side { 1.0 + 0.5 * d } else { 1.0 - d }));
    }
    (hi, lo)
}

fn modifier(name: &str, ty: &str, data: Value) -> Value {
    json!({"name": name, "type": ty, "data": data})
}

/// A small random workspace for the differential tests: 1–3 channels of 1–10 bins, a signal
/// with the POI `mu` in the first channel, 1–2 backgrounds per channel, and a random mix of all
/// seven modifier types — normsys and histosys (some shared between samples and channels, some
/// with both variations on one side), staterror per channel, shapesys, lumi, and a shapefactor
/// and a second normfactor in control channels (where the signal is absent, so that every
/// parameter is measurable).
pub fn random_workspace(seed: u64) -> Value {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let channels = rng.random_range(1..=3usize);
    let with_lumi = rng.random_bool(0.5);
    let mut channel_values = Vec::new();
    let mut observations = Vec::new();
    for c in 0..channels {
        let bins = rng.random_range(1..=10usize);
        let name = format!("ch{c}");
        let mut samples = Vec::new();
        let mut expected = vec![0.0; bins];
        let backgrounds = rng.random_range(1..=2usize);
        let mut sample_defs: Vec<(String, Vec<f64>)> = Vec::new();
        if c == 0 {
            sample_defs.push(("signal".into(), histogram(&mut rng, bins, 1.0, 10.0)));
        }
        for k in 0..backgrounds {
            sample_defs.push((format!("bkg{k}"), histogram(&mut rng, bins, 5.0, 60.0)));
        }
        for (sname, nominal) in sample_defs {
            let mut modifiers = Vec::new();
            if sname == "signal" {
                modifiers.push(modifier("mu", "normfactor", Value::Null));
            }
            if with_lumi {
                modifiers.push(modifier("lumi", "lumi", Value::Null));
            }
            // normsys: a shared "xsec" or one of the sample's own, sometimes with both factors
            // on one side of 1.
            if rng.random_bool(0.6) {
                let shared = rng.random_bool(0.5);
                let mname = if shared { "xsec".to_string() } else { format!("norm_{name}_{sname}") };
                let same_side = rng.random_bool(0.15);
                let hi = uniform(&mut rng, 1.02, 1.25);
                let lo = if same_side { uniform(&mut rng, 1.01, 1.1) } else { uniform(&mut rng, 0.75, 0.98) };
                modifiers.push(modifier(&mname, "normsys", json!({"hi": hi, "lo": lo})));
            }
            if rng.random_bool(0.6) {
                let shared = rng.random_bool(0.5);
                let mname = if shared { "jes".to_string() } else { format!("shape_{name}_{sname}") };
                let same_side = rng.random_bool(0.15);
                let (hi, lo) = variations(&mut rng, &nominal, 0.15, same_side);
                modifiers.push(modifier(&mname, "histosys", json!({"hi_data": hi, "lo_data": lo})));
            }
            if sname != "signal" && rng.random_bool(0.5) {
                let stat: Vec<f64> = nominal.iter().map(|n| round(n * uniform(&mut rng, 0.03, 0.15))).collect();
                modifiers.push(modifier(&format!("staterror_{name}"), "staterror", json!(stat)));
            }
            if sname != "signal" && rng.random_bool(0.3) {
                let unc: Vec<f64> = nominal.iter().map(|n| round(n * uniform(&mut rng, 0.05, 0.3))).collect();
                modifiers.push(modifier(&format!("uncorr_{name}_{sname}"), "shapesys", json!(unc)));
            }
            // A free normalisation of bkg0 measured in the control channels: per bin, or one
            // factor for all of them (not both on one sample, which would be degenerate).
            if c > 0 && sname == "bkg0" {
                match rng.random_range(0..3) {
                    0 => modifiers.push(modifier(&format!("free_{name}"), "shapefactor", Value::Null)),
                    1 => modifiers.push(modifier("bkg0_norm", "normfactor", Value::Null)),
                    _ => {}
                }
            }
            for (e, n) in expected.iter_mut().zip(&nominal) {
                *e += n;
            }
            samples.push(json!({"name": sname, "data": nominal, "modifiers": modifiers}));
        }
        let observed: Vec<f64> = expected.iter().map(|e| poisson(&mut rng, *e)).collect();
        observations.push(json!({"name": name, "data": observed}));
        channel_values.push(json!({"name": name, "samples": samples}));
    }
    let mut parameters = Vec::new();
    if with_lumi {
        let sigma = uniform(&mut rng, 0.01, 0.1);
        parameters
            .push(json!({"name": "lumi", "auxdata": [1.0], "inits": [1.0], "sigmas": [sigma], "bounds": [[0.5, 1.5]]}));
    }
    json!({
        "channels": channel_values,
        "observations": observations,
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": parameters}}],
        "version": "1.0.0",
    })
}

/// A workspace shaped like a real analysis: `channels` channels of `bins` bins, a signal
/// (normfactor `mu`) in every other channel, three backgrounds in each with a staterror per
/// channel and the luminosity, and `systematics` normsys and as many histosys shared by the
/// whole analysis, each acting on a background with probability ½. Parameters:
/// 2 + 2·systematics + channels·bins.
pub fn analysis_workspace(channels: usize, bins: usize, systematics: usize, seed: u64) -> Value {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let norms: Vec<(f64, f64)> =
        (0..systematics).map(|_| (uniform(&mut rng, 1.02, 1.15), uniform(&mut rng, 0.85, 0.98))).collect();
    let mut channel_values = Vec::new();
    let mut observations = Vec::new();
    for c in 0..channels {
        let name = format!("region{c:03}");
        let mut samples = Vec::new();
        let mut expected = vec![0.0; bins];
        let signal = c % 2 == 0;
        let mut defs: Vec<(String, Vec<f64>)> = Vec::new();
        if signal {
            // A peak in the middle bins.
            let peak: Vec<f64> = (0..bins)
                .map(|b| {
                    let x = (b as f64 + 0.5) / bins as f64 - 0.5;
                    round(12.0 * (-x * x / 0.02).exp() + 0.2)
                })
                .collect();
            defs.push(("signal".into(), peak));
        }
        for k in 0..3 {
            defs.push((format!("bkg{k}"), histogram(&mut rng, bins, 10.0, 120.0)));
        }
        for (sname, nominal) in defs {
            let mut modifiers = vec![modifier("lumi", "lumi", Value::Null)];
            if sname == "signal" {
                modifiers.push(modifier("mu", "normfactor", Value::Null));
            } else {
                let stat: Vec<f64> = nominal.iter().map(|n| round(n * uniform(&mut rng, 0.02, 0.08))).collect();
                modifiers.push(modifier(&format!("staterror_{name}"), "staterror", json!(stat)));
                for (s, (hi, lo)) in norms.iter().enumerate() {
                    if rng.random_bool(0.5) {
                        modifiers.push(modifier(&format!("norm{s:03}"), "normsys", json!({"hi": hi, "lo": lo})));
                    }
                }
                for s in 0..systematics {
                    if rng.random_bool(0.5) {
                        let (hi, lo) = variations(&mut rng, &nominal, 0.05, false);
                        modifiers.push(modifier(
                            &format!("shape{s:03}"),
                            "histosys",
                            json!({"hi_data": hi, "lo_data": lo}),
                        ));
                    }
                }
            }
            for (e, n) in expected.iter_mut().zip(&nominal) {
                *e += n;
            }
            samples.push(json!({"name": sname, "data": nominal, "modifiers": modifiers}));
        }
        let observed: Vec<f64> = expected.iter().map(|e| poisson(&mut rng, *e)).collect();
        observations.push(json!({"name": name, "data": observed}));
        channel_values.push(json!({"name": name, "samples": samples}));
    }
    json!({
        "channels": channel_values,
        "observations": observations,
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": [
            {"name": "lumi", "auxdata": [1.0], "inits": [1.0], "sigmas": [0.017], "bounds": [[0.9, 1.1]]}
        ]}}],
        "version": "1.0.0",
    })
}

/// A likelihood with two minima that pyhf's fit does not both visit: one bin over a background
/// with a normsys whose factors both raise it (hi 1.2, lo 1.1, so ν(α) has its lowest point near
/// α = 0), an excess that either side can explain, and the measurement starting α at −1. The
/// minimum on the side it starts on needs α ≈ −3 and is the higher one; the global one is at
/// α ≈ +1.6.
pub fn bimodal_workspace() -> Value {
    json!({
        "channels": [{"name": "sr", "samples": [
            {"name": "signal", "data": [5.0], "modifiers": [modifier("mu", "normfactor", Value::Null)]},
            {"name": "bkg", "data": [100.0], "modifiers": [modifier("a", "normsys", json!({"hi": 1.2, "lo": 1.1}))]},
        ]}],
        "observations": [{"name": "sr", "data": [140.0]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": [{"name": "a", "inits": [-1.0]}]}}],
        "version": "1.0.0",
    })
}
