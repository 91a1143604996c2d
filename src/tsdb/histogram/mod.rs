//! Native histogram chunks: encoding 2 (integer histograms) and 3 (float histograms), read and
//! written byte for byte as Prometheus does, so that compaction can merge overlapping
//! histogram chunks instead of refusing them.
//!
//! # Layout
//!
//! A chunk starts with `be16 num_samples | u8 flags`; the top two bits of `flags` are the
//! [`CounterResetHeader`] (`10` reset, `01` not reset, `00` unknown, `11` gauge). Then, as an
//! MSB-first bit stream (see [`super::bstream`]): the [`layout`] (zero threshold, schema,
//! positive and negative spans, custom bounds for schema -53), and the samples. Integer
//! histograms store deltas and delta-of-deltas as [`varbit`] integers (module `int_chunk`);
//! float histograms XOR every float against its previous value ([`xorval`], module
//! `float_chunk`). The start-timestamp variants (encodings 5 and 6, Prometheus 3.14) are
//! refused.
//!
//! # Pieces
//!
//! - [`model`]: [`Histogram`], [`FloatHistogram`], [`Span`], [`CounterResetHint`].
//! - [`decode`]: [`HistogramIter`], [`FloatHistogramIter`] and [`decode_chunk`]; errors name
//!   the byte offset ([`HistogramError`]).
//! - [`encode`]: [`SeriesEncoder`] takes a series' samples in time order and returns finished
//!   chunks ([`FinishedChunk`]), cutting them as Prometheus' `seriesToChunkEncoder` does and
//!   appending as current Prometheus' histogram appenders do: a new chunk on a counter reset
//!   or a schema, zero-threshold or custom-bounds change, recoding when new buckets appear,
//!   the counter-reset header set accordingly, gauge histograms in gauge chunks. (Prometheus
//!   2.42's compactor appends without these checks; its chunk format is the same.)
//! - [`spans`]: comparing and widening bucket layouts, which recoding needs.
//! - [`arith`]: adding, subtracting, re-scaling and comparing float histograms as
//!   Prometheus does (downsampling needs them), with the bucket bounds of [`bounds`].
//! - [`FloatChunk`]: the float histogram appender itself, for writers that build one chunk
//!   at a time.

pub mod arith;
pub mod bounds;
pub mod decode;
pub mod encode;
pub mod error;
mod float_chunk;
mod int_chunk;
pub mod layout;
pub mod model;
pub mod spans;
pub mod varbit;
pub mod xorval;

#[cfg(test)]
mod tests;

pub use decode::{chunk_header, decode_chunk, FloatHistogramIter, HistogramIter};
pub use encode::{CutHeaders, SeriesEncoder, SAMPLES_PER_CHUNK};
pub use error::HistogramError;
pub use float_chunk::FloatChunk;
pub use int_chunk::Appended;
pub use model::{CounterResetHint, FloatHistogram, Histogram, SampleValue, Span};

/// Integer histogram chunks with start timestamps (Prometheus 3.14; not supported).
pub const ENCODING_HISTOGRAM_ST: u8 = 5;

/// Float histogram chunks with start timestamps (Prometheus 3.14; not supported).
pub const ENCODING_FLOAT_HISTOGRAM_ST: u8 = 6;

/// Bytes before the bit stream: the sample count and the flags byte.
pub const HEADER_BYTES: usize = 3;

/// The counter-reset header: the top two bits of a histogram chunk's flags byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CounterResetHeader {
    /// `00`: readers must detect resets themselves.
    #[default]
    Unknown,
    /// `01`: the chunk was not cut because of a counter reset.
    NotCounterReset,
    /// `10`: the chunk was cut because the counters were reset.
    CounterReset,
    /// `11`: the chunk holds gauge histograms.
    Gauge,
}

impl CounterResetHeader {
    /// The header in a chunk's flags byte.
    pub fn from_flags(flags: u8) -> Self {
        match flags >> 6 {
            0b00 => CounterResetHeader::Unknown,
            0b01 => CounterResetHeader::NotCounterReset,
            0b10 => CounterResetHeader::CounterReset,
            _ => CounterResetHeader::Gauge,
        }
    }

    /// The flags byte carrying this header (the other bits are zero when written).
    pub fn flags(self) -> u8 {
        let bits = match self {
            CounterResetHeader::Unknown => 0b00,
            CounterResetHeader::NotCounterReset => 0b01,
            CounterResetHeader::CounterReset => 0b10,
            CounterResetHeader::Gauge => 0b11,
        };
        bits << 6
    }
}

/// A chunk [`SeriesEncoder`] completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedChunk {
    /// First sample timestamp.
    pub min_time: i64,
    /// Last sample timestamp (inclusive).
    pub max_time: i64,
    /// Encoding byte (1 XOR, 2 histogram, 3 float histogram).
    pub encoding: u8,
    /// Chunk data, starting with the sample count.
    pub data: Vec<u8>,
}
