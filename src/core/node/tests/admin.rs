//! Operator requests ([`crate::core::admin`]) on a node: committed by the leader through its
//! gate, one fence CAS before each commit, under the term's permit; refused by a node that
//! does not lead; answered when the term ends.

use super::*;
use crate::bucket::markers::{NoCompactMark, MARKER_VERSION};
use crate::core::admin::{AdminId, AdminOutcome, AdminRequest};
use crate::core::types::Event;

fn no_compact(n: u128) -> WriteOp {
    WriteOp::MarkNoCompact(NoCompactMark {
        id: BlockId::from_parts(1, n),
        version: MARKER_VERSION,
        details: "operator".into(),
        no_compact_time: 1,
        reason: "manual".into(),
    })
}

fn request(ops: Vec<WriteOp>) -> Input {
    Input::Admin(Box::new(AdminRequest {
        id: AdminId(1),
        stream: None,
        ops,
    }))
}

/// The writes of `out`: (request id, operation, permit).
fn writes(out: &[Output]) -> Vec<(RequestId, WriteOp, Permit)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Store(StoreRequest::Write { id, op, permit }) => {
                Some((*id, op.clone(), *permit))
            }
            _ => None,
        })
        .collect()
}

fn answers(out: &[Output]) -> Vec<AdminOutcome> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(Event::AdminDone { outcome, .. }) => Some(outcome.clone()),
            _ => None,
        })
        .collect()
}

fn fence_written() -> StoreResult {
    StoreResult::FenceWritten(FenceVersion {
        e_tag: Some("2".into()),
        version: None,
    })
}

/// Each commit of the request waits for a fence CAS of its own, leaves under the term's
/// permit, and the answer counts them under the epoch.
#[test]
fn an_operator_request_commits_through_the_gate_one_cas_each() {
    let (mut n, mut t) = leading();
    let mut out = n.step(at(t), request(vec![no_compact(1), no_compact(2)]));
    for expected in [no_compact(1), no_compact(2)] {
        let w = writes(&out);
        assert_eq!(w.len(), 1, "{out:?}");
        let (cas, op, _) = &w[0];
        assert!(
            matches!(op, WriteOp::CasFence { .. }),
            "commit before its CAS: {op:?}"
        );
        t += 1;
        out = n.step(at(t), Input::Store(*cas, fence_written()));
        let w = writes(&out);
        assert_eq!(w.len(), 1, "{out:?}");
        let (id, op, permit) = &w[0];
        assert_eq!(op, &expected);
        assert_eq!(permit.epoch, Epoch(2));
        assert!(
            permit.valid_until <= Millis(t + 1_000),
            "past the commit window"
        );
        assert!(answers(&out).is_empty());
        t += 1;
        out = n.step(at(t), Input::Store(*id, StoreResult::Done));
    }
    let outcome = AdminOutcome {
        committed: 2,
        existed: 0,
        error: None,
        epoch: 2,
    };
    assert_eq!(answers(&out), vec![outcome]);
}

/// A node that does not lead answers at once, and writes nothing.
#[test]
fn a_follower_refuses_an_operator_request() {
    let mut n = node();
    n.step(at(0), Input::Start);
    let out = n.step(at(1), request(vec![no_compact(1)]));
    assert!(writes(&out).is_empty(), "{out:?}");
    let error = answers(&out)[0].error.clone().expect("refused");
    assert!(error.contains("does not lead"), "{error}");
}

/// Only marks, marker removals and deletions are taken; an empty request neither.
#[test]
fn a_request_for_other_operations_is_refused() {
    let (mut n, t) = leading();
    for ops in [vec![put_meta()], vec![]] {
        let out = n.step(at(t), request(ops));
        assert!(writes(&out).is_empty(), "{out:?}");
        assert!(answers(&out)[0].error.is_some(), "{out:?}");
    }
}

/// The term ends with a commit unanswered: the request is answered, saying so.
#[test]
fn a_request_is_answered_when_the_term_ends() {
    let (mut n, t) = leading();
    let out = n.step(at(t), request(vec![no_compact(1)]));
    let (cas, _, _) = writes(&out)[0].clone();
    let out = n.step(at(t + 1), Input::Store(cas, fence_written()));
    assert_eq!(writes(&out).len(), 1);
    let out = n.step(at(t + 2), Input::Shutdown);
    let answer = answers(&out);
    assert_eq!(answer.len(), 1, "{out:?}");
    let error = answer[0].error.clone().expect("ended");
    assert!(error.contains("may have landed"), "{error}");
}
