#[ops_core::traced]
async fn f(n: u32) -> String {
    n + 1
}

fn main() {}
