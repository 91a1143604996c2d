use super::*;
use crate::core::testing::{synced, view_config, T0_MS};
use crate::core::types::SyncedBlock;
use crate::tsdb::meta::{BlockStats, Compaction, ThanosMeta, META_VERSION};
use crate::units::{HOUR_MS, MINUTE_MS};

fn cfg() -> ViewConfig {
    ViewConfig {
        delete_delay_ms: 48 * HOUR_MS,
        ..view_config()
    }
}

fn id(n: u128) -> BlockId {
    BlockId::from_parts(T0_MS as u64, n)
}

fn meta(n: u128, sources: &[u128], source: &str, labels: &[(&str, &str)]) -> BlockMeta {
    BlockMeta {
        ulid: id(n),
        min_time: T0_MS,
        max_time: T0_MS + 2 * HOUR_MS,
        stats: BlockStats::default(),
        compaction: Compaction {
            level: 1,
            sources: sources.iter().map(|s| id(*s)).collect(),
            ..Compaction::default()
        },
        version: META_VERSION,
        thanos: Some(ThanosMeta {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            source: source.into(),
            ..ThanosMeta::default()
        }),
    }
}

fn sync_of(blocks: Vec<(BlockId, SyncedBlock)>) -> SyncResult {
    SyncResult {
        blocks: blocks.into_iter().collect(),
    }
}

fn now(h: i64) -> Now {
    Now {
        mono: Millis(0),
        wall: Millis(T0_MS + h * HOUR_MS),
    }
}

#[test]
fn partial_blocks_and_states() {
    let s = sync_of(vec![
        (
            id(1),
            synced(MetaState::Ok(Box::new(meta(1, &[1], "sidecar", &[])))),
        ),
        (id(2), synced(MetaState::Missing)),
        (id(3), synced(MetaState::Corrupt("bad json".into()))),
    ]);
    let v = build_view(&s, now(10), &cfg(), &BTreeMap::new());
    assert_eq!(v.blocks.keys().copied().collect::<Vec<_>>(), vec![id(1)]);
    assert_eq!(v.partial.len(), 2);
    assert_eq!(v.states["no-meta-json"], 1);
    assert_eq!(v.states["corrupted-meta-json"], 1);
    assert_eq!(v.states["loaded"], 1);
    assert!(v.problems.iter().any(|p| p.contains("bad json")));
}

#[test]
fn consistency_delay_spares_compactor_blocks() {
    // ULID time is T0_MS; at T0_MS+10min a sidecar block is too fresh, a compactor block is not.
    let s = sync_of(vec![
        (
            id(1),
            synced(MetaState::Ok(Box::new(meta(1, &[1], "sidecar", &[])))),
        ),
        (
            id(2),
            synced(MetaState::Ok(Box::new(meta(2, &[2], "compactor", &[])))),
        ),
    ]);
    let early = Now {
        mono: Millis(0),
        wall: Millis(T0_MS + 10 * MINUTE_MS),
    };
    let v = build_view(&s, early, &cfg(), &BTreeMap::new());
    assert_eq!(v.blocks.keys().copied().collect::<Vec<_>>(), vec![id(2)]);
    assert_eq!(v.states["too-fresh"], 1);
}

#[test]
fn upload_time_overrides_ulid_time() {
    let mut m = meta(1, &[1], "sidecar", &[]);
    m.thanos.as_mut().unwrap().upload_time = crate::timefmt::format_rfc3339_ms(T0_MS + 5 * HOUR_MS);
    let s = sync_of(vec![(id(1), synced(MetaState::Ok(Box::new(m))))]);
    assert!(
        build_view(&s, now(5), &cfg(), &BTreeMap::new())
            .blocks
            .is_empty(),
        "uploaded just now"
    );
    assert_eq!(
        build_view(&s, now(6), &cfg(), &BTreeMap::new())
            .blocks
            .len(),
        1
    );
}

#[test]
fn deletion_marks_hide_after_half_the_delete_delay() {
    let mut b = synced(MetaState::Ok(Box::new(meta(1, &[1], "sidecar", &[]))));
    b.deletion_mark = Some(DeletionMark {
        id: id(1),
        version: 1,
        details: "x".into(),
        deletion_time: (T0_MS + HOUR_MS) / 1000,
    });
    let s = sync_of(vec![(id(1), b)]);
    assert_eq!(
        build_view(&s, now(20), &cfg(), &BTreeMap::new())
            .blocks
            .len(),
        1,
        "marked 19h ago: still visible"
    );
    let v = build_view(&s, now(30), &cfg(), &BTreeMap::new());
    assert!(v.blocks.is_empty(), "marked 29h ago: hidden");
    assert_eq!(v.states["marked-for-deletion"], 1);
    assert!(v.deletion_marks.contains_key(&id(1)));
}

#[test]
fn compacted_block_hides_its_sources_per_resolution() {
    let s = sync_of(vec![
        (
            id(1),
            synced(MetaState::Ok(Box::new(meta(1, &[1], "sidecar", &[])))),
        ),
        (
            id(2),
            synced(MetaState::Ok(Box::new(meta(2, &[2], "sidecar", &[])))),
        ),
        (
            id(3),
            synced(MetaState::Ok(Box::new(meta(3, &[1, 2], "compactor", &[])))),
        ),
        // Same sources as 3, higher id: a duplicate compaction; the lower id is kept.
        (
            id(4),
            synced(MetaState::Ok(Box::new(meta(4, &[1, 2], "compactor", &[])))),
        ),
        (
            id(5),
            synced(MetaState::Ok(Box::new(meta(5, &[], "sidecar", &[])))),
        ),
    ]);
    let v = build_view(&s, now(10), &cfg(), &BTreeMap::new());
    assert_eq!(
        v.blocks.keys().copied().collect::<Vec<_>>(),
        vec![id(3), id(5)]
    );
    assert_eq!(v.duplicates, [id(1), id(2), id(4)].into_iter().collect());
    assert_eq!(v.states["duplicate"], 3);
}

#[test]
fn replica_labels_are_removed_before_grouping() {
    let mut c = cfg();
    c.replica_labels = vec!["replica".into()];
    let s = sync_of(vec![
        (
            id(1),
            synced(MetaState::Ok(Box::new(meta(
                1,
                &[1],
                "sidecar",
                &[("cluster", "eu"), ("replica", "a")],
            )))),
        ),
        (
            id(2),
            synced(MetaState::Ok(Box::new(meta(
                2,
                &[2],
                "sidecar",
                &[("replica", "b")],
            )))),
        ),
    ]);
    let v = build_view(&s, now(10), &c, &BTreeMap::new());
    let labels = |n| v.blocks[&id(n)].thanos.as_ref().unwrap().labels.clone();
    assert_eq!(
        labels(1).into_iter().collect::<Vec<_>>(),
        vec![("cluster".to_string(), "eu".to_string())]
    );
    assert_eq!(labels(2)["replica"], "deduped");
    assert_eq!(v.states["replica-label-removed"], 2);
}

#[test]
fn time_partition_and_determinism() {
    let mut c = cfg();
    c.min_time = T0_MS + 3 * HOUR_MS;
    let s = sync_of(vec![(
        id(1),
        synced(MetaState::Ok(Box::new(meta(1, &[1], "sidecar", &[])))),
    )]);
    let v = build_view(&s, now(10), &c, &BTreeMap::new());
    assert_eq!(v.states["time-excluded"], 1);
    assert_eq!(build_view(&s, now(10), &c, &BTreeMap::new()), v);
}

#[test]
fn label_selection_hides_other_shards_and_their_marks() {
    let mut c = cfg();
    c.replica_labels = vec!["replica".into()];
    // Python: md5 hashmod 2 of "eu-1;" is 1, of "eu-2;" is 0. With the replica label still
    // there, "eu-1;a" (1) and "eu-1;b" (0) would split one stream's replicas.
    c.selector_relabel = crate::relabel::selector::parse_selector(&format!(
        "- {{source_labels: [cluster, replica], target_label: __shard, modulus: 2, action: hashmod}}\n\
         - {{source_labels: [__shard], regex: 1, action: keep}}\n\
         - {{source_labels: [__block_id], regex: '{}', action: drop}}\n",
        id(4)
    ))
    .unwrap();
    let block = |n: u128, cluster: &str, replica: &str| {
        let labels = [("cluster", cluster), ("replica", replica)];
        synced(MetaState::Ok(Box::new(meta(n, &[n], "sidecar", &labels))))
    };
    let mut other_shard = block(3, "eu-2", "a");
    other_shard.deletion_mark = Some(DeletionMark {
        id: id(3),
        version: 1,
        details: "x".into(),
        deletion_time: T0_MS / 1000,
    });
    let s = sync_of(vec![
        (id(1), block(1, "eu-1", "a")),
        (id(2), block(2, "eu-1", "b")),
        (id(3), other_shard),
        (id(4), block(4, "eu-1", "a")),
    ]);
    let v = build_view(&s, now(10), &c, &BTreeMap::new());
    assert_eq!(
        v.blocks.keys().copied().collect::<Vec<_>>(),
        vec![id(1), id(2)]
    );
    assert_eq!(v.states["label-excluded"], 2);
    assert!(
        v.deletion_marks.is_empty(),
        "another shard's mark is not ours"
    );
    let labels = &v.blocks[&id(1)].thanos.as_ref().unwrap().labels;
    assert_eq!(
        labels.keys().collect::<Vec<_>>(),
        ["cluster"],
        "selection changes no meta"
    );
    c.selector_relabel.clear();
    let all = build_view(&s, now(10), &c, &BTreeMap::new());
    assert_eq!(all.blocks.len(), 4);
    assert!(all.deletion_marks.contains_key(&id(3)));
}

/// A bucket of two streams (eu with two replicas, us), two blocks of no stream (replica
/// labels only; no labels), two partial uploads (one marked) and a corrupt meta.json.
fn scoped_bucket() -> SyncResult {
    let ok = |n: u128, labels: &[(&str, &str)]| {
        synced(MetaState::Ok(Box::new(meta(n, &[n], "sidecar", labels))))
    };
    let marked = |mut b: SyncedBlock, n: u128| {
        b.deletion_mark = Some(DeletionMark {
            id: id(n),
            version: 1,
            details: "x".into(),
            deletion_time: T0_MS / 1000,
        });
        b
    };
    let mut us = ok(3, &[("cluster", "us"), ("replica", "a")]);
    us.marker_problems = vec!["block 3: unreadable no-compact-mark.json".into()];
    sync_of(vec![
        (id(1), ok(1, &[("cluster", "eu"), ("replica", "a")])),
        (
            id(2),
            marked(ok(2, &[("cluster", "eu"), ("replica", "b")]), 2),
        ),
        (id(3), us),
        (id(4), marked(ok(4, &[("replica", "a")]), 4)),
        (id(5), ok(5, &[])),
        (id(6), marked(synced(MetaState::Missing), 6)),
        (id(7), synced(MetaState::Corrupt("bad json".into()))),
        (id(8), synced(MetaState::Missing)),
    ])
}

fn scoped(scope: Scope) -> BucketView {
    let c = ViewConfig {
        replica_labels: vec!["replica".into()],
        scope,
        ..cfg()
    };
    build_view(&scoped_bucket(), now(10), &c, &BTreeMap::new())
}

fn stream_of(cluster: &str) -> StreamId {
    let labels = [("cluster".to_string(), cluster.to_string())].into();
    StreamId::of_labels(&labels, &[]).expect("a label is left")
}

fn ids(ns: &[u128]) -> Vec<BlockId> {
    ns.iter().map(|n| id(*n)).collect()
}

#[test]
fn each_scope_keeps_exactly_its_blocks_and_marks() {
    let eu = scoped(Scope::Stream(stream_of("eu")));
    assert_eq!(eu.blocks.keys().copied().collect::<Vec<_>>(), ids(&[1, 2]));
    assert_eq!(
        eu.deletion_marks.keys().copied().collect::<Vec<_>>(),
        ids(&[2])
    );
    assert!(
        eu.partial.is_empty(),
        "partial uploads are the bucket leader's"
    );
    assert_eq!(eu.states["scope-excluded"], 6);
    assert!(eu.problems.is_empty(), "{:?}", eu.problems);

    let us = scoped(Scope::Stream(stream_of("us")));
    assert_eq!(us.blocks.keys().copied().collect::<Vec<_>>(), ids(&[3]));
    assert!(us.deletion_marks.is_empty());
    assert_eq!(us.problems.len(), 1, "its own block's marker problem");

    let chores = scoped(Scope::BucketChores);
    assert_eq!(
        chores.blocks.keys().copied().collect::<Vec<_>>(),
        ids(&[4, 5])
    );
    let marks = chores.deletion_marks.keys().copied().collect::<Vec<_>>();
    assert_eq!(marks, ids(&[4, 6]), "its block's and the partial upload's");
    let partial = chores.partial.keys().copied().collect::<Vec<_>>();
    assert_eq!(partial, ids(&[6, 7, 8]));
    assert_eq!(chores.states["scope-excluded"], 3);
    assert!(chores.problems.iter().any(|p| p.contains("bad json")));

    let nobody = scoped(Scope::Stream(stream_of("asia")));
    assert!(nobody.blocks.is_empty() && nobody.deletion_marks.is_empty());
    assert_eq!(nobody.states["scope-excluded"], 8);

    let all = scoped(Scope::All);
    assert_eq!(all.blocks.len(), 5);
    assert!(
        !all.states.contains_key("scope-excluded"),
        "Thanos' states only"
    );
}

#[test]
fn the_scopes_of_a_bucket_split_the_whole_view() {
    let all = scoped(Scope::All);
    let parts = [
        scoped(Scope::Stream(stream_of("eu"))),
        scoped(Scope::Stream(stream_of("us"))),
        scoped(Scope::BucketChores),
    ];
    let mut union = BucketView::default();
    for part in &parts {
        for (id, m) in &part.blocks {
            assert!(union.blocks.insert(*id, m.clone()).is_none(), "overlap");
        }
        for (id, m) in &part.deletion_marks {
            assert!(union.deletion_marks.insert(*id, m.clone()).is_none());
        }
        for (id, p) in &part.partial {
            assert!(union.partial.insert(*id, p.clone()).is_none());
        }
        for (state, n) in part.states.iter().filter(|(s, _)| *s != "scope-excluded") {
            *union.states.entry(state.clone()).or_default() += n;
        }
    }
    assert_eq!(union.blocks, all.blocks);
    assert_eq!(union.deletion_marks, all.deletion_marks);
    assert_eq!(union.partial, all.partial);
    assert_eq!(union.states, all.states);
}

#[test]
fn the_scope_is_left_out_of_a_config_that_has_all_and_kept_otherwise() {
    let json = serde_json::to_string(&cfg()).unwrap();
    assert!(!json.contains("scope"), "{json}");
    assert_eq!(serde_json::from_str::<ViewConfig>(&json).unwrap(), cfg());
    for scope in [Scope::BucketChores, Scope::Stream(StreamId(u64::MAX))] {
        let c = ViewConfig { scope, ..cfg() };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"scope\""), "{json}");
        assert_eq!(serde_json::from_str::<ViewConfig>(&json).unwrap(), c);
    }
}
