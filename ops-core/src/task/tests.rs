use super::*;
use crate::model::*;
use chrono::{DateTime, Utc};
use serde_json::json;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const RUN: &str = "0192f5a0-0000-7000-8000-0000000000aa";

fn node(
    exec: &str,
    node_id: &str,
    node_type: &str,
    title: &str,
    start: &str,
    elapsed: f64,
) -> WorkflowNodeTraceInfo {
    WorkflowNodeTraceInfo {
        base: BaseTraceInfo {
            start_time: Some(t(start)),
            ..BaseTraceInfo::default()
        },
        workflow_id: "wf".into(),
        workflow_run_id: RUN.into(),
        tenant_id: "tenant".into(),
        node_execution_id: exec.into(),
        node_id: node_id.into(),
        node_type: node_type.into(),
        title: title.into(),
        status: "succeeded".into(),
        elapsed_time: elapsed,
        index: 1,
        ..WorkflowNodeTraceInfo::default()
    }
}

fn chatflow() -> (WorkflowRun, Vec<WorkflowNodeTraceInfo>) {
    let run = WorkflowRun {
        id: RUN.into(),
        tenant_id: "tenant".into(),
        app_id: "app".into(),
        workflow_id: "wf".into(),
        triggered_from: "app-run".into(),
        version: "v3".into(),
        inputs:
            json!({"sys.query": "what is ops?", "sys.files": [{"remote_url": "https://f/1.png"}]})
                .as_object()
                .unwrap()
                .clone(),
        outputs: json!({"answer": "tracing"}).as_object().unwrap().clone(),
        status: "failed".into(),
        error: Some("tool exploded".into()),
        elapsed_time: 2.5,
        total_tokens: 0,
        created_by_role: "end_user".into(),
        created_by: "eu-1".into(),
        created_at: t("2026-01-02T03:04:05Z"),
        finished_at: None,
        conversation_id: Some("conv-1".into()),
        message_id: Some("msg-1".into()),
        user_id: Some("user-1".into()),
        ..WorkflowRun::default()
    };
    let mut llm = node(
        "ne-llm",
        "llm",
        "llm",
        "LLM",
        "2026-01-02T03:04:05.100Z",
        1.0,
    );
    llm.process_data = Some(
        json!({
            "prompts": [{"role": "user", "text": "what is ops?"}],
            "model_name": "gpt-4o-mini",
            "model_provider": "openai",
            "model_parameters": {"temperature": 0.2},
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                      "total_price": "0.0021", "currency": "USD", "time_to_first_token": 0.25}
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    llm.node_outputs = Some(json!({"text": "tracing"}).as_object().unwrap().clone());
    let mut tool = node(
        "ne-tool",
        "tool",
        "tool",
        "Search",
        "2026-01-02T03:04:06.200Z",
        0.3,
    );
    tool.status = "failed".into();
    tool.error = Some("tool exploded".into());
    tool.node_inputs = Some(json!({"q": "ops"}).as_object().unwrap().clone());
    let mut agent = node(
        "ne-agent",
        "agent",
        "agent",
        "Agent",
        "2026-01-02T03:04:06.600Z",
        0.2,
    );
    agent.node_outputs = Some(
        json!({"usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let kr = node(
        "ne-kr",
        "kr",
        "knowledge-retrieval",
        "Knowledge",
        "2026-01-02T03:04:05.050Z",
        0.05,
    );
    let iteration = node(
        "ne-it",
        "it",
        "iteration",
        "Loop over docs",
        "2026-01-02T03:04:06.800Z",
        0.1,
    );
    let mut inner = node(
        "ne-inner",
        "code",
        "code",
        "Inner",
        "2026-01-02T03:04:06.810Z",
        0.01,
    );
    inner.iteration_id = Some("it".into());
    inner.iteration_index = Some(0);
    (run, vec![llm, tool, agent, kr, iteration, inner])
}

fn find<'a>(trace: &'a Trace, name: &str) -> &'a Observation {
    trace
        .observations
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no observation {name} in\n{}",
                trace.render_tree(RenderOptions::redacted())
            )
        })
}

#[test]
fn chatflow_becomes_a_message_trace_with_the_workflow_and_its_nodes() {
    let (run, nodes) = chatflow();
    let trace = TraceTask::workflow_run(run, nodes)
        .unwrap()
        .preprocess()
        .unwrap();
    assert_eq!(
        trace.id.as_str(),
        RUN,
        "without an external id the trace id is the run id"
    );
    assert_eq!(trace.kind, ObservationKind::Message);
    assert_eq!(trace.tags, ["message", "workflow"]);
    assert_eq!(trace.attributes.user_id.as_deref(), Some("user-1"));
    assert_eq!(trace.attributes.session_id.as_deref(), Some("conv-1"));
    assert_eq!(trace.attributes.app_id.as_deref(), Some("app"));
    assert_eq!(trace.attributes.version.as_deref(), Some("v3"));
    assert_eq!(
        trace.render_tree(RenderOptions::redacted()),
        "trace message [message] {user=user-1, session=conv-1, app=app, version=v3, tags=message,workflow}
    message [message] {level=ERROR, status=\"tool exploded\"}
        workflow [workflow] {level=ERROR, status=\"tool exploded\", usage=17/10/27}
            Knowledge [dataset_retrieval] {}
            LLM [generation] {model=gpt-4o-mini, usage=12/3/15, cost=0.0021 USD}
            Search [tool] {level=ERROR, status=\"tool exploded\"}
            Agent [agent] {usage=5/7/12}
            Loop over docs [node_execution] {}
                Inner [node_execution] {}
"
    );
    let message = find(&trace, "message");
    let workflow = find(&trace, "workflow");
    assert_eq!(message.input, Some(json!("what is ops?")));
    assert_eq!(message.output, Some(json!("tracing")));
    assert_eq!(workflow.parent_id, Some(message.id));
    assert_eq!(
        workflow.id.to_string(),
        RUN,
        "a UUIDv7 run id is kept as the observation id"
    );
    assert_eq!(
        workflow.end_time,
        Some(t("2026-01-02T03:04:07.500Z")),
        "end = start + elapsed"
    );
    for key in [
        "workflow_id",
        "conversation_id",
        "workflow_run_id",
        "tenant_id",
        "elapsed_time",
        "status",
        "version",
        "total_tokens",
        "file_list",
        "triggered_from",
        "user_id",
        "app_id",
    ] {
        assert!(workflow.metadata.contains_key(key), "metadata lacks {key}");
    }
    assert_eq!(workflow.metadata["file_list"], json!(["https://f/1.png"]));
    assert_eq!(workflow.metadata["invoked_by"], json!("end_user:eu-1"));
    assert_eq!(
        workflow.metadata["total_tokens"],
        json!(27),
        "run total 0 means the nodes' sum"
    );

    let llm = find(&trace, "LLM");
    assert_eq!(
        llm.input,
        Some(json!([{"role": "user", "text": "what is ops?"}])),
        "LLM input = prompts"
    );
    assert_eq!(llm.model_provider.as_deref(), Some("openai"));
    assert_eq!(llm.model_parameters["temperature"], json!(0.2));
    assert_eq!(
        llm.completion_start_time,
        Some(t("2026-01-02T03:04:05.350Z"))
    );
    assert_eq!(llm.end_time, Some(t("2026-01-02T03:04:06.100Z")));
    assert_eq!(llm.metadata["node_type"], json!("llm"));

    let tool = find(&trace, "Search");
    assert_eq!(tool.input, Some(json!({"q": "ops"})));
    assert_eq!(tool.level, Level::Error);

    let agent = find(&trace, "Agent");
    assert_eq!(
        agent.usage.as_ref().unwrap().total(),
        Some(12),
        "usage of agent nodes is kept (Dify bug 10)"
    );
    let inner = find(&trace, "Inner");
    assert_eq!(inner.parent_id, Some(find(&trace, "Loop over docs").id));
}

#[test]
fn a_failed_node_reports_its_own_error_not_the_workflows() {
    let (mut run, mut nodes) = chatflow();
    run.error = Some("the workflow's error".into());
    nodes[1].error = Some("the node's error".into());
    let trace = TraceTask::workflow_run(run, nodes)
        .unwrap()
        .preprocess()
        .unwrap();
    assert_eq!(
        find(&trace, "Search").status_message.as_deref(),
        Some("the node's error")
    );
    assert_eq!(
        find(&trace, "workflow").status_message.as_deref(),
        Some("the workflow's error")
    );
}

#[test]
fn pure_workflow_parents_nodes_to_the_workflow() {
    let (mut run, nodes) = chatflow();
    run.message_id = None;
    run.conversation_id = None;
    run.status = "succeeded".into();
    run.error = None;
    let trace = TraceTask::workflow_run(run, nodes)
        .unwrap()
        .preprocess()
        .unwrap();
    assert_eq!(trace.kind, ObservationKind::Workflow);
    assert_eq!(trace.tags, ["workflow"]);
    let workflow = find(&trace, "workflow");
    assert_eq!(workflow.parent_id, None);
    assert_eq!(workflow.level, Level::Default);
    for name in ["LLM", "Search", "Agent", "Knowledge", "Loop over docs"] {
        assert_eq!(find(&trace, name).parent_id, Some(workflow.id), "{name}");
    }
}

#[test]
fn preprocessing_is_deterministic_so_resends_upsert() {
    let (run, nodes) = chatflow();
    let task = TraceTask::workflow_run(run, nodes).unwrap();
    let json = serde_json::to_string(&task).unwrap();
    let replayed: TraceTask = serde_json::from_str(&json).unwrap();
    assert_eq!(
        replayed, task,
        "tasks survive a serde round trip (for the spool)"
    );
    let a = task.preprocess().unwrap();
    let b = replayed.preprocess().unwrap();
    assert_eq!(a, b);
    assert!(a.observations.iter().all(|o| o.id.get_version_num() == 7));
}

#[test]
fn trace_id_resolution_and_validation() {
    let (mut run, nodes) = chatflow();
    run.external_trace_id = Some("req_123-abc".into());
    let task = TraceTask::workflow_run(run.clone(), nodes.clone()).unwrap();
    assert_eq!(task.trace_id().as_str(), "req_123-abc");
    run.external_trace_id = Some("not valid!".into());
    let err = TraceTask::workflow_run(run.clone(), nodes.clone())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("external_trace_id: invalid trace id \"not valid!\""),
        "{err}"
    );
    run.external_trace_id = None;
    run.parent_trace_context = Some(ParentTraceContext {
        parent_workflow_run_id: "parent-run".into(),
        parent_node_execution_id: Some("0192f5a0-0000-7000-8000-0000000000bb".into()),
    });
    let trace = TraceTask::workflow_run(run.clone(), nodes.clone())
        .unwrap()
        .preprocess()
        .unwrap();
    assert_eq!(
        trace.id.as_str(),
        "parent-run",
        "a nested run joins its caller's trace"
    );
    assert_eq!(
        find(&trace, "message")
            .parent_id
            .map(|u| u.to_string())
            .as_deref(),
        Some("0192f5a0-0000-7000-8000-0000000000bb"),
        "and hangs under the node that called it"
    );
    run.id = String::new();
    assert!(
        TraceTask::workflow_run(run, nodes)
            .unwrap_err()
            .to_string()
            .contains("`id` is required")
    );

    let moderation = |message_id: Option<&str>, trace_id: Option<&str>| {
        TraceInfo::Moderation(ModerationTraceInfo {
            base: BaseTraceInfo {
                message_id: message_id.map(Into::into),
                trace_id: trace_id.map(Into::into),
                ..BaseTraceInfo::default()
            },
            ..ModerationTraceInfo::default()
        })
    };
    assert_eq!(
        TraceTask::from_info(moderation(Some("m1"), Some("ext")))
            .unwrap()
            .trace_id()
            .as_str(),
        "ext"
    );
    assert_eq!(
        TraceTask::from_info(moderation(Some("m1"), None))
            .unwrap()
            .trace_id()
            .as_str(),
        "m1"
    );
    let generated = TraceTask::from_info(moderation(None, None)).unwrap();
    assert_eq!(generated.trace_id().as_uuid().unwrap().get_version_num(), 7);
}

fn message() -> MessageRun {
    MessageRun {
        id: "msg-1".into(),
        conversation_id: "conv-1".into(),
        app_id: "app".into(),
        tenant_id: Some("tenant".into()),
        conversation_mode: "chat".into(),
        model_provider: Some("openai".into()),
        model_id: Some("gpt-4o-mini".into()),
        query: "hi".into(),
        message: json!([{"role": "user", "content": "hi"}]),
        answer: "hello".into(),
        message_tokens: 12,
        answer_tokens: 1,
        total_price: Some(0.0003),
        currency: Some("USD".into()),
        provider_response_latency: 1.5,
        created_at: t("2026-01-02T03:04:05Z"),
        updated_at: Some(t("2026-01-02T03:04:05Z")),
        status: "normal".into(),
        from_end_user_id: Some("eu-1".into()),
        from_source: "api".into(),
        message_metadata: json!({"usage": {"time_to_first_token": 0.4, "time_to_generate": 1.1}})
            .as_object()
            .unwrap()
            .clone(),
        message_files: vec!["files/a.png".into(), "https://cdn/b.png".into()],
        trace_session_id: Some("sess-9".into()),
        ..MessageRun::default()
    }
}

#[test]
fn message_run_derives_what_dify_derives() {
    let trace = TraceTask::message_run(message())
        .unwrap()
        .preprocess()
        .unwrap();
    assert_eq!(trace.id.as_str(), "msg-1");
    assert_eq!(trace.kind, ObservationKind::Message);
    assert_eq!(trace.attributes.user_id.as_deref(), Some("eu-1"));
    assert_eq!(
        trace.attributes.session_id.as_deref(),
        Some("sess-9"),
        "trace_session_id beats the conversation"
    );
    let msg = find(&trace, "message");
    assert_eq!(
        msg.end_time,
        Some(t("2026-01-02T03:04:06.500Z")),
        "updated_at not later: created + latency"
    );
    assert_eq!(
        msg.input.as_ref().unwrap()["files"],
        json!(["http://127.0.0.1:5001/files/a.png", "https://cdn/b.png"])
    );
    for key in [
        "conversation_id",
        "ls_provider",
        "ls_model_name",
        "status",
        "from_end_user_id",
        "message_id",
        "app_id",
    ] {
        assert!(trace.metadata.contains_key(key), "metadata lacks {key}");
    }
    let llm = find(&trace, "llm");
    assert_eq!(llm.kind, ObservationKind::Generation);
    assert_eq!(llm.parent_id, Some(msg.id));
    let usage = llm.usage.as_ref().unwrap();
    assert_eq!(
        (usage.input, usage.output, usage.total()),
        (Some(12), Some(1), Some(13))
    );
    assert_eq!(usage.total_cost, Some(0.0003));
    assert_eq!(usage.currency.as_deref(), Some("USD"));
    assert_eq!(llm.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(
        llm.completion_start_time,
        Some(t("2026-01-02T03:04:05.400Z"))
    );

    let mut later = message();
    later.updated_at = Some(t("2026-01-02T03:04:09Z"));
    let trace = TraceTask::message_run(later).unwrap().preprocess().unwrap();
    assert_eq!(
        find(&trace, "message").end_time,
        Some(t("2026-01-02T03:04:09Z"))
    );
}

fn base_for_message() -> BaseTraceInfo {
    BaseTraceInfo {
        message_id: Some("msg-1".into()),
        message_data: Some(json!({"created_at": "2026-01-02T03:04:05Z"})),
        inputs: Some(json!("hi")),
        start_time: Some(t("2026-01-02T03:04:05.500Z")),
        end_time: Some(t("2026-01-02T03:04:05.600Z")),
        metadata: json!({"user_id": "eu-1", "conversation_id": "conv-1"})
            .as_object()
            .unwrap()
            .clone(),
        ..BaseTraceInfo::default()
    }
}

#[test]
fn auxiliary_events_link_to_their_message() {
    let message_trace = TraceTask::message_run(message())
        .unwrap()
        .preprocess()
        .unwrap();
    let message_obs = find(&message_trace, "message").id;
    let infos = [
        TraceInfo::Moderation(ModerationTraceInfo {
            base: base_for_message(),
            flagged: true,
            action: "direct_output".into(),
            preset_response: "no".into(),
            query: "hi".into(),
        }),
        TraceInfo::SuggestedQuestion(SuggestedQuestionTraceInfo {
            base: base_for_message(),
            total_tokens: 9,
            suggested_question: vec!["why?".into()],
            model_id: Some("gpt".into()),
            level: "info".into(),
            ..SuggestedQuestionTraceInfo::default()
        }),
        TraceInfo::DatasetRetrieval(DatasetRetrievalTraceInfo {
            base: base_for_message(),
            documents: json!([{"page_content": "doc"}]),
            error: None,
        }),
        TraceInfo::Tool(ToolTraceInfo {
            base: base_for_message(),
            tool_name: "search".into(),
            tool_inputs: json!({"q": "x"}).as_object().unwrap().clone(),
            tool_outputs: "found".into(),
            time_cost: 0.25,
            error: Some("timeout".into()),
            ..ToolTraceInfo::default()
        }),
        TraceInfo::GenerateName(GenerateNameTraceInfo {
            base: base_for_message(),
            conversation_id: Some("conv-1".into()),
            tenant_id: "tenant".into(),
        }),
    ];
    let expected = [
        (ObservationKind::Moderation, "moderation", Level::Warning),
        (
            ObservationKind::SuggestedQuestion,
            "suggested_question",
            Level::Default,
        ),
        (
            ObservationKind::DatasetRetrieval,
            "dataset_retrieval",
            Level::Default,
        ),
        (ObservationKind::Tool, "search", Level::Error),
        (
            ObservationKind::GenerateConversationName,
            "generate_conversation_name",
            Level::Default,
        ),
    ];
    for (info, (kind, name, level)) in infos.into_iter().zip(expected) {
        let trace = TraceTask::from_info(info).unwrap().preprocess().unwrap();
        assert_eq!(
            trace.id.as_str(),
            "msg-1",
            "{kind}: same trace as the message (Dify bug 9)"
        );
        assert_eq!(trace.kind, ObservationKind::Message, "{kind}");
        assert_eq!(trace.observations.len(), 1, "{kind}");
        let o = &trace.observations[0];
        assert_eq!((o.kind, o.name.as_str(), o.level), (kind, name, level));
        assert_eq!(
            o.parent_id,
            Some(message_obs),
            "{kind} hangs under the message observation"
        );
        assert_eq!(
            trace.attributes.session_id.as_deref(),
            Some("conv-1"),
            "{kind}"
        );
        if kind == ObservationKind::Tool {
            assert_eq!(
                o.end_time,
                Some(t("2026-01-02T03:04:05.750Z")),
                "tool end = start + time_cost"
            );
            assert_eq!(o.status_message.as_deref(), Some("timeout"));
        }
        if kind == ObservationKind::SuggestedQuestion {
            assert_eq!(o.output, Some(json!(["why?"])));
            assert_eq!(o.usage.as_ref().unwrap().total(), Some(9));
        }
    }
}

#[test]
fn prompt_generation_and_node_executions() {
    let info = TraceInfo::PromptGeneration(PromptGenerationTraceInfo {
        base: BaseTraceInfo {
            start_time: Some(t("2026-01-02T03:04:05Z")),
            ..BaseTraceInfo::default()
        },
        tenant_id: "tenant".into(),
        user_id: "acc-1".into(),
        app_id: Some("app".into()),
        operation_type: "rule_generate".into(),
        instruction: "write a prompt".into(),
        prompt_tokens: 10,
        completion_tokens: 20,
        total_tokens: 30,
        model_provider: "openai".into(),
        model_name: "gpt-4o".into(),
        latency: 2.0,
        total_price: Some(0.01),
        currency: Some("USD".into()),
        error: None,
    });
    let trace = TraceTask::from_info(info).unwrap().preprocess().unwrap();
    assert_eq!(trace.kind, ObservationKind::PromptGeneration);
    let o = &trace.observations[0];
    assert_eq!(o.end_time, Some(t("2026-01-02T03:04:07Z")));
    assert_eq!(o.input, Some(json!({"instruction": "write a prompt"})));
    assert_eq!(o.usage.as_ref().unwrap().total_cost(), Some(0.01));
    assert_eq!(trace.attributes.user_id.as_deref(), Some("acc-1"));

    let (_, nodes) = chatflow();
    let trace = TraceTask::from_info(TraceInfo::NodeExecution(nodes[0].clone()))
        .unwrap()
        .preprocess()
        .unwrap();
    assert_eq!(trace.id.as_str(), RUN);
    assert_eq!(trace.kind, ObservationKind::Workflow);
    let o = &trace.observations[0];
    assert_eq!(o.kind, ObservationKind::Generation);
    assert_eq!(
        o.parent_id.unwrap().to_string(),
        RUN,
        "linked to its run's workflow observation"
    );
    let full = TraceTask::workflow_run(chatflow().0, chatflow().1)
        .unwrap()
        .preprocess()
        .unwrap();
    assert_eq!(
        o.id,
        find(&full, "LLM").id,
        "same id as when sent with the run"
    );

    let mut draft = nodes[4].clone();
    draft.iteration_id = None;
    let trace = TraceTask::from_info(TraceInfo::DraftNodeExecution(draft))
        .unwrap()
        .preprocess()
        .unwrap();
    assert_eq!(
        trace.observations[0].kind,
        ObservationKind::DraftNodeExecution
    );
}

#[test]
fn an_info_workflow_record_becomes_a_workflow_trace() {
    let info = TraceInfo::Workflow(WorkflowTraceInfo {
        base: BaseTraceInfo {
            start_time: Some(t("2026-01-02T03:04:05Z")),
            ..BaseTraceInfo::default()
        },
        workflow_id: "wf".into(),
        tenant_id: "t".into(),
        workflow_run_id: "run-1".into(),
        workflow_run_status: "succeeded".into(),
        workflow_run_version: "v1".into(),
        total_tokens: 5,
        ..WorkflowTraceInfo::default()
    });
    let trace = TraceTask::from_info(info).unwrap().preprocess().unwrap();
    assert_eq!(trace.id.as_str(), "run-1");
    assert_eq!(trace.kind, ObservationKind::Workflow);
    assert_eq!(
        trace.observations[0].usage.as_ref().unwrap().total(),
        Some(5)
    );
}
