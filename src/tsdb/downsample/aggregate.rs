//! Float aggregate chunks to coarser ones (Thanos' `downsampleAggr` for floats).
//!
//! Aggregates are only ever re-aggregated along input chunk boundaries: the counter
//! aggregate's first and last raw values are those of its input chunks and must survive every
//! level. So the inputs are cut into batches of whole chunks: [`target_chunk_count`] from the
//! inputs' time range and their count samples, then `inputs / chunks` chunks per batch.
//!
//! Within a batch, each of count, sum, min and max is read from every input chunk that has it
//! (staleness markers and samples going back in time dropped, per chunk) and aggregated per
//! output window: count and sum by summing, min by the minimum, max by the maximum. The counter
//! is read across the batch's chunks with resets applied ([`super::counter`]), aggregated per
//! window by taking the running counter, and written between the batch's first raw value and
//! its true last raw value, as on raw data.

use super::super::chunks::ENCODING_XOR;
use super::super::xor::{XorError, XorIter};
use super::aggr::{Aggr, AggrChunk, SubChunk};
use super::batch::{aggregate_windows, target_chunk_count, ExpandFilter, FloatAggregator, Sample};
use super::builder::{AggrChunkBuilder, AggrOutput};
use super::counter::CounterResets;
use super::DownsampleError;

/// An input aggregate chunk.
#[derive(Clone, Copy, Debug)]
pub struct AggrInput<'a> {
    /// Its minimum time, as the index states it.
    pub min_time: i64,
    /// Its maximum time, as the index states it.
    pub max_time: i64,
    /// The chunk.
    pub chunk: AggrChunk<'a>,
    /// The position, in the series' input chunks, of the chunk it was read from (for errors).
    pub source: usize,
}

/// Downsamples consecutive float aggregate chunks of one series, of resolution
/// `in_resolution_ms` (positive), to the coarser `out_resolution_ms`. `buf` is scratch
/// space.
pub fn downsample_aggr(
    inputs: &[AggrInput<'_>],
    in_resolution_ms: i64,
    out_resolution_ms: i64,
    buf: &mut Vec<Sample>,
) -> Result<Vec<AggrOutput>, DownsampleError> {
    match aggr_target_chunks(inputs, in_resolution_ms, out_resolution_ms)? {
        Some(chunks) => downsample_aggr_in(inputs, out_resolution_ms, chunks, buf),
        None => Ok(Vec::new()),
    }
}

/// How many output chunks downsampling `inputs` (aggregate chunks of resolution
/// `in_resolution_ms`, which must be positive) to `out_resolution_ms` aims at, as Thanos'
/// `downsampleAggr` sizes them; `None` for no input.
pub(super) fn aggr_target_chunks(
    inputs: &[AggrInput<'_>],
    in_resolution_ms: i64,
    out_resolution_ms: i64,
) -> Result<Option<usize>, DownsampleError> {
    super::check_resolutions(in_resolution_ms, out_resolution_ms)?;
    if in_resolution_ms == 0 {
        return Err(DownsampleError::Resolution {
            from: in_resolution_ms,
            to: out_resolution_ms,
        });
    }
    let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
        return Ok(None);
    };
    let samples: u64 = inputs.iter().map(|c| c.chunk.num_samples()).sum();
    Ok(Some(target_chunk_count(
        first.min_time,
        last.max_time,
        in_resolution_ms,
        out_resolution_ms,
        usize::try_from(samples).unwrap_or(usize::MAX),
    )))
}

/// [`downsample_aggr`] aiming at `chunks` output chunks (Thanos' `downsampleAggrLoop`).
pub fn downsample_aggr_in(
    inputs: &[AggrInput<'_>],
    out_resolution_ms: i64,
    chunks: usize,
    buf: &mut Vec<Sample>,
) -> Result<Vec<AggrOutput>, DownsampleError> {
    super::check_resolutions(0, out_resolution_ms)?;
    // Go takes `inputs / chunks` chunks per batch and would loop forever at 0; at least 1.
    let batch_size = (inputs.len() / chunks.max(1)).max(1);
    let mut out = Vec::with_capacity(inputs.len().div_ceil(batch_size));
    for part in inputs.chunks(batch_size) {
        out.extend(downsample_batch(part, out_resolution_ms, buf)?);
    }
    Ok(out)
}

/// Which window value of the input windows' values each of count, sum, min and max takes.
type Reaggregate = (Aggr, fn(&FloatAggregator) -> f64);

const REAGGREGATE: [Reaggregate; 4] = [
    // A count window is the sum of the input windows' counts.
    (Aggr::Count, |a| a.sum),
    (Aggr::Sum, |a| a.sum),
    (Aggr::Min, |a| a.min),
    (Aggr::Max, |a| a.max),
];

/// One output chunk from a batch of input chunks; `None` when the batch holds no sample of
/// any aggregate.
fn downsample_batch(
    part: &[AggrInput<'_>],
    resolution_ms: i64,
    buf: &mut Vec<Sample>,
) -> Result<Option<AggrOutput>, DownsampleError> {
    let mut chunk = AggrChunkBuilder::none_present();
    for (aggr, value) in REAGGREGATE {
        buf.clear();
        for input in part {
            if let Some(sub) = input.chunk.get(aggr) {
                expand_sub(input, aggr, sub, buf)?;
            }
        }
        if buf.is_empty() {
            continue;
        }
        chunk.start(aggr);
        aggregate_windows(
            buf,
            resolution_ms,
            &mut FloatAggregator::default(),
            |t, a| chunk.append_window(aggr, t, value(a)),
        )?;
    }
    downsample_counter(part, resolution_ms, buf, &mut chunk)?;
    Ok(chunk.finish())
}

/// The counter aggregate of a batch, written into `chunk` unless the batch has no counter
/// sample.
fn downsample_counter(
    part: &[AggrInput<'_>],
    resolution_ms: i64,
    buf: &mut Vec<Sample>,
    chunk: &mut AggrChunkBuilder,
) -> Result<(), DownsampleError> {
    buf.clear();
    let mut resets = CounterResets::default();
    let mut filter = ExpandFilter::default();
    for input in part {
        let Some(sub) = input.chunk.get(Aggr::Counter) else {
            continue;
        };
        let mut it = xor_sub(input, Aggr::Counter, sub)?;
        while let Some((t, v)) = it.next_sample().map_err(|e| xor_corrupt(input, sub, &e))? {
            if let Some(s) = resets.push(t, v) {
                if filter.keep(s.t, s.v) {
                    buf.push(s);
                }
            }
        }
    }
    let Some(first) = buf.first().copied() else {
        return Ok(());
    };
    chunk.start(Aggr::Counter);
    // The first raw value, kept for the next level's reset detection.
    chunk.append(Aggr::Counter, first.t, first.v)?;
    let last_stamp = aggregate_windows(
        buf,
        resolution_ms,
        &mut FloatAggregator::default(),
        |t, a| chunk.append_window(Aggr::Counter, t, a.counter),
    )?;
    if let Some(stamp) = last_stamp {
        // The true last raw value, at the last window's stamp.
        chunk.append(Aggr::Counter, stamp, resets.last_value())?;
    }
    Ok(())
}

/// Appends the samples of one aggregate of `input` to `buf`, read as Thanos reads a chunk.
pub(super) fn expand_sub(
    input: &AggrInput<'_>,
    aggr: Aggr,
    sub: SubChunk<'_>,
    buf: &mut Vec<Sample>,
) -> Result<(), DownsampleError> {
    let mut it = xor_sub(input, aggr, sub)?;
    let mut filter = ExpandFilter::default();
    while let Some((t, v)) = it.next_sample().map_err(|e| xor_corrupt(input, sub, &e))? {
        if filter.keep(t, v) {
            buf.push(Sample { t, v });
        }
    }
    Ok(())
}

/// An iterator over a float aggregate, which must be XOR encoded.
fn xor_sub<'a>(
    input: &AggrInput<'_>,
    aggr: Aggr,
    sub: SubChunk<'a>,
) -> Result<XorIter<'a>, DownsampleError> {
    if sub.encoding != ENCODING_XOR {
        return Err(DownsampleError::Corrupt {
            chunk: input.source,
            offset: sub.offset,
            what: format!(
                "the {} aggregate of a float aggregate chunk has encoding {}, not XOR",
                aggr.name(),
                sub.encoding
            ),
        });
    }
    Ok(XorIter::new(sub.data))
}

fn xor_corrupt(input: &AggrInput<'_>, sub: SubChunk<'_>, e: &XorError) -> DownsampleError {
    DownsampleError::Corrupt {
        chunk: input.source,
        offset: sub.offset + e.byte_offset,
        what: e.to_string(),
    }
}
