//! How long `neos!` takes to expand the blobs analysis (the paper's 2 → 1024 → 1024 → 1
//! network) and a one-bin counting analysis: parse, validate, lower, differentiate and
//! simplify, then generate code, with the simplifier's report. Medians of a few runs.
//!
//! ```text
//! cargo run --release -p neos-macros --example expansion_time [-- --runs N]
//! ```

// The macro crate's modules, included by path because a proc-macro crate exports nothing else.
#![allow(dead_code)]

#[path = "../src/ast.rs"]
mod ast;
#[path = "../src/expand.rs"]
mod expand;
#[path = "../src/parse.rs"]
mod parse;
#[path = "../src/validate.rs"]
mod validate;

use std::process::ExitCode;
use std::time::Instant;

use proc_macro2::TokenStream;

#[path = "../tests/analyses/mod.rs"]
mod analyses;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = match args.as_slice() {
        [] => 3,
        [flag, n] if flag == "--runs" => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("--runs: expected a positive integer, found `{n}`");
                return ExitCode::FAILURE;
            }
        },
        other => {
            eprintln!("expected no arguments or `--runs N`, found {other:?}");
            return ExitCode::FAILURE;
        }
    };
    let cases: [(&str, TokenStream); 3] = [
        ("blobs (width 1024)", analyses::blobs(1024)),
        ("blobs (width 32)", analyses::blobs(32)),
        ("counting (1 bin)", analyses::counting()),
    ];
    for (name, input) in cases {
        let mut analyse = Vec::new();
        let mut total = Vec::new();
        let mut report = String::new();
        let mut size = 0;
        for _ in 0..runs {
            let start = Instant::now();
            let (_, compiled) = match expand::analyse(input.clone()) {
                Ok(done) => done,
                Err((_, errors)) => {
                    eprintln!("{name}: {}", errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "));
                    return ExitCode::FAILURE;
                }
            };
            analyse.push(start.elapsed().as_secs_f64());
            report = compiled.report.to_string();
            let start = Instant::now();
            let out = expand::expand(input.clone());
            total.push(start.elapsed().as_secs_f64());
            size = out.to_string().len();
        }
        println!(
            "{name}: lower + autodiff + simplify {:.3} s, whole expansion {:.3} s, {} bytes of tokens\n  simplify: {report}",
            median(analyse),
            median(total),
            size
        );
    }
    ExitCode::SUCCESS
}
