//! The election: the roles of the leadership state machine, and the coordinator requests
//! that move a node through them — grant a lease, campaign, observe the election's keys,
//! watch the predecessor's key, resign, revoke — with their answers.
//!
//! This is clientv3's `concurrency.Election` recipe: the key with the lowest create revision
//! leads, and that revision is the leader's epoch.

use super::timers::{Timer, RETRY_MIN_MS};
use super::Leader;
use crate::core::coord::{CoordId, CoordOp, CoordRequest, CoordResult, ElectionKey, LeaseId};
use crate::core::types::{Epoch, Event, Millis, Now, Output};

/// Where a node is in the election and in leadership. A role that has a coordinator request
/// to send holds `None` until it is sent, at [`Timer::CoordRequest`]; then its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Before [`Leader::start`].
    Starting,
    /// Granting a lease.
    Granting(Option<CoordId>),
    /// Creating our election key.
    Campaigning(Option<CoordId>),
    /// Ranging over the election's keys.
    Observing(Option<CoordId>),
    /// Watching the predecessor's key.
    Waiting(CoordId),
    /// Bucket provider: reading the fence (the lease object) every third of a TTL, until
    /// one version has stood unchanged for the observe wait, or the fence is free
    /// (`bucket.rs`). The read is sent at [`Timer::CoordRequest`].
    Watching,
    /// Chosen (or single): establishing the fence.
    Fencing(Epoch),
    /// Fenced; waiting out the takeover delay ([`Timer::TakeoverDelay`]).
    Delaying(Epoch),
    /// Writing.
    Leading(Epoch),
    /// Resigning before exiting with the code.
    Resigning {
        /// The resignation in flight.
        req: CoordId,
        /// The exit code.
        code: i32,
    },
    /// Deleting our election key and revoking our lease (retried until it succeeds or the
    /// lease has surely expired), then campaigning anew with a new lease.
    Revoking {
        /// The revocation in flight, once sent.
        req: Option<CoordId>,
        /// The lease to revoke.
        lease: LeaseId,
        /// Our election key and its create revision, to delete.
        key: Option<(String, i64)>,
        /// When etcd has surely let the lease expire: nothing is left to revoke then.
        expired_by: Millis,
    },
    /// Single instance: releasing the fence before exiting.
    Releasing(i32),
    /// A stream's seat without the session's lease: waiting for one.
    Idle,
    /// A stream's seat withdrawing its key (retried until it succeeds or the session's lease
    /// goes, which takes the key with it); then it campaigns anew or exits.
    Withdrawing {
        /// The withdrawal in flight, once sent.
        req: Option<CoordId>,
        /// Our key and its create revision.
        key: (String, i64),
        /// Campaign anew afterwards (a higher epoch took the stream's fence) rather than
        /// exit (the stream was handed over).
        then_campaign: bool,
    },
    /// Exited.
    Exited,
}

impl Role {
    /// A seat about to withdraw `key`.
    pub(super) fn withdrawing(key: (String, i64), then_campaign: bool) -> Role {
        Role::Withdrawing {
            req: None,
            key,
            then_campaign,
        }
    }

    /// The epoch of a node chosen to write: fencing, waiting out the takeover delay, or
    /// leading.
    pub(super) fn chosen_epoch(&self) -> Option<Epoch> {
        match self {
            Role::Fencing(e) | Role::Delaying(e) | Role::Leading(e) => Some(*e),
            _ => None,
        }
    }

    /// True if the role waits for the answer to `id`.
    fn awaits(&self, id: CoordId) -> bool {
        match self {
            Role::Granting(req) | Role::Campaigning(req) | Role::Observing(req) => *req == Some(id),
            Role::Waiting(r) | Role::Resigning { req: r, .. } => *r == id,
            Role::Revoking { req, .. } | Role::Withdrawing { req, .. } => *req == Some(id),
            _ => false,
        }
    }

    /// The name of the role's coordinator request, for logs.
    fn op_name(&self) -> &'static str {
        match self {
            Role::Granting(_) => "lease-grant",
            Role::Campaigning(_) => "campaign",
            Role::Observing(_) => "observe",
            Role::Waiting(_) => "wait-delete",
            Role::Resigning { .. } => "resign",
            Role::Revoking { .. } => "revoke",
            Role::Withdrawing { .. } => "withdraw",
            _ => "coordinator",
        }
    }
}

impl Leader {
    /// Sends a coordinator request; returns its id.
    pub(super) fn send_coord(&mut self, op: CoordOp, out: &mut Vec<Output>) -> CoordId {
        let id = self.ids.next_coord();
        out.push(Output::Coord(CoordRequest { id, op }));
        id
    }

    /// Feeds the answer to a request of the role (a keepalive's goes to the lease).
    pub(super) fn on_role_answer(
        &mut self,
        now: Now,
        id: CoordId,
        result: CoordResult,
        out: &mut Vec<Output>,
    ) {
        if let CoordResult::Failed(error) = &result {
            if self.role.awaits(id) {
                out.push(Output::Event(Event::CoordFailed {
                    op: self.role.op_name().into(),
                    error: error.to_string(),
                }));
            }
        }
        match self.role.clone() {
            Role::Granting(Some(r)) if r == id => match result {
                CoordResult::Granted { lease, ttl_secs } => {
                    self.backoff.reset();
                    self.take_granted_lease(now, lease, ttl_secs);
                    self.request_at(Role::Campaigning(None), now.mono);
                }
                _ => self.retry(Role::Granting(None), now),
            },
            Role::Campaigning(Some(r)) if r == id => match result {
                CoordResult::Campaigned { create_revision } => {
                    self.backoff.reset();
                    self.key = Some((self.election_key(), create_revision));
                    self.request_at(Role::Observing(None), now.mono);
                }
                _ => self.retry(Role::Campaigning(None), now),
            },
            Role::Observing(Some(r)) if r == id => match result {
                CoordResult::Observed { keys, revision } => {
                    self.on_observed(now, &keys, revision, out)
                }
                _ => self.retry(Role::Observing(None), now),
            },
            Role::Waiting(r) if r == id => match result {
                CoordResult::Deleted | CoordResult::StillThere => {
                    self.backoff.reset();
                    self.request_at(Role::Observing(None), now.mono);
                }
                _ => self.retry(Role::Observing(None), now),
            },
            Role::Resigning { req, code } if req == id => self.exit(code, out),
            Role::Withdrawing {
                req: Some(r),
                key,
                then_campaign,
            } if r == id => self.on_withdrawn(now, key, then_campaign, &result, out),
            Role::Revoking {
                req: Some(r),
                lease,
                key,
                expired_by,
            } if r == id => self.on_revoked(now, (lease, key, expired_by), &result),
            // A result for a request of an abandoned role: ignored.
            _ => {}
        }
    }

    /// Switches to `role`, whose request failed at `now`: it is sent again after the backoff.
    pub(super) fn retry(&mut self, role: Role, now: Now) {
        let at = self.backoff.retry_at(now.mono);
        self.request_at(role, at);
    }

    /// Our election key: `<election>/<lease id in hex>`.
    fn election_key(&self) -> String {
        let name = self.cfg.election.as_deref().unwrap_or_default();
        let lease = self.lease.current.as_ref().map_or(0, |l| l.id.0);
        format!("{name}/{lease:x}")
    }

    fn on_observed(
        &mut self,
        now: Now,
        keys: &[ElectionKey],
        revision: i64,
        out: &mut Vec<Output>,
    ) {
        self.backoff.reset();
        self.observed
            .note_leader(now, keys.first(), &self.cfg.node, out);
        let Some((ours, rev)) = self.key.clone() else {
            if self.seated() {
                return self.campaign_or_idle(now);
            }
            return self.request_at(Role::Granting(None), now.mono);
        };
        match keys
            .iter()
            .position(|k| k.key == ours && k.create_revision == rev)
        {
            None => {
                // Our key is gone (the lease expired or someone deleted it): start over.
                self.key = None;
                self.start_over(now);
            }
            Some(0) => {
                if self.lease_permit_open(now) {
                    out.push(Output::Event(Event::Elected { epoch: rev as u64 }));
                    self.enter_fencing(Epoch(rev as u64));
                } else {
                    // Chosen, but the lease is not fresh enough to write: wait for a renewal.
                    self.request_at(Role::Observing(None), now.mono.plus(RETRY_MIN_MS));
                }
            }
            Some(i) => {
                let op = CoordOp::WaitDelete {
                    key: keys[i - 1].key.clone(),
                    after_revision: revision,
                    max_wait_ms: (self.cfg.lease_ttl_ms / 3).max(1_000),
                };
                let req = self.send_coord(op, out);
                self.set_role(Role::Waiting(req));
            }
        }
    }

    /// The revocation of `lease` (and `key`, surely gone by `expired_by`) was answered:
    /// retry a failure, else campaign with a new lease.
    fn on_revoked(
        &mut self,
        now: Now,
        (lease, key, expired_by): (LeaseId, Option<(String, i64)>, Millis),
        result: &CoordResult,
    ) {
        let revoking = Role::Revoking {
            req: None,
            lease,
            key,
            expired_by,
        };
        match result {
            CoordResult::Failed(_) => self.retry(revoking, now),
            _ => {
                self.backoff.reset();
                self.request_at(Role::Granting(None), now.mono);
            }
        }
    }

    /// A seat's withdrawal of `key` was answered: retry a failure; then campaign anew or exit.
    fn on_withdrawn(
        &mut self,
        now: Now,
        key: (String, i64),
        then_campaign: bool,
        result: &CoordResult,
        out: &mut Vec<Output>,
    ) {
        match result {
            CoordResult::Failed(_) => self.retry(Role::withdrawing(key, then_campaign), now),
            _ if then_campaign => {
                self.backoff.reset();
                self.campaign_or_idle(now);
            }
            _ => self.exit(0, out),
        }
    }

    /// Sends a seat's withdrawal of `key` (see [`Role::Withdrawing`]).
    fn send_withdraw(&mut self, key: (String, i64), then_campaign: bool, out: &mut Vec<Output>) {
        let op = CoordOp::Withdraw {
            key: key.0.clone(),
            create_revision: key.1,
        };
        let req = Some(self.send_coord(op, out));
        self.set_role(Role::Withdrawing {
            req,
            key,
            then_campaign,
        });
    }

    /// Campaigns from scratch: with a new lease, or (a seat) a new key on the session's.
    fn start_over(&mut self, now: Now) {
        if self.seated() {
            return self.campaign_or_idle(now);
        }
        self.drop_lease();
        self.request_at(Role::Granting(None), now.mono);
    }

    /// A seat campaigns with the session's lease, or waits for one.
    pub(super) fn campaign_or_idle(&mut self, now: Now) {
        match self.lease.current {
            Some(_) => self.request_at(Role::Campaigning(None), now.mono),
            None => self.set_role(Role::Idle),
        }
    }

    /// The role's part of [`Leader::drive`]: lead once the takeover delay has passed, or
    /// send the role's coordinator request when due. Returns true when the role changed to
    /// one that acts at once (a fresh grant): drive again from the top.
    pub(super) fn drive_role(&mut self, now: Now, out: &mut Vec<Output>) -> bool {
        if let Role::Delaying(epoch) = self.role {
            if self.timers.is_due(Timer::TakeoverDelay, now.mono) {
                self.observed.took_over(now, epoch, &self.cfg, out);
                self.set_role(Role::Leading(epoch));
            }
            return false;
        }
        if !self.timers.is_due(Timer::CoordRequest, now.mono) {
            return false;
        }
        match self.role.clone() {
            Role::Granting(None) => {
                let ttl_secs = (self.cfg.lease_ttl_ms + 999) / 1000;
                let req = self.send_coord(CoordOp::Grant { ttl_secs }, out);
                self.lease.grant_sent_at = Some(now.mono);
                self.set_role(Role::Granting(Some(req)));
            }
            Role::Campaigning(None) => {
                let Some(lease) = &self.lease.current else {
                    self.request_at(Role::Granting(None), now.mono);
                    return true;
                };
                let op = CoordOp::Campaign {
                    key: self.election_key(),
                    value: self.cfg.node.clone(),
                    lease: lease.id,
                };
                let req = self.send_coord(op, out);
                self.set_role(Role::Campaigning(Some(req)));
            }
            Role::Observing(None) => {
                let prefix = format!("{}/", self.cfg.election.as_deref().unwrap_or_default());
                let req = self.send_coord(CoordOp::Observe { prefix }, out);
                self.set_role(Role::Observing(Some(req)));
            }
            Role::Withdrawing {
                req: None,
                key,
                then_campaign,
            } => self.send_withdraw(key, then_campaign, out),
            Role::Watching => self.send_watch_read(out),
            Role::Revoking {
                req: None,
                lease,
                key,
                expired_by,
            } => {
                if now.mono >= expired_by {
                    // etcd has let the lease expire by now: nothing left to revoke.
                    self.request_at(Role::Granting(None), now.mono);
                    return true;
                }
                let op = CoordOp::Resign {
                    key: key.clone(),
                    lease,
                };
                let req = Some(self.send_coord(op, out));
                self.set_role(Role::Revoking {
                    req,
                    lease,
                    key,
                    expired_by,
                });
            }
            _ => {}
        }
        false
    }

    /// Leaves the roles that may write, then gives up the lease and campaigns anew.
    pub(super) fn resign_and_recampaign(&mut self, now: Now, reason: &str, out: &mut Vec<Output>) {
        self.lose_write_right(now, reason, out);
        self.revoke_and_recampaign(now);
    }

    /// Gives up our lease and key: no more renewals; delete the key and revoke the lease
    /// (retried until it succeeds or the lease has surely expired), then campaign anew.
    /// A seat withdraws its key and campaigns anew with the session's lease.
    pub(super) fn revoke_and_recampaign(&mut self, now: Now) {
        let key = self.key.take();
        if self.cfg.on_bucket() {
            // Nothing to revoke: the fence is the lease. Watch it again.
            self.drop_lease();
            return self.request_at(Role::Watching, now.mono);
        }
        if self.seated() {
            return match key {
                Some(key) => self.request_at(Role::withdrawing(key, true), now.mono),
                None => self.campaign_or_idle(now),
            };
        }
        match self.drop_lease() {
            Some(lease) => {
                let revoking = Role::Revoking {
                    req: None,
                    lease: lease.id,
                    key,
                    expired_by: lease.expired_by(),
                };
                self.request_at(revoking, now.mono);
            }
            None => self.request_at(Role::Granting(None), now.mono),
        }
    }
}
