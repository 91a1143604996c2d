//! Native histogram aggregate chunks to coarser ones (Thanos' `downsampleAggr` for
//! histograms, `downsampleHistogramAggrBatch`).
//!
//! Input chunks are cut into batches of whole chunks as for floats. Within a batch:
//! - the counter aggregate's histograms, read chunk after chunk, go through the
//!   [`HistogramAggregator`] and its running counter is written per window (resets between
//!   chunks are found by [`crate::tsdb::histogram::FloatHistogram::detect_reset`], since the
//!   first histogram of a chunk has an unknown hint);
//! - the sum aggregate's histograms go through another aggregator, whose window sum is
//!   written;
//! - the count aggregate is summed per window, as for floats.
//!
//! The chunk's range spans the windows of all three. Thanos fails (by a panic, or by writing
//! no chunk) on a batch without counter or sum histograms; so does this, with an error. A
//! batch without count samples keeps an empty count chunk; unlike Thanos, its range does not
//! start at 0 for it (as for float aggregates; `docs/operations.md` lists the differences).

use super::aggr::Aggr;
use super::aggregate::{aggr_target_chunks, expand_sub, AggrInput};
use super::batch::{aggregate_windows, FloatAggregator, Sample};
use super::builder::AggrOutput;
use super::histogram::{expand_histogram_chunk, min_schema, HistogramAggregator, HistogramSample};
use super::histogram_builder::HistogramChunkBuilder;
use super::DownsampleError;

/// Downsamples consecutive histogram aggregate chunks of one series, of resolution
/// `in_resolution_ms` (positive), to the coarser `out_resolution_ms`.
pub fn downsample_histogram_aggr(
    inputs: &[AggrInput<'_>],
    in_resolution_ms: i64,
    out_resolution_ms: i64,
) -> Result<Vec<AggrOutput>, DownsampleError> {
    let Some(chunks) = aggr_target_chunks(inputs, in_resolution_ms, out_resolution_ms)? else {
        return Ok(Vec::new());
    };
    // As for floats: `inputs / chunks` chunks per batch, at least 1.
    let batch_size = (inputs.len() / chunks.max(1)).max(1);
    inputs
        .chunks(batch_size)
        .map(|part| downsample_batch(part, out_resolution_ms))
        .collect()
}

fn downsample_batch(
    part: &[AggrInput<'_>],
    resolution_ms: i64,
) -> Result<AggrOutput, DownsampleError> {
    let mut chunk = HistogramChunkBuilder::default();
    for aggr in [Aggr::Counter, Aggr::Sum] {
        let samples = expand_histograms(part, aggr)?;
        if samples.is_empty() {
            return Err(DownsampleError::Corrupt {
                chunk: part.first().map_or(0, |p| p.source),
                offset: 0,
                what: format!(
                    "histogram aggregate chunks {} to {} hold no {} histogram",
                    part.first().map_or(0, |p| p.source),
                    part.last().map_or(0, |p| p.source),
                    aggr.name()
                ),
            });
        }
        let mut aggregator = HistogramAggregator::new(min_schema(&samples));
        aggregate_windows(&samples, resolution_ms, &mut aggregator, |t, a| {
            let (counter, sum) = a.window()?;
            chunk.cover(t);
            let h = if aggr == Aggr::Sum { sum } else { counter };
            chunk.append_histogram(aggr, t, h)
        })?;
    }
    let mut counts: Vec<Sample> = Vec::new();
    for input in part {
        if let Some(sub) = input.chunk.get(Aggr::Count) {
            expand_sub(input, Aggr::Count, sub, &mut counts)?;
        }
    }
    aggregate_windows(
        &counts,
        resolution_ms,
        &mut FloatAggregator::default(),
        |t, a| {
            chunk.cover(t);
            chunk.append_count(t, a.sum)
        },
    )?;
    Ok(chunk.finish())
}

/// The histograms of aggregate `aggr` of every chunk of `part`, read chunk by chunk.
fn expand_histograms(
    part: &[AggrInput<'_>],
    aggr: Aggr,
) -> Result<Vec<HistogramSample>, DownsampleError> {
    let mut out = Vec::new();
    for input in part {
        let Some(sub) = input.chunk.get(aggr) else {
            continue;
        };
        if !sub.is_histogram() {
            return Err(DownsampleError::Corrupt {
                chunk: input.source,
                offset: sub.offset,
                what: format!(
                    "the {} aggregate of a histogram aggregate chunk has encoding {}",
                    aggr.name(),
                    sub.encoding
                ),
            });
        }
        expand_histogram_chunk(sub.encoding, sub.data, input.source, sub.offset, &mut out)?;
    }
    Ok(out)
}
