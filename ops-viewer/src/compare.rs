//! Two traces side by side, with the inputs and outputs of matching observations diffed.

use std::collections::HashMap;

use axum::extract::{Query, State};
use maud::{Markup, html};
use ops_core::model::Trace;
use ops_store::TraceStore;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::detail::{Node, tree};
use crate::error::ViewerError;
use crate::format;
use crate::pages::{encode, layout};

pub(crate) async fn page(
    State(store): State<TraceStore>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, ViewerError> {
    let id = |key: &str| {
        query
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ViewerError::bad_request(format!(
                    "missing {key}: compare takes two trace ids, /compare?a=ID&b=ID"
                ))
            })
    };
    let (a_id, b_id) = (id("a")?, id("b")?);
    let a = store
        .get(&a_id)
        .await?
        .ok_or_else(|| ViewerError::no_trace(&a_id))?;
    let b = store
        .get(&b_id)
        .await?
        .ok_or_else(|| ViewerError::no_trace(&b_id))?;
    Ok(layout("Compare", render(&a, &b)))
}

fn render(a: &Trace, b: &Trace) -> Markup {
    let (ta, tb) = (tree(a), tree(b));
    let in_b: HashMap<&str, &Node<'_>> = tb.iter().map(|n| (n.path.as_str(), n)).collect();
    let in_a: HashMap<&str, &Node<'_>> = ta.iter().map(|n| (n.path.as_str(), n)).collect();
    let mut pairs: Vec<(Option<&Node<'_>>, Option<&Node<'_>>)> = ta
        .iter()
        .map(|n| (Some(n), in_b.get(n.path.as_str()).copied()))
        .collect();
    pairs.extend(
        tb.iter()
            .filter(|n| !in_a.contains_key(n.path.as_str()))
            .map(|n| (None, Some(n))),
    );
    let head = |t: &Trace| {
        let s = ops_store::TraceSummary::of(t);
        html! {
            div.side {
                h2 { a href={ "/traces/" (encode(t.id.as_str())) } { (t.name) } }
                p { code { (t.id.as_str()) } br; (format::time(t.start_time)) " · " (format::duration_ms(s.duration_ms)) " · " (s.tokens) " tokens · " (format::cost(s.cost)) " · " (s.status.as_str()) }
            }
        }
    };
    html! {
        h1 { "Compare" }
        div.sides { (head(a)) (head(b)) }
        @if a.input.is_some() || b.input.is_some() || a.output.is_some() || b.output.is_some() {
            section.pair {
                h3 { "Trace" }
                (diff("input", a.input.as_ref(), b.input.as_ref()))
                (diff("output", a.output.as_ref(), b.output.as_ref()))
            }
        }
        @for (x, y) in &pairs {
            @let n = x.or(*y).map(|n| n.obs);
            section.pair {
                h3 {
                    @if let Some(o) = n { span.kind { (o.kind.as_str()) } " " (o.name) }
                    @if x.is_none() { " " span.only { "only in B" } }
                    @if y.is_none() { " " span.only { "only in A" } }
                }
                div.sides {
                    div.side { @if let Some(x) = x { (facts(x)) } }
                    div.side { @if let Some(y) = y { (facts(y)) } }
                }
                (diff("input", x.and_then(|n| n.obs.input.as_ref()), y.and_then(|n| n.obs.input.as_ref())))
                (diff("output", x.and_then(|n| n.obs.output.as_ref()), y.and_then(|n| n.obs.output.as_ref())))
            }
        }
    }
}

fn facts(n: &Node<'_>) -> Markup {
    html! {
        p.facts-line {
            (format::duration_ms(n.obs.duration().map(|d| d.num_milliseconds())))
            " · " (n.tokens) " tokens · " (format::cost(n.cost))
            @if let Some(m) = &n.obs.model { " · " (m) }
            " · " (n.obs.level.as_str())
        }
    }
}

/// A line diff of two values' pretty JSON; "same" when equal.
fn diff(label: &str, a: Option<&Value>, b: Option<&Value>) -> Markup {
    if a.is_none() && b.is_none() {
        return html! {};
    }
    let left = a.map(format::pretty).unwrap_or_default();
    let right = b.map(format::pretty).unwrap_or_default();
    if left == right {
        return html! { div.diff.same { span.label { (label) } " same" } };
    }
    let diff = TextDiff::from_lines(&left, &right);
    html! {
        div.diff {
            span.label { (label) }
            pre {
                @for change in diff.iter_all_changes() {
                    @let (class, sign) = match change.tag() {
                        ChangeTag::Delete => ("del", "- "),
                        ChangeTag::Insert => ("ins", "+ "),
                        ChangeTag::Equal => ("eq", "  "),
                    };
                    span class=(class) { (sign) (change.value().trim_end_matches('\n')) "\n" }
                }
            }
        }
    }
}
