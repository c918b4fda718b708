//! Runs a producer (or probe) as a child process and reads what it reports on stdout, one
//! line each:
//!
//! - `READY`: the queue is built.
//! - `ACK <trace-hex32> <index> <claimed> <observed>`: `add_trace_task` returned Ok for it.
//!   `claimed` is what the return value says (`durable`/`memory`; today the API has no such
//!   flag, so it is `durable` whenever a spool is configured); `observed` is what the spool's
//!   `not_spooled` counter says about this one call.
//! - `REFUSED <trace-hex32> <index> <error>`: `add_trace_task` returned an error.
//! - `TRACED <trace-hex32> <index>`: a `#[traced]` root call returned (its trace is queued by
//!   the library when the root ends; no per-call result exists).
//! - `WAIT <phase>` and `STATS <json>`: the producer waits for a line on stdin; the stats are
//!   a snapshot of `QueueStats`.
//! - `HWM <label> <kib>`, `LAT <json>`, `DONE_SENDING`, `RESULT <json>`.
//!
//! An acknowledgement is printed and flushed right after the call returns, so a SIGKILL can
//! lose an acknowledgement the parent never saw (counted as "sent, not acknowledged"), but the
//! parent never counts one that was not given.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ids::parse_trace_hex;

/// Whether an accepted trace was spooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk before the call returned.
    Durable,
    /// In memory only: a crash loses it.
    Memory,
}

impl Durability {
    /// The word in an `ACK` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Durability::Durable => "durable",
            Durability::Memory => "memory",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "durable" => Some(Durability::Durable),
            "memory" => Some(Durability::Memory),
            _ => None,
        }
    }
}

/// One acknowledged trace.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    /// The trace id as the sink keys it.
    pub id: u128,
    /// Its index in the run.
    pub index: u64,
    /// What the call's return value claimed.
    pub claimed: Durability,
    /// What the spool's counters showed for the call.
    pub observed: Durability,
    /// When the parent read the line.
    pub at: Instant,
}

/// What a child reported.
#[derive(Debug, Default, Clone)]
pub struct Output {
    /// Acknowledged traces, in order.
    pub acks: Vec<Ack>,
    /// Traces `add_trace_task` refused, with the error.
    pub refused: Vec<(u128, String)>,
    /// Roots of `#[traced]` calls that returned.
    pub traced: Vec<u128>,
    /// Every `STATS` snapshot, in order.
    pub stats: Vec<Value>,
    /// `HWM <label> <kib>` figures.
    pub hwm: Vec<(String, u64)>,
    /// `LAT` figures.
    pub latency: Vec<Value>,
    /// `RESULT` lines.
    pub results: Vec<Value>,
    /// Whether `READY` was seen.
    pub ready: bool,
    /// Whether `DONE_SENDING` was seen.
    pub done_sending: bool,
    /// `WAIT` phases seen.
    pub waits: Vec<String>,
}

impl Output {
    /// The acknowledged trace ids.
    pub fn acked(&self) -> HashSet<u128> {
        self.acks.iter().map(|a| a.id).collect()
    }

    /// The last stats snapshot (after a shutdown: the one taken a second after it returned).
    pub fn last_stats(&self) -> Option<&Value> {
        self.stats.last()
    }

    /// The stats printed when `shutdown` returned, with its report under `shutdown`.
    pub fn shutdown_stats(&self) -> Option<&Value> {
        self.stats
            .iter()
            .rev()
            .find(|s| s.get("shutdown").is_some())
    }

    /// The `HWM` figure with this label.
    pub fn hwm(&self, label: &str) -> Option<u64> {
        self.hwm.iter().find(|(l, _)| l == label).map(|(_, v)| *v)
    }

    fn take(&mut self, line: &str, at: Instant) {
        let mut words = line.split_whitespace();
        let Some(tag) = words.next() else { return };
        let rest = line[tag.len()..].trim();
        match tag {
            "READY" => self.ready = true,
            "DONE_SENDING" => self.done_sending = true,
            "WAIT" => self.waits.push(rest.to_owned()),
            "ACK" => {
                let parts: Vec<&str> = words.collect();
                if let [id, index, claimed, observed] = parts[..]
                    && let (Some(id), Ok(index), Some(claimed), Some(observed)) = (
                        parse_trace_hex(id),
                        index.parse(),
                        Durability::parse(claimed),
                        Durability::parse(observed),
                    )
                {
                    self.acks.push(Ack {
                        id,
                        index,
                        claimed,
                        observed,
                        at,
                    });
                }
            }
            "REFUSED" => {
                let parts: Vec<&str> = words.collect();
                if let Some(id) = parts.first().and_then(|h| parse_trace_hex(h)) {
                    let error = parts.get(2..).map(|e| e.join(" ")).unwrap_or_default();
                    self.refused.push((id, error));
                }
            }
            "TRACED" => {
                if let Some(id) = words.next().and_then(parse_trace_hex) {
                    self.traced.push(id);
                }
            }
            "STATS" => {
                if let Ok(v) = serde_json::from_str(rest) {
                    self.stats.push(v);
                }
            }
            "LAT" => {
                if let Ok(v) = serde_json::from_str(rest) {
                    self.latency.push(v);
                }
            }
            "RESULT" => {
                if let Ok(v) = serde_json::from_str(rest) {
                    self.results.push(v);
                }
            }
            "HWM" => {
                let parts: Vec<&str> = words.collect();
                if let [label, kib] = parts[..]
                    && let Ok(kib) = kib.parse()
                {
                    self.hwm.push((label.to_owned(), kib));
                }
            }
            _ => {}
        }
    }
}

/// How a child ended, for messages: `exit 0`, `signal 6 (SIGABRT)`.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => {
            let name = match sig {
                4 => "SIGILL",
                6 => "SIGABRT",
                7 => "SIGBUS",
                9 => "SIGKILL",
                11 => "SIGSEGV",
                15 => "SIGTERM",
                _ => "signal",
            };
            format!("signal {sig} ({name})")
        }
        _ => format!("{status:?}"),
    }
}

/// Keeps the last `limit` bytes written to it.
#[derive(Debug, Default)]
struct Tail {
    bytes: Vec<u8>,
    limit: usize,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > self.limit {
            let cut = self.bytes.len() - self.limit;
            self.bytes.drain(..cut);
        }
    }
}

/// A running child process and what it reported.
#[derive(Debug)]
pub struct Child {
    name: String,
    child: std::process::Child,
    lines: mpsc::Receiver<(Instant, String)>,
    stderr: Arc<Mutex<Tail>>,
    log_lines: Arc<Mutex<Vec<String>>>,
    status: Option<ExitStatus>,
    /// What it reported so far.
    pub out: Output,
}

impl Child {
    /// Starts `program` with `args`, the extra environment `envs` (values may be any bytes)
    /// and the working directory `cwd`.
    pub fn spawn(
        name: impl Into<String>,
        program: &str,
        args: &[String],
        envs: &[(OsString, OsString)],
        cwd: Option<&std::path::Path>,
    ) -> Child {
        let mut command = Command::new(program);
        command.args(args);
        for (k, v) in envs {
            command.env(k, v);
        }
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        Self::spawn_command(name, command)
    }

    /// Starts a prepared command (its stdio is replaced by pipes).
    pub fn spawn_command(name: impl Into<String>, mut command: Command) -> Child {
        let name = name.into();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: could not start {:?}: {e}", command.get_program()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Tail {
            bytes: Vec::new(),
            limit: 256 << 10,
        }));
        let log_lines = Arc::new(Mutex::new(Vec::new()));
        let mut err = child.stderr.take().expect("piped stderr");
        let (tail, logs) = (Arc::clone(&stderr), Arc::clone(&log_lines));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            let mut partial = Vec::new();
            loop {
                let n = match err.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                tail.lock().expect("stderr lock").push(&buf[..n]);
                partial.extend_from_slice(&buf[..n]);
                while let Some(at) = partial.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=at).collect();
                    if line.starts_with(b"LOG ") {
                        let mut logs = logs.lock().expect("log lock");
                        if logs.len() < 10_000 {
                            logs.push(String::from_utf8_lossy(&line).trim_end().to_owned());
                        }
                    }
                }
                if partial.len() > 1 << 20 {
                    partial.clear();
                }
            }
        });
        Child {
            name,
            child,
            lines: rx,
            stderr,
            log_lines,
            status: None,
            out: Output::default(),
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Reads every line already written.
    pub fn pump(&mut self) {
        while let Ok((at, line)) = self.lines.try_recv() {
            self.out.take(&line, at);
        }
    }

    /// Reads lines until one starts with `prefix`, at most `timeout`; returns it.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok((at, line)) => {
                    self.out.take(&line, at);
                    if line.starts_with(prefix) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// Like [`Child::wait_line`], but panics with the child's stderr when the line does not
    /// come.
    pub fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        match self.wait_line(prefix, timeout) {
            Some(line) => line,
            None => {
                let status = self.child.try_wait().ok().flatten().map(describe);
                panic!(
                    "{}: no `{prefix}` line within {timeout:?} (child {}); stderr tail:\n{}",
                    self.name,
                    status.unwrap_or_else(|| "still running".into()),
                    self.stderr_tail(4000)
                )
            }
        }
    }

    /// Sends one line to its stdin.
    pub fn send_line(&mut self, line: &str) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// SIGKILLs it, waits for it, and reads every line it wrote before dying.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        let status = self.child.wait().expect("waiting for a killed child");
        self.status = Some(status);
        self.drain_after_exit();
        status
    }

    /// Waits for it to exit, at most `timeout` (then kills it and panics with its stderr).
    pub fn finish(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            if let Some(status) = self.child.try_wait().expect("polling a child") {
                self.status = Some(status);
                self.drain_after_exit();
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain_after_exit();
                panic!(
                    "{}: did not exit within {timeout:?}; killed. stderr tail:\n{}",
                    self.name,
                    self.stderr_tail(4000)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn drain_after_exit(&mut self) {
        // The reader thread ends at EOF; take what it still holds.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok((at, line)) => self.out.take(&line, at),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= deadline => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    /// The last `bytes` bytes of its stderr.
    pub fn stderr_tail(&self, bytes: usize) -> String {
        let tail = self.stderr.lock().expect("stderr lock");
        let from = tail.bytes.len().saturating_sub(bytes);
        String::from_utf8_lossy(&tail.bytes[from..]).into_owned()
    }

    /// The `LOG` lines it wrote to stderr (what the library logged).
    pub fn logs(&self) -> Vec<String> {
        self.log_lines.lock().expect("log lock").clone()
    }

    /// How it ended, once it has.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Command-line arguments, built up option by option.
#[derive(Debug, Clone, Default)]
pub struct Args(Vec<String>);

impl Args {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `--name value`.
    #[must_use]
    pub fn opt(mut self, name: &str, value: impl ToString) -> Self {
        self.0.push(format!("--{name}"));
        self.0.push(value.to_string());
        self
    }

    /// Adds `--name`.
    #[must_use]
    pub fn flag(mut self, name: &str) -> Self {
        self.0.push(format!("--{name}"));
        self
    }

    /// The arguments.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.clone()
    }
}
