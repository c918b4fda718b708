#[ops_core::traced(capture_input = "no")]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
