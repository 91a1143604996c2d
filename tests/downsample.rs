//! Downsampling through the CLI: `tools generate` writes a raw 48h block (counters with
//! resets, gauges), `tools downsample` makes a 5m block of it and a 1h block of that. Every
//! aggregate of every chunk is read back with our reader and compared with values computed
//! here from the raw samples, with plain loops:
//!
//! - each output chunk stands for a contiguous stretch of raw samples: from its counter's
//!   first sample (the stretch's first raw sample) to the next chunk's;
//! - within a stretch, samples are grouped by window (`t / resolution`); each window is
//!   stamped with its last millisecond, except the stretch's last window, stamped with the
//!   stretch's last sample; count, sum, min and max are those of the group;
//! - the counter is the stretch's first raw sample, then per window the running total from
//!   that first value with every decrease counted as a reset (the new value added in full),
//!   then the stretch's last raw value again at the last window's stamp.
//!
//! At 5m the same float operations run in the same order, so values must match exactly; at 1h
//! sums are sums of 5m sums, so sum and counter are compared with a relative tolerance.
//! Also checked: meta.json, the count aggregates adding up to the raw samples, and what
//! promtool 2.42 makes of the blocks (`tsdb list` and `tsdb analyze` accept them; `tsdb dump`
//! cannot decode aggregate chunks and prints nothing, like for Thanos' own).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use compactd::tsdb::block::BlockReader;
use compactd::tsdb::chunks::{ChunkRef, ENCODING_AGGR, ENCODING_XOR};
use compactd::tsdb::downsample::aggr::{Aggr, AggrChunk};
use compactd::tsdb::downsample::count_samples_in_block;
use compactd::tsdb::labels::Labels;
use compactd::tsdb::meta::BlockMeta;
use compactd::tsdb::xor::XorIter;

const START_MS: i64 = 1_735_603_200_000; // 2024-12-31T00:00Z, a multiple of 48h
const M5: i64 = 300_000;
const H1: i64 = 3_600_000;

/// One output chunk: its index range and each aggregate's samples (`None`: absent).
struct Chunk {
    min_time: i64,
    max_time: i64,
    aggrs: [Option<Vec<(i64, f64)>>; 5],
}

impl Chunk {
    fn get(&self, a: Aggr) -> &[(i64, f64)] {
        self.aggrs[a.index()]
            .as_deref()
            .expect("float chunks carry all five aggregates")
    }
}

fn read_downsampled(dir: &Path) -> BTreeMap<Labels, Vec<Chunk>> {
    let mut b = BlockReader::open(dir).expect("open block");
    let (mut refs, mut metas) = (Vec::new(), Vec::new());
    let mut out = BTreeMap::new();
    for id in b.index.all_postings().expect("postings") {
        b.index.series(id, &mut refs, &mut metas).expect("series");
        let labels = b.index.series_labels(&refs).expect("labels");
        let mut chunks = Vec::new();
        for m in &metas {
            let (enc, data) = b.chunks.chunk(ChunkRef(m.chunk_ref)).expect("chunk");
            assert_eq!(enc, ENCODING_AGGR, "{labels}: every chunk is an AggrChunk");
            let parsed = AggrChunk::parse(data).expect("aggr chunk parses");
            let aggrs = Aggr::ALL.map(|a| {
                parsed.get(a).map(|sub| {
                    assert_eq!(sub.encoding, ENCODING_XOR);
                    let mut it = XorIter::new(sub.data);
                    let mut v = Vec::new();
                    while let Some(s) = it.next_sample().expect("aggregate decodes") {
                        v.push(s);
                    }
                    v
                })
            });
            chunks.push(Chunk {
                min_time: m.min_time,
                max_time: m.max_time,
                aggrs,
            });
        }
        out.insert(labels, chunks);
    }
    out
}

/// What one chunk must hold, computed from its stretch of raw samples.
struct Expected {
    windows: Vec<(i64, usize, f64, f64, f64, f64)>, // stamp, count, sum, min, max, counter
    first: (i64, f64),
    last_value: f64,
}

fn expected_for(stretch: &[(i64, f64)], resolution: i64) -> Expected {
    let mut windows: Vec<(i64, usize, f64, f64, f64, f64)> = Vec::new();
    let (mut total, mut previous) = (stretch[0].1, stretch[0].1);
    for (i, &(t, v)) in stretch.iter().enumerate() {
        if i > 0 {
            if v < previous {
                total += v; // a reset: the counter restarted from 0
            } else {
                total += v - previous;
            }
            previous = v;
        }
        let end = (t / resolution + 1) * resolution - 1;
        match windows.last_mut() {
            Some(w) if w.0 == end => {
                w.1 += 1;
                w.2 += v;
                w.3 = w.3.min(v);
                w.4 = w.4.max(v);
                w.5 = total;
            }
            _ => windows.push((end, 1, v, v, v, total)),
        }
    }
    let last = stretch[stretch.len() - 1];
    windows.last_mut().expect("a window").0 = last.0;
    Expected {
        windows,
        first: stretch[0],
        last_value: last.1,
    }
}

fn close(a: f64, b: f64, exact: bool) -> bool {
    if exact {
        a == b
    } else {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }
}

/// Checks one series' chunks at `resolution` against its raw samples; returns how many
/// counter resets its stretches held.
fn check_series(
    name: &str,
    chunks: &[Chunk],
    raw: &[(i64, f64)],
    resolution: i64,
    exact: bool,
) -> usize {
    let starts: Vec<i64> = chunks.iter().map(|c| c.get(Aggr::Counter)[0].0).collect();
    assert_eq!(
        starts[0], raw[0].0,
        "{name}: the first chunk starts with the first raw sample"
    );
    let mut resets = 0;
    for (k, c) in chunks.iter().enumerate() {
        let from = raw.partition_point(|s| s.0 < starts[k]);
        let to = starts
            .get(k + 1)
            .map_or(raw.len(), |&next| raw.partition_point(|s| s.0 < next));
        let stretch = &raw[from..to];
        resets += stretch.windows(2).filter(|w| w[1].1 < w[0].1).count();
        let want = expected_for(stretch, resolution);
        let ctx = |what: &str| format!("{name}: chunk {k} at {resolution} ms: {what}");
        let (count, sum, min, max) = (
            c.get(Aggr::Count),
            c.get(Aggr::Sum),
            c.get(Aggr::Min),
            c.get(Aggr::Max),
        );
        assert_eq!(count.len(), want.windows.len(), "{}", ctx("windows"));
        assert_eq!(
            (c.min_time, c.max_time),
            (want.windows[0].0, want.windows[want.windows.len() - 1].0),
            "{}",
            ctx("range")
        );
        for (i, w) in want.windows.iter().enumerate() {
            for (got, what) in [(count, "count"), (sum, "sum"), (min, "min"), (max, "max")] {
                assert_eq!(
                    got[i].0,
                    w.0,
                    "{}",
                    ctx(&format!("{what} stamp of window {i}"))
                );
            }
            assert_eq!(
                count[i].1,
                w.1 as f64,
                "{}",
                ctx(&format!("count of window {i}"))
            );
            assert!(
                close(sum[i].1, w.2, exact),
                "{}: {} vs {}",
                ctx(&format!("sum of window {i}")),
                sum[i].1,
                w.2
            );
            assert_eq!(
                (min[i].1, max[i].1),
                (w.3, w.4),
                "{}",
                ctx(&format!("min, max of window {i}"))
            );
        }
        let counter = c.get(Aggr::Counter);
        assert_eq!(
            counter.len(),
            want.windows.len() + 2,
            "{}",
            ctx("counter samples")
        );
        assert_eq!(
            counter[0],
            want.first,
            "{}",
            ctx("counter's first raw sample")
        );
        for (i, w) in want.windows.iter().enumerate() {
            let (t, v) = counter[i + 1];
            assert!(
                t == w.0 && close(v, w.5, exact),
                "{}: ({t}, {v}) vs ({}, {})",
                ctx(&format!("counter of window {i}")),
                w.0,
                w.5
            );
        }
        let last = counter[counter.len() - 1];
        assert_eq!(
            last,
            (want.windows[want.windows.len() - 1].0, want.last_value),
            "{}",
            ctx("counter's last raw value")
        );
    }
    resets
}

fn check_block(
    dir: &Path,
    raw: &BTreeMap<Labels, Vec<(i64, f64)>>,
    resolution: i64,
    exact: bool,
) -> usize {
    let got = read_downsampled(dir);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        raw.keys().collect::<Vec<_>>(),
        "the same series"
    );
    got.iter()
        .map(|(l, chunks)| check_series(&l.to_string(), chunks, &raw[l], resolution, exact))
        .sum()
}

/// Runs `tools downsample`; returns the new block's directory (its ULID is the first line).
fn downsample(block: &Path, out: &Path, resolution: &str) -> PathBuf {
    let stdout = compactd_ok(&[
        "tools",
        "downsample",
        "--resolution",
        resolution,
        "--out",
        out.to_str().expect("utf-8"),
        block.to_str().expect("utf-8"),
    ]);
    out.join(stdout.lines().next().expect("ULID line"))
}

fn check_meta(meta: &BlockMeta, raw: &BlockMeta, resolution: i64, dir: &Path) {
    assert_eq!(
        meta.ulid.to_string(),
        dir.file_name().expect("name").to_string_lossy()
    );
    assert_eq!((meta.min_time, meta.max_time), (raw.min_time, raw.max_time));
    assert_eq!(
        meta.compaction, raw.compaction,
        "level, sources, parents copied"
    );
    let t = meta.thanos.as_ref().expect("thanos section");
    assert_eq!(t.downsample.resolution, resolution);
    assert_eq!(t.source, "compactor");
    assert_eq!(t.labels, raw.thanos.as_ref().expect("raw thanos").labels);
    assert_eq!(t.segment_files, ["000001"]);
    let chunks = read_downsampled(dir);
    let windows: usize = chunks
        .values()
        .flatten()
        .map(|c| c.get(Aggr::Count).len())
        .sum();
    assert_eq!(
        meta.stats.num_samples, windows as u64,
        "numSamples counts windows"
    );
    assert_eq!(
        meta.stats.num_chunks,
        chunks.values().map(Vec::len).sum::<usize>() as u64
    );
    assert_eq!(meta.stats.num_series, chunks.len() as u64);
    assert_eq!(
        meta.stats.num_float_samples, raw.stats.num_float_samples,
        "left as the input's"
    );
    assert_eq!(
        count_samples_in_block(dir).expect("count"),
        raw.stats.num_samples,
        "counts add up to the raw samples"
    );
}

fn promtool_checks(promtool: &Path, dir: &Path) {
    let parent = dir.parent().expect("parent");
    let list = Command::new(promtool)
        .args(["tsdb", "list"])
        .arg(parent)
        .output()
        .expect("promtool list");
    assert!(
        list.status.success(),
        "promtool tsdb list: {}",
        String::from_utf8_lossy(&list.stderr)
    );
    let id = dir.file_name().expect("name").to_string_lossy().to_string();
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(&id),
        "listed"
    );
    let analyze = promtool_analyze(promtool, dir);
    assert!(analyze.contains(&format!("Block ID: {id}")), "{analyze}");
    assert_eq!(
        promtool_dump(promtool, &[dir.to_path_buf()]),
        "",
        "2.42 cannot decode AggrChunks"
    );
}

#[test]
fn raw_to_5m_to_1h_matches_a_plain_computation_from_the_raw_samples() {
    let tmp = tempfile::tempdir().expect("tmp");
    let raw_dir = tmp.path().join("raw");
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        raw_dir.to_str().expect("utf-8"),
        "--series",
        "154",
        "--hours",
        "48",
        "--block-duration",
        "48h",
        "--start-ms",
        &START_MS.to_string(),
        "--external-labels",
        "cluster=eu-1",
        "--seed",
        "7",
    ]);
    let raw_blocks = block_dirs(&raw_dir);
    assert_eq!(raw_blocks.len(), 1, "one 48h block");
    let raw_meta = BlockMeta::read_dir(&raw_blocks[0]).expect("raw meta");
    assert!(
        raw_meta.max_time - raw_meta.min_time >= 40 * H1,
        "long enough for Thanos to downsample"
    );
    let raw: BTreeMap<Labels, Vec<(i64, f64)>> = read_samples(&raw_blocks)
        .into_iter()
        .map(|(l, s)| {
            (
                l,
                s.into_iter()
                    .filter(|(_, v)| !v.is_nan())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();

    let five = downsample(&raw_blocks[0], &tmp.path().join("5m"), "5m");
    let resets = check_block(&five, &raw, M5, true);
    assert!(resets > 0, "the generated counters reset");
    check_meta(
        &BlockMeta::read_dir(&five).expect("5m meta"),
        &raw_meta,
        M5,
        &five,
    );

    let hour = downsample(&five, &tmp.path().join("1h"), "1h");
    let resets = check_block(&hour, &raw, H1, false);
    assert!(resets > 0, "resets inside the 1h stretches");
    check_meta(
        &BlockMeta::read_dir(&hour).expect("1h meta"),
        &raw_meta,
        H1,
        &hour,
    );

    if let Some(promtool) = require_tool("promtool", None) {
        promtool_checks(&promtool, &five);
        promtool_checks(&promtool, &hour);
    }
}

#[test]
fn cli_refuses_a_resolution_that_is_not_coarser() {
    let tmp = tempfile::tempdir().expect("tmp");
    let raw_dir = tmp.path().join("raw");
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        raw_dir.to_str().expect("utf-8"),
        "--series",
        "3",
        "--hours",
        "2",
    ]);
    let raw = block_dirs(&raw_dir).remove(0);
    let five = downsample(&raw, &tmp.path().join("5m"), "5m");
    let out = tmp.path().join("again");
    let again = compactd(&[
        "tools",
        "downsample",
        "--resolution",
        "5m",
        "--out",
        out.to_str().expect("utf-8"),
        five.to_str().expect("utf-8"),
    ]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("not coarser"), "{err}");
    assert!(
        !out.exists() || block_dirs(&out).is_empty(),
        "nothing written"
    );
    let bad = compactd(&[
        "tools",
        "downsample",
        "--resolution",
        "10m",
        "--out",
        out.to_str().expect("utf-8"),
        raw.to_str().expect("utf-8"),
    ]);
    assert!(!bad.status.success(), "only 5m and 1h");
}
