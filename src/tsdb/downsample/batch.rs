//! The pieces both downsampling paths share: reading float samples as Thanos does, window
//! alignment, the float aggregator, the window loop (Thanos' `downsampleBatch`) and the
//! heuristic that decides how many chunks a series is cut into.
//!
//! Window alignment: a sample at `t` belongs to the window ending at `t - t % r + r - 1`
//! (block ranges are half-open, so the window `[k·r, (k+1)·r)` is stamped with its last
//! millisecond). The window loop stamps each finished window with that end, except that no
//! stamp goes past the batch's last sample: the last window of a batch is stamped with its
//! last sample's timestamp, so that the next batch can never overlap it.

use super::super::xor::{XorError, XorIter};

/// A float sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Timestamp, Unix ms.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// Bit pattern of Prometheus' staleness marker, a NaN.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The samples a chunk should hold on average at most; a series is cut into enough chunks to
/// stay below it (Thanos' `targetChunkCount`).
pub const TARGET_SAMPLES_PER_CHUNK: i64 = 140;

/// True for Prometheus' staleness marker (not for other NaNs).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Thanos' filter when it reads the samples of a chunk (`expandXorChunkIterator`): staleness
/// markers are dropped, and so is any sample earlier than the last one kept. The last kept
/// timestamp starts at 0, so negative timestamps are dropped too. Equal timestamps are kept:
/// a counter aggregate marks its last raw value that way.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExpandFilter {
    last_t: i64,
}

impl ExpandFilter {
    /// Whether `(t, v)` is kept.
    pub fn keep(&mut self, t: i64, v: f64) -> bool {
        if is_stale_nan(v) || t < self.last_t {
            return false;
        }
        self.last_t = t;
        true
    }
}

/// Appends the samples of XOR chunk `data` that [`ExpandFilter`] keeps to `out`.
pub fn expand_xor(data: &[u8], out: &mut Vec<Sample>) -> Result<(), XorError> {
    let mut filter = ExpandFilter::default();
    let mut it = XorIter::new(data);
    while let Some((t, v)) = it.next_sample()? {
        if filter.keep(t, v) {
            out.push(Sample { t, v });
        }
    }
    Ok(())
}

/// The stamp of the window of resolution `resolution_ms` that `t` falls into: its last
/// millisecond. Saturates instead of overflowing near `i64::MAX`.
pub fn current_window(t: i64, resolution_ms: i64) -> i64 {
    debug_assert!(resolution_ms > 0, "resolution is positive");
    (t - t.rem_euclid(resolution_ms)).saturating_add(resolution_ms - 1)
}

/// How many chunks a series spanning `[min_time, max_time]` with `count` input samples of
/// resolution `in_resolution_ms` is cut into at `out_resolution_ms`, so that each holds at
/// most [`TARGET_SAMPLES_PER_CHUNK`] windows on average (Thanos' `targetChunkCount`, with its
/// float arithmetic and integer divisions). At least 1.
pub fn target_chunk_count(
    min_time: i64,
    max_time: i64,
    in_resolution_ms: i64,
    out_resolution_ms: i64,
    count: usize,
) -> usize {
    debug_assert!(in_resolution_ms > 0, "input resolution is positive");
    debug_assert!(out_resolution_ms > 0, "output resolution is positive");
    // Go's int64 arithmetic wraps; so does this.
    let span = max_time.wrapping_sub(min_time);
    let max_samples = (span / out_resolution_ms) as f64;
    // How densely the input fills the span, capped at 1 (NaN when both are 0, as in Go).
    let fullness = count as f64 / (span as f64 / in_resolution_ms as f64);
    let fullness = if fullness > 1.0 { 1.0 } else { fullness };
    let expected = ((max_samples * fullness) as i64).saturating_add(1);
    // Go counts x up from 1 while expected / x > 140; the first x that stops is
    // expected / 141 + 1 (and 1 whenever expected <= 140).
    if expected <= TARGET_SAMPLES_PER_CHUNK {
        return 1;
    }
    usize::try_from(expected / (TARGET_SAMPLES_PER_CHUNK + 1) + 1).unwrap_or(usize::MAX)
}

/// What the window loop needs from an aggregator: the float one here, the native histogram
/// one in [`super::histogram`].
pub trait WindowAggregator {
    /// The samples it aggregates.
    type Sample;
    /// A sample's timestamp.
    fn time(sample: &Self::Sample) -> i64;
    /// Starts a new window (state that spans windows, such as the counter, is kept).
    fn reset(&mut self);
    /// Adds a sample to the current window.
    fn add(&mut self, sample: &Self::Sample);
    /// Samples added since the aggregator was created.
    fn processed(&self) -> usize;
}

/// Thanos' `floatAggregator`: per-window count, sum, min and max, and a counter that runs
/// across windows (first value, then each increase, a decrease counting as a reset whose new
/// value is added in full).
#[derive(Clone, Debug, Default)]
pub struct FloatAggregator {
    total: usize,
    /// Samples in the current window.
    pub count: usize,
    /// Sum of the current window's values.
    pub sum: f64,
    /// Smallest value of the current window (`f64::MAX` before any).
    pub min: f64,
    /// Largest value of the current window (`-f64::MAX` before any).
    pub max: f64,
    /// The counter since the first sample, resets applied.
    pub counter: f64,
    last: f64,
}

impl WindowAggregator for FloatAggregator {
    type Sample = Sample;

    fn time(sample: &Sample) -> i64 {
        sample.t
    }

    fn reset(&mut self) {
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::MAX;
        self.max = -f64::MAX;
    }

    fn add(&mut self, sample: &Sample) {
        let v = sample.v;
        if self.total == 0 {
            self.counter = v;
        } else if v < self.last {
            self.counter += v;
        } else {
            self.counter += v - self.last;
        }
        self.last = v;
        self.sum += v;
        self.count += 1;
        self.total += 1;
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
    }

    fn processed(&self) -> usize {
        self.total
    }
}

/// Thanos' `downsampleBatch`: walks `data` (in order, non-negative timestamps), starting a
/// window at every sample past the current window's stamp, and calls `emit(stamp, aggr)` for
/// each finished window (`emit` may change the aggregator's state, as Thanos' histogram
/// chunk builder does). A stamp is the window end, capped at the last sample's timestamp.
/// Returns the last stamp, `None` for empty `data`; stops at the first error of `emit`.
pub fn aggregate_windows<A: WindowAggregator, E>(
    data: &[A::Sample],
    resolution_ms: i64,
    aggr: &mut A,
    mut emit: impl FnMut(i64, &mut A) -> Result<(), E>,
) -> Result<Option<i64>, E> {
    let Some(last) = data.last() else {
        return Ok(None);
    };
    let last_t = A::time(last);
    let mut stamp: Option<i64> = None;
    for sample in data {
        let t = A::time(sample);
        // Go starts from the stamp -1; readers drop negative timestamps, so `None` is the same.
        debug_assert!(t >= 0, "the readers drop negative timestamps");
        if stamp.is_none_or(|s| t > s) {
            if let Some(s) = stamp {
                emit(s, aggr)?;
            }
            aggr.reset();
            stamp = Some(current_window(t, resolution_ms).min(last_t));
        }
        aggr.add(sample);
    }
    if aggr.processed() > 0 {
        if let Some(s) = stamp {
            emit(s, aggr)?;
        }
    }
    Ok(stamp)
}
