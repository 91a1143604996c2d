//! Tests of the leadership state machine: the happy paths step by step, and the fixtures the
//! other test modules share; `random` runs it in a randomized environment (late and lost
//! answers, errors, clock jumps, competing writers) checking that no mutation is ever emitted
//! without a live permit; `unheard_lease` gives up a lease etcd no longer answers for.

use super::*;
use crate::bucket::markers::{DeletionMark, MARKER_VERSION};
use crate::core::coord::{CoordRequest, ElectionKey, LeaseId};
use crate::core::fence::FenceVersion;
use crate::core::types::{ReadOp, StoreError, StoreRequest, WriteOp};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockMeta, ThanosMeta};

mod bucket;
mod random;
mod seat;
mod unheard_lease;

const TTL: i64 = 15_000;
const OP_TIMEOUT: i64 = 5_000;
const DELAY: i64 = 10_000;
const T0: i64 = 1_700_000_000_000;
const WINDOW: i64 = OP_TIMEOUT;

fn cfg(elected: bool) -> LeaderConfig {
    LeaderConfig {
        node: "me".into(),
        election: elected.then(|| "/compactd/b/election".into()),
        provider: Default::default(),
        nonce: String::new(),
        lease_ttl_ms: TTL,
        op_timeout_ms: OP_TIMEOUT,
        takeover_delay_ms: DELAY,
        commit_window_ms: WINDOW,
        safety: Safety::ALL,
        stream: None,
        streams: None,
    }
}

fn at(ms: i64) -> Now {
    Now {
        mono: Millis(ms),
        wall: Millis(T0 + ms),
    }
}

/// A fence version with ETag `e_tag`.
fn ver(e_tag: &str) -> FenceVersion {
    FenceVersion {
        e_tag: Some(e_tag.into()),
        version: None,
    }
}

/// A fence record of another holder, renewed at `T0 + renewed_ms`.
fn held_by(holder: &str, epoch: u64, seq: u64, renewed_ms: i64) -> FenceRecord {
    FenceRecord {
        epoch,
        holder: holder.into(),
        seq,
        renewed_unix_ms: T0 + renewed_ms,
        nonce: String::new(),
    }
}

fn coord_reqs(out: &[Output]) -> Vec<CoordRequest> {
    out.iter()
        .filter_map(|o| match o {
            Output::Coord(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn store_reqs(out: &[Output]) -> Vec<StoreRequest> {
    out.iter()
        .filter_map(|o| match o {
            Output::Store(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// The record and expected version of a fence CAS.
fn cas_of(cas: &StoreRequest) -> (&FenceRecord, &Option<FenceVersion>) {
    match cas.write_op() {
        Some(WriteOp::CasFence {
            record, expected, ..
        }) => (record, expected),
        _ => panic!("not a fence CAS: {cas:?}"),
    }
}

fn only<T: std::fmt::Debug>(mut v: Vec<T>) -> T {
    assert_eq!(v.len(), 1, "{v:?}");
    v.pop().unwrap()
}

fn mark(n: u128) -> (RequestId, WriteOp) {
    let mark = DeletionMark {
        id: BlockId::from_parts(1, n),
        version: MARKER_VERSION,
        details: String::new(),
        deletion_time: 0,
    };
    (RequestId(n as u64), WriteOp::MarkDeletion(mark))
}

/// Starts an elected leader and answers its lease grant (`lease`) and its campaign (create
/// revision `rev`); returns its first Observe request.
fn campaign(l: &mut Leader, lease: i64, rev: i64) -> CoordRequest {
    let mut out = vec![];
    l.start(at(0), &mut out);
    let grant = only(coord_reqs(&out));
    out.clear();
    let granted = CoordResult::Granted {
        lease: LeaseId(lease),
        ttl_secs: 15,
    };
    l.on_coord(at(1), grant.id, granted, &mut out);
    let campaign = only(coord_reqs(&out));
    out.clear();
    let campaigned = CoordResult::Campaigned {
        create_revision: rev,
    };
    l.on_coord(at(2), campaign.id, campaigned, &mut out);
    only(coord_reqs(&out))
}

/// Drives an elected leader to `Leading` at epoch 7 with a fresh fence; returns the time.
fn elect(l: &mut Leader) -> i64 {
    let mut out = vec![];
    l.start(at(0), &mut out);
    let grant = only(coord_reqs(&out));
    assert!(matches!(grant.op, CoordOp::Grant { ttl_secs: 15 }));
    out.clear();
    let granted = CoordResult::Granted {
        lease: LeaseId(0xab),
        ttl_secs: 15,
    };
    l.on_coord(at(10), grant.id, granted, &mut out);
    let campaign = only(coord_reqs(&out));
    assert_eq!(
        campaign.op,
        CoordOp::Campaign {
            key: "/compactd/b/election/ab".into(),
            value: "me".into(),
            lease: LeaseId(0xab)
        }
    );
    out.clear();
    l.on_coord(
        at(20),
        campaign.id,
        CoordResult::Campaigned { create_revision: 7 },
        &mut out,
    );
    let observe = only(coord_reqs(&out));
    out.clear();
    let keys = vec![ElectionKey {
        key: "/compactd/b/election/ab".into(),
        create_revision: 7,
        value: "me".into(),
    }];
    l.on_coord(
        at(30),
        observe.id,
        CoordResult::Observed { keys, revision: 9 },
        &mut out,
    );
    assert!(out.contains(&Output::Event(Event::Elected { epoch: 7 })));
    let read = only(store_reqs(&out));
    assert_eq!(read.read_op(), Some(&ReadOp::ReadFence));
    out.clear();
    l.on_store(at(40), read.id(), StoreResult::Fence(None), &mut out);
    let cas = only(store_reqs(&out));
    let (record, expected) = cas_of(&cas);
    assert_eq!((record.epoch, record.seq, expected), (7, 1, &None));
    out.clear();
    let v1 = ver("1");
    l.on_store(at(50), cas.id(), StoreResult::FenceWritten(v1), &mut out);
    assert_eq!(l.leading(), None, "the takeover delay comes first");
    out.clear();
    // A renewal during the delay keeps the permit alive past it.
    l.drive(at(3_000), &mut out);
    let keepalive = only(coord_reqs(&out));
    assert_eq!(
        keepalive.op,
        CoordOp::KeepAlive {
            lease: LeaseId(0xab)
        }
    );
    out.clear();
    let kept = CoordResult::KeptAlive { ttl_secs: 15 };
    l.on_coord(at(3_010), keepalive.id, kept, &mut out);
    out.clear();
    l.drive(at(50 + DELAY), &mut out);
    assert_eq!(l.leading(), Some(Epoch(7)));
    // The fence is due for its heartbeat renewal (every TTL/3): answer it.
    let renew = only(store_reqs(&out));
    assert!(matches!(renew.write_op(), Some(WriteOp::CasFence { record, .. }) if record.seq == 2));
    let v = ver("1b");
    l.on_store(
        at(50 + DELAY),
        renew.id(),
        StoreResult::FenceWritten(v),
        &mut out,
    );
    50 + DELAY
}

#[test]
fn elected_leader_fences_waits_and_guards_each_commit_with_a_cas() {
    let mut l = Leader::new(cfg(true));
    let t = elect(&mut l);
    let permit = l.permit(at(t)).expect("a permit while leading");
    assert_eq!(
        permit.valid_until,
        Millis(3_000 + TTL * 95 / 100 - 500 - OP_TIMEOUT)
    );
    let mut out = vec![];
    let mut meta = BlockMeta::level1(BlockId::from_parts(1, 5), 0, 1);
    meta.thanos = Some(ThanosMeta::default());
    let put_meta = WriteOp::PutMeta {
        meta: Box::new(meta),
    };
    l.submit_commit(RequestId(1), put_meta);
    l.drive(at(t + 1), &mut out);
    let cas = only(store_reqs(&out));
    let (record, expected) = cas_of(&cas);
    assert_eq!((record.seq, expected.is_some()), (3, true));
    out.clear();
    let v2 = ver("2");
    l.on_store(
        at(t + 100),
        cas.id(),
        StoreResult::FenceWritten(v2),
        &mut out,
    );
    let commit = only(store_reqs(&out));
    assert_eq!(commit.id(), RequestId(1));
    let p = commit.permit().unwrap();
    assert_eq!(p.epoch, Epoch(7));
    let lease_permit = permit.valid_until.0;
    assert_eq!(
        p.valid_until,
        Millis((t + 1 + WINDOW).min(lease_permit)),
        "the earlier of the lease permit and the commit window"
    );
    let Some(WriteOp::PutMeta { meta }) = commit.write_op() else {
        panic!()
    };
    let ext = meta.thanos.as_ref().unwrap().extensions.as_ref().unwrap();
    assert_eq!(
        ext["compactd"],
        serde_json::json!({"epoch": 7, "holder": "me"})
    );
}

#[test]
fn leader_stops_writing_when_the_lease_deadline_passes_without_renewal() {
    let mut l = Leader::new(cfg(true));
    let t = elect(&mut l);
    let until = l.permit(at(t)).unwrap().valid_until;
    let mut out = vec![];
    let (id, op) = mark(1);
    l.submit_commit(id, op);
    l.drive(at(until.0), &mut out);
    assert_eq!(l.leading(), None);
    assert!(l.permit(at(until.0)).is_none());
    assert!(store_reqs(&out).is_empty(), "{out:?}");
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Event(Event::SteppedDown { epoch: 7, .. }))));
}

#[test]
fn a_higher_epoch_in_the_fence_makes_the_leader_resign() {
    let mut l = Leader::new(cfg(true));
    let t = elect(&mut l);
    let mut out = vec![];
    let (id, op) = mark(1);
    l.submit_commit(id, op);
    l.drive(at(t + 1), &mut out);
    let cas = only(store_reqs(&out));
    out.clear();
    l.on_store(at(t + 2), cas.id(), StoreResult::FenceConflict, &mut out);
    let read = only(store_reqs(&out));
    assert_eq!(read.read_op(), Some(&ReadOp::ReadFence));
    out.clear();
    let theirs = held_by("other", 9, 1, 0);
    let v = ver("x");
    l.on_store(
        at(t + 3),
        read.id(),
        StoreResult::Fence(Some((theirs, v))),
        &mut out,
    );
    assert_eq!(l.leading(), None);
    let resign = only(coord_reqs(&out));
    assert_eq!(
        resign.op,
        CoordOp::Resign {
            key: Some(("/compactd/b/election/ab".into(), 7)),
            lease: LeaseId(0xab)
        }
    );
    assert!(
        store_reqs(&out).is_empty(),
        "the queued commit is dropped: {out:?}"
    );
}

#[test]
fn follower_watches_its_predecessor_and_takes_over_when_it_goes() {
    let mut l = Leader::new(cfg(true));
    let observe = campaign(&mut l, 2, 12);
    let mut out = vec![];
    let leader = ElectionKey {
        key: "/compactd/b/election/1".into(),
        create_revision: 5,
        value: "old".into(),
    };
    let mine = ElectionKey {
        key: "/compactd/b/election/2".into(),
        create_revision: 12,
        value: "me".into(),
    };
    let keys = vec![leader.clone(), mine.clone()];
    l.on_coord(
        at(3),
        observe.id,
        CoordResult::Observed { keys, revision: 12 },
        &mut out,
    );
    assert_eq!(l.known_leader().unwrap().node, "old");
    let wait = only(coord_reqs(&out));
    assert!(
        matches!(&wait.op, CoordOp::WaitDelete { key, after_revision: 12, .. } if *key == leader.key)
    );
    out.clear();
    l.on_coord(at(5_000), wait.id, CoordResult::Deleted, &mut out);
    let observe = coord_reqs(&out)
        .into_iter()
        .find(|r| matches!(r.op, CoordOp::Observe { .. }))
        .unwrap();
    out.clear();
    let keys = vec![mine];
    l.on_coord(
        at(5_001),
        observe.id,
        CoordResult::Observed { keys, revision: 13 },
        &mut out,
    );
    assert!(out.contains(&Output::Event(Event::Elected { epoch: 12 })));
    assert_eq!(l.known_leader().unwrap().node, "me");
}

#[test]
fn single_instance_refuses_a_fence_another_holder_renewed_recently() {
    let mut l = Leader::new(cfg(false));
    let mut out = vec![];
    l.start(at(0), &mut out);
    let read = only(store_reqs(&out));
    out.clear();
    let theirs = held_by("other", 0, 4, -3_000);
    let v = ver("x");
    l.on_store(
        at(1),
        read.id(),
        StoreResult::Fence(Some((theirs, v))),
        &mut out,
    );
    assert_eq!(out.last(), Some(&Output::Exit(EXIT_FENCED)));
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::SteppedDown { reason, .. }) if reason.contains("\"other\""))));
}

#[test]
fn single_instance_takes_over_a_stale_fence_and_releases_it_on_exit() {
    let mut l = Leader::new(cfg(false));
    let mut out = vec![];
    l.start(at(0), &mut out);
    let read = only(store_reqs(&out));
    out.clear();
    let theirs = held_by("other", 0, 4, -TTL - 1);
    let v = ver("x");
    l.on_store(
        at(1),
        read.id(),
        StoreResult::Fence(Some((theirs, v))),
        &mut out,
    );
    let cas = only(store_reqs(&out));
    let Some(WriteOp::CasFence { record, .. }) = cas.write_op() else {
        panic!()
    };
    assert_eq!((record.holder.as_str(), record.seq), ("me", 5));
    out.clear();
    let v = ver("y");
    l.on_store(at(2), cas.id(), StoreResult::FenceWritten(v), &mut out);
    assert_eq!(
        l.leading(),
        Some(Epoch(0)),
        "no takeover delay for a single instance"
    );
    assert_eq!(l.permit(at(1_000_000)).unwrap().valid_until, Millis::MAX);
    out.clear();
    l.finish(at(3), 0, &mut out);
    let release = only(store_reqs(&out));
    let Some(WriteOp::CasFence { record, .. }) = release.write_op() else {
        panic!()
    };
    assert_eq!(record.renewed_unix_ms, 0);
    out.clear();
    let v = ver("z");
    l.on_store(at(4), release.id(), StoreResult::FenceWritten(v), &mut out);
    assert_eq!(out, vec![Output::Exit(0)]);
}

#[test]
fn validate_rejects_an_op_timeout_too_long_for_the_lease_and_a_short_takeover_delay() {
    let mut c = cfg(true);
    assert_eq!(c.validate(), Ok(()));
    c.op_timeout_ms = 10_000;
    assert!(c.validate().unwrap_err().contains("--objstore.op-timeout"));
    c.op_timeout_ms = OP_TIMEOUT;
    c.takeover_delay_ms = 9_999;
    assert!(c
        .validate()
        .unwrap_err()
        .contains("--leader.takeover-delay"));
}

#[test]
fn a_late_fence_answer_after_shutdown_does_not_cancel_the_resignation() {
    let mut l = Leader::new(cfg(true));
    let observe = campaign(&mut l, 1, 3);
    let mut out = vec![];
    let keys = vec![ElectionKey {
        key: "/compactd/b/election/1".into(),
        create_revision: 3,
        value: "me".into(),
    }];
    l.on_coord(
        at(3),
        observe.id,
        CoordResult::Observed { keys, revision: 3 },
        &mut out,
    );
    let read = only(store_reqs(&out));
    out.clear();
    l.finish(at(4), 0, &mut out);
    let resign = only(coord_reqs(&out));
    assert!(matches!(resign.op, CoordOp::Resign { .. }));
    out.clear();
    let older = held_by("other", 5, 9, 0);
    let v = ver("x");
    l.on_store(
        at(5),
        read.id(),
        StoreResult::Fence(Some((older, v))),
        &mut out,
    );
    assert!(
        out.is_empty(),
        "the answer belongs to an abandoned request: {out:?}"
    );
    l.on_coord(at(6), resign.id, CoordResult::Resigned, &mut out);
    assert_eq!(out, vec![Output::Exit(0)]);
}

#[test]
fn a_failed_renewal_waits_for_its_retry_instead_of_waking_at_once() {
    // Found by the simulation: with the renewal due and a retry pending, the next wake-up
    // was the (past) renewal time, so the driver spun until the retry time.
    let mut l = Leader::new(cfg(false));
    let mut out = vec![];
    l.start(at(0), &mut out);
    let read = only(store_reqs(&out));
    out.clear();
    l.on_store(at(1), read.id(), StoreResult::Fence(None), &mut out);
    let cas = only(store_reqs(&out));
    out.clear();
    l.on_store(
        at(2),
        cas.id(),
        StoreResult::FenceWritten(ver("a")),
        &mut out,
    );
    assert_eq!(l.leading(), Some(Epoch(0)));
    out.clear();
    let due = 2 + TTL / 3;
    l.drive(at(due), &mut out);
    let renewal = only(store_reqs(&out));
    assert!(matches!(renewal.write_op(), Some(WriteOp::CasFence { .. })));
    out.clear();
    let failed = StoreResult::Failed(StoreError::other("503"));
    l.on_store(at(due + 10), renewal.id(), failed, &mut out);
    let wake = l.next_wake().expect("a retry is scheduled");
    assert!(wake > at(due + 10).mono, "wakes at {wake:?}, in the past");
    out.clear();
    l.drive(at(wake.0), &mut out);
    assert!(
        only(store_reqs(&out)).read_op() == Some(&ReadOp::ReadFence),
        "the retry reads the fence again"
    );
}

/// Steps `l` every 100 ms from `from` to `to`, answering each keepalive with `keepalive`
/// (and nothing else); returns every output and the times keepalives were sent.
fn run_keepalives(
    l: &mut Leader,
    from: i64,
    to: i64,
    keepalive: impl Fn() -> CoordResult,
) -> (Vec<Output>, Vec<i64>) {
    let (mut all, mut sent) = (vec![], vec![]);
    let mut t = from;
    while t <= to {
        let mut out = vec![];
        l.drive(at(t), &mut out);
        for r in coord_reqs(&out) {
            if matches!(r.op, CoordOp::KeepAlive { .. }) {
                sent.push(t);
                l.on_coord(at(t + 50), r.id, keepalive(), &mut out);
            }
        }
        all.extend(out);
        t += 100;
    }
    (all, sent)
}

#[test]
fn failover_is_timed_from_the_departure_of_the_leader_replaced() {
    let mut l = Leader::new(cfg(true));
    let observe = campaign(&mut l, 2, 12);
    let key = |lease: &str, rev: i64, node: &str| ElectionKey {
        key: format!("/compactd/b/election/{lease}"),
        create_revision: rev,
        value: node.into(),
    };
    let mine = key("2", 12, "me");
    let ok = || CoordResult::KeptAlive { ttl_secs: 15 };
    // Leader a; it goes at 10 s and b takes over; b goes at 40 s and we are next.
    let mut out = vec![];
    let keys = vec![key("a", 5, "a"), mine.clone()];
    l.on_coord(at(3), observe.id, observed(keys, 12), &mut out);
    let wait = only(coord_reqs(&out));
    let (_, _) = run_keepalives(&mut l, 100, 10_000, ok);
    let mut out = vec![];
    l.on_coord(at(10_000), wait.id, CoordResult::Deleted, &mut out);
    let observe = only(coord_reqs(&out));
    out.clear();
    let keys = vec![key("b", 8, "b"), mine.clone()];
    l.on_coord(at(10_010), observe.id, observed(keys, 13), &mut out);
    assert_eq!(l.known_leader().unwrap().node, "b");
    let wait = only(coord_reqs(&out));
    let (_, _) = run_keepalives(&mut l, 10_100, 40_000, ok);
    let mut out = vec![];
    l.on_coord(at(40_000), wait.id, CoordResult::Deleted, &mut out);
    let observe = only(coord_reqs(&out));
    out.clear();
    l.on_coord(at(40_010), observe.id, observed(vec![mine], 14), &mut out);
    let read = only(store_reqs(&out));
    out.clear();
    l.on_store(at(40_020), read.id(), StoreResult::Fence(None), &mut out);
    let cas = only(store_reqs(&out));
    out.clear();
    l.on_store(
        at(40_030),
        cas.id(),
        StoreResult::FenceWritten(ver("1")),
        &mut out,
    );
    let (out, _) = run_keepalives(&mut l, 40_100, 40_100 + DELAY, ok);
    assert_eq!(l.leading(), Some(Epoch(12)));
    let failover = out.iter().find_map(|o| match o {
        Output::Event(Event::Leading { failover_ms, .. }) => Some(*failover_ms),
        _ => None,
    });
    assert_eq!(
        failover,
        Some(Some(50_100 - 40_010)),
        "from b's departure (seen at 40.01 s), not a's"
    );
}

/// An Observe answer.
fn observed(keys: Vec<ElectionKey>, revision: i64) -> CoordResult {
    CoordResult::Observed { keys, revision }
}
