//! Native histogram blocks against Prometheus 2.42: blocks written by `compactd tools generate
//! --histograms` decode with our codec and are read and compacted by the Go 2.42 compactor
//! (`gocompact`); overlapping histogram blocks compacted by `compactd tools compact` keep
//! every sample, and agree with what gocompact makes of them.
//!
//! promtool 2.42's `tsdb dump` iterates float samples only (`for it.Next() == ValFloat`): it
//! prints nothing for a histogram series and no error, so it can check the float series of
//! histogram blocks and that the blocks open, not the histograms themselves.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use compactd::tsdb::block::BlockReader;
use compactd::tsdb::chunks::ENCODING_XOR;
use compactd::tsdb::histogram::spans::BucketIndices;
use compactd::tsdb::histogram::{chunk_header, decode_chunk, SampleValue, Span};
use compactd::tsdb::labels::Labels;
use compactd::tsdb::xor::XorIter;

const START_MS: i64 = 1_735_689_600_000;

type Series = BTreeMap<Labels, Vec<(i64, SampleValue)>>;

/// One chunk of a block, with its series.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Chunk {
    labels: Labels,
    min_time: i64,
    max_time: i64,
    encoding: u8,
    data: Vec<u8>,
}

/// Every chunk of the blocks and their samples (inside each block's time range), merged per
/// series with the earliest block winning a shared timestamp.
fn read_blocks(blocks: &[PathBuf]) -> (Series, Vec<Chunk>) {
    let mut merged: BTreeMap<Labels, BTreeMap<i64, SampleValue>> = BTreeMap::new();
    let mut chunks = Vec::new();
    for dir in blocks {
        let mut b = BlockReader::open(dir).expect("open block");
        let range = b.meta.min_time..b.meta.max_time;
        for series in b.series().expect("postings") {
            let series = series.expect("series");
            let labels = series.labels;
            let samples = merged.entry(labels.clone()).or_default();
            for c in series.chunks {
                for (t, v) in decode(c.encoding, &c.data) {
                    if range.contains(&t) {
                        samples.entry(t).or_insert(v);
                    }
                }
                chunks.push(Chunk {
                    labels: labels.clone(),
                    min_time: c.meta.min_time,
                    max_time: c.meta.max_time,
                    encoding: c.encoding,
                    data: c.data,
                });
            }
        }
    }
    let series = merged
        .into_iter()
        .map(|(l, m)| (l, m.into_iter().collect()))
        .collect();
    (series, chunks)
}

fn decode(encoding: u8, data: &[u8]) -> Vec<(i64, SampleValue)> {
    if encoding == ENCODING_XOR {
        let mut it = XorIter::new(data);
        let mut out = Vec::new();
        while let Some((t, v)) = it.next_sample().expect("XOR chunk decodes") {
            out.push((t, SampleValue::Float(v)));
        }
        return out;
    }
    decode_chunk(encoding, data).expect("histogram chunk decodes")
}

/// What a sample says, independent of chunk layout and position: floats by bits, buckets by
/// index with empty ones left out (recoding adds empty buckets), counter-reset hints ignored.
fn observations(v: &SampleValue) -> String {
    let buckets = |spans: &[Span], counts: Vec<f64>| -> Vec<(i64, u64)> {
        BucketIndices::new(spans)
            .zip(counts)
            .filter(|(_, c)| *c != 0.0)
            .map(|(i, c)| (i, c.to_bits()))
            .collect()
    };
    match v {
        SampleValue::Float(f) => format!("float {:x}", f.to_bits()),
        SampleValue::Histogram(h) if h.is_stale() => "stale".into(),
        SampleValue::FloatHistogram(h) if h.is_stale() => "stale".into(),
        SampleValue::Histogram(h) => {
            let counts = |d: Vec<i64>| d.into_iter().map(|c| c as f64).collect();
            format!(
                "int schema {} zt {:x} zc {} count {} sum {:x} pos {:?} neg {:?} custom {:?}",
                h.schema,
                h.zero_threshold.to_bits(),
                h.zero_count,
                h.count,
                h.sum.to_bits(),
                buckets(&h.positive_spans, counts(h.positive_counts())),
                buckets(&h.negative_spans, counts(h.negative_counts())),
                h.custom_values
            )
        }
        SampleValue::FloatHistogram(h) => format!(
            "float schema {} zt {:x} zc {:x} count {:x} sum {:x} pos {:?} neg {:?} custom {:?}",
            h.schema,
            h.zero_threshold.to_bits(),
            h.zero_count.to_bits(),
            h.count.to_bits(),
            h.sum.to_bits(),
            buckets(&h.positive_spans, h.positive_buckets.clone()),
            buckets(&h.negative_spans, h.negative_buckets.clone()),
            h.custom_values
        ),
    }
}

fn plain(series: &Series) -> BTreeMap<&Labels, Vec<(i64, String)>> {
    series
        .iter()
        .map(|(l, s)| (l, s.iter().map(|(t, v)| (*t, observations(v))).collect()))
        .collect()
}

/// Asserts that two sample sets say the same, naming the first series that differs.
fn assert_same_samples(got: &Series, want: &Series, what: &str) {
    let (got, want) = (plain(got), plain(want));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: series"
    );
    for (l, w) in &want {
        let g = &got[l];
        assert_eq!(g.len(), w.len(), "{what}: sample count of {l}");
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert_eq!(a, b, "{what}: sample {i} of {l}");
        }
    }
}

fn generate(out: &Path, start_ms: i64, extra: &[&str]) -> Vec<PathBuf> {
    let start = start_ms.to_string();
    let mut args = vec![
        "tools",
        "generate",
        "--out",
        out.to_str().expect("utf-8 path"),
        "--start-ms",
        &start,
    ];
    args.extend_from_slice(extra);
    compactd_ok(&args);
    block_dirs(out)
}

fn compact_ours(out: &Path, inputs: &[PathBuf]) -> PathBuf {
    let mut args = vec![
        "tools",
        "compact",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend(inputs.iter().map(|p| p.to_str().expect("utf-8 path")));
    let stdout = compactd_ok(&args);
    out.join(stdout.lines().next().expect("block id").trim())
}

fn compact_go(gocompact: &Path, out: &Path, inputs: &[PathBuf]) -> PathBuf {
    let st = Command::new(gocompact)
        .args(["compact", "-out"])
        .arg(out)
        .args(inputs)
        .output()
        .expect("run gocompact");
    assert!(
        st.status.success(),
        "gocompact: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    block_dirs(out).pop().expect("gocompact wrote a block")
}

/// The float samples of `series` in `promtool tsdb dump` format (histograms are not dumped).
fn float_dump(series: &Series) -> String {
    let mut s = String::new();
    for (l, samples) in series {
        for (t, v) in samples {
            if let SampleValue::Float(f) = v {
                s.push_str(&format!("{l} {} {t}\n", go_format_g(*f)));
            }
        }
    }
    s
}

#[test]
fn generated_histogram_blocks_decode_and_prometheus_reads_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let args = [
        "--series",
        "130",
        "--hours",
        "4",
        "--seed",
        "11",
        "--histograms",
    ];
    let blocks = generate(&tmp.path().join("gen"), START_MS, &args);
    assert_eq!(blocks.len(), 2);
    let (series, chunks) = read_blocks(&blocks);
    // `tools inspect` decodes every histogram chunk against its index entry.
    for b in &blocks {
        compactd_ok(&["tools", "inspect", b.to_str().expect("utf-8 path")]);
    }

    // Both encodings, every counter-reset header the head writes, and recoded chunks.
    let encodings: BTreeSet<u8> = chunks.iter().map(|c| c.encoding).collect();
    assert_eq!(encodings, BTreeSet::from([1, 2, 3]));
    let headers: BTreeSet<u8> = chunks
        .iter()
        .filter(|c| c.encoding != ENCODING_XOR)
        .map(|c| chunk_header(&c.data).expect("header").1.flags())
        .collect();
    for h in [0x40, 0x80, 0xc0] {
        assert!(headers.contains(&h), "header {h:#x} in {headers:x?}");
    }
    let recoded = chunks.iter().filter(|c| c.encoding == 2).any(|c| {
        match &decode(c.encoding, &c.data)[0].1 {
            SampleValue::Histogram(h) => h.positive_counts().contains(&0),
            _ => false,
        }
    });
    assert!(
        recoded,
        "a chunk widened to buckets its first sample did not use"
    );

    // What the generator promises: counts add up.
    let mut histograms = 0;
    for v in series.values().flatten().map(|s| &s.1) {
        match v {
            SampleValue::Histogram(h) => {
                histograms += 1;
                let buckets: i64 = h.positive_counts().iter().sum();
                assert_eq!(h.count, h.zero_count + buckets as u64);
            }
            SampleValue::FloatHistogram(h) => {
                histograms += 1;
                let buckets: f64 = h.positive_buckets.iter().chain(&h.negative_buckets).sum();
                assert_eq!(h.count, h.zero_count + buckets);
            }
            SampleValue::Float(_) => {}
        }
    }
    assert!(histograms > 3000, "{histograms} histogram samples");

    // The float series are those of a generation without histograms.
    let floats_only = generate(&tmp.path().join("floats"), START_MS, &args[..6]);
    let (floats, _) = read_blocks(&floats_only);
    assert_eq!(float_dump(&series), float_dump(&floats));
    assert!(floats.len() < series.len());

    if let Some(gocompact) = require_tool("gocompact", Some("COMPACTD_GOCOMPACT")) {
        assert_go_copies_the_chunks(&gocompact, tmp.path(), &blocks, &series, chunks);
    }
    if let Some(promtool) = require_tool("promtool", None) {
        assert_promtool_reads_the_floats(&promtool, &blocks, &series);
    }
}

/// Prometheus 2.42 compacts the blocks; with no overlap it copies every chunk, as we do.
fn assert_go_copies_the_chunks(
    gocompact: &Path,
    tmp: &Path,
    blocks: &[PathBuf],
    series: &Series,
    chunks: Vec<Chunk>,
) {
    let go = compact_go(gocompact, &tmp.join("go"), blocks);
    let ours = compact_ours(&tmp.join("ours"), blocks);
    let (go_series, go_chunks) = read_blocks(&[go]);
    let (our_series, our_chunks) = read_blocks(&[ours]);
    assert_same_samples(&go_series, series, "gocompact output");
    assert_same_samples(&our_series, series, "our output");
    let sorted = |mut c: Vec<Chunk>| {
        c.sort_by(|a, b| (&a.labels, a.min_time).cmp(&(&b.labels, b.min_time)));
        c
    };
    let chunks = sorted(chunks);
    assert!(sorted(go_chunks) == chunks, "gocompact copies the chunks");
    assert!(sorted(our_chunks) == chunks, "we copy the chunks");
}

/// promtool 2.42 opens the blocks and dumps their float samples; histograms it skips.
fn assert_promtool_reads_the_floats(promtool: &Path, blocks: &[PathBuf], series: &Series) {
    let dump = promtool_dump(promtool, blocks);
    let mut lines: Vec<&str> = dump.lines().collect();
    lines.sort_unstable();
    let ours = float_dump(series);
    let mut want: Vec<&str> = ours.lines().collect();
    want.sort_unstable();
    assert_eq!(lines, want, "promtool prints the float samples only");
    for b in blocks {
        let out = Command::new(promtool)
            .args(["tsdb", "analyze", "--extended"])
            .arg(b.parent().expect("parent"))
            .arg(b.file_name().expect("name"))
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Per series, per timestamp the sample of the earliest input.
fn chain(inputs: &[&Series]) -> Series {
    let mut merged: BTreeMap<Labels, BTreeMap<i64, SampleValue>> = BTreeMap::new();
    for s in inputs {
        for (l, samples) in s.iter() {
            let m = merged.entry(l.clone()).or_default();
            for (t, v) in samples {
                m.entry(*t).or_insert_with(|| v.clone());
            }
        }
    }
    merged
        .into_iter()
        .map(|(l, m)| (l, m.into_iter().collect()))
        .collect()
}

#[test]
fn overlapping_histogram_blocks_keep_every_sample() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let args = [
        "--series",
        "70",
        "--hours",
        "2",
        "--seed",
        "5",
        "--histograms",
    ];
    // The same data twice, the second 1 ms later: every sample overlaps a twin.
    let a = generate(&tmp.path().join("a"), START_MS, &args);
    let b = generate(&tmp.path().join("b"), START_MS + 1, &args);
    let inputs: Vec<PathBuf> = a.iter().chain(&b).cloned().collect();
    let (sa, _) = read_blocks(&a);
    let (sb, _) = read_blocks(&b);
    let want = chain(&[&sa, &sb]);

    let ours = compact_ours(&tmp.path().join("ours"), &inputs);
    let (got, our_chunks) = read_blocks(std::slice::from_ref(&ours));
    assert_same_samples(&got, &want, "compactd tools compact");
    let histogram_chunks = our_chunks.iter().filter(|c| c.encoding != ENCODING_XOR);
    assert!(histogram_chunks.count() > 0);

    let Some(gocompact) = require_tool("gocompact", Some("COMPACTD_GOCOMPACT")) else {
        return;
    };
    let go = compact_go(&gocompact, &tmp.path().join("go"), &inputs);
    let (go_series, go_chunks) = read_blocks(&[go]);
    assert_same_samples(&go_series, &want, "gocompact");
    compare_chunks_with_go(&our_chunks, &go_chunks);
}

/// Float chunks must be byte-identical to Prometheus 2.42's. Histogram chunks must be where
/// 2.42 has no layout bug: its compactor appends without layout checks and never sets the
/// counter-reset header, so a chunk is compared where ours has the same time range, does not
/// start with a counter reset, and holds one layout throughout (no recoding, and then no
/// widened first sample); a gauge chunk is compared without its header bits.
fn compare_chunks_with_go(ours: &[Chunk], go: &[Chunk]) {
    let floats = |c: &[Chunk]| -> Vec<Chunk> {
        c.iter()
            .filter(|c| c.encoding == ENCODING_XOR)
            .cloned()
            .collect()
    };
    assert_eq!(floats(ours), floats(go), "float chunks");
    let go_by_range: BTreeMap<(&Labels, i64, i64), &Chunk> = go
        .iter()
        .map(|c| ((&c.labels, c.min_time, c.max_time), c))
        .collect();
    let (mut compared, mut skipped) = (0, 0);
    for c in ours.iter().filter(|c| c.encoding != ENCODING_XOR) {
        let header = chunk_header(&c.data).expect("header").1.flags();
        let comparable = header != 0x80 && one_layout(c);
        match go_by_range.get(&(&c.labels, c.min_time, c.max_time)) {
            Some(g) if comparable => {
                let mask = |d: &[u8]| {
                    let mut d = d.to_vec();
                    d[2] &= 0x3f;
                    d
                };
                assert_eq!(
                    mask(&c.data),
                    mask(&g.data),
                    "chunk of {} at {}",
                    c.labels,
                    c.min_time
                );
                if header == 0 {
                    assert_eq!(c.data, g.data);
                }
                compared += 1;
            }
            _ => skipped += 1,
        }
    }
    eprintln!(
        "histogram chunks byte-identical to Prometheus 2.42: {compared}; not comparable: {skipped}"
    );
    assert!(compared > 0, "some histogram chunks are comparable");
}

/// True when every sample of the chunk has the layout of its first one and the first uses all
/// its buckets (so no bucket was added by recoding).
fn one_layout(c: &Chunk) -> bool {
    let samples = decode(c.encoding, &c.data);
    let layouts: BTreeSet<String> = samples
        .iter()
        .map(|(_, v)| match v {
            SampleValue::Histogram(h) => format!("{:?} {:?}", h.positive_spans, h.negative_spans),
            SampleValue::FloatHistogram(h) => {
                format!("{:?} {:?}", h.positive_spans, h.negative_spans)
            }
            SampleValue::Float(_) => String::new(),
        })
        .collect();
    let first_full = match &samples[0].1 {
        SampleValue::Histogram(h) => !h.positive_counts().contains(&0),
        SampleValue::FloatHistogram(h) => !h.positive_buckets.contains(&0.0),
        SampleValue::Float(_) => true,
    };
    layouts.len() == 1 && first_full
}

#[test]
fn unaligned_histogram_replicas_merge_where_prometheus_2_42_panics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let args = |seed: &'static str| {
        [
            "--series",
            "70",
            "--hours",
            "2",
            "--seed",
            seed,
            "--histograms",
        ]
    };
    // Two different replicas, the second starting 7 minutes later: their layouts differ at
    // almost every merged sample, and the counts go up and down (counter resets).
    let a = generate(&tmp.path().join("a"), START_MS, &args("5"));
    let b = generate(&tmp.path().join("b"), START_MS + 420_000, &args("6"));
    let inputs: Vec<PathBuf> = a.iter().chain(&b).cloned().collect();
    let (sa, _) = read_blocks(&a);
    let (sb, _) = read_blocks(&b);
    let want = chain(&[&sa, &sb]);
    let ours = compact_ours(&tmp.path().join("ours"), &inputs);
    let (got, chunks) = read_blocks(std::slice::from_ref(&ours));
    assert_same_samples(&got, &want, "compactd tools compact");
    let resets = chunks
        .iter()
        .filter(|c| c.encoding != ENCODING_XOR)
        .filter(|c| chunk_header(&c.data).expect("header").1.flags() == 0x80)
        .count();
    assert!(resets > 10, "{resets} chunks start with a counter reset");

    assert_penalty_keeps_one_replica_at_a_time(tmp.path(), &inputs, &[&sa, &sb], &want);

    // Prometheus 2.42's compactor appends merged histograms without comparing layouts: it
    // panics (index out of range in AppendHistogram) or, should it ever succeed, must agree.
    let Some(gocompact) = require_tool("gocompact", Some("COMPACTD_GOCOMPACT")) else {
        return;
    };
    let go_out = tmp.path().join("go");
    let st = Command::new(&gocompact)
        .args(["compact", "-out"])
        .arg(&go_out)
        .args(&inputs)
        .output()
        .expect("run gocompact");
    if st.status.success() {
        let (go_series, _) = read_blocks(&block_dirs(&go_out));
        assert_same_samples(&go_series, &want, "gocompact");
    } else {
        let stderr = String::from_utf8_lossy(&st.stderr);
        assert!(stderr.contains("AppendHistogram"), "gocompact: {stderr}");
        eprintln!(
            "Prometheus 2.42 cannot merge these blocks: {}",
            stderr.lines().next().unwrap_or("")
        );
    }
}

/// Penalty deduplication through the CLI: every sample from one of the replicas, and fewer
/// samples than the chain merge `chained` keeps.
fn assert_penalty_keeps_one_replica_at_a_time(
    tmp: &Path,
    inputs: &[PathBuf],
    replicas: &[&Series],
    chained: &Series,
) {
    let out = tmp.join("penalty");
    let mut cli = vec![
        "tools",
        "compact",
        "--deduplication.func",
        "penalty",
        "--out",
    ];
    cli.push(out.to_str().expect("utf-8 path"));
    cli.extend(inputs.iter().map(|p| p.to_str().expect("utf-8 path")));
    let stdout = compactd_ok(&cli);
    let dir = out.join(stdout.lines().next().expect("block id").trim());
    let (penalty, _) = read_blocks(&[dir]);
    let count = |s: &Series| s.values().map(Vec::len).sum::<usize>();
    assert!(count(&penalty) < count(chained));
    for (l, samples) in &penalty {
        let mut union: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (t, v) in replicas.iter().filter_map(|r| r.get(l)).flatten() {
            union.entry(*t).or_default().push(observations(v));
        }
        for (t, v) in samples {
            let from_a_replica = union.get(t).is_some_and(|vs| vs.contains(&observations(v)));
            assert!(from_a_replica, "{l} at {t}");
        }
    }
}
