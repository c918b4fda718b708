//! Experiment 2: corruption. Traces are spooled while the backend refuses connections, the
//! producer is SIGKILLed, random bytes of random `segment-*.log` files are flipped, and a
//! restart with the backend up must deliver every record no flip touched, without a panic.
//!
//! Which records a flip can have touched is worked out without relying on the record format:
//! each record holds `"trace_id":"<id>"` as text, so the records of a segment are ordered by
//! where that key occurs, and a flip between the ids of records k and k+1 may have hit the
//! end of k or the start (header) of k+1: both count as damaged.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ops_torture_tests::child::{Args, Child, describe};
use ops_torture_tests::config::stat;
use ops_torture_tests::ids;
use ops_torture_tests::report::{scale, seed, summary};
use ops_torture_tests::sink::{Mode, Sink};

const PRODUCER: &str = env!("CARGO_BIN_EXE_torture-producer");

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("segment-") && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    files
}

/// Where each trace's record names it in a segment: file → offset → trace key.
fn locate(files: &[PathBuf], run: u64, indices: &[u64]) -> BTreeMap<usize, BTreeMap<usize, u128>> {
    let wanted: std::collections::HashMap<String, u128> = indices
        .iter()
        .map(|&i| {
            (
                ids::trace_id(run, i).as_str().to_owned(),
                ids::trace_key(run, i),
            )
        })
        .collect();
    let mut found: BTreeMap<usize, BTreeMap<usize, u128>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for (f, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        // Each record names its trace as `"trace_id":"<36-byte UUID>"`. A bare id is not
        // enough: the producer's observation ids share the trace ids' layout, so trace k+1's
        // id also occurs inside trace k's record.
        const KEY: &[u8] = b"\"trace_id\":\"";
        let mut from = 0;
        while let Some(hit) = bytes[from..].windows(KEY.len()).position(|w| w == KEY) {
            let at = from + hit + KEY.len();
            from = at;
            let Some(Ok(text)) = bytes.get(at..at + 36).map(std::str::from_utf8) else {
                continue;
            };
            if let Some(&key) = wanted.get(text)
                && seen.insert(key)
            {
                found.entry(f).or_default().insert(at, key);
            }
        }
    }
    found
}

#[test]
fn flipped_bytes_lose_only_the_records_they_touch() {
    let seed = seed("corruption");
    let mut rng = fastrand::Rng::with_seed(seed);
    let run = rng.u64(..);
    let traces = scale(2000u64, 10_000);
    let flips = scale(16usize, 64);
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(Mode::Refuse);

    let args = Args::new()
        .opt("endpoint", sink.url())
        .opt("run", run)
        .opt("count", traces)
        .opt("spool-dir", dir.path().display())
        .opt("spool-segment-bytes", 1 << 20)
        .opt("batch-size", 50)
        // Room for every trace while the backend is down: the spool is under test here.
        .opt("max-bytes", 1u64 << 30)
        .opt("max-items", traces)
        .opt("end", "hang");
    let mut child = Child::spawn("writer", PRODUCER, &args.to_vec(), &[], None);
    child.expect_line("DONE_SENDING", Duration::from_secs(120));
    child.kill();
    let acks = child.out.acks.clone();
    assert_eq!(acks.len() as u64, traces, "every trace was accepted");
    assert_eq!(sink.requests(), 0, "the backend refused everything");

    let files = segments(dir.path());
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    let indices: Vec<u64> = acks.iter().map(|a| a.index).collect();
    let located = locate(&files, run, &indices);
    let on_disk: HashSet<u128> = located.values().flat_map(|m| m.values().copied()).collect();

    // Flip bytes; note the records each flip may have touched.
    let mut damaged: HashSet<u128> = HashSet::new();
    let mut flipped = Vec::new();
    let candidates: Vec<usize> = (0..files.len()).filter(|&f| sizes[f] > 0).collect();
    for _ in 0..flips {
        let f = candidates[rng.usize(..candidates.len())];
        let offset = rng.usize(..sizes[f] as usize);
        let mask = rng.u8(1..=255);
        let mut bytes = std::fs::read(&files[f]).unwrap();
        bytes[offset] ^= mask;
        std::fs::write(&files[f], &bytes).unwrap();
        flipped.push((f, offset));
        if let Some(records) = located.get(&f) {
            let before = records.range(..=offset).next_back().map(|(_, k)| *k);
            let after = records.range(offset + 1..).next().map(|(_, k)| *k);
            damaged.extend(before);
            damaged.extend(after);
        }
    }

    sink.set_mode(Mode::Up);
    let args = Args::new()
        .opt("endpoint", sink.url())
        .opt("run", run)
        .opt("spool-dir", dir.path().display())
        .opt("batch-size", 50)
        .flag("replay-only")
        .flag("log")
        .opt("end", "shutdown")
        .opt("shutdown-ms", 60_000);
    let mut restart = Child::spawn("restart", PRODUCER, &args.to_vec(), &[], None);
    let status = restart.finish(Duration::from_secs(180));
    let stats = restart.out.last_stats().cloned().unwrap_or_default();
    let logs: Vec<String> = restart
        .logs()
        .into_iter()
        .filter(|l| l.contains("spool"))
        .collect();

    let delivered = sink.counts().received();
    let acked: HashSet<u128> = acks.iter().map(|a| a.id).collect();
    let lost_all = acked.difference(&delivered).count();
    let intact: HashSet<u128> = on_disk.difference(&damaged).copied().collect();
    let lost_intact = intact.difference(&delivered).count();
    summary(
        "corruption",
        &[
            ("seed", &seed),
            ("sent", &traces),
            ("acknowledged", &acks.len()),
            ("on_disk", &on_disk.len()),
            ("segments", &files.len()),
            ("flipped_bytes", &flips),
            ("records_damaged_at_most", &damaged.len()),
            ("delivered", &delivered.len()),
            ("lost", &lost_all),
            ("lost_intact", &lost_intact),
            ("torn_bytes", &stat(&stats, "spool.torn_bytes")),
            ("replayed", &stat(&stats, "spool.replayed")),
            ("exit", &describe(status)),
        ],
    );
    for l in logs.iter().take(20) {
        eprintln!("  restart logged: {l}");
    }
    assert!(
        status.success() && !restart.stderr_tail(1 << 20).contains("panicked"),
        "the restart over a corrupt spool ended with {}; stderr:\n{}",
        describe(status),
        restart.stderr_tail(4000)
    );
    assert_eq!(
        on_disk.len(),
        acked.len(),
        "every acknowledged trace was in a segment before the flips"
    );
    assert!(
        logs.iter().any(|l| l.to_lowercase().contains("corrupt")),
        "damage in the middle of a segment is logged as corrupt records, not as a torn tail; \
         the restart logged: {logs:#?}"
    );
    assert_eq!(
        lost_intact,
        0,
        "{lost_intact} records no flip touched were never delivered ({} flips at {flipped:?}, \
         at most {} records damaged; seed {seed})",
        flips,
        damaged.len()
    );
}
