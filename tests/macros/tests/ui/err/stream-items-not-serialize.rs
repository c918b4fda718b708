use futures_core::Stream;

struct Chunk;

#[ops_core::traced]
fn chunks() -> impl Stream<Item = Chunk> {
    struct Empty;
    impl Stream for Empty {
        type Item = Chunk;
        fn poll_next(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Chunk>> {
            std::task::Poll::Ready(None)
        }
    }
    Empty
}

fn main() {}
