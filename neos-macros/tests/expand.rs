//! `expand` without rustc: the blobs analysis and a one-bin counting analysis expand without
//! errors (their prettyplease-formatted expansions are snapshots), and bad input expands to
//! every error at once plus a stub of the analysis type.

// Test helpers panic on failure: that is how a test fails. The modules are the macro crate's
// own, included by path because a proc-macro crate exports nothing else.
#![allow(clippy::unwrap_used, dead_code)]

#[path = "../src/ast.rs"]
mod ast;
#[path = "../src/expand.rs"]
mod expand;
#[path = "../src/parse.rs"]
mod parse;
#[path = "../src/validate.rs"]
mod validate;

use proc_macro2::TokenStream;

mod analyses;

use analyses::{blobs, tokens, BLOBS, COUNTING};

/// The blobs analysis with one piece of text replaced (which must occur).
fn blobs_with(edits: &[(&str, &str)]) -> TokenStream {
    let mut source = BLOBS.replace("WIDTH", "8");
    for (from, to) in edits {
        assert!(source.contains(from), "`{from}` is not in the blobs analysis");
        source = source.replacen(from, to, 1);
    }
    tokens(&source)
}

/// The messages of the `compile_error!`s in an expansion.
fn errors(out: &TokenStream) -> Vec<String> {
    let file: syn::File = syn::parse2(out.clone()).unwrap();
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Macro(m) if m.mac.path.segments.last().is_some_and(|s| s.ident == "compile_error") => {
                let lit: syn::LitStr = m.mac.parse_body().unwrap();
                Some(lit.value())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn good_analyses_compile_to_their_graphs() {
    for (name, input, params) in
        [("blobs", blobs(32), 2 * 32 + 32 + 32 * 32 + 32 + 32 + 1 + 3), ("counting", tokens(COUNTING), 1)]
    {
        let (_, compiled) = expand::analyse(input).map_err(|(_, e)| format!("{name}: {e:?}")).unwrap();
        assert_eq!(compiled.lowered.param_count(), params, "{name}");
        assert!(compiled.simplified.output("loss_discovery").is_some(), "{name}");
    }
}

/// The errors of the blobs analysis after `edits`, checking that the stub is there.
fn check(edits: &[(&str, &str)]) -> Vec<String> {
    let out = expand::expand(blobs_with(edits));
    let file: syn::File = syn::parse2(out.clone()).unwrap();
    let stub = file.items.iter().any(|i| matches!(i, syn::Item::Struct(s) if s.ident == "Blobs"));
    assert!(stub, "no stub `Blobs` in the expansion of {edits:?}");
    errors(&out)
}

#[test]
fn every_error_is_reported_at_once() {
    let found = check(&[
        (
            "histosys correlated_bkg_uncertainty(lo = bdn, hi = bup)",
            "histosis correlated_bkg_uncertainty(lo = bdn, hi = bup)",
        ),
        ("metrics cls,", "metrics clss,"),
        ("let bup = hist(nn(bkg_up)", "let bup = hist(nn(bkg_upp)"),
        ("bandwidth = 0.09", "bandwidth = 0.09 * 2.0"),
    ]);
    assert_eq!(
        found,
        [
            "expected a number literal as the default of knob `bandwidth`, found `0.09 * 2.0`",
            "expected an input, knob, parameter or earlier `let`, found the undefined name `bkg_upp`",
            "expected a modifier type (histosys, lumi, normfactor, normsys, shapefactor, shapesys or staterror), found `histosis`",
            "expected a statistic (cls, discovery, poi_uncert or bce), found `clss`",
        ]
    );
}

#[test]
fn errors_name_what_was_expected_and_found() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("poi mu;", "")], "expected a `poi name;` in the model, found none"),
        (&[("sig: events[2]", "sig: events[3]")], "network `nn`: expected an input of 2 features, found `sig` with 3"),
        (&[("hi = bup)", ")")], "histosys `correlated_bkg_uncertainty`: expected `hi = …` and `lo = …` (the templates at α = ±1), found no `hi`"),
        (&[("let b = hist(nn(bkg_nom), edges, bandwidth,", "let b = hist(nn(bkg_nom), edges,")], "`hist`: expected 3 positional arguments (values, edges, bandwidth), found 2"),
        (&[("let bdn", "let s")], "expected a new name, found `s` declared twice"),
        (&[("bins = 4", "bins = n")], "expected the number of bins (an integer literal), found `n`"),
        (&[("poi mu;", "poi mu; parameter nu { bounds = (0.0, 5.0) }")], "expected a parameter of the model (correlated_bkg_uncertainty, mu), found `nu`"),
        (&[("let s = hist(nn(sig)", "let s = hist(sig")], "hist: expected values of shape [events] (one per event), found [events, 2] (pick a column with `x[i]`)"),
        (&[("cls(mu = 1.0)", "cls(nu = 1.0)")], "cls: expected the poi `mu` as the argument's name, found `nu`"),
        (&[("discovery, poi_uncert, bce", "discovery(1.0), poi_uncert, bce")], "discovery: expected no arguments, found 1"),
        (&[("relu, sigmoid", "relu, sigmod")], "expected an activation (relu, tanh, sigmoid, softplus, identity, softmax), found `sigmod`"),
        (&[("knobs {", "knobz {")], "expected a section (`inputs`, `knobs`, `params`, `let`, `model`, `loss`, `metrics` or `simplify`), found `knobz`"),
    ];
    for (edits, expected) in cases {
        let found = check(edits);
        assert!(found.iter().any(|m| m == expected), "{edits:?}: expected the error {expected:?}, found {found:?}");
    }
}

#[test]
fn splicing_errors_name_the_file_and_what_does_not_fit() {
    let from = r#"model from "../examples/data/existing_analysis.json" {"#;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("model {", r#"model from "no/such/workspace.json" {"#)], "expected a readable pyhf workspace at \"no/such/workspace.json\" (relative to the crate's Cargo.toml), found No such file or directory (os error 2)"),
        (&[("model {", from), ("channel singlechannel {", "channel validation_region {")], "channel `validation_region`, sample `other`: expected 4 bins like the channel's first sample `signal`, found 3"),
        (&[("model {", from), ("poi mu;", r#"measurement "other";"#)], r#""../examples/data/existing_analysis.json": measurements: expected a measurement named `other`, found only `measurement`"#),
        (&[("poi mu;", r#"poi mu; measurement "measurement";"#)], r#"expected `measurement` only in a `model from "workspace.json"`, found it in a model of its own"#),
    ];
    for (edits, expected) in cases {
        let found = check(edits);
        assert!(found.iter().any(|m| m == expected), "{edits:?}: expected the error {expected:?}, found {found:?}");
    }
}

#[test]
fn networks_whose_outputs_are_bins_are_checked() {
    let counts = "let s = counts(nn(sig), scale = 20.0);";
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("relu, sigmoid", "relu, softmax")], "network `nn`: expected 2 or more outputs for `softmax` (its outputs are the bins), found 1"),
        (&[("relu, sigmoid", "softmax, sigmoid")], "network `nn`: expected `softmax` only as the output activation, found it for the hidden layers"),
        (&[("let s = hist(nn(sig), edges, bandwidth, scale = 2.0 * lumi);", counts)], "`counts`: expected a network whose output activation is `softmax` (its outputs are the bins), found `nn` without it (or write `softmax(nn(…))`)"),
        (&[("let s = hist(nn(sig), edges, bandwidth, scale = 2.0 * lumi);", "let s = counts(sig);")], "`counts`: expected a softmax network applied to a sample, like `nn(x)`, or `softmax(…)`, found `sig`"),
        (&[("let bdn = hist(", "let bdn = std(b) + hist(")], "`std`: expected 2 or more values of one shape (histograms of several samples), found 1 argument(s)"),
        (&[("let bdn = hist(", "let bdn = mean(b, edges) + hist(")], "expected values of one shape, like the first's [4], found [5]"),
        (
            &[
                ("edges = bin_edges(", "soft = mlp(2 => 4 => 3, relu, softmax); edges = bin_edges("),
                ("let s = hist(nn(sig), edges, bandwidth, scale = 2.0 * lumi);", "let s = counts(soft(sig), scale = 20.0);"),
            ],
            "channel `singlechannel`, sample `background`: expected 3 bins like the channel's first sample `signal`, found 4",
        ),
    ];
    for (edits, expected) in cases {
        let found = check(edits);
        assert!(found.iter().any(|m| m == expected), "{edits:?}: expected the error {expected:?}, found {found:?}");
    }
}

#[test]
fn a_parse_error_still_gives_the_stub() {
    let found = check(&[("loss cls(mu = 1.0),", "loss cls(mu = 1.0) discovery,")]);
    assert_eq!(found, ["expected `,`"]);
}

/// The expansion as rustfmt-like text.
fn pretty(tokens: TokenStream) -> String {
    prettyplease::unparse(&syn::parse2(tokens).unwrap())
}

#[test]
fn blobs_expansion() {
    insta::assert_snapshot!("blobs", pretty(expand::expand(blobs(1024))));
}

#[test]
fn counting_expansion() {
    insta::assert_snapshot!("counting", pretty(expand::expand(tokens(COUNTING))));
}

#[test]
fn the_ir_of_every_stage_can_be_written_out() {
    let dir = std::env::temp_dir().join(format!("neos-print-ir-{}", std::process::id()));
    let out = expand::expand_printing(tokens(COUNTING), Some(&dir));
    assert!(errors(&out).is_empty());
    let read = |stage: &str| std::fs::read_to_string(dir.join(format!("Counting.{stage}"))).unwrap();
    assert!(read("lowered.ir").contains("= hist "), "the lowered graph has the histogram");
    assert!(read("differentiated.ir").contains("out grad_discovery_cut"), "the gradient is an output");
    let simplified = read("simplified.ir");
    assert!(simplified.starts_with("// ") && simplified.contains("stopped:"), "the report heads the simplified graph");
    assert!(read("report.txt").contains("whole expansion"));
    std::fs::remove_dir_all(&dir).unwrap();
}
