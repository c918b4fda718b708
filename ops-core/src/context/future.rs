//! Carrying the context into futures, tasks and threads, and the future a traced async call
//! runs in.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::current::{Current, ObservationContext, Swap};
use super::span::{ActiveSpan, Span};

pin_project! {
    /// A future or stream that runs in a given context on every poll: the observation that
    /// was current where it was wrapped stays the parent of the traced calls it makes, on
    /// whatever thread polls it. Built by [`TraceFutureExt::in_current_trace`] or
    /// [`ObservationContext::wrap`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithContext<T> {
        #[pin]
        inner: T,
        slot: Current,
    }
}

impl<T> WithContext<T> {
    pub(crate) fn new(inner: T, context: ObservationContext) -> Self {
        Self {
            inner,
            slot: context.current,
        }
    }

    /// The wrapped future or stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _swap = Swap::enter(this.slot);
        this.inner.poll(cx)
    }
}

impl<S: futures_core::Stream> futures_core::Stream for WithContext<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let _swap = Swap::enter(this.slot);
        this.inner.poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// Carries the current observation into a future, so it stays the parent of the traced calls
/// the future makes wherever it is polled. `.await` inside a traced function needs nothing:
/// use this for futures handed to something else (`tokio::spawn`, a `JoinSet`, a channel).
///
/// ```
/// use ops_core::TraceFutureExt;
///
/// #[ops_core::traced]
/// async fn fetch(id: u32) -> u32 { id * 2 }
///
/// #[ops_core::traced]
/// async fn handler() -> u32 {
///     let mut set = tokio::task::JoinSet::new();
///     for id in 0..3 {
///         set.spawn(fetch(id).in_current_trace());
///     }
///     set.join_all().await.into_iter().sum()
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(handler());
/// ```
pub trait TraceFutureExt: Future + Sized {
    /// Runs this future in the context current now.
    fn in_current_trace(self) -> WithContext<Self> {
        WithContext::new(self, ObservationContext::current())
    }

    /// Runs this future in `context`.
    fn in_trace(self, context: &ObservationContext) -> WithContext<Self> {
        WithContext::new(self, context.clone())
    }
}

impl<F: Future> TraceFutureExt for F {}

/// `tokio::spawn`, carrying the current observation into the task, so the traced calls it
/// makes are children of the caller's observation. If the task outlives the trace's root, what
/// it records is delivered as a later part of the same trace when the task ends. Must be
/// called inside a tokio runtime, as `tokio::spawn`.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_trace())
}

/// `tokio::task::spawn_blocking`, carrying the current observation into the closure.
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let context = ObservationContext::current();
    tokio::task::spawn_blocking(move || context.in_scope(f))
}

/// `std::thread::spawn`, carrying the current observation into the thread.
pub fn spawn_thread<F, R>(f: F) -> std::thread::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let context = ObservationContext::current();
    std::thread::spawn(move || context.in_scope(f))
}

/// Boxes and pins a traced future or stream, for functions that return a boxed trait object.
#[inline]
pub fn box_pin<T>(value: T) -> Pin<Box<T>> {
    Box::pin(value)
}

pin_project! {
    /// The future a traced async call runs in: its observation is the current context on
    /// every poll, and ends when the future completes (or is dropped: recorded as cancelled).
    #[must_use = "futures do nothing unless polled"]
    pub struct TracedFuture<F, C> {
        #[pin]
        inner: F,
        span: Option<Span>,
        rec: Option<C>,
    }
}

impl<F, C> std::fmt::Debug for TracedFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedFuture")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

/// Builds the future of a traced call: `make` runs (in the call's context) to create it, and
/// `rec` captures its output when it completes.
#[inline]
pub fn traced_future<F, M, C>(span: Option<Span>, make: M, rec: C) -> TracedFuture<F, C>
where
    F: Future,
    M: FnOnce() -> F,
    C: FnOnce(&F::Output, &mut ActiveSpan),
{
    match span {
        None => TracedFuture {
            inner: make(),
            span: None,
            rec: None,
        },
        Some(mut span) => TracedFuture {
            inner: {
                span.detach();
                span.run(make)
            },
            span: Some(span),
            rec: Some(rec),
        },
    }
}

impl<F, C> Future for TracedFuture<F, C>
where
    F: Future,
    C: FnOnce(&F::Output, &mut ActiveSpan),
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(span) = this.span.as_mut() else {
            return this.inner.poll(cx);
        };
        let inner = this.inner;
        let poll = span.run(|| inner.poll(cx));
        if let Poll::Ready(out) = &poll
            && let Some(mut span) = this.span.take()
        {
            if let Some(rec) = this.rec.take() {
                span.record(out, rec);
            }
            span.finish();
        }
        poll
    }
}
