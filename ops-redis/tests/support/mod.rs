//! What the Redis tests share: the server (or a clear skip), a key prefix per test, and
//! providers that record what they were given.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_core::{ExportError, ExportOutcome, ObservationKind, Provider, Trace, TraceId};
use redis::aio::MultiplexedConnection;

/// The server the tests use: `OPS_TEST_REDIS_URL`, else the local one.
pub fn url() -> String {
    std::env::var("OPS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A connection to the test server, or `None` after printing why the test is skipped.
pub async fn redis_or_skip(test: &str) -> Option<MultiplexedConnection> {
    let url = url();
    let attempt = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok::<_, redis::RedisError>(conn)
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Ok(conn)) => Some(conn),
        Ok(Err(e)) => {
            eprintln!(
                "SKIPPED {test}: no Redis answers at {url} ({e}); start one or set OPS_TEST_REDIS_URL"
            );
            None
        }
        Err(_) => {
            eprintln!(
                "SKIPPED {test}: no Redis answers at {url} within 3 s; start one or set OPS_TEST_REDIS_URL"
            );
            None
        }
    }
}

/// A key prefix no other test (or run) uses.
pub fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ops-test:{test}:{}:{nanos}", std::process::id())
}

/// Deletes every key under `prefix` (bounded: 100,000 keys at most).
pub async fn clean(conn: &mut MultiplexedConnection, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(conn)
        .await
        .unwrap_or_default();
    for chunk in keys.chunks(1000).take(100) {
        let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(conn).await;
    }
}

/// A trace of `app` whose name is `name` (tests find traces by name).
pub fn trace(app: &str, name: &str) -> Trace {
    let mut trace = Trace::new(
        TraceId::generate(),
        ObservationKind::Workflow,
        name,
        chrono::Utc::now(),
    );
    trace.attributes.app_id = Some(app.to_owned());
    trace
}

/// Waits until `done` holds, checking every 20 ms, for at most `limit`.
pub async fn wait_until(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done().await
}

/// A provider that records the names of the traces it accepts, in order, after `delay` a
/// batch.
#[derive(Clone, Default)]
pub struct Recorder {
    pub seen: Arc<Mutex<Vec<String>>>,
    pub delay: Duration,
}

impl Recorder {
    pub fn names(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[ops_core::async_trait]
impl Provider for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.seen
            .lock()
            .unwrap()
            .extend(batch.iter().map(|t| t.name.clone()));
        ExportOutcome::Delivered
    }
    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }
}

/// A provider that appends the names of the traces it accepts to a Redis list, so a test
/// sees what a worker in another process delivered.
pub struct ListRecorder {
    pub conn: MultiplexedConnection,
    pub list: String,
    pub delay: Duration,
}

#[ops_core::async_trait]
impl Provider for ListRecorder {
    fn name(&self) -> &str {
        "list-recorder"
    }
    async fn export(&mut self, batch: &[Arc<Trace>]) -> ExportOutcome {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let names: Vec<&str> = batch.iter().map(|t| t.name.as_str()).collect();
        match redis::cmd("RPUSH")
            .arg(&self.list)
            .arg(&names)
            .query_async::<()>(&mut self.conn)
            .await
        {
            Ok(()) => ExportOutcome::Delivered,
            Err(e) => ExportOutcome::retry(ExportError::new("list-recorder", e.to_string())),
        }
    }
    async fn api_check(&self) -> Result<(), ExportError> {
        Ok(())
    }
}

/// Writes `count` traces of `app` named `{tag}-{i}` straight to the app's stream, as the
/// sink would (pipelined).
pub async fn backlog(
    conn: &mut MultiplexedConnection,
    keys: &ops_redis::Keys,
    app: &str,
    tag: &str,
    count: usize,
) {
    let stream = keys.stream(app);
    for chunk_start in (0..count).step_by(1000) {
        let mut pipe = redis::pipe();
        for i in chunk_start..(chunk_start + 1000).min(count) {
            let fields =
                ops_redis::record::encode(Some(app), &trace(app, &format!("{tag}-{i}"))).unwrap();
            let cmd = pipe.cmd("XADD").arg(&stream).arg("*");
            for (name, value) in &fields {
                cmd.arg(*name).arg(value.as_slice());
            }
            cmd.ignore();
        }
        pipe.cmd("SADD").arg(keys.streams()).arg(&stream).ignore();
        pipe.query_async::<()>(conn).await.unwrap();
    }
}

/// A queue for a worker: batches of `batch` every 10 ms, to `provider`.
pub fn worker_queue(provider: impl Provider, batch: usize) -> ops_core::TraceQueueManager {
    ops_core::TraceQueueManager::builder()
        .interval(Duration::from_millis(10))
        .batch_size(batch)
        .provider(provider)
        .build()
        .unwrap()
}

/// A worker config for tests: short claim and poll times.
pub fn worker_config(prefix: &str, consumer: &str) -> ops_redis::WorkerConfig {
    ops_redis::WorkerConfig {
        prefix: prefix.to_owned(),
        consumer: consumer.to_owned(),
        claim_idle: Duration::from_millis(500),
        poll: Duration::from_millis(20),
        shutdown_timeout: Duration::from_secs(5),
        ..ops_redis::WorkerConfig::default()
    }
}

/// The host and port of the test server, from its URL.
pub fn redis_addr() -> String {
    let url = url();
    let rest = url.split("://").nth(1).unwrap_or("127.0.0.1:6379");
    let hostport = rest.split('/').next().unwrap_or(rest);
    hostport.rsplit('@').next().unwrap_or(hostport).to_owned()
}

/// A TCP proxy to the test server that can be taken down and brought back on the same port:
/// Redis "unreachable for a while".
pub struct Proxy {
    pub port: u16,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    /// A port with nothing listening yet (connections are refused until [`Proxy::up`]).
    pub async fn down_at_first() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        Self {
            port,
            tasks: Arc::default(),
        }
    }

    /// The URL of the proxy, with `auth` (`":password@"` or empty) in it.
    pub fn url(&self, auth: &str) -> String {
        format!("redis://{auth}127.0.0.1:{}/", self.port)
    }

    /// Starts forwarding.
    pub async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let tasks = Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(redis_addr()).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Stops forwarding: the port refuses connections and open ones are cut.
    pub fn down(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

/// The names of the traces in `app`'s stream, in order.
pub async fn names_in_stream(
    conn: &mut MultiplexedConnection,
    keys: &ops_redis::Keys,
    app: &str,
) -> Vec<String> {
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(keys.stream(app))
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    entries
        .ids
        .iter()
        .map(|e| {
            ops_redis::record::decode(|name| match e.map.get(name)? {
                redis::Value::BulkString(b) => Some(b.as_slice()),
                _ => None,
            })
            .unwrap()
            .trace
            .name
        })
        .collect()
}
