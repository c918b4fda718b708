//! The current observation: a thread-local slot that traced calls and context wrappers swap
//! their context into while they run, and swap back out of when they return or yield.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use uuid::Uuid;

use super::trace::ActiveTrace;
use crate::model::TraceId;

/// A live observation that children can attach to and updates can reach: its trace, id and
/// depth. Cloning it costs one reference count.
#[derive(Clone)]
pub(crate) struct SpanRef {
    pub(crate) trace: Arc<ActiveTrace>,
    pub(crate) id: Uuid,
    pub(crate) depth: u32,
}

/// What the current context is.
#[derive(Clone, Default)]
pub(crate) enum Current {
    /// No observation: a traced call starts a trace.
    #[default]
    None,
    /// Inside a trace that sampling left out: traced calls record nothing.
    Unsampled,
    /// Inside a recorded observation.
    Span(SpanRef),
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Current::None => f.write_str("None"),
            Current::Unsampled => f.write_str("Unsampled"),
            Current::Span(node) => write!(f, "Span({})", node.id),
        }
    }
}

thread_local! {
    static CURRENT: Cell<Current> = const { Cell::new(Current::None) };
    /// Whether `CURRENT` is `Unsampled`, kept beside it so the calls of an unsampled trace can
    /// check it with one plain load (this thread-local has no destructor to register).
    static UNSAMPLED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current context is an unsampled trace.
#[inline]
pub(crate) fn in_unsampled_trace() -> bool {
    UNSAMPLED.try_with(Cell::get).unwrap_or(false)
}

/// A clone of the current context.
pub(crate) fn current() -> Current {
    CURRENT
        .try_with(|c| {
            let value = c.take();
            let copy = value.clone();
            c.set(value);
            copy
        })
        .unwrap_or_default()
}

/// Runs `f` on the current context without cloning it. `f` must not touch the context slot
/// (it is empty while `f` runs).
pub(crate) fn with_current<R>(f: impl FnOnce(&Current) -> R) -> R {
    let mut f = Some(f);
    let result = CURRENT.try_with(|slot| {
        let value = slot.take();
        let f = f.take().expect("called once");
        let r = f(&value);
        slot.set(value);
        r
    });
    match (result, f) {
        (Ok(r), _) => r,
        // The thread is shutting down: there is no context.
        (Err(_), Some(f)) => f(&Current::None),
        (Err(_), None) => unreachable!("try_with fails before running its closure"),
    }
}

/// Puts `value` in the slot and returns what was there.
pub(crate) fn replace(value: Current) -> Current {
    let unsampled = matches!(value, Current::Unsampled);
    let previous = CURRENT.try_with(|c| c.replace(value)).unwrap_or_default();
    let _ = UNSAMPLED.try_with(|u| u.set(unsampled));
    previous
}

/// Swaps a context into the thread's slot for as long as it lives, then swaps it back: the
/// owner's `slot` holds the previous context meanwhile, so entering costs no reference count.
pub(crate) struct Swap<'a> {
    slot: &'a mut Current,
    _not_send: PhantomData<*const ()>,
}

impl<'a> Swap<'a> {
    pub(crate) fn enter(slot: &'a mut Current) -> Self {
        let previous = replace(std::mem::take(slot));
        *slot = previous;
        Swap {
            slot,
            _not_send: PhantomData,
        }
    }
}

impl Drop for Swap<'_> {
    fn drop(&mut self) {
        let ours = replace(std::mem::take(self.slot));
        *self.slot = ours;
    }
}

/// A handle to the observation that is current where it was taken, to carry it where the
/// thread-local context does not follow: into another thread or task, or into `#[traced]`'s
/// `parent = ..` argument.
///
/// ```
/// use ops_core::ObservationContext;
///
/// #[ops_core::traced]
/// fn step() {}
///
/// #[ops_core::traced]
/// fn run() {
///     let ctx = ObservationContext::current();
///     std::thread::spawn(move || ctx.in_scope(step)).join().unwrap();
/// }
/// # run();
/// ```
#[derive(Clone, Default)]
pub struct ObservationContext {
    pub(crate) current: Current,
}

impl fmt::Debug for ObservationContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.current {
            Current::None => f.write_str("ObservationContext(none)"),
            Current::Unsampled => f.write_str("ObservationContext(unsampled)"),
            Current::Span(node) => f
                .debug_struct("ObservationContext")
                .field("trace_id", &node.trace.id)
                .field("observation_id", &node.id)
                .finish(),
        }
    }
}

impl ObservationContext {
    /// The context of this thread or task: the observation a traced call here would be a
    /// child of.
    pub fn current() -> Self {
        Self { current: current() }
    }

    /// No observation: a traced call made in it (or with `parent = ObservationContext::root()`)
    /// starts a new trace.
    pub fn root() -> Self {
        Self::default()
    }

    /// Whether there is no observation, so a traced call in it starts a new trace.
    pub fn is_root(&self) -> bool {
        matches!(self.current, Current::None)
    }

    /// Whether traced calls in it are recorded: false only inside a trace that sampling left
    /// out.
    pub fn is_sampled(&self) -> bool {
        !matches!(self.current, Current::Unsampled)
    }

    /// The observation's id.
    pub fn observation_id(&self) -> Option<Uuid> {
        match &self.current {
            Current::Span(node) => Some(node.id),
            _ => None,
        }
    }

    /// The id of the trace the observation belongs to.
    pub fn trace_id(&self) -> Option<TraceId> {
        match &self.current {
            Current::Span(node) => Some(node.trace.id.clone()),
            _ => None,
        }
    }

    /// Makes this the current context on this thread until the guard is dropped. For sync
    /// code: do not hold the guard across `.await` (the task may move threads, and other
    /// tasks polled meanwhile would see it); wrap futures with [`ObservationContext::wrap`]
    /// or [`super::TraceFutureExt::in_trace`] instead.
    pub fn enter(&self) -> ContextGuard {
        ContextGuard {
            previous: Some(replace(self.current.clone())),
            _not_send: PhantomData,
        }
    }

    /// Runs `f` with this as the current context.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.enter();
        f()
    }

    /// Wraps a future or a stream so this is the current context whenever it is polled. See
    /// also [`super::TraceFutureExt::in_current_trace`].
    pub fn wrap<T>(self, inner: T) -> super::WithContext<T> {
        super::WithContext::new(inner, self)
    }
}

/// Restores the previous context when dropped. See [`ObservationContext::enter`].
#[must_use = "the context is left when the guard is dropped"]
pub struct ContextGuard {
    previous: Option<Current>,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for ContextGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextGuard").finish_non_exhaustive()
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            replace(previous);
        }
    }
}
