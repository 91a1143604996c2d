//! Thanos downsampling of a block: raw to 5m (resolution 300000 ms) and 5m to 1h (3600000 ms),
//! writing the aggregate chunks Thanos reads (`AggrChunk`, chunk encoding `0xFF`, see
//! [`aggr`]), with Thanos' semantics sample for sample.
//!
//! Naming: a *window* is one output interval of the target resolution, stamped with its last
//! millisecond ([`batch`]); a *batch* is the stretch of a series that becomes one output chunk;
//! the five *aggregates* of a window are count, sum, min, max and counter.
//!
//! [`downsample_block`] streams the input's series in index order, one series in memory at a
//! time ([`series`]): a raw series is read from its XOR chunks and aggregated ([`raw`]); a
//! downsampled series has its aggregate chunks re-aggregated along chunk boundaries
//! ([`aggregate`]); the counter aggregate keeps each chunk's first and last raw values so that
//! counter resets survive every level ([`counter`]). Output chunks are built by [`builder`]
//! and the block is written by `writer` in `<dest>/<id>.tmp-for-creation`, then renamed.
//! [`count_samples_in_block`] reads a downsampled block back for checks.
//! Like Thanos, the input's tombstones and time range are not applied.
//!
//! # Native histograms
//!
//! Histogram series are downsampled as Thanos does it, into aggregate chunks with count
//! (XOR), sum and counter (float histogram chunks) and no min or max: [`histogram`] reads
//! the samples and aggregates windows (the window loop [`batch::aggregate_windows`] is
//! generic over [`batch::WindowAggregator`]); [`histogram_raw`] and [`histogram_aggr`] are
//! the raw and aggregate paths, [`histogram_builder`] builds their chunks. [`series`] cuts a
//! raw series into float and histogram runs, splits aggregate chunks into runs by kind, and
//! downsamples stray plain histogram chunks to 5m like float ones.

pub mod aggr;
pub mod aggregate;
pub mod batch;
pub mod builder;
pub mod counter;
pub mod histogram;
pub mod histogram_aggr;
pub mod histogram_builder;
pub mod histogram_raw;
pub mod raw;
mod readback;
pub mod series;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::block::{BlockReader, BlockTarget, CHUNKS_DIRNAME};
use super::block_id::BlockId;
use super::chunks::{segment_file_name, ChunkRef};
use super::compact::CompactOutput;
use super::encoding::uvarint_len;
use super::error::{Result, TsdbError};
use super::index::{ChunkMeta, ReadOptions};
use crate::units::RESOLUTION_RAW_MS;
pub use readback::count_samples_in_block;
use series::{InputChunk, Scratch};

/// Why one series could not be downsampled; [`downsample_block`] adds the block, the series
/// and the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownsampleError {
    /// Input chunk `chunk` (its position in the series) does not decode.
    #[error("chunk {chunk}: {what} (byte {offset} of the chunk data)")]
    Corrupt {
        /// Position of the chunk in the series.
        chunk: usize,
        /// Offset in the chunk data.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// The series' chunks overlap or are out of order in the index.
    #[error("overlapping chunks: {what}")]
    Overlap {
        /// The later of the two chunks.
        chunk: usize,
        /// The two ranges.
        what: String,
    },
    /// Native histograms of the series cannot be combined (custom bucket bounds that differ
    /// or mix with exponential ones, or a layout whose spans do not fit its buckets), where
    /// Thanos panics.
    #[error("chunk {chunk}: cannot aggregate its native histograms: {what}")]
    HistogramArith {
        /// Position in the series of the chunk of the histogram that failed.
        chunk: usize,
        /// What failed.
        what: String,
    },
    /// A chunk encoding that cannot appear at this resolution.
    #[error(
        "chunk {chunk} has encoding {encoding}, which cannot be downsampled at this resolution"
    )]
    Encoding {
        /// Position of the chunk in the series.
        chunk: usize,
        /// Its encoding byte.
        encoding: u8,
    },
    /// An output chunk would be larger than the format allows.
    #[error("{0}")]
    TooLarge(String),
    /// The resolutions asked for cannot be downsampled between.
    #[error("cannot downsample from resolution {from} ms to {to} ms: the target is not coarser than the source, or the source is negative")]
    Resolution {
        /// The input's resolution.
        from: i64,
        /// The target resolution.
        to: i64,
    },
}

/// Checks that `from_ms` can be downsampled to `to_ms`: the source is raw (0) or a
/// resolution, and the target is coarser.
pub fn check_resolutions(from_ms: i64, to_ms: i64) -> std::result::Result<(), DownsampleError> {
    if from_ms < 0 || to_ms <= from_ms {
        return Err(DownsampleError::Resolution {
            from: from_ms,
            to: to_ms,
        });
    }
    Ok(())
}

/// Downsamples the block in `input` to `resolution_ms` (which must be coarser than the
/// block's), writing the new block `<dest>/<id>` atomically.
///
/// Returns `None`, leaving nothing in `dest`, when no series has data to write. On error
/// nothing is left in `dest` either; errors name the block and the series, and for damaged
/// data the segment file and offset.
pub fn downsample_block(
    input: &Path,
    dest: &Path,
    id: BlockId,
    resolution_ms: i64,
) -> Result<Option<CompactOutput>> {
    downsample_block_with(input, dest, id, resolution_ms, ReadOptions::default())
}

/// [`downsample_block`], reading the input's index with `read`. With
/// [`ReadOptions::accept_unsorted_label_names`] (`--debug.accept-malformed-index`), series
/// with unsorted label names are downsampled and written with their labels as stored, as
/// Thanos does.
pub fn downsample_block_with(
    input: &Path,
    dest: &Path,
    id: BlockId,
    resolution_ms: i64,
    read: ReadOptions,
) -> Result<Option<CompactOutput>> {
    let block = BlockReader::open_with(input, read)?;
    downsample_to(
        block,
        BlockTarget::local(dest, id)?,
        id,
        resolution_ms,
        read,
        None,
    )
}

/// Downsamples the open `block` into `target`: what [`downsample_block_with`] does, wherever
/// the input is read from and the output goes (a bucket target gets the files only; the
/// caller creates meta.json from the returned meta); counts every series done into
/// `series_done` when given (progress reports).
pub fn downsample_to(
    mut block: BlockReader,
    target: BlockTarget,
    id: BlockId,
    resolution_ms: i64,
    read: ReadOptions,
    series_done: Option<&AtomicU64>,
) -> Result<Option<CompactOutput>> {
    let from = block
        .meta
        .thanos
        .as_ref()
        .map_or(RESOLUTION_RAW_MS, |t| t.downsample.resolution);
    check_resolutions(from, resolution_ms).map_err(|e| {
        TsdbError::Unsupported(format!("downsampling block {}: {e}", block.meta.ulid))
    })?;
    let mut out = writer::Output::create(target, block.index.symbols())?;
    if read.accept_unsorted_label_names {
        out.accept_unsorted_label_names();
    }
    let mut scratch = Scratch::default();
    let (mut labels, mut metas) = (Vec::new(), Vec::new());
    let (mut chunks, mut arena) = (Vec::new(), Vec::new());
    for series_id in block.index.all_postings()? {
        block.index.series(series_id, &mut labels, &mut metas)?;
        read_chunks(&mut block, &metas, &mut chunks, &mut arena)?;
        let downsampled =
            series::downsample_series(&chunks, &arena, from, resolution_ms, &mut scratch)
                .map_err(|e| series_error(&block, resolution_ms, &labels, &metas, &chunks, e))?;
        out.add_series(&labels, &downsampled)?;
        if let Some(done) = series_done {
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    out.finish(&block.meta, id, resolution_ms)
}

/// Reads the chunks `metas` of the current series into `arena`.
fn read_chunks(
    block: &mut BlockReader,
    metas: &[ChunkMeta],
    chunks: &mut Vec<InputChunk>,
    arena: &mut Vec<u8>,
) -> Result<()> {
    chunks.clear();
    arena.clear();
    for m in metas {
        let (encoding, data) = block.chunks.chunk(ChunkRef(m.chunk_ref))?;
        let start = arena.len();
        arena.extend_from_slice(data);
        chunks.push(InputChunk {
            min_time: m.min_time,
            max_time: m.max_time,
            encoding,
            data: start..arena.len(),
        });
    }
    Ok(())
}

/// The block-level error for a series that failed: corruption names the segment file and the
/// byte offset in it; everything names the block and the series.
fn series_error(
    block: &BlockReader,
    resolution_ms: i64,
    labels: &[(u32, u32)],
    metas: &[ChunkMeta],
    chunks: &[InputChunk],
    e: DownsampleError,
) -> TsdbError {
    let series = block
        .index
        .series_labels(labels)
        .map_or_else(|_| format!("{labels:?}"), |l| l.to_string());
    let context = format!(
        "downsampling block {} ({}) to {resolution_ms} ms: series {series}",
        block.meta.ulid,
        block.dir.display()
    );
    match e {
        DownsampleError::Corrupt {
            chunk,
            offset,
            what,
        } => {
            let r = ChunkRef(metas.get(chunk).map_or(0, |m| m.chunk_ref));
            let data_len = chunks.get(chunk).map_or(0, |c| c.data.len());
            // The record is `uvarint len | encoding | data`; point into the data.
            let data_start = u64::from(r.offset()) + uvarint_len(data_len as u64) as u64 + 1;
            TsdbError::corrupt(
                &block
                    .dir
                    .join(CHUNKS_DIRNAME)
                    .join(segment_file_name(r.segment())),
                data_start + offset as u64,
                format!("{context}: chunk {chunk}: {what}"),
            )
        }
        other => TsdbError::Unsupported(format!("{context}: {other}")),
    }
}
