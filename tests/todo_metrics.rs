//! The backlog gauges (`thanos_compact_todo_*`) of `compactd run --wait` on a generated
//! filesystem bucket, read from `/metrics` and compared with values derived by hand from
//! Thanos' rules for the generated layout.
//!
//! To read the backlog before compaction changes it, the oldest block of one stream has a
//! corrupt chunk: the first compaction pass halts on it (as in Thanos), and with nothing
//! synced after the first sync the gauges keep the first calculation's values.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

const H: i64 = 3_600_000;
/// 2025-01-02T00:00Z: a multiple of 14 days, so the 8h, 2d and 14d windows start here.
const T: i64 = 1_735_776_000_000;

/// Generates one stream of `hours` from `T` cut into `block` blocks.
fn generate(bucket: &Path, cluster: &str, hours: u32, block: &str, seed: u32) {
    let (labels, start) = (format!("cluster={cluster}"), T.to_string());
    let extra = ["--block-duration", block, "--start-ms", &start];
    generate_stream(bucket, 1, hours, &labels, seed.into(), &extra);
}

/// The layout (hours from `T`):
/// - eu-1: 30 x 2h blocks over [0,60). The newest (B29) is held back and B28 starts at 56.
///   8h windows [0,8) .. [48,56) are full: 7 runs of 4 (each leaves a synthetic 8h block);
///   [56,64) holds B28 alone. Then 2d [0,48) holds the six synthetic blocks of [0,48) and is
///   full: a run of 6 (Thanos' calculator drops [48,56)'s synthetic block with it, which
///   changes nothing here). No window of what is left is full or ends by 56. 8 runs, 34
///   blocks.
/// - us-1: 12 x 2h blocks over [0,24). B11 is held back, B10 starts at 20: 8h runs [0,8) and
///   [8,16); [16,24) holds B8..B10, spans 6h and ends at 22. 2 runs, 8 blocks.
/// - ds-1: 2 x 48h raw blocks over [0,96): the newer is held back, the older is alone.
///   No run; both span at least 40h with no 5m block: 2 blocks to downsample.
///
/// Every 2h block is too short to downsample. Retention of raw data is set so that it ends
/// at `T+25h`: the 12 blocks of each 2h stream ending by 24h are past it, none else.
fn bucket_template(dir: &Path) {
    generate(dir, "eu-1", 60, "2h", 1);
    generate(dir, "us-1", 24, "2h", 2);
    generate(dir, "ds-1", 96, "48h", 3);
}

const EXPECTED: [&str; 4] = [
    "thanos_compact_todo_compactions 10",
    "thanos_compact_todo_compaction_blocks 42",
    "thanos_compact_todo_downsample_blocks 2",
    "thanos_compact_todo_deletion_blocks 24",
];

/// Flips a byte in a chunk of eu-1's oldest block, which the first eu-1 plan compacts.
fn corrupt_oldest_eu1_block(bucket: &Path) {
    let oldest = block_dirs(bucket)
        .into_iter()
        .find(|b| {
            let meta = compactd::tsdb::meta::BlockMeta::read_dir(b).unwrap();
            let cluster = &meta.thanos.as_ref().unwrap().labels["cluster"];
            cluster == "eu-1" && meta.min_time == T
        })
        .expect("eu-1's oldest block");
    let segment = oldest.join("chunks/000001");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
}

/// Raw retention, in whole seconds, that ends at `T+25h` now.
fn retention_ending_at_25h() -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    format!("{}s", (now_ms - (T + 25 * H)) / 1000)
}

/// Runs `compactd run --wait` with `extra` flags on a copy of `template` until compaction
/// halts; returns `/metrics` then.
fn metrics_once_halted(template: &Path, work: &Path, extra: &[&str]) -> String {
    let bucket = work.join("bucket");
    copy_dir(template, &bucket);
    let retention = retention_ending_at_25h();
    let child = CompactdRun::on_dir(&bucket)
        .wait()
        .wait_interval("1h")
        .data_dir(&work.join("data"))
        .flag("--retention.resolution-raw", &retention)
        .extra(extra)
        .command()
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let log = common::stderr::StderrLog::follow(child.0.stderr.take().unwrap());
    let port = log.port();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = http_get(port, "/metrics");
        assert_eq!(status, 200);
        if body.lines().any(|l| l == "thanos_compact_halted 1") {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no halt:\n{body}\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn todo_gauges_hold_thanos_backlog_of_the_first_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    bucket_template(&template);
    corrupt_oldest_eu1_block(&template);

    let metrics = metrics_once_halted(
        &template,
        &tmp.path().join("on"),
        &["--compact.progress-interval=1s"],
    );
    for line in EXPECTED {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }

    // 0s disables the calculation, as in Thanos: the gauges stay at 0.
    let metrics = metrics_once_halted(
        &template,
        &tmp.path().join("off"),
        &["--compact.progress-interval", "0s"],
    );
    for line in EXPECTED {
        let zero = format!("{} 0", line.split(' ').next().unwrap());
        assert!(metrics.lines().any(|l| l == zero), "{zero}:\n{metrics}");
    }
}
