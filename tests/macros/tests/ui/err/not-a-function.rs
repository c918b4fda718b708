#[ops_core::traced]
struct Config {
    url: String,
}

fn main() {}
