//! Every page and endpoint over HTTP (in process): content, filters, escaping of hostile
//! input, JSON errors, limits, live updates and the admin mount point.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{HOSTILE, chat_trace, store_with};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(app: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

async fn app() -> (tempfile::TempDir, Router) {
    let (dir, store) = store_with(&[
        chat_trace("run-1", 1, "Pack light: a linen shirt."),
        chat_trace("run-2", 2, "Pack light: sunscreen and a hat."),
    ])
    .await;
    (
        dir,
        ops_viewer::router(store, None, ops_viewer::HostPolicy::Loopback),
    )
}

fn assert_escaped(page: &str) {
    assert!(
        !page.contains("<script>alert"),
        "hostile input reached the page unescaped"
    );
    assert!(
        page.contains("&lt;script&gt;alert"),
        "hostile input is shown, escaped: {}",
        page.get(page.len().saturating_sub(3000)..).unwrap_or(page)
    );
}

#[tokio::test]
async fn list_page_lists_filters_and_pages() {
    let (_dir, app) = app().await;
    let (status, headers, page) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.matches("class=\"trace-row\"").count(), 2);
    for column in [
        "traveller-42",
        "trip-planning",
        "1.80 s",
        "800",
        "$0.000182",
        "error",
        "message",
    ] {
        assert!(page.contains(column), "list shows {column:?}");
    }
    assert!(
        page.contains("data-live=\"1\""),
        "an unfiltered first page is live"
    );

    let (_, _, none) = get(&app, "/?user=nobody").await;
    assert_eq!(none.matches("class=\"trace-row\"").count(), 0);
    assert!(none.contains("data-live=\"0\""));
    let (_, _, searched) = get(&app, "/?q=SUNSCREEN").await;
    assert_eq!(searched.matches("class=\"trace-row\"").count(), 1);
    assert!(searched.contains("/traces/run-2"));
    let (_, _, tagged) = get(
        &app,
        "/?tag=quickstart&status=error&kind=message&session=trip-planning&from=2026-12-06T10:02",
    )
    .await;
    assert_eq!(tagged.matches("class=\"trace-row\"").count(), 1);
    let (_, _, paged) = get(&app, "/?per_page=1&page=2").await;
    assert!(paged.contains("/traces/run-1") && !paged.contains("/traces/run-2"));
    assert!(paged.contains("page 2 of 2"));
}

#[tokio::test]
async fn bad_query_values_are_json_errors_naming_the_value() {
    let (_dir, app) = app().await;
    for (uri, words) in [
        ("/?status=broken", "not one of ok, warning, error"),
        ("/?page=two", "page \\\"two\\\" is not a whole number"),
        ("/?from=yesterday", "from \\\"yesterday\\\" is not a time"),
        ("/api/traces?to=noon", "to \\\"noon\\\" is not a time"),
        ("/compare?a=run-1", "missing b"),
        ("/api/events?after=x", "not a sequence number"),
    ] {
        let (status, headers, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{uri}");
        assert!(
            body.starts_with("{\"error\":") && body.contains(words),
            "{uri}: {body}"
        );
    }
    for uri in [
        "/traces/nope",
        "/api/traces/nope",
        "/sessions/nope",
        "/compare?a=run-1&b=nope",
        "/no/such/page",
    ] {
        let (status, _, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body.starts_with("{\"error\":"), "{uri}: {body}");
    }
}

#[tokio::test]
async fn detail_page_shows_tree_waterfall_rollups_chat_and_errors() {
    let (_dir, app) = app().await;
    let (status, _, page) = get(&app, "/traces/run-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page.matches("class=\"obs-row").count(),
        6,
        "one tree row per observation"
    );
    assert_eq!(
        page.matches("class=\"bar kind-").count(),
        6,
        "one waterfall bar per row"
    );
    // Totals: 612 + 148 + 40 tokens, 0.0001806 + 0.000001 USD.
    assert!(page.contains("id=\"total-tokens\">800<"), "total tokens");
    assert!(page.contains("id=\"total-cost\">$0.000182<"), "total cost");
    // Rolled up: the retrieve row holds its child's 40 tokens; the workflow holds all 800.
    let row = |name: &str| {
        let at = page.find(&format!("</span> {name}</td>")).unwrap();
        page[at..].split("</tr>").next().unwrap().to_owned()
    };
    assert!(row("retrieve").contains("rollup-tokens\">40<"));
    assert!(row("run_workflow").contains("rollup-tokens\">800<"));
    assert!(row("complete").contains("rollup-tokens\">760<"));
    // The failed tool is marked in the tree and explained in its panel.
    assert!(page.contains("class=\"obs-row error\""));
    assert!(page.contains("error-box level-ERROR") && page.contains("weather service timed out"));
    // Chat: every role, the tool call with its arguments pretty-printed, the model and usage.
    for role in ["system", "user", "assistant", "tool"] {
        assert!(
            page.contains(&format!("class=\"msg role-{role}\"")),
            "{role} message"
        );
    }
    assert!(
        page.contains("→ get_weather") && page.contains("&quot;city&quot;: &quot;Lisbon&quot;")
    );
    assert!(page.contains("gpt-4o-mini (openai)") && page.contains("612 in"));
    assert!(page.contains("&quot;temperature&quot;: 0.3"));
    assert_escaped(&page);
}

#[tokio::test]
async fn hostile_input_is_escaped_on_every_page() {
    let (_dir, app) = app().await;
    for uri in ["/traces/run-1", "/sessions/trip-planning"] {
        let (status, _, page) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_escaped(&page);
    }
    // Compare shows the hostile text where the two runs differ in it.
    let (_dir3, store) = store_with(&[chat_trace("x", 1, "a"), chat_trace("y", 2, HOSTILE)]).await;
    let (_, _, page) = get(
        &ops_viewer::router(store, None, ops_viewer::HostPolicy::Loopback),
        "/compare?a=x&b=y",
    )
    .await;
    assert_escaped(&page);
    // A hostile name, user and id-like value in the list too.
    let mut evil = chat_trace("evil", 3, "ok");
    evil.name = HOSTILE.into();
    evil.attributes.user_id = Some(format!("\"><img src=x onerror=alert(1)>{HOSTILE}"));
    let (_dir2, store) = store_with(&[evil]).await;
    let app = ops_viewer::router(store, None, ops_viewer::HostPolicy::Loopback);
    for uri in ["/", "/traces/evil", "/sessions"] {
        let (_, headers, page) = get(&app, uri).await;
        if uri != "/sessions" {
            assert_escaped(&page);
        }
        assert!(!page.contains("<script>alert"), "{uri}");
        assert!(!page.contains("<img src=x"), "{uri}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"));
    }
}

#[tokio::test]
async fn sessions_list_and_one_session_in_order() {
    let (_dir, app) = app().await;
    let (status, _, page) = get(&app, "/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("/sessions/trip-planning") && page.contains(">2<") && page.contains(">1600<")
    );
    let (_, _, session) = get(&app, "/sessions/trip-planning").await;
    let first = session.find("linen shirt").unwrap();
    let second = session.find("sunscreen").unwrap();
    assert!(first < second, "the session reads in order");
}

#[tokio::test]
async fn compare_diffs_matching_observations() {
    let (_dir, app) = app().await;
    let (status, _, page) = get(&app, "/compare?a=run-1&b=run-2").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("class=\"del\">- &quot;Pack light: a linen shirt.&quot;")
            || page.contains(
                "class=\"del\">-   &quot;content&quot;: &quot;Pack light: a linen shirt.&quot;"
            )
    );
    assert!(page.contains("sunscreen"));
    assert!(page.contains("class=\"ins\">"));
    // Same inputs read "same"; every observation is matched (none is "only in" one side).
    assert!(page.contains("input</span> same"));
    assert!(!page.contains("only in"));
}

#[tokio::test]
async fn compare_matches_renamed_steps_by_their_place_in_the_tree() {
    // The same run with every step renamed (a traced run beside the same run rebuilt from
    // its data, as the quickstart does): matched by kind and place, so the outputs diff.
    let mut renamed = chat_trace("run-r", 3, "Pack light: sunscreen and a hat.");
    for o in &mut renamed.observations {
        o.name = format!("{} (rebuilt)", o.name);
    }
    let (_dir, store) = store_with(&[
        chat_trace("run-1", 1, "Pack light: a linen shirt."),
        renamed,
    ])
    .await;
    let app = ops_viewer::router(store, None, ops_viewer::HostPolicy::Loopback);
    let (status, _, page) = get(&app, "/compare?a=run-1&b=run-r").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("only in"), "every step is matched");
    assert!(page.contains("sunscreen") && page.contains("class=\"ins\">"));
    assert!(page.contains("class=\"del\">"));
}

#[tokio::test]
async fn json_endpoints() {
    let (_dir, app) = app().await;
    let (status, _, body) = get(&app, "/api/traces?user=traveller-42&per_page=1").await;
    assert_eq!(status, StatusCode::OK);
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 2);
    assert_eq!(page["traces"][0]["id"], "run-2");
    assert_eq!(page["traces"][0]["tokens"], 800);
    let (_, _, body) = get(&app, "/api/traces/run-1").await;
    let trace: ops_core::model::Trace = serde_json::from_str(&body).unwrap();
    assert_eq!(trace, chat_trace("run-1", 1, "Pack light: a linen shirt."));
    let (_, _, body) = get(&app, "/api/stats").await;
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["traces"], 2);
    assert_eq!(stats["dropped"]["count"], 0);
    let (_, headers, js) = get(&app, "/assets/app.js").await;
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.contains("EventSource"));
}

#[tokio::test]
async fn live_events_send_traces_stored_after_the_page_loaded() {
    let (_dir, store) = store_with(&[chat_trace("run-1", 1, "a")]).await;
    let app = ops_viewer::router(store.clone(), None, ops_viewer::HostPolicy::Loopback);
    let response = app
        .oneshot(
            Request::get("/api/events?after=1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    store.insert([&chat_trace("run-9", 9, "b")]).await.unwrap();
    let mut body = response.into_body();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("\n\n") || !seen.contains("event: trace") {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    assert!(seen.contains("event: trace"), "{seen}");
    assert!(
        seen.contains("\"id\":\"run-9\"") && !seen.contains("\"id\":\"run-1\""),
        "{seen}"
    );
}

#[tokio::test]
async fn limits_and_the_admin_mount_point() {
    let (_dir, store) = store_with(&[]).await;
    let admin = Router::new().route(
        "/echo",
        axum::routing::post(|body: String| async move { format!("got {}", body.len()) }),
    );
    let app = ops_viewer::router(store, Some(admin), ops_viewer::HostPolicy::Loopback);
    let post = |size: usize| {
        Request::post("/api/admin/echo")
            .body(Body::from(vec![b'x'; size]))
            .unwrap()
    };
    let ok = app.clone().oneshot(post(10)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.into_body().collect().await.unwrap().to_bytes(), "got 10");
    let big = app
        .clone()
        .oneshot(post(ops_viewer::BODY_LIMIT + 1))
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let long = format!("/?q={}", "a".repeat(9000));
    let (status, _, body) = get(&app, &long).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert!(body.contains("the limit is 8192"), "{body}");
    let default: std::net::SocketAddr = ops_viewer::DEFAULT_ADDR.parse().unwrap();
    assert!(
        default.ip().is_loopback(),
        "binds loopback unless told otherwise"
    );
    let (_, _, empty) = get(&app, "/").await;
    assert!(
        empty.contains("No traces match"),
        "an empty store says how to fill it"
    );
}

#[tokio::test]
async fn other_host_names_are_refused_against_dns_rebinding() {
    let (_dir, store) = store_with(&[chat_trace("run-1", 1, "a")]).await;
    let with_host = |app: Router, host: &'static str| async move {
        let request = Request::get("/api/traces/run-1")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    };
    let loopback = ops_viewer::router(store.clone(), None, ops_viewer::HostPolicy::Loopback);
    for host in [
        "127.0.0.1:7411",
        "localhost:7411",
        "LOCALHOST",
        "[::1]:7411",
    ] {
        assert_eq!(
            with_host(loopback.clone(), host).await.0,
            StatusCode::OK,
            "{host}"
        );
    }
    for host in ["evil.example:7411", "127.0.0.1.evil.example", "[::2]:7411"] {
        let (status, body) = with_host(loopback.clone(), host).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{host}");
        assert!(
            body.contains("is not served") && !body.contains("run-1"),
            "{body}"
        );
    }
    let any = ops_viewer::router(store, None, ops_viewer::HostPolicy::Any);
    assert_eq!(with_host(any, "viewer.lan:7411").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_deep_trace_and_a_parent_cycle_render_without_overflow() {
    use ops_core::model::{Observation, ObservationKind};
    let mut deep = chat_trace("deep", 4, "a");
    let start = deep.start_time;
    let mut parent = deep.observations[0].id;
    for i in 0..5000 {
        let mut o = Observation::at(ObservationKind::Span, format!("step-{i}"), start);
        o.parent_id = Some(parent);
        parent = o.id;
        deep.observations.push(o);
    }
    // Two observations that name each other as parent: bad data, each shown once.
    let mut a = Observation::at(ObservationKind::Span, "loop-a", start);
    let mut b = Observation::at(ObservationKind::Span, "loop-b", start);
    a.parent_id = Some(b.id);
    b.parent_id = Some(a.id);
    deep.observations.extend([a, b]);
    let (_dir, store) = store_with(&[deep]).await;
    let app = ops_viewer::router(store, None, ops_viewer::HostPolicy::Loopback);
    let (status, _, page) = get(&app, "/traces/deep").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("class=\"obs-row").count(), 6 + 5000 + 2);
    assert_eq!(page.matches("</span> loop-a</td>").count(), 1);
    assert_eq!(page.matches("</span> loop-b</td>").count(), 1);
    assert!(page.contains("</span> step-4999</td>"));
}
