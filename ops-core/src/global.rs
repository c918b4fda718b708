//! The process-wide queue that `#[traced]` roots report to, and `init()` to set it up from the
//! environment.

use std::cell::RefCell;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::provider;
use crate::queue::{FlushReport, QueueError, TraceQueueBuilder, TraceQueueManager};

/// The providers to use, comma-separated (for example `console` or `langfuse,phoenix`);
/// `none` disables tracing. Default: `console`.
pub const PROVIDER_ENV: &str = "OPS_TRACE_PROVIDER";

static GLOBAL: RwLock<Option<TraceQueueManager>> = RwLock::new(None);
static GLOBAL_SET: AtomicBool = AtomicBool::new(false);
/// Installed global queue (1) plus active scoped defaults: zero means tracing is off everywhere.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_DEFAULT: RefCell<Vec<TraceQueueManager>> = const { RefCell::new(Vec::new()) };
}

tokio::task_local! {
    static TASK_DEFAULT: TraceQueueManager;
}

/// Whether anything could record a trace: a global queue, a scoped default anywhere in the
/// process, or a trace still alive (a task spawned in a scope that has since ended keeps
/// recording into its trace). One relaxed atomic load: this is all the disabled path costs.
#[inline]
pub fn is_enabled() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

/// Counts a trace that started recording (see [`is_enabled`]).
pub(crate) fn trace_started() {
    ACTIVE.fetch_add(1, Ordering::Relaxed);
}

/// Counts a trace that stopped recording.
pub(crate) fn trace_ended() {
    ACTIVE.fetch_sub(1, Ordering::Relaxed);
}

/// The queue new traces on this thread or task go to: the task's scoped default
/// ([`scope_default`]), else the thread's ([`set_default`]), else the global one.
pub fn current_queue() -> Option<TraceQueueManager> {
    if !is_enabled() {
        return None;
    }
    if let Ok(queue) = TASK_DEFAULT.try_with(TraceQueueManager::clone) {
        return Some(queue);
    }
    if let Some(queue) = THREAD_DEFAULT.with(|d| d.borrow().last().cloned()) {
        return Some(queue);
    }
    global()
}

/// Restores the previous default when dropped. See [`set_default`].
#[derive(Debug)]
#[must_use = "the default is removed when the guard is dropped"]
pub struct DefaultGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        THREAD_DEFAULT.with(|d| d.borrow_mut().pop());
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Makes `queue` the default for this thread until the guard is dropped, like
/// `tracing::subscriber::set_default`. Tests use it to capture traces without touching the
/// global queue, so they can run in parallel.
pub fn set_default(queue: TraceQueueManager) -> DefaultGuard {
    THREAD_DEFAULT.with(|d| d.borrow_mut().push(queue));
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    DefaultGuard {
        _not_send: std::marker::PhantomData,
    }
}

/// Runs `f` with `queue` as this thread's default.
pub fn with_default<R>(queue: TraceQueueManager, f: impl FnOnce() -> R) -> R {
    let _guard = set_default(queue);
    f()
}

/// Runs `future` with `queue` as its default, on whatever thread polls it (a task-local).
pub async fn scope_default<F: std::future::Future>(
    queue: TraceQueueManager,
    future: F,
) -> F::Output {
    struct Active;
    impl Drop for Active {
        fn drop(&mut self) {
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    let _active = Active;
    TASK_DEFAULT.scope(queue, future).await
}

/// The global queue, if one is installed.
pub fn global() -> Option<TraceQueueManager> {
    GLOBAL.read().expect("global lock").clone()
}

/// Installs `queue` as the global queue and returns the previous one.
pub fn set_global(queue: TraceQueueManager) -> Option<TraceQueueManager> {
    let previous = GLOBAL.write().expect("global lock").replace(queue);
    if !GLOBAL_SET.swap(true, Ordering::Relaxed) {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
    }
    previous
}

/// Removes the global queue and shuts it down, waiting at most `timeout`.
pub fn shutdown(timeout: Duration) -> FlushReport {
    let queue = GLOBAL.write().expect("global lock").take();
    if GLOBAL_SET.swap(false, Ordering::Relaxed) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
    queue.map(|q| q.shutdown(timeout)).unwrap_or_default()
}

/// Keeps the global queue alive; dropping it flushes and shuts the queue down.
#[derive(Debug)]
#[must_use = "dropping the guard shuts tracing down at once"]
pub struct TracingGuard {
    timeout: Duration,
}

impl TracingGuard {
    /// The global queue.
    pub fn queue(&self) -> Option<TraceQueueManager> {
        global()
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        shutdown(self.timeout);
    }
}

/// A queue builder with the providers named by `OPS_TRACE_PROVIDER` (default `console`), each
/// configured from its official SDK's environment variables, and the durable spool when
/// `OPS_TRACE_SPOOL_DIR` is set.
pub fn builder_from_env() -> Result<TraceQueueBuilder, QueueError> {
    let names = std::env::var(PROVIDER_ENV).unwrap_or_else(|_| "console".to_owned());
    let mut builder = TraceQueueManager::builder();
    if let Some(spool) = crate::spool::SpoolConfig::from_env()? {
        builder = builder.spool(spool);
    }
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.eq_ignore_ascii_case("none") {
            continue;
        }
        let factory = provider::find(name)?;
        let built = factory
            .build_from_env()?
            .ok_or_else(|| provider::ConfigError::Build {
                provider: factory.name.to_owned(),
                message: format!(
                    "selected by {PROVIDER_ENV} but its environment variables are not set; \
                 its keys are: {}",
                    factory
                        .fields
                        .iter()
                        .map(|f| f.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        builder = builder.boxed_provider(built);
    }
    Ok(builder)
}

/// Sets up tracing from the environment and installs the global queue.
///
/// Providers come from `OPS_TRACE_PROVIDER` (default `console`, the embedded provider that
/// prints trees to stderr; `OPS_TRACE_FILE` adds a JSON lines file). Keep the guard for the
/// life of the program: dropping it delivers what is queued, waiting at most 5 s.
///
/// ```no_run
/// let _guard = ops_core::init()?;
/// # Ok::<(), ops_core::QueueError>(())
/// ```
pub fn init() -> Result<TracingGuard, QueueError> {
    let queue = builder_from_env()?.build()?;
    let timeout = Duration::from_secs(5);
    set_global(queue);
    Ok(TracingGuard { timeout })
}
