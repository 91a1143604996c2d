//! The model bucket: block directories with a meta, marks and a write log, mutated only by the
//! core's store requests, and the invariant checks run on it.

use std::collections::{BTreeMap, BTreeSet};

use compactd::core::fence::{FenceRecord, FenceVersion};
use compactd::core::plan::{group_blocks, overlapping_blocks};
use compactd::core::types::{MetaState, Millis, StoreOp, StoreResult, SyncResult, SyncedBlock};
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::BlockMeta;

/// The model bucket.
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    /// Block directories by id.
    pub blocks: BTreeMap<BlockId, SyncedBlock>,
    /// Violations seen while mutations were applied.
    pub violations: Vec<String>,
    /// `compactd/fence.json` and its version.
    pub fence: Option<(FenceRecord, u64)>,
}

impl Bucket {
    /// Adds a visible block.
    pub fn add(&mut self, meta: BlockMeta, at: Millis) {
        let b = SyncedBlock {
            meta: MetaState::Ok(Box::new(meta.clone())),
            deletion_mark: None,
            no_compact_mark: None,
            marker_problems: vec![],
            newest_modified: at,
        };
        self.blocks.insert(meta.ulid, b);
    }

    /// The listing a sync returns.
    pub fn sync(&self) -> SyncResult {
        SyncResult {
            blocks: self.blocks.clone(),
        }
    }

    /// Visible blocks (meta present, not marked for deletion).
    pub fn visible(&self) -> Vec<&BlockMeta> {
        self.blocks
            .values()
            .filter(|b| b.deletion_mark.is_none())
            .filter_map(|b| {
                if let MetaState::Ok(m) = &b.meta {
                    Some(&**m)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Applies a mutation; `uploaded` says whether the files were uploaded, `partial_delete`
    /// stops a delete after its first object (a crash mid-delete).
    pub fn apply(&mut self, op: &StoreOp, now: Millis, partial_delete: bool) {
        match op {
            StoreOp::Sync => {}
            StoreOp::UploadFiles { block, .. } => {
                self.blocks.entry(*block).or_insert(SyncedBlock {
                    meta: MetaState::Missing,
                    deletion_mark: None,
                    no_compact_mark: None,
                    marker_problems: vec![],
                    newest_modified: now,
                });
            }
            StoreOp::PutMeta { meta } => {
                let b = self.blocks.entry(meta.ulid).or_insert(SyncedBlock {
                    meta: MetaState::Missing,
                    deletion_mark: None,
                    no_compact_mark: None,
                    marker_problems: vec![],
                    newest_modified: now,
                });
                if !matches!(b.meta, MetaState::Missing) {
                    self.violations
                        .push(format!("meta.json of {} written twice", meta.ulid));
                }
                b.meta = MetaState::Ok(meta.clone());
            }
            StoreOp::MarkDeletion(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.deletion_mark.get_or_insert(m.clone());
                }
            }
            StoreOp::MarkNoCompact(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.no_compact_mark.get_or_insert(m.clone());
                }
            }
            StoreOp::DeleteBlock(id) => self.delete(*id, partial_delete),
            StoreOp::ReadFence | StoreOp::CasFence { .. } => {}
        }
    }

    /// Reads the fence.
    pub fn read_fence(&self) -> StoreResult {
        StoreResult::Fence(self.fence.clone().map(|(r, v)| (r, version(v))))
    }

    /// Compares-and-swaps the fence (create if `expected` is `None`).
    pub fn cas_fence(
        &mut self,
        record: &FenceRecord,
        expected: Option<&FenceVersion>,
    ) -> StoreResult {
        let current = self.fence.as_ref().map(|(_, v)| version(*v));
        if current.as_ref() != expected {
            return StoreResult::FenceConflict;
        }
        let next = self.fence.as_ref().map_or(1, |(_, v)| v + 1);
        self.fence = Some((record.clone(), next));
        StoreResult::FenceWritten(version(next))
    }

    fn delete(&mut self, id: BlockId, partial: bool) {
        let Some(b) = self.blocks.get(&id) else {
            return;
        };
        if let MetaState::Ok(m) = &b.meta {
            let covered = self.visible().iter().any(|v| {
                v.ulid != id
                    && m.compaction
                        .sources
                        .iter()
                        .all(|s| v.compaction.sources.contains(s))
            });
            if !covered
                && b.deletion_mark
                    .as_ref()
                    .is_none_or(|d| d.details.contains("source"))
            {
                self.violations.push(format!(
                    "block {id} deleted while no visible block covers its sources"
                ));
            }
        }
        if partial {
            if let Some(b) = self.blocks.get_mut(&id) {
                b.meta = MetaState::Missing;
            }
        } else {
            self.blocks.remove(&id);
        }
    }

    /// The end-state checks: each source is in exactly one visible block, streams do not
    /// overlap, no partial block and no marked block is left.
    pub fn check_final(&self, sources: &BTreeSet<BlockId>) -> Vec<String> {
        let mut out = self.violations.clone();
        let mut seen: BTreeMap<BlockId, usize> = BTreeMap::new();
        for m in self.visible() {
            for s in &m.compaction.sources {
                *seen.entry(*s).or_default() += 1;
            }
        }
        for s in sources {
            match seen.get(s) {
                Some(1) => {}
                Some(n) => out.push(format!("source {s} is in {n} visible blocks")),
                None => out.push(format!("source {s} was lost")),
            }
        }
        for (key, blocks) in group_blocks(self.visible()) {
            if !overlapping_blocks(&blocks).is_empty() {
                out.push(format!("group {key} has overlapping blocks"));
            }
        }
        for (id, b) in &self.blocks {
            if matches!(b.meta, MetaState::Missing) {
                out.push(format!("partial block {id} left behind"));
            }
        }
        out
    }
}

/// The ETag of fence version `v`.
fn version(v: u64) -> FenceVersion {
    FenceVersion {
        e_tag: Some(format!("\"{v}\"")),
        version: None,
    }
}
