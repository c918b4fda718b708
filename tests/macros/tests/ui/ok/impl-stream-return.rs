use futures_core::Stream;
use ops_core::traced;
use std::pin::Pin;
use std::task::{Context, Poll};

struct Count(u8, u8);

impl Stream for Count {
    type Item = u8;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u8>> {
        self.0 += 1;
        Poll::Ready((self.0 <= self.1).then_some(self.0))
    }
}

#[traced(kind = "generation")]
fn numbers(up_to: u8) -> impl Stream<Item = u8> + Send {
    Count(0, up_to)
}

#[traced(capture_output = false)]
fn quiet(up_to: u8) -> impl Stream<Item = u8> {
    Count(0, up_to)
}

#[traced]
fn boxed(up_to: u8) -> Pin<Box<dyn Stream<Item = u8> + Send>> {
    if up_to == 0 {
        return Box::pin(Count(0, 0));
    }
    Box::pin(Count(0, up_to))
}

fn assert_stream<S: Stream<Item = u8> + Send>(_: S) {}

fn main() {
    assert_stream(numbers(3));
    let _ = quiet(2);
    assert_stream(boxed(2));
}
