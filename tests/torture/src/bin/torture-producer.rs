//! The torture producer: a child process the experiments start, kill and restart. It builds a
//! `TraceQueueManager` with one provider (the `otlp` provider by default) pointed at the
//! loopback sink, optionally with the durable spool, sends traces whose ids derive from
//! `--run` and an index, and reports on stdout what the queue acknowledged (see
//! `ops_torture_tests::child` for the protocol and `ProducerOpts` for the options).

use std::io::Write as _;
use std::time::{Duration, Instant};

use clap::Parser as _;
use ops_core::context::ObservationContext;
use ops_core::{
    Accepted, EnqueueError, TraceId, TraceQueueManager, TraceTask, traced,
    update_current_observation, update_current_trace,
};
use ops_torture_tests::child::Durability;
use ops_torture_tests::config::{Api, ArgMode, End, ProducerOpts, stats_json};
use ops_torture_tests::payload::{self, Shape};
use ops_torture_tests::{ids, logs, proc_status, report};
use serde_json::{Value, json};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn wait_for_go(phase: &str, queue: &TraceQueueManager) {
    say(&format!("STATS {}", stats_json(&queue.stats())));
    say(&format!("WAIT {phase}"));
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// What the return value of `add_trace_task` says about durability.
fn claimed(accepted: &Accepted, _spool_on: bool) -> Durability {
    if accepted.is_durable() {
        Durability::Durable
    } else {
        Durability::Memory
    }
}

fn not_spooled(queue: &TraceQueueManager) -> Option<u64> {
    queue.stats().spool.map(|s| s.not_spooled)
}

#[traced(kind = "generation")]
fn llm_call(n: u64, prompt: &str) -> String {
    format!("answer {n} to {} bytes", prompt.len())
}

#[traced(kind = "generation")]
fn hostile_ref(input: &Value) -> usize {
    usize::from(!input.is_null())
}

#[traced(kind = "generation")]
fn hostile_owned(input: Value) -> usize {
    let n = usize::from(!input.is_null());
    payload::drop_value(input);
    n
}

#[traced(kind = "generation", skip_all)]
fn hostile_update(shape: Shape, size: usize) {
    match shape {
        Shape::ManyTags => {
            update_current_trace(|t| {
                t.tags(payload::tags(size));
            });
        }
        Shape::HugeName => {
            update_current_observation(|o| {
                o.name(payload::huge_string(size));
            });
        }
        Shape::HugeModel => {
            update_current_observation(|o| {
                o.model(payload::huge_string(size));
            });
        }
        _ => {}
    }
}

#[traced(kind = "workflow", name = "torture-root", skip(shape, arg))]
fn traced_root(
    run: u64,
    index: u64,
    shape: Shape,
    size: usize,
    arg: ArgMode,
    spans: u64,
) -> Option<TraceId> {
    let id = ObservationContext::current().trace_id();
    let (shape, size) = payload::pick(run, index, shape, size);
    for n in 1..spans.max(1) {
        if n == 1 && shape != Shape::Ordinary {
            match payload::hostile_input(shape, size) {
                Some(value) => match arg {
                    ArgMode::Ref => {
                        hostile_ref(&value);
                        payload::drop_value(value);
                    }
                    ArgMode::Owned => {
                        hostile_owned(value);
                    }
                },
                None => hostile_update(shape, size),
            }
        } else {
            llm_call(n, &format!("prompt {index}/{n}"));
        }
    }
    id
}

struct Sender<'a> {
    opts: &'a ProducerOpts,
    queue: &'a TraceQueueManager,
    spool_on: bool,
    latencies: Vec<u64>,
    sent: u64,
}

impl Sender<'_> {
    fn send(&mut self, index: u64) {
        match self.opts.api {
            Api::Explicit => self.send_explicit(index),
            Api::Traced => self.send_traced(index),
        }
        self.sent += 1;
    }

    fn send_explicit(&mut self, index: u64) {
        let opts = self.opts;
        let trace = payload::explicit_trace(opts.run, index, opts.shape, opts.size());
        let task = TraceTask::from_trace(trace);
        let hex = ids::trace_hex(opts.run, index);
        let before = (!opts.latency && self.spool_on)
            .then(|| not_spooled(self.queue))
            .flatten();
        let started = Instant::now();
        let result: Result<Accepted, EnqueueError> = self.queue.add_trace_task(task);
        let took = started.elapsed();
        if opts.latency {
            self.latencies.push(took.as_nanos() as u64);
            return;
        }
        match result {
            Ok(accepted) => {
                let claimed = claimed(&accepted, self.spool_on);
                let observed = match (before, not_spooled(self.queue)) {
                    (Some(b), Some(a)) if a == b => Durability::Durable,
                    _ => Durability::Memory,
                };
                say(&format!(
                    "ACK {hex} {index} {} {}",
                    claimed.as_str(),
                    observed.as_str()
                ));
            }
            Err(e) => say(&format!("REFUSED {hex} {index} {e}")),
        }
    }

    fn send_traced(&mut self, index: u64) {
        let opts = self.opts;
        let started = Instant::now();
        let id = traced_root(
            opts.run,
            index,
            opts.shape,
            opts.size(),
            opts.arg,
            opts.spans_per_trace,
        );
        let took = started.elapsed();
        if opts.latency {
            self.latencies.push(took.as_nanos() as u64);
            return;
        }
        if let Some(id) = id {
            say(&format!(
                "TRACED {} {index}",
                ops_providers::otlp::trace_id_hex(&id)
            ));
        }
    }
}

fn main() {
    let opts = ProducerOpts::parse();
    if opts.log {
        logs::install();
    }
    ops_providers::link();
    let setup = |what: &str, e: String| -> ! {
        say(&format!(
            "RESULT {}",
            json!({ "error": format!("{what}: {e}") })
        ));
        std::process::exit(3);
    };
    let config = opts
        .queue_config()
        .unwrap_or_else(|e| setup("queue config", e));
    let spool_on = config.spool.is_some();
    let provider = opts
        .build_provider()
        .unwrap_or_else(|e| setup("provider", e));
    let queue = TraceQueueManager::builder()
        .config(config)
        .boxed_provider(provider)
        .build()
        .unwrap_or_else(|e| setup("queue", e.to_string()));
    let _default = ops_core::set_default(queue.clone());
    if opts.hwm_warmup {
        // The app's own peak: one payload of the shape (of each shape a mix can draw, at the
        // largest size it can draw) built and dropped before anything is sent.
        let shapes: Vec<(Shape, usize)> = match opts.shape {
            Shape::Mixed => payload::mixed_maxima(opts.size()),
            shape => vec![(shape, opts.size())],
        };
        for (shape, size) in shapes {
            payload::drop_trace(payload::explicit_trace(
                opts.run,
                u64::MAX >> 12,
                shape,
                size,
            ));
        }
        say(&format!(
            "HWM warmup {}",
            proc_status::hwm_kib().unwrap_or(0)
        ));
    }
    say("READY");

    let mut sender = Sender {
        opts: &opts,
        queue: &queue,
        spool_on,
        latencies: Vec::new(),
        sent: 0,
    };
    if !opts.replay_only {
        let mut index = opts.start;
        let vcsw_before = proc_status::voluntary_ctxt_switches().unwrap_or(0);
        let started = Instant::now();
        for (phase, &n) in opts.count.iter().enumerate() {
            if phase > 0 {
                wait_for_go(&phase.to_string(), &queue);
            }
            sender.latencies.reserve(n as usize);
            for k in 0..n {
                if opts.rate > 0.0 {
                    let due = started + Duration::from_secs_f64(sender.sent as f64 / opts.rate);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                sender.send(index + k);
            }
            index += n;
        }
        let vcsw = proc_status::voluntary_ctxt_switches()
            .unwrap_or(0)
            .saturating_sub(vcsw_before);
        if opts.latency {
            let mut l = std::mem::take(&mut sender.latencies);
            l.sort_unstable();
            let n = l.len() as u64;
            say(&format!(
                "LAT {}",
                json!({
                    "api": format!("{:?}", opts.api).to_lowercase(),
                    "n": n,
                    "p50_ns": report::percentile(&l, 50.0),
                    "p99_ns": report::percentile(&l, 99.0),
                    "p999_ns": report::percentile(&l, 99.9),
                    "max_ns": l.last().copied().unwrap_or(0),
                    "mean_ns": l.iter().sum::<u64>().checked_div(n).unwrap_or(0),
                    "vcsw": vcsw,
                    "vcsw_per_100k": (vcsw * 100_000).checked_div(n).unwrap_or(0),
                })
            ));
        }
    }
    say(&format!("HWM sent {}", proc_status::hwm_kib().unwrap_or(0)));
    if opts.wait_before_end {
        wait_for_go("final", &queue);
    }
    match opts.end {
        End::Hang => {
            say(&format!("STATS {}", stats_json(&queue.stats())));
            say("DONE_SENDING");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        End::Exit => {
            say(&format!("STATS {}", stats_json(&queue.stats())));
            std::process::exit(0);
        }
        End::Shutdown => {
            let report = queue.shutdown(Duration::from_millis(opts.shutdown_ms));
            let mut stats = stats_json(&queue.stats());
            stats["shutdown"] = json!({
                "delivered": report.delivered, "dropped": report.dropped,
                "failed": report.failed, "pending": report.pending,
                "timed_out": report.timed_out,
            });
            say(&format!("STATS {stats}"));
            say(&format!("HWM end {}", proc_status::hwm_kib().unwrap_or(0)));
            // The same counters a second later: what the worker counted after shutdown
            // returned (a report that misses drops it counts late shows here).
            std::thread::sleep(Duration::from_secs(1));
            let mut settled = stats_json(&queue.stats());
            settled["settled"] = json!(true);
            say(&format!("STATS {settled}"));
            // Dropping the last handle would wait for a shutdown that timed out a second
            // time; what the first one reported is what counts.
            std::process::exit(0);
        }
    }
}
