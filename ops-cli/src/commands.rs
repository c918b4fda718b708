//! The commands.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use ops_config::crypto::{KEY_ENV, KEY_FILE_ENV};
use ops_config::{
    ConfigStore, ConfigView, Error, Keyring, MasterKey, OpsTraceManager, store as config_store,
};
use ops_core::ProviderFactory;

use crate::input::{self, secret_env};
use crate::{
    CheckArgs, Cli, Command, ConfigCommand, Failure, ProviderTarget, SendTestArgs, SetArgs,
    ShowArgs, Target, exit,
};
use ops_config::console::ProjectLink;

/// Runs the command `cli` names.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    tracing::info!(
        target: "ops",
        command = cli.command.name(),
        tenant = cli.tenant(),
        "running"
    );
    match &cli.command {
        Command::Providers { json } => providers(*json),
        Command::Keygen { key_version } => keygen(*key_version),
        Command::Config(ConfigCommand::Set(args)) => set(&cli, args).await,
        Command::Config(ConfigCommand::Show(args)) => show(&cli, args).await,
        Command::Config(ConfigCommand::Delete(args)) => delete(&cli, args).await,
        Command::Enable(target) => switch(&cli, target, true).await,
        Command::Disable(target) => switch(&cli, target, false).await,
        Command::Check(args) => check(&cli, args).await,
        Command::SendTest(args) => send_test(&cli, args).await,
        Command::RotateKey { generate } => rotate_key(&cli, *generate).await,
        Command::Worker(args) => crate::worker::run(&cli, args).await,
        Command::Serve(args) => crate::serve::run(&cli, args).await,
    }
}

fn factory(name: &str) -> Result<&'static ProviderFactory, Failure> {
    ops_core::provider::find(name).map_err(|e| Error::from(e).into())
}

fn keyring(cli: &Cli) -> Result<Keyring, Failure> {
    let value = ops_config::crypto::key_from_env()?;
    Ok(Keyring::from_sources(
        value.as_ref().map(|v| v.as_str()),
        cli.key_file.as_deref(),
    )?)
}

/// Whether a command may create the config database: only `config set` does; every other
/// command finds nothing to do in a database that does not exist, and says so.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Open {
    /// Create the file (and its directory) when missing.
    Create,
    /// Never create anything.
    Existing,
}

async fn store(cli: &Cli, open: Open) -> Result<Arc<dyn ConfigStore>, Failure> {
    let (url, var) = match cli.database.clone().filter(|u| !u.trim().is_empty()) {
        Some(url) => (url, None),
        None => {
            let db = config_store::database_from_env()?;
            (db.url, db.var)
        }
    };
    // The URL is not logged: a PostgreSQL URL may hold a password.
    tracing::debug!(
        target: "ops",
        kind = if url.starts_with("postgres") { "postgres" } else { "sqlite" },
        from = var.unwrap_or("--database or the default"),
        create = matches!(open, Open::Create),
        "opening the config database"
    );
    let store = match open {
        Open::Create => config_store::connect(&url).await,
        Open::Existing => config_store::connect_existing(&url).await,
    };
    // An error names the variable the database came from.
    Ok(store.map_err(|e| e.from_var(var))?)
}

/// A manager with the key: the key is loaded first, so a key problem never touches the
/// database.
pub(crate) async fn manager(cli: &Cli, open: Open) -> Result<OpsTraceManager, Failure> {
    let keys = keyring(cli)?;
    Ok(OpsTraceManager::new(store(cli, open).await?, keys).with_cache_ttl(None))
}

/// A manager for commands that never read or write a secret (and never create the database).
async fn keyless_manager(cli: &Cli) -> Result<OpsTraceManager, Failure> {
    Ok(OpsTraceManager::without_keys(store(cli, Open::Existing).await?).with_cache_ttl(None))
}

fn describe(field: &ops_core::provider::ConfigField) -> String {
    let mut parts = Vec::new();
    if field.secret {
        parts.push("secret".to_owned());
    }
    parts.push(
        if field.required {
            "required"
        } else {
            "optional"
        }
        .to_owned(),
    );
    if let Some(default) = field.default {
        parts.push(format!("default {default}"));
    }
    if field.secret {
        parts.push(format!("from ${}", secret_env(field.name)));
    }
    parts.join(", ")
}

fn providers(as_json: bool) -> Result<(), Failure> {
    let all = ops_core::provider::registered();
    let mut out = std::io::stdout().lock();
    if as_json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&ops_config::console::providers()).unwrap_or_default()
        );
        return Ok(());
    }
    for f in all {
        let _ = writeln!(out, "{} ({})", f.name, f.display_name);
        let width = f.fields.iter().map(|x| x.name.len()).max().unwrap_or(0);
        for field in f.fields {
            let _ = writeln!(out, "    {:width$}  {}", field.name, describe(field));
        }
        if f.fields.is_empty() {
            let _ = writeln!(out, "    (no config keys)");
        }
    }
    Ok(())
}

fn keygen(version: Option<u32>) -> Result<(), Failure> {
    if version == Some(0) {
        return Err(Failure::new(exit::USAGE, "--key-version must be 1 or more"));
    }
    let key = MasterKey::generate(version.unwrap_or(1))?;
    if version.is_some() {
        println!("{}", key.to_entry().as_str());
    } else {
        println!("{}", key.to_base64().as_str());
    }
    Ok(())
}

/// The most `--stdin` may hold: config values and secrets, never this much.
pub(crate) const MAX_STDIN_BYTES: u64 = 64 * 1024;

fn read_stdin() -> Result<String, Failure> {
    read_limited(std::io::stdin().lock())
}

/// Reads `input` whole if it holds at most [`MAX_STDIN_BYTES`]; more is a usage error.
pub(crate) fn read_limited(input: impl Read) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    input
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::new(exit::OTHER, format!("cannot read stdin: {e}")))?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        return Err(Failure::new(
            exit::USAGE,
            format!(
                "stdin holds more than {} KiB; --stdin takes KEY=VALUE lines or a JSON object of \
                 config values, which fit in far less",
                MAX_STDIN_BYTES / 1024
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        Failure::new(
            exit::USAGE,
            "stdin is not valid UTF-8; write KEY=VALUE lines or a JSON object as text",
        )
    })
}

/// For a required key that is missing, the message naming how to give it: the environment
/// variable (or stdin) for a secret, `--set` (or stdin) for a plain key.
fn missing_key_hint(factory: &ProviderFactory, error: &Error) -> Option<String> {
    let Error::Config(ops_config::ConfigError::Missing { provider, field }) = error else {
        return None;
    };
    let secret = factory
        .fields
        .iter()
        .any(|f| f.name == field.as_str() && f.secret);
    Some(if secret {
        format!(
            "{provider}: `{field}` is required; set {} (or pass --stdin and write \
             {field}=VALUE to stdin)",
            secret_env(field)
        )
    } else {
        format!(
            "{provider}: `{field}` is required; pass --set {field}=VALUE (or pass --stdin and \
             write {field}=VALUE to stdin)"
        )
    })
}

async fn set(cli: &Cli, args: &SetArgs) -> Result<(), Failure> {
    let ProviderTarget { app, provider } = &args.target;
    let factory = factory(provider)?;
    let stdin = if args.stdin {
        Some(read_stdin()?)
    } else {
        None
    };
    let collected = input::collect(
        factory,
        &args.set,
        &args.unset,
        stdin.as_deref(),
        ops_core::env::var,
    )?;
    let manager = manager(cli, Open::Create).await?;
    let saved = manager
        .save_config(
            cli.tenant(),
            app,
            factory.name,
            &collected.update,
            !args.no_check,
        )
        .await
        .map_err(|e| {
            let check_failed = matches!(e, Error::CheckFailed { .. });
            let missing = missing_key_hint(factory, &e);
            let mut failure = Failure::from(e);
            if let Some(hint) = missing {
                failure.message = hint;
            }
            if check_failed {
                failure.message.push_str(
                    "\nnothing was saved; fix the credentials, or pass --no-check to save anyway",
                );
            }
            failure
        })?;
    println!(
        "saved {} config for app {app} (version {}, {}, {})",
        saved.provider,
        saved.version,
        if saved.created { "created" } else { "updated" },
        if saved.checked {
            "credentials checked"
        } else {
            "credentials NOT checked"
        }
    );
    if !collected.from_env.is_empty() {
        println!(
            "secrets from the environment: {}",
            collected.from_env.join(", ")
        );
    }
    if let Some(key) = &saved.project_key {
        println!("project key: {key}");
    }
    if let Some(url) = &saved.project_url {
        println!("project: {url}");
    }
    if args.enable {
        let status = manager
            .set_enabled(cli.tenant(), app, Some(factory.name), true)
            .await?;
        println!(
            "tracing on for app {app}; active providers: {}",
            status.active_providers().join(", ")
        );
    } else {
        let status = manager.app_status(cli.tenant(), app).await?;
        if !status.active_providers().contains(&factory.name) {
            println!(
                "not active yet; turn it on with: ops enable --app {app} --provider {}",
                factory.name
            );
        }
    }
    if let Some(view) = manager.config_view(cli.tenant(), app, factory.name).await? {
        print_view(&view);
    }
    Ok(())
}

fn print_view(view: &ConfigView) {
    println!(
        "[{}] {}, version {}, updated {}",
        view.provider,
        if view.enabled { "enabled" } else { "disabled" },
        view.version,
        view.updated_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    let width = view.values.keys().map(String::len).max().unwrap_or(0);
    for (key, value) in &view.values {
        let note = match view.key_versions.get(key) {
            Some(v) => format!("  (secret, key v{v})"),
            None if view.secret_keys.contains(key) => "  (secret)".to_owned(),
            None => String::new(),
        };
        println!("    {key:width$}  {value}{note}");
    }
}

async fn show(cli: &Cli, args: &ShowArgs) -> Result<(), Failure> {
    // The provider name is checked before the key and the database are opened.
    if let Some(name) = &args.provider {
        factory(name)?;
    }
    let manager = manager(cli, Open::Existing).await?;
    let configs = ops_config::console::app_configs(
        &manager,
        cli.tenant(),
        &args.app,
        args.provider.as_deref(),
    )
    .await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&configs.to_json()).unwrap_or_default()
        );
        return Ok(());
    }
    let status = &configs.status;
    let active = status.active_providers();
    println!(
        "app {} (tenant {}): tracing {}; active providers: {}",
        status.app_id,
        status.tenant_id.as_deref().unwrap_or("-"),
        if status.enabled { "on" } else { "off" },
        if active.is_empty() {
            "none".to_owned()
        } else {
            active.join(", ")
        }
    );
    for view in &configs.views {
        print_view(view);
    }
    Ok(())
}

async fn delete(cli: &Cli, args: &ProviderTarget) -> Result<(), Failure> {
    let factory = factory(&args.provider)?;
    let manager = keyless_manager(cli).await?;
    if !manager
        .delete_config(cli.tenant(), &args.app, factory.name)
        .await?
    {
        return Err(Error::NotConfigured {
            app_id: args.app.clone(),
            provider: factory.name.to_owned(),
        }
        .into());
    }
    println!("deleted the {} config of app {}", factory.name, args.app);
    Ok(())
}

async fn switch(cli: &Cli, target: &Target, on: bool) -> Result<(), Failure> {
    let provider = target.provider.as_deref().map(factory).transpose()?;
    let manager = keyless_manager(cli).await?;
    let status = manager
        .set_enabled(cli.tenant(), &target.app, provider.map(|f| f.name), on)
        .await?;
    let active = status.active_providers();
    match (provider, on) {
        (Some(f), true) => println!("{} added to app {}", f.name, target.app),
        (Some(f), false) => println!("{} taken out of app {}", f.name, target.app),
        _ => {}
    }
    if status.enabled {
        println!(
            "tracing on for app {}; active providers: {}",
            target.app,
            if active.is_empty() {
                "none (nothing is sent)".to_owned()
            } else {
                active.join(", ")
            }
        );
    } else {
        println!("tracing off for app {}", target.app);
    }
    Ok(())
}

async fn check(cli: &Cli, args: &CheckArgs) -> Result<(), Failure> {
    // The provider name is checked before the key and the database are opened.
    if let Some(name) = &args.provider {
        factory(name)?;
    }
    let manager = manager(cli, Open::Existing).await?;
    let results =
        ops_config::console::check(&manager, cli.tenant(), &args.app, args.provider.as_deref())
            .await?;
    let mut first_failure: Option<Failure> = None;
    let mut failed = 0;
    for (name, result) in &results {
        match result {
            Ok(report) => {
                println!("{name}: ok");
                if let Some(key) = &report.project_key {
                    println!("    project key: {key}");
                }
                if let Some(url) = &report.project_url {
                    println!("    project: {url}");
                }
                if let Some(e) = &report.project_error {
                    println!("    project lookup failed: {e}");
                }
            }
            Err(e) => {
                failed += 1;
                println!("{name}: FAILED: {e}");
                first_failure.get_or_insert(Failure::from(e.clone()));
            }
        }
    }
    match first_failure {
        None => Ok(()),
        Some(first) => Err(Failure::new(
            first.code,
            format!("{failed} of {} provider check(s) failed", results.len()),
        )),
    }
}

async fn send_test(cli: &Cli, args: &SendTestArgs) -> Result<(), Failure> {
    if let Some(name) = &args.provider {
        factory(name)?;
    }
    let manager = manager(cli, Open::Existing).await?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let report = ops_config::console::send_test(
        &manager,
        cli.tenant(),
        &args.app,
        args.provider.as_deref(),
        timeout,
    )
    .await?;
    // An enabled provider that cannot be loaded fails the command with its own code (a key
    // that does not decrypt is 6, an invalid config 3), after the others were tried.
    let mut left_out: Option<Failure> = None;
    for (name, e) in &report.left_out {
        eprintln!("warning: {name} is left out: {e}");
        left_out.get_or_insert_with(|| {
            let failure = Failure::from(e.clone());
            Failure::new(
                failure.code,
                format!("{name} could not be loaded: {}", failure.message),
            )
        });
    }
    if report.deliveries.is_empty()
        && let Some(failure) = left_out
    {
        return Err(failure);
    }
    println!(
        "sending sample chatflow trace {} ({} observations) for app {}",
        report.trace_id, report.observations, args.app
    );
    for delivery in &report.deliveries {
        let name = &delivery.provider;
        match &delivery.error {
            None => {
                println!("{name}: delivered");
                match &delivery.project {
                    Some(ProjectLink::Url(url)) => println!("    project: {url}"),
                    Some(ProjectLink::NoPage) | None => {
                        println!("    project: (this provider has no project page)")
                    }
                    Some(ProjectLink::Failed(why)) => println!("    {why}"),
                }
            }
            Some(e) => println!("{name}: FAILED: {e}"),
        }
    }
    if let Some(failure) = left_out {
        return Err(failure);
    }
    let failed = report.failed();
    if failed > 0 {
        return Err(Failure::new(
            exit::PROVIDER,
            format!("{failed} provider(s) did not accept the test trace"),
        ));
    }
    Ok(())
}

async fn rotate_key(cli: &Cli, generate: bool) -> Result<(), Failure> {
    if generate {
        let Some(path) = cli.key_file.as_deref() else {
            return Err(Failure::new(
                exit::USAGE,
                format!(
                    "--generate appends to the key file: pass --key-file or set {KEY_FILE_ENV}. \
                     With {KEY_ENV}, add the new version yourself (`ops keygen --key-version N`) \
                     and run `ops rotate-key`"
                ),
            ));
        };
        let current = keyring(cli)?;
        let key = MasterKey::generate(current.current_version() + 1)?;
        let mut text = std::fs::read_to_string(path)
            .map_err(|e| Failure::new(exit::KEY, format!("cannot read {}: {e}", path.display())))?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&key.to_entry());
        text.push('\n');
        std::fs::write(path, text).map_err(|e| {
            Failure::new(exit::KEY, format!("cannot write {}: {e}", path.display()))
        })?;
        println!("added key version {} to {}", key.version(), path.display());
    }
    let manager = manager(cli, Open::Existing).await?;
    let report = manager.rotate_keys().await?;
    let moved: usize = report.resealed.values().sum();
    let from: Vec<String> = report
        .resealed
        .iter()
        .map(|(v, n)| format!("{n} from version {v}"))
        .collect();
    println!(
        "re-encrypted {moved} secret(s) in {} config(s) under key version {}{}",
        report.configs_updated,
        report.current_version,
        if from.is_empty() {
            String::new()
        } else {
            format!(" ({})", from.join(", "))
        }
    );
    println!(
        "{} secret(s) already used key version {}",
        report.already_current, report.current_version
    );
    if !report.failed.is_empty() {
        for f in &report.failed {
            eprintln!(
                "not rotated: app {}, {}: {}",
                f.app_id, f.provider, f.message
            );
        }
        // The store refusing a rewrite is a database failure; anything else is the key's.
        let code = if report
            .failed
            .iter()
            .any(|f| f.cause == ops_config::RotationCause::Store)
        {
            exit::STORE
        } else {
            exit::KEY
        };
        return Err(Failure::new(
            code,
            format!(
                "{} config(s) could not be re-encrypted; keep their key versions until they are",
                report.failed.len()
            ),
        ));
    }
    let old: Vec<String> = manager
        .keyring()
        .map(|k| k.versions())
        .unwrap_or_default()
        .into_iter()
        .filter(|v| *v != report.current_version)
        .map(|v| v.to_string())
        .collect();
    if !old.is_empty() {
        println!(
            "every secret now uses key version {}; old version(s) {} can be removed once every \
             instance has the new key",
            report.current_version,
            old.join(", ")
        );
    }
    Ok(())
}
