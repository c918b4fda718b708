use ops_core::traced;
use std::future::Future;

#[traced]
fn later(n: u8) -> impl Future<Output = u8> + Send {
    let doubled = n * 2;
    async move { doubled }
}

#[traced]
fn later_result(n: u8) -> impl Future<Output = Result<u8, std::io::Error>> {
    async move { Ok(n) }
}

#[tokio::main]
async fn main() {
    assert_eq!(later(2).await, 4);
    assert_eq!(later_result(1).await.unwrap(), 1);
}
