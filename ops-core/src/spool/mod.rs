//! The durable spool: with it on, an accepted task is on disk before `add_trace_task` returns
//! ([`crate::Accepted::Durable`]), and survives a crash until every provider has resolved it.
//!
//! Layout of the spool directory:
//! - `segment-<n>.log`: a header, then records framed with a sync marker, their length and a
//!   checksum (see `record.rs`), appended in order. A new segment starts when the current one
//!   passes [`SpoolConfig::segment_bytes`].
//! - `segment-<n>.acks`: one JSON line per resolution, naming by byte offset the records a
//!   provider lane resolved (`{"p":"<lane>","r":[..]}`) and those every lane is done with
//!   (`"d":[..]`).
//!
//! # Guarantees
//! - **Every resolution reaches the acks file** (or the segment is deleted because all its
//!   records are done), so a restart after a clean shutdown re-sends nothing, and after a crash
//!   only the batches that were in flight are sent again. Ids are stable, so a platform that
//!   got one before upserts it.
//! - **Damage costs only the records it touches.** The reader skips a damaged record to the
//!   next sync marker; skipped records and bytes are counted ([`SpoolStats::corrupt_records`],
//!   [`SpoolStats::torn_bytes`]) and logged as "corrupt record" or "torn tail". A segment is
//!   deleted only once every readable record in it is resolved; a non-empty file with no
//!   readable record at all is renamed `*.unreadable` and left for inspection, never deleted.
//! - **A failed write is not the end of durability.** After a write error (a full disk, say)
//!   the partial record is cut off, tasks are accepted in memory only
//!   ([`crate::Accepted::MemoryOnly`], counted in [`SpoolStats::not_spooled`]) and the spool
//!   tries again after a backoff (1 s doubling to 30 s): durability resumes by itself once
//!   there is room. Segments are deleted as soon as they are resolved, so delivering frees the
//!   disk.
//! - **Disk use is capped** by [`SpoolConfig::max_bytes`] (record segments; the acks files add
//!   a few bytes per resolved record). Past the cap a task is accepted in memory only, or
//!   refused under [`SpoolFullPolicy::DropNew`].
//! - **Memory stays bounded while replaying.** Records are read back a budget's worth at a
//!   time as the queue has room, not all at once; a task accepted while the queue's memory is
//!   full is kept on disk only and read back the same way.
//! - **fsync never runs under the lock `add_trace_task` takes**, so an interval sync never
//!   stalls a caller.

mod record;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::task::TraceTask;

/// The spool directory; setting it turns durability on for [`crate::init`].
pub const SPOOL_DIR_ENV: &str = "OPS_TRACE_SPOOL_DIR";
/// The fsync policy: `always`, `never`, or an interval in milliseconds such as `200` (1 to
/// 3600000; `0` is refused, use `always`).
pub const SPOOL_FSYNC_ENV: &str = "OPS_TRACE_SPOOL_FSYNC";
/// The spool's disk cap in bytes (a whole number from 1 to 1125899906842624).
pub const SPOOL_MAX_BYTES_ENV: &str = "OPS_TRACE_SPOOL_MAX_BYTES";

/// When the spool makes its writes durable.
///
/// The cost is measured by the `spool` bench: `Always` waits for the disk on every enqueue
/// (typically tens of microseconds to milliseconds); `Interval` bounds the loss window of a
/// power failure (not of a process crash: written records are in the OS's page cache) to the
/// interval, for the cost of a buffered write; `Never` leaves it to the OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` after every record, before `add_trace_task` returns.
    Always,
    /// `fdatasync` from the worker at this interval.
    Interval(Duration),
    /// Never sync explicitly.
    Never,
}

/// What happens to a task when the spool is at its disk cap or cannot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolFullPolicy {
    /// Queue it in memory only: it is delivered unless the process dies first. The caller is
    /// told ([`crate::Accepted::MemoryOnly`]); counted in [`SpoolStats::not_spooled`] and
    /// warned about once.
    MemoryOnly,
    /// Refuse it: dropped and counted as [`crate::DropReason::SpoolFull`].
    DropNew,
}

/// The spool's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpoolConfig {
    /// Where segments live; created if missing.
    pub dir: PathBuf,
    /// The most disk the spool's segments may use (default 256 MiB).
    pub max_bytes: u64,
    /// The size at which a new segment starts (default 8 MiB).
    pub segment_bytes: u64,
    /// When writes are synced to disk (default every 200 ms).
    pub fsync: FsyncPolicy,
    /// What to do at the cap (default [`SpoolFullPolicy::MemoryOnly`]).
    pub when_full: SpoolFullPolicy,
}

impl SpoolConfig {
    /// A spool in `dir` with the defaults.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: 256 << 20,
            segment_bytes: 8 << 20,
            fsync: FsyncPolicy::Interval(Duration::from_millis(200)),
            when_full: SpoolFullPolicy::MemoryOnly,
        }
    }

    /// The spool configured by `OPS_TRACE_SPOOL_DIR`, `OPS_TRACE_SPOOL_FSYNC` and
    /// `OPS_TRACE_SPOOL_MAX_BYTES`; `Ok(None)` when no directory is set. The directory may be
    /// any path (it need not be UTF-8); the other two are checked against their ranges:
    /// `always`, `never` or 1 to 3600000 ms, and 1 to 1125899906842624 bytes.
    pub fn from_env() -> Result<Option<Self>, SpoolError> {
        let Some(dir) = std::env::var_os(SPOOL_DIR_ENV).filter(|d| !d.is_empty()) else {
            return Ok(None);
        };
        let config_error = |e: crate::env::EnvError| SpoolError::Config(e.to_string());
        let mut config = Self::new(dir);
        let (min, max) = crate::queue::settings::SPOOL_FSYNC;
        let fsync = crate::env::parse_var(SPOOL_FSYNC_ENV, |v| match v.trim() {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            ms => crate::env::milliseconds(ms, min, max)
                .map(FsyncPolicy::Interval)
                .map_err(|e| {
                    format!("use `always`, `never`, or an interval in milliseconds: {e} (`0` is not allowed: use `always` to sync every record)")
                }),
        })
        .map_err(config_error)?;
        if let Some(fsync) = fsync {
            config.fsync = fsync;
        }
        let (min, max) = crate::queue::settings::SPOOL_MAX_BYTES;
        if let Some(bytes) = crate::env::parse_var(SPOOL_MAX_BYTES_ENV, |v| {
            crate::env::whole_number(v, min, max)
                .map_err(|e| format!("{e} bytes, such as 268435456 (256 MiB)"))
        })
        .map_err(config_error)?
        {
            config.max_bytes = bytes;
        }
        Ok(Some(config))
    }
}

/// A problem with the spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The spool directory cannot be used.
    #[error(
        "trace spool directory {path:?} cannot be used: {source}; check that it exists or can be created and is writable, or unset OPS_TRACE_SPOOL_DIR"
    )]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// The spool is full or cannot write, and its policy is to refuse new tasks.
    #[error("trace spool {dir:?} cannot take the task: {reason}")]
    Full {
        /// The spool directory.
        dir: PathBuf,
        /// Why: at its cap, or writes are failing.
        reason: String,
    },
}

/// Counters of the spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolStats {
    /// Records written.
    pub written: u64,
    /// Records read back from disk: left by an earlier process, or kept on disk only while
    /// the queue's memory was full.
    pub replayed: u64,
    /// Damaged records skipped between intact ones.
    pub corrupt_records: u64,
    /// Bytes of those damaged records.
    pub corrupt_bytes: u64,
    /// Bytes skipped at the end of segments (a write cut short by a crash).
    pub torn_bytes: u64,
    /// Records whose checksum held but that could not be read as a task (written by an
    /// incompatible version); skipped.
    pub unreadable_records: u64,
    /// Tasks accepted in memory only because the spool was full or failing.
    pub not_spooled: u64,
    /// Writes that failed (a full disk, an I/O error); the spool retried after a backoff.
    pub write_errors: u64,
    /// Segments deleted after every provider resolved them.
    pub segments_deleted: u64,
    /// Bytes the spool's segments use on disk now.
    pub disk_bytes: u64,
    /// Records on disk waiting to be read back into the queue.
    pub waiting: u64,
    /// Records not resolved by every provider yet: waiting on disk, or in the queue's memory.
    /// What a process that stops now leaves for the next start.
    pub unresolved: u64,
}

/// Where a record lives: its segment and its byte offset there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SpoolPos {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
}

/// A record read back from disk, with the lanes that had already resolved it.
pub(crate) struct Replayed {
    pub(crate) pos: SpoolPos,
    pub(crate) task: TraceTask,
    pub(crate) acked: Vec<String>,
}

/// What became of a task handed to [`Spool::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Written at `pos`; `durable` unless the policy's sync failed.
    Written { pos: SpoolPos, durable: bool },
    /// Not written: the spool is full or failing and the policy keeps tasks in memory.
    NotWritten,
}

/// One record's progress.
#[derive(Clone, Default)]
struct Rec {
    offset: u64,
    len: u32,
    /// How many lanes must resolve it; `None` until the worker has routed it.
    needed: Option<u16>,
    resolved: u16,
    done: bool,
    /// Whether it is in the queue's memory (else it waits on disk to be read back).
    loaded: bool,
    /// Lanes that resolved it in an earlier process.
    acked: Vec<String>,
}

struct Segment {
    /// Bytes of the file.
    bytes: u64,
    /// By offset, ascending.
    records: Vec<Rec>,
    /// Records not done.
    open: u32,
    /// Records not done and not loaded.
    unloaded: u32,
    /// Index below which every record is loaded or done.
    cursor: usize,
    acks: Option<File>,
}

impl Segment {
    fn new(bytes: u64) -> Self {
        Segment {
            bytes,
            records: Vec::new(),
            open: 0,
            unloaded: 0,
            cursor: 0,
            acks: None,
        }
    }

    fn find(&mut self, offset: u64) -> Option<&mut Rec> {
        let i = self
            .records
            .binary_search_by_key(&offset, |r| r.offset)
            .ok()?;
        self.records.get_mut(i)
    }

    /// Marks the record at `offset` done if every lane it needs resolved it; returns whether
    /// it just became done.
    fn settle(&mut self, offset: u64) -> bool {
        let Some(r) = self.find(offset) else {
            return false;
        };
        if r.done || r.needed.is_none_or(|n| r.resolved < n) {
            return false;
        }
        r.done = true;
        let unloaded = !r.loaded;
        self.open = self.open.saturating_sub(1);
        if unloaded {
            self.unloaded = self.unloaded.saturating_sub(1);
        }
        true
    }
}

struct Writer {
    segment: u64,
    file: Arc<File>,
    /// Bytes written to the file so far (where the next record starts).
    len: u64,
}

struct State {
    writer: Option<Writer>,
    segments: BTreeMap<u64, Segment>,
    next_segment: u64,
    disk_bytes: u64,
    stats: SpoolStats,
    /// Files written since the last sync (the writer's, and those of segments rolled over).
    unsynced: Vec<Arc<File>>,
    /// A segment file was created or deleted since the directory was last synced.
    dir_dirty: bool,
    /// After a failed write: no write is tried before this.
    retry_at: Option<Instant>,
    write_failures: u32,
    warned_full: bool,
}

/// The spool of one queue.
pub(crate) struct Spool {
    config: SpoolConfig,
    state: Mutex<State>,
    /// Records waiting on disk to be read back (mirrors the segments' `unloaded`, readable
    /// without the lock).
    waiting: AtomicU64,
}

fn segment_path(dir: &Path, n: u64, ext: &str) -> PathBuf {
    dir.join(format!("segment-{n:020}.{ext}"))
}

/// The highest segment number: a spool starting a segment every nanosecond would take three
/// centuries to reach it. Numbering stops there (the next segment would be this one again, a
/// clear error), so it never overflows.
const MAX_SEGMENT: u64 = 10_000_000_000_000_000_000;

/// The number after segment `n`'s.
fn next_number(n: u64) -> u64 {
    n.saturating_add(1).min(MAX_SEGMENT)
}

/// The number and extension of a file named as [`segment_path`] names them (20 digits, at
/// most [`MAX_SEGMENT`]); any other file is not the spool's and is left alone.
fn segment_number(name: &str) -> Option<(u64, &str)> {
    let rest = name.strip_prefix("segment-")?;
    let (n, ext) = rest.split_once('.')?;
    if n.len() != 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = n.parse().ok()?;
    (n <= MAX_SEGMENT).then_some((n, ext))
}

impl Spool {
    /// Opens (creating) the spool and indexes what a previous process left, to be read back
    /// with [`Spool::take_replay`].
    pub(crate) fn open(config: SpoolConfig) -> Result<Self, SpoolError> {
        let dir_err = |source| SpoolError::Dir {
            path: config.dir.clone(),
            source,
        };
        fs::create_dir_all(&config.dir).map_err(dir_err)?;
        let mut logs = Vec::new();
        let mut acks_only = HashSet::new();
        let mut highest = None;
        for entry in fs::read_dir(&config.dir).map_err(dir_err)?.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some((n, ext)) = segment_number(&name) else {
                continue;
            };
            highest = highest.max(Some(n));
            match ext {
                "log" => logs.push(n),
                "acks" => {
                    acks_only.insert(n);
                }
                _ => {}
            }
        }
        logs.sort_unstable();
        let mut state = State {
            writer: None,
            segments: BTreeMap::new(),
            next_segment: highest.map_or(0, next_number),
            disk_bytes: 0,
            stats: SpoolStats::default(),
            unsynced: Vec::new(),
            dir_dirty: false,
            retry_at: None,
            write_failures: 0,
            warned_full: false,
        };
        for n in logs {
            acks_only.remove(&n);
            if let Some(segment) = Self::index_segment(&config.dir, n, &mut state.stats) {
                state.disk_bytes += segment.bytes;
                state.segments.insert(n, segment);
            }
        }
        // Acks whose segment is gone (a crash between the two deletions).
        for n in acks_only {
            let _ = fs::remove_file(segment_path(&config.dir, n, "acks"));
        }
        let waiting: u64 = state.segments.values().map(|s| u64::from(s.unloaded)).sum();
        state.stats.disk_bytes = state.disk_bytes;
        let spool = Spool {
            config,
            state: Mutex::new(state),
            waiting: AtomicU64::new(waiting),
        };
        {
            let mut state = spool.lock();
            let finished: Vec<u64> = state
                .segments
                .iter()
                .filter(|(_, s)| s.open == 0)
                .map(|(n, _)| *n)
                .collect();
            for n in finished {
                spool.delete(&mut state, n);
            }
            let next = state.next_segment;
            match spool.start_segment(&mut state, next) {
                Ok(()) => {}
                // A full disk at start: accept in memory only and try again later.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                    ) =>
                {
                    let _ = spool.failure(&mut state, e);
                    state.stats.not_spooled = 0;
                }
                Err(source) => {
                    return Err(SpoolError::Dir {
                        path: spool.config.dir.clone(),
                        source,
                    });
                }
            }
        }
        Ok(spool)
    }

    /// Reads a segment left by an earlier process: which records it holds and which are done.
    fn index_segment(dir: &Path, n: u64, stats: &mut SpoolStats) -> Option<Segment> {
        let path = segment_path(dir, n, "log");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ops: unreadable spool segment skipped");
                return None;
            }
        };
        let decoded = record::decode(&bytes);
        if decoded.records.is_empty() && !decoded.has_header && !bytes.is_empty() {
            let aside = path.with_extension("log.unreadable");
            tracing::warn!(
                path = %path.display(),
                moved_to = %aside.display(),
                bytes = bytes.len(),
                "ops: spool segment holds no readable record (corrupt, or written by another \
                 format); moved aside, not deleted"
            );
            let _ = fs::rename(&path, &aside);
            return None;
        }
        let (corrupt_records, corrupt_bytes) = decoded.corrupt();
        if corrupt_records > 0 {
            stats.corrupt_records += corrupt_records;
            stats.corrupt_bytes += corrupt_bytes;
            tracing::warn!(
                path = %path.display(),
                records = corrupt_records,
                bytes = corrupt_bytes,
                intact = decoded.records.len(),
                "ops: corrupt record(s) in spool segment skipped; the intact records around them are kept"
            );
        }
        let torn = decoded.torn_bytes();
        if torn > 0 {
            stats.torn_bytes += torn;
            tracing::warn!(path = %path.display(), bytes = torn, "ops: torn tail of spool segment skipped (a write cut short)");
        }
        let mut acks = read_acks(&segment_path(dir, n, "acks"));
        let mut segment = Segment::new(bytes.len() as u64);
        for (offset, payload) in &decoded.records {
            let done = acks.done.contains(offset);
            segment.records.push(Rec {
                offset: *offset,
                len: payload.len() as u32,
                done,
                acked: if done {
                    Vec::new()
                } else {
                    acks.by_record.remove(offset).unwrap_or_default()
                },
                ..Rec::default()
            });
            if !done {
                segment.open += 1;
                segment.unloaded += 1;
            }
        }
        Some(segment)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start_segment(&self, state: &mut State, n: u64) -> std::io::Result<()> {
        let path = segment_path(&self.config.dir, n, "log");
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        if let Err(e) = file.write_all(record::SEGMENT_MAGIC) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        let header = record::SEGMENT_MAGIC.len() as u64;
        let file = Arc::new(file);
        if matches!(self.config.fsync, FsyncPolicy::Interval(_)) {
            state.unsynced.push(Arc::clone(&file));
        }
        state.writer = Some(Writer {
            segment: n,
            file,
            len: header,
        });
        state.segments.insert(n, Segment::new(header));
        state.next_segment = next_number(n);
        state.disk_bytes += header;
        state.stats.disk_bytes = state.disk_bytes;
        state.dir_dirty = true;
        Ok(())
    }

    /// Writes a task. `in_memory` says whether the queue holds it too; if not, it waits on
    /// disk until [`Spool::take_replay`] reads it back.
    ///
    /// Returns [`Appended::NotWritten`] when the spool is full or failing and the policy keeps
    /// tasks in memory; `Err` when the policy refuses them.
    pub(crate) fn append(&self, task: &TraceTask, in_memory: bool) -> Result<Appended, SpoolError> {
        let payload = match serde_json::to_vec(task) {
            Ok(p) if p.len() <= record::MAX_RECORD => p,
            Ok(p) => {
                let mut state = self.lock();
                return self.full(
                    &mut state,
                    format!("a record of {} bytes is over the spool's limit", p.len()),
                );
            }
            Err(e) => {
                let mut state = self.lock();
                return self.full(&mut state, format!("the task could not be serialized: {e}"));
            }
        };
        let mut framed = Vec::with_capacity(payload.len() + record::HEADER);
        record::encode(&payload, &mut framed);
        drop(payload);
        let mut state = self.lock();
        if state.retry_at.is_some_and(|t| Instant::now() < t) {
            return self.full(
                &mut state,
                "writes are failing; retrying after a backoff".into(),
            );
        }
        if state.disk_bytes + framed.len() as u64 > self.config.max_bytes {
            let reason = format!("at its cap of {} bytes", self.config.max_bytes);
            return self.full(&mut state, reason);
        }
        let roll = state.writer.as_ref().is_none_or(|w| {
            w.len > record::SEGMENT_MAGIC.len() as u64
                && w.len + framed.len() as u64 > self.config.segment_bytes
        });
        if roll {
            self.close_writer(&mut state);
            let next = state.next_segment;
            if let Err(e) = self.start_segment(&mut state, next) {
                return self.failure(&mut state, e);
            }
        }
        let writer = state.writer.as_mut().expect("a segment is open");
        let (segment, offset) = (writer.segment, writer.len);
        if let Err(e) = (&*writer.file).write_all(&framed) {
            // Cut the partial record off, so the next one starts clean (the reader would
            // skip it anyway); if even that fails, start a new segment next time.
            if writer.file.set_len(offset).is_err() {
                self.close_writer(&mut state);
            }
            return self.failure(&mut state, e);
        }
        writer.len += framed.len() as u64;
        let file = Arc::clone(&writer.file);
        if state.write_failures > 0 {
            tracing::info!(dir = %self.config.dir.display(), "ops: the trace spool writes again; durability resumed");
            state.write_failures = 0;
            state.retry_at = None;
        }
        if matches!(self.config.fsync, FsyncPolicy::Interval(_))
            && !state.unsynced.iter().any(|f| Arc::ptr_eq(f, &file))
        {
            state.unsynced.push(Arc::clone(&file));
        }
        let seg = state
            .segments
            .get_mut(&segment)
            .expect("the open segment is tracked");
        seg.records.push(Rec {
            offset,
            len: (framed.len() - record::HEADER) as u32,
            loaded: in_memory,
            ..Rec::default()
        });
        seg.open += 1;
        if !in_memory {
            seg.unloaded += 1;
            self.waiting.fetch_add(1, Relaxed);
        }
        seg.bytes += framed.len() as u64;
        state.disk_bytes += framed.len() as u64;
        state.stats.disk_bytes = state.disk_bytes;
        state.stats.written += 1;
        let pos = SpoolPos { segment, offset };
        if self.config.fsync != FsyncPolicy::Always {
            return Ok(Appended::Written { pos, durable: true });
        }
        let dir = std::mem::take(&mut state.dir_dirty);
        drop(state);
        let durable = self.sync_files(vec![file]);
        if dir {
            self.sync_dir();
        }
        Ok(Appended::Written { pos, durable })
    }

    /// Stops appending to the current segment (its file is synced with the others).
    fn close_writer(&self, state: &mut State) {
        if let Some(w) = state.writer.take()
            && state.segments.get(&w.segment).is_some_and(|s| s.open == 0)
        {
            self.delete(state, w.segment);
        }
    }

    fn full(&self, state: &mut State, reason: String) -> Result<Appended, SpoolError> {
        match self.config.when_full {
            SpoolFullPolicy::MemoryOnly => {
                if !state.warned_full {
                    state.warned_full = true;
                    tracing::warn!(dir = %self.config.dir.display(), reason = %reason, "ops: trace spool full or failing; tasks are accepted in memory only until it has room (counted in SpoolStats::not_spooled)");
                }
                state.stats.not_spooled += 1;
                Ok(Appended::NotWritten)
            }
            SpoolFullPolicy::DropNew => Err(SpoolError::Full {
                dir: self.config.dir.clone(),
                reason,
            }),
        }
    }

    fn failure(&self, state: &mut State, e: std::io::Error) -> Result<Appended, SpoolError> {
        state.stats.write_errors += 1;
        state.write_failures = state.write_failures.saturating_add(1);
        let backoff = Duration::from_secs(1 << state.write_failures.min(6).saturating_sub(1))
            .min(Duration::from_secs(30));
        state.retry_at = Some(Instant::now() + backoff);
        if state.write_failures == 1 {
            tracing::warn!(dir = %self.config.dir.display(), error = %e, retry_in = ?backoff, "ops: writing the trace spool failed; tasks are accepted in memory only until a write succeeds again");
        }
        self.full(state, format!("a write failed: {e}"))
    }

    /// Syncs `files` (outside the lock); returns whether every sync succeeded.
    fn sync_files(&self, files: Vec<Arc<File>>) -> bool {
        let mut ok = true;
        for file in files {
            if let Err(e) = file.sync_data() {
                ok = false;
                tracing::warn!(dir = %self.config.dir.display(), error = %e, "ops: syncing the trace spool failed");
            }
        }
        ok
    }

    /// Syncs everything written since the last sync (for [`FsyncPolicy::Interval`]). The lock
    /// is held only to take the list of files, never while syncing.
    pub(crate) fn sync_now(&self) {
        let (files, dir) = {
            let mut state = self.lock();
            let files = std::mem::take(&mut state.unsynced);
            (files, std::mem::take(&mut state.dir_dirty))
        };
        self.sync_files(files);
        if dir {
            self.sync_dir();
        }
    }

    /// Makes segment files created or deleted since the last sync durable.
    fn sync_dir(&self) {
        if let Ok(d) = File::open(&self.config.dir) {
            let _ = d.sync_all();
        }
    }

    /// Sets how many lanes must resolve the record at `pos` (the worker routes it first).
    /// Zero finishes it at once: nobody needs it, or it was dropped for good.
    pub(crate) fn set_needed(&self, pos: SpoolPos, needed: usize) {
        let mut state = self.lock();
        let Some(segment) = state.segments.get_mut(&pos.segment) else {
            return;
        };
        if let Some(r) = segment.find(pos.offset) {
            r.needed = Some(u16::try_from(needed).unwrap_or(u16::MAX));
        }
        if segment.settle(pos.offset) {
            self.after_settling(&mut state, pos.segment, &AckLine::done(vec![pos.offset]));
        }
    }

    /// Records that the lane `lane` resolved `positions`: accepted them, or gave up on them
    /// for good. Deletes segments whose records are all done.
    pub(crate) fn resolve(&self, lane: &str, positions: &[SpoolPos]) {
        if positions.is_empty() {
            return;
        }
        let mut by_segment: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for p in positions {
            by_segment.entry(p.segment).or_default().push(p.offset);
        }
        let mut state = self.lock();
        for (n, offsets) in by_segment {
            let Some(segment) = state.segments.get_mut(&n) else {
                continue;
            };
            let mut done = Vec::new();
            for &offset in &offsets {
                if let Some(r) = segment.find(offset) {
                    r.resolved = r.resolved.saturating_add(1);
                }
                if segment.settle(offset) {
                    done.push(offset);
                }
            }
            let line = AckLine {
                p: Some(lane),
                r: offsets,
                d: done,
            };
            self.after_settling(&mut state, n, &line);
        }
    }

    /// Deletes segment `n` when every record in it is done, else appends `line` to its acks.
    fn after_settling(&self, state: &mut State, n: u64, line: &AckLine<'_>) {
        let Some(segment) = state.segments.get_mut(&n) else {
            return;
        };
        if segment.open > 0 {
            self.write_ack(segment, n, line);
            return;
        }
        let active = state.writer.as_ref().is_some_and(|w| w.segment == n);
        self.delete(state, n);
        if active {
            // Start the next segment here, on the worker, so a caller never creates one.
            let next = state.next_segment;
            if let Err(e) = self.start_segment(state, next) {
                tracing::debug!(error = %e, "ops: starting a spool segment failed; the next write retries");
            }
        }
    }

    /// Appends one line to a segment's acks file, in one write. A file that ends in a line cut
    /// short (by a crash, or a write that failed part way) gets a line break first, so the cut
    /// line never swallows this one.
    fn write_ack(&self, segment: &mut Segment, n: u64, line: &AckLine<'_>) {
        let mut text = String::new();
        let file = match &mut segment.acks {
            Some(f) => Ok(f),
            None => OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(segment_path(&self.config.dir, n, "acks"))
                .map(|f| {
                    if ends_mid_line(&f) {
                        text.push('\n');
                    }
                    segment.acks.insert(f)
                }),
        };
        text.push_str(&serde_json::to_string(line).unwrap_or_default());
        text.push('\n');
        if let Err(e) = file.and_then(|f| f.write_all(text.as_bytes())) {
            // Part of the line may be written: the next write reopens the file and checks.
            segment.acks = None;
            tracing::warn!(error = %e, "ops: writing spool acks failed; these records may be sent again after a restart");
        }
    }

    fn delete(&self, state: &mut State, n: u64) {
        if let Some(segment) = state.segments.remove(&n) {
            state.disk_bytes = state.disk_bytes.saturating_sub(segment.bytes);
            state.stats.disk_bytes = state.disk_bytes;
            state.stats.segments_deleted += 1;
            self.waiting.fetch_sub(u64::from(segment.unloaded), Relaxed);
        }
        if state.writer.as_ref().is_some_and(|w| w.segment == n) {
            state.writer = None;
        }
        // The log first: acks without their log are removed at the next start.
        let _ = fs::remove_file(segment_path(&self.config.dir, n, "log"));
        let _ = fs::remove_file(segment_path(&self.config.dir, n, "acks"));
        state.dir_dirty = true;
    }

    /// Whether records wait on disk to be read back.
    pub(crate) fn has_waiting(&self) -> bool {
        self.waiting.load(Relaxed) > 0
    }

    /// Reads back the oldest records waiting on disk, about `max_bytes` of them (at least one
    /// when any waits). Unreadable ones are counted and finished.
    pub(crate) fn take_replay(&self, max_bytes: usize) -> Vec<Replayed> {
        let mut wanted: Vec<(SpoolPos, u32, Vec<String>)> = Vec::new();
        {
            let mut state = self.lock();
            let mut bytes = 0usize;
            'segments: for (&n, segment) in state.segments.iter_mut() {
                if segment.unloaded == 0 {
                    continue;
                }
                while segment.cursor < segment.records.len() {
                    if !wanted.is_empty() && bytes >= max_bytes {
                        break 'segments;
                    }
                    let r = &mut segment.records[segment.cursor];
                    segment.cursor += 1;
                    if r.done || r.loaded {
                        continue;
                    }
                    r.loaded = true;
                    segment.unloaded -= 1;
                    self.waiting.fetch_sub(1, Relaxed);
                    bytes += r.len as usize;
                    let pos = SpoolPos {
                        segment: n,
                        offset: r.offset,
                    };
                    wanted.push((pos, r.len, std::mem::take(&mut r.acked)));
                }
            }
        }
        let mut files: HashMap<u64, Option<File>> = HashMap::new();
        let mut replayed = Vec::with_capacity(wanted.len());
        for (pos, len, acked) in wanted {
            let file = files.entry(pos.segment).or_insert_with(|| {
                File::open(segment_path(&self.config.dir, pos.segment, "log")).ok()
            });
            let mut buf = vec![0u8; record::HEADER + len as usize];
            let task = file
                .as_ref()
                .and_then(|f| f.read_exact_at(&mut buf, pos.offset).ok())
                .and_then(|()| record::record_at(&buf))
                .ok_or_else(|| "the record could not be read again".to_owned())
                .and_then(|payload| {
                    serde_json::from_slice::<TraceTask>(payload).map_err(|e| e.to_string())
                });
            match task {
                Ok(task) => replayed.push(Replayed { pos, task, acked }),
                Err(error) => {
                    tracing::warn!(segment = pos.segment, offset = pos.offset, error = %error, "ops: unreadable spool record skipped");
                    self.lock().stats.unreadable_records += 1;
                    self.set_needed(pos, 0);
                }
            }
        }
        if !replayed.is_empty() {
            self.lock().stats.replayed += replayed.len() as u64;
        }
        replayed
    }

    pub(crate) fn stats(&self) -> SpoolStats {
        let state = self.lock();
        let mut stats = state.stats;
        stats.unresolved = state.segments.values().map(|s| u64::from(s.open)).sum();
        stats.waiting = self.waiting.load(Relaxed);
        stats
    }

    pub(crate) fn config(&self) -> &SpoolConfig {
        &self.config
    }
}

/// See [`crate::__private::fuzz::spool_decode`].
pub(crate) fn fuzz_decode(bytes: &[u8]) -> usize {
    record::decode(bytes).records.len()
}

/// See [`crate::__private::fuzz::spool_replay`] and
/// [`crate::__private::fuzz::spool_replay_at_most`].
pub(crate) fn fuzz_replay(dir: &Path, max: usize) -> Result<usize, String> {
    let mut config = SpoolConfig::new(dir);
    config.fsync = FsyncPolicy::Never;
    let spool = Spool::open(config).map_err(|e| e.to_string())?;
    let mut read = 0;
    while spool.has_waiting() && read < max {
        let batch = spool.take_replay(1 << 20);
        if batch.is_empty() {
            break;
        }
        // Past `max` the rest of the batch stays in flight, as at a crash.
        for r in batch.iter().take(max - read) {
            spool.set_needed(r.pos, 1);
            spool.resolve("fuzz", &[r.pos]);
            read += 1;
        }
    }
    Ok(read)
}

/// One line of an acks file.
#[derive(serde::Serialize)]
struct AckLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    r: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    d: Vec<u64>,
}

impl AckLine<'_> {
    fn done(offsets: Vec<u64>) -> Self {
        AckLine {
            p: None,
            r: Vec::new(),
            d: offsets,
        }
    }
}

/// What an acks file says: per record offset, the lanes that resolved it, and the records
/// that are done (resolved by every lane that needed them).
#[derive(Default)]
struct Acks {
    by_record: HashMap<u64, Vec<String>>,
    done: HashSet<u64>,
}

/// Whether `file` is not empty and its last byte is not a line break.
fn ends_mid_line(file: &File) -> bool {
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut last = [b'\n'];
    len > 0 && file.read_exact_at(&mut last, len - 1).is_ok() && last[0] != b'\n'
}

/// Reads an acks file. Unreadable lines (a torn last line) are skipped.
fn read_acks(path: &Path) -> Acks {
    #[derive(serde::Deserialize)]
    struct Line {
        #[serde(default)]
        p: Option<String>,
        #[serde(default)]
        r: Vec<u64>,
        #[serde(default)]
        d: Vec<u64>,
    }
    let mut acks = Acks::default();
    let Ok(file) = File::open(path) else {
        return acks;
    };
    for line in BufReader::new(file).split(b'\n') {
        let Ok(line) = line else { break };
        let Ok(line) = serde_json::from_slice::<Line>(&line) else {
            continue;
        };
        acks.done.extend(line.d);
        let Some(lane) = line.p else { continue };
        for offset in line.r {
            let names = acks.by_record.entry(offset).or_default();
            if !names.contains(&lane) {
                names.push(lane.clone());
            }
        }
    }
    acks
}

#[cfg(test)]
mod tests;
