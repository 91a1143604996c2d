//! A downsampling pass, as Thanos' `downsampleBucket` runs it after compaction (twice per
//! iteration, so that 5m blocks made by the first pass become 1h blocks in the second).
//!
//! Candidates are the visible blocks without a deletion or no-downsample mark, in ULID order:
//! a raw block spanning at least 40h whose sources are not all covered by a 5m block yet goes
//! to 5m; a 5m block spanning at least 10 days whose sources are not all covered by a 1h block
//! goes to 1h. Each job downloads the block, downsamples it (driver), uploads the new block's
//! files, then its meta.json (the commit). Sources are not marked: retention deletes them.
//! At most `--downsample.concurrency` jobs run at a time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::super::plan::group_key;
use super::super::types::{
    CompactJob, CompactedBlock, Event, JobError, JobId, JobKind, Now, Output, Permit, RequestId,
    StoreOp, StoreRequest, StoreResult,
};
use super::super::view::{resolution, BucketView};
use super::pass::{expect_output, mutation_result, uploaded_files, Outcome};
use crate::rng::Rng;
use crate::timefmt::format_rfc3339_ms;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockMeta, ThanosMeta, SOURCE_COMPACTOR};

/// Raw resolution.
pub const RESOLUTION_RAW_MS: i64 = 0;
/// The first downsampling level (5m).
pub const RESOLUTION_5M_MS: i64 = 5 * 60_000;
/// The second downsampling level (1h).
pub const RESOLUTION_1H_MS: i64 = 60 * 60_000;
/// A raw block is downsampled once it spans this long (Thanos' `ResLevel1DownsampleRange`).
pub const DOWNSAMPLE_RANGE_5M_MS: i64 = 40 * 3_600_000;
/// A 5m block is downsampled once it spans this long (`ResLevel2DownsampleRange`).
pub const DOWNSAMPLE_RANGE_1H_MS: i64 = 10 * 24 * 3_600_000;

/// The resolution a block of `resolution` is downsampled to, and the span it needs first.
pub fn next_level(resolution: i64) -> Option<(i64, i64)> {
    match resolution {
        RESOLUTION_RAW_MS => Some((RESOLUTION_5M_MS, DOWNSAMPLE_RANGE_5M_MS)),
        RESOLUTION_5M_MS => Some((RESOLUTION_1H_MS, DOWNSAMPLE_RANGE_1H_MS)),
        _ => None,
    }
}

/// The blocks of `view` to downsample now, in ULID order, with their target resolution.
pub fn downsample_candidates(view: &BucketView) -> Vec<(BlockMeta, i64)> {
    // Sources already covered at each resolution, by every block the sync still shows.
    let mut covered: BTreeMap<i64, BTreeSet<BlockId>> = BTreeMap::new();
    for m in view.blocks.values() {
        if view.no_downsample.contains(&m.ulid) {
            continue;
        }
        covered
            .entry(resolution(m))
            .or_default()
            .extend(m.compaction.sources.iter().copied());
    }
    let empty = BTreeSet::new();
    view.blocks
        .values()
        .filter(|m| !view.deletion_marks.contains_key(&m.ulid))
        .filter(|m| !view.no_downsample.contains(&m.ulid))
        .filter_map(|m| {
            let (target, span) = next_level(resolution(m))?;
            let done = covered.get(&target).unwrap_or(&empty);
            let missing = m.compaction.sources.iter().any(|s| !done.contains(s));
            (missing && m.max_time - m.min_time >= span).then(|| (m.clone(), target))
        })
        .collect()
}

/// How far a job is.
#[derive(Debug)]
enum Step {
    /// Ask the driver to downsample.
    Run,
    /// Waiting for the driver.
    Await,
    /// A store mutation.
    Mutate(StoreOp),
}

#[derive(Debug)]
struct Job {
    input: BlockMeta,
    target: i64,
    output: BlockId,
    steps: VecDeque<Step>,
    in_flight: Option<(RequestId, StoreOp)>,
    /// True once the job issued its first mutation (the upload): its meta.json follows.
    in_run: bool,
}

impl Job {
    /// True between the job's upload and its meta.json (see [`DownsamplePass::quiescent`]).
    fn mid_run(&self) -> bool {
        self.in_flight.is_some()
            || (self.in_run && matches!(self.steps.front(), Some(Step::Mutate(_))))
    }
}

/// The downsampling pass's state.
#[derive(Debug)]
pub struct DownsamplePass {
    queue: VecDeque<(BlockMeta, i64)>,
    running: BTreeMap<JobId, Job>,
    concurrency: usize,
    outcome: Option<Outcome>,
    next_job: u64,
    last_job: u64,
    ids: VecDeque<u128>,
    started_wall_ms: i64,
}

impl DownsamplePass {
    /// Plans a pass over `view`; job ids start after `first_job`.
    pub fn new(
        view: &BucketView,
        concurrency: usize,
        now: Now,
        rng: &mut Rng,
        first_job: u64,
    ) -> Self {
        let queue: VecDeque<(BlockMeta, i64)> = downsample_candidates(view).into();
        let ids = (0..queue.len()).map(|_| rng.ulid_bits()).collect();
        DownsamplePass {
            last_job: first_job + queue.len() as u64,
            queue,
            running: BTreeMap::new(),
            concurrency: concurrency.max(1),
            outcome: None,
            next_job: first_job,
            ids,
            started_wall_ms: now.wall.0,
        }
    }

    /// The event announcing the pass (metric series and the to-do gauge).
    pub fn start_event(&self, view: &BucketView) -> Event {
        let resolutions: BTreeSet<i64> = view
            .blocks
            .values()
            .filter(|m| !view.no_downsample.contains(&m.ulid))
            .map(resolution)
            .collect();
        Event::DownsamplePass {
            resolutions: resolutions.into_iter().collect(),
            todo: self.queue.len() as u64,
        }
    }

    /// The last job id this pass may use.
    pub fn last_job_id(&self) -> u64 {
        self.last_job
    }

    /// How the pass ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome.clone()
    }

    /// True when no job is between its upload and its meta.json: a clean-up may run now.
    pub fn quiescent(&self) -> bool {
        self.running.values().all(|j| !j.mid_run())
    }

    /// The blocks the pass may still read or write: the queued blocks, and the input and
    /// output of every job not finished. A clean-up leaves them alone.
    pub fn blocks_in_use(&self) -> BTreeSet<BlockId> {
        let running = self
            .running
            .values()
            .filter(|j| j.in_flight.is_some() || !j.steps.is_empty());
        self.queue
            .iter()
            .map(|(m, _)| m.ulid)
            .chain(running.flat_map(|j| [j.input.ulid, j.output]))
            .collect()
    }

    /// Starts jobs up to the concurrency and advances every job that can move. With `hold`
    /// (a clean-up is due or under way), downsampling goes on but no job starts uploading;
    /// a job between its upload and its meta.json finishes.
    pub fn drive(
        &mut self,
        permit: Permit,
        hold: bool,
        next_request: &mut u64,
        out: &mut Vec<Output>,
    ) {
        loop {
            self.running
                .retain(|_, j| j.in_flight.is_some() || !j.steps.is_empty());
            if self.outcome.is_some() {
                return;
            }
            while self.running.len() < self.concurrency {
                let Some((input, target)) = self.queue.pop_front() else {
                    break;
                };
                self.next_job += 1;
                let random = self.ids.pop_front().unwrap_or_default();
                let output = BlockId::from_parts(
                    self.started_wall_ms.max(0) as u64,
                    random ^ u128::from(self.next_job),
                );
                self.running.insert(
                    JobId(self.next_job),
                    Job {
                        input,
                        target,
                        output,
                        steps: VecDeque::from([Step::Run]),
                        in_flight: None,
                        in_run: false,
                    },
                );
            }
            let mut moved = false;
            let ids: Vec<JobId> = self.running.keys().copied().collect();
            for id in ids {
                moved |= self.advance_job(id, permit, hold, next_request, out);
            }
            let finished = self
                .running
                .values()
                .any(|j| j.in_flight.is_none() && j.steps.is_empty());
            if !moved && !finished {
                break;
            }
        }
        if self.queue.is_empty() && self.running.is_empty() && self.outcome.is_none() {
            self.outcome = Some(Outcome::Done { progress: false });
        }
    }

    /// Issues the job's next request; true when it issued one.
    fn advance_job(
        &mut self,
        id: JobId,
        permit: Permit,
        hold: bool,
        next_request: &mut u64,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(job) = self.running.get_mut(&id) else {
            return false;
        };
        if job.in_flight.is_some() {
            return false;
        }
        match job.steps.front() {
            None | Some(Step::Await) => false,
            Some(Step::Run) => {
                job.steps[0] = Step::Await;
                out.push(Output::Compact(CompactJob {
                    job: id,
                    group: group_key(&job.input).to_string(),
                    inputs: vec![job.input.clone()],
                    output: job.output,
                    kind: JobKind::Downsample {
                        resolution_ms: job.target,
                    },
                }));
                true
            }
            // Held: a clean-up runs first; the upload starts after it.
            Some(Step::Mutate(_)) if hold && !job.in_run => false,
            Some(Step::Mutate(_)) => {
                let Some(Step::Mutate(op)) = job.steps.pop_front() else {
                    return false;
                };
                *next_request += 1;
                let request = RequestId(*next_request);
                job.in_run = true;
                job.in_flight = Some((request, op.clone()));
                out.push(Output::Store(StoreRequest {
                    id: request,
                    op,
                    permit: Some(permit),
                }));
                true
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
        let context = format!("downsampling block {}", job.input.ulid);
        if let Some(failure) = mutation_result(&op, result, &context, out) {
            job.steps.clear();
            self.outcome.get_or_insert(Outcome::Failed(failure));
        }
    }

    /// A downsampling result for one of the jobs.
    pub fn on_done(
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
        let output = job.output;
        let result = expect_output(result, output);
        let source = job.input.ulid;
        out.push(Output::Event(Event::Downsampled {
            block: source,
            resolution: resolution(&job.input),
            result: result
                .as_ref()
                .map(|b| b.as_ref().map(|b| b.meta.ulid))
                .map_err(|e| e.message.clone()),
        }));
        match result {
            Err(e) => {
                let what = format!(
                    "downsampling block {source} to resolution {}: {}",
                    job.target, e.message
                );
                self.outcome.get_or_insert(if e.retryable {
                    Outcome::Failed(what)
                } else {
                    Outcome::Halt(what)
                });
            }
            Ok(None) => {}
            Ok(Some(block)) => {
                let meta = downsampled_meta(&block, &job.input, job.target, now);
                job.steps.push_back(Step::Mutate(StoreOp::UploadFiles {
                    job: id,
                    block: output,
                }));
                job.steps.push_back(Step::Mutate(StoreOp::PutMeta {
                    meta: Box::new(meta),
                }));
            }
        }
    }
}

/// The meta.json of a downsampled block: the engine's meta (range, compaction, stats) with the
/// source's Thanos labels (replica labels removed), the new resolution, `source: compactor`,
/// the uploaded files and the upload time.
fn downsampled_meta(block: &CompactedBlock, input: &BlockMeta, target: i64, now: Now) -> BlockMeta {
    let mut meta = block.meta.clone();
    let (files, segment_files) = uploaded_files(block);
    let source = input.thanos.clone().unwrap_or_default();
    meta.thanos = Some(ThanosMeta {
        labels: source.labels,
        downsample: crate::tsdb::meta::Downsample { resolution: target },
        source: SOURCE_COMPACTOR.to_string(),
        segment_files,
        files,
        index_stats: meta
            .thanos
            .as_ref()
            .map(|t| t.index_stats.clone())
            .unwrap_or_default(),
        rewrites: source.rewrites,
        extensions: source.extensions,
        upload_time: format_rfc3339_ms(now.wall.0),
        ..ThanosMeta::default()
    });
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::meta::{Downsample, ThanosMeta};

    const H: i64 = 3_600_000;

    fn block(n: u128, res: i64, hours: i64, sources: &[u128]) -> BlockMeta {
        let mut m = BlockMeta::level1(BlockId::from_parts(1, n), 0, hours * H);
        m.compaction.sources = sources.iter().map(|s| BlockId::from_parts(1, *s)).collect();
        m.thanos = Some(ThanosMeta {
            downsample: Downsample { resolution: res },
            ..ThanosMeta::default()
        });
        m
    }

    fn view(blocks: Vec<BlockMeta>) -> BucketView {
        BucketView {
            blocks: blocks.into_iter().map(|m| (m.ulid, m)).collect(),
            ..BucketView::default()
        }
    }

    fn picked(v: &BucketView) -> Vec<(BlockId, i64)> {
        downsample_candidates(v)
            .into_iter()
            .map(|(m, t)| (m.ulid, t))
            .collect()
    }

    fn id(n: u128) -> BlockId {
        BlockId::from_parts(1, n)
    }

    #[test]
    fn raw_blocks_of_40h_go_to_5m_and_5m_blocks_of_10d_go_to_1h() {
        let v = view(vec![
            block(1, 0, 48, &[1]),
            block(2, 0, 39, &[2]),
            block(3, RESOLUTION_5M_MS, 14 * 24, &[3]),
            block(4, RESOLUTION_5M_MS, 9 * 24, &[4]),
            block(5, RESOLUTION_1H_MS, 14 * 24, &[5]),
        ]);
        assert_eq!(
            picked(&v),
            vec![(id(1), RESOLUTION_5M_MS), (id(3), RESOLUTION_1H_MS)]
        );
    }

    #[test]
    fn blocks_whose_sources_are_covered_at_the_next_level_are_skipped() {
        // Raw 1 (sources a, b) has a 5m block covering both; raw 2 (c, d) only half.
        let v = view(vec![
            block(1, 0, 48, &[10, 11]),
            block(2, 0, 48, &[12, 13]),
            block(3, RESOLUTION_5M_MS, 48, &[10, 11, 12]),
        ]);
        assert_eq!(picked(&v), vec![(id(2), RESOLUTION_5M_MS)]);
    }

    #[test]
    fn marked_blocks_are_left_alone() {
        let mut v = view(vec![block(1, 0, 48, &[1]), block(2, 0, 48, &[2])]);
        v.no_downsample.insert(BlockId::from_parts(1, 1));
        v.deletion_marks.insert(
            BlockId::from_parts(1, 2),
            crate::bucket::markers::DeletionMark {
                id: BlockId::from_parts(1, 2),
                version: 1,
                details: String::new(),
                deletion_time: 0,
            },
        );
        assert_eq!(picked(&v), vec![]);
    }
}
