//! The coordinator vocabulary: the etcd operations the leader state machine asks for and
//! their results. The production adapter (`election::etcd`) maps each to etcd's KV, lease
//! and watch APIs exactly as clientv3's `concurrency.Election` does; the simulation maps
//! them to its etcd model.

use serde::{Deserialize, Serialize};

/// Identifies a coordinator request, to match its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CoordId(pub u64);

/// An etcd lease id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeaseId(pub i64);

/// One coordinator request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordRequest {
    /// Matches the result.
    pub id: CoordId,
    /// What to do.
    pub op: CoordOp,
}

/// The operations on etcd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordOp {
    /// `LeaseGrant(ttl)`. Answered by [`CoordResult::Granted`].
    Grant {
        /// Requested TTL in seconds.
        ttl_secs: i64,
    },
    /// One `LeaseKeepAlive` round trip. Answered by [`CoordResult::KeptAlive`].
    KeepAlive {
        /// The lease.
        lease: LeaseId,
    },
    /// Txn `if create_revision(key) == 0 then put(key, value, lease) else get(key)`.
    /// Answered by [`CoordResult::Campaigned`].
    Campaign {
        /// `<prefix>/election/<lease hex>`.
        key: String,
        /// The node name (what `etcdctl elect -l` prints).
        value: String,
        /// The lease the key is attached to.
        lease: LeaseId,
    },
    /// Range over `prefix` (keys of the election), sorted by create revision, ascending.
    /// Answered by [`CoordResult::Observed`].
    Observe {
        /// `<prefix>/election/`.
        prefix: String,
    },
    /// Watch `key` from `after_revision + 1` until it is deleted, or at most `max_wait_ms`.
    /// Answered by [`CoordResult::Deleted`] or [`CoordResult::StillThere`].
    WaitDelete {
        /// The predecessor's key.
        key: String,
        /// The revision of the range that saw it.
        after_revision: i64,
        /// How long to wait at most before answering [`CoordResult::StillThere`].
        max_wait_ms: i64,
    },
    /// When `key` is given: txn `if create_revision(key) == rev then delete(key)`; then
    /// revoke the lease. Answered by [`CoordResult::Resigned`].
    Resign {
        /// Our election key and its create revision (our epoch), if we campaigned.
        key: Option<(String, i64)>,
        /// Our lease.
        lease: LeaseId,
    },
    /// Txn `if create_revision(key) == create_revision then delete(key)`, and nothing else:
    /// the lease and its other keys stay (a replica gives up one stream's key, keeping its
    /// session). Answered by [`CoordResult::Resigned`], also when the key is already gone or
    /// was created anew (another create revision): either way it is no longer ours.
    Withdraw {
        /// The key to delete: `<prefix>/streams/<stream hex>/<lease hex>`.
        key: String,
        /// Its create revision when we created it; a key created since is not ours.
        create_revision: i64,
    },
}

impl CoordOp {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            CoordOp::Grant { .. } => "lease-grant",
            CoordOp::KeepAlive { .. } => "lease-keepalive",
            CoordOp::Campaign { .. } => "campaign",
            CoordOp::Observe { .. } => "observe",
            CoordOp::WaitDelete { .. } => "wait-delete",
            CoordOp::Resign { .. } => "resign",
            CoordOp::Withdraw { .. } => "withdraw",
        }
    }
}

/// One key of the election, as a range returned it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionKey {
    /// The full key.
    pub key: String,
    /// Its create revision.
    pub create_revision: i64,
    /// Its value (a node name).
    pub value: String,
}

/// The result of a coordinator request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordResult {
    /// A lease was granted with this TTL (etcd may raise a TTL below its minimum).
    Granted {
        /// The new lease.
        lease: LeaseId,
        /// The granted TTL in seconds.
        ttl_secs: i64,
    },
    /// The keepalive was answered; `ttl_secs <= 0` means the lease no longer exists.
    KeptAlive {
        /// The TTL the lease was renewed to.
        ttl_secs: i64,
    },
    /// Our key exists with this create revision (new, or found from an earlier campaign
    /// with the same lease).
    Campaigned {
        /// The create revision of our key.
        create_revision: i64,
    },
    /// The election's keys, oldest first, and the revision of the range.
    Observed {
        /// Keys sorted by create revision, ascending.
        keys: Vec<ElectionKey>,
        /// The store revision the range was served at.
        revision: i64,
    },
    /// The watched key was deleted (or had already been deleted, or the watch could not
    /// resume because the revision was compacted: observe again).
    Deleted,
    /// The bounded wait ended with the key still there.
    StillThere,
    /// We resigned, or withdrew a key (or our key was already gone).
    Resigned,
    /// The request failed (unreachable, timeout, error).
    Failed(CoordError),
}

/// Why a coordinator request failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CoordError {
    /// What kind of failure.
    pub kind: CoordErrorKind,
    /// What went wrong, naming the operation and the endpoints, for logs and events.
    pub message: String,
}

/// The kinds of coordinator failure. The leader retries every one with backoff; the kind
/// tells an operator (and a test) which it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordErrorKind {
    /// No answer within the request's timeout: it may or may not have been applied.
    Timeout,
    /// etcd could not be reached or is not serving (a transport error, no leader).
    Unavailable,
    /// The lease the request names does not exist (it expired or was revoked).
    LeaseNotFound,
    /// Anything else: etcd refused the request, no coordinator is configured, a panic.
    Other,
}

impl CoordError {
    /// A failure of `kind`.
    pub fn new(kind: CoordErrorKind, message: impl Into<String>) -> CoordError {
        CoordError {
            kind,
            message: message.into(),
        }
    }
}
