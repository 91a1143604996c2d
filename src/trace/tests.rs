use super::*;
use crate::core::leader::Safety;
use crate::core::testing::{cycle_config, view_config, T0_MS};
use crate::core::types::{Event, JobKind, Millis, RequestId, StoreError, StoreResult};
use crate::core::view::ViewConfig;
use crate::units::{MINUTE_MS, RESOLUTION_5M_MS};

fn header() -> TraceHeader {
    let cycle = CycleConfig {
        view: ViewConfig {
            replica_labels: vec!["replica".into()],
            ..view_config()
        },
        concurrency: 2,
        vertical: true,
        index_size_limit_bytes: Some(64 << 30),
        retention_ms: [0, 1, 2],
        progress_interval_ms: 5 * MINUTE_MS,
        ..cycle_config(true)
    };
    let leader = LeaderConfig {
        node: "node-a".into(),
        election: Some("/compactd/b/election".into()),
        provider: Default::default(),
        nonce: String::new(),
        lease_ttl_ms: 15_000,
        op_timeout_ms: 5_000,
        takeover_delay_ms: 10_000,
        commit_window_ms: 5_000,
        safety: Safety::ALL,
        stream: None,
        streams: None,
    };
    TraceHeader::new(&cycle, &leader, u64::MAX - 1)
}

fn at(ms: i64) -> Now {
    Now {
        mono: Millis(ms),
        wall: Millis(T0_MS + ms),
    }
}

/// Three steps and their outputs.
fn steps() -> Vec<(Now, Input, Vec<Output>)> {
    vec![
        (at(0), Input::Start, vec![Output::Timer(Millis(10))]),
        (
            at(10),
            Input::Store(RequestId(3), StoreResult::Failed(StoreError::other("503"))),
            vec![],
        ),
        (
            at(25),
            Input::Tick,
            vec![Output::Event(Event::IterationDone), Output::Exit(0)],
        ),
    ]
}

fn record() -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = TraceWriter::new(&mut out, &header()).unwrap();
    for (now, input, outputs) in steps() {
        w.record(now, &input, &outputs).unwrap();
    }
    out
}

fn read(bytes: &[u8]) -> Result<TraceReader<&[u8]>, TraceError> {
    TraceReader::new(bytes, "t.jsonl")
}

#[test]
fn written_traces_read_back_with_the_running_hash() {
    let bytes = record();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.ends_with('\n'));
    assert!(text.starts_with("{\"format\":\"compactd-trace/2\",\"compactd\":\""));
    assert_eq!(header_format(text.lines().next().unwrap()).unwrap(), FORMAT);
    assert_eq!(header_format(text.lines().nth(1).unwrap()), None);

    let reader = read(&bytes).unwrap();
    assert_eq!(reader.header(), &header());
    let read: Vec<TraceStep> = reader.map(Result::unwrap).collect();
    let mut hasher = StepHasher::default();
    assert_eq!(read.len(), 3);
    for (i, (step, (now, input, outputs))) in read.iter().zip(steps()).enumerate() {
        hasher.update(&outputs).unwrap();
        assert_eq!(step.step, i as u64 + 1);
        assert_eq!(step.now, now);
        assert_eq!(format!("{:?}", step.input), format!("{input:?}"));
        assert_eq!(step.hash, hasher.digest(), "step {}", step.step);
    }
    let last = text.lines().last().unwrap();
    let hex = format!("\"hash\":\"{:016x}\"}}", hasher.digest());
    assert!(last.ends_with(&hex), "{last}");
}

#[test]
fn the_hash_covers_every_output_in_order() {
    let digest = |steps: &[&[Output]]| {
        let mut h = StepHasher::default();
        steps.iter().for_each(|s| h.update(s).unwrap());
        h.digest()
    };
    let (a, b) = (Output::Timer(Millis(1)), Output::Exit(2));
    let (ab, ba) = ([a.clone(), b.clone()], [b, a.clone()]);
    assert_eq!(digest(&[]), xxhash_rust::xxh64::xxh64(b"", 0));
    assert_eq!(
        digest(&[&ab]),
        xxhash_rust::xxh64::xxh64(br#"{"Timer":1}{"Exit":2}"#, 0)
    );
    assert_ne!(digest(&[&ab]), digest(&[&ba]));
    let one = std::slice::from_ref(&a);
    assert_ne!(digest(&[one]), digest(&[&[Output::Timer(Millis(2))]]));
    assert_ne!(digest(&[one]), digest(&[one, one]));
}

#[test]
fn a_cut_last_line_ends_the_trace_after_the_complete_steps() {
    let bytes = record();
    let cut = &bytes[..bytes.len() - 20];
    let mut reader = read(cut).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().step, 1);
    assert_eq!(reader.next().unwrap().unwrap().step, 2);
    let err = reader.next().unwrap().unwrap_err();
    assert!(matches!(err, TraceError::Cut { line: 4, .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("t.jsonl:4: the last line is cut short"));
    assert!(reader.next().is_none());

    // Cut right before the final newline: the line is whole and counts.
    assert_eq!(read(&bytes[..bytes.len() - 1]).unwrap().count(), 3);
    // A cut header.
    let err = read(&bytes[..30]).err().unwrap();
    assert!(matches!(err, TraceError::Cut { line: 1, .. }), "{err:?}");
}

#[test]
fn malformed_lines_are_named_by_file_and_line() {
    let text = String::from_utf8(record()).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let message = |lines: &[String]| {
        let joined = lines.join("\n") + "\n";
        let reader = read(joined.as_bytes());
        match reader {
            Err(e) => e.to_string(),
            Ok(r) => r
                .filter_map(Result::err)
                .map(|e| e.to_string())
                .next()
                .unwrap_or_default(),
        }
    };

    let mut bad = lines.clone();
    bad[2] = bad[2].replace("\"Failed\"", "\"Fail\"");
    assert!(
        message(&bad).starts_with("t.jsonl:3: not a trace step: unknown variant `Fail`"),
        "{}",
        message(&bad)
    );
    let mut bad = lines.clone();
    bad[2] = bad[2].replace("\"step\":2", "\"step\":5");
    assert_eq!(message(&bad), "t.jsonl:3: step 5 where step 2 was expected");
    let mut bad = lines.clone();
    let hash = bad[1].rfind("\"hash\":\"").unwrap();
    bad[1].replace_range(hash.., "\"hash\":\"12\"}");
    assert!(message(&bad)
        .starts_with("t.jsonl:2: not a trace step: hash \"12\": expected 16 hex digits"));

    lines[0] = lines[0].replace("compactd-trace/2", "compactd-trace/9");
    assert_eq!(
        message(&lines),
        "t.jsonl:1: trace format \"compactd-trace/9\": this build reads compactd-trace/2"
    );
    let other = vec!["{\"seed\":1}".to_string()];
    assert!(message(&other).starts_with("t.jsonl:1: not a compactd-trace/2 trace"));
    assert_eq!(
        read(b"").err().unwrap().to_string(),
        "t.jsonl:1: empty file: no trace header"
    );
}

#[test]
fn selector_rules_are_recorded_and_older_headers_read_without_them() {
    let mut with_selector = header();
    with_selector.cycle.view.selector_relabel = crate::relabel::selector::parse_selector(
        "- {source_labels: [cluster], target_label: s, modulus: 2, action: hashmod}\n- {source_labels: [s], regex: 0, action: keep}",
    )
    .unwrap();
    let json = serde_json::to_string(&with_selector).unwrap();
    assert!(
        json.contains(r#""selector_relabel":[{"source_labels":["cluster"]"#),
        "{json}"
    );
    assert_eq!(
        serde_json::from_str::<TraceHeader>(&json).unwrap(),
        with_selector
    );
    // No selector: the field is left out, as in traces recorded before it existed.
    let json = serde_json::to_string(&header()).unwrap();
    assert!(!json.contains("selector_relabel"));
    assert_eq!(
        serde_json::from_str::<TraceHeader>(&json).unwrap(),
        header()
    );
}

/// A driver job's kind is written as the `downsample_to` it replaced (absent for a
/// compaction), so a trace's running hash over its outputs stays what it was.
#[test]
fn job_kinds_keep_the_json_traces_were_hashed_over() {
    let job = |kind| {
        Output::Compact(crate::core::types::CompactJob {
            job: crate::core::types::JobId(4),
            group: "0@123".into(),
            inputs: vec![],
            output: crate::tsdb::block_id::BlockId::from_parts(1, 2),
            kind,
        })
    };
    let compact = job(JobKind::Compact);
    let downsample = job(JobKind::Downsample {
        resolution_ms: RESOLUTION_5M_MS,
    });
    let json = |o: &Output| serde_json::to_value(o).unwrap()["Compact"].clone();
    let fields = |o: &Output| {
        let mut keys: Vec<String> = json(o).as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(fields(&compact), ["group", "inputs", "job", "output"]);
    assert_eq!(json(&downsample)["downsample_to"], 300_000);
    for o in [compact, downsample] {
        assert_eq!(
            serde_json::from_value::<Output>(serde_json::to_value(&o).unwrap()).unwrap(),
            o
        );
    }
}
