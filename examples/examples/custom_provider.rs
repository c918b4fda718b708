//! Send traces to a provider from another crate, selected by name.
//!
//! ```text
//! cargo run -p examples --example custom_provider
//! ```
//!
//! The `summary` provider lives in `examples/custom-provider`; this example only links it.
//! The same works from the environment:
//! `OPS_TRACE_PROVIDER=console,summary OPS_SUMMARY_FILE=summary.log cargo run -p examples --example quickstart`.

use std::time::Duration;

use ops_core::TraceQueueManager;
use ops_core::provider::{self, ProviderConfig};
// Linking the crate is all it takes to register its provider.
use ops_custom_provider_example as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("ops-summary.log");
    let factory = provider::find("summary")?;
    let summary =
        factory.build(ProviderConfig::new("summary").with("path", path.display().to_string()))?;
    let queue = TraceQueueManager::builder()
        .boxed_provider(summary)
        .build()?;

    let (run, nodes) = examples::chatflow_run();
    queue.trace_workflow_run(run, nodes)?;
    let report = queue.flush(Duration::from_secs(5));

    println!(
        "{} delivered {} trace(s); {} now ends with:",
        factory.display_name,
        report.delivered,
        path.display()
    );
    let log = std::fs::read_to_string(&path)?;
    println!("{}", log.lines().last().unwrap_or_default());
    Ok(())
}
