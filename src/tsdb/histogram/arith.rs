//! Float histogram arithmetic with the results of Prometheus' `FloatHistogram` (v0.309.1,
//! the version Thanos pins): [`FloatHistogram::add`] and [`FloatHistogram::sub`] (zero
//! buckets reconciled, the finer schema reduced, buckets merged into the receiver's spans
//! the way Go's `addBuckets` edits them, so that the spans come out the same),
//! [`FloatHistogram::copy_to_schema`] and [`FloatHistogram::reduce_resolution`],
//! [`FloatHistogram::detect_reset`] and [`FloatHistogram::compact`].
//!
//! Where Go panics or loops (spans that do not match their buckets, a mix of custom and
//! exponential buckets, NaN zero thresholds) these return an [`ArithError`] or stop. Custom
//! bucket histograms (schema -53) are supported when their bounds are equal; reconciling
//! different bounds is refused.

use super::bounds::{exponential_bound, is_exponential_schema};
use super::model::{CounterResetHint, FloatHistogram, Span, CUSTOM_BUCKETS_SCHEMA};
use super::spans::BucketIndices;

/// Why an operation on float histograms could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("histogram arithmetic: {0}")]
pub struct ArithError(pub String);

/// The index in schema `to` (not above `from`) of bucket `idx` of schema `from`
/// (`targetIdx`, with Go's int32 shifts).
fn target_idx(idx: i32, from: i32, to: i32) -> i32 {
    let below = idx.wrapping_sub(1);
    let shift = u32::try_from(from - to).unwrap_or(0);
    let shifted = below
        .checked_shr(shift)
        .unwrap_or(if below < 0 { -1 } else { 0 });
    shifted.wrapping_add(1)
}

/// The buckets `spans`/`buckets` of schema `from` merged into schema `to`
/// (`reduceResolution` on absolute counts).
fn reduce_buckets(
    spans: &[Span],
    buckets: &[f64],
    from: i32,
    to: i32,
) -> Result<(Vec<Span>, Vec<f64>), ArithError> {
    let mut out_spans: Vec<Span> = Vec::new();
    let mut out: Vec<f64> = Vec::new();
    let (mut idx, mut k, mut last) = (0i32, 0usize, 0i32);
    for (n, span) in spans.iter().enumerate() {
        if n > 0 && span.offset < 0 {
            return Err(ArithError(format!(
                "span {} has negative offset {}",
                n + 1,
                span.offset
            )));
        }
        idx = idx.wrapping_add(span.offset);
        for _ in 0..span.length {
            let Some(&count) = buckets.get(k) else {
                return Err(ArithError(format!(
                    "{} buckets, the spans need more",
                    buckets.len()
                )));
            };
            let target = target_idx(idx, from, to);
            match (out_spans.last_mut(), out.last_mut()) {
                (Some(s), Some(b)) => {
                    if last == target {
                        *b += count;
                    } else if last.wrapping_add(1) == target {
                        s.length += 1;
                        last = target;
                        out.push(count);
                    } else if last.wrapping_add(1) < target {
                        out_spans.push(Span::new(target.wrapping_sub(last).wrapping_sub(1), 1));
                        last = target;
                        out.push(count);
                    }
                }
                _ => {
                    out_spans.push(Span::new(target, 1));
                    out.push(count);
                    last = target;
                }
            }
            idx = idx.wrapping_add(1);
            k += 1;
        }
    }
    if k != buckets.len() {
        return Err(ArithError(format!(
            "the spans need {k} buckets, {} are given",
            buckets.len()
        )));
    }
    Ok((out_spans, out))
}

/// `(index, count)` of every bucket, at schema `to` (not above `schema`), consecutive buckets
/// of the same target bucket merged; buckets whose upper bound is at most `start` are skipped
/// from the start (exponential schemas only; `start == 0` skips nothing), as Go's
/// `floatBucketIterator` does.
fn merged_buckets(
    spans: &[Span],
    buckets: &[f64],
    schema: i32,
    to: i32,
    start: f64,
) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(buckets.len());
    for (idx, &count) in BucketIndices::new(spans).zip(buckets) {
        let target = target_idx(idx as i32, schema, to);
        match out.last_mut() {
            Some(last) if schema != to && last.0 == target => last.1 += count,
            _ => out.push((target, count)),
        }
    }
    if start != 0.0 && is_exponential_schema(to) {
        let skip = out
            .iter()
            .take_while(|(i, _)| exponential_bound(*i, to) <= start)
            .count();
        out.drain(..skip);
    }
    out
}

/// Go's `detectReset` over two bucket lists of one schema.
fn buckets_reset(curr: &[(i32, f64)], prev: &[(i32, f64)]) -> bool {
    let mut prev_it = prev.iter();
    let Some(mut p) = prev_it.next() else {
        return false;
    };
    let mut curr_it = curr.iter();
    let Some(mut c) = curr_it.next() else {
        return p.1 != 0.0 || prev_it.any(|b| b.1 != 0.0);
    };
    loop {
        while c.0 < p.0 {
            match curr_it.next() {
                Some(next) => c = next,
                None => return p.1 != 0.0 || prev_it.any(|b| b.1 != 0.0),
            }
        }
        if c.0 > p.0 {
            if p.1 != 0.0 {
                return true;
            }
        } else if c.1 < p.1 {
            return true;
        }
        match prev_it.next() {
            Some(next) => p = next,
            None => return false,
        }
    }
}

/// Checks what the bucket merging relies on: as many buckets as the spans describe, and no
/// negative offset after the first span.
fn check_side(side: &str, spans: &[Span], buckets: usize) -> Result<(), ArithError> {
    if let Some(s) = spans.iter().skip(1).find(|s| s.offset < 0) {
        return Err(ArithError(format!(
            "{side} span with negative offset {}",
            s.offset
        )));
    }
    let want: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
    if want != buckets as u64 {
        return Err(ArithError(format!(
            "{side} spans describe {want} buckets, {buckets} are given"
        )));
    }
    Ok(())
}

/// Go's `addBuckets`: adds (or with `negative` subtracts) buckets `b` to the buckets `a`,
/// editing `a`'s spans in place; `b`'s leading buckets with an upper bound at most
/// `threshold` are ignored (exponential schemas). Both layouts must pass [`check_side`].
fn add_buckets(
    schema: i32,
    threshold: f64,
    negative: bool,
    spans_a: &mut Vec<Span>,
    buckets_a: &mut Vec<f64>,
    spans_b: &[Span],
    buckets_b: &[f64],
) {
    let (mut i_span, mut i_bucket, mut i_in_span) = (None::<usize>, 0usize, 0i32);
    let (mut index_a, mut index_b, mut k_b) = (0i32, 0i32, 0usize);
    let mut below_threshold = true;
    for span_b in spans_b {
        index_b = index_b.wrapping_add(span_b.offset);
        for _ in 0..span_b.length {
            'next: {
                if below_threshold
                    && is_exponential_schema(schema)
                    && exponential_bound(index_b, schema) <= threshold
                {
                    break 'next;
                }
                below_threshold = false;
                let Some(&b) = buckets_b.get(k_b) else {
                    return;
                };
                // Go multiplies by -1, which keeps a NaN's sign where negation flips it.
                #[allow(clippy::neg_multiply)]
                let bucket_b = if negative { b * -1.0 } else { b };
                let span = match i_span {
                    Some(s) => s,
                    None => {
                        if spans_a.first().is_none_or(|s| s.offset > index_b) {
                            buckets_a.insert(0, bucket_b);
                            if let Some(first) = spans_a.first_mut() {
                                if first.offset == index_b.wrapping_add(1) {
                                    first.length += 1;
                                    first.offset = first.offset.wrapping_sub(1);
                                    break 'next;
                                }
                            }
                            spans_a.insert(0, Span::new(index_b, 1));
                            if let Some(second) = spans_a.get_mut(1) {
                                second.offset = second.offset.wrapping_sub(index_b.wrapping_add(1));
                            }
                            break 'next;
                        }
                        if spans_a[0].offset == index_b {
                            buckets_a[0] += bucket_b;
                            break 'next;
                        }
                        (i_bucket, i_in_span, index_a) = (0, 0, spans_a[0].offset);
                        0
                    }
                };
                let mut span = span;
                let mut delta = index_b.wrapping_sub(index_a);
                loop {
                    let remaining = spans_a[span].length as i32 - i_in_span;
                    if delta < remaining {
                        i_bucket += delta as usize;
                        i_in_span += delta;
                        buckets_a[i_bucket] += bucket_b;
                        break;
                    }
                    delta -= remaining;
                    i_bucket += remaining as usize;
                    span += 1;
                    if span == spans_a.len() || delta < spans_a[span].offset {
                        buckets_a.insert(i_bucket, bucket_b);
                        if delta == 0 {
                            if let Some(next) = spans_a.get_mut(span) {
                                next.offset -= 1;
                            }
                            span -= 1;
                            i_in_span = spans_a[span].length as i32;
                            spans_a[span].length += 1;
                        } else if span < spans_a.len() && delta == spans_a[span].offset - 1 {
                            i_in_span = 0;
                            spans_a[span].offset -= 1;
                            spans_a[span].length += 1;
                        } else {
                            i_in_span = 0;
                            if let Some(next) = spans_a.get_mut(span) {
                                next.offset -= delta + 1;
                            }
                            spans_a.insert(span, Span::new(delta, 1));
                        }
                        break;
                    }
                    delta -= spans_a[span].offset;
                    i_in_span = 0;
                }
                i_span = Some(span);
            }
            index_a = index_b;
            index_b = index_b.wrapping_add(1);
            k_b += 1;
        }
    }
}

/// `(index, count)` of the buckets of one side at the histogram's own schema.
fn side_buckets<'a>(
    spans: &'a [Span],
    buckets: &'a [f64],
) -> impl Iterator<Item = (i32, f64)> + 'a {
    BucketIndices::new(spans)
        .zip(buckets.iter().copied())
        .map(|(i, c)| (i as i32, c))
}

impl FloatHistogram {
    /// True for the custom-bounds schema (`UsesCustomBuckets`).
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// A copy at the lower resolution `target` (`CopyToSchema`); like Go, a copy to a lower
    /// schema has an unknown counter-reset hint, a copy to the same schema keeps it.
    pub fn copy_to_schema(&self, target: i32) -> Result<FloatHistogram, ArithError> {
        if target == self.schema {
            return Ok(self.clone());
        }
        if self.uses_custom_buckets() || target == CUSTOM_BUCKETS_SCHEMA || target > self.schema {
            return Err(ArithError(format!(
                "cannot copy from schema {} to schema {target}",
                self.schema
            )));
        }
        let (positive_spans, positive_buckets) = reduce_buckets(
            &self.positive_spans,
            &self.positive_buckets,
            self.schema,
            target,
        )?;
        let (negative_spans, negative_buckets) = reduce_buckets(
            &self.negative_spans,
            &self.negative_buckets,
            self.schema,
            target,
        )?;
        Ok(FloatHistogram {
            counter_reset_hint: CounterResetHint::Unknown,
            schema: target,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count,
            count: self.count,
            sum: self.sum,
            positive_spans,
            negative_spans,
            positive_buckets,
            negative_buckets,
            custom_values: Vec::new(),
        })
    }

    /// Lowers the resolution to `target` in place (`ReduceResolution`; the hint is kept).
    pub fn reduce_resolution(&mut self, target: i32) -> Result<(), ArithError> {
        if self.uses_custom_buckets() || target == CUSTOM_BUCKETS_SCHEMA || target >= self.schema {
            return Err(ArithError(format!(
                "cannot reduce resolution from schema {} to {target}",
                self.schema
            )));
        }
        let positive = reduce_buckets(
            &self.positive_spans,
            &self.positive_buckets,
            self.schema,
            target,
        )?;
        let negative = reduce_buckets(
            &self.negative_spans,
            &self.negative_buckets,
            self.schema,
            target,
        )?;
        (self.positive_spans, self.positive_buckets) = positive;
        (self.negative_spans, self.negative_buckets) = negative;
        self.schema = target;
        Ok(())
    }

    /// Adds `other` (`Add`): zero buckets reconciled to the wider threshold, the finer of the
    /// two schemas reduced, buckets only `other` has inserted into the receiver's spans. The
    /// counter-reset hint is adjusted as Go does; returns whether the hints collided (one a
    /// reset, the other not).
    pub fn add(&mut self, other: &FloatHistogram) -> Result<bool, ArithError> {
        self.add_or_sub(other, false)
    }

    /// Subtracts `other` (`Sub`), otherwise like [`Self::add`].
    pub fn sub(&mut self, other: &FloatHistogram) -> Result<bool, ArithError> {
        self.add_or_sub(other, true)
    }

    fn add_or_sub(&mut self, other: &FloatHistogram, negative: bool) -> Result<bool, ArithError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(ArithError(
                "a mix of exponential and custom bucket schemas".into(),
            ));
        }
        if self.uses_custom_buckets() && !same_bounds(&self.custom_values, &other.custom_values) {
            return Err(ArithError(
                "custom bucket bounds differ; reconciling them is not supported".into(),
            ));
        }
        for h in [&*self, other] {
            check_side("positive", &h.positive_spans, h.positive_buckets.len())?;
            check_side("negative", &h.negative_spans, h.negative_buckets.len())?;
        }
        let collision = self.adjust_counter_reset(other);
        let apply = |mine: &mut f64, theirs: f64| {
            if negative {
                *mine -= theirs;
            } else {
                *mine += theirs;
            }
        };
        if !self.uses_custom_buckets() {
            let other_zero_count = self.reconcile_zero_buckets(other);
            apply(&mut self.zero_count, other_zero_count);
        }
        apply(&mut self.count, other.count);
        apply(&mut self.sum, other.sum);
        let (schema, threshold) = (self.schema, self.zero_threshold);
        if self.uses_custom_buckets() {
            add_buckets(
                schema,
                threshold,
                negative,
                &mut self.positive_spans,
                &mut self.positive_buckets,
                &other.positive_spans,
                &other.positive_buckets,
            );
            return Ok(collision);
        }
        let mut theirs = [
            (other.positive_spans.clone(), other.positive_buckets.clone()),
            (other.negative_spans.clone(), other.negative_buckets.clone()),
        ];
        if other.schema < self.schema {
            let positive = reduce_buckets(
                &self.positive_spans,
                &self.positive_buckets,
                self.schema,
                other.schema,
            )?;
            let negative = reduce_buckets(
                &self.negative_spans,
                &self.negative_buckets,
                self.schema,
                other.schema,
            )?;
            (self.positive_spans, self.positive_buckets) = positive;
            (self.negative_spans, self.negative_buckets) = negative;
            self.schema = other.schema;
        } else if other.schema > self.schema {
            for side in &mut theirs {
                *side = reduce_buckets(&side.0, &side.1, other.schema, self.schema)?;
            }
        }
        let [(pos_spans, pos), (neg_spans, neg)] = theirs;
        let schema = self.schema;
        add_buckets(
            schema,
            threshold,
            negative,
            &mut self.positive_spans,
            &mut self.positive_buckets,
            &pos_spans,
            &pos,
        );
        add_buckets(
            schema,
            threshold,
            negative,
            &mut self.negative_spans,
            &mut self.negative_buckets,
            &neg_spans,
            &neg,
        );
        Ok(collision)
    }

    /// The counter-reset hint of a sum or difference (`adjustCounterReset`); true on a
    /// collision of a reset with a non-reset, which leaves the hint unknown.
    fn adjust_counter_reset(&mut self, other: &FloatHistogram) -> bool {
        use CounterResetHint::{Gauge, Unknown};
        let (mine, theirs) = (self.counter_reset_hint, other.counter_reset_hint);
        if mine == theirs || mine == Gauge {
            return false;
        }
        if theirs == Gauge {
            self.counter_reset_hint = Gauge;
            return false;
        }
        if mine == Unknown {
            return false;
        }
        if theirs == Unknown {
            self.counter_reset_hint = Unknown;
            return false;
        }
        self.counter_reset_hint = Unknown;
        true
    }

    /// The zero count this histogram would have with the zero threshold `larger` (at least
    /// its own), and the threshold actually used: raised to the upper bound of a populated
    /// bucket that `larger` falls into (`zeroCountForLargerThreshold`).
    fn zero_count_for_larger_threshold(&self, mut larger: f64) -> (f64, f64) {
        if larger == self.zero_threshold {
            return (self.zero_count, larger);
        }
        'outer: loop {
            let mut count = self.zero_count;
            for (idx, c) in side_buckets(&self.positive_spans, &self.positive_buckets) {
                let lower = exponential_bound(idx.wrapping_sub(1), self.schema);
                if lower >= larger {
                    break;
                }
                count += c;
                let upper = exponential_bound(idx, self.schema);
                if upper > larger {
                    if c != 0.0 {
                        larger = upper;
                    }
                    break;
                }
            }
            for (idx, c) in side_buckets(&self.negative_spans, &self.negative_buckets) {
                let upper = -exponential_bound(idx.wrapping_sub(1), self.schema);
                if upper <= -larger {
                    break;
                }
                count += c;
                let lower = -exponential_bound(idx, self.schema);
                if lower < -larger {
                    if c != 0.0 {
                        larger = -lower;
                        continue 'outer;
                    }
                    break;
                }
            }
            return (count, larger);
        }
    }

    /// Widens the zero bucket of `self` or of (a virtual copy of) `other` until both have the
    /// same threshold (`reconcileZeroBuckets`); returns `other`'s zero count at that
    /// threshold. Stops at a NaN threshold, where Go would loop forever.
    fn reconcile_zero_buckets(&mut self, other: &FloatHistogram) -> f64 {
        let (mut other_count, mut other_threshold) = (other.zero_count, other.zero_threshold);
        while other_threshold != self.zero_threshold {
            if other_threshold.is_nan() || self.zero_threshold.is_nan() {
                break;
            }
            if self.zero_threshold > other_threshold {
                (other_count, other_threshold) =
                    other.zero_count_for_larger_threshold(self.zero_threshold);
            }
            if other_threshold > self.zero_threshold {
                (self.zero_count, self.zero_threshold) =
                    self.zero_count_for_larger_threshold(other_threshold);
                self.trim_buckets_in_zero_bucket();
            }
        }
        other_count
    }

    /// Empties the buckets inside the zero bucket (their counts are already in the zero
    /// count), then compacts (`trimBucketsInZeroBucket`).
    fn trim_buckets_in_zero_bucket(&mut self) {
        let (schema, threshold) = (self.schema, self.zero_threshold);
        let inside: Vec<bool> = side_buckets(&self.positive_spans, &self.positive_buckets)
            .map(|(idx, _)| exponential_bound(idx.wrapping_sub(1), schema) < threshold)
            .take_while(|&inside| inside)
            .collect();
        for b in self.positive_buckets.iter_mut().take(inside.len()) {
            *b = 0.0;
        }
        let inside: Vec<bool> = side_buckets(&self.negative_spans, &self.negative_buckets)
            .map(|(idx, _)| -exponential_bound(idx.wrapping_sub(1), schema) > -threshold)
            .take_while(|&inside| inside)
            .collect();
        for b in self.negative_buckets.iter_mut().take(inside.len()) {
            *b = 0.0;
        }
        self.compact();
    }

    /// Removes every empty bucket and merges adjacent spans (`Compact(0)`): the spans become
    /// the maximal runs of populated buckets.
    pub fn compact(&mut self) {
        (self.positive_spans, self.positive_buckets) =
            compact_side(&self.positive_spans, &self.positive_buckets);
        (self.negative_spans, self.negative_buckets) =
            compact_side(&self.negative_spans, &self.negative_buckets);
    }

    /// Whether `self`, following `previous`, shows a counter reset (`DetectReset`): by the
    /// hint when it says reset or not reset; otherwise a lower count, zero count or bucket,
    /// a populated bucket gone, a higher schema or a lower zero threshold. A lower schema is
    /// compared with `previous`'s buckets merged down.
    pub fn detect_reset(&self, previous: &FloatHistogram) -> Result<bool, ArithError> {
        match self.counter_reset_hint {
            CounterResetHint::CounterReset => return Ok(true),
            CounterResetHint::NotCounterReset => return Ok(false),
            _ => {}
        }
        if self.count < previous.count {
            return Ok(true);
        }
        if self.uses_custom_buckets() {
            if !previous.uses_custom_buckets() {
                return Ok(true);
            }
            if !same_bounds(&self.custom_values, &previous.custom_values) {
                return Err(ArithError(
                    "reset detection across different custom bucket bounds is not supported".into(),
                ));
            }
        }
        if self.schema > previous.schema || self.zero_threshold < previous.zero_threshold {
            return Ok(true);
        }
        let (previous_zero, threshold) =
            previous.zero_count_for_larger_threshold(self.zero_threshold);
        if threshold != self.zero_threshold || self.zero_count < previous_zero {
            return Ok(true);
        }
        let sides = [
            (
                (&self.positive_spans, &self.positive_buckets),
                (&previous.positive_spans, &previous.positive_buckets),
            ),
            (
                (&self.negative_spans, &self.negative_buckets),
                (&previous.negative_spans, &previous.negative_buckets),
            ),
        ];
        for ((cs, cb), (ps, pb)) in sides {
            let curr = merged_buckets(cs, cb, self.schema, self.schema, self.zero_threshold);
            let prev = merged_buckets(ps, pb, previous.schema, self.schema, self.zero_threshold);
            if buckets_reset(&curr, &prev) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Bit-for-bit equality of custom bounds (`CustomBucketBoundsMatch` compares values; equal
/// values with different bits do not occur in bounds, which are neither NaN nor -0).
fn same_bounds(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// One side of [`FloatHistogram::compact`].
fn compact_side(spans: &[Span], buckets: &[f64]) -> (Vec<Span>, Vec<f64>) {
    let mut out_spans: Vec<Span> = Vec::new();
    let mut out = Vec::new();
    let mut last = 0i32;
    for (idx, c) in side_buckets(spans, buckets) {
        if c == 0.0 {
            continue;
        }
        match out_spans.last_mut() {
            Some(s) if idx == last.wrapping_add(1) => s.length += 1,
            Some(_) => out_spans.push(Span::new(idx.wrapping_sub(last).wrapping_sub(1), 1)),
            None => out_spans.push(Span::new(idx, 1)),
        }
        last = idx;
        out.push(c);
    }
    (out_spans, out)
}
