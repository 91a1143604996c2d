//! The bucket layout a histogram chunk stores once, after its 3-byte header
//! (`histogram_meta.go`): zero threshold, schema, positive and negative spans, and for schema
//! -53 the custom bucket bounds.
//!
//! - Zero threshold: one byte `0` (threshold 0), `1..=254` for `2^(b-244)` (the powers of two
//!   from 2^-243 to 2^10; the default 2^-128 is 116), or `255` then the 64 bits of the f64.
//! - Schema: varbit int.
//! - Spans: varbit uint count, then per span varbit uint length and varbit int offset.
//! - Custom bounds: varbit uint count, then per bound either varbit uint `1000*b + 1` (for
//!   multiples of 0.001 in `0..=33554.43`) or a `0` bit and the 64 bits of the f64.
//!
//! Reading checks every count read from the data against the bits left before allocating.

use super::super::bstream::{BitReader, BitWriter};
use super::model::{Span, CUSTOM_BUCKETS_SCHEMA};
use super::varbit::{put_varbit_int, put_varbit_uint, read_varbit_int, read_varbit_uint};

/// The layout shared by all samples of a chunk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Resolution.
    pub schema: i32,
    /// Zero bucket width.
    pub zero_threshold: f64,
    /// Positive bucket spans.
    pub positive_spans: Vec<Span>,
    /// Negative bucket spans.
    pub negative_spans: Vec<Span>,
    /// Custom bucket bounds (schema -53 only).
    pub custom_values: Vec<f64>,
}

/// Largest `1000 * bound` stored as a varbit (it and the `+1` fit the 25-bit bucket).
const CUSTOM_BOUND_SCALED_MAX: f64 = 33_554_430.0;

/// Appends the layout (`writeHistogramChunkLayout`).
pub fn write_layout(
    w: &mut BitWriter,
    schema: i32,
    zero_threshold: f64,
    positive: &[Span],
    negative: &[Span],
    custom_values: &[f64],
) {
    put_zero_threshold(w, zero_threshold);
    put_varbit_int(w, i64::from(schema));
    put_spans(w, positive);
    put_spans(w, negative);
    if schema == CUSTOM_BUCKETS_SCHEMA {
        put_varbit_uint(w, custom_values.len() as u64);
        for &b in custom_values {
            put_custom_bound(w, b);
        }
    }
}

/// Reads a layout written by [`write_layout`]; `Err` says what is wrong.
pub fn read_layout(r: &mut BitReader<'_>) -> Result<Layout, &'static str> {
    let zero_threshold = read_zero_threshold(r).ok_or("truncated zero threshold")?;
    let schema = read_varbit_int(r).ok_or("truncated schema")?;
    let schema = i32::try_from(schema).map_err(|_| "schema out of range")?;
    let positive_spans = read_spans(r)?;
    let negative_spans = read_spans(r)?;
    let mut custom_values = Vec::new();
    if schema == CUSTOM_BUCKETS_SCHEMA {
        let n = read_varbit_uint(r).ok_or("truncated custom bound count")?;
        // Each bound takes at least 5 bits (a varbit of at least 1, or 65 bits).
        if n > r.bits_left() / 5 {
            return Err("more custom bounds than the chunk has bits for");
        }
        custom_values.reserve_exact(n as usize);
        for _ in 0..n {
            custom_values.push(read_custom_bound(r).ok_or("truncated custom bound")?);
        }
    }
    Ok(Layout {
        schema,
        zero_threshold,
        positive_spans,
        negative_spans,
        custom_values,
    })
}

fn put_spans(w: &mut BitWriter, spans: &[Span]) {
    put_varbit_uint(w, spans.len() as u64);
    for s in spans {
        put_varbit_uint(w, u64::from(s.length));
        put_varbit_int(w, i64::from(s.offset));
    }
}

fn read_spans(r: &mut BitReader<'_>) -> Result<Vec<Span>, &'static str> {
    let n = read_varbit_uint(r).ok_or("truncated span count")?;
    // A span takes at least 2 bits (two zero varbits).
    if n > r.bits_left() / 2 {
        return Err("more spans than the chunk has bits for");
    }
    let mut spans = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let length = read_varbit_uint(r).ok_or("truncated span length")?;
        let offset = read_varbit_int(r).ok_or("truncated span offset")?;
        spans.push(Span {
            offset: i32::try_from(offset).map_err(|_| "span offset out of range")?,
            length: u32::try_from(length).map_err(|_| "span length out of range")?,
        });
    }
    Ok(spans)
}

/// `putZeroThreshold`: 0, a power of two from 2^-243 to 2^10 in one byte, else 9 bytes.
fn put_zero_threshold(w: &mut BitWriter, threshold: f64) {
    if threshold == 0.0 {
        // Go's `threshold == 0` also holds for -0.0, which therefore reads back as 0.0.
        w.write_byte(0);
        return;
    }
    match power_of_two_exponent(threshold) {
        // Go's `math.Frexp` exponent is one more than the IEEE exponent.
        Some(e) if (-243..=10).contains(&e) => w.write_byte((e + 244) as u8),
        _ => {
            w.write_byte(255);
            w.write_bits(threshold.to_bits(), 64);
        }
    }
}

/// `e` when `v` is exactly `2^e` as a normal float.
fn power_of_two_exponent(v: f64) -> Option<i32> {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let positive_normal = bits >> 63 == 0 && biased != 0 && biased != 0x7ff;
    (positive_normal && bits & ((1 << 52) - 1) == 0).then_some(biased - 1023)
}

fn read_zero_threshold(r: &mut BitReader<'_>) -> Option<f64> {
    Some(match r.read_byte()? {
        0 => 0.0,
        255 => f64::from_bits(r.read_bits(64)?),
        // 2^(b-244), b in 1..=254: a normal float.
        b => f64::from_bits(((i64::from(b) - 244 + 1023) as u64) << 52),
    })
}

/// `putCustomBound`: small multiples of 0.001 as a varbit, anything else as a raw f64.
fn put_custom_bound(w: &mut BitWriter, bound: f64) {
    let scaled = bound * 1000.0;
    // Go's `isWholeWhenMultiplied`: NaN fails it (and Go's uint(NaN) is not 0, but the
    // comparison fails either way).
    let whole = ((scaled.round() as u64) as f64) / 1000.0 == bound;
    if !(0.0..=CUSTOM_BOUND_SCALED_MAX).contains(&scaled) || !whole {
        w.write_bit(false);
        w.write_bits(bound.to_bits(), 64);
        return;
    }
    put_varbit_uint(w, scaled.round() as u64 + 1);
}

fn read_custom_bound(r: &mut BitReader<'_>) -> Option<f64> {
    match read_varbit_uint(r)? {
        0 => Some(f64::from_bits(r.read_bits(64)?)),
        v => Some((v - 1) as f64 / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_bytes(schema: i32, zt: f64, custom: &[f64]) -> Vec<u8> {
        let mut w = BitWriter::new();
        write_layout(&mut w, schema, zt, &[], &[], custom);
        w.into_bytes()
    }

    #[test]
    fn zero_thresholds() {
        // 0; the default 2^-128 (byte 116, the doc's example); 2^10 is the largest one-byte
        // value, 2^11 and 0.001 take 9 bytes. Schema 0 and two empty span lists follow: 3 bits.
        assert_eq!(layout_bytes(0, 0.0, &[]), [0x00, 0x00]);
        assert_eq!(layout_bytes(0, 2f64.powi(-128), &[]), [116, 0x00]);
        assert_eq!(layout_bytes(0, 1024.0, &[]), [254, 0x00]);
        assert_eq!(layout_bytes(0, 2f64.powi(-243), &[]), [1, 0x00]);
        assert_eq!(layout_bytes(0, 2048.0, &[])[0], 255);
        assert_eq!(layout_bytes(0, 2048.0, &[]).len(), 10);
        assert_eq!(layout_bytes(0, 0.001, &[]).len(), 10);
        assert_eq!(layout_bytes(0, 2f64.powi(-244), &[])[0], 255);
        for zt in [0.0, 2f64.powi(-128), 1024.0, 2048.0, 0.001, 2f64.powi(-244)] {
            let b = layout_bytes(0, zt, &[]);
            let l = read_layout(&mut BitReader::new(&b)).unwrap();
            assert_eq!(l.zero_threshold.to_bits(), zt.to_bits(), "{zt}");
        }
    }

    #[test]
    fn custom_bounds() {
        let bounds = [
            0.0, 0.001, 0.25, 1.0, 33554.43, 33554.431, -1.0, 0.0001, 1e9,
        ];
        let b = layout_bytes(CUSTOM_BUCKETS_SCHEMA, 0.0, &bounds);
        let l = read_layout(&mut BitReader::new(&b)).unwrap();
        assert_eq!(l.schema, CUSTOM_BUCKETS_SCHEMA);
        assert_eq!(l.custom_values, bounds);
        // 0.25 → varbit uint 251: `1110` + 9 bits.
        let mut w = BitWriter::new();
        put_custom_bound(&mut w, 0.25);
        assert_eq!(w.bytes(), [0b1110_0111, 0b1101_1000]);
        // An exponential schema stores no bounds.
        let b = layout_bytes(3, 0.0, &bounds);
        assert!(read_layout(&mut BitReader::new(&b))
            .unwrap()
            .custom_values
            .is_empty());
    }

    #[test]
    fn spans_round_trip() {
        let pos = [Span::new(-5, 2), Span::new(0, 0), Span::new(1_000_000, 7)];
        let neg = [Span::new(i32::MIN, u32::MAX)];
        let mut w = BitWriter::new();
        write_layout(&mut w, -4, 0.5, &pos, &neg, &[]);
        let b = w.into_bytes();
        let l = read_layout(&mut BitReader::new(&b)).unwrap();
        assert_eq!(l.positive_spans, pos);
        assert_eq!(l.negative_spans, neg);
        assert_eq!(l.schema, -4);
    }

    #[test]
    fn absurd_counts_are_refused_before_allocating() {
        // Threshold 0, schema 0, then a span count of 2^56-1 (`11111110` + 56 ones).
        let mut w = BitWriter::new();
        w.write_byte(0);
        put_varbit_int(&mut w, 0);
        put_varbit_uint(&mut w, (1 << 56) - 1);
        let b = w.into_bytes();
        let err = read_layout(&mut BitReader::new(&b)).unwrap_err();
        assert!(err.contains("more spans"), "{err}");
    }
}
