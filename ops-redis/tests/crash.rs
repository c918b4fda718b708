//! A worker killed mid-batch (`kill -9`) or stopped (`SIGTERM`), in a real process, against
//! the real Redis: another worker claims what it held; nothing is lost, and duplicates stay
//! within what it had in flight.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ops_redis::{Keys, Worker};
use support::*;

const CHILD_PREFIX_ENV: &str = "OPS_REDIS_TEST_CHILD_PREFIX";
/// What the child worker may hold unacknowledged: the bound on duplicates.
const CHILD_IN_FLIGHT: usize = 200;
const TRACES: usize = 3_000;

/// The worker the tests run in a child process (this test binary, run again). It does
/// nothing in a normal test run.
#[test]
#[ignore = "run by the crash tests in a child process"]
fn child_worker() {
    let Ok(prefix) = std::env::var(CHILD_PREFIX_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = redis::Client::open(url()).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        let queue = worker_queue(
            ListRecorder {
                conn,
                list: format!("{prefix}:delivered"),
                delay: Duration::from_millis(20),
            },
            50,
        );
        let config = ops_redis::WorkerConfig {
            max_in_flight: CHILD_IN_FLIGHT,
            read_count: 50,
            ..worker_config(&prefix, "child")
        };
        let worker = Worker::new(&url(), config, queue).unwrap();
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        let report = worker
            .run(async move {
                term.recv().await;
            })
            .await
            .unwrap();
        eprintln!("child worker stopped: {report:?}");
    });
}

fn spawn_child(prefix: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_worker", "--ignored", "--nocapture"])
        .env(CHILD_PREFIX_ENV, prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

async fn delivered(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(format!("{prefix}:delivered"))
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap()
}

/// Lost and duplicated traces among `delivered`, of the `TRACES` written.
fn tally(delivered: &[String]) -> (usize, usize) {
    let unique: std::collections::HashSet<&String> = delivered.iter().collect();
    let lost = (0..TRACES)
        .filter(|i| !unique.contains(&format!("t-{i}")))
        .count();
    (lost, delivered.len() - unique.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_nothing_and_duplicates_at_most_its_in_flight() {
    let Some(mut conn) = redis_or_skip("kill -9").await else {
        return;
    };
    let prefix = prefix("kill9");
    let keys = Keys::new(prefix.clone());
    backlog(&mut conn, &keys, "app-1", "t", TRACES).await;

    let mut child = spawn_child(&prefix);
    // Kill it mid-way: some delivered, most not.
    let started = wait_until(Duration::from_secs(60), async || {
        delivered(&mut conn, &prefix).await.len() >= 300
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(started, "the child worker delivered nothing within 60 s");
    let at_kill = delivered(&mut conn, &prefix).await.len();
    assert!(at_kill < TRACES, "killed too late to test anything");

    // A second worker claims what the dead one held.
    let client = redis::Client::open(url()).unwrap();
    let rescuer_conn = client.get_multiplexed_async_connection().await.unwrap();
    let queue = worker_queue(
        ListRecorder {
            conn: rescuer_conn,
            list: format!("{prefix}:delivered"),
            delay: Duration::ZERO,
        },
        100,
    );
    let worker = Worker::new(&url(), worker_config(&prefix, "rescuer"), queue).unwrap();
    let counters = worker.counters();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        let _ = stop_rx.await;
    }));
    let stream = keys.stream("app-1");
    let drained = wait_until(Duration::from_secs(90), async || {
        let len: usize = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut conn)
            .await
            .unwrap();
        len == 0 && tally(&delivered(&mut conn, &prefix).await).0 == 0
    })
    .await;
    let _ = stop_tx.send(());
    let report = running.await.unwrap().unwrap();
    let all = delivered(&mut conn, &prefix).await;
    let (lost, duplicates) = tally(&all);
    eprintln!(
        "kill -9: {TRACES} traces, {at_kill} delivered before the kill, {lost} lost, \
         {duplicates} duplicates (bound {CHILD_IN_FLIGHT}), {} claimed by the rescuer",
        counters.claimed()
    );
    assert!(
        drained,
        "the stream was not drained within 90 s: {report:?}"
    );
    assert_eq!(lost, 0);
    assert!(
        duplicates <= CHILD_IN_FLIGHT,
        "{duplicates} duplicates, more than the {CHILD_IN_FLIGHT} the killed worker held"
    );
    assert!(
        counters.claimed() > 0,
        "nothing was claimed from the killed worker"
    );
    clean(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_with_sigterm_acknowledges_what_it_delivered_and_leaves_no_duplicates() {
    let Some(mut conn) = redis_or_skip("SIGTERM").await else {
        return;
    };
    let prefix = prefix("sigterm");
    let keys = Keys::new(prefix.clone());
    backlog(&mut conn, &keys, "app-1", "t", TRACES).await;

    let mut child = spawn_child(&prefix);
    let started = wait_until(Duration::from_secs(60), async || {
        delivered(&mut conn, &prefix).await.len() >= 300
    })
    .await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    // Its deadline is 5 s; give it 30 to exit.
    let mut exited = None;
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if exited.is_none() {
        child.kill().unwrap();
    }
    assert!(started, "the child worker delivered nothing within 60 s");
    let status = exited.expect("the worker did not exit within 30 s of SIGTERM");
    assert!(status.success(), "the worker exited with {status}");

    // Nothing it took is left pending: every entry it read was delivered and acknowledged.
    let pending: (u64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING")
        .arg(keys.stream("app-1"))
        .arg(ops_redis::keys::DEFAULT_GROUP)
        .query_async(&mut conn)
        .await
        .unwrap();
    let all = delivered(&mut conn, &prefix).await;
    let left: usize = redis::cmd("XLEN")
        .arg(keys.stream("app-1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let unique: std::collections::HashSet<&String> = all.iter().collect();
    eprintln!(
        "SIGTERM: {} delivered, {} unique, {} pending after exit, {left} left in the stream",
        all.len(),
        unique.len(),
        pending.0
    );
    assert_eq!(pending.0, 0, "entries left unacknowledged after SIGTERM");
    assert_eq!(all.len(), unique.len(), "a stopped worker delivered twice");
    assert_eq!(
        unique.len() + left,
        TRACES,
        "delivered and left do not add up"
    );
    clean(&mut conn, &prefix).await;
}
