//! Payload limits: oversized or over-deep inputs and outputs are replaced by a visible marker
//! that keeps their original size and a preview, so the trace is delivered instead of
//! rejected; and batches are split to fit a platform's request limit.

use serde_json::{Map, Value, json};

use crate::model::Trace;

/// The key that marks a truncated value.
pub const TRUNCATED_KEY: &str = "__ops_truncated__";

/// How large and deep one input, output or metadata value may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits {
    /// Serialized bytes (estimated without serializing).
    pub max_bytes: usize,
    /// Nesting depth of arrays and objects.
    pub max_depth: usize,
    /// Characters of the original kept in the marker's preview.
    pub preview_chars: usize,
}

impl Default for FieldLimits {
    /// 1 MiB, depth 64, a 1000-character preview: below Langfuse's ~1 MB per observation.
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_depth: 64,
            preview_chars: 1000,
        }
    }
}

/// The estimated JSON size of `value` and its depth, measured without recursion so that no
/// value, however deep, can overflow the stack.
pub fn measure(value: &Value) -> (usize, usize) {
    let mut bytes = 0;
    let mut depth = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((v, d)) = stack.pop() {
        depth = depth.max(d);
        bytes += match v {
            Value::Null | Value::Bool(true) | Value::Number(_) => 4,
            Value::Bool(false) => 5,
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                stack.extend(items.iter().map(|i| (i, d + 1)));
                2 + items.len().saturating_sub(1)
            }
            Value::Object(map) => {
                stack.extend(map.values().map(|i| (i, d + 1)));
                2 + map.len().saturating_sub(1) + map.keys().map(|k| k.len() + 3).sum::<usize>()
            }
        };
    }
    (bytes, depth)
}

fn preview(value: &Value, limits: &FieldLimits, depth: usize) -> String {
    if depth > limits.max_depth {
        return String::new();
    }
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().take(limits.preview_chars).collect()
}

/// Replaces `value` with a truncation marker when it is over a limit. Returns whether it did.
pub fn truncate_value(value: &mut Value, limits: &FieldLimits) -> bool {
    let (bytes, depth) = measure(value);
    if bytes <= limits.max_bytes && depth <= limits.max_depth {
        return false;
    }
    let reason = if depth > limits.max_depth {
        format!(
            "nested {depth} levels deep; the limit is {}",
            limits.max_depth
        )
    } else {
        format!("{bytes} bytes; the limit is {}", limits.max_bytes)
    };
    let marker = json!({
        TRUNCATED_KEY: true,
        "original_bytes": bytes,
        "reason": reason,
        "preview": preview(value, limits, depth),
    });
    let old = std::mem::replace(value, marker);
    drop_iteratively(old);
    true
}

/// Drops a value without recursion (serde_json's own drop recurses once per level).
pub(crate) fn drop_iteratively(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

fn truncate_map(map: &mut Map<String, Value>, limits: &FieldLimits) -> usize {
    map.values_mut()
        .map(|v| truncate_value(v, limits))
        .filter(|cut| *cut)
        .count()
}

/// Applies `limits` to every input, output, metadata value and model parameter of the trace.
/// Returns how many values were replaced.
pub fn truncate_trace(trace: &mut Trace, limits: &FieldLimits) -> usize {
    let mut n = 0;
    for v in [&mut trace.input, &mut trace.output].into_iter().flatten() {
        n += usize::from(truncate_value(v, limits));
    }
    n += truncate_map(&mut trace.metadata, limits);
    for o in &mut trace.observations {
        for v in [&mut o.input, &mut o.output].into_iter().flatten() {
            n += usize::from(truncate_value(v, limits));
        }
        n += truncate_map(&mut o.metadata, limits);
        n += truncate_map(&mut o.model_parameters, limits);
    }
    n
}

/// The metadata key listing what [`sanitize_trace`] removed from an observation.
pub const WARNINGS_KEY: &str = "ops.warnings";

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
                warnings.push(Value::String(format!("usage.{name} was {v}; removed")));
                *value = None;
            }
        }
        removed += warnings.len();
        if !warnings.is_empty() {
            match o.metadata.get_mut(WARNINGS_KEY) {
                Some(Value::Array(existing)) => existing.extend(warnings),
                _ => {
                    o.metadata
                        .insert(WARNINGS_KEY.into(), Value::Array(warnings));
                }
            }
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
mod tests {
    use super::*;
    use crate::model::{Observation, ObservationKind, TraceId};

    fn deep(levels: usize) -> Value {
        let mut v = json!("leaf");
        for _ in 0..levels {
            v = Value::Array(vec![v]);
        }
        v
    }

    #[test]
    fn measuring_is_close_to_the_serialized_size() {
        let v =
            json!({"messages": [{"role": "user", "content": "hello there"}], "n": 1, "ok": true});
        let (bytes, depth) = measure(&v);
        let real = serde_json::to_string(&v).unwrap().len();
        assert!(
            bytes >= real * 9 / 10 && bytes <= real * 11 / 10,
            "{bytes} vs {real}"
        );
        assert_eq!(depth, 4);
    }

    #[test]
    fn oversized_values_become_a_marker_with_size_and_preview() {
        let limits = FieldLimits {
            max_bytes: 100,
            preview_chars: 10,
            ..FieldLimits::default()
        };
        let mut v = json!("x".repeat(500));
        assert!(truncate_value(&mut v, &limits));
        assert_eq!(v[TRUNCATED_KEY], json!(true));
        assert_eq!(v["original_bytes"], json!(502));
        assert_eq!(v["preview"], json!("xxxxxxxxxx"));
        assert_eq!(v["reason"], json!("502 bytes; the limit is 100"));
        let mut small = json!({"a": 1});
        assert!(!truncate_value(&mut small, &limits));
        assert_eq!(small, json!({"a": 1}));
    }

    #[test]
    fn absurdly_deep_values_are_cut_without_overflowing_the_stack() {
        let mut v = deep(200_000);
        assert_eq!(measure(&v).1, 200_001);
        assert!(truncate_value(&mut v, &FieldLimits::default()));
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .starts_with("nested 200001 levels deep")
        );
        assert_eq!(v["preview"], json!(""));
    }

    #[test]
    fn traces_keep_every_observation_when_fields_are_cut() {
        let mut trace = Trace::new(
            TraceId::generate(),
            ObservationKind::Span,
            "t",
            chrono::Utc::now(),
        );
        let mut o = Observation::new(ObservationKind::Generation, "llm");
        o.input = Some(json!("y".repeat(2_000)));
        o.output = Some(json!("short"));
        o.metadata.insert("big".into(), json!("z".repeat(2_000)));
        trace.observations.push(o);
        let limits = FieldLimits {
            max_bytes: 1_000,
            ..FieldLimits::default()
        };
        assert_eq!(truncate_trace(&mut trace, &limits), 2);
        assert_eq!(trace.observations.len(), 1);
        assert_eq!(trace.observations[0].output, Some(json!("short")));
        assert_eq!(
            trace.observations[0].input.as_ref().unwrap()[TRUNCATED_KEY],
            json!(true)
        );
    }

    #[test]
    fn non_finite_costs_are_removed_with_a_warning() {
        let mut trace = Trace::new(
            TraceId::generate(),
            ObservationKind::Span,
            "t",
            chrono::Utc::now(),
        );
        let mut o = Observation::new(ObservationKind::Generation, "llm");
        o.usage = Some(crate::Usage {
            input: Some(1),
            input_cost: Some(f64::NAN),
            total_cost: Some(f64::INFINITY),
            output_cost: Some(0.5),
            ..crate::Usage::default()
        });
        trace.observations.push(o);
        assert_eq!(sanitize_trace(&mut trace), 2);
        let o = &trace.observations[0];
        let usage = o.usage.as_ref().unwrap();
        assert_eq!(
            (usage.input_cost, usage.output_cost, usage.total_cost),
            (None, Some(0.5), None)
        );
        assert_eq!(
            o.metadata[WARNINGS_KEY],
            json!([
                "usage.input_cost was NaN; removed",
                "usage.total_cost was inf; removed"
            ])
        );
        assert!(serde_json::to_string(&trace).is_ok());
    }

    #[test]
    fn batches_split_by_count_and_bytes() {
        let sizes = vec![400, 400, 400, 1500, 10, 10, 10];
        let batches = split_batches(sizes, 2, 1000, |s| *s);
        assert_eq!(
            batches,
            vec![
                vec![400, 400],
                vec![400],
                vec![1500],
                vec![10, 10],
                vec![10]
            ]
        );
        assert!(split_batches(Vec::<usize>::new(), 2, 10, |s| *s).is_empty());
    }
}
