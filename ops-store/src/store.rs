//! The SQLite file, its schema, writes with retention, and the queries the viewer runs.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ops_core::model::Trace;
use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::summary::{TraceStatus, TraceSummary, search_text};

/// The store's file when neither a path nor `$OPS_TRACE_DB` says otherwise.
pub const DEFAULT_PATH: &str = "ops-traces.db";

/// The store's file: `$OPS_TRACE_DB` when set and not blank, else [`DEFAULT_PATH`].
pub fn default_path() -> PathBuf {
    match std::env::var(crate::DB_ENV) {
        Ok(path) if !path.trim().is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// Why the store failed, saying what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error("cannot open the trace store {path}: {source}; check the path and its permissions")]
    Open {
        /// The file.
        path: String,
        /// What SQLite said.
        source: sqlx::Error,
    },
    /// A query failed.
    #[error("trace store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored trace could not be read back.
    #[error("stored trace {id} is not valid JSON: {source}")]
    Corrupt {
        /// The trace id.
        id: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A file to import could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The caps that keep the file small: past any of them, the oldest traces are deleted and
/// counted in [`DropCounts`]. `None` means no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The most traces kept.
    pub max_traces: Option<u64>,
    /// The most bytes of trace JSON kept.
    pub max_bytes: Option<u64>,
    /// How long a trace is kept after it was stored.
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    /// 10 000 traces, 256 MiB, 30 days.
    fn default() -> Self {
        Retention {
            max_traces: Some(10_000),
            max_bytes: Some(256 * 1024 * 1024),
            max_age: Some(Duration::from_secs(30 * 24 * 3600)),
        }
    }
}

/// Traces the store deleted, by reason, since the file was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DropCounts {
    /// Deleted to stay within `max_traces`.
    pub count: u64,
    /// Deleted to stay within `max_bytes`.
    pub bytes: u64,
    /// Deleted because they were older than `max_age`.
    pub age: u64,
}

/// What to list: every field narrows the list; `page` starts at 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceFilter {
    /// Only this kind (`message`, `workflow`, ...).
    pub kind: Option<String>,
    /// Only this user.
    pub user: Option<String>,
    /// Only this session.
    pub session: Option<String>,
    /// Only traces with this tag.
    pub tag: Option<String>,
    /// Only this status.
    pub status: Option<TraceStatus>,
    /// Only traces whose inputs or outputs contain this text (case-insensitive).
    pub search: Option<String>,
    /// Only traces started at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only traces started before this time.
    pub to: Option<DateTime<Utc>>,
    /// The page, from 1.
    pub page: u32,
    /// Rows a page (1 to 500; 0 means 50).
    pub per_page: u32,
}

/// One page of the trace list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TracePage {
    /// The rows.
    pub traces: Vec<TraceSummary>,
    /// How many traces match the filter in all.
    pub total: u64,
    /// This page, from 1.
    pub page: u32,
    /// Rows a page.
    pub per_page: u32,
}

/// One conversation in the sessions view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    /// The session id.
    pub session_id: String,
    /// How many traces it has.
    pub traces: i64,
    /// Its first trace's start.
    pub first: DateTime<Utc>,
    /// Its last trace's start.
    pub last: DateTime<Utc>,
    /// Tokens over its traces.
    pub tokens: i64,
    /// Cost over its traces.
    pub cost: Option<f64>,
}

/// The trace store: a SQLite file (WAL, so a viewer reads while an app writes).
#[derive(Debug, Clone)]
pub struct TraceStore {
    pool: SqlitePool,
    retention: Retention,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS traces (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        user_id TEXT,
        session_id TEXT,
        start_ms INTEGER NOT NULL,
        duration_ms INTEGER,
        tokens INTEGER NOT NULL,
        cost REAL,
        status TEXT NOT NULL,
        tags TEXT NOT NULL,
        observations INTEGER NOT NULL,
        search TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        stored_ms INTEGER NOT NULL,
        body TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS traces_start ON traces (start_ms)",
    "CREATE INDEX IF NOT EXISTS traces_session ON traces (session_id, start_ms)",
    "CREATE INDEX IF NOT EXISTS traces_stored ON traces (stored_ms)",
    "CREATE TABLE IF NOT EXISTS drops (reason TEXT PRIMARY KEY, count INTEGER NOT NULL)",
];

const SUMMARY_COLUMNS: &str = "seq, id, name, kind, user_id, session_id, start_ms, duration_ms, \
     tokens, cost, status, tags, observations";

impl TraceStore {
    /// Opens (creating if needed) the store at `path` with `retention`.
    pub async fn open(path: impl AsRef<Path>, retention: Retention) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StoreError::Open {
                path: shown.clone(),
                source,
            })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: shown.clone(),
                source,
            })?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(|source| StoreError::Open {
                    path: shown.clone(),
                    source,
                })?;
        }
        Ok(TraceStore { pool, retention })
    }

    /// The caps this store keeps.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Stores `traces` (a trace already stored under the same id is replaced), then deletes
    /// what the caps no longer allow, counting it.
    pub async fn insert<'a>(
        &self,
        traces: impl IntoIterator<Item = &'a Trace>,
    ) -> Result<(), StoreError> {
        let now = Utc::now().timestamp_millis();
        let mut tx = self.pool.begin().await?;
        for trace in traces {
            let body = serde_json::to_string(trace).map_err(|source| StoreError::Corrupt {
                id: trace.id.to_string(),
                source,
            })?;
            let summary = TraceSummary::of(trace);
            sqlx::query(
                "INSERT INTO traces (id, name, kind, user_id, session_id, start_ms, duration_ms,
                    tokens, cost, status, tags, observations, search, bytes, stored_ms, body)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                    user_id = excluded.user_id, session_id = excluded.session_id,
                    start_ms = excluded.start_ms, duration_ms = excluded.duration_ms,
                    tokens = excluded.tokens, cost = excluded.cost, status = excluded.status,
                    tags = excluded.tags, observations = excluded.observations,
                    search = excluded.search, bytes = excluded.bytes,
                    stored_ms = excluded.stored_ms, body = excluded.body",
            )
            .bind(&summary.id)
            .bind(&summary.name)
            .bind(&summary.kind)
            .bind(&summary.user_id)
            .bind(&summary.session_id)
            .bind(summary.start_time.timestamp_millis())
            .bind(summary.duration_ms)
            .bind(summary.tokens)
            .bind(summary.cost)
            .bind(summary.status.as_str())
            .bind(serde_json::Value::from(summary.tags.clone()).to_string())
            .bind(summary.observations)
            .bind(search_text(trace))
            .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .bind(now)
            .bind(&body)
            .execute(&mut *tx)
            .await?;
        }
        self.enforce(&mut tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn enforce(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(age) = self.retention.max_age {
            let cutoff = now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
            let gone = sqlx::query("DELETE FROM traces WHERE stored_ms < ?")
                .bind(cutoff)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            count_drops(tx, "age", gone).await?;
        }
        if let Some(max) = self.retention.max_traces {
            let gone = sqlx::query(
                "DELETE FROM traces WHERE seq IN (SELECT seq FROM traces ORDER BY seq DESC
                 LIMIT -1 OFFSET ?)",
            )
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await?
            .rows_affected();
            count_drops(tx, "count", gone).await?;
        }
        if let Some(max) = self.retention.max_bytes {
            // Keep the newest traces whose bytes add up to at most `max`.
            let gone = sqlx::query(
                "DELETE FROM traces WHERE seq IN (SELECT seq FROM (SELECT seq,
                 SUM(bytes) OVER (ORDER BY seq DESC) AS kept FROM traces) WHERE kept > ?)",
            )
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await?
            .rows_affected();
            count_drops(tx, "bytes", gone).await?;
        }
        Ok(())
    }

    /// Traces deleted by the caps, by reason.
    pub async fn drops(&self) -> Result<DropCounts, StoreError> {
        let mut counts = DropCounts::default();
        for row in sqlx::query("SELECT reason, count FROM drops")
            .fetch_all(&self.pool)
            .await?
        {
            let n = u64::try_from(row.get::<i64, _>(1)).unwrap_or(0);
            match row.get::<String, _>(0).as_str() {
                "count" => counts.count = n,
                "bytes" => counts.bytes = n,
                "age" => counts.age = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// One page of the traces `filter` selects, newest first.
    pub async fn list(&self, filter: &TraceFilter) -> Result<TracePage, StoreError> {
        let per_page = match filter.per_page {
            0 => 50,
            n => n.min(500),
        };
        let page = filter.page.max(1);
        let mut clauses = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut eq = |column: &str, value: &Option<String>| {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                clauses.push(format!("{column} = ?"));
                binds.push(Bind::Text(v.clone()));
            }
        };
        eq("kind", &filter.kind);
        eq("user_id", &filter.user);
        eq("session_id", &filter.session);
        eq("status", &filter.status.map(|s| s.as_str().to_owned()));
        if let Some(tag) = filter.tag.as_ref().filter(|t| !t.is_empty()) {
            clauses.push("EXISTS (SELECT 1 FROM json_each(traces.tags) WHERE value = ?)".into());
            binds.push(Bind::Text(tag.clone()));
        }
        if let Some(q) = filter.search.as_ref().filter(|q| !q.is_empty()) {
            clauses.push("instr(search, ?) > 0".into());
            binds.push(Bind::Text(q.to_lowercase()));
        }
        if let Some(from) = filter.from {
            clauses.push("start_ms >= ?".into());
            binds.push(Bind::Int(from.timestamp_millis()));
        }
        if let Some(to) = filter.to {
            clauses.push("start_ms < ?".into());
            binds.push(Bind::Int(to.timestamp_millis()));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) FROM traces{filter_sql}");
        let mut count = sqlx::query(&count_sql);
        for b in &binds {
            count = b.bind(count);
        }
        let total = count.fetch_one(&self.pool).await?.get::<i64, _>(0);
        let list_sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM traces{filter_sql} ORDER BY start_ms DESC, seq DESC \
             LIMIT ? OFFSET ?"
        );
        let mut list = sqlx::query(&list_sql);
        for b in &binds {
            list = b.bind(list);
        }
        let rows = list
            .bind(i64::from(per_page))
            .bind(i64::from(page - 1) * i64::from(per_page))
            .fetch_all(&self.pool)
            .await?;
        Ok(TracePage {
            traces: rows.iter().map(summary_of).collect(),
            total: u64::try_from(total).unwrap_or(0),
            page,
            per_page,
        })
    }

    /// The trace stored under `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Trace>, StoreError> {
        let row = sqlx::query("SELECT body FROM traces WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            serde_json::from_str(&r.get::<String, _>(0)).map_err(|source| StoreError::Corrupt {
                id: id.to_owned(),
                source,
            })
        })
        .transpose()
    }

    /// The newest 200 sessions, most recently active first.
    pub async fn sessions(&self) -> Result<Vec<SessionSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT session_id, COUNT(*), MIN(start_ms), MAX(start_ms), SUM(tokens), SUM(cost)
             FROM traces WHERE session_id IS NOT NULL GROUP BY session_id
             ORDER BY MAX(start_ms) DESC LIMIT 200",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| SessionSummary {
                session_id: r.get(0),
                traces: r.get(1),
                first: millis(r.get(2)),
                last: millis(r.get(3)),
                tokens: r.get(4),
                cost: r.get(5),
            })
            .collect())
    }

    /// The traces of session `id` in the order they started (at most 500).
    pub async fn session(&self, id: &str) -> Result<Vec<Trace>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, body FROM traces WHERE session_id = ? ORDER BY start_ms, seq LIMIT 500",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.get::<String, _>(1)).map_err(|source| StoreError::Corrupt {
                    id: r.get(0),
                    source,
                })
            })
            .collect()
    }

    /// Traces stored after `seq` (at most 100, oldest first): what live updates send.
    pub async fn since(&self, seq: i64) -> Result<Vec<TraceSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM traces WHERE seq > ? ORDER BY seq LIMIT 100"
        ))
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(summary_of).collect())
    }

    /// The newest sequence number (0 when empty).
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM traces")
            .fetch_one(&self.pool)
            .await?
            .get(0))
    }

    /// Closes the file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

impl Bind {
    fn bind<'q>(&'q self, query: Query<'q>) -> Query<'q> {
        match self {
            Bind::Text(s) => query.bind(s.as_str()),
            Bind::Int(n) => query.bind(*n),
        }
    }
}

async fn count_drops(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    reason: &str,
    n: u64,
) -> Result<(), StoreError> {
    if n > 0 {
        sqlx::query(
            "INSERT INTO drops (reason, count) VALUES (?, ?)
             ON CONFLICT(reason) DO UPDATE SET count = count + excluded.count",
        )
        .bind(reason)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn summary_of(row: &sqlx::sqlite::SqliteRow) -> TraceSummary {
    let tags: String = row.get(11);
    let status: String = row.get(10);
    TraceSummary {
        seq: row.get(0),
        id: row.get(1),
        name: row.get(2),
        kind: row.get(3),
        user_id: row.get(4),
        session_id: row.get(5),
        start_time: millis(row.get(6)),
        duration_ms: row.get(7),
        tokens: row.get(8),
        cost: row.get(9),
        status: TraceStatus::parse(&status).unwrap_or(TraceStatus::Ok),
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        observations: row.get(12),
    }
}
