#[ops_core::traced(level = "fatal")]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
