//! The cycle's queue of operator requests ([`crate::core::admin`]): requests wait in order;
//! the first one's commits are sent one at a time, each under the permit of the step that
//! sends it (the unit passes commits through the leader's gate, which guards each with a
//! fence CAS). A request ends with an [`Event::AdminDone`] when its last commit is answered,
//! when one fails (the ones before stand), or when the term ends ([`Cycle::abandon_admin`]).
//! Requests run whatever the iteration does, also while compaction is halted: marking the
//! block that halted it is what an operator asks for then.

use std::collections::VecDeque;

use super::Cycle;
use crate::core::admin::{AdminOutcome, AdminRequest, ADMIN_QUEUE_MAX};
use crate::core::types::{Event, Output, Permit, RequestId, StoreRequest, StoreResult, WriteOp};

/// The requests of a cycle.
#[derive(Debug, Default)]
pub(super) struct AdminQueue {
    waiting: VecDeque<Running>,
}

/// A request with what is left of it.
#[derive(Debug)]
struct Running {
    request: AdminRequest,
    /// The index of the next commit to send.
    next: usize,
    /// The commit in flight.
    in_flight: Option<RequestId>,
    outcome: AdminOutcome,
}

impl Cycle {
    /// Queues an operator request, or answers at once when it cannot be taken.
    pub(super) fn admin(&mut self, request: AdminRequest, out: &mut Vec<Output>) {
        let refusal = request.refusal().or_else(|| {
            (self.admin.waiting.len() >= ADMIN_QUEUE_MAX)
                .then(|| format!("{ADMIN_QUEUE_MAX} requests wait already; try again later"))
        });
        if let Some(error) = refusal {
            out.push(done(request.id, AdminOutcome::failed(error)));
            return;
        }
        self.admin.waiting.push_back(Running {
            request,
            next: 0,
            in_flight: None,
            outcome: AdminOutcome::default(),
        });
    }

    /// Sends the next commit of the first request, if none is in flight and there is a
    /// permit.
    pub(super) fn drive_admin(&mut self, permit: Option<Permit>, out: &mut Vec<Output>) {
        let Some(permit) = permit else { return };
        let Some(running) = self.admin.waiting.front_mut() else {
            return;
        };
        if running.in_flight.is_some() {
            return;
        }
        let op: WriteOp = running.request.ops[running.next].clone();
        debug_assert!(
            op.is_commit(),
            "an operator request is commits only: {op:?}"
        );
        let id = self.ids.next_request();
        running.in_flight = Some(id);
        running.next += 1;
        running.outcome.epoch = permit.epoch.0;
        out.push(Output::Store(StoreRequest::write(id, op, permit)));
    }

    /// Takes the answer to a commit of the first request; false when `id` is not one.
    pub(super) fn on_admin_store(
        &mut self,
        id: RequestId,
        result: &StoreResult,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(running) = self.admin.waiting.front_mut() else {
            return false;
        };
        if running.in_flight != Some(id) {
            return false;
        }
        running.in_flight = None;
        match result {
            StoreResult::Done => running.outcome.committed += 1,
            StoreResult::MarkerExisted => running.outcome.existed += 1,
            StoreResult::Failed(e) => running.outcome.error = Some(e.to_string()),
            other => running.outcome.error = Some(format!("unexpected answer {other:?}")),
        }
        let ended = running.outcome.error.is_some() || running.next == running.request.ops.len();
        if ended {
            let running = self
                .admin
                .waiting
                .pop_front()
                .expect("the front, matched above");
            out.push(done(running.request.id, running.outcome));
        }
        true
    }

    /// True when `id` is an operator request's commit in flight.
    pub fn is_admin_request(&self, id: RequestId) -> bool {
        self.admin
            .waiting
            .front()
            .is_some_and(|r| r.in_flight == Some(id))
    }

    /// The term ended: every request is answered with what it did so far.
    pub fn abandon_admin(&mut self, out: &mut Vec<Output>) {
        for mut running in self.admin.waiting.drain(..) {
            let answer_unknown = running.in_flight.is_some();
            running.outcome.error = Some(if answer_unknown {
                "this writer's term ended with a commit unanswered (it may have landed); \
                 read the bucket before sending the request again"
                    .into()
            } else {
                "this writer's term ended before the request's end".into()
            });
            out.push(done(running.request.id, running.outcome));
        }
    }
}

fn done(id: crate::core::admin::AdminId, outcome: AdminOutcome) -> Output {
    Output::Event(Event::AdminDone { id, outcome })
}
