//! `#[handler]`'s expansions that compile and run, and mistakes that fail
//! with a clear error on the user's own tokens.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
