//! The cycle against a tiny model bucket: the test plays the driver, applying each store
//! request to an in-memory map of blocks and answering compaction jobs with merged metas.

use std::collections::BTreeMap;

use super::*;
use crate::bucket::markers::{DeletionMark, MARKER_VERSION};
use crate::core::types::{
    CompactJob, CompactedBlock, JobError, JobKind, MetaState, SyncResult, SyncedBlock,
};
use crate::core::view::ViewConfig;
use crate::tsdb::meta::{merge_metas, BlockFile, BlockMeta, BlockStats, ThanosMeta};

pub(super) const HOUR: i64 = 3_600_000;
pub(super) const T0: i64 = 1_735_689_600_000;

pub(super) fn cfg(wait: bool) -> CycleConfig {
    CycleConfig {
        view: ViewConfig {
            min_time: i64::MIN,
            max_time: i64::MAX,
            consistency_delay_ms: 30 * 60_000,
            delete_delay_ms: 0,
            replica_labels: vec![],
            selector_relabel: vec![],
        },
        wait,
        wait_interval_ms: 5 * 60_000,
        concurrency: 1,
        ranges: crate::core::plan::compaction_ranges(4).unwrap(),
        vertical: false,
        index_size_limit_bytes: None,
        retention_ms: [0; 3],
        partial_upload_threshold_ms: PARTIAL_UPLOAD_THRESHOLD_MS_DEFAULT,
        downsampling: false,
        downsample_concurrency: 1,
        progress_interval_ms: 0,
        cleanup_interval_ms: 0,
        halt_on_error: true,
        skip_out_of_order_chunks: false,
    }
}

pub(super) fn block(n: u128, min_h: i64, max_h: i64, cluster: &str) -> BlockMeta {
    let id = BlockId::from_parts((T0 + max_h * HOUR) as u64, n);
    BlockMeta {
        stats: BlockStats {
            num_samples: 100,
            num_series: 1,
            num_chunks: 1,
            ..BlockStats::default()
        },
        thanos: Some(ThanosMeta {
            labels: [("cluster".to_string(), cluster.to_string())].into(),
            source: "sidecar".into(),
            ..ThanosMeta::default()
        }),
        ..BlockMeta::level1(id, T0 + min_h * HOUR, T0 + max_h * HOUR)
    }
}

/// The model bucket and the log of what the cycle did.
#[derive(Default)]
pub(super) struct Model {
    pub(super) blocks: BTreeMap<BlockId, SyncedBlock>,
    pub(super) log: Vec<String>,
    pub(super) fail_next_mutation: bool,
    compaction_error: Option<JobError>,
    /// Answer every marker write with [`StoreResult::MarkerExisted`] (the mark is in place).
    markers_already_there: bool,
}

impl Model {
    pub(super) fn add(&mut self, m: BlockMeta) {
        self.blocks
            .insert(m.ulid, synced(MetaState::Ok(Box::new(m))));
    }

    pub(super) fn visible(&self) -> Vec<&BlockMeta> {
        self.blocks
            .values()
            .filter(|b| b.deletion_mark.is_none())
            .filter_map(|b| match &b.meta {
                MetaState::Ok(m) => Some(&**m),
                _ => None,
            })
            .collect()
    }

    pub(super) fn apply(&mut self, op: &StoreOp, now: Now) -> StoreResult {
        if op.is_mutation() && std::mem::take(&mut self.fail_next_mutation) {
            return StoreResult::Failed("injected 503".into());
        }
        self.log.push(op.name().to_string());
        match op {
            StoreOp::Sync => {
                return StoreResult::Synced(SyncResult {
                    blocks: self.blocks.clone(),
                })
            }
            StoreOp::UploadFiles { .. } => {}
            StoreOp::PutMeta { meta } => {
                let mut b = synced(MetaState::Ok(meta.clone()));
                b.newest_modified = now.wall;
                self.blocks.insert(meta.ulid, b);
            }
            StoreOp::MarkDeletion(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.deletion_mark.get_or_insert(m.clone());
                }
            }
            StoreOp::MarkNoCompact(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.no_compact_mark.get_or_insert(m.clone());
                }
            }
            StoreOp::DeleteBlock(id) => {
                self.blocks.remove(id);
            }
            StoreOp::ReadFence | StoreOp::CasFence { .. } => {
                unreachable!("the cycle never touches the fence")
            }
        }
        let marker = matches!(op, StoreOp::MarkDeletion(_) | StoreOp::MarkNoCompact(_));
        if marker && self.markers_already_there {
            return StoreResult::MarkerExisted;
        }
        StoreResult::Done
    }

    pub(super) fn compact(&mut self, job: &CompactJob) -> Result<Option<CompactedBlock>, JobError> {
        if let Some(e) = self.compaction_error.take() {
            return Err(e);
        }
        let mut meta = match job.kind {
            // The engine keeps range, compaction and labels; the cycle sets the resolution.
            JobKind::Downsample { .. } => BlockMeta {
                ulid: job.output,
                ..job.inputs[0].clone()
            },
            JobKind::Compact => merge_metas(job.output, &job.inputs).unwrap(),
        };
        meta.stats.num_samples = job.inputs.iter().map(|m| m.stats.num_samples).sum();
        let files = vec![
            BlockFile {
                rel_path: "chunks/000001".into(),
                size_bytes: 10,
                hash: None,
            },
            BlockFile {
                rel_path: "index".into(),
                size_bytes: 5,
                hash: None,
            },
        ];
        Ok(Some(CompactedBlock { meta, files }))
    }
}

pub(super) fn synced(meta: MetaState) -> SyncedBlock {
    SyncedBlock {
        meta,
        deletion_mark: None,
        no_compact_mark: None,
        no_downsample_mark: None,
        marker_problems: vec![],
        newest_modified: Millis(T0),
    }
}

/// Plays the driver until the cycle exits or goes idle; returns the exit code and every
/// output in order. Each step happens one second after the previous one.
fn run(cycle: &mut Cycle, model: &mut Model, start: Now) -> (Option<i32>, Vec<Output>) {
    let mut all = Vec::new();
    let mut inputs = std::collections::VecDeque::from([Input::Start]);
    let mut steps = 0;
    while let Some(input) = inputs.pop_front() {
        steps += 1;
        assert!(steps < 10_000, "cycle does not converge");
        let now = Now {
            mono: start.mono.plus(steps * 1000),
            wall: start.wall.plus(steps * 1000),
        };
        let mut out = Vec::new();
        cycle.step(
            now,
            input,
            Some(Permit {
                epoch: crate::core::types::Epoch(0),
                valid_until: Millis::MAX,
            }),
            &mut out,
        );
        for o in &out {
            match o {
                Output::Store(r) => {
                    assert_eq!(
                        r.op.is_mutation(),
                        r.permit.is_some(),
                        "mutations and only mutations carry a permit"
                    );
                    inputs.push_back(Input::Store(r.id, model.apply(&r.op, now)));
                }
                Output::Compact(job) => {
                    inputs.push_back(Input::Compacted(job.job, Box::new(model.compact(job))))
                }
                Output::Exit(code) => {
                    all.extend(out.clone());
                    return (Some(*code), all);
                }
                Output::Timer(_) | Output::Event(_) | Output::Coord(_) => {}
            }
        }
        all.extend(out);
    }
    (None, all)
}

pub(super) fn now(h: i64) -> Now {
    Now {
        mono: Millis(h * HOUR),
        wall: Millis(T0 + h * HOUR),
    }
}

/// `h` hours and `ms` milliseconds into the test's time.
fn now_plus(h: i64, ms: i64) -> Now {
    Now {
        mono: now(h).mono.plus(ms),
        wall: now(h).wall.plus(ms),
    }
}

pub(super) fn twelve_2h_blocks(model: &mut Model, cluster: &str, salt: u128) {
    for i in 0..12 {
        model.add(block(salt + i as u128, 2 * i, 2 * i + 2, cluster));
    }
}

#[test]
fn one_shot_run_compacts_marks_deletes_and_exits() {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    twelve_2h_blocks(&mut model, "us-1", 200);
    let mut cycle = Cycle::new(cfg(false), 7);
    let (code, outputs) = run(&mut cycle, &mut model, now(48));
    assert_eq!(code, Some(0));
    // Thanos' levels for 24h of 2h blocks: two 8h blocks and four 2h blocks per stream.
    let mut shapes: Vec<(String, i64)> = model
        .visible()
        .iter()
        .map(|m| {
            (
                m.thanos.as_ref().unwrap().labels["cluster"].clone(),
                (m.max_time - m.min_time) / HOUR,
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
        uploaded > T0 + 48 * HOUR && uploaded < T0 + 49 * HOUR,
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
    let mut cycle = Cycle::new(cfg(false), 7);
    let (code, outputs) = run(&mut cycle, &mut model, now(48));
    assert_eq!(code, Some(0));
    let mut spans: Vec<i64> = model
        .visible()
        .iter()
        .map(|m| (m.max_time - m.min_time) / HOUR)
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
        let mut cycle = Cycle::new(cfg(false), 42);
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
        ..cfg(wait)
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
        .filter(|o| matches!(o, Output::Store(r) if r.op == StoreOp::Sync))
        .count();
    let zero = (0, 0, None, 0);
    assert_eq!(
        progress_events(&outputs),
        vec![initial, (2, 8, None, 0), zero, zero]
    );
    assert_eq!(syncs, 4);
    // An hour: after the first sync, not in the iteration ten minutes later, again after
    // the one two hours later.
    let (mut cycle, mut model) = (Cycle::new(with(true, HOUR), 1), bucket());
    let (_, first) = run(&mut cycle, &mut model, now(48));
    let (_, soon) = run(&mut cycle, &mut model, now_plus(48, 10 * 60_000));
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
    let (code, _) = run(&mut Cycle::new(cfg(false), 1), &mut model, now(48));
    assert_eq!(code, Some(EXIT_FAILED));
    model.fail_next_mutation = true;
    let mut cycle = Cycle::new(cfg(true), 1);
    let (code, outputs) = run(&mut cycle, &mut model, now(48));
    assert_eq!(code, None, "with --wait the cycle waits for the retry");
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Retrying(_)))));
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Timer(t) if *t > now(48).mono.plus(5 * 60_000))));
}

#[test]
fn overlaps_halt_and_compaction_errors_halt() {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    model.add(block(999, 1, 3, "eu-1"));
    let (code, outputs) = run(&mut Cycle::new(cfg(false), 1), &mut model, now(48));
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
    model.compaction_error = Some(JobError::halting("chunk CRC mismatch"));
    let mut cycle = Cycle::new(cfg(true), 1);
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
        ..cfg(true)
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
        BlockId::from_parts((T0 + 5 * HOUR) as u64, 3),
        &[a.clone(), b.clone()],
    )
    .unwrap();
    merged.thanos.as_mut().unwrap().source = "compactor".into();
    model.add(a.clone());
    model.add(b.clone());
    model.add(merged.clone());
    let partial = BlockId::from_parts(T0 as u64, 77);
    model.blocks.insert(partial, synced(MetaState::Missing));
    let corrupt = BlockId::from_parts(T0 as u64, 78);
    model
        .blocks
        .insert(corrupt, synced(MetaState::Corrupt("bad json".into())));
    let (code, outputs) = run(&mut Cycle::new(cfg(false), 1), &mut model, now(100));
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
    let mut c = cfg(false);
    c.retention_ms[0] = 24 * HOUR;
    c.view.delete_delay_ms = 48 * HOUR;
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

#[test]
fn job_ids_never_repeat_across_passes() {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    twelve_2h_blocks(&mut model, "us-1", 200);
    let (_, outputs) = run(&mut Cycle::new(cfg(false), 3), &mut model, now(48));
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

// --- downsampling ----------------------------------------------------------------------------

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
    let raw = block(1, 0, 48, "eu-1");
    let covered = block(2, 48, 96, "eu-1");
    let covered_5m = with_resolution(block(3, 48, 96, "eu-1"), 300_000);
    let mut covered_5m = covered_5m;
    covered_5m.compaction.sources = covered.compaction.sources.clone();
    let long_5m = with_resolution(block(4, 96, 96 + 14 * 24, "eu-1"), 300_000);
    for m in [&raw, &covered, &covered_5m, &long_5m] {
        model.add(m.clone());
    }
    let mut cfg = cfg(false);
    cfg.downsampling = true;
    let mut cycle = Cycle::new(cfg, 7);
    let (code, outputs) = run(&mut cycle, &mut model, now(24 * 30));
    assert_eq!(code, Some(0));

    let new_5m: Vec<BlockMeta> = downsampled(&model, 300_000)
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
    let hourly = downsampled(&model, 3_600_000);
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
    let raw = block(1, 0, 48, "eu-1");
    model.add(raw.clone());
    model.blocks.get_mut(&raw.ulid).unwrap().no_downsample_mark =
        Some(crate::bucket::markers::NoDownsampleMark {
            id: raw.ulid,
            version: 1,
            details: String::new(),
            no_downsample_time: 0,
            reason: "manual".into(),
        });
    model.add(block(2, 0, 48, "us-1"));
    let mut on = cfg(false);
    on.downsampling = true;
    let (code, _) = run(&mut Cycle::new(on, 7), &mut model, now(24 * 30));
    assert_eq!(code, Some(0));
    let made = downsampled(&model, 300_000);
    assert_eq!(made.len(), 1, "only the unmarked block");
    assert_eq!(made[0].thanos.as_ref().unwrap().labels["cluster"], "us-1");

    let mut model = Model::default();
    model.add(block(2, 0, 48, "us-1"));
    let (code, _) = run(&mut Cycle::new(cfg(false), 7), &mut model, now(24 * 30));
    assert_eq!(code, Some(0));
    assert!(downsampled(&model, 300_000).is_empty());
}

// A downsampling error on bad input halts (exit 2 one-shot); a retryable one ends the
// iteration (exit 1) — nothing is uploaded either way.
#[test]
fn downsampling_errors_halt_or_retry() {
    for (retryable, want) in [(false, EXIT_HALTED), (true, EXIT_FAILED)] {
        let mut model = Model::default();
        model.add(block(1, 0, 48, "eu-1"));
        model.compaction_error = Some(JobError {
            retryable,
            ..JobError::halting("chunk 12 of series {a=\"b\"}: bad checksum")
        });
        let mut on = cfg(false);
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
        deletion_time: (T0 + 34 * HOUR) / 1000,
    });
    let mut c = cfg(false);
    c.view.delete_delay_ms = HOUR;
    let mut cycle = Cycle::new(c, 1);
    let (code, _) = run(&mut cycle, &mut model, now(10));
    assert_eq!(code, Some(0));
    assert!(model.blocks.contains_key(&id), "first seen just now: kept");
    cycle.restart();
    let (_, outputs) = run(&mut cycle, &mut model, now_plus(10, 1_800_000));
    assert!(
        model.blocks.contains_key(&id),
        "seen for half an hour: kept"
    );
    assert!(!outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Deleted(_)))));
    cycle.restart();
    let (_, outputs) = run(&mut cycle, &mut model, now_plus(11, 60_000));
    assert!(
        !model.blocks.contains_key(&id),
        "seen for over the delete delay: deleted although its time is a day ahead"
    );
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Deleted(d)) if *d == id)));
}
