use ops_core::traced;

trait Tool {
    async fn call(&self, input: String) -> String;

    #[traced]
    async fn call_twice(&self, input: String) -> String {
        let once = self.call(input).await;
        self.call(once).await
    }
}

struct Echo;

impl Tool for Echo {
    #[traced(kind = "tool")]
    async fn call(&self, input: String) -> String {
        format!("echo {input}")
    }
}

#[tokio::main]
async fn main() {
    assert_eq!(Echo.call_twice("x".into()).await, "echo echo x");
}
