use ops_core::context::reduce;
use ops_core::{ObservationContext, traced};

#[traced(
    kind = "generation",
    name = "chat-completion",
    crate = ::ops_core,
    skip(api_key),
    capture_input = true,
    capture_output = true,
    metadata(route = "/chat", "retry-count" = retries),
    tags("llm", "beta"),
    user_id = user.as_str(),
    session_id = Some(42u64),
    app_id = "app",
    tenant_id = "tenant",
    environment = "test",
    release = "1.0.0",
    version = 2,
    model = model,
    model_provider = "openai",
    model_parameters(temperature = 0.7, max_tokens = 256),
    level = "DEFAULT",
    parent = ObservationContext::current(),
    sample_rate = 0.5,
)]
fn chat(api_key: &str, user: String, model: &str, retries: u32, prompt: String) -> String {
    let _ = (api_key, retries);
    format!("{user}/{model}: {prompt}")
}

#[traced(skip_all, reduce = reduce::fold(|n: &mut usize, _: &u8| *n += 1))]
fn counted() -> std::pin::Pin<Box<dyn futures_core::Stream<Item = u8> + Send>> {
    struct Empty;
    impl futures_core::Stream for Empty {
        type Item = u8;
        fn poll_next(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<u8>> {
            std::task::Poll::Ready(None)
        }
    }
    Box::pin(Empty)
}

fn main() {
    assert_eq!(chat("k", "u".into(), "m", 0, "p".into()), "u/m: p");
    let _ = counted();
}
