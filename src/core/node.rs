//! The node: the core's single entry point. It owns leadership ([`Leader`]) and the
//! compaction cycle, and is advanced only by [`Node::step`].
//!
//! The cycle runs only while the leader leads: it starts afresh (a new sync) on every term
//! and is abandoned the moment the term ends, so no plan outlives the view it was made
//! from. Its commits pass through the leader's gate, which guards each with a fence CAS;
//! its other mutations carry the leader's permit.

use super::cycle::{Cycle, CycleConfig};
use super::leader::{Leader, LeaderConfig};
use super::types::{Epoch, Input, LeaderInfo, Millis, Now, Output, Permit};

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
                Output::Store(req) if req.op.is_commit() => self.leader.submit_commit(req),
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
mod tests {
    use super::*;
    use crate::core::coord::{CoordOp, CoordResult, ElectionKey, LeaseId};
    use crate::core::fence::FenceVersion;
    use crate::core::testing::{cycle_config, view_config};
    use crate::core::types::{RequestId, StoreOp, StoreResult};
    use crate::core::view::ViewConfig;
    use crate::units::MINUTE_MS;

    fn node() -> Node {
        let cycle = CycleConfig {
            view: ViewConfig {
                consistency_delay_ms: 0,
                ..view_config()
            },
            wait_interval_ms: MINUTE_MS,
            ..cycle_config(true)
        };
        let leader = LeaderConfig {
            node: "me".into(),
            election: Some("/e".into()),
            lease_ttl_ms: 15_000,
            op_timeout_ms: 1_000,
            takeover_delay_ms: 2_000,
            commit_window_ms: 1_000,
            safety: crate::core::leader::Safety::ALL,
        };
        Node::new(cycle, leader, 1)
    }

    fn at(ms: i64) -> Now {
        Now {
            mono: Millis(ms),
            wall: Millis(1_700_000_000_000 + ms),
        }
    }

    /// Answers the request in `out` as a healthy etcd and bucket would; returns the next outputs.
    fn answer(n: &mut Node, t: i64, out: &[Output]) -> Vec<Output> {
        let input = out
            .iter()
            .find_map(|o| match o {
                Output::Coord(r) => Some(Input::Coord(
                    r.id,
                    match &r.op {
                        CoordOp::Grant { .. } => CoordResult::Granted {
                            lease: LeaseId(1),
                            ttl_secs: 15,
                        },
                        CoordOp::Campaign { .. } => CoordResult::Campaigned { create_revision: 2 },
                        CoordOp::Observe { .. } => CoordResult::Observed {
                            keys: vec![ElectionKey {
                                key: "/e/1".into(),
                                create_revision: 2,
                                value: "me".into(),
                            }],
                            revision: 2,
                        },
                        op => panic!("unexpected {op:?}"),
                    },
                )),
                Output::Store(r) => Some(Input::Store(
                    r.id,
                    match &r.op {
                        StoreOp::ReadFence => StoreResult::Fence(None),
                        StoreOp::CasFence { .. } => StoreResult::FenceWritten(FenceVersion {
                            e_tag: Some("1".into()),
                            version: None,
                        }),
                        op => panic!("unexpected {op:?}"),
                    },
                )),
                _ => None,
            })
            .expect("a request to answer");
        n.step(at(t), input)
    }

    /// A term that begins while the node handles an unrelated input (here a late answer of
    /// an earlier term's cycle) still starts its cycle with a sync.
    #[test]
    fn a_term_started_by_any_input_begins_with_a_sync() {
        let mut n = node();
        let mut out = n.step(at(0), Input::Start);
        for t in 1..=5 {
            out = answer(&mut n, t, &out); // grant, campaign, observe, read, CAS
        }
        assert!(
            n.leader.leading().is_none(),
            "in the takeover delay: {out:?}"
        );
        let late = Input::Store(RequestId(99), StoreResult::Done);
        let out = n.step(at(5 + 2_000), late);
        assert!(n.leader.leading().is_some());
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Store(r) if r.op == StoreOp::Sync)),
            "the new term's first sync is missing: {out:?}"
        );
    }
}
