//! Compile-fail tests of `neos!`: every file under tests/ui/<category>/ is a bad analysis
//! that must fail to compile with exactly the errors of its .stderr beside it. They live in
//! the facade because the expansion refers to `::neos::…`.
//!
//! To update the expected output after a deliberate change: `TRYBUILD=overwrite cargo test
//! --test macro_ui`, then review the .stderr diffs.

#[test]
fn bad_analyses_fail_with_their_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
