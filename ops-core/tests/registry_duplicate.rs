//! Two factories registered under one name: the registry refuses every lookup when it is first
//! read, naming both (its own test binary, since the registry is global).

use std::sync::Arc;

use ops_core::provider::{
    ConfigError, ConfigField, ExportError, ExportOutcome, Provider, ProviderConfig,
    ProviderFactory, RegistryError,
};
use ops_core::{QueueError, Trace};

struct Twin;

#[ops_core::async_trait]
impl Provider for Twin {
    fn name(&self) -> &str {
        "twin"
    }
    async fn export(&mut self, _: &[Arc<Trace>]) -> ExportOutcome {
        ExportOutcome::Delivered
    }
    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }
}

fn build(_: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(Twin))
}

ops_core::inventory::submit! {
    ProviderFactory::new("twin", "Twin from crate A", &[ConfigField::secret("a_key")], build)
}
ops_core::inventory::submit! {
    ProviderFactory::new("Twin", "Twin from crate B", &[], build)
}

#[test]
fn a_name_registered_twice_is_refused_naming_both() {
    for name in ["twin", "console"] {
        let err = ops_core::provider::find(name).unwrap_err();
        let RegistryError::Duplicate(dup) = &err else {
            panic!("expected a duplicate, got {err}");
        };
        let message = dup.to_string();
        assert!(
            message.contains("\"Twin from crate A\" (`twin`, keys: a_key)")
                && message.contains("\"Twin from crate B\" (`Twin`, keys: none)"),
            "{message}"
        );
    }
    // init() reports it too, instead of building a queue with either.
    let err = ops_core::builder_from_env().unwrap_err();
    assert!(matches!(err, QueueError::DuplicateProvider(_)), "{err}");
    assert!(err.to_string().contains("Twin from crate B"), "{err}");
}
