//! What the blob examples share: Gaussian blobs on a seeded stream, the run's summary, the grid
//! over the plane the network's output is drawn on, and the run's three figures.

use std::path::Path;

use ndarray::Array2;
use neos::plot::{self, Animation, Figure, Frame, HeatMap, PlotError, Scatter, Stack};
use neos::train::{self, Analysis, RunLog, StepRecord, TrainConfig};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// `n` points of a unit-covariance Gaussian around `centre` (Box–Muller on a seeded stream).
pub fn blob(centre: [f64; 2], n: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    Array2::from_shape_fn((n, 2), |_| 0.0).mapv(|_| {
        let (u, v): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }) + ndarray::arr1(&centre)
}

/// Prints the first and last values of `metrics`, the best step and the median times.
pub fn summary(log: &RunLog, metrics: &[&str]) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let step = median(log.records.iter().map(|r| r.seconds).collect());
    let eval = median(log.records.iter().map(|r| r.eval_seconds).collect());
    if let (Some(first), Some(last)) = (log.records.first(), log.records.last()) {
        let m = |r: &StepRecord, n: &str| r.value(n).unwrap_or(f64::NAN);
        println!("summary over {} steps (test set):", log.records.len());
        for name in metrics {
            println!("  {name:<10} first {:>10.4e}  last {:>10.4e}", m(first, name), m(last, name));
        }
        if let Some(best) = &log.best {
            println!("  best {} {:.4e} at step {}", best.metric, best.value, best.step);
        }
        println!("  median time per step: {:.3} s training update, {:.3} s test metrics", step, eval);
    }
}

/// The centres of an `n` × `n` grid over the square [`lo`, `hi`]², row by row from the bottom,
/// as `[n², 2]` points.
pub fn plane(n: usize, lo: f64, hi: f64) -> Array2<f64> {
    Array2::from_shape_fn((n * n, 2), |(k, d)| {
        let (i, j) = (k / n, k % n);
        let c = if d == 0 { j } else { i };
        lo + (hi - lo) * (c as f64 + 0.5) / n as f64
    })
}

/// What the figures and the animation show of a network at one point of training.
pub trait Picture {
    /// Calls `draw` with the bins' edges and the held-out yields stacked.
    fn stack<R>(&self, draw: impl FnOnce(&[f64], Stack<'_>) -> R) -> R;
    /// The network over the plane.
    fn heat_map(&self) -> HeatMap<'_>;
}

/// How the run is shown: the pictures of the network, the samples scattered over the plane, and
/// what the histograms' axis is (`binned`).
pub struct Show<'a, F> {
    pub picture: F,
    pub scatter: &'a [Scatter<'a>],
    pub binned: &'a str,
}

/// Trains `analysis` (or, with `resume`, continues the run in `config.out_dir`), printing
/// `line` of every step. With `gif = Some((path, every))` it also records the training as an
/// animated GIF: a frame every `every` steps (by default about 60 in all) and of the first and
/// last, each the picture `show` takes of the parameters after the step, with the test
/// `metric`'s curve so far. A frame that cannot be drawn does not stop the training; the first
/// such failure is the result once the run is over.
#[allow(clippy::too_many_arguments)]
pub fn train_animated<A: Analysis, P: Picture>(
    analysis: &mut A,
    data: &[Array2<f64>],
    config: &TrainConfig,
    resume: bool,
    gif: Option<(&Path, Option<usize>)>,
    metric: &str,
    line: impl Fn(&StepRecord) -> String,
    mut show: Show<'_, impl FnMut(&[f64]) -> Result<P, String>>,
) -> Result<RunLog, String> {
    let mut recorder = gif.map(|(path, every)| Recorder::new(path, config.steps, every)).transpose()?;
    let mut observe = |r: &StepRecord, params: &[f64]| {
        if let Some(recorder) = recorder.as_mut() {
            recorder.step(r, metric, |animation, curve| {
                let picture = (show.picture)(params)?;
                let scatter = reborrow(show.scatter);
                picture
                    .stack(|edges, stack| {
                        animation.frame(&Frame {
                            step: r.step,
                            map: picture.heat_map(),
                            scatter: &scatter,
                            edges,
                            binned: show.binned,
                            stack,
                            metric,
                            curve,
                        })
                    })
                    .map_err(|e| e.to_string())
            });
        }
        Some(line(r))
    };
    let log = match (resume, &config.out_dir) {
        (true, Some(dir)) => train::resume_with(analysis, data, config, &dir.join("checkpoint.json"), &mut observe),
        (true, None) => return Err("expected an output folder holding the run to resume, found none".into()),
        (false, _) => train::train_with(analysis, data, config, &mut observe),
    }
    .map_err(|e| e.to_string())?;
    match recorder.and_then(|r| r.failure) {
        Some(e) => Err(format!("the animation: {e}")),
        None => Ok(log),
    }
}

/// The training animation's bookkeeping: the metric's curve so far and which steps get a frame.
struct Recorder {
    animation: Animation,
    /// A frame every `every` steps, and of the first and last steps.
    every: usize,
    last: usize,
    curve: Vec<(usize, f64)>,
    /// The first frame that could not be drawn; training goes on, and the run reports it.
    failure: Option<String>,
}

impl Recorder {
    /// A GIF at `path` of 600 × 480 panels, 150 ms a frame, with at most about 60 frames over
    /// `steps` steps unless `every` says otherwise.
    fn new(path: &Path, steps: usize, every: Option<usize>) -> Result<Self, String> {
        let animation = Animation::new(path, (600, 480), 150).map_err(|e| e.to_string())?;
        let every = every.unwrap_or(steps.div_ceil(60)).max(1);
        Ok(Recorder { animation, every, last: steps, curve: Vec::new(), failure: None })
    }

    /// Notes step `r`'s value of `metric` and, when the step gets a frame, draws it with
    /// `frame` (given the animation and the curve so far).
    fn step(
        &mut self,
        r: &StepRecord,
        metric: &str,
        frame: impl FnOnce(&mut Animation, &[(usize, f64)]) -> Result<(), String>,
    ) {
        if let Some(v) = r.value(metric) {
            self.curve.push((r.step, v));
        }
        let due = r.step == 1 || r.step % self.every == 0 || r.step == self.last;
        if due && self.failure.is_none() {
            self.failure = frame(&mut self.animation, &self.curve).err();
        }
    }
}

/// The run's figures in `out`: the metric curves (metrics.png, titled after the example's
/// `name`), the picture's held-out yields (histograms.png) and the network over the plane with
/// the samples on it (network.png, titled `heat_title`); then says where they went.
pub fn write_figures<P: Picture>(
    out: &Path,
    log: &RunLog,
    name: &str,
    show: &Show<'_, P>,
    heat_title: &str,
) -> Result<(), String> {
    let err = |e: PlotError| e.to_string();
    let title = format!("{name}: training loss and test-set metrics");
    plot::metric_curves(log, &out.join("metrics.png"), &Figure::new(&title, "step", "")).map_err(err)?;
    let yields = Figure::new("yields on held-out events", show.binned, "expected events");
    show.picture
        .stack(|edges, stack| plot::stacked(edges, &stack, &out.join("histograms.png"), &yields))
        .map_err(err)?;
    let heat = Figure::new(heat_title, "x1", "x2");
    plot::heat_map(&show.picture.heat_map(), &reborrow(show.scatter), &out.join("network.png"), &heat).map_err(err)?;
    println!(
        "wrote {}, {}, {} and {}",
        out.join("run.json").display(),
        out.join("metrics.png").display(),
        out.join("histograms.png").display(),
        out.join("network.png").display()
    );
    Ok(())
}

/// The samples to scatter, borrowed for as long as a picture of the network: a frame or figure
/// holds both under one lifetime, and ndarray's views do not shorten theirs by themselves.
fn reborrow<'b>(scatter: &'b [Scatter<'_>]) -> Vec<Scatter<'b>> {
    scatter.iter().map(|s| Scatter { label: s.label, points: s.points.view() }).collect()
}
