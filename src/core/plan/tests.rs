//! Planner and grouper cases, each written from the Thanos/Prometheus behaviour it checks
//! (`pkg/compact/planner.go`, `pkg/compact/compact.go`, `tsdb/db.go`, `tsdb/compact.go`).

use std::collections::{BTreeMap, BTreeSet};

use super::group::sort_by_min_time;
use super::*;
use crate::tsdb::meta::{BlockFile, ThanosMeta};
use crate::units::RESOLUTION_5M_MS;

const H: i64 = HOUR_MS;

fn id(n: u64) -> BlockId {
    BlockId::from_parts(n, u128::from(n))
}

/// A level-1 block `n` of the unlabelled raw group covering `[min, max)`.
fn block(n: u64, min: i64, max: i64) -> BlockMeta {
    BlockMeta {
        thanos: Some(ThanosMeta::default()),
        ..BlockMeta::level1(id(n), min, max)
    }
}

/// Consecutive 2h blocks numbered from `first_id`, covering `[from_h, to_h)` hours.
fn two_hour_blocks(first_id: u64, from_h: i64, to_h: i64) -> Vec<BlockMeta> {
    (from_h..to_h)
        .step_by(2)
        .zip(first_id..)
        .map(|(h, n)| block(n, h * H, (h + 2) * H))
        .collect()
}

fn with_index_size(mut meta: BlockMeta, size_bytes: i64) -> BlockMeta {
    let thanos = meta.thanos.get_or_insert_with(ThanosMeta::default);
    thanos.files.push(BlockFile {
        rel_path: "index".to_string(),
        size_bytes,
        hash: None,
    });
    meta
}

struct Case<'a> {
    blocks: &'a [BlockMeta],
    marked: &'a [u64],
    ranges: &'a [i64],
    vertical: bool,
    limit: Option<u64>,
}

impl<'a> Case<'a> {
    fn new(blocks: &'a [BlockMeta]) -> Self {
        Case {
            blocks,
            marked: &[],
            ranges: &DEFAULT_RANGES_MS,
            vertical: false,
            limit: None,
        }
    }

    fn plan(&self) -> Plan {
        let refs: Vec<&BlockMeta> = self.blocks.iter().collect();
        let marked: BTreeSet<BlockId> = self.marked.iter().map(|n| id(*n)).collect();
        plan(&PlanInput {
            blocks: &refs,
            no_compact: &marked,
            ranges: self.ranges,
            vertical: self.vertical,
            index_size_limit_bytes: self.limit,
        })
    }

    fn plan_with_marks(&self) -> PlanWithMarks {
        let refs: Vec<&BlockMeta> = self.blocks.iter().collect();
        let marked: BTreeSet<BlockId> = self.marked.iter().map(|n| id(*n)).collect();
        plan_with_marks(&PlanInput {
            blocks: &refs,
            no_compact: &marked,
            ranges: self.ranges,
            vertical: self.vertical,
            index_size_limit_bytes: self.limit,
        })
    }
}

fn compact(ids: &[u64]) -> Plan {
    Plan::Compact(ids.iter().map(|n| id(*n)).collect())
}

// --- grouping -------------------------------------------------------------------------------

// Thanos' group key is `"<resolution>@<labels.Hash()>"` with the slicelabels hash:
// XXH64(seed 0) of `name 0xff value 0xff` per label in name order. For `{a="1"}` that is
// XXH64 of the four bytes 61 ff 31 ff, and for no labels XXH64 of the empty input (the
// well-known 0xef46db3751d8e999). The values were computed with the reference C
// implementation (`xxhsum -H1` of exactly those bytes), independently of the crate used here.
// The 2 KiB label set takes Go's streaming path (labels over 1 KiB): the same byte sequence,
// so the same hash.
#[test]
fn group_key_matches_thanos_format_and_hash() {
    let key = |res: i64, labels: &[(&str, &str)]| GroupKey {
        resolution: res,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    assert_eq!(key(0, &[]).to_string(), "0@17241709254077376921");
    assert_eq!(key(0, &[("a", "1")]).to_string(), "0@7311538254805615637");
    assert_eq!(
        key(RESOLUTION_5M_MS, &[("a", "1")]).to_string(),
        "300000@7311538254805615637"
    );
    // Name order, not insertion order: `replica` sorts after `cluster`.
    assert_eq!(
        labels_hash(&key(0, &[("replica", "a"), ("cluster", "eu-1")]).labels),
        7028414404466654573
    );
    let big = "x".repeat(2000);
    assert_eq!(
        labels_hash(&key(0, &[("big", big.as_str()), ("small", "y")]).labels),
        15948968016936734389
    );
}

// DefaultGrouper: one group per (resolution, external labels); a meta without a Thanos
// section falls into resolution 0 with no labels; blocks sorted by minTime (ties by id here).
#[test]
fn group_blocks_splits_by_labels_and_resolution() {
    let labelled = |n: u64, min: i64, res: i64, cluster: &str| {
        let mut m = block(n, min, min + 2 * H);
        let thanos = m.thanos.as_mut().expect("block() sets a Thanos section");
        thanos.labels = BTreeMap::from([("cluster".to_string(), cluster.to_string())]);
        thanos.downsample.resolution = res;
        m
    };
    let mut plain = block(9, 0, 2 * H);
    plain.thanos = None;
    let metas = [
        labelled(3, 2 * H, 0, "eu"),
        labelled(2, 0, 0, "eu"),
        labelled(1, 2 * H, 0, "eu"),
        labelled(4, 0, RESOLUTION_5M_MS, "eu"),
        labelled(5, 0, 0, "us"),
        plain,
    ];
    let groups = group_blocks(&metas);
    assert_eq!(groups.len(), 4);
    let eu_raw = &groups[&group_key(&metas[0])];
    let ids: Vec<BlockId> = eu_raw.iter().map(|m| m.ulid).collect();
    assert_eq!(ids, vec![id(2), id(1), id(3)]);
    assert_eq!(groups[&GroupKey::default()][0].ulid, id(9));
    assert_eq!(group_key(&metas[3]).resolution, RESOLUTION_5M_MS);
}

// --- overlaps -------------------------------------------------------------------------------

// tsdb.OverlappingBlocks: ranges are half-open, so touching blocks do not overlap; a chain
// where a pending block ends between two overlaps gives two sets; a long block covering
// several short ones that all stay pending gives one set.
#[test]
fn overlapping_blocks_follows_prometheus_sweep() {
    let touching = [block(1, 0, 10), block(2, 10, 20)];
    let refs: Vec<&BlockMeta> = touching.iter().collect();
    assert!(overlapping_blocks(&refs).is_empty());

    let chain = [block(1, 0, 10), block(2, 5, 15), block(3, 12, 20)];
    let refs: Vec<&BlockMeta> = chain.iter().collect();
    assert_eq!(
        overlapping_blocks(&refs),
        vec![vec![id(1), id(2)], vec![id(2), id(3)]]
    );

    let nested = [block(1, 0, 100), block(2, 10, 90), block(3, 20, 30)];
    let refs: Vec<&BlockMeta> = nested.iter().rev().collect(); // order does not matter
    assert_eq!(overlapping_blocks(&refs), vec![vec![id(1), id(2), id(3)]]);

    let apart = [
        block(1, 0, 10),
        block(2, 9, 20),
        block(3, 30, 40),
        block(4, 39, 50),
    ];
    let refs: Vec<&BlockMeta> = apart.iter().collect();
    assert_eq!(
        overlapping_blocks(&refs),
        vec![vec![id(1), id(2)], vec![id(3), id(4)]]
    );
}

// --- levels ---------------------------------------------------------------------------------

// cmd/thanos/compact.go: levels(maxLevel) = compactions[:maxLevel+1]; a level past the last
// is a startup error.
#[test]
fn compaction_ranges_cut_at_max_level() {
    assert_eq!(
        compaction_ranges(DEFAULT_MAX_COMPACTION_LEVEL),
        Ok(DEFAULT_RANGES_MS.to_vec())
    );
    assert_eq!(compaction_ranges(2), Ok(vec![H, 2 * H, 8 * H]));
    assert_eq!(compaction_ranges(0), Ok(vec![H]));
    assert!(compaction_ranges(5).is_err());
}

// --- windows --------------------------------------------------------------------------------

// Fewer than two blocks, or only the newest one: nothing to plan.
#[test]
fn empty_and_single_block_groups_plan_nothing() {
    assert_eq!(Case::new(&[]).plan(), Plan::Nothing);
    assert_eq!(Case::new(&[block(1, 0, 2 * H)]).plan(), Plan::Nothing);
}

// The newest block (largest minTime) is held back: four 2h blocks fill an 8h window, but
// with the fourth one newest the remaining three neither span 8h nor end before the newest
// remaining block starts. A fifth block releases the full window.
#[test]
fn newest_block_is_held_back_until_the_window_is_full() {
    let four = two_hour_blocks(1, 0, 8);
    assert_eq!(Case::new(&four).plan(), Plan::Nothing);
    let five = two_hour_blocks(1, 0, 10);
    assert_eq!(Case::new(&five).plan(), compact(&[1, 2, 3, 4]));
}

// A window that does not span its range is taken once it ends at or before the newest
// remaining block's minTime (no later block can land in it any more).
#[test]
fn partial_window_before_newer_blocks_is_compacted() {
    let blocks = [
        block(1, 0, 2 * H),
        block(2, 2 * H, 4 * H),
        block(3, 10 * H, 12 * H),
    ];
    // Block 3 is held back, so block 2 is the newest remaining: the window ends after it.
    assert_eq!(Case::new(&blocks).plan(), Plan::Nothing);
    let mut more = blocks.to_vec();
    more.push(block(4, 12 * H, 14 * H));
    assert_eq!(Case::new(&more).plan(), compact(&[1, 2]));
}

// A window spanning its full range is taken even with a gap inside it.
#[test]
fn full_window_with_a_gap_is_compacted() {
    let blocks = [
        block(1, 0, 2 * H),
        block(2, 4 * H, 6 * H),
        block(3, 6 * H, 8 * H),
        block(4, 8 * H, 10 * H),
    ];
    assert_eq!(Case::new(&blocks).plan(), compact(&[1, 2, 3]));
}

// splitByRange skips a block that crosses its window's end; the window before it is still
// planned, and the crossing block is left to a larger range.
#[test]
fn block_crossing_a_window_boundary_is_skipped() {
    let blocks = [
        block(1, 0, 2 * H),
        block(2, 2 * H, 4 * H),
        block(3, 4 * H, 6 * H),
        block(4, 6 * H, 10 * H),
        block(5, 10 * H, 12 * H),
        block(6, 20 * H, 22 * H),
    ];
    assert_eq!(Case::new(&blocks).plan(), compact(&[1, 2, 3]));
}

// A window with a `compaction.failed` block is skipped; the next qualifying window wins.
#[test]
fn window_with_failed_block_is_skipped() {
    let mut blocks = two_hour_blocks(1, 0, 18);
    blocks[1].compaction.failed = true;
    assert_eq!(Case::new(&blocks).plan(), compact(&[5, 6, 7, 8]));
}

// 2h -> 8h -> 2d: repeatedly planning and applying the plan turns two days of 2h blocks plus
// a fresh one into 8h blocks first (smallest range first), then one 2d block; the fresh block
// stays held back throughout.
#[test]
fn levels_progress_from_2h_to_8h_to_2d() {
    let mut blocks = two_hour_blocks(1, 0, 50);
    let mut spans_h = Vec::new();
    for next_id in 100..120 {
        let Plan::Compact(ids) = Case::new(&blocks).plan() else {
            break;
        };
        let inputs: Vec<BlockMeta> = blocks
            .iter()
            .filter(|m| ids.contains(&m.ulid))
            .cloned()
            .collect();
        let merged = block(
            next_id,
            inputs[0].min_time,
            inputs[inputs.len() - 1].max_time,
        );
        spans_h.push((merged.max_time - merged.min_time) / H);
        blocks.retain(|m| !ids.contains(&m.ulid));
        blocks.push(merged);
    }
    assert_eq!(spans_h, vec![8, 8, 8, 8, 8, 8, 48]);
    let mut refs: Vec<&BlockMeta> = blocks.iter().collect();
    sort_by_min_time(&mut refs);
    let spans: Vec<(i64, i64)> = refs.iter().map(|m| (m.min_time, m.max_time)).collect();
    assert_eq!(spans, vec![(0, 48 * H), (48 * H, 50 * H)]);
}

// splitByRange aligns windows to the epoch below zero too (Go's `(t-tr+1)/tr` branch), so
// blocks before 1970 fill [-8h, 0) and a block across zero fits no 2h window.
#[test]
fn negative_timestamps_use_floor_aligned_windows() {
    assert_eq!(window_start(-1, 10), -10);
    assert_eq!(window_start(-10, 10), -10);
    assert_eq!(window_start(-11, 10), -20);
    assert_eq!(window_start(0, 10), 0);
    assert_eq!(window_start(9, 10), 0);
    let blocks = two_hour_blocks(1, -8, 2);
    assert_eq!(Case::new(&blocks).plan(), compact(&[1, 2, 3, 4]));
    let across = [block(1, -H, H), block(2, H, 3 * H), block(3, 3 * H, 5 * H)];
    let refs: Vec<&BlockMeta> = across.iter().collect();
    assert!(split_by_range(&refs, 2 * H)
        .iter()
        .all(|w| w.iter().all(|m| m.ulid != id(1))));
}

// With only the first level configured there are no windows to fill (selectMetas needs two
// ranges).
#[test]
fn single_range_plans_no_windows() {
    let blocks = two_hour_blocks(1, 0, 10);
    let case = Case {
        ranges: &[H],
        ..Case::new(&blocks)
    };
    assert_eq!(case.plan(), Plan::Nothing);
}

// --- no-compact marks -----------------------------------------------------------------------

// Marked blocks stay in the window (so it still counts as full) but split it into runs; the
// first run of at least two unmarked blocks is planned.
#[test]
fn no_compact_mark_splits_a_window_into_runs() {
    let blocks = two_hour_blocks(1, 0, 10);
    let marked = |marked: &'static [u64]| Case {
        marked,
        ..Case::new(&blocks)
    };
    assert_eq!(marked(&[3]).plan(), compact(&[1, 2]));
    assert_eq!(marked(&[2]).plan(), compact(&[3, 4]));
    assert_eq!(marked(&[1]).plan(), compact(&[2, 3, 4]));
    // Runs of one block only: nothing, also not in larger ranges.
    assert_eq!(marked(&[2, 4]).plan(), Plan::Nothing);
    assert_eq!(marked(&[1, 2, 3, 4]).plan(), Plan::Nothing);
}

// A marked newest block is dropped from the window candidates like an unmarked one: it
// still marks the "fresh" end, so the three older blocks alone do not qualify.
#[test]
fn marked_newest_block_is_still_held_back() {
    let blocks = two_hour_blocks(1, 0, 8);
    let case = Case {
        marked: &[4],
        ..Case::new(&blocks)
    };
    assert_eq!(case.plan(), Plan::Nothing);
}

// --- vertical compaction --------------------------------------------------------------------

// With vertical compaction, the first run of overlapping unmarked blocks comes first. Without
// it, Thanos halts the group before planning (over all blocks, marked ones included), so the
// planner proposes nothing. A no-compact mark takes a block out of the overlap selection.
#[test]
fn overlapping_blocks_plan_only_with_vertical_compaction() {
    let blocks = [
        block(1, 0, 2 * H),
        block(2, H, 3 * H),
        block(3, 4 * H, 6 * H),
        block(4, 6 * H, 8 * H),
    ];
    let vertical = Case {
        vertical: true,
        ..Case::new(&blocks)
    };
    assert_eq!(vertical.plan(), compact(&[1, 2]));
    assert_eq!(Case::new(&blocks).plan(), Plan::Nothing);
    let refs: Vec<&BlockMeta> = blocks.iter().collect();
    assert_eq!(overlapping_blocks(&refs), vec![vec![id(1), id(2)]]);

    let marked = Case {
        marked: &[1],
        ..vertical
    };
    // Block 1 still shapes the windows, and [1, 2, 3] neither fills 8h nor ends before the
    // newest remaining block.
    assert_eq!(marked.plan(), Plan::Nothing);
    let marked_not_vertical = Case {
        marked: &[1],
        ..Case::new(&blocks)
    };
    assert_eq!(marked_not_vertical.plan(), Plan::Nothing);
}

// selectOverlappingMetas keeps extending the run while blocks start before the furthest end
// seen, even if they do not overlap their direct predecessor.
#[test]
fn overlap_selection_follows_the_furthest_end() {
    let blocks = [
        block(1, 0, 6 * H),
        block(2, 5 * H, 10 * H),
        block(3, 6 * H, 7 * H),
        block(4, 8 * H, 9 * H),
        block(5, 20 * H, 22 * H),
    ];
    let case = Case {
        vertical: true,
        ..Case::new(&blocks)
    };
    assert_eq!(case.plan(), compact(&[1, 2, 3, 4]));
}

// verticalCompactionDownsampleFilter: an overlapping plan of downsampled blocks asks for a
// `downsample-vertical-compaction` mark instead.
#[test]
fn overlapping_downsampled_blocks_are_marked() {
    let downsampled = |n: u64, min: i64, max: i64| {
        let mut m = block(n, min, max);
        m.thanos
            .as_mut()
            .expect("block() sets a Thanos section")
            .downsample
            .resolution = RESOLUTION_5M_MS;
        m
    };
    let blocks = [downsampled(1, 0, 2 * H), downsampled(2, H, 3 * H)];
    let case = Case {
        vertical: true,
        ..Case::new(&blocks)
    };
    let Plan::MarkNoCompact { block, reason, .. } = case.plan() else {
        panic!("expected a mark");
    };
    assert_eq!(
        (block, reason),
        (id(1), REASON_DOWNSAMPLE_VERTICAL_COMPACTION)
    );
}

// --- tombstones -----------------------------------------------------------------------------

// Tombstone rule: a held-back-excluded block spanning at least ranges[len/2] (8h with the
// default five levels) with numTombstones/(numSeries+1) > 5% is rewritten alone. The walk
// goes from the newest block backwards and stops at the first block that is too short.
#[test]
fn large_block_with_many_tombstones_is_rewritten_alone() {
    let tombstoned = |tombstones: u64, span_h: i64| {
        let mut m = block(1, 0, span_h * H);
        m.stats.num_series = 100;
        m.stats.num_tombstones = tombstones;
        m
    };
    let fresh = block(2, 8 * H, 10 * H);
    let plan_for = |big: BlockMeta| Case::new(&[big, fresh.clone()]).plan();
    assert_eq!(plan_for(tombstoned(6, 8)), compact(&[1])); // 6/101 > 5%
    assert_eq!(plan_for(tombstoned(5, 8)), Plan::Nothing); // 5/101 < 5%
    assert_eq!(plan_for(tombstoned(6, 6)), Plan::Nothing); // shorter than 8h
                                                           // Alone it is the newest block, held back.
    assert_eq!(Case::new(&[tombstoned(6, 8)]).plan(), Plan::Nothing);
    // A short block after it stops the walk before it.
    let blocks = [tombstoned(6, 8), fresh.clone(), block(3, 10 * H, 12 * H)];
    assert_eq!(Case::new(&blocks).plan(), Plan::Nothing);
    // With levels 1h and 2h the threshold is ranges[1] = 2h.
    let two_levels = [tombstoned(6, 2), block(2, 2 * H, 3 * H)];
    let short_ranges = Case {
        ranges: &[H, 2 * H],
        ..Case::new(&two_levels)
    };
    assert_eq!(short_ranges.plan(), compact(&[1]));
}

// --- index size -----------------------------------------------------------------------------

// largeTotalIndexSizeFilter: sum index sizes along the plan; once the sum reaches 85% of the
// limit, mark the largest index among the blocks summed so far; then plan again without it.
#[test]
fn index_size_guard_marks_largest_index_seen() {
    let sized = |sizes: [i64; 4]| -> Vec<BlockMeta> {
        let mut blocks: Vec<BlockMeta> = two_hour_blocks(1, 0, 8)
            .into_iter()
            .zip(sizes)
            .map(|(m, size)| with_index_size(m, size))
            .collect();
        blocks.push(block(5, 8 * H, 10 * H));
        blocks
    };
    let blocks = sized([30, 50, 10, 20]); // 30, 80, 90 >= 85: largest so far is block 2
    let case = Case {
        limit: Some(100),
        ..Case::new(&blocks)
    };
    let Plan::MarkNoCompact { block, reason, .. } = case.plan() else {
        panic!("expected a mark");
    };
    assert_eq!((block, reason), (id(2), REASON_INDEX_SIZE_EXCEEDING));
    let resolved = case.plan_with_marks();
    assert_eq!(resolved.marks.len(), 1);
    assert_eq!(resolved.compact, vec![id(3), id(4)]);

    // The largest of the prefix, not of the plan: 60, 90 >= 85 marks block 1 although block
    // 3 is larger.
    let blocks = sized([60, 30, 90, 0]);
    let case = Case {
        limit: Some(100),
        ..Case::new(&blocks)
    };
    assert!(matches!(case.plan(), Plan::MarkNoCompact { block, .. } if block == id(1)));

    // Under the limit, or no limit, or sizes unknown: the plan stands.
    let small = sized([10, 10, 10, 10]);
    let under = Case {
        limit: Some(100),
        ..Case::new(&small)
    };
    assert_eq!(under.plan(), compact(&[1, 2, 3, 4]));
    assert_eq!(Case::new(&blocks).plan(), compact(&[1, 2, 3, 4]));
    let unknown = two_hour_blocks(1, 0, 10);
    let unknown = Case {
        limit: Some(100),
        ..Case::new(&unknown)
    };
    assert_eq!(unknown.plan(), compact(&[1, 2, 3, 4]));
}

// --- determinism ----------------------------------------------------------------------------

// Same input, same plan; and the input order does not matter (the planner sorts a copy by
// minTime, then id, where Go's sort leaves ties unspecified).
#[test]
fn plans_are_deterministic_and_order_independent() {
    let mut blocks = two_hour_blocks(1, 0, 34);
    blocks.push(block(90, 0, 2 * H)); // overlaps block 1, same minTime
    let case = Case {
        vertical: true,
        limit: Some(1 << 20),
        ..Case::new(&blocks)
    };
    let first = case.plan_with_marks();
    assert_eq!(first, case.plan_with_marks());
    assert_eq!(first.compact, vec![id(1), id(90)]);
    let mut reversed = blocks.clone();
    reversed.reverse();
    let case_reversed = Case {
        blocks: &reversed,
        ..case
    };
    assert_eq!(first, case_reversed.plan_with_marks());
}
