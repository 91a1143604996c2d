//! The compaction pass: one plan per group (Thanos runs one per group per pass), at most
//! `--compact.concurrency` groups at a time. A group's *job* is a short, ordered list of
//! steps: no-compact marks the planner asked for, the compaction itself (run by the driver),
//! then the upload of the new block's files, its meta.json (the commit that makes it
//! visible), and a deletion mark on each source. Steps of one job run strictly in order; jobs
//! of different groups interleave.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::super::plan::{group_blocks, overlapping_blocks, plan_with_marks, GroupKey, PlanInput};
use super::super::types::{
    CompactJob, CompactedBlock, Event, JobError, JobErrorKind, JobId, JobKind, Now, Output, Permit,
    RequestId, StoreOp, StoreRequest, StoreResult,
};
use super::super::view::BucketView;
use super::marks::deletion_mark;
use super::CycleConfig;
use crate::bucket::markers::{
    NoCompactMark, DETAILS_COMPACTED_SOURCE, DETAILS_OUT_OF_ORDER_CHUNKS, MARKER_VERSION,
    REASON_OUT_OF_ORDER_CHUNKS,
};
use crate::rng::Rng;
use crate::timefmt::format_rfc3339_ms;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockFile, BlockMeta, ThanosMeta, SOURCE_COMPACTOR};

/// How a pass ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every group was handled; `progress` when any compaction happened.
    Done {
        /// True when a block was compacted (the caller syncs and goes again).
        progress: bool,
    },
    /// A store mutation or a retryable job failed.
    Failed(String),
    /// Stop compacting for good.
    Halt(String),
}

/// One group's planned work.
#[derive(Debug)]
struct Job {
    id: JobId,
    key: GroupKey,
    inputs: Vec<BlockMeta>,
    output: BlockId,
    steps: VecDeque<Step>,
    in_flight: Option<(RequestId, StoreOp)>,
    /// True from the job's first mutation of a run (its no-compact marks; or its upload,
    /// meta.json and deletion marks) until the run's last one is done: a clean-up must not
    /// fall inside a run (see [`CompactPass::quiescent`]).
    in_run: bool,
}

impl Job {
    fn new(
        id: JobId,
        key: GroupKey,
        inputs: Vec<BlockMeta>,
        output: BlockId,
        steps: VecDeque<Step>,
    ) -> Self {
        Job {
            id,
            key,
            inputs,
            output,
            steps,
            in_flight: None,
            in_run: false,
        }
    }

    /// True while the job is inside a run of mutations: one in flight, or more to come after
    /// one it issued.
    fn mid_run(&self) -> bool {
        self.in_flight.is_some()
            || (self.in_run && matches!(self.steps.front(), Some(Step::Mutate(_))))
    }
}

#[derive(Debug)]
enum Step {
    /// A store mutation.
    Mutate(StoreOp),
    /// Ask the driver to compact; wait for the result.
    Compact,
    /// Waiting for the compaction result.
    AwaitCompaction,
}

/// The compaction pass's state.
#[derive(Debug)]
pub struct CompactPass {
    /// Groups still to plan, in Thanos' order (by key string).
    groups: VecDeque<(GroupKey, Vec<BlockMeta>)>,
    running: BTreeMap<JobId, Job>,
    no_compact: BTreeSet<BlockId>,
    cfg: CycleConfig,
    progress: bool,
    outcome: Option<Outcome>,
    next_job: u64,
    /// Block ids for outputs, drawn up front so the pass needs no RNG later.
    ids: VecDeque<u128>,
    started_wall_ms: i64,
}

impl CompactPass {
    /// Plans the pass over the visible, unmarked blocks of `view`.
    /// Job ids start after `first_job`, so they never repeat within a process and a late
    /// result of an abandoned pass's job cannot be taken for one of this pass's.
    pub fn new(
        view: &BucketView,
        cfg: &CycleConfig,
        now: Now,
        rng: &mut Rng,
        first_job: u64,
    ) -> Self {
        let candidates = view
            .blocks
            .values()
            .filter(|m| !view.deletion_marks.contains_key(&m.ulid));
        let mut groups: Vec<(GroupKey, Vec<BlockMeta>)> = group_blocks(candidates)
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().cloned().collect()))
            .collect();
        groups.sort_by_cached_key(|(k, _)| k.to_string());
        let ids = (0..groups.len()).map(|_| rng.ulid_bits()).collect();
        CompactPass {
            groups: groups.into(),
            running: BTreeMap::new(),
            no_compact: view.no_compact.clone(),
            cfg: cfg.clone(),
            progress: false,
            outcome: None,
            next_job: first_job,
            ids,
            started_wall_ms: now.wall.0,
        }
    }

    fn plan_input<'a>(&'a self, blocks: &'a [&'a BlockMeta]) -> PlanInput<'a> {
        PlanInput {
            blocks,
            no_compact: &self.no_compact,
            ranges: &self.cfg.ranges,
            vertical: self.cfg.vertical,
            index_size_limit_bytes: self.cfg.index_size_limit_bytes,
        }
    }

    /// The last job id this pass may use (one per group).
    pub fn last_job_id(&self) -> u64 {
        self.next_job + self.groups.len() as u64
    }

    /// How the pass ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome.clone()
    }

    /// True when no job is inside a run of mutations: a clean-up may run now without
    /// falling between a job's meta.json and its sources' deletion marks.
    pub fn quiescent(&self) -> bool {
        self.running.values().all(|j| !j.mid_run())
    }

    /// The blocks the pass may still read or write: the blocks of groups not started yet,
    /// and the inputs and output of every job not finished. A clean-up leaves them alone.
    pub fn blocks_in_use(&self) -> BTreeSet<BlockId> {
        let pending = self.groups.iter().flat_map(|(_, metas)| metas.iter());
        let running = self
            .running
            .values()
            .filter(|j| j.in_flight.is_some() || !j.steps.is_empty());
        pending
            .map(|m| m.ulid)
            .chain(running.flat_map(|j| j.inputs.iter().map(|m| m.ulid).chain([j.output])))
            .collect()
    }

    /// Starts jobs up to the concurrency and advances every job that can move. With `hold`
    /// (a clean-up is due or under way), compactions go on but no job starts a new run of
    /// mutations; runs under way finish.
    pub fn drive(
        &mut self,
        permit: Permit,
        hold: bool,
        next_request: &mut u64,
        out: &mut Vec<Output>,
    ) {
        // Each round finishes jobs or starts groups; it ends when a round changes nothing.
        // Bounded: every round that continues removes a job or takes a group off the queue.
        loop {
            self.running
                .retain(|_, j| j.in_flight.is_some() || !j.steps.is_empty());
            let (groups_before, running_before) = (self.groups.len(), self.running.len());
            while self.outcome.is_none() && self.running.len() < self.cfg.concurrency.max(1) {
                let Some((key, metas)) = self.groups.pop_front() else {
                    break;
                };
                self.start_group(key, metas, out);
            }
            if self.outcome.is_some() {
                return;
            }
            let ids: Vec<JobId> = self.running.keys().copied().collect();
            for id in ids {
                self.advance_job(id, permit, hold, next_request, out);
            }
            let finished = self
                .running
                .values()
                .any(|j| j.in_flight.is_none() && j.steps.is_empty());
            let moved = self.groups.len() != groups_before || self.running.len() != running_before;
            if !finished && !moved {
                break;
            }
            if !finished && self.groups.is_empty() {
                break;
            }
        }
        if self.groups.is_empty() && self.running.is_empty() && self.outcome.is_none() {
            self.outcome = Some(Outcome::Done {
                progress: self.progress,
            });
        }
    }

    /// Plans one group; halts on overlaps Thanos halts on.
    fn start_group(&mut self, key: GroupKey, metas: Vec<BlockMeta>, out: &mut Vec<Output>) {
        let refs: Vec<&BlockMeta> = metas.iter().collect();
        if !self.cfg.vertical {
            let overlaps = overlapping_blocks(&refs);
            if !overlaps.is_empty() {
                let list: Vec<String> = overlaps.iter().map(|g| format!("[{}]", join(g))).collect();
                self.outcome = Some(Outcome::Halt(format!(
                    "pre compaction overlap check: overlaps found while gathering blocks in group {key}: {}; enable vertical compaction or remove the overlapping blocks",
                    list.join(", ")
                )));
                return;
            }
        }
        let planned = plan_with_marks(&self.plan_input(&refs));
        let mut steps: VecDeque<Step> = planned
            .marks
            .iter()
            .map(|m| {
                self.no_compact.insert(m.block);
                Step::Mutate(StoreOp::MarkNoCompact(NoCompactMark {
                    id: m.block,
                    version: MARKER_VERSION,
                    details: m.details.clone(),
                    no_compact_time: self.started_wall_ms.div_euclid(1000),
                    reason: m.reason.to_string(),
                }))
            })
            .collect();
        let inputs: Vec<BlockMeta> = planned
            .compact
            .iter()
            .filter_map(|id| metas.iter().find(|m| m.ulid == *id).cloned())
            .collect();
        if let Some(reason) = self.shared_sources(&key, &inputs) {
            self.outcome = Some(Outcome::Halt(reason));
            return;
        }
        if !inputs.is_empty() {
            steps.push_back(Step::Compact);
        }
        if steps.is_empty() {
            return;
        }
        self.next_job += 1;
        let id = JobId(self.next_job);
        let random = self.ids.pop_front().unwrap_or_default();
        let output = BlockId::from_parts(
            self.started_wall_ms.max(0) as u64,
            random ^ u128::from(self.next_job),
        );
        if !inputs.is_empty() {
            out.push(Output::Event(Event::Planned {
                group: key.to_string(),
                resolution: key.resolution,
                inputs: inputs.iter().map(|m| m.ulid).collect(),
                output,
            }));
        }
        self.running
            .insert(id, Job::new(id, key, inputs, output, steps));
    }

    /// Thanos halts when two blocks of a plan share a source, unless vertical compaction is on.
    fn shared_sources(&self, key: &GroupKey, inputs: &[BlockMeta]) -> Option<String> {
        if self.cfg.vertical {
            return None;
        }
        let mut seen: BTreeMap<BlockId, BlockId> = BTreeMap::new();
        for m in inputs {
            for s in &m.compaction.sources {
                if let Some(other) = seen.insert(*s, m.ulid) {
                    if other != m.ulid {
                        return Some(format!(
                            "overlapping sources detected for plan in group {key}: blocks {other} and {} share source {s}",
                            m.ulid
                        ));
                    }
                }
            }
        }
        None
    }

    fn advance_job(
        &mut self,
        id: JobId,
        permit: Permit,
        hold: bool,
        next_request: &mut u64,
        out: &mut Vec<Output>,
    ) {
        let Some(job) = self.running.get_mut(&id) else {
            return;
        };
        if job.in_flight.is_some() {
            return;
        }
        match job.steps.front() {
            None | Some(Step::AwaitCompaction) => {}
            Some(Step::Compact) => {
                job.steps[0] = Step::AwaitCompaction;
                job.in_run = false;
                out.push(Output::Compact(CompactJob {
                    job: job.id,
                    group: job.key.to_string(),
                    inputs: job.inputs.clone(),
                    output: job.output,
                    kind: JobKind::Compact,
                }));
            }
            // Held: a clean-up waits for the runs under way; this one starts after it.
            Some(Step::Mutate(_)) if hold && !job.in_run => {}
            Some(Step::Mutate(_)) => {
                if let Some(Step::Mutate(op)) = job.steps.pop_front() {
                    *next_request += 1;
                    let request = RequestId(*next_request);
                    job.in_run = true;
                    job.in_flight = Some((request, op.clone()));
                    out.push(Output::Store(StoreRequest {
                        id: request,
                        op,
                        permit: Some(permit),
                    }));
                }
            }
        }
    }

    /// A store result for one of the jobs.
    pub fn on_store(&mut self, request: RequestId, result: StoreResult, out: &mut Vec<Output>) {
        let Some(job) = self
            .running
            .values_mut()
            .find(|j| j.in_flight.as_ref().is_some_and(|(r, _)| *r == request))
        else {
            return;
        };
        let (_, op) = job.in_flight.take().expect("matched above");
        if let Some(failure) = mutation_result(&op, result, &format!("group {}", job.key), out) {
            self.outcome.get_or_insert(Outcome::Failed(failure));
        }
    }

    /// A compaction result for one of the jobs.
    pub fn on_compacted(
        &mut self,
        id: JobId,
        result: Result<Option<CompactedBlock>, JobError>,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let Some(job) = self.running.get_mut(&id) else {
            return;
        };
        if !matches!(job.steps.front(), Some(Step::AwaitCompaction)) {
            return;
        }
        let result = expect_output(result, job.output);
        job.steps.pop_front();
        let group = job.key.to_string();
        let resolution = job.key.resolution;
        match result {
            Err(e) => self.job_failed(id, e, now, out),
            Ok(block) => {
                self.progress = true;
                let vertical =
                    !overlapping_blocks(&job.inputs.iter().collect::<Vec<_>>()).is_empty();
                out.push(Output::Event(Event::Compacted {
                    group,
                    resolution,
                    output: block.as_ref().map(|b| b.meta.ulid),
                    samples: block.as_ref().map_or(0, |b| b.meta.stats.num_samples),
                    vertical,
                }));
                if let Some(block) = block {
                    let meta = final_meta(&block, &job.key, now);
                    job.steps.push_back(Step::Mutate(StoreOp::UploadFiles {
                        job: job.id,
                        block: job.output,
                    }));
                    job.steps.push_back(Step::Mutate(StoreOp::PutMeta {
                        meta: Box::new(meta),
                    }));
                }
                for input in &job.inputs {
                    job.steps
                        .push_back(Step::Mutate(StoreOp::MarkDeletion(deletion_mark(
                            input.ulid,
                            now,
                            DETAILS_COMPACTED_SOURCE,
                        ))));
                }
            }
        }
    }

    /// Job `id` failed. An input block with out-of-order chunks is no-compact-marked when
    /// `--compact.skip-block-with-out-of-order-chunks` asks for it, as the job's last step
    /// (issued under the pass's permit like every mutation), and the pass goes on and runs
    /// again, as Thanos reruns its groups after the mark. Otherwise the pass fails
    /// (retryable) or halts.
    fn job_failed(&mut self, id: JobId, e: JobError, now: Now, out: &mut Vec<Output>) {
        let Some(job) = self.running.get_mut(&id) else {
            return;
        };
        debug_assert!(
            job.in_flight.is_none(),
            "a failed job has nothing in flight"
        );
        debug_assert!(
            job.steps.is_empty(),
            "the compaction was the job's last step"
        );
        let group = job.key.to_string();
        out.push(Output::Event(Event::CompactionFailed {
            group: group.clone(),
            resolution: job.key.resolution,
            error: e.message.clone(),
        }));
        let outcome = match e.kind {
            JobErrorKind::OutOfOrderChunks { block } => {
                // A block outside the plan cannot be the culprit: never mark what was not read.
                let input = job.inputs.iter().any(|m| m.ulid == block);
                if input && self.cfg.skip_out_of_order_chunks {
                    let mark = out_of_order_chunks_mark(block, now);
                    job.steps
                        .push_back(Step::Mutate(StoreOp::MarkNoCompact(mark)));
                    self.no_compact.insert(block);
                    self.progress = true;
                    return;
                }
                let advice = if input {
                    format!(
                        "move block {block} (out-of-order chunks) out of the bucket, or \
                         no-compact-mark it (--compact.skip-block-with-out-of-order-chunks does so)"
                    )
                } else {
                    format!("the error names block {block}, which is not an input of the plan")
                };
                Outcome::Halt(format!(
                    "compaction of group {group} failed: {}; {advice}",
                    e.message
                ))
            }
            JobErrorKind::Other if e.retryable => {
                Outcome::Failed(format!("group {group}: {}", e.message))
            }
            JobErrorKind::Other => {
                Outcome::Halt(format!("compaction of group {group} failed: {}", e.message))
            }
        };
        self.outcome.get_or_insert(outcome);
    }
}

/// The no-compact mark Thanos writes on a block with out-of-order chunks.
fn out_of_order_chunks_mark(block: BlockId, now: Now) -> NoCompactMark {
    NoCompactMark {
        id: block,
        version: MARKER_VERSION,
        details: DETAILS_OUT_OF_ORDER_CHUNKS.to_string(),
        no_compact_time: now.wall.0.div_euclid(1000),
        reason: REASON_OUT_OF_ORDER_CHUNKS.to_string(),
    }
}

/// The meta.json uploaded for a compacted block: Thanos' `InjectThanos` plus the upload's
/// `files` and `upload_time`.
pub fn final_meta(block: &CompactedBlock, key: &GroupKey, now: Now) -> BlockMeta {
    let mut meta = block.meta.clone();
    let extensions = meta.thanos.as_ref().and_then(|t| t.extensions.clone());
    let (files, segment_files) = uploaded_files(block);
    meta.thanos = Some(ThanosMeta {
        labels: key.labels.clone(),
        downsample: crate::tsdb::meta::Downsample {
            resolution: key.resolution,
        },
        source: SOURCE_COMPACTOR.to_string(),
        segment_files,
        files,
        extensions,
        upload_time: format_rfc3339_ms(now.wall.0),
        ..ThanosMeta::default()
    });
    meta
}

/// `thanos.files` (with meta.json, sorted by path) and `thanos.segment_files` of a block
/// about to be uploaded.
pub(super) fn uploaded_files(block: &CompactedBlock) -> (Vec<BlockFile>, Vec<String>) {
    let mut files = block.files.clone();
    files.push(BlockFile {
        rel_path: crate::tsdb::meta::META_FILENAME.to_string(),
        size_bytes: 0,
        hash: None,
    });
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    let segment_files = files
        .iter()
        .filter_map(|f| f.rel_path.strip_prefix("chunks/").map(str::to_string))
        .collect();
    (files, segment_files)
}

/// A job's result, refused when it names another block than the job was to write.
pub(super) fn expect_output(
    result: Result<Option<CompactedBlock>, JobError>,
    output: BlockId,
) -> Result<Option<CompactedBlock>, JobError> {
    result.and_then(|block| match block {
        Some(b) if b.meta.ulid != output => Err(JobError::retryable(format!(
            "job result names block {}, expected {output}",
            b.meta.ulid
        ))),
        other => Ok(other),
    })
}

/// Reports the result of a job's mutation; returns the failure (prefixed by `context`) that
/// ends the pass, if it failed.
pub(super) fn mutation_result(
    op: &StoreOp,
    result: StoreResult,
    context: &str,
    out: &mut Vec<Output>,
) -> Option<String> {
    match result {
        StoreResult::Failed(e) => {
            out.push(Output::Event(Event::MutationFailed {
                op: op.name().into(),
                error: e.clone(),
            }));
            Some(format!("{context}: {}: {e}", op.name()))
        }
        _ => {
            out.extend(op.completion_event(&result).map(Output::Event));
            None
        }
    }
}

fn join(ids: &[BlockId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
