//! Test helpers shared by the integration tests of ops-core.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use ops_core::{
    ExportError, ExportOutcome, Observation, ObservationKind, Provider, Trace, TraceId, TraceTask,
};

/// A provider that records what it accepted, answers from a script, or hangs forever.
#[derive(Clone, Default)]
pub struct Recorder {
    pub name: &'static str,
    pub state: Arc<Mutex<State>>,
}

#[derive(Default)]
pub struct State {
    pub batches: Vec<Vec<String>>,
    pub traces: Vec<Arc<Trace>>,
    pub script: VecDeque<ExportOutcome>,
    pub hang: bool,
    pub suppressed: Vec<bool>,
    pub calls: Vec<Instant>,
    pub shutdowns: usize,
}

impl Recorder {
    pub fn named(name: &'static str) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    pub fn scripted(name: &'static str, script: impl IntoIterator<Item = ExportOutcome>) -> Self {
        let r = Self::named(name);
        r.state.lock().unwrap().script = script.into_iter().collect();
        r
    }

    pub fn hanging(name: &'static str) -> Self {
        let r = Self::named(name);
        r.state.lock().unwrap().hang = true;
        r
    }

    pub fn delivered(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .batches
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    pub fn traces(&self) -> Vec<Arc<Trace>> {
        self.state.lock().unwrap().traces.clone()
    }

    pub fn batches(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().batches.clone()
    }
}

#[ops_core::async_trait]
impl Provider for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        let (hang, outcome) = {
            let mut s = self.state.lock().unwrap();
            s.calls.push(Instant::now());
            s.suppressed.push(ops_core::__private::is_suppressed());
            let outcome = s.script.pop_front().unwrap_or(ExportOutcome::Delivered);
            let accepted: Vec<String> = match &outcome {
                ExportOutcome::Delivered => batch.iter().map(|t| t.name.clone()).collect(),
                ExportOutcome::Partial { failed, .. } => batch
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !failed.contains(i))
                    .map(|(_, t)| t.name.clone())
                    .collect(),
                _ => Vec::new(),
            };
            if !s.hang && !accepted.is_empty() {
                s.batches.push(accepted);
                if matches!(outcome, ExportOutcome::Delivered) {
                    s.traces.extend(batch.iter().cloned());
                }
            }
            (s.hang, outcome)
        };
        if hang {
            std::future::pending::<()>().await;
        }
        outcome
    }

    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }

    async fn shutdown(&mut self) {
        self.state.lock().unwrap().shutdowns += 1;
    }
}

/// A task for a one-observation trace named `name`.
pub fn task(name: &str) -> TraceTask {
    let mut trace = Trace::new(TraceId::generate(), ObservationKind::Span, name, Utc::now());
    trace
        .observations
        .push(Observation::new(ObservationKind::Span, name));
    TraceTask::from_trace(trace)
}

/// Polls `done` every 5 ms for at most `limit`.
pub fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}
