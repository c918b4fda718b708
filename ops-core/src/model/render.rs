//! A readable tree of a trace: `name [kind] {key fields}` per observation, children indented.

use std::fmt::Write;

use serde_json::Value;

use super::{Level, Observation, Trace};

/// How [`Trace::render_tree`] renders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Leave out ids, times and durations, so the output is stable across runs (for snapshots).
    pub redact: bool,
    /// Show inputs and outputs, shortened to 60 characters.
    pub show_io: bool,
}

impl RenderOptions {
    /// Stable output for snapshots: ids and times left out.
    pub const fn redacted() -> Self {
        Self {
            redact: true,
            show_io: false,
        }
    }

    /// Also show inputs and outputs.
    #[must_use]
    pub const fn with_io(mut self) -> Self {
        self.show_io = true;
        self
    }
}

impl Trace {
    /// Renders the trace as an indented tree, one observation per line:
    /// `name [kind] {key fields}`. Siblings are ordered by start time, then name.
    pub fn render_tree(&self, options: RenderOptions) -> String {
        let mut out = String::new();
        let mut header = vec![];
        if !options.redact {
            header.push(format!("id={}", self.id));
        }
        let a = &self.attributes;
        for (k, v) in [
            ("user", &a.user_id),
            ("session", &a.session_id),
            ("app", &a.app_id),
            ("env", &a.environment),
            ("release", &a.release),
            ("version", &a.version),
        ] {
            if let Some(v) = v {
                header.push(format!("{k}={v}"));
            }
        }
        if !self.tags.is_empty() {
            header.push(format!("tags={}", self.tags.join(",")));
        }
        let _ = writeln!(
            out,
            "trace {} [{}] {{{}}}",
            self.name,
            self.kind,
            header.join(", ")
        );
        let mut roots: Vec<&Observation> = self.roots().collect();
        sort(&mut roots);
        for root in roots {
            self.render_node(&mut out, root, 1, options);
        }
        out
    }

    fn render_node(&self, out: &mut String, o: &Observation, depth: usize, options: RenderOptions) {
        let mut fields = Vec::new();
        if !options.redact {
            // The tail of a UUIDv7 is random; its head is the timestamp shared by siblings.
            let id = o.id.simple().to_string();
            fields.push(format!("id={}", &id[id.len() - 8..]));
            if let Some(d) = o.duration() {
                fields.push(format!("took={}ms", d.num_milliseconds()));
            }
        }
        if o.level != Level::Default {
            fields.push(format!("level={}", o.level.as_str()));
        }
        if let Some(m) = &o.status_message {
            fields.push(format!("status={m:?}"));
        }
        if let Some(m) = &o.model {
            fields.push(format!("model={m}"));
        }
        if let Some(u) = &o.usage {
            let n = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
            fields.push(format!(
                "usage={}/{}/{}",
                n(u.input),
                n(u.output),
                n(u.total())
            ));
            if let Some(c) = u.total_cost() {
                fields.push(format!(
                    "cost={c}{}",
                    u.currency
                        .as_deref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default()
                ));
            }
        }
        if options.show_io {
            for (k, v) in [("input", &o.input), ("output", &o.output)] {
                if let Some(v) = v {
                    fields.push(format!("{k}={}", shorten(v)));
                }
            }
        }
        let _ = writeln!(
            out,
            "{}{} [{}] {{{}}}",
            "    ".repeat(depth),
            o.name,
            o.kind,
            fields.join(", ")
        );
        let mut children: Vec<&Observation> = self.children_of(o.id).collect();
        sort(&mut children);
        for child in children {
            self.render_node(out, child, depth + 1, options);
        }
    }
}

fn sort(list: &mut [&Observation]) {
    list.sort_by(|a, b| {
        a.start_time
            .cmp(&b.start_time)
            .then_with(|| a.name.cmp(&b.name))
    });
}

fn shorten(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}
