//! The quickstart, then `ops serve`: with `OPS_TRACE_PROVIDER=console,local` both of its
//! traces land in the local store (the console tree is still printed), and the viewer lists,
//! shows and compares them. The example's `run()` runs in a child process (this test
//! binary), since it sets up the process-wide queue from the environment.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use ops_store::{Retention, TraceFilter, TraceStore};
use tower::ServiceExt;

#[allow(dead_code)] // Its `main` is the example's.
#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
#[ignore = "run by quickstart_then_serve_shows_both_runs in a child process"]
fn child_quickstart_local() {
    match quickstart::run() {
        Ok(()) => println!("RESULT OK"),
        Err(e) => println!("RESULT ERROR {e}"),
    }
}

async fn get(app: &axum::Router, uri: &str) -> (u16, String) {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn quickstart_then_serve_shows_both_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ops-traces.db");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_quickstart_local",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OPS_TRACE_PROVIDER", "console,local")
        .env("OPS_TRACE_DB", &db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("RESULT OK"), "{stdout}{stderr}");
    assert!(stdout.contains("local: delivered 2, dropped 0"), "{stdout}");
    assert!(
        stderr.contains("trace answer [message]"),
        "the console tree is still printed: {stderr}"
    );

    let store = TraceStore::open(&db, Retention::default()).await.unwrap();
    let page = store.list(&TraceFilter::default()).await.unwrap();
    assert_eq!(page.total, 2, "both runs are stored");
    let traced = page
        .traces
        .iter()
        .find(|t| t.name == "answer")
        .expect("the #[traced] run");
    assert_eq!(
        (traced.tokens, traced.user_id.as_deref()),
        (760, Some("traveller-42"))
    );
    let (a, b) = (page.traces[0].id.clone(), page.traces[1].id.clone());

    let app = ops_viewer::router(store, None, ops_viewer::HostPolicy::Loopback);
    let (status, list) = get(&app, "/").await;
    assert_eq!(status, 200);
    assert!(list.contains(&format!("/traces/{}", traced.id)));
    let (status, detail) = get(&app, &format!("/traces/{}", traced.id)).await;
    assert_eq!(status, 200);
    assert!(detail.contains("id=\"total-tokens\">760<") && detail.contains("gpt-4o-mini"));
    let (status, compare) = get(&app, &format!("/compare?a={a}&b={b}")).await;
    assert_eq!(status, 200, "{compare}");
    assert!(compare.contains("class=\"pair\""));
    // The two runs are the same chatflow, traced as it ran and rebuilt from its data: their
    // steps pair up by place and kind; only the rebuilt run's Start and Answer nodes are its
    // own.
    assert_eq!(
        compare.matches("only in").count(),
        2,
        "only Start and Answer are unmatched: {compare}"
    );
}
