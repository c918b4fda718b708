//! The trace detail page: tree beside waterfall, totals rolled up the tree, and each
//! observation's input, output, chat messages, model, usage, cost and error.

use std::collections::HashMap;

use axum::extract::{Path, State};
use maud::{Markup, html};
use ops_core::model::{Level, Observation, Trace};
use ops_store::{TraceStore, TraceSummary};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ViewerError;
use crate::format;
use crate::pages::{encode, layout};

/// An observation in tree order, with its depth and the totals of its subtree.
pub(crate) struct Node<'a> {
    pub(crate) obs: &'a Observation,
    pub(crate) depth: usize,
    pub(crate) tokens: u64,
    pub(crate) cost: Option<f64>,
    /// The names from the root down to it, with the index among same-named siblings: how
    /// observations of two traces are matched.
    pub(crate) path: String,
}

/// The observations of `trace` depth-first (parents before children, siblings by start),
/// each with its subtree's tokens and cost. Iterative, so a deep tree cannot overflow.
pub(crate) fn tree(trace: &Trace) -> Vec<Node<'_>> {
    let mut children: HashMap<Uuid, Vec<&Observation>> = HashMap::new();
    for o in &trace.observations {
        if let Some(p) = o.parent_id {
            children.entry(p).or_default().push(o);
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|o| o.start_time);
    }
    let ids: std::collections::HashSet<Uuid> = trace.observations.iter().map(|o| o.id).collect();
    let mut roots: Vec<&Observation> = trace
        .observations
        .iter()
        .filter(|o| o.parent_id.is_none_or(|p| !ids.contains(&p)))
        .collect();
    roots.sort_by_key(|o| o.start_time);
    let mut order: Vec<Node<'_>> = Vec::with_capacity(trace.observations.len());
    let mut parents: Vec<Option<usize>> = Vec::with_capacity(trace.observations.len());
    let mut stack: Vec<(&Observation, usize, Option<usize>, String)> = Vec::new();
    push_siblings(&mut stack, &roots, 0, None, "");
    let mut seen = std::collections::HashSet::new();
    let mut next_unseen = 0;
    loop {
        let Some((obs, depth, parent, path)) = stack.pop() else {
            // Observations in a parent cycle (bad data) are reachable from no root: show
            // each such cycle from its first member, as a root.
            while next_unseen < trace.observations.len()
                && seen.contains(&trace.observations[next_unseen].id)
            {
                next_unseen += 1;
            }
            match trace.observations.get(next_unseen) {
                Some(o) => {
                    push_siblings(&mut stack, &[o], 0, None, "");
                    continue;
                }
                None => break,
            }
        };
        if !seen.insert(obs.id) {
            continue; // a cycle in bad data: show each observation once
        }
        let index = order.len();
        if let Some(kids) = children.get(&obs.id) {
            push_siblings(&mut stack, kids, depth + 1, Some(index), &path);
        }
        let usage = obs.usage.as_ref();
        order.push(Node {
            obs,
            depth,
            tokens: usage.and_then(|u| u.total()).unwrap_or(0),
            cost: usage.and_then(|u| u.total_cost()),
            path,
        });
        parents.push(parent);
    }
    // Children come after their parent: add each node's totals into its parent, last first.
    for i in (0..order.len()).rev() {
        if let Some(p) = parents[i] {
            let (tokens, cost) = (order[i].tokens, order[i].cost);
            order[p].tokens += tokens;
            if let Some(c) = cost {
                order[p].cost = Some(order[p].cost.unwrap_or(0.0) + c);
            }
        }
    }
    order
}

fn push_siblings<'a>(
    stack: &mut Vec<(&'a Observation, usize, Option<usize>, String)>,
    siblings: &[&'a Observation],
    depth: usize,
    parent: Option<usize>,
    prefix: &str,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut entries = Vec::with_capacity(siblings.len());
    for o in siblings {
        let n = seen.entry(o.name.as_str()).or_default();
        entries.push((*o, depth, parent, format!("{prefix}/{}#{n}", o.name)));
        *n += 1;
    }
    // Reversed so the earliest sibling is popped first.
    stack.extend(entries.into_iter().rev());
}

pub(crate) async fn page(
    State(store): State<TraceStore>,
    Path(id): Path<String>,
) -> Result<Markup, ViewerError> {
    let trace = store
        .get(&id)
        .await?
        .ok_or_else(|| ViewerError::no_trace(&id))?;
    Ok(layout(&trace.name, render(&trace)))
}

fn render(trace: &Trace) -> Markup {
    let summary = TraceSummary::of(trace);
    let nodes = tree(trace);
    let start = trace.start_time;
    let end = trace
        .observations
        .iter()
        .filter_map(|o| o.end_time)
        .chain(trace.end_time)
        .max()
        .unwrap_or(start);
    let span_ms = ((end - start).num_milliseconds()).max(1) as f64;
    let total_tokens: u64 = nodes
        .iter()
        .filter(|n| n.depth == 0)
        .map(|n| n.tokens)
        .sum();
    let total_cost = nodes
        .iter()
        .filter(|n| n.depth == 0)
        .filter_map(|n| n.cost)
        .reduce(|a, b| a + b);
    html! {
        header.trace-head {
            h1 { (trace.name) " " span.kind { (trace.kind.as_str()) } " " span class={ "status status-" (summary.status.as_str()) } { (summary.status.as_str()) } }
            dl.facts {
                dt { "Trace" } dd { code { (trace.id.as_str()) } }
                dt { "User" } dd { (trace.attributes.user_id.as_deref().unwrap_or("–")) }
                dt { "Session" } dd {
                    @if let Some(s) = &trace.attributes.session_id { a href={ "/sessions/" (encode(s)) } { (s) } } @else { "–" }
                }
                dt { "Start (UTC)" } dd { (format::time(start)) }
                dt { "Duration" } dd { (format::duration_ms(summary.duration_ms)) }
                dt { "Tokens" } dd #total-tokens { (total_tokens) }
                dt { "Cost" } dd #total-cost { (format::cost(total_cost)) }
                @if !trace.tags.is_empty() {
                    dt { "Tags" } dd { @for t in &trace.tags { a.tag href={ "/?tag=" (encode(t)) } { (t) } " " } }
                }
            }
            form.compare-form method="get" action="/compare" {
                input type="hidden" name="a" value=(trace.id.as_str());
                input name="b" placeholder="another trace id" required;
                button type="submit" { "Compare" }
            }
        }
        div.detail {
            table #tree {
                thead { tr { th { "Observation" } th { "Tokens" } th { "Cost" } th.wf-head { "Timeline (" (format::duration_ms(Some(span_ms as i64))) ")" } } }
                tbody {
                    @for n in &nodes {
                        @let o = n.obs;
                        @let offset = ((o.start_time - start).num_milliseconds().max(0) as f64 / span_ms * 100.0).min(100.0);
                        @let width = (o.duration().map_or(0, |d| d.num_milliseconds().max(0)) as f64 / span_ms * 100.0).clamp(0.3, 100.0 - offset.min(99.7));
                        tr.obs-row.error[o.level == Level::Error].warning[o.level == Level::Warning] data-obs=(o.id) tabindex="0" {
                            td.obs-name style={ "padding-left:" (n.depth as f64 * 1.2 + 0.4) "em" } {
                                span.kind { (o.kind.as_str()) } " " (o.name)
                            }
                            td.num.rollup-tokens { (n.tokens) }
                            td.num.rollup-cost { (format::cost(n.cost)) }
                            td.wf { div class={ "bar kind-" (o.kind.as_str()) } style={ "margin-left:" (format!("{offset:.2}")) "%;width:" (format!("{width:.2}")) "%" } title=(format::duration_ms(o.duration().map(|d| d.num_milliseconds()))) {} }
                        }
                    }
                }
            }
            div #panels {
                @for (i, n) in nodes.iter().enumerate() {
                    (observation(n, i == 0))
                }
                @if nodes.is_empty() {
                    section.obs-detail {
                        h2 { "Trace input and output" }
                        @if let Some(v) = &trace.input { h3 { "Input" } (value_view(v)) }
                        @if let Some(v) = &trace.output { h3 { "Output" } (value_view(v)) }
                    }
                }
            }
        }
    }
}

fn observation(n: &Node<'_>, shown: bool) -> Markup {
    let o = n.obs;
    html! {
        section.obs-detail #{ "obs-" (o.id) } hidden[!shown] {
            h2 { span.kind { (o.kind.as_str()) } " " (o.name) }
            @if o.level == Level::Error || o.level == Level::Warning {
                div class={ "error-box level-" (o.level.as_str()) } {
                    strong { (o.level.as_str()) }
                    @if let Some(t) = o.error_type() { " " code { (t) } }
                    @if let Some(m) = &o.status_message { ": " (m) }
                }
            }
            dl.facts {
                dt { "Start (UTC)" } dd { (format::time(o.start_time)) }
                dt { "Duration" } dd { (format::duration_ms(o.duration().map(|d| d.num_milliseconds()))) }
                @if let Some(m) = &o.model { dt { "Model" } dd.model { (m) @if let Some(p) = &o.model_provider { " (" (p) ")" } } }
                @if let Some(u) = &o.usage {
                    dt { "Usage" } dd.usage {
                        @if let Some(i) = u.input { (i) " in" } " · "
                        @if let Some(x) = u.output { (x) " out" } " · "
                        @if let Some(t) = u.total() { (t) " total" }
                    }
                    dt { "Cost" } dd { (format::cost(u.total_cost())) @if let Some(c) = &u.currency { " " (c) } }
                }
                dt { "Subtree" } dd { (n.tokens) " tokens · " (format::cost(n.cost)) }
            }
            @if !o.model_parameters.is_empty() {
                h3 { "Parameters" } pre.json { (format::pretty(&Value::Object(o.model_parameters.clone()))) }
            }
            @if let Some(v) = &o.input { h3 { "Input" } (value_view(v)) }
            @if let Some(v) = &o.output { h3 { "Output" } (value_view(v)) }
            @if !o.metadata.is_empty() {
                details { summary { "Metadata" } pre.json { (format::pretty(&Value::Object(o.metadata.clone()))) } }
            }
        }
    }
}

/// A value as a conversation when it holds chat messages, always with its JSON.
fn value_view(v: &Value) -> Markup {
    match chat_messages(v) {
        Some(messages) => html! {
            div.chat { @for m in messages { (message(m)) } }
            details { summary { "JSON" } pre.json { (format::pretty(v)) } }
        },
        None => html! { pre.json { (format::pretty(v)) } },
    }
}

/// The chat messages in `v`: a list of `{role, ...}`, `{messages: [...]}`, one message, or an
/// OpenAI-style `{choices: [{message}]}`.
fn chat_messages(v: &Value) -> Option<Vec<&serde_json::Map<String, Value>>> {
    let is_message = |m: &Value| {
        m.as_object()
            .filter(|m| m.get("role").is_some_and(Value::is_string))
            .is_some()
    };
    match v {
        Value::Array(items) => message_list(items),
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get("messages") {
                return message_list(items);
            }
            if let Some(Value::Array(choices)) = map.get("choices") {
                let messages: Vec<_> = choices
                    .iter()
                    .filter_map(|c| c.get("message"))
                    .filter(|m| is_message(m))
                    .filter_map(Value::as_object)
                    .collect();
                return (!messages.is_empty()).then_some(messages);
            }
            is_message(v).then(|| vec![map])
        }
        _ => None,
    }
}

fn message_list(items: &[Value]) -> Option<Vec<&serde_json::Map<String, Value>>> {
    let all = !items.is_empty()
        && items
            .iter()
            .all(|m| m.get("role").is_some_and(Value::is_string));
    all.then(|| items.iter().filter_map(Value::as_object).collect())
}

fn message(m: &serde_json::Map<String, Value>) -> Markup {
    let role = m.get("role").and_then(Value::as_str).unwrap_or("other");
    let class = match role {
        "system" | "user" | "assistant" | "tool" | "developer" | "function" => role,
        _ => "other",
    };
    let content = match m.get("content") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(parts)) => Some(
            parts
                .iter()
                .map(|p| match p.get("text").and_then(Value::as_str) {
                    Some(t) => t.to_owned(),
                    None => format::pretty(p),
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Some(other) => Some(format::pretty(other)),
    };
    let calls = m
        .get("tool_calls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    html! {
        div class={ "msg role-" (class) } {
            span.role { (role) @if let Some(id) = m.get("tool_call_id").and_then(Value::as_str) { " · " code { (id) } } }
            @if let Some(c) = content { div.content { (c) } }
            @for call in &calls {
                @let f = call.get("function").unwrap_or(call);
                @let name = f.get("name").and_then(Value::as_str).unwrap_or("?");
                @let args = f.get("arguments").map(|a| match a.as_str() {
                    Some(s) => serde_json::from_str::<Value>(s).map(|v| format::pretty(&v)).unwrap_or_else(|_| s.to_owned()),
                    None => format::pretty(a),
                }).unwrap_or_default();
                div.tool-call { span.tool-name { "→ " (name) } pre { (args) } }
            }
        }
    }
}
