//! Chunk segment files, `chunks/000001…`: writing them byte-identically to Prometheus 2.42's
//! `chunks.Writer`, and reading chunks back by reference with every check an operator needs.
//!
//! A segment starts with an 8-byte header, `be32 0x85BD40DD | u8 1 | 3 zero bytes`, followed by
//! records packed back to back: `uvarint len | u8 encoding | data[len] | be32 CRC32C(encoding,
//! data)`. A [`ChunkRef`] is `segment_index << 32 | offset`, with a 0-based segment index
//! (file `000001` is index 0) and the offset of the record's length field.
//!
//! The writer receives all chunks of one series at a time, because Prometheus decides where
//! to start a new segment per series (see [`SegmentWriter::write_series_chunks`]). The reader
//! reads through one [`FileWindow`] per segment, never `mmap`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::CHUNKS_DIRNAME;
use super::encoding::{crc32, read_uvarint};
use super::error::{IoContext, Result, TsdbError};
use super::files::{BlockFiles, BlockOutput, LocalBlockFiles, LocalOutput, OutputFile, ReadAt};
use super::window::{FileWindow, WINDOW_BYTES_DEFAULT};

/// Magic number at the start of every segment file.
pub const SEGMENT_MAGIC: u32 = 0x85BD_40DD;
/// The only segment format version.
pub const SEGMENT_VERSION: u8 = 1;
/// Size of the segment header: magic, version, 3 bytes of padding.
pub const SEGMENT_HEADER_BYTES: u64 = 8;
/// Prometheus' default segment size, 512 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

/// Encoding byte of a Prometheus XOR float chunk.
pub const ENCODING_XOR: u8 = 1;
/// Encoding byte of a native histogram chunk.
pub const ENCODING_HISTOGRAM: u8 = 2;
/// Encoding byte of a float native histogram chunk.
pub const ENCODING_FLOAT_HISTOGRAM: u8 = 3;
/// Encoding byte of a Thanos downsampling aggregate chunk.
pub const ENCODING_AGGR: u8 = 0xFF;

/// Length-field size Prometheus assumes when sizing a record (`binary.MaxVarintLen32`).
const LENGTH_FIELD_BYTES_MAX: u64 = 5;
/// Encoding byte plus CRC: the fixed part of a record besides the length field.
const ENCODING_AND_CRC_BYTES: u64 = 1 + 4;

/// Where a chunk record lives: `segment_index << 32 | byte_offset`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkRef(pub u64);

impl ChunkRef {
    /// The record at `offset` in the segment with 0-based index `segment_index0`.
    pub fn new(segment_index0: u32, offset: u32) -> Self {
        ChunkRef((u64::from(segment_index0) << 32) | u64::from(offset))
    }

    /// The 0-based segment index (file `000001` is 0).
    pub fn segment(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The byte offset of the record in its segment.
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// The file name of the segment with 0-based index `segment_index0`: `000001` for 0.
pub fn segment_file_name(segment_index0: u32) -> String {
    format!("{:06}", u64::from(segment_index0) + 1)
}

/// Prometheus' estimate of a record's size when deciding segment cuts: it counts the length
/// field as 5 bytes whatever its real size.
fn estimated_record_bytes(data_len: usize) -> u64 {
    LENGTH_FIELD_BYTES_MAX + ENCODING_AND_CRC_BYTES + data_len as u64
}

/// The indices of the chunks of one series before which a new segment starts, replicating
/// Go's `WriteChunks` batching. `bytes_in_segment` is what the current segment already holds
/// (0 when none exists yet). The first batch accounts for those bytes and may be empty (a cut
/// before chunk 0); later batches only count their own chunks plus the header, and a chunk
/// that alone exceeds the segment size still gets a segment.
fn plan_cuts(
    data_lens: impl Iterator<Item = usize>,
    bytes_in_segment: u64,
    segment_size: u64,
    cuts: &mut Vec<usize>,
) {
    cuts.clear();
    let mut batch_bytes = 0u64;
    let mut first_batch = true;
    for (i, data_len) in data_lens.enumerate() {
        let record_bytes = estimated_record_bytes(data_len);
        batch_bytes += record_bytes;
        let mut cut = i != 0 && batch_bytes + SEGMENT_HEADER_BYTES > segment_size;
        if first_batch && bytes_in_segment > SEGMENT_HEADER_BYTES {
            cut = batch_bytes + bytes_in_segment > segment_size;
            if cut {
                first_batch = false;
            }
        }
        if cut {
            cuts.push(i);
            batch_bytes = record_bytes;
        }
    }
}

/// The segment being written.
struct Tail {
    out: Box<dyn OutputFile>,
    path: PathBuf,
    name: String,
}

/// Writes the chunk segment files of a new block.
pub struct SegmentWriter {
    output: Arc<dyn BlockOutput>,
    /// The segments' directory relative to `output`: `""` or `chunks`.
    rel_dir: &'static str,
    /// Where errors say the segments are.
    dir: PathBuf,
    segment_size: u64,
    tail: Option<Tail>,
    /// Segments created so far.
    segment_count: u32,
    /// Bytes written to the tail segment, header included; 0 before the first segment.
    tail_bytes: u64,
    total_bytes: u64,
    finished: Vec<(String, u64)>,
    cuts: Vec<usize>,
}

impl SegmentWriter {
    /// Creates `chunks_dir` (it must hold no segment files yet). Segments are cut at about
    /// `segment_size` bytes; 0 means [`DEFAULT_SEGMENT_SIZE`], as in Go.
    pub fn create(chunks_dir: &Path, segment_size: u64) -> Result<Self> {
        std::fs::create_dir_all(chunks_dir).at(chunks_dir)?;
        for entry in std::fs::read_dir(chunks_dir).at(chunks_dir)? {
            let name = entry.at(chunks_dir)?.file_name();
            if parse_segment_number(&name.to_string_lossy()).is_some() {
                return Err(TsdbError::usage(
                    chunks_dir,
                    format!("already holds segment file {}", name.to_string_lossy()),
                ));
            }
        }
        Ok(Self::new(
            Arc::new(LocalOutput::new(chunks_dir)),
            "",
            chunks_dir.to_path_buf(),
            segment_size,
        ))
    }

    /// Writes the segments under `chunks/` of `output` (a local block directory or a block
    /// in a bucket), cut as [`Self::create`] cuts them.
    pub fn to(output: Arc<dyn BlockOutput>, segment_size: u64) -> Self {
        let dir = output.location().join(CHUNKS_DIRNAME);
        Self::new(output, CHUNKS_DIRNAME, dir, segment_size)
    }

    fn new(
        output: Arc<dyn BlockOutput>,
        rel_dir: &'static str,
        dir: PathBuf,
        segment_size: u64,
    ) -> Self {
        SegmentWriter {
            output,
            rel_dir,
            dir,
            segment_size: if segment_size == 0 {
                DEFAULT_SEGMENT_SIZE
            } else {
                segment_size
            },
            tail: None,
            segment_count: 0,
            tail_bytes: 0,
            total_bytes: 0,
            finished: Vec::new(),
            cuts: Vec::new(),
        }
    }

    /// Writes all chunks of one series, given as `(encoding, data)`, and appends their refs
    /// to `refs` in order. Segment cuts follow Prometheus 2.42 `Writer.WriteChunks` exactly,
    /// so equal inputs give byte-identical files: sizes are estimated with a 5-byte length
    /// field; a series whose first chunks would overflow the current segment starts a new one;
    /// later chunks of the series are cut into batches that each fit a fresh segment; and a
    /// new segment is only opened when chunks follow. An empty `chunks` writes nothing (Go
    /// would create the first segment; compaction never writes a series without chunks).
    pub fn write_series_chunks(
        &mut self,
        chunks: &[(u8, &[u8])],
        refs: &mut Vec<ChunkRef>,
    ) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut cuts = std::mem::take(&mut self.cuts);
        plan_cuts(
            chunks.iter().map(|(_, data)| data.len()),
            self.tail_bytes,
            self.segment_size,
            &mut cuts,
        );
        debug_assert!(cuts.windows(2).all(|w| w[0] < w[1]), "cuts increase");
        let result = self.write_planned(chunks, &cuts, refs);
        self.cuts = cuts;
        result
    }

    fn write_planned(
        &mut self,
        chunks: &[(u8, &[u8])],
        cuts: &[usize],
        refs: &mut Vec<ChunkRef>,
    ) -> Result<()> {
        if self.tail.is_none() {
            self.cut()?;
        }
        let mut next_cut = cuts.iter().peekable();
        for (i, &(encoding, data)) in chunks.iter().enumerate() {
            if next_cut.next_if_eq(&&i).is_some() {
                self.cut()?;
            }
            refs.push(self.write_record(encoding, data)?);
        }
        Ok(())
    }

    /// Appends one record to the tail segment.
    fn write_record(&mut self, encoding: u8, data: &[u8]) -> Result<ChunkRef> {
        let tail = self
            .tail
            .as_mut()
            .expect("a segment is open before writing");
        let offset = u32::try_from(self.tail_bytes).map_err(|_| {
            TsdbError::usage(
                &tail.path,
                "segment grew past 4 GiB: chunk offsets overflow",
            )
        })?;
        let data_len = u32::try_from(data.len())
            .map_err(|_| TsdbError::usage(&tail.path, format!("chunk of {} bytes", data.len())))?;
        let mut head = [0u8; 6];
        let mut head_len = 0;
        let mut len = u64::from(data_len);
        while len >= 0x80 {
            head[head_len] = (len as u8) | 0x80;
            len >>= 7;
            head_len += 1;
        }
        head[head_len] = len as u8;
        head[head_len + 1] = encoding;
        head_len += 2;
        let crc = crc32c::crc32c_append(crc32c::crc32c(&[encoding]), data);
        tail.out.write_all(&head[..head_len]).at(&tail.path)?;
        tail.out.write_all(data).at(&tail.path)?;
        tail.out.write_all(&crc.to_be_bytes()).at(&tail.path)?;
        let record_bytes = (head_len + data.len() + 4) as u64;
        self.tail_bytes += record_bytes;
        self.total_bytes += record_bytes;
        Ok(ChunkRef::new(self.segment_count - 1, offset))
    }

    /// Finishes the tail segment and starts the next one.
    fn cut(&mut self) -> Result<()> {
        self.finish_tail()?;
        let index = self.segment_count;
        let name = segment_file_name(index);
        let path = self.dir.join(&name);
        let rel = if self.rel_dir.is_empty() {
            name.clone()
        } else {
            format!("{}/{name}", self.rel_dir)
        };
        let mut out = self.output.create(&rel)?;
        out.write_all(&segment_header()).at(&path)?;
        self.segment_count = index
            .checked_add(1)
            .ok_or_else(|| TsdbError::usage(&self.dir, "too many segments"))?;
        self.tail = Some(Tail { out, path, name });
        self.tail_bytes = SEGMENT_HEADER_BYTES;
        self.total_bytes += SEGMENT_HEADER_BYTES;
        Ok(())
    }

    /// Flushes and fsyncs the tail segment and records its size.
    fn finish_tail(&mut self) -> Result<()> {
        let Some(tail) = self.tail.take() else {
            return Ok(());
        };
        tail.out.finish()?;
        self.finished
            .push((format!("chunks/{}", tail.name), self.tail_bytes));
        Ok(())
    }

    /// Bytes written to all segments so far, headers included.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Number of segment files created so far.
    pub fn segment_count(&self) -> u32 {
        self.segment_count
    }

    /// Flushes and fsyncs every segment and the directory. Returns each segment's path
    /// relative to the block (`chunks/000001`) and size in bytes, in order; empty when no
    /// chunk was written, which leaves an empty `chunks` directory as Prometheus does.
    pub fn finish(mut self) -> Result<Vec<(String, u64)>> {
        self.finish_tail()?;
        self.output.finish_dir(self.rel_dir)?;
        Ok(std::mem::take(&mut self.finished))
    }
}

fn segment_header() -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    header[..4].copy_from_slice(&SEGMENT_MAGIC.to_be_bytes());
    header[4] = SEGMENT_VERSION;
    header
}

/// The number of a segment file name, as Go's `strconv.ParseUint` would accept it.
fn parse_segment_number(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// One segment of a [`SegmentReader`]: its source, wrapped in a window on first use.
struct Segment {
    path: PathBuf,
    source: Option<Box<dyn ReadAt>>,
    window: Option<FileWindow>,
}

/// Reads chunks of a block's `chunks` directory by [`ChunkRef`].
pub struct SegmentReader {
    dir: PathBuf,
    segments: Vec<Segment>,
    window_bytes: usize,
}

impl SegmentReader {
    /// Opens `chunks_dir`: its segment files must be `000001`…`N` without gaps, and each must
    /// start with a valid header. Files with non-numeric names are ignored, as in Go.
    pub fn open(chunks_dir: &Path) -> Result<Self> {
        Self::open_with_window(chunks_dir, WINDOW_BYTES_DEFAULT)
    }

    /// [`Self::open`], reading each segment through a window of `window_bytes`.
    pub fn open_with_window(chunks_dir: &Path, window_bytes: usize) -> Result<Self> {
        Self::open_files(&LocalBlockFiles::segments_in(chunks_dir, window_bytes))
    }

    /// Opens the `chunks/` segments of `files` (a local block or one in a bucket), with the
    /// same checks as [`Self::open`].
    pub fn open_files(files: &dyn BlockFiles) -> Result<Self> {
        let chunks_dir = files.path_of(CHUNKS_DIRNAME);
        let mut numbered: Vec<(u64, String)> = files
            .chunk_names()?
            .into_iter()
            .filter_map(|name| parse_segment_number(&name).map(|n| (n, name)))
            .collect();
        numbered.sort();
        let mut segments = Vec::with_capacity(numbered.len());
        for (i, (number, name)) in numbered.into_iter().enumerate() {
            let expected = segment_file_name(i as u32);
            if number != i as u64 + 1 || name != expected {
                return Err(TsdbError::corrupt(
                    &chunks_dir,
                    0,
                    format!("segment files are not 000001…N: expected {expected}, found {name}"),
                ));
            }
            let path = files.path_of(&format!("{CHUNKS_DIRNAME}/{name}"));
            let mut source = files.open(&format!("{CHUNKS_DIRNAME}/{name}"))?;
            check_header(source.as_mut(), &path)?;
            segments.push(Segment {
                path,
                source: Some(source),
                window: None,
            });
        }
        Ok(SegmentReader {
            dir: chunks_dir,
            segments,
            window_bytes: files.window_bytes(),
        })
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Paths of the segment files, in order.
    pub fn segment_paths(&self) -> impl Iterator<Item = &Path> + '_ {
        self.segments.iter().map(|s| s.path.as_path())
    }

    /// The encoding and data of the chunk at `r`, after checking that the segment exists,
    /// the record lies inside it and its CRC matches. Errors name the segment file and offset.
    pub fn chunk(&mut self, r: ChunkRef) -> Result<(u8, &[u8])> {
        let offset = u64::from(r.offset());
        let segment_count = self.segments.len();
        let Some(segment) = self.segments.get_mut(r.segment() as usize) else {
            return Err(TsdbError::corrupt(
                &self.dir.join(segment_file_name(r.segment())),
                offset,
                format!(
                    "chunk ref {:#x}: segment does not exist ({} segments in {})",
                    r.0,
                    segment_count,
                    self.dir.display()
                ),
            ));
        };
        let Segment {
            path,
            source,
            window,
        } = segment;
        if let Some(source) = source.take() {
            *window = Some(FileWindow::over(source, path, self.window_bytes));
        }
        let window = window.as_mut().expect("opened with its source");
        read_record(window, path, offset)
    }
}

/// Checks the magic number and version of the segment `source`, named `path` in errors.
fn check_header(source: &mut dyn ReadAt, path: &Path) -> Result<()> {
    let len = source.len();
    if len < SEGMENT_HEADER_BYTES {
        return Err(TsdbError::corrupt(
            path,
            0,
            format!("segment header: file has {len} bytes, need {SEGMENT_HEADER_BYTES}"),
        ));
    }
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    source.read_exact_at(&mut header, 0).at(path)?;
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if magic != SEGMENT_MAGIC {
        return Err(TsdbError::corrupt(
            path,
            0,
            format!("bad segment magic {magic:#010x}, want {SEGMENT_MAGIC:#010x}"),
        ));
    }
    if header[4] != SEGMENT_VERSION {
        return Err(TsdbError::corrupt(
            path,
            4,
            format!("unsupported segment version {}", header[4]),
        ));
    }
    Ok(())
}

/// Reads and verifies the record at `offset` of the segment `path` read through `window`:
/// `(encoding, data)`.
fn read_record<'w>(window: &'w mut FileWindow, path: &Path, offset: u64) -> Result<(u8, &'w [u8])> {
    let file_len = window.len();
    let corrupt = |what: String| TsdbError::corrupt(path, offset, what);
    if offset < SEGMENT_HEADER_BYTES || offset >= file_len {
        return Err(corrupt(format!(
            "chunk offset outside the records of a {file_len}-byte segment"
        )));
    }
    let head = window.read_up_to(offset, LENGTH_FIELD_BYTES_MAX as usize)?;
    let Some((data_len, len_bytes)) = read_uvarint(head) else {
        return Err(corrupt("invalid chunk length".to_string()));
    };
    // The length field bounds the read below, so check it against the file first.
    let record_end = (offset + len_bytes as u64)
        .checked_add(data_len)
        .and_then(|end| end.checked_add(ENCODING_AND_CRC_BYTES));
    let record_bytes = match record_end {
        Some(end) if end <= file_len => (end - offset) as usize,
        _ => {
            return Err(corrupt(format!(
                "chunk of {data_len} bytes runs past the end of the {file_len}-byte segment"
            )))
        }
    };
    let record = window.read(offset, record_bytes, "chunk")?;
    let (body, crc) = record[len_bytes..].split_at(record_bytes - len_bytes - 4);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32(body);
    if stored != computed {
        return Err(corrupt(format!(
            "chunk CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    debug_assert_eq!(
        body.len() as u64,
        1 + data_len,
        "record body is encoding + data"
    );
    Ok((body[0], &body[1..]))
}

#[cfg(test)]
mod tests;
