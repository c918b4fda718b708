//! What the native-API providers (LangSmith, Opik, Weave) share: the observations a trace is
//! sent as, UUIDv7 ids that match start times, timestamps, and small bounded caches.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use ops_core::model::stable_observation_id;
use ops_core::{Level, Observation, Trace, TraceId};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The observations a trace is sent as: its own, or, for a trace without any, one built from
/// the trace itself (id from the trace id).
pub fn observations(trace: &Trace) -> Cow<'_, [Observation]> {
    if !trace.observations.is_empty() {
        return Cow::Borrowed(&trace.observations);
    }
    let id = trace
        .id
        .as_uuid()
        .filter(|u| !u.is_nil())
        .unwrap_or_else(|| stable_observation_id(trace.id.as_str(), trace.start_time));
    let mut o = Observation::at(trace.kind, trace.name.clone(), trace.start_time);
    o.id = id;
    o.end_time = trace.end_time;
    o.input = trace.input.clone();
    o.output = trace.output.clone();
    o.metadata = trace.metadata.clone();
    o.tags = trace.tags.clone();
    Cow::Owned(vec![o])
}

/// The parent `o` is sent with: its parent id, unless that is itself or a span of another
/// service (a W3C `traceparent`'s parent, [`ops_core::model::remote_span_id`]), which these
/// platforms cannot point at, since they link runs by full UUID: such an observation is sent
/// as the top of this service's part of the trace, under the same trace id.
pub fn local_parent(o: &Observation) -> Option<Uuid> {
    o.parent_id
        .filter(|p| *p != o.id && ops_core::model::remote_span_id(*p).is_none())
}

/// Whether `o` has no parent within `trace` (its parent, if any, was sent in another export
/// or belongs to another trace). Linear in the trace's observations: over a whole trace, use
/// [`is_root_in`].
pub fn is_root(trace: &Trace, o: &Observation) -> bool {
    o.parent_id
        .is_none_or(|p| p == o.id || !trace.observations.iter().any(|x| x.id == p))
}

/// RFC 3339 in UTC with microseconds and `Z`, which Opik, LangSmith and Weave all take.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The millisecond timestamp of a UUIDv7 (`None` for other versions).
pub fn v7_millis(id: Uuid) -> Option<i64> {
    if id.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    i64::try_from(secs)
        .ok()?
        .checked_mul(1000)?
        .checked_add(i64::from(nanos / 1_000_000))
}

/// A UUIDv7 with the timestamp `millis` (clamped to the epoch) and the other bits from a
/// hash of `seed`: the same inputs always give the same id.
pub fn v7_at(millis: i64, seed: &str) -> Uuid {
    let at = DateTime::<Utc>::from_timestamp_millis(millis.max(0)).unwrap_or_default();
    // A seed that parses as a v7 UUID would be kept as it is; salt it so the timestamp given
    // here always wins.
    stable_observation_id(&format!("ops:{seed}"), at)
}

/// Whether the UUIDv7 `id` is usable where ids must be version 7 and not in the future
/// (Opik): it is v7 and its timestamp is at most `now`.
pub fn is_usable_v7(id: Uuid, now: DateTime<Utc>) -> bool {
    v7_millis(id).is_some_and(|ms| ms <= now.timestamp_millis())
}

/// Derives version-7 ids for platforms that require them, with timestamps that match the
/// start times and are never in the future.
///
/// - **Trace ids**: a trace id that is a usable UUIDv7 is kept. Any other is derived once per
///   trace id with the timestamp of the trace's start (clamped to now) and remembered, so the
///   parts of a trace delivered in several exports, and records of one request sent as
///   separate traces (Dify's moderation and tool records under a message), share it. The
///   memory is bounded; once a trace id is forgotten, a later part gets a new id, except for
///   UUIDv7 trace ids (the ids `ops` generates), which never need one.
/// - **Observation ids**: a usable UUIDv7 is kept (what `ops_core` gives observations). Any
///   other, or one in the future, becomes a v7 with the timestamp of its trace's id and bits
///   from a hash of the id, so a child that only knows its parent's id maps it the same way.
#[derive(Debug)]
pub struct IdDeriver {
    traces: Bounded<String, Uuid>,
}

impl Default for IdDeriver {
    fn default() -> Self {
        Self {
            traces: Bounded::new(50_000),
        }
    }
}

impl IdDeriver {
    /// The id of `trace` (see the type docs).
    pub fn trace_id(&mut self, trace: &Trace, now: DateTime<Utc>) -> Uuid {
        if let Some(u) = trace.id.as_uuid().filter(|u| is_usable_v7(*u, now)) {
            return u;
        }
        if let Some(u) = self.traces.get(&trace.id.as_str().to_owned()) {
            return *u;
        }
        let id = derive_trace_id(&trace.id, trace.start_time, now);
        self.traces.insert(trace.id.as_str().to_owned(), id);
        id
    }

    /// The id of observation (or parent) `id` in a trace whose id is `trace_id`.
    pub fn observation_id(&self, id: Uuid, trace_id: Uuid, now: DateTime<Utc>) -> Uuid {
        if is_usable_v7(id, now) {
            return id;
        }
        v7_at(
            v7_millis(trace_id).unwrap_or_else(|| now.timestamp_millis()),
            &id.to_string(),
        )
    }
}

/// A v7 trace id for `id` at `start` (clamped to now); see [`IdDeriver`].
pub fn derive_trace_id(id: &TraceId, start: DateTime<Utc>, now: DateTime<Utc>) -> Uuid {
    let millis = start.min(now).timestamp_millis();
    v7_at(millis, id.as_str())
}

/// `value` as a JSON object: an object as it is, anything else under `key`.
pub fn as_object(value: &Value, key: &str) -> Map<String, Value> {
    match value {
        Value::Object(m) => m.clone(),
        other => {
            let mut m = Map::new();
            m.insert(key.to_owned(), other.clone());
            m
        }
    }
}

/// The error text of a failed observation: its status message, else `error`. `None` unless
/// its level is ERROR.
pub fn error_text(o: &Observation) -> Option<String> {
    (o.level == Level::Error).then(|| {
        o.status_message
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| "error".into())
    })
}

/// The error text with the error's chain of causes when one was captured
/// ([`Observation::error_chain`]): the message, a blank line, `Caused by:` and one line per
/// cause, as a traceback follows the message. `None` unless its level is ERROR.
pub fn error_report(o: &Observation) -> Option<String> {
    let text = error_text(o)?;
    Some(match o.error_chain() {
        Some(chain) if chain.starts_with(text.as_str()) => chain.to_owned(),
        Some(chain) => format!("{text}\n\n{chain}"),
        None => text,
    })
}

/// The observation's error type, from the `error_type` metadata `#[traced]` records, else
/// `Error`.
pub fn error_type(o: &Observation) -> String {
    o.error_type().unwrap_or("Error").to_owned()
}

/// The trace's tags followed by the observation's, without duplicates; linear in the tags.
pub fn tags(trace: &Trace, o: &Observation) -> Vec<String> {
    unique(trace.tags.iter().chain(&o.tags))
}

/// `items` in order without repeats (the first of each kept), in linear time.
pub fn unique<'a>(items: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut seen: HashSet<&'a str> = HashSet::new();
    items
        .into_iter()
        .filter(|t| seen.insert(t.as_str()))
        .cloned()
        .collect()
}

/// The ids of the observations of `trace`, for [`is_root_in`].
pub fn observation_ids(trace: &Trace) -> HashSet<Uuid> {
    trace.observations.iter().map(|o| o.id).collect()
}

/// [`is_root`] with the trace's ids at hand ([`observation_ids`]): constant time.
pub fn is_root_in(ids: &HashSet<Uuid>, o: &Observation) -> bool {
    o.parent_id.is_none_or(|p| p == o.id || !ids.contains(&p))
}

/// Who and what the observation is for, as metadata: `user_id`, `session_id`, `app_id`,
/// `tenant_id`, `environment`, `release`, `version` where set.
pub fn attribute_metadata(trace: &Trace, o: &Observation, into: &mut Map<String, Value>) {
    let a = trace.attributes_of(o);
    for (k, v) in [
        ("user_id", a.user_id),
        ("session_id", a.session_id),
        ("app_id", a.app_id),
        ("tenant_id", a.tenant_id),
        ("environment", a.environment),
        ("release", a.release),
        ("version", a.version),
    ] {
        if let Some(v) = v {
            into.entry(k).or_insert(json!(v));
        }
    }
}

/// `t` clamped into the years 1970 to 9999, which every platform's timestamp format can hold.
pub fn clamp_time(t: DateTime<Utc>) -> DateTime<Utc> {
    let min = DateTime::<Utc>::UNIX_EPOCH;
    let max = "9999-12-31T23:59:59.999999Z"
        .parse::<DateTime<Utc>>()
        .unwrap_or(min + TimeDelta::days(365 * 8000));
    t.clamp(min, max)
}

/// A map that keeps at most `capacity` entries, forgetting the oldest insertions first.
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    /// An empty map of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// Inserts or replaces `key`, forgetting the oldest entries past the capacity.
    pub fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::ObservationKind;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn v7_ids_keep_their_time_and_others_are_derived_stably() {
        let now = t("2026-01-02T03:04:05Z");
        let start = t("2026-01-02T03:00:00.250Z");
        let v4 = TraceId::new("6f9619ff-8b86-4011-b42d-00c04fc964ff").unwrap();
        let mut trace = Trace::new(v4.clone(), ObservationKind::Message, "m", start);
        let mut ids = IdDeriver::default();
        let a = ids.trace_id(&trace, now);
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(v7_millis(a), Some(start.timestamp_millis()));
        // A later record of the same trace (Dify's tool record) starts later: same id.
        trace.start_time = start + TimeDelta::seconds(3);
        assert_eq!(ids.trace_id(&trace, now), a);
        // A fresh deriver (another process) derives from the start it sees.
        assert_ne!(IdDeriver::default().trace_id(&trace, now), a);

        let v7 = Uuid::now_v7();
        let far = Utc::now() + TimeDelta::days(1);
        let own = Trace::new(
            TraceId::new(v7.to_string()).unwrap(),
            ObservationKind::Span,
            "x",
            start,
        );
        assert_eq!(ids.trace_id(&own, far), v7);

        let in_future = uuid::Builder::from_unix_timestamp_millis(
            u64::try_from(now.timestamp_millis()).unwrap() + 60_000,
            &[1; 10],
        )
        .into_uuid();
        assert!(!is_usable_v7(in_future, now));
        let mapped = ids.observation_id(in_future, a, now);
        assert!(is_usable_v7(mapped, now));
        assert_eq!(mapped, ids.observation_id(in_future, a, now));
        assert_eq!(v7_millis(mapped), v7_millis(a));
        let v4_obs: Uuid = "6f9619ff-8b86-4011-b42d-00c04fc964fe".parse().unwrap();
        assert_eq!(ids.observation_id(v4_obs, a, now).get_version_num(), 7);
        let past = v7_at(start.timestamp_millis(), "x");
        assert_eq!(ids.observation_id(past, a, now), past);
    }

    #[test]
    fn bounded_maps_forget_the_oldest() {
        let mut m = Bounded::new(2);
        m.insert(1, "a");
        m.insert(2, "b");
        m.insert(1, "c");
        m.insert(3, "d");
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&1), None);
        assert_eq!(m.get(&3), Some(&"d"));
    }

    #[test]
    fn helpers() {
        assert_eq!(
            iso(t("2026-01-02T03:04:05.1234567Z")),
            "2026-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            as_object(&json!("x"), "input"),
            json!({"input": "x"}).as_object().unwrap().clone()
        );
        assert_eq!(
            clamp_time(DateTime::<Utc>::MIN_UTC),
            DateTime::<Utc>::UNIX_EPOCH
        );
        let trace = Trace::new(TraceId::generate(), ObservationKind::Span, "t", Utc::now());
        assert_eq!(observations(&trace).len(), 1);
    }
}
