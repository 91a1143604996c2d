//! `compactd run` end to end, on the local filesystem and on a real S3 server (SeaweedFS):
//! two streams of generated 2h blocks compact to the levels Thanos' planner produces, sources
//! are marked and deleted after the delete delay, every sample survives (promtool dumps per
//! stream are equal before and after), and `tools bucket verify` is clean. Also: the process
//! is stopped before every single object mutation of a run, then run again to completion,
//! and the bucket must converge each time; and overlapping blocks halt as in Thanos.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// The visible block dirs (meta.json present, no deletion mark) of each stream.
fn blocks_by_stream(dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for b in block_dirs(dir) {
        if b.join("deletion-mark.json").exists() {
            continue;
        }
        let meta = compactd::tsdb::meta::BlockMeta::read_dir(&b).unwrap();
        let labels = meta.thanos.unwrap().labels;
        out.entry(format!("{labels:?}")).or_default().push(b);
    }
    out
}

/// Per stream: our reader's dump of the visible blocks (one sample per timestamp).
fn dumps(dir: &Path) -> BTreeMap<String, String> {
    blocks_by_stream(dir)
        .into_iter()
        .map(|(k, v)| (k, our_dump(&v)))
        .collect()
}

fn run_compactd(config: &str, data: &Path, extra: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = CompactdRun::new(config)
        .data_dir(data)
        .arg("--downsampling.disable")
        .flag("--delete-delay", "0s")
        .extra(extra)
        .command();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn verify_clean(config: &str) {
    let out = compactd(&["tools", "bucket", "verify", "--objstore.config", config]);
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The levels Thanos' planner reaches for 24h of 2h blocks after all passes: two 8h blocks
/// (level 2) and four 2h blocks, per stream (the newest 8h window is not complete).
fn assert_thanos_levels(dir: &Path) {
    for (stream, blocks) in blocks_by_stream(dir) {
        let mut levels: Vec<(i64, u32)> = blocks
            .iter()
            .map(|b| {
                let m = compactd::tsdb::meta::BlockMeta::read_dir(b).unwrap();
                ((m.max_time - m.min_time) / 3_600_000, m.compaction.level)
            })
            .collect();
        levels.sort();
        assert_eq!(
            levels,
            vec![(2, 1), (2, 1), (2, 1), (2, 1), (8, 2), (8, 2)],
            "stream {stream}"
        );
    }
}

#[test]
fn filesystem_bucket_compacts_like_thanos_and_keeps_every_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 60, 24);
    let before = dumps(&bucket);
    assert_eq!(before.len(), 2);
    let config = fs_config(&bucket);
    let out = run_compactd(&config, &tmp.path().join("data"), &[], &[]);
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !tmp.path().join("data").exists(),
        "streaming jobs read the blocks in place and never touch --data-dir"
    );
    assert_eq!(dumps(&bucket), before, "samples changed");
    assert_thanos_levels(&bucket);
    assert_eq!(
        block_dirs(&bucket).len(),
        12,
        "sources were deleted after the delete delay"
    );
    verify_clean(&config);
    if let Some(promtool) = require_tool("promtool", None) {
        for blocks in blocks_by_stream(&bucket).values() {
            for b in blocks {
                promtool_analyze(&promtool, b);
            }
        }
    }
}

#[test]
fn s3_bucket_compacts_like_thanos_and_keeps_every_sample() {
    let Some(s3) = seaweed::Seaweed::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("generated");
    generate_streams(&local, 60, 24);
    let before = dumps(&local);
    let config = s3.objstore_yaml();
    upload_dir(&config, &local);
    let out = run_compactd(&config, &tmp.path().join("data"), &[], &[]);
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    verify_clean(&config);
    let back = tmp.path().join("downloaded");
    download_bucket(&config, &back);
    assert_eq!(dumps(&back), before, "samples changed");
    assert_thanos_levels(&back);
    assert_eq!(block_dirs(&back).len(), 12);
}

/// Stops the compactor right before its n-th object mutation, for every n of a full run, on
/// a fresh copy of the bucket each time; then runs it to completion. Every time, the bucket
/// must end compacted, with every sample, no overlap and no partial upload left.
#[test]
fn crash_before_every_mutation_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    generate_streams(&pristine, 20, 12);
    let before = dumps(&pristine);
    let clean_up = ["--debug.partial-upload-threshold", "0s"];
    let mut crashes = 0;
    for n in 1.. {
        let bucket = tmp.path().join(format!("bucket-{n}"));
        copy_dir(&pristine, &bucket);
        let config = fs_config(&bucket);
        let data = tmp.path().join("data");
        let crashed = run_compactd(
            &config,
            &data,
            &clean_up,
            &[("COMPACTD_TEST_CRASH_BEFORE_MUTATION", n.to_string())],
        );
        let finished = crashed.status.success();
        if !finished {
            assert!(
                String::from_utf8_lossy(&crashed.stderr).contains("aborting before"),
                "run {n} failed otherwise: {}",
                String::from_utf8_lossy(&crashed.stderr)
            );
            crashes += 1;
            let out = run_compactd(&config, &data, &clean_up, &[]);
            assert!(
                out.status.success(),
                "recovery after crash {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(dumps(&bucket), before, "samples changed after crash {n}");
        verify_clean(&config);
        std::fs::remove_dir_all(&bucket).unwrap();
        if finished {
            break;
        }
    }
    eprintln!("crashed before each of {crashes} mutations; the bucket converged every time");
    assert!(
        crashes > 20,
        "a full run should have many mutations, saw {crashes}"
    );
}

/// `tools bucket plan` names, per stream, the blocks the next compaction merges; `run` then
/// merges exactly those (they are the sources of one of its level-2 blocks).
#[test]
fn bucket_plan_names_the_blocks_run_compacts_first() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 5, 12);
    let config = fs_config(&bucket);
    let out = compactd_ok(&["tools", "bucket", "plan", "--objstore.config", &config]);
    let planned: Vec<Vec<String>> = out
        .lines()
        .filter_map(|l| l.split_once(": compact 4 blocks: "))
        .map(|(_, ids)| ids.split(' ').map(str::to_string).collect())
        .collect();
    assert_eq!(planned.len(), STREAMS.len(), "{out}");
    assert!(
        out.contains("sync: 12 block directories in ")
            && out.contains("plan: 12 visible blocks in 2 groups, 2 with a compaction to run"),
        "{out}"
    );
    let before = block_dirs(&bucket);
    let run = run_compactd(&config, &tmp.path().join("data"), &[], &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut merged: Vec<Vec<String>> = block_dirs(&bucket)
        .iter()
        .filter(|b| !before.contains(b))
        .map(|b| {
            let meta = compactd::tsdb::meta::BlockMeta::read_dir(b).unwrap();
            meta.compaction
                .sources
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
        .collect();
    merged.sort();
    for ids in &planned {
        assert!(
            merged.contains(ids),
            "planned {ids:?}, run merged {merged:?}"
        );
    }
}

#[test]
fn overlapping_blocks_halt_without_vertical_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    let dir = bucket.to_str().unwrap();
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        dir,
        "--series",
        "10",
        "--hours",
        "6",
        "--external-labels",
        "cluster=eu-1",
    ]);
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        dir,
        "--series",
        "10",
        "--hours",
        "2",
        "--external-labels",
        "cluster=eu-1",
        "--start-ms",
        "1735693200000",
    ]);
    let config = fs_config(&bucket);
    let plan = compactd_ok(&["tools", "bucket", "plan", "--objstore.config", &config]);
    assert!(
        plan.contains("HALT: overlapping blocks, vertical compaction off"),
        "{plan}"
    );
    let out = run_compactd(&config, &tmp.path().join("data"), &[], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a one-shot run that halts exits 2"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("critical error detected; halting") && log.contains("overlaps found"),
        "{log}"
    );
    assert!(
        !block_dirs(&bucket)
            .iter()
            .any(|b| b.join("deletion-mark.json").exists()),
        "nothing marked"
    );
    let merged = run_compactd(
        &config,
        &tmp.path().join("data"),
        &["--compact.enable-vertical-compaction"],
        &[],
    );
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    verify_clean(&config);
}

#[test]
fn wait_mode_serves_thanos_metrics_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 10, 24);
    let config = fs_config(&bucket);
    let child = CompactdRun::new(&config)
        .wait()
        .wait_interval("1h")
        .data_dir(&tmp.path().join("data"))
        .arg("--downsampling.disable")
        .command()
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let log = common::stderr::StderrLog::follow(child.0.stderr.take().unwrap());
    let port = log.port();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let metrics = loop {
        let (status, body) = http_get(port, "/metrics");
        assert_eq!(status, 200);
        if body.contains("thanos_compact_iterations_total 1") {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no iteration finished:\n{body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // The backlog gauges are those of the first sync (the default 5m progress interval has
    // not passed since): per stream the 8h runs [0,8) and [8,16) of 4 blocks each.
    for want in [
        "thanos_compact_halted 0",
        "thanos_blocks_meta_synced{state=\"loaded\"}",
        "thanos_compact_group_compactions_total{resolution=\"0\"} 4",
        "thanos_compact_blocks_marked_total{marker=\"deletion-mark.json\",reason=\"\"} 16",
        "thanos_compact_todo_compactions 4\n",
        "thanos_compact_todo_compaction_blocks 16\n",
        "thanos_objstore_bucket_operations_total{",
    ] {
        assert!(metrics.contains(want), "/metrics lacks {want}:\n{metrics}");
    }
    assert_eq!(http_get(port, "/-/ready").0, 200);
    assert_eq!(http_get(port, "/-/healthy").0, 200);
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM ends a --wait run cleanly");
}

#[test]
fn corrupt_blocks_halt_or_are_reported_and_never_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 10, 24);
    let blocks = block_dirs(&bucket);
    // A flipped byte in a chunk of the first block: compacting it fails, which halts.
    let seg = blocks[0].join("chunks/000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&seg, bytes).unwrap();
    // An unreadable meta.json: reported, never deleted.
    std::fs::write(blocks[1].join("meta.json"), "{ not json").unwrap();
    let config = fs_config(&bucket);
    let out = run_compactd(
        &config,
        &tmp.path().join("data"),
        &["--debug.partial-upload-threshold", "0s"],
        &[],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains("critical error detected; halting") && log.contains("CRC"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "block {}",
            blocks[1].file_name().unwrap().to_str().unwrap()
        )),
        "corrupt meta reported: {log}"
    );
    assert!(
        seg.exists() && !blocks[0].join("deletion-mark.json").exists(),
        "the corrupt block is kept and unmarked"
    );
    assert!(
        blocks[1].join("meta.json").exists() && blocks[1].join("index").exists(),
        "the block with a bad meta.json is kept"
    );
}
