//! One compaction iteration, as Thanos' `compactMainFn` runs it, as a state machine:
//!
//! ```text
//! sync ─► delete marked blocks past --delete-delay ─► mark duplicates "outdated block" (GC)
//!   ─► compaction pass (one plan per group, --compact.concurrency groups at a time:
//!        compact ─► upload chunks+index ─► meta.json ─► deletion marks on the sources)
//!   ─► progress? back to sync
//!   ─► [downsampling: sync ─► raw→5m pass ─► sync ─► 5m→1h pass]
//!   ─► sync ─► retention marks ─► partial-upload clean-up ─► done
//!
//! background clean-up (--wait, every --compact.cleanup-interval since the cycle last
//! cleaned): in a pass, once no job is inside its run of mutations (new runs wait, compactions
//! go on), or while waiting for the next iteration, or halted:
//!   sync ─► delete stale partial uploads ─► delete marked blocks past --delete-delay ─► resume
//! ```
//!
//! The background clean-up ([`cleanup`]) is Thanos' `--compact.cleanup-interval` loop: it
//! keeps a pass of many hours from holding back deletions until the iteration ends.
//!
//! With `--wait`, the sync that ends at least `--compact.progress-interval` after the last
//! calculation (the first sync, then about every interval) is followed by Thanos' progress
//! calculators ([`super::progress`]), reported as [`Event::Progress`]. Thanos runs them on a
//! timer of their own with a sync of their own; here they reuse the iteration's syncs and the
//! clean-ups', so between those the gauges keep their last values.
//!
//! The compaction pass ([`compaction`]) and the downsampling passes ([`downsampling`]) run
//! their jobs on one engine ([`pass`]); a downsampling job is downsample ─► upload ─►
//! meta.json, without deletion marks: retention removes the sources.
//!
//! Naming: a *phase* is where the iteration is; a *pass* is the state of a compaction or
//! downsampling phase (its queued items and running jobs, see [`pass`]); a pass's *kind*
//! supplies what differs between the two; *mutations* are the store requests that change the
//! bucket, each issued under the current [`Permit`] and, except uploads of a new block's files,
//! each a commit point; a job's *run* is its mutations in a row (upload, meta.json, marks),
//! which no clean-up request splits. Mutations run one at a time, in order, so a crash at any
//! point leaves the bucket in a state the next iteration converges from (`docs/safety.md`).
//! The cycle's ids (of requests, jobs and new blocks) come from [`ids`]; the marks it writes
//! of its own accord (garbage, retention) from [`marks`]; its settings are [`config`]'s.
//!
//! Done means: with `--wait` wait `--wait-interval` and go again; without it, exit 0.
//! Failures of the store (sync, upload, marks) end the iteration: retried after the wait
//! interval with `--wait`, exit 1 without. Overlapping blocks without vertical compaction and
//! compaction errors *halt*: nothing more is done, HTTP keeps serving (exit 2 without `--wait`).

mod admin;
mod cleanup;
mod compaction;
mod config;
mod downsampling;
mod ids;
mod marks;
mod pass;

use std::collections::{BTreeMap, VecDeque};

use super::progress;
use super::request_ids::Slot;
use super::types::{
    Event, Input, Millis, Now, Output, Permit, ReadOp, RequestId, StoreRequest, StoreResult,
    SyncResult, WriteOp,
};
use super::view::{build_view, BucketView};
use crate::tsdb::block_id::BlockId;
use cleanup::{drive_pass, Cleanup};
use compaction::{compaction_pass, Compaction};
pub use config::{CycleConfig, PARTIAL_UPLOAD_THRESHOLD_MS_DEFAULT};
use downsampling::{downsampling_pass, Downsampling};
use ids::CycleIds;
use marks::garbage_marks;
pub use marks::retention_marks;
use pass::{Outcome, Pass};

/// Exit code of a one-shot run that halted.
pub const EXIT_HALTED: i32 = 2;
/// Exit code of a one-shot run that failed.
pub const EXIT_FAILED: i32 = 1;

/// What to do when the sync in flight completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterSync {
    /// Delete, collect garbage, then compact.
    Compaction,
    /// Run downsampling pass 1 or 2.
    Downsampling(u8),
    /// Apply retention, then clean partial uploads.
    Retention,
}

/// What to do when the queued mutations are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterMutations {
    Compaction,
    Partials,
    EndIteration,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the next iteration.
    Idle { next_at: Millis },
    /// A sync is in flight.
    Syncing { request: RequestId, then: AfterSync },
    /// Mutations run one by one.
    Mutating {
        queue: VecDeque<WriteOp>,
        in_flight: Option<(RequestId, WriteOp)>,
        then: AfterMutations,
    },
    /// The compaction pass.
    Compacting(Box<Pass<Compaction>>),
    /// Downsampling pass 1 (raw to 5m and on) or 2 (the new 5m blocks to 1h).
    Downsampling(Box<Pass<Downsampling>>, u8),
    /// Stopped for good.
    Halted,
    /// Exited (one-shot mode or shutdown).
    Exited,
}

/// The compaction cycle.
#[derive(Debug)]
pub struct Cycle {
    cfg: CycleConfig,
    phase: Phase,
    view: BucketView,
    /// Request, job and new block ids.
    ids: CycleIds,
    /// When this process first saw each deletion mark in the bucket (see
    /// [`super::view::mark_age_ms`]); kept across iterations and leadership terms.
    marks_seen: BTreeMap<BlockId, Millis>,
    /// The backlog gauges are due again after a sync that ends at or after this.
    progress_next_at: Millis,
    /// The background clean-up.
    cleanup: Cleanup,
    /// The stream is being handed over: nothing new starts (see [`Cycle::may_hand_over`]).
    handing_over: bool,
    /// Operator requests to commit ([`crate::core::admin`]).
    admin: admin::AdminQueue,
}

impl Cycle {
    /// A cycle that starts with a sync on [`Input::Start`]; `seed` drives block ids.
    pub fn new(cfg: CycleConfig, seed: u64) -> Self {
        Cycle::in_slot(cfg, seed, Slot::BUCKET)
    }

    /// A cycle whose request and job ids count in `slot` (a stream seat's).
    pub fn in_slot(cfg: CycleConfig, seed: u64, slot: Slot) -> Self {
        let cleanup = Cleanup::new(&cfg);
        Cycle {
            cfg,
            phase: Phase::Idle {
                next_at: Millis(i64::MIN),
            },
            view: BucketView::default(),
            ids: CycleIds::new(seed, slot),
            marks_seen: BTreeMap::new(),
            progress_next_at: Millis(i64::MIN),
            cleanup,
            handing_over: false,
            admin: admin::AdminQueue::default(),
        }
    }

    /// Forgets the iteration in progress (and a halt): the next step starts with a fresh
    /// sync. Request and job ids keep counting, so results of abandoned work are ignored.
    pub fn restart(&mut self) {
        self.phase = Phase::Idle {
            next_at: Millis(i64::MIN),
        };
        self.view = BucketView::default();
        self.cleanup.abandon();
    }

    /// The view of the last sync.
    pub fn view(&self) -> &BucketView {
        &self.view
    }

    /// True when nothing of an iteration is under way (no sync, pass, job, mutation or
    /// clean-up), as between terms.
    pub fn at_rest(&self) -> bool {
        let phase = matches!(
            self.phase,
            Phase::Idle { .. } | Phase::Halted | Phase::Exited
        );
        phase && !self.cleanup.busy()
    }

    /// Marks the cycle as handing its stream over (`yes`) or keeping it: while handing over,
    /// no sync or job starts, nor a clean-up between iterations or while halted; jobs running
    /// go on to their end (inside their pass a due clean-up still runs, as it would anyway).
    pub fn hand_over(&mut self, yes: bool) {
        self.handing_over = yes;
    }

    /// True when the cycle may stop for a hand-over: at rest, or handing over with no job
    /// running, no mutation and no clean-up under way. What is left of a pass (its items not
    /// started) is the next holder's to plan again; a sync in flight is only a read.
    pub fn may_hand_over(&self) -> bool {
        if self.at_rest() {
            return true;
        }
        if !self.handing_over || self.cleanup.busy() {
            return false;
        }
        match &self.phase {
            Phase::Syncing { .. } => true,
            Phase::Compacting(pass) => pass.drained(),
            Phase::Downsampling(pass, _) => pass.drained(),
            _ => false,
        }
    }

    /// True once compaction halted.
    pub fn halted(&self) -> bool {
        matches!(self.phase, Phase::Halted)
    }

    /// Advances on `input`. Mutations are issued only with a `permit`; without one the cycle
    /// keeps its place and resumes on a later step that has one.
    pub fn step(&mut self, now: Now, input: Input, permit: Option<Permit>, out: &mut Vec<Output>) {
        match input {
            Input::Start | Input::Tick | Input::Coord(..) => {}
            Input::Store(id, result) => self.on_store(now, id, result, out),
            Input::Compacted(job, result) => match &mut self.phase {
                Phase::Compacting(pass) => pass.on_result(job, *result, now, out),
                Phase::Downsampling(pass, _) => pass.on_result(job, *result, now, out),
                _ => {}
            },
            Input::Shutdown => {
                self.phase = Phase::Exited;
                out.push(Output::Exit(0));
                return;
            }
            Input::Admin(request) => self.admin(*request, out),
        }
        self.drive_admin(permit, out);
        self.drive(now, permit, out);
    }

    fn start_sync(&mut self, then: AfterSync, out: &mut Vec<Output>) {
        let request = self.ids.next_request();
        out.push(Output::Store(StoreRequest::read(request, ReadOp::Sync)));
        self.phase = Phase::Syncing { request, then };
    }

    /// Moves the state machine as far as it can go without new input.
    fn drive(&mut self, now: Now, permit: Option<Permit>, out: &mut Vec<Output>) {
        loop {
            match &mut self.phase {
                Phase::Idle { .. } | Phase::Halted if self.handing_over => {
                    // No iteration and no clean-up starts; one under way goes on to its end.
                    if self.cleanup.busy() {
                        self.cleanup.drive(now, permit, true, &mut self.ids, out);
                    }
                    return;
                }
                Phase::Idle { next_at } => {
                    let next_at = *next_at;
                    if !self.wait_and_clean(now, Some(next_at), permit, out) {
                        self.start_sync(AfterSync::Compaction, out);
                    }
                    return;
                }
                Phase::Mutating { .. } => {
                    if self.drive_mutations(now, permit, out) {
                        return;
                    }
                }
                Phase::Compacting(pass) => {
                    pass.set_draining(self.handing_over);
                    let Some(permit) = permit else { return };
                    let (cleanup, ids) = (&mut self.cleanup, &mut self.ids);
                    let Some(outcome) = drive_pass(&mut **pass, cleanup, ids, now, permit, out)
                    else {
                        return;
                    };
                    let next = match outcome {
                        Outcome::Done { progress: true } => AfterSync::Compaction,
                        _ if self.cfg.downsampling => AfterSync::Downsampling(1),
                        _ => AfterSync::Retention,
                    };
                    self.end_pass(outcome, next, now, out);
                    return;
                }
                Phase::Downsampling(pass, number) => {
                    pass.set_draining(self.handing_over);
                    let Some(permit) = permit else { return };
                    let next = if *number == 1 {
                        AfterSync::Downsampling(2)
                    } else {
                        AfterSync::Retention
                    };
                    let (cleanup, ids) = (&mut self.cleanup, &mut self.ids);
                    let Some(outcome) = drive_pass(&mut **pass, cleanup, ids, now, permit, out)
                    else {
                        return;
                    };
                    self.end_pass(outcome, next, now, out);
                    return;
                }
                Phase::Halted => {
                    // Thanos' clean-up loop goes on while its main loop is halted.
                    self.wait_and_clean(now, None, permit, out);
                    return;
                }
                Phase::Syncing { .. } | Phase::Exited => return,
            }
        }
    }

    /// Issues the next queued mutation, or goes on once none is left; true when the step
    /// ends here (a mutation in flight or just issued, or no permit).
    fn drive_mutations(&mut self, now: Now, permit: Option<Permit>, out: &mut Vec<Output>) -> bool {
        let Phase::Mutating {
            queue,
            in_flight,
            then,
        } = &mut self.phase
        else {
            return true;
        };
        let Some(permit) = permit.filter(|_| in_flight.is_none()) else {
            return true;
        };
        let Some(op) = queue.pop_front() else {
            let then = *then;
            self.after_mutations(then, now, out);
            return false;
        };
        let id = self.ids.next_request();
        *in_flight = Some((id, op.clone()));
        out.push(Output::Store(StoreRequest::write(id, op, permit)));
        true
    }

    /// After a pass ended: halt, fail, or sync and go on with `next`.
    fn end_pass(&mut self, outcome: Outcome, next: AfterSync, now: Now, out: &mut Vec<Output>) {
        match outcome {
            Outcome::Halt(reason) => self.halt(reason, out),
            Outcome::Failed(error) => self.fail(now, error, out),
            Outcome::Done { .. } => self.start_sync(next, out),
        }
    }

    fn on_store(&mut self, now: Now, id: RequestId, result: StoreResult, out: &mut Vec<Output>) {
        if self.cleanup.owns(id) {
            self.on_cleanup_store(now, result, out);
            return;
        }
        if self.on_admin_store(id, &result, out) {
            return;
        }
        match &mut self.phase {
            Phase::Syncing { request, then } if *request == id => {
                let then = *then;
                match result {
                    StoreResult::Synced(sync) => self.on_synced(now, &sync, then, out),
                    StoreResult::Failed(e) => {
                        out.push(Output::Event(Event::SyncFailed(e.to_string())));
                        self.fail(now, format!("sync: {e}"), out);
                    }
                    other => self.fail(now, format!("sync answered {other:?}"), out),
                }
            }
            Phase::Mutating {
                in_flight, then, ..
            } if in_flight.as_ref().is_some_and(|(r, _)| *r == id) => {
                let (_, op) = in_flight.take().expect("matched above");
                let partial_cleanup = *then == AfterMutations::EndIteration;
                match result {
                    StoreResult::Failed(e) => {
                        out.push(Output::Event(Event::MutationFailed {
                            op: op.name().into(),
                            error: e.to_string(),
                        }));
                        self.fail(now, e.message, out);
                    }
                    _ => match op {
                        WriteOp::DeleteBlock(block) if partial_cleanup => {
                            out.push(Output::Event(Event::PartialDeleted(block)));
                        }
                        op => out.extend(op.completion_event(&result).map(Output::Event)),
                    },
                }
            }
            Phase::Compacting(pass) => pass.on_store(id, result, out),
            Phase::Downsampling(pass, _) => pass.on_store(id, result, out),
            // A result for a request of an abandoned phase (after a failure or halt): ignored.
            _ => {}
        }
    }

    fn on_synced(&mut self, now: Now, sync: &SyncResult, then: AfterSync, out: &mut Vec<Output>) {
        self.take_sync(now, sync, out);
        match then {
            AfterSync::Compaction => {
                // The iteration cleans now: the next background clean-up is an interval away.
                self.cleanup.cleaned(now);
                let mut queue: VecDeque<WriteOp> = self
                    .deletable_blocks(now)
                    .into_iter()
                    .map(WriteOp::DeleteBlock)
                    .collect();
                queue.extend(garbage_marks(&self.view, now));
                self.phase = Phase::Mutating {
                    queue,
                    in_flight: None,
                    then: AfterMutations::Compaction,
                };
            }
            AfterSync::Downsampling(number) => {
                let concurrency = self.cfg.downsample_concurrency;
                let pass = downsampling_pass(&self.view, concurrency, &mut self.ids, now, out);
                self.phase = Phase::Downsampling(Box::new(pass), number);
            }
            AfterSync::Retention => {
                let queue = retention_marks(&self.view, self.cfg.retention_ms, now)
                    .into_iter()
                    .collect();
                self.phase = Phase::Mutating {
                    queue,
                    in_flight: None,
                    then: AfterMutations::Partials,
                };
            }
        }
    }

    /// Takes a sync's result: the marks' first sightings, the view, its event, and the
    /// backlog gauges when due.
    fn take_sync(&mut self, now: Now, sync: &SyncResult, out: &mut Vec<Output>) {
        self.note_marks_seen(now, sync);
        self.view = build_view(sync, now, &self.cfg.view, &self.marks_seen);
        out.push(Output::Event(Event::Synced {
            states: self.view.states.clone(),
            problems: self.view.problems.clone(),
        }));
        self.progress(now, out);
    }

    fn after_mutations(&mut self, then: AfterMutations, now: Now, out: &mut Vec<Output>) {
        match then {
            AfterMutations::Compaction => {
                let pass = compaction_pass(&self.view, &self.cfg, &mut self.ids, now);
                self.phase = Phase::Compacting(Box::new(pass));
            }
            AfterMutations::Partials => {
                let queue = self
                    .stale_partials(now)
                    .into_iter()
                    .map(WriteOp::DeleteBlock)
                    .collect();
                self.phase = Phase::Mutating {
                    queue,
                    in_flight: None,
                    then: AfterMutations::EndIteration,
                };
            }
            AfterMutations::EndIteration => {
                self.cleanup.cleaned(now);
                out.push(Output::Event(Event::IterationDone));
                if self.cfg.wait {
                    self.phase = Phase::Idle {
                        next_at: now.mono.plus(self.cfg.wait_interval_ms),
                    };
                } else {
                    self.phase = Phase::Exited;
                    out.push(Output::Exit(0));
                }
            }
        }
    }

    fn fail(&mut self, now: Now, error: String, out: &mut Vec<Output>) {
        out.push(Output::Event(Event::Retrying(error)));
        if self.cfg.wait {
            let next_at = now.mono.plus(self.cfg.wait_interval_ms);
            self.phase = Phase::Idle { next_at };
            let at = self.cleanup.next_at().map_or(next_at, |c| c.min(next_at));
            out.push(Output::Timer(at));
        } else {
            self.phase = Phase::Exited;
            out.push(Output::Exit(EXIT_FAILED));
        }
    }

    fn halt(&mut self, reason: String, out: &mut Vec<Output>) {
        out.push(Output::Event(Event::Halted(reason)));
        if self.cfg.wait && self.cfg.halt_on_error {
            self.phase = Phase::Halted;
            out.extend(self.cleanup.next_at().map(Output::Timer));
        } else {
            self.phase = Phase::Exited;
            out.push(Output::Exit(EXIT_HALTED));
        }
    }

    /// The backlog gauges over the view just synced, when due: only with `--wait` (Thanos
    /// registers its calculators only then) and a positive `--compact.progress-interval`.
    fn progress(&mut self, now: Now, out: &mut Vec<Output>) {
        let interval_ms = self.cfg.progress_interval_ms;
        if !self.cfg.wait || interval_ms <= 0 || now.mono < self.progress_next_at {
            return;
        }
        self.progress_next_at = now.mono.plus(interval_ms);
        let backlog = progress::backlog(&progress::ProgressInput {
            view: &self.view,
            ranges: &self.cfg.ranges,
            retention_ms: self.cfg.retention_ms,
            downsampling: self.cfg.downsampling,
            now_wall: now.wall,
        });
        out.push(Output::Event(Event::Progress {
            todo_compactions: backlog.compaction.runs,
            todo_compaction_blocks: backlog.compaction.blocks,
            todo_downsample_blocks: backlog.downsample_blocks,
            todo_deletion_blocks: backlog.deletion_blocks,
        }));
    }
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cleanup;
#[cfg(test)]
mod tests_hand_over;
