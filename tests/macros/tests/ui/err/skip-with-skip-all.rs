#[ops_core::traced(skip(a), skip_all)]
fn f(a: u8) {
    let _ = a;
}

fn main() {}
