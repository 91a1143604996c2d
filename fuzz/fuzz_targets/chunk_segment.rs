//! The chunk segment reader never panics on an arbitrary segment file and arbitrary chunk
//! references, and every chunk it returns goes through the decoder of its encoding.
//!
//! Input: one byte `n`, then `n % 16` references of 5 bytes (a segment index byte, 0 or 1,
//! and a be32 offset), then the bytes of segment `000001`. Besides the given references the
//! target walks the records one after another from the header on, as a seed corpus of real
//! segments makes every such record a real chunk.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use compactd::tsdb::chunks::{
    ChunkRef, SegmentReader, ENCODING_AGGR, ENCODING_XOR, SEGMENT_HEADER_BYTES,
};
use compactd::tsdb::downsample::aggr::AggrChunk;
use compactd::tsdb::encoding::uvarint_len;
use compactd::tsdb::histogram::decode_chunk;
use compactd::tsdb::xor::XorIter;
use libfuzzer_sys::fuzz_target;

/// Records walked from the header at most.
const WALK_MAX: usize = 1024;

/// A per-process `chunks` directory holding the segment under test.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("compactd-fuzz-chunks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch chunks dir");
        dir
    })
}

/// Decodes a chunk with the decoder of its encoding; errors are fine, panics are not.
fn decode(encoding: u8, data: &[u8]) {
    match encoding {
        ENCODING_XOR => {
            let mut it = XorIter::new(data);
            while let Ok(Some(_)) = it.next_sample() {}
        }
        ENCODING_AGGR => {
            if let Ok(aggr) = AggrChunk::parse(data) {
                let _ = aggr.num_samples();
                let _ = aggr.is_histogram();
            }
        }
        other => {
            let _ = decode_chunk(other, data);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len() / 5);
    let (refs, segment) = rest.split_at(5 * n);
    let dir = scratch();
    std::fs::write(dir.join("000001"), segment).expect("write the scratch segment");
    let Ok(mut reader) = SegmentReader::open_with_window(dir, 4096) else {
        return;
    };
    assert_eq!(reader.segment_count(), 1);
    for r in refs.chunks_exact(5) {
        let offset = u32::from_be_bytes([r[1], r[2], r[3], r[4]]);
        if let Ok((encoding, chunk)) = reader.chunk(ChunkRef::new(u32::from(r[0] % 2), offset)) {
            decode(encoding, chunk);
        }
    }
    let mut offset = SEGMENT_HEADER_BYTES;
    for _ in 0..WALK_MAX {
        let Ok(offset32) = u32::try_from(offset) else {
            break;
        };
        let Ok((encoding, chunk)) = reader.chunk(ChunkRef::new(0, offset32)) else {
            break;
        };
        let len = chunk.len() as u64;
        decode(encoding, chunk);
        offset += uvarint_len(len) as u64 + 1 + len + 4;
    }
});
