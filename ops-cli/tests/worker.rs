//! `ops worker` end to end against the real Redis (127.0.0.1:6379, or
//! `OPS_TEST_REDIS_URL`): a worker process routes each app's traces to the providers its
//! stored config enables, `ops worker stats` shows its figures, SIGTERM stops it cleanly, and
//! the dead-letter stream can be listed and replayed. Skipped, saying so, when no Redis
//! answers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn redis_url() -> String {
    std::env::var("OPS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn ops(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("ops"));
    cmd.env_clear()
        .env("OPS_CONFIG_DB", dir.join("config.db"))
        .env("OPS_ENCRYPTION_KEY", KEY)
        .env("OPS_TRACE_REDIS_URL", redis_url());
    cmd
}

fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[test]
fn ops_worker_delivers_by_the_stored_config_reports_stats_stops_on_sigterm_and_replays_dead_letters()
 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = redis_url();
    let conn = rt.block_on(async {
        let client = redis::Client::open(url.as_str()).ok()?;
        tokio::time::timeout(
            Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        .ok()?
        .ok()
    });
    let Some(mut conn) = conn else {
        eprintln!(
            "SKIPPED ops worker: no Redis answers at {url}; start one or set OPS_TEST_REDIS_URL"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("ops-test:cli:{}", std::process::id());
    let keys = ops_redis::Keys::new(prefix.clone());
    let out = dir.path().join("traces.jsonl");
    let (code, _, err) = output(ops(dir.path()).args([
        "config",
        "set",
        "--app",
        "app-f",
        "--provider",
        "file",
        "--set",
        &format!("file={}", out.display()),
        "--enable",
    ]));
    assert_eq!(code, 0, "{err}");

    // 20 traces of app-f as an app writes them, and one that is not a record.
    rt.block_on(async {
        let stream = keys.stream("app-f");
        for i in 0..20 {
            let mut trace = ops_core::Trace::new(
                ops_core::TraceId::generate(),
                ops_core::ObservationKind::Workflow,
                format!("t-{i}"),
                chrono::Utc::now(),
            );
            trace.attributes.app_id = Some("app-f".into());
            let fields = ops_redis::record::encode(Some("app-f"), &trace).unwrap();
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&stream).arg("*");
            for (name, value) in &fields {
                cmd.arg(*name).arg(value.as_slice());
            }
            cmd.query_async::<String>(&mut conn).await.unwrap();
        }
        redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("v")
            .arg("1")
            .arg("app")
            .arg("app-f")
            .arg("trace")
            .arg("{broken")
            .query_async::<String>(&mut conn)
            .await
            .unwrap();
        redis::cmd("SADD")
            .arg(keys.streams())
            .arg(&stream)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    });

    let mut worker = ops(dir.path())
        .args(["worker", "--prefix", &prefix, "--consumer", "cli-1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let delivered = wait_for(Duration::from_secs(60), || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.lines().count() >= 20)
    });
    let mut stats = String::new();
    let published = wait_for(Duration::from_secs(30), || {
        let (_, stdout, _) = output(ops(dir.path()).args(["worker", "stats", "--prefix", &prefix]));
        stats = stdout;
        stats.contains("acked: 20")
    });
    let (_, json, _) =
        output(ops(dir.path()).args(["worker", "stats", "--prefix", &prefix, "--json"]));
    let term = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    let stopped = wait_for(Duration::from_secs(30), || {
        worker.try_wait().unwrap().is_some()
    });
    if !stopped {
        worker.kill().unwrap();
    }
    let status = worker.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(worker.stderr.as_mut().unwrap(), &mut log).unwrap();

    assert!(
        delivered,
        "the worker did not deliver 20 traces within 60 s: {log}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 20, "{text}");
    assert!(
        published,
        "`ops worker stats` never showed 20 acknowledged: {stats}"
    );
    assert!(stats.contains("provider app-f/file"), "{stats}");
    assert!(
        stats.contains("dead-lettered entries waiting: 1"),
        "{stats}"
    );
    let json: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(json["workers"]["cli-1"]["acked"], 20, "{json}");
    assert_eq!(json["dead_letters"], 1, "{json}");
    assert!(
        term.success() && stopped,
        "SIGTERM did not stop the worker within 30 s: {log}"
    );
    assert!(status.success(), "the worker exited with {status}: {log}");
    assert!(
        log.contains("stopped; 20 acknowledged, 1 dead-lettered"),
        "{log}"
    );

    let (code, list, err) =
        output(ops(dir.path()).args(["worker", "dead-letter", "list", "--prefix", &prefix]));
    assert_eq!(code, 0, "{err}");
    assert!(
        list.contains("undecodable record") && list.contains("app=app-f"),
        "{list}"
    );
    assert!(list.contains("1 dead-lettered entries shown"), "{list}");
    let (code, replay, err) =
        output(ops(dir.path()).args(["worker", "dead-letter", "replay", "--prefix", &prefix]));
    assert_eq!(code, 0, "{err}");
    assert!(replay.contains("replayed 1 entries"), "{replay}");
    let (_, list, _) =
        output(ops(dir.path()).args(["worker", "dead-letter", "list", "--prefix", &prefix]));
    assert!(list.contains("0 dead-lettered entries shown"), "{list}");

    // No Redis configured: a usage error that says what to set.
    let (code, _, err) = output(
        ops(dir.path())
            .env_remove("OPS_TRACE_REDIS_URL")
            .args(["worker", "stats"]),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("OPS_TRACE_REDIS_URL"), "{err}");

    rt.block_on(async {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut conn)
                .await
                .unwrap();
        }
    });
}
