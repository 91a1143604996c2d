//! Unit tests of `replicate`'s block selection and per-block plan.

use std::collections::BTreeMap;

use super::matchers::parse_matchers;
use super::plan::{plan_block, BlockObjects, BlockPlan};
use super::*;
use crate::bucket::markers::{DeletionMark, MARKER_VERSION};
use crate::core::types::{Millis, SyncedBlock};
use crate::tsdb::meta::{Downsample, ThanosMeta};

const H: i64 = 3_600_000;

fn id(n: u128) -> BlockId {
    BlockId::from_parts(1_735_689_600_000, n)
}

/// A block `n` over `[start h, end h)` with `labels`, `resolution` ms and `level`.
fn meta(
    n: u128,
    (start, end): (i64, i64),
    labels: &[(&str, &str)],
    res: i64,
    level: u32,
) -> BlockMeta {
    let mut m = BlockMeta::level1(id(n), start * H, end * H);
    m.compaction.level = level;
    if !labels.is_empty() {
        m.thanos = Some(ThanosMeta {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            downsample: Downsample { resolution: res },
            ..ThanosMeta::default()
        });
    }
    m
}

fn everything() -> Selection {
    Selection {
        resolutions: vec![0, 300_000, 3_600_000],
        levels: vec![1, 2, 3, 4],
        matchers: Vec::new(),
        ids: Vec::new(),
        min_time_ms: i64::MIN,
        max_time_ms: i64::MAX,
        ignore_marked_for_deletion: false,
    }
}

const EU: &[(&str, &str)] = &[("cluster", "eu-1")];

#[test]
fn defaults_select_every_thanos_block_but_those_without_labels() {
    let s = everything();
    assert_eq!(s.check(&meta(1, (0, 2), EU, 0, 1), false), Ok(()));
    assert_eq!(s.check(&meta(1, (0, 48), EU, 3_600_000, 4), true), Ok(()));
    assert_eq!(
        s.check(&meta(1, (0, 2), &[], 0, 1), false),
        Err(NotSelected::NoExternalLabels)
    );
}

#[test]
fn resolution_level_matcher_and_time_filters() {
    let s = Selection {
        resolutions: vec![0],
        levels: vec![1, 2],
        matchers: parse_matchers(r#"cluster=~"eu-.*""#).unwrap(),
        min_time_ms: 10 * H,
        max_time_ms: 20 * H,
        ..everything()
    };
    let ok = |m: &BlockMeta| s.check(m, false);
    assert_eq!(ok(&meta(1, (10, 12), EU, 0, 2)), Ok(()));
    assert_eq!(ok(&meta(1, (8, 10), EU, 0, 1)), Ok(()), "ends at min-time");
    assert_eq!(
        ok(&meta(1, (20, 22), EU, 0, 1)),
        Ok(()),
        "starts at max-time"
    );
    assert_eq!(
        ok(&meta(1, (0, 9), EU, 0, 1)),
        Err(NotSelected::OutsideTime)
    );
    assert_eq!(
        ok(&meta(1, (21, 22), EU, 0, 1)),
        Err(NotSelected::OutsideTime)
    );
    assert_eq!(
        ok(&meta(1, (10, 12), EU, 300_000, 1)),
        Err(NotSelected::Resolution(300_000))
    );
    assert_eq!(ok(&meta(1, (10, 12), EU, 0, 3)), Err(NotSelected::Level(3)));
    assert_eq!(
        ok(&meta(1, (10, 12), &[("cluster", "us-1")], 0, 1)),
        Err(NotSelected::LabelsDontMatch)
    );
}

#[test]
fn ids_override_matchers_resolution_and_level_but_not_time_or_marks() {
    let s = Selection {
        ids: vec![id(2)],
        resolutions: vec![0],
        levels: vec![1],
        matchers: parse_matchers("cluster=nowhere").unwrap(),
        ignore_marked_for_deletion: true,
        max_time_ms: 100 * H,
        ..everything()
    };
    assert_eq!(s.check(&meta(2, (0, 48), EU, 300_000, 4), false), Ok(()));
    assert_eq!(
        s.check(&meta(1, (0, 2), EU, 0, 1), false),
        Err(NotSelected::NotListed)
    );
    assert_eq!(
        s.check(&meta(2, (0, 2), EU, 0, 1), true),
        Err(NotSelected::MarkedForDeletion)
    );
    assert_eq!(
        s.check(&meta(2, (101, 102), EU, 0, 1), false),
        Err(NotSelected::OutsideTime)
    );
}

fn synced(m: Option<BlockMeta>, marked: bool) -> SyncedBlock {
    SyncedBlock {
        meta: m.map_or(MetaState::Missing, |m| MetaState::Ok(Box::new(m))),
        deletion_mark: marked.then(|| DeletionMark {
            id: id(0),
            version: MARKER_VERSION,
            details: String::new(),
            deletion_time: 0,
        }),
        no_compact_mark: None,
        no_downsample_mark: None,
        marker_problems: Vec::new(),
        newest_modified: Millis(0),
    }
}

#[test]
fn select_orders_by_min_time_and_notes_partial_blocks() {
    let mut sync = SyncResult::default();
    sync.blocks
        .insert(id(1), synced(Some(meta(1, (4, 6), EU, 0, 1)), false));
    sync.blocks
        .insert(id(2), synced(Some(meta(2, (0, 2), EU, 0, 1)), false));
    sync.blocks
        .insert(id(3), synced(Some(meta(3, (2, 4), EU, 0, 1)), true));
    sync.blocks.insert(id(4), synced(None, false));
    let s = Selection {
        ignore_marked_for_deletion: true,
        ..everything()
    };
    let got = s.select(&sync);
    let ids: Vec<BlockId> = got.blocks.iter().map(|m| m.ulid).collect();
    assert_eq!(ids, [id(2), id(1)]);
    assert_eq!(got.not_selected, [(id(3), NotSelected::MarkedForDeletion)]);
    assert_eq!(got.notes.len(), 1);
    assert!(got.notes[0].contains(&id(4).to_string()), "{:?}", got.notes);
    let all = everything().select(&sync);
    assert_eq!(
        all.blocks.len(),
        3,
        "marked blocks are replicated by default"
    );
}

fn objects(list: &[(&str, u64)]) -> BlockObjects {
    list.iter().map(|(p, s)| (p.to_string(), *s)).collect()
}

#[test]
fn plan_copies_chunks_then_index_and_skips_what_the_target_has() {
    let source = objects(&[
        ("index", 50),
        ("chunks/000002", 20),
        ("chunks/000001", 10),
        ("meta.json", 5),
        ("no-compact-mark.json", 3),
        ("deletion-mark.json", 3),
        ("tombstones", 9),
    ]);
    let none = BTreeMap::new();
    assert_eq!(
        plan_block(id(1), b"m", &source, None, &none),
        BlockPlan::Copy(vec![
            "chunks/000001".into(),
            "chunks/000002".into(),
            "tombstones".into(),
            "index".into()
        ])
    );
    // A partial copy without meta.json: present objects of the right size are kept.
    let partial = objects(&[("chunks/000001", 10), ("chunks/000002", 7)]);
    assert_eq!(
        plan_block(id(1), b"m", &source, None, &partial),
        BlockPlan::Copy(vec![
            "chunks/000002".into(),
            "tombstones".into(),
            "index".into()
        ])
    );
    let complete = objects(&[
        ("chunks/000001", 10),
        ("chunks/000002", 20),
        ("tombstones", 9),
        ("index", 50),
        ("meta.json", 5),
    ]);
    assert_eq!(
        plan_block(id(1), b"m", &source, Some(b"m"), &complete),
        BlockPlan::AlreadyReplicated
    );
}

#[test]
fn plan_reports_differing_metas_damaged_targets_and_sources_without_index() {
    let source = objects(&[("chunks/000001", 10), ("index", 50), ("meta.json", 5)]);
    let damaged = objects(&[("index", 50), ("meta.json", 5)]);
    let problem = |p: BlockPlan| match p {
        BlockPlan::Problem(line) => line,
        other => panic!("expected a problem, got {other:?}"),
    };
    let differs = problem(plan_block(id(1), b"m", &source, Some(b"x"), &damaged));
    assert!(differs.contains("differs") && differs.contains(&id(1).to_string()));
    let lacking = problem(plan_block(id(1), b"m", &source, Some(b"m"), &damaged));
    assert!(lacking.contains("chunks/000001"), "{lacking}");
    let no_index = objects(&[("chunks/000001", 10), ("meta.json", 5)]);
    let line = problem(plan_block(id(1), b"m", &no_index, None, &BTreeMap::new()));
    assert!(line.contains("no index"), "{line}");
}
