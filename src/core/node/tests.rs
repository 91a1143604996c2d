//! The node's own tests: a term's cycle, and the invariants it checks after every step.

use super::*;
use crate::core::coord::{CoordOp, CoordResult, ElectionKey, LeaseId};
use crate::core::fence::FenceVersion;
use crate::core::testing::{cycle_config, view_config};
use crate::core::types::{
    CompactJob, Epoch, JobId, JobKind, Permit, ReadOp, RequestId, StoreRequest, StoreResult,
    WriteOp,
};
use crate::core::view::ViewConfig;
use crate::tsdb::block_id::BlockId;
use crate::units::MINUTE_MS;

fn node() -> Node {
    let (cycle, leader) = settings();
    Node::new(cycle, leader, 1)
}

/// The settings of [`node`]: elected (`/e`), `--wait`, a 2 s takeover delay.
fn settings() -> (CycleConfig, LeaderConfig) {
    let cycle = CycleConfig {
        view: ViewConfig {
            consistency_delay_ms: 0,
            ..view_config()
        },
        wait_interval_ms: MINUTE_MS,
        ..cycle_config(true)
    };
    let leader = LeaderConfig {
        node: "me".into(),
        election: Some("/e".into()),
        provider: Default::default(),
        nonce: String::new(),
        lease_ttl_ms: 15_000,
        op_timeout_ms: 1_000,
        takeover_delay_ms: 2_000,
        commit_window_ms: 1_000,
        safety: crate::core::leader::Safety::ALL,
        stream: None,
        streams: None,
    };
    (cycle, leader)
}

fn at(ms: i64) -> Now {
    Now {
        mono: Millis(ms),
        wall: Millis(1_700_000_000_000 + ms),
    }
}

/// Answers the request in `out` as a healthy etcd and bucket would; returns the next outputs.
fn answer(n: &mut Node, t: i64, out: &[Output]) -> Vec<Output> {
    let input = out
        .iter()
        .find_map(|o| match o {
            Output::Coord(r) => Some(Input::Coord(
                r.id,
                match &r.op {
                    CoordOp::Grant { .. } => CoordResult::Granted {
                        lease: LeaseId(1),
                        ttl_secs: 15,
                    },
                    CoordOp::Campaign { .. } => CoordResult::Campaigned { create_revision: 2 },
                    CoordOp::Observe { .. } => CoordResult::Observed {
                        keys: vec![ElectionKey {
                            key: "/e/1".into(),
                            create_revision: 2,
                            value: "me".into(),
                        }],
                        revision: 2,
                    },
                    op => panic!("unexpected {op:?}"),
                },
            )),
            Output::Store(r) => Some(Input::Store(
                r.id(),
                match (r.read_op(), r.write_op()) {
                    (Some(ReadOp::ReadFence), _) => StoreResult::Fence(None),
                    (_, Some(WriteOp::CasFence { .. })) => {
                        StoreResult::FenceWritten(FenceVersion {
                            e_tag: Some("1".into()),
                            version: None,
                        })
                    }
                    _ => panic!("unexpected {r:?}"),
                },
            )),
            _ => None,
        })
        .expect("a request to answer");
    n.step(at(t), input)
}

/// A term that begins while the node handles an unrelated input (here a late answer of
/// an earlier term's cycle) still starts its cycle with a sync.
#[test]
fn a_term_started_by_any_input_begins_with_a_sync() {
    let mut n = node();
    let mut out = n.step(at(0), Input::Start);
    for t in 1..=5 {
        out = answer(&mut n, t, &out); // grant, campaign, observe, read, CAS
    }
    assert!(
        n.bucket.leader.leading().is_none(),
        "in the takeover delay: {out:?}"
    );
    let late = Input::Store(RequestId(99), StoreResult::Done);
    let out = n.step(at(5 + 2_000), late);
    assert!(n.bucket.leader.leading().is_some());
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Store(r) if r.read_op() == Some(&ReadOp::Sync))),
        "the new term's first sync is missing: {out:?}"
    );
}

/// A node leading epoch 2 (grant, campaign, observe, fence read and CAS, the takeover delay),
/// and the time it leads at.
fn leading() -> (Node, i64) {
    let mut n = node();
    let mut out = n.step(at(0), Input::Start);
    for t in 1..=5 {
        out = answer(&mut n, t, &out);
    }
    let t = 5 + 2_000;
    n.step(at(t), Input::Tick);
    assert_eq!(n.bucket.leader.leading(), Some(Epoch(2)));
    (n, t)
}

/// Request 7 under `permit`: `op`.
fn sent(op: WriteOp, permit: Permit) -> Output {
    Output::Store(StoreRequest::write(RequestId(7), op, permit))
}

/// A meta.json commit of a new block.
fn put_meta() -> WriteOp {
    let meta = crate::tsdb::meta::BlockMeta::level1(BlockId::from_parts(1, 1), 0, 1);
    WriteOp::PutMeta {
        meta: Box::new(meta),
    }
}

/// A leader's own commit, under its permit while the fence holds its epoch, passes.
#[test]
fn a_healthy_leader_passes_the_node_invariants() {
    let (n, t) = leading();
    let permit = n
        .permits(at(t))
        .first()
        .copied()
        .expect("a permit while leading");
    n.check_invariants(
        at(t),
        &[sent(put_meta(), permit), Output::Timer(Millis(t + 1))],
    );
}

/// The leader's permit at `t`, with `change` applied.
fn permit(n: &Node, t: i64, change: impl FnOnce(&mut Permit)) -> Permit {
    let mut permit = n
        .permits(at(t))
        .first()
        .copied()
        .expect("a permit while leading");
    change(&mut permit);
    permit
}

#[test]
#[should_panic(expected = "node invariant permit-within-lease broken: ")]
fn a_permit_past_the_lease_is_caught() {
    let (n, t) = leading();
    let too_long = permit(&n, t, |p| p.valid_until = p.valid_until.plus(1));
    n.check_invariants(at(t), &[sent(put_meta(), too_long)]);
}

#[test]
#[should_panic(expected = "node invariant no-mutation-without-term broken: ")]
fn a_mutation_of_another_term_is_caught() {
    let (n, t) = leading();
    let upload = WriteOp::UploadFiles {
        job: JobId(1),
        block: BlockId::from_parts(1, 1),
    };
    let other_term = permit(&n, t, |p| p.epoch = Epoch(3));
    n.check_invariants(at(t), &[sent(upload, other_term)]);
}

/// The fence holds epoch 2: a commit of term 3 had no fence CAS of its own.
#[test]
#[should_panic(expected = "node invariant commit-needs-fence broken: ")]
fn a_commit_without_the_fence_is_caught() {
    let (mut n, t) = leading();
    let other_term = permit(&n, t, |p| p.epoch = Epoch(3));
    n.bucket.term = Some(Epoch(3));
    n.bucket.check_write(at(t), &put_meta(), &other_term);
}

#[test]
#[should_panic(expected = "node invariant fence-cas-own-epoch broken: ")]
fn a_fence_cas_of_another_epoch_is_caught() {
    let (n, t) = leading();
    let cas = WriteOp::CasFence {
        stream: None,
        record: crate::core::fence::FenceRecord::successor(None, 5, "me", 0),
        expected: None,
    };
    n.check_invariants(at(t), &[sent(cas, permit(&n, t, |_| {}))]);
}

#[test]
#[should_panic(expected = "node invariant unique-request-ids broken: ")]
fn a_request_id_used_twice_is_caught() {
    let (n, t) = leading();
    let p = permit(&n, t, |_| {});
    n.check_invariants(at(t), &[sent(put_meta(), p), sent(put_meta(), p)]);
}

#[test]
#[should_panic(expected = "node invariant one-timer-last broken: ")]
fn a_timer_before_other_outputs_is_caught() {
    let (n, t) = leading();
    n.check_invariants(at(t), &[Output::Timer(Millis(t + 1)), Output::Exit(0)]);
}

#[test]
#[should_panic(expected = "node invariant term-follows-leader broken: ")]
fn a_cycle_in_a_term_the_leader_does_not_hold_is_caught() {
    let (mut n, t) = leading();
    n.bucket.term = Some(Epoch(3));
    n.check_invariants(at(t), &[]);
}

/// The term ended while the cycle still syncs for it.
#[test]
#[should_panic(expected = "node invariant no-work-without-term broken: ")]
fn a_cycle_busy_without_a_term_is_caught() {
    let (mut n, t) = leading();
    n.bucket.term = None;
    n.check_invariants(at(t), &[]);
}

#[test]
#[should_panic(expected = "node invariant no-job-without-term broken: ")]
fn a_job_without_a_term_is_caught() {
    let job = Output::Compact(CompactJob {
        job: JobId(1),
        group: "0@1".into(),
        inputs: vec![],
        output: BlockId::from_parts(1, 2),
        kind: JobKind::Compact,
    });
    node().check_invariants(at(0), &[job]);
}

mod admin;
mod streams;
