//! The etcd model: the parts of etcd the election uses (keys with revisions, leases that
//! expire on the model's clock, txn compares, watches on a delete history, compaction), and
//! [`EtcdModel::execute`], which answers each of the core's [`CoordOp`]s exactly as the
//! production adapter (`compactd::election::etcd`) answers it on a real etcd 3.4.
//!
//! The semantics are etcd's, checked by `tests/etcd_conformance.rs` against a real etcd:
//! - One revision counter, starting at 1 as a fresh etcd. Every txn that changes a key bumps
//!   it once; reads, lease grants and keepalives do not. Revoking a lease, or its expiry,
//!   deletes all its keys in one txn: one revision for all of them, none when it had no key.
//! - Leases: ids count up from a seed-derived base (etcd's count up too); a TTL below etcd's
//!   minimum (2 s with default timing) is raised to it, one above `MaxLeaseTTL` is refused.
//!   A lease expires at its last grant or keepalive plus its TTL, on the clock the caller
//!   passes in (etcd's clock); before each operation the model expires every lease due.
//!   etcd checks every 500 ms and then revokes through raft, so a real key outlives its TTL
//!   by up to about half a second; the model is exact. A keepalive on a missing or expired
//!   lease answers TTL 0, as the adapter maps etcd's "lease not found".
//! - Campaign is the adapter's txn `if create_revision(key) == 0 then put(key, lease) else
//!   get(key)`. etcd checks the lease of a put only on the branch taken: a new key with an
//!   unknown lease fails with "requested lease not found", an existing key is returned
//!   whatever the lease. An empty key is refused before anything else happens.
//! - Resign and Withdraw delete a key only if its create revision is still the one given
//!   (the adapter's txn `if create_revision(key) == rev then delete(key)`): one revision when
//!   it was, none when the key is gone or was created anew. Resign then revokes the lease;
//!   Withdraw leaves the lease and its other keys alone. Both answer `Resigned` either way.
//! - WaitDelete watches the key from `after_revision + 1` (0 means "from now", as in etcd;
//!   the core passes the revision of a range, never below -1). A start below the compaction
//!   revision is answered `Deleted` at once (the adapter's answer to a compacted watch); a
//!   delete of the key at or after the start, in history or later, answers `Deleted`; none
//!   within `max_wait_ms` answers `StillThere` (the adapter's own timer, here on the same
//!   clock). Compacting to `rev` drops the deletes at or below `rev`, as etcd drops those
//!   tombstones: a watch that starts exactly at the compaction revision misses a delete made
//!   at it (etcd does too).
//! - A restart keeps keys, revisions, compaction and leases, and refreshes every lease to
//!   its TTL plus etcd's election timeout (`lessor.Promote(extend)`), also leases that would
//!   have expired while etcd was down; open watches fail.
//!
//! The caller drives time: `now_ms` never goes backwards. [`EtcdModel::next_event_at`] names
//! the next moment something happens on its own (a lease expiry, a watch deadline), so that a
//! discrete-event world can jump there. Nothing here iterates a hash map or reads a clock.

use std::collections::{BTreeMap, BTreeSet};

use compactd::core::coord::{
    CoordError, CoordErrorKind, CoordOp, CoordResult, ElectionKey, LeaseId,
};
use compactd::rng::Rng;

/// What the model calls itself in `Failed` texts, where the adapter names its endpoints.
pub const ENDPOINT: &str = "etcd-model";

/// etcd's smallest lease TTL with its default timing: 1.5 election timeouts (1 s), rounded
/// up. A smaller TTL is granted as this one.
const LEASE_TTL_MIN_SECS: i64 = 2;
/// etcd's `lease.MaxLeaseTTL`: a larger TTL is refused.
const LEASE_TTL_MAX_SECS: i64 = 9_000_000_000;
/// What a restart adds to every lease's TTL: etcd's `lessor.Promote(extend)` with extend =
/// the election timeout (1 s by default), run when the member becomes leader.
const PROMOTE_EXTEND_MS: i64 = 1_000;

/// An error etcd answers with: its kind, as the adapter classifies it, and its text, as the
/// adapter describes it.
#[derive(Clone, Copy, Debug)]
struct EtcdError {
    kind: CoordErrorKind,
    text: &'static str,
}

/// etcd's answer to a put with a lease it does not know.
const LEASE_NOT_FOUND: EtcdError = EtcdError {
    kind: CoordErrorKind::LeaseNotFound,
    text: "NotFound: etcdserver: requested lease not found",
};
/// etcd's answer to a grant above `MaxLeaseTTL`.
const TTL_TOO_LARGE: EtcdError = EtcdError {
    kind: CoordErrorKind::Other,
    text: "OutOfRange: etcdserver: too large lease TTL",
};
/// etcd's answer to a txn that names an empty key.
const EMPTY_KEY: EtcdError = EtcdError {
    kind: CoordErrorKind::Other,
    text: "InvalidArgument: etcdserver: key is not provided",
};
/// What a watch open across a restart answers (the adapter reports its broken stream).
const WATCH_LOST: EtcdError = EtcdError {
    kind: CoordErrorKind::Unavailable,
    text: "etcd restarted: the watch stream broke",
};

impl EtcdError {
    /// The failure of `op` this error answers.
    fn answer(self, op: &str) -> CoordResult {
        let message = format!("{op}: etcd {ENDPOINT}: {}", self.text);
        CoordResult::Failed(CoordError::new(self.kind, message))
    }
}

/// One key as etcd stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The value.
    pub value: String,
    /// The revision of the txn that created it.
    pub create_revision: i64,
    /// The revision of the txn that last wrote it.
    pub mod_revision: i64,
    /// How many times it was written since it was created (1 after the create).
    pub version: i64,
    /// Its lease; 0 for none.
    pub lease: i64,
}

/// A pending `WaitDelete`, answered later through [`EtcdModel::poll_watches`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchId(pub u64);

/// The model's answer to one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The result, at once.
    Now(CoordResult),
    /// A `WaitDelete` that waits: [`EtcdModel::poll_watches`] answers it under this id.
    Pending(WatchId),
}

#[derive(Clone, Debug)]
struct Lease {
    ttl_secs: i64,
    expiry_ms: i64,
    keys: BTreeSet<String>,
}

#[derive(Clone, Debug)]
struct Watch {
    key: String,
    /// Deletes at this revision or later answer it.
    start_revision: i64,
    /// When it answers `StillThere`.
    deadline_ms: i64,
}

/// A deterministic model of one etcd member (see the module doc).
#[derive(Clone, Debug)]
pub struct EtcdModel {
    now_ms: i64,
    revision: i64,
    /// Revisions below it are gone from the history; 0 before any compaction.
    compacted: i64,
    keys: BTreeMap<String, KeyValue>,
    leases: BTreeMap<i64, Lease>,
    next_lease: i64,
    /// Every delete still in the history, as (key, revision).
    deletes: BTreeSet<(String, i64)>,
    watches: BTreeMap<WatchId, Watch>,
    next_watch: u64,
    /// Watch answers not yet returned by `poll_watches`, in the order they were decided.
    answered: Vec<(WatchId, CoordResult)>,
    /// Every key ever created, by its create revision: for checkers, which judge an epoch by
    /// the key it is the create revision of. Not etcd's history (compaction keeps it), and
    /// nothing the model answers depends on it.
    created: BTreeMap<i64, String>,
}

impl EtcdModel {
    /// A fresh etcd (revision 1, nothing stored) whose lease ids derive from `seed`.
    pub fn new(seed: u64) -> EtcdModel {
        // Positive, with room below 2^63 for 2^32 grants.
        let base = (Rng::new(seed).next_u64() & 0x7fff_ffff_0000_0000) as i64;
        EtcdModel {
            now_ms: i64::MIN,
            revision: 1,
            compacted: 0,
            keys: BTreeMap::new(),
            leases: BTreeMap::new(),
            next_lease: base + 1,
            deletes: BTreeSet::new(),
            watches: BTreeMap::new(),
            next_watch: 1,
            answered: Vec::new(),
            created: BTreeMap::new(),
        }
    }

    /// The current revision (what a range is served at).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// A key as stored, for checkers.
    pub fn get(&self, key: &str) -> Option<&KeyValue> {
        self.keys.get(key)
    }

    /// The keys under `prefix` as stored now, by create revision (what a range would answer,
    /// without moving the model's clock), for the world's injector and checkers.
    pub fn keys_under(&self, prefix: &str) -> Vec<ElectionKey> {
        match self.observe(prefix) {
            CoordResult::Observed { keys, .. } => keys,
            _ => Vec::new(),
        }
    }

    /// The key created at `create_revision`, whether or not it still exists, for checkers: an
    /// elected epoch is its key's create revision, so this names what the epoch was elected
    /// for.
    pub fn created_key(&self, create_revision: i64) -> Option<&str> {
        self.created.get(&create_revision).map(String::as_str)
    }

    /// Executes one operation at `now_ms` (after expiring the leases due). Every operation
    /// but `WaitDelete` is answered at once; a `WaitDelete` is answered at once when the
    /// delete is already in the history or the start revision was compacted, and otherwise
    /// later by [`Self::poll_watches`].
    pub fn execute(&mut self, now_ms: i64, op: &CoordOp) -> Answer {
        self.advance(now_ms);
        let result = match op {
            CoordOp::Grant { ttl_secs } => self.grant(*ttl_secs),
            CoordOp::KeepAlive { lease } => Ok(self.keep_alive(*lease)),
            CoordOp::Campaign { key, value, lease } => self.campaign(key, value, *lease),
            CoordOp::Observe { prefix } => Ok(self.observe(prefix)),
            CoordOp::WaitDelete {
                key,
                after_revision,
                max_wait_ms,
            } => return self.wait_delete(key, *after_revision, *max_wait_ms),
            CoordOp::Resign { key, lease } => self.resign(key.as_ref(), *lease),
            CoordOp::Withdraw {
                key,
                create_revision,
            } => self
                .delete_own_key(key, *create_revision)
                .map(|()| CoordResult::Resigned),
        };
        Answer::Now(result.unwrap_or_else(|e| e.answer(op.name())))
    }

    /// Moves the clock to `now_ms`: leases expire and watches time out, in time order (an
    /// expiry before a deadline at the same moment).
    pub fn advance(&mut self, now_ms: i64) {
        assert!(
            now_ms >= self.now_ms,
            "etcd model: time went back from {} to {now_ms}",
            self.now_ms
        );
        loop {
            let expiry = self.next_expiry().filter(|&(at, _)| at <= now_ms);
            let deadline = self.next_deadline().filter(|&(at, _)| at <= now_ms);
            match (expiry, deadline) {
                (Some((at, lease)), d) if d.is_none_or(|(d, _)| at <= d) => {
                    self.revoke(lease);
                }
                (_, Some((_, watch))) => {
                    self.watches.remove(&watch);
                    self.answered.push((watch, CoordResult::StillThere));
                }
                _ => break,
            }
        }
        self.now_ms = now_ms;
    }

    /// Moves the clock to `now_ms` and returns the answers to pending `WaitDelete`s decided
    /// since the last call, in the order they were decided.
    pub fn poll_watches(&mut self, now_ms: i64) -> Vec<(WatchId, CoordResult)> {
        self.advance(now_ms);
        std::mem::take(&mut self.answered)
    }

    /// When something happens next without a request: a lease expiry or a watch deadline,
    /// or now when answers are waiting for [`Self::poll_watches`]. `None` when nothing will.
    pub fn next_event_at(&self) -> Option<i64> {
        if !self.answered.is_empty() {
            return Some(self.now_ms);
        }
        let expiry = self.next_expiry().map(|(at, _)| at);
        let deadline = self.next_deadline().map(|(at, _)| at);
        expiry.into_iter().chain(deadline).min()
    }

    /// etcd restarts at `now_ms` (the world stops calling the model while etcd is down, and
    /// should [`Self::advance`] it to the moment etcd went down). Data, revisions and
    /// compaction stay; every lease is refreshed to `now_ms` + its TTL + the election timeout,
    /// even one whose expiry passed while etcd was down; every open watch fails.
    pub fn restart(&mut self, now_ms: i64) {
        assert!(
            now_ms >= self.now_ms,
            "etcd model: time went back from {} to {now_ms}",
            self.now_ms
        );
        self.now_ms = now_ms;
        for lease in self.leases.values_mut() {
            lease.expiry_ms = now_ms + lease.ttl_secs * 1000 + PROMOTE_EXTEND_MS;
        }
        for watch in std::mem::take(&mut self.watches).into_keys() {
            self.answered
                .push((watch, WATCH_LOST.answer("wait-delete")));
        }
    }

    /// Compacts the history up to `revision` (`etcdctl compact`): watches may no longer
    /// start below it, and deletes at or below it are forgotten. Fails as etcd does for a
    /// revision already compacted or not yet written.
    pub fn compact(&mut self, revision: i64) -> Result<(), String> {
        if revision <= self.compacted {
            return Err(
                "OutOfRange: etcdserver: mvcc: required revision has been compacted".into(),
            );
        }
        if revision > self.revision {
            return Err(
                "OutOfRange: etcdserver: mvcc: required revision is a future revision".into(),
            );
        }
        self.compacted = revision;
        self.deletes.retain(|(_, r)| *r > revision);
        Ok(())
    }

    /// The earliest lease expiry and its lease.
    fn next_expiry(&self) -> Option<(i64, i64)> {
        self.leases.iter().map(|(&id, l)| (l.expiry_ms, id)).min()
    }

    /// The earliest watch deadline and its watch.
    fn next_deadline(&self) -> Option<(i64, WatchId)> {
        self.watches
            .iter()
            .map(|(&id, w)| (w.deadline_ms, id))
            .min()
    }

    fn grant(&mut self, ttl_secs: i64) -> Result<CoordResult, EtcdError> {
        if ttl_secs > LEASE_TTL_MAX_SECS {
            return Err(TTL_TOO_LARGE);
        }
        let ttl_secs = ttl_secs.max(LEASE_TTL_MIN_SECS);
        let id = self.next_lease;
        self.next_lease += 1;
        let lease = Lease {
            ttl_secs,
            expiry_ms: self.now_ms + ttl_secs * 1000,
            keys: BTreeSet::new(),
        };
        self.leases.insert(id, lease);
        Ok(CoordResult::Granted {
            lease: LeaseId(id),
            ttl_secs,
        })
    }

    fn keep_alive(&mut self, lease: LeaseId) -> CoordResult {
        let now_ms = self.now_ms;
        let ttl_secs = match self.leases.get_mut(&lease.0) {
            Some(l) => {
                l.expiry_ms = now_ms + l.ttl_secs * 1000;
                l.ttl_secs
            }
            None => 0,
        };
        CoordResult::KeptAlive { ttl_secs }
    }

    fn campaign(
        &mut self,
        key: &str,
        value: &str,
        lease: LeaseId,
    ) -> Result<CoordResult, EtcdError> {
        if key.is_empty() {
            return Err(EMPTY_KEY);
        }
        if let Some(kv) = self.keys.get(key) {
            return Ok(CoordResult::Campaigned {
                create_revision: kv.create_revision,
            });
        }
        if lease.0 != 0 {
            let Some(l) = self.leases.get_mut(&lease.0) else {
                return Err(LEASE_NOT_FOUND);
            };
            l.keys.insert(key.to_string());
        }
        self.revision += 1;
        let kv = KeyValue {
            value: value.to_string(),
            create_revision: self.revision,
            mod_revision: self.revision,
            version: 1,
            lease: lease.0,
        };
        self.keys.insert(key.to_string(), kv);
        self.created.insert(self.revision, key.to_string());
        Ok(CoordResult::Campaigned {
            create_revision: self.revision,
        })
    }

    fn observe(&self, prefix: &str) -> CoordResult {
        let mut keys: Vec<ElectionKey> = self
            .keys
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, kv)| ElectionKey {
                key: k.clone(),
                create_revision: kv.create_revision,
                value: kv.value.clone(),
            })
            .collect();
        // Stable: keys of one create revision keep their key order.
        keys.sort_by_key(|k| k.create_revision);
        CoordResult::Observed {
            keys,
            revision: self.revision,
        }
    }

    fn wait_delete(&mut self, key: &str, after_revision: i64, max_wait_ms: i64) -> Answer {
        let start_revision = match after_revision + 1 {
            0 => self.revision + 1,
            start => start,
        };
        if start_revision < self.compacted {
            return Answer::Now(CoordResult::Deleted);
        }
        let in_history = self
            .deletes
            .range((key.to_string(), start_revision)..)
            .next()
            .is_some_and(|(k, _)| k == key);
        if in_history {
            return Answer::Now(CoordResult::Deleted);
        }
        let id = WatchId(self.next_watch);
        self.next_watch += 1;
        let watch = Watch {
            key: key.to_string(),
            start_revision,
            deadline_ms: self.now_ms.saturating_add(max_wait_ms.max(0)),
        };
        self.watches.insert(id, watch);
        Answer::Pending(id)
    }

    fn resign(
        &mut self,
        key: Option<&(String, i64)>,
        lease: LeaseId,
    ) -> Result<CoordResult, EtcdError> {
        if let Some((key, create_revision)) = key {
            self.delete_own_key(key, *create_revision)?;
        }
        // Revoking a lease that is gone counts as success, as in the adapter.
        self.revoke(lease.0);
        Ok(CoordResult::Resigned)
    }

    /// The txn `if create_revision(key) == create_revision then delete(key)`: one revision
    /// when the key is still the one created then, none otherwise; the lease stays.
    fn delete_own_key(&mut self, key: &str, create_revision: i64) -> Result<(), EtcdError> {
        if key.is_empty() {
            return Err(EMPTY_KEY);
        }
        let ours = self
            .keys
            .get(key)
            .is_some_and(|kv| kv.create_revision == create_revision);
        if ours {
            self.revision += 1;
            self.delete(key, self.revision);
        }
        Ok(())
    }

    /// Revokes a lease (on request or at its expiry): its keys go in one revision.
    fn revoke(&mut self, lease: i64) {
        let Some(lease) = self.leases.remove(&lease) else {
            return;
        };
        if lease.keys.is_empty() {
            return;
        }
        self.revision += 1;
        for key in &lease.keys {
            self.delete(key, self.revision);
        }
    }

    /// Deletes an existing key at `revision` (bumped by the caller) and answers the watches
    /// it satisfies.
    fn delete(&mut self, key: &str, revision: i64) {
        let kv = self.keys.remove(key).expect("deleting a key that exists");
        if let Some(lease) = self.leases.get_mut(&kv.lease) {
            lease.keys.remove(key);
        }
        self.deletes.insert((key.to_string(), revision));
        let told: Vec<WatchId> = self
            .watches
            .iter()
            .filter(|(_, w)| w.key == key && w.start_revision <= revision)
            .map(|(&id, _)| id)
            .collect();
        for id in told {
            self.watches.remove(&id);
            self.answered.push((id, CoordResult::Deleted));
        }
    }
}

#[cfg(test)]
mod tests;
