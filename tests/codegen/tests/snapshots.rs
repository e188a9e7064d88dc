//! The generated code of a small network's loss and of a one-bin counting experiment's CLs,
//! formatted with prettyplease, as reviewed snapshots: a change in scheduling, fusion or
//! emission shows up here as a diff.

#![allow(clippy::unwrap_used)]

use neos_codegen_tests::cases;

fn generated(name: &str) -> String {
    let case = cases::all().into_iter().find(|c| c.name == name).unwrap();
    let tokens = neos_ir::codegen::emit(&case.graph, &case.entries).unwrap();
    prettyplease::unparse(&syn::parse2(tokens).unwrap())
}

#[test]
fn small_mlp_loss_and_gradient() {
    insta::assert_snapshot!(generated("mlp_f64"));
}

#[test]
fn counting_experiment_cls() {
    insta::assert_snapshot!(generated("counting_cls"));
}

/// The schedule of the network's gradient: how much is fused and how few buffers remain.
#[test]
fn mlp_schedule() {
    let case = cases::all().into_iter().find(|c| c.name == "mlp_f64").unwrap();
    let outputs = ["loss", "g_w1", "g_b1", "g_w2", "g_b2", "g_w3", "g_b3", "g_x"];
    let stats = neos_ir::codegen::schedule_stats(&case.graph, &outputs).unwrap();
    insta::assert_debug_snapshot!(stats);
}
