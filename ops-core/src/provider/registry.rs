//! The inventory registry of provider factories.

use std::fmt;

use super::{ConfigError, ConfigField, Provider, ProviderConfig};

/// Reads a provider's environment variables: `Ok(None)` when they are not set, an error naming
/// a variable whose value cannot be used.
pub type EnvReader = fn() -> Result<Option<ProviderConfig>, ConfigError>;

/// What a provider crate registers with `inventory::submit!`: its name, its config keys, and
/// how to validate a config and build the provider.
///
/// ```
/// use ops_core::provider::{ConfigField, ProviderConfig, ProviderFactory, ConfigError, Provider};
/// # use ops_core::provider::{ExportOutcome, ExportError};
/// # use ops_core::Trace; use std::sync::Arc;
/// # struct Echo;
/// # #[ops_core::async_trait]
/// # impl Provider for Echo {
/// #     fn name(&self) -> &str { "echo" }
/// #     async fn export(&mut self, _: &[Arc<Trace>]) -> ExportOutcome { ExportOutcome::Delivered }
/// #     async fn api_check(&self) -> Result<(), ExportError> { Ok(()) }
/// # }
/// fn build(_: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
///     Ok(Box::new(Echo))
/// }
/// ops_core::inventory::submit! {
///     ProviderFactory::new("echo", "Echo", &[ConfigField::secret("token")], build)
/// }
/// assert!(ops_core::provider::find("echo").is_ok());
/// ```
pub struct ProviderFactory {
    /// The name apps select it by, for example `langfuse`.
    pub name: &'static str,
    /// A human name, for example `Langfuse`.
    pub display_name: &'static str,
    /// Its config keys, secret and other.
    pub fields: &'static [ConfigField],
    /// Fills defaults and checks a config (Dify's validators). The default applies each
    /// field's default and requires the required ones.
    pub validate: fn(&mut ProviderConfig) -> Result<(), ConfigError>,
    /// Reads the official SDK's environment variables, when they are set (see
    /// [`ProviderFactory::with_env`]).
    pub from_env: fn() -> Option<ProviderConfig>,
    /// Reads the environment variables, with an error that names a variable whose value
    /// cannot be used; when set, it is used instead of `from_env` (see
    /// [`ProviderFactory::with_env_checked`]).
    pub try_from_env: Option<EnvReader>,
    /// Builds a provider from a validated config.
    pub build: fn(&ProviderConfig) -> Result<Box<dyn Provider>, ConfigError>,
}

impl ProviderFactory {
    /// A factory with the default validation and no environment variables.
    pub const fn new(
        name: &'static str,
        display_name: &'static str,
        fields: &'static [ConfigField],
        build: fn(&ProviderConfig) -> Result<Box<dyn Provider>, ConfigError>,
    ) -> Self {
        Self {
            name,
            display_name,
            fields,
            validate: ProviderConfig::apply_field_rules,
            from_env: || None,
            try_from_env: None,
            build,
        }
    }

    /// Replaces the validation.
    #[must_use]
    pub const fn with_validate(
        mut self,
        validate: fn(&mut ProviderConfig) -> Result<(), ConfigError>,
    ) -> Self {
        self.validate = validate;
        self
    }

    /// Sets how to read the official SDK's environment variables.
    #[must_use]
    pub const fn with_env(mut self, from_env: fn() -> Option<ProviderConfig>) -> Self {
        self.from_env = from_env;
        self
    }

    /// Sets how to read the environment variables, with errors: `Ok(None)` when they are not
    /// set, an error ([`ConfigError::Env`]) naming a variable that is not UTF-8 or otherwise
    /// unusable. It replaces [`ProviderFactory::with_env`].
    #[must_use]
    pub const fn with_env_checked(mut self, from_env: EnvReader) -> Self {
        self.try_from_env = Some(from_env);
        self
    }

    /// The config its environment variables give, unvalidated; `Ok(None)` when they are not
    /// set.
    pub fn env_config(&self) -> Result<Option<ProviderConfig>, ConfigError> {
        match self.try_from_env {
            Some(read) => read(),
            None => Ok((self.from_env)()),
        }
    }

    /// The names of the secret keys.
    pub fn secret_keys(&self) -> impl Iterator<Item = &'static str> {
        self.fields.iter().filter(|f| f.secret).map(|f| f.name)
    }

    /// The names of the other keys.
    pub fn other_keys(&self) -> impl Iterator<Item = &'static str> {
        self.fields.iter().filter(|f| !f.secret).map(|f| f.name)
    }

    /// Validates `config` and builds the provider.
    pub fn build(&self, mut config: ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
        config.check_keys(self)?;
        (self.validate)(&mut config)?;
        (self.build)(&config)
    }

    /// Builds the provider from its environment variables; `Ok(None)` when they are not set.
    pub fn build_from_env(&self) -> Result<Option<Box<dyn Provider>>, ConfigError> {
        self.env_config()?.map(|c| self.build(c)).transpose()
    }
}

impl fmt::Debug for ProviderFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderFactory")
            .field("name", &self.name)
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ProviderFactory);

/// Every registered factory, sorted by name.
pub fn registered() -> Vec<&'static ProviderFactory> {
    let mut all: Vec<_> = inventory::iter::<ProviderFactory>.into_iter().collect();
    all.sort_by_key(|f| f.name);
    all
}

/// The error for a provider name nobody registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown trace provider {name:?}; registered providers: {known}. A provider registers itself \
     when its crate is linked: enable its cargo feature in ops-providers, or depend on its crate"
)]
pub struct UnknownProvider {
    /// The name asked for.
    pub name: String,
    /// The registered names, comma-separated.
    pub known: String,
}

/// The factory registered under `name`.
pub fn find(name: &str) -> Result<&'static ProviderFactory, UnknownProvider> {
    let name = name.trim();
    inventory::iter::<ProviderFactory>
        .into_iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| UnknownProvider {
            name: name.to_owned(),
            known: registered()
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}
