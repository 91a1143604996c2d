use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::tsdb::block_writer::{BlockWriter, EncodedChunk};
use crate::tsdb::chunks::ChunkRef;
use crate::tsdb::labels::Labels;
use crate::tsdb::tombstones::{Interval, Tombstones};
use crate::tsdb::xor::XorIter;

pub(super) type Series = BTreeMap<Labels, Vec<(i64, f64)>>;

pub(super) fn lbl(name: &str, i: u32) -> Labels {
    Labels::from_pairs([("__name__", name.to_string()), ("i", i.to_string())])
}

fn block_meta(id: BlockId, min: i64, max: i64) -> BlockMeta {
    BlockMeta::level1(id, min, max)
}

/// Writes a block of float series covering `[min, max)`.
pub(super) fn write_block(
    dest: &Path,
    id: u128,
    min: i64,
    max: i64,
    series: &Series,
    tombstones: &Tombstones,
) -> PathBuf {
    let id = BlockId::from_parts(1_000, id);
    let mut symbols: Vec<&str> = series
        .keys()
        .flat_map(|l| l.iter().flat_map(|p| [p.name.as_str(), p.value.as_str()]))
        .collect();
    symbols.sort();
    symbols.dedup();
    let mut w = BlockWriter::create(dest, id, symbols, DEFAULT_SEGMENT_SIZE).unwrap();
    for (l, s) in series {
        w.add_float_series(l, s).unwrap();
    }
    w.finish(block_meta(id, min, max), tombstones).unwrap().0
}

/// Every float sample of a block, by series.
pub(super) fn read_samples(dir: &Path) -> Series {
    let mut b = BlockReader::open(dir).unwrap();
    let mut out = Series::new();
    for series in b.series().unwrap() {
        let series = series.unwrap();
        let samples = out.entry(series.labels).or_default();
        for c in &series.chunks {
            assert_eq!(c.encoding, crate::tsdb::chunks::ENCODING_XOR);
            let mut it = XorIter::new(&c.data);
            while let Some(s) = it.next_sample().unwrap() {
                samples.push(s);
            }
        }
    }
    out
}

pub(super) fn samples(from: i64, to: i64, step: i64, salt: f64) -> Vec<(i64, f64)> {
    (0..)
        .map(|k| from + k * step)
        .take_while(|t| *t < to)
        .map(|t| (t, t as f64 * 0.5 + salt))
        .collect()
}

fn bits(s: &Series) -> BTreeMap<Labels, Vec<(i64, u64)>> {
    s.iter()
        .map(|(l, v)| {
            (
                l.clone(),
                v.iter().map(|(t, x)| (*t, x.to_bits())).collect(),
            )
        })
        .collect()
}

#[test]
fn non_overlapping_blocks_are_concatenated_with_chunks_copied() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Series::new();
    let mut b = Series::new();
    a.insert(lbl("m", 1), samples(0, 1000, 10, 0.0));
    a.insert(lbl("m", 2), samples(0, 1000, 10, 1.0));
    b.insert(lbl("m", 1), samples(1000, 2000, 10, 0.0));
    b.insert(lbl("only_b", 3), samples(1500, 2000, 7, 2.0));
    let pa = write_block(dir.path(), 1, 0, 1000, &a, &Tombstones::default());
    let pb = write_block(dir.path(), 2, 1000, 2000, &b, &Tombstones::default());
    let out = dir.path().join("out");
    let id = BlockId::from_parts(9, 9);
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let opts = CompactOptions {
        series_written: Some(std::sync::Arc::clone(&written)),
        ..CompactOptions::default()
    };
    let res = compact_blocks(&[pb.clone(), pa.clone()], &out, id, &opts)
        .unwrap()
        .unwrap();
    assert_eq!(
        written.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "progress counts every series"
    );
    let mut want = a.clone();
    for (l, s) in &b {
        want.entry(l.clone()).or_default().extend(s);
    }
    for v in want.values_mut() {
        v.sort_by_key(|s| s.0);
    }
    assert_eq!(bits(&read_samples(&res.dir)), bits(&want));
    let m = &res.meta;
    assert_eq!((m.min_time, m.max_time, m.compaction.level), (0, 2000, 2));
    assert_eq!(
        m.compaction.parents[0].ulid,
        BlockMeta::read_dir(&pb).unwrap().ulid,
        "parents in input order"
    );
    assert_eq!(m.stats.num_series, 3);
    assert_eq!(
        m.stats.num_samples,
        want.values().map(|v| v.len() as u64).sum::<u64>()
    );
    assert_eq!(BlockMeta::read_dir(&res.dir).unwrap(), res.meta);
    // Concatenating non-overlapping chunks copies their bytes: the output segment holds
    // exactly the input chunks (series order, then time order).
    let size = |p: &Path| std::fs::metadata(p.join("chunks/000001")).unwrap().len();
    assert_eq!(size(&res.dir), size(&pa) + size(&pb) - 8);
}

#[test]
fn overlapping_blocks_merge_one_sample_per_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Series::new();
    let mut b = Series::new();
    a.insert(lbl("m", 1), samples(0, 3000, 10, 0.0));
    b.insert(lbl("m", 1), samples(1500, 4000, 15, 0.0));
    let pa = write_block(dir.path(), 1, 0, 3000, &a, &Tombstones::default());
    let pb = write_block(dir.path(), 2, 1500, 4000, &b, &Tombstones::default());
    let out = dir.path().join("out");
    let res = compact_blocks(
        &[pa, pb],
        &out,
        BlockId::from_parts(9, 9),
        &CompactOptions::default(),
    )
    .unwrap()
    .unwrap();
    let mut want: Vec<(i64, f64)> = a[&lbl("m", 1)]
        .iter()
        .chain(&b[&lbl("m", 1)])
        .copied()
        .collect();
    want.sort_by_key(|s| s.0);
    want.dedup_by_key(|s| s.0);
    let got = read_samples(&res.dir);
    assert_eq!(got[&lbl("m", 1)], want);
    let mut block = BlockReader::open(&res.dir).unwrap();
    let ids = block.index.all_postings().unwrap();
    let (mut refs, mut chunks) = (Vec::new(), Vec::new());
    block.index.series(ids[0], &mut refs, &mut chunks).unwrap();
    for c in &chunks {
        let (_, data) = block.chunks.chunk(ChunkRef(c.chunk_ref)).unwrap();
        assert!(
            crate::tsdb::xor::num_samples(data).unwrap() <= 120,
            "re-cut at 120 samples"
        );
    }
}

#[test]
fn tombstones_and_block_range_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Series::new();
    a.insert(lbl("m", 1), samples(0, 2000, 10, 0.0));
    a.insert(lbl("m", 2), samples(0, 2000, 10, 0.0));
    let mut t = Tombstones::default();
    // Series refs are index offsets / 16; look them up after writing.
    let pa = write_block(dir.path(), 1, 0, 2000, &a, &Tombstones::default());
    let ids = BlockReader::open(&pa)
        .unwrap()
        .index
        .all_postings()
        .unwrap();
    t.add(
        u64::from(ids[0]),
        Interval {
            min_time: 100,
            max_time: 555,
        },
    );
    t.add(
        u64::from(ids[1]),
        Interval {
            min_time: i64::MIN,
            max_time: i64::MAX,
        },
    );
    t.write_dir(&pa).unwrap();
    // Shrink the block's range too: samples at or after 1800 are outside it.
    let mut meta = BlockMeta::read_dir(&pa).unwrap();
    meta.max_time = 1800;
    meta.write_dir(&pa).unwrap();
    let out = dir.path().join("out");
    let res = compact_blocks(
        &[pa],
        &out,
        BlockId::from_parts(9, 9),
        &CompactOptions::default(),
    )
    .unwrap()
    .unwrap();
    let got = read_samples(&res.dir);
    assert_eq!(got.len(), 1, "a fully deleted series is not written");
    let want: Vec<(i64, f64)> = a[&lbl("m", 1)]
        .iter()
        .copied()
        .filter(|(t, _)| !(100..=555).contains(t) && *t < 1800)
        .collect();
    assert_eq!(got[&lbl("m", 1)], want);
}

fn histogram_chunk(min: i64, max: i64) -> EncodedChunk {
    // An opaque native-histogram chunk: 3 samples, counter-reset header "unknown".
    EncodedChunk {
        min_time: min,
        max_time: max,
        encoding: 2,
        data: vec![0, 3, 0, 0xde, 0xad, 0xbe, 0xef, min as u8],
    }
}

fn write_histogram_block(dest: &Path, id: u128, chunks: &[EncodedChunk]) -> PathBuf {
    let id = BlockId::from_parts(1_000, id);
    let l = lbl("h", 1);
    let mut w =
        BlockWriter::create(dest, id, ["1", "__name__", "h", "i"], DEFAULT_SEGMENT_SIZE).unwrap();
    w.add_series(&l, chunks).unwrap();
    let max = chunks.last().unwrap().max_time + 1;
    w.finish(
        block_meta(id, chunks[0].min_time, max),
        &Tombstones::default(),
    )
    .unwrap()
    .0
}

#[test]
fn histogram_chunks_pass_through_and_overlaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pa = write_histogram_block(
        dir.path(),
        1,
        &[histogram_chunk(0, 10), histogram_chunk(20, 30)],
    );
    let pb = write_histogram_block(dir.path(), 2, &[histogram_chunk(40, 50)]);
    let out = dir.path().join("out");
    let res = compact_blocks(
        &[pa.clone(), pb],
        &out,
        BlockId::from_parts(9, 9),
        &CompactOptions::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(res.meta.stats.num_histogram_samples, 9);
    let mut block = BlockReader::open(&res.dir).unwrap();
    let (mut refs, mut chunks) = (Vec::new(), Vec::new());
    let ids = block.index.all_postings().unwrap();
    block.index.series(ids[0], &mut refs, &mut chunks).unwrap();
    let (enc, data) = block.chunks.chunk(ChunkRef(chunks[1].chunk_ref)).unwrap();
    assert_eq!(
        (enc, data),
        (2, &histogram_chunk(20, 30).data[..]),
        "copied byte for byte"
    );

    let pc = write_histogram_block(dir.path(), 3, &[histogram_chunk(5, 25)]);
    let out2 = dir.path().join("out2");
    let err = compact_blocks(
        &[pa, pc],
        &out2,
        BlockId::from_parts(9, 10),
        &CompactOptions::default(),
    )
    .unwrap_err()
    .to_string();
    // Overlapping histogram chunks are decoded to be merged: these opaque bytes are not a
    // histogram, and the error names the chunk's file, series, block and offset.
    assert!(err.contains(r#"{__name__="h", i="1"}"#), "{err}");
    assert!(
        err.contains(&BlockId::from_parts(1_000, 1).to_string()),
        "{err}"
    );
    assert!(
        err.contains("chunks/000001") && err.contains("byte 6 of the chunk data"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&out2).unwrap().count(),
        0,
        "nothing left in the output dir"
    );
}

#[test]
fn a_corrupt_chunk_fails_with_file_and_offset_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Series::new();
    a.insert(lbl("m", 1), samples(0, 1000, 10, 0.0));
    let pa = write_block(dir.path(), 1, 0, 1000, &a, &Tombstones::default());
    let seg = pa.join("chunks/000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[40] ^= 0x55;
    std::fs::write(&seg, bytes).unwrap();
    let out = dir.path().join("out");
    let err = compact_blocks(
        &[pa],
        &out,
        BlockId::from_parts(9, 9),
        &CompactOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("chunks/000001") && err.contains("offset"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

fn arb_block_series() -> impl Strategy<Value = Series> {
    let series = (
        0u32..6,
        prop::collection::vec((0i64..3000, any::<u64>()), 1..300),
    );
    prop::collection::vec(series, 1..5).prop_map(|v| {
        let mut out = Series::new();
        for (i, pts) in v {
            let mut pts: Vec<(i64, f64)> = pts
                .into_iter()
                .map(|(t, b)| (t, f64::from_bits(b)))
                .collect();
            pts.sort_by_key(|p| p.0);
            pts.dedup_by_key(|p| p.0);
            out.insert(lbl("p", i), pts);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn compaction_preserves_every_sample(blocks in prop::collection::vec(arb_block_series(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = blocks.iter().enumerate()
            .map(|(i, s)| write_block(dir.path(), i as u128 + 1, 0, 3000, s, &Tombstones::default()))
            .collect();
        let out = dir.path().join("out");
        let res = compact_blocks(&paths, &out, BlockId::from_parts(9, 9), &CompactOptions::default()).unwrap().unwrap();
        // Expected: per series, per timestamp the sample of the earliest input.
        let mut want: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
        for s in &blocks {
            for (l, pts) in s {
                let m = want.entry(l.clone()).or_default();
                for (t, v) in pts {
                    m.entry(*t).or_insert(v.to_bits());
                }
            }
        }
        let got = bits(&read_samples(&res.dir));
        let want: BTreeMap<Labels, Vec<(i64, u64)>> = want.into_iter().map(|(l, m)| (l, m.into_iter().collect())).collect();
        prop_assert_eq!(got, want);
    }
}

// ---- Native histograms -------------------------------------------------------------------

mod histograms {
    //! Merging overlapping native histogram chunks.
    use super::*;
    use crate::tsdb::histogram::{
        chunk_header, decode_chunk, CounterResetHeader, CounterResetHint, CutHeaders, Histogram,
        SampleValue, Span,
    };

    type Samples = BTreeMap<Labels, Vec<(i64, SampleValue)>>;

    /// A counter histogram after `n` steps: bucket `j` appears at step `40 j` and then grows
    /// by one every `j + 1` steps, so every count only goes up.
    fn counter(n: u64) -> Histogram {
        let buckets = 1 + (n / 40).min(5);
        let counts: Vec<i64> = (0..buckets)
            .map(|j| (n - 40 * j) as i64 / (j as i64 + 1))
            .collect();
        let mut previous = 0;
        let deltas = counts
            .iter()
            .map(|&c| {
                let d = c - previous;
                previous = c;
                d
            })
            .collect();
        let count = counts.iter().sum::<i64>() as u64;
        Histogram {
            schema: 1,
            zero_threshold: 0.001,
            count,
            sum: count as f64 * 0.25,
            positive_spans: vec![Span::new(0, buckets as u32)],
            positive_buckets: deltas,
            ..Histogram::default()
        }
    }

    fn series_samples(from: i64, to: i64, step: i64, scale: u64) -> Vec<(i64, SampleValue)> {
        (0..)
            .map(|k| from + k * step)
            .take_while(|t| *t < to)
            .map(|t| {
                let mut h = counter(t as u64 / 10 * scale);
                if t % 70 == 0 {
                    h.counter_reset_hint = CounterResetHint::Gauge;
                    let mut f = h.to_float();
                    f.sum = -1.5;
                    return (t, SampleValue::FloatHistogram(f));
                }
                h.counter_reset_hint = CounterResetHint::Unknown;
                (t, SampleValue::Histogram(h))
            })
            .collect()
    }

    fn write(dest: &Path, id: u128, min: i64, max: i64, series: &Samples) -> PathBuf {
        let id = BlockId::from_parts(1_000, id);
        let mut symbols: Vec<&str> = series
            .keys()
            .flat_map(|l| l.iter().flat_map(|p| [p.name.as_str(), p.value.as_str()]))
            .collect();
        symbols.sort();
        symbols.dedup();
        let mut w = BlockWriter::create(dest, id, symbols, DEFAULT_SEGMENT_SIZE).unwrap();
        for (l, s) in series {
            w.add_histogram_series(l, s, CutHeaders::Compaction)
                .unwrap();
        }
        w.finish(block_meta(id, min, max), &Tombstones::default())
            .unwrap()
            .0
    }

    /// Every sample of a block and the (encoding, header) of every chunk, by series.
    fn read(dir: &Path) -> (Samples, Vec<(u8, Option<CounterResetHeader>)>) {
        let mut b = BlockReader::open(dir).unwrap();
        let (mut out, mut kinds) = (Samples::new(), Vec::new());
        for series in b.series().unwrap() {
            let series = series.unwrap();
            let samples = out.entry(series.labels).or_default();
            for c in &series.chunks {
                let (enc, data) = (c.encoding, c.data.as_slice());
                if enc == crate::tsdb::chunks::ENCODING_XOR {
                    let mut it = XorIter::new(data);
                    while let Some((t, v)) = it.next_sample().unwrap() {
                        samples.push((t, SampleValue::Float(v)));
                    }
                    kinds.push((enc, None));
                } else {
                    samples.extend(decode_chunk(enc, data).unwrap());
                    kinds.push((enc, chunk_header(data).map(|h| h.1)));
                }
            }
        }
        (out, kinds)
    }

    /// The samples' observations with hints cleared (they depend on chunk positions).
    fn plain(samples: &Samples) -> BTreeMap<Labels, Vec<(i64, String)>> {
        let strip = |v: &SampleValue| match v {
            SampleValue::Histogram(h) => {
                let mut h = h.to_float();
                h.counter_reset_hint = CounterResetHint::Unknown;
                let (spans, counts) = nonzero(&h.positive_spans, &h.positive_buckets);
                format!("{:?} {:?} {:?} {:?}", h.count, h.sum, spans, counts)
            }
            SampleValue::FloatHistogram(h) => {
                let (spans, counts) = nonzero(&h.positive_spans, &h.positive_buckets);
                format!("{:?} {:?} {:?} {:?}", h.count, h.sum, spans, counts)
            }
            SampleValue::Float(f) => format!("{f:?}"),
        };
        samples
            .iter()
            .map(|(l, s)| (l.clone(), s.iter().map(|(t, v)| (*t, strip(v))).collect()))
            .collect()
    }

    /// Bucket indices and counts of the non-empty buckets (recoding adds empty ones).
    fn nonzero(spans: &[Span], counts: &[f64]) -> (Vec<i64>, Vec<f64>) {
        crate::tsdb::histogram::spans::BucketIndices::new(spans)
            .zip(counts.iter().copied())
            .filter(|(_, c)| *c != 0.0)
            .unzip()
    }

    /// Per series, per timestamp the sample of the earliest input.
    fn chain(inputs: &[&Samples]) -> Samples {
        let mut want: BTreeMap<Labels, BTreeMap<i64, SampleValue>> = BTreeMap::new();
        for s in inputs {
            for (l, pts) in s.iter() {
                let m = want.entry(l.clone()).or_default();
                for (t, v) in pts {
                    m.entry(*t).or_insert_with(|| v.clone());
                }
            }
        }
        want.into_iter()
            .map(|(l, m)| (l, m.into_iter().collect()))
            .collect()
    }

    fn compact(inputs: &[PathBuf], out: &Path, dedup: DedupFunc) -> CompactOutput {
        let opts = CompactOptions {
            dedup,
            ..CompactOptions::default()
        };
        compact_blocks(inputs, out, BlockId::from_parts(9, 9), &opts)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn overlapping_histogram_blocks_merge_every_sample() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Samples::new();
        let mut b = Samples::new();
        // Interleaved timestamps, some shared (input a wins those); b counts faster, so the
        // merged stream goes up and down: counter resets.
        a.insert(lbl("h", 1), series_samples(0, 3000, 10, 1));
        b.insert(lbl("h", 1), series_samples(5, 3000, 15, 3));
        // Only in b: copied as is.
        b.insert(lbl("h", 2), series_samples(0, 3000, 10, 1));
        let pa = write(dir.path(), 1, 0, 3000, &a);
        let pb = write(dir.path(), 2, 0, 3000, &b);
        let res = compact(&[pa, pb], &dir.path().join("out"), DedupFunc::Chain);
        let (got, kinds) = read(&res.dir);
        assert_eq!(plain(&got), plain(&chain(&[&a, &b])));
        let headers: std::collections::BTreeSet<_> = kinds.iter().filter_map(|k| k.1).collect();
        assert!(
            headers.contains(&CounterResetHeader::CounterReset),
            "{kinds:?}"
        );
        assert!(headers.contains(&CounterResetHeader::Gauge), "{kinds:?}");
        let n: usize = got.values().map(Vec::len).sum();
        assert_eq!(res.meta.stats.num_samples, n as u64);
        assert_eq!(res.meta.stats.num_histogram_samples, n as u64);
    }

    #[test]
    fn a_run_of_floats_and_histograms_is_cut_where_the_type_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Samples::new();
        let mut b = Samples::new();
        let floats: Vec<(i64, SampleValue)> = (0..50)
            .map(|k| (k * 10, SampleValue::Float(k as f64)))
            .collect();
        a.insert(lbl("m", 1), floats);
        let hists = (40..100)
            .map(|k| (k * 10, SampleValue::Histogram(counter(k as u64))))
            .collect();
        b.insert(lbl("m", 1), hists);
        let pa = write(dir.path(), 1, 0, 1000, &a);
        let pb = write(dir.path(), 2, 0, 1000, &b);
        let res = compact(&[pa, pb], &dir.path().join("out"), DedupFunc::Chain);
        let (got, kinds) = read(&res.dir);
        assert_eq!(plain(&got), plain(&chain(&[&a, &b])));
        let encodings: Vec<u8> = kinds.iter().map(|k| k.0).collect();
        // Floats up to 490 (a wins the shared timestamps), then histograms.
        assert_eq!(encodings, [1, 2]);
        assert_eq!(res.meta.stats.num_float_samples, 50);
        assert_eq!(res.meta.stats.num_histogram_samples, 50);
    }

    #[test]
    fn penalty_deduplication_applies_to_histograms() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Samples::new();
        let mut b = Samples::new();
        // Replica a has a gap from 1000 to 2000 ms that replica b fills.
        // One chunk per block: no gauge samples (which would cut chunks at type changes), so
        // the penalty fold sees the two replicas whole.
        let counters_only = |mut s: Vec<(i64, SampleValue)>| {
            s.retain(|(_, v)| matches!(v, SampleValue::Histogram(_)));
            s
        };
        let mut first = counters_only(series_samples(0, 3000, 100, 1));
        first.retain(|(t, _)| !(1000..2000).contains(t));
        a.insert(lbl("h", 1), first);
        b.insert(lbl("h", 1), counters_only(series_samples(20, 3000, 100, 2)));
        let pa = write(dir.path(), 1, 0, 3000, &a);
        let pb = write(dir.path(), 2, 0, 3000, &b);
        let res = compact(&[pa, pb], &dir.path().join("out"), DedupFunc::Penalty);
        let (got, _) = read(&res.dir);
        let mut want = Vec::new();
        let runs = [a[&lbl("h", 1)].clone(), b[&lbl("h", 1)].clone()];
        super::super::dedup::merge_runs(DedupFunc::Penalty, &runs, &mut want);
        assert!(
            want.len() < runs[0].len() + runs[1].len(),
            "one replica at a time"
        );
        let want: Samples = [(lbl("h", 1), want)].into_iter().collect();
        assert_eq!(plain(&got), plain(&want));
    }

    #[test]
    fn overlapping_aggregate_chunks_are_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let aggr = |min: i64, max: i64| EncodedChunk {
            min_time: min,
            max_time: max,
            encoding: crate::tsdb::chunks::ENCODING_AGGR,
            data: vec![0, 1, 0],
        };
        let pa = write_histogram_block(dir.path(), 1, &[aggr(0, 10)]);
        let pb = write_histogram_block(dir.path(), 2, &[aggr(5, 20)]);
        let err = compact_blocks(
            &[pa, pb],
            &dir.path().join("out"),
            BlockId::from_parts(9, 9),
            &CompactOptions::default(),
        )
        .unwrap_err()
        .to_string();
        for id in [1, 2] {
            let id = BlockId::from_parts(1_000, id).to_string();
            assert!(err.contains(&id), "{err}");
        }
        assert!(err.contains("255"), "{err}");
    }
}

/// An output whose files fail once `limit` bytes were written to them.
struct FailingOutput {
    limit: usize,
}

struct FailingFile {
    left: usize,
}

impl std::io::Write for FailingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            return Err(std::io::Error::other("the store refused the part"));
        }
        self.left -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl crate::tsdb::files::OutputFile for FailingFile {
    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl crate::tsdb::files::BlockOutput for FailingOutput {
    fn location(&self) -> &Path {
        Path::new("failing")
    }

    fn create(&self, _rel: &str) -> Result<Box<dyn crate::tsdb::files::OutputFile>> {
        Ok(Box::new(FailingFile { left: self.limit }))
    }

    fn finish_dir(&self, _rel_dir: &str) -> Result<()> {
        Ok(())
    }
}

/// A write that fails in the middle of a compaction (a store refusing a part) ends it with
/// the error, however many batches the pipeline's other stages still hold: it never hangs
/// (it did: the reader waited on a full merge queue that nobody read any more).
#[test]
fn a_failing_output_ends_the_compaction_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let series = |salt: f64| -> Series {
        (0..20_000)
            .map(|i| (lbl("s", i), samples(0, 7_200_000, 120_000, salt)))
            .collect()
    };
    let a = write_block(
        dir.path(),
        1,
        0,
        7_200_000,
        &series(1.0),
        &Tombstones::default(),
    );
    let b = write_block(
        dir.path(),
        2,
        7_200_000,
        14_400_000,
        &series(2.0),
        &Tombstones::default(),
    );
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let blocks = [a, b]
            .iter()
            .map(|d| BlockReader::open(d).unwrap())
            .collect();
        let output = std::sync::Arc::new(FailingOutput { limit: 256 << 10 });
        let target = BlockTarget::Files(output);
        let id = BlockId::from_parts(1_000, 9);
        let _ = done.send(compact_to(blocks, target, id, &CompactOptions::default()).map(|_| ()));
    });
    let result = result
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the compaction ended");
    let err = result.unwrap_err().to_string();
    assert!(err.contains("the store refused the part"), "{err}");
}
