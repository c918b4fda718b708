//! [`Capture`]: a private queue and mock provider that a test installs as its default.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_core::{DefaultGuard, Observation, ObservationKind, QueueConfig, Trace, TraceQueueManager};

use crate::expect::ExpectedTrace;
use crate::mock::MockProvider;

/// How long [`Capture::flush`] waits before it gives up and panics.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// A capture with its own queue and a fresh [`MockProvider`]: the entry point for tests.
///
/// The queue exports every 10 ms and retries after 1 ms (doubling up to 20 ms), so scripted
/// failures resolve quickly. Install it with [`Capture::enter`] (this thread),
/// [`Capture::scope`] (one future, on any thread) or [`Capture::run`]; traces emitted elsewhere
/// never reach it, so tests in one binary run in parallel without `#[serial]`.
pub fn capture() -> Capture {
    capture_with(MockProvider::new())
}

/// A capture that delivers to `mock`, for example a scripted one
/// ([`MockProvider::with_script`]) or a shared channel ([`MockProvider::channel`]).
pub fn capture_with(mock: MockProvider) -> Capture {
    Capture::with_config(mock, test_config())
}

fn test_config() -> QueueConfig {
    let mut config = QueueConfig::default();
    config.interval = Duration::from_millis(10);
    config.batch_size = 100;
    config.initial_backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(20);
    config.export_timeout = Duration::from_secs(10);
    config
}

/// Traces captured by one test: a [`TraceQueueManager`] of its own delivering to a
/// [`MockProvider`], plus finders, a tree renderer and tree assertions.
///
/// Reading methods ([`Capture::traces`], [`Capture::observations`], [`Capture::find`],
/// [`Capture::render`], [`Capture::assert`]) flush first, so everything emitted before the call
/// is visible without sleeping or polling. They read the traces merged by id
/// ([`MockProvider::merged_traces`]).
///
/// Cloning is cheap; clones share the queue and the mock. Failure messages start with
/// `[<test name>]`, the name of the thread that created the capture (libtest names each test's
/// thread after the test), as tracing-mock does.
#[derive(Debug, Clone)]
pub struct Capture {
    queue: TraceQueueManager,
    mock: MockProvider,
    test_name: Arc<str>,
}

impl Capture {
    /// A capture that delivers to `mock` through a queue built with `config`.
    ///
    /// # Panics
    /// If the queue cannot be built (an invalid setting in `config`, or the worker thread
    /// cannot start); the message says which.
    pub fn with_config(mock: MockProvider, config: QueueConfig) -> Self {
        let test_name = crate::test_name();
        let queue = TraceQueueManager::builder()
            .config(config)
            .provider(mock.clone())
            .build()
            .unwrap_or_else(|e| {
                panic!("[{test_name}] ops-testkit: cannot build the capture's queue: {e}")
            });
        Self {
            queue,
            mock,
            test_name: test_name.into(),
        }
    }

    /// Makes this capture's queue the default of the current thread until the guard is dropped.
    /// Use it in sync tests and on `current_thread` runtimes; on multi-thread runtimes use
    /// [`Capture::scope`], as a task may move between threads.
    pub fn enter(&self) -> DefaultGuard {
        ops_core::set_default(self.queue.clone())
    }

    /// Runs `fut` with this capture's queue as its default, on whatever thread polls it.
    ///
    /// The default does not follow into tasks `fut` spawns: wrap those in `scope` too (clone
    /// the capture).
    pub async fn scope<F: Future>(&self, fut: F) -> F::Output {
        ops_core::scope_default(self.queue.clone(), fut).await
    }

    /// Runs `f` with this capture's queue as the current thread's default.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        ops_core::with_default(self.queue.clone(), f)
    }

    /// The capture's queue, to enqueue into directly or to read its stats.
    pub fn queue(&self) -> &TraceQueueManager {
        &self.queue
    }

    /// The mock provider the queue delivers to.
    pub fn mock(&self) -> &MockProvider {
        &self.mock
    }

    /// The name failure messages start with.
    pub fn test_name(&self) -> &str {
        &self.test_name
    }

    /// Delivers everything queued before the call to the mock; when it returns, all of it is
    /// visible in [`Capture::mock`].
    ///
    /// # Panics
    /// If delivery takes longer than [`FLUSH_TIMEOUT`] (a provider that never answers, or a
    /// script that keeps asking for retries).
    pub fn flush(&self) {
        let start = Instant::now();
        let report = self.queue.flush(FLUSH_TIMEOUT);
        // A report can also say `timed_out` when other threads kept enqueueing during the
        // flush: what was queued before it is delivered all the same. Only a flush that really
        // ran out of time is a failure.
        if report.timed_out && start.elapsed() >= FLUSH_TIMEOUT {
            panic!(
                "[{}] ops-testkit: flush timed out after {FLUSH_TIMEOUT:?} with {} trace(s) still \
                 pending; is the provider stuck, or does its script keep asking for retries? \
                 Queue stats: {:?}",
                self.test_name,
                report.pending,
                self.queue.stats()
            );
        }
    }

    /// Flushes, then returns every captured trace, merged by id, in the order each id first
    /// arrived.
    pub fn traces(&self) -> Vec<Arc<Trace>> {
        self.flush();
        self.mock.merged_traces()
    }

    /// Flushes, then returns every observation of every captured trace.
    pub fn observations(&self) -> Vec<Observation> {
        self.traces()
            .iter()
            .flat_map(|t| t.observations.iter().cloned())
            .collect()
    }

    /// The first captured observation named `name`.
    pub fn find(&self, name: &str) -> Option<Observation> {
        self.observations().into_iter().find(|o| o.name == name)
    }

    /// Every captured observation of `kind`.
    pub fn find_kind(&self, kind: ObservationKind) -> Vec<Observation> {
        self.observations()
            .into_iter()
            .filter(|o| o.kind == kind)
            .collect()
    }

    /// Every captured trace as a redacted tree (`name [kind] {key fields}`, no ids or times),
    /// sorted so the output does not depend on delivery order: ready for
    /// `insta::assert_snapshot!`. See [`crate::render`].
    pub fn render(&self) -> String {
        crate::render(&self.traces())
    }

    /// Flushes and passes if any captured trace matches `expected`.
    ///
    /// # Panics
    /// If none does, with a message that starts with `[<test name>]` and shows the expected
    /// tree, every actual tree and why each one does not match.
    #[track_caller]
    pub fn assert(&self, expected: ExpectedTrace) {
        let traces = self.traces();
        if traces.iter().any(|t| expected.matches(t)) {
            return;
        }
        let traces: Vec<&Trace> = traces.iter().map(|t| &**t).collect();
        panic!(
            "{}",
            crate::expect::failure(&self.test_name, &expected, &traces)
        );
    }

    /// Flushes and passes if the captured traces, in arrival order, are exactly `expected`:
    /// one trace per expectation, in the same order, and no others. The ordered mode of
    /// tracing-mock's `only()` and `assert_finished()`; arrival order is the order traces were
    /// enqueued when they come from one thread.
    ///
    /// # Panics
    /// If the count or any position differs, with a message that starts with `[<test name>]`
    /// and shows every expected tree and every actual tree, in order.
    #[track_caller]
    pub fn assert_sequence(&self, expected: impl IntoIterator<Item = ExpectedTrace>) {
        let expected: Vec<ExpectedTrace> = expected.into_iter().collect();
        let traces = self.traces();
        let traces: Vec<&Trace> = traces.iter().map(|t| &**t).collect();
        if let Some(message) = crate::expect::sequence_failure(&self.test_name, &expected, &traces)
        {
            panic!("{message}");
        }
    }
}
