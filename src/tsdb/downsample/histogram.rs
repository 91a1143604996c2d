//! Native histogram samples in downsampling: reading them from chunks as Thanos does, and
//! Thanos' `histogramAggregator`, the [`WindowAggregator`] of histogram series.
//!
//! Per window the aggregator keeps the number of histograms and their sum (a gauge
//! histogram), and across windows a counter: the first histogram, then each later one's
//! increase over its predecessor, or the whole histogram when it shows a counter reset
//! ([`FloatHistogram::detect_reset`], skipped for gauge histograms). All histograms of a
//! batch are first brought to the batch's lowest schema ([`min_schema`]); a histogram that
//! had to be reduced loses its counter-reset hint, and its reset is detected against the
//! reduced predecessor from its original, finer buckets (which Prometheus counts as a reset).

use std::borrow::Cow;

use super::super::chunks::{ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM};
use super::super::histogram::arith::ArithError;
use super::super::histogram::{
    CounterResetHint, FloatHistogram, FloatHistogramIter, HistogramError, HistogramIter,
};
use super::batch::WindowAggregator;
use super::DownsampleError;

/// The highest exponential schema Prometheus works with; chunks may store up to 52, and
/// histograms above 8 are reduced to 8 when read.
pub const SCHEMA_MAX: i32 = 8;

/// A native histogram sample, with the input chunk it was read from (for errors).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSample {
    /// Timestamp, Unix ms.
    pub t: i64,
    /// The histogram, integer ones converted.
    pub h: FloatHistogram,
    /// Position of its chunk among the series' input chunks.
    pub chunk: usize,
}

/// The error for a histogram operation that failed on data of input chunk `chunk`.
pub fn arith_error(chunk: usize, e: ArithError) -> DownsampleError {
    DownsampleError::HistogramArith { chunk, what: e.0 }
}

/// Appends the samples of histogram chunk `data` (encoding 2 or 3, `chunk` its position in
/// the series, `offset` where `data` starts in that chunk's data, for errors) to `out`, as
/// Thanos' `expandHistogramChunkIterator` and `expandFloatHistogramChunkIterator` read them:
/// staleness markers dropped, so is a sample earlier than the last one kept (starting from
/// 0), integer histograms converted to floats, schemas above [`SCHEMA_MAX`] reduced.
pub fn expand_histogram_chunk(
    encoding: u8,
    data: &[u8],
    chunk: usize,
    offset: usize,
    out: &mut Vec<HistogramSample>,
) -> Result<(), DownsampleError> {
    let corrupt = |e: HistogramError| {
        let at = match &e {
            HistogramError::Corrupt { byte_offset, .. } => *byte_offset,
            _ => 0,
        };
        DownsampleError::Corrupt {
            chunk,
            offset: offset + at,
            what: e.to_string(),
        }
    };
    let mut last_t = 0;
    let mut keep = |t: i64, mut h: FloatHistogram| -> Result<(), DownsampleError> {
        if h.is_stale() || t < last_t {
            return Ok(());
        }
        last_t = t;
        if h.schema > SCHEMA_MAX && !h.uses_custom_buckets() {
            h.reduce_resolution(SCHEMA_MAX)
                .map_err(|e| arith_error(chunk, e))?;
        }
        out.push(HistogramSample { t, h, chunk });
        Ok(())
    };
    match encoding {
        ENCODING_HISTOGRAM => {
            for s in HistogramIter::new(data) {
                let (t, h) = s.map_err(corrupt)?;
                keep(t, h.to_float())?;
            }
        }
        ENCODING_FLOAT_HISTOGRAM => {
            for s in FloatHistogramIter::new(data) {
                let (t, h) = s.map_err(corrupt)?;
                keep(t, h)?;
            }
        }
        encoding => return Err(DownsampleError::Encoding { chunk, encoding }),
    }
    Ok(())
}

/// The lowest schema of `samples`, staleness markers aside (`minSchema`); `i32::MAX` when
/// there is none.
pub fn min_schema(samples: &[HistogramSample]) -> i32 {
    samples
        .iter()
        .filter(|s| !s.h.is_stale())
        .map(|s| s.h.schema)
        .min()
        .unwrap_or(i32::MAX)
}

/// Thanos' `histogramAggregator` for a batch whose lowest schema is `schema`.
#[derive(Clone, Debug)]
pub struct HistogramAggregator {
    schema: i32,
    total: usize,
    /// Histograms in the current window.
    pub count: usize,
    /// Sum of the current window's histograms, a gauge histogram; `None` before the first.
    pub sum: Option<FloatHistogram>,
    /// The counter since the first histogram, resets applied; `None` before the first.
    pub counter: Option<FloatHistogram>,
    previous: Option<FloatHistogram>,
    failed: Option<DownsampleError>,
}

impl HistogramAggregator {
    /// An aggregator converting every histogram to `schema` (the batch's lowest).
    pub fn new(schema: i32) -> Self {
        HistogramAggregator {
            schema,
            total: 0,
            count: 0,
            sum: None,
            counter: None,
            previous: None,
            failed: None,
        }
    }

    /// Fails with the first error met while adding (after which nothing more was added).
    pub fn check(&self) -> Result<(), DownsampleError> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    /// The current window's counter and sum; fails after an error, or before any sample.
    pub fn window(
        &mut self,
    ) -> Result<(&mut FloatHistogram, &mut FloatHistogram), DownsampleError> {
        self.check()?;
        match (self.counter.as_mut(), self.sum.as_mut()) {
            (Some(counter), Some(sum)) => Ok((counter, sum)),
            _ => Err(DownsampleError::HistogramArith {
                chunk: 0,
                what: "a window without histograms".into(),
            }),
        }
    }

    fn try_add(&mut self, sample: &HistogramSample) -> Result<(), ArithError> {
        let original = &sample.h;
        if original.schema < self.schema {
            return Err(ArithError(format!(
                "schema {} below the batch's lowest schema {}",
                original.schema, self.schema
            )));
        }
        let h = if original.schema > self.schema {
            Cow::Owned(original.copy_to_schema(self.schema)?)
        } else {
            Cow::Borrowed(original)
        };
        match (&mut self.counter, &self.previous) {
            (Some(counter), Some(previous)) => {
                if h.counter_reset_hint != CounterResetHint::Gauge
                    && original.detect_reset(previous)?
                {
                    counter.add(&h)?;
                } else {
                    let mut delta = h.as_ref().clone();
                    delta.sub(previous)?;
                    counter.add(&delta)?;
                }
            }
            _ => self.counter = Some(h.as_ref().clone()),
        }
        let sum = match &mut self.sum {
            Some(sum) => {
                sum.add(&h)?;
                sum
            }
            None => self.sum.insert(h.as_ref().clone()),
        };
        // A gauge, so that a smaller next window does not look like a reset to the appender.
        sum.counter_reset_hint = CounterResetHint::Gauge;
        self.previous = Some(h.into_owned());
        self.count += 1;
        self.total += 1;
        Ok(())
    }
}

impl WindowAggregator for HistogramAggregator {
    type Sample = HistogramSample;

    fn time(sample: &HistogramSample) -> i64 {
        sample.t
    }

    fn reset(&mut self) {
        self.count = 0;
        self.sum = None;
    }

    fn add(&mut self, sample: &HistogramSample) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.try_add(sample) {
            self.failed = Some(arith_error(sample.chunk, e));
        }
    }

    fn processed(&self) -> usize {
        self.total
    }
}
