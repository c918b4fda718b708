#[ops_core::traced(parent = 42)]
fn f() {}

fn main() {}
