//! Expected trees with wildcards, in the style of Opik's fake backend and tracing-mock's
//! expectations.
//!
//! Build an [`ExpectedTrace`] with [`trace()`] and [`ExpectedObservation`]s with
//! [`observation()`]. Every field left unset is a wildcard. Children are matched regardless of
//! order, each expected observation to a different actual one; extra actual observations are
//! allowed unless [`ExpectedObservation::only`] (or [`ExpectedTrace::only_roots`]) is set.
//!
//! ```
//! use ops_testkit::expect;
//! use ops_core::{ObservationKind, Observation, Trace, TraceId, Usage};
//!
//! let mut trace = Trace::new(TraceId::generate(), ObservationKind::Workflow, "flow", chrono::Utc::now());
//! let root = Observation::new(ObservationKind::Workflow, "flow");
//! let mut llm = Observation::new(ObservationKind::Generation, "llm");
//! llm.parent_id = Some(root.id);
//! llm.usage = Some(Usage::tokens(10, 5));
//! trace.observations = vec![root, llm];
//!
//! let expected = expect::trace().kind(ObservationKind::Workflow).root(
//!     expect::observation("flow").child(
//!         expect::observation("llm").kind(ObservationKind::Generation).usage(10, 5),
//!     ),
//! );
//! expected.assert_matches(&trace);
//! assert!(!expect::trace().name("other").matches(&trace));
//! ```

use std::fmt::Write;

use ops_core::model::RenderOptions;
use ops_core::{Level, Observation, ObservationKind, Trace};
use serde_json::Value;

/// An expected trace: every field left unset matches anything.
pub fn trace() -> ExpectedTrace {
    ExpectedTrace {
        name: None,
        kind: None,
        user_id: None,
        session_id: None,
        tags: Vec::new(),
        roots: Vec::new(),
        only_roots: false,
        anywhere: Vec::new(),
        test_name: crate::test_name(),
    }
}

/// An expected observation named `name`: every other field left unset matches anything.
pub fn observation(name: &str) -> ExpectedObservation {
    ExpectedObservation {
        name: name.to_owned(),
        kind: None,
        level: None,
        status_message: None,
        model: None,
        usage: None,
        input: None,
        output: None,
        metadata: Vec::new(),
        children: Vec::new(),
        only: false,
    }
}

/// What a trace should look like. Built with [`trace()`].
#[derive(Debug, Clone)]
#[must_use = "an expectation does nothing until it is asserted"]
pub struct ExpectedTrace {
    name: Option<String>,
    kind: Option<ObservationKind>,
    user_id: Option<String>,
    session_id: Option<String>,
    tags: Vec<String>,
    roots: Vec<ExpectedObservation>,
    only_roots: bool,
    anywhere: Vec<ExpectedObservation>,
    test_name: String,
}

/// What an observation and its subtree should look like. Built with [`observation()`].
#[derive(Debug, Clone)]
#[must_use = "an expectation does nothing until it is added to a trace and asserted"]
pub struct ExpectedObservation {
    name: String,
    kind: Option<ObservationKind>,
    level: Option<Level>,
    status_message: Option<String>,
    model: Option<String>,
    usage: Option<(u64, u64)>,
    input: Option<Value>,
    output: Option<Value>,
    metadata: Vec<(String, Value)>,
    children: Vec<ExpectedObservation>,
    only: bool,
}

impl ExpectedTrace {
    /// The trace's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The trace's kind (the kind of its root).
    pub fn kind(mut self, kind: ObservationKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The trace's user id.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// The trace's session id.
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// A tag the trace must have (others are allowed).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// A root observation (one without a parent in the trace) the trace must have, with its
    /// subtree.
    pub fn root(mut self, root: ExpectedObservation) -> Self {
        self.roots.push(root);
        self
    }

    /// The trace must have exactly the roots given with [`ExpectedTrace::root`], no others.
    pub fn only_roots(mut self) -> Self {
        self.only_roots = true;
        self
    }

    /// An observation the trace must have somewhere, at any depth, with its subtree.
    pub fn contains(mut self, observation: ExpectedObservation) -> Self {
        self.anywhere.push(observation);
        self
    }

    /// Whether `trace` matches.
    pub fn matches(&self, trace: &Trace) -> bool {
        self.check(trace).is_ok()
    }

    /// Why `trace` does not match, naming the first difference found; `None` if it matches.
    pub fn mismatch(&self, trace: &Trace) -> Option<String> {
        self.check(trace).err()
    }

    /// Passes if `trace` matches.
    ///
    /// # Panics
    /// If it does not, with a message that starts with `[<test name>]` (the name of the thread
    /// that built the expectation) and shows the expected tree, the actual tree and the first
    /// difference.
    #[track_caller]
    pub fn assert_matches(&self, trace: &Trace) {
        if self.check(trace).is_err() {
            panic!("{}", failure(&self.test_name, self, &[trace]));
        }
    }

    /// The expected tree, in the renderer's format; `*` stands for "anything".
    pub fn render(&self) -> String {
        let mut header = Vec::new();
        for (key, value) in [("user", &self.user_id), ("session", &self.session_id)] {
            if let Some(v) = value {
                header.push(format!("{key}={v}"));
            }
        }
        if !self.tags.is_empty() {
            header.push(format!("tags⊇{}", self.tags.join(",")));
        }
        let mut out = format!(
            "trace {} [{}] {{{}}}{}\n",
            self.name.as_deref().unwrap_or("*"),
            self.kind.map_or("*", ObservationKind::as_str),
            header.join(", "),
            if self.only_roots {
                " (only these roots)"
            } else {
                ""
            },
        );
        for root in &self.roots {
            root.render_into(&mut out, 1, "");
        }
        for o in &self.anywhere {
            o.render_into(&mut out, 1, "anywhere: ");
        }
        out
    }

    fn check(&self, trace: &Trace) -> Result<(), String> {
        if let Some(name) = &self.name
            && trace.name != *name
        {
            return Err(format!(
                "trace name: expected {name:?}, got {:?}",
                trace.name
            ));
        }
        if let Some(kind) = self.kind
            && trace.kind != kind
        {
            return Err(format!("trace kind: expected {kind}, got {}", trace.kind));
        }
        let attributes = &trace.attributes;
        for (field, expected, actual) in [
            ("user_id", &self.user_id, &attributes.user_id),
            ("session_id", &self.session_id, &attributes.session_id),
        ] {
            if let Some(expected) = expected
                && actual.as_deref() != Some(expected.as_str())
            {
                return Err(format!(
                    "trace {field}: expected {expected:?}, got {}",
                    quote(actual.as_ref())
                ));
            }
        }
        for tag in &self.tags {
            if !trace.tags.contains(tag) {
                return Err(format!(
                    "trace tags: expected to contain {tag:?}, got {:?}",
                    trace.tags
                ));
            }
        }
        let roots: Vec<&Observation> = trace.roots().collect();
        match_list(&self.roots, &roots, self.only_roots, trace, None)?;
        for expected in &self.anywhere {
            let found = trace
                .observations
                .iter()
                .any(|o| expected.check(o, trace, &o.name).is_ok());
            if !found {
                let closest = trace
                    .observations
                    .iter()
                    .find(|o| o.name == expected.name)
                    .and_then(|o| expected.check(o, trace, &o.name).err());
                return Err(match closest {
                    Some(why) => format!(
                        "no observation anywhere in the trace matches `{}`; the one with that \
                         name differs: {why}",
                        expected.name
                    ),
                    None => format!(
                        "no observation anywhere in the trace is named {:?}; names: [{}]",
                        expected.name,
                        names(trace.observations.iter())
                    ),
                });
            }
        }
        Ok(())
    }
}

impl ExpectedObservation {
    /// The observation's kind.
    pub fn kind(mut self, kind: ObservationKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The observation's level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }

    /// The observation's status message (for example the error).
    pub fn status_message(mut self, message: impl Into<String>) -> Self {
        self.status_message = Some(message.into());
        self
    }

    /// The observation's model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The observation's input and output units (the total is not checked).
    pub fn usage(mut self, input: u64, output: u64) -> Self {
        self.usage = Some((input, output));
        self
    }

    /// The observation's input, compared as equal JSON.
    pub fn input(mut self, input: impl Into<Value>) -> Self {
        self.input = Some(input.into());
        self
    }

    /// The observation's output, compared as equal JSON.
    pub fn output(mut self, output: impl Into<Value>) -> Self {
        self.output = Some(output.into());
        self
    }

    /// A metadata key the observation must have, with this value (other keys are allowed).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// A direct child the observation must have, with its subtree.
    pub fn child(mut self, child: ExpectedObservation) -> Self {
        self.children.push(child);
        self
    }

    /// The observation must have exactly the children given with
    /// [`ExpectedObservation::child`], no others (in any order).
    pub fn only(mut self) -> Self {
        self.only = true;
        self
    }

    fn render_into(&self, out: &mut String, depth: usize, prefix: &str) {
        let mut fields = Vec::new();
        if let Some(level) = self.level {
            fields.push(format!("level={}", level.as_str()));
        }
        if let Some(m) = &self.status_message {
            fields.push(format!("status={m:?}"));
        }
        if let Some(m) = &self.model {
            fields.push(format!("model={m}"));
        }
        if let Some((input, output)) = self.usage {
            fields.push(format!("usage={input}/{output}/*"));
        }
        for (key, value) in [("input", &self.input), ("output", &self.output)] {
            if let Some(v) = value {
                fields.push(format!("{key}={v}"));
            }
        }
        for (key, value) in &self.metadata {
            fields.push(format!("metadata.{key}={value}"));
        }
        let _ = writeln!(
            out,
            "{}{prefix}{} [{}] {{{}}}{}",
            "    ".repeat(depth),
            self.name,
            self.kind.map_or("*", ObservationKind::as_str),
            fields.join(", "),
            if self.only {
                " (only these children)"
            } else {
                ""
            },
        );
        for child in &self.children {
            child.render_into(out, depth + 1, "");
        }
    }

    /// Checks `actual` (at `path` in `trace`) and its subtree.
    fn check(&self, actual: &Observation, trace: &Trace, path: &str) -> Result<(), String> {
        let differ = |field: &str, expected: String, got: String| {
            Err(format!("`{path}`: {field}: expected {expected}, got {got}"))
        };
        if actual.name != self.name {
            return differ("name", quote(Some(&self.name)), quote(Some(&actual.name)));
        }
        if let Some(kind) = self.kind
            && actual.kind != kind
        {
            return differ("kind", kind.to_string(), actual.kind.to_string());
        }
        if let Some(level) = self.level
            && actual.level != level
        {
            return differ("level", level.as_str().into(), actual.level.as_str().into());
        }
        for (field, expected, got) in [
            (
                "status_message",
                &self.status_message,
                &actual.status_message,
            ),
            ("model", &self.model, &actual.model),
        ] {
            if let Some(expected) = expected
                && got.as_deref() != Some(expected.as_str())
            {
                return differ(field, quote(Some(expected)), quote(got.as_ref()));
            }
        }
        if let Some((input, output)) = self.usage {
            let got = actual.usage.as_ref().map(|u| (u.input, u.output));
            if got != Some((Some(input), Some(output))) {
                let n = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
                return differ(
                    "usage (input/output)",
                    format!("{input}/{output}"),
                    got.map_or("none".to_owned(), |(i, o)| format!("{}/{}", n(i), n(o))),
                );
            }
        }
        for (field, expected, got) in [
            ("input", &self.input, &actual.input),
            ("output", &self.output, &actual.output),
        ] {
            if let Some(expected) = expected
                && got.as_ref() != Some(expected)
            {
                return Err(format!(
                    "`{path}`: {field}: expected {expected}, got {}",
                    got.as_ref().map_or("none".to_owned(), Value::to_string)
                ));
            }
        }
        for (key, expected) in &self.metadata {
            let got = actual.metadata.get(key);
            if got != Some(expected) {
                return Err(format!(
                    "`{path}`: metadata.{key}: expected {expected}, got {}",
                    got.map_or("none".to_owned(), Value::to_string)
                ));
            }
        }
        let children: Vec<&Observation> = trace.children_of(actual.id).collect();
        match_list(&self.children, &children, self.only, trace, Some(path))
    }
}

/// Matches `expected` to distinct members of `actual`, in any order. `parent` is the path of
/// the observation whose children these are, `None` for the trace's roots.
fn match_list(
    expected: &[ExpectedObservation],
    actual: &[&Observation],
    only: bool,
    trace: &Trace,
    parent: Option<&str>,
) -> Result<(), String> {
    let place = match parent {
        Some(path) => format!("children of `{path}`"),
        None => "the trace's roots".to_owned(),
    };
    let path_of = |o: &Observation| match parent {
        Some(path) => format!("{path} > {}", o.name),
        None => o.name.clone(),
    };
    if only && expected.len() != actual.len() {
        return Err(format!(
            "{place}: expected exactly {} [{}], found {} [{}]",
            expected.len(),
            expected
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            actual.len(),
            names(actual.iter().copied())
        ));
    }
    let candidates: Vec<Vec<usize>> = expected
        .iter()
        .map(|e| {
            (0..actual.len())
                .filter(|&j| e.check(actual[j], trace, &path_of(actual[j])).is_ok())
                .collect()
        })
        .collect();
    if let Some(i) = candidates.iter().position(Vec::is_empty) {
        let e = &expected[i];
        return Err(match actual.iter().find(|a| a.name == e.name) {
            Some(same_name) => e
                .check(same_name, trace, &path_of(same_name))
                .expect_err("a same-named candidate that matched would be a candidate"),
            None => format!(
                "{place}: no observation named {:?}; found [{}]",
                e.name,
                names(actual.iter().copied())
            ),
        });
    }
    let mut used = vec![false; actual.len()];
    if assign(&candidates, 0, &mut used) {
        Ok(())
    } else {
        Err(format!(
            "{place}: each expected observation needs a different match, but [{}] can only match \
             among [{}]",
            expected
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            names(actual.iter().copied())
        ))
    }
}

/// Finds a distinct candidate for each expectation from `i` on (backtracking).
fn assign(candidates: &[Vec<usize>], i: usize, used: &mut [bool]) -> bool {
    let Some(options) = candidates.get(i) else {
        return true;
    };
    for &j in options {
        if !used[j] {
            used[j] = true;
            if assign(candidates, i + 1, used) {
                return true;
            }
            used[j] = false;
        }
    }
    false
}

/// A string quoted as JSON would, or `none`.
fn quote(value: Option<&String>) -> String {
    value.map_or("none".to_owned(), |v| format!("{v:?}"))
}

fn names<'a>(observations: impl Iterator<Item = &'a Observation>) -> String {
    observations
        .map(|o| o.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The failure message: the test name, the expected tree, and each actual tree with why it
/// does not match.
pub(crate) fn failure(test_name: &str, expected: &ExpectedTrace, traces: &[&Trace]) -> String {
    let mut out = format!(
        "[{test_name}] no captured trace matches the expected trace\n\nexpected tree \
         (`*` matches anything):\n{}\n",
        expected.render()
    );
    if traces.is_empty() {
        out.push_str(
            "actual trees: none; no trace was captured. Was the capture installed where the \
             traces were emitted (Capture::enter on this thread, Capture::scope around the \
             future, including spawned tasks)?\n",
        );
        return out;
    }
    let mut rendered: Vec<(String, String)> = traces
        .iter()
        .map(|t| {
            (
                t.render_tree(RenderOptions::redacted()),
                expected.check(t).err().unwrap_or_default(),
            )
        })
        .collect();
    rendered.sort();
    let _ = writeln!(out, "actual trees ({}):", rendered.len());
    for (tree, why) in rendered {
        let _ = writeln!(out, "{tree}  -> differs: {why}\n");
    }
    out
}

/// The failure message of an ordered match, or `None` when `traces` are exactly `expected`.
pub(crate) fn sequence_failure(
    test_name: &str,
    expected: &[ExpectedTrace],
    traces: &[&Trace],
) -> Option<String> {
    let mut problems = Vec::new();
    if expected.len() != traces.len() {
        problems.push(format!(
            "expected {} trace(s), captured {}",
            expected.len(),
            traces.len()
        ));
    }
    for (i, (e, t)) in expected.iter().zip(traces).enumerate() {
        if let Err(why) = e.check(t) {
            problems.push(format!("trace #{}: {why}", i + 1));
        }
    }
    if problems.is_empty() {
        return None;
    }
    let mut out = format!(
        "[{test_name}] the captured traces are not the expected sequence\n\n{}\n\n\
         expected trees, in order (`*` matches anything):\n",
        problems.join("\n")
    );
    for (i, e) in expected.iter().enumerate() {
        let _ = write!(out, "#{} {}", i + 1, e.render());
    }
    let _ = writeln!(out, "\nactual trees, in arrival order ({}):", traces.len());
    for (i, t) in traces.iter().enumerate() {
        let _ = write!(
            out,
            "#{} {}",
            i + 1,
            t.render_tree(RenderOptions::redacted())
        );
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::{TraceId, Usage};
    use serde_json::json;

    /// `flow` → (`llm` generation 10/5, `tool` tool → `http` span).
    fn sample() -> Trace {
        let mut t = Trace::new(
            TraceId::generate(),
            ObservationKind::Workflow,
            "flow",
            chrono::Utc::now(),
        );
        t.tags = vec!["workflow".into()];
        t.attributes.user_id = Some("u1".into());
        let root = Observation::new(ObservationKind::Workflow, "flow");
        let mut llm = Observation::new(ObservationKind::Generation, "llm");
        llm.parent_id = Some(root.id);
        llm.usage = Some(Usage::tokens(10, 5));
        llm.model = Some("gpt-4o".into());
        llm.input = Some(json!({"q": "hi"}));
        llm.metadata.insert("node_type".into(), json!("llm"));
        let mut tool = Observation::new(ObservationKind::Tool, "tool");
        tool.parent_id = Some(root.id);
        tool.level = Level::Error;
        tool.status_message = Some("boom".into());
        let mut http = Observation::new(ObservationKind::Span, "http");
        http.parent_id = Some(tool.id);
        t.observations = vec![root, llm, tool, http];
        t
    }

    #[test]
    fn unset_fields_are_wildcards() {
        assert!(trace().matches(&sample()));
        assert!(trace().root(observation("flow")).matches(&sample()));
    }

    #[test]
    fn every_field_is_checked() {
        let t = sample();
        let full = trace()
            .name("flow")
            .kind(ObservationKind::Workflow)
            .user_id("u1")
            .tag("workflow")
            .root(
                observation("flow")
                    .kind(ObservationKind::Workflow)
                    .child(
                        observation("llm")
                            .kind(ObservationKind::Generation)
                            .model("gpt-4o")
                            .usage(10, 5)
                            .input(json!({"q": "hi"}))
                            .metadata("node_type", "llm"),
                    )
                    .child(
                        observation("tool")
                            .level(Level::Error)
                            .status_message("boom")
                            .child(observation("http"))
                            .only(),
                    )
                    .only(),
            )
            .only_roots();
        assert_eq!(full.mismatch(&t), None);

        let cases: Vec<(ExpectedTrace, &str)> = vec![
            (trace().name("other"), "trace name: expected \"other\""),
            (
                trace().kind(ObservationKind::Message),
                "trace kind: expected message",
            ),
            (trace().user_id("u2"), "trace user_id: expected \"u2\""),
            (
                trace().session_id("s"),
                "trace session_id: expected \"s\", got none",
            ),
            (trace().tag("nope"), "expected to contain \"nope\""),
            (
                trace().root(observation("flow").kind(ObservationKind::Span)),
                "`flow`: kind: expected span, got workflow",
            ),
            (
                trace().root(observation("flow").child(observation("llm").usage(10, 6))),
                "`flow > llm`: usage (input/output): expected 10/6, got 10/5",
            ),
            (
                trace().root(observation("flow").child(observation("llm").model("x"))),
                "`flow > llm`: model: expected \"x\", got \"gpt-4o\"",
            ),
            (
                trace().root(observation("flow").child(observation("llm").input(json!(1)))),
                "`flow > llm`: input: expected 1, got {\"q\":\"hi\"}",
            ),
            (
                trace().root(observation("flow").child(observation("llm").output("x"))),
                "`flow > llm`: output: expected \"x\", got none",
            ),
            (
                trace().root(observation("flow").child(observation("llm").metadata("k", 1))),
                "`flow > llm`: metadata.k: expected 1, got none",
            ),
            (
                trace().root(observation("flow").child(observation("tool").level(Level::Warning))),
                "`flow > tool`: level: expected WARNING, got ERROR",
            ),
            (
                trace()
                    .root(observation("flow").child(observation("tool").status_message("other"))),
                "`flow > tool`: status_message: expected \"other\"",
            ),
            (
                trace().root(observation("flow").child(observation("missing"))),
                "children of `flow`: no observation named \"missing\"; found [llm, tool]",
            ),
            (
                trace().root(observation("flow").child(observation("llm")).only()),
                "children of `flow`: expected exactly 1 [llm], found 2 [llm, tool]",
            ),
            (
                trace().root(observation("flow").child(
                    observation("tool").child(observation("http").kind(ObservationKind::Tool)),
                )),
                "`flow > tool > http`: kind: expected tool, got span",
            ),
            (
                trace().root(observation("llm")),
                "the trace's roots: no observation named \"llm\"; found [flow]",
            ),
            (
                trace().root(observation("flow")).root(observation("flow")),
                "the trace's roots: each expected observation needs a different match",
            ),
            (
                trace().contains(observation("http").kind(ObservationKind::Tool)),
                "the one with that name differs: `http`: kind: expected tool, got span",
            ),
            (
                trace().contains(observation("nowhere")),
                "no observation anywhere in the trace is named \"nowhere\"",
            ),
        ];
        for (expected, reason) in cases {
            let why = expected
                .mismatch(&t)
                .unwrap_or_else(|| panic!("{expected:?} should not match"));
            assert!(why.contains(reason), "{why:?} does not contain {reason:?}");
            assert!(!expected.matches(&t));
        }
    }

    #[test]
    fn children_match_in_any_order_and_to_distinct_observations() {
        let t = sample();
        let reversed = trace().root(
            observation("flow")
                .child(observation("tool"))
                .child(observation("llm"))
                .only(),
        );
        assert!(reversed.matches(&t));
        let twice = trace().root(
            observation("flow")
                .child(observation("llm"))
                .child(observation("llm")),
        );
        assert!(!twice.matches(&t));
    }

    #[test]
    fn contains_finds_observations_at_any_depth() {
        let t = sample();
        assert!(trace().contains(observation("http")).matches(&t));
        assert!(
            trace()
                .contains(observation("tool").child(observation("http")))
                .matches(&t)
        );
    }

    #[test]
    fn expected_tree_renders_wildcards() {
        let e = trace()
            .kind(ObservationKind::Message)
            .user_id("u")
            .tag("a")
            .root(
                observation("m")
                    .child(
                        observation("llm")
                            .kind(ObservationKind::Generation)
                            .usage(1, 2)
                            .metadata("k", "v"),
                    )
                    .only(),
            )
            .contains(observation("x").level(Level::Error));
        assert_eq!(
            e.render(),
            "trace * [message] {user=u, tags⊇a}\n    m [*] {} (only these children)\n        \
             llm [generation] {usage=1/2/*, metadata.k=\"v\"}\n    anywhere: x [*] \
             {level=ERROR}\n"
        );
    }

    #[test]
    fn assert_matches_panics_with_the_thread_name_and_both_trees() {
        let t = sample();
        let expected = trace().root(observation("flow").child(observation("nope")));
        let err = std::panic::catch_unwind(|| expected.assert_matches(&t)).unwrap_err();
        let msg = err.downcast_ref::<String>().expect("a String panic");
        let name = std::thread::current().name().unwrap().to_owned();
        assert!(msg.starts_with(&format!("[{name}] ")), "{msg}");
        assert!(name.contains("assert_matches_panics"), "{name}");
        assert!(msg.contains("expected tree"), "{msg}");
        assert!(msg.contains("        nope [*] {}"), "{msg}");
        assert!(msg.contains("actual trees (1):"), "{msg}");
        assert!(msg.contains("        http [span] {}"), "{msg}");
        assert!(msg.contains("no observation named \"nope\""), "{msg}");
    }
}
