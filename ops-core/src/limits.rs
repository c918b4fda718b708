//! Payload limits: no value a trace carries can crash, stall or bloat the process that
//! observes it, and a trace over a limit is cut down and delivered, never refused.
//!
//! - **Values** (inputs, outputs, metadata, model parameters): a part nested deeper than
//!   [`FieldLimits::max_depth`] is replaced, where it is too deep, by a marker; a value whose
//!   JSON is over [`FieldLimits::max_bytes`] is replaced by a marker with its size and a
//!   preview: `{"__ops_truncated__": true, "original_bytes": N, "reason": ..., "preview": ...}`.
//!   A metadata or model-parameter map is held to `max_bytes` as a whole.
//! - **Strings** (names, model, user and session ids, tags, keys, the status message) are cut
//!   to their cap, ending in `…[N bytes cut by ops]`; past [`FieldLimits::max_tags`] tags the
//!   rest are dropped and noted under [`WARNINGS_KEY`].
//!
//! Everything here walks values with an explicit stack, never by recursion, so a value of any
//! depth is measured, cut and dropped without overflowing the stack.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use serde_json::{Map, Value, json};

use crate::model::{Observation, Trace, TraceAttributes};

/// The key that marks a truncated value.
pub const TRUNCATED_KEY: &str = "__ops_truncated__";

/// The metadata key listing what was removed or cut from an observation or a trace.
pub const WARNINGS_KEY: &str = "ops.warnings";

/// How large one value or string a trace carries may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits {
    /// Serialized bytes of one input, output, metadata map or model-parameter map.
    pub max_bytes: usize,
    /// Nesting depth of arrays and objects in one value (at most [`MAX_DEPTH_LIMIT`]).
    pub max_depth: usize,
    /// Characters of the original kept in a truncation marker's preview.
    pub preview_chars: usize,
    /// Bytes of a name, model, id, tag, key or other short string.
    pub max_name_bytes: usize,
    /// Bytes of a status (error) message.
    pub max_message_bytes: usize,
    /// Tags of a trace or an observation.
    pub max_tags: usize,
}

/// The highest [`FieldLimits::max_depth`] allowed: a spooled record wraps each value in a few
/// levels, and must stay under the 128 levels `serde_json` reads back.
pub const MAX_DEPTH_LIMIT: usize = 100;

impl Default for FieldLimits {
    /// 1 MiB and depth 64 per value with a 1000-character preview (below Langfuse's ~1 MB per
    /// observation); 1 KiB per name, id, tag or key; 64 KiB per status message; 1000 tags.
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_depth: 64,
            preview_chars: 1000,
            max_name_bytes: 1024,
            max_message_bytes: 64 << 10,
            max_tags: 1000,
        }
    }
}

static CAPTURE_MAX_BYTES: AtomicUsize = AtomicUsize::new(1 << 20);
static CAPTURE_MAX_DEPTH: AtomicUsize = AtomicUsize::new(64);
static CAPTURE_PREVIEW_CHARS: AtomicUsize = AtomicUsize::new(1000);

/// The limits `#[traced]` captures within: the defaults, widened to the largest limits of any
/// queue built (each queue applies its own limits again when it delivers).
pub(crate) fn capture_limits() -> FieldLimits {
    FieldLimits {
        max_bytes: CAPTURE_MAX_BYTES.load(Relaxed),
        max_depth: CAPTURE_MAX_DEPTH.load(Relaxed),
        preview_chars: CAPTURE_PREVIEW_CHARS.load(Relaxed),
        ..FieldLimits::default()
    }
}

/// Widens the capture limits to `limits` (called when a queue is built).
pub(crate) fn widen_capture_limits(limits: &FieldLimits) {
    CAPTURE_MAX_BYTES.fetch_max(limits.max_bytes, Relaxed);
    CAPTURE_MAX_DEPTH.fetch_max(limits.max_depth.min(MAX_DEPTH_LIMIT), Relaxed);
    CAPTURE_PREVIEW_CHARS.fetch_max(limits.preview_chars, Relaxed);
}

/// The JSON size of a string's contents, escapes included.
fn escaped_len(s: &str) -> usize {
    // Most strings escape nothing: checking 32 bytes at a time without a branch per byte
    // (which the compiler vectorises) finds that out several times faster than the match
    // below, and the queue measures every captured string.
    fn special(b: u8) -> bool {
        (b < 0x20) | (b == b'"') | (b == b'\\')
    }
    let mut chunks = s.as_bytes().chunks_exact(32);
    let escapes_nothing = chunks
        .by_ref()
        .all(|c| !c.iter().fold(false, |hit, &b| hit | special(b)))
        && !chunks.remainder().iter().any(|&b| special(b));
    if escapes_nothing {
        return s.len();
    }
    s.len()
        + s.bytes()
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0C => 1,
                0..=0x1F => 5,
                _ => 0,
            })
            .sum::<usize>()
}

/// The JSON size of `value` (as `serde_json` writes it, escapes included) and its depth,
/// measured without recursion so that no value, however deep, can overflow the stack.
pub fn measure(value: &Value) -> (usize, usize) {
    // Leaves are measured where they are found; only nested containers go on the stack, so a
    // flat value allocates nothing.
    let leaf = |v: &Value| match v {
        Value::Null | Value::Bool(true) => Some(4),
        Value::Bool(false) => Some(5),
        Value::Number(n) => Some(number_len(n)),
        Value::String(s) => Some(escaped_len(s) + 2),
        Value::Array(_) | Value::Object(_) => None,
    };
    let mut bytes = 0;
    let mut depth = 0;
    let mut stack: Vec<(&Value, usize)> = Vec::new();
    let mut next = Some((value, 1));
    while let Some((v, d)) = next.take().or_else(|| stack.pop()) {
        depth = depth.max(d);
        let children: &mut dyn Iterator<Item = &Value> = match v {
            Value::Array(items) => {
                bytes += 2 + items.len().saturating_sub(1);
                &mut items.iter()
            }
            Value::Object(map) => {
                bytes += 2
                    + map.len().saturating_sub(1)
                    + map.keys().map(|k| escaped_len(k) + 3).sum::<usize>();
                &mut map.values()
            }
            other => {
                bytes += leaf(other).unwrap_or(0);
                continue;
            }
        };
        for child in children {
            match leaf(child) {
                Some(n) => {
                    bytes += n;
                    depth = depth.max(d + 1);
                }
                None => stack.push((child, d + 1)),
            }
        }
    }
    (bytes, depth)
}

fn number_len(n: &serde_json::Number) -> usize {
    fn digits(mut v: u64) -> usize {
        let mut len = 1;
        while v >= 10 {
            v /= 10;
            len += 1;
        }
        len
    }
    if let Some(v) = n.as_u64() {
        return digits(v);
    }
    if let Some(v) = n.as_i64() {
        return 1 + digits(v.unsigned_abs());
    }
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = write!(c, "{n}");
    c.0
}

/// Drops a value without recursion (serde_json's own drop recurses once per level).
pub(crate) fn drop_iteratively(value: Value) {
    let is_container = |v: &Value| matches!(v, Value::Array(_) | Value::Object(_));
    if !is_container(&value) {
        return;
    }
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.into_iter().filter(is_container)),
            Value::Object(map) => {
                stack.extend(map.into_iter().map(|(_, v)| v).filter(is_container))
            }
            _ => {}
        }
    }
}

/// Replaces every array or object nested deeper than `max_depth` levels with a marker, in
/// place. The result is at most `max_depth + 1` levels deep (the marker's own fields). Returns
/// how many parts were cut.
pub fn cut_depth(value: &mut Value, max_depth: usize) -> usize {
    let max_depth = max_depth.max(1);
    let mut cut = 0;
    let has_children = |v: &&mut Value| match &**v {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    };
    let mut stack: Vec<(&mut Value, usize)> = Vec::new();
    let mut next = Some((value, 1));
    while let Some((v, d)) = next.take().or_else(|| stack.pop()) {
        let nested = match v {
            Value::Array(items) => !items.is_empty(),
            Value::Object(map) => !map.is_empty(),
            _ => false,
        };
        if !nested {
            continue;
        }
        if d >= max_depth {
            let (bytes, depth) = measure(v);
            let old = std::mem::replace(
                v,
                marker(
                    bytes,
                    format!(
                        "nested {} levels deep; the limit is {max_depth}",
                        depth + d - 1
                    ),
                    Value::Null,
                ),
            );
            drop_iteratively(old);
            cut += 1;
            continue;
        }
        match v {
            Value::Array(items) => {
                stack.extend(items.iter_mut().filter(has_children).map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                stack.extend(map.values_mut().filter(has_children).map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    cut
}

fn marker(original_bytes: usize, reason: String, preview: Value) -> Value {
    let mut m = Map::new();
    m.insert(TRUNCATED_KEY.into(), Value::Bool(true));
    m.insert("original_bytes".into(), original_bytes.into());
    m.insert("reason".into(), reason.into());
    if !preview.is_null() {
        m.insert("preview".into(), preview);
    }
    Value::Object(m)
}

/// Whether `value` is a truncation marker.
pub fn is_marker(value: &Value) -> bool {
    value.get(TRUNCATED_KEY) == Some(&Value::Bool(true))
}

/// A copy of the start of `value`, about `budget` bytes of JSON of it, keeping its shape:
/// what a marker's preview is made of. Built without recursion.
fn head(value: &Value, budget: usize) -> Value {
    enum Frame<'a> {
        Array(std::slice::Iter<'a, Value>, Vec<Value>),
        Object(serde_json::map::Iter<'a>, Map<String, Value>, String),
    }
    let mut left = budget;
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut next = Some(value);
    loop {
        let finished = match next.take() {
            Some(Value::Array(items)) => {
                left = left.saturating_sub(2);
                stack.push(Frame::Array(items.iter(), Vec::new()));
                continue;
            }
            Some(Value::Object(map)) => {
                left = left.saturating_sub(2);
                stack.push(Frame::Object(map.iter(), Map::new(), String::new()));
                continue;
            }
            Some(Value::String(s)) => {
                let keep = floor_char_boundary(s, left);
                left = left.saturating_sub(keep + 2);
                Value::String(s[..keep].to_owned())
            }
            Some(other) => {
                left = left.saturating_sub(measure(other).0);
                other.clone()
            }
            None => {
                let top = stack.last_mut().expect("a frame is open");
                if left > 0 {
                    match top {
                        Frame::Array(iter, _) => next = iter.next(),
                        Frame::Object(iter, _, key) => {
                            next = iter.next().map(|(k, v)| {
                                left = left.saturating_sub(k.len() + 3);
                                k.clone_into(key);
                                v
                            });
                        }
                    }
                    if next.is_some() {
                        continue;
                    }
                }
                match stack.pop().expect("a frame is open") {
                    Frame::Array(_, items) => Value::Array(items),
                    Frame::Object(_, map, _) => Value::Object(map),
                }
            }
        };
        match stack.last_mut() {
            None => return finished,
            Some(Frame::Array(_, items)) => items.push(finished),
            Some(Frame::Object(_, map, key)) => {
                map.insert(std::mem::take(key), finished);
            }
        }
    }
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    (0..=at).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0)
}

/// Replaces `value` with a truncation marker when its JSON is over `limits.max_bytes`, after
/// cutting what is nested too deep. The marker's preview is a copy of the value's start (a
/// value, so that a mask still applies to it); [`finish_markers`] turns it into text. Returns
/// how many cuts were made.
pub fn truncate_value(value: &mut Value, limits: &FieldLimits) -> usize {
    let mut cuts = cut_depth(value, limits.max_depth.min(MAX_DEPTH_LIMIT));
    if is_marker(value) {
        return cuts;
    }
    let (bytes, _) = measure(value);
    if bytes > limits.max_bytes {
        let preview = head(value, limits.preview_chars.saturating_mul(4).max(64));
        let old = std::mem::replace(
            value,
            marker(
                bytes,
                format!("{bytes} bytes; the limit is {}", limits.max_bytes),
                preview,
            ),
        );
        drop_iteratively(old);
        cuts += 1;
    }
    cuts
}

/// Turns the preview of every truncation marker in `value` into text of at most
/// `preview_chars` characters. Run after masking, so a preview never shows what the mask hides.
pub fn finish_markers(value: &mut Value, preview_chars: usize) {
    let is_container = |v: &&mut Value| matches!(v, Value::Array(_) | Value::Object(_));
    let mut stack = Vec::new();
    let mut next = Some(value);
    while let Some(v) = next.take().or_else(|| stack.pop()) {
        if is_marker(v) {
            if let Some(p) = v.get_mut("preview")
                && !p.is_string()
            {
                let mut text = BoundedText::new(preview_chars.saturating_mul(4));
                let _ = serde_json::to_writer(&mut text, p);
                *p = Value::String(text.into_string());
            }
            if let Some(Value::String(s)) = v.get_mut("preview") {
                cap_chars(s, preview_chars);
            }
            continue;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter_mut().filter(is_container)),
            Value::Object(map) => stack.extend(map.values_mut().filter(is_container)),
            _ => {}
        }
    }
}

fn cap_chars(s: &mut String, chars: usize) {
    if let Some((at, _)) = s.char_indices().nth(chars) {
        s.truncate(at);
    }
}

/// A writer that keeps the first `limit` bytes and then refuses more.
struct BoundedText {
    buf: Vec<u8>,
    limit: usize,
}

impl BoundedText {
    fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
        }
    }

    fn into_string(self) -> String {
        match String::from_utf8(self.buf) {
            Ok(s) => s,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).unwrap_or_default()
            }
        }
    }
}

impl std::io::Write for BoundedText {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.limit.saturating_sub(self.buf.len());
        if room == 0 {
            return Err(std::io::Error::other("preview is long enough"));
        }
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Holds a map (metadata, model parameters) to the limits: each value as [`truncate_value`],
/// each key to `max_name_bytes`, and the whole map to `max_bytes` (entries past it are
/// replaced by one marker entry). Returns how many cuts were made.
pub fn truncate_map(map: &mut Map<String, Value>, limits: &FieldLimits) -> usize {
    let mut cuts = 0;
    if map.keys().any(|k| k.len() > limits.max_name_bytes) {
        let entries = std::mem::take(map);
        for (mut k, v) in entries {
            cuts += usize::from(cap_string(&mut k, limits.max_name_bytes));
            map.insert(k, v);
        }
    }
    let mut total = 2;
    let mut over = Vec::new();
    for (k, v) in map.iter_mut() {
        cuts += truncate_value(v, limits);
        total += escaped_len(k) + 4 + measure(v).0;
        if total > limits.max_bytes {
            over.push(k.clone());
        }
    }
    if !over.is_empty() {
        let mut bytes = 0;
        for k in &over {
            if let Some(v) = map.remove(k) {
                bytes += k.len() + measure(&v).0;
                drop_iteratively(v);
            }
        }
        map.insert(
            TRUNCATED_KEY.into(),
            marker(
                bytes,
                format!(
                    "{} entries past the limit of {} bytes for the whole map",
                    over.len(),
                    limits.max_bytes
                ),
                Value::Array(over.into_iter().take(20).map(Value::String).collect()),
            ),
        );
        cuts += 1;
    }
    cuts
}

/// Cuts `s` to at most `max` bytes (on a character boundary), ending in a marker that says
/// how much was cut. Returns whether it did.
pub fn cap_string(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let note = format!("…[{} bytes cut by ops]", s.len());
    let keep = floor_char_boundary(s, max.saturating_sub(note.len()));
    // A new string, not the old one shrunk in place: a small string left at the start of a
    // large freed block would keep the block from being reused.
    let mut cut = String::with_capacity(keep + note.len());
    cut.push_str(&s[..keep]);
    cut.push_str(&note);
    *s = cut;
    true
}

fn cap_opt(s: &mut Option<String>, max: usize) -> usize {
    s.as_mut().map_or(0, |s| usize::from(cap_string(s, max)))
}

fn cap_attributes(a: &mut TraceAttributes, max: usize) -> usize {
    [
        &mut a.user_id,
        &mut a.session_id,
        &mut a.app_id,
        &mut a.tenant_id,
        &mut a.environment,
        &mut a.release,
        &mut a.version,
    ]
    .into_iter()
    .map(|s| cap_opt(s, max))
    .sum()
}

/// Caps the tags; returns how many cuts were made and the warning to note, if any.
fn cap_tags(tags: &mut Vec<String>, limits: &FieldLimits) -> (usize, Option<String>) {
    let mut cuts = 0;
    let mut warning = None;
    if tags.len() > limits.max_tags {
        warning = Some(format!(
            "{} tags; kept the first {}",
            tags.len(),
            limits.max_tags
        ));
        // A new vector, for the same reason as in `cap_string`.
        *tags = tags.drain(..limits.max_tags).collect();
        cuts += 1;
    }
    for t in tags.iter_mut() {
        cuts += usize::from(cap_string(t, limits.max_name_bytes));
    }
    (cuts, warning)
}

fn warn(metadata: &mut Map<String, Value>, warning: String) {
    match metadata.get_mut(WARNINGS_KEY) {
        Some(Value::Array(existing)) => existing.push(Value::String(warning)),
        _ => {
            metadata.insert(WARNINGS_KEY.into(), json!([warning]));
        }
    }
}

/// Cuts every value of the trace that is nested too deep or is too large (see
/// [`truncate_value`]), leaving strings alone. Cheap enough for the caller's thread: it walks
/// each value once. Returns how many cuts were made.
pub fn truncate_values(trace: &mut Trace, limits: &FieldLimits) -> usize {
    let mut n = 0;
    for v in [&mut trace.input, &mut trace.output].into_iter().flatten() {
        n += truncate_value(v, limits);
    }
    n += truncate_map(&mut trace.metadata, limits);
    for o in &mut trace.observations {
        n += truncate_observation_values(o, limits);
    }
    n
}

fn truncate_observation_values(o: &mut Observation, limits: &FieldLimits) -> usize {
    let mut n = 0;
    for v in [&mut o.input, &mut o.output].into_iter().flatten() {
        n += truncate_value(v, limits);
    }
    n += truncate_map(&mut o.metadata, limits);
    n += truncate_map(&mut o.model_parameters, limits);
    if let Some(usage) = &mut o.usage {
        n += truncate_map(&mut usage.details, limits);
        n += cap_opt(&mut usage.currency, limits.max_name_bytes);
    }
    n
}

/// Caps every string of the trace (names, model, ids, tags, status messages) and turns the
/// previews of truncation markers into text. Run after masking. Returns how many cuts were
/// made.
pub fn cap_strings(trace: &mut Trace, limits: &FieldLimits) -> usize {
    let name = limits.max_name_bytes;
    let mut n = usize::from(cap_string(&mut trace.name, name));
    n += cap_attributes(&mut trace.attributes, name);
    let (cuts, warning) = cap_tags(&mut trace.tags, limits);
    n += cuts;
    if let Some(w) = warning {
        warn(&mut trace.metadata, format!("trace {w}"));
    }
    let values = [&mut trace.input, &mut trace.output].into_iter().flatten();
    for v in values.chain(trace.metadata.values_mut()) {
        finish_markers(v, limits.preview_chars);
    }
    for o in &mut trace.observations {
        n += usize::from(cap_string(&mut o.name, name));
        n += cap_opt(&mut o.model, name);
        n += cap_opt(&mut o.model_provider, name);
        n += cap_opt(&mut o.status_message, limits.max_message_bytes);
        n += cap_attributes(&mut o.attributes, name);
        let (cuts, warning) = cap_tags(&mut o.tags, limits);
        n += cuts;
        if let Some(w) = warning {
            warn(&mut o.metadata, w);
        }
        let values = [&mut o.input, &mut o.output].into_iter().flatten();
        for v in values
            .chain(o.metadata.values_mut())
            .chain(o.model_parameters.values_mut())
        {
            finish_markers(v, limits.preview_chars);
        }
    }
    n
}

/// Applies every limit to the trace: [`truncate_values`] then [`cap_strings`]. Returns how
/// many cuts were made. (A masked pipeline masks between the two; see
/// [`crate::TraceTask::preprocess`].)
pub fn truncate_trace(trace: &mut Trace, limits: &FieldLimits) -> usize {
    truncate_values(trace, limits) + cap_strings(trace, limits)
}

/// Removes values no platform can take (NaN or infinite costs) and says so in the
/// observation's metadata under [`WARNINGS_KEY`]. Returns how many values were removed.
pub fn sanitize_trace(trace: &mut Trace) -> usize {
    let mut removed = 0;
    for o in &mut trace.observations {
        let Some(usage) = o.usage.as_mut() else {
            continue;
        };
        let mut warnings = Vec::new();
        for (name, value) in [
            ("input_cost", &mut usage.input_cost),
            ("output_cost", &mut usage.output_cost),
            ("total_cost", &mut usage.total_cost),
        ] {
            if let Some(v) = value.filter(|v| !v.is_finite()) {
                warnings.push(format!("usage.{name} was {v}; removed"));
                *value = None;
            }
        }
        removed += warnings.len();
        for w in warnings {
            warn(&mut o.metadata, w);
        }
    }
    removed
}

/// Splits `items` into consecutive batches of at most `max_items` items and `max_bytes` bytes
/// (by `size`). An item larger than `max_bytes` on its own gets a batch of its own.
pub fn split_batches<T>(
    items: Vec<T>,
    max_items: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for item in items {
        let s = size(&item);
        if !current.is_empty() && (current.len() >= max_items.max(1) || bytes + s > max_bytes) {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += s;
        current.push(item);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests;
