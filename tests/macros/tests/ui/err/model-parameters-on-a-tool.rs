#[ops_core::traced(kind = "tool", model_parameters(temperature = 0.1))]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
