//! Writing a new block from series given in label order: the path used by the sample-block
//! generator and by tests that build blocks by hand. Compaction writes blocks through the same
//! pieces ([`IndexWriter`], [`SegmentWriter`], [`PendingBlock`]) directly.

use std::path::{Path, PathBuf};

use super::block::{PendingBlock, CHUNKS_DIRNAME, INDEX_FILENAME};
use super::block_id::BlockId;
use super::chunks::{ChunkRef, SegmentWriter, ENCODING_XOR};
use super::error::{Result, TsdbError};
use super::histogram::{CutHeaders, SampleValue, SeriesEncoder};
use super::index::{ChunkMeta, IndexWriter};
use super::labels::Labels;
use super::meta::{BlockMeta, BlockStats};
use super::tombstones::Tombstones;
use super::xor::XorEncoder;

/// Samples per XOR chunk the writer cuts (Prometheus' head default).
pub const SAMPLES_PER_CHUNK: usize = 120;

/// One encoded chunk handed to [`BlockWriter::add_series`].
#[derive(Clone, Debug)]
pub struct EncodedChunk {
    /// First sample timestamp.
    pub min_time: i64,
    /// Last sample timestamp (inclusive).
    pub max_time: i64,
    /// Encoding byte.
    pub encoding: u8,
    /// Chunk data, starting with the sample count.
    pub data: Vec<u8>,
}

/// A block under construction in `<dest>/<id>.tmp-for-creation`.
pub struct BlockWriter {
    pending: PendingBlock,
    index: IndexWriter,
    chunks: SegmentWriter,
    stats: BlockStats,
    refs: Vec<ChunkRef>,
}

impl BlockWriter {
    /// Starts a block; `symbols` must be every label name and value used, sorted and unique.
    pub fn create<'a>(
        dest: &Path,
        id: BlockId,
        symbols: impl IntoIterator<Item = &'a str>,
        segment_size: u64,
    ) -> Result<Self> {
        let pending = PendingBlock::create(dest, id)?;
        let mut index = IndexWriter::create(&pending.dir().join(INDEX_FILENAME))?;
        for s in symbols {
            index.add_symbol(s)?;
        }
        let chunks = SegmentWriter::create(&pending.dir().join(CHUNKS_DIRNAME), segment_size)?;
        Ok(BlockWriter {
            pending,
            index,
            chunks,
            stats: BlockStats::default(),
            refs: Vec::new(),
        })
    }

    /// Adds a series with float samples (sorted by time), cut into XOR chunks of
    /// [`SAMPLES_PER_CHUNK`] samples. A series without samples is skipped.
    pub fn add_float_series(&mut self, labels: &Labels, samples: &[(i64, f64)]) -> Result<()> {
        let chunks: Vec<EncodedChunk> = samples
            .chunks(SAMPLES_PER_CHUNK)
            .map(|part| {
                let mut enc = XorEncoder::new();
                for &(t, v) in part {
                    enc.append(t, v);
                }
                EncodedChunk {
                    min_time: part[0].0,
                    max_time: part[part.len() - 1].0,
                    encoding: ENCODING_XOR,
                    data: enc.into_bytes(),
                }
            })
            .collect();
        self.add_series(labels, &chunks)
    }

    /// Adds a series of samples of any type (sorted by time), usually native histograms,
    /// encoded as [`SeriesEncoder`] does: a new chunk on a change of sample type, after 120
    /// samples, and where the histogram appender starts one (counter resets, layout changes);
    /// `cut_headers` picks the counter-reset header of chunks cut at 120 samples. A series
    /// without samples is skipped; a histogram whose buckets do not match its spans is an
    /// error.
    pub fn add_histogram_series(
        &mut self,
        labels: &Labels,
        samples: &[(i64, SampleValue)],
        cut_headers: CutHeaders,
    ) -> Result<()> {
        let mut encoder = SeriesEncoder::new(cut_headers);
        for (t, v) in samples {
            encoder.append(*t, v).map_err(|e| {
                TsdbError::usage(self.pending.dir(), format!("series {labels}: {e}"))
            })?;
        }
        let chunks: Vec<EncodedChunk> = encoder
            .finish()
            .into_iter()
            .map(|c| EncodedChunk {
                min_time: c.min_time,
                max_time: c.max_time,
                encoding: c.encoding,
                data: c.data,
            })
            .collect();
        self.add_series(labels, &chunks)
    }

    /// Adds a series with already encoded chunks (any encoding), in time order.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[EncodedChunk]) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(u8, &[u8])> = chunks
            .iter()
            .map(|c| (c.encoding, c.data.as_slice()))
            .collect();
        self.refs.clear();
        self.chunks.write_series_chunks(&pairs, &mut self.refs)?;
        let metas: Vec<ChunkMeta> = chunks
            .iter()
            .zip(&self.refs)
            .map(|(c, r)| ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk_ref: r.0,
            })
            .collect();
        self.index.add_series_labels(labels, &metas)?;
        for c in chunks {
            let n = c
                .data
                .get(..2)
                .map_or(0, |b| u64::from(u16::from_be_bytes([b[0], b[1]])));
            self.stats.num_samples += n;
            if c.encoding == ENCODING_XOR {
                self.stats.num_float_samples += n;
            } else {
                self.stats.num_histogram_samples += n;
            }
        }
        self.stats.num_series += 1;
        self.stats.num_chunks += chunks.len() as u64;
        Ok(())
    }

    /// Finishes the block with `meta` (its stats are filled in here) and `tombstones`, and
    /// publishes it as `<dest>/<id>`.
    pub fn finish(
        self,
        mut meta: BlockMeta,
        tombstones: &Tombstones,
    ) -> Result<(PathBuf, BlockMeta)> {
        let target = self.pending.dir().to_path_buf();
        if meta.ulid.to_string() + super::block::TMP_CREATION_SUFFIX
            != target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
        {
            return Err(TsdbError::usage(
                &target,
                format!("meta.json names block {}", meta.ulid),
            ));
        }
        self.chunks.finish()?;
        self.index.finish()?;
        meta.stats = BlockStats {
            num_tombstones: tombstones.num_intervals(),
            ..self.stats
        };
        meta.write_dir(self.pending.dir())?;
        tombstones.write_dir(self.pending.dir())?;
        let dir = self.pending.publish()?;
        Ok((dir, meta))
    }
}
