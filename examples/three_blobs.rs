//! The original neos example (neos 0.0.1): a network whose softmax outputs are the bins, trained
//! through a HistFactory analysis of three two-dimensional Gaussian blobs so that the expected
//! CLs of a signal with μ = 1 falls.
//!
//! The signal is a unit Gaussian blob at (−1, 1), the two backgrounds blobs at (2, 2) and
//! (−1, −1), 500 events each for training (and as many more for the test metrics). Each event's
//! softmax outputs are its shares of the bins: a sample's yield in a bin is the sum of that
//! output over its events, scaled as `sum · scale / N · lumi` (signal scale 2, backgrounds 10,
//! luminosity 10). The background is the mean of the two backgrounds' histograms and its
//! uncertainty their standard deviation, an uncorrelated shapesys as in pyhf's `hepdata_like`;
//! μ scales the signal. The loss is CLs at μ = 1 (q̃μ on background-only Asimov data), with
//! every fit differentiated; Adam at 1e-3 as neos 0.0.1 trained it.
//!
//! The model is pyhf's `hepdata_like`: one γ per bin, each constrained by its bin's auxiliary
//! count. neos 0.0.1 used a model of its own under that name with a single γ for all bins
//! (each bin's auxiliary count constraining the one γ), which constrains the background more
//! and so reaches a small CLs sooner (its README: 0.067 before training, 0.0023 after 20
//! steps). With pyhf's model CLs first falls to a plateau near 0.05 and leaves it after about
//! 25 steps, hence 100 steps by default (about 40 s with the 1024-wide network on two cores).
//!
//! ```text
//! cargo run --release --example three_blobs -- [--steps N] [--hidden 1024|32]
//!     [--objective cls|discovery|poi_uncert] [--seed S] [--out DIR] [--resume] [--quiet]
//!     [--gif FILE [--gif-every K]]
//! ```
//!
//! It prints a line per step and writes, into `--out` (default `three-blobs-run/`), the run log
//! and checkpoints as the blobs example does (`steps.jsonl`, `run.json`, `checkpoint.json`) and
//! the figures `metrics.png`, `histograms.png` (the yields stacked, the background's standard
//! deviation as a band, the two backgrounds as outlines) and `network.png` (the bin the network
//! gives each point of the plane, with the blobs). With `--gif FILE` it also writes the training
//! as an animated GIF: the network's bins over the plane, the yields and the test CLs so far,
//! a frame every K steps (by default about 60 frames in all).

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

/// neos 0.0.1's analysis with a network of the given hidden width (compiled in).
macro_rules! three_blobs_analysis {
    ($(#[$doc:meta])* $name:ident, $width:literal) => {
        neos::neos! {
            $(#[$doc])*
            pub analysis $name {
                inputs { sig: events[2], bkg1: events[2], bkg2: events[2] }
                knobs { lumi = 10.0 }
                params { nn = mlp(2 => $width => $width => 2, relu, softmax); }
                let s = counts(nn(sig), scale = 2.0 * lumi);
                let b1 = counts(nn(bkg1), scale = 10.0 * lumi);
                let b2 = counts(nn(bkg2), scale = 10.0 * lumi);
                let background = mean(b1, b2);
                let background_unc = std(b1, b2);
                model {
                    channel singlechannel {
                        sample signal = s { normfactor mu }
                        sample background = background { shapesys uncorr_bkguncrt(background_unc) }
                    }
                    poi mu;
                }
                loss cls(mu = 1.0), discovery, poi_uncert;
                metrics cls, discovery, poi_uncert;
            }
        }
    };
}

three_blobs_analysis!(
    /// neos 0.0.1's network, 2 → 1024 → 1024 → 2 with softmax.
    ThreeBlobs1024, 1024
);
three_blobs_analysis!(
    /// A 32-wide network, for quick runs.
    ThreeBlobs32, 32
);

/// Trains a softmax network through neos 0.0.1's three-blob analysis and plots the result.
#[derive(Debug, Parser)]
#[command(about, allow_negative_numbers = true)]
struct Args {
    /// Training steps (Adam updates).
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Width of the two hidden layers (compiled in: 1024 or 32).
    #[arg(long, default_value_t = 1024)]
    hidden: usize,
    /// What to minimise: cls, discovery or poi_uncert.
    #[arg(long, default_value = "cls")]
    objective: String,
    /// Seeds the blobs and the initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Where run.json, the checkpoint and the figures go.
    #[arg(long, default_value = "three-blobs-run")]
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

/// The blobs' centres: signal and the two backgrounds.
const CENTRES: [[f64; 2]; 3] = [[-1.0, 1.0], [2.0, 2.0], [-1.0, -1.0]];

/// Events per sample for training, as neos 0.0.1 draws them; as many again are the test set.
const EVENTS: usize = 500;

fn blobs(n: usize, seed: u64) -> Vec<Array2<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    CENTRES.iter().map(|c| blob(*c, n, &mut rng)).collect()
}

/// What the example needs of an analysis besides training: the yields and the network.
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
                let values = self.values(params, batch, &[]).map_err(|e| e.to_string())?;
                Ok(values.into_iter().map(|(n, v)| (n.to_string(), v)).collect())
            }
            fn output(&mut self, params: &[f64], points: ArrayView2<'_, f64>) -> Result<Vec<f64>, String> {
                self.network("nn", params, points).map_err(|e| e.to_string())
            }
        }
    )*};
}
figures!(ThreeBlobs1024, ThreeBlobs32);

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

fn run<A: Figures>(mut analysis: A, args: &Args) -> Result<(), String> {
    let data = blobs(2 * EVENTS, args.seed);
    let mut config = TrainConfig::new(&args.objective, "cls");
    config.steps = args.steps;
    // Every step sees all 500 training events of each sample, as neos 0.0.1 trained.
    config.batch_size = EVENTS;
    config.train_fraction = 0.5;
    config.learning_rate = args.learning_rate;
    config.seed = args.seed;
    config.checkpoint_every = 10;
    config.out_dir = Some(args.out.clone());
    config.progress = !args.quiet;
    println!(
        "neos three blobs: {} steps on {}, network 2 → {h} → {h} → 2 with softmax, {} events per sample, seed {}",
        args.steps,
        args.objective,
        EVENTS,
        args.seed,
        h = args.hidden
    );
    // The animation draws with an analysis of its own, on held-out events and a coarse grid.
    let mut drawer = A::fresh();
    let held_out = blobs(EVENTS, args.seed.wrapping_add(1));
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

/// The plane the network's bins are drawn over.
const LO: f64 = -5.0;
const HI: f64 = 5.0;

/// What the figures show of a network: its yields on held-out events and the bin of its
/// largest output over an `n` × `n` grid of the plane.
struct Snapshot {
    s: Vec<f64>,
    background: Vec<f64>,
    unc: Vec<f64>,
    b1: Vec<f64>,
    b2: Vec<f64>,
    map: Array2<f64>,
}

fn snapshot<A: Figures>(
    analysis: &mut A,
    params: &[f64],
    events: &[ArrayView2<'_, f64>],
    grid: &Array2<f64>,
    n: usize,
) -> Result<Snapshot, String> {
    let yields = analysis.yields(params, events)?;
    let get = |n: &str| yields.iter().find(|(v, _)| v == n).map(|(_, v)| v.clone()).unwrap_or_default();
    let s = get("s");
    let bins = s.len().max(1);
    let shares = analysis.output(params, grid.view())?;
    let most: Vec<f64> = shares
        .chunks(bins)
        .map(|row| row.iter().enumerate().fold((0, f64::MIN), |m, (k, v)| if *v > m.1 { (k, *v) } else { m }).0 as f64)
        .collect();
    let map = Array2::from_shape_vec((n, n), most).map_err(|e| e.to_string())?;
    Ok(Snapshot { s, background: get("background"), unc: get("background_unc"), b1: get("b1"), b2: get("b2"), map })
}

/// What the histograms' axis shows.
const BINNED: &str = "bin (softmax output)";

impl support::Picture for Snapshot {
    /// Calls `draw` with the bins' edges and the yields stacked: the background's mean with its
    /// standard deviation as a band, the signal on top, each background as an outline.
    fn stack<R>(&self, draw: impl FnOnce(&[f64], Stack<'_>) -> R) -> R {
        let edges: Vec<f64> = (0..=self.s.len()).map(|k| k as f64).collect();
        let layers = [
            Hist { label: "background (mean)", counts: &self.background },
            Hist { label: "signal (μ = 1)", counts: &self.s },
        ];
        let overlays =
            [Hist { label: "background 1", counts: &self.b1 }, Hist { label: "background 2", counts: &self.b2 }];
        draw(
            &edges,
            Stack { layers: &layers, band: Some(("background std. dev. ±1σ", &self.unc)), overlays: &overlays },
        )
    }

    fn heat_map(&self) -> HeatMap<'_> {
        HeatMap { values: self.map.view(), extent: [LO, HI, LO, HI], label: "bin of the largest output" }
    }
}

/// The first 300 events of each sample, labelled, to scatter over the plane.
fn scatter(samples: &[Array2<f64>]) -> Vec<Scatter<'_>> {
    let labels = ["signal", "background 1", "background 2"];
    samples.iter().zip(labels).map(|(p, label)| Scatter { label, points: p.slice(ndarray::s![..300, ..]) }).collect()
}

fn figures<A: Figures>(analysis: &mut A, log: &RunLog, args: &Args) -> Result<(), String> {
    let params = if log.best_params.is_empty() { &log.params } else { &log.best_params };
    // The yields of fresh events from each blob through the selected network, and the bin it
    // gives each point of the plane, with the blobs over it.
    let held_out = blobs(EVENTS, args.seed.wrapping_add(1));
    let views: Vec<ArrayView2<'_, f64>> = held_out.iter().map(|a| a.view()).collect();
    let n = 120;
    let snap = snapshot(analysis, params, &views, &plane(n, LO, HI), n)?;
    let scatter = scatter(&held_out);
    let show = support::Show { picture: snap, scatter: &scatter, binned: BINNED };
    support::write_figures(&args.out, log, "neos three blobs", &show, "the network's bins over the plane")
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.hidden {
        1024 => run(ThreeBlobs1024::new(), &args),
        32 => run(ThreeBlobs32::new(), &args),
        h => Err(format!("expected --hidden 1024 or 32 (the networks compiled into this example), found {h}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
