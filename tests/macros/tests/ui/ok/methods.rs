use ops_core::traced;
use std::sync::Arc;

#[derive(Clone, serde::Serialize)]
struct Counter {
    n: u32,
}

impl Counter {
    #[traced]
    fn get(&self) -> u32 {
        self.n
    }

    #[traced(capture_output = false)]
    fn bump(&mut self, by: u32) -> &mut Self {
        self.n += by;
        self
    }

    #[traced]
    fn name(&self) -> &str {
        "counter"
    }

    #[traced]
    fn consume(self) -> u32 {
        self.n
    }

    #[traced]
    fn shared(self: Arc<Self>) -> u32 {
        self.n
    }

    #[traced]
    async fn get_async(&self) -> u32 {
        self.n
    }

    #[traced]
    fn new(n: u32) -> Self {
        Self { n }
    }
}

#[tokio::main]
async fn main() {
    let mut c = Counter::new(1);
    c.bump(2).bump(3);
    assert_eq!(c.get(), 6);
    assert_eq!(c.name(), "counter");
    assert_eq!(c.get_async().await, 6);
    assert_eq!(Arc::new(c.clone()).shared(), 6);
    assert_eq!(c.consume(), 6);
}
