//! Per-app routing: `for_app` tags tasks, the router names each app's provider instances, and
//! the queue runs a lane per instance, built on first use and retired when idle.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_core::spool::{FsyncPolicy, SpoolConfig};
use ops_core::{DropReason, ExportError, Provider, ProviderRouter, QueueConfig, TraceQueueManager};
use support::{Recorder, eventually, task};

/// A router over an in-memory table: app → provider names, with a config version per app.
#[derive(Default)]
struct TableRouter {
    apps: Mutex<HashMap<String, (u32, Vec<&'static str>)>>,
    /// Providers built, by instance key.
    built: Mutex<HashMap<String, Recorder>>,
    /// Provider names whose instances hang (a dead backend).
    hanging: Mutex<Vec<&'static str>>,
    route_calls: Mutex<usize>,
}

impl TableRouter {
    fn set(&self, app: &str, version: u32, providers: &[&'static str]) {
        self.apps
            .lock()
            .unwrap()
            .insert(app.into(), (version, providers.to_vec()));
    }

    fn delivered(&self, key: &str) -> Vec<String> {
        self.built
            .lock()
            .unwrap()
            .get(key)
            .map(Recorder::delivered)
            .unwrap_or_default()
    }

    fn shutdowns(&self, key: &str) -> usize {
        self.built.lock().unwrap()[key]
            .state
            .lock()
            .unwrap()
            .shutdowns
    }
}

#[ops_core::async_trait]
impl ProviderRouter for TableRouter {
    fn is_enabled_cached(&self, app_id: &str) -> Option<bool> {
        self.apps
            .lock()
            .unwrap()
            .get(app_id)
            .map(|(_, providers)| !providers.is_empty())
    }

    async fn route(&self, app_id: &str) -> Result<Vec<String>, ExportError> {
        *self.route_calls.lock().unwrap() += 1;
        if app_id == "broken" {
            return Err(ExportError::new("router", "config store unavailable"));
        }
        let apps = self.apps.lock().unwrap();
        let Some((version, providers)) = apps.get(app_id) else {
            return Ok(Vec::new());
        };
        Ok(providers
            .iter()
            .map(|p| format!("{app_id}/{p}/v{version}"))
            .collect())
    }

    async fn build(&self, key: &str) -> Result<Box<dyn Provider>, ExportError> {
        let provider = key.split('/').nth(1).unwrap_or_default();
        if provider == "unbuildable" {
            return Err(ExportError::new("router", "invalid credentials"));
        }
        let recorder = if self.hanging.lock().unwrap().contains(&provider) {
            Recorder::hanging("routed")
        } else {
            Recorder::named("routed")
        };
        self.built
            .lock()
            .unwrap()
            .insert(key.to_owned(), recorder.clone());
        Ok(Box::new(recorder))
    }
}

fn config() -> QueueConfig {
    let mut c = QueueConfig::default();
    c.interval = Duration::from_millis(10);
    c.batch_size = 10;
    c.lane_idle_timeout = Duration::from_millis(100);
    c
}

fn queue(router: &Arc<TableRouter>, fixed: &[&Recorder]) -> TraceQueueManager {
    fixed
        .iter()
        .fold(
            TraceQueueManager::builder()
                .config(config())
                .router(Arc::clone(router) as Arc<dyn ProviderRouter>),
            |b, p| b.provider((*p).clone()),
        )
        .build()
        .unwrap()
}

#[test]
fn each_app_reaches_its_own_providers_and_fixed_providers_see_everything() {
    let router = Arc::new(TableRouter::default());
    router.set("app-1", 1, &["langfuse"]);
    router.set("app-2", 1, &["langfuse", "phoenix"]);
    let fixed = Recorder::named("audit");
    let q = queue(&router, &[&fixed]);
    q.for_app("app-1", None)
        .add_trace_task(task("one"))
        .unwrap();
    q.for_app("app-2", None)
        .add_trace_task(task("two"))
        .unwrap();
    assert!(!q.flush(Duration::from_secs(5)).timed_out);
    assert_eq!(router.delivered("app-1/langfuse/v1"), ["one"]);
    assert_eq!(router.delivered("app-2/langfuse/v1"), ["two"]);
    assert_eq!(router.delivered("app-2/phoenix/v1"), ["two"]);
    let mut all = fixed.delivered();
    all.sort();
    assert_eq!(all, ["one", "two"]);
    let names: Vec<String> = q.stats().providers.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

#[test]
fn an_app_with_tracing_off_costs_nothing() {
    let router = Arc::new(TableRouter::default());
    router.set("quiet", 1, &[]);
    let q = queue(&router, &[]);
    let app = q.for_app("quiet", Some("user-1".into()));
    assert!(!app.is_enabled());
    for i in 0..100 {
        app.add_trace_task(task(&format!("t{i}"))).unwrap();
    }
    q.flush(Duration::from_secs(5));
    assert_eq!(q.stats().enqueued, 0, "nothing was queued");
    assert_eq!(
        *router.route_calls.lock().unwrap(),
        0,
        "the router was never asked"
    );
}

#[test]
fn the_user_of_for_app_applies_when_the_trace_names_none() {
    let router = Arc::new(TableRouter::default());
    router.set("app", 1, &["langfuse"]);
    let q = queue(&router, &[]);
    q.for_app("app", Some("end-user-7".into()))
        .add_trace_task(task("t"))
        .unwrap();
    q.flush(Duration::from_secs(5));
    let built = router.built.lock().unwrap();
    let traces = built["app/langfuse/v1"].traces();
    assert_eq!(traces[0].attributes.user_id.as_deref(), Some("end-user-7"));
    assert_eq!(traces[0].attributes.app_id.as_deref(), Some("app"));
}

#[test]
fn a_config_change_takes_effect_and_the_old_instance_is_retired() {
    let router = Arc::new(TableRouter::default());
    router.set("app", 1, &["langfuse"]);
    let q = queue(&router, &[]);
    q.for_app("app", None)
        .add_trace_task(task("before"))
        .unwrap();
    q.flush(Duration::from_secs(5));
    router.set("app", 2, &["langfuse"]);
    q.for_app("app", None)
        .add_trace_task(task("after"))
        .unwrap();
    q.flush(Duration::from_secs(5));
    assert_eq!(router.delivered("app/langfuse/v1"), ["before"]);
    assert_eq!(router.delivered("app/langfuse/v2"), ["after"]);
    assert!(
        eventually(Duration::from_secs(5), || router
            .shutdowns("app/langfuse/v1")
            == 1),
        "the idle v1 lane is shut down"
    );
    assert!(eventually(Duration::from_secs(5), || {
        q.stats()
            .providers
            .iter()
            .all(|p| p.name != "app/langfuse/v1")
    }));
}

#[test]
fn routing_and_build_failures_are_counted() {
    let router = Arc::new(TableRouter::default());
    router.set("bad-creds", 1, &["unbuildable"]);
    let q = queue(&router, &[]);
    q.for_app("broken", None).add_trace_task(task("a")).unwrap();
    q.for_app("bad-creds", None)
        .add_trace_task(task("b"))
        .unwrap();
    q.flush(Duration::from_secs(5));
    assert_eq!(q.stats().dropped(DropReason::Unroutable), 2);
}

#[test]
fn routed_deliveries_are_durable_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = SpoolConfig::new(dir.path());
    spool.fsync = FsyncPolicy::Always;
    let router = Arc::new(TableRouter::default());
    router.set("app", 1, &["langfuse", "phoenix"]);
    router.hanging.lock().unwrap().push("phoenix");
    let q = TraceQueueManager::builder()
        .config(config())
        .spool(spool.clone())
        .router(Arc::clone(&router) as Arc<dyn ProviderRouter>)
        .build()
        .unwrap();
    for i in 0..5 {
        q.for_app("app", None)
            .add_trace_task(task(&format!("t{i}")))
            .unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || {
        router.delivered("app/langfuse/v1").len() == 5
    }));
    q.shutdown(Duration::from_millis(100));
    drop(q);

    let router = Arc::new(TableRouter::default());
    router.set("app", 1, &["langfuse", "phoenix"]);
    let q = TraceQueueManager::builder()
        .config(config())
        .spool(spool)
        .router(Arc::clone(&router) as Arc<dyn ProviderRouter>)
        .build()
        .unwrap();
    assert!(!q.flush(Duration::from_secs(5)).timed_out);
    assert!(
        router.delivered("app/langfuse/v1").is_empty(),
        "langfuse had them all before the restart"
    );
    assert_eq!(router.delivered("app/phoenix/v1").len(), 5);
}

/// `for_app` has the explicit API of the queue itself: a workflow run, a message run and an
/// info record are tagged with the app and reach its providers; a disabled app builds nothing.
#[test]
fn an_app_queue_has_the_explicit_api() {
    use ops_core::model::{
        BaseTraceInfo, MessageRun, ToolTraceInfo, WorkflowNodeTraceInfo, WorkflowRun,
    };
    use ops_core::{Accepted, TraceInfo};

    let router = Arc::new(TableRouter::default());
    router.set("app", 1, &["langfuse"]);
    router.set("quiet", 1, &[]);
    let q = queue(&router, &[]);
    let app = q.for_app("app", Some("end-user-7".into()));
    let run = WorkflowRun {
        id: "0190a4b2-0000-7000-8000-000000000001".into(),
        status: "succeeded".into(),
        created_at: chrono::Utc::now(),
        ..Default::default()
    };
    app.trace_workflow_run(run.clone(), Vec::<WorkflowNodeTraceInfo>::new())
        .unwrap();
    let message = MessageRun {
        id: "0190a4b2-0000-7000-9000-000000000001".into(),
        query: "q".into(),
        answer: "a".into(),
        created_at: chrono::Utc::now(),
        ..Default::default()
    };
    app.trace_message_run(message.clone()).unwrap();
    let tool = TraceInfo::Tool(ToolTraceInfo {
        base: BaseTraceInfo {
            message_id: Some("0190a4b2-0000-7000-9000-000000000002".into()),
            start_time: Some(chrono::Utc::now()),
            end_time: Some(chrono::Utc::now()),
            ..Default::default()
        },
        tool_name: "search".into(),
        ..Default::default()
    });
    app.trace_info(tool.clone()).unwrap();
    assert!(!app.flush(Duration::from_secs(5)).timed_out);
    let built = router.built.lock().unwrap();
    let traces = built["app/langfuse/v1"].traces();
    assert_eq!(traces.len(), 3, "{traces:?}");
    for t in &traces {
        assert_eq!(t.attributes.app_id.as_deref(), Some("app"));
        assert_eq!(t.attributes.user_id.as_deref(), Some("end-user-7"));
    }
    drop(built);

    let quiet = q.for_app("quiet", None);
    assert_eq!(
        quiet.trace_workflow_run(run, Vec::new()).unwrap(),
        Accepted::Disabled
    );
    assert_eq!(
        quiet.trace_message_run(message).unwrap(),
        Accepted::Disabled
    );
    assert_eq!(quiet.trace_info(tool).unwrap(), Accepted::Disabled);
}
