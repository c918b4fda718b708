//! [`Capture`]: a private queue and mock provider that a test installs as its default.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_core::model::RenderOptions;
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
    /// [`ops_core::context::orphaned_calls`] when the capture was made.
    orphans_from: u64,
    /// Keeps the test's name in [`LIVE`] while a clone of the capture lives.
    _live: Arc<LiveName>,
}

/// The test names of the captures alive in the process, with how many captures each has: an
/// orphaned call on a thread named after one of them belongs to that test.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A test name listed in [`LIVE`] until dropped.
#[derive(Debug)]
struct LiveName(String);

impl LiveName {
    fn new(name: &str) -> Self {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.to_owned());
        Self(name.to_owned())
    }
}

impl Drop for LiveName {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = live.iter().position(|n| *n == self.0) {
            live.swap_remove(i);
        }
    }
}

/// What value replaces a volatile one in [`Capture::render_with`].
pub const VOLATILE: &str = "[volatile]";

/// How [`Capture::render_with`] renders: [`Capture::render`]'s redacted tree, optionally with
/// inputs and outputs, and with the values of volatile keys replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Render {
    io: bool,
    volatile: Vec<String>,
}

impl Render {
    /// [`Capture::render`]'s output: names, kinds and key fields, no ids or times.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also shows each observation's input and output, shortened to 60 characters.
    #[must_use]
    pub fn with_io(mut self) -> Self {
        self.io = true;
        self
    }

    /// Replaces the value of every object key named `key` (at any depth, exact match) in
    /// inputs and outputs with [`VOLATILE`]: for ids, timestamps and other values that change
    /// between runs.
    #[must_use]
    pub fn volatile(mut self, key: impl Into<String>) -> Self {
        self.volatile.push(key.into());
        self
    }

    /// Replaces the volatile values in `value`, without recursion.
    fn scrub(&self, value: &mut serde_json::Value) {
        if self.volatile.is_empty() {
            return;
        }
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map.iter_mut() {
                        if self.volatile.iter().any(|key| key == k) {
                            *v = serde_json::Value::String(VOLATILE.to_owned());
                        } else {
                            stack.push(v);
                        }
                    }
                }
                serde_json::Value::Array(items) => stack.extend(items.iter_mut()),
                _ => {}
            }
        }
    }
}

/// Traced calls that ran while a capture lived but reached no queue: they are in neither
/// [`Capture::traces`] nor `lost_observations`. See [`Capture::orphans`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Orphans {
    /// How many.
    pub count: usize,
    /// Their observation names, in the order they ran (repeated per call).
    pub names: Vec<&'static str>,
}

impl Orphans {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
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
            orphans_from: ops_core::context::orphaned_calls(),
            _live: Arc::new(LiveName::new(&test_name)),
            test_name: test_name.into(),
        }
    }

    /// Traced calls made since this capture was created that reached no queue: the sign of
    /// a task spawned with plain `tokio::spawn` (or a plain thread) inside
    /// [`Capture::scope`], which loses the capture and the trace context. Spawn with
    /// `ops_core::spawn` (or `spawn_blocking`, `spawn_thread`), or wrap the future with
    /// `.in_current_trace()`, and the call joins the trace.
    ///
    /// A call is counted for this capture when it ran on this test's thread (a
    /// `current_thread` runtime, the default of `#[tokio::test]`) or on a thread not named
    /// after another live capture's test (tokio's worker threads): with tests that spawn
    /// without the context running in parallel on multi-thread runtimes, one test may see
    /// another's.
    pub fn orphans(&self) -> Orphans {
        let live = LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let names: Vec<&'static str> = ops_core::context::orphans_after(self.orphans_from)
            .into_iter()
            .filter(|o| match o.thread.as_deref() {
                Some(t) if t == &*self.test_name => true,
                Some(t) => !live.iter().any(|n| n == t),
                None => true,
            })
            .map(|o| o.name)
            .collect();
        Orphans {
            count: names.len(),
            names,
        }
    }

    /// Passes if no traced call was orphaned (see [`Capture::orphans`]).
    ///
    /// # Panics
    /// If some were, with a message that starts with `[<test name>]`, counts and names them,
    /// and gives the fix.
    #[track_caller]
    pub fn assert_no_orphans(&self) {
        let orphans = self.orphans();
        if orphans.is_empty() {
            return;
        }
        panic!(
            "[{}] {} traced call(s) reached no queue: {}. They ran in a task or thread that \
             lost the trace context (plain tokio::spawn or std::thread::spawn); spawn them with \
             ops_core::spawn (or spawn_blocking, spawn_thread), or wrap the future with \
             .in_current_trace()",
            self.test_name,
            orphans.count,
            orphans.names.join(", ")
        );
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

    /// Every captured trace as a tree, rendered as `options` says: with
    /// [`Render::with_io`] each observation also shows its input and output (shortened to 60
    /// characters), and [`Render::volatile`] replaces the values of keys that change from run
    /// to run (ids, timestamps) with `"[volatile]"`, so the output can be snapshotted.
    ///
    /// ```
    /// #[ops_core::traced]
    /// fn fetch(id: u32) -> serde_json::Value {
    ///     serde_json::json!({"at": format!("2026-01-01T00:00:0{id}Z")})
    /// }
    /// let capture = ops_testkit::capture();
    /// capture.run(|| fetch(7));
    /// let tree = capture.render_with(ops_testkit::Render::new().with_io().volatile("at"));
    /// assert_eq!(
    ///     tree,
    ///     "trace fetch [span] {}\n    fetch [span] {input={\"id\":7}, output={\"at\":\"[volatile]\"}}\n"
    /// );
    /// ```
    pub fn render_with(&self, options: Render) -> String {
        let traces: Vec<Arc<Trace>> = self
            .traces()
            .iter()
            .map(|t| {
                let mut t = (**t).clone();
                for v in [&mut t.input, &mut t.output].into_iter().flatten() {
                    options.scrub(v);
                }
                for o in &mut t.observations {
                    for v in [&mut o.input, &mut o.output].into_iter().flatten() {
                        options.scrub(v);
                    }
                }
                Arc::new(t)
            })
            .collect();
        let mut render = RenderOptions::redacted();
        if options.io {
            render = render.with_io();
        }
        let mut trees: Vec<String> = traces.iter().map(|t| t.render_tree(render)).collect();
        trees.sort();
        trees.concat()
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
