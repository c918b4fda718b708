//! `ops serve`: the local trace viewer over the local trace store.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::{Failure, exit};

/// `ops serve` options.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on. The default is loopback only; any other address serves
    /// your traces to whoever can reach it.
    #[arg(long, default_value = ops_viewer::DEFAULT_ADDR, value_name = "IP:PORT")]
    addr: SocketAddr,
    /// The trace store file [default: $OPS_TRACE_DB, else ops-traces.db]; created if
    /// missing.
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Import this JSON-lines file (what the `file` provider writes) before serving.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

/// Opens the store, imports `--file`, and serves until SIGTERM or Ctrl-C.
pub(crate) async fn run(args: &ServeArgs) -> Result<(), Failure> {
    let path = args.db.clone().unwrap_or_else(ops_store::default_path);
    let store = ops_store::TraceStore::open(&path, ops_store::Retention::default())
        .await
        .map_err(|e| Failure::new(exit::STORE, e.to_string()))?;
    if let Some(file) = &args.file {
        let report = store.import_jsonl(file).await.map_err(|e| match e {
            ops_store::StoreError::Read { .. } => Failure::new(exit::NOT_FOUND, e.to_string()),
            other => Failure::new(exit::STORE, other.to_string()),
        })?;
        println!(
            "imported {} traces from {} ({} lines rejected)",
            report.imported,
            file.display(),
            report.rejected_total
        );
        for (line, why) in &report.rejected {
            eprintln!("  line {line}: {why}");
        }
    }
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| {
            Failure::new(
                exit::OTHER,
                format!("cannot listen on {}: {e}; pick another --addr", args.addr),
            )
        })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::new(exit::OTHER, format!("cannot read the bound address: {e}")))?;
    if !bound.ip().is_loopback() {
        eprintln!("warning: serving on {bound}: anyone who can reach it can read your traces");
    }
    println!("ops serve: http://{bound}/ (store {})", path.display());
    // The admin HTTP API (issue 17, part 3) is mounted here once it exists: pass its Router
    // instead of `None`.
    let hosts = if bound.ip().is_loopback() {
        ops_viewer::HostPolicy::Loopback
    } else {
        ops_viewer::HostPolicy::Any
    };
    let app = ops_viewer::router(store, None, hosts);
    let stop = crate::worker::stop_signal()?;
    ops_viewer::serve(listener, app, stop)
        .await
        .map_err(|e| Failure::new(exit::OTHER, format!("the server failed: {e}")))
}
