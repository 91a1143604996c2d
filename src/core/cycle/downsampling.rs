//! The downsampling pass's kind of job, as Thanos' `downsampleBucket` runs it after compaction
//! (twice per iteration, so that 5m blocks made by the first pass become 1h blocks in the
//! second), run by the pass engine ([`super::pass`]).
//!
//! Candidates are the visible blocks without a deletion or no-downsample mark, in ULID order:
//! a raw block spanning at least 40h whose sources are not all covered by a 5m block yet goes
//! to 5m; a 5m block spanning at least 10 days whose sources are not all covered by a 1h block
//! goes to 1h. Each job downloads the block, downsamples it (driver), uploads the new block's
//! files, then its meta.json (the commit). Sources are not marked: retention deletes them.
//! At most `--downsample.concurrency` jobs run at a time.

use std::collections::{BTreeMap, BTreeSet};

use super::super::plan::group_key;
use super::super::types::{
    CompactJob, CompactedBlock, Event, JobError, JobId, JobKind, Now, Output, WriteOp,
};
use super::super::view::{resolution, BucketView};
use super::compaction::uploaded_files;
use super::ids::CycleIds;
use super::pass::{Outcome, Pass, PassKind, Planned, Then};
use crate::timefmt::format_rfc3339_ms;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockMeta, ThanosMeta, SOURCE_COMPACTOR};
use crate::units::next_level;

/// A block to downsample, and the resolution to downsample it to.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Candidate {
    /// The block.
    pub(super) input: BlockMeta,
    /// The new block's resolution in ms.
    pub(super) resolution_ms: i64,
}

/// The blocks of `view` to downsample now, in ULID order.
pub(super) fn downsample_candidates(view: &BucketView) -> Vec<Candidate> {
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
            (missing && m.max_time - m.min_time >= span).then(|| Candidate {
                input: m.clone(),
                resolution_ms: target,
            })
        })
        .collect()
}

/// The downsampling pass's kind.
#[derive(Debug)]
pub(super) struct Downsampling;

/// A downsampling pass over the candidates of `view`, `concurrency` jobs at a time; reports
/// its start ([`Event::DownsamplePass`]).
pub(super) fn downsampling_pass(
    view: &BucketView,
    concurrency: usize,
    ids: &mut CycleIds,
    now: Now,
    out: &mut Vec<Output>,
) -> Pass<Downsampling> {
    let candidates = downsample_candidates(view);
    let todo = candidates.len() as u64;
    let pass = Pass::new(Downsampling, candidates, concurrency, ids, now);
    // The metric series of every resolution considered start at 0, as in Thanos.
    let resolutions: BTreeSet<i64> = view
        .blocks
        .values()
        .filter(|m| !view.no_downsample.contains(&m.ulid))
        .map(resolution)
        .collect();
    out.push(Output::Event(Event::DownsamplePass {
        resolutions: resolutions.into_iter().collect(),
        todo,
    }));
    pass
}

impl PassKind for Downsampling {
    type Item = Candidate;
    type Job = Candidate;

    fn item_blocks(candidate: &Candidate) -> Vec<BlockId> {
        vec![candidate.input.ulid]
    }

    fn job_blocks(job: &Candidate) -> Vec<BlockId> {
        Self::item_blocks(job)
    }

    /// Every candidate is a job: the driver's run, nothing before it.
    fn plan(&mut self, candidate: Candidate) -> Result<Planned<Candidate>, String> {
        Ok(Planned {
            job: candidate,
            mutations: vec![],
            run: true,
        })
    }

    fn planned(&self, _: &Candidate, _: BlockId, _: &mut Vec<Output>) {}

    fn driver_job(&self, job: &Candidate, id: JobId, output: BlockId) -> CompactJob {
        CompactJob {
            job: id,
            group: group_key(&job.input).to_string(),
            inputs: vec![job.input.clone()],
            output,
            kind: JobKind::Downsample {
                resolution_ms: job.resolution_ms,
            },
        }
    }

    /// A new block is uploaded and committed (meta.json); an error halts, or fails the pass
    /// when retryable.
    fn finished(
        &mut self,
        job: &Candidate,
        (id, output): (JobId, BlockId),
        result: Result<Option<CompactedBlock>, JobError>,
        now: Now,
        out: &mut Vec<Output>,
    ) -> Then {
        let source = job.input.ulid;
        out.push(Output::Event(Event::Downsampled {
            block: source,
            resolution: resolution(&job.input),
            result: result
                .as_ref()
                .map(|b| b.as_ref().map(|b| b.meta.ulid))
                .map_err(|e| e.message.clone()),
        }));
        let block = match result {
            Ok(block) => block,
            Err(e) => {
                let what = format!(
                    "downsampling block {source} to resolution {}: {}",
                    job.resolution_ms, e.message
                );
                return Then::End(if e.retryable() {
                    Outcome::Failed(what)
                } else {
                    Outcome::Halt(what)
                });
            }
        };
        let ops = block.map_or_else(Vec::new, |block| {
            let meta = downsampled_meta(&block, job, now);
            vec![
                WriteOp::UploadFiles {
                    job: id,
                    block: output,
                },
                WriteOp::PutMeta {
                    meta: Box::new(meta),
                },
            ]
        });
        Then::Mutate {
            ops,
            progress: false,
        }
    }

    fn context(job: &Candidate) -> String {
        format!("downsampling block {}", job.input.ulid)
    }
}

/// The meta.json of a downsampled block: the engine's meta (range, compaction, stats) with the
/// source's Thanos labels (replica labels removed), the new resolution, `source: compactor`,
/// the uploaded files and the upload time.
fn downsampled_meta(block: &CompactedBlock, job: &Candidate, now: Now) -> BlockMeta {
    let mut meta = block.meta.clone();
    let (files, segment_files) = uploaded_files(block);
    let source = job.input.thanos.clone().unwrap_or_default();
    meta.thanos = Some(ThanosMeta {
        labels: source.labels,
        downsample: crate::tsdb::meta::Downsample {
            resolution: job.resolution_ms,
        },
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
mod tests;
