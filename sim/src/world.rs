//! One simulated world per (seed, scenario, bug): turmoil hosts for etcd, the object store
//! and 3–5 compactor nodes in 2–3 clusters (or single instances), a bucket of real generated
//! blocks, the scenario's faults applied and healed between turmoil steps, then a wait for a
//! leader and a finished compaction, and the end-of-world checks.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use compactd::core::coord::{CoordOp, LeaseId};
use compactd::core::cycle::CycleConfig;
use compactd::core::leader::{LeaderConfig, Safety};
use compactd::core::plan::{compaction_ranges, group_blocks, plan, Plan as GroupPlan, PlanInput};
use compactd::core::view::ViewConfig;
use compactd::rng::Rng;
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::META_FILENAME;

use crate::blocks::{generate_stream, read_samples, Samples, SourceBlock, BLOCK_MS};
use crate::bug::Bug;
use crate::checker::{visible_blocks, Checker, Invariant, Violation, SIDECAR};
use crate::clock::Clock;
use crate::etcd::{Answer, EtcdModel};
use crate::log::EventLog;
use crate::net::{Mailbox, ETCD, STORE};
use crate::scenario::{Fault, Mode, Peer, Scenario, Target, Way};
use crate::shared::{NodeState, Shared, Stats, StoreFaults, Timing, World, WALL0};
use crate::store::{Origin, PutMode, StoreModel};

/// The turmoil tick: network delivery granularity (timers inside a host are exact).
const TICK_MS: u64 = 25;
/// A leader must exist this long after the faults heal.
const LEADER_BOUND_MS: i64 = 60_000;
/// Compaction must finish this long after the faults heal.
const FINISH_BOUND_MS: i64 = 20 * 60_000;
/// The bucket must stay finished this long before the world ends (in-flight work lands).
const SETTLE_MS: i64 = 20_000;
/// An armed fault strikes after this long even if its moment did not come.
const ARMED_MAX_MS: i64 = 60_000;
/// The election's etcd prefix.
const ELECTION: &str = "/compactd/sim/election";
/// Cluster names.
const CLUSTERS: [&str; 3] = ["eu-1", "eu-2", "us-1"];

/// What one world did and found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The scenario.
    pub scenario: Scenario,
    /// The mechanism switched off.
    pub bug: Option<Bug>,
    /// The event-log hash (same seed, scenario, bug and build: same hash).
    pub hash: u64,
    /// Events logged.
    pub events: u64,
    /// Simulated milliseconds.
    pub sim_ms: i64,
    /// Compactor nodes.
    pub nodes: usize,
    /// The first violations of each invariant.
    pub violations: Vec<Violation>,
    /// Violations per invariant.
    pub counts: BTreeMap<Invariant, usize>,
    /// What the world counted.
    pub stats: Stats,
    /// The event timeline, when kept.
    pub log: Vec<String>,
}

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

/// The world under construction and while it runs.
struct Run {
    world: World,
    rng: Rng,
    names: Vec<String>,
    latency_max_ms: u64,
    heals: Vec<(i64, Heal)>,
    /// The node whose loss started the failover being timed.
    lost: Option<String>,
    etcd: bool,
    /// Faults waiting for their moment, with the time they were armed.
    armed: Vec<(i64, Fault)>,
    /// Commits sent per node when last looked at.
    commits_seen: BTreeMap<String, u64>,
}

/// Runs one world; `keep_log` keeps the event timeline.
pub fn run_world(seed: u64, scenario: Scenario, bug: Option<Bug>, keep_log: bool) -> Outcome {
    // The block engine syncs its files: a memory file system keeps that cheap.
    let shm = std::path::Path::new("/dev/shm");
    let scratch = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("scratch directory");
    let mut rng = Rng::new(seed ^ ((scenario as u64 + 1) << 56));
    let elected = 3 + rng.below(3) as usize;
    let plan = scenario.plan(&mut rng, elected);
    let (names, clusters) = topology(&mut rng, plan.mode, elected);
    let (sources, expected) = seed_blocks(&mut rng, scratch.path(), plan.heal_at_ms, plan.busy);
    let timing = Timing {
        op_timeout_ms: 5_000,
        coord_timeout_ms: 3_000,
        send_delay_max_ms: 300,
        compact_max_ms: 3_000,
    };
    let mut store = StoreModel::default();
    let mut uploads = std::collections::VecDeque::new();
    for (at, b) in &sources {
        if *at == 0 {
            upload_source(&mut store, b, 0);
        } else {
            uploads.push_back((*at, b.clone()));
        }
    }
    let mut checker = Checker::new(plan.strict);
    checker.skip_existing(&store);
    let cycle = cycle_config(&mut rng);
    let mut nodes = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let clock = clock(&mut rng, plan.skew);
        let leader = leader_config(name, plan.mode, bug);
        nodes.insert(
            name.clone(),
            NodeState {
                cluster: clusters[i].clone(),
                clock,
                start_ms: plan.starts_ms.get(i).copied().unwrap_or(0),
                commits_sent: 0,
                unsent_mutations: 0,
                paused_until_ms: 0,
                starts: 0,
                exited: None,
                leading: None,
                cycle: cycle.clone(),
                leader,
            },
        );
    }
    let shared = Shared {
        timing,
        bug,
        etcd: EtcdModel::new(rng.next_u64()),
        etcd_starts: 0,
        store,
        store_faults: StoreFaults::default(),
        rng: Rng::new(rng.next_u64()),
        mailbox: Mailbox::default(),
        nodes,
        log: EventLog::new(keep_log),
        checker,
        stats: Stats::default(),
        scratch: scratch.path().join("work"),
    };
    let world: World = Rc::new(RefCell::new(shared));
    let latency_max_ms = 2 + rng.below(50);
    let mut sim = turmoil::Builder::new()
        .rng_seed(rng.next_u64())
        .epoch(UNIX_EPOCH + Duration::from_millis(WALL0 as u64))
        .tick_duration(Duration::from_millis(TICK_MS))
        .simulation_duration(Duration::from_secs(30 * 24 * 3600))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(latency_max_ms))
        .udp_capacity(4096)
        .build();
    let etcd = plan.mode == Mode::Elected;
    if etcd {
        let w = world.clone();
        sim.host(ETCD, move || crate::etcd_host::run(w.clone()));
    }
    let w = world.clone();
    sim.host(STORE, move || crate::store_host::run(w.clone()));
    for name in &names {
        let (w, n) = (world.clone(), name.clone());
        sim.host(name.as_str(), move || {
            crate::node_host::run(w.clone(), n.clone())
        });
    }
    let mut run = Run {
        world: world.clone(),
        rng,
        names,
        latency_max_ms,
        heals: Vec::new(),
        lost: None,
        etcd,
        armed: Vec::new(),
        commits_seen: BTreeMap::new(),
    };
    let mut faults = plan.faults.into_iter().peekable();
    let heal_at = plan.heal_at_ms;
    let (mut healed, mut leader_ok, mut done_since) = (false, !etcd, None::<i64>);
    let mut now = 0;
    loop {
        if let Err(e) = sim.step() {
            let text = format!("the simulation stopped: {e}");
            world
                .borrow_mut()
                .checker
                .violate(Invariant::Liveness, now, text);
            break;
        }
        now = sim.elapsed().as_millis() as i64;
        while let Some((_, b)) = uploads.pop_front_if(|(at, _)| *at <= now) {
            let mut w = world.borrow_mut();
            upload_source(&mut w.store, &b, now);
            w.log(now, SIDECAR, &format!("uploads block {}", b.meta.ulid));
        }
        while let Some((_, f)) = faults.next_if(|(t, _)| *t <= now && now < heal_at) {
            match f {
                // Armed: these strike at the leader's worst moment (see `Run::strikes`).
                Fault::RevokeLease { .. }
                | Fault::Pause {
                    target: Target::Leader,
                    ..
                } => {
                    run.commits_seen.clear();
                    run.armed.push((now, f));
                }
                f => run.apply(&mut sim, f, now),
            }
        }
        let armed = std::mem::take(&mut run.armed);
        for (since, f) in armed {
            if now >= heal_at {
                continue;
            }
            if run.strikes(&f, now - since) {
                run.apply(&mut sim, f, now);
            } else {
                run.armed.push((since, f));
            }
        }
        if !healed && now >= heal_at {
            healed = true;
            let all: Vec<Heal> = run.heals.drain(..).map(|(_, h)| h).collect();
            for h in all {
                run.heal(&mut sim, h, now);
            }
            world.borrow_mut().log(now, "world", "every fault healed");
        } else {
            let due: Vec<Heal> = run.due_heals(now);
            for h in due {
                run.heal(&mut sim, h, now);
            }
        }
        if !healed || now % 1_000 != 0 {
            continue;
        }
        let w = world.borrow();
        if !leader_ok {
            leader_ok = w.nodes.values().any(|n| n.leading.is_some());
            if !leader_ok && now > heal_at + LEADER_BOUND_MS {
                drop(w);
                let text = format!(
                    "no leader {}s after the faults healed",
                    LEADER_BOUND_MS / 1000
                );
                world
                    .borrow_mut()
                    .checker
                    .violate(Invariant::Liveness, now, text);
                leader_ok = true;
                continue;
            }
        }
        if bucket_done(&w.store, &cycle) {
            let since = *done_since.get_or_insert(now);
            if now - since >= SETTLE_MS {
                break;
            }
        } else {
            done_since = None;
        }
        if now > heal_at + FINISH_BOUND_MS {
            drop(w);
            let text = format!(
                "compaction not finished {} min after the faults healed",
                FINISH_BOUND_MS / 60_000
            );
            world
                .borrow_mut()
                .checker
                .violate(Invariant::Liveness, now, text);
            break;
        }
    }
    drop(sim);
    let mut w = world.borrow_mut();
    let ids: BTreeSet<BlockId> = sources.iter().map(|(_, b)| b.meta.ulid).collect();
    let Shared { checker, store, .. } = &mut *w;
    checker.finish(store, &ids, &expected, &scratch.path().join("final"), now);
    Outcome {
        seed,
        scenario,
        bug,
        hash: w.log.hash(),
        events: w.log.events(),
        sim_ms: now,
        nodes: w.nodes.len(),
        violations: w.checker.violations().to_vec(),
        counts: w.checker.counts().clone(),
        stats: w.stats.clone(),
        log: w.log.lines().to_vec(),
    }
}

/// Node names and their clusters.
fn topology(rng: &mut Rng, mode: Mode, elected: usize) -> (Vec<String>, Vec<String>) {
    match mode {
        Mode::Single { count } => (
            (0..count)
                .map(|i| format!("single-{}", letter(i)))
                .collect(),
            vec![CLUSTERS[0].to_string(); count],
        ),
        Mode::Elected => {
            let clusters = 2 + rng.below(2) as usize;
            (0..elected)
                .map(|i| {
                    let c = CLUSTERS[i % clusters];
                    (format!("{c}-{}", letter(i / clusters)), c.to_string())
                })
                .unzip()
        }
    }
}

fn letter(i: usize) -> char {
    (b'a' + i as u8) as char
}

/// The source blocks: 1–3 streams of 2h blocks with gaps, each with the world time a sidecar
/// uploads it (0: in the bucket from the start; later ones arrive during the fault phase, so
/// there is compaction work while faults strike), and every sample they hold.
fn seed_blocks(
    rng: &mut Rng,
    scratch: &std::path::Path,
    upload_until_ms: i64,
    busy: bool,
) -> (Vec<(i64, SourceBlock)>, Samples) {
    let mut blocks = Vec::new();
    let start = (WALL0 - 40 * 24 * 3_600_000) / BLOCK_MS * BLOCK_MS;
    let streams = if busy { 3 } else { 1 + rng.below(3) };
    for stream in 0..streams {
        let initial = 3 + rng.below(8) as usize;
        let later = if busy { 8 + rng.below(9) } else { rng.below(9) } as usize;
        let generated = generate_stream(
            &scratch.join("sources"),
            &format!("c{stream}"),
            start + BLOCK_MS * rng.below(6) as i64,
            initial + later,
            rng.next_u64(),
        )
        .expect("generate source blocks");
        let mut times: Vec<i64> = (0..later)
            .map(|_| 5_000 + rng.below((upload_until_ms - 10_000).max(1) as u64) as i64)
            .collect();
        times.sort_unstable();
        let at = std::iter::repeat_n(0, initial).chain(times);
        for (i, (b, at)) in generated.into_iter().zip(at).enumerate() {
            if i < 2 || !rng.chance(0.15) {
                blocks.push((at, b));
            }
        }
    }
    blocks.sort_by_key(|(at, b)| (*at, b.meta.ulid));
    let files: Vec<_> = blocks
        .iter()
        .map(|(_, b)| (b.meta.ulid, b.files.clone()))
        .collect();
    let expected = read_samples(&scratch.join("expected"), &files).expect("read source samples");
    let _ = std::fs::remove_dir_all(scratch.join("sources"));
    (blocks, expected)
}

/// A sidecar uploads block `b` at world time `now`, in the shipper's order (meta.json last).
fn upload_source(store: &mut StoreModel, b: &SourceBlock, now: i64) {
    let from = Origin {
        node: SIDECAR,
        epoch: 0,
        at_ms: WALL0 + now,
    };
    let (meta, rest): (Vec<_>, Vec<_>) = b.files.iter().partition(|(rel, _)| rel == META_FILENAME);
    for (rel, bytes) in rest.into_iter().chain(meta) {
        let path = format!("{}/{rel}", b.meta.ulid);
        store
            .put(
                from,
                &path,
                bytes.clone(),
                PutMode::Overwrite,
                Default::default(),
            )
            .expect("a sidecar upload");
    }
}

fn cycle_config(rng: &mut Rng) -> CycleConfig {
    CycleConfig {
        view: ViewConfig {
            min_time: i64::MIN,
            max_time: i64::MAX,
            consistency_delay_ms: 0,
            delete_delay_ms: rng.below(120_000) as i64,
            replica_labels: vec![],
        },
        wait: true,
        wait_interval_ms: 10_000 + rng.below(50_000) as i64,
        concurrency: 1 + rng.below(2) as usize,
        ranges: compaction_ranges(3).expect("level 3 exists"),
        vertical: false,
        index_size_limit_bytes: None,
        retention_ms: [0; 3],
        partial_upload_threshold_ms: 120_000,
    }
}

/// A node's clocks: arbitrary monotonic offsets; with skew, rates up to 4% off and wall
/// offsets up to a minute.
fn clock(rng: &mut Rng, skew: bool) -> Clock {
    let (rate, wall_jitter) = if skew {
        (
            0.96 + rng.next_f64() * 0.08,
            rng.below(120_000) as i64 - 60_000,
        )
    } else {
        (1.0, rng.below(1_000) as i64 - 500)
    };
    Clock {
        mono_offset_ms: rng.below(1 << 40) as i64,
        wall_offset_ms: WALL0 + wall_jitter,
        rate,
    }
}

fn leader_config(name: &str, mode: Mode, bug: Option<Bug>) -> LeaderConfig {
    LeaderConfig {
        node: name.to_string(),
        election: (mode == Mode::Elected).then(|| ELECTION.to_string()),
        lease_ttl_ms: 15_000,
        op_timeout_ms: 5_000,
        takeover_delay_ms: if bug == Some(Bug::NoTakeoverDelay) {
            0
        } else {
            10_000
        },
        commit_window_ms: 5_000,
        safety: Safety {
            lease_deadline: bug != Some(Bug::NoDeadline),
            fence: bug != Some(Bug::NoFence),
        },
    }
}

/// True when nothing is left to do: no partial, marked or covered block, and the planner has
/// no work in any group.
fn bucket_done(store: &StoreModel, cycle: &CycleConfig) -> bool {
    let visible = visible_blocks(store);
    let dirs: BTreeSet<BlockId> = store
        .list("")
        .into_iter()
        .filter_map(|(p, _)| compactd::bucket::layout::block_of(p))
        .collect();
    if dirs.len() != visible.len() || visible.values().any(|(_, marked)| *marked) {
        return false;
    }
    // A block whose sources another block holds is garbage the compactor has yet to collect
    // (the planner alone would call the overlap "nothing to do").
    let covered = visible.values().any(|(a, _)| {
        visible.values().any(|(b, _)| {
            a.ulid != b.ulid
                && a.compaction
                    .sources
                    .iter()
                    .all(|s| b.compaction.sources.contains(s))
        })
    });
    if covered {
        return false;
    }
    let no_compact = BTreeSet::new();
    let groups = group_blocks(visible.values().map(|(m, _)| m));
    for (_, blocks) in groups {
        let input = PlanInput {
            blocks: &blocks,
            no_compact: &no_compact,
            ranges: &cycle.ranges,
            vertical: cycle.vertical,
            index_size_limit_bytes: cycle.index_size_limit_bytes,
        };
        if plan(&input) != GroupPlan::Nothing {
            return false;
        }
    }
    true
}

fn peer_name(peer: Peer) -> &'static str {
    match peer {
        Peer::Etcd => ETCD,
        Peer::Store => STORE,
    }
}

impl Run {
    fn due_heals(&mut self, now: i64) -> Vec<Heal> {
        let (due, rest): (Vec<_>, Vec<_>) = self.heals.drain(..).partition(|(t, _)| *t <= now);
        self.heals = rest;
        due.into_iter().map(|(_, h)| h).collect()
    }

    /// Whether an armed fault strikes now, `waited` ms after it was armed: a lease revoke
    /// when the leader has just sent a commit (it is in flight), a pause of the leader when
    /// its driver holds mutations not yet sent; either after a minute regardless.
    fn strikes(&mut self, fault: &Fault, waited: i64) -> bool {
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

    /// Starts timing a failover if `node` leads now.
    fn leader_lost(&mut self, node: &str, now: i64) {
        let mut w = self.world.borrow_mut();
        if let (Some(epoch), None) = (w.nodes[node].leading, w.stats.leader_lost_at) {
            w.stats.leader_lost_at = Some((now, epoch));
            self.lost = Some(node.to_string());
        }
    }

    fn apply(&mut self, sim: &mut turmoil::Sim<'_>, fault: Fault, now: i64) {
        match fault {
            Fault::Crash { target, ms } => {
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                self.leader_lost(&node, now);
                sim.crash(node.as_str());
                self.world
                    .borrow_mut()
                    .nodes
                    .get_mut(&node)
                    .expect("node")
                    .leading = None;
                self.log(now, &format!("crash {node} for {ms}ms"));
                self.heals.push((now + ms, Heal::Restart(node)));
            }
            Fault::Pause { target, ms } => {
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                if ms > 15_000 {
                    self.leader_lost(&node, now);
                }
                self.world
                    .borrow_mut()
                    .nodes
                    .get_mut(&node)
                    .expect("node")
                    .paused_until_ms = now + ms;
                self.log(now, &format!("pause {node} for {ms}ms"));
                self.heals.push((now + ms, Heal::Resume(node)));
            }
            Fault::Partition {
                target,
                peer,
                way,
                ms,
            } => {
                if peer == Peer::Etcd && !self.etcd {
                    return;
                }
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                if peer == Peer::Etcd && ms > 15_000 && way != Way::In {
                    self.leader_lost(&node, now);
                }
                let p = peer_name(peer);
                for n in self.cluster_of(&node) {
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
                if peer == Peer::Etcd && !self.etcd {
                    return;
                }
                let Some(node) = self.resolve(sim, target) else {
                    return;
                };
                let p = peer_name(peer);
                for n in self.cluster_of(&node) {
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
                    if self.etcd {
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
                if !self.etcd || !sim.is_host_running(ETCD) {
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
            Fault::RevokeLease { ms, hold_ms } => {
                let Some(node) = self.world.borrow().leader().map(str::to_string) else {
                    return;
                };
                self.leader_lost(&node, now);
                sim.partition(node.as_str(), ETCD);
                let heal = Heal::Repair {
                    node: node.clone(),
                    peer: ETCD,
                    way: Way::Both,
                };
                self.heals.push((now + ms, heal));
                sim.hold(node.as_str(), STORE);
                let heal = Heal::Release {
                    node: node.clone(),
                    peer: STORE,
                };
                self.heals.push((now + hold_ms, heal));
                let mut w = self.world.borrow_mut();
                let prefix = format!("{ELECTION}/");
                let keys = match w.etcd.execute(now, &CoordOp::Observe { prefix }) {
                    Answer::Now(compactd::core::coord::CoordResult::Observed { keys, .. }) => keys,
                    _ => Vec::new(),
                };
                for k in keys.iter().filter(|k| k.value == node) {
                    let hex = k.key.rsplit('/').next().unwrap_or_default();
                    if let Ok(lease) = i64::from_str_radix(hex, 16) {
                        let op = CoordOp::Resign {
                            key: None,
                            lease: LeaseId(lease),
                        };
                        w.etcd.execute(now, &op);
                    }
                }
                w.log(now, "world", &format!("revoke {node}'s lease, cut it from etcd for {ms}ms, hold its store link {hold_ms}ms"));
            }
        }
    }

    fn heal(&mut self, sim: &mut turmoil::Sim<'_>, heal: Heal, now: i64) {
        match heal {
            Heal::Restart(node) => {
                let exited = self.world.borrow().nodes[&node].exited.is_some();
                if !exited && !sim.is_host_running(node.as_str()) {
                    self.log(now, &format!("restart {node}"));
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
                let peers: &[&str] = if self.etcd { &[STORE, ETCD] } else { &[STORE] };
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
                    self.log(now, "etcd starts again");
                    sim.bounce(ETCD);
                }
            }
            Heal::StoreCalm => self.world.borrow_mut().store_faults = StoreFaults::default(),
        }
        if let Some(node) = self.lost.clone() {
            let mut w = self.world.borrow_mut();
            let still = w.nodes[&node].leading;
            let superseded = w.stats.max_elected > still.unwrap_or(0);
            if still.is_some() && !superseded && w.stats.leader_lost_at.is_some() {
                // The leader it was timed for kept its term and nobody was elected: no
                // failover happened.
                w.stats.leader_lost_at = None;
                self.lost = None;
            }
        }
    }
}
