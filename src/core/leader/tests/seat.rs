//! A stream's seat: a leader that campaigns with the session's lease (no grant, no
//! keepalives of its own), loses everything with it, and hands its stream over by
//! withdrawing its key.

use super::*;
use crate::core::stream::StreamId;

const STREAM: StreamId = StreamId(0x5eed);

fn seat_cfg() -> LeaderConfig {
    LeaderConfig {
        election: Some(format!("/compactd/b/streams/{STREAM}")),
        stream: Some(STREAM),
        ..cfg(true)
    }
}

/// A session: the bucket's leader with lease 0xab granted at 1 ms.
fn session() -> Leader {
    let mut l = Leader::new(cfg(true));
    campaign(&mut l, 0xab, 3);
    l
}

/// Renews the session's lease at `t` (one keepalive round trip).
fn renew(session: &mut Leader, t: i64) {
    let mut out = vec![];
    session.drive(at(t), &mut out);
    let keepalive = only(coord_reqs(&out));
    assert!(matches!(keepalive.op, CoordOp::KeepAlive { .. }));
    out.clear();
    let kept = CoordResult::KeptAlive { ttl_secs: 15 };
    session.on_coord(at(t), keepalive.id, kept, &mut out);
}

/// Fences the chosen seat and waits out the takeover delay, the session renewing its
/// lease meanwhile; returns the time it leads at.
fn lead(seat: &mut Leader, read: StoreRequest) -> i64 {
    let mut session = session();
    let mut out = vec![];
    seat.on_store(at(8), read.id(), StoreResult::Fence(None), &mut out);
    let cas = only(store_reqs(&out));
    assert_eq!(cas.permit().map(|p| p.epoch), Some(Epoch(11)));
    assert!(
        matches!(
            cas.write_op(),
            Some(WriteOp::CasFence {
                stream: Some(STREAM),
                ..
            })
        ),
        "the stream's own fence: {cas:?}"
    );
    out.clear();
    seat.on_store(
        at(9),
        cas.id(),
        StoreResult::FenceWritten(ver("1")),
        &mut out,
    );
    renew(&mut session, 6_000);
    seat.adopt_session(at(6_000), session.session_lease(), &mut out);
    let t = 9 + DELAY;
    seat.drive(at(t), &mut out);
    t
}

fn seat_key() -> String {
    format!("/compactd/b/streams/{STREAM}/ab")
}

/// A seat of the session's lease that campaigned (create revision `rev`) and observed
/// itself first; returns it with its first fence request.
fn chosen_seat(rev: i64) -> (Leader, StoreRequest) {
    let session = session();
    let mut seat = Leader::in_slot(seat_cfg(), crate::core::request_ids::Slot(2));
    let mut out = vec![];
    seat.adopt_session(at(5), session.session_lease(), &mut out);
    seat.start(at(5), &mut out);
    let campaign = only(coord_reqs(&out));
    out.clear();
    seat.on_coord(
        at(6),
        campaign.id,
        CoordResult::Campaigned {
            create_revision: rev,
        },
        &mut out,
    );
    let observe = only(coord_reqs(&out));
    out.clear();
    let keys = vec![ElectionKey {
        key: seat_key(),
        create_revision: rev,
        value: "me".into(),
    }];
    seat.on_coord(
        at(7),
        observe.id,
        CoordResult::Observed {
            keys,
            revision: rev,
        },
        &mut out,
    );
    let read = only(store_reqs(&out));
    assert_eq!(
        read.read_op(),
        Some(&ReadOp::ReadStreamFence { stream: STREAM })
    );
    (seat, read)
}

#[test]
fn a_seat_waits_for_the_session_then_campaigns_with_its_lease() {
    let mut seat = Leader::in_slot(seat_cfg(), crate::core::request_ids::Slot(2));
    let mut out = vec![];
    seat.adopt_session(at(0), None, &mut out);
    seat.start(at(0), &mut out);
    assert!(out.is_empty(), "no grant of its own: {out:?}");
    assert_eq!(seat.next_wake(), None, "idle until the session has a lease");
    seat.adopt_session(at(5), session().session_lease(), &mut out);
    seat.drive(at(5), &mut out);
    let campaign = only(coord_reqs(&out));
    assert_eq!(
        campaign.op,
        CoordOp::Campaign {
            key: seat_key(),
            value: "me".into(),
            lease: LeaseId(0xab),
        }
    );
    assert_eq!(
        crate::core::request_ids::Slot::of_coord(campaign.id),
        crate::core::request_ids::Slot(2),
        "its requests count in its slot"
    );
}

#[test]
fn a_seat_never_renews_the_lease_itself() {
    let (mut seat, _) = chosen_seat(11);
    let mut out = vec![];
    for t in (1_000..60_000).step_by(1_000) {
        seat.drive(at(t), &mut out);
    }
    assert!(
        !coord_reqs(&out)
            .iter()
            .any(|r| matches!(r.op, CoordOp::KeepAlive { .. } | CoordOp::Grant { .. })),
        "{out:?}"
    );
}

#[test]
fn a_seat_fences_and_leads_under_its_own_key_revision() {
    let (mut seat, read) = chosen_seat(11);
    lead(&mut seat, read);
    assert_eq!(seat.leading(), Some(Epoch(11)));
}

#[test]
fn losing_the_session_lease_ends_the_seat_and_a_new_one_campaigns_again() {
    let (mut seat, read) = chosen_seat(11);
    lead(&mut seat, read);
    assert!(seat.leading().is_some());
    let mut out = vec![];
    seat.adopt_session(at(10 + DELAY), None, &mut out);
    assert_eq!(seat.leading(), None);
    assert!(seat.permit(at(10 + DELAY)).is_none());
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Event(Event::SteppedDown { .. }))));
    out.clear();
    let mut session = Leader::new(cfg(true));
    campaign(&mut session, 0xcd, 20);
    seat.adopt_session(at(11 + DELAY), session.session_lease(), &mut out);
    seat.drive(at(11 + DELAY), &mut out);
    let campaign = only(coord_reqs(&out));
    assert!(
        matches!(&campaign.op, CoordOp::Campaign { key, lease, .. } if key.ends_with("/cd") && *lease == LeaseId(0xcd)),
        "{campaign:?}"
    );
}

#[test]
fn a_hand_over_withdraws_the_key_retrying_until_it_is_gone() {
    let (mut seat, _) = chosen_seat(11);
    let mut out = vec![];
    seat.finish(at(10), 0, &mut out);
    let withdraw = only(coord_reqs(&out));
    assert_eq!(
        withdraw.op,
        CoordOp::Withdraw {
            key: seat_key(),
            create_revision: 11
        }
    );
    out.clear();
    let failed = CoordResult::Failed(crate::core::coord::CoordError::new(
        crate::core::coord::CoordErrorKind::Timeout,
        "timeout",
    ));
    seat.on_coord(at(11), withdraw.id, failed, &mut out);
    assert!(!seat.exited());
    out.clear();
    seat.drive(at(2_000), &mut out);
    let again = only(coord_reqs(&out));
    assert!(matches!(again.op, CoordOp::Withdraw { .. }));
    out.clear();
    seat.on_coord(at(2_001), again.id, CoordResult::Resigned, &mut out);
    assert!(seat.exited());
    assert_eq!(out, vec![Output::Exit(0)]);
}

#[test]
fn a_higher_epoch_in_the_stream_fence_makes_the_seat_withdraw_and_queue_again() {
    let (mut seat, read) = chosen_seat(11);
    let mut out = vec![];
    let found = Some((held_by("other", 40, 3, 0), ver("9")));
    seat.on_store(at(8), read.id(), StoreResult::Fence(found), &mut out);
    let withdraw = only(coord_reqs(&out));
    assert!(matches!(
        withdraw.op,
        CoordOp::Withdraw {
            create_revision: 11,
            ..
        }
    ));
    out.clear();
    seat.on_coord(at(9), withdraw.id, CoordResult::Resigned, &mut out);
    let campaign = only(coord_reqs(&out));
    assert!(matches!(
        campaign.op,
        CoordOp::Campaign {
            lease: LeaseId(0xab),
            ..
        }
    ));
    assert!(!seat.exited());
}
