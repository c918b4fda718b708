//! Secrets for display, and the merge rule for updates that send a displayed secret back.
//!
//! [`obfuscate`] is Dify's display rule, exactly: empty stays empty, a secret of 8 characters
//! or fewer becomes 20 `*`, a longer one keeps its first 6 and last 2 characters around 12 `*`.
//!
//! A settings form shows secrets obfuscated and sends them back unchanged when the user edits
//! only other fields. [`merge_secret`] keeps the stored secret in that case. Unlike Dify,
//! which stores the masked text itself (in plaintext) when nothing is stored yet, a masked
//! value with nothing stored behind it is refused with [`MaskedWithoutStored`].

/// Dify's display rule for a secret (`ops_core::provider::obfuscate_secret`).
pub use ops_core::provider::obfuscate_secret as obfuscate;

const MASK_LEN: usize = 20;

/// Whether `value` has the exact shape [`obfuscate`] produces for a non-empty secret: 20 `*`,
/// or 6 characters, 12 `*` and 2 characters.
///
/// Dify treats any value containing `*` as masked, which silently discards real secrets that
/// contain `*`; this checks the whole shape instead.
pub fn is_obfuscated(value: &str) -> bool {
    let chars: Vec<char> = value.chars().collect();
    chars.len() == MASK_LEN && chars[6..18].iter().all(|c| *c == '*')
}

/// What an update does to one secret field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretUpdate {
    /// Keep the stored value (the field was left out, or sent back obfuscated).
    Keep,
    /// Store this new value.
    Replace(String),
    /// Remove the value (an empty string was sent).
    Clear,
}

/// An obfuscated value was sent for a secret that has no stored value to keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{provider}: `{field}` was given in its obfuscated display form ({shown:?}), but no {field} \
     is stored for this app yet, so there is nothing to keep; send the real {field}"
)]
pub struct MaskedWithoutStored {
    /// The provider.
    pub provider: String,
    /// The secret field.
    pub field: String,
    /// The masked value that was sent (it contains no secret beyond what display shows).
    pub shown: String,
}

/// Decides what an update does to secret `field` of `provider`.
///
/// - `submitted` is `None` (left out): keep the stored value.
/// - `submitted` is empty or blank: clear it.
/// - `submitted` is obfuscated ([`is_obfuscated`]) and a value is stored: keep the stored value
///   (also when the mask is of an older value: the form was stale, and a mask is never a
///   secret).
/// - `submitted` is obfuscated and nothing is stored: [`MaskedWithoutStored`].
/// - otherwise: replace.
pub fn merge_secret(
    provider: &str,
    field: &str,
    submitted: Option<&str>,
    stored: Option<&str>,
) -> Result<SecretUpdate, MaskedWithoutStored> {
    let Some(submitted) = submitted else {
        return Ok(SecretUpdate::Keep);
    };
    if submitted.trim().is_empty() {
        return Ok(SecretUpdate::Clear);
    }
    if is_obfuscated(submitted) {
        return match stored.filter(|s| !s.is_empty()) {
            Some(_) => Ok(SecretUpdate::Keep),
            None => Err(MaskedWithoutStored {
                provider: provider.to_owned(),
                field: field.to_owned(),
                shown: submitted.to_owned(),
            }),
        };
    }
    Ok(SecretUpdate::Replace(submitted.to_owned()))
}
