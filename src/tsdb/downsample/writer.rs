//! The downsampled block being written: the input's whole symbol table (Thanos copies it),
//! series in the input's order with their aggregate chunks, and at the end the meta, an empty
//! tombstones file and the atomic publish.
//!
//! The meta is Thanos' (`Downsample` copies the input's meta, then the streamed block writer
//! and `processDownsampling` fill a few fields):
//! - `ulid` is the new id; `minTime`, `maxTime` and `compaction` (level, sources, parents,
//!   hints) are the input's;
//! - `stats`: `numSamples` counts the windows (the count aggregate's samples),
//!   `numChunks` the aggregate chunks, `numSeries` the series written; `numTombstones`,
//!   `numFloatSamples` and `numHistogramSamples` stay the input's, as Thanos leaves them;
//! - `thanos`: the input's section (labels, extensions, rewrites) with the new
//!   `downsample.resolution`, `source: compactor`, the chunk `segment_files`, and
//!   `index_stats` measured on the new index as Thanos measures them. Unlike Thanos, `files`
//!   is emptied and `upload_time` reset, since the upload fills both.

use super::super::block::{BlockTarget, INDEX_FILENAME};
use super::super::block_id::BlockId;
use super::super::chunks::{ChunkRef, SegmentWriter, DEFAULT_SEGMENT_SIZE, ENCODING_AGGR};
use super::super::compact::CompactOutput;
use super::super::error::Result;
use super::super::index::{ChunkMeta, IndexWriter, Symbols};
use super::super::meta::{
    BlockMeta, BlockStats, ThanosMeta, META_VERSION, SOURCE_COMPACTOR, ZERO_TIME,
};
use super::builder::AggrOutput;

/// A downsampled block under construction (locally in `<dest>/<id>.tmp-for-creation`).
pub struct Output {
    target: BlockTarget,
    index: IndexWriter,
    chunks: SegmentWriter,
    stats: BlockStats,
    refs: Vec<ChunkRef>,
    metas: Vec<ChunkMeta>,
    /// Thanos' approximate largest chunk (see [`chunk_sizes`]).
    chunk_size_max: i64,
}

impl Output {
    /// Starts the block with the input's symbol table.
    pub fn create(target: BlockTarget, symbols: &Symbols) -> Result<Self> {
        let output = target.output();
        let index_path = output.location().join(INDEX_FILENAME);
        let mut index = IndexWriter::to(output.create(INDEX_FILENAME)?, &index_path)?;
        for s in symbols.iter() {
            index.add_symbol(s)?;
        }
        let chunks = SegmentWriter::to(output, DEFAULT_SEGMENT_SIZE);
        Ok(Output {
            target,
            index,
            chunks,
            stats: BlockStats::default(),
            refs: Vec::new(),
            metas: Vec::new(),
            chunk_size_max: 0,
        })
    }

    /// Writes series whose label names are not sorted, labels as given (see
    /// [`IndexWriter::accept_unsorted_label_names`]).
    pub fn accept_unsorted_label_names(&mut self) {
        self.index.accept_unsorted_label_names();
    }

    /// Adds the next series (`labels` as symbol refs of the shared table) with its chunks; a
    /// series without chunks is skipped, as Thanos skips it.
    pub fn add_series(&mut self, labels: &[(u32, u32)], chunks: &[AggrOutput]) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(u8, &[u8])> = chunks
            .iter()
            .map(|c| (ENCODING_AGGR, c.data.as_slice()))
            .collect();
        self.refs.clear();
        self.chunks.write_series_chunks(&pairs, &mut self.refs)?;
        debug_assert_eq!(self.refs.len(), chunks.len(), "one ref per chunk");
        self.metas.clear();
        self.metas
            .extend(chunks.iter().zip(&self.refs).map(|(c, r)| ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk_ref: r.0,
            }));
        self.index.add_series(labels, &self.metas)?;
        self.chunk_size_max = self
            .chunk_size_max
            .max(chunk_sizes(&self.refs).max().unwrap_or(0));
        self.stats.num_series += 1;
        self.stats.num_chunks += chunks.len() as u64;
        self.stats.num_samples += chunks.iter().map(|c| c.num_samples).sum::<u64>();
        Ok(())
    }

    /// Finishes the files and publishes `<dest>/<id>` with the meta derived from `input`;
    /// `None` (nothing left behind) when no series was written.
    pub fn finish(
        self,
        input: &BlockMeta,
        id: BlockId,
        resolution_ms: i64,
    ) -> Result<Option<CompactOutput>> {
        let segments = self.chunks.finish()?;
        // Thanos measures the distance between consecutive series ids of the written index.
        let series_size_max = i64::try_from(self.index.series_gap_max()).unwrap_or(i64::MAX);
        self.index.finish()?;
        if self.stats.num_series == 0 {
            return Ok(None); // Dropping a local target removes its temporary directory.
        }
        let mut meta = input.clone();
        meta.ulid = id;
        meta.version = META_VERSION;
        meta.stats = BlockStats {
            num_samples: self.stats.num_samples,
            num_series: self.stats.num_series,
            num_chunks: self.stats.num_chunks,
            ..input.stats.clone()
        };
        let mut thanos = input.thanos.clone().unwrap_or_else(|| ThanosMeta {
            upload_time: ZERO_TIME.to_string(),
            ..ThanosMeta::default()
        });
        thanos.downsample.resolution = resolution_ms;
        thanos.source = SOURCE_COMPACTOR.to_string();
        thanos.segment_files = segments
            .iter()
            .map(|(rel, _)| rel.strip_prefix("chunks/").unwrap_or(rel).to_string())
            .collect();
        thanos.files.clear();
        thanos.upload_time = ZERO_TIME.to_string();
        // Thanos keeps the input's value where its measurement gives 0.
        if self.chunk_size_max > 0 {
            thanos.index_stats.chunk_max_size = self.chunk_size_max;
        }
        if series_size_max > 0 {
            thanos.index_stats.series_max_size = series_size_max;
        }
        meta.thanos = Some(thanos);
        let dir = self.target.finish(&meta)?;
        Ok(Some(CompactOutput { dir, meta }))
    }
}

/// Thanos' chunk size estimate (`GatherIndexHealthStats`): the distance from each chunk to
/// the next in the same segment, for every chunk of a series but its last two.
fn chunk_sizes(refs: &[ChunkRef]) -> impl Iterator<Item = i64> + '_ {
    let measured = refs.len().saturating_sub(2);
    refs.windows(2)
        .take(measured)
        .filter(|w| w[0].segment() == w[1].segment())
        .map(|w| i64::from(w[1].offset()) - i64::from(w[0].offset()))
}
