//! Generates the code of every test graph of `src/cases.rs` into `$OUT_DIR/generated.rs`, one
//! module per graph, which `src/lib.rs` compiles with warnings denied.

// The build script only needs the graphs, not the data ranges the tests draw from.
#[allow(dead_code)]
#[path = "src/cases.rs"]
mod cases;

fn main() {
    println!("cargo::rerun-if-changed=src/cases.rs");
    let mut code = String::new();
    for case in cases::all() {
        let items = match neos_ir::codegen::emit(&case.graph, &case.entries) {
            Ok(items) => items,
            Err(e) => panic!("case `{}`: {e}", case.name),
        };
        code.push_str(&format!(
            "/// The generated program of case `{}`.\npub mod {} {{\n{}\n}}\n",
            case.name, case.name, items
        ));
    }
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("generated.rs");
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
