//! The D-Bus wire format, as far as hezi's systemd calls need it: marshalling the basic types,
//! arrays, structs and variants into a message, and reading back the header fields and the few
//! reply and signal bodies systemd sends (`o`, `s`, `uoss`).
//!
//! Alignment is counted from the start of the message. The header is padded to 8 bytes, so a
//! body marshalled on its own from offset 0 has the same alignment it will have in the message.

use super::BusError;

/// Message types (the second header byte).
pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// Header field codes.
const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SIGNATURE: u8 = 8;

/// The longest message the D-Bus specification allows (128 MiB); anything longer is garbage.
const MAX_MESSAGE: usize = 128 << 20;

/// A growing, little-endian marshalled buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn align(&mut self, n: usize) {
        while !self.buf.len().is_multiple_of(n) {
            self.buf.push(0);
        }
    }

    pub fn byte(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.u32(u32::from(v));
    }

    /// A string or an object path: u32 length, the bytes, a NUL.
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// A signature: u8 length, the bytes, a NUL.
    pub fn sig(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// An array whose elements align to `elem_align`: the length counts the element bytes only,
    /// not the padding between the length and the first element.
    pub fn array(&mut self, elem_align: usize, items: impl FnOnce(&mut Writer)) {
        self.align(4);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.align(elem_align);
        let start = self.buf.len();
        items(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// A struct or dict entry starts on an 8-byte boundary.
    pub fn strukt(&mut self, fields: impl FnOnce(&mut Writer)) {
        self.align(8);
        fields(self);
    }

    pub fn variant(&mut self, sig: &str, value: impl FnOnce(&mut Writer)) {
        self.sig(sig);
        value(self);
    }
}

/// A method call to marshal.
pub struct Call<'a> {
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub signature: &'a str,
    pub body: Vec<u8>,
}

impl Call<'_> {
    /// The whole message, header and body.
    pub fn encode(&self, serial: u32) -> Vec<u8> {
        let mut w = Writer::default();
        w.byte(b'l');
        w.byte(METHOD_CALL);
        w.byte(0);
        w.byte(1);
        w.u32(self.body.len() as u32);
        w.u32(serial);
        w.array(8, |w| {
            let field = |w: &mut Writer, code: u8, sig: &str, v: &str| {
                w.strukt(|w| {
                    w.byte(code);
                    w.variant(sig, |w| if sig == "g" { w.sig(v) } else { w.str(v) });
                })
            };
            field(w, FIELD_PATH, "o", self.path);
            field(w, FIELD_INTERFACE, "s", self.interface);
            field(w, FIELD_MEMBER, "s", self.member);
            if let Some(d) = self.destination {
                field(w, FIELD_DESTINATION, "s", d);
            }
            if !self.signature.is_empty() {
                field(w, FIELD_SIGNATURE, "g", self.signature);
            }
        });
        w.align(8);
        w.buf.extend_from_slice(&self.body);
        w.buf
    }
}

/// A message read from the bus, with the header fields hezi looks at.
#[derive(Debug, Default)]
pub struct Message {
    pub kind: u8,
    pub big_endian: bool,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub signature: String,
    pub body: Vec<u8>,
}

/// How many bytes follow the first 16 of a message (the rest of the header, padding, body).
pub fn remaining_len(fixed: &[u8; 16]) -> Result<usize, BusError> {
    let big = match fixed[0] {
        b'l' => false,
        b'B' => true,
        other => return Err(BusError::Protocol(format!("bad endianness byte {other:#x}"))),
    };
    let num = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let body = num(&fixed[4..8]) as usize;
    let fields = num(&fixed[12..16]) as usize;
    let total = (16 + fields).div_ceil(8) * 8 + body;
    if total > MAX_MESSAGE {
        return Err(BusError::Protocol(format!(
            "message of {total} bytes is over the limit"
        )));
    }
    Ok(total - 16)
}

impl Message {
    /// Parse one whole message (as sized by [`remaining_len`]).
    pub fn decode(msg: &[u8]) -> Result<Message, BusError> {
        let mut r = Reader::new(msg, msg.first() == Some(&b'B'));
        r.skip(1)?;
        let kind = r.byte()?;
        r.skip(2)?;
        let body_len = r.u32()? as usize;
        let _serial = r.u32()?;
        let fields_len = r.u32()? as usize;
        let end = r.pos + fields_len;
        let mut m = Message {
            kind,
            big_endian: r.big,
            ..Message::default()
        };
        while r.pos < end {
            r.align(8)?;
            let code = r.byte()?;
            let sig = r.sig()?;
            match (code, sig.as_str()) {
                (FIELD_PATH, "o") => m.path = Some(r.str()?),
                (FIELD_INTERFACE, "s") => m.interface = Some(r.str()?),
                (FIELD_MEMBER, "s") => m.member = Some(r.str()?),
                (FIELD_ERROR_NAME, "s") => m.error_name = Some(r.str()?),
                (FIELD_REPLY_SERIAL, "u") => m.reply_serial = Some(r.u32()?),
                (FIELD_SIGNATURE, "g") => m.signature = r.sig()?,
                (_, "s" | "o") => {
                    r.str()?;
                }
                (_, "u") => {
                    r.u32()?;
                }
                (_, "g") => {
                    r.sig()?;
                }
                (_, other) => return Err(BusError::Protocol(format!("header field {code} of type {other}"))),
            }
        }
        r.align(8)?;
        let body = msg
            .get(r.pos..r.pos + body_len)
            .ok_or_else(|| BusError::Protocol("message body is cut short".into()))?;
        m.body = body.to_vec();
        Ok(m)
    }

    /// A reader over the body.
    pub fn reader(&self) -> Reader<'_> {
        Reader::new(&self.body, self.big_endian)
    }

    /// The text of an error reply: its name and, when the body starts with a string, the message.
    pub fn error_text(&self) -> String {
        let name = self.error_name.as_deref().unwrap_or("unnamed error");
        let text = if self.signature.starts_with('s') {
            self.reader().str().ok()
        } else {
            None
        };
        match text {
            Some(t) => format!("{name}: {t}"),
            None => name.to_string(),
        }
    }
}

/// Reads marshalled values from a buffer that starts 8-aligned.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], big: bool) -> Reader<'a> {
        Reader { buf, pos: 0, big }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BusError> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| BusError::Protocol(format!("message cut short at byte {}", self.pos)))?;
        self.pos += n;
        Ok(s)
    }

    fn skip(&mut self, n: usize) -> Result<(), BusError> {
        self.take(n).map(drop)
    }

    fn align(&mut self, n: usize) -> Result<(), BusError> {
        let pad = (n - self.pos % n) % n;
        self.skip(pad)
    }

    pub fn byte(&mut self) -> Result<u8, BusError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, BusError> {
        self.align(4)?;
        let b = self.take(4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    /// A string or object path.
    pub fn str(&mut self) -> Result<String, BusError> {
        let len = self.u32()? as usize;
        let s = self.take(len)?;
        self.skip(1)?;
        String::from_utf8(s.to_vec()).map_err(|_| BusError::Protocol("a string is not UTF-8".into()))
    }

    pub fn sig(&mut self) -> Result<String, BusError> {
        let len = usize::from(self.byte()?);
        let s = self.take(len)?;
        self.skip(1)?;
        String::from_utf8(s.to_vec()).map_err(|_| BusError::Protocol("a signature is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_length_excludes_padding_before_first_element() {
        let mut w = Writer::default();
        w.byte(7);
        // a(sv) of one entry: length at 4, padding to 8, then the struct.
        w.array(8, |w| {
            w.strukt(|w| {
                w.str("Delegate");
                w.variant("b", |w| w.bool(true));
            })
        });
        let b = &w.buf;
        assert_eq!(&b[4..8], &(b.len() as u32 - 8).to_le_bytes());
        assert_eq!(&b[8..12], &8u32.to_le_bytes());
        assert_eq!(&b[12..21], b"Delegate\0");
        // The variant's signature "b", then the u32 aligned to 4.
        assert_eq!(&b[21..24], &[1, b'b', 0]);
        assert_eq!(&b[24..28], &1u32.to_le_bytes());
    }

    #[test]
    fn empty_array_of_structs_still_pads_to_the_element() {
        let mut w = Writer::default();
        w.array(8, |_| {});
        assert_eq!(w.buf, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn call_round_trips_through_decode() {
        let mut body = Writer::default();
        body.str("hezi-c1.scope");
        body.str("replace");
        let call = Call {
            destination: Some("org.freedesktop.systemd1"),
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "StopUnit",
            signature: "ss",
            body: body.buf,
        };
        let bytes = call.encode(42);
        let mut fixed = [0u8; 16];
        fixed.copy_from_slice(&bytes[..16]);
        assert_eq!(remaining_len(&fixed).unwrap(), bytes.len() - 16);
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.kind, METHOD_CALL);
        assert_eq!(m.path.as_deref(), Some("/org/freedesktop/systemd1"));
        assert_eq!(m.member.as_deref(), Some("StopUnit"));
        assert_eq!(m.signature, "ss");
        let mut r = m.reader();
        assert_eq!(r.str().unwrap(), "hezi-c1.scope");
        assert_eq!(r.str().unwrap(), "replace");
    }

    /// An error reply as dbus-daemon sends it, in big-endian to cover the other byte order.
    #[test]
    fn big_endian_error_reply() {
        let mut fields: Vec<u8> = Vec::new();
        let pad = |v: &mut Vec<u8>, n: usize| {
            while !(16 + v.len()).is_multiple_of(n) {
                v.push(0)
            }
        };
        let name = b"org.freedesktop.systemd1.NoSuchUnit";
        fields.extend_from_slice(&[FIELD_ERROR_NAME, 1, b's', 0]);
        fields.extend_from_slice(&(name.len() as u32).to_be_bytes());
        fields.extend_from_slice(name);
        fields.push(0);
        pad(&mut fields, 8);
        fields.extend_from_slice(&[FIELD_REPLY_SERIAL, 1, b'u', 0]);
        fields.extend_from_slice(&9u32.to_be_bytes());
        pad(&mut fields, 8);
        fields.extend_from_slice(&[FIELD_SIGNATURE, 1, b'g', 0, 1, b's', 0]);
        let text = b"Unit x.scope not loaded.";
        let mut body = (text.len() as u32).to_be_bytes().to_vec();
        body.extend_from_slice(text);
        body.push(0);
        let mut msg = vec![b'B', ERROR, 0, 1];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes());
        msg.extend_from_slice(&3u32.to_be_bytes());
        msg.extend_from_slice(&(fields.len() as u32).to_be_bytes());
        msg.extend_from_slice(&fields);
        while !msg.len().is_multiple_of(8) {
            msg.push(0);
        }
        msg.extend_from_slice(&body);
        let mut fixed = [0u8; 16];
        fixed.copy_from_slice(&msg[..16]);
        assert_eq!(remaining_len(&fixed).unwrap(), msg.len() - 16);
        let m = Message::decode(&msg).unwrap();
        assert_eq!(m.kind, ERROR);
        assert_eq!(m.reply_serial, Some(9));
        assert_eq!(
            m.error_text(),
            "org.freedesktop.systemd1.NoSuchUnit: Unit x.scope not loaded."
        );
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let call = Call {
            destination: None,
            path: "/",
            interface: "a.b",
            member: "C",
            signature: "",
            body: Vec::new(),
        };
        let bytes = call.encode(1);
        for n in 0..bytes.len() {
            assert!(Message::decode(&bytes[..n]).is_err(), "cut at {n} decoded");
        }
        let mut fixed = [0u8; 16];
        fixed[0] = b'x';
        assert!(remaining_len(&fixed).is_err());
    }
}
