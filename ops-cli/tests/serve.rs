//! `ops serve`: imports a JSON-lines file, serves the viewer on loopback, and fails clearly
//! on a missing file or a bad address; `ops providers` lists the `local` store.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const OPS: &str = env!("CARGO_BIN_EXE_ops");

fn trace_line(id: &str) -> String {
    serde_json::json!({
        "id": id,
        "name": "answer",
        "kind": "message",
        "start_time": "2026-12-06T10:00:00Z",
        "end_time": "2026-12-06T10:00:01Z",
        "attributes": { "user_id": "traveller-42" },
        "observations": [{
            "id": "0193a8a0-0000-7000-8000-000000000001",
            "name": "complete",
            "kind": "generation",
            "start_time": "2026-12-06T10:00:00Z",
            "input": [{ "role": "user", "content": "What should I pack?" }],
            "usage": { "input": 612, "output": 148 }
        }]
    })
    .to_string()
}

/// A GET over loopback, bounded by socket timeouts.
fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_imports_a_file_and_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("traces.jsonl");
    std::fs::write(
        &file,
        format!(
            "{}\nnot json\n{}\n",
            trace_line("run-1"),
            trace_line("run-2")
        ),
    )
    .unwrap();
    let db = dir.path().join("store.db");
    let mut child = Command::new(OPS)
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--file")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let imported = lines.next().unwrap().unwrap();
    assert_eq!(
        imported,
        format!(
            "imported 2 traces from {} (1 lines rejected)",
            file.display()
        )
    );
    let serving = lines.next().unwrap().unwrap();
    let addr = serving
        .strip_prefix("ops serve: http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected: {serving}"))
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "loopback: {addr}");

    let list = http_get(&addr, "/");
    let detail = http_get(&addr, "/traces/run-1");
    let missing = http_get(&addr, "/traces/nope");
    child.kill().unwrap();
    let _ = child.wait();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();

    assert!(list.starts_with("HTTP/1.1 200"), "{list}");
    assert!(
        list.contains("/traces/run-1") && list.contains("/traces/run-2"),
        "{list}"
    );
    assert!(
        detail.contains("id=\"total-tokens\">760<") && detail.contains("msg role-user"),
        "{detail}"
    );
    assert!(
        missing.starts_with("HTTP/1.1 404") && missing.contains("{\"error\":\"no trace"),
        "{missing}"
    );
    assert!(
        stderr.contains("line 2: not a trace"),
        "the bad line is named: {stderr}"
    );
    assert!(db.exists(), "the store file is where --db says");
}

#[test]
fn serve_fails_clearly_on_a_missing_file_or_a_bad_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(OPS)
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("s.db"))
        .arg("--file")
        .arg(dir.path().join("nope.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("nope.jsonl"),
        "{stderr}"
    );

    let out = Command::new(OPS)
        .args(["serve", "--addr", "localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--addr"));
}

#[test]
fn providers_lists_the_local_store() {
    let out = Command::new(OPS).arg("providers").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("local (Local trace store (ops serve))"),
        "{text}"
    );
    assert!(
        text.contains("path           optional, default ops-traces.db"),
        "{text}"
    );
}

/// SIGTERM stops `ops serve` within its grace period even with a live-update stream open.
#[cfg(unix)]
#[test]
fn sigterm_stops_serve_with_a_live_stream_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(OPS)
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("s.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let serving = lines.next().unwrap().unwrap();
    let addr = serving
        .strip_prefix("ops serve: http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).unwrap();
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head[..n])
    );

    let started = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(15) {
            child.kill().unwrap();
            panic!("ops serve did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// A GET with a bearer token over loopback, bounded by socket timeouts.
fn http_get_with(addr: &str, path: &str, token: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_mounts_the_admin_api_when_tokens_are_set() {
    const TOKEN: &str = "admin-token-for-the-serve-test-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(OPS)
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("store.db"))
        .arg("--database")
        .arg(dir.path().join("config.db"))
        .env(
            "OPS_ENCRYPTION_KEY",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        )
        .env("OPS_ADMIN_TOKENS", format!("admin={TOKEN}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let serving = lines.next().unwrap().unwrap();
    let addr = serving
        .strip_prefix("ops serve: http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected: {serving}"))
        .to_owned();
    let announced = lines.next().unwrap().unwrap();
    let with_token = http_get_with(&addr, "/api/admin/providers", Some(TOKEN));
    let without = http_get_with(&addr, "/api/admin/providers", None);
    let viewer = http_get_with(&addr, "/", None);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(announced.contains("/api/admin"), "{announced}");
    assert!(!announced.contains(TOKEN), "{announced}");
    assert!(with_token.starts_with("HTTP/1.1 200"), "{with_token}");
    assert!(with_token.contains("langfuse"), "{with_token}");
    assert!(without.starts_with("HTTP/1.1 401"), "{without}");
    assert!(
        viewer.starts_with("HTTP/1.1 200"),
        "the viewer still serves: {viewer}"
    );
}
