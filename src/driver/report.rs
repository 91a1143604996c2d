//! Turns the core's events and the driver's own observations into log lines and metrics.
//! One log line per plan and per compaction (group, inputs, output, samples, seconds), one per
//! mark and delete, and a progress line every [`PROGRESS_LOG_INTERVAL`] of a long compaction.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::unit_gauges::{UnitGauges, UnitKey};

use crate::core::progress::{Backlog, CompactionBacklog};
use crate::core::stream::StreamId;
use crate::core::types::{
    CompactJob, Event, JobError, JobKind, ReadOp, StoreError, StoreRequest, WriteOp,
};
use crate::metrics::{Marker, Metrics};
use crate::tsdb::meta::BlockMeta;

/// How often a running compaction logs its progress.
pub const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Logs and counts. Cheap to clone.
#[derive(Clone)]
pub struct Reporter {
    metrics: Arc<Metrics>,
    /// The sync states and backlog of each unit this replica holds, summed into the gauges.
    units: Arc<Mutex<UnitGauges>>,
}

impl Reporter {
    /// A reporter updating `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Reporter {
            metrics,
            units: Arc::default(),
        }
    }

    fn units(&self) -> std::sync::MutexGuard<'_, UnitGauges> {
        self.units.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets `thanos_blocks_meta_synced` to the sum over the units held.
    fn publish_synced(&self, states: &BTreeMap<String, u64>) {
        let states: BTreeMap<&str, u64> = states.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        self.metrics.fetcher.set_synced(&states);
    }

    /// Sets the `thanos_compact_todo_*` gauges to the sum over the units held.
    fn publish_backlog(&self, b: Backlog) {
        let p = &self.metrics.progress;
        p.todo_compactions.set(b.compaction.runs as i64);
        p.todo_compaction_blocks.set(b.compaction.blocks as i64);
        if let Some(blocks) = b.downsample_blocks {
            p.todo_downsample_blocks.set(blocks as i64);
        }
        p.todo_deletion_blocks.set(b.deletion_blocks as i64);
    }

    /// A unit's sync: counted, its problems logged, the gauges re-summed.
    fn synced(&self, unit: UnitKey, states: &BTreeMap<String, u64>, problems: &[String]) {
        let total = self.units().synced(unit, states);
        self.publish_synced(&total);
        self.metrics.fetcher.syncs.inc();
        for p in problems {
            tracing::warn!(problem = %p, "bucket sync");
        }
        tracing::info!(
            loaded = states.get("loaded").copied().unwrap_or(0),
            partial = states.get("no-meta-json").copied().unwrap_or(0)
                + states.get("corrupted-meta-json").copied().unwrap_or(0),
            "synced block metadata"
        );
    }

    /// A unit's backlog: the gauges re-summed.
    fn backlog(&self, unit: UnitKey, b: Backlog) {
        let total = self.units().backlog(unit, b);
        self.publish_backlog(total);
        tracing::debug!(
            compactions = b.compaction.runs,
            compaction_blocks = b.compaction.blocks,
            downsample_blocks = ?b.downsample_blocks,
            deletion_blocks = b.deletion_blocks,
            "backlog calculated"
        );
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Logs and counts one core event.
    pub fn event(&self, e: &Event) {
        let m = &self.metrics;
        match e {
            Event::Synced { states, problems } => self.synced(None, states, problems),
            Event::SyncFailed(err) => {
                m.fetcher.sync_failures.inc();
                tracing::error!(error = %err, "bucket sync failed");
            }
            Event::Planned {
                group,
                resolution,
                inputs,
                output,
            } => {
                m.groups.for_resolution(*resolution).runs_started.inc();
                let inputs: Vec<String> = inputs.iter().map(ToString::to_string).collect();
                tracing::info!(group = %group, inputs = %inputs.join(","), output = %output, "compaction plan");
            }
            Event::Compacted {
                resolution,
                output,
                vertical,
                ..
            } => {
                let g = m.groups.for_resolution(*resolution);
                g.runs_completed.inc();
                if output.is_some() {
                    g.compactions.inc();
                    if *vertical {
                        g.vertical_compactions.inc();
                    }
                }
            }
            Event::CompactionFailed {
                group,
                resolution,
                error,
            } => {
                m.groups.for_resolution(*resolution).failures.inc();
                tracing::error!(group = %group, error = %error, "compaction failed");
            }
            Event::DownsamplePass { resolutions, todo } => {
                for r in resolutions {
                    m.downsample.init_resolution(*r);
                }
                // `thanos_compact_todo_downsample_blocks` is the progress calculator's alone
                // (Event::Progress), as in Thanos.
                tracing::info!(blocks = todo, "start of downsampling pass");
            }
            Event::Downsampled {
                block,
                resolution,
                result,
            } => {
                let labels = crate::metrics::ResolutionLabels {
                    resolution: *resolution,
                };
                match result {
                    Ok(_) => {
                        m.downsample.downsamples.get_or_create(&labels).inc();
                    }
                    Err(e) => {
                        m.downsample.failures.get_or_create(&labels).inc();
                        tracing::error!(block = %block, error = %e, "downsampling failed");
                    }
                }
            }
            Event::Uploaded(id) => tracing::info!(block = %id, "uploaded block"),
            Event::Marked {
                block,
                marker,
                reason,
            } => self.marked(*block, marker, reason),
            Event::Unmarked { block, marker } => {
                tracing::info!(block = %block, marker = %marker, "marker removed (operator request)");
            }
            Event::AdminDone { id, outcome } => match &outcome.error {
                None => tracing::info!(
                    request = id.0,
                    committed = outcome.committed,
                    existed = outcome.existed,
                    epoch = outcome.epoch,
                    "operator request committed"
                ),
                Some(error) => tracing::warn!(
                    request = id.0,
                    committed = outcome.committed,
                    existed = outcome.existed,
                    error = %error,
                    "operator request stopped"
                ),
            },
            Event::Deleted(id) => {
                m.compact.blocks_cleaned.inc();
                tracing::info!(block = %id, "deleted block marked for deletion");
            }
            Event::PartialDeleted(id) => {
                m.compact.partial_upload_delete_attempts.inc();
                m.compact.blocks_cleaned.inc();
                tracing::info!(block = %id, "deleted aborted partial upload");
            }
            Event::CleanupDone { blocks, partials } => {
                m.compact.cleanup_loops.inc();
                tracing::info!(
                    blocks,
                    partials,
                    "background clean-up of marked blocks and partial uploads done"
                );
            }
            Event::MutationFailed { op, error } => {
                // `WriteOp::DeleteBlock`'s name: a marked block or a partial upload.
                if op == "delete-block" {
                    m.compact.block_cleanup_failures.inc();
                }
                tracing::warn!(op = %op, error = %error, "bucket mutation failed")
            }
            Event::Progress { .. } => self.backlog(None, backlog_of(e)),
            Event::Halted(reason) => {
                m.compact.halted.set(1);
                tracing::error!(reason = %reason, "critical error detected; halting");
            }
            Event::IterationDone => {
                m.compact.iterations.inc();
                // The iteration ended with its clean-up of partial uploads, as Thanos' main
                // loop ends with its clean-up loop.
                m.compact.cleanup_loops.inc();
                tracing::info!("compaction iteration done");
            }
            Event::Retrying(err) => {
                m.compact.retries.inc();
                tracing::error!(error = %err, "iteration failed; retrying");
            }
            Event::Elected { epoch } => {
                tracing::info!(epoch, "elected leader; fencing the bucket")
            }
            Event::Leading { epoch, failover_ms } => {
                m.ha.leader.set(1);
                m.ha.leader_epoch.set(*epoch as i64);
                m.ha.leader_transitions.inc();
                if let Some(ms) = failover_ms {
                    m.ha.failover_duration.observe(*ms as f64 / 1000.0);
                }
                tracing::info!(
                    epoch,
                    failover_ms,
                    "leading: the fence holds our epoch; writing"
                );
            }
            Event::SteppedDown { epoch, reason } => {
                m.ha.leader.set(0);
                m.ha.lease_remaining_seconds.set(0.0);
                m.ha.leader_transitions.inc();
                tracing::warn!(epoch, reason = %reason, "stopped leading; no more writes");
            }
            Event::LeaderKnown(Some(l)) => {
                m.ha.leader_epoch.set(l.epoch as i64);
                tracing::info!(leader = %l.node, epoch = l.epoch, "leader changed");
            }
            Event::LeaderKnown(None) => tracing::info!("no leader known"),
            Event::FenceConflict { epoch, found } => {
                m.ha.fence_conflicts.inc();
                match found {
                    Some(f) => {
                        tracing::warn!(epoch, fence_epoch = f.epoch, fence_holder = %f.holder, "fence conflict")
                    }
                    None => {
                        tracing::warn!(epoch, "fence conflict: the fence changed since it was read")
                    }
                }
            }
            Event::LeaseRenewed {
                permit_remaining_ms,
            } => {
                m.ha.lease_remaining_seconds
                    .set(*permit_remaining_ms as f64 / 1000.0);
            }
            Event::LeaseAbandoned { unheard_ms } => {
                m.ha.lease_remaining_seconds.set(0.0);
                tracing::warn!(
                    unheard_ms,
                    "no lease renewal acknowledged for a TTL: renewals stopped so that etcd \
                     expires our key; revoking the lease once etcd answers, then campaigning anew"
                );
            }
            Event::CoordFailed { op, error } => {
                tracing::warn!(op = %op, error = %error, "etcd request failed; retrying")
            }
            Event::StreamsAssigned {
                streams,
                members,
                moved,
                mine,
            } => tracing::info!(
                streams,
                members,
                moved,
                mine,
                "adopted an assignment of streams to replicas"
            ),
            Event::Stream { stream, event } => self.stream_event(*stream, event),
        }
    }

    /// Logs and counts an event of one stream's seat. Its leadership is the stream's, not the
    /// bucket's: logged with the stream, counted by `compactd_owned_streams` (set from the
    /// node after every step), never in the bucket leader's gauges. A seat's sync and backlog
    /// see only its stream: they are added to this replica's block and backlog gauges
    /// ([`UnitGauges`]), and taken out again when the seat steps down.
    fn stream_event(&self, id: StreamId, e: &Event) {
        let stream = id.to_string();
        match e {
            Event::Elected { epoch } => {
                tracing::info!(stream, epoch, "elected for the stream; fencing it")
            }
            Event::Leading { epoch, failover_ms } => {
                if let Some(ms) = failover_ms {
                    self.metrics
                        .ha
                        .stream_failover_duration
                        .observe(*ms as f64 / 1000.0);
                }
                tracing::info!(stream, epoch, failover_ms, "holding the stream; writing")
            }
            Event::SteppedDown { epoch, reason } => {
                if let Some((synced, backlog)) = self.units().dropped(Some(id)) {
                    self.publish_synced(&synced);
                    self.publish_backlog(backlog);
                }
                tracing::warn!(stream, epoch, reason = %reason, "stopped holding the stream")
            }
            Event::LeaderKnown(Some(l)) => {
                tracing::debug!(stream, holder = %l.node, epoch = l.epoch, "stream holder changed")
            }
            Event::LeaderKnown(None) => tracing::debug!(stream, "no stream holder known"),
            Event::Synced { states, problems } => {
                let _span = tracing::info_span!("stream", stream).entered();
                self.synced(Some(id), states, problems);
            }
            Event::Progress { .. } => self.backlog(Some(id), backlog_of(e)),
            other => {
                let _span = tracing::info_span!("stream", stream).entered();
                self.event(other);
            }
        }
    }

    fn marked(&self, block: crate::tsdb::block_id::BlockId, marker: &str, reason: &str) {
        let kind = if marker == Marker::NoCompact.as_str() {
            Marker::NoCompact
        } else {
            Marker::Deletion
        };
        let label = if kind == Marker::Deletion { "" } else { reason };
        self.metrics.compact.block_marked(kind, label);
        tracing::info!(block = %block, marker = %marker, reason = %reason, "marked block");
    }

    /// A job of the download path was refused: `--data-dir` is too small for it.
    pub fn insufficient_disk(&self, error: &JobError) {
        self.metrics.compact.insufficient_disk.inc();
        tracing::error!(error = %error.message, "job refused: --data-dir is too small");
    }

    /// A mutation was refused because its permit had expired.
    pub fn permit_expired(&self, req: &StoreRequest) {
        self.metrics.ha.permit_expired_writes.inc();
        tracing::warn!(op = req.name(), "write permit expired; mutation not sent");
    }

    /// A store operation finished.
    pub fn store_op(&self, req: &StoreRequest, took: Duration, error: Option<&StoreError>) {
        if let Some(e) = error {
            tracing::warn!(op = req.name(), seconds = took.as_secs_f64(), kind = ?e.kind, error = %e, "store operation failed");
            return;
        }
        match req {
            StoreRequest::Write {
                op: WriteOp::PutMeta { .. },
                ..
            } => {
                let unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                self.metrics.bucket.upload_succeeded_at(unix);
            }
            StoreRequest::Read {
                op: ReadOp::Sync, ..
            } => self
                .metrics
                .fetcher
                .sync_duration
                .observe(took.as_secs_f64()),
            _ => {}
        }
    }

    /// A downsampling job ended.
    pub fn downsample_finished(
        &self,
        job: &CompactJob,
        took: Duration,
        result: Result<Option<&BlockMeta>, &String>,
    ) {
        let Some(input) = job.inputs.first() else {
            return;
        };
        let resolution = crate::core::view::resolution(input);
        // The resolution downsampled to (a downsampling job always has one).
        let target: Option<i64> = job.kind.into();
        self.metrics
            .downsample
            .duration
            .get_or_create(&crate::metrics::ResolutionLabels { resolution })
            .observe(took.as_secs_f64());
        match result {
            Ok(Some(meta)) => {
                tracing::info!(block = %input.ulid, resolution = target, output = %meta.ulid, samples = meta.stats.num_samples, series = meta.stats.num_series, seconds = took.as_secs_f64(), "downsampled block")
            }
            Ok(None) => {
                tracing::info!(block = %input.ulid, seconds = took.as_secs_f64(), "downsampling produced no samples")
            }
            Err(e) => {
                tracing::error!(block = %input.ulid, error = %e, "downsampling job failed")
            }
        }
    }

    /// A compaction job started.
    pub fn compaction_started(&self, job: &CompactJob) {
        let samples: u64 = job.inputs.iter().map(|m| m.stats.num_samples).sum();
        if let JobKind::Downsample {
            resolution_ms: resolution,
        } = job.kind
        {
            tracing::info!(group = %job.group, input_samples = samples, resolution, output = %job.output, "downsampling");
            return;
        }
        tracing::info!(group = %job.group, inputs = job.inputs.len(), input_samples = samples, output = %job.output, "compacting");
    }

    /// A running compaction is still running.
    pub fn compaction_progress(&self, job: &CompactJob, elapsed: Duration, series_done: u64) {
        let series_in: u64 = job.inputs.iter().map(|m| m.stats.num_series).sum();
        tracing::info!(group = %job.group, output = %job.output, seconds = elapsed.as_secs(), series_written = series_done, input_series = series_in, "compaction in progress");
    }

    /// A compaction job ended.
    pub fn compaction_finished(
        &self,
        job: &CompactJob,
        took: Duration,
        result: Result<Option<&BlockMeta>, &String>,
    ) {
        self.metrics.tsdb.compactions.inc();
        self.metrics
            .tsdb
            .compaction_duration
            .observe(took.as_secs_f64());
        let inputs: Vec<String> = job.inputs.iter().map(|m| m.ulid.to_string()).collect();
        match result {
            Ok(Some(meta)) => {
                tracing::info!(group = %job.group, inputs = %inputs.join(","), output = %meta.ulid, samples = meta.stats.num_samples, series = meta.stats.num_series, seconds = took.as_secs_f64(), "compacted blocks")
            }
            Ok(None) => {
                tracing::info!(group = %job.group, inputs = %inputs.join(","), seconds = took.as_secs_f64(), "compaction produced no samples; sources will be marked for deletion")
            }
            Err(e) => {
                tracing::error!(group = %job.group, inputs = %inputs.join(","), error = %e, "compaction job failed")
            }
        }
    }
}

/// The backlog an `Event::Progress` carries (zero for any other event).
fn backlog_of(e: &Event) -> Backlog {
    match e {
        Event::Progress {
            todo_compactions,
            todo_compaction_blocks,
            todo_downsample_blocks,
            todo_deletion_blocks,
        } => Backlog {
            compaction: CompactionBacklog {
                runs: *todo_compactions,
                blocks: *todo_compaction_blocks,
            },
            downsample_blocks: *todo_downsample_blocks,
            deletion_blocks: *todo_deletion_blocks,
        },
        _ => Backlog::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::block_id::BlockId;

    fn has(exposition: &str, line: &str) -> bool {
        exposition.lines().any(|l| l == line)
    }

    // A downsampling pass starts every source resolution's series at 0; each success counts,
    // each failure counts apart. Neither touches the to-do gauge: in Thanos only the progress
    // calculator sets it.
    #[test]
    fn downsampling_events_drive_thanos_downsample_metrics() {
        let metrics = Arc::new(Metrics::new("test"));
        let r = Reporter::new(Arc::clone(&metrics));
        r.event(&Event::DownsamplePass {
            resolutions: vec![0, 300_000],
            todo: 3,
        });
        let e = metrics.encode();
        assert!(
            has(&e, r#"thanos_compact_downsample_total{resolution="0"} 0"#),
            "{e}"
        );
        assert!(
            has(
                &e,
                r#"thanos_compact_downsample_failures_total{resolution="300000"} 0"#
            ),
            "{e}"
        );
        assert!(has(&e, "thanos_compact_todo_downsample_blocks 0"), "{e}");
        let block = BlockId::from_parts(1, 1);
        r.event(&Event::Downsampled {
            block,
            resolution: 0,
            result: Ok(Some(BlockId::from_parts(1, 2))),
        });
        r.event(&Event::Downsampled {
            block,
            resolution: 300_000,
            result: Err("bad chunk".into()),
        });
        let e = metrics.encode();
        assert!(
            has(&e, r#"thanos_compact_downsample_total{resolution="0"} 1"#),
            "{e}"
        );
        assert!(
            has(
                &e,
                r#"thanos_compact_downsample_total{resolution="300000"} 0"#
            ),
            "{e}"
        );
        assert!(
            has(
                &e,
                r#"thanos_compact_downsample_failures_total{resolution="300000"} 1"#
            ),
            "{e}"
        );
        assert!(has(&e, "thanos_compact_todo_downsample_blocks 0"), "{e}");
    }

    // The no-compact mark the compaction pass writes on a block with out-of-order chunks
    // counts under Thanos' reason, in the series Thanos pre-creates at 0.
    #[test]
    fn an_out_of_order_chunks_mark_counts_under_thanos_reason() {
        use crate::bucket::markers::{self, NoCompactMark};
        use crate::core::types::StoreResult;
        assert_eq!(
            markers::REASON_OUT_OF_ORDER_CHUNKS,
            crate::metrics::REASON_OUT_OF_ORDER_CHUNKS
        );
        let metrics = Arc::new(Metrics::new("test"));
        let r = Reporter::new(Arc::clone(&metrics));
        let series = r#"thanos_compact_blocks_marked_total{marker="no-compact-mark.json",reason="block-index-out-of-order-chunk"}"#;
        assert!(has(&metrics.encode(), &format!("{series} 0")));
        let op = WriteOp::MarkNoCompact(NoCompactMark {
            id: BlockId::from_parts(1, 1),
            version: markers::MARKER_VERSION,
            details: markers::DETAILS_OUT_OF_ORDER_CHUNKS.into(),
            no_compact_time: 1,
            reason: markers::REASON_OUT_OF_ORDER_CHUNKS.into(),
        });
        r.event(&op.completion_event(&StoreResult::Done).expect("a new mark"));
        let e = metrics.encode();
        assert!(has(&e, &format!("{series} 1")), "{e}");
    }

    // Thanos' clean-up counters: a block deleted (marked, or a partial upload, which also
    // counts as an attempt), a failed delete, and a clean-up loop done, in the background or
    // at the end of an iteration.
    #[test]
    fn clean_up_events_drive_thanos_cleanup_metrics() {
        let metrics = Arc::new(Metrics::new("test"));
        let r = Reporter::new(Arc::clone(&metrics));
        let block = BlockId::from_parts(1, 1);
        r.event(&Event::Deleted(block));
        r.event(&Event::PartialDeleted(block));
        r.event(&Event::MutationFailed {
            op: WriteOp::DeleteBlock(block).name().into(),
            error: "503".into(),
        });
        r.event(&Event::MutationFailed {
            op: "put-meta".into(),
            error: "503".into(),
        });
        r.event(&Event::CleanupDone {
            blocks: 1,
            partials: 1,
        });
        r.event(&Event::IterationDone);
        let e = metrics.encode();
        for line in [
            "thanos_compact_blocks_cleaned_total 2",
            "thanos_compact_aborted_partial_uploads_deletion_attempts_total 1",
            "thanos_compact_block_cleanup_failures_total 1",
            "thanos_compact_block_cleanup_loops_total 2",
        ] {
            assert!(has(&e, line), "{line}: {e}");
        }
    }

    // A calculation sets the four gauges; one that could not count the downsampling backlog
    // (downsampling off) leaves that gauge as it was.
    #[test]
    fn progress_events_set_the_todo_gauges() {
        let metrics = Arc::new(Metrics::new("test"));
        let r = Reporter::new(Arc::clone(&metrics));
        r.event(&Event::Progress {
            todo_compactions: 13,
            todo_compaction_blocks: 54,
            todo_downsample_blocks: Some(2),
            todo_deletion_blocks: 24,
        });
        let e = metrics.encode();
        for line in [
            "thanos_compact_todo_compactions 13",
            "thanos_compact_todo_compaction_blocks 54",
            "thanos_compact_todo_downsample_blocks 2",
            "thanos_compact_todo_deletion_blocks 24",
        ] {
            assert!(has(&e, line), "{line}: {e}");
        }
        r.event(&Event::Progress {
            todo_compactions: 0,
            todo_compaction_blocks: 0,
            todo_downsample_blocks: None,
            todo_deletion_blocks: 1,
        });
        let e = metrics.encode();
        for line in [
            "thanos_compact_todo_compactions 0",
            "thanos_compact_todo_compaction_blocks 0",
            "thanos_compact_todo_downsample_blocks 2",
            "thanos_compact_todo_deletion_blocks 1",
        ] {
            assert!(has(&e, line), "{line}: {e}");
        }
    }
}
