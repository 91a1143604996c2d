//! Applies a scenario's faults to a running world between turmoil steps, and heals them:
//! crashes and restarts, pauses, cuts and holds of links, latency, wall-clock jumps, etcd
//! restarts, store errors, lease revocations. Some faults are armed and strike at the
//! leader's worst moment.

use std::collections::BTreeMap;
use std::time::Duration;

use compactd::core::coord::{CoordOp, ElectionKey};
use compactd::rng::Rng;
use compactd::units::MINUTE_MS;

use crate::election::Coordinator;
use crate::failover::LostStreams;
use crate::net::{ETCD, STORE};
use crate::scenario::{Fault, Peer, Target, Way};
use crate::setup::PREFIX;
use crate::shared::{LostLeader, StoreFaults, World};

mod revoke;

/// An armed fault strikes after this long even if its moment did not come.
const ARMED_MAX_MS: i64 = MINUTE_MS;
/// A fault's undoing, due at a world time.
#[derive(Clone, Debug)]
enum Heal {
    Restart(String),
    Repair {
        node: String,
        peer: &'static str,
        way: Way,
    },
    Release {
        node: String,
        peer: &'static str,
    },
    Undelay {
        node: String,
    },
    Resume(String),
    EtcdStart,
    StoreCalm,
}

/// Injects and heals the faults of one world.
pub struct Injector {
    world: World,
    rng: Rng,
    names: Vec<String>,
    latency_max_ms: u64,
    heals: Vec<(i64, Heal)>,
    /// The node whose loss started the failover being timed.
    lost: Option<String>,
    /// Who elects the leader: whether etcd is there to fault, and which cut takes the
    /// leader out.
    coordinator: Coordinator,
    /// Faults waiting for their moment, with the time they were armed.
    armed: Vec<(i64, Fault)>,
    /// Commits sent per node when last looked at.
    commits_seen: BTreeMap<String, u64>,
    /// Commits each stream holder sent under its epoch when last looked at.
    stream_commits_seen: BTreeMap<u64, u64>,
    /// The holder key an armed [`Fault::DeleteStreamKey`] strikes at, once found.
    doomed: Option<StreamQueue>,
}

/// A stream's holder key (the lowest create revision under the stream's prefix) with
/// another running node's key queued behind it.
#[derive(Clone, Debug)]
struct StreamQueue {
    /// The stream.
    stream: u64,
    /// The holder's key.
    key: String,
    /// Its create revision: the holder's epoch.
    create_revision: i64,
    /// The holder.
    holder: String,
    /// The first other node queued.
    queued: String,
}

fn peer_name(peer: Peer) -> &'static str {
    match peer {
        Peer::Etcd => ETCD,
        Peer::Store => STORE,
    }
}

impl Injector {
    /// An injector for `world`'s nodes `names`; `latency_max_ms` is the world's normal
    /// latency bound, `coordinator` who elects the leader.
    pub fn new(
        world: World,
        rng: Rng,
        names: Vec<String>,
        latency_max_ms: u64,
        coordinator: Coordinator,
    ) -> Injector {
        Injector {
            world,
            rng,
            names,
            latency_max_ms,
            heals: Vec::new(),
            lost: None,
            coordinator,
            armed: Vec::new(),
            commits_seen: BTreeMap::new(),
            stream_commits_seen: BTreeMap::new(),
            doomed: None,
        }
    }

    /// Injects `fault` now, or arms it (a lease revoke, a pause of the leader, a stream key
    /// deleted by hand). A fault on etcd in a world without etcd is applied at once, as
    /// nothing.
    pub fn inject(&mut self, sim: &mut turmoil::Sim<'_>, fault: Fault, now: i64) {
        match fault {
            f if self.without_etcd(&f) => self.apply(sim, f, now),
            Fault::RevokeLease { .. }
            | Fault::Pause {
                target: Target::Leader,
                ..
            } => {
                self.commits_seen.clear();
                self.armed.push((now, fault));
            }
            Fault::DeleteStreamKey { .. } => {
                self.stream_commits_seen.clear();
                self.armed.push((now, fault));
            }
            f => self.apply(sim, f, now),
        }
    }

    /// Applies the armed faults whose moment came; drops them once the faults heal.
    pub fn strike_armed(&mut self, sim: &mut turmoil::Sim<'_>, now: i64, heal_at: i64) {
        for (since, f) in std::mem::take(&mut self.armed) {
            if now >= heal_at {
                continue;
            }
            if self.strikes(sim, &f, now, since) {
                self.apply(sim, f, now);
            } else {
                self.armed.push((since, f));
            }
        }
    }

    /// Heals every fault now (the end of the fault phase).
    pub fn heal_all(&mut self, sim: &mut turmoil::Sim<'_>, now: i64) {
        for (_, h) in std::mem::take(&mut self.heals) {
            self.heal(sim, h, now);
        }
        for n in self.world.borrow_mut().nodes.values_mut() {
            n.slow_until_ms = n.slow_until_ms.min(now);
        }
        self.log(now, "every fault healed");
    }

    /// Heals the faults whose time came.
    pub fn heal_due(&mut self, sim: &mut turmoil::Sim<'_>, now: i64) {
        for h in self.due_heals(now) {
            self.heal(sim, h, now);
        }
    }

    fn due_heals(&mut self, now: i64) -> Vec<Heal> {
        let (due, rest): (Vec<_>, Vec<_>) = self.heals.drain(..).partition(|(t, _)| *t <= now);
        self.heals = rest;
        due.into_iter().map(|(_, h)| h).collect()
    }

    /// Whether an armed fault strikes now, armed at `since`: a lease revoke when the leader
    /// has just sent a commit (it is in flight), a pause of the leader when its driver holds
    /// mutations not yet sent; either after a minute regardless; a stream key deleted by hand
    /// as [`Self::stream_queue_strikes`] says.
    fn strikes(&mut self, sim: &mut turmoil::Sim<'_>, fault: &Fault, now: i64, since: i64) -> bool {
        let waited = now - since;
        if let Fault::DeleteStreamKey { at_commit, .. } = fault {
            return self.stream_queue_strikes(sim, now, *at_commit, waited > ARMED_MAX_MS);
        }
        if waited > ARMED_MAX_MS {
            return true;
        }
        match fault {
            Fault::RevokeLease { .. } => self.leader_committing(),
            Fault::Pause { .. } => {
                let w = self.world.borrow();
                w.leader().is_some_and(|l| w.nodes[l].unsent_mutations > 0)
            }
            _ => true,
        }
    }

    /// True when the leader sent a commit since the last look (it is in flight now).
    fn leader_committing(&mut self) -> bool {
        let w = self.world.borrow();
        let Some(leader) = w.leader() else {
            return false;
        };
        let sent = w.nodes[leader].commits_sent;
        let fresh = self
            .commits_seen
            .get(leader)
            .is_some_and(|seen| sent > *seen);
        self.commits_seen.insert(leader.to_string(), sent);
        fresh
    }

    /// Whether an armed stream-key deletion strikes now: when a stream's holder, with another
    /// running node queued behind it, is compacting blocks of the stream (it will upload and
    /// commit the output afterwards, still under its old epoch), or (`at_commit`) sent a
    /// commit of it since the last look (the commit is in flight); once the fault waited its
    /// longest (`late`), at any holder with a queue. With no queue it keeps waiting (it is
    /// dropped when the faults heal).
    fn stream_queue_strikes(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        now: i64,
        at_commit: bool,
        late: bool,
    ) -> bool {
        if !sim.is_host_running(ETCD) {
            return false;
        }
        let queues = self.stream_queues(sim, now);
        let w = self.world.borrow();
        let sent = |q: &StreamQueue| {
            let commits = &w.nodes[&q.holder].commits_by_epoch;
            commits
                .get(&(q.create_revision as u64))
                .copied()
                .unwrap_or(0)
        };
        let busy = queues.iter().find(|q| {
            let seen = self.stream_commits_seen.get(&(q.create_revision as u64));
            if at_commit {
                seen.is_some_and(|seen| sent(q) > *seen)
            } else {
                w.nodes[&q.holder].compacting.contains(&q.stream)
            }
        });
        self.doomed = busy.or(queues.first().filter(|_| late)).cloned();
        for q in &queues {
            self.stream_commits_seen
                .insert(q.create_revision as u64, sent(q));
        }
        self.doomed.is_some()
    }

    /// The streams whose holder has another running, unpaused node queued behind it, as etcd
    /// holds their keys now.
    fn stream_queues(&self, sim: &mut turmoil::Sim<'_>, now: i64) -> Vec<StreamQueue> {
        let w = self.world.borrow();
        let ready: Vec<&str> = w
            .nodes
            .iter()
            .filter(|(name, n)| {
                n.exited.is_none() && n.paused_until_ms <= now && sim.is_host_running(name.as_str())
            })
            .map(|(name, _)| name.as_str())
            .collect();
        let prefix = format!("{PREFIX}/streams/");
        let mut by_stream: BTreeMap<u64, Vec<ElectionKey>> = BTreeMap::new();
        // By create revision: the first key of each stream holds it.
        for k in w.etcd.keys_under(&prefix) {
            let hex = k.key[prefix.len()..].split('/').next().unwrap_or_default();
            if let Ok(stream) = u64::from_str_radix(hex, 16) {
                by_stream.entry(stream).or_default().push(k);
            }
        }
        by_stream
            .into_iter()
            .filter_map(|(stream, keys)| {
                let (holder, rest) = keys.split_first()?;
                let queued = rest
                    .iter()
                    .find(|k| k.value != holder.value && ready.contains(&k.value.as_str()))?;
                Some(StreamQueue {
                    stream,
                    key: holder.key.clone(),
                    create_revision: holder.create_revision,
                    holder: holder.value.clone(),
                    queued: queued.value.clone(),
                })
            })
            .collect()
    }

    fn log(&self, now: i64, what: &str) {
        self.world.borrow_mut().log(now, "world", what);
    }

    /// The node a target names now, if it is running.
    fn resolve(&mut self, sim: &mut turmoil::Sim<'_>, target: Target) -> Option<String> {
        let name = match target {
            Target::Leader => match self.world.borrow().leader() {
                Some(l) => l.to_string(),
                None => self.names[self.rng.below(self.names.len() as u64) as usize].clone(),
            },
            Target::Node(i) => self.names[i % self.names.len()].clone(),
        };
        let exited = self.world.borrow().nodes[&name].exited.is_some();
        (!exited && sim.is_host_running(name.as_str())).then_some(name)
    }

    /// The nodes of `node`'s cluster.
    fn cluster_of(&self, node: &str) -> Vec<String> {
        let w = self.world.borrow();
        let cluster = &w.nodes[node].cluster;
        w.nodes
            .iter()
            .filter(|(_, n)| &n.cluster == cluster)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Starts timing a failover if `node` leads now; `hit` are the nodes the fault strikes.
    /// The failover bound is judged when no other fault is in force and a node outside `hit`
    /// runs, unpaused, and can take over.
    fn leader_lost(&mut self, sim: &mut turmoil::Sim<'_>, node: &str, hit: &[String], now: i64) {
        let others_fit = {
            let w = self.world.borrow();
            w.nodes.iter().any(|(name, n)| {
                !hit.contains(name)
                    && n.exited.is_none()
                    && n.paused_until_ms <= now
                    && sim.is_host_running(name.as_str())
            })
        };
        let armed = self
            .armed
            .iter()
            .any(|(_, f)| !matches!(f, Fault::DeleteStreamKey { .. }));
        let judged = others_fit && self.heals.is_empty() && !armed;
        let mut w = self.world.borrow_mut();
        if let (Some(epoch), None) = (w.nodes[node].leading, &w.stats.leader_lost) {
            w.stats.leader_lost = Some(LostLeader {
                at_ms: now,
                epoch,
                node: node.to_string(),
                judged,
            });
            self.lost = Some(node.to_string());
        }
        let holders: BTreeMap<u64, (String, u64)> = hit
            .iter()
            .flat_map(|n| {
                let led = &w.nodes[n].streams_led;
                led.iter().map(move |(s, e)| (*s, (n.clone(), *e)))
            })
            .collect();
        if !holders.is_empty() && w.stats.streams_lost.is_none() {
            w.stats.streams_lost = Some(LostStreams {
                at_ms: now,
                left: holders.iter().map(|(s, (_, e))| (*s, *e)).collect(),
                holders: holders.into_iter().map(|(s, (n, _))| (s, n)).collect(),
                judged,
            });
        }
    }

    /// Another fault strikes: the failover being timed (if any) is no longer judged.
    fn unjudge(&mut self) {
        let stats = &mut self.world.borrow_mut().stats;
        if let Some(lost) = stats.leader_lost.as_mut() {
            lost.judged = false;
        }
        if let Some(lost) = stats.streams_lost.as_mut() {
            lost.judged = false;
        }
    }

    /// True for a fault on etcd (a cut or hold of its links, a restart, a key deleted by
    /// hand) when the bucket elects: nobody talks to etcd, and the world hosts none.
    fn without_etcd(&self, fault: &Fault) -> bool {
        let on_etcd = match fault {
            Fault::Partition { peer, .. } | Fault::Hold { peer, .. } => *peer == Peer::Etcd,
            Fault::EtcdRestart { .. } | Fault::DeleteStreamKey { .. } => true,
            _ => false,
        };
        on_etcd && self.coordinator == Coordinator::Bucket
    }

    fn apply(&mut self, sim: &mut turmoil::Sim<'_>, fault: Fault, now: i64) {
        // Logged even when it finds no target (a line saying what it did follows if it does).
        self.log(now, &format!("fault {fault:?}"));
        if self.without_etcd(&fault) {
            // It changes nothing, so the failover being timed is still judged.
            return self.log(now, "no etcd in this world: nothing happens");
        }
        // A wall-clock jump does not touch the election (monotonic clocks only).
        if !matches!(fault, Fault::WallJump { .. }) {
            self.unjudge();
        }
        match fault {
            Fault::Crash { target, ms } => {
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                self.leader_lost(sim, &node, std::slice::from_ref(&node), now);
                sim.crash(node.as_str());
                {
                    // The process is gone: nothing of it leads, is paused or waits to be sent.
                    let mut w = self.world.borrow_mut();
                    let n = w.nodes.get_mut(&node).expect("node");
                    n.leading = None;
                    n.paused_until_ms = 0;
                    n.unsent_mutations = 0;
                    n.compacting.clear();
                    n.streams_led.clear();
                }
                self.log(now, &format!("crash {node} for {ms}ms"));
                self.heals.push((now + ms, Heal::Restart(node)));
            }
            Fault::Pause { target, ms } => {
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                if ms > 15_000 {
                    self.leader_lost(sim, &node, std::slice::from_ref(&node), now);
                }
                {
                    let mut w = self.world.borrow_mut();
                    let n = w.nodes.get_mut(&node).expect("node");
                    n.paused_until_ms = n.paused_until_ms.max(now + ms);
                }
                self.log(now, &format!("pause {node} for {ms}ms"));
                self.heals.push((now + ms, Heal::Resume(node)));
            }
            Fault::Partition {
                target,
                peer,
                way,
                ms,
            } => {
                if peer == Peer::Etcd && !self.coordinator.hosts_etcd() {
                    return;
                }
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                let cluster = self.cluster_of(&node);
                if self.coordinator.peer() == Some(peer) && ms > 15_000 {
                    self.leader_lost(sim, &node, &cluster, now);
                }
                let p = peer_name(peer);
                for n in cluster {
                    match way {
                        Way::Both => sim.partition(n.as_str(), p),
                        Way::Out => sim.partition_oneway(n.as_str(), p),
                        Way::In => sim.partition_oneway(p, n.as_str()),
                    }
                    self.heals.push((
                        now + ms,
                        Heal::Repair {
                            node: n,
                            peer: p,
                            way,
                        },
                    ));
                }
                self.log(
                    now,
                    &format!("cut the cluster of {node} from {p} ({way:?}) for {ms}ms"),
                );
            }
            Fault::Hold { target, peer, ms } => {
                if peer == Peer::Etcd && !self.coordinator.hosts_etcd() {
                    return;
                }
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                let cluster = self.cluster_of(&node);
                if self.coordinator.peer() == Some(peer) && ms > 15_000 {
                    self.leader_lost(sim, &node, &cluster, now);
                }
                let p = peer_name(peer);
                for n in cluster {
                    sim.hold(n.as_str(), p);
                    self.heals
                        .push((now + ms, Heal::Release { node: n, peer: p }));
                }
                self.log(
                    now,
                    &format!("hold the links of {node}'s cluster to {p} for {ms}ms"),
                );
            }
            Fault::Delay {
                target,
                latency_ms,
                ms,
            } => {
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                let latency = Duration::from_millis(latency_ms as u64);
                for n in self.cluster_of(&node) {
                    sim.set_link_latency(n.as_str(), STORE, latency);
                    if self.coordinator.hosts_etcd() {
                        sim.set_link_latency(n.as_str(), ETCD, latency);
                    }
                    self.heals.push((now + ms, Heal::Undelay { node: n }));
                }
                self.log(
                    now,
                    &format!("{node}'s cluster: {latency_ms}ms latency for {ms}ms"),
                );
            }
            Fault::WallJump { target, by_ms } => {
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                let mut w = self.world.borrow_mut();
                w.nodes.get_mut(&node).expect("node").clock.wall_offset_ms += by_ms;
                w.log(
                    now,
                    "world",
                    &format!("{node}'s wall clock jumps {by_ms}ms"),
                );
            }
            Fault::EtcdRestart { ms } => {
                if !self.coordinator.hosts_etcd() || !sim.is_host_running(ETCD) {
                    return;
                }
                self.world.borrow_mut().etcd.advance(now);
                sim.crash(ETCD);
                self.log(now, &format!("etcd down for {ms}ms"));
                self.heals.push((now + ms, Heal::EtcdStart));
            }
            Fault::StoreErrors {
                unavailable,
                timeout,
                ms,
            } => {
                self.world.borrow_mut().store_faults = StoreFaults {
                    unavailable,
                    timeout,
                };
                self.log(
                    now,
                    &format!("store errors: {unavailable:.3} refused, {timeout:.3} replies lost"),
                );
                self.heals.push((now + ms, Heal::StoreCalm));
            }
            Fault::DeleteStreamKey { hold_ms, .. } => self.delete_stream_key(sim, now, hold_ms),
            Fault::SlowCompactions { nodes, slow_ms, ms } => {
                self.slow_compactions(now, nodes, slow_ms, ms)
            }
            Fault::RevokeLease { ms, hold_ms } => self.revoke_lease(sim, now, ms, hold_ms),
        }
    }

    /// The first `nodes` nodes' compactions take `slow_ms` longer for `ms` from `now`.
    fn slow_compactions(&mut self, now: i64, nodes: usize, slow_ms: i64, ms: i64) {
        let mut w = self.world.borrow_mut();
        for name in self.names.iter().take(nodes) {
            let n = w.nodes.get_mut(name).expect("node");
            n.slow_until_ms = now + ms;
            n.slow_by_ms = slow_ms;
        }
        let what =
            format!("compactions of the first {nodes} nodes take {slow_ms}ms longer for {ms}ms");
        w.log(now, "world", &what);
    }

    /// `etcdctl del` of the holder key found by [`Self::stream_queue_strikes`]: a delete of
    /// exactly that key (a compare-and-delete on its create revision, so a key created anew
    /// since is left alone); the holder's lease and its other keys stay. The holder's link to
    /// the store holds its messages for `hold_ms` (a request in flight lands late).
    fn delete_stream_key(&mut self, sim: &mut turmoil::Sim<'_>, now: i64, hold_ms: i64) {
        let Some(q) = self.doomed.take() else {
            return;
        };
        sim.hold(q.holder.as_str(), STORE);
        let heal = Heal::Release {
            node: q.holder.clone(),
            peer: STORE,
        };
        self.heals.push((now + hold_ms, heal));
        let op = CoordOp::Withdraw {
            key: q.key.clone(),
            create_revision: q.create_revision,
        };
        let mut w = self.world.borrow_mut();
        w.etcd.execute(now, &op);
        // The lease assumption no longer holds for this stream: only commit order is promised
        // there (the old holder's uploads may land after the new one fenced).
        w.checker
            .lease_broken(crate::checker::Unit::Stream(q.stream));
        let what = format!(
            "delete {}'s key {} (epoch {}) by hand, {} queued behind it; hold {}'s store link \
             {hold_ms}ms",
            q.holder, q.key, q.create_revision, q.queued, q.holder
        );
        w.log(now, "world", &what);
    }

    fn heal(&mut self, sim: &mut turmoil::Sim<'_>, heal: Heal, now: i64) {
        self.log(now, &format!("heal {heal:?}"));
        match heal {
            Heal::Restart(node) => {
                let exited = self.world.borrow().nodes[&node].exited.is_some();
                if !exited && !sim.is_host_running(node.as_str()) {
                    sim.bounce(node.as_str());
                }
            }
            Heal::Repair { node, peer, way } => match way {
                Way::Both => sim.repair(node.as_str(), peer),
                Way::Out => sim.repair_oneway(node.as_str(), peer),
                Way::In => sim.repair_oneway(peer, node.as_str()),
            },
            Heal::Release { node, peer } => sim.release(node.as_str(), peer),
            Heal::Undelay { node } => {
                let (min, max) = (
                    Duration::from_millis(1),
                    Duration::from_millis(self.latency_max_ms),
                );
                let peers: &[&str] = if self.coordinator.hosts_etcd() {
                    &[STORE, ETCD]
                } else {
                    &[STORE]
                };
                for p in peers {
                    sim.set_link_latency(node.as_str(), *p, min);
                    sim.set_link_max_message_latency(node.as_str(), *p, max);
                }
            }
            Heal::Resume(node) => {
                let mut w = self.world.borrow_mut();
                let n = w.nodes.get_mut(&node).expect("node");
                n.paused_until_ms = n.paused_until_ms.min(now);
            }
            Heal::EtcdStart => {
                if !sim.is_host_running(ETCD) {
                    sim.bounce(ETCD);
                }
            }
            Heal::StoreCalm => self.world.borrow_mut().store_faults = StoreFaults::default(),
        }
        if let Some(node) = self.lost.clone() {
            let mut w = self.world.borrow_mut();
            let still = w.nodes[&node].leading;
            let superseded = w.stats.max_elected > still.unwrap_or(0);
            if still.is_some() && !superseded && w.stats.leader_lost.is_some() {
                // The leader it was timed for kept its term and nobody was elected: no
                // failover happened.
                w.stats.leader_lost = None;
                self.lost = None;
            }
        }
    }
}
