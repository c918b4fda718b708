//! The record format: one stream entry is one trace, already preprocessed, masked and cut to
//! the limits by the app. Its fields:
//!
//! | field | value |
//! |---|---|
//! | `v` | the format version, a decimal integer: [`FORMAT_VERSION`] (1) |
//! | `app` | the app id the trace is routed by (empty: no app) |
//! | `trace` | the trace as JSON (`ops_core::Trace`'s serde form) |
//!
//! A worker reads every version from 1 up to its own, and ignores fields it does not know,
//! so an app may add fields without a version bump; a change a reader must understand bumps
//! the version. A record of a newer version than the worker reads goes to the dead-letter
//! stream with a reason saying to upgrade the worker; replay it after the upgrade
//! (`ops worker dead-letter replay`).

use ops_core::Trace;

/// The version this crate writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The field holding the version.
pub(crate) const VERSION_FIELD: &str = "v";
/// The field holding the app id.
pub(crate) const APP_FIELD: &str = "app";
/// The field holding the trace.
pub(crate) const TRACE_FIELD: &str = "trace";

/// Why an entry is not a record this worker can deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A field the format requires is absent.
    #[error("the entry has no `{0}` field: it was not written by ops (or by a broken writer)")]
    Missing(&'static str),
    /// The version field is not a number.
    #[error("the `v` field is {0:?}, not a format version number")]
    BadVersion(String),
    /// The record is of a version this worker does not read.
    #[error(
        "format version {found} is newer than this worker reads ({FORMAT_VERSION}): upgrade \
         the worker, then replay the dead-letter stream"
    )]
    TooNew {
        /// The version found.
        found: u32,
    },
    /// The trace field is not a trace.
    #[error("the `trace` field is not a valid trace: {0}")]
    BadTrace(String),
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The format version it was written in.
    pub version: u32,
    /// The app it is routed by; `None` when it names none.
    pub app: Option<String>,
    /// The trace.
    pub trace: Trace,
}

/// The fields of one entry for `trace` of `app`, in the current version.
pub fn encode(app: Option<&str>, trace: &Trace) -> Result<[(&'static str, Vec<u8>); 3], String> {
    let json = serde_json::to_vec(trace).map_err(|e| e.to_string())?;
    Ok([
        (VERSION_FIELD, FORMAT_VERSION.to_string().into_bytes()),
        (APP_FIELD, app.unwrap_or_default().as_bytes().to_vec()),
        (TRACE_FIELD, json),
    ])
}

/// Reads an entry from its fields, of any version up to [`FORMAT_VERSION`].
pub fn decode<'a>(mut field: impl FnMut(&str) -> Option<&'a [u8]>) -> Result<Record, RecordError> {
    let version = field(VERSION_FIELD).ok_or(RecordError::Missing(VERSION_FIELD))?;
    let version = std::str::from_utf8(version)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|v| *v >= 1)
        .ok_or_else(|| RecordError::BadVersion(String::from_utf8_lossy(version).into_owned()))?;
    if version > FORMAT_VERSION {
        return Err(RecordError::TooNew { found: version });
    }
    let app = field(APP_FIELD).ok_or(RecordError::Missing(APP_FIELD))?;
    let app = String::from_utf8_lossy(app).into_owned();
    let trace = field(TRACE_FIELD).ok_or(RecordError::Missing(TRACE_FIELD))?;
    let trace: Trace =
        serde_json::from_slice(trace).map_err(|e| RecordError::BadTrace(e.to_string()))?;
    Ok(Record {
        version,
        app: Some(app).filter(|a| !a.is_empty()),
        trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::{ObservationKind, TraceId};

    fn lookup<'a>(fields: &'a [(&str, Vec<u8>)]) -> impl FnMut(&str) -> Option<&'a [u8]> {
        move |name| {
            fields
                .iter()
                .find(|(f, _)| *f == name)
                .map(|(_, v)| v.as_slice())
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let trace = Trace::new(
            TraceId::generate(),
            ObservationKind::Workflow,
            "run",
            chrono::Utc::now(),
        );
        let fields = encode(Some("app-1"), &trace).unwrap();
        let record = decode(lookup(&fields)).unwrap();
        assert_eq!(record.version, FORMAT_VERSION);
        assert_eq!(record.app.as_deref(), Some("app-1"));
        assert_eq!(record.trace, trace);
    }

    #[test]
    fn a_record_of_a_newer_version_or_without_a_trace_is_refused_with_the_reason() {
        let fields = vec![("v", b"2".to_vec()), ("app", b"a".to_vec())];
        let e = decode(lookup(&fields)).unwrap_err();
        assert_eq!(e, RecordError::TooNew { found: 2 });
        assert!(e.to_string().contains("upgrade the worker"), "{e}");
        let fields = vec![("v", b"1".to_vec()), ("app", b"a".to_vec())];
        assert_eq!(
            decode(lookup(&fields)).unwrap_err(),
            RecordError::Missing("trace")
        );
        let fields = vec![("v", b"x".to_vec())];
        assert!(matches!(
            decode(lookup(&fields)).unwrap_err(),
            RecordError::BadVersion(_)
        ));
        let fields = vec![
            ("v", b"1".to_vec()),
            ("app", b"a".to_vec()),
            ("trace", b"{not json".to_vec()),
        ];
        assert!(matches!(
            decode(lookup(&fields)).unwrap_err(),
            RecordError::BadTrace(_)
        ));
    }
}
