//! The calculators on hand-built metas. Every expected number is derived in the test's
//! comments from Thanos' rules (`pkg/compact/compact.go`, `pkg/compact/planner.go`), not
//! taken from the code under test.

use std::collections::BTreeMap;

use super::*;
use crate::core::plan::compaction_ranges;
use crate::tsdb::meta::BlockStats;
use crate::units::{DAY_MS, HOUR_MS, MINUTE_MS};
/// 2025-01-02T00:00Z: a multiple of 14 days, so every window of every range starts here.
const T: i64 = 1_735_776_000_000;

fn id(n: u64) -> BlockId {
    BlockId::from_parts(1_735_000_000_000 + n, u128::from(n))
}

/// Level-1 block `n` of stream `cluster` at `resolution`, covering `[T+from_h, T+to_h)`.
fn block_at(n: u64, from_h: i64, to_h: i64, cluster: &str, resolution: i64) -> BlockMeta {
    BlockMeta {
        thanos: Some(ThanosMeta {
            labels: BTreeMap::from([("cluster".to_string(), cluster.to_string())]),
            downsample: Downsample { resolution },
            source: "sidecar".into(),
            ..ThanosMeta::default()
        }),
        ..BlockMeta::level1(id(n), T + from_h * HOUR_MS, T + to_h * HOUR_MS)
    }
}

/// `count` consecutive raw 2h blocks of `cluster` from `T`, numbered from `first`.
fn two_hour_blocks(first: u64, count: i64, cluster: &str) -> Vec<BlockMeta> {
    (0..count)
        .map(|i| block_at(first + i as u64, 2 * i, 2 * i + 2, cluster, 0))
        .collect()
}

/// The compaction backlog of `blocks` with Thanos' default ranges (1h, 2h, 8h, 2d, 14d).
fn compactions(blocks: &[BlockMeta], no_compact: &BTreeSet<BlockId>) -> (u64, u64) {
    let ranges = compaction_ranges(4).expect("level 4 exists");
    let b = compaction_backlog(blocks, no_compact, &ranges, synthetic_id(Millis(T)));
    (b.runs, b.blocks)
}

#[test]
fn a_day_and_a_bit_of_2h_blocks_is_six_8h_runs_then_one_2d_run() {
    // B0..B24 cover [0h, 50h). The planner holds the newest block (B24) back and only takes
    // a window that is full or ends by the start of the newest remaining block (B23: 46h).
    //  1-6. 8h windows [0,8) .. [40,48) hold 4 blocks each and are full: six runs of 4
    //       blocks; each leaves a synthetic 8h block S0..S5. (8h windows come first: the
    //       planner tries the smaller range before the larger one.)
    //    7. 8h: every window is a lone S block. 2d: [0,48) holds S0..S5 and is full: a run of
    //       6 synthetic blocks, leaving T0 [0,48).
    //    8. T0 and B24 are left: B24 is held back, T0 is alone: nothing.
    // Total: 7 runs, 6 x 4 + 6 = 30 blocks.
    let blocks = two_hour_blocks(0, 25, "eu-1");
    assert_eq!(compactions(&blocks, &BTreeSet::new()), (7, 30));
}

#[test]
fn a_window_waiting_for_its_last_block_is_not_counted() {
    // B0..B23 cover [0h, 48h): B23 is held back, so [40,48) holds B20..B22, spans 6h and
    // ends (46h) after the newest remaining block starts (B22: 44h). 8h runs: [0,8) .. [32,40),
    // 5 runs of 4. 2d: [0,48) holds S0..S4, B20..B22, neither full nor ended by 44h. 14d:
    // the same blocks, the same answer. Total: 5 runs, 20 blocks.
    let blocks = two_hour_blocks(0, 24, "eu-1");
    assert_eq!(compactions(&blocks, &BTreeSet::new()), (5, 20));
}

#[test]
fn planning_a_synthetic_block_drops_every_synthetic_block_of_the_group_as_in_thanos() {
    // B0..B49 cover [0h, 100h); B49 is held back, B48 starts at 96h.
    //  1-12. 8h windows [0,8) .. [88,96): twelve runs of 4 blocks, leaving S0..S11, all with
    //        Thanos' one synthetic id.
    //    13. 2d [0,48): S0..S5, full: a run of 6. Thanos removes the planned blocks by id,
    //        which removes S6..S11 as well; T0 [0,48) is added.
    //    14. T0, B48 (B49 held back): 2d [96,144) holds B48 alone; 14d [0,336) holds T0 and
    //        B48, not full, ends at 98h after B48 starts: nothing.
    // Total: 13 runs, 12 x 4 + 6 = 54 blocks. (Had S6..S11 stayed, [48,96) would have been a
    // 14th run of 6: 60 blocks. Thanos' gauges read 13 and 54.)
    let blocks = two_hour_blocks(0, 50, "eu-1");
    assert_eq!(compactions(&blocks, &BTreeSet::new()), (13, 54));
}

#[test]
fn groups_add_up_and_a_group_of_one_block_is_not_planned() {
    // eu-1: 25 blocks, 7 runs and 30 blocks (first test). us-1: B0..B11, B11 held back,
    // B10 starts at 20h: 8h runs [0,8) and [8,16); [16,24) holds B8..B10 (6h, ends 22h > 20h);
    // 2 runs, 8 blocks. The 5m group of eu-1 holds one block with many tombstones that the
    // tombstone rule would take, but Thanos skips groups of one block: nothing.
    let mut blocks = two_hour_blocks(0, 25, "eu-1");
    blocks.extend(two_hour_blocks(100, 12, "us-1"));
    let mut lone = block_at(200, 0, 48, "eu-1", RESOLUTION_5M_MS);
    lone.stats = BlockStats {
        num_series: 10,
        num_tombstones: 10,
        ..BlockStats::default()
    };
    blocks.push(lone);
    assert_eq!(compactions(&blocks, &BTreeSet::new()), (7 + 2, 30 + 8));
}

#[test]
fn no_compact_marked_blocks_split_their_window() {
    // B0..B24 as in the first test, B1 no-compact-marked. The planner takes the first run of
    // two or more unmarked blocks of a qualifying window.
    //    1. 8h [0,8): B0 | B1 marked | B2 B3: a run of 2, leaving S [4,8).
    //  2-6. 8h [8,16) .. [40,48): five runs of 4.
    //    7. 8h [0,8) holds B0, B1, S: runs of one only. 2d [0,48): B0 | B1 | S, S1..S5: a run
    //       of 6, leaving T [4,48).
    //    8. B0, B1, T, B24 (held back): 8h [0,8) holds B0, B1 (T crosses its window); 2d
    //       [0,48) holds B0, B1, T; neither has a run of two unmarked blocks. 14d [0,336)
    //       ends at 48h, after T starts (4h): nothing.
    // Total: 7 runs, 2 + 5 x 4 + 6 = 28 blocks.
    let blocks = two_hour_blocks(0, 25, "eu-1");
    let marked = BTreeSet::from([id(1)]);
    assert_eq!(compactions(&blocks, &marked), (7, 28));
}

#[test]
fn overlaps_are_planned_even_without_vertical_compaction_and_tombstones_once() {
    // Thanos' bare planner takes overlapping blocks first (the halt is in the group, not in
    // the planner): A and A2 both cover [0,2): a run of 2, leaving S [0,2). Then S, B [2,4),
    // C [4,6): C held back; 8h [0,8) holds S and B, spans 4h and ends (4h) after B starts
    // (2h): nothing. Total: 1 run, 2 blocks.
    let overlapping = vec![
        block_at(1, 0, 2, "eu-1", 0),
        block_at(2, 0, 2, "eu-1", 0),
        block_at(3, 2, 4, "eu-1", 0),
        block_at(4, 4, 6, "eu-1", 0),
    ];
    assert_eq!(compactions(&overlapping, &BTreeSet::new()), (1, 2));
    // X [0,8) has 10 tombstones for 100 series (> 5%) and spans the middle range (8h); Y
    // [8,10) is held back. No window has two blocks, so the tombstone rule takes X alone. Its
    // synthetic replacement has no stats, hence no tombstones: nothing more. 1 run, 1 block.
    let mut x = block_at(1, 0, 8, "eu-1", 0);
    x.stats = BlockStats {
        num_series: 100,
        num_tombstones: 10,
        ..BlockStats::default()
    };
    let tombstoned = vec![x, block_at(2, 8, 10, "eu-1", 0)];
    assert_eq!(compactions(&tombstoned, &BTreeSet::new()), (1, 1));
}

#[test]
fn the_synthetic_id_is_thanos_unix_seconds_without_entropy() {
    let id = synthetic_id(Millis(1_735_776_000_999));
    assert_eq!(id.timestamp_ms(), 1_735_776_000);
    assert_eq!(id, BlockId::from_parts(1_735_776_000, 0));
    assert_eq!(synthetic_id(Millis(-5)), BlockId::from_parts(0, 0));
}

/// A block of `resolution` covering `[T+from_h, T+to_h)` with these sources.
fn with_sources(n: u64, from_h: i64, to_h: i64, resolution: i64, sources: &[u64]) -> BlockMeta {
    let mut m = block_at(n, from_h, to_h, "eu-1", resolution);
    m.compaction.sources = sources.iter().map(|s| id(*s)).collect();
    m
}

#[test]
fn downsampling_counts_long_blocks_whose_sources_lack_the_next_resolution() {
    let blocks = [
        // Raw, 48h, source 1 covered by the 5m block 10: not counted.
        with_sources(1, 0, 48, 0, &[1]),
        // Raw, exactly 40h, source 2 not covered: counted.
        with_sources(2, 48, 88, 0, &[2]),
        // Raw, 39h: too short.
        with_sources(3, 88, 127, 0, &[3]),
        // Raw, 48h, no sources: Thanos finds none missing, so not counted.
        with_sources(4, 200, 248, 0, &[]),
        // 5m, 48h, covering 1: too short for 1h.
        with_sources(10, 0, 48, RESOLUTION_5M_MS, &[1]),
        // 5m, 14d, sources 20 and 21; the 1h block 30 covers only 20: counted.
        with_sources(11, 0, 14 * 24, RESOLUTION_5M_MS, &[20, 21]),
        // 5m, exactly 10d, sources covered by the 1h block 30: not counted.
        with_sources(12, 0, 10 * 24, RESOLUTION_5M_MS, &[20]),
        // 1h blocks are never downsampled.
        with_sources(30, 0, 14 * 24, RESOLUTION_1H_MS, &[20]),
    ];
    assert_eq!(downsample_backlog(&blocks), Ok(2));
    // Thanos' calculator fails on a resolution other than raw, 5m and 1h.
    let odd = [
        with_sources(40, 0, 48, 0, &[40]),
        with_sources(41, 0, 2, MINUTE_MS, &[41]),
    ];
    assert_eq!(
        downsample_backlog(&odd),
        Err(UnexpectedResolution {
            block: id(41),
            resolution: MINUTE_MS
        })
    );
}

#[test]
fn retention_counts_blocks_whose_end_in_whole_seconds_plus_retention_is_past() {
    let now = Millis(T + 40 * DAY_MS);
    let retention_ms = [10 * DAY_MS, 0, 30 * DAY_MS];
    let raw_ending = |n: u64, end_ms: i64| {
        let mut m = block_at(n, 0, 2, "eu-1", 0);
        m.max_time = end_ms;
        m
    };
    let mut hourly = block_at(5, 0, 5 * 24, "eu-1", RESOLUTION_1H_MS);
    hourly.max_time = T + 5 * DAY_MS;
    let blocks = [
        // Raw: 29d + 10d < 40d: past.
        raw_ending(1, T + 29 * DAY_MS),
        // Raw: ends exactly 10d before now: not past at now (Thanos' time.After is strict),
        // past 300ms later.
        raw_ending(2, T + 30 * DAY_MS),
        // Raw: ends 500ms after block 2, but Thanos cuts the end to whole seconds first: past
        // 300ms after now like block 2 (by its exact end it would not be before now+501ms).
        raw_ending(3, T + 30 * DAY_MS + 500),
        // 5m: kept forever, however old.
        block_at(4, 0, 2, "eu-1", RESOLUTION_5M_MS),
        // 1h: 5d + 30d < 40d: past.
        hourly,
        // A resolution Thanos has no retention for: kept.
        block_at(6, 0, 2, "eu-1", MINUTE_MS),
    ];
    // Blocks 1 and 5, then also 2 and 3.
    assert_eq!(retention_backlog(&blocks, retention_ms, now), 2);
    assert_eq!(retention_backlog(&blocks, retention_ms, now.plus(300)), 4);
    assert_eq!(retention_backlog(&blocks, [0; 3], now.plus(300)), 0);
}

#[test]
fn backlog_reads_the_visible_blocks_and_skips_downsampling_when_off() {
    let mut view = BucketView::default();
    for m in two_hour_blocks(0, 25, "eu-1") {
        view.blocks.insert(m.ulid, m);
    }
    let long = with_sources(100, 100, 148, 0, &[100]);
    view.blocks.insert(long.ulid, long);
    let ranges = compaction_ranges(4).expect("level 4 exists");
    let input = ProgressInput {
        view: &view,
        ranges: &ranges,
        // Every block ends by T+148h; 200h later all are past a 40h retention.
        retention_ms: [40 * HOUR_MS, 0, 0],
        downsampling: true,
        now_wall: Millis(T + 200 * HOUR_MS),
    };
    // Block 100 [100h,148h) joins eu-1's 2h blocks B0..B24 as the newest block, held back
    // instead of B24, which stays alone in its 8h window [48,56) and ends (50h) after it
    // starts (48h) in every larger window: still the first test's 7 runs and 30 blocks.
    // Downsampling: only block 100 spans 40h. Retention: all 26 blocks end by 148h + 40h.
    let expected = Backlog {
        compaction: CompactionBacklog {
            runs: 7,
            blocks: 30,
        },
        downsample_blocks: Some(1),
        deletion_blocks: 26,
    };
    assert_eq!(backlog(&input), expected);
    let off = ProgressInput {
        downsampling: false,
        ..input
    };
    assert_eq!(backlog(&off).downsample_blocks, None);
}
