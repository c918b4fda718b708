//! Masking: a hook that rewrites every captured input and output before it reaches a provider.

use std::sync::{Arc, LazyLock, RwLock};

use serde_json::Value;

/// What a masked value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// The keys [`RedactKeys::default`] redacts. A key matches when, lowercased and with `-`
/// read as `_`, it contains one of these.
pub const DEFAULT_REDACTED_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "authorization",
    "access_token",
    "refresh_token",
    "private_key",
    "cookie",
];

/// A hook that rewrites captured inputs and outputs (for example to remove personal data).
///
/// It runs on every input, output and trace-level input/output `#[traced]` records, when the
/// value is turned into JSON on the queue's worker, so it costs the caller nothing; it always
/// runs before any provider sees the value. The mask used is the one in effect when the trace
/// was handed to the queue (when its root ended), so changing it never affects traces already
/// queued. A mask that panics makes the value `"[REDACTED]"`, never the unmasked value.
///
/// Any `Fn(&mut serde_json::Value) + Send + Sync + 'static` is a mask. [`set_mask`] adds it
/// after the default credential redaction ([`replace_mask`] drops that):
///
/// ```
/// use serde_json::{Value, json};
///
/// ops_core::context::set_mask(|v: &mut Value| {
///     if let Some(s) = v.as_str() {
///         *v = s.replace("@", " at ").into();
///     }
/// });
/// # let _ = json!(null);
/// # ops_core::context::reset_mask();
/// ```
pub trait Mask: Send + Sync + 'static {
    /// Rewrites `value` in place.
    fn mask(&self, value: &mut Value);
}

impl<F: Fn(&mut Value) + Send + Sync + 'static> Mask for F {
    fn mask(&self, value: &mut Value) {
        self(value)
    }
}

/// The default mask: replaces the value of every object key that looks like a credential
/// (see [`DEFAULT_REDACTED_KEYS`]) with `"[REDACTED]"`, at any depth. A traced function's
/// inputs are an object keyed by parameter name, so a parameter named `api_key` is redacted
/// too.
#[derive(Debug, Clone)]
pub struct RedactKeys {
    keys: Vec<String>,
}

impl Default for RedactKeys {
    fn default() -> Self {
        Self::new(DEFAULT_REDACTED_KEYS.iter().copied())
    }
}

impl RedactKeys {
    /// Redacts keys that contain any of `keys` (case-insensitive, `-` read as `_`).
    pub fn new<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| normalize(&k.into())).collect(),
        }
    }

    /// Also redacts keys containing `key`.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(normalize(&key.into()));
        self
    }

    /// Whether a key is redacted.
    pub fn matches(&self, key: &str) -> bool {
        // `normalize(key).contains(k)`, without building the normalized key: normalizing
        // maps each ASCII byte to one byte and leaves the others alone.
        let key = key.as_bytes();
        let normal = |b: u8| {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_lowercase()
            }
        };
        self.keys.iter().any(|k| {
            let k = k.as_bytes();
            k.is_empty()
                || key
                    .windows(k.len())
                    .any(|w| w.iter().zip(k).all(|(a, b)| normal(*a) == *b))
        })
    }

    /// Redacts matching keys at any depth, with an explicit stack (no recursion) that only
    /// nested containers go on: a flat value allocates nothing.
    fn walk(&self, value: &mut Value) {
        let is_container = |v: &&mut Value| matches!(v, Value::Object(_) | Value::Array(_));
        let mut stack = Vec::new();
        let mut next = Some(value);
        while let Some(v) = next.take().or_else(|| stack.pop()) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map.iter_mut() {
                        if self.matches(k) {
                            let old = std::mem::replace(v, Value::String(REDACTED.to_owned()));
                            crate::limits::drop_iteratively(old);
                        } else if is_container(&v) {
                            stack.push(v);
                        }
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut().filter(is_container)),
                _ => {}
            }
        }
    }
}

fn normalize(key: &str) -> String {
    key.to_ascii_lowercase().replace('-', "_")
}

impl Mask for RedactKeys {
    fn mask(&self, value: &mut Value) {
        self.walk(value);
    }
}

/// [`RedactKeys::default`], then another mask: what [`set_mask`] and
/// [`TraceQueueBuilder::mask`](crate::TraceQueueBuilder::mask) install, so a mask added for
/// personal data never drops the credential redaction.
struct WithDefault(Arc<dyn Mask>);

impl Mask for WithDefault {
    fn mask(&self, value: &mut Value) {
        DEFAULT.mask(value);
        self.0.mask(value);
    }
}

/// `mask` after the default credential redaction.
pub(crate) fn with_default(mask: impl Mask) -> Arc<dyn Mask> {
    Arc::new(WithDefault(Arc::new(mask)))
}

enum Setting {
    Default,
    Custom(Arc<dyn Mask>),
    Off,
}

static SETTING: RwLock<Setting> = RwLock::new(Setting::Default);
static DEFAULT: LazyLock<Arc<dyn Mask>> = LazyLock::new(|| Arc::new(RedactKeys::default()));

/// Adds `mask` for the whole process: values pass the default credential redaction
/// ([`RedactKeys::default`]) first, then `mask`. To drop the default redaction, use
/// [`replace_mask`]. A queue's own mask ([`TraceQueueBuilder::mask`](crate::TraceQueueBuilder::mask),
/// [`AppTraceQueue::with_mask`](crate::AppTraceQueue::with_mask)) takes its place for that
/// queue's traces.
pub fn set_mask(mask: impl Mask) {
    *SETTING.write().unwrap_or_else(|e| e.into_inner()) = Setting::Custom(with_default(mask));
}

/// Replaces the mask for the whole process, default credential redaction included: the
/// explicit opt-out of [`set_mask`]'s composition. Only `mask` runs.
pub fn replace_mask(mask: impl Mask) {
    *SETTING.write().unwrap_or_else(|e| e.into_inner()) = Setting::Custom(Arc::new(mask));
}

/// Turns masking off: values reach providers as captured.
pub fn disable_mask() {
    *SETTING.write().unwrap_or_else(|e| e.into_inner()) = Setting::Off;
}

/// Restores the default mask, [`RedactKeys::default`].
pub fn reset_mask() {
    *SETTING.write().unwrap_or_else(|e| e.into_inner()) = Setting::Default;
}

/// The process-wide mask in effect, if any.
pub(crate) fn current_mask() -> Option<Arc<dyn Mask>> {
    match &*SETTING.read().unwrap_or_else(|e| e.into_inner()) {
        Setting::Default => Some(Arc::clone(&DEFAULT)),
        Setting::Custom(m) => Some(Arc::clone(m)),
        Setting::Off => None,
    }
}

/// The mask a queue (or an app's view of one) uses instead of the process-wide one; none by
/// default. Not part of a task's identity: tasks compare equal whatever their mask.
#[derive(Clone, Default)]
pub(crate) struct MaskOverride(pub(crate) Option<Arc<dyn Mask>>);

impl MaskOverride {
    /// The mask to apply: this one if set, else the process-wide one.
    pub(crate) fn resolve(&self) -> Option<Arc<dyn Mask>> {
        match &self.0 {
            Some(m) => Some(Arc::clone(m)),
            None => current_mask(),
        }
    }

    /// Whether a mask is set.
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl PartialEq for MaskOverride {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for MaskOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() {
            "Some(<mask>)"
        } else {
            "None"
        })
    }
}

/// Applies the mask in effect to every input, output and metadata value of a trace built by
/// the explicit API (traces from `#[traced]` are masked as their captures become JSON).
pub(crate) fn mask_trace(trace: &mut crate::model::Trace, mask: &MaskOverride) {
    let Some(mask) = mask.resolve() else { return };
    let mask = Some(&*mask);
    let values = [&mut trace.input, &mut trace.output].into_iter().flatten();
    for v in values.chain(trace.metadata.values_mut()) {
        apply(mask, v);
    }
    for o in &mut trace.observations {
        let values = [&mut o.input, &mut o.output].into_iter().flatten();
        for v in values.chain(o.metadata.values_mut()) {
            apply(mask, v);
        }
    }
}

/// Applies `mask` to `value`; a panicking mask redacts the whole value.
pub(crate) fn apply(mask: Option<&dyn Mask>, value: &mut Value) {
    let Some(mask) = mask else { return };
    let masked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mask.mask(value)));
    if masked.is_err() {
        *value = Value::String(REDACTED.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_keys_are_redacted_at_any_depth() {
        let mut v = json!({
            "query": "hi",
            "api_key": "sk-1",
            "headers": {"Authorization": "Bearer x", "X-Api-Key": "k", "accept": "json"},
            "users": [{"name": "a", "password": "p"}],
            "max_tokens": 5,
        });
        RedactKeys::default().mask(&mut v);
        assert_eq!(
            v,
            json!({
                "query": "hi",
                "api_key": "[REDACTED]",
                "headers": {"Authorization": "[REDACTED]", "X-Api-Key": "[REDACTED]", "accept": "json"},
                "users": [{"name": "a", "password": "[REDACTED]"}],
                "max_tokens": 5,
            })
        );
    }

    #[test]
    fn keys_are_configurable() {
        let mask = RedactKeys::new(["ssn"]).with_key("Email");
        let mut v = json!({"ssn": "1", "email_address": "a@b", "password": "kept"});
        mask.mask(&mut v);
        assert_eq!(
            v,
            json!({"ssn": "[REDACTED]", "email_address": "[REDACTED]", "password": "kept"})
        );
    }

    #[test]
    fn any_depth_is_masked_without_overflowing_the_stack() {
        let mut v = json!({"password": "p"});
        for _ in 0..1_000_000 {
            v = Value::Array(vec![v]);
        }
        RedactKeys::default().mask(&mut v);
        let mut at = &v;
        while let Some(inner) = at.get(0) {
            at = inner;
        }
        assert_eq!(at["password"], json!(REDACTED));
        crate::limits::drop_iteratively(v);
    }

    #[test]
    fn an_added_mask_keeps_the_default_redaction() {
        let mask = with_default(|v: &mut Value| {
            if let Some(map) = v.as_object_mut() {
                map.insert("email".into(), json!("<email>"));
            }
        });
        let mut v = json!({"email": "ada@example.com", "password": "hunter2"});
        mask.mask(&mut v);
        assert_eq!(v, json!({"email": "<email>", "password": "[REDACTED]"}));
    }

    #[test]
    fn a_panicking_mask_redacts_everything() {
        let mask = |_: &mut Value| panic!("boom");
        let mut v = json!({"a": 1});
        apply(Some(&mask), &mut v);
        assert_eq!(v, json!("[REDACTED]"));
    }

    #[test]
    fn keys_match_whatever_their_case_and_dashes() {
        let mask = RedactKeys::new(["api_key", "Secret-Token", ""]);
        let only_api = RedactKeys::new(["api_key"]);
        for key in ["api_key", "X-API-KEY", "my_Api-Key_2", "openai.api-key"] {
            assert!(only_api.matches(key), "{key}");
        }
        for key in ["apikey", "api", "key_api", "ápi_key", ""] {
            assert!(!only_api.matches(key), "{key}");
        }
        assert!(mask.matches("x-secret_token"));
        // An empty pattern is contained in every key, as `str::contains` has it.
        assert!(mask.matches("anything"));
        let unicode = RedactKeys::new(["clé"]);
        assert!(unicode.matches("ma-CLé") && !unicode.matches("ma-CLÉ"));
        let mut v = json!({"a": [{"API-Key": "s", "n": 1}, 2], "b": {"c": {"api_key": "t"}}});
        only_api.mask(&mut v);
        assert_eq!(
            v,
            json!({"a": [{"API-Key": REDACTED, "n": 1}, 2], "b": {"c": {"api_key": REDACTED}}})
        );
    }
}
