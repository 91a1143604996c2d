//! Compaction of N blocks into one, streaming: series are read from every input in label order
//! and merged k-way, so memory holds one series' chunks per input at a time plus what the index
//! writer needs (the symbol table and the postings of the written series).
//!
//! Naming: an *input* is an open source block with a cursor on its current series; a *source
//! chunk* is a chunk of the current series after the block range and tombstones were applied
//! ([`series`]); the *merge* turns the source chunks of all inputs that hold the same label set
//! into output chunks ([`merge`]). Symbols are the union of every input's table ([`symbols`]).
//!
//! An input may also relabel its series ([`CompactInput::relabel`], module `relabelled`):
//! its series are then walked in the order of their new labels.
//!
//! Meta follows Prometheus: level max+1, sorted source union, parents in input order. A result
//! without samples writes nothing and returns `None` (Prometheus then marks the inputs
//! deletable; callers decide).

pub mod dedup;
mod merge;
mod pipeline;
mod relabelled;
mod series;
mod symbols;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::block::{BlockReader, BlockTarget, CHUNKS_DIRNAME, INDEX_FILENAME};
use super::block_id::BlockId;
use super::chunks::{SegmentWriter, DEFAULT_SEGMENT_SIZE};
use super::error::Result;
use super::error::TsdbError;
use super::index::Symbols;
use super::index::{ChunkMeta, IndexWriter, ReadOptions};
use super::labels::Labels;
use super::meta::{merge_metas, BlockMeta, BlockStats};
pub use dedup::DedupFunc;
use merge::MergeFailure;
use pipeline::FailedSeries;
use series::{Input, SourceChunk};

/// Samples per chunk when merged samples are re-encoded (Prometheus' default).
pub use super::block_writer::SAMPLES_PER_CHUNK;

/// Options of a compaction.
#[derive(Clone, Debug)]
pub struct CompactOptions {
    /// Cut a new chunk segment file beyond this size (Prometheus: 512 MiB).
    pub segment_size: u64,
    /// Threads that merge overlapping series (the output does not depend on it).
    pub threads: usize,
    /// Incremented for every series written, for progress reports.
    pub series_written: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// How overlapping chunks are merged (`--deduplication.func`).
    pub dedup: DedupFunc,
    /// `--debug.accept-malformed-index`: read inputs whose series have unsorted label names
    /// (Prometheus 2.8.0 and older) and write those series with their labels as stored, as
    /// Thanos (Prometheus' compactor) does; otherwise such an input fails the compaction.
    pub accept_malformed_index: bool,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            series_written: None,
            dedup: DedupFunc::Chain,
            accept_malformed_index: false,
        }
    }
}

/// A block written by [`compact_blocks`].
#[derive(Debug, Clone)]
pub struct CompactOutput {
    /// The published block directory.
    pub dir: PathBuf,
    /// Its meta, as written.
    pub meta: BlockMeta,
}

/// Compacts the blocks in `inputs` (in that order) into one new block `<dest>/<id>`.
///
/// On error nothing is left in `dest`. Returns `None` when the result holds no samples. An
/// input with a series whose chunks are out of time order fails with
/// [`TsdbError::OutOfOrderChunks`] naming it.
pub fn compact_blocks(
    inputs: &[PathBuf],
    dest: &Path,
    id: BlockId,
    opts: &CompactOptions,
) -> Result<Option<CompactOutput>> {
    let read = ReadOptions {
        accept_unsorted_label_names: opts.accept_malformed_index,
    };
    let blocks = inputs
        .iter()
        .map(|dir| BlockReader::open_with(dir, read))
        .collect::<Result<Vec<_>>>()?;
    compact_to(blocks, BlockTarget::local(dest, id)?, id, opts)
}

/// Compacts the open `blocks` (in that order) into block `id` written to `target`: what
/// [`compact_blocks`] does, wherever the inputs are read from and the output goes. A local
/// target is published with its meta; a bucket target gets its files only, and the caller
/// creates meta.json from the returned meta.
pub fn compact_to(
    blocks: Vec<BlockReader>,
    target: BlockTarget,
    id: BlockId,
    opts: &CompactOptions,
) -> Result<Option<CompactOutput>> {
    let inputs = blocks
        .into_iter()
        .map(|block| CompactInput {
            block,
            relabel: None,
        })
        .collect();
    compact_inputs(inputs, target, id, opts)
}

/// New labels for series of one input block, by series id (the index's series reference): a
/// series not named keeps its labels, one given an empty set is left out. Series whose new
/// labels are equal become one series, merged as overlapping series of several blocks are.
pub type SeriesRelabel = HashMap<u32, Labels>;

/// An input of [`compact_inputs`]: an open block (its tombstones applied) and, optionally,
/// new labels for its series.
pub struct CompactInput {
    /// The block.
    pub block: BlockReader,
    /// New labels: with them the block's series are read up front, sorted by their new
    /// labels, and its symbol table becomes the strings those use; `None` walks the block as
    /// stored.
    pub relabel: Option<SeriesRelabel>,
}

/// [`compact_to`] over inputs that may relabel their series.
pub fn compact_inputs(
    inputs: Vec<CompactInput>,
    target: BlockTarget,
    id: BlockId,
    opts: &CompactOptions,
) -> Result<Option<CompactOutput>> {
    let metas: Vec<BlockMeta> = inputs.iter().map(|i| i.block.meta.clone()).collect();
    let mut meta = merge_metas(id, &metas)?;
    let mut walks = Vec::with_capacity(inputs.len());
    for CompactInput { mut block, relabel } in inputs {
        let walk = match &relabel {
            Some(r) => Some(relabelled::relabelled_order(&mut block, r)?),
            None => None,
        };
        walks.push((block, walk));
    }
    let output = target.output();
    let index_path = output.location().join(INDEX_FILENAME);
    let mut index = IndexWriter::to(output.create(INDEX_FILENAME)?, &index_path)?;
    if opts.accept_malformed_index {
        index.accept_unsorted_label_names();
    }
    let tables: Vec<&Symbols> = walks
        .iter()
        .map(|(b, w)| w.as_ref().map_or(b.index.symbols(), |w| &w.symbols))
        .collect();
    let sym_maps = symbols::write_union(&tables, &mut index)?;
    let inputs: Vec<Input> = walks
        .into_iter()
        .zip(sym_maps)
        .enumerate()
        .map(|(i, ((b, w), m))| Input::new(b, m, i, w.map(|w| w.order)))
        .collect::<Result<Vec<_>>>()?;
    let mut chunks = SegmentWriter::to(output, opts.segment_size);
    meta.stats = write_series(inputs, opts, &mut chunks, &mut index)?;
    chunks.finish()?;
    index.finish()?;
    if meta.stats.num_samples == 0 {
        return Ok(None);
    }
    let dir = target.finish(&meta)?;
    Ok(Some(CompactOutput { dir, meta }))
}

/// Walks, merges and writes every output series; returns the output's stats.
fn write_series(
    inputs: Vec<Input>,
    opts: &CompactOptions,
    chunks: &mut SegmentWriter,
    index: &mut IndexWriter,
) -> Result<BlockStats> {
    let blocks: Vec<(BlockId, PathBuf)> = inputs
        .iter()
        .map(|i| (i.block.meta.ulid, i.block.dir.clone()))
        .collect();
    let mut stats = BlockStats::default();
    let mut refs = Vec::new();
    let mut metas = Vec::new();
    let index_cell = std::cell::RefCell::new(index);
    pipeline::run(
        inputs,
        opts.threads,
        opts.dedup,
        |batch| {
            let mut index = index_cell.borrow_mut();
            let before = stats.num_series;
            for s in &batch.series {
                let merged = &batch.merged[s.merged.clone()];
                if merged.is_empty() {
                    continue;
                }
                let labels = &batch.labels[s.labels.clone()];
                write_one_series(
                    labels,
                    merged,
                    &batch.arena,
                    chunks,
                    &mut index,
                    &mut refs,
                    &mut metas,
                    &mut stats,
                )?;
            }
            if let Some(written) = &opts.series_written {
                written.fetch_add(
                    stats.num_series - before,
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            Ok(())
        },
        |failed| failure_error(failed, index_cell.borrow().symbols(), &blocks),
    )?;
    Ok(stats)
}

#[allow(clippy::too_many_arguments)] // The writer's reusable buffers, passed to avoid allocation.
fn write_one_series(
    labels: &[(u32, u32)],
    merged: &[SourceChunk],
    arena: &[u8],
    chunks: &mut SegmentWriter,
    index: &mut IndexWriter,
    refs: &mut Vec<super::chunks::ChunkRef>,
    metas: &mut Vec<ChunkMeta>,
    stats: &mut BlockStats,
) -> Result<()> {
    let pairs: Vec<(u8, &[u8])> = merged
        .iter()
        .map(|c| (c.encoding, &arena[c.data.clone()]))
        .collect();
    refs.clear();
    chunks.write_series_chunks(&pairs, refs)?;
    debug_assert_eq!(refs.len(), pairs.len(), "one ref per chunk");
    metas.clear();
    for (c, r) in merged.iter().zip(refs.iter()) {
        metas.push(ChunkMeta {
            min_time: c.min_time,
            max_time: c.max_time,
            chunk_ref: r.0,
        });
        let n = series::chunk_num_samples(c.encoding, &arena[c.data.clone()]);
        stats.num_samples += n;
        if series::is_float_encoding(c.encoding) {
            stats.num_float_samples += n;
        } else if series::is_histogram_encoding(c.encoding) {
            stats.num_histogram_samples += n;
        }
    }
    index.add_series(labels, metas)?;
    stats.num_series += 1;
    stats.num_chunks += metas.len() as u64;
    Ok(())
}

/// The error for a series that could not be merged, naming it and its blocks.
fn failure_error(
    failed: FailedSeries,
    symbols: &Symbols,
    blocks: &[(BlockId, PathBuf)],
) -> TsdbError {
    let text = |r: u32| symbols.get(r).unwrap_or("?").to_string();
    let series = Labels::from_pairs(failed.labels.iter().map(|&(n, v)| (text(n), text(v))));
    match failed.failure {
        MergeFailure::Unmergeable { encodings, inputs } => {
            let ids: Vec<String> = inputs.iter().map(|&i| blocks[i].0.to_string()).collect();
            let encs: Vec<String> = encodings.iter().map(u8::to_string).collect();
            TsdbError::Unsupported(format!(
                "series {series} has overlapping chunks of encodings [{}] in blocks [{}]; float and native histogram chunks can be merged, downsampled (aggregate) chunks cannot",
                encs.join(", "),
                ids.join(", ")
            ))
        }
        MergeFailure::Undecodable {
            input,
            origin,
            what,
        } => {
            let (id, dir) = &blocks[input];
            match origin {
                Some(r) => TsdbError::corrupt(
                    &dir.join(CHUNKS_DIRNAME)
                        .join(super::chunks::segment_file_name(r.segment())),
                    u64::from(r.offset()),
                    format!("chunk of series {series} in block {id}: {what}"),
                ),
                // Re-encoded chunks come from our own encoder over decoded samples.
                None => TsdbError::Unsupported(format!(
                    "re-encoded chunk of series {series} does not decode: {what}"
                )),
            }
        }
    }
}

#[cfg(test)]
mod malformed_tests;
#[cfg(test)]
mod relabelled_tests;
#[cfg(test)]
mod tests;
