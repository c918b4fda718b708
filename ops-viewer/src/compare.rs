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
    let pairs = pair(&ta, &tb);
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

/// Matches the observations of two trees: first by name path (the same step of the same
/// code), then what is left by kind path (the same place in the tree, renamed: a prompt
/// iteration that renamed a step, or a traced run beside the same run rebuilt from its
/// data). Then A's order, then what only B has.
fn pair<'t, 'a>(
    ta: &'t [Node<'a>],
    tb: &'t [Node<'a>],
) -> Vec<(Option<&'t Node<'a>>, Option<&'t Node<'a>>)> {
    let by_name: HashMap<&str, usize> = tb
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.as_str(), i))
        .collect();
    let mut partner: Vec<Option<usize>> = ta
        .iter()
        .map(|n| by_name.get(n.path.as_str()).copied())
        .collect();
    let mut taken = vec![false; tb.len()];
    for j in partner.iter().flatten() {
        taken[*j] = true;
    }
    let (ka, kb) = (kind_paths(ta), kind_paths(tb));
    let mut by_kind: HashMap<&str, usize> = HashMap::new();
    for (j, k) in kb.iter().enumerate() {
        if !taken[j] {
            by_kind.entry(k.as_str()).or_insert(j);
        }
    }
    for (i, p) in partner.iter_mut().enumerate() {
        if p.is_none()
            && let Some(j) = by_kind.remove(ka[i].as_str())
        {
            *p = Some(j);
            taken[j] = true;
        }
    }
    let mut pairs: Vec<_> = ta
        .iter()
        .zip(&partner)
        .map(|(n, p)| (Some(n), p.map(|j| &tb[j])))
        .collect();
    pairs.extend(
        tb.iter()
            .zip(&taken)
            .filter(|(_, t)| !**t)
            .map(|(n, _)| (None, Some(n))),
    );
    pairs
}

/// Each node's kinds from the root down, with its index among same-kind siblings, for nodes
/// in depth-first order (a node's parent is the nearest earlier node one level up).
fn kind_paths(nodes: &[Node<'_>]) -> Vec<String> {
    let mut prefix: Vec<String> = Vec::new();
    let mut counts: Vec<HashMap<&str, usize>> = Vec::new();
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        let d = n.depth.min(prefix.len());
        prefix.truncate(d);
        counts.resize_with(d + 1, HashMap::new);
        let kind = n.obs.kind.as_str();
        let count = counts[d].entry(kind).or_default();
        let path = format!(
            "{}/{kind}#{count}",
            d.checked_sub(1).map_or("", |p| prefix[p].as_str())
        );
        *count += 1;
        prefix.push(path.clone());
        out.push(path);
    }
    out
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
