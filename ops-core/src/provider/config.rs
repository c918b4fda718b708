//! Provider configuration: keys, defaults and Dify's validators.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{ExportError, ExportOutcome, ProviderFactory};

/// One config key of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigField {
    /// The key, as Dify names it (`public_key`, `host`, ...).
    pub name: &'static str,
    /// Whether it is a secret: encrypted at rest, obfuscated on display, redacted in Debug.
    pub secret: bool,
    /// Whether a value is required.
    pub required: bool,
    /// The value used when none is given.
    pub default: Option<&'static str>,
    /// Whether the value may span lines (line breaks and tabs allowed, as in a header list).
    /// Every other value is one line without control characters.
    pub multiline: bool,
}

impl ConfigField {
    /// A required secret key.
    pub const fn secret(name: &'static str) -> Self {
        Self {
            name,
            secret: true,
            required: true,
            default: None,
            multiline: false,
        }
    }

    /// A required plain (non-secret) key with no default, such as an endpoint or a project.
    pub const fn plain(name: &'static str) -> Self {
        Self {
            name,
            secret: false,
            required: true,
            default: None,
            multiline: false,
        }
    }

    /// An optional plain key with no default.
    pub const fn optional(name: &'static str) -> Self {
        Self {
            name,
            secret: false,
            required: false,
            default: None,
            multiline: false,
        }
    }

    /// A plain key with a default.
    pub const fn with_default(name: &'static str, default: &'static str) -> Self {
        Self {
            name,
            secret: false,
            required: false,
            default: Some(default),
            multiline: false,
        }
    }

    /// Makes the key required.
    #[must_use]
    #[deprecated(
        since = "0.1.0",
        note = "`ConfigField::optional(name).required()` reads backwards: use `ConfigField::plain(name)` for a required plain key"
    )]
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Makes the key optional.
    #[must_use]
    pub const fn not_required(mut self) -> Self {
        self.required = false;
        self
    }

    /// Lets the value span lines: line breaks and tabs are allowed (other control characters
    /// still are not).
    #[must_use]
    pub const fn multiline(mut self) -> Self {
        self.multiline = true;
        self
    }
}

/// A provider's config: string values by key. Secret values never appear in `Debug`.
///
/// A value read from an environment variable ([`ProviderConfig::set_env`]) remembers the
/// variable, so that an error about its key can name the variable to fix; equality ignores
/// where values came from.
#[derive(Clone, Default)]
pub struct ProviderConfig {
    provider: String,
    values: BTreeMap<String, String>,
    secret_keys: Vec<&'static str>,
    /// The environment variable each key's value was read from, for those that were.
    env_sources: BTreeMap<String, String>,
}

impl PartialEq for ProviderConfig {
    fn eq(&self, other: &Self) -> bool {
        self.provider == other.provider
            && self.values == other.values
            && self.secret_keys == other.secret_keys
    }
}

impl Eq for ProviderConfig {}

/// What is wrong with a provider config. Every variant names the provider and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required field has no value.
    #[error(
        "{provider}: `{field}` is required; set it in the app's tracing config or its environment variable"
    )]
    Missing {
        /// The provider.
        provider: String,
        /// The field.
        field: String,
    },
    /// A field's value is not valid.
    #[error("{provider}: `{field}` is invalid: {reason}")]
    Invalid {
        /// The provider.
        provider: String,
        /// The field.
        field: String,
        /// Why, and what a valid value looks like.
        reason: String,
    },
    /// The config has a key the provider does not know.
    #[error("{provider}: unknown config key `{field}`; known keys: {known}")]
    UnknownField {
        /// The provider.
        provider: String,
        /// The unknown key.
        field: String,
        /// The known keys, comma-separated.
        known: String,
    },
    /// An environment variable the provider reads cannot be used (not UTF-8, out of range,
    /// not a URL); the error names the variable.
    #[error("{provider}: {error}")]
    Env {
        /// The provider.
        provider: String,
        /// What is wrong with the variable.
        error: crate::env::EnvError,
    },
    /// The provider could not be built for another reason.
    #[error("{provider}: {message}")]
    Build {
        /// The provider.
        provider: String,
        /// What went wrong.
        message: String,
    },
    /// An error about a key whose value was read from an environment variable (a
    /// [`ConfigError::Missing`] or [`ConfigError::Invalid`] of a config built by
    /// [`ProviderFactory::build_from_env`]): it names the variable to fix, and the key.
    #[error("environment variable {var}: {error}")]
    FromEnv {
        /// The variable the key's value came from.
        var: String,
        /// The error about the key.
        error: Box<ConfigError>,
    },
    /// An error about a key that no environment variable gave a value, of a config built by
    /// [`ProviderFactory::build_from_env`]: it names the variables that set the key.
    #[error("{error}; {}", unset_vars_hint(error, vars, empty))]
    EnvUnset {
        /// The variables that set the key, in the order they are read.
        vars: Vec<String>,
        /// Those of `vars` that are set but blank.
        empty: Vec<String>,
        /// The error about the key.
        error: Box<ConfigError>,
    },
}

/// The most characters of a value [`quote_value`] shows.
const QUOTED_CHARS: usize = 100;

/// `value` quoted for an error message (as `{:?}` does), cut to its first 100 characters with
/// a note of its length, so that a huge value cannot make a huge message. Never use it for a
/// secret.
pub fn quote_value(value: &str) -> String {
    let count = value.chars().count();
    if count <= QUOTED_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(QUOTED_CHARS).collect();
        format!("{head:?}… ({count} characters)")
    }
}

/// `vars` joined as `A`, `A or B`, `A, B or C`.
pub(crate) fn either(vars: &[impl AsRef<str>]) -> String {
    join_words(vars, "or")
}

/// `words` joined as `A`, `A and B`, `A, B and C` (with `last` for "and").
fn join_words(words: &[impl AsRef<str>], last: &str) -> String {
    match words {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [init @ .., end] => format!(
            "{} {last} {}",
            init.iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            end.as_ref()
        ),
    }
}

fn unset_vars_hint(error: &ConfigError, vars: &[String], empty: &[String]) -> String {
    let key = error.field().unwrap_or("it");
    let read = format!("`{key}` is read from environment variable {}", either(vars));
    match (vars, empty) {
        ([_], []) => format!("{read}, which is not set"),
        (_, []) => format!("{read}; none of them is set"),
        ([_], _) => format!("{read}, which is set but empty"),
        (_, [one]) => format!("{read}; {one} is set but empty"),
        _ => format!("{read}; {} are set but empty", join_words(empty, "and")),
    }
}

impl ConfigError {
    /// The config key the error is about, when it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Missing { field, .. }
            | ConfigError::Invalid { field, .. }
            | ConfigError::UnknownField { field, .. } => Some(field),
            ConfigError::FromEnv { error, .. } | ConfigError::EnvUnset { error, .. } => {
                error.field()
            }
            _ => None,
        }
    }
}

impl ProviderConfig {
    /// An empty config for `provider`.
    pub fn new(provider: impl Into<String>) -> Self {
        let provider = provider.into();
        let secret_keys = super::find(&provider)
            .map(|f| f.secret_keys().collect())
            .unwrap_or_default();
        Self {
            provider,
            values: BTreeMap::new(),
            secret_keys,
            env_sources: BTreeMap::new(),
        }
    }

    /// Sets `key` to `value`.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets `key` to `value` (given in code: it forgets any variable the key was read from).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.env_sources.remove(&key);
        self.values.insert(key, value.into());
    }

    /// Sets `key` to `value`, read from environment variable `var` (or derived from its
    /// value): errors about the key then name the variable (see
    /// [`ProviderFactory::build_from_env`]).
    pub fn set_env(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        var: impl Into<String>,
    ) {
        let key = key.into();
        self.values.insert(key.clone(), value.into());
        self.env_sources.insert(key, var.into());
    }

    /// The environment variable the value of `key` was read from, when it was
    /// ([`ProviderConfig::set_env`]).
    pub fn env_source(&self, key: &str) -> Option<&str> {
        self.env_sources.get(key).map(String::as_str)
    }

    /// Every key whose value was read from an environment variable, with the variable.
    pub fn env_sources(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env_sources
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.env_sources.remove(key);
        self.values.remove(key)
    }

    /// The value of `key`, if it is set and not blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The value of `key`, or a [`ConfigError::Missing`].
    pub fn require(&self, key: &str) -> Result<&str, ConfigError> {
        self.get(key).ok_or_else(|| ConfigError::Missing {
            provider: self.provider.clone(),
            field: key.to_owned(),
        })
    }

    /// The provider this config is for.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Every key and value, secrets included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// An [`ConfigError::Invalid`] for `field`.
    pub fn invalid(&self, field: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            provider: self.provider.clone(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// Applies each field's default and requires the required fields: the default validation.
    pub fn apply_field_rules(&mut self) -> Result<(), ConfigError> {
        let factory = super::find(&self.provider).map_err(|e| ConfigError::Build {
            provider: self.provider.clone(),
            message: e.to_string(),
        })?;
        for field in factory.fields {
            if self.get(field.name).is_none() {
                if let Some(default) = field.default {
                    self.set(field.name, default);
                } else if field.required {
                    return Err(ConfigError::Missing {
                        provider: self.provider.clone(),
                        field: field.name.to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    pub(super) fn check_keys(&mut self, factory: &ProviderFactory) -> Result<(), ConfigError> {
        self.provider = factory.name.to_owned();
        self.secret_keys = factory.secret_keys().collect();
        for key in self.values.keys() {
            if !factory.fields.iter().any(|f| f.name == key) {
                return Err(ConfigError::UnknownField {
                    provider: factory.name.to_owned(),
                    field: key.clone(),
                    known: factory
                        .fields
                        .iter()
                        .map(|f| f.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    /// Checks that no value holds a control character (NUL, a line break, an escape...): such
    /// a value cannot go into an HTTP header, a URL or a one-line setting, so it is an
    /// [`ConfigError::Invalid`] naming the key for every provider. Keys declared
    /// [`ConfigField::multiline`] may hold line breaks and tabs. The value is not shown (it
    /// may be a secret), only where the character is.
    pub(super) fn check_values(&self, factory: &ProviderFactory) -> Result<(), ConfigError> {
        for (key, value) in &self.values {
            let multiline = factory.fields.iter().any(|f| f.name == key && f.multiline);
            let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
            if let Some((at, c)) = value
                .chars()
                .enumerate()
                .find(|&(_, c)| c.is_control() && !allowed(c))
            {
                let fix = if multiline {
                    "remove it (of the control characters only line breaks and tabs are allowed \
                     here)"
                } else {
                    "write the value as one line of text without control characters"
                };
                return Err(self.invalid(
                    key,
                    format!(
                        "it holds a control character (U+{:04X}, character {} of {}; the value \
                         is not shown); {fix}",
                        u32::from(c),
                        at + 1,
                        value.chars().count(),
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A [`Redactor`] that removes the values of this config's secret keys (and their
    /// percent-encoded and escaped forms) from text.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(
            self.values
                .iter()
                .filter(|(k, _)| self.is_secret(k))
                .map(|(_, v)| v.as_str()),
        )
    }

    /// The per-request timeout of key [`TIMEOUT_FIELD`] (seconds), or its default of 10 s.
    pub fn timeout(&self) -> Result<Duration, ConfigError> {
        parse_timeout(self, self.get(TIMEOUT_FIELD.name))
    }

    /// An [`ConfigError::Env`] of this config's provider.
    pub fn env_error(&self, error: crate::env::EnvError) -> ConfigError {
        ConfigError::Env {
            provider: self.provider.clone(),
            error,
        }
    }

    /// Sets `key` from environment variable `var` when it is set and not blank (trimmed, and
    /// remembering the variable: [`ProviderConfig::set_env`]); an error names the variable
    /// when it is not UTF-8.
    pub fn set_from_env(&mut self, key: &str, var: &str) -> Result<bool, ConfigError> {
        match crate::env::non_blank(var).map_err(|e| self.env_error(e))? {
            Some(v) => {
                self.set_env(key, v, var);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn is_secret(&self, key: &str) -> bool {
        const SECRET_WORDS: [&str; 6] =
            ["secret", "key", "token", "password", "auth", "credential"];
        self.secret_keys.contains(&key)
            || SECRET_WORDS
                .iter()
                .any(|w| key.to_ascii_lowercase().contains(w))
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.values {
            if self.is_secret(k) {
                map.entry(k, &"<redacted>");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()?;
        write!(f, " ({})", self.provider)?;
        if !self.env_sources.is_empty() {
            write!(f, " from env {:?}", self.env_sources)?;
        }
        Ok(())
    }
}

/// The per-request timeout key every network provider has: seconds (fractions allowed), from
/// 0.01 to 600, default 10.
pub const TIMEOUT_FIELD: ConfigField = ConfigField::with_default("timeout", "10");
/// The default of [`TIMEOUT_FIELD`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The range of [`TIMEOUT_FIELD`].
const TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(600));

fn parse_timeout(config: &ProviderConfig, value: Option<&str>) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(DEFAULT_TIMEOUT),
        Some(v) => crate::env::seconds(v, TIMEOUT_RANGE.0, TIMEOUT_RANGE.1)
            .map_err(|e| config.invalid(TIMEOUT_FIELD.name, format!("{}: {e}", quote_value(v)))),
    }
}

/// Checks key `timeout` ([`TIMEOUT_FIELD`]): blank becomes the default `10`; anything else must
/// be a number of seconds from 0.01 to 600. Returns the timeout.
pub fn validate_timeout(config: &mut ProviderConfig) -> Result<Duration, ConfigError> {
    let name = TIMEOUT_FIELD.name;
    match config.get(name).map(|v| v.trim().to_owned()) {
        None => {
            config.set(name, TIMEOUT_FIELD.default.unwrap_or("10"));
            Ok(DEFAULT_TIMEOUT)
        }
        Some(v) => {
            let d = parse_timeout(config, Some(&v))?;
            config.set(name, v);
            Ok(d)
        }
    }
}

/// The smallest secret a [`Redactor`] looks for: shorter values would match ordinary words.
const MIN_SECRET_CHARS: usize = 4;
/// What a [`Redactor`] puts where a secret was.
pub const REDACTED: &str = "<redacted>";

/// Removes known secret values from text: error messages, quoted server answers, URLs and log
/// lines. Each secret is also looked for percent-encoded (as in a URL) and escaped (as in a
/// quoted string); callers add other forms (such as the base64 of HTTP Basic credentials)
/// with [`Redactor::with`]. Values shorter than 4 characters are not looked for.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Arc<Vec<String>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.needles.len())
            .finish()
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Redactor {
    /// A redactor of `secrets` (and their encoded forms).
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let mut r = Self::default();
        for s in secrets {
            r = r.with(s.as_ref());
        }
        r
    }

    /// Also removes `secret`, percent-encoded and escaped too.
    #[must_use]
    pub fn with(self, secret: &str) -> Self {
        let debug = format!("{secret:?}");
        let escaped = debug[1..debug.len() - 1].to_owned();
        self.with_exact([secret.to_owned(), percent_encode(secret), escaped])
    }

    /// Also removes each of `values` exactly as given.
    #[must_use]
    pub fn with_exact(mut self, values: impl IntoIterator<Item = String>) -> Self {
        let needles = Arc::make_mut(&mut self.needles);
        for v in values {
            if v.chars().count() >= MIN_SECRET_CHARS && !needles.contains(&v) {
                needles.push(v);
            }
        }
        // Longest first, so a secret inside a longer one (a token in its header) goes with it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        self
    }

    /// Also removes what `other` removes.
    #[must_use]
    pub fn merge(self, other: &Redactor) -> Self {
        self.with_exact(other.needles.iter().cloned())
    }

    /// Whether it looks for nothing.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret replaced by `<redacted>`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in self.needles.iter() {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), REDACTED));
            }
        }
        out
    }

    /// `error` with its message redacted.
    pub fn error(&self, mut error: ExportError) -> ExportError {
        if let Cow::Owned(m) = self.redact(&error.message) {
            error.message = m;
        }
        error
    }

    /// `outcome` with the message of its error redacted.
    pub fn outcome(&self, outcome: ExportOutcome) -> ExportOutcome {
        match outcome {
            ExportOutcome::Partial { failed, error } => ExportOutcome::Partial {
                failed,
                error: self.error(error),
            },
            ExportOutcome::Retry { after, error } => ExportOutcome::Retry {
                after,
                error: self.error(error),
            },
            ExportOutcome::Fatal(error) => ExportOutcome::Fatal(self.error(error)),
            other => other,
        }
    }
}

/// `url` fit to show: a password in it becomes `***`, and the value of every query parameter
/// whose name suggests a secret (`key`, `token`, `secret`, `password`, `auth`, `signature`,
/// `credential`, `sig`) becomes `<redacted>`. Text that is not a URL is returned as is.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url.trim()) else {
        return url.to_owned();
    };
    let mut changed = false;
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
        changed = true;
    }
    if parsed.query().is_some() {
        let secret_name = |k: &str| {
            let k = k.to_ascii_lowercase();
            [
                "key",
                "token",
                "secret",
                "password",
                "auth",
                "signature",
                "credential",
            ]
            .iter()
            .any(|w| k.contains(w))
                || k == "sig"
        };
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_name(&k) {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if pairs.iter().any(|(_, v)| v == REDACTED) {
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
            changed = true;
        }
    }
    if changed {
        parsed.to_string()
    } else {
        url.to_owned()
    }
}

/// Dify's display rule for a secret: empty stays empty; 8 characters or fewer become 20 `*`;
/// longer ones keep their first 6 and last 2 characters around 12 `*`.
pub fn obfuscate_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    match chars.len() {
        0 => String::new(),
        1..=8 => "*".repeat(20),
        n => {
            let head: String = chars[..6].iter().collect();
            let tail: String = chars[n - 2..].iter().collect();
            format!("{head}{}{tail}", "*".repeat(12))
        }
    }
}

/// Checks that `value` is an http(s) URL with a host; the error names `field` and shows the
/// value with any password removed.
fn parse_url(config: &ProviderConfig, field: &str, value: &str) -> Result<url::Url, ConfigError> {
    check_url(value).map_err(|reason| config.invalid(field, reason))
}

/// `value` as an http(s) URL with a host, or why it is not one (the value shown with any
/// password removed). Shared by the validators and the environment readers of providers.
pub fn check_url(value: &str) -> Result<url::Url, String> {
    let shown = quote_value(&redact_url(value));
    // `http:///x` parses with host `x`: an empty authority is no host, whatever follows.
    if let Some((_, rest)) = value.trim().split_once("://")
        && (rest.is_empty() || rest.starts_with(['/', '?', '#']))
    {
        return Err(format!("{shown} has no host"));
    }
    let url = url::Url::parse(value.trim())
        .map_err(|e| format!("{shown} is not a URL ({e}); expected e.g. https://host"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{shown} must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown} has no host"));
    }
    Ok(url)
}

/// Dify's `validate_url`: a blank value becomes `default`; the scheme must be http or https;
/// only the scheme, host and port are kept. The result is stored back into `field`.
pub fn validate_url(
    config: &mut ProviderConfig,
    field: &str,
    default: &str,
) -> Result<String, ConfigError> {
    let value = config.get(field).unwrap_or(default).to_owned();
    let url = parse_url(config, field, &value)?;
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    config.set(field, out.clone());
    Ok(out)
}

/// Dify's `validate_url_with_path`: like [`validate_url`] but the path is kept, without a
/// trailing `/` unless `required_suffix` ends with one; when `required_suffix` is given, the
/// path must end with it.
pub fn validate_url_with_path(
    config: &mut ProviderConfig,
    field: &str,
    default: &str,
    required_suffix: Option<&str>,
) -> Result<String, ConfigError> {
    let value = config.get(field).unwrap_or(default).to_owned();
    let url = parse_url(config, field, &value)?;
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path());
    if let Some(suffix) = required_suffix {
        if !out.ends_with(suffix) {
            return Err(config.invalid(
                field,
                format!("{:?} must end with {suffix:?}", redact_url(&value)),
            ));
        }
    } else {
        while out.ends_with('/') && out.matches('/').count() > 2 {
            out.pop();
        }
    }
    config.set(field, out.clone());
    Ok(out)
}

/// Dify's `validate_project_name`: blank becomes `default`, anything else is trimmed.
pub fn validate_project_name(config: &mut ProviderConfig, field: &str, default: &str) -> String {
    let out = config
        .get(field)
        .map_or_else(|| default.to_owned(), |v| v.trim().to_owned());
    config.set(field, out.clone());
    out
}

/// Dify's `validate_integer_id`: the value, trimmed, must be only digits.
pub fn validate_integer_id(
    config: &mut ProviderConfig,
    field: &str,
) -> Result<String, ConfigError> {
    let value = config.require(field)?.trim().to_owned();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(config.invalid(
            field,
            format!("{} must be digits only, like 0 or 123", quote_value(&value)),
        ));
    }
    config.set(field, value.clone());
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obfuscation_follows_difys_rule() {
        for (input, expected) in [
            ("", ""),
            ("a", "********************"),
            ("12345678", "********************"),
            ("123456789", "123456************89"),
            ("sk-lf-1234567890", "sk-lf-************90"),
        ] {
            assert_eq!(obfuscate_secret(input), expected, "{input}");
        }
    }

    #[test]
    fn url_validators() {
        let mut c = ProviderConfig::new("x").with("host", "https://cloud.langfuse.com/some/path/");
        assert_eq!(
            validate_url(&mut c, "host", "https://d").unwrap(),
            "https://cloud.langfuse.com"
        );
        let mut c = ProviderConfig::new("x").with("host", "  ");
        assert_eq!(
            validate_url(&mut c, "host", "https://d:8080/x").unwrap(),
            "https://d:8080"
        );
        let mut c = ProviderConfig::new("x").with("host", "ftp://h");
        let err = validate_url(&mut c, "host", "https://d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`host`") && err.contains("http://"), "{err}");
        let mut c = ProviderConfig::new("x").with("host", "not a url");
        assert!(validate_url(&mut c, "host", "https://d").is_err());

        let mut c = ProviderConfig::new("x").with("url", "http://localhost:5173/api/");
        assert_eq!(
            validate_url_with_path(&mut c, "url", "https://d/api/", Some("/api/")).unwrap(),
            "http://localhost:5173/api/"
        );
        let mut c = ProviderConfig::new("x").with("url", "http://localhost:5173/api");
        let err =
            validate_url_with_path(&mut c, "url", "https://d/api/", Some("/api/")).unwrap_err();
        assert!(err.to_string().contains("must end with \"/api/\""), "{err}");
        let mut c = ProviderConfig::new("x").with("endpoint", "https://p.example/s/proj/");
        assert_eq!(
            validate_url_with_path(&mut c, "endpoint", "https://d", None).unwrap(),
            "https://p.example/s/proj"
        );
    }

    #[test]
    fn project_and_integer_ids() {
        let mut c = ProviderConfig::new("x").with("project", "  my proj ");
        assert_eq!(
            validate_project_name(&mut c, "project", "default"),
            "my proj"
        );
        let mut c = ProviderConfig::new("x");
        assert_eq!(
            validate_project_name(&mut c, "project", "default"),
            "default"
        );
        let mut c = ProviderConfig::new("x").with("experiment_id", " 42 ");
        assert_eq!(validate_integer_id(&mut c, "experiment_id").unwrap(), "42");
        let mut c = ProviderConfig::new("x").with("experiment_id", "4a");
        let err = validate_integer_id(&mut c, "experiment_id")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`experiment_id`") && err.contains("digits"),
            "{err}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn validators_never_panic(value in ".{0,80}", suffix in proptest::option::of("[a-z/]{0,6}")) {
            let mut c = ProviderConfig::new("x").with("f", value.clone());
            let _ = validate_url(&mut c, "f", "https://default");
            let mut c = ProviderConfig::new("x").with("f", value.clone());
            let _ = validate_url_with_path(&mut c, "f", "https://default/api/", suffix.as_deref());
            let mut c = ProviderConfig::new("x").with("f", value.clone());
            let _ = validate_integer_id(&mut c, "f");
            let mut c = ProviderConfig::new("x").with("f", value.clone());
            validate_project_name(&mut c, "f", "default");
            let _ = obfuscate_secret(&value);
            let _ = crate::model::TraceId::new(value.clone());
            let _ = serde_json::from_str::<crate::model::TraceInfo>(&value);
        }
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert!(check_url("https://h:1/x").is_ok());
        for (bad, why) in [
            ("http://", "has no host"),
            ("http:///v1/traces", "has no host"),
            ("https://?q", "has no host"),
            ("ftp://h", "http:// or https://"),
            ("h:4318", "http:// or https://"),
            ("", "not a URL"),
        ] {
            let err = check_url(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let err = check_url("ftp://user:hunter2@h").unwrap_err();
        assert!(!err.contains("hunter2"), "passwords are not shown: {err}");
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            redact_url("https://u:pw-123@h/p?api_key=k1&x=2&token=t"),
            "https://u:***@h/p?api_key=%3Credacted%3E&x=2&token=%3Credacted%3E"
        );
        assert_eq!(redact_url("https://h/p?x=1"), "https://h/p?x=1");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn timeouts_are_seconds_in_range() {
        let mut c = ProviderConfig::new("x");
        assert_eq!(validate_timeout(&mut c).unwrap(), Duration::from_secs(10));
        assert_eq!(c.get("timeout"), Some("10"));
        let mut c = ProviderConfig::new("x").with("timeout", " 2.5 ");
        assert_eq!(
            validate_timeout(&mut c).unwrap(),
            Duration::from_millis(2500)
        );
        for bad in ["0", "-1", "NaN", "inf", "600.5", "1e308", "ten"] {
            let mut c = ProviderConfig::new("x").with("timeout", bad);
            let err = validate_timeout(&mut c).unwrap_err().to_string();
            assert!(
                err.contains("`timeout`") && err.contains("from 0.01 to 600"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn redactors_remove_every_form_of_a_secret() {
        let r = Redactor::new(["sk-lf-1234", "a b/c\"d", "k"]);
        let text = "key sk-lf-1234 in url a%20b%2Fc%22d and quoted \"a b/c\\\"d\" and k stays";
        let out = r.redact(text);
        assert!(
            !out.contains("sk-lf-1234") && !out.contains("a%20b%2Fc%22d"),
            "{out}"
        );
        assert!(!out.contains("a b/c"), "{out}");
        assert!(
            out.contains("k stays"),
            "values under 4 characters are left: {out}"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
        let e = r.error(ExportError::new("p", "got sk-lf-1234"));
        assert_eq!(e.message, "got <redacted>");
        match r.outcome(ExportOutcome::fatal(ExportError::new("p", "sk-lf-1234"))) {
            ExportOutcome::Fatal(e) => assert_eq!(e.message, "<redacted>"),
            other => panic!("{other:?}"),
        }
        let c = ProviderConfig::new("x")
            .with("secret_key", "sk-very-secret")
            .with("host", "https://h");
        let r = c.redactor();
        assert_eq!(r.redact("https://h sk-very-secret"), "https://h <redacted>");
        assert!(!format!("{r:?}").contains("very-secret"));
    }

    #[test]
    fn values_remember_the_variable_they_came_from_but_compare_without_it() {
        let mut from_env = ProviderConfig::new("x");
        from_env.set_env("host", "https://h", "X_HOST");
        assert_eq!(from_env.env_source("host"), Some("X_HOST"));
        assert_eq!(
            from_env.env_sources().collect::<Vec<_>>(),
            [("host", "X_HOST")]
        );
        let in_code = ProviderConfig::new("x").with("host", "https://h");
        assert_eq!(in_code.env_source("host"), None);
        assert_eq!(from_env, in_code, "equality ignores where values came from");
        let mut c = from_env.clone();
        c.set("host", "https://other");
        assert_eq!(
            c.env_source("host"),
            None,
            "a value set in code has no variable"
        );
        let mut c = from_env.clone();
        c.remove("host");
        assert_eq!(c.env_source("host"), None);
    }

    #[test]
    fn errors_of_env_values_name_the_variable_and_the_key() {
        let invalid = ProviderConfig::new("x").invalid("protocol", "\"0\" is not supported");
        assert_eq!(invalid.field(), Some("protocol"));
        let e = ConfigError::FromEnv {
            var: "X_PROTOCOL".into(),
            error: Box::new(invalid.clone()),
        };
        assert_eq!(
            e.to_string(),
            "environment variable X_PROTOCOL: x: `protocol` is invalid: \"0\" is not supported"
        );
        assert_eq!(e.field(), Some("protocol"));
        let unset = |vars: &[&str], empty: &[&str]| {
            ConfigError::EnvUnset {
                vars: vars.iter().map(|v| (*v).to_owned()).collect(),
                empty: empty.iter().map(|v| (*v).to_owned()).collect(),
                error: Box::new(invalid.clone()),
            }
            .to_string()
        };
        for (vars, empty, tail) in [
            (
                &["A"][..],
                &[][..],
                "from environment variable A, which is not set",
            ),
            (
                &["A"],
                &["A"],
                "from environment variable A, which is set but empty",
            ),
            (
                &["A", "B"],
                &[],
                "from environment variable A or B; none of them is set",
            ),
            (
                &["A", "B"],
                &["B"],
                "from environment variable A or B; B is set but empty",
            ),
            (
                &["A", "B", "C"],
                &["A", "C"],
                "from environment variable A, B or C; A and C are set but empty",
            ),
        ] {
            let text = unset(vars, empty);
            assert!(
                text.starts_with("x: `protocol` is invalid: ") && text.ends_with(tail),
                "{text}"
            );
        }
    }

    #[test]
    fn quoted_values_are_cut() {
        assert_eq!(quote_value("a\"b"), "\"a\\\"b\"");
        let long = "x".repeat(70_000);
        let q = quote_value(&long);
        assert!(q.len() < 150 && q.ends_with("… (70000 characters)"), "{q}");
        let err = check_url(&long).unwrap_err();
        assert!(err.len() < 300, "{err}");
        let mut c = ProviderConfig::new("x").with("experiment_id", long);
        let err = validate_integer_id(&mut c, "experiment_id").unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = ProviderConfig::new("x")
            .with("secret_key", "sk-very-secret")
            .with("api_key", "k-very-secret")
            .with("host", "https://h");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("very-secret"), "{dbg}");
        assert!(dbg.contains("https://h"), "{dbg}");
    }
}
