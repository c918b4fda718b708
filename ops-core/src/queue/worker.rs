//! The worker thread: drains the queue (and what the spool keeps on disk) into per-provider
//! lanes, and runs each lane's export and retry loop.
//!
//! Isolation between providers:
//! - **I/O:** each lane is a task of its own; a slow or dead provider only holds its lane.
//! - **CPU:** an export (which encodes the batch) runs on a thread of the runtime's blocking
//!   pool, not on the worker's thread, so a batch that is costly to encode delays only its own
//!   provider.
//! - **Retries:** a failed batch waits for its retry beside the lane's newer batches, which go
//!   on meanwhile: nothing waits longer than one export behind a batch that keeps failing.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::receipt::Tracker;
use super::reclaim::{Husk, MAX_BYTES as MAX_HANDED_BACK};
use super::stats::{DropReason, ProviderStats};
use super::{Queued, QueuedExtra, Shared};
use crate::model::Trace;
use crate::provider::{ExportError, ExportOutcome, Provider};
use crate::router::ProviderRouter;
use crate::spool::{FsyncPolicy, SpoolPos};
use crate::task::TraceTask;

/// A trace waiting in a lane, with where it is spooled.
struct LaneItem {
    trace: Arc<Trace>,
    pos: Option<SpoolPos>,
    /// Told when this lane is done with it (a receipt's trace).
    tracker: Option<Arc<Tracker>>,
    /// Shared by every lane the trace went to: the queue's byte budget covers the trace
    /// until the last lane is done with it, so a backend that is down cannot grow memory
    /// past `max_bytes`.
    budget: Arc<Budget>,
}

/// Bytes of one trace counted against the queue's `max_bytes`, released when dropped.
struct Budget {
    size: usize,
    shared: Arc<Shared>,
    /// A trace the app built: handed back to be freed by the app's threads when every lane is
    /// done with it (see `reclaim.rs`).
    app_built: Option<Arc<Trace>>,
}

impl Drop for Budget {
    fn drop(&mut self) {
        match self.app_built.take() {
            Some(trace) => self.shared.give_back(Husk::Trace(trace), self.size),
            None => self.shared.release_bytes(self.size),
        }
        if self.shared.spool.as_ref().is_some_and(|s| s.has_waiting()) {
            // Room for what waits on disk.
            self.shared.wake_worker();
        }
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
    /// New traces, not tried yet.
    buffer: Mutex<VecDeque<LaneItem>>,
    wake: Notify,
    /// Traces in the lane: new, waiting for a retry, or in flight.
    pending: AtomicU64,
    /// Of those, the spooled ones: at shutdown they stay on disk for the next start.
    pending_spooled: AtomicU64,
    /// Set at shutdown's deadline: an export still running gives up and hands its batch back.
    cancelled: AtomicBool,
    cancel: Notify,
    exported: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
    closing: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    /// Consecutive failed attempts without server guidance.
    failures: AtomicU32,
    /// Until when the lane waits: its circuit is open, or the server asked to wait.
    paused_until: Mutex<Option<Pause>>,
}

#[derive(Clone, Copy)]
struct Pause {
    until: Instant,
    /// Whether it is the circuit breaker's (else the server's `Retry-After`).
    circuit: bool,
}

impl LaneShared {
    fn new(name: String) -> Arc<Self> {
        Arc::new(LaneShared {
            name,
            buffer: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            pending: AtomicU64::new(0),
            pending_spooled: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
            cancel: Notify::new(),
            exported: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
            closing: AtomicBool::new(false),
            deadline: Mutex::new(None),
            failures: AtomicU32::new(0),
            paused_until: Mutex::new(None),
        })
    }

    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Relaxed)
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
            circuit_open: self
                .pause()
                .is_some_and(|p| p.circuit && p.until > Instant::now()),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().expect("lane lock")
    }

    fn pause(&self) -> Option<Pause> {
        *self.paused_until.lock().expect("lane lock")
    }

    fn set_pause(&self, pause: Option<Pause>) {
        *self.paused_until.lock().expect("lane lock") = pause;
    }

    fn succeeded(&self) {
        self.failures.store(0, Relaxed);
        self.set_pause(None);
    }

    /// Counts a failed attempt without server guidance; opens the circuit at the threshold.
    fn failed_attempt(&self, threshold: u32, cooldown: Duration) {
        let failures = self.failures.fetch_add(1, Relaxed) + 1;
        if failures < threshold.max(1) {
            return;
        }
        let was_open = self.pause().is_some_and(|p| p.circuit);
        self.set_pause(Some(Pause {
            until: Instant::now() + cooldown,
            circuit: true,
        }));
        if !was_open {
            tracing::warn!(
                provider = %self.name,
                failures,
                cooldown = ?cooldown,
                "ops: provider keeps failing; its circuit is open and it is tried again after the cooldown"
            );
        }
    }

    /// The server told us when to come back: that beats the circuit breaker.
    fn server_asked_to_wait(&self, after: Duration) {
        self.failures.store(0, Relaxed);
        self.set_pause(Some(Pause {
            until: Instant::now() + after,
            circuit: false,
        }));
    }

    fn set_error(&self, error: &ExportError) {
        *self.last_error.lock().expect("lane lock") = Some(error.to_string());
    }

    /// Takes `items` out of the lane's counts: they were delivered or given up on.
    fn settled(&self, items: &[LaneItem]) {
        let spooled = items.iter().filter(|i| i.pos.is_some()).count() as u64;
        self.pending_spooled
            .fetch_sub(spooled.min(self.pending_spooled.load(Relaxed)), Relaxed);
        self.pending
            .fetch_sub((items.len() as u64).min(self.pending()), Relaxed);
    }

    /// Counts traces the lane gives up on (already taken out of its counts).
    fn count_dropped(&self, shared: &Shared, n: u64, reason: DropReason, context: &str) {
        if n == 0 || shared.abandoned.load(Relaxed) {
            return;
        }
        self.dropped.fetch_add(n, Relaxed);
        shared.counters.drop(reason, n, context);
    }

    /// Tells an export still running to give up (shutdown's deadline passed).
    fn cancel(&self) {
        self.cancelled.store(true, Relaxed);
        self.cancel.notify_waiters();
    }

    /// Completes once the lane is cancelled.
    async fn cancelled(&self) {
        loop {
            let notified = self.cancel.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.cancelled.load(Relaxed) {
                return;
            }
            notified.await;
        }
    }

    /// Shutdown gave up on the worker: what the lane holds is counted as dropped by the
    /// caller (spooled traces stay on disk for the next start); returns how many.
    pub(crate) fn abandon(&self) -> u64 {
        let spooled = self.pending_spooled.swap(0, Relaxed);
        let n = self.pending.swap(0, Relaxed).saturating_sub(spooled);
        self.dropped.fetch_add(n, Relaxed);
        n
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

fn start_lane(shared: &Arc<Shared>, lane: Arc<LaneShared>, provider: Box<dyn Provider>) -> Lane {
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
        // The blocking pool's threads run exports: never trace what they do.
        .on_thread_start(crate::__private::suppress_current_thread)
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
                    .map(|(lane, provider)| start_lane(&shared, lane, provider))
                    .collect();
                let lanes = Lanes {
                    fixed,
                    routed: HashMap::new(),
                };
                run(shared, lanes, rx).await;
            });
            // An export stuck in a provider must not keep the thread: leave it behind.
            runtime.shutdown_background();
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
    let mut enqueued_at_tick = u64::MAX;
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
                // fsync off this thread: lanes keep their I/O going meanwhile.
                let shared = Arc::clone(&shared);
                let _ = tokio::task::spawn_blocking(move || {
                    if let Some(spool) = &shared.spool {
                        spool.sync_now();
                    }
                })
                .await;
            }
            () = shared.wake.notified() => {
                shared.take_wake();
                drain(&shared, &mut lanes).await;
            }
            _ = tick.tick() => {
                let enqueued = shared.counters.enqueued.load(Relaxed);
                if enqueued == enqueued_at_tick {
                    // Nothing was enqueued for an interval: no app thread is about to free
                    // what waits (see `reclaim.rs`).
                    shared.free_all();
                }
                enqueued_at_tick = enqueued;
                drain(&shared, &mut lanes).await;
                retire_idle(&shared, &mut lanes);
            }
            message = control.recv() => match message {
                Some(Control::Flush { reply, deadline }) => {
                    settle(&shared, &mut lanes, deadline).await;
                    let _ = reply.send(());
                }
                Some(Control::Shutdown { reply, deadline }) => {
                    settle(&shared, &mut lanes, deadline).await;
                    shut_down(&shared, &mut lanes, deadline).await;
                    let _ = reply.send(());
                    return;
                }
                None => return,
            },
        }
    }
}

/// Drains and waits for the lanes to deliver, until nothing is pending (what the spool keeps
/// on disk included) or the deadline passes.
async fn settle(shared: &Arc<Shared>, lanes: &mut Lanes, deadline: Instant) {
    loop {
        drain(shared, lanes).await;
        wait_idle(shared, lanes, deadline).await;
        let waiting = shared.spool.as_ref().is_some_and(|s| s.has_waiting());
        let queued = !shared.queue.is_empty();
        if (!waiting && !queued) || Instant::now() >= deadline {
            return;
        }
    }
}

/// Tells every lane to finish by `deadline`, waits for them, and counts what is left.
async fn shut_down(shared: &Arc<Shared>, lanes: &mut Lanes, deadline: Instant) {
    let all: Vec<Lane> = lanes
        .fixed
        .drain(..)
        .chain(lanes.routed.drain().map(|(_, l)| l))
        .collect();
    for lane in &all {
        *lane.shared.deadline.lock().expect("lane lock") = Some(deadline);
        lane.shared.closing.store(true, Relaxed);
        lane.shared.wake.notify_one();
    }
    for mut lane in all {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, &mut lane.task).await.is_ok() {
            continue;
        }
        // An export still running: tell it to give its batch back.
        lane.shared.cancel();
        if tokio::time::timeout(Duration::from_millis(100), &mut lane.task)
            .await
            .is_ok()
        {
            continue;
        }
        // Stuck in an export that does not yield: what it holds is lost to this process,
        // except what the spool keeps for the next start.
        lane.task.abort();
        let l = &lane.shared;
        l.buffer.lock().expect("lane lock").clear();
        let spooled = l.pending_spooled.swap(0, Relaxed);
        let rest = l.pending.swap(0, Relaxed).saturating_sub(spooled);
        l.count_dropped(
            shared,
            rest,
            DropReason::Shutdown,
            "shutdown's timeout passed",
        );
    }
    if let Some(spool) = &shared.spool {
        spool.sync_now();
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
    tracker: Option<Arc<Tracker>>,
    budget: Arc<Budget>,
    /// Lane names that must receive it.
    targets: Vec<String>,
}

/// Moves every queued task to the lanes, a batch at a time, until the queue is empty. Tasks
/// the spool keeps on disk are read back first, as far as the byte budget has room. Routed
/// apps get their lanes on first use.
async fn drain(shared: &Arc<Shared>, lanes: &mut Lanes) {
    let batch_size = shared.config.batch_size;
    let mut routes: HashMap<String, Vec<String>> = HashMap::new();
    let mut batch: Vec<Prepared> = Vec::with_capacity(batch_size.min(1024));
    let mut replayed: VecDeque<Queued> = VecDeque::new();
    loop {
        if replayed.is_empty() {
            replayed = read_back(shared);
        }
        // Tasks taken from the queue stay counted in `items` until they reach the lanes, so
        // a shutdown that gives up on the worker meanwhile still counts them.
        let mut taken = 0;
        let mut tried = 0;
        while tried < batch_size {
            let queued = match replayed.pop_front() {
                Some(q) => q,
                None => match shared.queue.pop() {
                    Some(q) => {
                        taken += 1;
                        q
                    }
                    None => break,
                },
            };
            tried += 1;
            if let Some(p) = prepare(shared, lanes, &mut routes, queued).await {
                batch.push(p);
            }
        }
        if tried == 0 {
            return;
        }
        for lane in lanes.all() {
            let lane = &lane.shared;
            let mut buffer = lane.buffer.lock().expect("lane lock");
            let mut overflow = 0u64;
            let mut added = 0u64;
            let mut added_spooled = 0u64;
            for p in batch.iter().filter(|p| p.targets.contains(&lane.name)) {
                if buffer.len() < shared.config.provider_backlog {
                    buffer.push_back(LaneItem {
                        trace: Arc::clone(&p.trace),
                        pos: p.pos,
                        tracker: p.tracker.clone(),
                        budget: Arc::clone(&p.budget),
                    });
                    added += 1;
                    added_spooled += u64::from(p.pos.is_some());
                } else {
                    overflow += 1;
                    if let Some(tracker) = &p.tracker {
                        tracker.lane_done(false);
                    }
                    if let (Some(spool), Some(pos)) = (&shared.spool, p.pos) {
                        spool.resolve(&lane.name, &[pos]);
                    }
                }
            }
            drop(buffer);
            lane.pending.fetch_add(added, Relaxed);
            lane.pending_spooled.fetch_add(added_spooled, Relaxed);
            lane.count_dropped(
                shared,
                overflow,
                DropReason::ProviderBacklog,
                "a provider's backlog is full (is it down or slow?)",
            );
            if added > 0 {
                lane.wake.notify_one();
            }
        }
        batch.clear();
        shared.items.fetch_sub(taken, Relaxed);
        // Let the lanes export before the next batch, so a backlog larger than a lane's
        // limit reaches a provider that keeps up instead of overflowing its buffer.
        tokio::task::yield_now().await;
    }
}

/// Reads back from the spool what waits on disk, as far as the byte budget has room.
fn read_back(shared: &Arc<Shared>) -> VecDeque<Queued> {
    let Some(spool) = shared.spool.as_ref().filter(|s| s.has_waiting()) else {
        return VecDeque::new();
    };
    let used = shared.bytes.load(Relaxed);
    let room = shared.config.max_bytes.saturating_sub(used);
    if room == 0 && used != 0 {
        return VecDeque::new();
    }
    // Records are compact JSON; in memory a trace holds about twice its text.
    spool
        .take_replay(room / 2)
        .into_iter()
        .map(|r| {
            let size = r.task.approx_size() + super::PER_TRACE;
            shared.bytes.fetch_add(size, Relaxed);
            Queued {
                task: Box::new(r.task),
                size,
                extra: Some(Box::new(QueuedExtra {
                    pos: Some(r.pos),
                    acked: r.acked,
                    user_id: None,
                    tracker: None,
                })),
            }
        })
        .collect()
}

/// Builds a task's trace and finds its lanes; `None` (counted) when it cannot be used.
async fn prepare(
    shared: &Arc<Shared>,
    lanes: &mut Lanes,
    routes: &mut HashMap<String, Vec<String>>,
    queued: Queued,
) -> Option<Prepared> {
    let Queued { task, size, extra } = queued;
    let QueuedExtra {
        pos,
        acked,
        user_id,
        tracker,
    } = extra.map(|e| *e).unwrap_or_default();
    let app_id = task.app_id().map(str::to_owned);
    let built_by_app = task.is_built_by_app();
    let Some((mut trace, handed_back)) = finish(shared, task, size) else {
        shared.release_bytes(size);
        shared.resolve_everywhere(pos);
        if let Some(tracker) = &tracker {
            tracker.invalid();
        }
        return None;
    };
    if trace.attributes.user_id.is_none() && user_id.is_some() {
        Arc::make_mut(&mut trace).attributes.user_id = user_id;
    }
    // What the trace holds now it is built, in place of the estimate made when queued.
    let built = trace.approx_size() + super::PER_TRACE;
    // A task handed back to be freed still counts its own bytes until it is.
    shared.adjust_bytes(if handed_back { 0 } else { size }, built);
    let budget = Arc::new(Budget {
        size: built,
        shared: Arc::clone(shared),
        app_built: (built_by_app && built <= MAX_HANDED_BACK).then(|| Arc::clone(&trace)),
    });
    let mut targets: Vec<String> = lanes.fixed.iter().map(|l| l.shared.name.clone()).collect();
    if let (Some(router), Some(app)) = (&shared.router, app_id) {
        if !routes.contains_key(&app) {
            let keys = match router.route(&app).await {
                Ok(keys) => keys,
                Err(e) => {
                    tracing::warn!(app = %app, error = %e, "ops: routing failed");
                    if let Some(tracker) = &tracker {
                        tracker.unroutable();
                    }
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
            } else if let Some(tracker) = &tracker {
                tracker.unroutable();
            }
        }
    }
    targets.retain(|t| !acked.contains(t));
    if let (Some(spool), Some(pos)) = (&shared.spool, pos) {
        spool.set_needed(pos, targets.len());
    }
    if let Some(tracker) = &tracker {
        tracker.set_needed(targets.len());
    }
    Some(Prepared {
        trace,
        pos,
        tracker,
        budget,
        targets,
    })
}

/// Builds, masks and limits a task's trace; `None` (counted) when it cannot be used. A task
/// the app's thread filled (recorded or a Dify-style run) is built without freeing what it
/// holds and handed back, with its `size`, to be freed by the app's threads (see
/// `reclaim.rs`); the flag says so.
fn finish(shared: &Shared, mut task: Box<TraceTask>, size: usize) -> Option<(Arc<Trace>, bool)> {
    let trace_id = task.trace_id().clone();
    let limits = shared.config.field_limits;
    let built = catch_unwind(AssertUnwindSafe(|| {
        // A task too large to hand back is built by moving out of it: a copy would hold its
        // values twice for a moment.
        let kept = if size <= MAX_HANDED_BACK {
            task.finish_kept(&limits)
        } else {
            None
        };
        match kept {
            Some(built) => {
                shared.give_back(Husk::Task(task), size);
                Ok((built, true))
            }
            None => (*task).finish_shared(&limits).map(|built| (built, false)),
        }
    }));
    match built {
        Ok(Ok(((trace, cuts), handed_back))) => {
            if cuts > 0 {
                shared.counters.truncated.fetch_add(cuts as u64, Relaxed);
            }
            Some((trace, handed_back))
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
            let lane = start_lane(shared, LaneShared::new(key.to_owned()), provider);
            lanes.routed.insert(key.to_owned(), lane);
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
        // A lane notifies when it runs out of work; the timeout bounds any missed signal.
        let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), idle).await;
    }
}

/// A batch of one lane, with its retry state.
struct Batch {
    items: Vec<LaneItem>,
    /// Failed attempts so far.
    attempts: u32,
    /// Failed attempts in a row answered with a server error (5xx).
    server_errors: u32,
    /// When it was first tried, and the lane's paused time then (pauses are not counted
    /// against the retry time).
    first_try: Option<(Instant, Duration)>,
    /// When it may be tried again.
    due: Instant,
}

impl Batch {
    fn new(items: Vec<LaneItem>) -> Self {
        Batch {
            items,
            attempts: 0,
            server_errors: 0,
            first_try: None,
            due: Instant::now(),
        }
    }

    fn traces(&self) -> Vec<Arc<Trace>> {
        self.items.iter().map(|i| Arc::clone(&i.trace)).collect()
    }

    fn positions(&self) -> Vec<SpoolPos> {
        self.items.iter().filter_map(|i| i.pos).collect()
    }
}

/// What a lane's loop keeps between attempts.
struct LaneRun {
    shared: Arc<Shared>,
    lane: Arc<LaneShared>,
    /// `None` while an export holds it.
    provider: Option<Box<dyn Provider>>,
    /// Failed batches waiting for their retry.
    waiting: Vec<Batch>,
    /// Time spent paused (circuit open, or a server's `Retry-After`), in all.
    paused: Duration,
}

async fn lane_loop(shared: Arc<Shared>, lane: Arc<LaneShared>, provider: Box<dyn Provider>) {
    let mut run = LaneRun {
        shared,
        lane,
        provider: Some(provider),
        waiting: Vec::new(),
        paused: Duration::ZERO,
    };
    loop {
        if run.closing_and_late() {
            break;
        }
        if let Some(pause) = run.lane.pause()
            && pause.until > Instant::now()
        {
            run.wait_out(pause).await;
            continue;
        }
        match run.next_batch() {
            Some(batch) => run.attempt(batch).await,
            None => {
                if run.lane.closing.load(Relaxed) && run.waiting.is_empty() {
                    break;
                }
                run.idle().await;
            }
        }
    }
    run.give_up_rest();
    if let Some(mut provider) = run.provider.take() {
        let left = run.lane.deadline().map_or(Duration::from_secs(1), |d| {
            d.saturating_duration_since(Instant::now())
        });
        let _ = tokio::time::timeout(left, provider.shutdown()).await;
    }
}

impl LaneRun {
    fn config(&self) -> &super::QueueConfig {
        &self.shared.config
    }

    /// Whether the lane is shutting down and its deadline has passed.
    fn closing_and_late(&self) -> bool {
        self.lane.closing.load(Relaxed) && self.lane.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Waits while the lane is paused (until the pause ends, shutdown's deadline, or a wake
    /// for shutdown); the time is not counted against batches' retry time.
    async fn wait_out(&mut self, pause: Pause) {
        let until = match self.lane.deadline() {
            Some(d) => pause.until.min(d),
            None => pause.until,
        };
        let started = Instant::now();
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => {}
            () = self.lane.wake.notified(), if !self.lane.closing.load(Relaxed) => {}
        }
        self.paused += started.elapsed();
    }

    /// The next batch to try: a failed one whose retry is due, else new traces.
    fn next_batch(&mut self) -> Option<Batch> {
        let now = Instant::now();
        if let Some(i) = self
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, b)| b.due <= now)
            .min_by_key(|(_, b)| b.due)
            .map(|(i, _)| i)
        {
            return Some(self.waiting.swap_remove(i));
        }
        let mut buffer = self.lane.buffer.lock().expect("lane lock");
        let mut items = Vec::new();
        let mut bytes = 0;
        while items.len() < self.config().batch_size {
            let Some(front) = buffer.front() else { break };
            let size = front.budget.size;
            if !items.is_empty() && bytes + size > self.config().max_batch_bytes {
                break;
            }
            bytes += size;
            items.extend(buffer.pop_front());
        }
        (!items.is_empty()).then(|| Batch::new(items))
    }

    /// Waits for new traces, a retry coming due, or shutdown.
    async fn idle(&mut self) {
        if self.waiting.is_empty() && self.lane.buffer.lock().expect("lane lock").is_empty() {
            self.shared.idle.notify_waiters();
        }
        let due = self.waiting.iter().map(|b| b.due).min();
        let until = match (due, self.lane.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match until {
            Some(until) => {
                tokio::select! {
                    () = tokio::time::sleep_until(until.into()) => {}
                    () = self.lane.wake.notified() => {}
                }
            }
            None => self.lane.wake.notified().await,
        }
    }

    /// Runs the provider's export of `traces` on a blocking-pool thread, bounded by the
    /// export deadline; a panic in the provider is an error like any other. `None` when
    /// shutdown cancelled it: the batch was not delivered.
    async fn export(&mut self, traces: Vec<Arc<Trace>>) -> Option<ExportOutcome> {
        let Some(mut provider) = self.provider.take() else {
            return Some(ExportOutcome::retry(ExportError::new(
                self.lane.name.clone(),
                "the provider is still busy with an earlier export",
            )));
        };
        let deadline = provider
            .timeout()
            .map_or(self.config().export_timeout, |t| {
                t.saturating_add(Duration::from_secs(1))
                    .max(self.config().export_timeout)
            });
        let name = self.lane.name.clone();
        let lane = Arc::clone(&self.lane);
        let handle = tokio::runtime::Handle::current();
        let job = tokio::task::spawn_blocking(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                handle.block_on(async {
                    tokio::select! {
                        r = tokio::time::timeout(deadline, provider.export(&traces)) => Some(r),
                        () = lane.cancelled() => None,
                    }
                })
            }));
            let outcome = match outcome {
                Ok(Some(Ok(outcome))) => Some(outcome),
                Ok(Some(Err(_))) => Some(ExportOutcome::retry(ExportError::new(
                    name,
                    format!("export timed out after {deadline:?}"),
                ))),
                Ok(None) => None,
                Err(_) => Some(ExportOutcome::retry(ExportError::new(
                    name,
                    "the export panicked",
                ))),
            };
            (provider, outcome)
        });
        match job.await {
            Ok((provider, outcome)) => {
                self.provider = Some(provider);
                outcome
            }
            Err(e) => Some(ExportOutcome::fatal(ExportError::new(
                self.lane.name.clone(),
                format!("the export could not run: {e}"),
            ))),
        }
    }

    async fn attempt(&mut self, mut batch: Batch) {
        if batch.first_try.is_none() {
            batch.first_try = Some((Instant::now(), self.paused));
        }
        let Some(outcome) = self.export(batch.traces()).await else {
            // Cancelled at shutdown: it goes back to wait, and is counted with the rest.
            self.waiting.push(batch);
            return;
        };
        match outcome {
            ExportOutcome::Delivered => {
                self.lane.succeeded();
                self.delivered(&batch.items);
            }
            ExportOutcome::Partial { failed, error } => {
                self.lane.succeeded();
                self.lane.set_error(&error);
                let (retry, done): (Vec<_>, Vec<_>) = batch
                    .items
                    .into_iter()
                    .enumerate()
                    .partition(|(i, _)| failed.contains(i));
                let done: Vec<LaneItem> = done.into_iter().map(|(_, item)| item).collect();
                self.delivered(&done);
                batch.items = retry.into_iter().map(|(_, item)| item).collect();
                if !batch.items.is_empty() {
                    self.retry_later(batch, None);
                }
            }
            ExportOutcome::Retry { after, error } => {
                self.lane.set_error(&error);
                match after {
                    Some(after) => self.lane.server_asked_to_wait(after),
                    None => self.lane.failed_attempt(
                        self.config().breaker_threshold,
                        self.config().breaker_cooldown,
                    ),
                }
                if error.is_server_error() {
                    batch.server_errors += 1;
                } else {
                    batch.server_errors = 0;
                }
                self.retry_later(batch, after);
            }
            ExportOutcome::Fatal(error) if error.is_server_error() && batch.items.len() > 1 => {
                // A server error on a batch of several traces may be one trace's doing: the
                // halves are tried apart, down to single traces, which then fail for good.
                self.lane.set_error(&error);
                let second = batch.items.split_off(batch.items.len() / 2);
                batch.due = Instant::now();
                self.waiting.push(Batch {
                    items: second,
                    attempts: batch.attempts,
                    server_errors: 0,
                    first_try: batch.first_try,
                    due: batch.due,
                });
                self.waiting.push(batch);
            }
            ExportOutcome::Fatal(error) => {
                self.lane.succeeded();
                self.lane.set_error(&error);
                let n = batch.items.len() as u64;
                tracing::warn!(provider = %self.lane.name, error = %error, traces = n, "ops: export failed for good");
                self.lane.settled(&batch.items);
                tell(&batch.items, false);
                if !self.shared.abandoned.load(Relaxed) {
                    self.lane.failed.fetch_add(n, Relaxed);
                    self.shared.counters.failed.fetch_add(n, Relaxed);
                }
                self.resolve(&batch.positions());
            }
        }
        if self.lane.pending() == 0 {
            self.shared.idle.notify_waiters();
        }
    }

    fn delivered(&self, items: &[LaneItem]) {
        let n = items.len() as u64;
        self.lane.settled(items);
        tell(items, true);
        if !self.shared.abandoned.load(Relaxed) {
            self.lane.exported.fetch_add(n, Relaxed);
            self.shared.counters.exported.fetch_add(n, Relaxed);
            let observations: u64 = items
                .iter()
                .map(|i| i.trace.observations.len() as u64)
                .sum();
            self.shared
                .counters
                .exported_observations
                .fetch_add(observations, Relaxed);
        }
        let positions: Vec<SpoolPos> = items.iter().filter_map(|i| i.pos).collect();
        self.resolve(&positions);
    }

    /// Tells the spool this lane is done with `positions` (accepted or given up for good).
    fn resolve(&self, positions: &[SpoolPos]) {
        if let Some(spool) = &self.shared.spool {
            spool.resolve(&self.lane.name, positions);
        }
    }

    /// Puts a failed batch back to wait for its retry, or gives up on it when its retry
    /// budget is spent. A batch of several traces that the server keeps failing with 5xx is
    /// split in two, so one poisoned trace cannot sink its neighbours.
    fn retry_later(&mut self, mut batch: Batch, after: Option<Duration>) {
        batch.attempts += 1;
        let config = self.config();
        let (first, paused_then) = batch.first_try.unwrap_or((Instant::now(), self.paused));
        let spent = first
            .elapsed()
            .saturating_sub(self.paused.saturating_sub(paused_then));
        if batch.attempts > config.max_retries || spent >= config.max_retry_time {
            self.lane.settled(&batch.items);
            tell(&batch.items, false);
            self.lane.count_dropped(
                &self.shared,
                batch.items.len() as u64,
                DropReason::RetriesExhausted,
                "a provider kept failing",
            );
            self.resolve(&batch.positions());
            return;
        }
        if !self.shared.abandoned.load(Relaxed) {
            self.lane.retried.fetch_add(1, Relaxed);
            self.shared.counters.retried.fetch_add(1, Relaxed);
        }
        let wait = after
            .unwrap_or_else(|| backoff(config.initial_backoff, config.max_backoff, batch.attempts));
        batch.due = Instant::now() + wait;
        if batch.server_errors >= 2 && batch.items.len() > 1 {
            let second = batch.items.split_off(batch.items.len() / 2);
            self.waiting.push(Batch {
                items: second,
                attempts: batch.attempts,
                server_errors: 0,
                first_try: batch.first_try,
                due: batch.due,
            });
            batch.server_errors = 0;
        }
        self.waiting.push(batch);
    }

    /// Counts what is left in the lane at shutdown. Spooled traces are kept on disk for the
    /// next start (not counted); the rest are dropped.
    fn give_up_rest(&mut self) {
        let mut items: Vec<LaneItem> = self
            .lane
            .buffer
            .lock()
            .expect("lane lock")
            .drain(..)
            .collect();
        for b in self.waiting.drain(..) {
            items.extend(b.items);
        }
        let kept = items.iter().filter(|i| i.pos.is_some()).count() as u64;
        let lost = items.len() as u64 - kept;
        self.lane.settled(&items);
        self.lane.count_dropped(
            &self.shared,
            lost,
            DropReason::Shutdown,
            "shutdown's timeout passed",
        );
    }
}

/// Tells the receipts of `items` that this lane is done with them.
fn tell(items: &[LaneItem], delivered: bool) {
    for tracker in items.iter().filter_map(|i| i.tracker.as_ref()) {
        tracker.lane_done(delivered);
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
