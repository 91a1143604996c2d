//! A lease none of whose renewals etcd answers: the leader stops renewing it a TTL after the
//! last acknowledged one was sent, revokes it, and campaigns anew.

use super::*;
use crate::core::coord::{CoordError, CoordErrorKind};

/// Fails the keepalive in flight, if any, at `t` (its answer was lost).
fn lose_keepalive_in_flight(l: &mut Leader, t: i64) {
    if let Some((id, _)) = l.lease.keepalive {
        let lost = CoordResult::Failed(CoordError::new(CoordErrorKind::Timeout, "timed out"));
        l.on_coord(at(t), id, lost, &mut vec![]);
    }
}

#[test]
fn a_leader_that_hears_no_renewal_for_a_ttl_stops_renewing_and_revokes_before_campaigning() {
    let mut l = Leader::new(cfg(true));
    let t = elect(&mut l);
    // The last acknowledged keepalive was sent at 3 000 (in `elect`); from here on etcd
    // hears every keepalive, but its answers are lost (the driver's timeout fails them).
    let lost = || CoordResult::Failed(CoordError::new(CoordErrorKind::Timeout, "timed out"));
    lose_keepalive_in_flight(&mut l, t);
    let (out, sent) = run_keepalives(&mut l, t, 40_000, lost);
    let unheard_at = 3_000 + TTL;
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|s| *s < unheard_at),
        "no keepalive once the last acknowledged one was sent a TTL ago: {sent:?}"
    );
    let stepped_down = out
        .iter()
        .position(|o| matches!(o, Output::Event(Event::SteppedDown { .. })))
        .expect("stopped writing at the lease deadline");
    let abandoned = out
        .iter()
        .position(|o| matches!(o, Output::Event(Event::LeaseAbandoned { .. })))
        .expect("gave up the lease");
    assert!(
        stepped_down < abandoned,
        "the deadline comes first: {out:?}"
    );
    let unheard = out.iter().find_map(|o| match o {
        Output::Event(Event::LeaseAbandoned { unheard_ms }) => Some(*unheard_ms),
        _ => None,
    });
    assert!(
        unheard.is_some_and(|ms| (TTL..TTL + 100).contains(&ms)),
        "{unheard:?}"
    );
    // It revokes its lease and deletes its key before it campaigns again, retrying while
    // etcd does not answer.
    let after: Vec<CoordRequest> = coord_reqs(&out[abandoned..]);
    assert!(
        after
            .iter()
            .all(|r| matches!(r.op, CoordOp::Resign { .. } | CoordOp::Observe { .. })),
        "no keepalive, grant or campaign: {after:?}"
    );
    let resigns: Vec<CoordRequest> = after
        .into_iter()
        .filter(|r| matches!(r.op, CoordOp::Resign { .. }))
        .collect();
    let resign = resigns.first().expect("a revoke").clone();
    assert_eq!(
        resign.op,
        CoordOp::Resign {
            key: Some(("/compactd/b/election/ab".into(), 7)),
            lease: LeaseId(0xab)
        }
    );
    assert!(resigns.iter().all(|r| r.op == resign.op), "{resigns:?}");
    let mut out = vec![];
    l.on_coord(at(40_100), resign.id, lost(), &mut out);
    assert!(
        coord_reqs(&out).is_empty(),
        "a failed revoke waits its backoff"
    );
    l.drive(at(41_000), &mut out);
    let again = only(coord_reqs(&out));
    assert_eq!(again.op, resign.op);
    out.clear();
    l.on_coord(at(41_050), again.id, CoordResult::Resigned, &mut out);
    let grant = only(coord_reqs(&out));
    assert!(matches!(grant.op, CoordOp::Grant { .. }), "{grant:?}");
    assert!(l.permit(at(41_050)).is_none());
}

#[test]
fn a_revoke_that_never_gets_through_gives_way_to_a_new_campaign_once_the_lease_expired() {
    let mut l = Leader::new(cfg(true));
    let t = elect(&mut l);
    let lost = || CoordResult::Failed(CoordError::new(CoordErrorKind::Timeout, "timed out"));
    lose_keepalive_in_flight(&mut l, t);
    let (mut at_ms, mut last, mut revokes) = (t, 0, 0);
    let mut grant = None;
    while grant.is_none() {
        at_ms += 100;
        assert!(at_ms < 4 * TTL, "no new campaign");
        let mut out = vec![];
        l.drive(at(at_ms), &mut out);
        for r in coord_reqs(&out) {
            match r.op {
                CoordOp::KeepAlive { .. } => last = at_ms,
                CoordOp::Resign { .. } => revokes += 1,
                CoordOp::Grant { .. } => grant = Some(at_ms),
                CoordOp::Observe { .. } => {}
                _ => panic!("{r:?}"),
            }
            l.on_coord(at(at_ms + 50), r.id, lost(), &mut vec![]);
        }
    }
    assert!(revokes > 1, "the revoke is retried");
    let granted = grant.unwrap();
    assert!(
        granted >= last + 2 * TTL,
        "campaigns anew only once etcd has surely let the lease expire: {granted} vs {last}"
    );
}
