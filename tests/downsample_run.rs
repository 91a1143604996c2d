//! Downsampling through `compactd run`: 96h of 2h blocks compact to a 2d block (and 8h/2h
//! blocks), and the 2d block, spanning at least 40h, gets a 5m twin in the same run: its
//! range, sources and labels, `thanos.downsample.resolution` 300000, `source: compactor`,
//! AggrChunks our reader decodes with counts that add up to the raw samples. A second run
//! downsamples nothing more; a no-downsample mark keeps a block raw; `--downsampling.disable`
//! turns it off; raw retention then removes the raw block and keeps the 5m one.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use compactd::tsdb::meta::BlockMeta;

fn run(bucket: &Path, data: &Path, extra: &[&str]) -> Output {
    let out = CompactdRun::on_dir(bucket)
        .data_dir(data)
        .flag("--delete-delay", "0s")
        .flag("--consistency-delay", "0s")
        .extra(extra)
        .output();
    assert!(
        out.status.success(),
        "compactd run {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Visible blocks (meta.json, no deletion mark) with their metas.
fn visible(bucket: &Path) -> Vec<(PathBuf, BlockMeta)> {
    block_dirs(bucket)
        .into_iter()
        .filter(|b| !b.join("deletion-mark.json").exists())
        .map(|b| {
            let m = BlockMeta::read_dir(&b).unwrap();
            (b, m)
        })
        .collect()
}

fn resolution(m: &BlockMeta) -> i64 {
    m.thanos.as_ref().map_or(0, |t| t.downsample.resolution)
}

/// The sum of the count aggregate over every AggrChunk of a downsampled block.
fn counted_samples(dir: &Path) -> u64 {
    use compactd::tsdb::chunks::{ENCODING_AGGR, ENCODING_XOR};
    use compactd::tsdb::downsample::aggr::{Aggr, AggrChunk};
    let mut b = compactd::tsdb::block::BlockReader::open(dir).unwrap();
    let mut total = 0.0;
    for series in b.series().unwrap() {
        for c in &series.unwrap().chunks {
            let (enc, data) = (c.encoding, c.data.as_slice());
            assert_eq!(
                enc, ENCODING_AGGR,
                "every chunk of a 5m block is an AggrChunk"
            );
            let count = AggrChunk::parse(data).unwrap().get(Aggr::Count).unwrap();
            assert_eq!(count.encoding, ENCODING_XOR);
            let mut it = compactd::tsdb::xor::XorIter::new(count.data);
            while let Some((_, v)) = it.next_sample().unwrap() {
                total += v;
            }
        }
    }
    total as u64
}

fn generate(bucket: &Path, hours: u32, labels: &str) {
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        bucket.to_str().unwrap(),
        "--series",
        "12",
        "--hours",
        &hours.to_string(),
        "--external-labels",
        labels,
        // Aligned to the 2d windows of Thanos' planner.
        "--start-ms",
        "1735603200000",
    ]);
}

#[test]
fn the_2d_block_gets_a_5m_twin_once() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate(&bucket, 96, "cluster=eu-1");
    run(&bucket, &tmp.path().join("data"), &[]);

    let blocks = visible(&bucket);
    let two_days: Vec<&BlockMeta> = blocks
        .iter()
        .map(|(_, m)| m)
        .filter(|m| resolution(m) == 0 && m.max_time - m.min_time == 48 * 3_600_000)
        .collect();
    assert_eq!(two_days.len(), 1, "one 2d raw block");
    let raw = two_days[0];
    let fives: Vec<&(PathBuf, BlockMeta)> = blocks
        .iter()
        .filter(|(_, m)| resolution(m) == 300_000)
        .collect();
    assert_eq!(fives.len(), 1, "exactly the 2d block was downsampled");
    let (dir, five) = fives[0];
    assert_eq!((five.min_time, five.max_time), (raw.min_time, raw.max_time));
    assert_eq!(five.compaction.sources, raw.compaction.sources);
    let t = five.thanos.as_ref().unwrap();
    assert_eq!(t.source, "compactor");
    assert_eq!(t.labels, raw.thanos.as_ref().unwrap().labels);
    assert!(t.files.iter().any(|f| f.rel_path == "index"));
    assert!(
        blocks.iter().all(|(_, m)| resolution(m) != 3_600_000),
        "48h is too short for 1h"
    );
    // The 5m block reads back: every chunk an AggrChunk whose counts add up to the raw
    // block's samples.
    assert_eq!(counted_samples(dir), raw.stats.num_samples);
    let inspect = compactd(&["tools", "inspect", dir.to_str().unwrap()]);
    assert!(
        inspect.status.success(),
        "tools inspect of the 5m block: {}",
        String::from_utf8_lossy(&inspect.stdout)
    );

    let out = compactd(&[
        "tools",
        "bucket",
        "verify",
        "--objstore.config",
        &fs_config(&bucket),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Again: nothing new to downsample.
    let before = block_dirs(&bucket).len();
    run(&bucket, &tmp.path().join("data"), &[]);
    assert_eq!(block_dirs(&bucket).len(), before);

    // Raw retention of 40h removes the raw blocks (their ends are long past) and keeps the
    // 5m block.
    run(
        &bucket,
        &tmp.path().join("data"),
        &["--retention.resolution-raw", "40h"],
    );
    let left = visible(&bucket);
    assert!(
        left.iter().all(|(_, m)| resolution(m) == 300_000),
        "{left:?}"
    );
    assert_eq!(left.len(), 1);
}

#[test]
fn no_downsample_marks_and_the_disable_flag_keep_blocks_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate(&bucket, 96, "cluster=eu-1");
    run(
        &bucket,
        &tmp.path().join("data"),
        &["--downsampling.disable"],
    );
    assert!(visible(&bucket).iter().all(|(_, m)| resolution(m) == 0));

    let (dir, raw) = visible(&bucket)
        .into_iter()
        .find(|(_, m)| m.max_time - m.min_time == 48 * 3_600_000)
        .unwrap();
    std::fs::write(
        dir.join("no-downsample-mark.json"),
        format!(
            r#"{{"id":"{}","version":1,"details":"test","no_downsample_time":1,"reason":"manual"}}"#,
            raw.ulid
        ),
    )
    .unwrap();
    let out = run(&bucket, &tmp.path().join("data"), &[]);
    assert!(visible(&bucket).iter().all(|(_, m)| resolution(m) == 0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("start of downsampling pass"), "{log}");
}
