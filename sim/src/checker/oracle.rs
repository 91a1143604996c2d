//! The checker's own statement of what the compactor must achieve in a group of blocks: which
//! blocks form a group, which blocks overlap, and when nothing is left to compact.
//!
//! Written from the rules Thanos and Prometheus state, not from compactd's planner
//! (`core::plan`), so that a grouping, overlap or window bug in the planner cannot hide the
//! damage it does: the checker would otherwise judge the planner by the planner. Each rule is
//! stated as a condition over sets of blocks, not as the planner's sweep over sorted blocks,
//! and brute force is preferred to cleverness (a group holds a few dozen blocks at most).
//!
//! Scope: the compactor the simulation runs ([`crate::setup::cycle_config`]): compaction
//! ranges from the configuration, vertical compaction from the configuration, and everything
//! else that changes the answer off — no downsampling, no retention, no index-size limit (so
//! no planner-written no-compact marks), no replica labels, no time filter, no consistency
//! delay. [`assert_modelled`] refuses any other configuration rather than judge it wrongly.
//!
//! `oracle/tests.rs` compares [`work_left`] with the production planner on generated layouts;
//! that test is the only place the two meet.

use std::collections::BTreeMap;
use std::fmt;

use compactd::core::cycle::CycleConfig;
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::BlockMeta;

#[cfg(test)]
mod tests;

/// Overlapping pairs named in one violation; the count says how many there were.
pub const PAIRS_SHOWN_MAX: usize = 3;

/// Thanos' tombstone rule: a block is rewritten when its tombstones exceed 5% of its series
/// plus one, i.e. `tombstones / (series + 1) > 1/20`.
const TOMBSTONES_PER_SERIES_DENOMINATOR: u128 = 20;

/// A compaction group: blocks are only ever compacted with blocks of the same group.
///
/// Thanos: `DefaultGrouper` keys blocks by `metadata.Thanos.GroupKey()`
/// (`pkg/block/metadata/meta.go`), `fmt.Sprintf("%d@%v", m.Downsample.Resolution,
/// labels.FromMap(m.Labels).Hash())`: the downsampling resolution and the external labels. The
/// labels are compared here as a map, not through their hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Group {
    /// `thanos.downsample.resolution` in ms (0 for raw blocks).
    pub resolution_ms: i64,
    /// `thanos.labels`, the block's external labels.
    pub labels: BTreeMap<String, String>,
}

impl fmt::Display for Group {
    /// `<resolution>@{name="value",...}`, the form of Thanos' older group directories.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect();
        write!(f, "{}@{{{}}}", self.resolution_ms, labels.join(","))
    }
}

/// The group of a block. A meta without a `thanos` section (a plain Prometheus block) reads
/// as Go's zero `metadata.Thanos`: resolution 0, no labels.
pub fn group_of(meta: &BlockMeta) -> Group {
    let Some(thanos) = &meta.thanos else {
        return Group::default();
    };
    Group {
        resolution_ms: thanos.downsample.resolution,
        labels: thanos.labels.clone(),
    }
}

/// The blocks of each group, each group's blocks in `(min_time, ulid)` order (any order would
/// do for the rules; this one makes reports deterministic).
pub fn groups<'a>(
    metas: impl IntoIterator<Item = &'a BlockMeta>,
) -> BTreeMap<Group, Vec<&'a BlockMeta>> {
    let mut out: BTreeMap<Group, Vec<&'a BlockMeta>> = BTreeMap::new();
    for meta in metas {
        out.entry(group_of(meta)).or_default().push(meta);
    }
    for blocks in out.values_mut() {
        blocks.sort_by_key(|m| (m.min_time, m.ulid));
    }
    out
}

/// Whether two blocks hold samples of a common instant. A block's time range is half-open,
/// `[min_time, max_time)` (Prometheus `tsdb/db.go`: "block intervals are half-open:
/// [b.MinTime, b.MaxTime)"; `tsdb.OverlappingBlocks` counts a block starting exactly where
/// another ends as no overlap). Two half-open ranges intersect when each starts before the
/// other ends.
pub fn overlap(a: &BlockMeta, b: &BlockMeta) -> bool {
    a.min_time < b.max_time && b.min_time < a.max_time
}

/// Every pair of distinct blocks of `blocks` that overlap ([`overlap`]), in input order.
/// Quadratic on purpose: every pair is looked at, no sweep to get wrong.
pub fn overlapping_pairs<'a>(blocks: &[&'a BlockMeta]) -> Vec<(&'a BlockMeta, &'a BlockMeta)> {
    let mut pairs = Vec::new();
    for (i, a) in blocks.iter().enumerate() {
        for b in &blocks[i + 1..] {
            if overlap(a, b) {
                pairs.push((*a, *b));
            }
        }
    }
    pairs
}

/// What the compactor would still do in a group: the first rule of [`work_left`] that applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// Vertical compaction merges two overlapping blocks.
    Overlap(BlockId, BlockId),
    /// The blocks lying in the window `[start_ms, start_ms + range_ms]` are merged.
    Window {
        /// The compaction range.
        range_ms: i64,
        /// The window's aligned start.
        start_ms: i64,
        /// How many blocks lie in it.
        blocks: usize,
    },
    /// A large block with many tombstones is rewritten.
    Tombstones(BlockId),
}

/// Panics unless `cycle` is a configuration [`work_left`] models (see the module doc): with
/// another, the oracle would call a bucket finished that the compactor still works on, or the
/// reverse, and liveness would be judged wrongly without anyone noticing.
pub fn assert_modelled(cycle: &CycleConfig) {
    assert!(
        !cycle.downsampling,
        "the oracle does not model downsampling"
    );
    assert_eq!(
        cycle.retention_ms, [0; 3],
        "the oracle does not model retention"
    );
    assert!(
        cycle.index_size_limit_bytes.is_none(),
        "the oracle does not model the index-size limit (no-compact marks)"
    );
    assert!(
        cycle.view.replica_labels.is_empty(),
        "the oracle groups by the labels in meta.json, without replica labels removed"
    );
    assert!(
        cycle.view.selector_relabel.is_empty(),
        "the oracle does not model relabel sharding"
    );
    assert_eq!(
        cycle.view.consistency_delay_ms, 0,
        "the oracle sees every block"
    );
    assert_eq!(cycle.view.min_time, i64::MIN, "the oracle sees every block");
    assert_eq!(cycle.view.max_time, i64::MAX, "the oracle sees every block");
}

/// What is left to compact in one group, `None` when nothing is: the compactor's fixed point.
/// `blocks` are the group's visible blocks without a deletion mark, in any order; each must
/// be non-empty (`max_time > min_time`, as Prometheus writes them: on a zero-length block
/// the pairwise overlap test and Prometheus' sweep may disagree). No-compact marks are not
/// looked at: the configurations modelled ([`assert_modelled`]) never ask for one, so a mark
/// in the bucket could leave work the compactor refuses, and liveness should then fail.
///
/// The rules, in Thanos' order (`pkg/compact/planner.go`, `tsdbBasedPlanner.plan`, itself
/// Prometheus' `LeveledCompactor.plan` in `tsdb/compact.go`):
/// 1. overlaps ([`overlap_work`]);
/// 2. windows ([`window_work`]);
/// 3. tombstones ([`tombstone_work`]).
pub fn work_left(blocks: &[&BlockMeta], ranges_ms: &[i64], vertical: bool) -> Option<Work> {
    let pairs = overlapping_pairs(blocks);
    if let Some((a, b)) = pairs.first() {
        // Vertical compaction merges them. Without it Thanos halts the group before planning
        // (`Group.compact`: "pre compaction overlap check"), so nothing more happens there;
        // the overlap itself is a bucket-health violation, not a liveness one.
        return vertical.then_some(Work::Overlap(a.ulid, b.ulid));
    }
    // Without overlaps, min_times are distinct: "the newest block" is well defined.
    let newest = blocks.iter().max_by_key(|m| (m.min_time, m.ulid))?;
    let older: Vec<&BlockMeta> = blocks
        .iter()
        .copied()
        .filter(|m| m.ulid != newest.ulid)
        .collect();
    window_work(&older, ranges_ms).or_else(|| tombstone_work(&older, ranges_ms))
}

/// Rule 2, windows. For every compaction range `r` but the first (Prometheus `selectDirs`:
/// `for _, iv := range c.ranges[1:]`) and every window `[k·r, (k+1)·r]` aligned on multiples
/// of `r` (`splitByRange`: "Compute start of aligned time range of size tr closest to the
/// current block's start"), the blocks of `older` lying wholly inside the window (a block
/// crossing a window edge is in no window of that range: "Skip blocks that don't fall into
/// the range") are merged into one when
/// - there are two or more of them,
/// - none has `compaction.failed` ("Do not select the range if it has a block whose
///   compaction failed"),
/// - and the window can get no more blocks: they span it wholly (first start at `k·r`, last
///   end at `(k+1)·r`), or they all end by the time the newest block of `older` starts
///   ("Pick the range of blocks if it spans the full range (potentially with gaps) or is
///   before the most recent block").
///
/// `older` is the group without its newest block: "We do not include a recently created
/// block with max(minTime)" (Prometheus `plan`; Thanos: "This gives users a window of a full
/// block size maintenance if needed"). `older` must hold no overlapping blocks. Plain `i64`
/// window arithmetic: block times (ms since 1970) are nowhere near the type's bounds.
pub fn window_work(older: &[&BlockMeta], ranges_ms: &[i64]) -> Option<Work> {
    let newest_start_ms = older.iter().map(|m| m.min_time).max()?;
    for &range_ms in ranges_ms.iter().skip(1).filter(|r| **r > 0) {
        // Every window that holds a block starts where one of these blocks' windows starts.
        let mut starts: Vec<i64> = older
            .iter()
            .map(|m| m.min_time.div_euclid(range_ms) * range_ms)
            .collect();
        starts.sort_unstable();
        starts.dedup();
        for start_ms in starts {
            let end_ms = start_ms + range_ms;
            let inside: Vec<&BlockMeta> = older
                .iter()
                .copied()
                .filter(|m| start_ms <= m.min_time && m.max_time <= end_ms)
                .collect();
            if inside.len() < 2 || inside.iter().any(|m| m.compaction.failed) {
                continue;
            }
            let first_ms = inside.iter().map(|m| m.min_time).min().expect("two blocks");
            let last_ms = inside.iter().map(|m| m.max_time).max().expect("two blocks");
            let spans_window = first_ms == start_ms && last_ms == end_ms;
            let before_newest = last_ms <= newest_start_ms;
            if spans_window || before_newest {
                return Some(Work::Window {
                    range_ms,
                    start_ms,
                    blocks: inside.len(),
                });
            }
        }
    }
    None
}

/// Rule 3, tombstones (Thanos `tsdbBasedPlanner.plan`, "Compact any blocks with big enough
/// time range that have >5% tombstones"): walking `older` from its newest block back, as
/// long as each block spans at least the middle range (`ranges[len(ranges)/2]`), a block with
/// `tombstones / (series + 1) > 5%` is rewritten alone. The walk stops at the first shorter
/// block, so a tombstoned block behind a short one stays as it is.
///
/// Go compares floats (`float64(t)/float64(s+1) > 0.05`); the exact integer comparison here
/// agrees with it unless the series count exceeds about 10^16.
pub fn tombstone_work(older: &[&BlockMeta], ranges_ms: &[i64]) -> Option<Work> {
    let span_min_ms = *ranges_ms.get(ranges_ms.len() / 2)?;
    let mut newest_first = older.to_vec();
    newest_first.sort_by_key(|m| std::cmp::Reverse((m.min_time, m.ulid)));
    for meta in newest_first {
        if meta.max_time - meta.min_time < span_min_ms {
            return None;
        }
        let tombstones = u128::from(meta.stats.num_tombstones);
        let series_plus_one = u128::from(meta.stats.num_series) + 1;
        if tombstones * TOMBSTONES_PER_SERIES_DENOMINATOR > series_plus_one {
            return Some(Work::Tombstones(meta.ulid));
        }
    }
    None
}

/// One violation's text for the overlapping pairs of a group: the count and the first
/// [`PAIRS_SHOWN_MAX`] pairs with their ranges.
pub fn describe_overlaps(group: &Group, pairs: &[(&BlockMeta, &BlockMeta)]) -> String {
    let shown: Vec<String> = pairs
        .iter()
        .take(PAIRS_SHOWN_MAX)
        .map(|(a, b)| format!("{} and {}", describe(a), describe(b)))
        .collect();
    let more = pairs.len().saturating_sub(PAIRS_SHOWN_MAX);
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!(
        "group {group}: {} pairs of blocks overlap: {}{tail}",
        pairs.len(),
        shown.join("; ")
    )
}

fn describe(meta: &BlockMeta) -> String {
    format!("{} [{}, {})", meta.ulid, meta.min_time, meta.max_time)
}
