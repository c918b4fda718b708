//! The allowed range of every [`QueueConfig`] setting, checked when a queue is built, and the
//! queue's environment variables.
//!
//! Durations are bounded so that the worker can add any of them to an `Instant` without
//! overflow; counts are bounded so that nothing is preallocated past reason.

use std::time::Duration;

use super::{BATCH_SIZE_ENV, INTERVAL_ENV, QueueConfig, QueueError};
use crate::env;
use crate::spool::FsyncPolicy;

const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// `interval` and `TRACE_QUEUE_MANAGER_INTERVAL`: 1 ms to 1 h.
pub(crate) const INTERVAL: (Duration, Duration) = (MS, HOUR);
/// `batch_size` and `TRACE_QUEUE_MANAGER_BATCH_SIZE`: 1 to 10,000,000.
pub(crate) const BATCH_SIZE: (u64, u64) = (1, 10_000_000);
/// `max_items` (a 32-byte slot each, preallocated): 1 to 10,000,000.
const MAX_ITEMS: (usize, usize) = (1, 10_000_000);
/// `max_bytes`: 1 byte to 1 TiB.
const MAX_BYTES: (usize, usize) = (1, 1 << 40);
/// `provider_backlog`: 1 to 10,000,000.
const PROVIDER_BACKLOG: (usize, usize) = (1, 10_000_000);
/// `export_timeout`: 1 ms to 1 h.
const EXPORT_TIMEOUT: (Duration, Duration) = (MS, HOUR);
/// `max_retries`: 0 to 1,000,000.
const MAX_RETRIES: (u32, u32) = (0, 1_000_000);
/// `initial_backoff`, `max_backoff`, `shutdown_timeout`, `breaker_cooldown`: 0 to 1 h.
const UP_TO_AN_HOUR: (Duration, Duration) = (Duration::ZERO, HOUR);
/// `max_retry_time`: 0 to 24 h.
const MAX_RETRY_TIME: (Duration, Duration) = (Duration::ZERO, DAY);
/// `breaker_threshold`: 1 to 1,000,000.
const BREAKER_THRESHOLD: (u32, u32) = (1, 1_000_000);
/// `lane_idle_timeout`: 1 ms to 24 h.
const LANE_IDLE_TIMEOUT: (Duration, Duration) = (MS, DAY);
/// `field_limits.max_bytes`: 1 byte to 1 GiB.
const FIELD_MAX_BYTES: (usize, usize) = (1, 1 << 30);
/// `field_limits.max_depth`: 1 to 100 (a spooled record must stay readable by `serde_json`,
/// which reads 128 levels).
const FIELD_MAX_DEPTH: (usize, usize) = (1, crate::limits::MAX_DEPTH_LIMIT);
/// `field_limits.max_name_bytes`: 64 bytes (room for the cut marker) to 1 MiB.
const FIELD_NAME_BYTES: (usize, usize) = (64, 1 << 20);
/// `field_limits.max_message_bytes`: 64 bytes to 64 MiB.
const FIELD_MESSAGE_BYTES: (usize, usize) = (64, 64 << 20);
/// `field_limits.max_tags`: 0 to 1,000,000.
const FIELD_MAX_TAGS: (usize, usize) = (0, 1_000_000);
/// `field_limits.preview_chars`: 0 to 1,000,000.
const FIELD_PREVIEW_CHARS: (usize, usize) = (0, 1_000_000);
/// `max_batch_bytes`: 1 byte to 1 GiB.
const MAX_BATCH_BYTES: (usize, usize) = (1, 1 << 30);
/// `spool.max_bytes` and `OPS_TRACE_SPOOL_MAX_BYTES`: 1 byte to 1 PiB.
pub(crate) const SPOOL_MAX_BYTES: (u64, u64) = (1, 1 << 50);
/// `spool.segment_bytes`: 1 byte to 1 GiB.
const SPOOL_SEGMENT_BYTES: (u64, u64) = (1, 1 << 30);
/// An interval of `spool.fsync` and `OPS_TRACE_SPOOL_FSYNC`: 1 ms to 1 h.
pub(crate) const SPOOL_FSYNC: (Duration, Duration) = (MS, HOUR);

fn within<T: PartialOrd>(value: T, (min, max): (T, T)) -> bool {
    value >= min && value <= max
}

fn setting(setting: &'static str, expected: &'static str) -> QueueError {
    QueueError::InvalidSetting { setting, expected }
}

/// Checks every setting of `c` against its range (see the [`QueueConfig`] field docs).
pub(crate) fn validate(c: &QueueConfig) -> Result<(), QueueError> {
    let f = &c.field_limits;
    let checks: [(bool, &'static str, &'static str); 19] = [
        (
            within(c.interval, INTERVAL),
            "interval",
            "must be from 1 ms to 1 h",
        ),
        (
            within(c.batch_size as u64, BATCH_SIZE),
            "batch_size",
            "must be from 1 to 10000000",
        ),
        (
            within(c.max_items, MAX_ITEMS),
            "max_items",
            "must be from 1 to 10000000",
        ),
        (
            within(c.max_bytes, MAX_BYTES),
            "max_bytes",
            "must be from 1 byte to 1 TiB (1099511627776)",
        ),
        (
            within(c.provider_backlog, PROVIDER_BACKLOG),
            "provider_backlog",
            "must be from 1 to 10000000",
        ),
        (
            within(c.export_timeout, EXPORT_TIMEOUT),
            "export_timeout",
            "must be from 1 ms to 1 h",
        ),
        (
            within(c.max_retries, MAX_RETRIES),
            "max_retries",
            "must be from 0 to 1000000",
        ),
        (
            within(c.initial_backoff, UP_TO_AN_HOUR),
            "initial_backoff",
            "must be from 0 to 1 h",
        ),
        (
            within(c.max_backoff, UP_TO_AN_HOUR),
            "max_backoff",
            "must be from 0 to 1 h",
        ),
        (
            within(c.shutdown_timeout, UP_TO_AN_HOUR),
            "shutdown_timeout",
            "must be from 0 to 1 h",
        ),
        (
            within(c.max_retry_time, MAX_RETRY_TIME),
            "max_retry_time",
            "must be from 0 to 24 h",
        ),
        (
            within(c.breaker_threshold, BREAKER_THRESHOLD),
            "breaker_threshold",
            "must be from 1 to 1000000",
        ),
        (
            within(c.breaker_cooldown, UP_TO_AN_HOUR),
            "breaker_cooldown",
            "must be from 0 to 1 h",
        ),
        (
            within(c.lane_idle_timeout, LANE_IDLE_TIMEOUT),
            "lane_idle_timeout",
            "must be from 1 ms to 24 h",
        ),
        (
            within(c.max_batch_bytes, MAX_BATCH_BYTES),
            "max_batch_bytes",
            "must be from 1 byte to 1 GiB",
        ),
        (
            within(f.max_bytes, FIELD_MAX_BYTES) && within(f.max_depth, FIELD_MAX_DEPTH),
            "field_limits",
            "max_bytes must be from 1 byte to 1 GiB and max_depth from 1 to 100",
        ),
        (
            within(f.max_name_bytes, FIELD_NAME_BYTES),
            "field_limits.max_name_bytes",
            "must be from 64 bytes to 1 MiB",
        ),
        (
            within(f.max_message_bytes, FIELD_MESSAGE_BYTES),
            "field_limits.max_message_bytes",
            "must be from 64 bytes to 64 MiB",
        ),
        (
            within(f.max_tags, FIELD_MAX_TAGS) && within(f.preview_chars, FIELD_PREVIEW_CHARS),
            "field_limits",
            "max_tags and preview_chars must be from 0 to 1000000",
        ),
    ];
    for (ok, name, expected) in checks {
        if !ok {
            return Err(setting(name, expected));
        }
    }
    if let Some(spool) = &c.spool {
        if !within(spool.max_bytes, SPOOL_MAX_BYTES) {
            return Err(setting(
                "spool.max_bytes",
                "must be from 1 byte to 1 PiB (1125899906842624)",
            ));
        }
        if !within(spool.segment_bytes, SPOOL_SEGMENT_BYTES) {
            return Err(setting(
                "spool.segment_bytes",
                "must be from 1 byte to 1 GiB",
            ));
        }
        if let FsyncPolicy::Interval(d) = spool.fsync
            && !within(d, SPOOL_FSYNC)
        {
            return Err(setting(
                "spool.fsync",
                "an interval must be from 1 ms to 1 h (use FsyncPolicy::Always to sync every record)",
            ));
        }
    }
    Ok(())
}

fn env_error(e: env::EnvError) -> QueueError {
    QueueError::Env(e)
}

/// `TRACE_QUEUE_MANAGER_INTERVAL`: seconds, fractions allowed, 0.001 to 3600.
pub(crate) fn interval_from_env() -> Result<Option<Duration>, QueueError> {
    env::parse_var(INTERVAL_ENV, |v| env::seconds(v, INTERVAL.0, INTERVAL.1)).map_err(env_error)
}

/// `TRACE_QUEUE_MANAGER_BATCH_SIZE`: a whole number, 1 to 10000000.
pub(crate) fn batch_size_from_env() -> Result<Option<usize>, QueueError> {
    env::parse_var(BATCH_SIZE_ENV, |v| {
        env::whole_number(v, BATCH_SIZE.0, BATCH_SIZE.1)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    })
    .map_err(env_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::SpoolConfig;

    fn fails(c: QueueConfig, name: &str) {
        match validate(&c) {
            Err(QueueError::InvalidSetting { setting, expected }) => {
                assert_eq!(setting, name);
                assert!(expected.contains("from"), "{expected}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        validate(&QueueConfig::default()).unwrap();
        let c = QueueConfig {
            spool: Some(SpoolConfig::new("/tmp/x")),
            ..QueueConfig::default()
        };
        validate(&c).unwrap();
    }

    #[test]
    fn every_setting_has_a_range() {
        const HUGE: Duration = Duration::MAX;
        type Set = Box<dyn Fn(&mut QueueConfig)>;
        let cases: Vec<(&str, Set)> = vec![
            ("interval", Box::new(|c| c.interval = HUGE)),
            ("interval", Box::new(|c| c.interval = Duration::ZERO)),
            ("batch_size", Box::new(|c| c.batch_size = 0)),
            ("batch_size", Box::new(|c| c.batch_size = usize::MAX)),
            ("max_items", Box::new(|c| c.max_items = usize::MAX)),
            ("max_bytes", Box::new(|c| c.max_bytes = 0)),
            ("provider_backlog", Box::new(|c| c.provider_backlog = 0)),
            ("export_timeout", Box::new(|c| c.export_timeout = HUGE)),
            ("max_retries", Box::new(|c| c.max_retries = u32::MAX)),
            ("initial_backoff", Box::new(|c| c.initial_backoff = HUGE)),
            ("max_backoff", Box::new(|c| c.max_backoff = HUGE)),
            ("shutdown_timeout", Box::new(|c| c.shutdown_timeout = HUGE)),
            ("max_retry_time", Box::new(|c| c.max_retry_time = HUGE)),
            ("breaker_threshold", Box::new(|c| c.breaker_threshold = 0)),
            ("breaker_cooldown", Box::new(|c| c.breaker_cooldown = HUGE)),
            (
                "lane_idle_timeout",
                Box::new(|c| c.lane_idle_timeout = HUGE),
            ),
            (
                "field_limits",
                Box::new(|c| c.field_limits.max_depth = usize::MAX),
            ),
            (
                "spool.max_bytes",
                Box::new(|c| {
                    let mut s = SpoolConfig::new("/tmp/x");
                    s.max_bytes = u64::MAX;
                    c.spool = Some(s);
                }),
            ),
            (
                "spool.fsync",
                Box::new(|c| {
                    let mut s = SpoolConfig::new("/tmp/x");
                    s.fsync = FsyncPolicy::Interval(Duration::ZERO);
                    c.spool = Some(s);
                }),
            ),
        ];
        for (name, set) in cases {
            let mut c = QueueConfig::default();
            set(&mut c);
            fails(c, name);
        }
    }
}
