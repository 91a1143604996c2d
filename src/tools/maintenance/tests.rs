use super::*;
use crate::core::testing::synced;
use crate::tsdb::meta::BlockMeta;
use crate::units::HOUR_MS;

const NOW_MS: i64 = 1_800_000_000_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn id(n: u128) -> BlockId {
    BlockId::from_parts(1, n)
}

/// A bucket of blocks `(n, end)`: 2h raw blocks ending at `end` (Unix ms).
fn bucket(blocks: &[(u128, i64)]) -> SyncResult {
    let mut sync = SyncResult::default();
    for &(n, end) in blocks {
        let meta = BlockMeta::level1(id(n), end - 2 * HOUR_MS, end);
        let mut b = synced(MetaState::Ok(Box::new(meta)));
        b.newest_modified = Millis(end);
        sync.blocks.insert(id(n), b);
    }
    sync
}

fn deletion(n: u128, at_ms: i64) -> DeletionMark {
    DeletionMark {
        id: id(n),
        version: MARKER_VERSION,
        details: String::new(),
        deletion_time: at_ms / 1000,
    }
}

#[test]
fn mark_places_thanos_markers_and_checks_every_block_first() {
    let sync = bucket(&[(1, NOW_MS), (2, NOW_MS)]);
    let ops = mark_ops(
        &sync,
        &[id(1), id(2)],
        MarkerKind::NoCompact,
        "why",
        false,
        NOW_MS,
    )
    .expect("both exist");
    let WriteOp::MarkNoCompact(m) = &ops[1] else {
        panic!("{ops:?}")
    };
    assert_eq!(
        (m.id, m.reason.as_str(), m.details.as_str()),
        (id(2), "manual", "why")
    );
    assert_eq!(m.no_compact_time, NOW_MS / 1000);
    let err = mark_ops(
        &sync,
        &[id(1), id(9)],
        MarkerKind::Deletion,
        "x",
        false,
        NOW_MS,
    )
    .expect_err("block 9 is unknown");
    assert!(
        err.contains(&id(9).to_string()) && err.contains("not in the bucket"),
        "{err}"
    );
    let err =
        mark_ops(&sync, &[id(1)], MarkerKind::Deletion, "", false, NOW_MS).expect_err("no details");
    assert!(err.contains("--details"), "{err}");
}

#[test]
fn mark_refuses_a_marker_already_there_and_removes_only_one_that_is() {
    let mut sync = bucket(&[(1, NOW_MS)]);
    let err = mark_ops(&sync, &[id(1)], MarkerKind::NoDownsample, "", true, NOW_MS)
        .expect_err("nothing to remove");
    assert!(err.contains("has no no-downsample-mark.json"), "{err}");
    sync.blocks.get_mut(&id(1)).expect("block").deletion_mark = Some(deletion(1, NOW_MS));
    let err = mark_ops(&sync, &[id(1)], MarkerKind::Deletion, "x", false, NOW_MS)
        .expect_err("already marked");
    assert!(err.contains("already exists"), "{err}");
    let ops = mark_ops(&sync, &[id(1)], MarkerKind::Deletion, "", true, NOW_MS).expect("remove");
    assert_eq!(
        ops,
        vec![WriteOp::RemoveMarker {
            block: id(1),
            marker: DELETION_MARK_FILENAME.into()
        }]
    );
}

#[test]
fn retention_marks_raw_blocks_past_it_and_keeps_forever_at_zero() {
    let sync = bucket(&[(1, NOW_MS - 3 * DAY_MS), (2, NOW_MS - HOUR_MS)]);
    let settings = MaintenanceSettings::default();
    let ops = retention_ops(&sync, &settings, [DAY_MS, 0, 0], NOW_MS);
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert!(
        matches!(&ops[0], WriteOp::MarkDeletion(m) if m.id == id(1)),
        "{ops:?}"
    );
    assert!(retention_ops(&sync, &settings, [0, 0, 0], NOW_MS).is_empty());
}

#[test]
fn cleanup_deletes_marks_past_the_delay_and_old_partial_uploads() {
    let mut sync = bucket(&[(1, NOW_MS - DAY_MS), (2, NOW_MS - DAY_MS)]);
    sync.blocks.get_mut(&id(1)).expect("1").deletion_mark = Some(deletion(1, NOW_MS - HOUR_MS));
    sync.blocks.get_mut(&id(2)).expect("2").deletion_mark = Some(deletion(2, NOW_MS - 60_000));
    let mut partial = synced(MetaState::Missing);
    partial.newest_modified = Millis(NOW_MS - 3 * DAY_MS);
    sync.blocks.insert(id(3), partial.clone());
    partial.newest_modified = Millis(NOW_MS - HOUR_MS);
    sync.blocks.insert(id(4), partial);
    let settings = MaintenanceSettings {
        delete_delay_ms: 30 * 60_000,
        ..MaintenanceSettings::default()
    };
    let ops = cleanup_ops(&sync, &settings, 2 * DAY_MS, NOW_MS);
    assert_eq!(
        ops,
        vec![WriteOp::DeleteBlock(id(1)), WriteOp::DeleteBlock(id(3))]
    );
}
