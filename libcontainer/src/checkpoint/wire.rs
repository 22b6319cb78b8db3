//! The few protobuf encodings CRIU's rpc.proto needs: varints, length-delimited fields (strings
//! and nested messages) and a field-by-field reader. Hand-written because the binaries carry no
//! protobuf library and CI has no protoc.

/// Wire types of the protobuf encoding.
const VARINT: u64 = 0;
const LEN: u64 = 2;

/// An encoder that appends fields to a buffer.
#[derive(Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u64) {
        self.varint((u64::from(field) << 3) | wire);
    }

    /// An int32/enum field (negative values take ten bytes, as protobuf sign-extends them).
    pub fn int32(&mut self, field: u32, v: i32) -> &mut Self {
        self.key(field, VARINT);
        self.varint(i64::from(v) as u64);
        self
    }

    pub fn bool(&mut self, field: u32, v: bool) -> &mut Self {
        self.key(field, VARINT);
        self.varint(u64::from(v));
        self
    }

    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn string(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }
}

/// One decoded field: its number and value (a varint or the bytes of a length-delimited field).
#[derive(Debug, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Decode every field of a message; fixed32/fixed64 fields are skipped (rpc.proto's replies
/// have none we read). An error names what was malformed.
pub fn fields(mut buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let field = u32::try_from(key >> 3).map_err(|_| format!("field number {} too large", key >> 3))?;
        match key & 7 {
            0 => out.push((field, Value::Varint(read_varint(&mut buf)?))),
            1 => buf = buf.get(8..).ok_or("truncated fixed64 field")?,
            2 => {
                let len = usize::try_from(read_varint(&mut buf)?).map_err(|_| "length too large")?;
                let (v, rest) = (buf.get(..len).ok_or("truncated length-delimited field")?, &buf[len..]);
                out.push((field, Value::Bytes(v)));
                buf = rest;
            }
            5 => buf = buf.get(4..).ok_or("truncated fixed32 field")?,
            w => return Err(format!("unsupported wire type {w} (field {field})")),
        }
    }
    Ok(out)
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than ten bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut e = Encoder::new();
        e.int32(1, 300).bool(3, true).string(10, "dump.log").int32(2, -1);
        let bytes = e.into_bytes();
        assert_eq!(&bytes[..3], &[0x08, 0xac, 0x02]);
        let f = fields(&bytes).unwrap();
        assert_eq!(f[0], (1, Value::Varint(300)));
        assert_eq!(f[1], (3, Value::Varint(1)));
        assert_eq!(f[2], (10, Value::Bytes(b"dump.log")));
        assert_eq!(f[3], (2, Value::Varint(u64::MAX)));
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(fields(&[0x0a, 0x05, b'a']).is_err());
        assert!(fields(&[0x08, 0x80]).is_err());
        assert!(fields(&[0x0b]).is_err());
    }
}
