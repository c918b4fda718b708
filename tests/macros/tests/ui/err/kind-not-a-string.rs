#[ops_core::traced(kind = tool)]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
