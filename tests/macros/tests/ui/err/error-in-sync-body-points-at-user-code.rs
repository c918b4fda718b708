#[ops_core::traced]
fn f(n: u32) -> Result<String, std::io::Error> {
    let s: String = n;
    Ok(s)
}

fn main() {}
