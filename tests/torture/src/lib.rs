//! The torture suite's shared parts: the producer's payloads and ids, the loopback OTLP sink
//! that counts every span it receives, the child-process harness that reads the producer's
//! acknowledgements, and the figures each experiment prints.
//!
//! The experiments are in `tests/`; the processes they start are `src/bin/torture-producer.rs`
//! (a queue with the `otlp` provider, optionally spooled, that acknowledges every accepted
//! trace on stdout) and `src/bin/torture-probe.rs` (env and config probes). See the README.

pub mod child;
pub mod config;
pub mod ids;
pub mod logs;
pub mod payload;
pub mod proc_status;
pub mod report;
pub mod sink;
