//! trybuild UI tests of `#[traced]`: `ui/ok` must compile (and run), `ui/err` must fail with the
//! `.stderr` next to each file. Run on one toolchain: compiler messages change between releases.
//! Regenerate with `TRYBUILD=overwrite cargo test -p test-macros-ui --test ui`, then review.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/ok/*.rs");
    t.compile_fail("tests/ui/err/*.rs");
}
