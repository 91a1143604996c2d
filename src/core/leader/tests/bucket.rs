//! The bucket provider (`--election=bucket`): watching the fence, the observe wait, the
//! takeover CAS on the version watched, renewals moving the deadline, lost answers settled by
//! reading back, release on shutdown.

use super::*;
use crate::core::fence::FENCE_PATH;
use crate::core::leader::bucket_lease::observe_wait_ms;

fn bucket_cfg() -> LeaderConfig {
    LeaderConfig {
        election: Some(FENCE_PATH.into()),
        provider: Provider::Bucket,
        nonce: "n1".into(),
        ..cfg(true)
    }
}

/// The one fence read among `out`.
fn read_of(out: &[Output]) -> StoreRequest {
    let read = only(store_reqs(out));
    assert_eq!(read.read_op(), Some(&ReadOp::ReadFence), "{read:?}");
    read
}

/// Starts a candidate and answers its first read with `found` at `t`.
fn watching(found: Option<(FenceRecord, FenceVersion)>, t: i64) -> (Leader, Vec<Output>) {
    let mut l = Leader::new(bucket_cfg());
    let mut out = vec![];
    l.start(at(0), &mut out);
    assert!(coord_reqs(&out).is_empty(), "no coordinator: {out:?}");
    let read = read_of(&out);
    out.clear();
    l.on_store(at(t), read.id(), StoreResult::Fence(found), &mut out);
    (l, out)
}

/// Drives `l` to `t` and answers the read it sends with `found`.
fn read_again(l: &mut Leader, t: i64, found: Option<(FenceRecord, FenceVersion)>) -> Vec<Output> {
    let mut out = vec![];
    l.drive(at(t), &mut out);
    let read = read_of(&out);
    out.clear();
    l.on_store(at(t + 5), read.id(), StoreResult::Fence(found), &mut out);
    out
}

#[test]
fn a_candidate_takes_over_only_after_one_version_stood_for_the_observe_wait() {
    let held = Some((held_by("r1", 6, 40, 0), ver("a")));
    let (mut l, out) = watching(held.clone(), 10);
    assert!(store_reqs(&out).is_empty(), "no write while it waits");
    assert_eq!(
        l.next_wake(),
        Some(Millis(10 + TTL / 3)),
        "reads every TTL/3"
    );
    let wait_ends = 10 + observe_wait_ms(TTL);
    let mut t = 10 + TTL / 3;
    while t < wait_ends {
        let out = read_again(&mut l, t, held.clone());
        assert!(store_reqs(&out).is_empty(), "no takeover at {t}: {out:?}");
        let next = l.next_wake().unwrap().0;
        assert!(
            next <= wait_ends.max(t + 5),
            "the wait's end is not overslept"
        );
        t = next;
    }
    let out = read_again(&mut l, t, held);
    assert!(out.contains(&Output::Event(Event::Elected { epoch: 7 })));
    let cas = only(store_reqs(&out));
    let (record, expected) = cas_of(&cas);
    assert_eq!(expected, &Some(ver("a")), "If-Match on the version watched");
    assert_eq!(
        (
            record.epoch,
            record.holder.as_str(),
            record.seq,
            record.nonce.as_str()
        ),
        (7, "me", 41, "n1")
    );
    assert!(cas.permit().is_some_and(|p| p.epoch == Epoch(7)));
    let mut out = vec![];
    let written = StoreResult::FenceWritten(ver("b"));
    l.on_store(at(t + 20), cas.id(), written, &mut out);
    assert_eq!(l.leading(), None, "the takeover delay comes first");
    assert_eq!(l.known_leader().map(|k| k.node.as_str()), Some("me"));
    out.clear();
    // Renewals (a fence CAS every TTL/3) carry the lease through the delay.
    let mut v = 2;
    let mut t = t + 20;
    while l.leading().is_none() {
        t = l.next_wake().unwrap().0;
        l.drive(at(t), &mut out);
        for cas in store_reqs(&out) {
            let (record, _) = cas_of(&cas);
            assert_eq!(record.nonce, "n1");
            let mut answer = vec![];
            let version = ver(&format!("v{v}"));
            v += 1;
            l.on_store(
                at(t + 10),
                cas.id(),
                StoreResult::FenceWritten(version),
                &mut answer,
            );
        }
        out.clear();
    }
    assert_eq!(l.leading(), Some(Epoch(7)));
    let permit = l.permit(at(t + 10)).expect("a live permit");
    assert!(permit.valid_until.0 > t + 10);
}

#[test]
fn a_renewal_restarts_the_wait_so_a_live_holder_keeps_the_fence() {
    let (mut l, _) = watching(Some((held_by("r1", 6, 1, 0), ver("1"))), 10);
    let mut t = 10;
    for seq in 2..12 {
        t = l.next_wake().unwrap().0;
        let renewed = Some((held_by("r1", 6, seq, t), ver(&seq.to_string())));
        let out = read_again(&mut l, t, renewed);
        assert!(
            store_reqs(&out).is_empty(),
            "no takeover of a renewing holder"
        );
    }
    assert!(t > 2 * observe_wait_ms(TTL));
    assert_eq!(l.known_leader().map(|k| k.node.as_str()), Some("r1"));
}

#[test]
fn an_absent_or_released_fence_is_taken_at_once() {
    let (_, out) = watching(None, 10);
    let cas = only(store_reqs(&out));
    let (record, expected) = cas_of(&cas);
    assert_eq!(
        (record.epoch, record.seq, expected),
        (1, 1, &None),
        "create"
    );
    let released = held_by("r1", 6, 9, -T0);
    assert_eq!(released.renewed_unix_ms, 0);
    let (_, out) = watching(Some((released, ver("r"))), 10);
    let cas = only(store_reqs(&out));
    let (record, expected) = cas_of(&cas);
    assert_eq!((record.epoch, expected), (7, &Some(ver("r"))));
}

/// A candidate whose takeover of an absent fence was answered 412, and its read-back.
fn conflicted_takeover() -> (Leader, StoreRequest) {
    let (mut l, out) = watching(None, 10);
    let cas = only(store_reqs(&out));
    let mut out = vec![];
    l.on_store(at(20), cas.id(), StoreResult::FenceConflict, &mut out);
    (l, read_of(&out))
}

#[test]
fn a_lost_takeover_goes_back_to_watching_and_writes_nothing() {
    let (mut l, read) = conflicted_takeover();
    let mut out = vec![];
    // Another candidate created it first.
    let theirs = Some((held_by("r2", 1, 1, 15), ver("x")));
    l.on_store(
        at(30),
        read.id(),
        StoreResult::Fence(theirs.clone()),
        &mut out,
    );
    assert!(
        store_reqs(&out).is_empty(),
        "that read starts the wait: {out:?}"
    );
    assert_eq!(l.permit(at(30)), None);
    // Watching again: the next read finds r2's fence, which it waits out.
    let next = l.next_wake().unwrap().0;
    let out = read_again(&mut l, next, theirs);
    assert!(store_reqs(&out).is_empty(), "{out:?}");
}

#[test]
fn a_takeover_whose_answer_was_lost_is_found_by_its_nonce() {
    let (mut l, out) = watching(None, 10);
    let cas = only(store_reqs(&out));
    let (record, _) = cas_of(&cas);
    let landed = record.clone();
    let mut out = vec![];
    let lost = StoreResult::Failed(StoreError::timeout("lost"));
    l.on_store(at(20), cas.id(), lost, &mut out);
    out.clear();
    let next = l.next_wake().unwrap().0;
    l.drive(at(next), &mut out);
    let read = read_of(&out);
    out.clear();
    l.on_store(
        at(600),
        read.id(),
        StoreResult::Fence(Some((landed.clone(), ver("m")))),
        &mut out,
    );
    assert_eq!(
        l.known_leader().map(|k| k.node.as_str()),
        Some("me"),
        "it landed"
    );
    // The same record by another process of the same name (another nonce) is not ours.
    let (mut l, read) = conflicted_takeover();
    let mut out = vec![];
    let twin = FenceRecord {
        nonce: "n2".into(),
        ..landed
    };
    l.on_store(
        at(30),
        read.id(),
        StoreResult::Fence(Some((twin, ver("t")))),
        &mut out,
    );
    assert!(
        store_reqs(&out).is_empty(),
        "it waits the twin out: {out:?}"
    );
    let next = l.next_wake().unwrap().0;
    assert_eq!(next, 30 + TTL / 3, "watching again");
}

#[test]
fn an_earlier_takeover_landing_late_is_not_taken_for_the_one_just_sent() {
    // The takeover CAS goes unanswered until its permit lapses; the node watches again,
    // finds the fence still absent and takes over once more: the same epoch 1 and seq 1.
    let (mut l, out) = watching(None, 10);
    let first = only(store_reqs(&out));
    let first_record = cas_of(&first).0.clone();
    let lapse = first.permit().expect("a permit").valid_until.0;
    let mut out = vec![];
    l.drive(at(lapse), &mut out);
    let read = read_of(&out);
    out.clear();
    l.on_store(at(lapse), read.id(), StoreResult::Fence(None), &mut out);
    let second = only(store_reqs(&out));
    let (record, _) = cas_of(&second);
    assert_eq!((record.epoch, record.seq), (1, 1));
    out.clear();
    // The first lands now (its answer is for a request nobody waits for); the second, a
    // create, conflicts with it.
    let t = lapse + 250;
    let written = StoreResult::FenceWritten(ver("1"));
    l.on_store(at(t), first.id(), written, &mut out);
    l.on_store(at(t), second.id(), StoreResult::FenceConflict, &mut out);
    let read = read_of(&out);
    out.clear();
    let found = Some((first_record, ver("1")));
    l.on_store(at(t), read.id(), StoreResult::Fence(found), &mut out);
    // The lease is not renewed from the second's send time (only the first's, 12.75 s ago,
    // landed): the node writes the fence anew, over the first's version, before it may lead.
    let renewed = out
        .iter()
        .any(|o| matches!(o, Output::Event(Event::LeaseRenewed { .. })));
    assert!(!renewed, "{out:?}");
    assert_eq!(l.known_leader().map(|k| k.node.as_str()), None);
    let cas = only(store_reqs(&out));
    let (record, expected) = cas_of(&cas);
    assert_eq!((record.epoch, record.seq), (1, 2));
    assert_eq!(expected, &Some(ver("1")));
}

/// A bucket leader past its takeover delay at epoch 1; returns the time.
fn bucket_leader(l: &mut Leader) -> i64 {
    let mut out = vec![];
    l.start(at(0), &mut out);
    let read = read_of(&out);
    out.clear();
    l.on_store(at(10), read.id(), StoreResult::Fence(None), &mut out);
    let mut t = 10;
    let mut v = 0;
    while l.leading().is_none() {
        for cas in store_reqs(&out) {
            v += 1;
            let mut answer = vec![];
            l.on_store(
                at(t + 5),
                cas.id(),
                StoreResult::FenceWritten(ver(&v.to_string())),
                &mut answer,
            );
        }
        out.clear();
        t = l.next_wake().unwrap().0;
        l.drive(at(t), &mut out);
    }
    t
}

#[test]
fn a_leader_without_a_landed_renewal_stops_at_the_deadline_and_watches() {
    let mut l = Leader::new(bucket_cfg());
    let t = bucket_leader(&mut l);
    let mut out = vec![];
    // The renewals go unanswered (a paused process, a cut link): the permit lapses.
    let mut now = t;
    while l.leading().is_some() {
        now = l.next_wake().unwrap().0;
        l.drive(at(now), &mut out);
        for w in store_reqs(&out) {
            assert!(w.permit().is_none_or(|p| now < p.valid_until.0), "{w:?}");
        }
        out.clear();
    }
    assert_eq!(l.permit(at(now)), None);
    assert!(now - t <= TTL, "stopped within a TTL of its last renewal");
}

#[test]
fn shutdown_releases_the_fence_so_a_successor_need_not_wait() {
    let mut l = Leader::new(bucket_cfg());
    let t = bucket_leader(&mut l);
    let mut out = vec![];
    l.finish(at(t + 1), 0, &mut out);
    let cas = only(store_reqs(&out));
    let (record, _) = cas_of(&cas);
    assert_eq!(record.renewed_unix_ms, 0, "released");
    assert!(!out.contains(&Output::Exit(0)));
    out.clear();
    l.on_store(
        at(t + 20),
        cas.id(),
        StoreResult::FenceWritten(ver("z")),
        &mut out,
    );
    assert!(out.contains(&Output::Exit(0)));
}

#[test]
fn shutdown_past_the_deadline_exits_without_writing_the_fence() {
    let mut l = Leader::new(bucket_cfg());
    let t = bucket_leader(&mut l);
    let mut out = vec![];
    // The renewals go unanswered until the permit lapses; the node watches again and reads
    // the fence, which still holds its own record.
    let mut now = t;
    while l.leading().is_some() {
        out.clear();
        now = l.next_wake().unwrap().0;
        l.drive(at(now), &mut out);
    }
    let read = store_reqs(&out)
        .into_iter()
        .find(|r| r.read_op() == Some(&ReadOp::ReadFence))
        .expect("watching: a read of the fence");
    out.clear();
    let ours = l.fence.current.clone().expect("our last record");
    l.on_store(
        at(now + 5),
        read.id(),
        StoreResult::Fence(Some(ours)),
        &mut out,
    );
    out.clear();
    l.finish(at(now + 10), 0, &mut out);
    assert!(
        store_reqs(&out).is_empty(),
        "no release without a permit: {out:?}"
    );
    assert!(out.contains(&Output::Exit(0)));
}

#[test]
fn without_the_observe_wait_a_candidate_takes_a_held_fence_at_once() {
    let mut cfg = bucket_cfg();
    cfg.safety.observe_wait = false;
    let mut l = Leader::new(cfg);
    let mut out = vec![];
    l.start(at(0), &mut out);
    let read = read_of(&out);
    out.clear();
    let held = Some((held_by("r1", 6, 40, 0), ver("a")));
    l.on_store(at(10), read.id(), StoreResult::Fence(held), &mut out);
    assert_eq!(cas_of(&only(store_reqs(&out))).0.epoch, 7);
}

#[test]
fn bucket_timing_needs_room_for_a_renewal_within_the_permit() {
    assert_eq!(bucket_cfg().validate(), Ok(()));
    let tight = LeaderConfig {
        lease_ttl_ms: 3_000,
        op_timeout_ms: 1_000,
        takeover_delay_ms: 2_000,
        commit_window_ms: 1_000,
        ..bucket_cfg()
    };
    assert_eq!(tight.validate(), Ok(()), "the HA tests' timings");
    let slow = LeaderConfig {
        op_timeout_ms: 9_000,
        takeover_delay_ms: 18_000,
        ..bucket_cfg()
    };
    let err = slow.validate().unwrap_err();
    assert!(err.contains("--election=bucket"), "{err}");
}
