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

#[test]
fn records_survive_a_restart_until_every_provider_resolved_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let (spool, replayed) = Spool::open(config.clone()).unwrap();
    assert!(replayed.is_empty());
    let p1 = spool.append(&task("t1")).unwrap().unwrap();
    let p2 = spool.append(&task("t2")).unwrap().unwrap();
    let p3 = spool.append(&task("t3")).unwrap().unwrap();
    for p in [p1, p2, p3] {
        spool.set_needed(p, 2);
    }
    spool.resolve("a", &[p1, p2]);
    spool.resolve("b", &[p1]);
    drop(spool);

    let (spool, replayed) = Spool::open(config.clone()).unwrap();
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

    let (_spool, replayed) = Spool::open(config).unwrap();
    assert!(replayed.is_empty());
    assert_eq!(
        files(dir.path()),
        ["segment-00000000000000000002.log"],
        "only the fresh segment"
    );
}

#[test]
fn a_record_nobody_needs_is_finished_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SpoolConfig::new(dir.path());
    config.segment_bytes = 1;
    let (spool, _) = Spool::open(config).unwrap();
    let p1 = spool.append(&task("t1")).unwrap().unwrap();
    let p2 = spool.append(&task("t2")).unwrap().unwrap();
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
    let (spool, _) = Spool::open(config.clone()).unwrap();
    for n in ["t1", "t2", "t3"] {
        spool.append(&task(n)).unwrap();
    }
    drop(spool);
    let path = segment_path(dir.path(), 0, "log");
    let len = fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 5).unwrap();
    let (spool, replayed) = Spool::open(config).unwrap();
    assert_eq!(names(&replayed), ["t1", "t2"]);
    let torn = spool.stats().torn_bytes;
    assert!(torn > 0 && torn < len, "{torn}");
}

#[test]
fn a_torn_ack_line_only_loses_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::new(dir.path());
    let (spool, _) = Spool::open(config.clone()).unwrap();
    let p1 = spool.append(&task("t1")).unwrap().unwrap();
    let p2 = spool.append(&task("t2")).unwrap().unwrap();
    spool.set_needed(p1, 1);
    spool.set_needed(p2, 1);
    spool.resolve("a", &[p1]);
    drop(spool);
    let mut acks = OpenOptions::new()
        .append(true)
        .open(segment_path(dir.path(), 0, "acks"))
        .unwrap();
    write!(acks, "{{\"p\":\"a\",\"r\":[{}", p2.index).unwrap();
    let (_spool, replayed) = Spool::open(config).unwrap();
    assert_eq!(names(&replayed), ["t2"]);
}

#[test]
fn the_disk_cap_follows_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SpoolConfig::new(dir.path());
    config.max_bytes = 400;
    let (spool, _) = Spool::open(config.clone()).unwrap();
    let mut written = 0;
    for i in 0..20 {
        if spool.append(&task(&format!("t{i}"))).unwrap().is_some() {
            written += 1;
        }
    }
    let stats = spool.stats();
    assert!(written > 0 && written < 20, "{written}");
    assert_eq!(stats.not_spooled, 20 - written);
    assert!(stats.disk_bytes <= 400);
    drop(spool);

    let dir = tempfile::tempdir().unwrap();
    config.dir = dir.path().into();
    config.when_full = SpoolFullPolicy::DropNew;
    let (spool, _) = Spool::open(config).unwrap();
    let errors: Vec<String> = (0..20)
        .filter_map(|i| {
            spool
                .append(&task(&format!("t{i}")))
                .err()
                .map(|e| e.to_string())
        })
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors[0].contains("is at its cap of 400 bytes"),
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
    let (spool, _) = Spool::open(config).unwrap();
    let positions: Vec<SpoolPos> = (0..10)
        .map(|i| spool.append(&task(&format!("t{i}"))).unwrap().unwrap())
        .collect();
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
fn a_failing_disk_falls_back_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(SpoolConfig::new(dir.path())).unwrap();
    spool.append(&task("t1")).unwrap().unwrap();
    // Swap the segment file for a read-only handle, as a disk that refuses writes would.
    {
        let mut state = spool.state.lock().unwrap();
        let w = state.writer.as_mut().unwrap();
        w.file = File::open(segment_path(dir.path(), w.segment, "log")).unwrap();
    }
    assert!(spool.append(&task("t2")).unwrap().is_none());
    assert_eq!(spool.stats().not_spooled, 1);
}
