//! Appending integer histograms to one chunk (encoding 2), as current Prometheus'
//! `HistogramAppender.AppendHistogram` does with `appendOnly = false`.
//!
//! Sample 0 stores the layout, then `varbit_int t`, `varbit_uint count`, `varbit_uint
//! zero_count`, the 64 bits of the sum and a `varbit_int` per bucket delta. Later samples store
//! delta-of-deltas of the timestamp, count, zero count and every bucket delta as `varbit_int`,
//! and the sum XOR'd against the previous one. A staleness marker stores no buckets.
//!
//! [`IntChunk::append`] decides whether a histogram fits the chunk: a counter reset (count,
//! zero count or a bucket went down, a used bucket vanished, or the hint says so), a changed
//! schema, zero threshold or custom bounds, a gauge/counter mismatch, or a sample after a
//! staleness marker start a new chunk, whose counter-reset header says why. New buckets recode
//! the chunk to the wider layout; buckets the histogram lacks (empty in the chunk) are added to
//! it. Gauge histograms may lose buckets: both sides are widened to the union.

use std::borrow::Cow;

use super::super::bstream::BitWriter;
use super::layout::write_layout;
use super::model::{absolute, CounterResetHint, Histogram, Span, CUSTOM_BUCKETS_SCHEMA};
use super::spans::{
    adjust_for_inserts, expand_spans_and_buckets, expand_spans_both_ways, insert, Expansion, Insert,
};
use super::varbit::{put_varbit_int, put_varbit_uint};
use super::xorval::XorField;
use super::{CounterResetHeader, FinishedChunk, HEADER_BYTES};
use crate::tsdb::chunks::ENCODING_HISTOGRAM;

/// Bytes reserved for a new chunk (the bytes do not depend on it).
const CHUNK_CAPACITY_BYTES: usize = 256;

/// What [`IntChunk::append`] did with a sample.
#[derive(Debug)]
pub enum Appended<C> {
    /// The sample is in this chunk (which may have been recoded to a wider layout).
    InPlace,
    /// The sample starts this new chunk; the old one is complete.
    NewChunk(C),
}

/// An integer histogram chunk being appended to.
#[derive(Clone, Debug)]
pub struct IntChunk {
    stream: BitWriter,
    num: u16,
    header: CounterResetHeader,
    schema: i32,
    zero_threshold: f64,
    spans: [Vec<Span>; 2],
    custom_values: Vec<f64>,
    t: i64,
    count: u64,
    zero_count: u64,
    t_delta: i64,
    count_delta: i64,
    zero_count_delta: i64,
    /// Bucket deltas of the last sample, positive then negative.
    buckets: [Vec<i64>; 2],
    /// Per bucket, the change of its delta at the last sample.
    changes: [Vec<i64>; 2],
    sum: XorField,
    /// Every sample as appended, to recode the chunk when new buckets appear.
    written: Vec<(i64, Histogram)>,
}

impl Default for IntChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl IntChunk {
    /// An empty chunk with an unknown counter-reset header.
    pub fn new() -> Self {
        IntChunk {
            stream: BitWriter::with_prefix(&[0; HEADER_BYTES], CHUNK_CAPACITY_BYTES),
            num: 0,
            header: CounterResetHeader::Unknown,
            schema: 0,
            zero_threshold: 0.0,
            spans: Default::default(),
            custom_values: Vec::new(),
            t: 0,
            count: 0,
            zero_count: 0,
            t_delta: 0,
            count_delta: 0,
            zero_count_delta: 0,
            buckets: Default::default(),
            changes: Default::default(),
            sum: XorField::new(0),
            written: Vec::new(),
        }
    }

    fn set_header(&mut self, header: CounterResetHeader) {
        self.header = header;
        self.stream.overwrite(2, &[header.flags()]);
    }

    /// The finished chunk; `None` when it is empty.
    pub fn finish(&self) -> Option<FinishedChunk> {
        let first = self.written.first()?.0;
        Some(FinishedChunk {
            min_time: first,
            max_time: self.t,
            encoding: ENCODING_HISTOGRAM,
            data: self.stream.bytes().to_vec(),
        })
    }

    /// Appends `h` at `t` (Go's `AppendHistogram(prev, t, h, false)`). `prev` is the chunk
    /// before an empty `self`, whose header is then derived from it (the head does this; a
    /// compaction passes `None`). `h` must have as many buckets as its spans describe.
    pub fn append(&mut self, prev: Option<&IntChunk>, t: i64, h: &Histogram) -> Appended<Self> {
        debug_assert!(usize::from(self.num) < usize::from(u16::MAX), "chunk full");
        if self.num == 0 {
            self.append_raw(t, h);
            let header = match (h.counter_reset_hint, prev) {
                (CounterResetHint::Gauge, _) => CounterResetHeader::Gauge,
                (CounterResetHint::CounterReset, _) => CounterResetHeader::CounterReset,
                (_, Some(p)) => p.appendable(h).1,
                (_, None) => CounterResetHeader::Unknown,
            };
            self.set_header(header);
            return Appended::InPlace;
        }
        if h.counter_reset_hint == CounterResetHint::Gauge {
            return self.append_gauge(t, h);
        }
        let (expansion, header) = self.appendable(h);
        let Some(expansion) = expansion.filter(|_| header == CounterResetHeader::NotCounterReset)
        else {
            return Appended::NewChunk(Self::started_with(header, t, h));
        };
        let mut h = Cow::Borrowed(h);
        if expansion.has_backward() {
            let h = h.to_mut();
            if expansion.has_forward() {
                for side in 0..2 {
                    let adjusted = adjust_for_inserts(spans_of(h, side), &expansion.backward[side]);
                    *spans_of_mut(h, side) = adjusted;
                }
            } else {
                h.positive_spans = self.spans[0].clone();
                h.negative_spans = self.spans[1].clone();
            }
            widen(h, &expansion.backward);
        }
        self.append_widened(t, &h, &expansion.forward);
        Appended::InPlace
    }

    /// A gauge histogram: the layouts are unioned, never a reason for a new chunk.
    fn append_gauge(&mut self, t: i64, h: &Histogram) -> Appended<Self> {
        let Some((expansion, merged)) = self.appendable_gauge(h) else {
            return Appended::NewChunk(Self::started_with(CounterResetHeader::Gauge, t, h));
        };
        let mut h = Cow::Borrowed(h);
        if expansion.has_backward() {
            let h = h.to_mut();
            [h.positive_spans, h.negative_spans] = merged;
            widen(h, &expansion.backward);
        }
        self.append_widened(t, &h, &expansion.forward);
        Appended::InPlace
    }

    /// Appends `h`, first recoding the chunk when `forward` adds buckets to it.
    fn append_widened(&mut self, t: i64, h: &Histogram, forward: &[Vec<Insert>; 2]) {
        if forward.iter().any(|i| !i.is_empty()) {
            *self = self.recode(forward, [&h.positive_spans, &h.negative_spans]);
        }
        self.append_raw(t, h);
    }

    fn started_with(header: CounterResetHeader, t: i64, h: &Histogram) -> Self {
        let mut chunk = IntChunk::new();
        chunk.set_header(header);
        chunk.append_raw(t, h);
        chunk
    }

    /// Whether `h` can be appended (Go's `appendable`): the expansion when it can, and the
    /// counter-reset header a new chunk would get (`NotCounterReset` when it fits).
    pub fn appendable(&self, h: &Histogram) -> (Option<Expansion>, CounterResetHeader) {
        use CounterResetHeader::{CounterReset, NotCounterReset, Unknown};
        if self.num > 0 && self.header == CounterResetHeader::Gauge {
            return (None, NotCounterReset);
        }
        if h.counter_reset_hint == CounterResetHint::CounterReset {
            return (None, CounterReset);
        }
        if h.is_stale() {
            return (Some(Expansion::default()), NotCounterReset);
        }
        if self.sum.bits == super::model::STALE_NAN_BITS {
            return (None, Unknown);
        }
        if h.count < self.count {
            return (None, CounterReset);
        }
        if h.schema != self.schema || h.zero_threshold != self.zero_threshold {
            return (None, Unknown);
        }
        if h.schema == CUSTOM_BUCKETS_SCHEMA && !same_bounds(&h.custom_values, &self.custom_values)
        {
            return (None, CounterReset);
        }
        if h.zero_count < self.zero_count {
            return (None, CounterReset);
        }
        let mut expansion = Expansion::default();
        for side in 0..2 {
            let mine = absolute(&self.buckets[side]);
            let theirs = absolute(buckets_of(h, side));
            match expand_spans_and_buckets(&self.spans[side], spans_of(h, side), &mine, &theirs) {
                Some((forward, backward)) => {
                    expansion.forward[side] = forward;
                    expansion.backward[side] = backward;
                }
                None => return (None, CounterReset),
            }
        }
        (Some(expansion), NotCounterReset)
    }

    /// Whether gauge histogram `h` can be appended (Go's `appendableGauge`): the expansion and
    /// the union spans when it can.
    fn appendable_gauge(&self, h: &Histogram) -> Option<(Expansion, [Vec<Span>; 2])> {
        if self.header != CounterResetHeader::Gauge {
            return None;
        }
        if h.is_stale() {
            return Some((Expansion::default(), Default::default()));
        }
        if self.sum.bits == super::model::STALE_NAN_BITS
            || h.schema != self.schema
            || h.zero_threshold != self.zero_threshold
            || (h.schema == CUSTOM_BUCKETS_SCHEMA
                && !same_bounds(&h.custom_values, &self.custom_values))
        {
            return None;
        }
        let [positive, negative] =
            [0, 1].map(|side| expand_spans_both_ways(&self.spans[side], spans_of(h, side)));
        let expansion = Expansion {
            forward: [positive.0, negative.0],
            backward: [positive.1, negative.1],
        };
        Some((expansion, [positive.2, negative.2]))
    }

    /// The chunk re-encoded with the buckets of `forward` added to every sample and `spans` as
    /// its layout (Go's `recode`); the header is kept.
    fn recode(&self, forward: &[Vec<Insert>; 2], spans: [&Vec<Span>; 2]) -> IntChunk {
        let mut chunk = IntChunk::new();
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

    /// Writes `h` (Go's `appendHistogram`); the caller made its buckets match the layout.
    fn append_raw(&mut self, t: i64, h: &Histogram) {
        let stale;
        let h = if h.is_stale() {
            // Only the sum of a staleness marker is stored (and an empty layout).
            stale = Histogram::stale();
            &stale
        } else {
            h
        };
        let (mut t_delta, mut count_delta, mut zero_count_delta) = (0, 0, 0);
        if self.num == 0 {
            self.start(t, h);
        } else {
            t_delta = t.wrapping_sub(self.t);
            count_delta = (h.count as i64).wrapping_sub(self.count as i64);
            zero_count_delta = (h.zero_count as i64).wrapping_sub(self.zero_count as i64);
            let w = &mut self.stream;
            put_varbit_int(w, t_delta.wrapping_sub(self.t_delta));
            if h.is_stale() {
                put_varbit_int(w, 0);
                put_varbit_int(w, 0);
            } else {
                put_varbit_int(w, count_delta.wrapping_sub(self.count_delta));
                put_varbit_int(w, zero_count_delta.wrapping_sub(self.zero_count_delta));
            }
            self.sum.write(w, h.sum.to_bits());
            for side in 0..2 {
                let last = self.buckets[side].iter();
                let changes = self.changes[side].iter_mut();
                for ((&b, &previous), change) in buckets_of(h, side).iter().zip(last).zip(changes) {
                    let delta = b.wrapping_sub(previous);
                    put_varbit_int(w, delta.wrapping_sub(*change));
                    *change = delta;
                }
            }
        }
        self.t = t;
        self.count = h.count;
        self.zero_count = h.zero_count;
        self.t_delta = t_delta;
        self.count_delta = count_delta;
        self.zero_count_delta = zero_count_delta;
        for side in 0..2 {
            let n = buckets_of(h, side).len().min(self.buckets[side].len());
            self.buckets[side][..n].copy_from_slice(&buckets_of(h, side)[..n]);
        }
        self.num += 1;
        self.stream.overwrite(0, &self.num.to_be_bytes());
        self.written.push((t, h.clone()));
    }

    /// Sample 0: the layout, then the raw values.
    fn start(&mut self, t: i64, h: &Histogram) {
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
        for side in 0..2 {
            let n = super::model::bucket_count(&self.spans[side]) as usize;
            self.buckets[side] = vec![0; n];
            self.changes[side] = vec![0; n];
        }
        put_varbit_int(w, t);
        put_varbit_uint(w, h.count);
        put_varbit_uint(w, h.zero_count);
        w.write_bits(h.sum.to_bits(), 64);
        self.sum = XorField::new(h.sum.to_bits());
        for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
            put_varbit_int(w, b);
        }
    }
}

/// Custom bounds compared by value (`CustomBucketBoundsMatch`).
pub fn same_bounds(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn spans_of(h: &Histogram, side: usize) -> &[Span] {
    if side == 0 {
        &h.positive_spans
    } else {
        &h.negative_spans
    }
}

fn spans_of_mut(h: &mut Histogram, side: usize) -> &mut Vec<Span> {
    if side == 0 {
        &mut h.positive_spans
    } else {
        &mut h.negative_spans
    }
}

fn buckets_of(h: &Histogram, side: usize) -> &[i64] {
    if side == 0 {
        &h.positive_buckets
    } else {
        &h.negative_buckets
    }
}

/// Adds the empty buckets of `inserts` (positive, negative) to `h`'s bucket deltas.
fn widen(h: &mut Histogram, inserts: &[Vec<Insert>; 2]) {
    if !inserts[0].is_empty() {
        h.positive_buckets = insert(&h.positive_buckets, &inserts[0], true);
    }
    if !inserts[1].is_empty() {
        h.negative_buckets = insert(&h.negative_buckets, &inserts[1], true);
    }
}
