//! Traced streams: the observation stays open until the stream ends or is dropped, and its
//! items are reduced to the output.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use pin_project_lite::pin_project;
use serde::Serialize;
use serde_json::Value;

use super::capture::Captured;
use super::span::{ActiveSpan, Span};

/// Turns the items of a traced stream into its observation's output. `#[traced]` uses
/// [`reduce::Collect`] unless given `reduce = ..`.
///
/// The reducer sees each item by reference as it passes, so the stream's consumer still gets
/// every item; its result is serialized on the queue's worker.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot reduce the items of this stream (`{T}`) to an output",
    label = "no reducer for these items",
    note = "the default reducer needs the items to implement `serde::Serialize`; pass `reduce = ops_core::context::reduce::fold(|acc: &mut String, item: &Item| ..)` or add `capture_output = false`"
)]
pub trait StreamReducer<T> {
    /// What the items reduce to.
    type Output: Serialize + Send + Sync + 'static;
    /// Takes in one item.
    fn push(&mut self, item: &T);
    /// The output, once the stream ended or was dropped.
    fn finish(self) -> Self::Output;
}

/// Reducers for [`StreamReducer`].
pub mod reduce {
    use super::*;

    /// The default: items that are all strings are joined into one string (the text of a
    /// streamed completion); anything else becomes a JSON array of the items. Each item is
    /// turned into JSON as it passes.
    pub struct Collect<T: ?Sized> {
        items: Vec<Value>,
        to_json: fn(&T) -> Value,
    }

    impl<T: ?Sized> std::fmt::Debug for Collect<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Collect")
                .field("items", &self.items.len())
                .finish()
        }
    }

    impl<T: CaptureItem + ?Sized> Default for Collect<T> {
        fn default() -> Self {
            Self {
                items: Vec::new(),
                to_json: <T as CaptureItem>::to_json,
            }
        }
    }

    /// The default reducer for items of type `T`.
    pub fn collect<T: CaptureItem + ?Sized>() -> Collect<T> {
        Collect::default()
    }

    /// The bound the default reducer puts on a stream's items.
    #[diagnostic::on_unimplemented(
        message = "the stream's items cannot be captured: `{Self}` does not implement `serde::Serialize`",
        label = "the items of this stream do not implement `serde::Serialize`",
        note = "add `capture_output = false` to `#[traced(...)]`, reduce them with `reduce = ops_core::context::reduce::fold(..)`, or implement (or derive) `serde::Serialize` for `{Self}`"
    )]
    pub trait CaptureItem {
        /// Turns the item into JSON.
        fn to_json(&self) -> Value;
    }

    impl<T: Serialize + ?Sized> CaptureItem for T {
        fn to_json(&self) -> Value {
            Captured::now(self).to_value()
        }
    }

    impl<T> StreamReducer<T> for Collect<T> {
        type Output = Value;

        fn push(&mut self, item: &T) {
            self.items.push((self.to_json)(item));
        }

        fn finish(self) -> Value {
            if !self.items.is_empty() && self.items.iter().all(Value::is_string) {
                Value::String(
                    self.items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<String>(),
                )
            } else {
                Value::Array(self.items)
            }
        }
    }

    /// Records no output (`capture_output = false`).
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Ignore;

    impl<T> StreamReducer<T> for Ignore {
        type Output = ();
        fn push(&mut self, _: &T) {}
        fn finish(self) {}
    }

    /// Folds the items into an accumulator that starts at `A::default()`: built by [`fold`].
    #[derive(Debug, Default)]
    pub struct Fold<A, F> {
        acc: A,
        f: F,
    }

    /// A reducer that folds each item into an accumulator, which becomes the output.
    ///
    /// ```
    /// use ops_core::context::reduce;
    ///
    /// struct Chunk { delta: String }
    ///
    /// #[ops_core::traced(kind = "generation",
    ///     reduce = reduce::fold(|text: &mut String, c: &Chunk| text.push_str(&c.delta)))]
    /// fn stream_answer() -> impl futures_core::Stream<Item = Chunk> {
    ///     # struct Two(u8);
    ///     # impl futures_core::Stream for Two {
    ///     #     type Item = Chunk;
    ///     #     fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>)
    ///     #         -> std::task::Poll<Option<Chunk>> {
    ///     #         self.0 += 1;
    ///     #         std::task::Poll::Ready((self.0 <= 2).then(|| Chunk { delta: "hi".into() }))
    ///     #     }
    ///     # }
    ///     Two(0)
    /// }
    /// # let _ = stream_answer();
    /// ```
    pub fn fold<A, T, F>(f: F) -> Fold<A, F>
    where
        A: Default + Serialize + Send + Sync + 'static,
        F: FnMut(&mut A, &T),
    {
        Fold {
            acc: A::default(),
            f,
        }
    }

    impl<A, T, F> StreamReducer<T> for Fold<A, F>
    where
        A: Serialize + Send + Sync + 'static,
        F: FnMut(&mut A, &T),
    {
        type Output = A;

        fn push(&mut self, item: &T) {
            (self.f)(&mut self.acc, item)
        }

        fn finish(self) -> A {
            self.acc
        }
    }
}

fn reduce_into<T, R: StreamReducer<T>>(reducer: R, span: &mut ActiveSpan) {
    let out = reducer.finish();
    if std::any::TypeId::of::<R::Output>() != std::any::TypeId::of::<()>() {
        span.output(Captured::owned(out));
    }
}

pin_project! {
    /// The stream a traced call returns. See [`StreamReducer`].
    #[must_use = "streams do nothing unless polled"]
    pub struct TracedStream<S, R> {
        #[pin]
        inner: S,
        span: Option<Span>,
        reducer: Option<R>,
        finish: fn(R, &mut ActiveSpan),
        items: u64,
    }

    impl<S, R> PinnedDrop for TracedStream<S, R> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(mut span) = this.span.take() {
                end(&mut span, this.reducer.take(), *this.finish, *this.items);
                span.abandon("cancelled: the stream was dropped before it ended");
            }
        }
    }
}

impl<S, R> std::fmt::Debug for TracedStream<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedStream")
            .field("span", &self.span)
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

fn end<R>(span: &mut Span, reducer: Option<R>, finish: fn(R, &mut ActiveSpan), items: u64) {
    if let Some(a) = span.recording() {
        if let Some(reducer) = reducer {
            finish(reducer, a);
        }
        a.set_metadata("chunks", Value::from(items));
    }
}

/// Builds the stream of a traced call: `make` runs (in the call's context) to create it.
#[inline]
pub fn traced_stream<S, M, R>(span: Option<Span>, make: M, reducer: R) -> TracedStream<S, R>
where
    S: Stream,
    M: FnOnce() -> S,
    R: StreamReducer<S::Item>,
{
    let (inner, span) = match span {
        None => (make(), None),
        Some(mut span) => {
            span.detach();
            (span.run(make), Some(span))
        }
    };
    TracedStream {
        inner,
        span,
        reducer: Some(reducer),
        finish: reduce_into::<S::Item, R>,
        items: 0,
    }
}

impl<S, R> Stream for TracedStream<S, R>
where
    S: Stream,
    R: StreamReducer<S::Item>,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let Some(span) = this.span.as_mut() else {
            return this.inner.poll_next(cx);
        };
        let inner = this.inner;
        let poll = span.run(|| inner.poll_next(cx));
        match &poll {
            Poll::Ready(Some(item)) => {
                if *this.items == 0
                    && let Some(a) = span.recording()
                {
                    a.first_item();
                }
                *this.items += 1;
                if let Some(reducer) = this.reducer.as_mut() {
                    reducer.push(item);
                }
            }
            Poll::Ready(None) => {
                if let Some(mut span) = this.span.take() {
                    end(&mut span, this.reducer.take(), *this.finish, *this.items);
                    span.finish();
                }
            }
            Poll::Pending => {}
        }
        poll
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
