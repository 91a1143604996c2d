//! The oracle's rules on small layouts, then the oracle against the production planner on many
//! generated layouts. The cross-check is the only code that calls the planner from the
//! checker's side: it tests the oracle, it does not judge the product.

use std::collections::BTreeSet;

use compactd::core::plan::{group_blocks, overlapping_blocks, plan, Plan, PlanInput};
use compactd::rng::Rng;
use compactd::tsdb::meta::{Downsample, ThanosMeta};

use super::*;

const HOUR_MS: i64 = 3_600_000;
/// The ranges the simulation compacts with (`compaction_ranges(3)`): 1h, 2h, 8h, 2d.
const SIM_RANGES_MS: [i64; 4] = [HOUR_MS, 2 * HOUR_MS, 8 * HOUR_MS, 48 * HOUR_MS];
/// Around the simulation's source blocks (2025), aligned on 2d.
const SIM_BASE_MS: i64 = 1_735_689_600_000 / (48 * HOUR_MS) * (48 * HOUR_MS);
/// Layouts the cross-check generates.
const LAYOUTS: u64 = 20_000;

fn block(n: u128, min_h: i64, max_h: i64) -> BlockMeta {
    block_ms(n, min_h * HOUR_MS, max_h * HOUR_MS)
}

fn block_ms(n: u128, min_time: i64, max_time: i64) -> BlockMeta {
    let mut m = BlockMeta::level1(
        BlockId::from_parts(1_735_689_600_000, n),
        min_time,
        max_time,
    );
    m.thanos = Some(ThanosMeta {
        labels: [("cluster".to_string(), "c0".to_string())].into(),
        ..ThanosMeta::default()
    });
    m
}

fn work(blocks: &[BlockMeta], vertical: bool) -> Option<Work> {
    let refs: Vec<&BlockMeta> = blocks.iter().collect();
    work_left(&refs, &SIM_RANGES_MS, vertical)
}

#[test]
fn groups_split_by_resolution_and_labels() {
    let a = block(1, 0, 2);
    let mut b = block(2, 0, 2);
    b.thanos.as_mut().expect("thanos").downsample = Downsample {
        resolution: 300_000,
    };
    let mut c = block(3, 0, 2);
    c.thanos.as_mut().expect("thanos").labels = [("cluster".into(), "c1".into())].into();
    let mut d = block(4, 2, 4);
    d.thanos = None;
    let e = block(5, 2, 4);
    let g = groups([&a, &b, &c, &d, &e]);
    let named: Vec<String> = g.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        named,
        [
            "0@{}",
            "0@{cluster=\"c0\"}",
            "0@{cluster=\"c1\"}",
            "300000@{cluster=\"c0\"}"
        ]
    );
    let sizes: Vec<usize> = g.values().map(Vec::len).collect();
    assert_eq!(sizes, [1, 2, 1, 1]);
}

#[test]
fn half_open_ranges_touching_do_not_overlap() {
    let (a, b, c) = (
        block(1, 0, 2),
        block(2, 2, 4),
        block_ms(3, 2 * HOUR_MS - 1, 3 * HOUR_MS),
    );
    assert!(!overlap(&a, &b));
    assert!(overlap(&a, &c));
    assert!(overlap(&c, &b));
    assert_eq!(overlapping_pairs(&[&a, &b, &c]).len(), 2);
}

#[test]
fn a_window_is_merged_once_a_block_other_than_the_newest_starts_after_it() {
    // [0,2h) [2h,4h) [4h,6h) in the 8h window [0,8h): still being filled.
    let mut blocks = vec![block(1, 0, 2), block(2, 2, 4), block(3, 4, 6)];
    assert_eq!(work(&blocks, false), None);
    // A newest block past the window is held back: the window may still be filled.
    blocks.push(block(4, 8, 10));
    assert_eq!(work(&blocks, false), None);
    // Once a block that is not the newest starts at or after the window's blocks end, merge.
    blocks.push(block(5, 10, 12));
    let window = Work::Window {
        range_ms: 8 * HOUR_MS,
        start_ms: 0,
        blocks: 3,
    };
    assert_eq!(work(&blocks, false), Some(window));
}

#[test]
fn a_full_window_is_merged_at_once_and_a_failed_block_keeps_it_as_it_is() {
    let mut blocks = vec![
        block(1, 0, 2),
        block(2, 2, 4),
        block(3, 4, 6),
        block(4, 6, 8),
        block(5, 8, 10),
    ];
    let window = Work::Window {
        range_ms: 8 * HOUR_MS,
        start_ms: 0,
        blocks: 4,
    };
    assert_eq!(work(&blocks, false), Some(window));
    blocks[1].compaction.failed = true;
    assert_eq!(work(&blocks, false), None);
}

#[test]
fn a_block_crossing_its_window_belongs_to_no_window() {
    // [6h,10h) crosses the 8h window's end; [0,2h) and [2h,4h) stay alone in [0,8h).
    let blocks = vec![
        block(1, 0, 2),
        block(2, 2, 4),
        block(3, 6, 10),
        block(4, 10, 12),
    ];
    // h = 6h: the [0,8h) window's blocks end at 4h, before it.
    assert!(matches!(work(&blocks, false), Some(Work::Window { .. })));
    let without_first = &blocks[1..];
    assert_eq!(work(without_first, false), None);
}

#[test]
fn overlaps_are_work_only_with_vertical_compaction() {
    let blocks = vec![block(1, 0, 2), block(2, 1, 3), block(3, 4, 6)];
    assert_eq!(work(&blocks, false), None, "Thanos halts the group");
    assert_eq!(
        work(&blocks, true),
        Some(Work::Overlap(blocks[0].ulid, blocks[1].ulid))
    );
}

#[test]
fn tombstones_are_rewritten_only_in_a_tail_of_large_blocks() {
    let mut blocks = vec![
        block(1, 0, 48),
        block(2, 48, 56),
        block(3, 56, 58),
        block(4, 96, 98),
    ];
    blocks[0].stats.num_series = 19;
    blocks[0].stats.num_tombstones = 2; // 2/20 > 5%
    assert_eq!(work(&blocks, false), None, "the 2h block stops the walk");
    blocks.remove(2);
    assert_eq!(work(&blocks, false), Some(Work::Tombstones(blocks[0].ulid)));
    blocks[0].stats.num_tombstones = 1; // 1/20 is not over 5%
    assert_eq!(work(&blocks, false), None);
}

#[test]
fn an_overlap_report_names_a_few_pairs_and_counts_them_all() {
    let blocks: Vec<BlockMeta> = (0..5).map(|n| block(n, 0, 2)).collect();
    let refs: Vec<&BlockMeta> = blocks.iter().collect();
    let pairs = overlapping_pairs(&refs);
    assert_eq!(pairs.len(), 10);
    let text = describe_overlaps(&group_of(&blocks[0]), &pairs);
    assert!(
        text.starts_with("group 0@{cluster=\"c0\"}: 10 pairs of blocks overlap: "),
        "{text}"
    );
    assert!(text.ends_with("(and 7 more)"), "{text}");
    assert_eq!(text.matches(" and ").count(), PAIRS_SHOWN_MAX, "{text}");
}

/// One group's blocks as the simulation makes them: a stream of 2h blocks with gaps (the
/// sidecar's uploads), some runs of which were merged within their 8h or 2d window (earlier
/// compactions); now and then a merged block whose sources are still visible (a compaction
/// whose sources are not yet deleted) or a stray overlapping block.
fn sim_group(rng: &mut Rng, next_id: &mut u128, labels: &str) -> Vec<BlockMeta> {
    let slot_ms = 2 * HOUR_MS;
    let start = SIM_BASE_MS + slot_ms * rng.below(30) as i64;
    let slots = 1 + rng.below(40) as i64;
    let mut spans: Vec<(i64, i64)> = (0..slots)
        .filter(|_| !rng.chance(0.15))
        .map(|i| (start + i * slot_ms, start + (i + 1) * slot_ms))
        .collect();
    let mut leftovers = Vec::new();
    for _ in 0..rng.below(8) {
        let range = if rng.chance(0.5) {
            SIM_RANGES_MS[2]
        } else {
            SIM_RANGES_MS[3]
        };
        let Some(&(pick, _)) = spans.get(rng.below(spans.len().max(1) as u64) as usize) else {
            break;
        };
        let window = pick.div_euclid(range) * range;
        let inside: Vec<usize> = (0..spans.len())
            .filter(|i| window <= spans[*i].0 && spans[*i].1 <= window + range)
            .collect();
        if inside.len() < 2 {
            continue;
        }
        let from = rng.below(inside.len() as u64 - 1) as usize;
        let to = from + 1 + rng.below((inside.len() - from - 1) as u64) as usize;
        let (lo, hi) = (inside[from], inside[to]);
        let merged = (spans[lo].0, spans[hi].1);
        let removed: Vec<(i64, i64)> = spans.drain(lo..=hi).collect();
        spans.insert(lo, merged);
        if rng.chance(0.05) {
            leftovers.push(removed[0]);
        }
    }
    spans.extend(leftovers);
    if rng.chance(0.03) {
        let at = start + rng.below((slots * slot_ms) as u64) as i64;
        spans.push((at, at + 1 + rng.below(slot_ms as u64) as i64));
    }
    spans
        .into_iter()
        .map(|(min, max)| meta(next_id, min, max, labels, 0))
        .collect()
}

/// One group's blocks outside what the simulation makes: arbitrary ranges on a 30-minute or
/// a 1 ms grid, negative times, overlaps, failed compactions, tombstones.
fn wild_group(rng: &mut Rng, next_id: &mut u128, labels: &str) -> Vec<BlockMeta> {
    let grid_ms = if rng.chance(0.7) { HOUR_MS / 2 } else { 1 };
    let base = if rng.chance(0.2) {
        -50 * HOUR_MS
    } else {
        SIM_BASE_MS
    };
    let lengths_ms = [HOUR_MS, 2 * HOUR_MS, 4 * HOUR_MS, 8 * HOUR_MS, 48 * HOUR_MS];
    let mut at = base + grid_ms * rng.below(100) as i64;
    let mut out = Vec::new();
    for _ in 0..rng.below(12) {
        let length = if grid_ms == 1 || rng.chance(0.2) {
            1 + rng.below(20 * HOUR_MS as u64) as i64
        } else {
            lengths_ms[rng.below(lengths_ms.len() as u64) as usize]
        };
        let resolution = if rng.chance(0.1) { 300_000 } else { 0 };
        let mut m = meta(next_id, at, at + length, labels, resolution);
        m.compaction.failed = rng.chance(0.05);
        if rng.chance(0.2) {
            m.stats.num_series = rng.below(60);
            m.stats.num_tombstones = rng.below(6);
        }
        out.push(m);
        // Mostly after the block, now and then a gap, an overlap or an earlier start.
        at += match rng.below(10) {
            0 => -(grid_ms * rng.below(8) as i64),
            1 => grid_ms * rng.below(40) as i64,
            _ => length,
        };
    }
    out
}

fn meta(next_id: &mut u128, min: i64, max: i64, labels: &str, resolution: i64) -> BlockMeta {
    *next_id += 1;
    let mut m = BlockMeta::level1(BlockId::from_parts(1_735_689_600_000, *next_id), min, max);
    if !labels.is_empty() {
        m.thanos = Some(ThanosMeta {
            labels: [("cluster".to_string(), labels.to_string())].into(),
            downsample: Downsample { resolution },
            ..ThanosMeta::default()
        });
    }
    m
}

/// What the cross-check saw, so it can insist on having seen every case.
#[derive(Debug, Default)]
struct Seen {
    finished: usize,
    overlaps: usize,
    windows: usize,
    tombstones: usize,
    halted: usize,
}

fn ids(blocks: &[&BlockMeta]) -> Vec<BlockId> {
    blocks.iter().map(|m| m.ulid).collect()
}

/// Compares the oracle with the production planner on one layout.
fn cross_check(layout: &[BlockMeta], ranges: &[i64], vertical: bool, seen: &mut Seen, at: &str) {
    let mine = groups(layout.iter());
    let theirs = group_blocks(layout.iter());
    let mine_ids: BTreeSet<Vec<BlockId>> = mine.values().map(|g| ids(g)).collect();
    let theirs_ids: BTreeSet<Vec<BlockId>> = theirs.values().map(|g| ids(g)).collect();
    assert_eq!(mine_ids, theirs_ids, "{at}: grouping");
    for blocks in mine.values() {
        let pairs = overlapping_pairs(blocks);
        let paired: BTreeSet<BlockId> = pairs.iter().flat_map(|(a, b)| [a.ulid, b.ulid]).collect();
        let sets: BTreeSet<BlockId> = overlapping_blocks(blocks).into_iter().flatten().collect();
        assert_eq!(paired, sets, "{at}: overlapping blocks");
        let no_compact = BTreeSet::new();
        let input = PlanInput {
            blocks,
            no_compact: &no_compact,
            ranges,
            vertical,
            index_size_limit_bytes: None,
        };
        let planned = plan(&input);
        let work = work_left(blocks, ranges, vertical);
        assert_eq!(
            work.is_none(),
            planned == Plan::Nothing,
            "{at}: oracle {work:?}, planner {planned:?}, vertical {vertical}, ranges {ranges:?}, \
             blocks {:?}",
            blocks
                .iter()
                .map(|m| (m.min_time, m.max_time, m.compaction.failed))
                .collect::<Vec<_>>()
        );
        match work {
            None if !pairs.is_empty() => seen.halted += 1,
            None => seen.finished += 1,
            Some(Work::Overlap(..)) => seen.overlaps += 1,
            Some(Work::Window { .. }) => seen.windows += 1,
            Some(Work::Tombstones(_)) => seen.tombstones += 1,
        }
    }
}

#[test]
fn the_oracle_agrees_with_the_planner_on_every_generated_layout() {
    let range_sets: [&[i64]; 5] = [
        &SIM_RANGES_MS,
        &SIM_RANGES_MS[..1],
        &SIM_RANGES_MS[..3],
        &[
            HOUR_MS,
            2 * HOUR_MS,
            8 * HOUR_MS,
            48 * HOUR_MS,
            14 * 24 * HOUR_MS,
        ],
        &[2 * HOUR_MS, 6 * HOUR_MS, 24 * HOUR_MS],
    ];
    let (mut sim, mut wild) = (Seen::default(), Seen::default());
    for seed in 0..LAYOUTS {
        let mut rng = Rng::new(seed);
        let mut next_id = 0;
        let sim_like = seed % 2 == 0;
        let mut layout = Vec::new();
        for stream in 0..1 + rng.below(3) {
            let labels = if rng.chance(0.05) {
                String::new()
            } else {
                format!("c{stream}")
            };
            layout.extend(if sim_like {
                sim_group(&mut rng, &mut next_id, &labels)
            } else {
                wild_group(&mut rng, &mut next_id, &labels)
            });
        }
        let at = format!("layout {seed}");
        if sim_like {
            cross_check(&layout, &SIM_RANGES_MS, false, &mut sim, &at);
        } else {
            let ranges = range_sets[rng.below(range_sets.len() as u64) as usize];
            cross_check(&layout, ranges, rng.chance(0.5), &mut wild, &at);
        }
    }
    // Every outcome must have come up often, or the agreement says little.
    let minimum = 100;
    for (name, n) in [
        ("sim finished", sim.finished),
        ("sim windows", sim.windows),
        ("sim halted", sim.halted),
        ("wild finished", wild.finished),
        ("wild windows", wild.windows),
        ("wild overlaps", wild.overlaps),
        ("wild tombstones", wild.tombstones),
        ("wild halted", wild.halted),
    ] {
        assert!(
            n >= minimum,
            "{name}: {n} groups, fewer than {minimum}: {sim:?} {wild:?}"
        );
    }
}
