//! `neos`: pyhf-like statistical inference on a pyhf JSON workspace, printing one JSON object.
//!
//! ```text
//! neos cls WS.json [--poi-value 1.0] [--test-stat qtilde|q]
//! neos significance WS.json
//! neos fit WS.json [--fix NAME=VALUE]...
//! neos upper-limit WS.json [--cl 0.95]
//! ```
//! Every subcommand takes `--measurement NAME`, `--normsys-interpcode code1|code4` and
//! `--histosys-interpcode code0|code2|code4p` (pyhf's defaults: code4 and code4p).

mod limits;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use ndarray::{Array1, ArrayD};
use neos::ir::histfactory::{HistoSysCode, Measurement, Model, NormSysCode, Workspace};
use neos::ir::inference::{asymptotic_limits, upper_limit, Inference, TestStat, Unconditional};
use neos::ir::{eval, Bindings, Builder, DType, Graph, NodeId, Tensor};
use serde_json::{json, Map, Value};

#[global_allocator]
static ALLOCATOR: limits::ReportingAllocator = limits::ReportingAllocator;

#[derive(Parser, Debug)]
#[command(name = "neos", version, about = "Asymptotic inference on pyhf JSON workspaces, printing JSON")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Common {
    /// The pyhf JSON workspace.
    workspace: PathBuf,
    /// The measurement to use (default: the first).
    #[arg(long)]
    measurement: Option<String>,
    /// Interpolation of normsys modifiers.
    #[arg(long, value_enum, default_value = "code4")]
    normsys_interpcode: NormsysArg,
    /// Interpolation of histosys modifiers.
    #[arg(long, value_enum, default_value = "code4p")]
    histosys_interpcode: HistosysArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum NormsysArg {
    Code1,
    Code4,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum HistosysArg {
    Code0,
    Code2,
    Code4p,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StatArg {
    Qtilde,
    Q,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Observed and expected CLs at one POI value (like `pyhf cls`).
    #[command(allow_negative_numbers = true)]
    Cls {
        #[command(flatten)]
        common: Common,
        /// The POI value to test.
        #[arg(long, default_value_t = 1.0)]
        poi_value: f64,
        /// The test statistic.
        #[arg(long, value_enum, default_value = "qtilde")]
        test_stat: StatArg,
    },
    /// The discovery p-value p0 (q0 at μ = 0), observed and expected, and Z.
    Significance {
        #[command(flatten)]
        common: Common,
    },
    /// The maximum-likelihood fit, with uncertainties from the inverse Hessian.
    #[command(allow_negative_numbers = true)]
    Fit {
        #[command(flatten)]
        common: Common,
        /// Hold a parameter (a name from pyhf's par_names) at a value; repeatable.
        #[arg(long = "fix", value_name = "NAME=VALUE")]
        fix: Vec<String>,
    },
    /// Upper limits on the POI: where observed and expected CLs cross 1 − cl.
    #[command(allow_negative_numbers = true)]
    UpperLimit {
        #[command(flatten)]
        common: Common,
        /// The confidence level.
        #[arg(long, default_value_t = 0.95)]
        cl: f64,
    },
}

/// A workspace, its measurement and the interpolation codes.
struct Loaded {
    ws: Workspace,
    measurement: Measurement,
    normsys: NormSysCode,
    histosys: HistoSysCode,
    /// The workspace's path as messages show it.
    path: String,
    /// The model's POI, read once when the workspace is loaded.
    poi: Option<Poi>,
}

/// A model's parameter of interest: its index in θ, its name and bounds.
struct Poi {
    index: usize,
    name: String,
    bounds: (f64, f64),
}

impl Loaded {
    fn new(c: &Common) -> Result<Self, String> {
        let path = &c.workspace;
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("reading {shown}: {e}"))?;
        // A FIFO or a device would block or never end; a workspace is a file.
        if !meta.is_file() {
            let kind = if meta.is_dir() { "a directory" } else { "not a regular file (a pipe, socket or device)" };
            return Err(format!("reading {shown}: expected a regular file, found {kind}"));
        }
        // Parsed JSON takes up to ~16 times the text's size (a number of a few characters
        // becomes a 32-byte value in an array that may double its capacity).
        limits::check_memory(&format!("reading {shown}"), meta.len().saturating_mul(16))?;
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {shown}: {e}"))?;
        let ws = Workspace::from_json(&text).map_err(|e| format!("{shown}: {e}"))?;
        drop(text);
        let measurement = ws.measurement(c.measurement.as_deref()).map_err(|e| format!("{shown}: {e}"))?.clone();
        let normsys = match c.normsys_interpcode {
            NormsysArg::Code1 => NormSysCode::Code1,
            NormsysArg::Code4 => NormSysCode::Code4,
        };
        let histosys = match c.histosys_interpcode {
            HistosysArg::Code0 => HistoSysCode::Code0,
            HistosysArg::Code2 => HistoSysCode::Code2,
            HistosysArg::Code4p => HistoSysCode::Code4p,
        };
        let mut loaded = Loaded { ws, measurement, normsys, histosys, path: shown.to_string(), poi: None };
        let b = Builder::new();
        let model = loaded.model(&b)?;
        loaded.poi = model.poi_index.map(|index| Poi {
            index,
            name: model.par_names()[index].clone(),
            bounds: model.suggested_bounds()[index],
        });
        limits::check_memory(
            &format!("{shown}: a fit of the model's {} parameters and {} bins", model.len(), model.n_main()),
            model.likelihood().fit_bytes(),
        )?;
        // pyhf ignores settings of parameters the model lacks (exports from ROOT always
        // configure `lumi`); say so once.
        for (at, message) in model.ignored_configs() {
            eprintln!("warning: {shown}: {}: {message}", loaded.ws.path(*at));
        }
        drop(model);
        Ok(loaded)
    }

    fn model<'s>(&self, b: &'s Builder) -> Result<Model<'s>, String> {
        self.ws.model(b, &self.measurement, self.normsys, self.histosys).map_err(|e| format!("{}: {e}", self.path))
    }

    /// The POI, or an error for a model without one.
    fn poi(&self) -> Result<&Poi, String> {
        self.poi.as_ref().ok_or_else(|| format!("{}: expected a model with a poi, found none", self.path))
    }

    /// The observed data: main counts in the model's channel order, then the auxiliary data.
    fn data(&self) -> Result<Vec<f64>, String> {
        let b = Builder::new();
        let model = self.model(&b)?;
        let mut data = self.ws.observed_main(&model.channels()).map_err(err)?;
        let aux = model.auxdata().map_err(err)?.id();
        drop(model);
        let g = b.finish().map_err(err)?;
        data.extend(eval(&g, &Bindings::new(), &[aux]).map_err(err)?[0].iter());
        Ok(data)
    }
}

fn vector(v: &[f64]) -> ArrayD<f64> {
    Array1::from(v.to_vec()).into_dyn()
}

fn scalar(v: &ArrayD<f64>) -> f64 {
    v.iter().next().copied().unwrap_or(f64::NAN)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The inference graph of a workspace: `outputs` adds the nodes to evaluate, given the
/// inference and the observed data (an input named `data`, of `data_len` values). Returns the
/// graph and their ids.
fn inference_graph(
    l: &Loaded,
    data_len: usize,
    outputs: impl for<'b> FnOnce(&Inference<'b>, Tensor<'b>) -> neos::ir::Result<Vec<NodeId>>,
) -> Result<(Graph, Vec<NodeId>), String> {
    let b = Builder::new();
    let ids = {
        let inference = Inference::new(l.model(&b)?).map_err(err)?;
        let d = b.input("data", DType::F64, [data_len]);
        outputs(&inference, d).map_err(err)?
    };
    Ok((b.finish().map_err(err)?, ids))
}

fn run(cli: Cli) -> Result<Value, String> {
    match cli.command {
        Command::Cls { common, poi_value, test_stat } => {
            let stat = match test_stat {
                StatArg::Qtilde => TestStat::QTilde,
                StatArg::Q => TestStat::Q,
            };
            let l = Loaded::new(&common)?;
            let Poi { name, bounds: (lo, hi), .. } = l.poi()?;
            let (lo, hi) = (*lo, *hi);
            if !(lo <= poi_value && poi_value <= hi) {
                return Err(format!(
                    "--poi-value: expected a value of `{name}` within its bounds [{lo}, {hi}], found {poi_value}"
                ));
            }
            let data = l.data()?;
            let (g, ids) = inference_graph(&l, data.len(), |inference, d| {
                let h = inference.hypotest(inference.builder().scalar(poi_value, DType::F64), d, stat)?;
                Ok(std::iter::once(h.cls_obs.id()).chain(h.cls_exp.iter().map(|t| t.id())).collect())
            })?;
            let v = eval(&g, &Bindings::new().with("data", vector(&data)), &ids).map_err(err)?;
            let exp: Vec<f64> = v[1..].iter().map(scalar).collect();
            Ok(json!({"CLs_obs": scalar(&v[0]), "CLs_exp": exp}))
        }
        Command::Significance { common } => {
            let l = Loaded::new(&common)?;
            let data = l.data()?;
            let (g, ids) = inference_graph(&l, data.len(), |inference, d| {
                let s = inference.significance(d)?;
                Ok([s.p0_obs.id(), s.z_obs.id()].into_iter().chain(s.p0_exp.iter().map(|t| t.id())).collect())
            })?;
            let v = eval(&g, &Bindings::new().with("data", vector(&data)), &ids).map_err(err)?;
            let exp: Vec<f64> = v[2..].iter().map(scalar).collect();
            Ok(json!({"p0_obs": scalar(&v[0]), "p0_exp": exp, "Z_obs": scalar(&v[1])}))
        }
        Command::UpperLimit { common, cl } => upper_limit_command(&Loaded::new(&common)?, cl),
        Command::Fit { common, fix } => fit_command(&Loaded::new(&common)?, &fix),
    }
}

/// Upper limits on the POI: the fits that do not depend on the tested μ (the free fits to the
/// data and to the Asimov data) are made once, each tested μ adds its two fixed-μ fits, and the
/// root finding starts from the asymptotic formulae's limits.
fn upper_limit_command(l: &Loaded, cl: f64) -> Result<Value, String> {
    if !(cl > 0.0 && cl < 1.0) {
        return Err(format!("--cl: expected a confidence level between 0 and 1, found {cl}"));
    }
    let (poi, max_mu) = l.poi().map(|p| (p.index, p.bounds.1))?;
    // The μ-independent fits.
    let data = l.data()?;
    let (g, ids) = inference_graph(l, data.len(), |inference, d| {
        let u = inference.unconditional(d)?;
        Ok(vec![u.free.id(), u.asimov.id(), u.asimov_free.id()])
    })?;
    let v = eval(&g, &Bindings::new().with("data", vector(&data)), &ids).map_err(err)?;
    let (free, asimov, asimov_free) = (v[0].clone(), v[1].clone(), v[2].clone());
    let mu_hat = free.iter().nth(poi).copied().unwrap_or(f64::NAN);
    // Each tested μ, given them as inputs.
    let (g, ids) = inference_graph(l, data.len(), |inference, d| {
        let b = inference.builder();
        let p = inference.model().len();
        let u = Unconditional {
            free: b.input("free", DType::F64, [p]),
            asimov: b.input("asimov", DType::F64, [d.shape().fixed_numel()]),
            asimov_free: b.input("asimov_free", DType::F64, [p]),
        };
        let h = inference.hypotest_given(b.knob("mu", DType::F64, 1.0), d, &u, TestStat::QTilde)?;
        Ok(std::iter::once(h.cls_obs.id()).chain(h.cls_exp.iter().map(|t| t.id())).chain([h.q_asimov.id()]).collect())
    })?;
    let bindings = Bindings::new()
        .with("data", vector(&data))
        .with("free", free)
        .with("asimov", asimov)
        .with("asimov_free", asimov_free);
    let test = |mu: f64| -> neos::ir::Result<Vec<f64>> {
        let v = eval(&g, &bindings.clone().with("mu", ndarray::arr0(mu).into_dyn()), &ids)?;
        Ok(v.iter().map(scalar).collect())
    };
    // σ_μ from the Asimov test statistic at a μ inside the bounds: q_A = (μ/σ)².
    let mu0 = 1.0f64.min(max_mu);
    let q_asimov = test(mu0).map_err(err)?[6];
    let start = (q_asimov > 0.0).then(|| asymptotic_limits(mu_hat, mu0 / q_asimov.sqrt(), cl));
    let cls_at = |mu: f64| {
        let v = test(mu)?;
        Ok([v[0], v[1], v[2], v[3], v[4], v[5]])
    };
    let limit = upper_limit(cls_at, cl, max_mu, start).map_err(err)?;
    Ok(json!({"obs": limit.obs, "exp": limit.exp}))
}

/// The maximum-likelihood fit, reported by parameter name, with uncertainties from the
/// inverse Hessian and the solver's own verdict on convergence.
fn fit_command(l: &Loaded, fix: &[String]) -> Result<Value, String> {
    let data = l.data()?;
    let b = Builder::new();
    let model = l.model(&b)?;
    let names = model.par_names();
    let (mut init, bounds, mut fixed) = (model.suggested_init(), model.suggested_bounds(), model.suggested_fixed());
    let mut given: Vec<&str> = Vec::new();
    for f in fix {
        let (name, value) = f.split_once('=').ok_or_else(|| format!("--fix: expected NAME=VALUE, found `{f}`"))?;
        let i = names.iter().position(|n| n == name).ok_or_else(|| {
            format!("--fix: expected one of the model's parameters ({}), found `{name}`", names.join(", "))
        })?;
        if given.contains(&name) {
            return Err(format!("--fix: expected each parameter once, found `{name}` a second time"));
        }
        given.push(name);
        let v: f64 = value.parse().map_err(|_| format!("--fix {name}: expected a number, found `{value}`"))?;
        if !(bounds[i].0 <= v && v <= bounds[i].1) {
            return Err(format!("--fix {name}: expected a value within [{}, {}], found {v}", bounds[i].0, bounds[i].1));
        }
        init[i] = v;
        fixed[i] = true;
    }
    // The runtime's fit on the model's histograms, for its whole result (value, Hessian, why it
    // stopped), which the graph's fit node reduces to the parameters.
    let likelihood = model.likelihood().clone();
    let ids: Vec<NodeId> = model.operands().iter().map(|t| t.id()).collect();
    drop(model);
    let values = eval(&b.finish().map_err(err)?, &Bindings::new(), &ids).map_err(err)?;
    let operands: Vec<Vec<f64>> = values.iter().map(|v| v.iter().copied().collect()).collect();
    let operands: Vec<&[f64]> = operands.iter().map(Vec::as_slice).collect();
    let plan = neos_runtime::FitPlan {
        options: neos_runtime::FitOptions { bounds, fixed: fixed.clone(), ..neos_runtime::FitOptions::new(init.len()) },
        restarts: true,
        require_convergence: false,
        also_from: None,
    };
    let mut buffers = neos_runtime::histfactory::FitBuffers::new(&likelihood);
    let r = neos_runtime::histfactory::fit(&likelihood, &mut buffers, &init, &operands, &data, &plan)?;
    let named = |values: &[f64]| {
        Value::Object(names.iter().cloned().zip(values.iter().map(|v| json!(v))).collect::<Map<_, _>>())
    };
    let mut out = json!({
        "bestfit": named(&r.x),
        "twice_nll": 2.0 * r.value,
        "converged": r.converged(),
    });
    match uncertainties(&r.hessian, &fixed) {
        Ok(sigma) => out["uncertainties"] = named(&sigma),
        Err(why) => {
            // The best fit stands; only its uncertainties are undefined (a parameter the data
            // and constraints leave flat, or one held at a bound).
            let message = format!("no uncertainties: {why}");
            eprintln!("warning: {message}");
            out["warning"] = json!(message);
        }
    }
    Ok(out)
}

/// The square roots of the diagonal of the inverse Hessian over the free parameters (fixed
/// ones get 0), or why there are none: a singular or non-positive Hessian.
fn uncertainties(hessian: &[f64], fixed: &[bool]) -> Result<Vec<f64>, String> {
    let n = fixed.len();
    let free: Vec<usize> = (0..n).filter(|&i| !fixed[i]).collect();
    let block: Vec<f64> =
        free.iter().flat_map(|&i| free.iter().map(move |&j| (i, j))).map(|(i, j)| hessian[i * n + j]).collect();
    let inverse = neos_runtime::inverse(&block, free.len())
        .map_err(|e| format!("the Hessian at the best fit cannot be inverted ({e})"))?;
    let mut sigma = vec![0.0; n];
    for (a, &i) in free.iter().enumerate() {
        let variance = inverse[a * free.len() + a];
        if !(variance.is_finite() && variance >= 0.0) {
            return Err(format!("the inverse Hessian at the best fit gives a variance of {variance} at index {i}"));
        }
        sigma[i] = variance.sqrt();
    }
    Ok(sigma)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
                // One line, as every other error of this command: clap's first line names the
                // argument and the problem; its usage and hint lines follow in `--help`.
                _ => {
                    let text = e.to_string();
                    let head: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
                    eprintln!("{} (see `neos --help`)", head.join(" "));
                    ExitCode::from(2)
                }
            };
        }
    };
    match run(cli) {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.replace('\n', "; "));
            ExitCode::FAILURE
        }
    }
}
