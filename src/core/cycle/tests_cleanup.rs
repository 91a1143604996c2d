//! The background clean-up (`--compact.cleanup-interval`) against the model bucket of
//! [`super::testing`], played by a driver with time: a store request is applied when issued and
//! answered a second later, a compaction answers after its own duration, the cycle's timer
//! fires at its time. The driver checks every step: mutations (and only mutations) carry the
//! permit of the step, none is issued without one, no clean-up request is issued while a job
//! is inside its run of mutations (upload ─► meta.json ─► its sources' marks) or has a
//! mutation in flight, and no job mutation is issued while a clean-up request is in flight.

use std::collections::{BTreeMap, BTreeSet};

use super::marks::deletion_mark;
use super::testing::{block, Model};
use super::*;
use crate::core::testing::{cycle_config, T0_MS};
use crate::core::types::{Epoch, JobId};
use crate::units::{HOUR_MS, MINUTE_MS};

/// The iteration starts two days after the model's first block.
const START_WALL: i64 = T0_MS + 48 * HOUR_MS;

struct Harness {
    cycle: Cycle,
    model: Model,
    t_ms: i64,
    /// Inputs to deliver, by (time, order of issue).
    queue: BTreeMap<(i64, u64), Input>,
    issued: u64,
    timer: Option<Millis>,
    /// Durations of compaction jobs, by job id (cycling).
    compaction_ms: Vec<i64>,
    /// Spans (ms from the start) without a write permit.
    no_permit: Vec<(i64, i64)>,
    /// Clean-up deletes still to fail.
    fail_cleanup_deletes: u32,
    /// Every output with its time and whether the cycle was in a pass after the step.
    log: Vec<(i64, Output, bool)>,
    /// Requests in flight: their op, and whether the clean-up issued them.
    in_flight: BTreeMap<RequestId, (StoreRequest, bool)>,
    /// Planned outputs and their inputs.
    plans: BTreeMap<BlockId, Vec<BlockId>>,
    /// Runs under way: a new block uploaded whose meta.json or sources' marks are not done.
    open_runs: BTreeMap<BlockId, (bool, BTreeSet<BlockId>)>,
    /// Steps that ended with a clean-up due while a job was inside its run.
    held_steps: u64,
}

impl Harness {
    fn new(cfg: CycleConfig, model: Model, compaction_ms: &[i64]) -> Self {
        Harness {
            cycle: Cycle::new(cfg, 5),
            model,
            t_ms: 0,
            queue: BTreeMap::from([((0, 0), Input::Start)]),
            issued: 0,
            timer: None,
            compaction_ms: compaction_ms.to_vec(),
            no_permit: vec![],
            fail_cleanup_deletes: 0,
            log: vec![],
            in_flight: BTreeMap::new(),
            plans: BTreeMap::new(),
            open_runs: BTreeMap::new(),
            held_steps: 0,
        }
    }

    fn now(&self) -> Now {
        Now {
            mono: Millis(self.t_ms),
            wall: Millis(START_WALL + self.t_ms),
        }
    }

    fn permit(&self) -> Option<Permit> {
        let gap = self
            .no_permit
            .iter()
            .any(|(a, b)| (*a..*b).contains(&self.t_ms));
        (!gap).then_some(Permit {
            epoch: Epoch(3),
            valid_until: Millis::MAX,
        })
    }

    /// No permit in `spans`; a tick at the end of each (the leader's renewal would step the
    /// node then).
    fn without_permit(&mut self, spans: Vec<(i64, i64)>) {
        for (_, end) in &spans {
            self.issued += 1;
            self.queue.insert((*end, self.issued), Input::Tick);
        }
        self.no_permit = spans;
    }

    fn later(&mut self, after_ms: i64, input: Input) {
        self.issued += 1;
        self.queue
            .insert((self.t_ms + after_ms, self.issued), input);
    }

    /// Delivers the next input (or the timer); false when nothing is left or the cycle exited.
    fn step(&mut self) -> bool {
        let next = self.queue.keys().next().map(|(t, _)| *t);
        let input = match (next, self.timer) {
            (Some(t), timer) if timer.is_none_or(|at| t <= at.0) => {
                self.t_ms = self.t_ms.max(t);
                self.queue.pop_first().expect("a next input").1
            }
            (_, Some(at)) => {
                self.t_ms = self.t_ms.max(at.0);
                self.timer = None;
                Input::Tick
            }
            _ => return false,
        };
        if let Input::Store(id, result) = &input {
            self.answered(*id, result);
        }
        let (now, permit) = (self.now(), self.permit());
        let mut out = Vec::new();
        self.cycle.step(now, input, permit, &mut out);
        let in_pass = matches!(
            self.cycle.phase,
            Phase::Compacting(_) | Phase::Downsampling(..)
        );
        let mut going = true;
        for o in &out {
            going &= self.take(o, permit);
        }
        let quiescent = match &self.cycle.phase {
            Phase::Compacting(p) => p.quiescent(),
            Phase::Downsampling(p, _) => p.quiescent(),
            _ => true,
        };
        if self.cycle.cleanup.due(now) && !quiescent {
            self.held_steps += 1;
        }
        self.log
            .extend(out.into_iter().map(|o| (self.t_ms, o, in_pass)));
        going
    }

    /// A request's answer arrives: it is no longer in flight; a mark may end a run.
    fn answered(&mut self, id: RequestId, result: &StoreResult) {
        let Some((op, _)) = self.in_flight.remove(&id) else {
            return;
        };
        if matches!(result, StoreResult::Failed(_)) {
            return;
        }
        for (meta_pending, marks) in self.open_runs.values_mut() {
            match op.write_op() {
                Some(WriteOp::PutMeta { .. }) => *meta_pending = false,
                Some(WriteOp::MarkDeletion(m)) => {
                    marks.remove(&m.id);
                }
                _ => {}
            }
        }
        self.open_runs
            .retain(|_, (meta_pending, marks)| *meta_pending || !marks.is_empty());
    }

    /// Performs one output; false on exit.
    fn take(&mut self, o: &Output, permit: Option<Permit>) -> bool {
        match o {
            Output::Store(r) => self.store(r, permit),
            Output::Compact(job) => {
                let JobId(n) = job.job;
                let took = self.compaction_ms[n as usize % self.compaction_ms.len()];
                let result = self.model.compact(job);
                self.later(took, Input::Compacted(job.job, Box::new(result)));
            }
            Output::Timer(at) => self.timer = Some(*at),
            Output::Event(Event::Planned { inputs, output, .. }) => {
                self.plans.insert(*output, inputs.clone());
            }
            Output::Exit(_) => return false,
            Output::Event(_) | Output::Coord(_) => {}
        }
        true
    }

    fn store(&mut self, r: &StoreRequest, permit: Option<Permit>) {
        if r.is_mutation() {
            assert!(permit.is_some(), "a mutation without a permit: {r:?}");
            assert_eq!(r.permit(), permit, "issued under the step's permit");
        }
        let cleanup = self.cycle.cleanup.owns(r.id());
        if cleanup {
            assert!(
                self.open_runs.is_empty() && self.in_flight.is_empty(),
                "clean-up {:?} at {} ms inside runs {:?}, beside {:?}",
                r,
                self.t_ms,
                self.open_runs,
                self.in_flight
            );
        } else if r.is_mutation() {
            assert!(
                !self.in_flight.values().any(|(_, c)| *c),
                "{:?} beside a clean-up request in flight",
                r
            );
        }
        if let Some(WriteOp::UploadFiles { block, .. }) = r.write_op() {
            let marks = self.plans.get(block).cloned().unwrap_or_default();
            self.open_runs
                .insert(*block, (true, marks.into_iter().collect()));
        }
        let fail = cleanup && r.is_mutation() && self.fail_cleanup_deletes > 0;
        if fail {
            self.fail_cleanup_deletes -= 1;
            self.model.fail_next_mutation = true;
        }
        let result = self.model.apply(r, self.now());
        self.in_flight.insert(r.id(), (r.clone(), cleanup));
        self.later(1_000, Input::Store(r.id(), result));
    }

    /// Steps until `done` holds after a step, the cycle exits or `limit_ms` passes.
    fn run_until(&mut self, limit_ms: i64, done: impl Fn(&Harness) -> bool) {
        for _ in 0..100_000 {
            if done(self) || self.t_ms > limit_ms || !self.step() {
                return;
            }
        }
        panic!("the cycle does not settle");
    }

    /// When `block` was deleted (ms), and whether the cycle was in a pass then.
    fn deleted(&self, block: BlockId) -> Option<(i64, bool)> {
        self.log.iter().find_map(|(t, o, in_pass)| match o {
            Output::Event(Event::Deleted(id)) if *id == block => Some((*t, *in_pass)),
            _ => None,
        })
    }

    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.log
            .iter()
            .filter(|(_, o, _)| matches!(o, Output::Event(e) if f(e)))
            .count()
    }

    fn iterations(&self) -> usize {
        self.count(|e| matches!(e, Event::IterationDone))
    }
}

/// Per cluster, eight 2h blocks: one plan of four (the first 8h), the rest waits.
fn clusters(model: &mut Model, n: u128) {
    for c in 0..n {
        for i in 0..8 {
            model.add(block(
                c * 100 + i as u128,
                2 * i,
                2 * i + 2,
                &format!("c{c}"),
            ));
        }
    }
}

/// A lone block with a deletion mark stamped `age_ms` before the iteration starts.
fn marked(model: &mut Model, n: u128, age_ms: i64) -> BlockId {
    let m = block(n, 0, 2, "marked");
    let id = m.ulid;
    model.add(m);
    model.blocks.get_mut(&id).expect("added").deletion_mark = Some(deletion_mark(
        id,
        Now {
            mono: Millis(0),
            wall: Millis(START_WALL - age_ms),
        },
        "",
    ));
    id
}

fn with_cleanup(interval_ms: i64, delete_delay_ms: i64, concurrency: usize) -> CycleConfig {
    let mut c = cycle_config(true);
    c.cleanup_interval_ms = interval_ms;
    c.view.delete_delay_ms = delete_delay_ms;
    c.concurrency = concurrency;
    c.wait_interval_ms = HOUR_MS;
    c
}

fn in_pass(h: &Harness) -> bool {
    matches!(
        h.cycle.phase,
        Phase::Compacting(_) | Phase::Downsampling(..)
    )
}

// Six groups of ten minutes each: an hour-long pass. The mark passes the 30 min delete delay
// 20 min in; a clean-up every 5 min deletes the block before the pass ends, and the sources
// of the first jobs too. Without the interval the block waits for the pass' end.
#[test]
fn a_mark_past_the_delay_is_deleted_during_a_long_pass() {
    let bucket = || {
        let mut model = Model::default();
        clusters(&mut model, 6);
        let id = marked(&mut model, 9_000, 10 * MINUTE_MS);
        (model, id)
    };
    let (model, id) = bucket();
    let mut h = Harness::new(
        with_cleanup(5 * MINUTE_MS, 30 * MINUTE_MS, 1),
        model,
        &[10 * MINUTE_MS],
    );
    h.run_until(3 * HOUR_MS, |h| h.iterations() > 0);
    let (at, during_pass) = h.deleted(id).expect("deleted");
    assert!(during_pass, "deleted by a clean-up while the pass ran");
    assert!(
        (20 * MINUTE_MS..26 * MINUTE_MS).contains(&at),
        "deleted at {at} ms"
    );
    let sources_during_pass = h
        .log
        .iter()
        .filter(|(_, o, in_pass)| {
            *in_pass && matches!(o, Output::Event(Event::Deleted(d)) if *d != id)
        })
        .count();
    assert!(
        sources_during_pass >= 4,
        "the first job's sources: {sources_during_pass}"
    );
    assert!(h.count(|e| matches!(e, Event::CleanupDone { .. })) >= 8);
    assert_eq!(h.count(|e| matches!(e, Event::Compacted { .. })), 6);

    let (model, id) = bucket();
    let mut h = Harness::new(with_cleanup(0, 30 * MINUTE_MS, 1), model, &[10 * MINUTE_MS]);
    h.run_until(3 * HOUR_MS, |h| h.iterations() > 0);
    let (at, during_pass) = h.deleted(id).expect("deleted by the iteration");
    assert!(
        !during_pass && at > 60 * MINUTE_MS,
        "waited for the pass: {at} ms"
    );
    assert_eq!(h.count(|e| matches!(e, Event::CleanupDone { .. })), 0);
}

// Two jobs at a time, compactions of 3 to 13 s, store requests of a second and a clean-up
// every 7 s with no delete delay: clean-ups fall due while jobs are inside their runs, wait
// for them (the driver checks every request), delete the sources marked so far, and the pass
// completes. The same with spans without a permit: nothing is written in them.
#[test]
fn clean_ups_wait_for_runs_under_way_and_for_the_permit() {
    for gaps in [false, true] {
        let mut model = Model::default();
        clusters(&mut model, 10);
        let durations = [5_000, 9_000, 13_000, 3_000, 11_000];
        let mut h = Harness::new(with_cleanup(7_000, 0, 2), model, &durations);
        if gaps {
            let spans = (0..20).map(|k| (k * 20_000 + 7_000, k * 20_000 + 15_000));
            h.without_permit(spans.collect());
        }
        h.run_until(HOUR_MS, |h| h.iterations() > 0);
        assert_eq!(h.iterations(), 1);
        assert!(h.held_steps > 0, "a clean-up fell due inside a run");
        let in_pass = |e: &Event| matches!(e, Event::CleanupDone { blocks, .. } if *blocks > 0);
        let during_pass = h
            .log
            .iter()
            .filter(|(_, o, p)| *p && matches!(o, Output::Event(e) if in_pass(e)))
            .count();
        assert!(
            during_pass >= 2,
            "clean-ups that deleted during the pass: {during_pass}"
        );
        // Per cluster: the 8h block and the four 2h blocks left; every source deleted.
        assert_eq!(h.model.blocks.len(), 50);
        assert!(h.model.blocks.values().all(|b| b.deletion_mark.is_none()));
    }
}

// Off without --wait (Thanos runs the loop only then) and with an interval of 0: the outputs
// are those of a cycle without the clean-up, no sync falls inside a pass.
#[test]
fn no_clean_up_with_interval_0_or_without_wait() {
    let outputs = |c: CycleConfig| {
        let mut model = Model::default();
        clusters(&mut model, 3);
        marked(&mut model, 9_000, 10 * MINUTE_MS);
        let mut h = Harness::new(c, model, &[10 * MINUTE_MS]);
        h.run_until(3 * HOUR_MS, |h| h.iterations() > 0);
        let syncs_in_pass = h
            .log
            .iter()
            .filter(|(_, o, p)| {
                *p && matches!(o, Output::Store(r) if r.read_op() == Some(&ReadOp::Sync))
            })
            .count();
        assert_eq!(syncs_in_pass, 0);
        assert_eq!(h.count(|e| matches!(e, Event::CleanupDone { .. })), 0);
        format!("{:?}", h.log)
    };
    let one_shot = |interval_ms| CycleConfig {
        wait: false,
        ..with_cleanup(interval_ms, 30 * MINUTE_MS, 1)
    };
    assert_eq!(outputs(one_shot(0)), outputs(one_shot(5 * MINUTE_MS)));
    outputs(with_cleanup(0, 30 * MINUTE_MS, 1));
}

// Thanos' clean-up loop goes on while its main loop waits or is halted.
#[test]
fn clean_ups_run_while_waiting_and_while_halted() {
    let mut model = Model::default();
    let id = marked(&mut model, 9_000, 10 * MINUTE_MS);
    let mut h = Harness::new(
        with_cleanup(5 * MINUTE_MS, 30 * MINUTE_MS, 1),
        model,
        &[1_000],
    );
    h.run_until(2 * HOUR_MS, |h| h.deleted(id).is_some());
    let (at, _) = h.deleted(id).expect("deleted while waiting");
    assert!((20 * MINUTE_MS..26 * MINUTE_MS).contains(&at), "{at} ms");
    assert_eq!(h.iterations(), 1, "before the next iteration (an hour on)");
    assert!(matches!(h.cycle.phase, Phase::Idle { .. }));

    let mut model = Model::default();
    clusters(&mut model, 1);
    model.add(block(999, 1, 3, "c0")); // overlaps: the pass halts
    let id = marked(&mut model, 9_000, 10 * MINUTE_MS);
    let mut h = Harness::new(
        with_cleanup(5 * MINUTE_MS, 30 * MINUTE_MS, 1),
        model,
        &[1_000],
    );
    h.run_until(2 * HOUR_MS, |h| h.deleted(id).is_some());
    assert!(h.cycle.halted());
    let (at, _) = h.deleted(id).expect("deleted while halted");
    assert!((20 * MINUTE_MS..26 * MINUTE_MS).contains(&at), "{at} ms");
    assert!(!h.model.blocks.contains_key(&id));
}

// A block of a group the pass has not reached yet gets a deletion mark from elsewhere (an
// operator), old enough to be deleted at once: the clean-ups leave it while the pass may
// still read it; its group is compacted with it, then it goes.
#[test]
fn clean_ups_leave_the_blocks_the_pass_still_uses() {
    let mut model = Model::default();
    clusters(&mut model, 3);
    let mut h = Harness::new(with_cleanup(5 * MINUTE_MS, 0, 1), model, &[10 * MINUTE_MS]);
    h.run_until(HOUR_MS, |h| h.t_ms > 0 && in_pass(h));
    let input = block(200, 0, 2, "c2").ulid;
    let mark = deletion_mark(input, Now::default(), "manual");
    h.model
        .blocks
        .get_mut(&input)
        .expect("c2's first block")
        .deletion_mark = Some(mark);
    h.run_until(3 * HOUR_MS, |h| h.iterations() > 0);
    let (plan_at, output) = h
        .log
        .iter()
        .find_map(|(t, o, _)| match o {
            Output::Event(Event::Planned { inputs, output, .. }) if inputs.contains(&input) => {
                Some((*t, *output))
            }
            _ => None,
        })
        .expect("c2's plan still holds the block");
    assert!(
        plan_at >= 20 * MINUTE_MS,
        "c2 is the third group: {plan_at} ms"
    );
    let uploaded = h
        .log
        .iter()
        .find_map(|(t, o, _)| {
            matches!(o, Output::Event(Event::Uploaded(b)) if *b == output).then_some(*t)
        })
        .expect("c2 compacted");
    let (at, _) = h.deleted(input).expect("deleted in the end");
    assert!(
        at > uploaded,
        "deleted at {at} ms, after its group's block ({uploaded} ms)"
    );
    assert!(h.count(|e| matches!(e, Event::CleanupDone { .. })) >= 3);
}

// A failed delete ends that clean-up (reported) without failing the pass; the next one
// deletes the block.
#[test]
fn a_failed_clean_up_is_retried_an_interval_later() {
    let mut model = Model::default();
    clusters(&mut model, 6);
    let id = marked(&mut model, 9_000, 10 * MINUTE_MS);
    let mut h = Harness::new(
        with_cleanup(5 * MINUTE_MS, 30 * MINUTE_MS, 1),
        model,
        &[10 * MINUTE_MS],
    );
    h.fail_cleanup_deletes = 1;
    h.run_until(3 * HOUR_MS, |h| h.iterations() > 0);
    assert_eq!(h.count(|e| matches!(e, Event::MutationFailed { .. })), 1);
    assert_eq!(
        h.count(|e| matches!(e, Event::Retrying(_))),
        0,
        "the pass went on"
    );
    let (at, during_pass) = h.deleted(id).expect("deleted by the next clean-up");
    assert!(
        during_pass && (25 * MINUTE_MS..31 * MINUTE_MS).contains(&at),
        "{at} ms"
    );
    assert_eq!(h.count(|e| matches!(e, Event::Compacted { .. })), 6);
}

// A downsampling pass holds like a compaction pass: no clean-up between a new block's upload
// and its meta.json.
#[test]
fn clean_ups_run_between_downsampling_jobs() {
    let mut model = Model::default();
    for c in 0..4 {
        model.add(block(c * 10, 0, 44, &format!("c{c}")));
    }
    let id = marked(&mut model, 9_000, 0);
    let mut c = with_cleanup(3_000, 5_000, 2);
    c.downsampling = true;
    let mut h = Harness::new(c, model, &[4_000, 7_000]);
    h.run_until(HOUR_MS, |h| h.iterations() > 0);
    let (_, during_pass) = h.deleted(id).expect("deleted");
    assert!(during_pass, "deleted during the downsampling pass");
    assert!(
        h.held_steps > 0,
        "a clean-up fell due between an upload and its meta.json"
    );
    assert_eq!(h.count(|e| matches!(e, Event::Downsampled { .. })), 4);
}
