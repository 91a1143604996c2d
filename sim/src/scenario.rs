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
    /// Check the order of every mutation (false when a fault breaks the lease assumption:
    /// only commit order is then promised).
    pub strict: bool,
    /// Start times of the nodes (world ms).
    pub starts_ms: Vec<i64>,
    /// Keep the leader busy: more streams and more blocks arriving during the fault phase.
    pub busy: bool,
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
}

impl Scenario {
    /// Every scenario, in listing order.
    pub const ALL: [Scenario; 16] = [
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
        }
    }

    /// One line on what it does.
    pub fn about(self) -> &'static str {
        match self {
            Scenario::Calm => "no faults: one leader compacts everything, the others wait",
            Scenario::LeaderCrash => "the leader is killed (kill -9) 1-3 times, restarted 5-60s later",
            Scenario::CrashAny => "random nodes are killed and restarted, often mid-request",
            Scenario::EtcdPartition => "the leader's cluster is cut from etcd (both ways) for 5-90s",
            Scenario::OnewayPartition => "one-way cuts cluster->etcd, etcd->cluster, cluster->store, store->cluster",
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
        let mut p = Plan {
            mode: Mode::Elected,
            skew: false,
            faults: Vec::new(),
            heal_at_ms: 60_000 + rng.below(240_000) as i64,
            strict: true,
            starts_ms: (0..nodes).map(|_| rng.below(5_000) as i64).collect(),
            busy: false,
        };
        let span = p.heal_at_ms;
        let at = |rng: &mut Rng| 10_000 + rng.below((span - 10_000) as u64) as i64;
        let some_node = |rng: &mut Rng| Target::Node(rng.below(nodes as u64) as usize);
        match self {
            Scenario::Calm => {}
            Scenario::LeaderCrash => {
                for _ in 0..1 + rng.below(3) {
                    let ms = 5_000 + rng.below(55_000) as i64;
                    let t = at(rng);
                    p.faults.push((
                        t,
                        Fault::Crash {
                            target: Target::Leader,
                            ms,
                        },
                    ));
                }
            }
            Scenario::CrashAny => {
                for _ in 0..2 + rng.below(6) {
                    let ms = 1_000 + rng.below(40_000) as i64;
                    let t = at(rng);
                    let target = some_node(rng);
                    p.faults.push((t, Fault::Crash { target, ms }));
                }
            }
            Scenario::EtcdPartition => {
                for _ in 0..1 + rng.below(2) {
                    let ms = 5_000 + rng.below(85_000) as i64;
                    let t = at(rng);
                    p.faults.push((
                        t,
                        Fault::Partition {
                            target: Target::Leader,
                            peer: Peer::Etcd,
                            way: Way::Both,
                            ms,
                        },
                    ));
                }
            }
            Scenario::OnewayPartition => {
                for _ in 0..1 + rng.below(3) {
                    let ms = 5_000 + rng.below(60_000) as i64;
                    let peer = if rng.chance(0.5) {
                        Peer::Etcd
                    } else {
                        Peer::Store
                    };
                    let way = if rng.chance(0.5) { Way::Out } else { Way::In };
                    let target = if rng.chance(0.7) {
                        Target::Leader
                    } else {
                        some_node(rng)
                    };
                    let t = at(rng);
                    p.faults.push((
                        t,
                        Fault::Partition {
                            target,
                            peer,
                            way,
                            ms,
                        },
                    ));
                }
            }
            Scenario::StorePartition => {
                for _ in 0..1 + rng.below(2) {
                    let ms = 5_000 + rng.below(85_000) as i64;
                    let t = at(rng);
                    p.faults.push((
                        t,
                        Fault::Partition {
                            target: Target::Leader,
                            peer: Peer::Store,
                            way: Way::Both,
                            ms,
                        },
                    ));
                }
            }
            Scenario::Pause => {
                for _ in 0..1 + rng.below(2) {
                    let ms = 15_000 + rng.below(45_000) as i64;
                    let t = at(rng);
                    p.faults.push((
                        t,
                        Fault::Pause {
                            target: Target::Leader,
                            ms,
                        },
                    ));
                }
            }
            Scenario::ClockSkew => {
                p.skew = true;
                for _ in 0..1 + rng.below(3) {
                    let t = at(rng);
                    let target = some_node(rng);
                    let by_ms = rng.below(1_200_000) as i64 - 600_000;
                    p.faults.push((t, Fault::WallJump { target, by_ms }));
                }
                for _ in 0..1 + rng.below(2) {
                    let t = at(rng);
                    let ms = 5_000 + rng.below(40_000) as i64;
                    let f = if rng.chance(0.5) {
                        Fault::Crash {
                            target: Target::Leader,
                            ms,
                        }
                    } else {
                        Fault::Pause {
                            target: Target::Leader,
                            ms: ms + 10_000,
                        }
                    };
                    p.faults.push((t, f));
                }
            }
            Scenario::EtcdRestart => {
                for _ in 0..1 + rng.below(2) {
                    let ms = 1_000 + rng.below(29_000) as i64;
                    let t = at(rng);
                    p.faults.push((t, Fault::EtcdRestart { ms }));
                }
            }
            Scenario::StoreErrors => {
                let unavailable = 0.05 + rng.next_f64() * 0.15;
                let timeout = 0.02 + rng.next_f64() * 0.08;
                p.faults.push((
                    0,
                    Fault::StoreErrors {
                        unavailable,
                        timeout,
                        ms: span,
                    },
                ));
            }
            Scenario::HoldRelease => {
                for _ in 0..1 + rng.below(3) {
                    let ms = 1_000 + rng.below(59_000) as i64;
                    let peer = if rng.chance(0.5) {
                        Peer::Etcd
                    } else {
                        Peer::Store
                    };
                    let target = if rng.chance(0.7) {
                        Target::Leader
                    } else {
                        some_node(rng)
                    };
                    let t = at(rng);
                    p.faults.push((t, Fault::Hold { target, peer, ms }));
                }
            }
            Scenario::MessageDelay => {
                for _ in 0..1 + rng.below(3) {
                    let ms = 10_000 + rng.below(80_000) as i64;
                    let latency_ms = 100 + rng.below(1_900) as i64;
                    let target = if rng.chance(0.7) {
                        Target::Leader
                    } else {
                        some_node(rng)
                    };
                    let t = at(rng);
                    p.faults.push((
                        t,
                        Fault::Delay {
                            target,
                            latency_ms,
                            ms,
                        },
                    ));
                }
            }
            Scenario::LeaseRevoked => {
                p.strict = false;
                p.busy = true;
                for _ in 0..2 + rng.below(2) {
                    let t = at(rng);
                    let ms = 10_000 + rng.below(30_000) as i64;
                    let hold_ms = 1_000 + rng.below(3_900) as i64;
                    p.faults.push((t, Fault::RevokeLease { ms, hold_ms }));
                }
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
                p.faults.push((
                    0,
                    Fault::StoreErrors {
                        unavailable,
                        timeout,
                        ms: span,
                    },
                ));
                for _ in 0..2 + rng.below(8) {
                    let ms = 100 + rng.below(20_000) as i64;
                    let t = at(rng);
                    p.faults.push((
                        t,
                        Fault::Crash {
                            target: Target::Node(0),
                            ms,
                        },
                    ));
                }
            }
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
                    sub.faults.retain(|(t, _)| *t < span);
                    p.faults.extend(sub.faults);
                }
            }
        }
        p.faults.sort_by_key(|(t, _)| *t);
        p
    }
}
