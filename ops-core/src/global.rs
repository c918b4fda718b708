//! The process-wide queue that `#[traced]` roots report to, and `init()` to set it up from the
//! environment.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::provider;
use crate::queue::{FlushReport, QueueError, TraceQueueBuilder, TraceQueueManager};

/// The providers to use, comma-separated (for example `console` or `langfuse,phoenix`);
/// `none` disables tracing. Default: `console`.
pub const PROVIDER_ENV: &str = "OPS_TRACE_PROVIDER";

static GLOBAL: RwLock<Option<TraceQueueManager>> = RwLock::new(None);
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether a global queue is installed. One relaxed atomic load: what the disabled path costs.
#[inline]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The global queue, if one is installed.
pub fn global() -> Option<TraceQueueManager> {
    GLOBAL.read().expect("global lock").clone()
}

/// Installs `queue` as the global queue and returns the previous one.
pub fn set_global(queue: TraceQueueManager) -> Option<TraceQueueManager> {
    let previous = GLOBAL.write().expect("global lock").replace(queue);
    ENABLED.store(true, Ordering::Relaxed);
    previous
}

/// Removes the global queue and shuts it down, waiting at most `timeout`.
pub fn shutdown(timeout: Duration) -> FlushReport {
    let queue = GLOBAL.write().expect("global lock").take();
    ENABLED.store(false, Ordering::Relaxed);
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
/// configured from its official SDK's environment variables.
pub fn builder_from_env() -> Result<TraceQueueBuilder, QueueError> {
    let names = std::env::var(PROVIDER_ENV).unwrap_or_else(|_| "console".to_owned());
    let mut builder = TraceQueueManager::builder();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.eq_ignore_ascii_case("none") {
            continue;
        }
        let factory = provider::find(name)?;
        let built = factory.build_from_env()?.ok_or_else(|| provider::ConfigError::Build {
            provider: factory.name.to_owned(),
            message: format!(
                "selected by {PROVIDER_ENV} but its environment variables are not set; \
                 its keys are: {}",
                factory.fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
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
