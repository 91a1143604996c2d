//! `--compact.skip-block-with-out-of-order-chunks`: a job that fails on an input block whose
//! index lists chunks out of time order, against the cycle's model bucket.

use super::super::testing::{block, now, run_failing, twelve_2h_blocks, Model, PERMIT};
use super::super::{Cycle, CycleConfig, EXIT_HALTED};
use crate::bucket::markers::{DETAILS_OUT_OF_ORDER_CHUNKS, REASON_OUT_OF_ORDER_CHUNKS};
use crate::core::testing::cycle_config;
use crate::core::types::{
    CompactJob, Event, JobError, JobErrorKind, Output, StoreRequest, WriteOp,
};
use crate::tsdb::block_id::BlockId;

/// The store requests among `outputs`.
fn requests(outputs: &[Output]) -> Vec<&StoreRequest> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Store(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn skip(on: bool) -> CycleConfig {
    CycleConfig {
        skip_out_of_order_chunks: on,
        ..cycle_config(false)
    }
}

/// Two streams of 24h of 2h blocks; the second block of `eu-1` has out-of-order chunks.
fn bucket() -> (Model, BlockId) {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    twelve_2h_blocks(&mut model, "us-1", 200);
    (model, block(101, 2, 4, "eu-1").ulid)
}

/// Fails every job that reads `bad`, naming it.
fn out_of_order(bad: BlockId) -> impl Fn(&CompactJob) -> Option<JobError> {
    move |job| {
        job.inputs
            .iter()
            .any(|m| m.ulid == bad)
            .then(|| JobError::out_of_order_chunks(bad, format!("index of {bad}: series x")))
    }
}

fn halted(outputs: &[Output]) -> Option<&str> {
    outputs.iter().find_map(|o| match o {
        Output::Event(Event::Halted(reason)) => Some(reason.as_str()),
        _ => None,
    })
}

/// Level-2+ blocks of `cluster` now visible, with their sources.
fn compacted(model: &Model, cluster: &str) -> Vec<Vec<BlockId>> {
    model
        .visible()
        .into_iter()
        .filter(|m| m.thanos.as_ref().unwrap().labels["cluster"] == cluster)
        .filter(|m| m.compaction.level > 1)
        .map(|m| m.compaction.sources.clone())
        .collect()
}

#[test]
fn with_the_option_the_block_is_no_compact_marked_under_the_permit_and_the_rest_compacts() {
    let (mut model, bad) = bucket();
    let mut cycle = Cycle::new(skip(true), 7);
    let (code, outputs) = run_failing(&mut cycle, &mut model, now(48), out_of_order(bad));
    assert_eq!(code, Some(0), "{:?}", halted(&outputs));
    assert_eq!(halted(&outputs), None);
    // The mark: Thanos' reason and details, written once, under the permit.
    let mark = model.blocks[&bad]
        .no_compact_mark
        .as_ref()
        .expect("the block is no-compact-marked");
    assert_eq!(mark.reason, REASON_OUT_OF_ORDER_CHUNKS);
    assert_eq!(mark.details, DETAILS_OUT_OF_ORDER_CHUNKS);
    let marks: Vec<&StoreRequest> = requests(&outputs)
        .into_iter()
        .filter(|r| matches!(r.write_op(), Some(WriteOp::MarkNoCompact(m)) if m.id == bad))
        .collect();
    assert_eq!(marks.len(), 1, "marked once");
    assert_eq!(marks[0].permit(), Some(PERMIT));
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Marked { block, reason, .. })
            if *block == bad && reason == REASON_OUT_OF_ORDER_CHUNKS
    )));
    // The block itself is left alone: not deleted, not marked for deletion, in no new block.
    assert!(model.blocks[&bad].deletion_mark.is_none());
    for sources in compacted(&model, "eu-1") {
        assert!(!sources.contains(&bad), "{sources:?}");
    }
    // The other stream compacted as if nothing happened: two 8h blocks.
    let us: Vec<usize> = compacted(&model, "us-1").iter().map(Vec::len).collect();
    assert_eq!(us, [4, 4]);
    // So did the rest of the failing stream, once the pass ran again without the block.
    let eu = compacted(&model, "eu-1");
    assert!(eu.iter().any(|s| s.len() == 4), "{eu:?}");
}

#[test]
fn without_the_option_compaction_halts_naming_the_block() {
    let (mut model, bad) = bucket();
    let mut cycle = Cycle::new(skip(false), 7);
    let (code, outputs) = run_failing(&mut cycle, &mut model, now(48), out_of_order(bad));
    assert_eq!(code, Some(EXIT_HALTED));
    let reason = halted(&outputs).expect("halted");
    assert!(
        reason.contains(&format!("move block {bad} (out-of-order chunks)")),
        "{reason}"
    );
    assert!(
        reason.contains("--compact.skip-block-with-out-of-order-chunks"),
        "{reason}"
    );
    assert!(
        !model.log.iter().any(|op| op == "mark-no-compact"),
        "{:?}",
        model.log
    );
    assert!(model.blocks[&bad].no_compact_mark.is_none());
}

#[test]
fn a_named_block_outside_the_plan_is_never_marked() {
    let (mut model, bad) = bucket();
    let stranger = block(999, 100, 102, "eu-1").ulid;
    let mut cycle = Cycle::new(skip(true), 7);
    let fail = |job: &CompactJob| {
        let reads_bad = job.inputs.iter().any(|m| m.ulid == bad);
        reads_bad.then(|| JobError::out_of_order_chunks(stranger, "index of a stranger"))
    };
    let (code, outputs) = run_failing(&mut cycle, &mut model, now(48), fail);
    assert_eq!(code, Some(EXIT_HALTED));
    let reason = halted(&outputs).expect("halted");
    assert!(reason.contains("not an input of the plan"), "{reason}");
    assert!(!model.log.iter().any(|op| op == "mark-no-compact"));
}

/// A trace keeps a job failure's kind (the block of out-of-order chunks with it), and the
/// kind alone decides whether it is retried.
#[test]
fn a_job_error_keeps_its_kind_through_a_trace() {
    let id = block(1, 0, 2, "eu-1").ulid;
    let ooo = JobError::out_of_order_chunks(id, "x");
    let back: JobError = serde_json::from_str(&serde_json::to_string(&ooo).unwrap()).unwrap();
    assert_eq!(back, ooo);
    assert!(!back.retryable());
    assert_eq!(back.kind, JobErrorKind::OutOfOrderChunks { block: id });
    let io = serde_json::to_value(JobError::io("disk full")).unwrap();
    assert_eq!(
        io,
        serde_json::json!({"kind": "Io", "message": "disk full"})
    );
}

#[test]
fn a_cycle_config_recorded_before_the_option_loads_with_it_off() {
    let mut old = serde_json::to_value(skip(true)).unwrap();
    let removed = old
        .as_object_mut()
        .unwrap()
        .remove("skip_out_of_order_chunks");
    assert_eq!(removed, Some(serde_json::Value::Bool(true)));
    let loaded: CycleConfig = serde_json::from_value(old).unwrap();
    assert!(!loaded.skip_out_of_order_chunks);
}
