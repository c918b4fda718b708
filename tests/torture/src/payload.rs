//! What the producer sends: ordinary traces and hostile ones (deep, wide, huge, control
//! characters, many tags, huge names and model strings). Every value is built without
//! recursion and must be dropped with [`drop_value`]: `serde_json::Value`'s own drop recurses
//! once per level, so dropping a value nested a million deep would overflow the app's stack
//! (the app's fault, not the library's).

use std::fmt;
use std::str::FromStr;

use chrono::Utc;
use ops_core::{Observation, ObservationKind, Trace, Usage};
use serde_json::{Map, Value, json};

use crate::ids;

/// The kind of trace sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A workflow with three LLM calls and small inputs (about 2 KB of JSON).
    Ordinary,
    /// An input nested `size` levels deep (arrays in arrays).
    Deep,
    /// An input object with `size` keys.
    Wide,
    /// An input string of `size` bytes.
    Huge,
    /// An input string of `size` control characters (each becomes `\u0001` in JSON).
    HugeControl,
    /// `size` tags on the trace.
    ManyTags,
    /// An observation name of `size` bytes.
    HugeName,
    /// A model string of `size` bytes.
    HugeModel,
    /// Each trace one of the hostile shapes, at 1% to 100% of `size`'s share of that shape's
    /// default, drawn from a generator seeded with the run id and the index.
    Mixed,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 9] = [
        Shape::Ordinary,
        Shape::Deep,
        Shape::Wide,
        Shape::Huge,
        Shape::HugeControl,
        Shape::ManyTags,
        Shape::HugeName,
        Shape::HugeModel,
        Shape::Mixed,
    ];

    /// The name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Shape::Ordinary => "ordinary",
            Shape::Deep => "deep",
            Shape::Wide => "wide",
            Shape::Huge => "huge",
            Shape::HugeControl => "huge-control",
            Shape::ManyTags => "many-tags",
            Shape::HugeName => "huge-name",
            Shape::HugeModel => "huge-model",
            Shape::Mixed => "mixed",
        }
    }

    /// The size the issue names for this shape.
    pub const fn default_size(self) -> usize {
        match self {
            Shape::Ordinary => 0,
            Shape::Deep => 1_000_000,
            Shape::Wide => 1_000_000,
            Shape::Huge => 50 << 20,
            Shape::HugeControl => 20 << 20,
            Shape::ManyTags => 100_000,
            Shape::HugeName => 10 << 20,
            Shape::HugeModel => 4 << 20,
            Shape::Mixed => 100,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Shape::ALL
            .into_iter()
            .find(|shape| shape.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown shape {s:?}; use one of: {}",
                    Shape::ALL.map(Shape::as_str).join(", ")
                )
            })
    }
}

/// A JSON value `depth` levels deep: `[[[...null...]]]`, built without recursion.
pub fn deep_value(depth: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

/// A JSON object with `keys` keys `k0`, `k1`, ... whose values are small integers.
pub fn wide_value(keys: usize) -> Value {
    let mut map = Map::new();
    for i in 0..keys {
        map.insert(format!("k{i}"), Value::from(i % 1000));
    }
    Value::Object(map)
}

/// A string of `bytes` bytes of `x`.
pub fn huge_string(bytes: usize) -> String {
    "x".repeat(bytes)
}

/// A string of `chars` control characters (U+0001, which JSON escapes as `\u0001`: six bytes).
pub fn control_string(chars: usize) -> String {
    "\u{1}".repeat(chars)
}

/// The shape and size trace `index` of `run` gets: itself, except for [`Shape::Mixed`], which
/// draws a hostile shape and a size (`size` percent of its default at most) from a generator
/// seeded with the run id and the index.
pub fn pick(run: u64, index: u64, shape: Shape, size: usize) -> (Shape, usize) {
    if shape != Shape::Mixed {
        return (shape, size);
    }
    let mut rng = fastrand::Rng::with_seed(run ^ index.rotate_left(32));
    let hostile = &Shape::ALL[1..Shape::ALL.len() - 1];
    let picked = hostile[rng.usize(..hostile.len())];
    (picked, rng.usize(1..=mixed_most(picked, size)))
}

/// The largest size [`pick`] draws for `shape` in a mix of `size` percent.
fn mixed_most(shape: Shape, size: usize) -> usize {
    (shape.default_size() / 100)
        .saturating_mul(size.clamp(1, 100))
        .max(1)
}

/// Every shape a mix of `size` percent can draw, at the largest size it can draw.
pub fn mixed_maxima(size: usize) -> Vec<(Shape, usize)> {
    Shape::ALL[1..Shape::ALL.len() - 1]
        .iter()
        .map(|&s| (s, mixed_most(s, size)))
        .collect()
}

/// The hostile input value of a value shape (`Deep`, `Wide`, `Huge`, `HugeControl`); `None`
/// for the other shapes, whose hostile part is not an input.
pub fn hostile_input(shape: Shape, size: usize) -> Option<Value> {
    match shape {
        Shape::Deep => Some(deep_value(size)),
        Shape::Wide => Some(wide_value(size)),
        Shape::Huge => Some(Value::String(huge_string(size))),
        Shape::HugeControl => Some(Value::String(control_string(size))),
        _ => None,
    }
}

/// `size` distinct tags.
pub fn tags(size: usize) -> Vec<String> {
    (0..size).map(|i| format!("tag-{i}")).collect()
}

/// Drops a JSON value without recursion.
pub fn drop_value(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Drops a trace without recursion into its JSON values.
pub fn drop_trace(mut trace: Trace) {
    for o in &mut trace.observations {
        drop_observation_values(o);
    }
    for v in [trace.input.take(), trace.output.take()]
        .into_iter()
        .flatten()
    {
        drop_value(v);
    }
    drop_value(Value::Object(std::mem::take(&mut trace.metadata)));
}

fn drop_observation_values(o: &mut Observation) {
    for v in [o.input.take(), o.output.take()].into_iter().flatten() {
        drop_value(v);
    }
    drop_value(Value::Object(std::mem::take(&mut o.metadata)));
    drop_value(Value::Object(std::mem::take(&mut o.model_parameters)));
}

/// The trace `index` of `run` with the given shape, through the explicit API's model: a
/// workflow root and three generations; the hostile part is on the first generation (or the
/// trace, for tags).
pub fn explicit_trace(run: u64, index: u64, shape: Shape, size: usize) -> Trace {
    let (shape, size) = pick(run, index, shape, size);
    let now = Utc::now();
    let mut trace = Trace::new(
        ids::trace_id(run, index),
        ObservationKind::Workflow,
        format!("torture-{index}"),
        now,
    );
    trace.tags.push("torture".into());
    let mut root = Observation::at(ObservationKind::Workflow, "workflow", now);
    root.id = ids::observation_id(run, index, 0);
    root.end_time = Some(now);
    root.input = Some(json!({ "index": index }));
    trace.observations.push(root);
    for n in 1..=3u64 {
        let mut o = Observation::at(ObservationKind::Generation, format!("llm-{n}"), now);
        o.id = ids::observation_id(run, index, n);
        o.parent_id = Some(ids::observation_id(run, index, 0));
        o.end_time = Some(now);
        o.input = Some(json!({ "prompt": "p".repeat(400), "n": n }));
        o.output = Some(json!("o".repeat(200)));
        o.usage = Some(Usage::tokens(120, 40));
        o.model = Some("gpt-4o-mini".into());
        trace.observations.push(o);
    }
    let first = &mut trace.observations[1];
    match shape {
        Shape::Ordinary | Shape::Mixed => {}
        Shape::Deep | Shape::Wide | Shape::Huge | Shape::HugeControl => {
            if let Some(old) = first
                .input
                .replace(hostile_input(shape, size).expect("a value shape has an input"))
            {
                drop_value(old);
            }
        }
        Shape::ManyTags => trace.tags.extend(tags(size)),
        Shape::HugeName => first.name = huge_string(size),
        Shape::HugeModel => first.model = Some(huge_string(size)),
    }
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_and_build() {
        for shape in Shape::ALL {
            assert_eq!(shape.as_str().parse::<Shape>(), Ok(shape));
            let t = explicit_trace(1, 2, shape, 100);
            assert_eq!(t.observations.len(), 4);
            drop_trace(t);
        }
        assert!("nope".parse::<Shape>().is_err());
    }

    #[test]
    fn mixed_draws_hostile_shapes_deterministically() {
        let picks: Vec<(Shape, usize)> = (0..50).map(|i| pick(9, i, Shape::Mixed, 10)).collect();
        assert_eq!(
            picks,
            (0..50)
                .map(|i| pick(9, i, Shape::Mixed, 10))
                .collect::<Vec<_>>()
        );
        assert!(picks.iter().all(|(s, n)| *s != Shape::Ordinary
            && *s != Shape::Mixed
            && *n >= 1
            && *n <= s.default_size() / 10));
        let kinds: std::collections::HashSet<_> = picks.iter().map(|(s, _)| *s).collect();
        assert!(kinds.len() > 3, "{kinds:?}");
    }

    #[test]
    fn a_million_deep_value_is_built_and_dropped_without_recursion() {
        let v = deep_value(1_000_000);
        assert_eq!(ops_core::limits::measure(&v).1, 1_000_001);
        drop_value(v);
    }
}
