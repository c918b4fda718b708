//! The inventory registry of provider factories.

use std::fmt;

use super::{ConfigError, ConfigField, Provider, ProviderConfig};

/// Reads a provider's environment variables: `Ok(None)` when they are not set, an error naming
/// a variable whose value cannot be used.
pub type EnvReader = fn() -> Result<Option<ProviderConfig>, ConfigError>;

/// An environment variable a provider reads, and the config key it sets. A factory declares
/// them ([`ProviderFactory::with_env_vars`]) so that errors can name the variable to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable, for example `LANGFUSE_HOST`.
    pub name: &'static str,
    /// The config key its value sets; `None` for a variable read for something else (such
    /// as `HOSTNAME`).
    pub key: Option<&'static str>,
}

impl EnvVar {
    /// Variable `name` sets config key `key`.
    pub const fn sets(name: &'static str, key: &'static str) -> Self {
        Self {
            name,
            key: Some(key),
        }
    }

    /// Variable `name` is read, but sets no config key.
    pub const fn other(name: &'static str) -> Self {
        Self { name, key: None }
    }
}

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
    /// The environment variables it reads, with the keys they set, in the order they are
    /// read (see [`ProviderFactory::with_env_vars`]).
    pub env_vars: &'static [EnvVar],
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
            env_vars: &[],
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

    /// Declares the environment variables the provider reads and the keys they set (list
    /// first the one that wins when several set a key). Errors of
    /// [`ProviderFactory::build_from_env`] about a key that no variable set, and the message
    /// for a provider selected but not configured, name them.
    #[must_use]
    pub const fn with_env_vars(mut self, vars: &'static [EnvVar]) -> Self {
        self.env_vars = vars;
        self
    }

    /// The declared variables that set `key`, in the order they are read.
    pub fn env_vars_for(&self, key: &str) -> Vec<&'static str> {
        self.env_vars
            .iter()
            .filter(|v| v.key == Some(key))
            .map(|v| v.name)
            .collect()
    }

    /// The declared variables that are set but blank (only whitespace): a common slip, which
    /// leaves a provider unconfigured.
    pub fn blank_env_vars(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for v in self.env_vars {
            let blank = crate::env::var(v.name)
                .ok()
                .flatten()
                .is_some_and(|value| value.trim().is_empty());
            if blank && !out.contains(&v.name) {
                out.push(v.name);
            }
        }
        out
    }

    /// What its environment variables are, for a message: each key with the variables that
    /// set it (`` `host` from LANGFUSE_BASE_URL or LANGFUSE_HOST``), required keys first, then
    /// the variables that set no key. Without declared variables, its keys.
    pub fn describe_env_vars(&self) -> String {
        if self.env_vars.is_empty() {
            let keys: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
            return format!(
                "it declares no environment variables (ProviderFactory::with_env_vars); its \
                 config keys are: {}",
                keys.join(", ")
            );
        }
        let mut keys: Vec<&'static str> = Vec::new();
        for v in self.env_vars {
            if let Some(k) = v.key
                && !keys.contains(&k)
            {
                keys.push(k);
            }
        }
        let required = |k: &str| {
            self.fields
                .iter()
                .any(|f| f.name == k && f.required && f.default.is_none())
        };
        let describe = |k: &str| {
            format!(
                "`{k}` from {}",
                super::config::either(&self.env_vars_for(k))
            )
        };
        let (must, may): (Vec<&str>, Vec<&str>) = keys.into_iter().partition(|k| required(k));
        let mut parts = Vec::new();
        if !must.is_empty() {
            parts.push(format!(
                "it needs {}",
                must.iter()
                    .map(|k| describe(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut optional: Vec<String> = may.iter().map(|k| describe(k)).collect();
        optional.extend(
            self.env_vars
                .iter()
                .filter(|v| v.key.is_none())
                .map(|v| v.name.to_owned()),
        );
        if !optional.is_empty() {
            parts.push(format!(
                "it {}reads {}",
                if must.is_empty() { "" } else { "also " },
                optional.join(", ")
            ));
        }
        parts.join("; ")
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

    /// Validates `config` and builds the provider. Unknown keys, and values with control
    /// characters (which no header, URL or name can carry), are errors naming the key for
    /// every provider, before the provider's own validation.
    pub fn build(&self, mut config: ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
        config.check_keys(self)?;
        config.check_values(self)?;
        (self.validate)(&mut config)?;
        (self.build)(&config)
    }

    /// Builds the provider from its environment variables; `Ok(None)` when they are not set.
    ///
    /// An error about a key names the environment variable too: the one its value came from
    /// ([`ConfigError::FromEnv`]) or, when no variable gave it a value, the declared ones that
    /// set it ([`ConfigError::EnvUnset`]).
    pub fn build_from_env(&self) -> Result<Option<Box<dyn Provider>>, ConfigError> {
        let Some(config) = self.env_config()? else {
            return Ok(None);
        };
        let sources: Vec<(String, String)> = config
            .env_sources()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.build(config)
            .map(Some)
            .map_err(|e| self.name_env_var(e, &sources))
    }

    /// `error` naming the variable of its key: see [`ProviderFactory::build_from_env`].
    fn name_env_var(&self, error: ConfigError, sources: &[(String, String)]) -> ConfigError {
        if !matches!(
            error,
            ConfigError::Missing { .. } | ConfigError::Invalid { .. }
        ) {
            return error;
        }
        let Some(field) = error.field().map(str::to_owned) else {
            return error;
        };
        if let Some((_, var)) = sources.iter().find(|(k, _)| *k == field) {
            return ConfigError::FromEnv {
                var: var.clone(),
                error: Box::new(error),
            };
        }
        let vars: Vec<String> = self
            .env_vars_for(&field)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if vars.is_empty() {
            return error;
        }
        let blank = self.blank_env_vars();
        let empty = vars
            .iter()
            .filter(|v| blank.contains(&v.as_str()))
            .cloned()
            .collect();
        ConfigError::EnvUnset {
            vars,
            empty,
            error: Box::new(error),
        }
    }
}

impl fmt::Debug for ProviderFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderFactory")
            .field("name", &self.name)
            .field("fields", &self.fields)
            .field("env_vars", &self.env_vars)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ProviderFactory);

/// What a binary has to do to link a provider crate's registrations, for the messages about a
/// provider that is not registered.
pub const LINK_HINT: &str = "a provider registers itself only when its crate is linked into \
    the binary, and a crate that is only a dependency is not: for ops-providers, enable the \
    provider's cargo feature and call `ops_providers::link()` once at the start of main (or \
    set up tracing with `ops_providers::init()` instead of `ops_core::init()`); for a provider \
    in another crate, add `use that_crate as _;` to the binary";

/// The registry as first read: every factory sorted by name, or the first name two factories
/// were registered under. Computed once, so every lookup agrees.
fn registry() -> &'static Result<Vec<&'static ProviderFactory>, DuplicateProvider> {
    static REGISTRY: std::sync::OnceLock<Result<Vec<&'static ProviderFactory>, DuplicateProvider>> =
        std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| check_unique(inventory::iter::<ProviderFactory>.into_iter().collect()))
}

/// `factories` sorted by name, or an error naming the first two registered under the same
/// name (names are compared ignoring case, as [`find`] looks them up).
fn check_unique(
    mut factories: Vec<&'static ProviderFactory>,
) -> Result<Vec<&'static ProviderFactory>, DuplicateProvider> {
    factories.sort_by_key(|f| f.name.to_ascii_lowercase());
    for pair in factories.windows(2) {
        if pair[0].name.eq_ignore_ascii_case(pair[1].name) {
            return Err(DuplicateProvider::new(pair[0], pair[1]));
        }
    }
    Ok(factories)
}

/// Every registered factory, sorted by name. When two factories share a name (see
/// [`DuplicateProvider`]) both are listed; [`find`] refuses every lookup.
pub fn registered() -> Vec<&'static ProviderFactory> {
    match registry() {
        Ok(all) => all.clone(),
        Err(_) => {
            let mut all: Vec<_> = inventory::iter::<ProviderFactory>.into_iter().collect();
            all.sort_by_key(|f| f.name);
            all
        }
    }
}

/// The error for a provider name nobody registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trace provider {name:?}; registered providers: {known}. {LINK_HINT}")]
pub struct UnknownProvider {
    /// The name asked for.
    pub name: String,
    /// The registered names, comma-separated.
    pub known: String,
}

/// The error for two factories registered under the same name: the registry cannot tell which
/// one an app means, so it refuses every lookup until one of them is removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "two trace providers are registered as {name:?}: {first} and {second}; a name must be \
     registered once, so remove one of them from the binary (drop the dependency or its \
     cargo feature) or register the other under another name"
)]
pub struct DuplicateProvider {
    /// The name both are registered under.
    pub name: String,
    /// The first factory: its display name and config keys.
    pub first: String,
    /// The second factory: its display name and config keys.
    pub second: String,
}

impl DuplicateProvider {
    fn new(a: &ProviderFactory, b: &ProviderFactory) -> Self {
        let describe = |f: &ProviderFactory| {
            let keys: Vec<&str> = f.fields.iter().map(|k| k.name).collect();
            format!(
                "{:?} (`{}`, keys: {})",
                f.display_name,
                f.name,
                if keys.is_empty() {
                    "none".to_owned()
                } else {
                    keys.join(", ")
                }
            )
        };
        Self {
            name: a.name.to_owned(),
            first: describe(a),
            second: describe(b),
        }
    }
}

/// Why [`find`] found no factory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Nothing is registered under the name.
    #[error(transparent)]
    Unknown(#[from] UnknownProvider),
    /// Two factories are registered under one name, so no lookup is trusted.
    #[error(transparent)]
    Duplicate(#[from] DuplicateProvider),
}

/// The factory registered under `name` (ignoring case and surrounding blanks).
///
/// The registry is checked when it is first read: if two factories are registered under one
/// name, every lookup fails with [`RegistryError::Duplicate`], naming both.
pub fn find(name: &str) -> Result<&'static ProviderFactory, RegistryError> {
    let all = registry().as_ref().map_err(|e| e.clone())?;
    let name = name.trim();
    all.iter()
        .copied()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            UnknownProvider {
                name: name.to_owned(),
                known: all.iter().map(|f| f.name).collect::<Vec<_>>().join(", "),
            }
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(_: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
        Err(ConfigError::Build {
            provider: "x".into(),
            message: "not built in tests".into(),
        })
    }

    static A: ProviderFactory = ProviderFactory::new("dup", "First", &[], build);
    static B: ProviderFactory =
        ProviderFactory::new("DUP", "Second", &[ConfigField::secret("token")], build);
    static C: ProviderFactory = ProviderFactory::new("other", "Other", &[], build);

    #[test]
    fn two_factories_with_one_name_are_refused_naming_both() {
        let err = check_unique(vec![&C, &A, &B]).unwrap_err();
        assert_eq!(err.name, "dup");
        let message = err.to_string();
        assert!(
            message.starts_with("two trace providers are registered as \"dup\": "),
            "{message}"
        );
        assert!(
            message.contains("\"First\" (`dup`, keys: none)")
                && message.contains("\"Second\" (`DUP`, keys: token)"),
            "{message}"
        );
        let names: Vec<&str> = check_unique(vec![&C, &A])
            .unwrap()
            .iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["dup", "other"]);
    }

    #[test]
    fn an_unknown_name_names_the_link_fix() {
        let err = find("no-such-provider").unwrap_err().to_string();
        assert!(err.contains("ops_providers::link()"), "{err}");
        assert!(err.contains("use that_crate as _;"), "{err}");
        assert!(err.contains("ops_providers::init()"), "{err}");
    }
}
