//! [`BlockReader::series`]: every series of a block in index order, with its chunks read from
//! the segment files: labels, and each chunk's meta, encoding and bytes.
//!
//! Built on [`IndexReader::all_series`](crate::tsdb::index::IndexReader::all_series), which
//! walks the index alone; this adds the chunk bytes, so that a caller that checks or decodes
//! every sample of a block writes one `for` loop.

use super::BlockReader;
use crate::tsdb::chunks::{ChunkRef, SegmentReader};
use crate::tsdb::error::{Result, TsdbError};
use crate::tsdb::index::{ChunkMeta, IndexSeries, IndexSeriesIter};
use crate::tsdb::labels::Labels;

/// One chunk of a [`BlockSeries`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockChunk {
    /// Its time range and reference, as the index stores them.
    pub meta: ChunkMeta,
    /// Its encoding byte.
    pub encoding: u8,
    /// Its bytes (CRC-checked).
    pub data: Vec<u8>,
}

/// One series of a block with its chunks, as [`BlockReader::series`] yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSeries {
    /// Its id in the index.
    pub id: u32,
    /// Its labels.
    pub labels: Labels,
    /// Its chunks, in stored order.
    pub chunks: Vec<BlockChunk>,
}

/// The iterator of [`BlockReader::series`].
pub struct BlockSeriesIter<'a> {
    series: IndexSeriesIter<'a>,
    chunks: &'a mut SegmentReader,
}

impl BlockReader {
    /// Every series in index order with its chunks. Errors name the file of the block they
    /// concern (`<block>/index` or `<block>/chunks/<segment>`), the offset and the problem; a
    /// chunk's error also names its series. Reading the index's all-series list is the error
    /// returned here; a series that cannot be read yields its error and the walk goes on
    /// with the next one.
    pub fn series(&mut self) -> Result<BlockSeriesIter<'_>> {
        Ok(BlockSeriesIter {
            series: self.index.all_series()?,
            chunks: &mut self.chunks,
        })
    }
}

impl BlockSeriesIter<'_> {
    /// Reads the chunks of the index entry `s`.
    fn read(&mut self, s: IndexSeries) -> Result<BlockSeries> {
        let mut chunks = Vec::with_capacity(s.chunks.len());
        for meta in s.chunks {
            let (encoding, data) = self
                .chunks
                .chunk(ChunkRef(meta.chunk_ref))
                .map_err(|e| in_series(e, &s.labels, &meta))?;
            chunks.push(BlockChunk {
                meta,
                encoding,
                data: data.to_vec(),
            });
        }
        Ok(BlockSeries {
            id: s.id,
            labels: s.labels,
            chunks,
        })
    }
}

impl Iterator for BlockSeriesIter<'_> {
    type Item = Result<BlockSeries>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.series.next()?;
        Some(s.and_then(|s| self.read(s)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.series.size_hint()
    }
}

/// Adds the series and the chunk's time range to a corruption error of the chunk `meta`.
fn in_series(e: TsdbError, labels: &Labels, meta: &ChunkMeta) -> TsdbError {
    match e {
        TsdbError::Corrupt { file, offset, what } => TsdbError::Corrupt {
            file,
            offset,
            what: format!(
                "series {labels}, chunk {}..={}: {what}",
                meta.min_time, meta.max_time
            ),
        },
        other => other,
    }
}
