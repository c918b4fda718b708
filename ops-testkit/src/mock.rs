//! [`MockProvider`]: an in-memory provider that keeps every trace it accepts.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use ops_core::provider::{ConfigError, ConfigField, ProviderConfig};
use ops_core::{ExportError, ExportOutcome, Observation, Provider, ProviderFactory, Trace};

/// The registry name of the mock provider.
pub const MOCK_PROVIDER: &str = "mock";
/// The config key naming the shared store a registry-built mock writes to.
pub const CHANNEL_KEY: &str = "channel";
/// The channel a registry-built mock uses when the config names none.
pub const DEFAULT_CHANNEL: &str = "default";

#[derive(Debug, Default)]
struct Store {
    traces: Vec<Arc<Trace>>,
    export_calls: usize,
    shutdown: bool,
    script: VecDeque<ExportOutcome>,
}

static CHANNELS: LazyLock<Mutex<HashMap<String, Arc<Mutex<Store>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// An in-memory [`Provider`] for tests, like OpenTelemetry's `InMemorySpanExporter`.
///
/// Clones share one store: hand a clone to a queue and read what it accepted from the other.
/// Each [`Provider::export`] call takes the next scripted outcome ([`MockProvider::with_script`])
/// or, once the script is used up, accepts the batch. Accepted traces are kept in arrival order;
/// a batch answered with `Retry` or `Fatal` is counted in [`MockProvider::export_calls`] but not
/// kept, as a platform that refused it would not have it either.
///
/// It is also registered as provider `mock`, so `ops_core::provider::find("mock")` works when
/// this crate is linked. Its config key `channel` (default `default`) names the shared store the
/// built provider writes to; read it with [`MockProvider::channel`].
///
/// ```
/// use ops_testkit::MockProvider;
/// use ops_core::{TraceQueueManager, TraceTask, Trace, TraceId, ObservationKind};
/// use std::time::Duration;
///
/// let mock = MockProvider::new();
/// let queue = TraceQueueManager::builder().provider(mock.clone()).build()?;
/// let trace = Trace::new(TraceId::generate(), ObservationKind::Span, "job", chrono::Utc::now());
/// queue.add_trace_task(TraceTask::from_trace(trace))?;
/// queue.flush(Duration::from_secs(5));
/// assert_eq!(mock.traces()[0].name, "job");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MockProvider {
    channel: Option<String>,
    store: Arc<Mutex<Store>>,
}

impl Default for MockProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = self.lock();
        f.debug_struct("MockProvider")
            .field("channel", &self.channel)
            .field("traces", &store.traces.len())
            .field("export_calls", &store.export_calls)
            .field("scripted", &store.script.len())
            .field("shutdown", &store.shutdown)
            .finish()
    }
}

impl MockProvider {
    /// A mock with a store of its own that accepts every batch.
    pub fn new() -> Self {
        Self {
            channel: None,
            store: Arc::default(),
        }
    }

    /// A mock whose next export calls return `outcomes`, in order; once they are used up it
    /// accepts every batch. Use it to drive a queue's retry and failure paths.
    ///
    /// A scripted `Partial { failed, .. }` keeps the traces of the batch that are not in
    /// `failed`.
    pub fn with_script(outcomes: impl IntoIterator<Item = ExportOutcome>) -> Self {
        let mock = Self::new();
        mock.script(outcomes);
        mock
    }

    /// The mock of the named shared store: every `MockProvider::channel("x")` in the process,
    /// and every mock the registry builds with `channel = "x"`, share one store.
    ///
    /// Channels are process-wide, so tests running in parallel should use distinct names.
    pub fn channel(name: &str) -> Self {
        let store = CHANNELS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone();
        Self {
            channel: Some(name.to_owned()),
            store,
        }
    }

    /// The channel this mock shares, if it was made with [`MockProvider::channel`].
    pub fn channel_name(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// Appends `outcomes` to the script the next export calls answer with.
    pub fn script(&self, outcomes: impl IntoIterator<Item = ExportOutcome>) {
        self.lock().script.extend(outcomes);
    }

    /// Every accepted trace, in arrival order, one entry per export. A trace delivered in
    /// several parts appears once per part; [`MockProvider::merged_traces`] joins them.
    pub fn traces(&self) -> Vec<Arc<Trace>> {
        self.lock().traces.clone()
    }

    /// The accepted traces with the parts of each trace id merged into one, in the order each
    /// id first arrived. Observations are concatenated and deduplicated by id (the latest
    /// version of an observation wins, in the place it first appeared); the trace's own fields
    /// come from its latest part. This is how a platform that upserts by id would show them.
    pub fn merged_traces(&self) -> Vec<Arc<Trace>> {
        merge(&self.lock().traces)
    }

    /// Every observation of every accepted trace, in arrival order (from the raw exports, so
    /// an observation sent in two parts appears twice).
    pub fn observations(&self) -> Vec<Observation> {
        self.lock()
            .traces
            .iter()
            .flat_map(|t| t.observations.iter().cloned())
            .collect()
    }

    /// Forgets the accepted traces, the export count and the shutdown flag. The remaining
    /// script, if any, is kept.
    pub fn reset(&self) {
        let mut store = self.lock();
        store.traces.clear();
        store.export_calls = 0;
        store.shutdown = false;
    }

    /// Whether [`Provider::shutdown`] was called (the queue calls it once, after the last
    /// export).
    pub fn is_shutdown(&self) -> bool {
        self.lock().shutdown
    }

    /// How many times [`Provider::export`] was called, whatever the outcome.
    pub fn export_calls(&self) -> usize {
        self.lock().export_calls
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A test that panicked while holding the lock must not hide the store from the others.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[ops_core::async_trait]
impl Provider for MockProvider {
    fn name(&self) -> &str {
        MOCK_PROVIDER
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        let mut store = self.lock();
        store.export_calls += 1;
        let outcome = store.script.pop_front().unwrap_or(ExportOutcome::Delivered);
        match &outcome {
            ExportOutcome::Delivered => store.traces.extend(batch.iter().cloned()),
            ExportOutcome::Partial { failed, .. } => store.traces.extend(
                batch
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !failed.contains(i))
                    .map(|(_, t)| Arc::clone(t)),
            ),
            _ => {}
        }
        outcome
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }

    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        Ok(self.channel.as_ref().map(|c| format!("mock://{c}")))
    }

    async fn shutdown(&mut self) {
        self.lock().shutdown = true;
    }
}

/// Joins the parts of each trace id; see [`MockProvider::merged_traces`].
pub(crate) fn merge(parts: &[Arc<Trace>]) -> Vec<Arc<Trace>> {
    let mut order: Vec<Arc<Trace>> = Vec::new();
    let mut index: HashMap<&ops_core::TraceId, usize> = HashMap::new();
    for part in parts {
        let Some(&i) = index.get(&part.id) else {
            index.insert(&part.id, order.len());
            order.push(Arc::clone(part));
            continue;
        };
        let mut merged = Trace::clone(part);
        merged.observations = order[i].observations.clone();
        for o in &part.observations {
            match merged.observations.iter_mut().find(|x| x.id == o.id) {
                Some(existing) => *existing = o.clone(),
                None => merged.observations.push(o.clone()),
            }
        }
        order[i] = Arc::new(merged);
    }
    order
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    let channel = config.get(CHANNEL_KEY).unwrap_or(DEFAULT_CHANNEL);
    Ok(Box::new(MockProvider::channel(channel)))
}

ops_core::inventory::submit! {
    ProviderFactory::new(
        MOCK_PROVIDER,
        "Mock (in-memory, for tests)",
        &[ConfigField::with_default(CHANNEL_KEY, DEFAULT_CHANNEL)],
        build,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::{ObservationKind, TraceId};

    fn obs(name: &str) -> Observation {
        Observation::new(ObservationKind::Span, name)
    }

    #[test]
    fn merge_joins_parts_of_one_id_and_keeps_first_arrival_order() {
        let id = TraceId::generate();
        let other = TraceId::generate();
        let a = obs("a");
        let b = obs("b");
        let mut a2 = a.clone();
        a2.output = Some(serde_json::json!("updated"));

        let mut part1 = Trace::new(id.clone(), ObservationKind::Span, "first", a.start_time);
        part1.observations = vec![a.clone()];
        let mut unrelated = Trace::new(other.clone(), ObservationKind::Span, "x", a.start_time);
        unrelated.observations = vec![obs("c")];
        let mut part2 = Trace::new(
            id.clone(),
            ObservationKind::Workflow,
            "second",
            a.start_time,
        );
        part2.observations = vec![a2.clone(), b.clone()];

        let merged = merge(&[Arc::new(part1), Arc::new(unrelated), Arc::new(part2)]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].id, id);
        assert_eq!(merged[1].id, other);
        // Trace fields from the latest part.
        assert_eq!(merged[0].name, "second");
        assert_eq!(merged[0].kind, ObservationKind::Workflow);
        // Observations deduplicated by id, the latest version in the first position.
        let names: Vec<_> = merged[0].observations.iter().map(|o| &o.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(merged[0].observations[0], a2);
    }

    #[test]
    fn channels_share_one_store_and_plain_mocks_do_not() {
        let one = MockProvider::channel("mock-unit-channels");
        let two = MockProvider::channel("mock-unit-channels");
        let lone = MockProvider::new();
        let trace = Arc::new(Trace::new(
            TraceId::generate(),
            ObservationKind::Span,
            "t",
            chrono_now(),
        ));
        one.lock().traces.push(trace);
        assert_eq!(two.traces().len(), 1);
        assert!(lone.traces().is_empty());
        two.reset();
        assert!(one.traces().is_empty());
        assert_eq!(one.channel_name(), Some("mock-unit-channels"));
        assert_eq!(lone.channel_name(), None);
    }

    fn chrono_now() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}
