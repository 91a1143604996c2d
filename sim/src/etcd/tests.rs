use super::*;

const PREFIX: &str = "e/election/";

fn key_of(lease: LeaseId) -> String {
    format!("{PREFIX}{:x}", lease.0)
}

fn now(model: &mut EtcdModel, now_ms: i64, op: CoordOp) -> CoordResult {
    match model.execute(now_ms, &op) {
        Answer::Now(result) => result,
        Answer::Pending(id) => panic!("{op:?} is pending as {id:?}"),
    }
}

fn grant(model: &mut EtcdModel, now_ms: i64, ttl_secs: i64) -> LeaseId {
    match now(model, now_ms, CoordOp::Grant { ttl_secs }) {
        CoordResult::Granted { lease, .. } => lease,
        other => panic!("grant: {other:?}"),
    }
}

fn campaign(model: &mut EtcdModel, now_ms: i64, lease: LeaseId) -> CoordResult {
    let op = CoordOp::Campaign {
        key: key_of(lease),
        value: "node".into(),
        lease,
    };
    now(model, now_ms, op)
}

fn wait_delete(key: &str, after_revision: i64, max_wait_ms: i64) -> CoordOp {
    CoordOp::WaitDelete {
        key: key.into(),
        after_revision,
        max_wait_ms,
    }
}

fn pending(model: &mut EtcdModel, now_ms: i64, op: CoordOp) -> WatchId {
    match model.execute(now_ms, &op) {
        Answer::Pending(id) => id,
        Answer::Now(result) => panic!("{op:?} answered {result:?} at once"),
    }
}

/// A random script of every operation, time steps, compactions and restarts; returns what
/// the model answered, with the times of watch answers.
fn transcript(seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut model = EtcdModel::new(seed);
    let mut t = 0;
    let mut leases = vec![LeaseId(7)];
    let mut out = Vec::new();
    for _ in 0..2_000 {
        let lease = leases[rng.below(leases.len() as u64) as usize];
        let key = key_of(lease);
        let op = match rng.below(8) {
            0 => CoordOp::Grant {
                ttl_secs: rng.below(6) as i64,
            },
            1 => CoordOp::KeepAlive { lease },
            2 | 3 => CoordOp::Campaign {
                key,
                value: format!("v{}", rng.below(3)),
                lease: leases[rng.below(leases.len() as u64) as usize],
            },
            4 => CoordOp::Observe {
                prefix: PREFIX.into(),
            },
            5 => wait_delete(
                &key,
                model.revision() - rng.below(4) as i64,
                rng.below(3_000) as i64,
            ),
            6 => CoordOp::Resign {
                key: Some((key, model.revision() - rng.below(4) as i64)),
                lease,
            },
            _ => {
                t += rng.below(1_500) as i64;
                if rng.chance(0.1) {
                    let _ = model.compact(model.revision() - rng.below(3) as i64);
                }
                if rng.chance(0.02) {
                    model.restart(t);
                }
                for (id, result) in model.poll_watches(t) {
                    out.push(format!("{t}: {id:?} {result:?}"));
                }
                continue;
            }
        };
        let answer = model.execute(t, &op);
        if let Answer::Now(CoordResult::Granted { lease, .. }) = &answer {
            leases.push(*lease);
        }
        out.push(format!("{t}: {op:?} -> {answer:?}"));
    }
    out
}

#[test]
fn same_seed_same_answers() {
    for seed in [1, 2, 0xdead_beef] {
        let first = transcript(seed);
        assert_eq!(first, transcript(seed), "seed {seed}");
        // The script reaches every kind of answer.
        let text = first.join("\n");
        for needle in [
            "Granted",
            "KeptAlive { ttl_secs: 0 }",
            "Campaigned",
            "Observed",
            "Deleted",
            "StillThere",
            "Resigned",
            "Failed",
            "Pending",
        ] {
            assert!(text.contains(needle), "seed {seed}: no {needle}");
        }
    }
}

#[test]
fn lease_ids_count_up_from_the_seed() {
    let ids = |seed| {
        let mut model = EtcdModel::new(seed);
        [grant(&mut model, 0, 5), grant(&mut model, 0, 5)]
    };
    let [a, b] = ids(1);
    assert!(a.0 > 0);
    assert_eq!(b.0, a.0 + 1);
    assert_eq!(ids(1), [a, b]);
    assert_ne!(ids(2)[0], a);
}

#[test]
fn grants_are_raised_to_the_minimum_ttl_and_capped() {
    let mut model = EtcdModel::new(1);
    for (asked, granted) in [(1, 2), (0, 2), (-5, 2), (3, 3)] {
        match now(&mut model, 0, CoordOp::Grant { ttl_secs: asked }) {
            CoordResult::Granted { ttl_secs, .. } => assert_eq!(ttl_secs, granted, "{asked}"),
            other => panic!("{other:?}"),
        }
    }
    let too_large = now(
        &mut model,
        0,
        CoordOp::Grant {
            ttl_secs: LEASE_TTL_MAX_SECS + 1,
        },
    );
    let CoordResult::Failed(error) = too_large else {
        panic!("{too_large:?}")
    };
    assert_eq!(error.kind, CoordErrorKind::Other);
    assert!(error.message.starts_with("lease-grant: etcd "), "{error}");
}

#[test]
fn revisions_count_writing_txns() {
    let mut model = EtcdModel::new(1);
    assert_eq!(model.revision(), 1, "a fresh etcd");
    let a = grant(&mut model, 0, 10);
    let b = grant(&mut model, 0, 10);
    assert_eq!(model.revision(), 1, "grants write no key");
    assert_eq!(
        campaign(&mut model, 0, a),
        CoordResult::Campaigned { create_revision: 2 }
    );
    assert_eq!(
        campaign(&mut model, 0, a),
        CoordResult::Campaigned { create_revision: 2 },
        "the get branch"
    );
    // A second key on lease a: its expiry takes both keys in one revision.
    let second = CoordOp::Campaign {
        key: format!("{}-2", key_of(a)),
        value: "node".into(),
        lease: a,
    };
    assert_eq!(
        now(&mut model, 0, second),
        CoordResult::Campaigned { create_revision: 3 }
    );
    let kv = model.get(&key_of(a)).expect("a's key").clone();
    assert_eq!((kv.mod_revision, kv.version, kv.lease), (2, 1, a.0));
    let unknown = now(
        &mut model,
        0,
        CoordOp::Campaign {
            key: "e/election/x".into(),
            value: "x".into(),
            lease: LeaseId(42),
        },
    );
    assert!(
        matches!(&unknown, CoordResult::Failed(e) if e.kind == CoordErrorKind::LeaseNotFound),
        "{unknown:?}"
    );
    assert_eq!(model.revision(), 3, "a failed txn writes nothing");
    model.advance(10_000);
    assert!(model.get(&key_of(a)).is_none());
    assert_eq!(model.revision(), 4, "one expiry, one revision");
    // b expired at the same moment, without keys: no revision.
    assert_eq!(
        now(&mut model, 10_000, CoordOp::KeepAlive { lease: b }),
        CoordResult::KeptAlive { ttl_secs: 0 }
    );
    assert_eq!(model.revision(), 4);
}

#[test]
fn watches_answer_deletes_deadlines_and_compaction() {
    let mut model = EtcdModel::new(1);
    let a = grant(&mut model, 0, 10);
    let b = grant(&mut model, 0, 30);
    campaign(&mut model, 0, a); // revision 2
    let key = key_of(a);
    // A watch that starts two revisions ahead ignores the delete at 3.
    let ahead = pending(&mut model, 0, wait_delete(&key, 3, 5_000));
    let waiting = pending(&mut model, 0, wait_delete(&key, 2, 60_000));
    assert_eq!(model.next_event_at(), Some(5_000));
    let resign = CoordOp::Resign {
        key: Some((key.clone(), 2)),
        lease: a,
    };
    assert_eq!(now(&mut model, 100, resign), CoordResult::Resigned);
    assert_eq!(model.revision(), 3);
    assert_eq!(model.next_event_at(), Some(100), "an answer waits");
    assert_eq!(
        model.poll_watches(100),
        vec![(waiting, CoordResult::Deleted)]
    );
    assert_eq!(model.next_event_at(), Some(5_000));
    assert_eq!(
        model.poll_watches(7_000),
        vec![(ahead, CoordResult::StillThere)]
    );
    assert_eq!(model.next_event_at(), Some(30_000), "b's expiry");
    // The delete at 3 is in the history for a watch from 3, not for one from 4.
    let from_3 = model.execute(7_000, &wait_delete(&key, 2, 1_000));
    assert_eq!(from_3, Answer::Now(CoordResult::Deleted));
    pending(&mut model, 7_000, wait_delete(&key, 3, 1_000));

    // Compaction: a start below it answers Deleted; the delete at the compaction revision
    // itself is gone from the history.
    campaign(&mut model, 7_000, b); // revision 4
    assert_eq!(model.compact(3), Ok(()));
    assert!(model.compact(3).is_err(), "already compacted");
    assert!(model.compact(5).is_err(), "a future revision");
    let below = model.execute(7_000, &wait_delete(&key, 1, 1_000));
    assert_eq!(below, Answer::Now(CoordResult::Deleted));
    pending(&mut model, 7_000, wait_delete(&key, 2, 1_000));
}

#[test]
fn withdraw_deletes_our_key_only_and_keeps_the_lease() {
    let mut model = EtcdModel::new(1);
    let a = grant(&mut model, 0, 10);
    campaign(&mut model, 0, a); // revision 2
    let stream = format!("e/streams/000000000000002a/{:x}", a.0);
    let op = CoordOp::Campaign {
        key: stream.clone(),
        value: "node".into(),
        lease: a,
    };
    assert_eq!(
        now(&mut model, 0, op),
        CoordResult::Campaigned { create_revision: 3 }
    );
    let waiting = pending(&mut model, 0, wait_delete(&stream, 3, 60_000));
    let withdraw = |create_revision| CoordOp::Withdraw {
        key: stream.clone(),
        create_revision,
    };
    assert_eq!(now(&mut model, 0, withdraw(2)), CoordResult::Resigned);
    assert!(model.get(&stream).is_some(), "another create revision");
    assert_eq!(model.revision(), 3, "nothing written");
    assert_eq!(now(&mut model, 0, withdraw(3)), CoordResult::Resigned);
    assert!(model.get(&stream).is_none());
    assert_eq!(model.revision(), 4);
    assert_eq!(model.poll_watches(0), vec![(waiting, CoordResult::Deleted)]);
    assert_eq!(
        now(&mut model, 0, withdraw(3)),
        CoordResult::Resigned,
        "gone"
    );
    assert_eq!(model.revision(), 4);
    assert!(
        model.get(&key_of(a)).is_some(),
        "the lease's other key stays"
    );
    assert_eq!(
        now(&mut model, 0, CoordOp::KeepAlive { lease: a }),
        CoordResult::KeptAlive { ttl_secs: 10 }
    );
    let empty = CoordOp::Withdraw {
        key: String::new(),
        create_revision: 0,
    };
    let refused = now(&mut model, 0, empty);
    assert!(
        matches!(&refused, CoordResult::Failed(e) if e.message.starts_with("withdraw: ")),
        "{refused:?}"
    );
}

#[test]
fn a_watch_times_out_before_a_later_expiry_and_after_an_earlier_one() {
    let mut model = EtcdModel::new(1);
    let a = grant(&mut model, 0, 5);
    campaign(&mut model, 0, a);
    let key = key_of(a);
    let short = pending(&mut model, 0, wait_delete(&key, 1, 4_000));
    let long = pending(&mut model, 0, wait_delete(&key, 1, 5_000));
    // One jump past both: the short watch ends before the expiry, the long one at it (the
    // expiry comes first at the same moment).
    assert_eq!(
        model.poll_watches(60_000),
        vec![
            (short, CoordResult::StillThere),
            (long, CoordResult::Deleted)
        ]
    );
    assert_eq!(model.next_event_at(), None);
}

#[test]
fn restart_keeps_data_refreshes_leases_and_fails_watches() {
    let mut model = EtcdModel::new(1);
    let a = grant(&mut model, 0, 3);
    let b = grant(&mut model, 0, 60);
    campaign(&mut model, 0, a);
    campaign(&mut model, 0, b);
    let key = key_of(a);
    let watch = pending(&mut model, 1_000, wait_delete(&key, 3, 60_000));
    model.compact(2).expect("compact");
    // etcd goes down at 2 s and comes back at 10 s, long after a's expiry (3 s).
    model.advance(2_000);
    model.restart(10_000);
    let failed = CoordError::new(
        CoordErrorKind::Unavailable,
        format!("wait-delete: etcd {ENDPOINT}: {}", WATCH_LOST.text),
    );
    assert_eq!(
        model.poll_watches(10_000),
        vec![(watch, CoordResult::Failed(failed))]
    );
    assert_eq!(model.revision(), 3);
    assert!(model.get(&key).is_some(), "a's lease was refreshed");
    assert_eq!(
        model.next_event_at(),
        Some(10_000 + 3_000 + PROMOTE_EXTEND_MS)
    );
    assert_eq!(
        model.execute(10_000, &wait_delete(&key, 0, 1_000)),
        Answer::Now(CoordResult::Deleted),
        "the compaction stays"
    );
    model.advance(13_999);
    assert!(model.get(&key).is_some());
    model.advance(14_000);
    assert!(model.get(&key).is_none());
    assert_eq!(
        now(&mut model, 14_000, CoordOp::KeepAlive { lease: b }),
        CoordResult::KeptAlive { ttl_secs: 60 }
    );
}

#[test]
#[should_panic(expected = "time went back")]
fn time_never_goes_back() {
    let mut model = EtcdModel::new(1);
    model.advance(10);
    model.advance(9);
}

#[test]
fn created_keys_are_remembered_after_they_go() {
    let mut model = EtcdModel::new(3);
    let lease = grant(&mut model, 0, 1);
    let CoordResult::Campaigned { create_revision } = campaign(&mut model, 0, lease) else {
        panic!("campaign");
    };
    assert_eq!(
        model.created_key(create_revision),
        Some(key_of(lease).as_str())
    );
    // The lease expires: the key goes, its create revision still names it.
    model.advance(60_000);
    assert!(model.get(&key_of(lease)).is_none());
    assert_eq!(
        model.created_key(create_revision),
        Some(key_of(lease).as_str())
    );
    assert_eq!(model.created_key(create_revision + 1), None);
}
