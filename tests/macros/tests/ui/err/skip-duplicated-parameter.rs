#[ops_core::traced(skip(a, a))]
fn f(a: u8) {
    let _ = a;
}

fn main() {}
