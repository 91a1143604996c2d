//! One input block of a compaction: a cursor over its series in label order (the order of the
//! all-series postings list, or for a relabelled input the order of the new label sets, where
//! one output series may gather several block series) and the source chunks of the current
//! series, after the block's time range and each block series' tombstones were applied as
//! Prometheus does: a chunk entirely inside a deleted interval is dropped, a chunk touching
//! none is kept byte for byte, any other is re-encoded into one chunk of its surviving samples.

use std::ops::Range;

use super::super::block::BlockReader;
use super::super::chunks::{ChunkRef, ENCODING_XOR};
use super::super::error::{Result, TsdbError};
use super::super::index::{first_out_of_order_chunk, ChunkMeta, Symbols};
use super::super::labels::Labels;
use super::super::tombstones::Interval;
use super::super::xor::{XorEncoder, XorIter};

/// A chunk of the current series, its bytes held in the series arena.
#[derive(Clone, Debug)]
pub(super) struct SourceChunk {
    /// First sample timestamp.
    pub min_time: i64,
    /// Last sample timestamp (inclusive).
    pub max_time: i64,
    /// Chunk encoding byte.
    pub encoding: u8,
    /// The chunk data (without the encoding byte) in the arena.
    pub data: Range<usize>,
    /// Which input it came from.
    pub input: usize,
    /// Where the bytes came from, when copied unchanged from the input.
    pub origin: Option<ChunkRef>,
}

/// The order an input's series are walked in.
pub(super) enum Order {
    /// The index's all-series postings: each series with its labels as stored.
    Stored(Vec<u32>),
    /// Series with new labels, sorted by them ([`super::relabelled`]).
    Relabelled(Vec<RelabelledSeries>),
}

/// One output series of a relabelled input: its new labels (refs into the input's own
/// symbol table) and the block's series that got them, in postings order.
pub(super) struct RelabelledSeries {
    /// The new labels, sorted by name.
    pub labels: Vec<(u32, u32)>,
    /// The series ids (one unless relabelling made label sets equal).
    pub ids: Vec<u32>,
}

/// Labels as `(name, value)` symbol refs.
type LabelRefs = [(u32, u32)];

/// One block series behind the current output series.
struct Member {
    id: u32,
    /// Its labels as stored, in [`Input::raw_labels`].
    raw: Range<usize>,
    /// Its chunks, in [`Input::chunks`].
    chunks: Range<usize>,
}

/// An input block with a cursor on its current series.
pub(super) struct Input {
    pub block: BlockReader,
    sym_map: Vec<u32>,
    order: Order,
    next: usize,
    current: bool,
    labels: Vec<(u32, u32)>,
    members: Vec<Member>,
    raw_labels: Vec<(u32, u32)>,
    chunks: Vec<ChunkMeta>,
    scratch_labels: Vec<(u32, u32)>,
    scratch_chunks: Vec<ChunkMeta>,
    position: usize,
}

impl Input {
    /// Opens the cursor on the first series of `block`, walked in `order` (`None`: the
    /// index's). `sym_map` maps the refs of the labels walked (the block's, or the relabelled
    /// order's own table) to output refs. `position` is the input's index among the
    /// compaction's inputs.
    pub fn new(
        mut block: BlockReader,
        sym_map: Vec<u32>,
        position: usize,
        order: Option<Order>,
    ) -> Result<Self> {
        let order = match order {
            Some(o) => o,
            None => Order::Stored(block.index.all_postings()?),
        };
        let mut input = Input {
            block,
            sym_map,
            order,
            next: 0,
            current: false,
            labels: Vec::new(),
            members: Vec::new(),
            raw_labels: Vec::new(),
            chunks: Vec::new(),
            scratch_labels: Vec::new(),
            scratch_chunks: Vec::new(),
            position,
        };
        input.advance()?;
        Ok(input)
    }

    /// The current series' labels as output symbol refs; `None` when exhausted.
    pub fn current_labels(&self) -> Option<&[(u32, u32)]> {
        self.current.then_some(self.labels.as_slice())
    }

    /// The stored labels of member `m` of the current series as strings (for messages).
    fn member_labels_text(&self, m: usize) -> String {
        let raw = self
            .members
            .get(m)
            .map_or(&[][..], |m| &self.raw_labels[m.raw.clone()]);
        labels_text(self.block.index.symbols(), raw)
    }

    /// Moves to the next series. A series whose chunks are out of time order fails with
    /// [`TsdbError::OutOfOrderChunks`], before any of its chunks is read: Thanos refuses such
    /// a block before compacting it.
    pub fn advance(&mut self) -> Result<()> {
        self.members.clear();
        self.raw_labels.clear();
        self.chunks.clear();
        self.labels.clear();
        let (ids, relabelled): (&[u32], Option<&LabelRefs>) = match &self.order {
            Order::Stored(postings) => match postings.get(self.next) {
                Some(id) => (std::slice::from_ref(id), None),
                None => (&[], None),
            },
            Order::Relabelled(series) => match series.get(self.next) {
                Some(s) => (&s.ids, Some(&s.labels)),
                None => (&[], None),
            },
        };
        self.current = !ids.is_empty();
        if !self.current {
            return Ok(());
        }
        self.next += 1;
        for &id in ids {
            self.block
                .index
                .series(id, &mut self.scratch_labels, &mut self.scratch_chunks)?;
            let (raw_start, chunks_start) = (self.raw_labels.len(), self.chunks.len());
            self.raw_labels.extend_from_slice(&self.scratch_labels);
            self.chunks.extend_from_slice(&self.scratch_chunks);
            self.members.push(Member {
                id,
                raw: raw_start..self.raw_labels.len(),
                chunks: chunks_start..self.chunks.len(),
            });
            if let Some(i) = first_out_of_order_chunk(&self.scratch_chunks) {
                return Err(self.out_of_order(self.members.len() - 1, i));
            }
        }
        let walked = relabelled.unwrap_or(&self.raw_labels);
        let mut labels = Vec::with_capacity(walked.len());
        for &(n, v) in walked {
            labels.push((self.map_symbol(n)?, self.map_symbol(v)?));
        }
        self.labels = labels;
        Ok(())
    }

    /// The error for chunk `i` of member `m`, which does not follow chunk `i - 1`.
    fn out_of_order(&self, m: usize, i: usize) -> TsdbError {
        let chunks = &self.chunks[self.members[m].chunks.clone()];
        debug_assert!(i > 0 && i < chunks.len(), "a chunk with a predecessor");
        let (previous, chunk) = (chunks[i - 1], chunks[i]);
        TsdbError::OutOfOrderChunks {
            block: self.block.meta.ulid,
            file: self.block.index.path().to_path_buf(),
            what: format!(
                "series {}: chunk {i} [{}, {}] starts at or before the end of chunk {} [{}, {}]",
                self.member_labels_text(m),
                chunk.min_time,
                chunk.max_time,
                i - 1,
                previous.min_time,
                previous.max_time
            ),
        }
    }

    fn map_symbol(&self, r: u32) -> Result<u32> {
        self.sym_map.get(r as usize).copied().ok_or_else(|| {
            TsdbError::corrupt(
                self.block.index.path(),
                0,
                format!(
                    "series references symbol {r}, the table has {}",
                    self.sym_map.len()
                ),
            )
        })
    }

    /// Appends the current series' chunks (of every member), with the block range and each
    /// member's tombstones applied, to `out`, their bytes to `arena`.
    pub fn source_chunks(&mut self, arena: &mut Vec<u8>, out: &mut Vec<SourceChunk>) -> Result<()> {
        assert!(self.current, "source_chunks on an exhausted input");
        for m in 0..self.members.len() {
            self.member_source_chunks(m, arena, out)?;
        }
        Ok(())
    }

    fn member_source_chunks(
        &mut self,
        m: usize,
        arena: &mut Vec<u8>,
        out: &mut Vec<SourceChunk>,
    ) -> Result<()> {
        let meta = &self.block.meta;
        let member = &self.members[m];
        let mut deleted: Vec<Interval> = self.block.tombstones.get(u64::from(member.id)).to_vec();
        deleted.push(Interval {
            min_time: i64::MIN,
            max_time: meta.min_time.saturating_sub(1),
        });
        deleted.push(Interval {
            min_time: meta.max_time,
            max_time: i64::MAX,
        });
        for i in member.chunks.clone() {
            let c = self.chunks[i];
            if deleted
                .iter()
                .any(|d| d.min_time <= c.min_time && c.max_time <= d.max_time)
            {
                continue;
            }
            let (encoding, data) = self.block.chunks.chunk(ChunkRef(c.chunk_ref))?;
            let touched = deleted
                .iter()
                .any(|d| d.min_time <= c.max_time && c.min_time <= d.max_time);
            let start = arena.len();
            let origin = (!touched).then_some(ChunkRef(c.chunk_ref));
            let (min_time, max_time) = if touched {
                if encoding != ENCODING_XOR {
                    return Err(TsdbError::Unsupported(format!(
                        "series {} in block {} has deleted or out-of-range samples in a chunk of encoding {encoding}; only float (XOR) chunks can be cut",
                        self.member_labels_text(m),
                        self.block.meta.ulid
                    )));
                }
                match filter_xor(data, &deleted, arena) {
                    Ok(Some(range)) => range,
                    Ok(None) => continue,
                    Err(what) => {
                        return Err(self.chunk_corrupt(m, ChunkRef(c.chunk_ref), &what));
                    }
                }
            } else {
                arena.extend_from_slice(data);
                (c.min_time, c.max_time)
            };
            out.push(SourceChunk {
                min_time,
                max_time,
                encoding,
                data: start..arena.len(),
                input: self.position,
                origin,
            });
        }
        Ok(())
    }

    /// An error for an undecodable chunk of member `m` of the current series.
    fn chunk_corrupt(&self, m: usize, r: ChunkRef, what: &str) -> TsdbError {
        let file = self
            .block
            .dir
            .join(super::super::block::CHUNKS_DIRNAME)
            .join(format!("{:06}", r.segment() + 1));
        TsdbError::corrupt(
            &file,
            u64::from(r.offset()),
            format!("chunk of series {}: {what}", self.member_labels_text(m)),
        )
    }
}

/// `raw` (refs into `symbols`) as a label set's text.
fn labels_text(symbols: &Symbols, raw: &[(u32, u32)]) -> String {
    let s = |r: u32| symbols.get(r).unwrap_or("?").to_string();
    Labels::from_pairs(raw.iter().map(|&(n, v)| (s(n), s(v)))).to_string()
}

/// Re-encodes the samples of an XOR chunk that lie outside `deleted` into `arena`; returns the
/// new chunk's time range, or `None` when nothing survives.
fn filter_xor(
    data: &[u8],
    deleted: &[Interval],
    arena: &mut Vec<u8>,
) -> std::result::Result<Option<(i64, i64)>, String> {
    let mut enc = XorEncoder::new();
    let mut range: Option<(i64, i64)> = None;
    let mut it = XorIter::new(data);
    while let Some((t, v)) = it.next_sample().map_err(|e| e.to_string())? {
        if deleted.iter().any(|d| d.contains(t)) {
            continue;
        }
        enc.append(t, v);
        range = Some((range.map_or(t, |r| r.0), t));
    }
    if range.is_some() {
        arena.extend_from_slice(enc.bytes());
    }
    Ok(range)
}

/// Samples in a chunk, from its header.
pub(super) fn chunk_num_samples(encoding: u8, data: &[u8]) -> u64 {
    let be16 = |d: &[u8]| {
        d.get(..2)
            .map_or(0, |b| u64::from(u16::from_be_bytes([b[0], b[1]])))
    };
    match encoding {
        5 | 6 => be16(data) & 0x3fff,
        super::super::chunks::ENCODING_AGGR => aggr_count_samples(data),
        _ => be16(data),
    }
}

/// The sample count of a Thanos aggregate chunk: that of its first (count) sub-chunk.
fn aggr_count_samples(data: &[u8]) -> u64 {
    match super::super::encoding::read_uvarint(data) {
        Some((len, n)) if len > 0 => data
            .get(n + 1..n + 3)
            .map_or(0, |b| u64::from(u16::from_be_bytes([b[0], b[1]]))),
        _ => 0,
    }
}

/// True for float sample encodings (XOR, XOR2).
pub(super) fn is_float_encoding(encoding: u8) -> bool {
    matches!(encoding, 1 | 4)
}

/// True for native histogram encodings.
pub(super) fn is_histogram_encoding(encoding: u8) -> bool {
    matches!(encoding, 2 | 3 | 5 | 6)
}
