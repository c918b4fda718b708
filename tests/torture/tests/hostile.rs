//! Experiment 4: hostile payloads, each case in a child process so an abort is observed, not
//! fatal: values nested a million deep, a million keys, 50 MB strings, strings of control
//! characters, 100k tags, 10 MB names, 4 MB model strings; through the explicit API and
//! through `#[traced]` arguments, with and without the spool. The backend refuses connections
//! while the traces are sent, then comes up for the final flush.
//!
//! Each case must: end with exit 0 (no SIGABRT or SIGSEGV); account for every trace (delivered,
//! or counted as dropped or failed in `stats()`); and keep the peak RSS the queue adds
//! (`VmHWM` after sending minus `VmHWM` after the app built and dropped one such payload on
//! its own) within the queue's `max_bytes` + 20 MB.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ops_torture_tests::child::{Args, Child, describe};
use ops_torture_tests::config::stat;
use ops_torture_tests::payload::Shape;
use ops_torture_tests::report::{long, mb, scale, summary};
use ops_torture_tests::sink::{Mode, Sink};

const PRODUCER: &str = env!("CARGO_BIN_EXE_torture-producer");
const SLACK_KIB: u64 = 20 * 1000;

#[derive(Debug, Clone)]
struct Case {
    shape: Shape,
    size: usize,
    count: u64,
    /// `explicit`, or `traced` with how the hostile value is passed (`ref`/`owned`).
    api: &'static str,
    arg: &'static str,
    spool: bool,
    max_bytes: usize,
    spans_per_trace: u64,
    provider: &'static str,
}

impl Case {
    fn new(shape: Shape, count: u64, api: &'static str, spool: bool) -> Case {
        Case {
            shape,
            size: shape.default_size(),
            count,
            api,
            arg: "ref",
            spool,
            max_bytes: 16 << 20,
            spans_per_trace: 4,
            provider: "otlp",
        }
    }

    fn owned(mut self) -> Case {
        self.arg = "owned";
        self
    }

    fn name(&self) -> String {
        let api = match self.api {
            "traced" => format!("traced-{}", self.arg),
            other => other.to_owned(),
        };
        format!(
            "{}({})x{}/{api}/{}{}",
            self.shape,
            self.size,
            self.count,
            if self.spool { "spool" } else { "memory" },
            if self.provider == "otlp" {
                String::new()
            } else {
                format!("/{}", self.provider)
            }
        )
    }
}

/// What one case found; `problems` is empty when it met every goal.
#[derive(Debug)]
struct Outcome {
    line: String,
    problems: Vec<String>,
}

fn run_case(case: &Case) -> Outcome {
    let started = Instant::now();
    let name = case.name();
    let sink = Sink::start(Mode::Refuse);
    let dir = tempfile::tempdir().unwrap();
    let mut args = Args::new()
        .opt("endpoint", sink.url())
        .opt("provider", case.provider)
        .opt("shape", case.shape)
        .opt("size", case.size)
        .opt("count", case.count)
        .opt("api", case.api)
        .opt("arg", case.arg)
        .opt("spans-per-trace", case.spans_per_trace)
        .opt("max-bytes", case.max_bytes)
        .opt("batch-size", 10)
        .opt("compression", "none")
        .opt("breaker-cooldown-ms", 200)
        .opt("max-backoff-ms", 200)
        .flag("hwm-warmup")
        .flag("wait-before-end")
        .flag("log")
        .opt("end", "shutdown")
        .opt("shutdown-ms", 10_000);
    if case.spool {
        args = args.opt("spool-dir", dir.path().display());
    }
    let mut child = Child::spawn(&name, PRODUCER, &args.to_vec(), &[], None);
    let mut problems = Vec::new();
    let reached_end = child
        .wait_line("WAIT final", Duration::from_secs(300))
        .is_some();
    let down = child.out.last_stats().cloned().unwrap_or_default();
    if reached_end {
        sink.set_mode(Mode::Up);
        child.send_line("go");
    }
    let status = child.finish(Duration::from_secs(120));
    let end = child.out.last_stats().cloned().unwrap_or_default();
    let stderr = child.stderr_tail(1 << 20);
    if !status.success() {
        let why = stderr
            .lines()
            .find(|l| l.contains("panicked") || l.contains("overflow") || l.contains("fatal"))
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>();
        problems.push(format!("ended with {}: {why}", describe(status)));
    }
    let sent = match case.api {
        "explicit" => (child.out.acks.len() + child.out.refused.len()) as u64,
        _ => child.out.traced.len() as u64,
    };
    if reached_end && sent != case.count {
        problems.push(format!("only {sent} of {} calls returned", case.count));
    }
    // An oversized value is truncated, never refused: the first trace meets an empty queue.
    if let Some((_, error)) = child.out.refused.first()
        && child.out.acks.first().is_none_or(|a| a.index > 0)
        && case.shape != Shape::Ordinary
    {
        problems.push(format!(
            "the first trace was refused on an empty queue ({error}); an oversized value \
             must be truncated, not refused"
        ));
    }
    let counts = sink.counts();
    let delivered = counts.received().len() as u64;
    let exported = stat(&end, "exported");
    let dropped = stat(&end, "dropped_total");
    let failed = stat(&end, "failed");
    let accounted = exported.max(delivered) + dropped + failed;
    if status.success() && accounted < case.count {
        problems.push(format!(
            "{} traces neither delivered nor counted (delivered {delivered}, exported \
             {exported}, dropped {dropped}, failed {failed})",
            case.count - accounted
        ));
    }
    if counts.duplicate_spans() > 0 {
        problems.push(format!(
            "{} spans delivered more than once (a large trace may span several requests, \
             but no span may arrive twice)",
            counts.duplicate_spans()
        ));
    }
    let warmup = child.out.hwm("warmup").unwrap_or(0);
    let peak = child.out.hwm("sent");
    let cap = case.max_bytes as u64 / 1024 + SLACK_KIB;
    let grown = peak.map(|p| p.saturating_sub(warmup));
    match grown {
        Some(g) if g > cap => problems.push(format!(
            "the queue added {} of peak RSS with the backend down; the cap is {} \
             (max_bytes {} + 20 MB)",
            mb(g),
            mb(cap),
            mb(case.max_bytes as u64 / 1024)
        )),
        None if status.success() => problems.push("no HWM figure".into()),
        _ => {}
    }
    let line = summary(
        &format!("hostile {name}"),
        &[
            ("sent", &sent),
            ("acknowledged", &child.out.acks.len()),
            ("refused", &child.out.refused.len()),
            ("delivered", &delivered),
            ("duplicate_spans", &counts.duplicate_spans()),
            ("dropped", &dropped),
            ("dropped_while_down", &stat(&down, "dropped_total")),
            ("failed", &failed),
            ("truncated", &stat(&end, "truncated")),
            ("lost", &case.count.saturating_sub(accounted)),
            ("rss_warmup", &mb(warmup)),
            ("rss_peak_down", &peak.map_or_else(|| "-".to_owned(), mb)),
            ("rss_added", &grown.map_or_else(|| "-".to_owned(), mb)),
            ("rss_cap", &mb(cap)),
            ("exit", &describe(status)),
            ("secs", &started.elapsed().as_secs()),
        ],
    );
    Outcome { line, problems }
}

/// Runs the cases two at a time and fails listing every case that missed a goal.
fn run_all(experiment: &str, cases: Vec<Case>) {
    let queue = Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some((i, case)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let outcome = run_case(&case);
                    results.lock().unwrap().push((i, case.name(), outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _, _)| *i);
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, _, o)| !o.problems.is_empty())
        .map(|(_, name, o)| format!("{name}: {}", o.problems.join("; ")))
        .collect();
    eprintln!("{experiment}: {} cases", results.len());
    for (_, _, o) in &results {
        eprintln!("  {}", o.line);
    }
    assert!(
        failed.is_empty(),
        "{} of {} {experiment} cases missed a goal:\n  {}",
        failed.len(),
        results.len(),
        failed.join("\n  ")
    );
}

#[test]
fn hostile_payloads_never_abort_never_vanish_and_stay_within_the_byte_budget() {
    use Shape::*;
    let mut cases = vec![
        Case::new(Deep, 2, "explicit", false),
        Case::new(Deep, 2, "explicit", true),
        Case::new(Deep, 2, "traced", false),
        Case::new(Deep, 2, "traced", false).owned(),
        Case::new(Deep, 2, "traced", true),
        Case::new(Wide, 2, "explicit", false),
        Case::new(Wide, 2, "traced", false),
        Case::new(Huge, 3, "explicit", false),
        Case::new(Huge, 3, "traced", false),
        Case::new(Huge, 2, "explicit", true),
        Case::new(HugeControl, 2, "explicit", true),
        Case::new(HugeControl, 2, "traced", false),
        Case::new(ManyTags, 20, "explicit", false),
        Case::new(ManyTags, 20, "traced", false),
        Case::new(HugeName, 10, "explicit", false),
        Case::new(HugeName, 10, "traced", false),
        Case::new(HugeModel, 100, "explicit", false),
        Case::new(HugeModel, 100, "traced", false),
        // Seeded draws of every hostile shape at up to a tenth of its size.
        Case {
            size: 10,
            ..Case::new(Mixed, 40, "explicit", true)
        },
        Case {
            size: 10,
            ..Case::new(Mixed, 40, "traced", false)
        },
    ];
    if long() {
        // Every shape, API and spool setting.
        let mut all = Vec::new();
        for shape in Shape::ALL.into_iter().filter(|s| *s != Ordinary) {
            let count = match shape {
                Mixed => 100,
                Deep | Wide | Huge | HugeControl => 3,
                ManyTags | HugeName => 20,
                _ => 100,
            };
            for spool in [false, true] {
                all.push(Case::new(shape, count, "explicit", spool));
                all.push(Case::new(shape, count, "traced", spool));
                all.push(Case::new(shape, count, "traced", spool).owned());
            }
        }
        cases = all;
    }
    run_all("hostile payloads", cases);
}

#[test]
fn a_million_ordinary_spans_with_the_backend_down_stay_within_the_byte_budget() {
    // 1M `#[traced]` spans in traces of 10 (the case: 186 MB RSS against 64 MiB), and
    // ordinary explicit traces.
    let traced = Case {
        shape: Shape::Ordinary,
        size: 0,
        count: scale(100_000, 100_000),
        api: "traced",
        arg: "ref",
        spool: false,
        max_bytes: 64 << 20,
        spans_per_trace: 10,
        provider: "otlp",
    };
    let explicit = Case {
        count: scale(60_000, 250_000),
        api: "explicit",
        spans_per_trace: 4,
        ..traced.clone()
    };
    run_all("ordinary spans", vec![traced, explicit]);
}

#[test]
fn a_million_deep_value_through_every_provider() {
    if !long() {
        eprintln!("SKIPPED every-provider deep values: set OPS_TORTURE_LONG=1");
        return;
    }
    ops_providers::link();
    let cases = ops_core::provider::registered()
        .into_iter()
        .filter(|f| f.name != "console" && f.name != "file")
        .flat_map(|f| {
            let name: &'static str = f.name;
            ["explicit", "traced"].map(move |api| Case {
                provider: name,
                ..Case::new(Shape::Deep, 2, api, false)
            })
        })
        .collect();
    run_all("deep values through every provider", cases);
}
