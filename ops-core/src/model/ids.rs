//! Trace and observation identifiers.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest trace id accepted, as in Dify's `X-Trace-Id` rule.
pub const MAX_TRACE_ID_LEN: usize = 128;

/// A trace's id: an external id given by the app (`^[A-Za-z0-9_-]{1,128}$`), a workflow run id,
/// a message id, or a generated UUIDv7.
///
/// Cheap to clone: the id is shared, not copied.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(Arc<str>);

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
            None => Ok(Self(Arc::from(id))),
            Some(reason) => Err(InvalidTraceId {
                shown: id.chars().take(40).collect(),
                reason,
            }),
        }
    }

    /// A fresh trace id: a hyphenated UUIDv7.
    pub fn generate() -> Self {
        Self::from_uuid(Uuid::now_v7())
    }

    /// The id a UUID makes, hyphenated (valid by construction: no check, no formatter).
    pub(crate) fn from_uuid(uuid: Uuid) -> Self {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        Self(Arc::from(&*uuid.hyphenated().encode_lower(&mut buf)))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a UUID, when it is one (workflow run ids and message ids usually are).
    pub fn as_uuid(&self) -> Option<Uuid> {
        Uuid::try_parse(&self.0).ok()
    }

    /// The 128-bit id this trace has on the wire (OTLP, W3C `traceparent`): the UUID's 16
    /// bytes when the id is a UUID other than the nil one (hyphenated, or 32 hex digits, so a
    /// W3C trace id is kept as it is), else FNV-1a-128 of the id's UTF-8 bytes (never zero,
    /// which OTLP and W3C reject). Every service and every OTLP provider maps a trace id the
    /// same way.
    pub fn to_w3c_bytes(&self) -> [u8; 16] {
        match self.as_uuid() {
            Some(uuid) if !uuid.is_nil() => *uuid.as_bytes(),
            _ => match fnv1a_128(self.0.as_bytes()) {
                0 => 1u128.to_be_bytes(),
                h => h.to_be_bytes(),
            },
        }
    }

    /// The trace id a 128-bit wire id (a W3C `trace-id`) becomes: its 16 bytes as a
    /// hyphenated UUID, so that [`TraceId::to_w3c_bytes`] gives them back and providers that
    /// key traces by UUID (LangSmith, Opik, Weave) see the same UUID in every service. A trace
    /// started by `ops` and carried in a `traceparent` gets back its own id, letter for
    /// letter. `None` for the all-zero id, which W3C forbids.
    pub fn from_w3c_bytes(bytes: [u8; 16]) -> Option<Self> {
        let uuid = Uuid::from_bytes(bytes);
        (!uuid.is_nil()).then(|| Self::from_uuid(uuid))
    }
}

/// The 64-bit span id an observation has on the wire (OTLP, the `parent-id` of a W3C
/// `traceparent`): the low 8 bytes of its UUID (the random part of a UUIDv7, or the hashed
/// part of [`stable_observation_id`]), else its high 8 bytes if those are all zero, else 1
/// (an all-zero span id is invalid).
pub fn span_id_bytes(id: Uuid) -> [u8; 8] {
    let value = id.as_u128();
    let low = value as u64;
    let high = (value >> 64) as u64;
    match (low, high) {
        (0, 0) => 1u64.to_be_bytes(),
        (0, high) => high.to_be_bytes(),
        (low, _) => low.to_be_bytes(),
    }
}

/// The UUID an observation's parent id holds when the parent is a span of another service,
/// known only by its 64-bit W3C span id: the span id in the low 8 bytes, the high 8 bytes
/// zero. [`span_id_bytes`] gives the span id back, so OTLP providers send the remote span as
/// the parent; `ops` never gives its own observations such ids (theirs are UUIDv7s, whose
/// high bytes hold a timestamp), so [`remote_span_id`] tells them apart.
pub fn remote_parent_uuid(span_id: [u8; 8]) -> Uuid {
    Uuid::from_u128(u128::from(u64::from_be_bytes(span_id)))
}

/// The W3C span id of a parent made with [`remote_parent_uuid`]: `Some` when `parent` is a
/// span of another service (high 8 bytes zero, low 8 bytes not), `None` for an observation.
/// Providers that link runs by their full UUID (LangSmith, Opik, Weave) cannot point at a
/// remote span, and send such an observation as the top of its part of the trace.
pub fn remote_span_id(parent: Uuid) -> Option<[u8; 8]> {
    let value = parent.as_u128();
    (value >> 64 == 0 && value != 0).then(|| (value as u64).to_be_bytes())
}

/// FNV-1a with 128-bit state: stable across Rust versions, platforms and processes.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

impl Serialize for TraceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
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
    fn w3c_ids_round_trip() {
        let hex = "4bf92f3577b34da6a3ce929d0e0e4736";
        let id = TraceId::new(hex).unwrap();
        let bytes = id.to_w3c_bytes();
        assert_eq!(bytes, u128::from_str_radix(hex, 16).unwrap().to_be_bytes());
        let back = TraceId::from_w3c_bytes(bytes).unwrap();
        assert_eq!(back.as_str(), "4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
        assert_eq!(back.to_w3c_bytes(), bytes);
        assert!(TraceId::from_w3c_bytes([0; 16]).is_none());
        let generated = TraceId::generate();
        assert_eq!(
            TraceId::from_w3c_bytes(generated.to_w3c_bytes()).unwrap(),
            generated
        );
        let external = TraceId::new("run-1").unwrap();
        assert_ne!(external.to_w3c_bytes(), [0; 16]);
        assert_eq!(
            external.to_w3c_bytes(),
            TraceId::new("run-1").unwrap().to_w3c_bytes()
        );
    }

    #[test]
    fn remote_parents_are_told_apart() {
        let span = [0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
        let parent = remote_parent_uuid(span);
        assert_eq!(remote_span_id(parent), Some(span));
        assert_eq!(span_id_bytes(parent), span);
        assert_eq!(remote_span_id(Uuid::now_v7()), None);
        assert_eq!(remote_span_id(Uuid::nil()), None);
        assert_eq!(span_id_bytes(Uuid::nil()), [0, 0, 0, 0, 0, 0, 0, 1]);
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
