#[ops_core::traced(name = "a", name = "b")]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
