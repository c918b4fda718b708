//! The stores: the same behaviour from SQLite (always, on temp files) and PostgreSQL (when
//! `OPS_TEST_DATABASE_URL` is set, or else when a server answers on 127.0.0.1:5432; each run
//! uses its own schema and drops it afterwards).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use ops_config::store::{self, ConfigStore, PostgresStore, SqliteStore, StoreError, StoredConfig};

/// The PostgreSQL URL for the store tests, e.g. `postgres://postgres@127.0.0.1:5432/test`.
const PG_ENV: &str = "OPS_TEST_DATABASE_URL";

/// The server the store tests use when [`PG_ENV`] is not set, if it answers.
const PG_LOCAL_ADDR: &str = "127.0.0.1:5432";
/// The URL used for [`PG_LOCAL_ADDR`].
const PG_LOCAL_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Whether something accepts TCP connections on [`PG_LOCAL_ADDR`] within two seconds.
fn local_postgres_answers() -> bool {
    let addr: std::net::SocketAddr = PG_LOCAL_ADDR.parse().expect("a literal address");
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok()
}

/// The PostgreSQL URL to test against: [`PG_ENV`] when set (blank counts as unset), otherwise
/// [`PG_LOCAL_URL`] when a server answers on [`PG_LOCAL_ADDR`], otherwise `Err` with the
/// reason the tests are skipped.
fn postgres_url() -> Result<String, String> {
    if let Ok(url) = std::env::var(PG_ENV)
        && !url.trim().is_empty()
    {
        return Ok(url);
    }
    if local_postgres_answers() {
        return Ok(PG_LOCAL_URL.to_owned());
    }
    Err(format!(
        "{PG_ENV} is not set and nothing answers on {PG_LOCAL_ADDR}; start PostgreSQL there, \
         or set {PG_ENV} (e.g. {PG_LOCAL_URL}), to run the PostgreSQL store tests"
    ))
}

fn row(app: &str, provider: &str, tenant: &str) -> StoredConfig {
    StoredConfig {
        app_id: app.into(),
        tenant_id: tenant.into(),
        provider: provider.into(),
        enabled: false,
        plain: BTreeMap::from([
            ("host".to_owned(), "https://cloud.langfuse.com".to_owned()),
            ("project".to_owned(), "ünïcödé 🚀 'quoted' \"x\"".to_owned()),
        ]),
        sealed: BTreeMap::from([("secret_key".to_owned(), "enc:v1:k1:AAAA".to_owned())]),
        version: 0,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

/// Every store must behave exactly like this.
async fn exercise(store: Arc<dyn ConfigStore>) {
    let started = chrono::Utc::now() - chrono::TimeDelta::seconds(5);
    assert_eq!(store.app("app-1").await.unwrap(), None);
    assert!(store.apps().await.unwrap().is_empty());
    assert_eq!(
        store.config("tenant-a", "app-1", "langfuse").await.unwrap(),
        None
    );
    assert!(
        !store
            .set_provider_enabled("tenant-a", "app-1", "langfuse", true)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_config("tenant-a", "app-1", "langfuse")
            .await
            .unwrap()
    );

    // Create: version 1, and the app row appears, disabled, owned by the tenant.
    let mut config = row("app-1", "langfuse", "tenant-a");
    assert_eq!(store.put_config(&config, None).await.unwrap(), 1);
    let app = store
        .app("app-1")
        .await
        .unwrap()
        .expect("the app row is created");
    assert_eq!((app.tenant_id.as_str(), app.enabled), ("tenant-a", false));
    assert!(app.created_at >= started && app.updated_at >= app.created_at);
    let got = store
        .config("tenant-a", "app-1", "langfuse")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(got.plain, config.plain);
    assert_eq!(got.sealed, config.sealed);
    assert_eq!(got.tenant_id, "tenant-a");
    assert!(!got.enabled);

    // Creating it again is a conflict.
    let err = store.put_config(&config, None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: None, .. }),
        "{err:?}"
    );

    // Update with the right version; a stale version is a conflict and writes nothing.
    config
        .plain
        .insert("host".into(), "https://eu.langfuse.com".into());
    assert_eq!(store.put_config(&config, Some(1)).await.unwrap(), 2);
    config
        .plain
        .insert("host".into(), "https://stale.example".into());
    let err = store.put_config(&config, Some(1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("changed concurrently"), "{err}");
    let got = store
        .config("tenant-a", "app-1", "langfuse")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.version, 2);
    assert_eq!(got.plain["host"], "https://eu.langfuse.com");

    // Several providers per app, listed by name; another app elsewhere.
    store
        .put_config(&row("app-1", "console", "tenant-a"), None)
        .await
        .unwrap();
    store
        .put_config(&row("app-2", "mock", "tenant-b"), None)
        .await
        .unwrap();
    let names: Vec<_> = store
        .configs("tenant-a", "app-1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.provider)
        .collect();
    assert_eq!(names, ["console", "langfuse"]);
    let all: Vec<_> = store
        .all_configs()
        .await
        .unwrap()
        .into_iter()
        .map(|c| format!("{}/{}", c.app_id, c.provider))
        .collect();
    assert_eq!(all, ["app-1/console", "app-1/langfuse", "app-2/mock"]);

    // Switches.
    assert!(
        store
            .set_provider_enabled("tenant-a", "app-1", "langfuse", true)
            .await
            .unwrap()
    );
    assert!(
        store
            .config("tenant-a", "app-1", "langfuse")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    assert!(
        !store
            .config("tenant-a", "app-1", "console")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    store
        .set_app_enabled("tenant-a", "app-1", true)
        .await
        .unwrap();
    assert!(store.app("app-1").await.unwrap().unwrap().enabled);
    // Another tenant can neither switch the app nor read, change or delete its configs.
    let err = store
        .set_app_enabled("tenant-z", "app-1", false)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongTenant { .. }), "{err:?}");
    let app = store.app("app-1").await.unwrap().unwrap();
    assert_eq!((app.tenant_id.as_str(), app.enabled), ("tenant-a", true));
    assert_eq!(
        store.config("tenant-z", "app-1", "langfuse").await.unwrap(),
        None
    );
    assert!(store.configs("tenant-z", "app-1").await.unwrap().is_empty());
    assert!(
        !store
            .set_provider_enabled("tenant-z", "app-1", "langfuse", false)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_config("tenant-z", "app-1", "langfuse")
            .await
            .unwrap()
    );
    let mut stolen = store
        .config("tenant-a", "app-1", "langfuse")
        .await
        .unwrap()
        .unwrap();
    stolen.tenant_id = "tenant-z".into();
    stolen
        .plain
        .insert("host".into(), "https://attacker.example".into());
    for expected in [None, Some(stolen.version)] {
        let err = store.put_config(&stolen, expected).await.unwrap_err();
        assert!(matches!(err, StoreError::WrongTenant { .. }), "{err:?}");
    }
    let kept = store
        .config("tenant-a", "app-1", "langfuse")
        .await
        .unwrap()
        .unwrap();
    assert!(kept.enabled && kept.plain["host"] == "https://eu.langfuse.com");
    // A switch creates the app row when missing.
    store
        .set_app_enabled("tenant-c", "app-3", true)
        .await
        .unwrap();
    let apps: Vec<_> = store
        .apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.app_id)
        .collect();
    assert_eq!(apps, ["app-1", "app-2", "app-3"]);
    // Updating keeps `enabled` as given in the row.
    let mut enabled = store
        .config("tenant-a", "app-1", "langfuse")
        .await
        .unwrap()
        .unwrap();
    enabled.plain.insert("project".into(), "p2".into());
    assert_eq!(store.put_config(&enabled, Some(2)).await.unwrap(), 3);
    assert!(
        store
            .config("tenant-a", "app-1", "langfuse")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );

    // Concurrent writers with the same expected version: exactly one wins.
    let (a, b) = tokio::join!(
        store.put_config(&enabled, Some(3)),
        store.put_config(&enabled, Some(3))
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
    assert_eq!(
        store
            .config("tenant-a", "app-1", "langfuse")
            .await
            .unwrap()
            .unwrap()
            .version,
        4
    );

    // Delete.
    assert!(
        store
            .delete_config("tenant-a", "app-1", "console")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_config("tenant-a", "app-1", "console")
            .await
            .unwrap()
    );
    assert_eq!(store.configs("tenant-a", "app-1").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("ops-config.db");
    let store = SqliteStore::open(&path).await.unwrap();
    assert!(path.exists(), "the file is created on first use");
    exercise(Arc::new(store.clone())).await;
    store.pool().close().await;

    // Reopening runs the migrations again (a no-op) and finds the data.
    let reopened = store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(reopened.backend(), "sqlite");
    assert_eq!(
        reopened
            .config("tenant-a", "app-1", "langfuse")
            .await
            .unwrap()
            .unwrap()
            .version,
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_urls_and_memory() {
    let memory = store::connect("sqlite::memory:").await.unwrap();
    exercise(memory).await;

    let dir = tempfile::tempdir().unwrap();
    let plain_path = dir.path().join("plain.db");
    let store = store::connect(plain_path.to_str().unwrap()).await.unwrap();
    store.set_app_enabled("t", "a", true).await.unwrap();
    assert!(plain_path.exists());

    let err = store::connect("mysql://u:pw@h/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unsupported scheme") && !err.contains("pw@"),
        "{err}"
    );

    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let err = SqliteStore::open(not_a_dir.join("db.sqlite"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot create directory"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_paths_and_sqlite_urls_create_files_and_reads_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cwd_files = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    // Not a path, not sqlite:, not postgres://: errors, and no file appears.
    for url in [
        "::::",
        "postgres:/typo@127.0.0.1/test",
        "mysql://h/db",
        "file:x.db",
    ] {
        let in_dir = if url.contains("://") || url.starts_with("postgres") {
            url.to_owned()
        } else {
            dir.path().join(url).display().to_string()
        };
        for result in [
            store::connect(&in_dir).await.map(|_| ()),
            store::connect_existing(&in_dir).await.map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(matches!(err, StoreError::BadUrl { .. }), "{url}: {err:?}");
        }
    }
    assert!(cwd_files().is_empty(), "{:?}", cwd_files());
    assert!(!std::path::Path::new("::::").exists());

    // A read on a missing file: NotFound, nothing created (neither the file nor its directory).
    let missing = dir.path().join("sub").join("config.db");
    for url in [
        missing.display().to_string(),
        format!("sqlite://{}", missing.display()),
        format!("sqlite:{}?mode=rwc", missing.display()),
    ] {
        let err = store::connect_existing(&url).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{url}: {err:?}");
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
    assert!(cwd_files().is_empty(), "{:?}", cwd_files());

    // Writes create it; reads then open it.
    let created = store::connect(missing.to_str().unwrap()).await.unwrap();
    created.set_app_enabled("t", "a", true).await.unwrap();
    let read = store::connect_existing(missing.to_str().unwrap())
        .await
        .unwrap();
    assert!(read.app("a").await.unwrap().unwrap().enabled);
    assert!(store::connect_existing("sqlite::memory:").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let url = match postgres_url() {
        Ok(url) => url,
        Err(reason) => {
            // Written to stderr directly, past the test harness's capture, so the skip is seen.
            let _ = writeln!(std::io::stderr(), "SKIPPED postgres_store: {reason}");
            return;
        }
    };
    let schema = format!(
        "ops_test_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let store = PostgresStore::connect_in_schema(&url, &schema)
        .await
        .unwrap();
    let result = tokio::spawn({
        let store = store.clone();
        async move { exercise(Arc::new(store)).await }
    })
    .await;
    // Migrating a second time into the same schema is a no-op.
    let again = PostgresStore::connect_in_schema(&url, &schema).await;
    let kept = match &again {
        Ok(s) => s
            .config("tenant-a", "app-1", "langfuse")
            .await
            .ok()
            .flatten(),
        Err(_) => None,
    };
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await
        .unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic.into_panic());
    }
    again.unwrap();
    assert_eq!(kept.map(|c| c.version), Some(4));

    let err = PostgresStore::connect_in_schema(&url, "bad; drop")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("schema"), "{err}");
}

/// Without `OPS_TEST_DATABASE_URL`, a server answering on 127.0.0.1:5432 is used: the plain
/// `cargo test --workspace` runs the PostgreSQL store tests wherever one is up.
#[test]
fn a_local_postgres_is_used_without_the_variable() {
    if std::env::var(PG_ENV).is_ok_and(|v| !v.trim().is_empty()) {
        assert_eq!(postgres_url().unwrap(), std::env::var(PG_ENV).unwrap());
        return;
    }
    if local_postgres_answers() {
        assert_eq!(postgres_url().unwrap(), PG_LOCAL_URL);
    } else {
        let reason = postgres_url().unwrap_err();
        assert!(
            reason.contains(PG_ENV) && reason.contains(PG_LOCAL_ADDR),
            "{reason}"
        );
    }
}
