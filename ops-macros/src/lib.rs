//! The `#[traced]` attribute macro. Depend on `ops-core` and use `ops_core::traced`; the
//! generated code calls `ops_core::__private`, which only `ops-core` provides.
//!
//! The crate is split as the macro works: `attr` parses the arguments, `valid` checks
//! them against each other and against the function, `ty` reads what the written types say,
//! and `expand` generates the traced function. An error at any step is a `syn::Error` on the
//! offending token, emitted together with the function as it was written, so one mistake does
//! not cascade into unrelated errors.

mod attr;
mod expand;
mod ty;
mod valid;

use proc_macro::TokenStream;

/// Turns every call of a function into an observation: its timing, inputs, output, errors
/// and its place in the trace tree.
///
/// ```
/// use ops_core::traced;
///
/// #[derive(serde::Serialize, Clone)]
/// struct Doc { title: String }
///
/// #[traced(kind = "dataset_retrieval")]
/// async fn retrieve(query: &str, top_k: usize) -> Vec<Doc> {
///     vec![Doc { title: format!("about {query}") }; top_k]
/// }
///
/// #[traced(kind = "generation", model = "gpt-4o-mini", model_parameters(temperature = 0.2))]
/// async fn complete(prompt: String) -> Result<String, std::io::Error> {
///     Ok(format!("answer to {prompt}"))
/// }
///
/// #[traced(kind = "message", user_id = user, tags("chat"))]
/// async fn answer(user: &str, query: &str) -> Result<String, std::io::Error> {
///     let docs = retrieve(query, 2).await;
///     complete(format!("{query} with {} docs", docs.len())).await
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// #     answer("u1", "hi").await.unwrap();
/// # });
/// ```
///
/// With a queue installed (`ops_core::init()`, or a test's `ops_testkit::capture()`), a call
/// of `answer` records one message trace: `answer` with the children `retrieve` and
/// `complete`. With none installed, the functions run as if untraced, after one relaxed
/// atomic load.
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `kind = ".."` | The observation's kind (default `span`): `workflow`, `message`, `tool`, `dataset_retrieval`, `moderation`, `suggested_question`, `generate_conversation_name`, `prompt_generation`, `agent`, `node` (or `node_execution`), `draft_node_execution`, `conversation`, `span`, `generation` (or `llm`). A root's kind is its trace's kind: a `message` root makes a message trace. |
/// | `name = ".."` | The observation's name (default: the function's name). |
/// | `crate = path` | Where `ops_core` is, when it is renamed or re-exported (default `::ops_core`). |
/// | `skip(a, b)` | Do not capture these parameters. |
/// | `skip_all` | Capture no parameter. |
/// | `capture_input = false` | Capture no parameter (same as `skip_all`). |
/// | `capture_output = false` | Do not capture the return value (errors are still recorded). |
/// | `metadata(key = expr, "other-key" = expr)` | Metadata entries; each `expr: Serialize`. |
/// | `tags("a", "b")` | Tags of the observation (and of the trace, on a root). |
/// | `user_id = expr`, `session_id = expr` | Who and which session the trace is for. The value is a string, a number, a UUID or an `Option` of one (`None` leaves it unset). Set on the observation; a trace takes its root's, else the first set below it. |
/// | `app_id = expr`, `tenant_id = expr`, `environment = expr`, `release = expr`, `version = expr` | The other trace attributes, the same way. `app_id` also routes the trace to the app's providers. |
/// | `model = expr`, `model_provider = expr` | For model calls (`generation`, `suggested_question`, `generate_conversation_name`, `prompt_generation`): the model and its provider. |
/// | `model_parameters(temperature = expr, ..)` | For model calls: the model parameters. |
/// | `level = "WARNING"` | The starting level: `DEBUG`, `DEFAULT`, `WARNING` or `ERROR`. |
/// | `parent = expr` | The parent, instead of the caller's context: an `ObservationContext` (or a reference, or an `Option` of one). `parent = None` starts a new trace. A parameter named as the parent (`parent = ctx`, `&ctx`, `ctx.clone()`) is not captured as an input, so it needs no `skip`. |
/// | `sample_rate = expr` | When this call starts a trace, the fraction of such traces recorded (0.0 to 1.0), instead of the process's rate. |
/// | `reduce = expr` | For functions returning a stream: how its items become the output (a `ops_core::context::StreamReducer`, for example `reduce::fold(..)`). |
///
/// Expressions (`user_id = ..`, `metadata(..)`, ...) can use the parameters; they are
/// evaluated before the body runs, by reference, and only when the call is recorded. They run
/// in a closure, so they cannot `.await`, `return` or use `?`.
///
/// # What is recorded
///
/// - **Inputs**: a JSON object keyed by parameter name. `self` is never captured. A
///   destructured parameter is captured per binding.
/// - **Output**: the return value as JSON (`()` records none). For a `Result` (or an alias
///   named `...Result`), `Ok(v)` records `v`; `Err(e)` records level ERROR, the status
///   message from `e`'s `Display` (else its `Debug`), `error_type` in the metadata and, for
///   a `std::error::Error` with a `source()`, its causes as `error_chain` (at most 16 causes,
///   8 KiB; captured only on the error path).
/// - **Panics**: level ERROR with the panic message, then the panic goes on; the caller's
///   context is restored, so a caught panic never loses the parent.
/// - **Cancellation**: an async call whose future is dropped before it completes is recorded
///   with level WARNING and `cancelled: true` in the metadata.
/// - **Streams**: a function returning `impl Stream<Item = T>` (or `Pin<Box<dyn Stream ..>>`,
///   `BoxStream`) records until the stream ends or is dropped (a drop is recorded as
///   cancelled, with what had been reduced so far). The items are reduced to the output:
///   strings are joined, anything else is collected into an array, or `reduce = ..` decides.
///   The first item's time is the observation's `completion_start_time`, and the metadata
///   counts the `chunks`.
///
/// # Types that cannot be serialized
///
/// Every captured parameter and return value must implement `serde::Serialize`. A type that
/// does not is a compile error naming the parameter and suggesting `skip(..)` (for the
/// return value, `capture_output = false`): capture never silently falls back to `Debug`, so
/// what reaches a platform is always the structured value.
///
/// # Cost
///
/// Parameters whose type is owned and `'static` as written (no lifetime, no generic
/// parameter, no `impl Trait`, no `Self`) and `Clone + Serialize + Send + Sync`, and
/// references to such types (`&str`, `&[T]`, `&Request`), are cloned and serialized on the
/// queue's worker. Other parameters are serialized on the caller. A type hiding a lifetime
/// behind elision (`Wrapper` for `Wrapper<'a>`) must be written `Wrapper<'_>`.
///
/// # Works on
///
/// Functions and methods, sync or `async`, generic ones and ones with `impl Trait`
/// arguments, `async fn` in traits, functions returning `impl Future` or `impl Stream`, and
/// methods expanded by `#[async_trait]` (put `#[traced]` on the method inside the impl).
/// Early `return`s and `?` work as written. `const fn`s and bodiless trait methods are
/// rejected with an error.
///
/// # Expansion
///
/// ```
/// #[ops_core::traced(kind = "tool")]
/// fn add(a: u32, b: u32) -> u32 {
///     a + b
/// }
/// # add(1, 2);
/// ```
///
/// expands to (spans and `#[allow]`s aside):
///
/// ```
/// fn add(a: u32, b: u32) -> u32 {
///     static __OPS_SITE: ::ops_core::__private::Site =
///         ::ops_core::__private::Site::new("add", ::ops_core::__private::ObservationKind::Tool);
///     // Off: one relaxed atomic load (a queue installed or a trace alive?).
///     let __ops_span = if ::ops_core::__private::is_enabled() {
///         let mut __ops_span = ::ops_core::__private::start(&__OPS_SITE, None, None);
///         // Recorded: capture the inputs (out of line) before the body can move them.
///         ::ops_core::__private::capture(&mut __ops_span, |__ops_s: &mut ::ops_core::__private::ActiveSpan| {
///             use ::ops_core::__private::CaptureLater as _;
///             {
///                 #[allow(non_camel_case_types, dead_code)]
///                 struct a {}
///                 __ops_s.input("a", (&&::ops_core::__private::Cap::<_, a>::new(&a)).__ops_capture());
///             }
///             {
///                 #[allow(non_camel_case_types, dead_code)]
///                 struct b {}
///                 __ops_s.input("b", (&&::ops_core::__private::Cap::<_, b>::new(&b)).__ops_capture());
///             }
///         });
///         __ops_span
///     } else {
///         None
///     };
///     // Run the body in the observation's context; capture the result.
///     ::ops_core::__private::call(
///         __ops_span,
///         move || { a + b },
///         |__ops_out: &u32, __ops_rec: &mut ::ops_core::__private::ActiveSpan| {
///             use ::ops_core::__private::{
///                 CaptureOutputLater as _, ErrorDebug as _, ErrorDisplay as _, ErrorSource as _,
///                 SplitResult as _,
///             };
///             match (&&::ops_core::__private::Out::new(__ops_out)).__ops_split() {
///                 ::ops_core::__private::Split::Ok(__ops_v) => {
///                     __ops_rec.output(
///                         (&&::ops_core::__private::OutCap::new(__ops_v)).__ops_capture_output(),
///                     );
///                 }
///                 ::ops_core::__private::Split::Err(__ops_e) => {
///                     __ops_rec.error((&&&&::ops_core::__private::ErrRef::new(__ops_e)).__ops_error());
///                 }
///             }
///         },
///     )
/// }
/// # add(1, 2);
/// ```
///
/// An `async fn` runs its body as `traced_future(span, move || async move { .. }, rec).await`,
/// whose future makes the observation current on every poll. With the `disabled` feature of
/// `ops-core`, the function is emitted unchanged (its arguments are still checked).
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::traced(args.into(), item.into()).into()
}
