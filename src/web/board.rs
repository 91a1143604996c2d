//! The board: what the block viewer shows, kept up to date by whoever runs the compactor
//! (the driver, from the node's inputs, outputs and events; `tools bucket web`, from its own
//! syncs) and read by the HTTP handlers. Nothing here asks the bucket for anything: the
//! views are the syncs the compactor made anyway.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::Serialize;

use crate::core::request::WriteOp;
use crate::core::stream::StreamId;
use crate::core::types::{CompactJob, Event, JobId, JobKind, SyncResult};
use crate::core::view::BucketView;
use crate::driver::ranged::ReadCounts;
use crate::timefmt::format_rfc3339_ms;

/// Failover events kept for the page.
const FAILOVERS_KEPT: usize = 50;

/// What a running job has done so far; the job's tasks count, the page reads.
#[derive(Debug, Default)]
pub struct JobProgress {
    /// Series of the new block written (the engine's count).
    pub series_done: Arc<AtomicU64>,
    /// Reads of the inputs from the bucket (streaming jobs).
    pub reads: Arc<ReadCounts>,
    /// Bytes of the new block sent to the bucket (streaming jobs).
    pub bytes_written: Arc<AtomicU64>,
}

/// A running job as the page shows it.
#[derive(Debug)]
struct RunningJob {
    job: CompactJob,
    started_ms: i64,
    started: Instant,
    progress: Arc<JobProgress>,
}

/// One line of the failover history.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Failover {
    /// When this node saw it, RFC3339.
    pub at: String,
    /// `elected`, `leading`, `stepped_down` or `leader_changed`.
    pub what: &'static str,
    /// The node concerned (this one, or the new leader).
    pub node: String,
    /// The term's epoch.
    pub epoch: u64,
    /// The stream, for a stream seat's event.
    pub stream: Option<String>,
    /// More words (the failover time, the reason for stepping down).
    pub detail: String,
}

/// Why compaction halted and what an operator does about it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Halt {
    /// The halt's reason as the compactor logged it.
    pub reason: String,
    /// The runbook's fix for it.
    pub fix: String,
    /// When, RFC3339.
    pub since: String,
    /// The stream whose writer halted (per-stream ownership).
    pub stream: Option<String>,
}

/// The backlog gauges (`thanos_compact_todo_*`) at their last calculation.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BacklogStatus {
    /// `thanos_compact_todo_compactions`.
    pub todo_compactions: u64,
    /// `thanos_compact_todo_compaction_blocks`.
    pub todo_compaction_blocks: u64,
    /// `thanos_compact_todo_downsample_blocks` (`None`: not calculated).
    pub todo_downsample_blocks: Option<u64>,
    /// `thanos_compact_todo_deletion_blocks`.
    pub todo_deletion_blocks: u64,
    /// When calculated, RFC3339.
    pub at: String,
}

/// A running job's line of `/api/v1/compactor`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct JobStatus {
    /// `compaction` or `downsampling`.
    pub kind: &'static str,
    /// Thanos' group key.
    pub group: String,
    /// The new block.
    pub output: String,
    /// The input blocks.
    pub inputs: Vec<String>,
    /// The inputs' resolution in ms.
    pub resolution: i64,
    /// The resolution a downsampling makes.
    pub to_resolution: Option<i64>,
    /// When the job was started, RFC3339.
    pub started_at: String,
    /// Seconds since.
    pub elapsed_seconds: f64,
    /// Series written.
    pub series_done: u64,
    /// The series the new block is expected to have: the largest input's (a stream's series
    /// mostly repeat from block to block), or the series written if more (churn).
    pub series_total: u64,
    /// Bytes of the inputs read from the bucket.
    pub bytes_read: u64,
    /// Bytes of the new block sent to the bucket.
    pub bytes_written: u64,
}

/// The last result of `tools bucket audit` run from the page.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuditStatus {
    /// When it ran, RFC3339.
    pub at: String,
    /// No violation and no problem.
    pub clean: bool,
    /// Its violations.
    pub violations: Vec<String>,
    /// Its problems (objects it could not read).
    pub problems: Vec<String>,
    /// The report as the command prints it.
    pub text: String,
}

/// A view of the bucket and when it was taken.
#[derive(Debug)]
pub struct Snapshot<T> {
    /// The view.
    pub view: T,
    /// When its sync completed, Unix ms.
    pub refreshed_ms: i64,
}

/// The loaded view: what each unit of this node acts on, after its filters.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The bucket unit's view and each held stream's.
    pub units: Vec<BucketView>,
}

#[derive(Debug, Default)]
struct State {
    global: Option<Arc<Snapshot<SyncResult>>>,
    global_error: Option<String>,
    loaded: Option<Arc<Snapshot<Loaded>>>,
    jobs: BTreeMap<JobId, RunningJob>,
    halts: BTreeMap<Option<StreamId>, Halt>,
    /// Each unit's backlog (the bucket's, each stream seat's): the page shows their sum, as
    /// the `thanos_compact_todo_*` gauges do.
    backlogs: BTreeMap<Option<StreamId>, BacklogStatus>,
    failovers: VecDeque<Failover>,
    /// The write permit's end as last renewed: (when heard, remaining ms then).
    lease: Option<(Instant, i64)>,
    audit: Option<AuditStatus>,
    /// An audit is running.
    auditing: bool,
}

/// What the viewer shows; shared by its feeders and the handlers.
#[derive(Debug, Default)]
pub struct Board {
    state: Mutex<State>,
}

impl Board {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A sync of the whole bucket as of `at_ms` (Unix ms); ignored if the view is newer.
    pub fn set_global(&self, sync: SyncResult, at_ms: i64) {
        let mut state = self.state();
        if state
            .global
            .as_ref()
            .is_some_and(|g| g.refreshed_ms > at_ms)
        {
            return; // A slow sync ended after a newer one: keep the newer view.
        }
        state.global = Some(Arc::new(Snapshot {
            view: sync,
            refreshed_ms: at_ms,
        }));
        state.global_error = None;
    }

    /// The last sync of the whole bucket failed; the view before it stays.
    pub fn set_global_error(&self, error: String) {
        self.state().global_error = Some(error);
    }

    /// Shows a mark committed from the page in the global view before the next sync.
    pub fn note_commit(&self, op: &WriteOp) {
        let Some(global) = self.state().global.clone() else {
            return;
        };
        let mut view = global.view.clone();
        let refreshed_ms = global.refreshed_ms;
        match op {
            WriteOp::MarkDeletion(m) => {
                if let Some(b) = view.blocks.get_mut(&m.id) {
                    b.deletion_mark = Some(m.clone());
                }
            }
            WriteOp::MarkNoCompact(m) => {
                if let Some(b) = view.blocks.get_mut(&m.id) {
                    b.no_compact_mark = Some(m.clone());
                }
            }
            WriteOp::MarkNoDownsample(m) => {
                if let Some(b) = view.blocks.get_mut(&m.id) {
                    b.no_downsample_mark = Some(m.clone());
                }
            }
            _ => return,
        }
        let mut state = self.state();
        // A sync that came in meanwhile has the mark (or a newer bucket): keep it.
        if state
            .global
            .as_ref()
            .is_some_and(|g| Arc::ptr_eq(g, &global))
        {
            state.global = Some(Arc::new(Snapshot { view, refreshed_ms }));
        }
    }

    /// The global view and the last sync's error.
    pub fn global(&self) -> (Option<Arc<Snapshot<SyncResult>>>, Option<String>) {
        let state = self.state();
        (state.global.clone(), state.global_error.clone())
    }

    /// When the global view was last refreshed (Unix ms), if ever.
    pub fn global_refreshed_ms(&self) -> Option<i64> {
        self.state().global.as_ref().map(|g| g.refreshed_ms)
    }

    /// The views the node's units act on, as of `at_ms`.
    pub fn set_loaded(&self, loaded: Loaded, at_ms: i64) {
        self.state().loaded = Some(Arc::new(Snapshot {
            view: loaded,
            refreshed_ms: at_ms,
        }));
    }

    /// The loaded view.
    pub fn loaded(&self) -> Option<Arc<Snapshot<Loaded>>> {
        self.state().loaded.clone()
    }

    /// A job starts now (`at_ms`, Unix ms); its tasks count into the progress returned.
    pub fn job_started(&self, job: &CompactJob, at_ms: i64) -> Arc<JobProgress> {
        let progress = Arc::new(JobProgress::default());
        self.state().jobs.insert(
            job.job,
            RunningJob {
                job: job.clone(),
                started_ms: at_ms,
                started: Instant::now(),
                progress: Arc::clone(&progress),
            },
        );
        progress
    }

    /// The job's result came back.
    pub fn job_ended(&self, job: JobId) {
        self.state().jobs.remove(&job);
    }

    /// The running jobs, oldest first.
    pub fn jobs(&self) -> Vec<JobStatus> {
        let state = self.state();
        let mut jobs: Vec<JobStatus> = state.jobs.values().map(job_status).collect();
        jobs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        jobs
    }

    /// Takes in an event of the node seen at `at_ms` (Unix ms).
    pub fn on_event(&self, event: &Event, at_ms: i64) {
        self.on_unit_event(None, event, at_ms);
    }

    fn on_unit_event(&self, stream: Option<StreamId>, event: &Event, at_ms: i64) {
        let at = format_rfc3339_ms(at_ms);
        let stream_name = stream.map(|s| s.to_string());
        let mut state = self.state();
        let failover = |what, node: &str, epoch, detail: String| Failover {
            at: at.clone(),
            what,
            node: node.to_string(),
            epoch,
            stream: stream_name.clone(),
            detail,
        };
        let line = match event {
            Event::Stream { stream, event } => {
                drop(state);
                return self.on_unit_event(Some(*stream), event, at_ms);
            }
            Event::Halted(reason) => {
                state.halts.insert(
                    stream,
                    Halt {
                        reason: reason.clone(),
                        fix: fix_for(reason).into(),
                        since: at.clone(),
                        stream: stream_name.clone(),
                    },
                );
                None
            }
            Event::Progress {
                todo_compactions,
                todo_compaction_blocks,
                todo_downsample_blocks,
                todo_deletion_blocks,
            } => {
                state.backlogs.insert(
                    stream,
                    BacklogStatus {
                        todo_compactions: *todo_compactions,
                        todo_compaction_blocks: *todo_compaction_blocks,
                        todo_downsample_blocks: *todo_downsample_blocks,
                        todo_deletion_blocks: *todo_deletion_blocks,
                        at: at.clone(),
                    },
                );
                None
            }
            Event::LeaseRenewed {
                permit_remaining_ms,
            } if stream.is_none() => {
                state.lease = Some((Instant::now(), *permit_remaining_ms));
                None
            }
            Event::Elected { epoch } => Some(failover("elected", "", *epoch, String::new())),
            Event::Leading { epoch, failover_ms } => {
                let detail = failover_ms
                    .map(|ms| format!("failover {:.1}s", ms as f64 / 1000.0))
                    .unwrap_or_default();
                Some(failover("leading", "", *epoch, detail))
            }
            Event::SteppedDown { epoch, reason } => {
                if stream.is_none() {
                    state.lease = None;
                }
                state.halts.remove(&stream);
                state.backlogs.remove(&stream);
                Some(failover("stepped_down", "", *epoch, reason.clone()))
            }
            Event::LeaderKnown(Some(leader)) if stream.is_none() => Some(failover(
                "leader_changed",
                &leader.node,
                leader.epoch,
                String::new(),
            )),
            Event::LeaderKnown(None) if stream.is_none() => {
                Some(failover("leader_changed", "", 0, "no leader known".into()))
            }
            _ => None,
        };
        if let Some(line) = line {
            if state.failovers.len() == FAILOVERS_KEPT {
                state.failovers.pop_front();
            }
            state.failovers.push_back(line);
        }
    }

    /// The failover history, newest last.
    pub fn failovers(&self) -> Vec<Failover> {
        self.state().failovers.iter().cloned().collect()
    }

    /// Where this node's failover lines name no node, `node` (this node) fills in.
    pub fn failovers_of(&self, node: &str) -> Vec<Failover> {
        self.failovers()
            .into_iter()
            .map(|mut f| {
                if f.node.is_empty() && f.what != "leader_changed" {
                    f.node = node.to_string();
                }
                f
            })
            .collect()
    }

    /// The halts in force (the bucket unit's first), if any.
    pub fn halt(&self) -> Option<Halt> {
        self.state().halts.values().next().cloned()
    }

    /// The backlog of every unit this node holds, summed, at their last calculations (the
    /// latest one's time); downsampling's is unknown if any unit's is.
    pub fn backlog(&self) -> Option<BacklogStatus> {
        let state = self.state();
        let mut units = state.backlogs.values();
        let first = units.next()?.clone();
        Some(units.fold(first, |sum, b| {
            BacklogStatus {
                todo_compactions: sum.todo_compactions + b.todo_compactions,
                todo_compaction_blocks: sum.todo_compaction_blocks + b.todo_compaction_blocks,
                todo_downsample_blocks: sum
                    .todo_downsample_blocks
                    .zip(b.todo_downsample_blocks)
                    .map(|(x, y)| x + y),
                todo_deletion_blocks: sum.todo_deletion_blocks + b.todo_deletion_blocks,
                at: sum.at.max(b.at.clone()),
            }
        }))
    }

    /// Seconds left of this node's write permit, if it holds one.
    pub fn lease_remaining_seconds(&self) -> Option<f64> {
        let (heard, remaining_ms) = self.state().lease?;
        let left = remaining_ms as f64 / 1000.0 - heard.elapsed().as_secs_f64();
        Some(left.max(0.0))
    }

    /// Records an audit's result.
    pub fn set_audit(&self, audit: AuditStatus) {
        self.state().audit = Some(audit);
    }

    /// Starts an audit unless one runs; it ends when the guard drops.
    pub fn start_audit(&self) -> Option<AuditGuard<'_>> {
        let mut state = self.state();
        if state.auditing {
            return None;
        }
        state.auditing = true;
        Some(AuditGuard { board: self })
    }

    /// The last audit's result.
    pub fn audit(&self) -> Option<AuditStatus> {
        self.state().audit.clone()
    }
}

/// An audit under way ([`Board::start_audit`]).
#[derive(Debug)]
pub struct AuditGuard<'a> {
    board: &'a Board,
}

impl Drop for AuditGuard<'_> {
    fn drop(&mut self) {
        self.board.state().auditing = false;
    }
}

fn job_status(j: &RunningJob) -> JobStatus {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let resolution = j
        .job
        .inputs
        .first()
        .map(crate::core::view::resolution)
        .unwrap_or(0);
    let (kind, to_resolution) = match j.job.kind {
        JobKind::Compact => ("compaction", None),
        JobKind::Downsample { resolution_ms } => ("downsampling", Some(resolution_ms)),
    };
    JobStatus {
        kind,
        group: j.job.group.clone(),
        output: j.job.output.to_string(),
        inputs: j.job.inputs.iter().map(|m| m.ulid.to_string()).collect(),
        resolution,
        to_resolution,
        started_at: format_rfc3339_ms(j.started_ms),
        elapsed_seconds: j.started.elapsed().as_secs_f64(),
        series_done: load(&j.progress.series_done),
        series_total: j
            .job
            .inputs
            .iter()
            .map(|m| m.stats.num_series)
            .max()
            .unwrap_or(0)
            .max(load(&j.progress.series_done)),
        bytes_read: load(&j.progress.reads.bytes),
        bytes_written: load(&j.progress.bytes_written),
    }
}

/// The runbook's fix for a halt (`docs/operations.md`, Halting).
pub fn fix_for(reason: &str) -> &'static str {
    let reason = reason.to_ascii_lowercase();
    if reason.contains("share source") || reason.contains("overlapping sources") {
        "Two blocks of a plan share a source: a duplicated compaction. Run `compactd tools \
         bucket verify -i duplicated_compaction --repair`, then restart."
    } else if reason.contains("overlap") {
        "Blocks of one stream overlap and vertical compaction is off. Find them with the \
         \"overlaps\" filter; if they are replicas of the same data, enable vertical compaction \
         (--compact.enable-vertical-compaction or a --deduplication.replica-label); otherwise \
         move the offending blocks out of the bucket. Then restart the compactor."
    } else if reason.contains("out of order") || reason.contains("out-of-order") {
        "A block's index lists chunks out of time order. Mark it no-compact (the button in its \
         details) or run with --compact.skip-block-with-out-of-order-chunks, then restart."
    } else if reason.contains("label names") {
        "A block has series with unsorted label names (Prometheus 2.8.0 or older). Run with \
         --debug.accept-malformed-index, or mark the block no-compact, then restart."
    } else {
        "A compaction or downsampling failed on its input (a corrupt block). Mark the block \
         named in the reason no-compact (or no-downsample) with the button in its details, so \
         the rest of its group goes on, then restart; check the block with `compactd tools \
         bucket verify --id <ULID>`."
    }
}
