//! Conformance of the etcd model with a real etcd: each scenario is written once against
//! [`Etcd`] and runs on the model ([`Model`], whose clock moves only when the scenario
//! sleeps or waits) and on a real etcd 3.4 through the production adapter ([`Real`], a fresh
//! etcd per scenario, started by the integration tests' harness). The two result sequences
//! must be equal once normalised: lease ids become `L0`, `L1`, ... in grant order (also
//! inside keys), revisions become offsets from the scenario's first range, and failure texts
//! keep etcd's error message but not the endpoint, nor the text of transport errors.
//!
//! Timing: the model is exact, etcd is not (it checks lease expiry every 500 ms, then revokes
//! through raft; a restart takes real time the model does not see), so every check happens
//! at least half a second away from the moment it depends on.
//!
//! Without etcd the real half is skipped (after printing "SKIPPED"); under CI=true a missing
//! etcd or etcdctl fails the test.

// The integration tests' harness, shared with the compactd crate's tests; this binary uses
// part of it.
#[allow(dead_code)]
#[path = "../../tests/common/etcd.rs"]
mod etcd_harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compactd::core::coord::{CoordOp, CoordResult, ElectionKey, LeaseId};
use compactd::election::etcd::{EtcdConfig, EtcdCoordinator};
use compactd_sim::etcd::{Answer, EtcdModel, WatchId, ENDPOINT};

/// Keys of the election live under this prefix.
const PREFIX: &str = "conformance/election/";
/// The bound of every real request but `WaitDelete`.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a started wait gets to open its watch before the scenario goes on.
const WAIT_OPEN_MS: i64 = 200;
/// How long a restarted etcd may take to answer again.
const RESTART_MAX: Duration = Duration::from_secs(20);
/// The model's clock at the start of a scenario (any value works).
const MODEL_START_MS: i64 = 1_000_000;

/// True when running in CI, where nothing may be skipped.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The path of an external tool, or `None` (with a loud message) outside CI. Under CI=true a
/// missing tool fails the test. (The harness calls it as `super::require_tool`; the same as
/// `tests/common/mod.rs` in the compactd crate.)
fn require_tool(name: &str, env_override: Option<&str>) -> Option<PathBuf> {
    let path = env_override
        .and_then(std::env::var_os)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            let dirs = std::env::var_os("PATH")?;
            std::env::split_paths(&dirs)
                .map(|d| Path::new(&d).join(name))
                .find(|p| p.is_file())
        });
    if path.is_none() {
        let msg = format!("{name} is not installed (scripts/test.sh installs it)");
        assert!(!in_ci(), "CI=true and {msg}");
        eprintln!("SKIPPED: {msg}");
    }
    path
}

/// What a scenario can do to an etcd.
trait Etcd {
    /// Executes one operation and waits for its result (a `WaitDelete` waits until the key
    /// is deleted or its wait ends).
    fn exec(&mut self, op: CoordOp) -> CoordResult;
    /// Starts a `WaitDelete` and lets [`WAIT_OPEN_MS`] pass so that its watch is open;
    /// returns a handle for [`Etcd::finish_wait`].
    fn start_wait(&mut self, op: CoordOp) -> usize;
    /// Waits for the result of a started `WaitDelete`.
    fn finish_wait(&mut self, wait: usize) -> CoordResult;
    /// Lets `ms` milliseconds pass.
    fn sleep(&mut self, ms: i64);
    /// Compacts the history up to the current revision (physically, in etcd).
    fn compact_to_current(&mut self);
    /// Stops etcd, lets `down_ms` pass, starts it again (same data) and waits until it
    /// answers.
    fn restart(&mut self, down_ms: i64);
    /// The endpoint named in `Failed` texts.
    fn endpoint(&self) -> String;
}

/// The model, on its own clock.
struct Model {
    model: EtcdModel,
    now_ms: i64,
    /// Answers of pending watches, by watch.
    answered: BTreeMap<WatchId, CoordResult>,
    /// Started waits: answered at once, or pending.
    waits: Vec<Answer>,
}

impl Model {
    fn new(seed: u64) -> Model {
        Model {
            model: EtcdModel::new(seed),
            now_ms: MODEL_START_MS,
            answered: BTreeMap::new(),
            waits: Vec::new(),
        }
    }

    fn collect(&mut self) {
        self.answered.extend(self.model.poll_watches(self.now_ms));
    }

    /// Jumps from event to event until the watch is answered.
    fn wait_for(&mut self, watch: WatchId) -> CoordResult {
        loop {
            self.collect();
            if let Some(result) = self.answered.remove(&watch) {
                return result;
            }
            let next = self
                .model
                .next_event_at()
                .expect("a pending watch has a deadline");
            self.now_ms = self.now_ms.max(next);
        }
    }
}

impl Etcd for Model {
    fn exec(&mut self, op: CoordOp) -> CoordResult {
        let answer = self.model.execute(self.now_ms, &op);
        self.collect();
        match answer {
            Answer::Now(result) => result,
            Answer::Pending(watch) => self.wait_for(watch),
        }
    }

    fn start_wait(&mut self, op: CoordOp) -> usize {
        let answer = self.model.execute(self.now_ms, &op);
        self.waits.push(answer);
        self.sleep(WAIT_OPEN_MS);
        self.waits.len() - 1
    }

    fn finish_wait(&mut self, wait: usize) -> CoordResult {
        match self.waits[wait].clone() {
            Answer::Now(result) => result,
            Answer::Pending(watch) => self.wait_for(watch),
        }
    }

    fn sleep(&mut self, ms: i64) {
        self.now_ms += ms;
        self.collect();
    }

    fn compact_to_current(&mut self) {
        let revision = self.model.revision();
        self.model.compact(revision).expect("compact");
    }

    fn restart(&mut self, down_ms: i64) {
        // Down: the model's clock moves without it (no expiry, no watch deadline).
        self.now_ms += down_ms;
        self.model.restart(self.now_ms);
        self.collect();
    }

    fn endpoint(&self) -> String {
        ENDPOINT.into()
    }
}

/// A real etcd, through the production adapter.
struct Real {
    etcd: etcd_harness::Etcd,
    rt: tokio::runtime::Runtime,
    coordinator: Arc<EtcdCoordinator>,
    waits: Vec<Option<tokio::task::JoinHandle<CoordResult>>>,
}

impl Real {
    /// A fresh etcd, or `None` when etcd or etcdctl is not installed (outside CI).
    fn start() -> Option<Real> {
        let etcd = etcd_harness::Etcd::start()?;
        etcd.etcdctl()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let config = EtcdConfig {
            endpoints: vec![etcd.endpoint()],
            username: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            connect_timeout: Duration::from_secs(2),
        };
        let coordinator = rt
            .block_on(EtcdCoordinator::connect(&config))
            .expect("connect");
        Some(Real {
            etcd,
            rt,
            coordinator: Arc::new(coordinator),
            waits: Vec::new(),
        })
    }
}

impl Etcd for Real {
    fn exec(&mut self, op: CoordOp) -> CoordResult {
        self.rt.block_on(self.coordinator.execute(&op, TIMEOUT))
    }

    fn start_wait(&mut self, op: CoordOp) -> usize {
        let coordinator = self.coordinator.clone();
        let task = self
            .rt
            .spawn(async move { coordinator.execute(&op, TIMEOUT).await });
        self.waits.push(Some(task));
        self.sleep(WAIT_OPEN_MS);
        self.waits.len() - 1
    }

    fn finish_wait(&mut self, wait: usize) -> CoordResult {
        let task = self.waits[wait].take().expect("a wait is finished once");
        self.rt.block_on(task).expect("the wait task")
    }

    fn sleep(&mut self, ms: i64) {
        let ms = u64::try_from(ms).expect("a positive time");
        // Inside the runtime, so that started waits go on.
        self.rt
            .block_on(async move { tokio::time::sleep(Duration::from_millis(ms)).await });
    }

    fn compact_to_current(&mut self) {
        let revision = match self.exec(CoordOp::Observe {
            prefix: PREFIX.into(),
        }) {
            CoordResult::Observed { revision, .. } => revision,
            other => panic!("observe before compacting: {other:?}"),
        };
        let mut etcdctl = self.etcd.etcdctl().expect("etcdctl");
        let out = etcdctl
            .args(["compact", "--physical", &revision.to_string()])
            .output()
            .expect("etcdctl compact");
        assert!(out.status.success(), "etcdctl compact: {out:?}");
    }

    fn restart(&mut self, down_ms: i64) {
        self.etcd.stop();
        std::thread::sleep(Duration::from_millis(
            down_ms.try_into().expect("a positive time"),
        ));
        self.etcd.start_again();
        let started = Instant::now();
        let probe = CoordOp::Observe {
            prefix: PREFIX.into(),
        };
        while matches!(self.exec(probe.clone()), CoordResult::Failed(_)) {
            assert!(
                started.elapsed() < RESTART_MAX,
                "etcd does not answer after a restart"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn endpoint(&self) -> String {
        self.etcd.endpoint()
    }
}

/// Runs a scenario on one etcd and records its normalised results.
struct Recorder<'a> {
    etcd: &'a mut dyn Etcd,
    /// Granted leases, in grant order: `L0`, `L1`, ...
    leases: Vec<LeaseId>,
    /// The revision of the scenario's first range.
    base: i64,
    log: Vec<String>,
}

impl<'a> Recorder<'a> {
    fn new(etcd: &'a mut dyn Etcd) -> Recorder<'a> {
        let op = CoordOp::Observe {
            prefix: PREFIX.into(),
        };
        let result = etcd.exec(op.clone());
        let CoordResult::Observed { revision, .. } = result else {
            panic!("the first observe: {result:?}");
        };
        let mut recorder = Recorder {
            etcd,
            leases: Vec::new(),
            base: revision,
            log: Vec::new(),
        };
        recorder.record(&op, &result);
        recorder
    }

    fn lease_name(&self, lease: LeaseId) -> String {
        match self.leases.iter().position(|&l| l == lease) {
            Some(i) => format!("L{i}"),
            None => format!("{lease:?}"),
        }
    }

    /// A key with lease ids (in hex, as in election keys) replaced by their names.
    fn key_name(&self, key: &str) -> String {
        let mut key = key.to_string();
        for (i, lease) in self.leases.iter().enumerate() {
            key = key.replace(&format!("{:x}", lease.0), &format!("L{i}"));
        }
        key
    }

    fn rev(&self, revision: i64) -> String {
        format!("+{}", revision - self.base)
    }

    fn normalise(&self, result: &CoordResult) -> String {
        match result {
            CoordResult::Granted { lease, ttl_secs } => {
                format!("Granted({}, ttl {ttl_secs})", self.lease_name(*lease))
            }
            CoordResult::Campaigned { create_revision } => {
                format!("Campaigned({})", self.rev(*create_revision))
            }
            CoordResult::Observed { keys, revision } => {
                let keys: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let rev = self.rev(k.create_revision);
                        format!("{}@{rev}={}", self.key_name(&k.key), k.value)
                    })
                    .collect();
                format!("Observed([{}] at {})", keys.join(", "), self.rev(*revision))
            }
            CoordResult::Failed(e) => {
                let text = e.message.replace(&self.etcd.endpoint(), "<etcd>");
                // etcd's own errors must match, kind and text; transport errors differ in
                // their text.
                match text.split_once("<etcd>: ") {
                    Some((_, reason)) if reason.contains("etcdserver: ") => {
                        format!("Failed({:?}: {text})", e.kind)
                    }
                    Some((head, _)) => format!("Failed({head}<etcd>: <transport>)"),
                    None => format!("Failed({text})"),
                }
            }
            other => format!("{other:?}"),
        }
    }

    fn record(&mut self, op: &CoordOp, result: &CoordResult) {
        let line = format!("{}: {}", op.name(), self.normalise(result));
        self.log.push(line);
    }

    fn exec(&mut self, op: CoordOp) -> CoordResult {
        let result = self.etcd.exec(op.clone());
        self.record(&op, &result);
        result
    }

    fn note(&mut self, what: &str) {
        self.log.push(format!("-- {what}"));
    }

    fn grant(&mut self, ttl_secs: i64) -> LeaseId {
        let result = self.etcd.exec(CoordOp::Grant { ttl_secs });
        let CoordResult::Granted { lease, .. } = result else {
            panic!("grant: {result:?}; so far: {:#?}", self.log);
        };
        self.leases.push(lease);
        self.record(&CoordOp::Grant { ttl_secs }, &result);
        lease
    }

    fn keep_alive(&mut self, lease: LeaseId) -> i64 {
        match self.exec(CoordOp::KeepAlive { lease }) {
            CoordResult::KeptAlive { ttl_secs } => ttl_secs,
            other => panic!("keepalive: {other:?}; so far: {:#?}", self.log),
        }
    }

    fn campaign_key(&mut self, key: &str, value: &str, lease: LeaseId) -> CoordResult {
        self.exec(CoordOp::Campaign {
            key: key.into(),
            value: value.into(),
            lease,
        })
    }

    /// Campaigns with the lease's own election key; returns the create revision.
    fn campaign(&mut self, lease: LeaseId, value: &str) -> i64 {
        match self.campaign_key(&key_of(lease), value, lease) {
            CoordResult::Campaigned { create_revision } => create_revision,
            other => panic!("campaign: {other:?}; so far: {:#?}", self.log),
        }
    }

    fn observe(&mut self) -> (Vec<ElectionKey>, i64) {
        match self.exec(CoordOp::Observe {
            prefix: PREFIX.into(),
        }) {
            CoordResult::Observed { keys, revision } => (keys, revision),
            other => panic!("observe: {other:?}; so far: {:#?}", self.log),
        }
    }

    fn wait_delete(&mut self, key: &str, after_revision: i64, max_wait_ms: i64) -> CoordResult {
        self.exec(wait_delete(key, after_revision, max_wait_ms))
    }

    fn start_wait(&mut self, key: &str, after_revision: i64, max_wait_ms: i64) -> usize {
        self.etcd
            .start_wait(wait_delete(key, after_revision, max_wait_ms))
    }

    fn finish_wait(&mut self, wait: usize) -> CoordResult {
        let result = self.etcd.finish_wait(wait);
        self.record(&wait_delete("", 0, 0), &result);
        result
    }

    fn resign(&mut self, key: Option<(String, i64)>, lease: LeaseId) -> CoordResult {
        self.exec(CoordOp::Resign { key, lease })
    }

    fn withdraw(&mut self, key: &str, create_revision: i64) -> CoordResult {
        self.exec(CoordOp::Withdraw {
            key: key.into(),
            create_revision,
        })
    }

    fn sleep(&mut self, ms: i64) {
        self.etcd.sleep(ms);
        self.note(&format!("slept {ms} ms"));
    }

    fn compact_to_current(&mut self) {
        self.etcd.compact_to_current();
        self.note("compacted");
    }

    fn restart(&mut self, down_ms: i64) {
        self.etcd.restart(down_ms);
        self.note(&format!("restarted after {down_ms} ms down"));
    }
}

/// The election key of a lease, as clientv3 names it.
fn key_of(lease: LeaseId) -> String {
    format!("{PREFIX}{:x}", lease.0)
}

fn wait_delete(key: &str, after_revision: i64, max_wait_ms: i64) -> CoordOp {
    CoordOp::WaitDelete {
        key: key.into(),
        after_revision,
        max_wait_ms,
    }
}

fn run(etcd: &mut dyn Etcd, scenario: fn(&mut Recorder)) -> Vec<String> {
    let mut recorder = Recorder::new(etcd);
    scenario(&mut recorder);
    recorder.log
}

/// Runs the scenario on models of two seeds (only lease ids may differ, and they are
/// normalised away) and on a real etcd, and requires the same normalised results.
fn conforms(scenario: fn(&mut Recorder)) {
    let model = run(&mut Model::new(1), scenario);
    assert_eq!(model, run(&mut Model::new(2), scenario), "another seed");
    let Some(mut real) = Real::start() else {
        return;
    };
    let etcd = run(&mut real, scenario);
    if model != etcd {
        let n = model.len().max(etcd.len());
        let mut diff = String::new();
        for i in 0..n {
            let (m, e) = (model.get(i), etcd.get(i));
            let mark = if m == e { ' ' } else { '!' };
            diff += &format!("{mark} model: {m:?}\n{mark} etcd:  {e:?}\n");
        }
        panic!("the model and etcd differ:\n{diff}");
    }
}

/// No keepalive: the keys go with their lease, a lease with two keys in one revision.
fn lease_expiry_removes_the_keys(s: &mut Recorder) {
    let a = s.grant(2);
    let b = s.grant(2);
    s.campaign(a, "node-a");
    s.campaign_key(&format!("{}-second", key_of(a)), "node-a", a);
    s.campaign(b, "node-b");
    assert_eq!(s.observe().0.len(), 3);
    s.sleep(3_500);
    let (keys, revision) = s.observe();
    assert!(keys.is_empty(), "{keys:?}");
    assert_eq!(revision - s.base, 5, "3 creates, 2 expiries");
    assert_eq!(s.keep_alive(a), 0);
}

/// Keepalives every 500 ms keep a 2 s lease; without them it goes.
fn keepalives_keep_the_key(s: &mut Recorder) {
    let a = s.grant(2);
    s.campaign(a, "node-a");
    for _ in 0..7 {
        s.sleep(500);
        assert_eq!(s.keep_alive(a), 2);
    }
    assert_eq!(s.observe().0.len(), 1);
    s.sleep(3_500);
    assert!(s.observe().0.is_empty());
    assert_eq!(s.keep_alive(a), 0);
}

/// Revisions grow with each write only; the range sorts by create revision.
fn revisions_order_the_candidates(s: &mut Recorder) {
    // Granted b first, so that lease ids do not sort like create revisions.
    let b = s.grant(30);
    let a = s.grant(30);
    let rev_a = s.campaign(a, "node-a");
    let rev_b = s.campaign(b, "node-b");
    assert!(rev_b > rev_a);
    s.keep_alive(a);
    s.grant(30);
    let (keys, revision) = s.observe();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].create_revision, rev_a);
    assert_eq!(revision, rev_b, "keepalives and grants write nothing");
    // Outside the prefix: not listed, but a revision.
    let c = s.grant(30);
    s.campaign_key(&format!("conformance/other/{:x}", c.0), "node-c", c);
    s.observe();
}

/// The campaign txn: create once, then only read, whoever asks and with whatever lease.
fn txn_compares_create_revisions(s: &mut Recorder) {
    let a = s.grant(30);
    let b = s.grant(30);
    let rev_a = s.campaign(a, "node-a");
    assert_eq!(s.campaign(a, "node-a"), rev_a, "idempotent");
    let key_a = key_of(a);
    // b campaigns on a's key: the get branch, a's key unchanged.
    s.campaign_key(&key_a, "node-b", b);
    // An unknown lease on an existing key: the get branch, no lease check.
    s.campaign_key(&key_a, "node-x", LeaseId(0x1234_5678));
    let (keys, revision) = s.observe();
    assert_eq!((keys.len(), keys[0].value.as_str()), (1, "node-a"));
    assert_eq!(revision, rev_a);
    // Resign with the wrong create revision: a's key stays, b's lease goes.
    s.resign(Some((key_a.clone(), rev_a + 1)), b);
    assert_eq!(s.observe().0.len(), 1);
    assert_eq!(s.keep_alive(b), 0);
    // Without a lease the key is permanent.
    s.campaign_key(&format!("{PREFIX}no-lease"), "node-n", LeaseId(0));
    s.observe();
}

/// A watch from a compacted revision answers Deleted; one from the compaction revision
/// misses a delete made at it (etcd drops that tombstone).
fn watch_after_compaction(s: &mut Recorder) {
    let a = s.grant(30);
    let rev_a = s.campaign(a, "node-a");
    let (_, seen) = s.observe();
    for value in ["node-b", "node-c", "node-d"] {
        let other = s.grant(30);
        s.campaign(other, value);
    }
    s.compact_to_current();
    let key_a = key_of(a);
    assert_eq!(s.wait_delete(&key_a, seen, 10_000), CoordResult::Deleted);
    let (_, current) = s.observe();
    assert_eq!(
        s.wait_delete(&key_a, current - 1, 600),
        CoordResult::StillThere
    );
    s.resign(Some((key_a.clone(), rev_a)), a);
    let (_, deleted_at) = s.observe();
    s.compact_to_current();
    assert_eq!(
        s.wait_delete(&key_a, deleted_at - 1, 600),
        CoordResult::StillThere
    );
    assert_eq!(
        s.wait_delete(&key_a, deleted_at - 2, 600),
        CoordResult::Deleted
    );
}

/// A keepalive on an expired, revoked or never granted lease answers TTL 0.
fn keepalive_on_a_dead_lease(s: &mut Recorder) {
    let expiring = s.grant(2);
    let revoked = s.grant(30);
    assert_eq!(s.keep_alive(revoked), 30);
    s.resign(None, revoked);
    assert_eq!(s.keep_alive(revoked), 0);
    assert_eq!(s.keep_alive(LeaseId(0x1234_5678)), 0);
    s.sleep(3_000);
    assert_eq!(s.keep_alive(expiring), 0);
    // Resigning with a dead lease still succeeds.
    assert_eq!(s.resign(None, expiring), CoordResult::Resigned);
}

/// Resign deletes the key and revokes the lease; waiters learn of the delete, live or from
/// the history; a delete before the watch's start is not seen. An expiry is a delete too.
fn resign_and_expiry_answer_waiters(s: &mut Recorder) {
    let a = s.grant(30);
    let b = s.grant(30);
    let rev_a = s.campaign(a, "node-a");
    s.campaign(b, "node-b");
    let (_, seen) = s.observe();
    let key_a = key_of(a);
    let waiter = s.start_wait(&key_a, seen, 20_000);
    s.resign(Some((key_a.clone(), rev_a)), a);
    assert_eq!(s.finish_wait(waiter), CoordResult::Deleted);
    assert_eq!(s.keep_alive(a), 0);
    assert_eq!(s.wait_delete(&key_a, seen, 5_000), CoordResult::Deleted);
    let (_, now) = s.observe();
    assert_eq!(s.wait_delete(&key_a, now, 600), CoordResult::StillThere);
    // -1: a watch from revision 0, which etcd starts at the next revision.
    assert_eq!(s.wait_delete(&key_a, -1, 600), CoordResult::StillThere);
    assert_eq!(s.wait_delete(&key_of(b), now, 600), CoordResult::StillThere);
    let c = s.grant(2);
    s.campaign(c, "node-c");
    let (_, seen) = s.observe();
    assert_eq!(
        s.wait_delete(&key_of(c), seen, 10_000),
        CoordResult::Deleted
    );
    s.observe();
}

/// A watch from a revision not yet written ignores deletes before it.
fn watch_from_a_future_revision(s: &mut Recorder) {
    let a = s.grant(30);
    let b = s.grant(30);
    let rev_a = s.campaign(a, "node-a");
    let key = key_of(a);
    // From rev_a + 3: the resign's delete (rev_a + 1) is too early.
    let early = s.start_wait(&key, rev_a + 2, 1_500);
    s.resign(Some((key.clone(), rev_a)), a);
    assert_eq!(s.finish_wait(early), CoordResult::StillThere);
    // b takes the same key name (rev_a + 2) and resigns (rev_a + 3): seen.
    let late = s.start_wait(&key, rev_a + 2, 20_000);
    let rev_b = match s.campaign_key(&key, "node-b", b) {
        CoordResult::Campaigned { create_revision } => create_revision,
        other => panic!("{other:?}"),
    };
    s.resign(Some((key.clone(), rev_b)), b);
    assert_eq!(s.finish_wait(late), CoordResult::Deleted);
}

/// Withdraw deletes a key only while it has the create revision given, and leaves the lease
/// and its other keys: a withdraw with another revision, of our key (waking its watcher), of
/// the key once gone (also with revision 0, whose compare then holds), of an empty key.
fn withdraw_deletes_one_key(s: &mut Recorder) {
    let a = s.grant(30);
    let b = s.grant(30);
    s.campaign(a, "node-a");
    let stream = |n: u64, lease: LeaseId| format!("{PREFIX}streams/{n:016x}/{:x}", lease.0);
    let ours = stream(1, a);
    let rev_ours = match s.campaign_key(&ours, "node-a", a) {
        CoordResult::Campaigned { create_revision } => create_revision,
        other => panic!("{other:?}"),
    };
    s.campaign_key(&stream(2, a), "node-a", a);
    s.campaign_key(&stream(1, b), "node-b", b);
    let (_, seen) = s.observe();
    assert_eq!(s.withdraw(&ours, rev_ours + 1), CoordResult::Resigned);
    let (keys, revision) = s.observe();
    assert_eq!((keys.len(), revision), (4, seen), "another create revision");
    let waiter = s.start_wait(&ours, seen, 20_000);
    assert_eq!(s.withdraw(&ours, rev_ours), CoordResult::Resigned);
    assert_eq!(s.finish_wait(waiter), CoordResult::Deleted);
    let (keys, revision) = s.observe();
    assert_eq!((keys.len(), revision), (3, seen + 1));
    assert_eq!(s.withdraw(&ours, rev_ours), CoordResult::Resigned);
    assert_eq!(s.withdraw(&ours, 0), CoordResult::Resigned);
    assert_eq!(s.observe().1, seen + 1, "nothing written");
    let result = s.withdraw("", 0);
    assert!(matches!(result, CoordResult::Failed(_)), "{result:?}");
    // The lease lives on, with its other keys.
    assert_eq!(s.keep_alive(a), 30);
    assert_eq!(s.observe().0.len(), 3);
}

/// What etcd refuses: unknown leases for new keys, empty keys, huge TTLs; tiny TTLs are
/// raised to its minimum.
fn requests_etcd_refuses(s: &mut Recorder) {
    for ttl_secs in [1, 0, -5] {
        s.grant(ttl_secs);
    }
    let too_large = s.exec(CoordOp::Grant {
        ttl_secs: 9_000_000_001,
    });
    assert!(matches!(too_large, CoordResult::Failed(_)), "{too_large:?}");
    let unknown = LeaseId(0x1234_5678);
    let result = s.campaign_key(&key_of(unknown), "node-x", unknown);
    assert!(matches!(result, CoordResult::Failed(_)), "{result:?}");
    let revoked = s.grant(30);
    s.resign(None, revoked);
    let result = s.campaign_key(&key_of(revoked), "node-r", revoked);
    assert!(matches!(result, CoordResult::Failed(_)), "{result:?}");
    let a = s.grant(30);
    let result = s.campaign_key("", "node-a", a);
    assert!(matches!(result, CoordResult::Failed(_)), "{result:?}");
    // The txn fails, so the lease is not revoked either.
    let result = s.resign(Some((String::new(), 0)), a);
    assert!(matches!(result, CoordResult::Failed(_)), "{result:?}");
    assert_eq!(s.keep_alive(a), 30);
    let (keys, revision) = s.observe();
    assert!(keys.is_empty());
    assert_eq!(revision, s.base, "nothing was written");
}

/// A restart keeps the data, refreshes the leases to TTL + election timeout (also one that
/// expired while etcd was down) and breaks open watches.
fn restart_refreshes_leases(s: &mut Recorder) {
    let a = s.grant(3);
    s.campaign(a, "node-a");
    let (_, seen) = s.observe();
    let waiter = s.start_wait(&key_of(a), seen, 30_000);
    s.sleep(1_800);
    // Down from 2 s to at least 4 s after the grant: past the lease's expiry (3 s).
    s.restart(2_000);
    let result = s.finish_wait(waiter);
    assert!(matches!(result, CoordResult::Failed(_)), "{result:?}");
    // 3 s after the restart: there (the TTL alone would have ended now), the same revision.
    s.sleep(3_000);
    let (keys, revision) = s.observe();
    assert_eq!(keys.len(), 1);
    assert_eq!(revision, seen);
    // 5 s after the restart (3 s TTL + 1 s, and etcd's half second): gone.
    s.sleep(2_000);
    assert!(s.observe().0.is_empty());
    assert_eq!(s.keep_alive(a), 0);
}

#[test]
fn lease_expiry() {
    conforms(lease_expiry_removes_the_keys);
}

#[test]
fn keepalives() {
    conforms(keepalives_keep_the_key);
}

#[test]
fn revision_order() {
    conforms(revisions_order_the_candidates);
}

#[test]
fn txn_compare() {
    conforms(txn_compares_create_revisions);
}

#[test]
fn compaction() {
    conforms(watch_after_compaction);
}

#[test]
fn keepalive_on_expired_or_revoked_lease() {
    conforms(keepalive_on_a_dead_lease);
}

#[test]
fn resign_and_expiry_wake_waiters() {
    conforms(resign_and_expiry_answer_waiters);
}

#[test]
fn future_start_revision() {
    conforms(watch_from_a_future_revision);
}

#[test]
fn refused_requests() {
    conforms(requests_etcd_refuses);
}

#[test]
fn withdraw() {
    conforms(withdraw_deletes_one_key);
}

#[test]
fn restart() {
    conforms(restart_refreshes_leases);
}
