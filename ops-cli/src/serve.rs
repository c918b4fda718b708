//! `ops serve`: the local trace viewer over the local trace store.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use std::sync::Arc;

use crate::{Cli, Failure, exit};

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

/// The admin HTTP API over the CLI's config database, when `OPS_ADMIN_TOKENS` names tokens;
/// `None` (the viewer alone) otherwise.
async fn admin_api(cli: &Cli) -> Result<Option<axum::Router>, Failure> {
    let tokens =
        ops_admin::Tokens::from_env().map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let manager = crate::commands::manager(cli, crate::commands::Open::Create).await?;
    let state = ops_admin::AdminState::new(Arc::new(manager), tokens);
    Ok(Some(ops_admin::router(state)))
}

/// Opens the store, imports `--file`, and serves until SIGTERM or Ctrl-C; with
/// `OPS_ADMIN_TOKENS` set, the admin API too, under `/api/admin`.
pub(crate) async fn run(cli: &Cli, args: &ServeArgs) -> Result<(), Failure> {
    let admin = admin_api(cli).await?;
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
    let hosts = if bound.ip().is_loopback() {
        ops_viewer::HostPolicy::Loopback
    } else {
        ops_viewer::HostPolicy::Any
    };
    if admin.is_some() {
        println!(
            "ops serve: admin API at http://{bound}/api/admin (bearer tokens from OPS_ADMIN_TOKENS)"
        );
    }
    let app = ops_viewer::router(store, admin, hosts);
    let stop = crate::worker::stop_signal()?;
    ops_viewer::serve(listener, app, stop)
        .await
        .map_err(|e| Failure::new(exit::OTHER, format!("the server failed: {e}")))
}
