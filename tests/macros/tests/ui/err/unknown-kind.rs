#[ops_core::traced(kind = "chat")]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
