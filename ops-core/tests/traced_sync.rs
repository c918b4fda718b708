//! `#[traced]` on synchronous functions and methods: inputs, outputs, errors, panics, nesting,
//! arguments and updates, checked through the testkit.

use ops_core::{Level, ObservationContext, ObservationKind, Usage, traced};
use ops_testkit::expect;
use serde::Serialize;
use serde_json::json;

#[traced]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[test]
fn a_call_records_its_inputs_by_name_and_its_output() {
    let capture = ops_testkit::capture();
    let sum = capture.run(|| add(2, 3));
    assert_eq!(sum, 5);
    capture.assert(
        expect::trace()
            .name("add")
            .kind(ObservationKind::Span)
            .root(
                expect::observation("add")
                    .kind(ObservationKind::Span)
                    .input(json!({"a": 2, "b": 3}))
                    .output(json!(5))
                    .only(),
            ),
    );
    let trace = &capture.traces()[0];
    assert_eq!(trace.input, Some(json!({"a": 2, "b": 3})));
    assert_eq!(trace.output, Some(json!(5)));
    let o = &trace.observations[0];
    assert!(o.end_time.unwrap() >= o.start_time);
    assert_eq!(o.id.get_version_num(), 7);
}

#[test]
fn with_nothing_installed_the_function_just_runs() {
    let capture = ops_testkit::capture();
    // Not entered: this thread has no queue (other tests may have one on theirs).
    assert_eq!(add(1, 1), 2);
    assert!(capture.traces().is_empty());
}

#[traced(kind = "tool", name = "search-tool")]
fn search(query: &str, limit: usize) -> Vec<String> {
    (0..limit).map(|i| format!("{query}-{i}")).collect()
}

#[traced(
    kind = "llm",
    model = "gpt-4o-mini",
    model_provider = "openai",
    model_parameters(temperature = 0.2, max_tokens = 64)
)]
fn complete(prompt: String) -> String {
    format!("answer to {prompt}")
}

#[traced(kind = "message", user_id = user, session_id = "conv-1", tags("chat", "beta"),
         metadata(channel = "web", attempt = 1))]
fn answer(user: &str, query: &str) -> String {
    let hits = search(query, 2);
    complete(format!("{query} {}", hits.join(" ")))
}

#[test]
fn nested_calls_build_a_tree_and_a_message_root_makes_a_message_trace() {
    let capture = ops_testkit::capture();
    let out = capture.run(|| answer("u-7", "rust"));
    assert_eq!(out, "answer to rust rust-0 rust-1");
    capture.assert(
        expect::trace()
            .name("answer")
            .kind(ObservationKind::Message)
            .user_id("u-7")
            .session_id("conv-1")
            .tag("chat")
            .root(
                expect::observation("answer")
                    .kind(ObservationKind::Message)
                    .input(json!({"user": "u-7", "query": "rust"}))
                    .metadata("channel", "web")
                    .metadata("attempt", 1)
                    .child(
                        expect::observation("search-tool")
                            .kind(ObservationKind::Tool)
                            .input(json!({"query": "rust", "limit": 2}))
                            .output(json!(["rust-0", "rust-1"])),
                    )
                    .child(
                        expect::observation("complete")
                            .kind(ObservationKind::Generation)
                            .model("gpt-4o-mini")
                            .output(json!("answer to rust rust-0 rust-1")),
                    )
                    .only(),
            ),
    );
    let generation = capture.find("complete").unwrap();
    assert_eq!(generation.model_provider.as_deref(), Some("openai"));
    assert_eq!(
        generation.model_parameters.get("temperature"),
        Some(&json!(0.2))
    );
    assert_eq!(
        generation.model_parameters.get("max_tokens"),
        Some(&json!(64))
    );
    let root = capture.find("answer").unwrap();
    assert_eq!(root.tags, vec!["chat", "beta"]);
    assert_eq!(
        capture.render(),
        "trace answer [message] {user=u-7, session=conv-1, tags=chat,beta}\n    \
         answer [message] {}\n        search-tool [tool] {}\n        \
         complete [generation] {model=gpt-4o-mini}\n"
    );
}

#[derive(Debug)]
struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot parse {:?}", self.0)
    }
}

impl std::error::Error for ParseError {}

#[traced]
fn parse(text: &str) -> Result<u32, ParseError> {
    if text.is_empty() {
        return Ok(0);
    }
    text.parse().map_err(|_| ParseError(text.to_owned()))
}

#[traced]
fn parse_sum(a: &str, b: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let a = parse(a)?;
    let b = parse(b)?;
    Ok(a + b)
}

#[test]
fn ok_values_are_the_output_and_errors_mark_the_observation() {
    let capture = ops_testkit::capture();
    let good = capture.run(|| parse_sum("2", ""));
    assert_eq!(good.unwrap(), 2);
    let bad = capture.run(|| parse_sum("1", "x"));
    assert_eq!(bad.unwrap_err().to_string(), "cannot parse \"x\"");
    let traces = capture.traces();
    assert_eq!(traces.len(), 2);
    expect::trace()
        .root(
            expect::observation("parse_sum")
                .level(Level::Default)
                .output(json!(2))
                .child(expect::observation("parse").output(json!(2)))
                .child(expect::observation("parse").output(json!(0))),
        )
        .assert_matches(&traces[0]);
    expect::trace()
        .root(
            expect::observation("parse_sum")
                .level(Level::Error)
                .status_message("cannot parse \"x\"")
                .child(expect::observation("parse").output(json!(1)))
                .child(
                    expect::observation("parse")
                        .level(Level::Error)
                        .status_message("cannot parse \"x\"")
                        .metadata("error_type", "traced_sync::ParseError"),
                ),
        )
        .assert_matches(&traces[1]);
    let failed = traces[1]
        .observations
        .iter()
        .find(|o| o.name == "parse" && o.level == Level::Error)
        .unwrap();
    assert_eq!(failed.output, None, "an error records no output");
    let root = &traces[1].observations[0];
    assert!(
        root.metadata["error_type"]
            .as_str()
            .unwrap()
            .contains("Box<dyn core::error::Error>"),
        "{:?}",
        root.metadata
    );
}

#[traced]
fn explode(n: u32) -> u32 {
    if n > 1 {
        panic!("too big: {n}");
    }
    n
}

#[traced]
fn survives_a_panic() -> u32 {
    let caught = std::panic::catch_unwind(|| explode(5));
    assert!(caught.is_err());
    // The parent is still current: this call is its child, not a new root.
    explode(1)
}

#[test]
fn a_panic_is_recorded_then_resumed_and_the_parent_is_kept() {
    let capture = ops_testkit::capture();
    let out = capture.run(survives_a_panic);
    assert_eq!(out, 1);
    capture.assert(
        expect::trace().root(
            expect::observation("survives_a_panic")
                .level(Level::Default)
                .output(json!(1))
                .child(
                    expect::observation("explode")
                        .level(Level::Error)
                        .status_message("panicked: too big: 5")
                        .input(json!({"n": 5})),
                )
                .child(expect::observation("explode").output(json!(1)))
                .only(),
        ),
    );
    assert_eq!(capture.traces().len(), 1);
}

#[test]
fn an_uncaught_panic_in_a_root_still_delivers_the_trace() {
    let capture = ops_testkit::capture();
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| capture.run(|| explode(9))));
    assert!(result.is_err());
    capture.assert(
        expect::trace().root(
            expect::observation("explode")
                .level(Level::Error)
                .status_message("panicked: too big: 9"),
        ),
    );
    // The context was restored: the next call is a root of its own.
    capture.run(|| explode(0));
    assert_eq!(capture.traces().len(), 2);
}

#[derive(Debug, Clone, Serialize)]
struct Account {
    owner: String,
    balance: i64,
}

impl Account {
    #[traced(kind = "tool")]
    fn deposit(&mut self, amount: i64) -> i64 {
        self.balance += amount;
        self.balance
    }

    #[traced]
    fn owner(&self) -> &str {
        &self.owner
    }

    #[traced]
    fn into_owner(self: Box<Self>) -> String {
        self.owner
    }
}

#[test]
fn methods_never_capture_self() {
    let capture = ops_testkit::capture();
    let mut account = Account {
        owner: "ada".into(),
        balance: 10,
    };
    capture.run(|| {
        assert_eq!(account.deposit(5), 15);
        assert_eq!(account.owner(), "ada");
        assert_eq!(Box::new(account.clone()).into_owner(), "ada");
    });
    let deposit = capture.find("deposit").unwrap();
    assert_eq!(deposit.input, Some(json!({"amount": 5})));
    assert_eq!(deposit.output, Some(json!(15)));
    let owner = capture.find("owner").unwrap();
    assert_eq!(owner.input, None, "no parameters but self: no input");
    assert_eq!(owner.output, Some(json!("ada")));
    assert_eq!(
        capture.find("into_owner").unwrap().output,
        Some(json!("ada"))
    );
}

#[traced]
fn describe<T: Serialize + std::fmt::Debug>(value: T, label: impl Serialize) -> String {
    format!("{value:?}")
}

#[traced]
fn first<'a, T: Serialize>(items: &'a [T]) -> Option<&'a T> {
    items.first()
}

#[test]
fn generic_functions_and_impl_trait_arguments() {
    let capture = ops_testkit::capture();
    capture.run(|| {
        assert_eq!(describe(vec![1, 2], "nums"), "[1, 2]");
        assert_eq!(first(&["x", "y"]), Some(&"x"));
    });
    let d = capture.find("describe").unwrap();
    assert_eq!(d.input, Some(json!({"value": [1, 2], "label": "nums"})));
    assert_eq!(d.output, Some(json!("[1, 2]")));
    let f = capture.find("first").unwrap();
    assert_eq!(f.input, Some(json!({"items": ["x", "y"]})));
    assert_eq!(f.output, Some(json!("x")));
}

struct Client;

#[traced(skip(client, token))]
fn fetch(client: &Client, token: String, url: &str) -> usize {
    let _ = (client, token);
    url.len()
}

#[traced(skip_all)]
fn login(client: &Client, password: &str) -> bool {
    let _ = client;
    !password.is_empty()
}

#[traced(capture_input = false, capture_output = false)]
fn secret_sauce(recipe: String) -> String {
    recipe.to_uppercase()
}

#[traced(capture_output = false)]
fn fails_quietly() -> Result<String, ParseError> {
    Err(ParseError("quiet".into()))
}

#[test]
fn skip_and_capture_switches() {
    let capture = ops_testkit::capture();
    capture.run(|| {
        fetch(&Client, "t0k3n".into(), "https://x");
        login(&Client, "hunter2");
        secret_sauce("salt".into());
        let _ = fails_quietly();
    });
    assert_eq!(
        capture.find("fetch").unwrap().input,
        Some(json!({"url": "https://x"}))
    );
    let login = capture.find("login").unwrap();
    assert_eq!(login.input, None);
    assert_eq!(login.output, Some(json!(true)));
    let sauce = capture.find("secret_sauce").unwrap();
    assert_eq!((sauce.input, sauce.output), (None, None));
    let quiet = capture.find("fails_quietly").unwrap();
    assert_eq!(quiet.level, Level::Error, "errors are recorded regardless");
    assert_eq!(
        quiet.status_message.as_deref(),
        Some("cannot parse \"quiet\"")
    );
}

#[derive(Serialize)]
struct Point {
    x: i32,
    y: i32,
}

#[traced]
fn destructured((a, b): (u8, u8), Point { x, y }: Point, _: u8) -> i32 {
    i32::from(a) + i32::from(b) + x + y
}

#[traced]
fn unit_return(flag: bool) {
    let _ = flag;
}

#[traced]
fn unit_result(flag: bool) -> Result<(), ParseError> {
    if flag {
        Ok(())
    } else {
        Err(ParseError("no".into()))
    }
}

#[test]
fn patterns_units_and_unit_results() {
    let capture = ops_testkit::capture();
    capture.run(|| {
        assert_eq!(destructured((1, 2), Point { x: 3, y: 4 }, 9), 10);
        unit_return(true);
        unit_result(true).unwrap();
    });
    assert_eq!(
        capture.find("destructured").unwrap().input,
        Some(json!({"a": 1, "b": 2, "x": 3, "y": 4}))
    );
    assert_eq!(capture.find("unit_return").unwrap().output, None);
    let r = capture.find("unit_result").unwrap();
    assert_eq!((r.output, r.level), (None, Level::Default));
}

#[traced(kind = "generation", model = "gpt-4o")]
fn llm_call(prompt: &str) -> String {
    let text = format!("re: {prompt}");
    let updated = ops_core::update_current_observation(|o| {
        o.usage(Usage::tokens(7, 3).with_cost(0.5, "USD"))
            .model("gpt-4o-2024-08-06")
            .metadata("cached", false)
            .model_parameter("seed", 42)
            .completion_started();
    });
    assert!(updated);
    ops_core::update_current_trace(|t| {
        t.user_id("user-42")
            .session_id("session-9")
            .tags(["from-update"])
            .metadata("region", "eu");
    });
    text
}

#[traced(kind = "workflow")]
fn workflow() -> String {
    let out = llm_call("hi");
    ops_core::update_current_observation(|o| {
        o.output(json!({"final": out.clone()}))
            .level(Level::Warning)
            .status_message("partial");
    });
    out
}

#[test]
fn updates_reach_the_current_observation_and_the_trace() {
    let capture = ops_testkit::capture();
    capture.run(workflow);
    capture.assert(
        expect::trace()
            .kind(ObservationKind::Workflow)
            .user_id("user-42")
            .session_id("session-9")
            .tag("from-update")
            .root(
                expect::observation("workflow")
                    .level(Level::Warning)
                    .status_message("partial")
                    .output(json!({"final": "re: hi"}))
                    .child(
                        expect::observation("llm_call")
                            .model("gpt-4o-2024-08-06")
                            .usage(7, 3)
                            .output(json!("re: hi"))
                            .metadata("cached", false),
                    ),
            ),
    );
    let trace = &capture.traces()[0];
    assert_eq!(trace.metadata.get("region"), Some(&json!("eu")));
    let llm = capture.find("llm_call").unwrap();
    assert_eq!(llm.usage.as_ref().unwrap().total_cost(), Some(0.5));
    assert!(llm.completion_start_time.unwrap() >= llm.start_time);
    assert_eq!(llm.model_parameters.get("seed"), Some(&json!(42)));
    assert_eq!(trace.output, Some(json!({"final": "re: hi"})));
}

#[test]
fn updates_outside_a_traced_call_change_nothing() {
    assert!(!ops_core::update_current_observation(|o| {
        o.level(Level::Error);
    }));
    assert!(!ops_core::update_current_trace(|t| {
        t.user_id("nobody");
    }));
}

#[traced(level = "debug", app_id = "app-1", tenant_id = String::from("t-1"),
         environment = "test", release = Some("1.2.3"), version = 3)]
fn attributed() {}

#[test]
fn level_and_trace_attributes() {
    let capture = ops_testkit::capture();
    capture.run(attributed);
    let trace = &capture.traces()[0];
    let a = &trace.attributes;
    assert_eq!(a.app_id.as_deref(), Some("app-1"));
    assert_eq!(a.tenant_id.as_deref(), Some("t-1"));
    assert_eq!(a.environment.as_deref(), Some("test"));
    assert_eq!(a.release.as_deref(), Some("1.2.3"));
    assert_eq!(a.version.as_deref(), Some("3"));
    assert_eq!(trace.observations[0].level, Level::Debug);
}

#[traced]
fn child_of_explicit_parent(n: u8) -> u8 {
    n
}

#[traced(parent = None)]
fn always_a_root() -> u8 {
    1
}

#[traced(parent = ctx, skip(ctx))]
fn with_parent(ctx: &ObservationContext) -> u8 {
    2
}

/// `parent = ctx` without `skip(ctx)`: the context is the parent, never an input.
#[traced(parent = ctx)]
fn with_parent_unskipped(ctx: ObservationContext, query: &str) -> u8 {
    let _ = query;
    3
}

#[test]
fn the_parent_parameter_needs_no_skip_and_is_not_an_input() {
    let capture = ops_testkit::capture();
    capture.run(|| {
        let ctx = holder();
        with_parent_unskipped(ctx, "hi");
    });
    let traces = capture.traces();
    let holder_trace = traces.iter().find(|t| t.name == "holder").unwrap();
    let child = holder_trace
        .observations
        .iter()
        .find(|o| o.name == "with_parent_unskipped")
        .unwrap_or_else(|| panic!("{}", capture.render()));
    assert_eq!(child.input, Some(json!({"query": "hi"})));
}

#[traced(capture_output = false)]
fn holder() -> ObservationContext {
    let ctx = ObservationContext::current();
    assert!(ctx.observation_id().is_some());
    assert!(ctx.trace_id().is_some());
    always_a_root();
    ctx
}

#[test]
fn parent_overrides_the_context() {
    let capture = ops_testkit::capture();
    capture.run(|| {
        let ctx = holder();
        // `holder` has ended; its context still adopts this call.
        with_parent(&ctx);
        // `parent = None` started a trace of its own inside `holder`.
    });
    let traces = capture.traces();
    assert_eq!(traces.len(), 2, "{}", capture.render());
    let holder_trace = traces
        .iter()
        .find(|t| t.name == "holder")
        .expect("holder's trace");
    assert!(
        holder_trace
            .observations
            .iter()
            .any(|o| o.name == "with_parent"),
        "{}",
        capture.render()
    );
    let root = traces.iter().find(|t| t.name == "always_a_root").unwrap();
    assert_eq!(root.observations.len(), 1);
    let ctx = ObservationContext::root();
    assert!(ctx.is_root() && ctx.is_sampled());
    let _ = child_of_explicit_parent(0);
}

#[traced]
fn in_a_thread(n: u8) -> u8 {
    n + 1
}

#[traced]
fn fan_out() -> u8 {
    let a = ops_core::spawn_thread(|| in_a_thread(1));
    let ctx = ObservationContext::current();
    let b = std::thread::spawn(move || ctx.in_scope(|| in_a_thread(2)));
    // A thread spawned without the context starts its own trace (on no queue here).
    let c = std::thread::spawn(|| in_a_thread(3));
    a.join().unwrap() + b.join().unwrap() + c.join().unwrap()
}

#[test]
fn threads_inherit_the_context_through_the_helpers() {
    let capture = ops_testkit::capture();
    assert_eq!(capture.run(fan_out), 9);
    capture.assert(
        expect::trace().root(
            expect::observation("fan_out")
                .child(expect::observation("in_a_thread").input(json!({"n": 1})))
                .child(expect::observation("in_a_thread").input(json!({"n": 2})))
                .only(),
        ),
    );
}

#[traced]
fn step(i: u32) -> u32 {
    i
}

#[traced(parent = None)]
fn side_job() -> u32 {
    step(100) + step(101)
}

#[traced]
fn main_job(n: u32) -> u32 {
    // More calls than a thread keeps before handing them to their trace, on both sides of a
    // call that starts a trace of its own.
    let before: u32 = (0..n).map(step).sum();
    let side = side_job();
    let after: u32 = (0..n).map(step).sum();
    before + side + after
}

#[test]
fn a_thread_that_switches_traces_keeps_each_traces_calls_apart() {
    let capture = ops_testkit::capture();
    let n = 150;
    capture.run(|| main_job(n));
    capture.flush();
    let traces = capture.traces();
    assert_eq!(traces.len(), 2, "{}", capture.render());
    let main = traces.iter().find(|t| t.name == "main_job").unwrap();
    let side = traces.iter().find(|t| t.name == "side_job").unwrap();
    assert_eq!(main.observations.len(), 1 + 2 * n as usize);
    let root = main.roots().next().unwrap();
    let steps: Vec<u64> = main
        .children_of(root.id)
        .map(|o| {
            assert_eq!(o.name, "step");
            o.input.as_ref().unwrap()["i"].as_u64().unwrap()
        })
        .collect();
    let expected: Vec<u64> = (0..u64::from(n)).chain(0..u64::from(n)).collect();
    assert_eq!(
        steps, expected,
        "every step of main_job, in order, and no other"
    );
    assert_eq!(side.observations.len(), 3);
    let side_root = side.roots().next().unwrap();
    let side_steps: Vec<_> = side
        .children_of(side_root.id)
        .map(|o| o.input.clone().unwrap())
        .collect();
    assert_eq!(side_steps, vec![json!({"i": 100}), json!({"i": 101})]);
}

#[traced]
fn timed_leaf() {
    std::thread::sleep(std::time::Duration::from_millis(5));
}

#[traced]
fn timed_root() {
    std::thread::sleep(std::time::Duration::from_millis(2));
    timed_leaf();
    timed_leaf();
}

#[test]
fn times_nest_follow_the_wall_clock_and_match_the_ids() {
    let capture = ops_testkit::capture();
    let before = chrono::Utc::now();
    capture.run(timed_root);
    let after = chrono::Utc::now();
    let trace = &capture.traces()[0];
    let root = trace.roots().next().unwrap();
    let slack = chrono::TimeDelta::milliseconds(2);
    assert!(
        root.start_time >= before - slack,
        "{} vs {before}",
        root.start_time
    );
    let root_end = root.end_time.unwrap();
    assert!(root_end <= after + slack, "{root_end} vs {after}");
    assert_eq!(trace.start_time, root.start_time);
    assert_eq!(trace.end_time, Some(root_end));
    assert!(root.duration().unwrap() >= chrono::TimeDelta::milliseconds(12));
    let leaves: Vec<_> = trace.children_of(root.id).collect();
    assert_eq!(leaves.len(), 2);
    for leaf in &leaves {
        let end = leaf.end_time.unwrap();
        assert!(leaf.start_time >= root.start_time + chrono::TimeDelta::milliseconds(2));
        assert!(end <= root_end);
        assert!(leaf.duration().unwrap() >= chrono::TimeDelta::milliseconds(5));
    }
    assert!(leaves[1].start_time >= leaves[0].end_time.unwrap());
    // Observation ids are UUIDv7 carrying the observation's start, to the millisecond.
    for o in &trace.observations {
        let (secs, nanos) = o.id.get_timestamp().unwrap().to_unix();
        let id_millis = secs as i64 * 1000 + i64::from(nanos / 1_000_000);
        assert_eq!(id_millis, o.start_time.timestamp_millis(), "{}", o.name);
    }
}

#[traced]
fn in_worker(n: u8) -> u8 {
    n
}

#[traced(skip_all, capture_output = false)]
fn with_lingering_worker(go: std::sync::mpsc::Receiver<()>) -> std::thread::JoinHandle<()> {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = ops_core::spawn_thread(move || {
        in_worker(1);
        done.send(()).unwrap();
        // The thread stays in the trace's context after the root has ended.
        go.recv().unwrap();
    });
    finished.recv().unwrap();
    worker
}

#[test]
fn a_call_on_a_thread_that_stays_in_the_context_is_delivered_with_its_root() {
    let capture = ops_testkit::capture();
    let (go, wait) = std::sync::mpsc::channel();
    let worker = capture.run(|| with_lingering_worker(wait));
    capture.flush();
    // Delivered with the root's part, while the worker is still in the context.
    capture.assert(
        expect::trace().root(
            expect::observation("with_lingering_worker")
                .child(expect::observation("in_worker").input(json!({"n": 1})))
                .only(),
        ),
    );
    go.send(()).unwrap();
    worker.join().unwrap();
}
