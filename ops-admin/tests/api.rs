//! The admin API through its router (tower's `oneshot`), against a SQLite store in a temporary
//! directory and a fake Langfuse on loopback: the console flow, the tenant check on every
//! endpoint, and every status code.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{ACME, ADMIN, Env, OTHER, PK, SK};
use ops_admin::Limits;
use ops_testkit::fake_server::FakeResponse;
use serde_json::{Value, json};

fn obfuscated(secret: &str) -> String {
    ops_config::obfuscate::obfuscate(secret)
}

fn assert_no_secret(text: &str) {
    for secret in [SK, PK, ACME, OTHER, ADMIN] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_flow_works_end_to_end_with_secrets_write_only() {
    let env = Env::new(200, Limits::default()).await;
    let providers = env.call("GET", "/providers", ACME, Value::Null).await;
    assert_eq!(providers.status, StatusCode::OK);
    let langfuse = providers.json["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "langfuse")
        .expect("langfuse is listed");
    assert_eq!(langfuse["fields"][1]["name"], "secret_key");
    assert_eq!(langfuse["fields"][1]["secret"], true);

    // Create: checked against the fake server, answered with secrets obfuscated.
    let put = env
        .call(
            "PUT",
            "/apps/app-1/configs/langfuse",
            ACME,
            env.langfuse_body(),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{put:#?}");
    assert_eq!(put.json["saved"]["checked"], true);
    assert_eq!(put.json["saved"]["project_key"], "proj-123");
    let values = &put.json["app"]["configs"][0]["values"];
    assert_eq!(values["secret_key"], obfuscated(SK));
    assert_eq!(values["public_key"], obfuscated(PK));
    assert_eq!(put.json["app"]["tenant_id"], "acme");
    assert_no_secret(&put.text);

    // Update with the secrets sent back as shown: the stored ones are kept (the next check
    // authenticates with the real secret), the plain key changes.
    env.server.clear_requests();
    let update = json!({"values": {
        "public_key": obfuscated(PK),
        "secret_key": obfuscated(SK),
        "host": env.server.uri(),
    }});
    let put = env
        .call("PUT", "/apps/app-1/configs/langfuse", ACME, update)
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:#?}");
    assert_eq!(put.json["saved"]["created"], false);
    assert_eq!(put.json["saved"]["version"], 2);
    let check = env.server.requests();
    let auth = check
        .iter()
        .find(|r| r.path == "/api/public/projects")
        .and_then(|r| r.header("authorization"))
        .expect("the update was checked")
        .to_owned();
    let expected = {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{PK}:{SK}"))
        )
    };
    assert_eq!(auth, expected, "the stored secrets were kept");

    let get = env
        .call("GET", "/apps/app-1/configs/langfuse", ACME, Value::Null)
        .await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.json["configs"][0]["version"], 2);
    assert_eq!(get.json["enabled"], false);
    assert_no_secret(&get.text);

    let on = env
        .call(
            "POST",
            "/apps/app-1/enable?provider=langfuse",
            ACME,
            Value::Null,
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{on:#?}");
    assert_eq!(on.json["active_providers"], json!(["langfuse"]));

    let url = env
        .call(
            "GET",
            "/apps/app-1/configs/langfuse/project-url",
            ACME,
            Value::Null,
        )
        .await;
    assert_eq!(url.status, StatusCode::OK, "{url:#?}");
    assert_eq!(
        url.json["project_url"],
        format!("{}/project/proj-123", env.server.uri())
    );

    let checked = env
        .call("POST", "/apps/app-1/check", ACME, Value::Null)
        .await;
    assert_eq!(checked.status, StatusCode::OK);
    assert_eq!(checked.json["ok"], true, "{checked:#?}");
    assert_eq!(checked.json["results"][0]["project_key"], "proj-123");

    env.server.clear_requests();
    let sent = env
        .call("POST", "/apps/app-1/test-trace", ACME, Value::Null)
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{sent:#?}");
    assert_eq!(sent.json["ok"], true);
    assert_eq!(sent.json["deliveries"][0]["delivered"], true);
    assert_eq!(
        sent.json["observations"], 6,
        "the sample chatflow: message, run and 4 nodes"
    );
    let otlp = env
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/api/public/otel/v1/traces")
        .count();
    assert_eq!(otlp, 1, "the sample trace reached the provider once");

    let off = env
        .call("POST", "/apps/app-1/disable", ACME, Value::Null)
        .await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(off.json["enabled"], false);
    let not_sent = env
        .call("POST", "/apps/app-1/test-trace", ACME, Value::Null)
        .await;
    assert_eq!(not_sent.status, StatusCode::CONFLICT);
    assert_eq!(not_sent.code(), "not_active");
    assert!(
        not_sent.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("tracing is off for app app-1; turn it on with `ops enable"),
        "{not_sent:#?}"
    );

    let deleted = env
        .call("DELETE", "/apps/app-1/configs/langfuse", ACME, Value::Null)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = env
        .call("GET", "/apps/app-1/configs", ACME, Value::Null)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "no_config");
    let again = env
        .call("DELETE", "/apps/app-1/configs/langfuse", ACME, Value::Null)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.code(), "not_configured");
}

/// Every app endpoint, as (method, path, body).
fn app_endpoints(env: &Env, app: &str) -> Vec<(&'static str, String, Value)> {
    vec![
        ("GET", format!("/apps/{app}/configs"), Value::Null),
        ("GET", format!("/apps/{app}/configs/langfuse"), Value::Null),
        (
            "PUT",
            format!("/apps/{app}/configs/langfuse"),
            json!({"values": {"public_key": "pk-evil-0000000000", "secret_key": "sk-evil-0000000000",
                              "host": env.server.uri()}, "check": false}),
        ),
        (
            "DELETE",
            format!("/apps/{app}/configs/langfuse"),
            Value::Null,
        ),
        (
            "GET",
            format!("/apps/{app}/configs/langfuse/project-url"),
            Value::Null,
        ),
        ("POST", format!("/apps/{app}/enable"), Value::Null),
        (
            "POST",
            format!("/apps/{app}/enable?provider=langfuse"),
            Value::Null,
        ),
        ("POST", format!("/apps/{app}/disable"), Value::Null),
        (
            "POST",
            format!("/apps/{app}/disable?provider=langfuse"),
            Value::Null,
        ),
        ("POST", format!("/apps/{app}/check"), Value::Null),
        ("POST", format!("/apps/{app}/test-trace"), Value::Null),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_another_tenants_app() {
    let env = Env::new(200, Limits::default()).await;
    env.configured("app-a", ACME).await;
    let before = env
        .call("GET", "/apps/app-a/configs", ACME, Value::Null)
        .await;
    env.server.clear_requests();

    let endpoints = app_endpoints(&env, "app-a");
    assert_eq!(endpoints.len(), 11);
    for (method, path, body) in &endpoints {
        let answer = env.call(method, path, OTHER, body.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {answer:#?}"
        );
        assert_eq!(answer.code(), "wrong_tenant", "{method} {path}");
        assert_no_secret(&answer.text);
        // Naming the owner in ?tenant= does not help a tenant token.
        let sep = if path.contains('?') { '&' } else { '?' };
        let asked = env
            .call(
                method,
                &format!("{path}{sep}tenant=acme"),
                OTHER,
                body.clone(),
            )
            .await;
        assert_eq!(
            asked.status,
            StatusCode::FORBIDDEN,
            "{method} {path}?tenant=acme: {asked:#?}"
        );
        assert_eq!(asked.code(), "forbidden");
    }
    // Nothing changed and nothing was sent to the provider.
    let after = env
        .call("GET", "/apps/app-a/configs", ACME, Value::Null)
        .await;
    assert_eq!(before.json, after.json);
    assert_eq!(after.json["active_providers"], json!(["langfuse"]));
    assert!(
        env.server.requests().is_empty(),
        "{:#?}",
        env.server.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_token_acts_for_the_owner_or_the_named_tenant() {
    let env = Env::new(200, Limits::default()).await;
    env.configured("app-a", ACME).await;
    let get = env
        .call("GET", "/apps/app-a/configs", ADMIN, Value::Null)
        .await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.json["tenant_id"], "acme");
    // An admin naming another tenant than the owner is refused like that tenant would be.
    let wrong = env
        .call(
            "GET",
            "/apps/app-a/configs?tenant=other",
            ADMIN,
            Value::Null,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong.code(), "wrong_tenant");
    // A new app has no owner yet: the admin must name one.
    let unnamed = env
        .call(
            "PUT",
            "/apps/app-new/configs/langfuse",
            ADMIN,
            env.langfuse_body(),
        )
        .await;
    assert_eq!(unnamed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unnamed.code(), "tenant_required");
    let named = env
        .call(
            "PUT",
            "/apps/app-new/configs/langfuse?tenant=beta",
            ADMIN,
            env.langfuse_body(),
        )
        .await;
    assert_eq!(named.status, StatusCode::CREATED, "{named:#?}");
    assert_eq!(named.json["app"]["tenant_id"], "beta");
    // And it now belongs to beta: acme's token cannot touch it.
    let acme = env
        .call("GET", "/apps/app-new/configs", ACME, Value::Null)
        .await;
    assert_eq!(acme.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bad_or_malformed_tokens_are_401_on_every_endpoint() {
    let env = Env::new(200, Limits::default()).await;
    env.configured("app-a", ACME).await;
    let mut endpoints = app_endpoints(&env, "app-a");
    endpoints.push(("GET", "/providers".to_owned(), Value::Null));
    for (method, path, body) in &endpoints {
        for token in ["", "not-a-token-0123456789abcdef", &ACME[1..]] {
            let answer = env.call(method, path, token, body.clone()).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(answer.code(), "unauthorized");
            assert_eq!(
                answer.headers.get(header::WWW_AUTHENTICATE).unwrap(),
                "Bearer"
            );
        }
    }
    let basic = Request::get("/providers")
        .header(header::AUTHORIZATION, format!("Basic {ACME}"))
        .body(Body::empty())
        .unwrap();
    let answer = env.send(basic).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.text.contains("Bearer <token>"), "{}", answer.text);
    // The OpenAPI document needs no token.
    let doc = env.call("GET", "/openapi.json", "", Value::Null).await;
    assert_eq!(doc.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_has_its_status_code_and_the_clis_wording() {
    let limits = Limits::default().body_bytes(1024);
    let env = Env::new(401, limits).await;

    // 404: unknown provider, unknown config, unknown route.
    let unknown = env
        .call("GET", "/apps/app-1/configs/nope", ACME, Value::Null)
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "unknown_provider");
    let none = env
        .call("GET", "/apps/app-1/configs", ACME, Value::Null)
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(
        none.json["error"]["message"],
        "app app-1 has no tracing config; create one with `ops config set --app app-1 \
         --provider <name>` (see `ops providers`)"
    );
    let route = env.call("GET", "/nowhere", ACME, Value::Null).await;
    assert_eq!(route.status, StatusCode::NOT_FOUND);
    assert_eq!(route.code(), "no_route");
    let method = env.call("PATCH", "/providers", ACME, Value::Null).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(method.code(), "method_not_allowed");

    // 422: a failed credentials check (nothing saved, no secret echoed), an unknown key, a
    // masked secret with nothing stored, an invalid id, a body of the wrong shape.
    let failed = env
        .call(
            "PUT",
            "/apps/app-1/configs/langfuse",
            ACME,
            env.langfuse_body(),
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(failed.code(), "check_failed");
    assert!(
        failed.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("langfuse: the credentials check failed"),
        "{failed:#?}"
    );
    assert_no_secret(&failed.text);
    let still_none = env
        .call("GET", "/apps/app-1/configs", ACME, Value::Null)
        .await;
    assert_eq!(
        still_none.status,
        StatusCode::NOT_FOUND,
        "nothing was saved"
    );
    let unknown_key = env
        .call(
            "PUT",
            "/apps/app-1/configs/langfuse",
            ACME,
            json!({"values": {"colour": "blue"}, "check": false}),
        )
        .await;
    assert_eq!(unknown_key.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown_key.code(), "invalid_config");
    assert!(unknown_key.text.contains("colour"), "{unknown_key:#?}");
    let masked = env
        .call(
            "PUT",
            "/apps/app-1/configs/langfuse",
            ACME,
            json!({"values": {"public_key": PK, "secret_key": obfuscated(SK)}, "check": false}),
        )
        .await;
    assert_eq!(masked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(masked.code(), "masked_without_stored");
    let bad_id = env
        .call("GET", "/apps/..%2Fetc/configs", ACME, Value::Null)
        .await;
    assert_eq!(bad_id.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_id.code(), "invalid_id");
    let shape = env
        .call(
            "PUT",
            "/apps/app-1/configs/langfuse",
            ACME,
            json!({"values": {"host": 12}}),
        )
        .await;
    assert_eq!(shape.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(shape.code(), "invalid_body");

    // 400: malformed JSON, an unknown query parameter.
    let malformed = Request::put("/apps/app-1/configs/langfuse")
        .header(header::AUTHORIZATION, format!("Bearer {ACME}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"values\": "))
        .unwrap();
    let malformed = env.send(malformed).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.code(), "malformed_body");
    let query = env
        .call("GET", "/apps/app-1/configs?colour=blue", ACME, Value::Null)
        .await;
    assert_eq!(query.status, StatusCode::BAD_REQUEST);
    assert_eq!(query.code(), "invalid_query");

    // 415: a body that is not declared JSON.
    let plain = Request::put("/apps/app-1/configs/langfuse")
        .header(header::AUTHORIZATION, format!("Bearer {ACME}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("secret_key=x"))
        .unwrap();
    let plain = env.send(plain).await;
    assert_eq!(plain.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(plain.code(), "unsupported_media_type");

    // 413: a body over the limit.
    let big = json!({"values": {"host": "x".repeat(2048)}});
    let big = env
        .call("PUT", "/apps/app-1/configs/langfuse", ACME, big)
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(big.code(), "body_too_large");

    // 409: enabling an app with no enabled provider.
    let saved = env
        .call(
            "PUT",
            "/apps/app-1/configs/langfuse",
            ACME,
            json!({"values": {"public_key": PK, "secret_key": SK, "host": env.server.uri()},
                   "check": false}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{saved:#?}");
    assert_eq!(saved.json["saved"]["checked"], false);
    let no_provider = env
        .call("POST", "/apps/app-1/enable", ACME, Value::Null)
        .await;
    assert_eq!(no_provider.status, StatusCode::CONFLICT);
    assert_eq!(no_provider.code(), "no_enabled_provider");
    assert!(
        no_provider.text.contains("configured: langfuse"),
        "{no_provider:#?}"
    );

    // A check that fails is listed, with the error's code, in a 200 answer.
    let checked = env
        .call("POST", "/apps/app-1/check", ACME, Value::Null)
        .await;
    assert_eq!(checked.status, StatusCode::OK);
    assert_eq!(checked.json["ok"], false);
    assert_eq!(checked.json["results"][0]["error"]["code"], "check_failed");
    assert_no_secret(&checked.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_time_limit_is_503_timeout() {
    let limits = Limits::default().request_timeout(Duration::from_millis(300));
    let env = Env::new(200, limits).await;
    // A Langfuse that answers the credentials check after 3 s.
    let slow = ops_testkit::fake_server::FakeServer::start().await;
    slow.set_default(FakeResponse::ok().delay(Duration::from_secs(3)));
    let body = json!({"values": {"public_key": PK, "secret_key": SK, "host": slow.uri()}});
    let started = std::time::Instant::now();
    let answer = env
        .call("PUT", "/apps/app-1/configs/langfuse", ACME, body)
        .await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{answer:#?}"
    );
    assert_eq!(answer.code(), "timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_only_those() {
    let env = Env::new(200, Limits::default()).await;
    let doc = ops_admin::openapi_document();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let concrete = path
                .replace("{app_id}", "app-z")
                .replace("{provider}", "langfuse");
            let answer = env
                .call(&method.to_uppercase(), &concrete, ACME, Value::Null)
                .await;
            assert_ne!(answer.code(), "no_route", "{method} {path} is documented");
            assert_ne!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let documented = item[method]["responses"]
                .as_object()
                .unwrap()
                .contains_key(answer.status.as_str());
            assert!(
                documented,
                "{method} {path}: {} not documented",
                answer.status
            );
        }
    }
    assert_eq!(operations, 11);
    // Served as is.
    let served = env.call("GET", "/openapi.json", "", Value::Null).await;
    assert_eq!(served.json, doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_holds_no_token() {
    let env = Env::new(200, Limits::default()).await;
    let debug = format!("{:?} {:?}", env.state, common::tokens());
    assert_no_secret(&debug);
    assert!(debug.contains("count: 3"), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_writing_server_files_are_not_offered_by_default() {
    let mut env = Env::new(200, Limits::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("written-by-a-tenant.jsonl");
    let body = json!({"values": {"file": target.display().to_string()}, "check": false});
    let listed = env.call("GET", "/providers", ACME, Value::Null).await;
    let names: Vec<&str> = listed.json["providers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"langfuse"), "{names:?}");
    assert!(
        !names.contains(&"file") && !names.contains(&"console"),
        "{names:?}"
    );
    for provider in ["file", "console"] {
        let put = env
            .call(
                "PUT",
                &format!("/apps/app-1/configs/{provider}"),
                ACME,
                body.clone(),
            )
            .await;
        assert_eq!(put.status, StatusCode::FORBIDDEN, "{put:#?}");
        assert_eq!(put.code(), "local_provider");
    }
    assert!(!target.exists(), "a refused config touches no file");
    // Allowed explicitly, it is saved, and building it already creates the file the caller
    // named: the reason it is off by default.
    env.state = env.state.clone().with_local_providers(true);
    let put = env
        .call("PUT", "/apps/app-1/configs/file", ACME, body)
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{put:#?}");
    assert!(
        target.exists(),
        "the file provider was built at the path given"
    );
}
