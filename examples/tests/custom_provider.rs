//! The `summary` provider from `examples/custom-provider` is registered just because this
//! test binary links its crate, and traces reach it through a real queue.

use std::path::PathBuf;
use std::time::Duration;

use ops_core::TraceQueueManager;
use ops_core::provider::{self, ConfigError, ProviderConfig};
// Nothing from the crate is called: referencing it links it, and that registers `summary`.
use ops_custom_provider_example as _;

/// A path under the temp dir that no other test or process uses; removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> Self {
        let unique = format!(
            "ops-examples-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        Self(std::env::temp_dir().join(unique))
    }

    fn as_config(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn linked_crate_is_found_by_name() {
    let factory = provider::find("summary").expect("registered by linking the crate");
    assert_eq!(factory.name, "summary");
    assert_eq!(factory.display_name, "Trace summary file");
    assert_eq!(factory.other_keys().collect::<Vec<_>>(), ["path"]);
    assert!(
        provider::registered().iter().any(|f| f.name == "summary"),
        "listed among the registered providers"
    );
}

#[test]
fn unknown_name_lists_the_registered_providers() {
    let err = provider::find("no-such-provider").unwrap_err().to_string();
    assert!(err.contains("\"no-such-provider\""), "{err}");
    for name in ["summary", "console", "file"] {
        assert!(err.contains(name), "{name} missing from: {err}");
    }
}

#[test]
fn bad_config_is_a_clear_error_naming_the_field() {
    let factory = provider::find("summary").unwrap();

    let missing = factory.build(ProviderConfig::new("summary")).unwrap_err();
    assert!(
        matches!(&missing, ConfigError::Missing { field, .. } if field == "path"),
        "{missing:?}"
    );
    assert!(
        missing.to_string().contains("`path` is required"),
        "{missing}"
    );

    let dir = TempPath::new("no-such-dir");
    let in_missing_dir = dir.0.join("summary.log").display().to_string();
    let err = factory
        .build(ProviderConfig::new("summary").with("path", in_missing_dir))
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { field, .. } if field == "path"),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");

    let err = factory
        .build(
            ProviderConfig::new("summary").with("path", std::env::temp_dir().display().to_string()),
        )
        .unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");

    let err = factory
        .build(ProviderConfig::new("summary").with("file", "x.log"))
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownField { field, known, .. } if field == "file" && known == "path"),
        "{err:?}"
    );
}

#[test]
fn traces_flow_through_the_queue_into_the_provider() {
    let file = TempPath::new("summary");
    let summary = provider::find("summary")
        .unwrap()
        .build(ProviderConfig::new("summary").with("path", file.as_config()))
        .expect("valid config");
    let queue = TraceQueueManager::builder()
        .interval(Duration::from_secs(60))
        .boxed_provider(summary)
        .build()
        .expect("queue");

    let runs: Vec<_> = (0..3).map(|_| examples::chatflow_run()).collect();
    let ids: Vec<String> = runs.iter().map(|(run, _)| run.id.clone()).collect();
    for (run, nodes) in runs {
        queue.trace_workflow_run(run, nodes).expect("enqueue");
    }
    let report = queue.flush(Duration::from_secs(10));
    assert_eq!(
        (report.delivered, report.timed_out),
        (3, false),
        "{report:?}"
    );
    let stats = queue.stats();
    assert_eq!(stats.providers.len(), 1);
    assert_eq!(
        (
            stats.providers[0].name.as_str(),
            stats.providers[0].exported
        ),
        ("summary", 3)
    );

    let written = std::fs::read_to_string(&file.0).expect("the provider wrote its file");
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 3, "{written}");
    for (line, id) in lines.iter().zip(&ids) {
        assert_eq!(
            *line,
            format!(
                "{id} message \"message\" observations=7 tokens=760 cost=0.0001806 USD errors=0"
            )
        );
    }
}
