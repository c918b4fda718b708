//! The current observation: a thread-local slot that traced calls and context wrappers swap
//! their context into while they run, and swap back out of when they return or yield. The
//! slot also holds the observations of its trace that finished on this thread, handed to the
//! trace in batches so a call does not lock it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use uuid::Uuid;

use super::ids::Rng;
use super::trace::{ActiveTrace, SpanRecord};
use super::update::{ObservationUpdate, TraceUpdate};
use crate::model::TraceId;
use crate::propagation::{RemoteContext, TraceParent};

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
    /// In a context another service sent (see [`crate::propagation`]): a traced call starts
    /// a root that joins the caller's trace, or, when the caller did not sample it, records
    /// nothing (as `Unsampled`, but passing the trace on to the next service).
    Remote(Arc<RemoteContext>),
}

impl Current {
    fn trace(&self) -> Option<&Arc<ActiveTrace>> {
        match self {
            Current::Span(span) => Some(&span.trace),
            _ => None,
        }
    }

    fn same_trace(&self, other: &Current) -> bool {
        match (self.trace(), other.trace()) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Current::None => f.write_str("None"),
            Current::Unsampled => f.write_str("Unsampled"),
            Current::Span(node) => write!(f, "Span({})", node.id),
            Current::Remote(remote) => write!(f, "Remote({remote})"),
        }
    }
}

/// A trace's identity while a call holds no reference to it: its address, compared only
/// against a trace the thread's context keeps alive.
pub(crate) fn trace_key(trace: &Arc<ActiveTrace>) -> usize {
    Arc::as_ptr(trace).addr()
}

/// The thread's context, and the observations of its trace that finished on this thread.
struct Slot {
    current: Current,
    /// Finished observations of `current`'s trace (never of another): handed to the trace
    /// when the thread leaves it, or when [`LOCAL_MAX_RECORDS`] or [`LOCAL_MAX_BYTES`] is
    /// reached.
    finished: Vec<SpanRecord>,
    finished_bytes: usize,
    /// Whether finished records may wait on the thread: true while the innermost context was
    /// entered by a traced call or a polled future, which hands them over when it returns;
    /// false at the top and under a [`ContextGuard`], which may stay entered for as long as
    /// the thread runs.
    batch: bool,
    /// Draws the ids of the observations started here.
    rng: Rng,
}

/// How many finished observations a thread keeps before handing them to their trace.
const LOCAL_MAX_RECORDS: usize = 64;
/// How many estimated bytes of finished observations a thread keeps before handing them over.
const LOCAL_MAX_BYTES: usize = 256 << 10;

impl Slot {
    const fn new() -> Self {
        Self {
            current: Current::None,
            finished: Vec::new(),
            finished_bytes: 0,
            batch: false,
            rng: Rng::new(),
        }
    }

    /// Takes the finished records out, to hand them over once the slot is released.
    fn take_finished(&mut self) -> Vec<SpanRecord> {
        self.finished_bytes = 0;
        std::mem::take(&mut self.finished)
    }
}

impl Drop for Slot {
    /// A thread that ends inside a context (a leaked guard) still hands over what it holds.
    fn drop(&mut self) {
        if !self.finished.is_empty()
            && let Some(trace) = self.current.trace()
        {
            trace.finish_many(&mut self.finished);
        }
    }
}

const UNSAMPLED: u8 = 1;
const SUPPRESSED: u8 = 2;

thread_local! {
    static SLOT: RefCell<Slot> = const { RefCell::new(Slot::new()) };
    /// Whether the slot's context is `Unsampled`, and whether the thread is one whose calls
    /// are never traced: checked with one plain load (this thread-local has no destructor to
    /// register).
    static FLAGS: Cell<u8> = const { Cell::new(0) };
}

/// Runs `f` on the thread's slot: `None` when the thread is shutting down. `f` runs no user
/// code and drops no trace, so the slot is never borrowed twice.
#[inline]
fn with_slot<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    SLOT.try_with(|slot| slot.try_borrow_mut().ok().map(|mut s| f(&mut s)))
        .ok()
        .flatten()
}

/// Gives back an emptied buffer of finished records, so the next ones reuse its memory.
fn give_back(mut buffer: Vec<SpanRecord>) {
    buffer.clear();
    with_slot(|s| {
        if s.finished.capacity() == 0 {
            std::mem::swap(&mut s.finished, &mut buffer);
        }
    });
}

/// Marks this thread as one whose calls are never traced.
pub(crate) fn suppress_thread() {
    let _ = FLAGS.try_with(|f| f.set(f.get() | SUPPRESSED));
}

/// Whether this thread's calls are never traced.
#[inline]
pub(crate) fn is_suppressed() -> bool {
    FLAGS
        .try_with(|f| f.get() & SUPPRESSED != 0)
        .unwrap_or(true)
}

/// Whether a call without an explicit parent may be recorded here: false on a suppressed
/// thread and inside an unsampled trace.
#[inline]
pub(crate) fn may_record() -> bool {
    FLAGS.try_with(Cell::get).unwrap_or(SUPPRESSED) == 0
}

/// A clone of the current context.
pub(crate) fn current() -> Current {
    with_slot(|s| s.current.clone()).unwrap_or_default()
}

/// What a new synchronous call finds current on this thread.
pub(crate) enum Entered {
    /// No observation: the call starts a trace.
    None,
    /// Inside an unsampled trace: nothing is recorded.
    Unsampled,
    /// In a context from another service: the call starts a root that joins its trace.
    Remote(Arc<RemoteContext>),
    /// The call is now the current observation, as a child of `parent`.
    Child {
        trace: usize,
        parent: Uuid,
        id: Uuid,
        depth: u32,
        /// Whether records could wait on the thread before the call: restored when it ends.
        batch: bool,
    },
}

/// Makes a call starting at `at` (clock ticks) the current observation, as a child of the
/// current one, when there is one. While it runs, the records of the calls it makes wait on
/// the thread: it hands them over when it ends if they could not wait before.
#[inline]
pub(crate) fn enter_child(at: u64) -> Entered {
    with_slot(|s| {
        let Slot {
            current,
            rng,
            batch,
            ..
        } = s;
        match current {
            Current::None => Entered::None,
            Current::Unsampled => Entered::Unsampled,
            Current::Remote(remote) if remote.is_sampled() => Entered::Remote(remote.clone()),
            Current::Remote(_) => Entered::Unsampled,
            Current::Span(span) => {
                let parent = span.id;
                span.id = rng.uuid_v7(span.trace.anchor.unix_millis(at));
                span.depth += 1;
                Entered::Child {
                    trace: trace_key(&span.trace),
                    parent,
                    id: span.id,
                    depth: span.depth,
                    batch: std::mem::replace(batch, true),
                }
            }
        }
    })
    .unwrap_or(Entered::None)
}

/// Moves the context from the observation `id` back to its parent, and restores whether
/// records may wait on the thread. False, changing nothing, when the context is not at `id`
/// (it was changed under the call).
fn leave(s: &mut Slot, trace: usize, id: u128, parent: u128, batch: bool) -> bool {
    match &mut s.current {
        Current::Span(span) if span.id.as_u128() == id && trace_key(&span.trace) == trace => {
            span.id = Uuid::from_u128(parent);
            span.depth -= 1;
            s.batch = batch;
            true
        }
        _ => false,
    }
}

/// The records the thread must hand over now, with their trace: all of them when they may
/// not wait (or there are too many).
fn due(s: &mut Slot) -> Option<(Arc<ActiveTrace>, Vec<SpanRecord>)> {
    if s.finished.is_empty()
        || (s.batch && s.finished.len() < LOCAL_MAX_RECORDS && s.finished_bytes < LOCAL_MAX_BYTES)
    {
        return None;
    }
    let trace = Arc::clone(s.current.trace()?);
    Some((trace, s.take_finished()))
}

/// Hands `records` to their trace, and their emptied buffer back to the thread.
fn hand_over(trace: &ActiveTrace, mut records: Vec<SpanRecord>) {
    trace.finish_many(&mut records);
    give_back(records);
}

/// Ends a call entered with [`enter_child`]: its parent becomes current again, and its record
/// is kept to be handed to the trace with others. Gives the record back when the context was
/// changed under the call.
#[inline]
pub(crate) fn finish_child(
    trace: usize,
    batch: bool,
    record: SpanRecord,
) -> Result<(), SpanRecord> {
    let mut record = Some(record);
    let due = with_slot(|s| {
        let r = record.as_ref()?;
        if !leave(s, trace, r.id, r.parent_id, batch) {
            return None;
        }
        let r = record.take()?;
        s.finished_bytes += r.size();
        s.finished.push(r);
        due(s)
    })
    .flatten();
    if let Some((trace, records)) = due {
        hand_over(&trace, records);
    }
    match record {
        Some(record) => Err(record),
        None => Ok(()),
    }
}

/// Moves the context from a call entered with [`enter_child`] back to its parent, and returns
/// the call's trace: for a call that goes on beyond this thread's stack (a future or a stream)
/// and must hold its trace. `None` when the context was changed under the call.
pub(crate) fn detach_child(
    trace: usize,
    id: Uuid,
    parent: Uuid,
    batch: bool,
) -> Option<Arc<ActiveTrace>> {
    let (ours, due) = with_slot(|s| {
        if leave(s, trace, id.as_u128(), parent.as_u128(), batch) {
            (s.current.trace().cloned(), due(s))
        } else {
            (None, None)
        }
    })
    .unwrap_or((None, None));
    if let Some((trace, records)) = due {
        hand_over(&trace, records);
    }
    ours
}

/// Exchanges `context` with the thread's, in place, and sets whether finished records may
/// wait on the thread (returning the previous setting). The thread hands over the records it
/// holds when it leaves their trace, or enters a context where they may not wait.
fn swap(context: &mut Current, batch: bool) -> bool {
    let unsampled = u8::from(match context {
        Current::Unsampled => true,
        Current::Remote(remote) => !remote.is_sampled(),
        _ => false,
    });
    let _ = FLAGS.try_with(|f| f.set((f.get() & !UNSAMPLED) | unsampled));
    let swapped = with_slot(|s| {
        let hand_over = !s.finished.is_empty() && (!batch || !s.current.same_trace(context));
        std::mem::swap(&mut s.current, context);
        let previous = std::mem::replace(&mut s.batch, batch);
        (previous, hand_over.then(|| s.take_finished()))
    });
    let Some((previous, finished)) = swapped else {
        return false;
    };
    // They belong to the context swapped out, now in `context`.
    if let (Some(finished), Some(trace)) = (finished, context.trace()) {
        hand_over(trace, finished);
    }
    previous
}

/// Swaps a context into the thread's slot for as long as it lives, then swaps it back: the
/// owner's `slot` holds the previous context meanwhile, so entering costs no reference count.
/// For a traced call's run or a future's poll: records of the calls that finish meanwhile may
/// wait on the thread, since leaving hands them over.
pub(crate) struct Swap<'a> {
    slot: &'a mut Current,
    batch: bool,
    _not_send: PhantomData<*const ()>,
}

impl<'a> Swap<'a> {
    pub(crate) fn enter(slot: &'a mut Current) -> Self {
        let batch = swap(slot, true);
        Swap {
            slot,
            batch,
            _not_send: PhantomData,
        }
    }
}

impl Drop for Swap<'_> {
    fn drop(&mut self) {
        swap(self.slot, self.batch);
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
            Current::Remote(remote) => f
                .debug_struct("ObservationContext")
                .field("remote", &remote.trace_parent())
                .finish_non_exhaustive(),
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
    /// out (here, or by the service that sent it).
    pub fn is_sampled(&self) -> bool {
        match &self.current {
            Current::Unsampled => false,
            Current::Remote(remote) => remote.is_sampled(),
            _ => true,
        }
    }

    /// Whether it is a context another service sent ([`crate::propagation::extract`]), no
    /// traced call having started in it yet.
    pub fn is_remote(&self) -> bool {
        matches!(self.current, Current::Remote(_))
    }

    /// The W3C `traceparent` an outgoing call made here carries: the trace id, this
    /// observation's span id as the parent, and the sampled flag. `None` outside any trace
    /// and in one sampling left out locally. See [`crate::propagation::inject`].
    pub fn trace_parent(&self) -> Option<TraceParent> {
        crate::propagation::outgoing(&self.current).map(|o| o.parent)
    }

    /// The observation's id.
    pub fn observation_id(&self) -> Option<Uuid> {
        match &self.current {
            Current::Span(node) => Some(node.id),
            _ => None,
        }
    }

    /// The id of the trace the observation belongs to (for a context from another service,
    /// the id its traced calls will have).
    pub fn trace_id(&self) -> Option<TraceId> {
        match &self.current {
            Current::Span(node) => Some(node.trace.id.clone()),
            Current::Remote(remote) => remote.trace_id(),
            _ => None,
        }
    }

    /// Makes this the current context on this thread until the guard is dropped. For sync
    /// code: do not hold the guard across `.await` (the task may move threads, and other
    /// tasks polled meanwhile would see it); wrap futures with [`ObservationContext::wrap`]
    /// or [`super::TraceFutureExt::in_trace`] instead.
    pub fn enter(&self) -> ContextGuard {
        let mut previous = self.current.clone();
        // A guard may stay entered as long as its thread runs: calls finished under it are
        // handed to their trace at once.
        let batch = swap(&mut previous, false);
        ContextGuard {
            previous: Some(previous),
            batch,
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
    batch: bool,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for ContextGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextGuard").finish_non_exhaustive()
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        if let Some(mut previous) = self.previous.take() {
            swap(&mut previous, self.batch);
        }
    }
}

/// Updates the current observation (the innermost traced call running here). Returns false,
/// changing nothing, when no recorded observation is current: outside any traced call, with
/// tracing off, or in a trace that sampling left out.
///
/// ```
/// use ops_core::{Usage, update_current_observation};
///
/// #[ops_core::traced(kind = "generation", model = "gpt-4o-mini")]
/// fn complete(prompt: &str) -> String {
///     let answer = format!("echo: {prompt}");
///     update_current_observation(|o| {
///         o.usage(Usage::tokens(3, 5).with_cost(0.0001, "USD"))
///             .model_parameter("temperature", 0.2)
///             .metadata("cached", false);
///     });
///     answer
/// }
/// # complete("hi");
/// ```
pub fn update_current_observation(f: impl FnOnce(&mut ObservationUpdate)) -> bool {
    let Current::Span(span) = current() else {
        return false;
    };
    let mut update = ObservationUpdate::default();
    f(&mut update);
    span.trace.update_observation(span.id, update);
    true
}

/// Updates the current trace: its user, session, tags, metadata, name, input or output.
/// Returns false, changing nothing, when no recorded trace is current.
///
/// ```
/// #[ops_core::traced(kind = "message")]
/// fn answer(query: &str) -> String {
///     ops_core::update_current_trace(|t| {
///         t.user_id("user-1").session_id("conversation-9").tags(["beta"]);
///     });
///     query.to_uppercase()
/// }
/// # answer("hi");
/// ```
pub fn update_current_trace(f: impl FnOnce(&mut TraceUpdate)) -> bool {
    let Current::Span(span) = current() else {
        return false;
    };
    let mut update = TraceUpdate::default();
    f(&mut update);
    span.trace.update(update);
    true
}
