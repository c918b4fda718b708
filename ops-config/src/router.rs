//! [`OpsTraceManager`] as the queue's [`ProviderRouter`]: `TraceQueueManager::for_app(app,
//! user)` sends each app's traces to the providers its stored config enables.

use ops_core::ProviderRouter;
use ops_core::provider::{ExportError, Provider};

use crate::OpsTraceManager;

fn routing_error(e: impl std::fmt::Display) -> ExportError {
    ExportError::new("ops-config", e.to_string())
}

#[ops_core::async_trait]
impl ProviderRouter for OpsTraceManager {
    fn is_enabled_cached(&self, app_id: &str) -> Option<bool> {
        OpsTraceManager::is_enabled_cached(self, app_id)
    }

    async fn route(&self, app_id: &str) -> Result<Vec<String>, ExportError> {
        let app = self
            .providers_for_app(app_id)
            .await
            .map_err(routing_error)?;
        Ok(if app.is_active() {
            app.instance_keys()
        } else {
            Vec::new()
        })
    }

    async fn build(&self, key: &str) -> Result<Box<dyn Provider>, ExportError> {
        let app_id = key.split('/').next().unwrap_or_default();
        let app = self
            .providers_for_app(app_id)
            .await
            .map_err(routing_error)?;
        let provider = app
            .providers()
            .iter()
            .find(|p| p.instance_key() == key)
            .ok_or_else(|| routing_error(format!("{key} is no longer configured")))?;
        provider.build().map_err(routing_error)
    }
}
