//! Every provider's encoder over hostile traces: the request bodies a batch becomes, built
//! without sending anything (the endpoints are a closed loopback port, never contacted).

use std::cell::RefCell;
use std::sync::Arc;

use arbitrary::Unstructured;
use chrono::Utc;
use ops_core::provider::ProviderConfig;
use ops_core::{Trace, TraceTask};
use ops_providers::otlp::encode::Encoding;
use ops_providers::otlp::{Dialect, OtlpProvider};
use ops_providers::{
    aliyun, arize, datadog, langfuse, langsmith, mlflow, opik, otlp::generic, phoenix, tencent,
    weave,
};

use crate::trace::{Shape, trace};

/// Encodes a body of every OTLP-based provider's format.
type OtlpEncoder = Box<dyn Fn(&[Arc<Trace>]) -> usize>;

thread_local! {
    /// The stateless encoders, built once per thread (building an HTTP client is costly).
    static OTLP: Vec<(&'static str, OtlpEncoder)> = otlp_encoders();
    /// Opik and Weave keep only an id cache, so they are built once too.
    static NATIVE: RefCell<(opik::Opik, weave::Weave)> = RefCell::new((
        opik::Opik::new("http://127.0.0.1:9/api/", "p", None, None).expect("opik"),
        weave::Weave::new("http://127.0.0.1:9", None, Some("e"), "p", "k").expect("weave"),
    ));
    /// LangSmith holds runs whose parent has not arrived yet: its state is reset for every
    /// input, so a failure is reproducible from its input alone.
    static LANGSMITH: RefCell<Option<langsmith::LangSmith>> = RefCell::new(Some(
        langsmith::LangSmith::new("http://127.0.0.1:9", "p", "k", None).expect("langsmith"),
    ));
}

/// Builds one to three hostile traces from `data` and runs every provider's encoder over
/// them: the OTLP dialects (protobuf and JSON bodies), LangSmith (multipart and batch bodies),
/// Opik (span and trace bodies) and Weave (both request modes). Half of the inputs first go
/// through [`TraceTask::preprocess`] as the queue does before any provider sees a trace
/// (limits, masking, non-finite costs removed; values of any depth); the other half reach the
/// encoders as built, nested at most 100 deep (the most the queue's limits let through).
/// Asserts that nothing panics or overflows the stack and that every encoder produces a body.
pub fn encoders(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(preprocess) = u.arbitrary::<bool>() else {
        return;
    };
    let shape = Shape {
        max_string: 2 << 10,
        max_depth: if preprocess {
            300
        } else {
            ops_core::limits::MAX_DEPTH_LIMIT
        },
    };
    let mut batch = Vec::new();
    for _ in 0..u.int_in_range(1..=3).unwrap_or(1) {
        let Ok(t) = trace(&mut u, &shape) else { break };
        let t = if preprocess {
            match TraceTask::from_trace(t).preprocess() {
                Ok(t) => t,
                Err(_) => continue,
            }
        } else {
            t
        };
        let t = Arc::new(t);
        if u.arbitrary().unwrap_or(false) {
            batch.push(Arc::clone(&t));
        }
        batch.push(t);
    }
    if batch.is_empty() {
        return;
    }
    encode_all(&batch);
}

/// Runs every encoder over `batch`; returns the bytes of the bodies.
fn encode_all(batch: &[Arc<Trace>]) -> usize {
    let mut total = 0;
    OTLP.with(|encoders| {
        for (name, encode) in encoders {
            let n = encode(batch);
            assert!(n > 0, "{name}: an empty body");
            total += n;
        }
    });
    NATIVE.with(|native| {
        let (opik, weave) = &mut *native.borrow_mut();
        let (spans, traces) = opik.bodies(batch);
        total += json_len(&spans) + json_len(&traces);
        let calls = weave.calls(batch, Utc::now());
        for mode in [weave::Mode::UpsertBatch, weave::Mode::CallsComplete] {
            let (url, body) = weave.request_body(&calls, mode);
            assert!(!url.is_empty(), "weave: no URL");
            total += json_len(&body);
        }
    });
    let runs = LANGSMITH.with(|cell| {
        let mut cell = cell.borrow_mut();
        let fresh = cell
            .take()
            .expect("not taken")
            .with_limits(langsmith::dotted::Limits::default());
        let langsmith = cell.insert(fresh);
        langsmith.encode(batch)
    });
    let refs: Vec<&langsmith::runs::RunParts> = runs.iter().collect();
    if !refs.is_empty() {
        let (boundary, multipart) = langsmith::runs::multipart(&refs);
        assert!(!boundary.is_empty(), "langsmith: no boundary");
        total += multipart.len() + langsmith::runs::batch(&refs).len();
    }
    total
}

fn json_len(value: &serde_json::Value) -> usize {
    serde_json::to_vec(value)
        .expect("a JSON value serialises")
        .len()
}

fn config(name: &str) -> ProviderConfig {
    let c = ProviderConfig::new(name);
    match name {
        "otlp" => c.with("endpoint", "http://127.0.0.1:9"),
        "langfuse" => c.with("public_key", "pk").with("secret_key", "sk"),
        "arize" => c.with("api_key", "a").with("space_id", "s"),
        "aliyun" => c.with("license_key", "lk"),
        "tencent" => c.with("token", "t").with("endpoint", "http://127.0.0.1:9"),
        "datadog" => c.with("api_key", "d"),
        "databricks" => c
            .with("host", "http://127.0.0.1:9")
            .with("experiment_id", "1")
            .with("personal_access_token", "d"),
        _ => c,
    }
}

fn otlp<D: Dialect>(dialect: Result<D, ops_core::provider::ConfigError>) -> OtlpEncoder {
    let provider = OtlpProvider::new(dialect.expect("a valid config")).expect("a provider");
    Box::new(move |batch| {
        let request = provider.encode(batch);
        Encoding::Protobuf.encode(&request).len() + Encoding::Json.encode(&request).len()
    })
}

fn otlp_encoders() -> Vec<(&'static str, OtlpEncoder)> {
    vec![
        (
            "otlp",
            otlp(generic::GenericOtlp::from_config(&config("otlp"))),
        ),
        (
            "langfuse",
            otlp(langfuse::Langfuse::from_config(&config("langfuse"))),
        ),
        (
            "phoenix",
            otlp(phoenix::Phoenix::from_config(&config("phoenix"))),
        ),
        ("arize", otlp(arize::Arize::from_config(&config("arize")))),
        (
            "aliyun",
            otlp(aliyun::Aliyun::from_config(&config("aliyun"))),
        ),
        (
            "tencent",
            otlp(tencent::Tencent::from_config(&config("tencent"))),
        ),
        (
            "datadog",
            otlp(datadog::Datadog::from_config(&config("datadog"))),
        ),
        (
            "mlflow",
            otlp(mlflow::Mlflow::tracking_server(&config("mlflow"))),
        ),
        (
            "databricks",
            otlp(mlflow::Mlflow::databricks(&config("databricks"))),
        ),
    ]
}
