//! [`IndexReader`]: reads an index file through a [`FileWindow`] (positional reads, no
//! mmap), so the memory it holds is the symbol table, one entry per label name, and the
//! window — never the file.
//!
//! Every section is bounds-checked against the TOC before anything is allocated, and every
//! CRC is verified before the bytes it covers are trusted: the symbol table when opening,
//! each series entry and postings list when read, the postings offset table on the first
//! lookup that needs it (reading the all-series list only needs its first entry).

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use super::cursor::{Cursor, OffsetEntry};
use super::offset_table::NameIndex;
use super::order::{NameOrder, NameOrderError};
use super::{
    ChunkMeta, Symbols, Toc, FORMAT_V1, FORMAT_V2, HEADER_LEN, MAGIC_INDEX, SERIES_ALIGN, TOC_LEN,
};
use crate::tsdb::encoding::Decbuf;
use crate::tsdb::error::{Result, TsdbError};
use crate::tsdb::labels::Labels;
use crate::tsdb::window::FileWindow;

/// Postings lists are read in batches of at most this many bytes.
const READ_BATCH_BYTES: usize = 64 << 10;

/// What the reader tolerates beyond the format's rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Accept series whose label names are not sorted (Prometheus 2.8.0 and older wrote
    /// such series; Thanos' `--debug.accept-malformed-index`). Their labels are returned in
    /// the stored order, as Prometheus' reader returns them; names must still be unique.
    pub accept_unsorted_label_names: bool,
}

/// Reads an index file, format v1 or v2.
pub struct IndexReader {
    window: FileWindow,
    path: PathBuf,
    options: ReadOptions,
    version: u8,
    toc: Toc,
    symbols: Symbols,
    /// Format v1 only: the absolute offset of each symbol, which v1 series use as reference.
    v1_symbol_offsets: Vec<u32>,
    /// Built from the postings offset table on the first lookup.
    names: Option<NameIndex>,
    entry: OffsetEntry,
}

impl IndexReader {
    /// Opens the index at `path`: checks the header and the TOC and loads the symbol table.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, ReadOptions::default())
    }

    /// [`open`](Self::open) with `options`.
    pub fn open_with(path: &Path, options: ReadOptions) -> Result<Self> {
        Self::from_window(FileWindow::open(path)?, options)
    }

    /// Reads the index behind `window` (a local file or an object in a bucket) with `options`.
    pub fn from_window(mut window: FileWindow, options: ReadOptions) -> Result<Self> {
        let path = &window.path().to_path_buf();
        let file_len = window.len();
        if file_len < HEADER_LEN + TOC_LEN {
            return Err(TsdbError::corrupt(
                path,
                0,
                format!("{file_len} bytes is too short for an index"),
            ));
        }
        let header = window.read(0, HEADER_LEN as usize, "index header")?;
        let magic = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
        if magic != MAGIC_INDEX {
            return Err(TsdbError::corrupt(
                path,
                0,
                format!("bad magic {magic:#010x}, want {MAGIC_INDEX:#010x}"),
            ));
        }
        let version = header[4];
        if version != FORMAT_V1 && version != FORMAT_V2 {
            return Err(TsdbError::corrupt(
                path,
                4,
                format!("index format v{version} not supported"),
            ));
        }
        let toc_bytes = window.read(file_len - TOC_LEN, TOC_LEN as usize, "TOC")?;
        let toc = Toc::decode(toc_bytes, file_len, path)?;
        let (symbols, v1_symbol_offsets) = read_symbols(&mut window, path, &toc, version)?;
        Ok(IndexReader {
            window,
            path: path.to_path_buf(),
            options,
            version,
            toc,
            symbols,
            v1_symbol_offsets,
            names: None,
            entry: OffsetEntry::default(),
        })
    }

    /// The format version: 1 or 2.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The table of contents.
    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    /// The symbol table (references in [`series`](Self::series) index it, even for v1).
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn file_len(&self) -> u64 {
        self.window.len()
    }

    /// Resolves `(name, value)` symbol references to a label set.
    pub fn series_labels(&self, refs: &[(u32, u32)]) -> Result<Labels> {
        let mut pairs = Vec::with_capacity(refs.len());
        for &(name, value) in refs {
            match (self.symbols.get(name), self.symbols.get(value)) {
                (Some(name), Some(value)) => pairs.push((name, value)),
                _ => {
                    return Err(TsdbError::usage(
                        &self.path,
                        format!(
                            "label ({name}, {value}) references a symbol past {}",
                            self.symbols.len()
                        ),
                    ))
                }
            }
        }
        Ok(Labels::from_pairs(pairs))
    }

    /// Reads series `id` (a postings entry): its labels as `(name, value)` symbol indices
    /// sorted by name (in stored order when [`ReadOptions::accept_unsorted_label_names`]),
    /// and its chunks. Both vectors are cleared first.
    pub fn series(
        &mut self,
        id: u32,
        labels: &mut Vec<(u32, u32)>,
        chunks: &mut Vec<ChunkMeta>,
    ) -> Result<()> {
        labels.clear();
        chunks.clear();
        let offset = match self.version {
            FORMAT_V1 => u64::from(id),
            _ => u64::from(id) * SERIES_ALIGN,
        };
        // The series section ends where the label indices (2.42) or the postings start.
        let series_end = self.toc.label_indices;
        if offset < self.toc.series || offset >= series_end {
            return Err(TsdbError::corrupt(
                &self.path,
                offset,
                format!(
                    "series {id}: outside the series section [{}, {series_end})",
                    self.toc.series
                ),
            ));
        }
        let mut c = Cursor::new(&mut self.window, &self.path, offset, series_end);
        let len = c.uvarint("series length")?;
        let payload_at = c.pos;
        if len.saturating_add(4) > series_end - payload_at {
            return Err(TsdbError::corrupt(
                &self.path,
                offset,
                format!("series {id}: entry of {len} bytes runs past the series section at {series_end}"),
            ));
        }
        let data = self.window.read(payload_at, len as usize + 4, "series")?;
        let (payload, stored) = data.split_at(len as usize);
        let stored = u32::from_be_bytes(stored.try_into().expect("4 bytes"));
        let computed = crate::tsdb::encoding::crc32(payload);
        if stored != computed {
            return Err(TsdbError::corrupt(
                &self.path,
                offset,
                format!(
                    "series {id}: CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
                ),
            ));
        }
        let v1_offsets = (self.version == FORMAT_V1).then_some(self.v1_symbol_offsets.as_slice());
        let mut d = Decbuf::new(payload, payload_at, &self.path);
        let names = NameOrder::new(self.options.accept_unsorted_label_names);
        decode_series(
            &mut d,
            &self.path,
            (&self.symbols, v1_offsets, names),
            labels,
            chunks,
        )
    }

    /// The ids of every series, in label order (the `("", "")` postings list).
    pub fn all_postings(&mut self) -> Result<Vec<u32>> {
        if self.version == FORMAT_V2 {
            // The writers put the all-series list first: one entry answers, no table scan.
            let (table, toc_start) = (self.toc.postings_offset_table, self.toc_start());
            let mut c = Cursor::new(&mut self.window, &self.path, table, toc_start);
            c.enter_section(toc_start, "postings offset table")?;
            if c.be32("postings offset table count")? > 0 {
                self.entry.read(&mut c)?;
                if self.entry.name.is_empty() && self.entry.value.is_empty() {
                    let (list, at) = (self.entry.list, self.entry.at);
                    return self.read_list(list, at);
                }
            }
        }
        match self.find_list("", "")? {
            Some((list, at)) => self.read_list(list, at),
            None => Err(TsdbError::corrupt(
                &self.path,
                self.toc.postings_offset_table,
                "no (\"\", \"\") postings list: the index does not list its series",
            )),
        }
    }

    /// The ids of the series with label `name="value"`, ascending; empty if there are none.
    pub fn postings(&mut self, name: &str, value: &str) -> Result<Vec<u32>> {
        match self.find_list(name, value)? {
            Some((list, at)) => self.read_list(list, at),
            None => Ok(Vec::new()),
        }
    }

    /// Every label name, sorted (without the empty name of the all-series list).
    pub fn label_names(&mut self) -> Result<Vec<String>> {
        Ok(self.name_index()?.names())
    }

    /// Every value of label `name`, sorted.
    pub fn label_values(&mut self, name: &str) -> Result<Vec<String>> {
        let names = self.name_index()?;
        let (ranges, sorted) = (names.ranges(name, None), names.is_sorted());
        let table_end = self.toc_start();
        let mut values = Vec::new();
        for (first, count) in ranges {
            let mut c = Cursor::new(&mut self.window, &self.path, first, table_end);
            for _ in 0..count {
                self.entry.read(&mut c)?;
                let value = std::mem::take(&mut self.entry.value);
                let value = String::from_utf8(value).map_err(|_| {
                    TsdbError::corrupt(&self.path, self.entry.at, "label value is not valid UTF-8")
                })?;
                values.push(value);
            }
        }
        if !sorted {
            values.sort_unstable();
            values.dedup();
        }
        Ok(values)
    }

    /// Where the TOC starts, which is where the postings offset table must end.
    fn toc_start(&self) -> u64 {
        self.window.len() - TOC_LEN
    }

    /// The postings list offset of `name="value"` and the offset of its table entry.
    fn find_list(&mut self, name: &str, value: &str) -> Result<Option<(u64, u64)>> {
        let names = self.name_index()?;
        let (ranges, sorted) = (names.ranges(name, Some(value)), names.is_sorted());
        let table_end = self.toc_start();
        for (first, count) in ranges {
            let mut c = Cursor::new(&mut self.window, &self.path, first, table_end);
            for _ in 0..count {
                self.entry.read(&mut c)?;
                match self.entry.value.as_slice().cmp(value.as_bytes()) {
                    Ordering::Equal => return Ok(Some((self.entry.list, self.entry.at))),
                    Ordering::Greater if sorted => return Ok(None),
                    _ => {}
                }
            }
        }
        Ok(None)
    }

    /// The name index, built on first use by one CRC-checked pass over the table.
    fn name_index(&mut self) -> Result<&NameIndex> {
        if self.names.is_none() {
            let (start, end) = (self.toc.postings_offset_table, self.toc_start());
            let mut c = Cursor::new(&mut self.window, &self.path, start, end);
            let v2 = self.version == FORMAT_V2;
            self.names = Some(NameIndex::scan(&mut c, &mut self.entry, end, v2)?);
        }
        Ok(self.names.as_ref().expect("just built"))
    }

    /// Reads and checks the postings list at `offset`, named by the table entry at `entry_at`.
    fn read_list(&mut self, offset: u64, entry_at: u64) -> Result<Vec<u32>> {
        // Postings end where the label offset table (2.42) or the postings offset table starts.
        let (start, end) = (self.toc.postings, self.toc.label_offset_table);
        if offset < start || offset.saturating_add(8) > end {
            return Err(TsdbError::corrupt(
                &self.path,
                entry_at,
                format!("postings list offset {offset} is outside the postings section [{start}, {end})"),
            ));
        }
        let mut c = Cursor::new(&mut self.window, &self.path, offset, end);
        let len = c.enter_section(end, "postings list")?;
        let count = c.be32("postings list count")?;
        if len != 4 + 4 * u64::from(count) {
            return Err(TsdbError::corrupt(
                &self.path,
                offset,
                format!("postings list of {len} bytes cannot hold {count} ids"),
            ));
        }
        // `count` is now bounded by the section size, so the allocation is too.
        let mut ids = Vec::with_capacity(count as usize);
        let mut left = count as usize;
        while left > 0 {
            let n = left.min(READ_BATCH_BYTES / 4);
            let bytes = c.take(4 * n, "postings list ids")?;
            ids.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes"))),
            );
            left -= n;
        }
        c.check_crc("postings list")?;
        if let Some(i) = ids.windows(2).position(|w| w[0] >= w[1]) {
            return Err(TsdbError::corrupt(
                &self.path,
                offset + 8 + 4 * (i as u64 + 1),
                format!(
                    "postings list: id {} does not follow {}",
                    ids[i + 1],
                    ids[i]
                ),
            ));
        }
        Ok(ids)
    }
}

/// Loads the symbol table at `toc.symbols`, checking its bounds, CRC, UTF-8 and order.
/// Returns the table and, for format v1, the absolute offset of each symbol.
fn read_symbols(
    window: &mut FileWindow,
    path: &Path,
    toc: &Toc,
    version: u8,
) -> Result<(Symbols, Vec<u32>)> {
    let start = toc.symbols;
    let mut c = Cursor::new(window, path, start, toc.series);
    let len = c.enter_section(toc.series, "symbol table")?;
    let count = c.be32("symbol count")?;
    // Every symbol takes at least its one-byte length.
    if u64::from(count) > len.saturating_sub(4) {
        return Err(TsdbError::corrupt(
            path,
            start + 4,
            format!("symbol table: {count} symbols cannot fit in {len} bytes"),
        ));
    }
    let mut symbols = Symbols::new();
    symbols.starts.reserve(count as usize);
    symbols.text.reserve((len - 4 - u64::from(count)) as usize);
    let mut v1_offsets = Vec::new();
    for i in 0..count {
        let at = c.pos;
        let n = c.uvarint("symbol length")?;
        let bytes = c.take(usize::try_from(n).unwrap_or(usize::MAX), "symbol")?;
        let symbol = std::str::from_utf8(bytes)
            .map_err(|_| TsdbError::corrupt(path, at, format!("symbol {i} is not valid UTF-8")))?;
        if let Some(last) = symbols.last().filter(|&last| symbol <= last) {
            return Err(TsdbError::corrupt(
                path,
                at,
                format!("symbol {i} {symbol:?} does not sort after {last:?}"),
            ));
        }
        symbols.push(symbol);
        if version == FORMAT_V1 {
            let at = u32::try_from(at)
                .map_err(|_| TsdbError::corrupt(path, at, "v1 symbol offset exceeds 32 bits"))?;
            v1_offsets.push(at);
        }
    }
    c.check_crc("symbol table")?;
    Ok((symbols, v1_offsets))
}

/// Decodes a series payload. `v1_offsets` translates v1 symbol offsets to indices; `names`
/// checks the order of the label names.
fn decode_series(
    d: &mut Decbuf<'_>,
    path: &Path,
    (symbols, v1_offsets, mut names): (&Symbols, Option<&[u32]>, NameOrder),
    labels: &mut Vec<(u32, u32)>,
    chunks: &mut Vec<ChunkMeta>,
) -> Result<()> {
    let resolve = |d: &mut Decbuf<'_>, what: &str| -> Result<u32> {
        let at = d.offset();
        let reference = d.uvarint32(what)?;
        let index = match v1_offsets {
            Some(offsets) => offsets.binary_search(&reference).ok(),
            None => Some(reference as usize).filter(|&i| i < symbols.len()),
        };
        let bad = || TsdbError::corrupt(path, at, format!("{what} {reference} is not a symbol"));
        index.map(|i| i as u32).ok_or_else(bad)
    };
    let count = d.uvarint("label count")?;
    if count > d.remaining() as u64 / 2 {
        return Err(d.corrupt(format!(
            "{count} labels cannot fit in {} bytes",
            d.remaining()
        )));
    }
    labels.reserve(count as usize);
    for _ in 0..count {
        let at = d.offset();
        let name = resolve(d, "label name")?;
        let value = resolve(d, "label value")?;
        if let Err(e) = names.check(labels, name) {
            return Err(TsdbError::corrupt(
                path,
                at,
                name_order_error(symbols, name, e),
            ));
        }
        labels.push((name, value));
    }
    let count = d.uvarint("chunk count")?;
    if count > d.remaining() as u64 / 3 {
        return Err(d.corrupt(format!(
            "{count} chunks cannot fit in {} bytes",
            d.remaining()
        )));
    }
    chunks.reserve(count as usize);
    // Deltas are added with wrapping arithmetic, exactly as Go decodes them.
    let mut previous: Option<ChunkMeta> = None;
    for _ in 0..count {
        let chunk = match previous {
            None => {
                let min_time = d.varint("chunk min time")?;
                let max_time = min_time.wrapping_add(d.uvarint("chunk duration")? as i64);
                ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref: d.uvarint("chunk ref")?,
                }
            }
            Some(p) => {
                let min_time = p.max_time.wrapping_add(d.uvarint("chunk gap")? as i64);
                let max_time = min_time.wrapping_add(d.uvarint("chunk duration")? as i64);
                ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref: p
                        .chunk_ref
                        .wrapping_add(d.varint("chunk ref delta")? as u64),
                }
            }
        };
        chunks.push(chunk);
        previous = Some(chunk);
    }
    if d.remaining() != 0 {
        return Err(d.corrupt(format!("{} bytes left after the last chunk", d.remaining())));
    }
    Ok(())
}

/// The text of a label-name order error, naming the labels.
fn name_order_error(symbols: &Symbols, name: u32, e: NameOrderError) -> String {
    let text = |r: u32| symbols.get(r).unwrap_or("?").to_string();
    match e {
        NameOrderError::Repeated => format!("label name {:?} appears twice in a series", text(name)),
        NameOrderError::Unsorted { previous } => format!(
            "label names are not sorted: {:?} follows {:?} (an index written by Prometheus 2.8.0 or older; --debug.accept-malformed-index accepts it)",
            text(name),
            text(previous)
        ),
    }
}
