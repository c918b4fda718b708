#[ops_core::traced(reduce = ops_core::context::reduce::Collect::default())]
fn f() -> Vec<u8> {
    Vec::new()
}

fn main() {}
