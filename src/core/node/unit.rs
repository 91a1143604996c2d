//! A unit of ownership on a node: a leader and the cycle that runs under its terms. The
//! bucket's unit is the bucket leader and its cycle; when every replica compacts, each stream
//! the node holds is a unit too (a *seat*: the stream's leader, on the session's lease, and a
//! cycle scoped to the stream).
//!
//! The cycle runs only while the leader leads: it starts afresh (a new sync) on every term
//! and is abandoned the moment the term ends, so no plan outlives the view it was made
//! from. Its commits pass through the leader's gate, which guards each with a fence CAS;
//! its other mutations carry the leader's permit.

use crate::core::admin::{AdminId, AdminOutcome};
use crate::core::cycle::Cycle;
use crate::core::leader::Leader;
use crate::core::types::{Epoch, Event, Input, Millis, Now, Output, StoreRequest};

/// A leader and its cycle.
#[derive(Debug)]
pub(super) struct Unit {
    pub(super) leader: Leader,
    pub(super) cycle: Cycle,
    /// The term the cycle runs under.
    pub(super) term: Option<Epoch>,
    /// The cycle's pending timer.
    cycle_timer: Option<Millis>,
}

impl Unit {
    /// A unit of `leader` and `cycle`, before its start.
    pub(super) fn new(leader: Leader, cycle: Cycle) -> Unit {
        Unit {
            leader,
            cycle,
            term: None,
            cycle_timer: None,
        }
    }

    /// Advances the unit on `input` (one of its own, or a tick) and appends what to do.
    /// Timers are not appended: the node asks [`Unit::next_timer`] after the step.
    pub(super) fn step(&mut self, now: Now, input: Input, out: &mut Vec<Output>) {
        let mut cycle_out = Vec::new();
        match input {
            Input::Start => self.leader.start(now, out),
            Input::Shutdown => self.leader.finish(now, 0, out),
            Input::Coord(id, result) => self.leader.on_coord(now, id, result, out),
            Input::Store(id, result) if Leader::owns(id) => {
                self.leader.on_store(now, id, result, out)
            }
            input @ (Input::Store(..) | Input::Compacted(..)) => {
                if self.term.is_some() {
                    let permit = self.leader.permit(now);
                    self.cycle.step(now, input, permit, &mut cycle_out);
                }
            }
            Input::Tick => self.leader.drive(now, out),
            Input::Admin(request) => {
                if self.term.is_some() {
                    let permit = self.leader.permit(now);
                    self.cycle
                        .step(now, Input::Admin(request), permit, &mut cycle_out);
                } else {
                    out.push(self.not_leading(request.id));
                }
            }
        }
        self.follow_term(now, &mut cycle_out);
        if self.term.is_some() && cycle_out.is_empty() {
            // Give the cycle its turn on every step: a renewed permit may unblock it.
            self.cycle
                .step(now, Input::Tick, self.leader.permit(now), &mut cycle_out);
        }
        self.route_cycle_outputs(now, cycle_out, out);
        // The leader may have started or ended a term while routing: follow it, and route what
        // a new term's cycle asks for (its first sync).
        let mut started = Vec::new();
        self.follow_term(now, &mut started);
        if !started.is_empty() {
            self.route_cycle_outputs(now, started, out);
        }
    }

    /// Starts the cycle when a term begins and drops it when the term ends.
    fn follow_term(&mut self, now: Now, cycle_out: &mut Vec<Output>) {
        let leading = self.leader.leading();
        if leading == self.term {
            return;
        }
        self.term = leading;
        self.cycle_timer = None;
        self.cycle.abandon_admin(cycle_out);
        self.cycle.restart();
        if leading.is_some() {
            self.cycle
                .step(now, Input::Start, self.leader.permit(now), cycle_out);
        }
    }

    fn route_cycle_outputs(&mut self, now: Now, cycle_out: Vec<Output>, out: &mut Vec<Output>) {
        for o in cycle_out {
            match o {
                Output::Store(StoreRequest::Write { id, op, permit }) if op.is_commit() => {
                    // With `admin_gate` off (`--bug ungated-admin`) an operator's commit goes
                    // out under the term's permit alone, no fence CAS before it.
                    if !self.leader.safety().admin_gate && self.cycle.is_admin_request(id) {
                        out.push(Output::Store(StoreRequest::write(id, op, permit)));
                    } else {
                        self.leader.submit_commit(id, op)
                    }
                }
                Output::Timer(at) => self.cycle_timer = Some(at),
                Output::Exit(code) => {
                    self.leader.finish(now, code, out);
                    return;
                }
                other => out.push(other),
            }
        }
        self.leader.drive(now, out);
    }

    /// The answer to an operator request that reached a unit without a term.
    pub(super) fn not_leading(&self, id: AdminId) -> Output {
        let leader = match self.leader.known_leader() {
            Some(l) => format!("the leader is {:?} (epoch {})", l.node, l.epoch),
            None => "no leader is known".into(),
        };
        let error = format!("this replica does not lead here: {leader}");
        Output::Event(Event::AdminDone {
            id,
            outcome: AdminOutcome::failed(error),
        })
    }

    /// When the unit next wants a tick, if ever.
    pub(super) fn next_timer(&mut self, now: Now) -> Option<Millis> {
        if self.cycle_timer.is_some_and(|t| t <= now.mono) {
            self.cycle_timer = None;
        }
        if self.leader.exited() {
            return None;
        }
        let cycle = self.cycle_timer.filter(|_| self.term.is_some());
        [cycle, self.leader.next_wake()].into_iter().flatten().min()
    }
}
