#[ops_core::traced(capture_input = false, skip(a))]
fn f(a: u8) {
    let _ = a;
}

fn main() {}
