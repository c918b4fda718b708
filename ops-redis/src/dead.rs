//! The dead-letter stream (`{prefix}:dead`): entries a worker gave up on, each with where it
//! came from and why. Its fields:
//!
//! | field | value |
//! |---|---|
//! | `stream` | the app stream it was read from |
//! | `id` | its id there |
//! | `reason` | why it was given up on |
//! | `deliveries` | how many times it had been delivered |
//! | `orig:{field}` | each field of the original entry (`orig:v`, `orig:app`, `orig:trace`) |
//!
//! [`list`] shows them; [`replay`] writes them back to their streams (after the cause was
//! fixed: a worker upgraded, a provider configured) and removes them from this one.

use std::collections::HashMap;

use redis::aio::ConnectionLike;
use redis::streams::{StreamId, StreamRangeReply};
use redis::{RedisError, Value};

use crate::keys::Keys;
use crate::record::TRACE_FIELD;

pub(crate) const STREAM_FIELD: &str = "stream";
pub(crate) const ID_FIELD: &str = "id";
pub(crate) const REASON_FIELD: &str = "reason";
pub(crate) const DELIVERIES_FIELD: &str = "deliveries";
pub(crate) const ORIGINAL_PREFIX: &str = "orig:";

/// One dead-lettered entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadEntry {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// The app stream it came from.
    pub stream: String,
    /// Its id there.
    pub original_id: String,
    /// Why it was given up on.
    pub reason: String,
    /// How many times it had been delivered.
    pub deliveries: u64,
    /// The app it was for, when the record names one.
    pub app: Option<String>,
    /// The trace's id, when its record could be read that far.
    pub trace_id: Option<String>,
}

fn text(map: &HashMap<String, Value>, field: &str) -> Option<String> {
    match map.get(field)? {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn parse(entry: &StreamId) -> DeadEntry {
    let trace_id = text(&entry.map, &format!("{ORIGINAL_PREFIX}{TRACE_FIELD}")).and_then(|t| {
        serde_json::from_str::<serde_json::Value>(&t)
            .ok()?
            .get("id")?
            .as_str()
            .map(str::to_owned)
    });
    DeadEntry {
        id: entry.id.clone(),
        stream: text(&entry.map, STREAM_FIELD).unwrap_or_default(),
        original_id: text(&entry.map, ID_FIELD).unwrap_or_default(),
        reason: text(&entry.map, REASON_FIELD).unwrap_or_default(),
        deliveries: text(&entry.map, DELIVERIES_FIELD)
            .and_then(|d| d.parse().ok())
            .unwrap_or(0),
        app: text(&entry.map, &format!("{ORIGINAL_PREFIX}app")).filter(|a| !a.is_empty()),
        trace_id,
    }
}

/// The oldest `count` dead-lettered entries.
pub async fn list(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    count: usize,
) -> Result<Vec<DeadEntry>, RedisError> {
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(keys.dead())
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(reply.ids.iter().map(parse).collect())
}

/// Writes the oldest `count` dead-lettered entries back to their app streams, as they were
/// first written, and removes them from the dead-letter stream; returns how many. An entry
/// whose stream is not one of `keys`' app streams is left where it is.
pub async fn replay(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    count: usize,
) -> Result<usize, RedisError> {
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(keys.dead())
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    let mut replayed = 0;
    for entry in &reply.ids {
        let Some(stream) = text(&entry.map, STREAM_FIELD).filter(|s| keys.app_of(s).is_some())
        else {
            continue;
        };
        let mut fields: Vec<(&str, &Value)> = entry
            .map
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(ORIGINAL_PREFIX)?, v)))
            .collect();
        if fields.is_empty() {
            continue;
        }
        fields.sort_by(|a, b| a.0.cmp(b.0));
        let mut pipe = redis::pipe();
        pipe.atomic();
        let cmd = pipe.cmd("XADD").arg(&stream).arg("*");
        for (name, value) in fields {
            if let Value::BulkString(b) = value {
                cmd.arg(name).arg(b.as_slice());
            }
        }
        cmd.ignore();
        pipe.cmd("SADD").arg(keys.streams()).arg(&stream).ignore();
        pipe.cmd("XDEL").arg(keys.dead()).arg(&entry.id).ignore();
        pipe.query_async::<()>(conn).await?;
        replayed += 1;
    }
    Ok(replayed)
}
