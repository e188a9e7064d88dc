//! Hostile input against every subcommand of `neos`: a corpus of broken and extreme
//! workspaces generated here (JSON syntax, types, shapes, names, numbers, sizes, paths) and of
//! bad options. Each run must end within a time limit, by itself (no signal, no abort), and
//! either succeed with JSON that holds only finite numbers (no null: a NaN cannot be written
//! in JSON, so it would appear as null), or fail with exactly one line on stderr that starts
//! with `error: ` and nothing on stdout.
//!
//! The corpus is built from a valid two-channel workspace with every modifier type: every
//! value in it is replaced by values of other types and extreme numbers, every object field
//! removed, arrays emptied and lengthened, names duplicated; the text is cut short and
//! corrupted; files are directories, FIFOs, devices, or too large for a fit.

// Test helpers panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "support/json_paths.rs"]
mod json_paths;
use json_paths::{at_mut, paths};

/// The longest a run may take: the largest corpus workspace takes well under a second.
const LIMIT: Duration = Duration::from_secs(20);

fn base() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reference/pyhf_workspaces.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["cases"][0]["workspace"].clone()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("neos-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The mutated workspaces: (label, JSON text).
fn corpus() -> Vec<(String, String)> {
    let good = base();
    let all = paths(&good);
    let replacements = [
        json!(null),
        json!(true),
        json!("x"),
        json!(0),
        json!(-1),
        json!(1e308),
        json!(-1e308),
        json!(5e-324),
        json!([]),
        json!({}),
        json!([1.0, "a"]),
    ];
    let mut out = Vec::new();
    for (n, path) in all.iter().enumerate().skip(1) {
        let label = path.iter().map(|k| k.to_string()).collect::<Vec<_>>().join("/");
        // Every value replaced by one of another kind, in turn (a deterministic sample keeps
        // the corpus a few hundred strong).
        for (r, value) in replacements.iter().enumerate() {
            if (n + r) % 4 != 0 {
                continue;
            }
            let mut ws = good.clone();
            *at_mut(&mut ws, path) = value.clone();
            out.push((format!("{label} = {value}"), ws.to_string()));
        }
        // Fields removed, arrays emptied, doubled and lengthened.
        let (parent, last) = path.split_at(path.len() - 1);
        let mut ws = good.clone();
        match (&last[0], at_mut(&mut ws, parent)) {
            (Value::String(k), Value::Object(map)) => {
                map.remove(k);
                out.push((format!("{label} removed"), ws.to_string()));
            }
            (Value::Number(i), Value::Array(items)) if n % 2 == 0 => {
                let i = i.as_u64().unwrap() as usize;
                let copy = items[i].clone();
                items.push(copy);
                out.push((format!("{label} duplicated"), ws.to_string()));
            }
            _ => {}
        }
        if let Value::Array(items) = at_mut(&mut good.clone(), path) {
            let mut ws = good.clone();
            at_mut(&mut ws, path).as_array_mut().unwrap().clear();
            out.push((format!("{label} emptied"), ws.to_string()));
            if let Some(first) = items.first() {
                let mut ws = good.clone();
                at_mut(&mut ws, path).as_array_mut().unwrap().push(first.clone());
                out.push((format!("{label} lengthened"), ws.to_string()));
            }
        }
    }
    // Numbers that are valid JSON but not valid physics.
    for (label, edit) in [
        ("negative nominal", json!([-60.0, 42.0, 25.0, 9.0])),
        ("zero nominal", json!([0.0, 0.0, 0.0, 0.0])),
        ("huge nominal", json!([1e300, 1e300, 1e300, 1e300])),
        ("tiny nominal", json!([1e-300, 1e-300, 1e-300, 1e-300])),
    ] {
        let mut ws = good.clone();
        ws["channels"][0]["samples"][1]["data"] = edit;
        out.push((label.to_string(), ws.to_string()));
    }
    for (label, edit) in [
        ("negative observation", json!([-1.0, 57.0, 41.0, 16.0])),
        ("huge observation", json!([1e300, 57.0, 41.0, 16.0])),
        ("fractional observation", json!([78.5, 57.25, 41.0, 16.0])),
    ] {
        let mut ws = good.clone();
        ws["observations"][0]["data"] = edit;
        out.push((label.to_string(), ws.to_string()));
    }
    let mut ws = good.clone();
    ws["channels"][0]["samples"][1]["modifiers"][1]["data"] = json!({"hi": 0.0, "lo": -1.0});
    ws["channels"][0]["samples"][1]["modifiers"][1]["type"] = json!("normsys");
    out.push(("normsys factors of zero and below".to_string(), ws.to_string()));
    let mut ws = good.clone();
    ws["channels"][1]["name"] = ws["channels"][0]["name"].clone();
    out.push(("two channels of one name".to_string(), ws.to_string()));
    let mut ws = good.clone();
    ws["channels"][0]["samples"][1]["name"] = ws["channels"][0]["samples"][0]["name"].clone();
    out.push(("two samples of one name".to_string(), ws.to_string()));
    let mut ws = good.clone();
    ws["channels"][0]["name"] = json!("Ω\u{0}\n\"");
    out.push(("a channel name of control characters".to_string(), ws.to_string()));
    // The text itself.
    let text = good.to_string();
    for cut in [0, 1, text.len() / 3, text.len() - 1] {
        out.push((format!("cut at byte {cut}"), text[..cut].to_string()));
    }
    out.push(("deeply nested".to_string(), "[".repeat(100_000)));
    out.push(("not a workspace".to_string(), "[1, 2, 3]".to_string()));
    out.push(("trailing garbage".to_string(), format!("{text} x")));
    out
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `neos` with a time limit.
fn run(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_neos"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        out.read_to_string(&mut o).unwrap();
        err.read_to_string(&mut e).unwrap();
        (o, e)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("neos {args:?} ran longer than {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (stdout, stderr) = reader.join().unwrap();
    Run { code: status.code(), stdout, stderr }
}

fn all_finite(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        Value::Array(items) => items.iter().all(all_finite),
        Value::Object(map) => map.values().all(all_finite),
        Value::Bool(_) | Value::String(_) => true,
    }
}

/// The contract every run keeps; returns whether it succeeded.
fn check(label: &str, args: &[&str]) -> bool {
    let r = run(args);
    let what = format!("{label}: neos {args:?}");
    assert!(!r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"), "{what} panicked: {}", r.stderr);
    match r.code {
        None => panic!("{what} was ended by a signal: {}", r.stderr),
        Some(0) => {
            let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{what} printed no JSON ({e})"));
            assert!(all_finite(&v), "{what} exited 0 with a null or non-finite number: {}", r.stdout);
            true
        }
        Some(1 | 2) => {
            assert!(r.stdout.is_empty(), "{what} failed but printed {}", r.stdout);
            let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.starts_with("warning: ")).collect();
            assert_eq!(lines.len(), 1, "{what}: expected one error line, found {}", r.stderr);
            assert!(lines[0].starts_with("error: "), "{what}: {}", r.stderr);
            false
        }
        Some(code) => panic!("{what} exited with {code}: {}", r.stderr),
    }
}

/// Runs `jobs` on two threads (the machine's cores), counting the successes.
fn run_all(jobs: Vec<(String, Vec<String>)>) -> (usize, usize) {
    let next = AtomicUsize::new(0);
    let ok = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((label, args)) = jobs.get(i) else { break };
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                if check(label, &args) {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (jobs.len(), ok.into_inner())
}

fn write(dir: &Path, i: usize, text: &str) -> String {
    let path = dir.join(format!("ws-{i}.json"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn hostile_workspaces_give_a_value_or_one_clear_error() {
    let dir = scratch();
    let corpus = corpus();
    assert!(corpus.len() >= 250, "expected a corpus of at least 250 workspaces, found {}", corpus.len());
    let mut jobs = Vec::new();
    for (i, (label, text)) in corpus.iter().enumerate() {
        let file = write(&dir, i, text);
        // `cls` and `fit` on every one; the slower limit and p0 on a deterministic third.
        let mut commands = vec!["cls", "fit"];
        if i % 3 == 0 {
            commands.extend(["significance", "upper-limit"]);
        }
        for c in commands {
            jobs.push((label.clone(), vec![c.to_string(), file.clone()]));
        }
    }
    let (runs, ok) = run_all(jobs);
    eprintln!("{} hostile workspaces, {runs} runs: {ok} gave results, {} one-line errors", corpus.len(), runs - ok);
    // The corpus must still contain valid workspaces (extreme but legal numbers), or the
    // test would only exercise the reader.
    assert!(ok > 20, "expected some hostile workspaces to be valid, found {ok}");
}

#[test]
fn hostile_options_and_paths_give_one_clear_error() {
    let dir = scratch();
    let good = write(&dir, 1_000_000, &base().to_string());
    let fifo = dir.join("fifo.json");
    let _ = std::fs::remove_file(&fifo);
    let made_fifo = Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    let fifo = fifo.to_str().unwrap().to_string();
    // A staterror over a million bins: a dense fit would need terabytes.
    let bins = 1_000_000;
    let huge = json!({
        "channels": [{"name": "c", "samples": [
            {"name": "s", "data": vec![1.0; bins], "modifiers": [{"name": "mu", "type": "normfactor", "data": null}]},
            {"name": "b", "data": vec![10.0; bins], "modifiers": [{"name": "stat", "type": "staterror", "data": vec![1.0; bins]}]}
        ]}],
        "observations": [{"name": "c", "data": vec![10.0; bins]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0"
    });
    let huge = write(&dir, 1_000_001, &huge.to_string());
    let dir_path = dir.to_str().unwrap().to_string();
    let mut cases: Vec<Vec<String>> = Vec::new();
    let mut add = |args: &[&str]| cases.push(args.iter().map(|s| s.to_string()).collect());
    for v in ["nan", "inf", "-inf", "1e300", "-1", "20", "abc", "", "0x10"] {
        add(&["cls", &good, "--poi-value", v]);
    }
    for v in ["0", "1", "-0.1", "1.5", "nan", "inf", "x"] {
        add(&["upper-limit", &good, "--cl", v]);
    }
    for v in ["mu", "mu=", "=1", "mu=nan", "mu=inf", "nope=1", "mu=1e400", "staterror_SR[9]=1", "mu=-1"] {
        add(&["fit", &good, "--fix", v]);
    }
    add(&["fit", &good, "--fix", "mu=1", "--fix", "mu=2"]);
    add(&["cls", &good, "--test-stat", "bogus"]);
    add(&["cls", &good, "--measurement", "nope"]);
    add(&["cls", &good, "--normsys-interpcode", "code9"]);
    add(&["cls", &good, "--histosys-interpcode", ""]);
    add(&["cls", &good, "--bogus"]);
    add(&["cls"]);
    add(&["bogus", &good]);
    add(&["cls", "/nonexistent/ws.json"]);
    add(&["cls", &dir_path]);
    add(&["cls", "/dev/null"]);
    add(&["cls", &huge]);
    add(&["fit", &huge]);
    if made_fifo {
        add(&["cls", &fifo]);
    }
    let jobs: Vec<(String, Vec<String>)> = cases.into_iter().map(|a| ("option".to_string(), a)).collect();
    let n = jobs.len();
    let (_, ok) = run_all(jobs);
    assert_eq!(ok, 0, "expected all {n} hostile option runs to be refused");
}
