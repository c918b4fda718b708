//! [`OpsTraceManager`]: per-app provider configs, checked, encrypted and cached.
//!
//! # Model
//!
//! - An app has a tracing switch and any number of provider configs (Dify allows one). Each
//!   config has its own switch; the app's *active providers* are its enabled configs while the
//!   app's switch is on.
//! - A config's keys come from the provider registry (`ops_core::provider`): secret keys are
//!   encrypted with the app's tenant key, the others are stored as given after the provider's
//!   validation (defaults, URL rules, project names, integer ids). Errors name the field.
//! - Saving runs the provider's `api_check` first (unless told not to): bad credentials give
//!   [`Error::CheckFailed`] and nothing is saved.
//!
//! # Cache and routing
//!
//! [`OpsTraceManager::providers_for_app`] loads an app once (one store read, decryption,
//! validation, provider construction) and caches the result; every change made through the
//! manager invalidates that app's entry (Dify's cache is never invalidated). Entries also
//! expire after a TTL (default 30 s; [`OpsTraceManager::with_cache_ttl`]) so changes made by
//! another instance sharing the database are picked up.
//!
//! The hot path asks [`OpsTraceManager::is_enabled_cached`]: a read lock and a hash lookup, no
//! I/O, no allocation. `Some(false)` means tracing is off for the app and nothing else needs
//! to happen; `None` means the app is not cached (or its entry expired), and the caller loads
//! it with [`OpsTraceManager::providers_for`] off the hot path.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ops_core::provider::{ConfigError, ProviderConfig, ProviderFactory, Redactor};
use ops_core::{ExportError, ExportOutcome, Provider, Trace};
use sha2::{Digest, Sha256};

use crate::crypto::{Keyring, SecretContext, key_version_of};
use crate::obfuscate::{SecretUpdate, merge_secret, obfuscate};
use crate::store::{ConfigStore, StoredConfig};
use crate::{Error, store};

/// The default time a cached app stays fresh.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
/// The default time limit of a credentials check.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(15);
/// The cache is cleared when it holds this many apps, so looking up arbitrary app ids cannot
/// grow it without bound.
pub const MAX_CACHED_APPS: usize = 100_000;

/// A change to a provider config: values by key. A key left out keeps its stored value; an
/// empty value clears it; a secret sent back in its obfuscated form keeps the stored secret.
/// Values never appear in `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConfigUpdate {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for ConfigUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl ConfigUpdate {
    /// An empty update.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`.
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Clears `key`.
    #[must_use]
    pub fn clear(mut self, key: impl Into<String>) -> Self {
        self.insert(key, "");
        self
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values
            .insert(key.into().trim().to_owned(), value.into());
    }

    /// The value sent for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The keys sent.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Whether nothing is sent.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The provider's registry name.
    pub provider: String,
    /// The config's new version.
    pub version: i64,
    /// Whether the config was created (rather than updated).
    pub created: bool,
    /// Whether the credentials were checked.
    pub checked: bool,
    /// The platform's project id, when the check found one.
    pub project_key: Option<String>,
    /// Where to see the traces, when the check found it.
    pub project_url: Option<String>,
}

/// What a credentials check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The provider's registry name.
    pub provider: String,
    /// The platform's project id, where it has one.
    pub project_key: Option<String>,
    /// Where to see the traces, where there is such a page.
    pub project_url: Option<String>,
    /// Why the project key or URL could not be fetched (the credentials did pass).
    pub project_error: Option<String>,
}

/// One provider of an app, as listed by [`OpsTraceManager::app_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderStatus {
    /// The provider's registry name.
    pub provider: String,
    /// Whether it is in the app's provider list.
    pub enabled: bool,
    /// Its config version.
    pub version: i64,
}

/// An app's tracing state (Dify's `get_app_tracing_config`, with several providers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStatus {
    /// The app.
    pub app_id: String,
    /// The owning tenant, once the app has a stored row.
    pub tenant_id: Option<String>,
    /// The app's switch.
    pub enabled: bool,
    /// Every configured provider.
    pub providers: Vec<ProviderStatus>,
}

impl AppStatus {
    /// The providers traces go to: the enabled ones, while the app is enabled.
    pub fn active_providers(&self) -> Vec<&str> {
        if !self.enabled {
            return Vec::new();
        }
        self.providers
            .iter()
            .filter(|p| p.enabled)
            .map(|p| p.provider.as_str())
            .collect()
    }
}

/// A provider config for display: secrets obfuscated with Dify's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigView {
    /// The app.
    pub app_id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The provider's registry name.
    pub provider: String,
    /// Whether it is in the app's provider list.
    pub enabled: bool,
    /// Every stored key; secret values obfuscated.
    pub values: BTreeMap<String, String>,
    /// Which keys are secret.
    pub secret_keys: Vec<String>,
    /// The config version.
    pub version: i64,
    /// The key version of each stored secret.
    pub key_versions: BTreeMap<String, u32>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// One built provider of an app, shared from the cache.
pub struct AppProvider {
    name: String,
    key: String,
    version: i64,
    factory: &'static ProviderFactory,
    config: ProviderConfig,
    instance: Arc<dyn Provider>,
    redactor: Redactor,
}

impl fmt::Debug for AppProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppProvider")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppProvider {
    /// The provider's registry name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A key that is stable while the config is unchanged and different after any change
    /// (`<app>/<provider>#<version>-<fingerprint>`): a queue keeps one lane per key and
    /// replaces a lane when its app's keys change.
    pub fn instance_key(&self) -> &str {
        &self.key
    }

    /// The config version.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The cached instance, for checks, project key and project URL.
    pub fn provider(&self) -> Arc<dyn Provider> {
        Arc::clone(&self.instance)
    }

    /// A new instance of the same config, owned by the caller (a queue lane exports through
    /// its own instance). Its errors, and so the queue's `last_error`, come without the
    /// config's secrets.
    pub fn build(&self) -> Result<Box<dyn Provider>, ConfigError> {
        let instance = self.factory.build(self.config.clone())?;
        Ok(Box::new(Redacting::new(instance, self.redactor.clone())))
    }
}

/// An app's active providers, built: what [`OpsTraceManager::providers_for_app`] caches.
#[derive(Debug)]
pub struct AppProviders {
    app_id: String,
    tenant_id: Option<String>,
    enabled: bool,
    providers: Vec<AppProvider>,
    errors: Vec<(String, Error)>,
}

impl AppProviders {
    /// The app.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The owning tenant, once the app has a stored row.
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    /// Whether traces of the app go anywhere: the app is enabled and at least one of its
    /// providers was built.
    pub fn is_active(&self) -> bool {
        self.enabled && !self.providers.is_empty()
    }

    /// The built providers (empty while the app is disabled).
    pub fn providers(&self) -> &[AppProvider] {
        &self.providers
    }

    /// The enabled providers that could not be loaded (decryption, validation or
    /// construction failed), with why. They are left out of [`AppProviders::providers`].
    pub fn errors(&self) -> &[(String, Error)] {
        &self.errors
    }

    /// The instance keys of the built providers.
    pub fn instance_keys(&self) -> Vec<String> {
        self.providers.iter().map(|p| p.key.clone()).collect()
    }
}

/// What [`OpsTraceManager::rotate_keys`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// The key version every secret is now sealed with.
    pub current_version: u32,
    /// Secrets re-encrypted, by the key version they had.
    pub resealed: BTreeMap<u32, usize>,
    /// Secrets already under the current key.
    pub already_current: usize,
    /// Config rows rewritten.
    pub configs_updated: usize,
    /// Configs that could not be rotated. They keep their old ciphertexts, so the old key
    /// version must stay until a later rotation succeeds.
    pub failed: Vec<RotationFailure>,
}

/// A config [`OpsTraceManager::rotate_keys`] could not re-encrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationFailure {
    /// The app.
    pub app_id: String,
    /// The provider.
    pub provider: String,
    /// Whose failure it is.
    pub cause: RotationCause,
    /// What went wrong.
    pub message: String,
}

/// Why a config could not be re-encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationCause {
    /// A secret does not decrypt with the keys given.
    Key,
    /// The store refused the rewrite (a concurrent change, or it failed).
    Store,
}

struct CachedApp {
    loaded: Instant,
    state: Arc<AppProviders>,
}

/// Per-app tracing configs: stores them encrypted, checks credentials before saving, and hands
/// out each app's providers from a cache that every change invalidates.
pub struct OpsTraceManager {
    store: Arc<dyn ConfigStore>,
    keys: Option<Keyring>,
    cache: RwLock<HashMap<String, CachedApp>>,
    generation: AtomicU64,
    ttl: Option<Duration>,
    check_timeout: Duration,
}

impl fmt::Debug for OpsTraceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpsTraceManager")
            .field("store", &self.store)
            .field("keys", &self.keys)
            .field("cached_apps", &self.read_cache().len())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The characters an app or tenant id may hold: ASCII letters, digits, `_`, `-` and `.`,
/// starting with a letter or a digit, at most [`ID_MAX_CHARS`] of them (a UUID, `my-app`,
/// `acme.prod`). Nothing else, so an id is never a path (`../../etc`), never has spaces and
/// is never read as a command-line flag.
pub const ID_CHARSET: &str =
    "ASCII letters, digits, `_`, `-` and `.`, starting with a letter or a digit";

/// The longest app or tenant id, in characters.
pub const ID_MAX_CHARS: usize = 128;

/// Checks an app id against [`ID_CHARSET`] and [`ID_MAX_CHARS`]; the error names the id
/// and what is wrong with it.
pub fn validate_app_id(value: &str) -> Result<(), Error> {
    validate_id("app id", value)
}

/// Checks a tenant id against [`ID_CHARSET`] and [`ID_MAX_CHARS`]; the error names the id
/// and what is wrong with it.
pub fn validate_tenant_id(value: &str) -> Result<(), Error> {
    validate_id("tenant id", value)
}

fn validate_id(what: &'static str, value: &str) -> Result<(), Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let reason = if value.is_empty() {
        "it is empty".to_owned()
    } else if value.chars().count() > ID_MAX_CHARS {
        format!("it is longer than {ID_MAX_CHARS} characters")
    } else if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        let bad = match bad {
            ' ' => "a space".to_owned(),
            c if c.is_control() => "a control character".to_owned(),
            c => format!("{c:?}"),
        };
        format!("it contains {bad}; an id may hold only {ID_CHARSET}")
    } else if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        format!("it does not start with a letter or a digit; an id may hold only {ID_CHARSET}")
    } else {
        return Ok(());
    };
    Err(Error::InvalidId {
        what,
        value: value.chars().take(80).collect(),
        reason,
    })
}

fn fingerprint(config: &StoredConfig) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in config.plain.iter().chain(config.sealed.iter()) {
        for part in [k, v] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn instance_key(config: &StoredConfig) -> String {
    format!(
        "{}/{}#{}-{}",
        config.app_id,
        config.provider,
        config.version,
        fingerprint(config)
    )
}

impl OpsTraceManager {
    /// A manager over `store`, encrypting with `keys`.
    pub fn new(store: Arc<dyn ConfigStore>, keys: Keyring) -> Self {
        Self::with_keys(store, Some(keys))
    }

    /// A manager that holds no key: it can switch tracing on and off, list and delete
    /// configs, but every operation that reads or writes a secret fails with
    /// [`crate::KeyError::Missing`] (and apps whose providers have secrets load without
    /// them). For tools that must work when the key is not at hand.
    pub fn without_keys(store: Arc<dyn ConfigStore>) -> Self {
        Self::with_keys(store, None)
    }

    fn with_keys(store: Arc<dyn ConfigStore>, keys: Option<Keyring>) -> Self {
        Self {
            store,
            keys,
            cache: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            ttl: Some(DEFAULT_CACHE_TTL),
            check_timeout: DEFAULT_CHECK_TIMEOUT,
        }
    }

    /// A manager over the store named by the environment (`OPS_CONFIG_DATABASE_URL` or
    /// `OPS_CONFIG_DB`) with the key from `OPS_ENCRYPTION_KEY` or `OPS_ENCRYPTION_KEY_FILE`.
    pub async fn from_env() -> Result<Self, Error> {
        let keys = Keyring::from_env()?;
        let store = store::connect_from_env().await?;
        Ok(Self::new(store, keys))
    }

    /// Sets how long a cached app stays fresh; `None` keeps it until a change made through
    /// this manager (right for a single instance).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the time limit of each credentials check and project lookup.
    #[must_use]
    pub fn with_check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ConfigStore> {
        &self.store
    }

    /// The keyring, unless made with [`OpsTraceManager::without_keys`].
    pub fn keyring(&self) -> Option<&Keyring> {
        self.keys.as_ref()
    }

    fn keys(&self) -> Result<&Keyring, Error> {
        self.keys
            .as_ref()
            .ok_or(Error::Key(crate::KeyError::Missing))
    }

    // ---- reading -------------------------------------------------------------------------

    /// The switch and providers of `tenant_id`'s app (Dify's `get_app_tracing_config`; an
    /// unknown app is disabled with no providers). Another tenant's app is an
    /// [`Error::WrongTenant`].
    pub async fn app_status(&self, tenant_id: &str, app_id: &str) -> Result<AppStatus, Error> {
        let app = self.check_tenant(tenant_id, app_id).await?;
        let configs = self.store.configs(tenant_id, app_id).await?;
        Ok(AppStatus {
            app_id: app_id.to_owned(),
            tenant_id: app.as_ref().map(|a| a.tenant_id.clone()),
            enabled: app.is_some_and(|a| a.enabled),
            providers: configs
                .into_iter()
                .map(|c| ProviderStatus {
                    provider: c.provider,
                    enabled: c.enabled,
                    version: c.version,
                })
                .collect(),
        })
    }

    /// The `provider` config of `tenant_id`'s app for display, secrets obfuscated; `None` if
    /// there is none (Dify's `has_not_configured`). Another tenant's app is an
    /// [`Error::WrongTenant`].
    pub async fn config_view(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
    ) -> Result<Option<ConfigView>, Error> {
        self.check_tenant(tenant_id, app_id).await?;
        let factory = ops_core::provider::find(provider)?;
        let Some(stored) = self.store.config(tenant_id, app_id, factory.name).await? else {
            return Ok(None);
        };
        let mut values = stored.plain.clone();
        let mut key_versions = BTreeMap::new();
        for (field, sealed) in &stored.sealed {
            let plain = self.keys()?.open(&context(&stored, field), sealed)?;
            values.insert(field.clone(), obfuscate(&plain));
            if let Some(v) = key_version_of(sealed) {
                key_versions.insert(field.clone(), v);
            }
        }
        Ok(Some(ConfigView {
            app_id: stored.app_id,
            tenant_id: stored.tenant_id,
            provider: stored.provider,
            enabled: stored.enabled,
            values,
            secret_keys: factory.secret_keys().map(str::to_owned).collect(),
            version: stored.version,
            key_versions,
            updated_at: stored.updated_at,
        }))
    }

    /// The `provider` config of `tenant_id`'s app, decrypted and validated (Dify's
    /// `get_decrypted_tracing_config`); `None` if there is none. Another tenant's app is an
    /// [`Error::WrongTenant`].
    pub async fn decrypted_config(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
    ) -> Result<Option<ProviderConfig>, Error> {
        self.check_tenant(tenant_id, app_id).await?;
        let factory = ops_core::provider::find(provider)?;
        match self.store.config(tenant_id, app_id, factory.name).await? {
            Some(stored) => Ok(Some(self.decrypt(factory, &stored)?)),
            None => Ok(None),
        }
    }

    fn decrypt(
        &self,
        factory: &ProviderFactory,
        stored: &StoredConfig,
    ) -> Result<ProviderConfig, Error> {
        let mut config = ProviderConfig::new(factory.name);
        for (k, v) in &stored.plain {
            config.set(k.clone(), v.clone());
        }
        for (field, sealed) in &stored.sealed {
            let plain = self.keys()?.open(&context(stored, field), sealed)?;
            config.set(field.clone(), plain.as_str());
        }
        (factory.validate)(&mut config)?;
        Ok(config)
    }

    // ---- writing -------------------------------------------------------------------------

    /// Checks the ids and that the app, if it has a row, is `tenant_id`'s; returns the row.
    /// Every read and write of an app's configs goes through it (and the store's SQL checks
    /// the tenant again).
    async fn check_tenant(
        &self,
        tenant_id: &str,
        app_id: &str,
    ) -> Result<Option<crate::store::AppTracing>, Error> {
        validate_id("tenant id", tenant_id)?;
        validate_id("app id", app_id)?;
        match self.store.app(app_id).await? {
            Some(app) if app.tenant_id != tenant_id => Err(Error::WrongTenant {
                app_id: app_id.to_owned(),
                tenant_id: tenant_id.to_owned(),
            }),
            app => Ok(app),
        }
    }

    /// Creates or updates the app's `provider` config (Dify's `POST`/`PATCH trace-config`).
    ///
    /// `update` is merged into the stored config: keys left out keep their values, empty
    /// values clear, and a secret sent back obfuscated keeps the stored secret — or, when
    /// none is stored, fails with [`Error::MaskedWithoutStored`]. The merged config is
    /// validated by the provider (errors name the field) and, when `check` is true, its
    /// credentials are checked with the provider's `api_check`; any failure saves nothing.
    /// Secrets are encrypted for the tenant, app, provider and field. A new config starts
    /// disabled ([`OpsTraceManager::set_enabled`] adds it to the app's providers). The app's
    /// cache entry is invalidated.
    pub async fn save_config(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
        update: &ConfigUpdate,
        check: bool,
    ) -> Result<Saved, Error> {
        self.check_tenant(tenant_id, app_id).await?;
        let factory = ops_core::provider::find(provider)?;
        if factory.secret_keys().next().is_some() {
            self.keys()?;
        }
        if let Some(unknown) = update
            .keys()
            .find(|k| !factory.fields.iter().any(|f| f.name == *k))
        {
            return Err(ConfigError::UnknownField {
                provider: factory.name.to_owned(),
                field: unknown.to_owned(),
                known: factory
                    .fields
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        }
        let stored = self.store.config(tenant_id, app_id, factory.name).await?;
        let current = match &stored {
            Some(s) => Some(self.decrypt_raw(s)?),
            None => None,
        };
        let mut config = ProviderConfig::new(factory.name);
        for field in factory.fields {
            let old = current
                .as_ref()
                .and_then(|c| c.get(field.name))
                .map(String::as_str);
            let new = update.get(field.name);
            let value = if field.secret {
                match merge_secret(factory.name, field.name, new, old)? {
                    SecretUpdate::Keep => old.map(str::to_owned),
                    SecretUpdate::Replace(v) => Some(v),
                    SecretUpdate::Clear => None,
                }
            } else {
                match new {
                    Some(v) if v.trim().is_empty() => None,
                    Some(v) => Some(v.to_owned()),
                    None => old.map(str::to_owned),
                }
            };
            if let Some(value) = value {
                config.set(field.name, value);
            }
        }
        (factory.validate)(&mut config)?;

        let report = if check {
            Some(
                self.check_trace_config(factory.name, config.clone())
                    .await?,
            )
        } else {
            // Still make sure the provider can be built from it.
            factory.build(config.clone())?;
            None
        };

        let mut row = StoredConfig {
            app_id: app_id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            provider: factory.name.to_owned(),
            enabled: stored.as_ref().is_some_and(|s| s.enabled),
            plain: BTreeMap::new(),
            sealed: BTreeMap::new(),
            version: 0,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        for field in factory.fields {
            let Some(value) = config.get(field.name) else {
                continue;
            };
            if field.secret {
                let sealed = self.keys()?.seal(&context(&row, field.name), value)?;
                row.sealed.insert(field.name.to_owned(), sealed);
            } else {
                row.plain.insert(field.name.to_owned(), value.to_owned());
            }
        }
        let version = self
            .store
            .put_config(&row, stored.as_ref().map(|s| s.version))
            .await?;
        self.invalidate(app_id);
        Ok(Saved {
            provider: factory.name.to_owned(),
            version,
            created: stored.is_none(),
            checked: report.is_some(),
            project_key: report.as_ref().and_then(|r| r.project_key.clone()),
            project_url: report.and_then(|r| r.project_url),
        })
    }

    /// The stored values with secrets decrypted, unvalidated.
    fn decrypt_raw(&self, stored: &StoredConfig) -> Result<BTreeMap<String, String>, Error> {
        let mut values = stored.plain.clone();
        for (field, sealed) in &stored.sealed {
            let plain = self.keys()?.open(&context(stored, field), sealed)?;
            values.insert(field.clone(), plain.to_string());
        }
        Ok(values)
    }

    /// Deletes the app's `provider` config; `false` if there was none. Invalidates the app.
    pub async fn delete_config(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
    ) -> Result<bool, Error> {
        self.check_tenant(tenant_id, app_id).await?;
        let factory = ops_core::provider::find(provider)?;
        let deleted = self
            .store
            .delete_config(tenant_id, app_id, factory.name)
            .await?;
        self.invalidate(app_id);
        Ok(deleted)
    }

    /// Switches tracing for the app (`provider` `None`) or one of its providers.
    ///
    /// - Enabling a provider adds it to the app's providers and switches the app on; it must
    ///   be configured ([`Error::NotConfigured`]).
    /// - Enabling the app needs at least one enabled provider ([`Error::NoProvider`]).
    /// - Disabling a provider takes it out of the list; disabling the app stops all tracing
    ///   for it and keeps the list.
    ///
    /// Invalidates the app and returns its new state.
    pub async fn set_enabled(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: Option<&str>,
        enabled: bool,
    ) -> Result<AppStatus, Error> {
        self.check_tenant(tenant_id, app_id).await?;
        let result = self
            .set_enabled_inner(tenant_id, app_id, provider, enabled)
            .await;
        self.invalidate(app_id);
        result?;
        self.app_status(tenant_id, app_id).await
    }

    async fn set_enabled_inner(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: Option<&str>,
        enabled: bool,
    ) -> Result<(), Error> {
        match provider {
            Some(provider) => {
                let factory = ops_core::provider::find(provider)?;
                if !self
                    .store
                    .set_provider_enabled(tenant_id, app_id, factory.name, enabled)
                    .await?
                {
                    return Err(Error::NotConfigured {
                        app_id: app_id.to_owned(),
                        provider: factory.name.to_owned(),
                    });
                }
                if enabled {
                    self.store.set_app_enabled(tenant_id, app_id, true).await?;
                }
            }
            None if enabled => {
                let configs = self.store.configs(tenant_id, app_id).await?;
                if !configs.iter().any(|c| c.enabled) {
                    let names: Vec<_> = configs.iter().map(|c| c.provider.as_str()).collect();
                    return Err(Error::NoProvider {
                        app_id: app_id.to_owned(),
                        configured: if names.is_empty() {
                            " (none is configured)".to_owned()
                        } else {
                            format!(" (configured: {})", names.join(", "))
                        },
                    });
                }
                self.store.set_app_enabled(tenant_id, app_id, true).await?;
            }
            None => {
                if self.store.app(app_id).await?.is_some() {
                    self.store.set_app_enabled(tenant_id, app_id, false).await?;
                }
            }
        }
        Ok(())
    }

    // ---- checks, project key and URL --------------------------------------------------------

    /// Validates `config`, builds the provider and runs its `api_check` (Dify's
    /// `check_trace_config_is_effective`), then asks for the project key and URL. Nothing is
    /// stored. The config's secrets are removed from every message of the report or error,
    /// whatever the provider or the platform put in it.
    pub async fn check_trace_config(
        &self,
        provider: &str,
        config: ProviderConfig,
    ) -> Result<CheckReport, Error> {
        let factory = ops_core::provider::find(provider)?;
        let redactor = config_redactor(&config);
        let instance = factory.build(config)?;
        self.check_instance(factory.name, instance.as_ref(), &redactor)
            .await
    }

    async fn check_instance(
        &self,
        name: &str,
        instance: &dyn Provider,
        redactor: &Redactor,
    ) -> Result<CheckReport, Error> {
        let failed = |message: String| Error::CheckFailed {
            provider: name.to_owned(),
            message: redactor.redact(&message).into_owned(),
        };
        match tokio::time::timeout(self.check_timeout, instance.api_check()).await {
            Err(_) => {
                return Err(failed(format!(
                    "no answer within {:?}; check the endpoint and network",
                    self.check_timeout
                )));
            }
            Ok(Err(e)) => return Err(failed(e.message)),
            Ok(Ok(())) => {}
        }
        let mut report = CheckReport {
            provider: name.to_owned(),
            project_key: None,
            project_url: None,
            project_error: None,
        };
        let scrub = |message: String| Some(redactor.redact(&message).into_owned());
        match tokio::time::timeout(self.check_timeout, instance.project_key()).await {
            Ok(Ok(key)) => report.project_key = key,
            Ok(Err(e)) => report.project_error = scrub(e.message),
            Err(_) => report.project_error = Some("the project lookup timed out".into()),
        }
        match tokio::time::timeout(self.check_timeout, instance.project_url()).await {
            Ok(Ok(url)) => report.project_url = url,
            Ok(Err(e)) => report.project_error = scrub(e.message),
            Err(_) => report.project_error = Some("the project URL lookup timed out".into()),
        }
        Ok(report)
    }

    /// Checks the stored `provider` config of `tenant_id`'s app (decrypt, validate, build,
    /// `api_check`). Another tenant's app is an [`Error::WrongTenant`].
    pub async fn check_app_provider(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
    ) -> Result<CheckReport, Error> {
        let factory = ops_core::provider::find(provider)?;
        let config = self
            .decrypted_config(tenant_id, app_id, factory.name)
            .await?
            .ok_or_else(|| Error::NotConfigured {
                app_id: app_id.to_owned(),
                provider: factory.name.to_owned(),
            })?;
        self.check_trace_config(factory.name, config).await
    }

    /// The platform's project id for `provider` of `tenant_id`'s app (Dify's
    /// `get_trace_config_project_key`).
    pub async fn project_key(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
    ) -> Result<Option<String>, Error> {
        let instance = self.instance(tenant_id, app_id, provider).await?;
        self.lookup(provider, instance.project_key()).await
    }

    /// Where to see the traces of `tenant_id`'s app on `provider` (Dify's
    /// `get_trace_config_project_url`).
    pub async fn project_url(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
    ) -> Result<Option<String>, Error> {
        let instance = self.instance(tenant_id, app_id, provider).await?;
        self.lookup(provider, instance.project_url()).await
    }

    async fn lookup(
        &self,
        provider: &str,
        call: impl Future<Output = Result<Option<String>, ops_core::ExportError>>,
    ) -> Result<Option<String>, Error> {
        match tokio::time::timeout(self.check_timeout, call).await {
            Ok(result) => result.map_err(|e| Error::CheckFailed {
                provider: provider.to_owned(),
                message: e.message,
            }),
            Err(_) => Err(Error::CheckFailed {
                provider: provider.to_owned(),
                message: format!("no answer within {:?}", self.check_timeout),
            }),
        }
    }

    /// The cached instance when the provider is active for the app, else a fresh one; either
    /// way its errors come without the config's secrets.
    async fn instance(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider: &str,
    ) -> Result<Arc<dyn Provider>, Error> {
        let factory = ops_core::provider::find(provider)?;
        let state = self.app_providers(tenant_id, app_id).await?;
        if let Some(p) = state.providers.iter().find(|p| p.name == factory.name) {
            return Ok(p.provider());
        }
        let config = self
            .decrypted_config(tenant_id, app_id, factory.name)
            .await?
            .ok_or_else(|| Error::NotConfigured {
                app_id: app_id.to_owned(),
                provider: factory.name.to_owned(),
            })?;
        let redactor = config_redactor(&config);
        Ok(Arc::new(Redacting::new(factory.build(config)?, redactor)))
    }

    // ---- cache and routing ---------------------------------------------------------------

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, CachedApp>> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, CachedApp>> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh(&self, entry: &CachedApp) -> bool {
        self.ttl.is_none_or(|ttl| entry.loaded.elapsed() < ttl)
    }

    /// Whether the app's traces go anywhere, from the cache only: `Some(false)` when tracing
    /// is off (or the app has no working provider), `Some(true)` when it is on, `None` when
    /// the app is not cached or its entry expired — then load it with
    /// [`OpsTraceManager::providers_for`] or [`OpsTraceManager::is_enabled`]. No I/O; a read
    /// lock and one hash lookup.
    pub fn is_enabled_cached(&self, app_id: &str) -> Option<bool> {
        let cache = self.read_cache();
        let entry = cache.get(app_id)?;
        self.fresh(entry).then(|| entry.state.is_active())
    }

    /// Whether the app's traces go anywhere, loading the app into the cache if needed.
    pub async fn is_enabled(&self, app_id: &str) -> Result<bool, Error> {
        if let Some(enabled) = self.is_enabled_cached(app_id) {
            return Ok(enabled);
        }
        Ok(self.providers_for_app(app_id).await?.is_active())
    }

    /// The instance keys of the app's providers, from the cache only (`None` when not cached
    /// or expired). A queue compares them with its lanes to see whether anything changed
    /// without building providers.
    pub fn cached_instance_keys(&self, app_id: &str) -> Option<Vec<String>> {
        let cache = self.read_cache();
        let entry = cache.get(app_id)?;
        self.fresh(entry).then(|| entry.state.instance_keys())
    }

    /// The active providers of `tenant_id`'s app, built, as [`OpsTraceManager::providers_for_app`]
    /// gives them; another tenant's app is an [`Error::WrongTenant`]. For tools acting for a
    /// tenant (the routing of traces uses [`OpsTraceManager::providers_for_app`], which acts for
    /// the app's own tenant).
    pub async fn app_providers(
        &self,
        tenant_id: &str,
        app_id: &str,
    ) -> Result<Arc<AppProviders>, Error> {
        self.check_tenant(tenant_id, app_id).await?;
        let state = self.providers_for_app(app_id).await?;
        match state.tenant_id() {
            Some(owner) if owner != tenant_id => Err(Error::WrongTenant {
                app_id: app_id.to_owned(),
                tenant_id: tenant_id.to_owned(),
            }),
            _ => Ok(state),
        }
    }

    /// The app's active providers, built, from the cache (loaded on a miss), with the configs
    /// of the tenant that owns the app. Every instance's errors come without its config's
    /// secrets.
    ///
    /// An enabled provider that cannot be loaded (its secret does not decrypt, its config no
    /// longer validates, it cannot be built) is left out and listed in
    /// [`AppProviders::errors`] (and logged), so one broken provider never stops the others.
    pub async fn providers_for_app(&self, app_id: &str) -> Result<Arc<AppProviders>, Error> {
        if let Some(entry) = self.read_cache().get(app_id)
            && self.fresh(entry)
        {
            return Ok(Arc::clone(&entry.state));
        }
        validate_id("app id", app_id)?;
        let generation = self.generation.load(Ordering::Acquire);
        let state = Arc::new(self.load(app_id).await?);
        let mut cache = self.write_cache();
        // A change made while loading may not be in `state`: serve it but do not cache it.
        if self.generation.load(Ordering::Acquire) == generation {
            if cache.len() >= MAX_CACHED_APPS {
                cache.clear();
            }
            cache.insert(
                app_id.to_owned(),
                CachedApp {
                    loaded: Instant::now(),
                    state: Arc::clone(&state),
                },
            );
        }
        Ok(state)
    }

    /// The router's call: a new instance of each active provider of the app with its
    /// instance key. Served from the cached configs (no store read, no decryption on a hit).
    /// Providers whose construction fails are logged and left out.
    pub async fn providers_for(
        &self,
        app_id: &str,
    ) -> Result<Vec<(String, Box<dyn Provider>)>, Error> {
        let state = self.providers_for_app(app_id).await?;
        let mut out = Vec::with_capacity(state.providers.len());
        for p in &state.providers {
            match p.build() {
                Ok(instance) => out.push((p.key.clone(), instance)),
                Err(e) => tracing::warn!(
                    app_id,
                    provider = %p.name,
                    error = %e,
                    "ops-config: provider left out: it cannot be built"
                ),
            }
        }
        Ok(out)
    }

    async fn load(&self, app_id: &str) -> Result<AppProviders, Error> {
        let app = self.store.app(app_id).await?;
        let mut state = AppProviders {
            app_id: app_id.to_owned(),
            tenant_id: app.as_ref().map(|a| a.tenant_id.clone()),
            enabled: app.as_ref().is_some_and(|a| a.enabled),
            providers: Vec::new(),
            errors: Vec::new(),
        };
        let Some(tenant_id) = state.tenant_id.clone().filter(|_| state.enabled) else {
            return Ok(state);
        };
        for stored in self.store.configs(&tenant_id, app_id).await? {
            if !stored.enabled {
                continue;
            }
            let built = ops_core::provider::find(&stored.provider)
                .map_err(Error::from)
                .and_then(|factory| {
                    let config = self.decrypt(factory, &stored)?;
                    let redactor = config_redactor(&config);
                    let instance = factory.build(config.clone())?;
                    Ok(AppProvider {
                        name: factory.name.to_owned(),
                        key: instance_key(&stored),
                        version: stored.version,
                        factory,
                        config,
                        instance: Arc::new(Redacting::new(instance, redactor.clone())),
                        redactor,
                    })
                });
            match built {
                Ok(p) => state.providers.push(p),
                Err(e) => {
                    tracing::warn!(
                        app_id,
                        provider = %stored.provider,
                        error = %e,
                        "ops-config: provider left out of the app's providers"
                    );
                    state.errors.push((stored.provider.clone(), e));
                }
            }
        }
        Ok(state)
    }

    /// Loads every app into the cache (at startup, so [`OpsTraceManager::is_enabled_cached`]
    /// answers for every stored app). Returns how many apps were loaded.
    pub async fn warm(&self) -> Result<usize, Error> {
        let apps = self.store.apps().await?;
        for app in &apps {
            self.providers_for_app(&app.app_id).await?;
        }
        Ok(apps.len())
    }

    /// Drops the app's cache entry (done by every change made through the manager; call it
    /// when the store was changed some other way).
    pub fn invalidate(&self, app_id: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.write_cache().remove(app_id);
    }

    /// Drops every cache entry.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.write_cache().clear();
    }

    // ---- key rotation --------------------------------------------------------------------

    /// Re-encrypts every stored secret under the keyring's current key version. Configs that
    /// fail (a secret that does not decrypt, a concurrent change) are reported and keep their
    /// ciphertexts; the others are rewritten. Invalidates the whole cache.
    pub async fn rotate_keys(&self) -> Result<RotationReport, Error> {
        let keys = self.keys()?;
        let mut report = RotationReport {
            current_version: keys.current_version(),
            ..RotationReport::default()
        };
        for mut stored in self.store.all_configs().await? {
            let mut changed = BTreeMap::new();
            let mut failure = None;
            for (field, sealed) in &stored.sealed {
                match keys.reseal(&context(&stored, field), sealed) {
                    Ok(Some(new)) => {
                        changed.insert(field.clone(), (key_version_of(sealed), new));
                    }
                    Ok(None) => report.already_current += 1,
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
            if let Some(message) = failure {
                report.failed.push(RotationFailure {
                    app_id: stored.app_id.clone(),
                    provider: stored.provider.clone(),
                    cause: RotationCause::Key,
                    message,
                });
                continue;
            }
            if changed.is_empty() {
                continue;
            }
            let mut counts = Vec::new();
            for (field, (old, new)) in changed {
                stored.sealed.insert(field, new);
                counts.push(old.unwrap_or(0));
            }
            match self.store.put_config(&stored, Some(stored.version)).await {
                Ok(_) => {
                    report.configs_updated += 1;
                    for old in counts {
                        *report.resealed.entry(old).or_default() += 1;
                    }
                }
                Err(e) => report.failed.push(RotationFailure {
                    app_id: stored.app_id.clone(),
                    provider: stored.provider.clone(),
                    cause: RotationCause::Store,
                    message: e.to_string(),
                }),
            }
        }
        self.invalidate_all();
        Ok(report)
    }
}

fn context<'a>(stored: &'a StoredConfig, field: &'a str) -> SecretContext<'a> {
    SecretContext {
        tenant_id: &stored.tenant_id,
        app_id: &stored.app_id,
        provider: &stored.provider,
        field,
    }
}

/// A redactor of `config`'s secret values, raw, percent-encoded, escaped and in base64.
fn config_redactor(config: &ProviderConfig) -> Redactor {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let secrets: Vec<String> = config
        .iter()
        .filter(|(k, _)| {
            ops_core::provider::find(config.provider())
                .is_ok_and(|f| f.secret_keys().any(|s| s == *k))
        })
        .map(|(_, v)| v.to_owned())
        .collect();
    let mut r = config.redactor();
    for s in &secrets {
        r = r.with_exact([STANDARD.encode(s), URL_SAFE_NO_PAD.encode(s)]);
    }
    r
}

/// A provider whose errors are redacted with its config's secrets: what the manager hands out,
/// so that no server message quoting a credential reaches a caller, a log or a queue's
/// `last_error`, whatever the provider itself does.
struct Redacting {
    inner: Box<dyn Provider>,
    redactor: Redactor,
}

impl Redacting {
    fn new(inner: Box<dyn Provider>, redactor: Redactor) -> Self {
        Self { inner, redactor }
    }
}

#[ops_core::async_trait]
impl Provider for Redacting {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        let outcome = self.inner.export(batch).await;
        self.redactor.outcome(outcome)
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        let result = self.inner.api_check().await;
        result.map_err(|e| self.redactor.error(e))
    }

    async fn project_key(&self) -> Result<Option<String>, ExportError> {
        let result = self.inner.project_key().await;
        result.map_err(|e| self.redactor.error(e))
    }

    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        let result = self.inner.project_url().await;
        result.map_err(|e| self.redactor.error(e))
    }

    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }

    fn timeout(&self) -> Option<Duration> {
        self.inner.timeout()
    }
}
