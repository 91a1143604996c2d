//! The cycle's test support: a tiny model bucket that plays the driver, applying each store
//! request to an in-memory map of blocks and answering jobs with merged metas, shared by the
//! compaction, downsampling, retention, deletion and clean-up scenarios.

use std::collections::{BTreeMap, VecDeque};

use super::Cycle;
pub(super) use crate::core::testing::synced;
use crate::core::testing::T0_MS;
use crate::core::types::{
    CompactJob, CompactedBlock, Epoch, Input, JobError, JobKind, MetaState, Millis, Now, Output,
    Permit, ReadOp, StoreError, StoreRequest, StoreResult, SyncResult, SyncedBlock, WriteOp,
};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{merge_metas, BlockFile, BlockMeta, BlockStats, ThanosMeta};
use crate::units::HOUR_MS;

/// The permit every step is given; its epoch tells it apart from any default.
pub(super) const PERMIT: Permit = Permit {
    epoch: Epoch(7),
    valid_until: Millis::MAX,
};

/// Block `n` of `cluster`'s stream, from hour `min_h` to `max_h` after [`T0_MS`], with 100
/// samples, uploaded by a sidecar.
pub(super) fn block(n: u128, min_h: i64, max_h: i64, cluster: &str) -> BlockMeta {
    let id = BlockId::from_parts((T0_MS + max_h * HOUR_MS) as u64, n);
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
        ..BlockMeta::level1(id, T0_MS + min_h * HOUR_MS, T0_MS + max_h * HOUR_MS)
    }
}

/// The model bucket and the log of what the cycle did.
#[derive(Default)]
pub(super) struct Model {
    /// The bucket's blocks, as a sync lists them.
    pub(super) blocks: BTreeMap<BlockId, SyncedBlock>,
    /// The name of every store operation applied, in order.
    pub(super) log: Vec<String>,
    /// Fail the next mutation (a 503).
    pub(super) fail_next_mutation: bool,
    /// Fail the next job with this error.
    pub(super) compaction_error: Option<JobError>,
    /// Answer every marker write with [`StoreResult::MarkerExisted`] (the mark is in place).
    pub(super) markers_already_there: bool,
}

impl Model {
    /// Uploads `m` (as a sidecar would).
    pub(super) fn add(&mut self, m: BlockMeta) {
        self.blocks
            .insert(m.ulid, synced(MetaState::Ok(Box::new(m))));
    }

    /// The blocks with a meta.json and no deletion mark.
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

    /// Applies a store request; returns its answer.
    pub(super) fn apply(&mut self, req: &StoreRequest, now: Now) -> StoreResult {
        if req.is_mutation() && std::mem::take(&mut self.fail_next_mutation) {
            return StoreResult::Failed(StoreError::other("injected 503"));
        }
        self.log.push(req.name().to_string());
        let Some(op) = req.write_op() else {
            assert_eq!(
                req.read_op(),
                Some(&ReadOp::Sync),
                "the cycle never reads the fence"
            );
            let blocks = self.blocks.clone();
            return StoreResult::Synced(SyncResult { blocks });
        };
        match op {
            WriteOp::UploadFiles { .. } => {}
            WriteOp::PutMeta { meta } | WriteOp::AdoptMeta { meta } => {
                let mut b = synced(MetaState::Ok(meta.clone()));
                b.newest_modified = now.wall;
                self.blocks.insert(meta.ulid, b);
            }
            WriteOp::MarkDeletion(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.deletion_mark.get_or_insert(m.clone());
                }
            }
            WriteOp::MarkNoCompact(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.no_compact_mark.get_or_insert(m.clone());
                }
            }
            WriteOp::MarkNoDownsample(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.no_downsample_mark.get_or_insert(m.clone());
                }
            }
            WriteOp::RemoveMarker { block, marker } => {
                if let Some(b) = self.blocks.get_mut(block) {
                    match marker.as_str() {
                        crate::bucket::markers::DELETION_MARK_FILENAME => b.deletion_mark = None,
                        crate::bucket::markers::NO_COMPACT_MARK_FILENAME => {
                            b.no_compact_mark = None
                        }
                        _ => b.no_downsample_mark = None,
                    }
                }
            }
            WriteOp::DeleteBlock(id) => {
                self.blocks.remove(id);
            }
            WriteOp::CasFence { .. } => unreachable!("the cycle never writes the fence"),
        }
        let marker = matches!(
            op,
            WriteOp::MarkDeletion(_) | WriteOp::MarkNoCompact(_) | WriteOp::MarkNoDownsample(_)
        );
        if marker && self.markers_already_there {
            return StoreResult::MarkerExisted;
        }
        StoreResult::Done
    }

    /// Runs a job: the merged metas of a compaction, the input's meta for a downsampling.
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
            JobKind::Compact => merge_metas(job.output, &job.inputs).expect("mergeable inputs"),
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

/// Plays the driver until the cycle exits or goes idle; returns the exit code and every
/// output in order. Each step happens one second after the previous one, under [`PERMIT`].
pub(super) fn run(cycle: &mut Cycle, model: &mut Model, start: Now) -> (Option<i32>, Vec<Output>) {
    run_failing(cycle, model, start, |_| None)
}

/// [`run`], with the error `fail` returns for a job instead of its block.
pub(super) fn run_failing(
    cycle: &mut Cycle,
    model: &mut Model,
    start: Now,
    fail: impl Fn(&CompactJob) -> Option<JobError>,
) -> (Option<i32>, Vec<Output>) {
    run_with(cycle, model, start, |_, job| fail(job))
}

/// [`run`], calling `on_job` with the cycle as each job is issued (before its result is
/// delivered); the error it returns replaces the job's block.
pub(super) fn run_with(
    cycle: &mut Cycle,
    model: &mut Model,
    start: Now,
    mut on_job: impl FnMut(&mut Cycle, &CompactJob) -> Option<JobError>,
) -> (Option<i32>, Vec<Output>) {
    let (mut code, mut all) = (None, Vec::new());
    let mut inputs = VecDeque::from([Input::Start]);
    for step in 1.. {
        let Some(input) = inputs.pop_front() else {
            break;
        };
        assert!(step < 10_000, "cycle does not converge");
        let now = Now {
            mono: start.mono.plus(step * 1000),
            wall: start.wall.plus(step * 1000),
        };
        let mut out = Vec::new();
        cycle.step(now, input, Some(PERMIT), &mut out);
        for o in &out {
            match o {
                Output::Store(r) => inputs.push_back(Input::Store(r.id(), model.apply(r, now))),
                Output::Compact(job) => {
                    let result = on_job(cycle, job).map_or_else(|| model.compact(job), Err);
                    inputs.push_back(Input::Compacted(job.job, Box::new(result)));
                }
                Output::Exit(c) => code = Some(*c),
                Output::Timer(_) | Output::Event(_) | Output::Coord(_) => {}
            }
        }
        all.extend(out);
        if code.is_some() {
            break;
        }
    }
    (code, all)
}

/// `h` hours into the test's time: monotonic from 0, wall from [`T0_MS`].
pub(super) fn now(h: i64) -> Now {
    Now {
        mono: Millis(h * HOUR_MS),
        wall: Millis(T0_MS + h * HOUR_MS),
    }
}

/// `h` hours and `ms` milliseconds into the test's time.
pub(super) fn now_plus(h: i64, ms: i64) -> Now {
    Now {
        mono: now(h).mono.plus(ms),
        wall: now(h).wall.plus(ms),
    }
}

/// Twelve 2h blocks of `cluster` (24h), numbered from `salt`.
pub(super) fn twelve_2h_blocks(model: &mut Model, cluster: &str, salt: u128) {
    for i in 0..12 {
        model.add(block(salt + i as u128, 2 * i, 2 * i + 2, cluster));
    }
}
