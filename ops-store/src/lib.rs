//! The local trace store: traces kept queryable in a SQLite file, for `ops serve` to show.
//!
//! - [`TraceStore`] writes whole traces to a SQLite file (by default `ops-traces.db` in the
//!   working directory, or `$OPS_TRACE_DB`), lists them with filters and paging, and keeps
//!   the file within its [`Retention`] caps (count, bytes, age), counting every trace it
//!   drops with its reason.
//! - The `local` provider (registered through `inventory`, like every provider) is the store
//!   as a delivery target: `OPS_TRACE_PROVIDER=console,local` prints the tree and keeps the
//!   trace. Call [`link`] once from a binary so the linker keeps it.
//! - [`TraceStore::import_jsonl`] loads the JSON lines the `file` provider writes.
#![cfg_attr(docsrs, deny(rustdoc::broken_intra_doc_links))]
#![doc = include_str!("../README.md")]

mod import;
mod provider;
mod store;
mod summary;

pub use import::ImportReport;
pub use provider::{DB_ENV, LocalStoreProvider};
pub use store::{
    DEFAULT_PATH, DropCounts, Retention, SessionSummary, StoreError, TraceFilter, TracePage,
    TraceStore, default_path,
};
pub use summary::{TraceStatus, TraceSummary};

/// Keeps the `local` provider's registration in a binary that otherwise names nothing of
/// this crate (the linker drops unreferenced crates, and their `inventory` entries with
/// them). Call it once before `ops_core::init()`.
pub fn link() {
    std::hint::black_box(LocalStoreProvider::from_config as fn(_) -> _);
}
