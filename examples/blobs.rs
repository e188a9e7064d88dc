//! The demo of the neos paper: a network trained end to end through a binned analysis of four
//! two-dimensional Gaussian blobs, so that the expected CLs of a signal with μ = 1 falls.
//!
//! The signal is a blob at (−1, 1), the nominal background one at (1, −1), and the background's
//! systematic variations are blobs at (2.5, 2) (up) and (−2.5, −1.5) (down). The network's
//! output is histogrammed with a kernel density estimate (bandwidth 0.09, four bins whose inner
//! edges are trained too); the background's histograms give a histosys, the signal's a sample
//! scaled by μ. Every step runs the profile-likelihood fits and differentiates through them.
//!
//! ```text
//! cargo run --release --example blobs -- [--steps N] [--hidden 1024|32] [--bins 4|8] [--precision f64|f32]
//!     [--objective cls|discovery|poi_uncert|bce] [--seed S] [--out DIR] [--resume]
//!     [--gif FILE [--gif-every K]]
//! ```
//!
//! It prints a line per step, writes `DIR/steps.jsonl` (the per-step records), `DIR/run.json`
//! (settings, status and best step), `DIR/checkpoint.json` (resume with `--resume`), and the
//! figures `DIR/metrics.png`, `DIR/histograms.png` and `DIR/network.png`; with `--gif FILE`,
//! the training as an animated GIF (the network over the plane, the yields and the test CLs
//! so far, a frame every K steps, by default about 60 frames in all).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ndarray::{Array2, ArrayView2};
use neos::plot::{HeatMap, Hist, Scatter, Stack};
use neos::train::{Analysis, RunLog, StepRecord, TrainConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[path = "support/blobs.rs"]
mod support;
use support::{blob, plane};

/// The four-blob analysis with a network of the given hidden width and number of bins (both are
/// compiled in, so each build is an analysis type of its own).
macro_rules! blobs_analysis {
    ($(#[$doc:meta])* $name:ident, $width:literal, $bins:literal, $precision:ident) => {
        neos::neos! {
            $(#[$doc])*
            pub analysis $name {
                inputs { sig: events[2], bkg_nominal: events[2], bkg_up: events[2], bkg_down: events[2] }
                knobs { bandwidth = 0.09, lumi = 10.0 }
                params {
                    nn = mlp(2 => $width => $width => 1, relu, sigmoid, precision = $precision);
                    edges = bin_edges(0.0..1.0, bins = $bins, trainable);
                }
                let s = hist(nn(sig), edges, bandwidth, scale = 2.0 * lumi);
                let b = hist(nn(bkg_nominal), edges, bandwidth, scale = 10.0 * lumi);
                let bup = hist(nn(bkg_up), edges, bandwidth, scale = 10.0 * lumi);
                let bdn = hist(nn(bkg_down), edges, bandwidth, scale = 10.0 * lumi);
                model {
                    channel singlechannel {
                        sample signal = s { normfactor mu }
                        sample background = b { histosys correlated_bkg_uncertainty(lo = bdn, hi = bup) }
                    }
                    poi mu;
                }
                loss cls(mu = 1.0), discovery, poi_uncert, bce(nn(sig), nn(bkg_nominal), nn(bkg_up), nn(bkg_down));
                metrics cls, discovery, poi_uncert;
            }
        }
    };
}

blobs_analysis!(
    /// The paper's network, 2 → 1024 → 1024 → 1, with four bins.
    Blobs1024, 1024, 4, f64
);
blobs_analysis!(
    /// The paper's network with its layers in f32.
    Blobs1024F32, 1024, 4, f32
);
blobs_analysis!(
    /// A 32-wide network with four bins, for quick runs.
    Blobs32, 32, 4, f64
);
blobs_analysis!(
    /// The 32-wide network with its layers in f32.
    Blobs32F32, 32, 4, f32
);
blobs_analysis!(
    /// A 32-wide network with eight bins.
    Blobs32Bins8, 32, 8, f64
);

/// Trains a network through the neos blobs analysis and plots the result.
#[derive(Debug, Parser)]
#[command(about, allow_negative_numbers = true)]
struct Args {
    /// Training steps (Adam updates); the default takes about two minutes on two cores.
    #[arg(long, default_value_t = 40)]
    steps: usize,
    /// Width of the two hidden layers (compiled in: 1024 or 32).
    #[arg(long, default_value_t = 1024)]
    hidden: usize,
    /// Number of bins (compiled in: 4, or 8 with --hidden 32).
    #[arg(long, default_value_t = 4)]
    bins: usize,
    /// The network's element type, f64 or f32 (with four bins); the histograms and the
    /// statistics are f64 either way.
    #[arg(long, default_value = "f64")]
    precision: String,
    /// What to minimise: cls, discovery, poi_uncert, or bce (a plain classifier, the baseline).
    #[arg(long, default_value = "cls")]
    objective: String,
    /// Seeds the blobs, the initial weights, the train/test split and the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Events per sample in each batch.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Where run.json, the checkpoint and the figures go.
    #[arg(long, default_value = "blobs-run")]
    out: PathBuf,
    /// Continue the run saved in OUT/checkpoint.json up to --steps.
    #[arg(long)]
    resume: bool,
    /// No progress bar (the per-step lines are still printed).
    #[arg(long)]
    quiet: bool,
    /// Also write the training as an animated GIF here.
    #[arg(long)]
    gif: Option<PathBuf>,
    /// A GIF frame every K steps (default: about 60 frames over the run).
    #[arg(long)]
    gif_every: Option<usize>,
}

/// The blobs' centres: signal, nominal background, and its up and down variations.
const BLOBS: [(&str, [f64; 2]); 4] =
    [("sig", [-1.0, 1.0]), ("bkg_nominal", [1.0, -1.0]), ("bkg_up", [2.5, 2.0]), ("bkg_down", [-2.5, -1.5])];

fn blobs(n: usize, seed: u64) -> Vec<Array2<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    BLOBS.iter().map(|(_, c)| blob(*c, n, &mut rng)).collect()
}

/// What the example needs of an analysis besides training: yields and the network's output.
trait Figures: Analysis {
    /// Another instance, to draw with while the trainer holds the first.
    fn fresh() -> Self;
    fn yields(&mut self, params: &[f64], batch: &[ArrayView2<'_, f64>]) -> Result<Vec<(String, Vec<f64>)>, String>;
    fn output(&mut self, params: &[f64], points: ArrayView2<'_, f64>) -> Result<Vec<f64>, String>;
}

macro_rules! figures {
    ($($t:ty),*) => {$(
        impl Figures for $t {
            fn fresh() -> Self {
                <$t>::new()
            }
            fn yields(&mut self, params: &[f64], batch: &[ArrayView2<'_, f64>]) -> Result<Vec<(String, Vec<f64>)>, String> {
                let values = self.values(params, batch, &[("bandwidth", 1e-8)]).map_err(|e| e.to_string())?;
                Ok(values.into_iter().map(|(n, v)| (n.to_string(), v)).collect())
            }
            fn output(&mut self, params: &[f64], points: ArrayView2<'_, f64>) -> Result<Vec<f64>, String> {
                self.network("nn", params, points).map_err(|e| e.to_string())
            }
        }
    )*};
}
figures!(Blobs1024, Blobs1024F32, Blobs32, Blobs32F32, Blobs32Bins8);

fn step_line(r: &StepRecord) -> String {
    let metric = |n: &str| r.value(n).unwrap_or(f64::NAN);
    let edges = r.report.iter().find(|(n, _)| n == "edges").map(|(_, e)| e.clone()).unwrap_or_default();
    let edges: Vec<String> = edges.iter().map(|e| format!("{e:.3}")).collect();
    format!(
        "step {:>4}  loss {:>10.4e}  cls {:.3e}  discovery {:.3e}  poi_uncert {:.4}  edges [{}]  {:.2} s (+{:.2} s metrics)",
        r.step,
        r.loss,
        metric("cls"),
        metric("discovery"),
        metric("poi_uncert"),
        edges.join(" "),
        r.seconds,
        r.eval_seconds
    )
}

fn run<A: Figures>(mut analysis: A, args: &Args) -> Result<(), String> {
    let data = blobs(10_000, args.seed);
    let mut config = TrainConfig::new(&args.objective, "cls");
    config.steps = args.steps;
    config.batch_size = args.batch;
    config.learning_rate = args.learning_rate;
    config.seed = args.seed;
    config.train_fraction = 0.75;
    // Training uses the analysis's bandwidth (0.09); the test metrics a hard histogram.
    config.test_knobs = vec![("bandwidth".to_string(), 1e-8)];
    config.checkpoint_every = 10;
    config.out_dir = Some(args.out.clone());
    config.progress = !args.quiet;
    println!(
        "neos blobs: {} steps on {}, network 2 → {h} → {h} → 1, {} bins, batches of {} events per sample, seed {}",
        args.steps,
        args.objective,
        args.bins,
        args.batch,
        args.seed,
        h = args.hidden
    );
    // The animation draws with an analysis of its own, on held-out events and a coarse grid.
    let mut drawer = A::fresh();
    let held_out = blobs(2500, args.seed.wrapping_add(1));
    let views: Vec<ArrayView2<'_, f64>> = held_out.iter().map(|a| a.view()).collect();
    let coarse = 60;
    let grid = plane(coarse, LO, HI);
    let gif = args.gif.as_deref().map(|path| (path, args.gif_every));
    let scatter = scatter(&held_out);
    let show = support::Show {
        picture: |params: &[f64]| snapshot(&mut drawer, params, &views, &grid, coarse),
        scatter: &scatter,
        binned: BINNED,
    };
    let log = support::train_animated(&mut analysis, &data, &config, args.resume, gif, "cls", step_line, show)?;
    support::summary(&log, &["cls", "discovery", "poi_uncert"]);
    figures(&mut analysis, &log, args)
}

/// The plane the network's output is drawn over.
const LO: f64 = -5.0;
const HI: f64 = 5.0;

/// What the figures show of a network: the four samples' yields on held-out events with hard
/// bins, the bin edges, and its output over an `n` × `n` grid of the plane.
struct Snapshot {
    yields: Vec<Vec<f64>>,
    edges: Vec<f64>,
    map: Array2<f64>,
}

fn snapshot<A: Figures>(
    analysis: &mut A,
    params: &[f64],
    events: &[ArrayView2<'_, f64>],
    grid: &Array2<f64>,
    n: usize,
) -> Result<Snapshot, String> {
    let yields: Vec<Vec<f64>> = analysis.yields(params, events)?.into_iter().map(|(_, v)| v).collect();
    if yields.len() < 4 {
        return Err(format!("expected the yields of 4 samples, found {}", yields.len()));
    }
    let edges = analysis
        .report(params)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|(n, _)| n == "edges")
        .map(|(_, e)| e)
        .unwrap_or_default();
    let map = Array2::from_shape_vec((n, n), analysis.output(params, grid.view())?).map_err(|e| e.to_string())?;
    Ok(Snapshot { yields, edges, map })
}

/// What the histograms' axis shows.
const BINNED: &str = "network output";

impl support::Picture for Snapshot {
    /// Calls `draw` with the background and the signal stacked on top, and the background's
    /// variations as outlines over them.
    fn stack<R>(&self, draw: impl FnOnce(&[f64], Stack<'_>) -> R) -> R {
        let hist = |k: usize| Hist { label: LABELS[k], counts: &self.yields[k] };
        draw(&self.edges, Stack { layers: &[hist(1), hist(0)], band: None, overlays: &[hist(2), hist(3)] })
    }

    fn heat_map(&self) -> HeatMap<'_> {
        HeatMap { values: self.map.view(), extent: [LO, HI, LO, HI], label: "network output" }
    }
}

/// The samples' names in the figures, in the analysis's order.
const LABELS: [&str; 4] = ["signal", "background", "background up", "background down"];

/// The first 300 events of each sample, labelled, to scatter over the plane.
fn scatter(samples: &[Array2<f64>]) -> Vec<Scatter<'_>> {
    samples.iter().zip(LABELS).map(|(p, label)| Scatter { label, points: p.slice(ndarray::s![..300, ..]) }).collect()
}

fn figures<A: Figures>(analysis: &mut A, log: &RunLog, args: &Args) -> Result<(), String> {
    let params = if log.best_params.is_empty() { &log.params } else { &log.best_params };
    // Histograms of fresh events from each blob through the selected network, with hard bins,
    // and the network's output over the plane with the blobs over it.
    let held_out = blobs(2500, args.seed.wrapping_add(1));
    let views: Vec<ArrayView2<'_, f64>> = held_out.iter().map(|a| a.view()).collect();
    let n = 120;
    let snap = snapshot(analysis, params, &views, &plane(n, LO, HI), n)?;
    let scatter = scatter(&held_out);
    let show = support::Show { picture: snap, scatter: &scatter, binned: BINNED };
    support::write_figures(&args.out, log, "neos blobs", &show, "network output over the plane")
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match (args.hidden, args.bins, args.precision.as_str()) {
        (1024, 4, "f64") => run(Blobs1024::new(), &args),
        (1024, 4, "f32") => run(Blobs1024F32::new(), &args),
        (32, 4, "f64") => run(Blobs32::new(), &args),
        (32, 4, "f32") => run(Blobs32F32::new(), &args),
        (32, 8, "f64") => run(Blobs32Bins8::new(), &args),
        (h, b, p) => Err(format!(
            "expected --hidden 1024 or 32 with --bins 4 and --precision f64 or f32, or --hidden 32 --bins 8 in f64 (the networks compiled into this example), found --hidden {h} --bins {b} --precision {p}"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
