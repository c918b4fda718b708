//! Which spans become observations.

use tracing::Metadata;

/// Which `tracing` spans become observations. By default only spans that carry GenAI
/// (`gen_ai.*`), OpenInference (`openinference.*`) or `ops.*` fields: the sqlx, hyper and tower
/// spans of an app stay out. Add targets or names to take more; the events of a span that is
/// left out go to the nearest enclosing span that is taken.
#[derive(Debug, Clone, Default)]
pub(crate) struct Select {
    pub(crate) targets: Vec<String>,
    pub(crate) names: Vec<String>,
    pub(crate) all: bool,
}

impl Select {
    /// Whether a span with this metadata becomes an observation.
    pub(crate) fn selects(&self, meta: &Metadata<'_>) -> bool {
        self.all
            || has_marked_field(meta)
            || self
                .targets
                .iter()
                .any(|t| target_matches(t, meta.target()))
            || self.names.iter().any(|n| n == meta.name())
    }
}

/// Whether the span declares a GenAI, OpenInference or `ops.*` field.
pub(crate) fn has_marked_field(meta: &Metadata<'_>) -> bool {
    meta.fields().iter().any(|f| {
        let name = f.name();
        name.starts_with("gen_ai.")
            || name.starts_with("ops.")
            || name.starts_with("openinference.")
    })
}

/// `my_app` matches the target `my_app` and its modules (`my_app::db`), not `my_apple`.
pub(crate) fn target_matches(prefix: &str, target: &str) -> bool {
    target
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

#[cfg(test)]
mod tests {
    use super::target_matches;

    #[test]
    fn targets_match_whole_path_segments() {
        assert!(target_matches("my_app", "my_app"));
        assert!(target_matches("my_app", "my_app::db"));
        assert!(!target_matches("my_app", "my_apple"));
        assert!(!target_matches("my_app::db", "my_app"));
    }
}
