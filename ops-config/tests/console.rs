//! `ops_config::console`: the operations the `ops` CLI and the admin API share, over a SQLite
//! store and the in-memory `mock` provider (ops-testkit).

use std::time::Duration;

use ops_config::console::{self, ProjectLink};
use ops_config::{ConfigUpdate, Error, Keyring, MasterKey, OpsTraceManager};
use ops_testkit::{MOCK_PROVIDER, MockProvider};

async fn manager() -> (OpsTraceManager, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let store = ops_config::store::connect(&url).await.unwrap();
    let keys = Keyring::new([MasterKey::from_bytes(1, [3; 32])]).unwrap();
    (OpsTraceManager::new(store, keys).with_cache_ttl(None), dir)
}

#[test]
fn providers_lists_the_registry_with_its_fields() {
    let list = console::providers();
    let mock = list
        .iter()
        .find(|p| p.name == MOCK_PROVIDER)
        .expect("the mock provider is registered");
    assert_eq!(mock.display_name, "Mock (in-memory, for tests)");
    assert_eq!(mock.fields.len(), 1);
    assert_eq!(mock.fields[0].name, "channel");
    assert!(!mock.fields[0].secret && !mock.fields[0].required);
    assert_eq!(
        list.len(),
        ops_core::provider::registered().len(),
        "one entry per provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_check_and_send_test_follow_the_apps_state() {
    let (manager, _dir) = manager().await;
    let channel = "console-test";

    // Nothing configured: each operation says so.
    let none = console::app_configs(&manager, "t1", "app", None).await;
    assert!(matches!(none, Err(Error::NoConfig { .. })), "{none:?}");
    let none = console::check(&manager, "t1", "app", None).await;
    assert!(matches!(none, Err(Error::NoConfig { .. })), "{none:?}");
    let one = console::app_configs(&manager, "t1", "app", Some(MOCK_PROVIDER)).await;
    assert!(matches!(one, Err(Error::NotConfigured { .. })), "{one:?}");

    let update = ConfigUpdate::new().set("channel", channel);
    manager
        .save_config("t1", "app", MOCK_PROVIDER, &update, true)
        .await
        .unwrap();
    let configs = console::app_configs(&manager, "t1", "app", None)
        .await
        .unwrap();
    assert_eq!(configs.views.len(), 1);
    let json = configs.to_json();
    assert_eq!(json["tenant_id"], "t1");
    assert_eq!(json["configs"][0]["values"]["channel"], channel);
    assert_eq!(json["active_providers"], serde_json::json!([]));

    let checked = console::check(&manager, "t1", "app", None).await.unwrap();
    assert_eq!(checked.len(), 1);
    assert_eq!(
        checked[0].1.as_ref().unwrap().project_url.as_deref(),
        Some("mock://console-test")
    );

    // Not active yet: the error says why and how to turn it on.
    let err = console::send_test(&manager, "t1", "app", None, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "tracing is off for app app; turn it on with `ops enable --app app --provider <name>`"
    );

    manager
        .set_enabled("t1", "app", Some(MOCK_PROVIDER), true)
        .await
        .unwrap();
    let report = console::send_test(&manager, "t1", "app", None, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.failed(), 0);
    assert!(report.left_out.is_empty());
    assert_eq!(report.deliveries.len(), 1);
    assert_eq!(
        report.deliveries[0].project,
        Some(ProjectLink::Url("mock://console-test".into()))
    );
    let delivered = MockProvider::channel(channel).traces();
    assert!(
        delivered
            .iter()
            .any(|t| t.id.to_string() == report.trace_id
                && t.observations.len() == report.observations),
        "the sample trace reached the provider"
    );

    // Another tenant gets nothing from any of them.
    for result in [
        console::app_configs(&manager, "t2", "app", None)
            .await
            .err(),
        console::check(&manager, "t2", "app", None).await.err(),
        console::send_test(&manager, "t2", "app", None, Duration::from_secs(5))
            .await
            .err(),
    ] {
        assert!(
            matches!(result, Some(Error::WrongTenant { .. })),
            "{result:?}"
        );
    }
}
