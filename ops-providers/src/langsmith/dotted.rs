//! LangSmith's `dotted_order`: each run's path from its trace's root, as
//! `<start as %Y%m%dT%H%M%S%fZ><run id>` segments joined by `.`.
//!
//! LangSmith answers 400 when a child's segment has a timestamp earlier than its parent's
//! (Dify's issue #35972: clocks of different machines, or a child recorded before its parent
//! starts), when a child has a single segment, or when a root has more than one. So:
//! - a child's segment time is its start, **clamped to be at least its parent's segment
//!   time**; its dotted order is the parent's plus `.` plus its segment, so it starts with the
//!   parent's and sorts after it, whatever the clocks said;
//! - a run without a parent is a root: one segment, and its id is the trace id.
//!
//! A trace may arrive in several exports (`ops_core` delivers long traces in parts, children
//! first; Dify's moderation and tool records come before their message). [`DottedOrders`]
//! remembers the dotted order of the runs it resolved (bounded, oldest forgotten first) so a
//! later child finds its parent's, and holds runs whose parent it has not seen yet (bounded
//! in count, bytes and age) until the parent arrives. A held run whose parent never comes is
//! finally sent as a root of its own ([`Resolved::orphaned`]), which LangSmith accepts.
//!
//! A dotted order repeats the whole path, so its length grows with the depth: a run deeper
//! than [`MAX_DEPTH`] starts a new tree of its own (also marked [`Resolved::orphaned`]), which
//! keeps the size of a deep chain linear in its runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::native::clamp_time;

/// The deepest a run is placed under its root; a deeper one starts a new tree.
pub const MAX_DEPTH: u32 = 64;

/// One run to place: its id, its parent's id, its start, and what the caller keeps with it.
#[derive(Debug, Clone)]
pub struct Node<P> {
    /// The run id.
    pub id: Uuid,
    /// The parent run id, if it has a parent.
    pub parent: Option<Uuid>,
    /// When it started.
    pub start: DateTime<Utc>,
    /// Whether it has ended (a run posted open is patched when it ends).
    pub ended: bool,
    /// Roughly how many bytes the caller's payload takes (for the bound on held runs).
    pub size: usize,
    /// The caller's payload.
    pub payload: P,
}

/// How a resolved run is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A new run (`post.<id>`).
    Post,
    /// An update of a run posted before it ended (`patch.<id>`).
    Patch,
}

/// A placed run.
#[derive(Debug, Clone)]
pub struct Resolved<P> {
    /// The run id.
    pub id: Uuid,
    /// The parent run id as sent (`None` for a root).
    pub parent: Option<Uuid>,
    /// The trace id: the id of the root of its tree.
    pub trace_id: Uuid,
    /// The dotted order.
    pub dotted_order: String,
    /// Post or patch.
    pub op: Op,
    /// The parent it had, when it was sent as a root: its parent never arrived, or its tree
    /// was deeper than [`MAX_DEPTH`].
    pub orphaned: Option<Uuid>,
    /// The caller's payload.
    pub payload: P,
}

/// The limits of what [`DottedOrders`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Runs whose dotted order is remembered.
    pub known_runs: usize,
    /// Bytes of remembered dotted orders.
    pub known_bytes: usize,
    /// Runs held for a parent.
    pub held_runs: usize,
    /// Bytes of held runs' payloads.
    pub held_bytes: usize,
    /// How long a run is held for its parent.
    pub held_for: Duration,
}

impl Default for Limits {
    /// 100 000 runs or 32 MiB remembered; 10 000 runs or 64 MiB held, for 10 minutes.
    fn default() -> Self {
        Self {
            known_runs: 100_000,
            known_bytes: 32 << 20,
            held_runs: 10_000,
            held_bytes: 64 << 20,
            held_for: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone)]
struct Known {
    dotted: String,
    trace_id: Uuid,
    time: DateTime<Utc>,
    open: bool,
    /// 1 for a root.
    depth: u32,
}

#[derive(Debug)]
struct Held<P> {
    node: Node<P>,
    since: Instant,
}

/// The dotted-order state of one LangSmith provider (see the module docs).
#[derive(Debug)]
pub struct DottedOrders<P> {
    known: HashMap<Uuid, Known>,
    order: VecDeque<Uuid>,
    known_bytes: usize,
    held: Vec<Held<P>>,
    limits: Limits,
}

impl<P> Default for DottedOrders<P> {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// `t` as a dotted-order timestamp: `%Y%m%dT%H%M%S%6fZ` (microseconds).
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%S%6fZ").to_string()
}

/// A segment's time: the start in years 1970 to 9999, cut to microseconds.
fn segment_time(start: DateTime<Utc>) -> DateTime<Utc> {
    clamp_time(start).trunc_subsecs(6)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Unvisited,
    InProgress,
    Done,
    Unresolved,
}

impl<P> DottedOrders<P> {
    /// An empty state with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            known: HashMap::new(),
            order: VecDeque::new(),
            known_bytes: 0,
            held: Vec::new(),
            limits,
        }
    }

    /// How many runs are held for a parent.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// How many runs' dotted orders are remembered.
    pub fn known(&self) -> usize {
        self.known.len()
    }

    /// The remembered dotted order of run `id`.
    pub fn dotted_order_of(&self, id: Uuid) -> Option<&str> {
        self.known.get(&id).map(|k| k.dotted.as_str())
    }

    fn remember(&mut self, id: Uuid, known: Known) {
        self.known_bytes += known.dotted.len();
        match self.known.insert(id, known) {
            Some(old) => self.known_bytes -= old.dotted.len(),
            None => self.order.push_back(id),
        }
        while self.known.len() > self.limits.known_runs
            || self.known_bytes > self.limits.known_bytes
        {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(k) = self.known.remove(&oldest) {
                self.known_bytes -= k.dotted.len();
            }
        }
    }

    /// Places `nodes` (and any held run whose parent is now known), returning the placed
    /// runs; runs whose parent is unknown are held. `now` drives the age limit of held runs,
    /// which are placed as roots when they are too old or too many.
    pub fn resolve(&mut self, nodes: Vec<Node<P>>, now: Instant) -> Vec<Resolved<P>> {
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut work: Vec<(Node<P>, Instant)> = Vec::with_capacity(nodes.len());
        for n in nodes {
            if seen.insert(n.id) {
                work.push((n, now));
            }
        }
        for h in std::mem::take(&mut self.held) {
            // A re-sent run replaces its held copy.
            if seen.insert(h.node.id) {
                work.push((h.node, h.since));
            }
        }
        let (mut out, unresolved) = self.pass(work);
        let (forced, keep) = self.choose_forced(unresolved, now);
        for (node, _) in forced {
            let time = segment_time(node.start);
            let dotted = format!("{}{}", stamp(time), node.id);
            self.remember(
                node.id,
                Known {
                    dotted: dotted.clone(),
                    trace_id: node.id,
                    time,
                    open: !node.ended,
                    depth: 1,
                },
            );
            out.push(Resolved {
                id: node.id,
                parent: None,
                trace_id: node.id,
                dotted_order: dotted,
                op: Op::Post,
                orphaned: node.parent,
                payload: node.payload,
            });
        }
        let (more, still) = self.pass(keep);
        out.extend(more);
        self.held = still
            .into_iter()
            .map(|(node, since)| Held { node, since })
            .collect();
        // Parents before children, so that a split request never sends a child first.
        out.sort_by_cached_key(|r| r.dotted_order.bytes().filter(|b| *b == b'.').count());
        out
    }

    /// Places every held run as a root (for shutdown, when no parent will come any more).
    pub fn release_all(&mut self) -> Vec<Resolved<P>> {
        let held = std::mem::take(&mut self.held);
        let far = Instant::now() + self.limits.held_for + Duration::from_secs(1);
        let saved = self.limits;
        self.limits.held_runs = 0;
        let out = {
            self.held = held;
            self.resolve(Vec::new(), far)
        };
        self.limits = saved;
        out
    }

    /// Holds `node` again (its request failed): it is placed with the next export.
    pub fn hold(&mut self, node: Node<P>, since: Instant) {
        self.held.push(Held { node, since });
    }

    /// One resolution pass over `work`: runs whose parent is a root, in `work` or
    /// remembered are placed; the others come back.
    #[allow(clippy::type_complexity)]
    fn pass(
        &mut self,
        work: Vec<(Node<P>, Instant)>,
    ) -> (Vec<Resolved<P>>, Vec<(Node<P>, Instant)>) {
        let index: HashMap<Uuid, usize> = work
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.id, i))
            .collect();
        let mut state = vec![State::Unvisited; work.len()];
        // (the parent as sent, its place, post or patch, the parent it was cut from)
        let mut placed: Vec<Option<(Option<Uuid>, Known, Op, Option<Uuid>)>> =
            vec![None; work.len()];
        for start in 0..work.len() {
            if state[start] != State::Unvisited {
                continue;
            }
            state[start] = State::InProgress;
            let mut stack = vec![start];
            while let Some(&top) = stack.last() {
                let node = &work[top].0;
                let parent_known: Option<Result<(Uuid, Known), ()>> = match node.parent {
                    None => None,
                    Some(p) if p == node.id => None,
                    Some(p) => match index.get(&p) {
                        Some(&pi) => match state[pi] {
                            State::Done => {
                                let (_, k, _, _) = placed[pi].clone().expect("done means placed");
                                Some(Ok((p, k)))
                            }
                            State::Unresolved => Some(Err(())),
                            // On the stack: a cycle. Break it here: this run becomes a root.
                            State::InProgress => None,
                            State::Unvisited => {
                                state[pi] = State::InProgress;
                                stack.push(pi);
                                continue;
                            }
                        },
                        None => match self.known.get(&p) {
                            Some(k) => Some(Ok((p, k.clone()))),
                            None => Some(Err(())),
                        },
                    },
                };
                let previous = self.known.get(&node.id).cloned();
                let op = match &previous {
                    Some(k) if k.open && node.ended => Op::Patch,
                    _ => Op::Post,
                };
                match parent_known {
                    Some(Err(())) => state[top] = State::Unresolved,
                    None => {
                        let time = segment_time(node.start);
                        let known = Known {
                            dotted: format!("{}{}", stamp(time), node.id),
                            trace_id: node.id,
                            time,
                            open: !node.ended,
                            depth: 1,
                        };
                        placed[top] = Some((None, known, op, None));
                        state[top] = State::Done;
                    }
                    Some(Ok((p, parent))) if parent.depth >= MAX_DEPTH => {
                        // Too deep: a tree of its own, which says where it belonged.
                        let time = segment_time(node.start).max(parent.time);
                        let known = Known {
                            dotted: format!("{}{}", stamp(time), node.id),
                            trace_id: node.id,
                            time,
                            open: !node.ended,
                            depth: 1,
                        };
                        placed[top] = Some((None, known, op, Some(p)));
                        state[top] = State::Done;
                    }
                    Some(Ok((p, parent))) => {
                        let time = segment_time(node.start).max(parent.time);
                        let known = Known {
                            dotted: format!("{}.{}{}", parent.dotted, stamp(time), node.id),
                            trace_id: parent.trace_id,
                            time,
                            open: !node.ended,
                            depth: parent.depth + 1,
                        };
                        placed[top] = Some((Some(p), known, op, None));
                        state[top] = State::Done;
                    }
                }
                stack.pop();
            }
        }
        let mut out = Vec::new();
        let mut rest = Vec::new();
        for ((node, since), place) in work.into_iter().zip(placed) {
            match place {
                Some((parent, known, op, cut)) => {
                    let resolved = Resolved {
                        id: node.id,
                        parent,
                        trace_id: known.trace_id,
                        dotted_order: known.dotted.clone(),
                        op,
                        orphaned: cut,
                        payload: node.payload,
                    };
                    self.remember(node.id, known);
                    out.push(resolved);
                }
                None => rest.push((node, since)),
            }
        }
        (out, rest)
    }

    /// Splits the unresolved runs into those placed as roots now (the tops of held chains
    /// that are too old, or the oldest when there are too many) and those held on.
    #[allow(clippy::type_complexity)]
    fn choose_forced(
        &self,
        unresolved: Vec<(Node<P>, Instant)>,
        now: Instant,
    ) -> (Vec<(Node<P>, Instant)>, Vec<(Node<P>, Instant)>) {
        if unresolved.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let ids: HashMap<Uuid, usize> = unresolved
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.id, i))
            .collect();
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut tops = Vec::new();
        for (i, (n, _)) in unresolved.iter().enumerate() {
            match n.parent.and_then(|p| ids.get(&p)) {
                Some(&pi) if pi != i => children.entry(pi).or_default().push(i),
                _ => tops.push(i),
            }
        }
        // A held chain whose links all point inside it (a cycle) has no top; its oldest
        // member stands in.
        let mut reached = vec![false; unresolved.len()];
        let subtree = |top: usize, reached: &mut Vec<bool>| -> (usize, usize) {
            let (mut count, mut bytes) = (0, 0);
            let mut stack = vec![top];
            while let Some(i) = stack.pop() {
                if std::mem::replace(&mut reached[i], true) {
                    continue;
                }
                count += 1;
                bytes += unresolved[i].0.size;
                stack.extend(children.get(&i).into_iter().flatten().copied());
            }
            (count, bytes)
        };
        let mut chains: Vec<(usize, usize, usize)> = Vec::new();
        for &t in &tops {
            let (c, b) = subtree(t, &mut reached);
            chains.push((t, c, b));
        }
        for i in 0..unresolved.len() {
            if !reached[i] {
                let (c, b) = subtree(i, &mut reached);
                chains.push((i, c, b));
            }
        }
        // Oldest first; among equals, the earliest start.
        chains.sort_by_key(|&(t, _, _)| (unresolved[t].1, unresolved[t].0.start));
        let (mut count, mut bytes): (usize, usize) = chains
            .iter()
            .fold((0, 0), |(c, b), &(_, cc, bb)| (c + cc, b + bb));
        let mut forced_tops = HashSet::new();
        for &(t, c, b) in &chains {
            let too_old = now.saturating_duration_since(unresolved[t].1) >= self.limits.held_for;
            let too_many = count > self.limits.held_runs || bytes > self.limits.held_bytes;
            if !(too_old || too_many) {
                continue;
            }
            forced_tops.insert(t);
            count -= c;
            bytes -= b;
        }
        let mut forced = Vec::new();
        let mut keep = Vec::new();
        for (i, item) in unresolved.into_iter().enumerate() {
            if forced_tops.contains(&i) {
                forced.push(item);
            } else {
                keep.push(item);
            }
        }
        (forced, keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u128, parent: Option<u128>, start_ms: i64) -> Node<()> {
        Node {
            id: Uuid::from_u128(id),
            parent: parent.map(Uuid::from_u128),
            start: DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000 + start_ms).unwrap(),
            ended: true,
            size: 10,
            payload: (),
        }
    }

    fn by_id<P>(runs: &[Resolved<P>]) -> HashMap<Uuid, &Resolved<P>> {
        runs.iter().map(|r| (r.id, r)).collect()
    }

    #[test]
    fn a_chain_deeper_than_the_limit_starts_new_trees() {
        let mut d = DottedOrders::default();
        let n = 3 * MAX_DEPTH as u128 + 5;
        let nodes: Vec<_> = (1..=n)
            .map(|i| node(i, (i > 1).then(|| i - 1), i as i64))
            .collect();
        let runs = d.resolve(nodes, Instant::now());
        assert_eq!(runs.len(), n as usize);
        let deepest = runs
            .iter()
            .map(|r| r.dotted_order.matches('.').count() + 1)
            .max()
            .unwrap();
        assert_eq!(deepest, MAX_DEPTH as usize);
        let cut: Vec<_> = runs.iter().filter(|r| r.orphaned.is_some()).collect();
        assert_eq!(cut.len(), 3, "every MAX_DEPTH runs a new tree begins");
        for r in cut {
            assert_eq!(r.parent, None);
            assert_eq!(r.trace_id, r.id);
        }
    }

    #[test]
    fn the_format_is_langsmiths() {
        let t: DateTime<Utc> = "2026-11-21T01:06:08.3747009Z".parse().unwrap();
        assert_eq!(stamp(segment_time(t)), "20261121T010608374700Z");
    }

    #[test]
    fn children_never_sort_before_their_parents() {
        let mut d = DottedOrders::default();
        // The child "started" 5 ms before its parent (clock skew).
        let out = d.resolve(vec![node(2, Some(1), -5), node(1, None, 0)], Instant::now());
        let runs = by_id(&out);
        let parent = &runs[&Uuid::from_u128(1)].dotted_order;
        let child = &runs[&Uuid::from_u128(2)].dotted_order;
        assert!(child.starts_with(&format!("{parent}.")), "{child}");
        assert!(child > parent);
        let segment = child.rsplit('.').next().unwrap();
        assert_eq!(
            &segment[..22],
            &parent[..22],
            "clamped to the parent's time"
        );
        assert_eq!(runs[&Uuid::from_u128(2)].trace_id, Uuid::from_u128(1));
    }

    #[test]
    fn orphans_wait_for_their_parent_and_use_remembered_ones() {
        let mut d = DottedOrders::default();
        let now = Instant::now();
        // A part with a child whose parent comes later.
        assert!(d.resolve(vec![node(3, Some(2), 10)], now).is_empty());
        assert_eq!(d.held(), 1);
        let out = d.resolve(vec![node(2, Some(1), 5), node(1, None, 0)], now);
        assert_eq!(out.len(), 3);
        assert_eq!(d.held(), 0);
        // A straggler after everything was sent finds its parent remembered.
        let out = d.resolve(vec![node(4, Some(2), 20)], now);
        let dotted = &out[0].dotted_order;
        assert!(dotted.starts_with(d.dotted_order_of(Uuid::from_u128(2)).unwrap()));
        assert_eq!(out[0].trace_id, Uuid::from_u128(1));
    }

    #[test]
    fn orphans_whose_parent_never_comes_become_roots() {
        let limits = Limits {
            held_for: Duration::from_secs(60),
            ..Limits::default()
        };
        let mut d = DottedOrders::new(limits);
        let t0 = Instant::now();
        assert!(
            d.resolve(vec![node(3, Some(9), 10), node(4, Some(3), 11)], t0)
                .is_empty()
        );
        let out = d.resolve(Vec::new(), t0 + Duration::from_secs(61));
        let runs = by_id(&out);
        let top = runs[&Uuid::from_u128(3)];
        assert_eq!(top.parent, None);
        assert_eq!(top.orphaned, Some(Uuid::from_u128(9)));
        assert_eq!(top.trace_id, top.id);
        assert!(!top.dotted_order.contains('.'));
        let child = runs[&Uuid::from_u128(4)];
        assert!(child.dotted_order.starts_with(&top.dotted_order));
        assert_eq!(d.held(), 0);
    }

    #[test]
    fn held_runs_are_bounded_in_count() {
        let limits = Limits {
            held_runs: 2,
            ..Limits::default()
        };
        let mut d = DottedOrders::new(limits);
        let now = Instant::now();
        let out = d.resolve(
            (10..15).map(|i| node(i, Some(i + 100), i as i64)).collect(),
            now,
        );
        assert_eq!(out.len(), 3, "the oldest are placed as roots");
        assert_eq!(d.held(), 2);
        assert_eq!(d.release_all().len(), 2);
        assert_eq!(d.held(), 0);
    }

    #[test]
    fn cycles_and_self_parents_terminate() {
        let mut d = DottedOrders::default();
        let out = d.resolve(
            vec![
                node(1, Some(2), 0),
                node(2, Some(1), 1),
                node(3, Some(3), 2),
            ],
            Instant::now(),
        );
        assert_eq!(out.len(), 3);
        for r in &out {
            assert!(r.dotted_order.ends_with(&r.id.to_string()));
        }
    }

    #[test]
    fn remembered_runs_are_bounded() {
        let limits = Limits {
            known_runs: 10,
            known_bytes: 1_000,
            ..Limits::default()
        };
        let mut d = DottedOrders::new(limits);
        let mut nodes = vec![node(1, None, 0)];
        nodes.extend((2..60).map(|i| node(i, Some(i - 1), i as i64)));
        let out = d.resolve(nodes, Instant::now());
        assert_eq!(out.len(), 59);
        assert!(d.known() <= 10);
        assert!(d.known_bytes <= 1_000, "{}", d.known_bytes);
    }

    #[test]
    fn open_runs_are_patched_when_they_end() {
        let mut d = DottedOrders::default();
        let mut open = node(1, None, 0);
        open.ended = false;
        let out = d.resolve(vec![open], Instant::now());
        assert_eq!(out[0].op, Op::Post);
        let out = d.resolve(vec![node(1, None, 0)], Instant::now());
        assert_eq!(out[0].op, Op::Patch);
        let out = d.resolve(vec![node(1, None, 0)], Instant::now());
        assert_eq!(
            out[0].op,
            Op::Post,
            "a re-send of a closed run is a post (409 if there)"
        );
    }
}
