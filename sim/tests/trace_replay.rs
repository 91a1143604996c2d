//! `replay_production` on a real production trace. The trace is recorded once, in this
//! process, by the production entry point `compactd::run::run` with `trace_record` set: the
//! real driver, a filesystem bucket of generated blocks, real compactions (the `compactd`
//! binary of the other crate cannot be located reliably from here; `tests/trace_record.rs`
//! covers the command line). Then: the replay reproduces the recorded hash; an altered input
//! or seed diverges at the step it changes; a trace cut mid-line (kill -9) replays its
//! complete prefix and says so; malformed traces fail naming the file and line.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use compactd::run::{HaSettings, RunConfig};
use compactd::tools::generate::{generate, GenerateOptions};
use compactd_sim::trace_replay::{is_production_trace, replay_production, ReplayReport};

const HOUR: i64 = 3_600_000;

/// The directory of this test's files (emptied when the trace is recorded, so a run leaves
/// only its own behind).
fn dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace_replay")
}

/// The trace of a one-shot run over 12h of 2h blocks, recorded on first use.
fn recorded() -> &'static Path {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    TRACE.get_or_init(|| {
        let dir = dir();
        let _ = std::fs::remove_dir_all(&dir);
        let bucket = dir.join("bucket");
        generate(&GenerateOptions {
            out: bucket.clone(),
            series: 10,
            hours: 12.0,
            block_duration_ms: 2 * HOUR,
            start_ms: 1_735_689_600_000,
            scrape_interval_ms: 15_000,
            external_labels: [("cluster".to_string(), "eu-1".to_string())].into(),
            seed: 1,
        })
        .unwrap();
        let trace = dir.join("trace.jsonl");
        let cfg = RunConfig {
            objstore_config_file: None,
            objstore_config: Some(format!(
                "type: FILESYSTEM\nconfig:\n  directory: {}\n",
                bucket.display()
            )),
            data_dir: dir.join("data"),
            http_address: "127.0.0.1:0".into(),
            wait: false,
            wait_interval_ms: 300_000,
            progress_interval_ms: 300_000,
            cleanup_interval_ms: 300_000,
            consistency_delay_ms: 0,
            delete_delay_ms: 0,
            min_time_ms: i64::MIN,
            max_time_ms: i64::MAX,
            retention_ms: [0; 3],
            concurrency: 1,
            vertical: false,
            replica_labels: vec![],
            selector_relabel_config_file: None,
            selector_relabel_config: None,
            dedup: compactd::tsdb::compact::DedupFunc::Chain,
            max_compaction_level: 4,
            block_max_index_size: 64 << 30,
            downsampling_disabled: true,
            downsample_concurrency: 1,
            download_blocks: false,
            op_timeout_ms: 5_000,
            ha: HaSettings {
                lease_ttl_ms: 15_000,
                takeover_delay_ms: 10_000,
                node_name: Some("replay-test".into()),
                ..HaSettings::default()
            },
            compact_threads: 1,
            partial_upload_threshold_ms: 48 * HOUR as u64,
            trace_record: Some(trace.clone()),
            transfers: Default::default(),
            http_grace_period_ms: 120_000,
            http_config: None,
            hash_func: Default::default(),
            halt_on_error: true,
            skip_out_of_order_chunks: false,
            accept_malformed_index: false,
            disable_admin_operations: false,
            web: Default::default(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(runtime.block_on(compactd::run::run(cfg)).unwrap(), 0);
        trace
    })
}

fn lines() -> Vec<String> {
    let text = std::fs::read_to_string(recorded()).unwrap();
    text.lines().map(String::from).collect()
}

/// Writes `text` to a file of its own and replays it.
fn replay_text(name: &str, text: &str) -> (PathBuf, Result<ReplayReport, String>) {
    let path = dir().join(name);
    std::fs::write(&path, text).unwrap();
    let report = replay_production(&path, false, &mut std::io::sink());
    (path, report)
}

/// The recorded hash of a step line.
fn hash_of(line: &str) -> u64 {
    let at = line.rfind("\"hash\":\"").unwrap() + 8;
    u64::from_str_radix(&line[at..at + 16], 16).unwrap()
}

/// The number of the first step whose line contains `needle`.
fn first_step_with(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no step with {needle}"))
}

#[test]
fn a_production_trace_replays_to_its_recorded_hash() {
    let trace = recorded();
    assert!(is_production_trace(trace));
    let lines = lines();
    let mut verbose = Vec::new();
    let report = replay_production(trace, true, &mut verbose).unwrap();
    assert_eq!(report.first_divergence, None, "{report}");
    assert_eq!(report.cut, None);
    assert_eq!(report.steps, lines.len() as u64 - 1);
    assert_eq!(report.hash, report.recorded_hash);
    assert_eq!(report.hash, hash_of(lines.last().unwrap()));
    assert!(
        report.to_string().ends_with("equals the recording's"),
        "{report}"
    );

    let verbose = String::from_utf8(verbose).unwrap();
    let shown: Vec<&str> = verbose.lines().collect();
    assert!(shown[0].contains("node replay-test, seed "), "{}", shown[0]);
    assert_eq!(
        shown.len(),
        lines.len(),
        "one line per step after the title"
    );
    assert!(shown[1].starts_with("step      1  mono "), "{}", shown[1]);
    assert!(shown[1].contains(" start -> store#"), "{}", shown[1]);
    assert!(shown[1].contains(" read-fence"), "{}", shown[1]);
    for expected in [" synced ", "compact job#1 ", " put-meta ", "exit 0"] {
        assert!(
            verbose.contains(expected),
            "{expected:?} missing:\n{verbose}"
        );
    }
}

#[test]
fn an_altered_input_diverges_at_its_step() {
    let mut lines = lines();
    let i = first_step_with(&lines, "\"input\":{\"Compacted\":[");
    let line = &lines[i];
    let ok = line.find("{\"Ok\":").unwrap();
    let hash = line.rfind(",\"hash\":").unwrap();
    lines[i] = format!(
        "{}{{\"Err\":{{\"kind\":\"BadInput\",\"message\":\"edited\"}}}}]}}{}",
        &line[..ok],
        &line[hash..]
    );
    let (_, report) = replay_text("altered-input.jsonl", &(lines.join("\n") + "\n"));
    let report = report.unwrap();
    assert_eq!(report.first_divergence, Some(i as u64), "{report}");
    assert_eq!(report.steps, i as u64);
    assert_eq!(report.recorded_hash, hash_of(&lines[i]));
    assert_ne!(report.hash, report.recorded_hash);
    assert!(
        report
            .to_string()
            .starts_with(&format!("DIVERGED at step {i}: ")),
        "{report}"
    );
}

#[test]
fn an_altered_seed_diverges_at_the_first_new_block_id() {
    let mut lines = lines();
    let start = lines[0].find("\"seed\":").unwrap() + 7;
    let end = start + lines[0][start..].find(',').unwrap();
    let seed: u64 = lines[0][start..end].parse().unwrap();
    lines[0].replace_range(start..end, &(seed ^ 1).to_string()); // other block ids
    let (_, report) = replay_text("altered-seed.jsonl", &(lines.join("\n") + "\n"));
    // The first sync's answer is when the cycle plans, naming its first new block.
    let first_plan = first_step_with(&lines, "{\"Synced\":") as u64;
    assert_eq!(report.unwrap().first_divergence, Some(first_plan));
}

#[test]
fn a_cut_trace_replays_its_complete_prefix() {
    let text = std::fs::read_to_string(recorded()).unwrap();
    let lines = lines();
    let last = lines.last().unwrap();
    let cut = text.len() - 1 - last.len() / 2;
    let (path, report) = replay_text("cut.jsonl", &text[..cut]);
    let report = report.unwrap();
    let complete = lines.len() as u64 - 2;
    assert_eq!(report.steps, complete);
    assert_eq!(report.first_divergence, None);
    assert_eq!(report.hash, hash_of(&lines[lines.len() - 2]));
    let expected = format!(
        "{}:{}: the last line is cut short",
        path.display(),
        lines.len()
    );
    assert!(
        report.cut.as_deref().unwrap().starts_with(&expected),
        "{report:?}"
    );
    assert!(
        report.to_string().contains(&format!(
            "\nnote: {expected} (the recording stopped while writing it, e.g. kill -9); the \
             {complete} complete steps before it were replayed"
        )),
        "{report}"
    );
}

#[test]
fn malformed_traces_fail_naming_the_file_and_line() {
    let mut lines = lines();
    lines[3] = lines[3].replacen("\"now\"", "\"later\"", 1);
    let (path, report) = replay_text("malformed.jsonl", &(lines.join("\n") + "\n"));
    let error = report.unwrap_err();
    assert!(
        error.starts_with(&format!("{}:4: not a trace step: ", path.display())),
        "{error}"
    );
    assert!(
        error.ends_with("(the 2 steps before it replayed identically)"),
        "{error}"
    );

    let (path, report) = replay_text("not-a-trace.jsonl", "{\"seed\":1}\n");
    assert!(!is_production_trace(&path));
    let error = report.unwrap_err();
    assert!(
        error.starts_with(&format!(
            "{}:1: not a compactd-trace/2 trace",
            path.display()
        )),
        "{error}"
    );
    assert!(!is_production_trace(&dir().join("absent.jsonl")));
}

#[test]
fn the_cli_replays_a_production_trace() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_compactd-sim"))
        .arg("replay")
        .arg(recorded())
        .output()
        .expect("run compactd-sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("equals the recording's"), "{stdout}");
}
