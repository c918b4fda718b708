//! The trace a root starts: it buffers the finished observations of every thread and task in
//! the trace, and hands them to the root's queue as one task when the root ends.

use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use uuid::Uuid;

use super::capture::Captured;
use super::clock::Anchor;
use super::mask::{self, Mask};
use super::site::Site;
use super::update::{ObservationUpdate, TraceUpdate};
use crate::model::{Level, Observation, ObservationKind, Trace, TraceAttributes, TraceId};
use crate::queue::TraceQueueManager;
use crate::task::TraceTask;

/// A trace whose buffer reaches this many finished observations is delivered in parts: the
/// buffered observations are queued as one task, with the same trace id, and the trace goes
/// on. Providers upsert by id, so the parts join up on the platform.
pub const PART_MAX_OBSERVATIONS: usize = 512;

/// A trace whose buffered observations reach this many estimated bytes (inputs and outputs
/// included) is delivered in parts too, so a trace never holds more than about this much.
pub const PART_MAX_BYTES: usize = 4 << 20;

/// What a call captured, allocated only when it captured something.
#[derive(Debug, Default)]
pub(crate) struct SpanData {
    /// Most calls have one or two parameters: those live here, not in an allocation of their
    /// own.
    pub(crate) inputs: SmallVec<[(&'static str, Captured); 2]>,
    pub(crate) output: Option<Captured>,
    pub(crate) status_message: Option<String>,
    /// Boxed, and only when set: most calls capture inputs and an output, nothing more.
    pub(crate) extra: Option<Box<ObservationUpdate>>,
}

impl SpanData {
    /// The heap it holds, itself included (it is boxed).
    fn size(&self) -> usize {
        use crate::model::size::{alloc, string};
        alloc(std::mem::size_of::<Self>())
            + if self.inputs.spilled() {
                alloc(self.inputs.capacity() * std::mem::size_of::<(&str, Captured)>())
            } else {
                0
            }
            + self.inputs.iter().map(|(_, v)| v.size()).sum::<usize>()
            + self.output.as_ref().map_or(0, Captured::size)
            + self.status_message.as_ref().map_or(0, string)
            + self.extra.as_ref().map_or(0, |e| e.size())
    }
}

/// One finished observation, with its captures not yet turned into JSON.
#[derive(Debug)]
pub(crate) struct SpanRecord {
    /// The observation's UUID (kept as an integer: aligned, so moving a record is cheap).
    pub(crate) id: u128,
    /// The parent's UUID; 0 (the nil UUID) for the root.
    pub(crate) parent_id: u128,
    pub(crate) depth: u32,
    pub(crate) level: Level,
    pub(crate) site: &'static Site,
    /// Clock ticks, turned into wall time with the trace's anchor.
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) data: Option<Box<SpanData>>,
}

impl SpanRecord {
    pub(crate) fn id(&self) -> Uuid {
        Uuid::from_u128(self.id)
    }

    /// The heap the record holds beyond itself (what it captured).
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.size())
    }

    /// The observation the record becomes. With `take`, what the observation keeps is moved
    /// out of the record; without, it is copied, and the record keeps everything it holds, to
    /// be freed by the thread that allocated it (see [`PendingTrace::build_kept`]).
    fn observation(&mut self, anchor: &Anchor, mask: Option<&dyn Mask>, take: bool) -> Observation {
        let masked = |c: &Captured| {
            let mut v = c.to_value();
            mask::apply(mask, &mut v);
            v
        };
        let mut o = Observation {
            id: self.id(),
            parent_id: (self.parent_id != 0).then(|| Uuid::from_u128(self.parent_id)),
            name: self.site.name.to_owned(),
            kind: self.site.kind,
            start_time: DateTime::<Utc>::from(anchor.time(self.start)),
            end_time: Some(DateTime::<Utc>::from(anchor.time(self.end))),
            input: None,
            output: None,
            metadata: Map::new(),
            tags: Vec::new(),
            level: self.level,
            status_message: None,
            usage: None,
            model: None,
            model_provider: None,
            model_parameters: Map::new(),
            completion_start_time: None,
            attributes: TraceAttributes::default(),
        };
        let Some(data) = self.data.as_deref_mut() else {
            return o;
        };
        if !data.inputs.is_empty() {
            // Inserted one by one: collecting into a map sorts a buffer first.
            let mut inputs = Map::new();
            for (k, v) in &data.inputs {
                inputs.insert((*k).to_owned(), v.to_value());
            }
            let mut v = Value::Object(inputs);
            mask::apply(mask, &mut v);
            o.input = Some(v);
        }
        o.output = data.output.as_ref().map(masked);
        o.status_message = grab(&mut data.status_message, take);
        let Some(e) = data.extra.as_deref_mut() else {
            return o;
        };
        if let Some(name) = grab(&mut e.name, take) {
            o.name = name;
        }
        if let Some(input) = &e.input {
            o.input = Some(masked(input));
        }
        if let Some(output) = &e.output {
            o.output = Some(masked(output));
        }
        o.metadata = grab(&mut e.metadata, take);
        o.tags = grab(&mut e.tags, take);
        if let Some(level) = e.level {
            o.level = level;
        }
        if e.status_message.is_some() {
            o.status_message = grab(&mut e.status_message, take);
        }
        o.usage = grab(&mut e.usage, take);
        o.model = grab(&mut e.model, take);
        o.model_provider = grab(&mut e.model_provider, take);
        o.model_parameters = grab(&mut e.model_parameters, take);
        o.completion_start_time = e.completion_start_time.map(DateTime::<Utc>::from);
        o.attributes = grab(&mut e.attributes, take);
        o
    }
}

/// Moves `field` out (`take`), or copies it.
fn grab<T: Clone + Default>(field: &mut T, take: bool) -> T {
    if take {
        std::mem::take(field)
    } else {
        field.clone()
    }
}

struct TraceState {
    buffer: Vec<SpanRecord>,
    bytes: usize,
    /// Clock ticks.
    root_end: Option<u64>,
    /// Boxed: large, and rarely set.
    updates: Option<Box<TraceUpdate>>,
    /// Updates made with `update_current_observation` to observations still running.
    pending: Vec<(Uuid, ObservationUpdate)>,
    /// The first user and session a call of this trace was given (`#[traced(user_id = ..)]`),
    /// for outgoing calls' baggage while the trace runs.
    observed_user: Option<String>,
    observed_session: Option<String>,
}

impl TraceState {
    fn is_full(&self) -> bool {
        self.buffer.len() >= PART_MAX_OBSERVATIONS || self.bytes >= PART_MAX_BYTES
    }

    fn new() -> Self {
        Self {
            buffer: Vec::new(),
            bytes: 0,
            root_end: None,
            updates: None,
            pending: Vec::new(),
            observed_user: None,
            observed_session: None,
        }
    }
}

/// The trace a root started, shared by every observation in it.
pub(crate) struct ActiveTrace {
    pub(crate) id: TraceId,
    queue: TraceQueueManager,
    name: &'static str,
    kind: ObservationKind,
    /// When the root started, on both clocks.
    pub(crate) anchor: Anchor,
    pub(crate) root_id: Uuid,
    /// What the service that started the trace sent, when it came from one: passed on to the
    /// next (`tracestate`, `baggage`).
    pub(crate) remote: Option<Arc<crate::propagation::RemoteContext>>,
    state: Mutex<TraceState>,
}

impl ActiveTrace {
    pub(crate) fn new(
        queue: TraceQueueManager,
        id: TraceId,
        name: &'static str,
        kind: ObservationKind,
        anchor: Anchor,
        root_id: Uuid,
        remote: Option<Arc<crate::propagation::RemoteContext>>,
    ) -> Self {
        crate::global::trace_started();
        Self {
            id,
            queue,
            name,
            kind,
            anchor,
            root_id,
            remote,
            state: Mutex::new(TraceState::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TraceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn update(&self, update: TraceUpdate) {
        let mut state = self.lock();
        match state.updates.as_mut() {
            Some(existing) => existing.merge(update),
            None => state.updates = Some(Box::new(update)),
        }
    }

    /// The user and session for outgoing calls' baggage: those set with
    /// `update_current_trace`, else the first a call of the trace was given, as the built
    /// trace takes them.
    pub(crate) fn propagated_ids(&self) -> (Option<String>, Option<String>) {
        let state = self.lock();
        let (user, session) = state.updates.as_ref().map_or((None, None), |u| {
            (
                u.attributes.user_id.as_ref(),
                u.attributes.session_id.as_ref(),
            )
        });
        (
            user.or(state.observed_user.as_ref()).cloned(),
            session.or(state.observed_session.as_ref()).cloned(),
        )
    }

    /// Notes a user or session a call of this trace was given; the first of each is kept.
    pub(crate) fn observe_ids(&self, user: Option<&str>, session: Option<&str>) {
        let mut state = self.lock();
        if let Some(user) = user
            && state.observed_user.is_none()
        {
            state.observed_user = Some(user.to_owned());
        }
        if let Some(session) = session
            && state.observed_session.is_none()
        {
            state.observed_session = Some(session.to_owned());
        }
    }

    /// Keeps an update for a running observation until it finishes.
    pub(crate) fn update_observation(&self, id: Uuid, update: ObservationUpdate) {
        let mut state = self.lock();
        match state.pending.iter_mut().find(|(i, _)| *i == id) {
            Some((_, existing)) => existing.merge(update),
            None => state.pending.push((id, update)),
        }
    }

    /// Buffers a finished observation. The buffer is delivered when the root ends, when it is
    /// full, and when the trace is dropped (the last observation or context of it is gone:
    /// observations that finish after the root are delivered then).
    pub(crate) fn finish(&self, record: SpanRecord) {
        let is_root = record.id == self.root_id.as_u128();
        let mut state = self.lock();
        if is_root {
            state.root_end = Some(record.end);
        }
        Self::buffer(&mut state, record);
        if is_root || state.is_full() {
            let part = self.take_part(&mut state);
            drop(state);
            self.deliver(part);
        }
    }

    /// Buffers observations that finished on one thread, handed over together. Leaves
    /// `records` empty, its memory kept for the thread's next ones.
    pub(crate) fn finish_many(&self, records: &mut Vec<SpanRecord>) {
        let mut state = self.lock();
        if state.buffer.capacity() == 0 {
            // Room for these and one more (the root's, usually): for most traces the only
            // allocation the buffer makes. Later hand-overs grow it as a `Vec` does.
            state
                .buffer
                .reserve_exact((records.len() + 1).min(PART_MAX_OBSERVATIONS));
        }
        let mut records = records.drain(..);
        loop {
            for record in records.by_ref() {
                Self::buffer(&mut state, record);
                if state.is_full() {
                    break;
                }
            }
            if !state.is_full() {
                return;
            }
            let part = self.take_part(&mut state);
            drop(state);
            self.deliver(part);
            state = self.lock();
        }
    }

    fn buffer(state: &mut TraceState, mut record: SpanRecord) {
        if !state.pending.is_empty()
            && let Some(at) = state
                .pending
                .iter()
                .position(|(id, _)| id.as_u128() == record.id)
        {
            let (_, update) = state.pending.swap_remove(at);
            record
                .data
                .get_or_insert_with(Default::default)
                .extra
                .get_or_insert_with(Default::default)
                .merge(update);
        }
        state.bytes += record.size();
        if state.buffer.capacity() == 0 {
            // A trace that is a single call holds one record: no room for more yet.
            state.buffer.reserve_exact(1);
        }
        state.buffer.push(record);
    }

    fn take_part(&self, state: &mut TraceState) -> PartData {
        use crate::model::size::{alloc, map_nodes};
        use std::mem::size_of;
        let records = std::mem::take(&mut state.buffer);
        let updates = state.updates.as_deref().cloned();
        // What the part holds now, and what the trace it becomes will hold beyond the captured
        // values (its observations and their names, the objects of their inputs): the queue
        // counts both, so that building the trace never takes it past its byte budget.
        let built: usize = alloc(size_of::<Trace>() + 16)
            + alloc(records.len() * size_of::<Observation>())
            + records
                .iter()
                .map(|r| {
                    let inputs = r.data.as_ref().map_or(0, |d| d.inputs.len());
                    alloc(r.site.name.len()) + map_nodes(inputs) + inputs * alloc(16)
                })
                .sum::<usize>();
        let size = std::mem::take(&mut state.bytes)
            + updates.as_ref().map_or(0, TraceUpdate::size)
            + alloc(records.capacity() * size_of::<SpanRecord>())
            + built;
        PartData {
            id: self.id.clone(),
            name: self.name,
            kind: self.kind,
            anchor: self.anchor,
            root_id: self.root_id,
            root_end: state.root_end,
            updates,
            records,
            size,
            mask: self.queue.recording_mask(),
        }
    }

    fn deliver(&self, part: PartData) {
        if part.records.is_empty() {
            return;
        }
        // A full queue drops the task and counts it; tracing never fails the caller.
        let _ = self
            .queue
            .add_trace_task(TraceTask::pending(PendingTrace(Arc::new(
                PendingInner::Records(part),
            ))));
    }
}

impl Drop for ActiveTrace {
    /// Delivers what is left: observations that finished after the root ended (in tasks that
    /// outlived it). The trace is dropped when its last observation and context are gone.
    fn drop(&mut self) {
        crate::global::trace_ended();
        let mut state = std::mem::replace(
            self.state.get_mut().unwrap_or_else(|e| e.into_inner()),
            TraceState::new(),
        );
        if !state.buffer.is_empty() {
            let part = self.take_part(&mut state);
            self.deliver(part);
        }
    }
}

/// The observations of one part of a trace, as recorded.
struct PartData {
    id: TraceId,
    name: &'static str,
    kind: ObservationKind,
    anchor: Anchor,
    root_id: Uuid,
    /// Clock ticks.
    root_end: Option<u64>,
    updates: Option<TraceUpdate>,
    records: Vec<SpanRecord>,
    size: usize,
    /// The mask in effect when the part was queued: a later change never applies to it.
    mask: Option<Arc<dyn Mask>>,
}

enum PendingInner {
    Records(PartData),
    Ready(Trace),
}

/// A trace recorded by `#[traced]` whose captured values are turned into JSON (and masked)
/// when the queue's worker preprocesses it. Serializes as the [`Trace`] it becomes.
#[derive(Clone)]
pub(crate) struct PendingTrace(Arc<PendingInner>);

impl PendingTrace {
    pub(crate) fn trace_id(&self) -> TraceId {
        match &*self.0 {
            PendingInner::Records(p) => p.id.clone(),
            PendingInner::Ready(t) => t.id.clone(),
        }
    }

    /// The app the trace is for, when it was set.
    pub(crate) fn app_id(&self) -> Option<String> {
        match &*self.0 {
            PendingInner::Records(p) => p
                .updates
                .as_ref()
                .and_then(|u| u.attributes.app_id.clone())
                .or_else(|| {
                    p.records
                        .iter()
                        .find(|r| r.id == p.root_id.as_u128())
                        .and_then(|r| r.data.as_ref()?.extra.as_ref()?.attributes.app_id.clone())
                }),
            PendingInner::Ready(t) => t.attributes.app_id.clone(),
        }
    }

    /// Whether it is a finished trace (built, masked, within the limits) rather than records.
    pub(crate) fn is_ready(&self) -> bool {
        matches!(&*self.0, PendingInner::Ready(_))
    }

    pub(crate) fn approx_size(&self) -> usize {
        match &*self.0 {
            PendingInner::Records(p) => 256 + p.size,
            PendingInner::Ready(t) => t.approx_size(),
        }
    }

    /// The trace, with every capture serialized and masked.
    /// A trace that is already built and masked (an explicit task about to be spooled).
    pub(crate) fn ready(trace: Trace) -> Self {
        PendingTrace(Arc::new(PendingInner::Ready(trace)))
    }

    pub(crate) fn into_trace(self) -> Trace {
        match Arc::try_unwrap(self.0) {
            Ok(PendingInner::Ready(trace)) => trace,
            Ok(PendingInner::Records(mut part)) => build(&mut part, true),
            Err(shared) => PendingTrace(shared).build(),
        }
    }

    /// The trace, from a copy: the task is shared (cloned), or only borrowed.
    pub(crate) fn build(&self) -> Trace {
        match &*self.0 {
            PendingInner::Ready(trace) => trace.clone(),
            PendingInner::Records(part) => build(&mut copy_part(part), true),
        }
    }

    /// The trace of recorded parts, built without freeing anything the parts hold: `None`
    /// when this is not a part, or a shared one. The queue's worker builds this way and
    /// hands the part back to be freed by the app's threads, which allocated it: with an
    /// allocator that has a lock per arena (glibc's), the worker freeing it would make them
    /// wait for each other.
    pub(crate) fn build_kept(&mut self) -> Option<Trace> {
        match Arc::get_mut(&mut self.0)? {
            PendingInner::Records(part) => Some(build(part, false)),
            PendingInner::Ready(_) => None,
        }
    }
}

/// A copy of a part, its captures turned into JSON.
fn copy_part(part: &PartData) -> PartData {
    let records = part
        .records
        .iter()
        .map(|r| SpanRecord {
            id: r.id,
            parent_id: r.parent_id,
            depth: r.depth,
            level: r.level,
            site: r.site,
            start: r.start,
            end: r.end,
            data: r.data.as_ref().map(|d| {
                Box::new(SpanData {
                    inputs: d
                        .inputs
                        .iter()
                        .map(|(k, v)| (*k, Captured::json(v.to_value())))
                        .collect(),
                    output: d.output.as_ref().map(|c| Captured::json(c.to_value())),
                    status_message: d.status_message.clone(),
                    extra: d.extra.as_deref().map(|e| Box::new(copy_update(e))),
                })
            }),
        })
        .collect();
    PartData {
        id: part.id.clone(),
        name: part.name,
        kind: part.kind,
        anchor: part.anchor,
        root_id: part.root_id,
        root_end: part.root_end,
        updates: part.updates.clone(),
        records,
        size: part.size,
        mask: part.mask.clone(),
    }
}

fn copy_update(e: &ObservationUpdate) -> ObservationUpdate {
    ObservationUpdate {
        name: e.name.clone(),
        input: e.input.as_ref().map(|c| Captured::json(c.to_value())),
        output: e.output.as_ref().map(|c| Captured::json(c.to_value())),
        metadata: e.metadata.clone(),
        tags: e.tags.clone(),
        level: e.level,
        status_message: e.status_message.clone(),
        usage: e.usage.clone(),
        model: e.model.clone(),
        model_provider: e.model_provider.clone(),
        model_parameters: e.model_parameters.clone(),
        completion_start_time: e.completion_start_time,
        attributes: e.attributes.clone(),
    }
}

/// Turns a part into the trace providers see. With `take`, what the trace keeps is moved out
/// of the part; without, it is copied, and the part keeps all it holds.
fn build(part: &mut PartData, take: bool) -> Trace {
    let mask = part.mask.as_deref();
    let mut trace = Trace::new(
        part.id.clone(),
        part.kind,
        part.name,
        DateTime::<Utc>::from(part.anchor.time(part.anchor.ticks())),
    );
    trace.end_time = part
        .root_end
        .map(|end| DateTime::<Utc>::from(part.anchor.time(end)));
    part.records.sort_by_key(|r| (r.start, r.depth));
    let anchor = part.anchor;
    trace.observations = part
        .records
        .iter_mut()
        .map(|r| r.observation(&anchor, mask, take))
        .collect();
    if let Some(root) = trace.observations.iter().find(|o| o.id == part.root_id) {
        trace.name = root.name.clone();
        trace.input = root.input.clone();
        trace.output = root.output.clone();
        trace.tags = root.tags.clone();
        trace.attributes = root.attributes.clone();
    }
    // Attributes set on any observation fill what the root left unset.
    for o in &trace.observations {
        trace.attributes = trace.attributes.or(&o.attributes);
    }
    let updates = if take {
        part.updates.take()
    } else {
        part.updates.clone()
    };
    if let Some(u) = updates {
        if let Some(name) = u.name {
            trace.name = name;
        }
        trace.attributes = u.attributes.or(&trace.attributes);
        crate::model::merge_tags(&mut trace.tags, u.tags);
        trace.metadata = u.metadata;
        let masked = |mut v: Value| {
            mask::apply(mask, &mut v);
            v
        };
        if let Some(input) = u.input {
            trace.input = Some(masked(input));
        }
        if let Some(output) = u.output {
            trace.output = Some(masked(output));
        }
    }
    trace
}

impl fmt::Debug for PendingTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            PendingInner::Records(p) => f
                .debug_struct("PendingTrace")
                .field("id", &p.id)
                .field("observations", &p.records.len())
                .finish_non_exhaustive(),
            PendingInner::Ready(t) => f.debug_tuple("PendingTrace").field(t).finish(),
        }
    }
}

impl PartialEq for PendingTrace {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.build() == other.build()
    }
}

impl Serialize for PendingTrace {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &*self.0 {
            PendingInner::Ready(trace) => trace.serialize(serializer),
            PendingInner::Records(_) => self.build().serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for PendingTrace {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Trace::deserialize(deserializer).map(|t| PendingTrace(Arc::new(PendingInner::Ready(t))))
    }
}
