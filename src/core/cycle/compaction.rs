//! The compaction pass's kind of job: one plan per group (Thanos runs one per group per
//! pass), in Thanos' group order, run by the pass engine ([`super::pass`]).
//!
//! A group's job: the no-compact marks the planner asked for, the compaction itself (run by
//! the driver), then the upload of the new block's files, its meta.json (the commit that
//! makes it visible), and a deletion mark on each source. Overlapping blocks, or two inputs
//! that share a source, halt the pass unless vertical compaction is on. A compaction that
//! fails on an input with out-of-order chunks no-compact-marks that block when
//! `--compact.skip-block-with-out-of-order-chunks` asks for it.

use std::collections::{BTreeMap, BTreeSet};

use super::super::plan::{group_blocks, overlapping_blocks, plan_with_marks, GroupKey, PlanInput};
use super::super::types::{
    CompactJob, CompactedBlock, Event, JobError, JobErrorKind, JobId, JobKind, Now, Output, WriteOp,
};
use super::super::view::BucketView;
use super::ids::CycleIds;
use super::marks::deletion_mark;
use super::pass::{Outcome, Pass, PassKind, Planned, Then};
use super::CycleConfig;
use crate::bucket::markers::{
    NoCompactMark, DETAILS_COMPACTED_SOURCE, DETAILS_OUT_OF_ORDER_CHUNKS, MARKER_VERSION,
    REASON_OUT_OF_ORDER_CHUNKS,
};
use crate::timefmt::format_rfc3339_ms;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockFile, BlockMeta, ThanosMeta, SOURCE_COMPACTOR};

/// A group's blocks: queued, all of its visible unmarked blocks; in a job, the plan's inputs.
#[derive(Debug)]
pub(super) struct Group {
    key: GroupKey,
    blocks: Vec<BlockMeta>,
}

/// The compaction pass's kind.
#[derive(Debug)]
pub(super) struct Compaction {
    cfg: CycleConfig,
    /// The blocks not to compact: the view's, and those marked during the pass.
    no_compact: BTreeSet<BlockId>,
    /// The time of the no-compact marks the planner asks for: the pass's start, Unix s.
    marks_time_s: i64,
}

/// The compaction pass over the visible blocks of `view` without a deletion mark.
pub(super) fn compaction_pass(
    view: &BucketView,
    cfg: &CycleConfig,
    ids: &mut CycleIds,
    now: Now,
) -> Pass<Compaction> {
    let candidates = view
        .blocks
        .values()
        .filter(|m| !view.deletion_marks.contains_key(&m.ulid));
    let mut groups: Vec<Group> = group_blocks(candidates)
        .into_iter()
        .map(|(key, blocks)| Group {
            key,
            blocks: blocks.into_iter().cloned().collect(),
        })
        .collect();
    groups.sort_by_cached_key(|g| g.key.to_string());
    let kind = Compaction {
        cfg: cfg.clone(),
        no_compact: view.no_compact.clone(),
        marks_time_s: now.wall.0.div_euclid(1000),
    };
    Pass::new(kind, groups, cfg.concurrency, ids, now)
}

impl PassKind for Compaction {
    type Item = Group;
    type Job = Group;

    fn item_blocks(group: &Group) -> Vec<BlockId> {
        group.blocks.iter().map(|m| m.ulid).collect()
    }

    fn job_blocks(job: &Group) -> Vec<BlockId> {
        Self::item_blocks(job)
    }

    /// Plans the group: its no-compact marks first, then the compaction of the plan's
    /// inputs; halts on overlaps Thanos halts on.
    fn plan(&mut self, group: Group) -> Result<Planned<Group>, String> {
        let refs: Vec<&BlockMeta> = group.blocks.iter().collect();
        if !self.cfg.vertical {
            let overlaps = overlapping_blocks(&refs);
            if !overlaps.is_empty() {
                let list: Vec<String> = overlaps.iter().map(|g| format!("[{}]", join(g))).collect();
                return Err(format!(
                    "pre compaction overlap check: overlaps found while gathering blocks in group {}: {}; enable vertical compaction or remove the overlapping blocks",
                    group.key,
                    list.join(", ")
                ));
            }
        }
        let planned = plan_with_marks(&PlanInput {
            blocks: &refs,
            no_compact: &self.no_compact,
            ranges: &self.cfg.ranges,
            vertical: self.cfg.vertical,
            index_size_limit_bytes: self.cfg.index_size_limit_bytes,
        });
        let mutations = planned
            .marks
            .iter()
            .map(|m| {
                self.no_compact.insert(m.block);
                WriteOp::MarkNoCompact(NoCompactMark {
                    id: m.block,
                    version: MARKER_VERSION,
                    details: m.details.clone(),
                    no_compact_time: self.marks_time_s,
                    reason: m.reason.to_string(),
                })
            })
            .collect();
        let inputs: Vec<BlockMeta> = planned
            .compact
            .iter()
            .filter_map(|id| group.blocks.iter().find(|m| m.ulid == *id).cloned())
            .collect();
        if let Some(reason) = self.shared_sources(&group.key, &inputs) {
            return Err(reason);
        }
        Ok(Planned {
            run: !inputs.is_empty(),
            job: Group {
                key: group.key,
                blocks: inputs,
            },
            mutations,
        })
    }

    fn planned(&self, job: &Group, output: BlockId, out: &mut Vec<Output>) {
        out.push(Output::Event(Event::Planned {
            group: job.key.to_string(),
            resolution: job.key.resolution,
            inputs: job.blocks.iter().map(|m| m.ulid).collect(),
            output,
        }));
    }

    fn driver_job(&self, job: &Group, id: JobId, output: BlockId) -> CompactJob {
        CompactJob {
            job: id,
            group: job.key.to_string(),
            inputs: job.blocks.clone(),
            output,
            kind: JobKind::Compact,
        }
    }

    /// A compacted block is uploaded, committed (meta.json), and its sources marked for
    /// deletion; an empty result marks the sources only.
    fn finished(
        &mut self,
        job: &Group,
        (id, output): (JobId, BlockId),
        result: Result<Option<CompactedBlock>, JobError>,
        now: Now,
        out: &mut Vec<Output>,
    ) -> Then {
        let block = match result {
            Ok(block) => block,
            Err(e) => return self.failed(job, e, now, out),
        };
        let vertical = !overlapping_blocks(&job.blocks.iter().collect::<Vec<_>>()).is_empty();
        out.push(Output::Event(Event::Compacted {
            group: job.key.to_string(),
            resolution: job.key.resolution,
            output: block.as_ref().map(|b| b.meta.ulid),
            samples: block.as_ref().map_or(0, |b| b.meta.stats.num_samples),
            vertical,
        }));
        let mut ops = Vec::new();
        if let Some(block) = block {
            let meta = final_meta(&block, &job.key, now);
            ops.push(WriteOp::UploadFiles {
                job: id,
                block: output,
            });
            ops.push(WriteOp::PutMeta {
                meta: Box::new(meta),
            });
        }
        ops.extend(job.blocks.iter().map(|input| {
            WriteOp::MarkDeletion(deletion_mark(input.ulid, now, DETAILS_COMPACTED_SOURCE))
        }));
        Then::Mutate {
            ops,
            progress: true,
        }
    }

    fn context(job: &Group) -> String {
        format!("group {}", job.key)
    }
}

impl Compaction {
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

    /// A compaction failed. An input block with out-of-order chunks is no-compact-marked
    /// when `--compact.skip-block-with-out-of-order-chunks` asks for it, as the job's last
    /// step (issued under the pass's permit like every mutation), and the pass goes on and
    /// runs again, as Thanos reruns its groups after the mark. Otherwise the pass fails
    /// (retryable) or halts.
    fn failed(&mut self, job: &Group, e: JobError, now: Now, out: &mut Vec<Output>) -> Then {
        let group = job.key.to_string();
        out.push(Output::Event(Event::CompactionFailed {
            group: group.clone(),
            resolution: job.key.resolution,
            error: e.message.clone(),
        }));
        let outcome = match e.kind {
            JobErrorKind::OutOfOrderChunks { block } => {
                // A block outside the plan cannot be the culprit: never mark what was not read.
                let input = job.blocks.iter().any(|m| m.ulid == block);
                if input && self.cfg.skip_out_of_order_chunks {
                    self.no_compact.insert(block);
                    return Then::Mutate {
                        ops: vec![WriteOp::MarkNoCompact(out_of_order_chunks_mark(block, now))],
                        progress: true,
                    };
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
            _ if e.retryable() => Outcome::Failed(format!("group {group}: {}", e.message)),
            _ => Outcome::Halt(format!("compaction of group {group} failed: {}", e.message)),
        };
        Then::End(outcome)
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
fn final_meta(block: &CompactedBlock, key: &GroupKey, now: Now) -> BlockMeta {
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

fn join(ids: &[BlockId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
