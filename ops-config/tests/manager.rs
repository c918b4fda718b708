//! OpsTraceManager: validation from the registry, checks before saving, masked merges,
//! encryption at rest, several providers per app, cache invalidation, routing, rotation.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use ops_config::{
    ConfigError, ConfigStore, ConfigUpdate, Error, Keyring, MasterKey, OpsTraceManager,
    SqliteStore, StoreError, obfuscate::obfuscate,
};
use ops_core::provider::{
    ConfigField, ExportError, ExportOutcome, Provider, ProviderConfig, ProviderFactory,
    validate_integer_id, validate_project_name, validate_url,
};
use ops_core::{ObservationKind, Trace, TraceId};
use ops_testkit::MockProvider;

const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const GOOD: &str = "good-token-0123456789";
const P: &str = "checked-test";

/// How many times the test provider was built, by project name (each test uses its own).
static BUILDS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Mutex::default);

fn builds(project: &str) -> usize {
    BUILDS.lock().unwrap().get(project).copied().unwrap_or(0)
}

/// A provider whose credentials check passes only for [`GOOD`], with Dify-style validators.
/// Its errors quote the token back, in clear and in base64, as a careless server does: the
/// manager must remove it.
struct Checked {
    token: String,
    host: String,
    project: String,
}

#[ops_core::async_trait]
impl Provider for Checked {
    fn name(&self) -> &str {
        P
    }
    async fn export(&mut self, _: &[Arc<Trace>]) -> ExportOutcome {
        if self.token == GOOD {
            ExportOutcome::Delivered
        } else {
            ExportOutcome::fatal(self.echo())
        }
    }
    async fn api_check(&self) -> Result<(), ExportError> {
        if self.token == GOOD {
            Ok(())
        } else {
            Err(self.echo())
        }
    }
    async fn project_key(&self) -> Result<Option<String>, ExportError> {
        Ok(Some(format!("key-{}", self.project)))
    }
    async fn project_url(&self) -> Result<Option<String>, ExportError> {
        Ok(Some(format!("{}/project/{}", self.host, self.project)))
    }
}

impl Checked {
    fn echo(&self) -> ExportError {
        use base64::Engine as _;
        ExportError::new(
            P,
            format!(
                "401 Unauthorized: invalid token {:?} (authorization: Basic {})",
                self.token,
                base64::engine::general_purpose::STANDARD.encode(&self.token)
            ),
        )
    }
}

fn validate(config: &mut ProviderConfig) -> Result<(), ConfigError> {
    config.require("token")?;
    validate_url(config, "host", "https://api.example.com")?;
    validate_project_name(config, "project", "Default Project");
    if config.get("experiment_id").is_some() {
        validate_integer_id(config, "experiment_id")?;
    }
    Ok(())
}

fn build(config: &ProviderConfig) -> Result<Box<dyn Provider>, ConfigError> {
    let project = config.require("project")?.to_owned();
    *BUILDS.lock().unwrap().entry(project.clone()).or_default() += 1;
    Ok(Box::new(Checked {
        token: config.require("token")?.to_owned(),
        host: config.require("host")?.to_owned(),
        project,
    }))
}

ops_core::inventory::submit! {
    ProviderFactory::new(
        P,
        "Checked (test)",
        &[
            ConfigField::secret("token"),
            ConfigField::secret("api_secret").not_required(),
            ConfigField::with_default("host", "https://api.example.com"),
            ConfigField::with_default("project", "Default Project"),
            ConfigField::optional("experiment_id"),
        ],
        build,
    )
    .with_validate(validate)
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Arc<dyn ConfigStore>,
    manager: OpsTraceManager,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ops.db");
    let store: Arc<dyn ConfigStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let manager =
        OpsTraceManager::new(Arc::clone(&store), Keyring::parse(HEX_KEY, "test").unwrap())
            .with_cache_ttl(None);
    Fixture {
        _dir: dir,
        path,
        store,
        manager,
    }
}

fn good(project: &str) -> ConfigUpdate {
    ConfigUpdate::new()
        .set("token", GOOD)
        .set("host", "https://api.example.com/some/path/")
        .set("project", format!("  {project} "))
}

#[tokio::test]
async fn save_validates_checks_encrypts_and_shows_obfuscated() {
    let f = fixture().await;
    let saved = f
        .manager
        .save_config("tenant-a", "app-1", P, &good("save"), true)
        .await
        .unwrap();
    assert_eq!(
        (saved.version, saved.created, saved.checked),
        (1, true, true)
    );
    assert_eq!(saved.project_key.as_deref(), Some("key-save"));
    assert_eq!(
        saved.project_url.as_deref(),
        Some("https://api.example.com/project/save")
    );

    // At rest: the secret is a ciphertext; other keys are validated (path dropped, trimmed).
    let row = f
        .store
        .config("tenant-a", "app-1", P)
        .await
        .unwrap()
        .unwrap();
    assert!(row.sealed["token"].starts_with("enc:v1:k1:"));
    assert!(!format!("{:?}{:?}", row.sealed, row.plain).contains(GOOD));
    assert_eq!(row.plain["host"], "https://api.example.com");
    assert_eq!(row.plain["project"], "save");
    assert!(!row.plain.contains_key("token"));
    let raw = std::fs::read(&f.path).unwrap();
    let wal = std::fs::read(f.path.with_extension("db-wal")).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(
            !bytes.windows(GOOD.len()).any(|w| w == GOOD.as_bytes()),
            "the plaintext secret is in the database file"
        );
    }

    // For display: obfuscated with Dify's rule.
    let view = f
        .manager
        .config_view("tenant-a", "app-1", P)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.values["token"], obfuscate(GOOD));
    assert_eq!(view.values["token"], "good-t************89");
    assert_eq!(view.values["host"], "https://api.example.com");
    assert_eq!(view.key_versions["token"], 1);
    assert_eq!(view.secret_keys, ["token", "api_secret"]);
    assert!(!view.enabled);
    assert_eq!(
        f.manager.config_view("tenant-a", "app-2", P).await.unwrap(),
        None
    );

    // Decrypted for use.
    let config = f
        .manager
        .decrypted_config("tenant-a", "app-1", P)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config.get("token"), Some(GOOD));
}

#[tokio::test]
async fn bad_credentials_save_nothing() {
    let f = fixture().await;
    let bad = good("bad").set("token", "wrong-token-xyz");
    let err = f
        .manager
        .save_config("tenant-a", "app-1", P, &bad, true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::CheckFailed { provider, .. } if provider == P),
        "{err:?}"
    );
    assert!(err.to_string().contains("401 Unauthorized"), "{err}");
    assert!(!err.to_string().contains("wrong-token-xyz"), "{err}");
    assert_eq!(f.store.config("tenant-a", "app-1", P).await.unwrap(), None);
    assert_eq!(
        f.store.app("app-1").await.unwrap(),
        None,
        "no app row either"
    );

    // An update with bad credentials keeps the stored config as it was.
    f.manager
        .save_config("tenant-a", "app-1", P, &good("bad"), true)
        .await
        .unwrap();
    let before = f
        .store
        .config("tenant-a", "app-1", P)
        .await
        .unwrap()
        .unwrap();
    let err = f
        .manager
        .save_config("tenant-a", "app-1", P, &bad.set("project", "other"), true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CheckFailed { .. }), "{err:?}");
    assert_eq!(
        f.store
            .config("tenant-a", "app-1", P)
            .await
            .unwrap()
            .unwrap(),
        before
    );

    // Without the check it is saved (the provider is still built).
    let saved = f
        .manager
        .save_config(
            "tenant-a",
            "app-1",
            P,
            &ConfigUpdate::new().set("token", "unchecked-token"),
            false,
        )
        .await
        .unwrap();
    assert_eq!((saved.version, saved.checked), (2, false));
    // And the stored check now fails, naming the provider.
    let err = f
        .manager
        .check_app_provider("tenant-a", "app-1", P)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CheckFailed { .. }), "{err:?}");
}

#[tokio::test]
async fn errors_name_the_field() {
    let f = fixture().await;
    let cases: Vec<(ConfigUpdate, &str)> = vec![
        (good("e").set("host", "ftp://example.com"), "`host`"),
        (good("e").set("host", "not a url"), "`host`"),
        (good("e").set("experiment_id", "4a"), "`experiment_id`"),
        (good("e").set("token", ""), "`token`"),
        (ConfigUpdate::new().set("host", "https://h"), "`token`"),
        (good("e").set("tokn", "x"), "`tokn`"),
    ];
    for (update, field) in cases {
        let err = f
            .manager
            .save_config("tenant-a", "app-1", P, &update, true)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{update:?}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(field) && msg.contains(P), "{update:?}: {msg}");
    }
    let err = f
        .manager
        .save_config("tenant-a", "app-1", "nope", &good("e"), true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownProvider(_)), "{err:?}");
    assert!(
        err.to_string().contains(P),
        "lists registered providers: {err}"
    );
    assert!(f.store.all_configs().await.unwrap().is_empty());

    for (tenant, app) in [
        ("", "a"),
        ("t", ""),
        ("t", " a"),
        ("t", "a\nb"),
        ("t", "../../etc"),
        ("t", "my app"),
        ("t", ".hidden"),
        ("../t", "a"),
        ("t", &"a".repeat(129)),
    ] {
        let err = f
            .manager
            .save_config(tenant, app, P, &good("e"), true)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidId { .. }),
            "{tenant:?}/{app:?}: {err:?}"
        );
    }
    let err = ops_config::validate_app_id("../../etc")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid app id \"../../etc\": it contains '/'; an id may hold only ASCII letters, \
         digits, `_`, `-` and `.`, starting with a letter or a digit"
    );
    let err = ops_config::validate_tenant_id("my tenant")
        .unwrap_err()
        .to_string();
    assert!(err.contains("it contains a space"), "{err}");
    for ok in [
        "app-1",
        "0190a4b2-0000-7000-8000-000000000001",
        "acme.prod",
        "a_b",
    ] {
        ops_config::validate_app_id(ok).unwrap();
    }
}

#[tokio::test]
async fn masked_values_keep_the_secret_and_are_never_stored() {
    let f = fixture().await;
    let masked = obfuscate(GOOD);
    // Dify's bug: no config yet + masked value = the mask stored in plaintext. Refused.
    let err = f
        .manager
        .save_config(
            "tenant-a",
            "app-1",
            P,
            &good("mask").set("token", masked.clone()),
            true,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MaskedWithoutStored(_)), "{err:?}");
    assert!(err.to_string().contains("`token`"), "{err}");
    assert_eq!(f.store.config("tenant-a", "app-1", P).await.unwrap(), None);

    f.manager
        .save_config(
            "tenant-a",
            "app-1",
            P,
            &good("mask").set("api_secret", "optional-secret-1"),
            true,
        )
        .await
        .unwrap();
    // The form sends everything back as displayed, with one field edited.
    let view = f
        .manager
        .config_view("tenant-a", "app-1", P)
        .await
        .unwrap()
        .unwrap();
    let mut echo = ConfigUpdate::new();
    for (k, v) in &view.values {
        echo.insert(k.clone(), v.clone());
    }
    echo.insert("project", "mask-2");
    let saved = f
        .manager
        .save_config("tenant-a", "app-1", P, &echo, true)
        .await
        .unwrap();
    assert_eq!(saved.version, 2);
    let config = f
        .manager
        .decrypted_config("tenant-a", "app-1", P)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config.get("token"), Some(GOOD));
    assert_eq!(config.get("api_secret"), Some("optional-secret-1"));
    assert_eq!(config.get("project"), Some("mask-2"));

    // An empty value clears an optional secret; a left-out key keeps its value.
    f.manager
        .save_config(
            "tenant-a",
            "app-1",
            P,
            &ConfigUpdate::new().clear("api_secret"),
            true,
        )
        .await
        .unwrap();
    let config = f
        .manager
        .decrypted_config("tenant-a", "app-1", P)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config.get("api_secret"), None);
    assert_eq!(config.get("token"), Some(GOOD));
    assert!(
        !f.store
            .config("tenant-a", "app-1", P)
            .await
            .unwrap()
            .unwrap()
            .sealed
            .contains_key("api_secret")
    );
    // A masked value for the now-cleared secret is refused again.
    let err = f
        .manager
        .save_config(
            "tenant-a",
            "app-1",
            P,
            &ConfigUpdate::new().set("api_secret", obfuscate("optional-secret-1")),
            true,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MaskedWithoutStored(_)), "{err:?}");
}

#[tokio::test]
async fn cache_is_invalidated_on_every_change() {
    let f = fixture().await;
    let m = &f.manager;
    let project = "cache";
    assert_eq!(m.is_enabled_cached("app-1"), None, "nothing loaded yet");
    assert!(!m.is_enabled("app-1").await.unwrap());
    assert_eq!(
        m.is_enabled_cached("app-1"),
        Some(false),
        "unknown apps are cached as off"
    );

    m.save_config("tenant-a", "app-1", P, &good(project), true)
        .await
        .unwrap();
    assert_eq!(m.is_enabled_cached("app-1"), None, "save invalidates");
    assert!(
        !m.is_enabled("app-1").await.unwrap(),
        "configured but not enabled"
    );

    let status = m
        .set_enabled("tenant-a", "app-1", Some(P), true)
        .await
        .unwrap();
    assert!(status.enabled);
    assert_eq!(status.active_providers(), [P]);
    assert_eq!(m.is_enabled_cached("app-1"), None, "enable invalidates");

    let built = builds(project);
    let first = m.providers_for_app("app-1").await.unwrap();
    assert_eq!(
        builds(project),
        built + 1,
        "loading builds the provider once"
    );
    assert!(first.is_active());
    assert_eq!(m.is_enabled_cached("app-1"), Some(true));
    let second = m.providers_for_app("app-1").await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "a hit is served from the cache"
    );
    assert_eq!(builds(project), built + 1, "a hit builds nothing");
    let key1 = first.providers()[0].instance_key().to_owned();
    assert!(key1.starts_with(&format!("app-1/{P}#1-")), "{key1}");
    assert_eq!(m.cached_instance_keys("app-1"), Some(vec![key1.clone()]));

    // A config change: invalidated, rebuilt, new instance key.
    m.save_config(
        "tenant-a",
        "app-1",
        P,
        &ConfigUpdate::new().set("experiment_id", "7"),
        true,
    )
    .await
    .unwrap();
    assert_eq!(m.is_enabled_cached("app-1"), None);
    assert_eq!(m.cached_instance_keys("app-1"), None);
    let third = m.providers_for_app("app-1").await.unwrap();
    assert!(!Arc::ptr_eq(&first, &third));
    let key2 = third.providers()[0].instance_key().to_owned();
    assert_ne!(key1, key2);
    assert!(key2.starts_with(&format!("app-1/{P}#2-")), "{key2}");

    // Disabling the app: invalidated, then cached as off with no providers.
    m.set_enabled("tenant-a", "app-1", None, false)
        .await
        .unwrap();
    assert_eq!(m.is_enabled_cached("app-1"), None);
    assert!(m.providers_for("app-1").await.unwrap().is_empty());
    assert_eq!(m.is_enabled_cached("app-1"), Some(false));
    m.set_enabled("tenant-a", "app-1", None, true)
        .await
        .unwrap();
    assert!(m.is_enabled("app-1").await.unwrap());

    // Deleting the provider invalidates too.
    assert!(m.delete_config("tenant-a", "app-1", P).await.unwrap());
    assert_eq!(m.is_enabled_cached("app-1"), None);
    assert!(!m.is_enabled("app-1").await.unwrap());
    assert!(!m.delete_config("tenant-a", "app-1", P).await.unwrap());
}

#[tokio::test]
async fn changes_from_another_instance_show_after_the_ttl() {
    let f = fixture().await;
    let keys = Keyring::parse(HEX_KEY, "test").unwrap();
    let other = OpsTraceManager::new(Arc::clone(&f.store), keys.clone())
        .with_cache_ttl(Some(Duration::from_millis(50)));
    let pinned = OpsTraceManager::new(Arc::clone(&f.store), keys).with_cache_ttl(None);
    f.manager
        .save_config("t", "app-1", P, &good("ttl"), true)
        .await
        .unwrap();
    assert!(!other.is_enabled("app-1").await.unwrap());
    assert!(!pinned.is_enabled("app-1").await.unwrap());
    f.manager
        .set_enabled("t", "app-1", Some(P), true)
        .await
        .unwrap();
    // The other instances still hold their entries...
    assert_eq!(pinned.is_enabled_cached("app-1"), Some(false));
    tokio::time::sleep(Duration::from_millis(120)).await;
    // ...until the TTL passes (or an explicit invalidation).
    assert_eq!(other.is_enabled_cached("app-1"), None);
    assert!(other.is_enabled("app-1").await.unwrap());
    assert_eq!(pinned.is_enabled_cached("app-1"), Some(false));
    pinned.invalidate("app-1");
    assert!(pinned.is_enabled("app-1").await.unwrap());
}

#[tokio::test]
async fn several_providers_per_app_and_routing() {
    let f = fixture().await;
    let m = &f.manager;
    let channel = "ops-config-routing";
    m.save_config("t", "app-1", P, &good("route"), true)
        .await
        .unwrap();
    m.save_config(
        "t",
        "app-1",
        "mock",
        &ConfigUpdate::new().set("channel", channel),
        true,
    )
    .await
    .unwrap();

    // Enabling the app needs an enabled provider.
    let err = m.set_enabled("t", "app-1", None, true).await.unwrap_err();
    assert!(matches!(err, Error::NoProvider { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("checked-test, mock") && msg.contains("ops enable"),
        "{msg}"
    );
    let err = m
        .set_enabled("t", "app-1", Some("console"), true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotConfigured { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("ops config set --app app-1 --provider console"),
        "{err}"
    );

    m.set_enabled("t", "app-1", Some(P), true).await.unwrap();
    let status = m
        .set_enabled("t", "app-1", Some("mock"), true)
        .await
        .unwrap();
    assert_eq!(status.active_providers(), ["checked-test", "mock"]);

    let routed = m.providers_for("app-1").await.unwrap();
    let names: Vec<_> = routed.iter().map(|(_, p)| p.name().to_owned()).collect();
    assert_eq!(names, ["checked-test", "mock"]);
    let keys: Vec<_> = routed.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(Some(keys.clone()), m.cached_instance_keys("app-1"));
    // The same keys on the next call (nothing changed), fresh owned instances.
    let again: Vec<_> = m
        .providers_for("app-1")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, again);

    // The routed instances deliver.
    let mock = MockProvider::channel(channel);
    mock.reset();
    let trace = Arc::new(Trace::new(
        TraceId::generate(),
        ObservationKind::Span,
        "routed",
        chrono::Utc::now(),
    ));
    for (_, mut provider) in routed {
        assert_eq!(
            provider.export(&[Arc::clone(&trace)]).await,
            ExportOutcome::Delivered
        );
    }
    assert_eq!(mock.traces().len(), 1);
    assert_eq!(mock.traces()[0].name, "routed");

    assert_eq!(
        m.project_url("t", "app-1", "mock")
            .await
            .unwrap()
            .as_deref(),
        Some("mock://ops-config-routing")
    );
    assert_eq!(
        m.project_key("t", "app-1", P).await.unwrap().as_deref(),
        Some("key-route")
    );

    // Taking one provider out leaves the other.
    m.set_enabled("t", "app-1", Some("mock"), false)
        .await
        .unwrap();
    let names: Vec<_> = m
        .providers_for("app-1")
        .await
        .unwrap()
        .into_iter()
        .map(|(_, p)| p.name().to_owned())
        .collect();
    assert_eq!(names, ["checked-test"]);
}

#[tokio::test]
async fn quoted_server_messages_never_carry_the_credentials() {
    use base64::Engine as _;
    let f = fixture().await;
    let m = &f.manager;
    let token = "wrong-token-0123456789";
    let b64 = base64::engine::general_purpose::STANDARD.encode(token);
    let clean = |text: &str| !text.contains(token) && !text.contains(&b64);
    let err = m
        .save_config("t", "app-1", P, &good("echo").set("token", token), true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401 Unauthorized"), "{err}");
    assert!(clean(&err.to_string()), "{err}");
    m.save_config("t", "app-1", P, &good("echo").set("token", token), false)
        .await
        .unwrap();
    m.set_enabled("t", "app-1", Some(P), true).await.unwrap();
    let err = m.check_app_provider("t", "app-1", P).await.unwrap_err();
    assert!(clean(&format!("{err} {err:?}")), "{err:?}");
    // What the queue's lanes get (and so `stats().last_error`).
    for (_, mut provider) in m.providers_for("app-1").await.unwrap() {
        let outcome = provider
            .export(&[Arc::new(Trace::new(
                TraceId::generate(),
                ObservationKind::Span,
                "t",
                chrono::Utc::now(),
            ))])
            .await;
        assert!(matches!(outcome, ExportOutcome::Fatal(_)), "{outcome:?}");
        assert!(clean(&format!("{outcome:?}")), "{outcome:?}");
    }
    let cached = m.providers_for_app("app-1").await.unwrap();
    let err = cached.providers()[0]
        .provider()
        .api_check()
        .await
        .unwrap_err();
    assert!(clean(&err.to_string()), "{err}");
    assert!(err.to_string().contains("<redacted>"), "{err}");
}

#[tokio::test]
async fn tenants_are_isolated() {
    let f = fixture().await;
    let m = &f.manager;
    m.save_config("tenant-a", "app-a", P, &good("tenant"), true)
        .await
        .unwrap();
    m.set_enabled("tenant-a", "app-a", Some(P), true)
        .await
        .unwrap();
    // Naming another tenant never reads the app's config (Dify's GHSA-48xc-wmw8-3jr3).
    let reads: Vec<Result<String, Error>> = vec![
        m.app_status("tenant-b", "app-a")
            .await
            .map(|s| format!("{s:?}")),
        m.config_view("tenant-b", "app-a", P)
            .await
            .map(|v| format!("{v:?}")),
        m.decrypted_config("tenant-b", "app-a", P)
            .await
            .map(|c| format!("{c:?}")),
        m.check_app_provider("tenant-b", "app-a", P)
            .await
            .map(|r| format!("{r:?}")),
        m.project_key("tenant-b", "app-a", P)
            .await
            .map(|k| format!("{k:?}")),
        m.project_url("tenant-b", "app-a", P)
            .await
            .map(|u| format!("{u:?}")),
        m.app_providers("tenant-b", "app-a")
            .await
            .map(|p| format!("{:?}", p.instance_keys())),
    ];
    for result in reads {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::WrongTenant { .. }), "{err:?}");
        assert!(
            err.to_string().contains("belongs to another tenant"),
            "{err}"
        );
    }
    // The owner reads it.
    assert!(
        m.config_view("tenant-a", "app-a", P)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        m.app_providers("tenant-a", "app-a")
            .await
            .unwrap()
            .instance_keys()
            .len(),
        1
    );
    for result in [
        m.save_config("tenant-b", "app-a", P, &good("tenant"), true)
            .await
            .map(|_| ()),
        m.set_enabled("tenant-b", "app-a", Some(P), true)
            .await
            .map(|_| ()),
        m.delete_config("tenant-b", "app-a", P).await.map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::WrongTenant { .. }), "{err:?}");
    }

    // A row copied into another tenant's app (a database-level mistake or attack) does not
    // decrypt there; the app loads without it and reports why.
    m.save_config("tenant-b", "app-b", "mock", &ConfigUpdate::new(), true)
        .await
        .unwrap();
    let mut copied = f
        .store
        .config("tenant-a", "app-a", P)
        .await
        .unwrap()
        .unwrap();
    copied.app_id = "app-b".into();
    copied.tenant_id = "tenant-b".into();
    copied.enabled = true;
    f.store.put_config(&copied, None).await.unwrap();
    m.set_enabled("tenant-b", "app-b", Some("mock"), true)
        .await
        .unwrap();
    let state = m.providers_for_app("app-b").await.unwrap();
    let names: Vec<_> = state.providers().iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        ["mock"],
        "the broken provider is left out, the other works"
    );
    assert_eq!(state.errors().len(), 1);
    let (provider, err) = &state.errors()[0];
    assert_eq!(provider, P);
    assert!(matches!(err, Error::Crypto(_)), "{err:?}");
    assert!(err.to_string().contains("cannot decrypt `token`"), "{err}");
    let err = m.config_view("tenant-b", "app-b", P).await.unwrap_err();
    assert!(matches!(err, Error::Crypto(_)), "{err:?}");
}

#[tokio::test]
async fn rotation_reencrypts_everything() {
    let f = fixture().await;
    let m = &f.manager;
    m.save_config(
        "t",
        "app-1",
        P,
        &good("rot").set("api_secret", "second-secret"),
        true,
    )
    .await
    .unwrap();
    m.save_config("t", "app-2", P, &good("rot"), true)
        .await
        .unwrap();
    m.save_config("t", "app-3", "mock", &ConfigUpdate::new(), true)
        .await
        .unwrap();

    let v1 = Keyring::parse(HEX_KEY, "test").unwrap();
    let v2 = MasterKey::generate(2).unwrap();
    let mut both = v1.clone();
    both.insert(v2.clone());
    let rotating = OpsTraceManager::new(Arc::clone(&f.store), both.clone());
    let report = rotating.rotate_keys().await.unwrap();
    assert_eq!(report.current_version, 2);
    assert_eq!(report.resealed.get(&1), Some(&3));
    assert_eq!(report.configs_updated, 2);
    assert_eq!(report.already_current, 0);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    for app in ["app-1", "app-2"] {
        let row = f.store.config("t", app, P).await.unwrap().unwrap();
        assert!(
            row.sealed.values().all(|s| s.starts_with("enc:v1:k2:")),
            "{row:?}"
        );
    }
    // Running it again changes nothing.
    let again = rotating.rotate_keys().await.unwrap();
    assert_eq!((again.configs_updated, again.already_current), (0, 3));

    // Only the new key is needed now; the old key alone no longer opens anything.
    let new_only = OpsTraceManager::new(Arc::clone(&f.store), Keyring::new([v2]).unwrap());
    let config = new_only
        .decrypted_config("t", "app-1", P)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config.get("token"), Some(GOOD));
    assert_eq!(config.get("api_secret"), Some("second-secret"));
    let old_only = OpsTraceManager::new(Arc::clone(&f.store), v1);
    let err = old_only
        .decrypted_config("t", "app-1", P)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("key version 2"), "{err}");

    // A config that cannot be opened is reported and left as it was.
    let mut broken = f.store.config("t", "app-2", P).await.unwrap().unwrap();
    broken.sealed.insert(
        "token".into(),
        "enc:v1:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
    );
    f.store
        .put_config(&broken, Some(broken.version))
        .await
        .unwrap();
    let report = rotating.rotate_keys().await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].app_id, "app-2");
    assert_eq!(report.failed[0].cause, ops_config::RotationCause::Key);
    assert!(
        report.failed[0].message.contains("cannot decrypt"),
        "{:?}",
        report.failed
    );
}

#[tokio::test]
async fn a_keyless_manager_switches_but_never_touches_secrets() {
    let f = fixture().await;
    f.manager
        .save_config("t", "app-1", P, &good("keyless"), true)
        .await
        .unwrap();
    let keyless = OpsTraceManager::without_keys(Arc::clone(&f.store)).with_cache_ttl(None);
    assert!(keyless.keyring().is_none());

    let status = keyless
        .set_enabled("t", "app-1", Some(P), true)
        .await
        .unwrap();
    assert_eq!(status.active_providers(), [P]);
    // Saving a provider with secrets fails before checking anything, and saves nothing.
    let err = keyless
        .save_config(
            "t",
            "app-1",
            P,
            &ConfigUpdate::new().set("project", "x"),
            true,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Key(ops_config::KeyError::Missing)),
        "{err:?}"
    );
    assert!(err.to_string().contains("OPS_ENCRYPTION_KEY"), "{err}");
    assert_eq!(
        f.store
            .config("t", "app-1", P)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    let err = keyless.config_view("t", "app-1", P).await.unwrap_err();
    assert!(matches!(err, Error::Key(_)), "{err:?}");
    // Loading reports the provider it cannot decrypt instead of failing the app.
    let state = keyless.providers_for_app("app-1").await.unwrap();
    assert!(!state.is_active());
    assert_eq!(state.errors().len(), 1);
    // A provider without secrets still works.
    keyless
        .save_config(
            "t",
            "app-1",
            "mock",
            &ConfigUpdate::new().set("channel", "keyless"),
            true,
        )
        .await
        .unwrap();
    keyless
        .set_enabled("t", "app-1", Some("mock"), true)
        .await
        .unwrap();
    assert!(keyless.is_enabled("app-1").await.unwrap());
    assert!(keyless.rotate_keys().await.is_err());
}

#[tokio::test]
async fn the_manager_and_its_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(t: T) -> T {
        t
    }
    let f = fixture().await;
    send_sync(&f.manager);
    // The router's calls run on any runtime thread: their futures must be Send.
    let routed = send(f.manager.providers_for("app-1")).await.unwrap();
    assert!(routed.is_empty());
    send(f.manager.is_enabled("app-1")).await.unwrap();
    send(
        f.manager
            .save_config("t", "app-1", "mock", &ConfigUpdate::new(), true),
    )
    .await
    .unwrap();
    let shared = Arc::new(f.manager);
    let task = tokio::spawn({
        let m = Arc::clone(&shared);
        async move {
            m.set_enabled("t", "app-1", Some("mock"), true)
                .await
                .map(|s| s.enabled)
        }
    });
    assert!(task.await.unwrap().unwrap());
    assert_eq!(shared.is_enabled_cached("app-1"), None);
    assert!(shared.is_enabled("app-1").await.unwrap());
}

/// A store whose rewrites always lose to a concurrent change.
#[derive(Debug)]
struct Contended(Arc<dyn ConfigStore>);

#[ops_config::async_trait]
impl ConfigStore for Contended {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    async fn app(&self, app_id: &str) -> Result<Option<ops_config::AppTracing>, StoreError> {
        self.0.app(app_id).await
    }
    async fn apps(&self) -> Result<Vec<ops_config::AppTracing>, StoreError> {
        self.0.apps().await
    }
    async fn set_app_enabled(&self, t: &str, a: &str, on: bool) -> Result<(), StoreError> {
        self.0.set_app_enabled(t, a, on).await
    }
    async fn config(
        &self,
        t: &str,
        a: &str,
        p: &str,
    ) -> Result<Option<ops_config::StoredConfig>, StoreError> {
        self.0.config(t, a, p).await
    }
    async fn configs(&self, t: &str, a: &str) -> Result<Vec<ops_config::StoredConfig>, StoreError> {
        self.0.configs(t, a).await
    }
    async fn all_configs(&self) -> Result<Vec<ops_config::StoredConfig>, StoreError> {
        self.0.all_configs().await
    }
    async fn put_config(
        &self,
        config: &ops_config::StoredConfig,
        _expected: Option<i64>,
    ) -> Result<i64, StoreError> {
        // Another writer got there first.
        self.0.put_config(config, Some(-1)).await
    }
    async fn set_provider_enabled(
        &self,
        t: &str,
        a: &str,
        p: &str,
        on: bool,
    ) -> Result<bool, StoreError> {
        self.0.set_provider_enabled(t, a, p, on).await
    }
    async fn delete_config(&self, t: &str, a: &str, p: &str) -> Result<bool, StoreError> {
        self.0.delete_config(t, a, p).await
    }
}

#[tokio::test]
async fn a_rotation_the_store_refuses_is_reported_as_a_store_failure() {
    let f = fixture().await;
    f.manager
        .save_config("t", "app-1", P, &good("p1"), true)
        .await
        .unwrap();
    let mut keys = Keyring::parse(HEX_KEY, "test").unwrap();
    keys.insert(MasterKey::generate(2).unwrap());
    let rotating = OpsTraceManager::new(Arc::new(Contended(Arc::clone(&f.store))), keys);
    let report = rotating.rotate_keys().await.unwrap();
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert_eq!(
        report.failed[0].cause,
        ops_config::RotationCause::Store,
        "a conflict is the store's: the CLI exits 7, not 6: {:?}",
        report.failed[0]
    );
}
