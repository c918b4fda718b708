use ops_core::{async_trait, traced};

#[async_trait]
trait Retriever {
    async fn retrieve(&self, query: &str, top_k: usize) -> Result<Vec<String>, std::io::Error>;
}

struct Index;

#[async_trait]
impl Retriever for Index {
    #[traced(kind = "dataset_retrieval")]
    async fn retrieve(&self, query: &str, top_k: usize) -> Result<Vec<String>, std::io::Error> {
        Ok(vec![query.to_owned(); top_k])
    }
}

#[tokio::main]
async fn main() {
    let r: Box<dyn Retriever + Send + Sync> = Box::new(Index);
    assert_eq!(r.retrieve("q", 2).await.unwrap().len(), 2);
}
