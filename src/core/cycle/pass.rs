//! The pass engine: one engine runs the jobs of every pass, compaction ([`super::compaction`])
//! and downsampling ([`super::downsampling`]) alike. A [`PassKind`] supplies only what
//! differs: what is queued, how a queued item becomes a job, what the driver runs, what
//! follows its result, the events and the failure wording.
//!
//! The engine owns the rest. Queued items become jobs in order, at most the pass's
//! concurrency at a time. A job is an ordered list of steps: its first mutations (the
//! no-compact marks a plan asks for), the driver's run (compaction or downsampling), then the
//! mutations that follow the result (upload, meta.json, marks). A job's steps run strictly in
//! order, one request at a time; jobs interleave. A job's *run* is its mutations in a row:
//! with `hold` (a clean-up is due or under way) no job starts a new run, runs under way
//! finish, and the pass is *quiescent* once no job is inside one. The engine mints the job
//! ids and output block ids ([`JobIds`]), takes the store results, and keeps the outcome:
//! the first failure or halt, or done once every item was handled.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::super::types::{
    CompactJob, CompactedBlock, Event, JobError, JobId, Now, Output, Permit, RequestId,
    StoreRequest, StoreResult, WriteOp,
};
use super::ids::{CycleIds, JobIds};
use crate::tsdb::block_id::BlockId;

/// How a pass ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every queued item was handled; `progress` when the pass changed what to compact.
    Done {
        /// True when a block was compacted or marked (the caller syncs and goes again).
        progress: bool,
    },
    /// A store mutation or a retryable job failed.
    Failed(String),
    /// Stop compacting for good.
    Halt(String),
}

/// What a kind of pass supplies to the engine.
pub(super) trait PassKind {
    /// A queued item: a group to plan, a block to downsample.
    type Item;
    /// What a job keeps of its item.
    type Job;

    /// The blocks a queued item will read.
    fn item_blocks(item: &Self::Item) -> Vec<BlockId>;
    /// The blocks a job reads.
    fn job_blocks(job: &Self::Job) -> Vec<BlockId>;
    /// Makes a job of `item`, or a reason to halt the pass.
    fn plan(&mut self, item: Self::Item) -> Result<Planned<Self::Job>, String>;
    /// Reports a job whose driver run is planned, writing `output`.
    fn planned(&self, job: &Self::Job, output: BlockId, out: &mut Vec<Output>);
    /// What the driver runs for `job`.
    fn driver_job(&self, job: &Self::Job, id: JobId, output: BlockId) -> CompactJob;
    /// Reports the driver's `result` for `job` (`ids`: the job's id and the block it writes,
    /// which the result was checked to name), and says what follows.
    fn finished(
        &mut self,
        job: &Self::Job,
        ids: (JobId, BlockId),
        result: Result<Option<CompactedBlock>, JobError>,
        now: Now,
        out: &mut Vec<Output>,
    ) -> Then;
    /// What a failed mutation of `job` is reported under (`group <key>`).
    fn context(job: &Self::Job) -> String;
}

/// A queued item made into a job.
pub(super) struct Planned<J> {
    /// What the job keeps.
    pub job: J,
    /// Mutations before the driver's run.
    pub mutations: Vec<WriteOp>,
    /// True when the driver runs the job after them. An item with neither needs no job.
    pub run: bool,
}

/// What follows a driver run.
pub(super) enum Then {
    /// These mutations, in order (maybe none); `progress` when the pass made progress.
    Mutate {
        /// The mutations.
        ops: Vec<WriteOp>,
        /// True when the pass made progress.
        progress: bool,
    },
    /// The pass ends so.
    End(Outcome),
}

/// A job's next thing to do.
#[derive(Debug)]
enum Step {
    /// A store mutation.
    Mutate(WriteOp),
    /// Ask the driver to run the job.
    Run,
    /// Waiting for the driver's result.
    Await,
}

/// A running job.
#[derive(Debug)]
struct Job<J> {
    id: JobId,
    output: BlockId,
    data: J,
    steps: VecDeque<Step>,
    in_flight: Option<(RequestId, WriteOp)>,
    /// True from the job's first mutation of a run until the driver's run (or the job's
    /// end): a clean-up must not fall inside a run (see [`Pass::quiescent`]).
    in_run: bool,
}

impl<J> Job<J> {
    /// True once the job has nothing left to do.
    fn finished(&self) -> bool {
        self.in_flight.is_none() && self.steps.is_empty()
    }

    /// True while the job is inside a run of mutations: one in flight, or more to come after
    /// one it issued.
    fn mid_run(&self) -> bool {
        self.in_flight.is_some()
            || (self.in_run && matches!(self.steps.front(), Some(Step::Mutate(_))))
    }
}

/// A pass: its queue, its running jobs, and how it ended.
#[derive(Debug)]
pub(super) struct Pass<K: PassKind> {
    kind: K,
    /// Items not started yet, in order.
    queue: VecDeque<K::Item>,
    running: BTreeMap<JobId, Job<K::Job>>,
    /// The most jobs running at a time.
    concurrency: usize,
    ids: JobIds,
    progress: bool,
    outcome: Option<Outcome>,
    /// No item starts: the stream is being handed over once the jobs running are done.
    draining: bool,
}

impl<K: PassKind> Pass<K> {
    /// A pass of `kind` over `queue`, `concurrency` jobs at a time, starting `now`.
    pub(super) fn new(
        kind: K,
        queue: Vec<K::Item>,
        concurrency: usize,
        ids: &mut CycleIds,
        now: Now,
    ) -> Self {
        Pass {
            kind,
            ids: ids.reserve(queue.len(), now),
            queue: queue.into(),
            running: BTreeMap::new(),
            concurrency: concurrency.max(1),
            progress: false,
            outcome: None,
            draining: false,
        }
    }

    /// Starts no further item while `draining` (the jobs running go on to their end).
    pub(super) fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// True when no job runs: a draining pass has done all it will.
    pub(super) fn drained(&self) -> bool {
        self.running.values().all(|j| j.finished())
    }

    /// How the pass ended, once it has.
    pub(super) fn outcome(&self) -> Option<Outcome> {
        self.outcome.clone()
    }

    /// True when no job is inside a run of mutations: a clean-up may run now without
    /// falling, e.g., between a job's meta.json and its sources' deletion marks.
    pub(super) fn quiescent(&self) -> bool {
        self.running.values().all(|j| !j.mid_run())
    }

    /// The blocks the pass may still read or write: those of items not started yet, and the
    /// inputs and output of every job not finished. A clean-up leaves them alone.
    pub(super) fn blocks_in_use(&self) -> BTreeSet<BlockId> {
        let queued = self.queue.iter().flat_map(K::item_blocks);
        let running = self.running.values().filter(|j| !j.finished());
        queued
            .chain(running.flat_map(|j| K::job_blocks(&j.data).into_iter().chain([j.output])))
            .collect()
    }

    /// Starts jobs up to the concurrency and advances every job that can move. With `hold`,
    /// driver runs go on but no job starts a new run of mutations; runs under way finish.
    ///
    /// One round is enough: only results finish jobs, so a job started or advanced here
    /// leaves no room for another until the next input.
    pub(super) fn drive(
        &mut self,
        permit: Permit,
        hold: bool,
        ids: &mut CycleIds,
        out: &mut Vec<Output>,
    ) {
        self.running.retain(|_, j| !j.finished());
        while self.outcome.is_none() && !self.draining && self.running.len() < self.concurrency {
            let Some(item) = self.queue.pop_front() else {
                break;
            };
            self.start(item, out);
        }
        if self.outcome.is_some() {
            return;
        }
        let running: Vec<JobId> = self.running.keys().copied().collect();
        for id in running {
            self.advance(id, permit, hold, ids, out);
        }
        debug_assert!(
            self.running.values().all(|j| !j.finished()),
            "a job finished without a result"
        );
        if self.queue.is_empty() && self.running.is_empty() {
            self.outcome = Some(Outcome::Done {
                progress: self.progress,
            });
        }
    }

    /// Makes a job of `item`; halts the pass when the kind says so.
    fn start(&mut self, item: K::Item, out: &mut Vec<Output>) {
        let planned = match self.kind.plan(item) {
            Ok(planned) => planned,
            Err(reason) => {
                self.outcome = Some(Outcome::Halt(reason));
                return;
            }
        };
        let mut steps: VecDeque<Step> = planned.mutations.into_iter().map(Step::Mutate).collect();
        if planned.run {
            steps.push_back(Step::Run);
        }
        if steps.is_empty() {
            return;
        }
        let (id, output) = self.ids.next();
        if planned.run {
            self.kind.planned(&planned.job, output, out);
        }
        let job = Job {
            id,
            output,
            data: planned.job,
            steps,
            in_flight: None,
            in_run: false,
        };
        self.running.insert(id, job);
    }

    /// Issues job `id`'s next request, unless one is in flight, it awaits the driver, or
    /// `hold` keeps it from starting a run.
    fn advance(
        &mut self,
        id: JobId,
        permit: Permit,
        hold: bool,
        ids: &mut CycleIds,
        out: &mut Vec<Output>,
    ) {
        let Some(job) = self.running.get_mut(&id) else {
            return;
        };
        if job.in_flight.is_some() {
            return;
        }
        match job.steps.front() {
            None | Some(Step::Await) => {}
            Some(Step::Run) => {
                job.steps[0] = Step::Await;
                job.in_run = false;
                let spec = self.kind.driver_job(&job.data, job.id, job.output);
                out.push(Output::Compact(spec));
            }
            // Held: a clean-up waits for the runs under way; this one starts after it.
            Some(Step::Mutate(_)) if hold && !job.in_run => {}
            Some(Step::Mutate(_)) => {
                if let Some(Step::Mutate(op)) = job.steps.pop_front() {
                    let request = ids.next_request();
                    job.in_run = true;
                    job.in_flight = Some((request, op.clone()));
                    out.push(Output::Store(StoreRequest::write(request, op, permit)));
                }
            }
        }
    }

    /// A store result for one of the jobs: a failed mutation ends its job and fails the pass.
    pub(super) fn on_store(
        &mut self,
        request: RequestId,
        result: StoreResult,
        out: &mut Vec<Output>,
    ) {
        let Some(job) = self
            .running
            .values_mut()
            .find(|j| j.in_flight.as_ref().is_some_and(|(r, _)| *r == request))
        else {
            return;
        };
        let (_, op) = job.in_flight.take().expect("matched above");
        let context = K::context(&job.data);
        if let Some(failure) = mutation_result(&op, result, &context, out) {
            job.steps.clear();
            self.outcome.get_or_insert(Outcome::Failed(failure));
        }
    }

    /// The driver's result for job `id`.
    pub(super) fn on_result(
        &mut self,
        id: JobId,
        result: Result<Option<CompactedBlock>, JobError>,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let Some(job) = self.running.get_mut(&id) else {
            return;
        };
        if !matches!(job.steps.front(), Some(Step::Await)) {
            return;
        }
        job.steps.pop_front();
        debug_assert!(
            job.steps.is_empty(),
            "the driver's run is a job's last step"
        );
        debug_assert!(job.in_flight.is_none(), "nothing in flight beside a run");
        let result = expect_output(result, job.output);
        let ids = (job.id, job.output);
        match self.kind.finished(&job.data, ids, result, now, out) {
            Then::Mutate { ops, progress } => {
                job.steps.extend(ops.into_iter().map(Step::Mutate));
                self.progress |= progress;
            }
            Then::End(outcome) => {
                self.outcome.get_or_insert(outcome);
            }
        }
    }
}

/// A job's result, refused when it names another block than the job was to write.
fn expect_output(
    result: Result<Option<CompactedBlock>, JobError>,
    output: BlockId,
) -> Result<Option<CompactedBlock>, JobError> {
    result.and_then(|block| match block {
        Some(b) if b.meta.ulid != output => Err(JobError::internal(format!(
            "job result names block {}, expected {output}",
            b.meta.ulid
        ))),
        other => Ok(other),
    })
}

/// Reports the result of a job's mutation; returns the failure (prefixed by `context`) that
/// ends the pass, if it failed.
fn mutation_result(
    op: &WriteOp,
    result: StoreResult,
    context: &str,
    out: &mut Vec<Output>,
) -> Option<String> {
    match result {
        StoreResult::Failed(e) => {
            out.push(Output::Event(Event::MutationFailed {
                op: op.name().into(),
                error: e.to_string(),
            }));
            Some(format!("{context}: {}: {e}", op.name()))
        }
        _ => {
            out.extend(op.completion_event(&result).map(Output::Event));
            None
        }
    }
}
