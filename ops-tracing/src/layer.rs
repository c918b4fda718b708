//! The layer: a selected span's life mapped onto a detached observation.

use std::cell::RefCell;

use ops_core::context::{ContextGuard, DetachedObservation};
use ops_core::{Level, ObservationContext, ObservationKind, ObservationUpdate};
use serde_json::{Value, json};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::fields::{EventFields, Recorder, Scratch};
use crate::select::Select;

/// How many events a span keeps in its `events` metadata; past that they are counted in
/// `events_dropped`.
pub const MAX_EVENTS: usize = 32;

/// A `tracing-subscriber` [`Layer`](tracing_subscriber::Layer) that turns selected `tracing`
/// spans into ops observations, in the same trees as `#[traced]` calls.
///
/// Build it with [`layer()`](crate::layer) and add it to a registry:
/// `tracing_subscriber::registry().with(ops_tracing::layer())`.
#[derive(Debug, Clone, Default)]
pub struct OpsLayer {
    select: Select,
}

impl OpsLayer {
    /// Also takes every span whose target is `target` or one of its modules (`my_app` takes
    /// `my_app::db`, not `my_apple`).
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.select.targets.push(target.into());
        self
    }

    /// Also takes every span with this name.
    #[must_use]
    pub fn with_span_name(mut self, name: impl Into<String>) -> Self {
        self.select.names.push(name.into());
        self
    }

    /// Takes every span. Prefer targets or a per-layer filter
    /// (`tracing_subscriber::Layer::with_filter`): an app's sqlx and hyper spans rarely
    /// belong in an LLM trace.
    #[must_use]
    pub fn with_all_spans(mut self) -> Self {
        self.select.all = true;
        self
    }
}

/// What the layer keeps in a selected span's extensions.
struct SpanState {
    /// Taken when the span closes (ended in place: the registry frees the state).
    observation: Option<DetachedObservation>,
    context: ObservationContext,
    scratch: Scratch,
    /// Boxed, and only once an event came: most spans have none.
    events: Option<Box<Events>>,
}

/// The events of a span.
#[derive(Default)]
struct Events {
    kept: Vec<Value>,
    dropped: u64,
    level: Level,
    status: Option<String>,
}

/// Reads `fields` into an update of the observation (when one is needed) and into its
/// scratch; says whether they chose the kind.
fn read(
    scratch: &mut Scratch,
    fields: impl FnOnce(&mut Recorder<'_>),
) -> (Option<Box<ObservationUpdate>>, bool) {
    let mut recorder = Recorder::new(scratch);
    fields(&mut recorder);
    (recorder.update, recorder.kind_changed)
}

impl SpanState {
    fn record(&mut self, values: &Record<'_>) {
        let (update, kind_changed) = read(&mut self.scratch, |r| values.record(r));
        let Some(observation) = &mut self.observation else {
            return;
        };
        if kind_changed && let Some((_, kind)) = self.scratch.kind {
            observation.set_kind(kind);
        }
        if let Some(update) = update {
            observation.apply(*update);
        }
    }

    fn event(&mut self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let level = match *meta.level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::INFO => Level::Default,
            _ => Level::Debug,
        };
        let events = self.events.get_or_insert_with(Default::default);
        if level >= Level::Warning && level >= events.level {
            // The last of the worst events says why.
            events.level = level;
            events.status = fields
                .message
                .clone()
                .or_else(|| match fields.fields.get("error") {
                    // `#[instrument(err)]`'s event: the error, with no message.
                    Some(Value::String(error)) => Some(error.clone()),
                    _ => None,
                })
                .or_else(|| fields.error_type.clone());
        }
        if events.kept.len() >= MAX_EVENTS {
            events.dropped += 1;
            return;
        }
        let mut record = serde_json::Map::new();
        record.insert("level".into(), level.as_str().into());
        record.insert("target".into(), meta.target().into());
        if let Some(message) = fields.message {
            record.insert("message".into(), message.into());
        }
        if let Some(error_type) = fields.error_type {
            record.insert("error.type".into(), error_type.into());
        }
        if !fields.fields.is_empty() {
            record.insert("fields".into(), Value::Object(fields.fields));
        }
        events.kept.push(Value::Object(record));
    }

    /// What ending the observation needs, taken out of the state (which stays behind, emptied,
    /// for the registry to free): ended after the registry's lock on the span is let go, as
    /// ending may emit events that other layers handle by looking at the span.
    fn take(&mut self) -> Option<Ending> {
        Some(Ending {
            observation: self.observation.take()?,
            scratch: std::mem::take(&mut self.scratch),
            events: self.events.take(),
        })
    }
}

/// A closed span's observation, with what is left to write into it.
struct Ending {
    observation: DetachedObservation,
    scratch: Scratch,
    events: Option<Box<Events>>,
}

impl Ending {
    fn end(self) {
        let Ending {
            mut observation,
            mut scratch,
            events,
        } = self;
        observation.update(|update| {
            scratch.apply(update);
            let Some(events) = events else {
                return;
            };
            let Events {
                kept,
                dropped,
                level,
                status,
            } = *events;
            if !kept.is_empty() {
                update.metadata("events", kept);
            }
            if dropped > 0 {
                update.metadata(
                    "events_dropped",
                    json!({ "count": dropped, "reason": format!("a span keeps at most {MAX_EVENTS} events") }),
                );
            }
            if level >= Level::Warning {
                update.level(level);
                if let Some(status) = status {
                    update.status_message(status);
                }
            }
        });
        observation.end();
    }
}

thread_local! {
    /// The contexts of the selected spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// The context of the nearest span from `id` up that is an observation, if any.
fn context_of<S>(id: &Id, ctx: &Context<'_, S>) -> Option<ObservationContext>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ctx.span_scope(id)?.into_iter().find_map(|s| {
        s.extensions()
            .get::<SpanState>()
            .map(|st| st.context.clone())
    })
}

impl<S> tracing_subscriber::Layer<S> for OpsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !ops_core::is_enabled() {
            return;
        }
        let meta = attrs.metadata();
        if !self.select.selects(meta) {
            return;
        }
        let mut scratch = Scratch::default();
        let (update, _) = read(&mut scratch, |r| attrs.record(r));
        let kind = scratch.kind.map_or(ObservationKind::Span, |(_, k)| k);
        let explicit = attrs.parent().and_then(|parent| context_of(parent, &ctx));
        let observation = if let Some(parent) = explicit {
            DetachedObservation::start_in(&parent, meta.name(), kind)
        } else if attrs.is_root() {
            DetachedObservation::start_in(&ObservationContext::root(), meta.name(), kind)
        } else {
            // The contextual parent (or an explicit parent with no observation above it):
            // what is current on this thread, a `#[traced]` call or the innermost selected
            // span entered here.
            DetachedObservation::start(meta.name(), kind)
        };
        let Some(mut observation) = observation else {
            return;
        };
        if let Some(update) = update {
            observation.apply(*update);
        }
        let context = observation.context();
        let state = SpanState {
            observation: Some(observation),
            context,
            scratch,
            events: None,
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(state);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        // Off (no queue, no trace alive): no span holds an observation that records.
        if !ops_core::is_enabled() {
            return;
        }
        if let Some(span) = ctx.span(id)
            && let Some(state) = span.extensions_mut().get_mut::<SpanState>()
        {
            state.record(values);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // ops's own diagnostics never describe the app's spans.
        if !ops_core::is_enabled() || event.metadata().target().starts_with("ops_") {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(state) = span.extensions_mut().get_mut::<SpanState>() {
                state.event(event);
                return;
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !ops_core::is_enabled() {
            return;
        }
        let Some(context) = ctx.span(id).and_then(|s| {
            s.extensions()
                .get::<SpanState>()
                .map(|st| st.context.clone())
        }) else {
            return;
        };
        let guard = context.enter();
        let _ = ENTERED.try_with(|e| e.borrow_mut().push((id.clone(), guard)));
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        let guard = ENTERED
            .try_with(|e| {
                let mut entered = e.borrow_mut();
                // Exits are almost always innermost first; a span exited out of order is
                // still found.
                let at = entered.iter().rposition(|(i, _)| i == id)?;
                Some(entered.remove(at).1)
            })
            .ok()
            .flatten();
        // Dropped outside the borrow: leaving may hand finished observations to their trace.
        drop(guard);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !ops_core::is_enabled() {
            return;
        }
        let ending = ctx
            .span(&id)
            .and_then(|s| s.extensions_mut().get_mut::<SpanState>()?.take());
        if let Some(ending) = ending {
            ending.end();
        }
    }
}
