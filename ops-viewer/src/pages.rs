//! The page frame, the trace list and the sessions views.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use ops_store::{TraceFilter, TraceStatus, TraceStore, TraceSummary};

use crate::error::ViewerError;
use crate::format;

/// Wraps `body` in the page frame.
pub(crate) fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ops" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                nav {
                    a.brand href="/" { "ops" }
                    a href="/" { "Traces" }
                    a href="/sessions" { "Sessions" }
                }
                main { (body) }
            }
        }
    }
}

/// Reads the list's query: every key optional; bad values are named in the error.
pub(crate) fn filter_from(query: &HashMap<String, String>) -> Result<TraceFilter, ViewerError> {
    let text = |key: &str| query.get(key).filter(|v| !v.trim().is_empty()).cloned();
    let status = match text("status") {
        None => None,
        Some(s) => Some(TraceStatus::parse(&s).ok_or_else(|| {
            ViewerError::bad_request(format!("status {s:?} is not one of ok, warning, error"))
        })?),
    };
    let number = |key: &str| -> Result<u32, ViewerError> {
        match text(key) {
            None => Ok(0),
            Some(v) => v.trim().parse().map_err(|_| {
                ViewerError::bad_request(format!("{key} {v:?} is not a whole number"))
            }),
        }
    };
    Ok(TraceFilter {
        kind: text("kind"),
        user: text("user"),
        session: text("session"),
        tag: text("tag"),
        status,
        search: text("q"),
        from: text("from").map(|v| parse_time("from", &v)).transpose()?,
        to: text("to").map(|v| parse_time("to", &v)).transpose()?,
        page: number("page")?,
        per_page: number("per_page")?,
    })
}

/// RFC 3339, or the `YYYY-MM-DDTHH:MM[:SS]` a date-time input sends (read as UTC).
fn parse_time(key: &str, value: &str) -> Result<DateTime<Utc>, ViewerError> {
    let value = value.trim();
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S").map(|t| t.and_utc()))
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M").map(|t| t.and_utc()))
        .map_err(|_| {
            ViewerError::bad_request(format!(
                "{key} {value:?} is not a time; write e.g. 2026-01-31T09:30 (UTC) or RFC 3339"
            ))
        })
}

pub(crate) async fn list(
    State(store): State<TraceStore>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, ViewerError> {
    let filter = filter_from(&query)?;
    let page = store.list(&filter).await?;
    let last = store.last_seq().await?;
    let value = |key: &str| query.get(key).cloned().unwrap_or_default();
    let unfiltered = filter
        == TraceFilter {
            page: filter.page,
            per_page: filter.per_page,
            ..Default::default()
        };
    let live = unfiltered && page.page == 1;
    let pages = page.total.div_ceil(u64::from(page.per_page)).max(1);
    let link = |p: u64| {
        let mut pairs: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pairs.sort();
        pairs.push(("page".into(), p.to_string()));
        let encoded: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("/?{}", encoded.join("&"))
    };
    let body = html! {
        h1 { "Traces" }
        form.filters method="get" action="/" {
            input name="q" placeholder="search inputs and outputs" value=(value("q"));
            input name="kind" placeholder="kind" value=(value("kind"));
            input name="user" placeholder="user" value=(value("user"));
            input name="session" placeholder="session" value=(value("session"));
            input name="tag" placeholder="tag" value=(value("tag"));
            select name="status" {
                @for (v, label) in [("", "any status"), ("ok", "ok"), ("warning", "warning"), ("error", "error")] {
                    option value=(v) selected[value("status") == v] { (label) }
                }
            }
            label { "from " input type="datetime-local" name="from" value=(value("from")); }
            label { "to " input type="datetime-local" name="to" value=(value("to")); }
            button type="submit" { "Filter" }
            a href="/" { "clear" }
        }
        p.count {
            span #total { (page.total) } " traces"
            @if live { " · " span #live-note { "live" } }
            " · " button #compare-selected type="button" disabled { "Compare selected" }
        }
        table #traces data-after=(last) data-live=(if live { "1" } else { "0" }) {
            thead { tr {
                th {} th { "Name" } th { "Kind" } th { "User" } th { "Session" } th { "Start (UTC)" }
                th { "Duration" } th { "Tokens" } th { "Cost" } th { "Status" }
            } }
            tbody {
                @for t in &page.traces { (row(t)) }
            }
        }
        @if page.traces.is_empty() {
            p.empty { "No traces match. Run an app with OPS_TRACE_PROVIDER=console,local, or import a file: ops serve --file traces.jsonl" }
        }
        nav.pager {
            @if u64::from(page.page) > 1 { a rel="prev" href=(link(u64::from(page.page) - 1)) { "← newer" } }
            span { "page " (page.page) " of " (pages) }
            @if u64::from(page.page) < pages { a rel="next" href=(link(u64::from(page.page) + 1)) { "older →" } }
        }
    };
    Ok(layout("Traces", body))
}

/// One row of the trace list (the script builds the same row for live updates).
fn row(t: &TraceSummary) -> Markup {
    let href = format!("/traces/{}", encode(&t.id));
    html! {
        tr.trace-row data-href=(href) data-id=(t.id) {
            td { input.pick type="checkbox" value=(t.id) aria-label="select for compare"; }
            td { a href=(href) { (t.name) } }
            td { (t.kind) }
            td { @if let Some(u) = &t.user_id { a href={ "/?user=" (encode(u)) } { (u) } } }
            td { @if let Some(s) = &t.session_id { a href={ "/sessions/" (encode(s)) } { (s) } } }
            td { (format::time(t.start_time)) }
            td { (format::duration_ms(t.duration_ms)) }
            td.num { (t.tokens) }
            td.num { (format::cost(t.cost)) }
            td { span class={ "status status-" (t.status.as_str()) } { (t.status.as_str()) } }
        }
    }
}

pub(crate) async fn sessions(State(store): State<TraceStore>) -> Result<Markup, ViewerError> {
    let sessions = store.sessions().await?;
    let body = html! {
        h1 { "Sessions" }
        table #sessions {
            thead { tr { th { "Session" } th { "Traces" } th { "First (UTC)" } th { "Last (UTC)" } th { "Tokens" } th { "Cost" } } }
            tbody {
                @for s in &sessions {
                    tr {
                        td { a href={ "/sessions/" (encode(&s.session_id)) } { (s.session_id) } }
                        td.num { (s.traces) }
                        td { (format::time(s.first)) }
                        td { (format::time(s.last)) }
                        td.num { (s.tokens) }
                        td.num { (format::cost(s.cost)) }
                    }
                }
            }
        }
        @if sessions.is_empty() { p.empty { "No sessions yet: traces with a session id show here." } }
    };
    Ok(layout("Sessions", body))
}

pub(crate) async fn session(
    State(store): State<TraceStore>,
    Path(id): Path<String>,
) -> Result<Markup, ViewerError> {
    let traces = store.session(&id).await?;
    if traces.is_empty() {
        return Err(ViewerError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("no traces in session {id:?}"),
        ));
    }
    let body = html! {
        h1 { "Session " code { (id) } }
        ol.session {
            @for t in &traces {
                @let root = t.roots().next();
                @let input = t.input.as_ref().or(root.and_then(|r| r.input.as_ref()));
                @let output = t.output.as_ref().or(root.and_then(|r| r.output.as_ref()));
                li.turn {
                    p.turn-head {
                        a href={ "/traces/" (encode(t.id.as_str())) } { (t.name) }
                        " · " (format::time(t.start_time))
                        " · " (t.total_usage()) " tokens"
                    }
                    @if let Some(i) = input { div.msg.role-user { span.role { "input" } pre { (format::pretty(i)) } } }
                    @if let Some(o) = output { div.msg.role-assistant { span.role { "output" } pre { (format::pretty(o)) } } }
                }
            }
        }
    };
    Ok(layout("Session", body))
}

/// Percent-encodes `s` for a path segment or a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
