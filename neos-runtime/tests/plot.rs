#![allow(clippy::unwrap_used)]
//! The figures: each is written as a valid PNG of the requested size that is not blank, and
//! bad input (no data, mismatched lengths, non-finite values, unordered edges) is an error.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use neos_runtime::plot::{
    bin_counts, heat_map, histograms, metric_curves, stacked, Animation, Figure, Frame, HeatMap, Hist, PlotError,
    Scatter, Stack,
};
use neos_runtime::train::{Best, RunLog, RunSettings, RunStatus, SampleInfo, StepRecord, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn out(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("neos-plot");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Decodes the PNG at `path` and checks its size and that it shows something: the signature
/// and IHDR header by hand (width and height are its first two big-endian words), then the
/// pixels through the png crate.
fn check_png(path: &Path, size: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}: not a PNG", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((word(16), word(20)), size, "{}: header size", path.display());

    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), size);
    let channels = info.color_type.samples();
    let mut colours: Vec<&[u8]> = pixels[..info.buffer_size()].chunks(channels).collect();
    colours.sort_unstable();
    colours.dedup();
    // Text, lines and fills give many colours; a blank or failed figure gives one or two.
    assert!(colours.len() > 50, "{}: only {} distinct colours", path.display(), colours.len());
}

fn log_of(steps: usize) -> RunLog {
    let records: Vec<StepRecord> = (1..=steps)
        .map(|step| {
            let t = step as f64;
            StepRecord {
                step,
                loss: 0.3 + 0.7 * (-t / 20.0).exp(),
                metrics: vec![
                    ("cls".into(), 0.02 + 0.3 * (-t / 15.0).exp() + 0.01 * (t * 0.7).sin().abs()),
                    ("discovery".into(), 1e-3 + 0.1 * (-t / 25.0).exp()),
                    ("poi_uncert".into(), 0.4 + 0.5 * (-t / 30.0).exp()),
                ],
                report: vec![("edges".into(), vec![0.0, 0.25 + t * 1e-3, 0.5, 0.75, 1.0])],
                seconds: 0.01,
                eval_seconds: 0.002,
            }
        })
        .collect();
    let best = records
        .iter()
        .min_by(|a, b| a.value("cls").unwrap().total_cmp(&b.value("cls").unwrap()))
        .map(|r| Best { step: r.step, metric: "cls".into(), value: r.value("cls").unwrap() });
    RunLog {
        settings: RunSettings {
            config: TrainConfig::new("cls", "cls"),
            param_count: 10,
            samples: vec![SampleInfo { name: "sig".into(), features: 2, train_events: 750, test_events: 250 }],
            metric_names: vec!["cls".into(), "discovery".into(), "poi_uncert".into()],
            batches_per_epoch: 3,
        },
        status: RunStatus::Completed,
        best,
        records,
        params: Vec::new(),
        best_params: Vec::new(),
    }
}

fn input_error(result: Result<(), PlotError>, expected: &str) {
    match result {
        Err(PlotError::Input(m)) => assert!(m.contains(expected), "{m:?} lacks {expected:?}"),
        other => panic!("expected an input error containing {expected:?}, found {other:?}"),
    }
}

#[test]
fn metric_curves_are_drawn() {
    let path = out("curves.png");
    metric_curves(&log_of(120), &path, &Figure::new("Training of the blobs analysis", "step", "")).unwrap();
    check_png(&path, (1200, 800));
    // A single step and a small figure still make a figure.
    let path = out("curves_one_step.png");
    let figure = Figure { size: (480, 320), ..Figure::new("", "step", "") };
    metric_curves(&log_of(1), &path, &figure).unwrap();
    check_png(&path, (480, 320));
}

#[test]
fn metric_curves_refuse_bad_logs() {
    let path = out("bad_curves.png");
    input_error(
        metric_curves(&log_of(0), &path, &Figure::new("", "step", "")),
        "expected a run log with at least one step",
    );
    let mut log = log_of(5);
    log.records[3].metrics[1].1 = f64::NAN;
    input_error(
        metric_curves(&log, &path, &Figure::new("", "step", "")),
        "expected finite values of discovery, found NaN at step 4",
    );
    let mut log = log_of(5);
    log.records[2].metrics.pop();
    input_error(metric_curves(&log, &path, &Figure::new("", "step", "")), "value of poi_uncert");
    let tiny = Figure { size: (100, 2000), ..Figure::new("", "step", "") };
    input_error(metric_curves(&log_of(5), &path, &tiny), "found 100 × 2000");
    // Greek letters and superscripts draw; subscript digits are not in the font.
    let greek = Figure::new("σμ, CLs and q₀", "step", "");
    input_error(
        metric_curves(&log_of(5), &path, &greek),
        "expected text the plot font can draw in the title, found '₀' (U+2080)",
    );
    metric_curves(&log_of(5), &out("curves_greek.png"), &Figure::new("σ(μ) ≤ 0.5 and χ² ± 1", "step", "")).unwrap();
    assert!(!path.exists());
}

#[test]
fn histograms_are_drawn() {
    let edges = [0.0, 0.2, 0.45, 0.7, 1.0];
    let (s, b, up, down) =
        ([2.0, 3.5, 6.0, 12.5], [40.0, 25.0, 9.0, 3.0], [44.0, 27.0, 10.5, 4.0], [36.0, 23.5, 7.8, 2.2]);
    let hists = [
        Hist { label: "signal", counts: &s },
        Hist { label: "background", counts: &b },
        Hist { label: "background (up)", counts: &up },
        Hist { label: "background (down)", counts: &down },
    ];
    let path = out("hists.png");
    histograms(&edges, &hists, &path, &Figure::new("Yields after training", "network output", "events")).unwrap();
    check_png(&path, (1200, 800));
}

/// Stacks on a linear scale and, when the yields span more than two decades, on a log one.
#[test]
fn stacks_are_drawn() {
    let edges = [0.0, 0.2, 0.45, 0.7, 1.0];
    let fig = Figure::new("Yields after training", "network output", "expected events");
    for (name, b) in [("stack_linear.png", [40.0, 25.0, 9.0, 3.0]), ("stack_log.png", [4000.0, 250.0, 9.0, 0.3])] {
        let (s, stat) = ([2.0, 3.5, 6.0, 12.5], [3.0, 2.0, 1.0, 0.5]);
        let (up, down) = (b.map(|v| 1.1 * v), b.map(|v| 0.9 * v));
        let stack = Stack {
            layers: &[Hist { label: "background", counts: &b }, Hist { label: "signal", counts: &s }],
            band: Some(("MC stat.", &stat)),
            overlays: &[Hist { label: "up", counts: &up }, Hist { label: "down", counts: &down }],
        };
        let path = out(name);
        stacked(&edges, &stack, &path, &fig).unwrap();
        check_png(&path, (1200, 800));
    }
}

#[test]
fn stacks_refuse_bad_input() {
    let path = out("bad_stack.png");
    let fig = Figure::new("", "x", "events");
    let edges = [0.0, 1.0, 2.0];
    let stack = |layers: &[Hist<'_>], band: Option<(&str, &[f64])>| {
        stacked(&edges, &Stack { layers, band, overlays: &[] }, &path, &fig)
    };
    input_error(stack(&[], None), "expected at least one layer to stack, found none");
    input_error(
        stack(&[Hist { label: "b", counts: &[1.0, -2.0] }], None),
        "histogram \"b\": expected yields of at least 0 to stack, found -2 in bin 1",
    );
    input_error(
        stack(&[Hist { label: "b", counts: &[1.0, 2.0] }], Some(("stat", &[1.0]))),
        "histogram \"stat\": expected 2 bin contents, found 1",
    );
    assert!(!path.exists());
}

#[test]
fn histograms_refuse_bad_input() {
    let path = out("bad_hists.png");
    let fig = Figure::new("", "x", "events");
    let two = [1.0, 2.0];
    input_error(
        histograms(&[], &[Hist { label: "a", counts: &two }], &path, &fig),
        "expected at least 2 bin edges, found 0",
    );
    input_error(
        histograms(&[0.0, 1.0, 2.0], &[Hist { label: "a", counts: &[1.0] }], &path, &fig),
        "histogram \"a\": expected 2 bin contents for 3 edges, found 1",
    );
    input_error(
        histograms(&[0.0, 1.0, 2.0], &[Hist { label: "a", counts: &[1.0, f64::NAN] }], &path, &fig),
        "expected finite bin contents, found NaN in bin 1",
    );
    input_error(
        histograms(&[0.0, 1.0, 1.0], &[Hist { label: "a", counts: &two }], &path, &fig),
        "expected strictly increasing bin edges, found 1 then 1 at 1 and 2",
    );
    input_error(
        histograms(&[0.0, f64::NAN], &[Hist { label: "a", counts: &[1.0] }], &path, &fig),
        "expected finite bin edges",
    );
    input_error(histograms(&[0.0, 1.0], &[], &path, &fig), "expected at least one histogram");
    assert!(!path.exists());
}

#[test]
fn bin_counts_follow_numpy() {
    let edges = [0.0, 1.0, 2.0, 4.0];
    // 1.0 opens the second bin, 4.0 closes the last, −0.5 and 4.5 fall outside.
    let counts = bin_counts(&[0.0, 0.5, 1.0, 1.5, 3.9, 4.0, -0.5, 4.5, 2.0], &edges).unwrap();
    assert_eq!(counts, [2.0, 2.0, 3.0]);
    assert!(matches!(bin_counts(&[f64::INFINITY], &edges), Err(PlotError::Input(m)) if m.contains("found inf at 0")));
    assert!(bin_counts(&[1.0], &[0.0]).is_err());
}

/// The neos paper's figure: a network-like output on the plane with four blobs of points.
#[test]
fn heat_map_with_points_is_drawn() {
    let (rows, cols) = (120, 160);
    let extent = [-4.0, 4.0, -3.0, 3.0];
    let values = Array2::from_shape_fn((rows, cols), |(i, j)| {
        let x = -4.0 + 8.0 * (j as f64 + 0.5) / cols as f64;
        let y = -3.0 + 6.0 * (i as f64 + 0.5) / rows as f64;
        1.0 / (1.0 + (-(1.5 * x + y - 0.2 * x * y)).exp())
    });
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut blob = |cx: f64, cy: f64| {
        Array2::from_shape_fn((400, 2), |(_, d)| {
            let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
            let gauss = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            (if d == 0 { cx } else { cy }) + 0.6 * gauss
        })
    };
    let samples = [blob(2.0, 1.5), blob(-1.5, -1.0), blob(-1.0, 1.0), blob(-2.2, -2.0)];
    let labels = ["signal", "background", "background (up)", "background (down)"];
    let scatter: Vec<Scatter<'_>> =
        samples.iter().zip(labels).map(|(p, label)| Scatter { label, points: p.view() }).collect();
    let map = HeatMap { values: values.view(), extent, label: "network output" };
    let path = out("heatmap.png");
    heat_map(&map, &scatter, &path, &Figure::new("Network output over the four blobs", "x1", "x2")).unwrap();
    check_png(&path, (1200, 800));
    // Without points, and on a constant map.
    let flat = Array2::from_elem((3, 4), 0.5);
    let path = out("heatmap_flat.png");
    heat_map(&HeatMap { values: flat.view(), extent, label: "f" }, &[], &path, &Figure::new("", "x", "y")).unwrap();
    check_png(&path, (1200, 800));
}

#[test]
fn heat_map_refuses_bad_input() {
    let path = out("bad_heatmap.png");
    let fig = Figure::new("", "x", "y");
    let good = Array2::from_elem((2, 3), 1.0);
    let empty = Array2::<f64>::zeros((0, 3));
    input_error(
        heat_map(&HeatMap { values: empty.view(), extent: [0.0, 1.0, 0.0, 1.0], label: "f" }, &[], &path, &fig),
        "expected a grid of at least 1 × 1 values, found 0 × 3",
    );
    let mut nan = good.clone();
    nan[[1, 2]] = f64::NAN;
    input_error(
        heat_map(&HeatMap { values: nan.view(), extent: [0.0, 1.0, 0.0, 1.0], label: "f" }, &[], &path, &fig),
        "expected finite grid values, found NaN at row 1, column 2",
    );
    input_error(
        heat_map(&HeatMap { values: good.view(), extent: [1.0, 0.0, 0.0, 1.0], label: "f" }, &[], &path, &fig),
        "expected a finite extent with x_min < x_max",
    );
    let three = Array2::from_elem((4, 3), 0.0);
    let ok = HeatMap { values: good.view(), extent: [0.0, 1.0, 0.0, 1.0], label: "f" };
    input_error(
        heat_map(&ok, &[Scatter { label: "s", points: three.view() }], &path, &fig),
        "points \"s\": expected 2 columns (x, y), found 3",
    );
    let mut bad_points = Array2::from_elem((4, 2), 0.5);
    bad_points[[3, 1]] = f64::INFINITY;
    input_error(
        heat_map(&ok, &[Scatter { label: "s", points: bad_points.view() }], &path, &fig),
        "points \"s\": expected finite coordinates, found inf at row 3, column 1",
    );
    assert!(!path.exists());
}

#[test]
fn animations_are_written_frame_by_frame() {
    let path = out("training.gif");
    let mut animation = Animation::new(&path, (400, 320), 200).unwrap();
    let grid = Array2::from_shape_fn((20, 20), |(i, j)| (i * j) as f64);
    let points = Array2::from_shape_fn((30, 2), |(i, j)| (i as f64 * 0.3 + j as f64) % 5.0);
    let scatter = [Scatter { label: "signal", points: points.view() }];
    let edges = [0.0, 0.5, 1.0];
    let mut curve = Vec::new();
    for step in 1..=3 {
        curve.push((step, 0.1 / step as f64));
        let (b, s) = ([10.0, 3.0 * step as f64], [1.0, 2.0]);
        let frame = Frame {
            step,
            map: HeatMap { values: grid.view(), extent: [0.0, 5.0, 0.0, 5.0], label: "output" },
            scatter: &scatter,
            edges: &edges,
            binned: "network output",
            stack: Stack {
                layers: &[Hist { label: "background", counts: &b }, Hist { label: "signal", counts: &s }],
                band: None,
                overlays: &[],
            },
            metric: "cls",
            curve: &curve,
        };
        animation.frame(&frame).unwrap();
    }
    assert_eq!(animation.frames(), 3);
    drop(animation);
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!((decoder.width(), decoder.height()), (1200, 320));
    let mut frames = 0;
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        // Every frame is drawn, not blank: it holds more than the white background.
        assert!(frame.buffer.chunks(4).any(|p| p[..3] != [255, 255, 255]), "frame {frames} is blank");
        frames += 1;
    }
    assert_eq!(frames, 3);
    assert!(Animation::new(&out("tiny.gif"), (100, 100), 200).is_err());
}
