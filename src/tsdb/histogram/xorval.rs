//! Gorilla XOR coding of one float field against its previous value (Go's `xorWrite` and
//! `xorRead`), as the XOR chunk codes sample values ([`super::super::xor`] has the bit
//! layout). Histogram chunks use it for the sum and, in float histograms, for every count;
//! each field keeps its own leading/trailing-zero window.

use super::super::bstream::{BitReader, BitWriter};

/// Marks "no window yet": a fresh field always writes a new window.
pub const NO_WINDOW: u8 = 0xff;

/// One XOR-coded float field: its last value and current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XorField {
    /// Bits of the last value.
    pub bits: u64,
    /// Leading zeros of the window ([`NO_WINDOW`] before the first XOR).
    pub leading: u8,
    /// Trailing zeros of the window.
    pub trailing: u8,
}

impl XorField {
    /// A field whose first written value will open a new window.
    pub fn new(bits: u64) -> Self {
        XorField {
            bits,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// A field for reading: the reader's window starts at zero, as Go's iterator does.
    pub fn for_reading(bits: u64) -> Self {
        XorField {
            bits,
            leading: 0,
            trailing: 0,
        }
    }

    /// Writes `bits` XOR the last value and makes `bits` the last value, field by field as Go
    /// does (the width of the last write decides the trailing byte).
    pub fn write(&mut self, w: &mut BitWriter, bits: u64) {
        let delta = bits ^ self.bits;
        self.bits = bits;
        if delta == 0 {
            w.write_bit(false);
            return;
        }
        w.write_bit(true);
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            w.write_bit(false);
            let significant = 64 - u32::from(self.leading) - u32::from(self.trailing);
            w.write_bits(delta >> self.trailing, significant);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        w.write_bit(true);
        w.write_bits(u64::from(leading), 5);
        // 64 significant bits do not fit 6 bits and are stored as 0 (0 never occurs).
        let significant = 64 - u32::from(leading) - u32::from(trailing);
        w.write_bits(u64::from(significant & 0x3f), 6);
        w.write_bits(delta >> trailing, significant);
    }

    /// Reads the next value of the field; `Err` names what is wrong.
    pub fn read(&mut self, r: &mut BitReader<'_>) -> Result<(), &'static str> {
        const TRUNCATED: &str = "truncated XOR value";
        if !r.read_bit().ok_or(TRUNCATED)? {
            return Ok(());
        }
        if r.read_bit().ok_or(TRUNCATED)? {
            let leading = r.read_bits(5).ok_or(TRUNCATED)? as u8;
            let significant = match r.read_bits(6).ok_or(TRUNCATED)? as u8 {
                0 => 64,
                n => n,
            };
            if u32::from(leading) + u32::from(significant) > 64 {
                return Err("XOR value window wider than 64 bits");
            }
            self.leading = leading;
            self.trailing = 64 - leading - significant;
        }
        let significant = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = r.read_bits(significant).ok_or(TRUNCATED)?;
        self.bits ^= bits.checked_shl(u32::from(self.trailing)).unwrap_or(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_value_is_one_zero_bit() {
        let mut w = BitWriter::new();
        let mut f = XorField::new(1.0f64.to_bits());
        f.write(&mut w, 1.0f64.to_bits());
        assert_eq!(w.bytes(), [0x00]);
    }

    #[test]
    fn matches_the_xor_chunk_value_coding() {
        // 1.0 then 2.0: `1 1 00001 001011` and 11 significant bits, as in the XOR chunk test.
        let mut w = BitWriter::new();
        let mut f = XorField::new(1.0f64.to_bits());
        f.write(&mut w, 2.0f64.to_bits());
        assert_eq!(w.bytes(), [0xc2, 0x5f, 0xff]);
    }

    #[test]
    fn a_window_wider_than_64_bits_is_an_error() {
        // `1 1`, leading 31, significant 63.
        let bytes = [0b1111_1111, 0b1111_1000, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut f = XorField::for_reading(0);
        let mut r = BitReader::new(&bytes);
        assert!(f.read(&mut r).unwrap_err().contains("wider"));
    }

    proptest! {
        #[test]
        fn round_trip(values in prop::collection::vec(any::<u64>(), 1..30)) {
            let mut w = BitWriter::new();
            let mut f = XorField::new(values[0]);
            for &v in &values[1..] {
                f.write(&mut w, v);
            }
            let b = w.into_bytes();
            let mut r = BitReader::new(&b);
            let mut g = XorField::for_reading(values[0]);
            for &v in &values[1..] {
                g.read(&mut r).unwrap();
                prop_assert_eq!(g.bits, v);
            }
        }
    }
}
