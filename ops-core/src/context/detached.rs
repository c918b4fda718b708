//! An observation whose life is not one call's: started, made current while some code runs
//! (any number of times, on any thread), updated, and ended when its owner says so. The bridge
//! from other instrumentation (the `ops-tracing` layer turns `tracing` spans into these).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{OnceLock, RwLock};

use super::current::{self, Current, ObservationContext};
use super::site::Site;
use super::span::{self, Span};
use super::update::ObservationUpdate;
use crate::model::ObservationKind;

/// An observation started and ended explicitly, as Langfuse's `start_observation()` and
/// `end()`: for instrumentation whose spans are not lexical, such as a `tracing` span that is
/// created, entered and exited many times (maybe on other threads), and closed later.
///
/// It is a child of the context it starts in; make it current with
/// [`DetachedObservation::context`] and [`ObservationContext::enter`] so `#[traced]` calls
/// (and other detached observations) made meanwhile become its children. Dropping it without
/// [`DetachedObservation::end`] records it as cancelled.
///
/// ```
/// use ops_core::ObservationKind;
/// use ops_core::context::DetachedObservation;
///
/// #[ops_core::traced]
/// fn step() {}
///
/// if let Some(mut llm) = DetachedObservation::start("llm", ObservationKind::Generation) {
///     llm.update(|o| {
///         o.model("gpt-4o-mini");
///     });
///     llm.context().in_scope(step); // `step` is a child of `llm`
///     llm.end();
/// }
/// ```
#[derive(Debug)]
pub struct DetachedObservation {
    span: Span,
}

impl DetachedObservation {
    /// Starts an observation named `name` as a child of the current context (a new trace's
    /// root when there is none). `None` when nothing is to be recorded: no queue installed
    /// and no trace alive, or this thread's calls are never traced. In a trace sampling left
    /// out it is started unsampled: its context makes calls under it unsampled too.
    ///
    /// Names are interned with their kind for the life of the process: pass names from a
    /// bounded set (such as `tracing` callsite names), not names built at run time; rename
    /// with [`ObservationUpdate::name`] instead.
    pub fn start(name: &'static str, kind: ObservationKind) -> Option<Self> {
        if !crate::global::is_enabled() || current::is_suppressed() {
            return None;
        }
        Self::begin(ObservationContext::current(), name, kind)
    }

    /// Starts an observation as a child of `parent` (a new trace's root when `parent` is
    /// [`ObservationContext::root`]). `None` as for [`DetachedObservation::start`].
    pub fn start_in(
        parent: &ObservationContext,
        name: &'static str,
        kind: ObservationKind,
    ) -> Option<Self> {
        if !crate::global::is_enabled() || current::is_suppressed() {
            return None;
        }
        Self::begin(parent.clone(), name, kind)
    }

    fn begin(
        parent: ObservationContext,
        name: &'static str,
        kind: ObservationKind,
    ) -> Option<Self> {
        let span = span::start(site(name, kind), Some(parent), None)?;
        Some(Self { span })
    }

    /// The observation's context: enter it ([`ObservationContext::enter`]) while code that
    /// belongs under it runs. In a trace sampling left out, an unsampled context.
    pub fn context(&self) -> ObservationContext {
        ObservationContext {
            current: self.span.own_context().unwrap_or(Current::None),
        }
    }

    /// Whether it is recorded: false in a trace sampling left out.
    pub fn is_recorded(&self) -> bool {
        self.span.is_active()
    }

    /// Changes its kind. The kind of the trace it roots stays the one it started with.
    pub fn set_kind(&mut self, kind: ObservationKind) {
        self.span.set_site(|name| site(name, kind));
    }

    /// Updates it: what is set here beats what was set before. Updates made from inside it
    /// with [`crate::update_current_observation`] beat these.
    pub fn update(&mut self, f: impl FnOnce(&mut ObservationUpdate)) {
        if let Some(active) = self.span.recording() {
            f(active.update_mut());
        }
    }

    /// Applies an update built beforehand, as [`DetachedObservation::update`] does (for
    /// example one built from fields read before the observation started).
    pub fn apply(&mut self, update: ObservationUpdate) {
        if let Some(active) = self.span.recording() {
            active.apply_update(update);
        }
    }

    /// Ends it now and hands it to its trace; ending a trace's root queues the trace.
    pub fn end(mut self) {
        self.span.finish();
    }
}

/// The `&'static Site` of a name and kind, made once per name (one for every kind at once):
/// looked up in the thread's cache, else in the process's, else made.
fn site(name: &'static str, kind: ObservationKind) -> &'static Site {
    type Sites = HashMap<(usize, usize), &'static [Site; KINDS], BuildHasherDefault<NameHasher>>;
    static SITES: OnceLock<RwLock<Sites>> = OnceLock::new();
    thread_local! {
        static CACHE: RefCell<Sites> = RefCell::default();
    }
    let key = (name.as_ptr().addr(), name.len());
    let index = kind as usize;
    if let Ok(Some(sites)) = CACHE.try_with(|c| c.borrow().get(&key).copied()) {
        return &sites[index];
    }
    let global = SITES.get_or_init(Default::default);
    let found = global
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .copied();
    let sites = found.unwrap_or_else(|| {
        *global
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert_with(|| {
                Box::leak(Box::new(ObservationKind::ALL.map(|k| Site::new(name, k))))
            })
    });
    let _ = CACHE.try_with(|c| c.borrow_mut().insert(key, sites));
    &sites[index]
}

const KINDS: usize = ObservationKind::ALL.len();

/// Hashes a name's address and length: they are already well spread.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_per_name_and_kind() {
        for kind in ObservationKind::ALL {
            let a = site("a", kind);
            assert_eq!((a.name, a.kind), ("a", kind));
            assert!(std::ptr::eq(a, site("a", kind)));
        }
        assert!(!std::ptr::eq(
            site("a", ObservationKind::Span),
            site("b", ObservationKind::Span)
        ));
    }
}
