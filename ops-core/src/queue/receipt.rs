//! Receipts: whoever queued a trace with [`crate::AppTraceQueue::add_with_receipt`] learns when
//! every provider it was routed to is done with it. A delivery tier (ops-redis) acknowledges
//! its source only then.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

/// What became of a trace once every provider it was routed to was done with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resolution {
    /// Providers that accepted it.
    pub delivered: u32,
    /// Providers that gave up on it for good (a fatal answer, retries exhausted, a full
    /// backlog), each counted in the queue's stats with its reason.
    pub failed: u32,
    /// Whether routing failed for it: the router erred, or a routed provider could not be
    /// built. The providers that were found still count in `delivered` and `failed`.
    pub unroutable: bool,
    /// Whether the task could not be built (counted as [`crate::DropReason::Invalid`]).
    pub invalid: bool,
}

/// Resolves to the trace's [`Resolution`] once every provider it was routed to is done with
/// it, or to `None` when the queue shut down (or gave up waiting) before that: the trace may
/// or may not have been delivered then.
#[derive(Debug)]
#[must_use = "a receipt does nothing unless awaited"]
pub struct Receipt {
    rx: oneshot::Receiver<Resolution>,
}

impl Receipt {
    /// A receipt that is already resolved (tracing is off for the app: no provider needed it).
    pub(crate) fn ready(resolution: Resolution) -> Self {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(resolution);
        Self { rx }
    }
}

impl Future for Receipt {
    type Output = Option<Resolution>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(Result::ok)
    }
}

/// The queue's side of a [`Receipt`]: shared by the lanes a trace went to, it sends the
/// resolution when the last one is done. Dropped unresolved (shutdown), the receipt gets
/// `None`.
#[derive(Debug)]
pub(crate) struct Tracker {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tx: Option<oneshot::Sender<Resolution>>,
    /// How many lanes must resolve it; `None` until it is routed.
    needed: Option<u32>,
    resolution: Resolution,
}

impl Tracker {
    /// A tracker and the receipt it resolves.
    pub(crate) fn new() -> (Self, Receipt) {
        let (tx, rx) = oneshot::channel();
        let tracker = Tracker {
            state: Mutex::new(State {
                tx: Some(tx),
                needed: None,
                resolution: Resolution::default(),
            }),
        };
        (tracker, Receipt { rx })
    }

    /// It goes to `lanes` lanes; with none, it is resolved now.
    pub(crate) fn set_needed(&self, lanes: usize) {
        self.update(|s| s.needed = Some(u32::try_from(lanes).unwrap_or(u32::MAX)));
    }

    /// One lane is done with it: accepted (`delivered`) or given up for good.
    pub(crate) fn lane_done(&self, delivered: bool) {
        self.update(|s| {
            if delivered {
                s.resolution.delivered += 1;
            } else {
                s.resolution.failed += 1;
            }
        });
    }

    /// Routing failed for it.
    pub(crate) fn unroutable(&self) {
        self.update(|s| s.resolution.unroutable = true);
    }

    /// It could not be built: no lane will see it.
    pub(crate) fn invalid(&self) {
        self.update(|s| {
            s.resolution.invalid = true;
            s.needed = Some(0);
        });
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut state);
        let done = state.resolution.delivered + state.resolution.failed;
        if state.needed.is_some_and(|n| done >= n)
            && let Some(tx) = state.tx.take()
        {
            let _ = tx.send(state.resolution);
        }
    }
}
