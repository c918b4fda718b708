//! Our requests for the captured program (`agent_run` > `plan_step` > `llm_call`, gpt-4o-mini,
//! 12/1 tokens, user `user-1`, session `sess-1`, tag `e2e`) against the official SDKs',
//! recorded in `../shared/captures/{langsmith,opik,weave}`: same paths, same auth and content
//! headers, same multipart part names and framing, same field names, same id formats.

#![cfg(all(feature = "langsmith", feature = "opik", feature = "weave"))]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::native::*;
use common::{arc, captured_program};
use ops_core::provider::{ProviderConfig, find};
use ops_core::{ExportOutcome, Provider};
use ops_testkit::fake_server::{FakeResponse, FakeServer, RecordedRequest};
use serde_json::{Value, json};

fn build(config: ProviderConfig) -> Box<dyn Provider> {
    find(config.provider()).unwrap().build(config).unwrap()
}

fn golden_header<'a>(golden: &'a Value, name: &str) -> Option<&'a str> {
    golden["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn method_path(r: &RecordedRequest) -> (String, String) {
    (r.method.clone(), r.path.clone())
}

fn golden_method_path(g: &Value) -> (String, String) {
    (
        g["method"].as_str().unwrap().to_owned(),
        g["path"].as_str().unwrap().to_owned(),
    )
}

fn set(keys: Vec<String>) -> BTreeSet<String> {
    keys.into_iter().collect()
}

fn minus(a: &BTreeSet<String>, b: &[&str]) -> BTreeSet<String> {
    a.iter()
        .filter(|k| !b.contains(&k.as_str()))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// LangSmith

/// Parts of a multipart body grouped by run, keyed by the run's name: (op, main part JSON,
/// the field suffixes in order, the field parts).
type Run = (String, Value, Vec<String>, BTreeMap<String, Value>);
type Runs = BTreeMap<String, Run>;

fn runs_of(parts: &[Part]) -> Runs {
    let mut by_id: BTreeMap<String, Run> = BTreeMap::new();
    for p in parts {
        assert_eq!(
            p.header("content-type"),
            Some("application/json"),
            "{}",
            p.name
        );
        let mut bits = p.name.splitn(3, '.');
        let op = bits.next().unwrap().to_owned();
        assert!(op == "post" || op == "patch", "{}", p.name);
        let id = bits.next().expect("op.<id>").to_owned();
        assert!(is_v7(&id), "run id {id}");
        let entry = by_id
            .entry(id)
            .or_insert_with(|| (op.clone(), Value::Null, Vec::new(), BTreeMap::new()));
        match bits.next() {
            None => entry.1 = p.json(),
            Some(field) => {
                entry.2.push(field.to_owned());
                entry.3.insert(field.to_owned(), p.json());
            }
        }
    }
    by_id
        .into_values()
        .map(|r| (r.1["name"].as_str().unwrap().to_owned(), r))
        .collect()
}

fn dotted_shape(dotted: &str) -> Vec<(usize, bool)> {
    dotted
        .split('.')
        .map(|seg| {
            let (t, id) = seg.split_at(22);
            let ok = t.as_bytes()[8] == b'T'
                && t.ends_with('Z')
                && t[..8].bytes().all(|b| b.is_ascii_digit())
                && t[9..21].bytes().all(|b| b.is_ascii_digit());
            (seg.len(), ok && is_v7(id))
        })
        .collect()
}

#[tokio::test]
async fn langsmith_matches_the_sdk_capture() {
    let golden_info = capture("langsmith", "001_GET_info.json");
    let golden = capture("langsmith", "002_POST_runs_multipart.json");
    let server = FakeServer::start().await;
    let info: Value =
        serde_json::from_str(golden_info["response"]["body"].as_str().unwrap()).unwrap();
    server.route("GET", "/info", FakeResponse::ok().json(&info));
    let mut provider = build(
        ProviderConfig::new("langsmith")
            .with("api_key", "lsv2_pt_fake_key")
            .with("project", "rust-e2e")
            .with("endpoint", server.uri()),
    );
    assert_eq!(
        provider.export(&arc(captured_program())).await,
        ExportOutcome::Delivered
    );
    let requests = server.requests();
    assert_eq!(
        requests.iter().map(method_path).collect::<Vec<_>>(),
        vec![
            golden_method_path(&golden_info),
            golden_method_path(&golden)
        ]
    );
    for (ours, theirs) in requests.iter().zip([&golden_info, &golden]) {
        assert_eq!(ours.header("x-api-key"), golden_header(theirs, "x-api-key"));
        assert_eq!(ours.header("accept"), golden_header(theirs, "accept"));
    }
    let post = &requests[1];
    let ours_ct = post.header("content-type").unwrap();
    let theirs_ct = golden_header(&golden, "content-type").unwrap();
    let (ours_b, theirs_b) = (boundary(ours_ct), boundary(theirs_ct));
    assert_eq!(ours_b.len(), theirs_b.len(), "a 32-hex-digit boundary");
    assert!(ours_b.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        post.header("content-encoding").is_none(),
        "the SDK sends it uncompressed"
    );

    let ours = runs_of(&parse_multipart(&post.decoded_body(), &ours_b));
    let theirs = runs_of(&parse_multipart(
        golden["body_text"].as_str().unwrap().as_bytes(),
        &theirs_b,
    ));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the same runs"
    );
    for (name, (op, main, fields, parts)) in &ours {
        let (t_op, t_main, t_fields, t_parts) = &theirs[name];
        assert_eq!(op, t_op, "{name}");
        // The same parts in the same order, `.serialized` (the llm run's name) included.
        assert_eq!(fields, t_fields, "{name}: part names in order");
        if let Some(serialized) = t_parts.get("serialized") {
            assert_eq!(
                parts.get("serialized"),
                Some(serialized),
                "{name}: serialized"
            );
        }
        assert_eq!(object_keys(main), object_keys(t_main), "{name}: run fields");
        for key in ["run_type", "session_name", "tags", "name"] {
            assert_eq!(main[key], t_main[key], "{name}: {key}");
        }
        for key in ["id", "trace_id"] {
            assert!(is_v7(main[key].as_str().unwrap()), "{name}: {key}");
        }
        assert_eq!(
            dotted_shape(main["dotted_order"].as_str().unwrap()),
            dotted_shape(t_main["dotted_order"].as_str().unwrap()),
            "{name}: dotted_order format and depth"
        );
        for field in ["inputs", "outputs", "extra"] {
            assert!(parts[field].is_object() && t_parts[field].is_object());
        }
        assert!(parts["events"].is_array());
        assert_eq!(object_keys(&parts["extra"]), object_keys(&t_parts["extra"]));
        let meta = &parts["extra"]["metadata"];
        let t_meta = &t_parts["extra"]["metadata"];
        for key in ["ls_provider", "ls_model_name", "usage_metadata"] {
            assert_eq!(
                meta.get(key),
                t_meta.get(key),
                "{name}: extra.metadata.{key}"
            );
        }
        assert_eq!(
            parts["outputs"].get("usage_metadata"),
            t_parts["outputs"].get("usage_metadata"),
            "{name}: outputs.usage_metadata"
        );
    }
    // The tree: agent_run > plan_step > llm_call, one trace.
    let id = |n: &str| ours[n].1["id"].clone();
    assert_eq!(ours["plan_step"].1["parent_run_id"], id("agent_run"));
    assert_eq!(ours["llm_call"].1["parent_run_id"], id("plan_step"));
    for n in ["agent_run", "plan_step", "llm_call"] {
        assert_eq!(ours[n].1["trace_id"], id("agent_run"));
    }
}

// ---------------------------------------------------------------------------------------------
// Opik

fn schema_properties(file: &str, def: &str) -> BTreeSet<String> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/specs/opik")
        .join(file);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    set(object_keys(&schema["$defs"][def]["properties"]))
}

#[tokio::test]
async fn opik_matches_the_sdk_capture() {
    let golden_spans = capture("opik", "001_POST_api_v1_private_spans_batch.json");
    let golden_traces = capture("opik", "002_POST_api_v1_private_traces_batch.json");
    let server = FakeServer::start().await;
    server.set_default(FakeResponse::status(204));
    let mut provider = build(
        ProviderConfig::new("opik")
            .with("api_key", "fake-opik-key")
            .with("workspace", "fake-ws")
            .with("project", "rust-e2e")
            .with("url", server.url("/api/")),
    );
    assert_eq!(
        provider.export(&arc(captured_program())).await,
        ExportOutcome::Delivered
    );
    let requests = server.requests();
    assert_eq!(
        requests.iter().map(method_path).collect::<Vec<_>>(),
        vec![
            golden_method_path(&golden_spans),
            golden_method_path(&golden_traces)
        ]
    );
    for (ours, theirs) in requests.iter().zip([&golden_spans, &golden_traces]) {
        for h in [
            "authorization",
            "comet-workspace",
            "content-type",
            "content-encoding",
        ] {
            assert_eq!(ours.header(h), golden_header(theirs, h), "{h}");
        }
    }

    let span_props = schema_properties("SpanBatch_Write.schema.json", "Span_Write");
    let ours = requests[0].json().unwrap();
    let by_name = |body: &Value, key: &str| -> BTreeMap<String, Value> {
        body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_owned(), s.clone()))
            .collect()
    };
    let (ours, theirs) = (
        by_name(&ours, "spans"),
        by_name(&golden_spans["body_json"], "spans"),
    );
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (name, s) in &ours {
        let t = &theirs[name];
        let (ok, tk) = (set(object_keys(s)), set(object_keys(t)));
        // `source` is a newer server field the request schema does not list.
        assert!(
            minus(&tk, &["source"]).is_subset(&ok),
            "{name}: missing {:?}",
            minus(&tk, &["source"]).difference(&ok).collect::<Vec<_>>()
        );
        assert!(
            ok.difference(&tk).all(|k| span_props.contains(k)),
            "{name}: fields outside Span_Write: {:?}",
            ok.difference(&tk).collect::<Vec<_>>()
        );
        for key in ["type", "project_name", "model", "provider"] {
            assert_eq!(s.get(key), t.get(key), "{name}: {key}");
        }
        for key in ["id", "trace_id", "parent_span_id"] {
            assert_eq!(s.get(key).is_some(), t.get(key).is_some(), "{name}: {key}");
            if let Some(id) = s.get(key) {
                assert!(is_v7(id.as_str().unwrap()), "{name}: {key}");
            }
        }
        if let Some(usage) = t.get("usage") {
            for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
                assert_eq!(s["usage"][key], usage[key], "{name}: usage.{key}");
            }
        }
    }
    assert_eq!(ours["plan_step"]["parent_span_id"], ours["agent_run"]["id"]);
    assert_eq!(ours["llm_call"]["parent_span_id"], ours["plan_step"]["id"]);

    let trace_props = schema_properties("TraceBatch_Write.schema.json", "Trace_Write");
    let ours_t = requests[1].json().unwrap();
    let (ot, tt) = (
        &ours_t["traces"][0],
        &golden_traces["body_json"]["traces"][0],
    );
    let (ok, tk) = (set(object_keys(ot)), set(object_keys(tt)));
    assert!(minus(&tk, &["source"]).is_subset(&ok));
    assert!(ok.difference(&tk).all(|k| trace_props.contains(k)));
    assert_eq!(ot["name"], tt["name"]);
    assert_eq!(ot["tags"], tt["tags"]);
    assert!(is_v7(ot["id"].as_str().unwrap()));
    assert_eq!(ot["id"], ours["agent_run"]["trace_id"]);
    assert_eq!(
        ot["thread_id"],
        json!("sess-1"),
        "the session is Opik's thread"
    );
}

// ---------------------------------------------------------------------------------------------
// Weave

const WANDB_KEY: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn weave_provider(server: &FakeServer) -> Box<dyn Provider> {
    build(
        ProviderConfig::new("weave")
            .with("api_key", WANDB_KEY)
            .with("entity", "my-entity")
            .with("project", "rust-e2e")
            .with("endpoint", server.uri())
            .with("host", server.uri()),
    )
}

fn check_weave_headers(ours: &RecordedRequest, theirs: &Value) {
    assert_eq!(
        ours.header("authorization"),
        golden_header(theirs, "authorization"),
        "Basic api:<key>"
    );
    assert_eq!(
        ours.header("content-type"),
        golden_header(theirs, "content-type")
    );
    assert!(is_v7(ours.header("x-weave-retry-id").unwrap()));
    assert!(is_v7(golden_header(theirs, "x-weave-retry-id").unwrap()));
    let theirs_caps: Vec<&str> = golden_header(theirs, "x-weave-client-capabilities")
        .unwrap()
        .split(',')
        .collect();
    for cap in ours
        .header("x-weave-client-capabilities")
        .unwrap()
        .split(',')
    {
        assert!(theirs_caps.contains(&cap), "{cap}");
    }
}

/// The calls of an upsert_batch or calls/complete body by op name (op names are
/// `weave:///<entity>/<project>/op/<name>:<digest>` refs, ours as the SDK's).
fn by_op(items: Vec<Value>) -> BTreeMap<String, Value> {
    items
        .into_iter()
        .map(|c| {
            let op = c["op_name"].as_str().unwrap();
            let name = op
                .strip_prefix("weave:///my-entity/rust-e2e/op/")
                .map_or(op, |r| r.split(':').next().unwrap());
            (name.to_owned(), c)
        })
        .collect()
}

/// Answers `file/create` and `obj/create` with the digests the real server gave the SDK.
fn route_publishing(server: &FakeServer) {
    for (path, file) in [
        ("/file/create", "005_POST_file_create.json"),
        ("/obj/create", "004_POST_obj_create.json"),
    ] {
        let golden = capture("weave", file);
        let body: Value =
            serde_json::from_str(golden["response"]["body"].as_str().unwrap()).unwrap();
        server.route("POST", path, FakeResponse::ok().json(&body));
    }
}

/// Our op publishing against the SDK's: one source file, then one `obj/create` per op with
/// the SDK's object shape (the SDK's other `obj` keys are all `null`).
fn check_publishing(requests: &[RecordedRequest]) {
    let golden_obj = capture("weave", "004_POST_obj_create.json");
    let golden_file = capture("weave", "005_POST_file_create.json");
    let objs: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.path == "/obj/create")
        .collect();
    let files: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.path == "/file/create")
        .collect();
    assert_eq!((objs.len(), files.len()), (3, 1));
    let t = &golden_obj["body_json"]["obj"];
    for o in &objs {
        assert_eq!(
            o.header("content-type"),
            golden_header(&golden_obj, "content-type")
        );
        assert_eq!(
            o.header("authorization"),
            golden_header(&golden_obj, "authorization")
        );
        let obj = &o.json().unwrap()["obj"];
        assert_eq!(
            set(object_keys(obj)),
            minus(
                &set(object_keys(t)),
                &["builtin_object_class", "expected_digest", "wb_user_id"]
            )
        );
        for k in ["builtin_object_class", "expected_digest", "wb_user_id"] {
            assert!(t[k].is_null(), "{k}");
        }
        assert_eq!(obj["project_id"], t["project_id"]);
        assert_eq!(obj["val"]["_type"], t["val"]["_type"]);
        assert_eq!(obj["val"]["weave_type"], t["val"]["weave_type"]);
        assert_eq!(
            object_keys(&obj["val"]["files"]),
            object_keys(&t["val"]["files"])
        );
    }
    let mut ids: Vec<&str> = Vec::new();
    let bodies: Vec<Value> = objs.iter().map(|o| o.json().unwrap()).collect();
    for b in &bodies {
        ids.push(b["obj"]["object_id"].as_str().unwrap());
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["agent_run", "llm_call", "plan_step"],
        "the SDK's object ids"
    );
    // The file: a multipart form with the SDK's part names and file name.
    let f = files[0];
    assert_eq!(
        f.header("authorization"),
        golden_header(&golden_file, "authorization")
    );
    assert!(
        f.header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary="),
        "{:?}",
        golden_header(&golden_file, "content-type")
    );
    let ours = String::from_utf8(f.body.clone()).unwrap();
    let theirs = golden_file["body_text"].as_str().unwrap();
    for part in [
        "Content-Disposition: form-data; name=\"project_id\"",
        "my-entity/rust-e2e",
        "Content-Disposition: form-data; name=\"file\"; filename=\"obj.py\"",
        "Content-Type: text/x-python",
    ] {
        assert!(theirs.contains(part) && ours.contains(part), "{part}");
    }
}

fn check_calls(ours: &BTreeMap<String, Value>, theirs: &BTreeMap<String, Value>) {
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    let golden_digest = "vffwK6QRSoFf4XY1m0EJqsGyGDuwgcCanMwjiuGStEI";
    for (name, c) in ours {
        let t = &theirs[name];
        assert_eq!(
            c["op_name"],
            json!(format!(
                "weave:///my-entity/rust-e2e/op/{name}:{golden_digest}"
            )),
            "the op's ref, as the SDK names ops"
        );
        assert!(
            t["op_name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("weave:///my-entity/rust-e2e/op/{name}:"))
        );
        assert_eq!(c["project_id"], t["project_id"]);
        for key in ["id", "trace_id"] {
            assert!(is_v7(c[key].as_str().unwrap()), "{name}: {key}");
        }
        assert_eq!(c["parent_id"].is_null(), t["parent_id"].is_null(), "{name}");
    }
    let id = |n: &str| ours[n]["id"].clone();
    assert_eq!(ours["plan_step"]["parent_id"], id("agent_run"));
    assert_eq!(ours["llm_call"]["parent_id"], id("plan_step"));
}

fn check_summaries(ours: &BTreeMap<String, Value>, theirs: &BTreeMap<String, Value>) {
    for (name, s) in ours {
        let t = &theirs[name];
        assert_eq!(object_keys(s), object_keys(t), "{name}: summary");
        assert_eq!(
            s["usage"], t["usage"],
            "{name}: usage per model, rolled up as the SDK does"
        );
        assert_eq!(
            object_keys(&s["status_counts"]),
            object_keys(&t["status_counts"])
        );
        assert_eq!(s["status_counts"], t["status_counts"], "{name}");
    }
}

#[tokio::test]
async fn weave_upsert_batch_matches_the_sdk_capture() {
    let golden = capture("weave", "010_POST_call_upsert_batch.json");
    let server = FakeServer::start().await;
    server.set_default(FakeResponse::ok().json(&json!({"res": []})));
    route_publishing(&server);
    let mut provider = weave_provider(&server);
    assert_eq!(
        provider.export(&arc(captured_program())).await,
        ExportOutcome::Delivered
    );
    let requests = server.requests();
    check_publishing(&requests);
    let requests: Vec<RecordedRequest> = requests
        .into_iter()
        .filter(|r| !r.path.ends_with("/create"))
        .collect();
    assert_eq!(
        requests.iter().map(method_path).collect::<Vec<_>>(),
        vec![golden_method_path(&golden)]
    );
    check_weave_headers(&requests[0], &golden);
    let body = requests[0].json().unwrap();
    let batch = |b: &Value| -> Vec<Value> { b["batch"].as_array().unwrap().clone() };
    let modes = |b: &Value| -> Vec<Value> { batch(b).iter().map(|i| i["mode"].clone()).collect() };
    assert_eq!(
        modes(&body),
        modes(&golden["body_json"]),
        "starts, then ends"
    );
    let part = |b: &Value, mode: &str| -> Vec<Value> {
        batch(b)
            .into_iter()
            .filter(|i| i["mode"] == json!(mode))
            .map(|i| i["req"][mode].clone())
            .collect()
    };
    let (starts, t_starts) = (part(&body, "start"), part(&golden["body_json"], "start"));
    for (s, t) in starts.iter().zip(&t_starts) {
        // `wb_user_id` is filled in by the server; clients must not send it.
        assert_eq!(
            set(object_keys(s)),
            minus(&set(object_keys(t)), &["wb_user_id"])
        );
    }
    let (ends, t_ends) = (part(&body, "end"), part(&golden["body_json"], "end"));
    for (e, t) in ends.iter().zip(&t_ends) {
        assert_eq!(object_keys(e), object_keys(t), "end fields");
    }
    let (ours, theirs) = (by_op(starts), by_op(t_starts));
    check_calls(&ours, &theirs);
    // Ends name their call by id: match them to the starts' names.
    let end_summaries = |starts: &BTreeMap<String, Value>, ends: &[Value]| {
        starts
            .iter()
            .map(|(n, s)| {
                let e = ends.iter().find(|e| e["id"] == s["id"]).unwrap();
                assert_eq!(e["trace_id"], s["trace_id"]);
                (n.clone(), e["summary"].clone())
            })
            .collect::<BTreeMap<_, _>>()
    };
    check_summaries(
        &end_summaries(&ours, &ends),
        &end_summaries(&theirs, &t_ends),
    );
}

#[tokio::test]
async fn weave_calls_complete_matches_the_sdk_capture() {
    let golden = capture(
        "weave/default_calls_complete_variant",
        "010_POST_v2_my-entity_rust-e2e_calls_complete.json",
    );
    let server = FakeServer::start().await;
    server.route(
        "POST",
        "/call/upsert_batch",
        FakeResponse::status(400).json(&json!({
            "reason": "This project requires calls_complete mode; upgrade your SDK",
            "error_code": "CALLS_COMPLETE_MODE_REQUIRED"
        })),
    );
    server.set_default(FakeResponse::ok().json(&json!({})));
    route_publishing(&server);
    let mut provider = weave_provider(&server);
    assert_eq!(
        provider.export(&arc(captured_program())).await,
        ExportOutcome::Delivered
    );
    let requests = server.requests();
    check_publishing(&requests);
    let requests: Vec<RecordedRequest> = requests
        .into_iter()
        .filter(|r| !r.path.ends_with("/create"))
        .collect();
    assert_eq!(
        requests.iter().map(method_path).collect::<Vec<_>>(),
        vec![
            ("POST".to_owned(), "/call/upsert_batch".to_owned()),
            golden_method_path(&golden)
        ],
        "the server said calls_complete: the same calls go to the v2 endpoint"
    );
    check_weave_headers(&requests[1], &golden);
    let items = requests[1].json().unwrap()["batch"]
        .as_array()
        .unwrap()
        .clone();
    let t_items = golden["body_json"]["batch"].as_array().unwrap().clone();
    for i in &items {
        assert_eq!(
            set(object_keys(i)),
            minus(&set(object_keys(&t_items[0])), &["wb_user_id"])
        );
    }
    let (ours, theirs) = (by_op(items), by_op(t_items));
    check_calls(&ours, &theirs);
    let summaries = |m: &BTreeMap<String, Value>| {
        m.iter()
            .map(|(n, c)| (n.clone(), c["summary"].clone()))
            .collect::<BTreeMap<_, _>>()
    };
    check_summaries(&summaries(&ours), &summaries(&theirs));

    // The mode sticks: the next export goes straight to calls/complete.
    server.clear_requests();
    assert_eq!(
        provider.export(&arc(captured_program())).await,
        ExportOutcome::Delivered
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .map(method_path)
            .collect::<Vec<_>>(),
        vec![golden_method_path(&golden)]
    );
}
