//! Encoding [`Trace`]s as an OTLP `ExportTraceServiceRequest`.
//!
//! Every [`Observation`] becomes one span; a trace without observations becomes one span built
//! from the trace itself. The dialect adds the platform's attributes.
//!
//! # Ids
//! Ids are derived, never random, so a re-sent or updated trace lands on the same spans:
//! - **trace id** ([`trace_id_bytes`]): the 16 bytes of the [`TraceId`] when it parses as a
//!   UUID (hyphenated, or 32 hex digits — so a W3C trace id from a `traceparent` is kept as
//!   it is), else FNV-1a-128 of the id's UTF-8 bytes. A nil UUID is hashed too, since an
//!   all-zero id is invalid in OTLP.
//! - **span id** ([`span_id_bytes`]): the low 8 bytes of the observation's UUID (the random
//!   part of a UUIDv7, or the hashed part of `ops_core`'s stable ids), else its high 8 bytes
//!   if those are all zero.
//!
//! # Wire formats
//! [`Encoding::Protobuf`] (the default; the only one Phoenix and MLflow accept) or
//! [`Encoding::Json`], the OTLP JSON mapping: lowerCamelCase keys, hex ids, enums as integers,
//! 64-bit integers as decimal strings. Either can be gzipped ([`Compression::Gzip`]).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use ops_core::{Level, Observation, Trace, TraceId};
use prost::Message;
use serde_json::Value;
use uuid::Uuid;

use super::Dialect;

/// The instrumentation scope name spans are reported under, unless a dialect says otherwise.
pub const SCOPE_NAME: &str = "ops";
/// This crate's version, reported as the scope's and the SDK's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `flags` of every span: the W3C flags are unknown (0) and the parent is known not to be
/// remote (bit 8), as the OpenTelemetry SDKs send it.
const SPAN_FLAGS: u32 = 0x100;

/// The wire format of a request body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Binary protobuf, `application/x-protobuf`: accepted by every OTLP receiver.
    #[default]
    Protobuf,
    /// OTLP JSON, `application/json`: hex ids, integer enums, 64-bit integers as strings.
    Json,
}

impl Encoding {
    /// The `Content-Type` of a body in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    /// Parses `http/protobuf`, `protobuf`, `http/json` or `json` (the values of
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, and of the `otlp` provider's `protocol` key).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "http/protobuf" | "protobuf" | "proto" => Some(Encoding::Protobuf),
            "http/json" | "json" => Some(Encoding::Json),
            _ => None,
        }
    }

    /// Serialises `request` in this format.
    pub fn encode(self, request: &ExportTraceServiceRequest) -> Vec<u8> {
        match self {
            Encoding::Protobuf => request.encode_to_vec(),
            Encoding::Json => {
                serde_json::to_vec(request).expect("OTLP requests always serialise to JSON")
            }
        }
    }
}

pub use crate::http::Compression;

/// An OTLP attribute list under construction. Setting a key that is already there replaces
/// its value, so a list never holds a key twice (OTLP requires unique keys). Setting is
/// constant time however long the list grows (past a few keys, an index finds them).
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    list: Vec<KeyValue>,
    /// Key to position, once the list is long enough for a scan to cost more.
    index: Option<HashMap<String, usize>>,
}

/// The length past which [`Attributes`] keeps an index.
const INDEX_FROM: usize = 16;

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

impl Attributes {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.list.iter().position(|kv| kv.key == key),
        }
    }

    fn reindex(&mut self) {
        self.index = (self.list.len() > INDEX_FROM).then(|| {
            self.list
                .iter()
                .enumerate()
                .map(|(i, kv)| (kv.key.clone(), i))
                .collect()
        });
    }

    /// Sets `key` to an OTLP value.
    pub fn set(&mut self, key: impl Into<String>, value: any_value::Value) -> &mut Self {
        let key = key.into();
        let value = Some(AnyValue { value: Some(value) });
        match self.position(&key) {
            Some(i) => self.list[i].value = value,
            None => {
                if let Some(index) = &mut self.index {
                    index.insert(key.clone(), self.list.len());
                }
                self.list.push(KeyValue {
                    key,
                    value,
                    ..KeyValue::default()
                });
                if self.index.is_none() && self.list.len() > INDEX_FROM {
                    self.reindex();
                }
            }
        }
        self
    }

    /// Sets a string.
    pub fn str(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.set(key, any_value::Value::StringValue(value.into()))
    }

    /// Sets a string when there is one (and it is not empty).
    pub fn opt_str<S: Into<String>>(
        &mut self,
        key: impl Into<String>,
        value: Option<S>,
    ) -> &mut Self {
        if let Some(v) = value.map(Into::into).filter(|v: &String| !v.is_empty()) {
            self.str(key, v);
        }
        self
    }

    /// Sets a 64-bit integer.
    pub fn int(&mut self, key: impl Into<String>, value: i64) -> &mut Self {
        self.set(key, any_value::Value::IntValue(value))
    }

    /// Sets an unsigned count (saturating at `i64::MAX`).
    pub fn uint(&mut self, key: impl Into<String>, value: u64) -> &mut Self {
        self.int(key, i64::try_from(value).unwrap_or(i64::MAX))
    }

    /// Sets a double.
    pub fn double(&mut self, key: impl Into<String>, value: f64) -> &mut Self {
        self.set(key, any_value::Value::DoubleValue(value))
    }

    /// Sets a boolean.
    pub fn bool(&mut self, key: impl Into<String>, value: bool) -> &mut Self {
        self.set(key, any_value::Value::BoolValue(value))
    }

    /// Sets an array of strings.
    pub fn str_array<S: Into<String>>(
        &mut self,
        key: impl Into<String>,
        values: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        let values = values
            .into_iter()
            .map(|s| AnyValue {
                value: Some(any_value::Value::StringValue(s.into())),
            })
            .collect();
        self.set(key, any_value::Value::ArrayValue(ArrayValue { values }))
    }

    /// Sets `value` serialised as a JSON string (a string becomes `"\"text\""`).
    pub fn json(&mut self, key: impl Into<String>, value: &Value) -> &mut Self {
        self.str(key, json_text(value))
    }

    /// Sets `value` as text: a JSON string as it is, anything else serialised as JSON.
    pub fn text(&mut self, key: impl Into<String>, value: &Value) -> &mut Self {
        self.str(key, text_of(value))
    }

    /// Sets `value` with its natural OTLP type: strings, booleans, integers and doubles as
    /// themselves, arrays of those as arrays, anything else (objects, mixed arrays, null) as
    /// a JSON string.
    pub fn value(&mut self, key: impl Into<String>, value: &Value) -> &mut Self {
        match scalar(value) {
            Some(v) => self.set(key, v),
            None => match value {
                Value::Array(items) => {
                    let values: Option<Vec<AnyValue>> = items
                        .iter()
                        .map(|v| scalar(v).map(|v| AnyValue { value: Some(v) }))
                        .collect();
                    match values {
                        Some(values) => {
                            self.set(key, any_value::Value::ArrayValue(ArrayValue { values }))
                        }
                        None => self.json(key, value),
                    }
                }
                _ => self.json(key, value),
            },
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&any_value::Value> {
        self.position(key)
            .and_then(|i| self.list[i].value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    /// The string value of `key`.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(any_value::Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        if let Some(i) = self.position(key) {
            self.list.remove(i);
            self.reindex();
        }
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|kv| kv.key.as_str())
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The OTLP list.
    pub fn into_vec(self) -> Vec<KeyValue> {
        self.list
    }
}

fn scalar(value: &Value) -> Option<any_value::Value> {
    match value {
        Value::String(s) => Some(any_value::Value::StringValue(s.clone())),
        Value::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(any_value::Value::IntValue)
            .or_else(|| n.as_f64().map(any_value::Value::DoubleValue)),
        _ => None,
    }
}

/// A JSON value as text: a string as it is, anything else serialised as JSON.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => json_text(other),
    }
}

/// `value` as compact JSON, exactly as `serde_json::to_string` writes it, but faster for the
/// usual captured value (strings that need no escape are copied whole instead of being
/// scanned byte by byte for escapes).
pub fn json_text(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out, 0);
    out
}

/// Past this depth [`write_json`] hands the rest to `serde_json` (the queue cuts captured
/// values well before it).
const WRITE_JSON_DEPTH: usize = 128;

fn write_json(value: &Value, out: &mut String, depth: usize) {
    use std::fmt::Write as _;
    match value {
        Value::String(s) => write_json_str(s, out),
        _ if depth >= WRITE_JSON_DEPTH => {
            let _ = write!(out, "{value}");
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(k, out);
                out.push(':');
                write_json(v, out, depth + 1);
            }
            out.push('}');
        }
        // null, booleans and numbers: `Value`'s Display is serde_json's compact form.
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

/// Whether any byte of `s` needs an escape in JSON. Checked 32 bytes at a time without a
/// branch per byte, which the compiler vectorises: several times faster than a byte loop.
pub(crate) fn needs_escape(s: &str) -> bool {
    fn special(b: u8) -> bool {
        (b < 0x20) | (b == b'"') | (b == b'\\')
    }
    let mut chunks = s.as_bytes().chunks_exact(32);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |hit, &b| hit | special(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| special(b))
}

/// A JSON string literal: `s` copied whole when no byte of it needs an escape (serde_json
/// escapes `"`, `\` and control characters below U+0020, nothing else), else serde_json's.
fn write_json_str(s: &str, out: &mut String) {
    if !needs_escape(s) {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        use std::fmt::Write as _;
        let _ = write!(out, "{}", Value::String(s.to_owned()));
    }
}

/// The MIME type of [`text_of`]'s result: `text/plain` for a string, else `application/json`.
pub fn mime_of(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "text/plain",
        _ => "application/json",
    }
}

/// The OTLP trace id of `id`: its UUID bytes, else a 128-bit hash of it (see the module docs
/// and [`TraceId::to_w3c_bytes`], which it is).
pub fn trace_id_bytes(id: &TraceId) -> [u8; 16] {
    id.to_w3c_bytes()
}

/// The OTLP span id of an observation id: its low 8 bytes (see the module docs and
/// [`ops_core::model::span_id_bytes`], which it is).
pub fn span_id_bytes(id: Uuid) -> [u8; 8] {
    ops_core::model::span_id_bytes(id)
}

/// [`trace_id_bytes`] as 32 lowercase hex digits: Langfuse's and Phoenix's trace id.
pub fn trace_id_hex(id: &TraceId) -> String {
    hex(&trace_id_bytes(id))
}

/// [`span_id_bytes`] as 16 lowercase hex digits: Langfuse's observation id, Phoenix's span id.
pub fn span_id_hex(id: Uuid) -> String {
    hex(&span_id_bytes(id))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Nanoseconds since the Unix epoch (0 before 1970, which OTLP cannot express).
pub fn unix_nanos(t: DateTime<Utc>) -> u64 {
    t.timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

/// The observation a trace without observations is sent as: the trace itself as one span.
/// Its id is the trace id when that is a UUID, else derived from it.
pub(crate) fn trace_as_observation(trace: &Trace) -> Observation {
    let id = trace
        .id
        .as_uuid()
        .unwrap_or_else(|| Uuid::from_bytes(trace_id_bytes(&trace.id)));
    let mut o = Observation::at(trace.kind, trace.name.clone(), trace.start_time);
    o.id = id;
    o.end_time = trace.end_time;
    o.input = trace.input.clone();
    o.output = trace.output.clone();
    o.metadata = trace.metadata.clone();
    o.tags = trace.tags.clone();
    o
}

thread_local! {
    /// The trace [`encode_spans`] is encoding on this thread (by address) and its observation
    /// ids, so that [`is_root`] is constant time while a dialect encodes its spans.
    static ENCODING: RefCell<Option<(usize, HashSet<Uuid>)>> = const { RefCell::new(None) };
}

/// Clears [`ENCODING`] when the encoding of a trace ends, even by a panic.
struct TraceScope;

impl TraceScope {
    fn enter(trace: &Trace) -> Self {
        let ids = trace.observations.iter().map(|o| o.id).collect();
        ENCODING.with(|e| *e.borrow_mut() = Some((trace as *const Trace as usize, ids)));
        TraceScope
    }
}

impl Drop for TraceScope {
    fn drop(&mut self) {
        ENCODING.with(|e| *e.borrow_mut() = None);
    }
}

/// Whether `observation` has no parent within `trace` (its parent, if any, was sent in
/// another export or lives in another system). Constant time while [`encode_spans`] encodes
/// `trace`; otherwise linear in its observations.
pub fn is_root(trace: &Trace, observation: &Observation) -> bool {
    let Some(parent) = observation.parent_id else {
        return true;
    };
    let address = trace as *const Trace as usize;
    ENCODING
        .with(|e| {
            e.borrow()
                .as_ref()
                .filter(|(at, _)| *at == address)
                .map(|(_, ids)| !ids.contains(&parent))
        })
        .unwrap_or_else(|| !trace.observations.iter().any(|o| o.id == parent))
}

/// The `exception` event OpenTelemetry records for a failure, at the observation's end.
pub fn exception_event(observation: &Observation) -> Option<Event> {
    if observation.level != Level::Error {
        return None;
    }
    let mut attrs = Attributes::new();
    attrs.str(
        "exception.type",
        observation.error_type().unwrap_or("Error"),
    );
    attrs.str(
        "exception.message",
        observation
            .status_message
            .clone()
            .unwrap_or_else(|| "error".into()),
    );
    if let Some(chain) = observation.error_chain() {
        attrs.str("exception.stacktrace", chain);
    }
    Some(Event {
        time_unix_nano: unix_nanos(observation.end_time.unwrap_or(observation.start_time)),
        name: "exception".into(),
        attributes: attrs.into_vec(),
        ..Event::default()
    })
}

/// One span with the index of the trace it came from (in the exported batch).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedSpan {
    /// The index of the trace in the batch.
    pub trace: usize,
    /// The span.
    pub span: Span,
}

/// Encodes one observation of `trace` as a span, with `dialect`'s name, kind, attributes and
/// events.
pub fn encode_span<D: Dialect + ?Sized>(
    dialect: &D,
    trace: &Trace,
    observation: &Observation,
) -> Span {
    let start = unix_nanos(observation.start_time);
    let end = observation.end_time.map_or(start, unix_nanos).max(start);
    let mut attrs = Attributes::new();
    dialect.span_attributes(trace, observation, &mut attrs);
    let status = match observation.level {
        Level::Error => Status {
            code: StatusCode::Error as i32,
            message: observation
                .status_message
                .clone()
                .unwrap_or_else(|| "error".into()),
        },
        _ => Status::default(),
    };
    Span {
        trace_id: trace_id_bytes(&trace.id).to_vec(),
        span_id: span_id_bytes(observation.id).to_vec(),
        parent_span_id: observation
            .parent_id
            .map(|p| span_id_bytes(p).to_vec())
            .unwrap_or_default(),
        flags: SPAN_FLAGS,
        name: dialect.span_name(trace, observation),
        kind: dialect.span_kind(trace, observation) as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: attrs.into_vec(),
        events: dialect.span_events(trace, observation),
        status: Some(status),
        ..Span::default()
    }
}

/// Every span of `traces`, in order, each with the index of its trace.
pub fn encode_spans<D: Dialect + ?Sized>(dialect: &D, traces: &[Arc<Trace>]) -> Vec<IndexedSpan> {
    let mut out = Vec::with_capacity(traces.iter().map(|t| t.observations.len().max(1)).sum());
    for (index, trace) in traces.iter().enumerate() {
        if trace.observations.is_empty() {
            let o = trace_as_observation(trace);
            out.push(IndexedSpan {
                trace: index,
                span: encode_span(dialect, trace, &o),
            });
        } else {
            // The trace stays borrowed (so at its address) while the guard lives.
            let _encoding = TraceScope::enter(trace);
            out.extend(trace.observations.iter().map(|o| IndexedSpan {
                trace: index,
                span: encode_span(dialect, trace, o),
            }));
        }
    }
    out
}

/// The resource every span of `dialect` is reported under: `service.name` (`ops` unless the
/// dialect sets it), the `telemetry.sdk.*` keys, then the dialect's attributes.
pub fn resource<D: Dialect + ?Sized>(dialect: &D) -> Resource {
    let mut attrs = Attributes::new();
    attrs
        .str("telemetry.sdk.language", "rust")
        .str("telemetry.sdk.name", "ops")
        .str("telemetry.sdk.version", VERSION)
        .str("service.name", "ops");
    dialect.resource_attributes(&mut attrs);
    Resource {
        attributes: attrs.into_vec(),
        ..Resource::default()
    }
}

/// The instrumentation scope of `dialect`'s spans.
pub fn scope<D: Dialect + ?Sized>(dialect: &D) -> InstrumentationScope {
    let mut attrs = Attributes::new();
    dialect.scope_attributes(&mut attrs);
    InstrumentationScope {
        name: dialect.scope_name().to_owned(),
        version: VERSION.to_owned(),
        attributes: attrs.into_vec(),
        ..InstrumentationScope::default()
    }
}

/// A request holding `spans` under one resource and one scope.
pub fn request(
    resource: &Resource,
    scope: &InstrumentationScope,
    spans: Vec<Span>,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope.clone()),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// Writes the protobuf of [`request`]`(resource, scope, spans)` into `buf` (cleared first),
/// byte for byte what `prost` would write, without cloning the spans into an owned request:
/// the envelope (one `ResourceSpans`, one `ScopeSpans`) is written by hand around each span's
/// own encoding.
pub fn encode_protobuf_into<'a>(
    resource: &Resource,
    scope: &InstrumentationScope,
    spans: impl Iterator<Item = &'a Span> + Clone,
    buf: &mut Vec<u8>,
) {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
    /// A length-delimited field with tag 1 or 2: key, length, body.
    fn field_len(len: usize) -> usize {
        1 + encoded_len_varint(len as u64) + len
    }
    fn header(tag: u32, len: usize, buf: &mut Vec<u8>) {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(len as u64, buf);
    }
    let spans_len: usize = spans.clone().map(|s| field_len(s.encoded_len())).sum();
    let scope_len = scope.encoded_len();
    let scope_spans_len = field_len(scope_len) + spans_len;
    let resource_len = resource.encoded_len();
    let resource_spans_len = field_len(resource_len) + field_len(scope_spans_len);
    buf.clear();
    buf.reserve(field_len(resource_spans_len));
    // ExportTraceServiceRequest.resource_spans (1)
    header(1, resource_spans_len, buf);
    // A Vec grows to hold any message: these writes cannot fail.
    // ResourceSpans.resource (1)
    encode_key(1, WireType::LengthDelimited, buf);
    let _ = resource.encode_length_delimited(buf);
    // ResourceSpans.scope_spans (2)
    header(2, scope_spans_len, buf);
    // ScopeSpans.scope (1)
    encode_key(1, WireType::LengthDelimited, buf);
    let _ = scope.encode_length_delimited(buf);
    // ScopeSpans.spans (2)
    for span in spans {
        encode_key(2, WireType::LengthDelimited, buf);
        let _ = span.encode_length_delimited(buf);
    }
}

/// The whole request for `traces` as `dialect` sends it (without splitting).
pub fn encode_request<D: Dialect + ?Sized>(
    dialect: &D,
    traces: &[Arc<Trace>],
) -> ExportTraceServiceRequest {
    let spans = encode_spans(dialect, traces)
        .into_iter()
        .map(|s| s.span)
        .collect();
    request(&resource(dialect), &scope(dialect), spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_attribute_lists_keep_unique_keys() {
        let mut a = Attributes::new();
        for i in 0..100 {
            a.int(format!("k{i}"), i);
        }
        a.int("k7", 700).str("k99", "x");
        assert_eq!(a.len(), 100);
        assert_eq!(a.get("k7"), Some(&any_value::Value::IntValue(700)));
        a.remove("k0");
        assert!(!a.contains("k0") && a.contains("k1") && a.len() == 99);
        a.int("k50", 5);
        assert_eq!(a.get("k50"), Some(&any_value::Value::IntValue(5)));
        assert_eq!(a.keys().next(), Some("k1"));
    }

    #[test]
    fn trace_ids_keep_uuids_and_hash_the_rest() {
        let uuid = "0192f5a0-0000-7000-8000-0000000000aa";
        let id = TraceId::new(uuid).unwrap();
        assert_eq!(trace_id_hex(&id), uuid.replace('-', ""));
        let simple = TraceId::new("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(trace_id_hex(&simple), "4bf92f3577b34da6a3ce929d0e0e4736");
        let ext = TraceId::new("my-external_id-1").unwrap();
        let a = trace_id_hex(&ext);
        assert_eq!(a.len(), 32);
        assert_eq!(a, trace_id_hex(&TraceId::new("my-external_id-1").unwrap()));
        assert_ne!(a, trace_id_hex(&TraceId::new("my-external_id-2").unwrap()));
        // FNV-1a-128 is fixed: this value must never change, or re-sent traces would split.
        assert_eq!(
            trace_id_hex(&TraceId::new("a").unwrap()),
            "d228cb696f1a8caf78912b704e4a8964"
        );
        let nil = TraceId::new("00000000-0000-0000-0000-000000000000").unwrap();
        assert_ne!(trace_id_bytes(&nil), [0; 16]);
    }

    #[test]
    fn span_ids_are_the_low_bytes() {
        let id = Uuid::parse_str("0192f5a0-0000-7000-8123-456789abcdef").unwrap();
        assert_eq!(span_id_hex(id), "8123456789abcdef");
        let low_zero = Uuid::parse_str("0192f5a0-0000-7000-0000-000000000000").unwrap();
        assert_eq!(span_id_hex(low_zero), "0192f5a000007000");
        assert_ne!(span_id_bytes(Uuid::nil()), [0; 8]);
    }

    #[test]
    fn attributes_replace_and_type_values() {
        let mut a = Attributes::new();
        a.str("k", "v").str("k", "w").int("n", 3);
        assert_eq!(a.len(), 2);
        assert_eq!(a.get_str("k"), Some("w"));
        a.value("s", &json!("x"))
            .value("i", &json!(7))
            .value("f", &json!(0.5))
            .value("b", &json!(true))
            .value("arr", &json!(["a", "b"]))
            .value("obj", &json!({"a": 1}))
            .value("mixed", &json!([1, {"a": 1}]));
        assert_eq!(a.get("i"), Some(&any_value::Value::IntValue(7)));
        assert_eq!(a.get("f"), Some(&any_value::Value::DoubleValue(0.5)));
        assert_eq!(a.get("b"), Some(&any_value::Value::BoolValue(true)));
        assert!(
            matches!(a.get("arr"), Some(any_value::Value::ArrayValue(v)) if v.values.len() == 2)
        );
        assert_eq!(a.get_str("obj"), Some("{\"a\":1}"));
        assert_eq!(a.get_str("mixed"), Some("[1,{\"a\":1}]"));
        a.json("j", &json!("q")).text("t", &json!("q"));
        assert_eq!(a.get_str("j"), Some("\"q\""));
        assert_eq!(a.get_str("t"), Some("q"));
        a.opt_str("none", None::<String>).opt_str("empty", Some(""));
        assert!(!a.contains("none") && !a.contains("empty"));
        a.remove("k");
        assert!(!a.contains("k"));
    }

    #[test]
    fn protobuf_into_a_buffer_is_prosts_request_byte_for_byte() {
        let mut resource_attrs = Attributes::new();
        resource_attrs.str("service.name", "svc").int("n", 300);
        let resource = Resource {
            attributes: resource_attrs.into_vec(),
            ..Resource::default()
        };
        let scope = InstrumentationScope {
            name: "ops".into(),
            version: VERSION.into(),
            ..InstrumentationScope::default()
        };
        let span = |i: u8, input: &str| {
            let mut attrs = Attributes::new();
            attrs.str("input.value", input).int("i", i64::from(i));
            Span {
                trace_id: vec![i; 16],
                span_id: vec![i; 8],
                name: format!("span {i}"),
                start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i),
                end_time_unix_nano: 1_700_000_000_000_000_001 + u64::from(i),
                attributes: attrs.into_vec(),
                status: Some(Status::default()),
                ..Span::default()
            }
        };
        // Lengths past one varint byte (128, 16,384) at every level.
        let long = "word ".repeat(4_000);
        for spans in [
            vec![],
            vec![span(1, "short")],
            vec![span(1, "a"), span(2, &long), span(3, &long[..200])],
        ] {
            let mut buf = vec![9, 9, 9];
            encode_protobuf_into(&resource, &scope, spans.iter(), &mut buf);
            assert_eq!(
                buf,
                request(&resource, &scope, spans.clone()).encode_to_vec()
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn json_text_is_serde_json_byte_for_byte(value in json_value()) {
            proptest::prop_assert_eq!(json_text(&value), value.to_string());
        }
    }

    /// Any JSON value: every scalar kind, strings with escapes and non-ASCII, nesting.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let text = || {
            proptest::string::string_regex("[a-z \"\\\\\n\t\u{1}\u{1f}\u{7f}é☃\u{2028}]{0,80}")
                .expect("a valid regex")
        };
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((text(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn json_text_of_deep_values_is_serde_json() {
        let mut deep = json!("x\n");
        for _ in 0..300 {
            deep = json!([deep, {"k\"": 1.5}]);
        }
        assert_eq!(json_text(&deep), deep.to_string());
    }

    #[test]
    fn gzip_round_trips() {
        let body = b"hello hello hello hello".to_vec();
        let (zipped, enc) = Compression::Gzip.apply(body.clone());
        assert_eq!(enc, Some("gzip"));
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut out)
            .unwrap();
        assert_eq!(out, body);
        assert_eq!(Compression::None.apply(body.clone()), (body, None));
        assert_eq!(Compression::parse("GZIP"), Some(Compression::Gzip));
        assert_eq!(Compression::parse("br"), None);
        assert_eq!(Encoding::parse("http/json"), Some(Encoding::Json));
        assert_eq!(Encoding::parse("grpc"), None);
    }
}
