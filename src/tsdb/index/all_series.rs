//! [`IndexReader::all_series`]: every series entry of an index in index order (the order of
//! the all-series postings list, which is label order), read one at a time.
//!
//! Callers that walk a whole index (tools, checks, tests) used to spell out the same loop:
//! read the `("", "")` postings, then read each entry and resolve its labels. The iterator
//! owns that loop, so each caller only says what it does with a series.

use super::reader::IndexReader;
use super::ChunkMeta;
use crate::tsdb::error::Result;
use crate::tsdb::labels::Labels;

/// One series entry of an index, as [`IndexReader::all_series`] yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSeries {
    /// Its id: the postings entry that names it.
    pub id: u32,
    /// Its labels as `(name, value)` symbol indices, in stored order (sorted by name unless
    /// the reader accepts unsorted label names).
    pub refs: Vec<(u32, u32)>,
    /// Its labels, resolved and sorted.
    pub labels: Labels,
    /// Its chunks, in stored order.
    pub chunks: Vec<ChunkMeta>,
}

/// The iterator of [`IndexReader::all_series`].
pub struct IndexSeriesIter<'a> {
    reader: &'a mut IndexReader,
    /// The ids left to read.
    ids: std::vec::IntoIter<u32>,
}

impl IndexReader {
    /// Every series in index order. Reading the all-series list is the error returned here;
    /// an entry that cannot be read yields its error (naming the index file, the offset and
    /// the problem) and the walk goes on with the next entry, so a caller may collect every
    /// problem or stop at the first.
    pub fn all_series(&mut self) -> Result<IndexSeriesIter<'_>> {
        let ids = self.all_postings()?.into_iter();
        Ok(IndexSeriesIter { reader: self, ids })
    }
}

impl IndexSeriesIter<'_> {
    /// Reads the entry `id`.
    fn read(&mut self, id: u32) -> Result<IndexSeries> {
        let (mut refs, mut chunks) = (Vec::new(), Vec::new());
        self.reader.series(id, &mut refs, &mut chunks)?;
        // `series` checked every reference against the symbol table.
        let labels = self.reader.series_labels(&refs)?;
        Ok(IndexSeries {
            id,
            refs,
            labels,
            chunks,
        })
    }
}

impl Iterator for IndexSeriesIter<'_> {
    type Item = Result<IndexSeries>;

    fn next(&mut self) -> Option<Self::Item> {
        let id = self.ids.next()?;
        Some(self.read(id))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ids.size_hint()
    }
}
