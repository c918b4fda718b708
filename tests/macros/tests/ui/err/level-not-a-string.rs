#[ops_core::traced(level = WARNING)]
fn f() {}

fn main() {
    f();
}
