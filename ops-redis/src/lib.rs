//! # ops-redis
//!
//! A delivery tier for ops on Redis Streams, as Dify hands its traces to Celery workers: the
//! app writes each finished trace to a stream instead of exporting it, and any number of
//! `ops worker` processes, on any machines, deliver them to the app's providers.
//!
//! - App side: [`RedisQueueExt::redis`] (or `OPS_TRACE_REDIS_URL` with [`builder_from_env`])
//!   makes Redis the queue's destination. The caller's path is the queue's: enqueue never
//!   blocks and never does I/O; the queue's lanes batch the writes, retry them and, with the
//!   spool on, keep traces on disk while Redis is down.
//! - The wire: one stream per app ([`keys`]), one entry per trace in a versioned
//!   [`record`] format.
//! - Worker side: [`Worker`] reads the streams in a consumer group, delivers through an ops
//!   queue (the same lanes, retries and limits as in-process delivery) and acknowledges an
//!   entry only once every provider resolved it; entries of a stopped worker are claimed
//!   after [`WorkerConfig::claim_idle`], and entries that keep failing go to the
//!   [`dead`]-letter stream.
//!
//! See the crate's README for a two-process quickstart.

pub mod dead;
pub mod keys;
pub mod record;
mod sink;
pub mod stats;
mod worker;

pub use keys::Keys;
pub use sink::{
    DEFAULT_MAX_LEN, REDIS_PREFIX_ENV, REDIS_URL_ENV, RedisQueueExt, RedisSink, SINK_NAME,
    SetupError, SinkStats, builder_from_env,
};
pub use worker::{
    Worker, WorkerConfig, WorkerCounters, WorkerError, WorkerReport, default_consumer,
};

/// The README's Rust snippets, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
