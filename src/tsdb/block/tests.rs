//! [`BlockReader::series`] and the index walk under it: index order, an empty block, and
//! damage reported as errors that name the block, never as panics.

use std::path::{Path, PathBuf};

use super::*;
use crate::tsdb::block_writer::BlockWriter;
use crate::tsdb::chunks::{ChunkRef, DEFAULT_SEGMENT_SIZE, ENCODING_XOR};
use crate::tsdb::index::{IndexReader, SERIES_ALIGN};
use crate::tsdb::labels::Labels;
use crate::tsdb::xor::XorIter;

const HOUR: i64 = 3_600_000;
/// Samples are 15 s apart.
const STEP_MS: i64 = 15_000;

fn labels(name: &str, i: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("i", i)])
}

/// `n` float samples from 0, [`STEP_MS`] apart, valued by index.
fn samples(n: usize) -> Vec<(i64, f64)> {
    (0..n).map(|k| (k as i64 * STEP_MS, k as f64)).collect()
}

/// Writes block `id` into `dest` holding `series` (label order), each with `n` samples.
fn write_block(dest: &Path, id: u128, series: &[(Labels, usize)]) -> PathBuf {
    let id = BlockId::from_parts(1_000, id);
    let mut symbols: Vec<&str> = series
        .iter()
        .flat_map(|(l, _)| l.iter().flat_map(|p| [p.name.as_str(), p.value.as_str()]))
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    let mut w = BlockWriter::create(dest, id, symbols, DEFAULT_SEGMENT_SIZE).unwrap();
    for (l, n) in series {
        w.add_float_series(l, &samples(*n)).unwrap();
    }
    let meta = BlockMeta::level1(id, 0, 2 * HOUR);
    w.finish(meta, &Tombstones::default()).unwrap().0
}

/// Three series: three chunks (120 samples each at most), one, one.
fn three_series() -> Vec<(Labels, usize)> {
    vec![
        (labels("a", "1"), 300),
        (labels("a", "2"), 5),
        (labels("b", "1"), 120),
    ]
}

/// The directory name of a block: its ULID.
fn ulid(dir: &Path) -> String {
    dir.file_name().unwrap().to_str().unwrap().to_string()
}

/// Flips the bits of the byte at `offset` of `file`.
fn flip(file: &Path, offset: u64) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset as usize] ^= 0xff;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn series_come_in_index_order_with_their_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let want = three_series();
    let dir = write_block(tmp.path(), 1, &want);
    let mut block = BlockReader::open(&dir).unwrap();
    let ids = block.index.all_postings().unwrap();
    let got: Vec<BlockSeries> = block.series().unwrap().map(|s| s.unwrap()).collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got.iter().map(|s| s.id).collect::<Vec<_>>(), ids);
    for (s, (labels, n)) in got.iter().zip(&want) {
        assert_eq!(&s.labels, labels);
        assert_eq!(s.chunks.len(), n.div_ceil(120), "{labels}");
        let mut read = Vec::new();
        for c in &s.chunks {
            assert_eq!(c.encoding, ENCODING_XOR);
            let mut it = XorIter::new(&c.data);
            let mut chunk = Vec::new();
            while let Some(sample) = it.next_sample().unwrap() {
                chunk.push(sample);
            }
            assert_eq!(chunk.first().map(|s| s.0), Some(c.meta.min_time));
            assert_eq!(chunk.last().map(|s| s.0), Some(c.meta.max_time));
            read.extend(chunk);
        }
        assert_eq!(read, samples(*n), "{labels}");
    }
    // The index walk under it yields the same series, with the chunk metas alone.
    let index: Vec<_> = block
        .index
        .all_series()
        .unwrap()
        .map(|s| s.unwrap())
        .collect();
    assert_eq!(index.len(), got.len());
    for (i, s) in index.iter().zip(&got) {
        assert_eq!((i.id, &i.labels), (s.id, &s.labels));
        let metas: Vec<_> = s.chunks.iter().map(|c| c.meta).collect();
        assert_eq!(i.chunks, metas);
        assert_eq!(block.index.series_labels(&i.refs).unwrap(), i.labels);
    }
}

#[test]
fn an_empty_block_has_no_series() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_block(tmp.path(), 2, &[]);
    let mut block = BlockReader::open(&dir).unwrap();
    assert!(block.series().unwrap().next().is_none());
    assert!(block.index.all_series().unwrap().next().is_none());
}

#[test]
fn a_corrupt_series_entry_is_an_error_naming_the_block_and_the_walk_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_block(tmp.path(), 3, &three_series());
    let ids = BlockReader::open(&dir)
        .unwrap()
        .index
        .all_postings()
        .unwrap();
    // A byte of the second entry's payload, past its length field.
    flip(
        &dir.join(INDEX_FILENAME),
        u64::from(ids[1]) * SERIES_ALIGN + 2,
    );
    let mut block = BlockReader::open(&dir).unwrap();
    let got: Vec<_> = block.series().unwrap().collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].as_ref().unwrap().labels, labels("a", "1"));
    let err = got[1].as_ref().unwrap_err();
    assert!(matches!(err, TsdbError::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&ulid(&dir)), "names the block: {text}");
    assert!(text.contains("/index"), "names the file: {text}");
    assert!(text.contains("CRC mismatch"), "names the problem: {text}");
    assert_eq!(got[2].as_ref().unwrap().labels, labels("b", "1"));
}

#[test]
fn a_corrupt_chunk_is_an_error_naming_its_segment_and_series() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_block(tmp.path(), 4, &three_series());
    let second = {
        let mut block = BlockReader::open(&dir).unwrap();
        let s = block.index.all_series().unwrap().nth(1).unwrap().unwrap();
        ChunkRef(s.chunks[0].chunk_ref)
    };
    // A data byte of the second series' chunk, past its length and encoding bytes.
    let segment = dir.join(CHUNKS_DIRNAME).join("000001");
    flip(&segment, u64::from(second.offset()) + 4);
    let mut block = BlockReader::open(&dir).unwrap();
    let got: Vec<_> = block.series().unwrap().collect();
    assert_eq!(got.len(), 3);
    assert!(got[0].is_ok() && got[2].is_ok());
    let text = got[1].as_ref().unwrap_err().to_string();
    assert!(text.contains(&ulid(&dir)), "names the block: {text}");
    assert!(text.contains("chunks/000001"), "names the segment: {text}");
    assert!(text.contains(&labels("a", "2").to_string()), "{text}");
    assert!(
        text.contains("chunk CRC mismatch"),
        "names the problem: {text}"
    );
}

#[test]
fn an_unreadable_series_list_is_an_error_before_the_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_block(tmp.path(), 5, &three_series());
    let postings = IndexReader::open(&dir.join(INDEX_FILENAME))
        .unwrap()
        .toc()
        .postings;
    // The first id of the all-series list, the first list (after its length and count).
    flip(&dir.join(INDEX_FILENAME), postings.next_multiple_of(4) + 8);
    let mut block = BlockReader::open(&dir).unwrap();
    let Err(err) = block.series() else {
        panic!("the walk started on a damaged series list");
    };
    let text = err.to_string();
    assert!(text.contains(&ulid(&dir)), "names the block: {text}");
    assert!(text.contains("postings list"), "names the problem: {text}");
    assert!(block.index.all_series().is_err());
}

#[test]
fn no_single_byte_corruption_of_the_index_panics_the_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_block(tmp.path(), 6, &three_series());
    let bytes = std::fs::read(dir.join(INDEX_FILENAME)).unwrap();
    let path = tmp.path().join("index");
    let (mut opened, mut failed) = (0, 0);
    for offset in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[offset] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
        let Ok(mut r) = IndexReader::open(&path) else {
            continue;
        };
        opened += 1;
        let Ok(walk) = r.all_series() else {
            failed += 1;
            continue;
        };
        // Bounded: one item per entry of the (CRC-checked) all-series list.
        let items: Vec<_> = walk.take(bytes.len()).collect();
        assert!(items.len() <= 3, "offset {offset}: {} series", items.len());
        failed += usize::from(items.iter().any(Result::is_err));
    }
    assert!(opened > 0 && failed > 0, "{opened} opened, {failed} failed");
}
