//! Every encoder is linear in tags, attributes and observations: a trace with 262,144 tags and
//! traces with 10,000 observations (a wide tree with its root last, and a chain 10,000 deep)
//! go through each provider's encode path and complete. The time bound is only a guard
//! against a hang (quadratic encoders took minutes here), not a performance claim.

#![cfg(feature = "full")]

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use ops_core::provider::ProviderConfig;
use ops_core::{Observation, ObservationKind, Trace, TraceId};
use ops_providers::otlp::{Dialect, OtlpProvider};
use ops_providers::{
    aliyun, arize, datadog, langfuse, langsmith, mlflow, opik, otlp::generic, phoenix, tencent,
    weave,
};
use serde_json::json;

const TAGS: usize = 262_144;
const OBSERVATIONS: usize = 10_000;
/// Generous: a guard against a hang, on a debug build sharing two cores.
const GUARD: Duration = Duration::from_secs(120);

fn many_tags() -> Arc<Trace> {
    let now = Utc::now();
    let mut t = Trace::new(TraceId::generate(), ObservationKind::Message, "tags", now);
    t.tags = (0..TAGS).map(|i| format!("tag-{i}")).collect();
    let mut root = Observation::at(ObservationKind::Message, "root", now);
    root.tags = (0..TAGS / 2).map(|i| format!("tag-{i}")).collect();
    let mut child = Observation::at(ObservationKind::Generation, "llm", now);
    child.parent_id = Some(root.id);
    child.tags = (0..1000).map(|i| format!("own-{i}")).collect();
    child.metadata = (0..TAGS / 4).map(|i| (format!("k{i}"), json!(i))).collect();
    t.observations = vec![child, root];
    Arc::new(t)
}

/// 10,000 observations: `chain` makes each the parent of the next; otherwise a root with 100
/// children of 99 children each. The root comes last either way.
fn many_observations(chain: bool) -> Arc<Trace> {
    let start = Utc::now();
    let mut t = Trace::new(
        TraceId::generate(),
        ObservationKind::Workflow,
        "wide",
        start,
    );
    t.tags = vec!["a".into(), "b".into()];
    let root = Observation::at(ObservationKind::Workflow, "root", start);
    let mut obs: Vec<Observation> = Vec::with_capacity(OBSERVATIONS);
    let mut previous = root.id;
    let mut level1 = Vec::new();
    for i in 1..OBSERVATIONS {
        let kind = if i % 3 == 0 {
            ObservationKind::Generation
        } else {
            ObservationKind::Tool
        };
        let mut o = Observation::at(
            kind,
            format!("o{i}"),
            start + TimeDelta::microseconds(i as i64),
        );
        o.end_time = Some(o.start_time + TimeDelta::milliseconds(1));
        o.tags = vec!["b".into(), format!("t{}", i % 7)];
        o.model = Some("m".into());
        o.usage = Some(ops_core::Usage::tokens(3, 4));
        o.input = Some(json!({"q": i}));
        o.parent_id = Some(if chain {
            previous
        } else if i <= 100 {
            level1.push(o.id);
            root.id
        } else {
            level1[i % level1.len()]
        });
        previous = o.id;
        obs.push(o);
    }
    obs.push(root);
    t.observations = obs;
    Arc::new(t)
}

fn config(name: &str) -> ProviderConfig {
    let c = ProviderConfig::new(name);
    match name {
        "otlp" => c.with("endpoint", "http://127.0.0.1:9"),
        "langfuse" => c.with("public_key", "pk").with("secret_key", "sk"),
        "arize" => c.with("api_key", "a").with("space_id", "s"),
        "aliyun" => c.with("license_key", "lk"),
        "tencent" => c.with("token", "t").with("endpoint", "http://127.0.0.1:9"),
        "datadog" => c.with("api_key", "d"),
        "databricks" => c
            .with("host", "https://dbc.example.com")
            .with("experiment_id", "1")
            .with("personal_access_token", "d"),
        _ => c,
    }
}

/// Encodes `batch` with every provider, each in a thread joined with [`GUARD`]; returns what
/// each produced (spans, runs, records or calls).
fn encode_everywhere(batch: Vec<Arc<Trace>>, langsmith_too: bool) -> Vec<(&'static str, usize)> {
    type Job = Box<dyn FnOnce(&[Arc<Trace>]) -> usize + Send>;
    fn otlp<D: Dialect>(dialect: D) -> Job {
        let p = OtlpProvider::new(dialect).unwrap();
        Box::new(move |b| {
            p.encode(b)
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum()
        })
    }
    let mut jobs: Vec<(&'static str, Job)> = vec![
        (
            "otlp",
            otlp(generic::GenericOtlp::from_config(&config("otlp")).unwrap()),
        ),
        (
            "langfuse",
            otlp(langfuse::Langfuse::from_config(&config("langfuse")).unwrap()),
        ),
        (
            "phoenix",
            otlp(phoenix::Phoenix::from_config(&config("phoenix")).unwrap()),
        ),
        (
            "arize",
            otlp(arize::Arize::from_config(&config("arize")).unwrap()),
        ),
        (
            "aliyun",
            otlp(aliyun::Aliyun::from_config(&config("aliyun")).unwrap()),
        ),
        (
            "tencent",
            otlp(tencent::Tencent::from_config(&config("tencent")).unwrap()),
        ),
        (
            "datadog",
            otlp(datadog::Datadog::from_config(&config("datadog")).unwrap()),
        ),
        (
            "mlflow",
            otlp(mlflow::Mlflow::tracking_server(&config("mlflow")).unwrap()),
        ),
        (
            "databricks",
            otlp(mlflow::Mlflow::databricks(&config("databricks")).unwrap()),
        ),
        ("opik", {
            let mut p = opik::Opik::new("http://127.0.0.1:9/api/", "p", None, None).unwrap();
            Box::new(move |b| p.records(b, Utc::now()).len())
        }),
        ("weave", {
            let mut p = weave::Weave::new("http://127.0.0.1:9", None, Some("e"), "p", "k").unwrap();
            Box::new(move |b| p.calls(b, Utc::now()).len())
        }),
    ];
    if langsmith_too {
        let mut p = langsmith::LangSmith::new("http://127.0.0.1:9", "p", "k", None).unwrap();
        jobs.push(("langsmith", Box::new(move |b| p.encode(b).len())));
    }
    let batch = Arc::new(batch);
    jobs.into_iter()
        .map(|(name, job)| {
            let (tx, rx) = mpsc::channel();
            let batch = Arc::clone(&batch);
            std::thread::Builder::new()
                .stack_size(8 << 20)
                .spawn(move || {
                    let _ = tx.send(job(&batch));
                })
                .unwrap();
            let n = rx
                .recv_timeout(GUARD)
                .unwrap_or_else(|_| panic!("{name}: encoding did not finish within {GUARD:?}"));
            (name, n)
        })
        .collect()
}

#[test]
fn a_quarter_million_tags_encode_in_bounded_time() {
    for (name, n) in encode_everywhere(vec![many_tags()], true) {
        assert!(n >= 1, "{name} encoded nothing");
    }
}

#[test]
fn ten_thousand_observations_encode_in_bounded_time() {
    for (name, n) in encode_everywhere(vec![many_observations(false)], true) {
        assert!(n >= OBSERVATIONS, "{name}: {n}");
    }
}

#[test]
fn a_chain_ten_thousand_deep_encodes_in_bounded_time() {
    for (name, n) in encode_everywhere(vec![many_observations(true)], true) {
        assert!(n >= OBSERVATIONS, "{name}: {n}");
    }
}

#[test]
fn merged_tags_keep_order_without_repeats() {
    let t = Trace {
        tags: vec!["a".into(), "b".into(), "a".into()],
        ..(*many_observations(false)).clone()
    };
    let mut o = Observation::new(ObservationKind::Span, "x");
    o.tags = vec!["c".into(), "b".into(), "c".into()];
    assert_eq!(
        ops_providers::otlp::genai::merged_tags(&t, &o),
        ["a", "b", "c"]
    );
    assert_eq!(ops_providers::native::tags(&t, &o), ["a", "b", "c"]);
}
