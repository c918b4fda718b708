//! Per-app routing: which provider instances an app's traces go to. Implemented by the config
//! manager (ops-config's `OpsTraceManager`); the queue asks it on its worker.

use crate::provider::{ExportError, Provider};

/// Routes each app's traces to the provider instances its config names.
///
/// The queue calls [`ProviderRouter::route`] on its worker for each app it sees in a drain, and
/// [`ProviderRouter::build`] once per new instance key; a lane (with its own retry loop and
/// backlog) serves each key until it has been idle and unrouted for
/// [`crate::QueueConfig::lane_idle_timeout`]. A key names one configured instance and must
/// change when its config changes (for example `"{app}/{provider}/{config version}"`), so a
/// config change takes effect on the next drain.
#[async_trait::async_trait]
pub trait ProviderRouter: Send + Sync + 'static {
    /// Whether the app traces, from an in-memory cache and without I/O. `Some(false)` makes
    /// [`crate::AppTraceQueue::add_trace_task`] return at once; `None` means "not known yet"
    /// and the task is queued and routed on the worker.
    fn is_enabled_cached(&self, app_id: &str) -> Option<bool> {
        let _ = app_id;
        None
    }

    /// The instance keys of the app's providers; empty when tracing is off for the app.
    async fn route(&self, app_id: &str) -> Result<Vec<String>, ExportError>;

    /// Builds the provider for an instance key returned by [`ProviderRouter::route`].
    async fn build(&self, key: &str) -> Result<Box<dyn Provider>, ExportError>;
}
