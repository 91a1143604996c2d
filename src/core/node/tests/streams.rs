//! A node that holds streams: the director reads the members and the bucket's streams, the
//! node seats itself on the streams assigned to it, each seat campaigns under
//! `<prefix>/streams/<stream>/` with the session's lease and leads under its own epoch.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::*;
use crate::core::coord::{CoordError, CoordErrorKind, CoordRequest};
use crate::core::leader::StreamsConfig;
use crate::core::stream::StreamId;
use crate::core::testing::synced;
use crate::core::types::{MetaState, SyncResult};
use crate::tsdb::meta::{BlockMeta, ThanosMeta};

/// A healthy etcd and bucket, answering every request at once. Another member, "other",
/// holds the bucket's election.
struct World {
    revision: i64,
    keys: BTreeMap<String, (i64, String)>,
    blocks: SyncResult,
    queue: VecDeque<Input>,
    /// The time of the last step.
    now: i64,
    /// etcd answers nothing but "unavailable".
    etcd_down: bool,
}

impl World {
    fn new(streams: usize) -> World {
        let mut keys = BTreeMap::new();
        keys.insert("/p/election/ff".to_string(), (1, "other".to_string()));
        let mut blocks = SyncResult::default();
        for i in 0..streams {
            let id = BlockId::from_parts(1_000, i as u128 + 1);
            let mut meta = BlockMeta::level1(id, 0, 7_200_000);
            meta.thanos = Some(ThanosMeta {
                labels: [("tenant".to_string(), format!("t{i}"))].into(),
                ..ThanosMeta::default()
            });
            let block = synced(MetaState::Ok(Box::new(meta)));
            blocks.blocks.insert(id, block);
        }
        World {
            revision: 1,
            keys,
            blocks,
            queue: VecDeque::from([Input::Start]),
            now: 0,
            etcd_down: false,
        }
    }

    /// A member `name` joins (its key in the bucket's election).
    fn join(&mut self, name: &str) {
        self.revision += 1;
        let key = format!("/p/election/{name}");
        self.keys.insert(key, (self.revision, name.into()));
    }

    fn coord(&mut self, r: &CoordRequest) -> CoordResult {
        if self.etcd_down {
            return CoordResult::Failed(CoordError::new(CoordErrorKind::Unavailable, "down"));
        }
        match &r.op {
            CoordOp::Grant { .. } => CoordResult::Granted {
                lease: LeaseId(0xab),
                ttl_secs: 15,
            },
            CoordOp::KeepAlive { .. } => CoordResult::KeptAlive { ttl_secs: 15 },
            CoordOp::Campaign { key, value, .. } => {
                if !self.keys.contains_key(key) {
                    self.revision += 1;
                    self.keys
                        .insert(key.clone(), (self.revision, value.clone()));
                }
                CoordResult::Campaigned {
                    create_revision: self.keys[key].0,
                }
            }
            CoordOp::Observe { prefix } => {
                let mut keys: Vec<ElectionKey> = self
                    .keys
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix.as_str()))
                    .map(|(k, (rev, v))| ElectionKey {
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
            CoordOp::WaitDelete { .. } => unreachable!("not answered: see run"),
            CoordOp::Withdraw { key, .. } => {
                self.keys.remove(key);
                CoordResult::Resigned
            }
            CoordOp::Resign { .. } => CoordResult::Resigned,
        }
    }

    fn store(&self, r: &StoreRequest) -> StoreResult {
        match (r.read_op(), r.write_op()) {
            (Some(ReadOp::Sync), _) => StoreResult::Synced(self.blocks.clone()),
            (Some(_), _) => StoreResult::Fence(None),
            (_, Some(WriteOp::CasFence { .. })) => StoreResult::FenceWritten(FenceVersion {
                e_tag: Some("1".into()),
                version: None,
            }),
            _ => StoreResult::Done,
        }
    }

    /// Runs the node on until `until` ms, answering everything at once; returns every
    /// output.
    fn run(&mut self, n: &mut Node, until: i64) -> Vec<Output> {
        let mut all = Vec::new();
        let (mut t, mut timer) = (self.now, Some(self.now));
        while t <= until {
            assert!(all.len() < 100_000, "runaway: {:?}", &all[all.len() - 20..]);
            let input = match self.queue.pop_front() {
                Some(input) => input,
                None => {
                    t = timer.take().unwrap_or(until + 1).max(t);
                    Input::Tick
                }
            };
            for o in n.step(at(t), input) {
                match &o {
                    // A watch of the predecessor's key stays open: "other" never goes.
                    Output::Coord(r) if matches!(r.op, CoordOp::WaitDelete { .. }) => {}
                    Output::Coord(r) => {
                        let result = self.coord(r);
                        self.queue.push_back(Input::Coord(r.id, result))
                    }
                    Output::Store(r) => self.queue.push_back(Input::Store(r.id(), self.store(r))),
                    Output::Timer(at) => timer = Some(at.0),
                    _ => {}
                }
                all.push(o);
            }
            self.now = t;
        }
        all
    }
}

fn streams_node() -> Node {
    streams_node_delayed(5_000)
}

/// A streams node whose rebalance delay is `rebalance_delay_ms`.
fn streams_node_delayed(rebalance_delay_ms: i64) -> Node {
    let (cycle, mut leader) = settings();
    leader.election = Some("/p/election".into());
    leader.streams = Some(StreamsConfig {
        prefix: "/p".into(),
        observe_interval_ms: 1_000,
        discover_interval_ms: 10_000,
        rebalance_delay_ms,
    });
    Node::new(cycle, leader, 1)
}

/// The streams the node's assignment gives to "me".
fn mine(n: &Node) -> BTreeSet<StreamId> {
    let assignment = n.assignment();
    let mine = assignment.iter().filter(|(_, o)| o.as_str() == "me");
    mine.map(|(s, _)| *s).collect()
}

#[test]
fn a_node_holds_the_streams_assigned_to_it_each_under_its_own_epoch() {
    let mut n = streams_node();
    let mut world = World::new(4);
    let out = world.run(&mut n, 30_000);
    assert_eq!(n.assignment().len(), 4, "{out:?}");
    assert_eq!(mine(&n).len(), 2, "balanced: {:?}", n.assignment());
    let held = n.owned_streams();
    assert_eq!(held.keys().copied().collect::<BTreeSet<_>>(), mine(&n));
    for (stream, epoch) in &held {
        let key = format!("/p/streams/{stream}/ab");
        assert_eq!(
            world.keys.get(&key).map(|(rev, _)| *rev as u64),
            Some(*epoch)
        );
    }
    let epochs: BTreeSet<u64> = held.values().copied().collect();
    assert_eq!(epochs.len(), held.len(), "one epoch per stream");
    assert!(
        n.bucket.leader.leading().is_none(),
        "other leads the bucket"
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Event(Event::Stream { event, .. }) if matches!(**event, Event::Leading { .. })
    )));
}

#[test]
fn a_stream_assigned_elsewhere_is_handed_over_and_its_key_withdrawn() {
    let mut n = streams_node();
    let mut world = World::new(6);
    world.run(&mut n, 30_000);
    let before = mine(&n);
    assert_eq!(before.len(), 3);
    world.join("third");
    let out = world.run(&mut n, 31_500);
    assert_eq!(
        mine(&n),
        before,
        "a join waits for the rebalance delay: {out:?}"
    );
    world.run(&mut n, 60_000);
    let after = mine(&n);
    assert_eq!(after.len(), 2, "{:?}", n.assignment());
    let held: BTreeSet<StreamId> = n.owned_streams().keys().copied().collect();
    assert_eq!(held, after);
    for stream in before.difference(&after) {
        let key = format!("/p/streams/{stream}/ab");
        assert!(!world.keys.contains_key(&key), "{key} not withdrawn");
    }
}

#[test]
fn the_streams_of_a_member_that_left_move_at_once() {
    let mut n = streams_node();
    let mut world = World::new(4);
    world.run(&mut n, 30_000);
    assert_eq!(mine(&n).len(), 2);
    world.keys.remove("/p/election/ff");
    // Within two member reads, without the rebalance delay (5 s).
    world.run(&mut n, 32_500);
    assert_eq!(mine(&n).len(), 4, "{:?}", n.assignment());
    world.run(&mut n, 32_500 + 2_000 + 1_000);
    assert_eq!(n.owned_streams().len(), 4, "held after the takeover delay");
}

#[test]
fn a_rebalance_pending_when_the_session_is_lost_is_forgotten() {
    // The rebalance delay outlasts the lease: the session is lost while a join's
    // assignment waits. Kept, its deadline would pass while this node is no member and stay
    // past (nothing adopts without members): the node would ask for a tick at once, forever
    // (`run` fails on a runaway).
    let mut n = streams_node_delayed(60_000);
    let mut world = World::new(6);
    world.run(&mut n, 30_000);
    world.join("third");
    world.run(&mut n, 32_000);
    world.etcd_down = true;
    world.run(&mut n, 120_000);
    assert!(n.owned_streams().is_empty(), "no session, no streams");
    assert_eq!(mine(&n).len(), 3, "the assignment in force stays");
}
