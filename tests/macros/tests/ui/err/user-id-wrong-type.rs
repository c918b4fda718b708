#[ops_core::traced(user_id = vec![1, 2])]
fn f() {}

fn main() {}
