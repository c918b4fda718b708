//! Quickstart: trace a finished chatflow run and see its tree. Needs no account.
//!
//! ```text
//! cargo run -p examples --example quickstart
//! OPS_TRACE_FILE=traces.jsonl cargo run -p examples --example quickstart   # also JSON lines
//! ```
//!
//! `ops_core::init()` reads `OPS_TRACE_PROVIDER` (default `console`: a tree on stderr). Every
//! platform of `ops-providers` is linked in, so the same run goes to one with its SDK's
//! variables, e.g. `OPS_TRACE_PROVIDER=phoenix PHOENIX_COLLECTOR_ENDPOINT=http://127.0.0.1:6006`.

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Set up the global queue from the environment. Keep the guard: dropping it delivers
    // whatever is still queued and shuts the queue down.
    ops_providers::link();
    let _guard = ops_core::init()?;
    let queue = ops_core::global().expect("init() installs the global queue");

    // A chatflow run the app already has: the run (with its message and conversation) and
    // its node executions. `trace_workflow_run` queues it without blocking; the queue's
    // worker builds the tree message → workflow → nodes and hands it to the providers.
    let (run, nodes) = examples::chatflow_run();
    queue.trace_workflow_run(run, nodes)?;

    // Deliver now rather than at the next interval (5 s by default).
    queue.flush(Duration::from_secs(5));
    for provider in queue.stats().providers {
        println!(
            "{}: delivered {}, dropped {}",
            provider.name, provider.exported, provider.dropped
        );
    }
    Ok(())
}
