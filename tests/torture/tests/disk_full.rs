//! Experiment 3: a full disk and a full spool.
//!
//! - A 4 MiB tmpfs, mostly taken by a filler file, holds the spool while the backend is down:
//!   enqueue must keep returning, what is not spooled must be counted, and once the filler is
//!   deleted durability must resume by itself. Skipped, saying why, where tmpfs cannot be
//!   mounted (not root).
//! - A 500 kB spool cap and a SIGKILL: how many acknowledged traces are lost, durable and
//!   memory-only apart. None acknowledged as durable may be lost.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ops_torture_tests::child::{Args, Child, Durability, describe};
use ops_torture_tests::config::stat;
use ops_torture_tests::report::{scale, summary};
use ops_torture_tests::sink::{Mode, Sink};

const PRODUCER: &str = env!("CARGO_BIN_EXE_torture-producer");

/// A tmpfs mounted for the life of the value.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("could not run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                describe(out.status),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            path: dir.path().to_owned(),
            _dir: dir,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_full_disk_never_blocks_and_durability_resumes_when_there_is_room() {
    let fs = match Tmpfs::mount("4m") {
        Ok(fs) => fs,
        Err(reason) => {
            eprintln!("SKIPPED disk-full: {reason}");
            return;
        }
    };
    let filler = fs.path.join("filler");
    std::fs::write(&filler, vec![0u8; 3 << 20]).unwrap();
    let spool = fs.path.join("spool");
    let sink = Sink::start(Mode::Refuse);
    let (first, second) = (1500u64, 100u64);
    let args = Args::new()
        .opt("endpoint", sink.url())
        .opt("count", format!("{first},{second}"))
        .opt("spool-dir", spool.display())
        .opt("spool-segment-bytes", 256 << 10)
        .opt("batch-size", 50)
        .flag("wait-before-end")
        .flag("log")
        .opt("end", "shutdown")
        .opt("shutdown-ms", 60_000);
    let mut child = Child::spawn("producer", PRODUCER, &args.to_vec(), &[], None);
    child.expect_line("WAIT 1", Duration::from_secs(120));
    let full = child.out.last_stats().cloned().unwrap();
    let disk_full = dir_bytes(&spool);
    std::fs::remove_file(&filler).unwrap();
    // Durability may resume on the next write or after a retry interval: give it 3 s.
    std::thread::sleep(Duration::from_secs(3));
    child.send_line("go");
    child.expect_line("WAIT final", Duration::from_secs(120));
    let resumed = child.out.last_stats().cloned().unwrap();
    let disk_resumed = dir_bytes(&spool);
    sink.set_mode(Mode::Up);
    child.send_line("go");
    let status = child.finish(Duration::from_secs(120));
    let end = child.out.last_stats().cloned().unwrap_or_default();

    let acks = &child.out.acks;
    let answered = acks.len() + child.out.refused.len();
    let phase1: Vec<_> = acks.iter().filter(|a| a.index < first).collect();
    let phase2: Vec<_> = acks.iter().filter(|a| a.index >= first).collect();
    // The later half of phase 2 must be durable again.
    let late = &phase2[phase2.len() / 2..];
    let late_memory = late
        .iter()
        .filter(|a| a.observed == Durability::Memory)
        .count();
    let memory1 = phase1
        .iter()
        .filter(|a| a.observed == Durability::Memory)
        .count();
    let memory2 = phase2
        .iter()
        .filter(|a| a.observed == Durability::Memory)
        .count();
    let written2 = stat(&resumed, "spool.written") - stat(&full, "spool.written");
    let not_spooled1 = stat(&full, "spool.not_spooled");
    let refused1 = stat(&full, "dropped.spool_full");
    let delivered = sink.counts().received();
    let acked: HashSet<u128> = acks.iter().map(|a| a.id).collect();
    let lost = acked.difference(&delivered).count();
    summary(
        "disk-full",
        &[
            ("sent", &(first + second)),
            ("acknowledged", &acks.len()),
            ("refused", &child.out.refused.len()),
            ("phase1_memory_only", &memory1),
            ("phase1_not_spooled_counter", &not_spooled1),
            ("phase1_dropped_spool_full", &refused1),
            ("spool_bytes_when_full", &disk_full),
            ("phase2_written", &written2),
            ("phase2_memory_only", &memory2),
            ("spool_bytes_after_room", &disk_resumed),
            ("delivered", &delivered.len()),
            ("lost", &lost),
            ("exit", &describe(status)),
        ],
    );
    assert!(
        status.success(),
        "the producer ended with {}; stderr:\n{}",
        describe(status),
        child.stderr_tail(4000)
    );
    assert_eq!(
        answered as u64,
        first + second,
        "every add_trace_task call returned"
    );
    assert!(
        not_spooled1 + refused1 > 0,
        "the disk filled up, and what could not be spooled was counted: {full}"
    );
    assert!(
        memory1 > 0 || refused1 > 0,
        "some phase-1 traces were not durable"
    );
    assert!(
        late_memory == 0 && written2 >= late.len() as u64,
        "3 s after the filler was deleted, later traces were still not spooled: {late_memory} \
         of the last {} were memory-only, {written2} of {second} written; stats before \
         {full}, after {resumed}",
        late.len()
    );
    assert_eq!(
        lost, 0,
        "without a crash every accepted trace is delivered: {end}"
    );
}

#[test]
fn a_spool_at_its_cap_loses_no_durable_ack_in_a_sigkill() {
    let traces = scale(2000u64, 10_000);
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(Mode::Refuse);
    let base = Args::new()
        .opt("endpoint", sink.url())
        .opt("spool-dir", dir.path().display())
        .opt("spool-max-bytes", 500_000)
        .opt("batch-size", 50);
    let args = base.clone().opt("count", traces).opt("end", "hang");
    let mut child = Child::spawn("producer", PRODUCER, &args.to_vec(), &[], None);
    child.expect_line("DONE_SENDING", Duration::from_secs(120));
    child.kill();
    let acks = child.out.acks.clone();
    let at_kill = child.out.last_stats().cloned().unwrap_or_default();

    sink.set_mode(Mode::Up);
    let args = base
        .flag("replay-only")
        .opt("end", "shutdown")
        .opt("shutdown-ms", 60_000);
    let mut restart = Child::spawn("restart", PRODUCER, &args.to_vec(), &[], None);
    let status = restart.finish(Duration::from_secs(120));
    assert!(status.success(), "{}", restart.stderr_tail(4000));

    let delivered = sink.counts().received();
    let lost = |keep: &dyn Fn(&&ops_torture_tests::child::Ack) -> bool| -> (usize, usize) {
        let set: HashSet<u128> = acks.iter().filter(keep).map(|a| a.id).collect();
        (set.len(), set.difference(&delivered).count())
    };
    let (claimed_durable, lost_claimed_durable) = lost(&|a| a.claimed == Durability::Durable);
    let (observed_durable, lost_observed_durable) = lost(&|a| a.observed == Durability::Durable);
    let (memory, lost_memory) = lost(&|a| a.observed == Durability::Memory);
    summary(
        "spool-cap-sigkill",
        &[
            ("sent", &traces),
            ("acknowledged", &acks.len()),
            ("refused", &child.out.refused.len()),
            ("spool_cap_bytes", &500_000),
            ("spooled", &stat(&at_kill, "spool.written")),
            ("not_spooled_counter", &stat(&at_kill, "spool.not_spooled")),
            ("claimed_durable", &claimed_durable),
            ("observed_durable", &observed_durable),
            ("memory_only", &memory),
            ("delivered", &delivered.len()),
            ("lost_claimed_durable", &lost_claimed_durable),
            ("lost_observed_durable", &lost_observed_durable),
            ("lost_memory_only", &lost_memory),
        ],
    );
    assert_eq!(
        lost_observed_durable, 0,
        "traces the spool did write were all replayed"
    );
    assert_eq!(
        lost_claimed_durable, 0,
        "{lost_claimed_durable} of {claimed_durable} traces acknowledged as durable by \
         add_trace_task were lost in a SIGKILL (the spool was at its cap: they were in memory \
         only, and the caller could not tell)"
    );
}
