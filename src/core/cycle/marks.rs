//! The deletion marks the iteration writes of its own accord: on duplicates (Thanos' garbage
//! collection, "outdated block") and on blocks past their resolution's retention; and the
//! deletion mark every part of the cycle writes.

use super::super::types::{Now, WriteOp};
use super::super::view::{resolution, BucketView};
use crate::bucket::markers::{DeletionMark, DETAILS_OUTDATED, MARKER_VERSION};
use crate::tsdb::block_id::BlockId;
use crate::units::{RESOLUTION_5M_MS, RESOLUTION_RAW_MS};

/// A deletion mark written now.
pub(super) fn deletion_mark(id: BlockId, now: Now, details: &str) -> DeletionMark {
    DeletionMark {
        id,
        version: MARKER_VERSION,
        details: details.to_string(),
        deletion_time: now.wall.0.div_euclid(1000),
    }
}

/// Deletion marks for duplicates (blocks whose sources another block covers).
pub(super) fn garbage_marks(view: &BucketView, now: Now) -> Vec<WriteOp> {
    view.duplicates
        .iter()
        .filter(|id| !view.deletion_marks.contains_key(id))
        .map(|id| WriteOp::MarkDeletion(deletion_mark(*id, now, DETAILS_OUTDATED)))
        .collect()
}

/// Deletion marks for visible blocks past their resolution's retention (`retention_ms` per
/// resolution: raw, 5m, 1h; 0 keeps forever).
pub fn retention_marks(view: &BucketView, retention_ms: [i64; 3], now: Now) -> Vec<WriteOp> {
    view.blocks
        .values()
        .filter(|m| !view.deletion_marks.contains_key(&m.ulid))
        .filter_map(|m| {
            let keep = match resolution(m) {
                RESOLUTION_RAW_MS => retention_ms[0],
                RESOLUTION_5M_MS => retention_ms[1],
                _ => retention_ms[2],
            };
            (keep > 0 && now.wall.0 > m.max_time.saturating_add(keep)).then(|| {
                let details = format!(
                    "block exceeding retention of {}",
                    crate::duration::format_duration_ms(keep as u64)
                );
                WriteOp::MarkDeletion(deletion_mark(m.ulid, now, &details))
            })
        })
        .collect()
}
