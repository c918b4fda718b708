//! Sizing a value before capturing it: what it would hold as JSON, how long its JSON is and
//! how deep it goes, found by serializing it into counters. Nothing is built, and the walk
//! stops as soon as the value is nested too deep, so a value of any depth is sized without
//! overflowing the stack.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Serializer};

use crate::model::size::alloc;

/// What sizing a value found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Measured {
    /// The heap its JSON form would hold (see `crate::model::size`).
    pub(crate) heap: usize,
    /// About how many bytes its JSON text takes (strings are not scanned for escapes).
    pub(crate) json: usize,
    /// Whether it nests deeper than the limit given (the walk stopped there).
    pub(crate) too_deep: bool,
    /// Whether its `Serialize` failed.
    pub(crate) failed: bool,
}

/// Sizes `value` as its JSON form, stopping where it nests deeper than `max_depth`.
pub(crate) fn size_of_value<T: Serialize + ?Sized>(value: &T, max_depth: usize) -> Measured {
    walk(value, max_depth, false)
}

/// The heap `value`'s fields hold as the Rust value it is: its structs are laid out inline
/// (their own size is its container's business), their strings, vectors and JSON values are
/// counted as held. Its values must be bounded in depth.
pub(crate) fn heap_of_fields<T: Serialize + ?Sized>(value: &T) -> usize {
    walk(value, usize::MAX, true).heap
}

fn walk<T: Serialize + ?Sized>(value: &T, max_depth: usize, structs_inline: bool) -> Measured {
    let mut counter = Counter {
        heap: 0,
        json: 0,
        max_depth,
        open: Vec::new(),
        too_deep: false,
        structs_inline,
    };
    let failed = value.serialize(&mut counter).is_err() && !counter.too_deep;
    Measured {
        heap: counter.heap,
        json: counter.json,
        too_deep: counter.too_deep,
        failed,
    }
}

const VALUE: usize = std::mem::size_of::<serde_json::Value>();

struct Counter {
    heap: usize,
    json: usize,
    max_depth: usize,
    /// Entries of each open array, map or struct, innermost last.
    open: Vec<(usize, Open)>,
    too_deep: bool,
    /// Whether structs are laid out inline (sizing a Rust value) rather than as JSON maps.
    structs_inline: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Seq,
    Map,
    Struct,
}

impl Counter {
    fn open(&mut self, kind: Open) -> Result<&mut Self, Stop> {
        if self.open.len() + 1 >= self.max_depth {
            self.too_deep = true;
            return Err(Stop);
        }
        self.json += 2;
        self.open.push((0, kind));
        Ok(self)
    }

    fn entry(&mut self) {
        if let Some((n, _)) = self.open.last_mut() {
            *n += 1;
            if *n > 1 {
                self.json += 1;
            }
        }
    }

    fn close(&mut self) {
        if let Some((n, kind)) = self.open.pop() {
            self.heap += match kind {
                Open::Map | Open::Struct if self.structs_inline => 0,
                Open::Map => crate::model::size::map_nodes(n),
                Open::Struct => crate::model::size::map_nodes(n),
                Open::Seq => alloc(n * VALUE),
            };
        }
    }

    /// A struct field's name: held in the struct's layout, or a key of its JSON map.
    fn field(&mut self, len: usize) {
        if self.structs_inline {
            self.entry();
            self.json += len + 3;
        } else {
            self.key(len);
        }
    }

    /// Whether maps and their keys are left out (sizing a Rust value's fields: the caller
    /// counts its JSON objects itself, and a flattened struct serializes as a map).
    fn maps_left_out(&self) -> bool {
        self.structs_inline
    }

    fn string(&mut self, len: usize) {
        self.heap += alloc(len);
        self.json += len + 2;
    }

    fn key(&mut self, len: usize) {
        self.entry();
        self.heap += alloc(len);
        self.json += len + 3;
    }
}

/// Why a walk stopped: too deep, or the value's `Serialize` failed.
#[derive(Debug)]
pub(crate) struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sizing stopped")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
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
        $(fn $name(self, _: $ty) -> Result<(), Stop> {
            self.json += 8;
            Ok(())
        })*
    };
}

impl Serializer for &mut Counter {
    type Ok = ();
    type Error = Stop;
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
        serialize_f64: f64);

    fn serialize_char(self, c: char) -> Result<(), Stop> {
        self.string(c.len_utf8());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Stop> {
        self.string(v.len());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Stop> {
        // serde_json writes bytes as an array of numbers.
        self.heap += alloc(v.len() * VALUE);
        self.json += 2 + 4 * v.len();
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Stop> {
        self.json += 4;
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Stop> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Stop> {
        self.json += 4;
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Stop> {
        self.json += 4;
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Stop> {
        self.string(variant.len());
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        let this = self.open(Open::Map)?;
        this.key(variant.len());
        v.serialize(&mut *this)?;
        this.close();
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Stop> {
        self.open(Open::Seq)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Stop> {
        self.open(Open::Seq)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
        self.open(Open::Seq)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, Stop> {
        let this = self.open(Open::Map)?;
        this.key(variant.len());
        this.open(Open::Seq)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, Stop> {
        self.open(Open::Map)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
        self.open(Open::Struct)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, Stop> {
        let this = self.open(Open::Map)?;
        this.key(variant.len());
        this.open(Open::Struct)
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, v: &T) -> Result<(), Stop> {
        let mut len = LenCounter(0);
        let _ = fmt::write(&mut len, format_args!("{v}"));
        self.string(len.0);
        Ok(())
    }
}

impl ser::SerializeSeq for &mut Counter {
    type Ok = ();
    type Error = Stop;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        self.entry();
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Stop> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeTuple for &mut Counter {
    type Ok = ();
    type Error = Stop;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), Stop> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for &mut Counter {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), Stop> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeTupleVariant for &mut Counter {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), Stop> {
        self.close();
        self.close();
        Ok(())
    }
}

impl ser::SerializeMap for &mut Counter {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Stop> {
        // A key is a string in JSON: size it as one.
        self.entry();
        self.json += 1;
        if self.maps_left_out() {
            return Ok(());
        }
        k.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Stop> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Counter {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        self.field(key.len());
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Stop> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Counter {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        self.field(key.len());
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Stop> {
        self.close();
        self.close();
        Ok(())
    }
}
