//! Experiment 1: SIGKILL loops with the spool on. The producer is killed at random points and
//! restarted on the same spool directory with new indices; a final replay-only run with a
//! healthy sink delivers what is left. Nothing acknowledged as durable may be lost, and at
//! most the batches in flight at each kill may be sent twice. And a clean shutdown followed by
//! a replay-only restart re-sends nothing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ops_torture_tests::child::{Args, Child, Durability, describe};
use ops_torture_tests::config::stat;
use ops_torture_tests::report::{scale, seed, summary};
use ops_torture_tests::sink::{Mode, Sink};

const PRODUCER: &str = env!("CARGO_BIN_EXE_torture-producer");
const BATCH_SIZE: u64 = 10;
/// One provider, so one lane.
const LANES: u64 = 1;

fn base_args(sink: &Sink, run: u64, dir: &std::path::Path, batch_size: u64) -> Args {
    Args::new()
        .opt("endpoint", sink.url())
        .opt("run", run)
        .opt("spool-dir", dir.display())
        .opt("batch-size", batch_size)
        .opt("interval-ms", 20)
}

/// Runs the producer in replay-only mode to a clean shutdown; returns its last stats.
fn replay_only(
    sink: &Sink,
    run: u64,
    dir: &std::path::Path,
    batch_size: u64,
    name: &str,
) -> serde_json::Value {
    let args = base_args(sink, run, dir, batch_size)
        .flag("replay-only")
        .opt("end", "shutdown")
        .opt("shutdown-ms", 60_000);
    let mut child = Child::spawn(name, PRODUCER, &args.to_vec(), &[], None);
    let status = child.finish(Duration::from_secs(120));
    assert!(
        status.success(),
        "{name} ended with {}; stderr:\n{}",
        describe(status),
        child.stderr_tail(4000)
    );
    child
        .out
        .shutdown_stats()
        .cloned()
        .unwrap_or_else(|| panic!("{name} printed no stats"))
}

#[test]
fn sigkill_loop_loses_no_durable_ack_and_resends_at_most_the_batches_in_flight() {
    let seed = seed("sigkill-loop");
    let mut rng = fastrand::Rng::with_seed(seed);
    let kills = scale(8u64, 40);
    let per_round = scale(1000u64, 2000);
    let run = rng.u64(..);
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(Mode::Up);
    let started = Instant::now();

    let mut acks = Vec::new();
    let mut refused = 0usize;
    let mut down_rounds = 0;
    let mut next = 0u64;
    for round in 0..kills {
        // In turn paced like a typical app (50 traces/s: delivery keeps up, so the lane
        // often has nothing left to send, which the ack path must survive), in one burst
        // (rate 0), or paced fast; killed while sending or after it.
        let rate = [50u64, 0, 500, 2000][round as usize % 4];
        // Now and then the backend is down for a round (never in a slowly paced one), so the
        // spool holds a backlog that the next rounds replay.
        let down = rate != 50 && rng.f64() < 0.3;
        down_rounds += u32::from(down);
        sink.set_mode(if down { Mode::Refuse } else { Mode::Up });
        let args = base_args(&sink, run, dir.path(), BATCH_SIZE)
            .opt("start", next)
            .opt("count", per_round)
            .opt("rate", rate)
            .opt("end", "hang");
        let name = format!("producer round {round}");
        let mut child = Child::spawn(&name, PRODUCER, &args.to_vec(), &[], None);
        child.expect_line("READY", Duration::from_secs(60));
        let sending_ms = (per_round * 1000).checked_div(rate).unwrap_or(200);
        let earliest = if rate == 50 { 2000 } else { 300 };
        let kill_after =
            Duration::from_millis(rng.u64(earliest..(sending_ms + 800).clamp(earliest + 1, 3000)));
        let until = Instant::now() + kill_after;
        while Instant::now() < until {
            child.pump();
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = child.kill();
        assert_eq!(
            status.signal_name(),
            "SIGKILL",
            "{name} ended by itself: {}; stderr:\n{}",
            describe(status),
            child.stderr_tail(4000)
        );
        eprintln!(
            "round {round}: backend {}, rate {rate}/s, killed after {kill_after:?}, {} acked",
            if down { "down" } else { "up" },
            child.out.acks.len()
        );
        acks.extend(child.out.acks.iter().copied());
        refused += child.out.refused.len();
        next += per_round;
    }

    sink.set_mode(Mode::Up);
    let stats = replay_only(&sink, run, dir.path(), BATCH_SIZE, "replay-only run");
    let counts = sink.counts();
    let acked: HashSet<u128> = acks.iter().map(|a| a.id).collect();
    let durable: HashSet<u128> = acks
        .iter()
        .filter(|a| a.claimed == Durability::Durable)
        .map(|a| a.id)
        .collect();
    let delivered = counts.received();
    let lost: Vec<u128> = durable.difference(&delivered).copied().collect();
    let lost_any = acked.difference(&delivered).count();
    let unacked_delivered = delivered.difference(&acked).count();
    let duplicates = counts.duplicate_traces();
    let bound = kills * BATCH_SIZE * LANES;
    summary(
        "sigkill-loop",
        &[
            ("seed", &seed),
            ("kills", &kills),
            ("rounds_backend_down", &down_rounds),
            ("sent", &(acks.len() + refused)),
            ("acknowledged", &acks.len()),
            ("acknowledged_durable", &durable.len()),
            ("refused", &refused),
            ("delivered", &delivered.len()),
            ("delivered_unacknowledged", &unacked_delivered),
            ("duplicates", &duplicates),
            ("duplicate_spans", &counts.duplicate_spans()),
            ("duplicate_bound", &bound),
            ("lost", &lost.len()),
            ("lost_any_ack", &lost_any),
            ("replayed_last_run", &stat(&stats, "spool.replayed")),
            ("secs", &started.elapsed().as_secs()),
        ],
    );
    assert_eq!(
        stat(&stats, "shutdown.pending"),
        0,
        "the replay-only run delivered everything: {stats}"
    );
    assert!(
        lost.is_empty(),
        "{} of {} durable-acknowledged traces were never delivered (seed {seed})",
        lost.len(),
        durable.len()
    );
    assert!(
        duplicates <= bound,
        "{duplicates} traces were sent again over {kills} kills; the bound is {bound} \
         (batch size {BATCH_SIZE} × {LANES} lane per kill) (seed {seed})"
    );
}

#[test]
fn a_restart_after_a_clean_shutdown_resends_nothing() {
    let run = fastrand::u64(..);
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(Mode::Up);
    let count = 300u64;
    // Dify's default batch size: the issue found the last batch (100) re-sent.
    let batch_size = 100;
    let args = base_args(&sink, run, dir.path(), batch_size)
        .opt("count", count)
        .opt("end", "shutdown")
        .opt("shutdown-ms", 30_000);
    let mut child = Child::spawn("producer", PRODUCER, &args.to_vec(), &[], None);
    let status = child.finish(Duration::from_secs(120));
    assert!(status.success(), "{}", child.stderr_tail(4000));
    let first = child.out.last_stats().cloned().expect("stats");
    let acked = child.out.acked();
    let after_first = sink.counts();
    assert_eq!(acked.len() as u64, count, "every trace was accepted");
    assert!(
        acked.is_subset(&after_first.received()),
        "a clean shutdown delivered every trace: {first}"
    );

    let stats = replay_only(&sink, run, dir.path(), batch_size, "restart");
    let after = sink.counts();
    let resent = after.requests - after_first.requests;
    let resent_traces: u64 = after.duplicated_among(&acked) - after_first.duplicated_among(&acked);
    summary(
        "restart-after-clean-shutdown",
        &[
            ("sent", &count),
            ("acknowledged", &acked.len()),
            ("delivered", &after_first.received().len()),
            ("duplicates_before_restart", &after_first.duplicate_traces()),
            ("resent_traces", &resent_traces),
            ("resent_requests", &resent),
            ("replayed", &stat(&stats, "spool.replayed")),
            (
                "spool_disk_bytes_after_shutdown",
                &stat(&first, "spool.disk_bytes"),
            ),
        ],
    );
    assert_eq!(
        resent_traces,
        0,
        "a restart after a clean shutdown with everything delivered re-sent {resent_traces} \
         traces ({} replayed from the spool)",
        stat(&stats, "spool.replayed")
    );
}

trait SignalName {
    fn signal_name(&self) -> String;
}

impl SignalName for std::process::ExitStatus {
    fn signal_name(&self) -> String {
        use std::os::unix::process::ExitStatusExt as _;
        match self.signal() {
            Some(9) => "SIGKILL".into(),
            _ => describe(*self),
        }
    }
}
