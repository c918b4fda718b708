//! schemathesis (PyPI) against the served OpenAPI document: a server on 127.0.0.1 with the
//! router nested under `/api/admin`, one configured app, and a short bounded run (15 examples
//! per operation, 40 s in all) checking every response against the document, that auth is
//! enforced, and that no answer is a server error. Skips, saying why, only when schemathesis
//! cannot be installed (no python3 or no network to PyPI).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{ACME, Env};
use ops_admin::Limits;
use ops_testkit::phoenix::{python3_available, run_script};

/// How long the first install may take.
const SETUP_LIMIT: Duration = Duration::from_secs(300);
/// How long the run may take (run.sh caps it at 40 s; start-up on top).
const RUN_LIMIT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure() {
    if !python3_available() {
        eprintln!("SKIPPED: python3 is not available, so schemathesis cannot be installed");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let work = tempfile::tempdir().unwrap();
    let setup = dir.join("setup.sh");
    let venv = match tokio::task::spawn_blocking({
        let work = work.path().to_owned();
        move || run_script(&setup, &[], &[], SETUP_LIMIT, &work)
    })
    .await
    .unwrap()
    {
        Ok(venv) => venv.trim().to_owned(),
        Err(why) => {
            eprintln!("SKIPPED: schemathesis cannot be installed from PyPI: {why}");
            return;
        }
    };

    let env = Env::new(200, Limits::default()).await;
    env.configured("app-1", ACME).await;
    let app = axum::Router::new().nest("/api/admin", ops_admin::router(env.state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/admin", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let args = vec![
        venv,
        base,
        ACME.to_owned(),
        work.path().display().to_string(),
    ];
    let run = dir.join("run.sh");
    let result = tokio::task::spawn_blocking({
        let work = work.path().to_owned();
        move || run_script(&run, &args, &[], RUN_LIMIT, &work)
    })
    .await
    .unwrap();
    server.abort();
    match result {
        Ok(out) => {
            eprintln!("{out}");
            assert!(out.contains("passed") || out.contains("PASSED"), "{out}");
        }
        Err(failure) => panic!("schemathesis found failures:\n{failure}"),
    }
}
