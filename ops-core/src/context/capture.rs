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

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::ser::{self, Serializer};
use serde_json::{Map, Value};

/// A captured value. Not a stable API: built by code `#[traced]` generates.
pub struct Captured {
    inner: Inner,
    size: usize,
}

enum Inner {
    Json(Value),
    Later(Box<dyn Later>),
    Object(Vec<(&'static str, Captured)>),
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
            Inner::Object(fields) => f
                .debug_map()
                .entries(fields.iter().map(|(k, v)| (k, v)))
                .finish(),
        }
    }
}

impl Captured {
    /// Serializes `value` now, on the caller's thread.
    pub fn now<T: Serialize + ?Sized>(value: &T) -> Self {
        Self::json(serde_json::to_value(value).unwrap_or_else(unserializable))
    }

    /// Keeps `value` to serialize it on the worker. Its size is estimated now (without
    /// serializing: strings count their length), so the queue's byte bound still holds. A
    /// small value (a number, a short string) is turned into JSON at once instead: that is as
    /// cheap as boxing it, and spares the worker an allocation.
    pub fn later<T: Serialize + Send + Sync + 'static>(value: T) -> Self {
        let size = estimate_size(&value);
        if size <= SMALL {
            return Self::now(&value);
        }
        Self {
            inner: Inner::Later(Box::new(value)),
            size,
        }
    }

    /// A JSON value.
    pub(crate) fn json(value: Value) -> Self {
        let size = json_size(&value);
        Self {
            inner: Inner::Json(value),
            size,
        }
    }

    /// A JSON object of captured fields, in order.
    pub(crate) fn object(fields: Vec<(&'static str, Captured)>) -> Self {
        let size = 32
            + fields
                .iter()
                .map(|(k, v)| 24 + k.len() + v.size)
                .sum::<usize>();
        Self {
            inner: Inner::Object(fields),
            size,
        }
    }

    /// The estimated size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The value as JSON. A value whose `Serialize` fails becomes a string saying why.
    pub(crate) fn to_value(&self) -> Value {
        match &self.inner {
            Inner::Json(v) => v.clone(),
            Inner::Later(v) => v.to_json().unwrap_or_else(unserializable),
            Inner::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_value()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

/// The estimated size under which a value is turned into JSON when captured.
const SMALL: usize = 64;

fn unserializable(e: serde_json::Error) -> Value {
    Value::String(format!("<not serializable: {e}>"))
}

/// A rough in-memory size of a JSON value.
pub(crate) fn json_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => 24 + s.len(),
        Value::Array(a) => 24 + a.iter().map(json_size).sum::<usize>(),
        Value::Object(m) => {
            32 + m
                .iter()
                .map(|(k, v)| 24 + k.len() + json_size(v))
                .sum::<usize>()
        }
    }
}

/// The size [`json_size`] would give `value` once serialized, computed without building
/// anything: linear in the number of fields, not in the bytes of its strings.
pub(crate) fn estimate_size<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = SizeCounter(0);
    match value.serialize(&mut counter) {
        Ok(()) => counter.0,
        Err(_) => counter.0 + 64,
    }
}

struct SizeCounter(usize);

#[derive(Debug)]
struct Unsized;

impl fmt::Display for Unsized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("serialize failed")
    }
}

impl std::error::Error for Unsized {}

impl ser::Error for Unsized {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unsized
    }
}

struct LenCounter(usize);

impl fmt::Write for LenCounter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

macro_rules! scalar {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name(self, _: $ty) -> Result<(), Unsized> {
            self.0 += 8;
            Ok(())
        })*
    };
}

impl Serializer for &mut SizeCounter {
    type Ok = ();
    type Error = Unsized;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    scalar!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char);

    fn serialize_str(self, v: &str) -> Result<(), Unsized> {
        self.0 += 24 + v.len();
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unsized> {
        // serde_json writes bytes as an array of numbers.
        self.0 += 24 + 8 * v.len();
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsized> {
        self.0 += 8;
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Unsized> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsized> {
        self.0 += 8;
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsized> {
        self.0 += 8;
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
    ) -> Result<(), Unsized> {
        self.0 += 24 + v.len();
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsized> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Unsized> {
        self.0 += 56 + variant.len();
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Unsized> {
        self.0 += 24;
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Unsized> {
        self.0 += 24;
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Unsized> {
        self.0 += 24;
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, Unsized> {
        self.0 += 80 + variant.len();
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, Unsized> {
        self.0 += 32;
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Unsized> {
        self.0 += 32;
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, Unsized> {
        self.0 += 88 + variant.len();
        Ok(self)
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, v: &T) -> Result<(), Unsized> {
        let mut len = LenCounter(0);
        let _ = fmt::write(&mut len, format_args!("{v}"));
        self.0 += 24 + len.0;
        Ok(())
    }
}

impl ser::SerializeSeq for &mut SizeCounter {
    type Ok = ();
    type Error = Unsized;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsized> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsized> {
        Ok(())
    }
}

impl ser::SerializeTuple for &mut SizeCounter {
    type Ok = ();
    type Error = Unsized;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsized> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsized> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for &mut SizeCounter {
    type Ok = ();
    type Error = Unsized;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsized> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsized> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for &mut SizeCounter {
    type Ok = ();
    type Error = Unsized;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsized> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsized> {
        Ok(())
    }
}

impl ser::SerializeMap for &mut SizeCounter {
    type Ok = ();
    type Error = Unsized;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Unsized> {
        // A key is a string in JSON; its string header is counted as the entry's overhead.
        k.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsized> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsized> {
        Ok(())
    }
}

impl ser::SerializeStruct for &mut SizeCounter {
    type Ok = ();
    type Error = Unsized;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Unsized> {
        self.0 += 24 + key.len();
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsized> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut SizeCounter {
    type Ok = ();
    type Error = Unsized;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Unsized> {
        self.0 += 24 + key.len();
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsized> {
        Ok(())
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
    T: ToOwned + ?Sized,
    T::Owned: Serialize + Send + Sync + 'static,
{
    #[inline]
    fn __ops_capture(&self) -> Captured {
        Captured::later(self.0.to_owned())
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
    T: ToOwned + ?Sized,
    T::Owned: Serialize + Send + Sync + 'static,
{
    #[inline]
    fn __ops_capture_output(&self) -> Captured {
        Captured::later(self.0.to_owned())
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

/// What an error says: its message and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    pub(crate) message: Option<String>,
    pub(crate) type_name: &'static str,
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
        let estimated = estimate_size(&msgs);
        let actual = json_size(&serde_json::to_value(&msgs).unwrap());
        assert_eq!(estimated, actual);
        assert!(estimated > 10_000);
    }

    #[test]
    fn later_and_now_give_the_same_json() {
        let m = Message {
            role: "user".into(),
            content: "hi".into(),
        };
        let later = Captured::later(m.clone());
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

    #[test]
    fn unserializable_values_say_why() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), 3);
        let v = Captured::now(&map).to_value();
        assert!(v.as_str().unwrap().starts_with("<not serializable"), "{v}");
    }
}
