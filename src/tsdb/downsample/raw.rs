//! Raw float samples to aggregate chunks (Thanos' `DownsampleRaw` for floats; the batches
//! are shared with native histograms, see [`for_each_raw_batch`]).
//!
//! The series' samples (read with [`super::batch::expand_xor`], chunk by chunk) are cut into
//! batches, one output chunk each:
//! 1. the number of chunks comes from [`target_chunk_count`], assuming one raw sample per
//!    minute, and a batch takes `samples / chunks + 1` samples;
//! 2. a batch is extended to the end of the window its last sample falls into, so no window
//!    is split between two chunks;
//! 3. NaN values (staleness markers were already dropped) are removed from the batch after its
//!    bounds were chosen; a batch left empty produces nothing.
//!
//! Each batch becomes one chunk with all five aggregates. Its counter aggregate starts with
//! the batch's first raw sample and ends with the batch's last raw value repeated at the last
//! window's stamp (see [`super::counter`]).

use super::aggr::Aggr;
use super::batch::{
    aggregate_windows, current_window, target_chunk_count, FloatAggregator, Sample,
};
use super::builder::{AggrChunkBuilder, AggrOutput};
use super::DownsampleError;
use crate::units::MINUTE_MS;

/// The raw resolution Thanos assumes when it sizes chunks: one sample per minute.
pub const ASSUMED_RAW_RESOLUTION_MS: i64 = MINUTE_MS;

/// Downsamples a float series (samples in time order, as read by
/// [`super::batch::expand_xor`]) to `resolution_ms`. Empty input gives no chunks.
pub fn downsample_raw(
    samples: &[Sample],
    resolution_ms: i64,
) -> Result<Vec<AggrOutput>, DownsampleError> {
    match raw_target_chunks(samples, |s| s.t, resolution_ms)? {
        Some(chunks) => downsample_raw_in(samples, resolution_ms, chunks),
        None => Ok(Vec::new()),
    }
}

/// How many output chunks downsampling raw `samples` (in time order, `t` their timestamp) to
/// `resolution_ms` aims at, as Thanos' `downsampleRaw` sizes them; `None` for no samples.
pub(super) fn raw_target_chunks<S>(
    samples: &[S],
    t: impl Fn(&S) -> i64,
    resolution_ms: i64,
) -> Result<Option<usize>, DownsampleError> {
    super::check_resolutions(0, resolution_ms)?;
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Ok(None);
    };
    Ok(Some(target_chunk_count(
        t(first),
        t(last),
        ASSUMED_RAW_RESOLUTION_MS,
        resolution_ms,
        samples.len(),
    )))
}

/// [`downsample_raw`] aiming at `chunks` output chunks (Thanos' `downsampleRawLoop`).
pub fn downsample_raw_in(
    samples: &[Sample],
    resolution_ms: i64,
    chunks: usize,
) -> Result<Vec<AggrOutput>, DownsampleError> {
    super::check_resolutions(0, resolution_ms)?;
    let mut out = Vec::new();
    let mut batch = Vec::new();
    for_each_raw_batch(
        samples,
        |s| s.t,
        resolution_ms,
        chunks,
        |part| -> Result<(), DownsampleError> {
            batch.clear();
            batch.extend(part.iter().filter(|s| !s.v.is_nan()));
            if !batch.is_empty() {
                out.extend(downsample_batch(&batch, resolution_ms)?);
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// Cuts `samples` (in time order) into the batches of Thanos' `downsampleRawLoop` aiming at
/// `chunks` chunks (steps 1 and 2 above) and calls `each` on every batch, NaNs still in.
pub fn for_each_raw_batch<S, E>(
    samples: &[S],
    time: impl Fn(&S) -> i64,
    resolution_ms: i64,
    chunks: usize,
    mut each: impl FnMut(&[S]) -> Result<(), E>,
) -> Result<(), E> {
    let batch_size = samples.len() / chunks.max(1) + 1;
    let mut rest = samples;
    while !rest.is_empty() {
        let mut end = batch_size.min(rest.len());
        let window_end = current_window(time(&rest[end - 1]), resolution_ms);
        while end < rest.len() && time(&rest[end]) <= window_end {
            end += 1;
        }
        each(&rest[..end])?;
        rest = &rest[end..];
    }
    Ok(())
}

/// One output chunk from a non-empty batch of raw samples without NaNs.
fn downsample_batch(
    batch: &[Sample],
    resolution_ms: i64,
) -> Result<Option<AggrOutput>, DownsampleError> {
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(None);
    };
    let mut chunk = AggrChunkBuilder::all_present();
    chunk.append(Aggr::Counter, first.t, first.v)?;
    let last_stamp = aggregate_windows(
        batch,
        resolution_ms,
        &mut FloatAggregator::default(),
        |t, a| {
            chunk.append_window(Aggr::Count, t, a.count as f64)?;
            chunk.append_window(Aggr::Sum, t, a.sum)?;
            chunk.append_window(Aggr::Min, t, a.min)?;
            chunk.append_window(Aggr::Max, t, a.max)?;
            chunk.append_window(Aggr::Counter, t, a.counter)
        },
    )?;
    if let Some(stamp) = last_stamp {
        // The true last raw value, at the last window's stamp.
        chunk.append(Aggr::Counter, stamp, last.v)?;
    }
    Ok(chunk.finish())
}
