//! The observation a traced call records while it runs, and the entry points generated code
//! calls.

use std::any::Any;
use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::capture::{Captured, ErrorInfo};
use super::clock::{self, Anchor};
use super::config::{sample_rate, sampled};
use super::current::{self, Current, Entered, ObservationContext, SpanRef, Swap};
use super::ids;
use super::site::Site;
use super::trace::{ActiveTrace, SpanData, SpanRecord};
use super::update::ObservationUpdate;
use crate::model::{Level, TraceId, remote_parent_uuid};
use crate::propagation::{RemoteContext, TraceParent};

/// A traced call in progress. Dropping it unfinished records the call as cancelled (or as
/// panicked, during a panic).
#[derive(Debug)]
pub struct Span {
    state: State,
}

#[derive(Debug)]
enum State {
    /// The root of a trace sampling left out: it makes its callees unsampled too.
    Unsampled(Current),
    Active(ActiveSpan),
    Done,
}

/// The recorded part of a traced call: what generated code captures into. Small, so moving
/// it costs little: what is captured lives in `data`, allocated only when something is.
#[derive(Debug)]
pub struct ActiveSpan {
    owner: Owner,
    /// The record the call becomes, built in place: its `end` is set when the call ends.
    record: SpanRecord,
}

/// How a call reaches its trace.
#[derive(Debug)]
enum Owner {
    /// A child of the observation current on this thread, run synchronously here: it reaches
    /// its trace through the thread's context, so it holds no reference to it, and its record
    /// waits on the thread to be handed over with others. `trace` is the trace's key.
    Thread { trace: usize, batch: bool },
    /// A call that carries its own context (a root, a call given its parent, an async call, a
    /// stream): the slot holds the call's context while it is not running and the caller's
    /// while it runs.
    Slot(Current),
    /// The thread's context was changed under the call (a `ContextGuard` leaked with
    /// `mem::forget`, or guards dropped out of order): it cannot reach its trace, and is
    /// counted as lost when it ends.
    Lost,
}

static LOST: AtomicU64 = AtomicU64::new(0);

/// How many traced calls this process could not record because the thread's context was
/// changed under them while they ran: a [`ContextGuard`](super::ContextGuard) leaked with
/// `mem::forget`, or guards dropped in another order than they were entered. The first loss
/// is also logged as a warning.
pub fn lost_observations() -> u64 {
    LOST.load(Ordering::Relaxed)
}

#[cold]
fn lost(site: &'static Site) {
    if LOST.fetch_add(1, Ordering::Relaxed) == 0 {
        tracing::warn!(
            target: "ops_core",
            function = site.name,
            "a traced call could not be recorded: the thread's trace context changed while it \
             ran (was a ContextGuard leaked with mem::forget, or dropped out of order?); see \
             ops_core::context::lost_observations()"
        );
    }
}

/// Whether a traced call could be recorded: a queue is installed somewhere, or a trace is
/// alive (one relaxed atomic load).
#[inline(always)]
pub fn is_enabled() -> bool {
    crate::global::is_enabled()
}

/// Starts a traced call: `None` when nothing is to be recorded (suppressed thread, a callee in
/// an unsampled trace, or no queue for a new root). `parent` overrides the current context;
/// `rate` overrides the sample rate when the call starts a trace.
#[inline]
pub fn start(
    site: &'static Site,
    parent: Option<ObservationContext>,
    rate: Option<f64>,
) -> Option<Span> {
    // Suppressed, or a callee in an unsampled trace: one thread-local load, in line.
    if parent.is_none() && !current::may_record() {
        return None;
    }
    start_call(site, parent, rate)
}

#[inline(never)]
fn start_call(
    site: &'static Site,
    parent: Option<ObservationContext>,
    rate: Option<f64>,
) -> Option<Span> {
    let state = match parent {
        None => {
            let at = clock::ticks();
            match current::enter_child(at) {
                Entered::Child {
                    trace,
                    parent,
                    id,
                    depth,
                    batch,
                } => State::Active(ActiveSpan::new(
                    site,
                    Owner::Thread { trace, batch },
                    id,
                    Some(parent),
                    depth,
                    at,
                )),
                Entered::Unsampled => return None,
                Entered::Remote(remote) => root(site, rate, Some(remote))?,
                Entered::None => root(site, rate, None)?,
            }
        }
        Some(_) if current::is_suppressed() => return None,
        Some(parent) => match parent.current {
            // An explicit unsampled parent makes this call's own callees unsampled.
            Current::Unsampled => State::Unsampled(Current::Unsampled),
            Current::Span(node) => State::Active(child_of(site, node)),
            Current::Remote(remote) => root(site, rate, Some(remote))?,
            Current::None => root(site, rate, None)?,
        },
    };
    Some(Span { state })
}

/// A child of a context given to the call: it holds the trace.
fn child_of(site: &'static Site, parent: SpanRef) -> ActiveSpan {
    let at = clock::ticks();
    let id = ids::uuid_v7_millis(parent.trace.anchor.unix_millis(at));
    let depth = parent.depth + 1;
    let span = SpanRef {
        trace: parent.trace,
        id,
        depth,
    };
    ActiveSpan::new(
        site,
        Owner::Slot(Current::Span(span)),
        id,
        Some(parent.id),
        depth,
        at,
    )
}

/// A new trace, if sampling keeps it and there is a queue to deliver it to. In a context
/// from another service (`remote`, or with the `opentelemetry` feature an OpenTelemetry span
/// current on the thread), it joins the caller's trace: the caller's trace id, the caller's
/// span as its parent, and the caller's sampling decision.
fn root(
    site: &'static Site,
    rate: Option<f64>,
    remote: Option<Arc<RemoteContext>>,
) -> Option<State> {
    #[cfg(feature = "opentelemetry")]
    let remote = remote.or_else(crate::propagation::otel::current_remote);
    let caller = remote.as_deref().and_then(RemoteContext::trace_parent);
    match (caller, remote) {
        // The caller left the trace out: so do we, passing it on as it came.
        (Some(p), Some(remote)) if !p.is_sampled() => {
            Some(State::Unsampled(Current::Remote(remote)))
        }
        // The caller recorded it: so do we, whatever the local rate.
        (Some(_), remote) => root_recorded(site, caller, remote),
        (None, remote) => {
            let rate = rate.filter(|r| (0.0..=1.0).contains(r));
            if !sampled(rate.unwrap_or_else(sample_rate)) {
                return Some(State::Unsampled(Current::Unsampled));
            }
            root_recorded(site, None, remote)
        }
    }
}

fn root_recorded(
    site: &'static Site,
    caller: Option<TraceParent>,
    remote: Option<Arc<RemoteContext>>,
) -> Option<State> {
    let Some(queue) = crate::global::current_queue() else {
        // Called only when a queue is installed somewhere (`is_enabled`), so none reachable
        // here means this task or thread lost its context.
        super::orphan::record(site.name);
        return None;
    };
    let anchor = Anchor::now();
    let millis = anchor.unix_millis(anchor.ticks());
    let id = ids::uuid_v7_millis(millis);
    let trace_id = match caller.and_then(|p| TraceId::from_w3c_bytes(p.trace_id())) {
        Some(id) => id,
        None => TraceId::from_uuid(ids::uuid_v7_millis(millis)),
    };
    let parent = caller.map(|p| remote_parent_uuid(p.parent_id()));
    let baggage = remote.as_ref().map(|r| r.baggage().clone());
    let trace = Arc::new(ActiveTrace::new(
        queue, trace_id, site.name, site.kind, anchor, id, remote,
    ));
    let span = SpanRef {
        trace,
        id,
        depth: 0,
    };
    let mut active = ActiveSpan::new(
        site,
        Owner::Slot(Current::Span(span)),
        id,
        parent,
        0,
        anchor.ticks(),
    );
    // The user and session the caller sent; `user_id = ..` on the root, or
    // `update_current_trace`, still wins.
    if let Some(baggage) = baggage {
        if let Some(user) = baggage.user_id() {
            active.user_id(user);
        }
        if let Some(session) = baggage.session_id() {
            active.session_id(session);
        }
    }
    Some(State::Active(active))
}

impl ActiveSpan {
    fn new(
        site: &'static Site,
        owner: Owner,
        id: Uuid,
        parent_id: Option<Uuid>,
        depth: u32,
        start: u64,
    ) -> Self {
        Self {
            owner,
            record: SpanRecord {
                id: id.as_u128(),
                parent_id: parent_id.map_or(0, |p| p.as_u128()),
                depth,
                level: Level::Default,
                site,
                start,
                end: start,
                data: None,
            },
        }
    }

    fn data(&mut self) -> &mut SpanData {
        self.record.data.get_or_insert_with(Default::default)
    }

    fn extra(&mut self) -> &mut ObservationUpdate {
        self.data().extra.get_or_insert_with(Default::default)
    }

    /// Records a parameter.
    #[inline]
    pub fn input(&mut self, name: &'static str, value: Captured) {
        self.data().inputs.push((name, value));
    }

    /// Records the output.
    #[inline]
    pub fn output(&mut self, value: Captured) {
        self.data().output = Some(value);
    }

    fn set_status(&mut self, level: Level, message: String) {
        self.record.level = level;
        self.data().status_message = Some(message);
    }

    /// Records a failure: level ERROR, the status message from the error, the error's type
    /// in the metadata as `error_type` and, for an error with a `source()`, its chain of
    /// causes as `error_chain` (see [`crate::Observation::error_chain`]).
    pub fn error(&mut self, error: ErrorInfo) {
        self.set_status(
            Level::Error,
            error
                .message
                .unwrap_or_else(|| format!("error of type {}", error.type_name)),
        );
        let metadata = &mut self.extra().metadata;
        metadata.insert("error_type".into(), Value::from(error.type_name));
        if let Some(chain) = error.chain {
            metadata.insert("error_chain".into(), Value::from(chain));
        }
    }

    /// Adds a metadata entry.
    pub fn metadata<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) {
        let value = Captured::now(value).to_value();
        self.extra().metadata.insert(key.to_owned(), value);
    }

    /// Adds tags.
    pub fn tags(&mut self, tags: &[&'static str]) {
        self.extra()
            .tags
            .extend(tags.iter().map(|t| (*t).to_owned()));
    }

    /// Sets the starting level.
    pub fn level(&mut self, level: Level) {
        self.record.level = level;
    }

    /// Sets the model.
    pub fn model<V: AttrValue + ?Sized>(&mut self, value: &V) {
        self.extra().model = value.to_attr();
    }

    /// Sets the model's provider.
    pub fn model_provider<V: AttrValue + ?Sized>(&mut self, value: &V) {
        self.extra().model_provider = value.to_attr();
    }

    /// Adds a model parameter.
    pub fn model_parameter<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) {
        let value = Captured::now(value).to_value();
        self.extra().model_parameters.insert(key.to_owned(), value);
    }

    /// Sets the user.
    pub fn user_id<V: AttrValue + ?Sized>(&mut self, value: &V) {
        let user = value.to_attr();
        self.observe_ids(user.as_deref(), None);
        self.extra().attributes.user_id = user;
    }

    /// Sets the session.
    pub fn session_id<V: AttrValue + ?Sized>(&mut self, value: &V) {
        let session = value.to_attr();
        self.observe_ids(None, session.as_deref());
        self.extra().attributes.session_id = session;
    }

    /// Tells the trace, so a call this one makes to another service carries them as baggage
    /// while it runs.
    fn observe_ids(&self, user: Option<&str>, session: Option<&str>) {
        if user.is_none() && session.is_none() {
            return;
        }
        match &self.owner {
            Owner::Slot(Current::Span(span)) if span.id.as_u128() == self.record.id => {
                span.trace.observe_ids(user, session);
            }
            // A synchronous child is current on its thread from its start.
            Owner::Thread { .. } => {
                if let Current::Span(span) = current::current()
                    && span.id.as_u128() == self.record.id
                {
                    span.trace.observe_ids(user, session);
                }
            }
            Owner::Slot(_) | Owner::Lost => {}
        }
    }

    /// Sets the app.
    pub fn app_id<V: AttrValue + ?Sized>(&mut self, value: &V) {
        self.extra().attributes.app_id = value.to_attr();
    }

    /// Sets the tenant.
    pub fn tenant_id<V: AttrValue + ?Sized>(&mut self, value: &V) {
        self.extra().attributes.tenant_id = value.to_attr();
    }

    /// Sets the environment.
    pub fn environment<V: AttrValue + ?Sized>(&mut self, value: &V) {
        self.extra().attributes.environment = value.to_attr();
    }

    /// Sets the release.
    pub fn release<V: AttrValue + ?Sized>(&mut self, value: &V) {
        self.extra().attributes.release = value.to_attr();
    }

    /// Sets the version.
    pub fn version<V: AttrValue + ?Sized>(&mut self, value: &V) {
        self.extra().attributes.version = value.to_attr();
    }

    /// Adds a metadata entry the runtime computed.
    pub(crate) fn set_metadata(&mut self, key: &str, value: Value) {
        self.extra().metadata.insert(key.to_owned(), value);
    }

    /// Marks the first item of a stream as arriving now, on the trace's clock.
    pub(crate) fn first_item(&mut self) {
        let at = match &self.owner {
            Owner::Slot(Current::Span(span)) => span.trace.anchor.time(clock::ticks()),
            _ => SystemTime::now(),
        };
        self.extra().completion_start_time.get_or_insert(at);
    }

    fn id(&self) -> Uuid {
        Uuid::from_u128(self.record.id)
    }

    /// Applies `update` on top of what it carries.
    pub(crate) fn apply_update(&mut self, update: ObservationUpdate) {
        match &mut self.data().extra {
            Some(extra) => extra.merge(update),
            extra @ None => *extra = Some(Box::new(update)),
        }
    }

    /// The updates it carries, to change before it ends.
    pub(crate) fn update_mut(&mut self) -> &mut ObservationUpdate {
        self.extra()
    }
}

impl Span {
    /// The part to capture into, when the call is recorded.
    #[inline]
    pub fn recording(&mut self) -> Option<&mut ActiveSpan> {
        match &mut self.state {
            State::Active(a) => Some(a),
            _ => None,
        }
    }

    /// Runs `body` with this call as the current context. A panic is recorded (level ERROR,
    /// its message as the status), the call is finished, and the panic goes on.
    pub(crate) fn run<R>(&mut self, body: impl FnOnce() -> R) -> R {
        let slot = match &mut self.state {
            State::Active(a) => match &mut a.owner {
                // Made current when it started; made the parent again when it finishes.
                Owner::Thread { .. } => None,
                Owner::Slot(slot) => Some(slot),
                Owner::Lost => return body(),
            },
            State::Unsampled(slot) => Some(slot),
            State::Done => return body(),
        };
        let result = match slot {
            None => catch_unwind(AssertUnwindSafe(body)),
            Some(slot) => {
                let _swap = Swap::enter(slot);
                catch_unwind(AssertUnwindSafe(body))
            }
        };
        match result {
            Ok(value) => value,
            Err(payload) => {
                self.panicked(&*payload);
                resume_unwind(payload)
            }
        }
    }

    /// The context of a call that carries its own (a root, a call given its parent): its
    /// observation, or the unsampled context of a root sampling left out.
    pub(crate) fn own_context(&self) -> Option<Current> {
        match &self.state {
            State::Active(ActiveSpan {
                owner: Owner::Slot(slot),
                ..
            })
            | State::Unsampled(slot) => Some(slot.clone()),
            _ => None,
        }
    }

    /// Whether the call is recorded.
    pub(crate) fn is_active(&self) -> bool {
        matches!(self.state, State::Active(_))
    }

    /// Changes what the call is (its name and kind), keeping its name.
    pub(crate) fn set_site(&mut self, site: impl FnOnce(&'static str) -> &'static Site) {
        if let State::Active(a) = &mut self.state {
            a.record.site = site(a.record.site.name);
        }
    }

    /// Makes the call carry its own context, for a call that goes on beyond the caller's stack
    /// (a future or a stream): it takes a reference to its trace.
    pub(crate) fn detach(&mut self) {
        if let State::Active(a) = &mut self.state
            && let Owner::Thread { trace, batch } = a.owner
        {
            let parent = Uuid::from_u128(a.record.parent_id);
            a.owner = match current::detach_child(trace, a.id(), parent, batch) {
                Some(trace) => Owner::Slot(Current::Span(SpanRef {
                    trace,
                    id: a.id(),
                    depth: a.record.depth,
                })),
                None => Owner::Lost,
            };
        }
    }

    fn panicked(&mut self, payload: &(dyn Any + Send)) {
        if let State::Active(a) = &mut self.state {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| Cow::Borrowed(*s))
                .or_else(|| {
                    payload
                        .downcast_ref::<String>()
                        .map(|s| Cow::Owned(s.clone()))
                })
                .unwrap_or(Cow::Borrowed("Box<dyn Any>"));
            a.set_status(Level::Error, format!("panicked: {message}"));
        }
        self.finish();
    }

    /// Lets generated code capture the return value (or the error).
    pub(crate) fn record<R>(&mut self, out: &R, rec: impl FnOnce(&R, &mut ActiveSpan)) {
        if let State::Active(a) = &mut self.state {
            let a: &mut ActiveSpan = a;
            if catch_unwind(AssertUnwindSafe(|| rec(out, a))).is_err() {
                a.data().output = None;
                a.extra().metadata.insert(
                    "capture_error".into(),
                    "capturing the output panicked".into(),
                );
            }
        }
    }

    /// Ends the call now and hands it to its trace.
    pub(crate) fn finish(&mut self) {
        let State::Active(ActiveSpan { owner, mut record }) =
            std::mem::replace(&mut self.state, State::Done)
        else {
            return;
        };
        record.end = clock::ticks();
        let site = record.site;
        match owner {
            Owner::Thread { trace, batch } => {
                if let Err(record) = current::finish_child(trace, batch, record) {
                    drop(record);
                    lost(site);
                }
            }
            // The slot holds the call's own context again, unless a guard was leaked or
            // dropped out of order while it ran.
            Owner::Slot(Current::Span(span)) if span.id.as_u128() == record.id => {
                span.trace.finish(record)
            }
            Owner::Slot(_) | Owner::Lost => lost(site),
        }
    }

    /// Records that the call ended before completing: dropped (cancelled), or unwound by a
    /// panic that was not caught where the span could see it.
    pub(crate) fn abandon(&mut self, status: &str) {
        if let State::Active(a) = &mut self.state {
            if std::thread::panicking() {
                a.set_status(Level::Error, "panicked".into());
            } else {
                a.set_status(Level::Warning, status.to_owned());
                a.extra().metadata.insert("cancelled".into(), true.into());
            }
        }
        self.finish();
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if matches!(self.state, State::Active(_)) {
            self.abandon("cancelled: dropped before it completed");
        }
    }
}

/// The part of an optional call to capture into.
#[inline]
pub fn recording(span: &mut Option<Span>) -> Option<&mut ActiveSpan> {
    span.as_mut()?.recording()
}

/// Runs the input captures of a recorded call, out of line: the traced function's own code
/// stays small, so a call with tracing off pays for no stack frame it does not use.
#[inline]
pub fn capture<F: FnOnce(&mut ActiveSpan)>(span: &mut Option<Span>, f: F) {
    if let Some(active) = recording(span) {
        capture_out_of_line(active, f);
    }
}

#[inline(never)]
fn capture_out_of_line<F: FnOnce(&mut ActiveSpan)>(span: &mut ActiveSpan, f: F) {
    f(span)
}

/// Runs a synchronous traced body: with no span, just the body.
#[inline]
pub fn call<R, B, C>(span: Option<Span>, body: B, rec: C) -> R
where
    B: FnOnce() -> R,
    C: FnOnce(&R, &mut ActiveSpan),
{
    match span {
        None => body(),
        Some(mut span) => call_recorded(&mut span, body, rec),
    }
}

#[inline(never)]
fn call_recorded<R, B, C>(span: &mut Span, body: B, rec: C) -> R
where
    B: FnOnce() -> R,
    C: FnOnce(&R, &mut ActiveSpan),
{
    let out = span.run(body);
    span.record(&out, rec);
    span.finish();
    out
}

/// A value usable as an attribute (user, session, model, ...): a string, a number, a UUID or
/// an `Option` of one (`None` leaves the attribute unset).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as an attribute value",
    label = "expected a string, a number, a UUID, or an `Option` of one",
    note = "convert it first, for example with `.to_string()`"
)]
pub trait AttrValue {
    /// The attribute's value.
    fn to_attr(&self) -> Option<String>;
}

impl AttrValue for str {
    fn to_attr(&self) -> Option<String> {
        Some(self.to_owned())
    }
}

impl AttrValue for String {
    fn to_attr(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl AttrValue for Cow<'_, str> {
    fn to_attr(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl<T: AttrValue + ?Sized> AttrValue for &T {
    fn to_attr(&self) -> Option<String> {
        (**self).to_attr()
    }
}

impl<T: AttrValue> AttrValue for Option<T> {
    fn to_attr(&self) -> Option<String> {
        self.as_ref().and_then(AttrValue::to_attr)
    }
}

impl AttrValue for Uuid {
    fn to_attr(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl AttrValue for TraceId {
    fn to_attr(&self) -> Option<String> {
        Some(self.to_string())
    }
}

macro_rules! number_attr {
    ($($t:ty),*) => {
        $(impl AttrValue for $t {
            fn to_attr(&self) -> Option<String> {
                Some(self.to_string())
            }
        })*
    };
}

number_attr!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

/// Anything `parent = ..` accepts, taken by reference: an [`ObservationContext`] (or a
/// reference to one), or an `Option` of one where `None` starts a new trace.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a parent",
    label = "expected an `ObservationContext`, a reference to one, or an `Option` of one",
    note = "take one with `ops_core::ObservationContext::current()`; `parent = None` starts a new trace"
)]
pub trait IntoParent {
    /// The context to start the call in.
    fn into_parent(self) -> ObservationContext;
}

impl IntoParent for &ObservationContext {
    fn into_parent(self) -> ObservationContext {
        self.clone()
    }
}

impl IntoParent for &&ObservationContext {
    fn into_parent(self) -> ObservationContext {
        (*self).clone()
    }
}

impl IntoParent for &Option<ObservationContext> {
    fn into_parent(self) -> ObservationContext {
        self.clone().unwrap_or_default()
    }
}

impl IntoParent for &Option<&ObservationContext> {
    fn into_parent(self) -> ObservationContext {
        self.map(Clone::clone).unwrap_or_default()
    }
}
