//! The viewer in a real browser: headless Chromium (driven through chromedriver) opens the
//! list, sees a new trace arrive live, clicks a trace, and checks the tree, the totals and a rendered chat message, then
//! saves a screenshot (`$CARGO_TARGET_TMPDIR/viewer.png`; also `docs/viewer.png` with
//! `OPS_UPDATE_SCREENSHOT=1`). Skips, saying why, only when Chromium or chromedriver is
//! missing (`.ci/run` installs both).

mod common;

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{chat_trace, store_with};
use fantoccini::{ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_opens_a_trace_and_sees_tree_totals_and_chat() {
    if !Path::new(CHROMIUM).exists() || !Path::new(DRIVER).exists() {
        eprintln!(
            "SKIPPED: {CHROMIUM} or {DRIVER} is missing; install them with \
             `apt-get install -y chromium chromium-driver` (.ci/run does)"
        );
        return;
    }
    let (_dir, store) = store_with(&[
        chat_trace("run-1", 1, "Pack light: a linen shirt."),
        chat_trace(
            "run-2",
            2,
            "Pack light: sunscreen, a hat and a linen shirt.",
        ),
    ])
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ops_viewer::serve(
        listener,
        ops_viewer::router(store.clone(), None, ops_viewer::HostPolicy::Loopback),
        async move {
            let _ = stopped.await;
        },
    ));

    let port = free_port();
    let mut driver = tokio::process::Command::new(DRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1400,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    // chromedriver takes a moment to listen: bounded retries.
    let mut client = None;
    for _ in 0..50 {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let c = client.expect("a WebDriver session within 5 s");
    let result = async {
        c.goto(&format!("{base}/")).await?;
        let rows = c.find_all(Locator::Css("tr.trace-row")).await?;
        assert_eq!(rows.len(), 2, "both traces listed");
        // Live: a trace stored now appears without a reload.
        store
            .insert([&chat_trace("run-3", 3, "Pack nothing.")])
            .await
            .unwrap();
        c.wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css("tr.trace-row.live-new[data-id='run-3']"))
            .await?;
        assert_eq!(c.find(Locator::Css("#total")).await?.text().await?, "3");
        // Click the older run's row (not its link): the script opens the trace.
        let row = c
            .find(Locator::Css(
                "tr.trace-row[data-id='run-1'] td:nth-child(3)",
            ))
            .await?;
        row.click().await?;
        c.wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css("#tree"))
            .await?;
        assert!(c.current_url().await?.as_str().ends_with("/traces/run-1"));
        let tree = c.find_all(Locator::Css("#tree tr.obs-row")).await?;
        assert_eq!(tree.len(), 6, "one tree row per observation");
        let names: Vec<String> = {
            let mut v = Vec::new();
            for r in &tree {
                v.push(r.find(Locator::Css("td.obs-name")).await?.text().await?);
            }
            v
        };
        assert!(
            names[0].ends_with("answer") && names[1].ends_with("run_workflow"),
            "{names:?}"
        );
        assert_eq!(
            c.find(Locator::Css("#total-tokens")).await?.text().await?,
            "800"
        );
        assert_eq!(
            c.find(Locator::Css("#total-cost")).await?.text().await?,
            "$0.000182"
        );
        // Select the LLM call: its panel shows the conversation.
        let llm = names
            .iter()
            .position(|n| n.ends_with("complete"))
            .expect("the complete row");
        tree[llm].click().await?;
        let user = c
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(
                "section.obs-detail:not([hidden]) .msg.role-user .content",
            ))
            .await?;
        let text = user.text().await?;
        assert!(text.starts_with("What should I pack?"), "{text}");
        assert!(
            text.contains("<script>"),
            "hostile text shown as text: {text}"
        );
        let tool = c
            .find(Locator::Css(
                "section.obs-detail:not([hidden]) .tool-call .tool-name",
            ))
            .await?
            .text()
            .await?;
        assert_eq!(tool, "→ get_weather");
        // No script from the trace ran: the page's title is still ours.
        assert_eq!(c.title().await?, "answer · ops");
        let png = c.screenshot().await?;
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer.png");
        std::fs::write(&out, &png).unwrap();
        eprintln!("screenshot: {}", out.display());
        if std::env::var_os("OPS_UPDATE_SCREENSHOT").is_some() {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/viewer.png");
            std::fs::write(&docs, &png).unwrap();
        }
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = c.close().await;
    let _ = driver.kill().await;
    let _ = stop.send(());
    let _ = server.await;
    result.expect("the browser steps");
}
