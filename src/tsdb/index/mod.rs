//! The block `index` file, format v2: which series a block holds, their label sets and chunk
//! metadata, and the postings lists that map each label pair to the series carrying it.
//!
//! [`IndexWriter`] writes the Prometheus ≥ 3.7 layout (no label-index sections, no label
//! offset table); [`IndexReader`] reads that layout, the 2.42 layout that still has those
//! sections (it ignores them), and format v1. All integers are big-endian, every CRC is
//! CRC32-Castagnoli and every padding is zero bytes relative to the absolute file offset.
//!
//! ```text
//! header    be32 0xBAAAD700 | u8 version (2)
//! symbols   be32 len | be32 #symbols | #symbols × (uvarint len, bytes) | be32 CRC
//!           (len and CRC cover the count and the entries; symbols are sorted and unique,
//!           a symbol reference is the index in this list)
//! series    per series, in labels.Compare order: zero pad to 16,
//!           uvarint len | payload | be32 CRC(payload); series id = offset / 16
//!           payload: uvarint #labels | #labels × (uvarint name ref, uvarint value ref)
//!                    uvarint #chunks | varint mint_0 | uvarint maxt_0 - mint_0 | uvarint ref_0
//!                    | per later chunk: uvarint mint_i - maxt_(i-1) | uvarint maxt_i - mint_i
//!                    | varint ref_i - ref_(i-1)
//! [label indices, label offset table: 2.42 only, never read]
//! postings  TOC.postings is the offset before a zero pad to 4; each list is padded to 4:
//!           be32 len | be32 #ids | #ids × be32 series id (ascending) | be32 CRC
//!           lists: ("", "") = every series first, then each name, each value, sorted
//! postings offset table
//!           be32 len | be32 #entries | #entries × (uvarint 2, str name, str value,
//!           uvarint offset of the list) | be32 CRC, in the order of the lists
//! TOC       be64 × (symbols, series, label indices, label offset table, postings,
//!           postings offset table) | be32 CRC; in the ≥ 3.7 layout label indices ==
//!           postings and label offset table == postings offset table
//! ```
//!
//! Format v1 (Prometheus 2.0–2.x) differs in that symbol references and series ids are
//! absolute byte offsets, and its postings offset table is unsorted. The reader translates
//! v1 symbol offsets to indices, so its callers always see indices.
//!
//! Files: `writer` (stages, series entries, streamed sections), `postings` (the in-memory
//! postings of the writer), `reader`, `all_series` (the reader's walk over every series),
//! `cursor` (bounded CRC-checking reads for the reader), `offset_table` (the reader's sparse
//! index of the postings offset table) and `order` (the label-name and chunk order rules
//! both apply).

mod all_series;
mod cursor;
mod offset_table;
mod order;
mod postings;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use all_series::{IndexSeries, IndexSeriesIter};
pub use order::first_out_of_order_chunk;
pub use reader::{IndexReader, ReadOptions};
pub use writer::IndexWriter;

use super::encoding::{Decbuf, Encbuf};
use super::error::{Result, TsdbError};

/// The first four bytes of every index file.
pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
/// Format version 1: symbol references and series ids are byte offsets.
pub const FORMAT_V1: u8 = 1;
/// Format version 2, the one written here.
pub const FORMAT_V2: u8 = 2;
/// Bytes of the header (magic and version).
pub const HEADER_LEN: u64 = 5;
/// Bytes of the table of contents at the end of the file: six be64 and a be32 CRC.
pub const TOC_LEN: u64 = 6 * 8 + 4;
/// Series entries start at multiples of this, and a v2 series id is offset / 16.
pub const SERIES_ALIGN: u64 = 16;
/// Postings lists start at multiples of this.
pub const POSTINGS_ALIGN: u64 = 4;

/// One chunk of a series, as the index stores it: its time range (both ends inclusive) and
/// where the chunk lives in the segment files (`segment index << 32 | byte offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChunkMeta {
    /// Timestamp of the chunk's first sample, in milliseconds.
    pub min_time: i64,
    /// Timestamp of the chunk's last sample, in milliseconds.
    pub max_time: i64,
    /// The chunk reference (a plain `u64` so this module does not depend on `chunks`).
    pub chunk_ref: u64,
}

/// The table of contents: the absolute offset at which each section starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Toc {
    /// The symbol table.
    pub symbols: u64,
    /// The first series (unaligned: the padding of the first series follows).
    pub series: u64,
    /// The label indices (2.42), or the end of the series section (== `postings`).
    pub label_indices: u64,
    /// The label offset table (2.42), or `== postings_offset_table`.
    pub label_offset_table: u64,
    /// The postings lists (before their first padding).
    pub postings: u64,
    /// The postings offset table.
    pub postings_offset_table: u64,
}

impl Toc {
    /// The fields in file order.
    fn fields(&self) -> [u64; 6] {
        [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_offset_table,
            self.postings,
            self.postings_offset_table,
        ]
    }

    /// Appends the 52-byte encoding, CRC included.
    pub fn encode(&self, e: &mut Encbuf) {
        let start = e.len();
        for field in self.fields() {
            e.put_be64(field);
        }
        e.put_crc_since(start);
        debug_assert_eq!((e.len() - start) as u64, TOC_LEN);
    }

    /// Decodes and validates the TOC of a `file_len`-byte file from its last [`TOC_LEN`]
    /// bytes (`bytes` starts at `file_len - TOC_LEN`): the CRC must match, and the sections
    /// must be in file order between the header and the TOC.
    pub fn decode(bytes: &[u8], file_len: u64, file: &Path) -> Result<Toc> {
        let start = file_len - TOC_LEN;
        let mut d = Decbuf::new(bytes, start, file);
        let body = d.bytes(6 * 8, "TOC")?;
        let stored = d.be32("TOC CRC")?;
        let computed = super::encoding::crc32(body);
        if stored != computed {
            return Err(TsdbError::corrupt(
                file,
                start + 6 * 8,
                format!("TOC CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"),
            ));
        }
        let mut d = Decbuf::new(body, start, file);
        let toc = Toc {
            symbols: d.be64("TOC symbols")?,
            series: d.be64("TOC series")?,
            label_indices: d.be64("TOC label indices")?,
            label_offset_table: d.be64("TOC label offset table")?,
            postings: d.be64("TOC postings")?,
            postings_offset_table: d.be64("TOC postings offset table")?,
        };
        toc.validate(start, file)?;
        Ok(toc)
    }

    /// Checks that the sections follow each other between the header and `toc_start`.
    fn validate(&self, toc_start: u64, file: &Path) -> Result<()> {
        const NAMES: [&str; 6] = [
            "symbols",
            "series",
            "label indices",
            "label offset table",
            "postings",
            "postings offset table",
        ];
        // File order: symbols, series, label indices, postings, label offset table,
        // postings offset table (the TOC lists postings after the label offset table).
        const ORDER: [usize; 6] = [0, 1, 2, 4, 3, 5];
        let fields = self.fields();
        let mut previous = HEADER_LEN;
        for index in ORDER {
            let offset = fields[index];
            if offset < previous || offset > toc_start {
                return Err(TsdbError::corrupt(
                    file,
                    toc_start + 8 * index as u64,
                    format!(
                        "TOC {} offset {offset} is outside [{previous}, {toc_start}]",
                        NAMES[index]
                    ),
                ));
            }
            previous = offset;
        }
        Ok(())
    }
}

/// The symbol table in memory: every string back to back in one `String`, plus where each
/// one starts, so that a million symbols cost two allocations rather than a million.
#[derive(Clone, Debug)]
pub struct Symbols {
    text: String,
    /// `starts[i]..starts[i + 1]` is symbol `i` in `text`; one more entry than symbols.
    starts: Vec<u32>,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols::new()
    }
}

impl Symbols {
    /// An empty table.
    pub fn new() -> Self {
        Symbols {
            text: String::new(),
            starts: vec![0],
        }
    }

    /// A table of `symbols`, which the caller gives sorted and unique, under 4 GiB in total.
    pub fn from_sorted<'a>(symbols: impl IntoIterator<Item = &'a str>) -> Self {
        let mut table = Symbols::new();
        for s in symbols {
            debug_assert!(table.last().is_none_or(|l| l < s), "sorted and unique");
            table.push(s);
        }
        table
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// True when the table holds no symbol.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Symbol `index`, if there is one.
    pub fn get(&self, index: u32) -> Option<&str> {
        let index = index as usize;
        let start = *self.starts.get(index)? as usize;
        let end = *self.starts.get(index + 1)? as usize;
        Some(&self.text[start..end])
    }

    /// The index of `symbol`, by binary search (the table is sorted).
    pub fn lookup(&self, symbol: &str) -> Option<u32> {
        let (mut low, mut high) = (0usize, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            let candidate = self.get(middle as u32)?;
            match candidate.cmp(symbol) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(middle as u32),
            }
        }
        None
    }

    /// The last symbol, if any.
    pub fn last(&self) -> Option<&str> {
        self.len().checked_sub(1).and_then(|i| self.get(i as u32))
    }

    /// The symbols in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.starts
            .windows(2)
            .map(|w| &self.text[w[0] as usize..w[1] as usize])
    }

    /// Total bytes of all symbols.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Appends `symbol`. The caller checks the order and that the total stays under 4 GiB.
    fn push(&mut self, symbol: &str) {
        debug_assert!(self.text.len() + symbol.len() <= u32::MAX as usize);
        self.text.push_str(symbol);
        self.starts.push(self.text.len() as u32);
    }
}
