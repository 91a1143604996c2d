//! MSB-first bit streams, the substrate of the XOR chunk encoding ([`super::xor`]).
//!
//! [`BitWriter`] reproduces the exact byte layout of Prometheus' `bstream`, including one
//! quirk that is visible in chunk bytes: writing a whole byte while the stream is byte-aligned
//! leaves an empty (zero) byte at the end of the stream, whereas writing single bits does not.
//! A chunk whose last write was a whole byte (e.g. a one-sample XOR chunk) therefore ends with
//! one zero byte more than its bit length needs, and byte-identical output must keep it.
//!
//! [`BitReader`] decodes such a stream through a 64-bit buffer refilled eight bytes at a time.
//! Reads past the end return `None`; the caller turns that into a corruption error that names
//! the file and offset.

/// The most bits [`BitReader::peek_bits`] may look at: a refill always leaves at least 56 bits
/// buffered when the stream has them.
pub const PEEK_BITS_MAX: u32 = 56;

/// An append-only MSB-first bit stream, byte-compatible with Prometheus' `bstream`.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    stream: Vec<u8>,
    /// Bits still free in the last byte of `stream`, 0..=8 (8 = an empty trailing byte).
    free: u32,
}

impl BitWriter {
    /// An empty stream.
    pub fn new() -> Self {
        BitWriter::default()
    }

    /// A stream that starts with the whole bytes `prefix` (e.g. a chunk header to patch
    /// later), reserving `capacity` bytes.
    pub fn with_prefix(prefix: &[u8], capacity: usize) -> Self {
        let mut stream = Vec::with_capacity(capacity.max(prefix.len()));
        stream.extend_from_slice(prefix);
        BitWriter { stream, free: 0 }
    }

    /// Appends one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.stream.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if bit {
            *self.last_mut() |= 1 << self.free;
        }
    }

    /// Appends the 8 bits of `byte`. Like Go's `writeByte`, this always appends a byte to the
    /// stream, so an aligned stream ends with an empty byte afterwards.
    #[inline]
    pub fn write_byte(&mut self, byte: u8) {
        if self.free == 0 {
            self.stream.push(0);
            self.free = 8;
        }
        let free = self.free;
        *self.last_mut() |= byte >> (8 - free);
        // `free` is 1..=8; the bits of `byte` that did not fit go to a new byte.
        self.stream.push(((u16::from(byte) << free) & 0xff) as u8);
    }

    /// Appends the low `nbits` bits of `value`, most significant first. `nbits` is 0..=64.
    ///
    /// Go writes the whole bytes of `value` with `writeByte` and the rest bit by bit, so after
    /// a multiple of 8 bits that ends byte-aligned the stream has an empty trailing byte.
    #[inline]
    pub fn write_bits(&mut self, value: u64, nbits: u32) {
        debug_assert!(nbits <= 64, "write_bits: {nbits} > 64 bits");
        if nbits == 0 {
            return;
        }
        let mut left = nbits;
        if self.free > 0 {
            let take = self.free.min(left);
            let bits = (value >> (left - take)) & ((1u64 << take) - 1);
            self.free -= take;
            *self.last_mut() |= (bits as u8) << self.free;
            left -= take;
        }
        while left >= 8 {
            left -= 8;
            self.stream.push((value >> left) as u8);
        }
        if left > 0 {
            self.stream.push((value as u8) << (8 - left));
            self.free = 8 - left;
        }
        if self.free == 0 && nbits >= 8 && nbits & 7 == 0 {
            self.stream.push(0);
            self.free = 8;
        }
    }

    fn last_mut(&mut self) -> &mut u8 {
        self.stream
            .last_mut()
            .expect("free > 0 implies the stream has a last byte")
    }

    /// The stream so far; the last byte is zero-padded.
    pub fn bytes(&self) -> &[u8] {
        &self.stream
    }

    /// The stream so far, mutable, for patching headers written with [`Self::with_prefix`].
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.stream
    }

    /// The stream, consuming the writer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.stream
    }
}

/// A reader of MSB-first bit streams over a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// The next byte of `data` to load into `buf`.
    pos: usize,
    /// Unread bits, left-aligned: the MSB is the next bit. Bits past `avail` are either zero
    /// or the true following bits of `data`, so a refill may OR over them.
    buf: u64,
    /// Number of unread bits in `buf`, 0..=64.
    avail: u32,
}

impl<'a> BitReader<'a> {
    /// A reader positioned at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// Number of bits read so far.
    pub fn bit_position(&self) -> u64 {
        self.pos as u64 * 8 - u64::from(self.avail)
    }

    /// Loads whole bytes until at least 56 bits are buffered or the stream ends.
    #[inline]
    fn refill(&mut self) {
        debug_assert!(self.avail < 64, "refill with a full buffer");
        if let Some(word) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(word.try_into().expect("slice of 8 bytes"));
            self.buf |= word >> self.avail;
            let loaded_bytes = (63 - self.avail) / 8;
            self.pos += loaded_bytes as usize;
            self.avail += loaded_bytes * 8;
        } else {
            while self.avail <= PEEK_BITS_MAX {
                let Some(&byte) = self.data.get(self.pos) else {
                    break;
                };
                self.buf |= u64::from(byte) << (PEEK_BITS_MAX - self.avail);
                self.pos += 1;
                self.avail += 8;
            }
        }
    }

    /// The next `n` (1..=56) bits without consuming them; bits past the end of the stream
    /// read as zero. Pair with [`Self::skip_bits`].
    #[inline]
    pub fn peek_bits(&mut self, n: u32) -> u64 {
        debug_assert!((1..=PEEK_BITS_MAX).contains(&n), "peek_bits: {n} bits");
        if self.avail < n {
            self.refill();
        }
        self.buf >> (64 - n)
    }

    /// Consumes `n` (0..=56) bits, or `None` when fewer remain.
    #[inline]
    pub fn skip_bits(&mut self, n: u32) -> Option<()> {
        debug_assert!(n <= PEEK_BITS_MAX, "skip_bits: {n} bits");
        if self.avail < n {
            self.refill();
            if self.avail < n {
                return None;
            }
        }
        self.buf <<= n;
        self.avail -= n;
        Some(())
    }

    /// The next bit, or `None` at the end of the stream.
    #[inline]
    pub fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    /// The next `n` (0..=64) bits as the low bits of a `u64`, or `None` when fewer remain.
    #[inline]
    pub fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if n > PEEK_BITS_MAX {
            // A refill guarantees only 56 bits; read the value in two halves.
            let high = self.read_bits(n - 32)?;
            let low = self.read_bits(32)?;
            return Some((high << 32) | low);
        }
        if self.avail < n {
            self.refill();
            if self.avail < n {
                return None;
            }
        }
        let value = self.buf >> (64 - n);
        self.buf <<= n;
        self.avail -= n;
        Some(value)
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aligned_byte_leaves_an_empty_trailing_byte() {
        let mut w = BitWriter::new();
        w.write_byte(0xab);
        assert_eq!(w.bytes(), &[0xab, 0x00]);
        w.write_bit(true);
        assert_eq!(w.bytes(), &[0xab, 0x80]);
        let mut w = BitWriter::new();
        w.write_bits(0xff, 8);
        w.write_bits(0b1, 1);
        w.write_bits(0x7f, 7);
        // Bit writes that fill a byte exactly leave no empty byte.
        assert_eq!(w.bytes(), &[0xff, 0xff]);
    }

    #[test]
    fn unaligned_writes_straddle_bytes() {
        let mut w = BitWriter::new();
        w.write_bits(0b101, 3);
        w.write_byte(0xff);
        w.write_bits(0b11, 2);
        w.write_bits(0x1234, 14);
        assert_eq!(
            w.bytes(),
            &[0b1011_1111, 0b1111_1010, 0b0100_0110, 0b1000_0000]
        );
        let mut r = BitReader::new(w.bytes());
        assert_eq!(r.read_bits(3), Some(0b101));
        assert_eq!(r.read_byte(), Some(0xff));
        assert_eq!(r.read_bits(2), Some(0b11));
        assert_eq!(r.read_bits(14), Some(0x1234));
        assert_eq!(r.bit_position(), 27);
        assert_eq!(r.read_bits(5), Some(0));
        assert_eq!(r.read_bit(), None);
    }

    #[test]
    fn peek_pads_with_zeros_at_the_end() {
        let mut r = BitReader::new(&[0b1100_0000]);
        assert_eq!(r.peek_bits(4), 0b1100);
        assert_eq!(r.peek_bits(12), 0b1100_0000_0000);
        assert_eq!(r.skip_bits(8), Some(()));
        assert_eq!(r.skip_bits(1), None);
    }

    fn ops() -> impl Strategy<Value = Vec<(u64, u32)>> {
        prop::collection::vec(
            (any::<u64>(), 0u32..=64).prop_map(|(v, n)| {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                (v & mask, n)
            }),
            0..200,
        )
    }

    proptest! {
        #[test]
        fn bits_round_trip(ops in ops()) {
            let mut w = BitWriter::new();
            for &(v, n) in &ops {
                w.write_bits(v, n);
            }
            let mut r = BitReader::new(w.bytes());
            for &(v, n) in &ops {
                prop_assert_eq!(r.read_bits(n), Some(v));
            }
        }

        #[test]
        fn writer_matches_go_bit_and_byte_semantics(ops in ops()) {
            let mut w = BitWriter::new();
            let mut go = BitWriter::new();
            for &(v, n) in &ops {
                w.write_bits(v, n);
                // Go: whole bytes through writeByte, the remainder through writeBit.
                let mut left = n;
                while left >= 8 {
                    go.write_byte((v >> (left - 8)) as u8);
                    left -= 8;
                }
                for i in (0..left).rev() {
                    go.write_bit((v >> i) & 1 == 1);
                }
            }
            prop_assert_eq!(w.bytes(), go.bytes());
        }
    }
}
