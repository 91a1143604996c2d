//! [`IndexWriter`]: writes an index file in one pass, in the stages symbols → series → done
//! (see the module doc of [`super`] for the layout).
//!
//! Symbols and series go straight to the file. What the postings lists need is one 16-byte
//! record per label pair of every series and one per series ([`super::postings`]): at most
//! 64 MiB of them stay in memory, and beyond that sorted runs are spilled to an anonymous
//! temporary file and merged back by [`IndexWriter::finish`], which then holds one list's ids
//! and the offset of every list (16 bytes per distinct label pair) at a time.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::order::NameOrder;
use super::postings::{id_of, list_of, unpack, PostingsBuilder, RUN_BYTES_DEFAULT};
use super::{
    ChunkMeta, Symbols, Toc, FORMAT_V2, HEADER_LEN, MAGIC_INDEX, POSTINGS_ALIGN, SERIES_ALIGN,
};
use crate::tsdb::encoding::{crc32, uvarint_len, Encbuf};
use crate::tsdb::error::{IoContext, Result, TsdbError};
use crate::tsdb::files::{LocalOutput, OutputFile};
use crate::tsdb::labels::{write_go_quoted, Labels};

/// Sections that are streamed (symbols, postings, offset table) are encoded in batches of
/// about this many bytes, so their CRC can be computed without holding the whole section.
const ENCODE_BATCH_BYTES: usize = 64 << 10;
/// Largest value of a be32 length field.
const SECTION_LEN_MAX: u64 = u32::MAX as u64;

/// What the writer accepts next. Stages only move forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// `add_symbol` calls; the symbol table is written when the stage ends.
    Symbols,
    /// `add_series` calls.
    Series,
    /// Nothing: a write failed and the file is incomplete.
    Done,
}

/// The file being written, with the absolute offset of the next byte.
struct Output {
    file: Box<dyn OutputFile>,
    pos: u64,
    path: PathBuf,
}

impl Output {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).at(&self.path)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Zero bytes up to the next multiple of `align` (at most 16) of the absolute offset.
    fn pad_to(&mut self, align: u64) -> Result<()> {
        const ZEROS: [u8; 16] = [0; 16];
        debug_assert!(align as usize <= ZEROS.len());
        let padding = (align - self.pos % align) % align;
        self.put(&ZEROS[..padding as usize])
    }

    /// Writes `batch` and folds it into `crc`, then empties it.
    fn put_batch(&mut self, batch: &mut Encbuf, crc: &mut u32) -> Result<()> {
        *crc = crc32c::crc32c_append(*crc, &batch.buf);
        self.put(&batch.buf)?;
        batch.reset();
        Ok(())
    }
}

/// Writes an index file in format v2, Prometheus ≥ 3.7 layout.
///
/// Call [`add_symbol`](Self::add_symbol) for every symbol in order, then
/// [`add_series`](Self::add_series) for every series in label order, then
/// [`finish`](Self::finish). Calls out of order fail with [`TsdbError::Usage`] and leave the
/// writer usable; an I/O failure leaves it refusing every further call.
pub struct IndexWriter {
    out: Output,
    stage: Stage,
    toc: Toc,
    symbols: Symbols,
    /// Bytes of the symbol table after its `len` field, before the CRC: the count and entries.
    symbol_table_len: u64,
    previous_labels: Vec<(u32, u32)>,
    last_chunk_ref: u64,
    /// Reused for every series payload.
    entry: Encbuf,
    /// Reused for every series length prefix and for batches of streamed sections.
    head: Encbuf,
    /// Reused by `add_series_labels`.
    scratch_labels: Vec<(u32, u32)>,
    postings: PostingsBuilder,
    /// Offset of the last series written, and the largest distance between two consecutive
    /// series so far (Thanos' `series_max_size` estimate).
    last_series_offset: Option<u64>,
    series_gap_max: u64,
    /// Write series whose label names are not sorted (see
    /// [`accept_unsorted_label_names`](Self::accept_unsorted_label_names)).
    accept_unsorted_label_names: bool,
}

impl IndexWriter {
    /// Creates (or truncates) the index file at `path` and writes its header.
    pub fn create(path: &Path) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new(""));
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let file = crate::tsdb::files::BlockOutput::create(&LocalOutput::new(dir), &name)?;
        Self::to(file, path)
    }

    /// Writes the index into `file` (a local file or an upload to a bucket), named `path` in
    /// errors, starting with its header.
    pub fn to(file: Box<dyn OutputFile>, path: &Path) -> Result<Self> {
        let mut out = Output {
            file,
            pos: 0,
            path: path.to_path_buf(),
        };
        out.put(&MAGIC_INDEX.to_be_bytes())?;
        out.put(&[FORMAT_V2])?;
        debug_assert_eq!(out.pos, HEADER_LEN);
        Ok(IndexWriter {
            out,
            stage: Stage::Symbols,
            toc: Toc {
                symbols: HEADER_LEN,
                ..Toc::default()
            },
            symbols: Symbols::new(),
            symbol_table_len: 4,
            previous_labels: Vec::new(),
            last_chunk_ref: 0,
            entry: Encbuf::new(),
            head: Encbuf::new(),
            scratch_labels: Vec::new(),
            postings: PostingsBuilder::new(RUN_BYTES_DEFAULT),
            last_series_offset: None,
            series_gap_max: 0,
            accept_unsorted_label_names: false,
        })
    }

    /// From now on, accepts series whose label names are not sorted (names must still be
    /// unique) and writes their labels in the order given: what Prometheus' writer does with
    /// the series of an index that Prometheus 2.8.0 or older wrote, which Thanos compacts with
    /// `--debug.accept-malformed-index`. Series must still come in label order, comparing
    /// label sets pair by pair in their stored order (Prometheus' `labels.Compare`).
    pub fn accept_unsorted_label_names(&mut self) {
        self.accept_unsorted_label_names = true;
    }

    /// Adds the next symbol; symbols must be strictly increasing (bytewise).
    pub fn add_symbol(&mut self, symbol: &str) -> Result<()> {
        match self.stage {
            Stage::Symbols => {}
            Stage::Series => return Err(self.usage("add_symbol after the first series")),
            Stage::Done => return Err(self.usage("add_symbol after a failed write")),
        }
        if let Some(last) = self.symbols.last() {
            if symbol <= last {
                return Err(self.usage(format!(
                    "symbol {symbol:?} out of order: it does not sort after {last:?}"
                )));
            }
        }
        let table_len =
            self.symbol_table_len + (uvarint_len(symbol.len() as u64) + symbol.len()) as u64;
        if table_len > SECTION_LEN_MAX || self.symbols.len() >= u32::MAX as usize - 1 {
            return Err(self.usage("symbol table exceeds 4 GiB or 2^32 symbols"));
        }
        self.symbol_table_len = table_len;
        self.symbols.push(symbol);
        Ok(())
    }

    /// The reference (index) of `symbol`, if it was added.
    pub fn symbol_ref(&self, symbol: &str) -> Option<u32> {
        self.symbols.lookup(symbol)
    }

    /// The symbols added so far.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// Adds the next series: `labels` are `(name, value)` symbol references sorted by name,
    /// `chunks` its chunks in time order. Series must come in strictly increasing label order
    /// and chunk references must never decrease; a series without chunks is refused.
    pub fn add_series(&mut self, labels: &[(u32, u32)], chunks: &[ChunkMeta]) -> Result<()> {
        match self.stage {
            Stage::Symbols => self.start_series()?,
            Stage::Series => {}
            Stage::Done => return Err(self.usage("add_series after a failed write")),
        }
        self.check_labels(labels)?;
        self.check_chunks(labels, chunks)?;
        let result = self.write_series(labels, chunks);
        if result.is_err() {
            // The file may end inside an entry now; nothing written after it would be valid.
            self.stage = Stage::Done;
        }
        result
    }

    /// [`add_series`](Self::add_series) for a label set given as strings, which must all
    /// have been added as symbols.
    pub fn add_series_labels(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<()> {
        let mut refs = std::mem::take(&mut self.scratch_labels);
        refs.clear();
        let mut missing = None;
        for label in labels.iter() {
            match (self.symbol_ref(&label.name), self.symbol_ref(&label.value)) {
                (Some(name), Some(value)) => refs.push((name, value)),
                (None, _) => missing = Some(label.name.as_str()),
                (_, None) => missing = Some(label.value.as_str()),
            }
            if missing.is_some() {
                break;
            }
        }
        let result = match missing {
            Some(symbol) => {
                Err(self.usage(format!("series {labels}: symbol {symbol:?} was not added")))
            }
            None => self.add_series(&refs, chunks),
        };
        self.scratch_labels = refs;
        result
    }

    /// Test support: spill the postings records every `run_bytes` (before the first series).
    #[cfg(test)]
    pub(crate) fn spill_postings_every(&mut self, run_bytes: usize) {
        assert!(self.postings.is_empty(), "before the first series");
        self.postings = PostingsBuilder::new(run_bytes);
    }

    /// Test support: [`add_series`](Self::add_series) without the chunk checks, to write the
    /// out-of-order chunks that old writers left in some indexes.
    #[cfg(test)]
    pub(crate) fn add_series_unchecked_chunks(
        &mut self,
        labels: &[(u32, u32)],
        chunks: &[ChunkMeta],
    ) -> Result<()> {
        if self.stage == Stage::Symbols {
            self.start_series()?;
        }
        self.check_labels(labels)?;
        self.write_series(labels, chunks)
    }

    /// Writes the postings lists, the postings offset table and the TOC, fsyncs the file and
    /// returns its size in bytes.
    pub fn finish(mut self) -> Result<u64> {
        match self.stage {
            Stage::Symbols => self.start_series()?,
            Stage::Series => {}
            Stage::Done => return Err(self.usage("finish after a failed write")),
        }
        self.toc.label_indices = self.out.pos;
        self.toc.postings = self.out.pos;
        let postings = std::mem::replace(&mut self.postings, PostingsBuilder::new(0));
        let list_offsets = self.write_postings(postings)?;
        self.toc.label_offset_table = self.out.pos;
        self.toc.postings_offset_table = self.out.pos;
        self.write_postings_offset_table(&list_offsets)?;
        self.head.reset();
        self.toc.encode(&mut self.head);
        self.out.put(&self.head.buf)?;
        let size = self.out.pos;
        self.out.file.finish()?;
        Ok(size)
    }

    /// The largest distance in bytes between the starts of two consecutive series written so
    /// far: Thanos' `series_max_size` estimate of the index (0 below two series).
    pub fn series_gap_max(&self) -> u64 {
        self.series_gap_max
    }

    fn usage(&self, what: impl Into<String>) -> TsdbError {
        TsdbError::usage(&self.out.path, what)
    }

    /// Ends the symbols stage: writes the symbol table.
    fn start_series(&mut self) -> Result<()> {
        debug_assert_eq!(self.stage, Stage::Symbols);
        debug_assert_eq!(self.out.pos, self.toc.symbols);
        // Stay in `Done` if the table cannot be written completely.
        self.stage = Stage::Done;
        self.out
            .put(&(self.symbol_table_len as u32).to_be_bytes())?;
        let batch = &mut self.head;
        batch.reset();
        batch.put_be32(self.symbols.len() as u32);
        let mut crc = 0;
        for symbol in self.symbols.iter() {
            batch.put_uvarint_str(symbol);
            if batch.len() >= ENCODE_BATCH_BYTES {
                self.out.put_batch(batch, &mut crc)?;
            }
        }
        self.out.put_batch(batch, &mut crc)?;
        self.out.put(&crc.to_be_bytes())?;
        debug_assert_eq!(
            self.out.pos,
            self.toc.symbols + 4 + self.symbol_table_len + 4
        );
        self.toc.series = self.out.pos;
        self.stage = Stage::Series;
        Ok(())
    }

    /// Checks that `labels` reference known symbols, have unique nonempty names in order,
    /// and sort after the previous series.
    fn check_labels(&self, labels: &[(u32, u32)]) -> Result<()> {
        let symbol_count = self.symbols.len();
        let mut names = NameOrder::new(self.accept_unsorted_label_names);
        for (i, &(name, value)) in labels.iter().enumerate() {
            if name as usize >= symbol_count || value as usize >= symbol_count {
                return Err(self.usage(format!(
                    "label ({name}, {value}) references a symbol past the {symbol_count} added"
                )));
            }
            if names.check(&labels[..i], name).is_err() {
                return Err(self.usage(format!(
                    "labels of series {} are not sorted by unique name",
                    self.describe(labels)
                )));
            }
            if self.symbols.get(name).is_some_and(str::is_empty) {
                return Err(self.usage(format!(
                    "series {} has an empty label name",
                    self.describe(labels)
                )));
            }
        }
        if labels.len() > u32::MAX as usize {
            return Err(self.usage("series has more than 2^32 labels"));
        }
        // Symbols are sorted and unique, so comparing references compares the strings, and
        // slice order on (name, value) pairs is labels.Compare (a prefix sorts first).
        if !self.postings.is_empty() && labels <= self.previous_labels.as_slice() {
            return Err(self.usage(format!(
                "series {} out of order: it does not sort after {}",
                self.describe(labels),
                self.describe(&self.previous_labels)
            )));
        }
        Ok(())
    }

    /// Checks that `chunks` is nonempty, each chunk's range is ordered, chunks follow each
    /// other in time, and references never decrease; also that the series id fits 32 bits.
    fn check_chunks(&self, labels: &[(u32, u32)], chunks: &[ChunkMeta]) -> Result<()> {
        let bad =
            |what: String| Err(self.usage(format!("series {}: {what}", self.describe(labels))));
        if chunks.is_empty() {
            return bad("no chunks (series without chunks are not written)".into());
        }
        let mut previous: Option<&ChunkMeta> = None;
        for (i, chunk) in chunks.iter().enumerate() {
            if chunk.min_time > chunk.max_time {
                return bad(format!(
                    "chunk {i}: min time {} > max time {}",
                    chunk.min_time, chunk.max_time
                ));
            }
            let last_ref = previous.map_or(self.last_chunk_ref, |p| p.chunk_ref);
            if chunk.chunk_ref < last_ref {
                return bad(format!(
                    "chunk {i}: reference {:#x} < previous {last_ref:#x}",
                    chunk.chunk_ref
                ));
            }
            if let Some(p) = previous.filter(|p| chunk.min_time <= p.max_time) {
                return bad(format!(
                    "chunk {i}: min time {} <= previous max time {}",
                    chunk.min_time, p.max_time
                ));
            }
            previous = Some(chunk);
        }
        let offset = self.out.pos.next_multiple_of(SERIES_ALIGN);
        if offset / SERIES_ALIGN > u64::from(u32::MAX) {
            return bad(format!(
                "series offset {offset} exceeds the 64 GiB addressable by ids"
            ));
        }
        Ok(())
    }

    /// `{name="value", ...}` for error messages.
    fn describe(&self, labels: &[(u32, u32)]) -> String {
        let mut text = String::from("{");
        for (i, &(name, value)) in labels.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            text.push_str(self.symbols.get(name).unwrap_or("?"));
            text.push('=');
            // Writing to a String cannot fail.
            let _ = write_go_quoted(&mut text, self.symbols.get(value).unwrap_or("?"));
        }
        text.push('}');
        text
    }

    /// Pads, encodes and writes one checked series and records its postings.
    fn write_series(&mut self, labels: &[(u32, u32)], chunks: &[ChunkMeta]) -> Result<()> {
        self.out.pad_to(SERIES_ALIGN)?;
        debug_assert_eq!(self.out.pos % SERIES_ALIGN, 0);
        let id = u32::try_from(self.out.pos / SERIES_ALIGN).expect("checked by check_chunks");
        if let Some(last) = self.last_series_offset {
            self.series_gap_max = self.series_gap_max.max(self.out.pos - last);
        }
        self.last_series_offset = Some(self.out.pos);
        encode_series(&mut self.entry, labels, chunks);
        self.head.reset();
        self.head.put_uvarint(self.entry.len() as u64);
        let crc = crc32(&self.entry.buf);
        self.out.put(&self.head.buf)?;
        self.out.put(&self.entry.buf)?;
        self.out.put(&crc.to_be_bytes())?;
        // On failure the entry is written but not listed: the index cannot be completed.
        self.postings.add(id, labels).at(&self.out.path)?;
        self.previous_labels.clear();
        self.previous_labels.extend_from_slice(labels);
        self.last_chunk_ref = chunks.last().map_or(self.last_chunk_ref, |c| c.chunk_ref);
        Ok(())
    }

    /// Writes the all-series list, then one list per key in key order, reading the sorted
    /// records of `postings`; returns the offset of each list in that order (the all-series
    /// list's with key `None`). Only one list's ids are held at a time.
    fn write_postings(&mut self, postings: PostingsBuilder) -> Result<Vec<(Option<u64>, u64)>> {
        self.out.pad_to(POSTINGS_ALIGN)?;
        let path = self.out.path.clone();
        let mut offsets = Vec::new();
        let mut list: Option<Option<u64>> = None;
        let mut ids = Vec::new();
        for record in postings.into_sorted().at(&path)? {
            let record = record.at(&path)?;
            let key = list_of(record);
            if list != Some(key) {
                if let Some(done) = list {
                    offsets.push((done, self.write_list(&ids)?));
                } else if key.is_some() {
                    offsets.push((None, self.write_list(&[])?));
                }
                ids.clear();
                list = Some(key);
            }
            ids.push(id_of(record));
        }
        match list {
            Some(done) => offsets.push((done, self.write_list(&ids)?)),
            None => offsets.push((None, self.write_list(&[])?)),
        }
        Ok(offsets)
    }

    /// Writes one postings list at the next multiple of 4 and returns its offset.
    fn write_list(&mut self, ids: &[u32]) -> Result<u64> {
        self.out.pad_to(POSTINGS_ALIGN)?;
        let offset = self.out.pos;
        let len = 4 + 4 * ids.len() as u64;
        if len > SECTION_LEN_MAX {
            return Err(self.usage(format!("postings list of {} ids exceeds 4 GiB", ids.len())));
        }
        self.out.put(&(len as u32).to_be_bytes())?;
        let batch = &mut self.head;
        batch.reset();
        batch.put_be32(ids.len() as u32);
        let mut crc = 0;
        for &id in ids {
            batch.put_be32(id);
            if batch.len() >= ENCODE_BATCH_BYTES {
                self.out.put_batch(batch, &mut crc)?;
            }
        }
        self.out.put_batch(batch, &mut crc)?;
        self.out.put(&crc.to_be_bytes())?;
        debug_assert_eq!(self.out.pos, offset + 4 + len + 4);
        Ok(offset)
    }

    /// Writes the postings offset table: one entry per list, in list order.
    fn write_postings_offset_table(&mut self, offsets: &[(Option<u64>, u64)]) -> Result<()> {
        let strings = |key: Option<u64>| -> (&str, &str) {
            let Some(key) = key else {
                return ("", "");
            };
            let (name, value) = unpack(key);
            let symbol = |r| self.symbols.get(r).expect("checked in add_series");
            (symbol(name), symbol(value))
        };
        let entry_len = |name: &str, value: &str, offset: u64| {
            (1 + uvarint_len(name.len() as u64)
                + name.len()
                + uvarint_len(value.len() as u64)
                + value.len()
                + uvarint_len(offset)) as u64
        };
        let mut len = 4;
        for &(key, offset) in offsets {
            let (name, value) = strings(key);
            len += entry_len(name, value, offset);
        }
        if len > SECTION_LEN_MAX {
            return Err(self.usage(format!(
                "postings offset table of {len} bytes exceeds 4 GiB"
            )));
        }
        let start = self.out.pos;
        self.out.put(&(len as u32).to_be_bytes())?;
        let mut batch = Encbuf::new();
        batch.put_be32(offsets.len() as u32);
        let mut crc = 0;
        for &(key, offset) in offsets {
            let (name, value) = strings(key);
            batch.put_uvarint(2);
            batch.put_uvarint_str(name);
            batch.put_uvarint_str(value);
            batch.put_uvarint(offset);
            if batch.len() >= ENCODE_BATCH_BYTES {
                self.out.put_batch(&mut batch, &mut crc)?;
            }
        }
        self.out.put_batch(&mut batch, &mut crc)?;
        self.out.put(&crc.to_be_bytes())?;
        debug_assert_eq!(self.out.pos, start + 4 + len + 4);
        Ok(())
    }
}

/// Encodes the payload of a series entry into `e` (emptied first).
fn encode_series(e: &mut Encbuf, labels: &[(u32, u32)], chunks: &[ChunkMeta]) {
    e.reset();
    e.put_uvarint(labels.len() as u64);
    for &(name, value) in labels {
        e.put_uvarint(u64::from(name));
        e.put_uvarint(u64::from(value));
    }
    e.put_uvarint(chunks.len() as u64);
    let mut previous: Option<&ChunkMeta> = None;
    for chunk in chunks {
        // Differences are taken with wrapping arithmetic, as Go does; the reader wraps back.
        let length = chunk.max_time.wrapping_sub(chunk.min_time) as u64;
        match previous {
            None => {
                e.put_varint(chunk.min_time);
                e.put_uvarint(length);
                e.put_uvarint(chunk.chunk_ref);
            }
            Some(p) => {
                e.put_uvarint(chunk.min_time.wrapping_sub(p.max_time) as u64);
                e.put_uvarint(length);
                e.put_varint(chunk.chunk_ref.wrapping_sub(p.chunk_ref) as i64);
            }
        }
        previous = Some(chunk);
    }
}
