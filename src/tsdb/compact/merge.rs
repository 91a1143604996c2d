//! Merging the source chunks of one series across inputs, as Prometheus' compacting chunk
//! merger does: chunks sorted by (min time, max time); a chunk that overlaps no other is kept
//! byte for byte; an exact duplicate of another chunk is dropped; a run of overlapping float
//! chunks is decoded, merged with one sample per timestamp (the earliest input wins a tie) and
//! re-encoded in chunks of [`SAMPLES_PER_CHUNK`](super::SAMPLES_PER_CHUNK) samples.
//! Overlapping chunks of any other encoding (native histograms) are an error naming the series
//! and the blocks, never silent loss.

use super::super::chunks::ENCODING_XOR;
use super::super::error::{Result, TsdbError};
use super::super::xor::{XorEncoder, XorIter};
use super::series::{Input, SourceChunk};
use super::SAMPLES_PER_CHUNK;

/// What the merge needs to know about the series for error messages.
pub(super) struct MergeContext<'a> {
    /// All inputs of the compaction.
    pub inputs: &'a [Input],
    /// The inputs holding the current series.
    pub members: &'a [usize],
}

/// Turns `sources` (all chunks of one series) into the output chunks `out`; re-encoded chunk
/// bytes are appended to `arena`. `samples` is a reusable buffer.
pub(super) fn merge_series_chunks(
    ctx: &MergeContext<'_>,
    sources: &mut [SourceChunk],
    arena: &mut Vec<u8>,
    samples: &mut Vec<(i64, f64)>,
    out: &mut Vec<SourceChunk>,
) -> Result<()> {
    out.clear();
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
            merge_overlapping(ctx, &group, arena, samples, out)?;
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
    ctx: &MergeContext<'_>,
    group: &[SourceChunk],
    arena: &mut Vec<u8>,
    samples: &mut Vec<(i64, f64)>,
    out: &mut Vec<SourceChunk>,
) -> Result<()> {
    if group.iter().any(|c| c.encoding != ENCODING_XOR) {
        return Err(overlap_error(ctx, group));
    }
    samples.clear();
    let mut order: Vec<&SourceChunk> = group.iter().collect();
    order.sort_by_key(|c| c.input);
    for c in order {
        let mut it = XorIter::new(&arena[c.data.clone()]);
        loop {
            match it.next_sample() {
                Ok(Some(s)) => samples.push(s),
                Ok(None) => break,
                Err(e) => return Err(decode_error(ctx, c, &e.to_string())),
            }
        }
    }
    // Stable: of samples sharing a timestamp, the one from the earliest input comes first.
    samples.sort_by_key(|s| s.0);
    samples.dedup_by_key(|s| s.0);
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

fn overlap_error(ctx: &MergeContext<'_>, group: &[SourceChunk]) -> TsdbError {
    let series = ctx.inputs[ctx.members[0]].current_labels_text();
    let mut blocks: Vec<String> = group
        .iter()
        .map(|c| ctx.inputs[c.input].block.meta.ulid.to_string())
        .collect();
    blocks.dedup();
    let encodings: Vec<String> = group.iter().map(|c| c.encoding.to_string()).collect();
    TsdbError::Unsupported(format!(
        "series {series} has overlapping chunks of encodings [{}] in blocks [{}]; only float (XOR) chunks can be merged, native histogram merging is not supported yet",
        encodings.join(", "),
        blocks.join(", ")
    ))
}

fn decode_error(ctx: &MergeContext<'_>, c: &SourceChunk, what: &str) -> TsdbError {
    let input = &ctx.inputs[c.input];
    match c.origin {
        Some(r) => input.chunk_corrupt(r, what),
        // Re-encoded chunks were produced by our own encoder from decoded samples.
        None => TsdbError::Unsupported(format!(
            "re-encoded chunk of series {} does not decode: {what}",
            input.current_labels_text()
        )),
    }
}
