//! The iteration against the model bucket ([`super::testing`]): compaction, marks found in
//! place, determinism, the backlog gauges, failures and halts, garbage collection, partial
//! uploads, retention, job ids and the delete delay.

use super::testing::{block, now, now_plus, run, synced, twelve_2h_blocks, Model};
use super::*;
use crate::bucket::markers::{DeletionMark, MARKER_VERSION};
use crate::core::testing::{cycle_config, T0_MS};
use crate::core::types::{JobError, MetaState};
use crate::tsdb::meta::{merge_metas, BlockMeta};
use crate::units::{HOUR_MS, MINUTE_MS};

#[test]
fn one_shot_run_compacts_marks_deletes_and_exits() {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    twelve_2h_blocks(&mut model, "us-1", 200);
    let mut cycle = Cycle::new(cycle_config(false), 7);
    let (code, outputs) = run(&mut cycle, &mut model, now(48));
    assert_eq!(code, Some(0));
    // Thanos' levels for 24h of 2h blocks: two 8h blocks and four 2h blocks per stream.
    let mut shapes: Vec<(String, i64)> = model
        .visible()
        .iter()
        .map(|m| {
            (
                m.thanos.as_ref().unwrap().labels["cluster"].clone(),
                (m.max_time - m.min_time) / HOUR_MS,
            )
        })
        .collect();
    shapes.sort();
    let want: Vec<(String, i64)> = ["eu-1", "us-1"]
        .iter()
        .flat_map(|c| [2, 2, 2, 2, 8, 8].map(|h| (c.to_string(), h)))
        .collect();
    assert_eq!(shapes, want);
    assert_eq!(model.blocks.len(), 12, "sources deleted (delete delay 0)");
    // Order inside a job: files, meta.json, then the sources' marks.
    let log = model.log.join(" ");
    assert!(
        log.contains(
            "upload-files put-meta mark-deletion mark-deletion mark-deletion mark-deletion"
        ),
        "{log}"
    );
    let meta = model
        .visible()
        .into_iter()
        .find(|m| m.compaction.level == 2)
        .unwrap()
        .clone();
    let t = meta.thanos.as_ref().unwrap();
    assert_eq!(t.source, "compactor");
    assert_eq!(
        t.files
            .iter()
            .map(|f| f.rel_path.as_str())
            .collect::<Vec<_>>(),
        ["chunks/000001", "index", "meta.json"]
    );
    assert_eq!(t.segment_files, ["000001"]);
    let uploaded = crate::timefmt::parse_rfc3339_ms(&t.upload_time).unwrap();
    assert!(
        uploaded > T0_MS + 48 * HOUR_MS && uploaded < T0_MS + 49 * HOUR_MS,
        "{}",
        t.upload_time
    );
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::IterationDone))));
}

/// A marker found in place counts as marked for the cycle, which goes on the same way, but it
/// is not reported as a new mark (no `Marked` event, so no `thanos_compact_blocks_marked_total`).
#[test]
fn markers_found_in_place_are_not_new_marks() {
    let mut model = Model {
        markers_already_there: true,
        ..Model::default()
    };
    twelve_2h_blocks(&mut model, "eu-1", 100);
    let mut cycle = Cycle::new(cycle_config(false), 7);
    let (code, outputs) = run(&mut cycle, &mut model, now(48));
    assert_eq!(code, Some(0));
    let mut spans: Vec<i64> = model
        .visible()
        .iter()
        .map(|m| (m.max_time - m.min_time) / HOUR_MS)
        .collect();
    spans.sort();
    assert_eq!(spans, [2, 2, 2, 2, 8, 8], "compacted as usual");
    let events = |f: fn(&Event) -> bool| {
        outputs
            .iter()
            .filter(|o| matches!(o, Output::Event(e) if f(e)))
            .count()
    };
    assert_eq!(events(|e| matches!(e, Event::Marked { .. })), 0);
    assert_eq!(
        events(|e| matches!(e, Event::Deleted(_))),
        8,
        "sources deleted"
    );
}

#[test]
fn the_core_is_deterministic() {
    let scenario = || {
        let mut model = Model::default();
        twelve_2h_blocks(&mut model, "eu-1", 100);
        let mut cycle = Cycle::new(cycle_config(false), 42);
        let (_, outputs) = run(&mut cycle, &mut model, now(48));
        format!("{outputs:?}")
    };
    assert_eq!(scenario(), scenario());
}

/// The backlog gauges of every [`Event::Progress`], in order: (runs, blocks, downsample,
/// deletion).
fn progress_events(outputs: &[Output]) -> Vec<(u64, u64, Option<u64>, u64)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::Progress {
                todo_compactions,
                todo_compaction_blocks,
                todo_downsample_blocks,
                todo_deletion_blocks,
            }) => Some((
                *todo_compactions,
                *todo_compaction_blocks,
                *todo_downsample_blocks,
                *todo_deletion_blocks,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn backlog_gauges_follow_syncs_every_progress_interval_and_only_with_wait() {
    // Per stream 12 x 2h blocks: Thanos' calculator counts the 8h runs [0,8) and [8,16) of 4
    // blocks; [16,24) waits for its newest block. Two streams: 4 runs, 16 blocks.
    let bucket = || {
        let mut model = Model::default();
        twelve_2h_blocks(&mut model, "eu-1", 100);
        twelve_2h_blocks(&mut model, "us-1", 200);
        model
    };
    let with = |wait: bool, progress_interval_ms: i64| CycleConfig {
        progress_interval_ms,
        ..cycle_config(wait)
    };
    let initial = (4, 16, None, 0);
    // One-shot: never (Thanos runs its calculators only with --wait); 0 disables them.
    for c in [with(false, 1), with(true, 0)] {
        let (_, outputs) = run(&mut Cycle::new(c, 1), &mut bucket(), now(48));
        assert_eq!(progress_events(&outputs), vec![]);
    }
    // A millisecond (steps are a second apart): after every sync. The first pass leaves one
    // 8h run per stream ([8,16)), the second none; the retention sync sees none either.
    let (_, outputs) = run(&mut Cycle::new(with(true, 1), 1), &mut bucket(), now(48));
    let syncs = outputs
        .iter()
        .filter(|o| matches!(o, Output::Store(r) if r.read_op() == Some(&ReadOp::Sync)))
        .count();
    let zero = (0, 0, None, 0);
    assert_eq!(
        progress_events(&outputs),
        vec![initial, (2, 8, None, 0), zero, zero]
    );
    assert_eq!(syncs, 4);
    // An hour: after the first sync, not in the iteration ten minutes later, again after
    // the one two hours later.
    let (mut cycle, mut model) = (Cycle::new(with(true, HOUR_MS), 1), bucket());
    let (_, first) = run(&mut cycle, &mut model, now(48));
    let (_, soon) = run(&mut cycle, &mut model, now_plus(48, 10 * MINUTE_MS));
    let (_, later) = run(&mut cycle, &mut model, now(50));
    assert_eq!(progress_events(&first), vec![initial]);
    assert_eq!(progress_events(&soon), vec![]);
    assert_eq!(progress_events(&later), vec![zero]);
}

#[test]
fn store_failures_retry_with_wait_and_exit_1_without() {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    model.fail_next_mutation = true;
    let (code, _) = run(&mut Cycle::new(cycle_config(false), 1), &mut model, now(48));
    assert_eq!(code, Some(EXIT_FAILED));
    model.fail_next_mutation = true;
    let mut cycle = Cycle::new(cycle_config(true), 1);
    let (code, outputs) = run(&mut cycle, &mut model, now(48));
    assert_eq!(code, None, "with --wait the cycle waits for the retry");
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Retrying(_)))));
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Timer(t) if *t > now(48).mono.plus(5 * MINUTE_MS))));
}

#[test]
fn overlaps_halt_and_compaction_errors_halt() {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    model.add(block(999, 1, 3, "eu-1"));
    let (code, outputs) = run(&mut Cycle::new(cycle_config(false), 1), &mut model, now(48));
    assert_eq!(code, Some(EXIT_HALTED));
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Halted(r)) if r.contains("overlaps found"))));
    assert!(
        !model.log.iter().any(|op| op != "sync"),
        "nothing written: {:?}",
        model.log
    );

    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    model.compaction_error = Some(JobError::bad_input("chunk CRC mismatch"));
    let mut cycle = Cycle::new(cycle_config(true), 1);
    let (code, _) = run(&mut cycle, &mut model, now(48));
    assert_eq!(code, None);
    assert!(cycle.halted(), "halted, serving HTTP");

    // --no-debug.halt-on-error: with --wait the process exits instead, as Thanos returns the
    // error, so that a restart policy retries.
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    model.add(block(999, 1, 3, "eu-1"));
    let c = CycleConfig {
        halt_on_error: false,
        ..cycle_config(true)
    };
    let mut cycle = Cycle::new(c, 1);
    let (code, _) = run(&mut cycle, &mut model, now(48));
    assert_eq!(code, Some(EXIT_HALTED));
    assert!(!cycle.halted());
}

#[test]
fn duplicates_are_collected_and_stale_partials_deleted_but_corrupt_metas_kept() {
    let mut model = Model::default();
    let a = block(1, 0, 2, "eu-1");
    let b = block(2, 2, 4, "eu-1");
    let mut merged = merge_metas(
        BlockId::from_parts((T0_MS + 5 * HOUR_MS) as u64, 3),
        &[a.clone(), b.clone()],
    )
    .unwrap();
    merged.thanos.as_mut().unwrap().source = "compactor".into();
    model.add(a.clone());
    model.add(b.clone());
    model.add(merged.clone());
    let partial = BlockId::from_parts(T0_MS as u64, 77);
    model.blocks.insert(partial, synced(MetaState::Missing));
    let corrupt = BlockId::from_parts(T0_MS as u64, 78);
    model
        .blocks
        .insert(corrupt, synced(MetaState::Corrupt("bad json".into())));
    let (code, outputs) = run(
        &mut Cycle::new(cycle_config(false), 1),
        &mut model,
        now(100),
    );
    assert_eq!(code, Some(0));
    for id in [a.ulid, b.ulid] {
        let mark = model.blocks[&id]
            .deletion_mark
            .as_ref()
            .expect("covered sources are marked");
        assert_eq!(mark.details, "outdated block");
    }
    assert!(model.blocks[&merged.ulid].deletion_mark.is_none());
    assert!(
        !model.blocks.contains_key(&partial),
        "a partial upload older than 48h is deleted"
    );
    assert!(
        model.blocks.contains_key(&corrupt),
        "a block with an unreadable meta.json is never deleted"
    );
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::PartialDeleted(id)) if *id == partial)));
}

#[test]
fn retention_marks_old_blocks() {
    let mut model = Model::default();
    model.add(block(1, 0, 2, "eu-1"));
    model.add(block(2, 200, 202, "eu-1"));
    let mut c = cycle_config(false);
    c.retention_ms[0] = 24 * HOUR_MS;
    c.view.delete_delay_ms = 48 * HOUR_MS;
    let (code, _) = run(&mut Cycle::new(c, 1), &mut model, now(210));
    assert_eq!(code, Some(0));
    let marks: Vec<_> = model
        .blocks
        .values()
        .filter_map(|b| b.deletion_mark.as_ref())
        .collect();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].details, "block exceeding retention of 1d");
}

/// A stream's cycle deletes, collects and retains only its stream's blocks; the bucket
/// leader's deletes the stale partial upload and retains the blocks of no stream.
#[test]
fn a_scoped_cycle_deletes_and_retains_only_its_own_blocks() {
    use crate::core::stream::StreamId;
    use crate::core::view::Scope;
    let eu = block(1, 0, 2, "eu-1");
    let eu_marked = block(2, 2, 4, "eu-1");
    let us = block(3, 0, 2, "us-1");
    let us_marked = block(4, 2, 4, "us-1");
    let mut no_stream = block(5, 0, 2, "x");
    no_stream.thanos.as_mut().unwrap().labels.clear();
    let partial = BlockId::from_parts(T0_MS as u64, 77);
    let stream = |m: &BlockMeta| StreamId::of_block(m, &[]).expect("labelled");
    let cases = [
        (Scope::Stream(stream(&eu)), eu_marked.ulid, eu.ulid),
        (Scope::Stream(stream(&us)), us_marked.ulid, us.ulid),
        (Scope::BucketChores, partial, no_stream.ulid),
    ];
    for (scope, deleted, retained) in cases {
        let mut model = Model::default();
        for m in [&eu, &eu_marked, &us, &us_marked, &no_stream] {
            model.add(m.clone());
        }
        for m in [&eu_marked, &us_marked] {
            let mark = marks::deletion_mark(m.ulid, now(0), "x");
            model.blocks.get_mut(&m.ulid).unwrap().deletion_mark = Some(mark);
        }
        model.blocks.insert(partial, synced(MetaState::Missing));
        let mut c = cycle_config(false);
        c.retention_ms[0] = 24 * HOUR_MS;
        c.view.scope = scope;
        let (code, _) = run(&mut Cycle::new(c, 1), &mut model, now(100));
        assert_eq!(code, Some(0));
        let gone: Vec<BlockId> = [eu.ulid, eu_marked.ulid, us.ulid, us_marked.ulid]
            .into_iter()
            .chain([no_stream.ulid, partial])
            .filter(|id| !model.blocks.contains_key(id))
            .collect();
        assert_eq!(gone, [deleted], "{scope:?}");
        let newly_marked: Vec<BlockId> = model
            .blocks
            .iter()
            .filter(|(_, b)| b.deletion_mark.as_ref().is_some_and(|m| m.details != "x"))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(newly_marked, [retained], "{scope:?}");
    }
}

#[test]
fn job_ids_never_repeat_across_passes() {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    twelve_2h_blocks(&mut model, "us-1", 200);
    let (_, outputs) = run(&mut Cycle::new(cycle_config(false), 3), &mut model, now(48));
    let ids: Vec<_> = outputs
        .iter()
        .filter_map(|o| {
            if let Output::Compact(j) = o {
                Some(j.job)
            } else {
                None
            }
        })
        .collect();
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert!(ids.len() >= 4, "several passes compacted: {ids:?}");
    assert_eq!(
        unique.len(),
        ids.len(),
        "a late result of an abandoned job must never match a new job: {ids:?}"
    );
}

#[test]
fn a_deletion_mark_from_the_future_waits_the_delete_delay_once_seen_not_its_writers_skew() {
    // A writer whose wall clock ran a day ahead stamped this mark. Thanos would wait for its
    // time plus the delete delay; compactd waits the delay since it first saw the mark.
    let mut model = Model::default();
    let marked = block(1, 0, 2, "eu-1");
    let id = marked.ulid;
    model.add(marked);
    model.blocks.get_mut(&id).unwrap().deletion_mark = Some(DeletionMark {
        id,
        version: MARKER_VERSION,
        details: String::new(),
        deletion_time: (T0_MS + 34 * HOUR_MS) / 1000,
    });
    let mut c = cycle_config(false);
    c.view.delete_delay_ms = HOUR_MS;
    let mut cycle = Cycle::new(c, 1);
    let (code, _) = run(&mut cycle, &mut model, now(10));
    assert_eq!(code, Some(0));
    assert!(model.blocks.contains_key(&id), "first seen just now: kept");
    cycle.restart();
    let (_, outputs) = run(&mut cycle, &mut model, now_plus(10, 30 * MINUTE_MS));
    assert!(
        model.blocks.contains_key(&id),
        "seen for half an hour: kept"
    );
    assert!(!outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Deleted(_)))));
    cycle.restart();
    let (_, outputs) = run(&mut cycle, &mut model, now_plus(11, MINUTE_MS));
    assert!(
        !model.blocks.contains_key(&id),
        "seen for over the delete delay: deleted although its time is a day ahead"
    );
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Deleted(d)) if *d == id)));
}
