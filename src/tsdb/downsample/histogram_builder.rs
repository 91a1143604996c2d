//! Building one native histogram aggregate chunk, as Thanos' `aggrChunkBuilder` does for
//! histograms (`newHistogramAggrChunkBuilder`, `appendFloatHistogram`): count as an XOR
//! chunk, sum and counter as float histogram chunks, min and max absent.
//!
//! Histograms go through Prometheus' float histogram appender ([`FloatChunk`]) exactly as
//! Thanos calls it, which has three visible effects:
//! - the first histogram's chunk header is chosen with the appender itself as the
//!   "previous" appender, so a counter chunk gets the "not reset" header (a gauge one the
//!   gauge header);
//! - the appended histogram is widened in place to the chunk's layout, and the caller keeps
//!   aggregating into it;
//! - when the appender cuts a new chunk (a zero-threshold change, a gauge/counter switch),
//!   Thanos keeps only the new chunk: the windows before it are lost from that aggregate.

use super::super::chunks::{ENCODING_FLOAT_HISTOGRAM, ENCODING_XOR};
use super::super::histogram::{Appended, FloatChunk, FloatHistogram};
use super::super::xor::{XorEncoder, SAMPLES_MAX};
use super::aggr::{encode_aggr_chunk, Aggr};
use super::builder::AggrOutput;
use super::DownsampleError;

/// A histogram aggregate chunk under construction.
#[derive(Debug)]
pub struct HistogramChunkBuilder {
    count: XorEncoder,
    sum: FloatChunk,
    counter: FloatChunk,
    min_time: i64,
    max_time: i64,
}

impl Default for HistogramChunkBuilder {
    fn default() -> Self {
        HistogramChunkBuilder {
            count: XorEncoder::new(),
            sum: FloatChunk::new(),
            counter: FloatChunk::new(),
            min_time: i64::MAX,
            max_time: i64::MIN,
        }
    }
}

impl HistogramChunkBuilder {
    /// Widens the chunk's time range to `t`.
    pub fn cover(&mut self, t: i64) {
        self.min_time = self.min_time.min(t);
        self.max_time = self.max_time.max(t);
    }

    /// Appends a count window value.
    pub fn append_count(&mut self, t: i64, v: f64) -> Result<(), DownsampleError> {
        if self.count.num_samples() >= SAMPLES_MAX {
            return Err(too_large(Aggr::Count));
        }
        self.count.append(t, v);
        Ok(())
    }

    /// Appends histogram `h` to the sum or the counter aggregate (`aggr`), widening `h` to
    /// the chunk's layout as Go does.
    pub fn append_histogram(
        &mut self,
        aggr: Aggr,
        t: i64,
        h: &mut FloatHistogram,
    ) -> Result<(), DownsampleError> {
        let chunk = if aggr == Aggr::Sum {
            &mut self.sum
        } else {
            &mut self.counter
        };
        if usize::from(chunk.num_samples()) >= SAMPLES_MAX {
            return Err(too_large(aggr));
        }
        if chunk.num_samples() == 0 {
            // Go passes the appender as its own predecessor, already holding `h`.
            let mut itself = FloatChunk::new();
            itself.append(None, t, h);
            chunk.append_widening(Some(&itself), t, h);
        } else if let Appended::NewChunk(next) = chunk.append_widening(None, t, h) {
            *chunk = next;
        }
        Ok(())
    }

    /// Encodes the chunk; its range is what [`Self::cover`] saw (`i64::MAX..i64::MIN` when
    /// nothing, which callers rule out).
    pub fn finish(self) -> AggrOutput {
        let mut data = Vec::new();
        encode_aggr_chunk(
            [
                Some((ENCODING_XOR, self.count.bytes())),
                Some((ENCODING_FLOAT_HISTOGRAM, self.sum.bytes())),
                None,
                None,
                Some((ENCODING_FLOAT_HISTOGRAM, self.counter.bytes())),
            ],
            &mut data,
        );
        AggrOutput {
            min_time: self.min_time,
            max_time: self.max_time,
            num_samples: self.count.num_samples() as u64,
            data,
        }
    }
}

fn too_large(aggr: Aggr) -> DownsampleError {
    DownsampleError::TooLarge(format!(
        "the {} aggregate of one output chunk would hold more than {SAMPLES_MAX} samples",
        aggr.name()
    ))
}
