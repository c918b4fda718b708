//! Trace and observation identifiers.

use std::fmt;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest trace id accepted, as in Dify's `X-Trace-Id` rule.
pub const MAX_TRACE_ID_LEN: usize = 128;

/// A trace's id: an external id given by the app (`^[A-Za-z0-9_-]{1,128}$`), a workflow run id,
/// a message id, or a generated UUIDv7.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TraceId(String);

/// The error for a trace id that does not match `^[A-Za-z0-9_-]{1,128}$`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid trace id {shown:?}: {reason}; a trace id must be 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'"
)]
pub struct InvalidTraceId {
    shown: String,
    reason: &'static str,
}

impl TraceId {
    /// Validates an external trace id (for example from an `X-Trace-Id` header).
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidTraceId> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > MAX_TRACE_ID_LEN {
            Some("it is longer than 128 characters")
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Some("it contains a character outside A-Z, a-z, 0-9, '_' and '-'")
        } else {
            None
        };
        match reason {
            None => Ok(Self(id)),
            Some(reason) => Err(InvalidTraceId {
                shown: id.chars().take(40).collect(),
                reason,
            }),
        }
    }

    /// A fresh trace id: a hyphenated UUIDv7.
    pub fn generate() -> Self {
        Self(Uuid::now_v7().to_string())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a UUID, when it is one (workflow run ids and message ids usually are).
    pub fn as_uuid(&self) -> Option<Uuid> {
        Uuid::try_parse(&self.0).ok()
    }
}

impl<'de> Deserialize<'de> for TraceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TraceId::new(s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.0)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TraceId {
    type Err = InvalidTraceId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceId::new(s)
    }
}

/// A UUIDv7 derived from a source id and a start time, so that the same record always gets the
/// same observation id (platforms then upsert on a re-send instead of duplicating).
///
/// A source id that is already a UUIDv7 is kept as it is. Otherwise the millisecond timestamp
/// comes from `start_time` and the remaining bits from a hash of `source`, the scheme Opik's
/// `uuid4_to_uuid7` uses.
pub fn stable_observation_id(source: &str, start_time: DateTime<Utc>) -> Uuid {
    if let Ok(uuid) = Uuid::try_parse(source)
        && uuid.get_version_num() == 7
    {
        return uuid;
    }
    let millis = u64::try_from(start_time.timestamp_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&fnv1a(source.as_bytes(), 0).to_be_bytes());
    random[8..].copy_from_slice(&fnv1a(source.as_bytes(), 1).to_be_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// A deterministic 64-bit hash (FNV-1a with a salt). Stable across Rust versions and processes,
/// unlike `DefaultHasher`, which ids must not depend on.
pub(crate) fn fnv1a(bytes: &[u8], salt: u64) -> u64 {
    let mut hasher = Fnv1a(0xcbf2_9ce4_8422_2325 ^ salt.wrapping_mul(0x100_0000_01b3));
    hasher.write(bytes);
    hasher.finish()
}

struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_rules() {
        assert!(TraceId::new("abc_DEF-123").is_ok());
        assert!(TraceId::new("a".repeat(128)).is_ok());
        let long = TraceId::new("a".repeat(129)).unwrap_err();
        assert!(long.to_string().contains("longer than 128"), "{long}");
        let empty = TraceId::new("").unwrap_err();
        assert!(empty.to_string().contains("empty"));
        let bad = TraceId::new("has space").unwrap_err();
        assert!(bad.to_string().contains("\"has space\""), "{bad}");
        assert!(bad.to_string().contains("A-Z, a-z, 0-9"), "{bad}");
        assert!(TraceId::new("dot.ted").is_err());
        assert!(TraceId::new("ünï").is_err());
    }

    #[test]
    fn trace_id_serde_validates() {
        let ok: TraceId = serde_json::from_str("\"run-1\"").unwrap();
        assert_eq!(ok.as_str(), "run-1");
        assert!(serde_json::from_str::<TraceId>("\"bad id\"").is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"run-1\"");
    }

    #[test]
    fn generated_trace_ids_are_v7() {
        let id = TraceId::generate();
        assert_eq!(id.as_uuid().unwrap().get_version_num(), 7);
        assert!(TraceId::new(id.as_str()).is_ok());
    }

    #[test]
    fn stable_ids_are_stable_v7_with_the_start_time() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = stable_observation_id("node-exec-1", t);
        assert_eq!(a, stable_observation_id("node-exec-1", t));
        assert_ne!(a, stable_observation_id("node-exec-2", t));
        assert_eq!(a.get_version_num(), 7);
        let (secs, nanos) = a.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64, t.timestamp());
        assert_eq!(nanos / 1_000_000, 678);
        let v7 = Uuid::now_v7();
        assert_eq!(stable_observation_id(&v7.to_string(), t), v7);
        let v4 = "6f9619ff-8b86-4011-b42d-00c04fc964ff";
        assert_ne!(stable_observation_id(v4, t).to_string(), v4);
    }
}
