//! What `tools bucket mark`, `retention` and `cleanup` change, decided from one look at the
//! bucket before anything is written: a list of commits ([`WriteOp`]s) that
//! [`super::commits`] makes under a fence (the tool's own, or the leader's). Every input is
//! checked first, so a bad one (an unknown block, a marker already there or missing) writes
//! nothing.
//!
//! `retention` and `cleanup` apply the compactor's own rules (`core::cycle::retention_marks`,
//! the view's deletion marks and partial uploads), so a tool and a running compactd agree on
//! what is due.

use std::collections::BTreeMap;

use crate::bucket::markers::{
    DeletionMark, NoCompactMark, NoDownsampleMark, DELETION_MARK_FILENAME, MARKER_VERSION,
    NO_COMPACT_MARK_FILENAME, NO_DOWNSAMPLE_MARK_FILENAME, REASON_MANUAL,
};
use crate::core::cycle::retention_marks;
use crate::core::request::WriteOp;
use crate::core::types::{MetaState, Millis, Now, SyncResult, SyncedBlock};
use crate::core::view::{build_view, mark_age_ms, BucketView, Scope, ViewConfig};
use crate::relabel::RelabelConfig;
use crate::tsdb::block_id::BlockId;

/// Thanos' reason of a no-downsample mark placed by an operator.
pub const REASON_MANUAL_NO_DOWNSAMPLE: &str = "manual";

/// The three markers `mark` places or removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerKind {
    /// `deletion-mark.json`.
    Deletion,
    /// `no-compact-mark.json`.
    NoCompact,
    /// `no-downsample-mark.json`.
    NoDownsample,
}

impl MarkerKind {
    /// The kind named by its file name (Thanos' `--marker` values).
    pub fn parse(name: &str) -> Result<MarkerKind, String> {
        match name {
            DELETION_MARK_FILENAME => Ok(MarkerKind::Deletion),
            NO_COMPACT_MARK_FILENAME => Ok(MarkerKind::NoCompact),
            NO_DOWNSAMPLE_MARK_FILENAME => Ok(MarkerKind::NoDownsample),
            other => Err(format!(
                "unknown marker {other:?}: one of {DELETION_MARK_FILENAME}, \
                 {NO_COMPACT_MARK_FILENAME}, {NO_DOWNSAMPLE_MARK_FILENAME}"
            )),
        }
    }

    /// The marker's file name.
    pub fn filename(self) -> &'static str {
        match self {
            MarkerKind::Deletion => DELETION_MARK_FILENAME,
            MarkerKind::NoCompact => NO_COMPACT_MARK_FILENAME,
            MarkerKind::NoDownsample => NO_DOWNSAMPLE_MARK_FILENAME,
        }
    }

    fn present(self, b: &SyncedBlock) -> bool {
        match self {
            MarkerKind::Deletion => b.deletion_mark.is_some(),
            MarkerKind::NoCompact => b.no_compact_mark.is_some(),
            MarkerKind::NoDownsample => b.no_downsample_mark.is_some(),
        }
    }
}

/// `mark`: what to place (or, with `remove`, take away) on `ids`, as Thanos writes it.
/// Fails, naming the block, when a block is not in the bucket, its marker is already there
/// (placing) or absent (removing), or `details` is empty when placing.
pub fn mark_ops(
    sync: &SyncResult,
    ids: &[BlockId],
    kind: MarkerKind,
    details: &str,
    remove: bool,
    now_unix_ms: i64,
) -> Result<Vec<WriteOp>, String> {
    if !remove && details.is_empty() {
        return Err("required flag --details not provided".into());
    }
    let now_s = now_unix_ms.div_euclid(1000);
    let mut ops = Vec::with_capacity(ids.len());
    for &id in ids {
        let Some(block) = sync.blocks.get(&id) else {
            return Err(format!("block {id}: not in the bucket"));
        };
        if matches!(block.meta, MetaState::Missing) && !remove {
            return Err(format!(
                "block {id}: no meta.json (a partial upload or a delete in progress)"
            ));
        }
        let present = kind.present(block);
        if remove {
            if !present {
                return Err(format!("block {id}: has no {} to remove", kind.filename()));
            }
            ops.push(WriteOp::RemoveMarker {
                block: id,
                marker: kind.filename().into(),
            });
            continue;
        }
        if present {
            return Err(format!("block {id}: {} already exists", kind.filename()));
        }
        ops.push(match kind {
            MarkerKind::Deletion => WriteOp::MarkDeletion(DeletionMark {
                id,
                version: MARKER_VERSION,
                details: details.into(),
                deletion_time: now_s,
            }),
            MarkerKind::NoCompact => WriteOp::MarkNoCompact(NoCompactMark {
                id,
                version: MARKER_VERSION,
                details: details.into(),
                no_compact_time: now_s,
                reason: REASON_MANUAL.into(),
            }),
            MarkerKind::NoDownsample => WriteOp::MarkNoDownsample(NoDownsampleMark {
                id,
                version: MARKER_VERSION,
                details: details.into(),
                no_downsample_time: now_s,
                reason: REASON_MANUAL_NO_DOWNSAMPLE.into(),
            }),
        });
    }
    Ok(ops)
}

/// The filters `retention` and `cleanup` see the bucket through (Thanos' flags of both).
#[derive(Clone, Debug, Default)]
pub struct MaintenanceSettings {
    /// `--consistency-delay` in ms.
    pub consistency_delay_ms: i64,
    /// `--delete-delay` in ms.
    pub delete_delay_ms: i64,
    /// `--selector.relabel-config`.
    pub selector_relabel: Vec<RelabelConfig>,
    /// `--deduplication.replica-label` (to find each block's stream).
    pub replica_labels: Vec<String>,
}

impl MaintenanceSettings {
    /// The compactor's view of `sync` at `now_unix_ms` with these filters; every deletion mark
    /// counts as first seen now (its own time decides its age).
    pub fn view(&self, sync: &SyncResult, now_unix_ms: i64) -> BucketView {
        let cfg = ViewConfig {
            min_time: i64::MIN,
            max_time: i64::MAX,
            consistency_delay_ms: self.consistency_delay_ms,
            delete_delay_ms: self.delete_delay_ms,
            replica_labels: self.replica_labels.clone(),
            selector_relabel: self.selector_relabel.clone(),
            scope: Scope::All,
        };
        build_view(sync, now(now_unix_ms), &cfg, &BTreeMap::new())
    }
}

/// `retention`: deletion marks for the blocks past their resolution's retention
/// (`retention_ms`: raw, 5m, 1h; 0 keeps forever), as the compactor places them.
pub fn retention_ops(
    sync: &SyncResult,
    settings: &MaintenanceSettings,
    retention_ms: [i64; 3],
    now_unix_ms: i64,
) -> Vec<WriteOp> {
    let view = settings.view(sync, now_unix_ms);
    retention_marks(&view, retention_ms, now(now_unix_ms))
}

/// `cleanup`: deletions of the blocks marked longer than `--delete-delay` ago, then of the
/// partial uploads (no meta.json, no mark) whose newest object is older than
/// `partial_upload_threshold_ms` and the consistency delay, as the compactor's clean-up does.
pub fn cleanup_ops(
    sync: &SyncResult,
    settings: &MaintenanceSettings,
    partial_upload_threshold_ms: i64,
    now_unix_ms: i64,
) -> Vec<WriteOp> {
    let view = settings.view(sync, now_unix_ms);
    let at = now(now_unix_ms);
    let marked = view
        .deletion_marks
        .values()
        .filter(|m| mark_age_ms(m, None, at) > settings.delete_delay_ms)
        .map(|m| WriteOp::DeleteBlock(m.id));
    let threshold = partial_upload_threshold_ms.max(settings.consistency_delay_ms);
    let partials = view
        .partial
        .iter()
        .filter(|(_, p)| {
            !p.marked && !p.corrupt_meta && now_unix_ms - p.newest_modified.0 > threshold
        })
        .map(|(id, _)| WriteOp::DeleteBlock(*id));
    marked.chain(partials).collect()
}

/// A single look at the clock: both clocks read the same wall time.
fn now(unix_ms: i64) -> Now {
    Now {
        mono: Millis(unix_ms),
        wall: Millis(unix_ms),
    }
}

#[cfg(test)]
mod tests;
