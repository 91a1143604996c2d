//! Whole blocks: the written meta, reading the result back, refusals, errors naming the block,
//! series, file and offset, atomicity and determinism.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::aggr::{Aggr, AggrChunk};
use super::super::downsample_block;
use super::{xor, STALE};
use crate::tsdb::block::BlockReader;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::block_writer::{BlockWriter, EncodedChunk};
use crate::tsdb::chunks::{ChunkRef, DEFAULT_SEGMENT_SIZE, ENCODING_AGGR, ENCODING_HISTOGRAM};
use crate::tsdb::labels::Labels;
use crate::tsdb::meta::{BlockDesc, BlockMeta, Downsample, ThanosMeta, ZERO_TIME};
use crate::tsdb::tombstones::Tombstones;
use crate::tsdb::TsdbError;
use crate::units::{HOUR_MS, RESOLUTION_1H_MS, RESOLUTION_5M_MS};

const START: i64 = 1_735_603_200_000;

fn id(n: u128) -> BlockId {
    BlockId::from_parts(1_735_603_200_000, n)
}

fn labels(name: &str, job: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", job)])
}

/// A level-3 raw block of 48h with a Thanos section: a counter, a gauge and a series with
/// only staleness markers; `extra` adds hand-made chunks to a fourth series.
fn raw_block(dir: &Path, extra: Option<Vec<EncodedChunk>>) -> (PathBuf, BlockMeta) {
    let symbols = [
        "",
        "__name__",
        "a",
        "api",
        "b",
        "c",
        "d",
        "job",
        "requests_total",
        "stale",
        "temperature",
    ];
    let mut w = BlockWriter::create(dir, id(1), symbols, DEFAULT_SEGMENT_SIZE).expect("writer");
    let samples = |f: &dyn Fn(i64) -> f64| -> Vec<(i64, f64)> {
        (0..48 * 240).map(|i| (START + i * 15_000, f(i))).collect()
    };
    w.add_float_series(
        &labels("requests_total", "api"),
        &samples(&|i| ((i % 2000) * 3) as f64),
    )
    .expect("counter");
    if let Some(chunks) = extra {
        w.add_series(&labels("requests_total", "b"), &chunks)
            .expect("extra");
    }
    w.add_float_series(
        &labels("stale", "api"),
        &[(START, STALE), (START + 15_000, STALE)],
    )
    .expect("stale");
    w.add_float_series(
        &labels("temperature", "api"),
        &samples(&|i| 20.0 + (i as f64 / 100.0).sin()),
    )
    .expect("gauge");
    let mut meta = BlockMeta::level1(id(1), START, START + 48 * HOUR_MS);
    meta.compaction.level = 3;
    meta.compaction.sources = vec![id(7), id(8)];
    meta.compaction.parents = vec![BlockDesc {
        ulid: id(7),
        min_time: START,
        max_time: START + 24 * HOUR_MS,
    }];
    meta.thanos = Some(ThanosMeta {
        labels: BTreeMap::from([("cluster".to_string(), "eu-1".to_string())]),
        source: "compactor".into(),
        upload_time: "2025-01-03T00:00:00Z".into(),
        ..ThanosMeta::default()
    });
    w.finish(meta, &Tombstones::default()).expect("finish")
}

/// Every series of a block with its chunks' encodings and parsed count samples.
fn read_back(dir: &Path) -> Vec<(Labels, Vec<(u8, u64)>)> {
    let mut b = BlockReader::open(dir).expect("open");
    let mut out = Vec::new();
    for series in b.series().expect("postings") {
        let series = series.expect("series");
        let mut cs = Vec::new();
        for c in &series.chunks {
            cs.push((
                c.encoding,
                AggrChunk::parse(&c.data).expect("aggr chunk").num_samples(),
            ));
        }
        out.push((series.labels, cs));
    }
    out
}

#[test]
fn raw_to_5m_to_1h_writes_thanos_meta_and_readable_blocks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (input, in_meta) = raw_block(&tmp.path().join("raw"), None);
    let out5 = downsample_block(&input, &tmp.path().join("5m"), id(2), RESOLUTION_5M_MS)
        .expect("downsample")
        .expect("has data");
    assert_eq!(out5.dir, tmp.path().join("5m").join(id(2).to_string()));
    let m = &out5.meta;
    assert_eq!(m, &BlockMeta::read_dir(&out5.dir).expect("meta on disk"));
    assert_eq!(
        (m.ulid, m.min_time, m.max_time, m.version),
        (id(2), in_meta.min_time, in_meta.max_time, 1)
    );
    assert_eq!(
        m.compaction, in_meta.compaction,
        "level, sources and parents copied"
    );
    let t = m.thanos.as_ref().expect("thanos section");
    assert_eq!(
        t.downsample,
        Downsample {
            resolution: RESOLUTION_5M_MS
        }
    );
    assert_eq!(
        (t.source.as_str(), t.upload_time.as_str()),
        ("compactor", ZERO_TIME)
    );
    assert_eq!(
        t.labels,
        in_meta.thanos.as_ref().expect("input thanos").labels
    );
    assert_eq!(t.segment_files, ["000001"]);
    assert!(t.files.is_empty());
    assert!(
        t.index_stats.chunk_max_size > 0 && t.index_stats.series_max_size > 0,
        "{:?}",
        t.index_stats
    );

    let series = read_back(&out5.dir);
    let names: Vec<String> = series.iter().map(|(l, _)| l.to_string()).collect();
    assert_eq!(
        names,
        [
            r#"{__name__="requests_total", job="api"}"#,
            r#"{__name__="temperature", job="api"}"#
        ],
        "the stale-only series is dropped"
    );
    for (_, chunks) in &series {
        assert!(chunks.iter().all(|c| c.0 == ENCODING_AGGR));
        assert_eq!(
            chunks.iter().map(|c| c.1).sum::<u64>(),
            576,
            "48h of 5m windows"
        );
    }
    assert_eq!((m.stats.num_series, m.stats.num_samples), (2, 2 * 576));
    assert_eq!(
        m.stats.num_chunks,
        series.iter().map(|s| s.1.len() as u64).sum::<u64>()
    );
    assert_eq!(
        m.stats.num_float_samples, in_meta.stats.num_float_samples,
        "copied, as Thanos does"
    );

    let out1h = downsample_block(&out5.dir, &tmp.path().join("1h"), id(3), RESOLUTION_1H_MS)
        .expect("downsample")
        .expect("has data");
    let m1 = &out1h.meta;
    assert_eq!(
        m1.thanos.as_ref().expect("thanos").downsample.resolution,
        RESOLUTION_1H_MS
    );
    assert_eq!(m1.compaction, in_meta.compaction);
    let series = read_back(&out1h.dir);
    assert_eq!(series.len(), 2);
    for (_, chunks) in &series {
        assert_eq!(
            chunks.iter().map(|c| c.1).sum::<u64>(),
            48,
            "48 hourly windows"
        );
    }
}

#[test]
fn resolution_must_get_coarser() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (input, _) = raw_block(&tmp.path().join("raw"), None);
    let dest = tmp.path().join("out");
    for bad in [0, -5] {
        let err = downsample_block(&input, &dest, id(2), bad).expect_err("not coarser");
        assert!(matches!(err, TsdbError::Unsupported(_)), "{err}");
    }
    let out5 = downsample_block(&input, &dest, id(2), RESOLUTION_5M_MS)
        .expect("ok")
        .expect("data");
    let err = downsample_block(&out5.dir, &dest, id(3), RESOLUTION_5M_MS).expect_err("5m to 5m");
    assert!(err.to_string().contains("not coarser"), "{err}");
    assert!(!dest.join(id(3).to_string()).exists());
}

#[test]
fn a_block_without_data_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut w = BlockWriter::create(
        tmp.path(),
        id(1),
        ["", "__name__", "job", "stale", "x"],
        DEFAULT_SEGMENT_SIZE,
    )
    .expect("writer");
    w.add_float_series(&labels("stale", "x"), &[(START, STALE)])
        .expect("series");
    let (input, _) = w
        .finish(
            BlockMeta::level1(id(1), START, START + HOUR_MS),
            &Tombstones::default(),
        )
        .expect("finish");
    let dest = tmp.path().join("out");
    assert!(downsample_block(&input, &dest, id(2), RESOLUTION_5M_MS)
        .expect("no error")
        .is_none());
    assert_eq!(
        std::fs::read_dir(&dest).expect("dest").count(),
        0,
        "no block, no temporary directory"
    );
}

#[test]
fn corrupt_chunk_names_block_series_file_and_offset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut garbage = xor(&[(START, 1.0), (START + 15_000, 2.0), (START + 30_000, 3.0)]);
    garbage[1] = 200; // claims 200 samples
    let chunk = EncodedChunk {
        min_time: START,
        max_time: START + 30_000,
        encoding: 1,
        data: garbage,
    };
    let (input, _) = raw_block(&tmp.path().join("raw"), Some(vec![chunk]));
    let dest = tmp.path().join("out");
    let err = downsample_block(&input, &dest, id(2), RESOLUTION_5M_MS).expect_err("corrupt");
    let TsdbError::Corrupt { file, offset, what } = &err else {
        panic!("{err}")
    };
    assert!(file.ends_with("chunks/000001"), "{err}");
    assert!(*offset > 8, "{err}");
    assert!(
        what.contains(&id(1).to_string()) && what.contains(r#"job="b""#),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&dest).expect("dest").count(),
        0,
        "nothing left behind"
    );
}

#[test]
fn corrupt_histogram_chunk_names_series_and_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let chunk = EncodedChunk {
        min_time: START,
        max_time: START,
        encoding: ENCODING_HISTOGRAM,
        data: vec![0, 1, 0],
    };
    let (input, _) = raw_block(&tmp.path().join("raw"), Some(vec![chunk]));
    let err = downsample_block(&input, &tmp.path().join("out"), id(2), RESOLUTION_5M_MS)
        .expect_err("histogram");
    let TsdbError::Corrupt { file, what, .. } = &err else {
        panic!("{err}")
    };
    assert!(file.ends_with("chunks/000001"), "{err}");
    assert!(what.contains(&id(1).to_string()), "{err}");
    assert!(
        what.contains(r#"{__name__="requests_total", job="b"}"#),
        "{err}"
    );
    assert!(what.contains("histogram chunk"), "{err}");
}

#[test]
fn output_bytes_do_not_depend_on_the_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (input, _) = raw_block(&tmp.path().join("raw"), None);
    let a = downsample_block(&input, &tmp.path().join("a"), id(2), RESOLUTION_5M_MS)
        .expect("a")
        .expect("data");
    let b = downsample_block(&input, &tmp.path().join("b"), id(3), RESOLUTION_5M_MS)
        .expect("b")
        .expect("data");
    for f in ["index", "chunks/000001", "tombstones"] {
        assert_eq!(
            std::fs::read(a.dir.join(f)).expect("a"),
            std::fs::read(b.dir.join(f)).expect("b"),
            "{f}"
        );
    }
    // The counter of the first chunk starts with the first raw sample.
    let mut r = BlockReader::open(&a.dir).expect("open");
    let ids = r.index.all_postings().expect("postings");
    let (mut refs, mut chunks) = (Vec::new(), Vec::new());
    r.index
        .series(ids[0], &mut refs, &mut chunks)
        .expect("series");
    let (_, data) = r
        .chunks
        .chunk(ChunkRef(chunks[0].chunk_ref))
        .expect("chunk");
    let counter = AggrChunk::parse(data)
        .expect("parse")
        .get(Aggr::Counter)
        .expect("counter");
    assert_eq!(super::xor_samples(counter.data)[0], (START, 0.0));
}

#[test]
fn progress_counts_every_series_downsampled() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (input, meta) = raw_block(&tmp.path().join("raw"), None);
    let block = BlockReader::open_with(&input, Default::default()).expect("open");
    let dest = tmp.path().join("out");
    let target = crate::tsdb::block::BlockTarget::local(&dest, id(2)).expect("target");
    let done = std::sync::atomic::AtomicU64::new(0);
    let out = super::super::downsample_to(
        block,
        target,
        id(2),
        RESOLUTION_5M_MS,
        Default::default(),
        Some(&done),
    )
    .expect("ok")
    .expect("data");
    // Every input series is counted once it is done, those left without samples too.
    assert_eq!(
        done.load(std::sync::atomic::Ordering::Relaxed),
        meta.stats.num_series,
        "one count per input series ({} written)",
        out.meta.stats.num_series
    );
}
