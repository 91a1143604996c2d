//! One simulated world per (seed, scenario, election, bug): turmoil hosts for etcd (when it
//! elects the leader), the object store and 3–5 compactor nodes in 2–3 clusters (or single
//! instances), a bucket of real generated blocks, the scenario's faults applied and healed
//! between turmoil steps, then a wait for a leader and a finished compaction, and the
//! end-of-world checks.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use compactd::core::cycle::CycleConfig;
use compactd::core::leader::Provider;
use compactd::rng::Rng;
use compactd::tsdb::block_id::BlockId;
use compactd::units::MINUTE_MS;

use crate::bug::Bug;
use crate::checker::{
    balance, finished, unfinished, Checker, Invariant, Keying, UnitRules, Violation, SIDECAR,
};
use crate::election::Coordinator;
use crate::etcd::EtcdModel;
use crate::failover;
use crate::injector::Injector;
use crate::log::EventLog;
use crate::net::{Mailbox, ETCD, STORE};
use crate::scenario::{Ownership, Scenario};
use crate::setup::{
    clock, cycle_config, leader_config, seed_blocks, seed_stream_blocks, topology, upload_source,
    ELECTION, PREFIX,
};
use crate::shared::{NodeState, Shared, Stats, StoreFaults, Timing, World, WALL0};
use crate::store::StoreModel;

/// The turmoil tick: network delivery granularity (timers inside a host are exact).
const TICK_MS: u64 = 25;
/// A leader must exist this long after the faults heal.
const LEADER_BOUND_MS: i64 = MINUTE_MS;
/// Compaction must finish this long after the faults heal.
const FINISH_BOUND_MS: i64 = 20 * MINUTE_MS;
/// The bucket must stay finished this long before the world ends (in-flight work lands).
const SETTLE_MS: i64 = 20_000;
/// Slack of the balance check's wait: a pass of the old holder to end, the hand-over's and
/// the takeover's round trips, a listing of the streams.
const BALANCE_SLACK_MS: i64 = 30_000;

/// How long the members of a stream world must stay unchanged, after the faults healed,
/// before the streams must be shared out evenly: the rebalance delay, the takeover delay and
/// slack (from the settings, not from the core). `None` in bucket worlds.
fn balance_settle_ms(leader: &compactd::core::leader::LeaderConfig) -> Option<i64> {
    let streams = leader.streams.as_ref()?;
    Some(streams.rebalance_delay_ms + leader.takeover_delay_ms + BALANCE_SLACK_MS)
}

/// The bucket's members (the names under its election, as etcd holds them) and since when
/// they are what they are.
#[derive(Debug, Default)]
struct Members {
    names: Option<BTreeSet<String>>,
    since_ms: i64,
}

impl Members {
    /// Looks at the members at `now`; the first look counts from `since_ms`.
    fn look(&mut self, w: &Shared, now: i64) {
        let names: BTreeSet<String> = w
            .etcd
            .keys_under(&format!("{ELECTION}/"))
            .into_iter()
            .map(|k| k.value)
            .collect();
        if self.names.as_ref().is_some_and(|n| *n != names) {
            self.since_ms = now;
        }
        self.names = Some(names);
    }
}

/// Stream worlds that ended at rest: the streams must be shared out evenly among the members
/// ([`balance::unbalanced`]).
fn check_balance(w: &mut Shared, members: &BTreeSet<String>, cycle: &CycleConfig, now: i64) {
    let streams = balance::streams_in(&w.store, &cycle.view.replica_labels);
    let owned: BTreeMap<String, usize> = w
        .nodes
        .iter()
        .map(|(name, n)| (name.clone(), n.streams_led.len()))
        .collect();
    if let Some(text) = balance::unbalanced(streams.len(), members, &owned) {
        w.checker.violate(Invariant::Unbalanced, now, text);
    }
}

/// Units named in a liveness violation; the count says how many were left.
const UNFINISHED_SHOWN_MAX: usize = 5;

/// The units (streams, or the bucket leader's objects) with work left, and what is left in
/// each: a few, and how many in all.
fn describe_unfinished(left: &BTreeMap<crate::checker::Unit, String>) -> String {
    let shown: Vec<String> = left
        .iter()
        .take(UNFINISHED_SHOWN_MAX)
        .map(|(unit, what)| format!("{unit}: {what}"))
        .collect();
    format!("{} units not finished: {}", left.len(), shown.join("; "))
}

/// What one world did and found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The scenario.
    pub scenario: Scenario,
    /// Who elects the leader (`--election`; single instances ignore it).
    pub election: Provider,
    /// The mechanism switched off.
    pub bug: Option<Bug>,
    /// The event-log hash (same seed, scenario, election, bug and build: same hash).
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

/// Runs one world, elected by `election`; `keep_log` keeps the event timeline. The draws
/// do not depend on `election`: a bucket world is its etcd twin's schedule without etcd.
pub fn run_world(
    seed: u64,
    scenario: Scenario,
    election: Provider,
    bug: Option<Bug>,
    keep_log: bool,
) -> Outcome {
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
    let (sources, expected) = match plan.ownership {
        Ownership::Bucket => seed_blocks(&mut rng, scratch.path(), plan.heal_at_ms, plan.busy),
        Ownership::Stream => seed_stream_blocks(&mut rng, scratch.path(), plan.uploads_until_ms),
    };
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
    let cycle = cycle_config(&mut rng);
    let ownership = plan.ownership;
    let coordinator = Coordinator::of(election, plan.mode);
    // Per-stream ownership needs etcd: under the bucket provider one leader owns the
    // bucket, and the orders are kept over the whole bucket.
    let keying = match (plan.ownership, coordinator) {
        (Ownership::Stream, Coordinator::Etcd) => Keying::Units(UnitRules {
            replica_labels: cycle.view.replica_labels.clone(),
            prefix: PREFIX.to_string(),
        }),
        _ => Keying::Bucket,
    };
    let mut checker = Checker::new(plan.strict, keying);
    checker.skip_existing(&store);
    let mut nodes = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let clock = clock(&mut rng, plan.skew);
        let leader = leader_config(name, coordinator, bug, ownership);
        nodes.insert(
            name.clone(),
            NodeState {
                cluster: clusters[i].clone(),
                clock,
                start_ms: plan.starts_ms.get(i).copied().unwrap_or(0),
                commits_sent: 0,
                commits_by_epoch: BTreeMap::new(),
                streams_led: BTreeMap::new(),
                compacting: BTreeSet::new(),
                slow_until_ms: 0,
                slow_by_ms: 0,
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
    if coordinator.hosts_etcd() {
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
    let (failover_bound, balance_settle) = {
        let w = world.borrow();
        let first = w.nodes.values().next().expect("a node");
        (
            failover::Bounds::of(&first.leader),
            balance_settle_ms(&first.leader),
        )
    };
    let mut run = Injector::new(world.clone(), rng, names, latency_max_ms, coordinator);
    let mut faults = plan.faults.into_iter().peekable();
    let heal_at = plan.heal_at_ms;
    let elects = coordinator.elects();
    let (mut healed, mut leader_ok, mut done_since) = (false, !elects, None::<i64>);
    let mut now = 0;
    let mut members = Members {
        names: None,
        since_ms: heal_at,
    };
    let mut at_rest = false;
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
            run.inject(&mut sim, f, now);
        }
        run.strike_armed(&mut sim, now, heal_at);
        failover::check(&world, now, failover_bound, |n| sim.is_host_running(n));
        if !healed && now >= heal_at {
            healed = true;
            run.heal_all(&mut sim, now);
        } else {
            run.heal_due(&mut sim, now);
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
        members.look(&w, now);
        if finished(&w.store, &cycle) {
            let since = *done_since.get_or_insert(now);
            // Stream worlds also wait for their members to stay unchanged long enough.
            at_rest = balance_settle.is_some_and(|ms| now - members.since_ms >= ms);
            if now - since >= SETTLE_MS && (balance_settle.is_none() || at_rest) {
                break;
            }
        } else {
            done_since = None;
        }
        if now > heal_at + FINISH_BOUND_MS {
            let left = unfinished(&w.store, &cycle);
            drop(w);
            let text = match done_since {
                Some(_) => format!(
                    "the members still change {} min after the faults healed",
                    FINISH_BOUND_MS / MINUTE_MS
                ),
                None => format!(
                    "compaction not finished {} min after the faults healed: {}",
                    FINISH_BOUND_MS / MINUTE_MS,
                    describe_unfinished(&left)
                ),
            };
            at_rest = false;
            world
                .borrow_mut()
                .checker
                .violate(Invariant::Liveness, now, text);
            break;
        }
    }
    drop(sim);
    let mut w = world.borrow_mut();
    if let (true, Some(names)) = (at_rest, &members.names) {
        check_balance(&mut w, names, &cycle, now);
    }
    let ids: BTreeSet<BlockId> = sources.iter().map(|(_, b)| b.meta.ulid).collect();
    let Shared {
        checker,
        store,
        etcd,
        ..
    } = &mut *w;
    checker.finish_units(etcd);
    checker.finish(store, &ids, &expected, &scratch.path().join("final"), now);
    Outcome {
        seed,
        scenario,
        election,
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
