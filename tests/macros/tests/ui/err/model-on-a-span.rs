#[ops_core::traced(model = "gpt-4o")]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
