//! Writes the seeded workspaces of the differential tests and of the scaling benchmark as pyhf
//! JSON, for pyhf to read (`tests/data/pyhf/make_reference.py`) and for `neos` on the command
//! line.
//!
//! ```text
//! cargo run --example workspaces -- random FIRST LAST DIR       # random_<seed>.json, seeds FIRST..=LAST
//! cargo run --example workspaces -- analysis CHANNELS BINS SYSTEMATICS FILE
//! cargo run --example workspaces -- bimodal FILE                    # a likelihood with two minima
//! ```

#[path = "../tests/support/workspaces.rs"]
mod workspaces;

use std::path::PathBuf;

fn number(args: &[String], i: usize, what: &str) -> Result<u64, String> {
    let text = args.get(i).ok_or_else(|| format!("expected {what}, found nothing"))?;
    text.parse().map_err(|_| format!("expected {what} (a number), found `{text}`"))
}

fn run(args: &[String]) -> Result<(), String> {
    let write = |path: PathBuf, ws: &serde_json::Value| -> Result<(), String> {
        let text = serde_json::to_string_pretty(ws).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    match args.first().map(String::as_str) {
        Some("random") => {
            let (first, last) = (number(args, 1, "the first seed")?, number(args, 2, "the last seed")?);
            let dir = PathBuf::from(args.get(3).ok_or("expected an output directory, found nothing")?);
            std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            for seed in first..=last {
                write(dir.join(format!("random_{seed}.json")), &workspaces::random_workspace(seed))?;
            }
            Ok(())
        }
        Some("analysis") => {
            let channels = number(args, 1, "the number of channels")? as usize;
            let bins = number(args, 2, "the number of bins")? as usize;
            let systematics = number(args, 3, "the number of systematics")? as usize;
            let file = PathBuf::from(args.get(4).ok_or("expected an output file, found nothing")?);
            write(file, &workspaces::analysis_workspace(channels, bins, systematics, 7))
        }
        Some("bimodal") => {
            let file = PathBuf::from(args.get(1).ok_or("expected an output file, found nothing")?);
            write(file, &workspaces::bimodal_workspace())
        }
        other => Err(format!("expected `random`, `analysis` or `bimodal`, found {other:?}")),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
