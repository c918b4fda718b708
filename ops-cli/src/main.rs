//! `ops`: configure per-app LLM tracing from the command line.
//!
//! Provider configs live in the config database (`OPS_CONFIG_DATABASE_URL`, or the SQLite file
//! `OPS_CONFIG_DB`, default `./ops-config.db`) with their secrets encrypted under the master
//! key (`OPS_ENCRYPTION_KEY` or `OPS_ENCRYPTION_KEY_FILE`). Secrets are read from the
//! environment (`OPS_SECRET_<KEY>`) or stdin, never from the command line, and are only ever
//! printed obfuscated. See `ops --help` for the commands and exit codes.

mod commands;
mod input;
mod serve;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Exit codes, as documented in `ops --help`.
pub(crate) mod exit {
    /// Success.
    pub(crate) const OK: u8 = 0;
    /// Anything else (reading stdin failed, the runtime could not start, ...).
    pub(crate) const OTHER: u8 = 1;
    /// Bad command line (clap's own code too), including a secret passed on argv, an
    /// environment variable that is not UTF-8, and stdin that is too large or not text.
    pub(crate) const USAGE: u8 = 2;
    /// Invalid config: unknown provider or key, a field that does not validate, a masked
    /// secret with nothing stored, an id that is not usable, another tenant's app (read or
    /// written).
    pub(crate) const INVALID: u8 = 3;
    /// Not found: no such config, no enabled provider, tracing off for the app, no config
    /// database (commands other than `config set` never create one).
    pub(crate) const NOT_FOUND: u8 = 4;
    /// A provider rejected the credentials or the test trace, or did not answer.
    pub(crate) const PROVIDER: u8 = 5;
    /// The encryption key is missing or malformed, or a secret does not decrypt with it.
    pub(crate) const KEY: u8 = 6;
    /// The config database failed (unreachable, migration, concurrent change).
    pub(crate) const STORE: u8 = 7;
}

/// The exit-code table, shown in the help of `ops` and of every subcommand (see
/// [`with_exit_codes`]); the CLI tests check each line against the code.
macro_rules! exit_codes {
    () => {
        "  0  success
  1  other failure: reading stdin failed (an I/O error), the runtime could not start
  2  bad command line, including a secret given on the command line, an environment
     variable that is not UTF-8, and --stdin input that is over 64 KiB, not text, or
     not KEY=VALUE lines / a JSON object of strings (malformed)
  3  invalid config: unknown provider or key, invalid value, a required key missing,
     masked secret with nothing stored, an app or tenant id outside the allowed
     characters (ASCII letters, digits, _ - and ., starting with a letter or a digit),
     app owned by another tenant
  4  not found: no such config, no enabled provider, tracing is off for the app, no
     config database
  5  a provider rejected the credentials or the test trace, or did not answer
  6  encryption key missing, malformed or not UTF-8, or a secret does not decrypt with it
  7  config database error: a URL that is not a file path, sqlite:<path> or
     postgres://... (mysql://... too), unreachable, migration, concurrent change"
    };
}

const AFTER_HELP: &str = concat!(
    "\
Environment:
  OPS_CONFIG_DATABASE_URL  config database: postgres://user@host/db, sqlite://<path>
  OPS_CONFIG_DB            SQLite file used when no URL is set (default ./ops-config.db)
  OPS_ENCRYPTION_KEY       master key(s): 64 hex digits or base64 of 32 bytes; several as
                           `<version>:<key>` separated by commas or spaces (`ops keygen`)
  OPS_ENCRYPTION_KEY_FILE  a file holding the master key(s) instead (one per line)
  OPS_TENANT               the tenant owning the apps (default: default)
  OPS_SECRET_<KEY>         a secret for `ops config set`, e.g. OPS_SECRET_SECRET_KEY
  RUST_LOG                 log filter for stderr, e.g. debug or ops_config=debug,info
                           (-v, -vv, -vvv without it); never logs a secret

Tenants: every command acts on the apps of --tenant / $OPS_TENANT only; naming an app of
another tenant is an error (exit 3), for reads as for writes.

Database: only `config set` creates the database file; the other commands report a missing
one (exit 4). A URL that is neither a file path, sqlite:<path> nor postgres://... is an error.

Exit codes:
",
    exit_codes!()
);

/// The help's tail for every subcommand: the exit codes.
const SUBCOMMAND_AFTER_HELP: &str = concat!("Exit codes:\n", exit_codes!());

/// `command` with the exit-code table at the end of the help of each of its subcommands, at
/// any depth (`ops config set --help` too).
fn with_exit_codes(command: clap::Command) -> clap::Command {
    command.mut_subcommands(|sub| with_exit_codes(sub.after_help(SUBCOMMAND_AFTER_HELP)))
}

/// Configure per-app LLM tracing: provider configs with encrypted secrets, credential
/// checks, test traces and key rotation.
#[derive(Debug, Parser)]
#[command(name = "ops", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Config database: `postgres://...`, `sqlite://<path>` or a SQLite file path
    /// [default: $OPS_CONFIG_DATABASE_URL, else $OPS_CONFIG_DB, else ./ops-config.db]
    // The variables are read by `ops_config::store::database_from_env`, and errors name them
    // (clap's do not).
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,

    /// The tenant (workspace) that owns the apps; its derived key encrypts their secrets
    /// [default: $OPS_TENANT, else `default`].
    #[arg(long, global = true)]
    tenant: Option<String>,

    /// Whether the tenant came from `$OPS_TENANT`.
    #[arg(skip)]
    tenant_from_env: bool,

    /// A file holding the master key(s), instead of $OPS_ENCRYPTION_KEY.
    // `hide_env_values`: the help names the variable (`[env: OPS_ENCRYPTION_KEY_FILE]`) and
    // never shows an empty `=` (or the value) after it.
    #[arg(
        long,
        global = true,
        env = "OPS_ENCRYPTION_KEY_FILE",
        hide_env_values = true,
        value_name = "PATH"
    )]
    key_file: Option<PathBuf>,

    /// Log what `ops` does to stderr: -v info, -vv debug, -vvv trace. `RUST_LOG` (e.g.
    /// `ops_config=debug,info`) sets the filter instead.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the registered providers and their config keys.
    Providers {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create, show or delete an app's provider config.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Turn tracing on for an app, or add one of its configured providers (which also turns
    /// the app on).
    Enable(Target),
    /// Turn tracing off for an app (its providers are kept), or take one provider out.
    Disable(Target),
    /// Check the stored credentials of an app's providers against their APIs and print each
    /// project URL.
    Check(CheckArgs),
    /// Send a sample chatflow trace through the app's enabled providers and print where to
    /// see it.
    SendTest(SendTestArgs),
    /// Re-encrypt every stored secret under the newest key version.
    ///
    /// Add the new key as a higher version next to the old one (`2:<key>`), run this, then
    /// remove the old version. With --generate, a new version is appended to the key file
    /// first.
    RotateKey {
        /// Append a new random key version to the key file (--key-file or
        /// $OPS_ENCRYPTION_KEY_FILE) before re-encrypting.
        #[arg(long)]
        generate: bool,
    },
    /// Deliver the traces apps write to Redis (`OPS_TRACE_REDIS_URL`): run any number of
    /// workers, on any machines, against one Redis and one config database.
    ///
    /// Without a subcommand, runs a worker until SIGTERM or Ctrl-C, then finishes what it
    /// holds within --shutdown-timeout. `stats` shows the backlog and the workers' figures;
    /// `dead-letter` lists or replays the entries given up on.
    Worker(worker::WorkerArgs),
    /// Browse the traces in the local trace store (the `local` provider's file) in a web
    /// page: list, tree and waterfall, chat view, sessions, compare, live updates.
    ///
    /// Binds 127.0.0.1:7411 unless --addr says otherwise. With --file, a JSON-lines file
    /// (what the `file` provider writes) is imported first. Runs until SIGTERM or Ctrl-C.
    Serve(serve::ServeArgs),
    /// Print a new random master key, for $OPS_ENCRYPTION_KEY or a key file.
    Keygen {
        /// Print it as `<version>:<key>` with this version.
        #[arg(long, value_name = "N")]
        key_version: Option<u32>,
    },
}

impl Command {
    /// The command's name as typed, for the log.
    fn name(&self) -> &'static str {
        match self {
            Command::Providers { .. } => "providers",
            Command::Config(ConfigCommand::Set(_)) => "config set",
            Command::Config(ConfigCommand::Show(_)) => "config show",
            Command::Config(ConfigCommand::Delete(_)) => "config delete",
            Command::Enable(_) => "enable",
            Command::Disable(_) => "disable",
            Command::Check(_) => "check",
            Command::SendTest(_) => "send-test",
            Command::RotateKey { .. } => "rotate-key",
            Command::Keygen { .. } => "keygen",
            Command::Worker(w) => w.name(),
            Command::Serve(_) => "serve",
        }
    }

    /// The app the command acts on, if it names one.
    fn app(&self) -> Option<&str> {
        match self {
            Command::Config(ConfigCommand::Set(a)) => Some(&a.target.app),
            Command::Config(ConfigCommand::Show(a)) => Some(&a.app),
            Command::Config(ConfigCommand::Delete(a)) => Some(&a.app),
            Command::Enable(t) | Command::Disable(t) => Some(&t.app),
            Command::Check(a) => Some(&a.app),
            Command::SendTest(a) => Some(&a.app),
            Command::Providers { .. }
            | Command::RotateKey { .. }
            | Command::Keygen { .. }
            | Command::Worker(_)
            | Command::Serve(_) => None,
        }
    }
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Create or update an app's provider config; the credentials are checked before saving.
    ///
    /// Plain keys come from --set KEY=VALUE. Secret keys are never taken from the command
    /// line: set `OPS_SECRET_<KEY>` (e.g. OPS_SECRET_SECRET_KEY) or pass --stdin and write
    /// KEY=VALUE lines (or a JSON object) to stdin. Keys left out keep their stored values; a
    /// secret sent in its obfuscated form (as `ops config show` prints it) keeps the stored
    /// secret.
    Set(SetArgs),
    /// Show an app's tracing state and provider configs, secrets obfuscated.
    Show(ShowArgs),
    /// Delete an app's provider config.
    Delete(ProviderTarget),
}

#[derive(Debug, Args)]
struct Target {
    /// The app.
    #[arg(long)]
    app: String,
    /// One provider of the app instead of the whole app.
    #[arg(long)]
    provider: Option<String>,
}

#[derive(Debug, Args)]
struct ProviderTarget {
    /// The app.
    #[arg(long)]
    app: String,
    /// The provider, e.g. langfuse (see `ops providers`).
    #[arg(long)]
    provider: String,
}

#[derive(Debug, Args)]
struct SetArgs {
    #[command(flatten)]
    target: ProviderTarget,
    /// Set a plain (non-secret) key.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Clear a key (plain or secret).
    #[arg(long, value_name = "KEY")]
    unset: Vec<String>,
    /// Read KEY=VALUE lines (or a JSON object of strings) from stdin; secrets included.
    #[arg(long)]
    stdin: bool,
    /// Save without checking the credentials.
    #[arg(long)]
    no_check: bool,
    /// Also add the provider to the app's providers and turn tracing on.
    #[arg(long)]
    enable: bool,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The app.
    #[arg(long)]
    app: String,
    /// Only this provider.
    #[arg(long)]
    provider: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The app.
    #[arg(long)]
    app: String,
    /// Only this provider (default: every configured provider of the app).
    #[arg(long)]
    provider: Option<String>,
}

#[derive(Debug, Args)]
struct SendTestArgs {
    /// The app.
    #[arg(long)]
    app: String,
    /// Only this one of the app's enabled providers.
    #[arg(long)]
    provider: Option<String>,
    /// Seconds to wait for each provider (1 to 3600).
    #[arg(
        long,
        default_value_t = 30,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    timeout: u64,
}

/// A failed command: the exit code and what to tell the user.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Cli {
    /// The tenant: --tenant, else $OPS_TENANT (resolved by [`Cli::resolve_env`]), else
    /// `default`.
    pub(crate) fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or("default")
    }

    /// Fills in what the environment gives, with errors that name the variable.
    pub(crate) fn resolve_env(&mut self) -> Result<(), Failure> {
        if self.tenant.is_none() {
            self.tenant = ops_core::env::non_blank("OPS_TENANT")
                .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
            self.tenant_from_env = self.tenant.is_some();
        }
        Ok(())
    }

    /// Checks the tenant and the app against the id charset (`ops_config::ID_CHARSET`)
    /// before anything is opened: `../../etc` or an id with spaces is exit 3, naming the id,
    /// and where it came from for `$OPS_TENANT`.
    pub(crate) fn validate_ids(&self) -> Result<(), Failure> {
        let Some(app) = self.command.app() else {
            return Ok(());
        };
        if let Err(e) = ops_config::validate_tenant_id(self.tenant()) {
            let mut failure = Failure::from(e);
            if self.tenant_from_env {
                failure.message.push_str(" (from $OPS_TENANT)");
            }
            return Err(failure);
        }
        ops_config::validate_app_id(app)?;
        Ok(())
    }
}

/// The logger: events at or above the level `-v` asks for (warnings by default), or the filter
/// `RUST_LOG` gives (a bad one is a usage error naming it), written to stderr.
fn install_logger(verbose: u8) -> Result<(), Failure> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = match ops_core::env::non_blank("RUST_LOG")
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?
    {
        Some(spec) => spec.parse::<Targets>().map_err(|e| {
            Failure::new(
                exit::USAGE,
                format!(
                    "environment variable RUST_LOG: {e}; write levels like `debug` or \
                     `ops_config=debug,info` (or unset it and pass -v)"
                ),
            )
        })?,
        None => Targets::new().with_default(match verbose {
            0 => LevelFilter::WARN,
            1 => LevelFilter::INFO,
            2 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true);
    // Installing fails only if a logger is already installed, which main never does twice.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
    Ok(())
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<ops_config::Error> for Failure {
    fn from(e: ops_config::Error) -> Self {
        use ops_config::Error as E;
        let code = match &e {
            E::Key(_) | E::Crypto(_) => exit::KEY,
            E::Store(s) => match s.root() {
                ops_config::StoreError::NotFound { .. } => exit::NOT_FOUND,
                ops_config::StoreError::Env(_) => exit::USAGE,
                ops_config::StoreError::WrongTenant { .. } => exit::INVALID,
                _ => exit::STORE,
            },
            E::Config(_)
            | E::UnknownProvider(_)
            | E::MaskedWithoutStored(_)
            | E::InvalidId { .. }
            | E::WrongTenant { .. } => exit::INVALID,
            E::NotConfigured { .. }
            | E::NoProvider { .. }
            | E::NoConfig { .. }
            | E::NotActive { .. } => exit::NOT_FOUND,
            E::CheckFailed { .. } => exit::PROVIDER,
            _ => exit::OTHER,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ops_config::StoreError> for Failure {
    fn from(e: ops_config::StoreError) -> Self {
        ops_config::Error::from(e).into()
    }
}

impl From<ops_config::KeyError> for Failure {
    fn from(e: ops_config::KeyError) -> Self {
        ops_config::Error::from(e).into()
    }
}

fn main() -> ExitCode {
    // Keeps every provider's registration in the binary (`ops providers` in the CLI tests
    // fails if one goes missing).
    ops_providers::link();
    ops_store::link();
    let matches = with_exit_codes(Cli::command()).get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(failure) = install_logger(cli.verbose)
        .and_then(|()| cli.resolve_env())
        .and_then(|()| cli.validate_ids())
    {
        eprintln!("error: {}", failure.message);
        return ExitCode::from(failure.code);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
