//! Quickstart: trace a chatflow twice, once as it runs with `#[traced]` and once from the data
//! of a finished run, and see both trees. Needs no account.
//!
//! ```text
//! cargo run -p examples --example quickstart
//! OPS_TRACE_FILE=traces.jsonl cargo run -p examples --example quickstart   # also JSON lines
//! OPS_TRACE_PROVIDER=none cargo run -p examples --example quickstart         # tracing off
//! OPS_TRACE_PROVIDER=console,local cargo run -p examples --example quickstart && ops serve
//! ```
//!
//! With `local` in the list, both traces are also kept in `ops-traces.db` (or `$OPS_TRACE_DB`),
//! where `ops serve` shows them at <http://127.0.0.1:7411>.
//!
//! `ops_core::init()` reads `OPS_TRACE_PROVIDER` (default `console`: a tree on stderr). Every
//! platform of `ops-providers` is linked in, so the same run goes to one with its SDK's
//! variables, e.g. `OPS_TRACE_PROVIDER=phoenix PHOENIX_COLLECTOR_ENDPOINT=http://127.0.0.1:6006`.

use std::process::ExitCode;
use std::time::Duration;

use ops_core::{Usage, traced, update_current_observation};

#[derive(Debug)]
struct AppError(String);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AppError {}

/// The message: the root of the trace, so the trace is a message trace.
#[traced(kind = "message", user_id = user, session_id = conversation, tags("quickstart"))]
async fn answer(user: &str, conversation: &str, query: &str) -> Result<String, AppError> {
    run_workflow(query).await
}

#[traced(kind = "workflow")]
async fn run_workflow(query: &str) -> Result<String, AppError> {
    let guides = retrieve(query, 2).await;
    let weather = forecast("Lisbon").await?;
    complete(&format!("{query}\n{}\n{weather}", guides.join("\n"))).await
}

#[traced(kind = "dataset_retrieval")]
async fn retrieve(query: &str, top_k: usize) -> Vec<String> {
    (1..=top_k)
        .map(|i| format!("packing guide {i} for: {query}"))
        .collect()
}

#[traced(kind = "tool")]
async fn forecast(city: &str) -> Result<String, AppError> {
    Ok(format!("{city}: 24°C, sunny"))
}

#[traced(
    kind = "llm",
    model = "gpt-4o-mini",
    model_parameters(temperature = 0.3)
)]
async fn complete(prompt: &str) -> Result<String, AppError> {
    // What the model's API reported, recorded on this generation.
    update_current_observation(|o| {
        o.usage(Usage::tokens(612, 148).with_cost(0.000_180_6, "USD"));
    });
    Ok(format!(
        "Pack light: {} lines of context used.",
        prompt.lines().count()
    ))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Set up the global queue from the environment. Keep the guard: dropping it delivers
    // whatever is still queued and shuts the queue down.
    ops_providers::link();
    ops_store::link();
    let guard = ops_core::init()?;
    // With `OPS_TRACE_PROVIDER=none` tracing is off: no queue, and traced calls cost one
    // atomic load. The app runs all the same.
    let queue = guard.queue();
    if queue.is_none() {
        println!("tracing is off (OPS_TRACE_PROVIDER=none); running without it");
    }

    // 1. As it runs: each `#[traced]` call is an observation, nested by who called whom.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let reply = runtime.block_on(answer(
        "traveller-42",
        "trip-planning",
        "What should I pack?",
    ))?;
    println!("answer: {reply}");

    // 2. After the fact: a chatflow run the app already has (the run, with its message and
    // conversation, and its node executions). `trace_workflow_run` queues it without
    // blocking; the worker builds the tree message → workflow → nodes.
    let Some(queue) = queue else {
        return Ok(());
    };
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
