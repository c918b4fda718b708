//! The durable spool: with it on, every accepted task is on disk before `add_trace_task`
//! returns, and survives a crash until every provider has accepted it.
//!
//! Layout of the spool directory:
//! - `segment-<n>.log`: records framed as `[len u32][crc32 u32][task JSON]`, appended in order.
//!   A new segment starts when the current one passes [`SpoolConfig::segment_bytes`] and at
//!   every start (old segments are only read, never appended to).
//! - `segment-<n>.acks`: one JSON line per export, `{"p":"<lane>","r":[<record index>...]}`,
//!   naming the records that provider lane has resolved (accepted, or rejected for good).
//!
//! The worker routes each record to its providers and tells the spool how many must resolve
//! it. A segment and its acks are deleted once every record in it is resolved by all of them.
//! On start the remaining segments are replayed: each record goes again to the providers that
//! had not resolved it. Ids are stable, so a platform that had received it before upserts.
//!
//! A torn tail (a crash mid-write) or a corrupt record ends the read of that segment; the
//! bytes skipped are counted ([`SpoolStats::torn_bytes`]) and never cause a panic.

mod record;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

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

/// What happens to a task when the spool is at its disk cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolFullPolicy {
    /// Queue it in memory only: it is delivered unless the process dies first. Counted in
    /// [`SpoolStats::not_spooled`] and warned about once.
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
    /// The most disk the spool may use (default 256 MiB).
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
    /// Writing a record failed.
    #[error("writing to the trace spool failed: {0}")]
    Write(std::io::Error),
}

/// Counters of the spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolStats {
    /// Records written.
    pub written: u64,
    /// Records replayed at start.
    pub replayed: u64,
    /// Bytes skipped in torn or corrupt segment tails.
    pub torn_bytes: u64,
    /// Tasks queued in memory only because the spool was full or failing.
    pub not_spooled: u64,
    /// Segments deleted after every provider resolved them.
    pub segments_deleted: u64,
    /// Bytes the spool uses on disk now.
    pub disk_bytes: u64,
}

/// Where a record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SpoolPos {
    pub(crate) segment: u64,
    pub(crate) index: u32,
}

/// A record found at start, with the providers (lane names) that had already resolved it.
pub(crate) struct Replayed {
    pub(crate) pos: SpoolPos,
    pub(crate) task: TraceTask,
    pub(crate) acked: Vec<String>,
}

/// How far one record is: it is done once it has a target count and that many providers
/// resolved it.
#[derive(Clone, Copy, Default)]
struct RecordState {
    /// How many providers must resolve it; `None` until the worker has routed it.
    needed: Option<u16>,
    resolved: u16,
    done: bool,
}

struct Segment {
    bytes: u64,
    records: Vec<RecordState>,
    /// Records not done yet.
    open: u32,
    acks: Option<File>,
}

impl Segment {
    /// Marks `index` done if it is; returns whether it just became done.
    fn settle(&mut self, index: u32) -> bool {
        let Some(r) = self.records.get_mut(index as usize) else {
            return false;
        };
        if !r.done && r.needed.is_some_and(|n| r.resolved >= n) {
            r.done = true;
            self.open = self.open.saturating_sub(1);
            return true;
        }
        false
    }
}

struct Writer {
    segment: u64,
    file: File,
    dirty: bool,
}

struct State {
    writer: Option<Writer>,
    segments: BTreeMap<u64, Segment>,
    disk_bytes: u64,
    stats: SpoolStats,
    failed: bool,
}

/// The spool of one queue.
pub(crate) struct Spool {
    config: SpoolConfig,
    state: Mutex<State>,
}

fn segment_path(dir: &Path, n: u64, ext: &str) -> PathBuf {
    dir.join(format!("segment-{n:020}.{ext}"))
}

impl Spool {
    /// Opens (creating) the spool and reads what a previous process left.
    pub(crate) fn open(config: SpoolConfig) -> Result<(Self, Vec<Replayed>), SpoolError> {
        let dir_err = |source| SpoolError::Dir {
            path: config.dir.clone(),
            source,
        };
        fs::create_dir_all(&config.dir).map_err(dir_err)?;
        let mut numbers: Vec<u64> = fs::read_dir(&config.dir)
            .map_err(dir_err)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("segment-")?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()
            })
            .collect();
        numbers.sort_unstable();
        let mut state = State {
            writer: None,
            segments: BTreeMap::new(),
            disk_bytes: 0,
            stats: SpoolStats::default(),
            failed: false,
        };
        let mut replayed = Vec::new();
        for n in &numbers {
            let path = segment_path(&config.dir, *n, "log");
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ops: unreadable spool segment skipped");
                    continue;
                }
            };
            let decoded = record::decode(&bytes);
            state.stats.torn_bytes += decoded.torn_bytes as u64;
            if decoded.torn_bytes > 0 {
                tracing::warn!(path = %path.display(), bytes = decoded.torn_bytes, "ops: torn spool tail skipped");
            }
            let mut acks = read_acks(&segment_path(&config.dir, *n, "acks"));
            let mut segment = Segment {
                bytes: bytes.len() as u64,
                records: vec![RecordState::default(); decoded.records.len()],
                open: 0,
                acks: None,
            };
            for (index, payload) in decoded.records.iter().enumerate() {
                if acks.done.contains(&(index as u32)) {
                    segment.records[index].done = true;
                    continue;
                }
                match serde_json::from_slice::<TraceTask>(payload) {
                    Ok(task) => {
                        segment.open += 1;
                        replayed.push(Replayed {
                            pos: SpoolPos {
                                segment: *n,
                                index: index as u32,
                            },
                            task,
                            acked: acks.by_record.remove(&(index as u32)).unwrap_or_default(),
                        });
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), index, error = %e, "ops: unreadable spool record skipped");
                        segment.records[index].done = true;
                    }
                }
            }
            state.disk_bytes += segment.bytes;
            state.segments.insert(*n, segment);
        }
        state.stats.replayed = replayed.len() as u64;
        let spool = Spool {
            config,
            state: Mutex::new(state),
        };
        {
            let mut state = spool.state.lock().expect("spool lock");
            let done: Vec<u64> = state
                .segments
                .iter()
                .filter(|(_, s)| s.open == 0)
                .map(|(n, _)| *n)
                .collect();
            for n in done {
                spool.delete(&mut state, n);
            }
            let next = numbers.last().map_or(0, |n| n + 1);
            spool
                .start_segment(&mut state, next)
                .map_err(SpoolError::Write)?;
            state.stats.disk_bytes = state.disk_bytes;
        }
        Ok((spool, replayed))
    }

    fn start_segment(&self, state: &mut State, n: u64) -> std::io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.config.dir, n, "log"))?;
        state.writer = Some(Writer {
            segment: n,
            file,
            dirty: false,
        });
        state.segments.insert(
            n,
            Segment {
                bytes: 0,
                records: Vec::new(),
                open: 0,
                acks: None,
            },
        );
        Ok(())
    }

    /// Writes a task. `Ok(None)` means it was not written because the spool is full or failing
    /// and the policy is [`SpoolFullPolicy::MemoryOnly`]; `Err` means the task must be dropped.
    pub(crate) fn append(&self, task: &TraceTask) -> Result<Option<SpoolPos>, SpoolError> {
        let payload = serde_json::to_vec(task).map_err(|e| SpoolError::Write(e.into()))?;
        let mut framed = Vec::with_capacity(payload.len() + record::HEADER);
        record::encode(&payload, &mut framed);
        let mut state = self.state.lock().expect("spool lock");
        if state.failed || state.disk_bytes + framed.len() as u64 > self.config.max_bytes {
            return self.full(&mut state);
        }
        let roll = state
            .writer
            .as_ref()
            .and_then(|w| state.segments.get(&w.segment))
            .is_some_and(|s| {
                s.bytes > 0 && s.bytes + framed.len() as u64 > self.config.segment_bytes
            });
        if roll {
            let old = state.writer.as_ref().map(|w| w.segment).unwrap_or(0);
            if let Err(e) = self
                .sync(&mut state)
                .and_then(|()| self.start_segment(&mut state, old + 1))
            {
                return self.failure(&mut state, e);
            }
            if state.segments.get(&old).is_some_and(|s| s.open == 0) {
                self.delete(&mut state, old);
            }
        }
        let writer = state.writer.as_mut().expect("a segment is open");
        let segment = writer.segment;
        if let Err(e) = writer.file.write_all(&framed) {
            return self.failure(&mut state, e);
        }
        writer.dirty = true;
        if self.config.fsync == FsyncPolicy::Always
            && let Err(e) = self.sync(&mut state)
        {
            return self.failure(&mut state, e);
        }
        let seg = state
            .segments
            .get_mut(&segment)
            .expect("the open segment is tracked");
        let index = seg.records.len() as u32;
        seg.records.push(RecordState::default());
        seg.open += 1;
        seg.bytes += framed.len() as u64;
        state.disk_bytes += framed.len() as u64;
        state.stats.disk_bytes = state.disk_bytes;
        state.stats.written += 1;
        Ok(Some(SpoolPos { segment, index }))
    }

    fn full(&self, state: &mut State) -> Result<Option<SpoolPos>, SpoolError> {
        match self.config.when_full {
            SpoolFullPolicy::MemoryOnly => {
                if state.stats.not_spooled == 0 {
                    tracing::warn!(dir = %self.config.dir.display(), "ops: trace spool full or failing; tasks are queued in memory only (counted in SpoolStats::not_spooled)");
                }
                state.stats.not_spooled += 1;
                Ok(None)
            }
            SpoolFullPolicy::DropNew => Err(SpoolError::Config(format!(
                "trace spool {:?} is at its cap of {} bytes",
                self.config.dir, self.config.max_bytes
            ))),
        }
    }

    fn failure(
        &self,
        state: &mut State,
        e: std::io::Error,
    ) -> Result<Option<SpoolPos>, SpoolError> {
        tracing::warn!(dir = %self.config.dir.display(), error = %e, "ops: writing the trace spool failed");
        state.failed = true;
        self.full(state)
    }

    fn sync(&self, state: &mut State) -> std::io::Result<()> {
        if let Some(w) = state.writer.as_mut().filter(|w| w.dirty) {
            w.file.sync_data()?;
            w.dirty = false;
        }
        Ok(())
    }

    /// Syncs pending writes (for [`FsyncPolicy::Interval`]).
    pub(crate) fn sync_now(&self) {
        let mut state = self.state.lock().expect("spool lock");
        if let Err(e) = self.sync(&mut state) {
            tracing::warn!(error = %e, "ops: syncing the trace spool failed");
        }
    }

    /// Sets how many providers must resolve the record at `pos` (the worker routes it first).
    /// Zero finishes it at once: nobody needs it, or it was dropped for good.
    pub(crate) fn set_needed(&self, pos: SpoolPos, needed: usize) {
        let mut state = self.state.lock().expect("spool lock");
        let Some(segment) = state.segments.get_mut(&pos.segment) else {
            return;
        };
        if let Some(r) = segment.records.get_mut(pos.index as usize) {
            r.needed = Some(u16::try_from(needed).unwrap_or(u16::MAX));
        }
        if segment.settle(pos.index) && segment.open > 0 {
            let line = serde_json::json!({ "d": [pos.index] });
            self.write_ack(segment, pos.segment, &line);
        }
        self.delete_if_finished(&mut state, pos.segment);
    }

    /// Records that the provider `lane` (its lane name) resolved `positions`: accepted them or
    /// rejected them for good. Deletes segments whose records are all done.
    pub(crate) fn resolve(&self, lane: &str, positions: &[SpoolPos]) {
        if positions.is_empty() {
            return;
        }
        let mut by_segment: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for p in positions {
            by_segment.entry(p.segment).or_default().push(p.index);
        }
        let mut state = self.state.lock().expect("spool lock");
        for (n, indices) in by_segment {
            let Some(segment) = state.segments.get_mut(&n) else {
                continue;
            };
            let mut done = Vec::new();
            for &i in &indices {
                if let Some(r) = segment.records.get_mut(i as usize) {
                    r.resolved = r.resolved.saturating_add(1);
                }
                if segment.settle(i) {
                    done.push(i);
                }
            }
            if segment.open > 0 {
                let line = serde_json::json!({ "p": lane, "r": indices, "d": done });
                self.write_ack(segment, n, &line);
            }
            self.delete_if_finished(&mut state, n);
        }
    }

    /// Appends one line to a segment's acks file.
    fn write_ack(&self, segment: &mut Segment, n: u64, line: &serde_json::Value) {
        let file = match &mut segment.acks {
            Some(f) => Ok(f),
            None => OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.config.dir, n, "acks"))
                .map(|f| segment.acks.insert(f)),
        };
        if let Err(e) = file.and_then(|f| writeln!(f, "{line}")) {
            tracing::warn!(error = %e, "ops: writing spool acks failed; records may be resent after a restart");
        }
    }

    fn delete_if_finished(&self, state: &mut State, n: u64) {
        let active = state.writer.as_ref().map(|w| w.segment);
        if active != Some(n) && state.segments.get(&n).is_some_and(|s| s.open == 0) {
            self.delete(state, n);
        }
    }

    fn delete(&self, state: &mut State, n: u64) {
        if let Some(segment) = state.segments.remove(&n) {
            state.disk_bytes = state.disk_bytes.saturating_sub(segment.bytes);
            state.stats.disk_bytes = state.disk_bytes;
            state.stats.segments_deleted += 1;
        }
        let _ = fs::remove_file(segment_path(&self.config.dir, n, "log"));
        let _ = fs::remove_file(segment_path(&self.config.dir, n, "acks"));
    }

    pub(crate) fn stats(&self) -> SpoolStats {
        self.state.lock().expect("spool lock").stats
    }

    pub(crate) fn config(&self) -> &SpoolConfig {
        &self.config
    }
}

/// What an acks file says: per record index, the lane names that resolved it, and the
/// records that are done (resolved by every provider that needed them).
#[derive(Default)]
struct Acks {
    by_record: HashMap<u32, Vec<String>>,
    done: HashSet<u32>,
}

/// Reads an acks file. Unreadable lines (a torn last line) are skipped.
fn read_acks(path: &Path) -> Acks {
    let mut acks = Acks::default();
    let Ok(file) = File::open(path) else {
        return acks;
    };
    let indices = |v: Option<&serde_json::Value>| -> Vec<u32> {
        v.and_then(|r| r.as_array())
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_u64())
            .map(|i| i as u32)
            .collect()
    };
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        acks.done.extend(indices(value.get("d")));
        let Some(lane) = value.get("p").and_then(|p| p.as_str()) else {
            continue;
        };
        for i in indices(value.get("r")) {
            let names = acks.by_record.entry(i).or_default();
            if !names.iter().any(|n| n == lane) {
                names.push(lane.to_owned());
            }
        }
    }
    acks
}

#[cfg(test)]
mod tests;
