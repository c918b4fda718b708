//! Loading the JSON lines the `file` provider writes.

use std::io::BufRead;
use std::path::Path;

use ops_core::model::Trace;
use serde::Serialize;

use crate::store::{StoreError, TraceStore};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Traces stored.
    pub imported: u64,
    /// Blank lines skipped.
    pub blank: u64,
    /// Lines that are not a trace, with their line number and why (the first 20).
    pub rejected: Vec<(u64, String)>,
    /// How many lines were rejected in all.
    pub rejected_total: u64,
}

const BATCH: usize = 200;

impl TraceStore {
    /// Imports the traces in `path`, one JSON object a line (what the `file` provider
    /// writes). A line that is not a trace is skipped and reported, never fatal.
    pub async fn import_jsonl(&self, path: impl AsRef<Path>) -> Result<ImportReport, StoreError> {
        let path = path.as_ref();
        let read_error = |source| StoreError::Read {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut report = ImportReport::default();
        let mut batch: Vec<Trace> = Vec::with_capacity(BATCH);
        for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
            let number = index as u64 + 1;
            let line = match line {
                Ok(line) => line,
                Err(e) => {
                    report.reject(number, format!("unreadable: {e}"));
                    continue;
                }
            };
            if line.trim().is_empty() {
                report.blank += 1;
                continue;
            }
            match serde_json::from_str::<Trace>(&line) {
                Ok(trace) => batch.push(trace),
                Err(e) => report.reject(number, format!("not a trace: {e}")),
            }
            if batch.len() == BATCH {
                self.insert(&batch).await?;
                report.imported += batch.len() as u64;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.insert(&batch).await?;
            report.imported += batch.len() as u64;
        }
        Ok(report)
    }
}

impl ImportReport {
    fn reject(&mut self, line: u64, why: String) {
        self.rejected_total += 1;
        if self.rejected.len() < 20 {
            self.rejected.push((line, why));
        }
    }
}
