//! The background clean-up: Thanos' `--compact.cleanup-interval` loop, inside the cycle, and
//! the rules for what the cycle deletes (blocks whose deletion mark passed the delete delay,
//! stale partial uploads), which the iteration's own steps share.
//!
//! With `--wait` and a positive interval, Thanos runs, beside its main loop, every interval: a
//! sync, the deletion of aborted partial uploads (`BestEffortCleanAbortedPartialUploads`) and
//! of blocks whose deletion mark is past `--delete-delay` (`BlocksCleaner.DeleteMarkedBlocks`),
//! so that a compaction pass of many hours does not hold deletions back until it ends. Here the
//! clean-up is a part of the cycle's state machine, so it writes under the same rules as the
//! rest: one mutation at a time, each under the current [`Permit`], each delete a commit the
//! leader fences (`docs/safety.md`).
//!
//! - **Due**: once the interval has passed since the cycle last cleaned (the iteration's own
//!   deletions after its first sync, its partial-upload clean-up at the end, or the last
//!   clean-up). Off without `--wait` or with an interval of 0: then only the iteration cleans,
//!   as before (and as Thanos, whose main loop ends with the same clean-up).
//! - **Where**: during a compaction or downsampling pass, while the cycle waits for its next
//!   iteration, and while it is halted (Thanos' loop goes on while its main loop is halted);
//!   never in the iteration's own sync and mutation phases, which delete the same blocks.
//! - **Holding a pass**: a due clean-up holds the pass: compactions go on, but no job starts a
//!   new *run* of mutations (its no-compact marks; or its upload, meta.json and its sources'
//!   deletion marks); runs under way finish. Once no job is inside a run (the pass is
//!   *quiescent*), the clean-up syncs, deletes, then releases the pass. So no clean-up request
//!   ever falls between a job's meta.json and its sources' marks.
//! - **The view**: the clean-up's sync replaces the cycle's view (and runs the backlog gauges
//!   when due); the pass keeps the groups it planned. Blocks the pass still uses (blocks of
//!   groups not started, inputs and outputs of unfinished jobs) are never deleted: the pass
//!   planned only blocks without a deletion mark and marks a job's inputs after their last use,
//!   so only a mark written by someone else could make one eligible while the pass may still
//!   read it.
//! - **Failures**: a failed sync or delete ends that clean-up (reported); the next one is due
//!   an interval later. The iteration is not failed: its pass goes on.

use std::collections::{BTreeSet, VecDeque};

use super::super::types::{
    Event, Millis, Now, Output, Permit, ReadOp, RequestId, StoreRequest, StoreResult, SyncResult,
    WriteOp,
};
use super::super::view::mark_age_ms;
use super::ids::CycleIds;
use super::pass::{Outcome, Pass, PassKind};
use super::{Cycle, CycleConfig, Phase};
use crate::tsdb::block_id::BlockId;

/// What a clean-up deletes: a stale partial upload, or a block whose mark passed the delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deletion {
    Partial(BlockId),
    Marked(BlockId),
}

impl Deletion {
    fn block(self) -> BlockId {
        match self {
            Deletion::Partial(block) | Deletion::Marked(block) => block,
        }
    }
}

#[derive(Debug)]
enum State {
    /// No clean-up under way.
    Waiting,
    /// The clean-up's sync is in flight.
    Syncing(RequestId),
    /// Deleting, one block at a time.
    Deleting {
        queue: VecDeque<Deletion>,
        in_flight: Option<(RequestId, Deletion)>,
        blocks: u64,
        partials: u64,
    },
}

/// The background clean-up's state.
#[derive(Debug)]
pub(super) struct Cleanup {
    /// `--compact.cleanup-interval` in ms; 0 when off (no interval, or no `--wait`).
    interval_ms: i64,
    /// The next clean-up is due at this monotonic time ([`Millis::MAX`] until the cycle first
    /// cleaned).
    due_at: Millis,
    state: State,
}

/// Drives `pass` and gives the clean-up its turn in it: a due clean-up holds the pass until
/// it is quiescent, runs, then releases it. Returns the pass' outcome once it may end.
pub(super) fn drive_pass<K: PassKind>(
    pass: &mut Pass<K>,
    cleanup: &mut Cleanup,
    ids: &mut CycleIds,
    now: Now,
    permit: Permit,
    out: &mut Vec<Output>,
) -> Option<Outcome> {
    // Bounded: a round ends the loop unless the clean-up just ended, and the next one is an
    // interval away, so the next round holds nothing.
    loop {
        let hold = cleanup.holds(now);
        pass.drive(permit, hold, ids, out);
        let (outcome, quiescent) = (pass.outcome(), pass.quiescent());
        if outcome.is_some() {
            // A due clean-up does not start in a pass that is over (the iteration's next
            // steps clean anyway); one under way ends before the pass does.
            let busy = cleanup.busy() && cleanup.drive(now, Some(permit), quiescent, ids, out);
            return if busy { None } else { outcome };
        }
        if !hold {
            out.extend(cleanup.next_at().map(Output::Timer));
            return None;
        }
        if cleanup.drive(now, Some(permit), quiescent, ids, out) {
            return None;
        }
        // The clean-up just ended: drive the pass again, released.
    }
}

impl Cleanup {
    /// The clean-up of a cycle configured with `cfg`.
    pub(super) fn new(cfg: &CycleConfig) -> Self {
        let interval_ms = if cfg.wait {
            cfg.cleanup_interval_ms.max(0)
        } else {
            0
        };
        Cleanup {
            interval_ms,
            due_at: Millis::MAX,
            state: State::Waiting,
        }
    }

    /// The cycle cleaned (after its iteration's first sync, or at its end): the next
    /// clean-up is due an interval from now.
    pub(super) fn cleaned(&mut self, now: Now) {
        debug_assert!(!self.busy(), "the iteration never cleans beside a clean-up");
        if self.interval_ms > 0 {
            self.due_at = now.mono.plus(self.interval_ms);
        }
    }

    /// Drops a clean-up under way (a new term, or a restart): results of its requests are
    /// ignored; the next one is due as it was.
    pub(super) fn abandon(&mut self) {
        self.state = State::Waiting;
    }

    /// True while a clean-up is under way.
    pub(super) fn busy(&self) -> bool {
        !matches!(self.state, State::Waiting)
    }

    /// True when a clean-up is due and none is under way yet.
    pub(super) fn due(&self, now: Now) -> bool {
        self.interval_ms > 0 && !self.busy() && now.mono >= self.due_at
    }

    /// True when a pass must hold its new runs of mutations: a clean-up is due or under way.
    pub(super) fn holds(&self, now: Now) -> bool {
        self.busy() || self.due(now)
    }

    /// When the next clean-up is due, if one is to come and none is under way.
    pub(super) fn next_at(&self) -> Option<Millis> {
        (self.interval_ms > 0 && !self.busy()).then_some(self.due_at)
    }

    /// True when request `id` is the clean-up's.
    pub(super) fn owns(&self, id: RequestId) -> bool {
        match &self.state {
            State::Syncing(request) => *request == id,
            State::Deleting {
                in_flight: Some((request, _)),
                ..
            } => *request == id,
            _ => false,
        }
    }

    /// Moves the clean-up on: starts it (its sync) when due and the caller is `quiescent`,
    /// issues the next delete under `permit`, ends it when none is left. Returns true while
    /// it holds the bucket (due or under way): the caller issues no mutation of its own.
    pub(super) fn drive(
        &mut self,
        now: Now,
        permit: Option<Permit>,
        quiescent: bool,
        ids: &mut CycleIds,
        out: &mut Vec<Output>,
    ) -> bool {
        let busy = self.busy();
        if self.due(now) {
            if quiescent {
                let id = ids.next_request();
                out.push(Output::Store(StoreRequest::read(id, ReadOp::Sync)));
                self.state = State::Syncing(id);
            }
            return true;
        }
        let State::Deleting {
            queue,
            in_flight,
            blocks,
            partials,
        } = &mut self.state
        else {
            return busy;
        };
        if in_flight.is_some() {
            return true;
        }
        let Some(permit) = permit else { return true };
        let Some(next) = queue.pop_front() else {
            out.push(Output::Event(Event::CleanupDone {
                blocks: *blocks,
                partials: *partials,
            }));
            self.finish(now);
            return false;
        };
        debug_assert!(
            quiescent,
            "a clean-up delete inside a job's run of mutations"
        );
        let block = next.block();
        let id = ids.next_request();
        *in_flight = Some((id, next));
        let op = WriteOp::DeleteBlock(block);
        out.push(Output::Store(StoreRequest::write(id, op, permit)));
        true
    }

    /// Ends the clean-up; the next one is due an interval from now.
    fn finish(&mut self, now: Now) {
        self.state = State::Waiting;
        self.due_at = now.mono.plus(self.interval_ms);
    }

    /// The result of the delete in flight.
    fn on_deleted(&mut self, now: Now, result: StoreResult, out: &mut Vec<Output>) {
        let State::Deleting {
            in_flight,
            blocks,
            partials,
            ..
        } = &mut self.state
        else {
            return;
        };
        let Some((_, deletion)) = in_flight.take() else {
            return;
        };
        match (result, deletion) {
            (StoreResult::Failed(error), _) => {
                out.push(Output::Event(Event::MutationFailed {
                    op: WriteOp::DeleteBlock(deletion.block()).name().into(),
                    error: error.to_string(),
                }));
                self.finish(now);
            }
            (_, Deletion::Partial(block)) => {
                *partials += 1;
                out.push(Output::Event(Event::PartialDeleted(block)));
            }
            (_, Deletion::Marked(block)) => {
                *blocks += 1;
                out.push(Output::Event(Event::Deleted(block)));
            }
        }
    }
}

impl Cycle {
    /// While the cycle waits, for its next iteration at `next_at` or halted (`None`): runs a
    /// due clean-up (not when the iteration is due: it cleans itself) and asks for the timer.
    /// False when the iteration is due and no clean-up is under way.
    pub(super) fn wait_and_clean(
        &mut self,
        now: Now,
        next_at: Option<Millis>,
        permit: Option<Permit>,
        out: &mut Vec<Output>,
    ) -> bool {
        let iteration_due = next_at.is_some_and(|at| now.mono >= at);
        let cleaning = self.cleanup.busy() || (!iteration_due && self.cleanup.due(now));
        if cleaning && self.cleanup.drive(now, permit, true, &mut self.ids, out) {
            return true;
        }
        if iteration_due {
            return false;
        }
        let cleanup_at = self.cleanup.next_at();
        let at = next_at.map_or(cleanup_at, |n| Some(cleanup_at.map_or(n, |c| c.min(n))));
        out.extend(at.map(Output::Timer));
        true
    }

    /// A result for one of the clean-up's requests.
    pub(super) fn on_cleanup_store(
        &mut self,
        now: Now,
        result: StoreResult,
        out: &mut Vec<Output>,
    ) {
        if !matches!(self.cleanup.state, State::Syncing(_)) {
            self.cleanup.on_deleted(now, result, out);
            return;
        }
        match result {
            StoreResult::Synced(sync) => {
                self.take_sync(now, &sync, out);
                let in_use = match &self.phase {
                    Phase::Compacting(pass) => pass.blocks_in_use(),
                    Phase::Downsampling(pass, _) => pass.blocks_in_use(),
                    _ => BTreeSet::new(),
                };
                let partials = self.stale_partials(now).into_iter().map(Deletion::Partial);
                let marked = self.deletable_blocks(now).into_iter().map(Deletion::Marked);
                // Thanos' order: partial uploads, then marked blocks.
                let queue = partials
                    .chain(marked)
                    .filter(|d| !in_use.contains(&d.block()))
                    .collect();
                self.cleanup.state = State::Deleting {
                    queue,
                    in_flight: None,
                    blocks: 0,
                    partials: 0,
                };
            }
            StoreResult::Failed(e) => {
                out.push(Output::Event(Event::SyncFailed(e.to_string())));
                self.cleanup.finish(now);
            }
            other => {
                out.push(Output::Event(Event::SyncFailed(format!(
                    "sync answered {other:?}"
                ))));
                self.cleanup.finish(now);
            }
        }
    }

    /// Remembers when each deletion mark of `sync` was first seen; forgets marks gone.
    pub(super) fn note_marks_seen(&mut self, now: Now, sync: &SyncResult) {
        let marked: BTreeSet<BlockId> = sync
            .blocks
            .iter()
            .filter(|(_, b)| b.deletion_mark.is_some())
            .map(|(id, _)| *id)
            .collect();
        self.marks_seen.retain(|id, _| marked.contains(id));
        for id in marked {
            self.marks_seen.entry(id).or_insert(now.mono);
        }
    }

    /// Blocks (visible, hidden or partial) whose deletion mark is older than the delete delay
    /// (by [`super::super::view::mark_age_ms`]).
    pub(super) fn deletable_blocks(&self, now: Now) -> Vec<BlockId> {
        self.view
            .deletion_marks
            .values()
            .filter(|m| {
                let seen = self.marks_seen.get(&m.id).copied();
                mark_age_ms(m, seen, now) > self.cfg.view.delete_delay_ms
            })
            .map(|m| m.id)
            .collect()
    }

    /// Partial uploads without a deletion mark whose newest object is older than the
    /// threshold (48h).
    pub(super) fn stale_partials(&self, now: Now) -> Vec<BlockId> {
        self.view
            .partial
            .iter()
            .filter(|(_, p)| {
                !p.marked
                    && !p.corrupt_meta
                    && now.wall.0 - p.newest_modified.0 > self.cfg.partial_upload_threshold_ms
            })
            .map(|(id, _)| *id)
            .collect()
    }
}
