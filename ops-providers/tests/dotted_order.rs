//! Property tests of LangSmith's `dotted_order`: for any tree, any clock skew and any way the
//! tree is split into exports (in any order), each child's dotted order starts with its
//! parent's and sorts after it, its timestamp is never earlier than its parent's (LangSmith's
//! 400, Dify issue #35972), and the result does not depend on how the tree was split.

#![cfg(feature = "langsmith")]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ops_providers::langsmith::dotted::{DottedOrders, Limits, Node, Resolved};
use proptest::prelude::*;
use uuid::Uuid;

/// A generated tree: per node its parent (an earlier node, or none), its start as an offset
/// in milliseconds (any skew, including before the epoch and past year 9999), and the export
/// it arrives in.
#[derive(Debug, Clone)]
struct Case {
    parents: Vec<Option<usize>>,
    starts: Vec<i64>,
    exports: Vec<usize>,
    order: Vec<usize>,
}

const BASE_MS: i64 = 1_800_000_000_000;

fn case() -> impl Strategy<Value = Case> {
    (1usize..40, 1usize..5).prop_flat_map(|(n, k)| {
        let parents = (0..n)
            .map(|i| {
                if i == 0 {
                    Just(None).boxed()
                } else {
                    prop_oneof![1 => Just(None), 6 => (0..i).prop_map(Some)].boxed()
                }
            })
            .collect::<Vec<_>>();
        let start = prop_oneof![
            8 => -5_000i64..5_000,
            1 => -BASE_MS * 2..BASE_MS * 200,
            1 => Just(i64::MIN / 4),
        ];
        (
            parents,
            proptest::collection::vec(start, n),
            proptest::collection::vec(0..k, n),
            Just((0..k).collect::<Vec<_>>()).prop_shuffle(),
        )
            .prop_map(|(parents, starts, exports, order)| Case {
                parents,
                starts,
                exports,
                order,
            })
    })
}

fn id(i: usize) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128)
}

fn nodes(c: &Case, which: impl Fn(usize) -> bool) -> Vec<Node<usize>> {
    (0..c.parents.len())
        .filter(|i| which(*i))
        .map(|i| Node {
            id: id(i),
            parent: c.parents[i].map(id),
            start: DateTime::<Utc>::from_timestamp_millis(BASE_MS.saturating_add(c.starts[i]))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            ended: true,
            size: 100,
            payload: i,
        })
        .collect()
}

/// Every run's segment: `<22-char timestamp><id>`.
fn last_segment(dotted: &str) -> (&str, &str) {
    let seg = dotted.rsplit('.').next().unwrap();
    seg.split_at(22)
}

fn check_runs(c: &Case, runs: &HashMap<usize, Resolved<usize>>) -> Result<(), TestCaseError> {
    for (&i, r) in runs {
        let (stamp, own) = last_segment(&r.dotted_order);
        prop_assert_eq!(own, id(i).to_string());
        prop_assert_eq!(stamp.len(), 22);
        prop_assert!(
            stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z'),
            "{}",
            stamp
        );
        match c.parents[i] {
            None => {
                prop_assert!(!r.dotted_order.contains('.'));
                prop_assert_eq!(r.trace_id, r.id);
                prop_assert_eq!(r.parent, None);
            }
            Some(p) => {
                let parent = &runs[&p];
                prop_assert_eq!(r.parent, Some(id(p)));
                prop_assert!(
                    r.dotted_order
                        .starts_with(&format!("{}.", parent.dotted_order)),
                    "{} does not extend {}",
                    r.dotted_order,
                    parent.dotted_order
                );
                prop_assert!(r.dotted_order > parent.dotted_order);
                prop_assert!(stamp >= last_segment(&parent.dotted_order).0);
                prop_assert_eq!(r.trace_id, parent.trace_id);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn children_extend_and_sort_after_their_parents(c in case()) {
        // Delivered in parts, parts in any order.
        let mut d = DottedOrders::default();
        let now = Instant::now();
        let mut split: HashMap<usize, Resolved<usize>> = HashMap::new();
        for &export in &c.order {
            for r in d.resolve(nodes(&c, |i| c.exports[i] == export), now) {
                prop_assert!(split.insert(r.payload, r).is_none(), "placed twice");
            }
        }
        prop_assert_eq!(d.held(), 0, "every parent arrived, so nothing is held");
        prop_assert_eq!(split.len(), c.parents.len());
        check_runs(&c, &split)?;

        // All at once: the same dotted orders.
        let mut d = DottedOrders::default();
        let whole: HashMap<usize, Resolved<usize>> = d
            .resolve(nodes(&c, |_| true), now)
            .into_iter()
            .map(|r| (r.payload, r))
            .collect();
        for (i, r) in &whole {
            prop_assert_eq!(&r.dotted_order, &split[i].dotted_order);
        }
    }

    #[test]
    fn whatever_is_held_or_given_up_every_run_sent_is_valid(
        c in case(),
        held_runs in 0usize..6,
        missing in proptest::collection::vec(any::<bool>(), 40),
    ) {
        // Some parents never arrive; few runs may be held: runs are placed as roots early.
        let limits = Limits { held_runs, held_for: Duration::from_secs(60), ..Limits::default() };
        let mut d = DottedOrders::new(limits);
        let now = Instant::now();
        let mut sent: HashMap<Uuid, Resolved<usize>> = HashMap::new();
        let mut check = |runs: Vec<Resolved<usize>>| -> Result<(), TestCaseError> {
            // A parent is sent before its children or in the same request.
            let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
            for r in runs {
                prop_assert!(sent.insert(r.id, r).is_none(), "sent twice");
            }
            for id in ids {
                let r = &sent[&id];
                let (_, own) = last_segment(&r.dotted_order);
                prop_assert_eq!(own, r.id.to_string());
                match r.parent {
                    None => {
                        prop_assert!(!r.dotted_order.contains('.'));
                        prop_assert_eq!(r.trace_id, r.id);
                    }
                    Some(p) => {
                        let parent = sent.get(&p);
                        prop_assert!(parent.is_some(), "the parent was sent");
                        let parent = parent.unwrap();
                        let prefix = format!("{}.", parent.dotted_order);
                        prop_assert!(r.dotted_order.starts_with(&prefix), "{}", r.dotted_order);
                        prop_assert!(last_segment(&r.dotted_order).0 >= last_segment(&parent.dotted_order).0);
                        prop_assert_eq!(r.trace_id, parent.trace_id);
                    }
                }
                if let Some(o) = r.orphaned {
                    prop_assert_eq!(r.parent, None);
                    prop_assert!(Some(o) == c.parents[r.payload].map(self::id));
                }
            }
            Ok(())
        };
        for &export in &c.order {
            check(d.resolve(nodes(&c, |i| c.exports[i] == export && !missing[i]), now))?;
            prop_assert!(d.held() <= held_runs);
        }
        check(d.resolve(Vec::new(), now + Duration::from_secs(61)))?;
        prop_assert_eq!(d.held(), 0, "held runs are given up after their time");
        let delivered = (0..c.parents.len()).filter(|i| !missing[*i]).count();
        prop_assert_eq!(sent.len(), delivered, "every delivered run is sent once");
    }
}
