//! The harnesses of the cargo-fuzz targets in `fuzz/`: each takes the fuzzer's bytes, drives
//! one input surface of the library and panics when an invariant breaks. The targets in
//! `fuzz/fuzz_targets/` only call these, and `tests/seeds.rs` replays the committed seed
//! corpus (`fuzz/seeds/<target>/`) through them on stable, so a regression is caught by
//! `cargo test` without nightly.
//!
//! | target | surface |
//! |---|---|
//! | [`spool_decode`] | a spool segment's bytes, decoded as a restart reads them |
//! | [`spool_replay`] | a spool directory (a segment and its acks) opened and read back |
//! | [`env_parsers`] | the environment and config value parsers of `ops-core` and `ops-config` |
//! | [`provider_config`] | a JSON object as a provider's config, through the registry |
//! | [`encoders`] | a hostile trace through every provider's encoder |
//! | [`propagation`] | W3C `traceparent`, `tracestate` and `baggage` headers, read and written back |

mod config;
mod encoders;
mod env;
mod propagation;
mod spool;
mod trace;

pub use config::provider_config;
pub use encoders::encoders;
pub use env::env_parsers;
pub use propagation::propagation;
pub use spool::{spool_decode, spool_replay};

/// A harness: takes the fuzzer's bytes, panics when an invariant breaks.
pub type Harness = fn(&[u8]);

/// Every target's name and harness, in the order of the README.
pub const TARGETS: [(&str, Harness); 6] = [
    ("spool_decode", spool_decode),
    ("spool_replay", spool_replay),
    ("env_parsers", env_parsers),
    ("provider_config", provider_config),
    ("encoders", encoders),
    ("propagation", propagation),
];
