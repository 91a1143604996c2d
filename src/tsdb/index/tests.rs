//! Tests of the index writer and reader: exact bytes, round trips, contract violations and
//! corrupt files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::tsdb::encoding::crc32;
use crate::tsdb::labels::Labels;

fn chunk(min_time: i64, max_time: i64, chunk_ref: u64) -> ChunkMeta {
    ChunkMeta {
        min_time,
        max_time,
        chunk_ref,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Writes an index with the given symbols and series (label sets with their chunks).
fn write_index(path: &Path, symbols: &[&str], series: &[(Labels, Vec<ChunkMeta>)]) -> u64 {
    let mut w = IndexWriter::create(path).unwrap();
    for s in symbols {
        w.add_symbol(s).unwrap();
    }
    for (lset, chunks) in series {
        w.add_series_labels(lset, chunks).unwrap();
    }
    w.finish().unwrap()
}

/// The tiny index of `exact_layout_of_a_tiny_index`: symbols a, b, c and the series
/// {a="b"} with one chunk [1000, 1005] at ref 8.
fn tiny_index(dir: &Path) -> PathBuf {
    let path = dir.join("index");
    write_index(
        &path,
        &["a", "b", "c"],
        &[(labels(&[("a", "b")]), vec![chunk(1000, 1005, 8)])],
    );
    path
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

#[test]
fn exact_layout_of_a_tiny_index() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(tiny_index(dir.path())).unwrap();
    let mut want: Vec<u8> = vec![0xba, 0xaa, 0xd7, 0x00, 0x02];
    // Symbol table at 5: len counts the 4-byte count and the entries; the CRC covers both.
    let symbols = [0, 0, 0, 3, 1, b'a', 1, b'b', 1, b'c'];
    want.extend(be32(10));
    want.extend(symbols);
    want.extend(be32(crc32(&symbols)));
    assert_eq!(want.len(), 23, "TOC.series");
    // The first series is padded to 32: id 2. mint 1000 is zig-zag 2000 = d0 0f.
    want.extend([0; 9]);
    let payload = [1, 0, 1, 1, 0xd0, 0x0f, 5, 8];
    want.push(8);
    want.extend(payload);
    want.extend(be32(crc32(&payload)));
    assert_eq!(want.len(), 45, "TOC.postings, before the pad to 4");
    want.extend([0; 3]);
    // Two lists holding series 2: ("", "") at 48 and ("a", "b") at 64.
    for _ in 0..2 {
        want.extend(be32(8));
        want.extend([0, 0, 0, 1, 0, 0, 0, 2]);
        want.extend(be32(crc32(&[0, 0, 0, 1, 0, 0, 0, 2])));
    }
    assert_eq!(want.len(), 80, "TOC.postings_offset_table");
    let table = [0, 0, 0, 2, 2, 0, 0, 48, 2, 1, b'a', 1, b'b', 64];
    want.extend(be32(14));
    want.extend(table);
    want.extend(be32(crc32(&table)));
    let toc_start = want.len();
    for field in [5u64, 23, 45, 80, 45, 80] {
        want.extend(field.to_be_bytes());
    }
    let toc_crc = crc32(&want[toc_start..]);
    want.extend(be32(toc_crc));
    assert_eq!(bytes, want);
}

/// Appends `be32 len | body | be32 CRC(body)`.
fn put_section(out: &mut Vec<u8>, body: &[u8]) {
    out.extend(be32(body.len() as u32));
    out.extend(body);
    out.extend(be32(crc32(body)));
}

#[test]
fn reads_the_2_42_layout_with_label_indices() {
    // The tiny index as Prometheus 2.42 lays it out: a label index for "a" after the series
    // and a label offset table after the postings, so TOC.label_indices != TOC.postings.
    let tiny = tiny_bytes();
    let mut file = tiny[..45].to_vec();
    file.extend([0; 3]);
    put_section(&mut file, &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert_eq!(file.len(), 68);
    for _ in 0..2 {
        put_section(&mut file, &[0, 0, 0, 1, 0, 0, 0, 2]);
    }
    put_section(&mut file, &[0, 0, 0, 1, 1, 1, b'a', 48]);
    assert_eq!(file.len(), 116);
    put_section(
        &mut file,
        &[0, 0, 0, 2, 2, 0, 0, 68, 2, 1, b'a', 1, b'b', 84],
    );
    let toc = Toc {
        symbols: 5,
        series: 23,
        label_indices: 45,
        label_offset_table: 100,
        postings: 68,
        postings_offset_table: 116,
    };
    let mut e = crate::tsdb::encoding::Encbuf::new();
    toc.encode(&mut e);
    file.extend(&e.buf);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    std::fs::write(&path, &file).unwrap();
    let mut r = IndexReader::open(&path).unwrap();
    assert_eq!(*r.toc(), toc);
    assert_eq!(r.all_postings().unwrap(), [2]);
    assert_eq!(r.postings("a", "b").unwrap(), [2]);
    assert_eq!(r.label_names().unwrap(), ["a"]);
    let (mut refs, mut chunks) = (Vec::new(), Vec::new());
    r.series(2, &mut refs, &mut chunks).unwrap();
    assert_eq!(refs, [(0, 1)]);
    assert_eq!(chunks, [chunk(1000, 1005, 8)]);
}

#[test]
fn round_trip_small() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let symbols = ["", "__name__", "a", "job", "node", "unused", "up", "x"];
    let series = vec![
        (
            labels(&[("__name__", "up"), ("job", "node")]),
            vec![chunk(0, 10, 8), chunk(11, 20, 100)],
        ),
        (
            labels(&[("__name__", "up"), ("job", "node"), ("x", "a")]),
            vec![chunk(-5, -5, 100)],
        ),
        (
            labels(&[("__name__", "x")]),
            vec![chunk(i64::MIN, i64::MAX, (1 << 32) | 8)],
        ),
    ];
    let size = write_index(&path, &symbols, &series);
    assert_eq!(size, std::fs::metadata(&path).unwrap().len());

    let mut r = IndexReader::open(&path).unwrap();
    assert_eq!(r.version(), FORMAT_V2);
    let toc = *r.toc();
    assert_eq!(toc.label_indices, toc.postings);
    assert_eq!(toc.label_offset_table, toc.postings_offset_table);
    assert_eq!(r.symbols().iter().collect::<Vec<_>>(), symbols);
    assert_eq!(r.symbols().lookup("job"), Some(3));
    assert_eq!(r.symbols().get(8), None);

    let all = r.all_postings().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], toc.series.next_multiple_of(16) as u32 / 16);
    let walked: Vec<_> = r.all_series().unwrap().map(|s| s.unwrap()).collect();
    assert_eq!(walked.len(), series.len());
    for ((s, id), (lset, want_chunks)) in walked.iter().zip(&all).zip(&series) {
        assert_eq!(s.id, *id);
        assert_eq!(&s.labels, lset);
        assert_eq!(&s.chunks, want_chunks);
    }
    assert_eq!(r.postings("__name__", "up").unwrap(), &all[..2]);
    assert_eq!(r.postings("x", "a").unwrap(), &all[1..2]);
    assert_eq!(r.postings("job", "nope").unwrap(), Vec::<u32>::new());
    assert_eq!(r.postings("nope", "up").unwrap(), Vec::<u32>::new());
    assert_eq!(r.label_names().unwrap(), ["__name__", "job", "x"]);
    assert_eq!(r.label_values("__name__").unwrap(), ["up", "x"]);
    assert_eq!(r.label_values("nope").unwrap(), Vec::<String>::new());
}

#[test]
fn empty_index_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    write_index(&path, &[], &[]);
    let mut r = IndexReader::open(&path).unwrap();
    assert!(r.symbols().is_empty());
    assert!(r.all_postings().unwrap().is_empty());
    assert!(r.label_names().unwrap().is_empty());
}

/// Writes `count` series `{id="NNNNN", parity="even|odd"}` to `path`, spilling the postings
/// every `run_bytes` when given.
fn write_many(path: &Path, count: u32, run_bytes: Option<usize>) {
    let mut values: Vec<String> = (0..count).map(|i| format!("{i:05}")).collect();
    values.extend(["even".to_string(), "odd".to_string()]);
    let mut symbols: Vec<&str> = values.iter().map(String::as_str).collect();
    symbols.extend(["id", "parity"]);
    symbols.sort_unstable();
    let mut w = IndexWriter::create(path).unwrap();
    if let Some(run_bytes) = run_bytes {
        w.spill_postings_every(run_bytes);
    }
    for s in &symbols {
        w.add_symbol(s).unwrap();
    }
    let (id, parity) = (w.symbol_ref("id").unwrap(), w.symbol_ref("parity").unwrap());
    for i in 0..count {
        let value = w.symbol_ref(&format!("{i:05}")).unwrap();
        let p = w
            .symbol_ref(if i % 2 == 0 { "even" } else { "odd" })
            .unwrap();
        w.add_series(
            &[(id, value), (parity, p)],
            &[chunk(0, 1, u64::from(i) * 10)],
        )
        .unwrap();
    }
    w.finish().unwrap();
}

/// Postings spilled to sorted runs on disk give the same bytes as postings sorted in memory.
#[test]
fn spilled_postings_write_the_same_index() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, spilled) = (dir.path().join("memory"), dir.path().join("spilled"));
    write_many(&memory, 5_000, None);
    write_many(&spilled, 5_000, Some(16 * 1000));
    assert_eq!(
        std::fs::read(&memory).unwrap(),
        std::fs::read(&spilled).unwrap()
    );
}

#[test]
fn many_series_cross_batch_and_table_growth() {
    // Enough series that postings lists and symbol batches grow past their batches.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let count = 20_000u32;
    write_many(&path, count, None);
    let mut r = IndexReader::open(&path).unwrap();
    let all = r.all_postings().unwrap();
    assert_eq!(all.len(), count as usize);
    let even = r.postings("parity", "even").unwrap();
    assert_eq!(even, all.iter().copied().step_by(2).collect::<Vec<_>>());
    // Lookups land before, between, on and after the values sampled every 32.
    for i in [0usize, 31, 32, 33, 12345, 19_999] {
        assert_eq!(r.postings("id", &format!("{i:05}")).unwrap(), [all[i]]);
    }
    for absent in ["", "0", "00000x", "19999x", "~"] {
        assert!(r.postings("id", absent).unwrap().is_empty(), "{absent}");
    }
    assert_eq!(r.label_values("id").unwrap().len(), count as usize);
    let (mut refs, mut chunks) = (Vec::new(), Vec::new());
    r.series(all[777], &mut refs, &mut chunks).unwrap();
    assert_eq!(
        r.series_labels(&refs).unwrap(),
        labels(&[("id", "00777"), ("parity", "odd")])
    );
    assert_eq!(chunks, [chunk(0, 1, 7770)]);
}

fn usage_error<T: std::fmt::Debug>(result: Result<T>, needle: &str) {
    match result {
        Err(TsdbError::Usage { what, .. }) => {
            assert!(what.contains(needle), "{what:?} lacks {needle:?}")
        }
        other => panic!("want a usage error containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn stage_and_order_violations_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = IndexWriter::create(&dir.path().join("index")).unwrap();
    for s in ["a", "b", "c", "d"] {
        w.add_symbol(s).unwrap();
    }
    usage_error(w.add_symbol("d"), "out of order");
    usage_error(w.add_symbol("0"), "out of order");
    usage_error(w.add_series(&[(0, 1)], &[]), "no chunks");
    usage_error(w.add_series(&[(0, 9)], &[chunk(0, 1, 8)]), "past the 4");
    usage_error(
        w.add_series(&[(1, 0), (0, 0)], &[chunk(0, 1, 8)]),
        "not sorted",
    );
    usage_error(
        w.add_series(&[(0, 0), (0, 1)], &[chunk(0, 1, 8)]),
        "not sorted",
    );
    usage_error(
        w.add_series(&[(0, 1)], &[chunk(2, 1, 8)]),
        "min time 2 > max time 1",
    );
    usage_error(
        w.add_series(&[(0, 1)], &[chunk(0, 5, 8), chunk(5, 6, 9)]),
        "<= previous max",
    );
    usage_error(
        w.add_series(&[(0, 1)], &[chunk(0, 5, 9), chunk(6, 7, 8)]),
        "reference 0x8 < previous 0x9",
    );
    usage_error(
        w.add_series_labels(&labels(&[("a", "zz")]), &[chunk(0, 1, 8)]),
        "\"zz\" was not added",
    );
    // None of the refused calls changed the state: the stream goes on.
    w.add_series(&[(0, 1), (2, 3)], &[chunk(0, 1, 100)])
        .unwrap();
    usage_error(w.add_symbol("e"), "after the first series");
    usage_error(
        w.add_series(&[(0, 1), (2, 3)], &[chunk(0, 1, 100)]),
        "out of order",
    );
    usage_error(w.add_series(&[(0, 1)], &[chunk(0, 1, 100)]), "out of order");
    usage_error(
        w.add_series(&[(0, 2)], &[chunk(0, 1, 99)]),
        "reference 0x63 < previous 0x64",
    );
    w.add_series(&[(0, 2)], &[chunk(0, 1, 100)]).unwrap();
    w.add_series(&[(1, 0)], &[chunk(0, 1, 101)]).unwrap();
    w.finish().unwrap();
    let mut r = IndexReader::open(&dir.path().join("index")).unwrap();
    assert_eq!(r.all_postings().unwrap().len(), 3);
    assert_eq!(r.label_values("a").unwrap(), ["b", "c"]);
}

#[test]
fn empty_label_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = IndexWriter::create(&dir.path().join("index")).unwrap();
    w.add_symbol("").unwrap();
    w.add_symbol("a").unwrap();
    usage_error(
        w.add_series(&[(0, 1)], &[chunk(0, 1, 8)]),
        "empty label name",
    );
    w.add_series(&[(1, 0)], &[chunk(0, 1, 8)]).unwrap();
}

/// Opens `bytes` written to a file and returns the error of `f` on the reader (or of open).
fn corrupt_error(bytes: &[u8], f: impl FnOnce(&mut IndexReader) -> Result<()>) -> (u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    std::fs::write(&path, bytes).unwrap();
    let result = IndexReader::open(&path).and_then(|mut r| f(&mut r));
    match result {
        Err(TsdbError::Corrupt { file, offset, what }) => {
            assert_eq!(file, path);
            (offset, what)
        }
        other => panic!("want a corrupt error, got {other:?}"),
    }
}

fn tiny_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::read(tiny_index(dir.path())).unwrap()
}

/// Re-seals the TOC after editing its fields.
fn reseal_toc(bytes: &mut [u8]) {
    let n = bytes.len();
    let crc = crc32(&bytes[n - 52..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn corrupt_header_and_toc() {
    let good = tiny_bytes();
    let mut bytes = good.clone();
    bytes[0] = 0xbb;
    let (offset, what) = corrupt_error(&bytes, |_| Ok(()));
    assert_eq!(offset, 0);
    assert!(what.contains("bad magic 0xbbaad700"), "{what}");

    let mut bytes = good.clone();
    bytes[4] = 3;
    let (_, what) = corrupt_error(&bytes, |_| Ok(()));
    assert!(what.contains("index format v3 not supported"), "{what}");

    let mut bytes = good.clone();
    let n = bytes.len();
    bytes[n - 20] ^= 1;
    let (offset, what) = corrupt_error(&bytes, |_| Ok(()));
    assert_eq!(offset, n as u64 - 4);
    assert!(what.contains("TOC CRC mismatch"), "{what}");

    let (_, what) = corrupt_error(&good[..good.len() - 1], |_| Ok(()));
    assert!(what.contains("TOC CRC mismatch"), "{what}");
    let (offset, what) = corrupt_error(&good[..40], |_| Ok(()));
    assert_eq!(offset, 0);
    assert!(what.contains("too short"), "{what}");

    // TOC.series before TOC.symbols.
    let mut bytes = good.clone();
    bytes[n - 52 + 15] = 4;
    reseal_toc(&mut bytes);
    let (offset, what) = corrupt_error(&bytes, |_| Ok(()));
    assert_eq!(offset, n as u64 - 52 + 8);
    assert!(what.contains("TOC series offset 4"), "{what}");

    // TOC.postings_offset_table past the TOC.
    let mut bytes = good;
    bytes[n - 52 + 46] = 1;
    reseal_toc(&mut bytes);
    let (_, what) = corrupt_error(&bytes, |_| Ok(()));
    assert!(what.contains("postings offset table"), "{what}");
}

#[test]
fn corrupt_symbol_table() {
    let good = tiny_bytes();
    let mut bytes = good.clone();
    bytes[18] = b'x'; // "c" becomes "x": still sorted, but the CRC no longer matches.
    let (offset, what) = corrupt_error(&bytes, |_| Ok(()));
    assert_eq!(offset, 19);
    assert!(what.contains("symbol table: CRC mismatch"), "{what}");
    // A huge count must be refused before anything is allocated.
    let mut bytes = good.clone();
    bytes[9..13].copy_from_slice(&be32(u32::MAX));
    let (offset, what) = corrupt_error(&bytes, |_| Ok(()));
    assert_eq!(offset, 9);
    assert!(what.contains("cannot fit"), "{what}");
    // A length running into the series section.
    let mut bytes = good;
    bytes[5..9].copy_from_slice(&be32(1000));
    let (offset, what) = corrupt_error(&bytes, |_| Ok(()));
    assert_eq!(offset, 5);
    assert!(what.contains("run past"), "{what}");
}

#[test]
fn flipped_byte_in_a_series_names_its_offset() {
    let mut bytes = tiny_bytes();
    bytes[36] ^= 0x40; // Inside the payload of the series at 32.
    let (offset, what) = corrupt_error(&bytes, |r| {
        let ids = r.all_postings()?;
        r.series(ids[0], &mut Vec::new(), &mut Vec::new())
    });
    assert_eq!(offset, 32);
    assert!(what.contains("series 2: CRC mismatch"), "{what}");
    // Ids that do not point into the series section.
    let (offset, what) = corrupt_error(&tiny_bytes(), |r| {
        r.series(1000, &mut Vec::new(), &mut Vec::new())
    });
    assert_eq!(offset, 16_000);
    assert!(what.contains("outside the series section"), "{what}");
}

#[test]
fn corrupt_postings() {
    let good = tiny_bytes();
    // The ("a", "b") entry's offset (byte 97) pointing past the postings section.
    let mut bytes = good.clone();
    assert_eq!(bytes[97], 64);
    bytes[97] = 0x7f;
    let crc = crc32(&bytes[84..98]);
    bytes[98..102].copy_from_slice(&crc.to_be_bytes());
    let (offset, what) = corrupt_error(&bytes, |r| r.postings("a", "b").map(drop));
    assert_eq!(offset, 92, "names the table entry");
    assert!(
        what.contains("postings list offset 127 is outside the postings section [45, 80)"),
        "{what}"
    );
    // The same edit without fixing the table's CRC is caught by the first table scan.
    let mut bytes = good.clone();
    bytes[97] = 0x7f;
    let (offset, what) = corrupt_error(&bytes, |r| r.label_names().map(drop));
    assert_eq!(offset, 98);
    assert!(
        what.contains("postings offset table: CRC mismatch"),
        "{what}"
    );
    // A flipped id in a list.
    let mut bytes = good;
    bytes[59] ^= 1;
    let (offset, what) = corrupt_error(&bytes, |r| r.all_postings().map(drop));
    assert_eq!(offset, 60);
    assert!(what.contains("postings list: CRC mismatch"), "{what}");
}

#[test]
fn reads_the_prometheus_2_0_v1_fixture() {
    // tsdb/testdata/index_format_v1 of Prometheus 2.42 (written by 2.0.0): symbol references
    // and series ids are byte offsets, and the postings offset table is unsorted.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    std::fs::write(&path, include_bytes!("testdata/index_format_v1")).unwrap();
    let mut r = IndexReader::open(&path).unwrap();
    assert_eq!(r.version(), FORMAT_V1);
    assert_eq!(r.symbols().len(), 104);
    assert_eq!(r.label_names().unwrap(), ["bar", "foo"]);
    assert_eq!(r.label_values("foo").unwrap(), ["bar", "baz"]);
    assert_eq!(r.label_values("bar").unwrap().len(), 100);
    let all = r.all_postings().unwrap();
    assert_eq!(all.len(), 102);
    let foo_bar = r.postings("foo", "bar").unwrap();
    assert_eq!(foo_bar, [1776]);
    let (mut refs, mut chunks) = (Vec::new(), Vec::new());
    r.series(foo_bar[0], &mut refs, &mut chunks).unwrap();
    assert_eq!(r.series_labels(&refs).unwrap(), labels(&[("foo", "bar")]));
    assert_eq!(chunks.len(), 1);
    assert_eq!((chunks[0].min_time, chunks[0].max_time), (1, 1));
    let walked: Vec<_> = r.all_series().unwrap().map(|s| s.unwrap()).collect();
    assert_eq!(walked.iter().map(|s| s.id).collect::<Vec<_>>(), all);
    assert!(walked.iter().all(|s| s.refs.len() == 1));
}

/// A random block: distinct label sets (names from a small set, so pairs repeat) with
/// ordered chunks, plus extra unused symbols.
fn arb_block() -> impl Strategy<Value = (BTreeMap<Labels, Vec<ChunkMeta>>, BTreeSet<String>)> {
    let pair = (
        prop::sample::select(vec!["__name__", "a", "job", "zone", "ä"]),
        "[a-c]{1,2}",
    );
    let lset = prop::collection::vec(pair, 0..4).prop_map(Labels::from_pairs);
    let chunks = prop::collection::vec((0i64..1000, 0i64..100, 0u64..3), 1..4);
    let series = prop::collection::btree_map(lset, chunks, 0..40);
    let extra = prop::collection::btree_set("[a-z]{0,3}", 0..5);
    (series, extra).prop_map(|(series, extra)| {
        let mut next_ref = 8u64;
        let mut time = -500i64;
        let block = series
            .into_iter()
            .map(|(lset, raw)| {
                let metas = raw
                    .into_iter()
                    .map(|(gap, length, ref_step)| {
                        let meta =
                            chunk(time + gap + 1, time + gap + 1 + length, next_ref + ref_step);
                        time = meta.max_time;
                        next_ref = meta.chunk_ref;
                        meta
                    })
                    .collect();
                time = -500;
                (lset, metas)
            })
            .collect();
        (block, extra)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_blocks_round_trip((block, extra) in arb_block()) {
        let mut symbols = extra;
        for lset in block.keys() {
            for l in lset.iter() {
                symbols.insert(l.name.clone());
                symbols.insert(l.value.clone());
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let symbol_refs: Vec<&str> = symbols.iter().map(String::as_str).collect();
        let series: Vec<_> = block.iter().map(|(l, c)| (l.clone(), c.clone())).collect();
        write_index(&path, &symbol_refs, &series);

        let mut r = IndexReader::open(&path).unwrap();
        prop_assert_eq!(r.symbols().iter().collect::<Vec<_>>(), symbol_refs);
        let all = r.all_postings().unwrap();
        prop_assert_eq!(all.len(), series.len());
        let mut want: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
        let walked: Vec<_> = r.all_series().unwrap().map(|s| s.unwrap()).collect();
        prop_assert_eq!(walked.len(), series.len());
        for ((s, &id), (lset, metas)) in walked.iter().zip(&all).zip(&series) {
            prop_assert_eq!(s.id, id);
            prop_assert_eq!(&s.labels, lset);
            prop_assert_eq!(&s.chunks, metas);
            for l in lset.iter() {
                want.entry((l.name.clone(), l.value.clone())).or_default().push(id);
            }
        }
        for ((name, value), ids) in &want {
            prop_assert_eq!(&r.postings(name, value).unwrap(), ids);
        }
        let names: Vec<String> = want.keys().map(|(n, _)| n.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        prop_assert_eq!(&r.label_names().unwrap(), &names);
        for name in &names {
            let values: Vec<String> = want.keys().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect();
            prop_assert_eq!(r.label_values(name).unwrap(), values);
        }
        prop_assert!(r.postings("nope", "x").unwrap().is_empty());
    }
}
