//! The leader against a randomized environment (a model etcd and store, late, lost and failed
//! answers, pauses past the TTL, rival campaigners and fence writers), checking every
//! mutation's permit and every commit's fence CAS.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::core::coord::{CoordError, CoordErrorKind};
use crate::core::types::{ReadOp, StoreError, StoreRequest, WriteOp};
use crate::rng::Rng;

/// A failed coordinator request.
fn coord_failed(kind: CoordErrorKind, message: &str) -> CoordResult {
    CoordResult::Failed(CoordError::new(kind, message))
}

/// A randomized environment: an etcd with one lease per grant (expiring on the shared
/// clock), predecessors that come and go, a fence that other writers may bump, answers that
/// arrive late, out of order or never, failures, and clock jumps (pauses).
struct Env {
    rng: Rng,
    now: i64,
    /// Requests in flight: coordinator ones with their send time.
    coord: Vec<(CoordRequest, i64)>,
    store: Vec<(StoreRequest, i64)>,
    /// Lease id -> server-side expiry.
    leases: BTreeMap<i64, i64>,
    next_lease: i64,
    /// Election keys: key -> (create revision, lease, value).
    keys: BTreeMap<String, (i64, i64, String)>,
    revision: i64,
    fence: Option<(FenceRecord, u64)>,
    /// The send time of the last CAS of ours that succeeded, and its epoch.
    last_cas: Option<(i64, u64)>,
    checked: u64,
}

impl Env {
    fn new(seed: u64) -> Env {
        Env {
            rng: Rng::new(seed),
            now: 0,
            coord: vec![],
            store: vec![],
            leases: BTreeMap::new(),
            next_lease: 100,
            keys: BTreeMap::new(),
            revision: 1,
            fence: None,
            last_cas: None,
            checked: 0,
        }
    }

    fn expire_leases(&mut self) {
        let now = self.now;
        let dead: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, e)| **e <= now)
            .map(|(l, _)| *l)
            .collect();
        for l in dead {
            self.leases.remove(&l);
            self.keys.retain(|_, (_, lease, _)| *lease != l);
            self.revision += 1;
        }
    }

    /// Checks every mutation the leader emits and queues every request.
    fn absorb(&mut self, out: Vec<Output>, elected: bool) {
        for o in out {
            match o {
                Output::Coord(r) => self.coord.push((r, self.now)),
                Output::Store(r) => {
                    if r.is_mutation() {
                        self.check_mutation(&r, elected);
                    }
                    self.store.push((r, self.now));
                }
                _ => {}
            }
        }
    }

    fn check_mutation(&mut self, r: &StoreRequest, elected: bool) {
        self.checked += 1;
        let p = r.permit().expect("every mutation carries a permit");
        assert!(
            Millis(self.now) < p.valid_until,
            "expired permit at {}: {r:?}",
            self.now
        );
        if elected {
            // The lease must outlive the whole request on the server's clock.
            let alive = self.keys.values().any(|(rev, lease, _)| {
                *rev as u64 == p.epoch.0
                    && self
                        .leases
                        .get(lease)
                        .is_some_and(|e| self.now + OP_TIMEOUT < *e)
            });
            assert!(
                alive,
                "mutation at {} under epoch {} without a live lease: {r:?}",
                self.now, p.epoch.0
            );
        }
        if r.is_commit() {
            let (sent, epoch) = self.last_cas.expect("a commit without a fence CAS");
            assert_eq!(
                epoch, p.epoch.0,
                "commit under another epoch than its fence CAS"
            );
            assert!(
                p.valid_until.0 <= sent + WINDOW,
                "commit window not applied"
            );
        }
    }

    fn answer_coord(&mut self, r: &CoordRequest) -> CoordResult {
        if self.rng.chance(0.1) {
            return coord_failed(CoordErrorKind::Other, "injected");
        }
        match &r.op {
            CoordOp::Grant { ttl_secs } => {
                self.next_lease += 1;
                self.leases
                    .insert(self.next_lease, self.now + ttl_secs * 1000);
                CoordResult::Granted {
                    lease: LeaseId(self.next_lease),
                    ttl_secs: *ttl_secs,
                }
            }
            CoordOp::KeepAlive { lease } => match self.leases.get_mut(&lease.0) {
                Some(e) => {
                    *e = self.now + TTL;
                    CoordResult::KeptAlive {
                        ttl_secs: TTL / 1000,
                    }
                }
                None => CoordResult::KeptAlive { ttl_secs: 0 },
            },
            CoordOp::Campaign { key, value, lease } => {
                if !self.leases.contains_key(&lease.0) {
                    return coord_failed(CoordErrorKind::LeaseNotFound, "lease not found");
                }
                if let Some((rev, _, _)) = self.keys.get(key) {
                    return CoordResult::Campaigned {
                        create_revision: *rev,
                    };
                }
                self.revision += 1;
                self.keys
                    .insert(key.clone(), (self.revision, lease.0, value.clone()));
                CoordResult::Campaigned {
                    create_revision: self.revision,
                }
            }
            CoordOp::Observe { .. } => {
                let mut keys: Vec<ElectionKey> = self
                    .keys
                    .iter()
                    .map(|(k, (rev, _, v))| ElectionKey {
                        key: k.clone(),
                        create_revision: *rev,
                        value: v.clone(),
                    })
                    .collect();
                keys.sort_by_key(|k| k.create_revision);
                CoordResult::Observed {
                    keys,
                    revision: self.revision,
                }
            }
            CoordOp::WaitDelete { key, .. } => {
                if self.keys.contains_key(key) {
                    CoordResult::StillThere
                } else {
                    CoordResult::Deleted
                }
            }
            CoordOp::Resign { key, lease } => self.resign(key.as_ref(), *lease),
            op @ CoordOp::Withdraw { .. } => self.withdraw(op),
        }
    }

    /// A resignation: deletes our key, then revokes the lease with its keys.
    fn resign(&mut self, key: Option<&(String, i64)>, lease: LeaseId) -> CoordResult {
        if let Some((k, _)) = key {
            self.keys.remove(k);
        }
        self.leases.remove(&lease.0);
        self.keys.retain(|_, (_, l, _)| *l != lease.0);
        CoordResult::Resigned
    }

    /// A withdrawal: deletes the key if it has the create revision.
    fn withdraw(&mut self, op: &CoordOp) -> CoordResult {
        let CoordOp::Withdraw {
            key,
            create_revision,
        } = op
        else {
            unreachable!("{op:?}")
        };
        let ours = self.keys.get(key).map(|(rev, _, _)| rev) == Some(create_revision);
        if ours {
            self.keys.remove(key);
        }
        CoordResult::Resigned
    }

    fn answer_store(&mut self, r: &StoreRequest, sent: i64) -> StoreResult {
        if self.rng.chance(0.1) {
            return StoreResult::Failed(StoreError::other("injected 503"));
        }
        let version = |v: u64| FenceVersion {
            e_tag: Some(v.to_string()),
            version: None,
        };
        match r {
            StoreRequest::Read {
                op: ReadOp::ReadFence,
                ..
            } => StoreResult::Fence(self.fence.clone().map(|(f, v)| (f, version(v)))),
            StoreRequest::Write {
                op: WriteOp::CasFence {
                    record, expected, ..
                },
                ..
            } => {
                let current = self.fence.as_ref().map(|(_, v)| version(*v));
                if current.as_ref() != expected.as_ref() {
                    return StoreResult::FenceConflict;
                }
                let next = self.fence.as_ref().map_or(1, |(_, v)| v + 1);
                self.fence = Some((record.clone(), next));
                self.last_cas = Some((sent, record.epoch));
                StoreResult::FenceWritten(version(next))
            }
            _ => StoreResult::Done,
        }
    }

    /// Another writer bumps the fence (a stale or a newer leader).
    fn rival_writes_fence(&mut self) {
        let epoch = self.rng.below(40);
        let seq = self.fence.as_ref().map_or(1, |(f, _)| f.seq + 1);
        let next = self.fence.as_ref().map_or(1, |(_, v)| v + 1);
        let record = FenceRecord {
            epoch,
            holder: "rival".into(),
            seq,
            renewed_unix_ms: T0 + self.now,
            nonce: String::new(),
        };
        // Our CAS that landed before stays valid: its answer may still be on the way, and the
        // commit it guards may follow within the commit window (the takeover delay covers it).
        self.fence = Some((record, next));
    }

    /// A rival campaigner appears before or after us.
    fn rival_campaigns(&mut self) {
        self.next_lease += 1;
        self.leases.insert(self.next_lease, self.now + TTL);
        self.revision += 1;
        self.keys.insert(
            format!("/compactd/b/election/r{}", self.next_lease),
            (self.revision, self.next_lease, "rival".into()),
        );
    }
}

fn random_world(seed: u64, elected: bool) -> u64 {
    let mut env = Env::new(seed);
    let mut l = Leader::new(cfg(elected));
    let mut out = vec![];
    l.start(at(0), &mut out);
    env.absorb(out, elected);
    let mut next_commit = 1u128;
    for _ in 0..3_000 {
        if l.exited() {
            break;
        }
        // Time moves: mostly a little, sometimes a pause longer than the lease.
        env.now += match env.rng.below(100) {
            0..=59 => env.rng.below(300) as i64,
            60..=97 => env.rng.below(3_000) as i64,
            _ => env.rng.below(3 * TTL as u64) as i64,
        };
        env.expire_leases();
        let now = at(env.now);
        let mut out = vec![];
        match env.rng.below(20) {
            0..=7 if !env.coord.is_empty() => {
                let i = env.rng.below(env.coord.len() as u64) as usize;
                let (r, _) = env.coord.remove(i);
                if env.rng.chance(0.05) {
                    continue; // lost
                }
                let result = env.answer_coord(&r);
                l.on_coord(now, r.id, result, &mut out);
            }
            8..=14 if !env.store.is_empty() => {
                let i = env.rng.below(env.store.len() as u64) as usize;
                let (r, sent) = env.store.remove(i);
                if !Leader::owns(r.id()) {
                    continue; // a released commit: the test only checks it was allowed
                }
                let result = env.answer_store(&r, sent);
                l.on_store(now, r.id(), result, &mut out);
            }
            15 => {
                let (id, op) = mark(next_commit);
                l.submit_commit(id, op);
                next_commit += 1;
                l.drive(now, &mut out);
            }
            16 if env.rng.chance(0.2) => env.rival_writes_fence(),
            17 if elected && env.rng.chance(0.2) => env.rival_campaigns(),
            18 if elected && env.rng.chance(0.1) => {
                // A rival's lease expires or it resigns.
                let rival = env
                    .keys
                    .iter()
                    .find(|(_, (_, _, v))| v == "rival")
                    .map(|(k, _)| k.clone());
                if let Some(k) = rival {
                    env.keys.remove(&k);
                    env.revision += 1;
                }
            }
            _ => l.drive(now, &mut out),
        }
        env.absorb(out, elected);
    }
    env.checked
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn elected_leader_never_emits_a_mutation_without_a_live_permit(seed in any::<u64>()) {
        random_world(seed, true);
    }

    #[test]
    fn single_instance_never_commits_without_a_fence_cas(seed in any::<u64>()) {
        random_world(seed, false);
    }
}

#[test]
fn the_random_worlds_do_reach_leadership_and_write() {
    let checked: u64 = (0..50).map(|s| random_world(s, true)).sum();
    eprintln!("checked {checked}");
    assert!(
        checked > 100,
        "only {checked} mutations checked: the harness never leads"
    );
}
