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
//! abandoned) before the deadline. A *commit* ([`WriteOp::is_commit`]) waits in the *gate*
//! until a fence CAS (`seq + 1`) succeeds, and must be sent within the *commit window* after
//! that CAS was sent.
//!
//! [`WriteOp::is_commit`]: super::types::WriteOp::is_commit
//!
//! One concern a file, each adding to [`Leader`] what its concern needs:
//! - `config.rs`: the settings, the safety switches and the timing rules;
//! - `election.rs`: the roles, and the coordinator requests that move through them;
//! - `lease.rs`: the lease, its keepalives, the deadline and the permit;
//! - `fencing.rs`: reading, taking and renewing the fence;
//! - `gate.rs`: commits waiting for a fence CAS, released under a permit;
//! - `observe.rs`: the leader as observed, and failover timing;
//! - `timers.rs`: every deadline the leader wakes for, and the retry backoff;
//! - `ids.rs`: the ids of the leader's requests.

mod bucket;
pub mod bucket_lease;
mod config;
mod election;
mod fencing;
mod gate;
mod ids;
mod lease;
mod observe;
mod timers;

pub use config::{
    bucket_renewal_interval, LeaderConfig, Provider, Safety, StreamsConfig, MAX_DRIFT_PERMILLE,
    SAFETY_MARGIN_MS,
};
pub use fencing::EXIT_FENCED;
pub use gate::stamp_writer;
pub use lease::SessionLease;

use bucket_lease::LeaseWatch;
use election::Role;
use fencing::FenceKeeper;
use gate::CommitGate;
use ids::RequestIds;
use lease::LeaseKeeper;
use observe::Observer;
use timers::{Backoff, Timer, Timers};

use super::coord::{CoordId, CoordOp, CoordResult};
use super::fence::FenceRecord;
use super::request_ids::Slot;
use super::types::{Epoch, Event, LeaderInfo, Millis, Now, Output, Permit, RequestId};
use super::types::{StoreResult, WriteOp};

/// The leadership state machine.
#[derive(Debug)]
pub struct Leader {
    cfg: LeaderConfig,
    /// Where the node is in the election and in leadership.
    role: Role,
    /// Our election key and its create revision.
    key: Option<(String, i64)>,
    /// The lease and its requests in flight.
    lease: LeaseKeeper,
    /// The fence as we know it and its request in flight.
    fence: FenceKeeper,
    /// Bucket provider: the versions of the fence seen while watching it.
    watch: LeaseWatch,
    /// Commits waiting for a fence CAS.
    gate: CommitGate,
    /// The leader as observed, for reporting.
    observed: Observer,
    /// Every deadline the leader wakes for.
    timers: Timers,
    /// The retry delay of coordinator and fence requests.
    backoff: Backoff,
    ids: RequestIds,
    /// The slot the leader's unit numbers its requests in.
    slot: Slot,
}

impl Leader {
    /// A leader state machine that starts on [`Leader::start`].
    pub fn new(cfg: LeaderConfig) -> Leader {
        Leader::in_slot(cfg, Slot::BUCKET)
    }

    /// A leader whose request ids count in `slot` (a stream seat's).
    pub fn in_slot(cfg: LeaderConfig, slot: Slot) -> Leader {
        Leader {
            cfg,
            role: Role::Starting,
            key: None,
            lease: LeaseKeeper::default(),
            fence: FenceKeeper::default(),
            watch: LeaseWatch::default(),
            gate: CommitGate::default(),
            observed: Observer::default(),
            timers: Timers::default(),
            backoff: Backoff::new(),
            ids: RequestIds::new(slot),
            slot,
        }
    }

    /// The epoch this node writes under, when it leads (fenced, past the takeover delay).
    pub fn leading(&self) -> Option<Epoch> {
        match self.role {
            Role::Leading(e) => Some(e),
            _ => None,
        }
    }

    /// The leader this node knows of.
    pub fn known_leader(&self) -> Option<&LeaderInfo> {
        self.observed.known.as_ref()
    }

    /// The safety mechanisms in force.
    pub fn safety(&self) -> Safety {
        self.cfg.safety
    }

    /// The slot its unit numbers requests and jobs in.
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// True once [`Leader::start`] ran.
    pub fn started(&self) -> bool {
        self.role != Role::Starting
    }

    /// True once the node has exited.
    pub fn exited(&self) -> bool {
        self.role == Role::Exited
    }

    /// The permit for non-commit mutations issued at `now`, if this node may write.
    pub fn permit(&self, now: Now) -> Option<Permit> {
        self.permit_for(self.leading()?, now)
    }

    /// True if `id` is one of the leader's store requests.
    pub fn owns(id: RequestId) -> bool {
        RequestIds::is_leaders(id)
    }

    /// Holds commit `op` (request `id`) until a fence CAS guards it; it leaves the gate
    /// under a permit of its own, which replaces the one it was issued under.
    pub fn submit_commit(&mut self, id: RequestId, op: WriteOp) {
        self.gate.push(id, op);
    }

    /// The first step: campaign, or (single instance) read the fence. A stream's seat
    /// campaigns once it has the session's lease ([`Leader::adopt_session`]).
    pub fn start(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.role != Role::Starting {
            return;
        }
        match self.cfg.election {
            Some(_) if self.cfg.on_bucket() => self.request_at(Role::Watching, now.mono),
            Some(_) if self.seated() => self.campaign_or_idle(now),
            Some(_) => self.request_at(Role::Granting(None), now.mono),
            None => self.enter_fencing(Epoch(0)),
        }
        self.drive(now, out);
    }

    /// True for a stream's seat, which borrows the session's lease.
    fn seated(&self) -> bool {
        self.cfg.stream.is_some()
    }

    /// Stops: resigns (or releases the fence), then exits with `code`. A stream's seat
    /// hands the stream over: it withdraws its key (the session's lease lives on), then exits.
    pub fn finish(&mut self, now: Now, code: i32, out: &mut Vec<Output>) {
        if matches!(
            self.role,
            Role::Resigning { .. }
                | Role::Releasing(_)
                | Role::Exited
                | Role::Withdrawing {
                    then_campaign: false,
                    ..
                }
        ) {
            return;
        }
        if self.seated() {
            if !self.cfg.safety.stream_release {
                // Switched off (`--bug stale-ownership`): withdraw the key, write on.
                if let Some((key, create_revision)) = self.key.take() {
                    self.send_coord(
                        CoordOp::Withdraw {
                            key,
                            create_revision,
                        },
                        out,
                    );
                }
                return;
            }
            self.lose_write_right(now, "handing the stream over", out);
            match self.key.take() {
                Some(key) => self.request_at(Role::withdrawing(key, false), now.mono),
                None => return self.exit(code, out),
            }
            self.drive(now, out);
            return;
        }
        self.lose_write_right(now, "shutting down", out);
        let releases = self.cfg.election.is_none() || self.cfg.on_bucket();
        match (&self.cfg.election, &self.lease.current) {
            (Some(_), Some(lease)) if !releases => {
                let op = CoordOp::Resign {
                    key: self.key.clone(),
                    lease: lease.id,
                };
                let req = self.send_coord(op, out);
                self.set_role(Role::Resigning { req, code });
                self.drop_lease();
            }
            _ if releases && self.fence_ours() && self.fence.in_flight.is_none() => {
                // The fence is released (renewed 0): a successor need not wait it out.
                let (rec, ver) = self.fence.current.clone().expect("fence_ours");
                let released = FenceRecord::successor(Some(&rec), rec.epoch, &rec.holder, 0);
                self.issue_cas(released, Some(ver), now, false, out);
                match self.fence.in_flight {
                    Some(_) => self.set_role(Role::Releasing(code)),
                    // No permit left to write with: the fence is left to expire.
                    None => self.exit(code, out),
                }
            }
            _ => self.exit(code, out),
        }
        self.arm_state_timers();
    }

    fn exit(&mut self, code: i32, out: &mut Vec<Output>) {
        self.set_role(Role::Exited);
        self.arm_state_timers();
        out.push(Output::Exit(code));
    }

    /// Feeds the result of a coordinator request.
    pub fn on_coord(&mut self, now: Now, id: CoordId, result: CoordResult, out: &mut Vec<Output>) {
        match self.lease.keepalive.take_if(|(req, _)| *req == id) {
            Some((_, sent_at)) => self.on_keepalive(now, sent_at, result, out),
            None => self.on_role_answer(now, id, result, out),
        }
        self.drive(now, out);
    }

    /// Feeds the result of one of the leader's store requests (see [`Leader::owns`]).
    pub fn on_store(
        &mut self,
        now: Now,
        id: RequestId,
        result: StoreResult,
        out: &mut Vec<Output>,
    ) {
        let Some((_, op)) = self.fence.in_flight.take_if(|(req, _)| *req == id) else {
            return;
        };
        if let Role::Releasing(code) = self.role {
            return self.exit(code, out);
        }
        self.on_fence_answer(now, op, result, out);
        self.drive(now, out);
    }

    /// Moves as far as possible without new input: renewals, lease deadline, the role's
    /// coordinator requests, the takeover delay, fence work, the gate.
    pub fn drive(&mut self, now: Now, out: &mut Vec<Output>) {
        self.drive_lease(now, out);
        if self.drive_role(now, out) {
            return self.drive(now, out);
        }
        self.drive_fence(now, out);
        self.arm_state_timers();
    }

    /// The next time [`Leader::drive`] has something to do, if any.
    pub fn next_wake(&self) -> Option<Millis> {
        self.timers.next()
    }

    /// Switches to `role`; the timers of the role left stop.
    fn set_role(&mut self, role: Role) {
        self.role = role;
        self.timers.stop(Timer::CoordRequest);
        self.timers.stop(Timer::TakeoverDelay);
    }

    /// Switches to `role`, which sends its coordinator request at `at`.
    fn request_at(&mut self, role: Role, at: Millis) {
        self.set_role(role);
        self.timers.set(Timer::CoordRequest, at);
    }

    /// Re-arms the timers that follow from state rather than schedule an action (see
    /// `timers.rs`), then checks the table against the state; run at the end of every input.
    fn arm_state_timers(&mut self) {
        self.arm_lease_timers();
        self.arm_fence_renewal();
        self.check_invariants();
    }

    /// The timers that schedule an action are armed exactly while that action is pending
    /// (debug and simulation builds; also run by the node's own checks).
    pub fn check_invariants(&self) {
        let requesting = matches!(
            self.role,
            Role::Granting(None)
                | Role::Campaigning(None)
                | Role::Observing(None)
                | Role::Revoking { req: None, .. }
                | Role::Withdrawing { req: None, .. }
        ) || (self.role == Role::Watching && self.fence.in_flight.is_none());
        let request_armed = self.timers.get(Timer::CoordRequest).is_some();
        debug_assert_eq!(request_armed, requesting, "{:?}", self.role);
        let delaying = matches!(self.role, Role::Delaying(_));
        let delay_armed = self.timers.get(Timer::TakeoverDelay).is_some();
        debug_assert_eq!(delay_armed, delaying, "{:?}", self.role);
        let renewing = !self.seated()
            && !self.cfg.on_bucket()
            && self.lease.current.is_some()
            && self.lease.keepalive.is_none();
        let keepalive_armed = self.timers.get(Timer::Keepalive).is_some();
        debug_assert_eq!(keepalive_armed, renewing, "{:?}", self.lease);
    }

    /// Leaves the roles that may write; the gate is emptied (the cycle is abandoned).
    /// Also abandons the fence request in flight: its answer belongs to the term that ended.
    fn lose_write_right(&mut self, now: Now, reason: &str, out: &mut Vec<Output>) {
        if let Role::Leading(epoch) = self.role {
            out.push(Output::Event(Event::SteppedDown {
                epoch: epoch.0,
                reason: reason.to_string(),
            }));
        }
        self.gate.clear();
        self.fence.in_flight = None;
        self.timers.stop(Timer::FenceRetry);
        if self.role.chosen_epoch().is_some() {
            let observe = match self.cfg.on_bucket() {
                true => Role::Watching,
                false => Role::Observing(None),
            };
            self.request_at(observe, now.mono);
        }
    }
}

#[cfg(test)]
mod tests;
