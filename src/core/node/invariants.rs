//! The node's invariants, checked after every [`Node::step`] in debug builds: unit tests, the
//! fuzz target and every simulated world run them, so a step that breaks one fails where it
//! happens rather than as a violation the simulation's checker finds later (or never).
//!
//! Each rule is named; a broken one panics with `node invariant <rule> broken: <detail>`.
//! They hold with every [`Safety`] switch: a rule that rests on a mechanism is checked only
//! while that mechanism is on, so the simulation's `--bug` runs still reach its checker.
//!
//! [`Safety`]: crate::core::leader::Safety

use std::collections::BTreeSet;

use super::unit::Unit;
use super::Node;
use crate::core::request_ids::Slot;
use crate::core::types::{Now, Output, Permit, RequestId, StoreRequest, WriteOp};

impl Node {
    /// Checks every invariant after a step at `now` that gave `out`; panics naming the first
    /// rule broken. Also runs each leader's own checks.
    pub(super) fn check_invariants(&self, now: Now, out: &[Output]) {
        for unit in self.units() {
            unit.check_invariants();
        }
        self.check_outputs(now, out);
        self.check_streams();
    }

    /// Every unit of the node: the bucket's and each seat's.
    fn units(&self) -> impl Iterator<Item = &Unit> {
        std::iter::once(&self.bucket).chain(self.seats().map(|(_, seat)| &seat.unit))
    }

    /// The unit whose slot issued request `id`, if it still exists.
    fn unit_of(&self, id: RequestId) -> Option<&Unit> {
        let slot = Slot::of_request(id);
        if slot == Slot::BUCKET {
            return Some(&self.bucket);
        }
        self.seats()
            .find(|(_, seat)| seat.slot == slot)
            .map(|(_, seat)| &seat.unit)
    }

    /// The rules on what one step asks for.
    fn check_outputs(&self, now: Now, out: &[Output]) {
        let mut ids = BTreeSet::new();
        for (i, o) in out.iter().enumerate() {
            match o {
                Output::Store(req) => {
                    require(ids.insert(req.id()), "unique-request-ids", || {
                        format!("{:?} twice in {out:?}", req.id())
                    });
                    if let StoreRequest::Write { id, op, permit } = req {
                        let unit = self.unit_of(*id);
                        require(unit.is_some(), "write-from-a-unit", || {
                            format!("{op:?} from no unit of the node")
                        });
                        if let Some(unit) = unit {
                            unit.check_write(now, op, permit);
                        }
                    }
                }
                Output::Compact(job) => {
                    let slot = Slot::of_job(job.job);
                    let unit = self.units().find(|u| u.leader.slot() == slot);
                    require(
                        unit.is_some_and(|u| u.term.is_some()),
                        "no-job-without-term",
                        || format!("job {:?} started without a term", job.job),
                    )
                }
                Output::Timer(_) => require(i + 1 == out.len(), "one-timer-last", || {
                    format!("a timer before the end of {out:?}")
                }),
                _ => {}
            }
        }
    }

    /// The rules of per-stream ownership: a node leads no stream it holds no seat for, and
    /// every seat leads under an epoch of its own.
    fn check_streams(&self) {
        let mut epochs = BTreeSet::new();
        for (stream, seat) in self.seats() {
            if let Some(epoch) = seat.unit.leader.leading() {
                require(epochs.insert(epoch), "one-epoch-per-stream", || {
                    format!("stream {stream} leads under epoch {epoch:?} of another seat")
                });
                require(
                    self.bucket.leader.leading() != Some(epoch),
                    "one-epoch-per-stream",
                    || format!("stream {stream} leads under the bucket's epoch {epoch:?}"),
                );
            }
        }
    }
}

impl Unit {
    /// The unit's own rules: its leader's checks, and its cycle runs exactly in its terms.
    fn check_invariants(&self) {
        self.leader.check_invariants();
        // Without a term nothing of the cycle's is under way: no pass, no job, no mutation.
        require(
            self.term.is_some() || self.cycle.at_rest(),
            "no-work-without-term",
            || format!("the cycle is busy without a term: {:?}", self.cycle),
        );
        // The cycle runs exactly while the leader leads.
        require(
            self.term == self.leader.leading(),
            "term-follows-leader",
            || {
                format!(
                    "term {:?}, leader leads {:?}",
                    self.term,
                    self.leader.leading()
                )
            },
        );
    }

    /// The rules on one mutation of this unit issued under `permit`.
    pub(super) fn check_write(&self, now: Now, op: &WriteOp, permit: &Permit) {
        // The permit is live, and no later than the lease allows one issued now: the lease
        // deadline minus the op timeout (elected), forever (single instance).
        let limit = self.leader.permit_for(permit.epoch, now);
        require(
            limit.is_some_and(|l| permit.valid_until <= l.valid_until),
            "permit-within-lease",
            || format!("{op:?} under {permit:?}; a permit issued now: {limit:?}"),
        );
        if let WriteOp::CasFence { record, .. } = op {
            // The leader's fence work, also while it is chosen but not leading yet.
            require(
                record.epoch == permit.epoch.0,
                "fence-cas-own-epoch",
                || format!("CAS of {record:?} under {permit:?}"),
            );
            return;
        }
        // Every other mutation is the cycle's: it runs only in the term of its permit.
        require(
            self.term == Some(permit.epoch),
            "no-mutation-without-term",
            || format!("{op:?} under {permit:?} in term {:?}", self.term),
        );
        // A commit leaves the gate only while the fence holds our epoch.
        let fenced = !self.leader.safety().fence || self.leader.fence_holds(permit.epoch);
        require(!op.is_commit() || fenced, "commit-needs-fence", || {
            format!("{op:?} under {permit:?} while the fence holds another epoch")
        });
    }
}

/// Panics naming `rule` unless it `holds`.
fn require(holds: bool, rule: &str, detail: impl FnOnce() -> String) {
    assert!(holds, "node invariant {rule} broken: {}", detail());
}
