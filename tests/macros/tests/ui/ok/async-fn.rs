use ops_core::traced;

#[traced]
async fn double(n: u64) -> u64 {
    tokio::task::yield_now().await;
    n * 2
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::main]
async fn main() {
    let fut = double(2);
    assert_send(&fut);
    assert_eq!(tokio::spawn(fut).await.unwrap(), 4);
}
