//! The node: the core's single entry point. It owns leadership ([`Leader`]) and the
//! compaction cycle, and is advanced only by [`Node::step`].
//!
//! The cycle runs only while the leader leads: it starts afresh (a new sync) on every term
//! and is abandoned the moment the term ends, so no plan outlives the view it was made
//! from. Its commits pass through the leader's gate, which guards each with a fence CAS;
//! its other mutations carry the leader's permit. In debug builds (unit tests, the fuzz
//! target, every simulated world) each step ends by checking the node's invariants
//! (`node/invariants.rs`).

mod invariants;

use super::cycle::{Cycle, CycleConfig};
use super::leader::{Leader, LeaderConfig};
use super::types::{Epoch, Input, LeaderInfo, Millis, Now, Output, Permit, StoreRequest};

/// A compactor node.
#[derive(Debug)]
pub struct Node {
    leader: Leader,
    cycle: Cycle,
    /// The term the cycle runs under.
    term: Option<Epoch>,
    /// The cycle's pending timer.
    cycle_timer: Option<Millis>,
    last_mono: Millis,
}

impl Node {
    /// A node with these settings; `seed` drives every random choice (block ids).
    pub fn new(cfg: CycleConfig, leader: LeaderConfig, seed: u64) -> Self {
        Node {
            leader: Leader::new(leader),
            cycle: Cycle::new(cfg, seed),
            term: None,
            cycle_timer: None,
            last_mono: Millis(i64::MIN),
        }
    }

    /// Advances the node on `input` at `now` and returns what to do, in order.
    ///
    /// Contract: `now.mono` never decreases between calls; the outputs are executed in
    /// order; an early [`Input::Tick`] is a no-op. Deterministic: the same sequence of
    /// `(now, input)` from the same initial state gives the same outputs, bit for bit.
    pub fn step(&mut self, now: Now, input: Input) -> Vec<Output> {
        let out = self.advance(now, input);
        if cfg!(debug_assertions) {
            self.check_invariants(now, &out);
        }
        out
    }

    /// The body of [`Node::step`].
    fn advance(&mut self, now: Now, input: Input) -> Vec<Output> {
        debug_assert!(now.mono >= self.last_mono, "monotonic time went back");
        self.last_mono = now.mono;
        let mut out = Vec::new();
        let mut cycle_out = Vec::new();
        match input {
            Input::Start => self.leader.start(now, &mut out),
            Input::Shutdown => self.leader.finish(now, 0, &mut out),
            Input::Coord(id, result) => self.leader.on_coord(now, id, result, &mut out),
            Input::Store(id, result) if Leader::owns(id) => {
                self.leader.on_store(now, id, result, &mut out)
            }
            input @ (Input::Store(..) | Input::Compacted(..)) => {
                if self.term.is_some() {
                    let permit = self.leader.permit(now);
                    self.cycle.step(now, input, permit, &mut cycle_out);
                }
            }
            Input::Tick => self.leader.drive(now, &mut out),
        }
        self.follow_term(now, &mut cycle_out);
        if self.term.is_some() && cycle_out.is_empty() {
            // Give the cycle its turn on every step: a renewed permit may unblock it.
            self.cycle
                .step(now, Input::Tick, self.leader.permit(now), &mut cycle_out);
        }
        self.route_cycle_outputs(now, cycle_out, &mut out);
        // The leader may have started or ended a term while routing: follow it, and route what
        // a new term's cycle asks for (its first sync).
        let mut started = Vec::new();
        self.follow_term(now, &mut started);
        if !started.is_empty() {
            self.route_cycle_outputs(now, started, &mut out);
        }
        if let Some(at) = self.next_timer(now) {
            out.push(Output::Timer(at));
        }
        out
    }

    /// Starts the cycle when a term begins and drops it when the term ends.
    fn follow_term(&mut self, now: Now, cycle_out: &mut Vec<Output>) {
        let leading = self.leader.leading();
        if leading == self.term {
            return;
        }
        self.term = leading;
        self.cycle_timer = None;
        self.cycle.restart();
        if leading.is_some() {
            self.cycle
                .step(now, Input::Start, self.leader.permit(now), cycle_out);
        }
    }

    fn route_cycle_outputs(&mut self, now: Now, cycle_out: Vec<Output>, out: &mut Vec<Output>) {
        for o in cycle_out {
            match o {
                Output::Store(StoreRequest::Write { id, op, .. }) if op.is_commit() => {
                    self.leader.submit_commit(id, op)
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

    fn next_timer(&mut self, now: Now) -> Option<Millis> {
        if self.cycle_timer.is_some_and(|t| t <= now.mono) {
            self.cycle_timer = None;
        }
        if self.leader.exited() {
            return None;
        }
        let cycle = self.cycle_timer.filter(|_| self.term.is_some());
        [cycle, self.leader.next_wake()].into_iter().flatten().min()
    }

    /// The permit this node writes under at `now`, if it leads.
    pub fn permit(&self, now: Now) -> Option<Permit> {
        self.leader.permit(now)
    }

    /// The cycle, for status reporting.
    pub fn cycle(&self) -> &Cycle {
        &self.cycle
    }

    /// The leader this node knows of (itself when it leads).
    pub fn known_leader(&self) -> Option<&LeaderInfo> {
        self.leader.known_leader()
    }
}

#[cfg(test)]
mod tests;
