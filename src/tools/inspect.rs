//! `compactd tools inspect`: prints a block's meta and contents and verifies it end to end:
//! every index and chunk CRC, every XOR and native histogram chunk decodes to the sample count
//! and time range the index states, AggrChunks parse, series are strictly ordered, chunks lie
//! inside the block's range, and the counts match `meta.json`. Problems are collected (up to a bound) rather than stopping at
//! the first, so one run lists what is wrong with a damaged block.

use std::fmt::Write as _;
use std::path::Path;

use crate::tsdb::block::BlockReader;
use crate::tsdb::chunks::{
    ChunkRef, SegmentReader, ENCODING_AGGR, ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM,
    ENCODING_XOR,
};
use crate::tsdb::downsample::aggr::AggrChunk;
use crate::tsdb::histogram::decode_chunk;
use crate::tsdb::index::ChunkMeta;
use crate::tsdb::labels::Labels;
use crate::tsdb::meta::BlockStats;
use crate::tsdb::xor::XorIter;
use crate::tsdb::Result;

/// Problems listed before inspection stops counting them.
pub const PROBLEMS_MAX: usize = 100;

/// The outcome of inspecting one block.
#[derive(Debug, Default)]
pub struct Inspection {
    /// Human-readable description of the block.
    pub summary: String,
    /// What is wrong; empty for a healthy block.
    pub problems: Vec<String>,
    /// What was counted while reading.
    pub counted: BlockStats,
    /// Chunks per encoding byte.
    pub chunks_by_encoding: std::collections::BTreeMap<u8, u64>,
}

/// Inspects the block in `dir`. An error means the block could not be opened at all.
pub fn inspect(dir: &Path) -> Result<Inspection> {
    let mut block = BlockReader::open(dir)?;
    let mut ins = Inspection::default();
    let mut prev: Option<Labels> = None;
    // The index walk borrows the index; the chunks are read beside it, one by one, so that
    // each damaged chunk is a problem of its own.
    let BlockReader {
        index,
        chunks,
        meta,
        ..
    } = &mut block;
    let range = (meta.min_time, meta.max_time);
    for series in index.all_series()? {
        if ins.problems.len() >= PROBLEMS_MAX {
            ins.problems
                .push(format!("stopped after {PROBLEMS_MAX} problems"));
            break;
        }
        let series = match series {
            Ok(series) => series,
            Err(e) => {
                ins.problems.push(e.to_string());
                continue;
            }
        };
        let labels = series.labels;
        if prev.as_ref().is_some_and(|p| *p >= labels) {
            ins.problems
                .push(format!("series {labels} is out of order in the index"));
        }
        ins.counted.num_series += 1;
        for c in &series.chunks {
            check_chunk(chunks, range, &labels, c, &mut ins);
        }
        prev = Some(labels);
    }
    ins.counted.num_tombstones = block.tombstones.num_intervals();
    compare_stats(&block, &mut ins);
    ins.summary = summary(&block, &ins);
    Ok(ins)
}

/// Checks chunk `c` of the series `labels` against the block's time range `(min, max)`.
fn check_chunk(
    chunks: &mut SegmentReader,
    (min, max): (i64, i64),
    labels: &Labels,
    c: &ChunkMeta,
    ins: &mut Inspection,
) {
    ins.counted.num_chunks += 1;
    if c.min_time < min || c.max_time >= max {
        ins.problems.push(format!(
            "series {labels}: chunk [{}, {}] lies outside the block range [{min}, {max})",
            c.min_time, c.max_time
        ));
    }
    let (encoding, data) = match chunks.chunk(ChunkRef(c.chunk_ref)) {
        Ok(x) => x,
        Err(e) => {
            ins.problems.push(e.to_string());
            return;
        }
    };
    *ins.chunks_by_encoding.entry(encoding).or_default() += 1;
    if encoding == ENCODING_AGGR {
        // A downsampled block: its samples are the windows of the count aggregate.
        match AggrChunk::parse(data) {
            Ok(aggr) => ins.counted.num_samples += aggr.num_samples(),
            Err(e) => ins
                .problems
                .push(format!("series {labels}: chunk {:#x}: {e}", c.chunk_ref)),
        }
        return;
    }
    let n = u64::from(crate::tsdb::xor::num_samples(data).unwrap_or(0));
    ins.counted.num_samples += n;
    let checked = match encoding {
        ENCODING_XOR => {
            ins.counted.num_float_samples += n;
            check_xor(data, c)
        }
        ENCODING_HISTOGRAM | ENCODING_FLOAT_HISTOGRAM => {
            ins.counted.num_histogram_samples += n;
            check_histogram(encoding, data, c)
        }
        other => Err(format!("unknown chunk encoding {other}")),
    };
    if let Err(what) = checked {
        ins.problems
            .push(format!("series {labels}: chunk {:#x}: {what}", c.chunk_ref));
    }
}

/// Decodes an XOR chunk and checks it against its index entry.
fn check_xor(data: &[u8], c: &ChunkMeta) -> std::result::Result<(), String> {
    let mut it = XorIter::new(data);
    let mut times = Vec::new();
    while let Some((t, _)) = it.next_sample().map_err(|e| e.to_string())? {
        times.push(t);
    }
    check_times(&times, c)
}

/// Decodes a native histogram chunk and checks it against its index entry.
fn check_histogram(encoding: u8, data: &[u8], c: &ChunkMeta) -> std::result::Result<(), String> {
    let samples = decode_chunk(encoding, data).map_err(|e| e.to_string())?;
    let times: Vec<i64> = samples.iter().map(|s| s.0).collect();
    check_times(&times, c)
}

/// Checks a chunk's sample times: increasing, at least one, spanning the index entry's range.
fn check_times(times: &[i64], c: &ChunkMeta) -> std::result::Result<(), String> {
    let (mut first, mut last, mut count) = (None, None::<i64>, 0u32);
    for &t in times {
        if last.is_some_and(|l| t <= l) {
            return Err(format!("timestamp {t} does not increase"));
        }
        first.get_or_insert(t);
        last = Some(t);
        count += 1;
    }
    if count == 0 {
        return Err("chunk has no samples".into());
    }
    if first != Some(c.min_time) || last != Some(c.max_time) {
        return Err(format!(
            "samples span [{}, {}] but the index says [{}, {}]",
            first.unwrap_or_default(),
            last.unwrap_or_default(),
            c.min_time,
            c.max_time
        ));
    }
    Ok(())
}

fn compare_stats(block: &BlockReader, ins: &mut Inspection) {
    let m = &block.meta.stats;
    let c = &ins.counted;
    for (what, stated, counted) in [
        ("numSeries", m.num_series, c.num_series),
        ("numChunks", m.num_chunks, c.num_chunks),
        ("numSamples", m.num_samples, c.num_samples),
    ] {
        if stated != counted {
            ins.problems.push(format!(
                "{}: stats.{what} is {stated} but the block holds {counted}",
                block.dir.join("meta.json").display()
            ));
        }
    }
}

fn summary(block: &BlockReader, ins: &Inspection) -> String {
    let m = &block.meta;
    let mut s = String::new();
    let _ = writeln!(s, "block {} ({})", m.ulid, block.dir.display());
    let _ = writeln!(
        s,
        "  time range   [{}, {}) ({})",
        m.min_time,
        m.max_time,
        crate::duration::format_duration_ms((m.max_time - m.min_time).max(0) as u64)
    );
    let _ = writeln!(
        s,
        "  compaction   level {}, {} sources, {} parents{}",
        m.compaction.level,
        m.compaction.sources.len(),
        m.compaction.parents.len(),
        if m.compaction.failed { ", FAILED" } else { "" }
    );
    if let Some(t) = &m.thanos {
        let labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        let _ = writeln!(
            s,
            "  thanos       labels {{{}}}, resolution {}ms, source {:?}",
            labels.join(", "),
            t.downsample.resolution,
            t.source
        );
    }
    let _ = writeln!(
        s,
        "  index        format v{}, {} symbols, {} bytes",
        block.index.version(),
        block.index.symbols().len(),
        block.index.file_len()
    );
    let _ = writeln!(
        s,
        "  chunks       {} segment files",
        block.chunks.segment_count()
    );
    let c = &ins.counted;
    let _ = writeln!(
        s,
        "  contents     {} series, {} chunks, {} samples ({} float, {} histogram), {} tombstones",
        c.num_series,
        c.num_chunks,
        c.num_samples,
        c.num_float_samples,
        c.num_histogram_samples,
        c.num_tombstones
    );
    let encodings: Vec<String> = ins
        .chunks_by_encoding
        .iter()
        .map(|(e, n)| format!("{e}: {n}"))
        .collect();
    let _ = writeln!(s, "  encodings    {{{}}}", encodings.join(", "));
    s
}
