//! `--compact.cleanup-interval`, Thanos' background clean-up, on a filesystem bucket: with
//! `--wait`, `--delete-delay=0s` and an interval of 100ms (streaming jobs make the pass short),
//! the sources of the first groups' compactions (marked once their new block is visible) are
//! deleted while later groups are still being compacted, not only once the compaction pass is
//! over; with `0s`, only then. The order comes from the log; the counters from `/metrics`.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Streams (groups), each with one plan of four 2h blocks in the first pass.
const STREAMS_N: usize = 24;
/// Series per stream: enough that the pass lasts a few seconds.
const SERIES: usize = 300;

fn bucket(dir: &Path) {
    for i in 0..STREAMS_N {
        let labels = format!("cluster=c{i}");
        generate_stream(dir, SERIES, 16, &labels, i as u64 + 1, &[]);
    }
}

/// Runs `compactd run --wait` with the interval until its first iteration is done; returns
/// the log until then and `/metrics` at that moment.
fn first_iteration(bucket: &Path, data: &Path, interval: &str) -> (Vec<String>, String) {
    let child = CompactdRun::on_dir(bucket)
        .wait()
        .wait_interval("1h")
        .flag("--delete-delay", "0s")
        .flag("--consistency-delay", "0s")
        .arg("--downsampling.disable")
        .flag("--compact.cleanup-interval", interval)
        .data_dir(data)
        .command()
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stderr = common::stderr::StderrLog::follow(child.0.stderr.take().unwrap());
    let log = stderr.until("compaction iteration done", Duration::from_secs(60));
    let port = stderr.port();
    let (status, metrics) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    (log, metrics)
}

fn position(log: &[String], from: usize, f: impl Fn(&str) -> bool) -> Option<usize> {
    log.iter().skip(from).position(|l| f(l)).map(|i| i + from)
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
}

#[test]
fn marked_blocks_are_deleted_while_the_pass_still_compacts() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    bucket(&template);
    let run = |name: &str, interval: &str| {
        let work = tmp.path().join(name);
        copy_dir(&template, &work.join("bucket"));
        let (log, metrics) = first_iteration(&work.join("bucket"), &work.join("data"), interval);
        (log, metrics, block_dirs(&work.join("bucket")).len())
    };
    let compacted = |l: &str| l.contains("msg=\"compacted blocks\"");
    let deleted = |l: &str| l.contains("msg=\"deleted block marked for deletion\"");

    let (log, metrics, blocks) = run("on", "100ms");
    let background = position(&log, 0, |l| {
        l.contains("msg=\"background clean-up") && !l.contains(" blocks=0 ")
    })
    .unwrap_or_else(|| {
        panic!(
            "no background clean-up deleted anything:\n{}",
            log.join("\n")
        )
    });
    let last_compacted = log.iter().rposition(|l| compacted(l)).expect("compacted");
    assert!(
        background < last_compacted,
        "the clean-up deleted while groups were still compacted:\n{}",
        log.join("\n")
    );
    // What it deleted: sources of groups already compacted, nothing a later group reads.
    let sources: Vec<&String> = log[..background].iter().filter(|l| compacted(l)).collect();
    for line in log[..background].iter().filter(|l| deleted(l)) {
        let block = line.split("block=").nth(1).expect("block=");
        assert!(
            sources.iter().any(|s| s.contains(block)),
            "{block} is no source of a finished group"
        );
    }
    let n = STREAMS_N as u64;
    assert_eq!(
        counter(&metrics, "thanos_compact_blocks_cleaned_total"),
        4 * n
    );
    assert!(counter(&metrics, "thanos_compact_block_cleanup_loops_total") >= 2);
    // Per stream, the 8h block and the four newer 2h blocks.
    assert_eq!(blocks, 5 * STREAMS_N);
    report_figure(&format!(
        "cleanup-interval: {} background clean-ups in the first iteration",
        log.iter()
            .filter(|l| l.contains("msg=\"background clean-up"))
            .count()
    ));

    // 0s: Thanos' main-loop clean-up only; every delete comes after the last compaction.
    let (log, metrics, blocks) = run("off", "0s");
    assert!(!log.iter().any(|l| l.contains("background clean-up")));
    let first_deleted = position(&log, 0, deleted).expect("deleted");
    let last_compacted = log.iter().rposition(|l| compacted(l)).expect("compacted");
    assert!(first_deleted > last_compacted, "{}", log.join("\n"));
    assert_eq!(
        counter(&metrics, "thanos_compact_block_cleanup_loops_total"),
        1
    );
    assert_eq!(blocks, 5 * STREAMS_N);
}
