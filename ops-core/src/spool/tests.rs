use super::*;
use crate::model::{ObservationKind, Trace, TraceId};

fn task(name: &str) -> TraceTask {
    TraceTask::from_trace(Trace::new(
        TraceId::new(name).unwrap(),
        ObservationKind::Span,
        name,
        chrono::Utc::now(),
    ))
}

fn names(replayed: &[Replayed]) -> Vec<String> {
    replayed
        .iter()
        .map(|r| r.task.trace_id().to_string())
        .collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn append(spool: &Spool, name: &str) -> SpoolPos {
    match spool.append(&task(name), true).unwrap() {
        Appended::Written { pos, durable } => {
            assert!(durable);
            pos
        }
        Appended::NotWritten => panic!("{name} was not written"),
    }
}

fn replay_all(spool: &Spool) -> Vec<Replayed> {
    spool.take_replay(usize::MAX)
}

#[test]
fn records_survive_a_restart_until_every_provider_resolved_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let spool = Spool::open(config.clone()).unwrap();
    assert!(replay_all(&spool).is_empty());
    let p1 = append(&spool, "t1");
    let p2 = append(&spool, "t2");
    let p3 = append(&spool, "t3");
    for p in [p1, p2, p3] {
        spool.set_needed(p, 2);
    }
    spool.resolve("a", &[p1, p2]);
    spool.resolve("b", &[p1]);
    drop(spool);

    let spool = Spool::open(config.clone()).unwrap();
    assert_eq!(spool.stats().waiting, 2);
    let replayed = replay_all(&spool);
    assert_eq!(names(&replayed), ["t2", "t3"]);
    assert_eq!(
        replayed[0].acked,
        ["a"],
        "t2 was taken by a, so only b still needs it"
    );
    assert!(replayed[1].acked.is_empty());
    assert_eq!(spool.stats().replayed, 2);
    spool.set_needed(replayed[0].pos, 1);
    spool.resolve("b", &[replayed[0].pos]);
    spool.set_needed(replayed[1].pos, 2);
    spool.resolve("a", &[replayed[1].pos]);
    assert_eq!(spool.stats().segments_deleted, 0, "t3 still waits for b");
    spool.resolve("b", &[replayed[1].pos]);
    assert_eq!(
        spool.stats().segments_deleted,
        1,
        "the old segment is gone once resolved"
    );
    assert_eq!(p3.segment, replayed[1].pos.segment);
    drop(spool);

    let spool = Spool::open(config).unwrap();
    assert!(replay_all(&spool).is_empty());
    assert_eq!(
        files(dir.path()),
        ["segment-00000000000000000002.log"],
        "only the fresh segment"
    );
}

#[test]
fn a_clean_run_leaves_nothing_to_send_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let spool = Spool::open(config.clone()).unwrap();
    let positions: Vec<SpoolPos> = (0..100).map(|i| append(&spool, &format!("t{i}"))).collect();
    for p in &positions {
        spool.set_needed(*p, 1);
    }
    // Resolved in batches, the last of which empties the segment being written.
    for chunk in positions.chunks(30) {
        spool.resolve("a", chunk);
    }
    assert_eq!(
        spool.stats().disk_bytes,
        8,
        "only a fresh segment's header is left"
    );
    drop(spool);
    let spool = Spool::open(config).unwrap();
    assert_eq!(spool.stats().waiting, 0);
    assert!(replay_all(&spool).is_empty());
}

#[test]
fn every_resolution_reaches_the_acks_file_before_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let spool = Spool::open(config.clone()).unwrap();
    let positions: Vec<SpoolPos> = (0..10).map(|i| append(&spool, &format!("t{i}"))).collect();
    for p in &positions {
        spool.set_needed(*p, 1);
    }
    spool.resolve("a", &positions[..7]);
    // A crash: the spool is never told anything more.
    std::mem::forget(spool);
    let spool = Spool::open(config).unwrap();
    assert_eq!(names(&replay_all(&spool)), ["t7", "t8", "t9"]);
}

#[test]
fn a_record_nobody_needs_is_finished_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SpoolConfig::new(dir.path());
    config.segment_bytes = 1;
    let spool = Spool::open(config).unwrap();
    let p1 = append(&spool, "t1");
    let p2 = append(&spool, "t2");
    assert_ne!(
        p1.segment, p2.segment,
        "a tiny segment size rolls every record"
    );
    spool.set_needed(p1, 0);
    assert_eq!(spool.stats().segments_deleted, 1);
}

#[test]
fn a_torn_tail_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let spool = Spool::open(config.clone()).unwrap();
    for n in ["t1", "t2", "t3"] {
        append(&spool, n);
    }
    drop(spool);
    let path = segment_path(dir.path(), 0, "log");
    let len = fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 5).unwrap();
    let spool = Spool::open(config).unwrap();
    assert_eq!(names(&replay_all(&spool)), ["t1", "t2"]);
    let stats = spool.stats();
    assert!(stats.torn_bytes > 0 && stats.torn_bytes < len, "{stats:?}");
    assert_eq!(stats.corrupt_records, 0);
}

#[test]
fn corruption_in_the_middle_costs_only_the_records_it_touches() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let spool = Spool::open(config.clone()).unwrap();
    let positions: Vec<SpoolPos> = (0..2000)
        .map(|i| append(&spool, &format!("t{i}")))
        .collect();
    drop(spool);
    let path = segment_path(dir.path(), 0, "log");
    let mut bytes = fs::read(&path).unwrap();
    let middle = positions[1000].offset as usize;
    for b in &mut bytes[middle + 5..middle + 21] {
        *b ^= 0x5A;
    }
    fs::write(&path, &bytes).unwrap();
    let spool = Spool::open(config).unwrap();
    let replayed = replay_all(&spool);
    assert_eq!(replayed.len(), 1999, "16 flipped bytes cost one record");
    assert!(!names(&replayed).contains(&"t1000".to_owned()));
    let stats = spool.stats();
    assert_eq!(stats.corrupt_records, 1, "{stats:?}");
    assert!(
        stats.corrupt_bytes > 0 && stats.torn_bytes == 0,
        "{stats:?}"
    );
}

#[test]
fn a_damaged_segment_is_deleted_only_once_every_readable_record_is_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let spool = Spool::open(config.clone()).unwrap();
    let positions: Vec<SpoolPos> = (0..3).map(|i| append(&spool, &format!("t{i}"))).collect();
    drop(spool);
    let path = segment_path(dir.path(), 0, "log");
    let mut bytes = fs::read(&path).unwrap();
    bytes[positions[1].offset as usize + 14] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let spool = Spool::open(config).unwrap();
    let replayed = replay_all(&spool);
    assert_eq!(names(&replayed), ["t0", "t2"]);
    spool.set_needed(replayed[0].pos, 1);
    spool.resolve("a", &[replayed[0].pos]);
    assert!(path.exists(), "t2 still needs it");
    spool.set_needed(replayed[1].pos, 1);
    spool.resolve("a", &[replayed[1].pos]);
    assert!(!path.exists());
}

#[test]
fn a_file_with_no_readable_record_is_moved_aside_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = segment_path(dir.path(), 3, "log");
    fs::write(&path, b"an older format, or garbage").unwrap();
    let spool = Spool::open(SpoolConfig::new(dir.path())).unwrap();
    assert!(replay_all(&spool).is_empty());
    assert!(!path.exists());
    assert!(
        dir.path()
            .join("segment-00000000000000000003.log.unreadable")
            .exists()
    );
    assert_eq!(spool.lock().next_segment, 5, "numbers are never reused");
}

#[test]
fn a_torn_ack_line_only_loses_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let spool = Spool::open(config.clone()).unwrap();
    let p1 = append(&spool, "t1");
    let p2 = append(&spool, "t2");
    append(&spool, "t3");
    spool.set_needed(p1, 1);
    spool.set_needed(p2, 1);
    spool.resolve("a", &[p1]);
    drop(spool);
    let mut acks = OpenOptions::new()
        .append(true)
        .open(segment_path(dir.path(), 0, "acks"))
        .unwrap();
    write!(acks, "{{\"p\":\"a\",\"r\":[{}", p2.offset).unwrap();
    let spool = Spool::open(config).unwrap();
    assert_eq!(names(&replay_all(&spool)), ["t2", "t3"]);
}

#[test]
fn resolutions_written_after_a_torn_ack_line_are_kept() {
    // Found by fuzzing: the first ack line written after a restart was appended to the torn
    // line, so both were unreadable and its records were sent again after the next restart.
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let spool = Spool::open(config.clone()).unwrap();
    let p1 = append(&spool, "t1");
    append(&spool, "t2");
    append(&spool, "t3");
    spool.set_needed(p1, 1);
    spool.resolve("a", &[p1]);
    drop(spool);
    let mut acks = OpenOptions::new()
        .append(true)
        .open(segment_path(dir.path(), 0, "acks"))
        .unwrap();
    write!(acks, "{{\"p\":\"a\",\"r\":[").unwrap();
    let spool = Spool::open(config.clone()).unwrap();
    let replayed = replay_all(&spool);
    assert_eq!(names(&replayed), ["t2", "t3"]);
    spool.set_needed(replayed[0].pos, 1);
    spool.resolve("a", &[replayed[0].pos]);
    drop(spool);
    let spool = Spool::open(config).unwrap();
    assert_eq!(names(&replay_all(&spool)), ["t3"]);
}

#[test]
fn files_not_named_as_the_spool_names_segments_are_left_alone() {
    // Found by the spool_replay fuzz harness: a file numbered u64::MAX made opening the spool
    // overflow.
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let spool = Spool::open(config.clone()).unwrap();
    append(&spool, "t1");
    drop(spool);
    let segment = fs::read(segment_path(dir.path(), 0, "log")).unwrap();
    let foreign = [
        format!("segment-{}.log", u64::MAX),
        format!("segment-{}.log", u64::MAX - 1),
        format!("segment-{}.log", MAX_SEGMENT + 1),
        "segment-7.log".to_owned(),
        "segment-+0000000000000000007.log".to_owned(),
    ];
    for name in &foreign {
        fs::write(dir.path().join(name), &segment).unwrap();
    }
    let spool = Spool::open(config.clone()).unwrap();
    assert_eq!(names(&replay_all(&spool)), ["t1"]);
    drop(spool);
    let left = files(dir.path());
    for name in &foreign {
        assert!(left.contains(name), "{name} was touched: {left:?}");
    }
    // The last numbers: the spool starts the highest one, and past it refuses to open.
    fs::write(segment_path(dir.path(), MAX_SEGMENT - 1, "log"), &segment).unwrap();
    for _ in 0..2 {
        let spool = Spool::open(config.clone()).unwrap();
        assert_eq!(names(&replay_all(&spool)), ["t1", "t1"]);
    }
    fs::write(segment_path(dir.path(), MAX_SEGMENT, "log"), &segment).unwrap();
    assert!(matches!(Spool::open(config), Err(SpoolError::Dir { .. })));
}

#[test]
fn the_disk_cap_follows_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SpoolConfig::new(dir.path());
    config.max_bytes = 600;
    let spool = Spool::open(config.clone()).unwrap();
    let mut written = 0;
    for i in 0..20 {
        if let Appended::Written { .. } = spool.append(&task(&format!("t{i}")), true).unwrap() {
            written += 1;
        }
    }
    let stats = spool.stats();
    assert!(written > 0 && written < 20, "{written}");
    assert_eq!(stats.not_spooled, 20 - written);
    assert!(stats.disk_bytes <= 600);
    drop(spool);

    let dir = tempfile::tempdir().unwrap();
    config.dir = dir.path().into();
    config.when_full = SpoolFullPolicy::DropNew;
    let spool = Spool::open(config).unwrap();
    let errors: Vec<String> = (0..20)
        .filter_map(|i| {
            spool
                .append(&task(&format!("t{i}")), true)
                .err()
                .map(|e| e.to_string())
        })
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors[0].contains("at its cap of 600 bytes"),
        "{}",
        errors[0]
    );
}

#[test]
fn segments_roll_and_finished_ones_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SpoolConfig::new(dir.path());
    config.segment_bytes = 300;
    config.fsync = FsyncPolicy::Always;
    let spool = Spool::open(config).unwrap();
    let positions: Vec<SpoolPos> = (0..10).map(|i| append(&spool, &format!("t{i}"))).collect();
    let segments: std::collections::HashSet<u64> = positions.iter().map(|p| p.segment).collect();
    assert!(segments.len() > 2, "{segments:?}");
    for p in &positions {
        spool.set_needed(*p, 1);
    }
    spool.resolve("a", &positions);
    let left = files(dir.path());
    assert_eq!(
        left.iter().filter(|f| f.ends_with(".log")).count(),
        1,
        "{left:?}"
    );
    assert!(spool.stats().disk_bytes < 300);
}

#[test]
fn an_unusable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let err = Spool::open(SpoolConfig::new(file.join("spool")))
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("trace spool directory"), "{err}");
    assert!(
        err.contains("not-a-dir/spool") && err.contains("OPS_TRACE_SPOOL_DIR"),
        "{err}"
    );
}

#[test]
fn a_failing_disk_falls_back_to_memory_and_durability_resumes_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(SpoolConfig::new(dir.path())).unwrap();
    append(&spool, "t1");
    // Swap the segment file for a read-only handle, as a disk that refuses writes would.
    let path = {
        let mut state = spool.lock();
        let w = state.writer.as_mut().unwrap();
        let path = segment_path(dir.path(), w.segment, "log");
        w.file = Arc::new(File::open(&path).unwrap());
        path
    };
    assert_eq!(
        spool.append(&task("t2"), true).unwrap(),
        Appended::NotWritten
    );
    assert_eq!(
        spool.append(&task("t3"), true).unwrap(),
        Appended::NotWritten,
        "no write is tried during the backoff"
    );
    let stats = spool.stats();
    assert_eq!((stats.not_spooled, stats.write_errors), (2, 1));
    // The backoff passes; the next write goes to a fresh segment.
    spool.lock().retry_at = Some(Instant::now());
    let p4 = append(&spool, "t4");
    assert_ne!(segment_path(dir.path(), p4.segment, "log"), path);
    assert_eq!(names(&spool.take_replay(usize::MAX)), Vec::<String>::new());
}

#[test]
fn what_waits_on_disk_is_read_back_a_budget_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(SpoolConfig::new(dir.path())).unwrap();
    for i in 0..100 {
        let written = spool.append(&task(&format!("t{i}")), false).unwrap();
        assert!(matches!(written, Appended::Written { .. }));
    }
    assert_eq!(spool.stats().waiting, 100);
    assert!(spool.has_waiting());
    let first = spool.take_replay(1000);
    assert!(!first.is_empty() && first.len() < 20, "{}", first.len());
    assert_eq!(first[0].task.trace_id().as_str(), "t0");
    let mut seen = first.len();
    while spool.has_waiting() {
        let more = spool.take_replay(1000);
        assert!(!more.is_empty());
        seen += more.len();
    }
    assert_eq!(seen, 100);
    assert_eq!(spool.stats().replayed, 100);
}
