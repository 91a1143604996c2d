//! Leadership: the etcd election, the lease and its local deadline, the bucket fence and the
//! takeover delay, as one pure state machine. It decides when this node may write and stamps
//! every mutation with the [`Permit`] it is issued under (`docs/safety.md`).
//!
//! ```text
//! elected:  lease ─► campaign ─► observe ─┬─ first? ─► fence CAS ─► takeover delay ─► leading
//!                       ▲                 └─ no: watch the predecessor's key, observe again
//!                       └──── lease gone / higher epoch in the fence (resign) ◄──┘
//! single:   read fence ─► another holder renewed it within the TTL? refuse : CAS ─► leading
//! ```
//!
//! Naming: the *lease deadline* is when etcd may have let our lease expire, on our monotonic
//! clock: `sent_at(last acknowledged keepalive) + TTL * (1 - max drift) - margin`; the
//! *permit* lapses `op_timeout` before it, so a request started under it ends (or is
//! abandoned) before the deadline. A *commit* ([`StoreOp::is_commit`]) waits in the *gate*
//! until a fence CAS (`seq + 1`) succeeds, and must be sent within the *commit window* after
//! that CAS was sent.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use super::coord::{CoordId, CoordOp, CoordRequest, CoordResult, ElectionKey, LeaseId};
use super::fence::{FenceRecord, FenceVersion};
use super::types::{
    Epoch, Event, LeaderInfo, Millis, Now, Output, Permit, RequestId, StoreOp, StoreRequest,
    StoreResult,
};

/// Assumed bound of the rate difference between our clock and etcd's, in permille.
pub const MAX_DRIFT_PERMILLE: i64 = 50;
/// Subtracted from the lease deadline on top of the drift.
pub const SAFETY_MARGIN_MS: i64 = 500;
/// Exit code when the fence refuses a single instance.
pub const EXIT_FENCED: i32 = 1;
/// First retry delay after a failed coordinator or fence request; doubles up to the max.
const RETRY_MIN_MS: i64 = 250;
const RETRY_MAX_MS: i64 = 5_000;
/// Store request ids of the leader start here (the cycle's count up from 1).
const REQUEST_ID_BASE: u64 = 1 << 62;

/// The settings of leadership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderConfig {
    /// `--node.name`: the holder name in etcd, the fence and block stamps.
    pub node: String,
    /// `<--etcd.prefix>/election`: the election name; `None` runs a single instance.
    pub election: Option<String>,
    /// `--etcd.lease-ttl` in ms (also the single instance's fence freshness window).
    pub lease_ttl_ms: i64,
    /// `--objstore.op-timeout` in ms: the longest a bucket request may take.
    pub op_timeout_ms: i64,
    /// `--leader.takeover-delay` in ms.
    pub takeover_delay_ms: i64,
    /// How long after its fence CAS was sent a commit may still be sent. `run` sets it to the
    /// op timeout: every CAS answer that arrives in time can then be used (a shorter window
    /// would livelock when the store answers slower than the window).
    pub commit_window_ms: i64,
    /// The safety mechanisms in force; production runs with [`Safety::ALL`].
    pub safety: Safety,
}

/// Which of the leader's safety mechanisms are on. Production always runs with
/// [`Safety::ALL`]; the simulation (`compactd-sim --bug`) switches one off to show that its
/// checker catches the violation that follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safety {
    /// Stop writing at the local lease deadline (layer 2 of `docs/safety.md`).
    pub lease_deadline: bool,
    /// Fence the bucket before writing and before every commit (layer 3).
    pub fence: bool,
    /// Stop renewing a lease once no renewal sent within the last TTL was acknowledged, and
    /// revoke it before campaigning anew (liveness: etcd then expires our election key,
    /// `docs/safety.md`, "Failover"). Off, a node that can reach etcd but not hear it keeps
    /// its key alive and nobody else can be elected. It rests on the lease deadline (the
    /// node stopped writing before it gives the lease up), so it acts only with
    /// [`Safety::lease_deadline`] on: without it the node writes until told otherwise.
    #[serde(default = "on")]
    pub abandon_unheard_lease: bool,
}

fn on() -> bool {
    true
}

impl Safety {
    /// Every mechanism on.
    pub const ALL: Safety = Safety {
        lease_deadline: true,
        fence: true,
        abandon_unheard_lease: true,
    };
}

impl LeaderConfig {
    /// Checks the timing assumptions `docs/safety.md` rests on; the error says which fails.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_ttl_ms < 2_000 {
            return Err("--etcd.lease-ttl must be at least 2s".into());
        }
        if self.op_timeout_ms <= 0 {
            return Err("--objstore.op-timeout must be positive".into());
        }
        if self.election.is_none() {
            return Ok(());
        }
        let budget = deadline_span(self.lease_ttl_ms) - self.op_timeout_ms;
        if budget < 2 * keepalive_interval(self.lease_ttl_ms) {
            return Err(format!(
                "--objstore.op-timeout {}ms is too long for --etcd.lease-ttl {}ms: a write may \
                 only start while it can end {}ms before the lease can expire, which leaves {}ms \
                 after a renewal; renewals come every {}ms and need room for two \
                 (lower the op timeout or raise the TTL)",
                self.op_timeout_ms,
                self.lease_ttl_ms,
                self.op_timeout_ms,
                budget,
                keepalive_interval(self.lease_ttl_ms),
            ));
        }
        let needed = self.op_timeout_ms + self.commit_window_ms;
        if self.takeover_delay_ms < needed {
            return Err(format!(
                "--leader.takeover-delay {}ms must be at least twice --objstore.op-timeout \
                 ({}ms): a commit may be sent up to one op timeout after its fence CAS and take \
                 another to land, and must have landed or died before the new leader's first \
                 commit",
                self.takeover_delay_ms, needed
            ));
        }
        Ok(())
    }
}

/// How long after a renewal was sent the lease surely lives, on a clock that may drift.
fn deadline_span(ttl_ms: i64) -> i64 {
    ttl_ms * (1000 - MAX_DRIFT_PERMILLE) / 1000 - SAFETY_MARGIN_MS
}

fn keepalive_interval(ttl_ms: i64) -> i64 {
    ttl_ms / 5
}

/// Our lease as we know it.
#[derive(Clone, Debug)]
struct Lease {
    id: LeaseId,
    ttl_ms: i64,
    /// When the last acknowledged grant or keepalive was sent.
    acked_sent_at: Millis,
    /// When the last grant or keepalive was sent, acknowledged or not: etcd may have
    /// renewed the lease then.
    renewal_sent_at: Millis,
}

impl Lease {
    fn permit_until(&self, cfg: &LeaderConfig) -> Millis {
        if !cfg.safety.lease_deadline {
            return Millis::MAX;
        }
        self.acked_sent_at
            .plus(deadline_span(self.ttl_ms) - cfg.op_timeout_ms)
    }

    /// When the lease counts as unheard: no renewal sent within the last TTL before this
    /// was acknowledged. Later than [`Lease::permit_until`], so no write runs then.
    fn unheard_at(&self) -> Millis {
        self.acked_sent_at.plus(self.ttl_ms)
    }

    /// By when etcd has surely let the lease expire if no renewal is sent any more: one TTL
    /// (at the largest clock-rate difference) after the last renewal, plus that renewal's
    /// way to etcd (at most a TTL, since a request is abandoned after a fifth of one).
    fn expired_by(&self) -> Millis {
        self.renewal_sent_at
            .plus(2 * self.ttl_ms + self.ttl_ms * MAX_DRIFT_PERMILLE / 1000)
    }
}

/// A request to issue at `at` unless one is in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    req: Option<CoordId>,
    at: Millis,
}

impl Pending {
    fn now(now: Now) -> Pending {
        Pending {
            req: None,
            at: now.mono,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Role {
    /// Before [`Leader::start`].
    Starting,
    /// Granting a lease.
    Granting(Pending),
    /// Creating our election key.
    Campaigning(Pending),
    /// Ranging over the election's keys.
    Observing(Pending),
    /// Watching the predecessor's key.
    Waiting(CoordId),
    /// Chosen (or single): establishing the fence.
    Fencing(u64),
    /// Fenced; waiting out the takeover delay.
    Delaying { epoch: u64, until: Millis },
    /// Writing.
    Leading(u64),
    /// Resigning before exiting with the code.
    Resigning { req: CoordId, code: i32 },
    /// Deleting our election key and revoking our lease (retried until it succeeds or the
    /// lease has surely expired, `until`), then campaigning anew with a new lease.
    Revoking {
        pending: Pending,
        lease: LeaseId,
        key: Option<(String, i64)>,
        until: Millis,
    },
    /// Single instance: releasing the fence before exiting.
    Releasing(i32),
    /// Exited.
    Exited,
}

/// A fence request in flight.
#[derive(Clone, Debug)]
enum FenceOp {
    Read,
    Cas {
        record: FenceRecord,
        sent_at: Millis,
        guards_commit: bool,
    },
}

/// The leadership state machine.
#[derive(Debug)]
pub struct Leader {
    cfg: LeaderConfig,
    role: Role,
    lease: Option<Lease>,
    /// Our election key and its create revision.
    key: Option<(String, i64)>,
    keepalive: Option<(CoordId, Millis)>,
    next_keepalive_at: Millis,
    fence: Option<(FenceRecord, FenceVersion)>,
    fence_op: Option<(RequestId, FenceOp)>,
    /// When to retry a failed fence request (a read follows).
    fence_retry_at: Option<Millis>,
    next_renew_at: Millis,
    /// Commits waiting for a fence CAS.
    gate: VecDeque<StoreRequest>,
    known: Option<LeaderInfo>,
    /// When this node saw the leader it knew go.
    leader_gone_at: Option<Millis>,
    backoff_ms: i64,
    /// When the lease grant in flight was sent.
    grant_sent_at: Option<Millis>,
    /// True when `fence` was read or written since fencing began.
    fence_read: bool,
    next_coord: u64,
    next_request: u64,
}

impl Leader {
    /// A leader state machine that starts on [`Leader::start`].
    pub fn new(cfg: LeaderConfig) -> Leader {
        Leader {
            cfg,
            role: Role::Starting,
            lease: None,
            key: None,
            keepalive: None,
            next_keepalive_at: Millis::MAX,
            fence: None,
            fence_op: None,
            fence_retry_at: None,
            next_renew_at: Millis::MAX,
            gate: VecDeque::new(),
            known: None,
            leader_gone_at: None,
            backoff_ms: RETRY_MIN_MS,
            grant_sent_at: None,
            fence_read: false,
            next_coord: 0,
            next_request: REQUEST_ID_BASE,
        }
    }

    /// The epoch this node writes under, when it leads (fenced, past the takeover delay).
    pub fn leading(&self) -> Option<Epoch> {
        match self.role {
            Role::Leading(e) => Some(Epoch(e)),
            _ => None,
        }
    }

    /// The leader this node knows of.
    pub fn known_leader(&self) -> Option<&LeaderInfo> {
        self.known.as_ref()
    }

    /// True once the node has exited.
    pub fn exited(&self) -> bool {
        self.role == Role::Exited
    }

    /// The permit for non-commit mutations issued at `now`, if this node may write.
    pub fn permit(&self, now: Now) -> Option<Permit> {
        let Role::Leading(epoch) = self.role else {
            return None;
        };
        let valid_until = match &self.cfg.election {
            None => Millis::MAX,
            Some(_) => self.lease.as_ref()?.permit_until(&self.cfg),
        };
        (now.mono < valid_until).then_some(Permit {
            epoch: Epoch(epoch),
            valid_until,
        })
    }

    /// True if `id` is one of the leader's store requests.
    pub fn owns(id: RequestId) -> bool {
        id.0 > REQUEST_ID_BASE
    }

    /// Holds a commit until a fence CAS guards it.
    pub fn submit_commit(&mut self, req: StoreRequest) {
        debug_assert!(req.op.is_commit());
        self.gate.push_back(req);
    }

    /// The first step: campaign, or (single instance) read the fence.
    pub fn start(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.role != Role::Starting {
            return;
        }
        match self.cfg.election {
            Some(_) => self.role = Role::Granting(Pending::now(now)),
            None => self.enter_fencing(0),
        }
        self.drive(now, out);
    }

    /// Stops: resigns (or releases the fence), then exits with `code`.
    pub fn finish(&mut self, now: Now, code: i32, out: &mut Vec<Output>) {
        if matches!(
            self.role,
            Role::Resigning { .. } | Role::Releasing(_) | Role::Exited
        ) {
            return;
        }
        self.lose_write_right(now, "shutting down", out);
        match (&self.cfg.election, &self.lease) {
            (Some(_), Some(lease)) => {
                let op = CoordOp::Resign {
                    key: self.key.clone(),
                    lease: lease.id,
                };
                let req = self.coord(op, out);
                self.role = Role::Resigning { req, code };
                self.lease = None;
            }
            (None, _) if self.fence_ours() && self.fence_op.is_none() => {
                let (rec, ver) = self.fence.clone().expect("fence_ours");
                let record = FenceRecord {
                    seq: rec.seq + 1,
                    renewed_unix_ms: 0,
                    ..rec
                };
                self.issue_cas(record, Some(ver), now, false, out);
                self.role = Role::Releasing(code);
            }
            _ => self.exit(code, out),
        }
    }

    fn exit(&mut self, code: i32, out: &mut Vec<Output>) {
        self.role = Role::Exited;
        out.push(Output::Exit(code));
    }

    fn fence_ours(&self) -> bool {
        self.fence
            .as_ref()
            .is_some_and(|(r, _)| r.holder == self.cfg.node && r.renewed_unix_ms > 0)
    }

    /// Feeds the result of a coordinator request.
    pub fn on_coord(&mut self, now: Now, id: CoordId, result: CoordResult, out: &mut Vec<Output>) {
        if let Some((req, sent_at)) = self.keepalive {
            if req == id {
                self.keepalive = None;
                self.on_keepalive(now, sent_at, result, out);
                self.drive(now, out);
                return;
            }
        }
        if let CoordResult::Failed(error) = &result {
            if self.awaits(id) {
                out.push(Output::Event(Event::CoordFailed {
                    op: self.role_op_name().into(),
                    error: error.clone(),
                }));
            }
        }
        match self.role.clone() {
            Role::Granting(Pending { req: Some(r), .. }) if r == id => match result {
                CoordResult::Granted { lease, ttl_secs } => {
                    self.backoff_ms = RETRY_MIN_MS;
                    let sent_at = self.grant_sent_at.take().unwrap_or(now.mono);
                    self.lease = Some(Lease {
                        id: lease,
                        ttl_ms: ttl_secs.saturating_mul(1000),
                        acked_sent_at: sent_at,
                        renewal_sent_at: sent_at,
                    });
                    self.next_keepalive_at =
                        sent_at.plus(keepalive_interval(ttl_secs.saturating_mul(1000)));
                    self.role = Role::Campaigning(Pending::now(now));
                }
                _ => self.role = Role::Granting(self.backoff(now)),
            },
            Role::Campaigning(Pending { req: Some(r), .. }) if r == id => match result {
                CoordResult::Campaigned { create_revision } => {
                    self.backoff_ms = RETRY_MIN_MS;
                    let key = self.election_key();
                    self.key = Some((key, create_revision));
                    self.role = Role::Observing(Pending::now(now));
                }
                _ => self.role = Role::Campaigning(self.backoff(now)),
            },
            Role::Observing(Pending { req: Some(r), .. }) if r == id => match result {
                CoordResult::Observed { keys, revision } => {
                    self.on_observed(now, &keys, revision, out)
                }
                _ => self.role = Role::Observing(self.backoff(now)),
            },
            Role::Waiting(r) if r == id => match result {
                CoordResult::Deleted | CoordResult::StillThere => {
                    self.backoff_ms = RETRY_MIN_MS;
                    self.role = Role::Observing(Pending::now(now));
                }
                _ => self.role = Role::Observing(self.backoff(now)),
            },
            Role::Resigning { req, code } if req == id => self.exit(code, out),
            Role::Revoking {
                pending: Pending { req: Some(r), .. },
                lease,
                key,
                until,
            } if r == id => match result {
                CoordResult::Failed(_) => {
                    self.role = Role::Revoking {
                        pending: self.backoff(now),
                        lease,
                        key,
                        until,
                    };
                }
                _ => {
                    self.backoff_ms = RETRY_MIN_MS;
                    self.role = Role::Granting(Pending::now(now));
                }
            },
            // A result for a request of an abandoned role: ignored.
            _ => {}
        }
        self.drive(now, out);
    }

    /// True if the current role waits for the answer to `id`.
    fn awaits(&self, id: CoordId) -> bool {
        match self.role {
            Role::Granting(p) | Role::Campaigning(p) | Role::Observing(p) => p.req == Some(id),
            Role::Waiting(r) | Role::Resigning { req: r, .. } => r == id,
            Role::Revoking { pending, .. } => pending.req == Some(id),
            _ => false,
        }
    }

    fn role_op_name(&self) -> &'static str {
        match self.role {
            Role::Granting(_) => "lease-grant",
            Role::Campaigning(_) => "campaign",
            Role::Observing(_) => "observe",
            Role::Waiting(_) => "wait-delete",
            Role::Resigning { .. } => "resign",
            Role::Revoking { .. } => "revoke",
            _ => "coordinator",
        }
    }

    fn backoff(&mut self, now: Now) -> Pending {
        let at = now.mono.plus(self.backoff_ms);
        self.backoff_ms = (self.backoff_ms * 2).min(RETRY_MAX_MS);
        Pending { req: None, at }
    }

    fn election_key(&self) -> String {
        let name = self.cfg.election.as_deref().unwrap_or_default();
        let lease = self.lease.as_ref().map_or(0, |l| l.id.0);
        format!("{name}/{lease:x}")
    }

    fn on_keepalive(
        &mut self,
        now: Now,
        sent_at: Millis,
        result: CoordResult,
        out: &mut Vec<Output>,
    ) {
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        let interval = keepalive_interval(lease.ttl_ms);
        match result {
            CoordResult::KeptAlive { ttl_secs } if ttl_secs > 0 => {
                lease.ttl_ms = ttl_secs.saturating_mul(1000);
                lease.acked_sent_at = lease.acked_sent_at.max(sent_at);
                self.next_keepalive_at = sent_at.plus(interval);
                let remaining = self.permit(now).map_or(0, |p| p.valid_until.0 - now.mono.0);
                out.push(Output::Event(Event::LeaseRenewed {
                    permit_remaining_ms: remaining,
                }));
            }
            CoordResult::KeptAlive { .. } => {
                self.lose_write_right(now, "the etcd lease expired", out);
                self.lease = None;
                self.key = None;
                self.role = Role::Granting(Pending::now(now));
            }
            CoordResult::Failed(error) => {
                out.push(Output::Event(Event::CoordFailed {
                    op: "lease-keepalive".into(),
                    error,
                }));
                self.next_keepalive_at = now.mono.plus(RETRY_MIN_MS.min(interval));
            }
            _ => self.next_keepalive_at = now.mono,
        }
    }

    fn on_observed(
        &mut self,
        now: Now,
        keys: &[ElectionKey],
        revision: i64,
        out: &mut Vec<Output>,
    ) {
        self.backoff_ms = RETRY_MIN_MS;
        self.note_leader(now, keys.first(), out);
        let Some((ours, rev)) = self.key.clone() else {
            self.role = Role::Granting(Pending::now(now));
            return;
        };
        match keys
            .iter()
            .position(|k| k.key == ours && k.create_revision == rev)
        {
            None => {
                // Our key is gone (the lease expired or someone deleted it): start over.
                self.lease = None;
                self.key = None;
                self.keepalive = None;
                self.role = Role::Granting(Pending::now(now));
            }
            Some(0) => {
                if self.lease_permit_open(now) {
                    out.push(Output::Event(Event::Elected { epoch: rev as u64 }));
                    self.enter_fencing(rev as u64);
                } else {
                    // Chosen, but the lease is not fresh enough to write: wait for a renewal.
                    self.role = Role::Observing(Pending {
                        req: None,
                        at: now.mono.plus(RETRY_MIN_MS),
                    });
                }
            }
            Some(i) => {
                let op = CoordOp::WaitDelete {
                    key: keys[i - 1].key.clone(),
                    after_revision: revision,
                    max_wait_ms: (self.cfg.lease_ttl_ms / 3).max(1_000),
                };
                let req = self.coord(op, out);
                self.role = Role::Waiting(req);
            }
        }
    }

    fn note_leader(&mut self, now: Now, first: Option<&ElectionKey>, out: &mut Vec<Output>) {
        let seen = first.map(|k| (k.value.clone(), k.create_revision as u64));
        let known = self.known.as_ref().map(|k| (k.node.clone(), k.epoch));
        if seen == known {
            return;
        }
        match &seen {
            // Another node leads: whatever departure we timed was replaced by it.
            Some((node, _)) if *node != self.cfg.node => self.leader_gone_at = None,
            // The leader we knew went (no leader now, or we are next): time from here.
            _ if known.is_some() => self.leader_gone_at = Some(now.mono),
            _ => {}
        }
        self.known = seen.map(|(node, epoch)| LeaderInfo {
            node,
            epoch,
            since_unix_ms: now.wall.0,
        });
        out.push(Output::Event(Event::LeaderKnown(self.known.clone())));
    }

    /// Starts fencing for `epoch`; a fence request still in flight from an earlier term is
    /// abandoned, so its answer cannot be taken for this term's.
    fn enter_fencing(&mut self, epoch: u64) {
        self.role = Role::Fencing(epoch);
        self.fence_read = false;
        self.fence_op = None;
        self.fence_retry_at = None;
    }

    fn lease_permit_open(&self, now: Now) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| now.mono < l.permit_until(&self.cfg))
    }

    /// Feeds the result of one of the leader's store requests (see [`Leader::owns`]).
    pub fn on_store(
        &mut self,
        now: Now,
        id: RequestId,
        result: StoreResult,
        out: &mut Vec<Output>,
    ) {
        let Some((req, op)) = self.fence_op.take() else {
            return;
        };
        if req != id {
            self.fence_op = Some((req, op));
            return;
        }
        if let Role::Releasing(code) = self.role {
            return self.exit(code, out);
        }
        match (op, result) {
            (FenceOp::Read, StoreResult::Fence(found)) => self.on_fence_read(now, found, out),
            (
                FenceOp::Cas {
                    record,
                    sent_at,
                    guards_commit,
                },
                StoreResult::FenceWritten(version),
            ) => self.on_fence_written(now, record, version, sent_at, guards_commit, out),
            (_, StoreResult::FenceConflict) => {
                out.push(Output::Event(Event::FenceConflict {
                    epoch: self.fence_epoch(),
                    found: None,
                }));
                self.issue_read(out);
            }
            (op, result) => {
                let error = match result {
                    StoreResult::Failed(e) => e,
                    other => format!("unexpected answer {other:?}"),
                };
                let op = match op {
                    FenceOp::Read => "read-fence",
                    FenceOp::Cas { .. } => "cas-fence",
                };
                out.push(Output::Event(Event::MutationFailed {
                    op: op.into(),
                    error,
                }));
                // Whether a failed CAS applied is unknown: read the fence before anything else.
                let retry = now.mono.plus(self.backoff_ms);
                self.backoff_ms = (self.backoff_ms * 2).min(RETRY_MAX_MS);
                self.fence_retry_at = Some(retry);
            }
        }
        self.drive(now, out);
    }

    /// The epoch the fence work is for.
    fn fence_epoch(&self) -> u64 {
        match self.role {
            Role::Fencing(e) | Role::Leading(e) | Role::Delaying { epoch: e, .. } => e,
            _ => 0,
        }
    }

    fn on_fence_read(
        &mut self,
        now: Now,
        found: Option<(FenceRecord, FenceVersion)>,
        out: &mut Vec<Output>,
    ) {
        self.backoff_ms = RETRY_MIN_MS;
        self.fence_read = true;
        let epoch = self.fence_epoch();
        let me = self.cfg.node.clone();
        let Some((rec, ver)) = found else {
            if matches!(self.role, Role::Leading(_) | Role::Delaying { .. }) {
                // The fence vanished under us (deleted by hand?): fence again, with the delay.
                self.lose_write_right(now, "the fence vanished", out);
                self.role = Role::Fencing(epoch);
            }
            self.fence = None;
            return;
        };
        if self.cfg.election.is_none() {
            let fresh = now.wall.0 - rec.renewed_unix_ms < self.cfg.lease_ttl_ms;
            if rec.holder != me && (fresh || self.role != Role::Fencing(0)) {
                let reason = format!(
                    "refusing to write: {} is held by {:?} (epoch {}), renewed {} ago; another \
                     compactd writes to this bucket. Stop it, or wait until it has not renewed \
                     the fence for --etcd.lease-ttl",
                    super::fence::FENCE_PATH,
                    rec.holder,
                    rec.epoch,
                    crate::duration::format_duration_ms(
                        (now.wall.0 - rec.renewed_unix_ms).max(0) as u64
                    ),
                );
                out.push(Output::Event(Event::FenceConflict {
                    epoch,
                    found: Some(rec),
                }));
                self.lose_write_right(now, &reason, out);
                out.push(Output::Event(Event::SteppedDown { epoch, reason }));
                return self.exit(EXIT_FENCED, out);
            }
            self.fence = Some((rec, ver));
            return;
        }
        if rec.epoch > epoch || (rec.epoch == epoch && rec.holder != me) {
            let reason = format!(
                "{} holds epoch {} of {:?}, ours is {epoch}",
                super::fence::FENCE_PATH,
                rec.epoch,
                rec.holder
            );
            out.push(Output::Event(Event::FenceConflict {
                epoch,
                found: Some(rec),
            }));
            return self.resign_and_recampaign(now, &reason, out);
        }
        if rec.epoch < epoch && matches!(self.role, Role::Leading(_) | Role::Delaying { .. }) {
            // An older writer wrote after our fence: fence again and wait out the delay.
            self.lose_write_right(now, "an older epoch wrote the fence after ours", out);
            self.role = Role::Fencing(epoch);
        }
        self.fence = Some((rec, ver));
    }

    fn on_fence_written(
        &mut self,
        now: Now,
        record: FenceRecord,
        version: FenceVersion,
        sent_at: Millis,
        guards_commit: bool,
        out: &mut Vec<Output>,
    ) {
        self.backoff_ms = RETRY_MIN_MS;
        self.fence = Some((record, version));
        self.next_renew_at = now.mono.plus(self.cfg.lease_ttl_ms / 3);
        match self.role {
            Role::Fencing(epoch) => self.fenced(now, epoch, out),
            Role::Leading(epoch) if guards_commit => {
                let Some(permit) = self.permit(now) else {
                    return;
                };
                let valid_until = permit
                    .valid_until
                    .min(sent_at.plus(self.cfg.commit_window_ms));
                if now.mono >= valid_until {
                    // The answer came too late to commit under it: the next CAS guards it.
                    return;
                }
                if let Some(mut req) = self.gate.pop_front() {
                    req.permit = Some(Permit {
                        epoch: Epoch(epoch),
                        valid_until,
                    });
                    if let StoreOp::PutMeta { meta } = &mut req.op {
                        stamp_writer(meta, epoch, &self.cfg.node);
                    }
                    out.push(Output::Store(req));
                }
            }
            _ => {}
        }
    }

    /// The bucket is fenced for `epoch`: wait out the takeover delay (elected) or lead.
    fn fenced(&mut self, now: Now, epoch: u64, out: &mut Vec<Output>) {
        self.role = if self.cfg.election.is_some() {
            Role::Delaying {
                epoch,
                until: now.mono.plus(self.cfg.takeover_delay_ms),
            }
        } else {
            self.become_leader(now, epoch, out);
            Role::Leading(epoch)
        };
    }

    /// With the fence switched off ([`Safety::fence`]): take the bucket without fencing it
    /// and release commits as soon as they arrive.
    fn skip_fence(&mut self, now: Now, out: &mut Vec<Output>) {
        match self.role {
            Role::Fencing(epoch) => self.fenced(now, epoch, out),
            Role::Leading(epoch) => {
                while let Some(permit) = self.permit(now) {
                    let Some(mut req) = self.gate.pop_front() else {
                        break;
                    };
                    req.permit = Some(permit);
                    if let StoreOp::PutMeta { meta } = &mut req.op {
                        stamp_writer(meta, epoch, &self.cfg.node);
                    }
                    out.push(Output::Store(req));
                }
            }
            _ => {}
        }
    }

    fn become_leader(&mut self, now: Now, epoch: u64, out: &mut Vec<Output>) {
        let failover_ms = self.leader_gone_at.take().map(|t| now.mono.0 - t.0);
        out.push(Output::Event(Event::Leading { epoch, failover_ms }));
        if self.cfg.election.is_none() {
            let info = LeaderInfo {
                node: self.cfg.node.clone(),
                epoch,
                since_unix_ms: now.wall.0,
            };
            self.known = Some(info.clone());
            out.push(Output::Event(Event::LeaderKnown(Some(info))));
        }
    }

    /// Leaves the roles that may write; the gate is emptied (the cycle is abandoned).
    /// Also abandons the fence request in flight: its answer belongs to the term that ended.
    fn lose_write_right(&mut self, now: Now, reason: &str, out: &mut Vec<Output>) {
        if let Role::Leading(epoch) = self.role {
            out.push(Output::Event(Event::SteppedDown {
                epoch,
                reason: reason.to_string(),
            }));
        }
        self.gate.clear();
        self.fence_op = None;
        self.fence_retry_at = None;
        if matches!(
            self.role,
            Role::Leading(_) | Role::Delaying { .. } | Role::Fencing(_)
        ) {
            self.role = Role::Observing(Pending::now(now));
        }
    }

    fn resign_and_recampaign(&mut self, now: Now, reason: &str, out: &mut Vec<Output>) {
        self.lose_write_right(now, reason, out);
        self.revoke_and_recampaign(now);
    }

    /// Gives up our lease and key: no more renewals; delete the key and revoke the lease
    /// (retried until it succeeds or the lease has surely expired), then campaign anew.
    fn revoke_and_recampaign(&mut self, now: Now) {
        self.keepalive = None;
        let key = self.key.take();
        self.role = match self.lease.take() {
            Some(lease) => Role::Revoking {
                pending: Pending::now(now),
                lease: lease.id,
                key,
                until: lease.expired_by(),
            },
            None => Role::Granting(Pending::now(now)),
        };
    }

    /// True when a lease no renewal of which was heard for a TTL is given up (see
    /// [`Safety::abandon_unheard_lease`]).
    fn abandons_unheard_lease(&self) -> bool {
        self.cfg.safety.abandon_unheard_lease && self.cfg.safety.lease_deadline
    }

    /// No renewal sent within the last TTL was acknowledged: etcd may be hearing our
    /// keepalives while we do not hear its answers, which would keep our key alive (and
    /// everyone else from being elected) for as long as that lasts. Stop renewing, so that
    /// etcd expires the lease within about a TTL, and revoke it once etcd answers.
    fn abandon_unheard_lease(&mut self, now: Now, out: &mut Vec<Output>) {
        let Some(lease) = &self.lease else {
            return;
        };
        let unheard_ms = now.mono.0 - lease.acked_sent_at.0;
        self.lose_write_right(now, "no lease renewal was acknowledged for a TTL", out);
        out.push(Output::Event(Event::LeaseAbandoned { unheard_ms }));
        self.revoke_and_recampaign(now);
    }

    fn coord(&mut self, op: CoordOp, out: &mut Vec<Output>) -> CoordId {
        self.next_coord += 1;
        let id = CoordId(self.next_coord);
        out.push(Output::Coord(CoordRequest { id, op }));
        id
    }

    fn issue_read(&mut self, out: &mut Vec<Output>) {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        out.push(Output::Store(StoreRequest {
            id,
            op: StoreOp::ReadFence,
            permit: None,
        }));
        self.fence_op = Some((id, FenceOp::Read));
    }

    fn issue_cas(
        &mut self,
        record: FenceRecord,
        expected: Option<FenceVersion>,
        now: Now,
        guards_commit: bool,
        out: &mut Vec<Output>,
    ) {
        let permit = match &self.cfg.election {
            None => Permit {
                epoch: Epoch(record.epoch),
                valid_until: Millis::MAX,
            },
            Some(_) => match &self.lease {
                Some(l) if now.mono < l.permit_until(&self.cfg) => Permit {
                    epoch: Epoch(record.epoch),
                    valid_until: l.permit_until(&self.cfg),
                },
                _ => return,
            },
        };
        self.next_request += 1;
        let id = RequestId(self.next_request);
        out.push(Output::Store(StoreRequest {
            id,
            op: StoreOp::CasFence {
                record: record.clone(),
                expected,
            },
            permit: Some(permit),
        }));
        self.fence_op = Some((
            id,
            FenceOp::Cas {
                record,
                sent_at: now.mono,
                guards_commit,
            },
        ));
    }

    /// Moves as far as possible without new input: renewals, lease deadline, fence work,
    /// the takeover delay, the gate.
    pub fn drive(&mut self, now: Now, out: &mut Vec<Output>) {
        // The lease deadline: stop writing before etcd may have let the lease expire.
        if self.cfg.election.is_some()
            && matches!(
                self.role,
                Role::Leading(_) | Role::Delaying { .. } | Role::Fencing(_)
            )
            && !self.lease_permit_open(now)
        {
            self.lose_write_right(now, "the lease deadline passed without a renewal", out);
        }
        if let Some(lease) = &self.lease {
            if self.abandons_unheard_lease() && now.mono >= lease.unheard_at() {
                self.abandon_unheard_lease(now, out);
            } else if self.keepalive.is_none() && now.mono >= self.next_keepalive_at {
                let op = CoordOp::KeepAlive { lease: lease.id };
                let id = self.coord(op, out);
                self.keepalive = Some((id, now.mono));
                if let Some(lease) = self.lease.as_mut() {
                    lease.renewal_sent_at = now.mono;
                }
            }
        }
        match self.role.clone() {
            Role::Granting(Pending { req: None, at }) if now.mono >= at => {
                let ttl_secs = (self.cfg.lease_ttl_ms + 999) / 1000;
                let req = self.coord(CoordOp::Grant { ttl_secs }, out);
                self.grant_sent_at = Some(now.mono);
                self.role = Role::Granting(Pending { req: Some(req), at });
            }
            Role::Campaigning(Pending { req: None, at }) if now.mono >= at => {
                let Some(lease) = &self.lease else {
                    self.role = Role::Granting(Pending::now(now));
                    return self.drive(now, out);
                };
                let op = CoordOp::Campaign {
                    key: self.election_key(),
                    value: self.cfg.node.clone(),
                    lease: lease.id,
                };
                let req = self.coord(op, out);
                self.role = Role::Campaigning(Pending { req: Some(req), at });
            }
            Role::Observing(Pending { req: None, at }) if now.mono >= at => {
                let prefix = format!("{}/", self.cfg.election.as_deref().unwrap_or_default());
                let req = self.coord(CoordOp::Observe { prefix }, out);
                self.role = Role::Observing(Pending { req: Some(req), at });
            }
            Role::Delaying { epoch, until } if now.mono >= until => {
                self.become_leader(now, epoch, out);
                self.role = Role::Leading(epoch);
            }
            Role::Revoking {
                pending: Pending { req: None, at },
                lease,
                key,
                until,
            } if now.mono >= at => {
                if now.mono >= until {
                    // etcd has let the lease expire by now: nothing left to revoke.
                    self.role = Role::Granting(Pending::now(now));
                    return self.drive(now, out);
                }
                let op = CoordOp::Resign {
                    key: key.clone(),
                    lease,
                };
                let req = self.coord(op, out);
                self.role = Role::Revoking {
                    pending: Pending { req: Some(req), at },
                    lease,
                    key,
                    until,
                };
            }
            _ => {}
        }
        self.drive_fence(now, out);
    }

    fn drive_fence(&mut self, now: Now, out: &mut Vec<Output>) {
        if !self.cfg.safety.fence {
            return self.skip_fence(now, out);
        }
        if self.fence_op.is_some() {
            return;
        }
        if let Some(at) = self.fence_retry_at {
            if now.mono < at {
                return;
            }
            self.fence_retry_at = None;
            if matches!(
                self.role,
                Role::Fencing(_) | Role::Leading(_) | Role::Delaying { .. }
            ) {
                return self.issue_read(out);
            }
        }
        let me = self.cfg.node.clone();
        match self.role {
            Role::Fencing(epoch) => match self.fence.clone() {
                // Not read since fencing began: read first.
                _ if !self.fence_read => self.issue_read(out),
                None => {
                    let record = FenceRecord {
                        epoch,
                        holder: me,
                        seq: 1,
                        renewed_unix_ms: now.wall.0,
                    };
                    self.issue_cas(record, None, now, false, out);
                }
                Some((rec, ver)) => {
                    let record = FenceRecord {
                        epoch,
                        holder: me,
                        seq: rec.seq + 1,
                        renewed_unix_ms: now.wall.0,
                    };
                    self.issue_cas(record, Some(ver), now, false, out);
                }
            },
            Role::Leading(epoch) => {
                let Some((rec, ver)) = self.fence.clone() else {
                    return self.issue_read(out);
                };
                if self.gate.is_empty() && now.mono < self.next_renew_at {
                    return;
                }
                let record = FenceRecord {
                    epoch,
                    holder: me,
                    seq: rec.seq + 1,
                    renewed_unix_ms: now.wall.0,
                };
                let guards = !self.gate.is_empty();
                self.issue_cas(record, Some(ver), now, guards, out);
            }
            _ => {}
        }
    }

    /// The next time [`Leader::drive`] has something to do, if any.
    pub fn next_wake(&self) -> Option<Millis> {
        let mut at: Vec<Millis> = Vec::new();
        if self.lease.is_some() && self.keepalive.is_none() {
            at.push(self.next_keepalive_at);
        }
        if let Some(l) = self.lease.as_ref() {
            if self.abandons_unheard_lease() {
                at.push(l.unheard_at());
            }
        }
        if let Some(l) = &self.lease {
            if matches!(
                self.role,
                Role::Leading(_) | Role::Delaying { .. } | Role::Fencing(_)
            ) {
                at.push(l.permit_until(&self.cfg));
            }
        }
        match self.role {
            Role::Granting(Pending { req: None, at: t })
            | Role::Campaigning(Pending { req: None, at: t })
            | Role::Observing(Pending { req: None, at: t })
            | Role::Revoking {
                pending: Pending { req: None, at: t },
                ..
            } => at.push(t),
            Role::Delaying { until, .. } => at.push(until),
            // A pending retry replaces the renewal: drive_fence waits for it.
            Role::Leading(_) if self.fence_op.is_none() && self.fence_retry_at.is_none() => {
                at.push(self.next_renew_at)
            }
            _ => {}
        }
        if let Some(t) = self.fence_retry_at {
            at.push(t);
        }
        at.into_iter().min()
    }
}

/// Stamps `thanos.extensions.compactd = {"epoch": N, "holder": "<node>"}` into a block's meta.
pub fn stamp_writer(meta: &mut crate::tsdb::meta::BlockMeta, epoch: u64, holder: &str) {
    let Some(thanos) = meta.thanos.as_mut() else {
        return;
    };
    let stamp = serde_json::json!({ "epoch": epoch, "holder": holder });
    match thanos.extensions.as_mut() {
        Some(serde_json::Value::Object(map)) => {
            map.insert("compactd".into(), stamp);
        }
        _ => {
            let mut map = serde_json::Map::new();
            map.insert("compactd".into(), stamp);
            thanos.extensions = Some(serde_json::Value::Object(map));
        }
    }
}

#[cfg(test)]
mod tests;
