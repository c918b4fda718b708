//! # ops-testkit
//!
//! Test helpers for `ops`: capture the traces your code emits, then assert on them.
//!
//! - [`capture()`] gives a test its own queue and in-memory provider. Install it with
//!   [`Capture::enter`] (this thread) or [`Capture::scope`] (a future, on a multi-thread
//!   runtime): only traces emitted under it reach it, so tests in one binary run in parallel
//!   without `#[serial]`.
//! - Reading a capture flushes first ([`Capture::flush`]): everything emitted before the call
//!   is visible, with no sleeps or polling.
//! - Find observations by name or kind ([`Capture::find`], [`Capture::find_kind`]), snapshot
//!   the redacted trees with insta ([`Capture::render`]), or match an expected tree with
//!   wildcards ([`Capture::assert`], [`expect`]). A failed expectation names the test and shows
//!   the expected and the actual trees.
//! - [`phoenix::Phoenix`] and [`mlflow::Mlflow`] start a real Arize Phoenix and a real MLflow
//!   tracking server on loopback for end-to-end tests, and [`weave::WeaveServer`] W&B Weave's
//!   own (SQLite) trace server.
//! - [`MockProvider`] is the in-memory provider underneath, usable with any queue; it can be
//!   scripted to fail, and it is registered as provider `mock`. [`Discard`] keeps nothing, for
//!   benches.
//!
//! ```
//! use ops_core::{Observation, ObservationKind, Trace, TraceId, TraceTask};
//! use ops_testkit::expect;
//!
//! let capture = ops_testkit::capture();
//! {
//!     let _guard = capture.enter();
//!     // What instrumented code does when a root finishes: hand the tree to the current queue.
//!     let mut trace = Trace::new(TraceId::generate(), ObservationKind::Workflow, "answer", chrono::Utc::now());
//!     let root = Observation::new(ObservationKind::Workflow, "answer");
//!     let mut llm = Observation::new(ObservationKind::Generation, "llm");
//!     llm.parent_id = Some(root.id);
//!     llm.model = Some("gpt-4o-mini".into());
//!     trace.observations = vec![root, llm];
//!     let queue = ops_core::current_queue().expect("the capture is the default here");
//!     queue.add_trace_task(TraceTask::from_trace(trace))?;
//! }
//!
//! capture.assert(
//!     expect::trace().name("answer").root(
//!         expect::observation("answer")
//!             .child(expect::observation("llm").kind(ObservationKind::Generation).model("gpt-4o-mini")),
//!     ),
//! );
//! assert_eq!(
//!     capture.render(),
//!     "trace answer [workflow] {}\n    answer [workflow] {}\n        llm [generation] {model=gpt-4o-mini}\n"
//! );
//! assert_eq!(capture.find_kind(ObservationKind::Generation).len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod capture;
mod discard;
mod e2e;
pub mod expect;
pub mod fake_server;
pub mod mlflow;
mod mock;
pub mod phoenix;
pub mod weave;

use std::sync::Arc;

use ops_core::Trace;
use ops_core::model::RenderOptions;

pub use capture::{Capture, FLUSH_TIMEOUT, Orphans, Render, VOLATILE, capture, capture_with};
pub use discard::Discard;
pub use expect::{ExpectedObservation, ExpectedTrace};
pub use mock::{CHANNEL_KEY, DEFAULT_CHANNEL, MOCK_PROVIDER, MockProvider};

/// Renders `traces` as redacted trees (`name [kind] {key fields}`, children indented, no ids or
/// times), sorted by their text so the output does not depend on delivery order. The format of
/// [`Capture::render`], for insta snapshots. Each trace is rendered as given: pass
/// [`MockProvider::merged_traces`] to see parts of one trace joined.
pub fn render(traces: &[Arc<Trace>]) -> String {
    let mut trees: Vec<String> = traces
        .iter()
        .map(|t| t.render_tree(RenderOptions::redacted()))
        .collect();
    trees.sort();
    trees.concat()
}

/// The name failure messages start with: the current thread's, which libtest sets to the test's
/// name.
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed thread>")
        .to_owned()
}
