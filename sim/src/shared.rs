//! The state every host of one world shares: the etcd and store models (they outlive their
//! hosts' restarts, as data on disk does), the mailbox, each node's clock and pause, the
//! event log, the checker and the statistics. All hosts run on one thread, in turmoil's
//! order; nobody holds the borrow across an `.await`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;

use compactd::core::cycle::CycleConfig;
use compactd::core::leader::LeaderConfig;
use compactd::rng::Rng;

use crate::bug::Bug;
use crate::checker::Checker;
use crate::clock::Clock;
use crate::etcd::EtcdModel;
use crate::failover::LostStreams;
use crate::log::EventLog;
use crate::net::Mailbox;
use crate::store::StoreModel;

/// Unix milliseconds at world time 0 (2026-01-01T00:00:00Z); the store's clock.
pub const WALL0: i64 = 1_767_225_600_000;

/// The world, shared by its hosts.
pub type World = Rc<RefCell<Shared>>;

/// Timing every node uses (production's defaults unless a scenario says otherwise).
#[derive(Clone, Debug)]
pub struct Timing {
    /// `--objstore.op-timeout`; also how late a request may reach the store (assumption (b)).
    pub op_timeout_ms: i64,
    /// The driver's timeout for an etcd request (production: TTL/5, at least 1 s).
    pub coord_timeout_ms: i64,
    /// Longest wait between the core issuing a store request and the driver sending it
    /// (task scheduling, a free connection).
    pub send_delay_max_ms: i64,
    /// Longest simulated compaction time of one job.
    pub compact_max_ms: i64,
}

/// One compactor node.
#[derive(Clone, Debug)]
pub struct NodeState {
    /// Its cluster.
    pub cluster: String,
    /// Its clocks.
    pub clock: Clock,
    /// When its first process starts (world ms).
    pub start_ms: i64,
    /// Paused until this world time (the process is stopped, its requests stay in flight).
    pub paused_until_ms: i64,
    /// How many times its process started.
    pub starts: u32,
    /// Its process exited with this code (it is not restarted).
    pub exited: Option<i32>,
    /// Commit points its drivers sent (meta.json, marks, deletes), over all its processes.
    pub commits_sent: u64,
    /// Commit points its drivers sent, by the epoch of their permit (a stream's seat commits
    /// under its key's create revision), over all its processes.
    pub commits_by_epoch: BTreeMap<u64, u64>,
    /// The streams its process leads and the epoch of each, as its `Leading` and
    /// `SteppedDown` events of each stream said.
    pub streams_led: BTreeMap<u64, u64>,
    /// The streams (stream worlds) of the compaction jobs its process is running: blocks
    /// downloading or being compacted.
    pub compacting: BTreeSet<u64>,
    /// Its compactions whose blocks arrive before this world time take `slow_by_ms` longer
    /// (an overloaded node).
    pub slow_until_ms: i64,
    /// How much longer.
    pub slow_by_ms: i64,
    /// Mutations its driver holds, issued by the core but not yet sent.
    pub unsent_mutations: usize,
    /// The epoch it leads, if it does.
    pub leading: Option<u64>,
    /// Its compaction settings.
    pub cycle: CycleConfig,
    /// Its leadership settings.
    pub leader: LeaderConfig,
}

/// Per-request fault probabilities of the store.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreFaults {
    /// Refused with a 5xx before it is applied.
    pub unavailable: f64,
    /// Applied, then the reply is lost.
    pub timeout: f64,
}

/// What the world counts.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Failover durations (ms): from a fault that took the leader out until a node leads
    /// again.
    pub failovers: Vec<i64>,
    /// Those of them the failover bound applied to (see [`LostLeader::judged`]).
    pub bounded_failovers: Vec<i64>,
    /// The leader taken out by a fault, while no node leads again yet.
    pub leader_lost: Option<LostLeader>,
    /// Per-stream failover durations (ms), stream worlds: from a fault that took a stream's
    /// holder out until a node leads the stream again; one entry per stream.
    pub stream_failovers: Vec<i64>,
    /// Those of them the failover bound applied to.
    pub bounded_stream_failovers: Vec<i64>,
    /// The streams a fault took out with their holders, while some are not led again yet.
    pub streams_lost: Option<LostStreams>,
    /// The highest epoch any node was elected for.
    pub max_elected: u64,
    /// Requests that reached the store too late and were dropped.
    pub late_requests: u64,
    /// Mutations the drivers refused because their permit had expired.
    pub permit_refusals: u64,
    /// Compaction jobs run by the block engine.
    pub compactions: u64,
    /// Store requests answered with an injected fault.
    pub store_faults: u64,
    /// Leadership terms begun.
    pub terms: u64,
}

/// A leader taken out by a fault (killed, paused, or cut from etcd in either direction):
/// the failover being timed, until a node leads again.
#[derive(Clone, Debug)]
pub struct LostLeader {
    /// When (world ms).
    pub at_ms: i64,
    /// The epoch it led.
    pub epoch: u64,
    /// Who.
    pub node: String,
    /// True while the failover bound applies: the fault left another node able to take
    /// over (running, unpaused, reaching etcd and the store), and no other fault struck
    /// since.
    pub judged: bool,
}

/// Everything one world's hosts share.
pub struct Shared {
    /// The timing.
    pub timing: Timing,
    /// The mechanism switched off, if any.
    pub bug: Option<Bug>,
    /// The etcd model.
    pub etcd: EtcdModel,
    /// How many times the etcd host started.
    pub etcd_starts: u32,
    /// The object store model.
    pub store: StoreModel,
    /// The store's fault rates now.
    pub store_faults: StoreFaults,
    /// Randomness of the store's faults and the drivers' delays (drawn in turmoil's order).
    pub rng: Rng,
    /// Messages in flight.
    pub mailbox: Mailbox,
    /// The compactor nodes by name.
    pub nodes: BTreeMap<String, NodeState>,
    /// The event log.
    pub log: EventLog,
    /// The checker.
    pub checker: Checker,
    /// The counts.
    pub stats: Stats,
    /// A scratch directory for the block engine.
    pub scratch: PathBuf,
}

impl Shared {
    /// Logs `what` of `who` at `at_ms`.
    pub fn log(&mut self, at_ms: i64, who: &str, what: &str) {
        self.log.push(at_ms, who, what);
    }

    /// The node leading now, if exactly one does.
    pub fn leader(&self) -> Option<&str> {
        let mut leading = self.nodes.iter().filter(|(_, n)| n.leading.is_some());
        match (leading.next(), leading.next()) {
            (Some((name, _)), None) => Some(name),
            _ => None,
        }
    }
}

/// World milliseconds now, inside a host.
pub fn sim_ms() -> i64 {
    turmoil::sim_elapsed().map_or(0, |d| d.as_millis() as i64)
}
