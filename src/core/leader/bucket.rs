//! The bucket provider's roles (`--election=bucket`): the fence object is the lease. A
//! candidate reads it every third of a TTL ([`Role::Watching`]) and takes it over once one
//! version stood unchanged for the observe wait ([`super::bucket_lease`]), or at once when
//! it is absent or released: a CAS with If-Match on the version it watched, to the next
//! epoch. From there the roles are etcd's: fencing (that CAS), the takeover delay, leading,
//! with every successful fence CAS moving the lease deadline as an acknowledged keepalive
//! does. A conflict or a lost answer is settled by reading the fence back: holding the very
//! record we wrote (nonce, epoch, seq and renewal time), our write landed; an earlier record
//! of ours is taken as the fence's current state; anything else not ours ends the term.

use super::bucket_lease::landed;
use super::config::bucket_renewal_interval;
use super::election::Role;
use super::fencing::FenceOp;
use super::timers::Timer;
use super::Leader;
use crate::core::fence::{FenceRecord, FenceVersion, FENCE_PATH};
use crate::core::types::{Epoch, Event, Now, Output};

impl Leader {
    /// A read of the fence answered under the bucket provider.
    pub(super) fn on_bucket_fence_read(
        &mut self,
        now: Now,
        found: Option<(FenceRecord, FenceVersion)>,
        out: &mut Vec<Output>,
    ) {
        let unconfirmed = self.fence.unconfirmed.take();
        if self.role == Role::Watching {
            return self.on_watch_read(now, found, out);
        }
        let Some(epoch) = self.role.chosen_epoch() else {
            self.fence.current = found;
            return;
        };
        let ours = found
            .as_ref()
            .filter(|(r, _)| r.epoch == epoch.0 && self.is_ours(r));
        let Some((record, version)) = ours.cloned() else {
            let reason = match &found {
                Some((r, _)) => format!(
                    "{FENCE_PATH} holds epoch {} of {:?}, ours is {}",
                    r.epoch, r.holder, epoch.0
                ),
                None => format!("{FENCE_PATH} vanished"),
            };
            out.push(Output::Event(Event::FenceConflict {
                epoch: epoch.0,
                found: found.as_ref().map(|(r, _)| r.clone()),
            }));
            self.resign_and_recampaign(now, &reason, out);
            // Watching again, starting from this very read.
            return self.on_watch_read(now, found, out);
        };
        if let Some(FenceOp::Cas {
            record: sent,
            sent_at,
            guards_commit,
        }) = unconfirmed
        {
            if landed(&sent, Some(&record)) {
                return self.on_fence_written(now, sent, version, sent_at, guards_commit, out);
            }
        }
        self.fence.current = Some((record, version));
    }

    /// A candidate read the fence: take it over if it is free or one version stood for the
    /// observe wait, else read it again a third of a TTL later (or when the wait ends).
    fn on_watch_read(
        &mut self,
        now: Now,
        found: Option<(FenceRecord, FenceVersion)>,
        out: &mut Vec<Output>,
    ) {
        let holder = found
            .as_ref()
            .filter(|(r, _)| r.renewed_unix_ms > 0)
            .map(|(r, _)| (r.holder.clone(), r.epoch));
        self.observed.note_holder(now, holder, &self.cfg.node, out);
        self.watch.observe(now.mono, found.clone());
        self.fence.current = found;
        let ttl = self.cfg.lease_ttl_ms;
        let at = match self.cfg.safety.observe_wait {
            true => self.watch.takeover_at(ttl).unwrap_or(now.mono),
            // Switched off (`--bug no-observe-wait`): take over at the first read.
            false => now.mono,
        };
        if now.mono < at {
            let next = now.mono.plus(bucket_renewal_interval(ttl)).min(at);
            return self.request_at(Role::Watching, next);
        }
        let epoch = Epoch(self.watch.next_epoch());
        out.push(Output::Event(Event::Elected { epoch: epoch.0 }));
        self.take_bucket_lease(now.mono);
        self.enter_fencing(epoch);
        // The read just taken is the one the takeover CAS names (If-Match).
        self.fence.read_since_fencing = true;
    }

    /// A candidate's read of the fence is due (at [`Timer::CoordRequest`]): send it.
    pub(super) fn send_watch_read(&mut self, out: &mut Vec<Output>) {
        self.timers.stop(Timer::CoordRequest);
        self.issue_read(out);
    }

    /// Our takeover CAS for `epoch` landed: we hold the lease; the next term watches afresh.
    pub(super) fn took_bucket_lease(&mut self, now: Now, epoch: Epoch, out: &mut Vec<Output>) {
        self.watch.restart(epoch.0);
        let me = Some((self.cfg.node.clone(), epoch.0));
        self.observed.note_holder(now, me, &self.cfg.node, out);
    }
}
