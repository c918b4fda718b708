#[ops_core::traced(metadata(route = "/a", route = "/b"))]
fn f() {}

// The function is still emitted: calling it adds no error.
fn main() {
    f();
}
