//! Tests of the leadership state machine: the happy paths step by step, then a randomized
//! environment (late and lost answers, errors, clock jumps, competing writers) checking
//! that no mutation is ever emitted without a live permit.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::bucket::markers::{DeletionMark, MARKER_VERSION};
use crate::rng::Rng;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockMeta, ThanosMeta};

const TTL: i64 = 15_000;
const OP_TIMEOUT: i64 = 5_000;
const DELAY: i64 = 10_000;
const T0: i64 = 1_700_000_000_000;
const WINDOW: i64 = OP_TIMEOUT;

fn cfg(elected: bool) -> LeaderConfig {
    LeaderConfig {
        node: "me".into(),
        election: elected.then(|| "/compactd/b/election".into()),
        lease_ttl_ms: TTL,
        op_timeout_ms: OP_TIMEOUT,
        takeover_delay_ms: DELAY,
        commit_window_ms: WINDOW,
        safety: Safety::ALL,
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

fn only<T: std::fmt::Debug>(mut v: Vec<T>) -> T {
    assert_eq!(v.len(), 1, "{v:?}");
    v.pop().unwrap()
}

fn mark(n: u128) -> StoreRequest {
    StoreRequest {
        id: RequestId(n as u64),
        op: StoreOp::MarkDeletion(DeletionMark {
            id: BlockId::from_parts(1, n),
            version: MARKER_VERSION,
            details: String::new(),
            deletion_time: 0,
        }),
        permit: None,
    }
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
    assert_eq!(read.op, StoreOp::ReadFence);
    out.clear();
    l.on_store(at(40), read.id, StoreResult::Fence(None), &mut out);
    let cas = only(store_reqs(&out));
    let StoreOp::CasFence { record, expected } = &cas.op else {
        panic!("{cas:?}")
    };
    assert_eq!((record.epoch, record.seq, expected), (7, 1, &None));
    out.clear();
    let v1 = ver("1");
    l.on_store(at(50), cas.id, StoreResult::FenceWritten(v1), &mut out);
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
    assert!(matches!(&renew.op, StoreOp::CasFence { record, .. } if record.seq == 2));
    let v = ver("1b");
    l.on_store(
        at(50 + DELAY),
        renew.id,
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
    l.submit_commit(StoreRequest {
        id: RequestId(1),
        op: StoreOp::PutMeta {
            meta: Box::new(meta),
        },
        permit: None,
    });
    l.drive(at(t + 1), &mut out);
    let cas = only(store_reqs(&out));
    let StoreOp::CasFence { record, expected } = &cas.op else {
        panic!("{cas:?}")
    };
    assert_eq!((record.seq, expected.is_some()), (3, true));
    out.clear();
    let v2 = ver("2");
    l.on_store(at(t + 100), cas.id, StoreResult::FenceWritten(v2), &mut out);
    let commit = only(store_reqs(&out));
    assert_eq!(commit.id, RequestId(1));
    let p = commit.permit.unwrap();
    assert_eq!(p.epoch, Epoch(7));
    let lease_permit = permit.valid_until.0;
    assert_eq!(
        p.valid_until,
        Millis((t + 1 + WINDOW).min(lease_permit)),
        "the earlier of the lease permit and the commit window"
    );
    let StoreOp::PutMeta { meta } = &commit.op else {
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
    l.submit_commit(mark(1));
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
    l.submit_commit(mark(1));
    l.drive(at(t + 1), &mut out);
    let cas = only(store_reqs(&out));
    out.clear();
    l.on_store(at(t + 2), cas.id, StoreResult::FenceConflict, &mut out);
    let read = only(store_reqs(&out));
    assert_eq!(read.op, StoreOp::ReadFence);
    out.clear();
    let theirs = held_by("other", 9, 1, 0);
    let v = ver("x");
    l.on_store(
        at(t + 3),
        read.id,
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
        read.id,
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
        read.id,
        StoreResult::Fence(Some((theirs, v))),
        &mut out,
    );
    let cas = only(store_reqs(&out));
    let StoreOp::CasFence { record, .. } = &cas.op else {
        panic!()
    };
    assert_eq!((record.holder.as_str(), record.seq), ("me", 5));
    out.clear();
    let v = ver("y");
    l.on_store(at(2), cas.id, StoreResult::FenceWritten(v), &mut out);
    assert_eq!(
        l.leading(),
        Some(Epoch(0)),
        "no takeover delay for a single instance"
    );
    assert_eq!(l.permit(at(1_000_000)).unwrap().valid_until, Millis::MAX);
    out.clear();
    l.finish(at(3), 0, &mut out);
    let release = only(store_reqs(&out));
    let StoreOp::CasFence { record, .. } = &release.op else {
        panic!()
    };
    assert_eq!(record.renewed_unix_ms, 0);
    out.clear();
    let v = ver("z");
    l.on_store(at(4), release.id, StoreResult::FenceWritten(v), &mut out);
    assert_eq!(out, vec![Output::Exit(0)]);
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
                    if r.op.is_mutation() {
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
        let p = r.permit.expect("every mutation carries a permit");
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
        if r.op.is_commit() {
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
            return CoordResult::Failed("injected".into());
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
                    return CoordResult::Failed("lease not found".into());
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
            CoordOp::Resign { key, lease } => {
                if let Some((k, _)) = key {
                    self.keys.remove(k);
                }
                self.leases.remove(&lease.0);
                self.keys.retain(|_, (_, l, _)| *l != lease.0);
                CoordResult::Resigned
            }
        }
    }

    fn answer_store(&mut self, r: &StoreRequest, sent: i64) -> StoreResult {
        if self.rng.chance(0.1) {
            return StoreResult::Failed("injected 503".into());
        }
        let version = |v: u64| FenceVersion {
            e_tag: Some(v.to_string()),
            version: None,
        };
        match &r.op {
            StoreOp::ReadFence => {
                StoreResult::Fence(self.fence.clone().map(|(f, v)| (f, version(v))))
            }
            StoreOp::CasFence { record, expected } => {
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
                if !Leader::owns(r.id) {
                    continue; // a released commit: the test only checks it was allowed
                }
                let result = env.answer_store(&r, sent);
                l.on_store(now, r.id, result, &mut out);
            }
            15 => {
                l.submit_commit(mark(next_commit));
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
        read.id,
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
    l.on_store(at(1), read.id, StoreResult::Fence(None), &mut out);
    let cas = only(store_reqs(&out));
    out.clear();
    l.on_store(at(2), cas.id, StoreResult::FenceWritten(ver("a")), &mut out);
    assert_eq!(l.leading(), Some(Epoch(0)));
    out.clear();
    let due = 2 + TTL / 3;
    l.drive(at(due), &mut out);
    let renewal = only(store_reqs(&out));
    assert!(matches!(renewal.op, StoreOp::CasFence { .. }));
    out.clear();
    let failed = StoreResult::Failed("503".into());
    l.on_store(at(due + 10), renewal.id, failed, &mut out);
    let wake = l.next_wake().expect("a retry is scheduled");
    assert!(wake > at(due + 10).mono, "wakes at {wake:?}, in the past");
    out.clear();
    l.drive(at(wake.0), &mut out);
    assert!(
        matches!(only(store_reqs(&out)).op, StoreOp::ReadFence),
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

/// Fails the keepalive in flight, if any, at `t` (its answer was lost).
fn lose_keepalive_in_flight(l: &mut Leader, t: i64) {
    if let Some((id, _)) = l.keepalive {
        let lost = CoordResult::Failed("timed out".into());
        l.on_coord(at(t), id, lost, &mut vec![]);
    }
}

#[test]
fn a_leader_that_hears_no_renewal_for_a_ttl_stops_renewing_and_revokes_before_campaigning() {
    let mut l = Leader::new(cfg(true));
    let t = elect(&mut l);
    // The last acknowledged keepalive was sent at 3 000 (in `elect`); from here on etcd
    // hears every keepalive, but its answers are lost (the driver's timeout fails them).
    let lost = || CoordResult::Failed("timed out".into());
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
    let lost = || CoordResult::Failed("timed out".into());
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
    l.on_store(at(40_020), read.id, StoreResult::Fence(None), &mut out);
    let cas = only(store_reqs(&out));
    out.clear();
    l.on_store(
        at(40_030),
        cas.id,
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
