use super::*;
use crate::model::{Observation, ObservationKind, TraceId};

fn deep(levels: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 0..levels {
        v = Value::Array(vec![v]);
    }
    v
}

fn trace_with(o: Observation) -> Trace {
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Span,
        "t",
        chrono::Utc::now(),
    );
    trace.observations.push(o);
    trace
}

#[test]
fn measuring_matches_the_serialized_size_escapes_included() {
    for v in [
        json!({"messages": [{"role": "user", "content": "hello there"}], "n": 1, "ok": true}),
        json!({"ctl": "\u{0}\u{1}\u{1f}", "q": "say \"hi\"\\", "nl": "a\nb\tc", "f": 1.5e300, "neg": -12}),
        json!([null, false, true, [], {}, "é✓"]),
    ] {
        let (bytes, _) = measure(&v);
        assert_eq!(bytes, serde_json::to_string(&v).unwrap().len(), "{v}");
    }
    assert_eq!(measure(&json!({"a": [[1]]})).1, 4);
}

#[test]
fn control_characters_count_at_their_escaped_size() {
    let s = "\u{1}".repeat(1000);
    let (bytes, _) = measure(&json!(s));
    assert_eq!(bytes, 6002);
    let mut v = json!(s);
    let limits = FieldLimits {
        max_bytes: 5000,
        ..FieldLimits::default()
    };
    assert_eq!(
        truncate_value(&mut v, &limits),
        1,
        "1000 bytes that write as 6000"
    );
}

#[test]
fn oversized_values_become_a_marker_with_size_and_a_preview() {
    let limits = FieldLimits {
        max_bytes: 100,
        preview_chars: 10,
        ..FieldLimits::default()
    };
    let mut v = json!("x".repeat(500));
    assert_eq!(truncate_value(&mut v, &limits), 1);
    assert_eq!(v[TRUNCATED_KEY], json!(true));
    assert_eq!(v["original_bytes"], json!(502));
    assert_eq!(v["reason"], json!("502 bytes; the limit is 100"));
    finish_markers(&mut v, limits.preview_chars);
    assert_eq!(v["preview"], json!("xxxxxxxxxx"));
    let mut small = json!({"a": 1});
    assert_eq!(truncate_value(&mut small, &limits), 0);
    assert_eq!(small, json!({"a": 1}));
}

#[test]
fn a_preview_keeps_the_shape_so_a_mask_still_applies() {
    let limits = FieldLimits {
        max_bytes: 100,
        preview_chars: 60,
        ..FieldLimits::default()
    };
    let mut v = json!({"api_key": "sk-secret", "body": "y".repeat(1000)});
    truncate_value(&mut v, &limits);
    assert_eq!(v["preview"]["api_key"], json!("sk-secret"), "still a value");
    crate::context::Mask::mask(&crate::context::RedactKeys::default(), &mut v);
    finish_markers(&mut v, limits.preview_chars);
    let preview = v["preview"].as_str().unwrap();
    assert!(!preview.contains("sk-secret"), "{preview}");
    assert!(
        preview.starts_with("{\"api_key\":\"[REDACTED]\""),
        "{preview}"
    );
    assert!(preview.chars().count() <= 60);
}

#[test]
fn too_deep_parts_are_cut_where_they_are_too_deep() {
    let mut v = json!({"keep": "me", "deep": deep(100)});
    let cuts = cut_depth(&mut v, 5);
    assert_eq!(cuts, 1);
    assert_eq!(v["keep"], json!("me"));
    let mut at = &v["deep"];
    for _ in 0..3 {
        at = &at[0];
    }
    assert!(is_marker(at), "{at}");
    assert!(
        at["reason"]
            .as_str()
            .unwrap()
            .contains("nested 102 levels deep"),
        "{at}"
    );
    assert!(measure(&v).1 <= 6);
}

#[test]
fn absurdly_deep_values_are_cut_without_overflowing_the_stack() {
    for levels in [200_000, 1_000_000] {
        let mut v = deep(levels);
        assert_eq!(measure(&v).1, levels + 1);
        assert_eq!(truncate_value(&mut v, &FieldLimits::default()), 1);
        assert!(measure(&v).1 <= 65);
        drop_iteratively(v);
    }
}

#[test]
fn maps_are_held_to_the_limit_as_a_whole_and_keys_are_capped() {
    let limits = FieldLimits {
        max_bytes: 1000,
        max_name_bytes: 40,
        ..FieldLimits::default()
    };
    let mut map: Map<String, Value> = (0..500)
        .map(|i| (format!("k{i:03}"), json!("v".repeat(10))))
        .collect();
    map.insert("k".repeat(5000), json!(1));
    let cuts = truncate_map(&mut map, &limits);
    assert!(cuts >= 2);
    let total = measure(&Value::Object(map.clone())).0;
    assert!(total < 2000, "{total}");
    assert!(is_marker(&map[TRUNCATED_KEY]));
    assert!(map.keys().all(|k| k.len() <= 40 || k == TRUNCATED_KEY));
}

#[test]
fn strings_and_tags_are_capped_with_a_marker() {
    let mut s = "n".repeat(10 << 20);
    assert!(cap_string(&mut s, 1024));
    assert!(s.len() <= 1024);
    assert!(s.ends_with("…[10485760 bytes cut by ops]"), "{}", &s[900..]);
    let mut multibyte = "é".repeat(100);
    assert!(cap_string(&mut multibyte, 51));
    assert!(multibyte.len() <= 51);

    let mut o = Observation::new(ObservationKind::Generation, "x".repeat(10 << 20));
    o.model = Some("m".repeat(4 << 20));
    o.status_message = Some("e".repeat(1 << 20));
    o.tags = (0..100_000).map(|i| format!("tag-{i}")).collect();
    o.attributes.user_id = Some("u".repeat(1 << 20));
    let mut trace = trace_with(o);
    trace.tags = (0..5000).map(|i| i.to_string()).collect();
    let limits = FieldLimits::default();
    assert!(truncate_trace(&mut trace, &limits) >= 6);
    let o = &trace.observations[0];
    assert!(o.name.len() <= limits.max_name_bytes);
    assert!(o.model.as_ref().unwrap().len() <= limits.max_name_bytes);
    assert!(o.status_message.as_ref().unwrap().len() <= limits.max_message_bytes);
    assert!(o.attributes.user_id.as_ref().unwrap().len() <= limits.max_name_bytes);
    assert_eq!(o.tags.len(), limits.max_tags);
    assert_eq!(trace.tags.len(), limits.max_tags);
    assert_eq!(
        o.metadata[WARNINGS_KEY],
        json!(["100000 tags; kept the first 1000"])
    );
    assert_eq!(
        trace.metadata[WARNINGS_KEY],
        json!(["trace 5000 tags; kept the first 1000"])
    );
}

#[test]
fn traces_keep_every_observation_when_fields_are_cut() {
    let mut o = Observation::new(ObservationKind::Generation, "llm");
    o.input = Some(json!("y".repeat(2_000)));
    o.output = Some(json!("short"));
    o.metadata.insert("big".into(), json!("z".repeat(2_000)));
    let mut trace = trace_with(o);
    let limits = FieldLimits {
        max_bytes: 1_000,
        ..FieldLimits::default()
    };
    assert_eq!(
        truncate_trace(&mut trace, &limits),
        3,
        "input, a value, the map"
    );
    assert_eq!(trace.observations.len(), 1);
    assert_eq!(trace.observations[0].output, Some(json!("short")));
    assert_eq!(
        trace.observations[0].input.as_ref().unwrap()[TRUNCATED_KEY],
        json!(true)
    );
    assert!(
        trace.observations[0].input.as_ref().unwrap()["preview"].is_string(),
        "previews are text once the trace is finished"
    );
}

#[test]
fn non_finite_costs_are_removed_with_a_warning() {
    let mut o = Observation::new(ObservationKind::Generation, "llm");
    o.usage = Some(crate::Usage {
        input: Some(1),
        input_cost: Some(f64::NAN),
        total_cost: Some(f64::INFINITY),
        output_cost: Some(0.5),
        ..crate::Usage::default()
    });
    let mut trace = trace_with(o);
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

#[test]
fn measure_finds_an_escape_anywhere_in_a_long_string() {
    // The fast check reads 32 bytes at a time: an escape in any chunk, or in the tail, counts.
    for len in [0, 1, 31, 32, 33, 64, 100] {
        for at in 0..len {
            for special in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
                let mut s: Vec<char> = "abcdé".chars().cycle().take(len).collect();
                s[at] = special;
                let v = Value::String(s.into_iter().collect());
                assert_eq!(
                    measure(&v).0,
                    serde_json::to_string(&v).unwrap().len(),
                    "{v}"
                );
            }
        }
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1e12f64..1e12).prop_map(|n| json!(n)),
            "\\PC{0,20}".prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(8, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z_]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn measure_is_exact(v in values()) {
            fn depth(v: &Value) -> usize {
                1 + match v {
                    Value::Array(items) => items.iter().map(depth).max().unwrap_or(0),
                    Value::Object(map) => map.values().map(depth).max().unwrap_or(0),
                    _ => 0,
                }
            }
            prop_assert_eq!(measure(&v), (serde_json::to_string(&v).unwrap().len(), depth(&v)));
        }

        #[test]
        fn any_value_ends_within_the_limits(v in values(), max_bytes in 2usize..300, max_depth in 1usize..6) {
            let limits = FieldLimits { max_bytes, max_depth, preview_chars: 20, ..FieldLimits::default() };
            let mut v = v;
            truncate_value(&mut v, &limits);
            finish_markers(&mut v, limits.preview_chars);
            let (bytes, depth) = measure(&v);
            prop_assert!(depth <= max_depth + 1 || is_marker(&v), "depth {} > {}", depth, max_depth);
            prop_assert!(bytes <= max_bytes || is_marker(&v), "{} bytes", bytes);
            if is_marker(&v) {
                prop_assert!(v["preview"].as_str().is_none_or(|p| p.chars().count() <= 20));
            }
        }
    }
}
