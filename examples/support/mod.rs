//! Argument parsing and timing shared by the benchmark examples.

use std::time::Instant;

/// The value of `--name N` on the command line, or `default`.
pub fn arg(name: &str, default: usize) -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => {
            args.get(i + 1).ok_or(format!("{name} expects a number"))?.parse().map_err(|e| format!("{name}: {e}"))
        }
        None => Ok(default),
    }
}

/// The median wall-clock time of `runs` calls of `f`, in seconds (the machine is small and
/// noisy, so medians rather than means).
pub fn median_seconds(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}
