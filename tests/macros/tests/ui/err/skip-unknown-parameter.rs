#[ops_core::traced(skip(tokn))]
fn f(token: String, url: String) {
    let _ = (token, url);
}

fn main() {}
