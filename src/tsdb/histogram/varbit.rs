//! Prometheus' variable-width integers (`varbit.go`): a unary prefix of 0..=8 one bits picks
//! the width of the value that follows.
//!
//! | prefix      | value bits | signed range              | unsigned range |
//! |-------------|-----------:|---------------------------|----------------|
//! | `0`         | 0          | 0                         | 0              |
//! | `10`        | 3          | -3 ..= 4                  | ..= 7          |
//! | `110`       | 6          | -31 ..= 32                | ..= 63         |
//! | `1110`      | 9          | -255 ..= 256              | ..= 511        |
//! | `11110`     | 12         | -2047 ..= 2048            | ..= 4095       |
//! | `111110`    | 18         | -131071 ..= 131072        | ..= 2^18-1     |
//! | `1111110`   | 25         | -16777215 ..= 16777216    | ..= 2^25-1     |
//! | `11111110`  | 56         | -(2^55-1) ..= 2^55        | ..= 2^56-1     |
//! | `11111111`  | 64         | everything else           | everything else|
//!
//! Signed values are stored as two's complement truncated to the width; the reader treats a
//! value above `2^(width-1)` as negative (the same asymmetric ranges as the XOR chunk's
//! delta-of-delta buckets). The writer emits the prefix and the value as two writes, as Go
//! does, because the width of the last write decides the stream's trailing byte (see
//! [`super::super::bstream`]).

use super::super::bstream::{BitReader, BitWriter};

/// Value widths by the number of one bits in the prefix.
const WIDTHS: [u32; 9] = [0, 3, 6, 9, 12, 18, 25, 56, 64];

/// Whether `v` is in the signed range of a `bits`-wide bucket (Go's `bitRange`).
fn fits_signed(v: i64, bits: u32) -> bool {
    -((1i64 << (bits - 1)) - 1) <= v && v <= 1i64 << (bits - 1)
}

/// Writes the prefix of `ones` one bits (then a zero bit unless there are 8) and the low
/// `WIDTHS[ones]` bits of `value`.
fn put(w: &mut BitWriter, ones: usize, value: u64) {
    let prefix_bits = if ones == 8 { 8 } else { ones as u32 + 1 };
    let prefix = ((1u64 << ones) - 1) << (prefix_bits - ones as u32);
    w.write_bits(prefix, prefix_bits);
    w.write_bits(value, WIDTHS[ones]);
}

/// Appends `v` in the signed varbit encoding (`putVarbitInt`).
pub fn put_varbit_int(w: &mut BitWriter, v: i64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    let ones = (1..8).find(|&i| fits_signed(v, WIDTHS[i])).unwrap_or(8);
    put(w, ones, v as u64);
}

/// Appends `v` in the unsigned varbit encoding (`putVarbitUint`).
pub fn put_varbit_uint(w: &mut BitWriter, v: u64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    let width = 64 - v.leading_zeros();
    let ones = (1..8).find(|&i| width <= WIDTHS[i]).unwrap_or(8);
    put(w, ones, v);
}

/// Reads the prefix; returns the value width, or `None` when the stream ends.
fn read_width(r: &mut BitReader<'_>) -> Option<u32> {
    // Bits past the end peek as zero, which ends the prefix; `skip_bits` then fails.
    let ones = (r.peek_bits(8) << 56).leading_ones().min(8) as usize;
    r.skip_bits(if ones == 8 { 8 } else { ones as u32 + 1 })?;
    Some(WIDTHS[ones])
}

/// Reads a signed varbit integer (`readVarbitInt`); `None` when the stream ends.
pub fn read_varbit_int(r: &mut BitReader<'_>) -> Option<i64> {
    let width = read_width(r)?;
    let bits = r.read_bits(width)?;
    Some(if width == 0 || width == 64 || bits <= 1 << (width - 1) {
        bits as i64
    } else {
        bits.wrapping_sub(1 << width) as i64
    })
}

/// Reads an unsigned varbit integer (`readVarbitUint`); `None` when the stream ends.
pub fn read_varbit_uint(r: &mut BitReader<'_>) -> Option<u64> {
    let width = read_width(r)?;
    r.read_bits(width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes_of(f: impl FnOnce(&mut BitWriter)) -> Vec<u8> {
        let mut w = BitWriter::new();
        f(&mut w);
        w.into_bytes()
    }

    #[test]
    fn hand_derived_bytes() {
        // 0 → `0`; 4 → `10 100`; -3 → `10 101`; 5 → `110 000101`.
        assert_eq!(bytes_of(|w| put_varbit_int(w, 0)), [0x00]);
        assert_eq!(bytes_of(|w| put_varbit_int(w, 4)), [0b1010_0000]);
        assert_eq!(bytes_of(|w| put_varbit_int(w, -3)), [0b1010_1000]);
        assert_eq!(
            bytes_of(|w| put_varbit_int(w, 5)),
            [0b1100_0010, 0b1000_0000]
        );
        // 7 is unsigned-3-bit but not signed-3-bit.
        assert_eq!(bytes_of(|w| put_varbit_uint(w, 7)), [0b1011_1000]);
        assert_eq!(
            bytes_of(|w| put_varbit_int(w, 7)),
            [0b1100_0011, 0b1000_0000]
        );
        // The 64-bit bucket: 8 one bits, then 8 whole bytes, which leave Go's empty
        // trailing byte.
        let b = bytes_of(|w| put_varbit_uint(w, u64::MAX));
        assert_eq!(b.len(), 10);
        assert_eq!(b[0], 0xff);
        assert_eq!(b[9], 0x00);
    }

    #[test]
    fn bucket_edges_round_trip() {
        let mut values = vec![0i64, i64::MIN, i64::MAX, -1, 1];
        for &w in &WIDTHS[1..8] {
            let hi = 1i64 << (w - 1);
            values.extend([hi, hi + 1, -(hi - 1), -hi]);
        }
        for v in values {
            let b = bytes_of(|w| put_varbit_int(w, v));
            let mut r = BitReader::new(&b);
            assert_eq!(read_varbit_int(&mut r), Some(v), "{v}");
        }
    }

    #[test]
    fn truncated_values_are_none() {
        let b = bytes_of(|w| put_varbit_int(w, 1 << 20));
        let mut r = BitReader::new(&b[..b.len() - 2]);
        assert_eq!(read_varbit_int(&mut r), None);
        let mut r = BitReader::new(&[]);
        assert_eq!(read_varbit_uint(&mut r), None);
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(read_varbit_uint(&mut r), None);
    }

    proptest! {
        #[test]
        fn round_trip(ints in prop::collection::vec(any::<i64>(), 0..20),
                      uints in prop::collection::vec(any::<u64>(), 0..20)) {
            let mut w = BitWriter::new();
            for &v in &ints { put_varbit_int(&mut w, v); }
            for &v in &uints { put_varbit_uint(&mut w, v); }
            let b = w.into_bytes();
            let mut r = BitReader::new(&b);
            for &v in &ints { prop_assert_eq!(read_varbit_int(&mut r), Some(v)); }
            for &v in &uints { prop_assert_eq!(read_varbit_uint(&mut r), Some(v)); }
        }

        #[test]
        fn small_magnitudes_use_narrow_buckets(v in -131071i64..=131072) {
            let b = bytes_of(|w| put_varbit_int(w, v));
            prop_assert!(b.len() <= 4);
        }
    }
}
