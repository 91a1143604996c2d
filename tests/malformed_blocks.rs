//! `compactd compact` on a filesystem bucket holding a block whose index breaks an order rule
//! that old Prometheus versions broke, with and without the Thanos flag for it:
//! - chunks of a series out of time order: halts naming the block; with
//!   `--compact.skip-block-with-out-of-order-chunks` the block gets Thanos' no-compact mark and
//!   everything else compacts;
//! - label names of a series out of order (Prometheus 2.8.0 and older): halts naming the
//!   block; with `--debug.accept-malformed-index` the block compacts, the series keeping its
//!   labels as stored, as Thanos writes it.
//!
//! The damaged index is a generated block's index re-encoded by the small index v2 encoder
//! below (not compactd's writer, which refuses both), after checking that the encoder writes
//! the undamaged index byte for byte as compactd's writer did.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use compactd::tsdb::index::{ChunkMeta, IndexReader, ReadOptions};
use compactd::tsdb::meta::BlockMeta;

/// One series of an index: label pairs as stored, and its chunks.
#[derive(Clone, Debug)]
struct Series {
    labels: Vec<(String, String)>,
    chunks: Vec<ChunkMeta>,
}

/// The symbol table and every series (in postings order) of a well-formed index.
fn read_index(path: &Path) -> (Vec<String>, Vec<Series>) {
    let mut r = IndexReader::open(path).unwrap();
    let symbols: Vec<String> = r.symbols().iter().map(String::from).collect();
    let mut series = Vec::new();
    for s in r.all_series().unwrap() {
        let s = s.unwrap();
        let text = |s: u32| symbols[s as usize].clone();
        series.push(Series {
            labels: s.refs.iter().map(|&(n, v)| (text(n), text(v))).collect(),
            chunks: s.chunks,
        });
    }
    (symbols, series)
}

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint(out: &mut Vec<u8>, v: i64) {
    uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// `be32 len | body | be32 CRC32C(body)`.
fn section(out: &mut Vec<u8>, body: &[u8]) {
    out.extend((body.len() as u32).to_be_bytes());
    out.extend(body);
    out.extend(crc32c::crc32c(body).to_be_bytes());
}

fn pad(out: &mut Vec<u8>, align: usize) {
    while out.len() % align != 0 {
        out.push(0);
    }
}

/// The series payload: labels as stored, chunks as given (deltas wrap, as Go's encoder's).
fn series_payload(s: &Series, symbol: &BTreeMap<&str, u32>) -> Vec<u8> {
    let mut p = Vec::new();
    uvarint(&mut p, s.labels.len() as u64);
    for (name, value) in &s.labels {
        uvarint(&mut p, u64::from(symbol[name.as_str()]));
        uvarint(&mut p, u64::from(symbol[value.as_str()]));
    }
    uvarint(&mut p, s.chunks.len() as u64);
    for (i, c) in s.chunks.iter().enumerate() {
        if i == 0 {
            varint(&mut p, c.min_time);
            uvarint(&mut p, (c.max_time - c.min_time) as u64);
            uvarint(&mut p, c.chunk_ref);
        } else {
            let previous = &s.chunks[i - 1];
            uvarint(&mut p, c.min_time.wrapping_sub(previous.max_time) as u64);
            uvarint(&mut p, (c.max_time - c.min_time) as u64);
            varint(&mut p, c.chunk_ref.wrapping_sub(previous.chunk_ref) as i64);
        }
    }
    p
}

/// An index in format v2 (the layout of `src/tsdb/index/mod.rs`, without label indices):
/// `symbols` (sorted), then `series` in the given order with nothing checked.
fn encode_index(symbols: &[String], series: &[Series]) -> Vec<u8> {
    let symbol: BTreeMap<&str, u32> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let mut out = vec![0xba, 0xaa, 0xd7, 0x00, 2];
    let mut body = (symbols.len() as u32).to_be_bytes().to_vec();
    for s in symbols {
        uvarint(&mut body, s.len() as u64);
        body.extend(s.as_bytes());
    }
    section(&mut out, &body);
    let series_at = out.len() as u64;
    let mut lists: BTreeMap<(&str, &str), Vec<u32>> = BTreeMap::new();
    for s in series {
        pad(&mut out, 16);
        let id = (out.len() / 16) as u32;
        lists.entry(("", "")).or_default().push(id);
        for (name, value) in &s.labels {
            lists.entry((name, value)).or_default().push(id);
        }
        let payload = series_payload(s, &symbol);
        uvarint(&mut out, payload.len() as u64);
        out.extend(&payload);
        out.extend(crc32c::crc32c(&payload).to_be_bytes());
    }
    let postings_at = out.len() as u64;
    let mut table = (lists.len() as u32).to_be_bytes().to_vec();
    for ((name, value), ids) in &lists {
        pad(&mut out, 4);
        let mut entry = vec![2];
        for s in [name, value] {
            uvarint(&mut entry, s.len() as u64);
            entry.extend(s.as_bytes());
        }
        uvarint(&mut entry, out.len() as u64);
        table.extend(entry);
        let mut body = (ids.len() as u32).to_be_bytes().to_vec();
        ids.iter().for_each(|id| body.extend(id.to_be_bytes()));
        section(&mut out, &body);
    }
    let table_at = out.len() as u64;
    section(&mut out, &table);
    let toc_at = out.len();
    for offset in [5, series_at, postings_at, table_at, postings_at, table_at] {
        out.extend(offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[toc_at..]);
    out.extend(crc.to_be_bytes());
    out
}

/// Rewrites the index of `block` with `damage` applied to its series. First checks that the
/// encoder, given the series unchanged, writes the very bytes compactd's writer wrote.
fn damage_index(block: &Path, damage: impl FnOnce(&mut Vec<Series>)) {
    let path = block.join("index");
    let (symbols, mut series) = read_index(&path);
    let original = std::fs::read(&path).unwrap();
    assert!(
        encode_index(&symbols, &series) == original,
        "the fixture encoder reproduces a well-formed index"
    );
    damage(&mut series);
    std::fs::write(&path, encode_index(&symbols, &series)).unwrap();
}

fn meta(block: &Path) -> BlockMeta {
    BlockMeta::read_dir(block).unwrap()
}

fn cluster(m: &BlockMeta) -> &str {
    &m.thanos.as_ref().unwrap().labels["cluster"]
}

/// The generated (not compacted) blocks of `stream`, oldest first.
fn stream_blocks(bucket: &Path, stream: &str) -> Vec<PathBuf> {
    let mut blocks: Vec<PathBuf> = block_dirs(bucket)
        .into_iter()
        .filter(|b| cluster(&meta(b)) == stream && meta(b).compaction.level == 1)
        .collect();
    blocks.sort_by_key(|b| meta(b).min_time);
    blocks
}

/// The blocks compactd wrote into `bucket`, by stream: their sources.
fn compacted(bucket: &Path) -> Vec<(String, Vec<String>)> {
    block_dirs(bucket)
        .iter()
        .map(|b| meta(b))
        .filter(|m| m.thanos.as_ref().unwrap().source == "compactor")
        .map(|m| {
            let sources = m.compaction.sources.iter().map(|s| s.to_string()).collect();
            (cluster(&m).to_string(), sources)
        })
        .collect()
}

fn ulid(block: &Path) -> String {
    block.file_name().unwrap().to_string_lossy().into_owned()
}

/// Runs `compactd compact` once on a copy of `template` in `work/bucket` with `extra` flags;
/// returns the bucket, the exit code and the log.
fn compact_copy(template: &Path, work: &Path, extra: &[&str]) -> (PathBuf, i32, String) {
    let bucket = work.join("bucket");
    copy_dir(template, &bucket);
    let out = Command::new(env!("CARGO_BIN_EXE_compactd"))
        .args(["compact", "--objstore.config", &fs_config(&bucket)])
        .args(["--http-address=127.0.0.1:0", "--consistency-delay=0s"])
        .args(["--downsampling.disable", "--data-dir"])
        .arg(work.join("data"))
        .args(extra)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (bucket, out.status.code().expect("exited"), log)
}

#[test]
fn out_of_order_chunks_halt_or_with_the_flag_get_a_no_compact_mark() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    generate_streams(&template, 10, 24);
    let bad = stream_blocks(&template, "eu-1")[1].clone();
    damage_index(&bad, |series| {
        let s = series.iter_mut().find(|s| s.chunks.len() >= 2).unwrap();
        // Each chunk keeps its true range and reference; only their order changes.
        s.chunks.swap(0, 1);
    });
    let id = ulid(&bad);

    let (bucket, code, log) = compact_copy(&template, &tmp.path().join("off"), &[]);
    assert_eq!(code, 2, "halted:\n{log}");
    let halt = halt_line(&log);
    assert!(
        halt.contains(&format!("block {id} has out-of-order chunks")),
        "{halt}"
    );
    assert!(
        halt.contains("--compact.skip-block-with-out-of-order-chunks"),
        "{halt}"
    );
    assert!(!bucket.join(&id).join("no-compact-mark.json").exists());

    let flag = "--compact.skip-block-with-out-of-order-chunks";
    let (bucket, code, log) = compact_copy(&template, &tmp.path().join("on"), &[flag]);
    assert_eq!(code, 0, "{log}");
    let mark: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bucket.join(&id).join("no-compact-mark.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(mark["id"], id.as_str());
    assert_eq!(mark["version"], 1);
    assert_eq!(mark["reason"], "block-index-out-of-order-chunk");
    assert!(log.lines().any(|l| l.contains("msg=\"marked block\"")
        && l.contains(&id)
        && l.contains("reason=block-index-out-of-order-chunk")));
    // The block stays as it is, in no compacted block; everything else compacted.
    assert!(bucket.join(&id).join("meta.json").exists());
    assert!(!bucket.join(&id).join("deletion-mark.json").exists());
    let compacted = compacted(&bucket);
    assert!(
        compacted.iter().all(|(_, sources)| !sources.contains(&id)),
        "{compacted:?}"
    );
    let sources = |stream: &str| -> Vec<String> {
        let mut all: Vec<String> = compacted
            .iter()
            .filter(|(c, _)| c == stream)
            .flat_map(|(_, s)| s.clone())
            .collect();
        all.sort();
        all
    };
    let ids = |stream: &str| -> Vec<String> {
        stream_blocks(&template, stream)
            .iter()
            .map(|b| ulid(b))
            .collect()
    };
    // us-1: both full 8h windows of 24h, as without the damage.
    let mut want = ids("us-1")[..8].to_vec();
    want.sort();
    assert_eq!(sources("us-1"), want, "{compacted:?}");
    // eu-1: the next 8h window whole, and the blocks after the marked one in its window.
    let eu = sources("eu-1");
    for b in &ids("eu-1")[2..8] {
        assert!(eu.contains(b), "{b} compacted: {compacted:?}");
    }
}

/// Puts the last two labels of one series of `series` out of order, choosing a series whose
/// place among its neighbours (comparing label pairs as stored) stays the same, as the
/// Prometheus 2.8 head ordered such series. Returns the damaged series' labels.
fn unsort_labels(series: &mut [Series]) -> Vec<(String, String)> {
    for i in (0..series.len()).rev() {
        let mut labels = series[i].labels.clone();
        let n = labels.len();
        if n < 3 {
            continue;
        }
        labels.swap(n - 2, n - 1);
        let after_previous = i == 0 || series[i - 1].labels < labels;
        let before_next = i + 1 == series.len() || labels < series[i + 1].labels;
        if after_previous && before_next {
            series[i].labels = labels.clone();
            return labels;
        }
    }
    panic!("no series keeps its place with two labels swapped");
}

/// The log line of the halt; panics when the log has none.
fn halt_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.contains("critical error detected; halting"))
        .unwrap_or_else(|| panic!("a halt line:\n{log}"))
}

#[test]
fn unsorted_label_names_halt_or_with_the_flag_compact_as_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    generate_stream(&template, 10, 12, "cluster=eu-1", 1, &[]);
    let bad = stream_blocks(&template, "eu-1")[1].clone();
    let mut malformed = Vec::new();
    damage_index(&bad, |series| malformed = unsort_labels(series));
    let id = ulid(&bad);

    let (bucket, code, log) = compact_copy(&template, &tmp.path().join("off"), &[]);
    assert_eq!(code, 2, "halted:\n{log}");
    let halt = halt_line(&log);
    assert!(halt.contains(&id), "the block is named: {halt}");
    assert!(halt.contains("label names are not sorted"), "{halt}");
    assert!(halt.contains("--debug.accept-malformed-index"), "{halt}");
    assert!(compacted(&bucket).is_empty());

    let flag = "--debug.accept-malformed-index";
    let (bucket, code, log) = compact_copy(&template, &tmp.path().join("on"), &[flag]);
    assert_eq!(code, 0, "{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("level=warn") && l.contains(flag)),
        "no warning for the flag: {log}"
    );
    let out = block_dirs(&bucket)
        .into_iter()
        .find(|b| {
            meta(b)
                .compaction
                .sources
                .iter()
                .any(|s| s.to_string() == id)
        })
        .unwrap_or_else(|| panic!("a block compacted from {id}:\n{log}"));
    assert!(
        bucket.join(&id).join("deletion-mark.json").exists(),
        "a compacted source"
    );
    // The series keeps its labels as stored, as Prometheus' compactor writes them, so the new
    // block needs the flag too (in Thanos as well).
    let accept = ReadOptions {
        accept_unsorted_label_names: true,
    };
    let mut r = IndexReader::open_with(&out.join("index"), accept).unwrap();
    let series: Vec<_> = r.all_series().unwrap().map(|s| s.unwrap()).collect();
    let text = |s: u32| r.symbols().get(s).unwrap().to_string();
    let found = series.iter().any(|s| {
        let labels: Vec<(String, String)> =
            s.refs.iter().map(|&(n, v)| (text(n), text(v))).collect();
        labels == malformed
    });
    assert!(found, "{malformed:?} in the new block");
}
