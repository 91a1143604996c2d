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

#[test]
fn zero_bit_writes_change_nothing() {
    let mut w = BitWriter::new();
    w.write_byte(0xab);
    w.write_bits(u64::MAX, 0);
    assert_eq!(w.bytes(), &[0xab, 0x00]);
    w.write_bit(true);
    w.write_bits(u64::MAX, 0);
    assert_eq!(w.bytes(), &[0xab, 0x80]);
}

#[test]
fn fields_take_the_trailing_byte_of_their_last_one() {
    let mut w = BitWriter::new();
    // A 1-bit field then a byte: like `write_bits(1, 1); write_bits(0xff, 8)`.
    w.write_fields(0x1ff, 9, 8);
    w.write_fields(0x7f, 7, 7);
    assert_eq!(w.bytes(), &[0xff, 0xff]);
    w.write_fields(0x1ff, 16, 8);
    assert_eq!(w.bytes(), &[0xff, 0xff, 0x01, 0xff, 0x00]);
}

#[test]
fn patched_bytes_are_kept_by_later_writes() {
    let mut w = BitWriter::with_prefix(&[0, 0], 0);
    w.write_bits(0b101, 3);
    w.overwrite(0, &[0x12, 0x34]);
    assert_eq!(w.bytes(), &[0x12, 0x34, 0b1010_0000]);
    // As in Go, later bits are ORed into the patched partial byte.
    w.bytes_mut()[2] |= 0b0000_0001;
    w.write_bits(0b11, 2);
    assert_eq!(w.bytes(), &[0x12, 0x34, 0b1011_1001]);
    w.overwrite(2, &[0b1000_0000]);
    w.write_bits(0xfff, 12);
    assert_eq!(
        w.bytes(),
        &[0x12, 0x34, 0b1000_0111, 0b1111_1111, 0b1000_0000]
    );
    assert_eq!(w.len(), 5);
    assert_eq!(w.clone().into_bytes(), w.bytes());
}

#[test]
fn reader_loads_the_end_of_any_stream() {
    let data: Vec<u8> = (1..=60).collect();
    for len in 0..data.len() {
        let mut r = BitReader::new(&data[..len]);
        for &byte in &data[..len] {
            assert_eq!(r.peek_bits(56) >> 48, u64::from(byte));
            assert_eq!(r.read_bits(3), Some(u64::from(byte >> 5)));
            assert_eq!(r.read_bits(5), Some(u64::from(byte & 0x1f)));
        }
        assert_eq!(r.peek_bits(56), 0);
        assert_eq!(r.read_bit(), None);
    }
}

/// Prometheus' `bstream`, transcribed: the reference for [`BitWriter`].
#[derive(Default)]
struct GoStream {
    stream: Vec<u8>,
    count: u32,
}

impl GoStream {
    fn write_bit(&mut self, bit: bool) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        let last = self.stream.len() - 1;
        if bit {
            self.stream[last] |= 1 << (self.count - 1);
        }
        self.count -= 1;
    }

    fn write_byte(&mut self, byte: u8) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        let last = self.stream.len() - 1;
        self.stream[last] |= byte >> (8 - self.count);
        self.stream.push((u16::from(byte) << self.count) as u8);
    }

    fn write_bits(&mut self, value: u64, nbits: u32) {
        let mut u = value.checked_shl(64 - nbits).unwrap_or(0);
        let mut nbits = nbits;
        while nbits >= 8 {
            self.write_byte((u >> 56) as u8);
            u <<= 8;
            nbits -= 8;
        }
        while nbits > 0 {
            self.write_bit(u >> 63 == 1);
            u <<= 1;
            nbits -= 1;
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Bits(u64, u32),
    Bit(bool),
    Byte(u8),
    Fields(u64, u32, u32),
    Overwrite(usize, u8),
    BytesMut(usize, u8),
}

fn writer_ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (any::<u64>(), 0u32..=64).prop_map(|(v, n)| Op::Bits(v, n)),
        1 => any::<bool>().prop_map(Op::Bit),
        1 => any::<u8>().prop_map(Op::Byte),
        2 => (any::<u64>(), 1u32..=WRITE_FIELDS_MAX, any::<u32>()).prop_map(|(v, n, l)| {
            Op::Fields(v >> (64 - n), n, 1 + l % n)
        }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::Overwrite(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::BytesMut(i, b)),
    ];
    prop::collection::vec(op, 0..150)
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

    #[test]
    fn writer_matches_go(
        ops in writer_ops(),
        prefix in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut w = if prefix.is_empty() {
            BitWriter::new()
        } else {
            BitWriter::with_prefix(&prefix, prefix.len())
        };
        let mut go = GoStream { stream: prefix.clone(), count: 0 };
        for op in ops {
            match op {
                Op::Bits(v, n) => {
                    w.write_bits(v, n);
                    go.write_bits(v, n);
                }
                Op::Bit(b) => {
                    w.write_bit(b);
                    go.write_bit(b);
                }
                Op::Byte(b) => {
                    w.write_byte(b);
                    go.write_byte(b);
                }
                Op::Fields(v, n, last) => {
                    w.write_fields(v, n, last);
                    go.write_bits(v >> last, n - last);
                    go.write_bits(v, last);
                }
                Op::Overwrite(i, b) | Op::BytesMut(i, b) if !go.stream.is_empty() => {
                    let i = i % go.stream.len();
                    if matches!(op, Op::Overwrite(..)) {
                        w.overwrite(i, &[b]);
                    } else {
                        w.bytes_mut()[i] = b;
                    }
                    go.stream[i] = b;
                }
                Op::Overwrite(..) | Op::BytesMut(..) => {}
            }
            prop_assert_eq!(w.bytes(), go.stream.as_slice());
        }
        prop_assert_eq!(w.len(), go.stream.len());
        prop_assert_eq!(w.into_bytes(), go.stream);
    }
}
