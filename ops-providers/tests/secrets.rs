//! No secret leaves in clear: every registered provider is built with sentinel secrets and
//! driven into a connection error (a closed loopback port) and into 4xx answers from a server
//! that quotes our request back (headers, path and body) in its error message. Debug output,
//! error messages, export outcomes, `stats().last_error` and every log line (captured with a
//! `tracing` subscriber) are scanned for each sentinel and for the base64 of every HTTP Basic
//! credential built from them.

#![cfg(feature = "full")]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use ops_core::provider::{ProviderConfig, ProviderFactory, registered};
use ops_core::{
    ObservationKind, Provider, QueueConfig, Trace, TraceId, TraceQueueManager, TraceTask,
};
use ops_testkit::fake_server::{FakeResponse, FakeServer};

fn sentinel(field: &str) -> String {
    format!("SENTINEL-{field}-7f3a")
}

/// Every log event of the process, formatted with its fields.
fn logs() -> &'static Mutex<Vec<String>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::set_global_default(Collect(Arc::clone(&logs)))
            .expect("no other subscriber in this test binary");
        logs
    })
}

struct Collect(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl tracing::Subscriber for Collect {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut f = Fields(format!("span {}", span.metadata().name()));
        span.record(&mut f);
        self.0.lock().unwrap().push(f.0);
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut f = Fields("span record".into());
        values.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(format!(
            "{} {}",
            event.metadata().level(),
            event.metadata().target()
        ));
        event.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// A config of `factory` with a sentinel in every secret field, sending to `base`.
fn config(factory: &ProviderFactory, base: &str, variant: usize) -> ProviderConfig {
    let mut c = ProviderConfig::new(factory.name);
    for field in factory.fields {
        let value = match (factory.name, field.name) {
            (_, "headers") => format!(
                "authorization=Bearer {},x-honeycomb-team={}",
                sentinel("headers"),
                sentinel("honeycomb")
            ),
            // Databricks: a token (variant 0) or a service principal (variant 1).
            ("databricks", "personal_access_token") if variant == 1 => continue,
            ("databricks", "client_id" | "client_secret") if variant == 0 => continue,
            ("databricks", "client_id") => "principal-1".into(),
            (_, _) if field.secret => sentinel(field.name),
            ("opik", "url") => format!("{base}/api/"),
            (_, "endpoint" | "host" | "tracking_uri") => base.to_owned(),
            ("datadog", "site") => base.to_owned(),
            (_, "experiment_id") => "1".into(),
            (_, "project") => "proj".into(),
            ("weave", "entity") => "ent".into(),
            ("mlflow", "username") => "user".into(),
            _ => continue,
        };
        c.set(field.name, value);
    }
    c.set("timeout", "2");
    c
}

/// Every sentinel, and the base64 of every Basic credential built from them.
fn needles() -> Vec<String> {
    let mut out: Vec<String> = [
        "public_key",
        "secret_key",
        "api_key",
        "space_id",
        "license_key",
        "token",
        "password",
        "personal_access_token",
        "client_secret",
        "headers",
        "honeycomb",
    ]
    .iter()
    .map(|f| sentinel(f))
    .collect();
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    out.push(b64(format!(
        "{}:{}",
        sentinel("public_key"),
        sentinel("secret_key")
    )));
    out.push(b64(format!("user:{}", sentinel("password"))));
    out.push(b64(format!("api:{}", sentinel("api_key"))));
    out.push(b64(format!("principal-1:{}", sentinel("client_secret"))));
    // Any part of a sentinel long enough to be recognised.
    out.push("-7f3a".into());
    out
}

fn trace() -> Arc<Trace> {
    let mut t = Trace::new(
        TraceId::generate(),
        ObservationKind::Message,
        "leak-probe",
        chrono::Utc::now(),
    );
    t.tags = vec!["probe".into()];
    Arc::new(t)
}

/// What one provider showed in one situation.
async fn drive(name: &str, mut p: Box<dyn Provider>, shown: &mut Vec<(String, String)>) {
    let mut note = |what: &str, text: String| shown.push((format!("{name} {what}"), text));
    note("debug", format!("{p:?}"));
    let outcome = tokio::time::timeout(Duration::from_secs(30), p.export(&[trace()]))
        .await
        .expect("export returns");
    note("export outcome", format!("{outcome:?}"));
    let checked = tokio::time::timeout(Duration::from_secs(30), p.api_check())
        .await
        .expect("check returns");
    note("api_check", format!("{checked:?}"));
    if let Err(e) = checked {
        note("api_check display", e.to_string());
    }
    let key = tokio::time::timeout(Duration::from_secs(30), p.project_key()).await;
    note("project_key", format!("{key:?}"));
    let url = tokio::time::timeout(Duration::from_secs(30), p.project_url()).await;
    note("project_url", format!("{url:?}"));
    note("debug after", format!("{p:?}"));
    let _ = tokio::time::timeout(Duration::from_secs(30), p.shutdown()).await;
}

/// Sends one trace through a queue to `p` and returns what its stats say.
fn through_queue(p: Box<dyn Provider>) -> String {
    let mut c = QueueConfig::default();
    c.max_retries = 0;
    c.initial_backoff = Duration::ZERO;
    let queue = TraceQueueManager::builder()
        .config(c)
        .boxed_provider(p)
        .build()
        .unwrap();
    queue
        .add_trace_task(TraceTask::from_trace((*trace()).clone()))
        .unwrap();
    queue.flush(Duration::from_secs(30));
    let stats = queue.stats();
    queue.shutdown(Duration::from_secs(10));
    format!("{stats:?}")
}

fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn no_secret_leaves_any_provider_in_clear() {
    let logs = logs();
    ops_providers::link();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let with_secrets: Vec<&ProviderFactory> = registered()
        .into_iter()
        .filter(|f| f.fields.iter().any(|x| x.secret))
        .collect();
    let without: Vec<&str> = registered()
        .into_iter()
        .filter(|f| !f.fields.iter().any(|x| x.secret))
        .map(|f| f.name)
        .collect();
    assert_eq!(with_secrets.len(), 12, "every network provider is probed");
    assert!(
        without
            .iter()
            .all(|n| ["console", "file", "mock"].contains(n)),
        "only the local providers have no secret: {without:?}"
    );

    let closed = closed_port();
    let servers: Vec<FakeServer> = [401, 400, 403]
        .into_iter()
        .map(|status| {
            let s = rt.block_on(FakeServer::start());
            s.set_default(FakeResponse::echo(status));
            s
        })
        .collect();
    let mut shown: Vec<(String, String)> = Vec::new();
    let mut echoed = 0;
    for factory in &with_secrets {
        let variants = if factory.name == "databricks" { 2 } else { 1 };
        for variant in 0..variants {
            let targets =
                std::iter::once(closed.clone()).chain(servers.iter().map(FakeServer::uri));
            for target in targets {
                let name = format!("{}#{variant} @ {target}", factory.name);
                let config = config(factory, &target, variant);
                shown.push((format!("{name} config debug"), format!("{config:?}")));
                let p = factory
                    .build(config.clone())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                rt.block_on(drive(&name, p, &mut shown));
                let p = factory.build(config).unwrap();
                shown.push((format!("{name} queue stats"), through_queue(p)));
            }
        }
    }
    for s in &servers {
        echoed += s.requests().len();
    }
    assert!(echoed > 30, "the servers were asked ({echoed} requests)");
    // The servers did see the credentials (so the echo quoted them back).
    let seen: String = servers
        .iter()
        .flat_map(FakeServer::requests)
        .flat_map(|r| r.headers.into_iter().map(|(_, v)| v))
        .collect();
    assert!(
        seen.contains(&sentinel("api_key")),
        "the echo had something to leak"
    );

    let logs = logs.lock().unwrap().clone();
    assert!(
        logs.iter().any(|l| l.contains("answered HTTP")),
        "failed exports were logged and scanned: {} lines",
        logs.len()
    );
    let needles = needles();
    let mut leaks = Vec::new();
    let logged = logs.iter().map(|l| ("log".to_owned(), l.clone()));
    for (what, text) in shown.iter().cloned().chain(logged) {
        for needle in &needles {
            if text.contains(needle.as_str()) {
                let excerpt: String = text.chars().take(600).collect();
                leaks.push(format!("{what}: {needle} in {excerpt}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n\n")
    );
    // The errors still say what happened.
    let all: String = shown.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        all.contains("could not connect"),
        "connection errors are described"
    );
    assert!(
        all.contains("401 Unauthorized") && all.contains("<redacted>"),
        "4xx answers are quoted, redacted"
    );
}

#[test]
fn an_oauth_token_fetched_at_runtime_never_shows_either() {
    let logs = logs();
    ops_providers::link();
    let token = "SENTINEL-oauth-token-fetched-7f3a";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shown = rt.block_on(async {
        let server = FakeServer::start().await;
        server.route(
            "POST",
            "/oidc/v1/token",
            FakeResponse::ok()
                .json(&serde_json::json!({"access_token": token, "expires_in": 3600})),
        );
        server.route("POST", "/api/2.0/otel/v1/traces", FakeResponse::echo(400));
        let config = ProviderConfig::new("databricks")
            .with("host", server.url(""))
            .with("experiment_id", "1")
            .with("client_id", "principal-1")
            .with("client_secret", sentinel("client_secret"));
        let mut p = ops_core::provider::find("databricks")
            .unwrap()
            .build(config)
            .unwrap();
        let outcome = p.export(&[trace()]).await;
        let requests = server.requests();
        assert!(
            requests.iter().any(|r| r.path.ends_with("/otel/v1/traces")
                && r.headers.iter().any(|(_, v)| v.contains(token))),
            "the token was sent: the server had it to echo"
        );
        format!("{outcome:?} {p:?}")
    });
    assert!(!shown.contains(token), "{shown}");
    let logged = logs.lock().unwrap().join("\n");
    assert!(!logged.contains(token), "{logged}");
}
