#[ops_core::traced(crate = "ops_core")]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
