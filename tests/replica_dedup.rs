//! Replica deduplication through `compactd run`, checked with promtool: two HA-Prometheus
//! replicas (external labels differing only in `replica`, scrapes 2 s apart, one replica with
//! a 20-minute gap) land in one group once `--deduplication.replica-label replica` removes the
//! label, and their overlapping blocks merge into one block whose `promtool tsdb dump` equals
//! the merge computed here: every timestamp of both replicas with the default function; with
//! `--deduplication.func=penalty`, replica a until its gap, then replica b, as Thanos' penalty
//! algorithm chooses.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::block_writer::BlockWriter;
use compactd::tsdb::chunks::DEFAULT_SEGMENT_SIZE;
use compactd::tsdb::labels::Labels;
use compactd::tsdb::meta::{BlockMeta, ThanosMeta};
use compactd::tsdb::tombstones::Tombstones;

const START: i64 = 1_735_689_600_000;
const MINUTE: i64 = 60_000;
const BLOCK: i64 = 120 * MINUTE;
/// Replica a has no samples in [GAP_FROM, GAP_TO).
const GAP_FROM: i64 = START + 30 * MINUTE;
const GAP_TO: i64 = START + 50 * MINUTE;
/// Replica b scrapes this much later than a.
const SHIFT: i64 = 2_000;

fn series_names() -> [Labels; 2] {
    [
        Labels::from_pairs([("__name__", "http_requests_total"), ("job", "api")]),
        Labels::from_pairs([("__name__", "temperature_celsius"), ("job", "api")]),
    ]
}

/// A replica's samples of series `i`: one per minute over the block; b's are shifted and its
/// values differ from a's (a counter 0.5 ahead, a gauge 1 degree warmer), so the dump shows
/// which replica each sample came from.
fn replica_samples(replica: char, i: usize) -> Vec<(i64, f64)> {
    (0..120)
        .map(|k| START + k * MINUTE)
        .filter(|&t| replica == 'b' || !(GAP_FROM..GAP_TO).contains(&t))
        .map(|t| {
            let k = ((t - START) / MINUTE) as f64;
            let base = if i == 0 {
                10.0 * k
            } else {
                20.0 + (k / 7.0).sin()
            };
            match replica {
                'a' => (t, base),
                _ => (t + SHIFT, base + if i == 0 { 0.5 } else { 1.0 }),
            }
        })
        .collect()
}

fn write_replica(dir: &Path, replica: char, n: u128) {
    let id = BlockId::from_parts((START + BLOCK) as u64, n);
    let mut symbols: Vec<String> = series_names()
        .iter()
        .flat_map(|l| {
            l.iter()
                .flat_map(|l| [l.name.clone(), l.value.clone()])
                .collect::<Vec<_>>()
        })
        .collect();
    symbols.sort();
    symbols.dedup();
    let mut w = BlockWriter::create(
        dir,
        id,
        symbols.iter().map(String::as_str),
        DEFAULT_SEGMENT_SIZE,
    )
    .unwrap();
    for (i, labels) in series_names().iter().enumerate() {
        w.add_float_series(labels, &replica_samples(replica, i))
            .unwrap();
    }
    let meta = BlockMeta {
        thanos: Some(ThanosMeta {
            labels: [
                ("cluster".to_string(), "eu-1".to_string()),
                ("replica".to_string(), replica.to_string()),
            ]
            .into(),
            source: "sidecar".into(),
            ..ThanosMeta::default()
        }),
        ..BlockMeta::level1(id, START, START + BLOCK)
    };
    w.finish(meta, &Tombstones::default()).unwrap();
}

/// The expected dump: per series, the given samples in promtool's format.
fn dump_of(per_series: &[Vec<(i64, f64)>]) -> String {
    let mut lines = BTreeMap::new();
    for (labels, samples) in series_names().iter().zip(per_series) {
        for &(t, v) in samples {
            lines.insert(
                (labels.to_string(), t),
                format!("{labels} {} {t}\n", go_format_g(v)),
            );
        }
    }
    lines.into_values().collect()
}

/// Runs `compactd run` once on a bucket of the two replicas' blocks, removing the replica
/// label `replica`; returns the one visible block left.
fn compact_replicas(tmp: &Path, extra: &[&str]) -> std::path::PathBuf {
    compact_replicas_with(tmp, "run", "--deduplication.replica-label=replica", extra)
}

/// [`compact_replicas`] with the subcommand and the replica-label flag as given.
fn compact_replicas_with(
    tmp: &Path,
    subcommand: &str,
    replica_label_flag: &str,
    extra: &[&str],
) -> std::path::PathBuf {
    let bucket = tmp.join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    write_replica(&bucket, 'a', 1);
    write_replica(&bucket, 'b', 2);
    let out = CompactdRun::on_dir(&bucket)
        .subcommand(subcommand)
        .data_dir(&tmp.join("data"))
        .arg("--downsampling.disable")
        .flag("--delete-delay", "0s")
        .flag("--consistency-delay", "0s")
        .arg(replica_label_flag)
        .extra(extra)
        .output();
    assert!(
        out.status.success(),
        "compactd run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let visible: Vec<_> = block_dirs(&bucket)
        .into_iter()
        .filter(|b| !b.join("deletion-mark.json").exists())
        .collect();
    assert_eq!(visible.len(), 1, "the replicas merged into one block");
    let meta = BlockMeta::read_dir(&visible[0]).unwrap();
    let thanos = meta.thanos.unwrap();
    assert_eq!(
        thanos.labels,
        [("cluster".to_string(), "eu-1".to_string())].into(),
        "the replica label is gone"
    );
    assert_eq!(meta.compaction.sources.len(), 2);
    visible[0].clone()
}

#[test]
fn replicas_merge_into_every_timestamp_by_default() {
    let Some(promtool) = require_tool("promtool", None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Thanos' command name and its comma-separated list: the blocks carry `replica`, so
    // they merge only if the list is split.
    let labels = "--deduplication.replica-label=prometheus_replica,replica";
    let block = compact_replicas_with(tmp.path(), "compact", labels, &[]);
    promtool_analyze(&promtool, &block);
    let want: Vec<Vec<(i64, f64)>> = (0..2)
        .map(|i| {
            let mut all = replica_samples('a', i);
            all.extend(replica_samples('b', i));
            all.sort_by_key(|s| s.0);
            all
        })
        .collect();
    let got = promtool_dump(&promtool, std::slice::from_ref(&block));
    assert_eq!(got, dump_of(&want));
    assert_eq!(got.lines().count(), 2 * (100 + 120));
}

// Penalty: a is taken while it has data (b's samples 2 s later fall inside the penalty of
// twice the scrape interval). At a's gap (last sample 29 min), b's first sample past the
// 2-minute penalty (31 min 2 s) is earlier than a's next (50 min), so b takes over; from then
// on a's samples (58 s after each b sample) fall inside b's penalty window, and b stays.
#[test]
fn penalty_keeps_one_replica_and_switches_at_a_gap() {
    let Some(promtool) = require_tool("promtool", None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let block = compact_replicas(tmp.path(), &["--deduplication.func", "penalty"]);
    promtool_analyze(&promtool, &block);
    let last_a = GAP_FROM - MINUTE;
    let first_b = GAP_FROM + MINUTE + SHIFT;
    let want: Vec<Vec<(i64, f64)>> = (0..2)
        .map(|i| {
            let mut s: Vec<(i64, f64)> = replica_samples('a', i)
                .into_iter()
                .filter(|s| s.0 <= last_a)
                .collect();
            s.extend(
                replica_samples('b', i)
                    .into_iter()
                    .filter(|s| s.0 >= first_b),
            );
            s
        })
        .collect();
    let got = promtool_dump(&promtool, std::slice::from_ref(&block));
    assert_eq!(got, dump_of(&want));
    // 30 samples of a, then b from minute 31 to 119: one sample per scrape, none doubled.
    assert_eq!(got.lines().count(), 2 * (30 + 89));
}

#[test]
fn penalty_without_a_replica_label_is_refused_at_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let out = compactd(&[
        "run",
        "--objstore.config",
        &fs_config(tmp.path()),
        "--deduplication.func",
        "penalty",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--deduplication.replica-label"), "{err}");
    let out = compactd(&[
        "run",
        "--objstore.config",
        &fs_config(tmp.path()),
        "--deduplication.func",
        "chain",
    ]);
    assert!(!out.status.success());
}
