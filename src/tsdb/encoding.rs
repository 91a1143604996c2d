//! Byte codecs shared by every TSDB file format: big-endian integers, Go `encoding/binary`
//! varints (LEB128, zig-zag for signed), length-prefixed strings and CRC32-Castagnoli.
//!
//! [`Decbuf`] decodes from a slice and reports every failure with the file and the absolute
//! offset, so callers can propagate errors with `?` and still say where the damage is.
//! [`Encbuf`] is the matching writer.

use std::path::Path;

use super::error::{Result, TsdbError};

/// The longest valid encoding of a 64-bit varint, in bytes.
pub const MAX_VARINT_LEN64: usize = 10;

/// CRC32-Castagnoli of `data`, as every TSDB file stores it.
pub fn crc32(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Zig-zag encoding of a signed integer, as Go's `binary.PutVarint`.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Decodes a uvarint from the start of `buf`: `(value, bytes used)`, or `None` when `buf` ends
/// first or the value overflows 64 bits.
pub fn read_uvarint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(MAX_VARINT_LEN64) {
        if i == MAX_VARINT_LEN64 - 1 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

/// A decoding cursor over `buf`, whose first byte sits at `base` in `file`.
#[derive(Clone)]
pub struct Decbuf<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    file: &'a Path,
}

impl<'a> Decbuf<'a> {
    /// A cursor over `buf`; `base` is the absolute file offset of `buf[0]`.
    pub fn new(buf: &'a [u8], base: u64, file: &'a Path) -> Self {
        Decbuf {
            buf,
            pos: 0,
            base,
            file,
        }
    }

    /// The absolute file offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes left to decode.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes left to decode.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// An error naming this cursor's file and current offset.
    pub fn corrupt(&self, what: impl Into<String>) -> TsdbError {
        TsdbError::corrupt(self.file, self.offset(), what)
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(self.corrupt(format!(
                "{what}: need {n} bytes, only {} left",
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, what: &str) -> Result<()> {
        self.bytes(n, what).map(|_| ())
    }

    /// One byte.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    /// A big-endian u16.
    pub fn be16(&mut self, what: &str) -> Result<u16> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian u32.
    pub fn be32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    /// A big-endian u64.
    pub fn be64(&mut self, what: &str) -> Result<u64> {
        let b = self.bytes(8, what)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    /// An unsigned LEB128 varint.
    pub fn uvarint(&mut self, what: &str) -> Result<u64> {
        match read_uvarint(self.rest()) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(self.corrupt(format!("{what}: invalid or truncated varint"))),
        }
    }

    /// An unsigned varint that must fit in 32 bits.
    pub fn uvarint32(&mut self, what: &str) -> Result<u32> {
        let at = self.offset();
        let v = self.uvarint(what)?;
        u32::try_from(v)
            .map_err(|_| TsdbError::corrupt(self.file, at, format!("{what}: {v} overflows u32")))
    }

    /// A zig-zag signed varint.
    pub fn varint(&mut self, what: &str) -> Result<i64> {
        Ok(unzigzag(self.uvarint(what)?))
    }

    /// A uvarint length followed by that many bytes.
    pub fn uvarint_bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let len = self.uvarint(what)?;
        let len =
            usize::try_from(len).map_err(|_| self.corrupt(format!("{what}: length {len}")))?;
        self.bytes(len, what)
    }

    /// A uvarint-length-prefixed UTF-8 string.
    pub fn uvarint_str(&mut self, what: &str) -> Result<&'a str> {
        let at = self.offset();
        let b = self.uvarint_bytes(what)?;
        std::str::from_utf8(b)
            .map_err(|_| TsdbError::corrupt(self.file, at, format!("{what}: not valid UTF-8")))
    }
}

/// A growable encoding buffer, the writing twin of [`Decbuf`].
#[derive(Default, Debug, Clone)]
pub struct Encbuf {
    /// The encoded bytes.
    pub buf: Vec<u8>,
}

impl Encbuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Encbuf::default()
    }

    /// Empties the buffer, keeping its capacity.
    pub fn reset(&mut self) {
        self.buf.clear();
    }

    /// Number of bytes written.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends one byte.
    pub fn put_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a big-endian u16.
    pub fn put_be16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian u32.
    pub fn put_be32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian u64.
    pub fn put_be64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends an unsigned LEB128 varint.
    pub fn put_uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// Appends a zig-zag signed varint.
    pub fn put_varint(&mut self, v: i64) {
        self.put_uvarint(zigzag(v));
    }

    /// Appends raw bytes.
    pub fn put_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Appends a uvarint length and the bytes of `s`.
    pub fn put_uvarint_str(&mut self, s: &str) {
        self.put_uvarint(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Appends the CRC32C of `self.buf[from..]` as a big-endian u32.
    pub fn put_crc_since(&mut self, from: usize) {
        let c = crc32(&self.buf[from..]);
        self.put_be32(c);
    }
}

/// Number of bytes `v` takes as a uvarint.
pub fn uvarint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut e = Encbuf::new();
            e.put_uvarint(u);
            prop_assert_eq!(e.len(), uvarint_len(u));
            e.put_varint(i);
            let p = Path::new("x");
            let mut d = Decbuf::new(&e.buf, 0, p);
            prop_assert_eq!(d.uvarint("u").unwrap(), u);
            prop_assert_eq!(d.varint("i").unwrap(), i);
            prop_assert_eq!(d.remaining(), 0);
        }
    }

    #[test]
    fn truncated_varint_names_file_and_offset() {
        let p = Path::new("blk/index");
        let mut d = Decbuf::new(&[0x80, 0x80], 100, p);
        let err = d.uvarint("series length").unwrap_err().to_string();
        assert!(err.contains("blk/index"), "{err}");
        assert!(err.contains("offset 100"), "{err}");
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let bytes = [0xff; 11];
        assert!(read_uvarint(&bytes).is_none());
        let mut max = [0xff; 10];
        max[9] = 0x01;
        assert_eq!(read_uvarint(&max), Some((u64::MAX, 10)));
    }
}
