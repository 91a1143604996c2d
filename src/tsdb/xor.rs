//! The Prometheus XOR chunk (encoding 1): Gorilla-style float samples.
//!
//! Layout (all after a `be16` sample count, bits MSB-first, see [`super::bstream`]):
//! sample 0 is `varint t0` and the 64 raw bits of `v0`; sample 1 is `uvarint (t1 - t0)` and a
//! value XOR; sample n ≥ 2 is a delta-of-delta `dod = (t_n - t_{n-1}) - (t_{n-1} - t_{n-2})`
//! (`0`, `10`+14 bits, `110`+17, `1110`+20 or `1111`+64, the n-bit buckets holding
//! `-(2^(n-1)-1) ..= 2^(n-1)`) and a value XOR. A value XOR is `0` (same bits), `10` + the
//! significant bits inside the previous leading/trailing-zero window, or `11` + 5 bits of
//! leading zeros (capped at 31) + 6 bits of significant-bit count (64 stored as 0) + the bits.
//!
//! [`XorEncoder`] produces exactly the bytes of Prometheus 2.42's fresh `XORChunk` appender for
//! the same appends, which compaction needs for byte-identical output. [`XorIter`] decodes;
//! it never panics on damaged input and reports where decoding failed. Values are handled as
//! bit patterns, so NaNs (including the staleness marker) and infinities round-trip exactly.

use std::path::Path;

use super::bstream::{BitReader, BitWriter, PEEK_BITS_MAX, WRITE_FIELDS_MAX};
use super::encoding::{zigzag, MAX_VARINT_LEN64};
use super::error::TsdbError;

/// The most samples an XOR chunk can hold: its count is a `u16`.
pub const SAMPLES_MAX: usize = u16::MAX as usize;

/// Bytes reserved for a new chunk (Go reserves 128; capacity does not change the bytes):
/// enough for 120 samples of most data, and with the writer's 8 spare bytes, 1 KiB.
const CHUNK_CAPACITY_BYTES: usize = 1016;

/// Marks "no leading/trailing window yet" in a fresh encoder; no real window satisfies
/// `leading >= NO_WINDOW`.
const NO_WINDOW: u32 = 0xff;

/// Appends float samples to a new XOR chunk.
#[derive(Debug, Clone)]
pub struct XorEncoder {
    stream: BitWriter,
    num: u16,
    first_t: i64,
    t: i64,
    v_bits: u64,
    t_delta: u64,
    leading: u32,
    trailing: u32,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// An empty chunk (its 2-byte header says 0 samples).
    pub fn new() -> Self {
        XorEncoder {
            stream: BitWriter::with_prefix(&[0, 0], CHUNK_CAPACITY_BYTES),
            num: 0,
            first_t: 0,
            t: 0,
            v_bits: 0,
            t_delta: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Appends the sample `(t, v)`. Timestamps should increase (the format itself wraps any
    /// difference, as Go does).
    ///
    /// Panics if the chunk already holds [`SAMPLES_MAX`] samples: callers cut chunks long
    /// before that (Prometheus at 120 samples), and Go would silently corrupt the chunk.
    #[inline(always)]
    pub fn append(&mut self, t: i64, v: f64) {
        assert!(usize::from(self.num) < SAMPLES_MAX, "XOR chunk is full");
        let v_bits = v.to_bits();
        let t_delta = t.wrapping_sub(self.t) as u64;
        if self.num >= 2 {
            self.append_dod(t_delta.wrapping_sub(self.t_delta) as i64, v_bits);
        } else {
            self.append_head(t, t_delta, v_bits);
        }
        self.t = t;
        self.v_bits = v_bits;
        self.t_delta = t_delta;
        self.num += 1;
        self.stream.overwrite(0, &self.num.to_be_bytes());
    }

    /// Samples 0 and 1: the timestamp as a varint (`t`) or uvarint (`t_delta`), written byte
    /// by byte as Go's appender does (byte writes decide the stream's trailing byte, see
    /// [`super::bstream`]), then the 64 value bits or the value XOR.
    #[cold]
    #[inline(never)]
    fn append_head(&mut self, t: i64, t_delta: u64, v_bits: u64) {
        let mut v = if self.num == 0 { zigzag(t) } else { t_delta };
        for _ in 0..MAX_VARINT_LEN64 {
            if v < 0x80 {
                self.stream.write_byte(v as u8);
                break;
            }
            self.stream.write_byte((v as u8) | 0x80);
            v >>= 7;
        }
        if self.num == 0 {
            self.stream.write_bits(v_bits, 64);
            self.first_t = t;
        } else {
            self.append_value(0, 0, v_bits);
        }
    }

    /// Sample 2 on: the delta-of-delta `dod` in its bucket, then the value XOR.
    #[inline(always)]
    fn append_dod(&mut self, dod: i64, v_bits: u64) {
        let d = dod as u64;
        // The field, prefix included, and its width. The buckets are computed as selects, not
        // branches: regular timestamps with occasional jitter mix 0 and 14-bit dods at random.
        let (field, width) = if fits_bits(dod, 20) {
            let (field, width) = if fits_bits(dod, 14) {
                ((0b10 << 14) | (d & 0x3fff), 16)
            } else if fits_bits(dod, 17) {
                ((0b110 << 17) | (d & 0x1_ffff), 20)
            } else {
                ((0b1110 << 20) | (d & 0xf_ffff), 24)
            };
            if dod == 0 {
                (0, 1)
            } else {
                (field, width)
            }
        } else {
            self.stream.write_bits(0b1111, 4);
            self.stream.write_bits(d, 64);
            (0, 0)
        };
        self.append_value(field, width, v_bits);
    }

    /// The XOR of `v_bits` with the previous value (Go's `xorWrite`), after the `width`
    /// (0..=24) bits of `field`: `0` when they are equal, else `10` and the significant bits
    /// in the current window, or `11`, a new window (5 bits of leading zeros, 6 bits of
    /// significant bits, 64 stored as 0) and the significant bits.
    ///
    /// Go writes field by field, but only the width of the last write matters for the bytes
    /// (see [`super::bstream`]), so everything goes out in one write when it fits 56 bits.
    /// The three cases follow each other unpredictably in real data, so they are computed as
    /// selects rather than branches.
    #[inline(always)]
    fn append_value(&mut self, field: u64, width: u32, v_bits: u64) {
        let delta = v_bits ^ self.v_bits;
        // Capped so that it fits the 5-bit field.
        let leading = delta.leading_zeros().min(31);
        // 64 when the value is unchanged.
        let trailing = delta.trailing_zeros();
        // A fresh encoder's `NO_WINDOW` fails the first test.
        let keep = (leading >= self.leading) & (trailing >= self.trailing);
        let new_window = (0b11 << 11)
            | (u64::from(leading) << 6)
            // 64 significant bits do not fit 6 bits and are stored as 0 (0 never occurs).
            | u64::from(64u32.wrapping_sub(leading + trailing) & 0x3f);
        let (control, control_width) = if keep { (0b10, 2) } else { (new_window, 13) };
        let (control, control_width) = if delta == 0 {
            (0, 1)
        } else {
            (control, control_width)
        };
        let update = !keep & (delta != 0);
        self.leading = if update { leading } else { self.leading };
        self.trailing = if update { trailing } else { self.trailing };
        let significant = if delta == 0 {
            0
        } else {
            64 - self.leading - self.trailing
        };
        let bits = delta >> self.trailing;
        let prefix = (field << control_width) | control;
        let prefix_width = width + control_width;
        // The last write is the significant bits', or the control bit's when there are none.
        if prefix_width + significant <= WRITE_FIELDS_MAX {
            self.stream.write_fields(
                (prefix << significant) | bits,
                prefix_width + significant,
                significant.max(1),
            );
        } else {
            self.stream.write_fields(prefix, prefix_width, 1);
            self.stream.write_bits(bits, significant);
        }
    }

    /// Number of samples appended.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// True when no sample was appended.
    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// Timestamps of the first and last samples, `None` for an empty chunk.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        (self.num > 0).then_some((self.first_t, self.t))
    }

    /// The chunk data: header and samples, as stored after the encoding byte.
    pub fn bytes(&self) -> &[u8] {
        self.stream.bytes()
    }

    /// The chunk data, consuming the encoder.
    pub fn into_bytes(self) -> Vec<u8> {
        self.stream.into_bytes()
    }
}

/// Whether `dod` is in the `bits`-bit bucket, `-(2^(bits-1)-1) ..= 2^(bits-1)` (Go's
/// `bitRange`).
#[inline(always)]
fn fits_bits(dod: i64, bits: u32) -> bool {
    -((1i64 << (bits - 1)) - 1) <= dod && dod <= 1i64 << (bits - 1)
}

/// The sample count in the header of XOR chunk `data`, `None` when it has no header.
pub fn num_samples(data: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*data.first()?, *data.get(1)?]))
}

/// Where and why an XOR chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("XOR chunk: {what} (sample {sample}, byte {byte_offset} of the chunk data)")]
pub struct XorError {
    /// Offset in the chunk data (header included) of the byte where decoding stopped.
    pub byte_offset: usize,
    /// Index of the sample being decoded.
    pub sample: u16,
    /// What went wrong.
    pub what: &'static str,
}

impl XorError {
    /// A [`TsdbError::Corrupt`] for a chunk whose data starts at `data_offset` in `file`.
    pub fn into_corrupt(self, file: &Path, data_offset: u64) -> TsdbError {
        TsdbError::corrupt(
            file,
            data_offset + self.byte_offset as u64,
            self.to_string(),
        )
    }
}

/// Samples that [`XorIter`] decodes at a time, from sample 2 on.
const BATCH: usize = 32;

/// Decodes the samples of an XOR chunk, in order.
///
/// From sample 2 on it decodes [`BATCH`] samples at a time into a buffer, in a loop that keeps
/// its state in registers; errors still come after exactly the samples before them.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    reader: BitReader<'a>,
    total: u16,
    /// Samples decoded, buffered ones included.
    read: u16,
    header_ok: bool,
    t: i64,
    v_bits: u64,
    t_delta: u64,
    leading: u32,
    trailing: u32,
    /// Decoded samples not returned yet: `batch[batch_next..batch_len]`, as
    /// `(t, value bits)`.
    batch: [(i64, u64); BATCH],
    batch_next: u8,
    batch_len: u8,
}

/// The state of [`XorIter`] for samples 2 on, as locals of its batch loop.
#[derive(Debug, Clone, Copy)]
struct DecodeState {
    /// Bit position in the stream.
    pos: u64,
    t: i64,
    v_bits: u64,
    t_delta: u64,
    /// The value window: trailing zeros and significant bits (1..=64).
    trailing: u32,
    significant: u32,
}

impl<'a> XorIter<'a> {
    /// An iterator over the chunk `data` (header included).
    pub fn new(data: &'a [u8]) -> Self {
        let header = num_samples(data);
        XorIter {
            reader: BitReader::new(data.get(2..).unwrap_or_default()),
            total: header.unwrap_or(0),
            read: 0,
            header_ok: header.is_some(),
            t: 0,
            v_bits: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            batch: [(0, 0); BATCH],
            batch_next: 0,
            batch_len: 0,
        }
    }

    /// The number of samples the header announces.
    pub fn num_samples(&self) -> u16 {
        self.total
    }

    fn error(&self, what: &'static str) -> XorError {
        XorError {
            byte_offset: 2 + (self.reader.bit_position() / 8) as usize,
            sample: self.read,
            what,
        }
    }

    /// The next sample, `Ok(None)` after the last one the header announces. Bytes after
    /// that are ignored, as Go does. After an error, the iterator's state is unspecified.
    #[inline]
    pub fn next_sample(&mut self) -> Result<Option<(i64, f64)>, XorError> {
        if self.batch_next < self.batch_len {
            let (t, v_bits) = self.batch[usize::from(self.batch_next)];
            self.batch_next += 1;
            return Ok(Some((t, f64::from_bits(v_bits))));
        }
        self.next_sample_slow()
    }

    /// [`Self::next_sample`] with an empty batch: decodes the next batch, or samples 0 and
    /// 1, the end of the chunk and errors.
    #[inline(never)]
    fn next_sample_slow(&mut self) -> Result<Option<(i64, f64)>, XorError> {
        if self.read >= 2 && self.read < self.total {
            let n = self.decode_batch();
            if n > 0 {
                self.batch_next = 1;
                self.batch_len = n as u8;
                let (t, v_bits) = self.batch[0];
                return Ok(Some((t, f64::from_bits(v_bits))));
            }
        }
        if self.read == self.total {
            if !self.header_ok {
                return Err(self.error("chunk shorter than its 2-byte header"));
            }
            return Ok(None);
        }
        match self.read {
            0 => self.read_first()?,
            1 => self.read_second()?,
            _ => self.read_next()?,
        }
        self.read += 1;
        Ok(Some((self.t, f64::from_bits(self.v_bits))))
    }

    /// Decodes up to [`BATCH`] samples (from sample 2 on) into `batch`, stopping before the
    /// first one that is truncated or invalid; returns how many.
    fn decode_batch(&mut self) -> usize {
        let want = BATCH.min(usize::from(self.total - self.read));
        let s = DecodeState {
            pos: self.reader.bit_position(),
            t: self.t,
            v_bits: self.v_bits,
            t_delta: self.t_delta,
            trailing: self.trailing,
            significant: 64 - self.leading - self.trailing,
        };
        let (s, n) = decode_batch(&self.reader, &mut self.batch, s, want);
        self.reader.set_position(s.pos);
        self.t = s.t;
        self.v_bits = s.v_bits;
        self.t_delta = s.t_delta;
        self.leading = 64 - s.trailing - s.significant;
        self.trailing = s.trailing;
        self.read += n as u16;
        n
    }

    fn read_first(&mut self) -> Result<(), XorError> {
        self.t = self
            .reader
            .read_varint()
            .ok_or_else(|| self.error("bad first timestamp"))?;
        self.v_bits = self
            .reader
            .read_bits(64)
            .ok_or_else(|| self.error("truncated first value"))?;
        Ok(())
    }

    fn read_second(&mut self) -> Result<(), XorError> {
        self.t_delta = self
            .reader
            .read_uvarint()
            .ok_or_else(|| self.error("bad second timestamp delta"))?;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_value()
    }

    fn read_next(&mut self) -> Result<(), XorError> {
        let dod = match self.reader.peek_bits(4) {
            0b0000..=0b0111 => self.reader.skip_bits(1).map(|()| 0),
            0b1000..=0b1011 => self
                .reader
                .read_bits(16)
                .map(|b| sign_extend(b & 0x3fff, 14)),
            0b1100..=0b1101 => self
                .reader
                .read_bits(20)
                .map(|b| sign_extend(b & 0x1_ffff, 17)),
            0b1110 => self
                .reader
                .read_bits(24)
                .map(|b| sign_extend(b & 0xf_ffff, 20)),
            _ => self
                .reader
                .skip_bits(4)
                .and_then(|()| self.reader.read_bits(64))
                .map(|b| b as i64),
        };
        let dod = dod.ok_or_else(|| self.error("truncated timestamp"))?;
        self.t_delta = self.t_delta.wrapping_add(dod as u64);
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_value()
    }

    fn read_value(&mut self) -> Result<(), XorError> {
        let control = self.reader.peek_bits(2);
        if control < 0b10 {
            // Same value as before.
            return self
                .reader
                .skip_bits(1)
                .ok_or_else(|| self.error("truncated value"));
        }
        if control == 0b11 {
            let header = self
                .reader
                .read_bits(13)
                .ok_or_else(|| self.error("truncated value window"))?;
            let leading = ((header >> 6) & 0x1f) as u32;
            let significant = match (header & 0x3f) as u32 {
                0 => 64,
                n => n,
            };
            if leading + significant > 64 {
                return Err(self.error("value window wider than 64 bits"));
            }
            self.leading = leading;
            self.trailing = 64 - leading - significant;
        } else {
            self.reader
                .skip_bits(2)
                .ok_or_else(|| self.error("truncated value"))?;
        }
        let significant = 64 - self.leading - self.trailing;
        let bits = self
            .reader
            .read_bits(significant)
            .ok_or_else(|| self.error("truncated value bits"))?;
        self.v_bits ^= bits << self.trailing;
        Ok(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = Result<(i64, f64), XorError>;

    /// Yields each sample, or one error and then nothing.
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.batch_next < self.batch_len {
            let (t, v_bits) = self.batch[usize::from(self.batch_next)];
            self.batch_next += 1;
            return Some(Ok((t, f64::from_bits(v_bits))));
        }
        match self.next_sample_slow() {
            Ok(sample) => sample.map(Ok),
            Err(e) => {
                // Stop after the first error.
                self.total = self.read;
                self.header_ok = true;
                Some(Err(e))
            }
        }
    }
}

/// Bytes that decoding a sample may load from the byte of its first bit on: its last field
/// starts at most 7 + 81 + 32 bits further, and loads take 8 bytes.
const LOOKAHEAD_BYTES: usize = 24;

/// The bytes from the one holding a sample's first bit on.
type Window = [u8; LOOKAHEAD_BYTES];

/// Decodes up to `want` samples from state `s` into `out`, stopping before the first one
/// that is truncated or invalid: the new state and how many. A function of its own so that
/// the compiler knows `out` does not alias `r`, and keeps the state in registers.
fn decode_batch(
    r: &BitReader<'_>,
    out: &mut [(i64, u64); BATCH],
    mut s: DecodeState,
    want: usize,
) -> (DecodeState, usize) {
    let (data, tail, tail_start) = r.split_tail(LOOKAHEAD_BYTES);
    let want = want.min(BATCH);
    let mut n = 0;
    // While a sample cannot reach the end of `data`, decode from `data` without checks.
    while n < want {
        let byte = (s.pos / 8) as usize;
        let Some(window) = data.get(byte..byte + LOOKAHEAD_BYTES) else {
            break;
        };
        let window: &Window = window.try_into().expect("a window");
        let decoded = decode_some(window, &mut s, &mut out[n..want], u64::MAX);
        if decoded == 0 {
            return (s, n);
        }
        n += decoded;
    }
    // Then from the zero-padded tail, checking for truncation.
    let end = data.len() as u64 * 8;
    while n < want {
        let byte = (s.pos / 8) as usize - tail_start;
        let window: &Window = tail[byte..byte + LOOKAHEAD_BYTES]
            .try_into()
            .expect("a window");
        let mut next = s;
        let decoded = decode_some(window, &mut next, &mut out[n..want], end - s.pos);
        if decoded == 0 || next.pos > end {
            break;
        }
        s = next;
        n += decoded;
    }
    (s, n)
}

/// The 64 bits of `window` from bit `pos` (at most 120) on, MSB first. Only the first 57
/// are guaranteed: after them come zeros when `pos` is not byte-aligned.
#[inline(always)]
fn load(window: &Window, pos: u64) -> u64 {
    // The mask only tells the compiler that the load is in bounds.
    let byte = (pos / 8) as usize & 15;
    let word: [u8; 8] = window[byte..byte + 8].try_into().expect("8 bytes");
    u64::from_be_bytes(word) << (pos % 8)
}

/// The 64 bits of `window` from bit `pos` (at most 120 - 32) on.
#[inline(always)]
fn load_64(window: &Window, pos: u64) -> u64 {
    (load(window, pos) & !0xffff_ffff) | (load(window, pos + 32) >> 32)
}

/// Decodes the sample from sample 2 on whose first bit is bit `s.pos % 8` of `window` into
/// `out[0]`, or when it starts a run of regular samples (dod 0) of an unchanged value, `00`
/// each, as much of the run as fits `out` and `bits_left` bits: all of a constant series
/// takes one step per 28 samples. Moves `s` past them and returns how many, or 0, leaving `s`
/// as it is, when the sample has an invalid value window, for [`XorIter::read_next`] to
/// report.
#[inline(always)]
fn decode_some(
    window: &Window,
    s: &mut DecodeState,
    out: &mut [(i64, u64)],
    bits_left: u64,
) -> usize {
    let start = s.pos & !7;
    // Bit position in `window`.
    let mut pos = s.pos % 8;
    let word = load(window, pos);
    if word >> 62 == 0 {
        // Only the first 57 bits of `word` are the stream's. A run of 1 may not fit
        // `bits_left`, which the caller checks.
        let run = (u64::from(word.leading_zeros().min(56)).min(bits_left) / 2) as usize;
        let run = run.clamp(1, out.len());
        s.pos += 2 * run as u64;
        for sample in &mut out[..run] {
            s.t = s.t.wrapping_add(s.t_delta as i64);
            *sample = (s.t, s.v_bits);
        }
        return run;
    }
    let (dod, word) = if word >> 63 == 0 {
        pos += 1;
        (0, word << 1)
    } else if word >> 62 == 0b10 {
        pos += 16;
        (sign_extend((word >> 48) & 0x3fff, 14), word << 16)
    } else if word >> 61 == 0b110 {
        pos += 20;
        (sign_extend((word >> 44) & 0x1_ffff, 17), word << 20)
    } else if word >> 60 == 0b1110 {
        pos += 24;
        (sign_extend((word >> 40) & 0xf_ffff, 20), word << 24)
    } else {
        let dod = load_64(window, pos + 4);
        pos += 68;
        (dod as i64, load(window, pos))
    };
    // `word` has at least the 33 bits after the dod: enough for the value's header, which is
    // 0 (same value), 10 (window kept) or 11 + 5 bits of leading zeros + 6 bits of
    // significant bits (64 stored as 0).
    let t_delta = s.t_delta.wrapping_add(dod as u64);
    let t = s.t.wrapping_add(t_delta as i64);
    let (pos, trailing, significant) = if word >> 63 == 0 {
        // Unchanged value.
        s.pos = start + pos + 1;
        s.t_delta = t_delta;
        s.t = t;
        out[0] = (t, s.v_bits);
        return 1;
    } else if word >> 62 == 0b11 {
        let leading = ((word >> 57) & 0x1f) as u32;
        let significant = ((word >> 51) & 0x3f) as u32;
        if significant.wrapping_sub(1) >= 64 - leading {
            // 64 significant bits, or an invalid window.
            let Some((trailing, significant, bits)) = decode_wide_value(window, pos) else {
                return 0;
            };
            s.pos = start + pos + 13 + u64::from(significant);
            s.t_delta = t_delta;
            s.t = t;
            s.v_bits ^= bits << trailing;
            s.trailing = trailing;
            s.significant = significant;
            out[0] = (t, s.v_bits);
            return 1;
        }
        (pos + 13, 64 - leading - significant, significant)
    } else {
        (pos + 2, s.trailing, s.significant)
    };
    let bits = if significant <= PEEK_BITS_MAX {
        load(window, pos)
    } else {
        load_64(window, pos)
    } >> (64 - significant);
    s.pos = start + pos + u64::from(significant);
    s.t_delta = t_delta;
    s.t = t;
    s.v_bits ^= bits << trailing;
    s.trailing = trailing;
    s.significant = significant;
    out[0] = (t, s.v_bits);
    1
}

/// The value with a new window at bit `pos` of `window` whose header has 0 (64) significant
/// bits or more than 64 bits with the leading zeros: its trailing zeros, significant bits
/// and those bits, or `None` when the window is invalid.
#[cold]
#[inline(never)]
fn decode_wide_value(window: &Window, pos: u64) -> Option<(u32, u32, u64)> {
    let word = load(window, pos);
    let leading = ((word >> 57) & 0x1f) as u32;
    let significant = match ((word >> 51) & 0x3f) as u32 {
        0 => 64,
        n => n,
    };
    if leading + significant > 64 {
        return None;
    }
    let bits = load_64(window, pos + 13) >> (64 - significant);
    Some((64 - leading - significant, significant, bits))
}

/// Interprets the low `bits` bits of `v` as an asymmetric two's-complement bucket value:
/// `-(2^(bits-1) - 1) ..= 2^(bits-1)`.
#[inline]
fn sign_extend(v: u64, bits: u32) -> i64 {
    if v > 1 << (bits - 1) {
        v as i64 - (1i64 << bits)
    } else {
        v as i64
    }
}

#[cfg(test)]
mod tests;
