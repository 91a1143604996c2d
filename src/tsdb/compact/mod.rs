//! Compaction of N blocks into one, streaming: series are read from every input in label order
//! and merged k-way, so memory holds one series' chunks per input at a time plus what the index
//! writer needs (the symbol table and the postings of the written series).
//!
//! Naming: an *input* is an open source block with a cursor on its current series; a *source
//! chunk* is a chunk of the current series after the block range and tombstones were applied
//! ([`series`]); the *merge* turns the source chunks of all inputs that hold the same label set
//! into output chunks ([`merge`]). Symbols are the union of every input's table ([`symbols`]).
//!
//! Meta follows Prometheus: level max+1, sorted source union, parents in input order. A result
//! without samples writes nothing and returns `None` (Prometheus then marks the inputs
//! deletable; callers decide).

mod merge;
mod series;
mod symbols;

use std::path::{Path, PathBuf};

use super::block::{BlockReader, PendingBlock, CHUNKS_DIRNAME, INDEX_FILENAME};
use super::block_id::BlockId;
use super::chunks::{SegmentWriter, DEFAULT_SEGMENT_SIZE};
use super::error::Result;
use super::index::{ChunkMeta, IndexWriter};
use super::meta::{merge_metas, BlockMeta, BlockStats};
use super::tombstones::Tombstones;
use merge::merge_series_chunks;
use series::{Input, SourceChunk};

/// Samples per chunk when merged samples are re-encoded (Prometheus' default).
pub use super::block_writer::SAMPLES_PER_CHUNK;

/// Options of a compaction.
#[derive(Clone, Debug)]
pub struct CompactOptions {
    /// Cut a new chunk segment file beyond this size (Prometheus: 512 MiB).
    pub segment_size: u64,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
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
/// On error nothing is left in `dest`. Returns `None` when the result holds no samples.
pub fn compact_blocks(
    inputs: &[PathBuf],
    dest: &Path,
    id: BlockId,
    opts: &CompactOptions,
) -> Result<Option<CompactOutput>> {
    let blocks = inputs
        .iter()
        .map(|dir| BlockReader::open(dir))
        .collect::<Result<Vec<_>>>()?;
    let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta.clone()).collect();
    let mut meta = merge_metas(id, &metas)?;
    let pending = PendingBlock::create(dest, id)?;
    let mut index = IndexWriter::create(&pending.dir().join(INDEX_FILENAME))?;
    let sym_maps = symbols::write_union(&blocks, &mut index)?;
    let mut inputs: Vec<Input> = blocks
        .into_iter()
        .zip(sym_maps)
        .enumerate()
        .map(|(i, (b, m))| Input::new(b, m, i))
        .collect::<Result<Vec<_>>>()?;
    let mut chunks = SegmentWriter::create(&pending.dir().join(CHUNKS_DIRNAME), opts.segment_size)?;
    meta.stats = write_series(&mut inputs, &mut chunks, &mut index)?;
    chunks.finish()?;
    index.finish()?;
    if meta.stats.num_samples == 0 {
        return Ok(None);
    }
    meta.write_dir(pending.dir())?;
    Tombstones::default().write_dir(pending.dir())?;
    let dir = pending.publish()?;
    Ok(Some(CompactOutput { dir, meta }))
}

/// Reusable buffers for one series.
#[derive(Default)]
struct SeriesScratch {
    arena: Vec<u8>,
    sources: Vec<SourceChunk>,
    merged: Vec<SourceChunk>,
    samples: Vec<(i64, f64)>,
    refs: Vec<super::chunks::ChunkRef>,
    metas: Vec<ChunkMeta>,
    members: Vec<usize>,
}

/// The k-way merge over the inputs' series; returns the output's stats.
fn write_series(
    inputs: &mut [Input],
    chunks: &mut SegmentWriter,
    index: &mut IndexWriter,
) -> Result<BlockStats> {
    let mut stats = BlockStats::default();
    let mut s = SeriesScratch::default();
    while let Some(min) = lowest_series(inputs) {
        s.members.clear();
        s.members
            .extend((0..inputs.len()).filter(|&i| inputs[i].current_labels() == Some(&min[..])));
        s.arena.clear();
        s.sources.clear();
        for &i in &s.members {
            inputs[i].source_chunks(&mut s.arena, &mut s.sources)?;
        }
        let ctx = merge::MergeContext {
            inputs: &*inputs,
            members: &s.members,
        };
        merge_series_chunks(
            &ctx,
            &mut s.sources,
            &mut s.arena,
            &mut s.samples,
            &mut s.merged,
        )?;
        if !s.merged.is_empty() {
            write_one_series(&min, &mut s, chunks, index, &mut stats)?;
        }
        for &i in &s.members {
            inputs[i].advance()?;
        }
    }
    Ok(stats)
}

fn lowest_series(inputs: &[Input]) -> Option<Vec<(u32, u32)>> {
    inputs
        .iter()
        .filter_map(Input::current_labels)
        .min()
        .map(<[(u32, u32)]>::to_vec)
}

fn write_one_series(
    labels: &[(u32, u32)],
    s: &mut SeriesScratch,
    chunks: &mut SegmentWriter,
    index: &mut IndexWriter,
    stats: &mut BlockStats,
) -> Result<()> {
    let pairs: Vec<(u8, &[u8])> = s
        .merged
        .iter()
        .map(|c| (c.encoding, &s.arena[c.data.clone()]))
        .collect();
    s.refs.clear();
    chunks.write_series_chunks(&pairs, &mut s.refs)?;
    debug_assert_eq!(s.refs.len(), pairs.len(), "one ref per chunk");
    s.metas.clear();
    for (c, r) in s.merged.iter().zip(&s.refs) {
        s.metas.push(ChunkMeta {
            min_time: c.min_time,
            max_time: c.max_time,
            chunk_ref: r.0,
        });
        let n = series::chunk_num_samples(c.encoding, &s.arena[c.data.clone()]);
        stats.num_samples += n;
        if series::is_float_encoding(c.encoding) {
            stats.num_float_samples += n;
        } else if series::is_histogram_encoding(c.encoding) {
            stats.num_histogram_samples += n;
        }
    }
    index.add_series(labels, &s.metas)?;
    stats.num_series += 1;
    stats.num_chunks += s.metas.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests;
