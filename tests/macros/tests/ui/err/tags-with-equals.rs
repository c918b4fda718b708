#[ops_core::traced(tags = ["beta"])]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
