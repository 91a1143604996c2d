//! Inputs whose index breaks the order rules that old writers broke: a series' chunks out of
//! time order (refused, naming the block, as Thanos refuses it) and label names out of order
//! (refused, or with `accept_malformed_index` read and written as stored, as Thanos does).
//! The damaged indexes are rewritten from generated blocks with the index writer's checks
//! relaxed, so every chunk reference stays true to the segment files.

use std::path::{Path, PathBuf};

use super::*;
use crate::tsdb::block_writer::BlockWriter;
use crate::tsdb::downsample::downsample_block_with;
use crate::tsdb::index::{IndexReader, ReadOptions};
use crate::tsdb::tombstones::Tombstones;
use crate::units::{HOUR_MS, RESOLUTION_5M_MS};

/// A 2h block of three series, four chunks each: `up{a,b}` twice, then `zz{a,b}`.
fn block(dest: &Path, id: u128) -> PathBuf {
    let id = BlockId::from_parts(1_000, id);
    let symbols = ["1", "2", "__name__", "a", "b", "up", "x", "zz"];
    let mut w = BlockWriter::create(dest, id, symbols, DEFAULT_SEGMENT_SIZE).unwrap();
    let samples: Vec<(i64, f64)> = (0..480).map(|i| (i * 15_000, i as f64)).collect();
    for (name, a) in [("up", "1"), ("up", "2"), ("zz", "1")] {
        let labels = Labels::from_pairs([("__name__", name), ("a", a), ("b", "x")]);
        w.add_float_series(&labels, &samples).unwrap();
    }
    let meta = BlockMeta::level1(id, 0, 2 * HOUR_MS);
    w.finish(meta, &Tombstones::default()).unwrap().0
}

/// Rewrites the index of the block in `dir` with `change` applied to each series (its
/// position, labels and chunks), without the writer's chunk checks and, with
/// `accept_unsorted`, without its label-name order check.
fn rewrite_index(
    dir: &Path,
    accept_unsorted: bool,
    mut change: impl FnMut(usize, &mut Vec<(u32, u32)>, &mut Vec<ChunkMeta>),
) {
    let path = dir.join(INDEX_FILENAME);
    let mut r = IndexReader::open(&path).unwrap();
    let symbols: Vec<String> = r.symbols().iter().map(String::from).collect();
    let mut series = Vec::new();
    for (i, s) in r.all_series().unwrap().enumerate() {
        let s = s.unwrap();
        let (mut labels, mut chunks) = (s.refs, s.chunks);
        change(i, &mut labels, &mut chunks);
        series.push((labels, chunks));
    }
    let new = dir.join("index.new");
    let mut w = IndexWriter::create(&new).unwrap();
    if accept_unsorted {
        w.accept_unsorted_label_names();
    }
    for s in &symbols {
        w.add_symbol(s).unwrap();
    }
    for (labels, chunks) in &series {
        w.add_series_unchecked_chunks(labels, chunks).unwrap();
    }
    w.finish().unwrap();
    std::fs::rename(new, path).unwrap();
}

fn compact(inputs: &[PathBuf], out: &Path, accept_malformed_index: bool) -> Result<CompactOutput> {
    let opts = CompactOptions {
        threads: 2,
        accept_malformed_index,
        ..CompactOptions::default()
    };
    compact_blocks(inputs, out, BlockId::from_parts(9, 9), &opts).map(|o| o.expect("samples"))
}

fn ulid(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn an_input_with_out_of_order_chunks_fails_naming_its_block() {
    let tmp = tempfile::tempdir().unwrap();
    let good = block(&tmp.path().join("in"), 1);
    let bad = block(&tmp.path().join("in"), 2);
    rewrite_index(&bad, false, |i, _, chunks| {
        if i == 1 {
            chunks.swap(1, 2);
        }
    });
    let out = tmp.path().join("out");
    let err = compact(&[good, bad.clone()], &out, false).unwrap_err();
    match &err {
        TsdbError::OutOfOrderChunks { block, file, what } => {
            assert_eq!(block.to_string(), ulid(&bad));
            assert_eq!(file, &bad.join(INDEX_FILENAME));
            assert!(
                what.contains("series {__name__=\"up\", a=\"2\", b=\"x\"}"),
                "{what}"
            );
            assert!(what.contains("chunk 2 ["), "{what}");
        }
        other => panic!("want OutOfOrderChunks, got {other}"),
    }
    assert!(err.to_string().contains(&ulid(&bad)), "{err}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn an_exact_duplicate_chunk_is_not_out_of_order() {
    // Thanos counts a chunk with the same range as the one before as a duplicate: the block
    // compacts, and the merge keeps one copy.
    let tmp = tempfile::tempdir().unwrap();
    let dup = block(&tmp.path().join("in"), 1);
    rewrite_index(&dup, false, |i, _, chunks| {
        if i == 0 {
            chunks.insert(1, chunks[0]);
        }
    });
    let out = compact(&[dup], &tmp.path().join("out"), false).unwrap();
    assert_eq!(out.meta.stats.num_samples, 3 * 480);
    assert_eq!(out.meta.stats.num_chunks, 3 * 4);
}

/// Swaps the last two label names of the last series (`zz`, so the series order holds).
fn unsorted_last_series(dir: &Path) {
    rewrite_index(dir, true, |i, labels, _| {
        if i == 2 {
            labels.swap(1, 2);
        }
    });
}

/// The label names, as stored, of every series of the block in `dir`.
fn label_names(dir: &Path) -> Vec<Vec<String>> {
    let read = ReadOptions {
        accept_unsorted_label_names: true,
    };
    let mut r = IndexReader::open_with(&dir.join(INDEX_FILENAME), read).unwrap();
    let series: Vec<_> = r.all_series().unwrap().map(|s| s.unwrap()).collect();
    let text = |n: u32| r.symbols().get(n).unwrap().to_string();
    series
        .iter()
        .map(|s| s.refs.iter().map(|&(n, _)| text(n)).collect())
        .collect()
}

#[test]
fn unsorted_label_names_are_refused_unless_accepted_then_kept_as_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let good = block(&tmp.path().join("in"), 1);
    let bad = block(&tmp.path().join("in"), 2);
    unsorted_last_series(&bad);
    let inputs = [good, bad.clone()];
    let err = compact(&inputs, &tmp.path().join("refused"), false).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, TsdbError::Corrupt { .. }), "{text}");
    assert!(
        text.contains(&ulid(&bad)),
        "the error names the block: {text}"
    );
    assert!(text.contains("\"a\" follows \"b\""), "{text}");
    assert!(text.contains("--debug.accept-malformed-index"), "{text}");

    let out = compact(&inputs, &tmp.path().join("out"), true).unwrap();
    assert_eq!(
        out.meta.stats.num_series, 4,
        "three series of each input, one malformed"
    );
    assert_eq!(
        out.meta.stats.num_samples,
        4 * 480,
        "the two up series merge"
    );
    let sorted = ["__name__", "a", "b"].map(String::from).to_vec();
    let stored = ["__name__", "b", "a"].map(String::from).to_vec();
    assert_eq!(
        label_names(&out.dir),
        [sorted.clone(), sorted.clone(), sorted, stored],
        "the malformed series passes through with its labels as stored, as Thanos writes it"
    );
    // So the output needs the option too, as in Thanos.
    assert!(BlockReader::open(&out.dir)
        .and_then(|mut b| b.index.all_series()?.try_for_each(|s| s.map(drop)))
        .is_err());
}

#[test]
fn downsampling_reads_unsorted_label_names_only_when_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = block(&tmp.path().join("in"), 2);
    unsorted_last_series(&bad);
    let id = BlockId::from_parts(9, 9);
    let strict = ReadOptions::default();
    let err = downsample_block_with(&bad, &tmp.path().join("a"), id, RESOLUTION_5M_MS, strict)
        .unwrap_err();
    assert!(err.to_string().contains(&ulid(&bad)), "{err}");
    let accept = ReadOptions {
        accept_unsorted_label_names: true,
    };
    let out = downsample_block_with(&bad, &tmp.path().join("b"), id, RESOLUTION_5M_MS, accept)
        .unwrap()
        .expect("samples");
    assert_eq!(out.meta.stats.num_series, 3);
    assert_eq!(label_names(&out.dir)[2], ["__name__", "b", "a"]);
}
