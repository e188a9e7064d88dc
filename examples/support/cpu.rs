//! The CPU time of this process, for the benchmark examples of the runtime's kernels. The
//! machine is small and shared, so wall-clock rates fall with every other job that runs; a rate
//! per CPU-second of the benchmark's own threads says what the kernel does with the cores to
//! itself.

/// Seconds that all threads of this process have spent on a CPU so far, from
/// `/proc/self/task/*/schedstat` (nanoseconds); `None` where that does not exist.
pub fn cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

/// The median wall-clock seconds of `runs` calls of `f` (as `support::median_seconds`), and
/// the mean CPU seconds per call when the platform reports them.
pub fn timed(runs: usize, mut f: impl FnMut()) -> (f64, Option<f64>) {
    let before = cpu_seconds();
    let wall = super::support::median_seconds(runs, &mut f);
    let cpu = before.zip(cpu_seconds()).map(|(a, b)| (b - a) / runs.max(1) as f64);
    (wall, cpu)
}
