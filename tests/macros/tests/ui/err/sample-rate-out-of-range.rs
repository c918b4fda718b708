#[ops_core::traced(sample_rate = 1.5)]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
