use futures_core::Stream;

#[ops_core::traced(capture_output = false, reduce = ops_core::context::reduce::Collect::default())]
fn f() -> std::pin::Pin<Box<dyn Stream<Item = u8>>> {
    unimplemented!()
}

fn main() {}
