//! The worker thread: drains the queue into per-provider lanes and runs each lane's export and
//! retry loop on a runtime of its own.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::stats::{DropReason, ProviderStats};
use super::{Queued, Shared};
use crate::model::Trace;
use crate::provider::{ExportOutcome, Provider};
use crate::router::ProviderRouter;
use crate::spool::{FsyncPolicy, SpoolPos};
use crate::task::TraceTask;

/// A trace waiting in a lane, with where it is spooled.
struct LaneItem {
    trace: Arc<Trace>,
    pos: Option<SpoolPos>,
    /// Shared by every lane the trace went to: the queue's byte budget covers the trace
    /// until the last lane is done with it, so a backend that is down cannot grow memory
    /// past `max_bytes`.
    _budget: Arc<Budget>,
}

/// Bytes of one trace counted against the queue's `max_bytes`, released when dropped.
struct Budget {
    size: usize,
    shared: Arc<Shared>,
}

impl Drop for Budget {
    fn drop(&mut self) {
        self.shared.release_bytes(self.size);
    }
}

/// Unique lane names, in provider order: the spool acknowledges records per name.
pub(crate) fn lane_names(providers: &[Box<dyn Provider>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(providers.len());
    for p in providers {
        let base = p.name().to_owned();
        let mut name = base.clone();
        let mut n = 1;
        while names.contains(&name) {
            n += 1;
            name = format!("{base}#{n}");
        }
        names.push(name);
    }
    names
}

pub(crate) enum Control {
    Flush {
        reply: mpsc::SyncSender<()>,
        deadline: Instant,
    },
    Shutdown {
        reply: mpsc::SyncSender<()>,
        deadline: Instant,
    },
}

pub(crate) struct LaneShared {
    name: String,
    buffer: Mutex<VecDeque<LaneItem>>,
    wake: Notify,
    in_flight: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
    closing: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    failures: AtomicU32,
    open_until: Mutex<Option<Instant>>,
}

impl LaneShared {
    pub(crate) fn pending(&self) -> u64 {
        self.buffer.lock().expect("lane lock").len() as u64 + self.in_flight.load(Relaxed)
    }

    pub(crate) fn stats(&self) -> ProviderStats {
        ProviderStats {
            name: self.name.clone(),
            exported: self.exported.load(Relaxed),
            failed: self.failed.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            pending: self.pending(),
            last_error: self.last_error.lock().expect("lane lock").clone(),
            circuit_open: self.open_until().is_some_and(|t| t > Instant::now()),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().expect("lane lock")
    }

    fn open_until(&self) -> Option<Instant> {
        *self.open_until.lock().expect("lane lock")
    }

    fn succeeded(&self) {
        self.failures.store(0, Relaxed);
        *self.open_until.lock().expect("lane lock") = None;
    }

    /// Counts a failed attempt; opens the circuit at the threshold. Returns the time it stays
    /// open, when it just opened or is open.
    fn failed_attempt(&self, threshold: u32, cooldown: Duration) -> Option<Instant> {
        let failures = self.failures.fetch_add(1, Relaxed) + 1;
        if failures < threshold.max(1) {
            return None;
        }
        let until = Instant::now() + cooldown;
        let was_closed = self
            .open_until
            .lock()
            .expect("lane lock")
            .replace(until)
            .is_none();
        if was_closed {
            tracing::warn!(
                provider = %self.name,
                failures,
                cooldown = ?cooldown,
                "ops: provider keeps failing; its circuit is open and it is tried again after the cooldown"
            );
        }
        Some(until)
    }
}

impl LaneShared {
    fn new(name: String) -> Arc<Self> {
        Arc::new(LaneShared {
            name,
            buffer: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            in_flight: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
            closing: AtomicBool::new(false),
            deadline: Mutex::new(None),
            failures: AtomicU32::new(0),
            open_until: Mutex::new(None),
        })
    }
}

/// A running lane: its shared state and its task.
struct Lane {
    shared: Arc<LaneShared>,
    task: tokio::task::JoinHandle<()>,
    /// When a drain last routed a trace to it (routed lanes retire when idle long enough).
    last_routed: Instant,
}

/// The worker's lanes: the fixed providers', and the routed ones by instance key.
struct Lanes {
    fixed: Vec<Lane>,
    routed: HashMap<String, Lane>,
}

impl Lanes {
    fn all(&self) -> impl Iterator<Item = &Lane> {
        self.fixed.iter().chain(self.routed.values())
    }

    fn publish(&self, shared: &Shared) {
        *shared.lanes.lock().expect("lanes lock") =
            self.all().map(|l| Arc::clone(&l.shared)).collect();
    }
}

fn start_lane(shared: &Arc<Shared>, name: String, provider: Box<dyn Provider>) -> Lane {
    let lane = LaneShared::new(name);
    let task = tokio::spawn(lane_loop(Arc::clone(shared), Arc::clone(&lane), provider));
    Lane {
        shared: lane,
        task,
        last_routed: Instant::now(),
    }
}

pub(crate) fn spawn(
    shared: Arc<Shared>,
    providers: Vec<Box<dyn Provider>>,
) -> std::io::Result<(
    tokio::sync::mpsc::UnboundedSender<Control>,
    std::thread::JoinHandle<()>,
)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let names = lane_names(&providers);
    // Publish the fixed lanes' names now so stats name them before the worker starts.
    *shared.lanes.lock().expect("lanes lock") =
        names.iter().cloned().map(LaneShared::new).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("ops-trace-worker")
        .build()?;
    let thread = std::thread::Builder::new()
        .name("ops-trace-worker".into())
        .spawn(move || {
            crate::__private::suppress_current_thread();
            runtime.block_on(async move {
                let published = shared.lanes.lock().expect("lanes lock").clone();
                let fixed = published
                    .into_iter()
                    .zip(providers)
                    .map(|(lane, provider)| {
                        let task = tokio::spawn(lane_loop(
                            Arc::clone(&shared),
                            Arc::clone(&lane),
                            provider,
                        ));
                        Lane {
                            shared: lane,
                            task,
                            last_routed: Instant::now(),
                        }
                    })
                    .collect();
                let lanes = Lanes {
                    fixed,
                    routed: HashMap::new(),
                };
                run(shared, lanes, rx).await;
            });
        })?;
    Ok((tx, thread))
}

async fn run(
    shared: Arc<Shared>,
    mut lanes: Lanes,
    mut control: tokio::sync::mpsc::UnboundedReceiver<Control>,
) {
    let mut tick = tokio::time::interval(shared.config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sync_tick = match shared.spool.as_ref().map(|s| s.config().fsync) {
        Some(FsyncPolicy::Interval(every)) if !every.is_zero() => {
            Some(tokio::time::interval(every))
        }
        _ => None,
    };
    loop {
        let sync_due = async {
            match sync_tick.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sync_due => {
                if let Some(spool) = &shared.spool {
                    spool.sync_now();
                }
            }
            () = shared.wake.notified() => {
                shared.take_wake();
                drain(&shared, &mut lanes).await;
            }
            _ = tick.tick() => {
                drain(&shared, &mut lanes).await;
                retire_idle(&shared, &mut lanes);
            }
            message = control.recv() => match message {
                Some(Control::Flush { reply, deadline }) => {
                    drain(&shared, &mut lanes).await;
                    wait_idle(&shared, &lanes, deadline).await;
                    let _ = reply.send(());
                }
                Some(Control::Shutdown { reply, deadline }) => {
                    drain(&shared, &mut lanes).await;
                    wait_idle(&shared, &lanes, deadline).await;
                    let all: Vec<Lane> = lanes.fixed.drain(..).chain(lanes.routed.drain().map(|(_, l)| l)).collect();
                    for lane in &all {
                        *lane.shared.deadline.lock().expect("lane lock") = Some(deadline);
                        lane.shared.closing.store(true, Relaxed);
                        lane.shared.wake.notify_one();
                    }
                    let mut states = Vec::with_capacity(all.len());
                    for lane in all {
                        let left = deadline.saturating_duration_since(Instant::now());
                        let abort = lane.task.abort_handle();
                        if tokio::time::timeout(left + Duration::from_millis(10), lane.task).await.is_err() {
                            abort.abort();
                        }
                        states.push(lane.shared);
                    }
                    for lane in &states {
                        let rest = lane.pending();
                        if rest > 0 {
                            lane.buffer.lock().expect("lane lock").clear();
                            lane.in_flight.store(0, Relaxed);
                            lane.dropped.fetch_add(rest, Relaxed);
                            shared.counters.drop(DropReason::Shutdown, rest, "shutdown's timeout passed");
                        }
                    }
                    if let Some(spool) = &shared.spool {
                        spool.sync_now();
                    }
                    let _ = reply.send(());
                    return;
                }
                None => return,
            },
        }
    }
}

/// Shuts down routed lanes that are idle and were not routed to for the idle timeout.
fn retire_idle(shared: &Shared, lanes: &mut Lanes) {
    let timeout = shared.config.lane_idle_timeout;
    let before = lanes.routed.len();
    lanes.routed.retain(|_, lane| {
        let keep = lane.shared.pending() > 0 || lane.last_routed.elapsed() < timeout;
        if !keep {
            lane.shared.closing.store(true, Relaxed);
            lane.shared.wake.notify_one();
        }
        keep
    });
    if lanes.routed.len() != before {
        lanes.publish(shared);
    }
}

/// Where one trace goes.
struct Prepared {
    trace: Arc<Trace>,
    pos: Option<SpoolPos>,
    budget: Arc<Budget>,
    /// Lane names that must receive it.
    targets: Vec<String>,
}

/// Moves every queued task to the lanes, a batch at a time, until the queue is empty. Tasks
/// replayed from the spool go first. Routed apps get their lanes on first use.
async fn drain(shared: &Arc<Shared>, lanes: &mut Lanes) {
    let batch_size = shared.config.batch_size;
    let mut replay = std::mem::take(&mut *shared.replay.lock().expect("replay lock")).into_iter();
    let mut routes: HashMap<String, Vec<String>> = HashMap::new();
    let mut batch: Vec<Prepared> = Vec::with_capacity(batch_size.min(1024));
    loop {
        while batch.len() < batch_size {
            let Some(Queued { task, size, extra }) = replay.next().or_else(|| shared.queue.pop())
            else {
                break;
            };
            let super::QueuedExtra {
                pos,
                acked,
                user_id,
            } = extra.map(|e| *e).unwrap_or_default();
            let budget = Arc::new(Budget {
                size,
                shared: Arc::clone(shared),
            });
            let app_id = task.app_id().map(str::to_owned);
            let Some(trace) = prepare(shared, task, user_id) else {
                shared.resolve_everywhere(pos);
                continue;
            };
            let mut targets: Vec<String> =
                lanes.fixed.iter().map(|l| l.shared.name.clone()).collect();
            if let (Some(router), Some(app)) = (&shared.router, app_id) {
                if !routes.contains_key(&app) {
                    let keys = match router.route(&app).await {
                        Ok(keys) => keys,
                        Err(e) => {
                            tracing::warn!(app = %app, error = %e, "ops: routing failed");
                            shared.counters.drop(
                                DropReason::Unroutable,
                                1,
                                "the app's providers could not be resolved",
                            );
                            Vec::new()
                        }
                    };
                    routes.insert(app.clone(), keys);
                }
                for key in &routes[&app] {
                    if ensure_routed_lane(shared, lanes, router.as_ref(), key).await {
                        targets.push(key.clone());
                    }
                }
            }
            targets.retain(|t| !acked.contains(t));
            if let (Some(spool), Some(pos)) = (&shared.spool, pos) {
                spool.set_needed(pos, targets.len());
            }
            batch.push(Prepared {
                trace: Arc::new(trace),
                pos,
                budget,
                targets,
            });
        }
        if batch.is_empty() {
            return;
        }
        for lane in lanes.all() {
            let lane = &lane.shared;
            let mut buffer = lane.buffer.lock().expect("lane lock");
            let mut overflow = 0u64;
            let mut added = false;
            for p in batch.iter().filter(|p| p.targets.contains(&lane.name)) {
                if buffer.len() < shared.config.provider_backlog {
                    buffer.push_back(LaneItem {
                        trace: Arc::clone(&p.trace),
                        pos: p.pos,
                        _budget: Arc::clone(&p.budget),
                    });
                    added = true;
                } else {
                    overflow += 1;
                }
            }
            drop(buffer);
            if overflow > 0 {
                lane.dropped.fetch_add(overflow, Relaxed);
                shared.counters.drop(
                    DropReason::ProviderBacklog,
                    overflow,
                    "a provider's backlog is full (is it down or slow?)",
                );
            }
            if added {
                lane.wake.notify_one();
            }
        }
        batch.clear();
        // Let the lanes export before the next batch, so a backlog larger than a lane's
        // limit reaches a provider that keeps up instead of overflowing its buffer.
        tokio::task::yield_now().await;
    }
}

/// Preprocesses a task and applies the field limits; `None` (counted) when it cannot be used.
fn prepare(shared: &Shared, task: TraceTask, user_id: Option<String>) -> Option<Trace> {
    let trace_id = task.trace_id().clone();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.preprocess())) {
        Ok(Ok(mut trace)) => {
            if trace.attributes.user_id.is_none() {
                trace.attributes.user_id = user_id;
            }
            let cut = crate::limits::truncate_trace(&mut trace, &shared.config.field_limits)
                + crate::limits::sanitize_trace(&mut trace);
            shared.counters.truncated.fetch_add(cut as u64, Relaxed);
            Some(trace)
        }
        Ok(Err(e)) => {
            tracing::debug!(%trace_id, error = %e, "ops: task dropped");
            shared
                .counters
                .drop(DropReason::Invalid, 1, "a task could not be preprocessed");
            None
        }
        Err(_) => {
            shared
                .counters
                .drop(DropReason::Invalid, 1, "preprocessing a task panicked");
            None
        }
    }
}

/// Makes sure a lane serves the routed instance `key`, building its provider on first use.
/// Returns whether the lane exists.
async fn ensure_routed_lane(
    shared: &Arc<Shared>,
    lanes: &mut Lanes,
    router: &dyn ProviderRouter,
    key: &str,
) -> bool {
    if let Some(lane) = lanes.routed.get_mut(key) {
        lane.last_routed = Instant::now();
        return true;
    }
    match router.build(key).await {
        Ok(provider) => {
            lanes
                .routed
                .insert(key.to_owned(), start_lane(shared, key.to_owned(), provider));
            lanes.publish(shared);
            true
        }
        Err(e) => {
            tracing::warn!(key, error = %e, "ops: building a routed provider failed");
            shared.counters.drop(
                DropReason::Unroutable,
                1,
                "a routed provider could not be built",
            );
            false
        }
    }
}

async fn wait_idle(shared: &Shared, lanes: &Lanes, deadline: Instant) {
    loop {
        let idle = shared.idle.notified();
        tokio::pin!(idle);
        idle.as_mut().enable();
        if !lanes.all().any(|l| l.shared.pending() > 0) || Instant::now() >= deadline {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // A lane notifies when its buffer runs dry; the timeout bounds any missed signal.
        let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), idle).await;
    }
}

async fn lane_loop(shared: Arc<Shared>, lane: Arc<LaneShared>, mut provider: Box<dyn Provider>) {
    loop {
        let batch: Vec<LaneItem> = {
            let mut buffer = lane.buffer.lock().expect("lane lock");
            let n = buffer.len().min(shared.config.batch_size);
            lane.in_flight.store(n as u64, Relaxed);
            buffer.drain(..n).collect()
        };
        if batch.is_empty() {
            if lane.closing.load(Relaxed) {
                break;
            }
            lane.wake.notified().await;
            continue;
        }
        deliver(&shared, &lane, provider.as_mut(), batch).await;
        lane.in_flight.store(0, Relaxed);
        if lane.buffer.lock().expect("lane lock").is_empty() {
            shared.idle.notify_waiters();
        }
    }
    let left = lane.deadline().map_or(Duration::from_secs(1), |d| {
        d.saturating_duration_since(Instant::now())
    });
    let _ = tokio::time::timeout(left, provider.shutdown()).await;
}

fn observations(batch: &[Arc<Trace>]) -> u64 {
    batch.iter().map(|t| t.observations.len() as u64).sum()
}

/// Tells the spool that this lane is done with `items` (accepted or rejected for good).
fn resolve(shared: &Shared, lane: &LaneShared, items: &[LaneItem]) {
    if let Some(spool) = &shared.spool {
        let positions: Vec<SpoolPos> = items.iter().filter_map(|i| i.pos).collect();
        spool.resolve(&lane.name, &positions);
    }
}

async fn deliver(
    shared: &Shared,
    lane: &LaneShared,
    provider: &mut dyn Provider,
    mut items: Vec<LaneItem>,
) {
    let config = &shared.config;
    let mut attempt: u32 = 0;
    let started = Instant::now();
    loop {
        if let Some(until) = lane.open_until() {
            let wait = until.saturating_duration_since(Instant::now());
            if lane.deadline().is_some_and(|d| Instant::now() + wait > d) {
                let n = items.len() as u64;
                lane.dropped.fetch_add(n, Relaxed);
                shared
                    .counters
                    .drop(DropReason::Shutdown, n, "shutdown's timeout passed");
                return;
            }
            tokio::time::sleep(wait).await;
        }
        let batch: Vec<Arc<Trace>> = items.iter().map(|i| Arc::clone(&i.trace)).collect();
        let outcome =
            match tokio::time::timeout(config.export_timeout, provider.export(&batch)).await {
                Ok(outcome) => outcome,
                Err(_) => ExportOutcome::Retry {
                    after: None,
                    error: crate::provider::ExportError::new(
                        lane.name.clone(),
                        format!("export timed out after {:?}", config.export_timeout),
                    ),
                },
            };
        let (after, error) = match outcome {
            ExportOutcome::Delivered => {
                lane.succeeded();
                let n = batch.len() as u64;
                lane.exported.fetch_add(n, Relaxed);
                shared.counters.exported.fetch_add(n, Relaxed);
                shared
                    .counters
                    .exported_observations
                    .fetch_add(observations(&batch), Relaxed);
                resolve(shared, lane, &items);
                return;
            }
            ExportOutcome::Partial { failed, error } => {
                lane.succeeded();
                let mut retry = Vec::with_capacity(failed.len());
                let mut done = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    if failed.contains(&i) {
                        retry.push(item);
                    } else {
                        done.push(item);
                    }
                }
                let done_traces: Vec<Arc<Trace>> =
                    done.iter().map(|i| Arc::clone(&i.trace)).collect();
                let n = done.len() as u64;
                lane.exported.fetch_add(n, Relaxed);
                shared.counters.exported.fetch_add(n, Relaxed);
                shared
                    .counters
                    .exported_observations
                    .fetch_add(observations(&done_traces), Relaxed);
                resolve(shared, lane, &done);
                items = retry;
                lane.in_flight.store(items.len() as u64, Relaxed);
                if items.is_empty() {
                    return;
                }
                (None, error)
            }
            ExportOutcome::Retry { after, error } => (after, error),
            ExportOutcome::Fatal(error) => {
                lane.succeeded();
                let n = batch.len() as u64;
                lane.failed.fetch_add(n, Relaxed);
                shared.counters.failed.fetch_add(n, Relaxed);
                tracing::warn!(provider = %lane.name, error = %error, traces = n, "ops: export failed for good");
                *lane.last_error.lock().expect("lane lock") = Some(error.to_string());
                resolve(shared, lane, &items);
                return;
            }
        };
        *lane.last_error.lock().expect("lane lock") = Some(error.to_string());
        attempt += 1;
        let n = items.len() as u64;
        let circuit = lane.failed_attempt(config.breaker_threshold, config.breaker_cooldown);
        if attempt > config.max_retries || started.elapsed() >= config.max_retry_time {
            lane.dropped.fetch_add(n, Relaxed);
            shared
                .counters
                .drop(DropReason::RetriesExhausted, n, "a provider kept failing");
            return;
        }
        let backoff =
            after.unwrap_or_else(|| backoff(config.initial_backoff, config.max_backoff, attempt));
        let wait = circuit.map_or(backoff, |until| {
            backoff.max(until.saturating_duration_since(Instant::now()))
        });
        if lane.deadline().is_some_and(|d| Instant::now() + wait > d) {
            lane.dropped.fetch_add(n, Relaxed);
            shared
                .counters
                .drop(DropReason::Shutdown, n, "shutdown's timeout passed");
            return;
        }
        lane.retried.fetch_add(1, Relaxed);
        shared.counters.retried.fetch_add(1, Relaxed);
        tokio::time::sleep(wait).await;
    }
}

/// Exponential backoff with jitter: the `attempt`-th wait is drawn from the upper half of
/// `initial * 2^(attempt-1)`, capped at `max`, so retries of many lanes do not align.
fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let ceiling = initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max);
    ceiling.mul_f64(0.5 + fastrand::f64() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let b = |a| backoff(Duration::from_millis(100), Duration::from_secs(1), a);
        for _ in 0..100 {
            let within = |d: Duration, ceiling: u64| {
                d >= Duration::from_millis(ceiling / 2) && d <= Duration::from_millis(ceiling)
            };
            assert!(within(b(1), 100));
            assert!(within(b(2), 200));
            assert!(within(b(4), 800));
            assert!(within(b(5), 1000));
            assert!(within(b(60), 1000));
        }
        let draws: std::collections::HashSet<Duration> = (0..20).map(|_| b(3)).collect();
        assert!(draws.len() > 1, "waits are jittered");
    }
}
