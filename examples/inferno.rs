//! The INFERNO benchmark (de Castro & Dorigo, Comput. Phys. Commun. 244 (2019) 170,
//! arXiv:1806.04743): the expected uncertainty on the signal yield of a three-feature problem
//! with nuisance parameters, for a network trained on that uncertainty (neos, with KDE
//! histograms or INFERNO's softmax counts) and for a classifier trained on cross-entropy.
//!
//! The problem: a signal with (x₀, x₁) ~ N((1, 1), I) and x₂ ~ Exp(2), a background with
//! (x₀, x₁) ~ N((2 + r, 0), diag(5, 9)) and x₂ ~ Exp(λ); s = 50 expected signal events, b = 1000
//! background. Benchmark 3 has the nuisances r ~ N(0, 0.4) (a shift of the background's x₀)
//! and λ ~ N(3, 1) (its exponential rate); benchmark 4 adds b ~ N(1000, 100).
//!
//! In HistFactory's vocabulary: the signal carries a normfactor μ (s = 50 μ), the background two
//! histosys whose templates are background samples generated at r = ±0.4 and λ = 4 and 2 (±1σ,
//! interpolated as pyhf's code 4p between them), and for benchmark 4 a normsys of ±10 %. The
//! quoted number is σ_s = 50 σ_μ, σ_μ from the Fisher information on the Asimov data
//! (`poi_uncert`) of an evaluation sample of 1M events per sample with hard histograms. Three
//! methods are trained from `--inits` initialisations each:
//!
//! - `neos_poi_uncert`: a 3 → 100 → 100 → 1 network with a sigmoid output, histogrammed with a
//!   KDE into 10 bins with trainable edges, trained on σ_μ;
//! - `softmax_poi_uncert`: a 3 → 100 → 100 → 10 network whose softmax outputs (temperature 0.1)
//!   are the bins, trained on σ_μ, as INFERNO does;
//! - `bce`: the first network trained as a classifier (binary cross-entropy of signal against
//!   the nominal background), its output binned in 10 equal bins.
//!
//! ```text
//! cargo run --release --example inferno -- [--benchmark 3|4] [--inits N] [--steps N]
//!     [--events N] [--eval-events N] [--out DIR]
//! ```
//!
//! It prints a table of the medians beside the paper's numbers and writes `DIR/inferno.json`
//! (`{"benchmark", "inits", "rows": [{"method", "sigma_s": [one per init], "median"}]}`) and
//! each run's log under `DIR/runs/`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ndarray::{Array2, ArrayView2};
use neos::train::{self, Analysis, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The neos and classifier analysis of a benchmark: a KDE histogram of a sigmoid network.
/// `$extra` are further modifiers of the background (benchmark 4's normalisation).
macro_rules! kde_analysis {
    ($(#[$doc:meta])* $name:ident $(, $($extra:tt)+)?) => {
        neos::neos! {
            $(#[$doc])*
            pub analysis $name {
                inputs {
                    sig: events[3], bkg: events[3],
                    r_up: events[3], r_down: events[3], l_up: events[3], l_down: events[3]
                }
                knobs { bandwidth = 0.05 }
                params {
                    nn = mlp(3 => 100 => 100 => 1, relu, sigmoid);
                    edges = bin_edges(0.0..1.0, bins = 10, trainable);
                }
                let s = hist(nn(sig), edges, bandwidth, scale = 50.0);
                let b = hist(nn(bkg), edges, bandwidth, scale = 1000.0);
                let b_r_up = hist(nn(r_up), edges, bandwidth, scale = 1000.0);
                let b_r_down = hist(nn(r_down), edges, bandwidth, scale = 1000.0);
                let b_l_up = hist(nn(l_up), edges, bandwidth, scale = 1000.0);
                let b_l_down = hist(nn(l_down), edges, bandwidth, scale = 1000.0);
                model {
                    channel inferno {
                        sample signal = s { normfactor mu }
                        sample background = b {
                            histosys r_shift(lo = b_r_down, hi = b_r_up),
                            histosys lambda_rate(lo = b_l_down, hi = b_l_up)
                            $(, $($extra)+)?
                        }
                    }
                    poi mu;
                }
                loss poi_uncert, bce(nn(sig), nn(bkg));
                metrics poi_uncert, bce(nn(sig), nn(bkg));
            }
        }
    };
}

/// INFERNO's own binning: the softmax of a network's ten outputs at a temperature.
macro_rules! softmax_analysis {
    ($(#[$doc:meta])* $name:ident $(, $($extra:tt)+)?) => {
        neos::neos! {
            $(#[$doc])*
            pub analysis $name {
                inputs {
                    sig: events[3], bkg: events[3],
                    r_up: events[3], r_down: events[3], l_up: events[3], l_down: events[3]
                }
                knobs { temperature = 0.1 }
                params { nn = mlp(3 => 100 => 100 => 10, relu, identity); }
                let s = counts(softmax(nn(sig) / temperature), scale = 50.0);
                let b = counts(softmax(nn(bkg) / temperature), scale = 1000.0);
                let b_r_up = counts(softmax(nn(r_up) / temperature), scale = 1000.0);
                let b_r_down = counts(softmax(nn(r_down) / temperature), scale = 1000.0);
                let b_l_up = counts(softmax(nn(l_up) / temperature), scale = 1000.0);
                let b_l_down = counts(softmax(nn(l_down) / temperature), scale = 1000.0);
                model {
                    channel inferno {
                        sample signal = s { normfactor mu }
                        sample background = b {
                            histosys r_shift(lo = b_r_down, hi = b_r_up),
                            histosys lambda_rate(lo = b_l_down, hi = b_l_up)
                            $(, $($extra)+)?
                        }
                    }
                    poi mu;
                }
                loss poi_uncert;
                metrics poi_uncert;
            }
        }
    };
}

kde_analysis!(
    /// Benchmark 3 with KDE histograms.
    Kde3
);
kde_analysis!(
    /// Benchmark 4 with KDE histograms: the background's normalisation known to 10 %.
    Kde4, normsys b_norm(lo = 0.9, hi = 1.1)
);
softmax_analysis!(
    /// Benchmark 3 with softmax counts.
    Softmax3
);
softmax_analysis!(
    /// Benchmark 4 with softmax counts.
    Softmax4, normsys b_norm(lo = 0.9, hi = 1.1)
);

/// Trains networks on INFERNO's synthetic benchmark and compares σ_s with the paper's table.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// INFERNO's benchmark: 3 (r and λ unknown) or 4 (and b).
    #[arg(long, default_value_t = 3)]
    benchmark: u8,
    /// Initialisations per method; the table gives their median.
    #[arg(long, default_value_t = 10)]
    inits: usize,
    /// Adam steps per training run.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Events generated per sample for training (a fifth of them are the test set).
    #[arg(long, default_value_t = 25_000)]
    events: usize,
    /// Events per sample of the evaluation.
    #[arg(long, default_value_t = 1_000_000)]
    eval_events: usize,
    /// Where inferno.json and the runs go.
    #[arg(long, default_value = "inferno-run")]
    out: PathBuf,
}

/// The paper's Table (de Castro & Dorigo 2019): σ_s for benchmarks 3 and 4.
const PAPER: [(&str, f64, f64); 3] =
    [("classifier (cross-entropy)", 21.54, 26.71), ("INFERNO", 16.89, 18.68), ("analytical optimum", 15.62, 16.89)];

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// An exponential draw of the given rate.
fn exponential(rng: &mut ChaCha8Rng, rate: f64) -> f64 {
    -(1.0 - rng.random::<f64>()).ln() / rate
}

/// `n` signal events.
fn signal(rng: &mut ChaCha8Rng, n: usize) -> Array2<f64> {
    let mut x = Array2::zeros((n, 3));
    for mut row in x.rows_mut() {
        row[0] = 1.0 + normal(rng);
        row[1] = 1.0 + normal(rng);
        row[2] = exponential(rng, 2.0);
    }
    x
}

/// `n` background events at nuisance values `r` and `lambda`.
fn background(rng: &mut ChaCha8Rng, n: usize, r: f64, lambda: f64) -> Array2<f64> {
    let mut x = Array2::zeros((n, 3));
    for mut row in x.rows_mut() {
        row[0] = 2.0 + r + 5f64.sqrt() * normal(rng);
        row[1] = 3.0 * normal(rng);
        row[2] = exponential(rng, lambda);
    }
    x
}

/// The six samples in the analyses' order: signal, nominal background, and the background at
/// r = +0.4, r = −0.4, λ = 4 and λ = 2.
fn samples(n: usize, seed: u64) -> Vec<Array2<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    vec![
        signal(&mut rng, n),
        background(&mut rng, n, 0.0, 3.0),
        background(&mut rng, n, 0.4, 3.0),
        background(&mut rng, n, -0.4, 3.0),
        background(&mut rng, n, 0.0, 4.0),
        background(&mut rng, n, 0.0, 2.0),
    ]
}

/// What the benchmark needs of an analysis besides training: σ_μ on events with hard bins.
trait Evaluate: Analysis {
    fn sigma_mu(&mut self, params: &[f64], events: &[ArrayView2<'_, f64>]) -> Result<f64, String>;
}

macro_rules! evaluate {
    ($knob:literal, $value:literal: $($t:ty),*) => {$(
        impl Evaluate for $t {
            fn sigma_mu(&mut self, params: &[f64], events: &[ArrayView2<'_, f64>]) -> Result<f64, String> {
                let metrics = self.metrics(params, events, &[($knob, $value)]).map_err(|e| e.to_string())?;
                metrics
                    .iter()
                    .find(|(n, _)| *n == "poi_uncert")
                    .map(|(_, v)| *v)
                    .ok_or_else(|| "expected the metric poi_uncert, found none".to_string())
            }
        }
    )*};
}
evaluate!("bandwidth", 1e-8: Kde3, Kde4);
evaluate!("temperature", 1e-6: Softmax3, Softmax4);

/// One method: how to train it and with which hard setting to test it.
struct Method {
    name: &'static str,
    objective: &'static str,
    select: &'static str,
    hard: (&'static str, f64),
}

const METHODS: [Method; 3] = [
    Method { name: "neos_poi_uncert", objective: "poi_uncert", select: "poi_uncert", hard: ("bandwidth", 1e-8) },
    Method { name: "softmax_poi_uncert", objective: "poi_uncert", select: "poi_uncert", hard: ("temperature", 1e-6) },
    Method { name: "bce", objective: "bce", select: "bce", hard: ("bandwidth", 1e-8) },
];

/// Trains `analysis` from initialisation `init` and returns σ_s of its best step on the
/// evaluation events.
fn sigma_s<A: Evaluate>(
    mut analysis: A,
    method: &Method,
    init: usize,
    data: &[Array2<f64>],
    eval: &[ArrayView2<'_, f64>],
    args: &Args,
) -> Result<f64, String> {
    let mut config = TrainConfig::new(method.objective, method.select);
    config.steps = args.steps;
    config.batch_size = 2000;
    config.learning_rate = 1e-3;
    config.seed = init as u64;
    config.train_fraction = 0.8;
    config.test_knobs = vec![(method.hard.0.to_string(), method.hard.1)];
    config.checkpoint_every = 100;
    config.out_dir = Some(args.out.join("runs").join(format!("{}-init{init}", method.name)));
    let log = train::train(&mut analysis, data, &config).map_err(|e| e.to_string())?;
    let params = if log.best_params.is_empty() { &log.params } else { &log.best_params };
    Ok(50.0 * analysis.sigma_mu(params, eval)?)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.benchmark != 3 && args.benchmark != 4 {
        return Err(format!("expected --benchmark 3 or 4, found {}", args.benchmark));
    }
    if args.inits == 0 {
        return Err("expected --inits of at least 1, found 0".into());
    }
    let start = Instant::now();
    let data = samples(args.events, 1000 + u64::from(args.benchmark));
    let evaluation = samples(args.eval_events, 2000 + u64::from(args.benchmark));
    let eval: Vec<ArrayView2<'_, f64>> = evaluation.iter().map(|a| a.view()).collect();
    println!(
        "INFERNO benchmark {}: {} initialisations per method, {} steps, {} training events per sample, {} for the evaluation",
        args.benchmark, args.inits, args.steps, args.events, args.eval_events
    );
    let mut rows = Vec::new();
    for method in &METHODS {
        let mut sigmas = Vec::new();
        for init in 0..args.inits {
            let t = Instant::now();
            let sigma = match (method.name, args.benchmark) {
                ("softmax_poi_uncert", 3) => sigma_s(Softmax3::new(), method, init, &data, &eval, args),
                ("softmax_poi_uncert", _) => sigma_s(Softmax4::new(), method, init, &data, &eval, args),
                (_, 3) => sigma_s(Kde3::new(), method, init, &data, &eval, args),
                _ => sigma_s(Kde4::new(), method, init, &data, &eval, args),
            }?;
            println!("  {:<20} init {init:>2}: σ_s = {sigma:.3}  ({:.1} s)", method.name, t.elapsed().as_secs_f64());
            sigmas.push(sigma);
        }
        rows.push((method.name, sigmas));
    }

    let column = if args.benchmark == 3 { 1 } else { 2 };
    println!(
        "\nbenchmark {}: median σ_s over {} initialisations (1M-event evaluation, hard bins)",
        args.benchmark, args.inits
    );
    for (name, sigmas) in &rows {
        println!("  {name:<20} {:>7.2}", median(sigmas));
    }
    println!("the paper (de Castro & Dorigo 2019, Table):");
    for (name, b3, b4) in PAPER {
        println!("  {name:<28} {:>7.2}", if column == 1 { b3 } else { b4 });
    }
    println!("in {:.0} s", start.elapsed().as_secs_f64());

    let json = serde_json::json!({
        "benchmark": args.benchmark,
        "inits": args.inits,
        "rows": rows.iter().map(|(name, sigmas)| serde_json::json!({
            "method": name,
            "sigma_s": sigmas,
            "median": median(sigmas),
        })).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let path = args.out.join("inferno.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
