//! Appending float histograms to one chunk (encoding 3), as current Prometheus'
//! `FloatHistogramAppender.AppendFloatHistogram` does with `appendOnly = false`.
//!
//! Sample 0 stores the layout, then `varbit_int t` and the 64 bits of the count, zero count,
//! sum and every bucket count. Later samples store the timestamp's delta-of-delta as
//! `varbit_int` and every float XOR'd against its previous value, each with its own window.
//! The rules for new chunks, recoding and gauges are those of [`super::int_chunk`], with
//! absolute bucket counts; one difference is Prometheus': a new chunk started for any reason
//! other than a counter reset gets the unknown header here.

use std::borrow::Cow;

use super::super::bstream::BitWriter;
use super::int_chunk::{same_bounds, Appended};
use super::layout::write_layout;
use super::model::{
    bucket_count, CounterResetHint, FloatHistogram, Span, CUSTOM_BUCKETS_SCHEMA, STALE_NAN_BITS,
};
use super::spans::{
    adjust_for_inserts, expand_spans_and_buckets, expand_spans_both_ways, insert, Expansion, Insert,
};
use super::varbit::put_varbit_int;
use super::xorval::XorField;
use super::{CounterResetHeader, FinishedChunk, HEADER_BYTES};
use crate::tsdb::chunks::ENCODING_FLOAT_HISTOGRAM;

/// Bytes reserved for a new chunk (the bytes do not depend on it).
const CHUNK_CAPACITY_BYTES: usize = 512;

/// A float histogram chunk being appended to.
#[derive(Clone, Debug)]
pub struct FloatChunk {
    stream: BitWriter,
    num: u16,
    header: CounterResetHeader,
    schema: i32,
    zero_threshold: f64,
    spans: [Vec<Span>; 2],
    custom_values: Vec<f64>,
    first_t: i64,
    t: i64,
    t_delta: i64,
    count: XorField,
    zero_count: XorField,
    sum: XorField,
    /// Bucket counts of the last sample with their windows, positive then negative.
    buckets: [Vec<XorField>; 2],
    /// Every sample as appended, to recode the chunk when new buckets appear.
    written: Vec<(i64, FloatHistogram)>,
}

impl Default for FloatChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl FloatChunk {
    /// An empty chunk with an unknown counter-reset header.
    pub fn new() -> Self {
        FloatChunk {
            stream: BitWriter::with_prefix(&[0; HEADER_BYTES], CHUNK_CAPACITY_BYTES),
            num: 0,
            header: CounterResetHeader::Unknown,
            schema: 0,
            zero_threshold: 0.0,
            spans: Default::default(),
            custom_values: Vec::new(),
            first_t: 0,
            t: 0,
            t_delta: 0,
            count: XorField::new(0),
            zero_count: XorField::new(0),
            sum: XorField::new(0),
            buckets: Default::default(),
            written: Vec::new(),
        }
    }

    fn set_header(&mut self, header: CounterResetHeader) {
        self.header = header;
        self.stream.overwrite(2, &[header.flags()]);
    }

    /// The finished chunk; `None` when it is empty.
    pub fn finish(&self) -> Option<FinishedChunk> {
        (self.num > 0).then(|| FinishedChunk {
            min_time: self.first_t,
            max_time: self.t,
            encoding: ENCODING_FLOAT_HISTOGRAM,
            data: self.stream.bytes().to_vec(),
        })
    }

    /// Appends `h` at `t` (Go's `AppendFloatHistogram(prev, t, h, false)`); see
    /// [`super::int_chunk::IntChunk::append`].
    pub fn append(
        &mut self,
        prev: Option<&FloatChunk>,
        t: i64,
        h: &FloatHistogram,
    ) -> Appended<Self> {
        self.append_cow(prev, t, &mut Cow::Borrowed(h))
    }

    /// [`Self::append`], leaving in `h` the histogram as appended: Go widens the caller's
    /// histogram in place to the chunk's layout when it lacks some of its buckets, and Thanos'
    /// downsampling keeps aggregating into that widened histogram.
    pub fn append_widening(
        &mut self,
        prev: Option<&FloatChunk>,
        t: i64,
        h: &mut FloatHistogram,
    ) -> Appended<Self> {
        let mut cow = Cow::Borrowed(&*h);
        let appended = self.append_cow(prev, t, &mut cow);
        if let Cow::Owned(widened) = cow {
            *h = widened;
        }
        appended
    }

    /// The number of samples in the chunk.
    pub fn num_samples(&self) -> u16 {
        self.num
    }

    /// The chunk's bytes, header included (3 zero bytes while empty).
    pub fn bytes(&self) -> &[u8] {
        self.stream.bytes()
    }

    fn append_cow(
        &mut self,
        prev: Option<&FloatChunk>,
        t: i64,
        h: &mut Cow<'_, FloatHistogram>,
    ) -> Appended<Self> {
        debug_assert!(usize::from(self.num) < usize::from(u16::MAX), "chunk full");
        if self.num == 0 {
            self.append_raw(t, h);
            let header = match (h.counter_reset_hint, prev) {
                (CounterResetHint::Gauge, _) => CounterResetHeader::Gauge,
                (CounterResetHint::CounterReset, _) => CounterResetHeader::CounterReset,
                (_, Some(p)) if p.appendable(h).1 => CounterResetHeader::CounterReset,
                (_, Some(_)) => CounterResetHeader::NotCounterReset,
                (_, None) => CounterResetHeader::Unknown,
            };
            self.set_header(header);
            return Appended::InPlace;
        }
        if h.counter_reset_hint == CounterResetHint::Gauge {
            return self.append_gauge(t, h);
        }
        let (expansion, counter_reset) = self.appendable(h);
        let Some(expansion) = expansion.filter(|_| !counter_reset) else {
            let header = if counter_reset {
                CounterResetHeader::CounterReset
            } else {
                CounterResetHeader::Unknown
            };
            return Appended::NewChunk(Self::started_with(header, t, h));
        };
        if expansion.has_backward() {
            let h = h.to_mut();
            if expansion.has_forward() {
                h.positive_spans = adjust_for_inserts(&h.positive_spans, &expansion.backward[0]);
                h.negative_spans = adjust_for_inserts(&h.negative_spans, &expansion.backward[1]);
            } else {
                h.positive_spans = self.spans[0].clone();
                h.negative_spans = self.spans[1].clone();
            }
            widen(h, &expansion.backward);
        }
        self.append_widened(t, h, &expansion.forward);
        Appended::InPlace
    }

    /// A gauge histogram: the layouts are unioned, never a reason for a new chunk.
    fn append_gauge(&mut self, t: i64, h: &mut Cow<'_, FloatHistogram>) -> Appended<Self> {
        let Some((expansion, merged)) = self.appendable_gauge(h) else {
            return Appended::NewChunk(Self::started_with(CounterResetHeader::Gauge, t, h));
        };
        if expansion.has_backward() {
            let h = h.to_mut();
            [h.positive_spans, h.negative_spans] = merged;
            widen(h, &expansion.backward);
        }
        self.append_widened(t, h, &expansion.forward);
        Appended::InPlace
    }

    fn append_widened(&mut self, t: i64, h: &FloatHistogram, forward: &[Vec<Insert>; 2]) {
        if forward.iter().any(|i| !i.is_empty()) {
            *self = self.recode(forward, [&h.positive_spans, &h.negative_spans]);
        }
        self.append_raw(t, h);
    }

    fn started_with(header: CounterResetHeader, t: i64, h: &FloatHistogram) -> Self {
        let mut chunk = FloatChunk::new();
        chunk.set_header(header);
        chunk.append_raw(t, h);
        chunk
    }

    /// Whether `h` can be appended (Go's `appendable`): the expansion when it can, and
    /// whether it cannot because of a counter reset.
    pub fn appendable(&self, h: &FloatHistogram) -> (Option<Expansion>, bool) {
        if self.num > 0 && self.header == CounterResetHeader::Gauge {
            return (None, false);
        }
        if h.counter_reset_hint == CounterResetHint::CounterReset {
            return (None, true);
        }
        if h.is_stale() {
            return (Some(Expansion::default()), false);
        }
        if self.sum.bits == STALE_NAN_BITS {
            return (None, false);
        }
        if h.count < f64::from_bits(self.count.bits) {
            return (None, true);
        }
        if h.schema != self.schema || h.zero_threshold != self.zero_threshold {
            return (None, false);
        }
        if h.schema == CUSTOM_BUCKETS_SCHEMA && !same_bounds(&h.custom_values, &self.custom_values)
        {
            return (None, true);
        }
        if h.zero_count < f64::from_bits(self.zero_count.bits) {
            return (None, true);
        }
        let mut expansion = Expansion::default();
        for side in 0..2 {
            let mine: Vec<f64> = self.buckets[side]
                .iter()
                .map(|f| f64::from_bits(f.bits))
                .collect();
            let (spans, theirs) = side_of(h, side);
            match expand_spans_and_buckets(&self.spans[side], spans, &mine, theirs) {
                Some((forward, backward)) => {
                    expansion.forward[side] = forward;
                    expansion.backward[side] = backward;
                }
                None => return (None, true),
            }
        }
        (Some(expansion), false)
    }

    /// Whether gauge histogram `h` can be appended (Go's `appendableGauge`).
    fn appendable_gauge(&self, h: &FloatHistogram) -> Option<(Expansion, [Vec<Span>; 2])> {
        if self.header != CounterResetHeader::Gauge {
            return None;
        }
        if h.is_stale() {
            return Some((Expansion::default(), Default::default()));
        }
        if self.sum.bits == STALE_NAN_BITS
            || h.schema != self.schema
            || h.zero_threshold != self.zero_threshold
            || (h.schema == CUSTOM_BUCKETS_SCHEMA
                && !same_bounds(&h.custom_values, &self.custom_values))
        {
            return None;
        }
        let [positive, negative] =
            [0, 1].map(|side| expand_spans_both_ways(&self.spans[side], side_of(h, side).0));
        let expansion = Expansion {
            forward: [positive.0, negative.0],
            backward: [positive.1, negative.1],
        };
        Some((expansion, [positive.2, negative.2]))
    }

    /// The chunk re-encoded with the buckets of `forward` added to every sample and `spans` as
    /// its layout (Go's `recode`); the header is kept.
    fn recode(&self, forward: &[Vec<Insert>; 2], spans: [&Vec<Span>; 2]) -> FloatChunk {
        let mut chunk = FloatChunk::new();
        for (t, old) in &self.written {
            let mut h = old.clone();
            h.positive_spans = spans[0].clone();
            h.negative_spans = spans[1].clone();
            widen(&mut h, forward);
            chunk.append_raw(*t, &h);
        }
        chunk.set_header(self.header);
        chunk
    }

    /// Writes `h` (Go's `appendFloatHistogram`); the caller made its buckets match the layout.
    fn append_raw(&mut self, t: i64, h: &FloatHistogram) {
        let stale;
        let h = if h.is_stale() {
            stale = FloatHistogram::stale();
            &stale
        } else {
            h
        };
        let mut t_delta = 0;
        if self.num == 0 {
            self.start(t, h);
        } else {
            t_delta = t.wrapping_sub(self.t);
            let w = &mut self.stream;
            put_varbit_int(w, t_delta.wrapping_sub(self.t_delta));
            self.count.write(w, h.count.to_bits());
            self.zero_count.write(w, h.zero_count.to_bits());
            self.sum.write(w, h.sum.to_bits());
            for side in 0..2 {
                for (field, b) in self.buckets[side].iter_mut().zip(side_of(h, side).1) {
                    field.write(w, b.to_bits());
                }
            }
        }
        self.t = t;
        self.t_delta = t_delta;
        self.num += 1;
        self.stream.overwrite(0, &self.num.to_be_bytes());
        self.written.push((t, h.clone()));
    }

    /// Sample 0: the layout, then the raw values.
    fn start(&mut self, t: i64, h: &FloatHistogram) {
        let w = &mut self.stream;
        write_layout(
            w,
            h.schema,
            h.zero_threshold,
            &h.positive_spans,
            &h.negative_spans,
            &h.custom_values,
        );
        self.schema = h.schema;
        self.zero_threshold = h.zero_threshold;
        self.spans = [h.positive_spans.clone(), h.negative_spans.clone()];
        self.custom_values = h.custom_values.clone();
        self.first_t = t;
        put_varbit_int(w, t);
        for v in [h.count, h.zero_count, h.sum] {
            w.write_bits(v.to_bits(), 64);
        }
        self.count = XorField::new(h.count.to_bits());
        self.zero_count = XorField::new(h.zero_count.to_bits());
        self.sum = XorField::new(h.sum.to_bits());
        for side in 0..2 {
            let n = bucket_count(&self.spans[side]) as usize;
            let values = side_of(h, side).1;
            self.buckets[side] = values
                .iter()
                .map(|v| XorField::new(v.to_bits()))
                .chain(std::iter::repeat(XorField::new(0)))
                .take(n)
                .collect();
            for v in values {
                w.write_bits(v.to_bits(), 64);
            }
        }
    }
}

fn side_of(h: &FloatHistogram, side: usize) -> (&[Span], &[f64]) {
    if side == 0 {
        (&h.positive_spans, &h.positive_buckets)
    } else {
        (&h.negative_spans, &h.negative_buckets)
    }
}

/// Adds the empty buckets of `inserts` (positive, negative) to `h`'s bucket counts.
fn widen(h: &mut FloatHistogram, inserts: &[Vec<Insert>; 2]) {
    if !inserts[0].is_empty() {
        h.positive_buckets = insert(&h.positive_buckets, &inserts[0], false);
    }
    if !inserts[1].is_empty() {
        h.negative_buckets = insert(&h.negative_buckets, &inserts[1], false);
    }
}
