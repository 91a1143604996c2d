//! `compactd-sim` from the command line: the scenario list, a run's summary table and exit
//! codes, a failing world's trace and its replay.

use std::path::Path;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_compactd-sim"))
        .args(args)
        .output()
        .expect("run compactd-sim");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

#[test]
fn scenarios_lists_every_scenario_on_one_line() {
    let (out, text) = sim(&["scenarios"]);
    assert!(out.status.success());
    assert_eq!(
        text.lines().count(),
        compactd_sim::scenario::Scenario::ALL.len()
    );
    assert!(
        text.lines().any(|l| l.starts_with("lease-revoked ")),
        "{text}"
    );
}

#[test]
fn a_clean_run_prints_the_table_and_exits_zero() {
    let (out, text) = sim(&["run", "--seeds", "3", "--start-seed", "40", "--jobs", "1"]);
    assert!(out.status.success(), "{text}");
    for needle in [
        "scenario",
        "single-writer",
        "p99 s",
        "simulated hours per CPU-hour",
        "no violations in 3 worlds",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

#[test]
fn hashes_prints_one_line_per_world_whatever_the_parallelism() {
    let hashes = |jobs: &str| {
        let args = [
            "run",
            "--seeds",
            "2",
            "--start-seed",
            "40",
            "--hashes",
            "--jobs",
            jobs,
        ];
        let (out, text) = sim(&args);
        assert!(out.status.success(), "{text}");
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("seed "))
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("seed 40 ("), "{text}");
        assert!(lines[1].contains(": hash "), "{text}");
        lines
    };
    assert_eq!(hashes("1"), hashes("2"));
}

#[test]
fn a_caught_bug_leaves_a_trace_that_replays_to_the_same_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let args = [
        "run",
        "--seeds",
        "5",
        "--scenario",
        "double-single",
        "--bug",
        "no-fence",
        "--trace-dir",
        d,
    ];
    let (out, text) = sim(&args);
    assert!(out.status.success(), "a caught bug exits 0: {text}");
    assert!(text.contains("--bug no-fence: caught after"), "{text}");
    let trace = std::fs::read_dir(dir.path())
        .expect("trace dir")
        .next()
        .expect("a trace was written")
        .expect("entry")
        .path();
    let (out, replayed) = sim(&["replay", trace.to_str().expect("utf-8"), "--verbose"]);
    assert!(out.status.success(), "{replayed}");
    assert!(
        replayed.contains("replay matches the recording"),
        "{replayed}"
    );
    assert!(replayed.contains("violation: single-writer"), "{replayed}");
    assert!(
        replayed.contains("single-a"),
        "the timeline is printed: {replayed}"
    );
    tampered_hash_fails(&trace);
}

fn tampered_hash_fails(trace: &Path) {
    let text = std::fs::read_to_string(trace).expect("read trace");
    let t: serde_json::Value = serde_json::from_str(&text).expect("json");
    let hash = t["hash"].as_str().expect("hash").to_string();
    let flipped = if hash.starts_with('0') { "1" } else { "0" };
    std::fs::write(
        trace,
        text.replacen(&hash, &format!("{flipped}{}", &hash[1..]), 1),
    )
    .expect("write");
    let (out, replayed) = sim(&["replay", trace.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "{replayed}");
    assert!(replayed.contains("DIFFERS"), "{replayed}");
}

#[test]
fn an_uncaught_bug_fails_the_run() {
    // A single instance has no takeover delay to remove: the mutation cannot show there.
    let args = [
        "run",
        "--seeds",
        "2",
        "--scenario",
        "single-crash",
        "--bug",
        "no-takeover-delay",
    ];
    let (out, text) = sim(&args);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("NOT caught in 2 seeds"), "{text}");
}

#[test]
fn the_election_option_names_the_bucket_and_refuses_etcd_only_mutations() {
    let (out, text) = sim(&["scenarios", "--election", "bucket"]);
    assert!(out.status.success());
    assert!(
        text.lines()
            .any(|l| l.starts_with("etcd-restart ") && l.contains("no etcd")),
        "{text}"
    );
    let args = [
        "run",
        "--seeds",
        "1",
        "--start-seed",
        "40",
        "--election",
        "bucket",
    ];
    let (out, text) = sim(&args);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("no violations in 1 worlds, --election bucket"),
        "{text}"
    );
    let args = ["run", "--election", "bucket", "--bug", "keep-renewing"];
    let (out, _) = sim(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs --election etcd"), "{err}");
    let (out, _) = sim(&["run", "--bug", "no-observe-wait"]);
    assert_eq!(out.status.code(), Some(2));
    let (out, _) = sim(&["run", "--election", "zookeeper"]);
    assert!(!out.status.success());
}
