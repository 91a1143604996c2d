//! Which blocks a downsampling pass picks, and the passes in the cycle against the model
//! bucket ([`super::super::testing`]).

use super::super::testing::{block as stream_block, now, run, Model};
use super::super::{Cycle, EXIT_FAILED, EXIT_HALTED};
use super::*;
use crate::bucket::markers::{DeletionMark, NoDownsampleMark};
use crate::core::testing::cycle_config;
use crate::tsdb::meta::{Downsample, ThanosMeta};
use crate::units::{HOUR_MS, RESOLUTION_1H_MS, RESOLUTION_5M_MS};

fn block(n: u128, res: i64, hours: i64, sources: &[u128]) -> BlockMeta {
    let mut m = BlockMeta::level1(id(n), 0, hours * HOUR_MS);
    m.compaction.sources = sources.iter().map(|s| id(*s)).collect();
    m.thanos = Some(ThanosMeta {
        downsample: Downsample { resolution: res },
        ..ThanosMeta::default()
    });
    m
}

fn view(blocks: Vec<BlockMeta>) -> BucketView {
    BucketView {
        blocks: blocks.into_iter().map(|m| (m.ulid, m)).collect(),
        ..BucketView::default()
    }
}

fn picked(v: &BucketView) -> Vec<(BlockId, i64)> {
    downsample_candidates(v)
        .into_iter()
        .map(|c| (c.input.ulid, c.resolution_ms))
        .collect()
}

fn id(n: u128) -> BlockId {
    BlockId::from_parts(1, n)
}

#[test]
fn raw_blocks_of_40h_go_to_5m_and_5m_blocks_of_10d_go_to_1h() {
    let v = view(vec![
        block(1, 0, 48, &[1]),
        block(2, 0, 39, &[2]),
        block(3, RESOLUTION_5M_MS, 14 * 24, &[3]),
        block(4, RESOLUTION_5M_MS, 9 * 24, &[4]),
        block(5, RESOLUTION_1H_MS, 14 * 24, &[5]),
    ]);
    assert_eq!(
        picked(&v),
        vec![(id(1), RESOLUTION_5M_MS), (id(3), RESOLUTION_1H_MS)]
    );
}

#[test]
fn blocks_whose_sources_are_covered_at_the_next_level_are_skipped() {
    // Raw 1 (sources a, b) has a 5m block covering both; raw 2 (c, d) only half.
    let v = view(vec![
        block(1, 0, 48, &[10, 11]),
        block(2, 0, 48, &[12, 13]),
        block(3, RESOLUTION_5M_MS, 48, &[10, 11, 12]),
    ]);
    assert_eq!(picked(&v), vec![(id(2), RESOLUTION_5M_MS)]);
}

#[test]
fn marked_blocks_are_left_alone() {
    let mut v = view(vec![block(1, 0, 48, &[1]), block(2, 0, 48, &[2])]);
    v.no_downsample.insert(id(1));
    v.deletion_marks.insert(
        id(2),
        DeletionMark {
            id: id(2),
            version: 1,
            details: String::new(),
            deletion_time: 0,
        },
    );
    assert_eq!(picked(&v), vec![]);
}

fn downsampled(model: &Model, resolution: i64) -> Vec<BlockMeta> {
    model
        .visible()
        .into_iter()
        .filter(|m| m.thanos.as_ref().unwrap().downsample.resolution == resolution)
        .cloned()
        .collect()
}

fn with_resolution(mut m: BlockMeta, resolution: i64) -> BlockMeta {
    m.thanos.as_mut().unwrap().downsample.resolution = resolution;
    m
}

// After compaction: raw blocks of 40h+ go to 5m, 5m blocks of 10d+ to 1h, in one pass; blocks
// whose sources a coarser block covers already are skipped; the second pass finds the new 5m
// block too short for 1h. Sources are not marked.
#[test]
fn downsampling_follows_compaction_and_skips_covered_sources() {
    let mut model = Model::default();
    let raw = stream_block(1, 0, 48, "eu-1");
    let covered = stream_block(2, 48, 96, "eu-1");
    let covered_5m = with_resolution(stream_block(3, 48, 96, "eu-1"), RESOLUTION_5M_MS);
    let mut covered_5m = covered_5m;
    covered_5m.compaction.sources = covered.compaction.sources.clone();
    let long_5m = with_resolution(stream_block(4, 96, 96 + 14 * 24, "eu-1"), RESOLUTION_5M_MS);
    for m in [&raw, &covered, &covered_5m, &long_5m] {
        model.add(m.clone());
    }
    let mut cfg = cycle_config(false);
    cfg.downsampling = true;
    let mut cycle = Cycle::new(cfg, 7);
    let (code, outputs) = run(&mut cycle, &mut model, now(24 * 30));
    assert_eq!(code, Some(0));

    let new_5m: Vec<BlockMeta> = downsampled(&model, RESOLUTION_5M_MS)
        .into_iter()
        .filter(|m| m.compaction.sources == raw.compaction.sources)
        .collect();
    assert_eq!(new_5m.len(), 1, "the raw block was downsampled once");
    let t = new_5m[0].thanos.as_ref().unwrap();
    assert_eq!(t.source, "compactor");
    assert_eq!(t.labels, raw.thanos.as_ref().unwrap().labels);
    assert_eq!(
        (new_5m[0].min_time, new_5m[0].max_time),
        (raw.min_time, raw.max_time)
    );
    let hourly = downsampled(&model, RESOLUTION_1H_MS);
    assert_eq!(hourly.len(), 1);
    assert_eq!(hourly[0].compaction.sources, long_5m.compaction.sources);
    assert!(
        model.blocks.values().all(|b| b.deletion_mark.is_none()),
        "downsampling marks nothing"
    );
    let passes: Vec<u64> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::DownsamplePass { todo, .. }) => Some(*todo),
            _ => None,
        })
        .collect();
    assert_eq!(passes, vec![2, 0], "two passes: two jobs, then none");
    let log = model.log.join(" ");
    assert!(
        log.contains("sync upload-files put-meta upload-files put-meta sync sync"),
        "{log}"
    );
}

#[test]
fn no_downsample_marks_and_disabled_downsampling_leave_blocks_alone() {
    let mut model = Model::default();
    let raw = stream_block(1, 0, 48, "eu-1");
    model.add(raw.clone());
    model.blocks.get_mut(&raw.ulid).unwrap().no_downsample_mark = Some(NoDownsampleMark {
        id: raw.ulid,
        version: 1,
        details: String::new(),
        no_downsample_time: 0,
        reason: "manual".into(),
    });
    model.add(stream_block(2, 0, 48, "us-1"));
    let mut on = cycle_config(false);
    on.downsampling = true;
    let (code, _) = run(&mut Cycle::new(on, 7), &mut model, now(24 * 30));
    assert_eq!(code, Some(0));
    let made = downsampled(&model, RESOLUTION_5M_MS);
    assert_eq!(made.len(), 1, "only the unmarked block");
    assert_eq!(made[0].thanos.as_ref().unwrap().labels["cluster"], "us-1");

    let mut model = Model::default();
    model.add(stream_block(2, 0, 48, "us-1"));
    let (code, _) = run(
        &mut Cycle::new(cycle_config(false), 7),
        &mut model,
        now(24 * 30),
    );
    assert_eq!(code, Some(0));
    assert!(downsampled(&model, RESOLUTION_5M_MS).is_empty());
}

// A downsampling error on bad input halts (exit 2 one-shot); a retryable one ends the
// iteration (exit 1) — nothing is uploaded either way.
#[test]
fn downsampling_errors_halt_or_retry() {
    let why = "chunk 12 of series {a=\"b\"}: bad checksum";
    for (error, want) in [
        (JobError::bad_input(why), EXIT_HALTED),
        (JobError::io(why), EXIT_FAILED),
    ] {
        let mut model = Model::default();
        model.add(stream_block(1, 0, 48, "eu-1"));
        model.compaction_error = Some(error);
        let mut on = cycle_config(false);
        on.downsampling = true;
        let (code, outputs) = run(&mut Cycle::new(on, 7), &mut model, now(24 * 30));
        assert_eq!(code, Some(want));
        assert!(!model.log.iter().any(|l| l == "put-meta"));
        assert!(outputs.iter().any(|o| matches!(
            o,
            Output::Event(Event::Downsampled { result: Err(e), .. }) if e.contains("bad checksum")
        )));
    }
}
