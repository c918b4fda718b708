//! `connect_from_env`: an error about the database names the variable that named it. Runs
//! in a child process (this test binary) with only the variables given.

use ops_config::StoreError;
use ops_config::store;

const CHILD: &str = "OPS_CONFIG_ENV_DATABASE_CHILD";

/// Runs `connect_from_env` in a child process; does nothing in a normal test run.
#[test]
fn env_database_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = match rt.block_on(store::connect_from_env()) {
        Ok(_) => "OK".to_owned(),
        Err(e) => format!("ERROR {e}"),
    };
    println!("\nRESULT {result}");
}

fn connect_with(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["env_database_child", "--exact", "--nocapture"])
        .current_dir(dir.path())
        .env_clear()
        .env(CHILD, "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "no result: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned()
}

#[test]
fn errors_name_the_variable_of_the_database() {
    let got = connect_with(&[("OPS_CONFIG_DATABASE_URL", "::::")]);
    assert!(
        got.starts_with("ERROR environment variable OPS_CONFIG_DATABASE_URL: config database URL"),
        "{got}"
    );
    let got = connect_with(&[("OPS_CONFIG_DATABASE_URL", "postgres:/typo@127.0.0.1/test")]);
    assert!(
        got.starts_with("ERROR environment variable OPS_CONFIG_DATABASE_URL: ")
            && got.contains("postgres://"),
        "{got}"
    );
    let long = "x/".repeat(40_000);
    let got = connect_with(&[("OPS_CONFIG_DB", &long)]);
    assert!(
        got.starts_with("ERROR environment variable OPS_CONFIG_DB: "),
        "{}",
        &got[..got.len().min(300)]
    );
    assert_eq!(connect_with(&[("OPS_CONFIG_DB", "c.db")]), "OK");
}

#[test]
fn the_wrapped_error_keeps_its_kind() {
    let inner = StoreError::NotFound { url: "x.db".into() };
    let e = inner.clone().from_var(Some("OPS_CONFIG_DB"));
    assert_eq!(e.root(), &inner);
    assert!(
        e.to_string()
            .starts_with("environment variable OPS_CONFIG_DB: config database")
    );
    assert_eq!(
        inner.clone().from_var(None),
        inner,
        "no variable, no wrapping"
    );
    assert_eq!(e.clone().from_var(Some("OTHER")), e, "wrapped once");
}
