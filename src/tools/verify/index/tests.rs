//! The index rules of `index_known_issues`: one issue per series and rule, on series built in
//! memory and on an index written with out-of-order chunks and unsorted label names.

use super::*;
use crate::tsdb::index::IndexWriter;

fn chunk(min_time: i64, max_time: i64) -> ChunkMeta {
    ChunkMeta {
        min_time,
        max_time,
        chunk_ref: 0,
    }
}

fn series(pairs: &[(&str, &str)], refs: &[(u32, u32)], chunks: &[ChunkMeta]) -> IndexSeries {
    IndexSeries {
        id: 7,
        refs: refs.to_vec(),
        labels: Labels::from_pairs(pairs.iter().copied()),
        chunks: chunks.to_vec(),
    }
}

#[test]
fn a_healthy_series_has_no_issue() {
    let s = series(&[("a", "1")], &[(0, 1)], &[chunk(0, 9), chunk(10, 100)]);
    let before = Labels::from_pairs([("a", "0")]);
    assert!(series_issues(&s, Some(&before), (0, 100)).is_empty());
}

#[test]
fn chunks_outside_the_range_as_thanos_classifies_them() {
    let s = series(
        &[("a", "1")],
        &[(0, 1)],
        &[
            chunk(-20, -10),
            chunk(-5, 5),
            chunk(100, 120),
            chunk(130, 140),
        ],
    );
    let issues = series_issues(&s, None, (0, 100));
    assert_eq!(
        issues,
        vec![
            "chunk 0 [-20, -10] lies completely outside the block range [0, 100]",
            "chunk 1 [-5, 5] lies partly outside the block range [0, 100]",
            "chunk 2 [100, 120] starts at the block's end 100 (prometheus/tsdb#347)",
            "chunk 3 [130, 140] lies completely outside the block range [0, 100]",
        ]
    );
}

#[test]
fn duplicate_and_out_of_order_chunks() {
    let s = series(
        &[("a", "1")],
        &[(0, 1)],
        &[chunk(0, 9), chunk(0, 9), chunk(5, 20), chunk(21, 30)],
    );
    assert_eq!(
        series_issues(&s, None, (0, 100)),
        vec![
            "chunk 1 [0, 9] duplicates the time range of the chunk before it",
            "chunk 2 [5, 20] is out of order: starts at or before the end 9 of the chunk before it",
        ]
    );
}

#[test]
fn series_order_labels_and_emptiness() {
    let s = series(&[("a", "1"), ("b", "2")], &[(2, 3), (0, 1)], &[]);
    let after = Labels::from_pairs([("a", "2")]);
    assert_eq!(
        series_issues(&s, Some(&after), (0, 100)),
        vec![
            "out of order: sorts at or before the series before it, {a=\"2\"}",
            "label names out of order (written by Prometheus 2.8.0 or older)",
            "has no chunks",
        ]
    );
    let same = Labels::from_pairs([("a", "1"), ("b", "2")]);
    let s = series(&[("a", "1"), ("b", "2")], &[(0, 1), (2, 3)], &[chunk(0, 1)]);
    assert_eq!(series_issues(&s, Some(&same), (0, 100)).len(), 1);
    let empty = series(&[], &[], &[chunk(0, 1)]);
    assert_eq!(series_issues(&empty, None, (0, 100)), vec!["has no labels"]);
}

#[test]
fn an_index_with_broken_series_names_each_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("index");
    let mut w = IndexWriter::create(&path).expect("writer");
    w.accept_unsorted_label_names();
    for s in ["1", "2", "a", "b"] {
        w.add_symbol(s).expect("symbol");
    }
    // a="1",b="1": fine. a="2",b="1": chunks out of order. b="2",a="2" stored unsorted.
    let good = [chunk(0, 9), chunk(10, 19)];
    w.add_series(&[(2, 0), (3, 0)], &good).expect("series");
    w.add_series_unchecked_chunks(&[(2, 1), (3, 0)], &[chunk(10, 19), chunk(0, 9)])
        .expect("series");
    w.add_series_unchecked_chunks(&[(3, 1), (2, 1)], &good)
        .expect("series");
    w.finish().expect("finish");
    let options = ReadOptions {
        accept_unsorted_label_names: true,
    };
    let mut reader = IndexReader::open_with(&path, options).expect("open");
    let id = BlockId::from_parts(1, 1);
    let issues = check_index(&mut reader, id, (0, 100));
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert!(
        issues[0].starts_with(&format!(
            "block {id}: series {{a=\"2\", b=\"1\"}}: chunk 1 [0, 9] is out of order"
        )),
        "{issues:?}"
    );
    assert!(issues[1].contains("label names out of order"), "{issues:?}");
}
