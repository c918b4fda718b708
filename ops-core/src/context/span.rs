//! The observation a traced call records while it runs, and the entry points generated code
//! calls.

use std::any::Any;
use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::capture::{Captured, ErrorInfo};
use super::config::{sample_rate, sampled};
use super::current::{Current, ObservationContext, SpanRef, Swap, with_current};
use super::ids;
use super::trace::{ActiveTrace, SpanData, SpanRecord};
use super::update::ObservationUpdate;
use crate::model::{Level, ObservationKind, TraceId};

/// What a traced function is, fixed at compile time: one `static` per function.
#[derive(Debug)]
pub struct Site {
    pub(crate) name: &'static str,
    pub(crate) kind: ObservationKind,
}

impl Site {
    /// A function's name and kind.
    pub const fn new(name: &'static str, kind: ObservationKind) -> Self {
        Self { name, kind }
    }
}

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
    /// The call's own context while it is not running; the caller's while it runs.
    slot: Current,
    id: Uuid,
    parent_id: Option<Uuid>,
    depth: u32,
    level: Level,
    site: &'static Site,
    start: SystemTime,
    data: Option<Box<SpanData>>,
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
#[inline(never)]
pub fn start(
    site: &'static Site,
    parent: Option<ObservationContext>,
    rate: Option<f64>,
) -> Option<Span> {
    if crate::__private::is_suppressed() {
        return None;
    }
    if parent.is_none() && super::current::in_unsampled_trace() {
        // A callee in an unsampled trace: nothing to do, the context already says so.
        return None;
    }
    let explicit = parent.is_some();
    let outcome = match parent {
        Some(p) => decide(site, &p.current, explicit),
        None => with_current(|c| decide(site, c, false)),
    };
    let state = match outcome {
        Decision::Skip => return None,
        Decision::Unsampled => State::Unsampled(Current::Unsampled),
        Decision::Child(span) => State::Active(span),
        Decision::Root => {
            let rate = rate.filter(|r| (0.0..=1.0).contains(r));
            if !sampled(rate.unwrap_or_else(sample_rate)) {
                State::Unsampled(Current::Unsampled)
            } else {
                let queue = crate::global::current_queue()?;
                State::Active(root(site, queue))
            }
        }
    };
    Some(Span { state })
}

enum Decision {
    Skip,
    Unsampled,
    Child(ActiveSpan),
    Root,
}

fn decide(site: &'static Site, parent: &Current, explicit: bool) -> Decision {
    match parent {
        // Already unsampled here: nothing to do. An explicit unsampled parent must also make
        // this call's own callees unsampled.
        Current::Unsampled if explicit => Decision::Unsampled,
        Current::Unsampled => Decision::Skip,
        Current::Span(node) => Decision::Child(child(site, node)),
        Current::None => Decision::Root,
    }
}

fn child(site: &'static Site, parent: &SpanRef) -> ActiveSpan {
    let start = SystemTime::now();
    let span = SpanRef {
        trace: Arc::clone(&parent.trace),
        id: ids::uuid_v7(start),
        depth: parent.depth + 1,
    };
    ActiveSpan::new(site, span, Some(parent.id), start)
}

fn root(site: &'static Site, queue: crate::TraceQueueManager) -> ActiveSpan {
    let start = SystemTime::now();
    let id = ids::uuid_v7(start);
    let trace_id = TraceId::new(ids::uuid_v7(start).hyphenated().to_string())
        .expect("a hyphenated UUID is a valid trace id");
    let trace = Arc::new(ActiveTrace::new(
        queue, trace_id, site.name, site.kind, start, id,
    ));
    ActiveSpan::new(
        site,
        SpanRef {
            trace,
            id,
            depth: 0,
        },
        None,
        start,
    )
}

impl ActiveSpan {
    fn new(site: &'static Site, span: SpanRef, parent_id: Option<Uuid>, start: SystemTime) -> Self {
        Self {
            id: span.id,
            depth: span.depth,
            slot: Current::Span(span),
            parent_id,
            level: Level::Default,
            site,
            start,
            data: None,
        }
    }

    fn data(&mut self) -> &mut SpanData {
        self.data.get_or_insert_with(Default::default)
    }

    fn extra(&mut self) -> &mut ObservationUpdate {
        &mut self.data().extra
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
        self.level = level;
        self.data().status_message = Some(message);
    }

    /// Records a failure: level ERROR, the status message from the error, and the error's
    /// type in the metadata as `error_type`.
    pub fn error(&mut self, error: ErrorInfo) {
        self.set_status(
            Level::Error,
            error
                .message
                .unwrap_or_else(|| format!("error of type {}", error.type_name)),
        );
        self.extra()
            .metadata
            .insert("error_type".into(), Value::from(error.type_name));
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
        self.level = level;
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
        self.extra().attributes.user_id = value.to_attr();
    }

    /// Sets the session.
    pub fn session_id<V: AttrValue + ?Sized>(&mut self, value: &V) {
        self.extra().attributes.session_id = value.to_attr();
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

    /// Marks the first item of a stream.
    pub(crate) fn first_item(&mut self, at: SystemTime) {
        self.extra().completion_start_time.get_or_insert(at);
    }

    /// The finished record and its trace. `None` only if the context slot was corrupted (a
    /// `ContextGuard` leaked with `mem::forget` while the call ran): the call is then lost
    /// rather than failing the caller.
    fn into_record(self, end: SystemTime) -> Option<(Arc<ActiveTrace>, SpanRecord)> {
        let Current::Span(span) = self.slot else {
            return None;
        };
        let record = SpanRecord {
            id: self.id,
            parent_id: self.parent_id,
            depth: self.depth,
            site: self.site,
            start: self.start,
            end,
            level: self.level,
            data: self.data,
        };
        Some((span.trace, record))
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
            State::Active(a) => &mut a.slot,
            State::Unsampled(slot) => slot,
            State::Done => return body(),
        };
        let swap = Swap::enter(slot);
        let result = catch_unwind(AssertUnwindSafe(body));
        drop(swap);
        match result {
            Ok(value) => value,
            Err(payload) => {
                self.panicked(&*payload);
                resume_unwind(payload)
            }
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
        if let State::Active(a) = std::mem::replace(&mut self.state, State::Done)
            && let Some((trace, record)) = a.into_record(SystemTime::now())
        {
            trace.finish(record);
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
        Some(span) => call_recorded(span, body, rec),
    }
}

#[inline(never)]
fn call_recorded<R, B, C>(mut span: Span, body: B, rec: C) -> R
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
