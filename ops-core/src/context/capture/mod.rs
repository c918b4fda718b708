//! Captured inputs and outputs.
//!
//! A value is captured one of two ways:
//! - **later**: an owned copy (a clone, or `to_owned()` of a borrowed `str`/slice) is kept and
//!   serialized on the queue's worker, so the caller pays for a clone, not for JSON;
//! - **now**: it is serialized to a `serde_json::Value` on the caller's thread.
//!
//! `#[traced]` picks "later" when the parameter's type is owned and `'static` as written (no
//! lifetimes, no generic parameters, no `impl Trait`, no `Self`) and implements
//! `Clone + Serialize + Send + Sync`; everything else that implements `Serialize` is captured
//! now. The choice between the two is made by method resolution ("autoref specialization") on
//! the types below, at the call site where the concrete type is known.

//!
//! Either way the value is sized first, without building anything (`size.rs`). A value nested
//! deeper than the limit, or over the byte limit, is never cloned and never walked past the
//! limit: it is built at once within the limits (`limited.rs`), with a truncation marker where
//! it was cut, so no captured value can overflow the stack or hold more than the limit.

mod limited;
mod size;

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::limits::{self, FieldLimits};
use crate::model::size as heap;

/// A captured value. Not a stable API: built by code `#[traced]` generates.
pub struct Captured {
    inner: Inner,
    size: usize,
}

enum Inner {
    Json(Value),
    Later(Box<dyn Later>),
    /// Over the byte limit: the start of the value, to preview once masked.
    Truncated {
        head: Value,
        original_bytes: usize,
    },
}

/// A value kept to be serialized on the worker.
trait Later: Send + Sync {
    fn to_json(&self) -> Result<Value, serde_json::Error>;
}

impl<T: Serialize + Send + Sync + 'static> Later for T {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

impl fmt::Debug for Captured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Json(v) => f.debug_tuple("Captured::Json").field(v).finish(),
            Inner::Later(_) => f
                .debug_struct("Captured::Later")
                .field("size", &self.size)
                .finish(),
            Inner::Truncated { original_bytes, .. } => f
                .debug_struct("Captured::Truncated")
                .field("original_bytes", original_bytes)
                .finish_non_exhaustive(),
        }
    }
}

impl Captured {
    /// Serializes `value` now, on the caller's thread, within the capture limits.
    pub fn now<T: Serialize + ?Sized>(value: &T) -> Self {
        let limits = limits::capture_limits();
        let sized = size::size_of_value(value, limits.max_depth);
        Self::now_sized(value, sized, &limits)
    }

    /// [`Captured::now`] of a value already measured.
    fn now_sized<T: Serialize + ?Sized>(
        value: &T,
        sized: size::Measured,
        limits: &FieldLimits,
    ) -> Self {
        if sized.failed {
            // Find out why, without walking deeper than the limit.
            let mut room = limited::Room {
                left: usize::MAX,
                max_depth: limits.max_depth,
                cut: false,
            };
            return Self::json(match limited::to_value(value, &mut room) {
                Ok(v) => v,
                Err(e) => unserializable(&Some(e)),
            });
        }
        Self::bounded(value, sized, limits).unwrap_or_else(|| {
            Self::json(serde_json::to_value(value).unwrap_or_else(|e| unserializable(&Some(e))))
        })
    }

    /// Keeps an owned copy of `value` to serialize on the worker. It is sized now (without
    /// serializing), so the queue's byte bound still holds. A small value (a number, a short
    /// string) is turned into JSON at once instead: that is as cheap as boxing it, and spares
    /// the worker an allocation. A value over the limits is never copied: it is built within
    /// them now.
    pub fn later<T>(value: &T) -> Self
    where
        T: Serialize + ToOwned + ?Sized,
        T::Owned: Serialize + Send + Sync + 'static,
    {
        let limits = limits::capture_limits();
        let sized = size::size_of_value(value, limits.max_depth);
        if sized.failed || sized.heap <= SMALL {
            return Self::now_sized(value, sized, &limits);
        }
        if let Some(bounded) = Self::bounded(value, sized, &limits) {
            return bounded;
        }
        Self {
            inner: Inner::Later(Box::new(value.to_owned())),
            size: sized.heap,
        }
    }

    /// Keeps `value` itself to serialize on the worker, as [`Captured::later`] keeps a copy.
    pub(crate) fn owned<T: Serialize + Send + Sync + 'static>(value: T) -> Self {
        let limits = limits::capture_limits();
        let sized = size::size_of_value(&value, limits.max_depth);
        if sized.failed || sized.heap <= SMALL {
            return Self::now_sized(&value, sized, &limits);
        }
        if let Some(bounded) = Self::bounded(&value, sized, &limits) {
            return bounded;
        }
        Self {
            inner: Inner::Later(Box::new(value)),
            size: sized.heap,
        }
    }

    /// The capture of a value over a limit, built within the limits; `None` when it is within
    /// them (then `serde_json` builds it: the walk cannot go deeper than the limit).
    fn bounded<T: Serialize + ?Sized>(
        value: &T,
        sized: size::Measured,
        limits: &FieldLimits,
    ) -> Option<Self> {
        let over = sized.json > limits.max_bytes;
        if !over && !sized.too_deep {
            return None;
        }
        let mut room = limited::Room {
            left: if over {
                limits.preview_chars.saturating_mul(4)
            } else {
                usize::MAX
            },
            max_depth: limits.max_depth,
            cut: false,
        };
        let built = match limited::to_value(value, &mut room) {
            Ok(v) => v,
            Err(e) => return Some(Self::json(unserializable(&Some(e)))),
        };
        if !over {
            return Some(Self::json(built));
        }
        let size = heap::value(&built) + 128;
        Some(Self {
            inner: Inner::Truncated {
                head: built,
                original_bytes: sized.json,
            },
            size,
        })
    }

    /// A JSON value.
    pub(crate) fn json(value: Value) -> Self {
        let size = heap::value(&value);
        Self {
            inner: Inner::Json(value),
            size,
        }
    }

    /// The estimated heap it holds, in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The value as JSON. A value whose `Serialize` fails becomes a string saying why; a value
    /// over the byte limit becomes a truncation marker whose preview is still a value (see
    /// [`crate::limits::finish_markers`]).
    pub(crate) fn to_value(&self) -> Value {
        match &self.inner {
            Inner::Json(v) => v.clone(),
            Inner::Later(v) => v.to_json().unwrap_or_else(|e| unserializable(&Some(e))),
            Inner::Truncated {
                head,
                original_bytes,
            } => {
                let limit = limits::capture_limits().max_bytes;
                let mut m = Map::new();
                m.insert(limits::TRUNCATED_KEY.into(), Value::Bool(true));
                m.insert("original_bytes".into(), (*original_bytes).into());
                m.insert(
                    "reason".into(),
                    format!("about {original_bytes} bytes; the limit is {limit}").into(),
                );
                m.insert("preview".into(), head.clone());
                Value::Object(m)
            }
        }
    }
}

/// The heap `value`'s fields hold (see [`super::heap_of_fields`]).
pub(crate) fn heap_of<T: Serialize + ?Sized>(value: &T) -> usize {
    size::heap_of_fields(value)
}

/// The estimated size under which a value is turned into JSON when captured.
const SMALL: usize = 64;

fn unserializable(e: &Option<impl fmt::Display>) -> Value {
    match e {
        Some(e) => Value::String(format!("<not serializable: {e}>")),
        None => Value::String("<not serializable>".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Autoref specialization. Generated code calls `(&&Cap::<_, name>::new(&x)).__ops_capture()`:
// method resolution tries `CaptureLater` (on `&Cap`) first and falls back to the inherent
// method (on `Cap`), whose `CaptureInput` bound gives a clear error for a type that cannot be
// serialized. `P` is a marker type named after the parameter, so the error names it.
// ---------------------------------------------------------------------------------------------

/// A parameter to capture. `P` is a marker named after the parameter.
pub struct Cap<'a, T: ?Sized, P>(&'a T, PhantomData<P>);

impl<T: ?Sized, P> fmt::Debug for Cap<'_, T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cap")
    }
}

impl<T: ?Sized> fmt::Debug for OutCap<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutCap")
    }
}

impl<R: ?Sized> fmt::Debug for Out<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Out")
    }
}

impl<E: ?Sized> fmt::Debug for ErrRef<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErrRef")
    }
}

impl<'a, T: ?Sized, P> Cap<'a, T, P> {
    /// Wraps the parameter's value.
    #[inline]
    pub fn new(value: &'a T) -> Self {
        Cap(value, PhantomData)
    }
}

/// The bound every captured parameter must meet. Its error message names the parameter.
#[diagnostic::on_unimplemented(
    message = "parameter `{P}` cannot be captured: `{Self}` does not implement `serde::Serialize`",
    label = "this parameter's type does not implement `serde::Serialize`",
    note = "skip it with `#[traced(skip({P}))]`, or implement (or derive) `serde::Serialize` for `{Self}`"
)]
pub trait CaptureInput<P> {
    /// Serializes the value now.
    fn capture_now(&self) -> Captured;
}

impl<T: Serialize + ?Sized, P> CaptureInput<P> for T {
    #[inline]
    fn capture_now(&self) -> Captured {
        Captured::now(self)
    }
}

/// Captures an owned copy, serialized later on the worker.
pub trait CaptureLater {
    /// Captures the value.
    fn __ops_capture(&self) -> Captured;
}

impl<T, P> CaptureLater for &Cap<'_, T, P>
where
    T: Serialize + ToOwned + ?Sized,
    T::Owned: Serialize + Send + Sync + 'static,
{
    #[inline]
    fn __ops_capture(&self) -> Captured {
        Captured::later(self.0)
    }
}

impl<T: ?Sized, P> Cap<'_, T, P> {
    /// Serializes the value now.
    #[inline]
    pub fn __ops_capture(&self) -> Captured
    where
        T: CaptureInput<P>,
    {
        self.0.capture_now()
    }
}

/// A return value to capture.
pub struct OutCap<'a, T: ?Sized>(&'a T);

impl<'a, T: ?Sized> OutCap<'a, T> {
    /// Wraps the return value.
    #[inline]
    pub fn new(value: &'a T) -> Self {
        OutCap(value)
    }
}

/// The bound a captured return value must meet.
#[diagnostic::on_unimplemented(
    message = "the return value cannot be captured: `{Self}` does not implement `serde::Serialize`",
    label = "the return type does not implement `serde::Serialize`",
    note = "add `capture_output = false` to `#[traced(...)]`, or implement (or derive) `serde::Serialize` for `{Self}`"
)]
pub trait CaptureOutput {
    /// Serializes the value now.
    fn capture_output_now(&self) -> Captured;
}

impl<T: Serialize + ?Sized> CaptureOutput for T {
    #[inline]
    fn capture_output_now(&self) -> Captured {
        Captured::now(self)
    }
}

/// Captures an owned copy of the return value, serialized later on the worker.
pub trait CaptureOutputLater {
    /// Captures the value.
    fn __ops_capture_output(&self) -> Captured;
}

impl<T> CaptureOutputLater for &OutCap<'_, T>
where
    T: Serialize + ToOwned + ?Sized,
    T::Owned: Serialize + Send + Sync + 'static,
{
    #[inline]
    fn __ops_capture_output(&self) -> Captured {
        Captured::later(self.0)
    }
}

impl<T: ?Sized> OutCap<'_, T> {
    /// Serializes the value now.
    #[inline]
    pub fn __ops_capture_output(&self) -> Captured
    where
        T: CaptureOutput,
    {
        self.0.capture_output_now()
    }
}

/// A return value split into what becomes the output and what becomes the error.
#[derive(Debug)]
pub enum Split<'a, T: ?Sized, E: ?Sized> {
    /// The output: the `Ok` value, or the whole value when it is not a `Result`.
    Ok(&'a T),
    /// The error of an `Err`.
    Err(&'a E),
}

/// A return value, to split when it is a `Result`.
pub struct Out<'a, R: ?Sized>(&'a R);

impl<'a, R: ?Sized> Out<'a, R> {
    /// Wraps the return value.
    #[inline]
    pub fn new(value: &'a R) -> Self {
        Out(value)
    }

    /// Not a `Result`: all of it is the output.
    #[inline]
    pub fn __ops_split(&self) -> Split<'a, R, std::convert::Infallible> {
        Split::Ok(self.0)
    }
}

/// Splits a `Result` into its `Ok` value and its error.
pub trait SplitResult<'a> {
    /// The `Ok` type.
    type Ok: ?Sized;
    /// The error type.
    type Err: ?Sized;
    /// Splits it.
    fn __ops_split(&self) -> Split<'a, Self::Ok, Self::Err>;
}

impl<'a, T, E> SplitResult<'a> for &Out<'a, Result<T, E>> {
    type Ok = T;
    type Err = E;
    #[inline]
    fn __ops_split(&self) -> Split<'a, T, E> {
        match self.0 {
            Ok(v) => Split::Ok(v),
            Err(e) => Split::Err(e),
        }
    }
}

/// What an error says: its message, its type and, for a `std::error::Error` with a
/// `source()`, its chain of causes (the `error_chain` metadata entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    pub(crate) message: Option<String>,
    pub(crate) type_name: &'static str,
    pub(crate) chain: Option<String>,
}

/// The most causes [`error_chain`] follows.
pub(crate) const MAX_ERROR_CHAIN_DEPTH: usize = 16;
/// The most bytes of text [`error_chain`] writes (a longer chain is cut, ending with `…`).
pub(crate) const MAX_ERROR_CHAIN_BYTES: usize = 8 * 1024;

/// The error's message and its causes (`source()`, then theirs), as Rust writes an error
/// report (`anyhow`'s `{:?}`): the message, a blank line, `Caused by:` and one numbered line
/// per cause. `None` when the error has no source. At most [`MAX_ERROR_CHAIN_DEPTH`] causes
/// and [`MAX_ERROR_CHAIN_BYTES`] bytes. Recorded as the `error_chain` metadata entry.
pub(crate) fn error_chain(error: &(dyn std::error::Error + '_)) -> Option<String> {
    use fmt::Write as _;
    let mut source = error.source()?;
    let mut out = String::new();
    let _ = write!(out, "{error}\n\nCaused by:");
    let mut depth = 0;
    loop {
        if depth == MAX_ERROR_CHAIN_DEPTH {
            out.push_str("\n    …");
            break;
        }
        let _ = write!(out, "\n    {depth}: {source}");
        if out.len() > MAX_ERROR_CHAIN_BYTES {
            let mut cut = MAX_ERROR_CHAIN_BYTES;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            break;
        }
        depth += 1;
        match source.source() {
            Some(next) => source = next,
            None => break,
        }
    }
    Some(out)
}

/// An error to describe: by `Display`, else `Debug`, else by its type only.
pub struct ErrRef<'a, E: ?Sized>(&'a E);

impl<'a, E: ?Sized> ErrRef<'a, E> {
    /// Wraps the error.
    #[inline]
    pub fn new(error: &'a E) -> Self {
        ErrRef(error)
    }

    /// An error with neither `Display` nor `Debug`: its type names it.
    pub fn __ops_error(&self) -> ErrorInfo {
        ErrorInfo {
            message: None,
            type_name: std::any::type_name::<E>(),
            chain: None,
        }
    }
}

/// Describes a `std::error::Error` by its `Display` and its chain of causes.
pub trait ErrorSource {
    /// Describes it.
    fn __ops_error(&self) -> ErrorInfo;
}

impl<E: std::error::Error> ErrorSource for &&&ErrRef<'_, E> {
    fn __ops_error(&self) -> ErrorInfo {
        ErrorInfo {
            message: Some(self.0.to_string()),
            type_name: std::any::type_name::<E>(),
            chain: error_chain(self.0),
        }
    }
}

/// Describes an error by its `Display`.
pub trait ErrorDisplay {
    /// Describes it.
    fn __ops_error(&self) -> ErrorInfo;
}

impl<E: fmt::Display + ?Sized> ErrorDisplay for &&ErrRef<'_, E> {
    fn __ops_error(&self) -> ErrorInfo {
        ErrorInfo {
            message: Some(self.0.to_string()),
            type_name: std::any::type_name::<E>(),
            chain: None,
        }
    }
}

/// Describes an error by its `Debug`.
pub trait ErrorDebug {
    /// Describes it.
    fn __ops_error(&self) -> ErrorInfo;
}

impl<E: fmt::Debug + ?Sized> ErrorDebug for &ErrRef<'_, E> {
    fn __ops_error(&self) -> ErrorInfo {
        ErrorInfo {
            message: Some(format!("{:?}", self.0)),
            type_name: std::any::type_name::<E>(),
            chain: None,
        }
    }
}

#[cfg(test)]
// The tests call the probes through `&&` exactly as the generated code does: which method the
// autoref chain picks is what they check.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize, Clone)]
    struct Message {
        role: String,
        content: String,
    }

    #[test]
    fn estimated_size_matches_the_json_size() {
        let msgs = vec![
            Message {
                role: "user".into(),
                content: "x".repeat(10_000),
            },
            Message {
                role: "assistant".into(),
                content: "hello".into(),
            },
        ];
        let estimated = size::size_of_value(&msgs, 64);
        let value = serde_json::to_value(&msgs).unwrap();
        assert_eq!(estimated.heap, heap::value(&value));
        assert_eq!(estimated.json, value.to_string().len());
        assert!(!estimated.too_deep && !estimated.failed);
    }

    fn deep_value(levels: usize) -> Value {
        let mut v = json!("leaf");
        for _ in 0..levels {
            v = Value::Array(vec![v]);
        }
        v
    }

    #[test]
    fn a_value_of_any_depth_is_captured_cut_at_the_limit_and_never_cloned() {
        struct A;
        for levels in [100, 1_000_000] {
            let v = deep_value(levels);
            for c in [
                Captured::now(&v),
                Captured::later(&v),
                (&&Cap::<_, A>::new(&v)).__ops_capture(),
            ] {
                assert!(matches!(c.inner, Inner::Json(_)), "{c:?}");
                let out = c.to_value();
                assert!(limits::measure(&out).1 <= 66, "{levels}");
                let mut at = &out;
                while let Some(first) = at.get(0) {
                    at = first;
                }
                assert!(limits::is_marker(at), "{at}");
            }
            limits::drop_iteratively(v);
        }
    }

    #[test]
    fn a_value_over_the_byte_limit_is_cut_to_a_preview_and_never_cloned() {
        let big = Message {
            role: "user".into(),
            content: "z".repeat(50 << 20),
        };
        let c = (&&Cap::<_, Message>::new(&big)).__ops_capture();
        assert!(matches!(c.inner, Inner::Truncated { .. }), "{c:?}");
        assert!(c.size() < 20_000, "{}", c.size());
        let v = c.to_value();
        assert_eq!(v[limits::TRUNCATED_KEY], json!(true));
        assert!(v["original_bytes"].as_u64().unwrap() > 50 << 20);
        assert_eq!(
            v["preview"]["role"],
            json!("user"),
            "the preview keeps its shape"
        );
    }

    #[test]
    fn later_and_now_give_the_same_json() {
        let m = Message {
            role: "user".into(),
            content: "hi".into(),
        };
        let later = Captured::later(&m);
        let now = Captured::now(&m);
        assert_eq!(later.to_value(), now.to_value());
        assert_eq!(later.to_value(), json!({"role": "user", "content": "hi"}));
        assert_eq!(later.size(), now.size());
    }

    #[test]
    fn autoref_picks_later_for_owned_static_types_and_now_otherwise() {
        struct A;
        let s = "x".repeat(100);
        let later = (&&Cap::<_, A>::new(&s)).__ops_capture();
        assert!(matches!(later.inner, Inner::Later(_)));
        let borrowed: &str = &s;
        let later = (&&Cap::<_, A>::new(borrowed)).__ops_capture();
        assert!(matches!(later.inner, Inner::Later(_)));
        assert_eq!(later.to_value(), json!(s));
        // Small values are turned into JSON at once.
        let small = (&&Cap::<_, A>::new(&7u64)).__ops_capture();
        assert!(matches!(small.inner, Inner::Json(_)));
        // Not Clone: serialized now.
        #[derive(Serialize)]
        struct NoClone(u8);
        let now = (&&Cap::<_, A>::new(&NoClone(1))).__ops_capture();
        assert!(matches!(now.inner, Inner::Json(_)));
        assert_eq!(now.to_value(), json!(1));
    }

    #[test]
    fn results_split_and_errors_describe_themselves() {
        let ok: Result<u8, std::io::Error> = Ok(3);
        assert!(matches!((&&Out::new(&ok)).__ops_split(), Split::Ok(3)));
        let err: Result<u8, std::fmt::Error> = Err(std::fmt::Error);
        match (&&Out::new(&err)).__ops_split() {
            Split::Err(e) => {
                let info = (&&&ErrRef::new(e)).__ops_error();
                assert_eq!(info.type_name, "core::fmt::Error");
                assert!(info.message.unwrap().contains("error"));
            }
            Split::Ok(_) => panic!("expected the error"),
        }
        let plain = 5u8;
        assert!(matches!((&&Out::new(&plain)).__ops_split(), Split::Ok(5)));
        #[derive(Debug)]
        struct OnlyDebug;
        let info = (&&&ErrRef::new(&OnlyDebug)).__ops_error();
        assert_eq!(info.message.as_deref(), Some("OnlyDebug"));
        struct Opaque;
        let info = (&&&ErrRef::new(&Opaque)).__ops_error();
        assert_eq!(info.message, None);
        assert!(info.type_name.ends_with("Opaque"));
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn errors_with_a_source_record_their_chain() {
        let e = Layer(
            "request failed",
            Some(Box::new(Layer(
                "connect",
                Some(Box::new(Layer("refused", None))),
            ))),
        );
        let info = (&&&&ErrRef::new(&e)).__ops_error();
        assert_eq!(info.message.as_deref(), Some("request failed"));
        assert_eq!(
            info.chain.as_deref(),
            Some("request failed\n\nCaused by:\n    0: connect\n    1: refused")
        );
        // No source, no chain; a Display-only error takes the Display path.
        let alone = Layer("alone", None);
        assert_eq!((&&&&ErrRef::new(&alone)).__ops_error().chain, None);
        let text = "just text";
        let info = (&&&&ErrRef::new(&text)).__ops_error();
        assert_eq!(
            (info.message.as_deref(), info.chain),
            (Some("just text"), None)
        );
    }

    #[test]
    fn error_chains_are_bounded() {
        let mut deep = Layer("bottom", None);
        for _ in 0..100 {
            deep = Layer("layer", Some(Box::new(deep)));
        }
        let chain = error_chain(&deep).unwrap();
        assert_eq!(chain.matches("layer").count(), 1 + MAX_ERROR_CHAIN_DEPTH);
        assert!(chain.ends_with("\n    …"), "{chain}");
        let big: &'static str = Box::leak("é".repeat(10_000).into_boxed_str());
        let wide = Layer("top", Some(Box::new(Layer(big, None))));
        let chain = error_chain(&wide).unwrap();
        assert!(chain.len() <= MAX_ERROR_CHAIN_BYTES + '…'.len_utf8());
        assert!(chain.ends_with('…'));
    }

    #[test]
    fn unserializable_values_say_why() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), 3);
        let v = Captured::now(&map).to_value();
        assert!(v.as_str().unwrap().starts_with("<not serializable"), "{v}");
    }
}
