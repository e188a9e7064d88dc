//! Bring your own data: weighted Monte Carlo of unequal sizes read from `.npy`, CSV and ROOT
//! files, a 3 → 64 → 64 → 1 network trained through a signal region binned in its output and a
//! one-bin control region, spliced into an existing analysis (a pyhf workspace with 21
//! parameters), and the trained analysis written back out as a pyhf workspace and a parameter
//! file.
//!
//! ```text
//! cargo run --release --example own_data -- [--data DIR] [--out DIR] [--steps N] [--batch N]
//!     [--learning-rate X] [--seed S] [--quiet]
//! ```
//!
//! The samples stand for a physicist's ntuples. The first run writes them into `--data` (default
//! `own-data/`) with a small seeded generator: the signal as `signal.npy` with
//! `signal_weights.npy` (12 000 events), the nominal background as the TTree `events` of
//! `background.root` (30 000 events, branches `x0 x1 x2 weight`), its up variation as
//! `background_up.csv` and its down variation as the TTree of `background_down.root`. Later runs
//! read whatever those files hold; replace them with your own.
//!
//! The analysis is HistFactory in pyhf's vocabulary. `examples/data/existing_analysis.json`
//! stands for the analysis a physicist already has: control and validation regions, three
//! samples and 21 parameters (written by `make_existing_analysis.py` beside it). The network's
//! two regions join it and share its parameters by name: μ on the signal, the free background
//! normalisation, the background shape's histosys (here from the Monte Carlo variations), the
//! normsys uncertainties, and the Monte Carlo statistical uncertainty of each new region's
//! background histogram as a staterror (it changes with the network and is differentiated
//! through), 26 parameters in all. Training minimises the expected CLs at μ = 1 of the whole
//! analysis, with every fit differentiated.
//!
//! It writes, into `--out` (default `own-data-run/`): the run log and checkpoints (as the blobs
//! example), `workspace.json` (the trained analysis on all events with hard histograms, which
//! `neos cls` and `pyhf cls` read), `params.json` (the trained parameters with names and shapes), `final_metrics.json` (the
//! metrics of that workspace),
//! `histograms.png` (the signal region's yields, stacked, with the Monte Carlo uncertainty and
//! the variations) and `metrics.png`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use neos::data::{self, Sample};
use neos::plot::{self, Figure, Hist, Stack};
use neos::train::{self, RunLog, StepRecord, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

neos::neos! {
    /// A signal region binned in the network's output and a background control region, with
    /// weighted Monte Carlo, spliced into an existing analysis's workspace.
    pub analysis OwnData {
        inputs {
            sig: weighted events[3],
            bkg: weighted events[3],
            bkg_up: weighted events[3],
            bkg_down: weighted events[3]
        }
        knobs { bandwidth = 0.1 }
        params {
            nn = mlp(3 => 64 => 64 => 1, relu, sigmoid);
            edges = bin_edges(0.0..1.0, bins = 4, trainable);
        }
        let s = hist(nn(sig), edges, bandwidth, weights = weights(sig), scale = 1.0);
        let b = hist(nn(bkg), edges, bandwidth, weights = weights(bkg), scale = 1.0);
        let b_up = hist(nn(bkg_up), edges, bandwidth, weights = weights(bkg_up), scale = 1.0);
        let b_down = hist(nn(bkg_down), edges, bandwidth, weights = weights(bkg_down), scale = 1.0);
        let b_stat = mcstat(b);
        // The control region: a selection with twice the background and no signal.
        let cr = count(bkg, weights = weights(bkg), scale = 2.0);
        let cr_stat = mcstat(cr);
        // The analysis the network joins: a pyhf workspace with its own control and validation
        // regions, samples and systematics (21 parameters). Its channels, modifiers and settings
        // are kept; the network's regions are added and share its parameters by name.
        model from "examples/data/existing_analysis.json" {
            channel signal_region {
                sample signal = s {
                    normfactor mu,
                    normsys signal_theory(lo = 0.9, hi = 1.1),
                    normsys lumi(lo = 0.98, hi = 1.02),
                    normsys jet_energy_scale(lo = 0.95, hi = 1.04),
                    normsys b_tagging(lo = 0.97, hi = 1.03)
                }
                sample background = b {
                    normfactor background_norm,
                    histosys background_shape(lo = b_down, hi = b_up),
                    staterror stat_signal_region(b_stat),
                    normsys lumi(lo = 0.98, hi = 1.02),
                    normsys jet_energy_scale(lo = 0.93, hi = 1.06),
                    normsys b_tagging(lo = 0.96, hi = 1.05)
                }
            }
            channel control_region {
                sample background = cr {
                    normfactor background_norm,
                    staterror stat_control_region(cr_stat),
                    normsys lumi(lo = 0.98, hi = 1.02)
                }
            }
        }
        loss cls(mu = 1.0);
        metrics cls, discovery, poi_uncert;
    }
}

#[derive(Parser, Debug)]
#[command(about = "Train a neos analysis on weighted Monte Carlo read from .npy, CSV and ROOT files")]
struct Args {
    /// Folder of the input files (written by the generator when missing).
    #[arg(long, default_value = "own-data")]
    data: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "own-data-run")]
    out: PathBuf,
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// Events per sample in each batch.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Events around `centre` with unit spread scaled by `width`, and weights that sum to `total`
/// (each event's weight jittered by ±50 %, as Monte Carlo weights are).
fn generate(rng: &mut ChaCha8Rng, n: usize, centre: [f64; 3], width: f64, total: f64) -> Sample {
    let mut normal = || {
        let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let events = Array2::from_shape_fn((n, 3), |(_, j)| centre[j] + width * normal());
    let raw = Array1::from_shape_fn(n, |_| 0.5 + rng.random::<f64>());
    let weights = &raw * (total / raw.sum());
    Sample { events, weights: Some(weights) }
}

/// Writes the four samples in the three formats.
fn write_samples(dir: &Path, seed: u64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6f77_6e5f_6461_7461);
    let sig = generate(&mut rng, 12_000, [1.0, 1.0, 0.5], 1.0, 50.0);
    let bkg = generate(&mut rng, 30_000, [-0.5, -0.5, 0.0], 1.5, 1000.0);
    let up = generate(&mut rng, 20_000, [-0.2, -0.4, 0.1], 1.5, 1060.0);
    let down = generate(&mut rng, 18_000, [-0.8, -0.6, -0.1], 1.5, 950.0);
    let e = |e: data::DataError| e.to_string();
    data::write_npy(dir.join("signal.npy"), &sig.events).map_err(e)?;
    let w = sig.weights.clone().unwrap_or_default().insert_axis(Axis(1));
    data::write_npy(dir.join("signal_weights.npy"), &w).map_err(e)?;
    let root = |path: PathBuf, s: &Sample| {
        let w = s.weights.clone().unwrap_or_default();
        let columns: Vec<Vec<f64>> = (0..3).map(|j| s.events.column(j).to_vec()).collect();
        data::write_root(
            path,
            "events",
            &[("x0", &columns[0]), ("x1", &columns[1]), ("x2", &columns[2]), ("weight", w.as_slice().unwrap_or(&[]))],
        )
    };
    root(dir.join("background.root"), &bkg).map_err(e)?;
    root(dir.join("background_down.root"), &down).map_err(e)?;
    let mut csv = String::from("x0,x1,x2,weight\n");
    for (row, w) in up.events.rows().into_iter().zip(up.weights.iter().flatten()) {
        csv.push_str(&format!("{:?},{:?},{:?},{:?}\n", row[0], row[1], row[2], w));
    }
    let path = dir.join("background_up.csv");
    std::fs::write(&path, csv).map_err(|e| format!("{}: {e}", path.display()))
}

/// The four samples from their files, in the analysis's order.
fn read_samples(dir: &Path) -> Result<Vec<Sample>, String> {
    let e = |e: data::DataError| e.to_string();
    let features = ["x0", "x1", "x2"];
    let split = |table: Array2<f64>, file: PathBuf| -> Result<Sample, data::DataError> {
        let weights = table.column(3).to_owned();
        Sample::weighted(table.slice(ndarray::s![.., ..3]).to_owned(), weights, file)
    };
    let all = ["x0", "x1", "x2", "weight"];
    let sig = Sample::weighted(
        data::read_npy(dir.join("signal.npy")).map_err(e)?,
        data::read_npy_column(dir.join("signal_weights.npy")).map_err(e)?,
        dir.join("signal_weights.npy"),
    )
    .map_err(e)?;
    let bkg =
        split(data::read_root(dir.join("background.root"), "events", &all).map_err(e)?, dir.join("background.root"))
            .map_err(e)?;
    let up = split(data::read_csv(dir.join("background_up.csv"), &all).map_err(e)?, dir.join("background_up.csv"))
        .map_err(e)?;
    let down = split(
        data::read_root(dir.join("background_down.root"), "events", &all).map_err(e)?,
        dir.join("background_down.root"),
    )
    .map_err(e)?;
    for s in [&sig, &bkg, &up, &down] {
        if s.events.ncols() != features.len() {
            return Err(format!("expected {} features, found {}", features.len(), s.events.ncols()));
        }
    }
    Ok(vec![sig, bkg, up, down])
}

fn step_line(r: &StepRecord) -> String {
    let metric = |n: &str| r.value(n).unwrap_or(f64::NAN);
    format!(
        "step {:>4}  loss {:>10.4e}  cls {:.3e}  discovery {:.3e}  poi_uncert {:.4}  {:.2} s (+{:.2} s metrics)",
        r.step,
        r.loss,
        metric("cls"),
        metric("discovery"),
        metric("poi_uncert"),
        r.seconds,
        r.eval_seconds
    )
}

fn run(args: &Args) -> Result<(), String> {
    let files = ["signal.npy", "signal_weights.npy", "background.root", "background_up.csv", "background_down.root"];
    if !files.iter().all(|f| args.data.join(f).exists()) {
        println!("writing the example's samples into {}", args.data.display());
        write_samples(&args.data, args.seed)?;
    }
    let samples = read_samples(&args.data)?;
    for (name, s) in ["signal", "background", "background up", "background down"].iter().zip(&samples) {
        println!("{name:<16} {:>6} events, weights summing to {:.1}", s.len(), s.sum_weights());
    }
    let arrays: Vec<Array2<f64>> = samples.iter().map(Sample::to_array).collect();

    let mut analysis = OwnData::new();
    let mut config = TrainConfig::new("cls", "cls");
    config.steps = args.steps;
    config.batch_size = args.batch;
    config.learning_rate = args.learning_rate;
    config.seed = args.seed;
    config.test_knobs = vec![("bandwidth".to_string(), 1e-8)];
    config.checkpoint_every = 10;
    config.out_dir = Some(args.out.clone());
    config.progress = !args.quiet;
    let log = train::train_with(&mut analysis, &arrays, &config, &mut |r, _| Some(step_line(r)))
        .map_err(|e| e.to_string())?;
    summary(&log);

    // The trained analysis on every event, with hard histograms.
    let params = if log.best_params.is_empty() { &log.params } else { &log.best_params };
    let views: Vec<ArrayView2<'_, f64>> = arrays.iter().map(|a| a.view()).collect();
    let hard = [("bandwidth", 1e-8)];
    let workspace = analysis.workspace(params, &views, &hard).map_err(|e| e.to_string())?;
    let ws_path = args.out.join("workspace.json");
    std::fs::write(&ws_path, &workspace).map_err(|e| format!("{}: {e}", ws_path.display()))?;
    analysis.save_params(params, args.out.join("params.json")).map_err(|e| e.to_string())?;
    let metrics = analysis.metrics(params, &views, &hard).map_err(|e| e.to_string())?;
    for (name, value) in &metrics {
        println!("all events, hard histograms: {name} = {value:.12e}");
    }
    // The same numbers for scripts (CI compares the cls with `neos cls` on the workspace).
    let summary: serde_json::Map<String, serde_json::Value> =
        metrics.iter().map(|(name, value)| (name.to_string(), serde_json::json!(value))).collect();
    let metrics_path = args.out.join("final_metrics.json");
    std::fs::write(&metrics_path, serde_json::Value::Object(summary).to_string())
        .map_err(|e| format!("{}: {e}", metrics_path.display()))?;
    let values = analysis.values(params, &views, &hard).map_err(|e| e.to_string())?;
    let get = |n: &str| values.iter().find(|(v, _)| *v == n).map(|(_, v)| v.clone()).unwrap_or_default();
    let (s, b, edges) = (get("s"), get("b"), get("edges"));
    let (up, down, stat) = (get("b_up"), get("b_down"), get("b_stat"));
    let stack = Stack {
        layers: &[Hist { label: "background", counts: &b }, Hist { label: "signal (μ = 1)", counts: &s }],
        band: Some(("background MC stat. ±1σ", &stat)),
        overlays: &[Hist { label: "background up", counts: &up }, Hist { label: "background down", counts: &down }],
    };
    plot::stacked(
        &edges,
        &stack,
        &args.out.join("histograms.png"),
        &Figure::new("signal region, all events", "network output", "expected events"),
    )
    .map_err(|e| e.to_string())?;
    let curves = Figure::new("own data: training loss and test-set metrics", "step", "");
    plot::metric_curves(&log, &args.out.join("metrics.png"), &curves).map_err(|e| e.to_string())?;
    println!(
        "wrote {}, {}, {} and {}",
        ws_path.display(),
        args.out.join("params.json").display(),
        args.out.join("histograms.png").display(),
        args.out.join("metrics.png").display()
    );
    println!("check it: cargo run --release --bin neos -- cls {}   (its CLs_obs is the cls above)", ws_path.display());
    Ok(())
}

fn summary(log: &RunLog) {
    if let (Some(first), Some(last)) = (log.records.first(), log.records.last()) {
        let m = |r: &StepRecord, n: &str| r.value(n).unwrap_or(f64::NAN);
        println!("summary over {} steps (test set, hard histograms):", log.records.len());
        for name in ["cls", "discovery", "poi_uncert"] {
            println!("  {name:<10} first {:>10.4e}  last {:>10.4e}", m(first, name), m(last, name));
        }
        if let Some(best) = &log.best {
            println!("  best {} {:.4e} at step {}", best.metric, best.value, best.step);
        }
    }
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
