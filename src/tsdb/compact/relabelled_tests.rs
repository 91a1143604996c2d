//! Compactions whose input relabels its series: new order, merged collisions, dropped series,
//! tombstones per block series, and a symbol table of exactly the strings used.

use super::tests::{lbl, read_samples, samples, write_block, Series};
use super::*;
use crate::tsdb::labels::Labels;
use crate::tsdb::tombstones::{Interval, Tombstones};

/// The id of each series of the block in `dir`, by labels.
fn series_ids(dir: &Path) -> std::collections::BTreeMap<Labels, u32> {
    let mut b = BlockReader::open(dir).unwrap();
    b.series()
        .unwrap()
        .map(|s| s.unwrap())
        .map(|s| (s.labels, s.id))
        .collect()
}

#[test]
fn relabelled_series_are_resorted_merged_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = Series::new();
    input.insert(lbl("a", 1), samples(0, 1000, 10, 0.0));
    input.insert(lbl("a", 2), samples(5, 1000, 10, 1.0));
    input.insert(lbl("b", 1), samples(0, 1000, 20, 2.0));
    input.insert(lbl("c", 1), samples(0, 1000, 30, 3.0));
    let src = write_block(dir.path(), 1, 0, 1000, &input, &Tombstones::default());
    let ids = series_ids(&src);
    let mut block = BlockReader::open(&src).unwrap();
    // a{i=1} and a{i=2} both become z (colliding); b is dropped; c keeps its labels.
    let z = Labels::from_pairs([("__name__", "z")]);
    let mut relabel = SeriesRelabel::new();
    relabel.insert(ids[&lbl("a", 1)], z.clone());
    relabel.insert(ids[&lbl("a", 2)], z.clone());
    relabel.insert(ids[&lbl("b", 1)], Labels::default());
    // Samples of a{i=2} before 500 are deleted by a tombstone of that block series alone.
    block.tombstones.add(
        u64::from(ids[&lbl("a", 2)]),
        Interval {
            min_time: 0,
            max_time: 499,
        },
    );
    let inputs = vec![CompactInput {
        block,
        relabel: Some(relabel),
    }];
    let id = BlockId::from_parts(9, 9);
    let out = dir.path().join("out");
    let res = compact_inputs(
        inputs,
        BlockTarget::local(&out, id).unwrap(),
        id,
        &Default::default(),
    )
    .unwrap()
    .unwrap();
    let got = read_samples(&res.dir);
    let mut merged: Vec<(i64, f64)> = input[&lbl("a", 1)].clone();
    merged.extend(input[&lbl("a", 2)].iter().filter(|s| s.0 >= 500));
    merged.sort_by_key(|s| s.0);
    let mut want = Series::new();
    want.insert(lbl("c", 1), input[&lbl("c", 1)].clone());
    want.insert(z, merged);
    assert_eq!(got, want);
    assert_eq!(res.meta.stats.num_series, 2);
    // The index is in label order (c{i=1} < z) and its symbols are the strings used only.
    let reader = BlockReader::open(&res.dir).unwrap();
    let symbols: Vec<&str> = reader.index.symbols().iter().collect();
    assert_eq!(symbols, ["1", "__name__", "c", "i", "z"]);
    let order: Vec<Labels> = series_ids(&res.dir).into_keys().collect();
    assert_eq!(
        order,
        vec![lbl("c", 1), Labels::from_pairs([("__name__", "z")])]
    );
}

#[test]
fn an_empty_relabel_keeps_every_series_and_drops_unused_symbols() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = Series::new();
    input.insert(lbl("a", 1), samples(0, 100, 10, 0.0));
    input.insert(lbl("b", 2), samples(0, 100, 10, 0.0));
    let src = write_block(dir.path(), 1, 0, 100, &input, &Tombstones::default());
    let ids = series_ids(&src);
    let mut block = BlockReader::open(&src).unwrap();
    block.tombstones.add(
        u64::from(ids[&lbl("b", 2)]),
        Interval {
            min_time: i64::MIN,
            max_time: i64::MAX,
        },
    );
    let id = BlockId::from_parts(9, 9);
    let out = dir.path().join("out");
    let inputs = vec![CompactInput {
        block,
        relabel: Some(SeriesRelabel::new()),
    }];
    let res = compact_inputs(
        inputs,
        BlockTarget::local(&out, id).unwrap(),
        id,
        &Default::default(),
    )
    .unwrap()
    .unwrap();
    let mut want = Series::new();
    want.insert(lbl("a", 1), input[&lbl("a", 1)].clone());
    assert_eq!(read_samples(&res.dir), want);
    // A tombstone hides samples, not symbols: b and 2 stay (as Prometheus keeps them).
    let reader = BlockReader::open(&res.dir).unwrap();
    assert_eq!(reader.index.symbols().len(), 6);
}
