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

use super::Node;
use crate::core::types::{Now, Output, Permit, StoreRequest, WriteOp};

impl Node {
    /// Checks every invariant after a step at `now` that gave `out`; panics naming the first
    /// rule broken. Also runs the leader's own checks.
    pub(super) fn check_invariants(&self, now: Now, out: &[Output]) {
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
        self.check_outputs(now, out);
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
                    if let StoreRequest::Write { op, permit, .. } = req {
                        self.check_write(now, op, permit);
                    }
                }
                Output::Compact(job) => require(self.term.is_some(), "no-job-without-term", || {
                    format!("job {:?} started without a term", job.job)
                }),
                Output::Timer(_) => require(i + 1 == out.len(), "one-timer-last", || {
                    format!("a timer before the end of {out:?}")
                }),
                _ => {}
            }
        }
    }

    /// The rules on one mutation issued under `permit`.
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
