//! The quickstart's chatflow, traced through a real queue into the embedded `file` provider,
//! read back from the JSON lines it wrote.

use std::path::PathBuf;
use std::time::Duration;

use ops_core::local::LocalProvider;
use ops_core::model::RenderOptions;
use ops_core::{ObservationKind, Trace, TraceQueueManager};

/// A file path under the temp dir that no other test or process uses; removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let unique = format!(
            "ops-examples-{name}-{}-{}.jsonl",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        Self(std::env::temp_dir().join(unique))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn traced_chatflow() -> (ops_core::model::WorkflowRun, Vec<Trace>) {
    let file = TempFile::new("quickstart");
    let provider = LocalProvider::file(file.0.display().to_string()).expect("open temp file");
    let queue = TraceQueueManager::builder()
        .interval(Duration::from_secs(60))
        .provider(provider)
        .build()
        .expect("queue");
    let (run, nodes) = examples::chatflow_run();
    queue
        .trace_workflow_run(run.clone(), nodes)
        .expect("enqueue");
    let report = queue.flush(Duration::from_secs(10));
    assert_eq!(
        (
            report.delivered,
            report.dropped,
            report.failed,
            report.timed_out
        ),
        (1, 0, 0, false),
        "{report:?}"
    );
    let text = std::fs::read_to_string(&file.0).expect("the file provider wrote the file");
    let traces = text
        .lines()
        .map(|line| serde_json::from_str::<Trace>(line).expect("each line is a Trace"))
        .collect();
    (run, traces)
}

#[test]
fn chatflow_becomes_message_workflow_and_five_nodes() {
    let (run, traces) = traced_chatflow();
    assert_eq!(traces.len(), 1, "one JSON line per trace");
    let trace = &traces[0];

    assert_eq!(trace.id.as_str(), run.id, "the run id is the trace id");
    assert_eq!(
        trace.kind,
        ObservationKind::Message,
        "a chatflow is a message trace"
    );
    assert_eq!(trace.attributes.session_id, run.conversation_id);
    assert_eq!(trace.attributes.user_id.as_deref(), Some(examples::USER_ID));
    assert_eq!(trace.attributes.app_id.as_deref(), Some(examples::APP_ID));

    let expected = format!(
        "\
trace message [message] {{user={user}, session={session}, app={app}, version={version}, tags=message,workflow}}
    message [message] {{}}
        workflow [workflow] {{usage=612/148/760}}
            Start [node_execution] {{}}
            Packing guides [dataset_retrieval] {{}}
            Weather forecast [tool] {{}}
            Travel assistant [generation] {{model=gpt-4o-mini, usage=612/148/760, cost=0.0001806 USD}}
            Answer [node_execution] {{}}
",
        user = examples::USER_ID,
        session = run.conversation_id.as_deref().unwrap(),
        app = examples::APP_ID,
        version = examples::VERSION,
    );
    assert_eq!(trace.render_tree(RenderOptions::redacted()), expected);

    let message: Vec<_> = trace.roots().collect();
    assert_eq!(message.len(), 1);
    assert_eq!(message[0].input, Some(serde_json::json!(examples::QUERY)));
    assert_eq!(message[0].output, Some(serde_json::json!(examples::ANSWER)));
    let workflow: Vec<_> = trace.children_of(message[0].id).collect();
    assert_eq!(workflow.len(), 1);
    assert_eq!(workflow[0].kind, ObservationKind::Workflow);
    assert_eq!(trace.children_of(workflow[0].id).count(), 5);
}

#[test]
fn llm_node_becomes_a_generation_with_usage_cost_and_model() {
    let (run, traces) = traced_chatflow();
    let llm = traces[0]
        .observations
        .iter()
        .find(|o| o.kind == ObservationKind::Generation)
        .expect("the llm node is a generation");

    assert_eq!(llm.name, "Travel assistant");
    assert_eq!(llm.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(llm.model_provider.as_deref(), Some("openai"));
    assert_eq!(llm.model_parameters["temperature"], serde_json::json!(0.3));
    let usage = llm.usage.as_ref().expect("usage");
    assert_eq!(
        (usage.input, usage.output, usage.total()),
        (Some(612), Some(148), Some(760))
    );
    assert_eq!(usage.total_cost(), Some(0.0001806));
    assert_eq!(usage.currency.as_deref(), Some("USD"));
    let prompts = llm
        .input
        .as_ref()
        .and_then(|i| i.as_array())
        .expect("prompts are the input");
    assert_eq!(prompts.len(), 2);
    assert_eq!(prompts[1]["text"], serde_json::json!(examples::QUERY));
    let ttft = llm.completion_start_time.expect("time to first token") - llm.start_time;
    assert_eq!(ttft.num_milliseconds(), 412);
    assert_eq!(
        llm.metadata["workflow_run_id"],
        serde_json::json!(run.id),
        "node metadata links back to the run"
    );
}
