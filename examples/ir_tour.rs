//! A tour of the compiler core on the neos network's loss: build a multilayer perceptron with
//! a binary cross-entropy loss, differentiate it symbolically, take a Hessian-vector product,
//! simplify both by equality saturation, check the gradient against finite differences, and
//! print the graphs.
//!
//! ```text
//! cargo run --release --example ir_tour -- [--width W] [--events N] [--dot FILE] [--quiet]
//! ```

use std::process::ExitCode;

use ndarray::{ArrayD, IxDyn};
use neos::ir::{
    eval_outputs, grad_in, gradcheck, hvp, print, simplify, to_dot, Bindings, Builder, DType, Dim, GradCheck, Graph,
    Shape, SimplifyLimits, Tensor, EVENTS,
};

struct Options {
    width: usize,
    events: usize,
    dot: Option<String>,
    quiet: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options { width: 16, events: 64, dot: None, quiet: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} expects a value"));
        match arg.as_str() {
            "--width" => o.width = value("--width")?.parse().map_err(|e| format!("--width: {e}"))?,
            "--events" => o.events = value("--events")?.parse().map_err(|e| format!("--events: {e}"))?,
            "--dot" => o.dot = Some(value("--dot")?),
            "--quiet" => o.quiet = true,
            "--help" | "-h" => {
                println!("usage: ir_tour [--width W] [--events N] [--dot FILE] [--quiet]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    if o.width == 0 || o.events == 0 {
        return Err("--width and --events must be positive".into());
    }
    Ok(o)
}

const PARAMS: [&str; 6] = ["w1", "b1", "w2", "b2", "w3", "b3"];

/// The network 2 → W → W → 1 (relu, relu, sigmoid) and the mean binary cross-entropy of
/// signal (label 1) against background (label 0).
fn network_loss(b: &Builder, width: usize) -> Tensor<'_> {
    let x = b.input("x", DType::F64, Shape::new([EVENTS, Dim::Fixed(2)]));
    let y = b.input("label", DType::F64, Shape::new([EVENTS, Dim::Fixed(1)]));
    let w1 = b.param("w1", DType::F64, [2, width]);
    let b1 = b.param("b1", DType::F64, [width]);
    let w2 = b.param("w2", DType::F64, [width, width]);
    let b2 = b.param("b2", DType::F64, [width]);
    let w3 = b.param("w3", DType::F64, [width, 1]);
    let b3 = b.param("b3", DType::F64, [1]);
    let h = (x.matmul(w1) + b1).relu();
    let h = (h.matmul(w2) + b2).relu();
    let p = (h.matmul(w3) + b3).sigmoid();
    (-(y * p.log() + (1.0 - y) * (1.0 - p).log())).mean(&[0, 1])
}

/// Two Gaussian blobs (signal at (−1, 1), background at (1, −1)) from a fixed linear
/// congruential sequence, and small deterministic weights.
fn bindings(width: usize, events: usize) -> Bindings {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut uniform = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut normal = move || (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
    let mut x = Vec::with_capacity(2 * events);
    let mut label = Vec::with_capacity(events);
    for i in 0..events {
        let signal = i % 2 == 0;
        let centre = if signal { [-1.0, 1.0] } else { [1.0, -1.0] };
        x.push(centre[0] + normal());
        x.push(centre[1] + normal());
        label.push(if signal { 1.0 } else { 0.0 });
    }
    let mut weights = |shape: &[usize], fan_in: usize| {
        let n: usize = shape.iter().product();
        let scale = (2.0 / fan_in as f64).sqrt();
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|_| scale * normal()).collect()).expect("sizes match")
    };
    let mut b = Bindings::new();
    b.set("w1", weights(&[2, width], 2));
    b.set("b1", weights(&[width], width) * 0.1);
    b.set("w2", weights(&[width, width], width));
    b.set("b2", weights(&[width], width) * 0.1);
    b.set("w3", weights(&[width, 1], width));
    b.set("b3", weights(&[1], 1) * 0.1);
    b.set("x", ArrayD::from_shape_vec(IxDyn(&[events, 2]), x).expect("sizes match"));
    b.set("label", ArrayD::from_shape_vec(IxDyn(&[events, 1]), label).expect("sizes match"));
    b
}

fn run(o: &Options) -> Result<(), Box<dyn std::error::Error>> {
    // The loss and its gradient with respect to every weight.
    let b = Builder::new();
    let loss = network_loss(&b, o.width);
    let params: Vec<Tensor<'_>> = PARAMS.iter().map(|n| b.leaf(n).expect("declared")).collect();
    let grads = grad_in(&b, loss, &params)?;
    b.output("loss", loss);
    for (n, g) in PARAMS.iter().zip(&grads) {
        b.output(&format!("d_{n}"), *g);
    }
    let gradient: Graph = b.finish()?;

    // The Hessian-vector product along the direction v = the parameters themselves.
    let mut with_hvp = gradient.clone();
    let wrt: Vec<_> = PARAMS.iter().map(|n| with_hvp.find_leaf(n).expect("declared")).collect();
    let loss_id = with_hvp.output("loss").expect("named above");
    let hv = hvp(&mut with_hvp, loss_id, &wrt, &wrt)?;
    for (n, h) in PARAMS.iter().zip(hv) {
        with_hvp.set_output(&format!("hv_{n}"), h)?;
    }

    let limits = SimplifyLimits::default();
    let (gradient_s, report_g) = simplify(&gradient, &limits)?;
    let (_, report_h) = simplify(&with_hvp, &limits)?;

    let data = bindings(o.width, o.events);
    let before = eval_outputs(&gradient, &data)?;
    let after = eval_outputs(&gradient_s, &data)?;
    let worst = before
        .iter()
        .flat_map(|(k, v)| v.iter().zip(after[k].iter()).map(|(a, b)| (a - b).abs() / a.abs().max(1e-300)))
        .fold(0.0_f64, f64::max);

    // Finite differences of the first layer's bias (cheap, and every layer's gradient passes
    // through it).
    let check = gradcheck(&gradient_s, gradient_s.output("loss").expect("kept"), &["b1"], &data, GradCheck::default())?;

    println!("network 2 → {w} → {w} → 1, {} events", o.events, w = o.width);
    println!("loss = {:.6}", before["loss"].sum());
    println!("gradient graph:   {report_g}");
    println!("gradient + H·v:   {report_h}");
    println!("simplified gradient vs raw: largest relative difference {worst:.2e}");
    println!("gradient vs central differences (b1): {check}");
    if !o.quiet {
        println!("\nsimplified gradient graph:\n{}", print(&gradient_s));
    }
    if let Some(path) = &o.dot {
        std::fs::write(path, to_dot(&gradient_s))?;
        println!("wrote {path} (render with `dot -Tsvg {path} -o graph.svg`)");
    }
    if !check.passed() {
        return Err("the symbolic gradient disagrees with finite differences".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse_args().map_err(|e| e.into()).and_then(|o| run(&o));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
