//! The lease: its grant and keepalives, the local lease deadline that ends every write, the
//! write permit built from it, and giving up a lease that etcd no longer answers for.
//!
//! Only acknowledged renewals move the deadline: a keepalive (or the grant) that etcd
//! answered proves the lease lives until `sent_at + TTL` on etcd's clock, so on ours until
//! `sent_at + TTL * (1 - max drift) - margin`; the permit lapses `op_timeout` earlier.

use super::config::{deadline_span, keepalive_interval, LeaderConfig, MAX_DRIFT_PERMILLE};
use super::election::Role;
use super::timers::{Timer, RETRY_MIN_MS};
use super::Leader;
use crate::core::coord::{CoordId, CoordOp, CoordResult, LeaseId};
use crate::core::types::{Epoch, Event, Millis, Now, Output, Permit};

/// Our lease as we know it.
#[derive(Clone, Debug)]
pub(super) struct Lease {
    pub(super) id: LeaseId,
    ttl_ms: i64,
    /// When the last acknowledged grant or keepalive was sent.
    acked_sent_at: Millis,
    /// When the last grant or keepalive was sent, acknowledged or not: etcd may have
    /// renewed the lease then.
    renewal_sent_at: Millis,
}

impl Lease {
    /// When the permit of writes under this lease lapses (never with the lease deadline
    /// switched off).
    pub(super) fn permit_until(&self, cfg: &LeaderConfig) -> Millis {
        if !cfg.safety.lease_deadline {
            return Millis::MAX;
        }
        self.acked_sent_at
            .plus(deadline_span(self.ttl_ms) - cfg.op_timeout_ms)
    }

    /// When the lease counts as unheard: no renewal sent within the last TTL before this
    /// was acknowledged. Later than [`Lease::permit_until`], so no write runs then.
    pub(super) fn unheard_at(&self) -> Millis {
        self.acked_sent_at.plus(self.ttl_ms)
    }

    /// By when etcd has surely let the lease expire if no renewal is sent any more: one TTL
    /// (at the largest clock-rate difference) after the last renewal, plus that renewal's
    /// way to etcd (at most a TTL, since a request is abandoned after a fifth of one).
    pub(super) fn expired_by(&self) -> Millis {
        self.renewal_sent_at
            .plus(2 * self.ttl_ms + self.ttl_ms * MAX_DRIFT_PERMILLE / 1000)
    }
}

/// The node's session lease, lent by the bucket's leader to the stream seats: their keys
/// are attached to it, and their permits end with its deadline.
#[derive(Clone, Debug)]
pub struct SessionLease(Lease);

/// The lease part of the leader: the lease, and its requests in flight.
#[derive(Debug, Default)]
pub(super) struct LeaseKeeper {
    /// The lease, once granted and until given up or lost.
    pub(super) current: Option<Lease>,
    /// The keepalive in flight, and when it was sent.
    pub(super) keepalive: Option<(CoordId, Millis)>,
    /// When the lease grant in flight was sent.
    pub(super) grant_sent_at: Option<Millis>,
}

impl Leader {
    /// The permit for a write under `epoch` issued at `now`: valid until the lease's permit
    /// lapses (elected; none without a lease or once it lapsed), or forever (single instance).
    pub fn permit_for(&self, epoch: Epoch, now: Now) -> Option<Permit> {
        let valid_until = match &self.cfg.election {
            None => Millis::MAX,
            Some(_) => self.lease.current.as_ref()?.permit_until(&self.cfg),
        };
        (now.mono < valid_until).then_some(Permit { epoch, valid_until })
    }

    /// The lease a stream's seat campaigns and writes under, while this leader (the bucket's,
    /// elected) holds one.
    pub fn session_lease(&self) -> Option<SessionLease> {
        self.cfg.election.as_ref()?;
        self.lease.current.clone().map(SessionLease)
    }

    /// A seat takes the session's lease as it is now. The same lease renews the seat's
    /// deadline; a new one, or none, ends whatever the seat did under the old one — its key
    /// went with that lease — and it campaigns again with the new one (or waits).
    pub fn adopt_session(
        &mut self,
        now: Now,
        session: Option<SessionLease>,
        out: &mut Vec<Output>,
    ) {
        debug_assert!(
            self.seated(),
            "only a stream's seat borrows the session's lease"
        );
        let session = session.map(|s| s.0);
        let same = matches!((&self.lease.current, &session), (Some(a), Some(b)) if a.id == b.id);
        if same || (self.lease.current.is_none() && session.is_none()) {
            self.lease.current = session;
            return;
        }
        let had_lease = self.lease.current.is_some();
        self.lease.current = session;
        match self.role {
            Role::Starting | Role::Exited => {}
            Role::Withdrawing {
                then_campaign: false,
                ..
            } if had_lease => {
                // The key we were withdrawing went with the old lease.
                self.key = None;
                self.exit(0, out);
            }
            _ => {
                self.lose_write_right(now, "the session's lease ended", out);
                self.key = None;
                self.campaign_or_idle(now);
            }
        }
        self.arm_state_timers();
    }

    /// True while we hold a lease whose permit has not lapsed.
    pub(super) fn lease_permit_open(&self, now: Now) -> bool {
        self.lease
            .current
            .as_ref()
            .is_some_and(|l| now.mono < l.permit_until(&self.cfg))
    }

    /// etcd granted the lease asked for at the grant's send time (`now` if unknown).
    pub(super) fn take_granted_lease(&mut self, now: Now, id: LeaseId, ttl_secs: i64) {
        let sent_at = self.lease.grant_sent_at.take().unwrap_or(now.mono);
        let ttl_ms = ttl_secs.saturating_mul(1000);
        self.lease.current = Some(Lease {
            id,
            ttl_ms,
            acked_sent_at: sent_at,
            renewal_sent_at: sent_at,
        });
        let next = sent_at.plus(keepalive_interval(ttl_ms));
        self.timers.set(Timer::Keepalive, next);
    }

    /// Bucket provider: the lease a takeover write sent at `sent_at` starts if it lands. Its
    /// permit covers that write; a takeover that fails goes back to watching without it.
    pub(super) fn take_bucket_lease(&mut self, sent_at: Millis) {
        let ttl_ms = self.cfg.lease_ttl_ms;
        self.lease.current = Some(Lease {
            id: LeaseId(0),
            ttl_ms,
            acked_sent_at: sent_at,
            renewal_sent_at: sent_at,
        });
    }

    /// Bucket provider: our fence write sent at `sent_at` landed, so no one takes the fence
    /// over before `sent_at + TTL` on the slowest clock: the deadline moves as etcd's does
    /// with an acknowledged keepalive.
    pub(super) fn renew_bucket_lease(&mut self, now: Now, sent_at: Millis, out: &mut Vec<Output>) {
        let Some(lease) = self.lease.current.as_mut() else {
            return;
        };
        lease.acked_sent_at = lease.acked_sent_at.max(sent_at);
        lease.renewal_sent_at = lease.renewal_sent_at.max(sent_at);
        let remaining = self.permit(now).map_or(0, |p| p.valid_until.0 - now.mono.0);
        out.push(Output::Event(Event::LeaseRenewed {
            permit_remaining_ms: remaining,
        }));
    }

    /// Forgets the lease, and the keepalive in flight with it; returns the lease.
    pub(super) fn drop_lease(&mut self) -> Option<Lease> {
        self.lease.keepalive = None;
        self.timers.stop(Timer::Keepalive);
        self.lease.current.take()
    }

    /// Feeds the answer to the keepalive sent at `sent_at`.
    pub(super) fn on_keepalive(
        &mut self,
        now: Now,
        sent_at: Millis,
        result: CoordResult,
        out: &mut Vec<Output>,
    ) {
        let Some(lease) = self.lease.current.as_mut() else {
            return;
        };
        let interval = keepalive_interval(lease.ttl_ms);
        match result {
            CoordResult::KeptAlive { ttl_secs } if ttl_secs > 0 => {
                lease.ttl_ms = ttl_secs.saturating_mul(1000);
                lease.acked_sent_at = lease.acked_sent_at.max(sent_at);
                self.timers.set(Timer::Keepalive, sent_at.plus(interval));
                let remaining = self.permit(now).map_or(0, |p| p.valid_until.0 - now.mono.0);
                out.push(Output::Event(Event::LeaseRenewed {
                    permit_remaining_ms: remaining,
                }));
            }
            CoordResult::KeptAlive { .. } => {
                self.lose_write_right(now, "the etcd lease expired", out);
                self.drop_lease();
                self.key = None;
                self.request_at(Role::Granting(None), now.mono);
            }
            CoordResult::Failed(error) => {
                out.push(Output::Event(Event::CoordFailed {
                    op: "lease-keepalive".into(),
                    error: error.to_string(),
                }));
                let retry = now.mono.plus(RETRY_MIN_MS.min(interval));
                self.timers.set(Timer::Keepalive, retry);
            }
            _ => self.timers.set(Timer::Keepalive, now.mono),
        }
    }

    /// The lease's part of [`Leader::drive`]: stop writing at the lease deadline, give up a
    /// lease etcd no longer answers for, and send the keepalive when due.
    pub(super) fn drive_lease(&mut self, now: Now, out: &mut Vec<Output>) {
        // The lease deadline: stop writing before etcd may have let the lease expire.
        if self.cfg.election.is_some()
            && self.role.chosen_epoch().is_some()
            && !self.lease_permit_open(now)
        {
            self.lose_write_right(now, "the lease deadline passed without a renewal", out);
        }
        let Some(lease) = &self.lease.current else {
            return;
        };
        if self.seated() || self.cfg.on_bucket() {
            // The session renews (or abandons) the lease; the bucket's is renewed by the
            // fence writes.
            return;
        }
        if self.cfg.abandons_unheard_lease() && now.mono >= lease.unheard_at() {
            self.abandon_unheard_lease(now, out);
        } else if self.timers.is_due(Timer::Keepalive, now.mono) {
            debug_assert!(self.lease.keepalive.is_none(), "one keepalive at a time");
            let op = CoordOp::KeepAlive { lease: lease.id };
            let id = self.send_coord(op, out);
            self.lease.keepalive = Some((id, now.mono));
            self.timers.stop(Timer::Keepalive);
            if let Some(lease) = self.lease.current.as_mut() {
                lease.renewal_sent_at = now.mono;
            }
        }
    }

    /// No renewal sent within the last TTL was acknowledged: etcd may be hearing our
    /// keepalives while we do not hear its answers, which would keep our key alive (and
    /// everyone else from being elected) for as long as that lasts. Stop renewing, so that
    /// etcd expires the lease within about a TTL, and revoke it once etcd answers.
    fn abandon_unheard_lease(&mut self, now: Now, out: &mut Vec<Output>) {
        let Some(lease) = &self.lease.current else {
            return;
        };
        let unheard_ms = now.mono.0 - lease.acked_sent_at.0;
        self.lose_write_right(now, "no lease renewal was acknowledged for a TTL", out);
        out.push(Output::Event(Event::LeaseAbandoned { unheard_ms }));
        self.revoke_and_recampaign(now);
    }

    /// Re-arms the lease's two deadlines from the lease and the role (see
    /// [`Timer::LeaseUnheard`] and [`Timer::PermitLapse`]).
    pub(super) fn arm_lease_timers(&mut self) {
        let lease = self.lease.current.as_ref();
        let unheard = lease
            .filter(|_| self.cfg.abandons_unheard_lease())
            .map(Lease::unheard_at);
        let lapse = lease
            .filter(|_| self.role.chosen_epoch().is_some())
            .map(|l| l.permit_until(&self.cfg));
        self.timers.arm(Timer::LeaseUnheard, unheard);
        self.timers.arm(Timer::PermitLapse, lapse);
    }
}
