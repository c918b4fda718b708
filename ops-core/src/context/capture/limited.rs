//! Turning a value into JSON within limits: like `serde_json::to_value`, but a part nested
//! deeper than the limit becomes a truncation marker instead of being walked, and once the
//! byte budget is spent strings are cut and further elements skipped. The walk never goes
//! deeper than the limit, so no value can overflow the stack, and what it builds is bounded.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Serializer};
use serde_json::{Map, Number, Value};

/// What is left to spend, shared by the whole walk.
pub(crate) struct Room {
    /// Bytes of JSON text still allowed.
    pub(crate) left: usize,
    pub(crate) max_depth: usize,
    /// Whether anything was cut for the budget.
    pub(crate) cut: bool,
}

/// Builds `value`'s JSON within `room`.
pub(crate) fn to_value<T: Serialize + ?Sized>(
    value: &T,
    room: &mut Room,
) -> Result<Value, LimitError> {
    value.serialize(Limited { room, level: 1 })
}

/// A failed `Serialize` (or a map key that is not a string).
#[derive(Debug)]
pub(crate) struct LimitError(pub(crate) String);

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitError {}

impl ser::Error for LimitError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        LimitError(msg.to_string())
    }
}

struct Limited<'a> {
    room: &'a mut Room,
    /// The level of the value being built (1 for the top).
    level: usize,
}

impl<'a> Limited<'a> {
    fn spend(&mut self, n: usize) {
        self.room.left = self.room.left.saturating_sub(n);
    }

    fn string(mut self, s: &str) -> Value {
        let keep = floor(s, self.room.left.saturating_sub(2));
        if keep < s.len() {
            self.room.cut = true;
        }
        self.spend(keep + 2);
        Value::String(s[..keep].to_owned())
    }

    fn number(mut self, n: impl Into<Number>) -> Value {
        self.spend(8);
        Value::Number(n.into())
    }

    fn too_deep(&self) -> bool {
        self.level >= self.room.max_depth
    }

    fn seq(mut self, variant: Option<&'static str>) -> Seq<'a> {
        self.spend(2);
        let items = (!self.too_deep()).then(Vec::new);
        Seq {
            level: self.level,
            room: self.room,
            items,
            variant,
        }
    }

    fn map(mut self, variant: Option<&'static str>) -> MapOut<'a> {
        self.spend(2);
        let map = (!self.too_deep()).then(Map::new);
        MapOut {
            level: self.level,
            room: self.room,
            map,
            key: None,
            variant,
        }
    }
}

fn floor(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    (0..=at).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0)
}

fn depth_marker(max_depth: usize) -> Value {
    let mut m = Map::new();
    m.insert(crate::limits::TRUNCATED_KEY.into(), Value::Bool(true));
    m.insert(
        "reason".into(),
        format!("nested deeper than {max_depth} levels; the limit is {max_depth}").into(),
    );
    Value::Object(m)
}

fn wrap(variant: Option<&'static str>, value: Value) -> Value {
    match variant {
        None => value,
        Some(v) => {
            let mut m = Map::new();
            m.insert(v.to_owned(), value);
            Value::Object(m)
        }
    }
}

impl<'a> Serializer for Limited<'a> {
    type Ok = Value;
    type Error = LimitError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = MapOut<'a>;
    type SerializeStruct = MapOut<'a>;
    type SerializeStructVariant = MapOut<'a>;

    fn serialize_bool(mut self, v: bool) -> Result<Value, LimitError> {
        self.spend(5);
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, LimitError> {
        Ok(self.number(v))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, LimitError> {
        Ok(self.number(v))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, LimitError> {
        Ok(self.number(v))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, LimitError> {
        Ok(self.number(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, LimitError> {
        Ok(self.number(v))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, LimitError> {
        Ok(self.number(v))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, LimitError> {
        Ok(self.number(v))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, LimitError> {
        Ok(self.number(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, LimitError> {
        match i64::try_from(v) {
            Ok(v) => Ok(self.number(v)),
            Err(_) => Ok(self.string(&v.to_string())),
        }
    }
    fn serialize_u128(self, v: u128) -> Result<Value, LimitError> {
        match u64::try_from(v) {
            Ok(v) => Ok(self.number(v)),
            Err(_) => Ok(self.string(&v.to_string())),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<Value, LimitError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(mut self, v: f64) -> Result<Value, LimitError> {
        self.spend(8);
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn serialize_char(self, v: char) -> Result<Value, LimitError> {
        Ok(self.string(v.encode_utf8(&mut [0; 4])))
    }
    fn serialize_str(self, v: &str) -> Result<Value, LimitError> {
        Ok(self.string(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, LimitError> {
        let mut seq = self.seq(None);
        for b in v {
            ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        ser::SerializeSeq::end(seq)
    }
    fn serialize_none(mut self) -> Result<Value, LimitError> {
        self.spend(4);
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, LimitError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, LimitError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, LimitError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, LimitError> {
        Ok(self.string(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Value, LimitError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, LimitError> {
        if self.too_deep() {
            return Ok(depth_marker(self.room.max_depth));
        }
        self.spend(variant.len() + 5);
        let inner = v.serialize(Limited {
            room: self.room,
            level: self.level + 1,
        })?;
        Ok(wrap(Some(variant), inner))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, LimitError> {
        Ok(self.seq(None))
    }
    fn serialize_tuple(self, _: usize) -> Result<Seq<'a>, LimitError> {
        Ok(self.seq(None))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq<'a>, LimitError> {
        Ok(self.seq(None))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, LimitError> {
        Ok(self.seq(Some(variant)))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapOut<'a>, LimitError> {
        Ok(self.map(None))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<MapOut<'a>, LimitError> {
        Ok(self.map(None))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<MapOut<'a>, LimitError> {
        Ok(self.map(Some(variant)))
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, v: &T) -> Result<Value, LimitError> {
        Ok(self.string(&v.to_string()))
    }
}

/// An array being built; `items` is `None` when it is too deep to walk.
pub(crate) struct Seq<'a> {
    room: &'a mut Room,
    level: usize,
    items: Option<Vec<Value>>,
    variant: Option<&'static str>,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), LimitError> {
        let Some(items) = &mut self.items else {
            return Ok(());
        };
        if self.room.left == 0 {
            self.room.cut = true;
            return Ok(());
        }
        self.room.left = self.room.left.saturating_sub(1);
        items.push(v.serialize(Limited {
            room: self.room,
            level: self.level + 1,
        })?);
        Ok(())
    }

    fn finish(self) -> Value {
        match self.items {
            None => depth_marker(self.room.max_depth),
            Some(items) => wrap(self.variant, Value::Array(items)),
        }
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = Value;
    type Error = LimitError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), LimitError> {
        self.element(v)
    }
    fn end(self) -> Result<Value, LimitError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = Value;
    type Error = LimitError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), LimitError> {
        self.element(v)
    }
    fn end(self) -> Result<Value, LimitError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = Value;
    type Error = LimitError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), LimitError> {
        self.element(v)
    }
    fn end(self) -> Result<Value, LimitError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for Seq<'_> {
    type Ok = Value;
    type Error = LimitError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), LimitError> {
        self.element(v)
    }
    fn end(self) -> Result<Value, LimitError> {
        Ok(self.finish())
    }
}

/// An object being built; `map` is `None` when it is too deep to walk.
pub(crate) struct MapOut<'a> {
    room: &'a mut Room,
    level: usize,
    map: Option<Map<String, Value>>,
    key: Option<String>,
    variant: Option<&'static str>,
}

impl MapOut<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: String, v: &T) -> Result<(), LimitError> {
        let Some(map) = &mut self.map else {
            return Ok(());
        };
        if self.room.left == 0 {
            self.room.cut = true;
            return Ok(());
        }
        self.room.left = self.room.left.saturating_sub(key.len() + 4);
        let value = v.serialize(Limited {
            room: self.room,
            level: self.level + 1,
        })?;
        map.insert(key, value);
        Ok(())
    }

    fn finish(self) -> Value {
        match self.map {
            None => depth_marker(self.room.max_depth),
            Some(map) => wrap(self.variant, Value::Object(map)),
        }
    }
}

impl ser::SerializeMap for MapOut<'_> {
    type Ok = Value;
    type Error = LimitError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), LimitError> {
        if self.map.is_none() {
            return Ok(());
        }
        // Keys are short in practice; one is built with what is left, at this level.
        let key = k.serialize(Limited {
            room: self.room,
            level: self.level,
        })?;
        self.key = Some(match key {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(LimitError("key must be a string".into())),
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), LimitError> {
        match self.key.take() {
            Some(key) => self.field(key, v),
            None => Ok(()),
        }
    }
    fn end(self) -> Result<Value, LimitError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapOut<'_> {
    type Ok = Value;
    type Error = LimitError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), LimitError> {
        self.field(key.to_owned(), v)
    }
    fn end(self) -> Result<Value, LimitError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for MapOut<'_> {
    type Ok = Value;
    type Error = LimitError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), LimitError> {
        self.field(key.to_owned(), v)
    }
    fn end(self) -> Result<Value, LimitError> {
        Ok(self.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn room(left: usize, max_depth: usize) -> Room {
        Room {
            left,
            max_depth,
            cut: false,
        }
    }

    #[derive(Serialize)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, String),
        Struct { a: Option<u8> },
    }

    #[derive(Serialize)]
    struct S {
        name: String,
        tags: Vec<&'static str>,
        e: Vec<E>,
        map: std::collections::BTreeMap<u32, bool>,
        bytes: serde_bytes_like::Bytes,
        big: u128,
        nan: f64,
    }

    mod serde_bytes_like {
        pub(super) struct Bytes(pub(super) Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    fn sample() -> S {
        S {
            name: "n".into(),
            tags: vec!["a", "b"],
            e: vec![
                E::Unit,
                E::New(1),
                E::Tuple(2, "x".into()),
                E::Struct { a: None },
            ],
            map: [(1, true), (2, false)].into_iter().collect(),
            bytes: serde_bytes_like::Bytes(vec![1, 2]),
            big: u128::MAX,
            nan: f64::NAN,
        }
    }

    #[test]
    fn within_limits_it_is_what_serde_json_builds() {
        let mut r = room(usize::MAX, 64);
        let ours = to_value(&sample(), &mut r).unwrap();
        let mut theirs = serde_json::to_value(S { big: 0, ..sample() }).unwrap();
        theirs["big"] = json!(u128::MAX.to_string());
        assert_eq!(ours, theirs);
        assert!(!r.cut);
    }

    #[test]
    fn a_deep_value_is_cut_where_it_is_too_deep_without_walking_further() {
        let mut v = json!(1);
        for _ in 0..200_000 {
            v = Value::Array(vec![v]);
        }
        let mut r = room(usize::MAX, 4);
        let out = to_value(&v, &mut r).unwrap();
        assert!(crate::limits::is_marker(&out[0][0][0]), "{out}");
        assert_eq!(crate::limits::measure(&out).1, 5);
        crate::limits::drop_iteratively(v);
    }

    #[test]
    fn the_budget_cuts_strings_and_skips_elements() {
        let v: Vec<String> = (0..1000).map(|i| format!("item-{i}")).collect();
        let mut r = room(100, 64);
        let out = to_value(&v, &mut r).unwrap();
        assert!(r.cut);
        let text = out.to_string();
        assert!(text.len() <= 140, "{text}");
        assert_eq!(out[0], json!("item-0"));
        let mut r = room(10, 64);
        assert_eq!(
            to_value(&"x".repeat(100), &mut r).unwrap(),
            json!("xxxxxxxx")
        );
    }
}
