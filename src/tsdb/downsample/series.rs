//! One series of the input block to its downsampled chunks, the way Thanos' `Downsample`
//! treats each series:
//!
//! - chunks whose index time ranges overlap are refused;
//! - a raw block (resolution 0): every chunk is read (staleness markers and samples going
//!   back in time dropped, per chunk); the series is cut into runs of float (XOR) chunks and
//!   of native histogram chunks (encodings 2 and 3 alike; Thanos' `cutNewChunk`), and each
//!   run goes through [`downsample_raw`] or [`downsample_histogram_raw`];
//! - a downsampled block: aggregate chunks are taken as they are; a plain chunk that Thanos
//!   once wrote into a downsampled block by mistake is skipped when empty, otherwise
//!   downsampled to 5m from its raw samples first (float or histogram); then runs of
//!   consecutive chunks of the same kind ([`AggrChunk::is_histogram`]) go through
//!   [`downsample_aggr`] or [`downsample_histogram_aggr`].
//!
//! Histogram chunks with start timestamps (encodings 5 and 6) are refused as Thanos refuses
//! them ([`DownsampleError::Encoding`]), except that an empty one in a downsampled block is
//! skipped like any empty plain chunk.

use std::ops::Range;

use super::super::chunks::{
    ENCODING_AGGR, ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM, ENCODING_XOR,
};
use super::aggr::AggrChunk;
use super::aggregate::{downsample_aggr, AggrInput};
use super::batch::{expand_xor, Sample};
use super::builder::AggrOutput;
use super::histogram::{expand_histogram_chunk, HistogramSample};
use super::histogram_aggr::downsample_histogram_aggr;
use super::histogram_raw::downsample_histogram_raw;
use super::raw::downsample_raw;
use super::DownsampleError;
use crate::units::RESOLUTION_5M_MS;

/// Thanos' first downsampling level, the one stray plain chunks of a downsampled block are
/// downsampled to (whatever the block's resolution).
pub const FIX_RESOLUTION_MS: i64 = RESOLUTION_5M_MS;

/// An input chunk of the current series, its bytes in the series arena.
#[derive(Clone, Debug)]
pub struct InputChunk {
    /// Minimum time, as the index states it.
    pub min_time: i64,
    /// Maximum time, as the index states it.
    pub max_time: i64,
    /// Encoding byte.
    pub encoding: u8,
    /// The chunk data in the arena.
    pub data: Range<usize>,
}

/// Buffers reused from series to series.
#[derive(Default)]
pub struct Scratch {
    samples: Vec<Sample>,
    histograms: Vec<HistogramSample>,
    buf: Vec<Sample>,
    fixed: Vec<AggrOutput>,
}

/// The downsampled chunks of one series. `from_resolution_ms` is the block's resolution (0
/// for raw), `to_resolution_ms` the target (coarser, or [`DownsampleError::Resolution`]).
pub fn downsample_series(
    chunks: &[InputChunk],
    arena: &[u8],
    from_resolution_ms: i64,
    to_resolution_ms: i64,
    scratch: &mut Scratch,
) -> Result<Vec<AggrOutput>, DownsampleError> {
    super::check_resolutions(from_resolution_ms, to_resolution_ms)?;
    if let Some(i) = chunks
        .iter()
        .position(|c| c.data.start > c.data.end || c.data.end > arena.len())
    {
        return Err(DownsampleError::Corrupt {
            chunk: i,
            offset: 0,
            what: format!(
                "data range {:?} outside the {}-byte arena",
                chunks[i].data,
                arena.len()
            ),
        });
    }
    check_order(chunks)?;
    if from_resolution_ms == 0 {
        raw_series(chunks, arena, to_resolution_ms, scratch)
    } else {
        aggregated_series(chunks, arena, from_resolution_ms, to_resolution_ms, scratch)
    }
}

/// Thanos refuses a series whose chunks overlap or are out of order (by the index's ranges).
fn check_order(chunks: &[InputChunk]) -> Result<(), DownsampleError> {
    for (i, pair) in chunks.windows(2).enumerate() {
        if pair[0].max_time >= pair[1].min_time {
            return Err(DownsampleError::Overlap {
                chunk: i + 1,
                what: format!(
                    "chunk {} [{}, {}] starts at or before the end of chunk {i} [{}, {}]; chunks must be ordered by time and must not overlap",
                    i + 1,
                    pair[1].min_time,
                    pair[1].max_time,
                    pair[0].min_time,
                    pair[0].max_time
                ),
            });
        }
    }
    Ok(())
}

fn raw_series(
    chunks: &[InputChunk],
    arena: &[u8],
    to_resolution_ms: i64,
    scratch: &mut Scratch,
) -> Result<Vec<AggrOutput>, DownsampleError> {
    let Scratch {
        samples,
        histograms,
        ..
    } = scratch;
    samples.clear();
    histograms.clear();
    let mut out = Vec::new();
    let mut flush = |in_histograms: bool,
                     samples: &mut Vec<Sample>,
                     histograms: &mut Vec<HistogramSample>|
     -> Result<(), DownsampleError> {
        if in_histograms {
            out.extend(downsample_histogram_raw(histograms, to_resolution_ms)?);
            histograms.clear();
        } else {
            out.extend(downsample_raw(samples, to_resolution_ms)?);
            samples.clear();
        }
        Ok(())
    };
    // The kind of the current run: Thanos starts with that of the first chunk.
    let mut in_histograms = chunks
        .first()
        .is_some_and(|c| is_plain_histogram(c.encoding));
    for (i, c) in chunks.iter().enumerate() {
        let data = &arena[c.data.clone()];
        if is_plain_histogram(c.encoding) != in_histograms {
            flush(in_histograms, samples, histograms)?;
            in_histograms = !in_histograms;
        }
        match c.encoding {
            ENCODING_XOR => expand_xor(data, samples).map_err(|e| DownsampleError::Corrupt {
                chunk: i,
                offset: e.byte_offset,
                what: e.to_string(),
            })?,
            e if is_plain_histogram(e) => expand_histogram_chunk(e, data, i, 0, histograms)?,
            e => {
                return Err(DownsampleError::Encoding {
                    chunk: i,
                    encoding: e,
                })
            }
        }
    }
    flush(in_histograms, samples, histograms)?;
    Ok(out)
}

/// The histogram chunk encodings Thanos reads (2 and 3).
fn is_plain_histogram(encoding: u8) -> bool {
    matches!(encoding, ENCODING_HISTOGRAM | ENCODING_FLOAT_HISTOGRAM)
}

fn aggregated_series(
    chunks: &[InputChunk],
    arena: &[u8],
    from_resolution_ms: i64,
    to_resolution_ms: i64,
    scratch: &mut Scratch,
) -> Result<Vec<AggrOutput>, DownsampleError> {
    let Scratch {
        samples,
        histograms,
        buf,
        fixed,
    } = scratch;
    let plan = fix_plain_chunks(chunks, arena, samples, histograms, fixed)?;
    let inputs = aggregate_inputs(chunks, arena, &plan, fixed)?;
    let mut out = Vec::new();
    for run in inputs.chunk_by(|a, b| a.chunk.is_histogram() == b.chunk.is_histogram()) {
        if run[0].chunk.is_histogram() {
            out.extend(downsample_histogram_aggr(
                run,
                from_resolution_ms,
                to_resolution_ms,
            )?);
        } else {
            out.extend(downsample_aggr(
                run,
                from_resolution_ms,
                to_resolution_ms,
                buf,
            )?);
        }
    }
    Ok(out)
}

/// Where the aggregate chunks of a downsampled series come from, in order: input chunk `i`
/// itself (`None`) or the chunks `fixed[range]` made from it.
type Plan = Vec<(usize, Option<Range<usize>>)>;

/// Downsamples the stray plain chunks of a downsampled series to 5m into `fixed` (Thanos
/// skips empty ones); returns where each aggregate chunk comes from.
fn fix_plain_chunks(
    chunks: &[InputChunk],
    arena: &[u8],
    samples: &mut Vec<Sample>,
    histograms: &mut Vec<HistogramSample>,
    fixed: &mut Vec<AggrOutput>,
) -> Result<Plan, DownsampleError> {
    fixed.clear();
    let mut plan = Vec::with_capacity(chunks.len());
    for (i, c) in chunks.iter().enumerate() {
        let data = &arena[c.data.clone()];
        if c.encoding == ENCODING_AGGR {
            plan.push((i, None));
            continue;
        }
        if !(c.encoding == ENCODING_XOR || is_histogram_encoding(c.encoding)) {
            return Err(DownsampleError::Encoding {
                chunk: i,
                encoding: c.encoding,
            });
        }
        if plain_num_samples(c.encoding, data) == 0 {
            continue; // Thanos skips empty plain chunks (thanos#5272) with a warning.
        }
        let start = fixed.len();
        if c.encoding == ENCODING_XOR {
            samples.clear();
            expand_xor(data, samples).map_err(|e| DownsampleError::Corrupt {
                chunk: i,
                offset: e.byte_offset,
                what: e.to_string(),
            })?;
            fixed.extend(downsample_raw(samples, FIX_RESOLUTION_MS)?);
        } else {
            histograms.clear();
            expand_histogram_chunk(c.encoding, data, i, 0, histograms)?;
            fixed.extend(downsample_histogram_raw(histograms, FIX_RESOLUTION_MS)?);
        }
        plan.push((i, Some(start..fixed.len())));
    }
    Ok(plan)
}

/// The series' aggregate chunks, parsed, in order.
fn aggregate_inputs<'a>(
    chunks: &[InputChunk],
    arena: &'a [u8],
    plan: &Plan,
    fixed: &'a [AggrOutput],
) -> Result<Vec<AggrInput<'a>>, DownsampleError> {
    let mut inputs = Vec::with_capacity(plan.len());
    for (i, made) in plan {
        let i = *i;
        let Some(range) = made else {
            let c = &chunks[i];
            let chunk =
                AggrChunk::parse(&arena[c.data.clone()]).map_err(|e| DownsampleError::Corrupt {
                    chunk: i,
                    offset: e.offset,
                    what: e.to_string(),
                })?;
            inputs.push(AggrInput {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk,
                source: i,
            });
            continue;
        };
        for f in &fixed[range.clone()] {
            // Our own encoding of decoded samples: it parses.
            let chunk = AggrChunk::parse(&f.data).map_err(|e| DownsampleError::Corrupt {
                chunk: i,
                offset: 0,
                what: format!("re-encoded 5m chunk does not parse: {e}"),
            })?;
            inputs.push(AggrInput {
                min_time: f.min_time,
                max_time: f.max_time,
                chunk,
                source: i,
            });
        }
    }
    Ok(inputs)
}

/// True for the native histogram chunk encodings (2 and 3; 5 and 6 with start timestamps).
pub fn is_histogram_encoding(encoding: u8) -> bool {
    matches!(
        encoding,
        ENCODING_HISTOGRAM | ENCODING_FLOAT_HISTOGRAM | 5 | 6
    )
}

/// The sample count in the header of a plain (non-aggregate) chunk.
fn plain_num_samples(encoding: u8, data: &[u8]) -> u16 {
    let count = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    // The start-timestamp histogram encodings keep a counter-reset hint in the top two bits.
    if matches!(encoding, 5 | 6) {
        count & 0x3fff
    } else {
        count
    }
}
