//! The scenarios: which world to build (elected replicas or singletons, clocks) and which
//! faults to inject when. Each scenario draws its schedule from the seed; the world applies
//! it, heals every fault at the end of the fault phase, then waits for a leader and a
//! finished compaction.

use compactd::rng::Rng;

/// A peer a cluster can be cut from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// The etcd host.
    Etcd,
    /// The object store host.
    Store,
}

/// Which direction of a link breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// Both directions.
    Both,
    /// Only from the cluster to the peer.
    Out,
    /// Only from the peer to the cluster.
    In,
}

/// Whom a fault hits, decided when it is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The node leading then (a random node when none does).
    Leader,
    /// The node with this index (modulo the node count).
    Node(usize),
}

/// One fault; each heals after `ms` (or at the end of the fault phase).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// The process is killed; it starts again after `ms`.
    Crash {
        /// Whom.
        target: Target,
        /// Down time.
        ms: i64,
    },
    /// The process is stopped (SIGSTOP) for `ms`; its requests stay in flight. Aimed at the
    /// leader, it is armed at its time and strikes when the leader's driver holds mutations
    /// it has not sent yet.
    Pause {
        /// Whom.
        target: Target,
        /// Pause length.
        ms: i64,
    },
    /// The target's cluster is cut from `peer`.
    Partition {
        /// Whose cluster.
        target: Target,
        /// From what.
        peer: Peer,
        /// Which direction.
        way: Way,
        /// How long.
        ms: i64,
    },
    /// The link between the target's cluster and `peer` holds every message, then releases
    /// them all at once.
    Hold {
        /// Whose cluster.
        target: Target,
        /// Which peer.
        peer: Peer,
        /// How long.
        ms: i64,
    },
    /// Messages between the target's cluster and both peers take `latency_ms` each way.
    Delay {
        /// Whose cluster.
        target: Target,
        /// The one-way latency.
        latency_ms: i64,
        /// How long.
        ms: i64,
    },
    /// The target's wall clock jumps by `by_ms` (NTP step); its monotonic clock does not.
    WallJump {
        /// Whom.
        target: Target,
        /// The jump.
        by_ms: i64,
    },
    /// etcd goes down for `ms`, then restarts.
    EtcdRestart {
        /// Down time.
        ms: i64,
    },
    /// The store refuses (5xx) and loses replies (applied, then timeout) at these rates.
    StoreErrors {
        /// Refusal probability per object request.
        unavailable: f64,
        /// Lost-reply probability per object request.
        timeout: f64,
        /// How long.
        ms: i64,
    },
    /// An operator revokes the leader's etcd lease (`etcdctl lease revoke`) while the
    /// leader is cut from etcd for `ms`: a new leader is elected at once while
    /// the old one still holds a valid permit. Armed at its time, it strikes when the
    /// leader next sends a commit (which is then in flight).
    RevokeLease {
        /// How long the old leader stays cut off from etcd.
        ms: i64,
        /// How long its link to the store holds its messages (the commit in flight lands
        /// when it releases, within one op timeout of being sent).
        hold_ms: i64,
    },
    /// The first `nodes` nodes are overloaded: their compactions take `slow_ms` longer for
    /// `ms`, so that their passes with a compaction outlast the takeover delay and their
    /// hand-overs wait for them.
    SlowCompactions {
        /// How many nodes (the first ones).
        nodes: usize,
        /// How much longer a compaction takes.
        slow_ms: i64,
        /// How long.
        ms: i64,
    },
    /// An operator deletes a stream's holder key by hand (`etcdctl del
    /// <prefix>/streams/<stream>/<lease>`) during a rebalance: another replica is queued for
    /// the stream (its own key there, a higher create revision) while the holder still runs
    /// its pass. The queued replica becomes the lowest key and takes the stream while the old
    /// holder's session lease, and so its permit, stays valid: when the old holder's pass
    /// outlasts the takeover delay, only the stream's fence stops its next commit. Armed at
    /// its time, it strikes when a holder with a queued replica is compacting the stream, or
    /// (`at_commit`) sends a commit of it; the holder's link to the store then holds its
    /// messages for `hold_ms` (a commit in flight lands late: the takeover delay covers that
    /// one).
    DeleteStreamKey {
        /// Strike as the holder sends a commit rather than while it compacts.
        at_commit: bool,
        /// How long the old holder's store link holds its messages.
        hold_ms: i64,
    },
}

/// How the replicas run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Elected through etcd, 3–5 nodes in 2–3 clusters.
    Elected,
    /// Single instances without etcd (`count` of them, started by mistake when more than 1).
    Single {
        /// How many.
        count: usize,
    },
}

/// Who owns what in the bucket (issue 17, `docs/simulation.md`, "Stream worlds").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// One elected leader owns the whole bucket: single-writer over the whole bucket.
    Bucket,
    /// Every stream (a block's external labels without the replica labels) has its own
    /// owner; the bucket leader keeps the objects of no stream. The world seeds 4–30 streams,
    /// and the checker keys single-writer and commit order by unit (a stream, or the bucket).
    Stream,
}

/// A scenario's world and schedule.
#[derive(Clone, Debug)]
pub struct Plan {
    /// How the replicas run.
    pub mode: Mode,
    /// Clock rates per node index (1.0 unless skewed; within the 5% of `docs/safety.md`).
    pub skew: bool,
    /// The faults, by world time.
    pub faults: Vec<(i64, Fault)>,
    /// When the fault phase ends: every fault is healed then.
    pub heal_at_ms: i64,
    /// Sidecar uploads of stream worlds happen before this (the fault phase, unless a fault
    /// wants the streams busy earlier).
    pub uploads_until_ms: i64,
    /// Check the order of every mutation (false when a fault breaks the lease assumption:
    /// only commit order is then promised).
    pub strict: bool,
    /// Start times of the nodes (world ms).
    pub starts_ms: Vec<i64>,
    /// Keep the leader busy: more streams and more blocks arriving during the fault phase.
    pub busy: bool,
    /// Who owns what: the blocks the world seeds and how the checker keys its orders.
    pub ownership: Ownership,
}

/// The scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// No faults: one leader compacts everything.
    Calm,
    /// The leader is killed, repeatedly, and restarted later.
    LeaderCrash,
    /// Random nodes are killed and restarted, often mid-request.
    CrashAny,
    /// The leader's cluster is cut from etcd (both directions) for up to 6 TTLs.
    EtcdPartition,
    /// One-way cuts between a cluster and etcd or the store, each direction.
    OnewayPartition,
    /// The leader's cluster is cut from the object store.
    StorePartition,
    /// The leader's process is paused for up to 4 TTLs (a GC pause, SIGSTOP, a VM freeze).
    Pause,
    /// Clock rates up to 4% off, offsets, wall-clock jumps, with crashes and pauses.
    ClockSkew,
    /// etcd restarts (leases refreshed, watches broken), sometimes twice.
    EtcdRestart,
    /// The store refuses requests and loses replies of applied writes.
    StoreErrors,
    /// Links hold their messages for up to a minute, then deliver them at once.
    HoldRelease,
    /// Message delays of 0.1–2 s each way on a cluster's links.
    MessageDelay,
    /// An operator revokes the leader's lease while it is cut from etcd.
    LeaseRevoked,
    /// Two single instances started by mistake against one bucket.
    DoubleSingle,
    /// One single instance killed at random moments, with store errors.
    SingleCrash,
    /// A random mix of every elected-mode fault.
    Chaos,
    /// 4–30 streams under the faults of a scenario drawn from the elected ones, checked per
    /// unit (stream ownership).
    Streams,
}

impl Scenario {
    /// Every scenario, in listing order.
    pub const ALL: [Scenario; 17] = [
        Scenario::Calm,
        Scenario::LeaderCrash,
        Scenario::CrashAny,
        Scenario::EtcdPartition,
        Scenario::OnewayPartition,
        Scenario::StorePartition,
        Scenario::Pause,
        Scenario::ClockSkew,
        Scenario::EtcdRestart,
        Scenario::StoreErrors,
        Scenario::HoldRelease,
        Scenario::MessageDelay,
        Scenario::LeaseRevoked,
        Scenario::DoubleSingle,
        Scenario::SingleCrash,
        Scenario::Chaos,
        Scenario::Streams,
    ];

    /// The scenarios of elected replicas a stream world draws its faults from: every one but
    /// the single instances' (no etcd, no elected stream owners) and itself.
    pub const ELECTED: [Scenario; 14] = [
        Scenario::Calm,
        Scenario::LeaderCrash,
        Scenario::CrashAny,
        Scenario::EtcdPartition,
        Scenario::OnewayPartition,
        Scenario::StorePartition,
        Scenario::Pause,
        Scenario::ClockSkew,
        Scenario::EtcdRestart,
        Scenario::StoreErrors,
        Scenario::HoldRelease,
        Scenario::MessageDelay,
        Scenario::LeaseRevoked,
        Scenario::Chaos,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Calm => "calm",
            Scenario::LeaderCrash => "leader-crash",
            Scenario::CrashAny => "crash-any",
            Scenario::EtcdPartition => "etcd-partition",
            Scenario::OnewayPartition => "oneway-partition",
            Scenario::StorePartition => "store-partition",
            Scenario::Pause => "pause",
            Scenario::ClockSkew => "clock-skew",
            Scenario::EtcdRestart => "etcd-restart",
            Scenario::StoreErrors => "store-errors",
            Scenario::HoldRelease => "hold-release",
            Scenario::MessageDelay => "message-delay",
            Scenario::LeaseRevoked => "lease-revoked",
            Scenario::DoubleSingle => "double-single",
            Scenario::SingleCrash => "single-crash",
            Scenario::Chaos => "chaos",
            Scenario::Streams => "streams",
        }
    }

    /// One line on what it does.
    pub fn about(self) -> &'static str {
        match self {
            Scenario::Calm => "no faults: one leader compacts everything, the others wait",
            Scenario::LeaderCrash => "the leader is killed (kill -9) 1-3 times, restarted 5-60s later",
            Scenario::CrashAny => "random nodes are killed and restarted, often mid-request",
            Scenario::EtcdPartition => "the leader's cluster is cut from etcd (both ways) for 5-90s",
            Scenario::OnewayPartition => "one-way cuts (5-90s) cluster->etcd, etcd->cluster, cluster->store, store->cluster",
            Scenario::StorePartition => "the leader's cluster is cut from the object store for 5-90s",
            Scenario::Pause => "the leader's process is paused (SIGSTOP) for 1-4 lease TTLs",
            Scenario::ClockSkew => "clock rates up to 4% off, offsets, wall-clock jumps, with crashes and pauses",
            Scenario::EtcdRestart => "etcd restarts once or twice (down 1-30s): leases refreshed, watches broken",
            Scenario::StoreErrors => "the store refuses 5-20% of requests and loses 2-10% of replies of applied writes",
            Scenario::HoldRelease => "a cluster's links to etcd or the store hold messages up to 60s, then deliver them",
            Scenario::MessageDelay => "a cluster's messages take 0.1-2s each way for a while",
            Scenario::LeaseRevoked => "an operator revokes the leader's lease mid-commit while it is cut from etcd (commit order only)",
            Scenario::DoubleSingle => "two single instances (no etcd) started by mistake 0-20s apart",
            Scenario::SingleCrash => "one single instance killed at random moments, with store errors",
            Scenario::Chaos => "a random mix of every elected-mode fault",
            Scenario::Streams => "4-30 streams (replicas, label-less blocks) under an elected scenario's faults, checked per stream",
        }
    }

    /// One line on what it becomes when the bucket elects (`--election bucket`): the world
    /// hosts no etcd, so faults on etcd do nothing, and per-stream ownership (which lives in
    /// etcd) gives way to one leader owning the bucket.
    pub fn about_on_bucket(self) -> &'static str {
        match self {
            Scenario::Calm => "no faults: one leader renews the fence every TTL/3, the others read it",
            Scenario::LeaderCrash => "as with etcd; a restarted process writes the fence with a new nonce",
            Scenario::CrashAny => "as with etcd",
            Scenario::EtcdPartition => "no etcd: the cuts do nothing (a calm world on the same draws)",
            Scenario::OnewayPartition => "the cuts cluster->store and store->cluster as with etcd; those of etcd do nothing",
            Scenario::StorePartition => "the leader's cluster is cut from its coordinator, the store: another cluster takes the fence over",
            Scenario::Pause => "as with etcd: the paused leader wakes past its lease deadline with unsent mutations",
            Scenario::ClockSkew => "as with etcd: the observe wait and the deadline are measured on skewed monotonic clocks",
            Scenario::EtcdRestart => "no etcd: the restarts do nothing (a calm world on the same draws)",
            Scenario::StoreErrors => "as with etcd; a fence write whose reply was lost is recognised by its nonce when read back",
            Scenario::HoldRelease => "the store holds as with etcd; those of etcd do nothing",
            Scenario::MessageDelay => "as with etcd, on the store links",
            Scenario::LeaseRevoked => "an operator rewrites the fence as released just as the leader sends a commit, its store link held (commit order only)",
            Scenario::DoubleSingle => "no election: the same world as with etcd",
            Scenario::SingleCrash => "no election: the same world as with etcd",
            Scenario::Chaos => "as with etcd; the faults on etcd do nothing",
            Scenario::Streams => "4-30 streams owned by the one bucket leader (no per-stream ownership without etcd), checked over the bucket",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Result<Scenario, String> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| format!("unknown scenario {name:?} (compactd-sim scenarios lists them)"))
    }

    /// Draws this scenario's world and schedule for `nodes` elected nodes.
    pub fn plan(self, rng: &mut Rng, nodes: usize) -> Plan {
        if self == Scenario::Streams {
            let kind = Scenario::ELECTED[rng.below(Scenario::ELECTED.len() as u64) as usize];
            let mut p = Plan {
                ownership: Ownership::Stream,
                ..kind.plan(rng, nodes)
            };
            // Drawn aside, so that the worlds without it stay as they were.
            let mut aside = Rng::new(rng.clone().next_u64() ^ ASIDE);
            if aside.chance(STREAM_KEY_DELETED) {
                stream_key_deleted(&mut aside, &mut p);
            }
            return p;
        }
        let mut p = Plan {
            mode: Mode::Elected,
            skew: false,
            faults: Vec::new(),
            heal_at_ms: 60_000 + rng.below(240_000) as i64,
            uploads_until_ms: 0,
            strict: true,
            starts_ms: (0..nodes).map(|_| rng.below(5_000) as i64).collect(),
            busy: false,
            ownership: Ownership::Bucket,
        };
        let d = Draw {
            heal_at_ms: p.heal_at_ms,
            nodes,
        };
        let f = &mut p.faults;
        match self {
            Scenario::Calm => {}
            Scenario::LeaderCrash => d.repeat(rng, 1, 3, f, |rng| {
                let ms = span(rng, 5_000, 55_000);
                (d.at(rng), crash(Target::Leader, ms))
            }),
            Scenario::CrashAny => d.repeat(rng, 2, 6, f, |rng| {
                let ms = span(rng, 1_000, 40_000);
                let t = d.at(rng);
                (t, crash(d.some_node(rng), ms))
            }),
            Scenario::EtcdPartition => d.repeat(rng, 1, 2, f, |rng| {
                let ms = span(rng, 5_000, 85_000);
                (d.at(rng), cut(Target::Leader, Peer::Etcd, Way::Both, ms))
            }),
            Scenario::OnewayPartition => d.repeat(rng, 1, 3, f, |rng| {
                // Up to 90 s: longer than the failover bound, so that a leader keeping its
                // key alive through a cut shows.
                let ms = span(rng, 5_000, 85_000);
                let peer = peer(rng);
                let way = if rng.chance(0.5) { Way::Out } else { Way::In };
                let target = d.mostly_leader(rng);
                (d.at(rng), cut(target, peer, way, ms))
            }),
            Scenario::StorePartition => d.repeat(rng, 1, 2, f, |rng| {
                let ms = span(rng, 5_000, 85_000);
                (d.at(rng), cut(Target::Leader, Peer::Store, Way::Both, ms))
            }),
            Scenario::Pause => d.repeat(rng, 1, 2, f, |rng| {
                let ms = span(rng, 15_000, 45_000);
                (d.at(rng), pause(Target::Leader, ms))
            }),
            Scenario::ClockSkew => {
                p.skew = true;
                d.repeat(rng, 1, 3, f, |rng| {
                    let t = d.at(rng);
                    let target = d.some_node(rng);
                    let by_ms = rng.below(1_200_000) as i64 - 600_000;
                    (t, Fault::WallJump { target, by_ms })
                });
                d.repeat(rng, 1, 2, f, |rng| {
                    let t = d.at(rng);
                    let ms = span(rng, 5_000, 40_000);
                    if rng.chance(0.5) {
                        (t, crash(Target::Leader, ms))
                    } else {
                        (t, pause(Target::Leader, ms + 10_000))
                    }
                });
            }
            Scenario::EtcdRestart => d.repeat(rng, 1, 2, f, |rng| {
                let ms = span(rng, 1_000, 29_000);
                (d.at(rng), Fault::EtcdRestart { ms })
            }),
            Scenario::StoreErrors => {
                let unavailable = 0.05 + rng.next_f64() * 0.15;
                let timeout = 0.02 + rng.next_f64() * 0.08;
                let ms = p.heal_at_ms;
                f.push((
                    0,
                    Fault::StoreErrors {
                        unavailable,
                        timeout,
                        ms,
                    },
                ));
            }
            Scenario::HoldRelease => d.repeat(rng, 1, 3, f, |rng| {
                let ms = span(rng, 1_000, 59_000);
                let peer = peer(rng);
                let target = d.mostly_leader(rng);
                (d.at(rng), Fault::Hold { target, peer, ms })
            }),
            Scenario::MessageDelay => d.repeat(rng, 1, 3, f, |rng| {
                let ms = span(rng, 10_000, 80_000);
                let latency_ms = span(rng, 100, 1_900);
                let target = d.mostly_leader(rng);
                (
                    d.at(rng),
                    Fault::Delay {
                        target,
                        latency_ms,
                        ms,
                    },
                )
            }),
            Scenario::LeaseRevoked => {
                p.strict = false;
                p.busy = true;
                d.repeat(rng, 2, 2, f, |rng| {
                    let t = d.at(rng);
                    let ms = span(rng, 10_000, 30_000);
                    let hold_ms = span(rng, 1_000, 3_900);
                    (t, Fault::RevokeLease { ms, hold_ms })
                });
            }
            Scenario::DoubleSingle => {
                p.mode = Mode::Single { count: 2 };
                let apart = if rng.chance(0.3) {
                    0
                } else {
                    rng.below(20_000) as i64
                };
                p.starts_ms = vec![0, apart];
                p.heal_at_ms = 30_000;
            }
            Scenario::SingleCrash => {
                p.mode = Mode::Single { count: 1 };
                p.starts_ms = vec![0];
                let unavailable = rng.next_f64() * 0.05;
                let timeout = rng.next_f64() * 0.03;
                let ms = p.heal_at_ms;
                f.push((
                    0,
                    Fault::StoreErrors {
                        unavailable,
                        timeout,
                        ms,
                    },
                ));
                d.repeat(rng, 2, 8, f, |rng| {
                    let ms = span(rng, 100, 20_000);
                    (d.at(rng), crash(Target::Node(0), ms))
                });
            }
            Scenario::Streams => unreachable!("drawn above"),
            Scenario::Chaos => {
                p.skew = rng.chance(0.5);
                let kinds = [
                    Scenario::LeaderCrash,
                    Scenario::CrashAny,
                    Scenario::EtcdPartition,
                    Scenario::OnewayPartition,
                    Scenario::StorePartition,
                    Scenario::Pause,
                    Scenario::EtcdRestart,
                    Scenario::StoreErrors,
                    Scenario::HoldRelease,
                    Scenario::MessageDelay,
                ];
                for _ in 0..2 + rng.below(3) {
                    let s = kinds[rng.below(kinds.len() as u64) as usize];
                    let mut sub = s.plan(rng, nodes);
                    sub.faults.retain(|(t, _)| *t < p.heal_at_ms);
                    f.extend(sub.faults);
                }
            }
        }
        p.faults.sort_by_key(|(t, _)| *t);
        p.uploads_until_ms = p.heal_at_ms;
        p
    }
}

/// Mixed into the seed of the draws a stream world makes aside from the main sequence.
const ASIDE: u64 = 0x5EED_A51D_E0F5_7EA3;

/// The share of stream worlds in which a replica is added during the fault phase and an
/// operator deletes a stream's holder key by hand while the streams move.
const STREAM_KEY_DELETED: f64 = 0.6;

/// A replica added (the last node starts) 15–45 s into the world, while the first passes
/// run, and an armed [`Fault::DeleteStreamKey`] from then on: the new replica's director
/// adopts its share at once (nobody else holds it in its view) and campaigns, queued
/// behind the holders until they hand over (the rebalance delay, then the end of their pass).
fn stream_key_deleted(rng: &mut Rng, p: &mut Plan) {
    let at = span(rng, 15_000, 30_000).min(p.heal_at_ms - 1);
    // The sidecars' later blocks land before the replica comes: the holders' passes around
    // the join have work.
    p.uploads_until_ms = at + 5_000;
    if let Some(last) = p.starts_ms.last_mut() {
        *last = at;
    }
    let slow_ms = span(rng, 15_000, 15_000);
    let ms = p.heal_at_ms;
    let nodes = p.starts_ms.len() - 1;
    p.faults
        .push((0, Fault::SlowCompactions { nodes, slow_ms, ms }));
    let at_commit = rng.chance(0.5);
    let hold_ms = span(rng, 2_000, 2_600);
    p.faults
        .push((at, Fault::DeleteStreamKey { at_commit, hold_ms }));
    p.faults.sort_by_key(|(t, _)| *t);
}

/// The draws every scenario shares.
struct Draw {
    heal_at_ms: i64,
    nodes: usize,
}

impl Draw {
    /// A time in the fault phase, after the first 10 s.
    fn at(&self, rng: &mut Rng) -> i64 {
        10_000 + rng.below((self.heal_at_ms - 10_000) as u64) as i64
    }

    /// Any node.
    fn some_node(&self, rng: &mut Rng) -> Target {
        Target::Node(rng.below(self.nodes as u64) as usize)
    }

    /// The leader, 70% of the time; else any node.
    fn mostly_leader(&self, rng: &mut Rng) -> Target {
        if rng.chance(0.7) {
            Target::Leader
        } else {
            self.some_node(rng)
        }
    }

    /// `min + below(extra)` faults, each drawn by `make`.
    fn repeat(
        &self,
        rng: &mut Rng,
        min: u64,
        extra: u64,
        faults: &mut Vec<(i64, Fault)>,
        mut make: impl FnMut(&mut Rng) -> (i64, Fault),
    ) {
        for _ in 0..min + rng.below(extra) {
            faults.push(make(rng));
        }
    }
}

/// A duration of `min` plus up to `extra` ms.
fn span(rng: &mut Rng, min: i64, extra: i64) -> i64 {
    min + rng.below(extra as u64) as i64
}

/// Etcd or the store, evenly.
fn peer(rng: &mut Rng) -> Peer {
    if rng.chance(0.5) {
        Peer::Etcd
    } else {
        Peer::Store
    }
}

/// A cut of the target's cluster from `peer`.
fn cut(target: Target, peer: Peer, way: Way, ms: i64) -> Fault {
    Fault::Partition {
        target,
        peer,
        way,
        ms,
    }
}

/// A kill -9 of the target, restarted after `ms`.
fn crash(target: Target, ms: i64) -> Fault {
    Fault::Crash { target, ms }
}

/// A pause of the target for `ms`.
fn pause(target: Target, ms: i64) -> Fault {
    Fault::Pause { target, ms }
}
