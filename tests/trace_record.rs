//! `compactd run --trace.record`: a one-shot run on a filesystem bucket records a header and
//! every step, and rebuilding the node from the header and feeding it the recorded inputs
//! reproduces every recorded hash; a run killed with SIGKILL leaves a trace whose complete
//! prefix replays; an unwritable trace path stops the run before it touches the bucket.

mod common;

use std::io::BufReader;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use compactd::core::node::Node;
use compactd::core::types::{Input, Output as NodeOutput, StoreResult};
use compactd::trace::{StepHasher, TraceError, TraceHeader, TraceReader, FORMAT};

/// `compactd run` on the bucket of `config`, recording its trace into `trace`.
fn recording(config: &str, data: &Path, trace: &Path) -> CompactdRun {
    CompactdRun::new(config)
        .data_dir(data)
        .arg("--downsampling.disable")
        .flag("--delete-delay", "0s")
        .node("trace-test")
        .flag("--trace.record", trace.to_str().unwrap())
}

fn run_recording(config: &str, data: &Path, trace: &Path) -> Output {
    recording(config, data, trace).output()
}

/// What replaying a trace found.
struct Replayed {
    header: TraceHeader,
    inputs: Vec<Input>,
    last_outputs: Vec<NodeOutput>,
    /// The error that ended the trace, if any.
    end: Option<TraceError>,
}

/// Replays `trace` on a node rebuilt from its header, asserting every recorded hash.
fn replay(trace: &Path) -> Replayed {
    let file = std::fs::File::open(trace).unwrap();
    let reader = TraceReader::new(BufReader::new(file), "trace.jsonl").unwrap();
    let header = reader.header().clone();
    let mut node = Node::new(header.cycle.clone(), header.leader.clone(), header.seed);
    let mut hasher = StepHasher::default();
    let mut replayed = Replayed {
        header,
        inputs: Vec::new(),
        last_outputs: Vec::new(),
        end: None,
    };
    for step in reader {
        let step = match step {
            Ok(s) => s,
            Err(e) => {
                replayed.end = Some(e);
                break;
            }
        };
        replayed.inputs.push(step.input.clone());
        replayed.last_outputs = node.step(step.now, step.input);
        hasher.update(&replayed.last_outputs).unwrap();
        assert_eq!(hasher.digest(), step.hash, "hash of step {}", step.step);
    }
    replayed
}

#[test]
fn a_recorded_run_replays_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 10, 12);
    let trace = tmp.path().join("trace.jsonl");
    let out = run_recording(&fs_config(&bucket), &tmp.path().join("data"), &trace);
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.ends_with('\n'), "every line is complete");
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("{{\"format\":\"{FORMAT}\",")),
        "{first}"
    );

    let r = replay(&trace);
    assert!(r.end.is_none(), "{:?}", r.end);
    assert_eq!(r.header.node, "trace-test");
    assert_eq!(r.header.leader.election, None);
    assert!(!r.header.cycle.wait);
    assert_eq!(r.header.cycle.view.delete_delay_ms, 0);
    assert_eq!(r.inputs.len(), text.lines().count() - 1);
    assert!(matches!(r.inputs[0], Input::Start));
    let syncs = r
        .inputs
        .iter()
        .filter(|i| matches!(i, Input::Store(_, StoreResult::Synced(_))))
        .count();
    let compactions = r
        .inputs
        .iter()
        .filter(|i| matches!(i, Input::Compacted(_, result) if matches!(**result, Ok(Some(_)))))
        .count();
    assert!(
        syncs >= 2 && compactions >= 2,
        "{syncs} syncs, {compactions} compactions"
    );
    assert!(
        r.last_outputs.contains(&NodeOutput::Exit(0)),
        "the last step exits: {:?}",
        r.last_outputs
    );
}

#[test]
fn a_killed_recording_leaves_a_replayable_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 10, 12);
    let trace = tmp.path().join("trace.jsonl");
    let config = fs_config(&bucket);
    let data = tmp.path().join("data");
    let mut child = recording(&config, &data, &trace)
        .wait()
        .wait_interval("1s")
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Three syncs: past the first iteration's compactions, into the next iterations.
    let syncs = |t: String| t.matches("{\"Synced\":").count();
    while std::fs::read_to_string(&trace).map_or(0, syncs) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the trace does not grow"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let r = replay(&trace);
    match &r.end {
        None => {}
        Some(e @ TraceError::Cut { .. }) => {
            assert!(e.to_string().contains("the last line is cut short"))
        }
        Some(e) => panic!("only the last line may be incomplete: {e}"),
    }
    assert!(r.inputs.len() > 10, "{} steps recorded", r.inputs.len());
}

#[test]
fn an_unwritable_trace_path_stops_the_run_before_it_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 10, 12);
    let before = block_dirs(&bucket);
    let trace = tmp.path().join("missing-dir/trace.jsonl");
    let out = run_recording(&fs_config(&bucket), &tmp.path().join("data"), &trace);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("error: --trace.record {}: ", trace.display())),
        "{stderr}"
    );
    assert_eq!(block_dirs(&bucket), before, "the bucket was not touched");
    assert!(!bucket.join("compactd").exists(), "no fence was written");
}
