//! Downsampling through the CLI: `tools generate` writes a raw 48h block (counters with
//! resets, gauges, and with `--histograms` native histograms, checked at the end of this
//! file), `tools downsample` makes a 5m block of it and a 1h block of that. Every
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
use compactd::tsdb::chunks::{
    ENCODING_AGGR, ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM, ENCODING_XOR,
};
use compactd::tsdb::downsample::aggr::{Aggr, AggrChunk};
use compactd::tsdb::downsample::count_samples_in_block;
use compactd::tsdb::histogram::{decode_chunk, CounterResetHint, FloatHistogram, SampleValue};
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
    let mut out = BTreeMap::new();
    for series in b.series().expect("postings") {
        let series = series.expect("series");
        let labels = series.labels;
        let mut chunks = Vec::new();
        for c in &series.chunks {
            let (m, enc, data) = (&c.meta, c.encoding, c.data.as_slice());
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

// Native histograms: `tools generate --histograms` adds integer counter histograms (with
// resets, new buckets and schema changes) and float gauge histograms. Checked per output
// window, with plain computations on bucket maps (bucket indices brought to the output's
// schema): count is the number of raw histograms of the window, sum their sum, and the
// counter the window's last raw histogram plus what the resets before it (in the chunk's
// stretch) had reached, resets found as Thanos finds them (only where a chunk starts, when a
// count goes down, a populated bucket shrinks or vanishes, or the schema is finer than the
// batch's lowest). At 1h the inputs are the 5m counters, accumulated the same way.

/// A histogram as plain numbers: count, sum, zero count and bucket counts by (negative side,
/// index at some schema), empty buckets left out.
#[derive(Clone, Debug, Default)]
struct Plain {
    count: f64,
    sum: f64,
    zero: f64,
    buckets: BTreeMap<(bool, i32), f64>,
}

impl Plain {
    /// `h` with its buckets merged into `schema` (at most its own).
    fn of(h: &FloatHistogram, schema: i32) -> Plain {
        assert!(h.schema >= schema, "schema {} below {schema}", h.schema);
        let shift = h.schema - schema;
        let mut p = Plain {
            count: h.count,
            sum: h.sum,
            zero: h.zero_count,
            buckets: BTreeMap::new(),
        };
        for (negative, spans, counts) in [
            (false, &h.positive_spans, &h.positive_buckets),
            (true, &h.negative_spans, &h.negative_buckets),
        ] {
            let mut idx = 0i32;
            let mut k = 0;
            for s in spans.iter() {
                idx += s.offset;
                for _ in 0..s.length {
                    let key = ((idx - 1) >> shift) + 1;
                    *p.buckets.entry((negative, key)).or_default() += counts[k];
                    k += 1;
                    idx += 1;
                }
            }
        }
        p.buckets.retain(|_, v| *v != 0.0);
        p
    }

    fn add(&mut self, other: &Plain, sign: f64) {
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        self.zero += sign * other.zero;
        for (k, v) in &other.buckets {
            *self.buckets.entry(*k).or_default() += sign * v;
        }
    }

    /// A count, the zero count or a populated bucket went down since `previous`.
    fn dropped_since(&self, previous: &Plain) -> bool {
        self.count < previous.count
            || self.zero < previous.zero
            || previous
                .buckets
                .iter()
                .any(|(k, v)| self.buckets.get(k).copied().unwrap_or(0.0) < *v)
    }

    fn close_to(&self, other: &Plain) -> bool {
        let keys: std::collections::BTreeSet<_> =
            self.buckets.keys().chain(other.buckets.keys()).collect();
        close(self.count, other.count, false)
            && close(self.sum, other.sum, false)
            && close(self.zero, other.zero, false)
            && keys.into_iter().all(|k| {
                close(
                    self.buckets.get(k).copied().unwrap_or(0.0),
                    other.buckets.get(k).copied().unwrap_or(0.0),
                    false,
                )
            })
    }
}

/// A histogram sample with the hint it was read with.
type HSample = (i64, FloatHistogram);

/// The native histogram series of a raw block, as Thanos reads them: staleness markers
/// dropped, integer histograms converted.
fn read_raw_histograms(dir: &Path) -> BTreeMap<Labels, Vec<HSample>> {
    let mut b = BlockReader::open(dir).expect("open block");
    let mut out = BTreeMap::new();
    for series in b.series().expect("postings") {
        let series = series.expect("series");
        let labels = series.labels;
        let mut samples = Vec::new();
        for c in &series.chunks {
            let (enc, data) = (c.encoding, c.data.as_slice());
            if enc != ENCODING_HISTOGRAM && enc != ENCODING_FLOAT_HISTOGRAM {
                continue;
            }
            for (t, v) in decode_chunk(enc, data).expect("histogram chunk decodes") {
                let h = match v {
                    SampleValue::Histogram(h) => h.to_float(),
                    SampleValue::FloatHistogram(h) => h,
                    SampleValue::Float(_) => unreachable!("histogram chunk"),
                };
                if !h.is_stale() {
                    samples.push((t, h));
                }
            }
        }
        if !samples.is_empty() {
            out.insert(labels, samples);
        }
    }
    out
}

/// One histogram aggregate chunk: count, sum and counter samples.
struct HistChunk {
    max_time: i64,
    count: Vec<(i64, f64)>,
    sum: Vec<HSample>,
    counter: Vec<HSample>,
}

fn read_histogram_aggregates(dir: &Path) -> BTreeMap<Labels, Vec<HistChunk>> {
    let mut b = BlockReader::open(dir).expect("open block");
    let mut out = BTreeMap::new();
    for series in b.series().expect("postings") {
        let series = series.expect("series");
        let labels = series.labels;
        let mut chunks = Vec::new();
        for c in &series.chunks {
            let (m, enc, data) = (&c.meta, c.encoding, c.data.as_slice());
            assert_eq!(enc, ENCODING_AGGR);
            let parsed = AggrChunk::parse(data).expect("aggr chunk parses");
            if !parsed.is_histogram() {
                continue;
            }
            assert!(parsed.get(Aggr::Min).is_none() && parsed.get(Aggr::Max).is_none());
            let histograms = |a: Aggr| -> Vec<HSample> {
                let sub = parsed.get(a).expect("sum and counter present");
                assert_eq!(sub.encoding, ENCODING_FLOAT_HISTOGRAM);
                decode_chunk(sub.encoding, sub.data)
                    .expect("aggregate decodes")
                    .into_iter()
                    .map(|(t, v)| match v {
                        SampleValue::FloatHistogram(h) => (t, h),
                        _ => unreachable!("float histogram chunk"),
                    })
                    .collect()
            };
            let mut count = Vec::new();
            let mut it = XorIter::new(parsed.get(Aggr::Count).expect("count").data);
            while let Some(s) = it.next_sample().expect("count decodes") {
                count.push(s);
            }
            chunks.push(HistChunk {
                max_time: m.max_time,
                count,
                sum: histograms(Aggr::Sum),
                counter: histograms(Aggr::Counter),
            });
        }
        if !chunks.is_empty() {
            out.insert(labels, chunks);
        }
    }
    out
}

/// Thanos' running counter over `samples` (one batch) at `schema`: the first, then each
/// increase, or the whole histogram after a reset; the total after every sample.
fn running_counter(samples: &[&HSample], schema: i32) -> Vec<Plain> {
    let mut out: Vec<Plain> = Vec::new();
    let mut previous: Option<Plain> = None;
    for (_, h) in samples {
        let p = Plain::of(h, schema);
        let total = match (&previous, out.last()) {
            (Some(prev), Some(total)) => {
                let gauge = h.counter_reset_hint == CounterResetHint::Gauge;
                let reset = !gauge
                    && h.counter_reset_hint == CounterResetHint::Unknown
                    && (h.schema > schema || p.dropped_since(prev));
                let mut total = total.clone();
                if reset {
                    total.add(&p, 1.0);
                } else {
                    total.add(&p, 1.0);
                    total.add(prev, -1.0);
                }
                total
            }
            _ => p.clone(),
        };
        out.push(total);
        previous = Some(p);
    }
    out
}

/// Checks the chunks of one series: each window's count and sum against the `inputs` grouped
/// by window (`window_of` maps an input to the output stamp's window), and the counter
/// against [`running_counter`] over `counter_inputs`, the samples the counter aggregates.
fn check_histogram_windows(
    name: &str,
    chunks: &[HistChunk],
    inputs: &[HSample],
    counter_inputs: &[HSample],
    resolution: i64,
) -> usize {
    let mut from_t = i64::MIN;
    let mut windows = 0;
    for (k, c) in chunks.iter().enumerate() {
        let in_chunk = |t: i64| t > from_t && t <= c.max_time;
        let ctx = |what: String| format!("{name}: chunk {k} at {resolution} ms: {what}");
        assert_eq!(c.count.len(), c.sum.len(), "{}", ctx("windows".into()));
        assert_eq!(c.count.len(), c.counter.len(), "{}", ctx("windows".into()));
        let schema = c.sum[0].1.schema;
        let counter_schema = c.counter[0].1.schema;
        let counters: Vec<&HSample> = counter_inputs.iter().filter(|s| in_chunk(s.0)).collect();
        let running = running_counter(&counters, counter_schema);
        for (i, &(stamp, count)) in c.count.iter().enumerate() {
            let window = stamp / resolution;
            let group: Vec<&HSample> = inputs
                .iter()
                .filter(|s| in_chunk(s.0) && s.0 / resolution == window)
                .collect();
            assert_eq!(
                count,
                group.len() as f64,
                "{}",
                ctx(format!("count of {stamp}"))
            );
            let mut sum = Plain::default();
            for (_, h) in &group {
                sum.add(&Plain::of(h, schema), 1.0);
            }
            assert!(
                Plain::of(&c.sum[i].1, schema).close_to(&sum),
                "{}",
                ctx(format!("sum of {stamp}: {:?} vs {sum:?}", c.sum[i].1))
            );
            let last = counters
                .iter()
                .rposition(|s| s.0 / resolution == window)
                .expect("the window has counter inputs");
            assert!(
                Plain::of(&c.counter[i].1, counter_schema).close_to(&running[last]),
                "{}",
                ctx(format!("counter of {stamp}"))
            );
            windows += 1;
        }
        from_t = c.max_time;
    }
    windows
}

#[test]
fn native_histograms_downsample_to_5m_and_1h() {
    let tmp = tempfile::tempdir().expect("tmp");
    let raw_dir = tmp.path().join("raw");
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        raw_dir.to_str().expect("utf-8"),
        "--series",
        "12",
        "--hours",
        "48",
        "--block-duration",
        "48h",
        "--start-ms",
        &START_MS.to_string(),
        "--histograms",
        "--seed",
        "11",
    ]);
    let raw_blocks = block_dirs(&raw_dir);
    assert_eq!(raw_blocks.len(), 1, "one 48h block");
    let raw_meta = BlockMeta::read_dir(&raw_blocks[0]).expect("raw meta");
    assert!(raw_meta.max_time - raw_meta.min_time >= 40 * H1);
    let raw = read_raw_histograms(&raw_blocks[0]);
    assert!(raw.len() >= 2, "counter and gauge histogram series");
    let hints = raw.values().flatten().map(|s| s.1.counter_reset_hint);
    assert!(hints.clone().any(|h| h == CounterResetHint::Gauge));
    assert!(hints.clone().any(|h| h != CounterResetHint::Gauge));
    let schemas: std::collections::BTreeSet<i32> =
        raw.values().flatten().map(|s| s.1.schema).collect();
    assert!(schemas.len() >= 3, "schema changes: {schemas:?}");
    assert!(
        raw.values()
            .any(|s| s.windows(2).any(|w| w[1].1.count < w[0].1.count)),
        "the counter histograms reset"
    );

    let five = downsample(&raw_blocks[0], &tmp.path().join("5m"), "5m");
    let got5 = read_histogram_aggregates(&five);
    assert_eq!(
        got5.keys().collect::<Vec<_>>(),
        raw.keys().collect::<Vec<_>>()
    );
    let mut windows = 0;
    for (labels, chunks) in &got5 {
        let samples = &raw[labels];
        windows += check_histogram_windows(&labels.to_string(), chunks, samples, samples, M5);
    }
    assert!(windows > 500, "{windows} windows");

    let hour = downsample(&five, &tmp.path().join("1h"), "1h");
    let got1 = read_histogram_aggregates(&hour);
    assert_eq!(
        got1.keys().collect::<Vec<_>>(),
        got5.keys().collect::<Vec<_>>()
    );
    for (labels, chunks) in &got1 {
        // Each raw sample moved to its 5m window's stamp: what the 1h windows group; the
        // counter accumulates the 5m counters.
        let five_chunks = &got5[labels];
        let mut moved = Vec::new();
        let mut it = raw[labels].iter().peekable();
        for c in five_chunks {
            for &(stamp, _) in &c.count {
                while let Some(s) = it.next_if(|s| s.0 <= stamp) {
                    moved.push((stamp, s.1.clone()));
                }
            }
        }
        assert_eq!(
            moved.len(),
            raw[labels].len(),
            "every raw sample in a 5m window"
        );
        let counters: Vec<HSample> = five_chunks.iter().flat_map(|c| c.counter.clone()).collect();
        check_histogram_windows(&labels.to_string(), chunks, &moved, &counters, H1);
    }
    assert_eq!(
        count_samples_in_block(&hour).expect("count"),
        count_samples_in_block(&five).expect("count"),
        "the 1h counts add up to the 5m counts"
    );
}
