//! `compactd run` killed with SIGKILL at random moments, over and over, against a real S3
//! server (SeaweedFS), while new level-1 blocks keep arriving as a sidecar would upload them;
//! then run once to completion. Every input sample must be there (per stream, our reader and
//! `promtool tsdb dump`), no blocks may overlap within a stream, no partial upload or
//! pending deletion may be left, and `tools bucket verify` and `tools bucket audit` must be
//! clean.
//!
//! The schedule is seeded (`COMPACTD_CRASH_SEED`, default 1; the seed is printed): each
//! kill time is drawn uniformly below a window that starts as the duration of an
//! uninterrupted run of the whole input (measured first on a copy under another prefix),
//! becomes twice the duration of the last run that ended before its kill (an idle run: the
//! kills past it land in runs that found work), and grows by half after
//! each kill, so that kills spread over whole runs, busy or idle, and runs still progress.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Streams (external label sets) generated; the first two are in the bucket from the start,
/// the others are uploaded one by one during the crash loop.
const STREAMS: usize = 12;
/// Streams in the bucket before the first run.
const INITIAL_STREAMS: usize = 2;
/// Iterations between two stream uploads.
const UPLOAD_EVERY: usize = 4;
/// The schedule's seed unless `COMPACTD_CRASH_SEED` gives one (the kill times are drawn from
/// it; when they land relative to the process's work still varies from run to run).
const DEFAULT_SEED: u64 = 1;
/// Kills that must land while compactd is running.
const KILLS: usize = 50;
/// Iterations at most (a run that ends before its kill does not count).
const ITERATIONS_MAX: usize = 150;

fn stream_labels(i: usize) -> String {
    format!("cluster=crash-{i}")
}

/// `compactd run`, one-shot, on the bucket; stderr goes to `log`.
fn spawn_run(config: &str, data: &Path, log: &Path, extra: &[&str]) -> Child {
    CompactdRun::new(config)
        .data_dir(data)
        .arg("--downsampling.disable")
        .flag("--delete-delay", "0s")
        .extra(extra)
        .command()
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Runs to completion and asserts exit 0; returns how long it took.
fn run_to_completion(config: &str, data: &Path, log: &Path, extra: &[&str]) -> Duration {
    let started = Instant::now();
    let status = spawn_run(config, data, log, extra).wait().unwrap();
    assert!(
        status.success(),
        "compactd run failed ({status}):\n{}",
        std::fs::read_to_string(log).unwrap()
    );
    started.elapsed()
}

/// Kills (SIGKILL) the run after `delay` unless it ends first; returns how long it ran if it
/// ended on its own, which must be a success.
fn kill_after(mut child: Child, delay: Duration, log: &Path) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "a run that was not killed failed ({status}):\n{}",
                std::fs::read_to_string(log).unwrap()
            );
            return Some(started.elapsed());
        }
        let elapsed = started.elapsed();
        if elapsed >= delay {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep((delay - elapsed).min(Duration::from_millis(2)));
    }
}

/// What a killed run was doing, from the last line of its log.
fn phase(log: &Path) -> &'static str {
    let text = std::fs::read_to_string(log).unwrap();
    let last = text.lines().last().unwrap_or("");
    [
        ("compacting", "compacting"),
        ("compacted blocks", "uploading"),
        ("uploaded block", "marking"),
        ("marked block", "marking"),
        ("deleted", "deleting"),
        ("compaction plan", "downloading"),
        ("synced block metadata", "deleting or planning"),
        ("stopped leading", "exiting"),
    ]
    .into_iter()
    .find(|(text, _)| last.contains(text))
    .map_or(STARTING, |(_, phase)| phase)
}

/// The phase of a run killed before its first sync ended.
const STARTING: &str = "starting or syncing";

/// The block dirs of each stream (by external labels) in a downloaded bucket.
fn by_stream(dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for b in block_dirs(dir) {
        let meta = compactd::tsdb::meta::BlockMeta::read_dir(&b).unwrap();
        let labels = meta.thanos.expect("thanos section").labels;
        out.entry(format!("{labels:?}")).or_default().push(b);
    }
    out
}

/// Per stream: our reader's dump and, when promtool is there, promtool's.
fn dumps(dir: &Path, promtool: Option<&Path>) -> BTreeMap<String, (String, Option<String>)> {
    by_stream(dir)
        .into_iter()
        .map(|(k, blocks)| {
            let ours = our_dump(&blocks);
            let theirs = promtool.map(|p| promtool_dump(p, &blocks));
            (k, (ours, theirs))
        })
        .collect()
}

/// The default: jobs stream their inputs from the bucket and their output to it.
#[test]
fn sigkill_at_random_moments_then_one_full_run_converges_on_s3() {
    crash_loop(&[]);
}

/// The download path: jobs work in --data-dir.
#[test]
fn sigkill_loop_with_downloaded_blocks_converges_on_s3() {
    crash_loop(&["--compact.download-blocks"]);
}

/// Runs the crash loop with `mode` flags added to every run.
fn crash_loop(mode: &[&str]) {
    let downloads = !mode.is_empty();
    let Some(s3) = seaweed::Seaweed::start() else {
        return;
    };
    let promtool = require_tool("promtool", None);
    let started = Instant::now();
    let seed = std::env::var("COMPACTD_CRASH_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("COMPACTD_CRASH_SEED is a u64"))
        .unwrap_or(DEFAULT_SEED);
    eprintln!("crash loop seed {seed} (COMPACTD_CRASH_SEED={seed} replays the schedule)");
    let mut rng = XorShift::new(seed);

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    let streams: Vec<PathBuf> = (0..STREAMS)
        .map(|i| {
            let dir = input.join(format!("stream-{i}"));
            compactd_ok(&[
                "tools",
                "generate",
                "--out",
                dir.to_str().unwrap(),
                "--series",
                "20",
                "--hours",
                "24",
                "--external-labels",
                &stream_labels(i),
                "--seed",
                &(i + 1).to_string(),
            ]);
            dir
        })
        .collect();
    let all_input = tmp.path().join("all-input");
    for s in &streams {
        for b in block_dirs(s) {
            copy_dir(&b, &all_input.join(b.file_name().unwrap()));
        }
    }
    let before = dumps(&all_input, promtool.as_deref());
    assert_eq!(before.len(), STREAMS);

    // How long an uninterrupted run of the whole input takes, on a copy under a prefix.
    let estimate = s3.objstore_yaml_with_prefix("estimate");
    upload_dir(&estimate, &all_input);
    let log = tmp.path().join("compactd.log");
    let full = run_to_completion(&estimate, &tmp.path().join("data-estimate"), &log, mode);
    let mut window_ms = (full.as_millis() as u64).max(200);
    eprintln!("an uninterrupted run takes {full:?}; the first kill falls in 0..{window_ms} ms");

    let config = s3.objstore_yaml_with_prefix("crash");
    for s in &streams[..INITIAL_STREAMS] {
        upload_dir(&config, s);
    }
    let mut uploaded = INITIAL_STREAMS;
    let data = tmp.path().join("data");
    let (mut landed, mut finished) = (0, 0);
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    // Kills that left downloads or a half-written block in --data-dir for the next start.
    let mut leftovers = 0;
    for i in 0..ITERATIONS_MAX {
        if landed >= KILLS + 10 && uploaded == STREAMS {
            break;
        }
        if i > 0 && i % UPLOAD_EVERY == 0 && uploaded < STREAMS {
            upload_dir(&config, &streams[uploaded]);
            uploaded += 1;
        }
        let delay = Duration::from_millis(rng.below(window_ms));
        let child = spawn_run(&config, &data, &log, mode);
        match kill_after(child, delay, &log) {
            None => {
                landed += 1;
                window_ms += window_ms / 2;
                *phases.entry(phase(&log)).or_default() += 1;
                let cache = data.join("compact");
                if cache.is_dir() && std::fs::read_dir(&cache).unwrap().next().is_some() {
                    leftovers += 1;
                }
            }
            Some(took) => {
                finished += 1;
                window_ms = (2 * took.as_millis() as u64).max(10);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the crash loop takes too long: {i} iterations, {landed} kills landed"
        );
    }
    assert_eq!(uploaded, STREAMS, "every stream uploaded");
    assert!(
        landed >= KILLS,
        "only {landed} of {ITERATIONS_MAX} kills landed while compactd ran"
    );
    let past_sync = landed - phases.get(STARTING).copied().unwrap_or(0);
    assert!(
        past_sync >= 10,
        "only {past_sync} kills landed after a sync: {phases:?}"
    );

    // One run to completion, cleaning up partial uploads at once.
    let mut last_flags = vec!["--debug.partial-upload-threshold", "0s"];
    last_flags.extend(mode);
    let last = run_to_completion(&config, &data, &log, &last_flags);
    let last_log = std::fs::read_to_string(&log).unwrap();
    if downloads {
        assert_eq!(
            std::fs::read_dir(data.join("compact")).unwrap().count(),
            0,
            "the --data-dir cache left by the killed runs is emptied"
        );
        eprintln!("{leftovers} kills left files in --data-dir for the next run to clear");
    } else {
        assert!(!data.exists(), "streaming runs never touch --data-dir");
    }

    let out = tmp.path().join("downloaded");
    download_bucket(&config, &out);
    for e in std::fs::read_dir(&out).unwrap() {
        let dir = e.unwrap().path();
        if dir.file_name().unwrap() == "compactd" {
            continue;
        }
        assert!(
            dir.join("meta.json").is_file(),
            "partial block left: {}\n{last_log}",
            dir.display()
        );
        assert!(
            !dir.join("deletion-mark.json").exists(),
            "block still marked for deletion: {}",
            dir.display()
        );
    }
    let after = dumps(&out, promtool.as_deref());
    assert_eq!(after.len(), STREAMS);
    for (stream, (ours, theirs)) in &before {
        let (ours_after, theirs_after) = &after[stream];
        assert!(ours == ours_after, "stream {stream}: samples differ");
        assert!(
            theirs == theirs_after,
            "stream {stream}: promtool dumps differ"
        );
    }
    for (stream, blocks) in by_stream(&out) {
        let mut ranges: Vec<(i64, i64)> = blocks
            .iter()
            .map(|b| {
                let m = compactd::tsdb::meta::BlockMeta::read_dir(b).unwrap();
                (m.min_time, m.max_time)
            })
            .collect();
        ranges.sort();
        for w in ranges.windows(2) {
            assert!(w[0].1 <= w[1].0, "stream {stream}: overlap {w:?}");
        }
        assert!(
            ranges.len() < 12,
            "stream {stream} was compacted: {ranges:?}"
        );
    }
    let verify = compactd(&["tools", "bucket", "verify", "--objstore.config", &config]);
    assert!(
        verify.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let audit = compactd_ok(&["tools", "bucket", "audit", "--objstore.config", &config]);
    assert!(
        !audit.contains("VIOLATION") && !audit.contains("PROBLEM"),
        "audit: {audit}"
    );
    eprintln!(
        "crash loop: seed {seed}, {landed} kills landed mid-run ({phases:?}), {finished} runs \
         ended before their kill, last run {last:?}, wall time {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
