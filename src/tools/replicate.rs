//! `compactd tools bucket replicate`: copies blocks from a source bucket to a target bucket, as
//! Thanos' replication scheme (`pkg/replicate`), under the target's fence.
//!
//! One run: sync the source (partial and unreadable blocks are skipped with a note); select
//! blocks ([`Selection`]: time range, deletion marks, external labels present, then either the
//! `--id` list or matchers, resolution and compaction level); order them by minTime (the oldest
//! first, so a compactor on the target never sees a gap it could compact across); compare each
//! with the target ([`plan::plan_block`]): copy what is missing, skip what is complete, report
//! a block whose target meta.json differs or whose files are missing there. Copies take the
//! target's fence first ([`ToolFence::acquire`]: a live compactd on the target makes the run
//! refuse and write nothing); each block's `chunks/*` then `index` are streamed object by
//! object, and its meta.json is committed last, byte for byte ([`ToolCommit::CopyMeta`]).

pub mod matchers;
pub mod plan;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::bucket::layout::meta_path;
use crate::core::types::{MetaState, SyncResult};
use crate::driver::store::StoreExecutor;
use crate::tools::fenced::{ToolCommit, ToolFence, ToolFenceOptions};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockMeta, META_FILENAME};

use matchers::LabelMatcher;
use plan::{objects_by_block, plan_block, BlockPlan};

/// Which source blocks a run replicates (Thanos' `BlockFilter` and its fetcher's filters).
#[derive(Clone)]
pub struct Selection {
    /// `--resolution`: the allowed downsampling resolutions, ms.
    pub resolutions: Vec<i64>,
    /// `--compaction`, else `--compaction-min`..=`--compaction-max`: the allowed levels.
    pub levels: Vec<u32>,
    /// `--matcher`: every one must match the block's external labels.
    pub matchers: Vec<LabelMatcher>,
    /// `--id`: when not empty, exactly these blocks (matchers, resolution and level ignored).
    pub ids: Vec<BlockId>,
    /// `--min-time`: blocks ending before this are left out, Unix ms.
    pub min_time_ms: i64,
    /// `--max-time`: blocks starting after this are left out, Unix ms.
    pub max_time_ms: i64,
    /// `--ignore-marked-for-deletion`: blocks with a deletion mark are left out.
    pub ignore_marked_for_deletion: bool,
}

/// Why a block was not selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotSelected {
    /// Outside `--min-time`..`--max-time`.
    OutsideTime,
    /// Marked for deletion, with `--ignore-marked-for-deletion`.
    MarkedForDeletion,
    /// No external labels (Thanos replicates only Thanos blocks).
    NoExternalLabels,
    /// Not one of the `--id` blocks.
    NotListed,
    /// Its labels fail a `--matcher`.
    LabelsDontMatch,
    /// Its resolution (ms) is not a `--resolution`.
    Resolution(i64),
    /// Its compaction level is not selected.
    Level(u32),
}

/// The blocks a run considers.
#[derive(Debug, Default)]
pub struct Selected {
    /// Selected, oldest minTime first (then by id).
    pub blocks: Vec<BlockMeta>,
    /// Readable blocks not selected, with the reason.
    pub not_selected: Vec<(BlockId, NotSelected)>,
    /// Source blocks skipped as partial or unreadable, one line each.
    pub notes: Vec<String>,
}

impl Selection {
    /// Whether the block `meta` (with a deletion mark or not) is selected.
    pub fn check(&self, meta: &BlockMeta, marked_for_deletion: bool) -> Result<(), NotSelected> {
        if meta.max_time < self.min_time_ms || meta.min_time > self.max_time_ms {
            return Err(NotSelected::OutsideTime);
        }
        if marked_for_deletion && self.ignore_marked_for_deletion {
            return Err(NotSelected::MarkedForDeletion);
        }
        let labels = match &meta.thanos {
            Some(t) if !t.labels.is_empty() => &t.labels,
            _ => return Err(NotSelected::NoExternalLabels),
        };
        if !self.ids.is_empty() {
            return match self.ids.contains(&meta.ulid) {
                true => Ok(()),
                false => Err(NotSelected::NotListed),
            };
        }
        if !matchers::matches_all(&self.matchers, labels) {
            return Err(NotSelected::LabelsDontMatch);
        }
        let resolution = meta.thanos.as_ref().map_or(0, |t| t.downsample.resolution);
        if !self.resolutions.contains(&resolution) {
            return Err(NotSelected::Resolution(resolution));
        }
        if !self.levels.contains(&meta.compaction.level) {
            return Err(NotSelected::Level(meta.compaction.level));
        }
        Ok(())
    }

    /// The blocks of a source sync this selection replicates, oldest first.
    pub fn select(&self, sync: &SyncResult) -> Selected {
        let mut out = Selected::default();
        for (id, block) in &sync.blocks {
            let meta = match &block.meta {
                MetaState::Ok(m) => m,
                MetaState::Missing => {
                    out.notes.push(format!(
                        "block {id}: no meta.json in the source (an upload in progress or a \
                         partial block); skipped"
                    ));
                    continue;
                }
                MetaState::Corrupt(why) => {
                    out.notes.push(format!(
                        "block {id}: unreadable meta.json in the source: {why}; skipped"
                    ));
                    continue;
                }
            };
            match self.check(meta, block.deletion_mark.is_some()) {
                Ok(()) => out.blocks.push((**meta).clone()),
                Err(why) => out.not_selected.push((*id, why)),
            }
        }
        out.blocks.sort_by_key(|m| (m.min_time, m.ulid));
        out
    }
}

/// One block copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replicated {
    /// The block.
    pub block: BlockId,
    /// Objects copied before meta.json (`thanos_replicate_objects_replicated_total` counts
    /// these).
    pub objects: u64,
    /// Bytes copied (meta.json included).
    pub bytes: u64,
}

/// What one replication run did; the counts are those of Thanos' `thanos_replicate_*`.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Source blocks not selected.
    pub not_selected: usize,
    /// Source blocks skipped (partial, unreadable), one line each.
    pub notes: Vec<String>,
    /// Blocks copied (`thanos_replicate_blocks_replicated_total`).
    pub replicated: Vec<Replicated>,
    /// Blocks complete in the target already
    /// (`thanos_replicate_blocks_already_replicated_total`).
    pub already_replicated: u64,
    /// Objects copied (`thanos_replicate_objects_replicated_total`).
    pub objects_replicated: u64,
    /// Blocks that could not be replicated, one line each; the run fails if there is one.
    pub problems: Vec<String>,
}

impl RunReport {
    /// Whether every selected block is in the target now.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line per copied block, note and problem, then the summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        for r in &self.replicated {
            let _ = writeln!(
                out,
                "replicated {} ({} objects + meta.json, {} bytes)",
                r.block, r.objects, r.bytes
            );
        }
        for p in &self.problems {
            let _ = writeln!(out, "problem: {p}");
        }
        let _ = writeln!(
            out,
            "replicate: {} blocks replicated, {} already replicated, {} objects replicated, \
             {} blocks not selected, {} problems",
            self.replicated.len(),
            self.already_replicated,
            self.objects_replicated,
            self.not_selected,
            self.problems.len()
        );
        out
    }
}

/// A source, a target, what to copy and how to hold the target's fence.
pub struct Replicator<'a> {
    /// The source bucket.
    pub source: &'a StoreExecutor,
    /// The target bucket (its fence guards the copies).
    pub target: &'a StoreExecutor,
    /// Which blocks.
    pub selection: &'a Selection,
    /// The fence options for the target.
    pub fence: ToolFenceOptions,
}

/// A block to copy: its source meta.json and the data objects the target lacks, in order.
struct Work {
    block: BlockId,
    meta_json: Vec<u8>,
    objects: Vec<String>,
}

impl Replicator<'_> {
    /// One replication run. Fails when a bucket cannot be read or the target's fence is held
    /// by a live compactd (then nothing is written); a block that cannot be copied is a
    /// problem of the report (copying stops there, as in Thanos).
    pub async fn run_once(&self) -> anyhow::Result<RunReport> {
        let sync = (self.source.sync().await).map_err(|e| anyhow::anyhow!("source: {e}"))?;
        let selected = self.selection.select(&sync);
        let mut report = RunReport {
            not_selected: selected.not_selected.len(),
            notes: selected.notes,
            ..RunReport::default()
        };
        if selected.blocks.is_empty() {
            return Ok(report);
        }
        let work = self.plan(&selected.blocks, &mut report).await?;
        if work.is_empty() {
            return Ok(report);
        }
        let mut fence = ToolFence::acquire(self.target, self.fence.clone())
            .await
            .map_err(|e| e.context("target"))?;
        for w in work {
            let block = w.block;
            match self.copy_block(&mut fence, w).await {
                Ok(done) => {
                    report.objects_replicated += done.objects;
                    report.replicated.push(done);
                }
                Err((objects, e)) => {
                    report.objects_replicated += objects;
                    report.problems.push(format!("block {block}: {e:#}"));
                    break;
                }
            }
        }
        fence.release(self.target).await?;
        Ok(report)
    }

    /// Compares each selected block with the target: what to copy, what is there already.
    async fn plan(
        &self,
        blocks: &[BlockMeta],
        report: &mut RunReport,
    ) -> anyhow::Result<Vec<Work>> {
        let listing = |e| anyhow::anyhow!("{e}");
        let source = objects_by_block(&self.source.list_objects(None).await.map_err(listing)?);
        let target = objects_by_block(&self.target.list_objects(None).await.map_err(listing)?);
        let empty = BTreeMap::new();
        let mut work = Vec::new();
        for meta in blocks {
            let id = meta.ulid;
            let path = meta_path(id);
            let Some(source_meta) = self.source.read_optional(&path).await? else {
                report
                    .notes
                    .push(format!("block {id}: meta.json left the source; skipped"));
                continue;
            };
            let target_objects = target.get(&id).unwrap_or(&empty);
            let target_meta = match target_objects.contains_key(META_FILENAME) {
                true => self.target.read_optional(&path).await?,
                false => None,
            };
            let source_objects = source.get(&id).unwrap_or(&empty);
            match plan_block(
                id,
                &source_meta,
                source_objects,
                target_meta.as_deref(),
                target_objects,
            ) {
                BlockPlan::Copy(objects) => work.push(Work {
                    block: id,
                    meta_json: source_meta.to_vec(),
                    objects,
                }),
                BlockPlan::AlreadyReplicated => report.already_replicated += 1,
                BlockPlan::Problem(p) => report.problems.push(p),
            }
        }
        Ok(work)
    }

    /// Copies one block's data objects, then commits its meta.json under the fence. On
    /// failure, also the number of objects copied before it.
    async fn copy_block(
        &self,
        fence: &mut ToolFence,
        w: Work,
    ) -> Result<Replicated, (u64, anyhow::Error)> {
        let mut done = Replicated {
            block: w.block,
            objects: 0,
            bytes: 0,
        };
        let from = self.source.store().as_ref();
        for rel in &w.objects {
            let path = format!("{}/{rel}", w.block);
            match self.target.copy_object_from(from, &path).await {
                Ok(bytes) => {
                    done.objects += 1;
                    done.bytes += bytes;
                }
                Err(e) => return Err((done.objects, e.into())),
            }
        }
        let meta_bytes = w.meta_json.len() as u64;
        let commit = ToolCommit::CopyMeta {
            block: w.block,
            json: w.meta_json,
        };
        if let Err(e) = fence.commit(self.target, commit).await {
            return Err((done.objects, e));
        }
        done.bytes += meta_bytes;
        Ok(done)
    }
}
