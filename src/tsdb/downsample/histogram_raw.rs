//! Raw native histogram samples to aggregate chunks (Thanos' `DownsampleRaw` for histograms,
//! `downsampleHistogramBatch`).
//!
//! Batches are cut as for floats ([`for_each_raw_batch`]); histograms whose sum is NaN are
//! dropped from a batch. Each batch becomes one chunk: per window, the counter, the sum and
//! the count of [`HistogramAggregator`] (all histograms converted to the batch's lowest
//! schema). When the batch starts with a gauge histogram, the counter and sum are written as
//! gauges. Unlike floats, the counter has no first and last raw values around its windows.

use std::borrow::Cow;

use super::aggr::Aggr;
use super::batch::aggregate_windows;
use super::builder::AggrOutput;
use super::histogram::{min_schema, HistogramAggregator, HistogramSample};
use super::histogram_builder::HistogramChunkBuilder;
use super::raw::{for_each_raw_batch, raw_target_chunks};
use super::DownsampleError;
use crate::tsdb::histogram::CounterResetHint;

/// Downsamples a native histogram series (samples in time order, as
/// [`super::histogram::expand_histogram_chunk`] reads them) to `resolution_ms`. Empty input
/// gives no chunks.
pub fn downsample_histogram_raw(
    samples: &[HistogramSample],
    resolution_ms: i64,
) -> Result<Vec<AggrOutput>, DownsampleError> {
    let Some(chunks) = raw_target_chunks(samples, |s| s.t, resolution_ms)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for_each_raw_batch(
        samples,
        |s| s.t,
        resolution_ms,
        chunks,
        |part| -> Result<(), DownsampleError> {
            let batch: Cow<'_, [HistogramSample]> = if part.iter().any(|s| s.h.sum.is_nan()) {
                Cow::Owned(part.iter().filter(|s| !s.h.sum.is_nan()).cloned().collect())
            } else {
                Cow::Borrowed(part)
            };
            if !batch.is_empty() {
                out.push(downsample_batch(&batch, resolution_ms)?);
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// One output chunk from a non-empty batch without NaN sums.
fn downsample_batch(
    batch: &[HistogramSample],
    resolution_ms: i64,
) -> Result<AggrOutput, DownsampleError> {
    let gauge = batch
        .first()
        .is_some_and(|s| s.h.counter_reset_hint == CounterResetHint::Gauge);
    let mut chunk = HistogramChunkBuilder::default();
    let mut aggr = HistogramAggregator::new(min_schema(batch));
    aggregate_windows(batch, resolution_ms, &mut aggr, |t, a| {
        let count = a.count as f64;
        let (counter, sum) = a.window()?;
        chunk.cover(t);
        if gauge {
            counter.counter_reset_hint = CounterResetHint::Gauge;
            sum.counter_reset_hint = CounterResetHint::Gauge;
        }
        chunk.append_histogram(Aggr::Counter, t, counter)?;
        chunk.append_histogram(Aggr::Sum, t, sum)?;
        chunk.append_count(t, count)
    })?;
    Ok(chunk.finish())
}
