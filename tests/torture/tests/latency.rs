//! Experiment 5: enqueue latency with the backend down. 100k traces from the app thread,
//! each `add_trace_task` (and each root `#[traced]` call) timed with `Instant`; p50, p99 and
//! max, and the app thread's voluntary context switches per 100k calls (how often it blocked).
//!
//! The figures are always printed. Without the spool, the app's thread must not wait: at most
//! 100 voluntary context switches per 100k calls. The goal (max ≤ 50 µs) is asserted only with
//! `OPS_TORTURE_STRICT_LATENCY=1`: this shared 2-core VM is noisy, and the default test
//! profile is unoptimized (`cargo test --release` gives figures comparable with the issue's).

use std::time::Duration;

use ops_torture_tests::child::{Args, Child, describe};
use ops_torture_tests::config::stat;
use ops_torture_tests::report::{scale, strict_latency, summary, us};
use ops_torture_tests::sink::{Mode, Sink};

const PRODUCER: &str = env!("CARGO_BIN_EXE_torture-producer");
const GOAL_NS: u64 = 50_000;
/// Voluntary context switches of the app's thread per 100k calls, without the spool: it
/// never waits on the worker (2,000 for `#[traced]` roots when the worker freed what the app
/// allocated, and glibc's arena lock made them wait for each other).
const MAX_WAITS_PER_100K: u64 = 100;

struct Run {
    label: &'static str,
    api: &'static str,
    count: u64,
    spool: bool,
    /// Queue limits large enough that every call is accepted (the worker stays busy).
    roomy: bool,
}

#[test]
fn enqueue_latency_with_the_backend_down() {
    let runs = [
        Run {
            label: "explicit",
            api: "explicit",
            count: 100_000,
            spool: false,
            roomy: false,
        },
        Run {
            label: "explicit-all-accepted",
            api: "explicit",
            count: 100_000,
            spool: false,
            roomy: true,
        },
        Run {
            label: "traced-root",
            api: "traced",
            count: 100_000,
            spool: false,
            roomy: false,
        },
        Run {
            label: "explicit-spool-fsync-200ms",
            api: "explicit",
            count: scale(20_000, 100_000),
            spool: true,
            roomy: false,
        },
    ];
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut misses = Vec::new();
    for run in runs {
        let sink = Sink::start(Mode::Refuse);
        let dir = tempfile::tempdir().unwrap();
        let mut args = Args::new()
            .opt("endpoint", sink.url())
            .opt("api", run.api)
            .opt("count", run.count)
            .flag("latency")
            .opt("end", "shutdown")
            .opt("shutdown-ms", 1000);
        if run.spool {
            args = args
                .opt("spool-dir", dir.path().display())
                .opt("fsync", 200);
        }
        if run.roomy {
            args = args
                .opt("max-bytes", 2u64 << 30)
                .opt("max-items", run.count);
        }
        let mut child = Child::spawn(run.label, PRODUCER, &args.to_vec(), &[], None);
        let status = child.finish(Duration::from_secs(300));
        assert!(
            status.success(),
            "{}: {}; stderr:\n{}",
            run.label,
            describe(status),
            child.stderr_tail(4000)
        );
        let lat = child
            .out
            .latency
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("{}: no LAT line", run.label));
        let stats = child.out.last_stats().cloned().unwrap_or_default();
        let get = |k: &str| lat.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        // A spooled trace left at shutdown stays on disk for the next start: it is kept, not
        // lost (counted in `spool.unresolved`).
        let accounted = stat(&stats, "exported")
            + stat(&stats, "failed")
            + stat(&stats, "dropped_total")
            + stat(&stats, "spool.unresolved");
        summary(
            &format!("latency {}", run.label),
            &[
                ("profile", &profile),
                ("calls", &get("n")),
                ("p50", &us(get("p50_ns"))),
                ("p99", &us(get("p99_ns"))),
                ("p99.9", &us(get("p999_ns"))),
                ("max", &us(get("max_ns"))),
                ("voluntary_ctxt_switches_per_100k", &get("vcsw_per_100k")),
                ("enqueued", &stat(&stats, "enqueued")),
                ("dropped", &stat(&stats, "dropped_total")),
            ],
        );
        assert_eq!(get("n"), run.count, "{}: every call was timed", run.label);
        assert!(
            accounted >= run.count,
            "{}: {} traces neither delivered, counted as dropped, nor kept in the spool: {stats}",
            run.label,
            run.count - accounted
        );
        if get("max_ns") > GOAL_NS {
            misses.push(format!("{} max {}", run.label, us(get("max_ns"))));
        }
        // Load-immune: a voluntary switch is the app's thread waiting (on a lock, say), where
        // the maximum also counts the scheduler's preemptions on a shared machine. The spool's
        // runs write to a file on the app's thread, which may wait on the disk.
        if !run.spool {
            assert!(
                get("vcsw_per_100k") <= MAX_WAITS_PER_100K,
                "{}: the app's thread waited {} times per 100k calls (at most {MAX_WAITS_PER_100K})",
                run.label,
                get("vcsw_per_100k")
            );
        }
    }
    if strict_latency() {
        assert!(
            misses.is_empty(),
            "enqueue took longer than {} with the backend down: {}",
            us(GOAL_NS),
            misses.join(", ")
        );
    } else if !misses.is_empty() {
        eprintln!(
            "latency goal ({} max) missed, not asserted without OPS_TORTURE_STRICT_LATENCY=1: {}",
            us(GOAL_NS),
            misses.join(", ")
        );
    }
}
