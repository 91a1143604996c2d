//! Reading a downsampled block back as a whole, for checks: how many raw samples it stands
//! for, from its count aggregates.

use std::path::Path;

use super::super::block::{BlockReader, CHUNKS_DIRNAME};
use super::super::chunks::{segment_file_name, ChunkRef, ENCODING_AGGR, ENCODING_XOR};
use super::super::error::{Result, TsdbError};
use super::super::xor::XorIter;
use super::aggr::{Aggr, AggrChunk};

/// The number of raw samples the downsampled block in `dir` was made from: the sum of the
/// count aggregate's values over every chunk of every series. Fails on a chunk that is not an
/// aggregate chunk, on an aggregate chunk without a count aggregate, on a count that is not a
/// whole non-negative number and on anything that does not decode; errors name the segment
/// file and the offset of the chunk.
pub fn count_samples_in_block(dir: &Path) -> Result<u64> {
    let mut block = BlockReader::open(dir)?;
    let mut total: u64 = 0;
    for series in block.series()? {
        for c in &series?.chunks {
            let r = ChunkRef(c.meta.chunk_ref);
            let file = dir
                .join(CHUNKS_DIRNAME)
                .join(segment_file_name(r.segment()));
            let corrupt = |what: String| TsdbError::corrupt(&file, u64::from(r.offset()), what);
            let encoding = c.encoding;
            if encoding != ENCODING_AGGR {
                return Err(corrupt(format!(
                    "chunk encoding {encoding}, not an aggregate chunk"
                )));
            }
            let aggr = AggrChunk::parse(&c.data).map_err(|e| corrupt(e.to_string()))?;
            let count = match aggr.get(Aggr::Count) {
                Some(sub) if sub.encoding == ENCODING_XOR => sub,
                _ => return Err(corrupt("no XOR count aggregate".into())),
            };
            let mut it = XorIter::new(count.data);
            while let Some((_, v)) = it.next_sample().map_err(|e| corrupt(e.to_string()))? {
                if !(v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64) {
                    return Err(corrupt(format!("count aggregate value {v}")));
                }
                total = total.saturating_add(v as u64);
            }
        }
    }
    Ok(total)
}
