//! What `ops worker stats` shows: per app stream, what waits (lag), what is being delivered
//! (pending), and each worker's figures, per provider too.

use std::collections::BTreeMap;
use std::fmt;

use redis::RedisError;
use redis::aio::ConnectionLike;

use crate::keys::Keys;

/// One app stream's backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamFigures {
    /// The stream.
    pub stream: String,
    /// Entries read by a worker and not acknowledged yet.
    pub pending: u64,
    /// Entries no worker has read yet (workers delete what they acknowledge, so this is the
    /// stream's length less `pending`).
    pub lag: u64,
}

/// The figures of the whole tier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierStats {
    /// Per app stream.
    pub streams: Vec<StreamFigures>,
    /// Entries in the dead-letter stream.
    pub dead_letters: u64,
    /// Each worker that published figures in the last minute, by consumer name: its
    /// counters (`read`, `acked`, `delivered`, `retried`, `dead_lettered`, ...) and its
    /// providers' (`provider:{name}:{exported,failed,retried,dropped,pending}`).
    pub workers: BTreeMap<String, BTreeMap<String, u64>>,
}

impl TierStats {
    /// A figure summed over every worker.
    pub fn total(&self, figure: &str) -> u64 {
        self.workers.values().filter_map(|w| w.get(figure)).sum()
    }
}

/// Reads the tier's figures under `keys` for consumer group `group`.
pub async fn collect(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    group: &str,
) -> Result<TierStats, RedisError> {
    let mut names: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.streams())
        .query_async(conn)
        .await?;
    names.sort();
    let mut stats = TierStats::default();
    for stream in names {
        let len: u64 = redis::cmd("XLEN").arg(&stream).query_async(conn).await?;
        // XPENDING's summary: [count, first, last, consumers]; NOGROUP before any worker ran.
        let pending: Result<(u64, Option<String>, Option<String>, redis::Value), RedisError> =
            redis::cmd("XPENDING")
                .arg(&stream)
                .arg(group)
                .query_async(conn)
                .await;
        let pending = match pending {
            Ok((count, ..)) => count,
            Err(e) if e.code() == Some("NOGROUP") => 0,
            Err(e) => return Err(e),
        };
        stats.streams.push(StreamFigures {
            stream,
            pending,
            lag: len.saturating_sub(pending),
        });
    }
    stats.dead_letters = redis::cmd("XLEN")
        .arg(keys.dead())
        .query_async(conn)
        .await?;
    let workers: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.workers())
        .query_async(conn)
        .await?;
    for worker in workers {
        let figures: BTreeMap<String, u64> = redis::cmd("HGETALL")
            .arg(keys.worker(&worker))
            .query_async(conn)
            .await?;
        if figures.is_empty() {
            // Expired: it stopped publishing a minute ago.
            redis::cmd("SREM")
                .arg(keys.workers())
                .arg(&worker)
                .query_async::<()>(conn)
                .await?;
        } else {
            stats.workers.insert(worker, figures);
        }
    }
    Ok(stats)
}

impl fmt::Display for TierStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<48} {:>10} {:>10}", "stream", "pending", "lag")?;
        for s in &self.streams {
            writeln!(f, "{:<48} {:>10} {:>10}", s.stream, s.pending, s.lag)?;
        }
        writeln!(f, "dead-lettered entries waiting: {}", self.dead_letters)?;
        for figure in [
            "read",
            "claimed",
            "acked",
            "delivered",
            "failed",
            "retried",
            "dead_lettered",
        ] {
            writeln!(f, "{figure}: {}", self.total(figure))?;
        }
        let mut providers: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for figures in self.workers.values() {
            for (name, value) in figures {
                if let Some((provider, figure)) = name
                    .strip_prefix("provider:")
                    .and_then(|rest| rest.rsplit_once(':'))
                {
                    *providers
                        .entry(provider)
                        .or_default()
                        .entry(figure)
                        .or_default() += value;
                }
            }
        }
        for (provider, figures) in providers {
            let line: Vec<String> = figures.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(f, "provider {provider}: {}", line.join(", "))?;
        }
        write!(f, "workers publishing: {}", self.workers.len())
    }
}
