//! Encryption at rest for provider secrets: AES-256-GCM with per-tenant keys.
//!
//! # Master keys
//!
//! The master key comes from `OPS_ENCRYPTION_KEY` or from the file named by
//! `OPS_ENCRYPTION_KEY_FILE` (set exactly one). Either holds one or more entries separated by
//! whitespace, commas or newlines (`#` starts a comment line):
//!
//! ```text
//! 2:q3X1Vb0m6aZ3d0U9zH1o2P4vJm8cF5wQyR7tK2sL0nE=
//! 1:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0
//! ```
//!
//! - A key is 32 bytes written as **64 hex digits** or as **base64** (standard or URL-safe
//!   alphabet, padding optional: 43 or 44 characters). `ops keygen` or
//!   `openssl rand -base64 32` makes one.
//! - `<version>:` names the key version (1 or more). A single entry may omit it and is then
//!   version 1. The highest version encrypts; every listed version decrypts.
//!
//! # Ciphertexts
//!
//! Each secret is sealed as `enc:v1:k<version>:<base64url(nonce || ciphertext || tag)>` with
//! a random 96-bit nonce. The key is derived per tenant with HKDF-SHA256 from the master key
//! of that version, and the associated data binds the tenant, app, provider, field and key
//! version: a ciphertext copied to another tenant, app, provider or field does not decrypt.
//!
//! # Rotation
//!
//! Add a new, higher version to the key list (keep the old ones), then re-encrypt every
//! stored secret under it ([`Keyring::reseal`], `ops rotate-key`). Once nothing is sealed
//! with an old version it can be removed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The environment variable holding the master key(s).
pub const KEY_ENV: &str = "OPS_ENCRYPTION_KEY";
/// The environment variable naming a file that holds the master key(s).
pub const KEY_FILE_ENV: &str = "OPS_ENCRYPTION_KEY_FILE";

const SEALED_PREFIX: &str = "enc:v1:k";
const HKDF_SALT: &[u8] = b"ops-config tenant key v1";
const AAD_LABEL: &[u8] = b"ops-config secret v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why the master key could not be loaded. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Neither variable is set.
    #[error(
        "no encryption key: set {KEY_ENV} to a 32-byte key (64 hex digits or base64; make one \
         with `ops keygen` or `openssl rand -base64 32`), or set {KEY_FILE_ENV} to a file \
         holding it"
    )]
    Missing,
    /// Both variables are set.
    #[error("both {KEY_ENV} and {KEY_FILE_ENV} are set; set only one of them")]
    Ambiguous,
    /// A variable is set to a value that is not valid UTF-8 (a key is text: hex or base64).
    #[error(
        "{var} is set to a value that is not valid UTF-8; a key is 64 hex digits or base64 \
         (make one with `ops keygen`)"
    )]
    NotUnicode {
        /// The variable.
        var: String,
    },
    /// The key file cannot be read.
    #[error("cannot read the key file {path:?} (from {KEY_FILE_ENV}): {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The source holds no key entry.
    #[error("{source_name} holds no key; put a 32-byte key in it (64 hex digits or base64)")]
    Empty {
        /// Where the keys came from.
        source_name: String,
    },
    /// One entry is not a valid key.
    #[error("{source_name}, key entry {entry}: {reason}")]
    Malformed {
        /// Where the keys came from.
        source_name: String,
        /// The 1-based position of the entry.
        entry: usize,
        /// What is wrong, without the key itself.
        reason: String,
    },
    /// Two entries have the same version.
    #[error("{source_name}: key version {version} is listed twice; each version must be unique")]
    DuplicateVersion {
        /// Where the keys came from.
        source_name: String,
        /// The repeated version.
        version: u32,
    },
    /// The operating system's random generator failed.
    #[error("cannot generate a key: the system random generator failed: {0}")]
    Random(String),
}

/// Why a secret could not be sealed or opened. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The stored value is not an `enc:v1:` ciphertext.
    #[error("the stored value of {context} is not a valid ciphertext: {reason}")]
    Malformed {
        /// What the secret is.
        context: String,
        /// What is wrong.
        reason: String,
    },
    /// The ciphertext was sealed with a key version the keyring does not hold.
    #[error(
        "{context} is encrypted with key version {version}, but the configured keys are \
         version(s) {known}; add key version {version} back to {KEY_ENV} / {KEY_FILE_ENV} (keep \
         old versions until `ops rotate-key` has re-encrypted everything)"
    )]
    UnknownKeyVersion {
        /// What the secret is.
        context: String,
        /// The version the ciphertext names.
        version: u32,
        /// The versions the keyring holds.
        known: String,
    },
    /// Authentication failed.
    #[error(
        "cannot decrypt {context}: the ciphertext was altered, belongs to another tenant, app, \
         provider or field, or the key of its version is not the one it was encrypted with"
    )]
    Decrypt {
        /// What the secret is.
        context: String,
    },
    /// The plaintext is not UTF-8.
    #[error("{context} decrypted to bytes that are not UTF-8")]
    NotUtf8 {
        /// What the secret is.
        context: String,
    },
    /// The system random generator failed while making a nonce.
    #[error("cannot encrypt {context}: the system random generator failed: {reason}")]
    Random {
        /// What the secret is.
        context: String,
        /// The generator's error.
        reason: String,
    },
}

/// What a secret belongs to: bound into its ciphertext as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretContext<'a> {
    /// The tenant (workspace); also selects the derived key.
    pub tenant_id: &'a str,
    /// The app.
    pub app_id: &'a str,
    /// The provider, for example `langfuse`.
    pub provider: &'a str,
    /// The config field, for example `secret_key`.
    pub field: &'a str,
}

impl fmt::Display for SecretContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` of provider {} for app {} (tenant {})",
            self.field, self.provider, self.app_id, self.tenant_id
        )
    }
}

impl SecretContext<'_> {
    fn aad(&self, version: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(AAD_LABEL);
        for part in [self.tenant_id, self.app_id, self.provider, self.field] {
            aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }
}

/// One master key with its version. The bytes are wiped on drop and never printed.
#[derive(Clone)]
pub struct MasterKey {
    version: u32,
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("version", &self.version)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

impl MasterKey {
    /// A key of `version` from its 32 bytes.
    pub fn from_bytes(version: u32, bytes: [u8; 32]) -> Self {
        Self {
            version,
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A fresh random key of `version`, from the operating system's generator.
    pub fn generate(version: u32) -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self { version, bytes })
    }

    /// The key's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The key as a `<version>:<base64>` entry, for writing a key file or variable.
    pub fn to_entry(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}:{}", self.version, STANDARD.encode(*self.bytes)))
    }

    /// The key as standard base64, for `OPS_ENCRYPTION_KEY`.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(*self.bytes))
    }

    fn tenant_cipher(&self, tenant_id: &str) -> Aes256Gcm {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), self.bytes.as_ref());
        let mut okm = Zeroizing::new([0u8; 32]);
        let mut info = Vec::with_capacity(7 + tenant_id.len());
        info.extend_from_slice(b"tenant\0");
        info.extend_from_slice(tenant_id.as_bytes());
        hk.expand(&info, okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Aes256Gcm::new_from_slice(okm.as_ref()).expect("AES-256 takes a 32-byte key")
    }
}

fn decode_key(text: &str) -> Result<[u8; 32], String> {
    let bytes: Option<Vec<u8>> = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        Some(
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0))
                .collect(),
        )
    } else {
        [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
    };
    let Some(bytes) = bytes.map(Zeroizing::new) else {
        return Err(format!(
            "it is {} characters and neither 64 hex digits nor base64; expected a 32-byte key \
             as 64 hex digits or base64 (44 characters), e.g. from `ops keygen`",
            text.chars().count()
        ));
    };
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "it decodes to {} bytes; an AES-256 key is exactly 32 bytes (64 hex digits or 44 \
             base64 characters)",
            bytes.len()
        )
    })
}

/// The master keys by version: the highest seals, all of them open.
#[derive(Clone)]
pub struct Keyring {
    keys: BTreeMap<u32, MasterKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("versions", &self.versions())
            .finish()
    }
}

impl Keyring {
    /// A keyring of `keys`.
    ///
    /// # Errors
    /// When `keys` is empty or two keys share a version.
    pub fn new(keys: impl IntoIterator<Item = MasterKey>) -> Result<Self, KeyError> {
        let mut map = BTreeMap::new();
        for key in keys {
            let version = key.version;
            if map.insert(version, key).is_some() {
                return Err(KeyError::DuplicateVersion {
                    source_name: "the keyring".into(),
                    version,
                });
            }
        }
        if map.is_empty() {
            return Err(KeyError::Empty {
                source_name: "the keyring".into(),
            });
        }
        Ok(Self { keys: map })
    }

    /// The keys from `OPS_ENCRYPTION_KEY` or the file named by `OPS_ENCRYPTION_KEY_FILE` (any
    /// path). A key variable that is not UTF-8 is a [`KeyError::NotUnicode`], never "no key".
    pub fn from_env() -> Result<Self, KeyError> {
        let value = key_from_env()?;
        let file = std::env::var_os(KEY_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self::from_sources(value.as_ref().map(|v| v.as_str()), file.as_deref())
    }

    /// The keys from a variable's value or a key file: what [`Keyring::from_env`] reads,
    /// without touching the environment.
    pub fn from_sources(value: Option<&str>, file: Option<&Path>) -> Result<Self, KeyError> {
        match (value, file) {
            (Some(_), Some(_)) => Err(KeyError::Ambiguous),
            (None, None) => Err(KeyError::Missing),
            (Some(value), None) => Self::parse(value, KEY_ENV),
            (None, Some(path)) => Self::from_file(path),
        }
    }

    /// The keys in `path`.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| KeyError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?);
        Self::parse(&text, &format!("key file {}", path.display()))
    }

    /// Parses key entries (see the module docs); `source_name` names where they came from in
    /// errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let entries: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .flat_map(|line| line.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Err(KeyError::Empty {
                source_name: source_name.into(),
            });
        }
        let malformed = |entry: usize, reason: String| KeyError::Malformed {
            source_name: source_name.into(),
            entry,
            reason,
        };
        let mut keys = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let n = i + 1;
            let (version, key) = match entry.split_once(':') {
                Some((v, k)) => {
                    let version: u32 = v.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                        malformed(
                            n,
                            format!(
                                "the version {v:?} before `:` must be a whole number of 1 or more"
                            ),
                        )
                    })?;
                    (version, k)
                }
                None if entries.len() == 1 => (1, *entry),
                None => {
                    return Err(malformed(
                        n,
                        "with several keys each needs a version, as `<version>:<key>`".into(),
                    ));
                }
            };
            let bytes = decode_key(key).map_err(|reason| malformed(n, reason))?;
            if keys
                .insert(version, MasterKey::from_bytes(version, bytes))
                .is_some()
            {
                return Err(KeyError::DuplicateVersion {
                    source_name: source_name.into(),
                    version,
                });
            }
        }
        Ok(Self { keys })
    }

    /// The version that seals new secrets: the highest.
    pub fn current_version(&self) -> u32 {
        *self
            .keys
            .keys()
            .next_back()
            .expect("a keyring is never empty")
    }

    /// Every version held, ascending.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// The key of `version`.
    pub fn key(&self, version: u32) -> Option<&MasterKey> {
        self.keys.get(&version)
    }

    /// Adds `key`, replacing a key of the same version.
    pub fn insert(&mut self, key: MasterKey) {
        self.keys.insert(key.version, key);
    }

    /// Encrypts `plaintext` for `ctx` with the current key.
    pub fn seal(&self, ctx: &SecretContext<'_>, plaintext: &str) -> Result<String, CryptoError> {
        let version = self.current_version();
        let key = &self.keys[&version];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| CryptoError::Random {
            context: ctx.to_string(),
            reason: e.to_string(),
        })?;
        let aad = ctx.aad(version);
        let sealed = key
            .tenant_cipher(ctx.tenant_id)
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Malformed {
                context: ctx.to_string(),
                reason: "the value is too long to encrypt".into(),
            })?;
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}{version}:{}",
            URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    /// Decrypts `sealed`, which must have been sealed for exactly `ctx`.
    pub fn open(
        &self,
        ctx: &SecretContext<'_>,
        sealed: &str,
    ) -> Result<Zeroizing<String>, CryptoError> {
        let (version, blob) = parse_sealed(ctx, sealed)?;
        let key = self
            .keys
            .get(&version)
            .ok_or_else(|| CryptoError::UnknownKeyVersion {
                context: ctx.to_string(),
                version,
                known: self
                    .versions()
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
        let aad = ctx.aad(version);
        let plain = Zeroizing::new(
            key.tenant_cipher(ctx.tenant_id)
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| CryptoError::Decrypt {
                    context: ctx.to_string(),
                })?,
        );
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::NotUtf8 {
                context: ctx.to_string(),
            })
    }

    /// Re-encrypts `sealed` under the current key when it was sealed with an older one:
    /// `Ok(None)` when it already uses the current version.
    pub fn reseal(
        &self,
        ctx: &SecretContext<'_>,
        sealed: &str,
    ) -> Result<Option<String>, CryptoError> {
        if key_version_of(sealed) == Some(self.current_version()) {
            // Still authenticate it, so a rotation never blesses a corrupted value.
            self.open(ctx, sealed)?;
            return Ok(None);
        }
        let plain = self.open(ctx, sealed)?;
        self.seal(ctx, &plain).map(Some)
    }
}

/// The key version a sealed value names, without decrypting it.
pub fn key_version_of(sealed: &str) -> Option<u32> {
    sealed
        .strip_prefix(SEALED_PREFIX)?
        .split_once(':')?
        .0
        .parse()
        .ok()
}

/// Whether `value` has the shape of a sealed secret.
pub fn is_sealed(value: &str) -> bool {
    key_version_of(value).is_some()
}

fn parse_sealed(ctx: &SecretContext<'_>, sealed: &str) -> Result<(u32, Vec<u8>), CryptoError> {
    let malformed = |reason: &str| CryptoError::Malformed {
        context: ctx.to_string(),
        reason: reason.into(),
    };
    let rest = sealed
        .strip_prefix(SEALED_PREFIX)
        .ok_or_else(|| malformed("it does not start with `enc:v1:k`"))?;
    let (version, data) = rest
        .split_once(':')
        .ok_or_else(|| malformed("it has no `:` after the key version"))?;
    let version: u32 = version
        .parse()
        .map_err(|_| malformed("its key version is not a number"))?;
    let blob = URL_SAFE_NO_PAD
        .decode(data)
        .map_err(|_| malformed("its payload is not base64url"))?;
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(malformed("its payload is too short"));
    }
    Ok((version, blob))
}

/// `OPS_ENCRYPTION_KEY`, when set and not blank; a value that is not UTF-8 is a
/// [`KeyError::NotUnicode`].
pub fn key_from_env() -> Result<Option<zeroize::Zeroizing<String>>, KeyError> {
    let value = ops_core::env::var(KEY_ENV).map_err(|_| KeyError::NotUnicode {
        var: KEY_ENV.to_owned(),
    })?;
    Ok(value
        .map(zeroize::Zeroizing::new)
        .filter(|v| !v.trim().is_empty()))
}
