//! What to compact next: Thanos' grouper and planner as pure functions over block metas.
//!
//! Naming: a *group* is a stream of blocks that may be compacted together ([`GroupKey`]); the
//! *ranges* are the compaction levels in ms ([`compaction_ranges`]); a *window* is an
//! epoch-aligned interval `[k·range, (k+1)·range]` of one range; a *plan* is what to do next
//! in one group ([`Plan`]): compact some blocks into one, or first no-compact-mark a block.
//!
//! The behaviour is Thanos' (`pkg/compact/planner.go`: `tsdbBasedPlanner`,
//! `largeTotalIndexSizeFilter`, `verticalCompactionDownsampleFilter`), which itself adapts
//! Prometheus' `LeveledCompactor.plan` (`tsdb/compact.go`). [`plan`] decides, in order:
//!
//! 1. with vertical compaction on, the first run of overlapping blocks, if any; with it off,
//!    nothing at all while the group overlaps (the caller halts, see [`overlapping_blocks`]);
//! 2. the newest block (largest `min_time`) is held back, and the first window, over the
//!    ranges from the second one up, that holds two or more blocks, has no `compaction.failed`
//!    block, and either spans its whole range or ends before the newest block starts;
//! 3. else a single large block (span >= `ranges[len/2]`) with more than 5% tombstones;
//! 4. then the guards: an index-size estimate over the limit, or an overlapping plan of
//!    downsampled blocks, turn the plan into [`Plan::MarkNoCompact`]; the caller writes the
//!    mark and plans again with the block excluded ([`plan_with_marks`] runs that loop).
//!
//! Every function here is pure and deterministic: ties in `min_time` are broken by block id,
//! sets are `BTreeSet`s, and nothing reads a clock or the bucket.

mod group;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

pub use group::{group_blocks, group_key, labels_hash, overlapping_blocks, GroupKey};

use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;
use crate::units::{DAY_MS, HOUR_MS};

/// Thanos' compaction levels (`compactions` in `cmd/thanos/compact.go`): 1h, 2h, 8h, 2d,
/// 14d, in ms. The first is the size of the blocks Prometheus uploads and is never planned
/// for; the planner builds windows of the others.
pub const DEFAULT_RANGES_MS: [i64; 5] =
    [HOUR_MS, 2 * HOUR_MS, 8 * HOUR_MS, 2 * DAY_MS, 14 * DAY_MS];

/// Default of the hidden `--debug.max-compaction-level`: the last index of
/// [`DEFAULT_RANGES_MS`].
pub const DEFAULT_MAX_COMPACTION_LEVEL: usize = DEFAULT_RANGES_MS.len() - 1;

/// Default of the hidden `--compact.block-max-index-size` (`64GB`, parsed base-2).
pub const DEFAULT_BLOCK_MAX_INDEX_SIZE_BYTES: u64 = 64 << 30;

/// No-compact reason for a block whose index would make the output too large.
pub const REASON_INDEX_SIZE_EXCEEDING: &str = "index-size-exceeding";

/// No-compact reason for a downsampled block in an overlapping (vertical) plan.
pub const REASON_DOWNSAMPLE_VERTICAL_COMPACTION: &str = "downsample-vertical-compaction";

/// The file name of a block's index, as listed in `thanos.files`.
const INDEX_FILENAME: &str = "index";

/// The share of the index-size limit a plan may reach: 15% head room for index growth.
const INDEX_SIZE_HEADROOM_FACTOR: f64 = 0.85;

/// The tombstone share above which a single large block is rewritten on its own.
const TOMBSTONE_RATIO_MAX: f64 = 0.05;

/// `--debug.max-compaction-level` beyond the last level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("max compaction level {max_level} is bigger than the default set of {levels} levels")]
pub struct MaxLevelTooHigh {
    /// The level asked for.
    pub max_level: usize,
    /// How many levels exist.
    pub levels: usize,
}

/// The ranges Thanos hands its planner for `--debug.max-compaction-level=max_level`: the
/// levels `0..=max_level` of [`DEFAULT_RANGES_MS`]. Thanos refuses to start with a level past
/// the last one, hence the error. Level 0 alone (`[1h]`) plans nothing but tombstone rewrites.
pub fn compaction_ranges(max_level: usize) -> Result<Vec<i64>, MaxLevelTooHigh> {
    match DEFAULT_RANGES_MS.get(..=max_level) {
        Some(ranges) => Ok(ranges.to_vec()),
        None => Err(MaxLevelTooHigh {
            max_level,
            levels: DEFAULT_RANGES_MS.len(),
        }),
    }
}

/// Everything the planner looks at for one group.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The group's visible blocks, sorted by `(min_time, ulid)` (the planner re-sorts a copy,
    /// so another order gives the same plan).
    pub blocks: &'a [&'a BlockMeta],
    /// Blocks with a no-compact mark; they may be in `blocks` or not.
    pub no_compact: &'a BTreeSet<BlockId>,
    /// Compaction ranges in ms, ascending ([`compaction_ranges`]); all must be positive.
    pub ranges: &'a [i64],
    /// Vertical compaction (`--compact.enable-vertical-compaction` or a replica label).
    pub vertical: bool,
    /// `--compact.block-max-index-size`; `None` switches the index-size guard off.
    pub index_size_limit_bytes: Option<u64>,
}

/// The planner's decision for one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Compact these blocks into one, in this order (ascending `min_time`, then id).
    Compact(Vec<BlockId>),
    /// Write a no-compact mark for `block`, then plan again with it excluded.
    MarkNoCompact {
        /// The block to exclude.
        block: BlockId,
        /// The mark's `reason` ([`REASON_INDEX_SIZE_EXCEEDING`] or
        /// [`REASON_DOWNSAMPLE_VERTICAL_COMPACTION`]).
        reason: &'static str,
        /// The mark's `details`.
        details: String,
    },
    /// Nothing to do in this group now.
    Nothing,
}

/// A no-compact mark the planner asks for (the fields of [`Plan::MarkNoCompact`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkDecision {
    /// The block to exclude.
    pub block: BlockId,
    /// The mark's `reason`.
    pub reason: &'static str,
    /// The mark's `details`.
    pub details: String,
}

/// The outcome of [`plan_with_marks`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanWithMarks {
    /// Marks to write, in order, before compacting.
    pub marks: Vec<MarkDecision>,
    /// The blocks to compact (empty: nothing to do).
    pub compact: Vec<BlockId>,
}

/// Plans one group: see the module doc for the rules and their order.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let mut blocks = input.blocks.to_vec();
    group::sort_by_min_time(&mut blocks);
    if !input.vertical && !overlapping_blocks(&blocks).is_empty() {
        // Thanos halts such a group before planning (`Group.compact`); never propose to merge
        // overlapping blocks when vertical compaction is off.
        return Plan::Nothing;
    }
    let selected = select_blocks(&blocks, input.no_compact, input.ranges, input.vertical);
    if selected.is_empty() {
        return Plan::Nothing;
    }
    if let Some(mark) = input
        .index_size_limit_bytes
        .and_then(|limit| index_size_guard(&selected, limit))
    {
        return mark;
    }
    if input.vertical {
        if let Some(mark) = downsample_vertical_guard(&selected) {
            return mark;
        }
    }
    debug_assert!(selected.iter().all(|m| !input.no_compact.contains(&m.ulid)));
    debug_assert!(selected
        .windows(2)
        .all(|w| (w[0].min_time, w[0].ulid) < (w[1].min_time, w[1].ulid)));
    Plan::Compact(selected.iter().map(|m| m.ulid).collect())
}

/// Runs [`plan`] until it stops asking for marks, excluding each marked block from the next
/// round, as Thanos' planner wrappers do within one `Plan` call. Bounded: every round marks a
/// new block of the group, so there are at most `blocks.len() + 1` rounds.
pub fn plan_with_marks(input: &PlanInput<'_>) -> PlanWithMarks {
    let mut no_compact = input.no_compact.clone();
    let mut outcome = PlanWithMarks::default();
    let rounds_max = input.blocks.len() + 1;
    for _ in 0..rounds_max {
        let round = PlanInput {
            no_compact: &no_compact,
            ..*input
        };
        match plan(&round) {
            Plan::Compact(ids) => {
                outcome.compact = ids;
                return outcome;
            }
            Plan::Nothing => return outcome,
            Plan::MarkNoCompact {
                block,
                reason,
                details,
            } => {
                let fresh = no_compact.insert(block);
                debug_assert!(fresh, "the planner asked to mark an excluded block");
                outcome.marks.push(MarkDecision {
                    block,
                    reason,
                    details,
                });
            }
        }
    }
    // Unreachable: each round but the last marks a new block of the group.
    outcome
}

/// Thanos' bare `tsdbBasedPlanner.Plan`, without the index-size and downsample-vertical
/// wrappers and without the halt on overlaps (Thanos halts in `Group.compact`, before it
/// plans): overlapping blocks first, whatever the vertical setting, then the windows, then
/// the tombstone rule. Thanos' progress calculator plans with exactly this planner. Returns
/// the planned metas themselves (in `(min_time, ulid)` order), not their ids, because the
/// calculator's synthetic blocks share one id.
pub fn plan_tsdb<'a>(
    blocks: &[&'a BlockMeta],
    no_compact: &BTreeSet<BlockId>,
    ranges: &[i64],
) -> Vec<&'a BlockMeta> {
    let mut sorted = blocks.to_vec();
    group::sort_by_min_time(&mut sorted);
    select_blocks(&sorted, no_compact, ranges, true)
}

/// A block's downsampling resolution; 0 without a Thanos section.
fn resolution(meta: &BlockMeta) -> i64 {
    meta.thanos
        .as_ref()
        .map_or(0, |thanos| thanos.downsample.resolution)
}

/// Thanos' `tsdbBasedPlanner.plan` over sorted blocks: overlaps (vertical only), then
/// windows with the newest block held back, then the tombstone rule.
fn select_blocks<'a>(
    blocks: &[&'a BlockMeta],
    no_compact: &BTreeSet<BlockId>,
    ranges: &[i64],
    vertical: bool,
) -> Vec<&'a BlockMeta> {
    let unmarked: Vec<&'a BlockMeta> = blocks
        .iter()
        .copied()
        .filter(|m| !no_compact.contains(&m.ulid))
        .collect();
    if vertical {
        let overlapping = select_overlapping(&unmarked);
        if !overlapping.is_empty() {
            return overlapping;
        }
    }
    let Some((newest, older)) = blocks.split_last() else {
        return Vec::new();
    };
    // The newest block may still get company in its window (a fresh upload): hold it back.
    // Windows are cut from all older blocks, marked ones included, so a mark never changes
    // which window a block falls in; only the tombstone rule works on unmarked blocks.
    let unmarked_older = if no_compact.contains(&newest.ulid) {
        &unmarked[..]
    } else {
        &unmarked[..unmarked.len() - 1]
    };
    let windowed = select_window(ranges, no_compact, older);
    if !windowed.is_empty() {
        return windowed;
    }
    select_tombstoned(unmarked_older, ranges)
        .map(|m| vec![m])
        .unwrap_or_default()
}

/// Thanos' `selectOverlappingMetas`: the first run of blocks each starting before the
/// furthest end seen so far, together with the block just before the run.
fn select_overlapping<'a>(blocks: &[&'a BlockMeta]) -> Vec<&'a BlockMeta> {
    let mut run: Vec<&'a BlockMeta> = Vec::new();
    let Some(first) = blocks.first() else {
        return run;
    };
    let mut furthest_end = first.max_time;
    for pair in blocks.windows(2) {
        let (previous, block) = (pair[0], pair[1]);
        if block.min_time < furthest_end {
            if run.is_empty() {
                run.push(previous);
            }
            run.push(block);
        } else if !run.is_empty() {
            break;
        }
        furthest_end = furthest_end.max(block.max_time);
    }
    run
}

/// Thanos' `selectMetas`: for each range after the first, the first window that qualifies
/// (see the module doc); within it, the first run of two or more unmarked blocks between
/// no-compact-marked ones. `blocks` excludes the newest block.
fn select_window<'a>(
    ranges: &[i64],
    no_compact: &BTreeSet<BlockId>,
    blocks: &[&'a BlockMeta],
) -> Vec<&'a BlockMeta> {
    let (Some(newest), Some(larger_ranges)) = (blocks.last(), ranges.get(1..)) else {
        return Vec::new();
    };
    // Blocks ending by the time the newest remaining block starts cannot get new company.
    let high_time = newest.min_time;
    for &range in larger_ranges {
        debug_assert!(range > 0, "compaction ranges must be positive");
        if range <= 0 {
            continue;
        }
        for window in split_by_range(blocks, range) {
            if window.iter().any(|m| m.compaction.failed) || window.len() < 2 {
                continue;
            }
            let (first, last) = (window[0], window[window.len() - 1]);
            let span = i128::from(last.max_time) - i128::from(first.min_time);
            if span != i128::from(range) && last.max_time > high_time {
                continue;
            }
            if let Some(run) = first_unmarked_run(window, no_compact) {
                return run.to_vec();
            }
        }
    }
    Vec::new()
}

/// The first run of at least two consecutive blocks without a no-compact mark. Thanos cuts
/// marked blocks out this way so that the output leaves no gap a later compaction of the
/// window would have to fill, and keeps the window the blocks would have had unmarked.
fn first_unmarked_run<'w, 'a>(
    window: &'w [&'a BlockMeta],
    no_compact: &BTreeSet<BlockId>,
) -> Option<&'w [&'a BlockMeta]> {
    window
        .split(|m| no_compact.contains(&m.ulid))
        .find(|run| run.len() > 1)
}

/// Prometheus' `splitByRange`: consecutive blocks that fit in the epoch-aligned window
/// `[t0, t0 + range]` of the first one's `min_time`; a block that crosses its window's end
/// is skipped. Windows are contiguous sub-slices of `blocks`.
fn split_by_range<'b, 'a>(blocks: &'b [&'a BlockMeta], range: i64) -> Vec<&'b [&'a BlockMeta]> {
    let mut windows = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let window_end = window_start(blocks[i].min_time, range) + i128::from(range);
        if i128::from(blocks[i].max_time) > window_end {
            i += 1;
            continue;
        }
        let first = i;
        while i < blocks.len() && i128::from(blocks[i].max_time) <= window_end {
            i += 1;
        }
        windows.push(&blocks[first..i]);
    }
    windows
}

/// The start of the epoch-aligned window of size `range` holding `time`: `floor(time/range)
/// · range`. Go writes it as `range·(time/range)` for `time >= 0` and
/// `range·((time-range+1)/range)` below zero, because its `/` truncates toward zero; for
/// negative `time` that truncation is a ceiling, and `ceil((time+1-range)/range) =
/// floor(time/range)`, so both branches are the floor. In i128 so no window math overflows.
fn window_start(time: i64, range: i64) -> i128 {
    let range = i128::from(range);
    i128::from(time).div_euclid(range) * range
}

/// Thanos' tombstone rule: walking from the newest (held-back excluded) unmarked block back,
/// while blocks span at least `ranges[len/2]`, the first with more than 5% tombstones per
/// series. Go computes `numSeries + 1` in uint64 before converting, hence the wrapping add.
fn select_tombstoned<'a>(blocks: &[&'a BlockMeta], ranges: &[i64]) -> Option<&'a BlockMeta> {
    let span_min = i128::from(*ranges.get(ranges.len() / 2)?);
    for &meta in blocks.iter().rev() {
        if i128::from(meta.max_time) - i128::from(meta.min_time) < span_min {
            break;
        }
        let stats = &meta.stats;
        let ratio = stats.num_tombstones as f64 / stats.num_series.wrapping_add(1) as f64;
        if ratio > TOMBSTONE_RATIO_MAX {
            return Some(meta);
        }
    }
    None
}

/// The size of a block's index from `thanos.files`, if recorded there with a positive size.
/// Thanos asks the bucket for the size when it is not; the pure planner cannot, and counts
/// such a block as 0 bytes, so a caller that wants the guard to see it fills `thanos.files`.
pub fn index_size_bytes(meta: &BlockMeta) -> Option<u64> {
    let files = &meta.thanos.as_ref()?.files;
    let entry = files.iter().rev().find(|f| f.rel_path == INDEX_FILENAME)?;
    u64::try_from(entry.size_bytes)
        .ok()
        .filter(|size| *size > 0)
}

/// Thanos' `largeTotalIndexSizeFilter`: walk the plan adding up index sizes; as soon as the
/// sum reaches 85% of the limit, ask to mark the largest index seen so far (the first of
/// equal ones). Marking a prefix's largest, not the whole plan's, is what Thanos does.
fn index_size_guard(selected: &[&BlockMeta], limit_bytes: u64) -> Option<Plan> {
    // Go: int64(float64(limit) * 0.85), truncating.
    let threshold_bytes = (limit_bytes as f64 * INDEX_SIZE_HEADROOM_FACTOR) as u64;
    let mut total_bytes: u64 = 0;
    let mut largest: Option<(u64, BlockId)> = None;
    for meta in selected {
        let size = index_size_bytes(meta).unwrap_or(0);
        if largest.is_none_or(|(largest_size, _)| largest_size < size) {
            largest = Some((size, meta.ulid));
        }
        total_bytes = total_bytes.saturating_add(size);
        if total_bytes >= threshold_bytes {
            let (_, block) = largest?;
            return Some(Plan::MarkNoCompact {
                block,
                reason: REASON_INDEX_SIZE_EXCEEDING,
                details: format!(
                    "largeTotalIndexSizeFilter: Total compacted block's index size could \
                     exceed: {limit_bytes} with this block. See \
                     https://github.com/thanos-io/thanos/issues/1424"
                ),
            });
        }
    }
    None
}

/// Thanos' `verticalCompactionDownsampleFilter`: downsampled blocks cannot be merged sample
/// by sample, so an overlapping plan with one asks to mark it. Thanos marks every downsampled
/// block of the plan in one go; here one per round, the first in plan order (the group
/// shares one resolution, so that is the plan's first block), and the next round re-plans.
fn downsample_vertical_guard(selected: &[&BlockMeta]) -> Option<Plan> {
    if select_overlapping(selected).is_empty() {
        return None;
    }
    let downsampled = selected.iter().find(|m| resolution(m) != 0)?;
    Some(Plan::MarkNoCompact {
        block: downsampled.ulid,
        reason: REASON_DOWNSAMPLE_VERTICAL_COMPACTION,
        details: "verticalCompactionDownsampleFilter: Downsampled block, see \
                  https://github.com/thanos-io/thanos/issues/6775"
            .to_string(),
    })
}
