//! The JSON endpoints and live updates (server-sent events).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use ops_core::model::Trace;
use ops_store::{TracePage, TraceStore};

use crate::error::ViewerError;
use crate::pages::filter_from;

/// How often live updates look for new traces.
const POLL: Duration = Duration::from_millis(500);

pub(crate) async fn list(
    State(store): State<TraceStore>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<TracePage>, ViewerError> {
    Ok(Json(store.list(&filter_from(&query)?).await?))
}

pub(crate) async fn trace(
    State(store): State<TraceStore>,
    Path(id): Path<String>,
) -> Result<Json<Trace>, ViewerError> {
    Ok(Json(
        store
            .get(&id)
            .await?
            .ok_or_else(|| ViewerError::no_trace(&id))?,
    ))
}

pub(crate) async fn stats(
    State(store): State<TraceStore>,
) -> Result<Json<serde_json::Value>, ViewerError> {
    let retention = store.retention();
    Ok(Json(serde_json::json!({
        "traces": store.list(&ops_store::TraceFilter { per_page: 1, ..Default::default() }).await?.total,
        "dropped": store.drops().await?,
        "retention": {
            "max_traces": retention.max_traces,
            "max_bytes": retention.max_bytes,
            "max_age_secs": retention.max_age.map(|d| d.as_secs()),
        },
    })))
}

/// `trace` events, one per trace stored after `after` (default: now), each the list row's
/// JSON.
pub(crate) async fn events(
    State(store): State<TraceStore>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ViewerError> {
    let after = match query.get("after") {
        Some(v) => v.trim().parse::<i64>().map_err(|_| {
            ViewerError::bad_request(format!("after {v:?} is not a sequence number"))
        })?,
        None => store.last_seq().await?,
    };
    let state = (store, after, VecDeque::new());
    let stream =
        futures_util::stream::unfold(state, |(store, mut after, mut pending)| async move {
            loop {
                if let Some(summary) = pending.pop_front() {
                    let event = Event::default()
                        .event("trace")
                        .json_data(&summary)
                        .unwrap_or_else(|_| Event::default().comment("unserializable row"));
                    return Some((Ok(event), (store, after, pending)));
                }
                tokio::time::sleep(POLL).await;
                // A failed poll is retried at the next tick; the page keeps what it has.
                if let Ok(rows) = store.since(after).await {
                    if let Some(last) = rows.last() {
                        after = last.seq;
                    }
                    pending.extend(rows);
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
