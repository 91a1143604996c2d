//! MSB-first bit streams, the substrate of the XOR chunk encoding ([`super::xor`]).
//!
//! [`BitWriter`] reproduces the exact byte layout of Prometheus' `bstream`, including one
//! quirk that is visible in chunk bytes: writing a whole byte while the stream is byte-aligned
//! leaves an empty (zero) byte at the end of the stream, whereas writing single bits does not.
//! A chunk whose last write was a whole byte (e.g. a one-sample XOR chunk) therefore ends with
//! one zero byte more than its bit length needs, and byte-identical output must keep it.
//! Only the last write decides whether that byte is there, so the writer keeps it as a flag
//! rather than as a byte: Go's `writeBits` ends with `writeByte` exactly when its width is a
//! non-zero multiple of 8, and `writeByte` leaves the empty byte exactly when the stream is
//! aligned afterwards.
//!
//! The writer keeps the bits of its last, partial byte in a 64-bit accumulator and stores the
//! whole accumulator, 8 bytes, on every write, into a buffer that always has 8 spare bytes past
//! the stream; the stream is therefore always materialized and [`BitWriter::bytes`] is a slice.
//!
//! [`BitReader`] decodes such a stream by loading the 8 bytes from its bit position's byte on
//! for each read, which yields at least 57 bits at once; it keeps a zero-padded copy of the
//! last bytes of the stream for the loads that would reach past its end. Reads past the end
//! return `None`; the caller turns that into a corruption error that names the file and
//! offset.

/// Bytes of the end of the stream that [`BitReader`] keeps zero-padded.
const TAIL_BYTES: usize = 24;

/// The most bits [`BitReader::peek_bits`] may look at.
pub const PEEK_BITS_MAX: u32 = 56;

/// The widest single store of [`BitWriter`]: with up to 7 bits pending in the accumulator,
/// 56 more still fit its 64 bits.
pub const WRITE_FIELDS_MAX: u32 = 56;

/// An append-only MSB-first bit stream, byte-compatible with Prometheus' `bstream`.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    /// The stream, then zero bytes: `buf[..self.len()]` is the stream, and every bit after
    /// the last written one is zero.
    buf: Vec<u8>,
    /// Index in `buf` of the byte that receives the next bit.
    byte: usize,
    /// `buf[byte..byte + 8]`, left-aligned: the top `nacc` bits are written, the rest zero.
    acc: u64,
    /// Bits written to `buf[byte]`, 0..=7.
    nacc: u32,
    /// The last write was whole bytes (Go's `writeByte`): an aligned stream then ends with an
    /// empty byte.
    pad: bool,
}

impl BitWriter {
    /// An empty stream.
    pub fn new() -> Self {
        BitWriter::default()
    }

    /// A stream that starts with the whole bytes `prefix` (e.g. a chunk header to patch
    /// later), reserving `capacity` bytes.
    pub fn with_prefix(prefix: &[u8], capacity: usize) -> Self {
        let len = capacity.max(prefix.len()) + 8;
        // Not `vec![0; len]`: `calloc` is slower for small sizes.
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(prefix);
        buf.resize(len, 0);
        BitWriter {
            buf,
            byte: prefix.len(),
            acc: 0,
            nacc: 0,
            pad: false,
        }
    }

    /// Length of the stream in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.byte + usize::from(self.nacc != 0 || self.pad)
    }

    /// True when nothing was written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the low `nbits` (0..=[`WRITE_FIELDS_MAX`]) bits of `value`, which has no
    /// higher bits set. Leaves `pad` to the caller.
    #[inline(always)]
    fn put(&mut self, value: u64, nbits: u32) {
        debug_assert!(nbits <= WRITE_FIELDS_MAX, "put: {nbits} bits");
        debug_assert!(
            value.checked_shr(nbits).unwrap_or(0) == 0,
            "put: {value:#x} wider than {nbits} bits"
        );
        let dst = match self
            .buf
            .get_mut(self.byte..)
            .and_then(<[u8]>::first_chunk_mut)
        {
            Some(dst) => dst,
            None => make_room(&mut self.buf, &mut self.acc, self.byte),
        };
        let nacc = self.nacc + nbits;
        // A shift by 64 (nothing pending, nothing written) shifts by 0, and `value` is 0.
        let acc = self.acc | value.wrapping_shl(64 - nacc);
        *dst = acc.to_be_bytes();
        let whole = nacc & !7;
        self.byte += (whole / 8) as usize;
        self.acc = acc << whole;
        self.nacc = nacc & 7;
    }

    /// Appends one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        self.put(u64::from(bit), 1);
        self.pad = false;
    }

    /// Appends the 8 bits of `byte`. Like Go's `writeByte`, this always appends a byte to the
    /// stream, so an aligned stream ends with an empty byte afterwards.
    #[inline]
    pub fn write_byte(&mut self, byte: u8) {
        self.put(u64::from(byte), 8);
        self.pad = true;
    }

    /// Appends the low `nbits` bits of `value`, most significant first. `nbits` is 0..=64.
    ///
    /// Go writes the whole bytes of `value` with `writeByte` and the rest bit by bit, so after
    /// a multiple of 8 bits that ends byte-aligned the stream has an empty trailing byte.
    #[inline(always)]
    pub fn write_bits(&mut self, value: u64, nbits: u32) {
        debug_assert!(nbits <= 64, "write_bits: {nbits} > 64 bits");
        if nbits <= WRITE_FIELDS_MAX {
            // No branch on `nbits == 0`, which writes nothing: `put` takes 0 bits of 0.
            let value = value & u64::MAX.checked_shr(64 - nbits).unwrap_or(0);
            self.put(value, nbits);
            self.pad = if nbits == 0 { self.pad } else { nbits % 8 == 0 };
        } else {
            self.put((value >> 32) & (u64::MAX >> (96 - nbits)), nbits - 32);
            self.put(value & 0xffff_ffff, 32);
            self.pad = nbits % 8 == 0;
        }
    }

    /// Appends several fields at once: the low `nbits` (1..=[`WRITE_FIELDS_MAX`]) bits of
    /// `value`, which has no higher bits set, with the bytes that writing the fields one by one
    /// with [`Self::write_bits`] would give when the last field is `last_nbits` (1..=`nbits`)
    /// bits wide.
    #[inline]
    pub fn write_fields(&mut self, value: u64, nbits: u32, last_nbits: u32) {
        debug_assert!(
            (1..=nbits).contains(&last_nbits),
            "write_fields: last field of {last_nbits} bits in {nbits}"
        );
        self.put(value, nbits);
        self.pad = last_nbits % 8 == 0;
    }

    /// Overwrites `bytes.len()` bytes of the stream at `offset` (e.g. a header written with
    /// [`Self::with_prefix`]). Panics if they are not all in the stream.
    #[inline]
    pub fn overwrite(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset + bytes.len();
        assert!(end <= self.len(), "overwrite past the end of the stream");
        self.buf[offset..end].copy_from_slice(bytes);
        if end > self.byte {
            self.acc = u64::from(self.buf[self.byte]) << 56;
        }
    }

    /// The stream so far; the last byte is zero-padded.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len()]
    }

    /// The stream so far, mutable, for patching headers written with [`Self::with_prefix`].
    /// Later writes see the changes, as in Go (but [`Self::overwrite`] is cheaper).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // Without spare bytes, the next write goes through `make_room`, which reloads `acc`.
        self.buf.truncate(self.len());
        &mut self.buf
    }

    /// The stream, consuming the writer.
    pub fn into_bytes(mut self) -> Vec<u8> {
        let len = self.len();
        self.buf.truncate(len);
        self.buf
    }
}

/// Grows `buf` to have 8 bytes from `byte` on, which it returns, and reloads the writer's
/// accumulator `acc` from `buf[byte]`, which [`BitWriter::bytes_mut`] may have changed.
#[cold]
#[inline(never)]
fn make_room<'b>(buf: &'b mut Vec<u8>, acc: &mut u64, byte: usize) -> &'b mut [u8; 8] {
    let len = (byte + 8).max(buf.len() * 2).max(64);
    buf.resize(len, 0);
    *acc = u64::from(buf[byte]) << 56;
    buf[byte..]
        .first_chunk_mut()
        .expect("8 bytes after resizing")
}

/// A reader of MSB-first bit streams over a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Bits read so far, at most `end`.
    pos: u64,
    /// Bits in `data`.
    end: u64,
    /// The last (up to) [`TAIL_BYTES`] bytes of `data`, from `tail_start` on, then zeros:
    /// words that reach past the end of `data` come from here.
    tail: [u8; 2 * TAIL_BYTES],
    tail_start: usize,
}

impl<'a> BitReader<'a> {
    /// A reader positioned at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        let tail_start = data.len().saturating_sub(TAIL_BYTES);
        let mut tail = [0; 2 * TAIL_BYTES];
        tail[..data.len() - tail_start].copy_from_slice(&data[tail_start..]);
        BitReader {
            data,
            pos: 0,
            end: data.len() as u64 * 8,
            tail,
            tail_start,
        }
    }

    /// Number of bits read so far.
    #[inline]
    pub fn bit_position(&self) -> u64 {
        self.pos
    }

    /// Number of bits not read yet.
    #[inline]
    pub fn bits_left(&self) -> u64 {
        self.end - self.pos
    }

    /// The 64 bits from bit `pos` on, MSB first; bits past the end of the stream read as
    /// zero. Only the first 57 are guaranteed: after them come zeros when `pos` is not
    /// byte-aligned. `pos` may be past the end.
    #[inline(always)]
    fn word_at(&self, pos: u64) -> u64 {
        let byte = (pos / 8) as usize;
        let bytes = if byte + 8 <= self.data.len() {
            &self.data[byte..byte + 8]
        } else {
            // `byte` is past `tail_start`; from index `TAIL_BYTES` on, `tail` is zeros.
            let i = (byte - self.tail_start).min(TAIL_BYTES);
            &self.tail[i..i + 8]
        };
        u64::from_be_bytes(bytes.try_into().expect("8 bytes")) << (pos % 8)
    }

    /// The stream for decoders that load `lookahead` (at most 24) bytes at a time from the
    /// byte of their bit position on: `(data, tail, tail_start)`, where `tail` holds the bytes
    /// of `data` from `tail_start` on and then enough zeros that `tail[byte - tail_start..]`
    /// has `lookahead` bytes for every `byte` of `data` (or its end) whose
    /// `data[byte..]` has fewer.
    pub(crate) fn split_tail(&self, lookahead: usize) -> (&'a [u8], &[u8], usize) {
        assert!(lookahead <= TAIL_BYTES, "lookahead of {lookahead} bytes");
        (self.data, &self.tail, self.tail_start)
    }

    /// Moves to bit `pos`, which the caller has checked is at most the stream's length.
    #[inline(always)]
    pub(crate) fn set_position(&mut self, pos: u64) {
        debug_assert!(pos <= self.end, "set_position: {pos} past {}", self.end);
        self.pos = pos;
    }

    /// The next `n` (1..=56) bits without consuming them; bits past the end of the stream
    /// read as zero. Pair with [`Self::skip_bits`].
    #[inline]
    pub fn peek_bits(&mut self, n: u32) -> u64 {
        debug_assert!((1..=PEEK_BITS_MAX).contains(&n), "peek_bits: {n} bits");
        self.word_at(self.pos) >> (64 - n)
    }

    /// Consumes `n` (0..=56) bits, or `None` when fewer remain.
    #[inline]
    pub fn skip_bits(&mut self, n: u32) -> Option<()> {
        debug_assert!(n <= PEEK_BITS_MAX, "skip_bits: {n} bits");
        if u64::from(n) > self.bits_left() {
            return None;
        }
        self.pos += u64::from(n);
        Some(())
    }

    /// The next bit, or `None` at the end of the stream.
    #[inline]
    pub fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    /// The next `n` (0..=64) bits as the low bits of a `u64`, or `None` when fewer remain.
    /// A failed read of more than 56 bits consumes its first `n - 32` bits when they are
    /// there.
    #[inline]
    pub fn read_bits(&mut self, n: u32) -> Option<u64> {
        debug_assert!(n <= 64, "read_bits: {n} > 64 bits");
        if n == 0 {
            return Some(0);
        }
        if u64::from(n) > self.bits_left() {
            if n > PEEK_BITS_MAX && u64::from(n - 32) <= self.bits_left() {
                self.pos += u64::from(n - 32);
            }
            return None;
        }
        if n <= PEEK_BITS_MAX {
            let value = self.word_at(self.pos) >> (64 - n);
            self.pos += u64::from(n);
            Some(value)
        } else {
            let high = self.word_at(self.pos) >> (96 - n);
            let low = self.word_at(self.pos + u64::from(n - 32)) >> 32;
            self.pos += u64::from(n);
            Some((high << 32) | low)
        }
    }

    /// The next 8 bits, or `None` when fewer remain.
    #[inline]
    pub fn read_byte(&mut self) -> Option<u8> {
        self.read_bits(8).map(|b| b as u8)
    }

    /// A Go `binary.ReadUvarint` from the stream: `None` when it is truncated or overflows.
    pub fn read_uvarint(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for i in 0..super::encoding::MAX_VARINT_LEN64 {
            let byte = self.read_byte()?;
            if byte < 0x80 {
                if i == super::encoding::MAX_VARINT_LEN64 - 1 && byte > 1 {
                    return None;
                }
                return Some(value | (u64::from(byte) << (7 * i)));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
        }
        None
    }

    /// A Go `binary.ReadVarint` (zig-zag) from the stream.
    pub fn read_varint(&mut self) -> Option<i64> {
        self.read_uvarint().map(super::encoding::unzigzag)
    }
}

#[cfg(test)]
mod tests;
