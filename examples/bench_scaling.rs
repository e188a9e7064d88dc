//! How the HistFactory inference scales with the model: workspaces shaped like a real analysis
//! (tests/support/workspaces.rs: channels of 12 bins, three backgrounds with staterror and the
//! luminosity, tens of normsys and histosys) at about 20, 60, 170, 500 and 1000 parameters.
//! Per size: the whole `neos cls` and `neos upper-limit` processes (wall time and peak memory,
//! medians), and in-process one fit of the observed data and one Newton iteration
//! (value, gradient and Hessian of −ln L, then the step).
//!
//! ```text
//! cargo build --release --bin neos
//! cargo run --release --example bench_scaling -- [--runs N] [--largest P] [--limits-up-to P]
//! ```

#[path = "../tests/support/workspaces.rs"]
mod workspaces;

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use neos::ir::histfactory::{HistoSysCode, NormSysCode, Workspace};
use neos::ir::{eval, Bindings, Builder, NodeId};
use neos_runtime::histfactory::{FitBuffers, NllObjective};
use neos_runtime::{minimize, FitOptions, Objective};
use support::{arg, median_seconds};

/// (channels, bins, systematics): 2 + 2·systematics + channels·bins parameters.
const SIZES: [(usize, usize, usize); 5] = [(1, 10, 4), (3, 12, 11), (10, 12, 24), (36, 12, 33), (78, 12, 31)];

/// Runs `neos` with `args` and returns its wall time in seconds and peak resident memory in MB.
fn process(neos: &Path, args: &[&str]) -> Result<(f64, f64), String> {
    let start = Instant::now();
    let child = Command::new(neos)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("running {}: {e}", neos.display()))?;
    // wait4 rather than Child::wait, for the child's own resource usage.
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value of the plain C struct wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our unwaited child, and the pointers are to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    if pid < 0 || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("neos {args:?} failed (status {status})"));
    }
    // ru_maxrss is in kilobytes on Linux.
    Ok((seconds, usage.ru_maxrss as f64 / 1024.0))
}

/// The median of `runs` runs of a process: (seconds, MB).
fn median_process(neos: &Path, args: &[&str], runs: usize) -> Result<(f64, f64), String> {
    let mut samples = (0..runs.max(1)).map(|_| process(neos, args)).collect::<Result<Vec<_>, _>>()?;
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let memory = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    Ok((samples[samples.len() / 2].0, memory))
}

/// One fit of the observed data in-process: its time, iterations, and the time of one
/// evaluation of value, gradient and Hessian.
fn fit_timing(path: &Path, runs: usize) -> Result<(f64, usize, f64), Box<dyn std::error::Error>> {
    let ws = Workspace::from_json(&std::fs::read_to_string(path)?)?;
    let b = Builder::new();
    let model = ws.model(&b, ws.measurement(None)?, NormSysCode::Code4, HistoSysCode::Code4p)?;
    let lik = model.likelihood().clone();
    let mut ids: Vec<NodeId> = model.operands().iter().map(|t| t.id()).collect();
    ids.push(model.auxdata()?.id());
    let mut data = ws.observed_main(&model.channels())?;
    let mut options = FitOptions::new(model.len());
    options.bounds = model.suggested_bounds();
    options.fixed = model.suggested_fixed();
    let init = model.suggested_init();
    drop(model);
    let values = eval(&b.finish()?, &Bindings::new(), &ids)?;
    let values: Vec<Vec<f64>> = values.iter().map(|v| v.iter().copied().collect()).collect();
    let (aux, operands) = values.split_last().ok_or("expected the auxiliary data")?;
    data.extend(aux);
    let operands: Vec<&[f64]> = operands.iter().map(Vec::as_slice).collect();
    let mut buffers = FitBuffers::new(&lik);
    let mut iterations = 0;
    let t_fit = median_seconds(runs, || {
        let mut objective = NllObjective::new(&lik, &mut buffers, &operands, &data).expect("the objective");
        iterations = minimize(&mut objective, &init, &options).iterations;
    });
    let mut objective = NllObjective::new(&lik, &mut buffers, &operands, &data)?;
    let p = init.len();
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    let t_eval = median_seconds(runs * 5, || {
        objective.evaluate(&init, &mut g, &mut h).expect("an evaluation");
    });
    Ok((t_fit, iterations, t_eval))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = arg("--runs", 5)?;
    let largest = arg("--largest", 1000)?;
    let limits_up_to = arg("--limits-up-to", 200)?;
    let exe = std::env::current_exe()?;
    let neos: PathBuf =
        exe.parent().and_then(Path::parent).map(|d| d.join("neos")).ok_or("expected target/*/examples")?;
    if !neos.exists() {
        return Err(format!(
            "expected the neos binary at {}: run `cargo build --release --bin neos` first",
            neos.display()
        )
        .into());
    }
    let dir = std::env::temp_dir().join(format!("neos-bench-scaling-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!("P = parameters; medians of {runs} runs; memory = peak resident set of the process");
    println!(
        "{:>5} {:>8} | {:>12} {:>8} | {:>14} {:>8} | {:>10} {:>5} {:>14}",
        "P", "bins", "neos cls", "MB", "neos upper-lim", "MB", "one fit", "iter", "value+grad+H"
    );
    for (channels, bins, systematics) in SIZES {
        let p = 2 + 2 * systematics + channels * bins;
        if p > largest {
            continue;
        }
        let path = dir.join(format!("analysis_{p}.json"));
        let ws = workspaces::analysis_workspace(channels, bins, systematics, 7);
        std::fs::write(&path, serde_json::to_string(&ws)?)?;
        let file = path.to_str().ok_or("a temporary path that is not UTF-8")?;
        let (t_cls, mb_cls) = median_process(&neos, &["cls", file], runs)?;
        let limit = if p <= limits_up_to {
            let (t, mb) = median_process(&neos, &["upper-limit", file], runs.min(3))?;
            format!("{:>12.3} s {mb:>8.1}", t)
        } else {
            format!("{:>14} {:>8}", "-", "-")
        };
        let (t_fit, iterations, t_eval) = fit_timing(&path, runs)?;
        println!(
            "{p:>5} {:>8} | {t_cls:>10.3} s {mb_cls:>8.1} | {limit} | {:>8.1} ms {iterations:>5} {:>11.3} ms",
            channels * bins,
            t_fit * 1e3,
            t_eval * 1e3
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
