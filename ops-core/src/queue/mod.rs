//! [`TraceQueueManager`]: Dify's trace queue without its stalls. Tasks are queued in memory
//! without blocking or I/O, preprocessed and batched on a worker thread the queue owns, and
//! delivered to each provider on its own lane, so one slow or failing provider never delays
//! another.

mod receipt;
mod reclaim;
pub(crate) mod settings;
mod stats;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use tokio::sync::Notify;

pub use receipt::{Receipt, Resolution};
pub use stats::{DropReason, ProviderStats, QueueStats};

use crate::context::Mask;
use crate::context::mask::MaskOverride;
use crate::limits::FieldLimits;
use crate::model::{MessageRun, TraceInfo, WorkflowNodeTraceInfo, WorkflowRun};
use crate::provider::{ConfigError, Provider};
use crate::router::ProviderRouter;
use crate::spool::{Appended, Spool, SpoolConfig, SpoolError, SpoolPos};
use crate::task::{TaskError, TraceTask};

/// Seconds between exports when the queue is not full (Dify's variable; default 5; 0.001 to
/// 3600, fractions allowed).
pub const INTERVAL_ENV: &str = "TRACE_QUEUE_MANAGER_INTERVAL";
/// Tasks per export batch (Dify's variable; default 100; a whole number from 1 to 10000000).
pub const BATCH_SIZE_ENV: &str = "TRACE_QUEUE_MANAGER_BATCH_SIZE";

/// The queue's settings. Values set in code beat the environment, which beats the defaults.
///
/// Every setting has an allowed range, given in its doc; [`TraceQueueBuilder::build`] refuses a
/// value outside it with [`QueueError::InvalidSetting`] naming the setting and its range.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueConfig {
    /// How long a task may wait for a batch to fill (default 5 s, env `TRACE_QUEUE_MANAGER_INTERVAL`;
    /// 1 ms to 1 h).
    pub interval: Duration,
    /// Tasks per batch; a full batch is exported at once (default 100, env
    /// `TRACE_QUEUE_MANAGER_BATCH_SIZE`; 1 to 10,000,000).
    pub batch_size: usize,
    /// Tasks waiting for the worker before new ones are dropped (default 65,536; 1 to
    /// 10,000,000). The queue preallocates a 32-byte slot for each. At the default, `max_bytes`
    /// binds first for any trace over 1 KiB.
    pub max_items: usize,
    /// Bytes of heap the queue's traces may hold, queued or waiting for any provider, before
    /// new tasks are dropped (default 64 MiB; 1 byte to 1 TiB); with the spool on, past it new
    /// tasks wait on disk instead. This bounds memory while a backend is down. A single task
    /// larger than this is still taken when nothing else is held.
    pub max_bytes: usize,
    /// Traces each provider may have waiting before it drops new ones (default 1,000,000: a
    /// sanity cap, as `max_items`; 1 to 10,000,000).
    pub provider_backlog: usize,
    /// Bytes of traces (estimated heap) in one export batch, at most (default 8 MiB; 1 byte
    /// to 1 GiB), so an export's request stays bounded whatever the batch size.
    pub max_batch_bytes: usize,
    /// The longest one export may take before it counts as a retryable failure (default
    /// 30 s; 1 ms to 1 h). A provider whose request timeout ([`Provider::timeout`]) is longer
    /// gets that plus a second instead.
    pub export_timeout: Duration,
    /// Failed attempts of one batch before its traces are dropped (default 60; 0 to
    /// 1,000,000).
    pub max_retries: u32,
    /// The first retry's wait; it doubles up to `max_backoff` (default 200 ms; 0 to 1 h).
    pub initial_backoff: Duration,
    /// The longest wait between retries (default 5 s; 0 to 1 h).
    pub max_backoff: Duration,
    /// How long dropping the last handle waits for delivery (default 5 s; 0 to 1 h).
    pub shutdown_timeout: Duration,
    /// The longest a batch is retried before its traces are dropped (default 300 s: Dify's
    /// budget of 60 retries 5 s apart; 0 to 24 h). Time the provider's circuit is open, or
    /// that a server asked to wait (`Retry-After`), is not counted.
    pub max_retry_time: Duration,
    /// Consecutive failed attempts without server guidance (connection errors, timeouts,
    /// 5xx without `Retry-After`) after which a provider's circuit opens (default 5; 1 to
    /// 1,000,000).
    pub breaker_threshold: u32,
    /// How long an open circuit waits before one trial export (default 30 s; 0 to 1 h).
    pub breaker_cooldown: Duration,
    /// Limits on each input, output and metadata value; larger ones are replaced by a marker
    /// with their size and a preview (default 1 MiB, depth 64; `max_bytes` 1 byte to 1 GiB,
    /// `max_depth` 1 to 1000).
    pub field_limits: FieldLimits,
    /// How long a routed provider lane may stay idle and unrouted before it is shut down
    /// (default 10 min; 1 ms to 24 h).
    pub lane_idle_timeout: Duration,
    /// The durable spool; `None` (the default) keeps tasks in memory only. Its `max_bytes` may
    /// be 1 byte to 1 PiB, `segment_bytes` 1 byte to 1 GiB, an fsync interval 1 ms to 1 h.
    pub spool: Option<SpoolConfig>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            batch_size: 100,
            max_items: 65_536,
            max_bytes: 64 << 20,
            provider_backlog: 1_000_000,
            max_batch_bytes: 8 << 20,
            export_timeout: Duration::from_secs(30),
            max_retries: 60,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            max_retry_time: Duration::from_secs(300),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            field_limits: FieldLimits::default(),
            lane_idle_timeout: Duration::from_secs(600),
            spool: None,
        }
    }
}

/// A problem building the queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// An environment variable has a value that cannot be used.
    #[error("{var}={value:?} is invalid: {expected}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// An environment variable cannot be read or its value is out of range.
    #[error(transparent)]
    Env(#[from] crate::env::EnvError),
    /// `OPS_TRACE_PROVIDER=none`: tracing is turned off, so no queue is built (see
    /// [`crate::builder_from_env`]; [`crate::init`] then installs nothing).
    #[error("tracing is turned off (OPS_TRACE_PROVIDER=none); no queue is built")]
    TracingOff,
    /// A setting in code cannot be used.
    #[error("invalid queue setting `{setting}`: {expected}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A provider could not be built.
    #[error(transparent)]
    Provider(#[from] ConfigError),
    /// A provider name is not registered.
    #[error(transparent)]
    UnknownProvider(#[from] crate::provider::UnknownProvider),
    /// Two providers are registered under one name.
    #[error(transparent)]
    DuplicateProvider(#[from] crate::provider::DuplicateProvider),
    /// The spool could not be opened.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The worker thread could not start.
    #[error("could not start the trace worker thread: {0}")]
    Worker(#[from] std::io::Error),
}

impl From<crate::provider::RegistryError> for QueueError {
    fn from(e: crate::provider::RegistryError) -> Self {
        match e {
            crate::provider::RegistryError::Unknown(e) => QueueError::UnknownProvider(e),
            crate::provider::RegistryError::Duplicate(e) => QueueError::DuplicateProvider(e),
        }
    }
}

/// Why a task was not queued. The drop is counted in [`TraceQueueManager::stats`] either way.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EnqueueError {
    /// The queue is at its item or byte limit.
    #[error("trace queue is full; the task was dropped and counted")]
    Full,
    /// The queue was shut down.
    #[error("trace queue is shut down; the task was dropped and counted")]
    ShutDown,
    /// The task could not be built.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The spool is full and its policy is to refuse new tasks.
    #[error("trace spool is full; the task was dropped and counted")]
    SpoolFull,
}

/// How [`TraceQueueManager::add_trace_task`] took a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accepted {
    /// Written to the durable spool before the call returned: it survives a crash of the
    /// process and is delivered after a restart.
    Durable,
    /// Held in memory only: delivered unless the process dies first. That is every task when
    /// the spool is off, and a task the spool could not write (full, or failing; see
    /// [`crate::spool::SpoolStats::not_spooled`]).
    MemoryOnly,
    /// Nothing was queued: tracing is off for this app ([`AppTraceQueue`]).
    Disabled,
}

impl Accepted {
    /// Whether the task survives a crash of the process.
    pub fn is_durable(self) -> bool {
        self == Accepted::Durable
    }
}

/// The queue as one app sees it: tasks are tagged with the app and go to its providers. Made
/// by [`TraceQueueManager::for_app`]. It has the queue's explicit API
/// ([`AppTraceQueue::trace_workflow_run`], [`AppTraceQueue::trace_message_run`],
/// [`AppTraceQueue::trace_info`], [`AppTraceQueue::add_trace_task`]), and may mask the app's
/// traces its own way ([`AppTraceQueue::with_mask`]).
///
/// ```
/// use ops_core::TraceQueueManager;
/// use ops_core::model::{WorkflowNodeTraceInfo, WorkflowRun};
///
/// let queue = TraceQueueManager::builder().build()?;
/// let app = queue.for_app("app-1", Some("user-1".into()));
/// let run = WorkflowRun {
///     id: "0190a4b2-0000-7000-8000-000000000001".into(),
///     status: "succeeded".into(),
///     created_at: chrono::Utc::now(),
///     ..Default::default()
/// };
/// app.trace_workflow_run(run, Vec::<WorkflowNodeTraceInfo>::new())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AppTraceQueue {
    queue: TraceQueueManager,
    app_id: String,
    user_id: Option<String>,
    enabled: bool,
    mask: MaskOverride,
}

impl AppTraceQueue {
    /// Whether the app's tracing is on (or not known to be off).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The app.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Masks this app's tasks with the default credential redaction followed by `mask`,
    /// instead of the queue's or the process's mask (see [`TraceQueueBuilder::mask`]).
    #[must_use]
    pub fn with_mask(mut self, mask: impl Mask) -> Self {
        self.mask = MaskOverride(Some(crate::context::mask::with_default(mask)));
        self
    }

    /// Masks this app's tasks with `mask` alone, without the default credential redaction.
    #[must_use]
    pub fn with_replaced_mask(mut self, mask: impl Mask) -> Self {
        self.mask = MaskOverride(Some(Arc::new(mask)));
        self
    }

    /// Queues a task for the app; returns at once, doing nothing ([`Accepted::Disabled`]), when
    /// tracing is off for it. See [`TraceQueueManager::add_trace_task`].
    pub fn add_trace_task(&self, mut task: TraceTask) -> Result<Accepted, EnqueueError> {
        if !self.enabled {
            return Ok(Accepted::Disabled);
        }
        task.set_mask_if_unset(&self.mask);
        self.queue.enqueue(
            task.with_app_id(self.app_id.clone()),
            self.user_id.clone(),
            None,
        )
    }

    /// Queues a task for the app, as [`AppTraceQueue::add_trace_task`] does, and returns a
    /// [`Receipt`] that resolves once every provider the app's trace goes to is done with it
    /// (accepted, or given up for good). A delivery tier acknowledges its source only then.
    ///
    /// The receipt resolves to `None` when the queue shuts down first, and when the task
    /// could only be kept on disk (spool on and `max_bytes` reached): it is delivered after
    /// a restart, unseen by this receipt. When tracing is off for the app, it is resolved
    /// at once, with no provider.
    pub fn add_with_receipt(&self, mut task: TraceTask) -> Result<Receipt, EnqueueError> {
        if !self.enabled {
            return Ok(Receipt::ready(Resolution::default()));
        }
        task.set_mask_if_unset(&self.mask);
        let (tracker, receipt) = receipt::Tracker::new();
        self.queue.enqueue(
            task.with_app_id(self.app_id.clone()),
            self.user_id.clone(),
            Some(Arc::new(tracker)),
        )?;
        Ok(receipt)
    }

    /// Traces a finished workflow run and its node executions for the app (Dify's
    /// `trace_workflow_run`). See [`TraceQueueManager::trace_workflow_run`].
    pub fn trace_workflow_run(
        &self,
        run: WorkflowRun,
        nodes: Vec<WorkflowNodeTraceInfo>,
    ) -> Result<Accepted, EnqueueError> {
        self.add_checked(|| TraceTask::workflow_run(run, nodes))
    }

    /// Traces a finished chat message for the app (Dify's `trace_message_run`).
    pub fn trace_message_run(&self, message: MessageRun) -> Result<Accepted, EnqueueError> {
        self.add_checked(|| TraceTask::message_run(message))
    }

    /// Traces an info record for the app: moderation, suggested questions, retrieval, tool,
    /// conversation name, prompt generation or a node execution.
    pub fn trace_info(&self, info: TraceInfo) -> Result<Accepted, EnqueueError> {
        self.add_checked(|| TraceTask::from_info(info))
    }

    /// Traces an observation tree the app built ([`TraceTask::from_trace`]).
    pub fn trace(&self, trace: crate::model::Trace) -> Result<Accepted, EnqueueError> {
        self.add_trace_task(TraceTask::from_trace(trace))
    }

    /// Delivers what is queued now; see [`TraceQueueManager::flush`].
    pub fn flush(&self, timeout: Duration) -> FlushReport {
        self.queue.flush(timeout)
    }

    /// The queue's counters; see [`TraceQueueManager::stats`].
    pub fn stats(&self) -> QueueStats {
        self.queue.stats()
    }

    /// The whole queue, for what is not per app.
    pub fn queue(&self) -> &TraceQueueManager {
        &self.queue
    }

    /// Builds the task (only when the app traces: a disabled app costs nothing) and queues
    /// it; a task that cannot be built is dropped, counted and returned as the error.
    fn add_checked(
        &self,
        task: impl FnOnce() -> Result<TraceTask, TaskError>,
    ) -> Result<Accepted, EnqueueError> {
        if !self.enabled {
            return Ok(Accepted::Disabled);
        }
        match task() {
            Ok(task) => self.add_trace_task(task),
            Err(e) => {
                self.queue.inner.shared.counters.drop(
                    DropReason::Invalid,
                    1,
                    "a task could not be built",
                );
                Err(e.into())
            }
        }
    }
}

/// What a flush or shutdown achieved, counted between its start and its return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushReport {
    /// Traces providers accepted meanwhile.
    pub delivered: u64,
    /// Traces dropped meanwhile, for any reason.
    pub dropped: u64,
    /// Traces rejected for good meanwhile.
    pub failed: u64,
    /// Traces still queued or in flight when it returned (those in the spool included).
    pub pending: u64,
    /// Traces the spool keeps on disk unresolved (pending ones, and those given up on at a
    /// shutdown): delivered later, or after a restart.
    pub spooled: u64,
    /// Whether it returned because the timeout passed.
    pub timed_out: bool,
}

/// Builds a [`TraceQueueManager`].
#[derive(Default)]
#[must_use]
pub struct TraceQueueBuilder {
    config: QueueConfig,
    interval: Option<Duration>,
    batch_size: Option<usize>,
    providers: Vec<Box<dyn Provider>>,
    router: Option<Arc<dyn ProviderRouter>>,
    mask: MaskOverride,
}

impl std::fmt::Debug for TraceQueueBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceQueueBuilder")
            .field("config", &self.config)
            .field("providers", &self.providers)
            .field("router", &self.router.is_some())
            .field("mask", &self.mask)
            .finish()
    }
}

impl TraceQueueBuilder {
    /// Sets the export interval (beats `TRACE_QUEUE_MANAGER_INTERVAL`).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Sets the batch size (beats `TRACE_QUEUE_MANAGER_BATCH_SIZE`).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    /// Sets the item and byte limits of the queue.
    pub fn max_queue(mut self, items: usize, bytes: usize) -> Self {
        self.config.max_items = items;
        self.config.max_bytes = bytes;
        self
    }

    /// Turns the durable spool on: every accepted task is written to `spool.dir` before
    /// `add_trace_task` returns, and replayed after a crash until every provider accepted it.
    pub fn spool(mut self, spool: SpoolConfig) -> Self {
        self.config.spool = Some(spool);
        self
    }

    /// Replaces every setting; `interval` and `batch_size` set here also beat the environment.
    pub fn config(mut self, config: QueueConfig) -> Self {
        self.interval = Some(config.interval);
        self.batch_size = Some(config.batch_size);
        self.config = config;
        self
    }

    /// Adds a provider. Every trace goes to every provider.
    pub fn provider(mut self, provider: impl Provider) -> Self {
        self.providers.push(Box::new(provider));
        self
    }

    /// Routes each app's traces to the providers `router` names for it (see
    /// [`TraceQueueManager::for_app`]). Providers added with [`TraceQueueBuilder::provider`]
    /// still receive every trace.
    pub fn router(mut self, router: Arc<dyn ProviderRouter>) -> Self {
        self.router = Some(router);
        self
    }

    /// Masks this queue's traces with the default credential redaction
    /// ([`RedactKeys::default`](crate::context::RedactKeys::default)) followed by `mask`,
    /// instead of the process-wide mask ([`crate::context::set_mask`]). Traces recorded by
    /// `#[traced]` into this queue and tasks handed to it are masked this way.
    pub fn mask(mut self, mask: impl Mask) -> Self {
        self.mask = MaskOverride(Some(crate::context::mask::with_default(mask)));
        self
    }

    /// Masks this queue's traces with `mask` alone: the explicit opt-out of the default
    /// credential redaction that [`TraceQueueBuilder::mask`] keeps.
    pub fn replace_mask(mut self, mask: impl Mask) -> Self {
        self.mask = MaskOverride(Some(Arc::new(mask)));
        self
    }

    /// Adds a boxed provider, as built by a [`crate::provider::ProviderFactory`].
    pub fn boxed_provider(mut self, provider: Box<dyn Provider>) -> Self {
        self.providers.push(provider);
        self
    }

    /// Starts the worker thread and returns the queue. Every setting is checked against its
    /// range first (see [`QueueConfig`]); the first one out of range is a
    /// [`QueueError::InvalidSetting`] (or [`QueueError::Env`] for an environment variable).
    pub fn build(mut self) -> Result<TraceQueueManager, QueueError> {
        self.config.interval = match self.interval {
            Some(i) => i,
            None => settings::interval_from_env()?.unwrap_or(self.config.interval),
        };
        self.config.batch_size = match self.batch_size {
            Some(b) => b,
            None => settings::batch_size_from_env()?.unwrap_or(self.config.batch_size),
        };
        settings::validate(&self.config)?;
        // Traced calls need the clock calibrated; do it here, off their path.
        crate::context::warm_up_clock();
        TraceQueueManager::start(self.config, self.providers, self.router, self.mask)
    }
}

/// What holding one trace costs beyond the trace itself: its slot in the queue, its share of
/// the byte budget, and its place in a lane or two.
pub(crate) const PER_TRACE: usize = std::mem::size_of::<Queued>()
    + crate::model::size::alloc(std::mem::size_of::<TraceTask>())
    + 160;

// A queue slot is the task's box, its size and its extras, and the slot's stamp: 32 bytes.
const _: () = assert!(std::mem::size_of::<Queued>() == 24);

/// A task waiting for the worker. Kept small: every enqueue moves one into a slot the worker
/// reads from another core.
pub(crate) struct Queued {
    /// Boxed, so that the queue's slots stay small.
    pub(crate) task: Box<TraceTask>,
    /// Bytes counted against `max_bytes` for it.
    pub(crate) size: usize,
    /// What only spooled, replayed or per-app tasks carry.
    pub(crate) extra: Option<Box<QueuedExtra>>,
}

#[derive(Default)]
pub(crate) struct QueuedExtra {
    /// Where the task is spooled.
    pub(crate) pos: Option<SpoolPos>,
    /// Lanes that already resolved it (replayed tasks).
    pub(crate) acked: Vec<String>,
    /// The user `for_app` was given, applied when the trace names none.
    pub(crate) user_id: Option<String>,
    /// Told when every lane is done with it ([`AppTraceQueue::add_with_receipt`]).
    pub(crate) tracker: Option<Arc<receipt::Tracker>>,
}

impl QueuedExtra {
    /// What a task queued through `for_app` carries, if anything.
    fn for_app(
        user_id: Option<String>,
        tracker: Option<Arc<receipt::Tracker>>,
    ) -> Option<Box<Self>> {
        (user_id.is_some() || tracker.is_some()).then(|| {
            Box::new(QueuedExtra {
                user_id,
                tracker,
                ..QueuedExtra::default()
            })
        })
    }
}

pub(crate) struct Shared {
    /// Preallocated (32 bytes a slot): the worker frees nothing the callers allocated to take
    /// a task from it, so the two never contend for the allocator.
    pub(crate) queue: ArrayQueue<Queued>,
    /// Tasks in `queue`, or taken by the worker and not handed to a lane yet.
    pub(crate) items: CachePadded<AtomicUsize>,
    pub(crate) spool: Option<Spool>,
    pub(crate) router: Option<Arc<dyn ProviderRouter>>,
    /// Bytes of heap the queue's traces hold: added by producers, adjusted by the worker once
    /// a trace is built, released when the last lane is done with it.
    pub(crate) bytes: CachePadded<AtomicUsize>,
    pub(crate) wake: Notify,
    wake_pending: CachePadded<AtomicBool>,
    /// Signalled by lanes when they run out of work, for flush and shutdown.
    pub(crate) idle: Notify,
    pub(crate) closed: AtomicBool,
    /// Set when shutdown gave up waiting for the worker: what was pending then is counted as
    /// dropped, and nothing the worker does afterwards is counted again.
    pub(crate) abandoned: AtomicBool,
    pub(crate) counters: stats::Counters,
    pub(crate) config: QueueConfig,
    pub(crate) lanes: Mutex<Vec<Arc<worker::LaneShared>>>,
    /// Recorded tasks built by the worker, to be freed by the threads that enqueue.
    pub(crate) reclaim: reclaim::Reclaim,
    /// The queue's own mask ([`TraceQueueBuilder::mask`]), if any.
    pub(crate) mask: MaskOverride,
}

struct Inner {
    shared: Arc<Shared>,
    control: tokio::sync::mpsc::UnboundedSender<worker::Control>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The trace queue: hands tasks to a worker thread that preprocesses, batches and delivers
/// them to every provider.
///
/// Cheap to clone; every clone is a handle to the same queue. Dropping the last handle flushes
/// and shuts down, waiting at most [`QueueConfig::shutdown_timeout`].
///
/// ```
/// use ops_core::{TraceQueueManager, TraceTask, Trace, TraceId, ObservationKind};
/// use std::time::Duration;
///
/// let queue = TraceQueueManager::builder().build()?;
/// let trace = Trace::new(TraceId::generate(), ObservationKind::Workflow, "workflow", chrono::Utc::now());
/// queue.add_trace_task(TraceTask::from_trace(trace))?;
/// let report = queue.flush(Duration::from_secs(1));
/// assert!(!report.timed_out);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TraceQueueManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TraceQueueManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceQueueManager")
            .field("config", &self.inner.shared.config)
            .field("queued", &self.inner.shared.items.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl TraceQueueManager {
    /// A builder with Dify's defaults.
    pub fn builder() -> TraceQueueBuilder {
        TraceQueueBuilder::default()
    }

    fn start(
        config: QueueConfig,
        providers: Vec<Box<dyn Provider>>,
        router: Option<Arc<dyn ProviderRouter>>,
        mask: MaskOverride,
    ) -> Result<Self, QueueError> {
        crate::limits::widen_capture_limits(&config.field_limits);
        let spool = match &config.spool {
            None => None,
            Some(spool_config) => Some(Spool::open(spool_config.clone())?),
        };
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(config.max_items),
            items: CachePadded::new(AtomicUsize::new(0)),
            spool,
            router,
            bytes: CachePadded::new(AtomicUsize::new(0)),
            wake: Notify::new(),
            wake_pending: CachePadded::new(AtomicBool::new(false)),
            idle: Notify::new(),
            closed: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            counters: stats::Counters::default(),
            config,
            lanes: Mutex::new(Vec::new()),
            reclaim: reclaim::Reclaim::new(),
            mask,
        });
        let (control, thread) = worker::spawn(Arc::clone(&shared), providers)?;
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                control,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Queues a task. Never blocks and never does network I/O: it is safe on any thread,
    /// inside or outside a tokio runtime. Values over the [`FieldLimits`] are cut down first,
    /// never refused. With the spool on, the task is on disk before this returns
    /// ([`Accepted::Durable`]). When the queue is full the task is dropped, counted, and
    /// `Err` says why.
    pub fn add_trace_task(&self, task: TraceTask) -> Result<Accepted, EnqueueError> {
        self.enqueue(task, None, None)
    }

    fn enqueue(
        &self,
        mut task: TraceTask,
        user_id: Option<String>,
        tracker: Option<Arc<receipt::Tracker>>,
    ) -> Result<Accepted, EnqueueError> {
        let shared = &*self.inner.shared;
        task.set_mask_if_unset(&shared.mask);
        shared.free_some();
        if shared.closed.load(Relaxed) {
            shared
                .counters
                .drop(DropReason::AfterShutdown, 1, "the queue is shut down");
            return Err(EnqueueError::ShutDown);
        }
        let limits = &shared.config.field_limits;
        let (size, cuts) = task.bound(limits);
        let mut size = size + PER_TRACE;
        if cuts > 0 {
            shared.counters.truncated.fetch_add(cuts as u64, Relaxed);
        }
        let Some(spool) = &shared.spool else {
            if !shared.reserve(size) {
                return Err(shared.refuse_full());
            }
            shared.push(Queued {
                task: Box::new(task),
                size,
                extra: QueuedExtra::for_app(user_id, tracker),
            });
            return Ok(Accepted::MemoryOnly);
        };
        // Finished (built, masked, cut to the limits) before it is written, so no unmasked
        // value reaches the disk and every record written can be read back.
        task = match task.for_spool(limits) {
            Ok((task, cuts)) => {
                shared.counters.truncated.fetch_add(cuts as u64, Relaxed);
                task
            }
            Err(e) => {
                shared
                    .counters
                    .drop(DropReason::Invalid, 1, "a task could not be preprocessed");
                return Err(e.into());
            }
        };
        size = task.approx_size() + PER_TRACE;
        let in_memory = shared.reserve(size);
        match spool.append(&task, in_memory) {
            Ok(Appended::Written { pos, durable }) => {
                if in_memory {
                    shared.push(Queued {
                        task: Box::new(task),
                        size,
                        extra: Some(Box::new(QueuedExtra {
                            pos: Some(pos),
                            acked: Vec::new(),
                            user_id,
                            tracker,
                        })),
                    });
                } else {
                    // On disk only: the worker reads it back when the queue has room.
                    shared.counters.enqueued.fetch_add(1, Relaxed);
                    shared.wake_worker();
                }
                Ok(if durable {
                    Accepted::Durable
                } else {
                    Accepted::MemoryOnly
                })
            }
            Ok(Appended::NotWritten) if in_memory => {
                shared.push(Queued {
                    task: Box::new(task),
                    size,
                    extra: QueuedExtra::for_app(user_id, tracker),
                });
                Ok(Accepted::MemoryOnly)
            }
            Ok(Appended::NotWritten) => Err(shared.refuse_full()),
            Err(e) => {
                if in_memory {
                    shared.unreserve(size);
                }
                tracing::debug!(error = %e, "ops: task not spooled");
                shared
                    .counters
                    .drop(DropReason::SpoolFull, 1, "the spool is full");
                Err(EnqueueError::SpoolFull)
            }
        }
    }

    /// A handle that sends to `app_id`'s providers, as Dify's `TraceQueueManager(app_id,
    /// user_id)` does: each task is tagged with the app (and the user, where the trace names
    /// none) and routed by the queue's [`ProviderRouter`]. When the router knows tracing is
    /// off for the app, the handle does nothing at all.
    pub fn for_app(&self, app_id: impl Into<String>, user_id: Option<String>) -> AppTraceQueue {
        let app_id = app_id.into();
        let enabled = self
            .inner
            .shared
            .router
            .as_ref()
            .is_none_or(|r| r.is_enabled_cached(&app_id) != Some(false));
        AppTraceQueue {
            queue: self.clone(),
            app_id,
            user_id,
            enabled,
            mask: MaskOverride::default(),
        }
    }

    /// Traces a finished workflow run with its node executions (Dify's `trace_workflow_run`).
    pub fn trace_workflow_run(
        &self,
        run: WorkflowRun,
        nodes: Vec<WorkflowNodeTraceInfo>,
    ) -> Result<Accepted, EnqueueError> {
        self.add_checked(TraceTask::workflow_run(run, nodes))
    }

    /// Traces a finished chat message (Dify's `trace_message_run`).
    pub fn trace_message_run(&self, message: MessageRun) -> Result<Accepted, EnqueueError> {
        self.add_checked(TraceTask::message_run(message))
    }

    /// Traces an info record: moderation, suggested questions, retrieval, tool, conversation
    /// name, prompt generation or a node execution.
    pub fn trace_info(&self, info: TraceInfo) -> Result<Accepted, EnqueueError> {
        self.add_checked(TraceTask::from_info(info))
    }

    /// The mask for traces recorded into this queue: its own, else the process-wide one.
    pub(crate) fn recording_mask(&self) -> Option<Arc<dyn Mask>> {
        self.inner.shared.mask.resolve()
    }

    fn add_checked(&self, task: Result<TraceTask, TaskError>) -> Result<Accepted, EnqueueError> {
        match task {
            Ok(task) => self.add_trace_task(task),
            Err(e) => {
                self.inner.shared.counters.drop(
                    DropReason::Invalid,
                    1,
                    "a task could not be built",
                );
                Err(e.into())
            }
        }
    }

    /// The settings in force (code, then environment, then defaults).
    pub fn config(&self) -> &QueueConfig {
        &self.inner.shared.config
    }

    /// The counters.
    pub fn stats(&self) -> QueueStats {
        let shared = &self.inner.shared;
        let lanes = shared.lanes.lock().expect("lanes lock").clone();
        let mut stats = shared
            .counters
            .snapshot(lanes.iter().map(|l| l.stats()).collect());
        stats.spool = shared.spool.as_ref().map(Spool::stats);
        stats.held_bytes = shared.bytes.load(Relaxed) as u64;
        stats
    }

    /// Tasks queued and not yet handed to the worker.
    pub fn queued(&self) -> usize {
        self.inner.shared.items.load(Relaxed)
    }

    /// Delivers everything queued before the call (what waits on disk in the spool
    /// included), waiting at most `timeout`. Never hangs: after `timeout` it returns with
    /// `timed_out` set and what is still pending.
    pub fn flush(&self, timeout: Duration) -> FlushReport {
        self.control(timeout, |reply, deadline| worker::Control::Flush {
            reply,
            deadline,
        })
    }

    /// Flushes, then shuts every provider down, waiting at most `timeout` in all. Traces still
    /// undelivered at the deadline are dropped and counted ([`DropReason::Shutdown`]), except
    /// those in the spool, which are kept for the next start (`FlushReport::spooled`). Later
    /// tasks are refused.
    pub fn shutdown(&self, timeout: Duration) -> FlushReport {
        self.inner.shutdown(timeout)
    }

    fn control(
        &self,
        timeout: Duration,
        message: impl FnOnce(mpsc::SyncSender<()>, Instant) -> worker::Control,
    ) -> FlushReport {
        self.inner.control(timeout, message).0
    }
}

impl Inner {
    /// Sends a control message and waits for the worker's answer, at most `timeout` (and a
    /// little grace). Returns the report and whether the worker answered.
    fn control(
        &self,
        timeout: Duration,
        message: impl FnOnce(mpsc::SyncSender<()>, Instant) -> worker::Control,
    ) -> (FlushReport, bool) {
        let shared = &self.shared;
        let before = shared.counters.snapshot(Vec::new());
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::sync_channel(1);
        let answered = self.control.send(message(tx, deadline)).is_ok()
            && rx
                .recv_timeout(timeout + Duration::from_millis(100))
                .is_ok();
        let (pending, spooled) = shared.pending();
        let after = shared.counters.snapshot(Vec::new());
        let report = FlushReport {
            delivered: after.exported - before.exported,
            dropped: after.dropped_total() - before.dropped_total(),
            failed: after.failed - before.failed,
            pending,
            spooled,
            timed_out: !answered || pending > 0,
        };
        (report, answered)
    }

    fn shutdown(&self, timeout: Duration) -> FlushReport {
        let already = self.shared.closed.swap(true, Relaxed);
        if already && self.thread.lock().expect("thread lock").is_none() {
            return FlushReport::default();
        }
        let (mut report, answered) = self.control(timeout, |reply, deadline| {
            worker::Control::Shutdown { reply, deadline }
        });
        let thread = self.thread.lock().expect("thread lock").take();
        if answered {
            if let Some(thread) = thread {
                let _ = thread.join();
            }
            self.shared.free_all();
        } else {
            // The worker did not answer in time (stuck in a provider, say): what is pending
            // now will not be delivered by this process. Count it, and let nothing the worker
            // still does be counted again.
            let dropped = self.shared.abandon();
            report.dropped += dropped;
            report.pending = 0;
        }
        report
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown(self.shared.config.shutdown_timeout);
    }
}

impl Shared {
    pub(crate) fn take_wake(&self) {
        self.wake_pending.store(false, Relaxed);
    }

    /// Wakes the worker to drain now.
    pub(crate) fn wake_worker(&self) {
        if !self.wake_pending.swap(true, Relaxed) {
            self.wake.notify_one();
        }
    }

    /// Takes room for a task of `size` bytes: an item slot and the bytes. A task larger than
    /// the whole budget is taken when nothing else is held, so it is never refused for its
    /// size alone.
    fn reserve(&self, size: usize) -> bool {
        if self.items.fetch_add(1, Relaxed) >= self.config.max_items {
            self.items.fetch_sub(1, Relaxed);
            return false;
        }
        let before = self.bytes.fetch_add(size, Relaxed);
        if before != 0 && before + size > self.config.max_bytes {
            self.release_bytes(size);
            self.items.fetch_sub(1, Relaxed);
            return false;
        }
        true
    }

    fn unreserve(&self, size: usize) {
        self.items.fetch_sub(1, Relaxed);
        self.release_bytes(size);
    }

    /// Queues a task room was reserved for, and wakes the worker when a batch is ready.
    fn push(&self, queued: Queued) {
        // `reserve` keeps the tasks queued or being drained within `max_items`, the queue's
        // capacity; should a slot still be missing, the task is counted as dropped.
        if let Err(queued) = self.queue.push(queued) {
            self.unreserve(queued.size);
            self.counters.drop(
                DropReason::QueueFull,
                1,
                "the queue's item limit is reached",
            );
            return;
        }
        self.counters.enqueued.fetch_add(1, Relaxed);
        // Read-only checks first: once a wake is pending, enqueue writes nothing shared.
        if !self.wake_pending.load(Relaxed)
            && self.items.load(Relaxed) >= self.config.batch_size
            && !self.wake_pending.swap(true, Relaxed)
        {
            self.wake.notify_one();
        }
    }

    /// Gives back bytes counted against `max_bytes` (never below zero).
    pub(crate) fn release_bytes(&self, size: usize) {
        let _ = self
            .bytes
            .fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(size)));
    }

    /// Adds `delta` (positive or negative) to the bytes counted against `max_bytes`.
    pub(crate) fn adjust_bytes(&self, from: usize, to: usize) {
        if to > from {
            self.bytes.fetch_add(to - from, Relaxed);
        } else {
            self.release_bytes(from - to);
        }
    }

    fn refuse_full(&self) -> EnqueueError {
        self.counters.drop(
            DropReason::QueueFull,
            1,
            "the queue's byte or item limit is reached",
        );
        EnqueueError::Full
    }

    /// Marks a spooled task as finished: no provider will take it (dropped for good).
    pub(crate) fn resolve_everywhere(&self, pos: Option<SpoolPos>) {
        if let (Some(spool), Some(pos)) = (&self.spool, pos) {
            spool.set_needed(pos, 0);
        }
    }

    /// Traces not delivered yet: in memory (queued, or waiting for a provider), and on disk
    /// only in the spool.
    pub(crate) fn pending(&self) -> (u64, u64) {
        let lanes: u64 = self
            .lanes
            .lock()
            .expect("lanes lock")
            .iter()
            .map(|l| l.pending())
            .sum();
        let (waiting, spooled) = self.spool.as_ref().map_or((0, 0), |s| {
            let stats = s.stats();
            (stats.waiting, stats.unresolved)
        });
        (self.items.load(Relaxed) as u64 + lanes + waiting, spooled)
    }

    /// Gives up on everything in memory: counts it as dropped (shutdown) and returns how
    /// many. Later counts by the worker are suppressed.
    fn abandon(&self) -> u64 {
        if self.abandoned.swap(true, Relaxed) {
            return 0;
        }
        // Queued, or taken by the worker and not handed to a lane yet.
        while self.queue.pop().is_some() {}
        let mut dropped = self.items.swap(0, Relaxed) as u64;
        for lane in self.lanes.lock().expect("lanes lock").iter() {
            dropped += lane.abandon();
        }
        if dropped > 0 {
            self.counters.drop(
                DropReason::Shutdown,
                dropped,
                "shutdown's timeout passed while the worker was busy",
            );
        }
        dropped
    }
}
