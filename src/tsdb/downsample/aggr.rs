//! Thanos' aggregate chunk (`AggrChunk`, chunk encoding byte `0xFF` in a segment file): the
//! five aggregates of one stretch of a series, each as a chunk of its own.
//!
//! ```text
//! for each aggregate, in the order count, sum, min, max, counter:
//!     uvarint len          0 = the aggregate is absent (nothing else follows for it)
//!     u8 encoding          1 = XOR, 2 = histogram, 3 = float histogram
//!     data[len]            the aggregate's chunk, starting with its be16 sample count
//! ```
//!
//! Float series carry all five as XOR chunks. Native histogram series carry count (XOR), sum
//! and counter (float histogram), with min and max absent. The chunk's sample count, as Thanos
//! reports it (`AggrChunk.NumSamples`), is that of its count aggregate.
//!
//! [`AggrChunk::parse`] splits a chunk into its aggregates without decoding them; it never
//! panics, and its errors give the byte offset in the chunk data. Bytes after the fifth
//! aggregate are ignored, as Thanos ignores them.

use super::super::chunks::{ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM, ENCODING_XOR};
use super::super::encoding::read_uvarint;

/// One of the five aggregates, in their on-disk order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Aggr {
    /// Samples in the window.
    Count = 0,
    /// Sum of the window's values.
    Sum = 1,
    /// Smallest value of the window.
    Min = 2,
    /// Largest value of the window.
    Max = 3,
    /// The counter since the start of the chunk, resets applied, with the chunk's first and
    /// last raw values around the window values (see `counter`).
    Counter = 4,
}

/// Number of aggregates in an aggregate chunk.
pub const AGGR_COUNT: usize = 5;

impl Aggr {
    /// All aggregates in on-disk order.
    pub const ALL: [Aggr; AGGR_COUNT] =
        [Aggr::Count, Aggr::Sum, Aggr::Min, Aggr::Max, Aggr::Counter];

    /// Position in the chunk (0 = count).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as Thanos prints it.
    pub fn name(self) -> &'static str {
        match self {
            Aggr::Count => "count",
            Aggr::Sum => "sum",
            Aggr::Min => "min",
            Aggr::Max => "max",
            Aggr::Counter => "counter",
        }
    }
}

/// One aggregate's chunk inside an aggregate chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubChunk<'a> {
    /// Its encoding byte.
    pub encoding: u8,
    /// Its data, starting with the sample count.
    pub data: &'a [u8],
    /// Offset of `data` in the aggregate chunk's data, for error messages.
    pub offset: usize,
}

impl SubChunk<'_> {
    /// The sample count in its header; 0 when the data is too short to hold one.
    pub fn num_samples(&self) -> u64 {
        match self.data {
            [a, b, ..] => u64::from(u16::from_be_bytes([*a, *b])),
            _ => 0,
        }
    }

    /// True for the native histogram encodings.
    pub fn is_histogram(&self) -> bool {
        matches!(self.encoding, ENCODING_HISTOGRAM | ENCODING_FLOAT_HISTOGRAM)
    }
}

/// Why an aggregate chunk could not be split into its aggregates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("aggregate chunk: {what} (byte {offset} of the chunk data)")]
pub struct AggrError {
    /// Offset in the aggregate chunk's data where the problem is.
    pub offset: usize,
    /// What is wrong.
    pub what: String,
}

/// An aggregate chunk split into its (possibly absent) aggregates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggrChunk<'a> {
    parts: [Option<SubChunk<'a>>; AGGR_COUNT],
}

impl<'a> AggrChunk<'a> {
    /// Splits the data of an aggregate chunk (what follows the `0xFF` encoding byte).
    ///
    /// Each present aggregate must have an encoding Thanos knows (XOR, histogram, float
    /// histogram) and its length must lie inside `data`.
    pub fn parse(data: &'a [u8]) -> Result<Self, AggrError> {
        let mut parts = [None; AGGR_COUNT];
        let mut pos = 0usize;
        for aggr in Aggr::ALL {
            let err = |offset: usize, what: String| AggrError {
                offset,
                what: format!("{} aggregate: {what}", aggr.name()),
            };
            let rest = data.get(pos..).unwrap_or_default();
            let Some((len, len_bytes)) = read_uvarint(rest) else {
                return Err(err(pos, "invalid or truncated length".into()));
            };
            pos += len_bytes;
            if len == 0 {
                continue;
            }
            let available = data.len() - pos;
            // The encoding byte and `len` bytes of data must follow.
            if len >= available as u64 {
                return Err(err(
                    pos,
                    format!("{len} bytes of data announced, {available} bytes left (encoding byte included)"),
                ));
            }
            let encoding = data[pos];
            if !matches!(
                encoding,
                ENCODING_XOR | ENCODING_HISTOGRAM | ENCODING_FLOAT_HISTOGRAM
            ) {
                return Err(err(pos, format!("unknown chunk encoding {encoding}")));
            }
            let start = pos + 1;
            let end = start + len as usize;
            parts[aggr.index()] = Some(SubChunk {
                encoding,
                data: &data[start..end],
                offset: start,
            });
            pos = end;
        }
        Ok(AggrChunk { parts })
    }

    /// The chunk of aggregate `aggr`, `None` when absent.
    pub fn get(&self, aggr: Aggr) -> Option<SubChunk<'a>> {
        self.parts[aggr.index()]
    }

    /// The chunk's sample count as Thanos counts it: that of the count aggregate, 0 without
    /// one.
    pub fn num_samples(&self) -> u64 {
        self.get(Aggr::Count).map_or(0, |c| c.num_samples())
    }

    /// True for the chunk of a native histogram series: Thanos decides by the counter
    /// aggregate's encoding (`isHistogramAggrChunk`).
    pub fn is_histogram(&self) -> bool {
        self.get(Aggr::Counter).is_some_and(|c| c.is_histogram())
    }
}

/// Appends the aggregate chunk made of `parts` (indexed by [`Aggr::index`]: `(encoding,
/// data)` or `None` for an absent aggregate) to `out`.
pub fn encode_aggr_chunk(parts: [Option<(u8, &[u8])>; AGGR_COUNT], out: &mut Vec<u8>) {
    for part in parts {
        match part {
            None => out.push(0),
            Some((encoding, data)) => {
                debug_assert!(!data.is_empty(), "a present aggregate has a header");
                let mut len = data.len() as u64;
                while len >= 0x80 {
                    out.push((len as u8) | 0x80);
                    len >>= 7;
                }
                out.push(len as u8);
                out.push(encoding);
                out.extend_from_slice(data);
            }
        }
    }
}
