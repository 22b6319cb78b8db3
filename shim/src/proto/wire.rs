//! The protobuf wire format, as much of it as containerd's task API uses: varints, length-
//! delimited fields (strings, bytes, nested messages, packed repeated integers) and the two
//! fixed widths, which are only ever skipped.
//!
//! Written here instead of using the protobuf crate: the shim needs a few dozen flat messages,
//! and rust-protobuf's reflection and descriptors were the largest part of the shim's code
//! (see README, "Shim footprint").

use std::fmt;

/// A message that cannot be decoded: truncated, a bad varint, or a field of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad protobuf message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed64(u64),
    Fixed32(u32),
}

/// The fields of an encoded message, in wire order: `(field number, value)`.
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Fields<'a> {
        Fields { buf }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for (i, b) in self.buf.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(v);
            }
        }
        err("truncated or overlong varint")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return err(format!("field needs {n} bytes, {} left", self.buf.len()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next_field(&mut self) -> Result<(u32, Value<'a>), DecodeError> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| DecodeError(format!("field number {}", key >> 3)))?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default())),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| DecodeError("length".into()))?;
                Value::Bytes(self.take(len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default())),
            t => return err(format!("wire type {t} of field {number}")),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let item = self.next_field();
        if item.is_err() {
            // Nothing after a malformed field can be trusted.
            self.buf = &[];
        }
        Some(item)
    }
}

/// Appends fields to a buffer. Proto3: fields at their default value are left out.
#[derive(Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn key(&mut self, number: u32, wire_type: u8) {
        self.varint((u64::from(number) << 3) | u64::from(wire_type));
    }

    /// A length-delimited field whose content `f` writes.
    pub fn nested(&mut self, number: u32, f: impl FnOnce(&mut Encoder)) {
        let mut inner = Encoder::default();
        f(&mut inner);
        self.bytes(number, &inner.buf);
    }

    /// A length-delimited field, written even when empty (a present nested message).
    pub fn bytes(&mut self, number: u32, data: &[u8]) {
        self.key(number, 2);
        self.varint(data.len() as u64);
        self.buf.extend_from_slice(data);
    }
}

/// A field type: how one value merges in from the wire and goes out onto it.
pub trait Field: Default {
    fn merge(&mut self, v: Value<'_>) -> Result<(), DecodeError>;
    fn encode(&self, number: u32, e: &mut Encoder);
}

/// A message: a struct of fields (see the `message!` macro).
pub trait Message: Default {
    fn merge_field(&mut self, number: u32, v: Value<'_>) -> Result<(), DecodeError>;
    fn encode_fields(&self, e: &mut Encoder);

    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut m = Self::default();
        for field in Fields::new(buf) {
            let (number, v) = field?;
            m.merge_field(number, v)?;
        }
        Ok(m)
    }

    fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        self.encode_fields(&mut e);
        e.buf
    }
}

fn varint_of(v: Value<'_>, what: &str) -> Result<u64, DecodeError> {
    match v {
        Value::Varint(n) => Ok(n),
        other => err(format!("{what} field with a {other:?} value")),
    }
}

fn bytes_of<'a>(v: Value<'a>, what: &str) -> Result<&'a [u8], DecodeError> {
    match v {
        Value::Bytes(b) => Ok(b),
        other => err(format!("{what} field with a {other:?} value")),
    }
}

impl Field for String {
    fn merge(&mut self, v: Value<'_>) -> Result<(), DecodeError> {
        let b = bytes_of(v, "string")?;
        *self = std::str::from_utf8(b)
            .map_err(|_| DecodeError("string is not UTF-8".into()))?
            .to_string();
        Ok(())
    }
    fn encode(&self, number: u32, e: &mut Encoder) {
        if !self.is_empty() {
            e.bytes(number, self.as_bytes());
        }
    }
}

impl Field for Vec<u8> {
    fn merge(&mut self, v: Value<'_>) -> Result<(), DecodeError> {
        *self = bytes_of(v, "bytes")?.to_vec();
        Ok(())
    }
    fn encode(&self, number: u32, e: &mut Encoder) {
        if !self.is_empty() {
            e.bytes(number, self);
        }
    }
}

impl Field for bool {
    fn merge(&mut self, v: Value<'_>) -> Result<(), DecodeError> {
        *self = varint_of(v, "bool")? != 0;
        Ok(())
    }
    fn encode(&self, number: u32, e: &mut Encoder) {
        if *self {
            e.key(number, 0);
            e.varint(1);
        }
    }
}

/// The integer types, all varints on the wire (negative ones as ten bytes, as protobuf does).
macro_rules! varint_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn merge(&mut self, v: Value<'_>) -> Result<(), DecodeError> {
                // Truncation is protobuf's rule for a varint read into a narrower type.
                *self = varint_of(v, stringify!($t))? as $t;
                Ok(())
            }
            fn encode(&self, number: u32, e: &mut Encoder) {
                if *self != 0 {
                    e.key(number, 0);
                    e.varint(*self as u64);
                }
            }
        }
    )*};
}
varint_field!(u32, u64, i32, i64);

impl Field for Vec<String> {
    fn merge(&mut self, v: Value<'_>) -> Result<(), DecodeError> {
        let mut s = String::new();
        s.merge(v)?;
        self.push(s);
        Ok(())
    }
    fn encode(&self, number: u32, e: &mut Encoder) {
        for s in self {
            e.bytes(number, s.as_bytes());
        }
    }
}

/// `repeated uint64`: packed on the way out, either form on the way in.
impl Field for Vec<u64> {
    fn merge(&mut self, v: Value<'_>) -> Result<(), DecodeError> {
        match v {
            Value::Varint(n) => self.push(n),
            Value::Bytes(b) => {
                let mut f = Fields { buf: b };
                while !f.buf.is_empty() {
                    self.push(f.varint()?);
                }
            }
            other => return err(format!("repeated uint64 field with a {other:?} value")),
        }
        Ok(())
    }
    fn encode(&self, number: u32, e: &mut Encoder) {
        if !self.is_empty() {
            e.nested(number, |inner| self.iter().for_each(|v| inner.varint(*v)));
        }
    }
}

impl<M: Message> Field for Option<M> {
    fn merge(&mut self, v: Value<'_>) -> Result<(), DecodeError> {
        let b = bytes_of(v, "message")?;
        let m = self.get_or_insert_with(M::default);
        for field in Fields::new(b) {
            let (number, v) = field?;
            m.merge_field(number, v)?;
        }
        Ok(())
    }
    fn encode(&self, number: u32, e: &mut Encoder) {
        if let Some(m) = self {
            e.nested(number, |inner| m.encode_fields(inner));
        }
    }
}

impl<M: Message> Field for Vec<M> {
    fn merge(&mut self, v: Value<'_>) -> Result<(), DecodeError> {
        self.push(M::decode(bytes_of(v, "message")?)?);
        Ok(())
    }
    fn encode(&self, number: u32, e: &mut Encoder) {
        for m in self {
            e.nested(number, |inner| m.encode_fields(inner));
        }
    }
}

/// Declares a message struct with its field numbers; fields not declared are skipped when
/// decoding, as protobuf requires of unknown fields.
#[macro_export]
macro_rules! message {
    ($(#[$meta:meta])* $name:ident { $($number:literal => $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Clone, PartialEq)]
        pub struct $name { $(pub $field: $ty),* }

        impl $crate::proto::wire::Message for $name {
            fn merge_field(
                &mut self,
                number: u32,
                v: $crate::proto::wire::Value<'_>,
            ) -> Result<(), $crate::proto::wire::DecodeError> {
                #[allow(unused_imports)]
                use $crate::proto::wire::Field;
                match number {
                    $($number => self.$field.merge(v),)*
                    _ => { let _ = v; Ok(()) }
                }
            }

            fn encode_fields(&self, _e: &mut $crate::proto::wire::Encoder) {
                #[allow(unused_imports)]
                use $crate::proto::wire::Field;
                $(self.$field.encode($number, _e);)*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::message!(Inner { 1 => n: u64 });
    crate::message!(Outer {
        1 => name: String,
        2 => flag: bool,
        3 => inner: Option<Inner>,
        4 => list: Vec<Inner>,
        5 => nums: Vec<u64>,
        6 => words: Vec<String>,
        7 => signed: i64,
    });

    #[test]
    fn encodes_like_protoc() {
        // Bytes as protoc's encoder writes `name: "ab" flag: true inner { n: 300 }`.
        let m = Outer {
            name: "ab".into(),
            flag: true,
            inner: Some(Inner { n: 300 }),
            ..Default::default()
        };
        assert_eq!(m.encode(), [0x0a, 2, b'a', b'b', 0x10, 1, 0x1a, 3, 0x08, 0xac, 0x02]);
        // Defaults are left out; a present but empty message is not.
        assert!(Outer::default().encode().is_empty());
        let empty_inner = Outer {
            inner: Some(Inner::default()),
            ..Default::default()
        };
        assert_eq!(empty_inner.encode(), [0x1a, 0]);
    }

    #[test]
    fn round_trips() {
        let m = Outer {
            name: "x".into(),
            flag: true,
            inner: Some(Inner { n: u64::MAX }),
            list: vec![Inner { n: 1 }, Inner { n: 0 }],
            nums: vec![0, 1, 1 << 40],
            words: vec!["a".into(), String::new()],
            signed: -5,
        };
        assert_eq!(Outer::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn skips_unknown_fields_and_reads_unpacked_repeats() {
        // field 9 varint, field 10 fixed64, field 11 fixed32, field 12 bytes, then nums unpacked.
        let mut buf = vec![0x48, 7, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4, 0x62, 1, 0];
        buf.extend([0x28, 5, 0x28, 6]);
        assert_eq!(Outer::decode(&buf).map(|m| m.nums), Ok(vec![5, 6]));
    }

    #[test]
    fn rejects_malformed_input() {
        assert!(Outer::decode(&[0x0a, 5, b'a']).is_err(), "truncated string");
        assert!(Outer::decode(&[0x08, 0x80]).is_err(), "truncated varint");
        assert!(Outer::decode(&[0x0a, 1, 0xff]).is_err(), "not UTF-8");
        assert!(Outer::decode(&[0x0b]).is_err(), "wire type 3 (groups)");
        assert!(Outer::decode(&[0x08, 1]).is_err(), "a varint where a string belongs");
        assert!(Outer::decode(&[0xff; 11]).is_err(), "overlong varint");
    }
}
