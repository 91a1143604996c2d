//! The backlog gauges (`thanos_compact_todo_*`): how much compaction, downsampling and
//! retention work the bucket still holds, computed as Thanos' progress calculators compute
//! them (`pkg/compact/compact.go`: `CompactionProgressCalculator`,
//! `DownsampleProgressCalculator`, `RetentionProgressCalculator`), so that dashboards read the
//! same numbers off compactd as off `thanos compact`.
//!
//! Thanos runs the calculators every `--compact.progress-interval`, only with `--wait`, over
//! the metas its fetcher keeps after the sync filters. Here that is the view's visible blocks
//! ([`BucketView::blocks`]; blocks with a deletion mark younger than half the delete delay
//! included, as in Thanos); the cycle decides when ([`super::cycle`]). Every function is pure.
//!
//! - **Compaction** ([`compaction_backlog`]): per group, plan with Thanos' bare planner
//!   ([`plan_tsdb`]: no index-size guard, overlaps planned even without vertical
//!   compaction), count the plan and its blocks, put one synthetic block in place of the
//!   planned ones, and plan again until the planner finds nothing. A group of one block is
//!   not planned. Thanos gives every synthetic block the same id (`ulid.MustNew(<unix
//!   seconds>, nil)`, one id for a calculation that takes under a second) and removes planned
//!   blocks by id, so a plan holding a synthetic block removes *every* synthetic block of its
//!   group: their later plans are never counted. compactd keeps that (one id per calculation),
//!   so its gauges equal Thanos'. The work grows with the square of a group's blocks, as in
//!   Thanos: about 0.1 s for 2,000 uncompacted 2h blocks in one group, 2 s for 10,000.
//! - **Downsampling** ([`downsample_backlog`]): raw blocks spanning at least 40h with a source
//!   no 5m block covers, plus 5m blocks spanning at least 10 days with a source no 1h block
//!   covers. Only blocks that exist count: the 5m blocks the first pass will make are not
//!   counted for 1h, and no-downsample marks are not looked at.
//! - **Retention** ([`retention_backlog`]): blocks whose end, cut to whole seconds, plus their
//!   resolution's retention lies before now.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::plan::{group_blocks, plan_tsdb, GroupKey};
use super::types::Millis;
use super::view::{resolution, BucketView};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockMeta, Compaction, Downsample, ThanosMeta, META_VERSION};
use crate::units::{
    DOWNSAMPLE_RANGE_1H_MS, DOWNSAMPLE_RANGE_5M_MS, RESOLUTION_1H_MS, RESOLUTION_5M_MS,
    RESOLUTION_RAW_MS,
};

/// What the calculators need besides the view.
#[derive(Clone, Copy, Debug)]
pub struct ProgressInput<'a> {
    /// The bucket after the last sync.
    pub view: &'a BucketView,
    /// Compaction ranges in ms (the planner's).
    pub ranges: &'a [i64],
    /// Retention per resolution in ms (raw, 5m, 1h); 0 keeps forever.
    pub retention_ms: [i64; 3],
    /// Downsampling is on (Thanos has no downsampling calculator without it).
    pub downsampling: bool,
    /// Wall-clock time of the calculation.
    pub now_wall: Millis,
}

/// The four gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// `thanos_compact_todo_compactions` and `thanos_compact_todo_compaction_blocks`.
    pub compaction: CompactionBacklog,
    /// `thanos_compact_todo_downsample_blocks`; `None` when not computed: downsampling is off,
    /// or a block has a resolution other than raw, 5m and 1h (Thanos' calculator fails then).
    pub downsample_blocks: Option<u64>,
    /// `thanos_compact_todo_deletion_blocks`.
    pub deletion_blocks: u64,
}

/// Compaction runs still to do and the blocks in them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionBacklog {
    /// Plans, synthetic rounds included.
    pub runs: u64,
    /// Blocks in those plans, synthetic blocks included.
    pub blocks: u64,
}

/// A block whose resolution Thanos' downsampling calculator rejects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("block {block}: unexpected downsampling resolution {resolution}")]
pub struct UnexpectedResolution {
    /// The block.
    pub block: BlockId,
    /// Its resolution in ms.
    pub resolution: i64,
}

/// Runs the three calculators over the view.
pub fn backlog(input: &ProgressInput<'_>) -> Backlog {
    let blocks = || input.view.blocks.values();
    let compaction = compaction_backlog(
        blocks(),
        &input.view.no_compact,
        input.ranges,
        synthetic_id(input.now_wall),
    );
    let downsample_blocks = input
        .downsampling
        .then(|| downsample_backlog(blocks()).ok())
        .flatten();
    Backlog {
        compaction,
        downsample_blocks,
        deletion_blocks: retention_backlog(blocks(), input.retention_ms, input.now_wall),
    }
}

/// The id Thanos gives every synthetic block of a calculation: `ulid.MustNew(uint64(
/// time.Now().Unix()), nil)`, Unix *seconds* in the millisecond field and no entropy.
pub fn synthetic_id(now_wall: Millis) -> BlockId {
    BlockId::from_parts(now_wall.0.div_euclid(1000).max(0) as u64, 0)
}

/// Thanos' `CompactionProgressCalculator` over `blocks` (grouped here), with the no-compact
/// marks the planner excludes and the shared id of the synthetic blocks.
pub fn compaction_backlog<'a>(
    blocks: impl IntoIterator<Item = &'a BlockMeta>,
    no_compact: &BTreeSet<BlockId>,
    ranges: &[i64],
    synthetic: BlockId,
) -> CompactionBacklog {
    let mut total = CompactionBacklog::default();
    for (key, metas) in group_blocks(blocks) {
        let group = group_compaction_backlog(&key, metas, no_compact, ranges, synthetic);
        total.runs += group.runs;
        total.blocks += group.blocks;
    }
    total
}

/// One group's plans until the planner finds nothing (see the module doc).
fn group_compaction_backlog(
    key: &GroupKey,
    metas: Vec<&BlockMeta>,
    no_compact: &BTreeSet<BlockId>,
    ranges: &[i64],
    synthetic: BlockId,
) -> CompactionBacklog {
    let mut backlog = CompactionBacklog::default();
    let mut group: Vec<Cow<'_, BlockMeta>> = metas.into_iter().map(Cow::Borrowed).collect();
    // Bound: a plan merges two or more blocks into one, or (the tombstone rule) puts a
    // synthetic block, which has no tombstones, in place of one block that has; so there are
    // at most two plans per block, and the last round finds nothing.
    let rounds_max = 2 * group.len() + 1;
    for _ in 0..rounds_max {
        if group.len() <= 1 {
            return backlog;
        }
        let refs: Vec<&BlockMeta> = group.iter().map(|m| m.as_ref()).collect();
        let planned = plan_tsdb(&refs, no_compact, ranges);
        if planned.is_empty() {
            return backlog;
        }
        backlog.runs += 1;
        backlog.blocks += planned.len() as u64;
        let merged = synthetic_block(&planned, key, synthetic);
        // By id, as Thanos' `deleteFromGroup`: planning one synthetic block drops them all.
        let removed: BTreeSet<BlockId> = planned.iter().map(|m| m.ulid).collect();
        group.retain(|m| !removed.contains(&m.ulid));
        if group.is_empty() {
            return backlog;
        }
        group.push(Cow::Owned(merged));
    }
    debug_assert!(
        false,
        "group {key}: planning did not end within {rounds_max} rounds"
    );
    backlog
}

/// The block Thanos' calculator puts in place of a plan: Prometheus' `CompactBlockMetas` (the
/// plan's time range, the highest level plus one, the sorted union of the sources; no stats,
/// so no tombstones) under the shared `id`, with only the group's labels and resolution in
/// its Thanos section.
fn synthetic_block(planned: &[&BlockMeta], key: &GroupKey, id: BlockId) -> BlockMeta {
    debug_assert!(!planned.is_empty(), "a plan has blocks");
    let sources: BTreeSet<BlockId> = planned
        .iter()
        .flat_map(|m| m.compaction.sources.iter().copied())
        .collect();
    BlockMeta {
        ulid: id,
        min_time: planned.iter().map(|m| m.min_time).min().unwrap_or_default(),
        max_time: planned.iter().map(|m| m.max_time).max().unwrap_or_default(),
        stats: Default::default(),
        compaction: Compaction {
            level: planned
                .iter()
                .map(|m| m.compaction.level)
                .max()
                .unwrap_or_default()
                .saturating_add(1),
            sources: sources.into_iter().collect(),
            parents: planned.iter().map(|m| m.desc()).collect(),
            ..Compaction::default()
        },
        version: META_VERSION,
        thanos: Some(ThanosMeta {
            labels: key.labels.clone(),
            downsample: Downsample {
                resolution: key.resolution,
            },
            ..ThanosMeta::default()
        }),
    }
}

/// Thanos' `DownsampleProgressCalculator`: raw blocks of at least 40h with a source that no
/// 5m block covers, and 5m blocks of at least 10 days with a source no 1h block covers.
pub fn downsample_backlog<'a, I>(blocks: I) -> Result<u64, UnexpectedResolution>
where
    I: IntoIterator<Item = &'a BlockMeta> + Clone,
{
    let (mut covered_5m, mut covered_1h) = (BTreeSet::new(), BTreeSet::new());
    for m in blocks.clone() {
        let covered = match resolution(m) {
            RESOLUTION_RAW_MS => continue,
            RESOLUTION_5M_MS => &mut covered_5m,
            RESOLUTION_1H_MS => &mut covered_1h,
            other => {
                return Err(UnexpectedResolution {
                    block: m.ulid,
                    resolution: other,
                })
            }
        };
        covered.extend(m.compaction.sources.iter().copied());
    }
    let mut todo = 0;
    for m in blocks {
        let (covered, span_min_ms) = match resolution(m) {
            RESOLUTION_RAW_MS => (&covered_5m, DOWNSAMPLE_RANGE_5M_MS),
            RESOLUTION_5M_MS => (&covered_1h, DOWNSAMPLE_RANGE_1H_MS),
            _ => continue,
        };
        // A block without sources counts as covered, as Thanos' loop finds nothing missing.
        let missing = m.compaction.sources.iter().any(|s| !covered.contains(s));
        // Go's int64 subtraction wraps.
        if missing && m.max_time.wrapping_sub(m.min_time) >= span_min_ms {
            todo += 1;
        }
    }
    Ok(todo)
}

/// Thanos' `RetentionProgressCalculator`: blocks with `time.Unix(maxTime/1000, 0) +
/// retention` before now, for resolutions with a retention (0 keeps forever). Resolutions
/// other than raw, 5m and 1h have none.
pub fn retention_backlog<'a>(
    blocks: impl IntoIterator<Item = &'a BlockMeta>,
    retention_ms: [i64; 3],
    now_wall: Millis,
) -> u64 {
    let past = |m: &BlockMeta| {
        let keep_ms = match resolution(m) {
            RESOLUTION_RAW_MS => retention_ms[0],
            RESOLUTION_5M_MS => retention_ms[1],
            RESOLUTION_1H_MS => retention_ms[2],
            _ => 0,
        };
        // Go's integer division truncates toward zero; i128 so the sum cannot overflow.
        let end_ms = i128::from(m.max_time / 1000 * 1000);
        keep_ms != 0 && i128::from(now_wall.0) > end_ms + i128::from(keep_ms)
    };
    blocks.into_iter().filter(|m| past(m)).count() as u64
}

#[cfg(test)]
mod tests;
