//! The process-wide queue that `#[traced]` roots report to, and `init()` to set it up from the
//! environment.

use std::cell::RefCell;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::provider;
use crate::queue::{FlushReport, QueueError, TraceQueueBuilder, TraceQueueManager};

/// The providers to use, comma-separated (for example `console` or `langfuse,phoenix`);
/// `none` disables tracing. Default: `console`.
pub const PROVIDER_ENV: &str = "OPS_TRACE_PROVIDER";

static GLOBAL: RwLock<Option<TraceQueueManager>> = RwLock::new(None);
static GLOBAL_SET: AtomicBool = AtomicBool::new(false);
/// Installed global queue (1) plus active scoped defaults: zero means tracing is off everywhere.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_DEFAULT: RefCell<Vec<TraceQueueManager>> = const { RefCell::new(Vec::new()) };
}

tokio::task_local! {
    static TASK_DEFAULT: TraceQueueManager;
}

/// Whether anything could record a trace: a global queue, a scoped default anywhere in the
/// process, or a trace still alive (a task spawned in a scope that has since ended keeps
/// recording into its trace). One relaxed atomic load: this is all the disabled path costs.
#[inline]
pub fn is_enabled() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

/// Counts a trace that started recording (see [`is_enabled`]).
pub(crate) fn trace_started() {
    ACTIVE.fetch_add(1, Ordering::Relaxed);
}

/// Counts a trace that stopped recording.
pub(crate) fn trace_ended() {
    ACTIVE.fetch_sub(1, Ordering::Relaxed);
}

/// The queue new traces on this thread or task go to: the task's scoped default
/// ([`scope_default`]), else the thread's ([`set_default`]), else the global one.
pub fn current_queue() -> Option<TraceQueueManager> {
    if !is_enabled() {
        return None;
    }
    if let Ok(queue) = TASK_DEFAULT.try_with(TraceQueueManager::clone) {
        return Some(queue);
    }
    if let Some(queue) = THREAD_DEFAULT.with(|d| d.borrow().last().cloned()) {
        return Some(queue);
    }
    global()
}

/// Restores the previous default when dropped. See [`set_default`].
#[derive(Debug)]
#[must_use = "the default is removed when the guard is dropped"]
pub struct DefaultGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        THREAD_DEFAULT.with(|d| d.borrow_mut().pop());
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Makes `queue` the default for this thread until the guard is dropped, like
/// `tracing::subscriber::set_default`. Tests use it to capture traces without touching the
/// global queue, so they can run in parallel.
pub fn set_default(queue: TraceQueueManager) -> DefaultGuard {
    THREAD_DEFAULT.with(|d| d.borrow_mut().push(queue));
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    DefaultGuard {
        _not_send: std::marker::PhantomData,
    }
}

/// Runs `f` with `queue` as this thread's default.
pub fn with_default<R>(queue: TraceQueueManager, f: impl FnOnce() -> R) -> R {
    let _guard = set_default(queue);
    f()
}

/// Runs `future` with `queue` as its default, on whatever thread polls it (a task-local).
pub async fn scope_default<F: std::future::Future>(
    queue: TraceQueueManager,
    future: F,
) -> F::Output {
    struct Active;
    impl Drop for Active {
        fn drop(&mut self) {
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    let _active = Active;
    TASK_DEFAULT.scope(queue, future).await
}

/// The global queue, if one is installed.
pub fn global() -> Option<TraceQueueManager> {
    GLOBAL.read().expect("global lock").clone()
}

/// Installs `queue` as the global queue and returns the previous one.
pub fn set_global(queue: TraceQueueManager) -> Option<TraceQueueManager> {
    let previous = GLOBAL.write().expect("global lock").replace(queue);
    if !GLOBAL_SET.swap(true, Ordering::Relaxed) {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
    }
    previous
}

/// Removes the global queue and shuts it down, waiting at most `timeout`.
pub fn shutdown(timeout: Duration) -> FlushReport {
    let queue = GLOBAL.write().expect("global lock").take();
    if GLOBAL_SET.swap(false, Ordering::Relaxed) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
    queue.map(|q| q.shutdown(timeout)).unwrap_or_default()
}

/// Keeps the global queue alive; dropping it flushes and shuts the queue down. When tracing is
/// off (`OPS_TRACE_PROVIDER=none`) it holds nothing and dropping it does nothing.
#[derive(Debug)]
#[must_use = "dropping the guard shuts tracing down at once"]
pub struct TracingGuard {
    timeout: Duration,
    installed: bool,
}

impl TracingGuard {
    /// The global queue.
    pub fn queue(&self) -> Option<TraceQueueManager> {
        global()
    }

    /// Whether [`init`] installed a queue (false when `OPS_TRACE_PROVIDER=none`).
    pub fn is_installed(&self) -> bool {
        self.installed
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if self.installed {
            shutdown(self.timeout);
        }
    }
}

/// What `OPS_TRACE_PROVIDER` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selection {
    /// `none`: tracing is off, no queue.
    Off,
    /// These provider names, each once, in order.
    Providers(Vec<String>),
}

const PROVIDER_HINT: &str = "write provider names separated by commas, like `console` or \
                             `langfuse,phoenix`, or `none` to turn tracing off; unset it for \
                             the default `console`";

fn provider_error(value: &str, expected: String) -> QueueError {
    QueueError::Env(crate::env::EnvError::invalid(PROVIDER_ENV, value, expected))
}

/// Parses the value of `OPS_TRACE_PROVIDER` (`None`: unset).
fn selection(value: Option<&str>) -> Result<Selection, QueueError> {
    let Some(value) = value else {
        return Ok(Selection::Providers(vec!["console".to_owned()]));
    };
    if value.trim().is_empty() {
        return Err(provider_error(
            value,
            format!("it is set but empty; {PROVIDER_HINT}"),
        ));
    }
    let names: Vec<&str> = value.split(',').map(str::trim).collect();
    if let Some(at) = names.iter().position(|n| n.is_empty()) {
        return Err(provider_error(
            value,
            format!(
                "name {} of {} is empty; {PROVIDER_HINT}",
                at + 1,
                names.len()
            ),
        ));
    }
    if names.iter().any(|n| n.eq_ignore_ascii_case("none")) {
        if names.len() == 1 {
            return Ok(Selection::Off);
        }
        return Err(provider_error(
            value,
            "`none` turns tracing off and cannot be combined with providers; set either `none` \
             or the providers"
                .to_owned(),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if out.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(provider_error(
                value,
                format!("{name:?} is named twice; name each provider once"),
            ));
        }
        out.push(name.to_owned());
    }
    Ok(Selection::Providers(out))
}

/// Reads `OPS_TRACE_PROVIDER` and checks the variables every selection reads, so that a bad
/// value is an error at start rather than a warning later.
fn selection_from_env() -> Result<Selection, QueueError> {
    let selection = selection(crate::env::var(PROVIDER_ENV)?.as_deref())?;
    crate::env::parse_var(crate::context::SAMPLE_RATE_ENV, crate::env::fraction)?;
    // Read later by the local providers and the task builder, which take an unreadable value
    // as unset: refuse it here.
    crate::env::var(crate::local::TRACE_FILE_ENV)?;
    files_url_from_env()?;
    Ok(selection)
}

/// `FILES_URL`, checked: `Ok(None)` when unset or blank; an error naming it when it is not
/// UTF-8 or not an http(s) URL with a host. Also read when a message's relative file URLs are
/// made absolute, where a bad value is a warning and the default is used.
pub(crate) fn files_url_from_env() -> Result<Option<String>, crate::env::EnvError> {
    let Some(url) = crate::env::non_blank(crate::FILES_URL_ENV)? else {
        return Ok(None);
    };
    match provider::check_url(&url) {
        Ok(_) => Ok(Some(url)),
        Err(reason) => Err(crate::env::EnvError::InvalidSecret {
            var: crate::FILES_URL_ENV.to_owned(),
            expected: format!(
                "{reason}; it is the base URL that relative file URLs are joined to, such as \
                 http://127.0.0.1:5001 (unset it for that default)"
            ),
        }),
    }
}

/// The error for a name in `OPS_TRACE_PROVIDER` that no provider is registered under, or for a
/// registry with two providers under one name.
fn unknown_provider(value: &str, e: &provider::RegistryError) -> QueueError {
    let e = match e {
        provider::RegistryError::Unknown(e) => e,
        provider::RegistryError::Duplicate(d) => return QueueError::DuplicateProvider(d.clone()),
    };
    let mut name: String = e.name.chars().take(60).collect();
    if name.len() < e.name.len() {
        name.push('…');
    }
    provider_error(
        value,
        format!(
            "no provider is registered as {name:?}; registered providers: {}. {}",
            e.known,
            provider::LINK_HINT
        ),
    )
}

/// The error for a provider selected by `OPS_TRACE_PROVIDER` whose environment variables do
/// not configure it: names the variables to set, and those set but empty.
fn not_configured(factory: &provider::ProviderFactory) -> provider::ConfigError {
    let blank = factory.blank_env_vars();
    let blank = match blank.as_slice() {
        [] => String::new(),
        [one] => format!(" ({one} is set but empty)"),
        more => format!(" ({} are set but empty)", more.join(", ")),
    };
    provider::ConfigError::Build {
        provider: factory.name.to_owned(),
        message: format!(
            "selected by {PROVIDER_ENV}, but its environment variables do not configure \
             it{blank}; {}",
            factory.describe_env_vars()
        ),
    }
}

/// A queue builder with the providers named by `OPS_TRACE_PROVIDER` (default `console`), each
/// configured from its official SDK's environment variables, and the durable spool when
/// `OPS_TRACE_SPOOL_DIR` is set.
///
/// `OPS_TRACE_PROVIDER` is a comma-separated list of provider names, each named once. Set but
/// empty, an empty name (`console,,`), or `none` combined with providers are errors. `none`
/// alone turns tracing off: [`init`] then installs no queue, and this function returns
/// [`QueueError::TracingOff`], so that no queue that drops every trace is ever built.
pub fn builder_from_env() -> Result<TraceQueueBuilder, QueueError> {
    let names = match selection_from_env()? {
        Selection::Off => return Err(QueueError::TracingOff),
        Selection::Providers(names) => names,
    };
    let mut builder = TraceQueueManager::builder();
    if let Some(spool) = crate::spool::SpoolConfig::from_env()? {
        builder = builder.spool(spool);
    }
    // Every name is looked up before anything is built, so a typo is reported first.
    let value = names.join(",");
    let factories = names
        .iter()
        .map(|name| provider::find(name).map_err(|e| unknown_provider(&value, &e)))
        .collect::<Result<Vec<_>, _>>()?;
    for factory in factories {
        let built = factory
            .build_from_env()?
            .ok_or_else(|| not_configured(factory))?;
        builder = builder.boxed_provider(built);
    }
    Ok(builder)
}

/// Sets up tracing from the environment and installs the global queue.
///
/// Providers come from `OPS_TRACE_PROVIDER` (default `console`, the embedded provider that
/// prints trees to stderr; `OPS_TRACE_FILE` adds a JSON lines file). With
/// `OPS_TRACE_PROVIDER=none` tracing is off: no queue is installed, and every traced call costs
/// one atomic load ([`is_enabled`] stays false). Keep the guard for the life of the program:
/// dropping it delivers what is queued, waiting at most 5 s.
///
/// ```no_run
/// let _guard = ops_core::init()?;
/// # Ok::<(), ops_core::QueueError>(())
/// ```
pub fn init() -> Result<TracingGuard, QueueError> {
    let timeout = Duration::from_secs(5);
    let queue = match builder_from_env() {
        Ok(builder) => builder.build()?,
        Err(QueueError::TracingOff) => {
            return Ok(TracingGuard {
                timeout,
                installed: false,
            });
        }
        Err(e) => return Err(e),
    };
    set_global(queue);
    Ok(TracingGuard {
        timeout,
        installed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &str) -> Vec<String> {
        match selection(Some(v)).unwrap() {
            Selection::Providers(n) => n,
            Selection::Off => panic!("{v}: off"),
        }
    }

    #[test]
    fn provider_lists_are_checked() {
        assert_eq!(
            selection(None).unwrap(),
            Selection::Providers(vec!["console".into()])
        );
        assert_eq!(names(" console , file "), ["console", "file"]);
        assert_eq!(selection(Some("none")).unwrap(), Selection::Off);
        assert_eq!(selection(Some(" NONE ")).unwrap(), Selection::Off);
        for (bad, why) in [
            ("", "set but empty"),
            ("   ", "set but empty"),
            (",,,", "name 1 of 4 is empty"),
            ("console,,", "name 2 of 3 is empty"),
            (",console", "name 1 of 2 is empty"),
            ("none,console", "cannot be combined"),
            ("console,none", "cannot be combined"),
            ("console,Console", "named twice"),
        ] {
            let err = selection(Some(bad)).unwrap_err().to_string();
            assert!(
                err.contains("OPS_TRACE_PROVIDER") && err.contains(why),
                "{bad:?}: {err}"
            );
        }
    }
}
