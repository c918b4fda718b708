//! The local store: filters, paging, retention with counted drops, import and the `local`
//! provider as registered.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ops_core::model::{Level, Observation, ObservationKind, Trace, TraceId, Usage};
use ops_store::{Retention, TraceFilter, TraceStatus, TraceStore};
use serde_json::json;

fn trace(id: &str, user: &str, session: &str, minute: u32, tokens: u64) -> Trace {
    let start = Utc.with_ymd_and_hms(2026, 1, 2, 3, minute, 0).unwrap();
    let mut t = Trace::new(
        TraceId::new(id).unwrap(),
        ObservationKind::Message,
        "answer",
        start,
    );
    t.attributes.user_id = Some(user.into());
    t.attributes.session_id = Some(session.into());
    t.tags = vec![format!("tag-{id}")];
    t.end_time = Some(start + chrono::TimeDelta::milliseconds(1500));
    let mut llm = Observation::at(ObservationKind::Generation, "complete", start);
    llm.id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes());
    llm.input = Some(json!([{"role": "user", "content": format!("question {id}")}]));
    llm.output = Some(json!("Pack LIGHT"));
    llm.usage = Some(Usage::tokens(tokens, 0).with_cost(0.5, "USD"));
    t.observations.push(llm);
    t
}

fn no_caps() -> Retention {
    Retention {
        max_traces: None,
        max_bytes: None,
        max_age: None,
    }
}

async fn open(retention: Retention) -> (tempfile::TempDir, TraceStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(dir.path().join("t.db"), retention)
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn list_filters_pages_and_summarises() {
    let (_dir, store) = open(no_caps()).await;
    let mut failed = trace("c", "bob", "s2", 3, 30);
    failed.observations[0].level = Level::Error;
    store
        .insert([
            &trace("a", "ann", "s1", 1, 10),
            &trace("b", "ann", "s1", 2, 20),
            &failed,
        ])
        .await
        .unwrap();

    let all = store.list(&TraceFilter::default()).await.unwrap();
    assert_eq!(all.total, 3);
    let ids: Vec<_> = all.traces.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["c", "b", "a"], "newest first");
    let c = &all.traces[0];
    assert_eq!(
        (c.tokens, c.cost, c.status),
        (30, Some(0.5), TraceStatus::Error)
    );
    assert_eq!(c.duration_ms, Some(1500));
    assert_eq!(c.user_id.as_deref(), Some("bob"));

    let by = |f: TraceFilter| {
        let store = store.clone();
        async move {
            let page = store.list(&f).await.unwrap();
            page.traces.into_iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by(TraceFilter {
            user: Some("ann".into()),
            ..Default::default()
        })
        .await,
        ["b", "a"]
    );
    assert_eq!(
        by(TraceFilter {
            session: Some("s2".into()),
            ..Default::default()
        })
        .await,
        ["c"]
    );
    assert_eq!(
        by(TraceFilter {
            tag: Some("tag-b".into()),
            ..Default::default()
        })
        .await,
        ["b"]
    );
    assert_eq!(
        by(TraceFilter {
            status: Some(TraceStatus::Error),
            ..Default::default()
        })
        .await,
        ["c"]
    );
    assert_eq!(
        by(TraceFilter {
            kind: Some("workflow".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        by(TraceFilter {
            search: Some("QUESTION a".into()),
            ..Default::default()
        })
        .await,
        ["a"]
    );
    let two = Utc.with_ymd_and_hms(2026, 1, 2, 3, 2, 0).unwrap();
    assert_eq!(
        by(TraceFilter {
            from: Some(two),
            ..Default::default()
        })
        .await,
        ["c", "b"]
    );
    assert_eq!(
        by(TraceFilter {
            to: Some(two),
            ..Default::default()
        })
        .await,
        ["a"]
    );
    assert_eq!(
        by(TraceFilter {
            page: 2,
            per_page: 2,
            ..Default::default()
        })
        .await,
        ["a"]
    );

    let got = store.get("b").await.unwrap().unwrap();
    assert_eq!(got, trace("b", "ann", "s1", 2, 20));
    assert!(store.get("zzz").await.unwrap().is_none());

    let sessions = store.sessions().await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        (
            sessions[1].session_id.as_str(),
            sessions[1].traces,
            sessions[1].tokens
        ),
        ("s1", 2, 30)
    );
    let s1: Vec<_> = store
        .session("s1")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(s1, ["a", "b"], "a session reads in the order it happened");

    let since: Vec<_> = store
        .since(1)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(since, ["b", "c"]);
    assert_eq!(store.last_seq().await.unwrap(), 3);
}

#[tokio::test]
async fn same_id_replaces_rather_than_duplicates() {
    let (_dir, store) = open(no_caps()).await;
    store
        .insert([&trace("a", "ann", "s1", 1, 10)])
        .await
        .unwrap();
    store
        .insert([&trace("a", "ann", "s1", 1, 99)])
        .await
        .unwrap();
    let page = store.list(&TraceFilter::default()).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.traces[0].tokens, 99);
}

#[tokio::test]
async fn retention_by_count_keeps_the_newest_and_counts_drops() {
    let (_dir, store) = open(Retention {
        max_traces: Some(2),
        ..no_caps()
    })
    .await;
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        store
            .insert([&trace(id, "u", "s", i as u32, 1)])
            .await
            .unwrap();
    }
    let ids: Vec<_> = store
        .list(&TraceFilter::default())
        .await
        .unwrap()
        .traces
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["d", "c"]);
    let drops = store.drops().await.unwrap();
    assert_eq!((drops.count, drops.bytes, drops.age), (2, 0, 0));
}

#[tokio::test]
async fn retention_by_bytes_keeps_what_fits() {
    let one = serde_json::to_string(&trace("a", "u", "s", 0, 1))
        .unwrap()
        .len() as u64;
    // Room for two traces and a bit, not three.
    let (_dir, store) = open(Retention {
        max_bytes: Some(one * 2 + one / 2),
        ..no_caps()
    })
    .await;
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        store
            .insert([&trace(id, "u", "s", i as u32, 1)])
            .await
            .unwrap();
    }
    let ids: Vec<_> = store
        .list(&TraceFilter::default())
        .await
        .unwrap()
        .traces
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["c", "b"]);
    assert_eq!(store.drops().await.unwrap().bytes, 1);
}

#[tokio::test]
async fn retention_by_age_drops_what_was_stored_too_long_ago() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = TraceStore::open(&path, no_caps()).await.unwrap();
    store.insert([&trace("old", "u", "s", 0, 1)]).await.unwrap();
    store.close().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Reopened with a 20 ms age cap: the old trace is past it when the next one arrives.
    let store = TraceStore::open(
        &path,
        Retention {
            max_age: Some(Duration::from_millis(20)),
            ..no_caps()
        },
    )
    .await
    .unwrap();
    store.insert([&trace("new", "u", "s", 1, 1)]).await.unwrap();
    let ids: Vec<_> = store
        .list(&TraceFilter::default())
        .await
        .unwrap()
        .traces
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["new"]);
    assert_eq!(store.drops().await.unwrap().age, 1);
}

#[tokio::test]
async fn import_reads_the_file_providers_lines_and_reports_bad_ones() {
    let (dir, store) = open(no_caps()).await;
    let path = dir.path().join("traces.jsonl");
    let lines = [
        serde_json::to_string(&trace("a", "u", "s", 0, 1)).unwrap(),
        String::new(),
        "{not json".to_owned(),
        serde_json::to_string(&trace("b", "u", "s", 1, 1)).unwrap(),
        r#"{"id": "x"}"#.to_owned(),
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let report = store.import_jsonl(&path).await.unwrap();
    assert_eq!(
        (report.imported, report.blank, report.rejected_total),
        (2, 1, 2)
    );
    assert_eq!(report.rejected[0].0, 3);
    assert_eq!(report.rejected[1].0, 5);
    assert_eq!(store.list(&TraceFilter::default()).await.unwrap().total, 2);

    let missing = store
        .import_jsonl(dir.path().join("nope.jsonl"))
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("nope.jsonl"), "{missing}");
}

#[tokio::test]
async fn local_provider_is_registered_and_exports_into_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let factory = ops_core::provider::find("local").expect("`local` is registered");
    let config = ops_core::provider::ProviderConfig::new("local")
        .with("path", path.display().to_string())
        .with("max_traces", "1");
    let mut provider = factory.build(config).unwrap();
    let batch = [
        Arc::new(trace("a", "u", "s", 0, 1)),
        Arc::new(trace("b", "u", "s", 1, 1)),
    ];
    assert_eq!(
        provider.export(&batch).await,
        ops_core::provider::ExportOutcome::Delivered
    );
    provider.shutdown().await;
    let store = TraceStore::open(&path, no_caps()).await.unwrap();
    let page = store.list(&TraceFilter::default()).await.unwrap();
    assert_eq!(
        page.traces
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(store.drops().await.unwrap().count, 1);

    let bad = ops_core::provider::ProviderConfig::new("local").with("max_bytes", "lots");
    let err = factory.build(bad).unwrap_err().to_string();
    assert!(
        err.contains("max_bytes") && err.contains("whole number"),
        "{err}"
    );
}

#[test]
fn default_caps_are_the_documented_ones() {
    let caps = Retention::default();
    assert_eq!(caps.max_traces, Some(10_000));
    assert_eq!(caps.max_bytes, Some(256 * 1024 * 1024));
    assert_eq!(caps.max_age, Some(Duration::from_secs(30 * 24 * 3600)));
    assert_eq!(ops_store::DEFAULT_PATH, "ops-traces.db");
}
