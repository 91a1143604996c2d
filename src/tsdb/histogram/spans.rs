//! Comparing and widening bucket layouts, for appending a histogram to a chunk whose layout
//! differs (`histogram_meta.go`, `expandIntSpansAndBuckets`).
//!
//! Spans are walked as absolute bucket indices ([`BucketIndices`]). Comparing the chunk's
//! layout `a` with a new histogram's layout `b` gives *forward* inserts (buckets only `b` has,
//! to be added to every sample already in the chunk: the chunk is recoded) and *backward*
//! inserts (buckets only `a` has, to be added to the new histogram). An [`Insert`] says how
//! many buckets go in before the `pos`-th bucket of the original list.

use super::model::Span;

/// `num` new buckets before position `pos` of a bucket list; the first has index
/// `bucket_index`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Insert {
    /// Position in the original bucket list.
    pub pos: usize,
    /// How many buckets are inserted there.
    pub num: usize,
    /// Absolute index of the first inserted bucket.
    pub bucket_index: i64,
}

/// The absolute bucket indices that spans describe, in order.
#[derive(Clone, Debug)]
pub struct BucketIndices<'a> {
    spans: &'a [Span],
    span: usize,
    /// Position inside the current span of the last index yielded (`-1` before the first).
    in_span: i64,
    index: i64,
}

impl<'a> BucketIndices<'a> {
    /// The indices of `spans`.
    pub fn new(spans: &'a [Span]) -> Self {
        BucketIndices {
            spans,
            span: 0,
            in_span: -1,
            index: spans.first().map_or(0, |s| i64::from(s.offset)) - 1,
        }
    }
}

impl Iterator for BucketIndices<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        let current = self.spans.get(self.span)?;
        if self.in_span + 1 < i64::from(current.length) {
            self.in_span += 1;
            self.index += 1;
            return Some(self.index);
        }
        while self.span + 1 < self.spans.len() {
            self.span += 1;
            let s = self.spans[self.span];
            self.index += i64::from(s.offset) + 1;
            self.in_span = 0;
            if s.length == 0 {
                // An empty span only moves the index.
                self.index -= 1;
                continue;
            }
            return Some(self.index);
        }
        self.span = self.spans.len();
        None
    }
}

/// Collects runs of consecutive new bucket indices into [`Insert`]s.
#[derive(Default)]
struct InsertRun {
    current: Insert,
    done: Vec<Insert>,
}

impl InsertRun {
    /// One new bucket with index `index` before the current position.
    fn add(&mut self, index: i64) {
        let c = &mut self.current;
        if c.num == 0 {
            c.bucket_index = index;
        } else if c.bucket_index + c.num as i64 != index {
            self.done.push(*c);
            self.current.num = 0;
            self.current.bucket_index = index;
        }
        self.current.num += 1;
    }

    /// The original list moves on by one bucket.
    fn advance(&mut self) {
        if self.current.num > 0 {
            self.done.push(self.current);
            self.current.num = 0;
        }
        self.current.pos += 1;
    }

    fn finish(mut self) -> Vec<Insert> {
        if self.current.num > 0 {
            self.done.push(self.current);
        }
        self.done
    }
}

/// The inserts that widen layout `a` (absolute counts `a_counts`) to hold every bucket of `b`
/// (forward) and those that widen `b` by the buckets of `a` it lacks (backward). `None` when
/// that hides a counter reset: a bucket lost that had observations, or a bucket whose count
/// went down. Counts are compared with `>` and `== 0`, as Go does (so NaN counts never look
/// like a decrease, and a vanished NaN bucket is a reset).
///
/// `a_counts` and `b_counts` hold at least as many counts as their spans have buckets.
pub fn expand_spans_and_buckets<T: PartialOrd + Default + Copy>(
    a: &[Span],
    b: &[Span],
    a_counts: &[T],
    b_counts: &[T],
) -> Option<(Vec<Insert>, Vec<Insert>)> {
    let zero = T::default();
    let mut ai = BucketIndices::new(a).zip(a_counts.iter().copied());
    let mut bi = BucketIndices::new(b).zip(b_counts.iter().copied());
    let (mut forward, mut backward) = (InsertRun::default(), InsertRun::default());
    let (mut x, mut y) = (ai.next(), bi.next());
    loop {
        match (x, y) {
            (Some((a_index, a_count)), Some((b_index, b_count))) if a_index == b_index => {
                if a_count > b_count {
                    return None;
                }
                forward.advance();
                backward.advance();
                (x, y) = (ai.next(), bi.next());
            }
            // `a` lacks a bucket of `b`: the chunk gets it.
            (_, Some((b_index, _))) if x.is_none_or(|(a_index, _)| a_index > b_index) => {
                forward.add(b_index);
                backward.advance();
                y = bi.next();
            }
            // `b` lacks a bucket of `a`: fine if it was empty, then `b` gets it back.
            (Some((a_index, a_count)), _) => {
                if a_count != zero {
                    return None;
                }
                backward.add(a_index);
                forward.advance();
                x = ai.next();
            }
            // Both are done (the arm above takes `b`'s remaining buckets).
            (None, _) => return Some((forward.finish(), backward.finish())),
        }
    }
}

/// How a histogram fits a chunk's layout: the inserts for each side (positive, negative).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Buckets to add to every sample in the chunk (positive, negative).
    pub forward: [Vec<Insert>; 2],
    /// Buckets to add to the new histogram (positive, negative).
    pub backward: [Vec<Insert>; 2],
}

impl Expansion {
    /// True when the chunk must be recoded.
    pub fn has_forward(&self) -> bool {
        self.forward.iter().any(|i| !i.is_empty())
    }

    /// True when the new histogram must be widened.
    pub fn has_backward(&self) -> bool {
        self.backward.iter().any(|i| !i.is_empty())
    }
}

/// Appends bucket `index` to `spans`, `last` being the previous bucket's index.
fn push_bucket(spans: &mut Vec<Span>, last: &mut i64, index: i64) {
    let mut offset = index - *last - 1;
    match spans.last_mut() {
        Some(s) if offset == 0 => s.length += 1,
        _ => {
            if spans.is_empty() {
                offset += 1;
            }
            spans.push(Span::new(offset as i32, 1));
        }
    }
    *last = index;
}

/// For gauge histograms, which may lose buckets: the forward and backward inserts between
/// `a` and `b` regardless of counts, and the spans of their union (`expandSpansBothWays`).
pub fn expand_spans_both_ways(a: &[Span], b: &[Span]) -> (Vec<Insert>, Vec<Insert>, Vec<Span>) {
    let mut ai = BucketIndices::new(a);
    let mut bi = BucketIndices::new(b);
    let (mut forward, mut backward) = (InsertRun::default(), InsertRun::default());
    let mut merged = Vec::new();
    let mut last = 0i64;
    let (mut x, mut y) = (ai.next(), bi.next());
    loop {
        match (x, y) {
            (Some(av), Some(bv)) if av == bv => {
                forward.advance();
                backward.advance();
                push_bucket(&mut merged, &mut last, av);
                (x, y) = (ai.next(), bi.next());
            }
            (_, Some(bv)) if x.is_none_or(|av| av > bv) => {
                forward.add(bv);
                backward.advance();
                push_bucket(&mut merged, &mut last, bv);
                y = bi.next();
            }
            (Some(av), _) => {
                backward.add(av);
                forward.advance();
                push_bucket(&mut merged, &mut last, av);
                x = ai.next();
            }
            (None, _) => return (forward.finish(), backward.finish(), merged),
        }
    }
}

/// The spans of `spans` with the buckets of `inserts` added (`adjustForInserts`).
pub fn adjust_for_inserts(spans: &[Span], inserts: &[Insert]) -> Vec<Span> {
    if inserts.is_empty() {
        return spans.to_vec();
    }
    let mut pending = inserts
        .iter()
        .flat_map(|i| (0..i.num as i64).map(move |k| i.bucket_index + k))
        .peekable();
    let mut merged = Vec::new();
    let mut last = 0i64;
    for index in BucketIndices::new(spans) {
        while let Some(new) = pending.next_if(|&new| new < index) {
            push_bucket(&mut merged, &mut last, new);
        }
        push_bucket(&mut merged, &mut last, index);
    }
    for new in pending {
        push_bucket(&mut merged, &mut last, new);
    }
    merged
}

/// A bucket value that inserts can fill in: integer deltas or float counts.
pub trait BucketValue: Copy + Default {
    /// `self + other` (wrapping for integers, as Go's int64).
    fn add(self, other: Self) -> Self;
    /// `-self` (wrapping for integers).
    fn neg(self) -> Self;
}

impl BucketValue for i64 {
    fn add(self, other: i64) -> i64 {
        self.wrapping_add(other)
    }
    fn neg(self) -> i64 {
        self.wrapping_neg()
    }
}

impl BucketValue for f64 {
    fn add(self, other: f64) -> f64 {
        self + other
    }
    fn neg(self) -> f64 {
        -self
    }
}

/// `values` with empty buckets inserted as `inserts` say (`insert`). With `deltas`, values
/// are deltas: an inserted run starts with `-previous` so it counts 0, and the bucket after it
/// gets `previous` added back.
pub fn insert<T: BucketValue>(values: &[T], inserts: &[Insert], deltas: bool) -> Vec<T> {
    let added: usize = inserts.iter().map(|i| i.num).sum();
    let mut out = Vec::with_capacity(values.len() + added);
    let mut pending = inserts.iter().peekable();
    let mut previous = T::default();
    let push_run = |out: &mut Vec<T>, num: usize, first: T| {
        out.push(first);
        out.extend(std::iter::repeat_n(T::default(), num.saturating_sub(1)));
    };
    for (i, &d) in values.iter().enumerate() {
        let mut inserted = false;
        while let Some(ins) = pending.next_if(|ins| ins.pos == i) {
            let first = if deltas && !inserted {
                previous.neg()
            } else {
                T::default()
            };
            push_run(&mut out, ins.num, first);
            inserted = true;
        }
        out.push(if deltas && inserted {
            d.add(previous)
        } else {
            d
        });
        previous = previous.add(d);
    }
    // Inserts past the end (Go requires `pos >= len(values)` here).
    for ins in pending {
        let first = if deltas { previous.neg() } else { T::default() };
        push_run(&mut out, ins.num, first);
        previous = T::default();
    }
    out
}

#[cfg(test)]
mod tests;
