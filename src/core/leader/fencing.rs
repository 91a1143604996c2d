//! The bucket fence, as the leader keeps it: read it and compare-and-swap it to our epoch when
//! chosen, renew it every TTL/3 while leading and before every commit (the gate), and step
//! down when it holds a higher epoch. A single instance keeps it too, and refuses to write
//! while another holder has renewed it within the lease TTL. The record itself is
//! [`crate::core::fence`]'s.

use super::election::Role;
use super::timers::Timer;
use super::Leader;
use crate::core::fence::{fence_path, FenceRecord, FenceVersion, FENCE_PATH};
use crate::core::types::{
    Epoch, Event, Millis, Now, Output, ReadOp, RequestId, StoreRequest, StoreResult, WriteOp,
};

/// Exit code when the fence refuses a single instance.
pub const EXIT_FENCED: i32 = 1;

/// A fence request in flight.
#[derive(Clone, Debug)]
pub(super) enum FenceOp {
    /// Reading the fence.
    Read,
    /// Compare-and-swapping it to `record`.
    Cas {
        /// The record written.
        record: FenceRecord,
        /// When the CAS was sent: a commit it guards must be sent within the commit window
        /// after this.
        sent_at: Millis,
        /// True when a commit waits for it.
        guards_commit: bool,
    },
}

/// The fence part of the leader.
#[derive(Debug, Default)]
pub(super) struct FenceKeeper {
    /// The fence as last read or written, with its version.
    pub(super) current: Option<(FenceRecord, FenceVersion)>,
    /// The fence request in flight.
    pub(super) in_flight: Option<(RequestId, FenceOp)>,
    /// True when `current` was read or written since fencing began.
    pub(super) read_since_fencing: bool,
    /// When our last fence CAS succeeded: the next renewal is due a third of a TTL later.
    written_at: Option<Millis>,
    /// Bucket provider: our CAS whose answer was a conflict or a failure, until the fence
    /// is read back — holding our record, it landed (`bucket_lease::landed`).
    pub(super) unconfirmed: Option<FenceOp>,
}

impl Leader {
    /// Starts fencing for `epoch`; a fence request still in flight from an earlier term is
    /// abandoned, so its answer cannot be taken for this term's.
    pub(super) fn enter_fencing(&mut self, epoch: Epoch) {
        self.set_role(Role::Fencing(epoch));
        self.fence.read_since_fencing = false;
        self.fence.in_flight = None;
        self.timers.stop(Timer::FenceRetry);
    }

    /// True when the fence holds our record, not released.
    pub(super) fn fence_ours(&self) -> bool {
        self.fence
            .current
            .as_ref()
            .is_some_and(|(r, _)| self.is_ours(r) && r.renewed_unix_ms > 0)
    }

    /// True when `record` was written by this node (by this very process, with the bucket
    /// provider, which stamps its nonce).
    pub(super) fn is_ours(&self, record: &FenceRecord) -> bool {
        record.holder == self.cfg.node && (!self.cfg.on_bucket() || record.nonce == self.cfg.nonce)
    }

    /// True when the fence as last read or written holds `epoch` and this node.
    pub fn fence_holds(&self, epoch: Epoch) -> bool {
        self.fence
            .current
            .as_ref()
            .is_some_and(|(r, _)| r.epoch == epoch.0 && r.holder == self.cfg.node)
    }

    /// The epoch the fence work is for.
    fn fence_epoch(&self) -> Epoch {
        self.role.chosen_epoch().unwrap_or_default()
    }

    /// Bucket provider: keeps a CAS whose answer did not say it landed, to look for it in
    /// the read that follows.
    fn remember_unconfirmed(&mut self, op: FenceOp) {
        if self.cfg.on_bucket() && matches!(op, FenceOp::Cas { .. }) {
            self.fence.unconfirmed = Some(op);
        }
    }

    /// Feeds the answer to the fence request `op`.
    pub(super) fn on_fence_answer(
        &mut self,
        now: Now,
        op: FenceOp,
        result: StoreResult,
        out: &mut Vec<Output>,
    ) {
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
            (op, StoreResult::FenceConflict) => {
                out.push(Output::Event(Event::FenceConflict {
                    epoch: self.fence_epoch().0,
                    found: None,
                }));
                self.remember_unconfirmed(op);
                self.issue_read(out);
            }
            (op, result) => {
                let error = match result {
                    StoreResult::Failed(e) => e.to_string(),
                    other => format!("unexpected answer {other:?}"),
                };
                let op_name = match op {
                    FenceOp::Read => "read-fence",
                    FenceOp::Cas { .. } => "cas-fence",
                };
                out.push(Output::Event(Event::MutationFailed {
                    op: op_name.into(),
                    error,
                }));
                if self.role == Role::Watching {
                    return self.retry(Role::Watching, now);
                }
                self.remember_unconfirmed(op);
                // Whether a failed CAS applied is unknown: read the fence before anything else.
                let retry = self.backoff.retry_at(now.mono);
                self.timers.set(Timer::FenceRetry, retry);
            }
        }
    }

    fn on_fence_read(
        &mut self,
        now: Now,
        found: Option<(FenceRecord, FenceVersion)>,
        out: &mut Vec<Output>,
    ) {
        self.backoff.reset();
        self.fence.read_since_fencing = true;
        if self.cfg.on_bucket() {
            return self.on_bucket_fence_read(now, found, out);
        }
        let epoch = self.fence_epoch();
        let Some((rec, ver)) = found else {
            if matches!(self.role, Role::Leading(_) | Role::Delaying(_)) {
                // The fence vanished under us (deleted by hand?): fence again, with the delay.
                self.lose_write_right(now, "the fence vanished", out);
                self.set_role(Role::Fencing(epoch));
            }
            self.fence.current = None;
            return;
        };
        if self.cfg.election.is_none() {
            return self.on_single_fence_read(now, rec, ver, out);
        }
        let ours = epoch.0;
        if rec.epoch > ours || (rec.epoch == ours && rec.holder != self.cfg.node) {
            let reason = format!(
                "{} holds epoch {} of {:?}, ours is {ours}",
                fence_path(self.cfg.stream),
                rec.epoch,
                rec.holder
            );
            out.push(Output::Event(Event::FenceConflict {
                epoch: ours,
                found: Some(rec),
            }));
            return self.resign_and_recampaign(now, &reason, out);
        }
        if rec.epoch < ours && matches!(self.role, Role::Leading(_) | Role::Delaying(_)) {
            // An older writer wrote after our fence: fence again and wait out the delay.
            self.lose_write_right(now, "an older epoch wrote the fence after ours", out);
            self.set_role(Role::Fencing(epoch));
        }
        self.fence.current = Some((rec, ver));
    }

    /// A single instance read the fence: it refuses to write, and exits, if another holder
    /// renewed it within the TTL (or took it while this node held it).
    fn on_single_fence_read(
        &mut self,
        now: Now,
        rec: FenceRecord,
        ver: FenceVersion,
        out: &mut Vec<Output>,
    ) {
        let epoch = self.fence_epoch().0;
        let fresh = now.wall.0 - rec.renewed_unix_ms < self.cfg.lease_ttl_ms;
        if rec.holder != self.cfg.node && (fresh || self.role != Role::Fencing(Epoch(0))) {
            let reason = format!(
                "refusing to write: {FENCE_PATH} is held by {:?} (epoch {}), renewed {} ago; \
                 another compactd writes to this bucket. Stop it, or wait until it has not \
                 renewed the fence for --etcd.lease-ttl",
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
        self.fence.current = Some((rec, ver));
    }

    pub(super) fn on_fence_written(
        &mut self,
        now: Now,
        record: FenceRecord,
        version: FenceVersion,
        sent_at: Millis,
        guards_commit: bool,
        out: &mut Vec<Output>,
    ) {
        self.backoff.reset();
        self.fence.current = Some((record, version));
        self.fence.written_at = Some(now.mono);
        if self.cfg.on_bucket() && self.role.chosen_epoch().is_some() {
            self.renew_bucket_lease(now, sent_at, out);
        }
        match self.role {
            Role::Fencing(epoch) => self.fenced(now, epoch, out),
            Role::Leading(_) if guards_commit => self.release_guarded_commit(now, sent_at, out),
            _ => {}
        }
    }

    /// The bucket is fenced for `epoch`: wait out the takeover delay (elected) or lead.
    fn fenced(&mut self, now: Now, epoch: Epoch, out: &mut Vec<Output>) {
        if self.cfg.on_bucket() {
            self.took_bucket_lease(now, epoch, out);
        }
        if self.cfg.election.is_some() {
            self.set_role(Role::Delaying(epoch));
            let until = now.mono.plus(self.cfg.takeover_delay_ms);
            self.timers.set(Timer::TakeoverDelay, until);
        } else {
            self.observed.took_over(now, epoch, &self.cfg, out);
            self.set_role(Role::Leading(epoch));
        }
    }

    /// The fence's part of [`Leader::drive`]: read it, CAS it, renew it, or retry.
    pub(super) fn drive_fence(&mut self, now: Now, out: &mut Vec<Output>) {
        if !self.cfg.safety.fence {
            return self.skip_fence(now, out);
        }
        if self.fence.in_flight.is_some() {
            return;
        }
        if let Some(at) = self.timers.get(Timer::FenceRetry) {
            if now.mono < at {
                return;
            }
            self.timers.stop(Timer::FenceRetry);
            if self.role.chosen_epoch().is_some() {
                return self.issue_read(out);
            }
        }
        match self.role {
            // Not read since fencing began: read first.
            Role::Fencing(_) if !self.fence.read_since_fencing => self.issue_read(out),
            Role::Fencing(epoch) => {
                let (record, expected) = self.next_fence_record(epoch, now);
                self.issue_cas(record, expected, now, false, out);
            }
            Role::Leading(_) if self.fence.current.is_none() => self.issue_read(out),
            // The bucket provider's lease is the fence: renewed through the takeover delay.
            Role::Delaying(epoch)
                if self.cfg.on_bucket() && now.mono >= self.fence_renewal_due() =>
            {
                let (record, expected) = self.next_fence_record(epoch, now);
                self.issue_cas(record, expected, now, false, out);
            }
            Role::Leading(epoch) => {
                if self.gate.is_empty() && now.mono < self.fence_renewal_due() {
                    return;
                }
                let (record, expected) = self.next_fence_record(epoch, now);
                let guards = !self.gate.is_empty();
                self.issue_cas(record, expected, now, guards, out);
            }
            _ => {}
        }
    }

    /// With the fence switched off ([`Safety::fence`]): take the bucket without fencing it
    /// and release commits as soon as they arrive.
    ///
    /// [`Safety::fence`]: super::Safety::fence
    fn skip_fence(&mut self, now: Now, out: &mut Vec<Output>) {
        match self.role {
            Role::Fencing(epoch) => self.fenced(now, epoch, out),
            Role::Leading(_) => self.release_unguarded_commits(now, out),
            _ => {}
        }
    }

    /// When the fence's heartbeat renewal is due: a third of a TTL after our last CAS
    /// succeeded (never, before the first).
    fn fence_renewal_due(&self) -> Millis {
        self.fence
            .written_at
            .map_or(Millis::MAX, |t| t.plus(self.cfg.lease_ttl_ms / 3))
    }

    /// Re-arms [`Timer::FenceRenewal`]: while leading (or, on the bucket, delaying) with the
    /// fence idle (no request in flight, no retry pending, which replaces the renewal).
    pub(super) fn arm_fence_renewal(&mut self) {
        let idle = self.fence.in_flight.is_none() && self.timers.get(Timer::FenceRetry).is_none();
        let renewing = match self.role {
            Role::Leading(_) => true,
            Role::Delaying(_) => self.cfg.on_bucket(),
            _ => false,
        };
        let due = (renewing && idle).then(|| self.fence_renewal_due());
        self.timers.arm(Timer::FenceRenewal, due);
    }

    /// Our next fence record under `epoch`, renewed now, and the version it replaces: `seq`
    /// one past the fence as we know it, or a new fence when we know none.
    fn next_fence_record(&self, epoch: Epoch, now: Now) -> (FenceRecord, Option<FenceVersion>) {
        let current = self.fence.current.as_ref();
        let record =
            FenceRecord::successor(current.map(|(r, _)| r), epoch.0, &self.cfg.node, now.wall.0);
        (record, current.map(|(_, v)| v.clone()))
    }

    pub(super) fn issue_read(&mut self, out: &mut Vec<Output>) {
        let id = self.ids.next_store();
        let op = match self.cfg.stream {
            None => ReadOp::ReadFence,
            Some(stream) => ReadOp::ReadStreamFence { stream },
        };
        out.push(Output::Store(StoreRequest::read(id, op)));
        self.fence.in_flight = Some((id, FenceOp::Read));
    }

    /// CASes the fence to `record` over `expected` (none: create it), under the permit of
    /// its epoch; nothing without one.
    pub(super) fn issue_cas(
        &mut self,
        mut record: FenceRecord,
        expected: Option<FenceVersion>,
        now: Now,
        guards_commit: bool,
        out: &mut Vec<Output>,
    ) {
        let Some(permit) = self.permit_for(Epoch(record.epoch), now) else {
            return;
        };
        if self.cfg.on_bucket() {
            record.nonce = self.cfg.nonce.clone();
        }
        let id = self.ids.next_store();
        let op = WriteOp::CasFence {
            stream: self.cfg.stream,
            record: record.clone(),
            expected,
        };
        out.push(Output::Store(StoreRequest::write(id, op, permit)));
        let op = FenceOp::Cas {
            record,
            sent_at: now.mono,
            guards_commit,
        };
        self.fence.in_flight = Some((id, op));
    }
}
