//! The expansion names only absolute paths (`::core::..`, `<crate>::__private::..`): it
//! compiles next to modules that shadow `core`, `std`, `serde` and `ops_core`, and inside a
//! module without the prelude.

#![allow(dead_code)]

mod core {}
mod std {}
mod serde {}
mod ops_core {}

mod no_prelude {
    #![no_implicit_prelude]

    pub(crate) struct Count(pub(crate) u32);

    impl ::futures_core::Stream for Count {
        type Item = u32;
        fn poll_next(
            mut self: ::core::pin::Pin<&mut Self>,
            _: &mut ::core::task::Context<'_>,
        ) -> ::core::task::Poll<::core::option::Option<u32>> {
            if self.0 == 0 {
                return ::core::task::Poll::Ready(::core::option::Option::None);
            }
            self.0 -= 1;
            ::core::task::Poll::Ready(::core::option::Option::Some(self.0))
        }
    }

    #[::ops_core::traced(
        kind = "tool",
        metadata(k = 1),
        tags("a"),
        user_id = "u",
        level = "DEBUG"
    )]
    pub(crate) fn sync(a: u32, b: &str) -> ::core::result::Result<u32, ::std::string::String> {
        if b.is_empty() {
            return ::core::result::Result::Err(::std::borrow::ToOwned::to_owned("empty"));
        }
        ::core::result::Result::Ok(a)
    }

    #[::ops_core::traced(kind = "generation", model = "m", model_parameters(t = 0.5))]
    pub(crate) async fn asynchronous(a: u32) -> u32 {
        a
    }

    #[::ops_core::traced]
    pub(crate) fn stream(n: u32) -> impl ::futures_core::Stream<Item = u32> {
        Count(n)
    }

    #[::ops_core::traced(parent = None, sample_rate = 1.0)]
    pub(crate) fn root() -> u8 {
        1
    }

    #[::ops_core::traced]
    pub(crate) fn future() -> impl ::core::future::Future<Output = u8> {
        async { 2 }
    }
}

#[test]
fn the_expansion_needs_no_prelude_and_survives_shadowing() {
    let queue = ::ops_core::TraceQueueManager::builder().build().unwrap();
    let _guard = ::ops_core::set_default(queue.clone());
    assert_eq!(no_prelude::sync(1, "x"), Ok(1));
    assert!(no_prelude::sync(1, "").is_err());
    let runtime = ::tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(no_prelude::asynchronous(3)), 3);
    assert_eq!(runtime.block_on(no_prelude::future()), 2);
    let _ = no_prelude::stream(2);
    assert_eq!(no_prelude::root(), 1);
    // Six roots, each a trace handed to the queue (the stream, dropped unpolled, too).
    assert_eq!(queue.stats().enqueued, 6);
}
