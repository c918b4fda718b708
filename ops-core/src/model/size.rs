//! How much heap a trace holds, for the queue's byte budget.
//!
//! The estimate follows the data structures as they are laid out (a `serde_json::Value` is 32
//! bytes inline; an object is a B-tree of 11-entry nodes, or an index map when serde_json's
//! `preserve_order` is on; a `String` owns its capacity) and adds the allocator's bookkeeping
//! to each allocation. It is checked against a counting allocator in
//! `tests/memory_estimate.rs`. Every walk uses an explicit stack, so a value of any depth is
//! measured without overflowing the stack.

use std::mem::size_of;

use serde_json::{Map, Value};

use super::{Observation, Trace, TraceAttributes, Usage};

/// The bytes a request of `n` bytes costs: `n` and the allocator's bookkeeping, about 16
/// bytes a chunk (glibc rounds `n + 8` up to 16; other allocators are close).
#[inline]
pub(crate) const fn alloc(n: usize) -> usize {
    if n == 0 { 0 } else { n + 16 }
}

/// Heap of a `String` (its capacity).
#[inline]
pub(crate) fn string(s: &String) -> usize {
    alloc(s.capacity())
}

fn opt_string(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, string)
}

/// Whether serde_json's objects are index maps (its `preserve_order` feature) rather than
/// B-trees: the map type is then larger than a B-tree's three words.
const INDEX_MAP: bool = size_of::<Map<String, Value>>() > 3 * size_of::<usize>();

/// Heap of an object's own structure (its nodes or tables), for `n` entries.
pub(crate) fn map_nodes(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let entry = size_of::<String>() + size_of::<Value>();
    if INDEX_MAP {
        let buckets = (n * 8 / 7).next_power_of_two().max(4);
        alloc(n * (entry + 8)) + alloc(buckets * (size_of::<usize>() + 1) + 16)
    } else {
        // Nodes of 11 entries: a map built in one go fills them (11 a node), keys inserted
        // in order leave them about half full (6), in random order about 2/3 (7.4); 8.5 is
        // the middle. An internal node per 7 nodes or so.
        let leaf = alloc(11 * entry + 16);
        let leaves = n.div_ceil(9);
        let internal = if leaves > 1 { leaves.div_ceil(8) } else { 0 };
        leaves * leaf + internal * alloc(11 * entry + 16 + 12 * 8)
    }
}

/// Heap held by `value` (not counting the 32 bytes of the value itself, which its container
/// holds).
pub(crate) fn value(value: &Value) -> usize {
    // Leaves are counted where they are found: only nested containers go on the stack, so a
    // flat value allocates nothing.
    let leaf = |v: &Value| match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => Some(0),
        Value::String(s) => Some(string(s)),
        Value::Array(_) | Value::Object(_) => None,
    };
    let mut total = 0;
    let mut stack = Vec::new();
    let mut next = Some(value);
    while let Some(v) = next.take().or_else(|| stack.pop()) {
        let children: &mut dyn Iterator<Item = &Value> = match v {
            Value::Array(items) => {
                total += alloc(items.capacity() * size_of::<Value>());
                &mut items.iter()
            }
            Value::Object(map) => {
                total += map_nodes(map.len()) + map.keys().map(string).sum::<usize>();
                &mut map.values()
            }
            leaf_value => {
                total += leaf(leaf_value).unwrap_or(0);
                continue;
            }
        };
        for child in children {
            match leaf(child) {
                Some(n) => total += n,
                None => stack.push(child),
            }
        }
    }
    total
}

/// Heap of the objects' structure within `value`: their nodes and keys (what a walk that
/// counts only strings and arrays leaves out).
pub(crate) fn objects(value: &Value) -> usize {
    let is_container = |v: &&Value| matches!(v, Value::Array(_) | Value::Object(_));
    let mut total = 0;
    let mut stack = Vec::new();
    let mut next = Some(value);
    while let Some(v) = next.take().or_else(|| stack.pop()) {
        match v {
            Value::Array(items) => stack.extend(items.iter().filter(is_container)),
            Value::Object(map) => {
                total += map_nodes(map.len()) + map.keys().map(string).sum::<usize>();
                stack.extend(map.values().filter(is_container));
            }
            _ => {}
        }
    }
    total
}

/// [`objects`] of a map and its values.
pub(crate) fn map_objects(m: &Map<String, Value>) -> usize {
    map_nodes(m.len()) + m.iter().map(|(k, v)| string(k) + objects(v)).sum::<usize>()
}

/// Heap held by a map of values.
pub(crate) fn map(m: &Map<String, Value>) -> usize {
    map_nodes(m.len()) + m.iter().map(|(k, v)| string(k) + value(v)).sum::<usize>()
}

fn opt_value(v: &Option<Value>) -> usize {
    v.as_ref().map_or(0, value)
}

fn strings(v: &Vec<String>) -> usize {
    alloc(v.capacity() * size_of::<String>()) + v.iter().map(string).sum::<usize>()
}

fn attributes(a: &TraceAttributes) -> usize {
    [
        &a.user_id,
        &a.session_id,
        &a.app_id,
        &a.tenant_id,
        &a.environment,
        &a.release,
        &a.version,
    ]
    .into_iter()
    .map(opt_string)
    .sum()
}

fn usage(u: &Option<Usage>) -> usize {
    u.as_ref()
        .map_or(0, |u| opt_string(&u.currency) + map(&u.details))
}

/// Heap held by an observation's fields (not the struct itself, which its vector holds).
pub(crate) fn observation(o: &Observation) -> usize {
    string(&o.name)
        + opt_value(&o.input)
        + opt_value(&o.output)
        + map(&o.metadata)
        + strings(&o.tags)
        + opt_string(&o.status_message)
        + usage(&o.usage)
        + opt_string(&o.model)
        + opt_string(&o.model_provider)
        + map(&o.model_parameters)
        + attributes(&o.attributes)
}

/// Heap held by a trace, the trace itself included (as an `Arc` holds it).
pub(crate) fn trace(t: &Trace) -> usize {
    alloc(size_of::<Trace>() + 16)
        + alloc(2 * size_of::<usize>() + t.id.as_str().len())
        + string(&t.name)
        + opt_value(&t.input)
        + opt_value(&t.output)
        + map(&t.metadata)
        + strings(&t.tags)
        + attributes(&t.attributes)
        + alloc(t.observations.capacity() * size_of::<Observation>())
        + t.observations.iter().map(observation).sum::<usize>()
}
