//! Merging the source chunks of one series across inputs, as Prometheus' compacting chunk
//! merger does: chunks sorted by (min time, max time); a chunk that overlaps no other is kept
//! byte for byte; an exact duplicate of another chunk is dropped; a run of overlapping float
//! chunks is decoded, merged by the [`DedupFunc`] (one sample per timestamp, the earliest input
//! winning a tie, or Thanos' penalty deduplication) and re-encoded in chunks of
//! [`SAMPLES_PER_CHUNK`](super::SAMPLES_PER_CHUNK) samples.
//! A run that holds native histogram chunks (encodings 2 and 3) is decoded and merged the same
//! way, then re-encoded by [`SeriesEncoder`] as Prometheus' `seriesToChunkEncoder` does: a new
//! chunk when the sample type changes, after 120 samples, or where the histogram appender
//! starts one (counter resets, layout changes), recoding chunks when buckets appear.
//! Overlapping chunks of any other encoding (Thanos aggregates, XOR2, start-timestamp
//! histograms, unknown encodings) are an error naming the series and the blocks, never silent
//! loss.

use super::super::chunks::{ChunkRef, ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM, ENCODING_XOR};
use super::super::histogram::{decode_chunk, CutHeaders, SampleValue, SeriesEncoder};
use super::super::xor::{XorEncoder, XorIter};
use super::dedup::{merge_runs, DedupFunc};
use super::series::SourceChunk;
use super::SAMPLES_PER_CHUNK;

/// Why a series could not be merged. Plain data, so that merging can run on a worker thread;
/// the writer turns it into an error naming the series and the blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MergeFailure {
    /// Overlapping chunks of an encoding that cannot be merged (Thanos aggregates, XOR2,
    /// start-timestamp histograms, unknown encodings).
    Unmergeable {
        /// The encodings of the overlapping chunks.
        encodings: Vec<u8>,
        /// The inputs they came from.
        inputs: Vec<usize>,
    },
    /// An overlapping chunk did not decode (or, never expected, its merged samples did not
    /// re-encode: then `origin` is `None`).
    Undecodable {
        /// The input it came from.
        input: usize,
        /// Its location when copied unchanged from the input.
        origin: Option<ChunkRef>,
        /// The decoder's message.
        what: String,
    },
}

/// Turns `sources` (all chunks of one series) into output chunks appended to `out`; re-encoded
/// chunk bytes are appended to `arena`. `samples` is a reusable buffer.
pub(super) fn merge_series_chunks(
    sources: &mut [SourceChunk],
    dedup: DedupFunc,
    arena: &mut Vec<u8>,
    samples: &mut Vec<(i64, f64)>,
    out: &mut Vec<SourceChunk>,
) -> Result<(), MergeFailure> {
    sources.sort_by_key(|c| (c.min_time, c.max_time));
    let mut start = 0;
    while start < sources.len() {
        let mut end = start + 1;
        let mut run_max = sources[start].max_time;
        while end < sources.len() && sources[end].min_time <= run_max {
            run_max = run_max.max(sources[end].max_time);
            end += 1;
        }
        let group = unique_chunks(&sources[start..end], arena);
        if group.len() == 1 {
            out.push(group[0].clone());
        } else {
            merge_overlapping(&group, dedup, arena, samples, out)?;
        }
        start = end;
    }
    Ok(())
}

/// The chunks of an overlapping run without exact duplicates (same range and bytes).
fn unique_chunks(group: &[SourceChunk], arena: &[u8]) -> Vec<SourceChunk> {
    let mut unique: Vec<SourceChunk> = Vec::with_capacity(group.len());
    for c in group {
        let duplicate = unique.iter().any(|u| {
            u.min_time == c.min_time
                && u.max_time == c.max_time
                && u.encoding == c.encoding
                && arena[u.data.clone()] == arena[c.data.clone()]
        });
        if !duplicate {
            unique.push(c.clone());
        }
    }
    unique
}

fn merge_overlapping(
    group: &[SourceChunk],
    dedup: DedupFunc,
    arena: &mut Vec<u8>,
    samples: &mut Vec<(i64, f64)>,
    out: &mut Vec<SourceChunk>,
) -> Result<(), MergeFailure> {
    if group.iter().any(|c| !is_mergeable(c.encoding)) {
        let mut inputs: Vec<usize> = group.iter().map(|c| c.input).collect();
        inputs.sort_unstable();
        inputs.dedup();
        return Err(MergeFailure::Unmergeable {
            encodings: group.iter().map(|c| c.encoding).collect(),
            inputs,
        });
    }
    if group.iter().any(|c| c.encoding != ENCODING_XOR) {
        return merge_with_histograms(group, dedup, arena, out);
    }
    let runs = merge_order(group, dedup)
        .into_iter()
        .map(|c| decode_float_chunk(c, arena))
        .collect::<Result<Vec<_>, _>>()?;
    merge_runs(dedup, &runs, samples);
    let input = group[0].input;
    for part in samples.chunks(SAMPLES_PER_CHUNK) {
        let mut enc = XorEncoder::new();
        for &(t, v) in part {
            enc.append(t, v);
        }
        let start = arena.len();
        arena.extend_from_slice(enc.bytes());
        out.push(SourceChunk {
            min_time: part[0].0,
            max_time: part[part.len() - 1].0,
            encoding: ENCODING_XOR,
            data: start..arena.len(),
            input,
            origin: None,
        });
    }
    Ok(())
}

/// True for the encodings whose samples can be decoded and merged.
fn is_mergeable(encoding: u8) -> bool {
    matches!(
        encoding,
        ENCODING_XOR | ENCODING_HISTOGRAM | ENCODING_FLOAT_HISTOGRAM
    )
}

/// The chunks in the order the dedup function takes them: chunk order (min time, max time,
/// input) for the penalty fold; input order for the chain merge, whose first run wins a tie.
fn merge_order(group: &[SourceChunk], dedup: DedupFunc) -> Vec<&SourceChunk> {
    let mut order: Vec<&SourceChunk> = group.iter().collect();
    if dedup == DedupFunc::Chain {
        order.sort_by_key(|c| c.input);
    }
    order
}

/// A run with native histogram chunks (and maybe XOR chunks): decoded, merged like floats,
/// re-encoded with the histogram appenders' rules.
fn merge_with_histograms(
    group: &[SourceChunk],
    dedup: DedupFunc,
    arena: &mut Vec<u8>,
    out: &mut Vec<SourceChunk>,
) -> Result<(), MergeFailure> {
    let runs = merge_order(group, dedup)
        .into_iter()
        .map(|c| decode_any_chunk(c, arena))
        .collect::<Result<Vec<_>, _>>()?;
    let mut samples = Vec::new();
    merge_runs(dedup, &runs, &mut samples);
    // Samples of one merged series change type only where the series did; the encoder cuts
    // there, and no previous appender is consulted for headers, as in Prometheus' compactor.
    let input = group[0].input;
    let mut encoder = SeriesEncoder::new(CutHeaders::Compaction);
    for (t, v) in &samples {
        encoder
            .append(*t, v)
            .map_err(|e| MergeFailure::Undecodable {
                input,
                origin: None,
                what: e.to_string(),
            })?;
    }
    for chunk in encoder.finish() {
        let start = arena.len();
        arena.extend_from_slice(&chunk.data);
        out.push(SourceChunk {
            min_time: chunk.min_time,
            max_time: chunk.max_time,
            encoding: chunk.encoding,
            data: start..arena.len(),
            input,
            origin: None,
        });
    }
    Ok(())
}

/// The samples of an XOR or native histogram chunk.
fn decode_any_chunk(
    c: &SourceChunk,
    arena: &[u8],
) -> Result<Vec<(i64, SampleValue)>, MergeFailure> {
    if c.encoding == ENCODING_XOR {
        let floats = decode_float_chunk(c, arena)?;
        return Ok(floats
            .into_iter()
            .map(|(t, v)| (t, SampleValue::Float(v)))
            .collect());
    }
    decode_chunk(c.encoding, &arena[c.data.clone()]).map_err(|e| MergeFailure::Undecodable {
        input: c.input,
        origin: c.origin,
        what: e.to_string(),
    })
}

/// The samples of an XOR chunk.
fn decode_float_chunk(c: &SourceChunk, arena: &[u8]) -> Result<Vec<(i64, f64)>, MergeFailure> {
    let mut it = XorIter::new(&arena[c.data.clone()]);
    let mut run = Vec::with_capacity(usize::from(it.num_samples()));
    loop {
        match it.next_sample() {
            Ok(Some(s)) => run.push(s),
            Ok(None) => return Ok(run),
            Err(e) => {
                return Err(MergeFailure::Undecodable {
                    input: c.input,
                    origin: c.origin,
                    what: e.to_string(),
                })
            }
        }
    }
}
