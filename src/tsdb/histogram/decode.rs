//! Decoding histogram chunks: [`HistogramIter`] (encoding 2) and [`FloatHistogramIter`]
//! (encoding 3) yield `(t, histogram)` in order, and [`decode_chunk`] picks one by encoding.
//!
//! The iterators never panic: every read is bounds-checked and reports the byte offset of the
//! failure, and counts read from the data (spans, buckets, custom bounds) are checked against
//! the bits left before anything is allocated. Every sample they return owns a copy of the
//! chunk's layout, which costs no bits per sample, so the values they return in total (spans,
//! custom bounds, buckets) are bounded by the chunk's size (see `values_budget`). Like
//! Prometheus, they read exactly the number of samples the header announces and ignore bytes
//! after them.
//!
//! Counter-reset hints follow current Prometheus (`counterResetHint`): every sample of a gauge
//! chunk is [`CounterResetHint::Gauge`]; in other chunks the first sample is
//! [`CounterResetHint::Unknown`] (even under a counter-reset header, because the previous chunk
//! may be gone) and the others [`CounterResetHint::NotCounterReset`]. A staleness marker is
//! returned as Go returns it: only its sum set, hint unknown.

use super::super::bstream::BitReader;
use super::error::HistogramError;
use super::layout::{read_layout, Layout};
use super::model::{
    bucket_count, is_known_schema, CounterResetHint, FloatHistogram, Histogram, SampleValue,
    STALE_NAN_BITS,
};
use super::varbit::{read_varbit_int, read_varbit_uint};
use super::xorval::XorField;
use super::{CounterResetHeader, HEADER_BYTES};
use crate::tsdb::chunks::{ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM};

/// The sample count and counter-reset header of histogram chunk `data`; `None` when it is
/// shorter than its 3-byte header.
pub fn chunk_header(data: &[u8]) -> Option<(u16, CounterResetHeader)> {
    let header: &[u8; HEADER_BYTES] = data.first_chunk()?;
    Some((
        u16::from_be_bytes([header[0], header[1]]),
        CounterResetHeader::from_flags(header[2]),
    ))
}

/// The most values (spans, custom bounds and buckets, summed over samples) the iterators
/// return for a chunk of `data_len` bytes: `VALUES_PER_BYTE` per byte, at least `VALUES_MIN`.
/// Real chunks stay far below it: each sample's buckets take at least one bit
/// each, and their layouts hold about as many spans and bounds as buckets.
fn values_budget(data_len: usize) -> u64 {
    (data_len as u64)
        .saturating_mul(VALUES_PER_BYTE)
        .max(VALUES_MIN)
}

/// Values per byte of chunk data in `values_budget`.
const VALUES_PER_BYTE: u64 = 64;

/// The least `values_budget` of any chunk.
const VALUES_MIN: u64 = 1 << 20;

/// Decodes every sample of a histogram chunk of `encoding` (2 or 3). Encodings 5 and 6 (with
/// start timestamps) and every other encoding are refused with
/// [`HistogramError::Unsupported`].
pub fn decode_chunk(encoding: u8, data: &[u8]) -> Result<Vec<(i64, SampleValue)>, HistogramError> {
    match encoding {
        ENCODING_HISTOGRAM => HistogramIter::new(data)
            .map(|s| s.map(|(t, h)| (t, SampleValue::Histogram(h))))
            .collect(),
        ENCODING_FLOAT_HISTOGRAM => FloatHistogramIter::new(data)
            .map(|s| s.map(|(t, h)| (t, SampleValue::FloatHistogram(h))))
            .collect(),
        super::ENCODING_HISTOGRAM_ST | super::ENCODING_FLOAT_HISTOGRAM_ST => {
            Err(HistogramError::Unsupported {
                encoding,
                what: "chunks with start timestamps (Prometheus 3.14 and later) are not supported",
            })
        }
        _ => Err(HistogramError::Unsupported {
            encoding,
            what: "not a native histogram encoding",
        }),
    }
}

/// The state both iterators share: the stream, the sample counters and the layout.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    encoding: u8,
    reader: BitReader<'a>,
    header: Option<(u16, CounterResetHeader)>,
    read: u16,
    failed: bool,
    layout: Layout,
    /// What is left of `values_budget`.
    budget: u64,
}

impl<'a> Cursor<'a> {
    fn new(encoding: u8, data: &'a [u8]) -> Self {
        Cursor {
            encoding,
            reader: BitReader::new(data.get(HEADER_BYTES..).unwrap_or_default()),
            header: chunk_header(data),
            read: 0,
            failed: false,
            layout: Layout::default(),
            budget: values_budget(data.len()),
        }
    }

    /// The length of the chunk data, header included.
    fn data_len(&self) -> usize {
        let bits = self.reader.bit_position() + self.reader.bits_left();
        HEADER_BYTES + (bits / 8) as usize
    }

    /// Charges the sample about to be returned, with `buckets` buckets, to the budget.
    fn charge(&mut self, buckets: usize) -> Result<(), HistogramError> {
        let layout = &self.layout;
        let values = layout.positive_spans.len()
            + layout.negative_spans.len()
            + layout.custom_values.len()
            + buckets;
        match self.budget.checked_sub(values as u64) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => {
                let what = format!(
                    "the samples decoded so far and this one hold more than {} spans, bounds \
                     and buckets, too many for a chunk of this size",
                    values_budget(self.data_len())
                );
                Err(self.error(what))
            }
        }
    }

    fn error(&mut self, what: impl Into<String>) -> HistogramError {
        self.failed = true;
        HistogramError::Corrupt {
            encoding: self.encoding,
            byte_offset: HEADER_BYTES + (self.reader.bit_position() / 8) as usize,
            sample: self.read,
            what: what.into(),
        }
    }

    /// `Ok(true)` when another sample is due, `Ok(false)` at the end (and after an error).
    fn has_next(&mut self) -> Result<bool, HistogramError> {
        if self.failed {
            return Ok(false);
        }
        match self.header {
            None => Err(self.error("chunk shorter than its 3-byte header")),
            Some((total, _)) => Ok(self.read < total),
        }
    }

    fn counter_reset_header(&self) -> CounterResetHeader {
        self.header
            .map_or(CounterResetHeader::Unknown, |(_, header)| header)
    }

    /// The hint of the sample just read (`counterResetHint`).
    fn hint(&self) -> CounterResetHint {
        match self.counter_reset_header() {
            CounterResetHeader::Gauge => CounterResetHint::Gauge,
            _ if self.read > 1 => CounterResetHint::NotCounterReset,
            _ => CounterResetHint::Unknown,
        }
    }

    /// Reads the layout and returns the number of positive and negative buckets, after
    /// checking that the chunk has at least `bits_per_bucket` bits left for each.
    fn read_layout(&mut self, bits_per_bucket: u64) -> Result<(usize, usize), HistogramError> {
        self.layout = read_layout(&mut self.reader).map_err(|what| self.error(what))?;
        if !is_known_schema(self.layout.schema) {
            let what = format!("unknown schema {}", self.layout.schema);
            return Err(self.error(what));
        }
        let positive = bucket_count(&self.layout.positive_spans);
        let negative = bucket_count(&self.layout.negative_spans);
        if positive.saturating_add(negative) > self.reader.bits_left() / bits_per_bucket {
            return Err(self.error("more buckets than the chunk has bits for"));
        }
        Ok((positive as usize, negative as usize))
    }

    fn varbit_int(&mut self, what: &'static str) -> Result<i64, HistogramError> {
        read_varbit_int(&mut self.reader).ok_or_else(|| self.error(what))
    }

    fn varbit_uint(&mut self, what: &'static str) -> Result<u64, HistogramError> {
        read_varbit_uint(&mut self.reader).ok_or_else(|| self.error(what))
    }

    fn raw_f64(&mut self, what: &'static str) -> Result<u64, HistogramError> {
        self.reader.read_bits(64).ok_or_else(|| self.error(what))
    }

    fn xor(&mut self, field: &mut XorField) -> Result<(), HistogramError> {
        field
            .read(&mut self.reader)
            .map_err(|what| self.error(what))
    }
}

/// Decodes the samples of an integer histogram chunk (encoding 2), in order.
#[derive(Debug, Clone)]
pub struct HistogramIter<'a> {
    cursor: Cursor<'a>,
    t: i64,
    t_delta: i64,
    count: u64,
    count_delta: i64,
    zero_count: u64,
    zero_count_delta: i64,
    sum: XorField,
    /// Bucket deltas (each bucket minus the previous one), as the histogram holds them.
    positive: Vec<i64>,
    negative: Vec<i64>,
    /// Per bucket, the change of its delta since the previous sample.
    positive_change: Vec<i64>,
    negative_change: Vec<i64>,
}

impl<'a> HistogramIter<'a> {
    /// An iterator over the chunk `data` (header included).
    pub fn new(data: &'a [u8]) -> Self {
        HistogramIter {
            cursor: Cursor::new(ENCODING_HISTOGRAM, data),
            t: 0,
            t_delta: 0,
            count: 0,
            count_delta: 0,
            zero_count: 0,
            zero_count_delta: 0,
            sum: XorField::for_reading(0),
            positive: Vec::new(),
            negative: Vec::new(),
            positive_change: Vec::new(),
            negative_change: Vec::new(),
        }
    }

    /// The number of samples the header announces (0 when there is no header).
    pub fn num_samples(&self) -> u16 {
        self.cursor.header.map_or(0, |(n, _)| n)
    }

    /// The chunk's counter-reset header.
    pub fn counter_reset_header(&self) -> CounterResetHeader {
        self.cursor.counter_reset_header()
    }

    /// The next sample, `Ok(None)` after the last one the header announces and after an
    /// error.
    pub fn next_sample(&mut self) -> Result<Option<(i64, Histogram)>, HistogramError> {
        if !self.cursor.has_next()? {
            return Ok(None);
        }
        if self.cursor.read == 0 {
            self.read_first()?;
        } else {
            self.read_next()?;
        }
        if self.sum.bits != STALE_NAN_BITS {
            // A staleness marker holds no layout and no buckets.
            self.cursor
                .charge(self.positive.len() + self.negative.len())?;
        }
        self.cursor.read += 1;
        Ok(Some((self.t, self.histogram())))
    }

    fn read_first(&mut self) -> Result<(), HistogramError> {
        let c = &mut self.cursor;
        let (positive, negative) = c.read_layout(1)?;
        self.positive = vec![0; positive];
        self.negative = vec![0; negative];
        self.positive_change = vec![0; positive];
        self.negative_change = vec![0; negative];
        self.t = c.varbit_int("truncated timestamp")?;
        self.count = c.varbit_uint("truncated count")?;
        self.zero_count = c.varbit_uint("truncated zero count")?;
        self.sum = XorField::for_reading(c.raw_f64("truncated sum")?);
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            *b = c.varbit_int("truncated bucket")?;
        }
        Ok(())
    }

    fn read_next(&mut self) -> Result<(), HistogramError> {
        let c = &mut self.cursor;
        let t_dod = c.varbit_int("truncated timestamp")?;
        self.t_delta = self.t_delta.wrapping_add(t_dod);
        self.t = self.t.wrapping_add(self.t_delta);
        let count_dod = c.varbit_int("truncated count")?;
        self.count_delta = self.count_delta.wrapping_add(count_dod);
        self.count = self.count.wrapping_add(self.count_delta as u64);
        let zero_dod = c.varbit_int("truncated zero count")?;
        self.zero_count_delta = self.zero_count_delta.wrapping_add(zero_dod);
        self.zero_count = self.zero_count.wrapping_add(self.zero_count_delta as u64);
        c.xor(&mut self.sum)?;
        if self.sum.bits == STALE_NAN_BITS {
            // A staleness marker stores no buckets.
            return Ok(());
        }
        let buckets = self.positive.iter_mut().chain(self.negative.iter_mut());
        let changes = self
            .positive_change
            .iter_mut()
            .chain(self.negative_change.iter_mut());
        for (bucket, change) in buckets.zip(changes) {
            let dod = c.varbit_int("truncated bucket")?;
            *change = change.wrapping_add(dod);
            *bucket = bucket.wrapping_add(*change);
        }
        Ok(())
    }

    fn histogram(&self) -> Histogram {
        if self.sum.bits == STALE_NAN_BITS {
            return Histogram::stale();
        }
        let layout = &self.cursor.layout;
        Histogram {
            counter_reset_hint: self.cursor.hint(),
            schema: layout.schema,
            zero_threshold: layout.zero_threshold,
            zero_count: self.zero_count,
            count: self.count,
            sum: f64::from_bits(self.sum.bits),
            positive_spans: layout.positive_spans.clone(),
            negative_spans: layout.negative_spans.clone(),
            positive_buckets: self.positive.clone(),
            negative_buckets: self.negative.clone(),
            custom_values: layout.custom_values.clone(),
        }
    }
}

impl Iterator for HistogramIter<'_> {
    type Item = Result<(i64, Histogram), HistogramError>;

    /// Yields each sample, or one error and then nothing.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_sample().transpose()
    }
}

/// Decodes the samples of a float histogram chunk (encoding 3), in order.
#[derive(Debug, Clone)]
pub struct FloatHistogramIter<'a> {
    cursor: Cursor<'a>,
    t: i64,
    t_delta: i64,
    count: XorField,
    zero_count: XorField,
    sum: XorField,
    positive: Vec<XorField>,
    negative: Vec<XorField>,
}

impl<'a> FloatHistogramIter<'a> {
    /// An iterator over the chunk `data` (header included).
    pub fn new(data: &'a [u8]) -> Self {
        FloatHistogramIter {
            cursor: Cursor::new(ENCODING_FLOAT_HISTOGRAM, data),
            t: 0,
            t_delta: 0,
            count: XorField::for_reading(0),
            zero_count: XorField::for_reading(0),
            sum: XorField::for_reading(0),
            positive: Vec::new(),
            negative: Vec::new(),
        }
    }

    /// The number of samples the header announces (0 when there is no header).
    pub fn num_samples(&self) -> u16 {
        self.cursor.header.map_or(0, |(n, _)| n)
    }

    /// The chunk's counter-reset header.
    pub fn counter_reset_header(&self) -> CounterResetHeader {
        self.cursor.counter_reset_header()
    }

    /// The next sample, `Ok(None)` after the last one the header announces and after an
    /// error.
    pub fn next_sample(&mut self) -> Result<Option<(i64, FloatHistogram)>, HistogramError> {
        if !self.cursor.has_next()? {
            return Ok(None);
        }
        if self.cursor.read == 0 {
            self.read_first()?;
        } else {
            self.read_next()?;
        }
        if self.sum.bits != STALE_NAN_BITS {
            // A staleness marker holds no layout and no buckets.
            self.cursor
                .charge(self.positive.len() + self.negative.len())?;
        }
        self.cursor.read += 1;
        Ok(Some((self.t, self.histogram())))
    }

    fn read_first(&mut self) -> Result<(), HistogramError> {
        let c = &mut self.cursor;
        // Every bucket's first value is a raw f64.
        let (positive, negative) = c.read_layout(64)?;
        self.t = c.varbit_int("truncated timestamp")?;
        self.count = XorField::for_reading(c.raw_f64("truncated count")?);
        self.zero_count = XorField::for_reading(c.raw_f64("truncated zero count")?);
        self.sum = XorField::for_reading(c.raw_f64("truncated sum")?);
        self.positive = Vec::with_capacity(positive);
        for _ in 0..positive {
            let bits = c.raw_f64("truncated bucket")?;
            self.positive.push(XorField::for_reading(bits));
        }
        self.negative = Vec::with_capacity(negative);
        for _ in 0..negative {
            let bits = c.raw_f64("truncated bucket")?;
            self.negative.push(XorField::for_reading(bits));
        }
        Ok(())
    }

    fn read_next(&mut self) -> Result<(), HistogramError> {
        let c = &mut self.cursor;
        let t_dod = c.varbit_int("truncated timestamp")?;
        self.t_delta = self.t_delta.wrapping_add(t_dod);
        self.t = self.t.wrapping_add(self.t_delta);
        c.xor(&mut self.count)?;
        c.xor(&mut self.zero_count)?;
        c.xor(&mut self.sum)?;
        if self.sum.bits == STALE_NAN_BITS {
            return Ok(());
        }
        for field in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            c.xor(field)?;
        }
        Ok(())
    }

    fn histogram(&self) -> FloatHistogram {
        if self.sum.bits == STALE_NAN_BITS {
            return FloatHistogram::stale();
        }
        let layout = &self.cursor.layout;
        let values = |fields: &[XorField]| fields.iter().map(|f| f64::from_bits(f.bits)).collect();
        FloatHistogram {
            counter_reset_hint: self.cursor.hint(),
            schema: layout.schema,
            zero_threshold: layout.zero_threshold,
            zero_count: f64::from_bits(self.zero_count.bits),
            count: f64::from_bits(self.count.bits),
            sum: f64::from_bits(self.sum.bits),
            positive_spans: layout.positive_spans.clone(),
            negative_spans: layout.negative_spans.clone(),
            positive_buckets: values(&self.positive),
            negative_buckets: values(&self.negative),
            custom_values: layout.custom_values.clone(),
        }
    }
}

impl Iterator for FloatHistogramIter<'_> {
    type Item = Result<(i64, FloatHistogram), HistogramError>;

    /// Yields each sample, or one error and then nothing.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_sample().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::write_layout;
    use super::super::model::Span;
    use super::super::varbit::{put_varbit_int, put_varbit_uint};
    use super::*;
    use crate::tsdb::bstream::BitWriter;

    /// A chunk of `encoding` announcing 65535 samples whose layout has 100 000 empty spans:
    /// the first sample with zero counts, then four zero bits per sample (nothing changes).
    fn repeated_layout_chunk(encoding: u8) -> Vec<u8> {
        let mut w = BitWriter::with_prefix(&[0xff, 0xff, 0], 0);
        write_layout(&mut w, 0, 0.0, &vec![Span::new(0, 0); 100_000], &[], &[]);
        put_varbit_int(&mut w, 1_000);
        if encoding == ENCODING_HISTOGRAM {
            put_varbit_uint(&mut w, 0);
            put_varbit_uint(&mut w, 0);
            w.write_bits(0, 64);
        } else {
            for _ in 0..3 {
                w.write_bits(0, 64);
            }
        }
        for _ in 0..65_534 / 2 + 1 {
            w.write_byte(0);
        }
        w.into_bytes()
    }

    /// Regression (fuzz hardening audit): every sample returned a copy of the layout, which
    /// costs its chunk nothing per sample, so a 58 KB chunk decoded into 65535 copies of 100 000
    /// spans (52 GB). The decoders now stop at a budget proportional to the chunk's size.
    #[test]
    fn a_layout_repeated_by_cheap_samples_is_refused_within_the_budget() {
        for encoding in [ENCODING_HISTOGRAM, ENCODING_FLOAT_HISTOGRAM] {
            let data = repeated_layout_chunk(encoding);
            let err = decode_chunk(encoding, &data).unwrap_err();
            let HistogramError::Corrupt { sample, what, .. } = &err else {
                panic!("{err}");
            };
            assert!(what.contains("too many for a chunk of this size"), "{err}");
            let budget = values_budget(data.len());
            assert_eq!(u64::from(*sample), budget / 100_000, "{err}");
        }
    }
}
