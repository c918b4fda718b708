//! The naming scheme of every Redis key ops uses, under one prefix (default `ops`):
//!
//! | key | type | what it holds |
//! |---|---|---|
//! | `{prefix}:stream:{app}` | stream | one app's traces (its shard), capped by `XADD MAXLEN ~` |
//! | `{prefix}:streams` | set | the names of every app stream, so workers find new apps |
//! | `{prefix}:dead` | stream | entries given up on, with the reason (the dead-letter stream) |
//! | `{prefix}:workers` | set | consumer names of workers that published figures |
//! | `{prefix}:worker:{consumer}` | hash | one worker's figures, expiring when it stops publishing |
//!
//! Workers read every app stream in one consumer group (default `ops-workers`). One stream per
//! app keeps each app's order and lets a worker read the apps round-robin, so one app's
//! backlog never starves another.

/// The consumer group workers read in unless told otherwise.
pub const DEFAULT_GROUP: &str = "ops-workers";
/// The key prefix unless told otherwise.
pub const DEFAULT_PREFIX: &str = "ops";

/// The keys under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl Keys {
    /// The keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The stream of `app`'s traces.
    pub fn stream(&self, app: &str) -> String {
        format!("{}:stream:{app}", self.prefix)
    }

    /// The app a stream name belongs to, when it is one of this prefix's app streams.
    pub fn app_of<'a>(&self, stream: &'a str) -> Option<&'a str> {
        stream
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":stream:")
    }

    /// The set of every app stream's name.
    pub fn streams(&self) -> String {
        format!("{}:streams", self.prefix)
    }

    /// The dead-letter stream.
    pub fn dead(&self) -> String {
        format!("{}:dead", self.prefix)
    }

    /// The set of workers that publish figures.
    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// One worker's figures.
    pub fn worker(&self, consumer: &str) -> String {
        format!("{}:worker:{consumer}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_stream_names_its_app_and_nothing_else_does() {
        let keys = Keys::new("t1");
        assert_eq!(keys.stream("app-1"), "t1:stream:app-1");
        assert_eq!(keys.app_of("t1:stream:app-1"), Some("app-1"));
        assert_eq!(keys.app_of("t2:stream:app-1"), None);
        assert_eq!(keys.app_of(&keys.dead()), None);
    }
}
