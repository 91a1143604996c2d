//! `tools bucket verify --repair` for `duplicated_compaction`, as Thanos' `BackupAndDelete`:
//! each duplicate is first copied, object by object, to the backup bucket (refused when the
//! backup already holds a directory of that block: blocks are immutable), then removed from
//! the bucket by a commit — deleted at once with `--delete-delay=0s` (Thanos' default), else
//! marked for deletion, for the compactor to delete after its own delete delay. The commits go
//! by [`CommitRoute`]: under the tool's own hold of the fence (checked before anything is
//! copied, so a live compactd makes the run write nothing), or through the leader.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::bucket::markers::{DeletionMark, MARKER_VERSION};
use crate::core::request::WriteOp;
use crate::core::stream::StreamId;
use crate::core::types::{MetaState, SyncResult};
use crate::driver::store::StoreExecutor;
use crate::tools::commits::{apply, CommitReport, CommitRoute};
use crate::tools::fenced::ToolFence;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::META_FILENAME;

/// How duplicates are removed.
#[derive(Clone, Debug)]
pub struct RepairSettings {
    /// `--delete-delay`: 0 deletes the duplicates at once, more marks them for deletion.
    pub delete_delay_ms: i64,
    /// Labels removed to find a block's stream (per-stream ownership through the leader).
    pub replica_labels: Vec<String>,
    /// Now, Unix ms (the deletion marks' time).
    pub now_ms: i64,
}

/// One block to remove and the block it duplicates (kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The duplicate.
    pub block: BlockId,
    /// The block kept in its place.
    pub kept: BlockId,
}

/// The commit that removes `r`: a deletion when `delete_delay_ms` is 0, else a deletion mark.
pub fn removal_op(r: Removal, delete_delay_ms: i64, now_ms: i64) -> WriteOp {
    if delete_delay_ms == 0 {
        return WriteOp::DeleteBlock(r.block);
    }
    WriteOp::MarkDeletion(DeletionMark {
        id: r.block,
        version: MARKER_VERSION,
        details: format!("tools bucket verify: duplicated compaction of {}", r.kept),
        deletion_time: now_ms / 1000,
    })
}

/// Backs up and removes every block of `removals`; returns what the commits did.
pub async fn remove(
    store: Arc<dyn ObjectStore>,
    backup: Arc<dyn ObjectStore>,
    route: &CommitRoute,
    sync: &SyncResult,
    removals: &[Removal],
    settings: &RepairSettings,
) -> anyhow::Result<CommitReport> {
    if let CommitRoute::Fenced(options) = route {
        ToolFence::check(&options.executor(Arc::clone(&store)), options).await?;
    }
    for r in removals {
        backup_block(&store, &backup, r.block).await?;
    }
    let ops = removals
        .iter()
        .map(|r| {
            let stream = match sync.blocks.get(&r.block).map(|b| &b.meta) {
                Some(MetaState::Ok(m)) => StreamId::of_block(m, &settings.replica_labels),
                _ => None,
            };
            let op = removal_op(*r, settings.delete_delay_ms, settings.now_ms);
            (stream, op)
        })
        .collect();
    apply(store, route, ops).await
}

/// Copies every object of block `id` from `store` to `backup` (meta.json last); refuses when
/// `backup` already holds objects of the block. Returns the number of objects copied.
pub async fn backup_block(
    store: &Arc<dyn ObjectStore>,
    backup: &Arc<dyn ObjectStore>,
    id: BlockId,
) -> anyhow::Result<usize> {
    let prefix = id.to_string();
    let target = StoreExecutor::new(Arc::clone(backup));
    let present = target
        .list_objects(Some(&prefix))
        .await
        .map_err(|e| anyhow::anyhow!("backup bucket: listing block {id}: {e}"))?;
    if !present.is_empty() {
        anyhow::bail!(
            "block {id}: the backup bucket already holds {} of its objects; remove them there \
             if you are sure it is safe (blocks are immutable)",
            present.len()
        );
    }
    let source = StoreExecutor::new(Arc::clone(store));
    let mut objects: Vec<String> = source
        .list_objects(Some(&prefix))
        .await
        .map_err(|e| anyhow::anyhow!("listing block {id}: {e}"))?
        .into_iter()
        .map(|o| o.location.to_string())
        .collect();
    objects.sort_by_key(|p| (p.ends_with(META_FILENAME), p.clone()));
    for path in &objects {
        target
            .copy_object_from(store.as_ref(), path)
            .await
            .map_err(|e| anyhow::anyhow!("backing up block {id}: {path}: {e}"))?;
    }
    Ok(objects.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_delete_delay_deletes_else_marks_naming_the_kept_block() {
        let r = Removal {
            block: BlockId::from_parts(1, 2),
            kept: BlockId::from_parts(1, 1),
        };
        assert!(matches!(removal_op(r, 0, 5_000), WriteOp::DeleteBlock(id) if id == r.block));
        match removal_op(r, 1, 5_000) {
            WriteOp::MarkDeletion(m) => {
                assert_eq!(m.id, r.block);
                assert_eq!(m.deletion_time, 5);
                assert!(m.details.contains(&r.kept.to_string()), "{}", m.details);
            }
            other => panic!("{}", other.name()),
        }
    }
}
